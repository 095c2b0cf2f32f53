//! The Okta adapter on real System Log events (../shared/data/idp: Panther's
//! rule tests and Elastic's pipeline tests), on hand-written events that
//! follow Okta's System Log documentation (tests/samples/okta_*), and Okta's
//! own risk verdict replayed through the engine for comparison.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    SingleEventTally, attr, check_documented_cases, idp_file, maxmind_engine, normalize_json,
    only_event, read_json_lines, read_panther, sample_path,
};
use riskstream_adapters::{Format, Unmapped, UnmappedReason};
use riskstream_detectors::Engine;
use riskstream_schemas::{Event, Level, RiskRecord, Timestamp};
use serde_json::{Value, json};

const PANTHER: &str = "panther/Okta_SystemLog.jsonl";
const ELASTIC: &str = "elastic/okta/test-okta-system-events.log";

fn okta(record: &Value) -> Result<Vec<Event>, Unmapped> {
    normalize_json(Format::Okta, record)
}

/// The vendor type of a record, for the breakdown.
fn vendor_type(record: &Value) -> String {
    record
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("eventType")))
        .and_then(|(_, v)| v.as_str())
        .unwrap_or("(none)")
        .to_owned()
}

/// Counts of a file's records: mapped, and unmapped per reason; and per
/// vendor type, what each became.
fn new_tally() -> SingleEventTally {
    SingleEventTally::new(Format::Okta, vendor_type, 55)
}

#[test]
fn panther_okta_records_map_or_are_rejected_for_a_reason() {
    let Some(path) = idp_file(PANTHER) else {
        return;
    };
    let rows = read_panther(&path);
    let mut tally = new_tally();
    for row in &rows {
        tally.add(&row.event);
    }
    tally.print(PANTHER);
    assert_eq!(rows.len(), 88);
    assert_eq!(tally.mapped, 56);
    // Rate-limit notices, app.oauth2.authorize.code, synthetic types
    // ("logout", app.token.reuse), ThreatInsight on an address, and
    // user.session.start without an outcome.
    assert_eq!(tally.unmapped(UnmappedReason::UnmappedType), 18);
    // `published` absent or "redacted" (and no p_event_time to fall back on).
    assert_eq!(tally.unmapped(UnmappedReason::NoTime), 10);
    // user.authentication.sso tests with no actor at all.
    assert_eq!(tally.unmapped(UnmappedReason::NoActor), 2);
    // Enrichment-only rows (GreyNoise, OTX) without an Okta event.
    assert_eq!(tally.unmapped(UnmappedReason::NotRecognised), 2);
    assert_eq!(
        tally.mapped + tally.unmapped.values().sum::<usize>(),
        rows.len()
    );
}

#[test]
fn elastic_okta_records_map_or_are_rejected_for_a_reason() {
    let Some(path) = idp_file(ELASTIC) else {
        return;
    };
    let rows = read_json_lines(&path);
    let mut tally = new_tally();
    for row in &rows {
        tally.add(row);
    }
    tally.print(ELASTIC);
    assert_eq!(rows.len(), 20);
    assert_eq!(tally.mapped, 15);
    // Four policy.evaluate_sign_on ALLOW (the session start that follows is
    // the login) and one app.user_management import.
    assert_eq!(tally.unmapped(UnmappedReason::UnmappedType), 5);
    assert_eq!(tally.unmapped.values().sum::<usize>(), 5);
}

fn one(record: &Value) -> Event {
    only_event(okta(record).unwrap())
}

