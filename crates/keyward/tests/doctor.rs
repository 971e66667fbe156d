//! `keyward::doctor`: one damaged data directory per check, on each embedded store; a dry run
//! changes no byte and no modification time; a real run repairs what it says and the next run
//! is healthy.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

const OP: &keyward::Principal = &keyward::Principal::LocalOperator;

use keyward::core::{CredentialId, Environment, KeyType};
use keyward::doctor::{self, Action, Check, DoctorOptions, DoctorReport, Status};
use keyward::store::{LOOKUP_TREE, RECORDS_TREE, REDB_LOOKUP_TABLE, REDB_RECORDS_TABLE};
use keyward::{DataDir, DataDirError, Keyward, NewKey, StoreKind};

const KINDS: [StoreKind; 2] = [StoreKind::Redb, StoreKind::Sled];

fn dir(path: &Path) -> DataDir {
    DataDir::new(path).ignore_pepper_env()
}

/// A data directory of `kind` with three keys (one rotated); returns the ids and keys.
fn deployment(path: &Path, kind: StoreKind) -> Vec<(CredentialId, String)> {
    // A directory `init` creates (0700), not the test's temporary one.
    assert!(!path.exists());
    let d = dir(path);
    let kw = d.open_config(d.init(Some(kind)).unwrap()).unwrap();
    let mut out = Vec::new();
    for i in 0..3 {
        let issued = kw
            .issue(
                OP,
                NewKey::new(
                    "acc_1".parse().unwrap(),
                    KeyType::Secret,
                    Environment::Test,
                    "k".parse().unwrap(),
                ),
            )
            .unwrap();
        let mut key = issued.key.expose_secret().to_owned();
        if i == 1 {
            key = kw
                .regenerate(OP, &issued.credential.id, Default::default())
                .unwrap()
                .key
                .expose_secret()
                .to_owned();
        }
        out.push((issued.credential.id.clone(), key));
    }
    out
}

fn run(path: &Path, dry_run: bool) -> DoctorReport {
    doctor::run(&dir(path), DoctorOptions { dry_run }).unwrap()
}

/// Every file and directory under `path`: bytes (files), mode and modification time.
fn snapshot(path: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = fs::symlink_metadata(&p).unwrap();
        #[cfg(unix)]
        let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions());
        #[cfg(not(unix))]
        let mode = 0;
        let bytes = if meta.is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
            Vec::new()
        } else {
            fs::read(&p).unwrap()
        };
        out.insert(p, (bytes, mode, meta.modified().unwrap()));
    }
    out
}

/// Runs a dry run and asserts it changed nothing; returns its report.
fn dry_run(path: &Path) -> DoctorReport {
    let before = snapshot(path);
    let report = run(path, true);
    assert!(report.dry_run);
    assert_eq!(snapshot(path), before, "a dry run changed the directory");
    report
}

/// The problems of `report` for `check`.
fn problems(report: &DoctorReport, check: Check) -> Vec<&doctor::Finding> {
    report.problems().filter(|f| f.check == check).collect()
}

fn assert_healthy(report: &DoctorReport) {
    assert!(report.healthy(), "{:#?}", report.findings);
    assert!(
        report.findings.iter().all(|f| f.status == Status::Ok),
        "{:#?}",
        report.findings
    );
}

fn verify_all(path: &Path, keys: &[(CredentialId, String)]) {
    let kw: Keyward = dir(path).open().unwrap();
    for (id, key) in keys {
        assert_eq!(kw.verify(key).unwrap().id(), id);
    }
}

#[test]
fn a_healthy_directory_is_reported_healthy() {
    for kind in KINDS {
        let tmp = tempfile::tempdir().unwrap();
        let data = &tmp.path().join("data");
        deployment(data, kind);
        let report = dry_run(data);
        assert_healthy(&report);
        assert_eq!(report.store, Some(kind));
        assert_eq!(report.records, Some(3));
        let checks: Vec<Check> = report.findings.iter().map(|f| f.check).collect();
        assert_eq!(
            checks,
            [
                Check::Store,
                Check::DirectoryMode,
                Check::PepperFile,
                Check::CrashLeftovers,
                Check::StoreOpens,
                Check::Records,
                Check::Indexes
            ]
        );
        assert_healthy(&run(data, false));
    }
}

