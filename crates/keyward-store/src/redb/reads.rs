//! Reads, inside any transaction: each function takes the tables it reads, opened by a read
//! transaction (the [`Store`](crate::Store) read methods, [`RedbStore::check_indexes`]) or by
//! the write transaction that is about to change them (writes, repairs).
//!
//! [`RedbStore::check_indexes`]: super::RedbStore::check_indexes

use std::ops::Bound;

use ::redb::ReadableTable;
use keyward_core::{AccountId, Credential, LookupTag};

use super::tables::{account_end, account_key, account_prefix, backend, lossy};
use crate::{ListQuery, StoreError, decode_credential};

/// A table of byte strings (`records`, `lookup`).
pub(super) trait Bytes: ReadableTable<&'static [u8], &'static [u8]> {}
impl<T: ReadableTable<&'static [u8], &'static [u8]>> Bytes for T {}

/// A table of keys without values (`accounts`).
pub(super) trait Keys: ReadableTable<&'static [u8], ()> {}
impl<T: ReadableTable<&'static [u8], ()>> Keys for T {}

/// Decodes the record stored under `id`; errors name `id` as stored.
pub(super) fn decode(id: &[u8], bytes: &[u8]) -> Result<Credential, StoreError> {
    decode_credential(&lossy(id), bytes)
}

/// The raw value under `key`, copied out of the table.
pub(super) fn raw(
    table: &impl Bytes,
    key: &[u8],
    what: &'static str,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(table
        .get(key)
        .map_err(backend(what))?
        .map(|v| v.value().to_vec()))
}

/// The record stored under `id`, decoded.
pub(super) fn stored(records: &impl Bytes, id: &[u8]) -> Result<Option<Credential>, StoreError> {
    match records.get(id).map_err(backend("reading records"))? {
        None => Ok(None),
        Some(bytes) => decode(id, bytes.value()).map(Some),
    }
}

/// Whether the record `id` exists and passes `test`. An undecodable record passes: it is
/// reported on its own, and refusing a write is safer than taking over what it may hold.
pub(super) fn record_holds(
    records: &impl Bytes,
    id: &[u8],
    test: impl Fn(&Credential) -> bool,
) -> Result<bool, StoreError> {
    Ok(match records.get(id).map_err(backend("reading records"))? {
        None => false,
        Some(bytes) => decode(id, bytes.value()).map_or(true, |c| test(&c)),
    })
}

/// Whether the record `owner` holds `lookup` (an undecodable owner counts as holding it).
pub(super) fn owner_holds(
    records: &impl Bytes,
    owner: &[u8],
    lookup: &LookupTag,
) -> Result<bool, StoreError> {
    record_holds(records, owner, |c| c.secret_by_lookup(lookup).is_some())
}

/// The credential holding `tag`, through the lookup index. An entry whose record does not hold
/// the tag (damage) finds nothing.
pub(super) fn find_by_lookup(
    records: &impl Bytes,
    lookup: &impl Bytes,
    tag: &LookupTag,
) -> Result<Option<Credential>, StoreError> {
    let Some(id) = raw(lookup, tag.as_bytes(), "reading the lookup index")? else {
        return Ok(None);
    };
    Ok(stored(records, &id)?.filter(|c| c.secret_by_lookup(tag).is_some()))
}

/// Up to `size + 1` credentials matching `query` (no account filter), in id order after
/// `query.after`.
pub(super) fn list_records(
    records: &impl Bytes,
    query: &ListQuery,
    size: usize,
) -> Result<Vec<Credential>, StoreError> {
    let start: Bound<&[u8]> = match &query.after {
        Some(after) => Bound::Excluded(after.as_str().as_bytes()),
        None => Bound::Unbounded,
    };
    let range = records
        .range::<&[u8]>((start, Bound::Unbounded))
        .map_err(backend("reading records"))?;
    let mut items = Vec::new();
    for item in range {
        let (key, bytes) = item.map_err(backend("reading records"))?;
        let cred = decode(key.value(), bytes.value())?;
        if query.matches(&cred) {
            items.push(cred);
            if items.len() > size {
                break;
            }
        }
    }
    Ok(items)
}

/// Up to `size + 1` credentials of `account` matching `query`, in id order after
/// `query.after`, through the account index. An entry whose record is gone or belongs to
/// another account (damage) is skipped by the query's own account filter.
pub(super) fn list_account(
    records: &impl Bytes,
    accounts: &impl Keys,
    account: &AccountId,
    query: &ListQuery,
    size: usize,
) -> Result<Vec<Credential>, StoreError> {
    let prefix = account_prefix(account);
    let after = query
        .after
        .as_ref()
        .map(|after| account_key(account, after));
    let start: Bound<&[u8]> = match &after {
        Some(key) => Bound::Excluded(key),
        None => Bound::Included(&prefix),
    };
    let end = account_end(account);
    let range = accounts
        .range::<&[u8]>((start, Bound::Excluded(end.as_slice())))
        .map_err(backend("reading the account index"))?;
    let mut items = Vec::new();
    for item in range {
        let (key, _) = item.map_err(backend("reading the account index"))?;
        let key = key.value();
        let id = &key[prefix.len().min(key.len())..];
        let Some(cred) = stored(records, id)? else {
            continue;
        };
        if query.matches(&cred) {
            items.push(cred);
            if items.len() > size {
                break;
            }
        }
    }
    Ok(items)
}

/// Every record of `records`, decoded, in id order: an undecodable one as an `Err` naming it.
pub(super) fn scan(
    records: &impl Bytes,
    visit: &mut dyn FnMut(Result<Credential, StoreError>),
) -> Result<(), StoreError> {
    for item in records.iter().map_err(backend("reading records"))? {
        let (key, bytes) = item.map_err(backend("reading records"))?;
        visit(decode(key.value(), bytes.value()));
    }
    Ok(())
}
