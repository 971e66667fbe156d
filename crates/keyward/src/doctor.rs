//! `keyward doctor`: checks a data directory and repairs what is safe to repair, saying exactly
//! what it found and what it did.
//!
//! The checks, in order ([`Check`]): which store the directory holds; the directory's mode
//! (0700) and the pepper file's (0600), repaired with `chmod`; what a crash left in a sled
//! store (`snap.*.generating` and the like, see `keyward_store::sled::recover_leftovers`),
//! removed; that the store opens; that every record decodes (each failure names its id), not
//! repaired; that every index entry matches the records, repaired by the backend's
//! `repair_indexes`.
//!
//! With [`DoctorOptions::dry_run`] nothing in the directory changes (not a byte, not a
//! modification time): the store is opened, read and repaired in a private temporary copy,
//! so the report says precisely what a real run would repair.
//!
//! ```no_run
//! use keyward::DataDir;
//! use keyward::doctor::{self, DoctorOptions};
//! let report = doctor::run(&DataDir::new("./keyward-data"), DoctorOptions { dry_run: true })?;
//! for finding in report.problems() {
//!     let _ = (finding.check.as_str(), &finding.detail, &finding.action);
//! }
//! # Ok::<(), keyward::DataDirError>(())
//! ```

use core::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use keyward_core::Pepper;
#[cfg(feature = "sled")]
use keyward_store::sled::{Recovered, recover_leftovers};
use keyward_store::{Store, StoreError};

use crate::data_dir::{DataDir, DataDirError, PEPPER_ENV, StoreKind};

/// How [`run`] works.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DoctorOptions {
    /// Change nothing: report what a run without it would repair.
    pub dry_run: bool,
}

/// What a [`Finding`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Check {
    /// Which store the directory holds (exactly one).
    Store,
    /// The data directory's permissions: 0700.
    DirectoryMode,
    /// The pepper file: present (unless `KEYWARD_PEPPER` is set), 64 hexadecimal characters,
    /// mode 0600.
    PepperFile,
    /// What a crash left in the store that stops it from opening.
    CrashLeftovers,
    /// The store opens.
    StoreOpens,
    /// Every record decodes.
    Records,
    /// Every index entry matches the records.
    Indexes,
}

impl Check {
    /// `store`, `directory_mode`, `pepper_file`, `crash_leftovers`, `store_opens`, `records` or
    /// `indexes`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::DirectoryMode => "directory_mode",
            Self::PepperFile => "pepper_file",
            Self::CrashLeftovers => "crash_leftovers",
            Self::StoreOpens => "store_opens",
            Self::Records => "records",
            Self::Indexes => "indexes",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Healthy.
    Ok,
    /// A problem (see the finding's [`Action`]).
    Problem,
    /// Not checked, because an earlier problem prevents it (the store does not open).
    Skipped,
}

impl Status {
    /// `ok`, `problem` or `skipped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Problem => "problem",
            Self::Skipped => "skipped",
        }
    }
}

/// What was done about a problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing (no problem, or not checked).
    None,
    /// Repaired: what was done.
    Repaired(String),
    /// Dry run: what a run without it does.
    WouldRepair(String),
    /// Not repaired (not safe to do automatically): what the operator can do.
    Manual(String),
}

impl Action {
    /// `none`, `repaired`, `would_repair` or `manual`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Repaired(_) => "repaired",
            Self::WouldRepair(_) => "would_repair",
            Self::Manual(_) => "manual",
        }
    }

    /// What was (or would be) done, or what to do; empty for [`Action::None`].
    pub fn text(&self) -> &str {
        match self {
            Self::None => "",
            Self::Repaired(s) | Self::WouldRepair(s) | Self::Manual(s) => s,
        }
    }
}

/// One thing [`run`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The check.
    pub check: Check,
    /// Its result.
    pub status: Status,
    /// What was found (names the file, record or index entry concerned).
    pub detail: String,
    /// What was done about it.
    pub action: Action,
}

