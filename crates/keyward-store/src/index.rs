//! The hot index: a read-optimised concurrent map from lookup tag to credential, kept coherent
//! with every write that goes through [`IndexedStore`].
//!
//! Readers share no written word: the maps are [`scc`] hash indexes whose reads are lock-free
//! (a guard pins a thread-local epoch slot; no reader count, no lock word) and whose entries
//! sit inline in their buckets (a probe is one bucket and one entry, not a pointer chase). See
//! `docs/storage.md` for why.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use scc::hash_index::Entry;

use keyward_core::{
    AccountId, Credential, CredentialId, Digest, Environment, KeyType, LookupTag, Metadata,
    PermissionSet, SecretVersion, SecretWindow, Timestamp,
};
use parking_lot::Mutex;

use crate::{AuditEntry, Change, ListQuery, Page, Store, StoreError, Write, next_revision};

/// Most well-formed-but-unknown lookup tags remembered for a shared backend; the negative cache
/// is cleared when it would grow past this.
pub const NEGATIVE_CACHE_CAPACITY: usize = 1 << 16;

const WRITE_STRIPES: usize = 64;

/// How often a miss is re-probed while the map keeps changing before the backend answers it
/// instead (64 spins, then yields: about a millisecond when other threads are runnable).
const CONFIRM_TRIES: u32 = 1024;

/// What re-probing a miss found (see [`IndexedStore::confirm_miss`]).
enum Confirmed<'g> {
    Found(&'g HotEntry),
    Absent,
    /// Every re-probe overlapped a change to the map.
    Busy,
}

/// What the verify path finds for a lookup tag: a compact copy of what deciding a key and
/// answering "who is it" need — the secret's digest and validity window, the credential's
/// expiry, flag, id, type and revision, and its account, environment, permissions and metadata
/// (one interned profile shared by every credential that has the same ones). Not the name, the
/// timestamps or the other secrets: [`IndexedStore::get`] reads the whole record from the
/// backend. The copies never go stale: every write installs new entries.
///
/// Everything a hit reads is in this one record, so at 1M credentials a hit follows one pointer
/// from the map entry and no further. Cloning it (what the engine's owned `Verified` result
/// does) bumps this record's reference count, on the line the check has just read.
#[derive(Clone)]
pub struct HotEntry(Arc<HotRecord>);

///
/// `repr(C)`: what a hit reads comes first, right after the `Arc`'s reference counts — the
/// digest, then the flags that decide the common key without the window (`timeless`,
/// `enabled`) — so that it spans as few cache lines as possible (at 1M credentials each line
/// is a memory round trip; the compiler's own order put the window and the digest ~100 bytes
/// apart).
#[repr(C)]
struct HotRecord {
    digest: Digest,
    /// `window.is_timeless(expires_at)`: usable at any instant, the window need not be read.
    timeless: bool,
    enabled: bool,
    key_type: KeyType,
    version: u32,
    window: SecretWindow,
    expires_at: Option<Timestamp>,
    revision: u64,
    id: CredentialId,
    profile: Arc<Profile>,
}

/// Who a credential is, beyond its id: interned, so that the credentials of one account with
/// the same environment, permissions and metadata share one copy.
#[derive(PartialEq, Eq, Hash)]
struct Profile {
    account: AccountId,
    environment: Environment,
    permissions: PermissionSet,
    metadata: Metadata,
}

impl HotEntry {
    fn new(cred: &Credential, secret: &SecretVersion, profile: &Arc<Profile>) -> Self {
        Self(Arc::new(HotRecord {
            digest: secret.digest,
            timeless: secret.window().is_timeless(cred.expires_at),
            window: secret.window(),
            expires_at: cred.expires_at,
            revision: cred.revision,
            version: secret.version,
            enabled: cred.enabled,
            key_type: cred.key_type,
            id: cred.id.clone(),
            profile: Arc::clone(profile),
        }))
    }

    /// The keyed digest of this secret's key.
    #[inline]
    pub fn digest(&self) -> &Digest {
        &self.0.digest
    }

