//! The conformance suite every [`Store`] backend must pass, and fixtures to build credentials.
//! Enabled by the `conformance` cargo feature; test-only code (it panics on failure).
//!
//! It lives in the library, not in `tests/`, so that a backend in another crate (PostgreSQL,
//! later) runs exactly the same cases: implement [`Harness`] and write
//!
//! ```ignore
//! mod postgres {
//!     keyward_store::conformance_tests!(PgHarness::new());
//! }
//! ```
//!
//! which expands to one `#[test]` per case.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Barrier;

use keyward_core::{
    AccountId, Credential, CredentialId, Environment, KeyFormat, KeyType, LookupTag, Metadata,
    Name, Pepper, PermissionSet, PlaintextKey, SecretVersion, Timestamp, random_id,
};

use crate::{AuditEntry, Change, EVENT_PAGE_MAX, ListQuery, Store, StoreError};

/// Makes stores for the suite.
pub trait Harness {
    /// The backend under test.
    type Store: Store;

    /// A new, empty store.
    fn fresh(&mut self) -> Self::Store;

    /// Closes `store` and opens it again from where it keeps its data; `None` for a backend
    /// that keeps nothing (then the reopen case checks nothing).
    fn reopen(&mut self, store: Self::Store) -> Option<Self::Store> {
        drop(store);
        None
    }
}

/// The pepper fixtures use.
pub fn pepper() -> Pepper {
    Pepper::from_bytes([0x5a; 32])
}

/// A credential with one fresh secret, and that secret's plaintext key.
pub fn issue(
    account: &str,
    environment: Environment,
    key_type: KeyType,
) -> (Credential, PlaintextKey) {
    let now = Timestamp::now();
    let generated = KeyFormat::default()
        .generate(key_type, &environment, &pepper())
        .unwrap();
    let permissions = if key_type == KeyType::Restricted {
        PermissionSet::parse(["business:read"]).unwrap()
    } else {
        PermissionSet::new()
    };
    let cred = Credential {
        id: random_id().unwrap(),
        account: account.parse().unwrap(),
        environment,
        key_type,
        name: "conformance key".parse::<Name>().unwrap(),
        permissions,
        metadata: Metadata::new(),
        created_at: now,
        modified_at: now,
        expires_at: None,
        enabled: true,
        revision: 0,
        secrets: vec![SecretVersion {
            version: 1,
            lookup: generated.lookup,
            digest: generated.digest,
            not_before: now,
            not_after: None,
            created_at: now,
            revoked_at: None,
        }],
    };
    (cred, generated.key)
}

/// A production secret-key credential of `account` (not yet stored: revision 0).
pub fn credential(account: &str) -> Credential {
    issue(account, Environment::Production, KeyType::Secret).0
}

/// Adds a new secret version to `cred` (a rotation that keeps the old one) and returns its key.
pub fn rotate(cred: &mut Credential) -> PlaintextKey {
    let now = Timestamp::now();
    let generated = KeyFormat::default()
        .generate(cred.key_type, &cred.environment, &pepper())
        .unwrap();
    let version = cred.secrets.iter().map(|s| s.version).max().unwrap_or(0) + 1;
    cred.secrets.push(SecretVersion {
        version,
        lookup: generated.lookup,
        digest: generated.digest,
        not_before: now,
        not_after: None,
        created_at: now,
        revoked_at: None,
    });
    cred.modified_at = now;
    generated.key
}

/// Every lookup tag of `cred`.
pub fn tags(cred: &Credential) -> Vec<LookupTag> {
    cred.secrets.iter().map(|s| s.lookup).collect()
}

/// Writes `cred` and returns it as stored (with its new revision).
pub fn put<S: Store + ?Sized>(store: &S, cred: &Credential) -> Credential {
    let revision = store.put(cred).unwrap();
    assert_eq!(revision, cred.revision + 1, "put returns the new revision");
    let mut stored = cred.clone();
    stored.revision = revision;
    stored
}

/// Every record, by id, via [`Store::scan`] (panics on an undecodable one).
pub fn scan_all<S: Store + ?Sized>(store: &S) -> BTreeMap<CredentialId, Credential> {
    let mut all = BTreeMap::new();
    store
        .scan(&mut |r| {
            let c = r.unwrap();
            assert!(
                all.insert(c.id.clone(), c).is_none(),
                "scan visits a record twice"
            );
        })
        .unwrap();
    all
}

