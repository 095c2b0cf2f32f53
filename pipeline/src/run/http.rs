//! The HTTP side of `riskstream run`: metrics, health, readiness and the
//! latest record per session.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::task::JoinHandle;

use super::metrics::Metrics;
use super::{RunError, SessionCache};

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    registry: Arc<prometheus_client::registry::Registry>,
    sessions: SessionCache,
}

/// Binds `addr` and serves in the background.
pub(crate) async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    sessions: SessionCache,
) -> Result<JoinHandle<()>, RunError> {
    let state = AppState {
        registry: Arc::new(metrics.registry()),
        metrics,
        sessions,
    };
    let app = router(state);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Http { addr, source })?;
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(addr = %local, "http listening");
    Ok(tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "http server stopped");
        }
    }))
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/v1/sessions/{session}", get(session))
        .with_state(state)
}

async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        Metrics::encode(&s.registry),
    )
        .into_response()
}

async fn readyz(State(s): State<AppState>) -> Response {
    let m = &s.metrics;
    let body = serde_json::json!({
        "ready": m.is_ready(),
        "started": m.started.load(Ordering::Relaxed),
        "broker_up": m.broker_up.load(Ordering::Relaxed),
        "partitions_assigned": m.assigned.load(Ordering::Relaxed),
    });
    let status = if m.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn session(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match s.sessions.get(&id) {
        Some(held) => {
            ([(header::CONTENT_TYPE, "application/json")], held.1.clone()).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"error": "no record of this session on this instance"})),
        )
            .into_response(),
    }
}
