//! The write-intent protocol (see the [module documentation](super)): a write's intent, its
//! checked plan of plain sled operations, and the settling of an intent a crash interrupted.

use std::sync::atomic::Ordering;

use keyward_core::{Credential, CredentialId, LookupTag};
use serde::{Deserialize, Serialize};

use super::{PENDING_WRITE_KEY, SledStore, account_key, lossy, sled_err, split_account_key};
use crate::codec::{FORMAT_VERSION, encode_credential};
use crate::{
    AuditEntry, Change, StoreError, Write, check_delete, check_event_seq, check_put_revision,
    event_key, next_revision,
};

/// The write in progress, stored under [`PENDING_WRITE_KEY`] as
/// `[FORMAT_VERSION] ++ postcard(WriteIntent)`: which index entries the write may change, so
/// that a crash in its middle can be settled by looking at those entries only.
#[derive(Debug, Serialize, Deserialize)]
struct WriteIntent {
    /// The credential id.
    id: Vec<u8>,
    /// Every lookup tag whose entry the write may add or remove.
    lookups: Vec<Vec<u8>>,
    /// Every account-index key the write may add or remove.
    accounts: Vec<Vec<u8>>,
    /// The audit event written with the change, if any.
    event: Option<EventIntent>,
}

/// The audit event of a write: it is inserted before the record (the commit point), so after
/// a crash it is kept if the record is the new one and removed if it is the old one.
#[derive(Debug, Serialize, Deserialize)]
struct EventIntent {
    /// The event's key in the `events` tree.
    key: Vec<u8>,
    /// The record's revision once the write has reached its commit point (`None`: a delete,
    /// the record is gone).
    committed: Option<u64>,
}

/// An intent written by a build that predates the audit log: the same fields, no event.
#[derive(Debug, Deserialize)]
struct WriteIntentV1 {
    id: Vec<u8>,
    lookups: Vec<Vec<u8>>,
    accounts: Vec<Vec<u8>>,
}

impl WriteIntent {
    fn encode(&self) -> Result<Vec<u8>, StoreError> {
        postcard::to_extend(self, vec![FORMAT_VERSION]).map_err(|e| StoreError::Backend {
            message: format!("encoding the write intent of {}: {e}", lossy(&self.id)),
        })
    }

    /// `None` if the bytes are not an intent this build (or one before the audit log) wrote.
    /// postcard is not self-describing, but the two shapes cannot be mistaken for each other:
    /// an older intent ends before the `event` field, and a newer one read as an older one
    /// leaves bytes over.
    fn decode(bytes: &[u8]) -> Option<Self> {
        let Some((&FORMAT_VERSION, body)) = bytes.split_first() else {
            return None;
        };
        if let Ok((intent, [])) = postcard::take_from_bytes::<Self>(body) {
            return Some(intent);
        }
        match postcard::take_from_bytes::<WriteIntentV1>(body) {
            Ok((old, [])) => Some(Self {
                id: old.id,
                lookups: old.lookups,
                accounts: old.accounts,
                event: None,
            }),
            _ => None,
        }
    }
}

/// A tree of the store, for [`Step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Meta,
    Records,
    Lookup,
    Accounts,
    Events,
}

/// One plain sled operation of a write: an insert, or a remove when `value` is `None`.
#[derive(Debug)]
struct Step {
    tree: Which,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
}

impl Step {
    fn insert(tree: Which, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Self {
            tree,
            key: key.into(),
            value: Some(value.into()),
        }
    }

    fn remove(tree: Which, key: impl Into<Vec<u8>>) -> Self {
        Self {
            tree,
            key: key.into(),
            value: None,
        }
    }
}

/// A checked write: its intent, and its steps in order (the intent's insert first and its
/// removal last).
#[derive(Debug)]
struct Plan {
    intent: WriteIntent,
    steps: Vec<Step>,
}

impl Plan {
    /// Brackets `body` (the index and record steps, in the order that keeps the record the
    /// commit point) with the intent's insert and removal.
    fn new(intent: WriteIntent, body: Vec<Step>) -> Result<Self, StoreError> {
        let mut steps = Vec::with_capacity(body.len() + 2);
        steps.push(Step::insert(
            Which::Meta,
            PENDING_WRITE_KEY,
            intent.encode()?,
        ));
        steps.extend(body);
        steps.push(Step::remove(Which::Meta, PENDING_WRITE_KEY));
        Ok(Self { intent, steps })
    }
}

