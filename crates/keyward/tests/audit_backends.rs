//! The audit log on every backend: it persists and goes on across reopens, and
//! `verify_events` catches an event edited, an event deleted, the oldest events deleted and the
//! newest cut off (with a pinned head), each done directly to the store's files through the
//! backend's own API (sled tree, redb table), as an attacker with the files would.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use keyward::audit::{BreakKind, ChainBreak, EventHead, EventQuery, HeadCheck, Retention};
use keyward::core::{Environment, KeyType, PermissionSet};
use keyward::rotation::RegenerateOptions;
use keyward::store::{EVENTS_TREE, REDB_EVENTS_TABLE};
use keyward::{Config, Keyward, NewKey, Principal};

const OP: &Principal = &Principal::LocalOperator;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Memory,
    Sled,
    Redb,
}

fn config(kind: Kind, dir: &Path) -> Config {
    match kind {
        Kind::Memory => Config::memory(),
        Kind::Sled => Config::sled(dir.join("store")).with_development_pepper(),
        Kind::Redb => Config::redb(dir.join("keyward.redb")).with_development_pepper(),
    }
}

fn open(kind: Kind, dir: &Path) -> Keyward {
    Keyward::open(config(kind, dir)).unwrap()
}

fn new_key() -> NewKey {
    NewKey::new(
        "acc_1".parse().unwrap(),
        KeyType::Secret,
        Environment::Production,
        "k".parse().unwrap(),
    )
    .with_permissions(PermissionSet::parse(["x:read"]).unwrap())
}

fn actions(kw: &Keyward) -> Vec<(u64, String)> {
    let query = EventQuery {
        limit: 1000,
        ..EventQuery::default()
    };
    kw.events(OP, &query)
        .unwrap()
        .events
        .iter()
        .map(|e| (e.seq, e.action.name().to_owned()))
        .collect()
}

#[test]
fn every_backend_keeps_its_log_across_reopens_and_goes_on() {
    for kind in [Kind::Memory, Kind::Sled, Kind::Redb] {
        let dir = tempfile::tempdir().unwrap();
        let kw = open(kind, dir.path());
        let id = kw.issue(OP, new_key()).unwrap().credential.id.clone();
        kw.regenerate(OP, &id, RegenerateOptions::default())
            .unwrap();
        kw.revoke(OP, &id).unwrap();
        let head = kw.event_head(OP).unwrap().unwrap();
        assert_eq!(head.seq, 3, "{kind:?}");
        let expected = vec![
            (1, "issue".to_owned()),
            (2, "regenerate".to_owned()),
            (3, "revoke".to_owned()),
        ];
        assert_eq!(actions(&kw), expected, "{kind:?}");
        if matches!(kind, Kind::Memory) {
            continue;
        }
        drop(kw);
        let kw = open(kind, dir.path());
        assert_eq!(actions(&kw), expected, "{kind:?} after a reopen");
        // The reopened engine chains onto the stored head.
        kw.issue(OP, new_key()).unwrap();
        let report = kw.verify_events(OP, Some(head)).unwrap().unwrap();
        assert_eq!(report.events, 4, "{kind:?}");
        assert_eq!(report.pinned, HeadCheck::Matched);
    }
}

