//! The HTTP API (axum).
//!
//! | method | path | answer |
//! |---|---|---|
//! | POST | `/v1/tx` | body `{"tx": "<hex of the borsh-encoded signed transaction>"}` → `{"hash": "…"}` |
//! | GET | `/v1/status` | mode, phase, rounds, peers, chain id (JSON) |
//! | GET | `/v1/objects/{id}` | the object (JSON) or 404 |
//! | GET | `/v1/tx/{hash}` | `{"status": "pending" \| "committed" \| "failed" \| "unknown", …}` |
//! | GET | `/v1/state` | the committed state as `--dump-state` text |
//! | GET | `/v1/snapshots` | the servable snapshots: round, manifest root, sizes |
//! | GET | `/v1/validators` | the set at the highest round: epoch, quorum, members (key, address, weight, anchor duty), pending registrations, validators off anchor duty; 503 before the node has a chain |
//! | GET | `/metrics` | Prometheus text format |
//!
//! Errors are JSON `{"error": "…"}` with a 4xx status for bad input and 503
//! when the node has stopped.

use crate::event_loop::NodeHandle;
use crate::metrics::Metrics;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bluepods_core::node::produce_api::SubmitError;
use bluepods_core::{Hash, ObjectId, Transaction};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Largest request body accepted (a transaction is far smaller).
const MAX_BODY_BYTES: usize = 256 * 1024;

/// Requests handled at once; one more is answered 503 at once. Each one
/// waits on the node's event loop, which must keep time for its peers.
const MAX_CONCURRENT_REQUESTS: usize = 64;

/// Longest a request may take to produce its answer (a streamed state dump
/// counts until its first byte): past it, 503.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Clone)]
struct AppState {
    node: NodeHandle,
    metrics: Arc<Metrics>,
    /// Permits for streaming state dumps.
    dumps: Arc<tokio::sync::Semaphore>,
    /// Permits for requests in progress.
    requests: Arc<tokio::sync::Semaphore>,
}

/// Bounds every request: how many at once, and how long each may take.
async fn limits(
    State(s): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Ok(_permit) = s.requests.clone().try_acquire_owned() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "too many requests at once");
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(response) => response,
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "the request timed out"),
    }
}

/// The body of `POST /v1/tx`.
#[derive(Serialize, Deserialize)]
pub struct SubmitRequest {
    /// Hex of the borsh encoding of a signed `Transaction`.
    pub tx: String,
}

/// The answer to `POST /v1/tx`.
#[derive(Serialize, Deserialize)]
pub struct SubmitResponse {
    /// The transaction hash.
    pub hash: Hash,
}

fn error(status: StatusCode, msg: impl std::fmt::Display) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": msg.to_string() })),
    )
        .into_response()
}

fn stopped() -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "the node has stopped")
}

/// The API router.
pub fn router(node: NodeHandle, metrics: Arc<Metrics>) -> Router {
    let state = AppState {
        node,
        metrics,
        dumps: Arc::new(tokio::sync::Semaphore::new(MAX_STATE_DUMPS)),
        requests: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_REQUESTS)),
    };
    Router::new()
        .route("/v1/tx", post(submit))
        .route("/v1/tx/{hash}", get(tx_status))
        .route("/v1/status", get(status))
        .route("/v1/objects/{id}", get(object))
        .route("/v1/state", get(state_text))
        .route("/v1/snapshots", get(snapshots))
        .route("/v1/validators", get(validators))
        .route("/metrics", get(metrics_text))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(state.clone(), limits))
        .with_state(state)
}

async fn submit(
    State(s): State<AppState>,
    body: Result<Json<SubmitRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(req)) = body else {
        return error(StatusCode::BAD_REQUEST, "expected JSON {\"tx\": \"<hex>\"}");
    };
    let Ok(bytes) = hex::decode(req.tx.trim()) else {
        return error(StatusCode::BAD_REQUEST, "tx is not hex");
    };
    let tx: Transaction = match borsh::from_slice(&bytes) {
        Ok(tx) => tx,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("tx does not decode: {e}")),
    };
    match s.node.submit(tx).await {
        Err(_) => stopped(),
        Ok(Ok(hash)) => Json(SubmitResponse { hash }).into_response(),
        Ok(Err(e)) => {
            let status = match e {
                SubmitError::Duplicate | SubmitError::AlreadyExecuted => StatusCode::CONFLICT,
                SubmitError::Full | SubmitError::NoValidator | SubmitError::NoChain => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                SubmitError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
                SubmitError::Invalid(_) | SubmitError::Expired { .. } => StatusCode::BAD_REQUEST,
            };
            error(status, e)
        }
    }
}

