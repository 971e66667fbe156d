//! keyward-core: the key format, key generation, keyed digests, constant-time verification,
//! the credential model and permissions. No I/O.
//!
//! A key reads `[namespace_]{type}_{env}_{body}` (for example `sk_prod_…`); see
//! `docs/key-format.md` for the byte-by-byte specification.
//!
//! ```
//! use keyward_core::{KeyFormat, KeyType, Environment, Pepper};
//!
//! let format = KeyFormat::default();
//! let pepper = Pepper::from_bytes([7; 32]);
//! let generated = format.generate(KeyType::Secret, &Environment::Production, &pepper).unwrap();
//! let parsed = format.parse(generated.key.expose_secret()).unwrap();
//! assert_eq!(parsed.lookup(), generated.lookup);
//! assert_eq!(pepper.digest(parsed.digest_input()), generated.digest);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod base62;
mod error;
mod format;
mod ids;
mod model;
mod permission;
mod rng;
mod scan;
mod secret;
mod time;

pub use error::{FormatError, ModelError, PermissionError};
pub use format::{
    CHECKSUM_LEN, Environments, KeyFormat, MAX_KEY_LEN, ParsedKey, SCANNER_REGEX, SECRET_LEN,
    checksum, parse_any,
};
pub use ids::{AccountId, CredentialId, Environment, KeyType, LOOKUP_LEN, LookupTag};
pub use model::{
    Credential, MAX_METADATA_ENTRIES, MAX_METADATA_KEY_LEN, MAX_METADATA_VALUE_LEN, Metadata, Name,
    SecretVersion, SecretWindow,
};
pub use permission::{Permission, PermissionPolicy, PermissionSet};
pub use rng::{Generated, fill_base62, random_id};
pub use secret::{AuditKey, Digest, Pepper, PlaintextKey};
pub use time::Timestamp;
