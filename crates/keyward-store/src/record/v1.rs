//! Record format version 1: the credential as keyward 0.1 stores it. Frozen: field order and
//! types are the bytes of every version-1 record on disk.

use std::collections::BTreeMap;

use keyward_core::{
    AccountId, Credential, CredentialId, Digest, Environment, KeyType, LookupTag, Metadata, Name,
    Permission, PermissionSet, SecretVersion, Timestamp,
};
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// A credential, version 1. Field for field (in this order) a `keyward_core::Credential`, with
/// every value in its plain stored form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordV1 {
    /// The credential id (`key_` + 25 base62 characters).
    pub id: String,
    /// The owning account.
    pub account: String,
    /// The environment by name: `production`, `test` or a custom name.
    pub environment: String,
    /// The key type.
    pub key_type: KeyTypeV1,
    /// The display name.
    pub name: String,
    /// The permissions, as strings, sorted.
    pub permissions: Vec<String>,
    /// The metadata entries, in key order.
    pub metadata: BTreeMap<String, String>,
    /// Creation time, Unix milliseconds.
    pub created_at: i64,
    /// Last modification time, Unix milliseconds.
    pub modified_at: i64,
    /// Expiry, Unix milliseconds.
    pub expires_at: Option<i64>,
    /// Whether the credential is enabled.
    pub enabled: bool,
    /// The stored revision.
    pub revision: u64,
    /// The secret versions, oldest first.
    pub secrets: Vec<SecretV1>,
}

/// A key type, version 1: stored as its index (0, 1, 2) in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyTypeV1 {
    /// `pk`.
    Publishable,
    /// `sk`.
    Secret,
    /// `rk`.
    Restricted,
}

/// A secret version, version 1. Field for field a `keyward_core::SecretVersion`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretV1 {
    /// The version number.
    pub version: u32,
    /// The lookup tag (16 base62 characters).
    pub lookup: String,
    /// The keyed digest: 32 bytes, stored without a length.
    pub digest: [u8; 32],
    /// Not usable before, Unix milliseconds.
    pub not_before: i64,
    /// Not usable from, Unix milliseconds.
    pub not_after: Option<i64>,
    /// Generation time, Unix milliseconds.
    pub created_at: i64,
    /// Revocation time, Unix milliseconds.
    pub revoked_at: Option<i64>,
}

impl From<KeyType> for KeyTypeV1 {
    fn from(t: KeyType) -> Self {
        match t {
            KeyType::Publishable => Self::Publishable,
            KeyType::Secret => Self::Secret,
            KeyType::Restricted => Self::Restricted,
        }
    }
}

impl From<KeyTypeV1> for KeyType {
    fn from(t: KeyTypeV1) -> Self {
        match t {
            KeyTypeV1::Publishable => Self::Publishable,
            KeyTypeV1::Secret => Self::Secret,
            KeyTypeV1::Restricted => Self::Restricted,
        }
    }
}

impl From<&SecretVersion> for SecretV1 {
    fn from(s: &SecretVersion) -> Self {
        Self {
            version: s.version,
            lookup: s.lookup.as_str().to_owned(),
            digest: *s.digest.as_bytes(),
            not_before: s.not_before.as_millis(),
            not_after: s.not_after.map(Timestamp::as_millis),
            created_at: s.created_at.as_millis(),
            revoked_at: s.revoked_at.map(Timestamp::as_millis),
        }
    }
}

impl From<&Credential> for RecordV1 {
    fn from(c: &Credential) -> Self {
        Self {
            id: c.id.as_str().to_owned(),
            account: c.account.as_str().to_owned(),
            environment: c.environment.as_str().to_owned(),
            key_type: c.key_type.into(),
            name: c.name.as_str().to_owned(),
            permissions: c
                .permissions
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
            metadata: c.metadata.as_map().clone(),
            created_at: c.created_at.as_millis(),
            modified_at: c.modified_at.as_millis(),
            expires_at: c.expires_at.map(Timestamp::as_millis),
            enabled: c.enabled,
            revision: c.revision,
            secrets: c.secrets.iter().map(SecretV1::from).collect(),
        }
    }
}

/// Converts one field, naming it and the record in the error.
fn field<T, E: core::fmt::Display>(id: &str, what: &str, r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Corrupt {
        id: id.to_owned(),
        reason: format!("{what}: {e}"),
    })
}

fn time(id: &str, what: &str, ms: i64) -> Result<Timestamp, StoreError> {
    field(id, what, Timestamp::try_from(ms))
}

fn optional_time(id: &str, what: &str, ms: Option<i64>) -> Result<Option<Timestamp>, StoreError> {
    ms.map(|ms| time(id, what, ms)).transpose()
}

impl SecretV1 {
    /// The model's secret version; `id` names the record in errors.
    fn into_model(self, id: &str) -> Result<SecretVersion, StoreError> {
        Ok(SecretVersion {
            version: self.version,
            lookup: field(
                id,
                "lookup tag",
                LookupTag::new(self.lookup.as_bytes()).ok_or("not 16 base62 characters"),
            )?,
            digest: Digest::from_bytes(self.digest),
            not_before: time(id, "secret not_before", self.not_before)?,
            not_after: optional_time(id, "secret not_after", self.not_after)?,
            created_at: time(id, "secret created_at", self.created_at)?,
            revoked_at: optional_time(id, "secret revoked_at", self.revoked_at)?,
        })
    }
}

/// The model's credential, if every value is one the model accepts; otherwise
/// [`StoreError::Corrupt`] naming the record (by the id it holds) and the field.
impl TryFrom<RecordV1> for Credential {
    type Error = StoreError;

    fn try_from(r: RecordV1) -> Result<Self, StoreError> {
        let id = r.id;
        let permissions = r
            .permissions
            .into_iter()
            .map(Permission::try_from)
            .collect::<Result<Vec<_>, _>>();
        let secrets = r
            .secrets
            .into_iter()
            .map(|s| s.into_model(&id))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Credential {
            account: field(&id, "account", AccountId::try_from(r.account))?,
            environment: field(&id, "environment", Environment::try_from(r.environment))?,
            key_type: r.key_type.into(),
            name: field(&id, "name", Name::try_from(r.name))?,
            permissions: PermissionSet::from(field(&id, "permission", permissions)?),
            metadata: field(&id, "metadata", Metadata::try_from(r.metadata))?,
            created_at: time(&id, "created_at", r.created_at)?,
            modified_at: time(&id, "modified_at", r.modified_at)?,
            expires_at: optional_time(&id, "expires_at", r.expires_at)?,
            enabled: r.enabled,
            revision: r.revision,
            secrets,
            id: field(&id, "id", CredentialId::try_from(id.clone()))?,
        })
    }
}
