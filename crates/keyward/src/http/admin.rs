//! Whole-store operations for operators: `GET /admin/export`.
//!
//! While `keyward serve` runs, the embedded store is locked by the service, so the command
//! line cannot export it; this endpoint streams the same bytes as `keyward export`.

use std::io::{self, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body::Frame;
use tokio::sync::mpsc;

use super::api::{AppState, READ};
use super::auth::authenticate;
use super::problem::{Problem, ProblemBody};

/// Bytes handed to the response at a time.
const CHUNK: usize = 64 * 1024;
/// Chunks buffered between the export and the connection (bounds the memory of one export).
const CHUNKS_IN_FLIGHT: usize = 4;

/// The media type of an export: JSON Lines.
const JSONL: &str = "application/jsonl";

/// Export every API key of every account (digests and lookup tags, never a key) in the
/// keyward export format (`docs/export-format.md`), as `keyward export` does. Import it with
/// `keyward import`.
#[utoipa::path(
    get, path = "/admin/export", tag = "admin",
    responses(
        (status = 200, description = "The export, streamed: a header line, one line per key, a trailer line", content_type = "application/jsonl"),
        (status = 401, description = "Missing or invalid API key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator key with `api-key:read` and `api-key:admin`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 500, description = "The store could not be read", body = ProblemBody, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["api-key:read", "api-key:admin"]), ("bearer" = ["api-key:read", "api-key:admin"]))
)]
pub(crate) async fn export(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let caller = authenticate(&st.kw, &headers, READ)?;
    st.kw
        .authorize_export(&caller.principal)
        .map_err(Problem::from_engine)?;
    let (tx, mut rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let kw = st.kw.clone();
    let principal = caller.principal;
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        };
        if let Err(e) = kw.export(&principal, &mut out) {
            // Aborts the response: the client sees a body cut short, without its trailer,
            // which an import refuses. (Nothing is left to receive it if the client left.)
            let _ = out.tx.blocking_send(Err(io::Error::other(e.to_string())));
        }
    });
    // Wait for the first chunk, so that an export failing at once is an error status rather
    // than an empty 200.
    let first = match rx.recv().await {
        Some(Ok(bytes)) => bytes,
        Some(Err(_)) | None => {
            return Err(Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage_error",
                "the key store could not be exported",
            ));
        }
    };
    let body = Body::new(ChannelBody {
        first: Some(first),
        rx,
    });
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(JSONL)),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"keyward-export.jsonl\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// A writer that hands full chunks to the response (from a blocking thread).
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// The response body: the chunks of [`ChannelWriter`], then the end (or an error, which
/// aborts the response).
struct ChannelBody {
    first: Option<Bytes>,
    rx: mpsc::Receiver<io::Result<Bytes>>,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        this.rx
            .poll_recv(cx)
            .map(|item| item.map(|chunk| chunk.map(Frame::data)))
    }
}
