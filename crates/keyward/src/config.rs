//! Engine configuration.

use std::fmt;
#[cfg(any(feature = "sled", feature = "redb"))]
use std::path::PathBuf;
use std::sync::Arc;

use keyward_core::{Environments, Pepper, PermissionPolicy};
use keyward_rotation::{Clock, RotationPolicy, SystemClock};
use keyward_store::Store;

use crate::audit::Retention;

/// Where credentials are stored. Non-exhaustive: which backends exist depends on the crate's
/// features.
#[non_exhaustive]
pub enum Backend {
    /// In process memory (tests, examples).
    Memory,
    /// sled at a directory: the embedded default (feature `sled`).
    #[cfg(feature = "sled")]
    Sled(PathBuf),
    /// redb in one file (e.g. `DIR/keyward.redb`): every write one durable transaction.
    #[cfg(feature = "redb")]
    Redb(PathBuf),
    /// PostgreSQL (feature `postgres`): a database many processes share, the tables in
    /// `schema` ([`keyward_store::PG_DEFAULT_SCHEMA`] from [`Config::postgres`]), created and
    /// migrated at open.
    #[cfg(feature = "postgres")]
    Postgres {
        /// `postgres://user@host:port/db` (or the key=value form). It may hold a password:
        /// it is never shown by `Debug` or in errors.
        url: String,
        /// The schema the tables live in.
        schema: String,
    },
    /// Any other [`Store`] implementation.
    Custom(Box<dyn Store>),
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("Memory"),
            #[cfg(feature = "sled")]
            Self::Sled(p) => f.debug_tuple("Sled").field(p).finish(),
            #[cfg(feature = "redb")]
            Self::Redb(p) => f.debug_tuple("Redb").field(p).finish(),
            #[cfg(feature = "postgres")]
            Self::Postgres { schema, .. } => f
                .debug_struct("Postgres")
                .field("schema", schema)
                .finish_non_exhaustive(),
            Self::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// Where the engine's digest key, the pepper, comes from.
///
/// A persistent store (sled, redb, or a [`Backend::Custom`] one) needs a secret pepper, or an
/// explicit opt-in to the public development pepper: [`crate::Keyward::open`] refuses it
/// otherwise ([`crate::EngineError::PepperRequired`]). Digests are keyed with the pepper; one
/// anybody can compute, sitting next to stored digests, protects nothing.
#[derive(Default)]
pub enum PepperChoice {
    /// None chosen: the memory store uses the development pepper (nothing it holds outlives
    /// the process, and an export of it does not import into a deployment with a real
    /// pepper); every other store is refused.
    #[default]
    Unset,
    /// A secret pepper (from a secrets manager, `KEYWARD_PEPPER`, or a data directory's
    /// `pepper` file: [`Config::from_data_dir`]).
    Secret(Pepper),
    /// The public development pepper ([`Pepper::default_for`] of the namespace): for tests,
    /// examples and benchmarks only ([`Config::with_development_pepper`]).
    Development,
}

impl fmt::Debug for PepperChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unset => f.write_str("Unset"),
            Self::Secret(p) => f.debug_tuple("Secret").field(p).finish(),
            Self::Development => f.write_str("Development"),
        }
    }
}

/// Everything [`crate::Keyward::open`] needs.
///
/// ```
/// use keyward::Config;
/// use keyward::core::Pepper;
/// // `Config::redb("./keyward.redb")` with the `redb` feature; a persistent store needs a
/// // pepper (or `Config::from_data_dir`, which keeps one in the directory).
/// let config = Config::memory()
///     .with_pepper(Pepper::from_bytes([42; 32]))
///     .with_namespace("acme");
/// # let _ = config;
/// ```
pub struct Config {
    /// Storage backend.
    pub backend: Backend,
    /// The digest key (see [`PepperChoice`]: a persistent store needs one).
    pub pepper: PepperChoice,
    /// Optional deployment namespace in front of every key (`acme_sk_prod_…`).
    pub namespace: Option<String>,
    /// Custom environment tags.
    pub environments: Environments,
    /// Rotation policy.
    pub rotation: RotationPolicy,
    /// Which permissions each key type may hold (default: unlimited).
    pub permission_policy: PermissionPolicy,
    /// How much of the audit log [`crate::Keyward::sweep`] keeps (default: everything).
    pub retention: Retention,
    /// Source of time.
    pub clock: Arc<dyn Clock>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("backend", &self.backend)
            .field("pepper", &self.pepper)
            .field("namespace", &self.namespace)
            .field("environments", &self.environments)
            .field("rotation", &self.rotation)
            .field("permission_policy", &self.permission_policy)
            .field("retention", &self.retention)
            .field("clock_now", &self.clock.now())
            .finish()
    }
}

