//! What `riskstream run` counts, exposed at `/metrics` in the Prometheus
//! (OpenMetrics) text format.
//!
//! Counters and gauges are `prometheus-client` metrics; the two end-to-end
//! latency distributions are kept in hdrhistograms (exact quantiles at 3
//! significant digits) and exposed both as Prometheus histograms, whose
//! buckets are read off the hdrhistogram at scrape time, and as quantile
//! gauges (p50, p99, p999).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// `topic` and `kind` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicKind {
    /// Topic name.
    pub topic: String,
    /// `auth`, `action`, or `record`, `dlq`, `state` for outputs.
    pub kind: String,
}

/// `reason` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    /// A reject reason code.
    pub reason: String,
}

/// `class` and `decision` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassDecision {
    /// Sensitivity class of the trigger.
    pub class: String,
    /// `allow`, `step_up` or `deny`.
    pub decision: String,
}

/// `topic` and `partition` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
}

/// Highest latency kept, in microseconds (one hour); larger values are
/// clamped so that a replayed old event cannot fail the recording.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// One latency distribution.
#[derive(Debug)]
pub struct Latency {
    name: &'static str,
    help: &'static str,
    histogram: Mutex<Histogram<u64>>,
}

impl Latency {
    fn new(name: &'static str, help: &'static str) -> Latency {
        // 3 significant digits up to an hour: about 100 KiB, fixed.
        let histogram = Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
            .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()));
        Latency {
            name,
            help,
            histogram: Mutex::new(histogram),
        }
    }

    /// Records one latency in microseconds.
    pub fn record_us(&self, us: i64) {
        let v = us.clamp(1, MAX_LATENCY_US as i64) as u64;
        if let Ok(mut h) = self.histogram.lock() {
            let _ = h.record(v);
        }
    }

    /// (p50, p99, p999, count) in microseconds.
    pub fn quantiles_us(&self) -> (u64, u64, u64, u64) {
        match self.histogram.lock() {
            Ok(h) => (
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
                h.len(),
            ),
            Err(_) => (0, 0, 0, 0),
        }
    }
}

/// Bucket upper bounds of the exposed histograms, in seconds.
const BUCKETS_S: &[f64] = &[
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 60.0,
];

/// Reads the latency hdrhistograms at scrape time.
#[derive(Debug)]
struct LatencyCollector(Arc<Metrics>);

