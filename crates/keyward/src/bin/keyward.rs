//! `keyward`: the operator's command line. Issue, verify, regenerate and revoke API keys in a
//! local data directory (`keyward::DataDir`: a redb or sled store and the pepper), export and
//! import them, check the directory, and serve the HTTP management API.
//!
//! Exit status: 0 on success; for `verify`, 1 when the key is refused; for `doctor`, 1 when a
//! problem was found (repaired or not); for `events --verify`, 1 when the audit chain is
//! broken; 2 on any error (one line on stderr).
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "keyward/events.rs"]
mod events;
#[path = "keyward/output.rs"]
mod output;

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use keyward::core::{
    AccountId, Credential, CredentialId, Environment, KeyType, Metadata, Name, Permission,
    PermissionSet, Timestamp,
};
use keyward::rotation::RegenerateOptions;
use keyward::store::ListQuery;
use keyward::{
    DataDir, DataDirError, EngineError, Issued, Keyward, NewKey, OperatorKey, Principal, StoreKind,
};
use serde_json::json;

use keyward::view::{IssuedKeyView, KeyView, VerifyView};
use output::{credential_rows, credential_table, print, print_json, table};

/// Issue, verify, regenerate and revoke API keys; serve the management API.
#[derive(Debug, Parser)]
#[command(name = "keyward", version, max_term_width = 100)]
struct Cli {
    /// Data directory: the pepper (`DIR/pepper`) and the store (`DIR/keyward.redb`, or the sled
    /// directory `DIR/store`).
    #[arg(
        long,
        global = true,
        env = "KEYWARD_DATA",
        value_name = "DIR",
        default_value = "./keyward-data"
    )]
    data: PathBuf,
    /// Print one JSON object instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the data directory, the pepper and the store, and print a first operator
    /// (administrator) key, once.
    Init {
        /// The store: redb (the default for a new directory) or sled. An initialised directory
        /// keeps the store it has.
        #[arg(long, value_name = "KIND")]
        backend: Option<StoreKind>,
        /// On an initialised store, print a new operator key instead (recovery, e.g. when the
        /// last administrator key is lost: the API never removes the last one, the CLI can
        /// always make another).
        #[arg(long)]
        recover: bool,
    },
    /// Issue a key and print it (once).
    Issue {
        /// Owning account.
        #[arg(long, value_name = "ID")]
        account: AccountId,
        /// secret, publishable or restricted.
        #[arg(long = "type", value_name = "TYPE")]
        key_type: KeyType,
        /// production, test or a custom name ([a-z0-9]{1,16}).
        #[arg(long, value_name = "ENV")]
        env: Environment,
        /// Display name (1 to 100 characters).
        #[arg(long)]
        name: Name,
        /// A permission (`resource:action`, `resource:*` or `*`); repeatable.
        #[arg(long = "permission", value_name = "P")]
        permissions: Vec<Permission>,
        /// Expiry: RFC 3339 (2027-01-01T00:00:00Z) or a duration from now (90d, 12h).
        #[arg(long, value_name = "WHEN")]
        expires: Option<String>,
        /// Metadata entry; repeatable.
        #[arg(long = "meta", value_name = "K=V")]
        meta: Vec<String>,
    },
    /// Verify a key: exit 0 if valid, 1 if refused (the reason is printed), 2 on error.
    Verify {
        /// The key, or `-` to read it from standard input.
        key: String,
        /// Also require this environment.
        #[arg(long, value_name = "ENV")]
        env: Option<Environment>,
        /// Also require this permission.
        #[arg(long, value_name = "P")]
        permission: Option<Permission>,
    },
    /// Regenerate a key: same id, new key; the old key works for the grace period.
    Regenerate {
        /// The key's id.
        id: CredentialId,
        /// How long the old key keeps working (default 24h).
        #[arg(long, value_name = "DURATION")]
        grace: Option<humantime::Duration>,
        /// How long until the new key works (default 0s).
        #[arg(long, value_name = "DURATION")]
        activation_delay: Option<humantime::Duration>,
        /// End a secret still in an earlier grace period now (otherwise such a regenerate is
        /// refused: a promised grace is never cut without asking).
        #[arg(long)]
        end_earlier_grace: bool,
    },
    /// Regenerate every live key of an account in an environment.
    RegenerateEnv {
        /// The account.
        #[arg(long, value_name = "ID")]
        account: AccountId,
        /// The environment.
        #[arg(long, value_name = "ENV")]
        env: Environment,
    },
    /// Show one key.
    Show {
        /// The key's id.
        id: CredentialId,
    },
    /// List keys.
    List {
        /// Only this account's keys.
        #[arg(long, value_name = "ID")]
        account: Option<AccountId>,
        /// Only this environment.
        #[arg(long, value_name = "ENV")]
        env: Option<Environment>,
        /// Only this type.
        #[arg(long = "type", value_name = "TYPE")]
        key_type: Option<KeyType>,
    },
    /// Revoke a key (every secret of it, at once).
    Revoke {
        /// The key's id.
        id: CredentialId,
    },
    /// Disable a key (refused until enabled).
    Disable {
        /// The key's id.
        id: CredentialId,
    },
    /// Enable a disabled key.
    Enable {
        /// The key's id.
        id: CredentialId,
    },
    /// Apply the rotation policy now: expire, purge, and report keys due for rotation; then
    /// apply the audit log's retention, if given (by default every event is kept).
    Sweep {
        /// Remove audit events older than this (e.g. 400d). The removal is itself an event.
        #[arg(long, value_name = "DURATION")]
        keep_events_for: Option<humantime::Duration>,
        /// Keep at most this many audit events (the newest).
        #[arg(long, value_name = "N")]
        keep_events: Option<u64>,
    },
    /// Write every key (digests, never a key) to a versioned export file, for backup or to
    /// move a deployment to another store (`docs/export-format.md`).
    Export {
        /// Where to write it: a file (replaced only once the export is complete) or `-` for
        /// standard output.
        #[arg(long, short, value_name = "FILE", default_value = "-")]
        output: PathBuf,
    },
    /// Store the keys of an export file, after checking all of it. Keys already present with
    /// identical content are skipped; any other clash refuses the whole import.
    Import {
        /// The export file, or `-` for standard input.
        #[arg(value_name = "FILE")]
        input: PathBuf,
        /// Import even if the file comes from a deployment with another pepper or namespace
        /// (its keys will not verify here).
        #[arg(long)]
        force: bool,
    },
    /// Show the audit log (every management action and refusal), print its head to pin, or
    /// verify its hash chain (exit 1 if broken).
    Events {
        /// Only this key's events.
        #[arg(long, value_name = "ID")]
        key: Option<CredentialId>,
        /// Only events since: an RFC 3339 time, or a duration before now (24h, 7d).
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Only events after this sequence number.
        #[arg(long, value_name = "SEQ", default_value_t = 0)]
        after: u64,
        /// At most this many events.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Verify the hash chain instead: names the first event where it breaks.
        #[arg(long)]
        verify: bool,
        /// Alone: print the head (SEQ:HASH) to pin somewhere else. With --verify: a head pinned
        /// earlier, to also catch a log cut or rewritten after it.
        #[arg(long, value_name = "SEQ:HASH", num_args = 0..=1)]
        head: Option<Option<String>>,
    },
    /// Check the data directory and repair what is safe to repair: modes, crash leftovers,
    /// index entries. Exit 0 healthy, 1 problems found (repaired or not), 2 cannot check.
    Doctor {
        /// Change nothing: say what would be repaired.
        #[arg(long)]
        dry_run: bool,
    },
    /// Serve the HTTP management API.
    Serve {
        /// Address to listen on.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
}

