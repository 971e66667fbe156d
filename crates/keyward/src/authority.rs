//! Who may manage which keys: principals, the two tiers, and the rules every management call is
//! checked against. The rules are pure functions of the acting principal and the target before
//! and after the change; [`crate::Keyward`] applies them inside its conditional-write loop, so
//! the check and the write see the same copy of the target.
//!
//! * A **principal** is the local operator ([`Principal::LocalOperator`], the CLI or the program
//!   embedding the engine: it may do anything), or a verified management key
//!   ([`Principal::Key`]).
//! * **Tiers.** A key of an ordinary account reaches only its own account, whatever it holds:
//!   `*` means everything inside that account. Keys of the reserved [`OPERATOR_ACCOUNT`] are
//!   operator keys; one holding `api-key:admin` reaches every account. Only a principal that
//!   reaches the operator account (an operator, or the local operator) makes keys in it.
//! * **The subset rule** (Kubernetes RBAC's escalation check): a key may create, update,
//!   regenerate, disable, enable or revoke a key only if every permission of the target, before
//!   and after the change, is covered by its own ([`PermissionSet::covers`]), the target is
//!   within its reach, and a key whose plaintext it receives, or whose expiry it sets, expires
//!   no later than it does.
//! * **The last administrator**: a change through a key that would leave no live
//!   [administrator](is_administrator) is refused ([`crate::EngineError::LastAdministrator`]).

use core::fmt;

use keyward_core::{AccountId, Credential, KeyType, Permission, PermissionSet, Timestamp};
use keyward_rotation::{SecretState, live_secrets, secret_state};

use crate::error::EngineError;
use crate::verify::Verified;

/// The reserved account of operator keys (deployment-wide tier). `keyward init` makes its first
/// key here. The colon keeps it apart from ordinary account ids such as `acc_…`.
pub const OPERATOR_ACCOUNT: &str = "keyward:operator";

/// Whether `account` is the reserved [`OPERATOR_ACCOUNT`].
pub fn is_operator_account(account: &AccountId) -> bool {
    account.as_str() == OPERATOR_ACCOUNT
}

/// Who is acting on a management call.
#[derive(Debug, Clone)]
pub enum Principal {
    /// The operator with the data directory in hand (the CLI, the program embedding the
    /// engine). May do anything, including recovering a deployment whose administrators are
    /// gone.
    LocalOperator,
    /// A management key presented to a face (the HTTP service) and verified. It acts within
    /// its tier, its rights and the subset rule.
    Key(Verified),
}

impl From<Verified> for Principal {
    fn from(v: Verified) -> Self {
        Self::Key(v)
    }
}

impl Principal {
    /// The acting key's account (`None` for the local operator).
    pub fn account(&self) -> Option<&AccountId> {
        match self {
            Self::LocalOperator => None,
            Self::Key(v) => Some(v.account()),
        }
    }
}

/// A right a management call needs from the acting key, as the permission that grants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Right {
    /// Read keys: `api-key:read` (a secret key).
    Read,
    /// Create, change, regenerate and revoke keys: `api-key:write` (a secret key).
    Write,
    /// Verify presented keys for a gateway: `api-key:verify` (any key type).
    Verify,
}

impl Right {
    /// The permission granting this right, e.g. `api-key:write`.
    pub fn permission(self) -> Permission {
        let text = match self {
            Self::Read => "api-key:read",
            Self::Write => "api-key:write",
            Self::Verify => "api-key:verify",
        };
        // These literals follow the grammar; should one not, `*` is required (fail closed).
        Permission::parse(text).unwrap_or_else(|_| Permission::all())
    }
}

/// The permission that, held by an operator key, reaches every account: `api-key:admin`.
pub fn admin_permission() -> Permission {
    Permission::parse("api-key:admin").unwrap_or_else(|_| Permission::all())
}

/// What `keyward init` gives the deployment's first operator key: `*`, everything, in every
/// account (the subset rule means a key can only grant what it holds, so the root of the
/// deployment holds all). Keep it like a root password; make narrower keys for daily use.
pub fn root_permissions() -> PermissionSet {
    PermissionSet::from(vec![Permission::all()])
}

