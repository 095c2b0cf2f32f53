//! `riskstream run`: the live pipeline on Kafka.
//!
//! # Layout
//!
//! - [`config`]: the TOML configuration, `RISKSTREAM_*` variables and flags;
//! - `topics`: topic creation and the co-partitioning check at start;
//! - `task`: one partition's engine, cross-topic event-time ordering and
//!   changelog records (no Kafka);
//! - `kafka`: the consumer loop, rebalances, checkpoints and at-least-once
//!   delivery;
//! - [`metrics`]: counters and latency histograms for `/metrics`;
//! - `http`: `/metrics`, `/healthz`, `/readyz`, `/v1/sessions/{session}`.
//!
//! # Delivery
//!
//! An input offset is committed only after the risk records, dead letters
//! and changelog records it caused are acknowledged by the broker. A crash
//! therefore reprocesses from the last commit with the state the changelog
//! holds, which is at least as new as that commit; events the state already
//! holds are re-emitted with their first record (the engine remembers
//! recent ids with their records), so a consumer sees duplicates with the
//! same `seq`, never a gap.

pub mod config;
mod http;
mod kafka;
pub mod metrics;
mod sources;
mod task;
mod topics;
mod watermarks;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use moka::sync::Cache;

pub use config::{ConfigError, Overrides, RawRunConfig, RunConfig};
pub use metrics::Metrics;
pub use topics::check_copartitioned;

/// Why the pipeline stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The policy or a GeoIP database does not load.
    #[error(transparent)]
    Engine(#[from] crate::replay::ReplayError),
    /// Topics are missing or not co-partitioned.
    #[error("topics: {0}")]
    Topics(String),
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

/// The latest risk record of each session this instance scored, for
/// `GET /v1/sessions/{session}`.
#[derive(Clone)]
pub struct SessionCache(Cache<String, Arc<(u64, Vec<u8>)>>);

impl SessionCache {
    /// Holds up to `capacity` sessions (least recently used go first).
    pub fn new(capacity: u64) -> SessionCache {
        SessionCache(Cache::new(capacity))
    }

    /// Keeps `record` unless a record with a higher `seq` is held.
    pub fn insert(&self, session: &str, seq: u64, record: Vec<u8>) {
        if let Some(held) = self.0.get(session)
            && held.0 > seq
        {
            return;
        }
        self.0.insert(session.to_owned(), Arc::new((seq, record)));
    }

    /// The latest record of `session`, as JSON.
    pub fn get(&self, session: &str) -> Option<Arc<(u64, Vec<u8>)>> {
        self.0.get(session)
    }
}

/// Runs the pipeline until `shutdown` completes, then drains, checkpoints,
/// commits and returns.
pub async fn run(config: RunConfig, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
    let config = Arc::new(config);
    let sharing = !config.raw.topics.ip_observations.is_empty();
    let engine = Arc::new(config.engine.load_with(if sharing {
        riskstream_detectors::IpObservationConfig::LIVE
    } else {
        riskstream_detectors::IpObservationConfig::REPLAY
    })?);
    let source_lookback = std::time::Duration::from_secs(u64::from(
        engine.config.policy.attack_source_lookback_seconds(),
    ));
    let metrics = Metrics::new();
    let sessions = SessionCache::new(config.session_cache);
    let stop = Arc::new(AtomicBool::new(false));

    let http = match config.http {
        Some(addr) => Some(
            http::serve(
                addr,
                Arc::clone(&metrics),
                sessions.clone(),
                config
                    .caep
                    .as_ref()
                    .map(|c| (c, config.raw.topics.caep.as_str())),
            )
            .await?,
        ),
        None => None,
    };
    let partitions = topics::ensure(&config, source_lookback).await?;
    tracing::info!(partitions, "topics ready");

    let probe = kafka::watch_brokers(&config, Arc::clone(&metrics), Arc::clone(&stop))?;
    let worker = {
        let (config, metrics, stop) =
            (Arc::clone(&config), Arc::clone(&metrics), Arc::clone(&stop));
        tokio::task::spawn_blocking(move || {
            kafka::run_loop(
                config,
                engine,
                metrics,
                sessions,
                stop,
                partitions as i32,
                source_lookback,
            )
        })
    };
    let result = crate::shutdown::join_on_shutdown(worker, &stop, shutdown).await;
    stop.store(true, Ordering::Relaxed);
    if let Some(h) = http {
        h.abort();
    }
    let _ = tokio::task::spawn_blocking(move || probe.join()).await;
    result.map_err(|e| RunError::Kafka(format!("pipeline thread: {e}")))?
}
