//! The conformance suite (`keyward_store::conformance`) against every backend, and the
//! indexed store over each.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use keyward_store::conformance::Harness;
use keyward_store::{IndexedStore, MemoryStore, SledStore, StoreError};
use tempfile::TempDir;

struct Memory;

impl Harness for Memory {
    type Store = MemoryStore;
    fn fresh(&mut self) -> MemoryStore {
        MemoryStore::new()
    }
}

/// A sled store in a temp dir that lives as long as the harness.
#[derive(Default)]
struct Sled {
    dir: Option<TempDir>,
}

impl Sled {
    fn path(&self) -> PathBuf {
        self.dir.as_ref().unwrap().path().join("store")
    }
}

impl Harness for Sled {
    type Store = SledStore;
    fn fresh(&mut self) -> SledStore {
        self.dir = Some(tempfile::tempdir().unwrap());
        SledStore::open(self.path()).unwrap()
    }
    fn reopen(&mut self, store: SledStore) -> Option<SledStore> {
        let problems = store.check_indexes().unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        drop(store);
        Some(SledStore::open(self.path()).unwrap())
    }
}

struct IndexedMemory {
    shared: bool,
}

impl Harness for IndexedMemory {
    type Store = IndexedStore;
    fn fresh(&mut self) -> IndexedStore {
        let backend = if self.shared {
            MemoryStore::shared()
        } else {
            MemoryStore::new()
        };
        IndexedStore::open(Box::new(backend)).unwrap()
    }
}

#[derive(Default)]
struct IndexedSled(Sled);

impl Harness for IndexedSled {
    type Store = IndexedStore;
    fn fresh(&mut self) -> IndexedStore {
        IndexedStore::open(Box::new(self.0.fresh())).unwrap()
    }
    fn reopen(&mut self, store: IndexedStore) -> Option<IndexedStore> {
        drop(store);
        let backend = SledStore::open(self.0.path()).unwrap();
        Some(IndexedStore::open(Box::new(backend)).unwrap())
    }
}

mod memory {
    use super::*;
    keyward_store::conformance_tests!(Memory);
}

mod sled {
    use super::*;
    keyward_store::conformance_tests!(Sled::default());

    /// A second open of a store already open fails at once with `InUse` (the other-process
    /// case is in `crash_consistency.rs`).
    #[test]
    fn second_open_is_in_use() {
        let mut h = Sled::default();
        let store = h.fresh();
        let started = std::time::Instant::now();
        let err = SledStore::open(h.path()).unwrap_err();
        assert!(matches!(err, StoreError::InUse { .. }), "{err:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert!(err.to_string().contains("in use"), "{err}");
        drop(store);
        SledStore::open(h.path()).unwrap();
    }
}

mod indexed_memory {
    use super::*;
    keyward_store::conformance_tests!(IndexedMemory { shared: false });
}

mod indexed_shared_memory {
    use super::*;
    keyward_store::conformance_tests!(IndexedMemory { shared: true });
}

mod indexed_sled {
    use super::*;
    keyward_store::conformance_tests!(IndexedSled::default());
}
