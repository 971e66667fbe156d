//! What one write of a [`Store`](crate::Store) carries: a credential write, an audit event, or
//! both, committed together ([`Store::commit`](crate::Store::commit)).

use core::fmt;

use keyward_core::{Credential, CredentialId};

use crate::StoreError;

/// Most audit events one [`Store::events`](crate::Store::events) call returns.
pub const EVENT_PAGE_MAX: usize = 1000;

/// One audit event as a store keeps it: its sequence number and its bytes.
///
/// The store treats `bytes` as opaque: they are the engine's encoding of the event, including
/// its chain hash (see `keyward::audit`). Sequence numbers start at 1 and have no gaps; the
/// store refuses an append that does not continue the log ([`check_event_seq`]).
#[derive(Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// The event's position in the log, from 1.
    pub seq: u64,
    /// The encoded event.
    pub bytes: Vec<u8>,
}

impl AuditEntry {
    /// An event as an ordered store keeps it, under [`event_key`]: [`StoreError::Corrupt`] if
    /// `key` is not 8 bytes.
    #[cfg(any(feature = "redb", feature = "sled"))]
    pub(crate) fn from_key(key: &[u8], bytes: &[u8]) -> Result<Self, StoreError> {
        let seq = seq_of_key(key).ok_or_else(|| StoreError::Corrupt {
            id: format!("event key {key:02x?}"),
            reason: "an audit event key is 8 bytes".into(),
        })?;
        Ok(AuditEntry {
            seq,
            bytes: bytes.to_vec(),
        })
    }
}

impl fmt::Debug for AuditEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditEntry")
            .field("seq", &self.seq)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// The credential part of a [`Change`].
#[derive(Debug, Clone, Copy)]
pub enum Write<'a> {
    /// Store this credential if its stored revision is `cred.revision` (0: new).
    Put(&'a Credential),
    /// Delete this credential if its stored revision is `revision`.
    Delete {
        /// The credential.
        id: &'a CredentialId,
        /// Its stored revision.
        revision: u64,
    },
}

impl Write<'_> {
    /// The credential written.
    pub fn id(&self) -> &CredentialId {
        match self {
            Self::Put(cred) => &cred.id,
            Self::Delete { id, .. } => id,
        }
    }
}

/// One atomic, durable write: a credential write, the audit event that records it, or both.
///
/// ```
/// use keyward_store::{AuditEntry, Change, MemoryStore, Store};
/// let store = MemoryStore::new();
/// let first = AuditEntry { seq: 1, bytes: b"one".to_vec() };
/// store.commit(&Change::event(&first)).unwrap();
/// // The log moved on: a second writer that also read an empty log cannot append seq 1.
/// assert!(store.commit(&Change::event(&first)).is_err());
/// assert_eq!(store.last_event().unwrap(), Some(first));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Change<'a> {
    /// The credential write, if any.
    pub write: Option<Write<'a>>,
    /// The audit event, if any.
    pub event: Option<&'a AuditEntry>,
}

impl<'a> Change<'a> {
    /// A put of `cred`, without event.
    pub fn put(cred: &'a Credential) -> Self {
        Self {
            write: Some(Write::Put(cred)),
            event: None,
        }
    }

    /// A delete of `id` at `revision`, without event.
    pub fn delete(id: &'a CredentialId, revision: u64) -> Self {
        Self {
            write: Some(Write::Delete { id, revision }),
            event: None,
        }
    }

    /// An event alone.
    pub fn event(event: &'a AuditEntry) -> Self {
        Self {
            write: None,
            event: Some(event),
        }
    }

    /// The same write, recorded by `event`.
    pub fn with_event(mut self, event: &'a AuditEntry) -> Self {
        self.event = Some(event);
        self
    }
}

/// The append rule every backend applies: an event with sequence number `seq` continues a log
/// whose last sequence number is `last` (0: no event yet) only if `seq == last + 1`. Otherwise
/// [`StoreError::EventConflict`].
///
/// ```
/// use keyward_store::check_event_seq;
/// assert!(check_event_seq(1, 0).is_ok());
/// assert!(check_event_seq(8, 7).is_ok());
/// assert!(check_event_seq(8, 8).is_err());
/// assert!(check_event_seq(0, 0).is_err());
/// ```
pub fn check_event_seq(seq: u64, last: u64) -> Result<(), StoreError> {
    if last.checked_add(1) == Some(seq) {
        Ok(())
    } else {
        Err(StoreError::EventConflict {
            expected: seq.saturating_sub(1),
            found: last,
        })
    }
}

/// The key of event `seq` in an ordered store: 8 bytes, big-endian, so that byte order is
/// sequence order.
pub fn event_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// The sequence number of an event key, `None` if it is not 8 bytes.
pub fn seq_of_key(key: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(key).ok().map(u64::from_be_bytes)
}