async fn tx_status(State(s): State<AppState>, Path(hash): Path<String>) -> Response {
    let Ok(hash) = Hash::from_hex(&hash) else {
        return error(StatusCode::BAD_REQUEST, "hash must be 64 hex characters");
    };
    match s.node.tx_status(hash).await {
        Err(_) => stopped(),
        Ok(Ok(st)) => Json(st).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn status(State(s): State<AppState>) -> Response {
    match s.node.status().await {
        Ok(st) => Json(st).into_response(),
        Err(_) => stopped(),
    }
}

async fn object(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(id) = ObjectId::from_hex(&id) else {
        return error(
            StatusCode::BAD_REQUEST,
            "object id must be 64 hex characters",
        );
    };
    match s.node.object(id).await {
        Err(_) => stopped(),
        Ok(Ok(Some(o))) => Json(o).into_response(),
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, "no such object"),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn validators(State(s): State<AppState>) -> Response {
    match s.node.validators().await {
        Ok(Some(v)) => Json(v).into_response(),
        Ok(None) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no chain yet: the node has not adopted a genesis",
        ),
        Err(_) => stopped(),
    }
}

async fn snapshots(State(s): State<AppState>) -> Response {
    match s.node.snapshots().await {
        Ok(list) => Json(list).into_response(),
        Err(_) => stopped(),
    }
}

/// Streams the committed state: the node hands over a consistent view in
/// one step, and a blocking task writes the text from it into the response
/// as the client reads (bounded: `DUMP_CHUNKS_QUEUED` pieces of
/// `DUMP_CHUNK_BYTES`). A client that goes away stops the writer.
async fn state_text(State(s): State<AppState>) -> Response {
    let Ok(permit) = s.dumps.clone().try_acquire_owned() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many state dumps at once; try again later",
        );
    };
    let dump = match s.node.dump_state().await {
        Err(_) => return stopped(),
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
        Ok(Ok(dump)) => dump,
    };
    let (tx, rx) = tokio::sync::mpsc::channel(DUMP_CHUNKS_QUEUED);
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut out = ChunkWriter {
            tx,
            buf: Vec::with_capacity(DUMP_CHUNK_BYTES),
        };
        let written = bluepods_core::snapshot::dump_view(&dump, &mut out)
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|()| std::io::Write::flush(&mut out));
        if let Err(e) = written {
            tracing::debug!("[HTTP] state dump ended early: {e}");
        }
    });
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        axum::body::Body::from_stream(Chunks(rx)),
    )
        .into_response()
}

/// Bytes of one piece of a streamed state dump.
const DUMP_CHUNK_BYTES: usize = 64 * 1024;

/// Pieces written ahead of the client.
const DUMP_CHUNKS_QUEUED: usize = 16;

/// State dumps streaming at once.
const MAX_STATE_DUMPS: usize = 2;

/// A `Write` that hands full pieces to the response stream.
struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<axum::body::Bytes>>,
    buf: Vec<u8>,
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= DUMP_CHUNK_BYTES {
            self.flush()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = axum::body::Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(Ok(piece))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

/// The receiving end as a body stream.
struct Chunks(tokio::sync::mpsc::Receiver<std::io::Result<axum::body::Bytes>>);

impl futures_core::Stream for Chunks {
    type Item = std::io::Result<axum::body::Bytes>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

async fn metrics_text(State(s): State<AppState>) -> Response {
    if let Ok(st) = s.node.status().await {
        s.metrics.update(&st);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

/// Serves the API on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, app: Router) {
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!("[HTTP] server stopped: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_loop::Command;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Postmortem: `GET /v1/state` built the whole text on the event loop
    /// and sent it as one body: a state of 10 M objects (about 2 GB of
    /// text) paused the node for the whole build and sat in memory whole.
    /// Now the loop hands over a view, and the text streams from it.
    #[tokio::test]
    async fn the_state_dump_streams_from_a_view_taken_in_one_step() {
        let (mut genesis, _) = bluepods_core::harness::test_genesis(1, Default::default());
        genesis.synthetic_objects = 20_000;
        let mut store = bluepods_core::MemStore::new();
        bluepods_core::init_chain(&mut store, &genesis).unwrap();
        let mut expected = Vec::new();
        bluepods_core::snapshot::dump_state(&store, &mut expected).unwrap();
        // The "event loop": answers the one command with a view.
        let (tx, mut commands) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            while let Some(cmd) = commands.recv().await {
                if let Command::DumpState(reply) = cmd {
                    let dump = bluepods_core::snapshot::StateDump::of(&store);
                    let _ = reply.send(dump.map_err(|e| e.to_string()));
                }
            }
        });
        let app = router(NodeHandle::over(tx), Arc::new(Metrics::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, app));
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET /v1/state HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("transfer-encoding: chunked"),
            "streamed, not sent as one body: {head}"
        );
        // De-chunk: size line, bytes, CRLF.
        let mut rest = body.as_bytes();
        let mut got = Vec::new();
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16).unwrap();
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            got.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        assert!(got.len() > 4 * DUMP_CHUNK_BYTES, "several pieces");
        assert_eq!(got, expected);
    }
}
