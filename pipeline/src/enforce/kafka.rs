//! The consumer: every partition of the risk topic, from the beginning,
//! into the session table.
//!
//! It runs on its own thread with librdkafka's blocking `BaseConsumer`.
//! Every enforcement point needs every session, so it assigns itself every
//! partition (`assign`, not `subscribe`): it joins no consumer group,
//! shares nothing with other instances and commits nothing. Each start
//! rebuilds the table from the compacted topic, which holds the latest
//! record per session.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tracing::{info, warn};

use super::EnforceError;
use super::config::EnforceConfig;
use super::metrics::EnforceMetrics;
use super::table::{Applied, SessionTable, Update};

/// Marks the brokers down when librdkafka says all are.
struct Context(Arc<EnforceMetrics>);

impl ClientContext for Context {
    fn error(&self, error: KafkaError, reason: &str) {
        match error.rdkafka_error_code() {
            // The end of a partition is reported here too
            // (`enable.partition.eof`); the poll loop handles it.
            Some(RDKafkaErrorCode::PartitionEOF) => return,
            Some(RDKafkaErrorCode::AllBrokersDown) => {
                self.0.broker_up.store(false, Ordering::Relaxed);
            }
            _ => {}
        }
        warn!(%error, reason, "kafka client error");
    }
}

impl ConsumerContext for Context {}

/// How long to wait between two looks for a risk topic that does not
/// exist yet (`riskstream run` creates it on its first start).
const TOPIC_RETRY: Duration = Duration::from_secs(1);

/// Reads the risk topic into `table` until `stop` is set.
pub(crate) fn consume(
    config: &EnforceConfig,
    table: &RwLock<SessionTable>,
    metrics: &Arc<EnforceMetrics>,
    stop: &AtomicBool,
) -> Result<(), EnforceError> {
    let mut cfg = ClientConfig::new();
    for (k, v) in config.consumer_properties() {
        cfg.set(k, v);
    }
    let consumer: BaseConsumer<Context> = cfg
        .create_with_context(Context(Arc::clone(metrics)))
        .map_err(|e| EnforceError::Kafka(format!("consumer: {e}")))?;
    let topic = config.raw.topics.risk.as_str();

    // Partitions, then the high watermarks the catch-up must reach.
    let started = Instant::now();
    let mut logged_missing = false;
    let partitions = loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        match consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            Ok(md) => {
                metrics.broker_up.store(true, Ordering::Relaxed);
                let n = md
                    .topics()
                    .iter()
                    .find(|t| t.name() == topic && t.error().is_none())
                    .map_or(0, |t| t.partitions().len());
                if n > 0 {
                    break n as i32;
                }
                if !logged_missing {
                    info!(topic, "risk topic does not exist yet: waiting for it");
                    logged_missing = true;
                }
            }
            Err(error) => {
                metrics.broker_up.store(false, Ordering::Relaxed);
                warn!(%error, topic, "metadata request failed: retrying");
            }
        }
        std::thread::sleep(TOPIC_RETRY);
    };
    let mut targets: HashMap<i32, i64> = HashMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        let (low, high) = loop {
            match consumer.fetch_watermarks(topic, p, Duration::from_secs(5)) {
                Ok(w) => break w,
                Err(error) => {
                    if stop.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    warn!(%error, topic, partition = p, "watermarks: retrying");
                    std::thread::sleep(TOPIC_RETRY);
                }
            }
        };
        if high > low {
            targets.insert(p, high);
        }
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .map_err(|e| EnforceError::Kafka(format!("assign {topic}/{p}: {e}")))?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| EnforceError::Kafka(format!("assign {topic}: {e}")))?;
    let to_read: i64 = targets.values().sum();
    info!(
        topic,
        partitions,
        up_to_offsets = to_read,
        "reading the risk topic from the beginning"
    );
    let caught_up = |targets: &HashMap<i32, i64>| {
        if targets.is_empty() && !metrics.caught_up.swap(true, Ordering::Relaxed) {
            let sessions = table.read().map_or(0, |t| t.len());
            info!(
                sessions,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "caught up with the risk topic: ready"
            );
        }
    };
    caught_up(&targets);

    while !stop.load(Ordering::Relaxed) {
        let Some(result) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        match result {
            Ok(m) => {
                metrics.broker_up.store(true, Ordering::Relaxed);
                // Parsed before the lock: the HTTP threads wait on it.
                let update = Update::read(m.key(), m.payload());
                let (applied, held) = match table.write() {
                    Ok(mut t) => (t.update(update), t.len()),
                    Err(_) => return Err(EnforceError::Kafka("session table poisoned".into())),
                };
                metrics.applied(applied);
                metrics.sessions.set(held as i64);
                if applied == Applied::Invalid {
                    warn!(
                        topic,
                        partition = m.partition(),
                        offset = m.offset(),
                        "not a risk record: ignored"
                    );
                }
                if let Some(&high) = targets.get(&m.partition())
                    && m.offset() + 1 >= high
                {
                    targets.remove(&m.partition());
                    caught_up(&targets);
                }
            }
            Err(KafkaError::PartitionEOF(p)) => {
                // The end of a partition as it is now: at least the high
                // watermark taken at start.
                if targets.remove(&p).is_some() {
                    caught_up(&targets);
                }
            }
            Err(error) => {
                warn!(%error, topic, "consume error: librdkafka retries");
            }
        }
    }
    Ok(())
}
