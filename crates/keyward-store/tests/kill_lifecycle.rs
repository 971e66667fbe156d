//! Kill harness over a process's whole life, per backend, in the style sled and redb use to test
//! themselves. The test binary re-executes itself as a child (`kill_child`) that
//!
//! * in **lifecycle** mode OPENS the store (`PHASE open`), WARMS an [`IndexedStore`] over it
//!   (`PHASE warm`), does a given number of writes, often none or a few (`PHASE write`), DROPS the
//!   store (`PHASE drop`: shutdown, the backend's last flush) and EXITS (`PHASE exit`);
//! * in **writer** mode opens and warms the same way, then writes until it is killed.
//!
//! Each write carries its audit event, as the engine's do ([`IndexedStore::put_with`], one
//! [`Store::commit`]): the event continues the log (sequence number `last + 1`) and its bytes
//! name the operation, the credential, the revision written and a digest of the event before
//! (a chain). One write in ten is a refusal: an event alone ([`Store::append_event`]).
//! Before each write the child prints
//! `BEGIN <op> <id> <hex of the record it expects stored, or -> <event seq> <hex of the event>`,
//! and after the write returned `Ok`, `ACK <op> <id> <revision> <key or -> <event seq>`: only
//! then is the write acknowledged. The parent SIGKILLs the child at a random moment. In lifecycle mode the
//! moment is in the first 2 ms (15%), uniform over 1.2 times the child's expected life (40%;
//! measured as it goes: start, open, warm-up, one write, shutdown; some children live to exit on
//! their own), or uniform inside one phase (open, warm-up, writes, shutdown, each as likely),
//! timed from that phase's marker (45%), so kills land in every phase, short ones included.
//! After every round the parent checks the store on a copy of its directory (so that only the
//! children do the backend's recovery work, as a crash-looping gateway would):
//!
//! * it opens (a failure prints the directory listing with sizes and the seed);
//! * every record is exactly its last acknowledged state, or the one in-flight write complete
//!   (which is then adopted); no record appears that no child began writing; none is missing;
//! * every acknowledged key is found by its lookup tag and verifies; acknowledged revocations hold;
//! * the backend's own index check is clean, the trait-level views agree with the records, and a
//!   strict [`IndexedStore::open`] finds every acknowledged key;
//! * the audit log is gapless from 1 and chained; it holds exactly the acknowledged events, in
//!   order, then at most the in-flight write's event, present exactly when the in-flight record
//!   change is in the store (then adopted); every record's revision is the number of change
//!   events naming it, and no event names a record the store lacks.
//!
//! `KEYWARD_KILL_SEED=<n>` replays a run's choices (kill moments still depend on timing);
//! `KEYWARD_KILL_ROUNDS=<n>` sets the kills of the long (`--ignored`) tests. Each run prints a
//! one-line summary: kills per phase, reopen failures, acknowledged writes and keys, keys lost,
//! events (missing, duplicate, chain breaks, without their change) and what the backend's
//! recovery at open removed.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use keyward_core::{Credential, Environment, KeyFormat, KeyType, Timestamp};
use keyward_store::conformance::{self, pepper};
use keyward_store::{
    AuditEntry, EVENT_PAGE_MAX, IndexedStore, SledStore, Store, StoreError, encode_credential,
};

/// Set in a child: the store directory.
const CHILD_DIR: &str = "KEYWARD_KILL_CHILD_DIR";
/// Set in a child: the backend (`sled`, `redb`).
const CHILD_BACKEND: &str = "KEYWARD_KILL_CHILD_BACKEND";
/// Set in a child: its random seed.
const CHILD_SEED: &str = "KEYWARD_KILL_CHILD_SEED";
/// Set in a lifecycle child: how many writes before it drops the store and exits. Unset: a
/// writer child, which writes until killed.
const CHILD_WRITES: &str = "KEYWARD_KILL_CHILD_WRITES";

/// The backends under test.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Sled,
    #[cfg(feature = "redb")]
    Redb,
}

/// A store as the parent's check opened it.
struct Opened {
    store: Box<dyn Store>,
    /// What the backend's own consistency check found, as text.
    problems: Vec<String>,
    /// What the backend's recovery at open removed or repaired (crash leftovers), one label each.
    recovered: Vec<String>,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Self::Sled => "sled",
            #[cfg(feature = "redb")]
            Self::Redb => "redb",
        }
    }

    fn from_name(name: &str) -> Self {
        match name {
            "sled" => Self::Sled,
            #[cfg(feature = "redb")]
            "redb" => Self::Redb,
            other => panic!("unknown backend {other}"),
        }
    }

    /// Opens the store kept in the directory `dir`.
    fn open(self, dir: &Path) -> Result<Box<dyn Store>, StoreError> {
        Ok(match self {
            Self::Sled => Box::new(SledStore::open(dir)?),
            #[cfg(feature = "redb")]
            Self::Redb => Box::new(keyward_store::RedbStore::open(dir.join("keyward.redb"))?),
        })
    }

    /// Opens the store and runs the backend's own consistency check.
    fn open_checked(self, dir: &Path) -> Result<Opened, StoreError> {
        fn text<T: ToString>(items: &[T]) -> Vec<String> {
            items.iter().map(ToString::to_string).collect()
        }
        Ok(match self {
            Self::Sled => {
                let store = SledStore::open(dir)?;
                let problems = text(&store.check_indexes()?);
                let recovered = store.recovered().iter().map(recovered_label).collect();
                Opened {
                    store: Box::new(store),
                    problems,
                    recovered,
                }
            }
            #[cfg(feature = "redb")]
            Self::Redb => {
                let store = keyward_store::RedbStore::open(dir.join("keyward.redb"))?;
                Opened {
                    problems: text(&store.check_indexes()?),
                    recovered: store
                        .unfinished_file_removed()
                        .map(|_| "unfinished redb file".to_owned())
                        .into_iter()
                        .collect(),
                    store: Box::new(store),
                }
            }
        })
    }
}

