//! The Kafka loop: one consumer in the group, one engine per assigned
//! partition, records and dead letters produced as events are scored, and
//! state checkpointed to the changelog before input offsets are committed.
//!
//! It runs on its own thread with librdkafka's blocking API: rebalance
//! callbacks then run inside `poll`, on this same thread, between two
//! messages, which is what lets a revoke checkpoint and drop a partition's
//! engine before another instance may take it.
//!
//! Errors are sorted on purpose (STYLE.md 7):
//! - transient broker and network errors are retried by librdkafka itself
//!   (fetches, and produce until `message.timeout.ms`); the loop logs them
//!   and carries on, reporting not-ready;
//! - an input that is not a valid event is dead-lettered with its reason;
//! - a produce that fails for good, or librdkafka's fatal error, stops the
//!   loop without committing: a restart reprocesses from the last commit
//!   and the changelog, so nothing is lost.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use riskstream_adapters::AdapterOptions;
use riskstream_schemas::ParseLimits;
use tracing::{debug, error, info, warn};

use super::config::RunConfig;
use super::metrics::{ClassDecision, Metrics, Reason, TopicKind, TopicPartition};
use super::sources::{self, SharedSources};
use super::task::{Outcome, PartitionTask, Pending};
use super::watermarks::{Reading, Watermarks};
use super::{RunError, SessionCache};
use crate::caep::{SessionMark, session_tokens};
use crate::replay::LoadedConfig;

/// What a produced message was, for its delivery report.
pub(crate) enum Delivery {
    /// A risk record, with the input's times for the latency histograms.
    Record {
        event_time_ms: i64,
        broker_time_ms: Option<i64>,
    },
    /// A dead letter.
    DeadLetter,
    /// A changelog record.
    State,
    /// A CAEP Security Event Token.
    Caep,
    /// An attack-source observation for the other instances.
    Observation,
}

/// The producer's context: counts deliveries and keeps the first failure.
pub(crate) struct ProduceContext {
    metrics: Arc<Metrics>,
    /// `messages_out` for records, dead letters and state, resolved once.
    out_counters: [Counter; 5],
    failures: AtomicU64,
    first_failure: Mutex<Option<String>>,
    /// Deliveries reported (acknowledged or failed for good), with a
    /// condition a checkpoint waits on: woken by each report, where
    /// librdkafka's flush polls in steps of up to 100 ms while another
    /// thread serves the reports.
    reported: Mutex<u64>,
    reported_cv: Condvar,
    /// The count a waiting checkpoint needs (`u64::MAX` when none waits):
    /// only the report that reaches it wakes the checkpoint, so that
    /// deliveries cost no wake-up call otherwise.
    wanted: AtomicU64,
}

impl ClientContext for ProduceContext {
    fn error(&self, error: KafkaError, reason: &str) {
        broker_error(&self.metrics, &error, reason);
    }
}

