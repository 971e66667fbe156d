//! The sled backend: five trees in one sled database. Every write is a short sequence of plain
//! sled operations under the store's writer lock, bracketed by a write intent in `meta`, and is
//! flushed and fsynced before it is acknowledged.
//!
//! | tree       | key                         | value                                  |
//! |------------|-----------------------------|----------------------------------------|
//! | `meta`     | `format_version`            | one byte, [`FORMAT_VERSION`]           |
//! | `meta`     | `pending_write`             | the write in progress (see below)      |
//! | `records`  | credential id (29 bytes)    | `[FORMAT_VERSION] ++ postcard(record)` |
//! | `lookup`   | lookup tag (16 bytes)       | credential id                          |
//! | `accounts` | account ‖ `0x00` ‖ id       | empty                                  |
//! | `events`   | sequence number, 8 bytes BE | the audit event, as the engine encoded it |
//!
//! # Why not a sled transaction
//!
//! sled 0.34 makes a multi-tree transaction (and a single-tree `apply_batch`, which uses the same
//! mechanism) atomic by reserving a batch manifest in its own log buffer ahead of the batch's
//! updates; that buffer is written with its own `pwrite` and `sync_file_range`, on the same page
//! as the updates that follow, so a durable transaction costs two synchronous log writes where a
//! plain insert costs one (plus sled's transaction overhead). Measured on the development
//! machine (`benches/benches/write.rs`, interleaved), that was about two thirds of the difference
//! between a durable issue and a bare insert + flush + `fdatasync`.
//!
//! # The write-intent protocol
//!
//! A write of one credential is, under the store's writer lock (which, with sled's file lock,
//! makes this store the only writer):
//!
//! 1. read the stored record and check the revision ([`check_revision`]) and that no other
//!    credential holds one of the new lookup tags; nothing is written if a check fails;
//! 2. insert the write intent into `meta` (`pending_write`: the id, and every lookup tag and
//!    account key the write may change);
//! 3. insert the new lookup and account entries, and the write's audit event if it has one;
//! 4. insert (or remove) the record: **the commit point**;
//! 5. remove the lookup and account entries the record no longer has;
//! 6. remove the intent.
//!
//! Then, outside the lock, sled's flush and an `fdatasync` make it durable.
//!
//! *Readers* see the old credential or the new one, never a mix: a lookup entry or account entry
//! only counts if the record it points to holds the tag or belongs to the account
//! (`find_by_lookup` and listing by account check), so the entries added before the commit
//! point and the ones removed after it are invisible.
//!
//! *After a crash*, sled recovers a prefix of its log (the property its own batches rely on:
//! recovery stops at the first write that did not reach the disk). If that prefix ends inside
//! steps 2–6, the intent is there, and [`SledStore::open`] settles it before anything else:
//! each entry the intent names is made to agree with the record as recovered (old or new), the
//! audit event the intent names is removed if the record is the old one, and the intent is
//! removed: a change and its event are both there or neither is. A store therefore never opens with its indexes out of step with its
//! records, as with the transaction. A build that predates the intent ignores it and at worst
//! sees the dangling entries described in `docs/storage.md`, which it already tolerates.
//!
//! See `docs/storage.md` for the layout, the durability promise and the kill test behind it.

mod events;
#[cfg(test)]
mod fixtures;
mod intent;
mod reads;
mod recovery;
mod repair;

use core::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use keyward_core::{AccountId, Credential, CredentialId, LookupTag};
use parking_lot::Mutex;

#[cfg(doc)]
use crate::check_revision;
use crate::codec::{FORMAT_VERSION, decode_credential};
use crate::{AuditEntry, Change, ListQuery, Page, Store, StoreError};

pub use crate::IndexProblem;
pub use recovery::{Recovered, recover_leftovers};

/// Name of the tree holding the store's format version.
pub const META_TREE: &str = "meta";
/// Name of the tree holding the records (id → encoded credential).
pub const RECORDS_TREE: &str = "records";
/// Name of the lookup index tree (lookup tag → id).
pub const LOOKUP_TREE: &str = "lookup";
/// Name of the account index tree (account ‖ 0x00 ‖ id → empty).
pub const ACCOUNTS_TREE: &str = "accounts";
/// Name of the audit log tree (sequence number, 8 bytes big-endian → event bytes).
pub const EVENTS_TREE: &str = "events";
/// Key of the format version in the [`META_TREE`].
pub const FORMAT_VERSION_KEY: &[u8] = b"format_version";
/// Key of the write in progress in the [`META_TREE`]: present only between the steps of a write,
/// or after a crash in the middle of one until the next [`SledStore::open`] settles it.
const PENDING_WRITE_KEY: &[u8] = b"pending_write";

