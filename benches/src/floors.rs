//! The bare durable write of each backend, without keyward: what one acknowledged write cannot
//! cost less than on that backend, measured next to the store's own writes so that each
//! backend's overhead is a ratio to its own floor.

use std::fs::File;
use std::path::Path;

use redb::{Database, Durability, TableDefinition};

/// Cache of the bare databases: the stores' own (sled `CACHE_CAPACITY`, redb `CACHE_SIZE`).
const CACHE: usize = 64 * 1024 * 1024;

/// The one table of [`RedbFloor`].
const ONE: TableDefinition<'static, &'static [u8], &'static [u8]> = TableDefinition::new("one");

/// The bytes of one fixture record, as the stores write it.
fn record_bytes() -> Result<Vec<u8>, String> {
    let mut cred = None;
    crate::fixture::for_each_credential(1, crate::fixture::UNKNOWN_SEED, |c, _| cred = Some(c));
    let cred = cred.ok_or("no credential")?;
    keyward_store::encode_credential(&cred).map_err(|e| e.to_string())
}

/// A fresh 29-byte key per write, shaped like a credential id.
fn next_key(i: &mut u64) -> String {
    *i += 1;
    format!("key_{:025}", *i)
}

/// sled: one `insert` of a record, `Db::flush`, and the `fdatasync` of sled's log file that
/// `SledStore` adds after every write (the `sled_bare_insert_flush_fdatasync` case of the
/// `write` bench).
pub struct SledFloor {
    db: sled::Db,
    log: File,
    bytes: Vec<u8>,
    i: u64,
}

impl SledFloor {
    /// A new sled database in `dir` (which must not hold one).
    pub fn open(dir: &Path) -> Result<Self, String> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE as u64)
            .open()
            .map_err(|e| e.to_string())?;
        let log = File::open(dir.join("db")).map_err(|e| e.to_string())?;
        Ok(Self {
            db,
            log,
            bytes: record_bytes()?,
            i: 0,
        })
    }

    /// One durable write.
    pub fn write(&mut self) -> Result<(), String> {
        let key = next_key(&mut self.i);
        self.db
            .insert(key.as_bytes(), self.bytes.as_slice())
            .map_err(|e| e.to_string())?;
        self.db.flush().map_err(|e| e.to_string())?;
        self.log.sync_data().map_err(|e| e.to_string())
    }
}

/// redb: one write transaction inserting one record, committed with
/// [`Durability::Immediate`]; with two-phase commit (as `RedbStore` commits) or without (redb's
/// default: one `fsync` less).
pub struct RedbFloor {
    db: Database,
    two_phase: bool,
    bytes: Vec<u8>,
    i: u64,
}

impl RedbFloor {
    /// A new redb file at `path` (which must not exist).
    pub fn open(path: &Path, two_phase: bool) -> Result<Self, String> {
        let db = Database::builder()
            .set_cache_size(CACHE)
            .create(path)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            db,
            two_phase,
            bytes: record_bytes()?,
            i: 0,
        })
    }

    /// One durable write.
    pub fn write(&mut self) -> Result<(), String> {
        let key = next_key(&mut self.i);
        let mut txn = self.db.begin_write().map_err(|e| e.to_string())?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| e.to_string())?;
        txn.set_two_phase_commit(self.two_phase);
        {
            let mut t = txn.open_table(ONE).map_err(|e| e.to_string())?;
            t.insert(key.as_bytes(), self.bytes.as_slice())
                .map_err(|e| e.to_string())?;
        }
        txn.commit().map_err(|e| e.to_string())
    }
}
