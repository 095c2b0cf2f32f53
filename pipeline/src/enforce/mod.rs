//! `riskstream enforce`: a standalone enforcement point. It reads the
//! compacted `session-risk` topic into a table of the latest record per
//! session and answers, over HTTP, whether a session may perform an
//! action: `allow`, `step_up` (with an RFC 9470 challenge) or `deny`.
//!
//! # Layout
//!
//! - [`config`]: the TOML configuration, `RISKSTREAM_ENFORCE_*` variables
//!   and flags;
//! - [`table`]: the session table and the decision (no I/O, no clock);
//! - `kafka`: the consumer thread, every partition from the beginning;
//! - [`metrics`]: counters for `/metrics`;
//! - `http`: `POST /v1/decide`, the nginx `auth_request` endpoint
//!   `GET /v1/authz`, `GET /v1/sessions/{session}`, `/metrics`,
//!   `/healthz`, `/readyz`.
//!
//! `docs/ENFORCE.md` describes the service, its nginx wiring and its
//! fail-closed semantics.

pub mod config;
mod http;
mod kafka;
pub mod metrics;
pub mod table;

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};

use riskstream_detectors::{Policy, PolicyError};

pub use config::{EnforceConfig, Overrides, RawEnforceConfig};
pub use http::{DECISION_HEADER, REASONS_HEADER, STEP_UP_HEADER};
pub use metrics::EnforceMetrics;
pub use table::{Decider, Request, SessionTable, Verdict};

/// Why the enforcement point stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum EnforceError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The policy file does not read.
    #[error("policy {path}: {source}")]
    PolicyRead {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The policy does not validate.
    #[error("policy {path}: {source}")]
    Policy {
        /// The file, or `default`.
        path: String,
        /// Why.
        source: Box<PolicyError>,
    },
    /// A Kafka client failed in a way retrying does not fix.
    #[error("kafka: {0}")]
    Kafka(String),
    /// The HTTP listener.
    #[error("http {addr}: {source}")]
    Http {
        /// The listen address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Loads the configured policy, or the built-in default.
pub fn load_policy(path: Option<&std::path::Path>) -> Result<Policy, EnforceError> {
    match path {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|source| EnforceError::PolicyRead {
                    path: path.to_owned(),
                    source,
                })?;
            Policy::from_toml_str(&text).map_err(|source| EnforceError::Policy {
                path: path.display().to_string(),
                source: Box::new(source),
            })
        }
        None => Policy::default_policy().map_err(|source| EnforceError::Policy {
            path: "default".to_owned(),
            source: Box::new(source),
        }),
    }
}

/// Serves until `shutdown` completes.
pub async fn enforce(
    config: EnforceConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), EnforceError> {
    let policy = load_policy(config.policy.as_deref())?;
    let decider = Arc::new(Decider::new(policy, config.requests.clone()));
    let table = Arc::new(RwLock::new(SessionTable::new()));
    let metrics = EnforceMetrics::new();
    let stop = Arc::new(AtomicBool::new(false));

    let http = http::serve(
        config.http,
        config.http_threads,
        decider,
        Arc::clone(&table),
        Arc::clone(&metrics),
    )
    .await?;
    let worker = {
        let (stop, metrics) = (Arc::clone(&stop), Arc::clone(&metrics));
        tokio::task::spawn_blocking(move || kafka::consume(&config, &table, &metrics, &stop))
    };
    let result = crate::shutdown::join_on_shutdown(worker, &stop, shutdown).await;
    http.stop();
    result.map_err(|e| EnforceError::Kafka(format!("consumer thread: {e}")))?
}