/// Why a principal was refused. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Denial {
    /// Managing keys needs a secret key.
    NotSecretKey,
    /// The acting key lacks the right the call needs (named in `missing`).
    MissingRight,
    /// The target holds, or would hold, permissions the acting key does not (named in
    /// `missing`): no principal makes or changes a key stronger than itself.
    Escalation,
    /// The key would outlive the acting key, which expires at `principal_expires`.
    OutlivesPrincipal {
        /// When the acting key stops working.
        principal_expires: Timestamp,
    },
    /// The account named is outside the acting key's reach (another account, or the operator
    /// account for a non-operator).
    OtherAccount,
    /// Only the local operator may do this.
    OperatorOnly,
    /// Only a principal that reaches every account may do this (the local operator, or an
    /// operator key holding `api-key:admin`): a whole-store export or import.
    DeploymentWideOnly,
    /// The acting key is no longer valid (revoked, disabled, expired or removed since it was
    /// verified).
    InactivePrincipal,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotSecretKey => f.write_str("managing API keys needs a secret key"),
            Self::MissingRight => f.write_str("the acting key lacks a right this call needs"),
            Self::Escalation => f.write_str(
                "the target key holds or would hold permissions the acting key does not",
            ),
            Self::OutlivesPrincipal { principal_expires } => write!(
                f,
                "the key would outlive the acting key, which expires at {principal_expires}"
            ),
            Self::OtherAccount => f.write_str("the account is outside the acting key's reach"),
            Self::OperatorOnly => f.write_str("only the local operator may do this"),
            Self::DeploymentWideOnly => f.write_str(
                "only the local operator or an operator key holding `api-key:admin` may do this",
            ),
            Self::InactivePrincipal => f.write_str("the acting key is no longer valid"),
        }
    }
}

pub(crate) fn forbidden(reason: Denial) -> EngineError {
    EngineError::Forbidden {
        reason,
        missing: PermissionSet::new(),
    }
}

/// A principal resolved against the store for one call.
#[derive(Debug, Clone)]
pub(crate) enum Actor {
    /// The local operator: no checks.
    Operator,
    /// A management key as stored now.
    Key(KeyActor),
}

/// A management key as stored at the start of the call.
#[derive(Debug, Clone)]
pub(crate) struct KeyActor {
    pub(crate) account: AccountId,
    pub(crate) permissions: PermissionSet,
    /// When the presented secret stops working (the credential's expiry or its grace end).
    pub(crate) expires_at: Option<Timestamp>,
    /// An operator key holding `api-key:admin`: reaches every account.
    pub(crate) deployment_wide: bool,
}

impl KeyActor {
    pub(crate) fn reaches(&self, account: &AccountId) -> bool {
        self.deployment_wide || self.account == *account
    }
}

/// Resolves `principal` against its stored record (`stored`, read by the caller) at `now`,
/// requiring `right`. The record, not the verify-time copy, is what counts: a key revoked,
/// disabled or stripped of a permission since it was verified acts no more.
pub(crate) fn resolve(
    principal: &Principal,
    stored: Option<&Credential>,
    right: Right,
    now: Timestamp,
) -> Result<Actor, EngineError> {
    let Principal::Key(verified) = principal else {
        return Ok(Actor::Operator);
    };
    let inactive = || forbidden(Denial::InactivePrincipal);
    let cred = stored.ok_or_else(inactive)?;
    let secret = cred
        .secrets
        .iter()
        .find(|s| s.version == verified.version())
        .ok_or_else(inactive)?;
    let usable = matches!(
        secret_state(secret, cred.expires_at, now),
        SecretState::Active | SecretState::Grace
    );
    if cred.id != *verified.id() || !usable || !cred.enabled {
        return Err(inactive());
    }
    if right != Right::Verify && cred.key_type != KeyType::Secret {
        return Err(forbidden(Denial::NotSecretKey));
    }
    let needed = right.permission();
    if !cred.permissions.allows(&needed) {
        return Err(EngineError::Forbidden {
            reason: Denial::MissingRight,
            missing: PermissionSet::from(vec![needed]),
        });
    }
    let expires_at = match (secret.not_after, cred.expires_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(Actor::Key(KeyActor {
        account: cred.account.clone(),
        deployment_wide: is_operator_account(&cred.account)
            && cred.permissions.allows(&admin_permission()),
        permissions: cred.permissions.clone(),
        expires_at,
    }))
}

/// The actor reaches every account (the local operator, or an operator key holding
/// `api-key:admin`): what a whole-store export or import needs.
pub(crate) fn check_deployment_wide(actor: &Actor) -> Result<(), EngineError> {
    match actor {
        Actor::Operator => Ok(()),
        Actor::Key(k) if k.deployment_wide => Ok(()),
        Actor::Key(k) => Err(EngineError::Forbidden {
            reason: Denial::DeploymentWideOnly,
            missing: if is_operator_account(&k.account) {
                PermissionSet::from(vec![admin_permission()])
            } else {
                PermissionSet::new()
            },
        }),
    }
}

/// The account a call names (for creating or listing) is within the actor's reach.
pub(crate) fn check_account(actor: &Actor, account: &AccountId) -> Result<(), EngineError> {
    match actor {
        Actor::Operator => Ok(()),
        Actor::Key(k) if k.reaches(account) => Ok(()),
        Actor::Key(_) => Err(forbidden(Denial::OtherAccount)),
    }
}

/// An existing key is within the actor's reach; a key out of reach answers exactly like an
/// unknown id.
pub(crate) fn check_reach(actor: &Actor, target: &Credential) -> Result<(), EngineError> {
    match actor {
        Actor::Key(k) if !k.reaches(&target.account) => {
            Err(EngineError::NotFound(target.id.clone()))
        }
        _ => Ok(()),
    }
}

/// The actor's permissions cover `target`'s.
pub(crate) fn check_covers(actor: &Actor, target: &PermissionSet) -> Result<(), EngineError> {
    let Actor::Key(k) = actor else {
        return Ok(());
    };
    let missing = k.permissions.missing(target);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(EngineError::Forbidden {
            reason: Denial::Escalation,
            missing,
        })
    }
}

