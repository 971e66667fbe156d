//! The gateway layer, driven with `tower::ServiceExt::oneshot`.
#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::{Extension, Router};
use http_body_util::BodyExt;
use keyward::core::{Environment, KeyType, PermissionSet};
use keyward::http::KeywardLayer;
use keyward::{Config, Keyward, NewKey, Verified};
use serde_json::Value;
use tower::ServiceExt;

/// Tests act as the local operator unless they say otherwise.
const OP: &keyward::Principal = &keyward::Principal::LocalOperator;

fn engine() -> Keyward {
    Keyward::open(Config::memory()).unwrap()
}

fn issue(kw: &Keyward, env: Environment, perms: &[&str]) -> (String, String) {
    let new = NewKey::new(
        "acc_gw".parse().unwrap(),
        KeyType::Restricted,
        env,
        "client".parse().unwrap(),
    )
    .with_permissions(PermissionSet::parse(perms).unwrap());
    let issued = kw.issue(OP, new).unwrap();
    (
        issued.credential.id.to_string(),
        issued.key.expose_secret().to_owned(),
    )
}

async fn whoami(Extension(who): Extension<Verified>) -> String {
    format!("{} {}", who.account(), who.id())
}

fn app(layer: KeywardLayer) -> Router {
    Router::new().route("/", get(whoami)).layer(layer)
}

async fn send(app: Router, headers: &[(&str, &str)]) -> (StatusCode, String, String) {
    let mut req = Request::builder().uri("/");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, ct, String::from_utf8(body.to_vec()).unwrap())
}

fn problem(status: StatusCode, ct: &str, body: &str, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(ct, "application/problem+json");
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["status"], expected.as_u16());
    assert_eq!(v["errorCode"], code);
    for f in ["type", "title", "detail", "instance", "requestId"] {
        assert!(v[f].is_string(), "{v}");
    }
}

#[tokio::test]
async fn valid_key_reaches_the_handler_with_its_identity() {
    let kw = engine();
    let (id, key) = issue(&kw, Environment::Production, &["payment:read"]);
    let layer = KeywardLayer::new(kw)
        .environment(Environment::Production)
        .require("payment:read".parse().unwrap());
    let (status, _, body) = send(app(layer.clone()), &[("x-api-key", &key)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, format!("acc_gw {id}"));
    let bearer = format!("Bearer {key}");
    let (status, _, _) = send(app(layer), &[("authorization", &bearer)]).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn missing_and_invalid_keys_are_401() {
    let kw = engine();
    let (id, key) = issue(&kw, Environment::Production, &["payment:read"]);
    let layer = KeywardLayer::new(kw.clone());
    let (s, ct, b) = send(app(layer.clone()), &[]).await;
    problem(s, &ct, &b, StatusCode::UNAUTHORIZED, "missing_api_key");
    let (s, ct, b) = send(app(layer.clone()), &[("x-api-key", "  ")]).await;
    problem(s, &ct, &b, StatusCode::UNAUTHORIZED, "missing_api_key");
    for bad in ["sk_prod_nope", "Bearer", &format!("{key}x")] {
        let (s, ct, b) = send(app(layer.clone()), &[("x-api-key", bad)]).await;
        problem(s, &ct, &b, StatusCode::UNAUTHORIZED, "invalid_api_key");
        assert!(!b.contains(&key));
    }
    let basic = format!("Basic {key}");
    let (s, ct, b) = send(app(layer.clone()), &[("authorization", &basic)]).await;
    problem(s, &ct, &b, StatusCode::UNAUTHORIZED, "missing_api_key");
    kw.revoke(OP, &id.parse().unwrap()).unwrap();
    let (s, ct, b) = send(app(layer), &[("x-api-key", &key)]).await;
    problem(s, &ct, &b, StatusCode::UNAUTHORIZED, "invalid_api_key");
}

#[tokio::test]
async fn wrong_environment_and_missing_permission_are_403() {
    let kw = engine();
    let (_, test_key) = issue(&kw, Environment::Test, &["payment:read"]);
    let (_, reader) = issue(&kw, Environment::Production, &["business:read"]);
    let layer = KeywardLayer::new(kw)
        .environment(Environment::Production)
        .require("payment:read".parse().unwrap());
    let (s, ct, b) = send(app(layer.clone()), &[("x-api-key", &test_key)]).await;
    problem(s, &ct, &b, StatusCode::FORBIDDEN, "wrong_environment");
    let (s, ct, b) = send(app(layer), &[("x-api-key", &reader)]).await;
    problem(s, &ct, &b, StatusCode::FORBIDDEN, "missing_permission");
    assert!(b.contains("payment:read"));
}

#[tokio::test]
async fn custom_header() {
    let kw = engine();
    let (_, key) = issue(&kw, Environment::Production, &["payment:read"]);
    let layer = KeywardLayer::new(kw).header("x-payments-key");
    let (s, _, _) = send(app(layer.clone()), &[("x-payments-key", &key)]).await;
    assert_eq!(s, StatusCode::OK);
    // The default header is not read any more; a bearer token still is.
    let (s, _, _) = send(app(layer.clone()), &[("x-api-key", &key)]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let bearer = format!("bearer {key}");
    let (s, _, _) = send(app(layer), &[("authorization", &bearer)]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        KeywardLayer::new(engine())
            .try_header("bad header")
            .is_err()
    );
}
