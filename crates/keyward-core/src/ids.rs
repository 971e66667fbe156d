//! Identifiers shared by the key format and the model: key types, lookup tags, environments,
//! accounts and credential ids. Depends on neither `format` nor `model` (both build on it).

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::base62;
use crate::error::ModelError;

/// `[a-z0-9]{1,16}`: environment tags, custom environment names and namespaces.
pub(crate) fn valid_tag(s: &str) -> bool {
    (1..=16).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

macro_rules! string_newtype {
    ($(#[$m:meta])* $name:ident, $check:expr) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The value as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ModelError;
            fn try_from(s: String) -> Result<Self, ModelError> {
                #[allow(clippy::redundant_closure_call)]
                ($check)(s).map($name)
            }
        }

        impl core::str::FromStr for $name {
            type Err = ModelError;
            fn from_str(s: &str) -> Result<Self, ModelError> {
                Self::try_from(s.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }
    };
}
pub(crate) use string_newtype;

/// Base62 characters of the public lookup tag (≈ 95 bits).
pub const LOOKUP_LEN: usize = 16;

/// The three kinds of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// `pk`: safe to embed in client code; usually read-mostly permissions.
    Publishable,
    /// `sk`: full access within its account, server-side only.
    Secret,
    /// `rk`: limited to its explicit permissions (at least one).
    Restricted,
}

impl KeyType {
    /// All key types.
    pub const ALL: [KeyType; 3] = [KeyType::Publishable, KeyType::Secret, KeyType::Restricted];

    /// The two-letter prefix in a key.
    pub const fn prefix(self) -> &'static str {
        match self {
            Self::Publishable => "pk",
            Self::Secret => "sk",
            Self::Restricted => "rk",
        }
    }

    /// The name used in APIs: `publishable`, `secret`, `restricted`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Publishable => "publishable",
            Self::Secret => "secret",
            Self::Restricted => "restricted",
        }
    }

    /// Parses a two-letter prefix.
    pub fn from_prefix(p: &str) -> Option<Self> {
        match p {
            "pk" => Some(Self::Publishable),
            "sk" => Some(Self::Secret),
            "rk" => Some(Self::Restricted),
            _ => None,
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for KeyType {
    type Err = ModelError;
    /// Accepts `publishable|secret|restricted` and the prefixes `pk|sk|rk`.
    fn from_str(s: &str) -> Result<Self, ModelError> {
        match s {
            "publishable" | "pk" => Ok(Self::Publishable),
            "secret" | "sk" => Ok(Self::Secret),
            "restricted" | "rk" => Ok(Self::Restricted),
            _ => Err(ModelError::InvalidKeyType),
        }
    }
}

/// The public lookup tag of one secret version: [`LOOKUP_LEN`] base62 characters.
///
/// It is not secret (it is stored in the clear to find the credential) but it is random, so the
/// hot index hashes it cheaply.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LookupTag([u8; LOOKUP_LEN]);

impl LookupTag {
    /// Builds a tag from its characters; `None` unless exactly [`LOOKUP_LEN`] base62 characters.
    pub fn new(s: &[u8]) -> Option<Self> {
        let arr: [u8; LOOKUP_LEN] = s.try_into().ok()?;
        arr.iter()
            .all(u8::is_ascii_alphanumeric)
            .then_some(Self(arr))
    }

    /// A tag from characters the caller has already checked are base62 (the key parser, on
    /// its hot path, after the checksum).
    #[inline]
    pub(crate) const fn from_checked(bytes: [u8; LOOKUP_LEN]) -> Self {
        Self(bytes)
    }

    /// The characters of the tag.
    pub fn as_bytes(&self) -> &[u8; LOOKUP_LEN] {
        &self.0
    }

    /// The tag as a string.
    pub fn as_str(&self) -> &str {
        // Invariant: only ASCII alphanumerics are ever stored.
        core::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The first eight bytes as a little-endian integer: already uniformly random, so a hot map
    /// can use it as a hash directly.
    #[inline]
    pub fn prefix_u64(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(b)
    }
}

impl fmt::Debug for LookupTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LookupTag({})", self.as_str())
    }
}

impl fmt::Display for LookupTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for LookupTag {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for LookupTag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        LookupTag::new(s.as_bytes()).ok_or_else(|| serde::de::Error::custom("invalid lookup tag"))
    }
}

