//! `riskstream run` against a real broker (nisshi on 127.0.0.1): events
//! produced by an independent producer, records read by an independent
//! consumer and compared with what `riskstream replay` gives.

mod common;

use std::time::Duration;

use common::*;

/// Malformed inputs and the reason each must be dead-lettered with.
fn bad_messages() -> Vec<(Outgoing, &'static str)> {
    let big = format!(
        r#"{{"schema":"riskstream.event.v1","kind":"auth","pad":"{}"}}"#,
        "x".repeat(70_000)
    );
    vec![
        (
            Outgoing {
                topic: "auth-events".into(),
                key: b"u-bad".to_vec(),
                value: b"{not json".to_vec(),
            },
            "not_json",
        ),
        (
            Outgoing {
                topic: "action-events".into(),
                key: b"u-bad".to_vec(),
                value: br#"{"schema":"riskstream.event.v1","kind":"action","id":"bad-1","time":"2026-11-30T10:00:00Z","session":"s","action":"data.export"}"#.to_vec(),
            },
            "missing_field",
        ),
        (
            Outgoing {
                topic: "auth-events".into(),
                key: b"u-bad".to_vec(),
                value: big.into_bytes(),
            },
            "too_large",
        ),
        (
            // Valid RFC 3339 whose instant is in year -1 UTC: a record's
            // time could not be written, and an error there would stop the
            // pipeline at this message again after every restart.
            Outgoing {
                topic: "auth-events".into(),
                key: b"u-bad".to_vec(),
                value: br#"{"schema":"riskstream.event.v1","kind":"auth","id":"bad-2","time":"0000-01-01T00:00:00+01:00","principal":{"id":"u-bad","type":"human"},"session":"s-bad","type":"login.success","context":{"ip":"81.2.69.142"}}"#.to_vec(),
            },
            "unparsable_time",
        ),
    ]
}

