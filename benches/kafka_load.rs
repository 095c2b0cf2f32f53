//! Load tool for `riskstream run` through a broker: produces contract
//! events from a file at a fixed rate (or as fast as it can) and reads the
//! risk records back, measuring end-to-end latency (event produced ->
//! record consumed, per trigger event id) in an hdrhistogram and the
//! sustained rate of records.
//!
//! ```text
//! cargo bench -p riskstream --bench kafka_load -- \
//!     --brokers 127.0.0.1:9092 --events w.jsonl [--rate 25000] [--limit N] [--single-topic T]
//!     [--broker-only]
//! ```
//!
//! The pipeline (`riskstream run`) must be running against the same
//! broker. Without `--rate`, events are produced as fast as the broker
//! takes them and the figure that matters is the record rate.
//!
//! `--broker-only` (with `--single-topic T`) measures the broker alone,
//! the floor under the pipeline's figures: no pipeline runs, and the tool
//! reads its own events back from `T` (created with 3 partitions if
//! missing) with the same clients and settings. The pipeline's path has
//! two such hops (event in, record out), plus its own work.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

#[derive(serde::Deserialize)]
struct RecordId<'a> {
    #[serde(borrow)]
    trigger: TriggerId<'a>,
}

#[derive(serde::Deserialize)]
struct TriggerId<'a> {
    event_id: &'a str,
}

/// An input event's id, read back in `--broker-only` mode.
#[derive(serde::Deserialize)]
struct EventId<'a> {
    id: &'a str,
}

struct Args {
    brokers: String,
    events: String,
    rate: Option<u64>,
    limit: Option<usize>,
    /// Every event to this one topic (a pipeline configured with it as its
    /// only input), instead of auth and action events to their topics.
    single_topic: Option<&'static str>,
    /// Read the events back from `single_topic`, with no pipeline.
    broker_only: bool,
}

fn args() -> Args {
    let mut a = Args {
        brokers: "127.0.0.1:9092".into(),
        events: String::new(),
        rate: None,
        limit: None,
        single_topic: None,
        broker_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--brokers" => a.brokers = it.next().unwrap(),
            "--events" => a.events = it.next().unwrap(),
            "--rate" => a.rate = Some(it.next().unwrap().parse().unwrap()),
            "--limit" => a.limit = Some(it.next().unwrap().parse().unwrap()),
            "--single-topic" => a.single_topic = Some(it.next().unwrap().leak()),
            "--broker-only" => a.broker_only = true,
            // cargo bench passes --bench
            _ => {}
        }
    }
    a
}

