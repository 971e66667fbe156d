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
use crate::ids::{Environment, KeyType, LOOKUP_LEN, LookupTag, valid_tag};
use crate::scan;

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
        // `parsed.namespace() == self.namespace()`, on the offsets: the namespace is everything
        // before `type_start - 1`.
        let same_namespace = match &self.namespace {
            None => parsed.type_start == 0,
            Some(ns) => parsed.type_start == ns.len() + 1 && key.starts_with(ns.as_str()),
        };
        if !same_namespace {
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
    // The accessors are on every verification (`KeyFormat::parse` and the engine): inline, and
    // `get` rather than indexing, so that no panic path is left (the offsets are the parser's,
    // always in range and on ASCII).

    /// The namespace, if the key has one.
    #[inline]
    pub fn namespace(&self) -> Option<&'a str> {
        let end = self.type_start.checked_sub(1)?;
        self.raw.get(..end)
    }

    /// The key type.
    #[inline]
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The environment tag (e.g. `prod`).
    #[inline]
    pub fn env_tag(&self) -> &'a str {
        let end = self.raw.len().saturating_sub(BODY_LEN + 1);
        self.raw.get(self.env_start..end).unwrap_or_default()
    }

    /// The public lookup tag.
    #[inline]
    pub fn lookup(&self) -> LookupTag {
        self.lookup
    }

    /// The bytes the stored digest is computed over: `type_env_lookup secret`, i.e. everything
    /// after the namespace and before the checksum. Secret material: hash it, never log it.
    #[inline]
    pub fn digest_input(&self) -> &'a [u8] {
        let end = self.raw.len().saturating_sub(CHECKSUM_LEN);
        self.raw
            .as_bytes()
            .get(self.type_start..end)
            .unwrap_or_default()
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
    // One pass for the common case: a key whose structure is right, so that only the checksum
    // is left to decide. Everything else (including every kind of malformed input) goes to
    // `parse_slow`, which names the error exactly as the format's rules order them.
    match well_formed(key.as_bytes()) {
        Some(head) => check_sum(key, head),
        None => parse_slow(key),
    }
}

/// The shortest well-formed key: `tt_e_` and the body.
const MIN_KEY_LEN: usize = 5 + BODY_LEN;

/// Where the parts of a structurally valid key start.
#[derive(Clone, Copy)]
struct Head {
    type_start: usize,
    key_type: KeyType,
    env_start: usize,
}

/// The key type of a two-letter prefix.
#[inline(always)]
fn type_of(a: u8, b: u8) -> Option<KeyType> {
    if b != b'k' {
        return None;
    }
    match a {
        b'p' => Some(KeyType::Publishable),
        b's' => Some(KeyType::Secret),
        b'r' => Some(KeyType::Restricted),
        _ => None,
    }
}

/// `Some` iff `b` is `[ns_]tt_env_` followed by a base62 body of the right length: a key on
/// which the reference rules reach the checksum, with the same parts. `None` says nothing
/// about which error it is.
#[inline(always)]
fn well_formed(b: &[u8]) -> Option<Head> {
    if !(MIN_KEY_LEN..=MAX_KEY_LEN).contains(&b.len()) {
        return None;
    }
    let (front, body) = b.split_last_chunk::<BODY_LEN>()?;
    let (&sep, head) = front.split_last()?;
    if sep != b'_' || !scan::body_is_base62(body) {
        return None;
    }
    // The head is `[ns_]tt_env`. The tag windows below are 16 bytes from where a tag starts;
    // the bytes past the tag (the separator, the body) are ignored, and the key is long enough
    // (≥ MIN_KEY_LEN) that every window is inside it. `h ≥ 4` (the length check above).
    let h = head.len();
    // No namespace: `tt_` then an env tag that runs up to the separator. (If that "env" has a
    // `_` in it, the first two bytes were a namespace; see below.)
    let w = b.first_chunk::<MIN_KEY_LEN>()?;
    if w[2] == b'_'
        && let Some(key_type) = type_of(w[0], w[1])
        && let Some(env) = w[3..].first_chunk::<16>()
        && scan::is_tag_prefix(env, h - 3)
    {
        return Some(Head {
            type_start: 0,
            key_type,
            env_start: 3,
        });
    }
    with_namespace(b, h)
}

/// `well_formed` for a key whose head is not `tt_env`: `ns_tt_env`, a tag (1..=16 bytes) up to
/// the first byte that is not a tag character, which must be `_`; then `tt_` and the env tag.
/// `b` is at least MIN_KEY_LEN long, `h` is the length of its head.
#[inline(never)]
fn with_namespace(b: &[u8], h: usize) -> Option<Head> {
    let w = b.first_chunk::<MIN_KEY_LEN>()?;
    let ns_len = scan::tag_prefix_len(w.first_chunk::<16>()?);
    let type_start = ns_len + 1;
    let env_start = type_start + 3;
    let key_type = type_of(w[type_start], w[type_start + 1])?;
    let env = w.get(env_start..)?.first_chunk::<16>()?;
    (ns_len > 0
        && w[ns_len] == b'_'
        && w[type_start + 2] == b'_'
        && scan::is_tag_prefix(env, h.checked_sub(env_start)?))
    .then_some(Head {
        type_start,
        key_type,
        env_start,
    })
}

