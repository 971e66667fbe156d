//! Damaged stores: truncated, garbled and misplaced records, records and stores of a newer
//! format, missing and dangling index entries. Each is written straight into the sled trees
//! (the store closed), then the store is reopened. Expected: the store opens, the damaged
//! credential fails with an error naming it, every other credential keeps working, and the
//! operator tools (`check_indexes`, `repair_indexes`, `remove_undecodable`) find and fix it.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::Sled;
use keyward_core::{Credential, CredentialId, LookupTag};
use keyward_store::conformance::{self, Harness};
use keyward_store::{
    ACCOUNTS_TREE, FORMAT_VERSION, FORMAT_VERSION_KEY, IndexProblem, IndexedStore, LOOKUP_TREE,
    ListQuery, META_TREE, RECORDS_TREE, SledStore, Store, StoreError,
};

/// A closed store with three credentials of one account (the middle one rotated once).
struct Fixture {
    h: Sled,
    creds: Vec<Credential>,
}

impl Fixture {
    fn new() -> Self {
        let mut h = Sled::default();
        let store = h.fresh();
        let mut creds = Vec::new();
        for i in 0..3 {
            let mut c = conformance::put(&store, &conformance::credential("acc_bad"));
            if i == 1 {
                conformance::rotate(&mut c);
                c = conformance::put(&store, &c);
            }
            creds.push(c);
        }
        drop(store);
        Self { h, creds }
    }

    fn victim(&self) -> &Credential {
        &self.creds[1]
    }

    fn others(&self) -> impl Iterator<Item = &Credential> {
        [&self.creds[0], &self.creds[2]].into_iter()
    }

    /// Changes the raw trees of the closed store.
    fn raw(&self, f: impl FnOnce(&sled::Db)) {
        raw(&self.h.path(), f);
    }

    fn open(&self) -> SledStore {
        SledStore::open(self.h.path()).unwrap()
    }

    /// The other credentials work through the backend and through a leniently opened index.
    fn assert_others_work(&self, store: SledStore) -> SledStore {
        for c in self.others() {
            assert_eq!(store.get(&c.id).unwrap().as_ref(), Some(c));
            assert_eq!(
                store.find_by_lookup(&c.secrets[0].lookup).unwrap().as_ref(),
                Some(c)
            );
        }
        store
    }
}

fn raw(path: &Path, f: impl FnOnce(&sled::Db)) {
    // The store was just dropped; sled's background threads may hold the file lock a moment
    // longer (as `SledStore::open` also allows for).
    let mut attempts = 0;
    let db = loop {
        match sled::open(path) {
            Ok(db) => break db,
            Err(e) if attempts < 40 && e.to_string().contains("could not acquire lock") => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => panic!("opening the sled db directly: {e}"),
        }
    };
    f(&db);
    db.flush().unwrap();
}

fn record_key(id: &CredentialId) -> &[u8] {
    id.as_str().as_bytes()
}

fn set_record(db: &sled::Db, id: &CredentialId, edit: impl FnOnce(&mut Vec<u8>)) {
    let records = db.open_tree(RECORDS_TREE).unwrap();
    let mut bytes = records.get(record_key(id)).unwrap().unwrap().to_vec();
    edit(&mut bytes);
    records.insert(record_key(id), bytes).unwrap();
}

/// The error names the victim.
fn assert_names(e: &StoreError, id: &str) {
    match e {
        StoreError::Corrupt { id: named, .. }
        | StoreError::UnsupportedFormat {
            id: Some(named), ..
        } => assert_eq!(named, id, "{e}"),
        other => panic!("expected an error naming {id}, got {other:?}"),
    }
    assert!(
        e.to_string().contains(id),
        "message does not name {id}: {e}"
    );
}

