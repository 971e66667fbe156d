//! Reading the presented key; the engine authorises what it may do.

use axum::http::{HeaderMap, HeaderName, header};
use keyward_core::AccountId;

use super::problem::{Problem, REQUEST_ID_HEADER};
use crate::{Acting, Keyward, Principal, RequestId, Right, Verified};

/// The default header: `X-API-KEY`.
pub(crate) const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");

/// The key presented in `header`, else in `Authorization: Bearer <key>`. `None`: no key at all
/// (an empty header counts as none). A header value that is not visible ASCII reads as an
/// invalid key.
pub(crate) fn presented_key<'h>(
    headers: &'h HeaderMap,
    header_name: &HeaderName,
) -> Option<&'h str> {
    if let Some(v) = headers.get(header_name) {
        match v.to_str().map(str::trim) {
            Ok("") => {}
            Ok(key) => return Some(key),
            Err(_) => return Some("\u{fffd}"),
        }
    }
    let auth = headers.get(header::AUTHORIZATION)?;
    let auth = auth.to_str().unwrap_or("");
    let (scheme, token) = auth.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// What a management endpoint needs from the caller's key (checked by the engine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// Any valid key (whoami).
    AnyKey,
    /// A right the engine checks ([`Keyward::authorize`]).
    Right(Right),
}

/// The authenticated caller: its principal with the request's id (recorded in the audit log
/// with every event of the call), and its verified key.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) principal: Acting,
    pub(crate) verified: Verified,
}

/// The request's id, as the service's middleware set it on the request (`finish_response`
/// replaces whatever a client sent).
fn request_id(headers: &HeaderMap) -> Option<RequestId> {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse().ok())
}

impl Caller {
    pub(crate) fn account(&self) -> &AccountId {
        self.verified.account()
    }
}

/// Authenticates the request's key (401) and asks the engine whether it holds what `need`
/// asks for (403), before the request body is read.
pub(crate) fn authenticate(
    kw: &Keyward,
    headers: &HeaderMap,
    need: Need,
) -> Result<Caller, Problem> {
    let key = presented_key(headers, &API_KEY_HEADER).ok_or_else(Problem::missing_key)?;
    let verified = kw.verify(key).map_err(|_| Problem::invalid_key())?;
    let mut principal = Acting::from(Principal::Key(verified.clone()));
    principal.request_id = request_id(headers);
    if let Need::Right(right) = need {
        kw.authorize(&principal, right)
            .map_err(Problem::from_engine)?;
    }
    Ok(Caller {
        principal,
        verified,
    })
}
