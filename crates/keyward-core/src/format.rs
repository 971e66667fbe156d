//! The key format: `[namespace_]{type}_{env}_{lookup}{secret}{checksum}`.
//!
//! * `type`: `pk`, `sk` or `rk`;
//! * `env`: the environment's tag (`prod`, `test`, or a configured custom tag), `[a-z0-9]{1,16}`;
//! * `lookup`: [`LOOKUP_LEN`] base62 characters, the public lookup tag of this secret version;
//! * `secret`: [`SECRET_LEN`] base62 characters (≥ 196 bits of entropy);
//! * `checksum`: CRC-32 (IEEE) of every byte before it, as [`CHECKSUM_LEN`] base62 digits.

use core::fmt;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::base62;
use crate::error::{FormatError, ModelError};
use crate::model::{Environment, valid_tag};

/// Base62 characters of the public lookup tag (≈ 95 bits).
pub const LOOKUP_LEN: usize = 16;
/// Base62 characters of the secret (62^33 ≈ 2^196.5).
pub const SECRET_LEN: usize = 33;
/// Base62 characters of the checksum (CRC-32 fits in 6 base62 digits).
pub const CHECKSUM_LEN: usize = 6;
/// Length of the body after the last `_`.
pub const BODY_LEN: usize = LOOKUP_LEN + SECRET_LEN + CHECKSUM_LEN;
/// The longest string the parser looks at; anything longer is refused before any other work.
pub const MAX_KEY_LEN: usize = 128;

/// A regular expression for secret scanners (PCRE / RE2 / Rust `regex` syntax). It matches every
/// keyward key of any deployment; confirm a match offline with [`parse_any`], which checks the
/// checksum.
pub const SCANNER_REGEX: &str =
    r"\b(?:[a-z0-9]{1,16}_)?(?:pk|sk|rk)_[a-z0-9]{1,16}_[0-9A-Za-z]{55}\b";

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

/// Maps environments to the short tags in keys. `production` → `prod`, `test` → `test`; a custom
/// environment's tag is its name unless configured otherwise.
///
/// ```
/// use keyward_core::{Environments, Environment};
/// let mut envs = Environments::default();
/// envs.insert("staging", "stg").unwrap();
/// let staging: Environment = "staging".parse().unwrap();
/// assert_eq!(envs.tag_of(&staging).unwrap(), "stg");
/// assert_eq!(envs.environment_of_tag("stg"), Some(staging));
/// assert_eq!(envs.environment_of_tag("prod"), Some(Environment::Production));
/// ```
///
/// Tags and environments correspond one to one: `production` is never a tag (the production tag
/// is `prod`), so no two tags name the same environment. Serialised as the map of configured
/// custom environment name → tag (`{"staging": "stg"}`); deserialising re-applies
/// [`Environments::insert`]'s checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    try_from = "BTreeMap<String, String>",
    into = "BTreeMap<String, String>"
)]
pub struct Environments {
    /// custom environment name → tag
    by_name: BTreeMap<String, String>,
    /// tag → custom environment name
    by_tag: BTreeMap<String, String>,
}

impl Environments {
    /// Maps a custom environment `name` to `tag`. Refuses an invalid name
    /// ([`ModelError::InvalidEnvironment`]); the built-in environments, an invalid tag, the
    /// reserved tags `prod`, `test` and `production`, and a tag already in use
    /// ([`ModelError::InvalidEnvironmentTag`]).
    pub fn insert(&mut self, name: &str, tag: &str) -> Result<(), ModelError> {
        let env: Environment = name.parse()?;
        if !matches!(env, Environment::Custom(_)) {
            return Err(ModelError::InvalidEnvironmentTag);
        }
        if !valid_tag(tag) || is_reserved_tag(tag) {
            return Err(ModelError::InvalidEnvironmentTag);
        }
        if self.by_tag.get(tag).is_some_and(|n| n != name) {
            return Err(ModelError::InvalidEnvironmentTag);
        }
        if let Some(old) = self.by_name.insert(name.to_owned(), tag.to_owned()) {
            self.by_tag.remove(&old);
        }
        self.by_tag.insert(tag.to_owned(), name.to_owned());
        Ok(())
    }

