//! Open + warm-up time of the largest sled fixture (1M credentials by default): the time from
//! `Keyward::open` to an engine whose hot index holds every credential.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::print_stderr, missing_docs)]

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use keyward::{Backend, Keyward};
use keyward_benches::fixture::{self, BackendKind};

fn benches(c: &mut Criterion) {
    if !fixture::backends().contains(&BackendKind::Sled) {
        return;
    }
    let n = fixture::largest_size();
    if let Err(e) = fixture::ensure_sled_store(n) {
        eprintln!("skipping sled open at n={n}: {e}");
        return;
    }
    let path = fixture::sled_dir(n).join("db");
    let mut g = c.benchmark_group("open");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    g.bench_function(BenchmarkId::new("sled_open_warm", n), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let kw = Keyward::open(fixture::config(Backend::Sled(path.clone()))).unwrap();
                assert_eq!(kw.store().len(), n);
                total += start.elapsed();
                drop(kw);
            }
            total
        });
    });
    g.finish();
}

criterion_group!(open, benches);
criterion_main!(open);
