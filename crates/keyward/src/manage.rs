//! The management plane: every call names its [`Principal`], is validated and authorised here,
//! and changes nothing when refused. Faces (HTTP, CLI) only translate.

use std::sync::Arc;
use std::time::Duration;

use keyward_core::{
    AccountId, Credential, CredentialId, Environment, KeyType, Metadata, ModelError, Name,
    PermissionSet, PlaintextKey, SecretVersion, Timestamp, random_id,
};
use keyward_rotation::{
    Due, RegenerateOptions, RotationError, apply_due, apply_regenerate, live_secrets, plan,
    revoke_all, revoke_version,
};
use keyward_store::{ListQuery, Page, StoreError};

use crate::acting::{Acting, Acts};
use crate::audit::{Action, Call};
use crate::authority::{
    self, Actor, Denial, Effect, Principal, Right, forbidden, is_administrator, is_operator_account,
};
use crate::engine::{Keyward, generation_error};
use crate::error::{EngineError, Field};

/// How often an issue draws a new id and lookup tag after a collision.
const MAX_DRAWS: usize = 16;

/// Longest grace period or activation delay a regenerate accepts (10 years).
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// What to issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    /// Owning account.
    pub account: AccountId,
    /// Key type.
    pub key_type: KeyType,
    /// Environment (one the deployment can mint keys for).
    pub environment: Environment,
    /// Display name.
    pub name: Name,
    /// Permissions (a restricted key needs at least one).
    pub permissions: PermissionSet,
    /// Metadata.
    pub metadata: Metadata,
    /// Optional expiry, in the future.
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
    /// New permissions (a restricted key keeps at least one).
    pub permissions: Option<PermissionSet>,
    /// New metadata (replaces the old map).
    pub metadata: Option<Metadata>,
    /// New expiry, in the future (`Some(None)` removes it).
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

/// A key a bulk regenerate left alone, and why (nothing of it was changed).
#[derive(Debug)]
pub struct Skipped {
    /// The key.
    pub id: CredentialId,
    /// Why: the acting principal could not regenerate it one by one
    /// ([`EngineError::Forbidden`]), or an earlier grace period is still running
    /// ([`RotationError::GraceInProgress`]).
    pub reason: EngineError,
}

/// What [`Keyward::regenerate_environment`] did.
#[derive(Debug, Default)]
pub struct Regenerated {
    /// The keys regenerated, with their new plaintexts.
    pub issued: Vec<Issued>,
    /// Live keys in scope that were left alone.
    pub skipped: Vec<Skipped>,
}

/// [`Keyward::regenerate_environment`] failed partway. The keys regenerated before the failure
/// are durably rotated (their old secrets are in grace), so their new plaintexts are handed back
/// here instead of being lost.
#[derive(Debug)]
pub struct PartialRegeneration {
    /// Keys regenerated before the failure (possibly none).
    pub issued: Vec<Issued>,
    /// Keys skipped before the failure.
    pub skipped: Vec<Skipped>,
    /// What failed.
    pub error: EngineError,
}

impl PartialRegeneration {
    fn before_any(error: EngineError) -> Self {
        Self {
            issued: Vec::new(),
            skipped: Vec::new(),
            error,
        }
    }
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
    /// Audit events removed by the retention policy ([`crate::Config::retention`]).
    pub events_trimmed: usize,
}

impl Keyward {
    // ----- authority -----------------------------------------------------------------------

    /// Resolves `by` against the store, requiring `right`.
    pub(crate) fn actor(&self, by: &Principal, right: Right) -> Result<Actor, EngineError> {
        match by {
            Principal::LocalOperator => Ok(Actor::Operator),
            Principal::Key(v) => {
                let stored = self.inner.store.get(v.id())?;
                authority::resolve(by, stored.as_deref(), right, self.now())
            }
        }
    }

    /// Checks that `by` may act with `right` at all (a live secret key holding the right's
    /// permission; the local operator always may). Every management call checks this itself;
    /// a face may call it first to refuse before reading a request. A refusal is recorded in
    /// the audit log ([`crate::audit::Action::Authorize`]).
    pub fn authorize(&self, by: &impl Acts, right: Right) -> Result<(), EngineError> {
        let by = by.acting();
        let call = Call::new(&by, Action::Authorize);
        self.recorded(&call, || self.actor(&by.principal, right).map(|_| ()))
    }

    // ----- validation ----------------------------------------------------------------------