#[test]
fn end_to_end_restart_from_changelog_and_dead_letters() {
    if !broker_available("end_to_end_restart_from_changelog_and_dead_letters") {
        return;
    }
    let broker = Broker::start();
    let brokers = broker.brokers();
    let msgs = fixture_messages();
    let half = msgs.len() / 2;

    let key = workspace().join("fixtures/caep/test-es256.pem");
    let caep_toml = format!(
        "[caep]\nkey = \"{}\"\nkid = \"test-kid\"\nissuer = \"https://riskstream.test\"\n",
        key.display()
    );
    let mut first = Pipeline::start("e2e-a", &brokers, &caep_toml);
    first.wait_ready(Duration::from_secs(60));
    let producer = TestProducer::new(&brokers);
    producer.send(&msgs, 0..half, None);
    let mut risk = TestConsumer::new(&brokers, "session-risk");
    assert!(
        risk.read_until(Duration::from_secs(120), |c| c.events.len() >= half),
        "first half not scored: {} records read {:?}\n{}\n{}",
        risk.messages.len(),
        risk.progress("session-risk"),
        first.get("/metrics").map(|m| m.1).unwrap_or_default(),
        first.log_text()
    );

    // A session's latest record is served over HTTP.
    let last = risk.messages.last().unwrap().clone();
    let session = String::from_utf8(last.key.clone().unwrap()).unwrap();
    let (status, body) = first.get(&format!("/v1/sessions/{session}")).unwrap();
    assert_eq!(status, 200);
    let served: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(served["session"], session.as_str());
    assert_eq!(first.get("/v1/sessions/no-such-session").unwrap().0, 404);
    let (status, metrics) = first.get("/metrics").unwrap();
    assert_eq!(status, 200);
    for needle in [
        "riskstream_events_in_total{topic=\"auth-events\",kind=\"auth\"}",
        "riskstream_decisions_total{class=",
        "riskstream_latency_from_broker_time_seconds_bucket",
        "riskstream_consumer_lag{topic=\"auth-events\",partition=\"0\"}",
        "riskstream_principals ",
        "riskstream_messages_out_total{topic=\"riskstream.caep\",kind=\"caep\"}",
    ] {
        assert!(
            metrics.contains(needle),
            "{needle} missing from /metrics:\n{metrics}"
        );
    }

    // The SSF transmitter metadata and the JWK set that verifies the tokens.
    let (status, body) = first.get("/.well-known/ssf-configuration").unwrap();
    assert_eq!(status, 200, "{body}");
    let ssf: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ssf["spec_version"], "1_0");
    assert_eq!(ssf["issuer"], "https://riskstream.test");
    assert_eq!(ssf["jwks_uri"], "https://riskstream.test/jwks.json");
    assert_eq!(ssf["riskstream_kafka_topic"], "riskstream.caep");
    let (status, body) = first.get("/jwks.json").unwrap();
    assert_eq!(status, 200, "{body}");
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&body).unwrap();
    assert_eq!(jwks.keys.len(), 1);
    assert_eq!(jwks.keys[0].common.key_id.as_deref(), Some("test-kid"));

    // Graceful stop: drains, commits, exits 0 within the deadline.
    let status = first.terminate(Duration::from_secs(20));
    assert!(status.success(), "exit {status}:\n{}", first.log_text());
    assert!(
        first.log_text().contains("committed; stopped"),
        "{}",
        first.log_text()
    );

    // The rest, and bad input, to a new instance that restores the state
    // from the changelog.
    producer.send(&msgs, half..msgs.len(), None);
    let bad = bad_messages();
    let bad_msgs: Vec<Outgoing> = bad
        .iter()
        .map(|(m, _)| Outgoing {
            topic: m.topic.clone(),
            key: m.key.clone(),
            value: m.value.clone(),
        })
        .collect();
    let bad_producer = TestProducer::new(&brokers);
    bad_producer.send(&bad_msgs, 0..bad_msgs.len(), None);
    let mut second = Pipeline::start("e2e-b", &brokers, &caep_toml);
    second.wait_ready(Duration::from_secs(60));
    let expected = expected_records(&msgs, &producer.partitions());
    assert!(
        risk.read_until(Duration::from_secs(120), |c| c.events.len()
            >= expected.len()),
        "not every event scored:\n{}",
        second.log_text()
    );
    let duplicates = check_records(&risk.messages, &expected);
    eprintln!("{} records, {} duplicates", risk.messages.len(), duplicates);
    assert!(
        second.log_text().contains("state restored"),
        "{}",
        second.log_text()
    );

    let mut dlq = TestConsumer::new(&brokers, "riskstream.dlq");
    assert!(
        dlq.read_until(Duration::from_secs(60), |c| c.messages.len() >= bad.len()),
        "dead letters missing"
    );
    let mut reasons: Vec<&str> = dlq
        .messages
        .iter()
        .map(|m| m.headers["error"].as_str())
        .collect();
    reasons.sort_unstable();
    let mut want: Vec<&str> = bad.iter().map(|(_, r)| *r).collect();
    want.sort_unstable();
    assert_eq!(reasons, want);
    for m in &dlq.messages {
        let original = bad
            .iter()
            .find(|(b, _)| Some(&b.value) == m.value.as_ref())
            .expect("original bytes");
        assert_eq!(m.headers["source.topic"], original.0.topic);
        assert_eq!(m.key.as_deref(), Some(&b"u-bad"[..]));
        assert!(m.headers["source.offset"].parse::<i64>().is_ok());
        assert!(m.headers["source.partition"].parse::<i32>().is_ok());
    }

    // CAEP: the tokens on riskstream.caep are exactly those replay gives
    // for each partition, across the restart (the second instance reads a
    // session's previous level from the restored state), and each verifies
    // with the served JWK set.
    let want = expected_caep_tokens(
        &msgs,
        &producer.partitions(),
        &key,
        "test-kid",
        "https://riskstream.test",
    );
    assert!(want.len() > 10, "the fixture gives {} tokens", want.len());
    let mut caep = TestConsumer::new(&brokers, "riskstream.caep");
    caep.read_until(Duration::from_secs(30), |c| c.messages.len() >= want.len());
    let got: std::collections::HashSet<String> = caep
        .messages
        .iter()
        .map(|m| String::from_utf8(m.value.clone().unwrap()).unwrap())
        .collect();
    let missing = want.difference(&got).count();
    let unexpected = got.difference(&want).count();
    assert!(
        missing == 0 && unexpected == 0,
        "{missing} tokens missing and {unexpected} unexpected of {} (read {})",
        want.len(),
        caep.messages.len()
    );
    let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_issuer(&["https://riskstream.test"]);
    validation.required_spec_claims = ["iss".to_owned()].into();
    validation.validate_exp = false;
    validation.validate_aud = false;
    for m in &caep.messages {
        let token = std::str::from_utf8(m.value.as_ref().unwrap()).unwrap();
        let data =
            jsonwebtoken::decode::<serde_json::Value>(token, &decoding, &validation).unwrap();
        let session = String::from_utf8(m.key.clone().unwrap()).unwrap();
        assert_eq!(data.claims["sub_id"]["session"]["id"], session.as_str());
    }
    eprintln!("{} CAEP tokens, all verified", caep.messages.len());
    let status = second.terminate(Duration::from_secs(20));
    assert!(status.success());
}

