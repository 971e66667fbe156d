//! The engine on PostgreSQL (`Config::postgres_in`), against the database at `KEYWARD_PG_URL`,
//! in a schema of its own: instances on one database share keys, revocations and one audit
//! chain. Without a database the test says loudly that it skipped.
#![allow(clippy::unwrap_used)]

use keyward::audit::HeadCheck;
use keyward::core::{Environment, KeyType, PermissionSet};
use keyward::{Config, EngineError, Keyward, NewKey, Principal};

const OP: &Principal = &Principal::LocalOperator;

/// The database, or `None` having said why the test skips.
#[allow(clippy::print_stderr)]
fn database(test: &str) -> Option<(String, postgres::Client)> {
    let Ok(url) = std::env::var("KEYWARD_PG_URL") else {
        eprintln!("SKIPPED: {test}: no PostgreSQL (set KEYWARD_PG_URL)");
        return None;
    };
    let mut config: postgres::Config = url.parse().ok()?;
    config.connect_timeout(std::time::Duration::from_secs(3));
    match config.connect(postgres::NoTls) {
        Ok(client) => Some((url, client)),
        Err(e) => {
            eprintln!("SKIPPED: {test}: PostgreSQL unreachable: {e} (set KEYWARD_PG_URL)");
            None
        }
    }
}

fn new_key(name: &str) -> NewKey {
    NewKey::new(
        "acc_1".parse().unwrap(),
        KeyType::Secret,
        Environment::Production,
        name.parse().unwrap(),
    )
    .with_permissions(PermissionSet::parse(["x:read"]).unwrap())
}

#[test]
fn instances_on_one_database_share_keys_revocations_and_the_audit_chain() {
    let Some((url, mut client)) = database("postgres_engine") else {
        return;
    };
    let id = keyward::core::random_id().unwrap();
    let schema = format!("kw_test_{}", id.as_str().to_lowercase());
    let config = || Config::postgres_in(&url, &schema).with_development_pepper();

    // A persistent store without a pepper is refused, before anything is created.
    let refused = Keyward::open(Config::postgres_in(&url, &schema));
    assert!(matches!(refused, Err(EngineError::PepperRequired)));

    let a = Keyward::open(config()).unwrap();
    let first = a.issue(OP, new_key("first")).unwrap();
    assert!(a.verify(first.key.expose_secret()).is_ok());

    // B, opened after, warms up from the database.
    let b = Keyward::open(config()).unwrap();
    assert!(b.verify(first.key.expose_secret()).is_ok());
    b.revoke(OP, &first.credential.id).unwrap();
    assert!(b.verify(first.key.expose_secret()).is_err());

    // A writes after B did: its audit tail is stale, it re-reads it and goes on.
    let second = a.issue(OP, new_key("second")).unwrap();

    let c = Keyward::open(config()).unwrap();
    assert!(c.verify(first.key.expose_secret()).is_err());
    assert!(c.verify(second.key.expose_secret()).is_ok());
    let head = c.event_head(OP).unwrap().unwrap();
    assert_eq!(head.seq, 3);
    let report = c.verify_events(OP, Some(head)).unwrap().unwrap();
    assert_eq!(report.events, 3);
    assert_eq!(report.pinned, HeadCheck::Matched);

    drop((a, b, c));
    client
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .unwrap();
}

/// The URL may hold a password: a configuration's `Debug` shows the schema, never the URL.
#[test]
fn the_backend_debug_hides_the_url() {
    let config = Config::postgres_in("postgres://ops:hunter2@db.internal/keys", "kw_main");
    let shown = format!("{:?}", config.backend);
    assert!(shown.contains("kw_main"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.contains("db.internal"), "{shown}");
}
