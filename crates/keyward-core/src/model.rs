//! The credential model.

use core::fmt;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::ids::{AccountId, CredentialId, Environment, KeyType, LookupTag, string_newtype};
use crate::permission::PermissionSet;
use crate::secret::Digest;
use crate::time::Timestamp;

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
