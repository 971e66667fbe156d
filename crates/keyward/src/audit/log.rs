//! Writing the log: the engine's cached tail of the chain, sealing an event onto it, and the
//! description of a call (who, what, on which key) that its events are made of.

use std::collections::BTreeSet;

use keyward_core::{AccountId, AuditKey, Credential, CredentialId, Timestamp};
use keyward_rotation::RotationError;
use keyward_store::{AuditEntry, Store, StoreError};
use parking_lot::Mutex;

use super::codec::{Body, ZERO_HASH, link, seal};
use super::{Action, EventActor, EventHash, Outcome, Retention};
use crate::acting::Acting;
use crate::authority::{Denial, Principal};
use crate::engine::Keyward;
use crate::error::EngineError;

/// How often an append retries after another writer moved the log on (shared backends).
const MAX_APPEND_RETRIES: usize = 16;

/// The log's newest event as this engine last saw it.
#[derive(Debug, Clone, Copy)]
struct Tail {
    seq: u64,
    hash: EventHash,
}

/// The engine's side of the audit log: the chain key, the cached tail, the retention policy.
pub(crate) struct AuditLog {
    key: AuditKey,
    /// Held by every append, from sealing the event to updating the tail: one engine-wide
    /// turn for management writes (the verify path never takes it).
    tail: Mutex<Tail>,
    pub(crate) retention: Retention,
}

impl AuditLog {
    /// Reads the tail of `store`'s log.
    pub(crate) fn open(
        store: &dyn Store,
        key: AuditKey,
        retention: Retention,
    ) -> Result<Self, StoreError> {
        let tail = read_tail(store, &key)?;
        Ok(Self {
            key,
            tail: Mutex::new(tail),
            retention,
        })
    }

    pub(crate) fn key(&self) -> &AuditKey {
        &self.key
    }
}

fn read_tail(store: &dyn Store, key: &AuditKey) -> Result<Tail, StoreError> {
    Ok(match store.last_event()? {
        Some(e) => Tail {
            seq: e.seq,
            hash: link(key, &e),
        },
        None => Tail {
            seq: 0,
            hash: ZERO_HASH,
        },
    })
}

/// One management call, as its events describe it.
#[derive(Debug, Clone)]
pub(crate) struct Call<'a> {
    pub(crate) by: &'a Acting,
    pub(crate) action: Action,
    /// The key the call names, if any.
    pub(crate) key: Option<CredentialId>,
    /// The account the call names, if any (a key's account is filled in from the key).
    pub(crate) account: Option<AccountId>,
}

impl<'a> Call<'a> {
    /// A call on no particular key or account.
    pub(crate) fn new(by: &'a Acting, action: Action) -> Self {
        Self {
            by,
            action,
            key: None,
            account: None,
        }
    }

    /// A call on key `id`.
    pub(crate) fn on_key(by: &'a Acting, action: Action, id: &CredentialId) -> Self {
        Self {
            key: Some(id.clone()),
            ..Self::new(by, action)
        }
    }

    /// A call on account `account`.
    pub(crate) fn on_account(by: &'a Acting, action: Action, account: &AccountId) -> Self {
        Self {
            account: Some(account.clone()),
            ..Self::new(by, action)
        }
    }

    /// The same call with another action (an update that only disables, say).
    pub(crate) fn with_action(&self, action: Action) -> Self {
        Self {
            action,
            ..self.clone()
        }
    }

    fn actor(&self) -> EventActor {
        match &self.by.principal {
            Principal::LocalOperator => EventActor::LocalOperator,
            Principal::Key(v) => EventActor::Key {
                id: v.id().clone(),
                account: v.account().clone(),
            },
        }
    }

    fn body(&self, at: Timestamp, outcome: Outcome) -> Body {
        Body {
            at,
            actor: self.actor(),
            action: self.action.clone(),
            key: self.key.clone(),
            account: self.account.clone(),
            versions: Vec::new(),
            fields: Vec::new(),
            request_id: self.by.request_id.clone(),
            outcome,
        }
    }

    /// The event of a change of `before` into `after` (`None`: absent) at `at`.
    pub(crate) fn changed(
        &self,
        before: Option<&Credential>,
        after: Option<&Credential>,
        at: Timestamp,
    ) -> Body {
        let mut body = self.body(at, Outcome::Ok);
        if let Some(cred) = after.or(before) {
            body.key = Some(cred.id.clone());
            body.account = Some(cred.account.clone());
        }
        body.versions = touched(before, after);
        if let (Some(b), Some(a)) = (before, after) {
            body.fields = changed_fields(b, a);
        }
        body
    }

    /// The event of a call that changed nothing but is recorded (an export, a trim).
    pub(crate) fn done(&self, at: Timestamp) -> Body {
        self.body(at, Outcome::Ok)
    }
}

