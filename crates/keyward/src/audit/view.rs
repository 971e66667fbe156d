//! The one shape the faces show an event in: the HTTP service's JSON and `keyward events
//! --json` render the same [`EventView`].

use serde::Serialize;

use super::{Action, ChainBreak, ChainReport, Event, EventActor, EventHead, Outcome};

/// An audit event as text, flat: what the HTTP service answers and `keyward events --json`
/// prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
pub struct EventView {
    /// Position in the log, from 1.
    #[cfg_attr(feature = "http", schema(example = 42))]
    pub seq: u64,
    /// When (RFC 3339).
    #[cfg_attr(feature = "http", schema(format = DateTime, example = "2024-06-30T01:02:29.212Z"))]
    pub at: String,
    /// `local_operator` (the CLI or the program embedding the engine) or `key`.
    #[cfg_attr(feature = "http", schema(example = "key"))]
    pub actor: &'static str,
    /// The acting key's id.
    pub actor_key_id: Option<String>,
    /// The acting key's account.
    pub actor_account_id: Option<String>,
    /// `issue`, `regenerate`, `regenerate_environment`, `environment_key`, `update`,
    /// `disable`, `enable`, `revoke`, `revoke_version`, `sweep`, `import`, `export`, `trim`,
    /// `authorize`, `read` or `read_events`.
    #[cfg_attr(feature = "http", schema(example = "regenerate"))]
    pub action: &'static str,
    /// The key acted on.
    pub key_id: Option<String>,
    /// The account acted on.
    pub account_id: Option<String>,
    /// Secret versions the change touched (created, revoked, ended, purged).
    pub versions: Vec<u32>,
    /// Fields of the key the change set.
    pub fields: Vec<String>,
    /// The request the call served.
    pub request_id: Option<String>,
    /// `ok` or `refused`.
    #[cfg_attr(feature = "http", schema(example = "ok"))]
    pub outcome: &'static str,
    /// Why it was refused (the `errorCode` the service answered), when refused.
    pub code: Option<String>,
    /// Permissions the principal lacked, when that was why.
    pub missing_permissions: Vec<String>,
    /// For a trim: the last sequence number removed.
    pub trimmed_up_to: Option<u64>,
    /// For a trim: the hash of the last event removed.
    pub trimmed_hash: Option<String>,
    /// The previous event's hash (hex).
    pub prev: String,
    /// This event's hash (hex).
    pub hash: String,
}

impl From<&Event> for EventView {
    fn from(e: &Event) -> Self {
        let (actor, actor_key_id, actor_account_id) = match &e.actor {
            EventActor::LocalOperator => ("local_operator", None, None),
            EventActor::Key { id, account } => {
                ("key", Some(id.to_string()), Some(account.to_string()))
            }
        };
        let (outcome, code, missing_permissions) = match &e.outcome {
            Outcome::Ok => ("ok", None, Vec::new()),
            Outcome::Refused { code, missing } => ("refused", Some(code.clone()), missing.clone()),
        };
        let (trimmed_up_to, trimmed_hash) = match &e.action {
            Action::Trim { up_to, hash } => (Some(*up_to), Some(hash.to_string())),
            _ => (None, None),
        };
        Self {
            seq: e.seq,
            at: e.at.to_string(),
            actor,
            actor_key_id,
            actor_account_id,
            action: e.action.name(),
            key_id: e.key.as_ref().map(ToString::to_string),
            account_id: e.account.as_ref().map(ToString::to_string),
            versions: e.versions.clone(),
            fields: e.fields.clone(),
            request_id: e.request_id.as_ref().map(ToString::to_string),
            outcome,
            code,
            missing_permissions,
            trimmed_up_to,
            trimmed_hash,
            prev: e.prev.to_string(),
            hash: e.hash.to_string(),
        }
    }
}

/// A head as text: `SEQ:HASH` and its parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
pub struct HeadView {
    /// The newest event's sequence number.
    pub seq: u64,
    /// Its hash (hex).
    pub hash: String,
    /// `SEQ:HASH`, to pin and pass back to a verification.
    pub head: String,
}

impl From<EventHead> for HeadView {
    fn from(h: EventHead) -> Self {
        Self {
            seq: h.seq,
            hash: h.hash.to_string(),
            head: h.to_string(),
        }
    }
}

/// The verdict of a verification as text: what `GET /events/verify` answers and
/// `keyward events --verify --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
pub struct VerifyView {
    /// Whether the chain is intact (and, with a pinned head, reaches it unchanged).
    pub intact: bool,
    /// Events checked (intact chains).
    pub events: Option<u64>,
    /// The oldest event kept (intact chains; above 1 after a trim).
    pub first: Option<u64>,
    /// The newest event, to pin (intact chains).
    pub head: Option<HeadView>,
    /// `not_given`, `matched` or `trimmed` (intact chains).
    pub pinned: Option<&'static str>,
    /// The first sequence number where the chain breaks.
    pub broken_at: Option<u64>,
    /// How: `tampered`, `missing`, `relinked`, `unreadable`, `unvouched_start`,
    /// `trim_mismatch`, `tail_cut` or `head_mismatch`.
    pub kind: Option<&'static str>,
    /// What that means, in a sentence.
    pub detail: Option<String>,
}

impl From<&Result<ChainReport, ChainBreak>> for VerifyView {
    fn from(verdict: &Result<ChainReport, ChainBreak>) -> Self {
        match verdict {
            Ok(report) => Self {
                intact: true,
                events: Some(report.events),
                first: report.first,
                head: report.head.map(HeadView::from),
                pinned: Some(report.pinned.name()),
                broken_at: None,
                kind: None,
                detail: None,
            },
            Err(b) => Self {
                intact: false,
                events: None,
                first: None,
                head: None,
                pinned: None,
                broken_at: Some(b.seq),
                kind: Some(b.kind.name()),
                detail: Some(b.to_string()),
            },
        }
    }
}
