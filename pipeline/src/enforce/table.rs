//! The session table and the decision: no I/O, no clock.
//!
//! [`SessionTable::apply`] takes the messages of the risk topic (key and
//! value, a `None` value being a tombstone) and keeps, per session, what
//! the latest record says: the highest `seq` wins, as CONTRACT.md asks of
//! every consumer. [`Update::read`] does the parsing part of that alone, so
//! that the consumer can parse before it takes the table's lock.
//! [`Decider::decide`] answers a request from it.

use std::collections::HashMap;
use std::sync::RwLock;

use riskstream_detectors::Policy;
use riskstream_schemas::{
    Decision, Decisions, Level, PrincipalType, RiskRecord, Sensitivity, StepUp, StepUpMethod,
};
use serde::Serialize;

use super::config::{RawRoute, RequestConfig};

/// What the enforcement point keeps of a session's latest record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Held {
    /// Tenant of the record.
    pub tenant: String,
    /// Principal id.
    pub principal: String,
    /// Human, workload or agent: decides the step-up method.
    pub principal_type: PrincipalType,
    /// The record's `seq`.
    pub seq: u64,
    /// The record's `score`.
    pub score: u8,
    /// The record's `level`.
    pub level: Level,
    /// What the session may do next, per class.
    pub decisions: Decisions,
    /// Codes of the signals that count against the session (positive
    /// weight), largest weight first.
    pub reasons: Vec<String>,
    /// Trigger event id, for tracing a decision to its record.
    pub event_id: String,
}

impl Held {
    /// The parts of `record` a decision needs.
    pub fn from_record(record: &RiskRecord) -> Held {
        let mut signals: Vec<(&str, f64)> = record
            .signals
            .iter()
            .filter(|s| s.weight > 0.0)
            .map(|s| (s.code.as_ref(), s.weight))
            .collect();
        signals.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut reasons: Vec<String> = Vec::with_capacity(signals.len());
        for (code, _) in signals {
            if !reasons.iter().any(|r| r == code) {
                reasons.push(code.to_owned());
            }
        }
        Held {
            tenant: record.tenant.clone(),
            principal: record.principal.id.clone(),
            principal_type: record.principal.kind,
            seq: record.seq,
            score: record.score,
            level: record.level,
            decisions: record.decisions,
            reasons,
            event_id: record.trigger.event_id.clone(),
        }
    }
}

/// What applying one message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// A session seen for the first time.
    Added,
    /// A newer record replaced the held one.
    Replaced,
    /// A record whose `seq` is not above the held one: ignored.
    Stale,
    /// A tombstone removed the session.
    Removed,
    /// A tombstone for a session not held.
    NothingToRemove,
    /// A value that is not a risk record, or a message without a key:
    /// ignored.
    Invalid,
}

/// One message of the risk topic, read: what [`SessionTable::update`]
/// applies.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// A record of `session`.
    Record {
        /// The session (the record's, not the message key's).
        session: String,
        /// What the record says.
        held: Box<Held>,
    },
    /// A tombstone of the session in the key.
    Tombstone(String),
    /// A value that is not a risk record, or a tombstone without a key.
    Invalid,
}

impl Update {
    /// Reads one message: `key` is the session, `value` the record as JSON,
    /// `None` a tombstone.
    pub fn read(key: Option<&[u8]>, value: Option<&[u8]>) -> Update {
        let Some(value) = value else {
            return match key.and_then(|k| std::str::from_utf8(k).ok()) {
                Some(key) => Update::Tombstone(key.to_owned()),
                None => Update::Invalid,
            };
        };
        match serde_json::from_slice::<RiskRecord>(value) {
            Ok(record) => Update::Record {
                held: Box::new(Held::from_record(&record)),
                session: record.session,
            },
            Err(_) => Update::Invalid,
        }
    }
}

/// Session id to the latest record held.
#[derive(Debug, Default)]
pub struct SessionTable {
    sessions: HashMap<String, Held>,
}

impl SessionTable {
    /// An empty table.
    pub fn new() -> SessionTable {
        SessionTable::default()
    }

    /// Applies one message of the risk topic: `key` is the session, `value`
    /// the record as JSON, `None` a tombstone (which removes the session,
    /// as compaction will).
    pub fn apply(&mut self, key: Option<&[u8]>, value: Option<&[u8]>) -> Applied {
        self.update(Update::read(key, value))
    }

