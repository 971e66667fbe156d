//! A second process opening a store that is open: it gets `InUse` quickly, never hangs. The test
//! binary re-executes itself as the second process (`lock_child`).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use keyward_store::conformance;
use keyward_store::{SledStore, StoreError};

/// Set in a lock child: the store directory to try to open.
const LOCK_CHILD_DIR: &str = "KEYWARD_LOCK_CHILD_DIR";

/// Sends each complete line of `r`.
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
    if std::env::var(LOCK_CHILD_DIR).is_ok() {
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
