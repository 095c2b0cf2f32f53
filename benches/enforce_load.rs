//! Load tool for `riskstream enforce`: decision latency at a constant
//! request rate, and propagation from a risk record published to the
//! decision changed.
//!
//! ```text
//! cargo bench -p riskstream --bench enforce_load -- \
//!     --brokers 127.0.0.1:9092 --enforce 127.0.0.1:9465 \
//!     [--sessions 10000] [--rate 10000] [--seconds 10] [--connections 8] \
//!     [--samples 500] [--slow slow.tsv]
//! ```
//!
//! `riskstream enforce` must be running against the same broker. The tool
//! creates `session-risk` when missing (3 partitions, compacted), then:
//!
//! 1. **Setup**: publishes one record for each of `--sessions` sessions
//!    (`load-<n>`, decisions varying with n) and waits until enforce holds
//!    the last one.
//! 2. **Decision latency**: `--connections` keep-alive HTTP/1.1
//!    connections send `POST /v1/decide` on a fixed schedule adding up to
//!    `--rate` requests a second (open loop, as wrk2 does), all driven by
//!    one event-loop thread, as wrk2's are. Latency is
//!    taken from the request's scheduled time to the whole response read,
//!    so a request delayed behind a slow one counts its wait too (no
//!    coordinated omission). Sessions and actions rotate over the table.
//!    The tool's own wake-up lateness (scheduled time to send, after a
//!    sleep) is reported too: it is part of every latency. `--slow PATH`
//!    writes the requests over 1 ms, to tell a few long stalls from many
//!    short ones.
//! 3. **Propagation**: `--samples` times, publishes a new record for one
//!    session (seq + 1, the high class's decision flipping between allow
//!    and deny), then polls `POST /v1/decide` on one connection every
//!    ~0.5 ms until the decision changes. It reports send → broker
//!    acknowledgement and send → decision changed (to within the polling
//!    step).
//!
//!    With `--pipeline` (and `riskstream run` consuming the same broker),
//!    each sample is a new session of one principal: a clean login at the
//!    office (`auth-events`), then, once enforce allows the session's
//!    exports, the same session exporting data from another continent with
//!    curl (`action-events`, the stolen-token pattern). It reports input
//!    event sent → decision changed to deny: broker, pipeline, broker,
//!    enforce.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};

struct Args {
    brokers: String,
    enforce: String,
    sessions: u64,
    rate: u64,
    seconds: u64,
    connections: u64,
    samples: u64,
    /// Propagation from an input event through `riskstream run` instead
    /// of from a published record.
    pipeline: bool,
    /// Where to write the requests slower than 1 ms (diagnosis of the
    /// tail: are they spread out, or bunched into a few stalls?).
    slow: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        brokers: "127.0.0.1:9092".into(),
        enforce: "127.0.0.1:9465".into(),
        sessions: 10_000,
        rate: 10_000,
        seconds: 10,
        connections: 8,
        samples: 500,
        pipeline: false,
        slow: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--brokers" => a.brokers = it.next().unwrap(),
            "--enforce" => a.enforce = it.next().unwrap(),
            "--sessions" => a.sessions = it.next().unwrap().parse().unwrap(),
            "--rate" => a.rate = it.next().unwrap().parse().unwrap(),
            "--seconds" => a.seconds = it.next().unwrap().parse().unwrap(),
            "--connections" => a.connections = it.next().unwrap().parse().unwrap(),
            "--samples" => a.samples = it.next().unwrap().parse().unwrap(),
            "--pipeline" => a.pipeline = true,
            "--slow" => a.slow = Some(it.next().unwrap()),
            // cargo bench passes --bench
            _ => {}
        }
    }
    a
}

