//! The layout of a redb store: its five tables, the keys of the account index, and the mapping
//! of redb's errors to [`StoreError`].

use core::fmt;

use ::redb::TableDefinition;
use keyward_core::{AccountId, CredentialId};

use crate::StoreError;

/// The `meta` table: [`REDB_FORMAT_VERSION_KEY`] → one byte, the store's format version.
pub const REDB_META_TABLE: TableDefinition<'static, &'static [u8], &'static [u8]> =
    TableDefinition::new("meta");
/// The `records` table: credential id → `[FORMAT_VERSION] ++ postcard(credential)`.
pub const REDB_RECORDS_TABLE: TableDefinition<'static, &'static [u8], &'static [u8]> =
    TableDefinition::new("records");
/// The `lookup` table: lookup tag → credential id.
pub const REDB_LOOKUP_TABLE: TableDefinition<'static, &'static [u8], &'static [u8]> =
    TableDefinition::new("lookup");
/// The `accounts` table: account ‖ `0x00` ‖ credential id → nothing.
pub const REDB_ACCOUNTS_TABLE: TableDefinition<'static, &'static [u8], ()> =
    TableDefinition::new("accounts");
/// The `events` table: sequence number (8 bytes, big-endian) → the audit event's bytes.
pub const REDB_EVENTS_TABLE: TableDefinition<'static, &'static [u8], &'static [u8]> =
    TableDefinition::new("events");
/// Key of the format version in [`REDB_META_TABLE`].
pub const REDB_FORMAT_VERSION_KEY: &[u8] = b"format_version";

/// The account-index key: `account ‖ 0x00 ‖ id`. Account ids are printable ASCII, so the
/// separator sorts below every account byte and `account ‖ 0x00` is an exact prefix.
pub(super) fn account_key(account: &AccountId, id: &CredentialId) -> Vec<u8> {
    let mut k = account_prefix(account);
    k.extend_from_slice(id.as_str().as_bytes());
    k
}

/// `account ‖ 0x00`: every key of this account's index entries starts with it.
pub(super) fn account_prefix(account: &AccountId) -> Vec<u8> {
    let mut k = Vec::with_capacity(account.as_str().len() + 30);
    k.extend_from_slice(account.as_str().as_bytes());
    k.push(0);
    k
}

/// `account ‖ 0x01`: the smallest key above every key of this account.
pub(super) fn account_end(account: &AccountId) -> Vec<u8> {
    let mut k = account_prefix(account);
    if let Some(last) = k.last_mut() {
        *last = 1;
    }
    k
}

/// Splits an account-index key into account and id (a key without separator: all account).
pub(super) fn split_account_key(key: &[u8]) -> (&[u8], &[u8]) {
    match key.iter().position(|&b| b == 0) {
        Some(i) => (&key[..i], &key[i + 1..]),
        None => (key, &[]),
    }
}

/// Bytes as stored, for error messages and problem reports.
pub(super) fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Maps any redb error to [`StoreError::Backend`], saying what was being done.
pub(super) fn backend<E: fmt::Display>(what: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::Backend {
        message: format!("redb {what}: {e}"),
    }
}
