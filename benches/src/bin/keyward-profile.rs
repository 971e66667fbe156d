//! A driver for profiling the verify path: builds a memory-backed engine of N credentials
//! (default 100 000) and verifies every key R times (default 10) inside `verify_loop`.
//!
//! ```text
//! cargo build --release -p keyward-benches --bin keyward-profile
//! valgrind --tool=callgrind --toggle-collect='*verify_loop*' \
//!     target/release/keyward-profile 100000 3
//! callgrind_annotate --inclusive=yes callgrind.out.<pid>
//! ```
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout)]

use std::hint::black_box;

use keyward::Keyward;
use keyward::core::Timestamp;
use keyward::rotation::ManualClock;
use keyward_benches::baselines::Floor;
use keyward_benches::fixture;

/// The measured region (callgrind's `--toggle-collect` target).
#[inline(never)]
fn verify_loop(kw: &Keyward, keys: &[String], rounds: usize) -> usize {
    let mut ok = 0;
    for _ in 0..rounds {
        for k in keys {
            ok += usize::from(black_box(kw.verify(black_box(k))).is_ok());
        }
    }
    ok
}

/// `verify_with`, the borrowing form (`--toggle-collect='*verify_with_loop*'`).
#[inline(never)]
fn verify_with_loop(kw: &Keyward, keys: &[String], rounds: usize) -> usize {
    let mut ok = 0;
    for _ in 0..rounds {
        for k in keys {
            ok += usize::from(black_box(kw.verify_with(black_box(k), |v| v.version())).is_ok());
        }
    }
    ok
}

/// The floor baseline over the same keys (`--toggle-collect='*floor_loop*'`).
#[inline(never)]
fn floor_loop(floor: &Floor, keys: &[String], rounds: usize) -> usize {
    let mut ok = 0;
    for _ in 0..rounds {
        for k in keys {
            ok += usize::from(floor.verify(black_box(k)));
        }
    }
    ok
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let mode = args.next().unwrap_or_else(|| "engine".into());
    let fx = fixture::memory_fixture(n);
    if mode == "floor" {
        let mut creds = Vec::with_capacity(n);
        fixture::for_each_credential(n, fixture::SEED, |c, _| creds.push(c));
        let floor = Floor::new(&creds);
        let ok = floor_loop(&floor, &fx.keys.hit, rounds);
        println!("{mode}: {ok} of {} verifications succeeded", n * rounds);
        return;
    }
    // `manual_clock`: the same credentials behind an engine whose clock is an atomic load,
    // to show what the system clock read costs on the hit path.
    let manual;
    let engine = if mode == "manual_clock" {
        let (store, _) = fixture::memory_store(n);
        let clock = std::sync::Arc::new(ManualClock::new(Timestamp::now()));
        manual = Keyward::open(
            fixture::config(keyward::Backend::Custom(Box::new(store))).with_clock(clock),
        )
        .expect("open the manual-clock engine");
        &manual
    } else {
        &fx.engine
    };
    let keys = match mode.as_str() {
        "unknown" => &fx.keys.unknown,
        "wrong_secret" => &fx.keys.wrong_secret,
        "bad_checksum" => &fx.keys.bad_checksum,
        "malformed" => &fx.keys.malformed,
        _ => &fx.keys.hit,
    };
    let run = if mode == "verify_with" {
        verify_with_loop
    } else {
        verify_loop
    };
    let ok = run(engine, keys, rounds);
    println!(
        "{mode}: {ok} of {} verifications succeeded",
        keys.len() * rounds
    );
    if std::env::var_os("KEYWARD_PROFILE_TIME").is_some() {
        // Wall time of one more pass (run it outside valgrind): ns per verification.
        let start = std::time::Instant::now();
        run(engine, keys, rounds);
        let ns = start.elapsed().as_nanos() as f64 / (keys.len() * rounds) as f64;
        println!("{mode}: {ns:.1} ns per verification");
    }
}
