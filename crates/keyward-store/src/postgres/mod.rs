//! The PostgreSQL backend: a database many processes share, every write one transaction.
//!
//! | table                    | columns                                                           |
//! |--------------------------|-------------------------------------------------------------------|
//! | `keyward_schema_version` | `version`: each applied migration (`schema.rs`)                   |
//! | `credentials`            | `id` (primary key), `account`, `environment`, `key_type`, `revision`, `record` |
//! | `lookups`                | `tag` (primary key), `id` → `credentials(id)` (cascading delete)  |
//! | `events`                 | `seq` (primary key), `bytes`: the audit log                       |
//!
//! `record` holds the same versioned bytes as the embedded backends
//! ([`encode_credential`](crate::encode_credential)); the other columns are what reads filter
//! and order by (an index on `(account, id)` serves account listings). Ids and accounts use the
//! `"C"` collation, so `ORDER BY id` is byte order, as in every other backend.
//!
//! * **Every table lives in a schema the caller names** ([`PgStore::open`]), created by the
//!   store with its tables. Migrations are versioned and run in one transaction under
//!   `pg_advisory_xact_lock`, so instances starting at once apply each migration once.
//! * **Writes** ([`Store::commit`]) run in one transaction each: the record, its lookup tags and
//!   the audit event commit together or not at all. The revision check locks the credential's
//!   row (`SELECT … FOR UPDATE`); a create that races another create of the same id loses on
//!   the primary key; a tag another credential holds, or claims concurrently, is
//!   [`StoreError::DuplicateLookup`]. A write with an event first takes a per-schema advisory
//!   lock, so appends are serialised and the log's last sequence number is checked under it.
//! * **Reads** are single statements; [`Store::scan`] runs in one `REPEATABLE READ READ ONLY`
//!   transaction, a point-in-time snapshot, fetched in pages through a portal.
//! * **Timeouts**: connecting, checking a connection out of the pool and every statement are
//!   bounded ([`PgOptions`]); an unreachable database is a [`StoreError::Backend`] naming the
//!   cause after at most the checkout timeout, never a hang.
//!
//! See `docs/storage.md` ("PostgreSQL").

mod events;
mod reads;
mod schema;
mod write;

use core::fmt;
use std::time::Duration;

use ::postgres::{Client, Config, NoTls};
use keyward_core::{Credential, CredentialId, LookupTag};
use r2d2::{ManageConnection, Pool, PooledConnection};

use crate::{AuditEntry, Change, ListQuery, Page, Store, StoreError};

/// The schema [`PgStore::open`] callers use when they have no reason to pick another.
pub const PG_DEFAULT_SCHEMA: &str = "keyward";

/// Limits of a [`PgStore`]: the pool's size and every timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// Most connections the store keeps open (at least 1).
    pub pool_size: u32,
    /// Longest wait for a new connection to be established.
    pub connect_timeout: Duration,
    /// Longest wait for a connection from the pool (including establishing one); also bounds
    /// how long an unreachable database takes to report itself.
    pub checkout_timeout: Duration,
    /// Longest a single statement may run on the server (`statement_timeout`), and longest a
    /// statement waits for a lock (`lock_timeout`).
    pub statement_timeout: Duration,
}

impl Default for PgOptions {
    /// 8 connections; 3 s to connect, 5 s for a checkout, 5 s per statement.
    fn default() -> Self {
        Self {
            pool_size: 8,
            connect_timeout: Duration::from_secs(3),
            checkout_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
        }
    }
}

/// A connection checked out of the pool.
type Conn = PooledConnection<Manager>;

/// The backend on PostgreSQL: a pool of synchronous connections (the `postgres` crate) to one
/// database, every table in one schema.
///
/// Other processes may write to the same schema, so [`Store::is_shared`] is `true`.
pub struct PgStore {
    pool: Pool<Manager>,
    schema: String,
    /// Where the database is (host, port and database name; never the password).
    target: String,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// Opens the pool's connections, each with the store's search path and timeouts set. (Our
/// own rather than `r2d2_postgres`'s, whose errors lose their cause in r2d2's report: "error
/// connecting to server", without "connection refused".)
#[derive(Debug)]
struct Manager {
    config: Config,
    /// `SET` statements run on each new connection.
    setup: String,
}

/// Why a connection could not be opened, with its cause.
#[derive(Debug)]
struct ConnectError(String);

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnectError {}

impl ManageConnection for Manager {
    type Connection = Client;
    type Error = ConnectError;

    fn connect(&self) -> Result<Client, ConnectError> {
        let mut client = self
            .config
            .connect(NoTls)
            .map_err(|e| ConnectError(explain(&e)))?;
        client
            .batch_execute(&self.setup)
            .map_err(|e| ConnectError(explain(&e)))?;
        Ok(client)
    }

    fn is_valid(&self, client: &mut Client) -> Result<(), ConnectError> {
        client
            .simple_query("")
            .map(drop)
            .map_err(|e| ConnectError(explain(&e)))
    }

    fn has_broken(&self, client: &mut Client) -> bool {
        client.is_closed()
    }
}

/// Whether `schema` is a name the store accepts: 1–63 lowercase ASCII letters, digits and
/// underscores, not starting with a digit and not starting with `pg_` (reserved).
fn valid_schema(schema: &str) -> bool {
    let mut chars = schema.bytes();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == b'_')
        && schema.len() <= 63
        && schema
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        && !schema.starts_with("pg_")
}