/// A short label for what sled's recovery at open did.
fn recovered_label(r: &keyward_store::sled::Recovered) -> String {
    use keyward_store::sled::Recovered;
    match r {
        Recovered::IncompleteSnapshot { len: 0, .. } => "empty snap.*.generating".into(),
        Recovered::IncompleteSnapshot { .. } => "non-empty snap.*.generating".into(),
        Recovered::DamagedSnapshot { .. } => "damaged newest snapshot".into(),
        Recovered::TruncatedConf { .. } => "truncated conf".into(),
        other => format!("{other:?}"),
    }
}

/// splitmix64: small, seedable, good enough to pick moments and operations.
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

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// A duration drawn uniformly from `[0, max)`.
    fn duration(&mut self, max: Duration) -> Duration {
        Duration::from_micros(self.below(max.as_micros().max(1) as u64))
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

fn seed_from_env_or_clock() -> u64 {
    env_u64("KEYWARD_KILL_SEED").unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        t.as_nanos() as u64 ^ u64::from(std::process::id())
    })
}

fn is_child() -> bool {
    std::env::var(CHILD_DIR).is_ok()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn from_hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// FNV-1a, 64 bits: the child chains its events with it (each event names the digest of the
/// one before), so that the parent can tell a relinked or replaced event.
fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The bytes of the child's audit event: `<op> <credential id> <revision written (0 for a
/// refusal)> <fnv64 of the previous event's bytes, hex>`.
fn event_bytes(op: &str, id: &str, revision: u64, prev: u64) -> Vec<u8> {
    format!("{op} {id} {revision} {prev:016x}").into_bytes()
}

/// One of the child's events, parsed: `(op, id, revision, prev)`.
fn parse_event(bytes: &[u8]) -> Option<(String, String, u64, u64)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let parts: Vec<&str> = text.split(' ').collect();
    match parts.as_slice() {
        [op, id, revision, prev] => Some((
            (*op).to_owned(),
            (*id).to_owned(),
            revision.parse().ok()?,
            u64::from_str_radix(prev, 16).ok()?,
        )),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// The child.

/// Most secrets a child gives one credential (rotation keeps the old ones).
const MAX_SECRETS: usize = 6;

/// Prints one line and flushes it into the pipe before going on.
fn say(out: &mut impl Write, line: &str) {
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// In a child: live the life the environment describes. A no-op in a normal test run.
#[test]
fn kill_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let backend = Backend::from_name(&std::env::var(CHILD_BACKEND).unwrap());
    let mut rng = Rng(env_u64(CHILD_SEED).unwrap());
    let writes = env_u64(CHILD_WRITES);
    let mut out = std::io::stdout().lock();
    // libtest has printed "test kill_child ... " without a newline: start a fresh line.
    say(&mut out, "\nPHASE open");
    let store = match backend.open(Path::new(&dir)) {
        Ok(store) => store,
        Err(e) => {
            say(&mut out, &format!("OPEN FAILED {e}"));
            std::process::exit(3);
        }
    };
    say(&mut out, "PHASE warm");
    let store = IndexedStore::open(store).unwrap();
    // The audit log continues where the earlier children left it.
    let mut last_event = store.backend().last_event().unwrap();
    // Credentials still in use from earlier children, as recovered.
    let mut pool: Vec<Credential> = Vec::new();
    store
        .scan(&mut |r| {
            let c = r.unwrap();
            if c.enabled && c.secrets.len() < MAX_SECRETS {
                pool.push(c);
            }
        })
        .unwrap();
    say(&mut out, "PHASE write");
    let started = Instant::now();
    let mut done = 0;
    // A writer is bounded too, in case no one kills it.
    while writes.map_or(started.elapsed() < Duration::from_secs(60), |n| done < n) {
        let r = rng.below(100);
        let seq = last_event.as_ref().map_or(0, |e| e.seq) + 1;
        let prev = last_event.as_ref().map_or(0, |e| fnv64(&e.bytes));
        if !pool.is_empty() && r >= 90 {
            // A refusal: its event is appended alone, no credential changes.
            let id = rng.pick(&pool).id.to_string();
            let entry = AuditEntry {
                seq,
                bytes: event_bytes("refuse", &id, 0, prev),
            };
            say(
                &mut out,
                &format!("BEGIN refuse {id} - {seq} {}", to_hex(&entry.bytes)),
            );
            store.backend().append_event(&entry).unwrap();
            say(&mut out, &format!("ACK refuse {id} 0 - {seq}"));
            last_event = Some(entry);
            done += 1;
            continue;
        }
        let (op, cred, key) = if pool.len() < 3 || r < 40 {
            let account = format!("acc_{}", rng.below(4));
            let env = [Environment::Production, Environment::Test][rng.below(2) as usize].clone();
            let key_type = KeyType::ALL[rng.below(3) as usize];
            let (c, key) = conformance::issue(&account, env, key_type);
            ("create", c, Some(key))
        } else if r < 80 {
            let i = rng.below(pool.len() as u64) as usize;
            let mut c = pool.swap_remove(i);
            let key = conformance::rotate(&mut c);
            ("rotate", c, Some(key))
        } else {
            let i = rng.below(pool.len() as u64) as usize;
            let mut c = pool.swap_remove(i);
            let now = Timestamp::now();
            for s in &mut c.secrets {
                s.revoked_at.get_or_insert(now);
            }
            c.enabled = false;
            c.modified_at = now;
            ("revoke", c, None)
        };
        let mut expected = cred.clone();
        expected.revision += 1;
        let bytes = encode_credential(&expected).unwrap();
        // The event that records the change names the credential and the revision it makes,
        // so that the parent can match events and records.
        let entry = AuditEntry {
            seq,
            bytes: event_bytes(op, cred.id.as_str(), expected.revision, prev),
        };
        say(
            &mut out,
            &format!(
                "BEGIN {op} {} {} {seq} {}",
                cred.id,
                to_hex(&bytes),
                to_hex(&entry.bytes)
            ),
        );
        let stored = store.put_with(cred, Some(&entry)).unwrap();
        last_event = Some(entry);
        let key = key.as_ref().map_or("-", |k| k.expose_secret());
        say(
            &mut out,
            &format!("ACK {op} {} {} {key} {seq}", stored.id, stored.revision),
        );
        if stored.enabled && stored.secrets.len() < MAX_SECRETS {
            pool.push((*stored).clone());
        }
        done += 1;
    }
    say(&mut out, "PHASE drop");
    drop(store);
    say(&mut out, "PHASE exit");
}

// ---------------------------------------------------------------------------------------------
// Running one child.

/// Where in its life a child was when it died: the last `PHASE` it reported.
const PHASES: [&str; 6] = ["start", "open", "warm", "write", "drop", "exit"];

/// When the parent kills a child.
#[derive(Debug, Clone, Copy)]
enum KillPlan {
    /// This long after the spawn.
    After(Duration),
    /// After this many acknowledgements (the child is then inside its next write), or at the
    /// deadline.
    AfterAcks(usize, Duration),
    /// This long after the child printed this line (a `PHASE` marker).
    AfterLine(&'static str, Duration),
}

/// What one child did: its lines (with when the parent read them), how it ended.
struct Life {
    lines: Vec<(Duration, String)>,
    status: ExitStatus,
    stderr: String,
    ended: Duration,
}

impl Life {
    fn killed(&self) -> bool {
        self.status.signal() == Some(9)
    }

    fn phase(&self) -> &'static str {
        let last = self
            .lines
            .iter()
            .rev()
            .find_map(|(_, l)| l.strip_prefix("PHASE "));
        PHASES
            .iter()
            .find(|p| Some(**p) == last)
            .copied()
            .unwrap_or("start")
    }

    fn time_of(&self, prefix: &str) -> Option<Duration> {
        self.lines
            .iter()
            .find(|(_, l)| l.starts_with(prefix))
            .map(|(t, _)| *t)
    }
}

/// Sends each complete line of `r` (a line cut by the kill is not an acknowledgement).
fn forward_lines(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(r);
        loop {
            let mut line = Vec::new();
            match r.read_until(b'\n', &mut line) {
                Ok(_) if line.ends_with(b"\n") => {
                    let line = String::from_utf8_lossy(&line).trim_end().to_owned();
                    if tx.send(line).is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    });
    rx
}

fn live(backend: Backend, dir: &Path, seed: u64, writes: Option<u64>, plan: KillPlan) -> Life {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "kill_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_BACKEND, backend.name())
        .env(CHILD_SEED, seed.to_string())
        .env_remove(CHILD_WRITES)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(n) = writes {
        command.env(CHILD_WRITES, n.to_string());
    }
    let spawned = Instant::now();
    let mut child = command.spawn().unwrap();
    let lines_rx = forward_lines(child.stdout.take().unwrap());
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr_pipe.read_to_string(&mut s);
        s
    });
    let (mut deadline, target_acks) = match plan {
        KillPlan::After(d) | KillPlan::AfterAcks(_, d) => (d, usize::MAX),
        KillPlan::AfterLine(..) => (Duration::from_secs(60), usize::MAX),
    };
    let target_acks = match plan {
        KillPlan::AfterAcks(n, _) => n,
        _ => target_acks,
    };
    let mut lines = Vec::new();
    let mut acks = 0;
    loop {
        let left = deadline.saturating_sub(spawned.elapsed());
        match lines_rx.recv_timeout(left) {
            Ok(line) => {
                acks += usize::from(line.starts_with("ACK "));
                if let KillPlan::AfterLine(marker, d) = plan
                    && line == marker
                {
                    deadline = spawned.elapsed() + d;
                }
                lines.push((spawned.elapsed(), line));
                if acks >= target_acks {
                    break;
                }
            }
            // The deadline, or the child closed its stdout (it is exiting).
            Err(_) => break,
        }
    }
    // Killing a child that already exited (not yet reaped) is harmless: its status tells.
    child.kill().unwrap();
    // Lines already in the pipe were written before the kill: they count.
    lines.extend(lines_rx.iter().map(|l| (spawned.elapsed(), l)));
    let status = child.wait().unwrap();
    Life {
        lines,
        status,
        stderr: stderr.join().unwrap(),
        ended: spawned.elapsed(),
    }
}

// ---------------------------------------------------------------------------------------------
// The parent: the model of what was acknowledged, and the checks after each kill.

/// What the parent knows about one credential: its last acknowledged (or adopted) record and
/// every key acknowledged for it.
struct Known {
    record: Credential,
    keys: Vec<String>,
}

/// The write a child had begun and not acknowledged when it died.
struct InFlight {
    op: String,
    /// The record it writes; `None` for a refusal (an event alone).
    expected: Option<Credential>,
    /// The event that records it.
    event: AuditEntry,
}

#[derive(Default)]
struct Model {
    known: BTreeMap<String, Known>,
    /// The bytes of every acknowledged (or adopted) event, in order: event `n` is `events[n-1]`.
    events: Vec<Vec<u8>>,
    in_flight: Option<InFlight>,
}

impl Model {
    /// Applies one child line; returns whether it acknowledged a write (with its event, or an
    /// event alone).
    fn apply(&mut self, line: &str) -> bool {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["BEGIN", op, id, record, seq, event] => {
                let expected = (*record != "-").then(|| {
                    keyward_store::decode_credential(id, &from_hex(record)).unwrap_or_else(|e| {
                        panic!("child printed an undecodable record for {id}: {e}")
                    })
                });
                let seq: u64 = seq.parse().unwrap();
                assert_eq!(
                    seq,
                    self.events.len() as u64 + 1,
                    "the child's event does not continue the log the parent knows"
                );
                self.in_flight = Some(InFlight {
                    op: (*op).to_owned(),
                    expected,
                    event: AuditEntry {
                        seq,
                        bytes: from_hex(event),
                    },
                });
                false
            }
            ["ACK", op, id, revision, key, seq] => {
                let f = self.in_flight.take().expect("ACK without BEGIN");
                assert_eq!(f.op.as_str(), *op);
                assert_eq!(f.event.seq.to_string(), *seq);
                self.events.push(f.event.bytes);
                let Some(expected) = f.expected else {
                    return true;
                };
                assert_eq!(expected.id.as_str(), *id);
                assert_eq!(expected.revision.to_string(), *revision);
                let k = self.known.entry((*id).to_owned()).or_insert(Known {
                    record: expected.clone(),
                    keys: Vec::new(),
                });
                k.record = expected;
                if *key != "-" {
                    k.keys.push((*key).to_owned());
                }
                true
            }
            _ => false,
        }
    }

    fn keys(&self) -> usize {
        self.known.values().map(|k| k.keys.len()).sum()
    }
}