    fn check_environment(&self, environment: &Environment) -> Result<(), EngineError> {
        self.inner
            .format
            .environments()
            .tag_of(environment)
            .map(|_| ())
            .map_err(|e| EngineError::invalid(Field::Environment, e))
    }

    pub(crate) fn check_permissions(
        &self,
        key_type: KeyType,
        perms: &PermissionSet,
    ) -> Result<(), EngineError> {
        if key_type == KeyType::Restricted && perms.is_empty() {
            return Err(EngineError::invalid(
                Field::Permissions,
                ModelError::RestrictedWithoutPermissions,
            ));
        }
        self.inner
            .permission_policy
            .check(key_type, perms)
            .map_err(|e| EngineError::invalid(Field::Permissions, e))
    }

    fn check_expiry(&self, expires_at: Option<Timestamp>) -> Result<(), EngineError> {
        match expires_at {
            Some(t) if t <= self.now() => Err(EngineError::invalid(
                Field::ExpiresAt,
                ModelError::ExpiryNotInFuture,
            )),
            _ => Ok(()),
        }
    }

    fn check_options(options: &RegenerateOptions) -> Result<(), EngineError> {
        let max_seconds = MAX_DURATION.as_secs();
        for (field, value) in [
            (Field::GracePeriod, options.grace_period),
            (Field::ActivationDelay, options.activation_delay),
        ] {
            if value.is_some_and(|d| d > MAX_DURATION) {
                return Err(EngineError::invalid(
                    field,
                    ModelError::DurationTooLong { max_seconds },
                ));
            }
        }
        Ok(())
    }

    fn validate_new(&self, new: &NewKey) -> Result<(), EngineError> {
        self.check_environment(&new.environment)?;
        self.check_permissions(new.key_type, &new.permissions)?;
        self.check_expiry(new.expires_at)
    }

    // ----- read ----------------------------------------------------------------------------

    /// Reads a key `by` can reach (needs `api-key:read`). Another account's key answers
    /// [`EngineError::NotFound`], exactly like an unknown id.
    pub fn get(&self, by: &impl Acts, id: &CredentialId) -> Result<Arc<Credential>, EngineError> {
        let by = by.acting();
        let call = Call::on_key(&by, Action::Read, id);
        self.recorded(&call, || {
            let actor = self.actor(&by.principal, Right::Read)?;
            let cred = self.read(id)?;
            authority::check_reach(&actor, &cred)?;
            Ok(cred)
        })
    }

    /// Lists keys, one page at a time, in id order (needs `api-key:read`). Without an account
    /// in `query`, a key lists its own account (an administrator: every account); naming an
    /// account out of reach is [`Denial::OtherAccount`].
    pub fn list(&self, by: &impl Acts, query: &ListQuery) -> Result<Page, EngineError> {
        let by = by.acting();
        let call = Call {
            account: query.account.clone(),
            ..Call::new(&by, Action::Read)
        };
        self.recorded(&call, || {
            let actor = self.actor(&by.principal, Right::Read)?;
            let mut query = query.clone();
            match (&actor, &query.account) {
                (_, Some(account)) => authority::check_account(&actor, account)?,
                (Actor::Key(k), None) if !k.deployment_wide => {
                    query.account = Some(k.account.clone());
                }
                _ => {}
            }
            Ok(self.inner.store.list(&query)?)
        })
    }

    // ----- issue ---------------------------------------------------------------------------

    /// Issues a key (needs `api-key:write`, the account within reach, permissions covered by
    /// the principal's, and an expiry no later than the principal's). The returned plaintext
    /// is durably stored (as a digest) before this returns, and is never available again.
    pub fn issue(&self, by: &impl Acts, new: NewKey) -> Result<Issued, EngineError> {
        self.issue_recorded_as(by, new, Action::Issue)
    }

    /// [`Keyward::issue`], recorded in the audit log as `action`.
    pub(crate) fn issue_recorded_as(
        &self,
        by: &impl Acts,
        new: NewKey,
        action: Action,
    ) -> Result<Issued, EngineError> {
        let by = by.acting();
        let call = Call::on_account(&by, action, &new.account);
        self.recorded(&call, || {
            let actor = self.actor(&by.principal, Right::Write)?;
            self.validate_new(&new)?;
            self.authorize_new(&actor, &new)?;
            self.insert(&call, &new)
        })
    }

    fn authorize_new(&self, actor: &Actor, new: &NewKey) -> Result<(), EngineError> {
        authority::check_account(actor, &new.account)?;
        authority::check_covers(actor, &new.permissions)?;
        authority::check_lifetime(actor, new.expires_at)
    }