/// The full set of expectations for an undecodable victim record.
fn assert_undecodable_victim(fx: &Fixture, expect: impl Fn(&StoreError)) {
    let victim = fx.victim().clone();
    let vid = victim.id.as_str();
    let store = fx.assert_others_work(fx.open());

    // Reads of the victim name it.
    let e = store.get(&victim.id).unwrap_err();
    assert_names(&e, vid);
    expect(&e);
    for tag in conformance::tags(&victim) {
        assert_names(&store.find_by_lookup(&tag).unwrap_err(), vid);
    }
    // A write over it is refused (its revision cannot be read), naming it.
    assert_names(&store.put(&victim).unwrap_err(), vid);
    assert_names(&store.delete(&victim.id, victim.revision).unwrap_err(), vid);
    // Listing the account reports it rather than silently leaving it out.
    let q = ListQuery {
        account: Some(victim.account.clone()),
        ..ListQuery::default()
    };
    assert_names(&store.list(&q).unwrap_err(), vid);
    // Scan passes it as an error and goes on.
    let (mut ok, mut errs) = (Vec::new(), Vec::new());
    store
        .scan(&mut |r| match r {
            Ok(c) => ok.push(c),
            Err(e) => errs.push(e),
        })
        .unwrap();
    assert_eq!(ok.len(), 2);
    assert_eq!(errs.len(), 1);
    assert_names(&errs[0], vid);
    // check_indexes reports it.
    let problems = store.check_indexes().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        matches!(&problems[0], IndexProblem::UndecodableRecord(e) if e.to_string().contains(vid))
    );
    assert!(problems[0].to_string().contains(vid));

    // The indexed store: strict open fails naming it, lenient open works for everyone else.
    let store = match IndexedStore::open(Box::new(store)) {
        Err(e) => {
            assert_names(&e, vid);
            fx.open()
        }
        Ok(_) => panic!("strict open accepted an undecodable record"),
    };
    let (index, errors) = IndexedStore::open_lenient(Box::new(store)).unwrap();
    assert_eq!(errors.len(), 1);
    assert_names(&errors[0], vid);
    assert_eq!(index.len(), 2);
    for c in fx.others() {
        let found = index
            .with_lookup(&c.secrets[0].lookup, |e| {
                e.map(|e| e.describes(c, &c.secrets[0]))
            })
            .unwrap();
        assert_eq!(found, Some(true));
        assert_eq!(index.get(&c.id).unwrap().as_deref(), Some(c));
        // Writes to the others go on.
        let mut c2 = c.clone();
        c2.enabled = false;
        index.put(c2).unwrap();
    }
    assert!(
        index
            .with_lookup(&victim.secrets[0].lookup, |e| e.is_none())
            .unwrap()
    );
    drop(index);

    // The operator removes the damaged record; the store is clean again and its tags free.
    let store = fx.open();
    assert!(!store.remove_undecodable(fx.creds[0].id.as_str()).unwrap());
    assert!(store.remove_undecodable(vid).unwrap());
    assert!(store.check_indexes().unwrap().is_empty());
    assert_eq!(store.get(&victim.id).unwrap(), None);
    assert_eq!(
        store.find_by_lookup(&victim.secrets[0].lookup).unwrap(),
        None
    );
    let mut again = victim.clone();
    again.revision = 0;
    conformance::put(&store, &again);
    conformance::assert_indexes_consistent(&store);
}

