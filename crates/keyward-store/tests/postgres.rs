//! The PostgreSQL backend against the database at `KEYWARD_PG_URL`, each test in a schema of its
//! own: the conformance suite (on `PgStore` and the indexed store over it), concurrent opens of
//! one fresh schema, and an unreachable database. Without a database each test says loudly that
//! it skipped.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::pg::{IndexedPg, Pg, drop_schema, schema_name, url};
use keyward_store::conformance::{self, Harness};
use keyward_store::{ListQuery, PgOptions, PgStore, Store, StoreError};

mod pg_store {
    use super::*;
    keyward_store::conformance_tests!(match Pg::new("pg conformance") {
        Some(h) => h,
        None => return,
    });
}

mod indexed_pg {
    use super::*;
    keyward_store::conformance_tests!(match IndexedPg::new("indexed pg conformance") {
        Some(h) => h,
        None => return,
    });
}

/// Ten instances opening one fresh schema at once all succeed (the migrations run under an
/// advisory lock, once), and all see one store.
#[test]
fn ten_concurrent_opens_of_a_fresh_schema() {
    let Some(url) = url("ten_concurrent_opens_of_a_fresh_schema") else {
        return;
    };
    let schema = schema_name();
    let barrier = Arc::new(Barrier::new(10));
    let stores: Vec<PgStore> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..10)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                let (url, schema) = (&url, &schema);
                s.spawn(move || {
                    barrier.wait();
                    PgStore::open(url, schema)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect()
    });
    let cred = conformance::put(&stores[3], &conformance::credential("acc_ten"));
    for store in &stores {
        assert!(store.is_shared());
        assert_eq!(store.get(&cred.id).unwrap().as_ref(), Some(&cred));
        assert_eq!(store.list(&ListQuery::default()).unwrap().items.len(), 1);
    }
    // Exactly one row per migration: none was applied twice.
    let mut client = url
        .parse::<postgres::Config>()
        .unwrap()
        .connect(postgres::NoTls)
        .unwrap();
    let rows = client
        .query(
            &format!("SELECT version FROM \"{schema}\".keyward_schema_version ORDER BY version"),
            &[],
        )
        .unwrap();
    let versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(versions, vec![1]);
    drop(stores);
    drop_schema(&url, &schema);
}

/// A database nobody listens for fails with a clear error, well before anything could be
/// called a hang.
#[test]
fn unreachable_database_fails_fast_and_clearly() {
    let options = PgOptions {
        connect_timeout: Duration::from_millis(500),
        checkout_timeout: Duration::from_secs(1),
        ..PgOptions::default()
    };
    let started = Instant::now();
    let err = PgStore::open_with(
        "postgres://postgres:hunter2@127.0.0.1:1/test",
        "keyward",
        &options,
    )
    .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let message = err.to_string();
    assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
    assert!(message.contains("127.0.0.1:1"), "{message}");
    assert!(message.contains("unavailable"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

/// A URL that does not parse or a schema name that could escape its quotes is refused before
/// anything is sent.
#[test]
fn bad_url_and_schema_are_refused() {
    let err = PgStore::open("postgres://[::1", "keyward").unwrap_err();
    assert!(err.to_string().contains("does not parse"), "{err}");
    let err = PgStore::open("postgres://postgres@127.0.0.1:1/test", "a\"; DROP").unwrap_err();
    assert!(err.to_string().contains("schema name"), "{err}");
}

/// A store reopened by a second instance sees the first one's writes and conflicts with it:
/// the revision check holds across instances.
#[test]
fn two_instances_share_one_store() {
    let Some(mut h) = Pg::new("two_instances_share_one_store") else {
        return;
    };
    let a = h.fresh();
    let b = h.open();
    let cred = conformance::put(&a, &conformance::credential("acc_two"));
    assert_eq!(b.get(&cred.id).unwrap().as_ref(), Some(&cred));
    let mut stale = cred.clone();
    stale.revision -= 1;
    assert!(matches!(b.put(&stale), Err(StoreError::Conflict { .. })));
    b.delete(&cred.id, cred.revision).unwrap();
    assert_eq!(a.get(&cred.id).unwrap(), None);
}
