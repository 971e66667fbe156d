//! What each design choice on the verify path buys, measured against its alternative:
//!
//! * the folding hasher vs SipHash-1-3 (one probe of an scc / papaya / std map of lookup tags);
//! * scc's `HashIndex` (the hot index's map) vs papaya (its map before) vs `RwLock<HashMap>`
//!   (std and parking_lot) with 1 and 2 threads doing the floor's operation;
//! * a lookup tag vs scanning every record (per-record salts, as with bcrypt/argon2 digests);
//! * the authoritative local index / negative cache vs a backend read per unknown key.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::print_stderr, missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use keyward::Keyward;
use keyward::core::{Digest, LookupTag, parse_any};
use keyward::store::{MemoryStore, SledStore, Store};
use keyward_benches::design::{
    PapayaFold, PapayaSip, PlRwLockFold, RwLockFold, Scan, SccFold, StdFold, StdSip, TagMap,
    floor_verify, papaya_from, scc_from, std_from,
};
use keyward_benches::fixture::{self, for_each_credential, shuffle};
use keyward_benches::threads::{Cycle, run_concurrent};

fn tag_of(key: &str) -> LookupTag {
    parse_any(key).unwrap().lookup()
}

fn probes(c: &mut Criterion, n: usize, pairs: &[(LookupTag, Digest)], tags: &[LookupTag]) {
    let (warm, measure) = fixture::timing();
    let mut g = c.benchmark_group("design");
    g.warm_up_time(warm).measurement_time(measure);
    fn probe_bench(
        g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
        name: &str,
        n: usize,
        map: &impl TagMap,
        tags: &[LookupTag],
    ) {
        g.bench_function(BenchmarkId::new(name, n), |b| {
            let mut tags = Cycle::new(tags);
            b.iter(|| black_box(map.probe(black_box(tags.next()))).is_some());
        });
    }
    probe_bench(
        &mut g,
        "probe_scc_fold",
        n,
        &scc_from::<_>(pairs) as &SccFold,
        tags,
    );
    probe_bench(
        &mut g,
        "probe_papaya_fold",
        n,
        &papaya_from::<_>(pairs) as &PapayaFold,
        tags,
    );
    probe_bench(
        &mut g,
        "probe_papaya_sip",
        n,
        &papaya_from::<_>(pairs) as &PapayaSip,
        tags,
    );
    probe_bench(
        &mut g,
        "probe_std_fold",
        n,
        &std_from::<_>(pairs) as &StdFold,
        tags,
    );
    probe_bench(
        &mut g,
        "probe_std_sip",
        n,
        &std_from::<_>(pairs) as &StdSip,
        tags,
    );
    g.finish();
}

fn locks(c: &mut Criterion, n: usize, pairs: &[(LookupTag, Digest)], keys: &[String]) {
    let (warm, measure) = fixture::timing();
    let mut g = c.benchmark_group("design");
    g.warm_up_time(warm).measurement_time(measure);
    let pepper = [0x5a; 32];
    fn lock_bench(
        g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
        name: &str,
        n: usize,
        map: &impl TagMap,
        keys: &[String],
        pepper: &[u8; 32],
    ) {
        for threads in [1, 2] {
            g.bench_function(BenchmarkId::new(format!("{name}_{threads}t"), n), |b| {
                b.iter_custom(|iters| {
                    run_concurrent(threads, iters, keys, &|k: &String| {
                        black_box(floor_verify(map, pepper, k));
                    })
                });
            });
        }
    }
    let scc: SccFold = scc_from(pairs);
    lock_bench(&mut g, "floor_scc", n, &scc, keys, &pepper);
    drop(scc);
    let papaya: PapayaFold = papaya_from(pairs);
    lock_bench(&mut g, "floor_papaya", n, &papaya, keys, &pepper);
    drop(papaya);
    let std_lock: RwLockFold = std::sync::RwLock::new(std_from(pairs));
    lock_bench(&mut g, "floor_std_rwlock", n, &std_lock, keys, &pepper);
    drop(std_lock);
    let pl_lock: PlRwLockFold = parking_lot::RwLock::new(std_from(pairs));
    lock_bench(
        &mut g,
        "floor_parking_lot_rwlock",
        n,
        &pl_lock,
        keys,
        &pepper,
    );
    g.finish();
}

