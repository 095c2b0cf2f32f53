//! The threshold sweep on a tiny labelled world whose numbers are worked
//! out by hand.
//!
//! Sensitive actions (high or critical) with their record's score and the
//! engine's decision:
//!
//! | id | attack | sensitivity | score | engine |
//! |----|--------|-------------|-------|--------|
//! | x1 | yes | high     | 90 | deny    |
//! | x2 | yes | critical | 60 | step_up |
//! | x3 | yes | high     | 20 | allow   |
//! | a1 | no  | high     | 0  | allow   |
//! | a2 | no  | high     | 10 | allow   |
//! | a3 | no  | critical | 50 | step_up |
//! | a4 | no  | high     | 70 | allow   |
//!
//! Not counted: a login (score 80), a medium action (score 95), a repeat of
//! a2's event (the id was seen).
//!
//! So with "step up iff score >= t": t = 0 gives 3/3 and 4/4; t = 11 gives
//! 3/3 and 2/4; t = 21 and t = 50 give 2/3 (x1, x2) and 2/4 (a3, a4);
//! t = 61 gives 1/3 and 1/4; t = 91 and t = 101 give 0/3 and 0/4. The
//! engine's point is protection 2/3, friction 1/4.

// Tests panic on purpose when something is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use riskstream::evaluate::{EvaluateOptions, Ratio, evaluate_with_scores};
use riskstream::replay::EngineOptions;
use riskstream::sweep::{CSV_HEADER, MAX_THRESHOLD, PNG_SIZE, Sweep};
use riskstream_schemas::ParseLimits;
use serde_json::{Value, json};

struct Case {
    id: &'static str,
    time: &'static str,
    name: &'static str,
    attack: bool,
    sensitivity: &'static str,
    score: u8,
    decision: &'static str,
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    Case { id: "l1", time: "09:00", name: "login.success", attack: false, sensitivity: "low", score: 80, decision: "step_up" },
    Case { id: "x1", time: "09:01", name: "data.export", attack: true, sensitivity: "high", score: 90, decision: "deny" },
    Case { id: "x2", time: "09:02", name: "payment.approve", attack: true, sensitivity: "critical", score: 60, decision: "step_up" },
    Case { id: "x3", time: "09:03", name: "data.export", attack: true, sensitivity: "high", score: 20, decision: "allow" },
    Case { id: "a1", time: "09:04", name: "data.export", attack: false, sensitivity: "high", score: 0, decision: "allow" },
    Case { id: "a2", time: "09:05", name: "data.export", attack: false, sensitivity: "high", score: 10, decision: "allow" },
    Case { id: "a2", time: "09:05", name: "data.export", attack: false, sensitivity: "high", score: 10, decision: "allow" },
    Case { id: "a3", time: "09:06", name: "payment.approve", attack: false, sensitivity: "critical", score: 50, decision: "step_up" },
    Case { id: "a4", time: "09:07", name: "data.export", attack: false, sensitivity: "high", score: 70, decision: "allow" },
    Case { id: "m1", time: "09:08", name: "data.export.small", attack: false, sensitivity: "medium", score: 95, decision: "step_up" },
];

fn event_json(c: &Case) -> Value {
    let is_auth = c.name.starts_with("login.");
    let mut e = json!({
        "schema": "riskstream.event.v1",
        "kind": if is_auth { "auth" } else { "action" },
        "id": c.id,
        "time": format!("2026-11-30T{}:00Z", c.time),
        "principal": { "id": "u-1", "type": "human" },
        "session": "s-1",
        "labels": { "attack": c.attack, "scenario": if c.attack { "account_takeover" } else { "normal" } },
    });
    if is_auth {
        e["type"] = json!(c.name);
        e["auth"] = json!({ "aal": 1 });
    } else {
        e["action"] = json!(c.name);
    }
    e
}

fn record_json(c: &Case) -> Value {
    let is_auth = c.name.starts_with("login.");
    json!({
        "schema": "riskstream.risk.v1",
        "tenant": "default",
        "principal": { "id": "u-1", "type": "human" },
        "session": "s-1",
        "seq": 1,
        "time": format!("2026-11-30T{}:00.000Z", c.time),
        "trigger": { "event_id": c.id, "kind": if is_auth { "auth" } else { "action" }, "name": c.name, "sensitivity": c.sensitivity },
        "score": c.score,
        "level": "low",
        "decision": c.decision,
        "decisions": { "low": "allow", "medium": "allow", "high": "allow", "critical": "allow" },
        "assurance": { "aal": 0 },
        "signals": [],
        "model": { "version": "riskstream 0.1.0", "policy": "sha256:hand" },
    })
}

