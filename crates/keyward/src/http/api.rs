//! The management endpoints, their wire types and the OpenAPI document.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyward_core::{
    AccountId, Credential, CredentialId, Environment, KeyType, Metadata, Name, PermissionSet,
    Timestamp,
};
use keyward_rotation::{RegenerateOptions, SecretState, live_secrets, secret_state};
use keyward_store::ListQuery;
use serde::Serialize;
use utoipa::openapi::security::SecurityScheme;
use utoipa::openapi::security::{ApiKey as ApiKeyScheme, ApiKeyValue, HttpAuthScheme, HttpBuilder};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use super::auth::{API_KEY_HEADER, Caller, Need, authenticate, presented_key};
use super::input::Fields;
use super::problem::{InvalidField, Problem, ProblemBody};
use crate::{EngineError, KeyUpdate, Keyward, NewKey, Right};

/// Shared state of the service.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) kw: Keyward,
    pub(crate) openapi: Arc<str>,
}

type ApiResult = Result<Response, Problem>;
type Body = Result<Bytes, BytesRejection>;

const READ: Need = Need::Right(Right::Read);
const WRITE: Need = Need::Right(Right::Write);

// ----- wire types ---------------------------------------------------------------------------

/// A key type.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // Documents the accepted values.
pub(crate) enum KeyTypeName {
    /// `pk`: safe to embed in client code.
    Publishable,
    /// `sk`: full access within its account, server-side only.
    Secret,
    /// `rk`: limited to its explicit permissions (at least one).
    Restricted,
}

/// An API key as stored (never with its secret).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ApiKey {
    /// API key id, stable across regenerations.
    #[schema(example = "key_7Ay5mcUXAxwrN6wQEQUVEHBCJ")]
    id: String,
    /// Owning account.
    #[schema(example = "acc_B518niGwGYKzig6vtrRVZGGGV")]
    account_id: String,
    /// Environment: `production`, `test` or a custom name.
    #[schema(example = "production")]
    environment: String,
    /// `publishable`, `secret` or `restricted`.
    #[serde(rename = "type")]
    #[schema(example = "secret")]
    key_type: String,
    /// Display name (1 to 100 characters).
    #[schema(example = "Test Application")]
    name: String,
    /// Granted permissions.
    #[schema(example = json!(["api-key:write", "business:read"]))]
    permissions: Vec<String>,
    /// Free-form metadata.
    meta: BTreeMap<String, String>,
    /// Creation time (RFC 3339).
    #[schema(format = DateTime, example = "2024-06-30T01:02:29.212Z")]
    created_at: String,
    /// Last modification time (RFC 3339).
    #[schema(format = DateTime, example = "2024-06-30T01:02:29.212Z")]
    modified_at: String,
    /// Expiry (RFC 3339), if any.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    /// Whether the key is enabled.
    enabled: bool,
    /// `active`, `disabled`, `expired` or `revoked`.
    #[schema(example = "active")]
    status: &'static str,
    /// The key's secret versions (one per generation), oldest first. No secret material.
    versions: Vec<KeyVersion>,
}

/// One generation of a key's secret.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct KeyVersion {
    /// 1 for the first secret, incremented by each regenerate.
    version: u32,
    /// `pending`, `active`, `grace`, `expired` or `revoked`.
    state: &'static str,
    /// When it was generated.
    #[schema(format = DateTime)]
    created_at: String,
    /// Usable from this instant.
    #[schema(format = DateTime)]
    not_before: String,
    /// Usable until this instant (end of the grace period), if set.
    #[schema(format = DateTime)]
    not_after: Option<String>,
    /// When it was revoked, if it was.
    #[schema(format = DateTime)]
    revoked_at: Option<String>,
}

/// A newly created API key, with its plaintext key (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedApiKey {
    #[serde(flatten)]
    api_key: ApiKey,
    /// The API key. It is not stored: keep it now.
    #[schema(example = "sk_prod_6fpAaGyHBeGNpxTpJKMD5w5wk")]
    key: String,
}