/// A failure, reported as one line.
#[derive(Debug)]
struct Failure(String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Failure {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        Self(e.to_string())
    }
}

type Result<T, E = Failure> = std::result::Result<T, E>;

/// The CLI works on the data directory itself: it acts as the local operator, which may do
/// anything (including recovering a deployment through `init --recover`).
const OP: &Principal = &Principal::LocalOperator;

/// Flattens a message to one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
                || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            {
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
            // clap's first line is the error itself; the rest is usage advice.
            let rendered = e.to_string();
            let first = rendered
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("error: invalid arguments");
            eprintln!("{} (see --help)", one_line(first));
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(&e.0));
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let data = cli.data.as_path();
    let json = cli.json;
    match cli.command {
        Command::Init { backend, recover } => init(data, backend, recover, json),
        Command::Issue {
            account,
            key_type,
            env,
            name,
            permissions,
            expires,
            meta,
        } => {
            let kw = open(data)?;
            let mut new = NewKey::new(account, key_type, env, name)
                .with_permissions(PermissionSet::from(permissions))
                .with_metadata(parse_meta(&meta)?);
            if let Some(expires) = expires {
                new = new.with_expiry(parse_expiry(&expires, kw.now())?);
            }
            let issued = kw.issue(OP, new)?;
            show_issued(&kw, issued, json);
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            key,
            env,
            permission,
        } => verify(data, &key, env.as_ref(), permission.as_ref(), json),
        Command::Regenerate {
            id,
            grace,
            activation_delay,
            end_earlier_grace,
        } => {
            let kw = open(data)?;
            let issued = kw.regenerate(
                OP,
                &id,
                RegenerateOptions {
                    grace_period: grace.map(Into::into),
                    activation_delay: activation_delay.map(Into::into),
                    end_earlier_grace,
                },
            )?;
            show_issued(&kw, issued, json);
            Ok(ExitCode::SUCCESS)
        }
        Command::RegenerateEnv { account, env } => {
            let kw = open(data)?;
            // Keys regenerated before a failure are durably rotated: show them, then fail.
            let (issued, skipped, failure) =
                match kw.regenerate_environment(OP, &account, &env, RegenerateOptions::default()) {
                    Ok(done) => (done.issued, done.skipped, None),
                    Err(partial) => (partial.issued, partial.skipped, Some(partial.error)),
                };
            if let (true, Some(e)) = (issued.is_empty(), &failure) {
                return Err(Failure(e.to_string()));
            }
            let now = kw.now();
            let issued: Vec<IssuedKeyView> = issued
                .into_iter()
                .map(|i| IssuedKeyView::of(i, now))
                .collect();
            if json {
                print_json(&json!({ "keys": issued }));
            } else {
                let mut rows = vec![vec![
                    "ID".to_owned(),
                    "TYPE".to_owned(),
                    "NAME".to_owned(),
                    "KEY".to_owned(),
                ]];
                rows.extend(issued.iter().map(|i| {
                    vec![
                        i.api_key.id.to_string(),
                        i.api_key.key_type.to_string(),
                        i.api_key.name.to_string(),
                        i.key.expose_secret().to_owned(),
                    ]
                }));
                print(&table(&rows));
            }
            for s in &skipped {
                eprintln!(
                    "note: {} left alone: {}",
                    s.id,
                    one_line(&s.reason.to_string())
                );
            }
            if issued.is_empty() && skipped.is_empty() {
                eprintln!("note: {account} has no live keys in {env}; nothing was regenerated");
            } else if !issued.is_empty() {
                warn_once(issued.len());
            }
            if let Some(e) = failure {
                return Err(Failure(format!("{e} (the keys above were regenerated)")));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { id } => {
            let kw = open(data)?;
            let c = kw.get(OP, &id)?;
            show_credential(&kw, &c, json);
            Ok(ExitCode::SUCCESS)
        }
        Command::List {
            account,
            env,
            key_type,
        } => {
            let kw = open(data)?;
            let mut query = ListQuery {
                account,
                environment: env,
                key_type,
                after: None,
                limit: 1000,
            };
            let mut items = Vec::new();
            loop {
                let page = kw.list(OP, &query)?;
                items.extend(page.items);
                match page.next {
                    Some(next) => query.after = Some(next),
                    None => break,
                }
            }
            let now = kw.now();
            let items: Vec<KeyView> = items.iter().map(|c| KeyView::of(c, now)).collect();
            if json {
                print_json(&json!({ "data": items, "count": items.len() }));
            } else {
                print(&credential_table(&items));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Revoke { id } => change(data, json, "revoked", |kw| kw.revoke(OP, &id)),
        Command::Disable { id } => change(data, json, "disabled", |kw| kw.disable(OP, &id)),
        Command::Enable { id } => change(data, json, "enabled", |kw| kw.enable(OP, &id)),
        Command::Sweep {
            keep_events_for,
            keep_events,
        } => {
            let retention = keyward::audit::Retention {
                max_age: keep_events_for.map(Into::into),
                max_count: keep_events,
            };
            sweep(data, retention, json)
        }
        Command::Events {
            key,
            since,
            after,
            limit,
            verify,
            head,
        } => {
            let kw = open(data)?;
            let request = events::Request {
                key,
                since,
                after,
                limit,
                verify,
                head,
                json,
            };
            events::run(&kw, request)
        }
        Command::Export { output } => export(data, &output, json),
        Command::Doctor { dry_run } => doctor(data, dry_run, json),
        Command::Import { input, force } => import(data, &input, force, json),
        Command::Serve { listen } => serve(data, listen),
    }
}

// ----- data directory -----------------------------------------------------------------------

impl From<DataDirError> for Failure {
    fn from(e: DataDirError) -> Self {
        Self(e.to_string())
    }
}

/// Prints the records that could not be read when the store was opened.
fn warn_startup(kw: &Keyward) {
    for what in kw.recovered_at_open() {
        eprintln!("note: recovered after a crash: {}", one_line(what));
    }
    for e in kw.startup_errors() {
        eprintln!("warning: {}", one_line(&e.to_string()));
    }
}

/// Opens the deployment in the data directory (whichever store it holds).
fn open(data: &Path) -> Result<Keyward> {
    let kw = DataDir::new(data).open()?;
    warn_startup(&kw);
    Ok(kw)
}

fn init(data: &Path, backend: Option<StoreKind>, recover: bool, json: bool) -> Result<ExitCode> {
    let dir = DataDir::new(data);
    let config = dir.init(backend)?;
    let kw = dir.open_config(config)?;
    warn_startup(&kw);
    let which = if recover {
        OperatorKey::Recover
    } else {
        OperatorKey::First
    };
    let issued = kw.issue_operator_key(OP, which).map_err(|e| match e {
        EngineError::AlreadyInitialised { keys } => Failure(format!(
            "{} is already initialised ({keys} key{} stored); init issues the first admin key \
             only once: use `keyward issue` for more keys, or `keyward init --recover` for \
             another operator key",
            data.display(),
            if keys == 1 { "" } else { "s" }
        )),
        other => other.into(),
    })?;
    show_issued(&kw, issued, json);
    Ok(ExitCode::SUCCESS)
}

// ----- commands -----------------------------------------------------------------------------

fn parse_meta(entries: &[String]) -> Result<Metadata> {
    let mut meta = Metadata::new();
    for entry in entries {
        let (k, v) = entry
            .split_once('=')
            .ok_or_else(|| format!("--meta {entry:?}: expected KEY=VALUE"))?;
        meta.insert(k.to_owned(), v.to_owned())
            .map_err(|e| format!("--meta {k:?}: {e}"))?;
    }
    Ok(meta)
}

fn parse_expiry(s: &str, now: Timestamp) -> Result<Timestamp> {
    let t = match s.parse::<Timestamp>() {
        Ok(t) => t,
        Err(_) => match humantime::parse_duration(s) {
            Ok(d) => now.saturating_add(d),
            Err(_) => {
                return Err(format!(
                    "--expires {s:?}: expected an RFC 3339 time (2027-01-01T00:00:00Z) or a \
                     duration (90d, 12h)"
                )
                .into());
            }
        },
    };
    Ok(t)
}

fn warn_once(n: usize) {
    if n == 1 {
        eprintln!("warning: store this key now: it is shown only once and cannot be recovered");
    } else {
        eprintln!(
            "warning: store these keys now: they are shown only once and cannot be recovered"
        );
    }
}

/// Prints a key record and its plaintext key (called only after the write returned, so the
/// key is durably stored).
fn show_issued(kw: &Keyward, issued: Issued, json: bool) {
    let view = IssuedKeyView::of(issued, kw.now());
    if json {
        print_json(&view);
    } else {
        let mut rows = credential_rows(&view.api_key);
        rows.push(vec!["key".into(), view.key.expose_secret().to_owned()]);
        print(&table(&rows));
    }
    warn_once(1);
}

fn show_credential(kw: &Keyward, c: &Credential, json: bool) {
    let view = KeyView::of(c, kw.now());
    if json {
        print_json(&view);
    } else {
        print(&table(&credential_rows(&view)));
    }
}

fn change(
    data: &Path,
    json: bool,
    what: &str,
    f: impl FnOnce(&Keyward) -> Result<std::sync::Arc<Credential>, EngineError>,
) -> Result<ExitCode> {
    let kw = open(data)?;
    let c = f(&kw)?;
    if json {
        print_json(&KeyView::of(&c, kw.now()));
    } else {
        print(&format!("{what} {}\n", c.id));
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(
    data: &Path,
    key: &str,
    env: Option<&Environment>,
    permission: Option<&Permission>,
    json: bool,
) -> Result<ExitCode> {
    let key = if key == "-" {
        let mut s = String::new();
        io::stdin()
            .take(4096)
            .read_to_string(&mut s)
            .map_err(|e| format!("cannot read the key from standard input: {e}"))?;
        s.trim().to_owned()
    } else {
        key.to_owned()
    };
    let kw = open(data)?;
    let outcome = kw.verify_for(&key, env, permission);
    if json {
        print_json(&VerifyView::of(&outcome));
    } else {
        match &outcome {
            Ok(v) => print(&format!(
                "valid: {} (account {}, {}, {}{})\n",
                v.id(),
                v.account(),
                v.environment(),
                v.key_type(),
                v.expires_at()
                    .map(|t| format!(", works until {t}"))
                    .unwrap_or_default()
            )),
            Err(e) => print(&format!("refused: {} ({e})\n", e.code())),
        }
    }
    Ok(if outcome.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn sweep(data: &Path, retention: keyward::audit::Retention, json: bool) -> Result<ExitCode> {
    let dir = DataDir::new(data);
    let kw = dir.open_config(dir.config()?.with_retention(retention))?;
    warn_startup(&kw);
    let report = kw.sweep(OP, kw.now())?;
    let ids = |v: &[CredentialId]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
    if json {
        print_json(&json!({
            "examined": report.examined,
            "expired": ids(&report.expired),
            "rotation_due": ids(&report.rotation_due),
            "expiring_soon": report.expiring_soon.iter()
                .map(|(id, t)| json!({"id": id.as_str(), "expires_at": t.to_string()}))
                .collect::<Vec<_>>(),
            "purged": report.purged.iter()
                .map(|(id, v)| json!({"id": id.as_str(), "version": v}))
                .collect::<Vec<_>>(),
            "events_trimmed": report.events_trimmed,
        }));
    } else {
        let list = |v: Vec<String>| {
            if v.is_empty() {
                "-".to_owned()
            } else {
                v.join(", ")
            }
        };
        let rows = vec![
            vec!["examined".into(), report.examined.to_string()],
            vec!["expired".into(), list(ids(&report.expired))],
            vec!["rotation due".into(), list(ids(&report.rotation_due))],
            vec![
                "expiring soon".into(),
                list(
                    report
                        .expiring_soon
                        .iter()
                        .map(|(id, t)| format!("{id} ({t})"))
                        .collect(),
                ),
            ],
            vec![
                "purged".into(),
                list(
                    report
                        .purged
                        .iter()
                        .map(|(id, v)| format!("{id} v{v}"))
                        .collect(),
                ),
            ],
            vec![
                "audit events trimmed".into(),
                report.events_trimmed.to_string(),
            ],
        ];
        print(&table(&rows));
    }
    Ok(ExitCode::SUCCESS)
}

fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

fn export(data: &Path, output: &Path, json: bool) -> Result<ExitCode> {
    let kw = open(data)?;
    let (summary, shown) = if is_stdio(output) {
        let mut out = io::BufWriter::new(io::stdout().lock());
        let summary = kw
            .export(OP, &mut out)
            .map_err(|e| Failure(e.to_string()))?;
        (summary, "standard output".to_owned())
    } else {
        (export_to_file(&kw, output)?, output.display().to_string())
    };
    if is_stdio(output) {
        // Standard output carries the export: the summary goes to standard error.
        eprintln!(
            "exported {} key(s) (digest {})",
            summary.count, summary.digest
        );
    } else if json {
        print_json(&json!({
            "output": shown,
            "count": summary.count,
            "digest": summary.digest,
            "pepper_id": summary.pepper_id,
        }));
    } else {
        print(&table(&[
            vec!["output".into(), shown],
            vec!["keys".into(), summary.count.to_string()],
            vec!["digest".into(), summary.digest],
            vec!["pepper id".into(), summary.pepper_id],
        ]));
    }
    Ok(ExitCode::SUCCESS)
}

/// Exports into a temporary file next to `path` (mode 0600), made durable and then renamed
/// over `path`: `path` is either the old file or the whole new export, never a part.
fn export_to_file(kw: &Keyward, path: &Path) -> Result<keyward::ExportSummary> {
    let name = path
        .file_name()
        .ok_or_else(|| format!("--output {}: not a file name", path.display()))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".partial-{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options
        .open(&tmp)
        .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let result = (|| {
        let mut out = io::BufWriter::new(file);
        let summary = kw
            .export(OP, &mut out)
            .map_err(|e| Failure(e.to_string()))?;
        let file = out
            .into_inner()
            .map_err(|e| format!("cannot write {}: {}", tmp.display(), e.error()))?;
        file.sync_all()
            .map_err(|e| format!("cannot sync {}: {e}", tmp.display()))?;
        fs::rename(&tmp, path)
            .map_err(|e| format!("cannot rename {} to {}: {e}", tmp.display(), path.display()))?;
        #[cfg(unix)]
        fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| format!("cannot sync {}: {e}", dir.display()))?;
        Ok(summary)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn import(data: &Path, input: &Path, force: bool, json: bool) -> Result<ExitCode> {
    let kw = open(data)?;
    let options = keyward::ImportOptions { force };
    let result = if is_stdio(input) {
        kw.import_with(OP, &mut io::stdin().lock(), options)
    } else {
        let file =
            fs::File::open(input).map_err(|e| format!("cannot open {}: {e}", input.display()))?;
        kw.import_with(OP, &mut io::BufReader::new(file), options)
    };
    let summary = result.map_err(|e| Failure(e.to_string()))?;
    if json {
        print_json(&json!({
            "records": summary.records,
            "imported": summary.imported,
            "skipped": summary.skipped,
        }));
    } else {
        print(&table(&[
            vec!["records".into(), summary.records.to_string()],
            vec!["imported".into(), summary.imported.to_string()],
            vec![
                "skipped (already present)".into(),
                summary.skipped.to_string(),
            ],
        ]));
    }
    Ok(ExitCode::SUCCESS)
}

fn doctor(data: &Path, dry_run: bool, json: bool) -> Result<ExitCode> {
    use keyward::doctor::{self, DoctorOptions};
    let report = doctor::run(&DataDir::new(data), DoctorOptions { dry_run })?;
    if json {
        let findings: Vec<_> = report
            .findings
            .iter()
            .map(|f| {
                json!({
                    "check": f.check.as_str(),
                    "status": f.status.as_str(),
                    "detail": f.detail,
                    "action": f.action.as_str(),
                    "action_detail": f.action.text(),
                })
            })
            .collect();
        print_json(&json!({
            "dir": report.dir.display().to_string(),
            "store": report.store.map(StoreKind::as_str),
            "dry_run": report.dry_run,
            "healthy": report.healthy(),
            "records": report.records,
            "repaired": report.repaired(),
            "unrepaired": report.unrepaired(),
            "findings": findings,
        }));
    } else {
        let mut rows = vec![vec![
            "CHECK".to_owned(),
            "STATUS".to_owned(),
            "FOUND".to_owned(),
            "ACTION".to_owned(),
        ]];
        rows.extend(report.findings.iter().map(|f| {
            let action = match &f.action {
                keyward::doctor::Action::None => "-".to_owned(),
                keyward::doctor::Action::Repaired(s) => format!("repaired: {s}"),
                keyward::doctor::Action::WouldRepair(s) => format!("would repair: {s}"),
                keyward::doctor::Action::Manual(s) => format!("not repaired: {s}"),
            };
            vec![
                f.check.as_str().to_owned(),
                f.status.as_str().to_owned(),
                one_line(&f.detail),
                action,
            ]
        }));
        print(&table(&rows));
        let problems = report.problems().count();
        let summary = if report.healthy() {
            "healthy".to_owned()
        } else if report.dry_run {
            format!(
                "{problems} problem(s) found; dry run: nothing was changed ({} would be \
                 repaired)",
                report
                    .problems()
                    .filter(|f| matches!(f.action, keyward::doctor::Action::WouldRepair(_)))
                    .count()
            )
        } else {
            format!(
                "{problems} problem(s) found: {} repaired, {} not repaired",
                report.repaired(),
                report.unrepaired()
            )
        };
        print(&format!("\n{summary}\n"));
    }
    Ok(if report.healthy() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn serve(data: &Path, listen: SocketAddr) -> Result<ExitCode> {
    let kw = open(data)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let local = listener
            .local_addr()
            .map_err(|e| format!("cannot read the listening address: {e}"))?;
        eprintln!("keyward: serving the management API on http://{local} (Ctrl-C stops)");
        keyward::http::serve_listener(kw, listener, keyward::http::shutdown_signal())
            .await
            .map_err(|e| Failure(format!("server failed: {e}")))
    })?;
    eprintln!("keyward: stopped");
    Ok(ExitCode::SUCCESS)
}
