//! The CloudTrail adapter on real payloads (Panther's rule tests, Elastic's
//! pipeline tests) and on hand-written records for calls the samples lack,
//! and the engine's verdicts beside Panther's on the sign-in rules.
//!
//! The shared samples live outside the project (`../shared/data/idp`); each
//! test that needs them says "skipped" and returns when they are absent.
//! Tests panic on purpose when something is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{
    Columns, MultiEventTally, PantherCase, Verdict, case, geo_config_if_readable, json_lines,
    normalize_json, only_event, panther, print_agreement, read_shared, sample_bytes, score_fresh,
};
use riskstream_adapters::{AdapterOptions, Format, Unmapped, UnmappedReason, normalize};
use riskstream_detectors::EngineConfig;
use riskstream_schemas::{AuthType, Event, PrincipalType};
use serde_json::Value;

fn map(record: &Value) -> Result<Vec<Event>, Unmapped> {
    normalize_json(Format::CloudTrail, record)
}

fn map_one(record: &Value) -> Event {
    only_event(map(record).unwrap_or_else(|u| panic!("{u}")))
}

/// Counts of one file: records that mapped, events made, and rejections by
/// reason; per vendor type, what became of it.
fn new_tally() -> MultiEventTally {
    MultiEventTally::new(70)
}

fn vendor_type(record: &Value) -> Option<String> {
    let name = record
        .get("eventName")
        .or_else(|| record.get("eventname"))?
        .as_str()?;
    let source = record
        .get("eventSource")
        .or_else(|| record.get("eventsource"))
        .and_then(Value::as_str);
    Some(source.map_or_else(|| name.to_owned(), |s| format!("{s}:{name}")))
}

#[test]
fn panther_records_map_or_are_rejected_with_a_reason() {
    let Some(cases) = panther("AWS_CloudTrail.jsonl") else {
        return;
    };
    let mut tally = new_tally();
    tally.add_panther(&cases, map, vendor_type);
    tally.print("panther/AWS_CloudTrail.jsonl");
    assert_eq!(tally.records, 475);
    assert_eq!(tally.mapped, 108, "mapped");
    assert_eq!(tally.events, tally.mapped, "one event per record");
    // Calls that are neither sign-in, credential nor sensitive act (343,
    // among them 3 of Panther's negative tests naming a call of one service
    // under another's eventSource), failed calls that issued or changed
    // nothing (4), console sign-ins without an outcome (2), Parameter Store
    // reads without decryption (1).
    assert_eq!(
        tally.unmapped(UnmappedReason::UnmappedType),
        350,
        "unmapped_type"
    );
    // Panther enrichment-only rows and a bare {"eventType": "logout"}.
    assert_eq!(
        tally.unmapped(UnmappedReason::NotRecognised),
        3,
        "not_recognised"
    );
    // Test stubs with no userIdentity.
    assert_eq!(tally.unmapped(UnmappedReason::NoActor), 9, "no_actor");
    // Test stubs with no eventTime, or "redacted".
    assert_eq!(tally.unmapped(UnmappedReason::NoTime), 5, "no_time");
    assert_eq!(tally.unmapped(UnmappedReason::Invalid), 0, "invalid");
    let auth = |t: &str| tally.count(t);
    assert_eq!(
        [
            auth("login.success"),
            auth("login.failure"),
            auth("mfa.failure"),
            auth("token.issued"),
            auth("password.changed")
        ],
        [22, 3, 2, 11, 7]
    );
}

