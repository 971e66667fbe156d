//! The audit log: every management action, and every refusal of one, as a tamper-evident
//! chain of events (`docs/audit.md`).
//!
//! * **What is recorded.** Every change a management call makes (issue, regenerate, update,
//!   disable, enable, revoke, the environment operations, what `sweep` changes, import) is
//!   written **in the same atomic, durable store write as the change** ([`keyward_store::Store::commit`]):
//!   never a change without its event, never an event without its change. Refusals (a
//!   [`crate::EngineError::Forbidden`], [`crate::EngineError::LastAdministrator`], a
//!   [`crate::EngineError::NotFound`] or a lifecycle refusal) are events too, appended alone,
//!   and so are exports and the log's own trims. **Fail closed:** if the event cannot be
//!   written, the change is not made and the call fails.
//! * **The chain.** Event `n` carries `hash_n = blake3::keyed_hash(audit_key, 0x01 ‖ hash_{n-1}
//!   ‖ n as 8 bytes big-endian ‖ body)`, with `hash_0` = 32 zero bytes and `audit_key` =
//!   [`Pepper::audit_key`](keyward_core::Pepper::audit_key). [`crate::Keyward::verify_events`]
//!   recomputes it and names the first event where it breaks. A chain cannot show that its
//!   newest events were cut off: pin [`crate::Keyward::event_head`] elsewhere and verify against
//!   it.
//! * **Reading.** [`crate::Keyward::events`]: a principal sees the events about the keys of the
//!   accounts it reaches.

mod codec;
mod log;
mod read;
mod retention;
mod verify;
mod view;

use core::fmt;
use core::str::FromStr;

use keyward_core::{AccountId, CredentialId, Timestamp};
use serde::{Deserialize, Serialize};

use crate::acting::RequestId;

pub(crate) use log::{AuditLog, Call};
pub use read::{EventPage, EventQuery};
pub use retention::Retention;
pub use verify::{BreakKind, ChainBreak, ChainReport, HeadCheck};
pub use view::{EventView, HeadView, VerifyView};

/// A hash of the chain: 32 bytes, shown as 64 lowercase hexadecimal characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EventHash(pub [u8; 32]);

impl fmt::Display for EventHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for EventHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventHash({self})")
    }
}

/// Text that is not an [`EventHash`] or an [`EventHead`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidEventHead;

impl fmt::Display for InvalidEventHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "an event head is SEQ:HASH, a sequence number and 64 hexadecimal characters \
             (as `keyward events --head` prints it)",
        )
    }
}

impl std::error::Error for InvalidEventHead {}

impl FromStr for EventHash {
    type Err = InvalidEventHead;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| InvalidEventHead)?;
        Ok(Self(out))
    }
}

/// The newest event of the log, to pin outside the store: its sequence number and hash,
/// written `SEQ:HASH`.
///
/// ```
/// use keyward::audit::EventHead;
/// let head: EventHead = format!("42:{}", "ab".repeat(32)).parse().unwrap();
/// assert_eq!(head.seq, 42);
/// assert_eq!(head.to_string().parse::<EventHead>().unwrap(), head);
/// assert!("42".parse::<EventHead>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventHead {
    /// Its sequence number.
    pub seq: u64,
    /// Its hash.
    pub hash: EventHash,
}

impl fmt::Display for EventHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl FromStr for EventHead {
    type Err = InvalidEventHead;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (seq, hash) = s.trim().split_once(':').ok_or(InvalidEventHead)?;
        Ok(Self {
            seq: seq.parse().map_err(|_| InvalidEventHead)?,
            hash: hash.parse()?,
        })
    }
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventActor {
    /// The operator with the data directory (the CLI, the program embedding the engine).
    LocalOperator,
    /// A management key.
    Key {
        /// Its id.
        id: CredentialId,
        /// Its account.
        account: AccountId,
    },
}

