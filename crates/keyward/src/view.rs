//! The answers every face renders: one serde shape per answer, shared by the HTTP service's
//! JSON and the command line's `--json`, so the two cannot drift apart. A face may wrap them
//! in a client's dialect (see `keyward::http`), never reshape them.
//!
//! * [`KeyView`]: a key as stored, never with its secret (`GET /api-keys/{id}`,
//!   `keyward show --json`), with its [`KeyStatus`] and the [`VersionState`] of each secret
//!   version, named here and only here;
//! * [`IssuedKeyView`]: a key just issued or regenerated, with its plaintext, shown once
//!   (`POST /api-keys`, `keyward issue --json`);
//! * [`VerifyView`]: the answer to a verification (`POST /verify`, `keyward verify --json`).
//!
//! Times are RFC 3339 strings with millisecond precision, e.g. `2024-06-30T01:02:29.212Z`.
//!
//! ```
//! use keyward::{Config, Keyward, NewKey, Principal};
//! use keyward::core::{Environment, KeyType};
//! use keyward::view::{KeyStatus, KeyView};
//!
//! let kw = Keyward::open(Config::memory())?;
//! let issued = kw.issue(&Principal::LocalOperator, NewKey::new(
//!     "acc_1".parse()?, KeyType::Secret, Environment::Test, "ci".parse()?,
//! ))?;
//! let view = KeyView::of(&issued.credential, kw.now());
//! assert_eq!(view.status, KeyStatus::Active);
//! let json = serde_json::to_value(&view)?;
//! assert_eq!(json["status"], "active");
//! assert_eq!(json["type"], "secret");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use keyward_core::{
    AccountId, Credential, CredentialId, Environment, KeyType, Metadata, Name, PermissionSet,
    PlaintextKey, SecretVersion, Timestamp,
};
use keyward_rotation::{SecretState, live_secrets, secret_state};
use serde::{Serialize, Serializer};

use crate::manage::Issued;
use crate::verify::{Verified, VerifyError};

// ----- keys ---------------------------------------------------------------------------------

/// Where a key stands as a whole. Derived from its secrets' states (`keyward-rotation`): the
/// first that applies of revoked, expired, disabled, active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// Accepted (or, with an activation delay, about to be).
    Active,
    /// Turned off; enabling it turns it back on.
    Disabled,
    /// Past its expiry, or no secret left that is or will become usable.
    Expired,
    /// Every secret revoked.
    Revoked,
}

impl KeyStatus {
    /// The status of `cred` at `now`.
    pub fn of(cred: &Credential, now: Timestamp) -> Self {
        if !cred.secrets.is_empty() && cred.secrets.iter().all(|s| s.revoked_at.is_some()) {
            Self::Revoked
        } else if cred.expires_at.is_some_and(|e| now >= e)
            || live_secrets(cred, now).next().is_none()
        {
            Self::Expired
        } else if !cred.enabled {
            Self::Disabled
        } else {
            Self::Active
        }
    }

    /// `active`, `disabled`, `expired` or `revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

/// Where one secret version stands (the secret lifecycle's state, named).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum VersionState {
    /// Generated with an activation delay that has not passed yet.
    Pending,
    /// The current secret.
    Active,
    /// An old secret after a regenerate, usable until its `not_after`.
    Grace,
    /// Past its end or the key's expiry.
    Expired,
    /// Revoked.
    Revoked,
}

impl From<SecretState> for VersionState {
    fn from(s: SecretState) -> Self {
        match s {
            SecretState::Pending => Self::Pending,
            SecretState::Active => Self::Active,
            SecretState::Grace => Self::Grace,
            SecretState::Expired => Self::Expired,
            SecretState::Revoked => Self::Revoked,
        }
    }
}

