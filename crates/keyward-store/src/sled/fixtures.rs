//! Credentials for the sled backend's unit tests.
#![allow(clippy::unwrap_used)]

use keyward_core::{
    Credential, Environment, KeyFormat, KeyType, Metadata, Name, Pepper, PermissionSet,
    SecretVersion, Timestamp, random_id,
};

/// A secret version with a fresh key.
pub(super) fn secret(version: u32) -> SecretVersion {
    let g = KeyFormat::default()
        .generate(
            KeyType::Secret,
            &Environment::Production,
            &Pepper::from_bytes([7; 32]),
        )
        .unwrap();
    let now = Timestamp::from_millis(1_735_689_600_000);
    SecretVersion {
        version,
        lookup: g.lookup,
        digest: g.digest,
        not_before: now,
        not_after: None,
        created_at: now,
        revoked_at: None,
    }
}

/// A stored-to-be credential of `account` (revision 0) with one secret.
pub(super) fn credential(account: &str) -> Credential {
    let now = Timestamp::from_millis(1_735_689_600_000);
    Credential {
        id: random_id().unwrap(),
        account: account.parse().unwrap(),
        environment: Environment::Production,
        key_type: KeyType::Secret,
        name: "sled test".parse::<Name>().unwrap(),
        permissions: PermissionSet::new(),
        metadata: Metadata::new(),
        created_at: now,
        modified_at: now,
        expires_at: None,
        enabled: true,
        revision: 0,
        secrets: vec![secret(1)],
    }
}