#[test]
fn elastic_records_keep_address_agent_session_and_assurance() {
    let Some(path) = idp_file(ELASTIC) else {
        return;
    };
    let rows = read_json_lines(&path);

    // Okta Verify push approved (line 16).
    let push = one(&rows[15]);
    assert_eq!(push.name(), "mfa.success");
    assert_eq!(push.id, "okta:uuid");
    assert_eq!(push.principal.id, "id");
    assert_eq!(push.principal.kind.as_str(), "human");
    assert_eq!(attr(&push, "login"), Some("user@domain.com"));
    assert_eq!(push.session, "uuid");
    assert_eq!(push.context.ip, "127.0.0.1".parse().ok());
    assert!(
        push.context
            .user_agent
            .as_deref()
            .unwrap()
            .contains("OktaVerify/7.12.0")
    );
    assert_eq!(push.context.asn, Some(3303));
    let auth = push.auth.as_ref().unwrap();
    assert_eq!(auth.amr, ["swk", "mfa"]);
    assert_eq!(auth.aal, Some(2));
    assert_eq!(attr(&push, "okta_factor"), Some("OKTA_VERIFY_PUSH"));
    assert_eq!(attr(&push, "okta_risk"), Some("LOW"));
    assert_eq!(attr(&push, "okta_behaviors"), Some("none"));

    // WebAuthn (line 17): a hardware key, and the device token hash.
    let webauthn = one(&rows[16]);
    assert_eq!(webauthn.auth.as_ref().unwrap().amr, ["hwk", "mfa"]);
    assert_eq!(webauthn.context.device_id.as_deref(), Some("hash"));
    assert_eq!(
        attr(&webauthn, "okta_behaviors"),
        Some("New City, New Geo-Location, New IP")
    );

    // Okta's HIGH verdict (line 15); its user agent is "unknown", so absent.
    let high = one(&rows[14]);
    assert_eq!(high.name(), "login.success");
    assert_eq!(attr(&high, "okta_risk"), Some("HIGH"));
    assert_eq!(
        attr(&high, "okta_risk_reasons"),
        Some("Anomalous Device, Anomalous Location")
    );
    assert_eq!(attr(&high, "okta_behaviors"), Some("New Device, Velocity"));
    assert!(high.context.user_agent.is_none());
    assert!(
        high.source
            .as_ref()
            .unwrap()
            .missing
            .contains(&"context.user_agent".to_owned())
    );

    // The verdict only logged (logOnlySecurityData, line 13).
    let logged = one(&rows[12]);
    assert_eq!(attr(&logged, "okta_risk"), Some("HIGH"));
    assert_eq!(
        attr(&logged, "okta_behaviors"),
        Some("New City, New Country, New Geo-Location, New IP, New State")
    );

    // A factor verification (line 14) is MFA, not a second login.
    let verify = one(&rows[13]);
    assert_eq!(verify.name(), "mfa.success");
    assert_eq!(
        verify.context.device_id.as_deref(),
        Some("541daf91d15bef64a7e08c946fd9a9d0")
    );

    // Session start and end (lines 1-2) with the session id; line 11 writes
    // "null" as the client address, and the request's IP chain has it.
    let start = one(&rows[1]);
    assert_eq!(
        (start.name(), start.session.as_str()),
        ("login.success", "102bZDNFfWaQSyEZQuDgWt-uQ")
    );
    assert_eq!(
        start.time,
        Timestamp::parse_rfc3339("2020-02-14T20:18:57.718Z").unwrap()
    );
    assert_eq!(one(&rows[0]).name(), "logout");
    let chained = one(&rows[10]);
    assert_eq!(chained.context.ip, "175.16.199.1".parse().ok());
    assert!(chained.source.as_ref().unwrap().missing.is_empty());

    // An admin adds a user to a group (line 19): an rbac action on the group.
    let grant = one(&rows[18]);
    assert_eq!(grant.action(), Some("rbac.assign"));
    assert_eq!(grant.resource.as_deref(), Some("Sales"));
    assert_eq!(attr(&grant, "target_login"), Some("target.user@test.com"));
    assert_eq!(grant.principal.id, "randomidhere");
}

