//! sled and redb side by side, in one run: durable issue latency against each backend's bare
//! durable write, open + warm-up of the cached 10k and 1M stores, disk bytes per credential,
//! and verify on each backend ÷ memory. Prints markdown and writes it to
//! `target/keyward-bench/backends.md`.
//!
//! `cargo run --release -p keyward-benches --bin keyward-backends [-- --quick]`
//!
//! * **Writes** run interleaved: every round runs each case once, in a shuffled order, each on
//!   its own fresh database under `target/keyward-bench/`, so that all of them see the same
//!   disk and the same load. The floors are the bare durable writes of
//!   [`keyward_benches::floors`].
//! * **Open** times `Keyward::open` (the store's open, then the hot index's warm-up scan) on the
//!   cached fixture stores ([`fixture::ensure_sled_store`], [`fixture::ensure_redb_store`],
//!   built on first use), alternating the backends in a shuffled order. The files are in the
//!   page cache (they were just built or opened): this is a warm open, not a cold boot.
//! * **Disk** sums the store's files: the bulk-built fixtures, the same after this run's opens,
//!   a store of `--put` credentials written one durable `put` at a time, and compacted copies
//!   of the redb files (sled has no compaction to call).
//! * **Verify** runs `verify` on hit keys on the memory, sled and redb engines round-robin,
//!   2,000 keys per case per round.
//!
//! The summary says which backend each axis favours: the lower value, unless the two are
//! within 5 % (10 % for verify) of each other.
//!
//! Options: `--quick` (fewer rounds, 1,000 puts), `--rounds N` (write rounds, default 2,000),
//! `--opens N` (opens per backend and size, default 5), `--put N` (credentials of the
//! put-built stores, default 10,000), `--verify-rounds N` (default 200). Sizes come from
//! `KEYWARD_BENCH_SIZES` (default `10000,1000000`).
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fmt::{Display, Write as _};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use keyward::core::{Credential, Environment, KeyType};
use keyward::store::{RedbStore, SledStore, Store};
use keyward::{Backend, Keyward, NewKey};
use keyward_benches::disk::{DiskUsage, compacted_redb_copy};
use keyward_benches::fixture::{self, BackendKind, for_each_credential, shuffle};
use keyward_benches::floors::{RedbFloor, SledFloor};
use keyward_benches::threads::Cycle;

/// Seed of the credentials the write cases and the put-built stores write.
const WRITE_SEED: u64 = 0x7772_6974_6573_3031;
/// Verifications per case per verify round.
const VERIFY_BATCH: usize = 2_000;

fn s<E: Display>(e: E) -> String {
    e.to_string()
}

struct Args {
    quick: bool,
    rounds: usize,
    opens: usize,
    put: usize,
    verify_rounds: usize,
    sizes: Vec<usize>,
}

impl Args {
    fn parse() -> Result<Self, String> {
        let mut args: Vec<String> = std::env::args().skip(1).collect();
        let quick = args.iter().any(|a| a == "--quick");
        args.retain(|a| a != "--quick");
        let mut a = Self {
            quick,
            rounds: if quick { 200 } else { 2_000 },
            opens: if quick { 2 } else { 5 },
            put: if quick { 1_000 } else { 10_000 },
            verify_rounds: if quick { 20 } else { 200 },
            sizes: fixture::sizes(),
        };
        let mut it = args.into_iter();
        while let Some(flag) = it.next() {
            let value: usize = it
                .next()
                .and_then(|v| v.replace('_', "").parse().ok())
                .filter(|&v| v > 0)
                .ok_or_else(|| format!("{flag} needs a positive number"))?;
            match flag.as_str() {
                "--rounds" => a.rounds = value,
                "--opens" => a.opens = value,
                "--put" => a.put = value,
                "--verify-rounds" => a.verify_rounds = value,
                other => return Err(format!("unknown option {other}")),
            }
        }
        Ok(a)
    }
}

/// Median, p99 and extremes of some samples.
#[derive(Debug, Clone, Copy)]
struct Stat {
    median: f64,
    p99: f64,
    min: f64,
    max: f64,
}

