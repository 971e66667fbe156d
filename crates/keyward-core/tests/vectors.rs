//! Known-answer vectors: a fixed seed, pepper and inputs produce these exact keys, digests and
//! ids. They are frozen here and in `docs/key-format.md`; if this test fails, the key format
//! (or the generator, the checksum, or the digest) changed, and every issued key with it.
//!
//! Inputs, for every vector unless it says otherwise:
//! * generator: `ChaCha20Rng::from_seed(SEED)`, SEED = bytes `00 01 02 … 1f`, fresh per vector;
//! * pepper: `Pepper::from_bytes([0x42; 32])`.
#![allow(clippy::unwrap_used)]

mod common;

use common::{hex, reference_checksum};
use keyward_core::{
    CHECKSUM_LEN, CredentialId, Environment, Environments, KeyFormat, KeyType, Pepper, parse_any,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const SEED: [u8; 32] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
];
const PEPPER: [u8; 32] = [0x42; 32];

struct Vector {
    namespace: Option<&'static str>,
    /// `(custom environment name, tag)` configured in the deployment.
    configured: Option<(&'static str, &'static str)>,
    key_type: KeyType,
    environment: &'static str,
    key: &'static str,
    lookup: &'static str,
    digest: &'static str,
}

const VECTORS: &[Vector] = &[
    Vector {
        namespace: None,
        configured: None,
        key_type: KeyType::Secret,
        environment: "production",
        key: "sk_prod_vh1VBPiH33vyYCBErUn2aiIsI1EUmaMhZIjcYZl1ErhwE3cb63tvLH0",
        lookup: "vh1VBPiH33vyYCBE",
        digest: "6b6b415d24e3f5080a4557fe706dd7be237127e758200731ea10286b51e5f600",
    },
    Vector {
        namespace: None,
        configured: None,
        key_type: KeyType::Publishable,
        environment: "test",
        key: "pk_test_vh1VBPiH33vyYCBErUn2aiIsI1EUmaMhZIjcYZl1ErhwE3cb61nIq21",
        lookup: "vh1VBPiH33vyYCBE",
        digest: "1b8fbeb6766f8db3bfe704772cc87931494d283304f2029d7dbbc38ed7a0b2d1",
    },
    // An unconfigured custom environment: its tag is its name.
    Vector {
        namespace: None,
        configured: None,
        key_type: KeyType::Restricted,
        environment: "sandbox",
        key: "rk_sandbox_vh1VBPiH33vyYCBErUn2aiIsI1EUmaMhZIjcYZl1ErhwE3cb619gfym",
        lookup: "vh1VBPiH33vyYCBE",
        digest: "f561a8b0864cf41b1f999fb5712d0514f9e7aca0a2546e2c7aa54674ab1a115d",
    },
    // A namespace: covered by the checksum, not by the digest (same digest as the first vector).
    Vector {
        namespace: Some("acme"),
        configured: None,
        key_type: KeyType::Secret,
        environment: "production",
        key: "acme_sk_prod_vh1VBPiH33vyYCBErUn2aiIsI1EUmaMhZIjcYZl1ErhwE3cb61OvfES",
        lookup: "vh1VBPiH33vyYCBE",
        digest: "6b6b415d24e3f5080a4557fe706dd7be237127e758200731ea10286b51e5f600",
    },
    // A configured custom tag: `staging` → `stg`.
    Vector {
        namespace: None,
        configured: Some(("staging", "stg")),
        key_type: KeyType::Restricted,
        environment: "staging",
        key: "rk_stg_vh1VBPiH33vyYCBErUn2aiIsI1EUmaMhZIjcYZl1ErhwE3cb62vV4Mr",
        lookup: "vh1VBPiH33vyYCBE",
        digest: "1a1d36c72bf1fb7b6e650bf538926531104188193ea6d1ffb0183f9c55285654",
    },
];

fn format_of(v: &Vector) -> KeyFormat {
    let mut envs = Environments::default();
    if let Some((name, tag)) = v.configured {
        envs.insert(name, tag).unwrap();
    }
    KeyFormat::new(v.namespace, envs).unwrap()
}

