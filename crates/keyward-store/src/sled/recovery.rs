//! Recovery at open: what a crash leaves in a sled 0.34 directory that sled itself trips over,
//! found and (when it is safe) removed before [`SledStore::open`] hands the directory to sled.
//!
//! # What sled 0.34.7 does, and what a crash leaves
//!
//! sled writes a snapshot of its page table only while opening (`advance_snapshot` in
//! `pagecache/snapshot.rs`): it writes `snap.<lsn>.generating`, `fsync`s it, renames it to
//! `snap.<lsn>`, then removes every other `snap.*` file. At the next open, `read_snapshot`
//! takes the *lexicographically greatest* file whose name starts with `snap.`, which includes
//! a `.generating` one (`Config::get_snapshot_files` only skips `.in___motion`), and refuses to
//! open if it is shorter than 12 bytes or fails its CRC ("Read corrupted data at file offset
//! None"). The log (`db`) is never truncated or rewritten before the new snapshot is renamed,
//! so:
//!
//! * **`snap.N.generating`** (a process killed while writing it, often zero-length): never a
//!   finished snapshot. The previous `snap.M` (or none, on a store's first snapshot) and the log
//!   hold everything it would have held, exactly as when the killed open started. Removed,
//!   whatever its size or content ([`Recovered::IncompleteSnapshot`]).
//! * **A damaged newest `snap.N` next to an older intact `snap.M`**: the older one still exists
//!   only if the open that renamed `snap.N` died before removing it, and so before anything
//!   after the rename (zeroing torn segments, removing blobs). Falling back to `snap.M` is
//!   therefore that open's starting point again. The damaged file is removed
//!   ([`Recovered::DamagedSnapshot`]). (A kill cannot damage a renamed snapshot, it was
//!   `fsync`ed first; a power loss or a disk can.)
//! * **A damaged snapshot and no older intact one**: *not* handled. Without it sled would replay
//!   the whole log from its start, whose segments it may since have reused: that could open as a
//!   store missing records, which is worse than not opening. The open fails with
//!   [`StoreError::Unopenable`] and the files are left alone.
//! * **`conf` cut short**: sled writes it once, when it creates the store, in two unsynced
//!   writes (the text, then its CRC), and reads it at every open; cut between or inside them it
//!   fails to parse and the store never opens. If it is a strict prefix of what this build's
//!   sled writes, it is rewritten in full ([`Recovered::TruncatedConf`]); any other content is
//!   left alone (a store made by another sled version or configuration).
//! * **Snapshots but no data (`db` missing or empty)**: not a crash leftover (sled never shrinks
//!   `db`). sled refuses it; the [`StoreError::Unopenable`] says why.
//!
//! Not handled, because a kill cannot cause them: a snapshot pointing past the log's end (the
//! log is read back from disk before a snapshot is written), torn log segments (sled's own
//! recovery truncates the log at the first torn message).
//!
//! Everything here runs under sled's own lock (an exclusive `flock` of `db`, taken with the
//! same `flock` sled takes through `fs2`; std's `File::try_lock` is that call), so it never
//! touches a directory another process has open, nor
//! a snapshot another process is in the middle of writing.

use core::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[cfg(doc)]
use super::SledStore;
use crate::StoreError;

/// sled's snapshot file prefix (`Config::get_snapshot_files`).
const SNAP_PREFIX: &str = "snap.";
/// The suffix of a snapshot being written (`write_snapshot`).
const GENERATING_SUFFIX: &str = ".generating";
/// A name sled's snapshot listing skips.
const IN_MOTION_SUFFIX: &str = ".in___motion";
/// sled's storage parameters file.
const CONF: &str = "conf";
/// sled's log (and lock) file.
const DB: &str = "db";
/// A snapshot's trailer: the decompressed length (8 bytes) and a CRC32 (4 bytes), both
/// little-endian (`write_snapshot`, `read_snapshot`).
const SNAP_TRAILER: usize = 12;