#[test]
fn elastic_console_logins() {
    let Some(text) = read_shared("idp/elastic/aws_cloudtrail/test-console-login-json.log") else {
        return;
    };
    let records = json_lines(&text);
    let mut tally = new_tally();
    for r in &records {
        tally.add(vendor_type(r), &map(r));
    }
    tally.print("elastic/aws_cloudtrail/test-console-login-json.log");
    assert_eq!((tally.records, tally.mapped, tally.events), (3, 3, 3));

    // IAM user, password only.
    let ok = map_one(&records[0]);
    assert_eq!(ok.auth_type(), Some(AuthType::LoginSuccess));
    assert_eq!(ok.principal.id, "JohnDoe");
    assert_eq!(ok.principal.kind, PrincipalType::Human);
    assert_eq!(ok.tenant, "111122223333");
    assert_eq!(ok.id, "cloudtrail:3fcfb182-98f8-4744-bd45-10aEXAMPLE");
    assert_eq!(ok.context.ip, "89.160.20.156".parse().ok());
    assert!(
        ok.context
            .user_agent
            .as_deref()
            .unwrap()
            .starts_with("Mozilla/5.0")
    );
    let auth = ok.auth.as_ref().unwrap();
    assert_eq!(
        (auth.aal, auth.amr.clone()),
        (Some(1), vec!["pwd".to_owned()])
    );
    let source = ok.source.as_ref().unwrap();
    assert_eq!(
        source.kind.as_deref(),
        Some("signin.amazonaws.com:ConsoleLogin")
    );
    // CloudTrail has no session for a console sign-in, nor a device id.
    assert_eq!(source.missing, vec!["context.device_id", "session"]);
    assert!(ok.session.starts_with("cloudtrail:derived:"));

    // A failed password.
    let failed = map_one(&records[1]);
    assert_eq!(failed.auth_type(), Some(AuthType::LoginFailure));
    assert_eq!(failed.principal.id, "JaneDoe");
    assert!(failed.auth.is_none());
    assert_eq!(
        failed.attributes.as_ref().unwrap()["error_message"],
        "Failed authentication"
    );

    // A federated (assumed-role) sign-in failing.
    let federated = map_one(&records[2]);
    assert_eq!(federated.auth_type(), Some(AuthType::LoginFailure));
    assert_eq!(federated.principal.id, "MySessionName");
    assert_eq!(federated.principal.role.as_deref(), Some("RoleToBeAssumed"));
    assert_eq!(federated.principal.kind, PrincipalType::Human);
}