impl SledStore {
    /// [`Store::commit`](crate::Store::commit): checks and runs the write under the writer
    /// lock, then makes it durable outside the lock. Every check (the event's sequence number,
    /// the revision, the lookup tags) runs before anything is written.
    pub(super) fn write_change(&self, change: &Change<'_>) -> Result<(), StoreError> {
        if change.write.is_none() && change.event.is_none() {
            return Ok(());
        }
        {
            let _writer = self.lock_writer()?;
            if let Some(event) = change.event {
                check_event_seq(event.seq, self.last_seq()?)?;
            }
            match change.write {
                Some(Write::Put(cred)) => {
                    let revision = next_revision(cred)?;
                    let plan = self.plan_put(cred, revision, change.event)?;
                    self.run_plan(&plan)?;
                }
                Some(Write::Delete { id, revision }) => {
                    let plan = self.plan_delete(id, revision, change.event)?;
                    self.run_plan(&plan)?;
                }
                // One insert: atomic on its own.
                None => {
                    if let Some(event) = change.event {
                        self.events
                            .insert(event_key(event.seq), event.bytes.as_slice())
                            .map_err(|e| sled_err("appending to the audit log", e))?;
                    }
                }
            }
        }
        self.flush()
    }

    /// Settles the intent of a write that a crash interrupted, if there is one (see the module
    /// documentation), and makes the result durable. An intent this build cannot read (damage
    /// that sled's checksums did not catch) is settled by repairing every index.
    pub(super) fn settle_pending(&self) -> Result<(), StoreError> {
        let Some(bytes) = self
            .meta
            .get(PENDING_WRITE_KEY)
            .map_err(|e| sled_err("reading the pending write", e))?
        else {
            return Ok(());
        };
        match WriteIntent::decode(&bytes) {
            Some(intent) => self.settle(&intent)?,
            None => {
                self.repair_indexes()?;
                self.meta
                    .remove(PENDING_WRITE_KEY)
                    .map_err(|e| sled_err("removing the pending write", e))?;
            }
        }
        self.flush()
    }

    /// Makes every index entry `intent` names agree with the record as it is now (whether the
    /// write reached its commit point or not), then removes the intent. Idempotent.
    fn settle(&self, intent: &WriteIntent) -> Result<(), StoreError> {
        let id = intent.id.as_slice();
        let record = match self
            .records
            .get(id)
            .map_err(|e| sled_err("reading records", e))?
        {
            None => None,
            Some(bytes) => match Self::decode(id, &bytes) {
                Ok(c) => Some(c),
                // Cannot tell what it holds: leave its entries (and its event) as they are
                // (an undecodable record is reported and removed on its own, see
                // `remove_undecodable`).
                Err(_) => return self.clear_intent(),
            },
        };
        if let Some(event) = &intent.event {
            let committed = record.as_ref().map(|c| c.revision) == event.committed;
            if !committed {
                // The change did not happen: neither did its event.
                self.events
                    .remove(event.key.as_slice())
                    .map_err(|e| sled_err("settling the audit log", e))?;
            }
        }
        for tag in &intent.lookups {
            let holds = match (&record, LookupTag::new(tag)) {
                (Some(c), Some(t)) => c.secret_by_lookup(&t).is_some(),
                _ => false,
            };
            let entry = self
                .lookup
                .get(tag)
                .map_err(|e| sled_err("reading the lookup index", e))?;
            match entry {
                Some(owner) if owner.as_ref() == id => {
                    if !holds {
                        self.lookup
                            .remove(tag.as_slice())
                            .map_err(|e| sled_err("settling the lookup index", e))?;
                    }
                }
                other => {
                    // The tag was free (or dangling) when the write checked it, and no write
                    // has run since; still, never take a tag from a record that holds it.
                    let taken = match (&other, LookupTag::new(tag)) {
                        (Some(owner), Some(t)) => self.owner_holds(owner, &t)?,
                        _ => false,
                    };
                    if holds && !taken {
                        self.lookup
                            .insert(tag.as_slice(), id)
                            .map_err(|e| sled_err("settling the lookup index", e))?;
                    }
                }
            }
        }
        for key in &intent.accounts {
            let (account, key_id) = split_account_key(key);
            let belongs = key_id == id
                && record
                    .as_ref()
                    .is_some_and(|c| c.account.as_str().as_bytes() == account);
            if belongs {
                self.accounts
                    .insert(key.as_slice(), sled::IVec::default())
                    .map_err(|e| sled_err("settling the account index", e))?;
            } else {
                self.accounts
                    .remove(key.as_slice())
                    .map_err(|e| sled_err("settling the account index", e))?;
            }
        }
        self.clear_intent()
    }

