//! Evaluation on a tiny labelled world whose numbers are worked out by hand.
//!
//! Sessions (times on 2026-11-30; `E` is the engine's decision from the
//! hand-written records, `T` the timer-15m baseline's):
//!
//! - `u-a/s-a`, human, benign, scenario `normal`:
//!   09:00 login.success aal 2 (E allow); 09:10 data.export high (10 min: T
//!   allow; E allow); 09:30 data.export (30 min: T step-up, the user completes
//!   it, timer restarts at 09:30; E step_up); 09:40 payment.approve critical
//!   (10 min since the restart: T allow; E allow); 09:45 data.export.small
//!   medium (not sensitive); 09:50 report.view low; 09:56 data.export (26 min:
//!   T step-up, restart; E allow); 10:11 data.export (exactly 15 min: not
//!   older, T allow; E allow).
//! - `u-b/s-b`, human: 08:00 login.success aal 2 by the victim (benign,
//!   `normal`, E allow); then the attacker in the same session (scenario
//!   `account_takeover`): 08:05 data.export (5 min: T allow; E deny); 08:30
//!   payment.approve (T step-up, not completed, no restart; E step_up); 08:31
//!   data.export (31 min: T step-up; E allow); 08:40 login.success (attacker:
//!   not a benign login).
//! - `u-c/s-c`, human, `normal`: 12:00 login.success aal 1 (E step_up).
//! - `w-1/t-1`, workload, `ci`: 07:00 token.issued; 07:01
//!   api.admin.keys.create critical (no strong auth ever: T step-up, restart;
//!   E allow); 07:05 again (4 min: T allow; E step_up).
//! - noise: a repeated id (counted once), a line that is not JSON (rejected),
//!   an event no record names (without record).
//!
//! Overall: engine protection 2/3, friction 2/7, login friction 1/3;
//! timer-15m 2/3, 3/7, 0/3; always 3/3, 7/7, 0/3; never 0/3, 0/7, 0/3.

// Tests panic on purpose when something is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use riskstream::evaluate::{EvaluateOptions, EvaluationReport, Metrics, Ratio, evaluate};
use riskstream::replay::EngineOptions;
use riskstream_schemas::ParseLimits;
use serde_json::{Value, json};

struct Case {
    id: &'static str,
    principal: &'static str,
    kind: &'static str,
    session: &'static str,
    time: &'static str,
    name: &'static str,
    aal: Option<u8>,
    attack: bool,
    scenario: &'static str,
    /// Sensitivity and decision of its record; `None`: no record.
    record: Option<(&'static str, &'static str)>,
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    Case { id: "w1", principal: "w-1", kind: "workload", session: "t-1", time: "07:00", name: "token.issued", aal: None, attack: false, scenario: "ci", record: Some(("low", "allow")) },
    Case { id: "w2", principal: "w-1", kind: "workload", session: "t-1", time: "07:01", name: "api.admin.keys.create", aal: None, attack: false, scenario: "ci", record: Some(("critical", "allow")) },
    Case { id: "w3", principal: "w-1", kind: "workload", session: "t-1", time: "07:05", name: "api.admin.keys.create", aal: None, attack: false, scenario: "ci", record: Some(("critical", "step_up")) },
    Case { id: "b1", principal: "u-b", kind: "human", session: "s-b", time: "08:00", name: "login.success", aal: Some(2), attack: false, scenario: "normal", record: Some(("low", "allow")) },
    Case { id: "x1", principal: "u-b", kind: "human", session: "s-b", time: "08:05", name: "data.export", aal: None, attack: true, scenario: "account_takeover", record: Some(("high", "deny")) },
    Case { id: "x2", principal: "u-b", kind: "human", session: "s-b", time: "08:30", name: "payment.approve", aal: None, attack: true, scenario: "account_takeover", record: Some(("critical", "step_up")) },
    Case { id: "x3", principal: "u-b", kind: "human", session: "s-b", time: "08:31", name: "data.export", aal: None, attack: true, scenario: "account_takeover", record: Some(("high", "allow")) },
    Case { id: "x4", principal: "u-b", kind: "human", session: "s-b", time: "08:40", name: "login.success", aal: Some(1), attack: true, scenario: "account_takeover", record: Some(("low", "step_up")) },
    Case { id: "a1", principal: "u-a", kind: "human", session: "s-a", time: "09:00", name: "login.success", aal: Some(2), attack: false, scenario: "normal", record: Some(("low", "allow")) },
    Case { id: "a2", principal: "u-a", kind: "human", session: "s-a", time: "09:10", name: "data.export", aal: None, attack: false, scenario: "normal", record: Some(("high", "allow")) },
    Case { id: "a2", principal: "u-a", kind: "human", session: "s-a", time: "09:10", name: "data.export", aal: None, attack: false, scenario: "normal", record: Some(("high", "allow")) },
    Case { id: "a3", principal: "u-a", kind: "human", session: "s-a", time: "09:30", name: "data.export", aal: None, attack: false, scenario: "normal", record: Some(("high", "step_up")) },
    Case { id: "a4", principal: "u-a", kind: "human", session: "s-a", time: "09:40", name: "payment.approve", aal: None, attack: false, scenario: "normal", record: Some(("critical", "allow")) },
    Case { id: "a5", principal: "u-a", kind: "human", session: "s-a", time: "09:45", name: "data.export.small", aal: None, attack: false, scenario: "normal", record: Some(("medium", "step_up")) },
    Case { id: "a6", principal: "u-a", kind: "human", session: "s-a", time: "09:50", name: "report.view", aal: None, attack: false, scenario: "normal", record: Some(("low", "allow")) },
    Case { id: "a7", principal: "u-a", kind: "human", session: "s-a", time: "09:56", name: "data.export", aal: None, attack: false, scenario: "normal", record: Some(("high", "allow")) },
    Case { id: "a8", principal: "u-a", kind: "human", session: "s-a", time: "10:11", name: "data.export", aal: None, attack: false, scenario: "normal", record: Some(("high", "allow")) },
    Case { id: "c1", principal: "u-c", kind: "human", session: "s-c", time: "12:00", name: "login.success", aal: Some(1), attack: false, scenario: "normal", record: Some(("low", "step_up")) },
    Case { id: "n1", principal: "u-c", kind: "human", session: "s-c", time: "12:01", name: "data.export", aal: None, attack: false, scenario: "normal", record: None },
];

