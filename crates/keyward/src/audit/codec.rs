//! The bytes of an event and its chain hash.
//!
//! ```text
//! bytes = 0x01 ‖ prev (32) ‖ hash (32) ‖ postcard(Body)
//! hash  = blake3::keyed_hash(audit_key, 0x01 ‖ prev ‖ seq (8 bytes, big-endian) ‖ postcard(Body))
//! ```

use keyward_core::{AccountId, AuditKey, CredentialId, Timestamp};
use keyward_store::{AuditEntry, StoreError};
use serde::{Deserialize, Serialize};

use super::{Action, Event, EventActor, EventHash, Outcome};
use crate::acting::RequestId;

/// The previous hash of the first event.
pub(crate) const ZERO_HASH: EventHash = EventHash([0; 32]);

/// The encoding version, the first byte of every event.
const EVENT_VERSION: u8 = 1;

/// Bytes before the body: the version, the previous hash and the hash.
const HEADER_LEN: usize = 1 + 32 + 32;

/// What an event says: everything but its position and its hashes. Version 1; fields are
/// positional (postcard), so a new field means a new version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Body {
    pub(crate) at: Timestamp,
    pub(crate) actor: EventActor,
    pub(crate) action: Action,
    pub(crate) key: Option<CredentialId>,
    pub(crate) account: Option<AccountId>,
    pub(crate) versions: Vec<u32>,
    pub(crate) fields: Vec<String>,
    pub(crate) request_id: Option<RequestId>,
    pub(crate) outcome: Outcome,
}

/// The parts of an event's stored bytes.
pub(crate) struct Sealed<'a> {
    pub(crate) version: u8,
    pub(crate) prev: EventHash,
    pub(crate) hash: EventHash,
    pub(crate) body: &'a [u8],
}

fn hash32(bytes: &[u8]) -> EventHash {
    let mut out = [0u8; 32];
    out.copy_from_slice(bytes);
    EventHash(out)
}

/// Splits stored bytes into their parts; `None` if they are too short to hold the header.
pub(crate) fn split(bytes: &[u8]) -> Option<Sealed<'_>> {
    if bytes.len() < HEADER_LEN {
        return None;
    }
    Some(Sealed {
        version: bytes[0],
        prev: hash32(&bytes[1..33]),
        hash: hash32(&bytes[33..65]),
        body: &bytes[HEADER_LEN..],
    })
}

/// The hash event `seq` must carry, given its version, previous hash and body.
pub(crate) fn chain_hash(
    key: &AuditKey,
    seq: u64,
    version: u8,
    prev: &EventHash,
    body: &[u8],
) -> EventHash {
    EventHash(key.mac(&[&[version], &prev.0, &seq.to_be_bytes(), body]))
}

/// Encodes `body` as event `seq` chained to `prev`; returns the entry to store and its hash.
pub(crate) fn seal(
    key: &AuditKey,
    seq: u64,
    prev: &EventHash,
    body: &Body,
) -> Result<(AuditEntry, EventHash), StoreError> {
    let body = postcard::to_allocvec(body).map_err(|e| StoreError::Backend {
        message: format!("encoding audit event {seq}: {e}"),
    })?;
    let hash = chain_hash(key, seq, EVENT_VERSION, prev, &body);
    let mut bytes = Vec::with_capacity(HEADER_LEN + body.len());
    bytes.push(EVENT_VERSION);
    bytes.extend_from_slice(&prev.0);
    bytes.extend_from_slice(&hash.0);
    bytes.extend_from_slice(&body);
    Ok((AuditEntry { seq, bytes }, hash))
}

/// The hash the next event chains to: the one `entry` carries, or, for bytes too damaged to
/// carry one, a keyed hash of them (so that the engine can go on appending after damage, and
/// verification points at the damaged event alone).
pub(crate) fn link(key: &AuditKey, entry: &AuditEntry) -> EventHash {
    match split(&entry.bytes) {
        Some(sealed) => sealed.hash,
        None => EventHash(key.mac(&[b"keyward damaged audit event", &entry.bytes])),
    }
}

/// Why stored bytes are not an event this build reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unreadable {
    /// Too short, or the body does not decode.
    Damaged,
    /// A newer encoding version.
    Newer(u8),
}

/// Decodes an entry (without checking its hash).
pub(crate) fn decode(entry: &AuditEntry) -> Result<Event, Unreadable> {
    let sealed = split(&entry.bytes).ok_or(Unreadable::Damaged)?;
    if sealed.version != EVENT_VERSION {
        return Err(if sealed.version > EVENT_VERSION {
            Unreadable::Newer(sealed.version)
        } else {
            Unreadable::Damaged
        });
    }
    let body: Body = match postcard::take_from_bytes(sealed.body) {
        Ok((body, [])) => body,
        _ => return Err(Unreadable::Damaged),
    };
    Ok(Event {
        seq: entry.seq,
        at: body.at,
        actor: body.actor,
        action: body.action,
        key: body.key,
        account: body.account,
        versions: body.versions,
        fields: body.fields,
        request_id: body.request_id,
        outcome: body.outcome,
        prev: sealed.prev,
        hash: sealed.hash,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use keyward_core::Pepper;

    use super::*;

    fn body() -> Body {
        Body {
            at: Timestamp::from_millis(1_700_000_000_000),
            actor: EventActor::LocalOperator,
            action: Action::Issue,
            key: Some("key_7Ay5mcUXAxwrN6wQEQUVEHBCJ".parse().unwrap()),
            account: Some("acc_1".parse().unwrap()),
            versions: vec![1],
            fields: Vec::new(),
            request_id: None,
            outcome: Outcome::Ok,
        }
    }

    #[test]
    fn an_event_decodes_to_what_was_sealed_and_its_hash_recomputes() {
        let key = Pepper::from_bytes([3; 32]).audit_key();
        let prev = EventHash([9; 32]);
        let (entry, hash) = seal(&key, 7, &prev, &body()).unwrap();
        let event = decode(&entry).unwrap();
        assert_eq!((event.seq, event.prev, event.hash), (7, prev, hash));
        assert_eq!(event.action, Action::Issue);
        assert_eq!(link(&key, &entry), hash);
        let sealed = split(&entry.bytes).unwrap();
        assert_eq!(
            chain_hash(&key, 7, sealed.version, &prev, sealed.body),
            hash
        );
        // The hash covers the position, the link and the key.
        assert_ne!(
            chain_hash(&key, 8, sealed.version, &prev, sealed.body),
            hash
        );
        assert_ne!(
            chain_hash(&key, 7, sealed.version, &ZERO_HASH, sealed.body),
            hash
        );
        let other = Pepper::from_bytes([4; 32]).audit_key();
        assert_ne!(
            chain_hash(&other, 7, sealed.version, &prev, sealed.body),
            hash
        );
    }

    #[test]
    fn damaged_and_newer_bytes_are_unreadable_and_still_link() {
        let key = Pepper::from_bytes([3; 32]).audit_key();
        let (mut entry, _) = seal(&key, 1, &ZERO_HASH, &body()).unwrap();
        entry.bytes.push(0);
        assert_eq!(decode(&entry), Err(Unreadable::Damaged));
        entry.bytes[0] = 2;
        assert_eq!(decode(&entry), Err(Unreadable::Newer(2)));
        let short = AuditEntry {
            seq: 1,
            bytes: vec![1, 2, 3],
        };
        assert_eq!(decode(&short), Err(Unreadable::Damaged));
        assert_eq!(link(&key, &short), link(&key, &short.clone()));
        assert_ne!(link(&key, &short), ZERO_HASH);
    }
}