#[test]
fn panther_records_keep_what_the_rules_read() {
    let Some(cases) = panther("AWS_CloudTrail.jsonl") else {
        return;
    };

    // ConsoleLogin with MFAUsed: aal 2; a FIDO key is a hardware key.
    let mfa = map_one(
        &case(
            &cases,
            "AWS.Unsuccessful.MFA.attempt",
            "Successful Login w/ MFA",
        )
        .event,
    );
    assert_eq!(mfa.auth_type(), Some(AuthType::LoginSuccess));
    assert_eq!(mfa.aal(), Some(2));
    assert_eq!(mfa.auth.as_ref().unwrap().amr, vec!["pwd", "mfa", "hwk"]);
    let mfa = map_one(&case(&cases, "AWS.Console.LoginWithoutMFA", "MFA Login").event);
    assert_eq!(mfa.aal(), Some(2));

    // Right password, wrong second factor.
    let bad_code = map_one(
        &case(
            &cases,
            "AWS.Unsuccessful.MFA.attempt",
            "Unsuccessful Login w/ MFA",
        )
        .event,
    );
    assert_eq!(bad_code.auth_type(), Some(AuthType::MfaFailure));
    let bad_password =
        map_one(&case(&cases, "AWS.Console.RootLoginFailed", "Failed Root Login").event);
    assert_eq!(bad_password.auth_type(), Some(AuthType::LoginFailure));

    // Root sign-in: the type is kept.
    let root = map_one(&case(&cases, "AWS.Console.RootLogin", "Successful Root Login").event);
    assert_eq!(root.principal.id, "arn:aws:iam::123456789012:root");
    assert_eq!(root.attributes.as_ref().unwrap()["identity_type"], "Root");
    assert_eq!(root.aal(), Some(1));

    // SAML sign-in: AWS's MFAUsed says nothing of the IdP's factors.
    let saml = map_one(&case(&cases, "AWS.Console.LoginWithoutMFA", "MFA Login - SAML").event);
    assert!(saml.auth.is_none());
    assert_eq!(
        saml.attributes.as_ref().unwrap()["saml_provider"],
        "arn:aws:iam::123456789012:saml-provider/Okta"
    );

    // IAM Identity Center console sign-in: the person by session name.
    let sso = map_one(&case(&cases, "AWS.Console.LoginWithoutMFA", "AWS SSOv2 Login").event);
    assert_eq!(sso.principal.id, "foo@bar.com");
    assert_eq!(
        sso.principal.role.as_deref(),
        Some("AWSReservedSSO_developer_admin_asdf")
    );

    // AssumeRole by an IAM user: the session is the caller's access key.
    let assume = map_one(
        &case(
            &cases,
            "AWS.CloudTrail.IAMAssumeRoleBlacklistIgnored",
            "IAM Blocklisted Role Assumed",
        )
        .event,
    );
    assert_eq!(assume.auth_type(), Some(AuthType::TokenIssued));
    assert_eq!(assume.principal.id, "example-user");
    assert_eq!(assume.session, "1111");
    assert_eq!(
        assume.resource.as_deref(),
        Some("arn:aws:iam::123456789012:role/FullAdminRole")
    );
    assert_eq!(
        assume.attributes.as_ref().unwrap()["issued_access_key_id"],
        "1111"
    );
    // ... and a failed one issued nothing.
    let expired = map(&case(
        &cases,
        "AWS.CloudTrail.IAMAssumeRoleBlacklistIgnored",
        "Error Assuming IAM Blocked Role",
    )
    .event);
    assert_eq!(expired.unwrap_err().reason, UnmappedReason::UnmappedType);

    // Machine identities.
    let lambda = map_one(
        &case(
            &cases,
            "Role.Assumed.by.AWS.Service",
            "Role Assumed by AWS Service",
        )
        .event,
    );
    assert_eq!(lambda.principal.id, "lambda.amazonaws.com");
    assert_eq!(lambda.principal.kind, PrincipalType::Workload);
    let key_user = map_one(
        &case(
            &cases,
            "AWS.STS.GetSessionToken.Misuse",
            "GetSessionToken by IAM User",
        )
        .event,
    );
    assert_eq!(key_user.principal.kind, PrincipalType::Workload);
    assert_eq!(key_user.session, "AKIAIOSFODNN7EXAMPLE");
    let role = map_one(
        &case(
            &cases,
            "AWS.RDS.SnapshotExport",
            "RDS Snapshot Export Started",
        )
        .event,
    );
    assert_eq!(role.principal.kind, PrincipalType::Workload);
    assert_eq!(role.action(), Some("data.export"));

    // Sensitive acts, and an attempt that was denied.
    let attach = map_one(
        &case(
            &cases,
            "AWS.IAM.AttachAdminUserPolicy",
            "IAM User Policy Attached with Administrator Access",
        )
        .event,
    );
    assert_eq!(attach.action(), Some("rbac.assign"));
    let stop = map_one(
        &case(
            &cases,
            "AWS.CloudTrail.Stopped",
            "Error Stopping CloudTrail",
        )
        .event,
    );
    assert_eq!(stop.action(), Some("control.disable"));
    assert_eq!(stop.attributes.as_ref().unwrap()["outcome"], "failure");
    let keys = map_one(
        &case(
            &cases,
            "AWS.IAM.Backdoor.User.Keys",
            "user1 create keys for user2",
        )
        .event,
    );
    assert_eq!(keys.action(), Some("api.admin.keys.create"));
    assert_eq!(keys.attributes.as_ref().unwrap()["target_user"], "user2");

    // Lower-case column names (Athena, CloudTrail Lake).
    let lower = map(&case(
        &cases,
        "AWS.CloudTrail.Password.Policy.Discovery",
        "Password Discovery ARN",
    )
    .event);
    assert_eq!(
        lower.unwrap_err().vendor_type.as_deref(),
        Some("iam.amazonaws.com:GetAccountPasswordPolicy")
    );
}

