//! `keyward events` end to end: listing, the head to pin, `--verify` catching an edited event
//! and a cut tail (done to the redb file directly), and `sweep` retention.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};

use keyward::store::REDB_EVENTS_TABLE;
use redb::ReadableDatabase as _;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_keyward");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(data: &Path, args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .env("KEYWARD_DATA", data)
        .env_remove("KEYWARD_PEPPER")
        .stdin(Stdio::null())
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn ok(data: &Path, args: &[&str]) -> Run {
    let r = run(data, args);
    assert_eq!(r.code, 0, "{args:?}: {} {}", r.stdout, r.stderr);
    r
}

fn json(r: &Run) -> Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {:?}", r.stdout))
}

fn actions(v: &Value) -> Vec<&str> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect()
}

/// Changes event `seq` of the closed redb store: `None` deletes it, `Some(f)` edits its bytes.
fn tamper(data: &Path, seq: u64, edit: Option<fn(&mut Vec<u8>)>) {
    let db = redb::Database::open(data.join("keyward.redb")).unwrap();
    let mut bytes = {
        let read = db.begin_read().unwrap();
        let table = read.open_table(REDB_EVENTS_TABLE).unwrap();
        let value = table.get(seq.to_be_bytes().as_slice()).unwrap().unwrap();
        value.value().to_vec()
    };
    let t = db.begin_write().unwrap();
    {
        let mut table = t.open_table(REDB_EVENTS_TABLE).unwrap();
        match edit {
            None => {
                table.remove(seq.to_be_bytes().as_slice()).unwrap();
            }
            Some(f) => {
                f(&mut bytes);
                table
                    .insert(seq.to_be_bytes().as_slice(), bytes.as_slice())
                    .unwrap();
            }
        }
    }
    t.commit().unwrap();
}

#[test]
fn events_list_pin_the_head_and_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    ok(&data, &["init"]);
    let issued = json(&ok(
        &data,
        &[
            "issue",
            "--account",
            "acc_1",
            "--type",
            "secret",
            "--env",
            "test",
            "--name",
            "ci",
            "--json",
        ],
    ));
    let id = issued["id"].as_str().unwrap().to_owned();
    ok(&data, &["revoke", &id]);
    // A refusal by the local operator: an unknown id.
    let r = run(&data, &["revoke", "key_0000000000000000000000000"]);
    assert_eq!(r.code, 2);

    let all = json(&ok(&data, &["events", "--json"]));
    assert_eq!(actions(&all), vec!["issue", "issue", "revoke", "revoke"]);
    let events = all["data"].as_array().unwrap();
    assert_eq!(events[0]["account_id"], "keyward:operator");
    assert_eq!(events[1]["key_id"].as_str(), Some(id.as_str()));
    assert_eq!(events[3]["outcome"], "refused");
    assert_eq!(events[3]["code"], "not_found");
    assert!(events.iter().all(|e| e["actor"] == "local_operator"));
    // Filters and paging.
    let mine = json(&ok(&data, &["events", "--key", &id, "--json"]));
    assert_eq!(actions(&mine), vec!["issue", "revoke"]);
    let later = json(&ok(
        &data,
        &["events", "--after", "2", "--limit", "1", "--json"],
    ));
    assert_eq!(actions(&later), vec!["revoke"]);
    assert_eq!(later["data"][0]["seq"], 3);
    assert_eq!(later["next_cursor"], "3");
    let future = json(&ok(
        &data,
        &["events", "--since", "2999-01-01T00:00:00Z", "--json"],
    ));
    assert_eq!(actions(&future), Vec::<&str>::new());
    // The table.
    let table = ok(&data, &["events"]).stdout;
    assert!(table.starts_with("SEQ"), "{table}");
    assert!(table.contains("refused: not_found"), "{table}");
    assert_eq!(table.lines().count(), 5, "{table}");

    // The head to pin, and a verification against it.
    let head = ok(&data, &["events", "--head"]).stdout.trim().to_owned();
    assert!(head.starts_with("4:"), "{head}");
    assert_eq!(head.len(), 2 + 64);
    let verified = json(&ok(
        &data,
        &["events", "--verify", "--head", &head, "--json"],
    ));
    assert_eq!(verified["intact"], true);
    assert_eq!(verified["pinned"], "matched");
    let human = ok(&data, &["events", "--verify", "--head", &head]).stdout;
    assert!(human.contains("intact"), "{human}");

    // Bad input: exit 2, one line.
    let bad = run(&data, &["events", "--verify", "--head", "nope"]);
    assert_eq!(bad.code, 2);
    assert_eq!(bad.stderr.lines().count(), 1, "{}", bad.stderr);

    // The tail cut off: the chain alone still verifies, the pinned head does not.
    tamper(&data, 4, None);
    ok(&data, &["events", "--verify"]);
    let cut = run(&data, &["events", "--verify", "--head", &head]);
    assert_eq!(cut.code, 1, "{} {}", cut.stdout, cut.stderr);
    assert!(cut.stdout.contains("BROKEN at event 4"), "{}", cut.stdout);
    // An event edited: named.
    tamper(&data, 2, Some(|b| *b.last_mut().unwrap() ^= 1));
    let edited = run(&data, &["events", "--verify", "--json"]);
    assert_eq!(edited.code, 1);
    let v = json(&edited);
    assert_eq!(
        (v["intact"].clone(), v["broken_at"].clone()),
        (Value::Bool(false), 2.into())
    );
    assert_eq!(v["kind"], "tampered");
}

#[test]
fn sweep_applies_the_retention_it_is_given() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    ok(&data, &["init"]);
    for _ in 0..4 {
        ok(
            &data,
            &[
                "issue",
                "--account",
                "acc_1",
                "--type",
                "secret",
                "--env",
                "test",
                "--name",
                "k",
            ],
        );
    }
    // Without a bound, nothing is trimmed.
    let kept = json(&ok(&data, &["sweep", "--json"]));
    assert_eq!(kept["events_trimmed"], 0);
    let swept = json(&ok(&data, &["sweep", "--keep-events", "2", "--json"]));
    assert_eq!(swept["events_trimmed"], 4);
    let left = json(&ok(&data, &["events", "--json"]));
    assert_eq!(actions(&left), vec!["issue", "trim"]);
    assert_eq!(left["data"][1]["trimmed_up_to"], 4);
    ok(&data, &["events", "--verify"]);
}
