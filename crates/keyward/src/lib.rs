//! keyward: an embedded API-key engine. Issue, verify, regenerate (with a grace period),
//! revoke and expire API keys in-process; verification reads a hot in-memory index and never
//! waits on disk.
//!
//! ```
//! use keyward::{Config, Keyward, NewKey, Principal, VerifyError};
//! use keyward::core::{KeyType, Environment, PermissionSet};
//!
//! let kw = Keyward::open(Config::memory()).unwrap();
//! let new = NewKey::new("acc_1".parse().unwrap(), KeyType::Secret, Environment::Production,
//!                       "Backend".parse().unwrap())
//!     .with_permissions(PermissionSet::parse(["payment-method:write"]).unwrap());
//! // The program embedding the engine acts as the local operator; the HTTP service acts as
//! // the verified key that called it (`Principal::Key`), within that key's authority.
//! let issued = kw.issue(&Principal::LocalOperator, new).unwrap();
//! let key = issued.key.expose_secret();
//!
//! let who = kw.verify(key).unwrap();
//! assert_eq!(who.account().as_str(), "acc_1");
//! assert_eq!(kw.verify("sk_prod_nope").unwrap_err(), VerifyError::Malformed(
//!     keyward::core::FormatError::BadBodyLength));
//! ```
//!
//! # A deployment on disk
//!
//! [`Config::from_data_dir`] (or [`DataDir`]) opens the data directory the `keyward` command
//! line manages (`--data DIR`): whichever store it holds (redb or sled) with its pepper.
//! [`Keyward::export`] and [`Keyward::import`] back it up and move it between stores
//! ([`export`]); [`doctor::run`] checks and repairs it.
//!
//! # Features
//!
//! None is on by default, so an embedder compiles only what it uses:
//!
//! * `redb`: the embedded redb store (`Config::redb`, `Backend::Redb`), the default of a new
//!   data directory.
//! * `sled`: the embedded sled store (`Config::sled`, `Backend::Sled`).
//!   Without either, [`Config::memory`] or your own [`Store`](keyward_store::Store) through
//!   [`Backend::Custom`].
//! * `postgres`: the PostgreSQL store (`Config::postgres`, `Backend::Postgres`), for many
//!   processes sharing one database.
//! * `http`: the HTTP management service and the tower gateway layer (`keyward::http`).
//! * `cli`: the `keyward` binary; implies `http`, `redb` and `sled`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod acting;
pub mod audit;
pub mod authority;
mod bootstrap;
mod config;
pub mod data_dir;
pub mod doctor;
mod engine;
mod error;
pub mod export;
mod manage;
mod transfer;
mod verify;
pub mod view;

#[cfg(feature = "http")]
pub mod http;

pub use acting::{Acting, Acts, InvalidRequestId, RequestId};
pub use authority::{Denial, OPERATOR_ACCOUNT, Principal, Right};
pub use bootstrap::OperatorKey;
pub use config::{Backend, Config, PepperChoice};
pub use data_dir::{DataDir, DataDirError, StoreKind};
pub use engine::Keyward;
pub use error::{EngineError, Field};
pub use export::{ExportError, ExportSummary, ImportError, ImportOptions, ImportSummary};
pub use manage::{
    Issued, KeyUpdate, MAX_DURATION, NewKey, PartialRegeneration, Regenerated, Skipped, SweepReport,
};
pub use verify::{Verified, VerifiedRef, VerifyError};

/// The README's Rust examples, compiled and run as doctests (`cargo test --all-features`), so
/// the README keeps working.
#[cfg(all(doctest, feature = "redb"))]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

/// Re-export of `keyward-core` (key format, model, permissions).
pub use keyward_core as core;
/// Re-export of `keyward-rotation` (policies, lifecycle, clocks).
pub use keyward_rotation as rotation;
/// Re-export of `keyward-store` (storage trait and backends).
pub use keyward_store as store;