impl Stat {
    fn of(mut v: Vec<f64>) -> Self {
        v.sort_by(f64::total_cmp);
        let q = |q: f64| {
            v.get(((v.len().saturating_sub(1)) as f64 * q).round() as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        Self {
            median: q(0.5),
            p99: q(0.99),
            min: q(0.0),
            max: q(1.0),
        }
    }
}

/// One row of the summary: an axis, each backend's value, and which the numbers favour.
struct Row {
    axis: String,
    sled: String,
    redb: String,
    ratio: f64,
    favours: String,
}

/// Which backend a pair of values (lower is better) favours, unless they are within
/// `tolerance` (a fraction) of each other.
fn favours(sled: f64, redb: f64, tolerance: f64) -> String {
    let r = redb / sled;
    if (r - 1.0).abs() < tolerance {
        format!("neither (within {:.0} %)", tolerance * 100.0)
    } else if r < 1.0 {
        "redb".into()
    } else {
        "sled".into()
    }
}

/// The tolerance of the write, open and disk rows.
const TOLERANCE: f64 = 0.05;
/// The tolerance of the verify rows: both backends verify through the same hot index, and
/// verify ratios at 1M move by up to ~10 % between runs of one build (`docs/BENCHMARKS.md`).
const VERIFY_TOLERANCE: f64 = 0.10;

#[derive(Default)]
struct Report {
    md: String,
    summary: Vec<Row>,
}

impl Report {
    fn line(&mut self, text: impl AsRef<str>) {
        println!("{}", text.as_ref());
        self.md.push_str(text.as_ref());
        self.md.push('\n');
    }

    fn row(&mut self, axis: impl Into<String>, sled: f64, redb: f64, unit: Unit, tolerance: f64) {
        self.summary.push(Row {
            axis: axis.into(),
            sled: unit.show(sled),
            redb: unit.show(redb),
            ratio: redb / sled,
            favours: favours(sled, redb, tolerance),
        });
    }
}

#[derive(Clone, Copy)]
enum Unit {
    Micros,
    Secs,
    Bytes,
    Ratio,
}

impl Unit {
    fn show(self, v: f64) -> String {
        match self {
            Self::Micros => format!("{v:.0} µs"),
            Self::Secs if v < 1.0 => format!("{:.1} ms", v * 1e3),
            Self::Secs => format!("{v:.2} s"),
            Self::Bytes => format!("{v:.0} B"),
            Self::Ratio => format!("{v:.2}×"),
        }
    }
}

/// A fresh, empty directory under the benches' data dir.
fn scratch(name: &str) -> Result<PathBuf, String> {
    let dir = fixture::data_dir().join(format!("backends-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(s)?;
    Ok(dir)
}

fn new_key(i: usize) -> NewKey {
    NewKey::new(
        fixture::account(i),
        KeyType::Secret,
        Environment::Production,
        "bench key"
            .parse()
            .unwrap_or_else(|_| unreachable!("a valid name")),
    )
    .with_permissions(fixture::permissions())
}

/// `n` fresh credentials that no fixture store holds.
fn fresh_credentials(n: usize) -> Vec<Credential> {
    let mut v = Vec::with_capacity(n);
    for_each_credential(n, WRITE_SEED, |c, _| v.push(c));
    v
}

fn open_engine(backend: Backend) -> Result<Keyward, String> {
    Keyward::open(fixture::config(backend)).map_err(s)
}

/// The scratch databases of [`writes`], removed afterwards.
const SCRATCH_WRITES: [&str; 7] = [
    "sled-floor",
    "sled-put",
    "sled-issue",
    "redb-floor",
    "redb-floor-1pc",
    "redb-put",
    "redb-issue",
];

type Case<'a> = (
    &'static str,
    Box<dyn FnMut(usize) -> Result<(), String> + 'a>,
);

/// Durable writes, interleaved: µs per write of each case.
fn writes(r: &mut Report, rounds: usize) -> Result<(), String> {
    let warm_up = (rounds / 10).max(5);
    let creds = fresh_credentials(warm_up + rounds);
    let mut sled_floor = SledFloor::open(&scratch("sled-floor")?.join("db"))?;
    let sled_store = SledStore::open(scratch("sled-put")?.join("db")).map_err(s)?;
    let sled_kw = open_engine(Backend::Sled(scratch("sled-issue")?.join("db")))?;
    let mut redb_floor = RedbFloor::open(&fixture::redb_file(&scratch("redb-floor")?), true)?;
    let mut redb_floor_1pc =
        RedbFloor::open(&fixture::redb_file(&scratch("redb-floor-1pc")?), false)?;
    let redb_store = RedbStore::open(fixture::redb_file(&scratch("redb-put")?)).map_err(s)?;
    let redb_kw = open_engine(Backend::Redb(fixture::redb_file(&scratch("redb-issue")?)))?;
    let mut cases: Vec<Case<'_>> = vec![
        ("sled floor", Box::new(|_| sled_floor.write())),
        (
            "sled put",
            Box::new(|i| sled_store.put(&creds[i]).map(drop).map_err(s)),
        ),
        (
            "sled issue",
            Box::new(|i| {
                sled_kw
                    .issue(&keyward::Principal::LocalOperator, new_key(i))
                    .map(|k| drop(black_box(k)))
                    .map_err(s)
            }),
        ),
        ("redb floor", Box::new(|_| redb_floor.write())),
        ("redb floor, 1-phase", Box::new(|_| redb_floor_1pc.write())),
        (
            "redb put",
            Box::new(|i| redb_store.put(&creds[i]).map(drop).map_err(s)),
        ),
        (
            "redb issue",
            Box::new(|i| {
                redb_kw
                    .issue(&keyward::Principal::LocalOperator, new_key(i))
                    .map(|k| drop(black_box(k)))
                    .map_err(s)
            }),
        ),
    ];
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); cases.len()];
    let mut order: Vec<usize> = (0..cases.len()).collect();
    let started = Instant::now();
    for round in 0..warm_up + rounds {
        shuffle(&mut order, round as u64 ^ fixture::SHUFFLE_SEED);
        for &c in &order {
            let t = Instant::now();
            (cases[c].1)(round)?;
            if round >= warm_up {
                samples[c].push(t.elapsed().as_secs_f64() * 1e6);
            }
        }
    }
    let names: Vec<&'static str> = cases.iter().map(|c| c.0).collect();
    drop(cases);
    drop((sled_store, sled_kw, redb_store, redb_kw));
    drop((sled_floor, redb_floor, redb_floor_1pc));
    for dir in SCRATCH_WRITES {
        let _ = std::fs::remove_dir_all(fixture::data_dir().join(format!("backends-{dir}")));
    }
    let stats: Vec<(&str, Stat)> = names
        .into_iter()
        .zip(samples.into_iter().map(Stat::of))
        .collect();
    let get = |name: &str| {
        stats
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| *s)
            .ok_or_else(|| format!("no case {name}"))
    };
    r.line(format!(
        "## Durable writes, interleaved\n\n{rounds} rounds after {warm_up} warm-up rounds, \
         {:.0} s; µs per write.\n",
        started.elapsed().as_secs_f64()
    ));
    r.line("| case | median | p99 | min | max | median ÷ own floor |");
    r.line("|---|---:|---:|---:|---:|---:|");
    for (name, st) in &stats {
        let floor = get(if name.starts_with("sled") {
            "sled floor"
        } else {
            "redb floor"
        })?;
        r.line(format!(
            "| {name} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2}× |",
            st.median,
            st.p99,
            st.min,
            st.max,
            st.median / floor.median
        ));
    }
    r.line("");
    let (sf, si, sp) = (get("sled floor")?, get("sled issue")?, get("sled put")?);
    let (rf, ri, rp) = (get("redb floor")?, get("redb issue")?, get("redb put")?);
    r.row(
        "durable `issue`, median",
        si.median,
        ri.median,
        Unit::Micros,
        TOLERANCE,
    );
    r.row(
        "durable `issue`, p99",
        si.p99,
        ri.p99,
        Unit::Micros,
        TOLERANCE,
    );
    r.row(
        "bare durable write (floor), median",
        sf.median,
        rf.median,
        Unit::Micros,
        TOLERANCE,
    );
    r.row(
        "store `put` alone, median",
        sp.median,
        rp.median,
        Unit::Micros,
        TOLERANCE,
    );
    r.row(
        "`issue` ÷ own floor (medians)",
        si.median / sf.median,
        ri.median / rf.median,
        Unit::Ratio,
        TOLERANCE,
    );
    Ok(())
}

