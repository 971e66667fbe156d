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
    let ok = match mode.as_str() {
        "floor" => {
            let mut creds = Vec::with_capacity(n);
            fixture::for_each_credential(n, fixture::SEED, |c, _| creds.push(c));
            floor_loop(&Floor::new(&creds), &fx.keys.hit, rounds)
        }
        "unknown" => verify_loop(&fx.engine, &fx.keys.unknown, rounds),
        "bad_checksum" => verify_loop(&fx.engine, &fx.keys.bad_checksum, rounds),
        "malformed" => verify_loop(&fx.engine, &fx.keys.malformed, rounds),
        _ => verify_loop(&fx.engine, &fx.keys.hit, rounds),
    };
    println!("{mode}: {ok} of {} verifications succeeded", n * rounds);
}
