//! High watermarks of the input partitions, for ordering across input
//! topics, read on a thread of their own so that the Kafka loop never
//! waits on a network round trip.
//!
//! The loop asks "what did the broker hold after time T?" (T: when the
//! waiting event arrived). If the last reading started after T it answers
//! at once; otherwise it wakes the reader and answers "not yet", and the
//! loop looks again a few milliseconds later. One reading covers every
//! input partition, so a busy pipeline costs one round of queries per wait,
//! not one per event.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use tracing::debug;

/// What the reader knows of one input partition.
pub(crate) enum Reading {
    /// (low, high), read after the time asked about.
    Known(i64, i64),
    /// The broker did not answer for it: do not hold events back on it.
    Unknown,
    /// No reading after the time asked about yet: look again shortly.
    Pending,
}

#[derive(Default)]
struct State {
    wanted: bool,
    started: Option<Instant>,
    highs: HashMap<(usize, i32), (i64, i64)>,
}

/// The shared readings and the reader's wake-up.
#[derive(Default)]
pub(crate) struct Watermarks {
    state: Mutex<State>,
    wake: Condvar,
}

impl Watermarks {
    /// Watermarks of `input`'s `partition` as read after `since`.
    pub(crate) fn get(&self, input: usize, partition: i32, since: Instant) -> Reading {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.started.is_some_and(|t| t >= since) {
            return match s.highs.get(&(input, partition)) {
                Some(&(low, high)) => Reading::Known(low, high),
                None => Reading::Unknown,
            };
        }
        if !s.wanted {
            s.wanted = true;
            self.wake.notify_one();
        }
        Reading::Pending
    }

    /// The reader: one round of queries each time a reading is wanted,
    /// until `stop`.
    pub(crate) fn read_loop(
        &self,
        client: BaseConsumer,
        topics: Vec<String>,
        partitions: i32,
        stop: Arc<AtomicBool>,
    ) {
        loop {
            {
                let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
                while !s.wanted {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    s = self
                        .wake
                        .wait_timeout(s, Duration::from_millis(100))
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                s.wanted = false;
            }
            let started = Instant::now();
            let highs = read_watermarks(&client, &topics, partitions);
            debug!(
                partitions = highs.len(),
                ms = started.elapsed().as_millis() as u64,
                "watermarks read"
            );
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            s.highs = highs;
            s.started = Some(started);
        }
    }
}

/// Every input partition's (low, high) watermarks, in two requests to each
/// partition leader: ListOffsets for the latest offsets (`Offset::End`,
/// Kafka's timestamp -1) and for the earliest (`Offset::Beginning`, -2),
/// each covering all partitions. `fetch_watermarks` asks for one
/// partition's two ends per call: 24 sequential round trips for 2 topics
/// of 6 partitions, each a request the broker serves, while an event waits
/// for the reading. A partition the broker did not answer for is left out
/// (`Unknown`).
fn read_watermarks(
    client: &BaseConsumer,
    topics: &[String],
    partitions: i32,
) -> HashMap<(usize, i32), (i64, i64)> {
    let ask = |at: Offset| -> Option<TopicPartitionList> {
        let mut tpl = TopicPartitionList::new();
        for topic in topics {
            for p in 0..partitions {
                tpl.add_partition_offset(topic, p, at).ok()?;
            }
        }
        match client.offsets_for_times(tpl, Duration::from_secs(1)) {
            Ok(tpl) => Some(tpl),
            Err(e) => {
                debug!(error = %e, "watermarks unknown");
                None
            }
        }
    };
    let mut out = HashMap::new();
    let (Some(highs), Some(lows)) = (ask(Offset::End), ask(Offset::Beginning)) else {
        return out;
    };
    let offset = |tpl: &TopicPartitionList, topic: &str, p: i32| -> Option<i64> {
        let e = tpl.find_partition(topic, p)?;
        if let Err(err) = e.error() {
            debug!(error = %err, topic, partition = p, "watermark unknown");
            return None;
        }
        match e.offset() {
            Offset::Offset(o) if o >= 0 => Some(o),
            _ => None,
        }
    };
    for (input, topic) in topics.iter().enumerate() {
        for p in 0..partitions {
            if let (Some(low), Some(high)) = (offset(&lows, topic, p), offset(&highs, topic, p)) {
                out.insert((input, p), (low, high));
            }
        }
    }
    out
}