/// Everything [`run`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoctorReport {
    /// The data directory.
    pub dir: PathBuf,
    /// The store it holds, if exactly one.
    pub store: Option<StoreKind>,
    /// Whether this was a dry run (nothing changed).
    pub dry_run: bool,
    /// Records that decode, if the store opened.
    pub records: Option<usize>,
    /// Every finding, in check order; healthy checks included.
    pub findings: Vec<Finding>,
}

impl DoctorReport {
    /// No problem found (repaired or not).
    pub fn healthy(&self) -> bool {
        self.problems().next().is_none()
    }

    /// The findings that are problems.
    pub fn problems(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.status == Status::Problem)
    }

    /// Problems repaired by this run.
    pub fn repaired(&self) -> usize {
        self.problems()
            .filter(|f| matches!(f.action, Action::Repaired(_)))
            .count()
    }

    /// Problems left as they are (including, in a dry run, those a real run would repair).
    pub fn unrepaired(&self) -> usize {
        self.problems()
            .filter(|f| !matches!(f.action, Action::Repaired(_)))
            .count()
    }
}

/// Checks the data directory and (unless `options.dry_run`) repairs what is safe to repair.
///
/// Fails only when it cannot check at all: the directory holds no store
/// ([`DataDirError::NotInitialised`]), another process holds the store open
/// ([`DataDirError::InUse`]: stop it first), or a dry run cannot make its temporary copy.
/// Everything else is a [`Finding`].
pub fn run(dir: &DataDir, options: DoctorOptions) -> Result<DoctorReport, DataDirError> {
    let mut report = DoctorReport {
        dir: dir.path().to_path_buf(),
        store: None,
        dry_run: options.dry_run,
        records: None,
        findings: Vec::new(),
    };
    let kind = match dir.detect() {
        Ok(Some(kind)) => Some(kind),
        Ok(None) => {
            return Err(DataDirError::NotInitialised {
                dir: dir.path().to_path_buf(),
            });
        }
        Err(e @ DataDirError::BothBackends { .. }) => {
            report.findings.push(Finding {
                check: Check::Store,
                status: Status::Problem,
                detail: e.to_string(),
                action: Action::Manual(
                    "move the store that is not this deployment's out of the directory".into(),
                ),
            });
            None
        }
        Err(e) => return Err(e),
    };
    if let Some(kind) = kind {
        report.store = Some(kind);
        report.findings.push(ok(
            Check::Store,
            format!("{kind} store at {}", dir.store_path(kind).display()),
        ));
    }
    let mut d = Doctor {
        dry_run: options.dry_run,
        findings: &mut report.findings,
    };
    d.directory_mode(dir.path());
    d.pepper_file(dir);
    if let Some(kind) = kind {
        report.records = d.store(dir, kind)?;
    }
    Ok(report)
}

fn ok(check: Check, detail: impl Into<String>) -> Finding {
    Finding {
        check,
        status: Status::Ok,
        detail: detail.into(),
        action: Action::None,
    }
}

/// The checks, appending to one report.
struct Doctor<'a> {
    dry_run: bool,
    findings: &'a mut Vec<Finding>,
}

