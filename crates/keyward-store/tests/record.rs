//! The record schema (`keyward_store::record`) against the model: version 1 is byte for byte
//! what the model's own serde derives produce, so every store written before the schema moved
//! into this crate reads the same; and a record holding a value the model refuses is
//! `StoreError::Corrupt` naming the field.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use keyward_core::{
    Credential, Digest, Environment, KeyType, LookupTag, Metadata, PermissionSet, SecretVersion,
    Timestamp,
};
use keyward_store::record::{KeyTypeV1, RecordV1, SecretV1};
use keyward_store::{FORMAT_VERSION, StoreError, decode_credential, encode_credential};
use proptest::prelude::*;

const ID: &str = "key_7Ay5mcUXAxwrN6wQEQUVEHBCJ";

/// Every optional field set, several secrets (one revoked, one delayed, one with a grace end),
/// metadata and permissions, extreme times and revision.
fn rich() -> Credential {
    let mut metadata = Metadata::new();
    for (k, v) in [("team", "core"), ("ünïcode", "värde ✓"), ("empty", "")] {
        metadata.insert(k.into(), v.into()).unwrap();
    }
    metadata.insert("long".into(), "x".repeat(500)).unwrap();
    let t = Timestamp::from_millis;
    let secret = |version, lookup: &[u8], byte, revoked_at| SecretVersion {
        version,
        lookup: LookupTag::new(lookup).unwrap(),
        digest: Digest::from_bytes([byte; 32]),
        not_before: t(1_700_000_000_000 + i64::from(version)),
        not_after: Some(t(1_800_000_000_000)),
        created_at: t(1_600_000_000_000),
        revoked_at,
    };
    Credential {
        id: ID.parse().unwrap(),
        account: "acc_B518niGwGYKzig6vtrRVZGGGV".parse().unwrap(),
        environment: "staging2".parse().unwrap(),
        key_type: KeyType::Restricted,
        name: "CI deploy key — prod mirror".parse().unwrap(),
        permissions: PermissionSet::parse(["business:read", "payment-method:*", "a.b_c-d:e"])
            .unwrap(),
        metadata,
        created_at: t(0),
        modified_at: Timestamp::MAX,
        expires_at: Some(t(1_900_000_000_000)),
        enabled: false,
        revision: u64::MAX - 1,
        secrets: vec![
            secret(1, b"ABCDEFGHIJKLMNOP", 0x00, Some(t(1_750_000_000_000))),
            secret(2, b"abcdefghijklmnop", 0xff, None),
            secret(u32::MAX, b"0123456789ABCDEF", 0x5a, Some(Timestamp::MAX)),
        ],
    }
}

#[test]
fn v1_bytes_of_a_rich_credential_are_the_models_bytes() {
    let cred = rich();
    let model = postcard::to_allocvec(&cred).unwrap();
    let record = postcard::to_allocvec(&RecordV1::from(&cred)).unwrap();
    assert_eq!(record, model);
    let stored = encode_credential(&cred).unwrap();
    assert_eq!(stored[0], FORMAT_VERSION);
    assert_eq!(&stored[1..], &model[..]);
    assert_eq!(decode_credential(ID, &stored).unwrap(), cred);
    // And the model's bytes read back as a version-1 record holding the same values.
    let back: RecordV1 = postcard::from_bytes(&model).unwrap();
    assert_eq!(back, RecordV1::from(&cred));
    assert_eq!(Credential::try_from(back).unwrap(), cred);
}

#[test]
fn key_types_keep_their_indexes() {
    for (t, v, byte) in [
        (KeyType::Publishable, KeyTypeV1::Publishable, 0u8),
        (KeyType::Secret, KeyTypeV1::Secret, 1),
        (KeyType::Restricted, KeyTypeV1::Restricted, 2),
    ] {
        assert_eq!(KeyTypeV1::from(t), v);
        assert_eq!(KeyType::from(v), t);
        assert_eq!(postcard::to_allocvec(&v).unwrap(), [byte]);
        assert_eq!(postcard::to_allocvec(&t).unwrap(), [byte]);
    }
}

