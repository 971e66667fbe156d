//! Model-based tests: random sequences of operations against every backend (and the indexed
//! store over each) and against a `BTreeMap` model; after every step the store, its indexes and
//! the model agree.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::{IndexedMemory, Memory};
#[cfg(feature = "sled")]
use common::{IndexedSled, Sled};
use keyward_core::{Credential, CredentialId, Environment, KeyType, LookupTag, Timestamp};
use keyward_store::conformance::{self, Harness};
use keyward_store::{IndexedStore, MemoryStore, Store, StoreError};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Create {
        account: u8,
        env: u8,
        key_type: u8,
    },
    Rotate(usize),
    Revoke(usize),
    PurgeOldest(usize),
    Delete(usize),
    /// A write with a wrong revision: must conflict and change nothing.
    Stale(usize, bool),
    /// A new credential claiming another's tag: must be refused and change nothing.
    StealTag(usize),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3u8, 0..3u8, 0..3u8).prop_map(|(account, env, key_type)| Op::Create { account, env, key_type }),
        3 => any::<usize>().prop_map(Op::Rotate),
        2 => any::<usize>().prop_map(Op::Revoke),
        2 => any::<usize>().prop_map(Op::PurgeOldest),
        2 => any::<usize>().prop_map(Op::Delete),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(i, up)| Op::Stale(i, up)),
        1 => any::<usize>().prop_map(Op::StealTag),
        1 => Just(Op::Reopen),
    ]
}

fn new_credential(account: u8, env: u8, key_type: u8) -> Credential {
    let env = match env {
        0 => Environment::Production,
        1 => Environment::Test,
        _ => "staging".parse().unwrap(),
    };
    let account = ["acc_a", "acc_b", "acc_a2"][usize::from(account % 3)];
    conformance::issue(account, env, KeyType::ALL[usize::from(key_type % 3)]).0
}

/// The model: the credentials as stored, and every tag no credential holds any more.
#[derive(Default)]
struct Model {
    creds: BTreeMap<CredentialId, Credential>,
    gone: BTreeSet<LookupTag>,
}

impl Model {
    fn pick(&self, i: usize) -> Option<Credential> {
        if self.creds.is_empty() {
            return None;
        }
        self.creds.values().nth(i % self.creds.len()).cloned()
    }
}

/// Extra checks of one backend beyond the trait's view.
trait Target: Harness {
    const REOPENS: bool;
    fn check(_store: &Self::Store, _model: &Model) {}
}

impl Target for Memory {
    const REOPENS: bool = false;
}

#[cfg(feature = "sled")]
impl Target for Sled {
    const REOPENS: bool = true;
    fn check(store: &Self::Store, _model: &Model) {
        let problems = store.check_indexes().unwrap();
        assert!(problems.is_empty(), "{problems:?}");
    }
}

fn check_hot(store: &IndexedStore, model: &Model) {
    assert_eq!(store.len(), model.creds.len());
    for cred in model.creds.values() {
        for (slot, s) in cred.secrets.iter().enumerate() {
            let found = store
                .with_lookup(&s.lookup, |e| e.map(|e| e.describes(cred, s)))
                .unwrap();
            assert_eq!(found, Some(true), "{} secret {slot}", cred.id);
        }
        assert_eq!(store.get(&cred.id).unwrap().as_deref(), Some(cred));
    }
    for tag in &model.gone {
        assert!(store.with_lookup(tag, |e| e.is_none()).unwrap(), "{tag}");
    }
}

impl Target for IndexedMemory {
    const REOPENS: bool = false;
    fn check(store: &Self::Store, model: &Model) {
        check_hot(store, model);
    }
}

#[cfg(feature = "sled")]
impl Target for IndexedSled {
    const REOPENS: bool = true;
    fn check(store: &Self::Store, model: &Model) {
        check_hot(store, model);
    }
}

#[cfg(feature = "redb")]
impl Target for common::Redb {
    const REOPENS: bool = true;
    fn check(store: &Self::Store, _model: &Model) {
        let problems = store.check_indexes().unwrap();
        assert!(problems.is_empty(), "{problems:?}");
    }
}

#[cfg(feature = "redb")]
impl Target for common::IndexedRedb {
    const REOPENS: bool = true;
    fn check(store: &Self::Store, model: &Model) {
        check_hot(store, model);
    }
}

#[cfg(feature = "postgres")]
impl Target for common::pg::Pg {
    const REOPENS: bool = true;
}

