//! `riskstream enforce` against a real broker (nisshi on 127.0.0.1), as a
//! child process, and behind a real nginx (Debian's, installed by the test
//! when missing) guarding a small application in this process. Risk
//! records are published straight to `session-risk` by an rdkafka
//! producer, as `riskstream run` would publish them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const RISK: &str = "session-risk";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Creates the compacted risk topic, as `riskstream run` does.
fn create_risk_topic(brokers: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let topic = NewTopic::new(RISK, partitions, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let results = rt
        .block_on(admin.create_topics([&topic], &AdminOptions::new()))
        .unwrap();
    for r in results {
        r.unwrap();
    }
}

/// A risk record of `session` with decisions for high and critical
/// actions (low and medium allowed).
fn record(session: &str, seq: u64, kind: &str, high: &str, critical: &str) -> Vec<u8> {
    serde_json::json!({
        "schema": "riskstream.risk.v1",
        "tenant": "acme",
        "principal": {"id": format!("u-{session}"), "type": kind},
        "session": session,
        "seq": seq,
        "time": "2026-11-30T10:15:02.123Z",
        "trigger": {"event_id": format!("e-{session}-{seq}"), "kind": "action", "name": "data.export", "sensitivity": "high"},
        "score": if high == "allow" { 4 } else { 83 },
        "level": if high == "allow" { "low" } else { "high" },
        "decision": high,
        "decisions": {"low": "allow", "medium": "allow", "high": high, "critical": critical},
        "assurance": {"aal": 1},
        "signals": if high == "allow" { serde_json::json!([]) } else { serde_json::json!([
            {"detector": "geo_velocity", "code": "impossible_travel", "weight": 4.2,
             "evidence": {"from": "London, GB", "to": "Changchun, CN"}}
        ]) },
        "model": {"version": "riskstream 0.1.0", "policy": "sha256:test"}
    })
    .to_string()
    .into_bytes()
}

/// Publishes to the risk topic, each message acknowledged before the call
/// returns.
struct RiskProducer(BaseProducer);

impl RiskProducer {
    fn new(brokers: &str) -> RiskProducer {
        RiskProducer(
            ClientConfig::new()
                .set("bootstrap.servers", brokers)
                .set("linger.ms", "0")
                .create()
                .unwrap(),
        )
    }

    /// `value` `None` is a tombstone.
    fn publish(&self, session: &str, value: Option<&[u8]>) {
        let mut rec = BaseRecord::<str, [u8]>::to(RISK).key(session);
        if let Some(v) = value {
            rec = rec.payload(v);
        }
        self.0.send(rec).map_err(|(e, _)| e).unwrap();
        // Polled rather than flushed: flush waits in steps of 100 ms, which
        // would hide how fast the acknowledgement came.
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.0.in_flight_count() > 0 {
            assert!(Instant::now() < deadline, "not acknowledged in 30 s");
            self.0.poll(Duration::from_millis(1));
        }
    }
}

/// A `riskstream enforce` process.
struct Enforce {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Enforce {
    fn start(name: &str, brokers: &str, extra_toml: &str) -> Enforce {
        Enforce::start_with_threads(name, brokers, extra_toml, 1)
    }

    /// [`Enforce::start`] serving HTTP from `http_threads` threads.
    fn start_with_threads(
        name: &str,
        brokers: &str,
        extra_toml: &str,
        http_threads: usize,
    ) -> Enforce {
        let dir = temp_dir(name);
        let port = free_port();
        let config = format!(
            r#"
[kafka]
brokers = "{brokers}"
[http]
listen = "127.0.0.1:{port}"
threads = {http_threads}
[[enforce.routes]]
prefix = "/export"
action = "data.export"
[[enforce.routes]]
prefix = "/payments"
action = "payment.approve"
{extra_toml}
"#
        );
        let path = dir.join("enforce.toml");
        std::fs::write(&path, config).unwrap();
        let log = dir.join("enforce.log");
        let child = Command::new(env!("CARGO_BIN_EXE_riskstream"))
            .args(["enforce", "--config"])
            .arg(&path)
            .env("RISKSTREAM_LOG", "info,librdkafka=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Enforce { child, port, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if let Some((200, _)) = http_get(self.port, "/readyz") {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "riskstream enforce exited with {status}:\n{}",
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "not ready in {within:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn decide(&self, body: &str) -> Response {
        request(self.port, "POST", "/v1/decide", &[], Some(body))
    }
}

impl Drop for Enforce {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response: status, headers (lower-case names), body.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

impl Response {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
}

/// One HTTP/1.0 request.
fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Response {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body.unwrap_or_default());
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {buf:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// Checks an RFC 9470 step-up challenge.
fn assert_rfc9470(r: &Response, acr: &str, max_age: u32) {
    let c = r.header("www-authenticate");
    assert!(
        c.starts_with("Bearer error=\"insufficient_user_authentication\""),
        "{r:?}"
    );
    assert!(c.contains(&format!("acr_values=\"{acr}\"")), "{r:?}");
    assert!(c.contains(&format!("max_age={max_age}")), "{r:?}");
    assert!(c.contains("error_description=\""), "{r:?}");
}

#[test]
fn enforce_decides_from_the_latest_record_and_rebuilds_from_the_topic() {
    if !broker_available("enforce_decides_from_the_latest_record_and_rebuilds_from_the_topic") {
        return;
    }
    let broker = Broker::start();
    let brokers = broker.brokers();

    // Before the risk topic exists, enforce is not ready and answers no
    // decision: fail closed.
    let mut early = Enforce::start("enforce-early", &brokers, "");
    std::thread::sleep(Duration::from_secs(2));
    let (status, body) = http_get(early.port, "/readyz").unwrap();
    assert_eq!(status, 503, "{body}\n{}", early.log_text());
    assert_eq!(http_get(early.port, "/healthz").unwrap().0, 200);
    let r = early.decide(r#"{"session":"s-x","action":"report.view"}"#);
    assert_eq!(r.status, 503, "{r:?}");

    create_risk_topic(&brokers, 3);
    let producer = RiskProducer::new(&brokers);
    producer.publish(
        "s-allow",
        Some(&record("s-allow", 1, "human", "allow", "allow")),
    );
    producer.publish(
        "s-step",
        Some(&record("s-step", 1, "human", "allow", "allow")),
    );
    producer.publish(
        "s-step",
        Some(&record("s-step", 2, "human", "step_up", "deny")),
    );
    producer.publish(
        "s-stale",
        Some(&record("s-stale", 3, "human", "deny", "deny")),
    );
    producer.publish(
        "s-stale",
        Some(&record("s-stale", 2, "human", "allow", "allow")),
    );
    producer.publish(
        "s-gone",
        Some(&record("s-gone", 1, "human", "deny", "deny")),
    );
    producer.publish("s-gone", None);
    producer.publish(
        "s-ci",
        Some(&record("s-ci", 1, "workload", "step_up", "deny")),
    );
    producer.publish("s-bad", Some(b"{not a record"));
    early.wait_ready(Duration::from_secs(30));

    // A second instance started now reads everything from the beginning:
    // as soon as it is ready, it holds every session (no waiting). It
    // serves from three HTTP threads, so the checks below, each on a new
    // connection, go through every one of them (dealt in turn), where the
    // first instance serves from its one.
    let mut late = Enforce::start_with_threads("enforce-late", &brokers, "", 3);
    late.wait_ready(Duration::from_secs(30));
    assert!(late.log_text().contains("threads=3"), "{}", late.log_text());
    for e in [&late, &early] {
        // The early one may still be catching the last records up.
        let deadline = Instant::now() + Duration::from_secs(10);
        while e
            .decide(r#"{"session":"s-ci","action":"data.export"}"#)
            .status
            != 401
        {
            assert!(Instant::now() < deadline, "{}", e.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
        let r = e.decide(r#"{"session":"s-allow","action":"payment.approve"}"#);
        assert_eq!(r.status, 200, "{r:?}");
        let v = r.json();
        assert_eq!(v["decision"], "allow");
        assert_eq!(v["class"], "critical");
        assert_eq!(v["known"], true);
        assert_eq!(r.header("x-riskstream-decision"), "allow");

        // The latest record (seq 2) of s-step: high steps up, critical is
        // denied, low is allowed.
        let r = e.decide(r#"{"session":"s-step","action":"data.export"}"#);
        assert_eq!(r.status, 401, "{r:?}");
        assert_rfc9470(&r, "urn:riskstream:mfa", 900);
        let v = r.json();
        assert_eq!(v["decision"], "step_up");
        assert_eq!(v["seq"], 2);
        assert_eq!(v["level"], "high");
        assert_eq!(v["score"], 83);
        assert_eq!(v["reasons"], serde_json::json!(["impossible_travel"]));
        assert_eq!(v["step_up"]["method"], "mfa");
        assert_eq!(r.header("x-riskstream-reasons"), "impossible_travel");
        let r = e.decide(r#"{"session":"s-step","action":"payment.approve"}"#);
        assert_eq!(r.status, 403, "{r:?}");
        assert_eq!(r.json()["decision"], "deny");
        assert_eq!(
            e.decide(r#"{"session":"s-step","action":"report.view"}"#)
                .status,
            200
        );
        // An explicit sensitivity wins over the action's.
        assert_eq!(
            e.decide(r#"{"session":"s-step","action":"payment.approve","sensitivity":"low"}"#)
                .status,
            200
        );

        // seq 2 after seq 3 is stale: the deny stands.
        let r = e.decide(r#"{"session":"s-stale","action":"data.export"}"#);
        assert_eq!(
            (r.status, r.json()["seq"].as_u64()),
            (403, Some(3)),
            "{r:?}"
        );

        // A workload steps up with a short-lived credential.
        let r = e.decide(r#"{"session":"s-ci","action":"data.export"}"#);
        assert_eq!(r.json()["step_up"]["method"], "jit_credential");
        assert!(
            r.header("www-authenticate")
                .starts_with("Bearer error=\"invalid_token\""),
            "{r:?}"
        );
        assert_eq!(r.header("x-riskstream-step-up"), "jit_credential");

        // The tombstoned session and a never-seen one get the unknown
        // default: critical denied, high stepped up, low allowed.
        for session in ["s-gone", "s-never"] {
            let r = e.decide(&format!(
                r#"{{"session":"{session}","action":"payment.approve"}}"#
            ));
            assert_eq!(r.status, 403, "{session}: {r:?}");
            let v = r.json();
            assert_eq!(v["known"], false);
            assert_eq!(v["reasons"], serde_json::json!(["unknown_session"]));
            let r = e.decide(&format!(
                r#"{{"session":"{session}","action":"data.export"}}"#
            ));
            assert_eq!(r.status, 401, "{session}: {r:?}");
            assert_rfc9470(&r, "urn:riskstream:mfa", 900);
            let r = e.decide(&format!(
                r#"{{"session":"{session}","action":"report.view"}}"#
            ));
            assert_eq!(r.status, 200, "{session}: {r:?}");
        }
        // Critical step-up asks for the phishing-resistant acr.
        let r =
            e.decide(r#"{"session":"s-never","action":"payment.approve","sensitivity":"high"}"#);
        assert_eq!(r.status, 401);

        // The auth_request endpoint reads the headers and the routes.
        let r = request(
            e.port,
            "GET",
            "/v1/authz",
            &[
                ("X-Session-Id", "s-step"),
                ("X-Original-URI", "/export/42?x=1"),
            ],
            None,
        );
        assert_eq!(r.status, 401, "{r:?}");
        assert_eq!(r.json()["action"], "data.export");
        let r = request(
            e.port,
            "GET",
            "/v1/authz",
            &[("X-Session-Id", "s-step"), ("X-Action", "rbac.assign")],
            None,
        );
        assert_eq!((r.status, r.json()["class"].as_str()), (401, Some("high")));

        let (status, held) = http_get(e.port, "/v1/sessions/s-step").unwrap();
        assert_eq!(status, 200);
        let held: serde_json::Value = serde_json::from_str(&held).unwrap();
        assert_eq!(held["seq"], 2);
        assert_eq!(http_get(e.port, "/v1/sessions/s-gone").unwrap().0, 404);

        let (status, metrics) = http_get(e.port, "/metrics").unwrap();
        assert_eq!(status, 200);
        for needle in [
            "riskstream_enforce_sessions 4",
            "riskstream_enforce_records_applied_total 6",
            "riskstream_enforce_records_stale_total 1",
            "riskstream_enforce_tombstones_total 1",
            "riskstream_enforce_records_invalid_total 1",
            "riskstream_enforce_decisions_total{class=\"critical\",decision=\"deny\",known=\"false\"} 2",
        ] {
            assert!(metrics.contains(needle), "{needle} missing:\n{metrics}");
        }
    }
    let r = late.decide(r#"{"session":"s-allow","action":"x","colour":"red"}"#);
    assert!(r.status >= 400 && r.status < 500, "{r:?}");
}

/// The demo application: answers 200 `app <path> <decision>` to
/// anything, and remembers the paths it served with the decision nginx
/// passed on.
struct App {
    port: u16,
    served: Arc<Mutex<Vec<(String, String)>>>,
}

impl App {
    fn start() -> App {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let served = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&served);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream);
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                    let mut decision = String::new();
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':')
                            && k.eq_ignore_ascii_case("x-riskstream-decision")
                        {
                            decision = v.trim().to_owned();
                        }
                    }
                    log.lock().unwrap().push((path.clone(), decision.clone()));
                    let body = format!("app {path} {decision}\n");
                    let _ = write!(
                        reader.get_mut(),
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        App { port, served }
    }
}

/// Debian's nginx, installed when missing (the test runs as root).
fn nginx_binary() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/sbin/nginx");
    if path.exists() {
        return Some(path);
    }
    eprintln!("nginx is missing: apt-get install -y nginx");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "nginx"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        let _ = Command::new("apt-get").arg("update").status();
        install();
    }
    path.exists().then_some(path)
}

/// nginx with its own prefix, the committed `docs/nginx-enforce.conf` with
/// its addresses replaced, in the foreground.
struct Nginx {
    child: Child,
    port: u16,
    prefix: PathBuf,
}

impl Nginx {
    fn start(binary: &Path, enforce_port: u16, app_port: u16) -> Nginx {
        let prefix = temp_dir("nginx");
        std::fs::create_dir_all(prefix.join("logs")).unwrap();
        std::fs::create_dir_all(prefix.join("tmp")).unwrap();
        let port = free_port();
        let template =
            std::fs::read_to_string(workspace().join("docs/nginx-enforce.conf")).unwrap();
        for addr in ["127.0.0.1:8080", "127.0.0.1:9465", "127.0.0.1:8000"] {
            assert!(
                template.contains(addr),
                "docs/nginx-enforce.conf lost {addr}"
            );
        }
        let conf = template
            .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
            .replace("127.0.0.1:9465", &format!("127.0.0.1:{enforce_port}"))
            .replace("127.0.0.1:8000", &format!("127.0.0.1:{app_port}"));
        let path = prefix.join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let test = Command::new(binary)
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&path)
            .arg("-t")
            .output()
            .unwrap();
        assert!(
            test.status.success(),
            "nginx -t: {}",
            String::from_utf8_lossy(&test.stderr)
        );
        let child = Command::new(binary)
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&path)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut nginx = Nginx {
            child,
            port,
            prefix,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(s)) = nginx.child.try_wait() {
                panic!("nginx exited with {s}: {}", nginx.error_log());
            }
            assert!(Instant::now() < deadline, "nginx did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.prefix.join("logs/error.log")).unwrap_or_default()
    }

    fn get(&self, path: &str, session: &str, extra: &[(&str, &str)]) -> Response {
        let mut headers = vec![("X-Session-Id", session)];
        headers.extend_from_slice(extra);
        request(self.port, "GET", path, &headers, None)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `path` through the gateway until its status is `want`; returns
/// the time from `since` and the response.
fn until_status(
    nginx: &Nginx,
    path: &str,
    session: &str,
    want: u16,
    since: Instant,
) -> (Duration, Response) {
    loop {
        let r = nginx.get(path, session, &[]);
        if r.status == want {
            return (since.elapsed(), r);
        }
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "{path} for {session} still {} after 10 s, want {want}: {r:?}\n{}",
            r.status,
            nginx.error_log()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn nginx_gateway_follows_the_latest_record_within_a_second() {
    if !broker_available("nginx_gateway_follows_the_latest_record_within_a_second") {
        return;
    }
    let Some(nginx_bin) = nginx_binary() else {
        if std::env::var("RISKSTREAM_REQUIRE_BROKER").as_deref() == Ok("1") {
            panic!("nginx is not installed and apt-get install -y nginx failed");
        }
        eprintln!("nginx_gateway_follows_the_latest_record_within_a_second: skipped: no nginx");
        return;
    };
    let broker = Broker::start();
    let brokers = broker.brokers();
    create_risk_topic(&brokers, 3);
    let producer = RiskProducer::new(&brokers);
    producer.publish("s-1", Some(&record("s-1", 1, "human", "allow", "allow")));

    let mut enforce = Enforce::start("enforce-gw", &brokers, "");
    enforce.wait_ready(Duration::from_secs(30));
    let app = App::start();
    let nginx = Nginx::start(&nginx_bin, enforce.port, app.port);

    // seq 1 allows everything: the application answers, and sees the
    // decision nginx passed on.
    for path in ["/export/7", "/payments/approve", "/home"] {
        let r = nginx.get(path, "s-1", &[]);
        assert_eq!(r.status, 200, "{path}: {r:?}\n{}", nginx.error_log());
        assert_eq!(r.body, format!("app {path} allow\n"));
    }

    let mut changes = Vec::new();
    // seq 2: high steps up, critical is denied.
    let published = Instant::now();
    producer.publish("s-1", Some(&record("s-1", 2, "human", "step_up", "deny")));
    eprintln!("publish acknowledged after {:?}", published.elapsed());
    let (took, r) = until_status(&nginx, "/export/7", "s-1", 401, published);
    changes.push(took);
    assert_rfc9470(&r, "urn:riskstream:mfa", 900);
    assert_eq!(r.header("x-riskstream-reasons"), "impossible_travel");
    assert_eq!(r.body, "{\"error\":\"step_up_required\"}\n");
    let r = nginx.get("/payments/approve", "s-1", &[]);
    assert_eq!(r.status, 403, "{r:?}");
    // A client cannot talk its way past the routes with its own action.
    let r = nginx.get("/payments/approve", "s-1", &[("X-Action", "report.view")]);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(nginx.get("/home", "s-1", &[]).status, 200);

    // seq 3: deny high too.
    let published = Instant::now();
    producer.publish("s-1", Some(&record("s-1", 3, "human", "deny", "deny")));
    changes.push(until_status(&nginx, "/export/7", "s-1", 403, published).0);

    // A late, older record changes nothing.
    producer.publish("s-1", Some(&record("s-1", 2, "human", "allow", "allow")));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(nginx.get("/export/7", "s-1", &[]).status, 403);

    // seq 4: the user stepped up; everything is allowed again.
    let published = Instant::now();
    producer.publish("s-1", Some(&record("s-1", 4, "human", "allow", "allow")));
    changes.push(until_status(&nginx, "/payments/approve", "s-1", 200, published).0);
    assert_eq!(nginx.get("/export/7", "s-1", &[]).status, 200);

    // A session revoked (tombstone) falls back to the unknown default.
    let published = Instant::now();
    producer.publish("s-1", None);
    changes.push(until_status(&nginx, "/payments/approve", "s-1", 403, published).0);
    let r = nginx.get("/export/7", "s-1", &[]);
    assert_eq!(r.status, 401, "{r:?}");
    assert_rfc9470(&r, "urn:riskstream:mfa", 900);
    assert_eq!(nginx.get("/home", "s-1", &[]).status, 200);
    // No session header at all: unknown too.
    let r = request(nginx.port, "GET", "/payments/approve", &[], None);
    assert_eq!(r.status, 403, "{r:?}");

    eprintln!("record published -> gateway answer changed: {changes:?}");
    for (i, took) in changes.iter().enumerate() {
        assert!(
            *took < Duration::from_secs(1),
            "change {i} took {took:?} (all: {changes:?})"
        );
    }

    // Only allowed requests reached the application: every one it served
    // came with nginx's `X-Riskstream-Decision: allow`.
    let served = app.served.lock().unwrap().clone();
    assert!(
        served
            .iter()
            .filter(|(p, _)| p.starts_with("/payments"))
            .count()
            >= 2,
        "{served:?}"
    );
    assert!(served.iter().all(|(_, d)| d == "allow"), "{served:?}");

    // Enforce down: the gateway fails closed (500), even for low paths.
    drop(enforce);
    let r = nginx.get("/home", "s-1", &[]);
    assert_eq!(r.status, 500, "{r:?}");
}