impl ProducerContext for ProduceContext {
    type DeliveryOpaque = Box<Delivery>;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: Box<Delivery>) {
        match result {
            Ok(_) => {
                self.metrics
                    .last_broker_contact_ms
                    .store(now_ms(), Ordering::Relaxed);
                let slot = match *opaque {
                    Delivery::Record {
                        event_time_ms,
                        broker_time_ms,
                    } => {
                        let now = now_ms();
                        self.metrics
                            .latency_event_time
                            .record_us((now - event_time_ms).saturating_mul(1000));
                        if let Some(b) = broker_time_ms {
                            self.metrics
                                .latency_broker_time
                                .record_us((now - b).saturating_mul(1000));
                        }
                        0
                    }
                    Delivery::DeadLetter => 1,
                    Delivery::State => 2,
                    Delivery::Caep => 3,
                    Delivery::Observation => 4,
                };
                self.out_counters[slot].inc();
            }
            Err((e, msg)) => {
                self.failures.fetch_add(1, Ordering::SeqCst);
                error!(error = %e, topic = msg.topic(), "produce failed for good");
                if let Ok(mut first) = self.first_failure.lock()
                    && first.is_none()
                {
                    *first = Some(format!("{} to {}", e, msg.topic()));
                }
            }
        }
        let mut reported = self.reported.lock().unwrap_or_else(|p| p.into_inner());
        *reported += 1;
        if *reported >= self.wanted.load(Ordering::Relaxed) {
            self.reported_cv.notify_all();
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn broker_error(metrics: &Metrics, error: &KafkaError, reason: &str) {
    if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
        metrics.broker_up.store(false, Ordering::Relaxed);
    }
    warn!(%error, reason, "kafka client error");
}

/// Everything the loop and its rebalance callbacks share.
pub(crate) struct LoopContext {
    config: Arc<RunConfig>,
    engine: Arc<LoadedConfig>,
    metrics: Arc<Metrics>,
    sessions: SessionCache,
    producer: ThreadedProducer<ProduceContext>,
    tasks: Mutex<BTreeMap<i32, PartitionTask>>,
    adapter: AdapterOptions,
    shutdown: Arc<AtomicBool>,
    /// A revoke or assign that failed in a callback: the loop stops on it.
    callback_error: Mutex<Option<String>>,
    /// Counters resolved once: decisions by (class, decision), and events
    /// in by input and kind (auth, action, unparsed).
    decision_counters: rustc_hash::FxHashMap<(&'static str, &'static str), Counter>,
    events_in: Vec<[Counter; 3]>,
    /// Input partitions' high watermarks, for cross-topic ordering.
    watermarks: Arc<Watermarks>,
    /// The other instances' attack-source observations, when shared.
    sources: Mutex<Option<SharedSources>>,
    /// Messages handed to the producer, for [`LoopContext::flush`].
    produced: AtomicU64,
}

impl ClientContext for LoopContext {
    /// Consumer lag per input partition, read off librdkafka's statistics
    /// JSON (`topics.*.partitions.*.consumer_lag`) directly, so that a
    /// field the typed statistics do not know cannot lose the rest.
    fn stats_raw(&self, statistics: &[u8]) {
        let Ok(stats) = serde_json::from_slice::<serde_json::Value>(statistics) else {
            warn!("librdkafka statistics are not JSON");
            return;
        };
        let Some(topics) = stats["topics"].as_object() else {
            return;
        };
        for (name, topic) in topics {
            if !self.config.inputs.iter().any(|i| &i.topic == name) {
                continue;
            }
            let Some(partitions) = topic["partitions"].as_object() else {
                continue;
            };
            for (p, part) in partitions {
                let Ok(p) = p.parse::<i32>() else { continue };
                let field = |k: &str| part[k].as_i64().unwrap_or(-1);
                // consumer_lag is -1 when the broker reports no last stable
                // offset (read_committed); then lag from the high watermark.
                let lag = match field("consumer_lag") {
                    l if l >= 0 => l,
                    _ => {
                        let consumed = field("app_offset").max(field("committed_offset"));
                        if field("hi_offset") >= 0 && consumed >= 0 {
                            field("hi_offset") - consumed
                        } else {
                            -1
                        }
                    }
                };
                if p < 0 || lag < 0 {
                    continue;
                }
                self.metrics
                    .consumer_lag
                    .get_or_create(&TopicPartition {
                        topic: name.clone(),
                        partition: p,
                    })
                    .set(lag);
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        broker_error(&self.metrics, &error, reason);
    }
}

impl ConsumerContext for LoopContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let revoked: Vec<i32> = partitions_of(tpl);
                info!(?revoked, "partitions revoked: checkpointing them");
                self.metrics.assigned.store(false, Ordering::Relaxed);
                let mut tasks = self.lock_tasks();
                // Messages fetched and not scored are dropped: their offsets
                // are not committed, so the next owner fetches them again.
                if consumer.assignment_lost() {
                    // Another member may own them already (the group timed
                    // us out, e.g. across a broker outage): write nothing
                    // more for them; the owner re-scores from the last
                    // commit and the changelog.
                    warn!(?revoked, "assignment lost: dropping without a checkpoint");
                } else if let Err(e) = self.checkpoint(&mut tasks, consumer, CommitMode::Sync) {
                    self.fail(format!("checkpoint on revoke: {e}"));
                }
                for p in revoked {
                    tasks.remove(&p);
                }
                self.metrics.partitions.set(tasks.len() as i64);
            }
            Rebalance::Assign(_) => {}
            Rebalance::Error(e) => warn!(error = %e, "rebalance error"),
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let assigned = partitions_of(tpl);
            info!(?assigned, "partitions assigned: restoring their state");
            let mut tasks = self.lock_tasks();
            for p in assigned {
                if tasks.contains_key(&p) {
                    continue;
                }
                match self.restore(p) {
                    Ok(mut task) => {
                        self.set_positions(consumer, &mut task);
                        // What the instance knows of attack sources, so the
                        // partition's engine does too.
                        if let Some(shared) = self.lock_sources().as_ref() {
                            for obs in shared.recent() {
                                task.apply_remote_ip_observation(obs);
                            }
                        }
                        tasks.insert(p, task);
                    }
                    Err(e) => {
                        self.fail(format!("restore of partition {p}: {e}"));
                        return;
                    }
                }
            }
            self.metrics.partitions.set(tasks.len() as i64);
            self.metrics.assigned.store(true, Ordering::Relaxed);
        }
    }
}