#[cfg(feature = "postgres")]
impl Target for common::pg::IndexedPg {
    const REOPENS: bool = true;
    fn check(store: &Self::Store, model: &Model) {
        check_hot(store, model);
    }
}

fn run<T: Target>(mut h: T, ops: &[Op]) {
    let mut store = Some(h.fresh());
    let mut model = Model::default();
    for op in ops {
        let s = store.as_ref().unwrap();
        match op {
            Op::Create {
                account,
                env,
                key_type,
            } => {
                let c = conformance::put(s, &new_credential(*account, *env, *key_type));
                model.creds.insert(c.id.clone(), c);
            }
            Op::Rotate(i) => {
                if let Some(mut c) = model.pick(*i) {
                    conformance::rotate(&mut c);
                    let c = conformance::put(s, &c);
                    model.creds.insert(c.id.clone(), c);
                }
            }
            Op::Revoke(i) => {
                if let Some(mut c) = model.pick(*i) {
                    let now = Timestamp::now();
                    for secret in &mut c.secrets {
                        secret.revoked_at.get_or_insert(now);
                    }
                    c.enabled = false;
                    let c = conformance::put(s, &c);
                    model.creds.insert(c.id.clone(), c);
                }
            }
            Op::PurgeOldest(i) => {
                if let Some(mut c) = model.pick(*i)
                    && c.secrets.len() > 1
                {
                    let old = c.secrets.remove(0);
                    let c = conformance::put(s, &c);
                    model.gone.insert(old.lookup);
                    model.creds.insert(c.id.clone(), c);
                }
            }
            Op::Delete(i) => {
                if let Some(c) = model.pick(*i) {
                    s.delete(&c.id, c.revision).unwrap();
                    model.gone.extend(conformance::tags(&c));
                    model.creds.remove(&c.id);
                }
            }
            Op::Stale(i, up) => {
                if let Some(mut c) = model.pick(*i) {
                    c.revision = if *up { c.revision + 1 } else { c.revision - 1 };
                    c.enabled = !c.enabled;
                    assert!(matches!(s.put(&c), Err(StoreError::Conflict { .. })));
                    assert!(matches!(
                        s.delete(&c.id, c.revision),
                        Err(StoreError::Conflict { .. })
                    ));
                }
            }
            Op::StealTag(i) => {
                if let Some(victim) = model.pick(*i) {
                    let mut thief = new_credential(0, 0, 0);
                    thief.secrets.push(victim.secrets[0].clone());
                    assert!(matches!(
                        s.put(&thief),
                        Err(StoreError::DuplicateLookup { .. })
                    ));
                }
            }
            Op::Reopen => {
                if T::REOPENS {
                    store = h.reopen(store.take().unwrap());
                }
            }
        }
        let s = store.as_ref().unwrap();
        conformance::assert_matches_model(s, &model.creds, &model.gone);
        T::check(s, &model);
    }
}

fn ops(max: usize) -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 1..max)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn memory_agrees_with_the_model(ops in ops(40)) {
        run(Memory, &ops);
    }

    #[test]
    fn indexed_memory_agrees_with_the_model(ops in ops(40)) {
        run(IndexedMemory { shared: false }, &ops);
    }
}

#[cfg(feature = "sled")]
proptest! {
    // Every sled write is fsynced: fewer cases.
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn sled_agrees_with_the_model(ops in ops(30)) {
        run(Sled::default(), &ops);
    }

    #[test]
    fn indexed_sled_agrees_with_the_model(ops in ops(30)) {
        run(IndexedSled::default(), &ops);
    }
}

#[cfg(feature = "redb")]
proptest! {
    // Every redb write is fsynced (twice: two-phase commit): fewer cases.
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn redb_agrees_with_the_model(ops in ops(30)) {
        run(common::Redb::default(), &ops);
    }

    #[test]
    fn indexed_redb_agrees_with_the_model(ops in ops(30)) {
        run(common::IndexedRedb::default(), &ops);
    }
}

// Each case in a fresh schema of the database at `KEYWARD_PG_URL`; without one, each case says
// it skipped.
#[cfg(feature = "postgres")]
proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn pg_agrees_with_the_model(ops in ops(30)) {
        let Some(h) = common::pg::Pg::new("pg_agrees_with_the_model") else {
            return Ok(());
        };
        run(h, &ops);
    }

    #[test]
    fn indexed_pg_agrees_with_the_model(ops in ops(30)) {
        let Some(h) = common::pg::IndexedPg::new("indexed_pg_agrees_with_the_model") else {
            return Ok(());
        };
        run(h, &ops);
    }
}