    /// Applies one message read by [`Update::read`].
    pub fn update(&mut self, update: Update) -> Applied {
        match update {
            Update::Record { session, held } => self.keep(session, *held),
            Update::Tombstone(session) => match self.sessions.remove(&session) {
                Some(_) => Applied::Removed,
                None => Applied::NothingToRemove,
            },
            Update::Invalid => Applied::Invalid,
        }
    }

    /// Keeps `record` unless a record of its session with a higher or equal
    /// `seq` is held.
    pub fn insert(&mut self, record: &RiskRecord) -> Applied {
        self.keep(record.session.clone(), Held::from_record(record))
    }

    fn keep(&mut self, session: String, new: Held) -> Applied {
        match self.sessions.get_mut(&session) {
            Some(held) if held.seq >= new.seq => Applied::Stale,
            Some(held) => {
                *held = new;
                Applied::Replaced
            }
            None => {
                self.sessions.insert(session, new);
                Applied::Added
            }
        }
    }

    /// The held record of `session`.
    pub fn get(&self, session: &str) -> Option<&Held> {
        self.sessions.get(session)
    }

    /// Sessions held.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

/// A question: may this session do this?
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// Session id; `None` counts as an unknown session.
    pub session: Option<String>,
    /// Action name, classed by the policy.
    pub action: Option<String>,
    /// Explicit class; wins over the action's.
    pub sensitivity: Option<Sensitivity>,
    /// Tenant; when given, a record of another tenant does not count.
    pub tenant: Option<String>,
    /// Request path, matched against the routes when there is no action.
    pub path: Option<String>,
}

/// The answer, with what it rests on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// `allow`, `step_up` or `deny`.
    pub decision: Decision,
    /// The session asked about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The action, as given or routed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The class the decision is for.
    pub class: Sensitivity,
    /// Whether the session has a record; `false` means the configured
    /// unknown-session default answered.
    pub known: bool,
    /// The record's `seq`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The record's `level`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// The record's `score`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<u8>,
    /// Signal codes against the session, largest weight first; or
    /// `unknown_session`.
    pub reasons: Vec<String>,
    /// The step-up to ask for, when `decision` is `step_up`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_up: Option<StepUp>,
    /// Trigger event id of the record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// The reason given when the unknown-session default answers.
pub const UNKNOWN_SESSION: &str = "unknown_session";

/// How many action names [`Decider`] remembers the class of. Real
/// deployments name tens to hundreds of actions; the bound only keeps
/// clients that send made-up names from growing the map without end
/// (past it, such names are matched against the policy's globs each time,
/// as every name was before the cache).
const ACTION_CLASSES_HELD: usize = 4096;

/// Answers requests from a table: the policy classes actions and gives
/// each class's step-up; the configuration gives the unknown-session
/// defaults and the routes.
#[derive(Debug)]
pub struct Decider {
    policy: Policy,
    requests: RequestConfig,
    /// The class of each action name asked about so far. The policy is
    /// frozen, so a name's class never changes, and matching a name
    /// against every `[[actions]]` glob was an eighth of a decision's
    /// instructions.
    action_classes: RwLock<HashMap<String, Sensitivity>>,
}

impl Decider {
    /// A decider on `policy` and `requests`.
    pub fn new(policy: Policy, requests: RequestConfig) -> Decider {
        Decider {
            policy,
            requests,
            action_classes: RwLock::new(HashMap::new()),
        }
    }

    /// The policy's class of `action`, remembered.
    fn action_class(&self, action: &str) -> Sensitivity {
        if let Ok(known) = self.action_classes.read()
            && let Some(&class) = known.get(action)
        {
            return class;
        }
        let class = self.policy.action_sensitivity(action);
        if let Ok(mut known) = self.action_classes.write()
            && known.len() < ACTION_CLASSES_HELD
        {
            known.insert(action.to_owned(), class);
        }
        class
    }

    /// How requests are read.
    pub fn requests(&self) -> &RequestConfig {
        &self.requests
    }

    /// The action of a request: as given, else from the first matching
    /// route.
    fn action(&self, request: &Request) -> Option<String> {
        if let Some(a) = request.action.as_deref().filter(|a| !a.is_empty()) {
            return Some(a.to_owned());
        }
        let path = request.path.as_deref()?;
        route(&self.requests.routes, path).map(str::to_owned)
    }

