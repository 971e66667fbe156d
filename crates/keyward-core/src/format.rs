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
    // Body: after the last '_'. In a well-formed key that `_` is BODY_LEN + 1 bytes from the end,
    // the body is all base62 and the head only key characters: then every character is valid
    // and that `_` is the last one. Anything else is an error, which the general checks name
    // (an invalid character anywhere first).
    let last = match b.len().checked_sub(BODY_LEN + 1) {
        Some(i) if b[i] == b'_' && all_base62(&b[i + 1..]) && all_key_chars(&b[..i]) => i,
        _ => {
            return Err(if all_key_chars(b) {
                body_error(b)
            } else {
                FormatError::InvalidCharacter
            });
        }
    };
    let head = &key[..last];
    // head is `[ns_]tt_env`: two or three non-empty segments.
    let env_sep = rfind_underscore(head.as_bytes()).ok_or(FormatError::BadStructure)?;
    let env = &head[env_sep + 1..];
    let rest = &head[..env_sep];
    let (ns, tt, type_start) = match rfind_underscore(rest.as_bytes()) {
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
    // Six base62 digits of a value ≤ u32::MAX are the canonical encoding of that value, so
    // comparing the encoded CRC with the digits is the same test as decoding them and comparing
    // values (an invalid or out-of-range digit string never equals an encoding).
    let sum_at = b.len() - CHECKSUM_LEN;
    if checksum(&b[..sum_at]) != b[sum_at..] {
        return Err(FormatError::BadChecksum);
    }
    // The body was checked to be base62 above.
    let mut tag = [0u8; LOOKUP_LEN];
    tag.copy_from_slice(&b[last + 1..last + 1 + LOOKUP_LEN]);
    Ok(ParsedKey {
        raw: key,
        type_start,
        key_type,
        env_start: env_sep + 1,
        lookup: LookupTag(tag),
    })
}

/// Whether `c` is `[0-9A-Za-z]`. Branch-free (`c | 0x20` maps `A-Z` onto `a-z` and nothing else
/// onto it), so that the loops below vectorise.
#[inline(always)]
fn is_base62(c: u8) -> bool {
    (c.wrapping_sub(b'0') < 10) | ((c | 0x20).wrapping_sub(b'a') < 26)
}

/// Whether `c` is base62 or `_`.
#[inline(always)]
fn is_key_char(c: u8) -> bool {
    is_base62(c) | (c == b'_')
}

// Eight bytes at a time (SWAR). For bytes below 0x80, adding `0x80 - lo` to every byte sets
// its high bit iff the byte is ≥ `lo`, and adding `0x7f - hi` sets it iff the byte is > `hi`;
// neither sum reaches 0x100, so no carry crosses into the next byte.
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HIGH: u64 = 0x8080_8080_8080_8080;

#[inline(always)]
const fn splat(b: u8) -> u64 {
    b as u64 * 0x0101_0101_0101_0101
}

/// High bit of each byte set iff that byte of `x7` (all bytes < 0x80) is in `lo..=hi`.
#[inline(always)]
fn in_range(x7: u64, lo: u8, hi: u8) -> u64 {
    x7.wrapping_add(splat(0x80 - lo)) & !x7.wrapping_add(splat(0x7f - hi)) & HIGH
}

/// High bit of each byte set iff that byte of `x` is base62.
#[inline(always)]
fn base62_mask(x: u64) -> u64 {
    let x7 = x & LOW7;
    (in_range(x7, b'0', b'9') | in_range(x7 | splat(0x20), b'a', b'z')) & !x
}

/// High bit of each byte set iff that byte of `x` is base62 or `_`.
#[inline(always)]
fn key_char_mask(x: u64) -> u64 {
    base62_mask(x) | (in_range(x & LOW7, b'_', b'_') & !x)
}

/// Whether every byte passes: eight at a time through `mask`, the last word overlapping the
/// one before it (the test is idempotent); no early exit. Slices under 8 bytes go through
/// `scalar`.
#[inline(always)]
fn all_bytes(b: &[u8], mask: impl Fn(u64) -> u64, scalar: impl Fn(u8) -> bool) -> bool {
    if b.len() < 8 {
        return b.iter().all(|&c| scalar(c));
    }
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(w)
    };
    let mut acc = HIGH;
    let mut i = 0;
    while i + 8 <= b.len() {
        acc &= mask(word(i));
        i += 8;
    }
    if i < b.len() {
        acc &= mask(word(b.len() - 8));
    }
    acc == HIGH
}