string_newtype!(
    /// An opaque account identifier: 1–128 printable ASCII characters (no spaces), e.g.
    /// `acc_B518niGwGYKzig6vtrRVZGGGV`.
    AccountId,
    |s: String| {
        if (1..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(s)
        } else {
            Err(ModelError::InvalidAccountId)
        }
    }
);

/// A credential id, `key_` followed by 25 base62 characters, e.g.
/// `key_7Ay5mcUXAxwrN6wQEQUVEHBCJ`. It stays the same across rotations.
///
/// Held inline (29 bytes, no heap allocation): the hot index keeps one per credential.
///
/// ```
/// use keyward_core::CredentialId;
/// let id: CredentialId = "key_7Ay5mcUXAxwrN6wQEQUVEHBCJ".parse().unwrap();
/// assert_eq!(id.as_str(), "key_7Ay5mcUXAxwrN6wQEQUVEHBCJ");
/// assert!("key_short".parse::<CredentialId>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CredentialId([u8; CredentialId::LEN]);

impl CredentialId {
    /// Length of an id in bytes.
    pub const LEN: usize = 29;

    /// Builds an id from 25 random base62 characters.
    pub(crate) fn from_body(body: &[u8; 25]) -> Self {
        let mut b = *b"key_0000000000000000000000000";
        b[4..].copy_from_slice(body);
        Self(b)
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        // Only ever built from validated ASCII (`from_body`, `TryFrom<String>`).
        core::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl TryFrom<String> for CredentialId {
    type Error = ModelError;
    fn try_from(s: String) -> Result<Self, ModelError> {
        s.parse()
    }
}

impl core::str::FromStr for CredentialId {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, ModelError> {
        let b: [u8; Self::LEN] = s
            .as_bytes()
            .try_into()
            .map_err(|_| ModelError::InvalidCredentialId)?;
        let ok = b.starts_with(b"key_") && b[4..].iter().all(|&c| base62::digit(c).is_some());
        if ok {
            Ok(Self(b))
        } else {
            Err(ModelError::InvalidCredentialId)
        }
    }
}

impl From<CredentialId> for String {
    fn from(v: CredentialId) -> String {
        v.as_str().to_owned()
    }
}

impl fmt::Display for CredentialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CredentialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// An environment: `production`, `test`, or a custom name (`[a-z0-9]{1,16}`, not `prod`).
///
/// ```
/// use keyward_core::Environment;
/// assert_eq!("production".parse::<Environment>().unwrap(), Environment::Production);
/// assert_eq!("staging".parse::<Environment>().unwrap().as_str(), "staging");
/// assert!("Prod!".parse::<Environment>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Environment {
    /// `production`, tag `prod`.
    Production,
    /// `test`, tag `test`.
    Test,
    /// A custom environment.
    Custom(String),
}

impl Environment {
    /// The environment's name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Production => "production",
            Self::Test => "test",
            Self::Custom(s) => s,
        }
    }
}

impl TryFrom<String> for Environment {
    type Error = ModelError;
    fn try_from(s: String) -> Result<Self, ModelError> {
        match s.as_str() {
            "production" => Ok(Self::Production),
            "test" => Ok(Self::Test),
            "prod" => Err(ModelError::InvalidEnvironment),
            _ if valid_tag(&s) => Ok(Self::Custom(s)),
            _ => Err(ModelError::InvalidEnvironment),
        }
    }
}

impl core::str::FromStr for Environment {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, ModelError> {
        if s.len() > 16 && s != "production" {
            return Err(ModelError::InvalidEnvironment);
        }
        Self::try_from(s.to_owned())
    }
}

impl From<Environment> for String {
    fn from(e: Environment) -> String {
        match e {
            Environment::Custom(s) => s,
            other => other.as_str().to_owned(),
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
