//! The audit log over HTTP: `GET /events`, `GET /api-keys/{id}/events`, and, for operators,
//! `GET /events/head` and `GET /events/verify`. The engine decides what each caller sees.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use keyward_core::{CredentialId, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::api::{AppState, READ, blocking, json, path_id, query_pairs};
use super::auth::authenticate;
use super::input::{Input, PageSize, Seq, read_query};
use super::problem::{Problem, ProblemBody};
use crate::audit::{EventHead, EventQuery, EventView, HeadView, VerifyView};

/// Page size when the query names none (the largest accepted is [`PageSize`]'s, 100).
const DEFAULT_LIMIT: usize = 20;

/// One page of audit events.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventList {
    /// The events, in sequence order.
    data: Vec<EventView>,
    /// Whether more events may follow.
    has_more: bool,
    /// Pass as `after` for the next page.
    next_cursor: Option<String>,
}

/// The newest event of the log, to pin (`head` is `null` for an empty log).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventHeadAnswer {
    /// The head, or `null` if the log is empty.
    head: Option<HeadView>,
}

/// `GET /events` and `GET /api-keys/{id}/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventParams {
    /// Only events at or after this time (RFC 3339).
    #[param(value_type = Option<String>)]
    #[serde(default)]
    since: Input<Timestamp>,
    /// The `next_cursor` of the previous page (a sequence number).
    #[param(value_type = Option<String>)]
    #[serde(default)]
    after: Input<Seq>,
    /// Page size, 1 to 100 (default 20).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 100)]
    #[serde(default)]
    limit: Input<PageSize>,
}

/// `GET /events/verify`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct VerifyParams {
    /// A head pinned earlier (`SEQ:HASH`, from `GET /events/head`): also catch a log cut or
    /// rewritten after it.
    #[param(value_type = Option<String>)]
    #[serde(default)]
    head: Input<EventHead>,
}

/// Reads `since`, `after` and `limit`.
fn event_query(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    key: Option<CredentialId>,
) -> Result<EventQuery, Problem> {
    let (params, mut check) = read_query::<EventParams>(query_pairs(query)?)?;
    let since = check.optional("since", params.since);
    let after = check.optional("after", params.after).map_or(0, |s| s.0);
    let limit = check
        .optional("limit", params.limit)
        .map_or(DEFAULT_LIMIT, |l| l.0);
    check.finish()?;
    Ok(EventQuery {
        key,
        since,
        after,
        limit,
    })
}

async fn list(st: AppState, headers: HeaderMap, query: EventQuery) -> Result<Response, Problem> {
    let caller = authenticate(&st.kw, &headers, READ)?;
    let kw = st.kw.clone();
    let page = blocking(move || kw.events(&caller.principal, &query)).await?;
    Ok(json(
        StatusCode::OK,
        &EventList {
            data: page.events.iter().map(EventView::from).collect(),
            has_more: page.next.is_some(),
            next_cursor: page.next.map(|n| n.to_string()),
        },
    ))
}

/// List audit events: every management action and refusal the caller can see (its account's
/// keys; an operator key holding `api-key:admin`: all), oldest first.
#[utoipa::path(
    get, path = "/events", tag = "events",
    params(EventParams),
    responses(
        (status = 200, description = "One page of events", body = EventList),
        (status = 400, description = "Malformed query", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Missing permission", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query value", body = ProblemBody, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["api-key:read"]), ("bearer" = ["api-key:read"]))
)]
pub(crate) async fn list_events(
    State(st): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, Problem> {
    let query = event_query(query, None)?;
    list(st, headers, query).await
}

/// List the audit events of one API key.
#[utoipa::path(
    get, path = "/api-keys/{id}/events", tag = "events",
    params(("id" = String, Path, description = "API key id"), EventParams),
    responses(
        (status = 200, description = "One page of the key's events", body = EventList),
        (status = 400, description = "Malformed query", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Missing permission", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "Unknown id, or another account's key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query value", body = ProblemBody, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["api-key:read"]), ("bearer" = ["api-key:read"]))
)]
pub(crate) async fn list_key_events(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, Problem> {
    let id = path_id(&id)?;
    let query = event_query(query, Some(id))?;
    list(st, headers, query).await
}

/// The newest event of the audit log (its sequence number and hash), to pin outside the
/// service: `GET /events/verify?head=…` later proves nothing up to it was cut or rewritten.
#[utoipa::path(
    get, path = "/events/head", tag = "events",
    responses(
        (status = 200, description = "The head", body = EventHeadAnswer),
        (status = 401, description = "Missing or invalid API key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator key with `api-key:read` and `api-key:admin`", body = ProblemBody, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["api-key:read", "api-key:admin"]), ("bearer" = ["api-key:read", "api-key:admin"]))
)]
pub(crate) async fn event_head(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let caller = authenticate(&st.kw, &headers, READ)?;
    let kw = st.kw.clone();
    let head = blocking(move || kw.event_head(&caller.principal)).await?;
    Ok(json(
        StatusCode::OK,
        &EventHeadAnswer {
            head: head.map(HeadView::from),
        },
    ))
}

/// Verify the audit log's hash chain (and, with `head`, that nothing up to a pinned head was
/// cut or rewritten). A broken chain is a 200 with `intact: false` naming where it breaks.
#[utoipa::path(
    get, path = "/events/verify", tag = "events",
    params(VerifyParams),
    responses(
        (status = 200, description = "The verdict", body = VerifyView),
        (status = 401, description = "Missing or invalid API key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator key with `api-key:read` and `api-key:admin`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid head", body = ProblemBody, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["api-key:read", "api-key:admin"]), ("bearer" = ["api-key:read", "api-key:admin"]))
)]
pub(crate) async fn verify_events(
    State(st): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, Problem> {
    let caller = authenticate(&st.kw, &headers, READ)?;
    let (params, mut check) = read_query::<VerifyParams>(query_pairs(query)?)?;
    let head = check.optional("head", params.head);
    check.finish()?;
    let kw = st.kw.clone();
    let verdict = blocking(move || kw.verify_events(&caller.principal, head)).await?;
    Ok(json(StatusCode::OK, &VerifyView::from(&verdict)))
}