/// A fresh directory for one test, with the events and records files.
fn world(name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("evaluate_sweep_{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut events = String::new();
    let mut records = String::new();
    for c in CASES {
        events.push_str(&event_json(c).to_string());
        events.push('\n');
        records.push_str(&record_json(c).to_string());
        records.push('\n');
    }
    let (e, r) = (dir.join("events.jsonl"), dir.join("records.jsonl"));
    std::fs::write(&e, events).expect("write events");
    std::fs::write(&r, records).expect("write records");
    (dir, e, r)
}

fn sweep(name: &str) -> Sweep {
    let (_, events, records) = world(name);
    let (report, scores) = evaluate_with_scores(&EvaluateOptions {
        events: vec![events],
        records: Some(records),
        engine: EngineOptions::default(),
        limits: ParseLimits::default(),
    })
    .expect("evaluate");
    Sweep::new(&scores, &report.systems)
}

fn counts(r: Ratio) -> (u64, u64) {
    (r.numerator, r.denominator)
}

#[test]
fn sweep_matches_hand_counts() {
    let s = sweep("hand");
    assert_eq!(s.curve.len(), usize::from(MAX_THRESHOLD) + 1);
    for (i, p) in s.curve.iter().enumerate() {
        assert_eq!(usize::from(p.threshold), i);
    }
    let at = |t: usize| (counts(s.curve[t].protection), counts(s.curve[t].friction));
    assert_eq!(at(0), ((3, 3), (4, 4)));
    assert_eq!(s.curve[0].protection.value, Some(1.0));
    assert_eq!(s.curve[0].friction.value, Some(1.0));
    assert_eq!(at(10), ((3, 3), (3, 4)));
    assert_eq!(at(11), ((3, 3), (2, 4)));
    assert_eq!(at(20), ((3, 3), (2, 4)));
    assert_eq!(at(21), ((2, 3), (2, 4)));
    assert_eq!(at(50), ((2, 3), (2, 4)));
    assert_eq!(at(51), ((2, 3), (1, 4)));
    assert_eq!(at(61), ((1, 3), (1, 4)));
    assert_eq!(at(91), ((0, 3), (0, 4)));
    assert_eq!(at(101), ((0, 3), (0, 4)));
    assert_eq!(s.curve[101].protection.value, Some(0.0));
    assert_eq!(s.curve[101].friction.value, Some(0.0));

    let names: Vec<&str> = s.points.iter().map(|p| p.name).collect();
    assert_eq!(names, ["engine", "always", "timer-15m", "never"]);
    let engine = &s.points[0];
    assert_eq!(counts(engine.protection), (2, 3));
    assert_eq!(counts(engine.friction), (1, 4));
    assert_eq!(counts(s.points[1].protection), (3, 3));
    assert_eq!(counts(s.points[3].friction), (0, 4));
}

#[test]
fn sweep_is_monotone() {
    let s = sweep("monotone");
    for pair in s.curve.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(
            b.protection.numerator <= a.protection.numerator,
            "{a:?} {b:?}"
        );
        assert!(b.friction.numerator <= a.friction.numerator, "{a:?} {b:?}");
        assert_eq!(b.protection.denominator, a.protection.denominator);
        assert_eq!(b.friction.denominator, a.friction.denominator);
    }
}

/// The CSV and the PNG, written by the command.
#[test]
fn command_writes_csv_and_png() {
    let (dir, events, records) = world("cli");
    let (csv, png) = (dir.join("sweep.csv"), dir.join("sweep.png"));
    let out = Command::new(env!("CARGO_BIN_EXE_riskstream"))
        .args(["evaluate", "--events"])
        .arg(&events)
        .arg("--records")
        .arg(&records)
        .arg("--sweep-csv")
        .arg(&csv)
        .arg("--sweep-png")
        .arg(&png)
        .output()
        .expect("run riskstream");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The CSV: the header, 102 sweep rows in threshold order, the systems.
    let text = std::fs::read_to_string(&csv).expect("csv");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(CSV_HEADER));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert!(rows.iter().all(|r| r.len() == 8), "{rows:?}");
    let sweep: Vec<_> = rows.iter().filter(|r| r[0] == "sweep").collect();
    assert_eq!(sweep.len(), 102);
    for (i, r) in sweep.iter().enumerate() {
        assert_eq!(r[1].parse::<usize>().unwrap(), i);
        let protection: f64 = r[2].parse().unwrap();
        let friction: f64 = r[3].parse().unwrap();
        let n: Vec<u64> = r[4..].iter().map(|v| v.parse().unwrap()).collect();
        assert_eq!(protection, n[0] as f64 / n[1] as f64);
        assert_eq!(friction, n[2] as f64 / n[3] as f64);
    }
    assert_eq!(
        sweep[50][1..].join(","),
        "50,0.6666666666666666,0.5,2,3,2,4"
    );
    let named: Vec<_> = rows.iter().filter(|r| r[0] != "sweep").collect();
    let names: Vec<&str> = named.iter().map(|r| r[0]).collect();
    assert_eq!(names, ["engine", "always", "timer-15m", "never"]);
    assert!(named.iter().all(|r| r[1].is_empty()));
    assert_eq!(named[0][2..].join(","), "0.6666666666666666,0.25,2,3,1,4");

    // The PNG: magic bytes, IHDR size, and some of each system's colour.
    let bytes = std::fs::read(&png).expect("png");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&bytes[12..16], b"IHDR");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), PNG_SIZE);
    let mut reader = png::Decoder::new(std::io::Cursor::new(&bytes))
        .read_info()
        .expect("decodes");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut pixels).expect("frame");
    assert_eq!((frame.width, frame.height), PNG_SIZE);
    assert_eq!(frame.color_type, png::ColorType::Rgb);
    let count = |rgb: [u8; 3]| pixels.chunks(3).filter(|p| *p == rgb).count();
    assert!(count([255, 0, 0]) > 50, "the engine's red marker");
    assert!(count([0, 0, 255]) > 200, "the blue sweep line");
    assert!(count([0, 0, 0]) > 200, "black text and frames");
}