/// What [`recover_leftovers`] removed or repaired in a sled store's directory (with `dry_run`:
/// what it would). Each names the file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Recovered {
    /// `snap.N.generating`: a snapshot sled was writing when its process died, which sled 0.34
    /// would read as the newest snapshot and refuse to open. Removed; the previous snapshot and
    /// the log hold everything.
    IncompleteSnapshot {
        /// The file.
        file: PathBuf,
        /// Its size in bytes.
        len: u64,
    },
    /// A newest `snap.N` that fails its length or checksum while an older intact snapshot
    /// exists. Removed, so sled recovers from the older snapshot and the log.
    DamagedSnapshot {
        /// The file.
        file: PathBuf,
        /// Its size in bytes.
        len: u64,
    },
    /// sled's `conf`, cut short while the store was being created. Rewritten in full.
    TruncatedConf {
        /// The file.
        file: PathBuf,
        /// Its size in bytes before the rewrite.
        len: u64,
    },
}

impl fmt::Display for Recovered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IncompleteSnapshot { file, len } => write!(
                f,
                "incomplete snapshot {} ({len} bytes) left by a crash: removed",
                file.display()
            ),
            Self::DamagedSnapshot { file, len } => write!(
                f,
                "damaged snapshot {} ({len} bytes), an older intact one exists: removed",
                file.display()
            ),
            Self::TruncatedConf { file, len } => write!(
                f,
                "sled configuration {} cut short ({len} bytes) by a crash: rewritten",
                file.display()
            ),
        }
    }
}

/// Finds what a crash left in the sled store directory `path` that would stop sled 0.34 from
/// opening it, and removes or repairs each one that is safe to (see [`Recovered`]); with
/// `dry_run`, changes nothing and returns what it would do. A directory that does not exist has
/// nothing to recover.
///
/// [`SledStore::open`] runs this first (and keeps the result: [`SledStore::recovered`]); call
/// it directly for a diagnosis (`dry_run`) or a repair of a store that does not open. Fails with
/// [`StoreError::InUse`] if a process has the store open: its files are never touched then.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// assert!(keyward_store::sled::recover_leftovers(dir.path(), true).unwrap().is_empty());
/// ```
pub fn recover_leftovers(
    path: impl AsRef<Path>,
    dry_run: bool,
) -> Result<Vec<Recovered>, StoreError> {
    let dir = path.as_ref();
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let io = |what: &str, p: &Path, e: io::Error| StoreError::Backend {
        message: format!("recovering {}: {what} {}: {e}", dir.display(), p.display()),
    };
    let _lock = lock(dir)?;
    let found = inspect(dir, dry_run).map_err(|e| io("cannot read", dir, e))?;
    if dry_run {
        return Ok(found.fixes);
    }
    for fix in &found.fixes {
        match fix {
            Recovered::IncompleteSnapshot { file, .. }
            | Recovered::DamagedSnapshot { file, .. } => {
                fs::remove_file(file).map_err(|e| io("cannot remove", file, e))?;
            }
            Recovered::TruncatedConf { file, .. } => {
                rewrite(dir, file, &expected_conf()).map_err(|e| io("cannot rewrite", file, e))?;
            }
        }
    }
    if !found.fixes.is_empty() {
        // Make the removals and the rename durable before sled looks at the directory.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("cannot sync", dir, e))?;
    }
    Ok(found.fixes)
}

/// What [`inspect`] found: the leftovers it is safe to fix, and damage it is not.
#[derive(Debug, Default)]
pub(super) struct Inspection {
    /// What [`recover_leftovers`] fixes.
    pub(super) fixes: Vec<Recovered>,
    /// Damage left alone, one sentence each.
    pub(super) damage: Vec<String>,
}

/// Takes sled's lock on `dir/db` (an exclusive `flock`, as sled does) if the file exists.
/// [`StoreError::InUse`] if a process holds it.
fn lock(dir: &Path) -> Result<Option<File>, StoreError> {
    let path = dir.join(DB);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(StoreError::Backend {
                message: format!("cannot open {}: {e}", path.display()),
            });
        }
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::InUse {
            what: dir.display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Backend {
            message: format!("cannot lock {}: {e}", path.display()),
        }),
    }
}

