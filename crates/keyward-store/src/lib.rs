//! keyward-store: the [`Store`] trait, its backends ([`MemoryStore`], `SledStore` with the
//! `sled` feature, `RedbStore` with the `redb` feature and `PgStore` with the `postgres`
//! feature), the record schema ([`record`]) and codec, and the [`IndexedStore`] that keeps a
//! hot in-memory index coherent with every write so that verification never waits on disk.
//!
//! # Features
//!
//! None is on by default: a user compiles only the backends it uses.
//!
//! * `sled`: the embedded sled 0.34 backend, `SledStore` and the `sled` module (recovery of
//!   what a crash leaves at open, index checks and repair).
//! * `redb`: the embedded redb 4 backend, `RedbStore` (one file, every write one durable
//!   transaction; index checks and repair).
//! * `postgres`: the PostgreSQL backend, `PgStore`, for many processes sharing one database
//!   (every write one transaction; the schema migrated by the store).
//! * `conformance`: the `conformance` module, the test suite every backend passes, for
//!   backends in other crates.
//!
//! Every backend also keeps the audit log ([`AuditEntry`]): [`Store::commit`] writes a
//! credential change and the event that records it in one atomic, durable write.
//!
//! `docs/storage.md` describes the bytes on disk, the durability promise and the hot index.
//!
//! ```
//! use keyward_store::{IndexedStore, MemoryStore};
//! let store = IndexedStore::open(Box::new(MemoryStore::new())).unwrap();
//! assert_eq!(store.len(), 0);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod change;
mod codec;
#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
mod index;
mod index_problem;
#[cfg(any(feature = "redb", feature = "sled"))]
mod lock_wait;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
pub mod record;
#[cfg(feature = "redb")]
mod redb;
#[cfg(feature = "sled")]
pub mod sled;

#[cfg(feature = "sled")]
pub use self::sled::{
    ACCOUNTS_TREE, EVENTS_TREE, FORMAT_VERSION_KEY, LOOKUP_TREE, META_TREE, RECORDS_TREE, SledStore,
};
pub use change::{
    AuditEntry, Change, EVENT_PAGE_MAX, Write, check_event_seq, event_key, seq_of_key,
};
pub use codec::{FORMAT_VERSION, decode_credential, encode_credential};
pub use error::StoreError;
pub use index::{BuildTagHasher, HotEntry, IndexedStore, NEGATIVE_CACHE_CAPACITY, TagHasher};
pub use index_problem::IndexProblem;
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::{PG_DEFAULT_SCHEMA, PgOptions, PgStore};
#[cfg(feature = "redb")]
pub use redb::{
    REDB_ACCOUNTS_TABLE, REDB_EVENTS_TABLE, REDB_FORMAT_VERSION_KEY, REDB_LOOKUP_TABLE,
    REDB_META_TABLE, REDB_RECORDS_TABLE, RedbStore,
};

use std::sync::Arc;

use keyward_core::{AccountId, Credential, CredentialId, Environment, KeyType, LookupTag};