    /// The decision for `request` on what `table` holds.
    pub fn decide(&self, table: &SessionTable, request: &Request) -> Verdict {
        let action = self.action(request);
        let class = match (request.sensitivity, &action) {
            (Some(s), _) => s,
            (None, Some(a)) => self.action_class(a),
            (None, None) => self.requests.default_class,
        };
        let held = request
            .session
            .as_deref()
            .and_then(|s| table.get(s))
            .filter(|h| request.tenant.as_ref().is_none_or(|t| *t == h.tenant));
        let (decision, principal_type) = match held {
            Some(h) => (h.decisions.get(class), h.principal_type),
            // Without a record the principal's type is not known: the
            // human step-up (RFC 9470) is the one an interactive client
            // can answer.
            None => (
                self.requests.unknown_session.get(class),
                PrincipalType::Human,
            ),
        };
        let step_up =
            (decision == Decision::StepUp).then(|| self.policy.step_up_for(principal_type, class));
        Verdict {
            decision,
            session: request.session.clone(),
            action,
            class,
            known: held.is_some(),
            seq: held.map(|h| h.seq),
            level: held.map(|h| h.level),
            score: held.map(|h| h.score),
            reasons: match held {
                Some(h) => h.reasons.clone(),
                None => vec![UNKNOWN_SESSION.to_owned()],
            },
            step_up,
            event_id: held.map(|h| h.event_id.clone()),
        }
    }
}

/// The action of the first route whose prefix matches `path` (query
/// string ignored): the whole path, or the prefix followed by `/` (so
/// `/export` matches `/export` and `/export/1`, not `/exports`).
pub fn route<'a>(routes: &'a [RawRoute], path: &str) -> Option<&'a str> {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    routes
        .iter()
        .find(|r| {
            let p = r.prefix.as_str();
            path == p
                || (path.starts_with(p) && (p.ends_with('/') || path[p.len()..].starts_with('/')))
        })
        .map(|r| r.action.as_str())
}

/// The `WWW-Authenticate` challenge of a step-up.
///
/// - `mfa`: RFC 9470 section 3, `Bearer
///   error="insufficient_user_authentication"` with `error_description`,
///   `acr_values` and `max_age`;
/// - `jit_credential`: RFC 6750 `Bearer error="invalid_token"` with the
///   `scope` the new short-lived credential must be narrowed to;
/// - `approval`: RFC 9470's error, without `acr_values`: no
///   authentication of the caller's will do, a human must approve.
pub fn challenge(step_up: &StepUp) -> String {
    match step_up.method {
        StepUpMethod::Mfa => {
            let mut h = String::from(
                "Bearer error=\"insufficient_user_authentication\", error_description=\"A different authentication level is required\"",
            );
            if let Some(acr) = &step_up.acr_values {
                h.push_str(&format!(", acr_values=\"{}\"", quote_safe(acr)));
            }
            if let Some(max_age) = step_up.max_age {
                h.push_str(&format!(", max_age={max_age}"));
            }
            h
        }
        StepUpMethod::JitCredential => {
            let mut h = String::from(
                "Bearer error=\"invalid_token\", error_description=\"A short-lived narrowed credential is required\"",
            );
            if let Some(scope) = &step_up.scope {
                h.push_str(&format!(", scope=\"{}\"", quote_safe(scope)));
            }
            h
        }
        StepUpMethod::Approval => String::from(
            "Bearer error=\"insufficient_user_authentication\", error_description=\"A human must approve this action\"",
        ),
    }
}

