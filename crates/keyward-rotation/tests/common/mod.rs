//! Builders shared by the keyward-rotation integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use keyward_core::{
    Credential, Digest, KeyType, LookupTag, Metadata, PermissionSet, SecretVersion, Timestamp,
};

pub const SEC: i64 = 1_000;
pub const MIN: i64 = 60 * SEC;
pub const HOUR: i64 = 60 * MIN;
pub const DAY: i64 = 24 * HOUR;

/// A fixed, realistic start time (2023-11-14T22:13:20Z).
pub const T0: i64 = 1_700_000_000_000;

pub fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

pub fn ms(d: i64) -> Duration {
    Duration::from_millis(u64::try_from(d).unwrap())
}

/// A distinct, valid lookup tag for `n`.
pub fn lookup(n: u32) -> LookupTag {
    LookupTag::new(format!("L{n:015}").as_bytes()).unwrap()
}

pub fn digest(n: u32) -> Digest {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&n.to_le_bytes());
    Digest::from_bytes(b)
}

///
/// It is created at `T0` or at `not_before`, whichever is earlier: a `not_before` after `T0`
/// is an activation delay, as `apply_regenerate` makes one.
pub fn secret(version: u32, not_before: i64, not_after: Option<i64>) -> SecretVersion {
    SecretVersion {
        version,
        lookup: lookup(version),
        digest: digest(version),
        not_before: ts(not_before),
        not_after: not_after.map(ts),
        created_at: ts(not_before.min(T0)),
        revoked_at: None,
    }
}

/// A credential issued at `created` with one active secret (version 1).
pub fn credential(created: i64, expires: Option<i64>) -> Credential {
    Credential {
        id: "key_7Ay5mcUXAxwrN6wQEQUVEHBCJ".parse().unwrap(),
        account: "acc_1".parse().unwrap(),
        environment: keyward_core::Environment::Production,
        key_type: KeyType::Secret,
        name: "test".parse().unwrap(),
        permissions: PermissionSet::new(),
        metadata: Metadata::new(),
        created_at: ts(created),
        modified_at: ts(created),
        expires_at: expires.map(ts),
        enabled: true,
        revision: 1,
        secrets: vec![secret(1, created, None)],
    }
}

pub fn version(cred: &Credential, v: u32) -> &SecretVersion {
    cred.secrets.iter().find(|s| s.version == v).unwrap()
}
