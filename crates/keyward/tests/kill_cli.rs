//! Kill harness for the `keyward` binary: a gateway in a crash loop. One data directory is
//! initialised once (not killed); then random commands (`issue`, `list`, `verify`,
//! `regenerate`, `revoke`, `show`, `sweep`) run one after another against it. A quarter finish;
//! the rest are SIGKILLed in their first 2 ms or at a moment drawn uniformly over 1.2 times that
//! command's typical life (measured as the run goes, per command).
//!
//! A key printed (complete JSON on stdout) before the kill is acknowledged. After every command:
//! the store opened (the next command is the proof that the previous kill left an openable
//! store), and a finished command answered as the model says (a valid key verifies, a refused
//! one does not, every acknowledged id is listed, a revoked one shows as revoked). Every ten
//! commands and at the end, the data directory is opened with the library: the backend's own
//! index check is clean, no record is undecodable, every acknowledged key verifies unless its
//! revocation (or a regeneration that ended it) was acknowledged, and what a killed command left
//! in doubt is settled from the store for the commands that follow.
//!
//! The audit log: after every kill `keyward events --verify` exits 0 (the chain is intact).
//! At every library check, `keyward events --json` holds every acknowledged `issue`,
//! `regenerate` and `revoke` exactly once (by action and key id) and a killed one at most once;
//! every key's revision is the number of successful events naming it (each change is one
//! revision and one event: never a change without its event nor an event without its change);
//! no successful event names a key the store lacks. Killed actions are then settled like keys.
//!
//! The backend is chosen by `keyward init --backend` when the binary has it; before that, sled
//! (the only store `init` makes) runs and redb says it is skipped.
//!
//! `KEYWARD_KILL_SEED=<n>` replays a run's choices (kill moments still depend on timing);
//! `KEYWARD_KILL_ROUNDS=<n>` sets the kills of the long (`--ignored`) tests. Each run prints a
//! one-line summary, with the audit's: acknowledged actions, killed ones found, missing and
//! duplicate events, chain breaks, changes and events without each other.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use keyward::core::{KeyFormat, Pepper};
use keyward::store::{RedbStore, SledStore};
use keyward::{Backend as EngineBackend, Config, Keyward};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_keyward");
const PEPPER_HEX: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

/// The backend a data directory is initialised with.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Sled,
    Redb,
}

/// Whether this build's `keyward init` takes `--backend redb|sled`.
fn init_has_backend_flag() -> bool {
    let out = Command::new(BIN).args(["init", "--help"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).contains("--backend")
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Self::Sled => "sled",
            Self::Redb => "redb",
        }
    }

    /// Where `keyward init` puts this backend's store in the data directory.
    fn store_path(self, data: &Path) -> PathBuf {
        match self {
            Self::Sled => data.join("store"),
            Self::Redb => data.join("keyward.redb"),
        }
    }

    /// The arguments `keyward init` takes to choose this backend: `--backend NAME` when the
    /// binary has the flag; before it, sled is the only store `init` makes (no arguments) and
    /// redb cannot be chosen (`None`).
    fn init_args(self) -> Option<Vec<String>> {
        match (self, init_has_backend_flag()) {
            (_, true) => Some(vec!["--backend".into(), self.name().into()]),
            (Self::Sled, false) => Some(Vec::new()),
            (Self::Redb, false) => None,
        }
    }

    /// Opens the store under `data` with the library, runs the backend's own consistency
    /// check, and hands the store to an engine.
    fn open_library(self, data: &Path) -> Result<Keyward, String> {
        let path = self.store_path(data);
        let (store, problems): (Box<dyn keyward::store::Store>, Vec<String>) = match self {
            Self::Sled => {
                let store = SledStore::open(&path).map_err(|e| e.to_string())?;
                let problems = store.check_indexes().map_err(|e| e.to_string())?;
                (
                    Box::new(store),
                    problems.iter().map(|p| p.to_string()).collect(),
                )
            }
            Self::Redb => {
                let store = RedbStore::open(&path).map_err(|e| e.to_string())?;
                let problems = store.check_indexes().map_err(|e| e.to_string())?;
                (
                    Box::new(store),
                    problems.iter().map(|p| p.to_string()).collect(),
                )
            }
        };
        if !problems.is_empty() {
            return Err(format!("index problems: {problems:?}"));
        }
        let config = Config::new(EngineBackend::Custom(store))
            .with_pepper(Pepper::from_hex(PEPPER_HEX).unwrap());
        let kw = Keyward::open(config).map_err(|e| e.to_string())?;
        if !kw.startup_errors().is_empty() {
            return Err(format!("startup errors: {:?}", kw.startup_errors()));
        }
        Ok(kw)
    }
}

