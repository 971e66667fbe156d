//! The engine: [`Keyward`].

use std::sync::Arc;

use keyward_core::{
    AccountId, Credential, CredentialId, Environment, KeyFormat, KeyType, Metadata, Name,
    ParsedKey, Pepper, Permission, PermissionPolicy, PermissionSet, PlaintextKey, SecretVersion,
    Timestamp, random_id,
};
use keyward_rotation::{
    Clock, Due, RegenerateOptions, RotationError, RotationPolicy, SecretState, apply_due,
    apply_regenerate, plan, revoke_all, revoke_version, window_state,
};
#[cfg(feature = "sled")]
use keyward_store::SledStore;
use keyward_store::{IndexedStore, ListQuery, MemoryStore, Page, Store, StoreError};

use crate::config::{Backend, Config};
use crate::error::EngineError;
use crate::verify::{Verified, VerifiedRef, VerifyError};

/// How often a write retries after losing a conditional-write race.
const MAX_RETRIES: usize = 16;

/// Stripes of the per-credential write turn taken by [`Keyward::modify`].
const WRITE_STRIPES: usize = 64;

/// What to issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    /// Owning account.
    pub account: AccountId,
    /// Key type.
    pub key_type: KeyType,
    /// Environment.
    pub environment: Environment,
    /// Display name.
    pub name: Name,
    /// Permissions (a restricted key needs at least one).
    pub permissions: PermissionSet,
    /// Metadata.
    pub metadata: Metadata,
    /// Optional expiry.
    pub expires_at: Option<Timestamp>,
}

impl NewKey {
    /// A key with no permissions, metadata or expiry.
    pub fn new(
        account: AccountId,
        key_type: KeyType,
        environment: Environment,
        name: Name,
    ) -> Self {
        Self {
            account,
            key_type,
            environment,
            name,
            permissions: PermissionSet::new(),
            metadata: Metadata::new(),
            expires_at: None,
        }
    }

    /// Sets the permissions.
    pub fn with_permissions(mut self, permissions: PermissionSet) -> Self {
        self.permissions = permissions;
        self
    }

    /// Sets the metadata.
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Sets the expiry.
    pub fn with_expiry(mut self, expires_at: Timestamp) -> Self {
        self.expires_at = Some(expires_at);
        self
    }
}

/// A changed field set for [`Keyward::update`]; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyUpdate {
    /// New name.
    pub name: Option<Name>,
    /// New permissions.
    pub permissions: Option<PermissionSet>,
    /// New metadata (replaces the old map).
    pub metadata: Option<Metadata>,
    /// New expiry (`Some(None)` removes it).
    pub expires_at: Option<Option<Timestamp>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

/// A newly issued or regenerated key: the credential and the plaintext key, shown once.
#[derive(Debug)]
pub struct Issued {
    /// The stored credential.
    pub credential: Arc<Credential>,
    /// The plaintext key. It is not stored anywhere; hand it to its holder now.
    pub key: PlaintextKey,
}

/// [`Keyward::regenerate_environment`] failed partway. The keys regenerated before the failure
/// are durably rotated (their old secrets are in grace), so their new plaintexts are handed back
/// here instead of being lost.
#[derive(Debug)]
pub struct PartialRegeneration {
    /// Keys regenerated before the failure (possibly none).
    pub issued: Vec<Issued>,
    /// What failed.
    pub error: EngineError,
}

impl std::fmt::Display for PartialRegeneration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (after regenerating {} key(s))",
            self.error,
            self.issued.len()
        )
    }
}

impl std::error::Error for PartialRegeneration {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// What [`Keyward::sweep`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Credentials examined.
    pub examined: usize,
    /// Credentials expired by the max-age policy.
    pub expired: Vec<CredentialId>,
    /// Credentials older than the max age (rotation due).
    pub rotation_due: Vec<CredentialId>,
    /// Credentials expiring within the warning window.
    pub expiring_soon: Vec<(CredentialId, Timestamp)>,
    /// Secret versions purged, per credential.
    pub purged: Vec<(CredentialId, u32)>,
}

