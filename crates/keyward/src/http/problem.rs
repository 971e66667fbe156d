//! RFC 9457 problem details (`application/problem+json`), with the validation extensions
//! `invalidFields` / `errors` and a `requestId`.

use std::collections::BTreeMap;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyward_rotation::RotationError;
use keyward_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::{Denial, EngineError, Field};

/// Media type of every error response.
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// The body of every error response (RFC 9457).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProblemBody {
    /// A URI identifying the problem type, e.g. `urn:keyward:problem:validation`.
    #[serde(rename = "type")]
    pub(crate) type_uri: String,
    /// A short summary of the problem type.
    pub(crate) title: String,
    /// The HTTP status code.
    pub(crate) status: u16,
    /// What went wrong in this occurrence.
    pub(crate) detail: String,
    /// The request path this occurrence belongs to (segments that could hold a key are
    /// redacted).
    pub(crate) instance: String,
    /// A stable machine-readable code, e.g. `validation_failed`.
    pub(crate) error_code: String,
    /// A unique reference for the request; also sent as the `x-request-id` header.
    pub(crate) request_id: String,
    /// Each field that failed validation (422 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) invalid_fields: Vec<InvalidField>,
    /// The same validation messages keyed by field name (422 only).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) errors: BTreeMap<String, Vec<String>>,
    /// The permissions the calling key would need and does not hold (403 only, when a
    /// permission is what is missing).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) missing_permissions: Vec<String>,
}

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub(crate) struct InvalidField {
    /// The field, e.g. `name` or `permissions[2]`.
    pub(crate) name: String,
    /// The value given (`null` when missing; `[redacted]` when it could be a key).
    pub(crate) value: Option<String>,
    /// Why it was refused.
    pub(crate) message: String,
    /// What kind of failure (for dialects that name it, e.g. ServiceStack's `ErrorCode`).
    #[serde(skip)]
    pub(crate) kind: FlawKind,
}

/// What kind of failure an invalid field is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlawKind {
    /// Absent or null but required.
    Required,
    /// Not a field of this request.
    Unknown,
    /// The wrong JSON type.
    WrongType,
    /// The right type, but a value the rules refuse.
    Invalid,
}

impl FlawKind {
    /// A short PascalCase name: `Required`, `UnknownField`, `InvalidType`, `InvalidValue`.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Self::Required => "Required",
            Self::Unknown => "UnknownField",
            Self::WrongType => "InvalidType",
            Self::Invalid => "InvalidValue",
        }
    }
}

/// An error answer. Rendered by the service's request middleware, which fills in `instance`
/// and `requestId`.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) detail: String,
    pub(crate) invalid_fields: Vec<InvalidField>,
    pub(crate) missing_permissions: Vec<String>,
}

impl Problem {
    pub(crate) fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            invalid_fields: Vec::new(),
            missing_permissions: Vec::new(),
        }
    }

    pub(crate) fn bad_json(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_json", detail)
    }

    pub(crate) fn missing_key() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "missing_api_key",
            "no API key: send it in the X-API-KEY header or as `Authorization: Bearer <key>`",
        )
    }

    pub(crate) fn invalid_key() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "the API key is invalid, expired, revoked or disabled",
        )
    }

    pub(crate) fn forbidden(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, detail)
    }

    pub(crate) fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no API key with this id",
        )
    }

    pub(crate) fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the request could not be completed",
        )
    }

    pub(crate) fn validation(fields: Vec<InvalidField>) -> Self {
        let detail = match fields.as_slice() {
            [one] => format!("`{}` {}", one.name, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed",
            detail,
            invalid_fields: fields,
            missing_permissions: Vec::new(),
        }
    }

    /// The problem for an engine error. Nothing here carries secret material; an id out of
    /// the caller's reach was already answered by the engine exactly like an unknown one.
    pub(crate) fn from_engine(e: EngineError) -> Self {
        match e {
            EngineError::Invalid { field, error } => Self::validation(vec![InvalidField {
                name: wire_name(field).to_owned(),
                value: None,
                message: error.to_string(),
                kind: FlawKind::Invalid,
            }]),
            EngineError::NotFound(_) => Self::not_found(),
            EngineError::Forbidden {
                reason: Denial::InactivePrincipal,
                ..
            } => Self::invalid_key(),
            EngineError::Forbidden { reason, missing } => {
                let missing: Vec<String> = missing.iter().map(ToString::to_string).collect();
                let listed = missing
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let (code, detail) = match &reason {
                    Denial::NotSecretKey => ("secret_key_required", reason.to_string()),
                    Denial::MissingRight => (
                        "missing_permission",
                        format!("this key lacks the {listed} permission"),
                    ),
                    Denial::Escalation => (
                        "escalation",
                        format!(
                            "the target key holds or would hold permissions this key does not: \
                             {listed} (no key makes or changes a key stronger than itself)"
                        ),
                    ),
                    Denial::OutlivesPrincipal { principal_expires } => (
                        "outlives_caller",
                        format!(
                            "the key would outlive this key, which expires at \
                             {principal_expires}: give it an expiry no later than that"
                        ),
                    ),
                    Denial::OtherAccount => (
                        "other_account",
                        "this account is outside this key's reach (other accounts are \
                         reached only by operator keys holding `api-key:admin`)"
                            .to_owned(),
                    ),
                    Denial::DeploymentWideOnly => ("deployment_wide_only", reason.to_string()),
                    _ => ("forbidden", reason.to_string()),
                };
                let mut p = Self::forbidden(code, detail);
                p.missing_permissions = missing;
                p
            }
            EngineError::LastAdministrator(_) => {
                Self::new(StatusCode::CONFLICT, "last_administrator", e.to_string())
            }
            EngineError::Rotation(r) => {
                let code = match r {
                    RotationError::Revoked => "key_revoked",
                    RotationError::Expired => "key_expired",
                    RotationError::GraceInProgress { .. } => "grace_in_progress",
                    _ => "conflict",
                };
                Self::new(StatusCode::CONFLICT, code, r.to_string())
            }
            EngineError::Contended(_) | EngineError::Store(StoreError::InUse { .. }) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the key store is busy; try again",
            ),
            EngineError::Random => Self::internal(),
            _ => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage_error",
                "the key store failed",
            ),
        }
    }

    /// A problem for a bare status (used for responses that were not built as problems).
    pub(crate) fn from_status(status: StatusCode) -> Self {
        let (code, detail) = match status {
            StatusCode::NOT_FOUND => ("not_found", "no such resource"),
            StatusCode::METHOD_NOT_ALLOWED => {
                ("method_not_allowed", "this method is not allowed here")
            }
            StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ("unsupported_media_type", "the request body must be JSON")
            }
            s if s.is_server_error() => ("internal_error", "the request could not be completed"),
            _ => ("bad_request", "the request could not be understood"),
        };
        Self::new(status, code, detail)
    }

    pub(crate) fn body(&self, instance: &str, request_id: &str) -> ProblemBody {
        let mut errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in &self.invalid_fields {
            errors
                .entry(f.name.clone())
                .or_default()
                .push(f.message.clone());
        }
        ProblemBody {
            type_uri: format!("urn:keyward:problem:{}", self.code.replace('_', "-")),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            instance: instance.to_owned(),
            error_code: self.code.to_owned(),
            request_id: request_id.to_owned(),
            invalid_fields: self.invalid_fields.clone(),
            errors,
            missing_permissions: self.missing_permissions.clone(),
        }
    }

    /// The finished response.
    pub(crate) fn render(&self, instance: &str, request_id: &str) -> Response {
        let body = serde_json::to_vec(&self.body(instance, request_id)).unwrap_or_default();
        let mut resp = (self.status, body).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Ok(v) = HeaderValue::from_str(request_id) {
            resp.headers_mut().insert(REQUEST_ID_HEADER, v);
        }
        resp
    }
}

