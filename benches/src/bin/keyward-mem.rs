//! Resident memory per credential of the hot index, from `/proc/self/statm` RSS deltas.
//!
//! `keyward-mem [N]` (default: the largest of `KEYWARD_BENCH_SIZES`, 1M) runs each measurement
//! in a fresh child process so that memory freed by one does not hide the next one's:
//!
//! * `index`: an `IndexedStore` warmed from a backend that holds nothing (it generates the
//!   fixture credentials while the index scans it): the hot index alone (its map, one compact
//!   entry per key, the interned profiles);
//! * `records`: the same credentials as `Vec<Arc<Credential>>`, for comparison (what keeping
//!   whole records in memory would cost);
//! * `engine-memory`: a `Keyward` on `MemoryStore` (backend copy + index);
//!
//! and writes `target/keyward-bench/memory.json`, read by `keyward-report`.
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::{Command, ExitCode};
use std::sync::Arc;

use keyward::core::{Credential, CredentialId, LookupTag};
use keyward::store::{AuditEntry, Change, IndexedStore, ListQuery, Page, Store, StoreError};
use keyward_benches::{fixture, rss};

/// A backend that stores nothing and produces the fixture credentials when scanned.
struct Generator(usize);

impl Store for Generator {
    fn get(&self, _: &CredentialId) -> Result<Option<Credential>, StoreError> {
        Ok(None)
    }
    fn find_by_lookup(&self, _: &LookupTag) -> Result<Option<Credential>, StoreError> {
        Ok(None)
    }
    fn list(&self, _: &ListQuery) -> Result<Page, StoreError> {
        Ok(Page::default())
    }
    fn commit(&self, _: &Change<'_>) -> Result<(), StoreError> {
        Ok(())
    }
    fn events(&self, _: u64, _: usize) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(Vec::new())
    }
    fn last_event(&self) -> Result<Option<AuditEntry>, StoreError> {
        Ok(None)
    }
    fn trim_events(&self, _: u64) -> Result<usize, StoreError> {
        Ok(0)
    }
    fn scan(
        &self,
        visit: &mut dyn FnMut(Result<Credential, StoreError>),
    ) -> Result<(), StoreError> {
        fixture::for_each_credential(self.0, fixture::SEED, |mut c, _| {
            c.revision = 1;
            visit(Ok(c));
        });
        Ok(())
    }
}

fn rss() -> u64 {
    rss::resident_bytes().unwrap_or(0)
}

/// Runs one measurement in this process and prints the RSS delta in bytes.
fn child(mode: &str, n: usize) -> Result<u64, String> {
    // Touch the allocator and the generator once so their fixed costs are outside the delta.
    fixture::for_each_credential(16, fixture::SEED, |_, _| {});
    let before = rss();
    let delta = match mode {
        "index" => {
            let index = IndexedStore::open(Box::new(Generator(n))).map_err(|e| e.to_string())?;
            let after = rss();
            assert_eq!(index.len(), n);
            after - before
        }
        "records" => {
            let mut v = Vec::with_capacity(n);
            fixture::for_each_credential(n, fixture::SEED, |c, _| v.push(Arc::new(c)));
            let after = rss();
            assert_eq!(v.len(), n);
            // The Vec's own 8 bytes per entry are not part of a record.
            after - before - (n * std::mem::size_of::<Arc<Credential>>()) as u64
        }
        "engine-memory" => {
            let (store, keys) = fixture::memory_store(n);
            drop(keys);
            let kw =
                keyward::Keyward::open(fixture::config(keyward::Backend::Custom(Box::new(store))))
                    .map_err(|e| e.to_string())?;
            let after = rss();
            assert_eq!(kw.store().len(), n);
            after - before
        }
        other => return Err(format!("unknown mode {other}")),
    };
    Ok(delta)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 && args[1] == "--child" {
        let n = args[3].parse().unwrap_or(0);
        return match child(&args[2], n) {
            Ok(d) => {
                println!("{d}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    let n: usize = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(fixture::largest_size);
    let Ok(exe) = std::env::current_exe() else {
        eprintln!("cannot find this executable");
        return ExitCode::FAILURE;
    };
    let mut results = Vec::new();
    for mode in ["index", "records", "engine-memory"] {
        let out = Command::new(&exe)
            .args(["--child", mode, &n.to_string()])
            .output();
        let bytes: Option<u64> = out
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok());
        match bytes {
            Some(b) => results.push((mode, b)),
            None => {
                eprintln!("measurement {mode} failed");
                return ExitCode::FAILURE;
            }
        }
    }
    let per = |b: u64| b as f64 / n as f64;
    println!("resident memory at n={n} (3 permissions, no metadata), bytes per credential:");
    for (mode, b) in &results {
        println!(
            "  {mode:<14} {:>8.1} B   ({:.1} MiB total)",
            per(*b),
            *b as f64 / 1048576.0
        );
    }
    let get = |m: &str| results.iter().find(|(k, _)| *k == m).map_or(0, |(_, b)| *b);
    let json = serde_json::json!({
        "n": n,
        "index_bytes_per_credential": per(get("index")),
        "records_bytes_per_credential": per(get("records")),
        "engine_memory_bytes_per_credential": per(get("engine-memory")),
    });
    let path = fixture::data_dir().join("memory.json");
    let _ = std::fs::create_dir_all(fixture::data_dir());
    if let Err(e) = std::fs::write(&path, format!("{json:#}\n")) {
        eprintln!("cannot write {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    println!("wrote {}", path.display());
    ExitCode::SUCCESS
}