fn usage(path: &Path) -> Result<DiskUsage, String> {
    DiskUsage::of(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn per_cred(u: DiskUsage, n: usize) -> f64 {
    u.allocated as f64 / n as f64
}

/// The bytes every backend must keep per fixture credential, averaged over the first 1,000:
/// the keys and values of the three tables (id → encoded record, lookup tag → id,
/// account ‖ 0 ‖ id → nothing), without any storage overhead.
fn logical_bytes() -> Result<f64, String> {
    let (mut total, mut n, mut failed) = (0usize, 0usize, None);
    for_each_credential(1_000, fixture::SEED, |mut c, _| {
        c.revision = 1;
        match keyward::store::encode_credential(&c) {
            Ok(bytes) => {
                let id = c.id.as_str().len();
                total += id + bytes.len() + 16 + id + c.account.as_str().len() + 1 + id;
                n += 1;
            }
            Err(e) => failed = Some(e.to_string()),
        }
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(total as f64 / n.max(1) as f64),
    }
}

fn logical_line(r: &mut Report) -> Result<(), String> {
    let b = logical_bytes()?;
    r.line(format!(
        "| logical: keys and values of the three tables | {b:.0} B | {b:.0} B |"
    ));
    Ok(())
}

fn disk_line(r: &mut Report, what: &str, n: usize, sled: DiskUsage, redb: Option<DiskUsage>) {
    let show = |u: DiskUsage| {
        format!(
            "{:.0} B ({:.1} MiB, {} files; {:.1} MiB apparent)",
            per_cred(u, n),
            u.allocated as f64 / 1048576.0,
            u.files,
            u.apparent as f64 / 1048576.0
        )
    };
    let redb = redb.map_or_else(|| "—".to_owned(), show);
    r.line(format!("| {what} | {} | {redb} |", show(sled)));
}

/// Stores of `n` credentials written one durable `put` at a time, alternating the backends:
/// how long it takes and what it leaves on disk.
fn put_built(r: &mut Report, n: usize) -> Result<(), String> {
    let creds = fresh_credentials(n);
    let sled_dir = scratch("put-sled")?.join("db");
    let redb_path = fixture::redb_file(&scratch("put-redb")?);
    let (mut sled_t, mut redb_t) = (0.0, 0.0);
    {
        let sled = SledStore::open(&sled_dir).map_err(s)?;
        let redb = RedbStore::open(&redb_path).map_err(s)?;
        for (i, c) in creds.iter().enumerate() {
            let sled_first = i % 2 == 0;
            for b in [sled_first, !sled_first] {
                let t = Instant::now();
                if b {
                    sled.put(c).map_err(s)?;
                    sled_t += t.elapsed().as_secs_f64();
                } else {
                    redb.put(c).map_err(s)?;
                    redb_t += t.elapsed().as_secs_f64();
                }
            }
        }
    }
    let (sled_built, redb_built) = (usage(&sled_dir)?, usage(&redb_path)?);
    // A reopen: sled may rewrite or drop segments, redb checks (and may rewrite) its allocator.
    drop(open_engine(Backend::Sled(sled_dir.clone()))?);
    drop(open_engine(Backend::Redb(redb_path.clone()))?);
    let (sled_reopened, redb_reopened) = (usage(&sled_dir)?, usage(&redb_path)?);
    let compacted =
        compacted_redb_copy(&redb_path, &scratch("put-redb-compacted")?.join("c.redb"))?;
    r.line(format!(
        "## {n} credentials written one durable `put` at a time\n\n\
         Alternating the backends: sled {:.1} s ({:.0} puts/s), redb {:.1} s ({:.0} puts/s).\n",
        sled_t,
        n as f64 / sled_t,
        redb_t,
        n as f64 / redb_t
    ));
    r.line("| disk, per credential (allocated) | sled | redb |");
    r.line("|---|---:|---:|");
    logical_line(r)?;
    disk_line(r, "after the puts", n, sled_built, Some(redb_built));
    disk_line(r, "after a reopen", n, sled_reopened, Some(redb_reopened));
    r.line(format!(
        "| redb compacted (copy) | — | {:.0} B |",
        per_cred(compacted, n)
    ));
    r.line("");
    r.row(
        format!("disk per credential, {n} written by `put`, after a reopen"),
        per_cred(sled_reopened, n),
        per_cred(redb_reopened, n),
        Unit::Bytes,
        TOLERANCE,
    );
    r.row(
        format!("time to write {n} credentials by `put`"),
        sled_t,
        redb_t,
        Unit::Secs,
        TOLERANCE,
    );
    for dir in ["put-sled", "put-redb", "put-redb-compacted"] {
        let _ = std::fs::remove_dir_all(fixture::data_dir().join(format!("backends-{dir}")));
    }
    Ok(())
}

/// The cached fixture stores of `n` credentials: build, disk, open + warm-up, verify.
fn at_size(r: &mut Report, a: &Args, n: usize) -> Result<(), String> {
    let kinds = [BackendKind::Sled, BackendKind::Redb];
    let mut built = Vec::new();
    for kind in kinds {
        let cached = fixture::store_is_cached(kind, n);
        let t = Instant::now();
        fixture::ensure_store(kind, n)?;
        built.push((!cached).then(|| t.elapsed().as_secs_f64()));
    }
    let paths = [
        fixture::sled_dir(n).join("db"),
        fixture::redb_file(&fixture::redb_dir(n)),
    ];
    let before = [usage(&paths[0])?, usage(&paths[1])?];

    let mut samples = [Vec::new(), Vec::new()];
    let mut order = [0, 1];
    for round in 0..a.opens {
        shuffle(&mut order, round as u64 ^ fixture::SHUFFLE_SEED);
        for &k in &order {
            let backend = fixture::cached_backend(kinds[k], n).ok_or("no cached backend")?;
            let t = Instant::now();
            let kw = open_engine(backend)?;
            let held = kw.store().len();
            samples[k].push(t.elapsed().as_secs_f64());
            if held != n || !kw.startup_errors().is_empty() {
                return Err(format!(
                    "{} store of {n} opened with {held} credentials and {} startup errors",
                    kinds[k].name(),
                    kw.startup_errors().len()
                ));
            }
            drop(kw);
        }
    }
    let [sled_open, redb_open] = samples.map(Stat::of);
    let after = [usage(&paths[0])?, usage(&paths[1])?];
    let compacted = compacted_redb_copy(&paths[1], &scratch("compacted")?.join("c.redb"))?;
    let _ = std::fs::remove_dir_all(fixture::data_dir().join("backends-compacted"));

    r.line(format!("## {n} credentials (bulk-built fixture stores)\n"));
    let build = |t: Option<f64>| match t {
        None => "cached from an earlier run".to_owned(),
        Some(t) => format!("built in {t:.1} s"),
    };
    r.line(format!(
        "sled store {}, redb store {}.\n",
        build(built[0]),
        build(built[1])
    ));
    r.line(format!(
        "| `Keyward::open` + warm-up, {} opens each | sled | redb |",
        a.opens
    ));
    r.line("|---|---:|---:|");
    for (what, f) in [
        ("median", (|st: &Stat| st.median) as fn(&Stat) -> f64),
        ("min", |st| st.min),
        ("max", |st| st.max),
    ] {
        r.line(format!(
            "| {what} | {} | {} |",
            Unit::Secs.show(f(&sled_open)),
            Unit::Secs.show(f(&redb_open))
        ));
    }
    r.line("");
    r.line("| disk, per credential (allocated) | sled | redb |");
    r.line("|---|---:|---:|");
    logical_line(r)?;
    disk_line(r, "as built (or cached)", n, before[0], Some(before[1]));
    disk_line(r, "after this run's opens", n, after[0], Some(after[1]));
    r.line(format!(
        "| redb compacted (copy) | — | {:.0} B |",
        per_cred(compacted, n)
    ));
    r.line("");
    r.row(
        format!("`Keyward::open` + warm-up, {n}, median"),
        sled_open.median,
        redb_open.median,
        Unit::Secs,
        TOLERANCE,
    );
    r.row(
        format!("disk per credential, {n} bulk-built, after opens"),
        per_cred(after[0], n),
        per_cred(after[1], n),
        Unit::Bytes,
        TOLERANCE,
    );
    verify(r, n, a.verify_rounds)
}

/// `verify` of hit keys on memory, sled and redb, round-robin.
fn verify(r: &mut Report, n: usize, rounds: usize) -> Result<(), String> {
    let fixtures = [
        fixture::fixture(BackendKind::Memory, n)?,
        fixture::fixture(BackendKind::Sled, n)?,
        fixture::fixture(BackendKind::Redb, n)?,
    ];
    let mut cycles: Vec<Cycle<'_, String>> =
        fixtures.iter().map(|f| Cycle::new(&f.keys.hit)).collect();
    let mut samples = [Vec::new(), Vec::new(), Vec::new()];
    let mut order = [0, 1, 2];
    let warm_up = (rounds / 10).max(3);
    for round in 0..warm_up + rounds {
        shuffle(&mut order, round as u64 ^ fixture::SHUFFLE_SEED);
        for &c in &order {
            let kw = &fixtures[c].engine;
            let keys = &mut cycles[c];
            let t = Instant::now();
            let ok = (0..VERIFY_BATCH)
                .filter(|_| kw.verify(black_box(keys.next())).is_ok())
                .count();
            let ns = t.elapsed().as_secs_f64() * 1e9 / VERIFY_BATCH as f64;
            if ok != VERIFY_BATCH {
                return Err(format!("{} rejected a hit key", fixtures[c].backend.name()));
            }
            if round >= warm_up {
                samples[c].push(ns);
            }
        }
    }
    let [m, sl, rd] = samples.map(Stat::of);
    r.line(format!(
        "| verify hit, {n}, interleaved ({rounds} rounds of {VERIFY_BATCH}) | memory | sled | redb |"
    ));
    r.line("|---|---:|---:|---:|");
    r.line(format!(
        "| median | {:.1} ns | {:.1} ns | {:.1} ns |",
        m.median, sl.median, rd.median
    ));
    r.line(format!(
        "| ÷ memory | 1.00× | {:.2}× | {:.2}× |\n",
        sl.median / m.median,
        rd.median / m.median
    ));
    r.row(
        format!("verify hit ÷ memory, {n}"),
        sl.median / m.median,
        rd.median / m.median,
        Unit::Ratio,
        VERIFY_TOLERANCE,
    );
    Ok(())
}

fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|m| m.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let threads = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{threads} threads, {cpu}, Linux {}",
        read("/proc/sys/kernel/osrelease").trim()
    )
}

/// The 1-minute load average, and the share of the last minute in which some task waited on
/// I/O (`/proc/pressure/io`): other tenants' disk traffic shows there, not in the load.
fn load() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let avg = read("/proc/loadavg")
        .split_whitespace()
        .next()
        .map_or_else(|| "?".to_owned(), str::to_owned);
    let io = read("/proc/pressure/io")
        .lines()
        .find(|l| l.starts_with("some"))
        .and_then(|l| l.split_whitespace().find_map(|f| f.strip_prefix("avg60=")))
        .map_or_else(|| "?".to_owned(), |v| format!("{v} %"));
    format!("load average (1 min) {avg}, I/O pressure (some, 1 min) {io}")
}

