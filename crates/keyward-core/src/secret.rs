//! Secret-bearing types: the plaintext key, the pepper and the stored digest.

use core::fmt;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::format::{BODY_LEN, parse_any};

/// A plaintext API key, shown to its holder exactly once.
///
/// It is zeroized on drop, is not `Clone`, and its `Debug`/`Display` show only the non-secret
/// prefix and the first characters of the lookup tag (`sk_prod_7Ay5…`). Read it with
/// [`PlaintextKey::expose_secret`].
pub struct PlaintextKey(Zeroizing<String>);

impl PlaintextKey {
    pub(crate) fn new(s: String) -> Self {
        Self(Zeroizing::new(s))
    }

    /// The full key. Call this only to hand the key to its holder; never log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The redacted form, safe for logs: `sk_prod_7Ay5…`.
    pub fn redacted(&self) -> String {
        match parse_any(&self.0) {
            Ok(p) => p.redacted(),
            Err(_) => {
                let keep = self.0.len().saturating_sub(BODY_LEN - 4);
                format!("{}…", self.0.get(..keep).unwrap_or(""))
            }
        }
    }
}

impl fmt::Debug for PlaintextKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlaintextKey({})", self.redacted())
    }
}

impl fmt::Display for PlaintextKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// The per-deployment key for digests: 32 bytes, zeroized on drop, never printed.
///
/// A copy of the database without the pepper cannot be used to test guesses.
pub struct Pepper(Zeroizing<[u8; 32]>);

/// Context string of the documented default pepper derivation.
const DEFAULT_PEPPER_CONTEXT: &str = "keyward 2026-11 default pepper v1";

/// Context string of [`Pepper::fingerprint`].
const FINGERPRINT_CONTEXT: &str = "keyward 2026-11 pepper fingerprint v1";

/// Context string of [`Pepper::audit_key`].
const AUDIT_CONTEXT: &str = "keyward audit chain v1";

impl Pepper {
    /// A pepper from 32 secret bytes (for example from a secrets manager).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The public development pepper:
    /// `blake3::derive_key("keyward 2026-11 default pepper v1", namespace or "")`.
    ///
    /// It is public, so it protects nothing: for tests and examples only (the engine uses it
    /// for a memory store without a pepper, or when asked to explicitly, never silently for a
    /// store that persists).
    pub fn default_for(namespace: Option<&str>) -> Self {
        Self::from_bytes(blake3::derive_key(
            DEFAULT_PEPPER_CONTEXT,
            namespace.unwrap_or("").as_bytes(),
        ))
    }

    /// Parses 64 hex characters.
    pub fn from_hex(hex: &str) -> Option<Self> {
        // Zeroized on every return, including the early one on a bad digit or length.
        let mut out = Zeroizing::new([0u8; 32]);
        ::hex::decode_to_slice(hex.trim(), &mut out[..]).ok()?;
        Some(Self::from_bytes(*out))
    }

    /// A non-secret fingerprint that tells two peppers apart without revealing either:
    /// the first 16 bytes of `blake3::derive_key("keyward 2026-11 pepper fingerprint v1",
    /// pepper)`, as 32 lowercase hexadecimal characters.
    ///
    /// It is a one-way function of the pepper in its own derivation context, so it cannot be
    /// used to compute or test key digests. Export files carry it so that an import into a
    /// deployment whose pepper differs (where no imported key could verify) is refused.
    ///
    /// ```
    /// use keyward_core::Pepper;
    /// let a = Pepper::from_bytes([1; 32]).fingerprint();
    /// assert_eq!(a.len(), 32);
    /// assert_eq!(a, Pepper::from_bytes([1; 32]).fingerprint());
    /// assert_ne!(a, Pepper::from_bytes([2; 32]).fingerprint());
    /// ```
    pub fn fingerprint(&self) -> String {
        let derived = blake3::derive_key(FINGERPRINT_CONTEXT, &self.0[..]);
        ::hex::encode(&derived[..16])
    }

    /// The key of the audit log's hash chain: `blake3::derive_key("keyward audit chain v1",
    /// pepper)`. A one-way function of the pepper in its own derivation context: it cannot
    /// compute or test key digests, and it reveals nothing of the pepper.
    ///
    /// ```
    /// use keyward_core::Pepper;
    /// let a = Pepper::from_bytes([1; 32]).audit_key();
    /// assert_eq!(a.mac(&[b"event"]), Pepper::from_bytes([1; 32]).audit_key().mac(&[b"event"]));
    /// assert_ne!(a.mac(&[b"event"]), Pepper::from_bytes([2; 32]).audit_key().mac(&[b"event"]));
    /// ```
    pub fn audit_key(&self) -> AuditKey {
        AuditKey(Zeroizing::new(blake3::derive_key(
            AUDIT_CONTEXT,
            &self.0[..],
        )))
    }

    /// The keyed digest (blake3 keyed hash) of a key's digest input
    /// ([`crate::ParsedKey::digest_input`]).
    #[inline]
    pub fn digest(&self, input: &[u8]) -> Digest {
        Digest(*blake3::keyed_hash(&self.0, input).as_bytes())
    }
}

/// The key of the audit log's hash chain ([`Pepper::audit_key`]): 32 bytes, zeroized on drop,
/// never printed.
pub struct AuditKey(Zeroizing<[u8; 32]>);

impl AuditKey {
    /// The blake3 keyed hash of the concatenation of `parts`.
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_keyed(&self.0);
        for part in parts {
            hasher.update(part);
        }
        *hasher.finalize().as_bytes()
    }
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditKey(<redacted>)")
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper(<redacted>)")
    }
}

/// A stored key digest. Equality is constant-time.
#[derive(Clone, Copy, Eq, Serialize, Deserialize)]
pub struct Digest([u8; 32]);

impl Digest {
    /// From raw bytes (e.g. read back from storage).
    pub const fn from_bytes(b: [u8; 32]) -> Self {
        Self(b)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for Digest {
    /// Constant-time: does not branch on the bytes.
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        // XOR-OR the four words, then one constant-time test of the result: the same guarantee
        // as `subtle`'s byte-by-byte `[u8]::ct_eq` (no branch on the bytes), in a fraction of
        // the instructions (that one puts every byte through an optimisation barrier).
        let word = |d: &[u8; 32], i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&d[i * 8..i * 8 + 8]);
            u64::from_ne_bytes(w)
        };
        let diff = (0..4).fold(0u64, |acc, i| acc | (word(&self.0, i) ^ word(&other.0, i)));
        diff.ct_eq(&0).into()
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A digest is not the key, but there is no reason to print it either.
        f.write_str("Digest(…)")
    }
}
