//! The alternatives to keyward's design choices on the verify path, so the report can say what
//! each choice bought: the folding hasher vs SipHash, scc's `HashIndex` (what the hot index
//! uses) vs papaya vs `RwLock<HashMap>` under two threads, and a lookup tag vs scanning every
//! record.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::RwLock;

use keyward_core::{CHECKSUM_LEN, Digest, LOOKUP_LEN, LookupTag, checksum};

/// The hot index's hasher (`keyward_store::BuildTagHasher`): lookup tags are uniformly random,
/// so folding their bytes is enough.
pub use keyward_store::BuildTagHasher as BuildFold;

/// A map from lookup tag to digest, however it is built.
pub trait TagMap: Sync {
    /// The digest stored for `tag`.
    fn probe(&self, tag: &LookupTag) -> Option<Digest>;
}

impl<S: BuildHasher + Sync> TagMap for HashMap<LookupTag, Digest, S> {
    #[inline]
    fn probe(&self, tag: &LookupTag) -> Option<Digest> {
        self.get(tag).copied()
    }
}

impl<S: BuildHasher + Send + Sync> TagMap for papaya::HashMap<LookupTag, Digest, S> {
    #[inline]
    fn probe(&self, tag: &LookupTag) -> Option<Digest> {
        self.pin().get(tag).copied()
    }
}

impl<S: BuildHasher + Send + Sync> TagMap for scc::HashIndex<LookupTag, Digest, S> {
    #[inline]
    fn probe(&self, tag: &LookupTag) -> Option<Digest> {
        let guard = scc::Guard::new();
        self.peek(tag, &guard).copied()
    }
}

impl<S: BuildHasher + Send + Sync> TagMap for RwLock<HashMap<LookupTag, Digest, S>> {
    #[inline]
    fn probe(&self, tag: &LookupTag) -> Option<Digest> {
        self.read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(tag)
            .copied()
    }
}

impl<S: BuildHasher + Send + Sync> TagMap for parking_lot::RwLock<HashMap<LookupTag, Digest, S>> {
    #[inline]
    fn probe(&self, tag: &LookupTag) -> Option<Digest> {
        self.read().get(tag).copied()
    }
}

/// An scc hash index with the folding hasher (what the hot index uses).
pub type SccFold = scc::HashIndex<LookupTag, Digest, BuildFold>;
/// A papaya map with the folding hasher (what the hot index used before scc).
pub type PapayaFold = papaya::HashMap<LookupTag, Digest, BuildFold>;
/// A papaya map with `std`'s SipHash-1-3.
pub type PapayaSip = papaya::HashMap<LookupTag, Digest, RandomState>;
/// A `std` map with the folding hasher.
pub type StdFold = HashMap<LookupTag, Digest, BuildFold>;
/// A `std` map with SipHash-1-3.
pub type StdSip = HashMap<LookupTag, Digest, RandomState>;
/// A `std` map behind a `std` reader-writer lock.
pub type RwLockFold = RwLock<HashMap<LookupTag, Digest, BuildFold>>;
/// A `std` map behind a `parking_lot` reader-writer lock.
pub type PlRwLockFold = parking_lot::RwLock<HashMap<LookupTag, Digest, BuildFold>>;

/// Builds a papaya map from pairs.
pub fn papaya_from<S: BuildHasher + Default>(
    pairs: &[(LookupTag, Digest)],
) -> papaya::HashMap<LookupTag, Digest, S> {
    let map = papaya::HashMap::builder()
        .hasher(S::default())
        .capacity(pairs.len())
        .build();
    {
        let m = map.pin();
        for (t, d) in pairs {
            m.insert(*t, *d);
        }
    }
    map
}

/// Builds an scc hash index from pairs.
pub fn scc_from<S: BuildHasher + Default>(
    pairs: &[(LookupTag, Digest)],
) -> scc::HashIndex<LookupTag, Digest, S> {
    let map = scc::HashIndex::with_capacity_and_hasher(pairs.len(), S::default());
    for (t, d) in pairs {
        // Tags are unique: a second insert of one cannot happen.
        let _ = map.insert_sync(*t, *d);
    }
    map
}

/// Builds a `std` map from pairs.
pub fn std_from<S: BuildHasher + Default>(
    pairs: &[(LookupTag, Digest)],
) -> HashMap<LookupTag, Digest, S> {
    let mut map = HashMap::with_capacity_and_hasher(pairs.len(), S::default());
    map.extend(pairs.iter().copied());
    map
}

/// Byte offset of the lookup tag in a fixture key (`sk_prod_`).
pub const LOOKUP_AT: usize = "sk_prod_".len();
/// Length of a fixture key.
pub const KEY_LEN: usize = LOOKUP_AT + LOOKUP_LEN + keyward_core::SECRET_LEN + CHECKSUM_LEN;

/// The floor's operation over any [`TagMap`] of [`LookupTag`]s: checksum, one probe, blake3
/// keyed hash, compare (used to compare map designs; [`crate::baselines::Floor`] is the same
/// without even validating the tag's characters).
#[inline]
pub fn floor_verify(map: &impl TagMap, pepper: &[u8; 32], key: &str) -> bool {
    let b = key.as_bytes();
    if b.len() != KEY_LEN {
        return false;
    }
    let sum_at = b.len() - CHECKSUM_LEN;
    if checksum(&b[..sum_at]) != b[sum_at..] {
        return false;
    }
    let Some(tag) = LookupTag::new(&b[LOOKUP_AT..LOOKUP_AT + LOOKUP_LEN]) else {
        return false;
    };
    let Some(stored) = map.probe(&tag) else {
        return false;
    };
    Digest::from_bytes(*blake3::keyed_hash(pepper, &b[..sum_at]).as_bytes()) == stored
}

/// Verification without a lookup tag: each record has its own salt (as with bcrypt/argon2
/// digests), so a presented key must be hashed against every record until one matches.
pub struct Scan {
    records: Vec<([u8; 32], Digest)>,
}

impl Scan {
    /// A scanning verifier over `keys` (the salt of record `i` is derived from `i`).
    pub fn new<'a>(keys: impl IntoIterator<Item = &'a str>) -> Self {
        let records = keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| {
                let salt = *blake3::hash(&(i as u64).to_le_bytes()).as_bytes();
                let input = &k.as_bytes()[..k.len() - CHECKSUM_LEN];
                (
                    salt,
                    Digest::from_bytes(*blake3::keyed_hash(&salt, input).as_bytes()),
                )
            })
            .collect();
        Self { records }
    }

    /// Whether `key` matches a record (checksum first, then a scan).
    #[inline]
    pub fn verify(&self, key: &str) -> bool {
        let b = key.as_bytes();
        if b.len() != KEY_LEN {
            return false;
        }
        let sum_at = b.len() - CHECKSUM_LEN;
        if checksum(&b[..sum_at]) != b[sum_at..] {
            return false;
        }
        let input = &b[..sum_at];
        self.records.iter().any(|(salt, digest)| {
            Digest::from_bytes(*blake3::keyed_hash(salt, input).as_bytes()) == *digest
        })
    }
}