    /// When this secret is usable (see `keyward_rotation::window_state`).
    #[inline]
    pub fn window(&self) -> SecretWindow {
        self.0.window
    }

    /// Whether the key is usable at any instant (`window().is_timeless(expires_at())`), read
    /// from the entry's first cache line.
    #[inline]
    pub fn is_timeless(&self) -> bool {
        self.0.timeless
    }

    /// The secret's version.
    #[inline]
    pub fn version(&self) -> u32 {
        self.0.version
    }

    /// The credential's expiry.
    #[inline]
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.0.expires_at
    }

    /// Whether the credential is enabled.
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.0.enabled
    }

    /// The credential's revision when this entry was installed.
    #[inline]
    pub fn revision(&self) -> u64 {
        self.0.revision
    }

    /// The credential id.
    #[inline]
    pub fn id(&self) -> &CredentialId {
        &self.0.id
    }

    /// The key type.
    #[inline]
    pub fn key_type(&self) -> KeyType {
        self.0.key_type
    }

    /// The owning account.
    #[inline]
    pub fn account(&self) -> &AccountId {
        &self.0.profile.account
    }

    /// The environment.
    #[inline]
    pub fn environment(&self) -> &Environment {
        &self.0.profile.environment
    }

    /// The permissions.
    #[inline]
    pub fn permissions(&self) -> &PermissionSet {
        &self.0.profile.permissions
    }

    /// The metadata.
    #[inline]
    pub fn metadata(&self) -> &Metadata {
        &self.0.profile.metadata
    }

    /// Whether this entry is exactly what the index installs for `cred`'s secret `secret`:
    /// every copied field equal. For tests and consistency checks.
    pub fn describes(&self, cred: &Credential, secret: &SecretVersion) -> bool {
        let r = &*self.0;
        r.digest == secret.digest
            && r.window == secret.window()
            && r.timeless == secret.window().is_timeless(cred.expires_at)
            && r.version == secret.version
            && r.expires_at == cred.expires_at
            && r.revision == cred.revision
            && r.enabled == cred.enabled
            && r.key_type == cred.key_type
            && r.id == cred.id
            && r.profile.account == cred.account
            && r.profile.environment == cred.environment
            && r.profile.permissions == cred.permissions
            && r.profile.metadata == cred.metadata
    }
}

/// A set of shared values, so that equal ones are stored once. Values no longer used by any
/// entry are dropped when the set has doubled since the last sweep.
struct Interner<T> {
    inner: Mutex<InternerInner<T>>,
}

struct InternerInner<T> {
    set: HashSet<Arc<T>>,
    sweep_at: usize,
}

const INTERNER_MIN_SWEEP: usize = 1024;

impl<T: Hash + Eq> Interner<T> {
    fn new() -> Self {
        Self {
            inner: Mutex::new(InternerInner {
                set: HashSet::new(),
                sweep_at: INTERNER_MIN_SWEEP,
            }),
        }
    }

