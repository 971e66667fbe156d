//! The HTTP management service and the tower gateway layer (feature `http`).
//!
//! * [`router`] builds the axum [`Router`] of the management API; [`serve`] and
//!   [`serve_listener`] run it. The OpenAPI document is at `GET /openapi.json`.
//! * [`KeywardLayer`] is a tower layer for a gateway: it verifies the key of every request and
//!   answers 401/403 itself.
//!
//! # Endpoints
//!
//! | method and path | needs | what |
//! |---|---|---|
//! | `POST /api-keys` | `api-key:write` | create `{name, type, environment, permissions, account_id?, expires_at?, meta?}` → 201 with `key` |
//! | `GET /api-keys` | `api-key:read` | list (`account_id`, `environment`, `type`, `limit`, `starting_after`) |
//! | `GET /api-keys/{id}` | `api-key:read` | one key |
//! | `PATCH /api-keys/{id}` | `api-key:write` | `{name?, permissions?, meta?, expires_at?, enabled?}` |
//! | `DELETE /api-keys/{id}` | `api-key:write` | revoke |
//! | `POST /api-keys/{id}/regenerate` | `api-key:write` | new key, same id; optional `{grace_period_seconds, activation_delay_seconds, end_earlier_grace}` |
//! | `POST /apikeys/regenerate` | `api-key:write` | `{"environment", "account_id"?}` → `{"key"}` (found and regenerated, or created on the caller's behalf) |
//! | `POST /auth/apikeys/regenerate[/{environment}]` | `api-key:write` | every key of the account in the environment the caller could regenerate by id, ServiceStack shape (`Meta.skipped` lists the others) |
//! | `POST /verify` | `api-key:verify` | `{key, environment?, permission?}` → `{valid, code, …}` |
//! | `GET /whoami` | any valid key | the calling key |
//! | `GET /admin/export` | `api-key:read` + `api-key:admin` | every key of every account in the export format (`docs/export-format.md`), streamed |
//! | `GET /events` | `api-key:read` | the audit log the caller can see (`since`, `after`, `limit`) |
//! | `GET /api-keys/{id}/events` | `api-key:read` | one key's audit events (404 out of reach) |
//! | `GET /events/head` | `api-key:read` + `api-key:admin` | the log's head (`SEQ:HASH`) to pin |
//! | `GET /events/verify` | `api-key:read` + `api-key:admin` | verify the hash chain (`head=SEQ:HASH` also catches a cut tail) |
//! | `GET /openapi.json` | none | the OpenAPI document |
//!
//! Authentication: `X-API-KEY: <key>` or `Authorization: Bearer <key>`. The engine authorises
//! every call (see [`crate::authority`]): management needs a *secret* key holding the right;
//! an ordinary account's key reaches only its own account (another account's key id answers
//! 404, like an unknown id), an operator key (account `keyward:operator`) holding
//! `api-key:admin` reaches every account; no key makes or changes a key holding a permission it
//! does not hold (403 `escalation`, naming them in `missingPermissions`) or outliving it
//! (403 `outlives_caller`); the last administrator cannot be revoked, disabled, stripped or
//! shortened (409 `last_administrator`); a regenerate that would cut an earlier grace period is
//! 409 `grace_in_progress`. Errors are `application/problem+json` (RFC 9457) with `errorCode`,
//! `requestId` and, for validation (422), `invalidFields: [{name, value, message}]` and
//! `errors`, except on the ServiceStack routes (`/auth/apikeys/regenerate…`), which answer
//! errors the way ServiceStack clients parse them:
//! `{"ResponseStatus": {"ErrorCode", "Message", "Errors": [{"ErrorCode", "FieldName",
//! "Message"}], "Meta": {"RequestId"}}}`. Bodies are limited to 64 KiB (413).
//!
//! Request bodies are read into typed structs that are also the OpenAPI schemas, and answers
//! render the shared views of [`crate::view`] (the same JSON as the command line's `--json`).
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use keyward::{Config, Keyward};
//! let kw = Keyward::open(Config::memory()).expect("open");
//! keyward::http::serve(kw, "127.0.0.1:8080".parse().expect("address")).await
//! # }
//! ```

