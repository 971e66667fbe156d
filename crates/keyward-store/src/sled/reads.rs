//! Reads: a record by id, by lookup tag, a page of a listing, and the scan.

use std::ops::Bound;

use keyward_core::{AccountId, Credential, CredentialId, LookupTag};

use super::{SledStore, account_key, account_prefix, sled_err};
use crate::{ListQuery, Page, StoreError};

impl SledStore {
    /// [`Store::get`](crate::Store::get): the record of `id`.
    pub(super) fn read_record(&self, id: &CredentialId) -> Result<Option<Credential>, StoreError> {
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

    /// [`Store::find_by_lookup`](crate::Store::find_by_lookup): the record the lookup entry
    /// points to, if it holds the tag.
    pub(super) fn find_record(&self, lookup: &LookupTag) -> Result<Option<Credential>, StoreError> {
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

    /// [`Store::list`](crate::Store::list): one page, through the account index when the query
    /// names an account.
    pub(super) fn list_page(&self, query: &ListQuery) -> Result<Page, StoreError> {
        let size = query.page_size();
        let items = match &query.account {
            Some(account) => self.list_account(account, query, size)?,
            None => self.list_records(query, size)?,
        };
        Ok(Page::of(items, size))
    }

    /// [`Store::scan`](crate::Store::scan): every record, in id order, as of one moment. sled's
    /// iterators see concurrent writes, so the scan holds the writer lock (every write of this
    /// store takes it, and sled's file lock keeps other processes out): writes wait until it
    /// ends.
    pub(super) fn scan_records(
        &self,
        visit: &mut dyn FnMut(Result<Credential, StoreError>),
    ) -> Result<(), StoreError> {
        // Not `lock_writer`: a store whose writes refuse can still be read.
        let _writer = self.writer.lock();
        for item in self.records.iter() {
            let (key, bytes) = item.map_err(|e| sled_err("reading records", e))?;
            visit(Self::decode(&key, &bytes));
        }
        Ok(())
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
