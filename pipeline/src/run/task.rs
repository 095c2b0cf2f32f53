//! One input partition's work: its engine, the messages fetched from each
//! co-partitioned input topic and not yet scored, the order they are scored
//! in, and the changelog records its state changes need.
//!
//! No Kafka here: the loop in `kafka.rs` feeds messages in and sends what
//! comes out, so the ordering and changelog rules are tested on their own.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use riskstream_adapters::{AdapterOptions, Format};
use riskstream_detectors::{
    Engine, IpObservation, NetworksSnapshot, PrincipalSnapshot, SessionView,
};
use riskstream_schemas::{Event, ParseLimits, RejectReason, Rejection, RiskRecord, Timestamp};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::replay::{Line, LineReject, parse_line, parse_native};

/// Changelog key of the tenant tables (shared networks, role peer groups). Principal ids are never
/// empty (the parser rejects them), so the empty key cannot collide.
pub const NETWORKS_KEY: &str = "";

/// One consumed message, parsed, waiting for its turn.
#[derive(Debug)]
pub struct Pending {
    /// Index of its input topic in the configuration.
    pub input: usize,
    /// Offset in its topic partition.
    pub offset: i64,
    /// The message key, kept only when a record of the message is
    /// rejected (for the dead-letter topic); `None` otherwise.
    pub key: Option<Vec<u8>>,
    /// The original bytes, kept only when a record of the message is
    /// rejected (for the dead-letter topic); empty otherwise. A scored
    /// message needs neither, and copying every payload cost a fresh
    /// allocation per event.
    pub payload: Vec<u8>,
    /// Broker timestamp, ms since the epoch.
    pub broker_time_ms: Option<i64>,
    /// When it was fetched.
    pub received: Instant,
    /// What it parses to: one outcome per record it holds.
    pub items: Vec<Result<Event, LineReject>>,
    /// Scoring order: the event time of its first event (a message that
    /// holds only rejects goes first: it changes no state).
    order: i64,
}

impl Pending {
    /// Parses a message of `format`.
    #[allow(clippy::too_many_arguments)]
    pub fn parse(
        input: usize,
        format: Format,
        offset: i64,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        broker_time_ms: Option<i64>,
        received: Instant,
        limits: ParseLimits,
        adapter: &AdapterOptions,
    ) -> Pending {
        let bytes = payload.unwrap_or_default();
        let line = Line {
            number: 0,
            bytes,
            len: bytes.len(),
        };
        let items = match payload {
            None => vec![Err(LineReject::Contract(Rejection::new(
                RejectReason::NotJson,
                None,
                "message has no value",
            )))],
            Some(_) => match format {
                Format::Contract => vec![parse_line(&line, limits).map_err(LineReject::Contract)],
                format => parse_native(format, &line, limits, adapter),
            },
        };
        let order = items
            .iter()
            .find_map(|i| i.as_ref().ok().map(|e| e.time.0))
            .unwrap_or(i64::MIN);
        let dead_letters = items.iter().any(Result::is_err);
        Pending {
            input,
            offset,
            key: key.filter(|_| dead_letters).map(<[u8]>::to_vec),
            payload: if dead_letters {
                bytes.to_vec()
            } else {
                Vec::new()
            },
            broker_time_ms,
            received,
            items,
            order,
        }
    }
}

/// What one record of a message came to.
#[derive(Debug)]
pub enum Outcome {
    /// Scored.
    Record {
        /// Event time of the trigger.
        event_time: Timestamp,
        /// The record.
        record: Box<RiskRecord>,
        /// What the session's previous record said, when the task follows
        /// sessions for CAEP ([`PartitionTask::follow_sessions`]).
        previous: Option<SessionView>,
    },
    /// Not scored, with the reason code, field and detail.
    Reject {
        /// Reason code (the `error` header).
        reason: &'static str,
        /// Field, when one is to blame.
        field: Option<String>,
        /// Human-readable detail.
        detail: String,
    },
}