/// CRC-32 (IEEE) of `data`: `crc32fast::hash` without its per-call CPU feature detection
/// (about 40 instructions, a quarter of the CRC of a key): the hasher it builds is made once
/// and copied.
#[inline(always)]
fn crc32(data: &[u8]) -> u32 {
    static HASHER: std::sync::OnceLock<crc32fast::Hasher> = std::sync::OnceLock::new();
    let mut hasher = HASHER.get_or_init(crc32fast::Hasher::new).clone();
    hasher.update(data);
    hasher.finalize()
}

/// The last step for a key whose structure is valid (its body base62): the checksum, then the
/// parsed key.
#[inline(always)]
fn check_sum(key: &str, head: Head) -> Result<ParsedKey<'_>, FormatError> {
    let b = key.as_bytes();
    let (covered, _) = b
        .split_last_chunk::<CHECKSUM_LEN>()
        .ok_or(FormatError::BadBodyLength)?;
    let (_, body) = b
        .split_last_chunk::<BODY_LEN>()
        .ok_or(FormatError::BadBodyLength)?;
    let (lookup, _) = body
        .split_first_chunk::<LOOKUP_LEN>()
        .ok_or(FormatError::BadBodyLength)?;
    let (_, last8) = body
        .split_last_chunk::<8>()
        .ok_or(FormatError::BadBodyLength)?;
    // Decoding the six digits (all base62 here) and comparing values is the reference's test:
    // a digit string whose value exceeds u32::MAX equals no CRC.
    if u64::from(crc32(covered)) != base62::decode_last6(last8) {
        return Err(FormatError::BadChecksum);
    }
    Ok(ParsedKey {
        raw: key,
        type_start: head.type_start,
        key_type: head.key_type,
        env_start: head.env_start,
        lookup: LookupTag::from_checked(*lookup),
    })
}

/// Whether `s` is a namespace or environment tag, `[a-z0-9]{1,16}`.
#[inline]
fn is_tag(s: &[u8]) -> bool {
    (1..=16).contains(&s.len()) && s.iter().all(|&c| scan::is_tag_char(c))
}

/// Position of the last `_` in a short slice.
#[inline]
fn rfind_underscore(b: &[u8]) -> Option<usize> {
    b.iter().rposition(|&c| c == b'_')
}

/// Every input `well_formed` did not accept, by the format's rules in their order: empty, too
/// long, an invalid character anywhere, no `_`, a body (after the last `_`) of the wrong
/// length, then (`parse_head`) the head's parts, then the checksum.
#[inline(always)]
fn parse_slow(key: &str) -> Result<ParsedKey<'_>, FormatError> {
    let b = key.as_bytes();
    if b.is_empty() {
        return Err(FormatError::Empty);
    }
    if b.len() > MAX_KEY_LEN {
        return Err(FormatError::TooLong);
    }
    let (all_key_chars, any_underscore) = scan::scan_key(b);
    if !all_key_chars {
        return Err(FormatError::InvalidCharacter);
    }
    if !any_underscore {
        return Err(FormatError::BadStructure);
    }
    // The last `_` is BODY_LEN + 1 bytes from the end iff that byte is `_` and none of the
    // BODY_LEN after it is (they are key characters: so, all base62).
    let (front, body) = b
        .split_last_chunk::<BODY_LEN>()
        .ok_or(FormatError::BadBodyLength)?;
    let (&sep, _) = front.split_last().ok_or(FormatError::BadBodyLength)?;
    if sep != b'_' || !scan::body_is_base62(body) {
        return Err(FormatError::BadBodyLength);
    }
    parse_head(key)
}