/// Partition numbers of a list, once each (the input topics share them).
fn partitions_of(tpl: &TopicPartitionList) -> Vec<i32> {
    let mut ps: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
    ps.sort_unstable();
    ps.dedup();
    ps
}

impl LoopContext {
    fn lock_tasks(&self) -> MutexGuard<'_, BTreeMap<i32, PartitionTask>> {
        // A panic while holding the lock ends the process anyway.
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_sources(&self) -> MutexGuard<'_, Option<SharedSources>> {
        self.sources.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Gives every engine the observations the other instances (and this
    /// one, read back) published since the last call.
    fn apply_shared_sources(&self, tasks: &mut BTreeMap<i32, PartitionTask>) {
        let mut sources = self.lock_sources();
        let Some(shared) = sources.as_mut() else {
            return;
        };
        for obs in shared.take() {
            for task in tasks.values_mut() {
                task.apply_remote_ip_observation(&obs);
            }
        }
    }

    /// Publishes the observations a task's events made.
    fn publish_observations(&self, task: &mut PartitionTask) -> Result<(), String> {
        let topic = &self.config.raw.topics.ip_observations;
        if topic.is_empty() {
            return Ok(());
        }
        for obs in task.drain_ip_observations() {
            let key = obs.key();
            let value = obs.to_bytes();
            self.send(
                BaseRecord::with_opaque_to(topic, Box::new(Delivery::Observation))
                    .key(key.as_bytes())
                    .payload(value.as_slice()),
            )?;
        }
        Ok(())
    }

    fn fail(&self, message: String) {
        error!(%message, "pipeline stopping");
        if let Ok(mut e) = self.callback_error.lock()
            && e.is_none()
        {
            *e = Some(message);
        }
    }

    /// `decisions{class, decision}`, resolved once per pair.
    fn decision_counter(&self, class: &'static str, decision: &'static str) -> Counter {
        if let Some(c) = self.decision_counters.get(&(class, decision)) {
            return c.clone();
        }
        self.metrics
            .decisions
            .get_or_create(&ClassDecision {
                class: class.to_owned(),
                decision: decision.to_owned(),
            })
            .clone()
    }

    /// Tells a new task where each input's messages will start: the
    /// committed offsets (unknown ones stay `None`: the low watermark).
    fn set_positions(&self, consumer: &BaseConsumer<Self>, task: &mut PartitionTask) {
        let mut tpl = TopicPartitionList::new();
        for input in &self.config.inputs {
            tpl.add_partition(&input.topic, task.partition);
        }
        match consumer.committed_offsets(tpl, Duration::from_secs(10)) {
            Ok(committed) => {
                for (i, input) in self.config.inputs.iter().enumerate() {
                    let next = committed
                        .find_partition(&input.topic, task.partition)
                        .and_then(|e| match e.offset() {
                            Offset::Offset(n) => Some(n),
                            _ => None,
                        });
                    task.set_position(i, next);
                }
            }
            Err(e) => warn!(error = %e, partition = task.partition, "committed offsets unknown"),
        }
    }

    /// Reads the changelog partition `p` from its start to its end into a
    /// fresh engine.
    fn restore(&self, p: i32) -> Result<PartitionTask, String> {
        let started = Instant::now();
        let task = PartitionTask::new(p, self.config.inputs.len(), self.engine.engine())
            .follow_sessions(self.config.caep.is_some())
            .shared_sources(!self.config.raw.topics.ip_observations.is_empty());
        let mut cfg = ClientConfig::new();
        for (k, v) in self.config.common_properties() {
            cfg.set(k, v);
        }
        cfg.set(
            "group.id",
            format!("{}.restore", self.config.raw.kafka.group_id),
        )
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
        let reader: BaseConsumer = cfg.create().map_err(|e| e.to_string())?;
        let topic = &self.config.raw.topics.state;
        let (low, high) = reader
            .fetch_watermarks(topic, p, Duration::from_secs(30))
            .map_err(|e| format!("watermarks of {topic}/{p}: {e}"))?;
        let mut task = task;
        let mut applied = 0u64;
        let mut skipped = 0u64;
        if high > low {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(topic, p, Offset::Offset(low))
                .map_err(|e| e.to_string())?;
            reader.assign(&tpl).map_err(|e| e.to_string())?;
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut next = low;
            while next < high {
                if Instant::now() > deadline {
                    return Err(format!("{topic}/{p}: read {next} of {high} in 120 s"));
                }
                match reader.poll(Duration::from_millis(200)) {
                    None => {}
                    Some(Err(e)) => warn!(error = %e, topic, partition = p, "changelog read"),
                    Some(Ok(m)) => {
                        next = m.offset() + 1;
                        let key = m.key().unwrap_or_default();
                        match task.restore(key, m.payload()) {
                            Ok(()) => applied += 1,
                            Err(e) => {
                                skipped += 1;
                                warn!(error = %e, topic, partition = p, offset = m.offset(),
                                      "changelog record skipped");
                            }
                        }
                    }
                }
            }
        }
        info!(
            partition = p,
            applied,
            skipped,
            ms = started.elapsed().as_millis() as u64,
            "state restored"
        );
        Ok(task)
    }

    /// Writes every task's changed state to the changelog, waits until the
    /// broker has acknowledged it and every record produced before it, then
    /// stores and commits the input offsets of the scored messages.
    fn checkpoint(
        &self,
        tasks: &mut BTreeMap<i32, PartitionTask>,
        consumer: &BaseConsumer<LoopContext>,
        mode: CommitMode,
    ) -> Result<(), String> {
        // What the scored events produced (records, dead letters, tokens)
        // is acknowledged before the state that says they were scored: a
        // crash in between re-scores them from the older state, so nothing
        // the state implies is missing.
        self.flush()?;
        let mut offsets = TopicPartitionList::new();
        for task in tasks.values_mut() {
            for (key, value) in task.take_changelog() {
                let record = BaseRecord::with_opaque_to(
                    &self.config.raw.topics.state,
                    Box::new(Delivery::State),
                )
                .key(key.as_bytes())
                .partition(task.partition);
                let record = match &value {
                    Some(v) => record.payload(v.as_slice()),
                    None => record,
                };
                self.send(record)?;
            }
            for (input, offset) in task.take_offsets() {
                offsets
                    .add_partition_offset(
                        &self.config.inputs[input].topic,
                        task.partition,
                        Offset::Offset(offset),
                    )
                    .map_err(|e| e.to_string())?;
            }
        }
        self.flush()?;
        if offsets.count() > 0 {
            consumer
                .store_offsets(&offsets)
                .map_err(|e| format!("storing offsets: {e}"))?;
        }
        match consumer.commit_consumer_state(mode) {
            Ok(()) => {}
            // Nothing stored since the last commit.
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            // The group moved on (a rebalance, our membership timed out):
            // the offsets are not committed and the next owner re-scores
            // from the last commit, duplicates and no loss.
            Err(KafkaError::ConsumerCommit(
                code @ (RDKafkaErrorCode::AssignmentLost
                | RDKafkaErrorCode::RebalanceInProgress
                | RDKafkaErrorCode::IllegalGeneration
                | RDKafkaErrorCode::UnknownMemberId),
            )) => warn!(error = %code, "offsets not committed: the group moved on"),
            Err(e) if matches!(mode, CommitMode::Async) => warn!(error = %e, "async commit"),
            Err(e) => return Err(format!("commit: {e}")),
        }
        self.metrics.checkpoints.inc();
        let (principals, sessions) = tasks.values().fold((0, 0), |(p, s), t| {
            let st = t.engine().stats();
            (p + st.principals, s + st.sessions)
        });
        self.metrics.principals.set(principals as i64);
        self.metrics.sessions.set(sessions as i64);
        Ok(())
    }

    /// Sends one message, waiting while librdkafka's queue is full.
    fn send<'a>(
        &self,
        mut record: BaseRecord<'a, [u8], [u8], Box<Delivery>>,
    ) -> Result<(), String> {
        loop {
            match self.producer.send(record) {
                Ok(()) => {
                    self.produced.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, r)) => return Err(format!("produce to {}: {e}", r.topic)),
            }
        }
    }

    /// Waits for every produced message to be acknowledged. While the
    /// brokers are away this waits (librdkafka retries until
    /// `message.timeout.ms`); a delivery that failed for good is an error.
    fn flush(&self) -> Result<(), String> {
        let started = Instant::now();
        let produced = self.produced.load(Ordering::Relaxed);
        let ctx = self.producer.context();
        let mut reported = ctx.reported.lock().unwrap_or_else(|p| p.into_inner());
        // Set under the lock: a report either sees it or was counted
        // before the check below.
        ctx.wanted.store(produced, Ordering::Relaxed);
        while *reported < produced {
            let (guard, timeout) = ctx
                .reported_cv
                .wait_timeout(reported, Duration::from_millis(500))
                .unwrap_or_else(|p| p.into_inner());
            reported = guard;
            if timeout.timed_out() {
                if started.elapsed() > Duration::from_secs(5) {
                    debug!(
                        in_flight = produced - *reported,
                        waited_s = started.elapsed().as_secs(),
                        "waiting for the broker to acknowledge"
                    );
                }
                if self.shutdown.load(Ordering::Relaxed)
                    && started.elapsed() > self.config.shutdown_deadline
                {
                    return Err("shutdown deadline passed with messages unacknowledged".to_owned());
                }
            }
        }
        ctx.wanted.store(u64::MAX, Ordering::Relaxed);
        drop(reported);
        let failures = self.producer.context().failures.load(Ordering::SeqCst);
        if failures > 0 {
            let first = self
                .producer
                .context()
                .first_failure
                .lock()
                .ok()
                .and_then(|f| f.clone())
                .unwrap_or_default();
            return Err(format!(
                "{failures} messages could not be delivered, first: {first}"
            ));
        }
        Ok(())
    }

    /// Produces what one message came to.
    fn emit(
        &self,
        partition: i32,
        pending: &Pending,
        outcomes: Vec<Outcome>,
    ) -> Result<(), String> {
        let topics = &self.config.raw.topics;
        let source_topic = &self.config.inputs[pending.input].topic;
        for outcome in outcomes {
            match outcome {
                Outcome::Record {
                    event_time,
                    record,
                    previous,
                } => {
                    let json = serde_json::to_vec(&*record).map_err(|e| e.to_string())?;
                    self.decision_counter(
                        record.trigger.sensitivity.as_str(),
                        record.decision.as_str(),
                    )
                    .inc();
                    let delivery = Delivery::Record {
                        event_time_ms: event_time.millis(),
                        broker_time_ms: pending.broker_time_ms,
                    };
                    self.send(
                        BaseRecord::with_opaque_to(&topics.risk, Box::new(delivery))
                            .key(record.session.as_bytes())
                            .payload(json.as_slice()),
                    )?;
                    self.sessions.insert(&record.session, record.seq, json);
                    if let Some(caep) = &self.config.caep {
                        let previous = previous.map(SessionMark::from);
                        let tokens = session_tokens(&caep.signer, previous.as_ref(), &record)
                            .map_err(|e| e.to_string())?;
                        for token in tokens {
                            self.send(
                                BaseRecord::with_opaque_to(&topics.caep, Box::new(Delivery::Caep))
                                    .key(record.session.as_bytes())
                                    .payload(token.as_bytes()),
                            )?;
                        }
                    }
                }
                Outcome::Reject {
                    reason,
                    field,
                    detail,
                } => {
                    self.metrics
                        .rejects
                        .get_or_create(&Reason {
                            reason: reason.to_owned(),
                        })
                        .inc();
                    let partition_s = partition.to_string();
                    let offset_s = pending.offset.to_string();
                    let mut headers = OwnedHeaders::new()
                        .insert(Header {
                            key: "error",
                            value: Some(reason),
                        })
                        .insert(Header {
                            key: "source.topic",
                            value: Some(source_topic.as_str()),
                        })
                        .insert(Header {
                            key: "source.partition",
                            value: Some(partition_s.as_str()),
                        })
                        .insert(Header {
                            key: "source.offset",
                            value: Some(offset_s.as_str()),
                        })
                        .insert(Header {
                            key: "error.detail",
                            value: Some(detail.as_str()),
                        });
                    if let Some(f) = &field {
                        headers = headers.insert(Header {
                            key: "error.field",
                            value: Some(f.as_str()),
                        });
                    }
                    debug!(reason, detail, topic = %source_topic, partition, offset = pending.offset,
                           "input dead-lettered");
                    let mut record =
                        BaseRecord::with_opaque_to(&topics.dlq, Box::new(Delivery::DeadLetter))
                            .payload(pending.payload.as_slice())
                            .headers(headers);
                    if let Some(k) = &pending.key {
                        record = record.key(k.as_slice());
                    }
                    self.send(record)?;
                }
            }
        }
        Ok(())
    }
}