/// The answer to `POST /api-keys/{id}/regenerate`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RegeneratedApiKey {
    /// API key id (unchanged).
    #[schema(example = "key_7Ay5mcUXAxwrN6wQEQUVEHBCJ")]
    id: String,
    /// Account id.
    #[schema(example = "acc_B518niGwGYKzig6vtrRVZGGGV")]
    account_id: String,
    /// Environment - can be `test` or `production` (or a custom name).
    #[schema(example = "production")]
    environment: String,
    /// The new API key for performing API requests.
    #[schema(example = "pk_prod_6fpAaGyHBeGNpxTpJKMD5w5wk")]
    key: String,
    /// API key type - can be `publishable`, `secret` or `restricted`.
    #[serde(rename = "type")]
    #[schema(example = "publishable")]
    key_type: String,
    /// Date the API key was created.
    #[schema(format = DateTime, example = "2024-06-30T01:02:29.212Z")]
    created_at: String,
    /// Date the API key was modified.
    #[schema(format = DateTime, example = "2024-06-30T01:02:29.212Z")]
    modified_at: String,
    /// Name of the API key.
    #[schema(example = "Test Application")]
    name: String,
    /// Permissions of the API key.
    #[schema(example = json!(["api-key:write", "business:read"]))]
    permissions: Vec<String>,
}

/// One page of API keys.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ApiKeyList {
    /// The keys, ordered by id.
    data: Vec<ApiKey>,
    /// Whether more keys follow.
    has_more: bool,
    /// Pass as `starting_after` for the next page.
    next_cursor: Option<String>,
}

/// `POST /api-keys`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Documents the body; handlers read it field by field (`Fields`).
#[serde(deny_unknown_fields)]
pub(crate) struct CreateApiKeyRequest {
    /// Name of the API key: non-empty, at most 100 characters.
    #[schema(example = "Test Application", min_length = 1, max_length = 100)]
    name: String,
    /// `publishable`, `secret` or `restricted`.
    #[schema(rename = "type", value_type = KeyTypeName, example = "secret")]
    key_type: String,
    /// `production`, `test` or a custom name (`[a-z0-9]{1,16}`).
    #[schema(example = "production", pattern = "^(production|test|[a-z0-9]{1,16})$")]
    environment: String,
    /// Permissions; a restricted key needs at least one.
    #[schema(example = json!(["business:read"]))]
    permissions: Vec<String>,
    /// Owning account; default: the caller's. Another account needs an operator key holding `api-key:admin`.
    account_id: Option<String>,
    /// Expiry (RFC 3339, in the future).
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    /// Free-form metadata (at most 50 entries; keys 1–40 bytes, values up to 500 bytes).
    meta: Option<BTreeMap<String, String>>,
}

/// `PATCH /api-keys/{id}`: every field is optional; absent fields are left as they are.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Documents the body; handlers read it field by field (`Fields`).
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateApiKeyRequest {
    /// New name.
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    /// New permissions (replaces the set).
    permissions: Option<Vec<String>>,
    /// New metadata (replaces the map).
    meta: Option<BTreeMap<String, String>>,
    /// New expiry (RFC 3339, in the future); `null` removes it.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    /// Enable or disable the key.
    enabled: Option<bool>,
}

/// `POST /api-keys/{id}/regenerate` (optional body).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Documents the body; handlers read it field by field (`Fields`).
#[serde(deny_unknown_fields)]
pub(crate) struct RegenerateRequest {
    /// How long the old key keeps working (default: the service's policy, 24 h).
    #[schema(maximum = 315_360_000)]
    grace_period_seconds: Option<u64>,
    /// How long until the new key works (default: the service's policy).
    #[schema(maximum = 315_360_000)]
    activation_delay_seconds: Option<u64>,
    /// End a secret still in an earlier regenerate's grace period now, before its promised end
    /// (default `false`: such a regenerate is refused with 409 `grace_in_progress`).
    end_earlier_grace: Option<bool>,
}

/// `POST /apikeys/regenerate`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Documents the body; handlers read it field by field (`Fields`).
#[serde(deny_unknown_fields)]
pub(crate) struct EnvironmentKeyRequest {
    /// Any environment name: `production`, `test` or `[a-z0-9]{1,16}`.
    #[schema(example = "staging", pattern = "^(production|test|[a-z0-9]{1,16})$")]
    environment: String,
    /// Account; default: the caller's. Another account needs an operator key holding `api-key:admin`.
    account_id: Option<String>,
}

