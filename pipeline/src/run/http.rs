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

use super::config::CaepConfig;
use super::metrics::Metrics;
use super::{RunError, SessionCache};

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    registry: Arc<prometheus_client::registry::Registry>,
    sessions: SessionCache,
    /// The SSF transmitter metadata and the JWK set, when CAEP is on.
    ssf: Option<Arc<Ssf>>,
}

/// What `/.well-known/ssf-configuration` and `/jwks.json` serve.
struct Ssf {
    configuration: serde_json::Value,
    jwks: serde_json::Value,
}

impl Ssf {
    /// SSF 1.0 transmitter configuration metadata (section 7.1). The tokens
    /// are delivered on a Kafka topic, which neither RFC 8935 (push) nor
    /// RFC 8936 (poll) describes: `delivery_methods_supported` names it with
    /// a riskstream URN and `riskstream_kafka_topic` says which topic.
    fn new(caep: &CaepConfig, topic: &str) -> Ssf {
        let issuer = caep.signer.issuer().trim_end_matches('/');
        Ssf {
            configuration: serde_json::json!({
                "spec_version": "1_0",
                "issuer": caep.signer.issuer(),
                "jwks_uri": format!("{issuer}/jwks.json"),
                "delivery_methods_supported": [KAFKA_DELIVERY],
                "default_subjects": "ALL",
                "riskstream_kafka_topic": topic,
                "riskstream_events_supported": [
                    crate::caep::RISK_LEVEL_CHANGE,
                    crate::caep::ASSURANCE_LEVEL_CHANGE,
                    crate::caep::SESSION_REVOKED,
                ],
            }),
            jwks: serde_json::to_value(&*caep.jwks).unwrap_or_default(),
        }
    }
}

/// The delivery method of tokens written to a Kafka topic.
pub const KAFKA_DELIVERY: &str = "urn:riskstream:ssf:delivery:kafka";

/// Binds `addr` and serves in the background.
pub(crate) async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    sessions: SessionCache,
    caep: Option<(&CaepConfig, &str)>,
) -> Result<JoinHandle<()>, RunError> {
    let state = AppState {
        registry: Arc::new(metrics.registry()),
        metrics,
        sessions,
        ssf: caep.map(|(c, topic)| Arc::new(Ssf::new(c, topic))),
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
        .route("/.well-known/ssf-configuration", get(ssf_configuration))
        .route("/jwks.json", get(jwks))
        .with_state(state)
}

async fn ssf_configuration(State(s): State<AppState>) -> Response {
    match &s.ssf {
        Some(ssf) => axum::Json(ssf.configuration.clone()).into_response(),
        None => not_a_transmitter(),
    }
}

async fn jwks(State(s): State<AppState>) -> Response {
    match &s.ssf {
        Some(ssf) => (
            [(header::CONTENT_TYPE, "application/jwk-set+json")],
            ssf.jwks.to_string(),
        )
            .into_response(),
        None => not_a_transmitter(),
    }
}

fn not_a_transmitter() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(
            serde_json::json!({"error": "CAEP is not enabled on this instance ([caep] key)"}),
        ),
    )
        .into_response()
}

async fn metrics(State(s): State<AppState>) -> Response {
    crate::openmetrics::response(&s.registry)
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