/// What a check found.
#[derive(Default)]
struct Checked {
    /// The in-flight write was complete in the store (and is now part of the model).
    adopted: bool,
    /// Acknowledged keys that no longer verify.
    keys_lost: usize,
    /// What the backend's recovery at open did.
    recovered: Vec<String>,
    /// What the events check found (its problems are moved to `problems`).
    events: EventsChecked,
    /// Everything that is wrong; empty if the store is fine.
    problems: Vec<String>,
}

/// What the events check found after one kill.
#[derive(Default)]
struct EventsChecked {
    /// Acknowledged events not in the log (or another event in their place).
    missing: usize,
    /// Events in the log that no acknowledged or in-flight write explains (a second copy of
    /// one, or one no child wrote).
    duplicate: usize,
    /// Gaps in the sequence numbers and events that do not chain to the one before.
    chain_breaks: usize,
    /// Events naming a change the store does not hold, and changes without their event.
    unmatched: usize,
    /// The in-flight write's event was in the log (with its change) and is now acknowledged.
    adopted: bool,
    problems: Vec<String>,
}

/// Checks the audit log against the model, after the records were checked (and the in-flight
/// record adopted, `adopted`, if it was complete):
///
/// * the log is gapless from 1, each event chains to the one before;
/// * it holds exactly the acknowledged events, in order, and then at most the in-flight
///   write's event, present exactly when the in-flight record change is in the store (a
///   refusal's event stands alone);
/// * model-free: every record's revision is the number of change events that name it (each
///   write made one revision and one event), and no event names a record the store lacks.
///
/// Adopts the in-flight event into the model when it is present.
fn check_events(
    store: &dyn Store,
    model: &mut Model,
    in_flight: Option<&InFlight>,
    adopted: bool,
    revisions: &BTreeMap<String, u64>,
    out: &mut EventsChecked,
) {
    let mut log: Vec<AuditEntry> = Vec::new();
    loop {
        let after = log.last().map_or(0, |e| e.seq);
        match store.events(after, EVENT_PAGE_MAX) {
            Ok(page) if page.is_empty() => break,
            Ok(page) => {
                if page.iter().any(|e| e.seq <= after) {
                    out.problems.push(format!(
                        "events({after}) returned events at or before {after}"
                    ));
                    out.chain_breaks += 1;
                    return;
                }
                log.extend(page);
            }
            Err(e) => {
                out.problems.push(format!("reading the events fails: {e}"));
                out.missing += model.events.len();
                return;
            }
        }
    }
    match (store.last_event(), log.last()) {
        (Ok(last), found) if last.as_ref() == found => {}
        (last, found) => out.problems.push(format!(
            "last_event {last:?} is not the last event read {found:?}"
        )),
    }
    // Gapless from 1, and chained.
    let mut prev = 0;
    for (i, e) in log.iter().enumerate() {
        if e.seq != i as u64 + 1 {
            out.chain_breaks += 1;
            out.problems.push(format!(
                "the log has a gap: event {} is at position {}",
                e.seq,
                i + 1
            ));
            return;
        }
        match parse_event(&e.bytes) {
            Some((.., p)) if p == prev => {}
            Some((.., p)) => {
                out.chain_breaks += 1;
                out.problems.push(format!(
                    "event {} chains to {p:016x}, not to the event before ({prev:016x})",
                    e.seq
                ));
            }
            None => {
                out.chain_breaks += 1;
                out.problems
                    .push(format!("event {} is not an event the child wrote", e.seq));
            }
        }
        prev = fnv64(&e.bytes);
    }
    // Exactly the acknowledged events, then at most the in-flight one.
    let acked = model.events.len();
    for (i, want) in model.events.iter().enumerate() {
        match log.get(i) {
            Some(e) if e.bytes == *want => {}
            Some(e) => {
                out.missing += 1;
                out.problems.push(format!(
                    "acknowledged event {} is {:?}, found {:?}",
                    i + 1,
                    String::from_utf8_lossy(want),
                    String::from_utf8_lossy(&e.bytes)
                ));
            }
            None => {
                out.missing += 1;
                out.problems.push(format!(
                    "acknowledged event {} ({:?}) is missing",
                    i + 1,
                    String::from_utf8_lossy(want)
                ));
            }
        }
    }
    let extra = log.get(acked..).unwrap_or_default();
    let flying_event = match (extra, in_flight) {
        ([], _) => false,
        ([e], Some(f)) if *e == f.event => true,
        _ => {
            out.duplicate += extra.len();
            out.problems.push(format!(
                "{} events after the {acked} acknowledged that no in-flight write explains: {:?}",
                extra.len(),
                extra
                    .iter()
                    .map(|e| String::from_utf8_lossy(&e.bytes).into_owned())
                    .collect::<Vec<_>>()
            ));
            false
        }
    };
    if let Some(f) = in_flight {
        let changes = f.expected.is_some();
        if flying_event && changes && !adopted {
            out.unmatched += 1;
            out.problems.push(format!(
                "the in-flight {} event {} is in the log but its change is not in the store",
                f.op, f.event.seq
            ));
        }
        if adopted && !flying_event {
            out.unmatched += 1;
            out.problems.push(format!(
                "the in-flight {} change is in the store but its event {} is not in the log",
                f.op, f.event.seq
            ));
        }
        if flying_event {
            model.events.push(f.event.bytes.clone());
            out.adopted = true;
        }
    }
    // Model-free: each record's revision counts the change events naming it.
    let mut named: BTreeMap<String, u64> = BTreeMap::new();
    for e in &log {
        if let Some((op, id, revision, _)) = parse_event(&e.bytes)
            && op != "refuse"
        {
            let n = named.entry(id.clone()).or_default();
            *n += 1;
            if revision != *n {
                out.unmatched += 1;
                out.problems.push(format!(
                    "event {} records revision {revision} of {id}, its change number {n}",
                    e.seq
                ));
            }
        }
    }
    for (id, revision) in revisions {
        let n = named.get(id).copied().unwrap_or(0);
        if n != *revision {
            out.unmatched += 1;
            out.problems.push(format!(
                "{id} is at revision {revision} but {n} change events name it"
            ));
        }
    }
    for id in named.keys().filter(|id| !revisions.contains_key(*id)) {
        out.unmatched += 1;
        out.problems.push(format!(
            "change events name {id}, which is not in the store"
        ));
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

/// Copies the directory tree `from` to `to` (which must not exist).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Checks the store a child left at `dir` against the model (see the module documentation),
/// on a copy: opening the store itself would do the recovery work (sled writes a new snapshot
/// at open) that the next child must do, and could die doing, as a gateway in a crash loop
/// would. The copy is exactly what the next child finds: the child is dead and a SIGKILL loses
/// no page cache. Adopts the in-flight write if it is complete in the store.
fn check(backend: Backend, dir: &Path, scratch: &Path, model: &mut Model) -> Checked {
    let mut checked = Checked::default();
    if scratch.exists() {
        std::fs::remove_dir_all(scratch).unwrap();
    }
    if dir.exists() {
        copy_tree(dir, scratch).unwrap();
    }
    let dir = scratch;
    let problems = &mut checked.problems;
    let store = match backend.open_checked(dir) {
        Ok(opened) => {
            problems.extend(opened.problems.into_iter().map(|p| format!("index: {p}")));
            checked.recovered = opened.recovered;
            opened.store
        }
        Err(e) => {
            problems.push(format!("the store does not open: {e}"));
            checked.keys_lost = model.keys();
            return checked;
        }
    };
    let in_flight = model.in_flight.take();
    let mut seen = 0;
    // Every record's revision, by id, for the events check.
    let mut revisions = BTreeMap::new();
    let scanned = store.scan(&mut |r| {
        let stored = match r {
            Ok(c) => c,
            Err(e) => return problems.push(format!("undecodable record: {e}")),
        };
        seen += 1;
        let id = stored.id.to_string();
        revisions.insert(id.clone(), stored.revision);
        let flying = in_flight
            .as_ref()
            .and_then(|f| f.expected.as_ref())
            .filter(|e| e.id == stored.id);
        if flying.is_some_and(|e| *e == stored) {
            let k = model.known.entry(id).or_insert(Known {
                record: stored.clone(),
                keys: Vec::new(),
            });
            k.record = stored;
            checked.adopted = true;
        } else if let Some(k) = model.known.get(&id) {
            if k.record != stored {
                problems.push(format!(
                    "{id} is neither its acknowledged revision {} nor the in-flight write: \
                     found revision {}, {} secrets (acknowledged {}), enabled {}",
                    k.record.revision,
                    stored.revision,
                    stored.secrets.len(),
                    k.record.secrets.len(),
                    stored.enabled,
                ));
            }
        } else {
            problems.push(format!(
                "{id} (revision {}) is in the store but was never acknowledged nor in flight",
                stored.revision
            ));
        }
    });
    if let Err(e) = scanned {
        problems.push(format!("scan failed: {e}"));
    }
    if seen < model.known.len() {
        problems.push(format!(
            "{} acknowledged credentials are missing",
            model.known.len() - seen
        ));
    }
    check_events(
        &*store,
        model,
        in_flight.as_ref(),
        checked.adopted,
        &revisions,
        &mut checked.events,
    );
    let problems = &mut checked.problems;
    problems.append(&mut checked.events.problems);
    let format = KeyFormat::default();
    let pepper = pepper();
    for (id, known) in &model.known {
        let revoked = !known.record.enabled;
        for key in &known.keys {
            let parsed = format.parse(key).unwrap();
            let found = store.find_by_lookup(&parsed.lookup());
            let ok = match &found {
                Ok(Some(c)) => {
                    c.id.as_str() == id
                        && c.secret_by_lookup(&parsed.lookup()).is_some_and(|s| {
                            s.digest == pepper.digest(parsed.digest_input())
                                && (!revoked || s.revoked_at.is_some())
                        })
                        && (!revoked || !c.enabled)
                }
                _ => false,
            };
            if !ok {
                checked.keys_lost += 1;
                problems.push(format!(
                    "acknowledged key {} of {id} (revoked: {revoked}) does not verify: {found:?}",
                    parsed.redacted()
                ));
            }
        }
    }
    let views = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        conformance::assert_indexes_consistent(&*store);
    }));
    if let Err(e) = views {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        problems.push(format!("trait-level views disagree: {msg}"));
    }
    match IndexedStore::open(store) {
        Ok(index) => {
            for (id, known) in &model.known {
                for key in &known.keys {
                    let lookup = format.parse(key).unwrap().lookup();
                    let hit = index
                        .with_lookup(&lookup, |e| e.map(|e| e.id().to_string()))
                        .ok()
                        .flatten();
                    if hit.as_deref() != Some(id) {
                        problems.push(format!("the warmed index does not find a key of {id}"));
                    }
                }
            }
        }
        Err(e) => problems.push(format!("a strict IndexedStore::open fails: {e}")),
    }
    checked
}