fn run(a: &Args) -> Result<Report, String> {
    let mut r = Report::default();
    let started = Instant::now();
    r.line(format!(
        "# sled and redb side by side{}\n",
        if a.quick { " (quick run)" } else { "" }
    ));
    r.line(format!(
        "Machine: {}. At the start: {}.\n",
        machine(),
        load()
    ));
    writes(&mut r, a.rounds)?;
    put_built(&mut r, a.put)?;
    for &n in &a.sizes {
        at_size(&mut r, a, n)?;
    }
    r.line(format!(
        "At the end: {}; the run took {:.0} s.\n",
        load(),
        started.elapsed().as_secs_f64()
    ));
    r.line("## Summary\n");
    r.line("| axis | sled | redb | redb ÷ sled | favours |");
    r.line("|---|---:|---:|---:|---|");
    let rows = std::mem::take(&mut r.summary);
    for row in &rows {
        r.line(format!(
            "| {} | {} | {} | {:.2}× | {} |",
            row.axis, row.sled, row.redb, row.ratio, row.favours
        ));
    }
    r.line("| kills survived | see kill harness | see kill harness | | |");
    Ok(r)
}

fn main() -> ExitCode {
    let args = match Args::parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("keyward-backends: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = match run(&args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("keyward-backends: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut md = report.md;
    let _ = writeln!(md);
    let path = fixture::data_dir().join("backends.md");
    if let Err(e) = std::fs::write(&path, md) {
        eprintln!("cannot write {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    eprintln!("wrote {}", path.display());
    ExitCode::SUCCESS
}