/// Reads the directory (it writes nothing) and sorts what it finds into fixes and damage.
/// `thorough` also reads a lone snapshot (sled checks it anyway when it opens; a diagnosis
/// wants to know).
pub(super) fn inspect(dir: &Path, thorough: bool) -> io::Result<Inspection> {
    let mut found = Inspection::default();
    let mut snapshots = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if !name.starts_with(SNAP_PREFIX) || name.ends_with(IN_MOTION_SUFFIX) {
            continue;
        }
        let len = entry.metadata()?.len();
        if name.ends_with(GENERATING_SUFFIX) {
            found.fixes.push(Recovered::IncompleteSnapshot {
                file: entry.path(),
                len,
            });
        } else {
            snapshots.push((name.to_owned(), entry.path(), len));
        }
    }
    found.fixes.sort_by(|a, b| file_of(a).cmp(file_of(b)));
    // Newest first, in sled's order (it sorts the names and takes the last).
    snapshots.sort_by(|a, b| b.0.cmp(&a.0));
    if let Some((newest, ..)) = snapshots.first()
        && !is_snapshot_name(newest)
    {
        found.damage.push(format!(
            "{} is not a sled snapshot, but sled 0.34 would read it as the newest one",
            dir.join(newest).display()
        ));
    } else if snapshots.len() > 1 || thorough {
        // Only read snapshots when there is a choice to make; a single one is sled's to check.
        check_snapshots(dir, &snapshots, &mut found)?;
    }
    let db_len = match fs::metadata(dir.join(DB)) {
        Ok(m) => Some(m.len()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    if !snapshots.is_empty() && db_len.unwrap_or(0) == 0 {
        found.damage.push(format!(
            "{} holds snapshots but its data file `db` is {}: sled could open it as an empty store",
            dir.display(),
            if db_len.is_some() { "empty" } else { "missing" },
        ));
    }
    check_conf(dir, &mut found)?;
    Ok(found)
}

/// Among `snapshots` (newest first), the damaged ones newer than the newest intact one are
/// fixes; if none is intact, the newest is damage.
fn check_snapshots(
    dir: &Path,
    snapshots: &[(String, PathBuf, u64)],
    found: &mut Inspection,
) -> io::Result<()> {
    let mut damaged = Vec::new();
    for (name, path, len) in snapshots {
        if !is_snapshot_name(name) {
            break;
        }
        if snapshot_is_intact(&fs::read(path)?) {
            found.fixes.extend(damaged);
            return Ok(());
        }
        damaged.push(Recovered::DamagedSnapshot {
            file: path.clone(),
            len: *len,
        });
    }
    if let Some(Recovered::DamagedSnapshot { file, len }) = damaged.first() {
        found.damage.push(format!(
            "the newest snapshot {} ({len} bytes) is damaged and no older intact one exists \
             (in {})",
            file.display(),
            dir.display()
        ));
    }
    Ok(())
}

fn file_of(r: &Recovered) -> &Path {
    match r {
        Recovered::IncompleteSnapshot { file, .. }
        | Recovered::DamagedSnapshot { file, .. }
        | Recovered::TruncatedConf { file, .. } => file,
    }
}

/// `snap.` followed by 16 upper-case hex digits, as `write_snapshot` names them.
fn is_snapshot_name(name: &str) -> bool {
    name.strip_prefix(SNAP_PREFIX).is_some_and(|lsn| {
        lsn.len() == 16
            && lsn
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
    })
}

/// The check sled's `read_snapshot` makes: longer than the trailer, and the CRC32 of what
/// precedes the trailer matches its last four bytes.
fn snapshot_is_intact(bytes: &[u8]) -> bool {
    if bytes.len() <= SNAP_TRAILER {
        return false;
    }
    let (body, trailer) = bytes.split_at(bytes.len() - SNAP_TRAILER);
    let mut crc = [0; 4];
    crc.copy_from_slice(&trailer[8..]);
    crc32fast::hash(body) == u32::from_le_bytes(crc)
}

/// sled's `conf` for the configuration [`SledStore::open`] uses (sled's default segment size,
/// no compression, sled 0.34): its text (`StorageParameters::serialize`), then the text's
/// CRC32, little-endian (`Config::write_config`).
fn expected_conf() -> Vec<u8> {
    let mut conf = b"segment_size: 524288\nuse_compression: false\nversion: 0.34\n".to_vec();
    let crc = crc32fast::hash(&conf);
    conf.extend_from_slice(&crc.to_le_bytes());
    conf
}

fn check_conf(dir: &Path, found: &mut Inspection) -> io::Result<()> {
    let file = dir.join(CONF);
    let conf = match fs::read(&file) {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let expected = expected_conf();
    if conf.len() < expected.len() && expected.starts_with(&conf) {
        found.fixes.push(Recovered::TruncatedConf {
            file,
            len: conf.len() as u64,
        });
    } else if conf != expected {
        found.damage.push(format!(
            "{} is not the configuration this build's sled writes ({} bytes); it may be from \
             another sled version or configuration",
            file.display(),
            conf.len()
        ));
    }
    Ok(())
}

/// Replaces `file` with `bytes` atomically: a temporary file in `dir`, `fsync`ed, renamed over.
fn rewrite(dir: &Path, file: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join("conf.keyward-recovery");
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, file)
}

/// The error for a store sled refuses to open after recovery: sled's error, the damage
/// [`inspect`] finds, and what recovery already removed.
pub(super) fn unopenable(dir: &Path, error: &sled::Error, recovered: &[Recovered]) -> StoreError {
    let mut reason = format!("sled: {error}");
    match inspect(dir, true) {
        Ok(found) => {
            for d in found.damage {
                reason.push_str("; ");
                reason.push_str(&d);
            }
        }
        Err(e) => reason.push_str(&format!("; cannot inspect the directory: {e}")),
    }
    if !recovered.is_empty() {
        reason.push_str("; already done before opening: ");
        let done: Vec<String> = recovered.iter().map(ToString::to_string).collect();
        reason.push_str(&done.join(", "));
    }
    StoreError::Unopenable {
        path: dir.display().to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    //! Each leftover built by hand in a real store's directory, then opened.
    #![allow(clippy::unwrap_used)]

    use keyward_core::Credential;
    use tempfile::TempDir;

    use super::*;
    use crate::Store;
    use crate::sled::SledStore;
    use crate::sled::fixtures::credential;

    /// A closed store at `<tmp>/store` holding `n` credentials, opened twice so that sled has
    /// written its snapshot.
    fn store_with_keys(n: usize) -> (TempDir, PathBuf, Vec<Credential>) {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("store");
        let store = SledStore::open(&path).unwrap();
        let creds = put_keys(&store, n);
        drop(store);
        let store = SledStore::open(&path).unwrap();
        assert!(store.recovered().is_empty());
        drop(store);
        assert_eq!(snapshots(&path).len(), 1, "{:?}", snapshots(&path));
        (tmp, path, creds)
    }

    fn put_keys(store: &SledStore, n: usize) -> Vec<Credential> {
        (0..n)
            .map(|_| {
                let mut c = credential("acc_recovery");
                c.revision = store.put(&c).unwrap();
                c
            })
            .collect()
    }

    /// The `snap.*` file names, sorted.
    fn snapshots(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with(SNAP_PREFIX))
            .collect();
        names.sort();
        names
    }

    /// The one intact snapshot's path and the name of a newer one at `lsn + 1`.
    fn snapshot_and_next(dir: &Path) -> (PathBuf, String) {
        let name = snapshots(dir).pop().unwrap();
        let lsn = u64::from_str_radix(&name[SNAP_PREFIX.len()..], 16).unwrap();
        (dir.join(&name), format!("{SNAP_PREFIX}{:016X}", lsn + 1))
    }

    fn assert_holds(store: &SledStore, creds: &[Credential]) {
        for c in creds {
            assert_eq!(store.get(&c.id).unwrap().as_ref(), Some(c));
            assert_eq!(
                store.find_by_lookup(&c.secrets[0].lookup).unwrap().as_ref(),
                Some(c)
            );
        }
        let mut n = 0;
        store.scan(&mut |r| n += usize::from(r.is_ok())).unwrap();
        assert_eq!(n, creds.len());
        assert!(store.check_indexes().unwrap().is_empty());
    }

    /// The sled 0.34 defect itself: a bare sled open of a directory with an empty
    /// `.generating` snapshot fails. (If a sled upgrade fixes it, this test says so.)
    #[test]
    fn sled_alone_does_not_open_past_an_incomplete_snapshot() {
        let (_tmp, path, _) = store_with_keys(3);
        let (_, next) = snapshot_and_next(&path);
        fs::write(path.join(format!("{next}{GENERATING_SUFFIX}")), b"").unwrap();
        let e = sled::Config::new().path(&path).open().unwrap_err();
        assert!(matches!(e, sled::Error::Corruption { .. }), "{e:?}");
    }

    #[test]
    fn an_incomplete_snapshot_of_any_size_is_removed_and_every_key_is_there() {
        for part in ["empty", "half", "whole"] {
            let (_tmp, path, mut creds) = store_with_keys(20);
            let (snap, next) = snapshot_and_next(&path);
            let intact = fs::read(&snap).unwrap();
            let bytes = match part {
                "empty" => &[][..],
                "half" => &intact[..intact.len() / 2],
                _ => &intact[..],
            };
            let leftover = path.join(format!("{next}{GENERATING_SUFFIX}"));
            fs::write(&leftover, bytes).unwrap();

            let store = SledStore::open(&path).unwrap();
            assert_eq!(
                store.recovered(),
                [Recovered::IncompleteSnapshot {
                    file: leftover.clone(),
                    len: bytes.len() as u64,
                }],
                "{part}"
            );
            assert!(!leftover.exists(), "{part}");
            assert_holds(&store, &creds);
            // It goes on taking writes, and the next open has nothing to recover.
            creds.extend(put_keys(&store, 2));
            drop(store);
            let store = SledStore::open(&path).unwrap();
            assert!(store.recovered().is_empty(), "{part}");
            assert_holds(&store, &creds);
        }
    }

    #[test]
    fn a_dry_run_reports_and_removes_nothing() {
        let (_tmp, path, creds) = store_with_keys(5);
        let (_, next) = snapshot_and_next(&path);
        let leftover = path.join(format!("{next}{GENERATING_SUFFIX}"));
        fs::write(&leftover, b"").unwrap();
        let before = snapshots(&path);
        let expected = vec![Recovered::IncompleteSnapshot {
            file: leftover.clone(),
            len: 0,
        }];
        for _ in 0..2 {
            assert_eq!(recover_leftovers(&path, true).unwrap(), expected);
            assert_eq!(snapshots(&path), before);
        }
        assert_eq!(recover_leftovers(&path, false).unwrap(), expected);
        assert!(!leftover.exists());
        assert!(recover_leftovers(&path, true).unwrap().is_empty());
        let store = SledStore::open(&path).unwrap();
        assert!(store.recovered().is_empty());
        assert_holds(&store, &creds);
    }

    #[test]
    fn a_store_in_use_is_not_touched() {
        let (_tmp, path, _) = store_with_keys(1);
        let store = SledStore::open(&path).unwrap();
        let leftover = path.join(format!("{}{GENERATING_SUFFIX}", snapshot_and_next(&path).1));
        fs::write(&leftover, b"").unwrap();
        for dry_run in [true, false] {
            let e = recover_leftovers(&path, dry_run).unwrap_err();
            assert!(matches!(e, StoreError::InUse { .. }), "{e:?}");
        }
        assert!(leftover.exists());
        drop(store);
        assert_eq!(recover_leftovers(&path, false).unwrap().len(), 1);
    }

    #[test]
    fn a_damaged_newest_snapshot_falls_back_to_an_older_intact_one() {
        let (_tmp, path, mut creds) = store_with_keys(10);
        let (old, _) = snapshot_and_next(&path);
        let old_bytes = fs::read(&old).unwrap();
        // More writes, and an open that writes a newer snapshot and removes the old one.
        let store = SledStore::open(&path).unwrap();
        creds.extend(put_keys(&store, 10));
        drop(store);
        drop(SledStore::open(&path).unwrap());
        let (new, _) = snapshot_and_next(&path);
        assert_ne!(new, old);
        // As if that open died after the rename, before removing the old snapshot, and the
        // new one had then been damaged.
        fs::write(&old, &old_bytes).unwrap();
        let new_bytes = fs::read(&new).unwrap();
        fs::write(&new, &new_bytes[..new_bytes.len() - 1]).unwrap();

        let store = SledStore::open(&path).unwrap();
        assert_eq!(
            store.recovered(),
            [Recovered::DamagedSnapshot {
                file: new.clone(),
                len: new_bytes.len() as u64 - 1,
            }]
        );
        assert_holds(&store, &creds);
    }

    #[test]
    fn a_damaged_only_snapshot_is_unopenable_and_left_alone() {
        let (_tmp, path, _) = store_with_keys(3);
        let (snap, _) = snapshot_and_next(&path);
        let bytes = fs::read(&snap).unwrap();
        let damaged = &bytes[..bytes.len() / 2];
        fs::write(&snap, damaged).unwrap();

        let e = SledStore::open(&path).unwrap_err();
        let StoreError::Unopenable { path: p, reason } = &e else {
            panic!("{e:?}");
        };
        assert_eq!(p, &path.display().to_string());
        assert!(reason.contains(&snap.display().to_string()), "{reason}");
        assert!(reason.contains("no older intact one"), "{reason}");
        let shown = e.to_string();
        assert!(shown.contains("keyward doctor"), "{shown}");
        assert!(shown.contains("keyward export"), "{shown}");
        // Nothing it could fix, and nothing changed.
        assert!(recover_leftovers(&path, true).unwrap().is_empty());
        assert_eq!(fs::read(&snap).unwrap(), damaged);
        assert_eq!(snapshots(&path).len(), 1);
    }

    #[test]
    fn the_expected_conf_is_what_sled_writes() {
        let (_tmp, path, _) = store_with_keys(1);
        assert_eq!(fs::read(path.join(CONF)).unwrap(), expected_conf());
    }

    #[test]
    fn a_conf_cut_short_is_rewritten() {
        let full = expected_conf();
        for cut in [0, 9, 20, full.len() - 4, full.len() - 1] {
            let (_tmp, path, creds) = store_with_keys(5);
            let conf = path.join(CONF);
            fs::write(&conf, &full[..cut]).unwrap();
            let store = SledStore::open(&path).unwrap();
            assert_eq!(
                store.recovered(),
                [Recovered::TruncatedConf {
                    file: conf.clone(),
                    len: cut as u64,
                }],
                "cut at {cut}"
            );
            assert_eq!(fs::read(&conf).unwrap(), full);
            assert_holds(&store, &creds);
        }
    }

    #[test]
    fn a_conf_from_another_configuration_is_left_alone() {
        let (_tmp, path, _) = store_with_keys(1);
        let conf = path.join(CONF);
        let mut other = b"segment_size: 1048576\nuse_compression: false\nversion: 0.34\n".to_vec();
        let crc = crc32fast::hash(&other);
        other.extend_from_slice(&crc.to_le_bytes());
        fs::write(&conf, &other).unwrap();
        let e = SledStore::open(&path).unwrap_err();
        assert!(
            matches!(&e, StoreError::Unopenable { reason, .. } if reason.contains("conf")),
            "{e:?}"
        );
        assert_eq!(fs::read(&conf).unwrap(), other);
    }

    #[test]
    fn snapshots_without_data_are_unopenable() {
        let (_tmp, path, _) = store_with_keys(3);
        fs::write(path.join(DB), b"").unwrap();
        let e = SledStore::open(&path).unwrap_err();
        assert!(
            matches!(&e, StoreError::Unopenable { reason, .. } if reason.contains("`db` is empty")),
            "{e:?}"
        );
    }

    #[test]
    fn a_missing_directory_has_nothing_to_recover() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("nothing here");
        assert!(recover_leftovers(&path, false).unwrap().is_empty());
        assert!(!path.exists());
    }
}
