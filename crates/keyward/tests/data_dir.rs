//! The data directory: detection of the store it holds, creation, the pepper, and the typed
//! errors. Every test ignores `KEYWARD_PEPPER`, so the pepper file is what counts.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::Write;
use std::path::Path;

use keyward::core::{Environment, KeyType, Pepper};
use keyward::{Config, DataDir, DataDirError, Keyward, NewKey, Principal, StoreKind};

fn dir(path: &Path) -> DataDir {
    DataDir::new(path).ignore_pepper_env()
}

fn issue(kw: &Keyward) -> String {
    kw.issue(
        &Principal::LocalOperator,
        NewKey::new(
            "acc_1".parse().unwrap(),
            KeyType::Secret,
            Environment::Production,
            "k".parse().unwrap(),
        ),
    )
    .unwrap()
    .key
    .expose_secret()
    .to_owned()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A data directory as `keyward init` made it before the layout moved into the library: the
/// pepper file written by hand and the sled store opened with `Config::sled(DIR/store)`.
fn old_style(data: &Path) -> Vec<String> {
    fs::create_dir_all(data).unwrap();
    let hex = "3a".repeat(32);
    let mut f = fs::File::create(data.join("pepper")).unwrap();
    writeln!(f, "{hex}").unwrap();
    let kw = Keyward::open(
        Config::sled(data.join("store")).with_pepper(Pepper::from_hex(&hex).unwrap()),
    )
    .unwrap();
    let keys = vec![issue(&kw), issue(&kw)];
    kw.revoke(&Principal::LocalOperator, kw.verify(&keys[1]).unwrap().id())
        .unwrap();
    keys
}

#[test]
fn an_old_sled_data_directory_keeps_working() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let keys = old_style(&data);
    let d = dir(&data);
    assert_eq!(d.detect().unwrap(), Some(StoreKind::Sled));
    let kw = d.open().unwrap();
    assert!(kw.verify(&keys[0]).is_ok());
    assert_eq!(kw.verify(&keys[1]).unwrap_err().code(), "revoked");
    drop(kw);
    // The library entry point opens the same deployment.
    let kw = Keyward::open(Config::from_data_dir(&data).unwrap()).unwrap();
    assert!(kw.verify(&keys[0]).is_ok());
    drop(kw);
    // init on it keeps the store and the pepper, whatever the default kind.
    let kw = d.open_config(d.init(None).unwrap()).unwrap();
    assert_eq!(kw.store().len(), 2);
    assert!(kw.verify(&keys[0]).is_ok());
    assert_eq!(d.detect().unwrap(), Some(StoreKind::Sled));
}

#[test]
fn a_new_directory_gets_the_default_store() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("nested").join("data");
    let d = dir(&data);
    assert_eq!(d.detect().unwrap(), None);
    let kw = d.open_config(d.init(None).unwrap()).unwrap();
    let key = issue(&kw);
    drop(kw);
    assert_eq!(d.detect().unwrap(), Some(StoreKind::DEFAULT));
    assert!(d.store_path(StoreKind::DEFAULT).exists());
    let pepper = fs::read_to_string(d.pepper_path()).unwrap();
    assert_eq!(pepper.len(), 65);
    assert!(pepper.trim_end().bytes().all(|b| b.is_ascii_hexdigit()));
    #[cfg(unix)]
    {
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&d.pepper_path()), 0o600);
    }
    // Reopened, the key verifies (same pepper, same store).
    assert!(d.open().unwrap().verify(&key).is_ok());
    // A second init changes nothing.
    let before = fs::read(d.pepper_path()).unwrap();
    let kw = d.open_config(d.init(None).unwrap()).unwrap();
    assert_eq!(fs::read(d.pepper_path()).unwrap(), before);
    assert!(kw.verify(&key).is_ok());
}