/// Operations on an `IndexedStore` over a shared backend that is also written directly
/// ("another process").
#[derive(Debug, Clone)]
enum SharedOp {
    /// Create through the index.
    Create,
    /// Create directly on the backend.
    CreateDirect,
    /// Probe a tag no credential has yet (the negative cache learns it), then create a
    /// credential with it through the index: the index must find it at once.
    ProbeThenCreate,
    /// The same, created directly on the backend: found after a refresh of its id.
    ProbeThenCreateDirect,
    /// Rotate, through the index or directly.
    Rotate(usize, bool),
    /// Revoke every secret, through the index or directly.
    Revoke(usize, bool),
    /// Remove the oldest secret, through the index or directly.
    PurgeOldest(usize, bool),
    /// Delete, through the index or directly.
    Delete(usize, bool),
    /// Probe a tag no one has (populates the negative cache).
    ProbeUnknown,
    /// Refresh one credential changed directly.
    Refresh(usize),
}

fn shared_op() -> impl Strategy<Value = SharedOp> {
    prop_oneof![
        3 => Just(SharedOp::Create),
        2 => Just(SharedOp::CreateDirect),
        2 => Just(SharedOp::ProbeThenCreate),
        1 => Just(SharedOp::ProbeThenCreateDirect),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(i, d)| SharedOp::Rotate(i, d)),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(i, d)| SharedOp::Revoke(i, d)),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(i, d)| SharedOp::PurgeOldest(i, d)),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(i, d)| SharedOp::Delete(i, d)),
        2 => Just(SharedOp::ProbeUnknown),
        3 => any::<usize>().prop_map(SharedOp::Refresh),
    ]
}

/// What the index answers for `tag`: the backend's record of the credential its entry names,
/// if the entry is exactly what the index installs for that record (every copied field equal).
/// A lagging entry (the record changed behind the index's back) gives a record it does not
/// describe, reported as `Err` with the record.
fn probe(index: &IndexedStore, tag: &LookupTag) -> Option<Credential> {
    let entry = index.with_lookup(tag, |e| e.cloned()).unwrap()?;
    let Some(cred) = index.backend().get(entry.id()).unwrap() else {
        return Some(ghost(entry.id()));
    };
    match cred.secret_by_lookup(tag) {
        Some(s) if entry.describes(&cred, s) => Some(cred),
        _ => Some(ghost(entry.id())),
    }
}

/// Stands for an index entry that no longer describes the backend's record of `id`: a
/// credential no model holds (no secrets), so comparing it with the model fails.
fn ghost(id: &CredentialId) -> Credential {
    let mut c = new_credential(0, 0, 0);
    c.id = id.clone();
    c.secrets.clear();
    c
}

fn run_shared(ops: &[SharedOp]) {
    let backend = Arc::new(MemoryStore::shared());
    run_shared_on(Box::new(Arc::clone(&backend)), &*backend, ops);
}

