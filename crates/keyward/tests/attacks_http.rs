//! Every attack on the management plane found against `keyward serve`, replayed over real HTTP
//! on loopback (the library versions are in `attacks.rs`). Each refusal is checked to change
//! nothing: the whole store is read before and after.
#![allow(clippy::unwrap_used)]

use axum::body::Bytes;
use axum::http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use keyward::core::{Credential, KeyType, PermissionSet};
use keyward::store::ListQuery;
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
    body: Value,
    text: String,
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

    /// A key issued by the operator: (id, plaintext).
    fn key(&self, account: &str, perms: &[&str]) -> (String, String) {
        let new = NewKey::new(
            account.parse().unwrap(),
            KeyType::Secret,
            "production".parse().unwrap(),
            "fixture".parse().unwrap(),
        )
        .with_permissions(PermissionSet::parse(perms).unwrap());
        let issued = self.kw.issue(OP, new).unwrap();
        (
            issued.credential.id.to_string(),
            issued.key.expose_secret().to_owned(),
        )
    }

    async fn call(&self, method: Method, path: &str, key: &str, body: Option<Value>) -> Resp {
        let req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .header("x-api-key", key)
            .body(Full::new(Bytes::from(
                body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
            )))
            .unwrap();
        let resp = self.client.request(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { status, body, text }
    }

    async fn post(&self, path: &str, key: &str, body: Value) -> Resp {
        self.call(Method::POST, path, key, Some(body)).await
    }

    fn snapshot(&self) -> Vec<Credential> {
        self.kw
            .list(
                OP,
                &ListQuery {
                    limit: 1000,
                    ..ListQuery::default()
                },
            )
            .unwrap()
            .items
    }
}

/// Asserts a problem with `status` and `code`, and returns its body.
fn refused(r: &Resp, status: u16, code: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.body["errorCode"], code, "{}", r.text);
    r.body.clone()
}

fn create_body(perms: &[&str]) -> Value {
    json!({"name": "made", "type": "secret", "environment": "production", "permissions": perms})
}

#[tokio::test]
async fn a_write_only_key_cannot_mint_stronger_keys() {
    let s = Server::start().await;
    let (_, writer) = s.key("acc_a", &["api-key:write"]);
    let before = s.snapshot();
    for asked in [
        &["*"][..],
        &["api-key:*"],
        &["api-key:admin"],
        &["payments:write"],
    ] {
        let r = s.post("/api-keys", &writer, create_body(asked)).await;
        let v = refused(&r, 403, "escalation");
        assert_eq!(v["missingPermissions"], json!(asked), "{v}");
        assert!(r.body.get("key").is_none());
    }
    assert_eq!(s.snapshot(), before);
}

#[tokio::test]
async fn a_star_key_reaches_only_its_own_account() {
    let s = Server::start().await;
    let (_, star) = s.key("acc_a", &["*"]);
    let (victim_id, victim) = s.key("acc_b", &["api-key:read"]);
    let before = s.snapshot();
    refused(
        &s.call(Method::GET, "/api-keys?account_id=acc_b", &star, None)
            .await,
        403,
        "other_account",
    );
    for (method, suffix, body) in [
        (Method::GET, "", None),
        (
            Method::POST,
            "/regenerate",
            Some(json!({"grace_period_seconds": 0})),
        ),
        (Method::DELETE, "", None),
        (Method::PATCH, "", Some(json!({"enabled": false}))),
    ] {
        let r = s
            .call(
                method,
                &format!("/api-keys/{victim_id}{suffix}"),
                &star,
                body,
            )
            .await;
        refused(&r, 404, "not_found");
    }
    let mut other = create_body(&[]);
    other["account_id"] = json!("acc_b");
    refused(
        &s.post("/api-keys", &star, other).await,
        403,
        "other_account",
    );
    assert_eq!(s.snapshot(), before);
    assert!(s.kw.verify(&victim).is_ok());
}

#[tokio::test]
async fn a_key_cannot_patch_itself_stronger() {
    let s = Server::start().await;
    let (id, me) = s.key("acc_a", &["api-key:read", "api-key:write"]);
    let before = s.snapshot();
    let r = s
        .call(
            Method::PATCH,
            &format!("/api-keys/{id}"),
            &me,
            Some(json!({"permissions": ["api-key:read", "api-key:write", "api-key:admin"]})),
        )
        .await;
    let v = refused(&r, 403, "escalation");
    assert_eq!(v["missingPermissions"], json!(["api-key:admin"]));
    assert_eq!(s.snapshot(), before);
}

#[tokio::test]
async fn a_weaker_key_cannot_regenerate_revoke_or_disable_a_stronger_one() {
    let s = Server::start().await;
    // The strongest key of the account (as `init` used to make), and the deployment's operator.
    let (admin_id, admin) = s.key("acc_a", &["*"]);
    let (op_id, _) = s.key(OPERATOR_ACCOUNT, &["*"]);
    let (_, weak) = s.key("acc_a", &["api-key:read", "api-key:write"]);
    let before = s.snapshot();
    for (method, suffix, body) in [
        (
            Method::POST,
            "/regenerate",
            Some(json!({"grace_period_seconds": 0})),
        ),
        (Method::DELETE, "", None),
        (Method::PATCH, "", Some(json!({"enabled": false}))),
        (Method::PATCH, "", Some(json!({"name": "pwned"}))),
    ] {
        let r = s
            .call(
                method.clone(),
                &format!("/api-keys/{admin_id}{suffix}"),
                &weak,
                body.clone(),
            )
            .await;
        let v = refused(&r, 403, "escalation");
        assert_eq!(v["missingPermissions"], json!(["*"]));
        assert!(!r.text.contains("sk_prod_"), "a key leaked: {}", r.text);
        let r = s
            .call(method, &format!("/api-keys/{op_id}{suffix}"), &weak, body)
            .await;
        refused(&r, 404, "not_found");
    }
    assert_eq!(s.snapshot(), before);
    assert!(s.kw.verify(&admin).is_ok());
}

