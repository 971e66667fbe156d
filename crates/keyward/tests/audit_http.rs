//! The audit log over HTTP: `GET /events`, `GET /api-keys/{id}/events`, `GET /events/head`
//! and `GET /events/verify`, on a real listener; request ids reach the log.
#![allow(clippy::unwrap_used)]

use axum::body::Bytes;
use axum::http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use keyward::core::{Environment, KeyType, PermissionSet};
use keyward::{Config, Keyward, NewKey, OPERATOR_ACCOUNT, Principal};
use serde_json::{Value, json};

const OP: &Principal = &Principal::LocalOperator;

struct Server {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    kw: Keyward,
    _stop: tokio::sync::oneshot::Sender<()>,
}

struct Resp {
    status: u16,
    request_id: String,
    body: Value,
}

impl Server {
    async fn start() -> Self {
        let kw = Keyward::open(Config::memory()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(keyward::http::serve_listener(kw.clone(), listener, async {
            let _ = rx.await;
        }));
        Self {
            base: format!("http://{addr}"),
            client: Client::builder(TokioExecutor::new()).build_http(),
            kw,
            _stop: tx,
        }
    }

    /// A key of `account` holding `perms`: (id, plaintext).
    fn key(&self, account: &str, perms: &[&str]) -> (String, String) {
        let new = NewKey::new(
            account.parse().unwrap(),
            KeyType::Secret,
            Environment::Production,
            "fixture".parse().unwrap(),
        )
        .with_permissions(PermissionSet::parse(perms).unwrap());
        let issued = self.kw.issue(OP, new).unwrap();
        (
            issued.credential.id.to_string(),
            issued.key.expose_secret().to_owned(),
        )
    }

    async fn call(&self, method: &str, path: &str, key: &str, body: Option<Value>) -> Resp {
        let req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("x-api-key", key)
            .header("content-type", "application/json")
            // A client's own request id is replaced by the service's.
            .header("x-request-id", "client-chosen");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let resp = self
            .client
            .request(req.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        let request_id = match parts.headers.get("x-request-id") {
            Some(v) => v.to_str().unwrap().to_owned(),
            None => {
                let v: Value = serde_json::from_slice(&bytes).unwrap();
                v["requestId"].as_str().unwrap().to_owned()
            }
        };
        Resp {
            status: parts.status.as_u16(),
            request_id,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn get(&self, path: &str, key: &str) -> Resp {
        self.call("GET", path, key, None).await
    }
}

fn field<'a>(events: &'a [Value], name: &str) -> Vec<&'a str> {
    events
        .iter()
        .map(|e| e[name].as_str().unwrap_or("-"))
        .collect()
}

#[tokio::test]
async fn events_name_the_request_and_a_key_sees_its_account() {
    let s = Server::start().await;
    let (admin_id, admin) = s.key("acc_a", &["api-key:read", "api-key:write", "x:read"]);
    let (_, other) = s.key("acc_b", &["*"]);
    let created = s
        .call(
            "POST",
            "/api-keys",
            &admin,
            Some(json!({"name": "ci", "type": "secret", "environment": "test", "permissions": ["x:read"]})),
        )
        .await;
    assert_eq!(created.status, 201);
    assert_ne!(created.request_id, "client-chosen");
    let new_id = created.body["id"].as_str().unwrap().to_owned();
    // A refusal: more than the caller holds.
    let refused = s
        .call(
            "POST",
            "/api-keys",
            &admin,
            Some(json!({"name": "x", "type": "secret", "environment": "test", "permissions": ["payments:write"]})),
        )
        .await;
    assert_eq!(refused.status, 403);
    // Another account's: recorded, but about acc_b by acc_a, so shown to neither.
    let elsewhere = s
        .call(
            "POST",
            "/api-keys",
            &admin,
            Some(json!({"name": "x", "type": "secret", "environment": "test", "permissions": [], "account_id": "acc_b"})),
        )
        .await;
    assert_eq!(elsewhere.status, 403);

    let r = s.get("/events", &admin).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let events = r.body["data"].as_array().unwrap().clone();
    // The fixture issues (by the local operator) and the two calls of this key.
    assert_eq!(field(&events, "action"), vec!["issue", "issue", "issue"]);
    assert_eq!(field(&events, "key_id")[0], admin_id);
    assert_eq!(
        field(&events, "actor"),
        vec!["local_operator", "key", "key"]
    );
    assert_eq!(events[1]["key_id"], json!(new_id));
    assert_eq!(events[1]["request_id"], json!(created.request_id));
    assert_eq!(events[1]["actor_key_id"], json!(admin_id));
    assert_eq!(events[1]["outcome"], json!("ok"));
    assert_eq!(events[1]["versions"], json!([1]));
    assert_eq!(events[2]["outcome"], json!("refused"));
    assert_eq!(events[2]["code"], json!("escalation"));
    assert_eq!(events[2]["missing_permissions"], json!(["payments:write"]));
    assert_eq!(events[2]["request_id"], json!(refused.request_id));
    assert_eq!(events[2]["hash"].as_str().unwrap().len(), 64);
    assert_eq!(events[2]["prev"], events[1]["hash"]);
    assert_eq!(r.body["has_more"], json!(false));
    // The other account sees its own issue only.
    let theirs = s.get("/events", &other).await;
    let theirs = theirs.body["data"].as_array().unwrap().clone();
    assert_eq!(field(&theirs, "action"), vec!["issue"]);
    assert_eq!(field(&theirs, "account_id"), vec!["acc_b"]);
}

#[tokio::test]
async fn a_keys_events_answer_404_out_of_reach_like_an_unknown_id() {
    let s = Server::start().await;
    let (a_id, a) = s.key("acc_a", &["api-key:read"]);
    let (b_id, _) = s.key("acc_b", &[]);
    let own = s.get(&format!("/api-keys/{a_id}/events"), &a).await;
    assert_eq!(own.status, 200);
    assert_eq!(own.body["data"].as_array().unwrap().len(), 1);
    let mut codes = Vec::new();
    for id in [b_id.as_str(), "key_0000000000000000000000000", "not-an-id"] {
        let r = s.get(&format!("/api-keys/{id}/events"), &a).await;
        assert_eq!(r.status, 404, "{id}: {}", r.body);
        codes.push((r.body["errorCode"].clone(), r.body["detail"].clone()));
    }
    assert!(codes.iter().all(|c| *c == codes[0]), "{codes:?}");
}

#[tokio::test]
async fn events_page_with_after_and_limit_and_refuse_bad_queries() {
    let s = Server::start().await;
    let (_, op) = s.key(OPERATOR_ACCOUNT, &["*"]);
    for _ in 0..4 {
        s.key("acc_a", &[]);
    }
    let mut seqs = Vec::new();
    let mut path = "/events?limit=2".to_owned();
    loop {
        let r = s.get(&path, &op).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let data = r.body["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        seqs.extend(data.iter().map(|e| e["seq"].as_u64().unwrap()));
        match r.body["next_cursor"].as_str() {
            Some(next) => path = format!("/events?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    let since = s.get("/events?since=2999-01-01T00:00:00Z", &op).await;
    assert_eq!(since.body["data"], json!([]));
    for bad in [
        "limit=0",
        "limit=101",
        "after=abc",
        "since=yesterday",
        "color=blue",
    ] {
        let r = s.get(&format!("/events?{bad}"), &op).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.body);
        assert_eq!(r.body["errorCode"], json!("validation_failed"));
    }
    let (_, no_read) = s.key("acc_a", &["x:read"]);
    assert_eq!(s.get("/events", &no_read).await.status, 403);
}

#[tokio::test]
async fn operators_pin_the_head_and_verify_against_it() {
    let s = Server::start().await;
    let (_, op) = s.key(OPERATOR_ACCOUNT, &["*"]);
    let (_, account_admin) = s.key("acc_a", &["*"]);
    let head = s.get("/events/head", &op).await;
    assert_eq!(head.status, 200, "{}", head.body);
    let pinned = head.body["head"]["head"].as_str().unwrap().to_owned();
    assert!(pinned.starts_with("2:"), "{pinned}");
    assert_eq!(head.body["head"]["seq"], json!(2));

    let ok = s.get(&format!("/events/verify?head={pinned}"), &op).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["intact"], json!(true));
    assert_eq!(ok.body["pinned"], json!("matched"));
    assert_eq!(ok.body["events"], json!(2));
    // A head the log never reached: its tail was cut.
    let (_, hash) = pinned.split_once(':').unwrap();
    let beyond = s.get(&format!("/events/verify?head=9:{hash}"), &op).await;
    assert_eq!(beyond.status, 200);
    assert_eq!(beyond.body["intact"], json!(false));
    assert_eq!(beyond.body["kind"], json!("tail_cut"));
    assert_eq!(beyond.body["broken_at"], json!(3));
    // Bad input, and the wrong tier.
    let bad = s.get("/events/verify?head=nope", &op).await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(s.get("/events/head", &account_admin).await.status, 403);
    assert_eq!(s.get("/events/verify", &account_admin).await.status, 403);
}

#[tokio::test]
async fn the_openapi_document_lists_the_event_endpoints() {
    let doc: Value = serde_json::from_str(&keyward::http::openapi_json()).unwrap();
    for path in [
        "/events",
        "/api-keys/{id}/events",
        "/events/head",
        "/events/verify",
    ] {
        assert!(doc["paths"][path]["get"].is_object(), "{path}");
    }
    assert!(doc["components"]["schemas"]["EventView"].is_object());
}

#[tokio::test]
async fn the_operator_sees_every_refusal() {
    let s = Server::start().await;
    let (_, op) = s.key(OPERATOR_ACCOUNT, &["*"]);
    let (_, a) = s.key("acc_a", &["api-key:read", "api-key:write"]);
    let (b_id, _) = s.key("acc_b", &[]);
    let r = s
        .call("DELETE", &format!("/api-keys/{b_id}"), &a, None)
        .await;
    assert_eq!(r.status, 404);
    let all = s.get("/events", &op).await;
    let events = all.body["data"].as_array().unwrap().clone();
    let last = events.last().unwrap();
    assert_eq!(last["action"], json!("revoke"));
    assert_eq!(last["code"], json!("not_found"));
    assert_eq!(last["key_id"], json!(b_id));
    assert_eq!(last["account_id"], json!("acc_b"));
    assert_eq!(last["request_id"], json!(r.request_id));
}