#[test]
fn panther_records_in_their_export_forms() {
    let Some(path) = idp_file(PANTHER) else {
        return;
    };
    let rows = read_panther(&path);
    let event = |i: usize| one(&rows[i].event);

    // Lower-cased keys (a data-lake export) read as the camelCase ones.
    let locked = event(56);
    assert_eq!(locked.name(), "login.failure");
    assert_eq!(attr(&locked, "blocked"), Some("locked_out"));
    assert_eq!(locked.session, "abcd-1234");
    assert_eq!(locked.context.device_id.as_deref(), Some("000abc"));
    assert_eq!(locked.context.asn, Some(7018));

    // "2020-11-25 21:27:03.496000000": Panther's time form.
    let grant = event(4);
    assert_eq!(grant.action(), Some("rbac.assign"));
    assert_eq!(
        grant.time,
        Timestamp::parse_rfc3339("2020-11-25T21:27:03.496Z").unwrap()
    );
    assert_eq!(
        grant.resource.as_deref(),
        Some("Organization administrator, Application administrator (all)")
    );
    assert_eq!(attr(&grant, "target_login"), Some("alice@acme.io"));

    // No `published`: Panther's p_event_time. An unresolved user ("unknown")
    // is the name that was typed.
    let brute = event(67);
    assert_eq!(brute.name(), "login.failure");
    assert_eq!(brute.principal.id, "admin");
    assert_eq!(
        brute.time,
        Timestamp::parse_rfc3339("2021-06-04T09:59:53.650Z").unwrap()
    );
    assert!(
        brute
            .source
            .as_ref()
            .unwrap()
            .missing
            .contains(&"session".to_owned())
    );

    // A refresh token replayed: the client acts, the token is the user's.
    let reuse = event(12);
    assert_eq!(reuse.name(), "token.revoked");
    assert_eq!(reuse.principal.id, "00abc124");
    assert_eq!(reuse.principal.kind.as_str(), "human");
    assert_eq!(attr(&reuse, "client_id"), Some("okta.1234."));
    assert_eq!(attr(&reuse, "token_reuse"), Some("true"));

    // MFA reset and API token creation are sensitive acts.
    assert_eq!(event(62).action(), Some("user.reset_mfa"));
    assert_eq!(event(9).action(), Some("api.admin.keys.create"));
    assert_eq!(event(0).action(), Some("user.impersonate"));
    assert_eq!(event(2).action(), Some("control.disable"));
    assert_eq!(event(33).action(), Some("secrets.read"));
    // The user's own report of a push or sign-in that was not theirs.
    let report = event(65);
    assert_eq!(report.name(), "mfa.push_denied");
    assert_eq!(attr(&report, "okta_reported_ip"), Some("9.8.7.6"));
    // A sign-on policy CHALLENGE asks for a factor.
    assert_eq!(event(26).name(), "mfa.challenge");
    assert_eq!(
        attr(&event(26), "okta_behaviors"),
        Some("New Device, New IP")
    );
}

/// The hand-written events: each line names a case, the expectation and the
/// record, as Okta's System Log documentation shapes it.
#[test]
fn documented_event_types_the_samples_lack() {
    let path = sample_path("okta_documented.jsonl");
    let cases = read_json_lines(&path);
    assert_eq!(cases.len(), 25);
    check_documented_cases(&cases, okta, |e| {
        vec![
            ("principal", Some(e.principal.id.clone())),
            ("principal_type", Some(e.principal.kind.as_str().to_owned())),
            ("session", Some(e.session.clone())),
            ("resource", e.resource.clone()),
            ("device_id", e.context.device_id.clone()),
            ("user_agent", e.context.user_agent.clone()),
            (
                "device_trust",
                e.context.device_trust.map(|t| {
                    serde_json::to_value(t)
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_owned()
                }),
            ),
        ]
    });
}

/// Scores events in order as the replay does: principals idle beyond the
/// expiry are forgotten first.
fn score(engine: &mut Engine, e: &Event) -> RiskRecord {
    if engine.poll_timeout().is_some_and(|due| due <= e.time) {
        engine.handle_timeout(e.time);
    }
    engine.handle_event(e).unwrap()
}