// ---------------------------------------------------------------------------------------------
// Runs.

/// Which kind of child a run kills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Open, warm, a few writes, drop, exit; killed anywhere in that life.
    Lifecycle,
    /// Open, warm, write until killed.
    Writer,
}

/// A running mean that follows recent values (exponential moving average).
struct Mean(Option<f64>);

impl Mean {
    fn add(&mut self, d: Duration) {
        let x = d.as_secs_f64();
        self.0 = Some(self.0.map_or(x, |m| 0.7 * m + 0.3 * x));
    }

    fn get(&self) -> Duration {
        Duration::from_secs_f64(self.0.unwrap_or(0.0))
    }
}

/// How long a child's phases take on this machine, learned from the children so far.
struct Timing {
    /// Spawn to `PHASE open` (process start).
    start: Mean,
    /// `PHASE open` to `PHASE warm`, and `PHASE warm` to `PHASE write`.
    open: Mean,
    warm: Mean,
    /// One write, acknowledgement to acknowledgement.
    write: Mean,
    /// `PHASE drop` to the process's end.
    shutdown: Mean,
}

impl Timing {
    fn new() -> Self {
        Self {
            start: Mean(None),
            open: Mean(None),
            warm: Mean(None),
            write: Mean(None),
            shutdown: Mean(None),
        }
    }

