//! Writes: durable issue on sled against a bare sled insert + flush measured in the same run,
//! issue on the memory backend, and regenerate on both (and on redb with
//! `KEYWARD_BENCH_BACKENDS=memory,sled,redb`; the redb floor and the side-by-side comparison
//! are in `keyward-backends`).
//!
//! To explain where a durable issue's time goes, the same run also measures, on plain sled
//! databases (`sled_bare_*`): three inserts into three trees; the three-tree transaction the
//! store wrote until the write-intent protocol replaced it (read the record and the lookup
//! entry, insert lookup, account and record), with and without the flush; and the same three
//! keys as one atomic `apply_batch` in a single tree. `sled_put` is `SledStore::put` alone (no
//! key generation, no hot index); `keygen` is the key and id generation of one issue;
//! `memory_issue_small_store` is `memory_issue` on a store that never exceeds 1,000 credentials.
//!
//! criterion runs one case after the other, so on a shared machine each case sees a different
//! load. `KEYWARD_BENCH_INTERLEAVE=<rounds>` runs the durable cases interleaved instead: every
//! round runs each case once, in a shuffled order, each against its own database, and the
//! medians and their ratios are printed at the end (no criterion output).
#![forbid(unsafe_code)]
#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    clippy::print_stdout,
    missing_docs
)]

use std::fs::File;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion};
use keyward::core::{Credential, CredentialId, Environment, KeyFormat, KeyType, random_id};
use keyward::rotation::RegenerateOptions;
use keyward::store::{SledStore, Store};
use keyward::{Backend, Keyward, NewKey, Principal};
use keyward_benches::fixture::{self, BackendKind};
use rand_chacha::ChaCha20Rng;
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

fn new_key(i: usize) -> NewKey {
    NewKey::new(
        fixture::account(i),
        KeyType::Secret,
        Environment::Production,
        "bench key".parse().unwrap(),
    )
    .with_permissions(fixture::permissions())
}

fn scratch(name: &str) -> PathBuf {
    let dir = fixture::data_dir().join(format!("scratch-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn engine(backend: BackendKind, name: &str) -> Result<Keyward, String> {
    let b = match backend {
        BackendKind::Memory => Backend::Memory,
        BackendKind::Sled => Backend::Sled(scratch(name).join("db")),
        BackendKind::Redb => Backend::Redb(fixture::redb_file(&scratch(name))),
    };
    let kw = Keyward::open(fixture::config(b)).map_err(|e| e.to_string())?;
    kw.issue(&Principal::LocalOperator, new_key(0))
        .map_err(|e| e.to_string())?;
    Ok(kw)
}

fn group<'a>(
    c: &'a mut Criterion,
    backend: BackendKind,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group("write");
    if backend != BackendKind::Memory {
        // Each durable write waits for the disk: fewer, longer samples.
        g.sample_size(20)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(if fixture::quick() { 2 } else { 5 }));
    } else {
        let (warm, measure) = fixture::timing();
        g.warm_up_time(warm).measurement_time(measure);
    }
    g
}

/// A plain sled database with the store's three trees (and one more for the single-tree
/// batch), and its data file for the `fdatasync`.
struct Bare {
    db: sled::Db,
    data: File,
    records: sled::Tree,
    lookup: sled::Tree,
    accounts: sled::Tree,
    one: sled::Tree,
    /// The same record bytes the store writes.
    bytes: Vec<u8>,
    i: u64,
}

impl Bare {
    fn open(name: &str) -> Self {
        let mut cred = None;
        fixture::for_each_credential(1, fixture::UNKNOWN_SEED, |c, _| cred = Some(c));
        let bytes = keyward::store::encode_credential(&cred.unwrap()).unwrap();
        let dir = scratch(name);
        let db = sled::Config::new()
            .path(dir.join("db"))
            .cache_capacity(64 * 1024 * 1024)
            .open()
            .unwrap();
        let data = File::open(dir.join("db").join("db")).unwrap();
        let tree = |name: &str| db.open_tree(name).unwrap();
        Self {
            records: tree("records"),
            lookup: tree("lookup"),
            accounts: tree("accounts"),
            one: tree("one"),
            db,
            data,
            bytes,
            i: 0,
        }
    }

    /// The next credential's keys: record id, lookup tag, account entry.
    fn next_keys(&mut self) -> (String, String, String) {
        self.i += 1;
        let i = self.i;
        let id = format!("key_{i:025}");
        (
            format!("lk{i:014}"),
            format!("acc_{:05}\0{id}", i % 1000),
            id,
        )
    }

    fn durable(&self) {
        self.db.flush().unwrap();
        self.data.sync_data().unwrap();
    }

    fn insert_flush(&mut self) {
        let (_, _, id) = self.next_keys();
        self.db
            .insert(id.as_bytes(), self.bytes.as_slice())
            .unwrap();
        self.db.flush().unwrap();
    }

    fn insert_flush_fdatasync(&mut self) {
        let (_, _, id) = self.next_keys();
        self.db
            .insert(id.as_bytes(), self.bytes.as_slice())
            .unwrap();
        self.durable();
    }

