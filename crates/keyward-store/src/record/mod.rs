//! The record schema: the bytes a credential is stored as, owned by this crate rather than by
//! the model's serde derives, so that the model (`keyward_core::Credential`) can change without
//! changing what is on disk, and what is on disk can change only on purpose.
//!
//! A record is `[FORMAT_VERSION] ++ postcard(RecordVn)` ([`crate::encode_credential`],
//! [`crate::decode_credential`]). postcard is positional: the order and types of a record's
//! fields *are* the format, and the names are not stored. Each version is a module (`v1.rs`)
//! of plain serde types with conversions to and from the model; a record whose values the model
//! refuses converts to [`StoreError::Corrupt`](crate::StoreError::Corrupt) naming the field.
//!
//! # Adding version 2
//!
//! 1. Copy `v1.rs` to `v2.rs` and change `RecordV2` (add, retype, reorder fields). Never edit a
//!    released version's types: existing stores hold their bytes.
//! 2. Bump [`FORMAT_VERSION`](crate::FORMAT_VERSION) to 2. `encode_credential` writes
//!    `RecordV2`; `decode_credential` reads the version byte and converts from `RecordV1` or
//!    `RecordV2` (version 1 is then read-only: old records are rewritten as version 2 by their
//!    next `put`).
//! 3. Pin version 2's bytes in `tests/codec.rs` next to version 1's, and keep a version-1
//!    record decoding there.
//!
//! Today `RecordV1` encodes to the same bytes as the model's own serde derives
//! (`tests/record.rs` proves it for every field and option), which is how every store written
//! so far was encoded.

mod v1;

pub use v1::{KeyTypeV1, RecordV1, SecretV1};