    /// Writes a new credential (validated and authorised by the caller) with the event of
    /// `call` that records it.
    fn insert(&self, call: &Call<'_>, new: &NewKey) -> Result<Issued, EngineError> {
        let now = self.now();
        for _ in 0..MAX_DRAWS {
            let generated = self
                .inner
                .format
                .generate(new.key_type, &new.environment, &self.inner.pepper)
                .map_err(generation_error)?;
            let cred = Credential {
                id: random_id().map_err(|_| EngineError::Random)?,
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
            let event = call.changed(None, Some(&cred), now);
            let written = self.commit_event(&event, |entry| {
                self.inner.store.put_with(cred.clone(), Some(entry))
            });
            match written {
                Ok(credential) => {
                    return Ok(Issued {
                        credential,
                        key: generated.key,
                    });
                }
                // A random id or lookup tag collided: draw again.
                Err(EngineError::Store(
                    StoreError::Conflict { .. } | StoreError::DuplicateLookup { .. },
                )) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(EngineError::Store(StoreError::Backend {
            message: "could not draw a unique key id".into(),
        }))
    }

    // ----- change --------------------------------------------------------------------------

    /// Applies `f` to key `id` on behalf of `actor`: the target must be in reach (else
    /// `NotFound`) and covered by the actor before the change, and pass the subset rule and the
    /// last-administrator rule after it, all on the copy that is written, with the event of
    /// `call`.
    fn change<T>(
        &self,
        call: &Call<'_>,
        actor: &Actor,
        id: &CredentialId,
        effect: Effect,
        mut f: impl FnMut(&mut Credential, Timestamp) -> Result<T, EngineError>,
    ) -> Result<(Arc<Credential>, T), EngineError> {
        let current = self.read(id)?;
        authority::check_reach(actor, &current)?;
        // The account never changes: a key of the operator account stays one across retries.
        let _admins = is_operator_account(&current.account).then(|| self.inner.admin_turn.lock());
        self.modify(call, id, |cred, now| {
            authority::check_reach(actor, cred)?;
            authority::check_covers(actor, &cred.permissions)?;
            let before = cred.clone();
            let out = f(cred, now)?;
            authority::check_change(actor, &before, cred, effect)?;
            if matches!(actor, Actor::Key(_))
                && authority::weakens_administration(&before, cred, now)
                && !self.another_administrator(id, now)?
            {
                return Err(EngineError::LastAdministrator(id.clone()));
            }
            Ok(out)
        })
    }

    /// Whether a live administrator other than `id` exists at `now`.
    fn another_administrator(
        &self,
        id: &CredentialId,
        now: Timestamp,
    ) -> Result<bool, EngineError> {
        let mut query = ListQuery {
            account: authority::OPERATOR_ACCOUNT.parse().ok(),
            limit: 1000,
            ..ListQuery::default()
        };
        loop {
            let page = self.inner.store.list(&query)?;
            if page
                .items
                .iter()
                .any(|c| c.id != *id && is_administrator(c, now))
            {
                return Ok(true);
            }
            match page.next {
                Some(next) => query.after = Some(next),
                None => return Ok(false),
            }
        }
    }

    /// Regenerates (rotates) a key: same credential id, a new secret, the old one usable for
    /// the policy's grace period (or `options`' override). Returns the new plaintext key.
    ///
    /// Needs `api-key:write`; the key must be in reach, covered by the principal's permissions
    /// and expire no later than the principal (it receives the new plaintext). A regenerate
    /// that would end an earlier grace before its promised end is refused with
    /// [`RotationError::GraceInProgress`] unless `options.end_earlier_grace` is set.
    pub fn regenerate(
        &self,
        by: &impl Acts,
        id: &CredentialId,
        options: RegenerateOptions,
    ) -> Result<Issued, EngineError> {
        let by = by.acting();
        let call = Call::on_key(&by, Action::Regenerate, id);
        self.recorded(&call, || {
            let actor = self.actor(&by.principal, Right::Write)?;
            Self::check_options(&options)?;
            self.regenerate_as(&call, &actor, id, options)
        })
    }

    fn regenerate_as(
        &self,
        call: &Call<'_>,
        actor: &Actor,
        id: &CredentialId,
        options: RegenerateOptions,
    ) -> Result<Issued, EngineError> {
        let mut key_out: Option<PlaintextKey> = None;
        let (credential, ()) = self.change(call, actor, id, Effect::HandsOutKey, |cred, now| {
            let generated = self
                .inner
                .format
                .generate(cred.key_type, &cred.environment, &self.inner.pepper)
                .map_err(generation_error)?;
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

    /// Regenerates every live key of `account` in `environment` that `by` could regenerate one
    /// by one, and returns the new keys. Live keys it could not (stronger than the principal,
    /// outliving it, or still in an earlier grace period) are left alone and listed in
    /// [`Regenerated::skipped`]; revoked and expired keys are left alone silently.
    pub fn regenerate_environment(
        &self,
        by: &impl Acts,
        account: &AccountId,
        environment: &Environment,
        options: RegenerateOptions,
    ) -> Result<Regenerated, PartialRegeneration> {
        let by = by.acting();
        let call = Call::on_account(&by, Action::RegenerateEnvironment, account);
        let actor = self
            .recorded(&call, || {
                let actor = self.actor(&by.principal, Right::Write)?;
                authority::check_account(&actor, account)?;
                Self::check_options(&options)?;
                Ok(actor)
            })
            .map_err(PartialRegeneration::before_any)?;
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
                .map_err(|e| PartialRegeneration::before_any(e.into()))?;
            ids.extend(
                page.items
                    .iter()
                    .filter(|c| live_secrets(c, now).next().is_some())
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
        let mut done = Regenerated::default();
        for id in ids {
            let one = Call::on_key(&by, Action::RegenerateEnvironment, &id);
            match self.recorded(&one, || self.regenerate_as(&one, &actor, &id, options)) {
                Ok(i) => done.issued.push(i),
                Err(
                    EngineError::Rotation(RotationError::Revoked | RotationError::Expired)
                    | EngineError::NotFound(_),
                ) => {}
                Err(
                    reason @ (EngineError::Forbidden { .. }
                    | EngineError::Rotation(RotationError::GraceInProgress { .. })),
                ) => done.skipped.push(Skipped { id, reason }),
                // Keys already regenerated are durably rotated: hand them back with the error.
                Err(error) => {
                    return Err(PartialRegeneration {
                        issued: done.issued,
                        skipped: done.skipped,
                        error,
                    });
                }
            }
        }
        Ok(done)
    }

    /// The account's key for `environment`: its live secret key in that environment named
    /// after it, regenerated (like [`Keyward::regenerate`], with the policy's grace), or, if
    /// there is none, created. A created key is made on the principal's behalf: it holds the
    /// principal's permissions without `*` and without any `api-key:…` management permission,
    /// and expires with the principal. Calls take turns, so two never create two keys (within
    /// this process; a store is opened by one process at a time).
    pub fn environment_key(
        &self,
        by: &impl Acts,
        account: &AccountId,
        environment: &Environment,
    ) -> Result<Issued, EngineError> {
        let by = by.acting();
        let call = Call::on_account(&by, Action::EnvironmentKey, account);
        self.recorded(&call, || {
            self.environment_key_as(&call, account, environment)
        })
    }

    fn environment_key_as(
        &self,
        call: &Call<'_>,
        account: &AccountId,
        environment: &Environment,
    ) -> Result<Issued, EngineError> {
        let actor = self.actor(&call.by.principal, Right::Write)?;
        self.check_environment(environment)?;
        authority::check_account(&actor, account)?;
        let name: Name = environment
            .as_str()
            .parse()
            .map_err(|e| EngineError::invalid(Field::Environment, e))?;
        let _turn = self.inner.env_turn.lock();
        let now = self.now();
        let mut query = ListQuery {
            account: Some(account.clone()),
            environment: Some(environment.clone()),
            key_type: Some(KeyType::Secret),
            after: None,
            limit: 1000,
        };
        let existing = loop {
            let page = self.inner.store.list(&query)?;
            if let Some(c) = page
                .items
                .iter()
                .find(|c| c.name == name && live_secrets(c, now).next().is_some())
            {
                break Some(c.id.clone());
            }
            match page.next {
                Some(next) => query.after = Some(next),
                None => break None,
            }
        };
        if let Some(id) = existing {
            let on_key = Call {
                key: Some(id.clone()),
                ..call.clone()
            };
            return self.regenerate_as(&on_key, &actor, &id, RegenerateOptions::default());
        }
        let (permissions, expires_at) = match &actor {
            Actor::Operator => (PermissionSet::new(), None),
            Actor::Key(k) => (authority::delegable(&k.permissions), k.expires_at),
        };
        let new = NewKey {
            account: account.clone(),
            key_type: KeyType::Secret,
            environment: environment.clone(),
            name,
            permissions,
            metadata: Metadata::new(),
            expires_at,
        };
        self.validate_new(&new)?;
        self.authorize_new(&actor, &new)?;
        self.insert(call, &new)
    }

    /// Revokes every secret of a key, at once.
    pub fn revoke(
        &self,
        by: &impl Acts,
        id: &CredentialId,
    ) -> Result<Arc<Credential>, EngineError> {
        let by = by.acting();
        let call = Call::on_key(&by, Action::Revoke, id);
        self.recorded(&call, || {
            let actor = self.actor(&by.principal, Right::Write)?;
            self.change(&call, &actor, id, Effect::Changes, |cred, now| {
                revoke_all(cred, now);
                Ok(())
            })
            .map(|(c, ())| c)
        })
    }

    /// Revokes one secret version (e.g. the old one before its grace period ends).
    pub fn revoke_version(
        &self,
        by: &impl Acts,
        id: &CredentialId,
        version: u32,
    ) -> Result<Arc<Credential>, EngineError> {
        let by = by.acting();
        let call = Call::on_key(&by, Action::RevokeVersion, id);
        self.recorded(&call, || {
            let actor = self.actor(&by.principal, Right::Write)?;
            self.change(&call, &actor, id, Effect::Changes, |cred, now| {
                Ok(revoke_version(cred, version, now)?)
            })
            .map(|(c, ())| c)
        })
    }

    /// Disables a key (refused with [`crate::VerifyError::Disabled`] until enabled).
    pub fn disable(
        &self,
        by: &impl Acts,
        id: &CredentialId,
    ) -> Result<Arc<Credential>, EngineError> {
        let update = KeyUpdate {
            enabled: Some(false),
            ..KeyUpdate::default()
        };
        self.update_as(Action::Disable, by.acting(), id, update)
    }

    /// Enables a disabled key.
    pub fn enable(
        &self,
        by: &impl Acts,
        id: &CredentialId,
    ) -> Result<Arc<Credential>, EngineError> {
        let update = KeyUpdate {
            enabled: Some(true),
            ..KeyUpdate::default()
        };
        self.update_as(Action::Enable, by.acting(), id, update)
    }

    /// Changes name, permissions, metadata, expiry or enabled flag. An empty update changes
    /// nothing and returns the key.
    pub fn update(
        &self,
        by: &impl Acts,
        id: &CredentialId,
        update: KeyUpdate,
    ) -> Result<Arc<Credential>, EngineError> {
        self.update_as(Action::Update, by.acting(), id, update)
    }

    fn update_as(
        &self,
        action: Action,
        by: Acting,
        id: &CredentialId,
        update: KeyUpdate,
    ) -> Result<Arc<Credential>, EngineError> {
        let call = Call::on_key(&by, action, id);
        self.recorded(&call, || self.apply_update(&call, id, &update))
    }

    fn apply_update(
        &self,
        call: &Call<'_>,
        id: &CredentialId,
        update: &KeyUpdate,
    ) -> Result<Arc<Credential>, EngineError> {
        let actor = self.actor(&call.by.principal, Right::Write)?;
        if let Some(expires_at) = update.expires_at {
            self.check_expiry(expires_at)?;
        }
        if *update == KeyUpdate::default() {
            let cred = self.read(id)?;
            authority::check_reach(&actor, &cred)?;
            return Ok(cred);
        }
        self.change(call, &actor, id, Effect::Changes, |cred, now| {
            if let Some(perms) = &update.permissions {
                // Checked once the key is known to be in reach (it depends on its type).
                self.check_permissions(cred.key_type, perms)?;
                cred.permissions = perms.clone();
            }
            if let Some(name) = &update.name {
                cred.name = name.clone();
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
    /// for rotation or expiring soon; then applies the audit log's retention
    /// ([`crate::Config::retention`]). Every change is audited. Only the local operator sweeps.
    pub fn sweep(&self, by: &impl Acts, now: Timestamp) -> Result<SweepReport, EngineError> {
        let by = by.acting();
        let call = Call::new(&by, Action::Sweep);
        self.recorded(&call, || self.sweep_as(&call, now))
    }

    fn sweep_as(&self, call: &Call<'_>, now: Timestamp) -> Result<SweepReport, EngineError> {
        if !matches!(call.by.principal, Principal::LocalOperator) {
            return Err(forbidden(Denial::OperatorOnly));
        }
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
                    self.modify(call, &cred.id, |c, _| {
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
        report.events_trimmed = self.apply_retention(call, now)?;
        Ok(report)
    }
}