    fn intern(&self, value: T) -> Arc<T> {
        let mut inner = self.inner.lock();
        if let Some(shared) = inner.set.get(&value) {
            return Arc::clone(shared);
        }
        if inner.set.len() >= inner.sweep_at {
            inner.set.retain(|v| Arc::strong_count(v) > 1);
            inner.sweep_at = (inner.set.len() * 2).max(INTERNER_MIN_SWEEP);
        }
        let shared = Arc::new(value);
        inner.set.insert(Arc::clone(&shared));
        shared
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

type TagMap<V> = scc::HashIndex<LookupTag, V, BuildTagHasher>;

/// A [`Store`] with the hot index in front of it. All writes go through here so that the index
/// stays coherent; reads on the verify path never touch the backend for a local backend, and
/// touch it at most once per unknown tag (negative cache) for a shared one.
///
/// The index holds a [`HotEntry`] per lookup tag and nothing per credential: reads by id go to
/// the backend, and a write reads the credential's previous tags from the backend (local
/// backends, where every write comes through here) so that it can drop the ones it no longer
/// has. For a shared backend, where another process may change or delete a credential, the
/// index also remembers which tags it installed for each id.
pub struct IndexedStore {
    backend: Box<dyn Store>,
    hot: TagMap<HotEntry>,
    /// Shared backends only: the tags installed for each credential.
    installed: Option<scc::HashMap<CredentialId, Box<[LookupTag]>>>,
    profiles: Interner<Profile>,
    /// Number of credentials installed.
    count: AtomicUsize,
    negative: TagMap<()>,
    /// Entries in `negative` (the map's own count walks its buckets).
    negative_len: AtomicUsize,
    /// Bumped by every write; a negative answer read before a write is not cached after it.
    write_epoch: AtomicU64,
    /// Bumped before and after every change to `hot` (see [`IndexedStore::confirm_miss`]).
    changes_started: AtomicU64,
    changes_finished: AtomicU64,
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
            hot: TagMap::with_hasher(BuildTagHasher),
            installed: shared.then(scc::HashMap::new),
            profiles: Interner::new(),
            count: AtomicUsize::new(0),
            negative: TagMap::with_hasher(BuildTagHasher),
            negative_len: AtomicUsize::new(0),
            write_epoch: AtomicU64::new(0),
            changes_started: AtomicU64::new(0),
            changes_finished: AtomicU64::new(0),
            stripes: (0..WRITE_STRIPES).map(|_| Mutex::new(())).collect(),
            shared,
        };
        let mut errors = Vec::new();
        store.backend.scan(&mut |r| match r {
            Ok(cred) => store.install(&cred, None),
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
        self.count.load(Ordering::Relaxed)
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
            let guard = scc::Guard::new();
            let confirmed = match self.hot.peek(lookup, &guard) {
                Some(entry) => return Ok(f(Some(entry))),
                None => self.confirm_miss(lookup, &guard),
            };
            match confirmed {
                Confirmed::Found(entry) => return Ok(f(Some(entry))),
                // Local backend: the index holds every credential.
                Confirmed::Absent if !self.shared => return Ok(f(None)),
                Confirmed::Absent => {}
                Confirmed::Busy => return self.miss_busy(lookup, f),
            }
        }
        self.miss_shared(lookup, f)
    }

    /// A probe that found nothing is repeated while no change to the map is under way. The
    /// map's reads are lock-free but a change is not atomic for a reader scanning the same
    /// bucket: replacing an entry inserts the new one and then marks the old one removed, so a
    /// scan can pass the new one's slot before it is filled and reach the old one after it is
    /// marked, and find neither. Every change is bracketed by `changes_started` and
    /// `changes_finished`; a probe that began and ended with no change in between is the
    /// truth. Only misses pay for this (two loads of words that only writers write). A reader
    /// spins, then yields, while changes keep overlapping its probe, and after
    /// [`CONFIRM_TRIES`] gives up on the map ([`Confirmed::Busy`]).
    #[cold]
    #[inline(never)]
    fn confirm_miss<'g>(&'g self, lookup: &LookupTag, guard: &'g scc::Guard) -> Confirmed<'g> {
        for tries in 0..CONFIRM_TRIES {
            let started = self.changes_started.load(Ordering::SeqCst);
            if self.changes_finished.load(Ordering::SeqCst) == started {
                let found = self.hot.peek(lookup, guard);
                if let Some(entry) = found {
                    return Confirmed::Found(entry);
                }
                // The probe's reads must not be satisfied after the recheck below (the seqlock
                // reader's fence): otherwise they could see a change the recheck did not.
                std::sync::atomic::fence(Ordering::Acquire);
                if self.changes_started.load(Ordering::SeqCst) == started {
                    return Confirmed::Absent;
                }
            }
            if tries < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        Confirmed::Busy
    }

    /// The map was being changed during every re-probe of a miss: answer from the backend,
    /// which every write reaches before the map does, without installing anything.
    #[cold]
    fn miss_busy<R>(
        &self,
        lookup: &LookupTag,
        f: impl FnOnce(Option<&HotEntry>) -> R,
    ) -> Result<R, StoreError> {
        let cred = self.backend.find_by_lookup(lookup)?;
        let entry = cred.as_ref().and_then(|c| self.entry_for(c, lookup));
        Ok(f(entry.as_ref()))
    }

    /// The entry `cred`'s secret with tag `lookup` would have in the map.
    fn entry_for(&self, cred: &Credential, lookup: &LookupTag) -> Option<HotEntry> {
        let secret = cred.secret_by_lookup(lookup)?;
        Some(HotEntry::new(cred, secret, &self.profile(cred)))
    }

    /// Runs a change to `hot` between the two counters [`IndexedStore::confirm_miss`] reads
    /// (the second is bumped on drop, so that even a panicking change does not leave readers
    /// waiting).
    fn changing<R>(&self, change: impl FnOnce() -> R) -> R {
        struct Finish<'a>(&'a AtomicU64);
        impl Drop for Finish<'_> {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        self.changes_started.fetch_add(1, Ordering::SeqCst);
        let _finish = Finish(&self.changes_finished);
        change()
    }

    #[cold]
    fn miss_shared<R>(
        &self,
        lookup: &LookupTag,
        f: impl FnOnce(Option<&HotEntry>) -> R,
    ) -> Result<R, StoreError> {
        if self.negative.contains(lookup) {
            return Ok(f(None));
        }
        let epoch = self.write_epoch.load(Ordering::Acquire);
        match self.backend.find_by_lookup(lookup)? {
            Some(cred) => {
                {
                    // Serialised with writes to this id. If any write went through this store
                    // since the read began, the read may be older than what the index holds
                    // (a revocation, a delete): answer from it but do not install it.
                    let _w = self.stripe(&cred.id).lock();
                    if self.write_epoch.load(Ordering::Acquire) == epoch {
                        let before = self.installed_tags(&cred.id);
                        self.install(&cred, before.as_deref());
                    }
                }
                let entry = self.entry_for(&cred, lookup);
                Ok(f(entry.as_ref()))
            }
            None => {
                if self.negative_len.load(Ordering::Relaxed) >= NEGATIVE_CACHE_CAPACITY {
                    self.negative.clear_sync();
                    self.negative_len.store(0, Ordering::Relaxed);
                }
                if self.write_epoch.load(Ordering::Acquire) == epoch
                    && self.negative.insert_sync(*lookup, ()).is_ok()
                {
                    self.negative_len.fetch_add(1, Ordering::Relaxed);
                }
                Ok(f(None))
            }
        }
    }

    /// Reads a credential by id from the backend (for a shared backend, also bringing the index
    /// up to date with what it read).
    pub fn get(&self, id: &CredentialId) -> Result<Option<Arc<Credential>>, StoreError> {
        if self.shared {
            return self.refresh(id);
        }
        Ok(self.backend.get(id)?.map(Arc::new))
    }

    /// Re-reads `id` from the backend and brings the index up to date (for shared backends when
    /// another process changed it). On a local backend, where every write goes through this
    /// index, the index is already up to date and this is [`IndexedStore::get`].
    pub fn refresh(&self, id: &CredentialId) -> Result<Option<Arc<Credential>>, StoreError> {
        if !self.shared {
            return Ok(self.backend.get(id)?.map(Arc::new));
        }
        let _w = self.stripe(id).lock();
        let before = self.installed_tags(id);
        match self.backend.get(id)? {
            Some(cred) => {
                self.install(&cred, before.as_deref());
                Ok(Some(Arc::new(cred)))
            }
            None => {
                self.uninstall(id, before.as_deref());
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
    pub fn put(&self, cred: Credential) -> Result<Arc<Credential>, StoreError> {
        self.put_with(cred, None)
    }

    /// [`IndexedStore::put`] with the audit event that records it, in one write
    /// ([`Store::commit`]): both are written or neither is.
    pub fn put_with(
        &self,
        mut cred: Credential,
        event: Option<&AuditEntry>,
    ) -> Result<Arc<Credential>, StoreError> {
        let _w = self.stripe(&cred.id).lock();
        let before = self.installed_tags(&cred.id);
        let revision = next_revision(&cred)?;
        self.backend.commit(&Change {
            write: Some(Write::Put(&cred)),
            event,
        })?;
        cred.revision = revision;
        self.write_epoch.fetch_add(1, Ordering::AcqRel);
        for s in &cred.secrets {
            if self.negative.remove_sync(&s.lookup) {
                // Saturating: a tag inserted between a clear and the count's reset was not
                // counted, and must not wrap the count when it is removed.
                let _ = self
                    .negative_len
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
            }
        }
        self.install(&cred, before.as_deref());
        Ok(Arc::new(cred))
    }

    /// Deletes `id` if its stored revision is `revision`.
    pub fn delete(&self, id: &CredentialId, revision: u64) -> Result<(), StoreError> {
        self.delete_with(id, revision, None)
    }

    /// [`IndexedStore::delete`] with the audit event that records it, in one write.
    pub fn delete_with(
        &self,
        id: &CredentialId,
        revision: u64,
        event: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        let _w = self.stripe(id).lock();
        let before = self.installed_tags(id);
        self.backend.commit(&Change {
            write: Some(Write::Delete { id, revision }),
            event,
        })?;
        self.write_epoch.fetch_add(1, Ordering::AcqRel);
        self.uninstall(id, before.as_deref());
        Ok(())
    }

    fn stripe(&self, id: &CredentialId) -> &Mutex<()> {
        // Ids are random base62: folding the bytes spreads them evenly.
        let h = id.as_str().bytes().fold(0usize, |h, b| {
            h.wrapping_mul(31).wrapping_add(usize::from(b))
        });
        &self.stripes[h % self.stripes.len()]
    }

    /// The tags the index holds for `id`, `None` if it holds none. Callers hold the id's stripe
    /// lock. A shared backend's index remembers them; a local backend's record is exactly what
    /// the index installed (every write comes through here), so it is read from the backend. A
    /// record that cannot be read was not installed either (warm-up skips undecodable records).
    fn installed_tags(&self, id: &CredentialId) -> Option<Vec<LookupTag>> {
        match &self.installed {
            Some(installed) => installed.read_sync(id, |_, tags| tags.to_vec()),
            None => match self.backend.get(id) {
                Ok(Some(cred)) => Some(cred.secrets.iter().map(|s| s.lookup).collect()),
                Ok(None) | Err(_) => None,
            },
        }
    }

    fn profile(&self, cred: &Credential) -> Arc<Profile> {
        self.profiles.intern(Profile {
            account: cred.account.clone(),
            environment: cred.environment.clone(),
            permissions: cred.permissions.clone(),
            metadata: cred.metadata.clone(),
        })
    }

    /// Puts `cred` into the index, replacing the entries of `before` (the tags installed for
    /// its id, `None` if none), unless the index already holds a newer revision. Callers hold
    /// the id's stripe lock (or are alone, at warm-up): the check and the inserts are not one
    /// atomic step.
    fn install(&self, cred: &Credential, before: Option<&[LookupTag]>) {
        self.changing(|| self.install_entries(cred, before));
    }

    fn install_entries(&self, cred: &Credential, before: Option<&[LookupTag]>) {
        let hot = &self.hot;
        let newer = cred.secrets.iter().any(|s| {
            hot.peek_with(&s.lookup, |_, e| {
                e.id() == &cred.id && e.revision() > cred.revision
            })
            .unwrap_or(false)
        });
        if newer {
            return;
        }
        match before {
            Some(before) => {
                for tag in before {
                    if cred.secret_by_lookup(tag).is_none() {
                        hot.remove_sync(tag);
                    }
                }
            }
            None => {
                self.count.fetch_add(1, Ordering::Relaxed);
            }
        }
        let profile = self.profile(cred);
        for s in &cred.secrets {
            let entry = HotEntry::new(cred, s, &profile);
            // scc replaces an entry by inserting the new one and then marking the old one
            // removed: a reader scanning the bucket meanwhile may find the old, the new, or
            // neither; `confirm_miss` re-probes the last case.
            match hot.entry_sync(s.lookup) {
                Entry::Occupied(mut o) => o.update(entry),
                Entry::Vacant(v) => {
                    v.insert_entry(entry);
                }
            }
        }
        if let Some(installed) = &self.installed {
            let tags = cred.secrets.iter().map(|s| s.lookup).collect();
            installed.upsert_sync(cred.id.clone(), tags);
        }
    }

    fn uninstall(&self, id: &CredentialId, before: Option<&[LookupTag]>) {
        self.changing(|| self.uninstall_entries(id, before));
    }

    fn uninstall_entries(&self, id: &CredentialId, before: Option<&[LookupTag]>) {
        let Some(before) = before else { return };
        for tag in before {
            self.hot.remove_if_sync(tag, |e| e.id() == id);
        }
        if let Some(installed) = &self.installed {
            installed.remove_sync(id);
        }
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The indexed store is a [`Store`] too (reads through the hot index, writes through to the
/// backend), so that code generic over the trait, and the conformance suite, can use it.
/// The inherent methods of the same names take precedence in method calls.
impl Store for IndexedStore {
    fn get(&self, id: &CredentialId) -> Result<Option<Credential>, StoreError> {
        Ok(IndexedStore::get(self, id)?.map(Arc::unwrap_or_clone))
    }

    fn find_by_lookup(&self, lookup: &LookupTag) -> Result<Option<Credential>, StoreError> {
        match self.with_lookup(lookup, |e| e.map(|e| e.id().clone()))? {
            // The record, if it still holds the tag (a shared backend's index may lag).
            Some(id) => Ok(self
                .backend
                .get(&id)?
                .filter(|c| c.secret_by_lookup(lookup).is_some())),
            None => Ok(None),
        }
    }

    fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        IndexedStore::list(self, query)
    }

    fn commit(&self, change: &Change<'_>) -> Result<(), StoreError> {
        match change.write {
            Some(Write::Put(cred)) => self.put_with(cred.clone(), change.event).map(drop),
            Some(Write::Delete { id, revision }) => self.delete_with(id, revision, change.event),
            // The index holds no event.
            None => self.backend.commit(change),
        }
    }

    fn put(&self, cred: &Credential) -> Result<u64, StoreError> {
        Ok(IndexedStore::put(self, cred.clone())?.revision)
    }

    fn delete(&self, id: &CredentialId, revision: u64) -> Result<(), StoreError> {
        IndexedStore::delete(self, id, revision)
    }

    fn events(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.backend.events(after, limit)
    }

    fn last_event(&self) -> Result<Option<AuditEntry>, StoreError> {
        self.backend.last_event()
    }

    fn trim_events(&self, up_to: u64) -> Result<usize, StoreError> {
        self.backend.trim_events(up_to)
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

#[cfg(all(test, feature = "conformance"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::IndexedStore;
    use crate::MemoryStore;
    use crate::conformance::{credential, tags};

    /// While a change to the map seems to never end, a miss is answered from the backend: a
    /// held tag is found, an unknown one is not, and neither waits for the change.
    #[test]
    fn a_miss_during_an_endless_change_asks_the_backend() {
        let index = IndexedStore::open(Box::new(MemoryStore::new())).unwrap();
        let cred = index.put(credential("acc_1")).unwrap();
        let tag = tags(&cred)[0];
        let absent = tags(&credential("acc_2"))[0];
        // The map loses the entry and a change stays "in progress".
        assert!(index.hot.remove_sync(&tag));
        index.changes_started.fetch_add(1, Ordering::SeqCst);
        let id = |t| index.with_lookup(t, |e| e.map(|e| e.id().clone())).unwrap();
        assert_eq!(id(&tag).as_ref(), Some(&cred.id));
        assert_eq!(id(&absent), None);
        // Once the change is over, the map is trusted again: the (removed) entry is a miss.
        index.changes_finished.fetch_add(1, Ordering::SeqCst);
        assert_eq!(id(&tag), None);
    }
}