/// The answer to `POST /apikeys/regenerate`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EnvironmentKey {
    /// The environment's API key (new or regenerated).
    key: String,
}

/// `POST /auth/apikeys/regenerate` (optional body; `environment` is accepted too).
#[derive(Debug, ToSchema)]
#[allow(non_snake_case, dead_code)] // Documents the body; read field by field.
pub(crate) struct RegenerateApiKeyRequest {
    /// Environment; default: the calling key's.
    #[schema(pattern = "^(production|test|[a-z0-9]{1,16})$")]
    Environment: Option<String>,
}

/// One regenerated key (ServiceStack `UserApiKey`).
#[derive(Debug, Serialize, ToSchema)]
#[allow(non_snake_case)]
pub(crate) struct UserApiKey {
    /// The new API key.
    Key: String,
    /// `publishable`, `secret` or `restricted`.
    KeyType: String,
    /// Expiry (RFC 3339), or null.
    #[schema(format = DateTime)]
    ExpiryDate: Option<String>,
    /// The key's metadata.
    Meta: BTreeMap<String, String>,
}

/// ServiceStack's `ResponseStatus`: empty on success; `ErrorCode` and `Message` when the call
/// failed after regenerating some keys (those keys are still in `Results`).
#[derive(Debug, Serialize, ToSchema)]
#[allow(non_snake_case)]
pub(crate) struct ResponseStatus {
    /// `PartialFailure` when some keys could not be regenerated.
    #[serde(skip_serializing_if = "Option::is_none")]
    ErrorCode: Option<String>,
    /// What failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    Message: Option<String>,
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
    /// Always empty on success.
    ResponseStatus: ResponseStatus,
}

/// `POST /verify`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Documents the body; handlers read it field by field (`Fields`).
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyRequest {
    /// The presented API key.
    key: String,
    /// Also require this environment.
    #[schema(pattern = "^(production|test|[a-z0-9]{1,16})$")]
    environment: Option<String>,
    /// Also require this permission.
    permission: Option<String>,
}

/// The answer to `POST /verify` (always 200 once the caller is authorised).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VerifyResponse {
    /// Whether the key is accepted.
    valid: bool,
    /// `valid`, or why it was refused: `malformed`, `unknown`, `not_yet_active`, `expired`,
    /// `revoked`, `disabled`, `wrong_environment`, `missing_permission`, `unavailable`.
    #[schema(example = "valid")]
    code: &'static str,
    /// The key's id (valid keys only).
    key_id: Option<String>,
    /// The key's account (valid keys only).
    account_id: Option<String>,
    /// The key's environment (valid keys only).
    environment: Option<String>,
    /// The key's type (valid keys only).
    #[serde(rename = "type")]
    key_type: Option<String>,
    /// The key's permissions (valid keys only).
    permissions: Option<Vec<String>>,
    /// The key's metadata (valid keys only).
    meta: Option<BTreeMap<String, String>>,
    /// When the presented key stops working, if it does (valid keys only).
    #[schema(format = DateTime)]
    expires_at: Option<String>,
}

/// Query of `GET /api-keys`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents the query; read field by field.
pub(crate) struct ListParams {
    /// Account to list; default: the caller's. Another account needs an operator key holding `api-key:admin`.
    account_id: Option<String>,
    /// Only this environment.
    environment: Option<String>,
    /// Only this type.
    #[param(rename = "type")]
    key_type: Option<String>,
    /// Page size, 1 to 100 (default 10).
    limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    starting_after: Option<String>,
}

// ----- conversions --------------------------------------------------------------------------

fn time(t: Timestamp) -> String {
    t.to_string()
}

fn state_name(s: SecretState) -> &'static str {
    match s {
        SecretState::Pending => "pending",
        SecretState::Active => "active",
        SecretState::Grace => "grace",
        SecretState::Expired => "expired",
        SecretState::Revoked => "revoked",
    }
}

fn status_of(c: &Credential, now: Timestamp) -> &'static str {
    if !c.secrets.is_empty() && c.secrets.iter().all(|s| s.revoked_at.is_some()) {
        "revoked"
    } else if c.expires_at.is_some_and(|e| now >= e) || live_secrets(c, now).next().is_none() {
        "expired"
    } else if !c.enabled {
        "disabled"
    } else {
        "active"
    }
}