struct Inner {
    store: IndexedStore,
    format: KeyFormat,
    pepper: Pepper,
    rotation: RotationPolicy,
    permission_policy: PermissionPolicy,
    clock: Arc<dyn Clock>,
    startup_errors: Vec<StoreError>,
    /// Writers of one credential in this process take turns (striped by id).
    write_turns: Box<[parking_lot::Mutex<()>]>,
}

/// The engine. `Send + Sync`; clone it to share (clones share one store and index).
///
/// See the crate documentation for an example.
#[derive(Clone)]
pub struct Keyward {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Keyward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyward")
            .field("credentials", &self.inner.store.len())
            .field("namespace", &self.inner.format.namespace())
            .finish_non_exhaustive()
    }
}

impl Keyward {
    /// Opens the store and warms the hot index. Records that cannot be decoded do not stop the
    /// store from opening; they are reported by [`Keyward::startup_errors`] and every other
    /// credential works.
    pub fn open(config: Config) -> Result<Self, EngineError> {
        let format = KeyFormat::new(config.namespace.as_deref(), config.environments)?;
        let backend: Box<dyn Store> = match config.backend {
            Backend::Memory => Box::new(MemoryStore::new()),
            #[cfg(feature = "sled")]
            Backend::Sled(path) => Box::new(SledStore::open(path)?),
            #[cfg(feature = "redb")]
            Backend::Redb(path) => Box::new(keyward_store::RedbStore::open(path)?),
            Backend::Custom(store) => store,
        };
        let (store, startup_errors) = IndexedStore::open_lenient(backend)?;
        let pepper = config
            .pepper
            .unwrap_or_else(|| Pepper::default_for(format.namespace()));
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                format,
                pepper,
                rotation: config.rotation,
                permission_policy: config.permission_policy,
                clock: config.clock,
                startup_errors,
                write_turns: (0..WRITE_STRIPES)
                    .map(|_| parking_lot::Mutex::new(()))
                    .collect(),
            }),
        })
    }

    /// Records that could not be read when the store was opened (each names its credential).
    pub fn startup_errors(&self) -> &[StoreError] {
        &self.inner.startup_errors
    }

    /// The deployment's key format.
    pub fn format(&self) -> &KeyFormat {
        &self.inner.format
    }

    /// The rotation policy.
    pub fn rotation_policy(&self) -> &RotationPolicy {
        &self.inner.rotation
    }

    /// The current time on the engine's clock.
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// The indexed store (for operators and tests).
    pub fn store(&self) -> &IndexedStore {
        &self.inner.store
    }

    // ----- issue -------------------------------------------------------------------------

    /// Issues a key. The returned plaintext is durably stored (as a digest) before this
    /// returns, and is never available again.
    pub fn issue(&self, new: NewKey) -> Result<Issued, EngineError> {
        self.check_permissions(new.key_type, &new.permissions)?;
        let now = self.now();
        for _ in 0..MAX_RETRIES {
            let generated =
                self.inner
                    .format
                    .generate(new.key_type, &new.environment, &self.inner.pepper)?;
            let cred = Credential {
                id: random_id()?,
                account: new.account.clone(),
                environment: new.environment.clone(),
                key_type: new.key_type,
                name: new.name.clone(),
                permissions: new.permissions.clone(),
                metadata: new.metadata.clone(),
                created_at: now,
                modified_at: now,
                expires_at: new.expires_at,
                enabled: true,
                revision: 0,
                secrets: vec![SecretVersion {
                    version: 1,
                    lookup: generated.lookup,
                    digest: generated.digest,
                    not_before: now,
                    not_after: None,
                    created_at: now,
                    revoked_at: None,
                }],
            };
            match self.inner.store.put(cred) {
                Ok(credential) => {
                    return Ok(Issued {
                        credential,
                        key: generated.key,
                    });
                }
                // A random id or lookup tag collided: draw again.
                Err(StoreError::Conflict { .. } | StoreError::DuplicateLookup { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Store(StoreError::Backend {
            message: "could not draw a unique key id".into(),
        }))
    }

    fn check_permissions(
        &self,
        key_type: KeyType,
        perms: &PermissionSet,
    ) -> Result<(), EngineError> {
        if key_type == KeyType::Restricted && perms.is_empty() {
            return Err(keyward_core::ModelError::RestrictedWithoutPermissions.into());
        }
        self.inner.permission_policy.check(key_type, perms)?;
        Ok(())
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
    /// # use keyward::{Config, Keyward, NewKey, core::{Environment, KeyType}};
    /// let kw = Keyward::open(Config::memory())?;
    /// let issued = kw.issue(NewKey::new(
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

    // ----- read --------------------------------------------------------------------------

    /// Reads a credential.
    pub fn get(&self, id: &CredentialId) -> Result<Arc<Credential>, EngineError> {
        self.inner
            .store
            .get(id)?
            .ok_or_else(|| EngineError::NotFound(id.clone()))
    }

    /// Lists credentials, one page at a time, in id order.
    pub fn list(&self, query: &ListQuery) -> Result<Page, EngineError> {
        Ok(self.inner.store.list(query)?)
    }

    // ----- write -------------------------------------------------------------------------

    /// Reads `id`, applies `change` to a copy and writes it back conditionally, retrying when a
    /// concurrent writer won. `change` may be called more than once.
    fn modify<T>(
        &self,
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
            match self.inner.store.put(next) {
                Ok(stored) => return Ok((stored, out)),
                Err(StoreError::Conflict { .. }) => {
                    // Someone else wrote first; make sure a shared backend's copy is fresh.
                    if self.inner.store.backend().is_shared() {
                        self.inner.store.refresh(id)?;
                    }
                    continue;
                }
                Err(e) => return Err(e.into()),
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

    /// Regenerates (rotates) a key: same credential id, a new secret, the old one usable for
    /// the policy's grace period (or `options`' override). Returns the new plaintext key.
    pub fn regenerate(
        &self,
        id: &CredentialId,
        options: RegenerateOptions,
    ) -> Result<Issued, EngineError> {
        let mut key_out: Option<PlaintextKey> = None;
        let (credential, ()) = self.modify(id, |cred, now| {
            let generated =
                self.inner
                    .format
                    .generate(cred.key_type, &cred.environment, &self.inner.pepper)?;
            apply_regenerate(
                cred,
                generated.lookup,
                generated.digest,
                &self.inner.rotation,
                options,
                now,
            )?;
            key_out = Some(generated.key);
            Ok(())
        })?;
        let key = key_out.ok_or_else(|| EngineError::Contended(id.clone()))?;
        Ok(Issued { credential, key })
    }

    /// Regenerates every live key of `account` in `environment` and returns the new keys.
    /// Revoked and expired keys are left alone.
    pub fn regenerate_environment(
        &self,
        account: &AccountId,
        environment: &Environment,
        options: RegenerateOptions,
    ) -> Result<Vec<Issued>, PartialRegeneration> {
        let now = self.now();
        let mut ids = Vec::new();
        let mut query = ListQuery {
            account: Some(account.clone()),
            environment: Some(environment.clone()),
            limit: 1000,
            ..ListQuery::default()
        };
        loop {
            let page = self
                .inner
                .store
                .list(&query)
                .map_err(|e| PartialRegeneration {
                    issued: Vec::new(),
                    error: e.into(),
                })?;
            ids.extend(
                page.items
                    .iter()
                    .filter(|c| keyward_rotation::live_secrets(c, now).next().is_some())
                    .map(|c| c.id.clone()),
            );
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        // A key revoked, expired or removed since the listing is left alone like those the
        // listing skipped. Stopping there instead would throw away the new keys already
        // regenerated in this call: their old secrets would be in grace and the new plaintext
        // shown to no one.
        let mut issued = Vec::with_capacity(ids.len());
        for id in &ids {
            match self.regenerate(id, options) {
                Ok(i) => issued.push(i),
                Err(
                    EngineError::Rotation(RotationError::Revoked | RotationError::Expired)
                    | EngineError::NotFound(_),
                ) => {}
                // Keys already regenerated are durably rotated: hand them back with the error.
                Err(error) => return Err(PartialRegeneration { issued, error }),
            }
        }
        Ok(issued)
    }

    /// Revokes every secret of a key, at once.
    pub fn revoke(&self, id: &CredentialId) -> Result<Arc<Credential>, EngineError> {
        self.modify(id, |cred, now| {
            revoke_all(cred, now);
            Ok(())
        })
        .map(|(c, ())| c)
    }

    /// Revokes one secret version (e.g. the old one before its grace period ends).
    pub fn revoke_version(
        &self,
        id: &CredentialId,
        version: u32,
    ) -> Result<Arc<Credential>, EngineError> {
        self.modify(id, |cred, now| Ok(revoke_version(cred, version, now)?))
            .map(|(c, ())| c)
    }

    /// Disables a key (refused with [`VerifyError::Disabled`] until enabled).
    pub fn disable(&self, id: &CredentialId) -> Result<Arc<Credential>, EngineError> {
        self.update(
            id,
            KeyUpdate {
                enabled: Some(false),
                ..KeyUpdate::default()
            },
        )
    }

    /// Enables a disabled key.
    pub fn enable(&self, id: &CredentialId) -> Result<Arc<Credential>, EngineError> {
        self.update(
            id,
            KeyUpdate {
                enabled: Some(true),
                ..KeyUpdate::default()
            },
        )
    }

    /// Changes name, permissions, metadata, expiry or enabled flag.
    pub fn update(
        &self,
        id: &CredentialId,
        update: KeyUpdate,
    ) -> Result<Arc<Credential>, EngineError> {
        if let Some(perms) = &update.permissions {
            // Type never changes, so the check can use any stored copy.
            let current = self.get(id)?;
            self.check_permissions(current.key_type, perms)?;
        }
        self.modify(id, |cred, now| {
            if let Some(name) = &update.name {
                cred.name = name.clone();
            }
            if let Some(perms) = &update.permissions {
                cred.permissions = perms.clone();
            }
            if let Some(meta) = &update.metadata {
                cred.metadata = meta.clone();
            }
            if let Some(exp) = update.expires_at {
                cred.expires_at = exp;
            }
            if let Some(enabled) = update.enabled {
                cred.enabled = enabled;
            }
            cred.modified_at = now;
            Ok(())
        })
        .map(|(c, ())| c)
    }

    /// Applies the rotation policy's planner to every credential at `now`: expires keys past
    /// their maximum age (if the policy says so), purges long-dead secrets, and reports keys due
    /// for rotation or expiring soon.
    pub fn sweep(&self, now: Timestamp) -> Result<SweepReport, EngineError> {
        let mut report = SweepReport::default();
        let mut query = ListQuery {
            limit: 1000,
            ..ListQuery::default()
        };
        loop {
            let page = self.inner.store.list(&query)?;
            for cred in &page.items {
                report.examined += 1;
                let due = plan(cred, &self.inner.rotation, now);
                let mut changes = false;
                for d in &due {
                    match d {
                        Due::Expire { .. } => {
                            report.expired.push(cred.id.clone());
                            changes = true;
                        }
                        Due::RotationDue { .. } => report.rotation_due.push(cred.id.clone()),
                        Due::ExpiryWarning { expires_at } => {
                            report.expiring_soon.push((cred.id.clone(), *expires_at));
                        }
                        Due::Purge { version } => {
                            report.purged.push((cred.id.clone(), *version));
                            changes = true;
                        }
                    }
                }
                if changes {
                    let rotation = &self.inner.rotation;
                    self.modify(&cred.id, |c, _| {
                        // Re-plan on the fresh copy: it may have changed since the listing.
                        let due = plan(c, rotation, now);
                        apply_due(c, &due, now);
                        Ok(())
                    })?;
                }
            }
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        Ok(report)
    }
}