/// [`run_shared`] with the index over `indexed` and the direct writes and checks on `backend`:
/// the same store, or another handle on it (another `PgStore` on the same schema, as another
/// process would have).
fn run_shared_on(indexed: Box<dyn Store>, backend: &dyn Store, ops: &[SharedOp]) {
    let index = IndexedStore::open(indexed).unwrap();
    let mut model = Model::default();
    // Credentials changed directly and not refreshed since: the index may lag on them.
    let mut stale: BTreeSet<CredentialId> = BTreeSet::new();
    // Owner of each gone tag when it went.
    let mut gone_from: BTreeMap<LookupTag, CredentialId> = BTreeMap::new();
    for op in ops {
        // Write through the index (`false`) or directly on the backend (`true`).
        let write = |c: &Credential, direct: bool| -> Credential {
            if direct {
                conformance::put(backend, c)
            } else {
                (*index.put(c.clone()).unwrap()).clone()
            }
        };
        match op {
            SharedOp::Create | SharedOp::CreateDirect => {
                let direct = matches!(op, SharedOp::CreateDirect);
                let c = write(&new_credential(1, 1, 1), direct);
                model.creds.insert(c.id.clone(), c);
            }
            SharedOp::ProbeThenCreate | SharedOp::ProbeThenCreateDirect => {
                let c = new_credential(2, 0, 2);
                let tag = c.secrets[0].lookup;
                assert_eq!(probe(&index, &tag), None);
                assert_eq!(probe(&index, &tag), None);
                let direct = matches!(op, SharedOp::ProbeThenCreateDirect);
                let c = write(&c, direct);
                if direct {
                    // Another process's write: the negative cache may hide it until refresh.
                    index.refresh(&c.id).unwrap();
                }
                assert_eq!(probe(&index, &tag).as_ref(), Some(&c));
                model.creds.insert(c.id.clone(), c);
            }
            SharedOp::Rotate(i, direct) => {
                if let Some(mut c) = model.pick(*i) {
                    conformance::rotate(&mut c);
                    let c = write(&c, *direct);
                    if *direct {
                        stale.insert(c.id.clone());
                    }
                    model.creds.insert(c.id.clone(), c);
                }
            }
            SharedOp::Revoke(i, direct) => {
                if let Some(mut c) = model.pick(*i) {
                    for s in &mut c.secrets {
                        s.revoked_at.get_or_insert(Timestamp::now());
                    }
                    let c = write(&c, *direct);
                    if *direct {
                        stale.insert(c.id.clone());
                    }
                    model.creds.insert(c.id.clone(), c);
                }
            }
            SharedOp::PurgeOldest(i, direct) => {
                if let Some(mut c) = model.pick(*i)
                    && c.secrets.len() > 1
                {
                    let old = c.secrets.remove(0);
                    let c = write(&c, *direct);
                    if *direct {
                        stale.insert(c.id.clone());
                    }
                    model.gone.insert(old.lookup);
                    gone_from.insert(old.lookup, c.id.clone());
                    model.creds.insert(c.id.clone(), c);
                }
            }
            SharedOp::Delete(i, direct) => {
                if let Some(c) = model.pick(*i) {
                    if *direct {
                        backend.delete(&c.id, c.revision).unwrap();
                        stale.insert(c.id.clone());
                    } else {
                        index.delete(&c.id, c.revision).unwrap();
                    }
                    for t in conformance::tags(&c) {
                        model.gone.insert(t);
                        gone_from.insert(t, c.id.clone());
                    }
                    model.creds.remove(&c.id);
                }
            }
            SharedOp::ProbeUnknown => {
                let c = new_credential(0, 0, 0);
                assert_eq!(probe(&index, &c.secrets[0].lookup), None);
            }
            SharedOp::Refresh(i) => {
                if !stale.is_empty() {
                    let id = stale.iter().nth(i % stale.len()).unwrap().clone();
                    let got = index.refresh(&id).unwrap();
                    assert_eq!(got.as_deref(), model.creds.get(&id));
                    stale.remove(&id);
                }
            }
        }
        // The backend is the truth.
        conformance::assert_matches_model(backend, &model.creds, &model.gone);
        // The index agrees on everything not changed behind its back.
        for c in model.creds.values().filter(|c| !stale.contains(&c.id)) {
            for t in conformance::tags(c) {
                assert_eq!(probe(&index, &t).as_ref(), Some(c), "{t} of {}", c.id);
            }
            assert_eq!(index.get(&c.id).unwrap().as_deref(), Some(c));
        }
        // A gone tag never comes back (tags are fresh random values).
        for (t, owner) in &gone_from {
            if !stale.contains(owner) {
                assert_eq!(probe(&index, t), None, "gone tag {t} of {owner}");
            }
        }
        // Reading a stale id refreshes it (get on a shared backend goes to the backend).
        if let Some(id) = stale.iter().next().cloned() {
            assert_eq!(index.get(&id).unwrap().as_deref(), model.creds.get(&id));
            stale.remove(&id);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn indexed_shared_memory_agrees_with_the_model(ops in proptest::collection::vec(shared_op(), 1..40)) {
        run_shared(&ops);
    }
}

// The index over one `PgStore` while a second `PgStore` on the same schema (another process)
// writes behind its back; each case in a fresh schema.
#[cfg(feature = "postgres")]
proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn indexed_shared_pg_agrees_with_the_model(ops in proptest::collection::vec(shared_op(), 1..30)) {
        let Some(mut h) = common::pg::Pg::new("indexed_shared_pg_agrees_with_the_model") else {
            return Ok(());
        };
        let indexed = h.fresh();
        let other = h.open();
        run_shared_on(Box::new(indexed), &other, &ops);
    }
}