/// A key expiring at `expires_at` does not outlive the actor.
pub(crate) fn check_lifetime(
    actor: &Actor,
    expires_at: Option<Timestamp>,
) -> Result<(), EngineError> {
    let Actor::Key(KeyActor {
        expires_at: Some(limit),
        ..
    }) = actor
    else {
        return Ok(());
    };
    if expires_at.is_some_and(|e| e <= *limit) {
        Ok(())
    } else {
        Err(forbidden(Denial::OutlivesPrincipal {
            principal_expires: *limit,
        }))
    }
}

/// What a change does to its target, for [`check_change`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// The actor receives a plaintext of the target (issue, regenerate): the target may not
    /// outlive it.
    HandsOutKey,
    /// Any other change; the target's expiry is checked only if the change sets it.
    Changes,
}

/// The subset rule for a change of `before` into `after` (`before` already passed
/// [`check_reach`] and [`check_covers`]).
pub(crate) fn check_change(
    actor: &Actor,
    before: &Credential,
    after: &Credential,
    effect: Effect,
) -> Result<(), EngineError> {
    check_covers(actor, &after.permissions)?;
    if effect == Effect::HandsOutKey || after.expires_at != before.expires_at {
        check_lifetime(actor, after.expires_at)?;
    }
    Ok(())
}

/// Whether `cred` can administer the deployment at `now`: an enabled secret key of the operator
/// account with a live secret (pending, active or in grace), holding `api-key:read`,
/// `api-key:write` and `api-key:admin`.
pub fn is_administrator(cred: &Credential, now: Timestamp) -> bool {
    is_operator_account(&cred.account)
        && cred.key_type == KeyType::Secret
        && cred.enabled
        && live_secrets(cred, now).next().is_some()
        && [
            Right::Read.permission(),
            Right::Write.permission(),
            admin_permission(),
        ]
        .iter()
        .all(|p| cred.permissions.allows(p))
}

/// Whether changing `before` into `after` takes an administrator away: it stops being one, or
/// its expiry comes sooner.
pub(crate) fn weakens_administration(
    before: &Credential,
    after: &Credential,
    now: Timestamp,
) -> bool {
    if !is_administrator(before, now) {
        return false;
    }
    let sooner = match (before.expires_at, after.expires_at) {
        (None, Some(_)) => true,
        (Some(b), Some(a)) => a < b,
        (_, None) => false,
    };
    sooner || !is_administrator(after, now)
}

/// The permissions a key made on someone's behalf (an environment key) may take from its
/// maker: the maker's own, without `*` and without any `api-key:…` management permission.
pub(crate) fn delegable(permissions: &PermissionSet) -> PermissionSet {
    PermissionSet::from(
        permissions
            .iter()
            .filter(|p| !p.is_all() && p.resource() != Some("api-key"))
            .cloned()
            .collect::<Vec<_>>(),
    )
}
