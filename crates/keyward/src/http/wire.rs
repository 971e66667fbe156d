//! The native API's wire types (the PublicSquare-style REST resource `/api-keys` and
//! `/verify`): request bodies and queries, which are at once what the parser reads and the
//! OpenAPI schema, and the answers that wrap the shared views ([`crate::view`]).
//!
//! Each request type turns itself into the engine's input, collecting every invalid field
//! ([`Check`]); the rules themselves (future expiry, duration caps, environments, permissions)
//! are the engine's.

use std::time::Duration;

use keyward_core::{
    AccountId, CredentialId, Environment, KeyType, Metadata, Name, Permission, PermissionSet,
    Timestamp,
};
use keyward_rotation::RegenerateOptions;
use keyward_store::ListQuery;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::input::{Check, Input, PageSize, PresentedKey};
use super::problem::Problem;
use crate::view::{IssuedKeyView, KeyView};
use crate::{KeyUpdate, NewKey};

/// Page size of `GET /api-keys` when none is asked for.
const DEFAULT_PAGE: usize = 10;

/// Answered when a `Check` passed but a required value is missing (cannot happen: a missing
/// required field is recorded by the check).
fn unreachable_missing() -> Problem {
    Problem::validation(Vec::new())
}

// ----- requests -----------------------------------------------------------------------------

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

/// `POST /api-keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateApiKeyRequest {
    /// Name of the API key: non-empty, at most 100 characters.
    #[schema(value_type = String, required = true, example = "Test Application", min_length = 1, max_length = 100)]
    #[serde(default)]
    name: Input<Name>,
    /// `publishable`, `secret` or `restricted`.
    #[serde(rename = "type")]
    #[schema(value_type = KeyTypeName, required = true, example = "secret")]
    #[serde(default)]
    key_type: Input<KeyType>,
    /// `production`, `test` or a custom name (`[a-z0-9]{1,16}`).
    #[schema(value_type = String, required = true, example = "production", pattern = "^(production|test|[a-z0-9]{1,16})$")]
    #[serde(default)]
    environment: Input<Environment>,
    /// Permissions; a restricted key needs at least one.
    #[schema(value_type = Vec<String>, required = true, example = json!(["business:read"]))]
    #[serde(default)]
    permissions: Input<PermissionSet>,
    /// Owning account; default: the caller's. Another account needs an operator key holding `api-key:admin`.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    account_id: Input<AccountId>,
    /// Expiry (RFC 3339, in the future).
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(default)]
    expires_at: Input<Timestamp>,
    /// Free-form metadata (at most 50 entries; keys 1–40 bytes, values up to 500 bytes).
    #[schema(value_type = Option<std::collections::BTreeMap<String, String>>)]
    #[serde(default)]
    meta: Input<Metadata>,
}

impl CreateApiKeyRequest {
    /// The key to issue, for `default_account` unless the body names another.
    pub(crate) fn into_new_key(
        self,
        mut check: Check,
        default_account: &AccountId,
    ) -> Result<NewKey, Problem> {
        let name = check.required("name", self.name);
        let key_type = check.required("type", self.key_type);
        let environment = check.required("environment", self.environment);
        let permissions = check.required("permissions", self.permissions);
        let account = check.optional("account_id", self.account_id);
        let expires_at = check.optional("expires_at", self.expires_at);
        let meta = check.optional("meta", self.meta);
        check.finish()?;
        let (Some(name), Some(key_type), Some(environment), Some(permissions)) =
            (name, key_type, environment, permissions)
        else {
            return Err(unreachable_missing());
        };
        let account = account.unwrap_or_else(|| default_account.clone());
        Ok(NewKey {
            permissions,
            metadata: meta.unwrap_or_default(),
            expires_at,
            ..NewKey::new(account, key_type, environment, name)
        })
    }
}