/// Scores what may go now in every task. Returns the earliest time a held message may go.
fn drain(
    ctx: &LoopContext,
    tasks: &mut BTreeMap<i32, PartitionTask>,
) -> Result<Option<Instant>, String> {
    let now = Instant::now();
    let idle = ctx.config.max_task_idle;
    let mut next = None::<Instant>;
    for task in tasks.values_mut() {
        let partition = task.partition;
        let mut caught_up = |input: usize, next: Option<i64>, since: Instant| -> bool {
            match ctx.watermarks.get(input, partition, since) {
                Reading::Known(low, high) => next.unwrap_or(low) >= high,
                Reading::Unknown => true,
                Reading::Pending => false,
            }
        };
        let forced = task.out_of_order;
        while let Some(mut pending) = task.next_ready(now, idle, &mut caught_up) {
            let outcomes = task.score(&mut pending);
            ctx.emit(task.partition, &pending, outcomes)?;
            ctx.publish_observations(task)?;
        }
        if task.out_of_order > forced {
            warn!(
                partition,
                released = task.out_of_order - forced,
                "scored without waiting longer for an earlier event the broker holds on another input topic"
            );
        }
        if let Some(d) = task.deadline(now, idle) {
            next = Some(next.map_or(d, |n: Instant| n.min(d)));
        }
    }
    Ok(next)
}