#[test]
fn key_vectors() {
    let pepper = Pepper::from_bytes(PEPPER);
    for v in VECTORS {
        let format = format_of(v);
        let env: Environment = v.environment.parse().unwrap();
        let mut rng = ChaCha20Rng::from_seed(SEED);
        let g = format
            .generate_with(&mut rng, v.key_type, &env, &pepper)
            .unwrap();
        assert_eq!(g.key.expose_secret(), v.key);
        assert_eq!(g.lookup.as_str(), v.lookup);
        assert_eq!(hex(g.digest.as_bytes()), v.digest, "{}", v.key);

        // The frozen strings are also valid under an independent reading of the spec.
        let parsed = format.parse(v.key).unwrap();
        assert_eq!(parsed.key_type(), v.key_type);
        assert_eq!(parsed.namespace(), v.namespace);
        assert_eq!(
            format.environments().environment_of_tag(parsed.env_tag()),
            Some(env)
        );
        let (covered, sum) = v.key.split_at(v.key.len() - CHECKSUM_LEN);
        assert_eq!(sum, reference_checksum(covered.as_bytes()));
        let ns_len = v.namespace.map_or(0, |ns| ns.len() + 1);
        let digest_input = &covered.as_bytes()[ns_len..];
        assert_eq!(parsed.digest_input(), digest_input);
        assert_eq!(
            hex(blake3::keyed_hash(&PEPPER, digest_input).as_bytes()),
            v.digest
        );
    }
}

/// The generator's stream continues across keys: a second key from the same generator, then
/// a credential id.
#[test]
fn sequence_vector() {
    let pepper = Pepper::from_bytes(PEPPER);
    let format = KeyFormat::default();
    let mut rng = ChaCha20Rng::from_seed(SEED);
    let first = format
        .generate_with(&mut rng, KeyType::Secret, &Environment::Production, &pepper)
        .unwrap();
    let second = format
        .generate_with(&mut rng, KeyType::Secret, &Environment::Production, &pepper)
        .unwrap();
    let id = CredentialId::random_with(&mut rng);
    assert_eq!(first.key.expose_secret(), VECTORS[0].key);
    assert_eq!(
        second.key.expose_secret(),
        "sk_prod_Oy4nnigNJZUZp5GdrvxdnTUoIgrtUq88lNqyVX5QacE0yVayW4Z2z7O"
    );
    assert_eq!(
        hex(second.digest.as_bytes()),
        "39a200ce1141499558f3f12261c21cde8f9f4de5a2cc55135109c020b8effa6c"
    );
    assert_eq!(id.as_str(), "key_4ujYhCMRkhErfIqxYZ3s9m4xv");
}

#[test]
fn credential_id_vector() {
    let id = CredentialId::random_with(&mut ChaCha20Rng::from_seed(SEED));
    assert_eq!(id.as_str(), "key_vh1VBPiH33vyYCBErUn2aiIsI");
    assert_eq!(id.as_str().parse::<CredentialId>().unwrap(), id);
}

#[test]
fn default_pepper_vectors() {
    // blake3::derive_key("keyward 2026-11 default pepper v1", namespace or "").
    let none = "1e353e39f9dc49ac865489a53aca6bd82dee51198fccee0a79f635a196f31be6";
    let acme = "b7991b1079b866204d0dcc9e35fb97ce87cea8d799254becf8eb29c8601d2756";
    assert_eq!(
        hex(&blake3::derive_key(
            "keyward 2026-11 default pepper v1",
            b""
        )),
        none
    );
    assert_eq!(
        hex(&blake3::derive_key(
            "keyward 2026-11 default pepper v1",
            b"acme"
        )),
        acme
    );
    // Pepper does not reveal its bytes; pin them through the digest it computes.
    let input = parse_any(VECTORS[0].key).unwrap().digest_input();
    for (namespace, bytes, digest) in [
        (
            None,
            none,
            "98807ce43d63fbbad91707dd4a2e5a91ef1ce3cd6fd57668fd2bdfce1ec112b6",
        ),
        (
            Some("acme"),
            acme,
            "65ca6e0c8298de7aad0f5f66089e02ae0ec2a017b24438aa3cb3bfede76af110",
        ),
    ] {
        let default = Pepper::default_for(namespace);
        assert_eq!(hex(default.digest(input).as_bytes()), digest);
        assert_eq!(
            default.digest(input),
            Pepper::from_hex(bytes).unwrap().digest(input)
        );
    }
    // An empty namespace derives the same default as none.
    assert_eq!(
        Pepper::default_for(Some("")).digest(input),
        Pepper::default_for(None).digest(input)
    );
}