/// Every credential `query` selects, following pages of `query.limit`; checks that pages are
/// ordered by id, without duplicates, and that only the last page has no `next`.
pub fn list_all<S: Store + ?Sized>(store: &S, query: &ListQuery) -> Vec<Credential> {
    let mut q = query.clone();
    let mut out: Vec<Credential> = Vec::new();
    loop {
        let page = store.list(&q).unwrap();
        assert!(
            page.items.len() <= q.page_size(),
            "page larger than its limit"
        );
        for c in &page.items {
            assert!(
                query.matches(c),
                "list returned {} that its filters exclude",
                c.id
            );
            if let Some(last) = out.last() {
                assert!(last.id < c.id, "list not in strictly increasing id order");
            }
            out.push(c.clone());
        }
        match page.next {
            Some(next) => {
                assert_eq!(
                    page.items.len(),
                    q.page_size(),
                    "a page with `next` must be full"
                );
                assert_eq!(Some(&next), page.items.last().map(|c| &c.id));
                q.after = Some(next);
            }
            None => return out,
        }
    }
}

/// Checks the store against `model` (id → credential as stored): every record readable by id,
/// every secret findable by its lookup tag, scan and listing (all, per account) exactly the
/// model, and each tag of `gone` (no longer in any credential) found nowhere.
pub fn assert_matches_model<S: Store + ?Sized>(
    store: &S,
    model: &BTreeMap<CredentialId, Credential>,
    gone: &BTreeSet<LookupTag>,
) {
    assert_eq!(&scan_all(store), model, "scan differs from the model");
    for (id, cred) in model {
        assert_eq!(store.get(id).unwrap().as_ref(), Some(cred), "get({id})");
        for tag in tags(cred) {
            assert_eq!(
                store.find_by_lookup(&tag).unwrap().as_ref(),
                Some(cred),
                "find_by_lookup({tag}) of {id}"
            );
        }
    }
    for tag in gone {
        assert_eq!(
            store.find_by_lookup(tag).unwrap(),
            None,
            "removed tag {tag} still found"
        );
    }
    let all: Vec<Credential> = model.values().cloned().collect();
    let q = ListQuery {
        limit: 3,
        ..ListQuery::default()
    };
    assert_eq!(list_all(store, &q), all, "list of everything");
    let accounts: BTreeSet<&AccountId> = model.values().map(|c| &c.account).collect();
    for account in accounts {
        let q = ListQuery {
            account: Some(account.clone()),
            limit: 2,
            ..ListQuery::default()
        };
        let expected: Vec<Credential> = all
            .iter()
            .filter(|c| c.account == *account)
            .cloned()
            .collect();
        assert_eq!(list_all(store, &q), expected, "list of account {account}");
    }
}

/// Checks that the indexes agree with the records, whatever they hold: every secret's tag finds
/// its credential, and every credential is listed under its account.
pub fn assert_indexes_consistent<S: Store + ?Sized>(store: &S) {
    let all = scan_all(store);
    assert_matches_model(store, &all, &BTreeSet::new());
}