/// What was done (or refused). The encoding is positional: variants are only ever added at
/// the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Action {
    /// [`crate::Keyward::issue`].
    Issue,
    /// [`crate::Keyward::regenerate`].
    Regenerate,
    /// One key of [`crate::Keyward::regenerate_environment`].
    RegenerateEnvironment,
    /// [`crate::Keyward::environment_key`] (a key found and regenerated, or created).
    EnvironmentKey,
    /// [`crate::Keyward::update`] (the event's `fields` say what changed).
    Update,
    /// [`crate::Keyward::disable`].
    Disable,
    /// [`crate::Keyward::enable`].
    Enable,
    /// [`crate::Keyward::revoke`].
    Revoke,
    /// [`crate::Keyward::revoke_version`].
    RevokeVersion,
    /// What [`crate::Keyward::sweep`] changed in one key (expired it, purged secrets).
    Sweep,
    /// One key written by [`crate::Keyward::import`].
    Import,
    /// [`crate::Keyward::export`] of the whole store.
    Export,
    /// Retention removed the events up to `up_to`, the last of which had hash `hash`: a trim is
    /// on the chain too, and vouches for where the remaining log starts.
    Trim {
        /// The last sequence number removed.
        up_to: u64,
        /// Its hash.
        hash: EventHash,
    },
    /// A face's check that the principal holds a right ([`crate::Keyward::authorize`]),
    /// recorded only when refused.
    Authorize,
    /// Reading keys ([`crate::Keyward::get`], [`crate::Keyward::list`]), recorded only when
    /// refused.
    Read,
    /// Reading or verifying the audit log, recorded only when refused.
    ReadEvents,
    /// A new operator key minted on the data directory to recover a deployment
    /// ([`crate::Keyward::issue_operator_key`] with [`crate::OperatorKey::Recover`]).
    Recover,
}

impl Action {
    /// The action's name, e.g. `regenerate_environment`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Issue => "issue",
            Self::Regenerate => "regenerate",
            Self::RegenerateEnvironment => "regenerate_environment",
            Self::EnvironmentKey => "environment_key",
            Self::Update => "update",
            Self::Disable => "disable",
            Self::Enable => "enable",
            Self::Revoke => "revoke",
            Self::RevokeVersion => "revoke_version",
            Self::Sweep => "sweep",
            Self::Import => "import",
            Self::Export => "export",
            Self::Trim { .. } => "trim",
            Self::Authorize => "authorize",
            Self::Read => "read",
            Self::ReadEvents => "read_events",
            Self::Recover => "recover",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the call ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Done.
    Ok,
    /// Refused; nothing was changed.
    Refused {
        /// Why, as the HTTP service's `errorCode` says it (`escalation`, `not_found`,
        /// `last_administrator`, `grace_in_progress`, …).
        code: String,
        /// The permissions the principal lacked, if that was why.
        missing: Vec<String>,
    },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ok => f.write_str("ok"),
            Self::Refused { code, .. } => write!(f, "refused: {code}"),
        }
    }
}

/// One event of the audit log. It holds no plaintext key and no digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Its position in the log, from 1.
    pub seq: u64,
    /// When (the engine's clock).
    pub at: Timestamp,
    /// Who.
    pub actor: EventActor,
    /// What.
    pub action: Action,
    /// The key acted on, if the call named one.
    pub key: Option<CredentialId>,
    /// The account acted on (the key's, or the one the call named), if known.
    pub account: Option<AccountId>,
    /// The secret versions the change touched (created, revoked, ended, purged).
    pub versions: Vec<u32>,
    /// The fields of the key the change set (`name`, `permissions`, `metadata`, `expires_at`,
    /// `enabled`).
    pub fields: Vec<String>,
    /// The request the call served, if a face gave one.
    pub request_id: Option<RequestId>,
    /// How it ended.
    pub outcome: Outcome,
    /// The previous event's hash (zeros for the first event).
    pub prev: EventHash,
    /// This event's hash.
    pub hash: EventHash,
}

impl Event {
    /// This event as a head to pin.
    pub fn head(&self) -> EventHead {
        EventHead {
            seq: self.seq,
            hash: self.hash,
        }
    }
}
