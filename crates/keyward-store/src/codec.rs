//! Record encoding: one format-version byte, then the record of that version in postcard. The
//! record types, and how a new version is added, are in [`crate::record`].
//!
//! See `docs/storage.md` for the bytes on disk.

use keyward_core::Credential;

use crate::StoreError;
use crate::record::RecordV1;

/// The record format version this build writes (and the newest it reads).
pub const FORMAT_VERSION: u8 = 1;

/// Encodes a credential as `[FORMAT_VERSION] ++ postcard(RecordV1)`.
pub fn encode_credential(cred: &Credential) -> Result<Vec<u8>, StoreError> {
    postcard::to_extend(&RecordV1::from(cred), vec![FORMAT_VERSION]).map_err(|e| {
        StoreError::Backend {
            message: format!("encoding {}: {e}", cred.id),
        }
    })
}

/// Decodes a record; `id` names it in errors. Refuses newer format versions, trailing bytes and
/// values that break the model's invariants.
pub fn decode_credential(id: &str, bytes: &[u8]) -> Result<Credential, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        id: id.to_owned(),
        reason,
    };
    let (&version, body) = bytes
        .split_first()
        .ok_or_else(|| corrupt("empty record".into()))?;
    match version {
        FORMAT_VERSION => {}
        0 => return Err(corrupt("format version 0 is invalid".into())),
        v => {
            return Err(StoreError::UnsupportedFormat {
                id: Some(id.to_owned()),
                found: v,
                supported: FORMAT_VERSION,
            });
        }
    }
    let (record, rest): (RecordV1, &[u8]) =
        postcard::take_from_bytes(body).map_err(|e| corrupt(format!("undecodable: {e}")))?;
    if !rest.is_empty() {
        return Err(corrupt(format!("{} trailing bytes", rest.len())));
    }
    let cred = Credential::try_from(record).map_err(|e| match e {
        // Named by the key it is stored under, which the caller knows, when there is one.
        StoreError::Corrupt { reason, .. } if !id.is_empty() => corrupt(reason),
        other => other,
    })?;
    if cred.id.as_str() != id && !id.is_empty() {
        return Err(corrupt(format!("record holds id {}", cred.id)));
    }
    Ok(cred)
}
