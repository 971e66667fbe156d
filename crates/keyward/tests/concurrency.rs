#![allow(clippy::unwrap_used)]
//! Concurrent regenerates of one credential, and verification while regenerating.
//!
//! "No acknowledged key silently dropped", precisely: every regenerate that returned `Ok`
//! handed out a distinct version, and together with the first secret those versions are
//! exactly `1..=n` (no write was lost or applied twice); each acknowledged key is the secret of
//! the version it was returned with; and at the end (the clock does not move, so no grace
//! period ends) an acknowledged key of version `v` verifies as `v` unless at least
//! `max_live_secrets` later acknowledged versions exist, in which case it was pushed out by the
//! limit and is `Expired` — never `Unknown`, never anything else.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use keyward::core::{AccountId, CredentialId, Environment, KeyType, Timestamp};
use keyward::rotation::{ManualClock, RegenerateOptions, RotationError, RotationPolicy};
use keyward::{Config, EngineError, Keyward, NewKey, VerifyError};

/// Tests act as the local operator unless they say otherwise.
const OP: &keyward::Principal = &keyward::Principal::LocalOperator;

const T0: i64 = 1_700_000_000_000;

/// These tests race the limit's mechanism itself: each regenerate may end the grace an earlier
/// one promised (asked for explicitly; the default refuses, see `scenarios.rs`).
const ENDING: RegenerateOptions = RegenerateOptions {
    grace_period: None,
    activation_delay: None,
    end_earlier_grace: true,
};

#[test]
fn keyward_is_send_sync_clone() {
    fn assert_shareable<T: Send + Sync + Clone + 'static>() {}
    assert_shareable::<Keyward>();
    assert_shareable::<keyward::Verified>();
}

#[derive(Clone, Copy, Debug)]
enum Store {
    Memory,
    #[cfg(feature = "sled")]
    Sled,
    #[cfg(feature = "redb")]
    Redb,
}

impl Store {
    /// Whether a reopen finds what was written.
    fn persists(self) -> bool {
        match self {
            Store::Memory => false,
            #[cfg(feature = "sled")]
            Store::Sled => true,
            #[cfg(feature = "redb")]
            Store::Redb => true,
        }
    }
}

// `dir` is only for the stores that persist.
#[cfg_attr(not(any(feature = "sled", feature = "redb")), allow(unused_variables))]
fn open(store: Store, dir: &Path, policy: RotationPolicy) -> Keyward {
    let config = match store {
        Store::Memory => Config::memory(),
        #[cfg(feature = "sled")]
        Store::Sled => Config::sled(dir.join("store")).with_development_pepper(),
        #[cfg(feature = "redb")]
        Store::Redb => Config::redb(dir.join("keyward.redb")).with_development_pepper(),
    };
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(T0)));
    Keyward::open(config.with_clock(clock).with_rotation(policy)).unwrap()
}

fn new_key() -> NewKey {
    NewKey::new(
        "acc_1".parse::<AccountId>().unwrap(),
        KeyType::Secret,
        Environment::Production,
        "concurrent".parse().unwrap(),
    )
}

struct Acked {
    version: u32,
    key: String,
}

/// `threads` threads regenerate one credential `per_thread` times each, all at once.
fn regenerate_race(store: Store, threads: usize, per_thread: usize, policy: RotationPolicy) {
    let dir = tempfile::tempdir().unwrap();
    let limit = policy.max_live_secrets.max(1);
    let grace_zero = policy.grace_period.is_zero();
    let kw = open(store, dir.path(), policy);
    let first = kw.issue(OP, new_key()).unwrap();
    let id = first.credential.id.clone();
    let acked = Mutex::new(vec![Acked {
        version: 1,
        key: first.key.expose_secret().to_owned(),
    }]);
    let contended = AtomicUsize::new(0);
    let barrier = Barrier::new(threads);
    thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let kw = kw.clone();
                barrier.wait();
                for _ in 0..per_thread {
                    match kw.regenerate(OP, &id, ENDING) {
                        Ok(issued) => {
                            let latest = issued.credential.latest_secret().unwrap();
                            // The key returned is the secret of the version returned.
                            let parsed = kw.format().parse(issued.key.expose_secret()).unwrap();
                            assert_eq!(parsed.lookup(), latest.lookup);
                            assert_eq!(issued.credential.id, id);
                            acked.lock().unwrap().push(Acked {
                                version: latest.version,
                                key: issued.key.expose_secret().to_owned(),
                            });
                        }
                        // Allowed: nothing was changed by this call.
                        Err(EngineError::Contended(c)) => {
                            assert_eq!(c, id);
                            contended.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("regenerate failed: {e:?}"),
                    }
                }
            });
        }
    });
    let acked = acked.into_inner().unwrap();
    let contended = contended.into_inner();
    assert_eq!(acked.len() - 1 + contended, threads * per_thread);
    check_consistent(&kw, &id, &acked, limit, grace_zero);
    // Contention costs retries, not failures, at this scale.
    assert_eq!(
        contended,
        0,
        "{contended} of {} regenerates gave up",
        threads * per_thread
    );
    if store.persists() {
        // And the same after a reopen.
        let policy = kw.rotation_policy().clone();
        drop(kw);
        let kw = open(store, dir.path(), policy);
        check_consistent(&kw, &id, &acked, limit, grace_zero);
    }
}

