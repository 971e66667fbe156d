//! Harnesses for the backends of this crate, shared by the test files.
#![allow(dead_code, clippy::unwrap_used)]

use keyward_store::conformance::Harness;
use keyward_store::{IndexedStore, MemoryStore};

/// `MemoryStore`: keeps nothing across a reopen.
pub struct Memory;

impl Harness for Memory {
    type Store = MemoryStore;
    fn fresh(&mut self) -> MemoryStore {
        MemoryStore::new()
    }
}

/// `IndexedStore` over a `MemoryStore` (`shared`: one that reports itself shared).
pub struct IndexedMemory {
    pub shared: bool,
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

// Not every test file uses both.
#[cfg(feature = "sled")]
#[allow(unused_imports)]
pub use sled::{IndexedSled, Sled};

/// The sled harnesses (feature `sled`).
#[cfg(feature = "sled")]
mod sled {
    use std::path::PathBuf;

    use keyward_store::conformance::Harness;
    use keyward_store::{IndexedStore, SledStore};
    use tempfile::TempDir;

    /// A `SledStore` in a temp dir that lives as long as the harness.
    #[derive(Default)]
    pub struct Sled {
        dir: Option<TempDir>,
    }

    impl Sled {
        /// Where the current store lives.
        pub fn path(&self) -> PathBuf {
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

    /// `IndexedStore` over a `SledStore`; a reopen warms a new index from the reopened store.
    #[derive(Default)]
    pub struct IndexedSled(pub Sled);

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
}

/// A `RedbStore` in a temp dir that lives as long as the harness.
#[cfg(feature = "redb")]
#[derive(Default)]
pub struct Redb {
    dir: Option<tempfile::TempDir>,
}

#[cfg(feature = "redb")]
impl Redb {
    /// The current store's file.
    pub fn path(&self) -> std::path::PathBuf {
        self.dir.as_ref().unwrap().path().join("keyward.redb")
    }
}

#[cfg(feature = "redb")]
impl Harness for Redb {
    type Store = keyward_store::RedbStore;
    fn fresh(&mut self) -> keyward_store::RedbStore {
        self.dir = Some(tempfile::tempdir().unwrap());
        keyward_store::RedbStore::open(self.path()).unwrap()
    }
    fn reopen(&mut self, store: keyward_store::RedbStore) -> Option<keyward_store::RedbStore> {
        let problems = store.check_indexes().unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        drop(store);
        Some(keyward_store::RedbStore::open(self.path()).unwrap())
    }
}

/// `IndexedStore` over a `RedbStore`; a reopen warms a new index from the reopened store.
#[cfg(feature = "redb")]
#[derive(Default)]
pub struct IndexedRedb(pub Redb);

#[cfg(feature = "redb")]
impl Harness for IndexedRedb {
    type Store = IndexedStore;
    fn fresh(&mut self) -> IndexedStore {
        IndexedStore::open(Box::new(self.0.fresh())).unwrap()
    }
    fn reopen(&mut self, store: IndexedStore) -> Option<IndexedStore> {
        drop(store);
        let backend = keyward_store::RedbStore::open(self.0.path()).unwrap();
        Some(IndexedStore::open(Box::new(backend)).unwrap())
    }
}

/// The PostgreSQL harnesses (feature `postgres`).
#[cfg(feature = "postgres")]
pub mod pg {
    use keyward_store::conformance::Harness;
    use keyward_store::{IndexedStore, PgStore};

    /// The database the tests use: `KEYWARD_PG_URL`, if it is set and the database answers.
    /// Otherwise prints why the test is skipped and returns `None`.
    #[allow(clippy::print_stderr)]
    pub fn url(test: &str) -> Option<String> {
        let Ok(url) = std::env::var("KEYWARD_PG_URL") else {
            eprintln!("SKIPPED: {test}: no PostgreSQL (set KEYWARD_PG_URL)");
            return None;
        };
        let mut config: postgres::Config = url.parse().ok()?;
        config.connect_timeout(std::time::Duration::from_secs(3));
        match config.connect(postgres::NoTls) {
            Ok(_) => Some(url),
            Err(e) => {
                eprintln!(
                    "SKIPPED: {test}: PostgreSQL at KEYWARD_PG_URL is unreachable: {e} \
                     (set KEYWARD_PG_URL)"
                );
                None
            }
        }
    }

    /// A fresh schema name no other test uses.
    pub fn schema_name() -> String {
        let id = keyward_core::random_id().unwrap();
        format!("kw_test_{}", id.as_str().to_lowercase())
    }

    /// Drops `schema` and everything in it.
    pub fn drop_schema(url: &str, schema: &str) {
        let mut client = url
            .parse::<postgres::Config>()
            .unwrap()
            .connect(postgres::NoTls)
            .unwrap();
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .unwrap();
    }

    /// A `PgStore` in a schema of its own, dropped with the harness.
    pub struct Pg {
        pub url: String,
        pub schema: String,
    }

    impl Pg {
        /// A harness, or `None` (having said so) if there is no database.
        pub fn new(test: &str) -> Option<Self> {
            Some(Self {
                url: url(test)?,
                schema: schema_name(),
            })
        }

        /// Opens the store in this harness's schema.
        pub fn open(&self) -> PgStore {
            PgStore::open(&self.url, &self.schema).unwrap()
        }
    }

    impl Drop for Pg {
        fn drop(&mut self) {
            drop_schema(&self.url, &self.schema);
        }
    }

    impl Harness for Pg {
        type Store = PgStore;
        fn fresh(&mut self) -> PgStore {
            drop_schema(&self.url, &self.schema);
            self.open()
        }
        fn reopen(&mut self, store: PgStore) -> Option<PgStore> {
            drop(store);
            Some(self.open())
        }
    }

    /// `IndexedStore` over a `PgStore`; a reopen warms a new index from the database.
    pub struct IndexedPg(pub Pg);

    impl IndexedPg {
        /// A harness, or `None` (having said so) if there is no database.
        pub fn new(test: &str) -> Option<Self> {
            Pg::new(test).map(Self)
        }
    }

    impl Harness for IndexedPg {
        type Store = IndexedStore;
        fn fresh(&mut self) -> IndexedStore {
            IndexedStore::open(Box::new(self.0.fresh())).unwrap()
        }
        fn reopen(&mut self, store: IndexedStore) -> Option<IndexedStore> {
            drop(store);
            Some(IndexedStore::open(Box::new(self.0.open())).unwrap())
        }
    }
}