    /// The tag used in keys for `env`.
    pub fn tag_of<'a>(&'a self, env: &'a Environment) -> Result<&'a str, ModelError> {
        Ok(match env {
            Environment::Production => "prod",
            Environment::Test => "test",
            // `Custom` can be built directly: hold it to the same rules as a parsed name, so
            // `Custom("test")` cannot mint keys that read back as `Test`.
            Environment::Custom(name) if is_reserved_tag(name) || !valid_tag(name) => {
                return Err(ModelError::InvalidEnvironment);
            }
            Environment::Custom(name) => match self.by_name.get(name.as_str()) {
                Some(tag) => tag,
                // An unconfigured custom environment uses its name as tag, unless that tag
                // belongs to a configured environment.
                None if valid_tag(name) && !self.by_tag.contains_key(name.as_str()) => name,
                None => return Err(ModelError::InvalidEnvironment),
            },
        })
    }

    /// Whether `tag` names an environment (without allocating).
    #[inline]
    pub fn is_known_tag(&self, tag: &str) -> bool {
        match tag {
            "prod" | "test" => true,
            // `production` is the name of the environment whose tag is `prod`, not a tag.
            "production" => false,
            _ => {
                if self.by_tag.is_empty() {
                    return valid_tag(tag);
                }
                self.by_tag.contains_key(tag) || (valid_tag(tag) && !self.by_name.contains_key(tag))
            }
        }
    }

    /// The environment a tag stands for.
    pub fn environment_of_tag(&self, tag: &str) -> Option<Environment> {
        match tag {
            "prod" => Some(Environment::Production),
            "test" => Some(Environment::Test),
            _ => {
                if let Some(name) = self.by_tag.get(tag) {
                    return name.parse().ok();
                }
                if self.is_known_tag(tag) {
                    tag.parse().ok()
                } else {
                    None
                }
            }
        }
    }
}

/// Tags that are not available to custom environments: `prod` and `test` (the built-in
/// environments' tags) and `production` (the built-in environment's name).
fn is_reserved_tag(tag: &str) -> bool {
    matches!(tag, "prod" | "test" | "production")
}

impl TryFrom<BTreeMap<String, String>> for Environments {
    type Error = ModelError;
    fn try_from(map: BTreeMap<String, String>) -> Result<Self, ModelError> {
        let mut envs = Self::default();
        for (name, tag) in &map {
            envs.insert(name, tag)?;
        }
        Ok(envs)
    }
}

impl From<Environments> for BTreeMap<String, String> {
    fn from(envs: Environments) -> Self {
        envs.by_name
    }
}

/// A deployment's key format: optional namespace and environment tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFormat {
    namespace: Option<String>,
    environments: Environments,
}

impl KeyFormat {
    /// A format with the given namespace (`[a-z0-9]{1,16}`) and environment tags.
    pub fn new(namespace: Option<&str>, environments: Environments) -> Result<Self, ModelError> {
        if let Some(ns) = namespace
            && !valid_tag(ns)
        {
            return Err(ModelError::InvalidNamespace);
        }
        Ok(Self {
            namespace: namespace.map(str::to_owned),
            environments,
        })
    }

    /// The namespace, if any.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The environment tags.
    pub fn environments(&self) -> &Environments {
        &self.environments
    }

    /// Parses a presented key for this deployment: structure, checksum, type, known environment
    /// tag and namespace. Touches no storage and never panics; cost is linear in the input,
    /// capped at [`MAX_KEY_LEN`].
    #[inline]
    pub fn parse<'a>(&self, key: &'a str) -> Result<ParsedKey<'a>, FormatError> {
        let parsed = parse_any(key)?;
        if parsed.namespace() != self.namespace.as_deref() {
            return Err(FormatError::WrongNamespace);
        }
        if !self.environments.is_known_tag(parsed.env_tag()) {
            return Err(FormatError::UnknownEnvironment);
        }
        Ok(parsed)
    }

    /// Renders the key prefix `[ns_]tt_env_` for `key_type` in `env`.
    pub fn prefix(&self, key_type: KeyType, env: &Environment) -> Result<String, ModelError> {
        let tag = self.environments.tag_of(env)?;
        let mut s = String::with_capacity(MAX_KEY_LEN);
        if let Some(ns) = &self.namespace {
            s.push_str(ns);
            s.push('_');
        }
        s.push_str(key_type.prefix());
        s.push('_');
        s.push_str(tag);
        s.push('_');
        Ok(s)
    }
}

