//! Permissions: `resource:action`, `resource:*` and `*`.
//!
//! Grammar (ABNF):
//! ```text
//! permission = "*" / resource ":" ( action / "*" )
//! resource   = segment
//! action     = segment
//! segment    = %x61-7A *( %x61-7A / DIGIT / "-" / "_" / "." )   ; starts with a-z
//! ```
//! At most 128 bytes in all.

use core::fmt;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, PermissionError};
use crate::ids::KeyType;

/// One permission, e.g. `payment-method:write`, `payment-method:*` or `*`.
///
/// ```
/// use keyward_core::Permission;
/// let grant: Permission = "payment-method:*".parse().unwrap();
/// assert!(grant.covers(&"payment-method:write".parse().unwrap()));
/// assert!(!grant.covers(&"business:read".parse().unwrap()));
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Permission {
    /// The canonical text.
    text: Box<str>,
    /// Length of the resource part (0 for `*`).
    colon: u8,
}

fn valid_segment(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_lowercase()
        && b.iter().all(|&c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_' | b'.')
        })
}

impl Permission {
    /// The all-permissions wildcard `*`.
    pub fn all() -> Self {
        Self {
            text: "*".into(),
            colon: 0,
        }
    }

    /// Parses the grammar above.
    pub fn parse(s: &str) -> Result<Self, PermissionError> {
        if s.is_empty() {
            return Err(PermissionError::Empty);
        }
        if s.len() > 128 {
            return Err(PermissionError::TooLong);
        }
        if s == "*" {
            return Ok(Self::all());
        }
        let (resource, action) = s.split_once(':').ok_or(PermissionError::MissingColon)?;
        if !valid_segment(resource) {
            return Err(PermissionError::InvalidResource);
        }
        if action != "*" && !valid_segment(action) {
            return Err(PermissionError::InvalidAction);
        }
        let colon = u8::try_from(resource.len()).map_err(|_| PermissionError::TooLong)?;
        Ok(Self {
            text: s.into(),
            colon,
        })
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this is `*`.
    pub fn is_all(&self) -> bool {
        self.colon == 0
    }

    /// The resource part (`None` for `*`).
    pub fn resource(&self) -> Option<&str> {
        (!self.is_all()).then(|| &self.text[..usize::from(self.colon)])
    }

    /// The action part (`None` for `*`; `Some("*")` for `resource:*`).
    pub fn action(&self) -> Option<&str> {
        (!self.is_all()).then(|| &self.text[usize::from(self.colon) + 1..])
    }

    /// Whether holding `self` grants `required`: `*` grants everything; `r:*` grants `r:*` and
    /// every `r:a`; `r:a` grants only itself.
    #[inline]
    pub fn covers(&self, required: &Permission) -> bool {
        if self.is_all() {
            return true;
        }
        if self.text == required.text {
            return true;
        }
        let c = usize::from(self.colon);
        // `r:*` covers `r:<anything>`.
        self.text.as_bytes()[c + 1..] == *b"*"
            && !required.is_all()
            && required.colon == self.colon
            && required.text.as_bytes()[..c] == self.text.as_bytes()[..c]
    }
}

impl core::str::FromStr for Permission {
    type Err = PermissionError;
    fn from_str(s: &str) -> Result<Self, PermissionError> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Permission {
    type Error = PermissionError;
    fn try_from(s: String) -> Result<Self, PermissionError> {
        Self::parse(&s)
    }
}

impl From<Permission> for String {
    fn from(p: Permission) -> String {
        p.text.into()
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text, f)
    }
}

/// A sorted, de-duplicated set of permissions.
///
/// ```
/// use keyward_core::PermissionSet;
/// let set = PermissionSet::parse(["business:read", "payment-method:*"]).unwrap();
/// assert!(set.allows(&"payment-method:write".parse().unwrap()));
/// assert!(!set.allows(&"business:write".parse().unwrap()));
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "Vec<Permission>", into = "Vec<Permission>")]
pub struct PermissionSet(Vec<Permission>);

impl PermissionSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses every string; the first error wins.
    pub fn parse<I, S>(items: I) -> Result<Self, PermissionError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        items
            .into_iter()
            .map(|s| Permission::parse(s.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map(Self::from)
    }

    /// Whether any permission in the set covers `required`.
    #[inline]
    pub fn allows(&self, required: &Permission) -> bool {
        self.0.iter().any(|p| p.covers(required))
    }

    /// Whether every permission of `other` is allowed by this set (wildcards included: `*`
    /// covers everything, `r:*` covers `r:*` and every `r:a`, but `r:*` does not cover `*`).
    /// The subset rule of the management plane: a key may only make or change keys whose
    /// permissions its own cover.
    ///
    /// ```
    /// use keyward_core::PermissionSet;
    /// let mine = PermissionSet::parse(["api-key:*", "business:read"]).unwrap();
    /// assert!(mine.covers(&PermissionSet::parse(["api-key:write"]).unwrap()));
    /// assert!(!mine.covers(&PermissionSet::parse(["*"]).unwrap()));
    /// assert!(!mine.covers(&PermissionSet::parse(["business:*"]).unwrap()));
    /// ```
    pub fn covers(&self, other: &PermissionSet) -> bool {
        other.iter().all(|p| self.allows(p))
    }

    /// The permissions of `other` this set does not allow, in order (empty when
    /// [`PermissionSet::covers`] holds).
    pub fn missing(&self, other: &PermissionSet) -> PermissionSet {
        Self(other.iter().filter(|p| !self.allows(p)).cloned().collect())
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of permissions.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The permissions, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &Permission> {
        self.0.iter()
    }
}

impl From<Vec<Permission>> for PermissionSet {
    fn from(mut v: Vec<Permission>) -> Self {
        v.sort();
        v.dedup();
        Self(v)
    }
}

impl From<PermissionSet> for Vec<Permission> {
    fn from(s: PermissionSet) -> Self {
        s.0
    }
}

impl fmt::Debug for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.0).finish()
    }
}

/// A deployment's limit on which permissions each key type may hold. By default nothing is
/// limited (real systems do issue publishable keys with write scopes).
///
/// ```
/// use keyward_core::{KeyType, PermissionPolicy, PermissionSet};
/// let mut policy = PermissionPolicy::default();
/// policy.limit(KeyType::Publishable, PermissionSet::parse(["business:read"]).unwrap());
/// let ok = PermissionSet::parse(["business:read"]).unwrap();
/// let bad = PermissionSet::parse(["business:write"]).unwrap();
/// assert!(policy.check(KeyType::Publishable, &ok).is_ok());
/// assert!(policy.check(KeyType::Publishable, &bad).is_err());
/// assert!(policy.check(KeyType::Secret, &bad).is_ok());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionPolicy {
    limits: BTreeMap<KeyType, PermissionSet>,
}

impl PermissionPolicy {
    /// Keys of `key_type` may hold only permissions covered by `allowed`.
    pub fn limit(&mut self, key_type: KeyType, allowed: PermissionSet) {
        self.limits.insert(key_type, allowed);
    }

    /// Checks that every permission in `set` is allowed for `key_type`.
    pub fn check(&self, key_type: KeyType, set: &PermissionSet) -> Result<(), ModelError> {
        let Some(allowed) = self.limits.get(&key_type) else {
            return Ok(());
        };
        match set.iter().find(|p| !allowed.allows(p)) {
            Some(p) => Err(ModelError::PermissionNotAllowed {
                permission: p.to_string(),
            }),
            None => Ok(()),
        }
    }
}
