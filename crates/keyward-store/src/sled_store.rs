//! The sled backend (placeholder until the store issue lands).

use std::path::Path;

use keyward_core::{Credential, CredentialId, LookupTag};

use crate::{ListQuery, Page, Store, StoreError};

/// The embedded default backend on sled 0.34.
pub struct SledStore {
    _db: sled::Db,
}

impl SledStore {
    /// Opens (or creates) a store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let db = sled::open(path).map_err(|e| StoreError::Backend {
            message: e.to_string(),
        })?;
        Ok(Self { _db: db })
    }
}

impl Store for SledStore {
    fn get(&self, _id: &CredentialId) -> Result<Option<Credential>, StoreError> {
        Err(StoreError::Backend {
            message: "unimplemented".into(),
        })
    }
    fn find_by_lookup(&self, _lookup: &LookupTag) -> Result<Option<Credential>, StoreError> {
        Err(StoreError::Backend {
            message: "unimplemented".into(),
        })
    }
    fn list(&self, _query: &ListQuery) -> Result<Page, StoreError> {
        Err(StoreError::Backend {
            message: "unimplemented".into(),
        })
    }
    fn put(&self, _cred: &Credential) -> Result<u64, StoreError> {
        Err(StoreError::Backend {
            message: "unimplemented".into(),
        })
    }
    fn delete(&self, _id: &CredentialId, _revision: u64) -> Result<(), StoreError> {
        Err(StoreError::Backend {
            message: "unimplemented".into(),
        })
    }
    fn scan(
        &self,
        _visit: &mut dyn FnMut(Result<Credential, StoreError>),
    ) -> Result<(), StoreError> {
        Err(StoreError::Backend {
            message: "unimplemented".into(),
        })
    }
}
