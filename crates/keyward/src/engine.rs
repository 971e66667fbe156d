//! The engine: [`Keyward`]: opening a deployment, the verify hot path, and the write
//! primitives the management plane (`manage.rs`) is built on.

use std::sync::Arc;

use keyward_core::{
    Credential, CredentialId, Environment, KeyFormat, ModelError, ParsedKey, Pepper, Permission,
    PermissionPolicy, Timestamp,
};
use keyward_rotation::{Clock, RotationPolicy, SecretState, window_state};
#[cfg(feature = "sled")]
use keyward_store::SledStore;
use keyward_store::{IndexedStore, MemoryStore, Store, StoreError};

use crate::audit::{AuditLog, Call};
use crate::config::{Backend, Config, PepperChoice};
use crate::error::EngineError;
use crate::verify::{Verified, VerifiedRef, VerifyError};

/// How often a write retries after losing a conditional-write race.
const MAX_RETRIES: usize = 16;

/// Stripes of the per-credential write turn taken by [`Keyward::modify`].
const WRITE_STRIPES: usize = 64;

pub(crate) struct Inner {
    pub(crate) store: IndexedStore,
    pub(crate) format: KeyFormat,
    pub(crate) pepper: Pepper,
    pub(crate) rotation: RotationPolicy,
    pub(crate) permission_policy: PermissionPolicy,
    /// The audit log's chain key, cached tail and retention.
    pub(crate) audit: AuditLog,
    clock: Arc<dyn Clock>,
    startup_errors: Vec<StoreError>,
    /// What the backend cleaned up after a crash when it opened.
    recovered: Vec<String>,
    /// Writers of one credential in this process take turns (striped by id).
    write_turns: Box<[parking_lot::Mutex<()>]>,
    /// Changes to operator keys take turns, so that two of them cannot each see the other
    /// administrator alive and together remove both.
    pub(crate) admin_turn: parking_lot::Mutex<()>,
    /// Environment-key find-or-create takes turns, so that two calls cannot both create one.
    pub(crate) env_turn: parking_lot::Mutex<()>,
}

/// The engine. `Send + Sync`; clone it to share (clones share one store and index).
///
/// Every management call names the acting [`crate::Principal`] and is authorised by the engine
/// (see [`crate::authority`]); verification needs none.
///
/// See the crate documentation for an example.
#[derive(Clone)]
pub struct Keyward {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Keyward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyward")
            .field("credentials", &self.inner.store.len())
            .field("namespace", &self.inner.format.namespace())
            .finish_non_exhaustive()
    }
}

/// A random draw failed, or the format cannot mint keys for the environment.
pub(crate) fn generation_error(e: ModelError) -> EngineError {
    match e {
        ModelError::Rng => EngineError::Random,
        other => EngineError::invalid(crate::error::Field::Environment, other),
    }
}