#[cfg(unix)]
#[test]
fn loose_modes_are_repaired_with_chmod() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for kind in KINDS {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        deployment(&data, kind);
        let pepper = data.join("pepper");
        fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&pepper, fs::Permissions::from_mode(0o644)).unwrap();

        let report = dry_run(&data);
        for check in [Check::DirectoryMode, Check::PepperFile] {
            let found = problems(&report, check);
            assert_eq!(found.len(), 1, "{check}");
            assert!(matches!(&found[0].action, Action::WouldRepair(s) if s.starts_with("chmod")));
        }
        assert_eq!((mode(&data), mode(&pepper)), (0o755, 0o644));

        let report = run(&data, false);
        assert_eq!(report.repaired(), 2);
        assert_eq!(report.unrepaired(), 0);
        assert!(
            !report.healthy(),
            "problems found are reported even when repaired"
        );
        assert_eq!((mode(&data), mode(&pepper)), (0o700, 0o600));
        assert_healthy(&run(&data, false));
    }
}

#[test]
fn a_missing_or_damaged_pepper_is_reported_not_invented() {
    for kind in KINDS {
        let tmp = tempfile::tempdir().unwrap();
        let data = &tmp.path().join("data");
        deployment(data, kind);
        let pepper = data.join("pepper");
        fs::write(&pepper, "not a pepper").unwrap();
        #[cfg(unix)]
        fs::set_permissions(&pepper, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let report = run(data, false);
        let found = problems(&report, Check::PepperFile);
        assert_eq!(found.len(), 1);
        assert!(matches!(found[0].action, Action::Manual(_)));
        assert_eq!(fs::read_to_string(&pepper).unwrap(), "not a pepper");

        fs::remove_file(&pepper).unwrap();
        let report = run(data, false);
        let found = problems(&report, Check::PepperFile);
        assert_eq!(found.len(), 1);
        assert!(found[0].detail.contains("missing"));
        assert!(!pepper.exists());
        // The store itself is still checked.
        assert_eq!(report.records, Some(3));
    }
}

#[test]
fn a_sled_crash_leftover_is_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = &tmp.path().join("data");
    let keys = deployment(data, StoreKind::Sled);
    let leftover = data.join("store").join("snap.7FFFFFFFFFFFFFFF.generating");
    fs::write(&leftover, b"").unwrap();

    let report = dry_run(data);
    let found = problems(&report, Check::CrashLeftovers);
    assert_eq!(found.len(), 1);
    assert!(found[0].detail.contains("generating"));
    assert!(matches!(&found[0].action, Action::WouldRepair(s) if s.starts_with("removed")));
    assert!(leftover.exists());
    // The rest is checked on a copy, as it will be once the leftover is gone.
    assert_eq!(report.records, Some(3));
    assert_eq!(report.problems().count(), 1);

    let report = run(data, false);
    assert_eq!(report.repaired(), 1);
    assert!(!leftover.exists());
    assert_healthy(&run(data, false));
    verify_all(data, &keys);
}

#[test]
fn a_store_that_does_not_open_skips_the_record_checks() {
    for kind in KINDS {
        let tmp = tempfile::tempdir().unwrap();
        let data = &tmp.path().join("data");
        deployment(data, kind);
        match kind {
            StoreKind::Redb => fs::write(data.join("keyward.redb"), b"garbage").unwrap(),
            StoreKind::Sled => fs::write(data.join("store").join("db"), b"").unwrap(),
        }
        for dry in [true, false] {
            let report = if dry { dry_run(data) } else { run(data, false) };
            let found = problems(&report, Check::StoreOpens);
            assert_eq!(found.len(), 1, "{kind}: {:#?}", report.findings);
            assert!(matches!(found[0].action, Action::Manual(_)));
            for check in [Check::Records, Check::Indexes] {
                let f = report.findings.iter().find(|f| f.check == check).unwrap();
                assert_eq!(f.status, Status::Skipped);
            }
            assert_eq!(report.records, None);
        }
    }
}

