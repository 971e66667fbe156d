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
    // The cause, from the last attempt to connect.
    assert!(message.contains("refused"), "{message}");
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

/// A raw connection to the test database.
fn client(url: &str) -> postgres::Client {
    url.parse::<postgres::Config>()
        .unwrap()
        .connect(postgres::NoTls)
        .unwrap()
}

/// A schema migrated by a newer keyward is refused, not written to.
#[test]
fn newer_schema_version_is_refused() {
    let Some(h) = Pg::new("newer_schema_version_is_refused") else {
        return;
    };
    drop(h.open());
    client(&h.url)
        .execute(
            &format!(
                "INSERT INTO \"{}\".keyward_schema_version (version) VALUES (99)",
                h.schema
            ),
            &[],
        )
        .unwrap();
    let err = PgStore::open(&h.url, &h.schema).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::UnsupportedFormat {
                id: None,
                found: 99,
                ..
            }
        ),
        "{err:?}"
    );
}

/// A statement stuck behind another session's lock gives up at the statement timeout with an
/// error, instead of hanging; the store works again once the lock is gone.
#[test]
fn a_locked_table_times_out_instead_of_hanging() {
    let Some(h) = Pg::new("a_locked_table_times_out_instead_of_hanging") else {
        return;
    };
    drop(h.open());
    let options = PgOptions {
        statement_timeout: Duration::from_millis(300),
        ..PgOptions::default()
    };
    let store = PgStore::open_with(&h.url, &h.schema, &options).unwrap();
    let cred = conformance::credential("acc_lock");
    let mut locker = client(&h.url);
    let mut tx = locker.transaction().unwrap();
    tx.batch_execute(&format!(
        "LOCK TABLE \"{}\".credentials IN ACCESS EXCLUSIVE MODE",
        h.schema
    ))
    .unwrap();
    let err = store.put(&cred).unwrap_err();
    assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
    assert!(err.to_string().contains("timeout"), "{err}");
    assert!(matches!(
        store.get(&cred.id),
        Err(StoreError::Backend { .. })
    ));
    tx.rollback().unwrap();
    conformance::put(&store, &cred);
}

/// Connections the server kills (`pg_terminate_backend`, a restart) are replaced: the store
/// answers again on the next call.
#[test]
fn killed_connections_are_replaced() {
    let Some(h) = Pg::new("killed_connections_are_replaced") else {
        return;
    };
    // A name of our own, so that only this store's connections are terminated.
    let app = h.schema.clone();
    let url = format!("{}?application_name={app}", h.url);
    let url = if h.url.contains('?') {
        format!("{}&application_name={app}", h.url)
    } else {
        url
    };
    let store = PgStore::open(&url, &h.schema).unwrap();
    let cred = conformance::put(&store, &conformance::credential("acc_kill"));
    let killed: i64 = client(&h.url)
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = $1",
            &[&app],
        )
        .unwrap()
        .get(0);
    assert!(killed >= 1, "{killed}");
    assert_eq!(store.get(&cred.id).unwrap().as_ref(), Some(&cred));
    let mut next = cred.clone();
    next.enabled = false;
    conformance::put(&store, &next);
}

/// Two instances each trying, from many threads at once, to create a credential claiming the
/// same lookup tag: exactly one succeeds, every other is `DuplicateLookup`, and the tag finds
/// the winner.
#[test]
fn a_tag_claimed_at_once_from_two_instances_has_one_owner() {
    let Some(mut h) = Pg::new("a_tag_claimed_at_once_from_two_instances_has_one_owner") else {
        return;
    };
    let stores = [h.fresh(), h.open()];
    let template = conformance::credential("acc_claim");
    let tag = template.secrets[0].lookup;
    let barrier = Barrier::new(8);
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (stores, barrier) = (&stores, &barrier);
                let mut cred = conformance::credential("acc_claim");
                cred.secrets[0].lookup = tag;
                s.spawn(move || {
                    barrier.wait();
                    stores[i % 2].put(&cred).map(|_| cred.id)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for r in &results {
        if let Err(e) = r {
            assert!(matches!(e, StoreError::DuplicateLookup { .. }), "{e:?}");
        }
    }
    let found = stores[1].find_by_lookup(&tag).unwrap().unwrap();
    assert_eq!(&found.id, winners[0]);
    assert_eq!(
        stores[0].list(&ListQuery::default()).unwrap().items.len(),
        1
    );
}
