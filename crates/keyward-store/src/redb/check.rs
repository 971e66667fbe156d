//! Operator tools: [`RedbStore::check_indexes`], [`RedbStore::repair_indexes`] and
//! [`RedbStore::remove_undecodable`].
//!
//! With every write one transaction, the indexes cannot drift from the records through a crash
//! or a failed write; these find and fix what something else did (a bug, a file edited with
//! another tool, a record of a newer format).

use ::redb::ReadableTable;
use keyward_core::{AccountId, CredentialId, LookupTag};

use super::reads::{Bytes, Keys, decode, owner_holds, raw, record_holds, stored};
use super::tables::{account_key, backend, lossy, split_account_key};
use super::write::{WriteTables, remove_lookup_of};
use super::{RedbIndexProblem, RedbStore};
use crate::StoreError;

/// Every inconsistency between `records` and the two indexes, read from one transaction.
pub(super) fn find_problems(
    records: &impl Bytes,
    lookup: &impl Bytes,
    accounts: &impl Keys,
) -> Result<Vec<RedbIndexProblem>, StoreError> {
    let mut problems = Vec::new();
    for item in records.iter().map_err(backend("reading records"))? {
        let (key, bytes) = item.map_err(backend("reading records"))?;
        let cred = match decode(key.value(), bytes.value()) {
            Ok(c) => c,
            Err(e) => {
                problems.push(RedbIndexProblem::UndecodableRecord(e));
                continue;
            }
        };
        let id = cred.id.as_str().as_bytes();
        for s in &cred.secrets {
            let entry = raw(lookup, s.lookup.as_bytes(), "reading the lookup index")?;
            if entry.as_deref() != Some(id) {
                problems.push(RedbIndexProblem::MissingLookup {
                    id: cred.id.clone(),
                    lookup: s.lookup,
                    found: entry.map(|v| lossy(&v)),
                });
            }
        }
        let has_account = accounts
            .get(account_key(&cred.account, &cred.id).as_slice())
            .map_err(backend("reading the account index"))?
            .is_some();
        if !has_account {
            problems.push(RedbIndexProblem::MissingAccountEntry {
                id: cred.id.clone(),
                account: cred.account.clone(),
            });
        }
    }
    for item in lookup.iter().map_err(backend("reading the lookup index"))? {
        let (tag, id) = item.map_err(backend("reading the lookup index"))?;
        let (tag, id) = (tag.value(), id.value());
        let holds = match LookupTag::new(tag) {
            Some(t) => owner_holds(records, id, &t)?,
            None => false,
        };
        if !holds {
            problems.push(RedbIndexProblem::DanglingLookup {
                lookup: lossy(tag),
                id: lossy(id),
            });
        }
    }
    for item in accounts
        .iter()
        .map_err(backend("reading the account index"))?
    {
        let (key, _) = item.map_err(backend("reading the account index"))?;
        let (account, id) = split_account_key(key.value());
        if !record_holds(records, id, |c| c.account.as_str().as_bytes() == account)? {
            problems.push(RedbIndexProblem::DanglingAccountEntry {
                account: lossy(account),
                id: lossy(id),
            });
        }
    }
    Ok(problems)
}

impl RedbStore {
    /// Checks that the lookup and account indexes agree with the records, reading everything in
    /// one read transaction: a consistent snapshot, so it may run while others write.
    /// Undecodable records are reported too.
    pub fn check_indexes(&self) -> Result<Vec<RedbIndexProblem>, StoreError> {
        let t = self.read_tables()?;
        find_problems(&t.records, &t.lookup, &t.accounts)
    }

    /// Fixes what [`RedbStore::check_indexes`] finds, except undecodable records (see
    /// [`RedbStore::remove_undecodable`]): adds missing index entries and removes dangling ones,
    /// all in one write transaction. A tag that two records hold is left to an operator.
    /// Returns the number of entries fixed.
    pub fn repair_indexes(&self) -> Result<usize, StoreError> {
        self.write(|t| {
            let mut fixed = 0;
            for problem in find_problems(&t.records, &t.lookup, &t.accounts)? {
                // Each fix re-checks, since an earlier fix may have settled it.
                fixed += usize::from(fix(t, problem)?);
            }
            Ok(fixed)
        })
    }

