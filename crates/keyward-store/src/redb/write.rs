//! Writes: each is one redb write transaction, committed durably (see the module documentation
//! of [`super`]).

use ::redb::{Durability, Table, WriteTransaction};
use keyward_core::{Credential, CredentialId};

use super::RedbStore;
use super::events::last_seq;
use super::reads::{owner_holds, raw, stored};
use super::tables::{
    REDB_ACCOUNTS_TABLE, REDB_EVENTS_TABLE, REDB_LOOKUP_TABLE, REDB_RECORDS_TABLE, account_key,
    backend,
};
use crate::{
    Change, StoreError, Write, check_delete, check_event_seq, check_put_revision,
    encode_credential, event_key, next_revision,
};

/// The tables a write changes, opened by its transaction.
pub(super) struct WriteTables<'t> {
    pub(super) records: Table<'t, &'static [u8], &'static [u8]>,
    pub(super) lookup: Table<'t, &'static [u8], &'static [u8]>,
    pub(super) accounts: Table<'t, &'static [u8], ()>,
    pub(super) events: Table<'t, &'static [u8], &'static [u8]>,
}

impl<'t> WriteTables<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            records: txn
                .open_table(REDB_RECORDS_TABLE)
                .map_err(backend("opening the records table"))?,
            lookup: txn
                .open_table(REDB_LOOKUP_TABLE)
                .map_err(backend("opening the lookup table"))?,
            accounts: txn
                .open_table(REDB_ACCOUNTS_TABLE)
                .map_err(backend("opening the accounts table"))?,
            events: txn
                .open_table(REDB_EVENTS_TABLE)
                .map_err(backend("opening the events table"))?,
        })
    }
}

/// Begins a write transaction that commits durably: `fsync` before `commit` returns, in two
/// phases (the new state, then the commit slot that makes it current).
pub(super) fn begin(db: &::redb::Database) -> Result<WriteTransaction, StoreError> {
    let mut txn = db.begin_write().map_err(backend("beginning a write"))?;
    txn.set_durability(Durability::Immediate)
        .map_err(backend("setting the write's durability"))?;
    txn.set_two_phase_commit(true);
    Ok(txn)
}

impl RedbStore {
    /// Runs `f` in one write transaction and commits it if `f` succeeds; if `f` fails, the
    /// transaction is aborted and nothing is written. Other writers wait (redb admits one write
    /// transaction at a time), so `f`'s reads and writes are serialised with every other write.
    pub(super) fn write<T>(
        &self,
        f: impl FnOnce(&mut WriteTables<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let txn = begin(&self.db)?;
        let result = WriteTables::open(&txn).and_then(|mut tables| f(&mut tables));
        match result {
            Ok(value) => {
                txn.commit().map_err(backend("committing a write"))?;
                Ok(value)
            }
            Err(e) => {
                // The error that stopped the write is the one to report; an abort that fails
                // leaves nothing committed either.
                drop(txn.abort());
                Err(e)
            }
        }
    }

    /// [`Store::commit`](crate::Store::commit): checks and writes the credential change and
    /// its audit event in one write transaction; a failed check aborts it, so nothing is
    /// written.
    pub(super) fn commit_change(&self, change: &Change<'_>) -> Result<(), StoreError> {
        if change.write.is_none() && change.event.is_none() {
            return Ok(());
        }
        self.write(|t| {
            if let Some(event) = change.event {
                check_event_seq(event.seq, last_seq(&t.events)?)?;
            }
            match change.write {
                Some(Write::Put(cred)) => put_credential(t, cred)?,
                Some(Write::Delete { id, revision }) => delete_credential(t, id, revision)?,
                None => {}
            }
            if let Some(event) = change.event {
                t.events
                    .insert(event_key(event.seq).as_slice(), event.bytes.as_slice())
                    .map_err(backend("appending to the audit log"))?;
            }
            Ok(())
        })
    }
}

/// Checks and writes the record `cred` and its index entries, in the caller's transaction.
fn put_credential(t: &mut WriteTables<'_>, cred: &Credential) -> Result<(), StoreError> {
    let revision = next_revision(cred)?;
    let id = cred.id.as_str().as_bytes();
    let old = stored(&t.records, id)?;
    check_put_revision(cred, old.as_ref().map(|c| c.revision))?;
    for s in &cred.secrets {
        if let Some(owner) = raw(&t.lookup, s.lookup.as_bytes(), "reading the lookup index")?
            && owner != id
            && owner_holds(&t.records, &owner, &s.lookup)?
        {
            return Err(StoreError::DuplicateLookup { lookup: s.lookup });
        }
    }
    let mut record = cred.clone();
    record.revision = revision;
    let bytes = encode_credential(&record)?;
    if let Some(old) = &old {
        // Entries of the old version that the new one no longer has.
        for s in &old.secrets {
            if cred.secret_by_lookup(&s.lookup).is_none() {
                remove_lookup_of(t, s.lookup.as_bytes(), id)?;
            }
        }
        if old.account != cred.account {
            t.accounts
                .remove(account_key(&old.account, &old.id).as_slice())
                .map_err(backend("writing the account index"))?;
        }
    }
    for s in &cred.secrets {
        t.lookup
            .insert(s.lookup.as_bytes().as_slice(), id)
            .map_err(backend("writing the lookup index"))?;
    }
    t.accounts
        .insert(account_key(&cred.account, &cred.id).as_slice(), ())
        .map_err(backend("writing the account index"))?;
    t.records
        .insert(id, bytes.as_slice())
        .map_err(backend("writing records"))?;
    Ok(())
}

/// Removes the record `id` at `revision` and its index entries, in the caller's transaction.
fn delete_credential(
    t: &mut WriteTables<'_>,
    id: &CredentialId,
    revision: u64,
) -> Result<(), StoreError> {
    let key = id.as_str().as_bytes();
    let old = check_delete(id, revision, stored(&t.records, key)?)?;
    for s in &old.secrets {
        remove_lookup_of(t, s.lookup.as_bytes(), key)?;
    }
    t.accounts
        .remove(account_key(&old.account, &old.id).as_slice())
        .map_err(backend("writing the account index"))?;
    t.records.remove(key).map_err(backend("writing records"))?;
    Ok(())
}

/// Removes the lookup entry of `tag` if it points to `id` (an entry another credential has
/// claimed since is left alone).
pub(super) fn remove_lookup_of(
    t: &mut WriteTables<'_>,
    tag: &[u8],
    id: &[u8],
) -> Result<(), StoreError> {
    if raw(&t.lookup, tag, "reading the lookup index")?.as_deref() == Some(id) {
        t.lookup
            .remove(tag)
            .map_err(backend("writing the lookup index"))?;
    }
    Ok(())
}
