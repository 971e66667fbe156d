//! Verification for gateways written in other languages, `POST /verify`, and `GET /whoami`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use super::api::{ApiResult, AppState, json};
use super::auth::{API_KEY_HEADER, Need, authenticate, presented_key};
use super::input::{Body, read_body};
use super::problem::{Problem, ProblemBody};
use super::wire::VerifyRequest;
use crate::Right;
use crate::view::{KeyView, VerifyView};

/// Verify a presented key (for gateways written in other languages). Answers for keys of any
/// account.
#[utoipa::path(
    post, path = "/verify", tag = "verify",
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "Whether the key is valid, and whose it is", body = VerifyView),
        (status = 400, description = "Malformed JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Missing `api-key:verify`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Validation failed", body = ProblemBody, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["api-key:verify"]), ("bearer" = ["api-key:verify"]))
)]
pub(crate) async fn verify_key(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    authenticate(&st.kw, &headers, Need::Right(Right::Verify))?;
    let (request, check) = read_body::<VerifyRequest>(body, false)?;
    let q = request.into_question(check)?;
    let outcome = st
        .kw
        .verify_for(&q.key.0, q.environment.as_ref(), q.permission.as_ref());
    Ok(json(StatusCode::OK, &VerifyView::of(&outcome)))
}

/// The calling key itself.
#[utoipa::path(
    get, path = "/whoami", tag = "verify",
    responses(
        (status = 200, description = "The calling key", body = KeyView),
        (status = 401, description = "Missing or invalid API key", body = ProblemBody, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub(crate) async fn whoami(State(st): State<AppState>, headers: HeaderMap) -> ApiResult {
    authenticate(&st.kw, &headers, Need::AnyKey)?;
    let key = presented_key(&headers, &API_KEY_HEADER).ok_or_else(Problem::missing_key)?;
    let cred = st.kw.whoami(key).map_err(|_| Problem::invalid_key())?;
    Ok(json(StatusCode::OK, &KeyView::of(&cred, st.kw.now())))
}