/// One partition number's work across the input topics.
pub struct PartitionTask {
    /// The partition number (the same in every input topic and in the
    /// changelog).
    pub partition: i32,
    engine: Engine,
    queues: Vec<VecDeque<Pending>>,
    watermark: Option<Timestamp>,
    /// Principals changed since the last changelog flush, with their
    /// tenants.
    dirty: FxHashSet<String>,
    tenants: FxHashMap<String, Vec<String>>,
    networks_dirty: bool,
    /// Next offset to commit per input topic (after the last scored
    /// message), changed since the last checkpoint.
    processed: Vec<Option<i64>>,
    /// Offset after the last message fetched per input topic.
    next_offset: Vec<Option<i64>>,
    /// Messages released by [`ORDER_WAIT_CAP`], possibly out of order.
    pub out_of_order: u64,
    /// Whether records carry their session's previous view.
    follow_sessions: bool,
    /// Whether the attack-source table comes from the shared topic (and
    /// so stays out of the changelog).
    follow_shared_sources: bool,
}

/// The longest an event waits for an earlier one the broker holds on
/// another input topic: past it, the consumer is not fetching that topic
/// (a broker in trouble) and holding events back would only add latency.
/// 30 s: on a saturated machine a freshly assigned partition's first
/// fetch of one topic was seen to lag the other's by more than 10 s, and
/// releasing then scored a session's actions before its login.
pub const ORDER_WAIT_CAP: Duration = Duration::from_secs(30);

impl PartitionTask {
    /// A task for `partition` with `inputs` input topics, on `engine`
    /// (fresh, or restored with [`PartitionTask::restore`]).
    pub fn new(partition: i32, inputs: usize, engine: Engine) -> PartitionTask {
        PartitionTask {
            partition,
            engine,
            queues: (0..inputs).map(|_| VecDeque::new()).collect(),
            watermark: None,
            dirty: FxHashSet::default(),
            tenants: FxHashMap::default(),
            networks_dirty: false,
            processed: vec![None; inputs],
            next_offset: vec![None; inputs],
            out_of_order: 0,
            follow_sessions: false,
            follow_shared_sources: false,
        }
    }

    /// The attack-source table is rebuilt from the shared topic: the
    /// changelog leaves it out.
    pub fn shared_sources(mut self, on: bool) -> PartitionTask {
        self.follow_shared_sources = on;
        self
    }

    /// Records carry what their session's previous record said (read from
    /// the engine, so it survives a move of the partition): what CAEP
    /// events need.
    pub fn follow_sessions(mut self, on: bool) -> PartitionTask {
        self.follow_sessions = on;
        self
    }

    /// The attack-source observations this partition's events made since
    /// the last call, to publish for the other instances.
    pub fn drain_ip_observations(&mut self) -> Vec<IpObservation> {
        self.engine.drain_ip_observations().collect()
    }

    /// An attack-source observation another partition or instance made.
    pub fn apply_remote_ip_observation(&mut self, obs: &IpObservation) {
        self.engine.apply_remote_ip_observation(obs);
    }

    /// The engine, for statistics.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Applies one changelog record during restore. A bad value is skipped
    /// and reported: the principal then starts afresh, which costs
    /// detection quality, not correctness of delivery.
    pub fn restore(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), String> {
        let key = std::str::from_utf8(key).map_err(|e| format!("key is not UTF-8: {e}"))?;
        if key == NETWORKS_KEY {
            if let Some(v) = value {
                let s = NetworksSnapshot::from_bytes(v).map_err(|e| e.to_string())?;
                self.engine.restore_networks(s);
            }
            return Ok(());
        }
        // Forget whatever this id was, then restore what the value holds.
        if let Some(tenants) = self.tenants.remove(key) {
            for t in tenants {
                self.engine.forget_principal(&t, key);
            }
        }
        let Some(v) = value else { return Ok(()) };
        let items: Vec<serde_json::Value> =
            serde_json::from_slice(v).map_err(|e| format!("not a snapshot list: {e}"))?;
        for item in items {
            let bytes = serde_json::to_vec(&item).map_err(|e| e.to_string())?;
            let s = PrincipalSnapshot::from_bytes(&bytes).map_err(|e| e.to_string())?;
            let tenants = self.tenants.entry(key.to_owned()).or_default();
            if !tenants.iter().any(|t| t == s.tenant()) {
                tenants.push(s.tenant().to_owned());
            }
            self.engine.restore_principal(s);
        }
        Ok(())
    }

