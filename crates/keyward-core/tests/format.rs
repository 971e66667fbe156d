//! The key format: generate → render → parse round trips, mutation detection, parser
//! robustness, every `FormatError` reason, environment tags and the scanner regex.
#![allow(clippy::unwrap_used)]

mod common;

use common::{KEY_CHARS, format_and_env, key_type, reference_checksum};
use keyward_core::{
    CHECKSUM_LEN, Environment, Environments, FormatError, KeyFormat, KeyType, LOOKUP_LEN,
    MAX_KEY_LEN, ModelError, Pepper, SCANNER_REGEX, SECRET_LEN, checksum, parse_any,
};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const BODY_LEN: usize = LOOKUP_LEN + SECRET_LEN + CHECKSUM_LEN;

fn pepper() -> Pepper {
    Pepper::from_bytes([0x5a; 32])
}

/// A valid key for `format`, from a seeded generator.
fn key_for(format: &KeyFormat, key_type: KeyType, env: &Environment, seed: [u8; 32]) -> String {
    let mut rng = ChaCha20Rng::from_seed(seed);
    format
        .generate_with(&mut rng, key_type, env, &pepper())
        .unwrap()
        .key
        .expose_secret()
        .to_owned()
}

/// A key with a correct checksum over an arbitrary `head` and a fixed body (for testing the
/// structural checks that come before the checksum).
fn with_checksum(head: &str) -> String {
    let mut s = format!("{head}_{}", "A".repeat(LOOKUP_LEN + SECRET_LEN));
    let sum = checksum(s.as_bytes());
    s.push_str(core::str::from_utf8(&sum).unwrap());
    s
}

/// The scanner regex, compiled once (compiling it per case dominates a debug test run).
fn scanner() -> &'static regex::Regex {
    static SCANNER: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(SCANNER_REGEX).unwrap());
    &SCANNER
}