fn record(session: &str, seq: u64, high: &str, critical: &str) -> String {
    serde_json::json!({
        "schema": "riskstream.risk.v1",
        "tenant": "acme",
        "principal": {"id": format!("u-{session}"), "type": "human"},
        "session": session,
        "seq": seq,
        "time": "2026-11-30T10:15:02.123Z",
        "trigger": {"event_id": format!("e-{session}-{seq}"), "kind": "action", "name": "data.export", "sensitivity": "high"},
        "score": 50,
        "level": "medium",
        "decision": high,
        "decisions": {"low": "allow", "medium": "allow", "high": high, "critical": critical},
        "assurance": {"aal": 1},
        "signals": [{"detector": "geo_velocity", "code": "new_country", "weight": 2.0, "evidence": {}}],
        "model": {"version": "riskstream 0.1.0", "policy": "sha256:bench"}
    })
    .to_string()
}

/// Time of the last delivery report.
struct Acks(Mutex<Option<Instant>>);

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        result.as_ref().expect("produce failed");
        *self.0.lock().unwrap() = Some(Instant::now());
    }
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    reader: BufReader<TcpStream>,
    line: String,
    body: Vec<u8>,
}

impl Conn {
    fn new(addr: &str) -> Conn {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        Conn {
            reader: BufReader::new(s),
            line: String::new(),
            body: Vec::new(),
        }
    }

    /// POST /v1/decide; returns the status and the body.
    fn decide(&mut self, body: &str) -> (u16, &[u8]) {
        let req = format!(
            "POST /v1/decide HTTP/1.1\r\nHost: enforce\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.reader.get_mut().write_all(req.as_bytes()).unwrap();
        self.line.clear();
        self.reader.read_line(&mut self.line).unwrap();
        let status: u16 = self
            .line
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let mut length = 0usize;
        loop {
            self.line.clear();
            self.reader.read_line(&mut self.line).unwrap();
            let l = self.line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap();
            }
        }
        self.body.resize(length, 0);
        self.reader.read_exact(&mut self.body).unwrap();
        (status, &self.body)
    }
}

/// What the latency phase gathers.
struct Phase {
    /// When the first request was due.
    start: Instant,
    /// Scheduled send time to the whole response read.
    latency: Histogram<u64>,
    /// Scheduled send time to the actual send, for requests whose
    /// connection was idle, waiting for that time: the tool's own wake-up,
    /// part of every latency.
    late: Histogram<u64>,
    /// Requests over 1 ms: (scheduled time from the start, latency,
    /// connection).
    slow: Vec<(Duration, Duration, usize)>,
}

/// One keep-alive connection of the latency phase, non-blocking.
struct LoadConn {
    stream: TcpStream,
    /// Bytes of responses read and not yet parsed.
    buf: Vec<u8>,
    /// Index of its next request.
    k: u64,
    /// Its schedule's offset within one interval.
    offset: Duration,
    /// When the request awaiting its answer was due.
    in_flight: Option<Instant>,
    /// Whether it is idle, waiting for its next request's time.
    waiting: bool,
}

/// A complete response at the front of `buf`: its status and length.
fn parse_response(buf: &[u8]) -> Option<(u16, usize)> {
    let head_end = memchr::memmem::find(buf, b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..head_end]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().unwrap();
    let length: usize = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.trim().parse().unwrap());
    (buf.len() >= head_end + length).then_some((status, head_end + length))
}

