//! The HTTP side of `riskstream enforce`: decisions, the nginx
//! `auth_request` endpoint, the held record of a session, metrics, health
//! and readiness.
//!
//! Status codes, chosen so that nginx's `auth_request` (which passes on
//! only 2xx, 401 and 403) can act on them: `allow` 200, `step_up` 401 with
//! a `WWW-Authenticate` challenge, `deny` 403. Until the risk topic has
//! been read up to the high watermarks taken at start, the decision
//! endpoints answer 503 (nginx turns that into a 500: fail closed).

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use riskstream_schemas::{Decision, Sensitivity};
use serde::Deserialize;
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::EnforceError;
use super::metrics::EnforceMetrics;
use super::table::{Decider, Request, SessionTable, Verdict, challenge};

/// `X-Riskstream-Decision`: `allow`, `step_up` or `deny`, on every answer
/// (nginx: `auth_request_set $decision $upstream_http_x_riskstream_decision`).
pub const DECISION_HEADER: &str = "x-riskstream-decision";
/// `X-Riskstream-Reasons`: the signal codes, comma separated.
pub const REASONS_HEADER: &str = "x-riskstream-reasons";
/// `X-Riskstream-Step-Up`: the step-up method, on `step_up` answers.
pub const STEP_UP_HEADER: &str = "x-riskstream-step-up";

#[derive(Clone)]
struct AppState {
    decider: Arc<Decider>,
    table: Arc<RwLock<SessionTable>>,
    metrics: Arc<EnforceMetrics>,
    registry: Arc<prometheus_client::registry::Registry>,
}

/// The running HTTP server: an accept loop on the calling runtime, which
/// deals the connections in turn to itself and to `threads - 1` threads
/// of their own, each with a single-threaded runtime. A connection stays
/// on the thread it was given, so a request wakes one thread only.
pub(crate) struct HttpServer {
    accept: JoinHandle<()>,
    /// Dropping these ends the other threads' runtimes.
    stops: Vec<oneshot::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl HttpServer {
    /// Stops accepting and ends the other threads (with their
    /// connections); the calling runtime's connections end with it.
    pub(crate) fn stop(self) {
        self.accept.abort();
        drop(self.stops);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Binds `addr` and serves in the background on the current
/// (single-threaded) runtime and `threads - 1` more.
pub(crate) async fn serve(
    addr: SocketAddr,
    threads: usize,
    decider: Arc<Decider>,
    table: Arc<RwLock<SessionTable>>,
    metrics: Arc<EnforceMetrics>,
) -> Result<HttpServer, EnforceError> {
    let state = AppState {
        registry: Arc::new(metrics.registry()),
        decider,
        table,
        metrics,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| EnforceError::Http { addr, source })?;
    let local = listener.local_addr().unwrap_or(addr);
    let mut runtimes = vec![Handle::current()];
    let mut stops = Vec::new();
    let mut joins = Vec::new();
    for i in 1..threads {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| EnforceError::Http { addr, source })?;
        runtimes.push(runtime.handle().clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let join = std::thread::Builder::new()
            .name(format!("enforce-http-{i}"))
            .spawn(move || {
                // The connections given to this runtime run while it
                // waits here.
                let _ = runtime.block_on(stopped);
            })
            .map_err(|source| EnforceError::Http { addr, source })?;
        stops.push(stop);
        joins.push(join);
    }
    tracing::info!(addr = %local, threads, "http listening");
    let accept = tokio::spawn(accept(listener, router(state), runtimes));
    Ok(HttpServer {
        accept,
        stops,
        threads: joins,
    })
}

/// Accepts connections and gives them to `runtimes` in turn.
async fn accept(listener: tokio::net::TcpListener, app: Router, runtimes: Vec<Handle>) {
    for n in 0usize.. {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // As axum::serve: a connection that failed before it was
                // accepted is its client's problem; anything else (out of
                // file descriptors) gets a pause.
                if !matches!(
                    error.kind(),
                    ErrorKind::ConnectionRefused
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::ConnectionReset
                ) {
                    tracing::error!(%error, "accept failed: retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                continue;
            }
        };
        // Answers are one write each, but Nagle's algorithm would still
        // hold one back while the previous one is unacknowledged.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY refused");
        }
        // A tokio socket belongs to the runtime that registered it: hand
        // the plain socket over and register it again there.
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(error) => {
                tracing::warn!(%error, "accepted connection dropped");
                continue;
            }
        };
        let app = app.clone();
        runtimes[n % runtimes.len()].spawn(async move {
            match tokio::net::TcpStream::from_std(stream) {
                Ok(stream) => connection(stream, app).await,
                Err(error) => tracing::warn!(%error, "accepted connection dropped"),
            }
        });
    }
}

/// Serves HTTP/1.1 on one connection until the client closes it.
async fn connection(stream: tokio::net::TcpStream, app: Router) {
    let service = hyper_util::service::TowerToHyperService::new(app);
    if let Err(error) = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(%error, "connection ended with an error");
    }
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/decide", post(decide))
        .route("/v1/authz", get(authz))
        .route("/v1/sessions/{session}", get(session))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// The body of `POST /v1/decide`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideBody {
    session: Option<String>,
    action: Option<String>,
    sensitivity: Option<Sensitivity>,
    tenant: Option<String>,
}