fn corrupt_reason(e: &StoreError) -> String {
    match e {
        StoreError::Corrupt { reason, .. } => reason.clone(),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn truncated_record() {
    let fx = Fixture::new();
    let id = fx.victim().id.clone();
    fx.raw(|db| set_record(db, &id, |b| b.truncate(b.len() / 2)));
    assert_undecodable_victim(&fx, |e| {
        corrupt_reason(e);
    });
}

#[test]
fn record_cut_to_its_version_byte_and_empty() {
    for len in [1, 0] {
        let fx = Fixture::new();
        let id = fx.victim().id.clone();
        fx.raw(|db| set_record(db, &id, |b| b.truncate(len)));
        assert_undecodable_victim(&fx, |e| {
            corrupt_reason(e);
        });
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
}

#[test]
fn garbled_record() {
    // Garbage over the id, over a lookup tag, a varint run off its end, and trailing bytes.
    for edit in 0..4 {
        let fx = Fixture::new();
        let victim = fx.victim().clone();
        fx.raw(|db| {
            set_record(db, &victim.id, |b| match edit {
                0 => b[2..12].fill(0xff),
                1 => {
                    let at = find(b, victim.secrets[1].lookup.as_bytes());
                    b[at..at + 4].fill(0x80);
                }
                2 => {
                    // The secrets count becomes an unterminated varint.
                    let at = find(b, victim.secrets[0].lookup.as_bytes()) - 3;
                    b[at..].fill(0x80);
                }
                _ => b.extend_from_slice(b"trailing"),
            })
        });
        assert_undecodable_victim(&fx, |e| {
            corrupt_reason(e);
        });
    }
}

/// What the record codec cannot see: a change to bytes that still decode (here the digest, 32
/// raw bytes). sled checksums every log entry, so media damage surfaces as a sled corruption
/// error instead; a record changed this way fails closed, since its key no longer verifies.
#[test]
fn garbled_digest_decodes_and_fails_closed() {
    let fx = Fixture::new();
    let victim = fx.victim().clone();
    let digest = *victim.secrets[0].digest.as_bytes();
    fx.raw(|db| {
        set_record(db, &victim.id, |b| {
            let at = find(b, &digest);
            b[at] ^= 0x01;
        })
    });
    let store = fx.assert_others_work(fx.open());
    let read = store.get(&victim.id).unwrap().unwrap();
    assert_ne!(read.secrets[0].digest, victim.secrets[0].digest);
    assert_eq!(read.secrets[1], victim.secrets[1]);
}

#[test]
fn record_under_the_wrong_key() {
    let fx = Fixture::new();
    let (victim, other) = (fx.victim().id.clone(), fx.creds[0].id.clone());
    fx.raw(|db| {
        let records = db.open_tree(RECORDS_TREE).unwrap();
        let other_bytes = records.get(record_key(&other)).unwrap().unwrap();
        records.insert(record_key(&victim), other_bytes).unwrap();
    });
    assert_undecodable_victim(&fx, |e| {
        assert!(corrupt_reason(e).contains("holds id"), "{e}");
    });
}

#[test]
fn record_of_a_newer_format() {
    let fx = Fixture::new();
    let id = fx.victim().id.clone();
    fx.raw(|db| set_record(db, &id, |b| b[0] = FORMAT_VERSION + 1));
    assert_undecodable_victim(&fx, |e| {
        assert!(
            matches!(e, StoreError::UnsupportedFormat { found, supported, .. }
                if *found == FORMAT_VERSION + 1 && *supported == FORMAT_VERSION),
            "{e:?}"
        );
        assert!(e.to_string().contains("newer"), "{e}");
    });
}

#[test]
fn record_of_format_zero() {
    let fx = Fixture::new();
    let id = fx.victim().id.clone();
    fx.raw(|db| set_record(db, &id, |b| b[0] = 0));
    assert_undecodable_victim(&fx, |e| {
        assert!(corrupt_reason(e).contains("version 0"), "{e}");
    });
}

#[test]
fn garbage_key_in_records() {
    let fx = Fixture::new();
    fx.raw(|db| {
        let records = db.open_tree(RECORDS_TREE).unwrap();
        records.insert(b"\xff\xfe junk", &b"\x01junk"[..]).unwrap();
    });
    let store = fx.open();
    let mut errs = Vec::new();
    let mut ok = 0;
    store
        .scan(&mut |r| match r {
            Ok(_) => ok += 1,
            Err(e) => errs.push(e),
        })
        .unwrap();
    assert_eq!(ok, 3);
    assert_eq!(errs.len(), 1);
    assert!(errs[0].to_string().contains("junk"), "{}", errs[0]);
    for c in &fx.creds {
        assert_eq!(store.get(&c.id).unwrap().as_ref(), Some(c));
    }
    let (index, errors) = IndexedStore::open_lenient(Box::new(store)).unwrap();
    assert_eq!((index.len(), errors.len()), (3, 1));
}

#[test]
fn store_of_a_newer_format_is_refused_untouched() {
    let fx = Fixture::new();
    let newer = FORMAT_VERSION + 1;
    fx.raw(|db| {
        db.open_tree(META_TREE)
            .unwrap()
            .insert(FORMAT_VERSION_KEY, vec![newer])
            .unwrap();
    });
    let e = SledStore::open(fx.h.path()).unwrap_err();
    assert!(
        matches!(e, StoreError::UnsupportedFormat { id: None, found, supported }
            if found == newer && supported == FORMAT_VERSION),
        "{e:?}"
    );
    assert!(e.to_string().contains("newer keyward"), "{e}");
    // Refused without writing: the version is still the newer one, and the lock is released.
    fx.raw(|db| {
        let v = db
            .open_tree(META_TREE)
            .unwrap()
            .get(FORMAT_VERSION_KEY)
            .unwrap();
        assert_eq!(v.as_deref(), Some(&[newer][..]));
    });
}

#[test]
fn damaged_store_meta_is_a_clear_error() {
    for bad in [vec![], vec![0], vec![1, 1]] {
        let fx = Fixture::new();
        fx.raw(|db| {
            db.open_tree(META_TREE)
                .unwrap()
                .insert(FORMAT_VERSION_KEY, bad.clone())
                .unwrap();
        });
        let e = SledStore::open(fx.h.path()).unwrap_err();
        assert!(matches!(e, StoreError::Backend { .. }), "{e:?}");
        assert!(e.to_string().contains("format version"), "{e}");
    }
}

#[test]
fn missing_lookup_entry() {
    let fx = Fixture::new();
    let victim = fx.victim().clone();
    let tag = victim.secrets[1].lookup;
    fx.raw(|db| {
        db.open_tree(LOOKUP_TREE)
            .unwrap()
            .remove(tag.as_bytes())
            .unwrap();
    });
    let store = fx.assert_others_work(fx.open());
    // The backend's lookup misses that one secret; the record itself is fine.
    assert_eq!(store.find_by_lookup(&tag).unwrap(), None);
    assert_eq!(
        store
            .find_by_lookup(&victim.secrets[0].lookup)
            .unwrap()
            .as_ref(),
        Some(&victim)
    );
    assert_eq!(store.get(&victim.id).unwrap().as_ref(), Some(&victim));
    let problems = store.check_indexes().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        matches!(&problems[0], IndexProblem::MissingLookup { id, lookup, found: None }
        if *id == victim.id && *lookup == tag)
    );
    assert!(problems[0].to_string().contains(victim.id.as_str()));

    // The hot index is warmed from the records, so verification still finds the key.
    let index = IndexedStore::open(Box::new(store)).unwrap();
    let found = index
        .with_lookup(&tag, |e| e.map(|e| e.id().clone()))
        .unwrap();
    assert_eq!(found, Some(victim.id.clone()));
    drop(index);

    // Repair restores it.
    let store = fx.open();
    assert_eq!(store.repair_indexes().unwrap(), 1);
    assert!(store.check_indexes().unwrap().is_empty());
    assert_eq!(store.find_by_lookup(&tag).unwrap().as_ref(), Some(&victim));
    conformance::assert_indexes_consistent(&store);
}

#[test]
fn missing_lookup_entry_heals_on_the_next_write() {
    let fx = Fixture::new();
    let victim = fx.victim().clone();
    let tag = victim.secrets[0].lookup;
    fx.raw(|db| {
        db.open_tree(LOOKUP_TREE)
            .unwrap()
            .remove(tag.as_bytes())
            .unwrap();
    });
    let store = fx.open();
    let mut c = victim.clone();
    c.enabled = false;
    conformance::put(&store, &c);
    assert!(store.check_indexes().unwrap().is_empty());
}

#[test]
fn dangling_lookup_entries() {
    let fx = Fixture::new();
    let victim = fx.victim().clone();
    // One entry pointing to a credential that does not hold the tag, one to no credential.
    let (orphan, _) = conformance::issue(
        "acc_bad",
        keyward_core::Environment::Production,
        keyward_core::KeyType::Secret,
    );
    let stray = orphan.secrets[0].lookup;
    let (nowhere, _) = conformance::issue(
        "acc_bad",
        keyward_core::Environment::Test,
        keyward_core::KeyType::Secret,
    );
    let nowhere_tag: LookupTag = nowhere.secrets[0].lookup;
    fx.raw(|db| {
        let lookup = db.open_tree(LOOKUP_TREE).unwrap();
        lookup
            .insert(stray.as_bytes(), record_key(&victim.id))
            .unwrap();
        lookup
            .insert(
                nowhere_tag.as_bytes(),
                &b"key_doesnotexist0000000000000"[..],
            )
            .unwrap();
    });
    let store = fx.assert_others_work(fx.open());
    // A dangling entry finds nothing: it never hands out a credential that lacks the tag.
    assert_eq!(store.find_by_lookup(&stray).unwrap(), None);
    assert_eq!(store.find_by_lookup(&nowhere_tag).unwrap(), None);
    assert_eq!(store.get(&victim.id).unwrap().as_ref(), Some(&victim));
    let problems = store.check_indexes().unwrap();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems
            .iter()
            .all(|p| matches!(p, IndexProblem::DanglingLookup { .. }))
    );
    assert!(
        problems
            .iter()
            .any(|p| p.to_string().contains(victim.id.as_str()))
    );
    // A credential that really holds the tag may claim it.
    let orphan = conformance::put(&store, &orphan);
    assert_eq!(
        store.find_by_lookup(&stray).unwrap().as_ref(),
        Some(&orphan)
    );
    assert_eq!(store.repair_indexes().unwrap(), 1);
    assert!(store.check_indexes().unwrap().is_empty());
    conformance::assert_indexes_consistent(&store);
}

#[test]
fn missing_and_dangling_account_entries() {
    let fx = Fixture::new();
    let victim = fx.victim().clone();
    let ghost = "key_ghost00000000000000000000";
    fx.raw(|db| {
        let accounts = db.open_tree(ACCOUNTS_TREE).unwrap();
        let mut key = b"acc_bad\0".to_vec();
        key.extend_from_slice(record_key(&victim.id));
        accounts.remove(key).unwrap();
        let mut key = b"acc_bad\0".to_vec();
        key.extend_from_slice(ghost.as_bytes());
        accounts.insert(key, &b""[..]).unwrap();
        // The victim also listed under a foreign account.
        let mut key = b"acc_other\0".to_vec();
        key.extend_from_slice(record_key(&fx.creds[0].id));
        accounts.insert(key, &b""[..]).unwrap();
    });
    let store = fx.assert_others_work(fx.open());
    let listed = |account: &str| -> Vec<CredentialId> {
        let q = ListQuery {
            account: Some(account.parse().unwrap()),
            ..ListQuery::default()
        };
        store
            .list(&q)
            .unwrap()
            .items
            .into_iter()
            .map(|c| c.id)
            .collect()
    };
    // Dangling entries are skipped; the missing one is left out until repaired.
    let mut expected = vec![fx.creds[0].id.clone(), fx.creds[2].id.clone()];
    expected.sort();
    assert_eq!(listed("acc_bad"), expected);
    assert!(listed("acc_other").is_empty());
    let problems = store.check_indexes().unwrap();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, IndexProblem::MissingAccountEntry { id, .. } if *id == victim.id))
    );
    assert!(problems.iter().any(|p| p.to_string().contains(ghost)));
    assert_eq!(store.repair_indexes().unwrap(), 3);
    assert!(store.check_indexes().unwrap().is_empty());
    let mut all: Vec<CredentialId> = fx.creds.iter().map(|c| c.id.clone()).collect();
    all.sort();
    assert_eq!(listed("acc_bad"), all);
    conformance::assert_indexes_consistent(&store);
}