/// Phase 2, as wrk2 does it: one thread runs every connection from one
/// event loop (epoll, waiting until the next scheduled request at most).
/// Connection `c` sends its `k`-th request at `start + offset(c) + k *
/// interval`, or as soon as its previous answer is read if that is later;
/// one thread per connection (the tool's first form) put eight threads of
/// the tool, each waking twice a request, against enforce's one.
fn constant_rate(a: &Args) -> (Phase, [u64; 3]) {
    use rustix::event::epoll;
    use rustix::time::Timespec;

    let actions = [
        "report.view",
        "data.export",
        "payment.approve",
        "profile.update",
    ];
    let n = a.connections as usize;
    let per = a.rate * a.seconds / a.connections;
    let interval = Duration::from_nanos(1_000_000_000 * a.connections / a.rate);
    let poll = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
    let mut conns: Vec<LoadConn> = (0..n)
        .map(|c| {
            let stream = TcpStream::connect(&a.enforce).unwrap();
            stream.set_nodelay(true).unwrap();
            stream.set_nonblocking(true).unwrap();
            epoll::add(
                &poll,
                &stream,
                epoll::EventData::new_u64(c as u64),
                epoll::EventFlags::IN,
            )
            .unwrap();
            LoadConn {
                stream,
                buf: Vec::with_capacity(4096),
                k: 0,
                // Connections are offset within one interval.
                offset: interval / n as u32 * c as u32,
                in_flight: None,
                waiting: false,
            }
        })
        .collect();
    let start = Instant::now() + Duration::from_millis(200);
    let mut phase = Phase {
        start,
        latency: Histogram::new_with_bounds(1, 60_000_000, 3).unwrap(),
        late: Histogram::new_with_bounds(1, 60_000_000, 3).unwrap(),
        slow: Vec::new(),
    };
    let mut statuses = [0u64; 3];
    let mut events: Vec<epoll::Event> = Vec::with_capacity(n + 1);
    let mut request = String::with_capacity(256);
    let mut finished = 0;
    while finished < n {
        // Send what is due; find when the next request is.
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        for (c, conn) in conns.iter_mut().enumerate() {
            if conn.in_flight.is_some() || conn.k == per {
                continue;
            }
            let due = start + conn.offset + interval * conn.k as u32;
            if due > now {
                conn.waiting = true;
                next = Some(next.map_or(due, |t| t.min(due)));
                continue;
            }
            if conn.waiting {
                phase.late.record(micros(now - due)).unwrap();
                conn.waiting = false;
            }
            let i = conn.k * a.connections + c as u64;
            let body = format!(
                r#"{{"session":"load-{}","action":"{}"}}"#,
                i % a.sessions,
                actions[(i % 4) as usize]
            );
            request.clear();
            request.push_str(
                "POST /v1/decide HTTP/1.1\r\nHost: enforce\r\nContent-Type: application/json\r\n",
            );
            request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
            // A request is far smaller than an idle socket's send buffer.
            let sent = conn.stream.write(request.as_bytes()).unwrap();
            assert_eq!(sent, request.len(), "short write");
            conn.in_flight = Some(due);
        }
        // epoll_pwait2 takes the wait to the nanosecond, so no timer
        // needs re-arming for each request.
        let timeout = next.map(|t| {
            let d = t.saturating_duration_since(Instant::now());
            Timespec {
                tv_sec: d.as_secs() as i64,
                tv_nsec: i64::from(d.subsec_nanos()),
            }
        });
        events.clear();
        match epoll::wait(
            &poll,
            rustix::buffer::spare_capacity(&mut events),
            timeout.as_ref(),
        ) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => panic!("epoll_wait: {e}"),
        }
        for event in &events {
            let c = event.data.u64();
            let conn = &mut conns[c as usize];
            let mut chunk = [0u8; 4096];
            loop {
                match conn.stream.read(&mut chunk) {
                    Ok(0) => panic!("enforce closed connection {c}"),
                    Ok(got) => conn.buf.extend_from_slice(&chunk[..got]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => panic!("read: {e}"),
                }
            }
            while let Some((status, length)) = parse_response(&conn.buf) {
                let due = conn.in_flight.take().expect("an answer to no request");
                let took = due.elapsed();
                conn.buf.drain(..length);
                phase.latency.record(micros(took)).unwrap();
                if took > Duration::from_millis(1) {
                    phase.slow.push((due - start, took, c as usize));
                }
                statuses[match status {
                    200 => 0,
                    401 => 1,
                    403 => 2,
                    s => panic!("status {s}"),
                }] += 1;
                conn.k += 1;
                if conn.k == per {
                    finished += 1;
                }
            }
        }
    }
    (phase, statuses)
}

fn micros(d: Duration) -> u64 {
    d.as_micros().max(1) as u64
}

