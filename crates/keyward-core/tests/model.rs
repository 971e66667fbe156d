//! The credential model: every `ModelError` reason, the bounds of names, account ids,
//! credential ids and metadata, timestamps, and serde round trips.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use keyward_core::{
    AccountId, Credential, CredentialId, Digest, Environment, Environments, KeyFormat, KeyType,
    LookupTag, MAX_METADATA_ENTRIES, MAX_METADATA_KEY_LEN, MAX_METADATA_VALUE_LEN, Metadata,
    ModelError, Name, PermissionPolicy, PermissionSet, SecretVersion, Timestamp, random_id,
};
use proptest::prelude::*;

#[test]
fn name_bounds() {
    assert_eq!("".parse::<Name>().unwrap_err(), ModelError::NameEmpty);
    assert_eq!("   ".parse::<Name>().unwrap_err(), ModelError::NameEmpty);
    assert_eq!(" \t\n ".parse::<Name>().unwrap_err(), ModelError::NameEmpty);
    // Unicode whitespace is blank too.
    assert_eq!(
        "\u{3000}\u{a0}".parse::<Name>().unwrap_err(),
        ModelError::NameEmpty
    );
    assert_eq!(
        "a".repeat(101).parse::<Name>().unwrap_err(),
        ModelError::NameTooLong { len: 101 }
    );
    assert_eq!(
        "a".repeat(100).parse::<Name>().unwrap().as_str(),
        "a".repeat(100)
    );
    // Characters, not bytes: 100 two-byte and 100 four-byte characters are fine, 101 are not.
    assert!("é".repeat(100).parse::<Name>().is_ok());
    assert!("🔑".repeat(100).parse::<Name>().is_ok());
    assert_eq!(
        "é".repeat(101).parse::<Name>().unwrap_err(),
        ModelError::NameTooLong { len: 101 }
    );
    assert_eq!(
        "line\nbreak".parse::<Name>().unwrap_err(),
        ModelError::NameControlCharacter
    );
    assert_eq!(
        "tab\there".parse::<Name>().unwrap_err(),
        ModelError::NameControlCharacter
    );
    assert_eq!(
        "nul\0".parse::<Name>().unwrap_err(),
        ModelError::NameControlCharacter
    );
    // Inner and surrounding spaces are kept as given.
    assert_eq!(
        " CI deploy key ".parse::<Name>().unwrap().as_str(),
        " CI deploy key "
    );
    assert!(
        ModelError::NameTooLong { len: 101 }
            .to_string()
            .contains("101")
    );
}

#[test]
fn name_serde_is_validated() {
    let n: Name = serde_json::from_str("\"billing\"").unwrap();
    assert_eq!(n.as_str(), "billing");
    assert_eq!(serde_json::to_string(&n).unwrap(), "\"billing\"");
    assert!(serde_json::from_str::<Name>("\"  \"").is_err());
    assert!(serde_json::from_str::<Name>(&format!("\"{}\"", "x".repeat(101))).is_err());
}

#[test]
fn account_id_bounds() {
    assert_eq!(
        "".parse::<AccountId>().unwrap_err(),
        ModelError::InvalidAccountId
    );
    assert!("a".parse::<AccountId>().is_ok());
    assert!("a".repeat(128).parse::<AccountId>().is_ok());
    assert_eq!(
        "a".repeat(129).parse::<AccountId>().unwrap_err(),
        ModelError::InvalidAccountId
    );
    assert!("acc_B518niGwGYKzig6vtrRVZGGGV".parse::<AccountId>().is_ok());
    assert!("org/42:team-7!~".parse::<AccountId>().is_ok());
    for bad in ["acc 1", " acc", "acc\n", "acc\0", "accé", "\u{7f}"] {
        assert_eq!(
            bad.parse::<AccountId>().unwrap_err(),
            ModelError::InvalidAccountId,
            "{bad:?}"
        );
    }
    assert!(serde_json::from_str::<AccountId>("\"a b\"").is_err());
}