/// The secret versions that differ between `before` and `after`: created, changed (revoked,
/// ended) or removed.
fn touched(before: Option<&Credential>, after: Option<&Credential>) -> Vec<u32> {
    let old = before.map_or(&[][..], |c| &c.secrets[..]);
    let new = after.map_or(&[][..], |c| &c.secrets[..]);
    let mut out = BTreeSet::new();
    for s in new {
        if old.iter().find(|o| o.version == s.version) != Some(s) {
            out.insert(s.version);
        }
    }
    for s in old {
        if !new.iter().any(|n| n.version == s.version) {
            out.insert(s.version);
        }
    }
    out.into_iter().collect()
}

/// The fields of the key that differ.
fn changed_fields(before: &Credential, after: &Credential) -> Vec<String> {
    [
        ("name", before.name != after.name),
        ("permissions", before.permissions != after.permissions),
        ("metadata", before.metadata != after.metadata),
        ("expires_at", before.expires_at != after.expires_at),
        ("enabled", before.enabled != after.enabled),
        ("account", before.account != after.account),
    ]
    .into_iter()
    .filter(|(_, changed)| *changed)
    .map(|(name, _)| name.to_owned())
    .collect()
}

/// Whether `e` is a refusal (recorded) rather than bad input or a failure (not recorded), and
/// if so its code and the permissions missing.
fn refusal(e: &EngineError) -> Option<(&'static str, Vec<String>)> {
    let code = match e {
        EngineError::Forbidden { reason, missing } => {
            let code = match reason {
                Denial::NotSecretKey => "secret_key_required",
                Denial::MissingRight => "missing_permission",
                Denial::Escalation => "escalation",
                Denial::OutlivesPrincipal { .. } => "outlives_caller",
                Denial::OtherAccount => "other_account",
                Denial::OperatorOnly => "operator_only",
                Denial::DeploymentWideOnly => "deployment_wide_only",
                Denial::InactivePrincipal => "inactive_principal",
            };
            return Some((code, missing.iter().map(ToString::to_string).collect()));
        }
        EngineError::LastAdministrator(_) => "last_administrator",
        EngineError::NotFound(_) => "not_found",
        EngineError::Rotation(r) => match r {
            RotationError::Revoked => "key_revoked",
            RotationError::Expired => "key_expired",
            RotationError::NoSuchVersion(_) => "no_such_version",
            RotationError::TooManyVersions => "too_many_versions",
            RotationError::GraceInProgress { .. } => "grace_in_progress",
            _ => "conflict",
        },
        _ => return None,
    };
    Some((code, Vec::new()))
}

impl Keyward {
    /// Seals `body` as the log's next event and runs `write` with it (a store commit that
    /// writes the event, alone or with the change it records), under the engine's audit turn.
    /// If another writer moved the log on, re-reads the tail and tries again. Fail closed:
    /// whatever `write` fails with, nothing was written and the call fails.
    pub(crate) fn commit_event<T>(
        &self,
        body: &Body,
        mut write: impl FnMut(&AuditEntry) -> Result<T, StoreError>,
    ) -> Result<T, EngineError> {
        let audit = &self.inner.audit;
        let mut tail = audit.tail.lock();
        for _ in 0..MAX_APPEND_RETRIES {
            let seq = tail.seq.checked_add(1).ok_or_else(|| StoreError::Backend {
                message: "the audit log is full".into(),
            })?;
            let (entry, hash) = seal(&audit.key, seq, &tail.hash, body)?;
            match write(&entry) {
                Ok(out) => {
                    *tail = Tail { seq, hash };
                    return Ok(out);
                }
                Err(StoreError::EventConflict { .. }) => {
                    *tail = read_tail(self.inner.store.backend(), &audit.key)?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Store(StoreError::Backend {
            message: "other writers kept appending to the audit log; try again".into(),
        }))
    }

    /// Appends `body` alone.
    pub(crate) fn append_event(&self, body: &Body) -> Result<(), EngineError> {
        let store = self.inner.store.backend();
        self.commit_event(body, |entry| store.append_event(entry))
    }

    /// Runs `f`, the body of `call`; if it is refused, records the refusal. The refusal is
    /// returned even if recording it fails (nothing was changed either way).
    pub(crate) fn recorded<T>(
        &self,
        call: &Call<'_>,
        f: impl FnOnce() -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        let result = f();
        if let Err(e) = &result
            && let Some((code, missing)) = refusal(e)
        {
            self.record_refusal(call, code, missing);
        }
        result
    }

    fn record_refusal(&self, call: &Call<'_>, code: &str, missing: Vec<String>) {
        let mut body = call.body(
            self.now(),
            Outcome::Refused {
                code: code.to_owned(),
                missing,
            },
        );
        if body.account.is_none()
            && let Some(id) = &body.key
            && let Ok(Some(cred)) = self.inner.store.backend().get(id)
        {
            // Whose key it was, so that the account's principals see the attempt (an unknown
            // id has no account: only the deployment-wide tier sees it).
            body.account = Some(cred.account.clone());
        }
        // Best effort: the call fails with its refusal whether or not this is written.
        let _ = self.append_event(&body);
    }
}