/// The rest of `parse_slow`, for a key of valid characters whose body is in place.
#[inline(never)]
fn parse_head(key: &str) -> Result<ParsedKey<'_>, FormatError> {
    let b = key.as_bytes();
    let head = b
        .len()
        .checked_sub(BODY_LEN + 1)
        .and_then(|h| b.get(..h))
        .ok_or(FormatError::BadBodyLength)?;
    // head is `[ns_]tt_env`: two or three non-empty segments.
    let env_sep = rfind_underscore(head).ok_or(FormatError::BadStructure)?;
    let (rest, env) = (&head[..env_sep], &head[env_sep + 1..]);
    let (ns, tt, type_start) = match rfind_underscore(rest) {
        Some(i) => (Some(&rest[..i]), &rest[i + 1..], i + 1),
        None => (None, rest, 0),
    };
    if let Some(ns) = ns
        && !is_tag(ns)
    {
        return Err(if ns.contains(&b'_') || ns.is_empty() {
            FormatError::BadStructure
        } else {
            FormatError::WrongNamespace
        });
    }
    if !is_tag(env) {
        return Err(if env.is_empty() {
            FormatError::BadStructure
        } else {
            FormatError::UnknownEnvironment
        });
    }
    let key_type = match *tt {
        [a, b] => type_of(a, b),
        _ => None,
    }
    .ok_or(if tt.is_empty() {
        FormatError::BadStructure
    } else {
        FormatError::UnknownType
    })?;
    check_sum(
        key,
        Head {
            type_start,
            key_type,
            env_start: env_sep + 1,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
    /// Near-valid keys: the parts of a key, each either valid or drawn from a wider set (empty,
    /// too long, upper case, `_`), a body of about the right length, a checksum that is right,
    /// random or out of range, then a few random edits, with the checksum repaired or not.
    fn near_valid_key() -> impl Strategy<Value = String> {
        let ns = prop_oneof![
            2 => Just(None),
            2 => "[a-z0-9]{1,16}".prop_map(Some),
            1 => "[a-zA-Z0-9_]{0,18}".prop_map(Some),
        ];
        let tt = prop_oneof![
            3 => prop_oneof![Just("pk"), Just("sk"), Just("rk")].prop_map(str::to_owned),
            1 => "[a-z_K]{0,3}",
        ];
        let env = prop_oneof![
            2 => prop_oneof![Just("prod"), Just("test")].prop_map(str::to_owned),
            2 => "[a-z0-9]{1,16}",
            1 => "[a-zA-Z0-9_]{0,18}",
        ];
        let body = prop_oneof![
            4 => "[0-9A-Za-z]{49}",
            1 => "[0-9A-Za-z]{46,52}",
        ];
        let sum = prop_oneof![
            4 => Just(None),
            1 => "[0-9A-Za-z]{6}".prop_map(Some),
            1 => "[u-z]{6}".prop_map(Some),
        ];
        let edit = (
            0..3u8,
            any::<prop::sample::Index>(),
            prop_oneof![
                3 => "[0-9A-Za-z_]",
                1 => "[-é ]",
            ],
        );
        (
            ns,
            tt,
            env,
            body,
            sum,
            prop::collection::vec(edit, 0..3),
            any::<bool>(),
        )
            .prop_map(|(ns, tt, env, body, sum, edits, repair)| {
                let mut k = String::new();
                if let Some(ns) = ns {
                    k.push_str(&ns);
                    k.push('_');
                }
                k.push_str(&format!("{tt}_{env}_{body}"));
                let own = checksum(k.as_bytes());
                k.push_str(&sum.unwrap_or_else(|| String::from_utf8_lossy(&own).into_owned()));
                let mut chars: Vec<char> = k.chars().collect();
                for (kind, at, c) in edits {
                    let c = c.chars().next().unwrap_or('-');
                    match kind {
                        0 if !chars.is_empty() => {
                            let at = at.index(chars.len());
                            chars[at] = c;
                        }
                        1 => chars.insert(at.index(chars.len() + 1), c),
                        _ if !chars.is_empty() => {
                            chars.remove(at.index(chars.len()));
                        }
                        _ => {}
                    }
                }
                let mut k: String = chars.into_iter().collect();
                if repair && k.len() > CHECKSUM_LEN && k.is_char_boundary(k.len() - CHECKSUM_LEN) {
                    let at = k.len() - CHECKSUM_LEN;
                    let sum = checksum(&k.as_bytes()[..at]);
                    k.truncate(at);
                    k.push_str(&String::from_utf8_lossy(&sum));
                }
                k
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Arbitrary strings: any bytes (made UTF-8) and any Unicode.
        #[test]
        fn agrees_with_reference_on_arbitrary_strings(
            bytes in prop::collection::vec(any::<u8>(), 0..=140),
            text in any::<String>(),
            keyish in "[a-zA-Z0-9_]{0,130}",
        ) {
            let lossy = String::from_utf8_lossy(&bytes);
            for s in [&*lossy, &text, &keyish] {
                prop_assert_eq!(parse_any(s), reference(s), "{:?}", s);
            }
        }

        /// Near-valid keys, most of which reach the head and checksum checks.
        #[test]
        fn agrees_with_reference_on_near_valid_keys(key in near_valid_key()) {
            prop_assert_eq!(parse_any(&key), reference(&key), "{:?}", key);
        }
    }

    /// The near-valid strategy reaches every outcome, so the property above tests them all.
    #[test]
    fn near_valid_keys_reach_every_outcome() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let mut runner = TestRunner::deterministic();
        let strategy = near_valid_key();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..5_000 {
            let Ok(tree) = strategy.new_tree(&mut runner) else {
                continue;
            };
            let key = tree.current();
            seen.insert(format!("{:?}", parse_any(&key).map(|_| ())));
        }
        for outcome in [
            "Ok(())",
            "Err(InvalidCharacter)",
            "Err(BadStructure)",
            "Err(BadBodyLength)",
            "Err(UnknownType)",
            "Err(UnknownEnvironment)",
            "Err(WrongNamespace)",
            "Err(BadChecksum)",
        ] {
            assert!(seen.contains(outcome), "{outcome} never reached: {seen:?}");
        }
    }
}
