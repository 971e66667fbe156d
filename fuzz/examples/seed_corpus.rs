//! Writes the checked-in seed corpus under `fuzz/corpus/<target>/`, deterministically (the keys
//! are the known-answer vectors' generator and pepper). Run from `fuzz/`:
//! `cargo run --example seed_corpus`.
#![forbid(unsafe_code)]

use std::fs;
use std::path::Path;

use keyward_core::{
    Credential, CredentialId, Environment, Environments, KeyFormat, KeyType, Metadata, Pepper,
    PermissionSet, SecretVersion, Timestamp,
};
use keyward_store::encode_credential;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const SEED: [u8; 32] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
];

fn write(target: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let dir = Path::new("corpus").join(target);
    fs::create_dir_all(&dir)?;
    fs::write(dir.join(name), bytes)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pepper = Pepper::from_bytes([0x42; 32]);
    let mut rng = ChaCha20Rng::from_seed(SEED);
    let mut envs = Environments::default();
    envs.insert("staging", "stg")?;
    let acme = KeyFormat::new(Some("acme"), Environments::default())?;
    let tagged = KeyFormat::new(None, envs)?;
    let plain = KeyFormat::default();

    let sk = plain.generate_with(&mut rng, KeyType::Secret, &Environment::Production, &pepper)?;
    let pk = plain.generate_with(&mut rng, KeyType::Publishable, &Environment::Test, &pepper)?;
    let ns = acme.generate_with(&mut rng, KeyType::Secret, &Environment::Production, &pepper)?;
    let rk = tagged.generate_with(&mut rng, KeyType::Restricted, &"staging".parse()?, &pepper)?;
    let sk = sk.key.expose_secret().to_owned();

    // parse_key: valid keys and near misses, one reason each.
    write("parse_key", "valid_sk_prod", sk.as_bytes())?;
    write(
        "parse_key",
        "valid_pk_test",
        pk.key.expose_secret().as_bytes(),
    )?;
    write(
        "parse_key",
        "valid_namespace",
        ns.key.expose_secret().as_bytes(),
    )?;
    write(
        "parse_key",
        "valid_custom_tag",
        rk.key.expose_secret().as_bytes(),
    )?;
    let mut typo = sk.clone().into_bytes();
    typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
    write("parse_key", "bad_checksum_typo", &typo)?;
    let mut swapped = sk.clone().into_bytes();
    swapped.swap(30, 31);
    write("parse_key", "bad_checksum_transposed", &swapped)?;
    write(
        "parse_key",
        "bad_body_length",
        &sk.as_bytes()[..sk.len() - 1],
    )?;
    write(
        "parse_key",
        "unknown_type",
        format!("xk{}", &sk[2..]).as_bytes(),
    )?;
    write(
        "parse_key",
        "unknown_env",
        sk.replacen("prod", "PROD", 1).as_bytes(),
    )?;
    write(
        "parse_key",
        "production_is_not_a_tag",
        sk.replacen("prod", "production", 1).as_bytes(),
    )?;
    write(
        "parse_key",
        "bad_structure",
        sk.replacen('_', "", 2).as_bytes(),
    )?;
    write(
        "parse_key",
        "wrong_namespace",
        format!("ACME_{sk}").as_bytes(),
    )?;
    write(
        "parse_key",
        "invalid_character",
        sk.replacen('_', "-", 1).as_bytes(),
    )?;
    write(
        "parse_key",
        "non_ascii",
        format!("{}é", &sk[..sk.len() - 2]).as_bytes(),
    )?;
    write("parse_key", "empty", b"")?;

    // parse_permission.
    for (name, text) in [
        ("all", "*"),
        ("exact", "payment-method:write"),
        ("resource_wildcard", "api-key:*"),
        ("set", "business:read,payment-method:*,*"),
        ("missing_colon", "payments"),
        ("bad_resource", "Payments:read"),
        ("bad_action", "payments:read:write"),
        ("empty_action", "payments:"),
        ("too_long", &format!("a:{}", "b".repeat(127))),
    ] {
        write("parse_permission", name, text.as_bytes())?;
    }

    // decode_record: encoded credentials (a minimal one and a full one with two secrets).
    let created: Timestamp = "2026-11-01T12:00:00.000Z".parse()?;
    let version = |n: u32, g: &keyward_core::Generated| SecretVersion {
        version: n,
        lookup: g.lookup,
        digest: g.digest,
        not_before: created,
        not_after: None,
        created_at: created,
        revoked_at: None,
    };
    let mut minimal = Credential {
        id: CredentialId::random_with(&mut rng),
        account: "acc_1".parse()?,
        environment: Environment::Production,
        key_type: KeyType::Secret,
        name: "ci".parse()?,
        permissions: PermissionSet::new(),
        metadata: Metadata::new(),
        created_at: created,
        modified_at: created,
        expires_at: None,
        enabled: true,
        revision: 1,
        secrets: vec![version(1, &pk)],
    };
    write("decode_record", "minimal", &encode_credential(&minimal)?)?;
    let mut metadata = Metadata::new();
    metadata.insert("team".into(), "billing".into())?;
    metadata.insert("ticket".into(), "OPS-1234 é".into())?;
    minimal.id = CredentialId::random_with(&mut rng);
    minimal.key_type = KeyType::Restricted;
    minimal.environment = "staging".parse()?;
    minimal.name = "billing worker (rotating)".parse()?;
    minimal.permissions = PermissionSet::parse(["business:read", "payment-method:*"])?;
    minimal.metadata = metadata;
    minimal.expires_at = Some(Timestamp::MAX);
    minimal.enabled = false;
    minimal.revision = u64::MAX;
    let mut old = version(1, &rk);
    old.not_after = Some("2026-11-02T00:00:00Z".parse()?);
    old.revoked_at = Some(created);
    minimal.secrets = vec![old, version(2, &ns)];
    write("decode_record", "full", &encode_credential(&minimal)?)?;
    write("decode_record", "empty", b"")?;
    write("decode_record", "version_zero", &[0])?;
    write("decode_record", "future_version", &[2, 0])?;
    Ok(())
}
