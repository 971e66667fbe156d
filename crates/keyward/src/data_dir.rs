//! The data directory: the on-disk layout of one deployment, shared by the `keyward` command
//! line and by a program that embeds the engine, so both open the same keys.
//!
//! | path | what |
//! |---|---|
//! | `DIR/` | mode 0700 |
//! | `DIR/pepper` | the pepper, 64 hexadecimal characters and a newline, mode 0600 (absent when the pepper comes from `KEYWARD_PEPPER`) |
//! | `DIR/keyward.redb` | a redb store (the default for new directories) |
//! | `DIR/store/` | a sled store (directories created before redb, or with `--backend sled`) |
//!
//! A directory holds one store. Opening detects which; a directory holding both is refused
//! ([`DataDirError::BothBackends`]) rather than guessed at.
//!
//! ```no_run
//! use keyward::{Config, Keyward};
//! let kw = Keyward::open(Config::from_data_dir("./keyward-data")?.with_namespace("acme"))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use keyward_core::Pepper;
use keyward_store::StoreError;
use zeroize::Zeroizing;

use crate::Keyward;
use crate::config::{Backend, Config};
use crate::error::EngineError;

/// The environment variable that, when set and not empty, supplies the pepper (64 hexadecimal
/// characters) instead of `DIR/pepper`.
pub const PEPPER_ENV: &str = "KEYWARD_PEPPER";

/// Name of the pepper file in a data directory.
pub const PEPPER_FILE: &str = "pepper";
/// Name of the sled store (a directory) in a data directory.
pub const SLED_STORE: &str = "store";
/// Name of the redb store (a file) in a data directory.
pub const REDB_STORE: &str = "keyward.redb";

/// Which embedded store a data directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreKind {
    /// redb, one file `DIR/keyward.redb`: the default for new directories (feature `redb`).
    Redb,
    /// sled, the directory `DIR/store/`: still fully supported (feature `sled`).
    Sled,
}

impl StoreKind {
    /// The kind [`DataDir::init`] creates when none is asked for: redb, or sled in a build
    /// with the `sled` feature and without the `redb` one.
    pub const DEFAULT: StoreKind = if cfg!(feature = "redb") || !cfg!(feature = "sled") {
        StoreKind::Redb
    } else {
        StoreKind::Sled
    };

    /// `redb` or `sled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Redb => "redb",
            Self::Sled => "sled",
        }
    }

    /// Whether this build can open this kind of store (its cargo feature is on).
    pub fn is_compiled(self) -> bool {
        match self {
            Self::Redb => cfg!(feature = "redb"),
            Self::Sled => cfg!(feature = "sled"),
        }
    }
}