    fn clear_intent(&self) -> Result<(), StoreError> {
        self.meta
            .remove(PENDING_WRITE_KEY)
            .map(drop)
            .map_err(|e| sled_err("removing the pending write", e))
    }

    /// Whether the record `owner` holds `lookup`. An undecodable owner counts as holding it:
    /// refusing a write is safer than stealing a tag.
    fn owner_holds(&self, owner: &[u8], lookup: &LookupTag) -> Result<bool, StoreError> {
        self.record_holds(owner, |c| c.secret_by_lookup(lookup).is_some())
    }

    /// Whether the lookup index maps `lookup` to the record `id` (an entry to remove with it).
    fn lookup_points_to(&self, lookup: &LookupTag, id: &[u8]) -> Result<bool, StoreError> {
        Ok(self
            .lookup
            .get(lookup.as_bytes())
            .map_err(|e| sled_err("reading the lookup index", e))?
            .as_deref()
            == Some(id))
    }

    fn tree(&self, which: Which) -> &sled::Tree {
        match which {
            Which::Meta => &self.meta,
            Which::Records => &self.records,
            Which::Lookup => &self.lookup,
            Which::Accounts => &self.accounts,
            Which::Events => &self.events,
        }
    }

    /// Runs `steps` in order, stopping at the first error.
    fn run_steps(&self, steps: &[Step]) -> Result<(), StoreError> {
        for step in steps {
            let tree = self.tree(step.tree);
            let r = match &step.value {
                Some(v) => tree.insert(step.key.as_slice(), v.as_slice()).map(drop),
                None => tree.remove(step.key.as_slice()).map(drop),
            };
            r.map_err(|e| sled_err("write", e))?;
        }
        Ok(())
    }

    /// Runs a checked write's steps (the caller holds the writer lock). If one fails, the
    /// intent is settled at once, so the store is consistent again whether or not the record
    /// was written; if even that fails, writes refuse until the store is reopened.
    fn run_plan(&self, plan: &Plan) -> Result<(), StoreError> {
        let r = self.run_steps(&plan.steps);
        if r.is_err() && self.settle(&plan.intent).is_err() {
            self.broken.store(true, Ordering::Release);
        }
        r
    }

    /// Reads the stored record of `id` (the caller holds the writer lock).
    fn stored(&self, id: &[u8]) -> Result<Option<Credential>, StoreError> {
        match self
            .records
            .get(id)
            .map_err(|e| sled_err("reading records", e))?
        {
            None => Ok(None),
            Some(bytes) => Self::decode(id, &bytes).map(Some),
        }
    }

    /// Checks a put (revision, unused lookup tags) and lists its steps, with `event` (already
    /// checked) if any; writes nothing. The caller holds the writer lock, so nothing changes
    /// between these reads and the steps.
    fn plan_put(
        &self,
        cred: &Credential,
        revision: u64,
        event: Option<&AuditEntry>,
    ) -> Result<Plan, StoreError> {
        let id = cred.id.as_str().as_bytes();
        let old = self.stored(id)?;
        check_put_revision(cred, old.as_ref().map(|c| c.revision))?;
        for s in &cred.secrets {
            if let Some(owner) = self
                .lookup
                .get(s.lookup.as_bytes())
                .map_err(|e| sled_err("reading the lookup index", e))?
                && owner.as_ref() != id
                && self.owner_holds(&owner, &s.lookup)?
            {
                return Err(StoreError::DuplicateLookup { lookup: s.lookup });
            }
        }
        let mut stored = cred.clone();
        stored.revision = revision;
        let bytes = encode_credential(&stored)?;
        let acct_key = account_key(&cred.account, &cred.id);

        // Entries the new record no longer has, still pointing to it.
        let mut stale_lookups = Vec::new();
        let mut stale_account = None;
        if let Some(old) = &old {
            for s in &old.secrets {
                if cred.secret_by_lookup(&s.lookup).is_none()
                    && self.lookup_points_to(&s.lookup, id)?
                {
                    stale_lookups.push(s.lookup.as_bytes().to_vec());
                }
            }
            if old.account != cred.account {
                stale_account = Some(account_key(&old.account, &old.id));
            }
        }

        let intent = WriteIntent {
            id: id.to_vec(),
            lookups: cred
                .secrets
                .iter()
                .map(|s| s.lookup.as_bytes().to_vec())
                .chain(stale_lookups.iter().cloned())
                .collect(),
            accounts: std::iter::once(acct_key.clone())
                .chain(stale_account.iter().cloned())
                .collect(),
            event: event.map(|e| EventIntent {
                key: event_key(e.seq).to_vec(),
                committed: Some(revision),
            }),
        };
        // New entries and the event, then the record (the commit point), then the stale
        // entries' removal.
        let mut body = Vec::with_capacity(cred.secrets.len() + stale_lookups.len() + 4);
        for s in &cred.secrets {
            body.push(Step::insert(Which::Lookup, s.lookup.as_bytes(), id));
        }
        body.push(Step::insert(Which::Accounts, acct_key, Vec::new()));
        if let Some(e) = event {
            body.push(Step::insert(
                Which::Events,
                event_key(e.seq),
                e.bytes.clone(),
            ));
        }
        body.push(Step::insert(Which::Records, id, bytes));
        for tag in stale_lookups {
            body.push(Step::remove(Which::Lookup, tag));
        }
        if let Some(key) = stale_account {
            body.push(Step::remove(Which::Accounts, key));
        }
        Plan::new(intent, body)
    }

