//! `keyward`: the operator's command line. Issue, verify, regenerate and revoke API keys in a
//! local sled store, and serve the HTTP management API.
//!
//! Exit status: 0 on success; for `verify`, 1 when the key is refused; 2 on any error (one
//! line on stderr).
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "keyward/output.rs"]
mod output;

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use keyward::core::{
    AccountId, Credential, CredentialId, Environment, KeyType, Metadata, Name, Pepper, Permission,
    PermissionSet, Timestamp,
};
use keyward::rotation::RegenerateOptions;
use keyward::store::{ListQuery, StoreError};
use keyward::{Config, EngineError, Issued, Keyward, NewKey};
use serde_json::json;

use output::{credential_json, credential_rows, credential_table, print, print_json, table};

/// Issue, verify, regenerate and revoke API keys; serve the management API.
#[derive(Debug, Parser)]
#[command(name = "keyward", version, max_term_width = 100)]
struct Cli {
    /// Data directory: the sled store (`DIR/store`) and the pepper (`DIR/pepper`).
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
    /// Create the store and the pepper, and print a first admin key (once).
    Init {
        /// Account of the admin key.
        #[arg(long, value_name = "ID", default_value = "acc_admin")]
        account: AccountId,
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
    /// Apply the rotation policy now: expire, purge, and report keys due for rotation.
    Sweep,
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
        Command::Init { account } => init(data, account, json),
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
            let issued = kw.issue(new)?;
            show_issued(&kw, &issued, json);
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
        } => {
            let kw = open(data)?;
            let issued = kw.regenerate(
                &id,
                RegenerateOptions {
                    grace_period: grace.map(Into::into),
                    activation_delay: activation_delay.map(Into::into),
                },
            )?;
            show_issued(&kw, &issued, json);
            Ok(ExitCode::SUCCESS)
        }
        Command::RegenerateEnv { account, env } => {
            let kw = open(data)?;
            // Keys regenerated before a failure are durably rotated: show them, then fail.
            let (issued, failure) =
                match kw.regenerate_environment(&account, &env, RegenerateOptions::default()) {
                    Ok(issued) => (issued, None),
                    Err(partial) => (partial.issued, Some(partial.error)),
                };
            if let (true, Some(e)) = (issued.is_empty(), &failure) {
                return Err(Failure(e.to_string()));
            }
            let now = kw.now();
            if json {
                let keys: Vec<_> = issued
                    .iter()
                    .map(|i| {
                        let mut v = credential_json(&i.credential, now);
                        v["key"] = json!(i.key.expose_secret());
                        v
                    })
                    .collect();
                print_json(&json!({ "keys": keys }));
            } else {
                let mut rows = vec![vec![
                    "ID".to_owned(),
                    "TYPE".to_owned(),
                    "NAME".to_owned(),
                    "KEY".to_owned(),
                ]];
                rows.extend(issued.iter().map(|i| {
                    vec![
                        i.credential.id.to_string(),
                        i.credential.key_type.to_string(),
                        i.credential.name.to_string(),
                        i.key.expose_secret().to_owned(),
                    ]
                }));
                print(&table(&rows));
            }
            if issued.is_empty() {
                eprintln!("note: {account} has no live keys in {env}; nothing was regenerated");
            } else {
                warn_once(issued.len());
            }
            if let Some(e) = failure {
                return Err(Failure(format!("{e} (the keys above were regenerated)")));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { id } => {
            let kw = open(data)?;
            let c = kw.get(&id)?;
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
                let page = kw.list(&query)?;
                items.extend(page.items);
                match page.next {
                    Some(next) => query.after = Some(next),
                    None => break,
                }
            }
            let now = kw.now();
            if json {
                let data: Vec<_> = items.iter().map(|c| credential_json(c, now)).collect();
                print_json(&json!({ "data": data, "count": items.len() }));
            } else {
                print(&credential_table(&items, now));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Revoke { id } => change(data, json, "revoked", |kw| kw.revoke(&id)),
        Command::Disable { id } => change(data, json, "disabled", |kw| kw.disable(&id)),
        Command::Enable { id } => change(data, json, "enabled", |kw| kw.enable(&id)),
        Command::Sweep => sweep(data, json),
        Command::Serve { listen } => serve(data, listen),
    }
}

// ----- store and pepper ---------------------------------------------------------------------

fn pepper_path(data: &Path) -> PathBuf {
    data.join("pepper")
}

fn store_path(data: &Path) -> PathBuf {
    data.join("store")
}

/// The pepper from `KEYWARD_PEPPER` (if set and not empty).
fn pepper_from_env() -> Result<Option<Pepper>> {
    match std::env::var("KEYWARD_PEPPER") {
        Ok(hex) if !hex.trim().is_empty() => Pepper::from_hex(&hex)
            .map(Some)
            .ok_or_else(|| "KEYWARD_PEPPER must be 64 hexadecimal characters (32 bytes)".into()),
        _ => Ok(None),
    }
}

fn read_pepper_file(path: &Path) -> Result<Option<Pepper>> {
    match fs::read_to_string(path) {
        Ok(text) => Pepper::from_hex(&text).map(Some).ok_or_else(|| {
            format!(
                "{} does not hold 64 hexadecimal characters (32 bytes)",
                path.display()
            )
            .into()
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display()).into()),
    }
}

fn open_error(data: &Path, e: EngineError) -> Failure {
    match e {
        EngineError::Store(StoreError::InUse { .. }) => Failure(format!(
            "store is in use: {} is held open by another process (is `keyward serve` running? \
             stop it, or use its HTTP API)",
            store_path(data).display()
        )),
        // Already names the directory and says what to do.
        EngineError::Store(e @ StoreError::Unopenable { .. }) => Failure(e.to_string()),
        other => Failure(format!(
            "cannot open the store at {}: {other}",
            store_path(data).display()
        )),
    }
}

fn open_with(data: &Path, pepper: Pepper) -> Result<Keyward> {
    let kw = Keyward::open(Config::sled(store_path(data)).with_pepper(pepper))
        .map_err(|e| open_error(data, e))?;
    for e in kw.startup_errors() {
        eprintln!("warning: {}", one_line(&e.to_string()));
    }
    Ok(kw)
}

/// Opens an initialised store.
fn open(data: &Path) -> Result<Keyward> {
    let pepper = match pepper_from_env()? {
        Some(p) => p,
        None => read_pepper_file(&pepper_path(data))?.ok_or_else(|| {
            format!(
                "no pepper at {} (and KEYWARD_PEPPER is not set): run `keyward init` first, \
                 or point --data / KEYWARD_DATA at an initialised directory",
                pepper_path(data).display()
            )
        })?,
    };
    if !store_path(data).is_dir() {
        return Err(format!(
            "no keyward store at {}: run `keyward init` first",
            store_path(data).display()
        )
        .into());
    }
    open_with(data, pepper)
}

fn random_pepper() -> Result<(Pepper, String)> {
    use rand_core::{OsRng, TryRngCore};
    let mut bytes = [0u8; 32];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| format!("the operating system's random generator failed: {e}"))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let pepper = Pepper::from_bytes(bytes);
    bytes.fill(0);
    Ok((pepper, hex))
}

fn write_pepper(path: &Path, hex: &str) -> Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(format!("{hex}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(())
}

fn create_data_dir(data: &Path) -> Result<()> {
    if data.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(data)
        .map_err(|e| format!("cannot create {}: {e}", data.display()).into())
}

fn admin_permissions() -> Result<PermissionSet> {
    PermissionSet::parse([
        "api-key:read",
        "api-key:write",
        "api-key:verify",
        "api-key:admin",
    ])
    .map_err(|e| Failure(e.to_string()))
}

fn init(data: &Path, account: AccountId, json: bool) -> Result<ExitCode> {
    create_data_dir(data)?;
    let pepper_file = pepper_path(data);
    let pepper = match pepper_from_env()? {
        Some(p) => p,
        None => match read_pepper_file(&pepper_file)? {
            Some(p) => p,
            None if store_path(data).exists() => {
                return Err(format!(
                    "{} exists but {} is missing: restore the pepper file (or set KEYWARD_PEPPER); \
                     a new pepper would make every stored key unverifiable",
                    store_path(data).display(),
                    pepper_file.display()
                )
                .into());
            }
            None => {
                let (pepper, hex) = random_pepper()?;
                write_pepper(&pepper_file, &hex)?;
                pepper
            }
        },
    };
    let kw = open_with(data, pepper)?;
    let existing = kw.store().len();
    if existing > 0 {
        return Err(format!(
            "{} is already initialised ({existing} key{} stored); init issues the first admin key \
             only once: use `keyward issue` for more keys",
            data.display(),
            if existing == 1 { "" } else { "s" }
        )
        .into());
    }
    let name: Name = "admin".parse().map_err(|e| Failure(format!("{e}")))?;
    let new = NewKey::new(account, KeyType::Secret, Environment::Production, name)
        .with_permissions(admin_permissions()?);
    let issued = kw.issue(new)?;
    show_issued(&kw, &issued, json);
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
    if t <= now {
        return Err(format!("--expires {s:?}: must be in the future").into());
    }
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
fn show_issued(kw: &Keyward, issued: &Issued, json: bool) {
    let now = kw.now();
    if json {
        let mut v = credential_json(&issued.credential, now);
        v["key"] = json!(issued.key.expose_secret());
        print_json(&v);
    } else {
        let mut rows = credential_rows(&issued.credential, now);
        rows.push(vec!["key".into(), issued.key.expose_secret().to_owned()]);
        print(&table(&rows));
    }
    warn_once(1);
}

fn show_credential(kw: &Keyward, c: &Credential, json: bool) {
    let now = kw.now();
    if json {
        print_json(&credential_json(c, now));
    } else {
        print(&table(&credential_rows(c, now)));
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
        print_json(&credential_json(&c, kw.now()));
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
    match kw.verify_for(&key, env, permission) {
        Ok(v) => {
            if json {
                print_json(&json!({
                    "valid": true,
                    "code": "valid",
                    "key_id": v.id().as_str(),
                    "account_id": v.account().as_str(),
                    "environment": v.environment().as_str(),
                    "type": v.key_type().as_str(),
                    "permissions": v.permissions().iter().map(|p| p.as_str()).collect::<Vec<_>>(),
                    "meta": v.metadata().as_map(),
                    "expires_at": v.expires_at().map(|t| t.to_string()),
                }));
            } else {
                print(&format!(
                    "valid: {} (account {}, {}, {}{})\n",
                    v.id(),
                    v.account(),
                    v.environment(),
                    v.key_type(),
                    v.expires_at()
                        .map(|t| format!(", works until {t}"))
                        .unwrap_or_default()
                ));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if json {
                print_json(&json!({ "valid": false, "code": e.code(), "reason": e.to_string() }));
            } else {
                print(&format!("refused: {} ({e})\n", e.code()));
            }
            Ok(ExitCode::from(1))
        }
    }
}

fn sweep(data: &Path, json: bool) -> Result<ExitCode> {
    let kw = open(data)?;
    let report = kw.sweep(kw.now())?;
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
        ];
        print(&table(&rows));
    }
    Ok(ExitCode::SUCCESS)
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