    fn learn(&mut self, life: &Life) {
        let [open, warm, write, drop] =
            ["open", "warm", "write", "drop"].map(|p| life.time_of(&format!("PHASE {p}")));
        if let Some(t) = open {
            self.start.add(t);
        }
        for (mean, (from, to)) in [
            (&mut self.open, (open, warm)),
            (&mut self.warm, (warm, write)),
        ] {
            if let (Some(from), Some(to)) = (from, to) {
                mean.add(to - from);
            }
        }
        let acks: Vec<Duration> = life
            .lines
            .iter()
            .filter(|(_, l)| l.starts_with("ACK ") || l == "PHASE write")
            .map(|(t, _)| *t)
            .collect();
        for w in acks.windows(2) {
            self.write.add(w[1] - w[0]);
        }
        if let (false, Some(t)) = (life.killed(), drop) {
            self.shutdown.add(life.ended - t);
        }
    }

    /// Spawn to `PHASE write`: process start, open and warm-up.
    fn startup(&self) -> Duration {
        self.start.get() + self.open.get() + self.warm.get()
    }

    /// When to kill a lifecycle child doing `writes` writes: in its first 2 ms (process start,
    /// and open if it is quick), uniformly over its whole expected life (and a little past it,
    /// so some children exit on their own), or uniformly inside one of its phases, each as
    /// likely, timed from the child's own marker, so that short phases (warm-up, shutdown) are
    /// hit too.
    fn kill_plan(&self, rng: &mut Rng, writes: u64) -> KillPlan {
        let life = self.startup() + self.write.get() * writes as u32 + self.shutdown.get();
        match rng.below(100) {
            0..15 => KillPlan::After(rng.duration(Duration::from_millis(2))),
            15..55 => KillPlan::After(rng.duration(life.mul_f64(1.2))),
            _ => {
                let mut phases = vec![
                    ("PHASE open", self.open.get()),
                    ("PHASE warm", self.warm.get()),
                    ("PHASE drop", self.shutdown.get()),
                ];
                if writes > 0 {
                    phases.push(("PHASE write", self.write.get() * writes as u32));
                }
                let (marker, span) = *rng.pick(&phases);
                KillPlan::AfterLine(marker, rng.duration(span))
            }
        }
    }
}