/// splitmix64: small, seedable, good enough to pick moments and commands.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn duration(&mut self, max: Duration) -> Duration {
        Duration::from_micros(self.below(max.as_micros().max(1) as u64))
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

// ---------------------------------------------------------------------------------------------
// Running one command.

/// How one command ended.
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Ran {
    fn killed(&self) -> bool {
        self.status.signal() == Some(9)
    }

    /// The command's JSON answer, if it printed it completely.
    fn json(&self) -> Option<Value> {
        let line = self.stdout.lines().next()?;
        self.stdout
            .ends_with('\n')
            .then(|| serde_json::from_str(line).ok())
            .flatten()
    }
}

/// Runs `keyward --data DATA --json ARGS`, SIGKILLed `kill_after` after the spawn unless it
/// finished by then.
fn keyward(data: &Path, args: &[String], kill_after: Duration) -> Ran {
    let spawned = Instant::now();
    let mut child = Command::new(BIN)
        .arg("--data")
        .arg(data)
        .arg("--json")
        .args(args)
        .env_remove("KEYWARD_DATA")
        .env("KEYWARD_PEPPER", PEPPER_HEX)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = pipe.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let stdout = read(Box::new(child.stdout.take().unwrap()));
    let stderr = read(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        let left = kill_after.saturating_sub(spawned.elapsed());
        if left.is_zero() {
            child.kill().unwrap();
            break child.wait().unwrap();
        }
        std::thread::sleep(left.min(Duration::from_micros(500)));
    };
    Ran {
        status,
        took: spawned.elapsed(),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

// ---------------------------------------------------------------------------------------------
// The model: what was acknowledged.

/// What a key must do when verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Valid,
    Refused,
    /// A command that could have changed it was killed before it answered.
    Either,
}

/// One acknowledged credential: its keys, oldest first.
#[derive(Debug, Default)]
struct Cred {
    keys: Vec<(String, Expect)>,
    /// `Some(true)`: its revocation was acknowledged; `None`: a revoke was killed unanswered.
    revoked: Option<bool>,
    /// A regeneration killed unanswered may have added a secret newer than the newest key
    /// here (whose key no one saw).
    unknown_newer: bool,
}

impl Cred {
    fn new(key: &str) -> Self {
        Self {
            keys: vec![(key.to_owned(), Expect::Valid)],
            revoked: Some(false),
            unknown_newer: false,
        }
    }

    /// A write to it was killed before answering: whatever was valid may have changed.
    fn unsettle(&mut self, revoke: bool) {
        for (_, e) in &mut self.keys {
            if *e == Expect::Valid {
                *e = Expect::Either;
            }
        }
        if revoke && self.revoked == Some(false) {
            self.revoked = None;
        }
        self.unknown_newer |= !revoke;
    }
}

/// The command kinds, and how often each runs.
const COMMANDS: [(&str, u64); 7] = [
    ("issue", 25),
    ("list", 10),
    ("verify", 20),
    ("regenerate", 15),
    ("revoke", 8),
    ("show", 12),
    ("sweep", 10),
];

#[derive(Default)]
struct Stats {
    kills: usize,
    /// Kills before the command printed its answer (start, open, warm-up, the operation)...
    kills_before_answer: usize,
    /// ... and after it (shutdown: the store's drop, process exit).
    kills_after_answer: usize,
    kills_by_command: BTreeMap<&'static str, usize>,
    finished: usize,
    open_failures: usize,
    failures: usize,
    library_checks: usize,
    keys_lost: usize,
    /// Warnings the commands printed (other than "store this key now"), with their counts.
    warnings: BTreeMap<String, usize>,
}

/// Mean life of each command kind (exponential moving average of finished runs).
#[derive(Default)]
struct Lives(BTreeMap<&'static str, f64>);

impl Lives {
    fn learn(&mut self, kind: &'static str, took: Duration) {
        let x = took.as_secs_f64();
        let m = self.0.entry(kind).or_insert(x);
        *m = 0.7 * *m + 0.3 * x;
    }

    fn get(&self, kind: &str) -> Option<Duration> {
        self.0.get(kind).map(|s| Duration::from_secs_f64(*s))
    }
}

/// Every file under `dir` with its size, for a failure report.
fn listing(dir: &Path) -> String {
    fn walk(dir: &Path, base: &Path, out: &mut String) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            let _ = writeln!(out, "  (cannot read {})", dir.display());
            return;
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for e in entries {
            let path = e.path();
            let rel = path
                .strip_prefix(base)
                .unwrap_or(&path)
                .display()
                .to_string();
            match e.metadata() {
                Ok(m) if m.is_dir() => {
                    let _ = writeln!(out, "  {rel}/");
                    walk(&path, base, out);
                }
                Ok(m) => {
                    let _ = writeln!(out, "  {rel}  {} bytes", m.len());
                }
                Err(err) => {
                    let _ = writeln!(out, "  {rel}  ({err})");
                }
            }
        }
    }
    let mut out = String::new();
    walk(dir, dir, &mut out);
    out
}

/// Opens the data directory with the library and verifies every acknowledged key against the
/// model; returns the problems. Then, since no command runs and the store is as every killed
/// command left it for good, settles what kills left in doubt: each such key is expected to do
/// from now on what it does now, a killed revocation happened or not, and whether a killed
/// regeneration added a newer secret is known.
fn library_check(
    backend: Backend,
    data: &Path,
    model: &mut BTreeMap<String, Cred>,
    stored: &mut BTreeMap<String, u64>,
) -> Vec<String> {
    let kw = match backend.open_library(data) {
        Ok(kw) => kw,
        Err(e) => return vec![format!("the library cannot open the store: {e}")],
    };
    let format = KeyFormat::default();
    let mut problems = Vec::new();
    // Every credential in the store, with its revision, for the audit check.
    stored.clear();
    let mut query = keyward::store::ListQuery {
        limit: 1000,
        ..keyward::store::ListQuery::default()
    };
    loop {
        match kw.list(&keyward::Principal::LocalOperator, &query) {
            Ok(page) => {
                stored.extend(page.items.iter().map(|c| (c.id.to_string(), c.revision)));
                match page.next {
                    Some(next) => query.after = Some(next),
                    None => break,
                }
            }
            Err(e) => {
                problems.push(format!("listing the store fails: {e}"));
                break;
            }
        }
    }
    for (id, cred) in model.iter_mut() {
        for (key, expect) in &mut cred.keys {
            let verdict = kw.verify(key);
            let valid = verdict.as_ref().is_ok_and(|v| v.id().as_str() == id);
            match expect {
                Expect::Valid if !valid => problems.push(format!(
                    "acknowledged key of {id} does not verify: {:?}",
                    verdict.map(|v| v.id().to_string())
                )),
                Expect::Refused if verdict.is_ok() => {
                    problems.push(format!("refused key of {id} verifies"));
                }
                Expect::Either => {
                    *expect = if valid {
                        Expect::Valid
                    } else {
                        Expect::Refused
                    }
                }
                _ => {}
            }
        }
        let Ok(stored) = kw.get(&keyward::Principal::LocalOperator, &id.parse().unwrap()) else {
            problems.push(format!("acknowledged {id} is missing"));
            continue;
        };
        if cred.revoked.is_none() {
            cred.revoked = Some(stored.secrets.iter().all(|s| s.revoked_at.is_some()));
        }
        let newest_known = cred.keys.last().and_then(|(key, _)| {
            let lookup = format.parse(key).ok()?.lookup();
            stored.secret_by_lookup(&lookup).map(|s| s.version)
        });
        let newest = stored.secrets.iter().map(|s| s.version).max();
        cred.unknown_newer = newest != newest_known;
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// The audit log.

/// The management actions the harness acknowledges one by one.
const ACTIONS: [&str; 3] = ["issue", "regenerate", "revoke"];

/// What the audit log must hold: every acknowledged management action (its answer was
/// printed) exactly once, by action and key id; a killed one at most once.
#[derive(Default)]
struct Audit {
    /// Acknowledged (or, once settled, found) actions: `(action, key id)` to how many.
    acked: BTreeMap<(&'static str, String), usize>,
    /// Actions killed before they answered, not yet settled: `(action, key id)` to how many
    /// (`"*"` for an issue, whose id no one saw).
    pending: BTreeMap<(&'static str, String), usize>,
    /// Acknowledged actions in all.
    acknowledged: usize,
    /// Killed actions found in the log (with their change).
    found_in_flight: usize,
    missing: usize,
    duplicate: usize,
    chain_breaks: usize,
    /// Events without their change, and changes without their event.
    unmatched: usize,
    /// `keyward events --verify` runs, and full comparisons of `keyward events --json`.
    verifies: usize,
    comparisons: usize,
}

impl Audit {
    fn ack(&mut self, action: &'static str, id: &str) {
        *self.acked.entry((action, id.to_owned())).or_default() += 1;
        self.acknowledged += 1;
    }

    fn killed(&mut self, action: &'static str, id: &str) {
        *self.pending.entry((action, id.to_owned())).or_default() += 1;
    }

    /// `keyward events --verify`: the chain must be intact (exit 0).
    fn verify(&mut self, data: &Path) -> Vec<String> {
        self.verifies += 1;
        let never = Duration::from_secs(60);
        let r = keyward(data, &["events".into(), "--verify".into()], never);
        if r.status.code() == Some(0) {
            return Vec::new();
        }
        self.chain_breaks += 1;
        vec![format!(
            "`keyward events --verify` exited {:?}: {} {}",
            r.status.code(),
            r.stdout.trim_end(),
            r.stderr.trim_end()
        )]
    }

    /// Compares `keyward events --json` with the acknowledged actions and with the store
    /// (`stored`: every credential's revision, read by the library just before), then settles
    /// the killed actions: from now on each one found counts as acknowledged, and one not found
    /// never happened.
    ///
    /// * every acknowledged action appears exactly once (by action and key id); a killed one
    ///   at most once;
    /// * model-free: every credential's revision is the number of successful events naming
    ///   it (each change is one revision and one event), and no successful event names a key
    ///   the store lacks (the harness never deletes).
    fn compare(&mut self, data: &Path, stored: &BTreeMap<String, u64>) -> Vec<String> {
        self.comparisons += 1;
        let mut problems = Vec::new();
        let r = keyward(data, &["events".into()], Duration::from_secs(60));
        let Some(answer) = r.json().filter(|_| r.status.success()) else {
            return vec![format!(
                "`keyward events` failed ({:?}): {}",
                r.status.code(),
                r.stderr.trim_end()
            )];
        };
        let events = answer["data"].as_array().cloned().unwrap_or_default();
        if !answer["next_cursor"].is_null() {
            problems.push("`keyward events` did not return the whole log".into());
        }
        let mut named: BTreeMap<String, u64> = BTreeMap::new();
        let mut found: BTreeMap<(&'static str, String), usize> = BTreeMap::new();
        for (i, e) in events.iter().enumerate() {
            if e["seq"].as_u64() != Some(i as u64 + 1) {
                self.chain_breaks += 1;
                problems.push(format!("event {} is at position {}", e["seq"], i + 1));
            }
            let (Some("ok"), Some(id)) = (e["outcome"].as_str(), e["key_id"].as_str()) else {
                continue;
            };
            *named.entry(id.to_owned()).or_default() += 1;
            if let Some(action) = ACTIONS.iter().find(|a| Some(**a) == e["action"].as_str()) {
                *found.entry((action, id.to_owned())).or_default() += 1;
            }
        }
        // Every acknowledged action once; a killed one at most once.
        for (key, want) in &self.acked {
            let got = found.get(key).copied().unwrap_or(0);
            if got < *want {
                self.missing += want - got;
                problems.push(format!(
                    "{} acknowledged {} of {} but {got} events",
                    want, key.0, key.1
                ));
            }
        }
        for ((action, id), got) in &found {
            let want = self.acked.get(&(*action, id.clone())).copied().unwrap_or(0);
            let Some(extra) = got.checked_sub(want).filter(|n| *n > 0) else {
                continue;
            };
            let slot = if *action == "issue" { "*" } else { id.as_str() };
            let allowed = self.pending.entry((action, slot.to_owned())).or_default();
            let explained = extra.min(*allowed);
            *allowed -= explained;
            self.found_in_flight += explained;
            if explained < extra {
                self.duplicate += extra - explained;
                problems.push(format!(
                    "{got} {action} events of {id}: {want} acknowledged, {explained} killed \
                     unanswered"
                ));
            }
        }
        // Each change has its event, each event its change.
        for (id, revision) in stored {
            let n = named.get(id).copied().unwrap_or(0);
            if n != *revision {
                self.unmatched += 1;
                problems.push(format!(
                    "{id} is at revision {revision} but {n} successful events name it"
                ));
            }
        }
        for id in named.keys().filter(|id| !stored.contains_key(*id)) {
            self.unmatched += 1;
            problems.push(format!(
                "successful events name {id}, which is not in the store"
            ));
        }
        // Settle: what was found is acknowledged from now on; what was not never happened.
        for (key, got) in found {
            let want = self.acked.entry(key).or_default();
            *want = (*want).max(got);
        }
        self.pending.clear();
        problems
    }
}

// ---------------------------------------------------------------------------------------------
// The run.

/// `kills` SIGKILLed commands against one data directory of `backend`.
fn run(backend: Backend, kills: usize) {
    let seed = env_u64("KEYWARD_KILL_SEED").unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        t.as_nanos() as u64 ^ u64::from(std::process::id())
    });
    let label = format!("cli {}", backend.name());
    eprintln!("kill test {label}: seed {seed}, {kills} kills");
    let mut rng = Rng(seed);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut init: Vec<String> = vec!["init".into()];
    init.extend(backend.init_args().unwrap());
    let r = keyward(&data, &init, Duration::from_secs(60));
    assert!(r.status.success(), "init failed: {}", r.stderr);
    assert!(
        backend.store_path(&data).exists(),
        "init made no {label} store:\n{}",
        listing(&data)
    );
    let admin = r.json().unwrap();
    let mut model: BTreeMap<String, Cred> = BTreeMap::new();
    model.insert(
        admin["id"].as_str().unwrap().to_owned(),
        Cred::new(admin["key"].as_str().unwrap()),
    );
    let mut audit = Audit::default();
    audit.ack("issue", admin["id"].as_str().unwrap());
    let mut stored = BTreeMap::new();
    let mut lives = Lives::default();
    let mut stats = Stats::default();
    let started = Instant::now();
    let total_weight: u64 = COMMANDS.iter().map(|(_, w)| w).sum();
    let mut round = 0;
    while stats.kills < kills {
        round += 1;
        let mut w = rng.below(total_weight);
        let mut kind = COMMANDS[0].0;
        for (k, weight) in COMMANDS {
            if w < weight {
                kind = k;
                break;
            }
            w -= weight;
        }
        let ids: Vec<String> = model.keys().cloned().collect();
        let id = rng.pick(&ids).clone();
        let grace = *rng.pick(&["1h", "0s"]);
        let mut key_index = 0;
        let args: Vec<String> = match kind {
            "issue" => {
                let key_type = *rng.pick(&["secret", "publishable", "restricted"]);
                let mut a = vec![
                    "issue".into(),
                    "--account".into(),
                    format!("acc_{}", rng.below(4)),
                    "--type".into(),
                    key_type.into(),
                    "--env".into(),
                    rng.pick(&["production", "test"]).to_string(),
                    "--name".into(),
                    "kill test".into(),
                ];
                if key_type == "restricted" {
                    a.extend(["--permission".into(), "business:read".into()]);
                }
                a
            }
            "verify" => {
                key_index = rng.below(model[&id].keys.len() as u64) as usize;
                vec!["verify".into(), model[&id].keys[key_index].0.clone()]
            }
            // A regenerate inside an earlier grace is refused unless asked to end that grace
            // (two live secrets at most): ask, as the model below expects.
            "regenerate" => vec![
                "regenerate".into(),
                id.clone(),
                "--grace".into(),
                grace.into(),
                "--end-earlier-grace".into(),
            ],
            "revoke" | "show" => vec![kind.into(), id.clone()],
            other => vec![other.into()],
        };
        // The first run of each command is not killed: it measures the command's life. Then a
        // quarter are allowed to finish (so that keys get acknowledged), a tenth are killed in
        // their first 2 ms, and the rest at a moment uniform over 1.2 times their life.
        let never = Duration::from_secs(60);
        let kill_after = match (lives.get(kind), rng.below(100)) {
            (None, _) | (_, 0..25) => never,
            (Some(_), 25..35) => rng.duration(Duration::from_millis(2)),
            (Some(life), _) => rng.duration(life.mul_f64(1.2)),
        };
        let r = keyward(&data, &args, kill_after);
        let answer = r.json();
        let context = format!(
            "kill test {label}: seed {seed}, round {round}, kill {}, `keyward {}`",
            stats.kills + 1,
            args.join(" ")
        );
        let mut problems = Vec::new();
        if r.stderr.contains("cannot open") || r.stderr.contains("in use") {
            stats.open_failures += 1;
            problems.push(format!("the store does not open: {}", r.stderr.trim_end()));
        }
        // Other warnings (what recovery did, records that cannot be read) are reported in the
        // summary; an unreadable record also fails the next library check.
        for line in r.stderr.lines() {
            if line.starts_with("warning:") && !line.contains("shown only once") {
                *stats.warnings.entry(line.to_owned()).or_default() += 1;
            }
        }
        if r.killed() {
            stats.kills += 1;
            *stats.kills_by_command.entry(kind).or_default() += 1;
            if answer.is_some() {
                stats.kills_after_answer += 1;
            } else {
                stats.kills_before_answer += 1;
            }
        } else {
            stats.finished += 1;
            lives.learn(kind, r.took);
        }
        let code = r.status.code();
        if let ("issue", Some(a)) = (kind, &answer) {
            // Acknowledged: a new key.
            let new = Cred::new(a["key"].as_str().unwrap());
            model.insert(a["id"].as_str().unwrap().to_owned(), new);
        }
        // The management actions acknowledged (answered), or killed before their answer.
        match (kind, &answer) {
            ("issue", Some(a)) => audit.ack("issue", a["id"].as_str().unwrap()),
            ("regenerate" | "revoke", Some(_)) => audit.ack(kind, &id),
            ("issue", None) if r.killed() => audit.killed("issue", "*"),
            ("regenerate" | "revoke", None) if r.killed() => audit.killed(kind, &id),
            _ => {}
        }
        let cred = model.get_mut(&id).unwrap();
        match (kind, &answer) {
            ("regenerate", Some(a)) => {
                assert_eq!(a["id"].as_str(), Some(id.as_str()), "{context}");
                // It worked, so the key was not revoked.
                cred.revoked = Some(false);
                let newest = cred.keys.len() - 1;
                for (i, (_, e)) in cred.keys.iter_mut().enumerate() {
                    // No grace ends every older secret now; with grace, the newest older
                    // secret keeps working (two live secrets at most), older ones end now. With
                    // grace, a key a killed write left in doubt stays in doubt.
                    let keeps = grace != "0s" && i == newest && !cred.unknown_newer;
                    if grace == "0s" || (*e == Expect::Valid && !keeps) {
                        *e = Expect::Refused;
                    }
                }
                cred.keys
                    .push((a["key"].as_str().unwrap().to_owned(), Expect::Valid));
                cred.unknown_newer = false;
            }
            ("revoke", Some(_)) => {
                cred.revoked = Some(true);
                for (_, e) in &mut cred.keys {
                    *e = Expect::Refused;
                }
            }
            ("verify", _) if !r.killed() => {
                let expect = cred.keys[key_index].1;
                let fine = match code {
                    Some(0) => expect != Expect::Refused,
                    Some(1) => expect != Expect::Valid,
                    _ => false,
                };
                if !fine {
                    stats.keys_lost += usize::from(expect == Expect::Valid);
                    problems.push(format!(
                        "verify of a key of {id} ({expect:?}) exited {code:?}: {} {}",
                        r.stdout.trim_end(),
                        r.stderr.trim_end()
                    ));
                }
            }
            ("list", Some(a)) => {
                let listed: Vec<&str> = a["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|c| c["id"].as_str())
                    .collect();
                for id in model.keys() {
                    if !listed.contains(&id.as_str()) {
                        problems.push(format!("acknowledged {id} is not listed"));
                    }
                }
            }
            ("show", Some(a)) => {
                let status = a["status"].as_str().unwrap_or_default();
                let fine = match cred.revoked {
                    Some(true) => status == "revoked",
                    Some(false) if cred.keys.iter().any(|(_, e)| *e == Expect::Valid) => {
                        status == "active"
                    }
                    _ => true,
                };
                if !fine {
                    problems.push(format!("show {id}: status {status}"));
                }
            }
            // Killed before answering: the write may or may not have happened.
            ("regenerate" | "revoke", None) if r.killed() => cred.unsettle(kind == "revoke"),
            _ => {}
        }
        // A finished command fails only where the model allows it: regenerating a key whose
        // revocation was acknowledged, or may have happened.
        if !r.killed() && code == Some(2) && stats.open_failures == 0 {
            let allowed = kind == "regenerate"
                && cred_revoked_maybe(&model, &id)
                && r.stderr.contains("revoked");
            if !allowed {
                problems.push(format!("failed: {}", r.stderr.trim_end()));
            }
        }
        // After every kill the chain is intact.
        if problems.is_empty() && r.killed() {
            problems.extend(audit.verify(&data));
        }
        if problems.is_empty() && (round % 10 == 0 || stats.kills == kills) {
            stats.library_checks += 1;
            let found = library_check(backend, &data, &mut model, &mut stored);
            stats.open_failures += usize::from(found.iter().any(|p| p.contains("cannot open")));
            problems.extend(found);
            if problems.is_empty() {
                problems.extend(audit.verify(&data));
                problems.extend(audit.compare(&data, &stored));
            }
        }
        if !problems.is_empty() {
            stats.failures += 1;
            summary(&label, seed, &stats, &model, &audit, started);
            let kept = tmp.keep();
            panic!(
                "FAILURE ({context}), killed: {}, after {:?}:\n  {}\ndirectory {}:\n{}",
                r.killed(),
                r.took,
                problems.join("\n  "),
                data.display(),
                listing(&kept.join("data"))
            );
        }
    }
    summary(&label, seed, &stats, &model, &audit, started);
}

/// Prints the one-line summary of a run.
fn summary(
    label: &str,
    seed: u64,
    stats: &Stats,
    model: &BTreeMap<String, Cred>,
    audit: &Audit,
    started: Instant,
) {
    let keys: usize = model.values().map(|c| c.keys.len()).sum();
    let must_verify: usize = model
        .values()
        .flat_map(|c| &c.keys)
        .filter(|(_, e)| *e == Expect::Valid)
        .count();
    eprintln!(
        "kill test {label}: seed {seed}: {} kills ({} before the answer, {} after it; {:?}), \
         {} finished commands, {} reopen failures, {} failed checks, {} library checks, {} keys \
         acknowledged on {} credentials ({} must verify), {} keys lost; audit: {} acknowledged \
         actions, {} killed ones found, {} missing, {} duplicate events, {} chain breaks, {} \
         events without their change or changes without their event ({} verifications, {} \
         comparisons); warnings {:?}; {:?} in all",
        stats.kills,
        stats.kills_before_answer,
        stats.kills_after_answer,
        stats.kills_by_command,
        stats.finished,
        stats.open_failures,
        stats.failures,
        stats.library_checks,
        keys,
        model.len(),
        must_verify,
        stats.keys_lost,
        audit.acknowledged,
        audit.found_in_flight,
        audit.missing,
        audit.duplicate,
        audit.chain_breaks,
        audit.unmatched,
        audit.verifies,
        audit.comparisons,
        stats.warnings,
        started.elapsed(),
    );
}

/// Whether `id`'s revocation was acknowledged or may have happened.
fn cred_revoked_maybe(model: &BTreeMap<String, Cred>, id: &str) -> bool {
    model.get(id).is_some_and(|c| c.revoked != Some(false))
}

/// Runs `run(backend, …)` if this `keyward` can make a `backend` store, and says so loudly if it
/// cannot (redb, before `keyward init --backend` exists).
fn run_if_possible(backend: Backend, kills: usize) {
    if backend.init_args().is_none() {
        eprintln!(
            "kill test cli {0}: SKIPPED: this keyward's init cannot choose the {0} backend \
             (no `init --backend`)",
            backend.name()
        );
        return;
    }
    run(backend, kills);
}

fn long_rounds() -> usize {
    env_u64("KEYWARD_KILL_ROUNDS").map_or(1000, |n| n as usize)
}

#[test]
fn kill_cli_sled() {
    run_if_possible(Backend::Sled, 60);
}

#[test]
fn kill_cli_redb() {
    run_if_possible(Backend::Redb, 60);
}

/// `cargo test -p keyward --features cli --test kill_cli -- --ignored --nocapture`.
#[test]
#[ignore = "long: 1000 kills by default (KEYWARD_KILL_ROUNDS)"]
fn kill_cli_sled_long() {
    run_if_possible(Backend::Sled, long_rounds());
}

#[test]
#[ignore = "long: 1000 kills by default (KEYWARD_KILL_ROUNDS)"]
fn kill_cli_redb_long() {
    run_if_possible(Backend::Redb, long_rounds());
}