/// Drops the characters a quoted-string cannot carry unescaped (`"`, `\`,
/// controls): acr values and scopes are URNs and words, so this only
/// guards against a policy typo breaking the header.
fn quote_safe(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::enforce::config::RawEnforceConfig;

    fn record(session: &str, seq: u64, high: &str, critical: &str) -> Vec<u8> {
        serde_json::json!({
            "schema": "riskstream.risk.v1",
            "tenant": "acme",
            "principal": {"id": "u-1", "type": "human"},
            "session": session,
            "seq": seq,
            "time": "2026-11-30T10:15:02.123Z",
            "trigger": {"event_id": format!("e-{seq}"), "kind": "action", "name": "data.export", "sensitivity": "high"},
            "score": 83,
            "level": "high",
            "decision": high,
            "decisions": {"low": "allow", "medium": "allow", "high": high, "critical": critical},
            "assurance": {"aal": 1},
            "signals": [
                {"detector": "device", "code": "known_device", "weight": -1.0, "evidence": {}},
                {"detector": "geo_velocity", "code": "new_country", "weight": 1.5, "evidence": {}},
                {"detector": "geo_velocity", "code": "impossible_travel", "weight": 4.0, "evidence": {}}
            ],
            "model": {"version": "riskstream 0.1.0", "policy": "sha256:x"}
        })
        .to_string()
        .into_bytes()
    }

    fn decider() -> Decider {
        let mut raw = RawEnforceConfig::default();
        raw.enforce.routes.push(RawRoute {
            prefix: "/export".to_owned(),
            action: "data.export".to_owned(),
        });
        raw.enforce.routes.push(RawRoute {
            prefix: "/pay/".to_owned(),
            action: "payment.approve".to_owned(),
        });
        let c = raw.build().unwrap();
        Decider::new(Policy::default_policy().unwrap(), c.requests)
    }

    fn ask(session: &str, action: &str) -> Request {
        Request {
            session: Some(session.to_owned()),
            action: Some(action.to_owned()),
            ..Request::default()
        }
    }

    #[test]
    fn highest_seq_wins_and_stale_records_are_ignored() {
        let mut t = SessionTable::new();
        let d = decider();
        assert_eq!(
            t.apply(Some(b"s1"), Some(&record("s1", 2, "allow", "allow"))),
            Applied::Added
        );
        assert_eq!(
            d.decide(&t, &ask("s1", "data.export")).decision,
            Decision::Allow
        );
        assert_eq!(
            t.apply(Some(b"s1"), Some(&record("s1", 3, "step_up", "deny"))),
            Applied::Replaced
        );
        // An older record arriving late, and a repeated one, change nothing.
        assert_eq!(
            t.apply(Some(b"s1"), Some(&record("s1", 1, "allow", "allow"))),
            Applied::Stale
        );
        assert_eq!(
            t.apply(Some(b"s1"), Some(&record("s1", 3, "allow", "allow"))),
            Applied::Stale
        );
        let v = d.decide(&t, &ask("s1", "data.export"));
        assert_eq!(v.decision, Decision::StepUp);
        assert_eq!(v.seq, Some(3));
        assert_eq!(v.class, Sensitivity::High);
        assert!(v.known);
        assert_eq!(v.level, Some(Level::High));
        assert_eq!(v.score, Some(83));
        // Positive signals only, largest weight first.
        assert_eq!(v.reasons, ["impossible_travel", "new_country"]);
        let s = v.step_up.unwrap();
        assert_eq!(s.method, StepUpMethod::Mfa);
        assert_eq!(s.acr_values.as_deref(), Some("urn:riskstream:mfa"));
        assert_eq!(s.max_age, Some(900));
        assert_eq!(
            d.decide(&t, &ask("s1", "payment.approve")).decision,
            Decision::Deny
        );
        assert_eq!(
            d.decide(&t, &ask("s1", "report.view")).decision,
            Decision::Allow
        );
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn tombstone_removes_and_garbage_is_ignored() {
        let mut t = SessionTable::new();
        t.apply(Some(b"s1"), Some(&record("s1", 5, "deny", "deny")));
        assert_eq!(t.apply(Some(b"s1"), None), Applied::Removed);
        assert_eq!(t.apply(Some(b"s1"), None), Applied::NothingToRemove);
        assert!(t.is_empty());
        assert_eq!(t.apply(Some(b"s2"), Some(b"{not json")), Applied::Invalid);
        assert_eq!(t.apply(None, None), Applied::Invalid);
        // After the tombstone a new record of the session counts again.
        assert_eq!(
            t.apply(Some(b"s1"), Some(&record("s1", 1, "allow", "allow"))),
            Applied::Added
        );
    }

    #[test]
    fn unknown_session_gets_the_configured_default_and_fails_closed_for_critical() {
        let t = SessionTable::new();
        let d = decider();
        let v = d.decide(&t, &ask("nobody", "payment.approve"));
        assert_eq!(v.decision, Decision::Deny);
        assert_eq!(v.class, Sensitivity::Critical);
        assert!(!v.known);
        assert_eq!(v.reasons, [UNKNOWN_SESSION]);
        let v = d.decide(&t, &ask("nobody", "data.export"));
        assert_eq!(v.decision, Decision::StepUp);
        assert_eq!(
            v.step_up.unwrap().acr_values.as_deref(),
            Some("urn:riskstream:mfa")
        );
        assert_eq!(
            d.decide(&t, &ask("nobody", "report.view")).decision,
            Decision::Allow
        );
        // No session at all is an unknown session.
        let v = d.decide(
            &t,
            &Request {
                action: Some("payment.approve".to_owned()),
                ..Request::default()
            },
        );
        assert_eq!(v.decision, Decision::Deny);
    }

    #[test]
    fn tenant_mismatch_is_unknown() {
        let mut t = SessionTable::new();
        t.apply(Some(b"s1"), Some(&record("s1", 1, "allow", "allow")));
        let d = decider();
        let mut r = ask("s1", "payment.approve");
        r.tenant = Some("acme".to_owned());
        assert_eq!(d.decide(&t, &r).decision, Decision::Allow);
        r.tenant = Some("globex".to_owned());
        let v = d.decide(&t, &r);
        assert!(!v.known);
        assert_eq!(v.decision, Decision::Deny);
    }

    #[test]
    fn routes_and_explicit_sensitivity() {
        let t = SessionTable::new();
        let d = decider();
        let by_path = |p: &str| {
            d.decide(
                &t,
                &Request {
                    session: Some("x".to_owned()),
                    path: Some(p.to_owned()),
                    ..Request::default()
                },
            )
        };
        assert_eq!(by_path("/export").action.as_deref(), Some("data.export"));
        assert_eq!(by_path("/export/7?fmt=csv").class, Sensitivity::High);
        assert_eq!(by_path("/exports").action, None);
        assert_eq!(by_path("/exports").class, Sensitivity::Low);
        assert_eq!(by_path("/pay/42").decision, Decision::Deny);
        // An explicit class wins over the action's.
        let mut r = ask("x", "payment.approve");
        r.sensitivity = Some(Sensitivity::Low);
        assert_eq!(d.decide(&t, &r).decision, Decision::Allow);
    }

    #[test]
    fn action_classes_are_remembered_up_to_the_bound() {
        let t = SessionTable::new();
        let d = decider();
        let policy = Policy::default_policy().unwrap();
        for round in 0..2 {
            for action in ["data.export", "payment.approve", "report.view"] {
                assert_eq!(
                    d.decide(&t, &ask("x", action)).class,
                    policy.action_sensitivity(action),
                    "{action}, round {round}"
                );
            }
        }
        // Past the bound, names are still classed, just not remembered.
        for n in 0..ACTION_CLASSES_HELD + 10 {
            let action = format!("payment.approve.{n}");
            assert_eq!(
                d.decide(&t, &ask("x", &action)).class,
                policy.action_sensitivity(&action)
            );
        }
        assert_eq!(d.action_classes.read().unwrap().len(), ACTION_CLASSES_HELD);
    }

    #[test]
    fn update_read_apart_from_the_table_applies_the_same() {
        let mut t = SessionTable::new();
        let u = Update::read(Some(b"s1"), Some(&record("s1", 2, "deny", "deny")));
        assert!(matches!(&u, Update::Record { session, .. } if session == "s1"));
        assert_eq!(t.update(u), Applied::Added);
        assert_eq!(t.get("s1").unwrap().seq, 2);
        assert_eq!(
            Update::read(Some(b"s1"), None),
            Update::Tombstone("s1".into())
        );
        assert_eq!(Update::read(Some(&[0xff]), None), Update::Invalid);
        assert_eq!(Update::read(Some(b"s1"), Some(b"[]")), Update::Invalid);
    }

    #[test]
    fn challenge_header_formats() {
        let p = Policy::default_policy().unwrap();
        let mfa = p.step_up_for(PrincipalType::Human, Sensitivity::Critical);
        assert_eq!(
            challenge(&mfa),
            "Bearer error=\"insufficient_user_authentication\", error_description=\"A different authentication level is required\", acr_values=\"urn:riskstream:phishing-resistant\", max_age=300"
        );
        let jit = p.step_up_for(PrincipalType::Workload, Sensitivity::High);
        assert_eq!(
            challenge(&jit),
            "Bearer error=\"invalid_token\", error_description=\"A short-lived narrowed credential is required\", scope=\"narrowed\""
        );
        let approval = p.step_up_for(PrincipalType::Agent, Sensitivity::High);
        assert!(challenge(&approval).contains("A human must approve"));
    }

    #[test]
    fn workload_step_up_is_a_jit_credential() {
        let mut t = SessionTable::new();
        let mut v: serde_json::Value =
            serde_json::from_slice(&record("w1", 1, "step_up", "deny")).unwrap();
        v["principal"]["type"] = "workload".into();
        t.apply(Some(b"w1"), Some(v.to_string().as_bytes()));
        let d = decider();
        let v = d.decide(&t, &ask("w1", "data.export"));
        assert_eq!(v.step_up.unwrap().method, StepUpMethod::JitCredential);
    }
}
