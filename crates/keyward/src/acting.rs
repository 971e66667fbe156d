//! Who acts on a management call, and for which request: what the audit log records as the
//! event's actor and request id.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::authority::Principal;

/// The id a face gives one request (the HTTP service's `X-Request-Id`), recorded with the
/// audit events of the call it made: 1 to 64 visible ASCII characters.
///
/// ```
/// use keyward::RequestId;
/// let id: RequestId = "req_7Ay5mcUXAxwrN6wQEQUVEHBCJ".parse().unwrap();
/// assert_eq!(id.as_str(), "req_7Ay5mcUXAxwrN6wQEQUVEHBCJ");
/// assert!("".parse::<RequestId>().is_err());
/// assert!("two words".parse::<RequestId>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RequestId(String);

impl TryFrom<String> for RequestId {
    type Error = InvalidRequestId;
    fn try_from(s: String) -> Result<Self, InvalidRequestId> {
        s.parse()
    }
}

impl From<RequestId> for String {
    fn from(id: RequestId) -> String {
        id.0
    }
}

/// Longest request id, in bytes.
const REQUEST_ID_MAX: usize = 64;

impl RequestId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A string that is not a [`RequestId`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRequestId;

impl fmt::Display for InvalidRequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a request id is 1 to {REQUEST_ID_MAX} visible ASCII characters"
        )
    }
}

impl std::error::Error for InvalidRequestId {}

impl FromStr for RequestId {
    type Err = InvalidRequestId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok =
            !s.is_empty() && s.len() <= REQUEST_ID_MAX && s.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidRequestId)
        }
    }
}

/// The acting [`Principal`] of a management call and, when a face serves requests, the id of
/// the request. Every management method of [`crate::Keyward`] takes `&impl Acts`, so a
/// `&Principal` is enough; a face passes an `&Acting`:
///
/// ```
/// use keyward::{Acting, Config, Keyward, Principal};
/// let kw = Keyward::open(Config::memory()).unwrap();
/// kw.authorize(&Principal::LocalOperator, keyward::Right::Read).unwrap();
/// let acting = Acting::from(Principal::LocalOperator)
///     .with_request_id("req_1".parse().unwrap());
/// kw.authorize(&acting, keyward::Right::Read).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Acting {
    /// Who acts.
    pub principal: Principal,
    /// The request the call serves, if a face gave one.
    pub request_id: Option<RequestId>,
}

impl Acting {
    /// Sets the request id.
    pub fn with_request_id(mut self, request_id: RequestId) -> Self {
        self.request_id = Some(request_id);
        self
    }
}

impl From<Principal> for Acting {
    fn from(principal: Principal) -> Self {
        Self {
            principal,
            request_id: None,
        }
    }
}

/// Who acts on a management call: a [`Principal`] (no request id) or an [`Acting`].
pub trait Acts {
    /// The principal and request id.
    fn acting(&self) -> Acting;
}

impl Acts for Principal {
    fn acting(&self) -> Acting {
        Acting::from(self.clone())
    }
}

impl Acts for Acting {
    fn acting(&self) -> Acting {
        self.clone()
    }
}