#[test]
fn two_instances_then_sigkill_lose_nothing() {
    if !broker_available("two_instances_then_sigkill_lose_nothing") {
        return;
    }
    let broker = Broker::start();
    let brokers = broker.brokers();
    let msgs = fixture_messages();
    let mut a = Pipeline::start("kill-a", &brokers, "");
    a.wait_ready(Duration::from_secs(60));
    let mut b = Pipeline::start("kill-b", &brokers, "");
    b.wait_ready(Duration::from_secs(60));
    let producer = TestProducer::new(&brokers);
    let third = msgs.len() / 3;
    producer.send(&msgs, 0..third, Some(3000));
    // Both own partitions once the group has settled.
    let mut risk = TestConsumer::new(&brokers, "session-risk");
    assert!(risk.read_until(Duration::from_secs(120), |c| c.events.len() >= third));
    let owned = |p: &Pipeline| {
        p.get("/metrics")
            .and_then(|(_, m)| {
                m.lines()
                    .find(|l| l.starts_with("riskstream_partitions "))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<i64>().ok())
            })
            .unwrap_or(0)
    };
    assert!(
        owned(&a) >= 1 && owned(&b) >= 1,
        "a owns {}, b owns {}",
        owned(&a),
        owned(&b)
    );

    // SIGKILL mid-stream: no commit, no goodbye.
    let feeder = std::thread::scope(|s| {
        let h = s.spawn(|| producer.send(&msgs, third..msgs.len(), Some(3000)));
        std::thread::sleep(Duration::from_millis(700));
        a.kill();
        h.join()
    });
    feeder.unwrap();
    let expected = expected_records(&msgs, &producer.partitions());
    assert!(
        risk.read_until(Duration::from_secs(180), |c| c.events.len()
            >= expected.len()),
        "events lost after SIGKILL: {} of {}\n{}",
        risk.events.len(),
        expected.len(),
        b.log_text()
    );
    let duplicates = check_records(&risk.messages, &expected);
    eprintln!(
        "{} records, {duplicates} duplicates after the kill",
        risk.messages.len()
    );
    assert_eq!(owned(&b), 3, "the survivor owns every partition");
    assert!(b.terminate(Duration::from_secs(20)).success());
}

