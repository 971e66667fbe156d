//! ServiceStack's dialect: `POST /auth/apikeys/regenerate[/{Environment}]` regenerates every
//! key of the caller's account in an environment and answers
//! `{Results: [{Key, KeyType, ExpiryDate, Meta}], Meta, ResponseStatus}`.
//!
//! ServiceStack clients read errors from the same envelope, so every error on these paths is
//! answered as `{"ResponseStatus": {"ErrorCode", "Message", "Errors": [{"ErrorCode",
//! "FieldName", "Message"}], "Meta": {"RequestId", …}}}` with the HTTP status, never as a
//! problem document: `ErrorCode` is the problem's `errorCode` in PascalCase
//! (`validation_failed` → `ValidationFailed`), and each invalid field is one of `Errors`, its
//! `ErrorCode` one of `Required`, `UnknownField`, `InvalidType`, `InvalidValue`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use keyward_core::{Environment, PlaintextKey};
use keyward_rotation::RegenerateOptions;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::api::{ApiResult, AppState, WRITE, json};
use super::auth::{Caller, authenticate};
use super::input::{Body, Check, Input, read_body};
use super::problem::{FlawKind, Problem, REQUEST_ID_HEADER};
use crate::view::IssuedKeyView;

/// The path this dialect serves (and everything under it).
const PATH: &str = "/auth/apikeys/regenerate";

/// Whether `path` is answered in this dialect, errors included.
pub(crate) fn serves(path: &str) -> bool {
    path.strip_prefix(PATH)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

// ----- wire types ---------------------------------------------------------------------------

/// `POST /auth/apikeys/regenerate` (optional body).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub(crate) struct RegenerateApiKeyRequest {
    /// Environment; default: the calling key's.
    #[schema(value_type = Option<String>, pattern = "^(production|test|[a-z0-9]{1,16})$")]
    #[serde(default)]
    Environment: Input<Environment>,
    /// `Environment`, as some clients spell it.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    environment: Input<Environment>,
}

/// One regenerated key (ServiceStack `UserApiKey`).
#[derive(Debug, Serialize, ToSchema)]
#[allow(non_snake_case)]
pub(crate) struct UserApiKey {
    /// The new API key.
    #[serde(serialize_with = "expose")]
    #[schema(value_type = String)]
    Key: PlaintextKey,
    /// `publishable`, `secret` or `restricted`.
    KeyType: String,
    /// Expiry (RFC 3339), or null.
    #[schema(format = DateTime)]
    ExpiryDate: Option<String>,
    /// The key's metadata.
    Meta: BTreeMap<String, String>,
}

impl From<IssuedKeyView> for UserApiKey {
    fn from(v: IssuedKeyView) -> Self {
        Self {
            KeyType: v.api_key.key_type.as_str().to_owned(),
            ExpiryDate: v.api_key.expires_at.map(|t| t.to_string()),
            Meta: v.api_key.meta.into(),
            Key: v.key,
        }
    }
}

fn expose<S: serde::Serializer>(key: &PlaintextKey, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(key.expose_secret())
}

/// ServiceStack's `ResponseStatus`: empty on success; `ErrorCode` and `Message` when the call
/// failed (after regenerating some keys, which are then still in `Results`: `PartialFailure`),
/// with `Errors` naming each invalid field and `Meta.RequestId`.
#[derive(Debug, Default, Serialize, ToSchema)]
#[allow(non_snake_case)]
pub(crate) struct ResponseStatus {
    /// `PartialFailure` when some keys could not be regenerated; else the error's code in
    /// PascalCase (`ValidationFailed`, `InvalidApiKey`, `MissingPermission`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    ErrorCode: Option<String>,
    /// What failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    Message: Option<String>,
    /// Each invalid field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    Errors: Vec<ResponseError>,
    /// `RequestId` (also the `x-request-id` header) and, for a missing permission,
    /// `MissingPermissions` (comma-separated).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    Meta: BTreeMap<String, String>,
}

