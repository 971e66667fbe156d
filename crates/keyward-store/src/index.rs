//! The hot index: a read-optimised concurrent map from lookup tag to credential, kept coherent
//! with every write that goes through [`IndexedStore`].
//!
//! Readers share no written word: the maps are [`papaya`] hash maps whose reads are lock-free
//! (a guard pins a thread-local epoch slot; no reader count, no lock word). See
//! `docs/storage.md` for why.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use keyward_core::{Credential, CredentialId, LookupTag, SecretVersion, Timestamp};
use parking_lot::Mutex;

use crate::{ListQuery, Page, Store, StoreError};

/// Most well-formed-but-unknown lookup tags remembered for a shared backend; the negative cache
/// is cleared when it would grow past this.
pub const NEGATIVE_CACHE_CAPACITY: usize = 1 << 16;

const WRITE_STRIPES: usize = 64;

/// What the verify path finds for a lookup tag: the credential, and a copy of the secret the
/// tag belongs to and of the credential's expiry and enabled flag, so that deciding a key reads
/// only this entry and not the credential record behind it (at 1M credentials every pointer
/// followed is a cache miss). The copies never go stale: an indexed credential is immutable,
/// and every write installs new entries.
///
/// Cloning it (what the engine's owned `Verified` result does)
/// bumps the reference count of this small record, which the check has just read, rather than
/// the credential's: an atomic increment on a line already in cache instead of on a cold one,
/// which at scale stalls the verify path for a whole memory round trip.
#[derive(Clone)]
pub struct HotEntry(Arc<HotRecord>);

struct HotRecord {
    secret: SecretVersion,
    expires_at: Option<Timestamp>,
    enabled: bool,
    credential: Arc<Credential>,
}

impl HotEntry {
    /// The entry for `credential.secrets[slot]` (which must exist).
    fn new(credential: Arc<Credential>, slot: usize) -> Self {
        Self(Arc::new(HotRecord {
            secret: credential.secrets[slot].clone(),
            expires_at: credential.expires_at,
            enabled: credential.enabled,
            credential,
        }))
    }

    /// The credential.
    #[inline]
    pub fn credential(&self) -> &Arc<Credential> {
        &self.0.credential
    }

    /// The secret version this lookup tag belongs to (equal to the credential's own copy).
    #[inline]
    pub fn secret(&self) -> &SecretVersion {
        &self.0.secret
    }

    /// `credential().expires_at`, read without following the pointer.
    #[inline]
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.0.expires_at
    }

    /// `credential().enabled`, read without following the pointer.
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.0.enabled
    }
}

/// The hot index's hasher. Lookup tags are uniformly random, so hashing needs only to fold
/// their bytes (two multiplies for a tag, against SipHash's dozens of rounds); it is no
/// defence against chosen keys, so use it only for keys an attacker cannot choose.
#[derive(Clone, Copy, Default, Debug)]
pub struct TagHasher(u64);

impl Hasher for TagHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0 ^ u64::from_le_bytes(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    #[inline]
    fn write_usize(&mut self, _len: usize) {}
    #[inline]
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}

/// Builds [`TagHasher`]s.
#[derive(Clone, Copy, Default, Debug)]
pub struct BuildTagHasher;

impl BuildHasher for BuildTagHasher {
    type Hasher = TagHasher;
    #[inline]
    fn build_hasher(&self) -> TagHasher {
        TagHasher(0)
    }
}

type TagMap<V> = papaya::HashMap<LookupTag, V, BuildTagHasher>;

/// A [`Store`] with the hot index in front of it. All writes go through here so that the index
/// stays coherent; reads on the verify path never touch the backend for a local backend, and
/// touch it at most once per unknown tag (negative cache) for a shared one.
pub struct IndexedStore {
    backend: Box<dyn Store>,
    hot: TagMap<HotEntry>,
    by_id: papaya::HashMap<CredentialId, Arc<Credential>>,
    negative: TagMap<()>,
    /// Bumped by every write; a negative answer read before a write is not cached after it.
    write_epoch: AtomicU64,
    stripes: Box<[Mutex<()>]>,
    shared: bool,
}

