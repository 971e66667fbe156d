//! Reads: single statements, and [`scan`] in one `REPEATABLE READ` read-only transaction.

use ::postgres::IsolationLevel;
use keyward_core::{Credential, CredentialId, LookupTag};

use super::write::key_type_code;
use super::{Conn, pg};
use crate::{ListQuery, Page, StoreError, decode_credential};

/// Rows [`scan`] fetches at a time.
const SCAN_BATCH: i32 = 500;

/// A `(id, record)` row, decoded; errors name the id.
fn decode(row: &::postgres::Row) -> Result<Credential, StoreError> {
    let id: &str = row.get(0);
    let record: &[u8] = row.get(1);
    decode_credential(id, record)
}

/// [`Store::get`](crate::Store::get).
pub(super) fn get(conn: &mut Conn, id: &CredentialId) -> Result<Option<Credential>, StoreError> {
    conn.query_opt(
        "SELECT id, record FROM credentials WHERE id = $1",
        &[&id.as_str()],
    )
    .map_err(pg("reading a credential"))?
    .as_ref()
    .map(decode)
    .transpose()
}

/// [`Store::find_by_lookup`](crate::Store::find_by_lookup): the credential the tag's entry
/// names, if that credential (still) holds the tag.
pub(super) fn find_by_lookup(
    conn: &mut Conn,
    lookup: &LookupTag,
) -> Result<Option<Credential>, StoreError> {
    let Some(cred) = conn
        .query_opt(
            "SELECT c.id, c.record FROM lookups l JOIN credentials c ON c.id = l.id
             WHERE l.tag = $1",
            &[&lookup.as_str()],
        )
        .map_err(pg("reading the lookup index"))?
        .as_ref()
        .map(decode)
        .transpose()?
    else {
        return Ok(None);
    };
    Ok(cred.secret_by_lookup(lookup).is_some().then_some(cred))
}

/// [`Store::list`](crate::Store::list): one page, in id order, filtered in the database (the
/// `(account, id)` index serves an account's listing).
pub(super) fn list(conn: &mut Conn, query: &ListQuery) -> Result<Page, StoreError> {
    let size = query.page_size();
    let account = query.account.as_ref().map(|a| a.as_str());
    let environment = query.environment.as_ref().map(|e| e.as_str());
    let key_type = query.key_type.map(key_type_code);
    let after = query.after.as_ref().map(|a| a.as_str());
    let limit = i64::try_from(size + 1).unwrap_or(i64::MAX);
    let rows = conn
        .query(
            "SELECT id, record FROM credentials
             WHERE ($1::text IS NULL OR account = $1)
               AND ($2::text IS NULL OR environment = $2)
               AND ($3::smallint IS NULL OR key_type = $3)
               AND ($4::text IS NULL OR id > $4)
             ORDER BY id LIMIT $5",
            &[&account, &environment, &key_type, &after, &limit],
        )
        .map_err(pg("listing credentials"))?;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        let cred = decode(row)?;
        if query.matches(&cred) {
            items.push(cred);
        }
    }
    Ok(Page::of(items, size))
}

/// [`Store::scan`](crate::Store::scan): every record of one snapshot, in id order, fetched
/// [`SCAN_BATCH`] rows at a time through a portal.
pub(super) fn scan(
    conn: &mut Conn,
    visit: &mut dyn FnMut(Result<Credential, StoreError>),
) -> Result<(), StoreError> {
    let mut tx = conn
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(pg("beginning a scan"))?;
    let portal = tx
        .bind("SELECT id, record FROM credentials ORDER BY id", &[])
        .map_err(pg("scanning credentials"))?;
    loop {
        let rows = tx
            .query_portal(&portal, SCAN_BATCH)
            .map_err(pg("scanning credentials"))?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            visit(decode(row));
        }
    }
    tx.commit().map_err(pg("ending a scan"))
}