/// The request field an engine input field is read from.
fn wire_name(field: Field) -> &'static str {
    match field {
        Field::Account => "account_id",
        Field::Metadata => "meta",
        Field::GracePeriod => "grace_period_seconds",
        Field::ActivationDelay => "activation_delay_seconds",
        other => other.as_str(),
    }
}

/// Response header carrying the request id.
pub(crate) const REQUEST_ID_HEADER: &str = "x-request-id";

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        // Rendered without context here; the request middleware re-renders it with the
        // request's instance and id (it finds the problem in the extensions).
        let mut resp = self.render("", "");
        resp.extensions_mut().insert(self);
        resp
    }
}

/// A fresh request id, `req_` and 25 random base62 characters.
pub(crate) fn new_request_id() -> String {
    match keyward_core::random_id() {
        Ok(id) => format!("req_{}", id.as_str().trim_start_matches("key_")),
        Err(_) => {
            use std::sync::atomic::{AtomicU64, Ordering};
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            format!("req_{}", COUNTER.fetch_add(1, Ordering::Relaxed))
        }
    }
}

/// The request path for `instance`, with every segment that could hold a key replaced.
pub(crate) fn instance_of(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.len() > 40 || looks_secret(seg) {
                "[redacted]"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether `s` could contain an API key (or the secret body of one): a run of `[A-Za-z0-9_]`
/// of 40 or more characters containing `_`, or a mixed-case alphanumeric run of 55 or more.
pub(crate) fn looks_secret(s: &str) -> bool {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|run| {
            let b = run.as_bytes();
            (run.len() >= 40 && run.contains('_'))
                || (run.len() >= 55
                    && b.iter().any(u8::is_ascii_uppercase)
                    && b.iter().any(u8::is_ascii_lowercase)
                    && b.iter().any(u8::is_ascii_digit))
        })
}

/// `value` as it may be echoed in `invalidFields`: redacted if it could be a key, shortened if
/// long.
pub(crate) fn echo(value: &str) -> String {
    if looks_secret(value) {
        return "[redacted]".to_owned();
    }
    let mut out: String = value.chars().take(120).collect();
    if out.len() < value.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_redacted() {
        let key = format!("sk_prod_{}", "A".repeat(55));
        assert!(looks_secret(&key));
        assert!(looks_secret(&format!("my key: {key}")));
        assert_eq!(echo(&key), "[redacted]");
        assert!(!looks_secret("Backend server"));
        assert!(!looks_secret(&"a".repeat(101)));
        assert_eq!(
            instance_of(&format!("/api-keys/{key}")),
            "/api-keys/[redacted]"
        );
        assert_eq!(
            instance_of("/api-keys/key_7Ay5mcUXAxwrN6wQEQUVEHBCJ"),
            "/api-keys/key_7Ay5mcUXAxwrN6wQEQUVEHBCJ"
        );
    }
}