#[test]
fn push_fatigue_from_okta_verify_events() {
    let Some(mut engine) = maxmind_engine() else {
        return;
    };
    let path = sample_path("okta_push_fatigue.jsonl");
    let records: Vec<RiskRecord> = read_json_lines(&path)
        .iter()
        .map(|r| score(&mut engine, &one(r)))
        .collect();
    let names: Vec<&str> = records.iter().map(|r| r.trigger.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "mfa.challenge",
            "mfa.challenge",
            "mfa.push_denied",
            "mfa.challenge",
            "mfa.push_denied",
            "mfa.challenge",
            "mfa.success",
            "login.success"
        ]
    );
    let approved = &records[6];
    assert!(
        approved
            .signals
            .iter()
            .any(|s| s.code == "mfa_push_fatigue"),
        "{:?}",
        approved.signals
    );
    assert!(approved.level >= Level::Medium, "{:?}", approved.level);
    for r in &records {
        println!("{} {}", r.trigger.name, describe(r));
    }
}

/// One row of the verdict-agreement table.
struct Agreement {
    source: String,
    vendor: String,
    engine: String,
    agrees: Option<bool>,
}

/// Okta's behaviour names against the engine's signal codes.
fn engine_behaviours(record: &RiskRecord) -> Vec<&'static str> {
    let has = |codes: &[&str]| {
        record
            .signals
            .iter()
            .any(|s| codes.contains(&s.code.as_ref()))
    };
    let mut out = Vec::new();
    if has(&["new_device", "untrusted_device", "tainted_device"]) {
        out.push("New Device");
    }
    if has(&["unfamiliar_address", "unfamiliar_network"]) {
        out.push("New IP");
    }
    if has(&["unfamiliar_location", "new_country"]) {
        out.push("New Geo-Location");
    }
    if has(&["new_country"]) {
        out.push("New Country");
    }
    if has(&["impossible_travel"]) {
        out.push("Velocity");
    }
    out
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Low => "LOW",
        Level::Medium => "MEDIUM",
        // Okta has three levels; CAEP maps critical to HIGH as well.
        Level::High | Level::Critical => "HIGH",
    }
}

fn describe(record: &RiskRecord) -> String {
    let codes: Vec<&str> = record.signals.iter().map(|s| s.code.as_ref()).collect();
    format!(
        "{} ({}) [{}]",
        level_name(record.level),
        record.score,
        codes.join(", ")
    )
}

/// The previous sessions Panther's Okta.PotentiallyStolenSession rule test
/// mocked (rules/okta_rules/okta_potentially_stolen_session.yml): AS number,
/// address and user agent, by test name. The samples carry only the new
/// event; the test replays this state before it.
fn stolen_session_mock(test_name: &str) -> Option<(u32, &'static str, &'static str)> {
    const LINUX: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/84.0.4147.135 Safari/537.36";
    const MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/105.0.0.0 Safari/537.36";
    match test_name {
        "Same device and OS" => Some((263_297, "1.2.3.4", LINUX)),
        "Different device & ASN" => Some((123_456, "4.3.2.1", MAC)),
        "Different ASN & same device" => Some((654_321, "1.2.3.4", LINUX)),
        "Okta internal event should be ignored" => Some((123_456, "4.3.2.1", MAC)),
        _ => None,
    }
}

