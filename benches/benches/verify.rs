//! The verify hot path at 10k and 1M credentials on the memory and sled backends (and redb with
//! `KEYWARD_BENCH_BACKENDS=memory,sled,redb`), the floor, peer and naive baselines, and 1 vs 2
//! threads verifying at once.
//!
//! Every iteration presents the next key of a pre-generated shuffled array (never one key
//! repeated). `KEYWARD_BENCH_SIZES`, `KEYWARD_BENCH_BACKENDS` and `KEYWARD_BENCH_QUICK` shrink
//! the run (see `docs/BENCHMARKS.md`). `KEYWARD_BENCH_INTERLEAVE=<rounds>` runs the
//! single-thread cases interleaved instead (see [`interleaved`]).
#![forbid(unsafe_code)]
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs
)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group};
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
    // The borrowing form: no reference count written, so nothing shared is written at all.
    for threads in [1, 2] {
        g.bench_function(
            BenchmarkId::new(format!("{b}_with_{threads}t"), n),
            |bench| {
                bench.iter_custom(|iters| {
                    run_concurrent(threads, iters, &fx.keys.hit, &|k: &String| {
                        black_box(kw.verify_with(k, |v| v.version()).is_ok());
                    })
                });
            },
        );
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
    let keys = fixture::compact(&keys);
    let (peer, mut peer_keys) = Peer::generate(n);
    shuffle(&mut peer_keys, fixture::SHUFFLE_SEED);
    let peer_keys = fixture::compact(&peer_keys);
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

/// `KEYWARD_BENCH_INTERLEAVE=<rounds>`: the single-thread verify cases and the baselines
/// round-robin, in a shuffled order each round, `BATCH` verifications per case per round, so
/// that every case sees the same machine: on a shared VM the speed drifts by tens of percent
/// over the minutes a criterion run takes, and consecutive cases are measured in different
/// weather. Prints the median ns per verification of each case and the target ratios.
fn interleaved(rounds: usize) {
    const BATCH: usize = 2_000;
    let mut all = serde_json::Map::new();
    type Case<'a> = (String, Box<dyn FnMut() -> usize + 'a>);
    fn case<'a, K: 'a>(name: String, keys: &'a [K], f: impl Fn(&K) -> bool + 'a) -> Case<'a> {
        let mut keys = Cycle::new(keys);
        let run = move || (0..BATCH).filter(|_| f(black_box(keys.next()))).count();
        (name, Box::new(run))
    }
    for n in fixture::sizes() {
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
        let keys = fixture::compact(&keys);
        let (peer, mut peer_keys) = Peer::generate(n);
        shuffle(&mut peer_keys, fixture::SHUFFLE_SEED);
        let peer_keys = fixture::compact(&peer_keys);
        let fixtures: Vec<Fixture> = fixture::backends()
            .into_iter()
            .filter_map(|b| match fixture::fixture(b, n) {
                Ok(fx) => Some(fx),
                Err(e) => {
                    eprintln!("skipping the {} backend at n={n}: {e}", b.name());
                    None
                }
            })
            .collect();
        let mut cases: Vec<Case<'_>> = vec![
            case("floor".into(), &keys, |k| floor.verify(k)),
            case("peer".into(), &peer_keys, |k| peer.verify(k)),
            case("naive".into(), &keys, |k| naive.verify(k).is_some()),
        ];
        for fx in &fixtures {
            let (b, kw) = (fx.backend.name(), &fx.engine);
            cases.push(case(format!("{b}_hit"), &fx.keys.hit, |k| {
                kw.verify(k).is_ok()
            }));
            cases.push(case(format!("{b}_hit_with"), &fx.keys.hit, |k| {
                kw.verify_with(k, |v| v.version()).is_ok()
            }));
            cases.push(case(
                format!("{b}_wrong_secret"),
                &fx.keys.wrong_secret,
                |k| kw.verify(k).is_ok(),
            ));
            cases.push(case(format!("{b}_unknown"), &fx.keys.unknown, |k| {
                kw.verify(k).is_ok()
            }));
            cases.push(case(
                format!("{b}_bad_checksum"),
                &fx.keys.bad_checksum,
                |k| kw.verify(k).is_ok(),
            ));
            cases.push(case(format!("{b}_malformed"), &fx.keys.malformed, |k| {
                kw.verify(k).is_ok()
            }));
        }
        let warm_up = (rounds / 10).max(3);
        let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); cases.len()];
        let mut order: Vec<usize> = (0..cases.len()).collect();
        for round in 0..warm_up + rounds {
            shuffle(&mut order, round as u64);
            for &c in &order {
                let t = std::time::Instant::now();
                black_box((cases[c].1)());
                let ns = t.elapsed().as_secs_f64() * 1e9 / BATCH as f64;
                if round >= warm_up {
                    samples[c].push(ns);
                }
            }
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let medians: Vec<(String, f64)> = cases
            .iter()
            .zip(&mut samples)
            .map(|((name, _), v)| (name.clone(), median(v)))
            .collect();
        let get = |name: &str| medians.iter().find(|(k, _)| k == name).map(|(_, m)| *m);
        println!("interleaved, n={n}: {rounds} rounds of {BATCH} per case, median ns per verify");
        for (name, m) in &medians {
            println!("  {name:<22} {m:>9.1} ns");
        }
        let ratio = |what: &str, a: &str, b: &str| {
            if let (Some(a), Some(b)) = (get(a), get(b)) {
                println!("  {what:<40} {:>6.2}x", a / b);
            }
        };
        all.insert(
            n.to_string(),
            medians
                .iter()
                .map(|(k, m)| (k.clone(), serde_json::json!(m)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        );
        ratio("memory hit / floor", "memory_hit", "floor");
        ratio("memory hit_with / floor", "memory_hit_with", "floor");
        ratio("sled hit / memory hit", "sled_hit", "memory_hit");
        ratio("redb hit / memory hit", "redb_hit", "memory_hit");
        ratio("peer / memory hit", "peer", "memory_hit");
        ratio("naive / memory hit", "naive", "memory_hit");
        ratio("peer / sled hit", "peer", "sled_hit");
        ratio("naive / sled hit", "naive", "sled_hit");
        ratio("memory unknown / floor", "memory_unknown", "floor");
        ratio("sled unknown / floor", "sled_unknown", "floor");
        ratio("redb unknown / floor", "redb_unknown", "floor");
    }
    let path = fixture::data_dir().join("interleaved-verify.json");
    let _ = std::fs::create_dir_all(fixture::data_dir());
    match std::fs::write(&path, format!("{:#}\n", serde_json::Value::Object(all))) {
        Ok(()) => println!("wrote {}", path.display()),
        Err(e) => eprintln!("cannot write {}: {e}", path.display()),
    }
}

criterion_group!(verify, benches);

fn main() {
    if let Some(rounds) = std::env::var("KEYWARD_BENCH_INTERLEAVE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        interleaved(rounds);
        return;
    }
    verify();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