impl VersionState {
    /// `pending`, `active`, `grace`, `expired` or `revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Grace => "grace",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

/// An API key as stored, never with its secret: the one credential shape of every face.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema), schema(as = ApiKey))]
#[non_exhaustive]
pub struct KeyView {
    /// API key id, stable across regenerations.
    #[cfg_attr(feature = "http", schema(value_type = String, example = "key_7Ay5mcUXAxwrN6wQEQUVEHBCJ"))]
    pub id: CredentialId,
    /// Owning account.
    #[cfg_attr(feature = "http", schema(value_type = String, example = "acc_B518niGwGYKzig6vtrRVZGGGV"))]
    pub account_id: AccountId,
    /// Environment: `production`, `test` or a custom name.
    #[cfg_attr(feature = "http", schema(value_type = String, example = "production"))]
    pub environment: Environment,
    /// `publishable`, `secret` or `restricted`.
    #[serde(rename = "type")]
    #[cfg_attr(feature = "http", schema(value_type = String, example = "secret"))]
    pub key_type: KeyType,
    /// Display name (1 to 100 characters).
    #[cfg_attr(feature = "http", schema(value_type = String, example = "Test Application"))]
    pub name: Name,
    /// Granted permissions.
    #[cfg_attr(feature = "http", schema(value_type = Vec<String>, example = json!(["api-key:write", "business:read"])))]
    pub permissions: PermissionSet,
    /// Free-form metadata.
    #[cfg_attr(feature = "http", schema(value_type = std::collections::BTreeMap<String, String>))]
    pub meta: Metadata,
    /// Creation time.
    #[serde(serialize_with = "rfc3339")]
    #[cfg_attr(feature = "http", schema(value_type = String, format = DateTime, example = "2024-06-30T01:02:29.212Z"))]
    pub created_at: Timestamp,
    /// Last modification time.
    #[serde(serialize_with = "rfc3339")]
    #[cfg_attr(feature = "http", schema(value_type = String, format = DateTime, example = "2024-06-30T01:02:29.212Z"))]
    pub modified_at: Timestamp,
    /// Expiry, if any.
    #[serde(serialize_with = "rfc3339_or_null")]
    #[cfg_attr(feature = "http", schema(value_type = Option<String>, format = DateTime))]
    pub expires_at: Option<Timestamp>,
    /// Whether the key is enabled.
    pub enabled: bool,
    /// Where the key stands.
    pub status: KeyStatus,
    /// The key's secret versions (one per generation), oldest first. No secret material.
    pub versions: Vec<VersionView>,
}

impl KeyView {
    /// The view of `cred` at `now`.
    pub fn of(cred: &Credential, now: Timestamp) -> Self {
        Self {
            id: cred.id.clone(),
            account_id: cred.account.clone(),
            environment: cred.environment.clone(),
            key_type: cred.key_type,
            name: cred.name.clone(),
            permissions: cred.permissions.clone(),
            meta: cred.metadata.clone(),
            created_at: cred.created_at,
            modified_at: cred.modified_at,
            expires_at: cred.expires_at,
            enabled: cred.enabled,
            status: KeyStatus::of(cred, now),
            versions: cred
                .secrets
                .iter()
                .map(|s| VersionView::of(s, cred.expires_at, now))
                .collect(),
        }
    }
}

/// One generation of a key's secret (never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema), schema(as = KeyVersion))]
#[non_exhaustive]
pub struct VersionView {
    /// 1 for the first secret, incremented by each regenerate.
    pub version: u32,
    /// Where it stands.
    pub state: VersionState,
    /// When it was generated.
    #[serde(serialize_with = "rfc3339")]
    #[cfg_attr(feature = "http", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// Usable from this instant.
    #[serde(serialize_with = "rfc3339")]
    #[cfg_attr(feature = "http", schema(value_type = String, format = DateTime))]
    pub not_before: Timestamp,
    /// Usable until this instant (end of the grace period), if set.
    #[serde(serialize_with = "rfc3339_or_null")]
    #[cfg_attr(feature = "http", schema(value_type = Option<String>, format = DateTime))]
    pub not_after: Option<Timestamp>,
    /// When it was revoked, if it was.
    #[serde(serialize_with = "rfc3339_or_null")]
    #[cfg_attr(feature = "http", schema(value_type = Option<String>, format = DateTime))]
    pub revoked_at: Option<Timestamp>,
}

impl VersionView {
    /// The view of `secret`, of a key expiring at `key_expires`, at `now`.
    pub fn of(secret: &SecretVersion, key_expires: Option<Timestamp>, now: Timestamp) -> Self {
        Self {
            version: secret.version,
            state: secret_state(secret, key_expires, now).into(),
            created_at: secret.created_at,
            not_before: secret.not_before,
            not_after: secret.not_after,
            revoked_at: secret.revoked_at,
        }
    }
}

/// A key just issued or regenerated: the key as stored and, once, its plaintext `key`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema), schema(as = CreatedApiKey))]
#[non_exhaustive]
pub struct IssuedKeyView {
    /// The key as stored.
    #[serde(flatten)]
    pub api_key: KeyView,
    /// The API key. It is not stored: keep it now.
    #[serde(serialize_with = "expose")]
    #[cfg_attr(feature = "http", schema(value_type = String, example = "sk_prod_6fpAaGyHBeGNpxTpJKMD5w5wk"))]
    pub key: PlaintextKey,
}

impl IssuedKeyView {
    /// The view of `issued` at `now` (the plaintext moves into the view, still zeroized on
    /// drop).
    pub fn of(issued: Issued, now: Timestamp) -> Self {
        Self {
            api_key: KeyView::of(&issued.credential, now),
            key: issued.key,
        }
    }
}

// ----- verification -------------------------------------------------------------------------

/// The answer to a verification: whether the key is accepted and, if it is, whose it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema), schema(as = VerifyResponse))]
#[non_exhaustive]
pub struct VerifyView {
    /// Whether the key is accepted.
    pub valid: bool,
    /// `valid`, or why it was refused: `malformed`, `unknown`, `not_yet_active`, `expired`,
    /// `revoked`, `disabled`, `wrong_environment`, `missing_permission`, `unavailable`.
    #[cfg_attr(feature = "http", schema(example = "valid"))]
    pub code: &'static str,
    /// Why it was refused, in words (refused keys only).
    #[cfg_attr(feature = "http", schema(example = json!(null)))]
    pub reason: Option<String>,
    /// The key's id (valid keys only).
    #[cfg_attr(feature = "http", schema(value_type = Option<String>))]
    pub key_id: Option<CredentialId>,
    /// The key's account (valid keys only).
    #[cfg_attr(feature = "http", schema(value_type = Option<String>))]
    pub account_id: Option<AccountId>,
    /// The key's environment (valid keys only).
    #[cfg_attr(feature = "http", schema(value_type = Option<String>))]
    pub environment: Option<Environment>,
    /// The key's type (valid keys only).
    #[serde(rename = "type")]
    #[cfg_attr(feature = "http", schema(value_type = Option<String>))]
    pub key_type: Option<KeyType>,
    /// The key's permissions (valid keys only).
    #[cfg_attr(feature = "http", schema(value_type = Option<Vec<String>>))]
    pub permissions: Option<PermissionSet>,
    /// The key's metadata (valid keys only).
    #[cfg_attr(feature = "http", schema(value_type = Option<std::collections::BTreeMap<String, String>>))]
    pub meta: Option<Metadata>,
    /// When the presented key stops working, if it does (valid keys only).
    #[serde(serialize_with = "rfc3339_or_null")]
    #[cfg_attr(feature = "http", schema(value_type = Option<String>, format = DateTime))]
    pub expires_at: Option<Timestamp>,
}

impl VerifyView {
    /// The view of a verification's outcome.
    pub fn of(outcome: &Result<Verified, VerifyError>) -> Self {
        match outcome {
            Ok(v) => Self {
                valid: true,
                code: "valid",
                reason: None,
                key_id: Some(v.id().clone()),
                account_id: Some(v.account().clone()),
                environment: Some(v.environment().clone()),
                key_type: Some(v.key_type()),
                permissions: Some(v.permissions().clone()),
                meta: Some(v.metadata().clone()),
                expires_at: v.expires_at(),
            },
            Err(e) => Self {
                valid: false,
                code: e.code(),
                reason: Some(e.to_string()),
                key_id: None,
                account_id: None,
                environment: None,
                key_type: None,
                permissions: None,
                meta: None,
                expires_at: None,
            },
        }
    }
}

// ----- events -------------------------------------------------------------------------------
//
// The audit log's event view goes here: one shape for `GET /events`,
// `GET /api-keys/{id}/events` and `keyward events --json`.

// ----- serialisation ------------------------------------------------------------------------

fn rfc3339<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(t)
}

