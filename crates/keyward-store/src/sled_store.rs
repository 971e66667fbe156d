//! The sled backend: four trees in one sled database. Every write is a short sequence of plain
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
//! 3. insert the new lookup and account entries;
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
//! each entry the intent names is made to agree with the record as recovered (old or new), and
//! the intent is removed. A store therefore never opens with its indexes out of step with its
//! records, as with the transaction. A build that predates the intent ignores it and at worst
//! sees the dangling entries described in `docs/storage.md`, which it already tolerates.
//!
//! See `docs/storage.md` for the layout, the durability promise and the kill test behind it.

use core::fmt;
use std::fs::File;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use keyward_core::{AccountId, Credential, CredentialId, LookupTag};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use crate::codec::{FORMAT_VERSION, decode_credential, encode_credential};
use crate::{ListQuery, Page, Store, StoreError, check_revision};

/// Name of the tree holding the store's format version.
pub const META_TREE: &str = "meta";
/// Name of the tree holding the records (id → encoded credential).
pub const RECORDS_TREE: &str = "records";
/// Name of the lookup index tree (lookup tag → id).
pub const LOOKUP_TREE: &str = "lookup";
/// Name of the account index tree (account ‖ 0x00 ‖ id → empty).
pub const ACCOUNTS_TREE: &str = "accounts";
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

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

fn abort<T>(e: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

fn tx_result<T>(what: &str, r: Result<T, TransactionError<StoreError>>) -> Result<T, StoreError> {
    match r {
        Ok(v) => Ok(v),
        Err(TransactionError::Abort(e)) => Err(e),
        Err(TransactionError::Storage(e)) => Err(sled_err(what, e)),
    }
}

/// Reads and decodes a record inside a transaction.
fn tx_record(records: &TransactionalTree, id: &[u8]) -> TxResult<Option<Credential>> {
    match records.get(id)? {
        None => Ok(None),
        Some(bytes) => match decode_credential(&lossy(id), &bytes) {
            Ok(c) => Ok(Some(c)),
            Err(e) => abort(e),
        },
    }
}

/// Whether the record `owner` (inside a transaction) holds `lookup`. An undecodable owner
/// counts as holding it: refusing a write is safer than stealing a tag.
fn tx_owner_holds(records: &TransactionalTree, owner: &[u8], lookup: &LookupTag) -> TxResult<bool> {
    match records.get(owner)? {
        None => Ok(false),
        Some(bytes) => Ok(decode_credential(&lossy(owner), &bytes)
            .map_or(true, |c| c.secret_by_lookup(lookup).is_some())),
    }
}

/// The write in progress, stored under [`PENDING_WRITE_KEY`] as
/// `[FORMAT_VERSION] ++ postcard(WriteIntent)`: which index entries the write may change, so
/// that a crash in its middle can be settled by looking at those entries only.
#[derive(Debug, Serialize, Deserialize)]
struct WriteIntent {
    /// The credential id.
    id: Vec<u8>,
    /// Every lookup tag whose entry the write may add or remove.
    lookups: Vec<Vec<u8>>,
    /// Every account-index key the write may add or remove.
    accounts: Vec<Vec<u8>>,
}

impl WriteIntent {
    fn encode(&self) -> Result<Vec<u8>, StoreError> {
        postcard::to_extend(self, vec![FORMAT_VERSION]).map_err(|e| StoreError::Backend {
            message: format!("encoding the write intent of {}: {e}", lossy(&self.id)),
        })
    }

    /// `None` if the bytes are not an intent this build wrote.
    fn decode(bytes: &[u8]) -> Option<Self> {
        match bytes.split_first() {
            Some((&FORMAT_VERSION, body)) => match postcard::take_from_bytes(body) {
                Ok((intent, [])) => Some(intent),
                _ => None,
            },
            _ => None,
        }
    }
}

/// A tree of the store, for [`Step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Meta,
    Records,
    Lookup,
    Accounts,
}

/// One plain sled operation of a write: an insert, or a remove when `value` is `None`.
#[derive(Debug)]
struct Step {
    tree: Which,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
}

impl Step {
    fn insert(tree: Which, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Self {
            tree,
            key: key.into(),
            value: Some(value.into()),
        }
    }

    fn remove(tree: Which, key: impl Into<Vec<u8>>) -> Self {
        Self {
            tree,
            key: key.into(),
            value: None,
        }
    }
}

/// A checked write: its intent, and its steps in order (the intent's insert first and its
/// removal last).
#[derive(Debug)]
struct Plan {
    intent: WriteIntent,
    steps: Vec<Step>,
}

impl Plan {
    /// Brackets `body` (the index and record steps, in the order that keeps the record the
    /// commit point) with the intent's insert and removal.
    fn new(intent: WriteIntent, body: Vec<Step>) -> Result<Self, StoreError> {
        let mut steps = Vec::with_capacity(body.len() + 2);
        steps.push(Step::insert(
            Which::Meta,
            PENDING_WRITE_KEY,
            intent.encode()?,
        ));
        steps.extend(body);
        steps.push(Step::remove(Which::Meta, PENDING_WRITE_KEY));
        Ok(Self { intent, steps })
    }
}