impl IndexedStore {
    /// Opens the index over `backend` and warms it from a full scan. Fails if any record cannot
    /// be read; use [`IndexedStore::open_lenient`] to open anyway and get the failures back.
    pub fn open(backend: Box<dyn Store>) -> Result<Self, StoreError> {
        let (store, mut errors) = Self::open_lenient(backend)?;
        match errors.pop() {
            Some(e) => Err(e),
            None => Ok(store),
        }
    }

    /// Opens and warms the index, skipping records that cannot be decoded: every other
    /// credential keeps working; the errors (each naming its record) are returned.
    pub fn open_lenient(backend: Box<dyn Store>) -> Result<(Self, Vec<StoreError>), StoreError> {
        let shared = backend.is_shared();
        let store = Self {
            backend,
            hot: papaya::HashMap::builder().hasher(BuildTagHasher).build(),
            by_id: papaya::HashMap::new(),
            negative: papaya::HashMap::builder().hasher(BuildTagHasher).build(),
            write_epoch: AtomicU64::new(0),
            stripes: (0..WRITE_STRIPES).map(|_| Mutex::new(())).collect(),
            shared,
        };
        let mut errors = Vec::new();
        store.backend.scan(&mut |r| match r {
            Ok(cred) => store.install(Arc::new(cred)),
            Err(e) => errors.push(e),
        })?;
        Ok((store, errors))
    }

    /// The backend.
    pub fn backend(&self) -> &dyn Store {
        &*self.backend
    }

    /// Number of credentials in the index.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether the index holds no credential.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The verify path: calls `f` with the entry for `lookup`, or `None` if no credential holds
    /// it. A hit takes no lock and writes no shared memory.
    #[inline]
    pub fn with_lookup<R>(
        &self,
        lookup: &LookupTag,
        f: impl FnOnce(Option<&HotEntry>) -> R,
    ) -> Result<R, StoreError> {
        {
            let hot = self.hot.pin();
            if let Some(entry) = hot.get(lookup) {
                return Ok(f(Some(entry)));
            }
        }
        if !self.shared {
            // Local backend: the index holds every credential.
            return Ok(f(None));
        }
        self.miss_shared(lookup, f)
    }

    #[cold]
    fn miss_shared<R>(
        &self,
        lookup: &LookupTag,
        f: impl FnOnce(Option<&HotEntry>) -> R,
    ) -> Result<R, StoreError> {
        if self.negative.pin().contains_key(lookup) {
            return Ok(f(None));
        }
        let epoch = self.write_epoch.load(Ordering::Acquire);
        match self.backend.find_by_lookup(lookup)? {
            Some(cred) => {
                let cred = Arc::new(cred);
                {
                    // Serialised with writes to this id. If any write went through this store
                    // since the read began, the read may be older than what the index holds
                    // (a revocation, a delete): answer from it but do not install it.
                    let _w = self.stripe(&cred.id).lock();
                    if self.write_epoch.load(Ordering::Acquire) == epoch {
                        self.install(Arc::clone(&cred));
                    }
                }
                let entry = cred
                    .secrets
                    .iter()
                    .position(|s| &s.lookup == lookup)
                    .map(|slot| HotEntry::new(cred, slot));
                Ok(f(entry.as_ref()))
            }
            None => {
                let negative = self.negative.pin();
                if negative.len() >= NEGATIVE_CACHE_CAPACITY {
                    negative.clear();
                }
                if self.write_epoch.load(Ordering::Acquire) == epoch {
                    negative.insert(*lookup, ());
                }
                Ok(f(None))
            }
        }
    }

    /// Reads a credential by id: from the index for a local backend, from the backend (and
    /// refreshing the index) for a shared one.
    pub fn get(&self, id: &CredentialId) -> Result<Option<Arc<Credential>>, StoreError> {
        if self.shared {
            return self.refresh(id);
        }
        Ok(self.by_id.pin().get(id).cloned())
    }

