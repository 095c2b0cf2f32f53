//! Golden scenarios as data (STYLE.md 14): each file in `tests/golden/`
//! lists events and, per event, the signal codes and decisions expected.
//! One runner for every detector; case names are the file names.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use riskstream_schemas::{ParseLimits, RiskRecord, parse_event};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    description: String,
    /// Why the case is skipped, if it is.
    #[serde(default)]
    skip: Option<String>,
    /// Days of clean daily logins (or token issues, for machines) to give
    /// the first step's principal a mature history before the steps.
    #[serde(default)]
    history: u32,
    step: Vec<Step>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Step {
    /// Minutes after 2026-11-02T08:00:00Z.
    at: f64,
    /// Auth type or action name.
    event: String,
    #[serde(default = "default_principal")]
    principal: String,
    #[serde(default = "default_type")]
    principal_type: String,
    /// `principal.role` (peer group).
    #[serde(default = "default_role")]
    role: String,
    /// `attributes` of an action.
    #[serde(default)]
    attributes: Option<toml::Table>,
    /// The step is sent this many times (ids `e-<n>-<k>`), `every` minutes
    /// apart; expectations are checked on the last one.
    #[serde(default = "default_repeat")]
    repeat: u32,
    #[serde(default = "default_every")]
    every: f64,
    /// Expected `step_up.method` (`mfa`, `jit_credential`, `approval`).
    #[serde(default)]
    method: Option<String>,
    #[serde(default = "default_session")]
    session: String,
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    trust: Option<String>,
    #[serde(default)]
    ua: Option<String>,
    #[serde(default)]
    aal: Option<u8>,
    #[serde(default)]
    id: Option<String>,
    /// Codes that must be among the record's signals.
    #[serde(default)]
    signals: Vec<String>,
    /// Codes that must not be.
    #[serde(default)]
    absent: Vec<String>,
    /// Decision for the trigger.
    #[serde(default)]
    decision: Option<String>,
    /// Decisions per class, `low,medium,high,critical`.
    #[serde(default)]
    decisions: Option<String>,
    #[serde(default)]
    min_score: Option<u8>,
    #[serde(default)]
    max_score: Option<u8>,
    /// Expected sequence number.
    #[serde(default)]
    seq: Option<u64>,
}

fn default_principal() -> String {
    "u-1".into()
}
fn default_type() -> String {
    "human".into()
}
fn default_session() -> String {
    "s-1".into()
}
fn default_role() -> String {
    "finance".into()
}
fn default_repeat() -> u32 {
    1
}
fn default_every() -> f64 {
    1.0
}

const AUTH_TYPES: &[&str] = &[
    "login.success",
    "login.failure",
    "mfa.challenge",
    "mfa.success",
    "mfa.failure",
    "mfa.push_denied",
    "logout",
    "token.issued",
    "token.refreshed",
    "token.revoked",
    "device.enrolled",
    "password.changed",
    "session.revoked",
];

fn event_json(n: usize, s: &Step) -> String {
    let base = riskstream_schemas::Timestamp::parse_rfc3339("2026-11-02T08:00:00Z").unwrap();
    let time = riskstream_schemas::Timestamp(base.0 + (s.at * 60_000.0) as i64);
    let mut v = serde_json::json!({
        "schema": "riskstream.event.v1",
        "id": s.id.clone().unwrap_or_else(|| format!("e-{n}")),
        "time": time.to_string(),
        "tenant": "acme",
        "principal": { "id": s.principal, "type": s.principal_type, "role": s.role },
        "session": s.session,
        "context": {},
    });
    if AUTH_TYPES.contains(&s.event.as_str()) {
        v["kind"] = "auth".into();
        v["type"] = s.event.clone().into();
    } else {
        v["kind"] = "action".into();
        v["action"] = s.event.clone().into();
    }
    let ctx = &mut v["context"];
    if let Some(ip) = &s.ip {
        ctx["ip"] = ip.clone().into();
    }
    if let Some(d) = &s.device {
        ctx["device_id"] = d.clone().into();
    }
    if let Some(t) = &s.trust {
        ctx["device_trust"] = t.clone().into();
    }
    ctx["user_agent"] =
        s.ua.clone()
            .unwrap_or_else(|| {
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) Chrome/120.0.0.0 Safari/537.36".into()
            })
            .into();
    if let Some(aal) = s.aal {
        v["auth"] = serde_json::json!({ "aal": aal });
    }
    if let Some(attributes) = &s.attributes {
        v["attributes"] = serde_json::to_value(attributes).unwrap();
    }
    v.to_string()
}