/// How long [`SledStore::open`] keeps trying a held lock, and the pause between tries.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(900);
const LOCK_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

impl SledStore {
    /// Opens (or creates) a store at `path` (a directory).
    ///
    /// Fails with [`StoreError::InUse`] if another process (or another `SledStore` in this
    /// one) still has it open after about a second, and with [`StoreError::UnsupportedFormat`] if a newer keyward wrote
    /// it; nothing is written to the store in either case.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        // A store just dropped in this process can hold its file lock a moment longer, while
        // sled's background threads finish their last writes: retry the lock briefly, so that
        // close-then-reopen works, and answer `InUse` after about a second, never hang.
        let started = std::time::Instant::now();
        let db = loop {
            match sled::Config::new()
                .path(&path)
                .cache_capacity(CACHE_CAPACITY)
                .open()
            {
                Ok(db) => break db,
                Err(sled::Error::Io(io)) if io.to_string().contains("could not acquire lock") => {
                    if started.elapsed() + LOCK_RETRY_PAUSE > LOCK_WAIT {
                        return Err(StoreError::InUse {
                            what: path.display().to_string(),
                        });
                    }
                    std::thread::sleep(LOCK_RETRY_PAUSE);
                }
                Err(e) => {
                    return Err(StoreError::Backend {
                        message: format!("sled: cannot open {}: {e}", path.display()),
                    });
                }
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
        let data_path = path.join("db");
        let data_file = File::open(&data_path).map_err(|e| io_err("cannot open", &data_path, e))?;
        let store = Self {
            db,
            meta,
            records,
            lookup,
            accounts,
            data_file,
            path,
            writer: Mutex::new(()),
            broken: AtomicBool::new(false),
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

    /// Settles the intent of a write that a crash interrupted, if there is one (see the module
    /// documentation), and makes the result durable. An intent this build cannot read (damage
    /// that sled's checksums did not catch) is settled by repairing every index.
    fn settle_pending(&self) -> Result<(), StoreError> {
        let Some(bytes) = self
            .meta
            .get(PENDING_WRITE_KEY)
            .map_err(|e| sled_err("reading the pending write", e))?
        else {
            return Ok(());
        };
        match WriteIntent::decode(&bytes) {
            Some(intent) => self.settle(&intent)?,
            None => {
                self.repair_indexes()?;
                self.meta
                    .remove(PENDING_WRITE_KEY)
                    .map_err(|e| sled_err("removing the pending write", e))?;
            }
        }
        self.flush()
    }

    /// Makes every index entry `intent` names agree with the record as it is now (whether the
    /// write reached its commit point or not), then removes the intent. Idempotent.
    fn settle(&self, intent: &WriteIntent) -> Result<(), StoreError> {
        let id = intent.id.as_slice();
        let record = match self
            .records
            .get(id)
            .map_err(|e| sled_err("reading records", e))?
        {
            None => None,
            Some(bytes) => match Self::decode(id, &bytes) {
                Ok(c) => Some(c),
                // Cannot tell what it holds: leave its entries as they are (an undecodable
                // record is reported and removed on its own, see `remove_undecodable`).
                Err(_) => return self.clear_intent(),
            },
        };
        for tag in &intent.lookups {
            let holds = match (&record, LookupTag::new(tag)) {
                (Some(c), Some(t)) => c.secret_by_lookup(&t).is_some(),
                _ => false,
            };
            let entry = self
                .lookup
                .get(tag)
                .map_err(|e| sled_err("reading the lookup index", e))?;
            match entry {
                Some(owner) if owner.as_ref() == id => {
                    if !holds {
                        self.lookup
                            .remove(tag.as_slice())
                            .map_err(|e| sled_err("settling the lookup index", e))?;
                    }
                }
                other => {
                    // The tag was free (or dangling) when the write checked it, and no write
                    // has run since; still, never take a tag from a record that holds it.
                    let taken = match (&other, LookupTag::new(tag)) {
                        (Some(owner), Some(t)) => self.owner_holds(owner, &t)?,
                        _ => false,
                    };
                    if holds && !taken {
                        self.lookup
                            .insert(tag.as_slice(), id)
                            .map_err(|e| sled_err("settling the lookup index", e))?;
                    }
                }
            }
        }
        for key in &intent.accounts {
            let (account, key_id) = split_account_key(key);
            let belongs = key_id == id
                && record
                    .as_ref()
                    .is_some_and(|c| c.account.as_str().as_bytes() == account);
            if belongs {
                self.accounts
                    .insert(key.as_slice(), sled::IVec::default())
                    .map_err(|e| sled_err("settling the account index", e))?;
            } else {
                self.accounts
                    .remove(key.as_slice())
                    .map_err(|e| sled_err("settling the account index", e))?;
            }
        }
        self.clear_intent()
    }

    fn clear_intent(&self) -> Result<(), StoreError> {
        self.meta
            .remove(PENDING_WRITE_KEY)
            .map(drop)
            .map_err(|e| sled_err("removing the pending write", e))
    }

    /// Whether the record `owner` holds `lookup`. An undecodable owner counts as holding it:
    /// refusing a write is safer than stealing a tag.
    fn owner_holds(&self, owner: &[u8], lookup: &LookupTag) -> Result<bool, StoreError> {
        self.record_holds(owner, |c| c.secret_by_lookup(lookup).is_some())
    }

    fn tree(&self, which: Which) -> &sled::Tree {
        match which {
            Which::Meta => &self.meta,
            Which::Records => &self.records,
            Which::Lookup => &self.lookup,
            Which::Accounts => &self.accounts,
        }
    }

    /// Runs `steps` in order, stopping at the first error.
    fn run_steps(&self, steps: &[Step]) -> Result<(), StoreError> {
        for step in steps {
            let tree = self.tree(step.tree);
            let r = match &step.value {
                Some(v) => tree.insert(step.key.as_slice(), v.as_slice()).map(drop),
                None => tree.remove(step.key.as_slice()).map(drop),
            };
            r.map_err(|e| sled_err("write", e))?;
        }
        Ok(())
    }

    /// Runs a checked write's steps (the caller holds the writer lock). If one fails, the
    /// intent is settled at once, so the store is consistent again whether or not the record
    /// was written; if even that fails, writes refuse until the store is reopened.
    fn commit(&self, plan: &Plan) -> Result<(), StoreError> {
        let r = self.run_steps(&plan.steps);
        if r.is_err() && self.settle(&plan.intent).is_err() {
            self.broken.store(true, Ordering::Release);
        }
        r
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

    /// Makes every write so far durable: sled's flush (write + `sync_file_range` of its log),
    /// then an `fdatasync` of its data file, which also persists the file size and asks the
    /// device to flush its write cache.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(|e| sled_err("flush", e))?;
        self.data_file
            .sync_data()
            .map_err(|e| io_err("cannot sync", &self.path.join("db"), e))
    }

    /// Checks that the lookup and account indexes agree with the records, reading everything.
    /// Undecodable records are reported too. Not a snapshot: run it while no one writes.
    pub fn check_indexes(&self) -> Result<Vec<IndexProblem>, StoreError> {
        let mut problems = Vec::new();
        for item in self.records.iter() {
            let (key, bytes) = item.map_err(|e| sled_err("reading records", e))?;
            let cred = match decode_credential(&lossy(&key), &bytes) {
                Ok(c) => c,
                Err(e) => {
                    problems.push(IndexProblem::UndecodableRecord(e));
                    continue;
                }
            };
            for s in &cred.secrets {
                let entry = self
                    .lookup
                    .get(s.lookup.as_bytes())
                    .map_err(|e| sled_err("reading the lookup index", e))?;
                if entry.as_deref() != Some(cred.id.as_str().as_bytes()) {
                    problems.push(IndexProblem::MissingLookup {
                        id: cred.id.clone(),
                        lookup: s.lookup,
                        found: entry.map(|v| lossy(&v)),
                    });
                }
            }
            let has_account = self
                .accounts
                .contains_key(account_key(&cred.account, &cred.id))
                .map_err(|e| sled_err("reading the account index", e))?;
            if !has_account {
                problems.push(IndexProblem::MissingAccountEntry {
                    id: cred.id.clone(),
                    account: cred.account.clone(),
                });
            }
        }
        for item in self.lookup.iter() {
            let (tag, id) = item.map_err(|e| sled_err("reading the lookup index", e))?;
            let holds = match LookupTag::new(&tag) {
                Some(tag) => self.record_holds(&id, |c| c.secret_by_lookup(&tag).is_some())?,
                None => false,
            };
            if !holds {
                problems.push(IndexProblem::DanglingLookup {
                    lookup: lossy(&tag),
                    id: lossy(&id),
                });
            }
        }
        for item in self.accounts.iter() {
            let (key, _) = item.map_err(|e| sled_err("reading the account index", e))?;
            let (account, id) = split_account_key(&key);
            let holds = self.record_holds(id, |c| c.account.as_str().as_bytes() == account)?;
            if !holds {
                problems.push(IndexProblem::DanglingAccountEntry {
                    account: lossy(account),
                    id: lossy(id),
                });
            }
        }
        Ok(problems)
    }

    /// Whether the record `id` exists and passes `test`. An undecodable record passes (it is
    /// reported on its own).
    fn record_holds(
        &self,
        id: &[u8],
        test: impl Fn(&Credential) -> bool,
    ) -> Result<bool, StoreError> {
        Ok(
            match self
                .records
                .get(id)
                .map_err(|e| sled_err("reading records", e))?
            {
                None => false,
                Some(bytes) => decode_credential(&lossy(id), &bytes).map_or(true, |c| test(&c)),
            },
        )
    }

    /// Fixes what [`SledStore::check_indexes`] finds (except undecodable records, see
    /// [`SledStore::remove_undecodable`]): adds missing index entries and removes dangling
    /// ones, each re-checked inside its own transaction under the writer lock, so that it is
    /// safe next to concurrent writes. Returns the number of entries fixed.
    pub fn repair_indexes(&self) -> Result<usize, StoreError> {
        let mut fixed = 0;
        for problem in self.check_indexes()? {
            // Each fix re-checks under the writer lock, between two writes, never inside one.
            let _writer = self.lock_writer()?;
            let done = match problem {
                IndexProblem::UndecodableRecord(_) => false,
                IndexProblem::MissingLookup { id, lookup, .. } => {
                    self.fix_missing_lookup(&id, &lookup)?
                }
                IndexProblem::DanglingLookup { lookup, .. } => {
                    self.fix_dangling_lookup(lookup.as_bytes())?
                }
                IndexProblem::MissingAccountEntry { id, account } => {
                    self.fix_missing_account(&id, &account)?
                }
                IndexProblem::DanglingAccountEntry { account, id } => {
                    let mut key = account.into_bytes();
                    key.push(0);
                    key.extend_from_slice(id.as_bytes());
                    self.fix_dangling_account(&key)?
                }
            };
            fixed += usize::from(done);
        }
        if fixed > 0 {
            self.flush()?;
        }
        Ok(fixed)
    }

    fn fix_missing_lookup(
        &self,
        id: &CredentialId,
        lookup: &LookupTag,
    ) -> Result<bool, StoreError> {
        let id = id.as_str().as_bytes();
        let r = (&self.records, &self.lookup).transaction(|(records, index)| {
            let holds =
                tx_record(records, id)?.is_some_and(|c| c.secret_by_lookup(lookup).is_some());
            if !holds {
                return Ok(false);
            }
            if let Some(owner) = index.get(lookup.as_bytes())?
                && owner.as_ref() != id
                && tx_owner_holds(records, &owner, lookup)?
            {
                // Two records claim the tag: leave it to an operator.
                return Ok(false);
            }
            index.insert(lookup.as_bytes(), id)?;
            Ok(true)
        });
        tx_result("repairing the lookup index", r)
    }

    fn fix_dangling_lookup(&self, tag: &[u8]) -> Result<bool, StoreError> {
        let r = (&self.records, &self.lookup).transaction(|(records, index)| {
            let Some(owner) = index.get(tag)? else {
                return Ok(false);
            };
            let holds = match LookupTag::new(tag) {
                Some(t) => tx_owner_holds(records, &owner, &t)?,
                None => false,
            };
            if holds {
                return Ok(false);
            }
            index.remove(tag)?;
            Ok(true)
        });
        tx_result("repairing the lookup index", r)
    }

    fn fix_missing_account(
        &self,
        id: &CredentialId,
        account: &AccountId,
    ) -> Result<bool, StoreError> {
        let key = account_key(account, id);
        let r = (&self.records, &self.accounts).transaction(|(records, accounts)| {
            let holds =
                tx_record(records, id.as_str().as_bytes())?.is_some_and(|c| c.account == *account);
            if holds && accounts.get(&key)?.is_none() {
                accounts.insert(key.as_slice(), sled::IVec::default())?;
                return Ok(true);
            }
            Ok(false)
        });
        tx_result("repairing the account index", r)
    }

    fn fix_dangling_account(&self, key: &[u8]) -> Result<bool, StoreError> {
        let (account, id) = split_account_key(key);
        let r = (&self.records, &self.accounts).transaction(|(records, accounts)| {
            if accounts.get(key)?.is_none() {
                return Ok(false);
            }
            let holds = match records.get(id)? {
                None => false,
                Some(bytes) => decode_credential(&lossy(id), &bytes)
                    .map_or(true, |c| c.account.as_str().as_bytes() == account),
            };
            if holds {
                return Ok(false);
            }
            accounts.remove(key)?;
            Ok(true)
        });
        tx_result("repairing the account index", r)
    }

    /// Removes the record stored under `id` if (and only if) it cannot be decoded, with every
    /// index entry pointing to it. For operators, after [`StoreError::Corrupt`] or a record
    /// [`StoreError::UnsupportedFormat`] named `id`; `id` is the name the error gave. Returns
    /// whether a record was removed. Reads the whole index trees.
    pub fn remove_undecodable(&self, id: &str) -> Result<bool, StoreError> {
        let key = id.as_bytes();
        let mut lookups = Vec::new();
        for item in self.lookup.iter() {
            let (tag, owner) = item.map_err(|e| sled_err("reading the lookup index", e))?;
            if owner.as_ref() == key {
                lookups.push(tag);
            }
        }
        let mut account_keys = Vec::new();
        for item in self.accounts.iter() {
            let (k, _) = item.map_err(|e| sled_err("reading the account index", e))?;
            if split_account_key(&k).1 == key {
                account_keys.push(k);
            }
        }
        let writer = self.lock_writer()?;
        let r = (&self.records, &self.lookup, &self.accounts).transaction(
            |(records, index, accounts)| {
                let Some(bytes) = records.get(key)? else {
                    return Ok(false);
                };
                if decode_credential(id, &bytes).is_ok() {
                    return Ok(false);
                }
                for tag in &lookups {
                    if index.get(tag)?.as_deref() == Some(key) {
                        index.remove(tag)?;
                    }
                }
                for k in &account_keys {
                    accounts.remove(k)?;
                }
                records.remove(key)?;
                Ok(true)
            },
        );
        drop(writer);
        let removed = tx_result("removing an undecodable record", r)?;
        if removed {
            self.flush()?;
        }
        Ok(removed)
    }

    /// Reads the stored record of `id` (the caller holds the writer lock).
    fn stored(&self, id: &[u8]) -> Result<Option<Credential>, StoreError> {
        match self
            .records
            .get(id)
            .map_err(|e| sled_err("reading records", e))?
        {
            None => Ok(None),
            Some(bytes) => Self::decode(id, &bytes).map(Some),
        }
    }

    /// Checks a put (revision, unused lookup tags) and lists its steps; writes nothing. The
    /// caller holds the writer lock, so nothing changes between these reads and the steps.
    fn plan_put(&self, cred: &Credential, revision: u64) -> Result<Plan, StoreError> {
        let id = cred.id.as_str().as_bytes();
        let old = self.stored(id)?;
        check_revision(
            &cred.id,
            (cred.revision != 0).then_some(cred.revision),
            old.as_ref().map(|c| c.revision),
        )?;
        for s in &cred.secrets {
            if let Some(owner) = self
                .lookup
                .get(s.lookup.as_bytes())
                .map_err(|e| sled_err("reading the lookup index", e))?
                && owner.as_ref() != id
                && self.owner_holds(&owner, &s.lookup)?
            {
                return Err(StoreError::DuplicateLookup { lookup: s.lookup });
            }
        }
        let mut stored = cred.clone();
        stored.revision = revision;
        let bytes = encode_credential(&stored)?;
        let acct_key = account_key(&cred.account, &cred.id);

        // Entries the new record no longer has, still pointing to it.
        let mut stale_lookups = Vec::new();
        let mut stale_account = None;
        if let Some(old) = &old {
            for s in &old.secrets {
                if cred.secret_by_lookup(&s.lookup).is_none()
                    && self
                        .lookup
                        .get(s.lookup.as_bytes())
                        .map_err(|e| sled_err("reading the lookup index", e))?
                        .as_deref()
                        == Some(id)
                {
                    stale_lookups.push(s.lookup.as_bytes().to_vec());
                }
            }
            if old.account != cred.account {
                stale_account = Some(account_key(&old.account, &old.id));
            }
        }

        let intent = WriteIntent {
            id: id.to_vec(),
            lookups: cred
                .secrets
                .iter()
                .map(|s| s.lookup.as_bytes().to_vec())
                .chain(stale_lookups.iter().cloned())
                .collect(),
            accounts: std::iter::once(acct_key.clone())
                .chain(stale_account.iter().cloned())
                .collect(),
        };
        // New entries, then the record (the commit point), then the stale entries' removal.
        let mut body = Vec::with_capacity(cred.secrets.len() + stale_lookups.len() + 3);
        for s in &cred.secrets {
            body.push(Step::insert(Which::Lookup, s.lookup.as_bytes(), id));
        }
        body.push(Step::insert(Which::Accounts, acct_key, Vec::new()));
        body.push(Step::insert(Which::Records, id, bytes));
        for tag in stale_lookups {
            body.push(Step::remove(Which::Lookup, tag));
        }
        if let Some(key) = stale_account {
            body.push(Step::remove(Which::Accounts, key));
        }
        Plan::new(intent, body)
    }

    /// Checks a delete (the stored revision must be `revision`) and lists its steps; writes
    /// nothing. The caller holds the writer lock.
    fn plan_delete(&self, id: &CredentialId, revision: u64) -> Result<Plan, StoreError> {
        let key = id.as_str().as_bytes();
        let old = self.stored(key)?;
        let found = old.as_ref().map(|c| c.revision);
        let Some(old) = old.filter(|c| c.revision == revision) else {
            return Err(StoreError::Conflict {
                id: id.clone(),
                expected: revision,
                found,
            });
        };
        let mut lookups = Vec::new();
        for s in &old.secrets {
            if self
                .lookup
                .get(s.lookup.as_bytes())
                .map_err(|e| sled_err("reading the lookup index", e))?
                .as_deref()
                == Some(key)
            {
                lookups.push(s.lookup.as_bytes().to_vec());
            }
        }
        let acct_key = account_key(&old.account, &old.id);
        let intent = WriteIntent {
            id: key.to_vec(),
            lookups: lookups.clone(),
            accounts: vec![acct_key.clone()],
        };
        // The record first (the commit point), then its entries.
        let mut body = Vec::with_capacity(lookups.len() + 2);
        body.push(Step::remove(Which::Records, key));
        for tag in lookups {
            body.push(Step::remove(Which::Lookup, tag));
        }
        body.push(Step::remove(Which::Accounts, acct_key));
        Plan::new(intent, body)
    }

    fn decode(id: &[u8], bytes: &[u8]) -> Result<Credential, StoreError> {
        decode_credential(&lossy(id), bytes)
    }

    fn list_records(&self, query: &ListQuery, size: usize) -> Result<Vec<Credential>, StoreError> {
        let start = match &query.after {
            Some(after) => Bound::Excluded(after.as_str().as_bytes().to_vec()),
            None => Bound::Unbounded,
        };
        let mut items = Vec::new();
        for item in self.records.range::<Vec<u8>, _>((start, Bound::Unbounded)) {
            let (key, bytes) = item.map_err(|e| sled_err("reading records", e))?;
            let cred = Self::decode(&key, &bytes)?;
            if query.matches(&cred) {
                items.push(cred);
                if items.len() > size {
                    break;
                }
            }
        }
        Ok(items)
    }

    fn list_account(
        &self,
        account: &AccountId,
        query: &ListQuery,
        size: usize,
    ) -> Result<Vec<Credential>, StoreError> {
        let prefix = account_prefix(account);
        let start = match &query.after {
            Some(after) => Bound::Excluded(account_key(account, after)),
            None => Bound::Included(prefix.clone()),
        };
        // The smallest key above every `account ‖ 0x00 ‖ …`.
        let mut end = account_prefix(account);
        if let Some(last) = end.last_mut() {
            *last = 1;
        }
        let mut items = Vec::new();
        for item in self.accounts.range((start, Bound::Excluded(end))) {
            let (key, _) = item.map_err(|e| sled_err("reading the account index", e))?;
            let id = &key[prefix.len().min(key.len())..];
            let Some(bytes) = self
                .records
                .get(id)
                .map_err(|e| sled_err("reading records", e))?
            else {
                // Deleted since the index entry was read (or a dangling entry).
                continue;
            };
            let cred = Self::decode(id, &bytes)?;
            if query.matches(&cred) {
                items.push(cred);
                if items.len() > size {
                    break;
                }
            }
        }
        Ok(items)
    }
}

fn split_account_key(key: &[u8]) -> (&[u8], &[u8]) {
    match key.iter().position(|&b| b == 0) {
        Some(i) => (&key[..i], &key[i + 1..]),
        None => (key, &[]),
    }
}

impl Store for SledStore {
    fn get(&self, id: &CredentialId) -> Result<Option<Credential>, StoreError> {
        let key = id.as_str().as_bytes();
        match self
            .records
            .get(key)
            .map_err(|e| sled_err("reading records", e))?
        {
            None => Ok(None),
            Some(bytes) => Self::decode(key, &bytes).map(Some),
        }
    }

    fn find_by_lookup(&self, lookup: &LookupTag) -> Result<Option<Credential>, StoreError> {
        let Some(id) = self
            .lookup
            .get(lookup.as_bytes())
            .map_err(|e| sled_err("reading the lookup index", e))?
        else {
            return Ok(None);
        };
        let Some(bytes) = self
            .records
            .get(&id)
            .map_err(|e| sled_err("reading records", e))?
        else {
            return Ok(None);
        };
        let cred = Self::decode(&id, &bytes)?;
        // A dangling entry (the record no longer holds the tag) finds nothing.
        Ok(cred.secret_by_lookup(lookup).is_some().then_some(cred))
    }

    fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        let size = query.page_size();
        let mut items = match &query.account {
            Some(account) => self.list_account(account, query, size)?,
            None => self.list_records(query, size)?,
        };
        let next = if items.len() > size {
            items.truncate(size);
            items.last().map(|c| c.id.clone())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    fn put(&self, cred: &Credential) -> Result<u64, StoreError> {
        let revision = cred
            .revision
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend {
                message: format!("{}: revision overflow", cred.id),
            })?;
        {
            let _writer = self.lock_writer()?;
            let plan = self.plan_put(cred, revision)?;
            self.commit(&plan)?;
        }
        self.flush()?;
        Ok(revision)
    }

    fn delete(&self, id: &CredentialId, revision: u64) -> Result<(), StoreError> {
        {
            let _writer = self.lock_writer()?;
            let plan = self.plan_delete(id, revision)?;
            self.commit(&plan)?;
        }
        self.flush()
    }

    fn scan(
        &self,
        visit: &mut dyn FnMut(Result<Credential, StoreError>),
    ) -> Result<(), StoreError> {
        for item in self.records.iter() {
            let (key, bytes) = item.map_err(|e| sled_err("reading records", e))?;
            visit(Self::decode(&key, &bytes));
        }
        Ok(())
    }
}

/// An inconsistency between the records and the index trees, found by
/// [`SledStore::check_indexes`]. Each names the credential it concerns.
#[derive(Debug)]
#[non_exhaustive]
pub enum IndexProblem {
    /// A record cannot be decoded ([`StoreError::Corrupt`] or [`StoreError::UnsupportedFormat`]
    /// naming it).
    UndecodableRecord(StoreError),
    /// A secret's lookup tag has no index entry, or one pointing elsewhere: the backend's
    /// [`Store::find_by_lookup`] does not find it (the hot index, warmed from the records, does).
    MissingLookup {
        /// The credential.
        id: CredentialId,
        /// Its secret's tag.
        lookup: LookupTag,
        /// The id the entry points to instead, if any.
        found: Option<String>,
    },
    /// A lookup entry whose credential does not exist or does not hold the tag. Harmless:
    /// lookups ignore it and a write claiming the tag replaces it.
    DanglingLookup {
        /// The tag (as stored).
        lookup: String,
        /// The id it points to (as stored).
        id: String,
    },
    /// A credential missing from its account's index: listing the account leaves it out.
    MissingAccountEntry {
        /// The credential.
        id: CredentialId,
        /// Its account.
        account: AccountId,
    },
    /// An account entry whose credential does not exist or belongs to another account.
    /// Harmless: listing skips it.
    DanglingAccountEntry {
        /// The account (as stored).
        account: String,
        /// The id (as stored).
        id: String,
    },
}

impl fmt::Display for IndexProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UndecodableRecord(e) => fmt::Display::fmt(e, f),
            Self::MissingLookup {
                id,
                lookup,
                found: None,
            } => write!(f, "{id}: lookup index entry for {lookup} is missing"),
            Self::MissingLookup {
                id,
                lookup,
                found: Some(other),
            } => write!(f, "{id}: lookup index entry for {lookup} points to {other}"),
            Self::DanglingLookup { lookup, id } => write!(
                f,
                "lookup index entry {lookup} points to {id}, which does not hold it"
            ),
            Self::MissingAccountEntry { id, account } => {
                write!(f, "{id}: missing from the index of account {account}")
            }
            Self::DanglingAccountEntry { account, id } => write!(
                f,
                "account index of {account} lists {id}, which is not one of its credentials"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The write-intent protocol, step by step: a crash after any prefix of a write's steps
    //! must reopen to the old credential or the new one with consistent indexes, and readers
    //! in between must see one or the other.
    #![allow(clippy::unwrap_used)]

    use keyward_core::{
        Environment, KeyFormat, KeyType, Metadata, Name, Pepper, PermissionSet, SecretVersion,
        Timestamp, random_id,
    };

    use super::*;

    fn secret(version: u32) -> SecretVersion {
        let g = KeyFormat::default()
            .generate(
                KeyType::Secret,
                &Environment::Production,
                &Pepper::from_bytes([7; 32]),
            )
            .unwrap();
        let now = Timestamp::from_millis(1_735_689_600_000);
        SecretVersion {
            version,
            lookup: g.lookup,
            digest: g.digest,
            not_before: now,
            not_after: None,
            created_at: now,
            revoked_at: None,
        }
    }

    fn credential(account: &str) -> Credential {
        let now = Timestamp::from_millis(1_735_689_600_000);
        Credential {
            id: random_id().unwrap(),
            account: account.parse().unwrap(),
            environment: Environment::Production,
            key_type: KeyType::Secret,
            name: "intent test".parse::<Name>().unwrap(),
            permissions: PermissionSet::new(),
            metadata: Metadata::new(),
            created_at: now,
            modified_at: now,
            expires_at: None,
            enabled: true,
            revision: 0,
            secrets: vec![secret(1)],
        }
    }

    fn list_account(store: &SledStore, account: &str) -> Vec<CredentialId> {
        let query = ListQuery {
            account: Some(account.parse().unwrap()),
            ..ListQuery::default()
        };
        let page = store.list(&query).unwrap();
        page.items.into_iter().map(|c| c.id).collect()
    }

    /// What a reader sees of `id` through the store's API agrees with exactly one version of
    /// it, `visible` (`None`: absent): the record, every tag of `tags`, both accounts.
    fn assert_reads(store: &SledStore, id: &CredentialId, visible: Option<&Credential>) {
        let got = store.get(id).unwrap();
        assert_eq!(got.as_ref(), visible, "get");
        for tag in TAGS.with(|t| t.borrow().clone()) {
            let found = store.find_by_lookup(&tag).unwrap();
            let expected = visible.filter(|c| c.secret_by_lookup(&tag).is_some());
            assert_eq!(found.as_ref(), expected, "find_by_lookup({tag})");
        }
        for account in ["acct_a", "acct_b"] {
            let listed = list_account(store, account).contains(id);
            let expected = visible.is_some_and(|c| c.account.as_str() == account);
            assert_eq!(listed, expected, "listing {account}");
        }
    }

    std::thread_local! {
        /// Every tag of the scenario under test (old and new versions).
        static TAGS: std::cell::RefCell<Vec<LookupTag>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    fn reopen(store: SledStore) -> SledStore {
        let path = store.path().to_path_buf();
        drop(store);
        SledStore::open(path).unwrap()
    }

    fn assert_settled(store: &SledStore) {
        let problems = store.check_indexes().unwrap();
        assert!(problems.is_empty(), "index problems: {problems:?}");
        assert!(store.meta.get(PENDING_WRITE_KEY).unwrap().is_none());
    }

    /// A write of `old` → `new` (`new = None`: delete), cut after every prefix of its steps.
    fn every_crash_point(old: Option<Credential>, new: Option<Credential>) {
        let id = old.as_ref().or(new.as_ref()).unwrap().id.clone();
        let tags: Vec<LookupTag> = old
            .iter()
            .chain(new.iter())
            .flat_map(|c| c.secrets.iter().map(|s| s.lookup))
            .collect();
        TAGS.with(|t| *t.borrow_mut() = tags);
        let mut k = 0;
        loop {
            let dir = tempfile::tempdir().unwrap();
            let store = SledStore::open(dir.path().join("db")).unwrap();
            let old = old.as_ref().map(|c| {
                let mut stored = c.clone();
                stored.revision = store.put(c).unwrap();
                stored
            });
            let revision = old.as_ref().map_or(0, |c| c.revision);
            let (plan, new) = match &new {
                Some(n) => {
                    let mut n = n.clone();
                    n.revision = revision;
                    let plan = store.plan_put(&n, revision + 1).unwrap();
                    n.revision = revision + 1;
                    (plan, Some(n))
                }
                None => (store.plan_delete(&id, revision).unwrap(), None),
            };
            let commit = plan
                .steps
                .iter()
                .position(|s| s.tree == Which::Records)
                .unwrap();
            // The intent comes first and goes last.
            assert_eq!(plan.steps[0].tree, Which::Meta);
            assert_eq!(plan.steps.last().map(|s| s.tree), Some(Which::Meta));
            if k > plan.steps.len() {
                break;
            }
            store.run_steps(&plan.steps[..k]).unwrap();
            let expected = if k > commit {
                new.as_ref()
            } else {
                old.as_ref()
            };
            // Readers in the middle of the write.
            assert_reads(&store, &id, expected);
            // A crash here: what is on disk is this prefix.
            let store = reopen(store);
            assert_settled(&store);
            assert_reads(&store, &id, expected);
            // And the store takes the next write.
            let other = credential("acct_a");
            store.put(&other).unwrap();
            assert_settled(&store);
            k += 1;
        }
    }

    #[test]
    fn a_crash_in_an_issue_reopens_to_nothing_or_the_credential() {
        every_crash_point(None, Some(credential("acct_a")));
    }

    #[test]
    fn a_crash_in_a_rotation_that_moves_and_purges_reopens_to_old_or_new() {
        let mut old = credential("acct_a");
        old.secrets.push(secret(2));
        let mut new = old.clone();
        // Purge version 1, keep 2, add 3, and move the credential to another account.
        new.secrets.remove(0);
        new.secrets.push(secret(3));
        new.account = "acct_b".parse().unwrap();
        every_crash_point(Some(old), Some(new));
    }

    #[test]
    fn a_crash_in_a_delete_reopens_to_old_or_nothing() {
        let mut old = credential("acct_a");
        old.secrets.push(secret(2));
        every_crash_point(Some(old), None);
    }

    #[test]
    fn an_unreadable_intent_is_settled_by_a_full_repair() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path().join("db")).unwrap();
        let cred = credential("acct_a");
        store.put(&cred).unwrap();
        // A dangling lookup entry and an intent this build cannot read.
        store
            .lookup
            .insert(secret(1).lookup.as_bytes(), cred.id.as_str().as_bytes())
            .unwrap();
        store
            .meta
            .insert(PENDING_WRITE_KEY, &[FORMAT_VERSION, 0xff, 0xff][..])
            .unwrap();
        assert_eq!(store.check_indexes().unwrap().len(), 1);
        let store = reopen(store);
        assert_settled(&store);
        assert_eq!(store.get(&cred.id).unwrap().map(|c| c.id), Some(cred.id));
    }

    #[test]
    fn settling_twice_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path().join("db")).unwrap();
        let cred = credential("acct_a");
        let plan = store.plan_put(&cred, 1).unwrap();
        // Cut after the new entries, before the record.
        store.run_steps(&plan.steps[..3]).unwrap();
        store.settle(&plan.intent).unwrap();
        assert_settled(&store);
        store.settle(&plan.intent).unwrap();
        assert_settled(&store);
        assert_eq!(store.get(&cred.id).unwrap(), None);
    }
}
