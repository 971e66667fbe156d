//! What every handler shares: the service's state, the result type, running engine writes off
//! the async workers, and writing JSON answers.

use std::sync::Arc;

use axum::Json;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keyward_core::CredentialId;
use serde::Serialize;

use super::auth::Need;
use super::problem::Problem;
use crate::{EngineError, Keyward, Right};

/// Shared state of the service.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) kw: Keyward,
    pub(crate) openapi: Arc<str>,
}

/// What a handler answers: a response, or a problem the request middleware renders.
pub(crate) type ApiResult = Result<Response, Problem>;

/// The calling key must hold `api-key:read`.
pub(crate) const READ: Need = Need::Right(Right::Read);
/// The calling key must hold `api-key:write`.
pub(crate) const WRITE: Need = Need::Right(Right::Write);

/// Runs a (possibly slow: a durable write, or a read of the whole audit log) engine call off
/// the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, Problem> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(Problem::from_engine),
        Err(_) => Err(Problem::internal()),
    }
}

/// The id in a path: a string that is not an id names no key.
pub(crate) fn path_id(id: &str) -> Result<CredentialId, Problem> {
    id.parse().map_err(|_| Problem::not_found())
}

/// A JSON answer.
pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    (status, Json(value)).into_response()
}

/// The query string's pairs (400 if it cannot be read).
pub(crate) fn query_pairs(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Vec<(String, String)>, Problem> {
    let Query(pairs) = query.map_err(|_| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "the query string could not be read",
        )
    })?;
    Ok(pairs)
}