/// The same damage in a redb store: written straight into its tables with redb (the store
/// closed), or into the file's bytes, then the store is reopened.
#[cfg(feature = "redb")]
mod redb_backend {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use keyward_core::{Credential, CredentialId, Environment, KeyType};
    use keyward_store::conformance::{self, Harness};
    use keyward_store::{
        FORMAT_VERSION, IndexedStore, ListQuery, REDB_ACCOUNTS_TABLE, REDB_FORMAT_VERSION_KEY,
        REDB_LOOKUP_TABLE, REDB_META_TABLE, REDB_RECORDS_TABLE, RedbIndexProblem, RedbStore, Store,
        StoreError,
    };
    use redb::ReadableTable;

    use crate::common::Redb;

    /// A closed store with three credentials of one account (the middle one rotated once).
    struct Fixture {
        h: Redb,
        creds: Vec<Credential>,
    }

    impl Fixture {
        fn new() -> Self {
            let mut h = Redb::default();
            let store = h.fresh();
            let mut creds = Vec::new();
            for i in 0..3 {
                let mut c = conformance::put(&store, &conformance::credential("acc_bad"));
                if i == 1 {
                    conformance::rotate(&mut c);
                    c = conformance::put(&store, &c);
                }
                creds.push(c);
            }
            drop(store);
            Self { h, creds }
        }

