//! The Auth0 adapter on real tenant log events (../shared/data/idp:
//! Panther's rule tests and Elastic's pipeline tests), and on hand-written
//! events that follow Auth0's log event documentation and its published log
//! schemas (tests/samples/auth0_*).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    SingleEventTally, attr, check_documented_cases, idp_file, maxmind_engine, normalize_json,
    only_event, read_json_lines, read_panther, sample_path,
};
use riskstream_adapters::{Format, Unmapped, UnmappedReason};
use riskstream_schemas::{Event, Level, RiskRecord, Timestamp};
use serde_json::Value;

const PANTHER: &str = "panther/Auth0_Events.jsonl";
const ELASTIC_FAILURE: &str = "elastic/auth0/auth0-login-failure.native.jsonl";
const ELASTIC_SUCCESS: &str = "elastic/auth0/auth0-login-success.first5.native.jsonl";

fn auth0(record: &Value) -> Result<Vec<Event>, Unmapped> {
    normalize_json(Format::Auth0, record)
}

fn one(record: &Value) -> Event {
    only_event(auth0(record).unwrap())
}

/// The log type code, bare or in a stream envelope, for the breakdown.
fn code(record: &Value) -> String {
    record
        .get("data")
        .unwrap_or(record)
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("(none)")
        .to_owned()
}

/// Counts of a file's records: mapped, and unmapped per reason; and per log
/// type, what each became.
fn new_tally() -> SingleEventTally {
    SingleEventTally::new(Format::Auth0, code, 25)
}

#[test]
fn panther_auth0_records_map_or_are_rejected_for_a_reason() {
    let Some(path) = idp_file(PANTHER) else {
        return;
    };
    let rows = read_panther(&path);
    let mut tally = new_tally();
    for row in &rows {
        tally.add(&row.event);
    }
    tally.print(PANTHER);
    assert_eq!(rows.len(), 57);
    assert_eq!(tally.mapped, 51);
    // signup_pwd_leak x5: a sign-up is no sign-in of an existing principal.
    assert_eq!(tally.unmapped(UnmappedReason::UnmappedType), 5);
    // fcoa without a user.
    assert_eq!(tally.unmapped(UnmappedReason::NoActor), 1);
    assert_eq!(
        tally.mapped + tally.unmapped.values().sum::<usize>(),
        rows.len()
    );
}

#[test]
fn elastic_auth0_records_map_or_are_rejected_for_a_reason() {
    let (Some(failures), Some(successes)) = (idp_file(ELASTIC_FAILURE), idp_file(ELASTIC_SUCCESS))
    else {
        return;
    };
    let mut tally = new_tally();
    for row in read_json_lines(&failures) {
        tally.add(&row);
    }
    tally.print(ELASTIC_FAILURE);
    assert_eq!(tally.mapped, 2);
    // Callback-URL mismatch and a disabled connection: no user was named.
    assert_eq!(tally.unmapped(UnmappedReason::NoActor), 3);
    assert_eq!(tally.unmapped.values().sum::<usize>(), 3);

    let mut tally = new_tally();
    for row in read_json_lines(&successes) {
        tally.add(&row);
    }
    tally.print(ELASTIC_SUCCESS);
    assert_eq!(tally.mapped, 5);
    assert!(tally.unmapped.is_empty());
}

#[test]
fn elastic_records_keep_address_agent_session_and_assurance() {
    let (Some(failures), Some(successes)) = (idp_file(ELASTIC_FAILURE), idp_file(ELASTIC_SUCCESS))
    else {
        return;
    };
    let ok = read_json_lines(&successes);
    let s = one(&ok[0]);
    assert_eq!(s.name(), "login.success");
    assert_eq!(
        s.id,
        "auth0:90020211104001515271334544008635532534914988032684720226"
    );
    assert_eq!(
        s.time,
        Timestamp::parse_rfc3339("2021-11-04T00:15:10.706Z").unwrap()
    );
    assert_eq!(s.principal.id, "auth0|618223a4e3f49e006948565c");
    assert_eq!(s.principal.kind.as_str(), "human");
    assert_eq!(attr(&s, "login"), Some("dev@test.com"));
    assert_eq!(s.session, "m5SgtzMKxmeNBxj_kCfUUJhzrSdfvLFu");
    assert_eq!(s.context.ip, "114.76.60.57".parse().ok());
    assert!(
        s.context
            .user_agent
            .as_deref()
            .unwrap()
            .starts_with("Mozilla/5.0 (Macintosh")
    );
    let auth = s.auth.as_ref().unwrap();
    assert_eq!(
        (auth.amr.as_slice(), auth.aal),
        (&["pwd".to_owned()][..], Some(1))
    );
    assert_eq!(s.source.as_ref().unwrap().missing, ["context.device_id"]);

    let bad = read_json_lines(&failures);
    // Wrong password: the user is known.
    let fp = one(&bad[4]);
    assert_eq!(
        (fp.name(), fp.principal.id.as_str()),
        ("login.failure", "auth0|61823277a44a21007221a59a")
    );
    // Unknown user: only the name that was typed.
    let fu = one(&bad[3]);
    assert_eq!(
        (fu.name(), fu.principal.id.as_str()),
        ("login.failure", "neo@gmail.com")
    );
    assert!(
        fu.source
            .as_ref()
            .unwrap()
            .missing
            .contains(&"session".to_owned())
    );
    // A callback-URL mismatch names nobody.
    assert_eq!(auth0(&bad[0]).unwrap_err().reason, UnmappedReason::NoActor);
}