/// The body as `axum::Json` reads it, with its answer to a body it
/// refuses (415, 400 or 422), but without its cost in the usual case:
/// with `Content-Type: application/json` exactly, a body that reads is
/// parsed directly. On every request axum parses the media type and
/// wraps the parser to track the path into the body for its error
/// message (callgrind: about 3,000 of a decision's 37,000 instructions),
/// so it only handles the rest.
async fn decide_body(request: axum::extract::Request) -> Result<DecideBody, Response> {
    let plain_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/json");
    if !plain_json {
        return axum::Json::<DecideBody>::from_request(request, &())
            .await
            .map(|axum::Json(body)| body)
            .map_err(IntoResponse::into_response);
    }
    let bytes = Bytes::from_request(request, &())
        .await
        .map_err(IntoResponse::into_response)?;
    match serde_json::from_slice(&bytes) {
        Ok(body) => Ok(body),
        Err(_) => axum::Json::<DecideBody>::from_bytes(&bytes)
            .map(|axum::Json(body)| body)
            .map_err(IntoResponse::into_response),
    }
}

async fn decide(State(s): State<AppState>, request: axum::extract::Request) -> Response {
    let body = match decide_body(request).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    answer(
        &s,
        &Request {
            session: body.session,
            action: body.action,
            sensitivity: body.sensitivity,
            tenant: body.tenant,
            path: None,
        },
    )
}

fn header_str(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

async fn authz(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let c = s.decider.requests();
    let session = header_str(&headers, &c.session_header).or_else(|| {
        c.session_cookie
            .as_deref()
            .and_then(|name| cookie(&headers, name))
    });
    let request = Request {
        session,
        action: header_str(&headers, &c.action_header),
        sensitivity: None,
        tenant: c
            .tenant_header
            .as_ref()
            .and_then(|h| header_str(&headers, h)),
        path: header_str(&headers, &c.uri_header),
    };
    answer(&s, &request)
}

fn answer(s: &AppState, request: &Request) -> Response {
    if !s.metrics.is_ready() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"error": "not caught up with the risk topic yet"})),
        )
            .into_response();
    }
    let verdict = match s.table.read() {
        Ok(t) => s.decider.decide(&t, request),
        Err(_) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "session table poisoned\n",
            )
                .into_response();
        }
    };
    s.metrics
        .decided(verdict.class, verdict.decision, verdict.known);
    respond(&verdict)
}

/// The HTTP form of a verdict: status, headers and the verdict as JSON.
fn respond(v: &Verdict) -> Response {
    let status = match v.decision {
        Decision::Allow => StatusCode::OK,
        Decision::StepUp => StatusCode::UNAUTHORIZED,
        Decision::Deny => StatusCode::FORBIDDEN,
    };
    let mut response = (status, axum::Json(v)).into_response();
    let h = response.headers_mut();
    h.insert(
        HeaderName::from_static(DECISION_HEADER),
        HeaderValue::from_static(v.decision.as_str()),
    );
    if let Ok(reasons) = HeaderValue::from_str(&v.reasons.join(",")) {
        h.insert(HeaderName::from_static(REASONS_HEADER), reasons);
    }
    if let Some(step_up) = &v.step_up {
        if let Ok(c) = HeaderValue::from_str(&challenge(step_up)) {
            h.insert(header::WWW_AUTHENTICATE, c);
        }
        let method = match step_up.method {
            riskstream_schemas::StepUpMethod::Mfa => "mfa",
            riskstream_schemas::StepUpMethod::JitCredential => "jit_credential",
            riskstream_schemas::StepUpMethod::Approval => "approval",
        };
        h.insert(
            HeaderName::from_static(STEP_UP_HEADER),
            HeaderValue::from_static(method),
        );
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn session(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let held = s.table.read().ok().and_then(|t| t.get(&id).cloned());
    match held {
        Some(held) => axum::Json(held).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"error": "no record of this session"})),
        )
            .into_response(),
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    crate::openmetrics::response(&s.registry)
}

async fn readyz(State(s): State<AppState>) -> Response {
    let m = &s.metrics;
    let sessions = s.table.read().map_or(0, |t| t.len());
    let body = serde_json::json!({
        "ready": m.is_ready(),
        "caught_up": m.is_ready(),
        "broker_up": m.broker_up.load(std::sync::atomic::Ordering::Relaxed),
        "sessions": sessions,
    });
    let status = if m.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}
