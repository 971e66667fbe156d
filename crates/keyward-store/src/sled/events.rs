//! The audit log in the `events` tree: reading it, and trimming it (retention). Appends are
//! part of a write ([`SledStore::write_change`]).

use super::{SledStore, sled_err};
use crate::{AuditEntry, EVENT_PAGE_MAX, StoreError, event_key};

impl SledStore {
    /// [`Store::events`](crate::Store::events). Under the writer lock, so that it never sees
    /// the event of a write still under way (which is written before its record, see the
    /// module documentation).
    pub(super) fn read_events(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let _writer = self.writer.lock();
        let Some(start) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in self
            .events
            .range(event_key(start)..)
            .take(limit.clamp(1, EVENT_PAGE_MAX))
        {
            let (key, bytes) = item.map_err(|e| sled_err("reading the audit log", e))?;
            out.push(AuditEntry::from_key(&key, &bytes)?);
        }
        Ok(out)
    }

    /// The newest event (the caller holds the writer lock).
    pub(super) fn read_last_event(&self) -> Result<Option<AuditEntry>, StoreError> {
        match self
            .events
            .last()
            .map_err(|e| sled_err("reading the audit log", e))?
        {
            Some((key, bytes)) => AuditEntry::from_key(&key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The newest event's sequence number, 0 if none (the caller holds the writer lock).
    pub(super) fn last_seq(&self) -> Result<u64, StoreError> {
        Ok(self.read_last_event()?.map_or(0, |e| e.seq))
    }

    /// [`Store::trim_events`](crate::Store::trim_events): removes the events up to `up_to`
    /// (never the newest), oldest first, then makes it durable. sled recovers a prefix of its
    /// log, so a crash part-way leaves a suffix of the audit log, never a hole.
    pub(super) fn remove_events(&self, up_to: u64) -> Result<usize, StoreError> {
        let removed = {
            let _writer = self.lock_writer()?;
            let up_to = up_to.min(self.last_seq()?.saturating_sub(1));
            let mut removed = 0;
            if up_to > 0 {
                let keys = self
                    .events
                    .range(..=event_key(up_to))
                    .keys()
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| sled_err("reading the audit log", e))?;
                for key in keys {
                    self.events
                        .remove(&key)
                        .map_err(|e| sled_err("trimming the audit log", e))?;
                    removed += 1;
                }
            }
            removed
        };
        if removed > 0 {
            self.flush()?;
        }
        Ok(removed)
    }
}