    /// Checks a delete (the stored revision must be `revision`) and lists its steps, with
    /// `event` (already checked) if any; writes nothing. The caller holds the writer lock.
    fn plan_delete(
        &self,
        id: &CredentialId,
        revision: u64,
        event: Option<&AuditEntry>,
    ) -> Result<Plan, StoreError> {
        let key = id.as_str().as_bytes();
        let old = check_delete(id, revision, self.stored(key)?)?;
        let mut lookups = Vec::new();
        for s in &old.secrets {
            if self.lookup_points_to(&s.lookup, key)? {
                lookups.push(s.lookup.as_bytes().to_vec());
            }
        }
        let acct_key = account_key(&old.account, &old.id);
        let intent = WriteIntent {
            id: key.to_vec(),
            lookups: lookups.clone(),
            accounts: vec![acct_key.clone()],
            event: event.map(|e| EventIntent {
                key: event_key(e.seq).to_vec(),
                committed: None,
            }),
        };
        // The event, the record (the commit point), then its entries.
        let mut body = Vec::with_capacity(lookups.len() + 3);
        if let Some(e) = event {
            body.push(Step::insert(
                Which::Events,
                event_key(e.seq),
                e.bytes.clone(),
            ));
        }
        body.push(Step::remove(Which::Records, key));
        for tag in lookups {
            body.push(Step::remove(Which::Lookup, tag));
        }
        body.push(Step::remove(Which::Accounts, acct_key));
        Plan::new(intent, body)
    }
}

#[cfg(test)]
mod tests {
    //! The write-intent protocol, step by step: a crash after any prefix of a write's steps
    //! must reopen to the old credential or the new one with consistent indexes, and readers
    //! in between must see one or the other.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::sled::fixtures::{credential, secret};
    use crate::{ListQuery, Store};

    fn list_account(store: &SledStore, account: &str) -> Vec<CredentialId> {
        let query = ListQuery {
            account: Some(account.parse().unwrap()),
            ..ListQuery::default()
        };
        let page = store.list(&query).unwrap();
        page.items.into_iter().map(|c| c.id).collect()
    }

    /// What a reader sees of `id` through the store's API agrees with exactly one version of
    /// it, `visible` (`None`: absent): the record, every tag of `tags`, both accounts.
    fn assert_reads(store: &SledStore, id: &CredentialId, visible: Option<&Credential>) {
        let got = store.get(id).unwrap();
        assert_eq!(got.as_ref(), visible, "get");
        for tag in TAGS.with(|t| t.borrow().clone()) {
            let found = store.find_by_lookup(&tag).unwrap();
            let expected = visible.filter(|c| c.secret_by_lookup(&tag).is_some());
            assert_eq!(found.as_ref(), expected, "find_by_lookup({tag})");
        }
        for account in ["acct_a", "acct_b"] {
            let listed = list_account(store, account).contains(id);
            let expected = visible.is_some_and(|c| c.account.as_str() == account);
            assert_eq!(listed, expected, "listing {account}");
        }
    }

