//! Error types, one per concern. None of them ever carries secret material.

use core::fmt;

/// Why a string is not a well-formed keyward key. Nothing here includes the presented key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatError {
    /// Empty input.
    Empty,
    /// Longer than [`crate::MAX_KEY_LEN`] bytes.
    TooLong,
    /// A byte outside `[A-Za-z0-9_]`.
    InvalidCharacter,
    /// Not `[namespace_]type_env_body`.
    BadStructure,
    /// The body does not have the fixed length.
    BadBodyLength,
    /// The type prefix is not `pk`, `sk` or `rk`.
    UnknownType,
    /// The environment tag is not one this deployment knows.
    UnknownEnvironment,
    /// The namespace is missing, unexpected, or not this deployment's.
    WrongNamespace,
    /// The checksum does not match: a typo or a forged-looking key.
    BadChecksum,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "key is empty",
            Self::TooLong => "key is longer than the maximum accepted length",
            Self::InvalidCharacter => "key contains a character outside [A-Za-z0-9_]",
            Self::BadStructure => "key is not of the form [namespace_]type_env_body",
            Self::BadBodyLength => "key body has the wrong length",
            Self::UnknownType => "key type prefix is not pk, sk or rk",
            Self::UnknownEnvironment => "key environment tag is not known to this deployment",
            Self::WrongNamespace => "key namespace does not match this deployment",
            Self::BadChecksum => "key checksum does not match (mistyped or not a real key)",
        })
    }
}

impl std::error::Error for FormatError {}

/// Why a value for the credential model was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelError {
    /// Name empty after trimming.
    NameEmpty,
    /// Name longer than 100 characters.
    NameTooLong {
        /// Characters given.
        len: usize,
    },
    /// Name contains a control character (newline, tab, …).
    NameControlCharacter,
    /// Account id not 1–128 printable ASCII characters.
    InvalidAccountId,
    /// Credential id not `key_` followed by 25 base62 characters.
    InvalidCredentialId,
    /// Environment name not `production`, `test` or `[a-z0-9]{1,16}`.
    InvalidEnvironment,
    /// Environment tag configuration is inconsistent (duplicate or invalid tag).
    InvalidEnvironmentTag,
    /// Namespace not `[a-z0-9]{1,16}`.
    InvalidNamespace,
    /// Key type not `publishable`, `secret`, `restricted` (or `pk`, `sk`, `rk`).
    InvalidKeyType,
    /// Metadata exceeds a bound.
    MetadataTooLarge {
        /// Which bound.
        what: &'static str,
    },
    /// A timestamp is outside the supported range or not RFC 3339.
    InvalidTimestamp,
    /// A restricted key needs at least one permission.
    RestrictedWithoutPermissions,
    /// The key type may not hold this permission under the deployment's policy.
    PermissionNotAllowed {
        /// The refused permission.
        permission: String,
    },
    /// An expiry that is not after the current time.
    ExpiryNotInFuture,
    /// A duration (grace period, activation delay) above the accepted maximum.
    DurationTooLong {
        /// The maximum, in seconds.
        max_seconds: u64,
    },
    /// The operating system's random number generator failed.
    Rng,
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NameEmpty => f.write_str("name must not be empty"),
            Self::NameTooLong { len } => {
                write!(f, "name is {len} characters long; at most 100 are allowed")
            }
            Self::NameControlCharacter => f.write_str("name must not contain control characters"),
            Self::InvalidAccountId => {
                f.write_str("account id must be 1 to 128 printable ASCII characters")
            }
            Self::InvalidCredentialId => {
                f.write_str("credential id must be `key_` followed by 25 base62 characters")
            }
            Self::InvalidEnvironment => f.write_str(
                "environment must be `production`, `test` or 1 to 16 lowercase letters and digits",
            ),
            Self::InvalidEnvironmentTag => f.write_str(
                "environment tags must be 1 to 16 lowercase letters and digits, unique per environment",
            ),
            Self::InvalidNamespace => {
                f.write_str("namespace must be 1 to 16 lowercase letters and digits")
            }
            Self::InvalidKeyType => {
                f.write_str("key type must be `publishable`, `secret` or `restricted`")
            }
            Self::MetadataTooLarge { what } => write!(f, "metadata too large: {what}"),
            Self::InvalidTimestamp => {
                f.write_str("timestamp must be RFC 3339 and between 1970 and 9999")
            }
            Self::RestrictedWithoutPermissions => {
                f.write_str("a restricted key needs at least one permission")
            }
            Self::PermissionNotAllowed { permission } => write!(
                f,
                "permission `{permission}` is not allowed for this key type by the deployment's policy"
            ),
            Self::ExpiryNotInFuture => f.write_str("expiry must be in the future"),
            Self::DurationTooLong { max_seconds } => {
                write!(f, "duration must be at most {max_seconds} seconds")
            }
            Self::Rng => f.write_str("the operating system's random number generator failed"),
        }
    }
}

impl std::error::Error for ModelError {}

/// Why a permission string does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PermissionError {
    /// Empty string.
    Empty,
    /// Longer than 128 bytes.
    TooLong,
    /// No `:` between resource and action (and not the lone `*`).
    MissingColon,
    /// The resource part is empty or has a character outside `[a-z0-9._-]`, or does not start
    /// with a letter.
    InvalidResource,
    /// The action part is empty, or not `*` nor `[a-z][a-z0-9._-]*`.
    InvalidAction,
}

impl fmt::Display for PermissionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "permission is empty",
            Self::TooLong => "permission is longer than 128 bytes",
            Self::MissingColon => "permission must be `resource:action`, `resource:*` or `*`",
            Self::InvalidResource => {
                "permission resource must start with a lowercase letter and use only [a-z0-9._-]"
            }
            Self::InvalidAction => {
                "permission action must be `*` or start with a lowercase letter and use only [a-z0-9._-]"
            }
        })
    }
}

impl std::error::Error for PermissionError {}
