//! The benches' inputs and baselines mean what `docs/BENCHMARKS.md` says they mean: every key
//! set draws the answer it is named after, each baseline accepts exactly its own valid keys,
//! and the report's verdicts follow the targets' bounds. A bench whose "wrong secret" keys were
//! in fact malformed, or whose floor accepted anything, would measure the wrong thing.
#![allow(clippy::unwrap_used, missing_docs)]

use keyward::VerifyError;
use keyward::core::FormatError;
use keyward_benches::baselines::{Floor, Naive, Peer};
use keyward_benches::fixture::{self, for_each_credential};
use keyward_benches::report::{self, Medians, Verdict};

const N: usize = 300;

#[test]
fn every_key_set_draws_its_own_answer() {
    let fx = fixture::memory_fixture(N);
    let kw = &fx.engine;
    assert_eq!(fx.keys.hit.len(), N);
    for k in &fx.keys.hit {
        let v = kw.verify(k).unwrap();
        assert_eq!(v.permissions().len(), 3);
        kw.verify_for(
            k,
            Some(&keyward::core::Environment::Production),
            Some(&fixture::required_permission()),
        )
        .unwrap();
    }
    for k in &fx.keys.wrong_secret {
        assert_eq!(kw.verify(k).unwrap_err(), VerifyError::Unknown, "{k}");
        // Same lookup tag as a stored key: the probe finds an entry and the digest decides.
        let parsed = kw.format().parse(k).unwrap();
        assert!(
            fx.keys
                .hit
                .iter()
                .any(|h| h.contains(parsed.lookup().as_str()))
        );
    }
    for k in &fx.keys.unknown {
        assert_eq!(kw.verify(k).unwrap_err(), VerifyError::Unknown);
    }
    for k in &fx.keys.bad_checksum {
        assert_eq!(
            kw.verify(k).unwrap_err(),
            VerifyError::Malformed(FormatError::BadChecksum)
        );
    }
    let mut kinds = std::collections::BTreeSet::new();
    for k in &fx.keys.malformed {
        match kw.verify(k).unwrap_err() {
            VerifyError::Malformed(e) => {
                assert_ne!(e, FormatError::BadChecksum, "{k}");
                kinds.insert(format!("{e:?}"));
            }
            other => panic!("{k}: {other:?}"),
        }
    }
    assert!(
        kinds.len() >= 3,
        "malformed mix has too few kinds: {kinds:?}"
    );
}

#[test]
fn fixture_credentials_are_reproducible() {
    let mut a = Vec::new();
    let mut b = Vec::new();
    for_each_credential(20, fixture::SEED, |_, k| a.push(k));
    for_each_credential(20, fixture::SEED, |_, k| b.push(k));
    assert_eq!(a, b);
    let mut c = Vec::new();
    for_each_credential(20, fixture::UNKNOWN_SEED, |_, k| c.push(k));
    assert!(a.iter().all(|k| !c.contains(k)));
}

#[test]
fn floor_and_naive_accept_exactly_the_fixture_keys() {
    let mut creds = Vec::new();
    let mut keys = Vec::new();
    for_each_credential(N, fixture::SEED, |c, k| {
        creds.push(c);
        keys.push(k);
    });
    let floor = Floor::new(&creds);
    let naive = Naive::new(keys.iter().map(String::as_str).zip(&creds));
    assert_eq!(floor.len(), N);
    for k in &keys {
        assert!(floor.verify(k));
        assert_eq!(naive.verify(k).unwrap().permissions.len(), 3);
        for bad in [
            fixture::wrong_secret(k),
            fixture::bad_checksum(k),
            fixture::malformed(k, 1),
        ] {
            assert!(!floor.verify(&bad), "floor accepted {bad}");
            assert!(naive.verify(&bad).is_none(), "naive accepted {bad}");
        }
    }
    for k in fixture::unknown_keys(50) {
        assert!(!floor.verify(&k));
        assert!(naive.verify(&k).is_none());
    }
}

#[test]
fn peer_accepts_its_own_keys_only() {
    let (peer, keys) = Peer::generate(100);
    for k in &keys {
        assert!(peer.verify(k));
        let mut tampered = k.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'a' { 'b' } else { 'a' });
        assert!(!peer.verify(&tampered), "{tampered}");
    }
    assert!(!peer.verify("not a key"));
}

fn medians(pairs: &[(&str, f64)]) -> Medians {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

fn verdict(checks: &[report::Check], what: &str) -> Verdict {
    checks
        .iter()
        .find(|c| c.what == what)
        .unwrap_or_else(|| panic!("no check {what:?}"))
        .verdict
}

#[test]
fn report_verdicts_follow_the_bounds() {
    let m = medians(&[
        ("verify/floor/10", 100.0),
        ("verify/memory_hit/10", 129.0),
        ("verify/memory_hit_with/10", 131.0),
        ("verify/sled_hit/10", 150.0),
        ("verify/peer/10", 258.0),
        ("verify/naive/10", 257.0),
        ("verify/memory_bad_checksum/10", 50.0),
        ("verify/memory_malformed/10", 50.5),
        ("verify/memory_unknown/10", 150.0),
        ("threads/memory_1t/10", 100.0),
        ("threads/memory_2t/10", 111.0),
        ("write/sled_issue", 120.0),
        ("write/sled_bare_insert_flush", 100.0),
    ]);
    let checks = report::check(&m, Some(300.0));
    let expected = [
        ("n=10: verify hit, memory ÷ floor", Verdict::Met),
        (
            "n=10: verify_with hit (borrowed answer), memory ÷ floor",
            Verdict::Missed,
        ),
        // 150 / 129 = 1.16 > 1.1
        ("n=10: verify hit, sled ÷ memory", Verdict::Missed),
        ("n=10: peer ÷ verify hit (memory) (speed-up)", Verdict::Met),
        // 257 / 150 < 2
        (
            "n=10: naive ÷ verify hit (sled) (speed-up)",
            Verdict::Missed,
        ),
        ("n=10: bad_checksum rejected (memory)", Verdict::Met),
        ("n=10: malformed rejected (memory)", Verdict::Missed),
        ("n=10: well-formed unknown (memory) ÷ floor", Verdict::Met),
        // 2 × 100 / 111 = 1.80
        (
            "n=10: 2-thread ÷ 1-thread throughput (memory)",
            Verdict::Met,
        ),
        ("n=10: bad_checksum rejected (sled)", Verdict::Missing),
        (
            "durable issue (sled) ÷ bare sled insert + flush",
            Verdict::Met,
        ),
        (
            "hot-index memory per credential (1M, 3 permissions, no metadata)",
            Verdict::Missed,
        ),
    ];
    for (what, want) in expected {
        assert_eq!(verdict(&checks, what), want, "{what}");
    }
    let md = report::markdown(&m, &checks);
    assert!(md.contains("| n=10: verify hit, memory ÷ floor | ≤ 1.3× | 1.29× | met |"));
}