#[test]
fn hand_written_log_file() {
    let bytes = sample_bytes("cloudtrail_log_file.json");
    let events = normalize(Format::CloudTrail, &bytes, &AdapterOptions::default()).unwrap();
    let names: Vec<(&str, &str, PrincipalType)> = events
        .iter()
        .map(|e| (e.principal.id.as_str(), e.name(), e.principal.kind))
        .collect();
    assert_eq!(
        names,
        vec![
            ("Mateo", "token.issued", PrincipalType::Human),
            ("Mateo", "token.issued", PrincipalType::Human),
            ("jane@example.com", "token.issued", PrincipalType::Human),
            (
                "repo:example/app:ref:refs/heads/main",
                "token.issued",
                PrincipalType::Workload
            ),
            ("Mateo", "mfa.failure", PrincipalType::Human),
            ("ana@example.com", "rbac.assign", PrincipalType::Human),
            ("ana@example.com", "user.reset_mfa", PrincipalType::Human),
            ("Mateo", "device.enrolled", PrincipalType::Human),
            ("ana@example.com", "password.changed", PrincipalType::Human),
            ("ana@example.com", "user.delete", PrincipalType::Human),
            (
                "role/ec2-app-role",
                "control.disable",
                PrincipalType::Workload
            ),
            (
                "role/billing-sync-role",
                "secrets.read",
                PrincipalType::Workload
            ),
            (
                "role/ec2-app-role",
                "control.disable",
                PrincipalType::Workload
            ),
            (
                "role/ec2-app-role",
                "control.disable",
                PrincipalType::Workload
            ),
            ("federation-broker", "token.issued", PrincipalType::Workload),
            ("Mateo", "mfa.success", PrincipalType::Human),
        ],
        "16 of the 17 records map; DescribeInstances does not"
    );
    // GetSessionToken with an MFA code: aal 2, session = the long-term key.
    let gst = &events[0];
    assert_eq!(gst.aal(), Some(2));
    assert_eq!(gst.session, "AKIAI44QH8DHBEXAMPLE");
    assert_eq!(
        gst.attributes.as_ref().unwrap()["issued_access_key_id"],
        "ASIAIOSFODNN7EXAMPLE"
    );
    // The role session made with those credentials: session = temporary key.
    let assume = &events[1];
    assert_eq!(assume.session, "ASIAIOSFODNN7EXAMPLE");
    assert_eq!(
        assume.resource.as_deref(),
        Some("arn:aws:iam::111122223333:role/Admin")
    );
    assert_eq!(
        assume.attributes.as_ref().unwrap()["mfa_authenticated"],
        "true"
    );
    assert_eq!(assume.aal(), None, "the MFA was earlier, not in this call");
    // A wrong MFA code on GetSessionToken.
    assert_eq!(
        events[4].attributes.as_ref().unwrap()["mfa_serial"],
        "arn:aws:iam::111122223333:mfa/Mateo"
    );
    // Who the act was on.
    let attach = &events[5];
    assert_eq!(
        attach.principal.role.as_deref(),
        Some("AWSReservedSSO_AdministratorAccess_0123456789abcdef")
    );
    assert_eq!(
        attach.resource.as_deref(),
        Some("arn:aws:iam::aws:policy/AdministratorAccess")
    );
    assert_eq!(
        attach.attributes.as_ref().unwrap()["target_user"],
        "svc-backup"
    );
    assert_eq!(events[11].session, "ASIALAMBDAEXAMPLE01");
    assert_eq!(events[15].aal(), Some(2));

    // A tenant override wins over the account id.
    let opts = AdapterOptions {
        tenant: Some("acme".to_owned()),
    };
    let events = normalize(Format::CloudTrail, &bytes, &opts).unwrap();
    assert!(events.iter().all(|e| e.tenant == "acme"));
}