fn run_case(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let case: Case = toml::from_str(&text).map_err(|e| format!("bad case file: {e}"))?;
    if let Some(why) = &case.skip {
        println!("skipped {}: {why}", path.display());
        return Ok(());
    }
    let mut engine = common::engine();
    let mut failures = Vec::new();
    if let Some(first) = case.step.first() {
        for day in (1..=case.history).rev() {
            let mut w = first.clone();
            w.at = -(f64::from(day) * 1440.0);
            w.event = if first.principal_type == "human" {
                "login.success".into()
            } else {
                "token.issued".into()
            };
            w.session = format!("history-{day}");
            w.id = Some(format!("history-{day}"));
            w.aal = Some(if first.principal_type == "human" {
                2
            } else {
                1
            });
            let json = event_json(0, &w);
            let event = parse_event(json.as_bytes(), ParseLimits::default())
                .map_err(|e| format!("history: {e}"))?;
            engine
                .handle_event(&event)
                .map_err(|e| format!("history: {e}"))?;
        }
    }
    for (n, step) in case.step.iter().enumerate() {
        for k in 1..step.repeat {
            let mut s = step.clone();
            s.at = step.at - f64::from(step.repeat - k) * step.every;
            s.id = Some(format!("e-{n}-{k}"));
            let json = event_json(n, &s);
            let event = parse_event(json.as_bytes(), ParseLimits::default())
                .map_err(|e| format!("step {n} repeat {k}: {e}"))?;
            engine
                .handle_event(&event)
                .map_err(|e| format!("step {n} repeat {k}: {e}"))?;
        }
        let json = event_json(n, step);
        let event = parse_event(json.as_bytes(), ParseLimits::default())
            .map_err(|e| format!("step {n}: {e}"))?;
        let rec: RiskRecord = match engine.handle_event(&event) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("step {n} ({}): rejected: {e}", step.event));
                continue;
            }
        };
        let codes: Vec<&str> = rec.signals.iter().map(|s| s.code.as_ref()).collect();
        let mut fail = |what: String| {
            failures.push(format!("step {n} ({} at {}m): {what}; got score {} decision {} decisions {:?} signals {:?}", step.event, step.at, rec.score, rec.decision.as_str(), rec.decisions, codes))
        };
        for c in &step.signals {
            if !codes.contains(&c.as_str()) {
                fail(format!("missing signal {c}"));
            }
        }
        for c in &step.absent {
            if codes.contains(&c.as_str()) {
                fail(format!("unexpected signal {c}"));
            }
        }
        if let Some(d) = &step.decision
            && rec.decision.as_str() != d
        {
            fail(format!("decision {} expected", d));
        }
        if let Some(ds) = &step.decisions {
            let got = format!(
                "{},{},{},{}",
                rec.decisions.low.as_str(),
                rec.decisions.medium.as_str(),
                rec.decisions.high.as_str(),
                rec.decisions.critical.as_str()
            );
            if &got != ds {
                fail(format!("decisions {ds} expected"));
            }
        }
        if step.min_score.is_some_and(|m| rec.score < m) {
            fail(format!("score >= {:?} expected", step.min_score));
        }
        if step.max_score.is_some_and(|m| rec.score > m) {
            fail(format!("score <= {:?} expected", step.max_score));
        }
        if let Some(m) = &step.method {
            let got = rec
                .step_up
                .as_ref()
                .and_then(|s| serde_json::to_value(s.method).ok())
                .and_then(|v| v.as_str().map(str::to_owned));
            if got.as_deref() != Some(m.as_str()) {
                fail(format!("step_up.method {m} expected, got {got:?}"));
            }
        }
        if step.seq.is_some_and(|s| rec.seq != s) {
            fail(format!("seq {:?} expected, got {}", step.seq, rec.seq));
        }
    }
    if failures.is_empty() {
        println!("ok {}: {}", path.display(), case.description);
        Ok(())
    } else {
        Err(failures.join("\n  "))
    }
}

#[test]
fn golden_scenarios() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    paths.sort();
    assert!(
        paths.len() >= 10,
        "expected the golden cases in {}",
        dir.display()
    );
    let mut failed = Vec::new();
    for p in &paths {
        if let Err(e) = run_case(p) {
            failed.push(format!(
                "{}:\n  {e}",
                p.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} golden cases failed:\n{}",
        failed.len(),
        paths.len(),
        failed.join("\n")
    );
}

#[test]
fn default_policy_loads_and_classifies_contract_actions() {
    use riskstream_detectors::Policy;
    use riskstream_schemas::Sensitivity::*;
    let p = Policy::default_policy().unwrap();
    assert!(p.hash().starts_with("sha256:") && p.hash().len() == 71);
    for (name, class) in [
        ("data.export", High),
        ("rbac.assign", High),
        ("payment.approve", Critical),
        ("control.disable", Critical),
        ("device.enroll", High),
        ("api.admin.keys.create", Critical),
        ("tool.invoke.shell", Critical),
        ("tool.invoke.search", Medium),
        ("deploy.production", High),
        ("secrets.read", High),
        ("user.reset_mfa", Critical),
        ("refund.issue", Critical),
        ("page.view", Low),
    ] {
        assert_eq!(p.action_sensitivity(name), class, "{name}");
    }
}

#[test]
fn bad_policies_are_refused_with_the_value_named() {
    use riskstream_detectors::{DEFAULT_POLICY_TOML, Policy};
    let cases = [
        (
            "step_up_at = 30\n",
            "step_up_at = 95\n",
            "thresholds must not rise",
        ),
        (
            "base_log_odds = -6.0",
            "base_log_odds = 3.0",
            "base_log_odds = 3",
        ),
        (
            "impossible_travel = 6.0",
            "impossible_travel = 6.0\nteleport = 1.0",
            "teleport",
        ),
        (
            "max_travel_kmh = 1000.0",
            "max_travel_kmh = -1.0",
            "max_travel_kmh = -1",
        ),
        (
            "method = \"approval\"",
            "method = \"mfa\"",
            "cannot answer an MFA prompt",
        ),
        (
            "match = \"payment.*\"",
            "match = \"payment.[\"",
            "payment.[",
        ),
        ("min_aal = 2", "min_aal = 7", "min_aal = 7"),
        (
            "name = \"riskstream default\"",
            "name = \"x\"\nunknown_key = 1",
            "unknown_key",
        ),
    ];
    for (from, to, needle) in cases {
        assert!(DEFAULT_POLICY_TOML.contains(from), "{from}");
        let text = DEFAULT_POLICY_TOML.replacen(from, to, 1);
        let err = Policy::from_toml_str(&text).expect_err(needle).to_string();
        assert!(err.contains(needle), "{err:?} should name {needle:?}");
    }
}
