//! The conformance suite (`keyward_store::conformance`) against every backend, and the
//! indexed store over each.
#![allow(clippy::unwrap_used)]

mod common;

use common::{IndexedMemory, Memory};
#[cfg(feature = "sled")]
use common::{IndexedSled, Sled};

mod memory {
    use super::*;
    keyward_store::conformance_tests!(Memory);
}

#[cfg(feature = "sled")]
mod sled {
    use keyward_store::conformance::Harness;
    use keyward_store::{SledStore, StoreError};

    use super::*;
    keyward_store::conformance_tests!(Sled::default());

    /// A second open of a store already open fails at once with `InUse` (the other-process
    /// case is in `store_lock.rs`).
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

#[cfg(feature = "sled")]
mod indexed_sled {
    use super::*;
    keyward_store::conformance_tests!(IndexedSled::default());
}

#[cfg(feature = "redb")]
mod redb_store {
    use super::*;
    use common::Redb;
    keyward_store::conformance_tests!(Redb::default());
}

#[cfg(feature = "redb")]
mod indexed_redb {
    use super::*;
    use common::IndexedRedb;
    keyward_store::conformance_tests!(IndexedRedb::default());
}
