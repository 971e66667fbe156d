//! Checking and repairing the index trees against the records, and removing a record that
//! cannot be decoded: tools for operators, each fix re-checked in a sled transaction.

use core::fmt;

use keyward_core::{AccountId, Credential, CredentialId, LookupTag};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use super::{SledStore, account_key, lossy, sled_err, split_account_key};
#[cfg(doc)]
use crate::Store;
use crate::StoreError;
use crate::codec::decode_credential;

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

impl SledStore {
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
    pub(super) fn record_holds(
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
