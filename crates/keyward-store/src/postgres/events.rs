//! The audit log in the `events` table: reading it, and trimming it (retention). Appends are
//! part of a write (`write.rs`).

use ::postgres::GenericClient;

use super::{Conn, from_i64, pg, to_i64};
use crate::{AuditEntry, EVENT_PAGE_MAX, StoreError};

/// The first key of the advisory lock that serialises appends and trims of one schema's log
/// (the second is the schema's hash).
pub(super) const EVENTS_LOCK: i32 = 0x6b57_0002;

/// An event row as an [`AuditEntry`].
fn entry(row: &::postgres::Row) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        seq: from_i64(row.get(0), "event sequence number")?,
        bytes: row.get(1),
    })
}

/// The newest event's sequence number, 0 if the log holds none.
pub(super) fn last_seq(client: &mut impl GenericClient) -> Result<u64, StoreError> {
    let last: i64 = client
        .query_one("SELECT coalesce(max(seq), 0) FROM events", &[])
        .map_err(pg("reading the audit log"))?
        .get(0);
    from_i64(last, "event sequence number")
}

/// [`Store::events`](crate::Store::events).
pub(super) fn after(
    conn: &mut Conn,
    after: u64,
    limit: usize,
) -> Result<Vec<AuditEntry>, StoreError> {
    // Nothing lies above the largest sequence number a bigint holds.
    let Ok(after) = i64::try_from(after) else {
        return Ok(Vec::new());
    };
    let limit = i64::try_from(limit.clamp(1, EVENT_PAGE_MAX)).unwrap_or(1);
    conn.query(
        "SELECT seq, bytes FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
        &[&after, &limit],
    )
    .map_err(pg("reading the audit log"))?
    .iter()
    .map(entry)
    .collect()
}

/// [`Store::last_event`](crate::Store::last_event).
pub(super) fn last(conn: &mut Conn) -> Result<Option<AuditEntry>, StoreError> {
    conn.query_opt(
        "SELECT seq, bytes FROM events ORDER BY seq DESC LIMIT 1",
        &[],
    )
    .map_err(pg("reading the audit log"))?
    .as_ref()
    .map(entry)
    .transpose()
}

/// [`Store::trim_events`](crate::Store::trim_events): one transaction under the log's lock, so
/// a trim is whole or not at all and never removes the newest event.
pub(super) fn trim(conn: &mut Conn, schema: &str, up_to: u64) -> Result<usize, StoreError> {
    let mut tx = conn.transaction().map_err(pg("beginning a trim"))?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&EVENTS_LOCK, &schema],
    )
    .map_err(pg("taking the audit log's lock"))?;
    let up_to = up_to.min(last_seq(&mut tx)?.saturating_sub(1));
    if up_to == 0 {
        return Ok(0);
    }
    let removed = tx
        .execute(
            "DELETE FROM events WHERE seq <= $1",
            &[&to_i64(up_to, "event sequence number")?],
        )
        .map_err(pg("trimming the audit log"))?;
    tx.commit().map_err(pg("committing a trim"))?;
    Ok(usize::try_from(removed).unwrap_or(usize::MAX))
}