#[test]
fn okta_verdicts_against_the_engine() {
    let (Some(elastic), Some(panther)) = (idp_file(ELASTIC), idp_file(PANTHER)) else {
        return;
    };
    let Some(mut replay) = maxmind_engine() else {
        return;
    };
    let mut table: Vec<Agreement> = Vec::new();

    // Elastic: the whole file in event-time order through one engine, so
    // that a principal's earlier sign-ins are its history. The fixture
    // reuses uuids across unrelated events; the line number keeps them apart
    // (the engine would otherwise answer a "redelivery" with the first
    // record).
    let mut events: Vec<(usize, Event, Value)> = Vec::new();
    for (i, row) in read_json_lines(&elastic).into_iter().enumerate() {
        if let Ok(mut e) = okta(&row).map(|mut v| v.remove(0)) {
            e.id = format!("{}#{}", e.id, i + 1);
            events.push((i + 1, e, row));
        }
    }
    events.sort_by_key(|(line, e, _)| (e.time, *line));
    for (line, e, _) in &events {
        let record = score(&mut replay, e);
        let Some(vendor_level) = attr(e, "okta_risk") else {
            continue;
        };
        let okta_positive: Vec<&str> = attr(e, "okta_behaviors")
            .filter(|b| *b != "none")
            .map(|b| b.split(", ").collect())
            .unwrap_or_default();
        let ours = engine_behaviours(&record);
        let shared: Vec<&&str> = okta_positive.iter().filter(|b| ours.contains(b)).collect();
        table.push(Agreement {
            source: format!(
                "elastic line {line} {}",
                e.source.as_ref().unwrap().kind.as_deref().unwrap_or("")
            ),
            vendor: format!("{vendor_level} [{}]", okta_positive.join(", ")),
            engine: format!(
                "{} behaviours in common: {}",
                describe(&record),
                shared.len()
            ),
            agrees: Some(level_name(record.level) == vendor_level.to_ascii_uppercase()),
        });
    }

    // Panther: each rule test alone through a fresh engine, as the rule saw
    // it, compared with its expected alert (the engine alerts at level high).
    for row in read_panther(&panther) {
        let rule = row.rule.as_str();
        if !matches!(
            rule,
            "Standard.ImpossibleTravel.Login"
                | "Okta.PotentiallyStolenSession"
                | "Okta.New.Behavior.Accessing.Admin.Console"
        ) {
            continue;
        }
        let test_name = row.test.as_str();
        let expected = row.alert;
        let mut record = row.event.clone();
        let mut engine = maxmind_engine().unwrap();
        let mut prior = None;
        if let Some((asn, ip, ua)) = stolen_session_mock(test_name) {
            // The samples redact the time; any time serves a one-event replay.
            record["published"] = json!("2024-01-01T12:00:00.000Z");
            let mut before = record.clone();
            before["uuid"] = json!("mocked-previous-session");
            before["published"] = json!("2024-01-01T11:30:00.000Z");
            before["outcome"] = json!({ "result": "SUCCESS" });
            before["client"]["ipAddress"] = json!(ip);
            before["client"]["userAgent"]["rawUserAgent"] = json!(ua);
            before["securityContext"] = json!({ "asNumber": asn });
            prior = Some(one(&before));
        }
        let source = format!("panther {rule} / {test_name}");
        let vendor = format!("alert={expected}");
        match okta(&record) {
            Err(u) => table.push(Agreement {
                source,
                vendor,
                engine: format!("not mapped: {}", u.reason),
                agrees: None,
            }),
            Ok(mut v) => {
                if let Some(p) = &prior {
                    score(&mut engine, p);
                }
                let r = score(&mut engine, &v.remove(0));
                table.push(Agreement {
                    source,
                    vendor,
                    engine: describe(&r),
                    agrees: Some((r.level >= Level::High) == expected),
                });
            }
        }
    }

    println!(
        "{:<95} | {:<60} | {:<70} | agree",
        "record", "Okta / Panther verdict", "engine"
    );
    for row in &table {
        let agree = match row.agrees {
            Some(true) => "yes",
            Some(false) => "no",
            None => "-",
        };
        println!(
            "{:<95} | {:<60} | {:<70} | {agree}",
            row.source, row.vendor, row.engine
        );
    }
    let compared = table.iter().filter(|r| r.agrees.is_some()).count();
    let agreed = table.iter().filter(|r| r.agrees == Some(true)).count();
    println!(
        "agreement: {agreed} of {compared} compared ({} rows)",
        table.len()
    );
    // Six elastic events carry Okta's verdict; Panther has 8 impossible-
    // travel, 4 stolen-session and 4 new-behaviour tests, one of which
    // ("logout") is no Okta event.
    assert_eq!(table.len(), 22);
    assert_eq!(compared, 21);
}