impl Default for StoreKind {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StoreKind {
    type Err = DataDirError;
    fn from_str(s: &str) -> Result<Self, DataDirError> {
        match s {
            "redb" => Ok(Self::Redb),
            "sled" => Ok(Self::Sled),
            other => Err(DataDirError::UnknownKind {
                name: other.chars().take(32).collect(),
            }),
        }
    }
}

/// Why a data directory cannot be opened or created. Never contains the pepper.
#[derive(Debug)]
#[non_exhaustive]
pub enum DataDirError {
    /// The directory holds no store (it may not exist at all).
    NotInitialised {
        /// The data directory.
        dir: PathBuf,
    },
    /// A store exists but there is no pepper: neither `KEYWARD_PEPPER` nor the pepper file.
    /// A new pepper would make every stored key unverifiable, so none is made.
    PepperMissing {
        /// Where the pepper file should be.
        pepper: PathBuf,
        /// The store that needs it.
        store: PathBuf,
    },
    /// The pepper (from the named source) is not 64 hexadecimal characters.
    BadPepper {
        /// `KEYWARD_PEPPER` or the pepper file's path.
        source: String,
    },
    /// The directory holds both a sled and a redb store: which one is the deployment is not
    /// guessed. Move the one that is not aside.
    BothBackends {
        /// The sled store.
        sled: PathBuf,
        /// The redb store.
        redb: PathBuf,
    },
    /// `init` asked for one kind of store in a directory that already holds the other.
    OtherKind {
        /// The data directory.
        dir: PathBuf,
        /// The store it holds.
        found: StoreKind,
        /// The store asked for.
        requested: StoreKind,
    },
    /// This build was compiled without the store's cargo feature.
    NotCompiled {
        /// The kind of store.
        kind: StoreKind,
    },
    /// Not `redb` or `sled`.
    UnknownKind {
        /// What was given (at most 32 characters of it).
        name: String,
    },
    /// Another process holds the store open (for example `keyward serve`).
    InUse {
        /// The store.
        store: PathBuf,
    },
    /// A file-system operation failed.
    Io {
        /// What was being done (`read`, `create`, …).
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// The error.
        error: io::Error,
    },
    /// The store failed to open or create.
    Store {
        /// The store.
        store: PathBuf,
        /// Why.
        error: EngineError,
    },
}

impl fmt::Display for DataDirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotInitialised { dir } => write!(
                f,
                "no keyward store in {}: run `keyward init` first, or point --data / \
                 KEYWARD_DATA at an initialised directory",
                dir.display()
            ),
            Self::PepperMissing { pepper, store } => write!(
                f,
                "{} exists but {} is missing (and {PEPPER_ENV} is not set): restore the pepper \
                 file or set {PEPPER_ENV}; a new pepper would make every stored key unverifiable",
                store.display(),
                pepper.display()
            ),
            Self::BadPepper { source } => write!(
                f,
                "{source} does not hold 64 hexadecimal characters (32 bytes)"
            ),
            Self::BothBackends { sled, redb } => write!(
                f,
                "both a sled store ({}) and a redb store ({}) are present: move the one that is \
                 not this deployment's out of the directory",
                sled.display(),
                redb.display()
            ),
            Self::OtherKind {
                dir,
                found,
                requested,
            } => write!(
                f,
                "{} already holds a {found} store; it cannot also hold a {requested} one (to move \
                 the keys, `keyward export` them and `keyward import` them into a new directory)",
                dir.display()
            ),
            Self::NotCompiled { kind } => write!(
                f,
                "this build cannot open {kind} stores (compiled without the `{kind}` feature)"
            ),
            Self::UnknownKind { name } => {
                write!(f, "unknown store kind {name:?} (expected redb or sled)")
            }
            Self::InUse { store } => write!(
                f,
                "store is in use: {} is held open by another process (is `keyward serve` \
                 running? stop it, or use its HTTP API)",
                store.display()
            ),
            Self::Io {
                action,
                path,
                error,
            } => write!(f, "cannot {action} {}: {error}", path.display()),
            // Already names the store and says what to do.
            Self::Store {
                error: error @ EngineError::Store(StoreError::Unopenable { .. }),
                ..
            } => fmt::Display::fmt(error, f),
            Self::Store { store, error } => {
                write!(f, "cannot open the store at {}: {error}", store.display())
            }
        }
    }
}

impl std::error::Error for DataDirError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { error, .. } => Some(error),
            Self::Store { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A deployment's data directory (see the [module documentation](self)).
///
/// Building one does no I/O; [`DataDir::config`] and [`DataDir::open`] read the directory,
/// [`DataDir::init`] creates it.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    read_env: bool,
}

