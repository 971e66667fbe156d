//! `Keyward::export` / `Keyward::import`: round trips across every pair of backends, and every
//! way a file can be refused (with nothing written).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

const OP: &keyward::Principal = &keyward::Principal::LocalOperator;

use keyward::core::{Credential, Environment, KeyType, Metadata, Pepper, PermissionSet};
use keyward::rotation::{RegenerateOptions, SecretState, secret_state};
use keyward::{Config, ImportError, ImportOptions, Keyward, NewKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Memory,
    #[cfg(feature = "sled")]
    Sled,
    #[cfg(feature = "redb")]
    Redb,
}

const KINDS: &[Kind] = &[
    Kind::Memory,
    #[cfg(feature = "sled")]
    Kind::Sled,
    #[cfg(feature = "redb")]
    Kind::Redb,
];

fn pepper() -> Pepper {
    Pepper::from_bytes([7; 32])
}

#[cfg_attr(not(any(feature = "sled", feature = "redb")), allow(unused_variables))]
fn config(kind: Kind, dir: &Path) -> Config {
    match kind {
        Kind::Memory => Config::memory(),
        #[cfg(feature = "sled")]
        Kind::Sled => Config::sled(dir.join("store")).with_development_pepper(),
        #[cfg(feature = "redb")]
        Kind::Redb => Config::redb(dir.join("keyward.redb")).with_development_pepper(),
    }
}

fn open(kind: Kind, dir: &Path) -> Keyward {
    Keyward::open(config(kind, dir).with_pepper(pepper())).unwrap()
}

/// How a key verifies: its credential id, or the refusal code.
fn outcome(kw: &Keyward, key: &str) -> Result<String, &'static str> {
    kw.verify(key)
        .map(|v| v.id().to_string())
        .map_err(|e| e.code())
}

/// Every credential, by id, with the store's revision left out.
fn contents(kw: &Keyward) -> Vec<Credential> {
    let page = kw
        .list(
            OP,
            &keyward::store::ListQuery {
                limit: 1000,
                ..Default::default()
            },
        )
        .unwrap();
    page.items
        .into_iter()
        .map(|mut c| {
            c.revision = 0;
            c
        })
        .collect()
}

fn new_key(account: &str, key_type: KeyType, env: &str, perms: &[&str]) -> NewKey {
    NewKey::new(
        account.parse().unwrap(),
        key_type,
        env.parse().unwrap(),
        "Fixture key".parse().unwrap(),
    )
    .with_permissions(PermissionSet::parse(perms).unwrap())
}

/// Issues, regenerates (with a grace period and with an activation delay), disables and
/// revokes keys; returns every plaintext handed out, old ones included.
fn populate(kw: &Keyward) -> Vec<String> {
    let mut keys = Vec::new();
    let mut meta = Metadata::new();
    meta.insert("team".into(), "core".into()).unwrap();
    meta.insert("note".into(), "ünïcode \"quoted\" \\ ok".into())
        .unwrap();
    let plain = kw
        .issue(
            OP,
            new_key("acc_1", KeyType::Secret, "production", &["api-key:read"]).with_metadata(meta),
        )
        .unwrap();
    keys.push(plain.key.expose_secret().to_owned());
    let expiring = kw
        .issue(
            OP,
            new_key(
                "acc_1",
                KeyType::Restricted,
                "test",
                &["payment:read", "payment:*"],
            )
            .with_expiry(kw.now().saturating_add(Duration::from_secs(90 * 86400))),
        )
        .unwrap();
    keys.push(expiring.key.expose_secret().to_owned());
    // Regenerated: the old secret is in its grace period.
    let rotated = kw
        .issue(OP, new_key("acc_2", KeyType::Publishable, "staging", &[]))
        .unwrap();
    keys.push(rotated.key.expose_secret().to_owned());
    let new = kw
        .regenerate(OP, &rotated.credential.id, RegenerateOptions::default())
        .unwrap();
    keys.push(new.key.expose_secret().to_owned());
    // Regenerated with an activation delay: the new secret is pending.
    let delayed = kw
        .issue(OP, new_key("acc_2", KeyType::Secret, "test", &[]))
        .unwrap();
    keys.push(delayed.key.expose_secret().to_owned());
    let pending = kw
        .regenerate(
            OP,
            &delayed.credential.id,
            RegenerateOptions {
                grace_period: Some(Duration::from_secs(3600)),
                activation_delay: Some(Duration::from_secs(3600)),
                ..RegenerateOptions::default()
            },
        )
        .unwrap();
    keys.push(pending.key.expose_secret().to_owned());
    // Revoked (after a regenerate: both secrets revoked).
    let revoked = kw
        .issue(OP, new_key("acc_3", KeyType::Secret, "production", &[]))
        .unwrap();
    keys.push(revoked.key.expose_secret().to_owned());
    let again = kw
        .regenerate(OP, &revoked.credential.id, RegenerateOptions::default())
        .unwrap();
    keys.push(again.key.expose_secret().to_owned());
    kw.revoke(OP, &revoked.credential.id).unwrap();
    // Disabled.
    let disabled = kw
        .issue(OP, new_key("acc_3", KeyType::Secret, "test", &[]))
        .unwrap();
    keys.push(disabled.key.expose_secret().to_owned());
    kw.disable(OP, &disabled.credential.id).unwrap();
    keys
}