fn ensure_topic(brokers: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let topic = NewTopic::new("session-risk", 3, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // An existing topic is fine.
    let _ = rt.block_on(admin.create_topics([&topic], &AdminOptions::new()));
}

fn print(name: &str, h: &Histogram<u64>, unit: &str, div: f64) {
    println!(
        "{name}: n={} p50={:.3} p90={:.3} p99={:.3} p999={:.3} max={:.3} {unit}",
        h.len(),
        h.value_at_quantile(0.5) as f64 / div,
        h.value_at_quantile(0.9) as f64 / div,
        h.value_at_quantile(0.99) as f64 / div,
        h.value_at_quantile(0.999) as f64 / div,
        h.max() as f64 / div,
    );
}

fn main() {
    let a = args();
    ensure_topic(&a.brokers);
    let producer: BaseProducer<Acks> = ClientConfig::new()
        .set("bootstrap.servers", &a.brokers)
        .set("linger.ms", "0")
        .create_with_context(Acks(Mutex::new(None)))
        .unwrap();

    // 1. Setup.
    let decisions = ["allow", "step_up", "deny"];
    for n in 0..a.sessions {
        let session = format!("load-{n}");
        let value = record(&session, 1, decisions[(n % 3) as usize], "deny");
        let mut rec = BaseRecord::to("session-risk").key(&session).payload(&value);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    let mut conn = Conn::new(&a.enforce);
    let last = format!(
        r#"{{"session":"load-{}","action":"data.export"}}"#,
        a.sessions - 1
    );
    let started = Instant::now();
    while !std::str::from_utf8(conn.decide(&last).1)
        .unwrap()
        .contains("\"known\":true")
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "enforce never held the sessions"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    println!("setup: {} sessions held", a.sessions);

    // 2. Decision latency at a constant rate.
    if a.rate > 0 {
        let started = Instant::now();
        let (phase, statuses) = constant_rate(&a);
        let elapsed = started.elapsed();
        let h = &phase.latency;
        println!(
            "decisions: {} requests in {:.2} s ({:.0}/s; target {}/s) over {} connections; 200/401/403 = {}/{}/{}",
            h.len(),
            elapsed.as_secs_f64(),
            h.len() as f64 / elapsed.as_secs_f64(),
            a.rate,
            a.connections,
            statuses[0],
            statuses[1],
            statuses[2]
        );
        print(
            "decision latency (scheduled -> response read)",
            h,
            "ms",
            1000.0,
        );
        print(
            "the tool's own wake-up lateness (scheduled -> sent, after a wait)",
            &phase.late,
            "ms",
            1000.0,
        );
        if let Some(path) = &a.slow {
            let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
            // The start as the OS clock (CLOCK_MONOTONIC on Linux), to line
            // the stalls up with `perf sched record -k CLOCK_MONOTONIC`.
            writeln!(out, "# start {:?}", phase.start).unwrap();
            writeln!(out, "due_us\tlatency_us\tconnection").unwrap();
            let mut slow = phase.slow.clone();
            slow.sort();
            for (due, took, c) in slow {
                writeln!(out, "{}\t{}\t{c}", due.as_micros(), took.as_micros()).unwrap();
            }
        }
    }

    // 3. Propagation.
    if a.samples > 0 && a.pipeline {
        through_pipeline(&a, &producer, &mut conn);
    } else if a.samples > 0 {
        let session = "propagation";
        let mut ack = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        let mut change = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        let body = format!(r#"{{"session":"{session}","action":"data.export"}}"#);
        // Above what an earlier run left: lower seqs would be stale.
        let held: serde_json::Value = serde_json::from_slice(conn.decide(&body).1).unwrap();
        let base = held["seq"].as_u64().unwrap_or(0);
        for seq in base + 1..=base + a.samples {
            let high = if seq % 2 == 0 { "deny" } else { "allow" };
            let want = if high == "deny" { 403 } else { 200 };
            let value = record(session, seq, high, "deny");
            *producer.context().0.lock().unwrap() = None;
            let sent = Instant::now();
            producer
                .send(BaseRecord::to("session-risk").key(session).payload(&value))
                .map_err(|(e, _)| e)
                .unwrap();
            loop {
                producer.poll(Duration::ZERO);
                let (status, _) = conn.decide(&body);
                if status == want {
                    change
                        .record(sent.elapsed().as_micros().max(1) as u64)
                        .unwrap();
                    break;
                }
                assert!(
                    sent.elapsed() < Duration::from_secs(10),
                    "seq {seq} never seen"
                );
                // A poll every ~0.5 ms: finer polling would take the CPU
                // the broker and the consumer need on a small machine.
                std::thread::sleep(Duration::from_micros(500));
            }
            // The acknowledgement, if it came after the change.
            let deadline = Instant::now() + Duration::from_secs(10);
            let acked = loop {
                if let Some(t) = *producer.context().0.lock().unwrap() {
                    break t;
                }
                producer.poll(Duration::from_millis(1));
                assert!(Instant::now() < deadline, "seq {seq} not acknowledged");
            };
            ack.record((acked - sent).as_micros().max(1) as u64)
                .unwrap();
            // Spread the samples over the broker's fetch cycle.
            std::thread::sleep(Duration::from_millis(7 + seq % 13));
        }
        print(
            "propagation: send -> broker acknowledgement",
            &ack,
            "ms",
            1000.0,
        );
        print(
            "propagation: send -> decision changed",
            &change,
            "ms",
            1000.0,
        );
    }
}

/// An input event at the current time, as `riskstream run` reads it.
fn input_event(id: &str, principal: &str, session: &str, export: bool) -> (&'static str, String) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let time = riskstream_schemas::Timestamp(now).to_string();
    let head = format!(
        r#""id":"{id}","time":"{time}","tenant":"globex","principal":{{"id":"{principal}","type":"human","role":"engineering"}},"session":"{session}""#
    );
    if export {
        (
            "action-events",
            format!(
                r#"{{"schema":"riskstream.event.v1","kind":"action",{head},"action":"data.export","resource":"db:/customers","context":{{"ip":"92.193.38.111","user_agent":"curl/7.88.1"}}}}"#
            ),
        )
    } else {
        (
            "auth-events",
            format!(
                r#"{{"schema":"riskstream.event.v1","kind":"auth",{head},"type":"login.success","context":{{"ip":"220.49.16.10","user_agent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/155.0.0.0 Safari/537.36","device_id":"d-bench","device_trust":"managed"}},"auth":{{"aal":2,"acr":"urn:globex:mfa","amr":["pwd","otp"]}}}}"#
            ),
        )
    }
}

/// Propagation through the pipeline: input event sent -> enforce's decision
/// for the session changed.
fn through_pipeline(a: &Args, producer: &BaseProducer<Acks>, conn: &mut Conn) {
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let principal = format!("u-bench-{run}");
    let mut change = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let send = |topic: &str, value: &str| {
        producer
            .send(BaseRecord::to(topic).key(&principal).payload(value))
            .map_err(|(e, _)| e)
            .unwrap();
        producer.poll(Duration::ZERO);
    };
    let wait_for = |conn: &mut Conn, body: &str, want: u16, since: Instant| {
        loop {
            producer.poll(Duration::ZERO);
            if conn.decide(body).0 == want {
                return since.elapsed();
            }
            assert!(
                since.elapsed() < Duration::from_secs(20),
                "the decision never became {want}: is `riskstream run` consuming this broker?"
            );
            std::thread::sleep(Duration::from_micros(500));
        }
    };
    for i in 0..a.samples {
        let session = format!("s-bench-{run}-{i}");
        let body = format!(r#"{{"session":"{session}","action":"data.export"}}"#);
        let (topic, login) =
            input_event(&format!("bench-{run}-{i}-a"), &principal, &session, false);
        send(topic, &login);
        wait_for(conn, &body, 200, Instant::now());
        let (topic, export) =
            input_event(&format!("bench-{run}-{i}-b"), &principal, &session, true);
        let sent = Instant::now();
        send(topic, &export);
        let took = wait_for(conn, &body, 403, sent);
        change.record(took.as_micros().max(1) as u64).unwrap();
        // Spread the samples over the broker's fetch cycles.
        std::thread::sleep(Duration::from_millis(7 + i % 13));
    }
    print(
        "propagation: input event sent -> decision changed (through riskstream run)",
        &change,
        "ms",
        1000.0,
    );
}