/// A storage backend. Small on purpose: every method is fallible and nothing assumes a local
/// file, so a networked database can implement it too.
///
/// Every write is atomic (the record, all its index entries and its audit event, or nothing)
/// and durable when it returns `Ok`: a caller may show the result to a user.
///
/// A backend implements one write, [`Store::commit`]; [`Store::put`], [`Store::delete`] and
/// [`Store::append_event`] are that write with one part.
///
/// ```
/// use keyward_store::{MemoryStore, Store, ListQuery};
/// let store = MemoryStore::new();
/// assert!(store.list(&ListQuery::default()).unwrap().items.is_empty());
/// ```
pub trait Store: Send + Sync + 'static {
    /// Reads a credential by id.
    fn get(&self, id: &CredentialId) -> Result<Option<Credential>, StoreError>;

    /// Finds the credential holding the secret version with this lookup tag.
    fn find_by_lookup(&self, lookup: &LookupTag) -> Result<Option<Credential>, StoreError>;

    /// Lists credentials matching `query`, ordered by id, one page at a time.
    fn list(&self, query: &ListQuery) -> Result<Page, StoreError>;

    /// Writes a [`Change`]: its credential write and its audit event, atomically and durably,
    /// or nothing at all.
    ///
    /// * [`Write::Put`] writes `cred` and its index entries (every lookup tag of its secrets,
    ///   its account entry) if the stored revision equals `cred.revision` (0: the id must not
    ///   exist yet), with revision `cred.revision + 1`. Lookup-index entries of secrets no
    ///   longer in `cred` are removed. Fails with [`StoreError::Conflict`] on a revision
    ///   mismatch ([`check_revision`]) and [`StoreError::DuplicateLookup`] if a lookup tag
    ///   belongs to another credential.
    /// * [`Write::Delete`] deletes a credential and its index entries if its stored revision
    ///   is `revision` ([`StoreError::Conflict`] otherwise).
    /// * The event is appended to the audit log if the log's last sequence number is
    ///   `event.seq - 1` (0: the log has never held an event), else
    ///   [`StoreError::EventConflict`] ([`check_event_seq`]): two writers cannot both append
    ///   the same sequence number, so the chain the engine builds cannot fork.
    ///
    /// A check that fails writes nothing, neither the credential nor the event.
    fn commit(&self, change: &Change<'_>) -> Result<(), StoreError>;

    /// Writes `cred` alone ([`Store::commit`] with [`Write::Put`] and no event) and returns its
    /// new revision, `cred.revision + 1`.
    fn put(&self, cred: &Credential) -> Result<u64, StoreError> {
        let next = next_revision(cred)?;
        self.commit(&Change::put(cred))?;
        Ok(next)
    }

    /// Deletes a credential and its index entries if its stored revision is `revision`
    /// ([`Store::commit`] with [`Write::Delete`] and no event).
    fn delete(&self, id: &CredentialId, revision: u64) -> Result<(), StoreError> {
        self.commit(&Change::delete(id, revision))
    }

    /// Appends an event alone ([`Store::commit`] with no credential write).
    fn append_event(&self, event: &AuditEntry) -> Result<(), StoreError> {
        self.commit(&Change::event(event))
    }

    /// Audit events with a sequence number above `after`, ascending, at most `limit` (clamped
    /// to 1–[`EVENT_PAGE_MAX`]).
    fn events(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;

    /// The audit event with the highest sequence number, `None` if the log holds none.
    fn last_event(&self) -> Result<Option<AuditEntry>, StoreError>;

    /// Removes the audit events with a sequence number up to `up_to` (retention), oldest first,
    /// and returns how many it removed. The newest event is never removed, so the log's last
    /// sequence number (and the chain's head) survives any trim. Not atomic as a whole: a crash
    /// part-way leaves a suffix of the log, never a hole.
    fn trim_events(&self, up_to: u64) -> Result<usize, StoreError>;

    /// Visits every credential, for warm-up, export and backup. An undecodable record is passed
    /// as an `Err` naming its id and the scan goes on.
    ///
    /// Every backend's scan is a **consistent snapshot**: it visits the store as it was at one
    /// moment, each write wholly before that moment or wholly after it (export and backup rely
    /// on it). A backend may make writes wait until the scan ends (sled does), so `visit` must
    /// not write to the same store.
    fn scan(&self, visit: &mut dyn FnMut(Result<Credential, StoreError>))
    -> Result<(), StoreError>;

    /// Whether other processes may write to this backend (a shared database). If `false`, the
    /// hot index is authoritative after warm-up and a miss is answered without a backend read.
    fn is_shared(&self) -> bool {
        false
    }
}

/// `cred.revision + 1`, the revision a put of `cred` stores ([`StoreError::Backend`] if it
/// overflows).
pub(crate) fn next_revision(cred: &Credential) -> Result<u64, StoreError> {
    cred.revision
        .checked_add(1)
        .ok_or_else(|| StoreError::Backend {
            message: format!("{}: revision overflow", cred.id),
        })
}

/// A shared handle is a store too: lets a test (or an embedder) keep writing to a backend that an
/// [`IndexedStore`] also owns.
impl<S: Store + ?Sized> Store for Arc<S> {
    fn get(&self, id: &CredentialId) -> Result<Option<Credential>, StoreError> {
        (**self).get(id)
    }
    fn find_by_lookup(&self, lookup: &LookupTag) -> Result<Option<Credential>, StoreError> {
        (**self).find_by_lookup(lookup)
    }
    fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        (**self).list(query)
    }
    fn commit(&self, change: &Change<'_>) -> Result<(), StoreError> {
        (**self).commit(change)
    }
    fn put(&self, cred: &Credential) -> Result<u64, StoreError> {
        (**self).put(cred)
    }
    fn delete(&self, id: &CredentialId, revision: u64) -> Result<(), StoreError> {
        (**self).delete(id, revision)
    }
    fn append_event(&self, event: &AuditEntry) -> Result<(), StoreError> {
        (**self).append_event(event)
    }
    fn events(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        (**self).events(after, limit)
    }
    fn last_event(&self) -> Result<Option<AuditEntry>, StoreError> {
        (**self).last_event()
    }
    fn trim_events(&self, up_to: u64) -> Result<usize, StoreError> {
        (**self).trim_events(up_to)
    }
    fn scan(
        &self,
        visit: &mut dyn FnMut(Result<Credential, StoreError>),
    ) -> Result<(), StoreError> {
        (**self).scan(visit)
    }
    fn is_shared(&self) -> bool {
        (**self).is_shared()
    }
}

