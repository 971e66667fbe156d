//! The audit log in the `events` table: reading it, and trimming it (retention). Appends are
//! part of a write ([`RedbStore::commit_change`]).

use ::redb::{ReadableDatabase, ReadableTable};

use super::RedbStore;
use super::tables::{REDB_EVENTS_TABLE, backend};
use crate::{AuditEntry, EVENT_PAGE_MAX, StoreError, event_key};

/// The newest event of `table`, `None` if it holds none.
fn last(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
) -> Result<Option<AuditEntry>, StoreError> {
    match table.last().map_err(backend("reading the audit log"))? {
        Some((k, v)) => AuditEntry::from_key(k.value(), v.value()).map(Some),
        None => Ok(None),
    }
}

/// The newest event's sequence number in `table`, 0 if none.
pub(super) fn last_seq(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
) -> Result<u64, StoreError> {
    Ok(last(table)?.map_or(0, |e| e.seq))
}

impl RedbStore {
    /// [`Store::events`](crate::Store::events), in one read transaction.
    pub(super) fn read_events(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let Some(start) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        let txn = self.db.begin_read().map_err(backend("beginning a read"))?;
        let table = txn
            .open_table(REDB_EVENTS_TABLE)
            .map_err(backend("opening the events table"))?;
        let start = event_key(start);
        let mut out = Vec::new();
        for item in table
            .range(start.as_slice()..)
            .map_err(backend("reading the audit log"))?
            .take(limit.clamp(1, EVENT_PAGE_MAX))
        {
            let (k, v) = item.map_err(backend("reading the audit log"))?;
            out.push(AuditEntry::from_key(k.value(), v.value())?);
        }
        Ok(out)
    }

    /// [`Store::last_event`](crate::Store::last_event), in one read transaction.
    pub(super) fn read_last_event(&self) -> Result<Option<AuditEntry>, StoreError> {
        let txn = self.db.begin_read().map_err(backend("beginning a read"))?;
        let table = txn
            .open_table(REDB_EVENTS_TABLE)
            .map_err(backend("opening the events table"))?;
        last(&table)
    }

    /// [`Store::trim_events`](crate::Store::trim_events): one write transaction, so a trim is
    /// whole or not at all.
    pub(super) fn remove_events(&self, up_to: u64) -> Result<usize, StoreError> {
        self.write(|t| {
            let up_to = up_to.min(last_seq(&t.events)?.saturating_sub(1));
            if up_to == 0 {
                return Ok(0);
            }
            let end = event_key(up_to);
            let keys = t
                .events
                .range(..=end.as_slice())
                .map_err(backend("reading the audit log"))?
                .map(|item| item.map(|(k, _)| k.value().to_vec()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend("reading the audit log"))?;
            for key in &keys {
                t.events
                    .remove(key.as_slice())
                    .map_err(backend("trimming the audit log"))?;
            }
            Ok(keys.len())
        })
    }
}
