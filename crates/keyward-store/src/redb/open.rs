//! [`RedbStore::open`]: the lock, redb's integrity check, the format version.

use std::fs::File;
use std::path::{Path, PathBuf};

use ::redb::{Builder, DatabaseError, ReadableDatabase, StorageError, TableError};

use super::RedbStore;
use super::reads::raw;
use super::recovery::{self, DirLock};
use super::tables::{
    REDB_ACCOUNTS_TABLE, REDB_EVENTS_TABLE, REDB_FORMAT_VERSION_KEY, REDB_LOOKUP_TABLE,
    REDB_META_TABLE, REDB_RECORDS_TABLE, backend,
};
use super::write::begin;
use crate::lock_wait::{LOCK_RETRY_PAUSE, LOCK_WAIT, LockWait};
use crate::{FORMAT_VERSION, StoreError};

/// redb's page cache bound. The hot index already holds every credential in memory, so the
/// cache only needs the tables' upper levels and recently written pages.
const CACHE_SIZE: usize = 64 * 1024 * 1024;

/// What the format-version check found.
enum Layout {
    /// Every table is there and the version is this build's.
    Ready,
    /// A table or the version entry is missing (a new file): create them.
    Incomplete,
}

impl RedbStore {
    /// Opens (or creates) a store in the redb file at `path` (e.g. `DIR/keyward.redb`; a
    /// missing `DIR` is created).
    ///
    /// Every open verifies the checksum of every page of the file and rebuilds redb's allocator
    /// state: after a crash this is redb's repair, which is why a crashed store needs nothing
    /// else; after a clean shutdown it is what keeps a file damaged since from being trusted
    /// (redb would otherwise read it unverified, and may panic on it). It reads the whole
    /// file, once, as the hot index's warm-up scan does anyway. The one crash redb does not
    /// recover from, one during the file's creation, is handled here: the unfinished file
    /// (it never held anything) is removed and the store made afresh
    /// ([`RedbStore::unfinished_file_removed`]).
    ///
    /// Fails with [`StoreError::InUse`] if another `RedbStore` (in this process or another)
    /// still has the file open after about a second, with [`StoreError::UnsupportedFormat`]
    /// if a newer keyward wrote it, and with [`StoreError::Backend`] naming the path if the
    /// file is not a redb database, is damaged, or has a damaged format version. Only redb's
    /// integrity check writes to a store refused for its format version (the file's allocator
    /// state, not its data).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let created = !path.exists();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend {
                message: format!("cannot create the directory {}: {e}", dir.display()),
            })?;
        }
        let mut builder = Builder::new();
        builder
            .set_cache_size(CACHE_SIZE)
            .set_check_integrity_on_open(true);
        let lock_wait = LockWait::open();
        // A file whose creation a crash interrupted is removed and made again, under this lock
        // from before the removal until the store is made (see `recovery`).
        let mut recovering: Option<DirLock> = None;
        let mut unfinished_removed = None;
        let mut created = created;
        let db = loop {
            match builder.create(&path) {
                Ok(db) => break db,
                Err(DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch) => {
                    lock_wait.pause(&path)?;
                }
                Err(e) if unfinished_removed.is_some() || !recovery::is_unfinished(&path) => {
                    return Err(open_error(&path, e));
                }
                // Unfinished: take the lock, then ask redb again under it.
                Err(_) if recovering.is_none() => {
                    recovering = Some(DirLock::acquire(&path, LOCK_WAIT, LOCK_RETRY_PAUSE)?);
                }
                // Still unfinished under the lock, and no one holds it: make it again.
                Err(_) => {
                    unfinished_removed = Some(recovery::remove(&path)?);
                    created = true;
                }
            }
        };
        let store = Self {
            db,
            path,
            unfinished_removed,
        };
        if let Layout::Incomplete = store.check_layout().map_err(|e| at(&store.path, e))? {
            store.create_layout().map_err(|e| at(&store.path, e))?;
        }
        if created {
            // Make the new file's directory entry durable too.
            sync_parent(&store.path)?;
        }
        drop(recovering);
        Ok(store)
    }

    /// The size of the file [`RedbStore::open`] found unfinished (a creation a crash
    /// interrupted: no magic number, nothing written past the header) and removed before
    /// making the store afresh; `None` if it found none. For the caller to log.
    pub fn unfinished_file_removed(&self) -> Option<u64> {
        self.unfinished_removed
    }

    /// Reads the format version and checks that every table exists; writes nothing.
    fn check_layout(&self) -> Result<Layout, StoreError> {
        let txn = self.db.begin_read().map_err(backend("beginning a read"))?;
        let meta = match txn.open_table(REDB_META_TABLE) {
            Ok(meta) => meta,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Layout::Incomplete),
            Err(e) => return Err(backend("opening the meta table")(e)),
        };
        let Some(version) = raw(&meta, REDB_FORMAT_VERSION_KEY, "reading the format version")?
        else {
            return Ok(Layout::Incomplete);
        };
        check_version(&version)?;
        let exists = |r: Result<(), TableError>| match r {
            Ok(()) => Ok(true),
            Err(TableError::TableDoesNotExist(_)) => Ok(false),
            Err(e) => Err(backend("opening the tables")(e)),
        };
        let all = exists(txn.open_table(REDB_RECORDS_TABLE).map(drop))?
            && exists(txn.open_table(REDB_LOOKUP_TABLE).map(drop))?
            && exists(txn.open_table(REDB_ACCOUNTS_TABLE).map(drop))?
            && exists(txn.open_table(REDB_EVENTS_TABLE).map(drop))?;
        Ok(if all {
            Layout::Ready
        } else {
            Layout::Incomplete
        })
    }

    /// Creates the missing tables and writes the format version if it is missing (a new store,
    /// or one whose entry was lost: its records say nothing newer than this build, or decoding
    /// them will say so per record), in one durable write.
    fn create_layout(&self) -> Result<(), StoreError> {
        let txn = begin(&self.db)?;
        {
            let mut meta = txn
                .open_table(REDB_META_TABLE)
                .map_err(backend("creating the meta table"))?;
            match raw(&meta, REDB_FORMAT_VERSION_KEY, "reading the format version")? {
                Some(version) => check_version(&version)?,
                None => {
                    meta.insert(REDB_FORMAT_VERSION_KEY, [FORMAT_VERSION].as_slice())
                        .map_err(backend("writing the format version"))?;
                }
            }
            txn.open_table(REDB_RECORDS_TABLE)
                .map_err(backend("creating the records table"))?;
            txn.open_table(REDB_LOOKUP_TABLE)
                .map_err(backend("creating the lookup table"))?;
            txn.open_table(REDB_ACCOUNTS_TABLE)
                .map_err(backend("creating the accounts table"))?;
            // A store made before the audit log gets its (empty) events table here.
            txn.open_table(REDB_EVENTS_TABLE)
                .map_err(backend("creating the events table"))?;
        }
        txn.commit().map_err(backend("creating the tables"))
    }
}

