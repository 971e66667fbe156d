//! Rotation policy.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How secrets are rotated and aged.
///
/// ```
/// use std::time::Duration;
/// use keyward_rotation::RotationPolicy;
/// // "The new key is usable a few minutes after generating; the old one stops 24 h later."
/// let policy = RotationPolicy {
///     activation_delay: Duration::from_secs(5 * 60),
///     ..RotationPolicy::default()
/// };
/// assert_eq!(policy.max_live_secrets, 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationPolicy {
    /// How long the old secret keeps working after a regenerate (default 24 h; zero: it stops
    /// at once). Never past the credential's own expiry.
    pub grace_period: Duration,
    /// How long after a regenerate the new secret becomes usable (default zero).
    pub activation_delay: Duration,
    /// Credentials older than this are reported [`crate::Due::RotationDue`] (default none).
    pub max_age: Option<Duration>,
    /// With `max_age`: expire credentials that reach it instead of only reporting them.
    pub expire_at_max_age: bool,
    /// Most secrets of one credential usable (pending, active or in grace) at once, at least 1
    /// (default 2: the new one and the old one in grace).
    pub max_live_secrets: usize,
    /// Report [`crate::Due::ExpiryWarning`] this long before a credential expires
    /// (default 7 days).
    pub expiry_warning: Duration,
    /// Secrets dead (expired or revoked) for this long are purged from the record by the
    /// planner (default 30 days).
    pub purge_after: Duration,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        Self {
            grace_period: Duration::from_secs(24 * 3600),
            activation_delay: Duration::ZERO,
            max_age: None,
            expire_at_max_age: false,
            max_live_secrets: 2,
            expiry_warning: Duration::from_secs(7 * 24 * 3600),
            purge_after: Duration::from_secs(30 * 24 * 3600),
        }
    }
}