    /// Re-reads `id` from the backend and brings the index up to date (for shared backends when
    /// another process changed it).
    pub fn refresh(&self, id: &CredentialId) -> Result<Option<Arc<Credential>>, StoreError> {
        let _w = self.stripe(id).lock();
        match self.backend.get(id)? {
            Some(cred) => {
                let cred = Arc::new(cred);
                self.install(Arc::clone(&cred));
                Ok(Some(cred))
            }
            None => {
                self.uninstall(id);
                Ok(None)
            }
        }
    }

    /// Lists credentials from the backend.
    pub fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        self.backend.list(query)
    }

    /// Writes `cred` (conditional on `cred.revision`, see [`Store::put`]) durably, then updates
    /// the index. Returns the stored credential with its new revision.
    pub fn put(&self, mut cred: Credential) -> Result<Arc<Credential>, StoreError> {
        let _w = self.stripe(&cred.id).lock();
        let revision = self.backend.put(&cred)?;
        cred.revision = revision;
        let cred = Arc::new(cred);
        self.write_epoch.fetch_add(1, Ordering::AcqRel);
        {
            let negative = self.negative.pin();
            for s in &cred.secrets {
                negative.remove(&s.lookup);
            }
        }
        self.install(Arc::clone(&cred));
        Ok(cred)
    }

    /// Deletes `id` if its stored revision is `revision`.
    pub fn delete(&self, id: &CredentialId, revision: u64) -> Result<(), StoreError> {
        let _w = self.stripe(id).lock();
        self.backend.delete(id, revision)?;
        self.write_epoch.fetch_add(1, Ordering::AcqRel);
        self.uninstall(id);
        Ok(())
    }

    fn stripe(&self, id: &CredentialId) -> &Mutex<()> {
        // Ids are random base62: folding the bytes spreads them evenly.
        let h = id.as_str().bytes().fold(0usize, |h, b| {
            h.wrapping_mul(31).wrapping_add(usize::from(b))
        });
        &self.stripes[h % self.stripes.len()]
    }

    /// Puts `cred` into the index unless the index already has a newer revision. Callers hold
    /// the id's stripe lock (or are alone, at warm-up): the check and the inserts are not one
    /// atomic step.
    fn install(&self, cred: Arc<Credential>) {
        let by_id = self.by_id.pin();
        let hot = self.hot.pin();
        if let Some(old) = by_id.get(&cred.id) {
            if old.revision > cred.revision {
                return;
            }
            for s in &old.secrets {
                if cred.secret_by_lookup(&s.lookup).is_none() {
                    hot.remove(&s.lookup);
                }
            }
        }
        for (slot, s) in cred.secrets.iter().enumerate() {
            hot.insert(s.lookup, HotEntry::new(Arc::clone(&cred), slot));
        }
        by_id.insert(cred.id.clone(), cred);
    }

    fn uninstall(&self, id: &CredentialId) {
        let by_id = self.by_id.pin();
        let hot = self.hot.pin();
        if let Some(old) = by_id.remove(id) {
            for s in &old.secrets {
                hot.remove(&s.lookup);
            }
        }
    }
}

/// The indexed store is a [`Store`] too (reads through the hot index, writes through to the
/// backend), so that code generic over the trait, and the conformance suite, can use it.
/// The inherent methods of the same names take precedence in method calls.
impl Store for IndexedStore {
    fn get(&self, id: &CredentialId) -> Result<Option<Credential>, StoreError> {
        Ok(IndexedStore::get(self, id)?.map(|c| (*c).clone()))
    }

    fn find_by_lookup(&self, lookup: &LookupTag) -> Result<Option<Credential>, StoreError> {
        self.with_lookup(lookup, |e| e.map(|e| (**e.credential()).clone()))
    }

    fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        IndexedStore::list(self, query)
    }

    fn put(&self, cred: &Credential) -> Result<u64, StoreError> {
        Ok(IndexedStore::put(self, cred.clone())?.revision)
    }

    fn delete(&self, id: &CredentialId, revision: u64) -> Result<(), StoreError> {
        IndexedStore::delete(self, id, revision)
    }

    fn scan(
        &self,
        visit: &mut dyn FnMut(Result<Credential, StoreError>),
    ) -> Result<(), StoreError> {
        self.backend.scan(visit)
    }

    fn is_shared(&self) -> bool {
        self.shared
    }
}
