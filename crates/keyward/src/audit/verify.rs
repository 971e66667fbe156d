//! Proving the chain: [`Keyward::verify_events`] and the head to pin,
//! [`Keyward::event_head`].

use core::fmt;

use keyward_store::{AuditEntry, Store};

use super::codec::{ZERO_HASH, chain_hash, decode, link, split};
use super::log::Call;
use super::{Action, EventHash, EventHead};
use crate::acting::Acts;
use crate::authority::{self, Right};
use crate::engine::Keyward;
use crate::error::EngineError;

/// Events read from the store per batch.
const BATCH: usize = 1000;

/// An intact chain: what [`Keyward::verify_events`] checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Events checked.
    pub events: u64,
    /// The oldest event kept (`None`: the log is empty). Above 1 after a trim, which a trim
    /// event on the chain vouches for.
    pub first: Option<u64>,
    /// The newest event: the head to pin.
    pub head: Option<EventHead>,
    /// What the check of a pinned head found.
    pub pinned: HeadCheck,
}

/// The check of a pinned head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadCheck {
    /// No head was given.
    NotGiven,
    /// The pinned event is in the log with the pinned hash: nothing up to it was cut or
    /// rewritten.
    Matched,
    /// The pinned event was removed by retention (a trim on the chain vouches for it), so its
    /// hash could not be compared.
    Trimmed,
}

impl HeadCheck {
    /// `not_given`, `matched` or `trimmed`.
    pub fn name(self) -> &'static str {
        match self {
            Self::NotGiven => "not_given",
            Self::Matched => "matched",
            Self::Trimmed => "trimmed",
        }
    }
}

/// Where and how the chain breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainBreak {
    /// The first sequence number where the chain breaks.
    pub seq: u64,
    /// How.
    pub kind: BreakKind,
}

/// How the chain breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakKind {
    /// The event's hash does not match its content: it was edited, or written without the
    /// audit key.
    Tampered,
    /// The event is missing: the log jumps over it (deleted).
    Missing,
    /// The event does not chain to the one before it: an event before it was deleted or
    /// replaced.
    Relinked,
    /// The event's bytes cannot be read (damaged, or written by a newer keyward).
    Unreadable,
    /// The log starts after event 1 and no trim on the chain vouches for the cut: its oldest
    /// events were deleted.
    UnvouchedStart,
    /// A trim event names a last removed event whose hash is not the one recorded.
    TrimMismatch,
    /// The pinned head is beyond the end of the log: its newest events were cut off.
    TailCut,
    /// The event at the pinned head's sequence number has another hash: the log was rewritten
    /// from there.
    HeadMismatch,
}

impl BreakKind {
    /// The kind's name, e.g. `tail_cut`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tampered => "tampered",
            Self::Missing => "missing",
            Self::Relinked => "relinked",
            Self::Unreadable => "unreadable",
            Self::UnvouchedStart => "unvouched_start",
            Self::TrimMismatch => "trim_mismatch",
            Self::TailCut => "tail_cut",
            Self::HeadMismatch => "head_mismatch",
        }
    }
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seq = self.seq;
        match self.kind {
            BreakKind::Tampered => write!(
                f,
                "event {seq} was changed: its hash does not match its content"
            ),
            BreakKind::Missing => write!(f, "event {seq} is missing: it was deleted"),
            BreakKind::Relinked => write!(
                f,
                "event {seq} does not chain to the event before it: an event before it was \
                 deleted or replaced"
            ),
            BreakKind::Unreadable => write!(
                f,
                "event {seq} cannot be read (damaged, or written by a newer keyward)"
            ),
            BreakKind::UnvouchedStart => write!(
                f,
                "the log starts at event {seq} and no trim vouches for that: its oldest events \
                 were deleted"
            ),
            BreakKind::TrimMismatch => write!(
                f,
                "trim event {seq} does not match the last event it says it removed"
            ),
            BreakKind::TailCut => write!(
                f,
                "the log ends before the pinned head: event {seq} and those after it were \
                 cut off"
            ),
            BreakKind::HeadMismatch => write!(
                f,
                "event {seq} is not the pinned head: the log was rewritten from there"
            ),
        }
    }
}

impl std::error::Error for ChainBreak {}

/// The walk over the log.
struct Walk {
    events: u64,
    first: Option<(u64, EventHash)>,
    last: Option<(u64, EventHash)>,
    /// The first break found by the walk itself.
    broken: Option<ChainBreak>,
    /// A verified trim event vouches for where the log starts.
    vouched: bool,
    /// The hash of the pinned event, when the walk passed it.
    at_pin: Option<EventHash>,
}

impl Walk {
    fn brake(&mut self, seq: u64, kind: BreakKind) {
        if self.broken.is_none() {
            self.broken = Some(ChainBreak { seq, kind });
        }
    }
}

impl Keyward {
    /// The newest event (`None`: the log is empty), to pin outside the store. Only the local
    /// operator and operator keys holding `api-key:admin` may read it.
    pub fn event_head(&self, by: &impl Acts) -> Result<Option<EventHead>, EngineError> {
        let by = by.acting();
        let call = Call::new(&by, Action::ReadEvents);
        self.recorded(&call, || {
            let actor = self.actor(&by.principal, Right::Read)?;
            authority::check_deployment_wide(&actor)?;
            let store = self.inner.store.backend();
            Ok(store.last_event()?.map(|e| EventHead {
                seq: e.seq,
                hash: link(self.inner.audit.key(), &e),
            }))
        })
    }

