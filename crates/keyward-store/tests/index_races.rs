//! The hot index under concurrent writes: a tag that every version of a credential keeps is
//! found by every probe while the credential is rewritten and while other credentials are
//! added and removed (which grows and shrinks the map), and a tag nobody holds is never found.
//! Readers run on their own threads, on a local and on a shared backend.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;

use keyward_store::conformance::{credential, tags};
use keyward_store::{IndexedStore, MemoryStore, Store};

fn race(shared: bool) {
    let backend = if shared {
        MemoryStore::shared()
    } else {
        MemoryStore::new()
    };
    let index = IndexedStore::open(Box::new(backend)).unwrap();
    let kept = index.put(credential("acc_kept")).unwrap();
    let tag = tags(&kept)[0];
    let absent = tags(&credential("acc_absent"))[0];
    let done = AtomicBool::new(false);
    let probes = AtomicUsize::new(0);
    thread::scope(|s| {
        s.spawn(|| {
            let mut cur = (*kept).clone();
            for round in 0..400 {
                // Rewrite the kept credential: same tag, new entry (revision, flag).
                cur.enabled = round % 2 == 0;
                cur = (*index.put(cur).unwrap()).clone();
                // Churn: other credentials come and go, so buckets fill, split and empty.
                let others: Vec<_> = (0..8)
                    .map(|i| index.put(credential(&format!("acc_{round}_{i}"))).unwrap())
                    .collect();
                if round % 3 != 0 {
                    for o in others {
                        index.delete(&o.id, o.revision).unwrap();
                    }
                }
            }
            done.store(true, Ordering::SeqCst);
        });
        for _ in 0..2 {
            s.spawn(|| {
                while !done.load(Ordering::SeqCst) {
                    let found = index.with_lookup(&tag, |e| e.map(|e| e.id().clone()));
                    assert_eq!(found.unwrap().as_ref(), Some(&kept.id), "kept tag missed");
                    let none = index.with_lookup(&absent, |e| e.is_some()).unwrap();
                    assert!(!none, "a tag nobody holds was found");
                    probes.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    assert!(probes.load(Ordering::Relaxed) > 0);
    // Every credential left is indexed under each of its tags, and nothing else is.
    let mut count = 0;
    index
        .scan(&mut |r| {
            let cred = r.unwrap();
            count += 1;
            for t in tags(&cred) {
                let id = index
                    .with_lookup(&t, |e| e.map(|e| e.id().clone()))
                    .unwrap();
                assert_eq!(id.as_ref(), Some(&cred.id));
            }
        })
        .unwrap();
    assert_eq!(index.len(), count);
}

#[test]
fn kept_tag_is_found_during_rewrites_and_churn() {
    race(false);
}

#[test]
fn kept_tag_is_found_during_rewrites_and_churn_shared() {
    race(true);
}