/// sled's page cache bound. The hot index already holds every credential in memory, so sled's
/// cache only needs the index trees' upper levels and recently written pages.
const CACHE_CAPACITY: u64 = 64 * 1024 * 1024;

/// The embedded default backend on sled 0.34.
///
/// One process at a time: a second [`SledStore::open`] of the same path (from this or another
/// process) fails with [`StoreError::InUse`] after retrying for under a second, never hangs.
pub struct SledStore {
    db: sled::Db,
    meta: sled::Tree,
    records: sled::Tree,
    lookup: sled::Tree,
    accounts: sled::Tree,
    events: sled::Tree,
    /// sled's data file, fsynced after sled's own flush (which only `sync_file_range`s).
    data_file: File,
    path: PathBuf,
    /// Held by every write from its first read to its last tree operation (not during the
    /// flush), so that one write's checks and steps are never interleaved with another's.
    writer: Mutex<()>,
    /// Set when a write failed half-way and its intent could not be settled: the intent is
    /// still in `meta`, and the next write would replace it, so writes refuse until the store is
    /// reopened (which settles it).
    broken: AtomicBool,
    /// What [`recover_leftovers`] removed before sled opened the directory.
    recovered: Vec<Recovered>,
}

impl fmt::Debug for SledStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn sled_err(what: &str, e: sled::Error) -> StoreError {
    StoreError::Backend {
        message: format!("sled {what}: {e}"),
    }
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Backend {
        message: format!("{what} {}: {e}", path.display()),
    }
}

/// The account-index key: `account ‖ 0x00 ‖ id`. Account ids are printable ASCII, so the
/// separator sorts below every account byte and `account ‖ 0x00` is an exact prefix.
fn account_key(account: &AccountId, id: &CredentialId) -> Vec<u8> {
    let mut k = account_prefix(account);
    k.extend_from_slice(id.as_str().as_bytes());
    k
}

