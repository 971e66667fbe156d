//! Management errors.

use core::fmt;

use keyward_core::{CredentialId, ModelError};
use keyward_rotation::RotationError;
use keyward_store::StoreError;

/// Why a management operation (issue, regenerate, revoke, update, …) failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum EngineError {
    /// The input breaks a rule of the model (name length, restricted without permissions, …).
    Invalid(ModelError),
    /// No credential with this id.
    NotFound(CredentialId),
    /// The lifecycle refuses the transition (e.g. regenerating a revoked key).
    Rotation(RotationError),
    /// Storage failed.
    Store(StoreError),
    /// Concurrent writers kept winning; nothing was changed by this call.
    Contended(CredentialId),
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(e) => write!(f, "invalid request: {e}"),
            Self::NotFound(id) => write!(f, "no API key with id {id}"),
            Self::Rotation(e) => fmt::Display::fmt(e, f),
            Self::Store(e) => fmt::Display::fmt(e, f),
            Self::Contended(id) => write!(f, "too many concurrent updates of {id}; try again"),
        }
    }
}

impl std::error::Error for EngineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Invalid(e) => Some(e),
            Self::Rotation(e) => Some(e),
            Self::Store(e) => Some(e),
            Self::NotFound(_) | Self::Contended(_) => None,
        }
    }
}

impl From<ModelError> for EngineError {
    fn from(e: ModelError) -> Self {
        Self::Invalid(e)
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