/// The stored format version must be this build's.
fn check_version(version: &[u8]) -> Result<(), StoreError> {
    match *version {
        [FORMAT_VERSION] => Ok(()),
        [found] if found > FORMAT_VERSION => Err(StoreError::UnsupportedFormat {
            id: None,
            found,
            supported: FORMAT_VERSION,
        }),
        _ => Err(StoreError::Backend {
            message: format!("damaged format version ({version:?})"),
        }),
    }
}

/// Names the store's path in a backend error found while opening it.
fn at(path: &Path, e: StoreError) -> StoreError {
    match e {
        StoreError::Backend { message } => StoreError::Backend {
            message: format!("store {}: {message}", path.display()),
        },
        other => other,
    }
}

/// What redb's refusal to open `path` means, naming the path.
fn open_error(path: &Path, e: DatabaseError) -> StoreError {
    let path = path.display();
    let message = match &e {
        DatabaseError::Storage(StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::InvalidData =>
        {
            format!("{path} is not a redb database, or its header is damaged: {io}")
        }
        DatabaseError::Storage(StorageError::Corrupted(what)) => {
            format!("{path} is a damaged redb database: {what}")
        }
        DatabaseError::UpgradeRequired(version) => {
            format!("{path} is in redb's file format {version}, which this build cannot open")
        }
        _ => format!("cannot open the redb store {path}: {e}"),
    };
    StoreError::Backend { message }
}

/// `fsync`s the directory holding `path`, so that a new file's entry survives a power loss.
fn sync_parent(path: &Path) -> Result<(), StoreError> {
    let dir: PathBuf = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::Backend {
            message: format!("cannot sync the directory {}: {e}", dir.display()),
        })
}