fn conflict_found(r: Result<u64, StoreError>) -> Option<u64> {
    match r {
        Err(StoreError::Conflict { found, .. }) => found,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

/// Create, read, update, conditional failures, delete, re-create.
pub fn crud<H: Harness>(h: &mut H) {
    let s = h.fresh();
    let cred = credential("acc_crud");
    assert_eq!(s.get(&cred.id).unwrap(), None);
    let stored = put(&s, &cred);
    assert_eq!(stored.revision, 1);
    assert_eq!(s.get(&cred.id).unwrap(), Some(stored.clone()));

    let mut update = stored.clone();
    update.name = "renamed".parse().unwrap();
    update.enabled = false;
    let updated = put(&s, &update);
    assert_eq!(updated.revision, 2);
    assert_eq!(s.get(&cred.id).unwrap(), Some(updated.clone()));

    // Stale, future and "create" revisions all lose, and change nothing.
    assert_eq!(conflict_found(s.put(&update)), Some(2));
    let mut future = updated.clone();
    future.revision = 7;
    assert_eq!(conflict_found(s.put(&future)), Some(2));
    let mut recreate = updated.clone();
    recreate.revision = 0;
    assert_eq!(conflict_found(s.put(&recreate)), Some(2));
    let mut unknown = credential("acc_crud");
    unknown.revision = 3;
    assert_eq!(conflict_found(s.put(&unknown)), None);
    assert_eq!(s.get(&unknown.id).unwrap(), None);
    assert_eq!(s.get(&cred.id).unwrap(), Some(updated.clone()));

    // Delete is conditional too.
    assert!(matches!(
        s.delete(&cred.id, 1),
        Err(StoreError::Conflict { found: Some(2), .. })
    ));
    s.delete(&cred.id, 2).unwrap();
    assert_eq!(s.get(&cred.id).unwrap(), None);
    assert!(matches!(
        s.delete(&cred.id, 2),
        Err(StoreError::Conflict { found: None, .. })
    ));

    // The id can be created again, from revision 0.
    let again = put(&s, &cred);
    assert_eq!(again.revision, 1);
    let mut model = BTreeMap::new();
    model.insert(again.id.clone(), again);
    assert_matches_model(&s, &model, &BTreeSet::new());
}

/// The lookup index follows rotations, secret removal and deletes.
pub fn lookup_index<H: Harness>(h: &mut H) {
    let s = h.fresh();
    let mut gone = BTreeSet::new();
    let mut model = BTreeMap::new();
    let other = put(&s, &credential("acc_other"));
    model.insert(other.id.clone(), other);

    let mut cred = put(&s, &credential("acc_lookup"));
    let first = cred.secrets[0].lookup;
    model.insert(cred.id.clone(), cred.clone());
    assert_matches_model(&s, &model, &gone);

    rotate(&mut cred);
    rotate(&mut cred);
    cred = put(&s, &cred);
    model.insert(cred.id.clone(), cred.clone());
    assert_eq!(cred.secrets.len(), 3);
    assert_matches_model(&s, &model, &gone);

    // Purge the oldest secret: its tag must stop resolving, the others keep working.
    cred.secrets.remove(0);
    cred = put(&s, &cred);
    gone.insert(first);
    model.insert(cred.id.clone(), cred.clone());
    assert_matches_model(&s, &model, &gone);

    // Revoking a secret is a record change only: it is still found (and refused later).
    cred.secrets[0].revoked_at = Some(Timestamp::now());
    cred = put(&s, &cred);
    model.insert(cred.id.clone(), cred.clone());
    assert_matches_model(&s, &model, &gone);

    s.delete(&cred.id, cred.revision).unwrap();
    model.remove(&cred.id);
    gone.extend(tags(&cred));
    assert_matches_model(&s, &model, &gone);

    let (unknown, _) = issue("acc_lookup", Environment::Test, KeyType::Publishable);
    assert_eq!(s.find_by_lookup(&unknown.secrets[0].lookup).unwrap(), None);
}

/// The account index: exact per account (no prefix leaks), follows account changes and deletes.
pub fn account_index<H: Harness>(h: &mut H) {
    let s = h.fresh();
    let mut model = BTreeMap::new();
    // "ac", "acc", "acc2", "acc~": prefixes of each other and neighbours in byte order.
    for account in ["ac", "acc", "acc2", "acc~", "b"] {
        for _ in 0..3 {
            let c = put(&s, &credential(account));
            model.insert(c.id.clone(), c);
        }
    }
    assert_matches_model(&s, &model, &BTreeSet::new());
    let empty = ListQuery {
        account: Some("nobody".parse().unwrap()),
        ..ListQuery::default()
    };
    assert!(list_all(&s, &empty).is_empty());

    // Move one credential to another account.
    let mut moved = model
        .values()
        .find(|c| c.account.as_str() == "acc")
        .unwrap()
        .clone();
    moved.account = "b".parse().unwrap();
    let moved = put(&s, &moved);
    model.insert(moved.id.clone(), moved.clone());
    assert_matches_model(&s, &model, &BTreeSet::new());

    s.delete(&moved.id, moved.revision).unwrap();
    model.remove(&moved.id);
    assert_matches_model(&s, &model, &BTreeSet::new());
}

/// Paging: stable id order, no duplicates or omissions across pages, filters, clamped limits,
/// a cursor whose credential has been deleted.
pub fn paging<H: Harness>(h: &mut H) {
    let s = h.fresh();
    let envs = [
        Environment::Production,
        Environment::Test,
        "staging".parse().unwrap(),
    ];
    let mut all = Vec::new();
    for i in 0..47_usize {
        let account = ["acc_a", "acc_b"][i % 2];
        let (c, _) = issue(account, envs[i % 3].clone(), KeyType::ALL[(i / 3) % 3]);
        all.push(put(&s, &c));
    }
    all.sort_by(|a, b| a.id.cmp(&b.id));
    let accounts = [None, Some("acc_a"), Some("acc_b"), Some("acc_none")];
    let envs_q = [
        None,
        Some(Environment::Test),
        Some("staging".parse().unwrap()),
    ];
    let types = [None, Some(KeyType::Secret), Some(KeyType::Restricted)];
    for account in accounts {
        for env in &envs_q {
            for key_type in types {
                for limit in [1, 4, 1000] {
                    let q = ListQuery {
                        account: account.map(|a| a.parse().unwrap()),
                        environment: env.clone(),
                        key_type,
                        after: None,
                        limit,
                    };
                    let expected: Vec<Credential> =
                        all.iter().filter(|c| q.matches(c)).cloned().collect();
                    assert_eq!(list_all(&s, &q), expected, "{q:?}");
                }
            }
        }
    }
    // Limits are clamped to 1..=1000.
    let q = ListQuery {
        limit: 0,
        ..ListQuery::default()
    };
    let page = s.list(&q).unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.next.as_ref(), Some(&all[0].id));
    let q = ListQuery {
        limit: usize::MAX,
        ..ListQuery::default()
    };
    let page = s.list(&q).unwrap();
    assert_eq!(page.items, all);
    assert_eq!(page.next, None);

    // Exactly one full page: no `next`.
    let q = ListQuery {
        limit: all.len(),
        ..ListQuery::default()
    };
    assert_eq!(s.list(&q).unwrap().next, None);

    // The cursor's own credential is deleted between pages: the listing continues after it.
    for account in [None, Some("acc_a")] {
        let q = ListQuery {
            account: account.map(|a| a.parse().unwrap()),
            limit: 5,
            ..ListQuery::default()
        };
        let first = s.list(&q).unwrap();
        let cursor = first.next.clone().unwrap();
        let victim = first.items.last().unwrap();
        s.delete(&victim.id, victim.revision).unwrap();
        all.retain(|c| c.id != victim.id);
        let rest = list_all(
            &s,
            &ListQuery {
                after: Some(cursor.clone()),
                ..q.clone()
            },
        );
        let expected: Vec<Credential> = all
            .iter()
            .filter(|c| c.id > cursor && q.matches(c))
            .cloned()
            .collect();
        assert_eq!(rest, expected);
    }
}

/// Conditional writes under two threads: of two updates (or two creates, or an update and a
/// delete) with the same expected revision, exactly one wins; the other gets a conflict.
pub fn conditional_race<H: Harness>(h: &mut H) {
    let s = h.fresh();
    for round in 0..25 {
        // Two updates.
        let base = put(&s, &credential("acc_race"));
        let barrier = Barrier::new(2);
        let results: Vec<(String, Result<u64, StoreError>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = ["left", "right"]
                .into_iter()
                .map(|name| {
                    let mut mine = base.clone();
                    mine.name = name.parse().unwrap();
                    let (s, barrier) = (&s, &barrier);
                    scope.spawn(move || {
                        barrier.wait();
                        (name.to_owned(), s.put(&mine))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<&String> = results
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(n, _)| n)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        for (_, r) in &results {
            match r {
                Ok(rev) => assert_eq!(*rev, 2),
                Err(StoreError::Conflict {
                    expected: 1,
                    found: Some(2),
                    ..
                }) => {}
                Err(e) => panic!("round {round}: unexpected {e:?}"),
            }
        }
        let stored = s.get(&base.id).unwrap().unwrap();
        assert_eq!(stored.name.as_str(), winners[0].as_str());
        assert_eq!(stored.revision, 2);

        // Two creates of one id.
        let fresh = credential("acc_race");
        let barrier = Barrier::new(2);
        let created: Vec<Result<u64, StoreError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let (s, barrier, fresh) = (&s, &barrier, &fresh);
                    scope.spawn(move || {
                        barrier.wait();
                        s.put(fresh)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            created.iter().filter(|r| r.is_ok()).count(),
            1,
            "{created:?}"
        );

        // An update against a delete.
        let barrier = Barrier::new(2);
        let (updated, deleted) = std::thread::scope(|scope| {
            let mut mine = stored.clone();
            mine.enabled = false;
            let (s, b) = (&s, &barrier);
            let u = scope.spawn(move || {
                b.wait();
                s.put(&mine)
            });
            let d = scope.spawn(move || {
                b.wait();
                s.delete(&stored.id, stored.revision)
            });
            (u.join().unwrap(), d.join().unwrap())
        });
        assert!(
            updated.is_ok() != deleted.is_ok(),
            "update {updated:?}, delete {deleted:?}"
        );
        match s.get(&base.id).unwrap() {
            Some(c) => assert!(updated.is_ok() && !c.enabled),
            None => assert!(deleted.is_ok()),
        }
    }
    assert_indexes_consistent(&s);
}

/// A lookup tag belongs to one credential: a write that would share it fails and changes
/// nothing.
pub fn duplicate_lookup<H: Harness>(h: &mut H) {
    let s = h.fresh();
    let a = put(&s, &credential("acc_dup"));
    let tag = a.secrets[0].lookup;

    // A new credential claiming a's tag.
    let mut b = credential("acc_dup2");
    b.secrets.push(a.secrets[0].clone());
    b.secrets[1].version = 2;
    assert!(
        matches!(s.put(&b), Err(StoreError::DuplicateLookup { lookup }) if lookup == tag),
        "create with a taken tag"
    );
    assert_eq!(s.get(&b.id).unwrap(), None);

    // An existing credential claiming it.
    b.secrets.pop();
    let b = put(&s, &b);
    let mut b2 = b.clone();
    b2.secrets.push(a.secrets[0].clone());
    assert!(matches!(
        s.put(&b2),
        Err(StoreError::DuplicateLookup { .. })
    ));
    assert_eq!(s.get(&b.id).unwrap(), Some(b.clone()));
    assert_eq!(s.find_by_lookup(&tag).unwrap(), Some(a.clone()));

    // Once a drops the tag, b may take it.
    let mut a2 = a.clone();
    rotate(&mut a2);
    a2.secrets.remove(0);
    let a2 = put(&s, &a2);
    let b2 = put(&s, &b2);
    assert_eq!(s.find_by_lookup(&tag).unwrap(), Some(b2.clone()));
    let mut model = BTreeMap::new();
    model.insert(a2.id.clone(), a2);
    model.insert(b2.id.clone(), b2);
    assert_matches_model(&s, &model, &BTreeSet::new());
}

/// Delete removes the record and every index entry, and frees its tags.
pub fn delete<H: Harness>(h: &mut H) {
    let s = h.fresh();
    let keep = put(&s, &credential("acc_del"));
    let mut victim = credential("acc_del");
    rotate(&mut victim);
    let victim = put(&s, &victim);
    s.delete(&victim.id, victim.revision).unwrap();
    let mut model = BTreeMap::new();
    model.insert(keep.id.clone(), keep.clone());
    let gone: BTreeSet<LookupTag> = tags(&victim).into_iter().collect();
    assert_matches_model(&s, &model, &gone);

    // Its tags are free for another credential.
    let mut heir = credential("acc_del");
    heir.secrets = victim.secrets.clone();
    let heir = put(&s, &heir);
    model.insert(heir.id.clone(), heir);
    assert_matches_model(&s, &model, &BTreeSet::new());
}

/// Everything survives a close and reopen, and writes go on from the stored revisions.
pub fn reopen<H: Harness>(h: &mut H) {
    let s = h.fresh();
    let mut model = BTreeMap::new();
    let mut gone = BTreeSet::new();
    for i in 0..20 {
        let mut c = put(&s, &credential(["acc_r1", "acc_r2"][i % 2]));
        if i % 3 == 0 {
            rotate(&mut c);
            c = put(&s, &c);
        }
        if i % 5 == 0 {
            gone.extend(tags(&c));
            s.delete(&c.id, c.revision).unwrap();
        } else {
            model.insert(c.id.clone(), c);
        }
    }
    assert_matches_model(&s, &model, &gone);
    let Some(s) = h.reopen(s) else {
        return;
    };
    assert_matches_model(&s, &model, &gone);
    let mut c = model.values().next().unwrap().clone();
    assert!(matches!(s.put(&model[&c.id]), Ok(r) if r == c.revision + 1));
    c.revision += 1;
    rotate(&mut c);
    let c = put(&s, &c);
    model.insert(c.id.clone(), c);
    let s = h.reopen(s).unwrap();
    assert_matches_model(&s, &model, &gone);
}

/// How many credentials [`scan_is_a_snapshot`] stores: enough to span several pages of a
/// B-tree backend, whose iterator may hold one page as of when it read it.
const SCAN_CASE_SIZE: usize = 150;

/// A scan is a consistent snapshot: two writes made while it runs (a credential created
/// before the scan's position in id order, then the last one deleted) are seen both or
/// neither, never only the delete.
pub fn scan_is_a_snapshot<H: Harness>(h: &mut H) {
    let s = h.fresh();
    let mut creds: Vec<Credential> = (0..=SCAN_CASE_SIZE)
        .map(|_| credential("acc_scan"))
        .collect();
    creds.sort_by(|a, b| a.id.cmp(&b.id));
    // The first in id order is created during the scan; the others are there before it.
    let low = creds.remove(0);
    let stored: Vec<Credential> = creds.iter().map(|c| put(&s, c)).collect();
    let high = stored.last().unwrap().clone();
    let before: BTreeSet<CredentialId> = stored.iter().map(|c| c.id.clone()).collect();
    let mut after = before.clone();
    after.remove(&high.id);
    after.insert(low.id.clone());

    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let mut seen = BTreeSet::new();
    std::thread::scope(|scope| {
        s.scan(&mut |r| {
            let c = r.unwrap();
            if seen.is_empty() {
                let (s, low, high, done_tx) = (&s, &low, &high, done_tx.clone());
                scope.spawn(move || {
                    s.put(low).unwrap();
                    s.delete(&high.id, high.revision).unwrap();
                    done_tx.send(()).unwrap();
                });
                // Give the writes the time to land in the middle of the scan, unless the
                // backend makes them wait for it (then this times out).
                let _ = done_rx.recv_timeout(std::time::Duration::from_millis(200));
            }
            seen.insert(c.id);
        })
        .unwrap();
    });
    assert!(
        seen == before || seen == after,
        "the scan saw {} credentials, {} of them created during it, {} deleted during it; \
         a snapshot sees both writes or neither",
        seen.len(),
        usize::from(seen.contains(&low.id)),
        usize::from(!seen.contains(&high.id)),
    );
    let mut model: BTreeMap<CredentialId, Credential> =
        stored.into_iter().map(|c| (c.id.clone(), c)).collect();
    model.remove(&high.id);
    let mut low = low;
    low.revision = 1;
    model.insert(low.id.clone(), low);
    let gone: BTreeSet<LookupTag> = tags(&high).into_iter().collect();
    assert_matches_model(&s, &model, &gone);
}

// ----- the audit log -------------------------------------------------------------------------

/// An audit entry with sequence number `seq` and bytes naming it (`bytes` are opaque to a
/// store: any bytes, of any length, come back as they were written).
pub fn event(seq: u64) -> AuditEntry {
    let mut bytes = format!("event {seq}").into_bytes();
    // Some longer than a small inline value, one empty.
    if seq.is_multiple_of(7) {
        bytes.resize(3000, u8::try_from(seq % 251).unwrap());
    }
    if seq == 5 {
        bytes.clear();
    }
    AuditEntry { seq, bytes }
}

/// The whole audit log, following pages of `page` events; checks that sequence numbers
/// ascend.
pub fn all_events<S: Store + ?Sized>(store: &S, page: usize) -> Vec<AuditEntry> {
    let mut out: Vec<AuditEntry> = Vec::new();
    let mut after = 0;
    loop {
        let got = store.events(after, page).unwrap();
        assert!(got.len() <= page.max(1), "a page larger than its limit");
        for e in &got {
            assert!(e.seq > after, "events not in ascending order");
            after = e.seq;
        }
        if got.is_empty() {
            return out;
        }
        out.extend(got);
    }
}

fn event_conflict(r: Result<(), StoreError>) -> (u64, u64) {
    match r {
        Err(StoreError::EventConflict { expected, found }) => (expected, found),
        other => panic!("expected an event conflict, got {other:?}"),
    }
}

/// Events append in sequence only (1, 2, …; a repeated, skipped or zero sequence number is
/// [`StoreError::EventConflict`] and writes nothing), page in ascending order, and come back
/// byte for byte.
pub fn events_in_order<H: Harness>(h: &mut H) {
    let s = h.fresh();
    assert_eq!(s.last_event().unwrap(), None);
    assert!(s.events(0, 10).unwrap().is_empty());
    assert_eq!(event_conflict(s.append_event(&event(2))), (1, 0));
    assert_eq!(event_conflict(s.append_event(&event(0))), (0, 0));
    let mut model = Vec::new();
    for seq in 1..=25u64 {
        if seq.is_multiple_of(3) {
            // With a credential write.
            let cred = credential("acc_events");
            s.commit(&Change::put(&cred).with_event(&event(seq)))
                .unwrap();
        } else {
            s.append_event(&event(seq)).unwrap();
        }
        model.push(event(seq));
        assert_eq!(s.last_event().unwrap().as_ref(), Some(&event(seq)));
    }
    assert_eq!(event_conflict(s.append_event(&event(25))), (24, 25));
    assert_eq!(event_conflict(s.append_event(&event(27))), (26, 25));
    assert_eq!(event_conflict(s.append_event(&event(3))), (2, 25));
    assert_eq!(all_events(&s, 4), model);
    assert_eq!(all_events(&s, 1000), model);
    // Pages start after `after`; a limit is clamped to 1–EVENT_PAGE_MAX.
    assert_eq!(s.events(10, 3).unwrap(), model[10..13].to_vec());
    assert_eq!(s.events(0, 0).unwrap(), model[..1].to_vec());
    assert_eq!(
        s.events(0, usize::MAX).unwrap().len(),
        25.min(EVENT_PAGE_MAX)
    );
    assert!(s.events(25, 10).unwrap().is_empty());
    assert!(s.events(u64::MAX, 10).unwrap().is_empty());
    assert_eq!(s.last_event().unwrap(), Some(event(25)));
}

/// A change and its event are one write: a refused credential write (revision conflict,
/// duplicate lookup tag) writes no event, and a refused event (wrong sequence number) writes
/// no credential change.
pub fn events_are_atomic_with_their_change<H: Harness>(h: &mut H) {
    let s = h.fresh();
    let mut model = BTreeMap::new();
    let a = credential("acc_atomic");
    s.commit(&Change::put(&a).with_event(&event(1))).unwrap();
    let mut a = a;
    a.revision = 1;
    model.insert(a.id.clone(), a.clone());

    // A stale revision: no event.
    let mut stale = a.clone();
    stale.revision = 0;
    assert!(matches!(
        s.commit(&Change::put(&stale).with_event(&event(2))),
        Err(StoreError::Conflict { .. })
    ));
    // A lookup tag held by another credential: no event, no credential.
    let mut thief = credential("acc_atomic");
    thief.secrets[0].lookup = a.secrets[0].lookup;
    assert!(matches!(
        s.commit(&Change::put(&thief).with_event(&event(2))),
        Err(StoreError::DuplicateLookup { .. })
    ));
    // A delete at the wrong revision: no event.
    assert!(matches!(
        s.commit(&Change::delete(&a.id, 7).with_event(&event(2))),
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(s.last_event().unwrap(), Some(event(1)));
    assert_matches_model(&s, &model, &BTreeSet::new());

    // A valid put or delete with an event that does not continue the log: nothing changes.
    let mut rotated = a.clone();
    rotate(&mut rotated);
    let new_tags: BTreeSet<LookupTag> = tags(&rotated)
        .into_iter()
        .filter(|t| !tags(&a).contains(t))
        .collect();
    for wrong in [1, 3] {
        assert!(matches!(
            s.commit(&Change::put(&rotated).with_event(&event(wrong))),
            Err(StoreError::EventConflict { found: 1, .. })
        ));
        assert!(matches!(
            s.commit(&Change::delete(&a.id, 1).with_event(&event(wrong))),
            Err(StoreError::EventConflict { found: 1, .. })
        ));
        let fresh = credential("acc_atomic");
        assert!(matches!(
            s.commit(&Change::put(&fresh).with_event(&event(wrong))),
            Err(StoreError::EventConflict { .. })
        ));
        assert_eq!(s.get(&fresh.id).unwrap(), None);
    }
    assert_matches_model(&s, &model, &new_tags);
    assert_eq!(s.last_event().unwrap(), Some(event(1)));

    // The same writes with the right event go through, each with its event.
    s.commit(&Change::put(&rotated).with_event(&event(2)))
        .unwrap();
    rotated.revision = 2;
    model.insert(rotated.id.clone(), rotated.clone());
    assert_matches_model(&s, &model, &BTreeSet::new());
    s.commit(&Change::delete(&a.id, 2).with_event(&event(3)))
        .unwrap();
    model.clear();
    assert_matches_model(&s, &model, &tags(&rotated).into_iter().collect());
    assert_eq!(all_events(&s, 10), vec![event(1), event(2), event(3)]);
    // Writes without an event leave the log alone.
    let b = put(&s, &credential("acc_atomic"));
    model.insert(b.id.clone(), b);
    assert_matches_model(&s, &model, &BTreeSet::new());
    assert_eq!(s.last_event().unwrap(), Some(event(3)));
}

/// Two writers appending the same sequence number: exactly one wins.
pub fn event_race<H: Harness>(h: &mut H) {
    let s = h.fresh();
    let barrier = Barrier::new(2);
    for round in 1..=10 {
        let results: Vec<Result<(), StoreError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..2)
                .map(|i| {
                    let (s, barrier) = (&s, &barrier);
                    scope.spawn(move || {
                        let mut e = event(round);
                        e.bytes.push(i);
                        barrier.wait();
                        if i == 0 {
                            s.append_event(&e)
                        } else {
                            let cred = credential("acc_race");
                            s.commit(&Change::put(&cred).with_event(&e))
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let won = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "round {round}: {results:?}");
        for r in results {
            if let Err(e) = r {
                assert!(matches!(e, StoreError::EventConflict { .. }), "{e:?}");
            }
        }
    }
    let log = all_events(&s, 100);
    assert_eq!(
        log.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    // Exactly the credentials of the winning commits exist.
    let with_credential = log.iter().filter(|e| e.bytes.last() == Some(&1)).count();
    assert_eq!(scan_all(&s).len(), with_credential);
    assert_indexes_consistent(&s);
}

/// Retention: [`Store::trim_events`] removes the oldest events up to a sequence number, never
/// the newest, and the log goes on from its last sequence number.
pub fn events_trim<H: Harness>(h: &mut H) {
    let s = h.fresh();
    assert_eq!(s.trim_events(10).unwrap(), 0);
    for seq in 1..=10 {
        s.append_event(&event(seq)).unwrap();
    }
    assert_eq!(s.trim_events(0).unwrap(), 0);
    assert_eq!(s.trim_events(3).unwrap(), 3);
    assert_eq!(all_events(&s, 4), (4..=10).map(event).collect::<Vec<_>>());
    assert_eq!(s.trim_events(3).unwrap(), 0);
    // Never the newest.
    assert_eq!(s.trim_events(100).unwrap(), 6);
    assert_eq!(all_events(&s, 4), vec![event(10)]);
    assert_eq!(s.last_event().unwrap(), Some(event(10)));
    assert_eq!(event_conflict(s.append_event(&event(1))), (0, 10));
    s.append_event(&event(11)).unwrap();
    assert_eq!(all_events(&s, 4), vec![event(10), event(11)]);
    assert_eq!(s.events(0, 1).unwrap(), vec![event(10)]);
}

/// The audit log survives a close and reopen, with and after a trim, and appends go on.
pub fn events_survive_reopen<H: Harness>(h: &mut H) {
    let s = h.fresh();
    for seq in 1..=30u64 {
        if seq.is_multiple_of(2) {
            let cred = credential("acc_reopen_events");
            s.commit(&Change::put(&cred).with_event(&event(seq)))
                .unwrap();
        } else {
            s.append_event(&event(seq)).unwrap();
        }
    }
    assert_eq!(s.trim_events(12).unwrap(), 12);
    let expected: Vec<AuditEntry> = (13..=30).map(event).collect();
    let Some(s) = h.reopen(s) else {
        return;
    };
    assert_eq!(all_events(&s, 7), expected);
    assert_eq!(s.last_event().unwrap(), Some(event(30)));
    assert_eq!(scan_all(&s).len(), 15);
    assert_eq!(event_conflict(s.append_event(&event(30))), (29, 30));
    s.append_event(&event(31)).unwrap();
    let s = h.reopen(s).unwrap();
    assert_eq!(s.last_event().unwrap(), Some(event(31)));
    assert_eq!(all_events(&s, 100).len(), 19);
}

/// Expands to one `#[test]` per conformance case, each calling it with a fresh harness from
/// `$harness` (an expression of a type implementing [`Harness`]).
#[macro_export]
macro_rules! conformance_tests {
    ($harness:expr) => {
        $crate::conformance_tests!(
            @cases $harness;
            crud, lookup_index, account_index, paging, conditional_race, duplicate_lookup,
            delete, reopen, scan_is_a_snapshot, events_in_order,
            events_are_atomic_with_their_change, event_race, events_trim, events_survive_reopen
        );
    };
    (@cases $harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let mut harness = $harness;
                $crate::conformance::$case(&mut harness);
            }
        )*
    };
}