    /// Removes the record stored under `id` if (and only if) it cannot be decoded, with every
    /// index entry pointing to it, in one write transaction. For operators, after
    /// [`StoreError::Corrupt`] or a record [`StoreError::UnsupportedFormat`] named `id`; `id` is
    /// the name the error gave. Returns whether a record was removed. Reads the whole index
    /// tables.
    pub fn remove_undecodable(&self, id: &str) -> Result<bool, StoreError> {
        let key = id.as_bytes();
        self.write(|t| {
            let Some(bytes) = raw(&t.records, key, "reading records")? else {
                return Ok(false);
            };
            if decode(key, &bytes).is_ok() {
                return Ok(false);
            }
            let mut tags = Vec::new();
            for item in t
                .lookup
                .iter()
                .map_err(backend("reading the lookup index"))?
            {
                let (tag, owner) = item.map_err(backend("reading the lookup index"))?;
                if owner.value() == key {
                    tags.push(tag.value().to_vec());
                }
            }
            let mut account_keys = Vec::new();
            for item in t
                .accounts
                .iter()
                .map_err(backend("reading the account index"))?
            {
                let (k, _) = item.map_err(backend("reading the account index"))?;
                if split_account_key(k.value()).1 == key {
                    account_keys.push(k.value().to_vec());
                }
            }
            for tag in &tags {
                t.lookup
                    .remove(tag.as_slice())
                    .map_err(backend("writing the lookup index"))?;
            }
            for k in &account_keys {
                t.accounts
                    .remove(k.as_slice())
                    .map_err(backend("writing the account index"))?;
            }
            t.records.remove(key).map_err(backend("writing records"))?;
            Ok(true)
        })
    }
}

/// Fixes one problem inside the repair's transaction, if it is still there. Returns whether an
/// entry changed.
fn fix(t: &mut WriteTables<'_>, problem: RedbIndexProblem) -> Result<bool, StoreError> {
    match problem {
        RedbIndexProblem::UndecodableRecord(_) => Ok(false),
        RedbIndexProblem::MissingLookup { id, lookup, .. } => fix_missing_lookup(t, &id, &lookup),
        RedbIndexProblem::DanglingLookup { lookup, .. } => {
            fix_dangling_lookup(t, lookup.as_bytes())
        }
        RedbIndexProblem::MissingAccountEntry { id, account } => {
            fix_missing_account(t, &id, &account)
        }
        RedbIndexProblem::DanglingAccountEntry { account, id } => {
            let mut key = account.into_bytes();
            key.push(0);
            key.extend_from_slice(id.as_bytes());
            fix_dangling_account(t, &key)
        }
    }
}

fn fix_missing_lookup(
    t: &mut WriteTables<'_>,
    id: &CredentialId,
    lookup: &LookupTag,
) -> Result<bool, StoreError> {
    let key = id.as_str().as_bytes();
    let holds = stored(&t.records, key)?.is_some_and(|c| c.secret_by_lookup(lookup).is_some());
    if !holds {
        return Ok(false);
    }
    match raw(&t.lookup, lookup.as_bytes(), "reading the lookup index")? {
        Some(owner) if owner == key => return Ok(false),
        // Two records claim the tag: leave it to an operator.
        Some(owner) if owner_holds(&t.records, &owner, lookup)? => return Ok(false),
        _ => {}
    }
    t.lookup
        .insert(lookup.as_bytes().as_slice(), key)
        .map_err(backend("writing the lookup index"))?;
    Ok(true)
}

fn fix_dangling_lookup(t: &mut WriteTables<'_>, tag: &[u8]) -> Result<bool, StoreError> {
    let Some(owner) = raw(&t.lookup, tag, "reading the lookup index")? else {
        return Ok(false);
    };
    let holds = match LookupTag::new(tag) {
        Some(l) => owner_holds(&t.records, &owner, &l)?,
        None => false,
    };
    if holds {
        return Ok(false);
    }
    remove_lookup_of(t, tag, &owner)?;
    Ok(true)
}

fn fix_missing_account(
    t: &mut WriteTables<'_>,
    id: &CredentialId,
    account: &AccountId,
) -> Result<bool, StoreError> {
    let key = account_key(account, id);
    let belongs =
        stored(&t.records, id.as_str().as_bytes())?.is_some_and(|c| c.account == *account);
    let present = t
        .accounts
        .get(key.as_slice())
        .map_err(backend("reading the account index"))?
        .is_some();
    if !belongs || present {
        return Ok(false);
    }
    t.accounts
        .insert(key.as_slice(), ())
        .map_err(backend("writing the account index"))?;
    Ok(true)
}

fn fix_dangling_account(t: &mut WriteTables<'_>, key: &[u8]) -> Result<bool, StoreError> {
    let present = t
        .accounts
        .get(key)
        .map_err(backend("reading the account index"))?
        .is_some();
    let (account, id) = split_account_key(key);
    if !present || record_holds(&t.records, id, |c| c.account.as_str().as_bytes() == account)? {
        return Ok(false);
    }
    t.accounts
        .remove(key)
        .map_err(backend("writing the account index"))?;
    Ok(true)
}