/// Asks the cluster for metadata every second, on its own client and
/// thread, and records whether it answered within two seconds: the
/// readiness signal. librdkafka's own broker state is no good for this: a
/// broker that hangs (a partition, a paused process) keeps its TCP
/// connection and stays "UP" until `socket.timeout.ms`, a minute.
pub(crate) fn watch_brokers(
    config: &RunConfig,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, RunError> {
    let mut cfg = ClientConfig::new();
    for (k, v) in config.common_properties() {
        cfg.set(k, v);
    }
    let probe: rdkafka::producer::BaseProducer = cfg
        .create()
        .map_err(|e| RunError::Kafka(format!("probe client: {e}")))?;
    let topic = config.inputs[0].topic.clone();
    std::thread::Builder::new()
        .name("broker-probe".to_owned())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let up = probe
                    .client()
                    .fetch_metadata(Some(&topic), Duration::from_secs(2))
                    .is_ok();
                if up != metrics.broker_up.swap(up, Ordering::Relaxed) {
                    if up {
                        info!("brokers answer again");
                    } else {
                        warn!("brokers do not answer: not ready");
                    }
                }
                if up {
                    metrics
                        .last_broker_contact_ms
                        .store(now_ms(), Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_secs(1).saturating_sub(started.elapsed()));
            }
        })
        .map_err(|e| RunError::Kafka(format!("probe thread: {e}")))
}