/// `PATCH /api-keys/{id}`: every field is optional; absent fields are left as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateApiKeyRequest {
    /// New name.
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100)]
    #[serde(default)]
    name: Input<Name>,
    /// New permissions (replaces the set).
    #[schema(value_type = Option<Vec<String>>)]
    #[serde(default)]
    permissions: Input<PermissionSet>,
    /// New metadata (replaces the map).
    #[schema(value_type = Option<std::collections::BTreeMap<String, String>>)]
    #[serde(default)]
    meta: Input<Metadata>,
    /// New expiry (RFC 3339, in the future); `null` removes it.
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(default)]
    expires_at: Input<Timestamp>,
    /// Enable or disable the key.
    #[schema(value_type = Option<bool>)]
    #[serde(default)]
    enabled: Input<bool>,
}

impl UpdateApiKeyRequest {
    /// The change to make.
    pub(crate) fn into_update(self, mut check: Check) -> Result<KeyUpdate, Problem> {
        let expires_at = check.nullable("expires_at", self.expires_at);
        let update = KeyUpdate {
            name: check.optional("name", self.name),
            permissions: check.optional("permissions", self.permissions),
            metadata: check.optional("meta", self.meta),
            expires_at,
            enabled: check.optional("enabled", self.enabled),
        };
        check.finish()?;
        Ok(update)
    }
}

/// `POST /api-keys/{id}/regenerate` (optional body).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegenerateRequest {
    /// How long the old key keeps working (default: the service's policy, 24 h).
    #[schema(value_type = Option<u64>, maximum = 315_360_000)]
    #[serde(default)]
    grace_period_seconds: Input<u64>,
    /// How long until the new key works (default: the service's policy).
    #[schema(value_type = Option<u64>, maximum = 315_360_000)]
    #[serde(default)]
    activation_delay_seconds: Input<u64>,
    /// End a secret still in an earlier regenerate's grace period now, before its promised end
    /// (default `false`: such a regenerate is refused with 409 `grace_in_progress`).
    #[schema(value_type = Option<bool>)]
    #[serde(default)]
    end_earlier_grace: Input<bool>,
}

impl RegenerateRequest {
    /// The regenerate's options.
    pub(crate) fn into_options(self, mut check: Check) -> Result<RegenerateOptions, Problem> {
        let options = RegenerateOptions {
            grace_period: check
                .optional("grace_period_seconds", self.grace_period_seconds)
                .map(Duration::from_secs),
            activation_delay: check
                .optional("activation_delay_seconds", self.activation_delay_seconds)
                .map(Duration::from_secs),
            end_earlier_grace: check
                .optional("end_earlier_grace", self.end_earlier_grace)
                .unwrap_or(false),
        };
        check.finish()?;
        Ok(options)
    }
}

/// Query of `GET /api-keys`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Account to list; default: the caller's. Another account needs an operator key holding `api-key:admin`.
    #[param(value_type = Option<String>)]
    #[serde(default)]
    account_id: Input<AccountId>,
    /// Only this environment.
    #[param(value_type = Option<String>)]
    #[serde(default)]
    environment: Input<Environment>,
    /// Only this type.
    #[serde(rename = "type")]
    #[param(value_type = Option<KeyTypeName>)]
    #[serde(default)]
    key_type: Input<KeyType>,
    /// Page size, 1 to 100 (default 10).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 100)]
    #[serde(default)]
    limit: Input<PageSize>,
    /// The `next_cursor` of the previous page.
    #[param(value_type = Option<String>)]
    #[serde(default)]
    starting_after: Input<CredentialId>,
}

impl ListParams {
    /// The page to read, of `default_account` unless the query names another.
    pub(crate) fn into_query(
        self,
        mut check: Check,
        default_account: &AccountId,
    ) -> Result<ListQuery, Problem> {
        let query = ListQuery {
            account: Some(
                check
                    .optional("account_id", self.account_id)
                    .unwrap_or_else(|| default_account.clone()),
            ),
            environment: check.optional("environment", self.environment),
            key_type: check.optional("type", self.key_type),
            limit: check
                .optional("limit", self.limit)
                .map_or(DEFAULT_PAGE, |p| p.0),
            after: check.optional("starting_after", self.starting_after),
        };
        check.finish()?;
        Ok(query)
    }
}