#[test]
fn broker_outage_reports_not_ready_and_loses_nothing() {
    if !broker_available("broker_outage_reports_not_ready_and_loses_nothing") {
        return;
    }
    let outage = Duration::from_secs(
        std::env::var("RISKSTREAM_OUTAGE_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(15),
    );
    let broker = Broker::start();
    let brokers = broker.brokers();
    let msgs = fixture_messages();
    let mut p = Pipeline::start("outage", &brokers, "");
    p.wait_ready(Duration::from_secs(60));
    let producer = TestProducer::new(&brokers);
    let third = msgs.len() / 3;
    producer.send(&msgs, 0..third, None);
    let mut risk = TestConsumer::new(&brokers, "session-risk");
    assert!(risk.read_until(Duration::from_secs(120), |c| c.events.len() >= third));

    broker.pause();
    let started = std::time::Instant::now();
    let mut saw_not_ready = false;
    while started.elapsed() < outage {
        if let Some((503, _)) = p.get("/readyz") {
            saw_not_ready = true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    broker.resume();
    assert!(
        saw_not_ready,
        "/readyz never reported the outage:\n{}",
        p.log_text()
    );
    assert!(
        p.child.try_wait().unwrap().is_none(),
        "pipeline died in the outage:\n{}",
        p.log_text()
    );
    p.wait_ready(Duration::from_secs(90));

    producer.send(&msgs, third..msgs.len(), None);
    let expected = expected_records(&msgs, &producer.partitions());
    assert!(
        risk.read_until(Duration::from_secs(180), |c| c.events.len()
            >= expected.len()),
        "events lost in the outage: {} of {}\n{}",
        risk.events.len(),
        expected.len(),
        p.log_text()
    );
    check_records(&risk.messages, &expected);
    assert!(p.terminate(Duration::from_secs(20)).success());
}

#[test]
fn refuses_input_topics_that_are_not_copartitioned() {
    if !broker_available("refuses_input_topics_that_are_not_copartitioned") {
        return;
    }
    let broker = Broker::start();
    let brokers = broker.brokers();
    // Both input topics exist already, with different partition counts.
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        rdkafka::config::ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let topics = [
            rdkafka::admin::NewTopic::new(
                "auth-events",
                2,
                rdkafka::admin::TopicReplication::Fixed(1),
            ),
            rdkafka::admin::NewTopic::new(
                "action-events",
                3,
                rdkafka::admin::TopicReplication::Fixed(1),
            ),
        ];
        for r in admin
            .create_topics(&topics, &rdkafka::admin::AdminOptions::new())
            .await
            .unwrap()
        {
            r.unwrap();
        }
    });
    let mut p = Pipeline::start("copart", &brokers, "");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = p.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "did not refuse:\n{}",
            p.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success());
    let log = p.log_text();
    assert!(
        log.contains("auth-events has 2 partitions, action-events has 3"),
        "{log}"
    );
}

