//! Attack sources across instances: every instance publishes the login
//! observations its engines make (`IpObservation`: tenant, address, AS,
//! principal, failure or success, event time) to a topic keyed by address,
//! and reads the whole topic back into every engine it runs, like a Kafka
//! Streams global table. Credential stuffing and password spraying touch
//! many principals, which live on many partitions and instances; this is
//! how each engine learns of the failures the others saw.
//!
//! The delay is that of one produce and one fetch (the producer's linger,
//! the broker, the reader's fetch wait): what an engine has not received yet
//! counts from the moment it arrives, for events scored after it. An
//! engine's own observations count at once. Applying an observation twice
//! changes nothing, so the reader does not filter its own.
//!
//! On start the reader begins at the observations of the last window
//! (`offsetsForTimes`), and a partition assigned later gets the recent
//! observations the instance holds, so a moved partition's engine knows the
//! sources too.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use riskstream_detectors::IpObservation;
use tracing::{info, warn};

use super::RunError;
use super::config::RunConfig;
use super::metrics::Metrics;

/// Observations held for partitions assigned later, at most.
const RECENT_CAP: usize = 262_144;

/// What the loop thread keeps of the shared observations.
pub(crate) struct SharedSources {
    rx: Receiver<IpObservation>,
    /// The recent ones, oldest first, for a partition assigned later.
    recent: VecDeque<IpObservation>,
    /// How far back (event time) `recent` reaches behind the newest.
    keep_ms: i64,
}

impl SharedSources {
    /// The observations received since the last call, remembered for
    /// [`SharedSources::recent`].
    pub(crate) fn take(&mut self) -> Vec<IpObservation> {
        let new: Vec<IpObservation> = self.rx.try_iter().collect();
        if let Some(newest) = new.iter().map(|o| o.time.millis()).max() {
            self.recent.extend(new.iter().cloned());
            while self.recent.len() > RECENT_CAP
                || self
                    .recent
                    .front()
                    .is_some_and(|o| newest - o.time.millis() > self.keep_ms)
            {
                self.recent.pop_front();
            }
        }
        new
    }

    /// Every observation held, oldest first.
    pub(crate) fn recent(&self) -> impl Iterator<Item = &IpObservation> {
        self.recent.iter()
    }
}

/// Starts the reader of `topics.ip_observations` on its own client and
/// thread, from `lookback` before now.
pub(crate) fn start(
    config: &RunConfig,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
    lookback: Duration,
) -> Result<(SharedSources, std::thread::JoinHandle<()>), RunError> {
    let topic = config.raw.topics.ip_observations.clone();
    let mut cfg = ClientConfig::new();
    for (k, v) in config.common_properties() {
        cfg.set(k, v);
    }
    let consumer: BaseConsumer = cfg
        // Assigned, never subscribed: the group is only a name.
        .set("group.id", format!("{}.sources", config.raw.kafka.group_id))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100")
        .create()
        .map_err(|e| RunError::Kafka(format!("attack-source reader: {e}")))?;
    let md = consumer
        .fetch_metadata(Some(&topic), Duration::from_secs(10))
        .map_err(|e| RunError::Kafka(format!("metadata of {topic}: {e}")))?;
    let partitions = md.topics().first().map_or(0, |t| t.partitions().len()) as i32;
    if partitions == 0 {
        return Err(RunError::Topics(format!("{topic} has no partitions")));
    }
    let from = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.saturating_sub(lookback).as_millis() as i64)
        .unwrap_or(0);
    let mut wanted = TopicPartitionList::new();
    for p in 0..partitions {
        wanted
            .add_partition_offset(&topic, p, Offset::Offset(from))
            .map_err(|e| RunError::Kafka(e.to_string()))?;
    }
    let start = consumer
        .offsets_for_times(wanted, Duration::from_secs(10))
        .map_err(|e| RunError::Kafka(format!("offsets of {topic} since {from} ms: {e}")))?;
    let mut assignment = TopicPartitionList::new();
    for e in start.elements() {
        // No message since then: start at the end.
        let offset = match e.offset() {
            Offset::Offset(o) => Offset::Offset(o),
            _ => Offset::End,
        };
        assignment
            .add_partition_offset(&topic, e.partition(), offset)
            .map_err(|e| RunError::Kafka(e.to_string()))?;
    }
    consumer
        .assign(&assignment)
        .map_err(|e| RunError::Kafka(format!("assigning {topic}: {e}")))?;
    info!(%topic, partitions, lookback_s = lookback.as_secs(), "reading attack-source observations");
    let (tx, rx) = std::sync::mpsc::sync_channel(65_536);
    let handle = std::thread::Builder::new()
        .name("sources".to_owned())
        .spawn(move || read_loop(consumer, tx, metrics, stop))
        .map_err(|e| RunError::Kafka(format!("attack-source thread: {e}")))?;
    Ok((
        SharedSources {
            rx,
            recent: VecDeque::new(),
            keep_ms: lookback.as_millis() as i64,
        },
        handle,
    ))
}

fn read_loop(
    consumer: BaseConsumer,
    tx: SyncSender<IpObservation>,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        let Some(result) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = match result {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "attack-source reader (librdkafka retries)");
                continue;
            }
        };
        let Some(obs) = m
            .payload()
            .and_then(|b| serde_json::from_slice::<IpObservation>(b).ok())
        else {
            warn!(
                partition = m.partition(),
                offset = m.offset(),
                "not an attack-source observation: skipped"
            );
            continue;
        };
        metrics.source_observations_in.inc();
        // The loop takes them between messages; when it falls this far
        // behind, wait for it rather than drop.
        let mut obs = obs;
        loop {
            match tx.try_send(obs) {
                Ok(()) => break,
                Err(TrySendError::Full(o)) => {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    obs = o;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
    }
}