/// Whether every byte is base62 or `_`.
#[inline]
fn all_key_chars(b: &[u8]) -> bool {
    all_bytes(b, key_char_mask, is_key_char)
}

/// Whether every byte is base62.
#[inline]
fn all_base62(b: &[u8]) -> bool {
    all_bytes(b, base62_mask, is_base62)
}

/// Position of the last `_` in a short slice.
#[inline]
fn rfind_underscore(b: &[u8]) -> Option<usize> {
    b.iter().rposition(|&c| c == b'_')
}

/// The error for a key (of valid characters) whose last `_` is not followed by exactly
/// [`BODY_LEN`] base62 characters.
#[cold]
fn body_error(b: &[u8]) -> FormatError {
    match rfind_underscore(b) {
        None => FormatError::BadStructure,
        // The body after the last `_` has no `_` and only valid characters: it is base62, so
        // it can only be of the wrong length.
        Some(_) => FormatError::BadBodyLength,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parser as first written (straightforward, slower): the new one must agree with it
    /// on every input.
    fn reference(key: &str) -> Result<ParsedKey<'_>, FormatError> {
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
        let last = b
            .iter()
            .rposition(|&c| c == b'_')
            .ok_or(FormatError::BadStructure)?;
        if b.len() - last - 1 != BODY_LEN {
            return Err(FormatError::BadBodyLength);
        }
        let head = &key[..last];
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

    #[test]
    fn byte_classes_match_std() {
        for c in 0..=255u8 {
            assert_eq!(is_base62(c), c.is_ascii_alphanumeric(), "{c}");
            assert_eq!(
                is_key_char(c),
                c.is_ascii_alphanumeric() || c == b'_',
                "{c}"
            );
            // Every byte value at every position of a word, between valid and invalid
            // neighbours.
            for fill in [b'a', b'Z', b'_', 0xff, 0x00, b'-'] {
                for pos in 0..8 {
                    let mut w = [fill; 8];
                    w[pos] = c;
                    let x = u64::from_le_bytes(w);
                    let lane = 0x80u64 << (pos * 8);
                    assert_eq!(base62_mask(x) & lane != 0, is_base62(c), "{c} {fill} {pos}");
                    assert_eq!(
                        key_char_mask(x) & lane != 0,
                        is_key_char(c),
                        "{c} {fill} {pos}"
                    );
                }
            }
        }
    }

    /// Every single-byte substitution, deletion and insertion of valid keys (with and without
    /// namespace, with the checksum repaired or not), through both parsers.
    #[test]
    fn agrees_with_reference_parser() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-\xff ";
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for prefix in [
            "sk_prod_",
            "acme_rk_test_",
            "pk_stg_",
            "a_b_c_d_",
            "_sk_prod_",
            "sk__",
        ] {
            let mut body: Vec<u8> = prefix.as_bytes().to_vec();
            for _ in 0..LOOKUP_LEN + SECRET_LEN {
                body.push(base62::ALPHABET[(next() % 62) as usize]);
            }
            let sum = checksum(&body);
            let mut key = body.clone();
            key.extend_from_slice(&sum);
            inputs.push(key.clone());
            for at in 0..key.len() {
                for _ in 0..3 {
                    let c = alphabet[(next() % alphabet.len() as u64) as usize];
                    let mut k = key.clone();
                    k[at] = c;
                    inputs.push(k.clone());
                    // Repair the checksum so the later checks are reached too.
                    if k.len() > CHECKSUM_LEN {
                        let at = k.len() - CHECKSUM_LEN;
                        let sum = checksum(&k[..at]);
                        k[at..].copy_from_slice(&sum);
                        inputs.push(k);
                    }
                    let mut k = key.clone();
                    k.insert(at, c);
                    inputs.push(k);
                }
                let mut k = key.clone();
                k.remove(at);
                inputs.push(k);
            }
        }
        inputs.push(Vec::new());
        inputs.push(vec![b'_'; 56]);
        inputs.push(vec![b'a'; 56]);
        inputs.push(vec![b'a'; MAX_KEY_LEN + 1]);
        // Checksums whose digits decode past u32::MAX or contain invalid digits.
        let mut k = inputs[0].clone();
        let at = k.len() - CHECKSUM_LEN;
        k[at..].copy_from_slice(b"zzzzzz");
        inputs.push(k);
        let mut checked = 0;
        for input in &inputs {
            let Ok(s) = std::str::from_utf8(input) else {
                continue;
            };
            assert_eq!(parse_any(s), reference(s), "{s:?}");
            checked += 1;
        }
        assert!(checked > 3_000, "{checked}");
    }
}