fn permissions(set: &PermissionSet) -> Vec<String> {
    set.iter().map(ToString::to_string).collect()
}

fn api_key(c: &Credential, now: Timestamp) -> ApiKey {
    ApiKey {
        id: c.id.to_string(),
        account_id: c.account.to_string(),
        environment: c.environment.to_string(),
        key_type: c.key_type.as_str().to_owned(),
        name: c.name.to_string(),
        permissions: permissions(&c.permissions),
        meta: c.metadata.as_map().clone(),
        created_at: time(c.created_at),
        modified_at: time(c.modified_at),
        expires_at: c.expires_at.map(time),
        enabled: c.enabled,
        status: status_of(c, now),
        versions: c
            .secrets
            .iter()
            .map(|s| KeyVersion {
                version: s.version,
                state: state_name(secret_state(s, c.expires_at, now)),
                created_at: time(s.created_at),
                not_before: time(s.not_before),
                not_after: s.not_after.map(time),
                revoked_at: s.revoked_at.map(time),
            })
            .collect(),
    }
}

/// Runs a (durable, so possibly slow) engine write off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, Problem> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(Problem::from_engine),
        Err(_) => Err(Problem::internal()),
    }
}

/// Parses `raw` with `FromStr`, recording a validation error for `field` on failure.
fn parse_field<T>(f: &mut Fields, field: &str, raw: Option<String>) -> Option<T>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let raw = raw?;
    match raw.parse::<T>() {
        Ok(v) => Some(v),
        Err(e) => {
            f.invalid(field, Some(&raw), e.to_string());
            None
        }
    }
}

fn parse_permissions(f: &mut Fields, raw: Option<Vec<String>>) -> Option<PermissionSet> {
    let raw = raw?;
    let mut out = Vec::with_capacity(raw.len());
    let mut ok = true;
    for (i, s) in raw.iter().enumerate() {
        match keyward_core::Permission::parse(s) {
            Ok(p) => out.push(p),
            Err(e) => {
                f.invalid(&format!("permissions[{i}]"), Some(s), e.to_string());
                ok = false;
            }
        }
    }
    ok.then(|| PermissionSet::from(out))
}

fn parse_meta(f: &mut Fields, raw: Option<BTreeMap<String, String>>) -> Option<Metadata> {
    match Metadata::try_from(raw?) {
        Ok(m) => Some(m),
        Err(e) => {
            f.invalid("meta", None, e.to_string());
            None
        }
    }
}

/// The id in a path: a string that is not an id names no key.
fn path_id(id: &str) -> Result<CredentialId, Problem> {
    id.parse().map_err(|_| Problem::not_found())
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    (status, Json(value)).into_response()
}

// ----- handlers -----------------------------------------------------------------------------

