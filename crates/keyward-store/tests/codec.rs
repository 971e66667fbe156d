//! The record encoding, pinned byte for byte: `Credential`'s fields (in keyward-core) are the
//! on-disk format, so reordering, retyping or adding one must fail here and come with a new
//! `FORMAT_VERSION` (see docs/storage.md).
#![allow(clippy::unwrap_used)]

use keyward_core::{
    Credential, Digest, KeyType, LookupTag, Metadata, PermissionSet, SecretVersion, Timestamp,
};
use keyward_store::{FORMAT_VERSION, StoreError, decode_credential, encode_credential};

fn sample() -> Credential {
    let mut metadata = Metadata::new();
    metadata.insert("team".into(), "core".into()).unwrap();
    Credential {
        id: "key_7Ay5mcUXAxwrN6wQEQUVEHBCJ".parse().unwrap(),
        account: "acc_1".parse().unwrap(),
        environment: "staging".parse().unwrap(),
        key_type: KeyType::Restricted,
        name: "ci".parse().unwrap(),
        permissions: PermissionSet::parse(["a:b"]).unwrap(),
        metadata,
        created_at: Timestamp::from_millis(1),
        modified_at: Timestamp::from_millis(300),
        expires_at: None,
        enabled: true,
        revision: 2,
        secrets: vec![SecretVersion {
            version: 1,
            lookup: LookupTag::new(b"ABCDEFGHIJKLMNOP").unwrap(),
            digest: Digest::from_bytes([0xab; 32]),
            not_before: Timestamp::from_millis(1),
            not_after: Some(Timestamp::from_millis(2)),
            created_at: Timestamp::from_millis(1),
            revoked_at: None,
        }],
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn record_bytes_are_pinned() {
    let bytes = encode_credential(&sample()).unwrap();
    #[rustfmt::skip]
    let expected = [
        "01",                                           // format version
        "1d", &hex(b"key_7Ay5mcUXAxwrN6wQEQUVEHBCJ"),   // id: varint length, UTF-8
        "05", &hex(b"acc_1"),                           // account
        "07", &hex(b"staging"),                         // environment, by name
        "02",                                           // key_type: variant 2, restricted
        "02", &hex(b"ci"),                              // name
        "01", "03", &hex(b"a:b"),                       // permissions: count, strings
        "01", "04", &hex(b"team"), "04", &hex(b"core"), // metadata: count, key/value pairs
        "02",                                           // created_at: zigzag varint of 1
        "d804",                                         // modified_at: 300
        "00",                                           // expires_at: None
        "01",                                           // enabled
        "02",                                           // revision
        "01",                                           // secrets: count
        "01",                                           //   version
        "10", &hex(b"ABCDEFGHIJKLMNOP"),                //   lookup
        &"ab".repeat(32),                               //   digest: 32 raw bytes
        "02",                                           //   not_before
        "01", "04",                                     //   not_after: Some(2)
        "02",                                           //   created_at
        "00",                                           //   revoked_at: None
    ]
    .concat();
    assert_eq!(hex(&bytes), expected);
    assert_eq!(bytes[0], FORMAT_VERSION);
    let back = decode_credential("key_7Ay5mcUXAxwrN6wQEQUVEHBCJ", &bytes).unwrap();
    assert_eq!(back, sample());
    // An empty id skips the id check (for callers that have no key to compare with).
    assert_eq!(decode_credential("", &bytes).unwrap(), sample());
}

#[test]
fn decode_names_the_record() {
    let bytes = encode_credential(&sample()).unwrap();
    match decode_credential("key_other", &bytes) {
        Err(StoreError::Corrupt { id, reason }) => {
            assert_eq!(id, "key_other");
            assert!(reason.contains("key_7Ay5"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}