    std::thread_local! {
        /// Every tag of the scenario under test (old and new versions).
        static TAGS: std::cell::RefCell<Vec<LookupTag>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    fn reopen(store: SledStore) -> SledStore {
        let path = store.path().to_path_buf();
        drop(store);
        SledStore::open(path).unwrap()
    }

    fn assert_settled(store: &SledStore) {
        let problems = store.check_indexes().unwrap();
        assert!(problems.is_empty(), "index problems: {problems:?}");
        assert!(store.meta.get(PENDING_WRITE_KEY).unwrap().is_none());
    }

    /// The audit log as stored: every sequence number and its bytes.
    fn logged(store: &SledStore) -> Vec<(u64, Vec<u8>)> {
        store
            .events(0, 1000)
            .unwrap()
            .into_iter()
            .map(|e| (e.seq, e.bytes))
            .collect()
    }

    /// A write of `old` → `new` (`new = None`: delete), with an audit event when `audited`,
    /// cut after every prefix of its steps: after a crash the store holds the old credential
    /// and not the event, or the new credential and the event.
    fn every_crash_point(old: Option<Credential>, new: Option<Credential>, audited: bool) {
        let id = old.as_ref().or(new.as_ref()).unwrap().id.clone();
        let tags: Vec<LookupTag> = old
            .iter()
            .chain(new.iter())
            .flat_map(|c| c.secrets.iter().map(|s| s.lookup))
            .collect();
        TAGS.with(|t| *t.borrow_mut() = tags);
        // An earlier event (with the old credential's write), and this write's.
        let earlier = AuditEntry {
            seq: 1,
            bytes: b"earlier".to_vec(),
        };
        let event = AuditEntry {
            seq: 2,
            bytes: b"this write".to_vec(),
        };
        let mut k = 0;
        loop {
            let dir = tempfile::tempdir().unwrap();
            let store = SledStore::open(dir.path().join("db")).unwrap();
            store.commit(&Change::event(&earlier)).unwrap();
            let old = old.as_ref().map(|c| {
                let mut stored = c.clone();
                stored.revision = store.put(c).unwrap();
                stored
            });
            let revision = old.as_ref().map_or(0, |c| c.revision);
            let audit = audited.then_some(&event);
            let (plan, new) = match &new {
                Some(n) => {
                    let mut n = n.clone();
                    n.revision = revision;
                    let plan = store.plan_put(&n, revision + 1, audit).unwrap();
                    n.revision = revision + 1;
                    (plan, Some(n))
                }
                None => (store.plan_delete(&id, revision, audit).unwrap(), None),
            };
            let commit = plan
                .steps
                .iter()
                .position(|s| s.tree == Which::Records)
                .unwrap();
            // The intent comes first and goes last; the event, if any, before the commit point.
            assert_eq!(plan.steps[0].tree, Which::Meta);
            assert_eq!(plan.steps.last().map(|s| s.tree), Some(Which::Meta));
            let event_step = plan.steps.iter().position(|s| s.tree == Which::Events);
            assert_eq!(event_step.is_some(), audited);
            assert!(event_step.is_none_or(|e| e < commit));
            if k > plan.steps.len() {
                break;
            }
            store.run_steps(&plan.steps[..k]).unwrap();
            let committed = k > commit;
            let expected = if committed {
                new.as_ref()
            } else {
                old.as_ref()
            };
            // Readers in the middle of the write.
            assert_reads(&store, &id, expected);
            // A crash here: what is on disk is this prefix.
            let store = reopen(store);
            assert_settled(&store);
            assert_reads(&store, &id, expected);
            // The change and its event, or neither.
            let mut log = vec![(1, earlier.bytes.clone())];
            if committed && audited {
                log.push((2, event.bytes.clone()));
            }
            assert_eq!(logged(&store), log, "cut after {k} steps");
            // And the store takes the next write, continuing the log.
            let next = AuditEntry {
                seq: log.len() as u64 + 1,
                bytes: b"next".to_vec(),
            };
            let other = credential("acct_a");
            store
                .commit(&Change::put(&other).with_event(&next))
                .unwrap();
            assert_settled(&store);
            assert_eq!(store.last_event().unwrap(), Some(next));
            k += 1;
        }
    }

    #[test]
    fn a_crash_in_an_issue_reopens_to_nothing_or_the_credential() {
        every_crash_point(None, Some(credential("acct_a")), true);
        every_crash_point(None, Some(credential("acct_a")), false);
    }

    #[test]
    fn a_crash_in_a_rotation_that_moves_and_purges_reopens_to_old_or_new() {
        let mut old = credential("acct_a");
        old.secrets.push(secret(2));
        let mut new = old.clone();
        // Purge version 1, keep 2, add 3, and move the credential to another account.
        new.secrets.remove(0);
        new.secrets.push(secret(3));
        new.account = "acct_b".parse().unwrap();
        every_crash_point(Some(old.clone()), Some(new.clone()), true);
        every_crash_point(Some(old), Some(new), false);
    }

    #[test]
    fn a_crash_in_a_delete_reopens_to_old_or_nothing() {
        let mut old = credential("acct_a");
        old.secrets.push(secret(2));
        every_crash_point(Some(old.clone()), None, true);
        every_crash_point(Some(old), None, false);
    }

    #[test]
    fn an_unreadable_intent_is_settled_by_a_full_repair() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path().join("db")).unwrap();
        let cred = credential("acct_a");
        store.put(&cred).unwrap();
        // A dangling lookup entry and an intent this build cannot read.
        store
            .lookup
            .insert(secret(1).lookup.as_bytes(), cred.id.as_str().as_bytes())
            .unwrap();
        store
            .meta
            .insert(PENDING_WRITE_KEY, &[FORMAT_VERSION, 0xff, 0xff][..])
            .unwrap();
        assert_eq!(store.check_indexes().unwrap().len(), 1);
        let store = reopen(store);
        assert_settled(&store);
        assert_eq!(store.get(&cred.id).unwrap().map(|c| c.id), Some(cred.id));
    }

    #[test]
    fn settling_twice_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path().join("db")).unwrap();
        let cred = credential("acct_a");
        let event = AuditEntry {
            seq: 1,
            bytes: b"issue".to_vec(),
        };
        let plan = store.plan_put(&cred, 1, Some(&event)).unwrap();
        // Cut after the new entries and the event, before the record.
        let commit = plan
            .steps
            .iter()
            .position(|s| s.tree == Which::Records)
            .unwrap();
        store.run_steps(&plan.steps[..commit]).unwrap();
        store.settle(&plan.intent).unwrap();
        assert_settled(&store);
        store.settle(&plan.intent).unwrap();
        assert_settled(&store);
        assert_eq!(store.get(&cred.id).unwrap(), None);
        assert_eq!(store.last_event().unwrap(), None);
    }

    /// An intent written before the audit log (no `event` field) still decodes, and settles
    /// as before; one of this build does not decode as the older shape.
    #[test]
    fn an_intent_from_before_the_audit_log_still_settles() {
        #[derive(Serialize)]
        struct Old<'a> {
            id: &'a [u8],
            lookups: Vec<Vec<u8>>,
            accounts: Vec<Vec<u8>>,
        }
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path().join("db")).unwrap();
        let cred = credential("acct_a");
        let plan = store.plan_put(&cred, 1, None).unwrap();
        let old = Old {
            id: cred.id.as_str().as_bytes(),
            lookups: plan.intent.lookups.clone(),
            accounts: plan.intent.accounts.clone(),
        };
        let bytes = postcard::to_extend(&old, vec![FORMAT_VERSION]).unwrap();
        let decoded = WriteIntent::decode(&bytes).unwrap();
        assert!(decoded.event.is_none());
        assert_eq!(decoded.lookups, plan.intent.lookups);
        // Cut before the record, with the old intent in place.
        let commit = plan
            .steps
            .iter()
            .position(|s| s.tree == Which::Records)
            .unwrap();
        store.run_steps(&plan.steps[..commit]).unwrap();
        store.meta.insert(PENDING_WRITE_KEY, bytes).unwrap();
        let store = reopen(store);
        assert_settled(&store);
        assert_eq!(store.get(&cred.id).unwrap(), None);
        // A new intent with an event keeps its event when decoded.
        let event = AuditEntry {
            seq: 1,
            bytes: b"e".to_vec(),
        };
        let plan = store.plan_put(&cred, 1, Some(&event)).unwrap();
        let decoded = WriteIntent::decode(&plan.intent.encode().unwrap()).unwrap();
        assert_eq!(decoded.event.map(|e| e.committed), Some(Some(1)));
    }
}
