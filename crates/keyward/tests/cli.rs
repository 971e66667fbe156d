//! The `keyward` binary end to end, on the sled store in a temporary directory.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_keyward");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {:?}", self.stdout))
    }

    /// Asserts a failure reported as exactly one line on stderr, and returns it.
    fn one_line_error(&self, code: i32) -> &str {
        assert_eq!(
            self.code, code,
            "stdout {:?} stderr {:?}",
            self.stdout, self.stderr
        );
        assert_eq!(self.stderr.lines().count(), 1, "{:?}", self.stderr);
        self.stderr.trim_end()
    }
}

fn command(data: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env("KEYWARD_DATA", data)
        .env_remove("KEYWARD_PEPPER")
        .stdin(Stdio::null());
    c
}

fn run(data: &Path, args: &[&str]) -> Run {
    let out: Output = command(data).args(args).output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn ok(data: &Path, args: &[&str]) -> Run {
    let r = run(data, args);
    assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    r
}

#[test]
fn lifecycle() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");

    // Nothing works before init, with a clear hint.
    let r = run(&data, &["list"]);
    assert!(r.one_line_error(2).contains("keyward init"));

    // init prints one admin key, once; the JSON is the only thing on stdout.
    let r = ok(&data, &["init", "--json"]);
    let admin = r.json();
    // An operator key: the reserved operator account, every management right.
    assert_eq!(admin["account_id"], "keyward:operator");
    assert_eq!(admin["type"], "secret");
    assert_eq!(admin["environment"], "production");
    assert_eq!(admin["name"], "admin");
    assert_eq!(admin["permissions"], serde_json::json!(["*"]));
    let admin_key = admin["key"].as_str().unwrap().to_owned();
    assert!(admin_key.starts_with("sk_prod_"));
    assert_eq!(r.stderr.lines().count(), 1);
    assert!(r.stderr.contains("shown only once"));
    let pepper = std::fs::read_to_string(data.join("pepper")).unwrap();
    assert_eq!(pepper.trim().len(), 64);
    assert!(pepper.trim().bytes().all(|b| b.is_ascii_hexdigit()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("pepper"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A second init refuses to mint another admin.
    let r = run(&data, &["init"]);
    assert!(r.one_line_error(2).contains("already initialised"));
    assert!(r.stdout.is_empty());
    assert_eq!(ok(&data, &["list", "--json"]).json()["count"], 1);
    // Recovery: the local operator can always mint another operator key.
    let recovered = ok(&data, &["init", "--recover", "--json"]).json();
    assert_eq!(recovered["account_id"], "keyward:operator");
    assert_eq!(recovered["name"], "recovered admin");
    assert_eq!(recovered["permissions"], admin["permissions"]);
    assert_ne!(recovered["key"], admin["key"]);
    let recovered_id = recovered["id"].as_str().unwrap().to_owned();
    ok(&data, &["revoke", &recovered_id]);

    // Issue.
    let r = ok(
        &data,
        &[
            "issue",
            "--account",
            "acc_1",
            "--type",
            "restricted",
            "--env",
            "test",
            "--name",
            "Billing",
            "--permission",
            "payment:read",
            "--permission",
            "payment:write",
            "--expires",
            "90d",
            "--meta",
            "team=core",
            "--json",
        ],
    );
    let issued = r.json();
    let id = issued["id"].as_str().unwrap().to_owned();
    let key = issued["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("rk_test_"));
    assert_eq!(issued["meta"]["team"], "core");
    assert!(issued["expires_at"].is_string());
    assert!(r.stderr.contains("shown only once"));
    // Human output: an aligned table with the key.
    let r = ok(
        &data,
        &[
            "issue",
            "--account",
            "acc_1",
            "--type",
            "secret",
            "--env",
            "production",
            "--name",
            "Ops",
            "--expires",
            "2099-01-01T00:00:00Z",
        ],
    );
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("key ") && l.contains("sk_prod_"))
    );
    assert!(r.stdout.contains("2099-01-01T00:00:00.000Z"));

    // Bad input: one line, exit 2, nothing stored.
    for args in [
        &[
            "issue",
            "--account",
            "acc_1",
            "--type",
            "bogus",
            "--env",
            "test",
            "--name",
            "x",
        ][..],
        &[
            "issue",
            "--account",
            "acc_1",
            "--type",
            "restricted",
            "--env",
            "test",
            "--name",
            "x",
        ],
        &[
            "issue",
            "--account",
            "acc_1",
            "--type",
            "secret",
            "--env",
            "Prod!",
            "--name",
            "x",
        ],
        &[
            "issue",
            "--account",
            "acc_1",
            "--type",
            "secret",
            "--env",
            "test",
            "--name",
            "",
        ],
        &[
            "issue",
            "--account",
            "acc_1",
            "--type",
            "secret",
            "--env",
            "test",
            "--name",
            "x",
            "--expires",
            "soon",
        ],
        &[
            "issue",
            "--account",
            "acc_1",
            "--type",
            "secret",
            "--env",
            "test",
            "--name",
            "x",
            "--meta",
            "novalue",
        ],
        &["show", "key_0000000000000000000000000"],
        &["show", "nonsense"],
        &["frobnicate"],
    ] {
        run(&data, args).one_line_error(2);
    }
    assert_eq!(ok(&data, &["list", "--json"]).json()["count"], 4);

    // Verify: 0 valid, 1 refused (with the reason), 2 error.
    let r = ok(&data, &["verify", &key]);
    assert!(r.stdout.starts_with("valid"));
    let v = ok(
        &data,
        &[
            "verify",
            &key,
            "--env",
            "test",
            "--permission",
            "payment:read",
            "--json",
        ],
    )
    .json();
    assert_eq!(v["valid"], true);
    assert_eq!(v["key_id"], id.as_str());
    let r = run(&data, &["verify", &key, "--env", "production"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("wrong_environment"));
    let r = run(
        &data,
        &["verify", &key, "--permission", "business:read", "--json"],
    );
    assert_eq!(r.code, 1);
    assert_eq!(r.json()["code"], "missing_permission");
    let r = run(&data, &["verify", "sk_prod_garbage"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("malformed"));
    let r = run(&data, &["verify", &key, "--env", "NOT VALID"]);
    r.one_line_error(2);
    let r = run(&tmp.path().join("elsewhere"), &["verify", &key]);
    r.one_line_error(2);
    // The key can come from standard input.
    let mut child = command(&data)
        .args(["verify", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{key}\n").as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());

    // Regenerate: same id, new key; the old key keeps working in its grace period.
    let r = ok(&data, &["regenerate", &id, "--json"]);
    let regen = r.json();
    assert_eq!(regen["id"], id.as_str());
    let new_key = regen["key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, key);
    assert!(r.stderr.contains("shown only once"));
    ok(&data, &["verify", &new_key]);
    ok(&data, &["verify", &key]);
    let shown = ok(&data, &["show", &id, "--json"]).json();
    assert_eq!(shown["versions"].as_array().unwrap().len(), 2);
    assert_eq!(shown["versions"][0]["state"], "grace");
    assert!(shown.get("key").is_none());
    assert!(!ok(&data, &["show", &id]).stdout.contains(&new_key));
    // Regenerating again would cut the day promised to the first key: refused, nothing changed,
    // unless asked for explicitly.
    let r = run(&data, &["regenerate", &id, "--grace", "0s"]);
    assert!(r.one_line_error(2).contains("grace period until"));
    ok(&data, &["verify", &key]);
    assert_eq!(ok(&data, &["show", &id, "--json"]).json(), shown);
    // No grace: the previous key stops at once.
    let newest = ok(
        &data,
        &[
            "regenerate",
            &id,
            "--grace",
            "0s",
            "--end-earlier-grace",
            "--json",
        ],
    )
    .json();
    let newest = newest["key"].as_str().unwrap().to_owned();
    assert_eq!(run(&data, &["verify", &new_key]).code, 1);
    ok(&data, &["verify", &newest]);

    // Disable, enable.
    ok(&data, &["disable", &id]);
    let r = run(&data, &["verify", &newest]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("disabled"));
    ok(&data, &["enable", &id]);
    ok(&data, &["verify", &newest]);

    // Regenerate by environment.
    let r = ok(
        &data,
        &[
            "regenerate-env",
            "--account",
            "acc_1",
            "--env",
            "test",
            "--json",
        ],
    );
    let keys = r.json()["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 1);
    let env_key = keys[0]["key"].as_str().unwrap().to_owned();
    ok(&data, &["verify", &env_key]);

    // Revoke: refused from then on, old and new.
    let r = ok(&data, &["revoke", &id]);
    assert!(r.stdout.contains(&id));
    for k in [&newest, &env_key] {
        let r = run(&data, &["verify", k]);
        assert_eq!(r.code, 1);
        assert!(r.stdout.contains("revoked"));
    }
    let r = run(&data, &["regenerate", &id]);
    assert!(r.one_line_error(2).contains("revoked"));

    // List and sweep.
    let r = ok(&data, &["list", "--account", "acc_1"]);
    let header = r.stdout.lines().next().unwrap();
    assert!(header.starts_with("ID") && header.contains("STATUS"));
    assert_eq!(r.stdout.lines().count(), 3);
    assert!(r.stdout.contains("revoked"));
    let all = ok(&data, &["list", "--env", "test", "--json"]).json();
    assert_eq!(all["count"], 1);
    let sweep = ok(&data, &["sweep", "--json"]).json();
    assert_eq!(sweep["examined"], 4);
    ok(&data, &["sweep"]);

    // The admin key from init verifies, and KEYWARD_PEPPER must match the stored keys.
    ok(&data, &["verify", &admin_key]);
    let out = command(&data)
        .env("KEYWARD_PEPPER", "00".repeat(32))
        .args(["verify", &admin_key])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = command(&data)
        .env("KEYWARD_PEPPER", "xyz")
        .args(["list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8(out.stderr).unwrap().lines().count(), 1);
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `keyward serve` on a free port and returns it with its address.
fn serve(data: &Path) -> (Server, String) {
    let mut child = command(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let server = Server(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("http://").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("serve did not start");
    (server, addr)
}

fn http_get(addr: &str, path: &str, key: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nX-API-KEY: {key}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn a_running_service_holds_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let admin = ok(&data, &["init", "--json"]).json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (server, addr) = serve(&data);

    // The service answers.
    let reply = http_get(&addr, "/whoami", &admin);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("keyward:operator"));
    assert!(!reply.contains(&admin));

    // A second process gets a clear error at once, not a hang.
    let started = Instant::now();
    let r = run(&data, &["list"]);
    assert!(
        r.one_line_error(2).contains("store is in use"),
        "{}",
        r.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let r = run(&data, &["verify", &admin]);
    assert!(r.one_line_error(2).contains("store is in use"));

    // Once it stops, the store opens again.
    drop(server);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = run(&data, &["verify", &admin]);
        if r.code == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "store stayed locked: {}",
            r.stderr
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Issues one key and returns it.
fn issue_key(data: &Path) -> String {
    let r = ok(
        data,
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
            "--json",
        ],
    );
    r.json()["key"].as_str().unwrap().to_owned()
}

#[test]
fn init_chooses_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    // The default for a new directory is redb.
    let redb = tmp.path().join("redb");
    ok(&redb, &["init"]);
    assert!(redb.join("keyward.redb").is_file());
    assert!(!redb.join("store").exists());
    ok(&redb, &["verify", &issue_key(&redb)]);
    // `--backend sled` is still there.
    let sled = tmp.path().join("sled");
    ok(&sled, &["init", "--backend", "sled"]);
    assert!(sled.join("store").is_dir());
    assert!(!sled.join("keyward.redb").exists());
    ok(&sled, &["verify", &issue_key(&sled)]);
    // A directory keeps its store: asking for the other one is refused.
    let r = run(&sled, &["init", "--backend", "redb"]);
    assert!(r.one_line_error(2).contains("already holds a sled store"));
    let r = run(&sled, &["init", "--backend", "lmdb"]);
    r.one_line_error(2);
    // Both at once: refused by every command.
    std::fs::write(sled.join("keyward.redb"), b"").unwrap();
    let r = run(&sled, &["list"]);
    assert!(r.one_line_error(2).contains("both a sled store"));
}

#[test]
fn an_old_sled_directory_opens_with_the_new_cli() {
    use keyward::core::Pepper;
    use keyward::{Config, Keyward, NewKey};
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // What `keyward init` made before the layout moved into the library.
    std::fs::create_dir_all(&data).unwrap();
    let hex = "5c".repeat(32);
    std::fs::write(data.join("pepper"), format!("{hex}\n")).unwrap();
    let kw = Keyward::open(
        Config::sled(data.join("store")).with_pepper(Pepper::from_hex(&hex).unwrap()),
    )
    .unwrap();
    let key = kw
        .issue(
            &keyward::Principal::LocalOperator,
            NewKey::new(
                "acc_old".parse().unwrap(),
                keyward::core::KeyType::Secret,
                keyward::core::Environment::Production,
                "old".parse().unwrap(),
            ),
        )
        .unwrap()
        .key
        .expose_secret()
        .to_owned();
    drop(kw);
    let v = ok(&data, &["verify", &key, "--json"]).json();
    assert_eq!(v["account_id"], "acc_old");
    // init does not turn it into a redb directory.
    let r = run(&data, &["init"]);
    assert!(r.one_line_error(2).contains("already initialised"));
    assert!(!data.join("keyward.redb").exists());
}

#[test]
fn export_and_import_move_a_deployment_between_stores() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    ok(&a, &["init", "--backend", "sled"]);
    let key = issue_key(&a);
    let file = tmp.path().join("backup.jsonl");
    let file_arg = file.to_str().unwrap();
    let r = ok(&a, &["export", "--output", file_arg, "--json"]);
    assert_eq!(r.json()["count"], 2);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("{\"format\":\"keyward-export\",\"version\":1,"));
    assert!(!text.contains(&key));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // To standard output: the same lines, the summary on standard error.
    let r = ok(&a, &["export"]);
    assert_eq!(r.stdout.lines().count(), 4);
    assert!(r.stderr.contains("exported 2 key(s)"));

    // The same pepper (init keeps a pepper file it finds), a redb store: every key verifies
    // there.
    std::fs::create_dir_all(&b).unwrap();
    std::fs::copy(a.join("pepper"), b.join("pepper")).unwrap();
    ok(&b, &["init", "--backend", "redb"]);
    // b already has its own admin key; a's two keys are imported next to it.
    let r = ok(&b, &["import", file_arg, "--json"]);
    assert_eq!(r.json()["imported"], 2);
    ok(&b, &["verify", &key]);
    // Again: nothing new. From standard input too.
    let out = command(&b)
        .args(["import", "-", "--json"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["imported"].clone(), v["skipped"].clone()),
        (0.into(), 2.into())
    );

    // A deployment with another pepper refuses the file: one line, exit 2, nothing stored.
    let c = tmp.path().join("c");
    ok(&c, &["init"]);
    let r = run(&c, &["import", file_arg]);
    assert!(r.one_line_error(2).contains("another pepper"));
    assert_eq!(ok(&c, &["list", "--json"]).json()["count"], 1);
    // A cut file: refused.
    std::fs::write(&file, &text[..text.len() - 20]).unwrap();
    let r = run(&b, &["import", file_arg]);
    assert!(r.one_line_error(2).contains("cut short"));
}

#[test]
fn doctor_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    ok(&data, &["init"]);
    let r = ok(&data, &["doctor"]);
    assert!(r.stdout.trim_end().ends_with("healthy"), "{}", r.stdout);
    let v = ok(&data, &["doctor", "--json"]).json();
    assert_eq!(v["healthy"], true);
    assert_eq!(v["store"], "redb");
    assert_eq!(v["records"], 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let pepper = data.join("pepper");
        std::fs::set_permissions(&pepper, std::fs::Permissions::from_mode(0o644)).unwrap();
        let r = run(&data, &["doctor", "--dry-run"]);
        assert_eq!(r.code, 1);
        assert!(
            r.stdout.contains("would repair: chmod 0600"),
            "{}",
            r.stdout
        );
        assert!(r.stdout.contains("nothing was changed"));
        let r = run(&data, &["doctor", "--json"]);
        assert_eq!(r.code, 1);
        let v = r.json();
        assert_eq!(
            (v["healthy"].clone(), v["repaired"].clone()),
            (false.into(), 1.into())
        );
        let f = &v["findings"].as_array().unwrap()[2];
        assert_eq!(
            (
                f["check"].as_str(),
                f["status"].as_str(),
                f["action"].as_str()
            ),
            (Some("pepper_file"), Some("problem"), Some("repaired"))
        );
        assert_eq!(
            std::fs::metadata(&pepper).unwrap().permissions().mode() & 0o777,
            0o600
        );
        ok(&data, &["doctor"]);
    }
    // Nothing to check: an error, exit 2.
    let r = run(&tmp.path().join("nothing"), &["doctor"]);
    assert!(r.one_line_error(2).contains("keyward init"));
}

#[test]
fn a_running_service_exports_over_http() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let admin = ok(&data, &["init", "--json"]).json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (server, addr) = serve(&data);
    // The store is locked: the CLI says so, the HTTP API exports.
    let r = run(&data, &["export"]);
    assert!(r.one_line_error(2).contains("in use"));
    let reply = http_get(&addr, "/admin/export", &admin);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(
        reply
            .to_ascii_lowercase()
            .contains("content-type: application/jsonl")
    );
    let body = reply.split("\r\n\r\n").nth(1).unwrap();
    // The body may be chunked: keep the JSON lines only.
    let lines: Vec<&str> = body.lines().filter(|l| l.starts_with('{')).collect();
    assert_eq!(lines.len(), 3, "{body}");
    drop(server);
    // Imported into a deployment with the same pepper, the admin key verifies there.
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(data.join("pepper"), other.join("pepper")).unwrap();
    ok(&other, &["init", "--backend", "sled"]);
    let file = tmp.path().join("over-http.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let r = ok(&other, &["import", file.to_str().unwrap(), "--json"]);
    assert_eq!(r.json()["imported"], 1);
    ok(&other, &["verify", &admin]);
}