/// Create an API key.
///
/// Returns the stored key and, once, its plaintext `key`.
#[utoipa::path(
    post, path = "/api-keys", tag = "api-keys",
    request_body = CreateApiKeyRequest,
    responses(
        (status = 201, description = "Created", body = CreatedApiKey),
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
    let mut f = Fields::parse(
        body,
        &[
            "name",
            "type",
            "environment",
            "permissions",
            "account_id",
            "expires_at",
            "meta",
        ],
        false,
    )?;
    let name = f.required_string("name");
    let name: Option<Name> = parse_field(&mut f, "name", name);
    let key_type = f.required_string("type");
    let key_type: Option<KeyType> = parse_field(&mut f, "type", key_type);
    let environment = f.required_string("environment");
    let environment: Option<Environment> = parse_field(&mut f, "environment", environment);
    let perms = f.strings("permissions");
    let perms = f.required("permissions", perms);
    let perms = parse_permissions(&mut f, perms);
    let account = f.string("account_id");
    let account: Option<AccountId> = parse_field(&mut f, "account_id", account);
    let expires_at = f.string("expires_at");
    let expires_at: Option<Timestamp> = parse_field(&mut f, "expires_at", expires_at);
    let meta = f.string_map("meta");
    let meta = parse_meta(&mut f, meta);
    f.finish()?;
    let (Some(name), Some(key_type), Some(environment), Some(perms)) =
        (name, key_type, environment, perms)
    else {
        // Unreachable: every `None` above recorded a validation error.
        return Err(Problem::validation(Vec::new()));
    };
    let account = account.unwrap_or_else(|| caller.account().clone());
    let mut new = NewKey::new(account, key_type, environment, name)
        .with_permissions(perms)
        .with_metadata(meta.unwrap_or_default());
    if let Some(t) = expires_at {
        new = new.with_expiry(t);
    }
    let kw = st.kw.clone();
    let issued = blocking(move || kw.issue(&caller.principal, new)).await?;
    let body = CreatedApiKey {
        api_key: api_key(&issued.credential, st.kw.now()),
        key: issued.key.expose_secret().to_owned(),
    };
    let mut resp = json(StatusCode::CREATED, &body);
    if let Ok(loc) = HeaderValue::from_str(&format!("/api-keys/{}", issued.credential.id)) {
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
    let Query(pairs) = query.map_err(|_| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "the query string could not be read",
        )
    })?;
    let mut map = serde_json::Map::new();
    for (k, v) in pairs {
        map.insert(k, serde_json::Value::String(v));
    }
    let body = Ok(Bytes::from(serde_json::Value::Object(map).to_string()));
    let mut f = Fields::parse(
        body,
        &[
            "account_id",
            "environment",
            "type",
            "limit",
            "starting_after",
        ],
        false,
    )?;
    let account_raw = f.string("account_id");
    let account: Option<AccountId> = parse_field(&mut f, "account_id", account_raw);
    let env_raw = f.string("environment");
    let environment: Option<Environment> = parse_field(&mut f, "environment", env_raw);
    let type_raw = f.string("type");
    let key_type: Option<KeyType> = parse_field(&mut f, "type", type_raw);
    let limit_raw = f.string("limit");
    let limit = match limit_raw.as_deref().map(str::parse::<usize>) {
        None => 10,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            f.invalid(
                "limit",
                limit_raw.as_deref(),
                "must be an integer from 1 to 100",
            );
            10
        }
    };
    let after_raw = f.string("starting_after");
    let after: Option<CredentialId> = parse_field(&mut f, "starting_after", after_raw);
    f.finish()?;
    let account = account.unwrap_or_else(|| caller.account().clone());
    let page = st
        .kw
        .list(
            &caller.principal,
            &ListQuery {
                account: Some(account),
                environment,
                key_type,
                after,
                limit,
            },
        )
        .map_err(Problem::from_engine)?;
    let now = st.kw.now();
    let data = page.items.iter().map(|c| api_key(c, now)).collect();
    Ok(json(
        StatusCode::OK,
        &ApiKeyList {
            data,
            has_more: page.next.is_some(),
            next_cursor: page.next.map(|id| id.to_string()),
        },
    ))
}

/// Retrieve an API key.
#[utoipa::path(
    get, path = "/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "API key id", example = "key_7Ay5mcUXAxwrN6wQEQUVEHBCJ")),
    responses(
        (status = 200, description = "The key", body = ApiKey),
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
    Ok(json(StatusCode::OK, &api_key(&cred, st.kw.now())))
}

/// Revoke an API key (every secret of it, at once). Returns the revoked key.
#[utoipa::path(
    delete, path = "/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "API key id")),
    responses(
        (status = 200, description = "The revoked key", body = ApiKey),
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
    Ok(json(StatusCode::OK, &api_key(&cred, st.kw.now())))
}