    /// Walks the whole log, recomputes every event's hash and link, and names the first event
    /// where the chain breaks: an edited event, a deleted one (a gap, or an event that no
    /// longer chains to the one before it), a cut at the start that no trim vouches for. With
    /// `head` (a head pinned earlier, [`Keyward::event_head`]) it also catches a log whose
    /// newest events were cut off or rewritten. Only the local operator and operator keys
    /// holding `api-key:admin` may verify.
    ///
    /// The outer `Result` is the call (refused, or the store failed); the inner one the
    /// verdict.
    ///
    /// ```
    /// # use keyward::{Config, Keyward, NewKey, Principal, core::{Environment, KeyType}};
    /// let op = &Principal::LocalOperator;
    /// let kw = Keyward::open(Config::memory())?;
    /// kw.issue(op, NewKey::new("acc_1".parse()?, KeyType::Secret, Environment::Test, "ci".parse()?))?;
    /// let head = kw.event_head(op)?.expect("one event");
    /// let report = kw.verify_events(op, Some(head))?.expect("intact");
    /// assert_eq!(report.events, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn verify_events(
        &self,
        by: &impl Acts,
        head: Option<EventHead>,
    ) -> Result<Result<ChainReport, ChainBreak>, EngineError> {
        let by = by.acting();
        let call = Call::new(&by, Action::ReadEvents);
        self.recorded(&call, || {
            let actor = self.actor(&by.principal, Right::Read)?;
            authority::check_deployment_wide(&actor)?;
            self.walk_chain(head)
        })
    }

    fn walk_chain(
        &self,
        head: Option<EventHead>,
    ) -> Result<Result<ChainReport, ChainBreak>, EngineError> {
        let store = self.inner.store.backend();
        let mut walk = Walk {
            events: 0,
            first: None,
            last: None,
            broken: None,
            vouched: false,
            at_pin: None,
        };
        let mut after = 0;
        loop {
            let batch = store.events(after, BATCH)?;
            for entry in &batch {
                after = entry.seq;
                self.check_event(store, entry, head, &mut walk)?;
            }
            if batch.len() < BATCH {
                break;
            }
        }
        Ok(verdict(&walk, head))
    }

    /// Checks one event against the walk so far.
    fn check_event(
        &self,
        store: &dyn Store,
        entry: &AuditEntry,
        head: Option<EventHead>,
        walk: &mut Walk,
    ) -> Result<(), EngineError> {
        let key = self.inner.audit.key();
        let seq = entry.seq;
        walk.events += 1;
        let link_hash = link(key, entry);
        if head.is_some_and(|h| h.seq == seq) {
            walk.at_pin = Some(link_hash);
        }
        let Some(sealed) = split(&entry.bytes) else {
            walk.brake(seq, BreakKind::Unreadable);
            walk.last = Some((seq, link_hash));
            walk.first.get_or_insert((seq, ZERO_HASH));
            return Ok(());
        };
        match walk.last {
            None => {
                walk.first = Some((seq, sealed.prev));
                if seq == 1 && sealed.prev != ZERO_HASH {
                    walk.brake(seq, BreakKind::Relinked);
                }
            }
            Some((last, last_hash)) => {
                if seq != last + 1 {
                    walk.brake(last + 1, BreakKind::Missing);
                } else if sealed.prev != last_hash {
                    walk.brake(seq, BreakKind::Relinked);
                }
            }
        }
        walk.last = Some((seq, link_hash));
        if chain_hash(key, seq, sealed.version, &sealed.prev, sealed.body) != sealed.hash {
            walk.brake(seq, BreakKind::Tampered);
            return Ok(());
        }
        let event = match decode(entry) {
            Ok(event) => event,
            Err(_) => {
                walk.brake(seq, BreakKind::Unreadable);
                return Ok(());
            }
        };
        if let Action::Trim { up_to, hash } = event.action {
            let Some((first, first_prev)) = walk.first else {
                return Ok(());
            };
            if up_to.checked_add(1) == Some(first) {
                // The trim that made the log start here.
                walk.vouched = true;
                if first_prev != hash {
                    walk.brake(seq, BreakKind::TrimMismatch);
                }
            } else if up_to >= first {
                // A trim not (wholly) applied yet: the event it names is still here.
                walk.vouched = true;
                let named = store.events(up_to - 1, 1)?;
                match named.first() {
                    Some(e) if e.seq == up_to && link(key, e) == hash => {}
                    _ => walk.brake(seq, BreakKind::TrimMismatch),
                }
            }
        }
        Ok(())
    }
}

/// The verdict of a finished walk: the earliest break, else the pinned head's check.
fn verdict(walk: &Walk, head: Option<EventHead>) -> Result<ChainReport, ChainBreak> {
    if let Some((first, _)) = walk.first
        && first > 1
        && !walk.vouched
    {
        return Err(ChainBreak {
            seq: first,
            kind: BreakKind::UnvouchedStart,
        });
    }
    if let Some(b) = walk.broken {
        return Err(b);
    }
    let pinned = match head {
        None => HeadCheck::NotGiven,
        Some(h) => {
            let last = walk.last.map_or(0, |(seq, _)| seq);
            let first = walk.first.map_or(1, |(seq, _)| seq);
            if h.seq > last {
                return Err(ChainBreak {
                    seq: last + 1,
                    kind: BreakKind::TailCut,
                });
            }
            if h.seq < first {
                HeadCheck::Trimmed
            } else if walk.at_pin == Some(h.hash) {
                HeadCheck::Matched
            } else {
                return Err(ChainBreak {
                    seq: h.seq,
                    kind: BreakKind::HeadMismatch,
                });
            }
        }
    };
    Ok(ChainReport {
        events: walk.events,
        first: walk.first.map(|(seq, _)| seq),
        head: walk.last.map(|(seq, hash)| EventHead { seq, hash }),
        pinned,
    })
}