fn export(kw: &Keyward) -> String {
    let mut out = Vec::new();
    let summary = kw.export(OP, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(summary.count, text.lines().count() - 2);
    text
}

/// The export with the header's creation time blanked, and so the trailer's digest (of every
/// line, the header included).
fn without_time(export: &str) -> String {
    let mut lines: Vec<String> = export.lines().map(str::to_owned).collect();
    let mut header: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    header["created_at"] = serde_json::Value::Null;
    lines[0] = header.to_string();
    let n = lines.len() - 1;
    let mut trailer: serde_json::Value = serde_json::from_str(&lines[n]).unwrap();
    trailer["digest"] = serde_json::Value::Null;
    lines[n] = trailer.to_string();
    lines.join("\n")
}

#[test]
fn every_pair_of_backends_round_trips() {
    for &from in KINDS {
        for &to in KINDS {
            let tmp = tempfile::tempdir().unwrap();
            let (a_dir, b_dir) = (tmp.path().join("a"), tmp.path().join("b"));
            let a = open(from, &a_dir);
            let keys = populate(&a);
            let expected: Vec<_> = keys.iter().map(|k| outcome(&a, k)).collect();
            // The fixtures cover each state.
            for code in ["revoked", "disabled", "not_yet_active"] {
                assert!(expected.contains(&Err(code)), "{code}");
            }
            assert!(expected.iter().filter(|o| o.is_ok()).count() >= 5);
            let file = export(&a);
            for k in &keys {
                assert!(!file.contains(k.as_str()), "the export holds a key");
            }

            let b = open(to, &b_dir);
            let summary = b.import(OP, &mut file.as_bytes()).unwrap();
            assert_eq!(
                (summary.records, summary.imported, summary.skipped),
                (6, 6, 0)
            );
            let got: Vec<_> = keys.iter().map(|k| outcome(&b, k)).collect();
            assert_eq!(got, expected, "{from:?} -> {to:?}");
            assert_eq!(contents(&b), contents(&a), "{from:?} -> {to:?}");
            let now = b.now();
            let states: Vec<Vec<SecretState>> = contents(&b)
                .iter()
                .map(|c| {
                    c.secrets
                        .iter()
                        .map(|s| secret_state(s, c.expires_at, now))
                        .collect()
                })
                .collect();
            assert!(states.iter().flatten().any(|s| *s == SecretState::Grace));
            assert_eq!(without_time(&export(&b)), without_time(&file));

            // A re-import changes nothing.
            let again = b.import(OP, &mut file.as_bytes()).unwrap();
            assert_eq!((again.imported, again.skipped), (0, 6));

            // What was imported is durable.
            if to != Kind::Memory {
                drop(b);
                let b = open(to, &b_dir);
                let got: Vec<_> = keys.iter().map(|k| outcome(&b, k)).collect();
                assert_eq!(got, expected, "{from:?} -> {to:?} after reopening");
            }
        }
    }
}

/// Asserts that importing `file` into an empty deployment fails, and writes nothing.
fn refused(file: &str) -> ImportError {
    refused_by(
        &Keyward::open(Config::memory().with_pepper(pepper())).unwrap(),
        file,
    )
}

fn refused_by(b: &Keyward, file: &str) -> ImportError {
    let before = contents(b);
    let e = b.import(OP, &mut file.as_bytes()).unwrap_err();
    assert_eq!(contents(b), before, "a refused import wrote: {e}");
    e
}

fn sample() -> (Keyward, String) {
    let a = Keyward::open(Config::memory().with_pepper(pepper())).unwrap();
    populate(&a);
    let file = export(&a);
    (a, file)
}

/// `file` with line `n` (0-based) replaced by `f(line)`.
fn edit_line(file: &str, n: usize, f: impl FnOnce(&str) -> String) -> String {
    let mut lines: Vec<String> = file.lines().map(str::to_owned).collect();
    lines[n] = f(&lines[n]);
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

#[test]
fn a_changed_record_is_refused_by_the_digest() {
    let (_, file) = sample();
    let tampered = edit_line(&file, 2, |l| l.replace("Fixture key", "Fixture kez"));
    assert_ne!(tampered, file);
    assert!(matches!(refused(&tampered), ImportError::DigestMismatch));
    // Changing a record's enabled flag, or dropping a whole record and fixing the count.
    let enabled = file
        .lines()
        .position(|l| l.contains("\"enabled\":true"))
        .unwrap();
    let flipped = edit_line(&file, enabled, |l| {
        l.replace("\"enabled\":true", "\"enabled\":false")
    });
    assert_ne!(flipped, file);
    assert!(matches!(refused(&flipped), ImportError::DigestMismatch));
    let mut lines: Vec<&str> = file.lines().collect();
    lines.remove(3);
    let n = lines.len();
    let trailer = lines[n - 1].replace("\"count\":6", "\"count\":5");
    lines[n - 1] = &trailer;
    let dropped = lines.join("\n") + "\n";
    assert!(matches!(refused(&dropped), ImportError::DigestMismatch));
}

#[test]
fn an_invalid_record_is_refused_with_its_line() {
    let (_, file) = sample();
    for (edit, what) in [
        (
            Box::new(|l: &str| l.replacen("\"digest\":\"", "\"digest\":\"zz", 1))
                as Box<dyn Fn(&str) -> String>,
            "digest",
        ),
        (
            Box::new(|l: &str| l.replacen("\"account\":\"acc_", "\"account\":\"a c", 1)),
            "account",
        ),
        (
            Box::new(|l: &str| l.replacen("\"type\":\"", "\"type\":\"x", 1)),
            "type",
        ),
        (
            Box::new(|l: &str| l.replacen("{", "{\"extra\":1,", 1)),
            "extra",
        ),
        (Box::new(|l: &str| l[..l.len() / 2].to_owned()), ""),
    ] {
        let bad = edit_line(&file, 2, edit);
        match refused(&bad) {
            ImportError::Malformed { line: 3, reason } => {
                assert!(reason.contains(what), "{what}: {reason}");
            }
            e => panic!("{what}: {e:?}"),
        }
    }
    // The same record twice.
    let lines: Vec<&str> = file.lines().collect();
    let twice = [&lines[..3], &lines[2..]].concat().join("\n") + "\n";
    assert!(matches!(
        refused(&twice),
        ImportError::Malformed { line: 4, .. }
    ));
}

#[test]
fn a_cut_short_file_is_refused() {
    let (_, file) = sample();
    let last_line = file.trim_end().rfind('\n').unwrap() + 1;
    // Cut at every line end and inside the trailer and the last record.
    let mut cuts: Vec<usize> = file.match_indices('\n').map(|(i, _)| i + 1).collect();
    cuts.pop(); // the whole file
    cuts.extend([last_line - 10, last_line + 5, file.len() - 3]);
    for cut in cuts {
        let e = refused(&file[..cut]);
        assert!(
            matches!(e, ImportError::Truncated { .. }),
            "cut at {cut}: {e:?}"
        );
    }
    assert!(matches!(refused(""), ImportError::Empty));
    // The trailer's final newline is not needed; data after the trailer is refused.
    let b = Keyward::open(Config::memory().with_pepper(pepper())).unwrap();
    assert_eq!(
        b.import(OP, &mut file.trim_end().as_bytes())
            .unwrap()
            .imported,
        6
    );
    assert!(matches!(
        refused(&format!("{file}{{}}\n")),
        ImportError::Malformed { line: 9, .. }
    ));
}

#[test]
fn a_wrong_count_is_refused() {
    let (_, file) = sample();
    let n = file.lines().count();
    let bad = edit_line(&file, n - 1, |l| l.replace("\"count\":6", "\"count\":7"));
    assert!(matches!(
        refused(&bad),
        ImportError::CountMismatch {
            declared: 7,
            found: 6
        }
    ));
}

#[test]
fn another_deployments_file_is_refused_unless_forced() {
    let (a, file) = sample();
    let other = Keyward::open(Config::memory().with_pepper(Pepper::from_bytes([8; 32]))).unwrap();
    match refused_by(&other, &file) {
        ImportError::PepperMismatch { found, expected } => {
            assert_eq!(found, a.pepper_fingerprint());
            assert_eq!(expected, other.pepper_fingerprint());
            assert_ne!(found, expected);
        }
        e => panic!("{e:?}"),
    }
    // Forced: the records are stored, but no key verifies (their digests need the other
    // pepper).
    let summary = other
        .import_with(OP, &mut file.as_bytes(), ImportOptions { force: true })
        .unwrap();
    assert_eq!(summary.imported, 6);
    assert_eq!(contents(&other), contents(&a));

    let namespaced = Keyward::open(
        Config::memory()
            .with_pepper(pepper())
            .with_namespace("acme"),
    )
    .unwrap();
    assert!(matches!(
        refused_by(&namespaced, &file),
        ImportError::NamespaceMismatch { found: None, .. }
    ));
}

#[test]
fn a_forced_import_of_another_pepper_verifies_nothing() {
    let a = Keyward::open(Config::memory().with_pepper(pepper())).unwrap();
    let keys = populate(&a);
    let file = export(&a);
    let other = Keyward::open(Config::memory().with_pepper(Pepper::from_bytes([8; 32]))).unwrap();
    other
        .import_with(OP, &mut file.as_bytes(), ImportOptions { force: true })
        .unwrap();
    for k in &keys {
        assert_eq!(outcome(&other, k), Err("unknown"));
    }
}

#[test]
fn a_newer_version_or_a_foreign_file_is_refused() {
    let (_, file) = sample();
    let newer = edit_line(&file, 0, |l| l.replace("\"version\":1", "\"version\":2"));
    assert!(matches!(
        refused(&newer),
        ImportError::UnsupportedVersion {
            found: 2,
            supported: 1
        }
    ));
    // A newer version may change every other header field: still "newer", not "damaged".
    let newer = edit_line(&file, 0, |_| {
        r#"{"format":"keyward-export","version":3,"new":"field"}"#.to_owned()
    });
    assert!(matches!(
        refused(&newer),
        ImportError::UnsupportedVersion { found: 3, .. }
    ));
    assert!(matches!(refused("hello\n"), ImportError::NotAnExport));
    assert!(matches!(
        refused("{\"format\":\"other\",\"version\":1}\n"),
        ImportError::NotAnExport
    ));
    let old = edit_line(&file, 0, |l| l.replace("\"version\":1", "\"version\":0"));
    assert!(matches!(
        refused(&old),
        ImportError::Malformed { line: 1, .. }
    ));
}

#[test]
fn a_clash_with_stored_keys_refuses_the_whole_import() {
    let (a, file) = sample();
    let b = Keyward::open(Config::memory().with_pepper(pepper())).unwrap();
    b.import(OP, &mut file.as_bytes()).unwrap();
    // One key changes in B; a re-import would overwrite it: refused, naming it.
    let changed = contents(&a)[0].id.clone();
    b.update(
        OP,
        &changed,
        keyward::KeyUpdate {
            name: Some("Renamed".parse().unwrap()),
            ..Default::default()
        },
    )
    .unwrap();
    match refused_by(&b, &file) {
        ImportError::Conflicts(list) => {
            assert_eq!(list.len(), 1);
            assert_eq!(list[0].id, changed);
            assert_eq!(
                list[0].reason,
                keyward::export::ConflictReason::DifferentContent
            );
        }
        e => panic!("{e:?}"),
    }
    // A fresh deployment that already issued one of the same lookup tags under another id
    // cannot happen by chance; an edited file can: refused too (here: a file whose record
    // ids were changed, with its digest recomputed as an editor would not bother to).
    let c = Keyward::open(Config::memory().with_pepper(pepper())).unwrap();
    c.import(OP, &mut file.as_bytes()).unwrap();
    let first = contents(&a)[0].id.to_string();
    let renamed = file.replace(&first, "key_0000000000000000000000000");
    let renamed = redigest(&renamed);
    match refused_by(&c, &renamed) {
        ImportError::Conflicts(list) => {
            assert_eq!(list.len(), 1);
            assert!(matches!(
                list[0].reason,
                keyward::export::ConflictReason::LookupTaken { .. }
            ));
        }
        e => panic!("{e:?}"),
    }
}

/// Recomputes the trailer digest of an edited export.
fn redigest(file: &str) -> String {
    let mut lines: Vec<&str> = file.lines().collect();
    let trailer = lines.pop().unwrap();
    let mut body = String::new();
    for l in &lines {
        body.push_str(l);
        body.push('\n');
    }
    let mut t: serde_json::Value = serde_json::from_str(trailer).unwrap();
    t["digest"] = blake3::hash(body.as_bytes()).to_hex().to_string().into();
    format!("{body}{t}\n")
}

#[test]
fn the_format_is_as_documented() {
    let (a, file) = sample();
    let lines: Vec<serde_json::Value> = file
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let header = &lines[0];
    assert_eq!(header["format"], "keyward-export");
    assert_eq!(header["version"], 1);
    assert_eq!(header["pepper_id"], a.pepper_fingerprint().as_str());
    assert!(header["namespace"].is_null());
    assert!(header["created_at"].as_str().unwrap().ends_with('Z'));
    let trailer = lines.last().unwrap();
    assert_eq!(trailer["end"], true);
    assert_eq!(trailer["count"], 6);
    let body: String = file.lines().take(7).map(|l| format!("{l}\n")).collect();
    assert_eq!(
        trailer["digest"],
        blake3::hash(body.as_bytes()).to_hex().as_str()
    );
    let record = &lines[1];
    let fields: Vec<&str> = record
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "id",
        "account",
        "environment",
        "type",
        "name",
        "permissions",
        "metadata",
        "created_at",
        "modified_at",
        "expires_at",
        "enabled",
        "secrets",
    ];
    expected.sort_unstable();
    let mut fields = fields;
    fields.sort_unstable();
    assert_eq!(fields, expected);
    let secret = &record["secrets"][0];
    assert_eq!(secret["digest"].as_str().unwrap().len(), 64);
    assert_eq!(secret["lookup"].as_str().unwrap().len(), 16);
    // Records in id order.
    let ids: Vec<&str> = lines[1..7]
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted);
    assert_eq!(Environment::Production.as_str(), "production");
}

#[test]
fn a_key_this_deployment_would_not_issue_is_refused() {
    let (_, file) = sample();
    let mut policy = keyward::core::PermissionPolicy::default();
    policy.limit(
        KeyType::Restricted,
        PermissionSet::parse(["business:read"]).unwrap(),
    );
    let strict = Keyward::open(
        Config::memory()
            .with_pepper(pepper())
            .with_permission_policy(policy),
    )
    .unwrap();
    match refused_by(&strict, &file) {
        ImportError::Conflicts(list) => {
            assert_eq!(list.len(), 1, "{list:?}");
            assert!(matches!(
                list[0].reason,
                keyward::export::ConflictReason::NotAllowed { .. }
            ));
        }
        e => panic!("{e:?}"),
    }
}