/// An input topic declares its format: Okta System Log records go through
/// the Okta adapter, and those that do not map are dead-lettered with the
/// adapter's reason.
#[test]
fn a_native_format_topic_maps_through_its_adapter() {
    if !broker_available("a_native_format_topic_maps_through_its_adapter") {
        return;
    }
    let sample = workspace().join("../shared/data/idp/elastic/okta/test-okta-system-events.log");
    let Ok(text) = std::fs::read_to_string(&sample) else {
        eprintln!(
            "a_native_format_topic_maps_through_its_adapter: skipped: {} is absent",
            sample.display()
        );
        return;
    };
    // What replay --format okta gives for the same records.
    let config = riskstream::replay::EngineOptions::default().load().unwrap();
    let mut replayer = riskstream::replay::Replayer::new(
        config.engine(),
        riskstream_schemas::ParseLimits::default(),
    );
    replayer.set_format(
        riskstream_adapters::Format::Okta,
        riskstream_adapters::AdapterOptions::default(),
    );
    let mut sink = riskstream::replay::JsonLines(Vec::new());
    replayer
        .run(text.as_bytes(), "okta", &mut sink, None)
        .unwrap();
    // The sample reuses event ids across principals, so records are
    // compared as a whole, not by id.
    let mut expected: Vec<serde_json::Value> = sink
        .0
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let summary = replayer.finish();
    assert_eq!(
        (summary.lines, summary.records),
        (20, 15),
        "the sample's counts (docs/ADAPTERS.md)"
    );

    let broker = Broker::start();
    let brokers = broker.brokers();
    let mut p = Pipeline::start(
        "okta",
        &brokers,
        "[[inputs]]\ntopic = \"okta-log\"\nformat = \"okta\"\n",
    );
    p.wait_ready(Duration::from_secs(60));
    // One key: one partition, one engine, the order of the file.
    let msgs: Vec<Outgoing> = lines
        .iter()
        .map(|l| Outgoing {
            topic: "okta-log".into(),
            key: b"okta-org".to_vec(),
            value: l.as_bytes().to_vec(),
        })
        .collect();
    TestProducer::new(&brokers).send(&msgs, 0..msgs.len(), None);
    let mut risk = TestConsumer::new(&brokers, "session-risk");
    assert!(
        risk.read_until(Duration::from_secs(60), |c| c.messages.len() >= 15),
        "{} of 15 records\n{}",
        risk.messages.len(),
        p.log_text()
    );
    let mut got: Vec<serde_json::Value> = risk
        .messages
        .iter()
        .map(|m| serde_json::from_slice(m.value.as_ref().unwrap()).unwrap())
        .collect();
    let key = |v: &serde_json::Value| v.to_string();
    got.sort_by_key(key);
    expected.sort_by_key(key);
    assert_eq!(got, expected, "records differ from replay --format okta");
    let mut dlq = TestConsumer::new(&brokers, "riskstream.dlq");
    assert!(dlq.read_until(Duration::from_secs(30), |c| c.messages.len() >= 5));
    for m in &dlq.messages {
        assert_eq!(m.headers["error"], "unmapped_type", "{:?}", m.headers);
        assert_eq!(m.headers["source.topic"], "okta-log");
        assert!(
            m.headers["error.detail"].starts_with("okta"),
            "{:?}",
            m.headers
        );
    }
    assert_eq!(dlq.messages.len(), 5);
    assert!(p.terminate(Duration::from_secs(20)).success());
}

/// One auth event as a message to `auth-events`, keyed by principal.
fn auth_event(
    id: &str,
    minute: u32,
    principal: &str,
    session: &str,
    kind: &str,
    ip: &str,
) -> Outgoing {
    let (agent, device, auth) = if kind == "login.success" && ip == "220.49.16.10" {
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/155.0.0.0 Safari/537.36",
            r#","device_id":"d-laptop","device_trust":"managed""#,
            r#","auth":{"aal":2,"acr":"urn:globex:mfa","amr":["pwd","otp"]}"#,
        )
    } else if kind == "login.success" {
        (
            "curl/7.88.1",
            r#","device_trust":"unknown""#,
            r#","auth":{"aal":1,"amr":["pwd"]}"#,
        )
    } else {
        ("curl/7.88.1", r#","device_trust":"unknown""#, "")
    };
    let value = format!(
        r#"{{"schema":"riskstream.event.v1","kind":"auth","id":"{id}","time":"2026-11-02T08:{minute:02}:00.000Z","tenant":"globex","principal":{{"id":"{principal}","type":"human","role":"engineering"}},"session":"{session}","type":"{kind}","context":{{"ip":"{ip}","user_agent":"{agent}"{device}}}{auth}}}"#
    );
    Outgoing {
        topic: "auth-events".to_owned(),
        key: principal.as_bytes().to_vec(),
        value: value.into_bytes(),
    }
}