fn main() {
    let a = args();
    if a.events.is_empty() {
        eprintln!("kafka_load: --events FILE is required (and a running `riskstream run`)");
        return;
    }
    let text = std::fs::read_to_string(&a.events).unwrap();
    let mut events: Vec<(&'static str, String, String, &str)> = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty())
        .take(a.limit.unwrap_or(usize::MAX))
    {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let topic = if let Some(t) = a.single_topic {
            t
        } else if v["kind"] == "auth" {
            "auth-events"
        } else {
            "action-events"
        };
        events.push((
            topic,
            v["principal"]["id"].as_str().unwrap().to_owned(),
            v["id"].as_str().unwrap().to_owned(),
            line,
        ));
    }
    let n = events.len();
    let read_topic = if a.broker_only {
        let topic = a
            .single_topic
            .expect("--broker-only reads back its --single-topic");
        ensure_topic(&a.brokers, topic);
        topic
    } else {
        "session-risk"
    };

    // Read the records (or, broker only, the events) from the current end.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &a.brokers)
        .set("group.id", "kafka-load")
        .set("enable.auto.commit", "false")
        .set(
            "fetch.wait.max.ms",
            std::env::var("KAFKA_LOAD_FETCH_WAIT_MS").unwrap_or_else(|_| "100".into()),
        )
        .create()
        .unwrap();
    let md = consumer
        .fetch_metadata(Some(read_topic), Duration::from_secs(10))
        .unwrap();
    let partitions = md.topics()[0].partitions().len() as i32;
    assert!(
        partitions > 0,
        "session-risk does not exist: is `riskstream run` up?"
    );
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        let (_, high) = consumer
            .fetch_watermarks(read_topic, p, Duration::from_secs(10))
            .unwrap();
        tpl.add_partition_offset(read_topic, p, Offset::Offset(high))
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();

    let sent: Arc<Mutex<HashMap<String, Instant>>> =
        Arc::new(Mutex::new(HashMap::with_capacity(n)));
    let done = Arc::new(AtomicBool::new(false));
    let broker_only = a.broker_only;
    let reader = {
        let sent = Arc::clone(&sent);
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).unwrap();
            let mut first: Option<Instant> = None;
            let mut last = Instant::now();
            let mut seen = std::collections::HashSet::with_capacity(n);
            let mut idle_since = Instant::now();
            while seen.len() < n
                && !(done.load(Ordering::Relaxed) && idle_since.elapsed() > Duration::from_secs(30))
            {
                let Some(m) = consumer.poll(Duration::from_millis(50)) else {
                    continue;
                };
                let m = m.unwrap();
                let now = Instant::now();
                idle_since = now;
                // Only the trigger's id: a typed borrow skips the rest of
                // the record without building it, so the reader keeps up.
                let payload = m.payload().unwrap();
                let id = if broker_only {
                    serde_json::from_slice::<EventId<'_>>(payload).unwrap().id
                } else {
                    serde_json::from_slice::<RecordId<'_>>(payload)
                        .unwrap()
                        .trigger
                        .event_id
                };
                if !seen.insert(id.to_owned()) {
                    continue;
                }
                if let Some(t) = sent.lock().unwrap().get(id) {
                    hist.record(now.duration_since(*t).as_micros().max(1) as u64)
                        .unwrap();
                }
                first.get_or_insert(now);
                last = now;
            }
            (hist, first, last, seen.len())
        })
    };

    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &a.brokers)
        // An IdP forwarder batches for a few ms, as librdkafka's default
        // (KAFKA_LOAD_LINGER_MS sets another).
        .set(
            "linger.ms",
            std::env::var("KAFKA_LOAD_LINGER_MS").unwrap_or_else(|_| "5".into()),
        )
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    let started = Instant::now();
    for (i, (topic, key, id, line)) in events.iter().enumerate() {
        if let Some(rate) = a.rate {
            let due = started + Duration::from_nanos(i as u64 * 1_000_000_000 / rate);
            // Sleep, never spin: a load tool that spins a whole core
            // starves the broker and the pipeline on a small machine. The
            // timer's slack (~0.1 ms) makes small bursts, no drift: the
            // schedule is absolute.
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        sent.lock().unwrap().insert(id.clone(), Instant::now());
        let mut rec = BaseRecord::<str, str>::to(topic)
            .key(key.as_str())
            .payload(*line);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(120)).unwrap();
    let produce_s = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let (hist, first, last, scored) = reader.join().unwrap();
    let span = first.map_or(0.0, |f| last.duration_since(started.min(f)).as_secs_f64());
    println!(
        "events: {n}, produced in {produce_s:.2} s ({:.0}/s)",
        n as f64 / produce_s
    );
    println!(
        "records: {scored} distinct, last one {span:.2} s after the first event was produced: {:.0} events/s end to end",
        scored as f64 / span.max(1e-9)
    );
    println!(
        "latency produced -> record consumed: p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms, max {:.2} ms",
        hist.value_at_quantile(0.5) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
        hist.value_at_quantile(0.999) as f64 / 1000.0,
        hist.max() as f64 / 1000.0
    );
    if scored < n {
        eprintln!("kafka_load: only {scored} of {n} events got a record");
        std::process::exit(1);
    }
}

/// Creates `topic` with 3 partitions, as `riskstream run` creates its
/// inputs; an existing one is left as it is.
fn ensure_topic(brokers: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let new = NewTopic::new(topic, 3, TopicReplication::Fixed(1));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // An existing topic is fine.
    let _ = rt.block_on(admin.create_topics([&new], &AdminOptions::new()));
}
