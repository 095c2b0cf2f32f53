//! The Google Workspace adapter on real payloads (Panther's rule tests,
//! Elastic's pipeline tests) and on hand-written Reports API activities for
//! events the samples lack, and the engine's verdicts beside Google's own
//! and Panther's.
//!
//! The shared samples live outside the project (`../shared/data/idp`); each
//! test that needs them says "skipped" and returns when they are absent.
//! Tests panic on purpose when something is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{
    Columns, MultiEventTally, Verdict, attr, case, geo_config_if_readable, json_lines,
    normalize_json, only_event, panther, print_agreement, read_shared, sample_text, score_fresh,
    shared_path,
};
use riskstream_adapters::{AdapterOptions, Format, Unmapped, UnmappedReason, normalize};
use riskstream_detectors::EngineConfig;
use riskstream_schemas::{AuthType, Event, PrincipalType};
use serde_json::Value;

fn map(record: &Value) -> Result<Vec<Event>, Unmapped> {
    normalize_json(Format::GoogleWorkspace, record)
}

fn map_one(record: &Value) -> Event {
    only_event(map(record).unwrap_or_else(|u| panic!("{u}")))
}

fn elastic_logins() -> Option<Vec<Value>> {
    let text = read_shared("idp/elastic/google_workspace/test-login.log")?;
    Some(json_lines(&text))
}

