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
            let mut highs = HashMap::new();
            for (input, topic) in topics.iter().enumerate() {
                for p in 0..partitions {
                    match client.fetch_watermarks(topic, p, Duration::from_secs(1)) {
                        Ok(w) => {
                            highs.insert((input, p), w);
                        }
                        Err(e) => debug!(error = %e, topic, partition = p, "watermarks unknown"),
                    }
                }
            }
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            s.highs = highs;
            s.started = Some(started);
        }
    }
}