    /// Queues a fetched message.
    pub fn push(&mut self, pending: Pending) {
        let i = pending.input;
        self.next_offset[i] = Some(pending.offset + 1);
        self.queues[i].push_back(pending);
    }

    /// Where `input`'s next message will start (its committed offset at
    /// assignment; `None` when nothing is committed).
    pub fn set_position(&mut self, input: usize, next: Option<i64>) {
        self.next_offset[input] = next;
    }

    /// The next message to score, if one may go now.
    ///
    /// Once every input topic has a message queued, the earliest head by
    /// event time goes. When a topic has none, the earliest head waits
    /// `idle`, then asks `caught_up(input, next_offset, since)` for each
    /// empty topic whether the broker holds more of it than was fetched
    /// (the shell answers from the partition's high watermark, read after
    /// `since`, when the head arrived): if none does,
    /// the head goes; if one does, it waits for that fetch, at most
    /// [`ORDER_WAIT_CAP`].
    pub fn next_ready(
        &mut self,
        now: Instant,
        idle: Duration,
        caught_up: &mut dyn FnMut(usize, Option<i64>, Instant) -> bool,
    ) -> Option<Pending> {
        let mut best: Option<usize> = None;
        let mut all_present = true;
        for (i, q) in self.queues.iter().enumerate() {
            match q.front() {
                None => all_present = false,
                Some(p) => {
                    if best.is_none_or(|b| p.order < self.queues[b][0].order) {
                        best = Some(i);
                    }
                }
            }
        }
        let b = best?;
        let head = &self.queues[b][0];
        let waited = now.saturating_duration_since(head.received);
        let in_order = all_present
            || head.order == i64::MIN
            || (waited >= idle
                && (0..self.queues.len())
                    .filter(|j| self.queues[*j].is_empty())
                    .all(|j| caught_up(j, self.next_offset[j], head.received)));
        if in_order {
            self.queues[b].pop_front()
        } else if waited >= ORDER_WAIT_CAP {
            self.out_of_order += 1;
            self.queues[b].pop_front()
        } else {
            None
        }
    }

    /// When the earliest queued message should be looked at again.
    pub fn deadline(&self, now: Instant, idle: Duration) -> Option<Instant> {
        self.queues
            .iter()
            .filter_map(|q| q.front().map(|p| (p.received + idle).max(now + idle / 2)))
            .min()
    }

    /// Scores a message taken from [`PartitionTask::next_ready`]: one
    /// outcome per record it holds, in order.
    pub fn score(&mut self, pending: &mut Pending) -> Vec<Outcome> {
        let mut out = Vec::with_capacity(pending.items.len());
        for item in pending.items.drain(..) {
            match item {
                Err(reject) => out.push(reject_outcome(reject)),
                Ok(event) => {
                    let now = match self.watermark {
                        Some(t) if t >= event.time => t,
                        _ => event.time,
                    };
                    self.watermark = Some(now);
                    if self.engine.poll_timeout().is_some_and(|due| due <= now) {
                        self.engine.handle_timeout(now);
                    }
                    let previous = if self.follow_sessions {
                        self.engine
                            .session_view(&event.tenant, &event.principal.id, &event.session)
                    } else {
                        None
                    };
                    match self.engine.handle_event(&event) {
                        Ok(record) => {
                            if !self.dirty.contains(&event.principal.id) {
                                self.dirty.insert(event.principal.id.clone());
                            }
                            let tenants =
                                self.tenants.entry(event.principal.id.clone()).or_default();
                            if !tenants.contains(&event.tenant) {
                                tenants.push(event.tenant.clone());
                            }
                            // The tenant tables (shared networks, role peer
                            // groups) learn from auth and action events.
                            self.networks_dirty = true;
                            out.push(Outcome::Record {
                                event_time: event.time,
                                record: Box::new(record),
                                previous,
                            });
                        }
                        Err(rejection) => out.push(reject_outcome(LineReject::Contract(rejection))),
                    }
                }
            }
        }
        self.processed[pending.input] = Some(pending.offset + 1);
        out
    }