impl Collector for LatencyCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for latency in [&self.0.latency_event_time, &self.0.latency_broker_time] {
            let Ok(h) = latency.histogram.lock() else {
                continue;
            };
            let buckets: Vec<(f64, u64)> = BUCKETS_S
                .iter()
                .map(|&s| {
                    let us = (s * 1e6) as u64;
                    (s, h.count_between(0, us))
                })
                .collect();
            let sum = h.mean() * h.len() as f64 / 1e6;
            let mut m = encoder.encode_descriptor(
                latency.name,
                latency.help,
                None,
                MetricType::Histogram,
            )?;
            m.encode_histogram::<Vec<(String, String)>>(sum, h.len(), &buckets, None)?;
            let name = format!("{}_quantile", latency.name);
            let mut d = encoder.encode_descriptor(
                &name,
                "quantiles of the distribution above, exact to 3 significant digits",
                None,
                MetricType::Gauge,
            )?;
            for (q, label) in [(0.5, "0.5"), (0.99, "0.99"), (0.999, "0.999")] {
                let g: Gauge<f64, std::sync::atomic::AtomicU64> = Gauge::default();
                g.set(h.value_at_quantile(q) as f64 / 1e6);
                let labels = [("quantile", label)];
                g.encode(d.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// Every counter of a running pipeline. Shared between the Kafka loop and
/// the HTTP server.
#[derive(Debug)]
pub struct Metrics {
    /// Messages consumed, by topic and kind (`auth`, `action`, `unparsed`).
    pub events_in: Family<TopicKind, Counter>,
    /// Messages produced, by topic and kind (`record`, `dlq`, `state`).
    pub messages_out: Family<TopicKind, Counter>,
    /// Rejected inputs by reason.
    pub rejects: Family<Reason, Counter>,
    /// Risk records by the trigger's class and the decision.
    pub decisions: Family<ClassDecision, Counter>,
    /// Consumer lag per input partition, from librdkafka's statistics.
    pub consumer_lag: Family<TopicPartition, Gauge>,
    /// Principals held in state, over all partitions.
    pub principals: Gauge,
    /// Sessions held in state, over all partitions.
    pub sessions: Gauge,
    /// Partitions this instance owns.
    pub partitions: Gauge,
    /// Checkpoints completed.
    pub checkpoints: Counter,
    /// Attack-source observations read from the shared topic.
    pub source_observations_in: Counter,
    /// Event time to record acknowledged.
    pub latency_event_time: Latency,
    /// Broker timestamp of the input to record acknowledged.
    pub latency_broker_time: Latency,
    /// Whether the brokers answer (from librdkafka's statistics and errors).
    pub broker_up: AtomicBool,
    /// Whether partitions are assigned and their state restored.
    pub assigned: AtomicBool,
    /// Whether the pipeline loop has finished starting.
    pub started: AtomicBool,
    /// Milliseconds since the epoch of the last broker contact.
    pub last_broker_contact_ms: AtomicI64,
}

impl Metrics {
    /// Empty metrics.
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics {
            events_in: Family::default(),
            messages_out: Family::default(),
            rejects: Family::default(),
            decisions: Family::default(),
            consumer_lag: Family::default(),
            principals: Gauge::default(),
            sessions: Gauge::default(),
            partitions: Gauge::default(),
            checkpoints: Counter::default(),
            source_observations_in: Counter::default(),
            latency_event_time: Latency::new(
                "latency_from_event_time_seconds",
                "event time of the input to its risk record acknowledged by the broker",
            ),
            latency_broker_time: Latency::new(
                "latency_from_broker_time_seconds",
                "broker timestamp of the input to its risk record acknowledged by the broker",
            ),
            broker_up: AtomicBool::new(false),
            assigned: AtomicBool::new(false),
            started: AtomicBool::new(false),
            last_broker_contact_ms: AtomicI64::new(0),
        })
    }

    /// Ready to serve: started, the brokers answer, and partitions are
    /// assigned and restored.
    pub fn is_ready(&self) -> bool {
        self.started.load(Ordering::Relaxed)
            && self.broker_up.load(Ordering::Relaxed)
            && self.assigned.load(Ordering::Relaxed)
    }

    /// The registry to encode at `/metrics`.
    pub fn registry(self: &Arc<Metrics>) -> Registry {
        let mut r = Registry::with_prefix("riskstream");
        r.register(
            "events_in",
            "input messages consumed",
            self.events_in.clone(),
        );
        r.register(
            "messages_out",
            "messages produced and acknowledged",
            self.messages_out.clone(),
        );
        r.register(
            "rejects",
            "inputs rejected, by reason",
            self.rejects.clone(),
        );
        r.register(
            "decisions",
            "risk records, by trigger class and decision",
            self.decisions.clone(),
        );
        r.register(
            "consumer_lag",
            "messages behind the end of each input partition",
            self.consumer_lag.clone(),
        );
        r.register(
            "principals",
            "principals held in state",
            self.principals.clone(),
        );
        r.register("sessions", "sessions held in state", self.sessions.clone());
        r.register(
            "partitions",
            "input partitions owned",
            self.partitions.clone(),
        );
        r.register(
            "checkpoints",
            "state checkpoints committed",
            self.checkpoints.clone(),
        );
        r.register(
            "source_observations_in",
            "attack-source observations read from the shared topic (every instance's, this one's included)",
            self.source_observations_in.clone(),
        );
        r.register_collector(Box::new(LatencyCollector(Arc::clone(self))));
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_counters_and_latency() {
        let m = Metrics::new();
        m.events_in
            .get_or_create(&TopicKind {
                topic: "auth-events".into(),
                kind: "auth".into(),
            })
            .inc_by(3);
        m.latency_event_time.record_us(1500);
        m.latency_event_time.record_us(30_000);
        let text = crate::openmetrics::encode(&m.registry());
        assert!(
            text.contains("riskstream_events_in_total{topic=\"auth-events\",kind=\"auth\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("riskstream_latency_from_event_time_seconds_bucket{le=\"0.002\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("riskstream_latency_from_event_time_seconds_count 2"),
            "{text}"
        );
        assert!(text.contains("quantile=\"0.99\""), "{text}");
        assert_eq!(
            text.matches("# TYPE riskstream_latency_from_event_time_seconds_quantile gauge")
                .count(),
            1,
            "one family for the three quantiles:\n{text}"
        );
        let (p50, p99, _, n) = m.latency_event_time.quantiles_us();
        assert_eq!(n, 2);
        assert!((1495..=1505).contains(&p50), "{p50}");
        assert!((29_950..=30_050).contains(&p99), "{p99}");
    }
}