impl DataDir {
    /// The data directory at `path`. The pepper is read from `KEYWARD_PEPPER` if set, else
    /// from `DIR/pepper`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            read_env: true,
        }
    }

    /// Ignores `KEYWARD_PEPPER`: the pepper comes from the file only.
    pub fn ignore_pepper_env(mut self) -> Self {
        self.read_env = false;
        self
    }

    /// Whether `KEYWARD_PEPPER` is consulted.
    pub(crate) fn reads_pepper_env(&self) -> bool {
        self.read_env
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `DIR/pepper`.
    pub fn pepper_path(&self) -> PathBuf {
        self.path.join(PEPPER_FILE)
    }

    /// Where a store of `kind` lives: `DIR/keyward.redb` or `DIR/store`.
    pub fn store_path(&self, kind: StoreKind) -> PathBuf {
        match kind {
            StoreKind::Redb => self.path.join(REDB_STORE),
            StoreKind::Sled => self.path.join(SLED_STORE),
        }
    }

    /// Which store the directory holds: `None` if none (or no directory).
    pub fn detect(&self) -> Result<Option<StoreKind>, DataDirError> {
        let sled = self.store_path(StoreKind::Sled);
        let redb = self.store_path(StoreKind::Redb);
        match (exists(&sled)?, exists(&redb)?) {
            (true, true) => Err(DataDirError::BothBackends { sled, redb }),
            (true, false) => Ok(Some(StoreKind::Sled)),
            (false, true) => Ok(Some(StoreKind::Redb)),
            (false, false) => Ok(None),
        }
    }

    /// The pepper: `KEYWARD_PEPPER` (if set and not empty), else the pepper file; `None` if
    /// there is none.
    pub fn read_pepper(&self) -> Result<Option<Pepper>, DataDirError> {
        let from_env = self
            .read_env
            .then(|| std::env::var_os(PEPPER_ENV))
            .flatten()
            .map(|hex| Zeroizing::new(hex.to_string_lossy().into_owned()));
        if let Some(hex) = from_env
            && !hex.trim().is_empty()
        {
            return Pepper::from_hex(&hex)
                .map(Some)
                .ok_or_else(|| DataDirError::BadPepper {
                    source: PEPPER_ENV.to_owned(),
                });
        }
        let path = self.pepper_path();
        match fs::read_to_string(&path) {
            Ok(text) => {
                let text = Zeroizing::new(text);
                Pepper::from_hex(&text)
                    .map(Some)
                    .ok_or_else(|| DataDirError::BadPepper {
                        source: path.display().to_string(),
                    })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(DataDirError::Io {
                action: "read",
                path,
                error,
            }),
        }
    }

    /// The configuration of the store the directory holds, with its pepper. Refuses a directory
    /// without a store ([`DataDirError::NotInitialised`]), with a store but no pepper
    /// ([`DataDirError::PepperMissing`]), or with both stores
    /// ([`DataDirError::BothBackends`]). Add a namespace, rotation policy and so on to the
    /// returned configuration as needed.
    pub fn config(&self) -> Result<Config, DataDirError> {
        let Some(kind) = self.detect()? else {
            return Err(DataDirError::NotInitialised {
                dir: self.path.clone(),
            });
        };
        let pepper = self
            .read_pepper()?
            .ok_or_else(|| DataDirError::PepperMissing {
                pepper: self.pepper_path(),
                store: self.store_path(kind),
            })?;
        Ok(Config::new(self.backend(kind)?).with_pepper(pepper))
    }

    /// Opens the directory's store with every other setting at its default
    /// ([`DataDir::config`], then [`Keyward::open`]).
    pub fn open(&self) -> Result<Keyward, DataDirError> {
        let config = self.config()?;
        self.open_config(config)
    }

    /// [`Keyward::open`] of a configuration from this directory, with the failures named by
    /// this directory's paths ([`DataDirError::InUse`] when another process holds the store).
    pub fn open_config(&self, config: Config) -> Result<Keyward, DataDirError> {
        let store = backend_path(&config.backend).unwrap_or_else(|| self.path.clone());
        Keyward::open(config).map_err(|error| store_error(store, error))
    }

    /// Creates the data directory (mode 0700), the pepper file (mode 0600, unless the pepper
    /// comes from `KEYWARD_PEPPER`) and a store of kind
    /// `requested`, and returns the configuration that opens it.
    ///
    /// Idempotent: what exists is kept. With `requested` = `None` the store is the one the
    /// directory already holds, else [`StoreKind::DEFAULT`]. Refuses to add a second store
    /// ([`DataDirError::OtherKind`]) and to make a new pepper for an existing store
    /// ([`DataDirError::PepperMissing`]). An existing pepper file is used as it is.
    pub fn init(&self, requested: Option<StoreKind>) -> Result<Config, DataDirError> {
        let existing = self.detect()?;
        let kind = match (existing, requested) {
            (Some(found), Some(requested)) if found != requested => {
                return Err(DataDirError::OtherKind {
                    dir: self.path.clone(),
                    found,
                    requested,
                });
            }
            (Some(found), _) => found,
            (None, requested) => requested.unwrap_or_default(),
        };
        let backend = self.backend(kind)?;
        create_dir(&self.path)?;
        let pepper = match self.read_pepper()? {
            Some(p) => p,
            None if existing.is_some() => {
                return Err(DataDirError::PepperMissing {
                    pepper: self.pepper_path(),
                    store: self.store_path(kind),
                });
            }
            None => self.write_new_pepper()?,
        };
        // Create the store now, so that the directory reads as initialised even if the caller
        // never opens it. (Opened only to create it: no key is digested, so which pepper does
        // not matter here; the returned configuration carries the directory's.)
        let store = self.store_path(kind);
        let create = Config::new(backend).with_development_pepper();
        drop(Keyward::open(create).map_err(|e| store_error(store.clone(), e))?);
        sync_dir(&self.path)?;
        Ok(Config::new(self.backend(kind)?).with_pepper(pepper))
    }

    fn backend(&self, kind: StoreKind) -> Result<Backend, DataDirError> {
        match kind {
            #[cfg(feature = "sled")]
            StoreKind::Sled => Ok(Backend::Sled(self.store_path(kind))),
            #[cfg(not(feature = "sled"))]
            StoreKind::Sled => Err(DataDirError::NotCompiled { kind }),
            #[cfg(feature = "redb")]
            StoreKind::Redb => Ok(Backend::Redb(self.store_path(kind))),
            #[cfg(not(feature = "redb"))]
            StoreKind::Redb => Err(DataDirError::NotCompiled { kind }),
        }
    }

    /// Draws a pepper and writes it to a new pepper file (never over an existing one).
    fn write_new_pepper(&self) -> Result<Pepper, DataDirError> {
        use rand_core::{OsRng, TryRngCore};
        let path = self.pepper_path();
        let mut bytes = Zeroizing::new([0u8; 32]);
        OsRng
            .try_fill_bytes(&mut bytes[..])
            .map_err(|e| DataDirError::Io {
                action: "draw a random pepper for",
                path: path.clone(),
                error: io::Error::other(e.to_string()),
            })?;
        let mut hex = Zeroizing::new([b'\n'; 65]);
        ::hex::encode_to_slice(&bytes[..], &mut hex[..64]).map_err(|e| DataDirError::Io {
            action: "encode the pepper for",
            path: path.clone(),
            error: io::Error::other(e.to_string()),
        })?;
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let io_err = |action, error| DataDirError::Io {
            action,
            path: path.clone(),
            error,
        };
        let mut file = options.open(&path).map_err(|e| io_err("create", e))?;
        file.write_all(&hex[..])
            .and_then(|()| file.sync_all())
            .map_err(|e| io_err("write", e))?;
        sync_dir(&self.path)?;
        Ok(Pepper::from_bytes(*bytes))
    }
}

fn exists(path: &Path) -> Result<bool, DataDirError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(DataDirError::Io {
            action: "inspect",
            path: path.to_path_buf(),
            error,
        }),
    }
}