    /// The changelog records for everything changed since the last call:
    /// (key, value), a `None` value being a tombstone (the principal was
    /// evicted or expired).
    pub fn take_changelog(&mut self) -> Vec<(String, Option<Vec<u8>>)> {
        let mut out = Vec::with_capacity(self.dirty.len() + 1);
        let mut dirty: Vec<String> = self.dirty.drain().collect();
        // Deterministic order, for reproducible changelogs.
        dirty.sort_unstable();
        for id in dirty {
            let tenants = self.tenants.get(&id).cloned().unwrap_or_default();
            let snapshots: Vec<Vec<u8>> = tenants
                .iter()
                .filter_map(|t| self.engine.principal_snapshot_bytes(t, &id))
                .collect();
            if snapshots.is_empty() {
                self.tenants.remove(&id);
                out.push((id, None));
            } else {
                let mut value =
                    Vec::with_capacity(snapshots.iter().map(Vec::len).sum::<usize>() + 2);
                value.push(b'[');
                for (i, s) in snapshots.iter().enumerate() {
                    if i > 0 {
                        value.push(b',');
                    }
                    value.extend_from_slice(s);
                }
                value.push(b']');
                out.push((id, Some(value)));
            }
        }
        if self.networks_dirty {
            self.networks_dirty = false;
            out.push((
                NETWORKS_KEY.to_owned(),
                Some(
                    if self.follow_shared_sources {
                        self.engine.networks_snapshot_without_sources()
                    } else {
                        self.engine.networks_snapshot()
                    }
                    .to_bytes(),
                ),
            ));
        }
        out
    }

    /// Next offsets to commit per input topic, changed since the last call.
    pub fn take_offsets(&mut self) -> Vec<(usize, i64)> {
        self.processed
            .iter_mut()
            .enumerate()
            .filter_map(|(i, o)| o.take().map(|o| (i, o)))
            .collect()
    }
}

