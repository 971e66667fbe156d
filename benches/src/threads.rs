//! Runs one operation on several threads at once, for throughput scaling.

use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Runs `op` `iters` times on each of `threads` scoped threads, each walking `keys` from its own
/// offset, all starting together after a barrier. Returns the longest per-thread wall time: the
/// time in which `threads × iters` operations completed, without thread start-up in it.
///
/// Meant for criterion's `iter_custom`: the reported time per iteration is then the time per
/// round of one operation on every thread, so throughput(`n` threads) / throughput(1 thread)
/// = `n × t(1) / t(n)`.
pub fn run_concurrent<T, F>(threads: usize, iters: u64, keys: &[T], op: &F) -> Duration
where
    T: Sync,
    F: Fn(&T) + Sync,
{
    assert!(threads >= 1 && !keys.is_empty());
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut i = t * keys.len() / threads;
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters {
                        op(&keys[i]);
                        i += 1;
                        if i == keys.len() {
                            i = 0;
                        }
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread panicked"))
            .max()
            .unwrap_or_default()
    })
}

/// A cursor over a slice of pre-generated inputs that wraps around: the benches present a
/// different key on every iteration, never one key repeated.
#[derive(Debug)]
pub struct Cycle<'a, T> {
    items: &'a [T],
    next: usize,
}

impl<'a, T> Cycle<'a, T> {
    /// A cursor at the start of `items` (which must not be empty).
    pub fn new(items: &'a [T]) -> Self {
        assert!(!items.is_empty());
        Self { items, next: 0 }
    }

    /// The next item.
    #[inline(always)]
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> &'a T {
        let item = &self.items[self.next];
        self.next += 1;
        if self.next == self.items.len() {
            self.next = 0;
        }
        item
    }
}
