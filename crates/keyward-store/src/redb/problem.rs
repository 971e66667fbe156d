//! What [`RedbStore::check_indexes`](super::RedbStore::check_indexes) reports.
//!
//! The same variants, meanings and messages as the sled backend's `IndexProblem`, defined here
//! so that this backend builds without sled; one shared type can replace both.

use core::fmt;

use keyward_core::{AccountId, CredentialId, LookupTag};

use crate::StoreError;

/// An inconsistency between the records and the index tables of a
/// [`RedbStore`](super::RedbStore), found by
/// [`RedbStore::check_indexes`](super::RedbStore::check_indexes). Each names the credential it
/// concerns.
#[derive(Debug)]
#[non_exhaustive]
pub enum RedbIndexProblem {
    /// A record cannot be decoded ([`StoreError::Corrupt`] or [`StoreError::UnsupportedFormat`]
    /// naming it).
    UndecodableRecord(StoreError),
    /// A secret's lookup tag has no index entry, or one pointing elsewhere: the backend's
    /// [`Store::find_by_lookup`](crate::Store::find_by_lookup) does not find it (the hot index,
    /// warmed from the records, does).
    MissingLookup {
        /// The credential.
        id: CredentialId,
        /// Its secret's tag.
        lookup: LookupTag,
        /// The id the entry points to instead, if any.
        found: Option<String>,
    },
    /// A lookup entry whose credential does not exist or does not hold the tag. Harmless:
    /// lookups ignore it and a write claiming the tag replaces it.
    DanglingLookup {
        /// The tag (as stored).
        lookup: String,
        /// The id it points to (as stored).
        id: String,
    },
    /// A credential missing from its account's index: listing the account leaves it out.
    MissingAccountEntry {
        /// The credential.
        id: CredentialId,
        /// Its account.
        account: AccountId,
    },
    /// An account entry whose credential does not exist or belongs to another account.
    /// Harmless: listing skips it.
    DanglingAccountEntry {
        /// The account (as stored).
        account: String,
        /// The id (as stored).
        id: String,
    },
}

impl fmt::Display for RedbIndexProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UndecodableRecord(e) => fmt::Display::fmt(e, f),
            Self::MissingLookup {
                id,
                lookup,
                found: None,
            } => write!(f, "{id}: lookup index entry for {lookup} is missing"),
            Self::MissingLookup {
                id,
                lookup,
                found: Some(other),
            } => write!(f, "{id}: lookup index entry for {lookup} points to {other}"),
            Self::DanglingLookup { lookup, id } => write!(
                f,
                "lookup index entry {lookup} points to {id}, which does not hold it"
            ),
            Self::MissingAccountEntry { id, account } => {
                write!(f, "{id}: missing from the index of account {account}")
            }
            Self::DanglingAccountEntry { account, id } => write!(
                f,
                "account index of {account} lists {id}, which is not one of its credentials"
            ),
        }
    }
}
