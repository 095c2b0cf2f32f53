//! Helpers for the tests against a real broker: nisshi on 127.0.0.1,
//! started and stopped through `scripts/broker.sh`, the `riskstream`
//! binary as a child process, and independent rdkafka clients.
//!
//! Without nisshi installed the tests skip with a message, unless
//! `RISKSTREAM_REQUIRE_BROKER=1` (set by `scripts/test.sh`, the README's
//! test command), which makes a missing broker a failure.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn broker_script() -> PathBuf {
    workspace().join("scripts/broker.sh")
}

/// A fresh directory under the system temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let d = std::env::temp_dir().join(format!("riskstream-{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Whether nisshi is there; when it is not, whether that fails the test.
pub fn broker_available(test: &str) -> bool {
    let found = Command::new(broker_script())
        .arg("path")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var("RISKSTREAM_REQUIRE_BROKER").as_deref() == Ok("1") {
            panic!("{test}: nisshi is not installed and RISKSTREAM_REQUIRE_BROKER=1");
        }
        eprintln!("{test}: skipped: nisshi is not installed (scripts/broker.sh install)");
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A nisshi broker of this test's own.
pub struct Broker {
    pub port: u16,
    dir: PathBuf,
}

impl Broker {
    pub fn start() -> Broker {
        let port = free_port();
        let dir = temp_dir("broker");
        let status = Command::new(broker_script())
            .args(["start", &port.to_string()])
            .env("RISKSTREAM_BROKER_DIR", &dir)
            .status()
            .unwrap();
        assert!(status.success(), "scripts/broker.sh start {port} failed");
        Broker { port, dir }
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("nisshi-{}.pid", self.port)))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// Freezes the broker (SIGSTOP): connections stay open and nothing
    /// answers, as in a network partition.
    pub fn pause(&self) {
        assert!(
            Command::new("kill")
                .args(["-STOP", &self.pid()])
                .status()
                .unwrap()
                .success()
        );
    }

    /// Thaws it (SIGCONT).
    pub fn resume(&self) {
        assert!(
            Command::new("kill")
                .args(["-CONT", &self.pid()])
                .status()
                .unwrap()
                .success()
        );
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.pid()]).status();
        let _ = Command::new(broker_script())
            .args(["stop", &self.port.to_string()])
            .env("RISKSTREAM_BROKER_DIR", &self.dir)
            .status();
    }
}

/// A `riskstream run` process.
pub struct Pipeline {
    pub child: Child,
    pub http_port: u16,
    pub log: PathBuf,
}

impl Pipeline {
    /// Starts `riskstream run` on `broker` with the given TOML appended to a
    /// base configuration (2-second commits, a 6-second session timeout so
    /// that a killed member leaves the group quickly).
    pub fn start(name: &str, brokers: &str, extra_toml: &str) -> Pipeline {
        // Records are compared with a replay of each partition alone, so
        // the engines see only their own partition's attack sources.
        Pipeline::start_with(name, brokers, extra_toml, "")
    }

    /// [`Pipeline::start`] with `topics.ip_observations` set: the engines
    /// share attack sources across partitions and instances.
    pub fn start_with(
        name: &str,
        brokers: &str,
        extra_toml: &str,
        ip_observations: &str,
    ) -> Pipeline {
        let dir = temp_dir(name);
        let http_port = free_port();
        let config = format!(
            r#"
[kafka]
brokers = "{brokers}"
group_id = "riskstream-test"
[kafka.consumer]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"
[http]
listen = "127.0.0.1:{http_port}"
[topics]
partitions = 3
ip_observations = "{ip_observations}"
[pipeline]
commit_interval_ms = 200
{extra_toml}
"#
        );
        let path = dir.join("riskstream.toml");
        std::fs::write(&path, config).unwrap();
        let log = dir.join("riskstream.log");
        let child = Command::new(env!("CARGO_BIN_EXE_riskstream"))
            .args(["run", "--config"])
            .arg(&path)
            .env("RISKSTREAM_LOG", "info,librdkafka=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Pipeline {
            child,
            http_port,
            log,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET a path of its HTTP endpoint: (status, body).
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.http_port, path)
    }