/// Rewrites the closed store's audit log through the backend's own API: `f` gets every event
/// (sequence number → bytes) and changes what it likes.
fn tamper(kind: Kind, dir: &Path, f: impl FnOnce(&mut BTreeMap<u64, Vec<u8>>)) {
    match kind {
        Kind::Memory => unreachable!("a memory store has no files"),
        Kind::Sled => {
            let mut attempts = 0;
            let db = loop {
                match sled::open(dir.join("store")) {
                    Ok(db) => break db,
                    Err(e) if attempts < 40 && e.to_string().contains("lock") => {
                        attempts += 1;
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                    Err(e) => panic!("{e}"),
                }
            };
            let tree = db.open_tree(EVENTS_TREE).unwrap();
            let mut events: BTreeMap<u64, Vec<u8>> = tree
                .iter()
                .map(|r| {
                    let (k, v) = r.unwrap();
                    (u64::from_be_bytes((*k).try_into().unwrap()), v.to_vec())
                })
                .collect();
            f(&mut events);
            tree.clear().unwrap();
            for (seq, bytes) in events {
                tree.insert(seq.to_be_bytes(), bytes).unwrap();
            }
            db.flush().unwrap();
        }
        Kind::Redb => {
            use redb::{ReadableDatabase as _, ReadableTable as _};
            let db = redb::Database::open(dir.join("keyward.redb")).unwrap();
            let mut events: BTreeMap<u64, Vec<u8>> = {
                let read = db.begin_read().unwrap();
                let table = read.open_table(REDB_EVENTS_TABLE).unwrap();
                table
                    .iter()
                    .unwrap()
                    .map(|r| {
                        let (k, v) = r.unwrap();
                        (
                            u64::from_be_bytes(k.value().try_into().unwrap()),
                            v.value().to_vec(),
                        )
                    })
                    .collect()
            };
            f(&mut events);
            let t = db.begin_write().unwrap();
            {
                let mut table = t.open_table(REDB_EVENTS_TABLE).unwrap();
                table.retain(|_, _| false).unwrap();
                for (seq, bytes) in &events {
                    table
                        .insert(seq.to_be_bytes().as_slice(), bytes.as_slice())
                        .unwrap();
                }
            }
            t.commit().unwrap();
        }
    }
}

/// A store with six events (issues and revokes), closed, and the head it had.
fn six_events(kind: Kind, dir: &Path) -> EventHead {
    let kw = open(kind, dir);
    for _ in 0..3 {
        let id = kw.issue(OP, new_key()).unwrap().credential.id.clone();
        kw.revoke(OP, &id).unwrap();
    }
    let head = kw.event_head(OP).unwrap().unwrap();
    assert_eq!(head.seq, 6);
    assert!(kw.verify_events(OP, Some(head)).unwrap().is_ok());
    head
}

fn verify(kind: Kind, dir: &Path, head: Option<EventHead>) -> Result<u64, ChainBreak> {
    let kw = open(kind, dir);
    kw.verify_events(OP, head).unwrap().map(|r| r.events)
}

fn broken_at(seq: u64, kind: BreakKind) -> Result<u64, ChainBreak> {
    Err(ChainBreak { seq, kind })
}

#[test]
fn an_edited_event_is_named() {
    for kind in [Kind::Sled, Kind::Redb] {
        let dir = tempfile::tempdir().unwrap();
        let head = six_events(kind, dir.path());
        // One byte of event 3's content (its last byte: the outcome), as a hand edit would.
        tamper(kind, dir.path(), |events| {
            let bytes = events.get_mut(&3).unwrap();
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
        });
        assert_eq!(
            verify(kind, dir.path(), Some(head)),
            broken_at(3, BreakKind::Tampered),
            "{kind:?}"
        );
    }
}

#[test]
fn an_event_swapped_for_another_is_named() {
    for kind in [Kind::Sled, Kind::Redb] {
        let dir = tempfile::tempdir().unwrap();
        six_events(kind, dir.path());
        // Event 4 (a revoke) replaced by event 2 (another revoke), bytes and all: it was
        // sealed at another position.
        tamper(kind, dir.path(), |events| {
            let two = events[&2].clone();
            events.insert(4, two);
        });
        let got = verify(kind, dir.path(), None);
        assert_eq!(got, broken_at(4, BreakKind::Relinked), "{kind:?}");
    }
}

#[test]
fn a_deleted_event_is_named() {
    for kind in [Kind::Sled, Kind::Redb] {
        let dir = tempfile::tempdir().unwrap();
        let head = six_events(kind, dir.path());
        tamper(kind, dir.path(), |events| {
            events.remove(&3);
        });
        assert_eq!(
            verify(kind, dir.path(), Some(head)),
            broken_at(3, BreakKind::Missing),
            "{kind:?}"
        );
        // Deleting the oldest ones leaves no gap, but no trim vouches for the cut.
        let dir = tempfile::tempdir().unwrap();
        six_events(kind, dir.path());
        tamper(kind, dir.path(), |events| {
            events.remove(&1);
            events.remove(&2);
        });
        assert_eq!(
            verify(kind, dir.path(), None),
            broken_at(3, BreakKind::UnvouchedStart),
            "{kind:?}"
        );
    }
}

#[test]
fn a_cut_tail_is_caught_with_the_pinned_head() {
    for kind in [Kind::Sled, Kind::Redb] {
        let dir = tempfile::tempdir().unwrap();
        let head = six_events(kind, dir.path());
        tamper(kind, dir.path(), |events| {
            events.remove(&5);
            events.remove(&6);
        });
        // A chain alone cannot see it …
        assert_eq!(verify(kind, dir.path(), None), Ok(4), "{kind:?}");
        // … the pinned head does.
        assert_eq!(
            verify(kind, dir.path(), Some(head)),
            broken_at(5, BreakKind::TailCut),
            "{kind:?}"
        );
        // A head that is not the log's (another hash at its position) is a rewrite.
        let other = EventHead {
            seq: 4,
            hash: head.hash,
        };
        assert_eq!(
            verify(kind, dir.path(), Some(other)),
            broken_at(4, BreakKind::HeadMismatch),
            "{kind:?}"
        );
        // And the engine goes on appending after the cut; the pinned head still tells.
        let kw = open(kind, dir.path());
        kw.issue(OP, new_key()).unwrap();
        kw.issue(OP, new_key()).unwrap();
        let verdict = kw.verify_events(OP, Some(head)).unwrap();
        assert_eq!(
            verdict.map(|r| r.events),
            broken_at(6, BreakKind::HeadMismatch),
            "{kind:?}"
        );
    }
}

#[test]
fn a_trim_vouches_for_the_cut_and_deleting_it_is_caught() {
    for kind in [Kind::Sled, Kind::Redb] {
        let dir = tempfile::tempdir().unwrap();
        let retained =
            config(kind, dir.path()).with_retention(Retention::default().with_max_count(3));
        let kw = Keyward::open(retained).unwrap();
        for _ in 0..6 {
            kw.issue(OP, new_key()).unwrap();
        }
        assert_eq!(kw.sweep(OP, kw.now()).unwrap().events_trimmed, 4);
        let log = actions(&kw);
        assert_eq!(
            log,
            vec![(5, "issue".into()), (6, "issue".into()), (7, "trim".into())]
        );
        assert_eq!(kw.verify_events(OP, None).unwrap().unwrap().first, Some(5));
        let head = kw.event_head(OP).unwrap().unwrap();
        drop(kw);
        tamper(kind, dir.path(), |events| {
            events.remove(&7);
        });
        assert_eq!(
            verify(kind, dir.path(), Some(head)),
            broken_at(5, BreakKind::UnvouchedStart),
            "{kind:?}"
        );
    }
}