#[test]
fn records_of_other_shapes() {
    let not_trail = normalize(
        Format::CloudTrail,
        br#"{"eventType":"user.session.start","actor":{"id":"x"}}"#,
        &AdapterOptions::default(),
    );
    assert_eq!(not_trail.unwrap_err().reason, UnmappedReason::NotRecognised);
    let no_actor = normalize(
        Format::CloudTrail,
        br#"{"eventVersion":"1.08","eventTime":"2024-03-04T09:00:00Z","eventSource":"iam.amazonaws.com","eventName":"DeleteUser","userIdentity":{}}"#,
        &AdapterOptions::default(),
    );
    assert_eq!(no_actor.unwrap_err().reason, UnmappedReason::NoActor);
    let empty = normalize(
        Format::CloudTrail,
        br#"{"Records":[]}"#,
        &AdapterOptions::default(),
    );
    assert_eq!(empty.unwrap_err().reason, UnmappedReason::UnmappedType);
    let nothing_maps = normalize(
        Format::CloudTrail,
        br#"{"Records":[{"eventVersion":"1.08","eventSource":"s3.amazonaws.com","eventName":"GetObject"}]}"#,
        &AdapterOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        nothing_maps.vendor_type.as_deref(),
        Some("s3.amazonaws.com:GetObject")
    );
    assert!(nothing_maps.detail.contains("none of the 1 records"));
}

/// Panther's rules about signing in, whose verdicts the engine can be
/// compared with.
const SIGN_IN_RULES: &[&str] = &[
    "AWS.Console.LoginWithoutMFA",
    "AWS.Console.LoginWithoutSAML",
    "AWS.Console.RootLogin",
    "AWS.Console.RootLoginFailed",
    "AWS.Console.Sign-In",
    "AWS.Unsuccessful.MFA.attempt",
    "AWS.CloudTrail.PasswordSpraying",
    "Standard.BruteForceByIP",
    "Standard.BruteForceByUser",
    "Standard.ImpossibleTravel.Login",
    "Standard.SignInFromRogueState",
];

/// Each record through a fresh engine: the verdict of one event without
/// history. Test stubs without a usable time get a fixed one (the rules do
/// not read it).
fn replay(config: &Arc<EngineConfig>, c: &PantherCase) -> Verdict {
    let mut event = c.event.clone();
    let has_time = ["eventTime", "p_event_time"].iter().any(|k| {
        event
            .get(*k)
            .and_then(Value::as_str)
            .is_some_and(|t| t.len() >= 10 && t.as_bytes()[0].is_ascii_digit())
    });
    if !has_time && let Some(obj) = event.as_object_mut() {
        obj.insert("eventTime".to_owned(), Value::from("2024-01-01T00:00:00Z"));
    }
    Verdict {
        source: c.rule.clone(),
        test: c.test.clone(),
        vendor: c.alert,
        engine: score_fresh(config, map(&event)),
        mocked: c.mocked,
    }
}

#[test]
fn verdicts_beside_panthers_sign_in_rules() {
    let Some(cases) = panther("AWS_CloudTrail.jsonl") else {
        return;
    };
    let Some(config) = geo_config_if_readable() else {
        println!("skipped: GeoLite2 test databases absent");
        return;
    };
    let verdicts: Vec<Verdict> = cases
        .iter()
        .filter(|c| SIGN_IN_RULES.contains(&c.rule.as_str()))
        .map(|c| replay(&config, c))
        .collect();
    print_agreement(
        &verdicts,
        "rule",
        &Columns {
            source: 34,
            test: 50,
            vendor: 7,
        },
    );
    let scored = verdicts.iter().filter(|v| v.engine.is_ok()).count();
    assert_eq!(verdicts.len(), 33, "records of the sign-in rules");
    assert_eq!(scored, 27, "records that reached the engine");
}
