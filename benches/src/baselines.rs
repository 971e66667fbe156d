//! The three baselines of the verify path, measured in the same run.
//!
//! * [`Floor`]: the least any verifier can do with keyward's key format — checksum check, one
//!   probe of a plain hash map, a blake3 keyed hash and a digest compare. Nothing else.
//! * [`Peer`]: the `prefixed-api-key` crate (0.3) — `from_string` + `check_hash`, plus the
//!   lookup of its short token in a map.
//! * [`Naive`]: what a typical service hand-writes — SHA-256 hex of the whole key as the key of a
//!   `std` `HashMap<String, Record>`.

use std::collections::HashMap;

use keyward_core::{CHECKSUM_LEN, Credential, Digest, LOOKUP_LEN, checksum};
use prefixed_api_key::rand::rngs::ThreadRng;
use prefixed_api_key::sha2::{Digest as _, Sha256};
use prefixed_api_key::{PrefixedApiKey, PrefixedApiKeyController};

use crate::design::{BuildFold, KEY_LEN, LOOKUP_AT};

/// Checksum + one map probe + blake3 keyed hash + digest compare. The map is keyed by the raw
/// 16 tag bytes (not even validated as base62: the checksum matched, and a probe with any bytes
/// is harmless).
pub struct Floor {
    map: HashMap<[u8; LOOKUP_LEN], Digest, BuildFold>,
    pepper: [u8; 32],
}

impl Floor {
    /// A floor verifier over the same credentials as the engine (their first secret).
    pub fn new<'a>(creds: impl IntoIterator<Item = &'a Credential>) -> Self {
        let mut map = HashMap::with_hasher(BuildFold);
        for c in creds {
            let s = &c.secrets[0];
            map.insert(*s.lookup.as_bytes(), s.digest);
        }
        Self {
            map,
            pepper: [0x5a; 32],
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether `key` is a valid fixture key.
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
        let mut tag = [0u8; LOOKUP_LEN];
        tag.copy_from_slice(&b[LOOKUP_AT..LOOKUP_AT + LOOKUP_LEN]);
        let Some(stored) = self.map.get(&tag) else {
            return false;
        };
        Digest::from_bytes(*blake3::keyed_hash(&self.pepper, &b[..sum_at]).as_bytes()) == *stored
    }
}

/// The peer crate's controller type used here (SHA-256, thread RNG).
pub type PeerController = PrefixedApiKeyController<ThreadRng, Sha256>;

/// `prefixed-api-key`: parse, find the short token in a map, check the long token's hash.
pub struct Peer {
    controller: PeerController,
    map: HashMap<String, String>,
}

impl Peer {
    /// `n` peer keys; returns the verifier and the keys (shuffled by the caller).
    pub fn generate(n: usize) -> (Self, Vec<String>) {
        let controller = PeerController::configure()
            .prefix("acme".to_owned())
            .rng_threadrng()
            .digest_sha256()
            .default_lengths()
            .finalize()
            .expect("complete peer configuration");
        let mut map = HashMap::with_capacity(n);
        let mut keys = Vec::with_capacity(n);
        while keys.len() < n {
            let (pak, hash) = controller.generate_key_and_hash();
            if map.insert(pak.short_token().to_owned(), hash).is_none() {
                keys.push(pak.to_string());
            }
        }
        (Self { controller, map }, keys)
    }

    /// Whether `key` is valid.
    #[inline]
    pub fn verify(&self, key: &str) -> bool {
        let Ok(pak) = PrefixedApiKey::from_string(key) else {
            return false;
        };
        match self.map.get(pak.short_token()) {
            Some(hash) => self.controller.check_hash(&pak, hash),
            None => false,
        }
    }
}

/// What a hand-written verifier typically stores per key.
#[derive(Debug, Clone)]
pub struct Record {
    /// Owning account.
    pub account: String,
    /// Permissions, as strings.
    pub permissions: Vec<String>,
    /// Whether the key is enabled.
    pub enabled: bool,
}

/// SHA-256 hex of the whole key → record, in a `std` `HashMap<String, Record>` (SipHash).
pub struct Naive {
    map: HashMap<String, Record>,
}

impl Naive {
    /// The hex SHA-256 of a key.
    pub fn hash(key: &str) -> String {
        hex::encode(Sha256::digest(key.as_bytes()))
    }

    /// A verifier over `(key, credential)` pairs.
    pub fn new<'a>(items: impl IntoIterator<Item = (&'a str, &'a Credential)>) -> Self {
        let map = items
            .into_iter()
            .map(|(key, c)| {
                (
                    Self::hash(key),
                    Record {
                        account: c.account.as_str().to_owned(),
                        permissions: c
                            .permissions
                            .iter()
                            .map(|p| p.as_str().to_owned())
                            .collect(),
                        enabled: c.enabled,
                    },
                )
            })
            .collect();
        Self { map }
    }

    /// The record of a valid key.
    #[inline]
    pub fn verify(&self, key: &str) -> Option<&Record> {
        self.map.get(&Self::hash(key)).filter(|r| r.enabled)
    }
}