/// Host, port and database of `config`, for messages (no user, no password).
fn describe(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(::postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(::postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or("");
    format!("postgresql://{host}:{port}/{db}")
}

/// Milliseconds of `d`, at least 1 (0 would turn a PostgreSQL timeout off).
fn millis(d: Duration) -> u128 {
    d.as_millis().max(1)
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db`, or the key=value
    /// form), creates `schema` and its tables if need be, applies any pending migration, and
    /// returns the store, with [`PgOptions::default`].
    ///
    /// `schema` is 1–63 lowercase ASCII letters, digits and `_` ([`PG_DEFAULT_SCHEMA`] unless
    /// there is a reason to pick another). Fails with [`StoreError::Backend`] if the URL does
    /// not parse, the schema name is refused, or the database does not answer within the
    /// checkout timeout; with [`StoreError::UnsupportedFormat`] if a newer keyward migrated
    /// the schema.
    pub fn open(url: &str, schema: &str) -> Result<Self, StoreError> {
        Self::open_with(url, schema, &PgOptions::default())
    }

    /// [`PgStore::open`] with explicit limits.
    pub fn open_with(url: &str, schema: &str, options: &PgOptions) -> Result<Self, StoreError> {
        if !valid_schema(schema) {
            return Err(StoreError::Backend {
                message: format!(
                    "PostgreSQL schema name {schema:?} refused: use 1-63 lowercase ASCII \
                     letters, digits and '_', not starting with a digit or 'pg_'"
                ),
            });
        }
        // The parse error of a URL may quote it, and a URL may hold a password: say only
        // that it does not parse.
        let mut config: Config = url.parse().map_err(|_| StoreError::Backend {
            message: "the PostgreSQL URL does not parse (expected postgres://user@host:port/db)"
                .into(),
        })?;
        config.connect_timeout(options.connect_timeout);
        // A connection whose peer stops acknowledging is declared dead, instead of hanging.
        config.tcp_user_timeout(options.statement_timeout + options.connect_timeout);
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(10));
        if config.get_application_name().is_none() {
            config.application_name("keyward");
        }
        let target = describe(&config);
        let statement = millis(options.statement_timeout);
        let setup = format!(
            "SET search_path TO \"{schema}\"; SET statement_timeout = {statement}; \
             SET lock_timeout = {statement}; SET idle_in_transaction_session_timeout = {idle};",
            idle = statement.saturating_mul(4),
        );
        let pool = Pool::builder()
            .max_size(options.pool_size.max(1))
            .min_idle(Some(1))
            .connection_timeout(options.checkout_timeout.max(Duration::from_millis(1)))
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(Manager { config, setup });
        let store = Self {
            pool,
            schema: schema.to_owned(),
            target,
        };
        let mut conn = store.conn()?;
        schema::migrate(&mut conn, schema)?;
        drop(conn);
        Ok(store)
    }

    /// The schema the store's tables live in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// A connection from the pool, or an error naming the database and the cause after the
    /// checkout timeout.
    fn conn(&self) -> Result<Conn, StoreError> {
        self.pool.get().map_err(|e| StoreError::Backend {
            message: format!("PostgreSQL at {} is unavailable: {e}", self.target),
        })
    }
}

/// Turns a `postgres` error into a [`StoreError::Backend`] saying what was being done and what
/// the server said.
fn pg(doing: &'static str) -> impl Fn(::postgres::Error) -> StoreError {
    move |e| StoreError::Backend {
        message: format!("PostgreSQL, {doing}: {}", explain(&e)),
    }
}

/// The server's message and SQLSTATE for a database error (the error's own `Display` says only
/// "db error"), else the error and its cause.
fn explain(e: &::postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(cause) if !e.to_string().contains(&cause.to_string()) => format!("{e}: {cause}"),
            _ => e.to_string(),
        },
    }
}

/// A `u64` (revision, sequence number) as the `bigint` PostgreSQL stores.
fn to_i64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Backend {
        message: format!("{what} {value} exceeds PostgreSQL's bigint"),
    })
}

/// A stored `bigint` as a `u64`; a negative one is damage.
fn from_i64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        id: what.to_owned(),
        reason: format!("negative value {value}"),
    })
}

impl Store for PgStore {
    fn get(&self, id: &CredentialId) -> Result<Option<Credential>, StoreError> {
        reads::get(&mut self.conn()?, id)
    }

    fn find_by_lookup(&self, lookup: &LookupTag) -> Result<Option<Credential>, StoreError> {
        reads::find_by_lookup(&mut self.conn()?, lookup)
    }

    fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        reads::list(&mut self.conn()?, query)
    }

    fn commit(&self, change: &Change<'_>) -> Result<(), StoreError> {
        if change.write.is_none() && change.event.is_none() {
            return Ok(());
        }
        write::commit(&mut self.conn()?, &self.schema, change)
    }

    fn events(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        events::after(&mut self.conn()?, after, limit)
    }

    fn last_event(&self) -> Result<Option<AuditEntry>, StoreError> {
        events::last(&mut self.conn()?)
    }

    fn trim_events(&self, up_to: u64) -> Result<usize, StoreError> {
        events::trim(&mut self.conn()?, &self.schema, up_to)
    }

    /// Visits a point-in-time snapshot of every record (one `REPEATABLE READ` transaction), in
    /// id order.
    fn scan(
        &self,
        visit: &mut dyn FnMut(Result<Credential, StoreError>),
    ) -> Result<(), StoreError> {
        reads::scan(&mut self.conn()?, visit)
    }

    fn is_shared(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::valid_schema;

    #[test]
    fn schema_names() {
        for ok in ["keyward", "_x", "kw_test_0a9"] {
            assert!(valid_schema(ok), "{ok}");
        }
        let long = "a".repeat(64);
        for bad in ["", "9a", "Keyward", "a-b", "a\"b", "pg_x", long.as_str()] {
            assert!(!valid_schema(bad), "{bad}");
        }
    }
}
