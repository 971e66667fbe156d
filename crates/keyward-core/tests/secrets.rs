//! Secret-bearing types: nothing secret in `Debug`/`Display`, digest equality, pepper input.
#![allow(clippy::unwrap_used)]

mod common;

use keyward_core::{
    CHECKSUM_LEN, Digest, Environment, Environments, FormatError, KeyFormat, KeyType, LOOKUP_LEN,
    Pepper, SECRET_LEN, parse_any,
};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// Every window of `n` characters of `secret`.
fn windows(secret: &str, n: usize) -> impl Iterator<Item = &str> {
    (0..=secret.len() - n).map(move |i| &secret[i..i + n])
}

proptest! {
    /// `Debug` and `Display` of a plaintext key (and of what holds it) show the prefix and the
    /// first four lookup characters, and no 6-character run of the secret or the checksum.
    #[test]
    fn plaintext_key_never_prints_the_secret(
        (format, env) in common::format_and_env(),
        key_type in common::key_type(),
        seed in any::<[u8; 32]>(),
    ) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let Ok(g) = format.generate_with(&mut rng, key_type, &env, &Pepper::from_bytes([1; 32]))
        else {
            return Ok(());
        };
        let key = g.key.expose_secret();
        let prefix = format.prefix(key_type, &env).unwrap();
        let lookup_at = prefix.len();
        let after_shown = &key[lookup_at + 4..];
        let expected = format!("{prefix}{}…", &key[lookup_at..lookup_at + 4]);
        prop_assert_eq!(g.key.to_string(), expected.clone());
        prop_assert_eq!(g.key.redacted(), expected.clone());
        prop_assert_eq!(format!("{:?}", g.key), format!("PlaintextKey({expected})"));
        let parsed = parse_any(key).unwrap();
        prop_assert_eq!(parsed.redacted(), expected);
        for shown in [
            g.key.to_string(),
            format!("{:?}", g.key),
            format!("{:#?}", g.key),
            format!("{parsed:?}"),
        ] {
            for w in windows(after_shown, 6) {
                prop_assert!(!shown.contains(w), "{} shows {}", shown, w);
            }
        }
        // `Generated` also shows the (public) lookup tag, but nothing after it.
        let secret_and_checksum = &key[lookup_at + LOOKUP_LEN..];
        prop_assert_eq!(secret_and_checksum.len(), SECRET_LEN + CHECKSUM_LEN);
        let generated_debug = format!("{g:?}");
        prop_assert!(generated_debug.contains(g.lookup.as_str()));
        for w in windows(secret_and_checksum, 6) {
            prop_assert!(!generated_debug.contains(w), "{} shows {}", generated_debug, w);
        }
    }
}

#[test]
fn pepper_is_never_printed() {
    let pepper = Pepper::from_bytes([0xab; 32]);
    let debug = format!("{pepper:?}");
    assert_eq!(debug, "Pepper(<redacted>)");
    assert_eq!(format!("{pepper:#?}"), "Pepper(<redacted>)");
    assert!(!debug.contains("ab") && !debug.contains("171"));
    let hexed = Pepper::from_hex(&"ab".repeat(32)).unwrap();
    assert_eq!(format!("{hexed:?}"), "Pepper(<redacted>)");
    assert_eq!(
        format!("{:?}", Pepper::default_for(None)),
        "Pepper(<redacted>)"
    );
}

#[test]
fn pepper_from_hex() {
    let bytes: [u8; 32] = core::array::from_fn(|i| (i as u8).wrapping_mul(37));
    let hex = common::hex(&bytes);
    let from_bytes = Pepper::from_bytes(bytes);
    for text in [hex.clone(), hex.to_uppercase(), format!("  {hex}\n")] {
        let parsed = Pepper::from_hex(&text).unwrap();
        assert_eq!(parsed.digest(b"probe"), from_bytes.digest(b"probe"));
    }
    for bad in [
        String::new(),
        hex[..62].to_owned(),
        format!("{hex}00"),
        format!("{}zz", &hex[..62]),
        format!("{}é", &hex[..62]),
        format!("+{}", &hex[..63]),
        format!("{} {}", &hex[..31], &hex[32..]),
    ] {
        assert!(Pepper::from_hex(&bad).is_none(), "{bad:?}");
    }
}

#[test]
fn digests_depend_on_pepper_and_input() {
    let a = Pepper::from_bytes([1; 32]);
    let b = Pepper::from_bytes([2; 32]);
    assert_eq!(a.digest(b"sk_prod_x"), a.digest(b"sk_prod_x"));
    assert_ne!(a.digest(b"sk_prod_x"), b.digest(b"sk_prod_x"));
    assert_ne!(a.digest(b"sk_prod_x"), a.digest(b"sk_prod_y"));
    // It is blake3 in keyed mode, not a plain hash of the input.
    assert_eq!(
        a.digest(b"sk_prod_x").as_bytes(),
        blake3::keyed_hash(&[1; 32], b"sk_prod_x").as_bytes()
    );
    assert_ne!(
        a.digest(b"sk_prod_x").as_bytes(),
        blake3::hash(b"sk_prod_x").as_bytes()
    );
}

#[test]
fn digest_equality() {
    let x = Digest::from_bytes([7; 32]);
    assert_eq!(x, Digest::from_bytes([7; 32]));
    assert_eq!(x.as_bytes(), &[7; 32]);
    // A difference in any single byte, first to last, makes them unequal.
    for i in 0..32 {
        let mut other = [7u8; 32];
        other[i] ^= 1;
        assert_ne!(x, Digest::from_bytes(other), "byte {i}");
    }
    assert_ne!(Digest::from_bytes([0; 32]), Digest::from_bytes([0xff; 32]));
    assert_eq!(format!("{x:?}"), "Digest(…)");
    let json = serde_json::to_string(&x).unwrap();
    assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), x);
}

#[test]
fn format_errors_never_echo_the_key() {
    let key = KeyFormat::default()
        .generate(
            KeyType::Secret,
            &Environment::Production,
            &Pepper::from_bytes([1; 32]),
        )
        .unwrap();
    let mut forged = key.key.expose_secret().to_owned();
    let last = forged.pop().unwrap();
    forged.push(if last == 'a' { 'b' } else { 'a' });
    let err = parse_any(&forged).unwrap_err();
    assert_eq!(err, FormatError::BadChecksum);
    let acme = KeyFormat::new(Some("acme"), Environments::default()).unwrap();
    let wrong_ns = acme.parse(key.key.expose_secret()).unwrap_err();
    for e in [err, wrong_ns] {
        for text in [e.to_string(), format!("{e:?}")] {
            assert!(!text.contains(&forged[8..20]), "{text}");
            assert!(!text.contains(&key.key.expose_secret()[8..20]), "{text}");
        }
    }
}