fn check_consistent(
    kw: &Keyward,
    id: &CredentialId,
    acked: &[Acked],
    limit: usize,
    grace_zero: bool,
) {
    let versions: BTreeSet<u32> = acked.iter().map(|a| a.version).collect();
    assert_eq!(
        versions.len(),
        acked.len(),
        "two regenerates got the same version"
    );
    let newest = u32::try_from(acked.len()).unwrap();
    assert_eq!(
        versions,
        (1..=newest).collect(),
        "versions are not 1..={newest}"
    );
    let stored = kw.get(OP, id).unwrap();
    assert_eq!(stored.latest_secret().unwrap().version, newest);
    assert_eq!(
        stored.secrets.len(),
        acked.len(),
        "a stored secret no one was given"
    );
    let live = keyward::rotation::live_secrets(&stored, kw.now()).count();
    let limit = if grace_zero { 1 } else { limit };
    assert_eq!(live, limit.min(acked.len()), "live secrets");
    for a in acked {
        let got = kw.verify(&a.key).map(|v| v.version());
        // The newest `limit` versions are live; each older one has `limit` later
        // acknowledged versions that pushed it out (or, with no grace, ended it at once).
        if a.version + u32::try_from(limit).unwrap() > newest {
            assert_eq!(
                got,
                Ok(a.version),
                "acknowledged v{} of {newest}",
                a.version
            );
        } else {
            assert_eq!(got, Err(VerifyError::Expired), "v{} of {newest}", a.version);
        }
    }
}

#[test]
fn two_threads_regenerating_end_consistent() {
    regenerate_race(Store::Memory, 2, 200, RotationPolicy::default());
}

#[test]
fn eight_threads_regenerating_end_consistent() {
    regenerate_race(Store::Memory, 8, 50, RotationPolicy::default());
}

#[test]
fn eight_threads_with_three_live_secrets_and_no_grace() {
    let three = RotationPolicy {
        max_live_secrets: 3,
        ..RotationPolicy::default()
    };
    regenerate_race(Store::Memory, 8, 30, three);
    let no_grace = RotationPolicy {
        grace_period: Duration::ZERO,
        ..RotationPolicy::default()
    };
    regenerate_race(Store::Memory, 8, 30, no_grace);
}

#[cfg(feature = "sled")]
#[test]
fn two_threads_regenerating_end_consistent_on_sled() {
    regenerate_race(Store::Sled, 2, 15, RotationPolicy::default());
}

#[cfg(feature = "sled")]
#[test]
fn eight_threads_regenerating_end_consistent_on_sled() {
    regenerate_race(Store::Sled, 8, 4, RotationPolicy::default());
}

