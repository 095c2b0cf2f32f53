//! Replay over hand-written input: every kind of bad line, gzip, determinism.

// Tests panic on purpose when something is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufReader, Cursor, Write};

use riskstream::replay::{
    EngineOptions, JsonLines, LineReader, REJECT_RAW_CHARS, ReplaySummary, Replayer,
    wrap_decompress,
};
use riskstream_detectors::{Engine, EngineConfig};
use riskstream_schemas::{ParseLimits, RejectReason};
use serde_json::Value;

const LIMITS: ParseLimits = ParseLimits { max_bytes: 2048 };

fn event(id: &str, principal: &str, minute: u32, kind_and_name: &str) -> String {
    format!(
        r#"{{"schema":"riskstream.event.v1",{kind_and_name},"id":"{id}","time":"2026-11-30T10:{minute:02}:00Z","principal":{{"id":"{principal}","type":"human"}},"session":"s-{principal}","context":{{"ip":"81.2.69.142","device_id":"d-1"}},"auth":{{"aal":2}}}}"#
    )
}

fn login(id: &str, principal: &str, minute: u32) -> String {
    event(
        id,
        principal,
        minute,
        r#""kind":"auth","type":"login.success""#,
    )
}

fn action(id: &str, principal: &str, minute: u32, name: &str) -> String {
    event(
        id,
        principal,
        minute,
        &format!(r#""kind":"action","action":"{name}""#),
    )
}

/// The hand-written input and what each non-blank line should become:
/// `None` for a record, `Some(reason)` for a reject.
fn input() -> (Vec<u8>, Vec<Option<RejectReason>>) {
    // (bytes, None) is raw text that holds no counted line.
    let mut parts: Vec<(Vec<u8>, Option<Option<RejectReason>>)> = Vec::new();
    let mut line = |bytes: &[u8], e: Option<RejectReason>| {
        let mut l = bytes.to_vec();
        l.push(b'\n');
        parts.push((l, Some(e)));
    };
    line(login("e-1", "u-1", 0).as_bytes(), None);
    line(b"this is not json", Some(RejectReason::NotJson));
    line(
        login("e-x", "u-2", 1)
            .replace(r#""id":"e-x","#, "")
            .as_bytes(),
        Some(RejectReason::MissingField),
    );
    line(
        login("e-k", "u-2", 1)
            .replace(r#""kind":"auth""#, r#""kind":"telemetry""#)
            .as_bytes(),
        Some(RejectReason::UnknownKind),
    );
    line(
        login("e-t", "u-2", 1)
            .replace("login.success", "login.maybe")
            .as_bytes(),
        Some(RejectReason::UnknownType),
    );
    line(
        login("e-time", "u-2", 1)
            .replace("2026-11-30T10:01:00Z", "yesterday")
            .as_bytes(),
        Some(RejectReason::UnparsableTime),
    );
    let big = action("e-big", "u-2", 1, "data.export").replace(
        r#""principal""#,
        &format!(r#""resource":"{}","principal""#, "r".repeat(5000)),
    );
    line(big.as_bytes(), Some(RejectReason::TooLarge));
    let mut bad_utf8 = login("e-utf", "u-2", 1).into_bytes();
    let at = bad_utf8.len() / 2;
    bad_utf8.insert(at, 0xff);
    line(&bad_utf8, Some(RejectReason::NotJson));
    // The first repetition of an id gets its record again.
    line(login("e-1", "u-1", 0).as_bytes(), None);
    // Blank lines are skipped and not counted.
    line(b"", None);
    line(b"   ", None);
    line(b"\r", None);
    // As many more events of u-1 as the engine keeps records for (16 by
    // default) push e-1's record out of the engine's memory
    // (StateLimits::remembered_records); the id itself is still remembered.
    for i in 0..remembered() {
        let name = if i % 2 == 0 {
            "report.view"
        } else {
            "payment.approve"
        };
        let mut l = action(&format!("e-1-{i}"), "u-1", 1 + i, name).into_bytes();
        if i == 3 {
            l.push(b'\r'); // a CRLF line
        }
        line(&l, None);
    }
    line(
        login("e-1", "u-1", 0).as_bytes(),
        Some(RejectReason::Duplicate),
    );
    // The last line has no newline.
    parts.push((login("e-last", "u-3", 30).into_bytes(), Some(None)));
    let blank = |b: &[u8]| b.iter().all(u8::is_ascii_whitespace);
    let expect = parts
        .iter()
        .filter(|(b, _)| !blank(b))
        .filter_map(|(_, e)| *e)
        .collect();
    (parts.into_iter().flat_map(|(b, _)| b).collect(), expect)
}

/// Records the engine remembers per principal, to re-emit them for a
/// repeated id.
fn remembered() -> u32 {
    let n = riskstream_detectors::StateLimits::default().remembered_records;
    assert!(
        n < 50,
        "the input's minutes assume fewer than 50 filler events"
    );
    u32::try_from(n).unwrap()
}

fn engine() -> Engine {
    let loaded = EngineOptions::default()
        .load()
        .expect("fixture engine config loads");
    loaded.engine()
}

fn run(input: &[u8]) -> (Vec<u8>, Vec<Value>, ReplaySummary) {
    let mut replayer = Replayer::new(engine(), LIMITS);
    let mut out = JsonLines(Vec::new());
    let mut rejects: Vec<u8> = Vec::new();
    let reader = wrap_decompress(BufReader::new(Cursor::new(input.to_vec()))).expect("reader");
    replayer
        .run(reader, "input.jsonl", &mut out, Some(&mut rejects))
        .expect("replay runs");
    let rejects = String::from_utf8(rejects)
        .expect("rejects are UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("reject is JSON"))
        .collect();
    (out.0, rejects, replayer.finish())
}

#[test]
fn every_line_is_a_record_or_a_reject_with_its_reason() {
    let (input, expect) = input();
    let (records, rejects, summary) = run(&input);

    let expected_rejects: Vec<RejectReason> = expect.iter().flatten().copied().collect();
    let expected_records = expect.iter().filter(|e| e.is_none()).count() as u64;
    assert_eq!(summary.lines, expect.len() as u64);
    assert_eq!(summary.blank_lines, 3);
    assert_eq!(summary.records, expected_records);
    assert_eq!(summary.rejected, expected_rejects.len() as u64);
    assert_eq!(summary.reemitted_duplicates, 1);
    assert_eq!(summary.accepted, expected_records - 1);
    assert!(summary.is_balanced());
    assert_eq!(summary.lines, summary.records + summary.rejected);
    for reason in RejectReason::ALL {
        let n = expected_rejects.iter().filter(|r| **r == reason).count() as u64;
        assert_eq!(summary.rejects.get(reason), n, "{reason}");
    }
    let decided: u64 = riskstream_schemas::Sensitivity::ALL
        .iter()
        .map(|s| summary.decisions.get(*s).total())
        .sum();
    assert_eq!(decided, summary.records);

    // Each reject names its file, physical line and reason, in input order.
    let reasons: Vec<&str> = rejects
        .iter()
        .map(|r| r["reason"].as_str().unwrap_or("?"))
        .collect();
    let expected: Vec<&str> = expected_rejects.iter().map(|r| r.as_str()).collect();
    assert_eq!(reasons, expected);
    assert!(rejects.iter().all(|r| r["file"] == "input.jsonl"));
    let lines: Vec<u64> = rejects
        .iter()
        .map(|r| r["line"].as_u64().unwrap_or(0))
        .collect();
    // Physical lines: the blank lines (10, 11, 12) count in line numbers.
    let duplicate_line = 13 + u64::from(remembered());
    assert_eq!(lines, vec![2, 3, 4, 5, 6, 7, 8, duplicate_line]);
    assert_eq!(rejects[1]["field"], "id");
    assert_eq!(rejects[4]["field"], "time");
    assert_eq!(rejects[7]["field"], "id");
    assert!(rejects[0]["field"].is_null());
    assert!(
        rejects[5]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("limit 2048"))
    );
    // The too-large line is cut in the rejects file.
    let raw = rejects[5]["raw"].as_str().unwrap_or_default();
    assert_eq!(raw.chars().count(), REJECT_RAW_CHARS);
    // Invalid UTF-8 is decoded lossily, never a crash.
    assert!(
        rejects[6]["raw"]
            .as_str()
            .is_some_and(|r| r.contains('\u{fffd}'))
    );
    assert!(
        rejects[6]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("UTF-8"))
    );

    // The first repetition of e-1 re-emits its record, byte for byte.
    let text = String::from_utf8(records).expect("records are UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len() as u64, summary.records);
    assert_eq!(lines[0], lines[1]);
    let first: Value = serde_json::from_str(lines[0]).expect("record is JSON");
    assert_eq!(first["trigger"]["event_id"], "e-1");
    assert_eq!(first["seq"], 1);
    let last: Value = serde_json::from_str(lines[lines.len() - 1]).expect("record is JSON");
    assert_eq!(last["trigger"]["event_id"], "e-last");
}

#[test]
fn records_follow_the_risk_schema() {
    let (input, _) = input();
    let (records, _, _) = run(&input);
    let schema: Value =
        serde_json::from_str(riskstream_schemas::RISK_SCHEMA).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    for line in String::from_utf8(records).expect("UTF-8").lines() {
        let record: Value = serde_json::from_str(line).expect("record is JSON");
        let errors: Vec<String> = validator
            .iter_errors(&record)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{line}: {errors:?}");
    }
}

#[test]
fn gzip_input_gives_the_same_output_as_plain() {
    let (input, _) = input();
    let (plain, plain_rejects, plain_summary) = run(&input);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&input).expect("compress");
    let gz = gz.finish().expect("compress");
    let (zipped, zipped_rejects, zipped_summary) = run(&gz);
    assert_eq!(plain, zipped);
    assert_eq!(plain_rejects, zipped_rejects);
    assert_eq!(plain_summary, zipped_summary);

    // Concatenated gzip members (`cat a.gz b.gz`) read as one stream.
    let cut = input.len() / 2;
    let mut two = Vec::new();
    for part in [&input[..cut], &input[cut..]] {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(part).expect("compress");
        two.extend(gz.finish().expect("compress"));
    }
    let (concatenated, _, _) = run(&two);
    assert_eq!(plain, concatenated);
}

#[test]
fn the_same_input_twice_gives_identical_bytes() {
    let (input, _) = input();
    let (a, _, _) = run(&input);
    let (b, _, _) = run(&input);
    assert!(!a.is_empty());
    assert_eq!(a, b);
}

#[test]
fn line_reader_keeps_bounded_bytes_and_finds_the_next_line() {
    let long = vec![b'x'; 10_000];
    let mut input = Vec::new();
    input.extend_from_slice(b"short\r\n");
    input.extend_from_slice(&long);
    input.extend_from_slice(b"\nafter\n\nend");
    // A tiny buffer makes every line cross refills.
    let mut reader = LineReader::new(BufReader::with_capacity(7, Cursor::new(input)), 100);
    let mut seen = Vec::new();
    while let Some(line) = reader.next_line().expect("read") {
        assert!(line.bytes.len() <= 101);
        seen.push((
            line.number,
            line.bytes.to_vec(),
            line.len,
            line.is_truncated(),
            line.is_blank(),
        ));
    }
    assert_eq!(seen.len(), 5);
    assert_eq!(seen[0], (1, b"short".to_vec(), 5, false, false));
    assert_eq!(
        (seen[1].0, seen[1].1.len(), seen[1].2, seen[1].3),
        (2, 101, 10_000, true)
    );
    assert_eq!(seen[2], (3, b"after".to_vec(), 5, false, false));
    assert_eq!(seen[3], (4, Vec::new(), 0, false, true));
    assert_eq!(seen[4], (5, b"end".to_vec(), 3, false, false));

    // A line of exactly the limit is whole and accepted by size; one byte
    // more is too large; the reader keeps one byte beyond the limit, so the
    // CRLF form of a line of exactly the limit is whole too.
    let mut r = LineReader::new(
        Cursor::new(b"12345\n123456\n12345\r\n1234567\n".to_vec()),
        5,
    );
    let mut got = Vec::new();
    while let Some(l) = r.next_line().expect("read") {
        let too_large = riskstream::replay::parse_line(&l, ParseLimits { max_bytes: 5 })
            .is_err_and(|e| e.reason == RejectReason::TooLarge);
        got.push((l.len, l.is_truncated(), too_large));
    }
    assert_eq!(
        got,
        vec![
            (5, false, false),
            (6, false, true),
            (5, false, false),
            (7, true, true)
        ]
    );
}

#[test]
fn idle_principals_expire_by_event_time() {
    let config = EngineOptions::default().load().expect("config");
    let policy_hash = config.policy.hash.clone();
    let engine_config = std::sync::Arc::new(EngineConfig {
        policy: riskstream_detectors::Policy::default_policy().expect("default policy"),
        geo: riskstream_detectors::GeoIp::default(),
        limits: riskstream_detectors::StateLimits {
            idle_expiry_seconds: 3600,
            ..Default::default()
        },
        ip_observations: Default::default(),
    });
    let mut replayer = Replayer::new(Engine::new(engine_config), LIMITS);
    let input = format!(
        "{}\n{}\n{}\n",
        login("a", "u-1", 0),
        login("b", "u-2", 1),
        login("c", "u-3", 1).replace("2026-11-30T10:01:00Z", "2026-11-30T12:00:00Z"),
    );
    let mut out = JsonLines(Vec::new());
    replayer
        .run(Cursor::new(input), "t", &mut out, None)
        .expect("replay runs");
    let summary = replayer.finish();
    assert_eq!(summary.expired_principals, 2);
    assert_eq!(summary.principals, 1);
    assert!(String::from_utf8_lossy(&out.0).contains(&policy_hash));
}