/// Update an API key's name, permissions, metadata, expiry or enabled flag.
#[utoipa::path(
    patch, path = "/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "API key id")),
    request_body = UpdateApiKeyRequest,
    responses(
        (status = 200, description = "The updated key", body = ApiKey),
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
    let mut f = Fields::parse(
        body,
        &["name", "permissions", "meta", "expires_at", "enabled"],
        false,
    )?;
    let expires_raw = f.nullable_string("expires_at");
    let name = f.string("name");
    let perms = f.strings("permissions");
    let meta = f.string_map("meta");
    let enabled = f.bool("enabled");
    let update = KeyUpdate {
        name: parse_field(&mut f, "name", name),
        permissions: parse_permissions(&mut f, perms),
        metadata: parse_meta(&mut f, meta),
        expires_at: match expires_raw {
            None => None,
            Some(None) => Some(None),
            Some(raw) => parse_field(&mut f, "expires_at", raw).map(Some),
        },
        enabled,
    };
    f.finish()?;
    let kw = st.kw.clone();
    let cred = blocking(move || kw.update(&caller.principal, &id, update)).await?;
    Ok(json(StatusCode::OK, &api_key(&cred, st.kw.now())))
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
    let mut f = Fields::parse(
        body,
        &[
            "grace_period_seconds",
            "activation_delay_seconds",
            "end_earlier_grace",
        ],
        true,
    )?;
    let options = RegenerateOptions {
        grace_period: f.u64("grace_period_seconds").map(Duration::from_secs),
        activation_delay: f.u64("activation_delay_seconds").map(Duration::from_secs),
        end_earlier_grace: f.bool("end_earlier_grace").unwrap_or(false),
    };
    f.finish()?;
    let kw = st.kw.clone();
    let issued = blocking(move || kw.regenerate(&caller.principal, &id, options)).await?;
    let c = &issued.credential;
    Ok(json(
        StatusCode::OK,
        &RegeneratedApiKey {
            id: c.id.to_string(),
            account_id: c.account.to_string(),
            environment: c.environment.to_string(),
            key: issued.key.expose_secret().to_owned(),
            key_type: c.key_type.as_str().to_owned(),
            created_at: time(c.created_at),
            modified_at: time(c.modified_at),
            name: c.name.to_string(),
            permissions: permissions(&c.permissions),
        },
    ))
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
    let mut f = Fields::parse(body, &["environment", "account_id"], false)?;
    let environment = f.required_string("environment");
    let environment: Option<Environment> = parse_field(&mut f, "environment", environment);
    let account = f.string("account_id");
    let account: Option<AccountId> = parse_field(&mut f, "account_id", account);
    f.finish()?;
    let Some(environment) = environment else {
        // Unreachable: a missing or invalid environment recorded a validation error.
        return Err(Problem::validation(Vec::new()));
    };
    let account = account.unwrap_or_else(|| caller.account().clone());
    let kw = st.kw.clone();
    let issued =
        blocking(move || kw.environment_key(&caller.principal, &account, &environment)).await?;
    Ok(json(
        StatusCode::OK,
        &EnvironmentKey {
            key: issued.key.expose_secret().to_owned(),
        },
    ))
}

