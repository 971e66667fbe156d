//! The redb backend: five tables in one redb file, and every write one redb write transaction,
//! committed durably before it is acknowledged.
//!
//! | table      | key                         | value                                  |
//! |------------|-----------------------------|----------------------------------------|
//! | `meta`     | `format_version`            | one byte, the format version (1)       |
//! | `records`  | credential id (29 bytes)    | `[FORMAT_VERSION] ++ postcard(record)` |
//! | `lookup`   | lookup tag (16 bytes)       | credential id                          |
//! | `accounts` | account ‖ `0x00` ‖ id       | `()` (nothing)                         |
//! | `events`   | sequence number, 8 bytes BE | the audit event, as the engine encoded it |
//!
//! The same logical layout as the sled backend, so the same rules hold: a lookup entry counts
//! only if its record holds the tag, an account entry only if its record belongs to the
//! account.
//!
//! * **Writes** ([`Store::commit`]: a credential write and its audit event; the repairs) each
//!   read, check and write in one write transaction, so a change and its event are committed
//!   together or not at all. redb runs one write transaction at a time, so a write's checks
//!   ([`check_revision`](crate::check_revision), the lookup tags' owners) and its changes are
//!   never interleaved with another write's. The transaction commits with
//!   [`Durability::Immediate`](::redb::Durability::Immediate) and two-phase commit: redb writes
//!   the new pages and the inactive commit slot, `fsync`s, makes that slot current, and
//!   `fsync`s again; `put` returns only after that. A crash at any point leaves the previous
//!   commit or this one, never a part of it.
//! * **Reads** each run in one read transaction, a snapshot of the last commit: a lookup or a
//!   listed page never mixes two versions of a credential. [`Store::scan`] runs in one read
//!   transaction too, so it visits a point-in-time consistent snapshot of every record, while
//!   writes go on.
//! * **Opening** verifies the whole file (see [`RedbStore::open`]); that is also where redb
//!   repairs a file after a crash, without anything to do for this store, except for a file
//!   whose *creation* a crash interrupted, which redb refuses forever: `open` removes it and
//!   makes the store afresh (`recovery.rs`).
//!
//! See `docs/storage.md` ("Bytes on disk (redb)").

mod check;
mod events;
mod open;
mod reads;
mod recovery;
mod tables;
mod write;

use core::fmt;
use std::path::{Path, PathBuf};

use ::redb::{Database, ReadOnlyTable, ReadableDatabase};
use keyward_core::{Credential, CredentialId, LookupTag};

pub use tables::{
    REDB_ACCOUNTS_TABLE, REDB_EVENTS_TABLE, REDB_FORMAT_VERSION_KEY, REDB_LOOKUP_TABLE,
    REDB_META_TABLE, REDB_RECORDS_TABLE,
};

use crate::{AuditEntry, Change, ListQuery, Page, Store, StoreError};
use tables::backend;

/// The embedded backend on redb 4: one file, one write transaction per write.
///
/// One process at a time: a second [`RedbStore::open`] of the same file (from this or another
/// process) fails with [`StoreError::InUse`] after retrying for under a second, never hangs.
pub struct RedbStore {
    db: Database,
    path: PathBuf,
    /// The size of an unfinished file `open` removed (see `recovery`).
    unfinished_removed: Option<u64>,
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The tables a read uses, opened by one read transaction (they keep its snapshot alive).
struct ReadTables {
    records: ReadOnlyTable<&'static [u8], &'static [u8]>,
    lookup: ReadOnlyTable<&'static [u8], &'static [u8]>,
    accounts: ReadOnlyTable<&'static [u8], ()>,
}

impl RedbStore {
    /// The file the store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Begins a read transaction and opens every table in it.
    fn read_tables(&self) -> Result<ReadTables, StoreError> {
        let txn = self.db.begin_read().map_err(backend("beginning a read"))?;
        Ok(ReadTables {
            records: txn
                .open_table(REDB_RECORDS_TABLE)
                .map_err(backend("opening the records table"))?,
            lookup: txn
                .open_table(REDB_LOOKUP_TABLE)
                .map_err(backend("opening the lookup table"))?,
            accounts: txn
                .open_table(REDB_ACCOUNTS_TABLE)
                .map_err(backend("opening the accounts table"))?,
        })
    }

    /// Begins a read transaction and opens the records table in it.
    fn read_records(&self) -> Result<ReadOnlyTable<&'static [u8], &'static [u8]>, StoreError> {
        let txn = self.db.begin_read().map_err(backend("beginning a read"))?;
        txn.open_table(REDB_RECORDS_TABLE)
            .map_err(backend("opening the records table"))
    }
}

impl Store for RedbStore {
    fn get(&self, id: &CredentialId) -> Result<Option<Credential>, StoreError> {
        reads::stored(&self.read_records()?, id.as_str().as_bytes())
    }

    fn find_by_lookup(&self, lookup: &LookupTag) -> Result<Option<Credential>, StoreError> {
        let t = self.read_tables()?;
        reads::find_by_lookup(&t.records, &t.lookup, lookup)
    }

    fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        let size = query.page_size();
        let t = self.read_tables()?;
        let items = match &query.account {
            Some(account) => reads::list_account(&t.records, &t.accounts, account, query, size)?,
            None => reads::list_records(&t.records, query, size)?,
        };
        Ok(Page::of(items, size))
    }

    fn commit(&self, change: &Change<'_>) -> Result<(), StoreError> {
        self.commit_change(change)
    }

    fn events(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.read_events(after, limit)
    }

    fn last_event(&self) -> Result<Option<AuditEntry>, StoreError> {
        self.read_last_event()
    }

    fn trim_events(&self, up_to: u64) -> Result<usize, StoreError> {
        self.remove_events(up_to)
    }

    /// Visits a point-in-time snapshot of every record (one read transaction), in id order.
    fn scan(
        &self,
        visit: &mut dyn FnMut(Result<Credential, StoreError>),
    ) -> Result<(), StoreError> {
        reads::scan(&self.read_records()?, visit)
    }
}