fn account_prefix(account: &AccountId) -> Vec<u8> {
    let mut k = Vec::with_capacity(account.as_str().len() + 30);
    k.extend_from_slice(account.as_str().as_bytes());
    k.push(0);
    k
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn split_account_key(key: &[u8]) -> (&[u8], &[u8]) {
    match key.iter().position(|&b| b == 0) {
        Some(i) => (&key[..i], &key[i + 1..]),
        None => (key, &[]),
    }
}

impl SledStore {
    /// Opens (or creates) a store at `path` (a directory).
    ///
    /// First removes what a crash left that sled would trip over ([`recover_leftovers`]; what
    /// it removed is [`SledStore::recovered`]), then settles a write a crash interrupted.
    ///
    /// Fails with [`StoreError::InUse`] if another process (or another `SledStore` in this
    /// one) still has it open after about a second, with [`StoreError::UnsupportedFormat`] if a
    /// newer keyward wrote it, and with [`StoreError::Unopenable`] if sled cannot open it even
    /// after recovery; nothing is written to the store in any of these cases (beyond the
    /// recovery).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        // A store just dropped in this process can hold its file lock a moment longer, while
        // sled's background threads finish their last writes: retry the lock briefly, so that
        // close-then-reopen works, and answer `InUse` after about a second, never hang.
        let lock_wait = crate::lock_wait::LockWait::open();
        let mut recovered = Vec::new();
        let db = loop {
            // What a crash left that sled would trip over goes first, under sled's own lock
            // (a held lock is `InUse`, retried like sled's).
            let held = match recover_leftovers(&path, false) {
                Ok(done) => {
                    recovered.extend(done);
                    match sled::Config::new()
                        .path(&path)
                        .cache_capacity(CACHE_CAPACITY)
                        .open()
                    {
                        Ok(db) => break db,
                        Err(sled::Error::Io(io))
                            if io.to_string().contains("could not acquire lock") =>
                        {
                            true
                        }
                        Err(e) => return Err(recovery::unopenable(&path, &e, &recovered)),
                    }
                }
                Err(StoreError::InUse { .. }) => true,
                Err(e) => return Err(e),
            };
            if held {
                lock_wait.pause(&path)?;
            }
        };
        let meta = db
            .open_tree(META_TREE)
            .map_err(|e| sled_err("opening the meta tree", e))?;
        let mut fresh = false;
        match meta
            .get(FORMAT_VERSION_KEY)
            .map_err(|e| sled_err("reading the format version", e))?
        {
            Some(v) => match *v {
                [FORMAT_VERSION] => {}
                [found] if found > FORMAT_VERSION => {
                    return Err(StoreError::UnsupportedFormat {
                        id: None,
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
                _ => {
                    return Err(StoreError::Backend {
                        message: format!(
                            "store at {} has a damaged format version ({:?})",
                            path.display(),
                            &*v
                        ),
                    });
                }
            },
            None => fresh = true,
        }
        let tree = |name: &str| {
            db.open_tree(name)
                .map_err(|e| sled_err(&format!("opening the {name} tree"), e))
        };
        let records = tree(RECORDS_TREE)?;
        let lookup = tree(LOOKUP_TREE)?;
        let accounts = tree(ACCOUNTS_TREE)?;
        let events = tree(EVENTS_TREE)?;
        let data_path = path.join("db");
        let data_file = File::open(&data_path).map_err(|e| io_err("cannot open", &data_path, e))?;
        let store = Self {
            db,
            meta,
            records,
            lookup,
            accounts,
            events,
            data_file,
            path,
            writer: Mutex::new(()),
            broken: AtomicBool::new(false),
            recovered,
        };
        if fresh {
            // A new store (or, after damage, one whose meta entry is lost: the records say
            // nothing newer than this build, or decoding them will say so per record).
            store
                .meta
                .insert(FORMAT_VERSION_KEY, vec![FORMAT_VERSION])
                .map_err(|e| sled_err("writing the format version", e))?;
            store.flush()?;
            // Make the new files' directory entries durable too.
            if let Ok(dir) = File::open(&store.path) {
                dir.sync_all()
                    .map_err(|e| io_err("cannot sync directory", &store.path, e))?;
            }
        }
        store.settle_pending()?;
        Ok(store)
    }

    /// Takes the writer lock, unless an earlier failure left an intent that must be settled by
    /// reopening the store first.
    fn lock_writer(&self) -> Result<parking_lot::MutexGuard<'_, ()>, StoreError> {
        let guard = self.writer.lock();
        if self.broken.load(Ordering::Acquire) {
            return Err(StoreError::Backend {
                message: format!(
                    "sled store {}: a write failed half-way and could not be rolled back; \
                     reopen the store to recover",
                    self.path.display()
                ),
            });
        }
        Ok(guard)
    }

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What [`SledStore::open`] removed or repaired before sled opened the directory: the
    /// leftovers of a crash (see [`Recovered`]), for the caller to log. Empty after a clean
    /// shutdown.
    pub fn recovered(&self) -> &[Recovered] {
        &self.recovered
    }

    /// Makes every write so far durable: sled's flush (write + `sync_file_range` of its log),
    /// then an `fdatasync` of its data file, which also persists the file size and asks the
    /// device to flush its write cache.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(|e| sled_err("flush", e))?;
        self.data_file
            .sync_data()
            .map_err(|e| io_err("cannot sync", &self.path.join("db"), e))
    }

    fn decode(id: &[u8], bytes: &[u8]) -> Result<Credential, StoreError> {
        decode_credential(&lossy(id), bytes)
    }
}

impl Store for SledStore {
    fn get(&self, id: &CredentialId) -> Result<Option<Credential>, StoreError> {
        self.read_record(id)
    }

    fn find_by_lookup(&self, lookup: &LookupTag) -> Result<Option<Credential>, StoreError> {
        self.find_record(lookup)
    }

    fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        self.list_page(query)
    }

    fn commit(&self, change: &Change<'_>) -> Result<(), StoreError> {
        self.write_change(change)
    }

    fn events(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.read_events(after, limit)
    }

    fn last_event(&self) -> Result<Option<AuditEntry>, StoreError> {
        let _writer = self.writer.lock();
        self.read_last_event()
    }

    fn trim_events(&self, up_to: u64) -> Result<usize, StoreError> {
        self.remove_events(up_to)
    }

    fn scan(
        &self,
        visit: &mut dyn FnMut(Result<Credential, StoreError>),
    ) -> Result<(), StoreError> {
        self.scan_records(visit)
    }
}
