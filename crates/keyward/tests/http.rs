//! The management service over real HTTP on loopback: every endpoint, every auth case, every
//! error status, and that no response leaks a key it should not.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use keyward::core::{Credential, Environment, KeyType, PermissionSet};
use keyward::{Config, Keyward, NewKey};
use serde_json::{Value, json};

/// Tests act as the local operator unless they say otherwise.
const OP: &keyward::Principal = &keyward::Principal::LocalOperator;

struct Server {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    kw: Keyward,
    /// Every plaintext key handed out so far; no later response may contain one.
    known: Mutex<Vec<String>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

struct Resp {
    status: u16,
    content_type: String,
    headers: axum::http::HeaderMap,
    text: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
}

impl Server {
    async fn start() -> Self {
        Self::start_with(Config::memory()).await
    }

    async fn start_with(config: Config) -> Self {
        let kw = Keyward::open(config).unwrap();
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
            known: Mutex::new(Vec::new()),
            _stop: tx,
        }
    }

    /// Issues a key directly through the engine.
    fn issue(
        &self,
        account: &str,
        key_type: KeyType,
        env: &str,
        perms: &[&str],
    ) -> (String, String) {
        let new = NewKey::new(
            account.parse().unwrap(),
            key_type,
            env.parse().unwrap(),
            "fixture".parse().unwrap(),
        )
        .with_permissions(PermissionSet::parse(perms).unwrap());
        let issued = self.kw.issue(OP, new).unwrap();
        let key = issued.key.expose_secret().to_owned();
        self.known.lock().unwrap().push(key.clone());
        (issued.credential.id.to_string(), key)
    }

    /// The account's root key: `*` within `acc_admin` (it reaches no other account).
    fn admin(&self) -> String {
        self.issue("acc_admin", KeyType::Secret, "production", &["*"])
            .1
    }

    /// An operator key, as `keyward init` makes it: `*` in the operator account.
    fn operator(&self) -> String {
        self.issue(
            keyward::OPERATOR_ACCOUNT,
            KeyType::Secret,
            "production",
            &["*"],
        )
        .1
    }

    fn remember(&self, key: &str) {
        self.known.lock().unwrap().push(key.to_owned());
    }

    async fn raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Resp {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self
            .client
            .request(req.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let everything = format!("{:?}{text}", parts.headers);
        for key in self.known.lock().unwrap().iter() {
            assert!(
                !everything.contains(key.as_str()),
                "response to {path} leaks a key: {text}"
            );
        }
        Resp {
            status: parts.status.as_u16(),
            content_type: parts
                .headers
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default(),
            headers: parts.headers,
            text,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(k) = key {
            headers.push(("x-api-key", k));
        }
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        self.raw(method, path, &headers, body).await
    }

    async fn get(&self, path: &str, key: &str) -> Resp {
        self.call(Method::GET, path, Some(key), None).await
    }

    async fn post(&self, path: &str, key: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(key), Some(body)).await
    }

    /// Creates a key over HTTP and returns (id, key).
    async fn create(&self, key: &str, body: Value) -> (String, String) {
        let r = self.post("/api-keys", key, body).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let v = r.json();
        let plain = v["key"].as_str().unwrap().to_owned();
        self.remember(&plain);
        (v["id"].as_str().unwrap().to_owned(), plain)
    }

    /// Every credential, for "nothing changed" checks.
    fn snapshot(&self) -> Vec<keyward::core::Credential> {
        let page = self
            .kw
            .list(
                OP,
                &keyward::store::ListQuery {
                    limit: 1000,
                    ..Default::default()
                },
            )
            .unwrap();
        page.items
    }
}

/// Checks the RFC 9457 shape and returns the body.
fn problem(r: &Resp, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.content_type, "application/problem+json", "{}", r.text);
    let v = r.json();
    for field in [
        "type",
        "title",
        "detail",
        "instance",
        "requestId",
        "errorCode",
    ] {
        assert!(v[field].is_string(), "problem lacks {field}: {v}");
    }
    assert_eq!(v["status"], status);
    assert_eq!(
        r.headers.get("x-request-id").unwrap().to_str().unwrap(),
        v["requestId"].as_str().unwrap()
    );
    v
}

/// Checks ServiceStack's error envelope (what its clients parse, instead of a problem
/// document) and returns its `ResponseStatus`.
fn servicestack_error(r: &Resp, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.content_type, "application/json", "{}", r.text);
    let v = r.json();
    assert_eq!(keys_of(&v), set(&["ResponseStatus"]), "{v}");
    let rs = v["ResponseStatus"].clone();
    assert!(rs["ErrorCode"].is_string(), "{v}");
    assert!(rs["Message"].is_string(), "{v}");
    assert_eq!(
        r.headers.get("x-request-id").unwrap().to_str().unwrap(),
        rs["Meta"]["RequestId"].as_str().unwrap()
    );
    if let Some(errors) = rs.get("Errors") {
        for e in errors.as_array().unwrap() {
            assert_eq!(
                keys_of(e),
                set(&["ErrorCode", "FieldName", "Message"]),
                "{v}"
            );
        }
    }
    rs
}

