//! `riskstream demo`: the whole Kafka path in one process, with nothing to
//! install. An in-process Kafka-protocol cluster (librdkafka's mock
//! cluster) holds the topics; the committed fixture is produced into it at
//! a steady rate; the live pipeline of `riskstream run` scores it; and a
//! consumer of `session-risk` prints each session whose decision changed.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::run::{RawRunConfig, RunError};

/// The committed fixture: 7,561 events of 60 principals over 3 days.
pub const FIXTURE_EVENTS: &str = include_str!("../../fixtures/small/events.jsonl");

/// What `riskstream demo` takes.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Events produced per second.
    pub rate: u64,
    /// Partitions of the input topics.
    pub partitions: i32,
    /// Stop after this many events (all when `None`).
    pub limit: Option<usize>,
}

/// What the demo saw.
#[derive(Debug, Default)]
pub struct DemoSummary {
    /// Events produced.
    pub produced: usize,
    /// Distinct events with a record.
    pub scored: usize,
    /// Decision changes printed.
    pub changes: usize,
    /// Sessions seen.
    pub sessions: usize,
}

fn err(context: &str, e: impl std::fmt::Display) -> RunError {
    RunError::Kafka(format!("demo: {context}: {e}"))
}

/// Runs the demo, printing the table to `out`.
pub fn demo(opts: &DemoOptions, out: &mut dyn Write) -> Result<DemoSummary, RunError> {
    let cluster = MockCluster::new(1).map_err(|e| err("mock cluster", e))?;
    let brokers = cluster.bootstrap_servers();
    for (topic, partitions) in [
        ("auth-events", opts.partitions),
        ("action-events", opts.partitions),
        ("riskstream.state", opts.partitions),
        ("session-risk", opts.partitions),
        ("riskstream.dlq", 1),
        ("riskstream.ip-observations", opts.partitions),
    ] {
        cluster
            .create_topic(topic, partitions, 1)
            .map_err(|e| err(topic, e))?;
    }
    let mut raw = RawRunConfig::default();
    raw.kafka.brokers = brokers.clone();
    raw.kafka.group_id = "riskstream-demo".to_owned();
    raw.topics.create = false;
    raw.http.listen = String::new();
    raw.pipeline.commit_interval_ms = 500;
    let config = raw.build()?;

    let lines: Vec<&str> = FIXTURE_EVENTS
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(opts.limit.unwrap_or(usize::MAX))
        .collect();
    let total = lines.len();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| err("runtime", e))?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let pipeline = runtime.spawn(crate::run::run(config, async {
        let _ = stop_rx.await;
    }));

    // The producer, on its own thread, at the demo's rate.
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "5")
        .create()
        .map_err(|e| err("producer", e))?;
    let rate = opts.rate.max(1);
    let feeder = std::thread::scope(|scope| -> Result<DemoSummary, RunError> {
        let feed = scope.spawn(|| -> Result<(), RunError> {
            let started = Instant::now();
            for (n, line) in lines.iter().enumerate() {
                let v: serde_json::Value =
                    serde_json::from_str(line).map_err(|e| err("fixture", e))?;
                let topic = if v["kind"] == "auth" {
                    "auth-events"
                } else {
                    "action-events"
                };
                let key = v["principal"]["id"].as_str().unwrap_or_default().to_owned();
                let mut record = BaseRecord::<str, str>::to(topic)
                    .key(key.as_str())
                    .payload(*line);
                loop {
                    match producer.send(record) {
                        Ok(()) => break,
                        Err((_, r)) => {
                            record = r;
                            std::thread::sleep(Duration::from_millis(2));
                        }
                    }
                }
                let due = started + Duration::from_micros(n as u64 * 1_000_000 / rate);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            producer
                .flush(Duration::from_secs(30))
                .map_err(|e| err("flush", e))
        });
        let summary = watch(&brokers, opts.partitions, total, out);
        feed.join()
            .map_err(|_| err("producer thread", "panicked"))??;
        summary
    });
    let _ = stop_tx.send(());
    runtime
        .block_on(pipeline)
        .map_err(|e| err("pipeline task", e))??;
    let mut summary = feeder?;
    summary.produced = total;
    drop(cluster);
    Ok(summary)
}

/// Reads `session-risk` until every event has a record, printing each
/// change of a session's decision for its next sensitive action.
fn watch(
    brokers: &str,
    partitions: i32,
    total: usize,
    out: &mut dyn Write,
) -> Result<DemoSummary, RunError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "riskstream-demo-watch")
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| err("consumer", e))?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset("session-risk", p, Offset::Beginning)
            .map_err(|e| err("assign", e))?;
    }
    consumer.assign(&tpl).map_err(|e| err("assign", e))?;
    let mut last: HashMap<String, (u64, String)> = HashMap::new();
    let mut events = std::collections::HashSet::new();
    let mut summary = DemoSummary::default();
    let deadline_idle = Duration::from_secs(30);
    let mut last_progress = Instant::now();
    let _ = writeln!(
        out,
        "{:<24} {:<14} {:<10} {:<22} {:>5} {:<8} {:<20} top signal",
        "event time", "session", "principal", "trigger", "score", "level", "decision"
    );
    while events.len() < total {
        if last_progress.elapsed() > deadline_idle {
            return Err(err(
                "watch",
                format!("no record for 30 s; {} of {total} scored", events.len()),
            ));
        }
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = m.map_err(|e| err("consume", e))?;
        let Some(payload) = m.payload() else { continue };
        let Ok(r) = serde_json::from_slice::<serde_json::Value>(payload) else {
            continue;
        };
        last_progress = Instant::now();
        if let Some(id) = r["trigger"]["event_id"].as_str() {
            events.insert(id.to_owned());
        }
        let session = r["session"].as_str().unwrap_or_default().to_owned();
        let seq = r["seq"].as_u64().unwrap_or(0);
        // What the session may do next with a high-sensitivity action.
        let decision = r["decisions"]["high"].as_str().unwrap_or("?").to_owned();
        let previous = last.get(&session).cloned();
        if previous.as_ref().is_some_and(|(s, _)| *s >= seq) {
            continue; // a duplicate or an older record
        }
        let changed = match &previous {
            None => decision != "allow",
            Some((_, d)) => *d != decision,
        };
        if changed {
            summary.changes += 1;
            let was = previous.map_or("-".to_owned(), |(_, d)| d);
            let top = r["signals"]
                .as_array()
                .and_then(|s| s.first())
                .and_then(|s| s["code"].as_str())
                .unwrap_or("");
            let _ = writeln!(
                out,
                "{:<24} {:<14} {:<10} {:<22} {:>5} {:<8} {:<20} {}",
                r["time"].as_str().unwrap_or(""),
                truncate(&session, 14),
                truncate(r["principal"]["id"].as_str().unwrap_or(""), 10),
                truncate(r["trigger"]["name"].as_str().unwrap_or(""), 22),
                r["score"],
                r["level"].as_str().unwrap_or(""),
                format!("{was} -> {decision}"),
                top
            );
        }
        last.insert(session, (seq, decision));
    }
    summary.scored = events.len();
    summary.sessions = last.len();
    Ok(summary)
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}