    fn insert3_flush_fdatasync(&mut self) {
        let (lk, acc, id) = self.next_keys();
        self.lookup.insert(lk.as_bytes(), id.as_bytes()).unwrap();
        self.accounts.insert(acc.as_bytes(), &[][..]).unwrap();
        self.records
            .insert(id.as_bytes(), self.bytes.as_slice())
            .unwrap();
        self.durable();
    }

    /// The shape of the store's former write: one transaction over the three trees.
    fn tx3(&mut self) {
        let (lk, acc, id) = self.next_keys();
        let bytes = self.bytes.as_slice();
        (&self.records, &self.lookup, &self.accounts)
            .transaction(|(r, l, a)| {
                black_box(r.get(id.as_bytes())?);
                black_box(l.get(lk.as_bytes())?);
                l.insert(lk.as_bytes(), id.as_bytes())?;
                a.insert(acc.as_bytes(), &[][..])?;
                r.insert(id.as_bytes(), bytes)?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .unwrap();
    }

    fn tx3_flush_fdatasync(&mut self) {
        self.tx3();
        self.durable();
    }

    /// The three keys as one atomic batch in a single tree (prefixed keys).
    fn batch_flush_fdatasync(&mut self) {
        let (lk, acc, id) = self.next_keys();
        let (rk, lk, ak) = (format!("r{id}"), format!("l{lk}"), format!("a{acc}"));
        black_box(self.one.get(rk.as_bytes()).unwrap());
        black_box(self.one.get(lk.as_bytes()).unwrap());
        let mut batch = sled::Batch::default();
        batch.insert(lk.as_bytes(), id.as_bytes());
        batch.insert(ak.as_bytes(), &[][..]);
        batch.insert(rk.as_bytes(), self.bytes.as_slice());
        self.one.apply_batch(batch).unwrap();
        self.durable();
    }
}

fn bare_sled(c: &mut Criterion) {
    let mut bare = Bare::open("bare");
    let mut g = group(c, BackendKind::Sled);
    g.bench_function("sled_bare_insert_flush", |b| b.iter(|| bare.insert_flush()));
    g.bench_function("sled_bare_insert_flush_fdatasync", |b| {
        b.iter(|| bare.insert_flush_fdatasync());
    });
    g.bench_function("sled_bare_insert3_flush_fdatasync", |b| {
        b.iter(|| bare.insert3_flush_fdatasync());
    });
    g.bench_function("sled_bare_tx3_flush_fdatasync", |b| {
        b.iter(|| bare.tx3_flush_fdatasync());
    });
    // The transaction alone: the flush (and the log writes the transaction queued) happen
    // outside the timed part.
    g.bench_function("sled_bare_tx3_noflush", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                bare.tx3();
                spent += t.elapsed();
                bare.durable();
            }
            spent
        });
    });
    g.bench_function("sled_bare_batch_flush_fdatasync", |b| {
        b.iter(|| bare.batch_flush_fdatasync());
    });
    g.finish();
}

/// Fresh fixture credentials for `SledStore::put`.
struct Creds {
    format: KeyFormat,
    pepper: keyward::core::Pepper,
    rng: ChaCha20Rng,
    i: usize,
}

impl Creds {
    fn new() -> Self {
        Self {
            format: KeyFormat::default(),
            pepper: fixture::pepper(),
            rng: fixture::rng(fixture::UNKNOWN_SEED),
            i: 0,
        }
    }

    fn next(&mut self) -> Credential {
        self.i += 1;
        let g = self
            .format
            .generate_with(
                &mut self.rng,
                KeyType::Secret,
                &Environment::Production,
                &self.pepper,
            )
            .unwrap();
        let id = CredentialId::random_with(&mut self.rng);
        fixture::credential(id, self.i % fixture::ACCOUNTS, g.lookup, g.digest)
    }
}

fn store_put(c: &mut Criterion) {
    let store = SledStore::open(scratch("store").join("db")).unwrap();
    let mut creds = Creds::new();
    let mut g = group(c, BackendKind::Sled);
    g.bench_function("sled_put", |b| {
        b.iter_batched(
            || creds.next(),
            |cred| black_box(store.put(&cred).unwrap()),
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

fn issue_parts(c: &mut Criterion) {
    let format = KeyFormat::default();
    let pepper = fixture::pepper();
    let mut g = group(c, BackendKind::Memory);
    g.bench_function("keygen", |b| {
        b.iter(|| {
            black_box(
                format
                    .generate(KeyType::Secret, &Environment::Production, &pepper)
                    .unwrap(),
            );
            black_box(random_id().unwrap())
        });
    });
    // `memory_issue` keeps every key it issues, so its store grows to hundreds of thousands of
    // credentials during a run. The same issue on a store that never holds more than
    // `SMALL_STORE` credentials (a fresh engine, opened outside the timing, every
    // `SMALL_STORE` issues) shows how much of that is the store's size.
    const SMALL_STORE: u64 = 1_000;
    g.bench_function("memory_issue_small_store", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let kw = engine(BackendKind::Memory, "unused").unwrap();
                let n = SMALL_STORE.min(iters - done);
                let t = Instant::now();
                for i in 0..n {
                    black_box(
                        kw.issue(&Principal::LocalOperator, new_key(i as usize))
                            .unwrap(),
                    );
                }
                spent += t.elapsed();
                done += n;
                drop(kw);
            }
            spent
        });
    });
    g.finish();
}

