//! Writes: durable issue on sled against a bare sled insert + flush measured in the same run,
//! issue on the memory backend, and regenerate on both.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::print_stderr, missing_docs)]

use std::fs::File;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use keyward::core::{Environment, KeyType};
use keyward::rotation::RegenerateOptions;
use keyward::{Backend, Keyward, NewKey};
use keyward_benches::fixture::{self, BackendKind};

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

fn engine(backend: BackendKind) -> Result<Keyward, String> {
    let b = match backend {
        BackendKind::Memory => Backend::Memory,
        BackendKind::Sled => Backend::Sled(scratch("engine").join("db")),
    };
    let kw = Keyward::open(fixture::config(b)).map_err(|e| e.to_string())?;
    kw.issue(new_key(0)).map_err(|e| e.to_string())?;
    Ok(kw)
}

fn group<'a>(
    c: &'a mut Criterion,
    backend: BackendKind,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group("write");
    if backend == BackendKind::Sled {
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

fn bare_sled(c: &mut Criterion) {
    // The same record bytes the store writes, in one tree of a plain sled database.
    let mut cred = None;
    fixture::for_each_credential(1, fixture::UNKNOWN_SEED, |c, _| cred = Some(c));
    let bytes = keyward::store::encode_credential(&cred.unwrap()).unwrap();
    let dir = scratch("bare");
    let db = sled::Config::new()
        .path(dir.join("db"))
        .cache_capacity(64 * 1024 * 1024)
        .open()
        .unwrap();
    let data = File::open(dir.join("db").join("db")).unwrap();
    let mut g = group(c, BackendKind::Sled);
    let mut i = 0u64;
    g.bench_function("sled_bare_insert_flush", |b| {
        b.iter(|| {
            i += 1;
            db.insert(format!("key_{i:025}"), bytes.as_slice()).unwrap();
            db.flush().unwrap();
        });
    });
    g.bench_function("sled_bare_insert_flush_fdatasync", |b| {
        b.iter(|| {
            i += 1;
            db.insert(format!("key_{i:025}"), bytes.as_slice()).unwrap();
            db.flush().unwrap();
            data.sync_data().unwrap();
        });
    });
    g.finish();
}

fn engine_writes(c: &mut Criterion, backend: BackendKind) {
    let kw = match engine(backend) {
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
            black_box(kw.issue(new_key(i)).unwrap())
        });
    });
    let opts = RegenerateOptions::default();
    g.bench_function(format!("{name}_regenerate"), |b| {
        b.iter_batched(
            || {
                i += 1;
                kw.issue(new_key(i)).unwrap().credential.id.clone()
            },
            |id| black_box(kw.regenerate(&id, opts).unwrap()),
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let backends = fixture::backends();
    if backends.contains(&BackendKind::Sled) {
        bare_sled(c);
    }
    for backend in backends {
        engine_writes(c, backend);
    }
}

criterion_group!(write, benches);
criterion_main!(write);