proptest! {
    /// Every type × environment (production, test, custom, configured custom tag) × namespace
    /// (none, some) generates a key that parses back to the same parts, digest and lookup.
    #[test]
    fn generate_render_parse_round_trip(
        (format, env) in format_and_env(),
        key_type in key_type(),
        seed in any::<[u8; 32]>(),
    ) {
        let pepper = pepper();
        let mut rng = ChaCha20Rng::from_seed(seed);
        let envs = format.environments();
        let generated = match format.generate_with(&mut rng, key_type, &env, &pepper) {
            Ok(g) => g,
            Err(e) => {
                // The only refusal: an unconfigured custom environment whose own name is
                // configured as another environment's tag, so it has no tag of its own.
                prop_assert_eq!(e, ModelError::InvalidEnvironment);
                let other = envs.environment_of_tag(env.as_str());
                prop_assert!(other.is_some() && other.as_ref() != Some(&env));
                return Ok(());
            }
        };
        let key = generated.key.expose_secret();
        let tag = envs.tag_of(&env).unwrap();
        let prefix = format.prefix(key_type, &env).unwrap();
        prop_assert_eq!(
            &prefix,
            &match format.namespace() {
                Some(ns) => format!("{ns}_{}_{tag}_", key_type.prefix()),
                None => format!("{}_{tag}_", key_type.prefix()),
            }
        );
        prop_assert!(key.starts_with(&prefix));
        prop_assert_eq!(key.len(), prefix.len() + BODY_LEN);
        prop_assert!(key.len() <= MAX_KEY_LEN);
        prop_assert!(key[prefix.len()..].bytes().all(|b| b.is_ascii_alphanumeric()));

        // The checksum is CRC-32/IEEE in base62 over every byte before it, namespace included.
        let (covered, sum) = key.split_at(key.len() - CHECKSUM_LEN);
        prop_assert_eq!(sum, reference_checksum(covered.as_bytes()));

        let parsed = format.parse(key).unwrap();
        prop_assert_eq!(parse_any(key).unwrap(), parsed);
        prop_assert_eq!(parsed.key_type(), key_type);
        prop_assert_eq!(parsed.namespace(), format.namespace());
        prop_assert_eq!(parsed.env_tag(), tag);
        prop_assert_eq!(envs.environment_of_tag(parsed.env_tag()), Some(env.clone()));
        prop_assert_eq!(parsed.lookup(), generated.lookup);
        let lookup = parsed.lookup();
        prop_assert_eq!(lookup.as_str(), &key[prefix.len()..prefix.len() + LOOKUP_LEN]);
        // The digest input is everything after the namespace and before the checksum.
        let ns_len = format.namespace().map_or(0, |ns| ns.len() + 1);
        prop_assert_eq!(parsed.digest_input(), &key.as_bytes()[ns_len..key.len() - CHECKSUM_LEN]);
        prop_assert_eq!(pepper.digest(parsed.digest_input()), generated.digest);
        let independent = blake3::keyed_hash(&[0x5a; 32], parsed.digest_input());
        prop_assert_eq!(independent.as_bytes(), generated.digest.as_bytes());

        // The scanner regex finds exactly the key, also inside surrounding text.
        let text = format!("export KEY=\"{key}\" # rotate monthly");
        let m = scanner().find(&text).unwrap();
        prop_assert_eq!(m.as_str(), key);

        // Another deployment's namespace refuses it.
        let other_ns = match format.namespace() {
            Some(_) => None,
            None => Some("other"),
        };
        let other = KeyFormat::new(other_ns, envs.clone()).unwrap();
        prop_assert_eq!(other.parse(key).unwrap_err(), FormatError::WrongNamespace);
    }

    /// The thread-local generator produces keys of the same shape, and two are never equal.
    #[test]
    fn os_generated_keys_parse((format, env) in format_and_env(), key_type in key_type()) {
        let pepper = pepper();
        let (Ok(a), Ok(b)) = (
            format.generate(key_type, &env, &pepper),
            format.generate(key_type, &env, &pepper),
        ) else {
            return Ok(());
        };
        prop_assert_ne!(a.key.expose_secret(), b.key.expose_secret());
        prop_assert_ne!(a.lookup, b.lookup);
        prop_assert_ne!(a.digest, b.digest);
        for g in [a, b] {
            let parsed = format.parse(g.key.expose_secret()).unwrap();
            prop_assert_eq!(parsed.lookup(), g.lookup);
            prop_assert_eq!(pepper.digest(parsed.digest_input()), g.digest);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Every single-character substitution (with a character of `[A-Za-z0-9_]`), deletion, and
    /// transposition of two adjacent different characters of a valid key is refused, by the
    /// checksum or by the parser, both by the deployment's parser and by `parse_any`.
    #[test]
    fn every_single_edit_is_refused(
        (format, env) in format_and_env(),
        key_type in key_type(),
        seed in any::<[u8; 32]>(),
    ) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let Ok(generated) = format.generate_with(&mut rng, key_type, &env, &pepper()) else {
            return Ok(());
        };
        let key = generated.key.expose_secret().as_bytes();
        let refused = |candidate: &[u8], what: &str, at: usize| -> Result<(), TestCaseError> {
            let s = core::str::from_utf8(candidate).unwrap();
            prop_assert!(format.parse(s).is_err(), "{} at {} accepted: {}", what, at, s);
            prop_assert!(parse_any(s).is_err(), "{} at {} accepted by parse_any: {}", what, at, s);
            Ok(())
        };
        for i in 0..key.len() {
            for &c in KEY_CHARS {
                if c != key[i] {
                    let mut m = key.to_vec();
                    m[i] = c;
                    refused(&m, "substitution", i)?;
                }
            }
            let mut m = key.to_vec();
            m.remove(i);
            refused(&m, "deletion", i)?;
            if i + 1 < key.len() && key[i] != key[i + 1] {
                let mut m = key.to_vec();
                m.swap(i, i + 1);
                refused(&m, "transposition", i)?;
            }
        }
    }
}

/// Key-like fragments that arbitrary inputs are assembled from.
fn key_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("_".to_owned()),
        Just("sk".to_owned()),
        Just("pk".to_owned()),
        Just("rk".to_owned()),
        Just("prod".to_owned()),
        Just("test".to_owned()),
        Just("production".to_owned()),
        Just("acme".to_owned()),
        "[A-Za-z0-9]{55}",
        "[A-Za-z0-9]{0,60}",
        "[a-z0-9_]{0,20}",
        Just("é".to_owned()),
        Just("\u{0}".to_owned()),
        Just("💥".to_owned()),
        ".{0,8}",
    ]
}

