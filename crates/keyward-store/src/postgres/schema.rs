//! The schema's tables, created and migrated by the store itself: versioned migrations, each
//! applied once, all in one transaction under an advisory lock, so that instances starting at
//! once neither race nor apply a migration twice.

use ::postgres::Client;

use super::pg;
use crate::StoreError;

/// The first key of the advisory lock migrations take (the second is the schema's hash).
const MIGRATION_LOCK: i32 = 0x6b57_0001;

/// The migrations, in order: migration `n` (from 1) is `MIGRATIONS[n - 1]`. `{schema}` stands
/// for the quoted schema name. Never edit one that has shipped: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: credentials, their lookup tags, the audit log.
    r#"
    CREATE TABLE {schema}.credentials (
        id text COLLATE "C" PRIMARY KEY,
        account text COLLATE "C" NOT NULL,
        environment text COLLATE "C" NOT NULL,
        key_type smallint NOT NULL,
        revision bigint NOT NULL,
        record bytea NOT NULL
    );
    CREATE INDEX credentials_account_id ON {schema}.credentials (account, id);
    CREATE TABLE {schema}.lookups (
        tag text COLLATE "C" PRIMARY KEY,
        id text COLLATE "C" NOT NULL REFERENCES {schema}.credentials (id) ON DELETE CASCADE
    );
    CREATE INDEX lookups_id ON {schema}.lookups (id);
    CREATE TABLE {schema}.events (
        seq bigint PRIMARY KEY,
        bytes bytea NOT NULL
    );
    "#,
];

/// The newest schema version this build knows.
pub(super) const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// Creates `schema` and its version table if need be and applies every pending migration, in
/// one transaction under the schema's migration lock.
pub(super) fn migrate(conn: &mut Client, schema: &str) -> Result<(), StoreError> {
    let quoted = format!("\"{schema}\"");
    let mut tx = conn.transaction().map_err(pg("beginning the migration"))?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&MIGRATION_LOCK, &schema],
    )
    .map_err(pg("taking the migration lock"))?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {quoted};
         CREATE TABLE IF NOT EXISTS {quoted}.keyward_schema_version (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
    ))
    .map_err(pg("creating the schema"))?;
    let current: i32 = tx
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {quoted}.keyward_schema_version"),
            &[],
        )
        .map_err(pg("reading the schema version"))?
        .get(0);
    let current = usize::try_from(current).unwrap_or(0);
    if current > SCHEMA_VERSION {
        return Err(StoreError::UnsupportedFormat {
            id: None,
            found: u8::try_from(current).unwrap_or(u8::MAX),
            supported: u8::try_from(SCHEMA_VERSION).unwrap_or(u8::MAX),
        });
    }
    for (n, migration) in MIGRATIONS.iter().enumerate().skip(current) {
        tx.batch_execute(&migration.replace("{schema}", &quoted))
            .map_err(pg("applying a migration"))?;
        let version = i32::try_from(n + 1).unwrap_or(i32::MAX);
        tx.execute(
            &format!("INSERT INTO {quoted}.keyward_schema_version (version) VALUES ($1)"),
            &[&version],
        )
        .map_err(pg("recording a migration"))?;
    }
    tx.commit().map_err(pg("committing the migration"))
}