/// Changes the closed store's raw tables.
fn damage(path: &Path, kind: StoreKind, records: &[(&[u8], &[u8])], drop_lookup: Option<&[u8]>) {
    match kind {
        StoreKind::Sled => {
            let store = path.join("store");
            let mut attempts = 0;
            let db = loop {
                match sled::open(&store) {
                    Ok(db) => break db,
                    Err(e) if attempts < 40 && e.to_string().contains("lock") => {
                        attempts += 1;
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                    Err(e) => panic!("{e}"),
                }
            };
            let tree = db.open_tree(RECORDS_TREE).unwrap();
            for (k, v) in records {
                tree.insert(k, *v).unwrap();
            }
            if let Some(tag) = drop_lookup {
                assert!(
                    db.open_tree(LOOKUP_TREE)
                        .unwrap()
                        .remove(tag)
                        .unwrap()
                        .is_some()
                );
            }
            db.flush().unwrap();
        }
        StoreKind::Redb => {
            let db = redb::Database::open(path.join("keyward.redb")).unwrap();
            let t = db.begin_write().unwrap();
            {
                let mut table = t.open_table(REDB_RECORDS_TABLE).unwrap();
                for (k, v) in records {
                    table.insert(*k, *v).unwrap();
                }
                if let Some(tag) = drop_lookup {
                    let mut lookup = t.open_table(REDB_LOOKUP_TABLE).unwrap();
                    assert!(lookup.remove(tag).unwrap().is_some());
                }
            }
            t.commit().unwrap();
        }
    }
}

#[test]
fn an_undecodable_record_is_named_and_left_alone() {
    for kind in KINDS {
        let tmp = tempfile::tempdir().unwrap();
        let data = &tmp.path().join("data");
        let keys = deployment(data, kind);
        let bad_id = "key_0000000000000000000000000";
        damage(
            data,
            kind,
            &[(bad_id.as_bytes(), &[1, 0xff, 0xff, 0xff])],
            None,
        );
        let report = dry_run(data);
        let found = problems(&report, Check::Records);
        assert_eq!(found.len(), 1, "{kind}: {:#?}", report.findings);
        assert!(found[0].detail.contains(bad_id), "{}", found[0].detail);
        assert!(matches!(found[0].action, Action::Manual(_)));
        assert_eq!(report.records, Some(3));
        // Only the records check reports it (not the index check again).
        assert_eq!(report.problems().count(), 1, "{:#?}", report.findings);

        let report = run(data, false);
        assert_eq!(problems(&report, Check::Records).len(), 1);
        assert_eq!(report.repaired(), 0);
        assert_eq!(report.unrepaired(), 1);
        // The others still work.
        verify_all(data, &keys);
    }
}

#[test]
fn a_missing_index_entry_is_repaired() {
    for kind in KINDS {
        let tmp = tempfile::tempdir().unwrap();
        let data = &tmp.path().join("data");
        let keys = deployment(data, kind);
        // The lookup entry of the first key's only secret.
        let kw = dir(data).open().unwrap();
        let cred = kw.get(OP, &keys[0].0).unwrap();
        let tag = cred.secrets[0].lookup;
        drop(kw);
        damage(data, kind, &[], Some(tag.as_str().as_bytes()));

        let report = dry_run(data);
        let found = problems(&report, Check::Indexes);
        assert_eq!(found.len(), 1, "{kind}: {:#?}", report.findings);
        assert!(
            found[0].detail.contains(tag.as_str()),
            "{}",
            found[0].detail
        );
        assert!(matches!(found[0].action, Action::WouldRepair(_)));
        // Still damaged: the same report again.
        assert_eq!(dry_run(data).findings, report.findings);

        let report = run(data, false);
        assert_eq!(report.repaired(), 1, "{:#?}", report.findings);
        assert_healthy(&run(data, false));
        verify_all(data, &keys);
    }
}

#[test]
fn a_store_in_use_cannot_be_checked() {
    for kind in KINDS {
        let tmp = tempfile::tempdir().unwrap();
        let data = &tmp.path().join("data");
        deployment(data, kind);
        let _held = dir(data).open().unwrap();
        for dry_run in [true, false] {
            match doctor::run(&dir(data), DoctorOptions { dry_run }) {
                Err(DataDirError::InUse { .. }) => {}
                r => panic!("{kind} dry_run={dry_run}: {r:?}"),
            }
        }
    }
}

#[test]
fn both_stores_or_none() {
    let tmp = tempfile::tempdir().unwrap();
    let data = &tmp.path().join("data");
    assert!(matches!(
        doctor::run(&dir(data), DoctorOptions::default()),
        Err(DataDirError::NotInitialised { .. })
    ));
    deployment(data, StoreKind::Sled);
    fs::write(data.join("keyward.redb"), b"").unwrap();
    let report = dry_run(data);
    let found = problems(&report, Check::Store);
    assert_eq!(found.len(), 1);
    assert!(matches!(found[0].action, Action::Manual(_)));
    assert_eq!(report.store, None);
    assert!(!report.findings.iter().any(|f| f.check == Check::StoreOpens));
}
