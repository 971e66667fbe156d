//! Random generation: a per-thread ChaCha20 CSPRNG seeded from the operating system, reseeded
//! after a fork (process id change) and after every 1 MiB of output.

use std::cell::RefCell;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng, TryRngCore};

use crate::base62::ALPHABET;
use crate::error::ModelError;
use crate::format::{KeyFormat, SECRET_LEN, checksum};
use crate::ids::{CredentialId, Environment, KeyType, LOOKUP_LEN, LookupTag};
use crate::secret::{Digest, Pepper, PlaintextKey};

const RESEED_AFTER_BYTES: u64 = 1 << 20;

struct ThreadRng {
    rng: ChaCha20Rng,
    pid: u32,
    used: u64,
}

thread_local! {
    static RNG: RefCell<Option<ThreadRng>> = const { RefCell::new(None) };
}

fn seed_from_os() -> Result<ChaCha20Rng, ModelError> {
    let mut seed = [0u8; 32];
    rand_core::OsRng
        .try_fill_bytes(&mut seed)
        .map_err(|_| ModelError::Rng)?;
    let rng = ChaCha20Rng::from_seed(seed);
    zeroize::Zeroize::zeroize(&mut seed);
    Ok(rng)
}

/// Runs `f` with this thread's generator, (re)seeding it when needed.
fn with_rng<R>(bytes: u64, f: impl FnOnce(&mut ChaCha20Rng) -> R) -> Result<R, ModelError> {
    RNG.with(|cell| {
        let mut slot = cell.borrow_mut();
        let pid = std::process::id();
        let stale = match &*slot {
            Some(t) => t.pid != pid || t.used >= RESEED_AFTER_BYTES,
            None => true,
        };
        if stale {
            *slot = Some(ThreadRng {
                rng: seed_from_os()?,
                pid,
                used: 0,
            });
        }
        let t = slot.as_mut().ok_or(ModelError::Rng)?;
        t.used += bytes;
        Ok(f(&mut t.rng))
    })
}

/// Fills `out` with uniformly random base62 characters (rejection sampling, no modulo bias).
pub fn fill_base62(rng: &mut impl RngCore, out: &mut [u8]) {
    let mut buf = [0u8; 64];
    let mut i = 0;
    while i < out.len() {
        rng.fill_bytes(&mut buf);
        for &b in &buf {
            // 248 = 4 * 62: values below it map uniformly.
            if b < 248 {
                out[i] = ALPHABET[usize::from(b % 62)];
                i += 1;
                if i == out.len() {
                    break;
                }
            }
        }
    }
    zeroize::Zeroize::zeroize(&mut buf);
}

/// A fresh credential id from the thread's CSPRNG.
pub fn random_id() -> Result<CredentialId, ModelError> {
    with_rng(32, CredentialId::random_with)
}

impl CredentialId {
    /// A credential id drawn from `rng` (for deterministic tests; use [`random_id`] otherwise).
    pub fn random_with(rng: &mut impl RngCore) -> CredentialId {
        let mut body = [0u8; 25];
        fill_base62(rng, &mut body);
        CredentialId::from_body(&body)
    }
}

/// A newly generated key: the plaintext (shown once), its lookup tag and its digest.
#[derive(Debug)]
pub struct Generated {
    /// The plaintext key.
    pub key: PlaintextKey,
    /// The public lookup tag.
    pub lookup: LookupTag,
    /// The keyed digest to store.
    pub digest: Digest,
}

impl KeyFormat {
    /// Generates a key with the thread's CSPRNG.
    pub fn generate(
        &self,
        key_type: KeyType,
        env: &Environment,
        pepper: &Pepper,
    ) -> Result<Generated, ModelError> {
        let prefix = self.prefix(key_type, env)?;
        with_rng(96, |rng| self.assemble(prefix, rng, pepper))
    }

    /// Generates a key from a caller-supplied generator: deterministic for a seeded `rng`
    /// (known-answer tests). Production code uses [`KeyFormat::generate`].
    pub fn generate_with(
        &self,
        rng: &mut impl RngCore,
        key_type: KeyType,
        env: &Environment,
        pepper: &Pepper,
    ) -> Result<Generated, ModelError> {
        let prefix = self.prefix(key_type, env)?;
        Ok(self.assemble(prefix, rng, pepper))
    }

    fn assemble(&self, mut s: String, rng: &mut impl RngCore, pepper: &Pepper) -> Generated {
        let mut body = [0u8; LOOKUP_LEN + SECRET_LEN];
        fill_base62(rng, &mut body);
        let type_start = self.namespace().map_or(0, |ns| ns.len() + 1);
        s.extend(body.iter().map(|&b| char::from(b)));
        zeroize::Zeroize::zeroize(&mut body);
        let sum = checksum(s.as_bytes());
        let digest = pepper.digest(&s.as_bytes()[type_start..]);
        let lookup_at = s.len() - LOOKUP_LEN - SECRET_LEN;
        // Both slices are base62 by construction.
        let lookup = LookupTag::new(&s.as_bytes()[lookup_at..lookup_at + LOOKUP_LEN])
            .unwrap_or_else(|| unreachable!("base62 by construction"));
        s.extend(sum.iter().map(|&b| char::from(b)));
        Generated {
            key: PlaintextKey::new(s),
            lookup,
            digest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yields 0, 1, …, 255, 0, 1, … so the rejection boundary is visible.
    struct Counter(u8);

    impl RngCore for Counter {
        fn next_u32(&mut self) -> u32 {
            rand_core::impls::next_u32_via_fill(self)
        }
        fn next_u64(&mut self) -> u64 {
            rand_core::impls::next_u64_via_fill(self)
        }
        fn fill_bytes(&mut self, dst: &mut [u8]) {
            for b in dst {
                *b = self.0;
                self.0 = self.0.wrapping_add(1);
            }
        }
    }

    #[test]
    fn fill_base62_rejects_bytes_from_248_and_maps_the_rest_uniformly() {
        let mut out = [0u8; 62 * 4 + 62];
        fill_base62(&mut Counter(0), &mut out);
        // Bytes 0..248 map to 0..62 four times over; 248..=255 are skipped; then 0.. again.
        let expected: Vec<u8> = (0..248u32)
            .chain(0..62)
            .map(|b| ALPHABET[(b % 62) as usize])
            .collect();
        assert_eq!(out.to_vec(), expected);
    }

    #[test]
    fn thread_generator_keeps_working_past_the_reseed_threshold() {
        let a = random_id().map(String::from);
        let b = random_id().map(String::from);
        assert!(a.is_ok() && b.is_ok());
        assert_ne!(a, b);
        // Past the reseed threshold it still produces valid, distinct ids.
        let n = usize::try_from(RESEED_AFTER_BYTES / 32).unwrap_or(usize::MAX) + 2;
        let mut last = String::new();
        for _ in 0..n.min(40_000) {
            let id = random_id().map(String::from).unwrap_or_default();
            assert_eq!(id.len(), 29);
            assert_ne!(id, last);
            last = id;
        }
    }
}