async fn regenerate_all(
    st: AppState,
    caller: Caller,
    path_env: Option<String>,
    body: Body,
) -> ApiResult {
    let mut f = Fields::parse(body, &["Environment", "environment"], true)?;
    let from_body = match f.string("Environment") {
        Some(e) => Some(e),
        None => f.string("environment"),
    };
    let environment = match path_env.or(from_body) {
        Some(raw) => parse_field(&mut f, "Environment", Some(raw)),
        None => Some(caller.verified.environment().clone()),
    };
    f.finish()?;
    let Some(environment) = environment else {
        // Unreachable: an invalid environment recorded a validation error.
        return Err(Problem::validation(Vec::new()));
    };
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
        Ok(done) => (
            done.issued,
            done.skipped,
            ResponseStatus {
                ErrorCode: None,
                Message: None,
            },
        ),
        Err(partial) if partial.issued.is_empty() => {
            return Err(Problem::from_engine(partial.error));
        }
        Err(partial) => (
            partial.issued,
            partial.skipped,
            ResponseStatus {
                ErrorCode: Some("PartialFailure".to_owned()),
                Message: Some(partial.error.to_string()),
            },
        ),
    };
    let mut meta = BTreeMap::new();
    if !skipped.is_empty() {
        let ids: Vec<&str> = skipped.iter().map(|s| s.id.as_str()).collect();
        meta.insert("skipped".to_owned(), ids.join(","));
    }
    let results = issued
        .iter()
        .map(|i| UserApiKey {
            Key: i.key.expose_secret().to_owned(),
            KeyType: i.credential.key_type.as_str().to_owned(),
            ExpiryDate: i.credential.expires_at.map(time),
            Meta: i.credential.metadata.as_map().clone(),
        })
        .collect();
    Ok(json(
        StatusCode::OK,
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
        (status = 400, description = "Malformed JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Missing permission", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Validation failed", body = ProblemBody, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["api-key:write"]), ("bearer" = ["api-key:write"]))
)]
pub(crate) async fn regenerate_account_keys(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let caller = authenticate(&st.kw, &headers, WRITE)?;
    regenerate_all(st, caller, None, body).await
}

/// Regenerate every key of the caller's account in `environment`.
#[utoipa::path(
    post, path = "/auth/apikeys/regenerate/{environment}", tag = "environments",
    params(("environment" = String, Path, description = "Environment name", example = "production")),
    responses(
        (status = 200, description = "The new keys", body = RegenerateApiKeysResponse),
        (status = 400, description = "Malformed JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Missing permission", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Validation failed", body = ProblemBody, content_type = "application/problem+json"),
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
    regenerate_all(st, caller, Some(environment), body).await
}

/// Verify a presented key (for gateways written in other languages). Answers for keys of any
/// account.
#[utoipa::path(
    post, path = "/verify", tag = "verify",
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "Whether the key is valid, and whose it is", body = VerifyResponse),
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
    let mut f =
        Fields::parse(body, &["key", "environment", "permission"], false)?.with_secret(&["key"]);
    let key = f.required_string("key");
    let environment = f.string("environment");
    let environment: Option<Environment> = parse_field(&mut f, "environment", environment);
    let permission = f.string("permission");
    let permission: Option<keyward_core::Permission> =
        parse_field(&mut f, "permission", permission);
    f.finish()?;
    let key = key.unwrap_or_default();
    let answer = match st
        .kw
        .verify_for(&key, environment.as_ref(), permission.as_ref())
    {
        Ok(v) => VerifyResponse {
            valid: true,
            code: "valid",
            key_id: Some(v.id().to_string()),
            account_id: Some(v.account().to_string()),
            environment: Some(v.environment().to_string()),
            key_type: Some(v.key_type().as_str().to_owned()),
            permissions: Some(permissions(v.permissions())),
            meta: Some(v.metadata().as_map().clone()),
            expires_at: v.expires_at().map(time),
        },
        Err(e) => VerifyResponse {
            valid: false,
            code: e.code(),
            key_id: None,
            account_id: None,
            environment: None,
            key_type: None,
            permissions: None,
            meta: None,
            expires_at: None,
        },
    };
    Ok(json(StatusCode::OK, &answer))
}

/// The calling key itself.
#[utoipa::path(
    get, path = "/whoami", tag = "verify",
    responses(
        (status = 200, description = "The calling key", body = ApiKey),
        (status = 401, description = "Missing or invalid API key", body = ProblemBody, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub(crate) async fn whoami(State(st): State<AppState>, headers: HeaderMap) -> ApiResult {
    authenticate(&st.kw, &headers, Need::AnyKey)?;
    let key = presented_key(&headers, &API_KEY_HEADER).ok_or_else(Problem::missing_key)?;
    let cred = st.kw.whoami(key).map_err(|_| Problem::invalid_key())?;
    Ok(json(StatusCode::OK, &api_key(&cred, st.kw.now())))
}

/// This document.
#[utoipa::path(
    get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
pub(crate) async fn openapi(State(st): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        st.openapi.to_string(),
    )
        .into_response()
}

// ----- OpenAPI ------------------------------------------------------------------------------

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKeyScheme::Header(ApiKeyValue::with_description(
                "X-API-KEY",
                "A keyward API key",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "keyward",
        description = "Manage and verify API keys. Authenticate with `X-API-KEY: <key>` or \
                       `Authorization: Bearer <key>`. Errors are RFC 9457 problem details."
    ),
    paths(
        create_key, list_keys, get_key, update_key, delete_key, regenerate_key,
        regenerate_environment_key, regenerate_account_keys, regenerate_account_keys_in,
        verify_key, whoami, openapi, super::admin::export, super::events::list_events,
        super::events::list_key_events, super::events::event_head, super::events::verify_events
    ),
    components(schemas(ProblemBody, InvalidField)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "api-keys", description = "Create, read, update, regenerate and revoke API keys"),
        (name = "environments", description = "Regenerate keys by environment"),
        (name = "verify", description = "Verify keys"),
        (name = "admin", description = "Whole-store operations for operators"),
        (name = "events", description = "The audit log of management actions and refusals"),
        (name = "meta", description = "The service itself")
    )
)]
struct ApiDoc;

/// The OpenAPI document as JSON.
pub(crate) fn openapi_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".to_owned())
}
