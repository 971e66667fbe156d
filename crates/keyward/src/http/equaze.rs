//! Equaze's dialect: `POST /apikeys/regenerate` with `{"environment": "<any name>"}` answers
//! `{"key"}`, the account's key for that environment, found and regenerated or created
//! (the engine's [`crate::Keyward::environment_key`]). Equaze documents no error shape, so
//! errors are the service's problem documents.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use keyward_core::{AccountId, Environment, PlaintextKey};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::api::{ApiResult, AppState, WRITE, blocking, json};
use super::auth::authenticate;
use super::input::{Body, Input, read_body};
use super::problem::{Problem, ProblemBody};

/// `POST /apikeys/regenerate`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnvironmentKeyRequest {
    /// Any environment name: `production`, `test` or `[a-z0-9]{1,16}`.
    #[schema(value_type = String, required = true, example = "staging", pattern = "^(production|test|[a-z0-9]{1,16})$")]
    #[serde(default)]
    environment: Input<Environment>,
    /// Account; default: the caller's. Another account needs an operator key holding `api-key:admin`.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    account_id: Input<AccountId>,
}

/// The answer to `POST /apikeys/regenerate`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EnvironmentKey {
    /// The environment's API key (new or regenerated).
    #[serde(serialize_with = "expose")]
    #[schema(value_type = String)]
    key: PlaintextKey,
}

fn expose<S: serde::Serializer>(key: &PlaintextKey, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(key.expose_secret())
}

/// Regenerate the account's key for an environment.
///
/// The account's key for environment `E` is its secret key in `E` named `E`. If there is none,
/// it is created on the caller's behalf: it holds the calling key's permissions without `*`
/// and without any `api-key:…` permission, and expires with the calling key. Otherwise it is
/// regenerated (the old key keeps working for the grace period), if the calling key could
/// regenerate it by id.
#[utoipa::path(
    post, path = "/apikeys/regenerate", tag = "environments",
    request_body = EnvironmentKeyRequest,
    responses(
        (status = 200, description = "The environment's key", body = EnvironmentKey),
        (status = 400, description = "Malformed JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Missing permission, another account, or more than the caller holds", body = ProblemBody, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Validation failed", body = ProblemBody, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["api-key:write"]), ("bearer" = ["api-key:write"]))
)]
pub(crate) async fn regenerate_environment_key(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let caller = authenticate(&st.kw, &headers, WRITE)?;
    let (request, mut check) = read_body::<EnvironmentKeyRequest>(body, false)?;
    let environment = check.required("environment", request.environment);
    let account = check.optional("account_id", request.account_id);
    check.finish()?;
    let environment = environment.ok_or_else(|| Problem::validation(Vec::new()))?;
    let account = account.unwrap_or_else(|| caller.account().clone());
    let kw = st.kw.clone();
    let issued =
        blocking(move || kw.environment_key(&caller.principal, &account, &environment)).await?;
    Ok(json(StatusCode::OK, &EnvironmentKey { key: issued.key }))
}