    pub fn wait_ready(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if let Some((200, _)) = self.get("/readyz") {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("riskstream exited with {status}:\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "not ready in {within:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, then the exit status within `within`.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "no exit {within:?} after SIGTERM:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

/// Delivery reports of the test producer: (index, partition, offset).
struct Reports(Mutex<Vec<(usize, i32, i64)>>);

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<usize>;
    fn delivery(&self, result: &DeliveryResult<'_>, opaque: Box<usize>) {
        let m = result.as_ref().expect("test produce failed");
        self.0
            .lock()
            .unwrap()
            .push((*opaque, m.partition(), m.offset()));
    }
}

/// One message to produce.
pub struct Outgoing {
    pub topic: String,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// An independent producer (the default partitioner, like any client).
pub struct TestProducer(ThreadedProducer<Reports>);

impl TestProducer {
    pub fn new(brokers: &str) -> TestProducer {
        let p = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("linger.ms", "0")
            .create_with_context(Reports(Mutex::new(Vec::new())))
            .unwrap();
        TestProducer(p)
    }

    /// Sends `msgs[range]`, at most `rate` a second when given, each one
    /// acknowledged before the next is sent: the broker then holds them in
    /// the order given across topics and partitions, as one ordered source
    /// would write them. (Batched sends may land out of order across
    /// partitions, and no consumer can then recover the source's order.)
    pub fn send(&self, msgs: &[Outgoing], range: std::ops::Range<usize>, rate: Option<u64>) {
        let started = Instant::now();
        for (n, i) in range.enumerate() {
            let m = &msgs[i];
            let mut rec = BaseRecord::with_opaque_to(&m.topic, Box::new(i))
                .key(&m.key)
                .payload(&m.value);
            loop {
                match self.0.send(rec) {
                    Ok(()) => {
                        self.wait_delivered(i);
                        break;
                    }
                    Err((_, r)) => {
                        rec = r;
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
            }
            if let Some(rate) = rate {
                let due = started + Duration::from_micros(n as u64 * 1_000_000 / rate);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        }
        self.0.flush(Duration::from_secs(60)).unwrap();
    }

    fn wait_delivered(&self, index: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self
            .0
            .context()
            .0
            .lock()
            .unwrap()
            .iter()
            .rev()
            .take(4)
            .any(|(i, _, _)| *i == index)
        {
            assert!(
                Instant::now() < deadline,
                "message {index} not acknowledged in 30 s"
            );
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// Partition of each message sent so far, by index.
    pub fn partitions(&self) -> HashMap<usize, i32> {
        self.0
            .context()
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|(i, p, _)| (*i, *p))
            .collect()
    }
}

/// A consumed message.
#[derive(Debug, Clone)]
pub struct Consumed {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: BTreeMap<String, String>,
    pub partition: i32,
    pub offset: i64,
}

/// An independent reader of a whole topic (no group).
pub struct TestConsumer {
    consumer: BaseConsumer,
    pub messages: Vec<Consumed>,
    /// Distinct `trigger.event_id`s among the messages (risk records).
    pub events: std::collections::HashSet<String>,
}

impl TestConsumer {
    pub fn new(brokers: &str, topic: &str) -> TestConsumer {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", "test-reader")
            .set("fetch.wait.max.ms", "10")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let partitions = loop {
            let md = consumer
                .fetch_metadata(Some(topic), Duration::from_secs(5))
                .unwrap();
            let n = md.topics().first().map_or(0, |t| t.partitions().len());
            if n > 0 {
                break n;
            }
            assert!(Instant::now() < deadline, "topic {topic} never appeared");
            std::thread::sleep(Duration::from_millis(200));
        };
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions as i32 {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&tpl).unwrap();
        TestConsumer {
            consumer,
            messages: Vec::new(),
            events: std::collections::HashSet::new(),
        }
    }

    /// Per partition: (messages read, last offset read, high watermark).
    pub fn progress(&self, topic: &str) -> Vec<(i32, usize, i64, i64)> {
        let mut out = Vec::new();
        for p in 0..8 {
            let Ok((_, high)) = self
                .consumer
                .fetch_watermarks(topic, p, Duration::from_secs(5))
            else {
                break;
            };
            let read: Vec<&Consumed> = self.messages.iter().filter(|m| m.partition == p).collect();
            out.push((p, read.len(), read.last().map_or(-1, |m| m.offset), high));
        }
        out
    }

    /// Reads until `done(&messages)` or `within` passes; returns whether
    /// `done` held.
    pub fn read_until(&mut self, within: Duration, done: impl Fn(&TestConsumer) -> bool) -> bool {
        let deadline = Instant::now() + within;
        while !done(self) {
            if Instant::now() > deadline {
                return false;
            }
            if let Some(r) = self.consumer.poll(Duration::from_millis(100)) {
                let m = r.unwrap();
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_owned(),
                                    String::from_utf8_lossy(h.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                if let Some(v) = m.payload()
                    && let Ok(v) = serde_json::from_slice::<serde_json::Value>(v)
                    && let Some(id) = v["trigger"]["event_id"].as_str()
                {
                    self.events.insert(id.to_owned());
                }
                self.messages.push(Consumed {
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                    headers,
                    partition: m.partition(),
                    offset: m.offset(),
                });
            }
        }
        true
    }
}

/// The committed small fixture as messages: auth events to `auth-events`,
/// actions to `action-events`, keyed by principal.
pub fn fixture_messages() -> Vec<Outgoing> {
    let text = std::fs::read_to_string(workspace().join("fixtures/small/events.jsonl")).unwrap();
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let topic = match v["kind"].as_str().unwrap() {
                "auth" => "auth-events",
                _ => "action-events",
            };
            Outgoing {
                topic: topic.to_owned(),
                key: v["principal"]["id"].as_str().unwrap().as_bytes().to_vec(),
                value: line.as_bytes().to_vec(),
            }
        })
        .collect()
}

/// What `riskstream replay` gives for each partition's events, scored in
/// the order the pipeline scores them (event time, auth topic first on a
/// tie, each topic in offset order): trigger event id -> record.
pub fn expected_records(
    msgs: &[Outgoing],
    partitions: &HashMap<usize, i32>,
) -> HashMap<String, serde_json::Value> {
    let mut out = HashMap::new();
    for records in replay_partitions(msgs, partitions) {
        for line in records.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(line).unwrap();
            out.insert(v["trigger"]["event_id"].as_str().unwrap().to_owned(), v);
        }
    }
    out
}

/// The CAEP tokens `riskstream replay --caep-output` gives for each
/// partition's events, scored as [`expected_records`] scores them.
pub fn expected_caep_tokens(
    msgs: &[Outgoing],
    partitions: &HashMap<usize, i32>,
    key: &Path,
    kid: &str,
    issuer: &str,
) -> std::collections::HashSet<String> {
    use riskstream::caep::{CaepEmitter, CaepSigner};
    let mut out = std::collections::HashSet::new();
    for records in replay_partitions(msgs, partitions) {
        let mut emitter = CaepEmitter::new(CaepSigner::from_pem_file(key, kid, issuer).unwrap());
        for line in records.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let record: riskstream_schemas::RiskRecord = serde_json::from_slice(line).unwrap();
            out.extend(emitter.tokens(&record).unwrap());
        }
    }
    out
}

/// Each partition's records (JSON Lines) from `riskstream replay` of its
/// events in the order the pipeline scores them (event time, auth topic
/// first on a tie, each topic in offset order).
fn replay_partitions(msgs: &[Outgoing], partitions: &HashMap<usize, i32>) -> Vec<Vec<u8>> {
    use riskstream::replay::{EngineOptions, JsonLines, Replayer};
    let config = EngineOptions::default().load().unwrap();
    let mut by_partition: BTreeMap<i32, Vec<(String, usize, usize)>> = BTreeMap::new();
    for (i, m) in msgs.iter().enumerate() {
        let Some(p) = partitions.get(&i) else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&m.value) else {
            continue;
        };
        let Some(time) = v["time"].as_str() else {
            continue;
        };
        let topic_rank = usize::from(m.topic != "auth-events");
        by_partition
            .entry(*p)
            .or_default()
            .push((time.to_owned(), topic_rank, i));
    }
    let mut out = Vec::new();
    for (_, mut list) in by_partition {
        list.sort();
        let mut input = Vec::new();
        for (_, _, i) in &list {
            input.extend_from_slice(&msgs[*i].value);
            input.push(b'\n');
        }
        let mut replayer =
            Replayer::new(config.engine(), riskstream_schemas::ParseLimits::default());
        let mut sink = JsonLines(Vec::new());
        replayer
            .run(&input[..], "partition", &mut sink, None)
            .unwrap();
        out.push(sink.0);
    }
    out
}

/// Checks the records read from `session-risk`: every expected event has a
/// record, every record equals the expected one, and within a session the
/// first occurrences of `seq` come in order. Returns the duplicate count.
pub fn check_records(read: &[Consumed], expected: &HashMap<String, serde_json::Value>) -> usize {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut high_seq: HashMap<(i32, String), u64> = HashMap::new();
    for m in read {
        let v: serde_json::Value = serde_json::from_slice(m.value.as_ref().unwrap()).unwrap();
        let id = v["trigger"]["event_id"].as_str().unwrap().to_owned();
        let want = expected
            .get(&id)
            .unwrap_or_else(|| panic!("record for unknown event {id}"));
        if &v != want {
            let diff: Vec<String> = want
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, w)| v.get(k.as_str()) != Some(w))
                .map(|(k, w)| {
                    format!(
                        "{k}: got {} want {w}",
                        v.get(k.as_str()).unwrap_or(&serde_json::Value::Null)
                    )
                })
                .collect();
            let session = v["session"].as_str().unwrap_or_default();
            let same: Vec<String> = read
                .iter()
                .filter_map(|r| {
                    let r: serde_json::Value = serde_json::from_slice(r.value.as_ref()?).ok()?;
                    (r["session"] == session).then(|| {
                        format!(
                            "{} {} seq {} {}",
                            r["trigger"]["event_id"], r["trigger"]["name"], r["seq"], r["time"]
                        )
                    })
                })
                .collect();
            let mut want_same: Vec<(u64, String)> = expected
                .values()
                .filter(|r| r["session"] == session)
                .map(|r| {
                    (
                        r["seq"].as_u64().unwrap_or(0),
                        format!(
                            "{} {} {}",
                            r["trigger"]["event_id"], r["trigger"]["name"], r["time"]
                        ),
                    )
                })
                .collect();
            want_same.sort();
            panic!(
                "record of {id} (offset {} of partition {}) differs from replay: {diff:#?}\nsession as read: {same:#?}\nsession in replay: {want_same:#?}",
                m.offset, m.partition
            );
        }
        let session = v["session"].as_str().unwrap().to_owned();
        assert_eq!(
            m.key.as_deref(),
            Some(session.as_bytes()),
            "key is the session"
        );
        let seq = v["seq"].as_u64().unwrap();
        let high = high_seq.entry((m.partition, session.clone())).or_insert(0);
        // A new seq is always the next one: duplicates repeat old seqs, a
        // gap would mean a lost record.
        if seq > *high {
            assert_eq!(seq, *high + 1, "session {session}: seq {seq} after {high}");
            *high = seq;
        }
        *seen.entry(id).or_insert(0) += 1;
    }
    let missing: Vec<&String> = expected.keys().filter(|k| !seen.contains_key(*k)).collect();
    assert!(
        missing.is_empty(),
        "{} events without a record, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    seen.values().map(|n| n - 1).sum()
}
