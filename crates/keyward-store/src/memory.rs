//! The in-memory backend.

use std::collections::{BTreeMap, HashMap};

use keyward_core::{Credential, CredentialId, LookupTag};
use parking_lot::RwLock;

use crate::{
    AuditEntry, Change, EVENT_PAGE_MAX, ListQuery, Page, Store, StoreError, Write, check_event_seq,
    check_put_revision, check_revision, next_revision,
};

#[derive(Default)]
struct Inner {
    records: BTreeMap<CredentialId, Credential>,
    lookup: HashMap<LookupTag, CredentialId>,
    /// The audit log: sequence number → event bytes.
    events: BTreeMap<u64, Vec<u8>>,
}

impl Inner {
    /// Checks a put; changes nothing.
    fn check_put(&self, cred: &Credential) -> Result<(), StoreError> {
        let found = self.records.get(&cred.id).map(|c| c.revision);
        check_put_revision(cred, found)?;
        next_revision(cred)?;
        for s in &cred.secrets {
            if let Some(owner) = self.lookup.get(&s.lookup)
                && *owner != cred.id
            {
                return Err(StoreError::DuplicateLookup { lookup: s.lookup });
            }
        }
        Ok(())
    }

    /// Writes a checked put.
    fn apply_put(&mut self, cred: &Credential) {
        if let Some(old) = self.records.get(&cred.id).cloned() {
            for s in &old.secrets {
                self.lookup.remove(&s.lookup);
            }
        }
        let mut stored = cred.clone();
        stored.revision = cred.revision + 1;
        for s in &stored.secrets {
            self.lookup.insert(s.lookup, stored.id.clone());
        }
        self.records.insert(stored.id.clone(), stored);
    }

    fn last_seq(&self) -> u64 {
        self.events.keys().next_back().copied().unwrap_or(0)
    }
}

/// A backend in process memory: for tests, examples and ephemeral deployments. Nothing survives
/// the process.
///
/// [`MemoryStore::shared`] makes one that reports itself as shared ([`Store::is_shared`]), to
/// exercise the code paths of a fleet backend written to by other processes.
#[derive(Default)]
pub struct MemoryStore {
    inner: RwLock<Inner>,
    shared: bool,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that reports [`Store::is_shared`] = `true`.
    pub fn shared() -> Self {
        Self {
            shared: true,
            ..Self::default()
        }
    }
}

impl Store for MemoryStore {
    fn get(&self, id: &CredentialId) -> Result<Option<Credential>, StoreError> {
        Ok(self.inner.read().records.get(id).cloned())
    }

    fn find_by_lookup(&self, lookup: &LookupTag) -> Result<Option<Credential>, StoreError> {
        let inner = self.inner.read();
        Ok(inner
            .lookup
            .get(lookup)
            .and_then(|id| inner.records.get(id))
            .cloned())
    }

    fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        let inner = self.inner.read();
        let size = query.page_size();
        let start = match &query.after {
            Some(after) => std::ops::Bound::Excluded(after.clone()),
            None => std::ops::Bound::Unbounded,
        };
        let items: Vec<Credential> = inner
            .records
            .range((start, std::ops::Bound::Unbounded))
            .map(|(_, c)| c)
            .filter(|c| query.matches(c))
            .take(size + 1)
            .cloned()
            .collect();
        Ok(Page::of(items, size))
    }

    fn commit(&self, change: &Change<'_>) -> Result<(), StoreError> {
        let mut inner = self.inner.write();
        // Every check before any change: a refused write changes nothing.
        match change.write {
            Some(Write::Put(cred)) => inner.check_put(cred)?,
            Some(Write::Delete { id, revision }) => {
                let found = inner.records.get(id).map(|c| c.revision);
                check_revision(id, Some(revision), found)?;
            }
            None => {}
        }
        if let Some(event) = change.event {
            check_event_seq(event.seq, inner.last_seq())?;
        }
        match change.write {
            Some(Write::Put(cred)) => inner.apply_put(cred),
            Some(Write::Delete { id, .. }) => {
                if let Some(old) = inner.records.remove(id) {
                    for s in &old.secrets {
                        inner.lookup.remove(&s.lookup);
                    }
                }
            }
            None => {}
        }
        if let Some(event) = change.event {
            inner.events.insert(event.seq, event.bytes.clone());
        }
        Ok(())
    }

    fn events(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let inner = self.inner.read();
        Ok(inner
            .events
            .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
            .take(limit.clamp(1, EVENT_PAGE_MAX))
            .map(|(&seq, bytes)| AuditEntry {
                seq,
                bytes: bytes.clone(),
            })
            .collect())
    }

    fn last_event(&self) -> Result<Option<AuditEntry>, StoreError> {
        let inner = self.inner.read();
        Ok(inner
            .events
            .iter()
            .next_back()
            .map(|(&seq, bytes)| AuditEntry {
                seq,
                bytes: bytes.clone(),
            }))
    }

    fn trim_events(&self, up_to: u64) -> Result<usize, StoreError> {
        let mut inner = self.inner.write();
        // Never the newest event.
        let up_to = up_to.min(inner.last_seq().saturating_sub(1));
        let keep = inner.events.split_off(&(up_to.saturating_add(1)));
        let removed = std::mem::replace(&mut inner.events, keep).len();
        Ok(removed)
    }

    fn scan(
        &self,
        visit: &mut dyn FnMut(Result<Credential, StoreError>),
    ) -> Result<(), StoreError> {
        let snapshot: Vec<Credential> = self.inner.read().records.values().cloned().collect();
        for c in snapshot {
            visit(Ok(c));
        }
        Ok(())
    }

    fn is_shared(&self) -> bool {
        self.shared
    }
}
