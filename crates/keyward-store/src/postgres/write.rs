//! Writes: each [`Store::commit`](crate::Store::commit) is one transaction (see the module
//! documentation of [`super`]).

use ::postgres::Transaction;
use ::postgres::error::SqlState;
use ::postgres::types::ToSql;
use keyward_core::{Credential, CredentialId, KeyType};

use super::events::{EVENTS_LOCK, last_seq};
use super::{Conn, from_i64, pg, to_i64};
use crate::{
    Change, StoreError, Write, check_event_seq, check_put_revision, encode_credential,
    next_revision,
};

/// The `key_type` column of a key type: its position in [`KeyType::ALL`].
pub(super) fn key_type_code(t: KeyType) -> i16 {
    match t {
        KeyType::Publishable => 0,
        KeyType::Secret => 1,
        KeyType::Restricted => 2,
    }
}

/// Checks and writes `change` in one transaction; a failed check rolls it back, so nothing is
/// written.
pub(super) fn commit(conn: &mut Conn, schema: &str, change: &Change<'_>) -> Result<(), StoreError> {
    let mut tx = conn.transaction().map_err(pg("beginning a write"))?;
    if let Some(event) = change.event {
        // Appends are serialised per schema; the last sequence number is read under the lock.
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&EVENTS_LOCK, &schema],
        )
        .map_err(pg("taking the audit log's lock"))?;
        check_event_seq(event.seq, last_seq(&mut tx)?)?;
    }
    match change.write {
        Some(Write::Put(cred)) => put(&mut tx, cred)?,
        Some(Write::Delete { id, revision }) => delete(&mut tx, id, revision)?,
        None => {}
    }
    if let Some(event) = change.event {
        tx.execute(
            "INSERT INTO events (seq, bytes) VALUES ($1, $2)",
            &[&to_i64(event.seq, "event sequence number")?, &event.bytes],
        )
        .map_err(pg("appending to the audit log"))?;
    }
    tx.commit().map_err(pg("committing a write"))
}

/// The stored revision of `id`, locking its row until the transaction ends.
fn locked_revision(tx: &mut Transaction<'_>, id: &str) -> Result<Option<u64>, StoreError> {
    tx.query_opt(
        "SELECT revision FROM credentials WHERE id = $1 FOR UPDATE",
        &[&id],
    )
    .map_err(pg("reading a revision"))?
    .map(|row| from_i64(row.get(0), id))
    .transpose()
}

/// Checks and writes `cred` and its lookup tags.
fn put(tx: &mut Transaction<'_>, cred: &Credential) -> Result<(), StoreError> {
    let revision = next_revision(cred)?;
    let id = cred.id.as_str();
    check_put_revision(cred, locked_revision(tx, id)?)?;
    let mut record = cred.clone();
    record.revision = revision;
    let bytes = encode_credential(&record)?;
    let new_revision = to_i64(revision, "revision")?;
    let account = cred.account.as_str();
    let environment = cred.environment.as_str();
    let key_type = key_type_code(cred.key_type);
    // The row's columns, as both statements number them.
    let row: [&(dyn ToSql + Sync); 6] = [
        &id,
        &account,
        &environment,
        &key_type,
        &new_revision,
        &bytes,
    ];
    if cred.revision == 0 {
        let inserted = tx
            .execute(
                "INSERT INTO credentials (id, account, environment, key_type, revision, record)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
                &row,
            )
            .map_err(pg("writing a credential"))?;
        if inserted == 0 {
            // Created concurrently, after the revision was read.
            let found = tx
                .query_opt("SELECT revision FROM credentials WHERE id = $1", &[&id])
                .map_err(pg("reading a revision"))?
                .map(|row| from_i64(row.get(0), id))
                .transpose()?;
            return Err(StoreError::Conflict {
                id: cred.id.clone(),
                expected: 0,
                found,
            });
        }
    } else {
        tx.execute(
            "UPDATE credentials SET account = $2, environment = $3, key_type = $4,
                 revision = $5, record = $6 WHERE id = $1",
            &row,
        )
        .map_err(pg("writing a credential"))?;
    }
    let tags: Vec<&str> = cred.secrets.iter().map(|s| s.lookup.as_str()).collect();
    tx.execute(
        "DELETE FROM lookups WHERE id = $1 AND tag <> ALL($2)",
        &[&id, &tags],
    )
    .map_err(pg("writing the lookup index"))?;
    // A tag another transaction is inserting is waited for; then it is that credential's.
    let claimed = tx
        .execute(
            "INSERT INTO lookups (tag, id) SELECT unnest($1::text[]), $2
             ON CONFLICT (tag) DO NOTHING",
            &[&tags, &id],
        )
        .map_err(|e| match e.code() {
            Some(&SqlState::UNIQUE_VIOLATION) => duplicate(cred, None),
            _ => pg("writing the lookup index")(e),
        })?;
    if usize::try_from(claimed).ok() != Some(tags.len()) {
        let taken = tx
            .query_opt(
                "SELECT tag FROM lookups WHERE tag = ANY($1) AND id <> $2 LIMIT 1",
                &[&tags, &id],
            )
            .map_err(pg("reading the lookup index"))?;
        if let Some(row) = taken {
            let tag: &str = row.get(0);
            return Err(duplicate(cred, Some(tag)));
        }
    }
    Ok(())
}

/// [`StoreError::DuplicateLookup`] for the secret of `cred` whose tag is `tag` (its first
/// secret's if unknown).
fn duplicate(cred: &Credential, tag: Option<&str>) -> StoreError {
    let secret = tag
        .and_then(|t| cred.secrets.iter().find(|s| s.lookup.as_str() == t))
        .or_else(|| cred.secrets.first());
    match secret {
        Some(s) => StoreError::DuplicateLookup { lookup: s.lookup },
        None => StoreError::Backend {
            message: format!("{}: a lookup tag conflict without a tag", cred.id),
        },
    }
}

/// Deletes `id` at `revision`; its lookup tags go with it (`ON DELETE CASCADE`).
fn delete(tx: &mut Transaction<'_>, id: &CredentialId, revision: u64) -> Result<(), StoreError> {
    let found = locked_revision(tx, id.as_str())?;
    if found != Some(revision) {
        return Err(StoreError::Conflict {
            id: id.clone(),
            expected: revision,
            found,
        });
    }
    tx.execute("DELETE FROM credentials WHERE id = $1", &[&id.as_str()])
        .map_err(pg("deleting a credential"))?;
    Ok(())
}