#[test]
fn panther_records_in_their_export_forms() {
    let Some(path) = idp_file(PANTHER) else {
        return;
    };
    let rows = read_panther(&path);
    let event = |i: usize| one(&rows[i].event);

    // A log-stream envelope; Panther's "2025-10-03 14:09:32.149000000".
    let off = event(0);
    assert_eq!(off.action(), Some("control.disable"));
    assert_eq!(
        off.time,
        Timestamp::parse_rfc3339("2025-10-03T14:09:32.149Z").unwrap()
    );
    assert_eq!(off.principal.id, "google-oauth2|105261262156475850461");
    assert_eq!(attr(&off, "login"), Some("denethor@lotr.com"));
    // The Management API token is the session.
    assert_eq!(off.session, "0000000000ecaf1bfbadb06900d22049");
    assert_eq!(
        off.resource.as_deref(),
        Some("/v2/attack-protection/suspicious-ip-throttling")
    );
    assert_eq!(off.context.ip, "12.12.12.12".parse().ok());
    // The same call refused (400): the protection stays on.
    let refused = event(1);
    assert_eq!(refused.action(), Some("control.update"));
    assert_eq!(attr(&refused, "outcome"), Some("failure"));

    // Breached password, IPv6, no user id: the name typed.
    let leak = event(21);
    assert_eq!(leak.name(), "login.failure");
    assert_eq!(attr(&leak, "breached_password"), Some("true"));
    assert_eq!(leak.principal.id, "denethor@lotr.com");
    assert_eq!(
        leak.context.ip,
        "2601:140:9702:ee80:9049:1f55:0:e970".parse().ok()
    );
    assert_eq!(attr(&event(22), "blocked"), Some("limit_wc"));

    assert_eq!(event(40).name(), "mfa.challenge");
    assert_eq!(event(44).name(), "device.enrolled");
    assert_eq!(attr(&event(47), "token_reuse"), Some("true"));
    // An MFA policy list emptied: MFA off for every application.
    assert_eq!(event(26).action(), Some("control.disable"));
    assert_eq!(event(27).action(), Some("control.update"));
    // Adaptive MFA's risk assessment switched off.
    assert_eq!(event(31).action(), Some("control.disable"));
    // A dashboard invitation with the owner role.
    assert_eq!(event(53).action(), Some("rbac.assign"));
    // Actions bound to the post-login trigger.
    assert_eq!(event(37).action(), Some("control.update"));
}

/// The hand-written events: each line names a case, the expectation and the
/// record, as Auth0's log documentation and schemas shape it.
#[test]
fn documented_event_types_the_samples_lack() {
    let path = sample_path("auth0_documented.jsonl");
    let cases = read_json_lines(&path);
    assert_eq!(cases.len(), 29);
    check_documented_cases(&cases, auth0, |e| {
        vec![
            ("id", Some(e.id.clone())),
            ("principal", Some(e.principal.id.clone())),
            ("principal_type", Some(e.principal.kind.as_str().to_owned())),
            ("tenant", Some(e.tenant.clone())),
            ("session", Some(e.session.clone())),
            ("resource", e.resource.clone()),
            ("device_id", e.context.device_id.clone()),
            ("acr", e.auth.as_ref().and_then(|a| a.acr.clone())),
        ]
    });
}

#[test]
fn push_fatigue_from_guardian_events() {
    let Some(mut engine) = maxmind_engine() else {
        return;
    };
    let path = sample_path("auth0_push_fatigue.jsonl");
    let records: Vec<RiskRecord> = read_json_lines(&path)
        .iter()
        .map(|r| engine.handle_event(&one(r)).unwrap())
        .collect();
    let names: Vec<&str> = records.iter().map(|r| r.trigger.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "mfa.challenge",
            "mfa.push_denied",
            "mfa.challenge",
            "mfa.push_denied",
            "mfa.challenge",
            "mfa.success",
            "login.success"
        ]
    );
    for r in &records {
        let codes: Vec<&str> = r.signals.iter().map(|s| s.code.as_ref()).collect();
        println!("{} {:?} {} {:?}", r.trigger.name, r.level, r.score, codes);
    }
    let approved = &records[5];
    assert!(
        approved
            .signals
            .iter()
            .any(|s| s.code == "mfa_push_fatigue")
    );
    assert!(approved.level >= Level::Medium);
    // One Guardian session throughout.
    assert!(
        records
            .iter()
            .all(|r| r.session == "sess_fatigue00000000000000000000")
    );
}
