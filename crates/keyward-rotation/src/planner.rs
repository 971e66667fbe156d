//! The planner: what an operator job should do with a credential at a given time.

use keyward_core::{Credential, Timestamp};

use crate::{RotationPolicy, SecretState, secret_state};

/// Something due for a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// The credential reached the policy's maximum age and the policy expires such keys:
    /// set its expiry to the given time.
    Expire {
        /// When it reached its maximum age.
        at: Timestamp,
    },
    /// The credential is older than the policy's maximum age: rotate it.
    RotationDue {
        /// When it reached its maximum age.
        since: Timestamp,
    },
    /// The credential expires within the policy's warning window.
    ExpiryWarning {
        /// Its expiry.
        expires_at: Timestamp,
    },
    /// A secret version has been dead (expired or revoked) longer than `purge_after`: remove it
    /// from the record.
    Purge {
        /// The version.
        version: u32,
    },
}

/// What is due for `cred` at `now` under `policy`. Pure: applying nothing changes nothing.
///
/// The age of a credential is the age of its newest secret (a regenerate resets it).
pub fn plan(cred: &Credential, policy: &RotationPolicy, now: Timestamp) -> Vec<Due> {
    let mut due = Vec::new();
    let already_expired = cred.expires_at.is_some_and(|e| e <= now);
    let revoked = !cred.secrets.is_empty() && cred.secrets.iter().all(|s| s.revoked_at.is_some());
    if let (Some(max_age), false, false) = (policy.max_age, already_expired, revoked) {
        let born = cred
            .latest_secret()
            .map_or(cred.created_at, |s| s.created_at);
        let at = born.saturating_add(max_age);
        if now >= at {
            if policy.expire_at_max_age {
                due.push(Due::Expire { at });
            } else {
                due.push(Due::RotationDue { since: at });
            }
        }
    }
    if let Some(exp) = cred.expires_at
        && !already_expired
        && !revoked
        && now >= exp.saturating_sub(policy.expiry_warning)
    {
        due.push(Due::ExpiryWarning { expires_at: exp });
    }
    let latest = cred.latest_secret().map(|s| s.version);
    for s in &cred.secrets {
        // Keep the newest secret so the record always shows the key's last state.
        if Some(s.version) == latest {
            continue;
        }
        let dead_since = match secret_state(s, cred.expires_at, now) {
            SecretState::Revoked => s.revoked_at,
            SecretState::Expired => match (s.not_after, cred.expires_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            _ => None,
        };
        if dead_since.is_some_and(|d| now >= d.saturating_add(policy.purge_after)) {
            due.push(Due::Purge { version: s.version });
        }
    }
    due
}

/// Applies the state-changing items of `due` (expire, purge) to `cred`. Returns whether it
/// changed.
pub fn apply_due(cred: &mut Credential, due: &[Due], now: Timestamp) -> bool {
    let mut changed = false;
    for d in due {
        match d {
            Due::Expire { at } => {
                let at = (*at).min(now);
                if cred.expires_at.is_none_or(|e| e > at) {
                    cred.expires_at = Some(at);
                    changed = true;
                }
            }
            Due::Purge { version } => {
                let before = cred.secrets.len();
                cred.secrets.retain(|s| s.version != *version);
                changed |= cred.secrets.len() != before;
            }
            Due::RotationDue { .. } | Due::ExpiryWarning { .. } => {}
        }
    }
    if changed {
        cred.modified_at = now;
    }
    changed
}
