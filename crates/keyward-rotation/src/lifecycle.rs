//! The state of each secret as a function of time, and the pure transitions.

use core::fmt;
use std::time::Duration;

use keyward_core::{Credential, Digest, LookupTag, SecretVersion, SecretWindow, Timestamp};

use crate::RotationPolicy;

/// Where a secret version stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretState {
    /// Generated with an activation delay that has not passed yet.
    Pending,
    /// The current secret.
    Active,
    /// An old secret after a regenerate, usable until its not-after.
    Grace,
    /// Past its not-after or the credential's expiry.
    Expired,
    /// Revoked.
    Revoked,
}

impl SecretState {
    /// Whether a key with this secret is accepted.
    pub fn is_usable(self) -> bool {
        matches!(self, Self::Active | Self::Grace)
    }

    /// Whether the secret is or will become usable (counts against `max_live_secrets`).
    pub fn is_live(self) -> bool {
        matches!(self, Self::Pending | Self::Active | Self::Grace)
    }
}

/// The state of `secret` at `now`, for a credential expiring at `credential_expires`.
///
/// Revoked wins; then expired at the earlier of the secret's not-after and the credential's
/// expiry, or at once if that end is not after its not-before (a secret that can never become
/// usable, e.g. a pending one ended by a later regenerate, is dead, not pending); then pending
/// before not-before, for a secret generated with an activation delay (`not_before >
/// created_at`; one without a delay is never pending, even if the clock steps back past its
/// creation); then grace if the secret has its own end, else active.
#[inline]
pub fn secret_state(
    secret: &SecretVersion,
    credential_expires: Option<Timestamp>,
    now: Timestamp,
) -> SecretState {
    window_state(secret.window(), credential_expires, now)
}

/// [`secret_state`] of a secret's [`SecretWindow`] (what the hot index keeps of it).
#[inline]
pub fn window_state(
    w: SecretWindow,
    credential_expires: Option<Timestamp>,
    now: Timestamp,
) -> SecretState {
    if w.revoked {
        return SecretState::Revoked;
    }
    let end = match (w.not_after, credential_expires) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if end.is_some_and(|end| now >= end || end <= w.not_before) {
        return SecretState::Expired;
    }
    if w.delayed && now < w.not_before {
        return SecretState::Pending;
    }
    if w.not_after.is_some() {
        SecretState::Grace
    } else {
        SecretState::Active
    }
}

/// The state of `secret` if it does not depend on the time, without reading a clock: a secret
/// that is not revoked, has no end of its own nor from the credential's expiry, and had no
/// activation delay is [`SecretState::Active`] at every instant. `None` when time matters;
/// then call [`secret_state`]. Always agrees with [`secret_state`].
///
/// The verify path uses it to skip the clock read (about 125 ns on a VM without a vDSO clock)
/// for the common key that never expires.
#[inline]
pub fn timeless_state(
    secret: &SecretVersion,
    credential_expires: Option<Timestamp>,
) -> Option<SecretState> {
    window_timeless_state(secret.window(), credential_expires)
}

/// [`timeless_state`] of a secret's [`SecretWindow`].
#[inline]
pub fn window_timeless_state(
    w: SecretWindow,
    credential_expires: Option<Timestamp>,
) -> Option<SecretState> {
    w.is_timeless(credential_expires)
        .then_some(SecretState::Active)
}

/// The versions of `cred`'s live secrets at `now`.
pub fn live_secrets(cred: &Credential, now: Timestamp) -> impl Iterator<Item = &SecretVersion> {
    cred.secrets
        .iter()
        .filter(move |s| secret_state(s, cred.expires_at, now).is_live())
}

/// Per-call overrides of the policy for one regenerate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegenerateOptions {
    /// Grace period for the old secret (default: the policy's).
    pub grace_period: Option<Duration>,
    /// Activation delay for the new secret (default: the policy's).
    pub activation_delay: Option<Duration>,
    /// Allow this regenerate to end a secret still in the grace period an earlier regenerate
    /// promised it, before that end (the live-secret limit or a shorter grace would). Without
    /// it such a regenerate is refused with [`RotationError::GraceInProgress`]: a promised
    /// grace is never shortened silently.
    pub end_earlier_grace: bool,
}

/// Why a transition was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotationError {
    /// The credential is revoked (every secret); it cannot be regenerated.
    Revoked,
    /// The credential has expired.
    Expired,
    /// No secret with that version.
    NoSuchVersion(u32),
    /// The version counter would overflow.
    TooManyVersions,
    /// A secret is still in the grace period an earlier regenerate promised it, and this
    /// regenerate would end it before `until` (see [`RegenerateOptions::end_earlier_grace`]).
    GraceInProgress {
        /// The secret version whose grace would be cut.
        version: u32,
        /// The end it was promised.
        until: Timestamp,
    },
}

