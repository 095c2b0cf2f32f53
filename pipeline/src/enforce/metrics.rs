//! What `riskstream enforce` counts, exposed at `/metrics` in the
//! Prometheus (OpenMetrics) text format.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use riskstream_schemas::{Decision, Sensitivity};

use super::table::Applied;

/// `class`, `decision` and `known` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    /// Sensitivity class of the request.
    pub class: String,
    /// `allow`, `step_up` or `deny`.
    pub decision: String,
    /// `true` when the session had a record, `false` when the
    /// unknown-session default answered.
    pub known: String,
}

/// Every counter of a running enforcement point, shared by the consumer
/// thread and the HTTP server.
#[derive(Debug)]
pub struct EnforceMetrics {
    /// Decisions answered, by class, outcome and whether the session was
    /// known. Resolved once per label set: 4 classes × 3 decisions × 2.
    decisions: Vec<Counter>,
    decisions_family: Family<Outcome, Counter>,
    /// Sessions held.
    pub sessions: Gauge,
    /// Records that added or replaced a session's record.
    pub records_applied: Counter,
    /// Records whose `seq` was not above the held one.
    pub records_stale: Counter,
    /// Tombstones (null values).
    pub tombstones: Counter,
    /// Messages that are not risk records.
    pub records_invalid: Counter,
    /// Whether the initial catch-up to the high watermarks taken at start
    /// is done.
    pub caught_up: AtomicBool,
    /// Whether the brokers answered the last metadata request.
    pub broker_up: AtomicBool,
}

fn slot(class: Sensitivity, decision: Decision, known: bool) -> usize {
    class.index() * 6 + decision as usize * 2 + usize::from(known)
}

impl EnforceMetrics {
    /// Zeroed metrics.
    pub fn new() -> Arc<EnforceMetrics> {
        let family: Family<Outcome, Counter> = Family::default();
        let mut decisions = vec![Counter::default(); 24];
        for class in Sensitivity::ALL {
            for decision in [Decision::Allow, Decision::StepUp, Decision::Deny] {
                for known in [false, true] {
                    decisions[slot(class, decision, known)] = family
                        .get_or_create(&Outcome {
                            class: class.as_str().to_owned(),
                            decision: decision.as_str().to_owned(),
                            known: known.to_string(),
                        })
                        .clone();
                }
            }
        }
        Arc::new(EnforceMetrics {
            decisions,
            decisions_family: family,
            sessions: Gauge::default(),
            records_applied: Counter::default(),
            records_stale: Counter::default(),
            tombstones: Counter::default(),
            records_invalid: Counter::default(),
            caught_up: AtomicBool::new(false),
            broker_up: AtomicBool::new(false),
        })
    }

    /// Counts one answered decision.
    pub fn decided(&self, class: Sensitivity, decision: Decision, known: bool) {
        self.decisions[slot(class, decision, known)].inc();
    }

    /// Counts one applied message.
    pub fn applied(&self, applied: Applied) {
        match applied {
            Applied::Added | Applied::Replaced => self.records_applied.inc(),
            Applied::Stale => self.records_stale.inc(),
            Applied::Removed | Applied::NothingToRemove => self.tombstones.inc(),
            Applied::Invalid => self.records_invalid.inc(),
        };
    }

    /// Ready to answer: caught up with the risk topic.
    pub fn is_ready(&self) -> bool {
        self.caught_up.load(Ordering::Relaxed)
    }

    /// The registry to encode at `/metrics`.
    pub fn registry(&self) -> Registry {
        let mut r = Registry::with_prefix("riskstream_enforce");
        r.register(
            "decisions",
            "decisions answered, by class, decision and whether the session had a record",
            self.decisions_family.clone(),
        );
        r.register("sessions", "sessions held", self.sessions.clone());
        r.register(
            "records_applied",
            "risk records that added or replaced a session's record",
            self.records_applied.clone(),
        );
        r.register(
            "records_stale",
            "risk records ignored: seq not above the held one",
            self.records_stale.clone(),
        );
        r.register(
            "tombstones",
            "null values (session removed)",
            self.tombstones.clone(),
        );
        r.register(
            "records_invalid",
            "messages that are not risk records",
            self.records_invalid.clone(),
        );
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_outcome() {
        let m = EnforceMetrics::new();
        m.decided(Sensitivity::Critical, Decision::Deny, false);
        m.decided(Sensitivity::Critical, Decision::Deny, false);
        m.decided(Sensitivity::High, Decision::StepUp, true);
        m.applied(Applied::Stale);
        let text = crate::openmetrics::encode(&m.registry());
        assert!(
            text.contains(
                "riskstream_enforce_decisions_total{class=\"critical\",decision=\"deny\",known=\"false\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "riskstream_enforce_decisions_total{class=\"high\",decision=\"step_up\",known=\"true\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("riskstream_enforce_records_stale_total 1"),
            "{text}"
        );
    }
}
