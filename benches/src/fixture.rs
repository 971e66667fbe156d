//! Deterministic fixtures: credentials, the keys presented to the verifier, and engines holding
//! 10k–1M credentials, built in seconds rather than through one durable `issue()` per key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use keyward::{Backend, Config, Keyward};
use keyward_core::{
    AccountId, Credential, CredentialId, Digest, Environment, KeyFormat, KeyType, LookupTag, Name,
    Pepper, Permission, PermissionSet, SecretVersion, Timestamp, checksum,
};
use keyward_store::{MemoryStore, RedbStore, SledStore, Store};

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// Seed of the stored credentials.
pub const SEED: u64 = 0x6b65_7977_6172_6431;
/// Seed of the well-formed keys that no credential holds.
pub const UNKNOWN_SEED: u64 = 0x756e_6b6e_6f77_6e31;
/// Seed of the shuffles.
pub const SHUFFLE_SEED: u64 = 0x7368_7566_666c_6531;
/// Most keys in each derived set (wrong secret, unknown, bad checksum, malformed). They are
/// drawn from the shuffled hits, so they still spread over the whole index.
pub const DERIVED_MAX: usize = 1 << 18;
/// Bumped whenever the generated credentials change, so stale cached sled stores are rebuilt.
pub const FIXTURE_VERSION: u32 = 1;
/// Number of accounts the credentials are spread over.
pub const ACCOUNTS: usize = 1000;

/// The default sizes: 10k and 1M credentials.
pub const DEFAULT_SIZES: [usize; 2] = [10_000, 1_000_000];

/// Sizes to bench: `KEYWARD_BENCH_SIZES=10000,1000000` (default both).
pub fn sizes() -> Vec<usize> {
    std::env::var("KEYWARD_BENCH_SIZES")
        .ok()
        .map(|v| {
            v.split(',')
                .filter_map(|s| s.trim().replace('_', "").parse().ok())
                .filter(|&n: &usize| n > 0)
                .collect::<Vec<_>>()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_SIZES.to_vec())
}

/// The largest configured size (used by benches that run at one size only).
pub fn largest_size() -> usize {
    sizes().into_iter().max().unwrap_or(DEFAULT_SIZES[1])
}

/// A storage backend under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// [`MemoryStore`].
    Memory,
    /// [`SledStore`].
    Sled,
    /// [`RedbStore`].
    Redb,
}

impl BackendKind {
    /// `memory`, `sled` or `redb`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Sled => "sled",
            Self::Redb => "redb",
        }
    }
}

/// Backends to bench: `KEYWARD_BENCH_BACKENDS=memory,sled,redb` (default `memory,sled`).
pub fn backends() -> Vec<BackendKind> {
    let v = std::env::var("KEYWARD_BENCH_BACKENDS").unwrap_or_else(|_| "memory,sled".into());
    v.split(',')
        .filter_map(|s| match s.trim() {
            "memory" => Some(BackendKind::Memory),
            "sled" => Some(BackendKind::Sled),
            "redb" => Some(BackendKind::Redb),
            _ => None,
        })
        .collect()
}

/// Shorter criterion runs: `KEYWARD_BENCH_QUICK=1` (for smoke tests; noisy).
pub fn quick() -> bool {
    std::env::var_os("KEYWARD_BENCH_QUICK").is_some_and(|v| v != "0")
}

/// Warm-up and measurement time per benchmark.
pub fn timing() -> (Duration, Duration) {
    if quick() {
        (Duration::from_millis(300), Duration::from_millis(700))
    } else {
        (Duration::from_secs(1), Duration::from_secs(3))
    }
}

/// The benches' pepper.
pub fn pepper() -> Pepper {
    Pepper::from_bytes([0x5a; 32])
}

/// The fixed creation time of every fixture credential (2025-01-01T00:00:00Z).
pub fn epoch() -> Timestamp {
    Timestamp::from_millis(1_735_689_600_000)
}