/// One invalid field (ServiceStack `ResponseError`).
#[derive(Debug, Serialize, ToSchema)]
#[allow(non_snake_case)]
pub(crate) struct ResponseError {
    /// `Required`, `UnknownField`, `InvalidType` or `InvalidValue`.
    ErrorCode: String,
    /// The field, e.g. `Environment`.
    FieldName: String,
    /// Why it was refused.
    Message: String,
}

/// The answer to `POST /auth/apikeys/regenerate[/{environment}]`.
#[derive(Debug, Serialize, ToSchema)]
#[allow(non_snake_case)]
pub(crate) struct RegenerateApiKeysResponse {
    /// Every regenerated key of the account in the environment.
    Results: Vec<UserApiKey>,
    /// Empty, or `skipped`: the comma-separated ids of live keys left alone because the
    /// calling key could not regenerate them by id (stronger than it, or outliving it), or
    /// because an earlier grace period is still running.
    Meta: BTreeMap<String, String>,
    /// Empty on success.
    ResponseStatus: ResponseStatus,
}

/// An error, as ServiceStack clients read it.
#[derive(Debug, Serialize, ToSchema)]
#[allow(non_snake_case)]
pub(crate) struct ErrorResponse {
    /// What failed.
    ResponseStatus: ResponseStatus,
}

// ----- errors -------------------------------------------------------------------------------

/// `validation_failed` → `ValidationFailed`, `account_id` → `AccountId`.
fn pascal(s: &str) -> String {
    s.split('_')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        })
        .collect()
}

/// The error response for `problem` in this dialect (same status; `request_id` in the
/// `x-request-id` header and in `ResponseStatus.Meta.RequestId`).
pub(crate) fn render_error(problem: &Problem, request_id: &str) -> Response {
    let mut meta = BTreeMap::new();
    meta.insert("RequestId".to_owned(), request_id.to_owned());
    if !problem.missing_permissions.is_empty() {
        meta.insert(
            "MissingPermissions".to_owned(),
            problem.missing_permissions.join(","),
        );
    }
    let errors = problem
        .invalid_fields
        .iter()
        .map(|f| ResponseError {
            ErrorCode: f.kind.code().to_owned(),
            // A field the client sent that is not known is named as sent.
            FieldName: if f.kind == FlawKind::Unknown {
                f.name.clone()
            } else {
                pascal(&f.name)
            },
            Message: f.message.clone(),
        })
        .collect();
    let body = ErrorResponse {
        ResponseStatus: ResponseStatus {
            ErrorCode: Some(pascal(problem.code)),
            Message: Some(problem.detail.clone()),
            Errors: errors,
            Meta: meta,
        },
    };
    let mut resp = (problem.status, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

// ----- handlers -----------------------------------------------------------------------------

/// The environment: the path's, else the body's, else the calling key's.
fn environment(caller: &Caller, path: Option<String>, body: Body) -> Result<Environment, Problem> {
    let (request, mut check): (RegenerateApiKeyRequest, Check) = read_body(body, true)?;
    let upper = check.optional("Environment", request.Environment);
    let lower = check.optional("environment", request.environment);
    let from_path = path.and_then(|raw| match raw.parse::<Environment>() {
        Ok(e) => Some(e),
        Err(e) => {
            check.invalid("Environment", Some(&raw), e);
            None
        }
    });
    check.finish()?;
    Ok(from_path
        .or(upper)
        .or(lower)
        .unwrap_or_else(|| caller.verified.environment().clone()))
}

async fn regenerate_all(st: AppState, caller: Caller, environment: Environment) -> ApiResult {
    let account = caller.account().clone();
    let kw = st.kw.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        kw.regenerate_environment(
            &caller.principal,
            &account,
            &environment,
            RegenerateOptions::default(),
        )
    })
    .await
    .map_err(|_| Problem::internal())?;
    // Keys regenerated before a failure are durably rotated: return them with the error rather
    // than lose their new plaintexts.
    let (issued, skipped, status) = match outcome {
        Ok(done) => (done.issued, done.skipped, ResponseStatus::default()),
        Err(partial) if partial.issued.is_empty() => {
            return Err(Problem::from_engine(partial.error));
        }
        Err(partial) => (
            partial.issued,
            partial.skipped,
            ResponseStatus {
                ErrorCode: Some("PartialFailure".to_owned()),
                Message: Some(partial.error.to_string()),
                ..ResponseStatus::default()
            },
        ),
    };
    let mut meta = BTreeMap::new();
    if !skipped.is_empty() {
        let ids: Vec<&str> = skipped.iter().map(|s| s.id.as_str()).collect();
        meta.insert("skipped".to_owned(), ids.join(","));
    }
    let now = st.kw.now();
    let results = issued
        .into_iter()
        .map(|i| UserApiKey::from(IssuedKeyView::of(i, now)))
        .collect();
    Ok(json(
        axum::http::StatusCode::OK,
        &RegenerateApiKeysResponse {
            Results: results,
            Meta: meta,
            ResponseStatus: status,
        },
    ))
}

