//! The tower gateway layer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::header::InvalidHeaderName;
use axum::http::{HeaderName, Request};
use axum::response::{IntoResponse, Response};
use keyward_core::{Environment, Permission};
use tower::{Layer, Service};

use super::auth::{API_KEY_HEADER, presented_key};
use super::problem::{Problem, instance_of, new_request_id};
use crate::{Keyward, VerifyError};

#[derive(Clone)]
struct Settings {
    keyward: Keyward,
    header: HeaderName,
    environment: Option<Environment>,
    permission: Option<Permission>,
}

/// A tower [`Layer`] that lets through only requests carrying a valid key.
///
/// The key is read from the configured header (default `X-API-KEY`) or from
/// `Authorization: Bearer <key>`, verified on the hot index (no I/O), and optionally required
/// to belong to an environment and to hold a permission. A request that passes carries the
/// [`Verified`](crate::Verified) identity in its extensions (axum:
/// `Extension<keyward::Verified>`). Others are answered by the layer itself with an RFC 9457
/// problem: 401 for a missing or invalid key, 403 for a key of another environment or
/// without the required permission.
///
/// ```no_run
/// use axum::{Extension, Router, routing::get};
/// use keyward::{Config, Keyward, Verified, http::KeywardLayer};
///
/// let kw = Keyward::open(Config::memory()).unwrap();
/// let app: Router = Router::new()
///     .route("/payments", get(|Extension(who): Extension<Verified>| async move {
///         format!("hello {}", who.account())
///     }))
///     .layer(KeywardLayer::new(kw).require("payment:read".parse().unwrap()));
/// ```
#[derive(Clone)]
pub struct KeywardLayer {
    settings: Arc<Settings>,
}

impl std::fmt::Debug for KeywardLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeywardLayer")
            .field("header", &self.settings.header)
            .field("environment", &self.settings.environment)
            .field("permission", &self.settings.permission)
            .finish_non_exhaustive()
    }
}

impl KeywardLayer {
    /// A layer verifying keys with `keyward`, read from `X-API-KEY` (or a bearer token).
    pub fn new(keyward: Keyward) -> Self {
        Self {
            settings: Arc::new(Settings {
                keyward,
                header: API_KEY_HEADER,
                environment: None,
                permission: None,
            }),
        }
    }

    fn with(self, change: impl FnOnce(&mut Settings)) -> Self {
        let mut s = Arc::unwrap_or_clone(self.settings);
        change(&mut s);
        Self {
            settings: Arc::new(s),
        }
    }

    /// Reads the key from `name` instead of `X-API-KEY` (a bearer token is still accepted).
    ///
    /// # Panics
    ///
    /// If `name` is not a valid header name, like `HeaderName::from_static`. For a name chosen
    /// at run time use [`KeywardLayer::try_header`].
    pub fn header(self, name: &'static str) -> Self {
        match self.try_header(name) {
            Ok(layer) => layer,
            Err(_) => panic!("invalid header name {name:?}"),
        }
    }

    /// Reads the key from `name` instead of `X-API-KEY`, if it is a valid header name.
    pub fn try_header(self, name: impl AsRef<str>) -> Result<Self, InvalidHeaderName> {
        let header = HeaderName::try_from(name.as_ref())?;
        Ok(self.with(|s| s.header = header))
    }

    /// Requires keys of `environment` (others are answered 403).
    pub fn environment(self, environment: Environment) -> Self {
        self.with(|s| s.environment = Some(environment))
    }

    /// Requires keys holding `permission` (others are answered 403).
    pub fn require(self, permission: Permission) -> Self {
        self.with(|s| s.permission = Some(permission))
    }
}

impl Settings {
    fn check(&self, headers: &axum::http::HeaderMap) -> Result<crate::Verified, Problem> {
        let key = presented_key(headers, &self.header).ok_or_else(Problem::missing_key)?;
        self.keyward
            .verify_for(key, self.environment.as_ref(), self.permission.as_ref())
            .map_err(|e| match e {
                VerifyError::WrongEnvironment => Problem::forbidden(
                    "wrong_environment",
                    "this key belongs to another environment",
                ),
                VerifyError::MissingPermission => Problem::forbidden(
                    "missing_permission",
                    match &self.permission {
                        Some(p) => format!("this key lacks the `{p}` permission"),
                        None => "this key lacks the required permission".to_owned(),
                    },
                ),
                _ => Problem::invalid_key(),
            })
    }
}

impl<S> Layer<S> for KeywardLayer {
    type Service = KeywardService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        KeywardService {
            inner,
            settings: Arc::clone(&self.settings),
        }
    }
}

/// The service made by [`KeywardLayer`].
#[derive(Clone)]
pub struct KeywardService<S> {
    inner: S,
    settings: Arc<Settings>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for KeywardService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeywardService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for KeywardService<S>
where
    S: Service<Request<B>>,
    S::Response: IntoResponse,
{
    type Response = Response;
    type Error = S::Error;
    type Future = KeywardFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        match self.settings.check(req.headers()) {
            Ok(verified) => {
                req.extensions_mut().insert(verified);
                KeywardFuture {
                    state: FutureState::Inner(Box::pin(self.inner.call(req))),
                }
            }
            Err(problem) => {
                let resp = problem.render(&instance_of(req.uri().path()), &new_request_id());
                KeywardFuture {
                    state: FutureState::Refused(Some(resp)),
                }
            }
        }
    }
}

/// The future of [`KeywardService`].
pub struct KeywardFuture<F> {
    state: FutureState<F>,
}

enum FutureState<F> {
    Inner(Pin<Box<F>>),
    Refused(Option<Response>),
}

impl<F> std::fmt::Debug for KeywardFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeywardFuture")
    }
}

impl<F, R, E> Future for KeywardFuture<F>
where
    F: Future<Output = Result<R, E>>,
    R: IntoResponse,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().state {
            FutureState::Inner(fut) => fut.as_mut().poll(cx).map_ok(IntoResponse::into_response),
            FutureState::Refused(resp) => Poll::Ready(Ok(resp
                .take()
                .unwrap_or_else(|| Problem::internal().render("", "")))),
        }
    }
}