fn create_dir(path: &Path) -> Result<(), DataDirError> {
    if path.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path).map_err(|error| DataDirError::Io {
        action: "create",
        path: path.to_path_buf(),
        error,
    })
}

/// Makes a new entry of `dir` durable (on Unix; elsewhere there is nothing to do).
fn sync_dir(dir: &Path) -> Result<(), DataDirError> {
    #[cfg(unix)]
    {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|error| DataDirError::Io {
                action: "sync",
                path: dir.to_path_buf(),
                error,
            })?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn backend_path(backend: &Backend) -> Option<PathBuf> {
    match backend {
        #[cfg(feature = "sled")]
        Backend::Sled(p) => Some(p.clone()),
        #[cfg(feature = "redb")]
        Backend::Redb(p) => Some(p.clone()),
        _ => None,
    }
}

fn store_error(store: PathBuf, error: EngineError) -> DataDirError {
    match error {
        EngineError::Store(StoreError::InUse { .. }) => DataDirError::InUse { store },
        error => DataDirError::Store { store, error },
    }
}

impl Config {
    /// The configuration of the deployment in the data directory `path`: its store (sled or
    /// redb, detected) and its pepper (`KEYWARD_PEPPER`, else `DIR/pepper`). The same
    /// deployment the `keyward` command line opens with `--data path`.
    /// See [`DataDir::config`].
    pub fn from_data_dir(path: impl Into<PathBuf>) -> Result<Config, DataDirError> {
        DataDir::new(path).config()
    }
}