#[test]
fn credential_id_format() {
    let id: CredentialId = "key_7Ay5mcUXAxwrN6wQEQUVEHBCJ".parse().unwrap();
    assert_eq!(id.as_str(), "key_7Ay5mcUXAxwrN6wQEQUVEHBCJ");
    for bad in [
        "",
        "key_",
        "key_7Ay5mcUXAxwrN6wQEQUVEHBC",   // 24
        "key_7Ay5mcUXAxwrN6wQEQUVEHBCJx", // 26
        "kex_7Ay5mcUXAxwrN6wQEQUVEHBCJ",
        "KEY_7Ay5mcUXAxwrN6wQEQUVEHBCJ",
        "key-7Ay5mcUXAxwrN6wQEQUVEHBCJ",
        "key_7Ay5mcUXAxwrN6wQEQUVEHBC_",
        "key_7Ay5mcUXAxwrN6wQEQUVEHBCé",
    ] {
        assert_eq!(
            bad.parse::<CredentialId>().unwrap_err(),
            ModelError::InvalidCredentialId,
            "{bad:?}"
        );
    }
    let a = random_id().unwrap();
    let b = random_id().unwrap();
    assert_ne!(a, b);
    for id in [a, b] {
        assert_eq!(id.as_str().parse::<CredentialId>().unwrap(), id);
    }
}

#[test]
fn environment_names() {
    assert_eq!(
        "production".parse::<Environment>().unwrap(),
        Environment::Production
    );
    assert_eq!("test".parse::<Environment>().unwrap(), Environment::Test);
    assert_eq!(
        "staging".parse::<Environment>().unwrap(),
        Environment::Custom("staging".to_owned())
    );
    assert!("a".repeat(16).parse::<Environment>().is_ok());
    for bad in [
        "",
        "prod",
        "Production",
        "stag-ing",
        "stag ing",
        "é",
        &"a".repeat(17),
    ] {
        assert_eq!(
            bad.parse::<Environment>().unwrap_err(),
            ModelError::InvalidEnvironment,
            "{bad:?}"
        );
    }
    for env in ["production", "test", "staging"] {
        let e: Environment = env.parse().unwrap();
        assert_eq!(e.to_string(), env);
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, format!("\"{env}\""));
        assert_eq!(serde_json::from_str::<Environment>(&json).unwrap(), e);
    }
    assert!(serde_json::from_str::<Environment>("\"prod\"").is_err());
}

#[test]
fn key_type_names() {
    for (name, prefix, kt) in [
        ("publishable", "pk", KeyType::Publishable),
        ("secret", "sk", KeyType::Secret),
        ("restricted", "rk", KeyType::Restricted),
    ] {
        assert_eq!(name.parse::<KeyType>().unwrap(), kt);
        assert_eq!(prefix.parse::<KeyType>().unwrap(), kt);
        assert_eq!(kt.as_str(), name);
        assert_eq!(kt.prefix(), prefix);
        assert_eq!(KeyType::from_prefix(prefix), Some(kt));
        assert_eq!(serde_json::to_string(&kt).unwrap(), format!("\"{name}\""));
    }
    for bad in ["", "Secret", "SK", "sec", "ak"] {
        assert_eq!(
            bad.parse::<KeyType>().unwrap_err(),
            ModelError::InvalidKeyType
        );
    }
    assert_eq!(KeyType::from_prefix("secret"), None);
}

