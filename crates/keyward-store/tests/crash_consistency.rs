//! Kill test, as sled and redb test themselves: this test binary re-executes itself as a child
//! that issues, rotates and revokes keys in a loop against a `SledStore` and reports every
//! acknowledged operation (the write returned `Ok`) on stdout. The parent SIGKILLs it at a
//! random moment, reopens the store and checks that every acknowledged key verifies (and is
//! revoked if its revocation was acknowledged) and that the indexes are consistent. The store
//! is kept across kills, so each child also starts by recovering from the previous kill.
//!
//! `KEYWARD_KILL_SEED=<n>` replays a run; `KEYWARD_KILL_ROUNDS=<n>` changes the number of kills
//! of `kill_test_long`.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use keyward_core::{Credential, Environment, KeyFormat, KeyType, Timestamp};
use keyward_store::conformance::{self, pepper};
use keyward_store::{IndexedStore, SledStore, Store, StoreError};

/// Set in a child: the store directory to hammer.
const CHILD_DIR: &str = "KEYWARD_KILL_CHILD_DIR";
/// Set in a child: its random seed.
const CHILD_SEED: &str = "KEYWARD_KILL_CHILD_SEED";
/// Set in a lock child: the store directory to try to open.
const LOCK_CHILD_DIR: &str = "KEYWARD_LOCK_CHILD_DIR";

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
}

fn seed_from_env_or_clock() -> u64 {
    std::env::var("KEYWARD_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            t.as_nanos() as u64 ^ u64::from(std::process::id())
        })
}

// ---------------------------------------------------------------------------------------------
// The child.

/// Most secrets a child gives one credential (rotation keeps the old ones).
const MAX_SECRETS: usize = 6;

/// In a child: hammer the store until killed. A no-op in a normal test run.
#[test]
fn kill_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let seed: u64 = std::env::var(CHILD_SEED).unwrap().parse().unwrap();
    let mut rng = Rng(seed);
    let store = SledStore::open(&dir).unwrap();
    let mut out = std::io::stdout().lock();
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
    // libtest has printed "test kill_child ... " without a newline: start a fresh line.
    writeln!(out, "\nREADY {}", pool.len()).unwrap();
    out.flush().unwrap();
    let started = Instant::now();
    // Bounded, in case no one kills us.
    while started.elapsed() < Duration::from_secs(60) {
        let r = rng.below(100);
        if pool.len() < 3 || r < 40 {
            let account = format!("acc_{}", rng.below(4));
            let env = [Environment::Production, Environment::Test][rng.below(2) as usize].clone();
            let key_type = KeyType::ALL[rng.below(3) as usize];
            let (c, key) = conformance::issue(&account, env, key_type);
            let c = conformance::put(&store, &c);
            writeln!(
                out,
                "ACK create {} {} {}",
                c.id,
                c.revision,
                key.expose_secret()
            )
            .unwrap();
            pool.push(c);
        } else if r < 80 {
            let i = rng.below(pool.len() as u64) as usize;
            let mut c = pool[i].clone();
            let key = conformance::rotate(&mut c);
            let c = conformance::put(&store, &c);
            writeln!(
                out,
                "ACK rotate {} {} {}",
                c.id,
                c.revision,
                key.expose_secret()
            )
            .unwrap();
            if c.secrets.len() >= MAX_SECRETS {
                pool.swap_remove(i);
            } else {
                pool[i] = c;
            }
        } else {
            let i = rng.below(pool.len() as u64) as usize;
            let mut c = pool.swap_remove(i);
            let now = Timestamp::now();
            for s in &mut c.secrets {
                s.revoked_at.get_or_insert(now);
            }
            c.enabled = false;
            let c = conformance::put(&store, &c);
            writeln!(out, "ACK revoke {} {}", c.id, c.revision).unwrap();
        }
        // The line is in the pipe before the next operation starts.
        out.flush().unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// The parent.

/// What the parent was told about one credential.
#[derive(Debug, Default)]
struct Acked {
    revision: u64,
    keys: Vec<String>,
    revoked: bool,
}

#[derive(Default)]
struct Stats {
    kills: usize,
    acks: usize,
    killed_before_ready: usize,
    killed_before_first_ack: usize,
    longest_recovery: Duration,
    credentials: usize,
    child_time: Duration,
    verify_time: Duration,
}

fn spawn_child(dir: &Path, seed: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "kill_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_SEED, seed.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Sends each complete line of `r` (a line cut by the kill is not an acknowledgement).
fn forward_lines(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(r);
        loop {
            let mut line = Vec::new();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line.ends_with(b"\n") => {
                    if tx
                        .send(String::from_utf8_lossy(&line).trim_end().to_owned())
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(_) => return,
            }
        }
    });
    rx
}