fn key_like() -> impl Strategy<Value = String> {
    prop::collection::vec(key_piece(), 0..10).prop_map(|v| v.concat())
}

/// Any string: arbitrary Unicode, key-like assemblies, and huge ones.
fn any_input() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        key_like(),
        // A valid key's structure with a valid checksum but arbitrary parts.
        ("[a-z0-9_]{0,40}").prop_map(|h| with_checksum(&h)),
        (".{0,4}", 0..5_000usize).prop_map(|(s, n)| s.repeat(n)),
        Just("k".repeat(1 << 20)),
    ]
}

proptest! {
    /// `parse_any` and `KeyFormat::parse` never panic, and whatever they accept is
    /// self-consistent.
    #[test]
    fn parsers_never_panic(input in any_input(), ns in prop::option::of("[a-z]{1,4}")) {
        let any = parse_any(&input);
        let format = KeyFormat::new(ns.as_deref(), Environments::default()).unwrap();
        let parsed = format.parse(&input);
        if let Ok(p) = &parsed {
            prop_assert_eq!(any, Ok(*p));
        }
        if let Ok(p) = any {
            prop_assert!(input.len() <= MAX_KEY_LEN);
            let (covered, sum) = input.split_at(input.len() - CHECKSUM_LEN);
            prop_assert_eq!(sum, reference_checksum(covered.as_bytes()));
            prop_assert!(covered.as_bytes().ends_with(p.digest_input()));
            prop_assert!(p.digest_input().starts_with(p.key_type().prefix().as_bytes()));
            prop_assert_eq!(
                p.redacted(),
                format!("{}…", &input[..input.len() - BODY_LEN + 4])
            );
            let _ = (p.namespace(), p.env_tag(), p.lookup(), format!("{p:?}"));
        }
    }

    /// Whatever the other text parsers get, they answer without panicking.
    #[test]
    fn environment_and_key_type_parsers_never_panic(input in any_input()) {
        if let Ok(env) = input.parse::<Environment>() {
            prop_assert_eq!(env.as_str().parse::<Environment>().unwrap(), env.clone());
            prop_assert!(env.as_str().len() <= 16);
        }
        let _ = input.parse::<KeyType>();
        let _ = Environments::default().environment_of_tag(&input);
        let _ = Environments::default().is_known_tag(&input);
        let _ = Pepper::from_hex(&input);
    }
}