#[test]
fn attack_sources_are_shared_across_partitions_and_instances() {
    if !broker_available("attack_sources_are_shared_across_partitions_and_instances") {
        return;
    }
    let broker = Broker::start();
    let brokers = broker.brokers();
    let shared = "riskstream.ip-observations";
    let mut a = Pipeline::start_with("sources-a", &brokers, "", shared);
    let mut b = Pipeline::start_with("sources-b", &brokers, "", shared);
    a.wait_ready(Duration::from_secs(60));
    b.wait_ready(Duration::from_secs(60));
    let producer = TestProducer::new(&brokers);
    let mut risk = TestConsumer::new(&brokers, "session-risk");

    // Twelve people log in at the office: which partition each lives on.
    let office = "220.49.16.10";
    let people: Vec<String> = (0..12).map(|i| format!("u-globex-9{i:03}")).collect();
    let mut msgs: Vec<Outgoing> = people
        .iter()
        .enumerate()
        .map(|(i, p)| {
            auth_event(
                &format!("w-{i}"),
                0,
                p,
                &format!("s-w-{i}"),
                "login.success",
                office,
            )
        })
        .collect();
    producer.send(&msgs, 0..msgs.len(), None);
    let partitions = producer.partitions();
    let target = &people[0];
    let target_partition = partitions[&0];
    // A list is tried from one address against the others, all on other
    // partitions than the target's.
    let attacker = "92.193.38.111";
    let victims: Vec<&String> = people
        .iter()
        .enumerate()
        .filter(|(i, _)| partitions[i] != target_partition)
        .map(|(_, p)| p)
        .collect();
    assert!(
        victims.len() >= 3,
        "the keys spread over the partitions: {partitions:?}"
    );
    let first_failure = msgs.len();
    for (i, v) in victims.iter().enumerate() {
        msgs.push(auth_event(
            &format!("f-{i}"),
            10 + i as u32,
            v,
            &format!("s-f-{i}"),
            "login.failure",
            attacker,
        ));
    }
    producer.send(&msgs, first_failure..msgs.len(), None);
    let scored = msgs.len();
    assert!(
        risk.read_until(Duration::from_secs(60), |c| c.events.len() >= scored),
        "{} of {scored} records\n{}\n{}",
        risk.events.len(),
        a.log_text(),
        b.log_text()
    );
    // Each instance has read every observation back (one per login).
    for p in [&a, &b] {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let metrics = p.get("/metrics").map(|m| m.1).unwrap_or_default();
            let n: f64 = metrics
                .lines()
                .find(|l| l.starts_with("riskstream_source_observations_in_total "))
                .and_then(|l| l.split(' ').nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
            if n >= scored as f64 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{n} of {scored} observations read back:\n{metrics}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    // Then the target's password works from the attacker's address.
    let hit = msgs.len();
    msgs.push(auth_event(
        "hit",
        30,
        target,
        "s-hit",
        "login.success",
        attacker,
    ));
    producer.send(&msgs, hit..msgs.len(), None);
    assert!(risk.read_until(Duration::from_secs(60), |c| c.events.contains("hit")));
    let record: serde_json::Value = risk
        .messages
        .iter()
        .map(|m| serde_json::from_slice::<serde_json::Value>(m.value.as_ref().unwrap()).unwrap())
        .find(|v| v["trigger"]["event_id"] == "hit")
        .unwrap();
    let signal = record["signals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["code"] == "credential_stuffing_source")
        .unwrap_or_else(|| panic!("no credential_stuffing_source: {record}"));
    assert_eq!(
        signal["evidence"]["accounts_failed"],
        victims.len(),
        "{record}"
    );
    assert_ne!(record["decision"], "allow", "{record}");
    // Without sharing, the target's partition alone has seen none of it.
    let alone = expected_records(&msgs, &producer.partitions());
    assert!(
        !alone["hit"]["signals"]
            .to_string()
            .contains("credential_stuffing_source"),
        "{}",
        alone["hit"]
    );
    for mut p in [a, b] {
        assert!(p.terminate(Duration::from_secs(20)).success());
    }
}