fn apply(line: &str, model: &mut BTreeMap<String, Acked>) -> bool {
    let parts: Vec<&str> = line.split(' ').collect();
    match parts.as_slice() {
        ["ACK", "create", id, rev, key] => {
            let a = model.entry((*id).to_owned()).or_default();
            a.revision = rev.parse().unwrap();
            a.keys.push((*key).to_owned());
        }
        ["ACK", "rotate", id, rev, key] => {
            let a = model.entry((*id).to_owned()).or_default();
            a.revision = a.revision.max(rev.parse().unwrap());
            a.keys.push((*key).to_owned());
        }
        ["ACK", "revoke", id, rev] => {
            let a = model.entry((*id).to_owned()).or_default();
            a.revision = a.revision.max(rev.parse().unwrap());
            a.revoked = true;
        }
        _ => return false,
    }
    true
}

/// Reopens the store after a kill and checks every acknowledged operation and the indexes.
/// Returns how long the reopen (sled's recovery) took.
fn verify(dir: &Path, model: &BTreeMap<String, Acked>, context: &str) -> Duration {
    let started = Instant::now();
    let store = match SledStore::open(dir) {
        Ok(s) => s,
        Err(e) => panic!("LOSS: the store does not open after a kill ({context}): {e}"),
    };
    let recovery = started.elapsed();
    let format = KeyFormat::default();
    let pepper = pepper();
    for (id, acked) in model {
        let parsed_id = id.parse().unwrap();
        let stored = match store.get(&parsed_id) {
            Ok(Some(c)) => c,
            Ok(None) => panic!("LOSS: acknowledged credential {id} is missing ({context})"),
            Err(e) => panic!("LOSS: acknowledged credential {id} is unreadable ({context}): {e}"),
        };
        assert!(
            stored.revision >= acked.revision,
            "LOSS: {id} is at revision {} but revision {} was acknowledged ({context})",
            stored.revision,
            acked.revision
        );
        for key in &acked.keys {
            let parsed = format.parse(key).unwrap();
            let found = store.find_by_lookup(&parsed.lookup()).unwrap();
            let Some(found) = found else {
                panic!(
                    "LOSS: acknowledged key {} of {id} finds nothing ({context})",
                    parsed.redacted()
                );
            };
            assert_eq!(found.id, stored.id, "{context}");
            let secret = found.secret_by_lookup(&parsed.lookup()).unwrap();
            assert!(
                secret.digest == pepper.digest(parsed.digest_input()),
                "LOSS: acknowledged key {} of {id} does not verify ({context})",
                parsed.redacted()
            );
            if acked.revoked {
                assert!(
                    secret.revoked_at.is_some(),
                    "LOSS: the acknowledged revocation of {id} is missing ({context})"
                );
            }
        }
        if acked.revoked {
            assert!(
                !stored.enabled,
                "LOSS: the acknowledged revocation of {id} is missing ({context})"
            );
        }
    }
    let problems = store.check_indexes().unwrap();
    assert!(
        problems.is_empty(),
        "inconsistent indexes after a kill ({context}): {problems:?}"
    );
    conformance::assert_indexes_consistent(&store);
    // The hot index warms from it without a single undecodable record.
    let index = IndexedStore::open(Box::new(store)).unwrap();
    for (id, acked) in model {
        for key in acked.keys.iter().take(1) {
            let lookup = format.parse(key).unwrap().lookup();
            let hit = index
                .with_lookup(&lookup, |e| e.map(|e| e.id().to_string()))
                .unwrap();
            assert_eq!(hit.as_deref(), Some(id.as_str()), "{context}");
        }
    }
    recovery
}