impl Doctor<'_> {
    fn ok(&mut self, check: Check, detail: impl Into<String>) {
        self.findings.push(ok(check, detail));
    }

    fn problem(&mut self, check: Check, detail: impl Into<String>, action: Action) {
        self.findings.push(Finding {
            check,
            status: Status::Problem,
            detail: detail.into(),
            action,
        });
    }

    fn skipped(&mut self, check: Check, why: &str) {
        self.findings.push(Finding {
            check,
            status: Status::Skipped,
            detail: format!("not checked: {why}"),
            action: Action::None,
        });
    }

    /// A repair: done now, or (dry run) described. `what` says what it does.
    fn repair(
        &mut self,
        check: Check,
        detail: String,
        what: String,
        f: impl FnOnce() -> io::Result<()>,
    ) {
        let action = if self.dry_run {
            Action::WouldRepair(what)
        } else {
            match f() {
                Ok(()) => Action::Repaired(what),
                Err(e) => Action::Manual(format!("{what} failed: {e}")),
            }
        };
        self.problem(check, detail, action);
    }

    /// A file or directory whose group/other permission bits must be clear.
    fn mode(&mut self, check: Check, path: &Path, wanted: u32) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = match fs::metadata(path) {
                Ok(m) => m.permissions().mode() & 0o7777,
                Err(e) => {
                    let detail = format!("cannot read the mode of {}: {e}", path.display());
                    self.problem(check, detail, Action::Manual("check the path".into()));
                    return;
                }
            };
            if mode & 0o077 == 0 {
                self.ok(check, format!("{} has mode {mode:04o}", path.display()));
            } else {
                self.repair(
                    check,
                    format!(
                        "{} has mode {mode:04o}: readable or writable by other users",
                        path.display()
                    ),
                    format!("chmod {wanted:04o} {}", path.display()),
                    || fs::set_permissions(path, fs::Permissions::from_mode(wanted)),
                );
            }
        }
        #[cfg(not(unix))]
        {
            let _ = wanted;
            self.ok(
                check,
                format!("{}: modes are not checked on this platform", path.display()),
            );
        }
    }

    fn directory_mode(&mut self, path: &Path) {
        self.mode(Check::DirectoryMode, path, 0o700);
    }

    fn pepper_file(&mut self, dir: &DataDir) {
        let path = dir.pepper_path();
        let env_set =
            dir.reads_pepper_env() && std::env::var_os(PEPPER_ENV).is_some_and(|v| !v.is_empty());
        match fs::read_to_string(&path) {
            Ok(text) => {
                let text = zeroize::Zeroizing::new(text);
                if Pepper::from_hex(&text).is_none() {
                    self.problem(
                        Check::PepperFile,
                        format!("{} does not hold 64 hexadecimal characters", path.display()),
                        Action::Manual(
                            "restore the pepper file from a backup: a new pepper would make \
                             every stored key unverifiable"
                                .into(),
                        ),
                    );
                }
                self.mode(Check::PepperFile, &path, 0o600);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && env_set => self.ok(
                Check::PepperFile,
                format!("no pepper file: the pepper comes from {PEPPER_ENV}"),
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.problem(
                Check::PepperFile,
                format!(
                    "{} is missing (and {PEPPER_ENV} is not set)",
                    path.display()
                ),
                Action::Manual(
                    "restore the pepper file from a backup, or set KEYWARD_PEPPER: a new pepper \
                     would make every stored key unverifiable"
                        .into(),
                ),
            ),
            Err(e) => self.problem(
                Check::PepperFile,
                format!("cannot read {}: {e}", path.display()),
                Action::Manual("make it readable by the user running keyward".into()),
            ),
        }
    }

    /// The store checks: leftovers, opening, records, indexes. Returns the decodable records.
    fn store(&mut self, dir: &DataDir, kind: StoreKind) -> Result<Option<usize>, DataDirError> {
        let path = dir.store_path(kind);
        let in_use = || DataDirError::InUse {
            store: path.clone(),
        };
        if !kind.is_compiled() {
            let e = DataDirError::NotCompiled { kind };
            self.problem(
                Check::StoreOpens,
                e.to_string(),
                Action::Manual(format!("run a keyward built with the `{kind}` feature")),
            );
            return Ok(None);
        }
        match kind {
            #[cfg(feature = "sled")]
            StoreKind::Sled => match recover_leftovers(&path, self.dry_run) {
                Ok(found) if found.is_empty() => {
                    self.ok(Check::CrashLeftovers, "nothing left by a crash");
                }
                Ok(found) => {
                    for r in found {
                        let (detail, what) = describe(&r);
                        let action = if self.dry_run {
                            Action::WouldRepair(what)
                        } else {
                            Action::Repaired(what)
                        };
                        self.problem(Check::CrashLeftovers, detail, action);
                    }
                }
                Err(StoreError::InUse { .. }) => return Err(in_use()),
                Err(e) => self.problem(
                    Check::CrashLeftovers,
                    e.to_string(),
                    Action::Manual("see the message".into()),
                ),
            },
            #[cfg(not(feature = "sled"))]
            StoreKind::Sled => {}
            StoreKind::Redb => {
                #[cfg(feature = "redb")]
                if self.dry_run && redb_in_use(&path) {
                    return Err(in_use());
                }
                self.ok(
                    Check::CrashLeftovers,
                    "nothing to remove: redb checks and repairs its file whenever it opens",
                );
            }
        }
        // A dry run opens a copy: opening writes to a store (sled's snapshot, redb's header).
        let copy = if self.dry_run {
            Some(copy_store(&path, kind)?)
        } else {
            None
        };
        let target = copy.as_ref().map_or(path.clone(), |c| c.store.clone());
        let store = match Opened::open(kind, &target) {
            Ok(store) => store,
            Err(StoreError::InUse { .. }) => return Err(in_use()),
            Err(e) => {
                self.problem(
                    Check::StoreOpens,
                    e.to_string(),
                    Action::Manual(
                        "restore the store from a `keyward export` or a backup; keep this \
                         directory, its records may still be readable"
                            .into(),
                    ),
                );
                self.skipped(Check::Records, "the store does not open");
                self.skipped(Check::Indexes, "the store does not open");
                return Ok(None);
            }
        };
        self.ok(Check::StoreOpens, format!("{} opens", path.display()));
        let records = self.records(&store);
        self.indexes(&store);
        Ok(Some(records))
    }

    fn records(&mut self, store: &Opened) -> usize {
        let mut good = 0;
        let mut bad = Vec::new();
        let scanned = store.as_store().scan(&mut |item| match item {
            Ok(_) => good += 1,
            Err(e) => bad.push(e),
        });
        if let Err(e) = scanned {
            self.problem(
                Check::Records,
                format!("cannot read the records: {e}"),
                Action::Manual("see the message".into()),
            );
            return good;
        }
        if bad.is_empty() {
            self.ok(
                Check::Records,
                format!("{good} record(s), every one decodes"),
            );
        }
        for e in bad {
            self.problem(
                Check::Records,
                e.to_string(),
                Action::Manual(
                    "not repaired: restore this key from a `keyward export` or a backup, or \
                     revoke it and issue a new one (its key cannot verify now)"
                        .into(),
                ),
            );
        }
        good
    }

    fn indexes(&mut self, store: &Opened) {
        let before = match store.index_problems() {
            Ok(p) => p,
            Err(e) => {
                self.problem(
                    Check::Indexes,
                    format!("cannot check the indexes: {e}"),
                    Action::Manual("see the message".into()),
                );
                return;
            }
        };
        if before.is_empty() {
            self.ok(Check::Indexes, "every index entry matches the records");
            return;
        }
        // Repaired for real, in the store or (dry run) in its copy; then checked again, so that
        // each problem is reported as repaired only if it is gone.
        let after = store.repair_indexes().and_then(|_| store.index_problems());
        for problem in before {
            let action = match &after {
                Ok(left) if !left.contains(&problem) => {
                    let what = "fixed the index entry".to_owned();
                    if self.dry_run {
                        Action::WouldRepair(what)
                    } else {
                        Action::Repaired(what)
                    }
                }
                Ok(_) => Action::Manual(
                    "not repaired automatically: a lookup tag two records hold needs an \
                     operator; revoke one of the keys"
                        .into(),
                ),
                Err(e) => Action::Manual(format!("the repair failed: {e}")),
            };
            self.problem(Check::Indexes, problem, action);
        }
    }
}

/// One line about a crash leftover, and what removing it does.
#[cfg(feature = "sled")]
fn describe(r: &Recovered) -> (String, String) {
    match r {
        Recovered::IncompleteSnapshot { file, len } => (
            format!(
                "{} ({len} bytes): a snapshot sled was writing when its process died; sled \
                 would refuse to open",
                file.display()
            ),
            format!("removed {}", file.display()),
        ),
        Recovered::DamagedSnapshot { file, len } => (
            format!(
                "{} ({len} bytes): a damaged snapshot next to an older intact one",
                file.display()
            ),
            format!("removed {}", file.display()),
        ),
        Recovered::TruncatedConf { file, len } => (
            format!(
                "{} ({len} bytes): sled's configuration, cut short",
                file.display()
            ),
            format!("rewrote {}", file.display()),
        ),
        other => (other.to_string(), other.to_string()),
    }
}

/// An open backend store (not through the engine: no index warm-up, and the backends' own
/// index checks).
enum Opened {
    #[cfg(feature = "sled")]
    Sled(keyward_store::SledStore),
    #[cfg(feature = "redb")]
    Redb(keyward_store::RedbStore),
    /// Never built: keeps the type inhabited-looking in a build without either backend.
    #[cfg(not(any(feature = "sled", feature = "redb")))]
    #[allow(dead_code)]
    None(std::convert::Infallible),
}

impl Opened {
    fn open(kind: StoreKind, path: &Path) -> Result<Self, StoreError> {
        match kind {
            #[cfg(feature = "sled")]
            StoreKind::Sled => keyward_store::SledStore::open(path).map(Self::Sled),
            #[cfg(feature = "redb")]
            StoreKind::Redb => keyward_store::RedbStore::open(path).map(Self::Redb),
            #[allow(unreachable_patterns)]
            _ => {
                let _ = path;
                Err(StoreError::Backend {
                    message: DataDirError::NotCompiled { kind }.to_string(),
                })
            }
        }
    }

    fn as_store(&self) -> &dyn Store {
        match self {
            #[cfg(feature = "sled")]
            Self::Sled(s) => s,
            #[cfg(feature = "redb")]
            Self::Redb(s) => s,
            #[cfg(not(any(feature = "sled", feature = "redb")))]
            Self::None(never) => match *never {},
        }
    }

    /// Index problems, one sentence each; undecodable records left out (the records check
    /// reports them).
    #[cfg_attr(not(any(feature = "sled", feature = "redb")), allow(unreachable_code))]
    fn index_problems(&self) -> Result<Vec<String>, StoreError> {
        Ok(match self {
            #[cfg(feature = "sled")]
            Self::Sled(s) => s
                .check_indexes()?
                .into_iter()
                .filter(|p| !matches!(p, keyward_store::IndexProblem::UndecodableRecord(_)))
                .map(|p| p.to_string())
                .collect(),
            #[cfg(feature = "redb")]
            Self::Redb(s) => s
                .check_indexes()?
                .into_iter()
                .filter(|p| !matches!(p, keyward_store::IndexProblem::UndecodableRecord(_)))
                .map(|p| p.to_string())
                .collect(),
            #[cfg(not(any(feature = "sled", feature = "redb")))]
            Self::None(never) => match *never {},
        })
    }

    fn repair_indexes(&self) -> Result<usize, StoreError> {
        match self {
            #[cfg(feature = "sled")]
            Self::Sled(s) => s.repair_indexes(),
            #[cfg(feature = "redb")]
            Self::Redb(s) => s.repair_indexes(),
            #[cfg(not(any(feature = "sled", feature = "redb")))]
            Self::None(never) => match *never {},
        }
    }
}

/// Whether a process holds the redb file open for writing, found without writing to it
/// (a read-only open fails while a writer holds it).
#[cfg(feature = "redb")]
fn redb_in_use(path: &Path) -> bool {
    matches!(
        ::redb::ReadOnlyDatabase::open(path),
        Err(::redb::DatabaseError::DatabaseAlreadyOpen)
    )
}

/// A private copy of a store, for a dry run; removed when dropped.
struct Copy {
    _dir: tempfile::TempDir,
    store: PathBuf,
}

fn copy_store(path: &Path, kind: StoreKind) -> Result<Copy, DataDirError> {
    let io_err = |path: &Path, error| DataDirError::Io {
        action: "copy (for a dry run)",
        path: path.to_path_buf(),
        error,
    };
    // Private: the copy holds the same records (digests, metadata) as the store.
    let mut builder = tempfile::Builder::new();
    builder.prefix("keyward-doctor-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o700));
    }
    let dir = builder.tempdir().map_err(|e| io_err(path, e))?;
    let store = dir.path().join(match kind {
        StoreKind::Sled => "store",
        StoreKind::Redb => "keyward.redb",
    });
    copy_tree(path, &store).map_err(|e| io_err(path, e))?;
    Ok(Copy { _dir: dir, store })
}

/// Copies a file, or a directory recursively (regular files and directories only).
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(from)?;
    if meta.is_dir() {
        fs::create_dir(to)?;
        for entry in fs::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else if meta.is_file() {
        fs::copy(from, to).map(|_| ())
    } else {
        Ok(())
    }
}