impl fmt::Display for RotationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Revoked => f.write_str("the key is revoked and cannot be regenerated"),
            Self::Expired => f.write_str("the key has expired and cannot be regenerated"),
            Self::NoSuchVersion(v) => write!(f, "the key has no secret version {v}"),
            Self::TooManyVersions => f.write_str("the key has too many secret versions"),
            Self::GraceInProgress { version, until } => write!(
                f,
                "secret version {version} of this key was promised a grace period until {until}; \
                 regenerating now would end it early: wait until then, revoke version {version} \
                 first, or ask explicitly to end it (end_earlier_grace)"
            ),
        }
    }
}

impl std::error::Error for RotationError {}

/// Regenerates `cred` at `now` with a new secret (`lookup`, `digest`, made by the caller):
///
/// * every live secret that has no end yet gets one: `now + grace` (never past the credential's
///   expiry);
/// * the new secret becomes usable at `now + activation delay` and inherits the credential's
///   expiry;
/// * if more than `max_live_secrets` would be live, the oldest live ones end now.
///
/// "Live" here is judged by each secret's own window, ignoring the credential's expiry (which
/// may be extended later): the limit then holds whatever the expiry becomes.
///
/// A secret that already has an end in the future (the grace an earlier regenerate promised)
/// is never ended sooner unless `options.end_earlier_grace` says so: otherwise the call is
/// refused with [`RotationError::GraceInProgress`] and `cred` is left untouched.
///
/// Returns the new version number.
pub fn apply_regenerate(
    cred: &mut Credential,
    lookup: LookupTag,
    digest: Digest,
    policy: &RotationPolicy,
    options: RegenerateOptions,
    now: Timestamp,
) -> Result<u32, RotationError> {
    if options.end_earlier_grace {
        return regenerate_in_place(cred, lookup, digest, policy, options, now);
    }
    let mut next = cred.clone();
    let version = regenerate_in_place(&mut next, lookup, digest, policy, options, now)?;
    // The first secret (by version) that was in a promised grace and would now end sooner.
    let cut = cred.secrets.iter().zip(&next.secrets).find_map(|(b, a)| {
        let promised = b.not_after?;
        let live = secret_state(b, None, now).is_live();
        (live && a.not_after.is_some_and(|end| end < promised)).then_some((b.version, promised))
    });
    if let Some((version, until)) = cut {
        return Err(RotationError::GraceInProgress { version, until });
    }
    *cred = next;
    Ok(version)
}

fn regenerate_in_place(
    cred: &mut Credential,
    lookup: LookupTag,
    digest: Digest,
    policy: &RotationPolicy,
    options: RegenerateOptions,
    now: Timestamp,
) -> Result<u32, RotationError> {
    if !cred.secrets.is_empty() && cred.secrets.iter().all(|s| s.revoked_at.is_some()) {
        return Err(RotationError::Revoked);
    }
    if cred.expires_at.is_some_and(|e| now >= e) {
        return Err(RotationError::Expired);
    }
    // Every check before the first change: a refused regenerate leaves `cred` untouched.
    let version = cred
        .secrets
        .iter()
        .map(|s| s.version)
        .max()
        .unwrap_or(0)
        .checked_add(1)
        .ok_or(RotationError::TooManyVersions)?;
    let grace = options.grace_period.unwrap_or(policy.grace_period);
    let delay = options.activation_delay.unwrap_or(policy.activation_delay);
    let mut grace_end = now.saturating_add(grace);
    if let Some(exp) = cred.expires_at {
        grace_end = grace_end.min(exp);
    }
    // Liveness here ignores the credential's expiry: it can be extended later (`update`), and a
    // secret dead only because of it would come back without a grace end and over the limit.
    for s in &mut cred.secrets {
        if secret_state(s, None, now).is_live() {
            s.not_after = Some(s.not_after.map_or(grace_end, |a| a.min(grace_end)));
        }
    }
    cred.secrets.push(SecretVersion {
        version,
        lookup,
        digest,
        not_before: now.saturating_add(delay),
        not_after: None,
        created_at: now,
        revoked_at: None,
    });
    // Enforce the live-secret limit, ending the oldest first.
    let limit = policy.max_live_secrets.max(1);
    let mut live: Vec<usize> = (0..cred.secrets.len())
        .filter(|&i| secret_state(&cred.secrets[i], None, now).is_live())
        .collect();
    live.sort_by_key(|&i| cred.secrets[i].version);
    let excess = live.len().saturating_sub(limit);
    for &i in live.iter().take(excess) {
        cred.secrets[i].not_after = Some(now);
    }
    cred.modified_at = now;
    Ok(version)
}

/// Revokes every secret of `cred` at `now` (already revoked ones keep their time).
pub fn revoke_all(cred: &mut Credential, now: Timestamp) {
    for s in &mut cred.secrets {
        s.revoked_at.get_or_insert(now);
    }
    cred.modified_at = now;
}

/// Revokes one secret version.
pub fn revoke_version(
    cred: &mut Credential,
    version: u32,
    now: Timestamp,
) -> Result<(), RotationError> {
    let s = cred
        .secrets
        .iter_mut()
        .find(|s| s.version == version)
        .ok_or(RotationError::NoSuchVersion(version))?;
    s.revoked_at.get_or_insert(now);
    cred.modified_at = now;
    Ok(())
}