fn engine_writes(c: &mut Criterion, backend: BackendKind) {
    let kw = match engine(backend, &format!("engine-{}", backend.name())) {
        Ok(kw) => kw,
        Err(e) => {
            eprintln!("skipping {} writes: {e}", backend.name());
            return;
        }
    };
    let name = backend.name();
    let mut g = group(c, backend);
    let mut i = 0;
    g.bench_function(format!("{name}_issue"), |b| {
        b.iter(|| {
            i += 1;
            black_box(kw.issue(&Principal::LocalOperator, new_key(i)).unwrap())
        });
    });
    let opts = RegenerateOptions::default();
    g.bench_function(format!("{name}_regenerate"), |b| {
        b.iter_batched(
            || {
                i += 1;
                kw.issue(&Principal::LocalOperator, new_key(i))
                    .unwrap()
                    .credential
                    .id
                    .clone()
            },
            |id| black_box(kw.regenerate(&Principal::LocalOperator, &id, opts).unwrap()),
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let backends = fixture::backends();
    if backends.contains(&BackendKind::Sled) {
        bare_sled(c);
        store_put(c);
    }
    issue_parts(c);
    for backend in backends {
        engine_writes(c, backend);
    }
}

/// `KEYWARD_BENCH_INTERLEAVE=<rounds>`: the durable cases round-robin in a shuffled order,
/// each on its own database, so that all of them see the same load.
fn interleaved(rounds: usize) {
    type Case<'a> = (&'static str, Box<dyn FnMut() + 'a>);
    let mut bare: Vec<Bare> = (0..5).map(|i| Bare::open(&format!("bare{i}"))).collect();
    let mut bare = bare.iter_mut();
    let mut next_bare = || bare.next().unwrap();
    let (b0, b1, b2, b3, b4) = (
        next_bare(),
        next_bare(),
        next_bare(),
        next_bare(),
        next_bare(),
    );
    let store = SledStore::open(scratch("istore").join("db")).unwrap();
    let mut creds = Creds::new();
    let kw = engine(BackendKind::Sled, "iengine").unwrap();
    let mut n = 0;
    let mut cases: Vec<Case<'_>> = vec![
        ("sled_bare_insert_flush", Box::new(|| b0.insert_flush())),
        (
            "sled_bare_insert_flush_fdatasync",
            Box::new(|| b1.insert_flush_fdatasync()),
        ),
        (
            "sled_bare_insert3_flush_fdatasync",
            Box::new(|| b2.insert3_flush_fdatasync()),
        ),
        (
            "sled_bare_tx3_flush_fdatasync",
            Box::new(|| b3.tx3_flush_fdatasync()),
        ),
        (
            "sled_bare_batch_flush_fdatasync",
            Box::new(|| b4.batch_flush_fdatasync()),
        ),
        (
            "sled_put",
            Box::new(|| {
                black_box(store.put(&creds.next()).unwrap());
            }),
        ),
        (
            "sled_issue",
            Box::new(|| {
                n += 1;
                black_box(kw.issue(&Principal::LocalOperator, new_key(n)).unwrap());
            }),
        ),
    ];
    let warm_up = (rounds / 10).max(5);
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); cases.len()];
    let mut order: Vec<usize> = (0..cases.len()).collect();
    for round in 0..warm_up + rounds {
        fixture::shuffle(&mut order, round as u64);
        for &c in &order {
            let t = Instant::now();
            (cases[c].1)();
            let us = t.elapsed().as_secs_f64() * 1e6;
            if round >= warm_up {
                samples[c].push(us);
            }
        }
    }
    let quantile = |v: &[f64], q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    let mut medians = Vec::new();
    println!("interleaved: {rounds} rounds (after {warm_up} warm-up rounds), µs per write");
    println!("{:<36} {:>9} {:>9} {:>9}", "case", "p25", "median", "p75");
    for (c, v) in samples.iter_mut().enumerate() {
        v.sort_by(f64::total_cmp);
        let m = quantile(v, 0.5);
        medians.push(m);
        println!(
            "{:<36} {:>9.1} {:>9.1} {:>9.1}",
            cases[c].0,
            quantile(v, 0.25),
            m,
            quantile(v, 0.75)
        );
    }
    let (flush, fsync) = (medians[0], medians[1]);
    for (c, m) in medians.iter().enumerate().skip(2) {
        println!(
            "{:<36} {:>6.2}x bare insert + flush, {:>5.2}x bare insert + flush + fdatasync",
            cases[c].0,
            m / flush,
            m / fsync
        );
    }
}

fn main() {
    if let Some(rounds) = std::env::var("KEYWARD_BENCH_INTERLEAVE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        interleaved(rounds);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
}