/// One field of `rich()`'s record set to a value the model refuses: `Corrupt`, naming the
/// record and the field, both from the conversion and from `decode_credential`.
#[test]
fn a_value_the_model_refuses_is_corrupt_naming_the_field() {
    type Edit = fn(&mut RecordV1);
    let cases: [(&str, Edit); 12] = [
        ("account", |r| r.account = String::new()),
        ("environment", |r| r.environment = "prod".into()),
        ("name", |r| r.name = "   ".into()),
        ("permission", |r| {
            r.permissions.push("Not A Permission".into())
        }),
        ("metadata", |r| {
            r.metadata = (0..51).map(|i| (format!("k{i}"), String::new())).collect();
        }),
        ("created_at", |r| r.created_at = -1),
        ("modified_at", |r| {
            r.modified_at = Timestamp::MAX.as_millis() + 1
        }),
        ("expires_at", |r| r.expires_at = Some(i64::MIN)),
        ("lookup tag", |r| r.secrets[1].lookup = "short".into()),
        ("secret not_before", |r| r.secrets[0].not_before = -5),
        ("secret revoked_at", |r| r.secrets[2].revoked_at = Some(-1)),
        ("id", |r| r.id = "key_short".into()),
    ];
    for (what, edit) in cases {
        let mut record = RecordV1::from(&rich());
        edit(&mut record);
        match Credential::try_from(record.clone()) {
            Err(StoreError::Corrupt { id, reason }) => {
                assert_eq!(id, record.id, "{what}");
                assert!(reason.starts_with(what), "{what}: {reason}");
            }
            other => panic!("{what}: {other:?}"),
        }
        let mut stored = vec![FORMAT_VERSION];
        stored.extend(postcard::to_allocvec(&record).unwrap());
        match decode_credential(ID, &stored) {
            Err(StoreError::Corrupt { id, reason }) => {
                assert_eq!(id, ID, "{what}");
                assert!(reason.starts_with(what), "{what}: {reason}");
            }
            other => panic!("{what}: {other:?}"),
        }
    }
}

fn time() -> impl Strategy<Value = Timestamp> {
    (0..=Timestamp::MAX.as_millis()).prop_map(Timestamp::from_millis)
}

fn secret() -> impl Strategy<Value = SecretVersion> {
    (
        any::<u32>(),
        "[0-9A-Za-z]{16}",
        any::<[u8; 32]>(),
        (time(), proptest::option::of(time())),
        (time(), proptest::option::of(time())),
    )
        .prop_map(
            |(version, lookup, digest, (not_before, not_after), (created_at, revoked_at))| {
                SecretVersion {
                    version,
                    lookup: LookupTag::new(lookup.as_bytes()).unwrap(),
                    digest: Digest::from_bytes(digest),
                    not_before,
                    not_after,
                    created_at,
                    revoked_at,
                }
            },
        )
}

fn credential() -> impl Strategy<Value = Credential> {
    let environment = prop_oneof![
        Just(Environment::Production),
        Just(Environment::Test),
        "[a-z0-9]{1,16}".prop_filter_map("reserved", |s| s.parse().ok()),
    ];
    let permissions = proptest::collection::vec(
        prop_oneof![
            Just("*".to_owned()),
            "[a-z][a-z0-9._-]{0,10}:[a-z][a-z0-9._-]{0,10}",
            "[a-z][a-z0-9._-]{0,10}:\\*",
        ],
        0..5,
    );
    let metadata = proptest::collection::btree_map("[a-z0-9_]{1,40}", ".{0,40}", 0..6);
    (
        ("[0-9A-Za-z]{25}", "[!-~]{1,40}", environment, 0..3usize),
        ("[A-Za-z0-9][A-Za-z0-9 ._é-]{0,40}", permissions, metadata),
        (time(), time(), proptest::option::of(time())),
        (any::<bool>(), any::<u64>()),
        proptest::collection::vec(secret(), 0..4),
    )
        .prop_map(
            |(
                (id, account, environment, key_type),
                (name, permissions, metadata),
                (created_at, modified_at, expires_at),
                (enabled, revision),
                secrets,
            )| Credential {
                id: format!("key_{id}").parse().unwrap(),
                account: account.parse().unwrap(),
                environment,
                key_type: KeyType::ALL[key_type],
                name: name.parse().unwrap(),
                permissions: PermissionSet::parse(permissions).unwrap(),
                metadata: Metadata::try_from(metadata.into_iter().collect::<BTreeMap<_, _>>())
                    .unwrap(),
                created_at,
                modified_at,
                expires_at,
                enabled,
                revision,
                secrets,
            },
        )
}

proptest! {
    #[test]
    fn v1_bytes_are_the_models_bytes(cred in credential()) {
        let model = postcard::to_allocvec(&cred).unwrap();
        prop_assert_eq!(&postcard::to_allocvec(&RecordV1::from(&cred)).unwrap(), &model);
        let decoded = decode_credential(cred.id.as_str(), &encode_credential(&cred).unwrap());
        prop_assert_eq!(decoded.unwrap(), cred);
    }
}

/// A secret's fields in `SecretV1` are in the model's order (the digest is not length-prefixed).
#[test]
fn secret_v1_bytes_are_the_models_bytes() {
    for s in &rich().secrets {
        assert_eq!(
            postcard::to_allocvec(&SecretV1::from(s)).unwrap(),
            postcard::to_allocvec(s).unwrap()
        );
    }
}
