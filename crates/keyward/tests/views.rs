//! The command line's `--json` and the HTTP service render the same views (`keyward::view`):
//! the same key, shown by both on the same data directory, is the same JSON.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const BIN: &str = env!("CARGO_BIN_EXE_keyward");

/// Runs the binary on `data` and parses its standard output as JSON.
fn cli(data: &Path, args: &[&str]) -> (i32, Value) {
    let out = Command::new(BIN)
        .env("KEYWARD_DATA", data)
        .env_remove("KEYWARD_PEPPER")
        .stdin(Stdio::null())
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "{args:?}: {e}: {text:?} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), v)
}

/// One request to the service on `data`, answered in process.
async fn http(
    router: &axum::Router,
    method: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(Body::from(body.map(|b| b.to_string()).unwrap_or_default()))
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn cli_json_and_http_json_are_the_same_views() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (_, operator) = cli(&data, &["init"]);
    let operator = operator["key"].as_str().unwrap().to_owned();

    // Issued: the CLI's answer.
    let (code, issued) = cli(
        &data,
        &[
            "issue",
            "--account",
            "acc_views",
            "--type",
            "restricted",
            "--env",
            "test",
            "--name",
            "Views",
            "--permission",
            "payment:read",
            "--meta",
            "team=core",
            "--expires",
            "90d",
        ],
    );
    assert_eq!(code, 0);
    let id = issued["id"].as_str().unwrap().to_owned();
    let key = issued["key"].as_str().unwrap().to_owned();
    let (_, shown) = cli(&data, &["show", &id]);
    let (_, listed) = cli(&data, &["list", "--account", "acc_views"]);
    let (code, verified) = cli(&data, &["verify", &key, "--permission", "payment:read"]);
    assert_eq!(code, 0);
    let (code, refused) = cli(&data, &["verify", &key, "--env", "production"]);
    assert_eq!(code, 1);
    let (code, malformed) = cli(&data, &["verify", "sk_prod_garbage"]);
    assert_eq!(code, 1);

    // The service, on the same directory (the CLI has let go of it).
    let kw = keyward::DataDir::new(&data).open().unwrap();
    let router = keyward::http::router(kw);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // One credential shape.
        let (status, got) = http(&router, "GET", &format!("/api-keys/{id}"), &operator, None).await;
        assert_eq!(status, 200, "{got}");
        assert_eq!(got, shown);
        assert_eq!(got["status"], "active");
        assert_eq!(got["versions"][0]["state"], "active");
        let (_, page) = http(
            &router,
            "GET",
            "/api-keys?account_id=acc_views",
            &operator,
            None,
        )
        .await;
        assert_eq!(page["data"], listed["data"]);

        // One verify answer, refusals included.
        for (cli_answer, body) in [
            (&verified, json!({"key": key, "permission": "payment:read"})),
            (&refused, json!({"key": key, "environment": "production"})),
            (&malformed, json!({"key": "sk_prod_garbage"})),
        ] {
            let (status, got) = http(&router, "POST", "/verify", &operator, Some(body)).await;
            assert_eq!(status, 200, "{got}");
            assert_eq!(&got, cli_answer);
        }
        assert_eq!(verified["valid"], true);
        assert_eq!(refused["code"], "wrong_environment");
        assert!(refused["reason"].is_string());

        // One issued-key answer: the same fields, and the same values but for what is new
        // (id, key, times).
        let (status, created) = http(
            &router,
            "POST",
            "/api-keys",
            &operator,
            Some(
                json!({"account_id": "acc_views", "type": "restricted", "environment": "test",
                        "name": "Views", "permissions": ["payment:read"],
                        "meta": {"team": "core"}, "expires_at": issued["expires_at"]}),
            ),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(keys(&created), keys(&issued));
        for field in [
            "account_id",
            "environment",
            "type",
            "name",
            "permissions",
            "meta",
            "expires_at",
            "enabled",
            "status",
        ] {
            assert_eq!(created[field], issued[field], "{field}");
        }
        assert_eq!(keys(&created["versions"][0]), keys(&issued["versions"][0]));
        assert_ne!(created["id"], issued["id"]);
    });
}