impl Config {
    /// A configuration with `backend` and every default.
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            pepper: PepperChoice::Unset,
            namespace: None,
            environments: Environments::default(),
            rotation: RotationPolicy::default(),
            permission_policy: PermissionPolicy::default(),
            retention: Retention::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// In-memory store. Without [`Config::with_pepper`] it uses the public development pepper
    /// (see [`PepperChoice::Unset`]): fine for tests and examples, whose keys die with the
    /// process.
    pub fn memory() -> Self {
        Self::new(Backend::Memory)
    }

    /// sled store at `path` (feature `sled`). Give it a pepper ([`Config::with_pepper`]).
    #[cfg(feature = "sled")]
    pub fn sled(path: impl Into<PathBuf>) -> Self {
        Self::new(Backend::Sled(path.into()))
    }

    /// redb store in the file at `path` (feature `redb`). Give it a pepper
    /// ([`Config::with_pepper`]): without one it is refused.
    ///
    /// ```
    /// use keyward::{Config, EngineError, Keyward};
    /// use keyward::core::Pepper;
    /// # let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("keyward.redb");
    /// assert!(matches!(Keyward::open(Config::redb(&path)), Err(EngineError::PepperRequired)));
    /// # let secret_bytes = [7u8; 32];
    /// let kw = Keyward::open(Config::redb(&path).with_pepper(Pepper::from_bytes(secret_bytes)))
    ///     .unwrap();
    /// # drop(kw);
    /// ```
    #[cfg(feature = "redb")]
    pub fn redb(path: impl Into<PathBuf>) -> Self {
        Self::new(Backend::Redb(path.into()))
    }

    /// PostgreSQL at `url`, tables in the schema [`keyward_store::PG_DEFAULT_SCHEMA`] (feature
    /// `postgres`). Give it a pepper ([`Config::with_pepper`]): without one it is refused.
    #[cfg(feature = "postgres")]
    pub fn postgres(url: impl Into<String>) -> Self {
        Self::postgres_in(url, keyward_store::PG_DEFAULT_SCHEMA)
    }

    /// PostgreSQL at `url`, tables in `schema` (1-63 lowercase ASCII letters, digits and `_`):
    /// several deployments, or tests, in one database (feature `postgres`).
    #[cfg(feature = "postgres")]
    pub fn postgres_in(url: impl Into<String>, schema: impl Into<String>) -> Self {
        Self::new(Backend::Postgres {
            url: url.into(),
            schema: schema.into(),
        })
    }

    /// Sets the (secret) pepper.
    pub fn with_pepper(mut self, pepper: Pepper) -> Self {
        self.pepper = PepperChoice::Secret(pepper);
        self
    }

    /// Opts in to the public development pepper ([`PepperChoice::Development`]), for any
    /// store: tests, examples and benchmarks only. Anyone can compute it, so it adds nothing
    /// to the keys' own entropy, and a deployment using it cannot tell its digests from those
    /// of every other deployment using it.
    pub fn with_development_pepper(mut self) -> Self {
        self.pepper = PepperChoice::Development;
        self
    }

    /// Sets the namespace.
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Sets the rotation policy.
    pub fn with_rotation(mut self, rotation: RotationPolicy) -> Self {
        self.rotation = rotation;
        self
    }

    /// Sets the clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the environment tags.
    pub fn with_environments(mut self, environments: Environments) -> Self {
        self.environments = environments;
        self
    }

    /// Sets the audit log's retention.
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// Sets the permission policy.
    pub fn with_permission_policy(mut self, policy: PermissionPolicy) -> Self {
        self.permission_policy = policy;
        self
    }
}
