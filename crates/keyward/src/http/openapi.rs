//! The OpenAPI document, built from the handlers' annotations and the wire types (the same
//! structs the parser reads), and `GET /openapi.json`.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::SecurityScheme;
use utoipa::openapi::security::{ApiKey as ApiKeyScheme, ApiKeyValue, HttpAuthScheme, HttpBuilder};
use utoipa::{Modify, OpenApi};

use super::api::AppState;
use super::problem::{InvalidField, ProblemBody};
use crate::view::{KeyStatus, VersionState};

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
                       `Authorization: Bearer <key>`. Errors are RFC 9457 problem details, \
                       except on the ServiceStack routes (`/auth/apikeys/regenerate…`), which \
                       answer errors in ServiceStack's `ResponseStatus` envelope."
    ),
    paths(
        super::api_keys::create_key, super::api_keys::list_keys, super::api_keys::get_key,
        super::api_keys::update_key, super::api_keys::delete_key, super::api_keys::regenerate_key,
        super::equaze::regenerate_environment_key,
        super::servicestack::regenerate_account_keys,
        super::servicestack::regenerate_account_keys_in,
        super::verify::verify_key, super::verify::whoami, openapi, super::admin::export,
        super::events::list_events, super::events::list_key_events, super::events::event_head,
        super::events::verify_events
    ),
    components(schemas(ProblemBody, InvalidField, KeyStatus, VersionState)),
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