mod admin;
mod api;
mod api_keys;
mod auth;
mod equaze;
mod events;
mod input;
mod layer;
mod openapi;
mod problem;
mod servicestack;
mod verify;
mod wire;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use layer::{KeywardFuture, KeywardLayer, KeywardService};

use api::AppState;
use problem::{PROBLEM_JSON, Problem, REQUEST_ID_HEADER, instance_of, new_request_id};

use crate::Keyward;

/// The management API as an axum [`Router`] (with its state applied).
///
/// Nest or merge it into a larger app, or run it with [`serve`].
pub fn router(keyward: Keyward) -> Router {
    let state = AppState {
        kw: keyward,
        openapi: Arc::from(openapi::openapi_json()),
    };
    Router::new()
        .route(
            "/api-keys",
            post(api_keys::create_key).get(api_keys::list_keys),
        )
        .route(
            "/api-keys/{id}",
            get(api_keys::get_key)
                .patch(api_keys::update_key)
                .delete(api_keys::delete_key),
        )
        .route("/api-keys/{id}/regenerate", post(api_keys::regenerate_key))
        .route(
            "/apikeys/regenerate",
            post(equaze::regenerate_environment_key),
        )
        .route(
            "/auth/apikeys/regenerate",
            post(servicestack::regenerate_account_keys),
        )
        .route(
            "/auth/apikeys/regenerate/{environment}",
            post(servicestack::regenerate_account_keys_in),
        )
        .route("/verify", post(verify::verify_key))
        .route("/whoami", get(verify::whoami))
        .route("/admin/export", get(admin::export))
        .route("/events", get(events::list_events))
        .route("/events/head", get(events::event_head))
        .route("/events/verify", get(events::verify_events))
        .route("/api-keys/{id}/events", get(events::list_key_events))
        .route("/openapi.json", get(openapi::openapi))
        .fallback(|| async { Problem::from_status(StatusCode::NOT_FOUND) })
        .method_not_allowed_fallback(|| async {
            Problem::from_status(StatusCode::METHOD_NOT_ALLOWED)
        })
        .layer(DefaultBodyLimit::max(input::BODY_LIMIT))
        .layer(middleware::from_fn(finish_response))
        .with_state(state)
}

/// The OpenAPI document of the management API, as JSON.
pub fn openapi_json() -> String {
    openapi::openapi_json()
}

/// Gives every response a request id and renders every error as a problem with its
/// `instance` and `requestId`, including errors produced outside the handlers.
async fn finish_response(mut req: Request, next: Next) -> Response {
    let request_id = new_request_id();
    // The handlers read it from here (into the audit log); a client's own is replaced.
    match HeaderValue::from_str(&request_id) {
        Ok(v) => req.headers_mut().insert(REQUEST_ID_HEADER, v),
        Err(_) => req.headers_mut().remove(REQUEST_ID_HEADER),
    };
    let instance = instance_of(req.uri().path());
    // A compatibility route answers errors the way its clients parse them.
    let servicestack = servicestack::serves(req.uri().path());
    let mut resp = next.run(req).await;
    let status = resp.status();
    let problem = match resp.extensions_mut().remove::<Problem>() {
        Some(p) => Some(p),
        None if status.is_client_error() || status.is_server_error() => {
            let is_problem = resp
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes());
            (!is_problem).then(|| Problem::from_status(status))
        }
        None => None,
    };
    if let Some(problem) = problem {
        let allow = resp.headers().get(header::ALLOW).cloned();
        resp = if servicestack {
            servicestack::render_error(&problem, &request_id)
        } else {
            problem.render(&instance, &request_id)
        };
        if let Some(allow) = allow {
            resp.headers_mut().insert(header::ALLOW, allow);
        }
    } else if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    if !resp.headers().contains_key(header::CACHE_CONTROL) {
        // Responses may carry keys: never cache them.
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp.into_response()
}

/// Serves the management API on `addr` until Ctrl-C or SIGTERM.
pub async fn serve(keyward: Keyward, addr: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve_listener(keyward, listener, shutdown_signal()).await
}

/// Serves the management API on a bound listener until `shutdown` completes; requests in
/// flight are finished first.
pub async fn serve_listener<F>(
    keyward: Keyward,
    listener: tokio::net::TcpListener,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    axum::serve(listener, router(keyward))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Completes on Ctrl-C or (on Unix) SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        // If the handler cannot be installed, wait forever rather than stop at once.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
