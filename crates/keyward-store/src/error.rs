//! Storage errors.

use core::fmt;

use keyward_core::{CredentialId, LookupTag};

/// Why a storage operation failed. Never contains secret material.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// A conditional write lost: the stored revision is not the one expected.
    Conflict {
        /// The credential.
        id: CredentialId,
        /// Revision the writer expected (0: expected no record).
        expected: u64,
        /// Revision found (`None`: no record).
        found: Option<u64>,
    },
    /// An audit event does not continue the log: another writer appended since the writer
    /// read the log's last sequence number. Nothing was written; re-read the log's last event
    /// and retry.
    EventConflict {
        /// The last sequence number the writer expected (0: an empty log).
        expected: u64,
        /// The last sequence number found.
        found: u64,
    },
    /// A lookup tag is already indexed for another credential.
    DuplicateLookup {
        /// The tag.
        lookup: LookupTag,
    },
    /// A stored record cannot be decoded. Other credentials are unaffected.
    Corrupt {
        /// The record's id (as stored; it may itself be damaged).
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// The record or store was written by a newer format version than this build reads.
    UnsupportedFormat {
        /// The record's id (as stored), or `None` when the whole store is newer.
        id: Option<String>,
        /// Version found.
        found: u8,
        /// Newest version this build reads.
        supported: u8,
    },
    /// Another process holds the store open.
    InUse {
        /// What is locked (e.g. a path).
        what: String,
    },
    /// The store's files cannot be opened, even after removing what a crash leaves behind
    /// (sled: `keyward_store::sled::recover_leftovers`). Nothing else was changed: the records
    /// may still be on disk.
    Unopenable {
        /// Where the store is (a directory for sled).
        path: String,
        /// What the backend reported, what is damaged, and what recovery already did.
        reason: String,
    },
    /// An I/O or backend failure.
    Backend {
        /// Description.
        message: String,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Conflict {
                id,
                expected,
                found: Some(found),
            } => write!(
                f,
                "concurrent update of {id}: expected revision {expected}, found {found}"
            ),
            Self::Conflict {
                id,
                expected: 0,
                found: None,
            } => {
                write!(f, "{id} was created concurrently")
            }
            Self::Conflict { id, .. } => write!(f, "{id} does not exist"),
            Self::EventConflict { expected, found } => write!(
                f,
                "the audit log moved on: expected its last event to be {expected}, found {found}"
            ),
            Self::DuplicateLookup { lookup } => {
                write!(
                    f,
                    "lookup tag {lookup} already belongs to another credential"
                )
            }
            Self::Corrupt { id, reason } => write!(f, "stored record {id} is corrupt: {reason}"),
            Self::UnsupportedFormat {
                id: None,
                found,
                supported,
            } => write!(
                f,
                "store written by a newer keyward (format version {found}; this build reads up to {supported})"
            ),
            Self::UnsupportedFormat {
                id: Some(id),
                found,
                supported,
            } => write!(
                f,
                "stored record {id} written by a newer keyward (format version {found}; this build reads up to {supported})"
            ),
            Self::InUse { what } => {
                write!(f, "store is in use by another process ({what})")
            }
            Self::Unopenable { path, reason } => write!(
                f,
                "cannot open the store at {path}: {reason}. Its files are left as they are: run \
                 `keyward doctor` to see what is wrong; if it cannot be repaired, restore the \
                 store from a `keyward export` or a backup, and keep this directory, its records \
                 may still be readable"
            ),
            Self::Backend { message } => write!(f, "storage backend error: {message}"),
        }
    }
}

impl std::error::Error for StoreError {}
