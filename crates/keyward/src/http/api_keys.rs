//! The API-key resource, PublicSquare's REST dialect: `POST /api-keys`, `GET /api-keys`,
//! `GET|PATCH|DELETE /api-keys/{id}` and `POST /api-keys/{id}/regenerate`. Errors are problem
//! documents.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};

use super::api::{ApiResult, AppState, READ, WRITE, blocking, json, path_id, query_pairs};
use super::auth::authenticate;
use super::input::{Body, read_body, read_query};
use super::problem::{Problem, ProblemBody};
use super::wire::{
    ApiKeyList, CreateApiKeyRequest, ListParams, RegenerateRequest, RegeneratedApiKey,
    UpdateApiKeyRequest,
};
use crate::view::{IssuedKeyView, KeyView};

/// Create an API key.
///
/// Returns the stored key and, once, its plaintext `key`.
#[utoipa::path(
    post, path = "/api-keys", tag = "api-keys",
    request_body = CreateApiKeyRequest,
    responses(
        (status = 201, description = "Created", body = IssuedKeyView),
        (status = 400, description = "Malformed JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Missing permission, another account, or more than the caller holds", body = ProblemBody, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Validation failed", body = ProblemBody, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["api-key:write"]), ("bearer" = ["api-key:write"]))
)]
pub(crate) async fn create_key(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let caller = authenticate(&st.kw, &headers, WRITE)?;
    let (request, check) = read_body::<CreateApiKeyRequest>(body, false)?;
    let new = request.into_new_key(check, caller.account())?;
    let kw = st.kw.clone();
    let issued = blocking(move || kw.issue(&caller.principal, new)).await?;
    let location = format!("/api-keys/{}", issued.credential.id);
    let mut resp = json(StatusCode::CREATED, &IssuedKeyView::of(issued, st.kw.now()));
    if let Ok(loc) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}

/// List the API keys of the caller's account (or, for an operator key holding `api-key:admin`,
/// another account's).
#[utoipa::path(
    get, path = "/api-keys", tag = "api-keys",
    params(ListParams),
    responses(
        (status = 200, description = "One page of keys", body = ApiKeyList),
        (status = 400, description = "Malformed query", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Missing permission, another account, or more than the caller holds", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter", body = ProblemBody, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["api-key:read"]), ("bearer" = ["api-key:read"]))
)]
pub(crate) async fn list_keys(
    State(st): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> ApiResult {
    let caller = authenticate(&st.kw, &headers, READ)?;
    let (params, check) = read_query::<ListParams>(query_pairs(query)?)?;
    let query = params.into_query(check, caller.account())?;
    let page = st
        .kw
        .list(&caller.principal, &query)
        .map_err(Problem::from_engine)?;
    let now = st.kw.now();
    Ok(json(
        StatusCode::OK,
        &ApiKeyList {
            data: page.items.iter().map(|c| KeyView::of(c, now)).collect(),
            has_more: page.next.is_some(),
            next_cursor: page.next,
        },
    ))
}

/// Retrieve an API key.
#[utoipa::path(
    get, path = "/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "API key id", example = "key_7Ay5mcUXAxwrN6wQEQUVEHBCJ")),
    responses(
        (status = 200, description = "The key", body = KeyView),
        (status = 401, description = "Missing or invalid API key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Missing permission, or the key holds permissions the caller does not", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "Unknown id, or another account's key", body = ProblemBody, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["api-key:read"]), ("bearer" = ["api-key:read"]))
)]
pub(crate) async fn get_key(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let caller = authenticate(&st.kw, &headers, READ)?;
    let id = path_id(&id)?;
    let cred = st
        .kw
        .get(&caller.principal, &id)
        .map_err(Problem::from_engine)?;
    Ok(json(StatusCode::OK, &KeyView::of(&cred, st.kw.now())))
}

/// Revoke an API key (every secret of it, at once). Returns the revoked key.
#[utoipa::path(
    delete, path = "/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "API key id")),
    responses(
        (status = 200, description = "The revoked key", body = KeyView),
        (status = 401, description = "Missing or invalid API key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Missing permission, or the key holds permissions the caller does not", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "Unknown id, or another account's key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "The deployment's last administrator", body = ProblemBody, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["api-key:write"]), ("bearer" = ["api-key:write"]))
)]
pub(crate) async fn delete_key(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let caller = authenticate(&st.kw, &headers, WRITE)?;
    let id = path_id(&id)?;
    let kw = st.kw.clone();
    let cred = blocking(move || kw.revoke(&caller.principal, &id)).await?;
    Ok(json(StatusCode::OK, &KeyView::of(&cred, st.kw.now())))
}

/// Update an API key's name, permissions, metadata, expiry or enabled flag.
#[utoipa::path(
    patch, path = "/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "API key id")),
    request_body = UpdateApiKeyRequest,
    responses(
        (status = 200, description = "The updated key", body = KeyView),
        (status = 400, description = "Malformed JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Missing permission, or the key holds permissions the caller does not", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "Unknown id, or another account's key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "The deployment's last administrator", body = ProblemBody, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Validation failed", body = ProblemBody, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["api-key:write"]), ("bearer" = ["api-key:write"]))
)]
pub(crate) async fn update_key(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult {
    let caller = authenticate(&st.kw, &headers, WRITE)?;
    let id = path_id(&id)?;
    let (request, check) = read_body::<UpdateApiKeyRequest>(body, false)?;
    let update = request.into_update(check)?;
    let kw = st.kw.clone();
    let cred = blocking(move || kw.update(&caller.principal, &id, update)).await?;
    Ok(json(StatusCode::OK, &KeyView::of(&cred, st.kw.now())))
}

/// Regenerate an API key: same id, a new key. The old key keeps working for the grace period.
#[utoipa::path(
    post, path = "/api-keys/{id}/regenerate", tag = "api-keys",
    params(("id" = String, Path, description = "API key id")),
    request_body(content = Option<RegenerateRequest>, description = "Optional overrides of the rotation policy"),
    responses(
        (status = 200, description = "The new key", body = RegeneratedApiKey),
        (status = 400, description = "Malformed JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Missing permission, or the key holds permissions the caller does not", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "Unknown id, or another account's key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "The key is revoked or expired, or an earlier grace period is running", body = ProblemBody, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Validation failed", body = ProblemBody, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["api-key:write"]), ("bearer" = ["api-key:write"]))
)]
pub(crate) async fn regenerate_key(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult {
    let caller = authenticate(&st.kw, &headers, WRITE)?;
    let id = path_id(&id)?;
    let (request, check) = read_body::<RegenerateRequest>(body, true)?;
    let options = request.into_options(check)?;
    let kw = st.kw.clone();
    let issued = blocking(move || kw.regenerate(&caller.principal, &id, options)).await?;
    let answer = RegeneratedApiKey::from(IssuedKeyView::of(issued, st.kw.now()));
    Ok(json(StatusCode::OK, &answer))
}