#[derive(Default)]
struct Stats {
    kills: usize,
    by_phase: [usize; PHASES.len()],
    exits: usize,
    open_failures: usize,
    failures: usize,
    acks: usize,
    keys: usize,
    keys_lost: usize,
    adopted: usize,
    credentials: usize,
    /// Events in the logs at the end (acknowledged or adopted), in-flight events found
    /// (with their change), and what the events checks found wrong.
    events: usize,
    events_adopted: usize,
    events_missing: usize,
    events_duplicate: usize,
    chain_breaks: usize,
    events_unmatched: usize,
    /// What recovery at open did after a kill, by kind.
    recovered: BTreeMap<String, usize>,
    longest_check: Duration,
}

/// Kills `kills` children of `mode` on `backend`; each store lives through `per_store`
/// consecutive kills (and recoveries) before a fresh one starts, which bounds the cost of
/// checking everything after every kill. Fails at the end if any check failed (a store that
/// failed is replaced by a fresh one and kept on disk for inspection).
fn run(backend: Backend, mode: Mode, kills: usize, per_store: usize) {
    let seed = seed_from_env_or_clock();
    let label = format!("{} {mode:?}", backend.name());
    eprintln!("kill test {label}: seed {seed}, {kills} kills");
    let mut rng = Rng(seed);
    let tmp = tempfile::tempdir().unwrap();
    let mut stores = 0;
    let mut dir = tmp.path().join("store-0");
    let mut model = Model::default();
    let mut timing = Timing::new();
    let mut stats = Stats::default();
    let mut kills_on_store = 0;
    let started = Instant::now();
    let mut round = 0;
    while stats.kills < kills {
        round += 1;
        if kills_on_store >= per_store {
            stats.credentials += model.known.len();
            stats.keys += model.keys();
            stats.events += model.events.len();
            model = Model::default();
            stores += 1;
            dir = tmp.path().join(format!("store-{stores}"));
            kills_on_store = 0;
        }
        let child_seed = rng.next();
        let (writes, plan) = match mode {
            // The first child lives its whole life, to learn how long one takes.
            Mode::Lifecycle => {
                let writes = match rng.below(4) {
                    0 => 0,
                    1 | 2 => 1 + rng.below(5),
                    _ => 6 + rng.below(25),
                };
                let plan = if round == 1 {
                    KillPlan::After(Duration::from_secs(60))
                } else {
                    timing.kill_plan(&mut rng, writes)
                };
                (Some(writes), plan)
            }
            Mode::Writer => {
                let plan = if rng.below(10) < 3 {
                    let span = timing.startup() + timing.write.get() * 20;
                    KillPlan::After(rng.duration(span.max(Duration::from_millis(400))))
                } else {
                    KillPlan::AfterAcks(1 + rng.below(40) as usize, Duration::from_secs(20))
                };
                (None, plan)
            }
        };
        let life = live(backend, &dir, child_seed, writes, plan);
        timing.learn(&life);
        let context = format!(
            "kill test {label}: seed {seed}, round {round}, kill {}, store {}",
            stats.kills + 1,
            dir.display()
        );
        for (_, line) in &life.lines {
            if model.apply(line) {
                stats.acks += 1;
            }
        }
        let phase = life.phase();
        let mut problems = Vec::new();
        if let Some((_, failed)) = life
            .lines
            .iter()
            .find(|(_, l)| l.starts_with("OPEN FAILED"))
        {
            problems.push(format!("the store does not open in the child: {failed}"));
        } else if life.killed() {
            stats.kills += 1;
            kills_on_store += 1;
            stats.by_phase[PHASES.iter().position(|p| *p == phase).unwrap()] += 1;
        } else if life.status.success() && mode == Mode::Lifecycle && phase == "exit" {
            stats.exits += 1;
        } else {
            problems.push(format!(
                "the child ended on its own ({}) in phase {phase}; its stderr:\n{}",
                life.status, life.stderr
            ));
        }
        let check_started = Instant::now();
        let checked = check(backend, &dir, &tmp.path().join("check"), &mut model);
        stats.longest_check = stats.longest_check.max(check_started.elapsed());
        stats.adopted += usize::from(checked.adopted);
        stats.events_adopted += usize::from(checked.events.adopted);
        stats.events_missing += checked.events.missing;
        stats.events_duplicate += checked.events.duplicate;
        stats.chain_breaks += checked.events.chain_breaks;
        stats.events_unmatched += checked.events.unmatched;
        stats.keys_lost += checked.keys_lost;
        for r in checked.recovered {
            *stats.recovered.entry(r).or_default() += 1;
        }
        problems.extend(checked.problems);
        if !problems.is_empty() {
            stats.failures += 1;
            stats.open_failures += usize::from(
                problems
                    .iter()
                    .any(|p| p.starts_with("the store does not open")),
            );
            eprintln!(
                "FAILURE ({context}; checked on a copy), child killed in phase {phase}:\n  {}\n\
                 directory:\n{}",
                problems.join("\n  "),
                listing(&dir)
            );
            // Keep the broken store; go on with a fresh one.
            kills_on_store = per_store;
        }
    }
    stats.credentials += model.known.len();
    stats.keys += model.keys();
    stats.events += model.events.len();
    let phases: Vec<String> = PHASES
        .iter()
        .zip(stats.by_phase)
        .map(|(p, n)| format!("{p} {n}"))
        .collect();
    eprintln!(
        "kill test {label}: seed {seed}: {} kills ({}), {} clean exits, {} reopen failures, \
         {} failed checks, {} acknowledged writes ({} keys) on {} credentials, {} in-flight \
         writes found complete, {} keys lost; audit: {} events ({} in-flight found with their \
         change), {} missing, {} duplicate, {} chain breaks, {} events without their change or \
         changes without their event; recovered at open: {:?}; typical life {:?} + {:?}/write + \
         {:?}; longest check {:?}; {:?} in all",
        stats.kills,
        phases.join(", "),
        stats.exits,
        stats.open_failures,
        stats.failures,
        stats.acks,
        stats.keys,
        stats.credentials,
        stats.adopted,
        stats.keys_lost,
        stats.events,
        stats.events_adopted,
        stats.events_missing,
        stats.events_duplicate,
        stats.chain_breaks,
        stats.events_unmatched,
        stats.recovered,
        timing.startup(),
        timing.write.get(),
        timing.shutdown.get(),
        stats.longest_check,
        started.elapsed(),
    );
    if stats.failures > 0 {
        let kept = tmp.keep();
        panic!(
            "kill test {label}: {} failed checks (seed {seed}); the stores are kept in {}",
            stats.failures,
            kept.display()
        );
    }
}

