//! The sled backend: four trees in one sled database, every write one multi-tree transaction,
//! flushed and fsynced before it is acknowledged.
//!
//! | tree       | key                         | value                                  |
//! |------------|-----------------------------|----------------------------------------|
//! | `meta`     | `format_version`            | one byte, [`FORMAT_VERSION`]           |
//! | `records`  | credential id (29 bytes)    | `[FORMAT_VERSION] ++ postcard(record)` |
//! | `lookup`   | lookup tag (16 bytes)       | credential id                          |
//! | `accounts` | account ‖ `0x00` ‖ id       | empty                                  |
//!
//! See `docs/storage.md` for the layout, the durability promise and the kill test behind it.

use core::fmt;
use std::fs::File;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use keyward_core::{AccountId, Credential, CredentialId, LookupTag};
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

/// sled's page cache bound. The hot index already holds every credential in memory, so sled's
/// cache only needs the index trees' upper levels and recently written pages.
const CACHE_CAPACITY: u64 = 64 * 1024 * 1024;

/// The embedded default backend on sled 0.34.
///
/// One process at a time: a second [`SledStore::open`] of the same path (from this or another
/// process) fails at once with [`StoreError::InUse`].
pub struct SledStore {
    db: sled::Db,
    records: sled::Tree,
    lookup: sled::Tree,
    accounts: sled::Tree,
    /// sled's data file, fsynced after sled's own flush (which only `sync_file_range`s).
    data_file: File,
    path: PathBuf,
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
            records,
            lookup,
            accounts,
            data_file,
            path,
        };
        if fresh {
            // A new store (or, after damage, one whose meta entry is lost: the records say
            // nothing newer than this build, or decoding them will say so per record).
            meta.insert(FORMAT_VERSION_KEY, vec![FORMAT_VERSION])
                .map_err(|e| sled_err("writing the format version", e))?;
            store.flush()?;
            // Make the new files' directory entries durable too.
            if let Ok(dir) = File::open(&store.path) {
                dir.sync_all()
                    .map_err(|e| io_err("cannot sync directory", &store.path, e))?;
            }
        }
        Ok(store)
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
    /// ones, each re-checked inside its own transaction so that it is safe next to concurrent
    /// writes. Returns the number of entries fixed.
    pub fn repair_indexes(&self) -> Result<usize, StoreError> {
        let mut fixed = 0;
        for problem in self.check_indexes()? {
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
        let removed = tx_result("removing an undecodable record", r)?;
        if removed {
            self.flush()?;
        }
        Ok(removed)
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
        let mut stored = cred.clone();
        stored.revision = revision;
        let bytes = encode_credential(&stored)?;
        let id = cred.id.as_str().as_bytes();
        let acct_key = account_key(&cred.account, &cred.id);
        let r = (&self.records, &self.lookup, &self.accounts).transaction(
            |(records, index, accounts)| {
                let old = tx_record(records, id)?;
                let found = old.as_ref().map(|c| c.revision);
                if let Err(e) = check_revision(
                    &cred.id,
                    (cred.revision != 0).then_some(cred.revision),
                    found,
                ) {
                    return abort(e);
                }
                for s in &cred.secrets {
                    if let Some(owner) = index.get(s.lookup.as_bytes())?
                        && owner.as_ref() != id
                        && tx_owner_holds(records, &owner, &s.lookup)?
                    {
                        return abort(StoreError::DuplicateLookup { lookup: s.lookup });
                    }
                }
                if let Some(old) = &old {
                    for s in &old.secrets {
                        if cred.secret_by_lookup(&s.lookup).is_none()
                            && index.get(s.lookup.as_bytes())?.as_deref() == Some(id)
                        {
                            index.remove(s.lookup.as_bytes())?;
                        }
                    }
                    if old.account != cred.account {
                        accounts.remove(account_key(&old.account, &old.id))?;
                    }
                }
                for s in &cred.secrets {
                    index.insert(s.lookup.as_bytes(), id)?;
                }
                accounts.insert(acct_key.as_slice(), sled::IVec::default())?;
                records.insert(id, bytes.as_slice())?;
                Ok(())
            },
        );
        tx_result("write", r)?;
        self.flush()?;
        Ok(revision)
    }

    fn delete(&self, id: &CredentialId, revision: u64) -> Result<(), StoreError> {
        let key = id.as_str().as_bytes();
        let r = (&self.records, &self.lookup, &self.accounts).transaction(
            |(records, index, accounts)| {
                let old = tx_record(records, key)?;
                let found = old.as_ref().map(|c| c.revision);
                let Some(old) = old.filter(|c| c.revision == revision) else {
                    return abort(StoreError::Conflict {
                        id: id.clone(),
                        expected: revision,
                        found,
                    });
                };
                for s in &old.secrets {
                    if index.get(s.lookup.as_bytes())?.as_deref() == Some(key) {
                        index.remove(s.lookup.as_bytes())?;
                    }
                }
                accounts.remove(account_key(&old.account, &old.id))?;
                records.remove(key)?;
                Ok(())
            },
        );
        tx_result("delete", r)?;
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
