//! keyward: an embedded API-key engine. Issue, verify, regenerate (with a grace period),
//! revoke and expire API keys in-process; verification reads a hot in-memory index and never
//! waits on disk.
//!
//! ```
//! use keyward::{Config, Keyward, NewKey, VerifyError};
//! use keyward::core::{KeyType, Environment, PermissionSet};
//!
//! let kw = Keyward::open(Config::memory()).unwrap();
//! let new = NewKey::new("acc_1".parse().unwrap(), KeyType::Secret, Environment::Production,
//!                       "Backend".parse().unwrap())
//!     .with_permissions(PermissionSet::parse(["payment-method:write"]).unwrap());
//! let issued = kw.issue(new).unwrap();
//! let key = issued.key.expose_secret();
//!
//! let who = kw.verify(key).unwrap();
//! assert_eq!(who.account().as_str(), "acc_1");
//! assert_eq!(kw.verify("sk_prod_nope").unwrap_err(), VerifyError::Malformed(
//!     keyward::core::FormatError::BadBodyLength));
//! ```
//!
//! # Features
//!
//! None is on by default, so an embedder compiles only what it uses:
//!
//! * `sled`: the embedded sled store ([`Config::sled`](crate::Config), `Backend::Sled`).
//!   Without it, [`Config::memory`] or your own [`Store`](keyward_store::Store) through
//!   [`Backend::Custom`].
//! * `http`: the HTTP management service and the tower gateway layer (`keyward::http`).
//! * `cli`: the `keyward` binary; implies `http` and `sled`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod engine;
mod error;
mod verify;

#[cfg(feature = "http")]
pub mod http;

pub use config::{Backend, Config};
pub use engine::{Issued, KeyUpdate, Keyward, NewKey, PartialRegeneration, SweepReport};
pub use error::EngineError;
pub use verify::{Verified, VerifiedRef, VerifyError};

/// Re-export of `keyward-core` (key format, model, permissions).
pub use keyward_core as core;
/// Re-export of `keyward-rotation` (policies, lifecycle, clocks).
pub use keyward_rotation as rotation;
/// Re-export of `keyward-store` (storage trait and backends).
pub use keyward_store as store;