fn scan(c: &mut Criterion, keys: &[String]) {
    // Scanning is O(n) blake3 hashes per key: measured at 10k at most, that is enough to see it.
    let n = keys.len().min(10_000);
    let keys = &keys[..n];
    let scan = Scan::new(keys.iter().map(String::as_str));
    let mut presented = keys.to_vec();
    shuffle(&mut presented, fixture::SHUFFLE_SEED);
    let mut g = c.benchmark_group("design");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(if fixture::quick() { 1 } else { 3 }));
    g.bench_function(BenchmarkId::new("scan_no_lookup_tag", n), |b| {
        let mut keys = Cycle::new(&presented);
        b.iter(|| scan.verify(black_box(keys.next())));
    });
    g.finish();
}

/// Unknown keys against a shared backend (the negative cache answers repeats) and the backend
/// read each would cost without the authoritative local index.
fn negative(c: &mut Criterion, n: usize) {
    let (warm, measure) = fixture::timing();
    // Fewer distinct unknown keys than the negative cache holds, so that it is warm.
    let unknown = fixture::unknown_keys(keyward::store::NEGATIVE_CACHE_CAPACITY / 2);
    let store = MemoryStore::shared();
    for_each_credential(n, fixture::SEED, |cred, _| {
        store.put(&cred).unwrap();
    });
    let kw = Keyward::open(fixture::config(keyward::Backend::Custom(Box::new(store)))).unwrap();
    for k in &unknown {
        let _ = kw.verify(k);
    }
    let mut g = c.benchmark_group("design");
    g.warm_up_time(warm).measurement_time(measure);
    g.bench_function(BenchmarkId::new("unknown_shared_negative_cache", n), |b| {
        let mut keys = Cycle::new(&unknown);
        b.iter(|| black_box(kw.verify(black_box(keys.next()))).is_ok());
    });
    let backend = kw.store().backend();
    let tags: Vec<LookupTag> = unknown.iter().map(|k| tag_of(k)).collect();
    g.bench_function(BenchmarkId::new("unknown_memory_backend_read", n), |b| {
        let mut tags = Cycle::new(&tags);
        b.iter(|| black_box(backend.find_by_lookup(black_box(tags.next())).unwrap()).is_some());
    });
    drop(kw);
    if fixture::backends().contains(&fixture::BackendKind::Sled) {
        match fixture::ensure_sled_store(n).and_then(|_| {
            SledStore::open(fixture::sled_dir(n).join("db")).map_err(|e| e.to_string())
        }) {
            Ok(sled) => {
                g.bench_function(BenchmarkId::new("unknown_sled_backend_read", n), |b| {
                    let mut tags = Cycle::new(&tags);
                    b.iter(|| black_box(sled.find_by_lookup(black_box(tags.next())).unwrap()));
                });
            }
            Err(e) => eprintln!("skipping the sled backend read at n={n}: {e}"),
        }
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    let sizes = fixture::sizes();
    for &n in &sizes {
        let mut pairs = Vec::with_capacity(n);
        let mut keys = Vec::with_capacity(n);
        for_each_credential(n, fixture::SEED, |cred, key| {
            pairs.push((cred.secrets[0].lookup, cred.secrets[0].digest));
            keys.push(key);
        });
        shuffle(&mut keys, fixture::SHUFFLE_SEED);
        let tags: Vec<LookupTag> = keys.iter().map(|k| tag_of(k)).collect();
        probes(c, n, &pairs, &tags);
        locks(c, n, &pairs, &keys);
        if n == sizes[0] {
            scan(c, &keys);
        }
        negative(c, n);
    }
}

criterion_group!(design, benches);
criterion_main!(design);
