//! A gateway in front of an API: every request under `/v1` needs a valid production key with
//! `payment:read`; the handler sees who is calling.
//!
//! ```text
//! cargo run -p keyward --features http --example gateway
//! curl -H "X-API-KEY: <printed key>" http://127.0.0.1:3000/v1/payments
//! ```
#![allow(clippy::print_stdout)]

use axum::{Extension, Json, Router, routing::get};
use keyward::core::{Environment, KeyType, PermissionSet};
use keyward::http::KeywardLayer;
use keyward::{Config, Keyward, NewKey, Principal, Verified};
use serde_json::{Value, json};

async fn payments(Extension(caller): Extension<Verified>) -> Json<Value> {
    Json(json!({ "account": caller.account().as_str(), "payments": [] }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let kw = Keyward::open(Config::memory())?;
    let perms = PermissionSet::parse(["payment:read"])?;
    let new = NewKey::new(
        "acc_demo".parse()?,
        KeyType::Secret,
        Environment::Production,
        "demo".parse()?,
    );
    let issued = kw.issue(&Principal::LocalOperator, new.with_permissions(perms))?;
    println!(
        "try: curl -H 'X-API-KEY: {}' http://127.0.0.1:3000/v1/payments",
        issued.key.expose_secret()
    );

    let gate = KeywardLayer::new(kw)
        .environment(Environment::Production)
        .require("payment:read".parse()?);
    let app = Router::new().nest(
        "/v1",
        Router::new().route("/payments", get(payments)).layer(gate),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
