//! Support for keyward's benchmarks: deterministic fixtures (credentials, presented keys, stores
//! of 10k–1M credentials built without one flush per key), the three baselines the verify path
//! is measured against (floor, peer, naive), the alternative designs the report compares
//! (SipHash, `RwLock<HashMap>`, scanning without a lookup tag), a thread-scaling driver, an RSS
//! probe, the reader of criterion's results that checks the targets, and what `keyward-backends`
//! needs to compare sled and redb (each backend's bare durable write, disk usage).
//!
//! Everything here is deterministic for a seed, so a sled store built by one run is reused by
//! the next one (it lives under `target/keyward-bench/`).
#![forbid(unsafe_code)]

pub mod baselines;
pub mod design;
pub mod disk;
pub mod fixture;
pub mod floors;
pub mod report;
pub mod rss;
pub mod threads;
