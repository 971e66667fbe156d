//! Verification results.

use core::fmt;

use keyward_core::{
    AccountId, CredentialId, Environment, FormatError, KeyType, Metadata, PermissionSet, Timestamp,
};
use keyward_store::HotEntry;

/// Who a verified key belongs to: the credential's id, account, environment, type,
/// permissions and metadata, and the secret version the key belongs to. Cheap to clone (one
/// shared reference). The whole record (name, timestamps, other secrets) is not kept on the
/// verify path; read it with [`crate::Keyward::get`] when needed.
///
/// Returned by [`crate::Keyward::verify`]; [`crate::Keyward::verify_with`] lends the same
/// answers as a [`VerifiedRef`] instead, without taking a reference.
#[derive(Clone)]
pub struct Verified {
    pub(crate) entry: HotEntry,
}

/// Who a verified key belongs to, lent for the duration of a
/// [`crate::Keyward::verify_with`] call: the answers of [`Verified`] without taking a
/// reference (no atomic increment and decrement on the hit path). [`VerifiedRef::to_owned`]
/// makes a [`Verified`] of it.
#[derive(Clone, Copy)]
pub struct VerifiedRef<'a> {
    pub(crate) entry: &'a HotEntry,
}

impl<'a> VerifiedRef<'a> {
    /// The credential id (stable across rotations).
    pub fn id(self) -> &'a CredentialId {
        self.entry.id()
    }
    /// The owning account.
    pub fn account(self) -> &'a AccountId {
        self.entry.account()
    }
    /// The environment.
    pub fn environment(self) -> &'a Environment {
        self.entry.environment()
    }
    /// The key type.
    pub fn key_type(self) -> KeyType {
        self.entry.key_type()
    }
    /// The permissions.
    pub fn permissions(self) -> &'a PermissionSet {
        self.entry.permissions()
    }
    /// The metadata.
    pub fn metadata(self) -> &'a Metadata {
        self.entry.metadata()
    }
    /// The secret version the key belongs to.
    pub fn version(self) -> u32 {
        self.entry.version()
    }
    /// When this key stops working: the earlier of the credential's expiry and the secret's
    /// grace end.
    pub fn expires_at(self) -> Option<Timestamp> {
        match (self.entry.window().not_after, self.entry.expires_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
    /// An owned copy, to keep beyond the call.
    pub fn to_owned(self) -> Verified {
        Verified {
            entry: self.entry.clone(),
        }
    }
}

impl Verified {
    /// The same answers, borrowed.
    pub fn as_ref(&self) -> VerifiedRef<'_> {
        VerifiedRef { entry: &self.entry }
    }
    /// The credential id (stable across rotations).
    pub fn id(&self) -> &CredentialId {
        self.as_ref().id()
    }
    /// The owning account.
    pub fn account(&self) -> &AccountId {
        self.as_ref().account()
    }
    /// The environment.
    pub fn environment(&self) -> &Environment {
        self.as_ref().environment()
    }
    /// The key type.
    pub fn key_type(&self) -> KeyType {
        self.as_ref().key_type()
    }
    /// The permissions.
    pub fn permissions(&self) -> &PermissionSet {
        self.as_ref().permissions()
    }
    /// The metadata.
    pub fn metadata(&self) -> &Metadata {
        self.as_ref().metadata()
    }
    /// The secret version the key belongs to.
    pub fn version(&self) -> u32 {
        self.as_ref().version()
    }
    /// When this key stops working: the earlier of the credential's expiry and the secret's
    /// grace end.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.as_ref().expires_at()
    }
}

impl fmt::Debug for VerifiedRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedRef")
            .field("id", self.id())
            .field("account", self.account())
            .field("environment", self.environment())
            .field("key_type", &self.key_type())
            .field("version", &self.version())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verified")
            .field("id", self.id())
            .field("account", self.account())
            .field("environment", self.environment())
            .field("key_type", &self.key_type())
            .field("version", &self.version())
            .finish_non_exhaustive()
    }
}

/// Why a presented key was refused. The reason is for the caller's logs; an API answering a
/// client can collapse them into one "invalid API key".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not a well-formed key of this deployment (rejected offline, without storage).
    Malformed(FormatError),
    /// Well-formed, but no credential holds it (or the secret does not match).
    Unknown,
    /// Its secret's activation delay has not passed yet.
    NotYetActive,
    /// The key (or its old secret's grace period) has expired.
    Expired,
    /// The key was revoked.
    Revoked,
    /// The credential is disabled.
    Disabled,
    /// The key belongs to another environment than the one required.
    WrongEnvironment,
    /// The key lacks the required permission.
    MissingPermission,
    /// Storage could not be read (shared backends only); the key's validity is unknown.
    Unavailable,
}

impl VerifyError {
    /// A stable machine-readable code, e.g. `expired`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::Unknown => "unknown",
            Self::NotYetActive => "not_yet_active",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::Disabled => "disabled",
            Self::WrongEnvironment => "wrong_environment",
            Self::MissingPermission => "missing_permission",
            Self::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "malformed key: {e}"),
            Self::Unknown => f.write_str("unknown key"),
            Self::NotYetActive => f.write_str("key is not active yet"),
            Self::Expired => f.write_str("key has expired"),
            Self::Revoked => f.write_str("key has been revoked"),
            Self::Disabled => f.write_str("key is disabled"),
            Self::WrongEnvironment => f.write_str("key belongs to another environment"),
            Self::MissingPermission => f.write_str("key lacks the required permission"),
            Self::Unavailable => f.write_str("key store unavailable"),
        }
    }
}

impl std::error::Error for VerifyError {}