/// Builds the consumer and producer and runs until `shutdown` is set, then
/// drains, checkpoints and commits. Blocking: run it on its own thread.
pub(crate) fn run_loop(
    config: Arc<RunConfig>,
    engine: Arc<LoadedConfig>,
    metrics: Arc<Metrics>,
    sessions: SessionCache,
    shutdown: Arc<AtomicBool>,
    partitions: i32,
    source_lookback: Duration,
) -> Result<(), RunError> {
    let topics = &config.raw.topics;
    let mut producer_cfg = ClientConfig::new();
    for (k, v) in config.common_properties() {
        producer_cfg.set(k, v);
    }
    producer_cfg
        // Records of one session keep their order through retries.
        .set("enable.idempotence", "true")
        // Small batches: latency matters more than a few % of throughput.
        .set("linger.ms", "2")
        // Rides out a broker outage of several minutes before a delivery
        // fails for good (the loop then stops without committing).
        .set("message.timeout.ms", "600000");
    for (k, v) in &config.raw.kafka.producer {
        producer_cfg.set(k, v);
    }
    let out_counter = |topic: &str, kind: &str| {
        metrics
            .messages_out
            .get_or_create(&TopicKind {
                topic: topic.to_owned(),
                kind: kind.to_owned(),
            })
            .clone()
    };
    let out_counters = [
        out_counter(&topics.risk, "record"),
        out_counter(&topics.dlq, "dlq"),
        out_counter(&topics.state, "state"),
        out_counter(&topics.caep, "caep"),
        out_counter(&topics.ip_observations, "ip_observation"),
    ];
    let producer: ThreadedProducer<ProduceContext> = producer_cfg
        .create_with_context(ProduceContext {
            out_counters,
            metrics: Arc::clone(&metrics),
            failures: AtomicU64::new(0),
            reported: Mutex::new(0),
            reported_cv: Condvar::new(),
            wanted: AtomicU64::new(u64::MAX),
            first_failure: Mutex::new(None),
        })
        .map_err(|e| RunError::Kafka(format!("producer: {e}")))?;

    let mut consumer_cfg = ClientConfig::new();
    for (k, v) in config.common_properties() {
        consumer_cfg.set(k, v);
    }
    consumer_cfg
        .set("auto.offset.reset", "earliest")
        .set("statistics.interval.ms", "1000");
    for (k, v) in &config.raw.kafka.consumer {
        consumer_cfg.set(k, v);
    }
    consumer_cfg
        .set("group.id", &config.raw.kafka.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // Eager assignment: on a rebalance every partition is revoked
        // (checkpointed and dropped) before any is assigned (restored).
        .set("partition.assignment.strategy", "range");
    let mut wm_cfg = ClientConfig::new();
    for (k, v) in config.common_properties() {
        wm_cfg.set(k, v);
    }
    let watermark_client: BaseConsumer = wm_cfg
        .set(
            "group.id",
            format!("{}.watermarks", config.raw.kafka.group_id),
        )
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| RunError::Kafka(format!("watermark client: {e}")))?;
    let watermarks = Arc::new(Watermarks::default());
    let reader = {
        let (w, stop) = (Arc::clone(&watermarks), Arc::clone(&shutdown));
        let topics = config.inputs.iter().map(|i| i.topic.clone()).collect();
        std::thread::Builder::new()
            .name("watermarks".to_owned())
            .spawn(move || w.read_loop(watermark_client, topics, partitions, stop))
            .map_err(|e| RunError::Kafka(format!("watermark thread: {e}")))?
    };
    let mut decision_counters = rustc_hash::FxHashMap::default();
    for class in ["low", "medium", "high", "critical"] {
        for decision in ["allow", "step_up", "deny"] {
            let c = metrics
                .decisions
                .get_or_create(&ClassDecision {
                    class: class.to_owned(),
                    decision: decision.to_owned(),
                })
                .clone();
            decision_counters.insert((class, decision), c);
        }
    }
    let events_in = config
        .inputs
        .iter()
        .map(|i| {
            ["auth", "action", "unparsed"].map(|kind| {
                metrics
                    .events_in
                    .get_or_create(&TopicKind {
                        topic: i.topic.clone(),
                        kind: kind.to_owned(),
                    })
                    .clone()
            })
        })
        .collect();
    let shared_sources = if topics.ip_observations.is_empty() {
        None
    } else {
        let (shared, _reader) = sources::start(
            &config,
            Arc::clone(&metrics),
            Arc::clone(&shutdown),
            source_lookback,
        )?;
        Some(shared)
    };
    let ctx = LoopContext {
        sources: Mutex::new(shared_sources),
        produced: AtomicU64::new(0),
        decision_counters,
        events_in,
        watermarks: Arc::clone(&watermarks),
        config: Arc::clone(&config),
        engine,
        metrics: Arc::clone(&metrics),
        sessions,
        producer,
        tasks: Mutex::new(BTreeMap::new()),
        adapter: AdapterOptions {
            tenant: config.tenant.clone(),
        },
        shutdown: Arc::clone(&shutdown),
        callback_error: Mutex::new(None),
    };
    let consumer: BaseConsumer<LoopContext> = consumer_cfg
        .create_with_context(ctx)
        .map_err(|e| RunError::Kafka(format!("consumer: {e}")))?;
    let input_names: Vec<&str> = config.inputs.iter().map(|i| i.topic.as_str()).collect();
    consumer
        .subscribe(&input_names)
        .map_err(|e| RunError::Kafka(format!("subscribe: {e}")))?;
    metrics.started.store(true, Ordering::Relaxed);
    info!(inputs = ?input_names, group = %config.raw.kafka.group_id, "consuming");

    let limits = ParseLimits {
        max_bytes: config.max_event_bytes,
    };
    let mut last_checkpoint = Instant::now();
    let mut next_deadline: Option<Instant> = None;
    let result: Result<(), String> = loop {
        if shutdown.load(Ordering::Relaxed) {
            break Ok(());
        }
        if let Some(e) = consumer
            .context()
            .callback_error
            .lock()
            .ok()
            .and_then(|e| e.clone())
        {
            break Err(e);
        }
        let wait = match next_deadline {
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100)),
            None => Duration::from_millis(100),
        };
        match consumer.poll(wait) {
            None => {}
            Some(Err(e)) => {
                if e.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) {
                    break Err(format!("consumer: {e}"));
                }
                warn!(error = %e, "consume error (librdkafka retries)");
                continue;
            }
            Some(Ok(m)) => {
                let Some(input) = config.inputs.iter().position(|i| i.topic == m.topic()) else {
                    continue;
                };
                let pending = Pending::parse(
                    input,
                    config.inputs[input].format,
                    m.offset(),
                    m.key(),
                    m.payload(),
                    m.timestamp().to_millis(),
                    Instant::now(),
                    limits,
                    &consumer.context().adapter,
                );
                let kind = pending
                    .items
                    .iter()
                    .find_map(|i| i.as_ref().ok().map(|e| e.kind()))
                    .map_or(2, |k| usize::from(k != riskstream_schemas::EventKind::Auth));
                consumer.context().events_in[input][kind].inc();
                let partition = m.partition();
                drop(m);
                let mut tasks = consumer.context().lock_tasks();
                match tasks.get_mut(&partition) {
                    Some(task) => task.push(pending),
                    // Fetched just before its partition was revoked.
                    None => debug!(partition, "message of a partition not owned"),
                }
            }
        }
        let ctx = consumer.context();
        let mut tasks = ctx.lock_tasks();
        ctx.apply_shared_sources(&mut tasks);
        match drain(ctx, &mut tasks) {
            Ok(d) => next_deadline = d,
            Err(e) => break Err(e),
        }
        if last_checkpoint.elapsed() >= config.commit_interval {
            if let Err(e) = ctx.checkpoint(&mut tasks, &consumer, CommitMode::Async) {
                break Err(e);
            }
            last_checkpoint = Instant::now();
        }
    };
    shutdown.store(true, Ordering::Relaxed);
    let _ = reader.join();
    match result {
        Ok(()) => {
            info!("shutting down: draining and committing");
            let ctx = consumer.context();
            let mut tasks = ctx.lock_tasks();
            // What may go in order goes; what waits for an earlier event
            // still on the broker is left unscored and uncommitted, for the
            // next owner of its partition.
            drain(ctx, &mut tasks).map_err(RunError::Kafka)?;
            ctx.checkpoint(&mut tasks, &consumer, CommitMode::Sync)
                .map_err(RunError::Kafka)?;
            drop(tasks);
            consumer.unsubscribe();
            info!("committed; stopped");
            Ok(())
        }
        Err(e) => {
            error!(error = %e, "pipeline stopped without committing; a restart resumes from the last commit");
            Err(RunError::Kafka(e))
        }
    }
}