        fn victim(&self) -> &Credential {
            &self.creds[1]
        }

        fn others(&self) -> impl Iterator<Item = &Credential> {
            [&self.creds[0], &self.creds[2]].into_iter()
        }

        fn open(&self) -> RedbStore {
            RedbStore::open(self.h.path()).unwrap()
        }

        /// Changes the tables of the closed store in one redb write transaction.
        fn raw(&self, f: impl FnOnce(&redb::WriteTransaction)) {
            raw(&self.h.path(), f);
        }

        fn assert_others_work(&self, store: &RedbStore) {
            for c in self.others() {
                assert_eq!(store.get(&c.id).unwrap().as_ref(), Some(c));
                assert_eq!(
                    store.find_by_lookup(&c.secrets[0].lookup).unwrap().as_ref(),
                    Some(c)
                );
            }
        }
    }

    fn raw(path: &Path, f: impl FnOnce(&redb::WriteTransaction)) {
        let db = redb::Database::create(path).unwrap();
        let txn = db.begin_write().unwrap();
        f(&txn);
        txn.commit().unwrap();
    }

    fn set_record(txn: &redb::WriteTransaction, id: &CredentialId, bytes: &[u8]) {
        let mut records = txn.open_table(REDB_RECORDS_TABLE).unwrap();
        records.insert(id.as_str().as_bytes(), bytes).unwrap();
    }

    fn record(txn: &redb::WriteTransaction, id: &CredentialId) -> Vec<u8> {
        let records = txn.open_table(REDB_RECORDS_TABLE).unwrap();
        let bytes = records.get(id.as_str().as_bytes()).unwrap().unwrap();
        bytes.value().to_vec()
    }

    /// The error names the credential `id`, in its fields and its message.
    fn assert_names(e: &StoreError, id: &str) {
        match e {
            StoreError::Corrupt { id: named, .. }
            | StoreError::UnsupportedFormat {
                id: Some(named), ..
            } => assert_eq!(named, id, "{e}"),
            other => panic!("expected an error naming {id}, got {other:?}"),
        }
        assert!(
            e.to_string().contains(id),
            "message does not name {id}: {e}"
        );
    }

    /// A backend error about the whole store names its file.
    fn assert_names_path(e: &StoreError, path: &Path) {
        assert!(matches!(e, StoreError::Backend { .. }), "{e:?}");
        let shown = path.display().to_string();
        assert!(e.to_string().contains(&shown), "{e} does not name {shown}");
    }

