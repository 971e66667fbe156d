//! The credential model.

use core::fmt;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::base62;
use crate::error::ModelError;
use crate::format::{KeyType, LookupTag};
use crate::permission::PermissionSet;
use crate::secret::Digest;
use crate::time::Timestamp;

/// `[a-z0-9]{1,16}`: environment tags, custom environment names and namespaces.
pub(crate) fn valid_tag(s: &str) -> bool {
    (1..=16).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

macro_rules! string_newtype {
    ($(#[$m:meta])* $name:ident, $check:expr) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The value as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ModelError;
            fn try_from(s: String) -> Result<Self, ModelError> {
                #[allow(clippy::redundant_closure_call)]
                ($check)(s).map($name)
            }
        }

        impl core::str::FromStr for $name {
            type Err = ModelError;
            fn from_str(s: &str) -> Result<Self, ModelError> {
                Self::try_from(s.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }
    };
}

string_newtype!(
    /// An opaque account identifier: 1–128 printable ASCII characters (no spaces), e.g.
    /// `acc_B518niGwGYKzig6vtrRVZGGGV`.
    AccountId,
    |s: String| {
        if (1..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(s)
        } else {
            Err(ModelError::InvalidAccountId)
        }
    }
);

string_newtype!(
    /// A key's display name: 1–100 characters, not blank.
    Name,
    |s: String| {
        let len = s.chars().count();
        if s.trim().is_empty() {
            Err(ModelError::NameEmpty)
        } else if len > 100 {
            Err(ModelError::NameTooLong { len })
        } else if s.chars().any(char::is_control) {
            Err(ModelError::NameControlCharacter)
        } else {
            Ok(s)
        }
    }
);

/// A credential id, `key_` followed by 25 base62 characters, e.g.
/// `key_7Ay5mcUXAxwrN6wQEQUVEHBCJ`. It stays the same across rotations.
///
/// Held inline (29 bytes, no heap allocation): the hot index keeps one per credential.
///
/// ```
/// use keyward_core::CredentialId;
/// let id: CredentialId = "key_7Ay5mcUXAxwrN6wQEQUVEHBCJ".parse().unwrap();
/// assert_eq!(id.as_str(), "key_7Ay5mcUXAxwrN6wQEQUVEHBCJ");
/// assert!("key_short".parse::<CredentialId>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CredentialId([u8; CredentialId::LEN]);

impl CredentialId {
    /// Length of an id in bytes.
    pub const LEN: usize = 29;

    /// Builds an id from 25 random base62 characters.
    pub(crate) fn from_body(body: &[u8; 25]) -> Self {
        let mut b = *b"key_0000000000000000000000000";
        b[4..].copy_from_slice(body);
        Self(b)
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        // Only ever built from validated ASCII (`from_body`, `TryFrom<String>`).
        core::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl TryFrom<String> for CredentialId {
    type Error = ModelError;
    fn try_from(s: String) -> Result<Self, ModelError> {
        s.parse()
    }
}

impl core::str::FromStr for CredentialId {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, ModelError> {
        let b: [u8; Self::LEN] = s
            .as_bytes()
            .try_into()
            .map_err(|_| ModelError::InvalidCredentialId)?;
        let ok = b.starts_with(b"key_") && b[4..].iter().all(|&c| base62::digit(c).is_some());
        if ok {
            Ok(Self(b))
        } else {
            Err(ModelError::InvalidCredentialId)
        }
    }
}

impl From<CredentialId> for String {
    fn from(v: CredentialId) -> String {
        v.as_str().to_owned()
    }
}

impl fmt::Display for CredentialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CredentialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// An environment: `production`, `test`, or a custom name (`[a-z0-9]{1,16}`, not `prod`).
///
/// ```
/// use keyward_core::Environment;
/// assert_eq!("production".parse::<Environment>().unwrap(), Environment::Production);
/// assert_eq!("staging".parse::<Environment>().unwrap().as_str(), "staging");
/// assert!("Prod!".parse::<Environment>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Environment {
    /// `production`, tag `prod`.
    Production,
    /// `test`, tag `test`.
    Test,
    /// A custom environment.
    Custom(String),
}

impl Environment {
    /// The environment's name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Production => "production",
            Self::Test => "test",
            Self::Custom(s) => s,
        }
    }
}

impl TryFrom<String> for Environment {
    type Error = ModelError;
    fn try_from(s: String) -> Result<Self, ModelError> {
        match s.as_str() {
            "production" => Ok(Self::Production),
            "test" => Ok(Self::Test),
            "prod" => Err(ModelError::InvalidEnvironment),
            _ if valid_tag(&s) => Ok(Self::Custom(s)),
            _ => Err(ModelError::InvalidEnvironment),
        }
    }
}

impl core::str::FromStr for Environment {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, ModelError> {
        if s.len() > 16 && s != "production" {
            return Err(ModelError::InvalidEnvironment);
        }
        Self::try_from(s.to_owned())
    }
}

impl From<Environment> for String {
    fn from(e: Environment) -> String {
        match e {
            Environment::Custom(s) => s,
            other => other.as_str().to_owned(),
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Most metadata entries per credential.
pub const MAX_METADATA_ENTRIES: usize = 50;
/// Longest metadata key, in bytes.
pub const MAX_METADATA_KEY_LEN: usize = 40;
/// Longest metadata value, in bytes.
pub const MAX_METADATA_VALUE_LEN: usize = 500;

/// Free-form string metadata, bounded: at most 50 entries, keys 1–40 bytes, values ≤ 500 bytes.
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(
    try_from = "BTreeMap<String, String>",
    into = "BTreeMap<String, String>"
)]
pub struct Metadata(BTreeMap<String, String>);

impl Metadata {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The entries.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds or replaces an entry, checking the bounds.
    pub fn insert(&mut self, key: String, value: String) -> Result<(), ModelError> {
        check_entry(&key, &value)?;
        if !self.0.contains_key(&key) && self.0.len() >= MAX_METADATA_ENTRIES {
            return Err(ModelError::MetadataTooLarge {
                what: "more than 50 entries",
            });
        }
        self.0.insert(key, value);
        Ok(())
    }
}

fn check_entry(key: &str, value: &str) -> Result<(), ModelError> {
    if key.is_empty() || key.len() > MAX_METADATA_KEY_LEN {
        return Err(ModelError::MetadataTooLarge {
            what: "key must be 1 to 40 bytes",
        });
    }
    if value.len() > MAX_METADATA_VALUE_LEN {
        return Err(ModelError::MetadataTooLarge {
            what: "value longer than 500 bytes",
        });
    }
    Ok(())
}

impl TryFrom<BTreeMap<String, String>> for Metadata {
    type Error = ModelError;
    fn try_from(m: BTreeMap<String, String>) -> Result<Self, ModelError> {
        if m.len() > MAX_METADATA_ENTRIES {
            return Err(ModelError::MetadataTooLarge {
                what: "more than 50 entries",
            });
        }
        for (k, v) in &m {
            check_entry(k, v)?;
        }
        Ok(Self(m))
    }
}

impl From<Metadata> for BTreeMap<String, String> {
    fn from(m: Metadata) -> Self {
        m.0
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// One secret of a credential. A credential has one per generation; a regenerate adds one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretVersion {
    /// 1 for the first secret, incremented by each regenerate.
    pub version: u32,
    /// Public lookup tag of this secret's key.
    pub lookup: LookupTag,
    /// Keyed digest of the key (see [`crate::Pepper::digest`]).
    pub digest: Digest,
    /// The secret is refused before this instant (activation delay).
    pub not_before: Timestamp,
    /// The secret is refused from this instant on (grace end); `None`: no own limit.
    pub not_after: Option<Timestamp>,
    /// When it was generated.
    pub created_at: Timestamp,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

impl SecretVersion {
    /// The fields that decide when this secret is usable, without the digest and tag.
    #[inline]
    pub fn window(&self) -> SecretWindow {
        SecretWindow {
            not_before: self.not_before,
            not_after: self.not_after,
            revoked: self.revoked_at.is_some(),
            delayed: self.not_before > self.created_at,
        }
    }
}

/// When a secret is usable: what `keyward_rotation::secret_state` reads of a
/// [`SecretVersion`], small enough for the hot index to keep a copy per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretWindow {
    /// Refused before this instant (if `delayed`).
    pub not_before: Timestamp,
    /// Refused from this instant on (grace end); `None`: no own limit.
    pub not_after: Option<Timestamp>,
    /// Revoked.
    pub revoked: bool,
    /// Generated with an activation delay (`not_before > created_at`).
    pub delayed: bool,
}

impl SecretWindow {
    /// Whether a secret with this window, of a credential expiring at `credential_expires`, is
    /// usable at every instant: not revoked, no end of its own or from the credential, no
    /// activation delay. Such a key's state does not depend on the clock.
    #[inline]
    pub fn is_timeless(&self, credential_expires: Option<Timestamp>) -> bool {
        !self.revoked && self.not_after.is_none() && credential_expires.is_none() && !self.delayed
    }
}

/// A credential: one API key's identity, policy and secret versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// Stable id, the same across rotations.
    pub id: CredentialId,
    /// Owning account.
    pub account: AccountId,
    /// Environment the key works in.
    pub environment: Environment,
    /// Publishable, secret or restricted.
    pub key_type: KeyType,
    /// Display name.
    pub name: Name,
    /// What the key may do.
    pub permissions: PermissionSet,
    /// Free-form metadata returned on verify.
    pub metadata: Metadata,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last modification time.
    pub modified_at: Timestamp,
    /// The credential stops working at this instant, if set.
    pub expires_at: Option<Timestamp>,
    /// A disabled credential is refused until enabled again.
    pub enabled: bool,
    /// Revision for conditional writes; the store sets it, incremented on every write.
    pub revision: u64,
    /// Secret versions, oldest first.
    pub secrets: Vec<SecretVersion>,
}

impl Credential {
    /// The secret version with `lookup`, if any.
    pub fn secret_by_lookup(&self, lookup: &LookupTag) -> Option<&SecretVersion> {
        self.secrets.iter().find(|s| &s.lookup == lookup)
    }

    /// The newest secret version.
    pub fn latest_secret(&self) -> Option<&SecretVersion> {
        self.secrets.iter().max_by_key(|s| s.version)
    }

    /// Checks the issue-time rules that span fields: a restricted key has at least one
    /// permission.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.key_type == KeyType::Restricted && self.permissions.is_empty() {
            return Err(ModelError::RestrictedWithoutPermissions);
        }
        Ok(())
    }
}
