//! The verify hot path at 10k and 1M credentials on the memory and sled backends, the floor,
//! peer and naive baselines, and 1 vs 2 threads verifying at once.
//!
//! Every iteration presents the next key of a pre-generated shuffled array (never one key
//! repeated). `KEYWARD_BENCH_SIZES`, `KEYWARD_BENCH_BACKENDS` and `KEYWARD_BENCH_QUICK` shrink
//! the run (see `docs/BENCHMARKS.md`).
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::print_stderr, missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use keyward::core::Environment;
use keyward_benches::baselines::{Floor, Naive, Peer};
use keyward_benches::fixture::{self, Fixture, for_each_credential, shuffle};
use keyward_benches::threads::{Cycle, run_concurrent};

fn configure(c: &mut Criterion) -> criterion::BenchmarkGroup<'_, criterion::measurement::WallTime> {
    let (warm, measure) = fixture::timing();
    let mut g = c.benchmark_group("verify");
    g.warm_up_time(warm).measurement_time(measure);
    g
}

fn engine_cases(c: &mut Criterion, fx: &Fixture) {
    let n = fx.n;
    let b = fx.backend.name();
    let kw = &fx.engine;
    let mut g = configure(c);
    g.bench_function(BenchmarkId::new(format!("{b}_hit"), n), |bench| {
        let mut keys = Cycle::new(&fx.keys.hit);
        bench.iter(|| black_box(kw.verify(black_box(keys.next()))).is_ok());
    });
    g.bench_function(BenchmarkId::new(format!("{b}_hit_with"), n), |bench| {
        let mut keys = Cycle::new(&fx.keys.hit);
        bench.iter(|| black_box(kw.verify_with(black_box(keys.next()), |v| v.version())).is_ok());
    });
    g.bench_function(BenchmarkId::new(format!("{b}_wrong_secret"), n), |bench| {
        let mut keys = Cycle::new(&fx.keys.wrong_secret);
        bench.iter(|| black_box(kw.verify(black_box(keys.next()))).is_ok());
    });
    g.bench_function(BenchmarkId::new(format!("{b}_unknown"), n), |bench| {
        let mut keys = Cycle::new(&fx.keys.unknown);
        bench.iter(|| black_box(kw.verify(black_box(keys.next()))).is_ok());
    });
    g.bench_function(BenchmarkId::new(format!("{b}_bad_checksum"), n), |bench| {
        let mut keys = Cycle::new(&fx.keys.bad_checksum);
        bench.iter(|| black_box(kw.verify(black_box(keys.next()))).is_ok());
    });
    g.bench_function(BenchmarkId::new(format!("{b}_malformed"), n), |bench| {
        let mut keys = Cycle::new(&fx.keys.malformed);
        bench.iter(|| black_box(kw.verify(black_box(keys.next()))).is_ok());
    });
    let perm = fixture::required_permission();
    let env = Environment::Production;
    g.bench_function(BenchmarkId::new(format!("{b}_verify_for"), n), |bench| {
        let mut keys = Cycle::new(&fx.keys.hit);
        bench.iter(|| {
            black_box(kw.verify_for(black_box(keys.next()), Some(&env), Some(&perm))).is_ok()
        });
    });
    g.finish();

    let (warm, measure) = fixture::timing();
    let mut g = c.benchmark_group("threads");
    g.warm_up_time(warm).measurement_time(measure);
    for threads in [1, 2] {
        g.bench_function(BenchmarkId::new(format!("{b}_{threads}t"), n), |bench| {
            bench.iter_custom(|iters| {
                run_concurrent(threads, iters, &fx.keys.hit, &|k: &String| {
                    black_box(kw.verify(k).is_ok());
                })
            });
        });
    }
    g.finish();
}

fn baselines(c: &mut Criterion, n: usize) {
    let mut creds = Vec::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    for_each_credential(n, fixture::SEED, |cred, key| {
        creds.push(cred);
        keys.push(key);
    });
    let floor = Floor::new(&creds);
    let naive = Naive::new(keys.iter().map(String::as_str).zip(&creds));
    drop(creds);
    shuffle(&mut keys, fixture::SHUFFLE_SEED);
    let (peer, mut peer_keys) = Peer::generate(n);
    shuffle(&mut peer_keys, fixture::SHUFFLE_SEED);
    assert!(keys.iter().take(100).all(|k| floor.verify(k)));
    assert!(keys.iter().take(100).all(|k| naive.verify(k).is_some()));
    assert!(peer_keys.iter().take(100).all(|k| peer.verify(k)));

    let mut g = configure(c);
    g.bench_function(BenchmarkId::new("floor", n), |bench| {
        let mut keys = Cycle::new(&keys);
        bench.iter(|| floor.verify(black_box(keys.next())));
    });
    g.bench_function(BenchmarkId::new("peer", n), |bench| {
        let mut keys = Cycle::new(&peer_keys);
        bench.iter(|| peer.verify(black_box(keys.next())));
    });
    g.bench_function(BenchmarkId::new("naive", n), |bench| {
        let mut keys = Cycle::new(&keys);
        bench.iter(|| black_box(naive.verify(black_box(keys.next()))).is_some());
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    for n in fixture::sizes() {
        baselines(c, n);
        for backend in fixture::backends() {
            match fixture::fixture(backend, n) {
                Ok(fx) => {
                    assert!(
                        fx.keys
                            .hit
                            .iter()
                            .take(100)
                            .all(|k| fx.engine.verify(k).is_ok())
                    );
                    engine_cases(c, &fx);
                }
                Err(e) => eprintln!("skipping the {} backend at n={n}: {e}", backend.name()),
            }
        }
    }
}

criterion_group!(verify, benches);
criterion_main!(verify);