fn rfc3339_or_null<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.collect_str(t),
        None => s.serialize_none(),
    }
}

fn expose<S: Serializer>(key: &PlaintextKey, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(key.expose_secret())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use keyward_core::{Environment, KeyType, PermissionSet};
    use keyward_rotation::{ManualClock, RegenerateOptions};

    use super::*;
    use crate::{Config, Keyward, NewKey, Principal};

    const OP: &Principal = &Principal::LocalOperator;

    fn engine() -> (Keyward, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_700_000_000_000)));
        let kw = Keyward::open(Config::memory().with_clock(clock.clone()))
            .unwrap_or_else(|e| panic!("{e}"));
        (kw, clock)
    }

    fn issue(kw: &Keyward, expires_in: Option<Duration>) -> Issued {
        let mut new = NewKey::new(
            "acc_v".parse().unwrap_or_else(|e| panic!("{e}")),
            KeyType::Secret,
            Environment::Test,
            "v".parse().unwrap_or_else(|e| panic!("{e}")),
        )
        .with_permissions(PermissionSet::new());
        if let Some(d) = expires_in {
            new = new.with_expiry(kw.now().saturating_add(d));
        }
        kw.issue(OP, new).unwrap_or_else(|e| panic!("{e}"))
    }

    fn status(kw: &Keyward, issued: &Issued) -> KeyStatus {
        let cred = kw
            .get(OP, &issued.credential.id)
            .unwrap_or_else(|e| panic!("{e}"));
        KeyView::of(&cred, kw.now()).status
    }

    #[test]
    fn a_key_status_is_the_first_of_revoked_expired_disabled_active() {
        let (kw, clock) = engine();
        let hour = Duration::from_secs(3600);
        let plain = issue(&kw, None);
        let expiring = issue(&kw, Some(hour));
        let revoked = issue(&kw, Some(hour));
        assert_eq!(status(&kw, &plain), KeyStatus::Active);
        for i in [&plain, &expiring, &revoked] {
            kw.disable(OP, &i.credential.id)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        kw.revoke(OP, &revoked.credential.id)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(status(&kw, &plain), KeyStatus::Disabled);
        assert_eq!(status(&kw, &expiring), KeyStatus::Disabled);
        assert_eq!(status(&kw, &revoked), KeyStatus::Revoked);
        clock.advance(2 * hour);
        assert_eq!(status(&kw, &plain), KeyStatus::Disabled);
        assert_eq!(status(&kw, &expiring), KeyStatus::Expired);
        assert_eq!(status(&kw, &revoked), KeyStatus::Revoked);
    }

    #[test]
    fn versions_are_named_by_their_lifecycle_state() {
        let (kw, clock) = engine();
        let issued = issue(&kw, None);
        let options = RegenerateOptions {
            grace_period: Some(Duration::from_secs(60)),
            activation_delay: Some(Duration::from_secs(30)),
            end_earlier_grace: false,
        };
        let regenerated = kw
            .regenerate(OP, &issued.credential.id, options)
            .unwrap_or_else(|e| panic!("{e}"));
        let states = |kw: &Keyward| -> Vec<&'static str> {
            KeyView::of(&regenerated.credential, kw.now())
                .versions
                .iter()
                .map(|v| v.state.as_str())
                .collect()
        };
        assert_eq!(states(&kw), ["grace", "pending"]);
        clock.advance(Duration::from_secs(45));
        assert_eq!(states(&kw), ["grace", "active"]);
        clock.advance(Duration::from_secs(60));
        assert_eq!(states(&kw), ["expired", "active"]);
        let json = serde_json::to_value(KeyView::of(&regenerated.credential, kw.now()))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(json["versions"][0]["state"], "expired");
        assert_eq!(json["status"], "active");
    }
}