#[test]
fn every_format_error_reason() {
    let body = "A".repeat(BODY_LEN);
    let valid = key_for(
        &KeyFormat::default(),
        KeyType::Secret,
        &Environment::Production,
        [1; 32],
    );
    let cases: Vec<(String, FormatError)> = vec![
        (String::new(), FormatError::Empty),
        ("a".repeat(MAX_KEY_LEN + 1), FormatError::TooLong),
        (format!("sk-prod-{body}"), FormatError::InvalidCharacter),
        (
            format!("sk_prod_{}é", &body[1..]),
            FormatError::InvalidCharacter,
        ),
        (
            format!("sk_prod_{} ", &body[1..]),
            FormatError::InvalidCharacter,
        ),
        ("a".repeat(BODY_LEN), FormatError::BadStructure),
        (format!("_{body}"), FormatError::BadStructure),
        (format!("sk_{body}"), FormatError::BadStructure),
        (format!("sk__{body}"), FormatError::BadStructure),
        (format!("_prod_{body}"), FormatError::BadStructure),
        (format!("a__sk_prod_{body}"), FormatError::BadStructure),
        (format!("a_b_sk_prod_{body}"), FormatError::BadStructure),
        ("sk_prod_oops".to_owned(), FormatError::BadBodyLength),
        (format!("sk_prod_{body}A"), FormatError::BadBodyLength),
        (
            format!("sk_prod_{}", &body[1..]),
            FormatError::BadBodyLength,
        ),
        (format!("xk_prod_{body}"), FormatError::UnknownType),
        (format!("SK_prod_{body}"), FormatError::UnknownType),
        (format!("acme_prod_{body}"), FormatError::UnknownType),
        (format!("sk_PROD_{body}"), FormatError::UnknownEnvironment),
        (
            format!("sk_{}_{body}", "a".repeat(17)),
            FormatError::UnknownEnvironment,
        ),
        (format!("ACME_sk_prod_{body}"), FormatError::WrongNamespace),
        (
            format!("{}_sk_prod_{body}", "a".repeat(17)),
            FormatError::WrongNamespace,
        ),
        (format!("sk_prod_{body}"), FormatError::BadChecksum),
        // Six base62 digits above u32::MAX can never be a CRC-32.
        (
            format!("sk_prod_{}zzzzzz", &body[..BODY_LEN - 6]),
            FormatError::BadChecksum,
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(parse_any(&input).unwrap_err(), expected, "{input:?}");
        assert_eq!(
            KeyFormat::default().parse(&input).unwrap_err(),
            expected,
            "{input:?}"
        );
    }
    assert!(parse_any(&valid).is_ok());

    // The deployment's parser adds the namespace and environment checks.
    let acme = KeyFormat::new(Some("acme"), Environments::default()).unwrap();
    assert_eq!(acme.parse(&valid).unwrap_err(), FormatError::WrongNamespace);
    let acme_key = key_for(&acme, KeyType::Secret, &Environment::Production, [2; 32]);
    assert_eq!(
        KeyFormat::default().parse(&acme_key).unwrap_err(),
        FormatError::WrongNamespace
    );
    let other = KeyFormat::new(Some("other"), Environments::default()).unwrap();
    assert_eq!(
        other.parse(&acme_key).unwrap_err(),
        FormatError::WrongNamespace
    );

    // A configured environment is known by its tag only.
    let mut envs = Environments::default();
    envs.insert("staging", "stg").unwrap();
    let configured = KeyFormat::new(None, envs).unwrap();
    let staging: Environment = "staging".parse().unwrap();
    let unconfigured_key = key_for(&KeyFormat::default(), KeyType::Secret, &staging, [3; 32]);
    assert!(unconfigured_key.starts_with("sk_staging_"));
    assert_eq!(
        configured.parse(&unconfigured_key).unwrap_err(),
        FormatError::UnknownEnvironment
    );
    let tagged = key_for(&configured, KeyType::Secret, &staging, [3; 32]);
    assert!(tagged.starts_with("sk_stg_"));
    assert!(configured.parse(&tagged).is_ok());
    // `production` is not a tag: `prod` is.
    assert_eq!(
        parse_any(&with_checksum("sk_production")).map(|p| p.env_tag()),
        Ok("production")
    );
    assert_eq!(
        KeyFormat::default()
            .parse(&with_checksum("sk_production"))
            .unwrap_err(),
        FormatError::UnknownEnvironment
    );
}

#[test]
fn structure_is_checked_before_the_checksum() {
    // With a correct checksum, every structural reason still wins.
    assert_eq!(
        parse_any(&with_checksum("xk_prod")).unwrap_err(),
        FormatError::UnknownType
    );
    assert_eq!(
        parse_any(&with_checksum("sk_Prod")).unwrap_err(),
        FormatError::UnknownEnvironment
    );
    assert_eq!(
        parse_any(&with_checksum("Acme_sk_prod")).unwrap_err(),
        FormatError::WrongNamespace
    );
    assert_eq!(
        parse_any(&with_checksum("sk")).unwrap_err(),
        FormatError::BadStructure
    );
    let key = with_checksum("acme_rk_test");
    let ok = parse_any(&key).unwrap();
    assert_eq!(ok.namespace(), Some("acme"));
    assert_eq!(ok.key_type(), KeyType::Restricted);
    assert_eq!(ok.env_tag(), "test");
}

#[test]
fn a_namespace_that_looks_like_a_type_or_tag_parses_unambiguously() {
    for ns in ["sk", "pk", "rk", "prod", "test", "key"] {
        let format = KeyFormat::new(Some(ns), Environments::default()).unwrap();
        for key_type in KeyType::ALL {
            let key = key_for(&format, key_type, &Environment::Test, [9; 32]);
            let parsed = format.parse(&key).unwrap();
            assert_eq!(parsed.namespace(), Some(ns));
            assert_eq!(parsed.key_type(), key_type);
            assert_eq!(parsed.env_tag(), "test");
            assert_eq!(
                KeyFormat::default().parse(&key).unwrap_err(),
                FormatError::WrongNamespace
            );
        }
    }
}

#[test]
fn invalid_namespaces_are_refused() {
    for ns in ["", "Acme", "ac_me", "ac-me", "é", &"a".repeat(17)] {
        assert_eq!(
            KeyFormat::new(Some(ns), Environments::default()).unwrap_err(),
            ModelError::InvalidNamespace,
            "{ns:?}"
        );
    }
    assert!(KeyFormat::new(Some(&"a".repeat(16)), Environments::default()).is_ok());
}

#[test]
fn environment_tag_configuration() {
    let mut envs = Environments::default();
    envs.insert("staging", "stg").unwrap();
    // Re-mapping the same name is allowed and frees the old tag.
    envs.insert("staging", "stage").unwrap();
    let staging: Environment = "staging".parse().unwrap();
    assert_eq!(envs.tag_of(&staging).unwrap(), "stage");
    assert_eq!(envs.environment_of_tag("stg"), Some("stg".parse().unwrap()));
    assert_eq!(envs.environment_of_tag("stage"), Some(staging.clone()));
    // The configured environment's own name is no longer a tag.
    assert!(!envs.is_known_tag("staging"));
    assert_eq!(envs.environment_of_tag("staging"), None);

    for (name, tag) in [
        ("production", "live"), // a built-in environment
        ("test", "t"),
        ("qa", "prod"), // built-in tags
        ("qa", "test"),
        ("qa", "production"), // the built-in environment's name
        ("qa", "Q"),          // invalid tags
        ("qa", ""),
        ("qa", "q_a"),
        ("qa", &"q".repeat(17)),
        ("qa", "stage"), // already staging's
    ] {
        assert_eq!(
            envs.insert(name, tag).unwrap_err(),
            ModelError::InvalidEnvironmentTag,
            "{name} -> {tag}"
        );
    }
    // A name that is not an environment name is refused as such.
    for name in ["prod", "Staging", "", "a b"] {
        assert_eq!(
            envs.insert(name, "x").unwrap_err(),
            ModelError::InvalidEnvironment,
            "{name:?}"
        );
    }
    assert_eq!(envs.tag_of(&staging).unwrap(), "stage");

    // An unconfigured custom environment whose name is a configured tag has no tag.
    let stage: Environment = "stage".parse().unwrap();
    assert_eq!(
        envs.tag_of(&stage).unwrap_err(),
        ModelError::InvalidEnvironment
    );
}

#[test]
fn directly_built_custom_environments_cannot_impersonate_built_ins() {
    let envs = Environments::default();
    for name in ["test", "prod", "production", "", "Bad", "with space"] {
        assert_eq!(
            envs.tag_of(&Environment::Custom(name.to_owned()))
                .unwrap_err(),
            ModelError::InvalidEnvironment,
            "{name:?}"
        );
        assert!(
            KeyFormat::default()
                .generate(
                    KeyType::Secret,
                    &Environment::Custom(name.to_owned()),
                    &pepper()
                )
                .is_err()
        );
    }
}

proptest! {
    /// Tags and environments correspond one to one under any configuration: a known tag names
    /// an environment whose tag is that tag, and an environment's tag names it back.
    #[test]
    fn tags_and_environments_are_a_bijection(
        (envs, _) in common::environments(),
        tag in prop_oneof![common::tag(), Just("production".to_owned()), Just("prod".to_owned())],
        env in common::environment(),
    ) {
        match envs.environment_of_tag(&tag) {
            Some(e) => {
                prop_assert!(envs.is_known_tag(&tag));
                prop_assert_eq!(envs.tag_of(&e).unwrap(), tag.as_str());
            }
            None => prop_assert!(!envs.is_known_tag(&tag)),
        }
        if let Ok(t) = envs.tag_of(&env) {
            prop_assert!(envs.is_known_tag(t));
            prop_assert_eq!(envs.environment_of_tag(t), Some(env.clone()));
        }
    }

    /// The configuration survives a serde round trip, and what it deserialises is validated.
    #[test]
    fn environments_serde_round_trip((envs, _) in common::environments()) {
        let json = serde_json::to_string(&envs).unwrap();
        let back: Environments = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, envs);
    }
}