/// `POST /verify`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyRequest {
    /// The presented API key.
    #[schema(value_type = String, required = true)]
    #[serde(default)]
    key: Input<PresentedKey>,
    /// Also require this environment.
    #[schema(value_type = Option<String>, pattern = "^(production|test|[a-z0-9]{1,16})$")]
    #[serde(default)]
    environment: Input<Environment>,
    /// Also require this permission.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    permission: Input<Permission>,
}

/// What `POST /verify` asks.
pub(crate) struct VerifyQuestion {
    pub(crate) key: PresentedKey,
    pub(crate) environment: Option<Environment>,
    pub(crate) permission: Option<Permission>,
}

impl VerifyRequest {
    /// The question.
    pub(crate) fn into_question(self, mut check: Check) -> Result<VerifyQuestion, Problem> {
        let key = check.required("key", self.key);
        let environment = check.optional("environment", self.environment);
        let permission = check.optional("permission", self.permission);
        check.finish()?;
        let key = key.ok_or_else(unreachable_missing)?;
        Ok(VerifyQuestion {
            key,
            environment,
            permission,
        })
    }
}

// ----- answers ------------------------------------------------------------------------------

/// One page of API keys.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ApiKeyList {
    /// The keys, ordered by id.
    pub(crate) data: Vec<KeyView>,
    /// Whether more keys follow.
    pub(crate) has_more: bool,
    /// Pass as `starting_after` for the next page.
    #[schema(value_type = Option<String>)]
    pub(crate) next_cursor: Option<CredentialId>,
}

/// The answer to `POST /api-keys/{id}/regenerate`: PublicSquare's documented fields (a part
/// of the issued-key view).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RegeneratedApiKey {
    /// API key id (unchanged).
    #[schema(value_type = String, example = "key_7Ay5mcUXAxwrN6wQEQUVEHBCJ")]
    id: CredentialId,
    /// Account id.
    #[schema(value_type = String, example = "acc_B518niGwGYKzig6vtrRVZGGGV")]
    account_id: AccountId,
    /// Environment - can be `test` or `production` (or a custom name).
    #[schema(value_type = String, example = "production")]
    environment: Environment,
    /// The new API key for performing API requests.
    #[serde(serialize_with = "expose")]
    #[schema(value_type = String, example = "pk_prod_6fpAaGyHBeGNpxTpJKMD5w5wk")]
    key: keyward_core::PlaintextKey,
    /// API key type - can be `publishable`, `secret` or `restricted`.
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "publishable")]
    key_type: KeyType,
    /// Date the API key was created.
    #[schema(format = DateTime, example = "2024-06-30T01:02:29.212Z")]
    created_at: String,
    /// Date the API key was modified.
    #[schema(format = DateTime, example = "2024-06-30T01:02:29.212Z")]
    modified_at: String,
    /// Name of the API key.
    #[schema(value_type = String, example = "Test Application")]
    name: Name,
    /// Permissions of the API key.
    #[schema(value_type = Vec<String>, example = json!(["api-key:write", "business:read"]))]
    permissions: PermissionSet,
}

impl From<IssuedKeyView> for RegeneratedApiKey {
    fn from(v: IssuedKeyView) -> Self {
        let k = v.api_key;
        Self {
            id: k.id,
            account_id: k.account_id,
            environment: k.environment,
            key: v.key,
            key_type: k.key_type,
            created_at: k.created_at.to_string(),
            modified_at: k.modified_at.to_string(),
            name: k.name,
            permissions: k.permissions,
        }
    }
}

fn expose<S: serde::Serializer>(key: &keyward_core::PlaintextKey, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(key.expose_secret())
}