#[test]
fn metadata_bounds() {
    let mut m = Metadata::new();
    assert!(m.is_empty());
    let too_large = |e: ModelError| matches!(e, ModelError::MetadataTooLarge { .. });

    assert!(too_large(m.insert(String::new(), "v".into()).unwrap_err()));
    assert!(too_large(
        m.insert("k".repeat(MAX_METADATA_KEY_LEN + 1), "v".into())
            .unwrap_err()
    ));
    m.insert("k".repeat(MAX_METADATA_KEY_LEN), "v".into())
        .unwrap();
    assert!(too_large(
        m.insert("big".into(), "v".repeat(MAX_METADATA_VALUE_LEN + 1))
            .unwrap_err()
    ));
    m.insert("big".into(), "v".repeat(MAX_METADATA_VALUE_LEN))
        .unwrap();
    m.insert("empty".into(), String::new()).unwrap();
    // Bytes, not characters: 251 two-byte characters are 502 bytes.
    assert!(too_large(
        m.insert("e".into(), "é".repeat(251)).unwrap_err()
    ));

    let mut full = Metadata::new();
    for i in 0..MAX_METADATA_ENTRIES {
        full.insert(format!("k{i}"), "v".into()).unwrap();
    }
    assert_eq!(full.as_map().len(), MAX_METADATA_ENTRIES);
    assert_eq!(
        full.insert("one-more".into(), "v".into()).unwrap_err(),
        ModelError::MetadataTooLarge {
            what: "more than 50 entries"
        }
    );
    // Replacing an existing entry in a full map is fine.
    full.insert("k0".into(), "changed".into()).unwrap();
    assert_eq!(full.as_map()["k0"], "changed");

    // Deserialisation applies the same bounds.
    let json = serde_json::to_string(&full).unwrap();
    assert_eq!(serde_json::from_str::<Metadata>(&json).unwrap(), full);
    let mut over: BTreeMap<String, String> = full.into();
    over.insert("one-more".into(), "v".into());
    assert!(Metadata::try_from(over.clone()).is_err());
    assert!(serde_json::from_str::<Metadata>(&serde_json::to_string(&over).unwrap()).is_err());
    assert!(serde_json::from_str::<Metadata>(r#"{"": "v"}"#).is_err());
}

#[test]
fn timestamp_parsing() {
    let t: Timestamp = "2024-06-30T01:02:29.212Z".parse().unwrap();
    assert_eq!(t.as_millis(), 1_719_709_349_212);
    assert_eq!(t.to_string(), "2024-06-30T01:02:29.212Z");
    assert_eq!(
        "1970-01-01T00:00:00Z".parse::<Timestamp>().unwrap(),
        Timestamp::EPOCH
    );
    assert_eq!(
        "9999-12-31T23:59:59.999Z".parse::<Timestamp>().unwrap(),
        Timestamp::MAX
    );
    assert_eq!(Timestamp::MAX.to_string(), "9999-12-31T23:59:59.999Z");
    assert_eq!(Timestamp::EPOCH.to_string(), "1970-01-01T00:00:00.000Z");
    // UTC spellings that are accepted.
    for ok in [
        "2024-06-30T01:02:29Z",
        "2024-06-30T01:02:29+00:00",
        "2024-06-30T01:02:29",
        "2024-06-30 01:02:29Z",
        "2024-06-30T01:02:29.0Z",
        "2024-06-30T01:02:29.000000000+00:00",
    ] {
        assert_eq!(
            ok.parse::<Timestamp>().unwrap().as_millis(),
            1_719_709_349_000,
            "{ok}"
        );
    }
    // Sub-millisecond digits are truncated.
    assert_eq!(
        "2024-06-30T01:02:29.2129999Z"
            .parse::<Timestamp>()
            .unwrap()
            .as_millis(),
        1_719_709_349_212
    );
    for bad in [
        "",
        "2024-06-30",
        "2024-06-30T01:02",
        "1969-12-31T23:59:59Z",
        "10000-01-01T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-02-30T00:00:00Z",
        "2024-06-30T24:00:00Z",
        "2024-06-30X01:02:29Z",
        // Trailing text, an empty fraction, and non-UTC offsets (which must not be read as UTC).
        "2024-06-30T01:02:29Zjunk",
        "2024-06-30T01:02:29Z ",
        "2024-06-30T01:02:29.Z",
        "2024-06-30T01:02:29.",
        "2024-06-30T01:02:29+01:00",
        "2024-06-30T01:02:29.5+05:00",
        "2024-06-30T01:02:29.5-05:00",
        "2024-06-30T01:02:29.5+xxxxx",
        "2024-06-30T01:02:29.5é",
        "2024-06-30T01:02:2é",
        &format!("2024-06-30T01:02:29.{}Z", "1".repeat(60)),
    ] {
        assert_eq!(
            bad.parse::<Timestamp>().unwrap_err(),
            ModelError::InvalidTimestamp,
            "{bad:?}"
        );
    }
}

#[test]
fn timestamp_arithmetic_saturates() {
    use std::time::Duration;
    assert_eq!(Timestamp::from_millis(-5), Timestamp::EPOCH);
    assert_eq!(Timestamp::from_millis(i64::MAX), Timestamp::MAX);
    assert_eq!(
        Timestamp::MAX.saturating_add(Duration::from_secs(1)),
        Timestamp::MAX
    );
    assert_eq!(
        Timestamp::EPOCH.saturating_sub(Duration::from_secs(1)),
        Timestamp::EPOCH
    );
    let t = Timestamp::from_millis(1_000);
    assert_eq!(
        t.saturating_add(Duration::from_millis(500)).as_millis(),
        1_500
    );
    assert_eq!(t.duration_since(Timestamp::EPOCH), Duration::from_secs(1));
    assert_eq!(Timestamp::EPOCH.duration_since(t), Duration::ZERO);
    assert_eq!(
        Timestamp::from_millis(1_500).to_system_time(),
        std::time::UNIX_EPOCH + Duration::from_millis(1_500)
    );
    let now = Timestamp::now();
    assert!(now > "2024-01-01T00:00:00Z".parse().unwrap());
}

#[test]
fn timestamp_serde_refuses_out_of_range() {
    let t = Timestamp::from_millis(1_719_709_349_212);
    assert_eq!(serde_json::to_string(&t).unwrap(), "1719709349212");
    assert_eq!(
        serde_json::from_str::<Timestamp>("1719709349212").unwrap(),
        t
    );
    assert_eq!(
        serde_json::from_str::<Timestamp>("0").unwrap(),
        Timestamp::EPOCH
    );
    assert_eq!(
        serde_json::from_str::<Timestamp>("253402300799999").unwrap(),
        Timestamp::MAX
    );
    // Outside [EPOCH, MAX] would not display (`9999-…` is the last RFC 3339 year): refused.
    assert!(serde_json::from_str::<Timestamp>("-1").is_err());
    assert!(serde_json::from_str::<Timestamp>("253402300800000").is_err());
    assert!(serde_json::from_str::<Timestamp>("9223372036854775807").is_err());
    assert_eq!(Timestamp::try_from(-1), Err(ModelError::InvalidTimestamp));
    assert_eq!(Timestamp::try_from(5), Ok(Timestamp::from_millis(5)));
    assert_eq!(i64::from(Timestamp::MAX), 253_402_300_799_999);
}

proptest! {
    /// Display (RFC 3339, milliseconds) then parse gives the same instant, for every
    /// representable instant.
    #[test]
    fn timestamp_rfc3339_round_trip(ms in 0i64..=Timestamp::MAX.as_millis()) {
        let t = Timestamp::from_millis(ms);
        let text = t.to_string();
        prop_assert_eq!(text.len(), 24);
        prop_assert!(text.ends_with('Z'));
        prop_assert_eq!(text.parse::<Timestamp>().unwrap(), t);
        let json = serde_json::to_string(&t).unwrap();
        prop_assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
    }

    /// Timestamp, environment, name and id parsers never panic, whatever the input.
    #[test]
    fn text_parsers_never_panic(s in prop_oneof![
        any::<String>(),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?(Z|[+-][0-9]{2}:[0-9]{2}|.{0,3})",
        (".{0,4}", 0..3_000usize).prop_map(|(s, n)| s.repeat(n)),
    ]) {
        if let Ok(t) = s.parse::<Timestamp>() {
            prop_assert!(t >= Timestamp::EPOCH && t <= Timestamp::MAX);
            let _ = t.to_string();
        }
        let _ = s.parse::<Environment>();
        let _ = s.parse::<Name>();
        let _ = s.parse::<AccountId>();
        let _ = s.parse::<CredentialId>();
    }
}

fn credential(key_type: KeyType, permissions: &[&str]) -> Credential {
    let format = KeyFormat::default();
    let pepper = keyward_core::Pepper::from_bytes([3; 32]);
    let g = format
        .generate(key_type, &Environment::Production, &pepper)
        .unwrap();
    let created = Timestamp::from_millis(1_719_709_349_212);
    let mut metadata = Metadata::new();
    metadata.insert("team".into(), "billing".into()).unwrap();
    Credential {
        id: random_id().unwrap(),
        account: "acc_1".parse().unwrap(),
        environment: Environment::Production,
        key_type,
        name: "billing worker".parse().unwrap(),
        permissions: PermissionSet::parse(permissions).unwrap(),
        metadata,
        created_at: created,
        modified_at: created,
        expires_at: None,
        enabled: true,
        revision: 1,
        secrets: vec![SecretVersion {
            version: 1,
            lookup: g.lookup,
            digest: g.digest,
            not_before: created,
            not_after: None,
            created_at: created,
            revoked_at: None,
        }],
    }
}

#[test]
fn restricted_keys_need_a_permission() {
    assert_eq!(
        credential(KeyType::Restricted, &[]).validate().unwrap_err(),
        ModelError::RestrictedWithoutPermissions
    );
    assert!(
        credential(KeyType::Restricted, &["business:read"])
            .validate()
            .is_ok()
    );
    assert!(credential(KeyType::Secret, &[]).validate().is_ok());
    assert!(credential(KeyType::Publishable, &[]).validate().is_ok());
}

#[test]
fn credential_serde_round_trip_and_secret_lookup() {
    let mut cred = credential(KeyType::Restricted, &["business:read", "payment-method:*"]);
    let first = cred.secrets[0].clone();
    let second = SecretVersion {
        version: 2,
        lookup: LookupTag::new(b"ABCDEFGHabcdefgh").unwrap(),
        digest: Digest::from_bytes([9; 32]),
        ..first.clone()
    };
    cred.secrets.push(second.clone());
    assert_eq!(cred.secret_by_lookup(&first.lookup), Some(&first));
    assert_eq!(cred.secret_by_lookup(&second.lookup), Some(&second));
    assert_eq!(
        cred.secret_by_lookup(&LookupTag::new(b"0000000000000000").unwrap()),
        None
    );
    assert_eq!(cred.latest_secret(), Some(&second));

    let json = serde_json::to_string(&cred).unwrap();
    let back: Credential = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cred);
    assert_eq!(back.secrets[1].digest.as_bytes(), &[9; 32]);
}

#[test]
fn lookup_tag_rules() {
    assert!(LookupTag::new(b"ABCDEFGHabcdefgh").is_some());
    assert!(LookupTag::new(b"ABCDEFGHabcdefg").is_none());
    assert!(LookupTag::new(b"ABCDEFGHabcdefghi").is_none());
    assert!(LookupTag::new(b"ABCDEFGHabcdefg_").is_none());
    assert!(LookupTag::new("ABCDEFGHabcdefé".as_bytes()).is_none());
    let tag = LookupTag::new(b"ABCDEFGHabcdefgh").unwrap();
    assert_eq!(tag.as_str(), "ABCDEFGHabcdefgh");
    assert_eq!(tag.to_string(), "ABCDEFGHabcdefgh");
    assert_eq!(tag.prefix_u64(), u64::from_le_bytes(*b"ABCDEFGH"));
    assert_eq!(serde_json::to_string(&tag).unwrap(), "\"ABCDEFGHabcdefgh\"");
    assert!(serde_json::from_str::<LookupTag>("\"short\"").is_err());
}

/// One assertion per `ModelError` variant reachable from the public API (`Rng` needs the
/// operating system's generator to fail), each with a non-empty message.
#[test]
fn every_model_error_reason() {
    let mut envs = Environments::default();
    let mut policy = PermissionPolicy::default();
    policy.limit(KeyType::Publishable, PermissionSet::new());
    let cases: Vec<(ModelError, ModelError)> = vec![
        ("".parse::<Name>().unwrap_err(), ModelError::NameEmpty),
        (
            "x".repeat(101).parse::<Name>().unwrap_err(),
            ModelError::NameTooLong { len: 101 },
        ),
        (
            "a\u{7}".parse::<Name>().unwrap_err(),
            ModelError::NameControlCharacter,
        ),
        (
            "".parse::<AccountId>().unwrap_err(),
            ModelError::InvalidAccountId,
        ),
        (
            "key_x".parse::<CredentialId>().unwrap_err(),
            ModelError::InvalidCredentialId,
        ),
        (
            "Prod".parse::<Environment>().unwrap_err(),
            ModelError::InvalidEnvironment,
        ),
        (
            envs.insert("staging", "prod").unwrap_err(),
            ModelError::InvalidEnvironmentTag,
        ),
        (
            KeyFormat::new(Some("a_b"), Environments::default()).unwrap_err(),
            ModelError::InvalidNamespace,
        ),
        (
            "admin".parse::<KeyType>().unwrap_err(),
            ModelError::InvalidKeyType,
        ),
        (
            Metadata::new()
                .insert(String::new(), String::new())
                .unwrap_err(),
            ModelError::MetadataTooLarge {
                what: "key must be 1 to 40 bytes",
            },
        ),
        (
            "yesterday".parse::<Timestamp>().unwrap_err(),
            ModelError::InvalidTimestamp,
        ),
        (
            credential(KeyType::Restricted, &[]).validate().unwrap_err(),
            ModelError::RestrictedWithoutPermissions,
        ),
        (
            policy
                .check(
                    KeyType::Publishable,
                    &PermissionSet::parse(["a:b"]).unwrap(),
                )
                .unwrap_err(),
            ModelError::PermissionNotAllowed {
                permission: "a:b".to_owned(),
            },
        ),
    ];
    for (got, expected) in cases {
        assert!(!got.to_string().is_empty());
        assert_eq!(got, expected);
    }
    assert!(!ModelError::Rng.to_string().is_empty());
}
