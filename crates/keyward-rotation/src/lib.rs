//! keyward-rotation: rotation policies and the secret lifecycle as pure functions of
//! (credential, time). No I/O.
//!
//! ```
//! use std::time::Duration;
//! use keyward_core::Timestamp;
//! use keyward_rotation::{RotationPolicy, SecretState, secret_state};
//! # let secret = keyward_core::SecretVersion {
//! #     version: 1, lookup: keyward_core::LookupTag::new(b"AAAAAAAAAAAAAAAA").unwrap(),
//! #     digest: keyward_core::Digest::from_bytes([0; 32]),
//! #     not_before: Timestamp::from_millis(1_000), not_after: Some(Timestamp::from_millis(5_000)),
//! #     created_at: Timestamp::from_millis(1_000), revoked_at: None };
//! // An old secret after a regenerate: usable until its not-after, then expired.
//! assert_eq!(secret_state(&secret, None, Timestamp::from_millis(4_999)), SecretState::Grace);
//! assert_eq!(secret_state(&secret, None, Timestamp::from_millis(5_000)), SecretState::Expired);
//! assert_eq!(RotationPolicy::default().grace_period, Duration::from_secs(24 * 3600));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod clock;
mod lifecycle;
mod planner;
mod policy;

pub use clock::{Clock, ManualClock, SystemClock};
pub use lifecycle::{
    RegenerateOptions, RotationError, SecretState, apply_regenerate, live_secrets, revoke_all,
    revoke_version, secret_state, timeless_state, window_state, window_timeless_state,
};
pub use planner::{Due, apply_due, plan};
pub use policy::RotationPolicy;