impl Keyward {
    /// Opens the store and warms the hot index. Records that cannot be decoded do not stop the
    /// store from opening; they are reported by [`Keyward::startup_errors`] and every other
    /// credential works.
    ///
    /// A persistent store without a pepper is refused ([`EngineError::PepperRequired`]), before
    /// it is opened: see [`crate::PepperChoice`].
    pub fn open(config: Config) -> Result<Self, EngineError> {
        let format = KeyFormat::new(config.namespace.as_deref(), config.environments)
            .map_err(EngineError::Config)?;
        #[cfg_attr(not(feature = "sled"), allow(unused_mut))]
        let mut recovered = Vec::new();
        let pepper = match (config.pepper, &config.backend) {
            (PepperChoice::Secret(pepper), _) => pepper,
            (PepperChoice::Development, _) | (PepperChoice::Unset, Backend::Memory) => {
                Pepper::default_for(format.namespace())
            }
            (PepperChoice::Unset, _) => return Err(EngineError::PepperRequired),
        };
        let backend: Box<dyn Store> = match config.backend {
            Backend::Memory => Box::new(MemoryStore::new()),
            #[cfg(feature = "sled")]
            Backend::Sled(path) => {
                let sled = SledStore::open(path)?;
                recovered = sled.recovered().iter().map(ToString::to_string).collect();
                Box::new(sled)
            }
            #[cfg(feature = "redb")]
            Backend::Redb(path) => Box::new(keyward_store::RedbStore::open(path)?),
            #[cfg(feature = "postgres")]
            Backend::Postgres { url, schema } => {
                Box::new(keyward_store::PgStore::open(&url, &schema)?)
            }
            Backend::Custom(store) => store,
        };
        let (store, startup_errors) = IndexedStore::open_lenient(backend)?;
        let audit = AuditLog::open(store.backend(), pepper.audit_key(), config.retention)?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                format,
                pepper,
                rotation: config.rotation,
                permission_policy: config.permission_policy,
                audit,
                clock: config.clock,
                startup_errors,
                recovered,
                write_turns: (0..WRITE_STRIPES)
                    .map(|_| parking_lot::Mutex::new(()))
                    .collect(),
                admin_turn: parking_lot::Mutex::new(()),
                env_turn: parking_lot::Mutex::new(()),
            }),
        })
    }

    /// Records that could not be read when the store was opened (each names its credential).
    pub fn startup_errors(&self) -> &[StoreError] {
        &self.inner.startup_errors
    }

    /// What the backend repaired after a crash when it opened, one line each (sled: an
    /// incomplete or damaged snapshot removed, a truncated `conf` rewritten). Empty after a
    /// clean shutdown, and always for backends that recover inside their own open (redb).
    pub fn recovered_at_open(&self) -> &[String] {
        &self.inner.recovered
    }

    /// The deployment's key format.
    pub fn format(&self) -> &KeyFormat {
        &self.inner.format
    }

    /// The non-secret fingerprint of the pepper ([`Pepper::fingerprint`]): tells deployments
    /// with different peppers apart (export files carry it).
    pub fn pepper_fingerprint(&self) -> String {
        self.inner.pepper.fingerprint()
    }

    /// The rotation policy.
    pub fn rotation_policy(&self) -> &RotationPolicy {
        &self.inner.rotation
    }

    /// The current time on the engine's clock.
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// The indexed store, unchecked (for operators and tests: writing here bypasses every rule
    /// of the management plane, and the audit log: such a write is recorded nowhere).
    pub fn store(&self) -> &IndexedStore {
        &self.inner.store
    }

    // ----- verify ------------------------------------------------------------------------

    /// Verifies a presented key: who it is, or why it is refused.
    ///
    /// When several reasons apply, the first of these is reported: malformed, unknown,
    /// revoked, expired, disabled, not yet active (then, for [`Keyward::verify_for`], wrong
    /// environment, missing permission).
    #[inline]
    pub fn verify(&self, key: &str) -> Result<Verified, VerifyError> {
        self.verify_inner(key, None, None, |entry| Verified {
            entry: entry.clone(),
        })
    }

    /// Verifies a key and also requires an environment and/or a permission.
    #[inline]
    pub fn verify_for(
        &self,
        key: &str,
        environment: Option<&Environment>,
        permission: Option<&Permission>,
    ) -> Result<Verified, VerifyError> {
        self.verify_inner(key, environment, permission, |entry| Verified {
            entry: entry.clone(),
        })
    }

    /// [`Keyward::verify`] that lends the answer to `f` instead of returning an owned
    /// [`Verified`]: the same checks and reasons, without the atomic reference-count increment
    /// and decrement of an owned result (measurable on the hit path, and the one shared write
    /// when many threads verify the same key). Call [`VerifiedRef::to_owned`] to keep it.
    ///
    /// ```
    /// # use keyward::{Config, Keyward, NewKey, Principal, core::{Environment, KeyType}};
    /// let kw = Keyward::open(Config::memory())?;
    /// let issued = kw.issue(&Principal::LocalOperator, NewKey::new(
    ///     "acc_1".parse()?, KeyType::Secret, Environment::Test, "ci".parse()?,
    /// ))?;
    /// let account = kw.verify_with(issued.key.expose_secret(), |who| who.account().to_string())?;
    /// assert_eq!(account, "acc_1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn verify_with<R>(
        &self,
        key: &str,
        f: impl FnOnce(VerifiedRef<'_>) -> R,
    ) -> Result<R, VerifyError> {
        self.verify_inner(key, None, None, |entry| f(VerifiedRef { entry }))
    }

    #[inline]
    fn verify_inner<R>(
        &self,
        key: &str,
        environment: Option<&Environment>,
        permission: Option<&Permission>,
        f: impl FnOnce(&keyward_store::HotEntry) -> R,
    ) -> Result<R, VerifyError> {
        let parsed = self
            .inner
            .format
            .parse(key)
            .map_err(VerifyError::Malformed)?;
        self.inner
            .store
            .with_lookup(&parsed.lookup(), |entry| {
                let entry = entry.ok_or(VerifyError::Unknown)?;
                self.check_entry(&parsed, entry, environment, permission)?;
                Ok(f(entry))
            })
            .map_err(|_| VerifyError::Unavailable)?
    }

    #[inline]
    fn check_entry(
        &self,
        parsed: &ParsedKey<'_>,
        entry: &keyward_store::HotEntry,
        environment: Option<&Environment>,
        permission: Option<&Permission>,
    ) -> Result<(), VerifyError> {
        // Up to the environment and permission checks, this reads only the entry's copies of
        // the secret and of the credential's expiry and flag, not the credential record (a
        // cache miss less at scale). Constant-time comparison of the keyed digest (Digest's
        // PartialEq).
        if self.inner.pepper.digest(parsed.digest_input()) != *entry.digest() {
            return Err(VerifyError::Unknown);
        }
        // The clock is read only once the secret matched (unknown keys and wrong secrets, the
        // requests an attacker controls, do not pay for it), and only if the answer depends on
        // the time: a key without expiry, grace end or activation delay is active at any time.
        // Revoked and expired come before disabled: the log must not suggest that enabling
        // the key would make a revoked or expired one work again. Then the activation delay.
        let state = if entry.is_timeless() {
            SecretState::Active
        } else {
            window_state(entry.window(), entry.expires_at(), self.inner.clock.now())
        };
        match state {
            SecretState::Revoked => return Err(VerifyError::Revoked),
            SecretState::Expired => return Err(VerifyError::Expired),
            SecretState::Active | SecretState::Grace | SecretState::Pending => {}
        }
        if !entry.is_enabled() {
            return Err(VerifyError::Disabled);
        }
        if state == SecretState::Pending {
            return Err(VerifyError::NotYetActive);
        }
        if environment.is_some_and(|e| e != entry.environment()) {
            return Err(VerifyError::WrongEnvironment);
        }
        if permission.is_some_and(|p| !entry.permissions().allows(p)) {
            return Err(VerifyError::MissingPermission);
        }
        Ok(())
    }

    /// The credential behind a valid key, for the key's own holder ("who am I?"): verifies the
    /// key, then reads its whole record from the store.
    pub fn whoami(&self, key: &str) -> Result<Arc<Credential>, VerifyError> {
        let verified = self.verify(key)?;
        match self.inner.store.get(verified.id()) {
            Ok(Some(cred)) => Ok(cred),
            // Deleted since the verification.
            Ok(None) => Err(VerifyError::Unknown),
            Err(_) => Err(VerifyError::Unavailable),
        }
    }

    // ----- write primitives --------------------------------------------------------------

    /// Reads a credential, unchecked.
    pub(crate) fn read(&self, id: &CredentialId) -> Result<Arc<Credential>, EngineError> {
        self.inner
            .store
            .get(id)?
            .ok_or_else(|| EngineError::NotFound(id.clone()))
    }

    /// Reads `id`, applies `change` to a copy and writes it back conditionally with the event
    /// of `call` that records it (one store write: both or neither), retrying when a concurrent
    /// writer won. `change` may be called more than once.
    pub(crate) fn modify<T>(
        &self,
        call: &Call<'_>,
        id: &CredentialId,
        mut change: impl FnMut(&mut Credential, Timestamp) -> Result<T, EngineError>,
    ) -> Result<(Arc<Credential>, T), EngineError> {
        // Writers of one credential in this process take turns. Without that, the writer that
        // just won is already re-reading while the loser only learns that it lost, so a loser
        // could lose MAX_RETRIES times in a row and give up with `Contended` even with two
        // writers. The conditional write and the retries remain for writers in other
        // processes (shared backends).
        let _turn = self.write_turn(id).lock();
        for _ in 0..MAX_RETRIES {
            let current = self
                .inner
                .store
                .get(id)?
                .ok_or_else(|| EngineError::NotFound(id.clone()))?;
            let mut next = Credential::clone(&current);
            let now = self.now();
            let out = change(&mut next, now)?;
            let event = call.changed(Some(&current), Some(&next), now);
            let written = self.commit_event(&event, |entry| {
                self.inner.store.put_with(next.clone(), Some(entry))
            });
            match written {
                Ok(stored) => return Ok((stored, out)),
                Err(EngineError::Store(StoreError::Conflict { .. })) => {
                    // Someone else wrote first; make sure a shared backend's copy is fresh.
                    if self.inner.store.backend().is_shared() {
                        self.inner.store.refresh(id)?;
                    }
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        Err(EngineError::Contended(id.clone()))
    }

    fn write_turn(&self, id: &CredentialId) -> &parking_lot::Mutex<()> {
        // Ids are random base62: folding the bytes spreads them evenly.
        let h = id.as_str().bytes().fold(0usize, |h, b| {
            h.wrapping_mul(31).wrapping_add(usize::from(b))
        });
        &self.inner.write_turns[h % self.inner.write_turns.len()]
    }
}