/// `application:event` of an activity's first event, in any of its shapes.
fn vendor_type(record: &Value) -> Option<String> {
    let app = record
        .get("id")
        .and_then(|i| i.get("applicationName"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    let event = match record.get("events") {
        Some(Value::Array(a)) => a.first()?,
        Some(e @ Value::Object(_)) => e,
        _ => record,
    };
    let name = event
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("(no name)");
    Some(format!("{app}:{name}"))
}

/// Counts of one file.
fn new_tally() -> MultiEventTally {
    MultiEventTally::new(62)
}

#[test]
fn panther_records_map_or_are_rejected_with_a_reason() {
    let Some(cases) = panther("GSuite_ActivityEvent.jsonl") else {
        return;
    };
    let mut tally = new_tally();
    tally.add_panther(&cases, map, vendor_type);
    tally.print("panther/GSuite_ActivityEvent.jsonl");
    assert_eq!(tally.records, 165);
    assert_eq!(tally.mapped, 42, "mapped");
    assert_eq!(
        tally.events, tally.mapped,
        "Panther stores one row per sub-event"
    );
    // Drive, Gmail, Calendar, Groups, mobile device state, rule alerts,
    // Google's gov_attack_warning, Panther's negative tests with made-up
    // names ("suspicious_login " with a space, application "logout").
    assert_eq!(
        tally.unmapped(UnmappedReason::UnmappedType),
        98,
        "unmapped_type"
    );
    // Enrichment-only rows with no id.applicationName.
    assert_eq!(
        tally.unmapped(UnmappedReason::NotRecognised),
        2,
        "not_recognised"
    );
    // Sign-in stubs with neither actor nor affected_email_address.
    assert_eq!(tally.unmapped(UnmappedReason::NoActor), 3, "no_actor");
    // Test stubs with no id.time (mappable types: sign-ins, account
    // warnings, 2-step verification and Advanced Protection changes).
    assert_eq!(tally.unmapped(UnmappedReason::NoTime), 20, "no_time");
    assert_eq!(tally.unmapped(UnmappedReason::Invalid), 0, "invalid");
    assert_eq!(
        [
            tally.count("login.success"),
            tally.count("login.failure"),
            tally.count("token.issued"),
            tally.count("control.update")
        ],
        [1, 2, 3, 23]
    );
}

#[test]
fn elastic_login_activities() {
    let Some(records) = elastic_logins() else {
        return;
    };
    let mut tally = new_tally();
    for r in &records {
        tally.add(vendor_type(r), &map(r));
    }
    tally.print("elastic/google_workspace/test-login.log");
    assert_eq!(tally.records, 17);
    assert_eq!((tally.mapped, tally.events), (16, 16), "mapped");
    // gov_attack_warning.
    assert_eq!(
        tally.unmapped(UnmappedReason::UnmappedType),
        1,
        "unmapped_type"
    );
    assert_eq!(
        [
            tally.count("login.success"),
            tally.count("login.failure"),
            tally.count("mfa.success"),
            tally.count("session.revoked"),
            tally.count("logout"),
        ],
        [5, 1, 4, 5, 1]
    );
}

#[test]
fn elastic_records_keep_what_google_said() {
    let Some(records) = elastic_logins() else {
        return;
    };
    let by_name = |name: &str, suspicious: Option<bool>| {
        records
            .iter()
            .find(|r| {
                r["events"]["name"] == name
                    && suspicious.is_none_or(|s| {
                        r["events"]["parameters"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|p| p["name"] == "is_suspicious" && p["boolValue"] == s)
                    })
            })
            .unwrap_or_else(|| panic!("no {name}"))
    };

    // A suspicious sign-in Google let through: the login time is there.
    let warned = map_one(by_name("suspicious_login", None));
    assert_eq!(warned.auth_type(), Some(AuthType::LoginSuccess));
    assert_eq!(
        warned.principal.id, "foo@elastic.co",
        "the account warned about, not the reporter"
    );
    assert_eq!(attr(&warned, "reported_by"), Some("foo@bar.com"));
    assert_eq!(attr(&warned, "vendor_verdict"), Some("suspicious_login"));
    assert_eq!(
        warned.attributes.as_ref().unwrap()["login_time_ms"],
        1_593_695_305_123_i64
    );
    assert_eq!(warned.tenant, "1");
    assert_eq!(warned.context.ip, "67.43.156.13".parse().ok());

    // Google disabled the account.
    let hijacked = map_one(by_name("account_disabled_hijacked", None));
    assert_eq!(hijacked.auth_type(), Some(AuthType::SessionRevoked));

    // A password-only sign-in Google found suspicious.
    let risky = map_one(by_name("login_success", Some(true)));
    assert_eq!(risky.auth.as_ref().unwrap().amr, vec!["pwd"]);
    assert_eq!(risky.aal(), Some(1));
    assert_eq!(attr(&risky, "vendor_suspicious"), Some("true"));
    assert_eq!(attr(&risky, "login_type"), Some("google_password"));

    // A security key as second factor: aal 2.
    let key = map_one(
        records
            .iter()
            .find(|r| r["actor"]["email"] == "tl.zeous.daclitan@company.com")
            .unwrap(),
    );
    assert_eq!(key.auth_type(), Some(AuthType::MfaSuccess));
    assert_eq!(key.auth.as_ref().unwrap().amr, vec!["hwk", "mfa"]);
    assert_eq!(key.aal(), Some(2));

    // A backup code Google says was not a second factor: one factor.
    let code = records
        .iter()
        .find(|r| {
            r["events"]["name"] == "login_verification" && r["actor"]["email"] == "foo@bar.com"
        })
        .unwrap();
    assert_eq!(map_one(code).aal(), Some(1));

    // The Reports API has no session and no device for a sign-in.
    let source = risky.source.as_ref().unwrap();
    assert_eq!(
        source.missing,
        vec!["context.device_id", "context.user_agent", "session"]
    );
    assert!(risky.session.starts_with("google_workspace:derived:"));
}

#[test]
fn panther_records_keep_what_the_rules_read() {
    let Some(cases) = panther("GSuite_ActivityEvent.jsonl") else {
        return;
    };

    // Panther's one-row-per-event form, with a parameters map and a time
    // written with a space.
    let grant = map_one(
        &case(
            &cases,
            "Google.Workspace.OAuth.Privileged.Scopes",
            "Malicious App Privileged Scopes",
        )
        .event,
    );
    assert_eq!(grant.auth_type(), Some(AuthType::TokenIssued));
    assert_eq!(grant.principal.id, "user@example.com");
    assert_eq!(grant.tenant, "C01234abc");
    assert_eq!(grant.time.to_string(), "2024-01-15T10:30:00.000Z");
    assert_eq!(
        grant.resource.as_deref(),
        Some("123456789012-abcdefghijklmnopqrstuvwxyz123456.apps.googleusercontent.com")
    );
    assert!(
        attr(&grant, "scope")
            .unwrap()
            .contains("admin.directory.user")
    );
    assert_eq!(
        grant.id,
        "google_workspace:token/2024-01-15 10:30:00.000000000/987654321098765432/authorize"
    );

    let custom_role = map_one(
        &case(
            &cases,
            "Google.Workspace.Admin.Custom.Role",
            "New Custom Role Created",
        )
        .event,
    );
    assert_eq!(custom_role.action(), Some("rbac.role.create"));
    assert_eq!(custom_role.resource.as_deref(), Some("CustomAdminRoleName"));

    let takeout = map_one(
        &case(
            &cases,
            "GSuite.Workspace.DataExportCreated",
            "Workspace Admin Data Export Created",
        )
        .event,
    );
    assert_eq!(takeout.action(), Some("data.export"));

    let saml = map_one(&case(&cases, "GSuite.LoginType", "Saml Login Event").event);
    assert_eq!(saml.auth_type(), Some(AuthType::LoginSuccess));
    assert_eq!(
        attr(&saml, "saml_application"),
        Some("Some SAML Application")
    );

    // What cannot map says why.
    let no_time = map(&case(
        &cases,
        "GSuite.TwoStepVerification",
        "Two Step Verification Disabled",
    )
    .event)
    .unwrap_err();
    assert_eq!(
        (no_time.reason, no_time.vendor_type.as_deref()),
        (UnmappedReason::NoTime, Some("user_accounts:2sv_disable"))
    );
    let gov = map(&case(
        &cases,
        "GSuite.GovernmentBackedAttack",
        "Government Backed Attack Warning",
    )
    .event)
    .unwrap_err();
    assert_eq!(gov.reason, UnmappedReason::UnmappedType);
    let drive = map(&case(
        &cases,
        "Google.Workspace.ManyDocsDownloaded",
        "Document Downloaded",
    )
    .event)
    .unwrap_err();
    assert_eq!(drive.vendor_type.as_deref(), Some("drive:download"));
}

#[test]
fn hand_written_activities() {
    let text = sample_text("google_workspace_activities.jsonl");
    let results: Vec<Result<Vec<Event>, Unmapped>> = text
        .lines()
        .map(|l| {
            normalize(
                Format::GoogleWorkspace,
                l.as_bytes(),
                &AdapterOptions::default(),
            )
        })
        .collect();
    let outcomes: Vec<String> = results
        .iter()
        .map(|r| match r {
            Ok(events) => events
                .iter()
                .map(|e| format!("{} {}", e.principal.id, e.name()))
                .collect::<Vec<_>>()
                .join(" + "),
            Err(u) => format!("unmapped {}", u.reason),
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![
            "liz@example.com login.success",
            "liz@example.com mfa.success + liz@example.com login.success",
            "omar@example.com login.failure",
            "omar@example.com mfa.failure",
            "omar@example.com login.failure",
            "liz@example.com login.success",
            "liz@example.com logout",
            "liz@example.com token.issued",
            "liz@example.com token.revoked",
            "admin@example.com rbac.assign",
            "admin@example.com password.changed",
            "admin@example.com rbac.assign",
            "admin@example.com control.disable",
            "admin@example.com user.reset_mfa",
            "admin@example.com api.admin.oauth_apps.trust",
            "provisioner@acme-prod.iam.gserviceaccount.com user.delete",
            "liz@example.com device.enrolled",
            "omar@example.com user.reset_mfa",
            "unmapped unmapped_type",
        ]
    );
    let ev = |i: usize, j: usize| &results[i].as_ref().unwrap()[j];

    // Password and an authenticator app: two factors.
    let login = ev(0, 0);
    assert_eq!(login.auth.as_ref().unwrap().amr, vec!["pwd", "otp"]);
    assert_eq!(login.aal(), Some(2));
    assert_eq!(login.tenant, "C03az79cb");
    assert_eq!(
        login.id,
        "google_workspace:login/2024-03-04T09:00:00.123Z/-6120483027366912345/login_success"
    );
    assert_eq!(
        login.source.as_ref().unwrap().id.as_deref(),
        Some("login/2024-03-04T09:00:00.123Z/-6120483027366912345/login_success")
    );

    // Two events of one activity: two ids.
    assert_ne!(ev(1, 0).id, ev(1, 1).id);
    assert_eq!(ev(1, 1).auth.as_ref().unwrap().amr, vec!["pwd", "hwk"]);

    // Google blocked this suspicious sign-in (no login time), let the other through.
    assert_eq!(attr(ev(4, 0), "vendor_verdict"), Some("suspicious_login"));
    assert_eq!(
        ev(5, 0).attributes.as_ref().unwrap()["login_time_ms"],
        1_709_543_400_000_i64
    );

    // An administrator acting on a user: the administrator is the principal.
    let password = ev(10, 0);
    assert_eq!(password.auth_type(), Some(AuthType::PasswordChanged));
    assert_eq!(attr(password, "target_user"), Some("liz@example.com"));
    assert_eq!(ev(9, 0).resource.as_deref(), Some("omar@example.com"));
    assert_eq!(attr(ev(9, 0), "role_name"), Some("_SEED_ADMIN_ROLE"));
    assert_eq!(ev(12, 0).resource.as_deref(), Some("Example"));

    // A service account is a workload; a registered phone has a device id.
    assert_eq!(ev(15, 0).principal.kind, PrincipalType::Workload);
    assert_eq!(
        ev(16, 0).context.device_id.as_deref(),
        Some("a1b2c3d4e5f6a7b8")
    );
    assert_eq!(ev(0, 0).principal.kind, PrincipalType::Human);
}

#[test]
fn records_of_other_shapes() {
    let opts = AdapterOptions::default();
    let okta = normalize(
        Format::GoogleWorkspace,
        br#"{"eventType":"user.session.start","actor":{"id":"x"}}"#,
        &opts,
    );
    assert_eq!(okta.unwrap_err().reason, UnmappedReason::NotRecognised);
    let no_events = normalize(
        Format::GoogleWorkspace,
        br#"{"kind":"admin#reports#activity","id":{"time":"2024-03-04T09:00:00Z","applicationName":"login"}}"#,
        &opts,
    );
    assert_eq!(no_events.unwrap_err().reason, UnmappedReason::UnmappedType);
    let no_actor = normalize(
        Format::GoogleWorkspace,
        br#"{"kind":"admin#reports#activity","id":{"time":"2024-03-04T09:00:00Z","applicationName":"login"},"events":[{"name":"login_success"}]}"#,
        &opts,
    );
    assert_eq!(no_actor.unwrap_err().reason, UnmappedReason::NoActor);
    let none_maps = normalize(
        Format::GoogleWorkspace,
        br#"{"kind":"admin#reports#activity","id":{"time":"2024-03-04T09:00:00Z","applicationName":"drive"},"actor":{"email":"a@b.c"},"events":[{"name":"view"},{"name":"download"}]}"#,
        &opts,
    )
    .unwrap_err();
    assert_eq!(none_maps.reason, UnmappedReason::UnmappedType);
    assert!(
        none_maps.detail.contains("drive:view, drive:download"),
        "{}",
        none_maps.detail
    );
}

/// One record through a fresh engine (the verdict of a single event
/// without history). Test stubs without a time get a fixed one.
fn replay(
    config: &Arc<EngineConfig>,
    source: &str,
    test: &str,
    vendor: bool,
    mocked: bool,
    record: &Value,
) -> Verdict {
    let mut record = record.clone();
    let has_time = record.get("id").and_then(|i| i.get("time")).is_some()
        || record.get("p_event_time").is_some();
    if !has_time && let Some(id) = record.get_mut("id").and_then(Value::as_object_mut) {
        id.insert("time".to_owned(), Value::from("2024-01-01T00:00:00Z"));
    }
    Verdict {
        source: source.to_owned(),
        test: test.to_owned(),
        vendor,
        engine: score_fresh(config, map(&record)),
        mocked,
    }
}

/// Panther's rules about signing in.
const SIGN_IN_RULES: &[&str] = &[
    "GSuite.SuspiciousLogins",
    "GSuite.GovernmentBackedAttack",
    "GSuite.LoginType",
    "Standard.BruteForceByIP",
    "Standard.BruteForceByUser",
];

#[test]
fn verdicts_beside_googles_and_panthers() {
    let Some(config) = geo_config_if_readable() else {
        println!("skipped: GeoLite2 test databases absent");
        return;
    };
    let mut verdicts = Vec::new();
    if let Some(cases) = panther("GSuite_ActivityEvent.jsonl") {
        for c in cases
            .iter()
            .filter(|c| SIGN_IN_RULES.contains(&c.rule.as_str()))
        {
            verdicts.push(replay(
                &config, &c.rule, &c.test, c.alert, c.mocked, &c.event,
            ));
        }
    }
    // Google's own verdicts in Elastic's records: its account warnings, and
    // is_suspicious on sign-ins.
    if let Some(records) = elastic_logins() {
        for r in &records {
            let name = r["events"]["name"].as_str().unwrap_or("");
            let suspicious = r["events"]["parameters"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["name"] == "is_suspicious"))
                .and_then(|p| p["boolValue"].as_bool());
            let vendor = match (name, suspicious) {
                (
                    "suspicious_login"
                    | "suspicious_login_less_secure_app"
                    | "suspicious_programmatic_login"
                    | "gov_attack_warning",
                    _,
                ) => true,
                (_, Some(s)) => s,
                _ => continue,
            };
            let test = match suspicious {
                Some(s) => format!("{name} is_suspicious={s}"),
                None => name.to_owned(),
            };
            verdicts.push(replay(
                &config,
                "google (elastic test-login.log)",
                &test,
                vendor,
                false,
                r,
            ));
        }
    }
    print_agreement(
        &verdicts,
        "source",
        &Columns {
            source: 32,
            test: 52,
            vendor: 6,
        },
    );
    let scored = verdicts.iter().filter(|v| v.engine.is_ok()).count();
    if shared_path("idp/panther/GSuite_ActivityEvent.jsonl").exists()
        && shared_path("idp/elastic/google_workspace/test-login.log").exists()
    {
        assert_eq!(
            verdicts.len(),
            20,
            "records with a verdict: 13 of Panther's, 7 of Google's"
        );
        assert_eq!(scored, 15, "records that reached the engine");
    }
}