#[test]
fn each_kind_can_be_asked_for() {
    for kind in [StoreKind::Sled, StoreKind::Redb] {
        if !kind.is_compiled() {
            let tmp = tempfile::tempdir().unwrap();
            assert!(matches!(
                dir(tmp.path()).init(Some(kind)),
                Err(DataDirError::NotCompiled { .. })
            ));
            continue;
        }
        let tmp = tempfile::tempdir().unwrap();
        let d = dir(tmp.path());
        let key = issue(&d.open_config(d.init(Some(kind)).unwrap()).unwrap());
        assert_eq!(d.detect().unwrap(), Some(kind));
        assert!(d.open().unwrap().verify(&key).is_ok());
        // The other kind is refused in the same directory.
        let other = match kind {
            StoreKind::Sled => StoreKind::Redb,
            StoreKind::Redb => StoreKind::Sled,
        };
        match d.init(Some(other)) {
            Err(DataDirError::OtherKind {
                found, requested, ..
            }) => assert_eq!((found, requested), (kind, other)),
            r => panic!("{r:?}"),
        }
    }
    assert_eq!("sled".parse::<StoreKind>().unwrap(), StoreKind::Sled);
    assert_eq!("redb".parse::<StoreKind>().unwrap(), StoreKind::Redb);
    assert!(matches!(
        "lmdb".parse::<StoreKind>(),
        Err(DataDirError::UnknownKind { .. })
    ));
}

#[test]
fn an_uninitialised_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    assert!(matches!(
        dir(&missing).open(),
        Err(DataDirError::NotInitialised { .. })
    ));
    assert!(!missing.exists(), "opening created the directory");
    // A pepper file alone is not a deployment.
    fs::write(tmp.path().join("pepper"), "ab".repeat(32)).unwrap();
    let e = dir(tmp.path()).open().unwrap_err();
    assert!(matches!(e, DataDirError::NotInitialised { .. }));
    assert!(e.to_string().contains("keyward init"));
}

#[test]
fn a_store_without_its_pepper_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = old_style(tmp.path());
    fs::remove_file(tmp.path().join("pepper")).unwrap();
    let d = dir(tmp.path());
    assert!(matches!(d.open(), Err(DataDirError::PepperMissing { .. })));
    // init does not make a new pepper for it either.
    assert!(matches!(
        d.init(None),
        Err(DataDirError::PepperMissing { .. })
    ));
    assert!(!d.pepper_path().exists());
    // A damaged pepper file is refused, without echoing it.
    fs::write(d.pepper_path(), "not hex at all").unwrap();
    let e = d.open().unwrap_err();
    assert!(matches!(e, DataDirError::BadPepper { .. }));
    assert!(!e.to_string().contains("not hex"));
    assert_eq!(keys.len(), 2);
}

#[test]
fn both_stores_at_once_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    old_style(tmp.path());
    fs::write(tmp.path().join("keyward.redb"), b"").unwrap();
    let d = dir(tmp.path());
    for e in [
        d.detect().unwrap_err(),
        d.open().unwrap_err(),
        d.init(None).unwrap_err(),
        Config::from_data_dir(tmp.path()).unwrap_err(),
    ] {
        assert!(matches!(e, DataDirError::BothBackends { .. }), "{e:?}");
    }
}

#[test]
fn a_store_in_use_is_reported_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let d = dir(tmp.path());
    let _held = d.open_config(d.init(None).unwrap()).unwrap();
    match d.open() {
        Err(DataDirError::InUse { store }) => {
            assert_eq!(store, d.store_path(StoreKind::DEFAULT));
        }
        r => panic!("{r:?}"),
    }
}

#[test]
fn a_sled_directory_a_crash_left_a_snapshot_in_opens_and_says_what_it_repaired() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let keys = old_style(&data);
    // What a kill during sled's snapshot leaves: an empty `snap.<N>.generating`, newer than
    // every complete snapshot (sled 0.34 would read it and refuse to open, for good).
    fs::write(
        data.join("store").join("snap.7FFFFFFFFFFFFFFF.generating"),
        b"",
    )
    .unwrap();
    let kw = dir(&data).open().unwrap();
    let recovered = kw.recovered_at_open();
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    assert!(
        recovered[0].contains("incomplete snapshot"),
        "{recovered:?}"
    );
    assert!(kw.verify(&keys[0]).is_ok());
    drop(kw);
    // Nothing left to repair at the next open.
    assert!(dir(&data).open().unwrap().recovered_at_open().is_empty());
}