/// The conditional-write rule every backend applies: a write that expects revision `expected`
/// of `id` (`None`: no record, i.e. a `put` with revision 0) may proceed only if the stored
/// revision is `found`, the same. Otherwise [`StoreError::Conflict`].
///
/// ```
/// use keyward_store::check_revision;
/// let id = "key_7Ay5mcUXAxwrN6wQEQUVEHBCJ".parse().unwrap();
/// assert!(check_revision(&id, None, None).is_ok());
/// assert!(check_revision(&id, Some(3), Some(3)).is_ok());
/// assert!(check_revision(&id, Some(3), Some(4)).is_err());
/// assert!(check_revision(&id, None, Some(1)).is_err());
/// ```
pub fn check_revision(
    id: &CredentialId,
    expected: Option<u64>,
    found: Option<u64>,
) -> Result<(), StoreError> {
    if expected == found {
        Ok(())
    } else {
        Err(StoreError::Conflict {
            id: id.clone(),
            expected: expected.unwrap_or(0),
            found,
        })
    }
}

/// The stored record a delete of `id` at `revision` removes: `stored`, if it is at `revision`;
/// else [`StoreError::Conflict`].
#[cfg(any(feature = "redb", feature = "sled"))]
pub(crate) fn check_delete(
    id: &CredentialId,
    revision: u64,
    stored: Option<Credential>,
) -> Result<Credential, StoreError> {
    let found = stored.as_ref().map(|c| c.revision);
    stored
        .filter(|c| c.revision == revision)
        .ok_or_else(|| StoreError::Conflict {
            id: id.clone(),
            expected: revision,
            found,
        })
}

/// [`check_revision`] for a put of `cred`: it expects the stored revision `cred.revision`, or
/// no record if that is 0.
pub(crate) fn check_put_revision(cred: &Credential, found: Option<u64>) -> Result<(), StoreError> {
    check_revision(
        &cred.id,
        (cred.revision != 0).then_some(cred.revision),
        found,
    )
}

/// Which credentials [`Store::list`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Only this account's credentials (`None`: every account).
    pub account: Option<AccountId>,
    /// Only this environment.
    pub environment: Option<Environment>,
    /// Only this key type.
    pub key_type: Option<KeyType>,
    /// Start after this id (the previous page's [`Page::next`]).
    pub after: Option<CredentialId>,
    /// Page size, 1–1000 (clamped).
    pub limit: usize,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            account: None,
            environment: None,
            key_type: None,
            after: None,
            limit: 100,
        }
    }
}

impl ListQuery {
    /// Whether `cred` passes the account/environment/type filters.
    pub fn matches(&self, cred: &Credential) -> bool {
        self.account.as_ref().is_none_or(|a| *a == cred.account)
            && self
                .environment
                .as_ref()
                .is_none_or(|e| *e == cred.environment)
            && self.key_type.is_none_or(|t| t == cred.key_type)
    }

    /// The page size, clamped to 1–1000.
    pub fn page_size(&self) -> usize {
        self.limit.clamp(1, 1000)
    }
}

/// One page of [`Store::list`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    /// Credentials, ordered by id.
    pub items: Vec<Credential>,
    /// Pass as [`ListQuery::after`] for the next page; `None` on the last page.
    pub next: Option<CredentialId>,
}

impl Page {
    /// The page of `size` items read from up to `size + 1` matches in id order: a match past
    /// `size` is dropped and only says that another page follows, after the page's last id.
    pub(crate) fn of(mut items: Vec<Credential>, size: usize) -> Self {
        let next = if items.len() > size {
            items.truncate(size);
            items.last().map(|c| c.id.clone())
        } else {
            None
        };
        Page { items, next }
    }
}