#[tokio::test]
async fn regenerate_all_skips_what_the_caller_could_not_regenerate_by_id() {
    let s = Server::start().await;
    let (admin_id, admin) = s.key("acc_a", &["*"]);
    let (_, weak) = s.key("acc_a", &["api-key:read", "api-key:write"]);
    let (product_id, _) = s.key("acc_a", &["api-key:read"]);
    let admin_before = s.kw.get(OP, &admin_id.parse().unwrap()).unwrap();
    let r = s
        .call(Method::POST, "/auth/apikeys/regenerate", &weak, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let results = r.body["Results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{}", r.text);
    let mut ids: Vec<String> = results
        .iter()
        .map(|k| {
            let key = k["Key"].as_str().unwrap();
            s.kw.verify(key).unwrap().id().to_string()
        })
        .collect();
    ids.sort();
    assert!(ids.contains(&product_id));
    assert!(!ids.contains(&admin_id));
    assert_eq!(r.body["Meta"], json!({"skipped": admin_id}));
    assert_eq!(
        s.kw.get(OP, &admin_id.parse().unwrap()).unwrap(),
        admin_before
    );
    assert!(s.kw.verify(&admin).is_ok());
}

#[tokio::test]
async fn an_environment_key_for_another_account_never_carries_the_callers_scopes() {
    let s = Server::start().await;
    let (_, account_admin) = s.key("acc_a", &["api-key:write", "api-key:admin"]);
    let before = s.snapshot();
    let r = s
        .post(
            "/apikeys/regenerate",
            &account_admin,
            json!({"environment": "staging", "account_id": "acc_b"}),
        )
        .await;
    refused(&r, 403, "other_account");
    assert_eq!(s.snapshot(), before);
    let (_, operator) = s.key(OPERATOR_ACCOUNT, &["api-key:write", "api-key:admin"]);
    let r = s
        .post(
            "/apikeys/regenerate",
            &operator,
            json!({"environment": "staging", "account_id": "acc_b"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let who = s.kw.verify(r.body["key"].as_str().unwrap()).unwrap();
    assert_eq!(who.account().as_str(), "acc_b");
    assert!(who.permissions().is_empty(), "{:?}", who.permissions());
}

#[tokio::test]
async fn the_administrator_cannot_lock_everyone_out() {
    let s = Server::start().await;
    let (id, root) = s.key(OPERATOR_ACCOUNT, &["*"]);
    let before = s.snapshot();
    let path = format!("/api-keys/{id}");
    for (method, body) in [
        (Method::DELETE, None),
        (Method::PATCH, Some(json!({"enabled": false}))),
        (
            Method::PATCH,
            Some(json!({"permissions": ["api-key:read"]})),
        ),
        (
            Method::PATCH,
            Some(json!({"expires_at": "2099-01-01T00:00:00Z"})),
        ),
    ] {
        let r = s.call(method, &path, &root, body).await;
        let v = refused(&r, 409, "last_administrator");
        assert!(v["detail"].as_str().unwrap().contains("last administrator"));
    }
    assert_eq!(s.snapshot(), before);
    // The deployment is still managed through the API.
    assert_eq!(
        s.call(Method::GET, "/api-keys", &root, None).await.status,
        200
    );
}

#[tokio::test]
async fn another_accounts_id_answers_like_an_unknown_one() {
    let s = Server::start().await;
    let (_, reader) = s.key("acc_a", &["api-key:read"]);
    let (theirs, _) = s.key("acc_b", &[]);
    let strip = |r: Resp| {
        let mut v = r.body;
        let o = v.as_object_mut().unwrap();
        o.remove("requestId");
        o.remove("instance");
        (r.status, v)
    };
    let a = strip(
        s.call(Method::GET, &format!("/api-keys/{theirs}"), &reader, None)
            .await,
    );
    let b = strip(
        s.call(
            Method::GET,
            "/api-keys/key_0000000000000000000000000",
            &reader,
            None,
        )
        .await,
    );
    assert_eq!(a.0, 404);
    assert_eq!(a, b);
}

#[tokio::test]
async fn a_second_regenerate_does_not_cut_the_first_ones_grace() {
    let s = Server::start().await;
    let (_, writer) = s.key("acc_a", &["*"]);
    let (id, old) = s.key("acc_a", &[]);
    let path = format!("/api-keys/{id}/regenerate");
    assert_eq!(s.post(&path, &writer, json!({})).await.status, 200);
    let before = s.snapshot();
    let r = s.post(&path, &writer, json!({})).await;
    refused(&r, 409, "grace_in_progress");
    assert_eq!(s.snapshot(), before);
    assert!(s.kw.verify(&old).is_ok());
}
