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

#[derive(Clone)]
struct AppState {
    node: NodeHandle,
    metrics: Arc<Metrics>,
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
    Router::new()
        .route("/v1/tx", post(submit))
        .route("/v1/tx/{hash}", get(tx_status))
        .route("/v1/status", get(status))
        .route("/v1/objects/{id}", get(object))
        .route("/v1/state", get(state_text))
        .route("/v1/snapshots", get(snapshots))
        .route("/metrics", get(metrics_text))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(AppState { node, metrics })
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

async fn snapshots(State(s): State<AppState>) -> Response {
    match s.node.snapshots().await {
        Ok(list) => Json(list).into_response(),
        Err(_) => stopped(),
    }
}

async fn state_text(State(s): State<AppState>) -> Response {
    match s.node.dump_state().await {
        Err(_) => stopped(),
        Ok(Ok(text)) => {
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
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