/// The number of kills of a long run.
fn long_rounds(default: usize) -> usize {
    env_u64("KEYWARD_KILL_ROUNDS").map_or(default, |n| n as usize)
}

#[cfg(feature = "redb")]
#[test]
fn kill_redb_lifecycle() {
    if !is_child() {
        run(Backend::Redb, Mode::Lifecycle, 60, 20);
    }
}

#[cfg(feature = "redb")]
#[test]
fn kill_redb_writer() {
    if !is_child() {
        run(Backend::Redb, Mode::Writer, 25, 10);
    }
}

#[cfg(feature = "redb")]
#[test]
#[ignore = "long: 1000 kills by default (KEYWARD_KILL_ROUNDS)"]
fn kill_redb_lifecycle_long() {
    if !is_child() {
        run(Backend::Redb, Mode::Lifecycle, long_rounds(1000), 25);
    }
}

#[cfg(feature = "redb")]
#[test]
#[ignore = "long: 500 kills by default (KEYWARD_KILL_ROUNDS)"]
fn kill_redb_writer_long() {
    if !is_child() {
        run(Backend::Redb, Mode::Writer, long_rounds(500), 50);
    }
}

#[test]
fn kill_sled_lifecycle() {
    if !is_child() {
        run(Backend::Sled, Mode::Lifecycle, 60, 20);
    }
}

#[test]
fn kill_sled_writer() {
    if !is_child() {
        run(Backend::Sled, Mode::Writer, 25, 10);
    }
}

/// `cargo test -p keyward-store --test kill_lifecycle -- --ignored --nocapture`.
#[test]
#[ignore = "long: 1000 kills by default (KEYWARD_KILL_ROUNDS)"]
fn kill_sled_lifecycle_long() {
    if !is_child() {
        run(Backend::Sled, Mode::Lifecycle, long_rounds(1000), 25);
    }
}

#[test]
#[ignore = "long: 500 kills by default (KEYWARD_KILL_ROUNDS)"]
fn kill_sled_writer_long() {
    if !is_child() {
        run(Backend::Sled, Mode::Writer, long_rounds(500), 50);
    }
}