    /// The victim's record is undecodable: every read and write of it names it, everything else
    /// works, the scan passes it as an error and goes on, and the operator tools find and
    /// remove it.
    fn assert_undecodable_victim(fx: &Fixture, expect: impl Fn(&StoreError)) {
        let victim = fx.victim().clone();
        let vid = victim.id.as_str();
        let store = fx.open();
        fx.assert_others_work(&store);

        let e = store.get(&victim.id).unwrap_err();
        assert_names(&e, vid);
        expect(&e);
        for tag in conformance::tags(&victim) {
            assert_names(&store.find_by_lookup(&tag).unwrap_err(), vid);
        }
        assert_names(&store.put(&victim).unwrap_err(), vid);
        assert_names(&store.delete(&victim.id, victim.revision).unwrap_err(), vid);
        let q = ListQuery {
            account: Some(victim.account.clone()),
            ..ListQuery::default()
        };
        assert_names(&store.list(&q).unwrap_err(), vid);
        assert_names(&store.list(&ListQuery::default()).unwrap_err(), vid);
        let (mut ok, mut errs) = (Vec::new(), Vec::new());
        store
            .scan(&mut |r| match r {
                Ok(c) => ok.push(c.id),
                Err(e) => errs.push(e),
            })
            .unwrap();
        let mut others: Vec<CredentialId> = fx.others().map(|c| c.id.clone()).collect();
        others.sort();
        assert_eq!(ok, others);
        assert_eq!(errs.len(), 1);
        assert_names(&errs[0], vid);
        let problems = store.check_indexes().unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            matches!(&problems[0], RedbIndexProblem::UndecodableRecord(e) if e.to_string().contains(vid))
        );
        // A repair leaves the record (and its entries) to the operator.
        assert_eq!(store.repair_indexes().unwrap(), 0);

        // Strict warm-up refuses it by name; lenient warm-up serves everyone else.
        let store = match IndexedStore::open(Box::new(store)) {
            Err(e) => {
                assert_names(&e, vid);
                fx.open()
            }
            Ok(_) => panic!("strict open accepted an undecodable record"),
        };
        let (index, errors) = IndexedStore::open_lenient(Box::new(store)).unwrap();
        assert_eq!(errors.len(), 1);
        assert_names(&errors[0], vid);
        assert_eq!(index.len(), 2);
        for c in fx.others() {
            let mut c2 = c.clone();
            c2.enabled = false;
            index.put(c2).unwrap();
        }
        drop(index);