/// `rounds` kills; each store lives through `per_store` consecutive kills (and recoveries)
/// before a fresh one starts, which bounds the cost of checking everything after every kill.
fn run_kills(rounds: usize, per_store: usize) {
    let seed = seed_from_env_or_clock();
    let mut rng = Rng(seed);
    let tmp = tempfile::tempdir().unwrap();
    let mut dir = tmp.path().join("store-0");
    let mut model: BTreeMap<String, Acked> = BTreeMap::new();
    let mut stats = Stats::default();
    let started = Instant::now();
    for round in 0..rounds {
        if round > 0 && round % per_store == 0 {
            stats.credentials += model.len();
            model.clear();
            dir = tmp.path().join(format!("store-{round}"));
        }
        let context = format!("seed {seed}, round {round}");
        let child_seed = rng.next();
        // Kill either after a random number of acknowledgements (the child is then inside its
        // next write), or after a random delay (often inside open and recovery).
        let (target_acks, deadline) = if rng.below(10) < 3 {
            (usize::MAX, Duration::from_millis(rng.below(400)))
        } else {
            (1 + rng.below(40) as usize, Duration::from_secs(20))
        };
        let mut child = spawn_child(&dir, child_seed);
        let lines = forward_lines(child.stdout.take().unwrap());
        let errors = forward_lines(child.stderr.take().unwrap());
        let spawned = Instant::now();
        let (mut acks, mut ready) = (0, false);
        loop {
            let left = deadline.saturating_sub(spawned.elapsed());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    ready |= line.starts_with("READY");
                    if apply(&line, &mut model) {
                        acks += 1;
                        if acks >= target_acks {
                            break;
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().unwrap();
                    let stderr: Vec<String> = errors.iter().collect();
                    panic!(
                        "child ended before it was killed ({context}): {status}\n{}",
                        stderr.join("\n")
                    );
                }
            }
        }
        child.kill().unwrap();
        // Lines already in the pipe were acknowledged before the kill: they count.
        for line in lines.iter() {
            ready |= line.starts_with("READY");
            if apply(&line, &mut model) {
                acks += 1;
            }
        }
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "child exited on its own ({context}): {status}"
        );
        stats.kills += 1;
        stats.acks += acks;
        stats.killed_before_ready += usize::from(!ready);
        stats.killed_before_first_ack += usize::from(acks == 0);
        stats.child_time += spawned.elapsed();
        let verify_started = Instant::now();
        let recovery = verify(&dir, &model, &context);
        stats.verify_time += verify_started.elapsed();
        stats.longest_recovery = stats.longest_recovery.max(recovery);
    }
    eprintln!(
        "kill test: seed {seed}: {} kills ({} before the store was open, {} before the first \
         acknowledgement), {} acknowledged operations on {} credentials, none lost; longest \
         reopen {:?}; {:?} in all ({:?} in children, {:?} verifying)",
        stats.kills,
        stats.killed_before_ready,
        stats.killed_before_first_ack,
        stats.acks,
        stats.credentials + model.len(),
        stats.longest_recovery,
        started.elapsed(),
        stats.child_time,
        stats.verify_time,
    );
}

/// 50 kills (five stores of ten consecutive kills each): part of the normal suite.
#[test]
fn kill_test() {
    if std::env::var(CHILD_DIR).is_ok() || std::env::var(LOCK_CHILD_DIR).is_ok() {
        return;
    }
    run_kills(50, 10);
}

/// The long version: `cargo test -p keyward-store --test crash_consistency -- --ignored`.
#[test]
#[ignore = "long: 500 kills by default (KEYWARD_KILL_ROUNDS)"]
fn kill_test_long() {
    if std::env::var(CHILD_DIR).is_ok() || std::env::var(LOCK_CHILD_DIR).is_ok() {
        return;
    }
    let rounds = std::env::var("KEYWARD_KILL_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    run_kills(rounds, 50);
}

// ---------------------------------------------------------------------------------------------
// A second process opening an open store.

/// In a lock child: try to open the store and report how it went. A no-op otherwise.
#[test]
fn lock_child() {
    let Ok(dir) = std::env::var(LOCK_CHILD_DIR) else {
        return;
    };
    let started = Instant::now();
    let result = match SledStore::open(&dir) {
        Ok(_) => "opened".to_owned(),
        Err(StoreError::InUse { what }) => format!("in-use {what}"),
        Err(e) => format!("error {e}"),
    };
    // libtest has printed "test lock_child ... " without a newline: start a fresh line.
    println!("\nRESULT {} {result}", started.elapsed().as_millis());
}

#[test]
fn second_process_gets_in_use_quickly() {
    if std::env::var(CHILD_DIR).is_ok() || std::env::var(LOCK_CHILD_DIR).is_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let store = SledStore::open(&dir).unwrap();
    conformance::put(&store, &conformance::credential("acc_lock"));
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "lock_child", "--nocapture", "--test-threads=1"])
        .env(LOCK_CHILD_DIR, &dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let lines = forward_lines(child.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    let result = loop {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.starts_with("RESULT") => break line,
            Ok(_) => {}
            Err(_) => {
                let _ = child.kill();
                panic!("the second process hangs on the lock (or died)");
            }
        }
    };
    child.wait().unwrap();
    let mut parts = result.splitn(3, ' ').skip(1);
    let millis: u64 = parts.next().unwrap().parse().unwrap();
    let outcome = parts.next().unwrap();
    assert!(outcome.starts_with("in-use"), "{result}");
    assert!(outcome.contains("store"), "names the path: {result}");
    // `open` retries a held lock for 0.9 s by design (a store just dropped in the same process
    // releases it a moment late); a hang would run into the 20 s deadline above. The margin
    // over 0.9 s is for a loaded machine starting sled and a process.
    assert!(millis < 2500, "took {millis} ms: {result}");
    drop(store);
}