/// CRC-32 (IEEE) of `data` as six base62 digits: the key checksum.
#[inline]
pub fn checksum(data: &[u8]) -> [u8; CHECKSUM_LEN] {
    base62::encode_u32_6(crc32fast::hash(data))
}

/// A syntactically valid key with a correct checksum. Borrowed from the presented string.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    raw: &'a str,
    /// Byte offset where the type prefix starts (0 without a namespace).
    type_start: usize,
    key_type: KeyType,
    env_start: usize,
    lookup: LookupTag,
}

impl<'a> ParsedKey<'a> {
    /// The namespace, if the key has one.
    pub fn namespace(&self) -> Option<&'a str> {
        (self.type_start > 0).then(|| &self.raw[..self.type_start - 1])
    }

    /// The key type.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The environment tag (e.g. `prod`).
    pub fn env_tag(&self) -> &'a str {
        &self.raw[self.env_start..self.raw.len() - BODY_LEN - 1]
    }

    /// The public lookup tag.
    pub fn lookup(&self) -> LookupTag {
        self.lookup
    }

    /// The bytes the stored digest is computed over: `type_env_lookup secret`, i.e. everything
    /// after the namespace and before the checksum. Secret material: hash it, never log it.
    #[inline]
    pub fn digest_input(&self) -> &'a [u8] {
        &self.raw.as_bytes()[self.type_start..self.raw.len() - CHECKSUM_LEN]
    }

    /// The non-secret display form, e.g. `sk_prod_7Ay5…`.
    pub fn redacted(&self) -> String {
        let lookup_start = self.raw.len() - BODY_LEN;
        format!(
            "{}{}…",
            &self.raw[..lookup_start],
            &self.lookup.as_str()[..4]
        )
    }
}

impl fmt::Debug for ParsedKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedKey")
            .field("key", &self.redacted())
            .finish()
    }
}

/// Parses any keyward key, whatever its namespace or environment tag: what a secret scanner
/// uses to confirm a [`SCANNER_REGEX`] match offline.
///
/// ```
/// # use keyward_core::{parse_any, FormatError};
/// assert_eq!(parse_any("sk_prod_oops").unwrap_err(), FormatError::BadBodyLength);
/// ```
pub fn parse_any(key: &str) -> Result<ParsedKey<'_>, FormatError> {
    let b = key.as_bytes();
    if b.is_empty() {
        return Err(FormatError::Empty);
    }
    if b.len() > MAX_KEY_LEN {
        return Err(FormatError::TooLong);
    }
    if !b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_') {
        return Err(FormatError::InvalidCharacter);
    }
    // Body: after the last '_'.
    let last = b
        .iter()
        .rposition(|&c| c == b'_')
        .ok_or(FormatError::BadStructure)?;
    if b.len() - last - 1 != BODY_LEN {
        return Err(FormatError::BadBodyLength);
    }
    let head = &key[..last];
    // head is `[ns_]tt_env`: two or three non-empty segments.
    let env_sep = head.rfind('_').ok_or(FormatError::BadStructure)?;
    let env = &head[env_sep + 1..];
    let rest = &head[..env_sep];
    let (ns, tt, type_start) = match rest.rfind('_') {
        Some(i) => (Some(&rest[..i]), &rest[i + 1..], i + 1),
        None => (None, rest, 0),
    };
    if let Some(ns) = ns
        && !valid_tag(ns)
    {
        return Err(if ns.contains('_') || ns.is_empty() {
            FormatError::BadStructure
        } else {
            FormatError::WrongNamespace
        });
    }
    if !valid_tag(env) {
        return Err(if env.is_empty() {
            FormatError::BadStructure
        } else {
            FormatError::UnknownEnvironment
        });
    }
    let key_type = KeyType::from_prefix(tt).ok_or(if tt.is_empty() {
        FormatError::BadStructure
    } else {
        FormatError::UnknownType
    })?;
    let sum_at = b.len() - CHECKSUM_LEN;
    let expected = base62::decode_u32_6(&b[sum_at..]).ok_or(FormatError::BadChecksum)?;
    if crc32fast::hash(&b[..sum_at]) != expected {
        return Err(FormatError::BadChecksum);
    }
    let lookup =
        LookupTag::new(&b[last + 1..last + 1 + LOOKUP_LEN]).ok_or(FormatError::BadStructure)?;
    Ok(ParsedKey {
        raw: key,
        type_start,
        key_type,
        env_start: env_sep + 1,
        lookup,
    })
}