        // The operator removes the damaged record; the store is clean and its tags free.
        let store = fx.open();
        assert!(!store.remove_undecodable(fx.creds[0].id.as_str()).unwrap());
        assert!(store.remove_undecodable(vid).unwrap());
        assert!(!store.remove_undecodable(vid).unwrap());
        assert!(store.check_indexes().unwrap().is_empty());
        assert_eq!(store.get(&victim.id).unwrap(), None);
        assert_eq!(
            store.find_by_lookup(&victim.secrets[0].lookup).unwrap(),
            None
        );
        let mut again = victim.clone();
        again.revision = 0;
        conformance::put(&store, &again);
        conformance::assert_indexes_consistent(&store);
    }

    fn corrupt_reason(e: &StoreError) -> String {
        match e {
            StoreError::Corrupt { reason, .. } => reason.clone(),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn truncated_empty_and_trailing_records() {
        for edit in 0..4 {
            let fx = Fixture::new();
            let id = fx.victim().id.clone();
            fx.raw(|txn| {
                let mut bytes = record(txn, &id);
                match edit {
                    0 => bytes.truncate(bytes.len() / 2),
                    1 => bytes.truncate(1),
                    2 => bytes.clear(),
                    _ => bytes.extend_from_slice(b"trailing"),
                }
                set_record(txn, &id, &bytes);
            });
            assert_undecodable_victim(&fx, |e| {
                corrupt_reason(e);
            });
        }
    }

    #[test]
    fn record_under_the_wrong_key() {
        let fx = Fixture::new();
        let (victim, other) = (fx.victim().id.clone(), fx.creds[0].id.clone());
        fx.raw(|txn| {
            let bytes = record(txn, &other);
            set_record(txn, &victim, &bytes);
        });
        assert_undecodable_victim(&fx, |e| {
            assert!(corrupt_reason(e).contains("holds id"), "{e}");
        });
    }

    #[test]
    fn record_of_a_newer_format() {
        let fx = Fixture::new();
        let id = fx.victim().id.clone();
        fx.raw(|txn| {
            let mut bytes = record(txn, &id);
            bytes[0] = FORMAT_VERSION + 1;
            set_record(txn, &id, &bytes);
        });
        assert_undecodable_victim(&fx, |e| {
            assert!(
                matches!(e, StoreError::UnsupportedFormat { found, supported, .. }
                    if *found == FORMAT_VERSION + 1 && *supported == FORMAT_VERSION),
                "{e:?}"
            );
        });
    }

    #[test]
    fn garbage_key_in_records() {
        let fx = Fixture::new();
        fx.raw(|txn| {
            let mut records = txn.open_table(REDB_RECORDS_TABLE).unwrap();
            records
                .insert(b"\xff\xfe junk".as_slice(), b"\x01junk".as_slice())
                .unwrap();
        });
        let store = fx.open();
        let (mut ok, mut errs) = (0, Vec::new());
        store
            .scan(&mut |r| match r {
                Ok(_) => ok += 1,
                Err(e) => errs.push(e),
            })
            .unwrap();
        assert_eq!((ok, errs.len()), (3, 1));
        assert!(errs[0].to_string().contains("junk"), "{}", errs[0]);
        for c in &fx.creds {
            assert_eq!(store.get(&c.id).unwrap().as_ref(), Some(c));
        }
        let (index, errors) = IndexedStore::open_lenient(Box::new(store)).unwrap();
        assert_eq!((index.len(), errors.len()), (3, 1));
    }

    #[test]
    fn a_file_that_is_not_redb_is_a_clear_error_and_stays_untouched() {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in [
            ("text.redb", b"not a database at all\n".repeat(400)),
            ("short.redb", b"xy".to_vec()),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, &content).unwrap();
            let e = RedbStore::open(&path).unwrap_err();
            assert_names_path(&e, &path);
            assert!(e.to_string().contains("not a redb database"), "{e}");
            assert_eq!(std::fs::read(&path).unwrap(), content);
        }
        // A directory is not a store file either.
        let e = RedbStore::open(dir.path()).unwrap_err();
        assert_names_path(&e, dir.path());
    }

    /// Damage to the file under redb (a byte of a record flipped on disk, a truncated file) is
    /// refused at open by redb's checksums, naming the file; it never panics or reads garbage.
    #[test]
    fn a_damaged_file_is_refused_at_open() {
        let fx = Fixture::new();
        let path = fx.h.path();
        let clean = std::fs::read(&path).unwrap();
        let needle = fx.victim().id.as_str().as_bytes();
        let mut flipped = clean.clone();
        let mut hits = 0;
        for at in 0..flipped.len().saturating_sub(needle.len()) {
            if &flipped[at..at + needle.len()] == needle {
                flipped[at + needle.len() - 1] ^= 0x01;
                hits += 1;
            }
        }
        assert!(hits > 0, "the id is not in the file");
        for damaged in [flipped, clean[..clean.len() / 2].to_vec()] {
            std::fs::write(&path, &damaged).unwrap();
            let e = RedbStore::open(&path).unwrap_err();
            assert_names_path(&e, &path);
            assert!(e.to_string().contains("damaged"), "{e}");
        }
        // The undamaged bytes open again with every credential.
        std::fs::write(&path, &clean).unwrap();
        let store = fx.open();
        assert_eq!(conformance::scan_all(&store).len(), 3);
    }

    #[test]
    fn store_of_a_newer_format_is_refused_and_keeps_its_version() {
        let fx = Fixture::new();
        let newer = FORMAT_VERSION + 1;
        fx.raw(|txn| {
            let mut meta = txn.open_table(REDB_META_TABLE).unwrap();
            meta.insert(REDB_FORMAT_VERSION_KEY, [newer].as_slice())
                .unwrap();
        });
        let e = RedbStore::open(fx.h.path()).unwrap_err();
        assert!(
            matches!(e, StoreError::UnsupportedFormat { id: None, found, supported }
                if found == newer && supported == FORMAT_VERSION),
            "{e:?}"
        );
        assert!(e.to_string().contains("newer keyward"), "{e}");
        // Refused without changing the data, and the file is free again.
        fx.raw(|txn| {
            let meta = txn.open_table(REDB_META_TABLE).unwrap();
            let v = meta.get(REDB_FORMAT_VERSION_KEY).unwrap().unwrap();
            assert_eq!(v.value(), &[newer][..]);
        });
    }

    #[test]
    fn damaged_store_meta_is_a_clear_error() {
        for bad in [vec![], vec![0], vec![1, 1]] {
            let fx = Fixture::new();
            fx.raw(|txn| {
                let mut meta = txn.open_table(REDB_META_TABLE).unwrap();
                meta.insert(REDB_FORMAT_VERSION_KEY, bad.as_slice())
                    .unwrap();
            });
            let e = RedbStore::open(fx.h.path()).unwrap_err();
            assert_names_path(&e, &fx.h.path());
            assert!(e.to_string().contains("format version"), "{e}");
        }
    }

    #[test]
    fn a_lost_version_entry_is_written_again() {
        let fx = Fixture::new();
        fx.raw(|txn| {
            let mut meta = txn.open_table(REDB_META_TABLE).unwrap();
            meta.remove(REDB_FORMAT_VERSION_KEY).unwrap();
        });
        let store = fx.open();
        assert_eq!(conformance::scan_all(&store).len(), 3);
        drop(store);
        fx.raw(|txn| {
            let meta = txn.open_table(REDB_META_TABLE).unwrap();
            let v = meta.get(REDB_FORMAT_VERSION_KEY).unwrap().unwrap();
            assert_eq!(v.value(), &[FORMAT_VERSION][..]);
        });
    }

    /// A second open while the first is open answers `InUse` within about a second, and the
    /// first handle keeps working.
    #[test]
    fn second_open_in_process_is_in_use_and_the_first_keeps_working() {
        let fx = Fixture::new();
        let first = fx.open();
        let started = Instant::now();
        let e = RedbStore::open(fx.h.path()).unwrap_err();
        assert!(matches!(e, StoreError::InUse { .. }), "{e:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(e.to_string().contains("in use"), "{e}");
        fx.assert_others_work(&first);
        let mut c = fx.creds[0].clone();
        c.enabled = false;
        let c = conformance::put(&first, &c);
        assert_eq!(first.get(&c.id).unwrap().as_ref(), Some(&c));
        drop(first);
        let again = fx.open();
        assert_eq!(again.get(&c.id).unwrap().as_ref(), Some(&c));
    }

    #[test]
    fn missing_and_dangling_index_entries_are_found_and_repaired() {
        let fx = Fixture::new();
        let victim = fx.victim().clone();
        let missing = victim.secrets[1].lookup;
        let (orphan, _) = conformance::issue("acc_bad", Environment::Production, KeyType::Secret);
        let stray = orphan.secrets[0].lookup;
        let ghost = "key_ghost00000000000000000000";
        fx.raw(|txn| {
            let mut lookup = txn.open_table(REDB_LOOKUP_TABLE).unwrap();
            lookup.remove(missing.as_bytes().as_slice()).unwrap();
            lookup
                .insert(stray.as_bytes().as_slice(), victim.id.as_str().as_bytes())
                .unwrap();
            let mut accounts = txn.open_table(REDB_ACCOUNTS_TABLE).unwrap();
            let mut key = b"acc_bad\0".to_vec();
            key.extend_from_slice(victim.id.as_str().as_bytes());
            accounts.remove(key.as_slice()).unwrap();
            let mut key = b"acc_bad\0".to_vec();
            key.extend_from_slice(ghost.as_bytes());
            accounts.insert(key.as_slice(), ()).unwrap();
        });
        let store = fx.open();
        fx.assert_others_work(&store);
        // The backend misses the tag without an entry; a dangling entry finds nothing.
        assert_eq!(store.find_by_lookup(&missing).unwrap(), None);
        assert_eq!(store.find_by_lookup(&stray).unwrap(), None);
        assert_eq!(
            store
                .find_by_lookup(&victim.secrets[0].lookup)
                .unwrap()
                .as_ref(),
            Some(&victim)
        );
        // Listing the account skips the ghost and leaves out the victim until repaired.
        let q = ListQuery {
            account: Some(victim.account.clone()),
            ..ListQuery::default()
        };
        let listed = |store: &RedbStore| -> Vec<CredentialId> {
            store
                .list(&q)
                .unwrap()
                .items
                .into_iter()
                .map(|c| c.id)
                .collect()
        };
        let mut expected: Vec<CredentialId> = fx.others().map(|c| c.id.clone()).collect();
        expected.sort();
        assert_eq!(listed(&store), expected);

        let problems = store.check_indexes().unwrap();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems.iter().any(|p| matches!(p,
            RedbIndexProblem::MissingLookup { id, lookup, found: None }
                if *id == victim.id && *lookup == missing)));
        assert!(problems.iter().any(|p| matches!(p,
            RedbIndexProblem::DanglingLookup { id, .. } if id == victim.id.as_str())));
        assert!(problems.iter().any(|p| matches!(p,
            RedbIndexProblem::MissingAccountEntry { id, .. } if *id == victim.id)));
        assert!(problems.iter().any(|p| p.to_string().contains(ghost)));

        // The hot index is warmed from the records, so verification still finds the key.
        let index = IndexedStore::open(Box::new(store)).unwrap();
        let found = index
            .with_lookup(&missing, |e| e.map(|e| e.id().clone()))
            .unwrap();
        assert_eq!(found, Some(victim.id.clone()));
        drop(index);

        let store = fx.open();
        assert_eq!(store.repair_indexes().unwrap(), 4);
        assert!(store.check_indexes().unwrap().is_empty());
        assert_eq!(store.repair_indexes().unwrap(), 0);
        assert_eq!(
            store.find_by_lookup(&missing).unwrap().as_ref(),
            Some(&victim)
        );
        let mut all: Vec<CredentialId> = fx.creds.iter().map(|c| c.id.clone()).collect();
        all.sort();
        assert_eq!(listed(&store), all);
        conformance::assert_indexes_consistent(&store);
    }

    /// A credential that really holds a tag with a dangling entry may claim it.
    #[test]
    fn a_dangling_lookup_entry_is_claimed_by_its_holder() {
        let fx = Fixture::new();
        let (orphan, _) = conformance::issue("acc_bad", Environment::Test, KeyType::Secret);
        let tag = orphan.secrets[0].lookup;
        let victim = fx.victim().id.clone();
        fx.raw(|txn| {
            let mut lookup = txn.open_table(REDB_LOOKUP_TABLE).unwrap();
            lookup
                .insert(tag.as_bytes().as_slice(), victim.as_str().as_bytes())
                .unwrap();
        });
        let store = fx.open();
        let orphan = conformance::put(&store, &orphan);
        assert_eq!(store.find_by_lookup(&tag).unwrap().as_ref(), Some(&orphan));
        assert!(store.check_indexes().unwrap().is_empty());
    }
}
