//! Management errors.

use core::fmt;

use keyward_core::{CredentialId, ModelError, PermissionSet};
use keyward_rotation::RotationError;
use keyward_store::StoreError;

use crate::authority::Denial;

/// The input field a validation error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// The owning account.
    Account,
    /// The environment.
    Environment,
    /// The key type.
    KeyType,
    /// The display name.
    Name,
    /// The permissions.
    Permissions,
    /// The metadata.
    Metadata,
    /// The expiry.
    ExpiresAt,
    /// A regenerate's grace period.
    GracePeriod,
    /// A regenerate's activation delay.
    ActivationDelay,
}

impl Field {
    /// The field's name in the engine's input types, e.g. `expires_at`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Environment => "environment",
            Self::KeyType => "type",
            Self::Name => "name",
            Self::Permissions => "permissions",
            Self::Metadata => "metadata",
            Self::ExpiresAt => "expires_at",
            Self::GracePeriod => "grace_period",
            Self::ActivationDelay => "activation_delay",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a management operation (issue, regenerate, revoke, update, …) failed. Whatever the
/// reason, a failed call changed nothing (except where [`crate::PartialRegeneration`] says
/// otherwise).
#[derive(Debug)]
#[non_exhaustive]
pub enum EngineError {
    /// An input breaks a rule (name length, restricted without permissions, expiry not in the
    /// future, duration too long, environment this deployment cannot mint keys for, …).
    Invalid {
        /// The field at fault.
        field: Field,
        /// The rule it breaks.
        error: ModelError,
    },
    /// No credential with this id, or none the acting principal can reach (the two answer
    /// alike, so ids reveal nothing across accounts).
    NotFound(CredentialId),
    /// The acting principal may not do this (see [`crate::authority`]).
    Forbidden {
        /// Why.
        reason: Denial,
        /// The permissions it would need and does not hold (empty when no permission would
        /// help).
        missing: PermissionSet,
    },
    /// The change would leave the deployment without a live administrator (the id is the key
    /// it would take away). Recover with the local operator (the CLI), which may always act.
    LastAdministrator(CredentialId),
    /// The lifecycle refuses the transition (e.g. regenerating a revoked key, or cutting a
    /// promised grace period).
    Rotation(RotationError),
    /// Storage failed.
    Store(StoreError),
    /// Concurrent writers kept winning; nothing was changed by this call.
    Contended(CredentialId),
    /// The operating system's random number generator failed.
    Random,
    /// The configuration is invalid (namespace, environment tags).
    Config(ModelError),
    /// A persistent store was configured without a pepper ([`crate::PepperChoice::Unset`]).
    PepperRequired,
    /// The first operator key is issued once, on an empty store; this one holds keys
    /// ([`crate::OperatorKey::Recover`] issues another).
    AlreadyInitialised {
        /// How many keys the store holds.
        keys: usize,
    },
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid { field, error } => write!(f, "invalid {field}: {error}"),
            Self::NotFound(id) => write!(f, "no API key with id {id}"),
            Self::Forbidden { reason, missing } if missing.is_empty() => {
                write!(f, "forbidden: {reason}")
            }
            Self::Forbidden { reason, missing } => {
                let names: Vec<&str> = missing.iter().map(|p| p.as_str()).collect();
                write!(f, "forbidden: {reason} (missing: {})", names.join(", "))
            }
            Self::LastAdministrator(id) => write!(
                f,
                "{id} is the last administrator of this deployment: it cannot be revoked, \
                 disabled, stripped of its administrator rights or made to expire sooner \
                 through the API (make another administrator first, or use the CLI)"
            ),
            Self::Rotation(e) => fmt::Display::fmt(e, f),
            Self::Store(e) => fmt::Display::fmt(e, f),
            Self::Contended(id) => write!(f, "too many concurrent updates of {id}; try again"),
            Self::Random => f.write_str("the operating system's random number generator failed"),
            Self::Config(e) => write!(f, "invalid configuration: {e}"),
            Self::PepperRequired => f.write_str(
                "invalid configuration: a persistent store needs a pepper: give a secret one with \
                 `Config::with_pepper` (or open a data directory with `Config::from_data_dir`, \
                 which keeps it in DIR/pepper), or opt in to the public development pepper with \
                 `Config::with_development_pepper()` (tests and examples only)",
            ),
            Self::AlreadyInitialised { keys } => write!(
                f,
                "already initialised ({keys} key{} stored): the first operator key is issued \
                 only once (issue other keys, or recover for another operator key)",
                if *keys == 1 { "" } else { "s" }
            ),
        }
    }
}

impl std::error::Error for EngineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Invalid { error, .. } | Self::Config(error) => Some(error),
            Self::Rotation(e) => Some(e),
            Self::Store(e) => Some(e),
            _ => None,
        }
    }
}

impl EngineError {
    /// An [`EngineError::Invalid`] for `field`.
    pub fn invalid(field: Field, error: ModelError) -> Self {
        Self::Invalid { field, error }
    }
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<RotationError> for EngineError {
    fn from(e: RotationError) -> Self {
        Self::Rotation(e)
    }
}
