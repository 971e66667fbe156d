//! A library user who gives no pepper gets an explicit error, or the development pepper they
//! opted in to, never a silent public one for a store that persists.
#![allow(clippy::unwrap_used)]

use keyward::core::{Environment, KeyType, Pepper};
use keyward::store::MemoryStore;
use keyward::{Backend, Config, EngineError, Keyward, NewKey, PepperChoice, Principal};

fn development_fingerprint() -> String {
    Pepper::default_for(None).fingerprint()
}

fn issue_and_verify(kw: &Keyward) {
    let issued = kw
        .issue(
            &Principal::LocalOperator,
            NewKey::new(
                "acc_1".parse().unwrap(),
                KeyType::Secret,
                Environment::Test,
                "k".parse().unwrap(),
            ),
        )
        .unwrap();
    assert!(kw.verify(issued.key.expose_secret()).is_ok());
}

#[test]
fn a_custom_store_without_a_pepper_is_refused_with_the_fix_named() {
    let err =
        Keyward::open(Config::new(Backend::Custom(Box::new(MemoryStore::new())))).unwrap_err();
    assert!(matches!(err, EngineError::PepperRequired), "{err:?}");
    let text = err.to_string();
    for fix in [
        "Config::with_pepper",
        "Config::from_data_dir",
        "Config::with_development_pepper()",
    ] {
        assert!(text.contains(fix), "{text}");
    }
}

#[cfg(feature = "redb")]
#[test]
fn a_redb_store_without_a_pepper_is_refused_before_it_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyward.redb");
    let err = Keyward::open(Config::redb(&path)).unwrap_err();
    assert!(matches!(err, EngineError::PepperRequired), "{err:?}");
    assert!(!path.exists());
    // With a pepper it opens, and uses that pepper.
    let pepper = Pepper::from_bytes([9; 32]);
    let fingerprint = pepper.fingerprint();
    let kw = Keyward::open(Config::redb(&path).with_pepper(pepper)).unwrap();
    assert_eq!(kw.pepper_fingerprint(), fingerprint);
    assert_ne!(kw.pepper_fingerprint(), development_fingerprint());
    issue_and_verify(&kw);
}

#[cfg(feature = "sled")]
#[test]
fn a_sled_store_without_a_pepper_is_refused_before_it_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let err = Keyward::open(Config::sled(&path)).unwrap_err();
    assert!(matches!(err, EngineError::PepperRequired), "{err:?}");
    assert!(!path.exists());
}

#[test]
fn the_development_pepper_is_an_explicit_opt_in() {
    let config = Config::new(Backend::Custom(Box::new(MemoryStore::new())));
    assert!(matches!(config.pepper, PepperChoice::Unset));
    let config = config.with_development_pepper();
    assert!(matches!(config.pepper, PepperChoice::Development));
    let kw = Keyward::open(config).unwrap();
    assert_eq!(kw.pepper_fingerprint(), development_fingerprint());
    issue_and_verify(&kw);
    // It follows the namespace, as the documented default always did.
    let kw = Keyward::open(
        Config::new(Backend::Custom(Box::new(MemoryStore::new())))
            .with_namespace("acme")
            .with_development_pepper(),
    )
    .unwrap();
    assert_eq!(
        kw.pepper_fingerprint(),
        Pepper::default_for(Some("acme")).fingerprint()
    );
}

#[test]
fn the_memory_store_defaults_to_the_development_pepper() {
    // Nothing it holds outlives the process.
    let kw = Keyward::open(Config::memory()).unwrap();
    assert_eq!(kw.pepper_fingerprint(), development_fingerprint());
    issue_and_verify(&kw);
    let kw = Keyward::open(Config::memory().with_pepper(Pepper::from_bytes([3; 32]))).unwrap();
    assert_ne!(kw.pepper_fingerprint(), development_fingerprint());
}

#[test]
fn the_configured_pepper_is_never_printed() {
    let config = Config::memory().with_pepper(Pepper::from_bytes([0xab; 32]));
    let shown = format!("{config:?}");
    assert!(shown.contains("Secret"), "{shown}");
    assert!(!shown.to_lowercase().contains("abab"), "{shown}");
    assert!(!shown.contains("171"), "{shown}");
}
