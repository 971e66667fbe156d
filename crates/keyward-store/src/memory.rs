//! The in-memory backend.

use std::collections::{BTreeMap, HashMap};

use keyward_core::{Credential, CredentialId, LookupTag};
use parking_lot::RwLock;

use crate::{ListQuery, Page, Store, StoreError, check_revision};

#[derive(Default)]
struct Inner {
    records: BTreeMap<CredentialId, Credential>,
    lookup: HashMap<LookupTag, CredentialId>,
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
        let mut items: Vec<Credential> = inner
            .records
            .range((start, std::ops::Bound::Unbounded))
            .map(|(_, c)| c)
            .filter(|c| query.matches(c))
            .take(size + 1)
            .cloned()
            .collect();
        let next = if items.len() > size {
            items.truncate(size);
            items.last().map(|c| c.id.clone())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    fn put(&self, cred: &Credential) -> Result<u64, StoreError> {
        let mut inner = self.inner.write();
        let found = inner.records.get(&cred.id).map(|c| c.revision);
        check_revision(
            &cred.id,
            (cred.revision != 0).then_some(cred.revision),
            found,
        )?;
        for s in &cred.secrets {
            if let Some(owner) = inner.lookup.get(&s.lookup)
                && *owner != cred.id
            {
                return Err(StoreError::DuplicateLookup { lookup: s.lookup });
            }
        }
        if let Some(old) = inner.records.get(&cred.id).cloned() {
            for s in &old.secrets {
                inner.lookup.remove(&s.lookup);
            }
        }
        let mut stored = cred.clone();
        stored.revision = cred.revision + 1;
        for s in &stored.secrets {
            inner.lookup.insert(s.lookup, stored.id.clone());
        }
        inner.records.insert(stored.id.clone(), stored);
        Ok(cred.revision + 1)
    }

    fn delete(&self, id: &CredentialId, revision: u64) -> Result<(), StoreError> {
        let mut inner = self.inner.write();
        let found = inner.records.get(id).map(|c| c.revision);
        check_revision(id, Some(revision), found)?;
        if let Some(old) = inner.records.remove(id) {
            for s in &old.secrets {
                inner.lookup.remove(&s.lookup);
            }
        }
        Ok(())
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