fn reject_outcome(reject: LineReject) -> Outcome {
    match reject {
        LineReject::Contract(r) => Outcome::Reject {
            reason: r.reason.as_str(),
            field: r.field.map(|f| f.to_string()),
            detail: r.detail,
        },
        LineReject::Unmapped(u) => Outcome::Reject {
            reason: u.reason.as_str(),
            field: None,
            detail: match &u.vendor_type {
                Some(t) => format!("{} [{t}]: {}", u.format, u.detail),
                None => format!("{}: {}", u.format, u.detail),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::EngineOptions;

    fn event(id: &str, principal: &str, kind: &str, time: &str) -> Vec<u8> {
        let body = if kind == "auth" {
            r#""type":"login.success","auth":{"aal":2,"amr":["pwd","otp"]}"#
        } else {
            r#""action":"data.export""#
        };
        format!(
            r#"{{"schema":"riskstream.event.v1","kind":"{kind}","id":"{id}","time":"{time}","tenant":"t","principal":{{"id":"{principal}","type":"human"}},"session":"s-{principal}",{body},"context":{{"ip":"81.2.69.142"}}}}"#
        )
        .into_bytes()
    }

    fn pending(input: usize, offset: i64, bytes: &[u8], at: Instant) -> Pending {
        let format = Format::Contract;
        Pending::parse(
            input,
            format,
            offset,
            Some(b"k"),
            Some(bytes),
            None,
            at,
            ParseLimits::default(),
            &AdapterOptions::default(),
        )
    }

    fn task() -> PartitionTask {
        let config = EngineOptions::default().load().unwrap();
        PartitionTask::new(0, 2, config.engine())
    }

    #[test]
    fn scores_across_topics_in_event_time_order() {
        let mut t = task();
        let t0 = Instant::now();
        let idle = Duration::from_millis(10);
        // The broker holds 2 auth messages (offsets 0 and 1).
        let mut asked = Vec::new();
        let mut broker = |input: usize, next: Option<i64>, _: Instant| {
            asked.push((input, next));
            input != 0 || next.unwrap_or(0) >= 2
        };
        t.push(pending(
            1,
            0,
            &event("a1", "u1", "action", "2026-11-30T10:00:05Z"),
            t0,
        ));
        // Only the action topic has data: it waits for the auth topic, and
        // past idle it still waits, since the broker holds auth messages.
        assert!(t.next_ready(t0, idle, &mut broker).is_none());
        assert!(t.next_ready(t0 + idle, idle, &mut broker).is_none());
        assert_eq!(t.deadline(t0, idle), Some(t0 + idle));
        t.push(pending(
            0,
            0,
            &event("l1", "u1", "auth", "2026-11-30T10:00:01Z"),
            t0,
        ));
        t.push(pending(
            0,
            1,
            &event("l2", "u1", "auth", "2026-11-30T10:00:09Z"),
            t0,
        ));
        let first = t.next_ready(t0, idle, &mut broker).unwrap();
        assert_eq!((first.input, first.offset), (0, 0));
        let second = t.next_ready(t0, idle, &mut broker).unwrap();
        assert_eq!((second.input, second.offset), (1, 0));
        // The action topic is empty again: the later login waits until
        // idle, then goes since the broker has no more actions.
        assert!(t.next_ready(t0, idle, &mut broker).is_none());
        let third = t.next_ready(t0 + idle, idle, &mut broker).unwrap();
        assert_eq!((third.input, third.offset), (0, 1));
        assert_eq!(asked, vec![(0, None), (1, Some(1))]);
        // Nothing waits beyond the cap.
        t.push(pending(
            1,
            1,
            &event("a2", "u1", "action", "2026-11-30T10:00:10Z"),
            t0,
        ));
        let mut never = |_: usize, _: Option<i64>, _: Instant| false;
        assert!(t.next_ready(t0 + idle, idle, &mut never).is_none());
        assert!(
            t.next_ready(t0 + ORDER_WAIT_CAP, idle, &mut never)
                .is_some()
        );
    }

    #[test]
    fn rejects_go_first_and_changelog_restores_the_same_state() {
        let mut t = task();
        let t0 = Instant::now();
        t.push(pending(0, 0, b"{not json", t0));
        let mut bad = t
            .next_ready(t0, Duration::from_secs(60), &mut |_, _, _| false)
            .unwrap();
        let out = t.score(&mut bad);
        assert!(matches!(
            out[..],
            [Outcome::Reject {
                reason: "not_json",
                ..
            }]
        ));
        assert_eq!(t.take_offsets(), vec![(0, 1)]);

        let events = [
            event("l1", "u1", "auth", "2026-11-30T10:00:01Z"),
            event("a1", "u1", "action", "2026-11-30T10:00:05Z"),
            event("l2", "u2", "auth", "2026-11-30T10:00:06Z"),
        ];
        for (i, e) in events.iter().enumerate() {
            let mut p = pending(0, i as i64 + 1, e, t0);
            let out = t.score(&mut p);
            assert!(matches!(out[..], [Outcome::Record { .. }]));
        }
        let log = t.take_changelog();
        let keys: Vec<&str> = log.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, vec!["u1", "u2", NETWORKS_KEY]);
        assert!(t.take_changelog().is_empty(), "nothing changed since");

        // A new task restored from the changelog scores the next event as
        // the first task does, and re-emits a redelivered one identically.
        let mut restored = task();
        for (k, v) in &log {
            restored.restore(k.as_bytes(), v.as_deref()).unwrap();
        }
        let next = event("a2", "u1", "action", "2026-11-30T10:01:00Z");
        let again = event("a1", "u1", "action", "2026-11-30T10:00:05Z");
        for bytes in [&again, &next] {
            let a = t.score(&mut pending(1, 9, bytes, t0));
            let b = restored.score(&mut pending(1, 9, bytes, t0));
            let (Outcome::Record { record: ra, .. }, Outcome::Record { record: rb, .. }) =
                (&a[0], &b[0])
            else {
                panic!("{a:?} {b:?}")
            };
            assert_eq!(ra, rb);
        }
        // Tombstones forget.
        restored.restore(b"u1", None).unwrap();
        assert!(restored.engine().principal_snapshot("t", "u1").is_none());
        assert!(restored.restore(b"u3", Some(b"garbage")).is_err());
    }
}