/// One writer regenerates while readers verify the newest acknowledged key (and the first
/// one): never `Unknown`. With a limit high enough to keep every secret, every acknowledged key
/// must verify; with the default limit, a key may only be `Expired` once the regenerate
/// `max_live_secrets` versions newer is acknowledged (or in flight: then it is acknowledged
/// before the writer finishes).
fn verify_while_regenerating(store: Store, regenerates: usize, limit: usize) {
    let dir = tempfile::tempdir().unwrap();
    let policy = RotationPolicy {
        max_live_secrets: limit,
        ..RotationPolicy::default()
    };
    let kw = open(store, dir.path(), policy);
    let first = kw.issue(OP, new_key()).unwrap();
    let id = first.credential.id.clone();
    let first_key = first.key.expose_secret().to_owned();
    let current = Mutex::new((1u32, first_key.clone()));
    let done = AtomicBool::new(false);
    let verified = AtomicUsize::new(0);
    let l = u32::try_from(limit).unwrap();
    thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..regenerates {
                let issued = kw.regenerate(OP, &id, ENDING).unwrap();
                let v = issued.credential.latest_secret().unwrap().version;
                *current.lock().unwrap() = (v, issued.key.expose_secret().to_owned());
            }
            done.store(true, Ordering::SeqCst);
        });
        for _ in 0..3 {
            s.spawn(|| {
                let kw = kw.clone();
                while !done.load(Ordering::SeqCst) {
                    let (v, key) = current.lock().unwrap().clone();
                    match kw.verify(&key).map(|x| x.version()) {
                        Ok(got) => assert_eq!(got, v),
                        Err(VerifyError::Expired) => {
                            // Pushed out by a write that may not be acknowledged yet: wait for
                            // the writer to acknowledge it (or to finish without having).
                            loop {
                                let finished = done.load(Ordering::SeqCst);
                                let acked = current.lock().unwrap().0;
                                if acked >= v + l {
                                    break;
                                }
                                assert!(!finished, "v{v} expired but only v{acked} acknowledged");
                                thread::yield_now();
                            }
                        }
                        Err(e) => panic!("acknowledged v{v}: {e:?}"),
                    }
                    match kw.verify(&first_key) {
                        Ok(x) => assert_eq!(x.version(), 1),
                        Err(VerifyError::Expired) => assert!(l < 1_000),
                        Err(e) => panic!("first key: {e:?}"),
                    }
                    verified.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    assert!(verified.into_inner() > 0, "the readers never ran");
}

#[test]
fn verify_while_regenerating_never_sees_unknown() {
    verify_while_regenerating(Store::Memory, 300, 1_000);
    verify_while_regenerating(Store::Memory, 300, 2);
}

#[cfg(feature = "sled")]
#[test]
fn verify_while_regenerating_never_sees_unknown_on_sled() {
    verify_while_regenerating(Store::Sled, 20, 1_000);
    verify_while_regenerating(Store::Sled, 20, 2);
}

#[cfg(feature = "redb")]
#[test]
fn eight_threads_regenerating_end_consistent_on_redb() {
    regenerate_race(Store::Redb, 8, 4, RotationPolicy::default());
}

#[cfg(feature = "redb")]
#[test]
fn verify_while_regenerating_never_sees_unknown_on_redb() {
    verify_while_regenerating(Store::Redb, 20, 1_000);
    verify_while_regenerating(Store::Redb, 20, 2);
}

/// A regenerate racing a revoke never brings the key back: once the revoke is acknowledged,
/// every secret ever acknowledged is revoked, and later regenerates are refused.
#[test]
fn regenerate_racing_revoke_never_resurrects_the_key() {
    for _ in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let kw = open(Store::Memory, dir.path(), RotationPolicy::default());
        let first = kw.issue(OP, new_key()).unwrap();
        let id = first.credential.id.clone();
        let keys = Mutex::new(vec![first.key.expose_secret().to_owned()]);
        let barrier = Barrier::new(3);
        thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    barrier.wait();
                    for _ in 0..20 {
                        match kw.regenerate(OP, &id, ENDING) {
                            Ok(i) => keys.lock().unwrap().push(i.key.expose_secret().to_owned()),
                            Err(EngineError::Rotation(RotationError::Revoked)) => {}
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                });
            }
            s.spawn(|| {
                barrier.wait();
                thread::yield_now();
                kw.revoke(OP, &id).unwrap();
            });
        });
        let stored = kw.get(OP, &id).unwrap();
        assert!(stored.secrets.iter().all(|s| s.revoked_at.is_some()));
        for k in keys.into_inner().unwrap() {
            assert_eq!(
                kw.verify(&k).map(|v| v.version()),
                Err(VerifyError::Revoked)
            );
        }
        assert!(matches!(
            kw.regenerate(OP, &id, ENDING),
            Err(EngineError::Rotation(RotationError::Revoked))
        ));
    }
}