/// Regenerate every key of the caller's account in the calling key's environment (or the
/// body's `Environment`). The old keys keep working for the grace period.
#[utoipa::path(
    post, path = "/auth/apikeys/regenerate", tag = "environments",
    request_body(content = Option<RegenerateApiKeyRequest>, description = "Optional environment"),
    responses(
        (status = 200, description = "The new keys", body = RegenerateApiKeysResponse),
        (status = 400, description = "Malformed JSON", body = ErrorResponse),
        (status = 401, description = "Missing or invalid API key", body = ErrorResponse),
        (status = 403, description = "Missing permission", body = ErrorResponse),
        (status = 422, description = "Validation failed", body = ErrorResponse),
    ),
    security(("api_key" = ["api-key:write"]), ("bearer" = ["api-key:write"]))
)]
pub(crate) async fn regenerate_account_keys(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let caller = authenticate(&st.kw, &headers, WRITE)?;
    let environment = environment(&caller, None, body)?;
    regenerate_all(st, caller, environment).await
}

/// Regenerate every key of the caller's account in `environment`.
#[utoipa::path(
    post, path = "/auth/apikeys/regenerate/{environment}", tag = "environments",
    params(("environment" = String, Path, description = "Environment name", example = "production")),
    responses(
        (status = 200, description = "The new keys", body = RegenerateApiKeysResponse),
        (status = 400, description = "Malformed JSON", body = ErrorResponse),
        (status = 401, description = "Missing or invalid API key", body = ErrorResponse),
        (status = 403, description = "Missing permission", body = ErrorResponse),
        (status = 422, description = "Validation failed", body = ErrorResponse),
    ),
    security(("api_key" = ["api-key:write"]), ("bearer" = ["api-key:write"]))
)]
pub(crate) async fn regenerate_account_keys_in(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(environment): Path<String>,
    body: Body,
) -> ApiResult {
    let caller = authenticate(&st.kw, &headers, WRITE)?;
    let environment = self::environment(&caller, Some(environment), body)?;
    regenerate_all(st, caller, environment).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_pascal_case() {
        assert_eq!(pascal("validation_failed"), "ValidationFailed");
        assert_eq!(pascal("account_id"), "AccountId");
        assert_eq!(pascal("Environment"), "Environment");
        assert_eq!(pascal("permissions[0]"), "Permissions[0]");
    }

    #[test]
    fn only_its_own_paths() {
        assert!(serves("/auth/apikeys/regenerate"));
        assert!(serves("/auth/apikeys/regenerate/test"));
        assert!(!serves("/auth/apikeys/regenerated"));
        assert!(!serves("/apikeys/regenerate"));
        assert!(!serves("/api-keys"));
    }
}