/// The `FieldName`s of a ServiceStack error.
fn servicestack_fields(rs: &Value) -> BTreeSet<String> {
    rs["Errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["FieldName"].as_str().unwrap().to_owned())
        .collect()
}

fn invalid_names(v: &Value) -> BTreeSet<String> {
    let fields = v["invalidFields"].as_array().unwrap();
    for f in fields {
        assert!(f["name"].is_string() && f["message"].is_string(), "{f}");
        assert!(f.get("value").is_some(), "{f}");
    }
    assert!(v["errors"].is_object(), "{v}");
    fields
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect()
}

fn keys_of(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn openapi_document_lists_every_endpoint() {
    let s = Server::start().await;
    let r = s.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api-keys",
        "/api-keys/{id}",
        "/api-keys/{id}/regenerate",
        "/apikeys/regenerate",
        "/auth/apikeys/regenerate",
        "/auth/apikeys/regenerate/{environment}",
        "/verify",
        "/whoami",
    ] {
        assert!(paths.contains_key(p), "missing {p}");
    }
    for m in ["post", "get"] {
        assert!(paths["/api-keys"][m].is_object());
    }
    for m in ["get", "patch", "delete"] {
        assert!(paths["/api-keys/{id}"][m].is_object());
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["api_key"]["name"], "X-API-KEY");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    let regen = &doc["components"]["schemas"]["RegeneratedApiKey"]["properties"];
    assert_eq!(
        keys_of(regen),
        set(&[
            "id",
            "account_id",
            "environment",
            "key",
            "type",
            "created_at",
            "modified_at",
            "name",
            "permissions"
        ])
    );
}

#[tokio::test]
async fn create_get_list_update_delete() {
    let s = Server::start().await;
    let admin = s.admin();
    let (id, key) = s
        .create(
            &admin,
            json!({"name": "Backend", "type": "restricted", "environment": "test",
                   "permissions": ["payment:read", "business:*"], "meta": {"team": "core"},
                   "expires_at": "2099-01-01T00:00:00Z"}),
        )
        .await;
    assert!(key.starts_with("rk_test_"));
    let who = s.kw.verify(&key).unwrap();
    assert_eq!(who.account().as_str(), "acc_admin");
    assert_eq!(who.id().as_str(), id);

    let r = s.get(&format!("/api-keys/{id}"), &admin).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["account_id"], "acc_admin");
    assert_eq!(v["environment"], "test");
    assert_eq!(v["type"], "restricted");
    assert_eq!(v["name"], "Backend");
    assert_eq!(v["permissions"], json!(["business:*", "payment:read"]));
    assert_eq!(v["meta"], json!({"team": "core"}));
    assert_eq!(v["expires_at"], "2099-01-01T00:00:00.000Z");
    assert_eq!(v["status"], "active");
    assert!(v.get("key").is_none());

    // Bearer works as well as X-API-KEY.
    let auth = format!("Bearer {admin}");
    let r = s
        .raw(
            Method::GET,
            "/api-keys?limit=1",
            &[("authorization", auth.as_str())],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let page = r.json();
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["has_more"], true);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let r = s
        .get(
            &format!("/api-keys?limit=1&starting_after={cursor}"),
            &admin,
        )
        .await;
    let page2 = r.json();
    assert_eq!(page2["data"].as_array().unwrap().len(), 1);
    assert_eq!(page2["has_more"], false);
    assert_ne!(page["data"][0]["id"], page2["data"][0]["id"]);
    let r = s
        .get("/api-keys?environment=test&type=restricted", &admin)
        .await;
    let only = r.json();
    assert_eq!(only["data"].as_array().unwrap().len(), 1);
    assert_eq!(only["data"][0]["id"], id.as_str());

    let r = s
        .call(
            Method::PATCH,
            &format!("/api-keys/{id}"),
            Some(&admin),
            Some(
                json!({"name": "Renamed", "permissions": ["payment:write"], "meta": {},
                        "expires_at": null, "enabled": false}),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["name"], "Renamed");
    assert_eq!(v["permissions"], json!(["payment:write"]));
    assert_eq!(v["meta"], json!({}));
    assert_eq!(v["expires_at"], Value::Null);
    assert_eq!(v["status"], "disabled");
    assert_eq!(s.kw.verify(&key).unwrap_err().code(), "disabled");
    let r = s
        .call(
            Method::PATCH,
            &format!("/api-keys/{id}"),
            Some(&admin),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(r.json()["status"], "active");
    assert!(s.kw.verify(&key).is_ok());

    let r = s
        .call(
            Method::DELETE,
            &format!("/api-keys/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "revoked");
    assert_eq!(s.kw.verify(&key).unwrap_err().code(), "revoked");
    // Regenerating a revoked key is a conflict, not a server error.
    let r = s
        .call(
            Method::POST,
            &format!("/api-keys/{id}/regenerate"),
            Some(&admin),
            None,
        )
        .await;
    problem(&r, 409);
}

#[tokio::test]
async fn authentication_and_authorisation() {
    let s = Server::start().await;
    let admin = s.admin();
    let (_, reader) = s.issue("acc_1", KeyType::Secret, "production", &["api-key:read"]);
    let (_, writer) = s.issue(
        "acc_1",
        KeyType::Secret,
        "production",
        &["api-key:read", "api-key:write"],
    );
    let (_, restricted) = s.issue(
        "acc_1",
        KeyType::Restricted,
        "production",
        &["api-key:write", "api-key:read"],
    );
    let (other_id, _) = s.issue("acc_2", KeyType::Secret, "test", &["api-key:read"]);
    let create = json!({"name": "x", "type": "secret", "environment": "test", "permissions": []});

    // Missing key.
    let r = s.call(Method::GET, "/api-keys", None, None).await;
    assert_eq!(problem(&r, 401)["errorCode"], "missing_api_key");
    // Invalid keys: garbage, well-formed but unknown, wrong scheme.
    let r = s.get("/api-keys", "sk_prod_nope").await;
    assert_eq!(problem(&r, 401)["errorCode"], "invalid_api_key");
    let forged = format!("sk_prod_{}", "A".repeat(55));
    let r = s.get("/api-keys", &forged).await;
    let v = problem(&r, 401);
    assert!(!r.text.contains(&forged), "{v}");
    let basic = format!("Basic {admin}");
    let r = s
        .raw(
            Method::GET,
            "/api-keys",
            &[("authorization", basic.as_str())],
            Vec::new(),
        )
        .await;
    problem(&r, 401);
    // Revoked caller.
    let (rid, revoked) = s.issue("acc_1", KeyType::Secret, "production", &["api-key:read"]);
    s.kw.revoke(OP, &rid.parse().unwrap()).unwrap();
    problem(&s.get("/api-keys", &revoked).await, 401);

    // Reads need api-key:read, writes api-key:write, both a secret key.
    assert_eq!(s.get("/api-keys", &reader).await.status, 200);
    let r = s.post("/api-keys", &reader, create.clone()).await;
    assert_eq!(problem(&r, 403)["errorCode"], "missing_permission");
    let r = s.get("/api-keys", &restricted).await;
    assert_eq!(problem(&r, 403)["errorCode"], "secret_key_required");
    let r = s.post("/verify", &writer, json!({"key": admin})).await;
    problem(&r, 403);

    // Another account's key answers exactly like an unknown id (404, same body but the request
    // id and path), for reads and writes; its own account is listed.
    let unknown = "key_0000000000000000000000000";
    let same_as_unknown = |r: &Resp, u: &Resp| {
        let (mut a, mut b) = (problem(r, 404), problem(u, 404));
        for v in [&mut a, &mut b] {
            v.as_object_mut().unwrap().remove("requestId");
            v.as_object_mut().unwrap().remove("instance");
        }
        assert_eq!(a, b);
    };
    let r = s.get(&format!("/api-keys/{other_id}"), &writer).await;
    let u = s.get(&format!("/api-keys/{unknown}"), &writer).await;
    same_as_unknown(&r, &u);
    for (method, suffix, body) in [
        (Method::DELETE, "", None),
        (Method::POST, "/regenerate", None),
        (Method::PATCH, "", Some(json!({"name": "mine now"}))),
    ] {
        let r = s
            .call(
                method.clone(),
                &format!("/api-keys/{other_id}{suffix}"),
                Some(&writer),
                body.clone(),
            )
            .await;
        let u = s
            .call(
                method,
                &format!("/api-keys/{unknown}{suffix}"),
                Some(&writer),
                body,
            )
            .await;
        same_as_unknown(&r, &u);
    }
    let r = s.get("/api-keys?account_id=acc_2", &writer).await;
    assert_eq!(problem(&r, 403)["errorCode"], "other_account");
    let mut with_account = create.clone();
    with_account["account_id"] = json!("acc_2");
    assert_eq!(
        problem(
            &s.post("/api-keys", &writer, with_account.clone()).await,
            403
        )["errorCode"],
        "other_account"
    );
    // Nor does an account's `*` key reach another account.
    let r = s.get(&format!("/api-keys/{other_id}"), &admin).await;
    problem(&r, 404);
    problem(&s.get("/api-keys?account_id=acc_2", &admin).await, 403);
    problem(
        &s.post("/api-keys", &admin, with_account.clone()).await,
        403,
    );
    let r = s.get("/api-keys", &writer).await;
    let mine = r.json();
    assert!(
        mine["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["account_id"] == "acc_1")
    );

    // An operator key reaches other accounts.
    let operator = s.operator();
    let r = s.get(&format!("/api-keys/{other_id}"), &operator).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s.get("/api-keys?account_id=acc_2", &operator).await;
    assert_eq!(r.json()["data"][0]["id"], other_id.as_str());
    let (new_id, _) = s.create(&operator, with_account).await;
    assert_eq!(
        s.kw.get(OP, &new_id.parse().unwrap())
            .unwrap()
            .account
            .as_str(),
        "acc_2"
    );

    // whoami: any valid key, its own record.
    let r = s.get("/whoami", &restricted).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["type"], "restricted");
    problem(&s.call(Method::GET, "/whoami", None, None).await, 401);
}

#[tokio::test]
async fn unknown_ids_routes_and_methods() {
    let s = Server::start().await;
    let admin = s.admin();
    let r = s
        .get("/api-keys/key_0000000000000000000000000", &admin)
        .await;
    assert_eq!(problem(&r, 404)["errorCode"], "not_found");
    problem(&s.get("/api-keys/not-an-id", &admin).await, 404);
    // A key in the path is never echoed (instance is redacted).
    let r = s.get(&format!("/api-keys/{admin}"), &admin).await;
    let v = problem(&r, 404);
    assert_eq!(v["instance"], "/api-keys/[redacted]");
    problem(
        &s.call(
            Method::PATCH,
            "/api-keys/key_0000000000000000000000000",
            Some(&admin),
            Some(json!({})),
        )
        .await,
        404,
    );
    problem(
        &s.call(
            Method::DELETE,
            "/api-keys/key_0000000000000000000000000",
            Some(&admin),
            None,
        )
        .await,
        404,
    );
    problem(
        &s.call(
            Method::POST,
            "/api-keys/key_0000000000000000000000000/regenerate",
            Some(&admin),
            None,
        )
        .await,
        404,
    );
    problem(&s.get("/nowhere", &admin).await, 404);
    let r = s.call(Method::PUT, "/api-keys", Some(&admin), None).await;
    problem(&r, 405);
    assert!(r.headers.get("allow").is_some());
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let s = Server::start().await;
    let admin = s.admin();
    let (id, key) = s
        .create(&admin, json!({"name": "Keep", "type": "secret", "environment": "test", "permissions": ["a:b"]}))
        .await;
    let before = s.snapshot();

    // 400: not JSON.
    for body in ["{", "not json", "{\"name\": }", "\u{0}"] {
        let r = s
            .raw(
                Method::POST,
                "/api-keys",
                &[("x-api-key", admin.as_str())],
                body.as_bytes().to_vec(),
            )
            .await;
        assert_eq!(problem(&r, 400)["errorCode"], "invalid_json");
    }
    let r = s
        .raw(
            Method::PATCH,
            &format!("/api-keys/{id}"),
            &[("x-api-key", admin.as_str())],
            b"[1,".to_vec(),
        )
        .await;
    problem(&r, 400);

    // 413: body over 64 KiB.
    let huge = json!({"name": "x".repeat(70 * 1024), "type": "secret", "environment": "test", "permissions": []});
    let r = s.post("/api-keys", &admin, huge).await;
    assert_eq!(problem(&r, 413)["errorCode"], "payload_too_large");

    // 422: validation, with every invalid field named.
    let base = json!({"name": "ok", "type": "secret", "environment": "test", "permissions": []});
    let cases: Vec<(Value, &[&str])> = vec![
        (json!({"name": ""}), &["name"]),
        (json!({"name": "   "}), &["name"]),
        (json!({"name": "a".repeat(101)}), &["name"]),
        (json!({"name": "line\nbreak"}), &["name"]),
        (
            json!({"type": "restricted", "permissions": []}),
            &["permissions"],
        ),
        (json!({"type": "admin"}), &["type"]),
        (json!({"type": 3}), &["type"]),
        (json!({"environment": "Prod!"}), &["environment"]),
        (json!({"environment": "prod"}), &["environment"]),
        (json!({"environment": "x".repeat(17)}), &["environment"]),
        (json!({"permissions": ["Bad Perm", 7]}), &["permissions[1]"]),
        (
            json!({"permissions": ["Bad Perm", "ok:ok"]}),
            &["permissions[0]"],
        ),
        (json!({"permissions": "a:b"}), &["permissions"]),
        (json!({"expires_at": "yesterday"}), &["expires_at"]),
        (
            json!({"expires_at": "2001-01-01T00:00:00Z"}),
            &["expires_at"],
        ),
        (json!({"meta": {"k": 1}}), &["meta.k"]),
        (json!({"meta": {"": "v"}}), &["meta"]),
        (json!({"account_id": "has space"}), &["account_id"]),
        (json!({"surprise": true}), &["surprise"]),
        (
            json!({"name": "", "type": "nope", "environment": "!"}),
            &["name", "type", "environment"],
        ),
    ];
    for (patch, expected) in cases {
        let mut body = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = s.post("/api-keys", &admin, body.clone()).await;
        let v = problem(&r, 422);
        assert_eq!(invalid_names(&v), set(expected), "{body}: {v}");
    }
    for missing in ["name", "type", "environment", "permissions"] {
        let mut body = base.clone();
        body.as_object_mut().unwrap().remove(missing);
        let v = problem(&s.post("/api-keys", &admin, body).await, 422);
        assert_eq!(invalid_names(&v), set(&[missing]));
    }
    let v = problem(&s.post("/api-keys", &admin, json!([1, 2])).await, 422);
    assert_eq!(invalid_names(&v), set(&["body"]));

    // A value that could be a key is never echoed.
    let mut body = base.clone();
    body["name"] = json!(format!("see {key}"));
    body["type"] = json!(key);
    let r = s.post("/api-keys", &admin, body).await;
    let v = problem(&r, 422);
    assert!(
        v["invalidFields"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["value"] != json!(key))
    );

    // PATCH, regenerate and the environment endpoints validate too.
    let path = format!("/api-keys/{id}");
    let patch = |body: Value| s.call(Method::PATCH, &path, Some(&admin), Some(body));
    problem(&patch(json!({"name": ""})).await, 422);
    problem(&patch(json!({"name": "a".repeat(101)})).await, 422);
    problem(&patch(json!({"enabled": "yes"})).await, 422);
    problem(&patch(json!({"type": "restricted"})).await, 422);
    problem(&patch(json!({"expires_at": 5})).await, 422);
    let regen_path = format!("/api-keys/{id}/regenerate");
    let regen = |body: Value| s.call(Method::POST, &regen_path, Some(&admin), Some(body));
    problem(&regen(json!({"grace_period_seconds": -1})).await, 422);
    problem(&regen(json!({"grace_period_seconds": "1h"})).await, 422);
    problem(
        &regen(json!({"activation_delay_seconds": u64::MAX})).await,
        422,
    );
    problem(&regen(json!({"other": 1})).await, 422);
    problem(&s.post("/apikeys/regenerate", &admin, json!({})).await, 422);
    problem(
        &s.post(
            "/apikeys/regenerate",
            &admin,
            json!({"environment": "NOPE"}),
        )
        .await,
        422,
    );
    problem(
        &s.post("/apikeys/regenerate", &admin, json!({"environment": 1}))
            .await,
        422,
    );
    // The ServiceStack routes answer in ServiceStack's envelope, naming the field.
    let rs = servicestack_error(
        &s.post(
            "/auth/apikeys/regenerate",
            &admin,
            json!({"Environment": "Bad Env"}),
        )
        .await,
        422,
    );
    assert_eq!(rs["ErrorCode"], "ValidationFailed");
    assert_eq!(servicestack_fields(&rs), set(&["Environment"]));
    assert_eq!(rs["Errors"][0]["ErrorCode"], "InvalidValue");
    let rs = servicestack_error(
        &s.post("/auth/apikeys/regenerate/BAD", &admin, json!({}))
            .await,
        422,
    );
    assert_eq!(servicestack_fields(&rs), set(&["Environment"]));
    problem(&s.get("/api-keys?limit=0", &admin).await, 422);
    problem(&s.get("/api-keys?limit=many", &admin).await, 422);
    problem(&s.get("/api-keys?type=admin", &admin).await, 422);
    problem(&s.get("/api-keys?environment=NOPE", &admin).await, 422);
    problem(&s.get("/api-keys?starting_after=zzz", &admin).await, 422);
    let restricted = s
        .create(&admin, json!({"name": "R", "type": "restricted", "environment": "test", "permissions": ["a:b"]}))
        .await;
    let before = {
        let mut b = before;
        b.push(Credential::clone(
            &s.kw.get(OP, &restricted.0.parse().unwrap()).unwrap(),
        ));
        b.sort_by(|a, b| a.id.cmp(&b.id));
        b
    };
    let r = s
        .call(
            Method::PATCH,
            &format!("/api-keys/{}", restricted.0),
            Some(&admin),
            Some(json!({"permissions": []})),
        )
        .await;
    assert_eq!(invalid_names(&problem(&r, 422)), set(&["permissions"]));
    // Unauthenticated bad input is a 401, whatever the body.
    problem(
        &s.call(Method::POST, "/api-keys", None, Some(json!({"name": ""})))
            .await,
        401,
    );

    assert_eq!(s.snapshot(), before, "bad input changed stored state");
    assert!(s.kw.verify(&key).is_ok());
}

#[tokio::test]
async fn regenerate_by_id_has_exactly_the_documented_fields() {
    let s = Server::start().await;
    let admin = s.admin();
    let (id, old) = s
        .create(&admin, json!({"name": "Test Application", "type": "publishable", "environment": "production", "permissions": ["business:read"]}))
        .await;
    let r = s
        .call(
            Method::POST,
            &format!("/api-keys/{id}/regenerate"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.content_type, "application/json");
    let v = r.json();
    assert_eq!(
        keys_of(&v),
        set(&[
            "id",
            "account_id",
            "environment",
            "key",
            "type",
            "created_at",
            "modified_at",
            "name",
            "permissions"
        ])
    );
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["account_id"], "acc_admin");
    assert_eq!(v["environment"], "production");
    assert_eq!(v["type"], "publishable");
    assert_eq!(v["name"], "Test Application");
    assert_eq!(v["permissions"], json!(["business:read"]));
    for t in ["created_at", "modified_at"] {
        let text = v[t].as_str().unwrap();
        assert!(
            text.parse::<keyward::core::Timestamp>().is_ok() && text.ends_with('Z'),
            "{text}"
        );
    }
    let new = v["key"].as_str().unwrap().to_owned();
    s.remember(&new);
    assert!(new.starts_with("pk_prod_"));
    assert_ne!(new, old);
    // Both work during the grace period; same id.
    assert_eq!(s.kw.verify(&new).unwrap().id().as_str(), id);
    assert_eq!(s.kw.verify(&old).unwrap().id().as_str(), id);

    // Regenerating again would cut the grace promised to `old`: 409, nothing changed.
    let before = s.snapshot();
    let r = s
        .post(
            &format!("/api-keys/{id}/regenerate"),
            &admin,
            json!({"grace_period_seconds": 0}),
        )
        .await;
    let v = problem(&r, 409);
    assert_eq!(v["errorCode"], "grace_in_progress");
    assert!(v["detail"].as_str().unwrap().contains("version 1"), "{v}");
    assert_eq!(s.snapshot(), before);
    assert!(s.kw.verify(&old).is_ok());
    // With a zero grace period, and the earlier one given up explicitly, the previous keys
    // stop at once.
    let r = s
        .post(
            &format!("/api-keys/{id}/regenerate"),
            &admin,
            json!({"grace_period_seconds": 0, "end_earlier_grace": true}),
        )
        .await;
    let newer = r.json()["key"].as_str().unwrap().to_owned();
    s.remember(&newer);
    assert!(s.kw.verify(&new).is_err());
    assert!(s.kw.verify(&old).is_err());
    assert!(s.kw.verify(&newer).is_ok());
    // An activation delay makes the new key wait.
    let r = s
        .post(
            &format!("/api-keys/{id}/regenerate"),
            &admin,
            json!({"activation_delay_seconds": 3600}),
        )
        .await;
    let pending = r.json()["key"].as_str().unwrap().to_owned();
    s.remember(&pending);
    assert_eq!(s.kw.verify(&pending).unwrap_err().code(), "not_yet_active");
    assert!(s.kw.verify(&newer).is_ok());
}

#[tokio::test]
async fn regenerate_by_environment() {
    let s = Server::start().await;
    let admin = s.admin();
    let before = s.snapshot().len();
    let r = s
        .post(
            "/apikeys/regenerate",
            &admin,
            json!({"environment": "staging"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(keys_of(&v), set(&["key"]));
    let first = v["key"].as_str().unwrap().to_owned();
    s.remember(&first);
    let who = s.kw.verify(&first).unwrap();
    assert_eq!(who.environment().as_str(), "staging");
    assert_eq!(who.key_type(), KeyType::Secret);
    assert_eq!(s.kw.get(OP, who.id()).unwrap().name.as_str(), "staging");
    assert_eq!(who.account().as_str(), "acc_admin");
    // Made on the caller's behalf: never the caller's `*` nor its management scopes.
    assert_eq!(who.permissions(), &PermissionSet::new());
    assert_eq!(s.snapshot().len(), before + 1);
    // A caller's product permissions are passed on, its `api-key:…` ones are not.
    let (_, scoped) = s.issue(
        "acc_scoped",
        KeyType::Secret,
        "production",
        &[
            "api-key:write",
            "api-key:admin",
            "business:read",
            "payment:*",
        ],
    );
    let r = s
        .post(
            "/apikeys/regenerate",
            &scoped,
            json!({"environment": "test"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let made = r.json()["key"].as_str().unwrap().to_owned();
    s.remember(&made);
    assert_eq!(
        s.kw.verify(&made).unwrap().permissions(),
        &PermissionSet::parse(["business:read", "payment:*"]).unwrap()
    );

    // Again: the same key is regenerated (same id), the previous one in its grace period.
    let r = s
        .post(
            "/apikeys/regenerate",
            &admin,
            json!({"environment": "staging"}),
        )
        .await;
    let second = r.json()["key"].as_str().unwrap().to_owned();
    s.remember(&second);
    assert_eq!(s.kw.verify(&second).unwrap().id(), who.id());
    assert!(s.kw.verify(&first).is_ok());
    assert_eq!(s.snapshot().len(), before + 3);

    // ServiceStack shape: every key of the account in the caller's environment.
    let (_, other) = s.issue("acc_admin", KeyType::Publishable, "production", &[]);
    s.issue("acc_other", KeyType::Secret, "production", &[]);
    let r = s
        .call(Method::POST, "/auth/apikeys/regenerate", Some(&admin), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(keys_of(&v), set(&["Results", "Meta", "ResponseStatus"]));
    assert_eq!(v["Meta"], json!({}));
    assert_eq!(v["ResponseStatus"], json!({}));
    let results = v["Results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{v}");
    let mut types = BTreeSet::new();
    let mut admin = admin;
    for item in results {
        assert_eq!(
            keys_of(item),
            set(&["Key", "KeyType", "ExpiryDate", "Meta"])
        );
        let k = item["Key"].as_str().unwrap().to_owned();
        s.remember(&k);
        let who = s.kw.verify(&k).unwrap();
        assert_eq!(who.account().as_str(), "acc_admin");
        assert_eq!(who.environment().as_str(), "production");
        if item["KeyType"] == "secret" {
            // The caller regenerated itself: its presented key is now in grace (and acts only
            // until then), so go on with the new one.
            admin = k.clone();
        }
        types.insert(item["KeyType"].as_str().unwrap().to_owned());
    }
    assert_eq!(types, set(&["publishable", "secret"]));
    // The old keys still work in their grace period.
    assert!(s.kw.verify(&other).is_ok());

    // The path names the environment. The staging key was regenerated minutes ago: its first
    // secret is promised a day of grace, so it is skipped (and named), not cut short.
    let r = s
        .post("/auth/apikeys/regenerate/staging", &admin, json!({}))
        .await;
    let v = r.json();
    assert_eq!(v["Results"], json!([]), "{v}");
    assert_eq!(v["Meta"], json!({"skipped": who.id().as_str()}));
    assert!(s.kw.verify(&first).is_ok());
    assert!(s.kw.verify(&second).is_ok());
    // Once those graces are given up explicitly (and the next one is zero), the staging key
    // is regenerated.
    let r = s
        .post(
            &format!("/api-keys/{}/regenerate", who.id()),
            &admin,
            json!({"end_earlier_grace": true, "grace_period_seconds": 0}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    s.remember(r.json()["key"].as_str().unwrap());
    assert!(s.kw.verify(&first).is_err());
    assert!(s.kw.verify(&second).is_err());
    let r = s
        .post("/auth/apikeys/regenerate/staging", &admin, json!({}))
        .await;
    let v = r.json();
    let results = v["Results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{v}");
    assert_eq!(v["Meta"], json!({}));
    s.remember(results[0]["Key"].as_str().unwrap());
    assert_eq!(results[0]["KeyType"], "secret");
    assert_eq!(results[0]["ExpiryDate"], Value::Null);
    // And so can the body.
    let r = s
        .post(
            "/auth/apikeys/regenerate",
            &admin,
            json!({"Environment": "nothing"}),
        )
        .await;
    assert_eq!(r.json()["Results"], json!([]));
}

#[tokio::test]
async fn verify_endpoint_answers_for_any_account() {
    let s = Server::start().await;
    let (_, gateway) = s.issue(
        "acc_gw",
        KeyType::Restricted,
        "production",
        &["api-key:verify"],
    );
    let (id, key) = s.issue("acc_9", KeyType::Secret, "test", &["payment:read"]);
    let r = s.post("/verify", &gateway, json!({"key": key})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(
        keys_of(&v),
        set(&[
            "valid",
            "code",
            "key_id",
            "account_id",
            "environment",
            "type",
            "permissions",
            "meta",
            "expires_at",
            "reason"
        ])
    );
    assert_eq!(v["valid"], true);
    assert_eq!(v["code"], "valid");
    assert_eq!(v["reason"], Value::Null);
    assert_eq!(v["key_id"], id.as_str());
    assert_eq!(v["account_id"], "acc_9");
    assert_eq!(v["environment"], "test");
    assert_eq!(v["type"], "secret");
    assert_eq!(v["permissions"], json!(["payment:read"]));

    let code = |body: Value| {
        let s = &s;
        let gateway = gateway.clone();
        async move {
            let r = s.post("/verify", &gateway, body).await;
            assert_eq!(r.status, 200, "{}", r.text);
            let v = r.json();
            assert_eq!(v["valid"], v["code"] == "valid");
            // A refusal says why in words; an acceptance does not.
            assert_eq!(v["reason"].is_string(), v["code"] != "valid", "{v}");
            v["code"].as_str().unwrap().to_owned()
        }
    };
    assert_eq!(
        code(json!({"key": key, "environment": "production"})).await,
        "wrong_environment"
    );
    assert_eq!(
        code(json!({"key": key, "permission": "payment:write"})).await,
        "missing_permission"
    );
    assert_eq!(
        code(json!({"key": key, "environment": "test", "permission": "payment:read"})).await,
        "valid"
    );
    assert_eq!(code(json!({"key": "sk_prod_short"})).await, "malformed");
    assert_eq!(code(json!({"key": ""})).await, "malformed");
    s.kw.revoke(OP, &id.parse().unwrap()).unwrap();
    assert_eq!(code(json!({"key": key})).await, "revoked");

    // The presented key is never echoed, even when the request is invalid.
    let r = s
        .post(
            "/verify",
            &gateway,
            json!({"key": key, "environment": "BAD!"}),
        )
        .await;
    let v = problem(&r, 422);
    assert_eq!(invalid_names(&v), set(&["environment"]));
    let r = s
        .post("/verify", &gateway, json!({"key": key, "permission": "no"}))
        .await;
    problem(&r, 422);
    let r = s.post("/verify", &gateway, json!({"key": [key]})).await;
    let v = problem(&r, 422);
    assert_eq!(v["invalidFields"][0]["value"], "[redacted]");
    problem(&s.post("/verify", &gateway, json!({})).await, 422);
    problem(
        &s.post("/verify", &gateway, json!({"key": key, "extra": 1}))
            .await,
        422,
    );
}

#[cfg(feature = "sled")]
#[tokio::test]
async fn works_on_the_sled_store() {
    let dir = tempfile::tempdir().unwrap();
    let s =
        Server::start_with(Config::sled(dir.path().join("store")).with_development_pepper()).await;
    let admin = s.admin();
    let (id, _) = s
        .create(
            &admin,
            json!({"name": "On disk", "type": "secret", "environment": "test", "permissions": []}),
        )
        .await;
    let r = s
        .call(
            Method::POST,
            &format!("/api-keys/{id}/regenerate"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    s.remember(r.json()["key"].as_str().unwrap());
    assert_eq!(
        s.get(&format!("/api-keys/{id}"), &admin).await.json()["versions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let r = s
        .call(
            Method::DELETE,
            &format!("/api-keys/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.json()["status"], "revoked");
}

#[tokio::test]
async fn environment_checks_use_the_engine_environments() {
    // Unknown-but-valid custom environments are accepted everywhere an environment is.
    let s = Server::start().await;
    let admin = s.admin();
    let (_, key) = s
        .create(
            &admin,
            json!({"name": "eu", "type": "secret", "environment": "eu1", "permissions": []}),
        )
        .await;
    assert_eq!(
        s.kw.verify(&key).unwrap().environment(),
        &"eu1".parse::<Environment>().unwrap()
    );
}

#[tokio::test]
async fn junk_never_yields_a_server_error() {
    let s = Server::start().await;
    let admin = s.admin();
    let (id, _) = s.issue("acc_admin", KeyType::Secret, "test", &[]);
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let bodies: Vec<Vec<u8>> = vec![
        b"null".to_vec(),
        b"1".to_vec(),
        b"\"s\"".to_vec(),
        b"[]".to_vec(),
        b"{\"name\": null, \"type\": null, \"environment\": null, \"permissions\": null}".to_vec(),
        b"{\"name\": {}, \"type\": [], \"environment\": 1.5, \"permissions\": [[]], \"meta\": []}"
            .to_vec(),
        b"{\"expires_at\": \"9999-12-31T23:59:59.999Z\", \"grace_period_seconds\": 1e300}".to_vec(),
        b"{\"key\": \"\\u0000\", \"environment\": \"\\ud800\"}".to_vec(),
        b"{\"name\": \"a\", \"name\": \"b\"}".to_vec(),
        vec![0xff, 0xfe, 0x00],
        deep.into_bytes(),
    ];
    let paths = [
        (Method::POST, "/api-keys".to_owned()),
        (
            Method::GET,
            "/api-keys?limit=99999999999999999999&type=%FF".to_owned(),
        ),
        (Method::PATCH, format!("/api-keys/{id}")),
        (Method::POST, format!("/api-keys/{id}/regenerate")),
        (Method::POST, "/apikeys/regenerate".to_owned()),
        (Method::POST, "/auth/apikeys/regenerate".to_owned()),
        (Method::POST, "/auth/apikeys/regenerate/%FF%FE".to_owned()),
        (Method::POST, "/verify".to_owned()),
        (Method::GET, "/api-keys/%FF".to_owned()),
    ];
    for (method, path) in &paths {
        for body in &bodies {
            let r = s
                .raw(
                    method.clone(),
                    path,
                    &[("x-api-key", admin.as_str())],
                    body.clone(),
                )
                .await;
            assert!(r.status < 500, "{method} {path}: {} {}", r.status, r.text);
            if r.status >= 400 && path.starts_with("/auth/apikeys/regenerate") {
                servicestack_error(&r, r.status);
            } else if r.status >= 400 {
                problem(&r, r.status);
            }
        }
    }
}

#[tokio::test]
async fn admin_export_needs_an_operator_with_read_and_admin_and_streams_the_export() {
    let s = Server::start().await;
    let operator = s.operator();
    // Every account's keys leave in an export: an account key, even one holding `*`, reaches
    // its own account only.
    let account_admin = s.admin();
    let (_, reader) = s.issue("acc_1", KeyType::Secret, "production", &["api-key:read"]);
    let (_, admin_only) = s.issue("acc_1", KeyType::Secret, "production", &["api-key:admin"]);
    let (_, operator_reader) = s.issue(
        keyward::OPERATOR_ACCOUNT,
        KeyType::Secret,
        "production",
        &["api-key:read"],
    );
    let (_, restricted) = s.issue(
        "acc_1",
        KeyType::Restricted,
        "production",
        &["api-key:read", "api-key:admin"],
    );
    problem(&s.call(Method::GET, "/admin/export", None, None).await, 401);
    let r = s.get("/admin/export", &admin_only).await;
    assert_eq!(problem(&r, 403)["errorCode"], "missing_permission");
    for key in [&reader, &account_admin] {
        let r = s.get("/admin/export", key).await;
        assert_eq!(problem(&r, 403)["errorCode"], "deployment_wide_only");
    }
    let r = s.get("/admin/export", &operator_reader).await;
    let p = problem(&r, 403);
    assert_eq!(p["errorCode"], "deployment_wide_only");
    assert_eq!(
        p["missingPermissions"],
        serde_json::json!(["api-key:admin"])
    );
    let r = s.get("/admin/export", &restricted).await;
    assert_eq!(problem(&r, 403)["errorCode"], "secret_key_required");

    let r = s.get("/admin/export", &operator).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.content_type, "application/jsonl");
    assert_eq!(r.headers.get("cache-control").unwrap(), "no-store");
    // The same bytes as the engine's export, but for the header's time and so the trailer's
    // digest.
    let mut direct = Vec::new();
    s.kw.export(&keyward::Principal::LocalOperator, &mut direct)
        .unwrap();
    let direct = String::from_utf8(direct).unwrap();
    let strip = |text: &str| -> Vec<String> {
        let n = text.lines().count();
        text.lines()
            .enumerate()
            .filter(|(i, _)| *i != 0 && *i != n - 1)
            .map(|(_, l)| l.to_owned())
            .collect()
    };
    assert_eq!(strip(&r.text), strip(&direct));
    assert_eq!(r.text.lines().count(), 6 + 2);
    // It imports: into a deployment with the same pepper (the default one here).
    let other = Keyward::open(Config::memory()).unwrap();
    let summary = other
        .import(&keyward::Principal::LocalOperator, &mut r.text.as_bytes())
        .unwrap();
    assert_eq!(summary.imported, 6);
    assert!(other.verify(&operator).is_ok());

    // Listed in the OpenAPI document.
    let doc = s
        .call(Method::GET, "/openapi.json", None, None)
        .await
        .json();
    assert!(doc["paths"]["/admin/export"]["get"].is_object());
}

#[tokio::test]
async fn a_large_admin_export_streams_in_chunks() {
    let s = Server::start().await;
    let operator = s.operator();
    // Well over one 64 KiB chunk of lines.
    for _ in 0..400 {
        s.issue("acc_bulk", KeyType::Secret, "test", &[]);
    }
    let r = s.get("/admin/export", &operator).await;
    assert_eq!(r.status, 200);
    assert!(r.text.len() > 3 * 64 * 1024, "{}", r.text.len());
    let other = Keyward::open(Config::memory()).unwrap();
    let summary = other
        .import(&keyward::Principal::LocalOperator, &mut r.text.as_bytes())
        .unwrap();
    assert_eq!(summary.imported, 401);
}

#[tokio::test]
async fn servicestack_routes_answer_every_error_in_servicestack_envelope() {
    let s = Server::start().await;
    let admin = s.admin();
    let (_, reader) = s.issue(
        "acc_admin",
        KeyType::Secret,
        "production",
        &["api-key:read"],
    );
    let before = s.snapshot();
    let path = "/auth/apikeys/regenerate";

    // 401: no key, a wrong key.
    let rs = servicestack_error(&s.call(Method::POST, path, None, None).await, 401);
    assert_eq!(rs["ErrorCode"], "MissingApiKey");
    let rs = servicestack_error(
        &s.call(Method::POST, path, Some("sk_prod_nope"), None).await,
        401,
    );
    assert_eq!(rs["ErrorCode"], "InvalidApiKey");
    // 403, naming what is missing.
    let rs = servicestack_error(&s.call(Method::POST, path, Some(&reader), None).await, 403);
    assert_eq!(rs["ErrorCode"], "MissingPermission");
    assert_eq!(rs["Meta"]["MissingPermissions"], "api-key:write");
    // 400: not JSON.
    let r = s
        .raw(
            Method::POST,
            path,
            &[("x-api-key", admin.as_str())],
            b"{".to_vec(),
        )
        .await;
    assert_eq!(servicestack_error(&r, 400)["ErrorCode"], "InvalidJson");
    // 422: every invalid field in `Errors`, each with its code; a field the client sent that
    // does not exist is named as sent.
    let rs = servicestack_error(
        &s.post(path, &admin, json!({"Environment": 1, "Surprise": true}))
            .await,
        422,
    );
    assert_eq!(rs["ErrorCode"], "ValidationFailed");
    let mut errors: Vec<(String, String)> = rs["Errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["FieldName"].as_str().unwrap().to_owned(),
                e["ErrorCode"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    errors.sort();
    assert_eq!(
        errors,
        [
            ("Environment".to_owned(), "InvalidType".to_owned()),
            ("Surprise".to_owned(), "UnknownField".to_owned()),
        ]
    );
    // 405 and 404 under the same path, too.
    let r = s.call(Method::GET, path, Some(&admin), None).await;
    servicestack_error(&r, 405);
    assert!(r.headers.get("allow").is_some());
    servicestack_error(
        &s.post(&format!("{path}/test/more"), &admin, json!({}))
            .await,
        404,
    );
    assert_eq!(s.snapshot(), before);

    // The other routes keep their problem documents.
    problem(&s.post("/apikeys/regenerate", &admin, json!({})).await, 422);
    problem(&s.call(Method::POST, "/api-keys", None, None).await, 401);
}

/// The JSON `$ref` names under `schema`, wherever they are nested.
fn refs(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.rsplit('/').next().unwrap().to_owned());
            }
            m.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_documented_request_bodies_are_what_the_parser_reads() {
    let s = Server::start().await;
    let admin = s.admin();
    let (id, _) = s
        .create(
            &admin,
            json!({"name": "Doc", "type": "secret", "environment": "test", "permissions": []}),
        )
        .await;
    let doc = s
        .call(Method::GET, "/openapi.json", None, None)
        .await
        .json();
    let schemas = &doc["components"]["schemas"];
    let create = &schemas["CreateApiKeyRequest"];
    assert_eq!(
        keys_of(&create["properties"]),
        set(&[
            "name",
            "type",
            "environment",
            "permissions",
            "account_id",
            "expires_at",
            "meta"
        ])
    );
    let required: BTreeSet<String> = create["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        required,
        set(&["name", "type", "environment", "permissions"])
    );
    assert_eq!(create["additionalProperties"], false);

    // Every operation with a JSON body: each documented field, given a value of no field's
    // type, is named in the refusal; an undocumented one is refused by name.
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let Some(body) = op.get("requestBody") else {
                continue;
            };
            let mut names = Vec::new();
            refs(body, &mut names);
            let [schema] = names.as_slice() else {
                panic!("{method} {path}: {names:?}");
            };
            let properties = schemas[schema.as_str()]["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("{schema}"));
            assert_eq!(
                schemas[schema.as_str()]["additionalProperties"],
                false,
                "{schema}"
            );
            let concrete = path.replace("{id}", &id);
            let method: Method = method.to_uppercase().parse().unwrap();
            let servicestack = path.starts_with("/auth/");
            let named = |r: &Resp| -> BTreeSet<String> {
                if servicestack {
                    servicestack_fields(&servicestack_error(r, 422))
                        .into_iter()
                        .map(|n| n.to_lowercase())
                        .collect()
                } else {
                    invalid_names(&problem(r, 422))
                        .into_iter()
                        .map(|n| n.to_lowercase())
                        .collect()
                }
            };
            for field in properties.keys() {
                let r = s
                    .call(
                        method.clone(),
                        &concrete,
                        Some(&admin),
                        Some(json!({ field: [[]] })),
                    )
                    .await;
                let field = field.to_lowercase();
                assert!(
                    named(&r).iter().any(|n| *n == field
                        || n.starts_with(&format!("{field}["))
                        || n.starts_with(&format!("{field}."))),
                    "{method} {path} {field}: {}",
                    r.text
                );
                checked += 1;
            }
            let r = s
                .call(
                    method.clone(),
                    &concrete,
                    Some(&admin),
                    Some(json!({"zz_undocumented": 1})),
                )
                .await;
            assert!(
                named(&r).contains("zz_undocumented"),
                "{method} {path}: {}",
                r.text
            );
        }
    }
    // Every body field of every operation (7 + 5 + 3 + 2 + 2 + 3).
    assert_eq!(checked, 22);

    // The list query too.
    let params: BTreeSet<String> = doc["paths"]["/api-keys"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        params,
        set(&[
            "account_id",
            "environment",
            "type",
            "limit",
            "starting_after"
        ])
    );
    for p in &params {
        let r = s.get(&format!("/api-keys?{p}=%20bad%20"), &admin).await;
        assert_eq!(invalid_names(&problem(&r, 422)), set(&[p.as_str()]), "{p}");
    }
    let r = s.get("/api-keys?zz_undocumented=1", &admin).await;
    assert_eq!(invalid_names(&problem(&r, 422)), set(&["zz_undocumented"]));
}