/// The three permissions every fixture credential holds.
pub fn permissions() -> PermissionSet {
    PermissionSet::parse(["business:read", "charges:write", "payment-method:*"])
        .expect("valid permissions")
}

/// The permission `verify_for` asks for: granted by the last entry of the set (a wildcard), so
/// the check walks the whole set.
pub fn required_permission() -> Permission {
    "payment-method:write".parse().expect("valid permission")
}

/// A fresh fixture RNG.
pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// Fisher–Yates with a seeded generator.
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut rng = rng(seed);
    for i in (1..items.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// One fixture credential: a secret key in production, three permissions, no metadata.
pub fn credential(
    id: CredentialId,
    account: usize,
    lookup: LookupTag,
    digest: Digest,
) -> Credential {
    let now = epoch();
    Credential {
        id,
        account: format!("acc_{account:05}").parse().expect("valid account"),
        environment: Environment::Production,
        key_type: KeyType::Secret,
        name: "bench key".parse::<Name>().expect("valid name"),
        permissions: permissions(),
        metadata: Default::default(),
        created_at: now,
        modified_at: now,
        expires_at: None,
        enabled: true,
        revision: 0,
        secrets: vec![SecretVersion {
            version: 1,
            lookup,
            digest,
            not_before: now,
            not_after: None,
            created_at: now,
            revoked_at: None,
        }],
    }
}

/// Calls `f` with each of `n` credentials made from `seed`, and its plaintext key. The same
/// seed always yields the same credentials and keys.
pub fn for_each_credential(n: usize, seed: u64, mut f: impl FnMut(Credential, String)) {
    let format = KeyFormat::default();
    let pepper = pepper();
    let mut rng = rng(seed);
    for i in 0..n {
        let id = CredentialId::random_with(&mut rng);
        let g = format
            .generate_with(&mut rng, KeyType::Secret, &Environment::Production, &pepper)
            .expect("production keys can be generated");
        let cred = credential(id, i % ACCOUNTS, g.lookup, g.digest);
        f(cred, g.key.expose_secret().to_owned());
    }
}

/// `n` well-formed keys (valid checksum) that no fixture credential holds.
pub fn unknown_keys(n: usize) -> Vec<String> {
    let format = KeyFormat::default();
    let pepper = pepper();
    let mut rng = rng(UNKNOWN_SEED);
    (0..n)
        .map(|_| {
            format
                .generate_with(&mut rng, KeyType::Secret, &Environment::Production, &pepper)
                .expect("production keys can be generated")
                .key
                .expose_secret()
                .to_owned()
        })
        .collect()
}

/// A different base62 character than `c`.
fn other_char(c: u8) -> u8 {
    if c == b'a' { b'b' } else { b'a' }
}

/// `key` with its last secret character changed and the checksum recomputed: a well-formed key
/// whose lookup tag is known but whose secret is wrong.
pub fn wrong_secret(key: &str) -> String {
    let mut b = key.as_bytes().to_vec();
    let sum_at = b.len() - keyward_core::CHECKSUM_LEN;
    b[sum_at - 1] = other_char(b[sum_at - 1]);
    let sum = checksum(&b[..sum_at]);
    b[sum_at..].copy_from_slice(&sum);
    String::from_utf8(b).expect("ascii")
}

/// `key` with its last checksum character changed.
pub fn bad_checksum(key: &str) -> String {
    let mut b = key.as_bytes().to_vec();
    let last = b.len() - 1;
    b[last] = other_char(b[last]);
    String::from_utf8(b).expect("ascii")
}

/// A malformed variant of `key`, four kinds in turn: a character outside the alphabet, a
/// truncated body, no separators at all, and an over-long string.
pub fn malformed(key: &str, i: usize) -> String {
    match i % 4 {
        0 => {
            let mut b = key.as_bytes().to_vec();
            let mid = b.len() / 2;
            b[mid] = b'-';
            String::from_utf8(b).expect("ascii")
        }
        1 => key[..key.len() - 1].to_owned(),
        2 => key.replace('_', ""),
        _ => format!("{key}{key}{key}"),
    }
}

/// The keys presented to a verifier, each set shuffled.
#[derive(Debug, Clone)]
pub struct Keys {
    /// Valid keys of stored credentials (all of them).
    pub hit: Vec<String>,
    /// Known lookup tag, wrong secret, valid checksum.
    pub wrong_secret: Vec<String>,
    /// Well-formed, valid checksum, no credential holds them.
    pub unknown: Vec<String>,
    /// Valid structure, wrong checksum.
    pub bad_checksum: Vec<String>,
    /// Not a key.
    pub malformed: Vec<String>,
}

impl Keys {
    /// Derives every set from the valid keys (shuffled here).
    pub fn from_hits(mut hit: Vec<String>) -> Self {
        shuffle(&mut hit, SHUFFLE_SEED);
        let derived = hit.len().min(DERIVED_MAX);
        let base = &hit[..derived];
        Self {
            wrong_secret: base.iter().map(|k| wrong_secret(k)).collect(),
            unknown: unknown_keys(derived),
            bad_checksum: base.iter().map(|k| bad_checksum(k)).collect(),
            malformed: base
                .iter()
                .enumerate()
                .map(|(i, k)| malformed(k, i))
                .collect(),
            // Copied in presentation order, after the derived sets: the originals were
            // allocated between the credentials while they were generated, spread over far
            // more memory than the derived sets, which made reading a hit key cost more
            // than reading any other set's.
            hit: compact(&hit),
        }
    }
}

/// `keys` copied one after another, so that every key set sits in memory alike.
pub fn compact(keys: &[String]) -> Vec<String> {
    keys.iter().map(|k| k.as_str().to_owned()).collect()
}

/// An engine holding `n` fixture credentials, and the keys to present to it.
pub struct Fixture {
    /// The engine.
    pub engine: Keyward,
    /// The keys.
    pub keys: Keys,
    /// Its backend.
    pub backend: BackendKind,
    /// Number of credentials.
    pub n: usize,
}

/// The workspace's `target/` directory (or `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Where the benches keep their data (cached sled stores, scratch stores).
pub fn data_dir() -> PathBuf {
    target_dir().join("keyward-bench")
}

/// The engine configuration of every fixture engine.
pub fn config(backend: Backend) -> Config {
    Config::new(backend).with_pepper(pepper())
}

/// A memory store holding `n` fixture credentials, and their keys (unshuffled).
pub fn memory_store(n: usize) -> (MemoryStore, Vec<String>) {
    let store = MemoryStore::new();
    let mut keys = Vec::with_capacity(n);
    for_each_credential(n, SEED, |cred, key| {
        store.put(&cred).expect("fresh fixture credential");
        keys.push(key);
    });
    (store, keys)
}

/// An engine on a memory backend with `n` credentials.
pub fn memory_fixture(n: usize) -> Fixture {
    let (store, keys) = memory_store(n);
    let engine = Keyward::open(config(Backend::Custom(Box::new(store)))).expect("open memory");
    Fixture {
        engine,
        keys: Keys::from_hits(keys),
        backend: BackendKind::Memory,
        n,
    }
}

/// The cached sled store of `n` fixture credentials (the sled database is its `db`).
pub fn sled_dir(n: usize) -> PathBuf {
    data_dir().join(format!("sled-{n}"))
}

fn marker(n: usize) -> String {
    format!("keyward-bench fixture v{FIXTURE_VERSION} n={n} seed={SEED:#x}\n")
}

/// The keys of the `n` fixture credentials, unshuffled.
fn fixture_keys(n: usize) -> Vec<String> {
    let mut keys = Vec::with_capacity(n);
    for_each_credential(n, SEED, |_, key| keys.push(key));
    keys
}

/// Makes sure `sled_dir(n)` holds exactly the `n` fixture credentials, building it if it is
/// missing or stale, and returns the keys (unshuffled).
///
/// [`SledStore::put`] flushes and fsyncs every write (as it must), which would take hours for
/// 1M keys, so the fixture is written straight into sled's trees in `SledStore`'s layout (the
/// record codec of `keyward-store`, the lookup and account indexes), in batches, with one flush
/// at the end; then it is opened with [`SledStore::open`] and checked with
/// [`SledStore::check_indexes`].
pub fn ensure_sled_store(n: usize) -> Result<Vec<String>, String> {
    ensure_sled_store_in(&sled_dir(n), n)
}

/// [`ensure_sled_store`] in `dir` instead of [`sled_dir`] (the sled database is `dir/db`).
pub fn ensure_sled_store_in(dir: &Path, n: usize) -> Result<Vec<String>, String> {
    let done = dir.join("keyward-bench.done");
    if std::fs::read_to_string(&done).is_ok_and(|m| m == marker(n)) {
        return Ok(fixture_keys(n));
    }
    let mut keys = Vec::with_capacity(n);
    let dir = dir.to_path_buf();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let db_path = dir.join("db");
    {
        // Creates the store (format version, trees) the way the engine does.
        drop(SledStore::open(&db_path).map_err(|e| e.to_string())?);
        let db = sled::Config::new()
            .path(&db_path)
            .open()
            .map_err(|e| e.to_string())?;
        let tree = |name: &str| db.open_tree(name).map_err(|e| e.to_string());
        let (records, lookup, accounts) = (
            tree(keyward_store::RECORDS_TREE)?,
            tree(keyward_store::LOOKUP_TREE)?,
            tree(keyward_store::ACCOUNTS_TREE)?,
        );
        let mut batches = (
            sled::Batch::default(),
            sled::Batch::default(),
            sled::Batch::default(),
        );
        let mut pending = 0;
        let mut failed: Option<String> = None;
        let flush = |b: &mut (sled::Batch, sled::Batch, sled::Batch)| -> Result<(), String> {
            let (r, l, a) = std::mem::take(b);
            records.apply_batch(r).map_err(|e| e.to_string())?;
            lookup.apply_batch(l).map_err(|e| e.to_string())?;
            accounts.apply_batch(a).map_err(|e| e.to_string())
        };
        for_each_credential(n, SEED, |mut cred, key| {
            cred.revision = 1;
            let id = cred.id.as_str().as_bytes();
            match keyward_store::encode_credential(&cred) {
                Ok(bytes) => batches.0.insert(id, bytes),
                Err(e) => failed = Some(e.to_string()),
            }
            batches.1.insert(cred.secrets[0].lookup.as_bytes(), id);
            let mut acct = cred.account.as_str().as_bytes().to_vec();
            acct.push(0);
            acct.extend_from_slice(id);
            batches.2.insert(acct, sled::IVec::default());
            keys.push(key);
            pending += 1;
            if pending == 10_000 {
                pending = 0;
                if let Err(e) = flush(&mut batches) {
                    failed = Some(e);
                }
            }
        });
        flush(&mut batches)?;
        if let Some(e) = failed {
            return Err(format!("building the sled fixture: {e}"));
        }
        db.flush().map_err(|e| e.to_string())?;
    }
    let store = SledStore::open(&db_path).map_err(|e| e.to_string())?;
    let problems = store.check_indexes().map_err(|e| e.to_string())?;
    if !problems.is_empty() {
        return Err(format!(
            "the sled fixture does not match SledStore's layout: {} problems, first {:?}",
            problems.len(),
            problems[0]
        ));
    }
    drop(store);
    std::fs::write(&done, marker(n)).map_err(|e| e.to_string())?;
    Ok(keys)
}

/// An engine on the cached sled store of `n` credentials.
pub fn sled_fixture(n: usize) -> Result<Fixture, String> {
    let keys = ensure_sled_store(n)?;
    let engine =
        Keyward::open(config(Backend::Sled(sled_dir(n).join("db")))).map_err(|e| e.to_string())?;
    if engine.store().len() != n {
        return Err(format!(
            "sled fixture holds {} credentials, expected {n}",
            engine.store().len()
        ));
    }
    Ok(Fixture {
        engine,
        keys: Keys::from_hits(keys),
        backend: BackendKind::Sled,
        n,
    })
}

/// The directory of the cached redb store of `n` fixture credentials.
pub fn redb_dir(n: usize) -> PathBuf {
    data_dir().join(format!("redb-{n}"))
}

/// The redb file of the store in `dir`.
pub fn redb_file(dir: &Path) -> PathBuf {
    dir.join("keyward.redb")
}

fn redb_marker(n: usize) -> String {
    format!(
        "keyward-bench redb fixture v{FIXTURE_VERSION} format={} n={n} seed={SEED:#x}\n",
        keyward_store::FORMAT_VERSION
    )
}

/// Makes sure `redb_dir(n)` holds exactly the `n` fixture credentials, building it if it is
/// missing or stale, and returns the keys (unshuffled).
///
/// [`RedbStore::put`] commits every write durably (two `fsync`s), so, as for sled, the fixture
/// is written straight into the store's tables ([`keyward_store::REDB_RECORDS_TABLE`] and the
/// two index tables, the record codec of `keyward-store`) in one redb write transaction,
/// committed once; then it is opened with [`RedbStore::open`] (which checks every page) and
/// checked with [`RedbStore::check_indexes`] and a count of its records.
pub fn ensure_redb_store(n: usize) -> Result<Vec<String>, String> {
    ensure_redb_store_in(&redb_dir(n), n)
}

/// [`ensure_redb_store`] in `dir` instead of [`redb_dir`] (the store is [`redb_file`]`(dir)`).
pub fn ensure_redb_store_in(dir: &Path, n: usize) -> Result<Vec<String>, String> {
    use redb::{Durability, ReadableTableMetadata};
    let done = dir.join("keyward-bench.done");
    if std::fs::read_to_string(&done).is_ok_and(|m| m == redb_marker(n)) {
        return Ok(fixture_keys(n));
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let path = redb_file(dir);
    // Creates the store (format version, tables) the way the engine does.
    drop(RedbStore::open(&path).map_err(|e| e.to_string())?);
    let mut keys = Vec::with_capacity(n);
    {
        let db = redb::Database::create(&path).map_err(redb_error("opening"))?;
        let mut txn = db.begin_write().map_err(redb_error("beginning"))?;
        txn.set_durability(Durability::Immediate)
            .map_err(redb_error("durability"))?;
        {
            let mut records = txn
                .open_table(keyward_store::REDB_RECORDS_TABLE)
                .map_err(redb_error("opening a table"))?;
            let mut lookup = txn
                .open_table(keyward_store::REDB_LOOKUP_TABLE)
                .map_err(redb_error("opening a table"))?;
            let mut accounts = txn
                .open_table(keyward_store::REDB_ACCOUNTS_TABLE)
                .map_err(redb_error("opening a table"))?;
            let mut failed: Option<String> = None;
            for_each_credential(n, SEED, |mut cred, key| {
                if failed.is_some() {
                    return;
                }
                cred.revision = 1;
                let id = cred.id.as_str().as_bytes();
                let mut acct = cred.account.as_str().as_bytes().to_vec();
                acct.push(0);
                acct.extend_from_slice(id);
                let written = keyward_store::encode_credential(&cred)
                    .map_err(|e| e.to_string())
                    .and_then(|bytes| {
                        records
                            .insert(id, bytes.as_slice())
                            .and_then(|_| {
                                lookup.insert(cred.secrets[0].lookup.as_bytes().as_slice(), id)
                            })
                            .and_then(|_| accounts.insert(acct.as_slice(), ()))
                            .map(drop)
                            .map_err(|e| e.to_string())
                    });
                if let Err(e) = written {
                    failed = Some(e);
                }
                keys.push(key);
            });
            if let Some(e) = failed {
                return Err(format!("building the redb fixture: {e}"));
            }
            let held = records.len().map_err(redb_error("counting"))?;
            if held != n as u64 {
                return Err(format!(
                    "the redb fixture holds {held} records, expected {n}"
                ));
            }
        }
        txn.commit().map_err(redb_error("committing"))?;
    }
    let store = RedbStore::open(&path).map_err(|e| e.to_string())?;
    let problems = store.check_indexes().map_err(|e| e.to_string())?;
    if !problems.is_empty() {
        return Err(format!(
            "the redb fixture does not match RedbStore's layout: {} problems, first {:?}",
            problems.len(),
            problems[0]
        ));
    }
    let mut held = 0;
    let mut undecodable = None;
    store
        .scan(&mut |r| match r {
            Ok(_) => held += 1,
            Err(e) => undecodable = Some(e.to_string()),
        })
        .map_err(|e| e.to_string())?;
    if let Some(e) = undecodable {
        return Err(format!("the redb fixture holds an undecodable record: {e}"));
    }
    if held != n {
        return Err(format!(
            "the redb fixture holds {held} credentials, expected {n}"
        ));
    }
    drop(store);
    std::fs::write(&done, redb_marker(n)).map_err(|e| e.to_string())?;
    Ok(keys)
}

/// Names what failed in a redb error.
fn redb_error<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> String {
    move |e| format!("redb fixture, {what}: {e}")
}

/// An engine on the cached redb store of `n` credentials.
pub fn redb_fixture(n: usize) -> Result<Fixture, String> {
    let keys = ensure_redb_store(n)?;
    let engine =
        Keyward::open(config(Backend::Redb(redb_file(&redb_dir(n))))).map_err(|e| e.to_string())?;
    if engine.store().len() != n {
        return Err(format!(
            "redb fixture holds {} credentials, expected {n}",
            engine.store().len()
        ));
    }
    Ok(Fixture {
        engine,
        keys: Keys::from_hits(keys),
        backend: BackendKind::Redb,
        n,
    })
}

/// The engine backend of the cached store of `n` credentials on `kind` (`None` for memory,
/// which caches nothing). Does not build the store: see [`ensure_store`].
pub fn cached_backend(kind: BackendKind, n: usize) -> Option<Backend> {
    match kind {
        BackendKind::Memory => None,
        BackendKind::Sled => Some(Backend::Sled(sled_dir(n).join("db"))),
        BackendKind::Redb => Some(Backend::Redb(redb_file(&redb_dir(n)))),
    }
}

/// Whether the cached store of `n` credentials on `kind` is complete (its build finished and
/// wrote the marker of this fixture version), so [`ensure_store`] will not rebuild it. Memory
/// caches nothing.
pub fn store_is_cached(kind: BackendKind, n: usize) -> bool {
    let (dir, want) = match kind {
        BackendKind::Memory => return false,
        BackendKind::Sled => (sled_dir(n), marker(n)),
        BackendKind::Redb => (redb_dir(n), redb_marker(n)),
    };
    std::fs::read_to_string(dir.join("keyward-bench.done")).is_ok_and(|m| m == want)
}

/// Builds the cached store of `n` credentials on `kind` if needed ([`ensure_sled_store`],
/// [`ensure_redb_store`]) and returns the keys (unshuffled); for memory, just the keys.
pub fn ensure_store(kind: BackendKind, n: usize) -> Result<Vec<String>, String> {
    match kind {
        BackendKind::Memory => Ok(fixture_keys(n)),
        BackendKind::Sled => ensure_sled_store(n),
        BackendKind::Redb => ensure_redb_store(n),
    }
}

/// An engine on `backend` with `n` credentials.
pub fn fixture(backend: BackendKind, n: usize) -> Result<Fixture, String> {
    match backend {
        BackendKind::Memory => Ok(memory_fixture(n)),
        BackendKind::Sled => sled_fixture(n),
        BackendKind::Redb => redb_fixture(n),
    }
}

/// An account id of the fixture.
pub fn account(i: usize) -> AccountId {
    format!("acc_{:05}", i % ACCOUNTS)
        .parse()
        .expect("valid account")
}
