//! Open + warm-up time of the largest sled fixture (1M credentials by default), and of the redb
//! one with `KEYWARD_BENCH_BACKENDS=…,redb`: the time from `Keyward::open` to an engine whose
//! hot index holds every credential. (`keyward-backends` measures both side by side.)
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::print_stderr, missing_docs)]

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use keyward::Keyward;
use keyward_benches::fixture::{self, BackendKind};

fn benches(c: &mut Criterion) {
    let n = fixture::largest_size();
    for backend in fixture::backends() {
        if backend == BackendKind::Memory {
            continue;
        }
        if let Err(e) = fixture::ensure_store(backend, n) {
            eprintln!("skipping {} open at n={n}: {e}", backend.name());
            continue;
        }
        let mut g = c.benchmark_group("open");
        g.sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_millis(1))
            .measurement_time(Duration::from_secs(1));
        let id = BenchmarkId::new(format!("{}_open_warm", backend.name()), n);
        g.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let config = fixture::config(fixture::cached_backend(backend, n).unwrap());
                    let start = Instant::now();
                    let kw = Keyward::open(config).unwrap();
                    assert_eq!(kw.store().len(), n);
                    total += start.elapsed();
                    drop(kw);
                }
                total
            });
        });
        g.finish();
    }
}

criterion_group!(open, benches);
criterion_main!(open);