fn event_json(c: &Case) -> Value {
    let is_auth = c.name.starts_with("login.") || c.name.starts_with("token.");
    let mut e = json!({
        "schema": "riskstream.event.v1",
        "kind": if is_auth { "auth" } else { "action" },
        "id": c.id,
        "time": format!("2026-11-30T{}:00Z", c.time),
        "principal": { "id": c.principal, "type": c.kind },
        "session": c.session,
        "labels": { "attack": c.attack, "scenario": c.scenario },
    });
    if is_auth {
        e["type"] = json!(c.name);
    } else {
        e["action"] = json!(c.name);
    }
    if let Some(aal) = c.aal {
        e["auth"] = json!({ "aal": aal });
    }
    e
}

fn record_json(c: &Case, sensitivity: &str, decision: &str) -> Value {
    let is_auth = c.name.starts_with("login.") || c.name.starts_with("token.");
    json!({
        "schema": "riskstream.risk.v1",
        "tenant": "default",
        "principal": { "id": c.principal, "type": c.kind },
        "session": c.session,
        "seq": 1,
        "time": format!("2026-11-30T{}:00.000Z", c.time),
        "trigger": { "event_id": c.id, "kind": if is_auth { "auth" } else { "action" }, "name": c.name, "sensitivity": sensitivity },
        "score": 0,
        "level": "low",
        "decision": decision,
        "decisions": { "low": "allow", "medium": "allow", "high": "allow", "critical": "allow" },
        "assurance": { "aal": 0 },
        "signals": [],
        "model": { "version": "riskstream 0.1.0", "policy": "sha256:hand" },
    })
}