#[test]
fn environments_deserialisation_is_validated() {
    let ok: Environments = serde_json::from_str(r#"{"staging":"stg"}"#).unwrap();
    assert_eq!(ok.tag_of(&"staging".parse().unwrap()).unwrap(), "stg");
    for bad in [
        r#"{"staging":"stg","qa":"stg"}"#,
        r#"{"staging":"prod"}"#,
        r#"{"staging":"production"}"#,
        r#"{"production":"live"}"#,
        r#"{"staging":"STG"}"#,
    ] {
        assert!(serde_json::from_str::<Environments>(bad).is_err(), "{bad}");
    }
}

#[test]
fn scanner_regex_matches_keys_and_their_confirmation_is_offline() {
    let re = scanner();
    let acme = KeyFormat::new(Some("acme"), Environments::default()).unwrap();
    let plain = key_for(
        &KeyFormat::default(),
        KeyType::Secret,
        &Environment::Production,
        [4; 32],
    );
    let namespaced = key_for(&acme, KeyType::Publishable, &Environment::Test, [5; 32]);
    let text = format!("a={plain}\nb='{namespaced}', c=sk_prod_short, d=x{plain}");
    let found: Vec<&str> = re.find_iter(&text).map(|m| m.as_str()).collect();
    // The key glued to a word character (`x…`) is not a match: `\b` requires a boundary.
    assert_eq!(found, vec![plain.as_str(), namespaced.as_str()]);
    for m in found {
        assert!(parse_any(m).is_ok());
    }
    // `_` is a word character, so a word glued on with `_` reads as a namespace: the full
    // match fails the checksum, and the scanner retries from the type prefix (see
    // docs/key-format.md).
    let glued = format!("token_{plain}");
    let m = re.find(&glued).unwrap().as_str();
    assert_eq!(m, glued);
    assert_eq!(parse_any(m).unwrap_err(), FormatError::BadChecksum);
    let retry = &m[m.find('_').unwrap() + 1..];
    assert_eq!(retry, plain);
    assert!(parse_any(retry).is_ok());
    // Documented limitation of `\b`: glued after `WORD_` that cannot be a namespace, or
    // followed by `_`, a key is not matched at all.
    assert!(!re.is_match(&format!("MY_TOKEN_{plain}")));
    assert!(!re.is_match(&format!("{plain}_old")));
    // A forged key with the right shape matches the regex but fails the offline check.
    let forged = format!("sk_prod_{}", "A".repeat(BODY_LEN));
    assert!(re.is_match(&forged));
    assert_eq!(parse_any(&forged).unwrap_err(), FormatError::BadChecksum);
    // Too long a body, or no separator, is no match.
    assert!(!re.is_match(&format!("sk_prod_{}", "A".repeat(BODY_LEN + 1))));
    assert!(!re.is_match(&format!("skprod{}", "A".repeat(BODY_LEN))));
}

#[test]
fn checksum_is_crc32_ieee_in_base62() {
    // CRC-32/IEEE check value of "123456789" is 0xCBF43926.
    assert_eq!(common::crc32_ieee(b"123456789"), 0xCBF4_3926);
    assert_eq!(common::base62_6(0xCBF4_3926), "3jZRME");
    assert_eq!(&checksum(b"123456789"), b"3jZRME");
    assert_eq!(&checksum(b""), b"000000");
    assert_eq!(common::base62_6(u32::MAX), "4gfFC3");
}
