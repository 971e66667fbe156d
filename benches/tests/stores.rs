//! The cached sled and redb fixture stores hold exactly the credentials they are named after,
//! in their store's layout, so that open, disk and verify measurements on them measure a real
//! store of `n` credentials; and a finished build is reused while an unfinished one is not.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;

use keyward::store::{RedbStore, SledStore, Store};
use keyward::{Backend, Keyward, VerifyError};
use keyward_benches::disk::{DiskUsage, compacted_redb_copy};
use keyward_benches::fixture::{self, BackendKind, for_each_credential};

const N: usize = 300;

/// What a store of the `N` fixture credentials must hold: every credential, at revision 1.
fn expected() -> (Vec<keyward::core::Credential>, Vec<String>) {
    let (mut creds, mut keys) = (Vec::new(), Vec::new());
    for_each_credential(N, fixture::SEED, |mut c, k| {
        c.revision = 1;
        creds.push(c);
        keys.push(k);
    });
    (creds, keys)
}

fn build(kind: BackendKind, dir: &Path) -> Vec<String> {
    match kind {
        BackendKind::Sled => fixture::ensure_sled_store_in(dir, N).unwrap(),
        BackendKind::Redb => fixture::ensure_redb_store_in(dir, N).unwrap(),
        BackendKind::Memory => unreachable!(),
    }
}

fn backend(kind: BackendKind, dir: &Path) -> Backend {
    match kind {
        BackendKind::Sled => Backend::Sled(dir.join("db")),
        _ => Backend::Redb(fixture::redb_file(dir)),
    }
}

/// Checks the store through the `Store` trait and through an engine.
fn check_store(kind: BackendKind, dir: &Path, keys: &[String]) {
    let (creds, want_keys) = expected();
    assert_eq!(keys, want_keys.as_slice());
    {
        let store: Box<dyn Store> = match kind {
            BackendKind::Sled => {
                let s = SledStore::open(dir.join("db")).unwrap();
                let problems = s.check_indexes().unwrap();
                assert!(problems.is_empty(), "{problems:?}");
                Box::new(s)
            }
            _ => {
                let s = RedbStore::open(fixture::redb_file(dir)).unwrap();
                let problems = s.check_indexes().unwrap();
                assert!(problems.is_empty(), "{problems:?}");
                Box::new(s)
            }
        };
        let mut held = Vec::new();
        store.scan(&mut |r| held.push(r.unwrap())).unwrap();
        held.sort_by(|a, b| a.id.cmp(&b.id));
        let mut want = creds.clone();
        want.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(held, want, "{} store holds other credentials", kind.name());
        for c in &creds {
            let found = store.find_by_lookup(&c.secrets[0].lookup).unwrap();
            assert_eq!(found.as_ref(), Some(c));
            let page = store
                .list(&keyward::store::ListQuery {
                    account: Some(c.account.clone()),
                    ..Default::default()
                })
                .unwrap();
            assert!(page.items.iter().any(|x| x.id == c.id));
        }
    }
    let kw = Keyward::open(fixture::config(backend(kind, dir))).unwrap();
    assert_eq!(kw.store().len(), N);
    assert!(kw.startup_errors().is_empty());
    for k in keys {
        kw.verify(k).unwrap();
        assert_eq!(
            kw.verify(&fixture::wrong_secret(k)).unwrap_err(),
            VerifyError::Unknown
        );
    }
    for k in fixture::unknown_keys(20) {
        assert_eq!(kw.verify(&k).unwrap_err(), VerifyError::Unknown);
    }
}

fn fixture_store_holds_exactly_its_credentials(kind: BackendKind) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(kind.name());
    let keys = build(kind, &dir);
    check_store(kind, &dir, &keys);

    // A finished build is reused as it is: a file put next to it survives (a rebuild starts
    // from an empty directory).
    let sentinel = dir.join("sentinel");
    std::fs::write(&sentinel, "x").unwrap();
    assert_eq!(build(kind, &dir), keys);
    assert!(
        sentinel.exists(),
        "a finished {} fixture was rebuilt",
        kind.name()
    );

    // A build that did not finish (no marker, or another version's) is rebuilt from scratch.
    std::fs::write(dir.join("keyward-bench.done"), "stale\n").unwrap();
    assert_eq!(build(kind, &dir), keys);
    assert!(
        !sentinel.exists(),
        "a stale {} fixture was reused",
        kind.name()
    );
    check_store(kind, &dir, &keys);
}

#[test]
fn redb_fixture_holds_exactly_its_credentials() {
    fixture_store_holds_exactly_its_credentials(BackendKind::Redb);
}

#[test]
fn sled_fixture_holds_exactly_its_credentials() {
    fixture_store_holds_exactly_its_credentials(BackendKind::Sled);
}

#[test]
fn disk_usage_sums_every_file_and_compaction_leaves_the_original() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("a"), vec![1u8; 5000]).unwrap();
    std::fs::write(dir.join("sub").join("b"), vec![2u8; 300]).unwrap();
    let u = DiskUsage::of(&dir).unwrap();
    assert_eq!((u.apparent, u.files), (5300, 2));
    assert!(u.allocated >= 5300, "{u:?}");

    let store_dir = tmp.path().join("redb");
    build(BackendKind::Redb, &store_dir);
    let original = fixture::redb_file(&store_dir);
    let before = std::fs::read(&original).unwrap();
    let copy = compacted_redb_copy(&original, &tmp.path().join("copy.redb")).unwrap();
    assert_eq!(std::fs::read(&original).unwrap(), before);
    assert!(copy.apparent > 0 && copy.apparent <= before.len() as u64);
    // The compacted copy is still the same store.
    let kw = Keyward::open(fixture::config(Backend::Redb(tmp.path().join("copy.redb")))).unwrap();
    assert_eq!(kw.store().len(), N);
}