/// Writes the events and records files; returns their paths.
fn world(name: &str) -> (PathBuf, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("evaluate_baselines_{name}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut events = String::new();
    let mut records = String::new();
    for (i, c) in CASES.iter().enumerate() {
        events.push_str(&event_json(c).to_string());
        events.push('\n');
        if i == 3 {
            events.push_str("{not json\n\n");
        }
        if let Some((s, d)) = c.record {
            records.push_str(&record_json(c, s, d).to_string());
            records.push('\n');
        }
    }
    let (e, r) = (dir.join("events.jsonl"), dir.join("records.jsonl"));
    std::fs::write(&e, events).expect("write events");
    std::fs::write(&r, records).expect("write records");
    (e, r)
}

fn report(name: &str) -> EvaluationReport {
    let (events, records) = world(name);
    evaluate(&EvaluateOptions {
        events: vec![events],
        records: Some(records),
        engine: EngineOptions::default(),
        limits: ParseLimits::default(),
    })
    .expect("evaluation runs")
}

fn counts(r: Ratio) -> (u64, u64) {
    (r.numerator, r.denominator)
}

fn all(m: &Metrics) -> [(u64, u64); 3] {
    [
        counts(m.protection),
        counts(m.friction),
        counts(m.login_friction),
    ]
}

#[test]
fn overall_numbers_match_the_hand_count() {
    let r = report("overall");
    let s = &r.systems;
    assert_eq!(all(&s.engine.overall), [(2, 3), (2, 7), (1, 3)]);
    assert_eq!(all(&s.timer_15m.overall), [(2, 3), (3, 7), (0, 3)]);
    assert_eq!(all(&s.always.overall), [(3, 3), (7, 7), (0, 3)]);
    assert_eq!(all(&s.never.overall), [(0, 3), (0, 7), (0, 3)]);
    assert_eq!(s.always.overall.protection.value, Some(1.0));
    assert_eq!(s.always.overall.friction.value, Some(1.0));
    assert_eq!(s.engine.overall.friction.value, Some(2.0 / 7.0));

    let e = r.events;
    assert_eq!(e.lines, CASES.len() as u64 + 1);
    assert_eq!(e.rejected, 1);
    assert_eq!(e.duplicates, 1);
    assert_eq!(e.without_record, 1);
    assert_eq!(e.evaluated, CASES.len() as u64 - 2);
    assert_eq!(r.source.record_policies, vec!["sha256:hand".to_owned()]);
}

#[test]
fn per_scenario_and_per_principal_type() {
    let r = report("slices");
    assert!(r.scenarios["account_takeover"].is_attack());
    assert!(!r.scenarios["normal"].is_attack());
    assert!(!r.scenarios["ci"].is_attack());

    let e = &r.systems.engine;
    let t = &r.systems.timer_15m;
    assert_eq!(
        all(&e.by_scenario["account_takeover"]),
        [(2, 3), (0, 0), (0, 0)]
    );
    assert_eq!(
        all(&t.by_scenario["account_takeover"]),
        [(2, 3), (0, 0), (0, 0)]
    );
    assert_eq!(all(&e.by_scenario["normal"]), [(0, 0), (1, 5), (1, 3)]);
    assert_eq!(all(&t.by_scenario["normal"]), [(0, 0), (2, 5), (0, 3)]);
    assert_eq!(all(&e.by_scenario["ci"]), [(0, 0), (1, 2), (0, 0)]);
    assert_eq!(all(&t.by_scenario["ci"]), [(0, 0), (1, 2), (0, 0)]);

    assert_eq!(all(&e.by_principal_type["human"]), [(2, 3), (1, 5), (1, 3)]);
    assert_eq!(
        all(&e.by_principal_type["workload"]),
        [(0, 0), (1, 2), (0, 0)]
    );
    assert_eq!(all(&e.by_principal_type["agent"]), [(0, 0), (0, 0), (0, 0)]);
    assert_eq!(e.by_principal_type["agent"].protection.value, None);
}

#[test]
fn thresholds_for_ci() {
    let r = report("thresholds");
    assert!(r.check(Some(0.6), Some(0.3)).is_empty());
    assert_eq!(r.check(Some(0.9), None).len(), 1);
    assert_eq!(r.check(None, Some(0.2)).len(), 1);
    assert_eq!(r.check(Some(0.9), Some(0.2)).len(), 2);
}

#[test]
fn text_report_shows_every_system_and_scenario() {
    let text = report("text").to_text();
    for needle in [
        "engine",
        "always",
        "timer-15m",
        "never",
        "account_takeover",
        "normal",
        "ci",
        "0.667 (2/3)",
        "0.286 (2/7)",
        "0.429 (3/7)",
        "workload",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

fn riskstream(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_riskstream"))
        .args(args)
        .output()
        .expect("riskstream runs")
}

#[test]
fn the_binary_prints_json_and_gates() {
    let (events, records) = world("binary");
    let (events, records) = (
        events.to_string_lossy().into_owned(),
        records.to_string_lossy().into_owned(),
    );
    let out = riskstream(&[
        "evaluate",
        "--events",
        &events,
        "--records",
        &records,
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json output");
    assert_eq!(v["schema"], "riskstream.evaluation.v1");
    let p = &v["systems"]["timer-15m"]["overall"]["friction"];
    assert_eq!(
        (p["numerator"].as_u64(), p["denominator"].as_u64()),
        (Some(3), Some(7))
    );
    assert!(v["systems"]["engine"]["by_principal_type"]["agent"]["protection"]["value"].is_null());

    let fail = riskstream(&[
        "evaluate",
        "--events",
        &events,
        "--records",
        &records,
        "--min-protection",
        "0.9",
    ]);
    assert_eq!(fail.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&fail.stderr).contains("below --min-protection"));
    let pass = riskstream(&[
        "evaluate",
        "--events",
        &events,
        "--records",
        &records,
        "--min-protection",
        "0.6",
        "--max-friction",
        "0.3",
    ]);
    assert_eq!(pass.status.code(), Some(0));
    let usage = riskstream(&["evaluate", "--events", &events, "--min-protection", "2"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn in_memory_replay_joins_every_event() {
    let (events, _) = world("in_memory");
    let r = evaluate(&EvaluateOptions {
        events: vec![events],
        records: None,
        engine: EngineOptions::default(),
        limits: ParseLimits::default(),
    })
    .expect("evaluation runs");
    assert_eq!(r.events.rejected, 1);
    assert_eq!(r.events.without_record, 0);
    // The repeated id's record is re-emitted by the engine and counted once.
    assert_eq!(r.events.duplicates, 1);
    assert_eq!(r.events.evaluated, CASES.len() as u64 - 1);
    assert!(r.source.policy.is_some());
    // `always` stops every sensitive action the engine's policy names.
    let a = &r.systems.always.overall;
    assert_eq!(a.protection.numerator, a.protection.denominator);
    assert_eq!(a.friction.numerator, a.friction.denominator);
    assert_eq!(r.systems.never.overall.protection.numerator, 0);
}
