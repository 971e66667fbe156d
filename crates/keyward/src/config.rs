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
            Self::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// Everything [`crate::Keyward::open`] needs.
///
/// ```
/// use keyward::Config;
/// use keyward::core::Pepper;
/// // `Config::sled("./keyward-data")` with the `sled` feature.
/// let config = Config::memory()
///     .with_pepper(Pepper::from_bytes([42; 32]))
///     .with_namespace("acme");
/// # let _ = config;
/// ```
pub struct Config {
    /// Storage backend.
    pub backend: Backend,
    /// Digest key; `None`: the documented public default ([`Pepper::default_for`]).
    pub pepper: Option<Pepper>,
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
            pepper: None,
            namespace: None,
            environments: Environments::default(),
            rotation: RotationPolicy::default(),
            permission_policy: PermissionPolicy::default(),
            retention: Retention::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// In-memory store.
    pub fn memory() -> Self {
        Self::new(Backend::Memory)
    }

    /// sled store at `path` (feature `sled`).
    #[cfg(feature = "sled")]
    pub fn sled(path: impl Into<PathBuf>) -> Self {
        Self::new(Backend::Sled(path.into()))
    }

    /// redb store in the file at `path` (feature `redb`).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let kw = keyward::Keyward::open(keyward::Config::redb(dir.path().join("keyward.redb")))
    ///     .unwrap();
    /// # drop(kw);
    /// ```
    #[cfg(feature = "redb")]
    pub fn redb(path: impl Into<PathBuf>) -> Self {
        Self::new(Backend::Redb(path.into()))
    }

    /// Sets the pepper.
    pub fn with_pepper(mut self, pepper: Pepper) -> Self {
        self.pepper = Some(pepper);
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
