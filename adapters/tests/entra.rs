//! The Entra ID adapter on real payloads: Panther's Azure.Audit and Office
//! 365 rule tests, Elastic's sign-in and Identity Protection pipeline inputs
//! (../shared/data/idp, skipped when absent), hand-written records after
//! Microsoft's documentation (tests/samples/entra_*), and the engine's verdict
//! beside Microsoft's own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{
    OutcomeTally, PantherCase, attr, geo_config, missing, non_empty_lines, outcome, read_panther,
    sample_bytes, shared_file,
};
use riskstream_adapters::{AdapterOptions, Format, Unmapped, normalize};
use riskstream_detectors::{Engine, EngineConfig};
use riskstream_schemas::{DeviceTrust, Event, Level, ParseLimits, PrincipalType, parse_event};
use serde_json::Value;

// ---------------------------------------------------------------------------
// Helpers

fn entra(bytes: &[u8]) -> Result<Event, Unmapped> {
    normalize(Format::Entra, bytes, &AdapterOptions::default()).map(|mut events| {
        assert_eq!(events.len(), 1, "one Entra record, one event");
        events.remove(0)
    })
}

fn one(bytes: &[u8]) -> Event {
    entra(bytes).unwrap_or_else(|u| panic!("expected a mapped event, got {u}"))
}

/// Counts per file: mapped, unmapped per reason, and both per vendor type.
fn new_tally() -> OutcomeTally {
    OutcomeTally::new(60)
}

/// Panther's Azure.Audit rule tests: (the test, the vendor record's bytes).
fn panther_azure() -> Option<Vec<(PantherCase, Vec<u8>)>> {
    let path = shared_file("idp/panther/Azure_Audit.jsonl")?;
    Some(
        read_panther(&path)
            .into_iter()
            .map(|c| {
                let bytes = serde_json::to_vec(&c.event).unwrap();
                (c, bytes)
            })
            .collect(),
    )
}

// ---------------------------------------------------------------------------
// Real payloads

/// What each of the 48 Panther Azure.Audit records becomes, in file order.
const PANTHER_AZURE_EXPECTED: [&str; 48] = [
    "control.update",  // Update authentication methods policy (OIDC discovery URL)
    "control.update",  // Update authentication methods policy
    "login.success",   // device code, broker client
    "login.success",   // device code, Azure CLI
    "control.update",  // Set federation settings on domain
    "control.update",  // Set domain authentication
    "rbac.assign",     // User has elevated their access to User Access Administrator
    "rbac.revoke",     // Remove role assignment
    "login.failure",   // 50053 locked
    "login.failure",   // 50126
    "login.failure",   // 50053 locked
    "login.failure",   // service principal 7000215
    "token.issued",    // service principal success
    "login.success",   // Graph session
    "token.refreshed", // non-interactive
    "login.success",   // Office 365
    "login.success",   // high risk
    "login.success",   // high risk dismissed
    "user.invite",     // Invite external user
    "user.invite",     // Invite external user (same org)
    "user.invite",     // Invite external user (failed)
    "user.invite",     // Invite external user (activity name, internal operation)
    "login.failure",   // service principal 7000215
    "login.success",   // legacy auth (SMTP, ROPC user agent)
    "login.success",   // legacy auth, known exception
    "control.disable", // Update conditional access policy: MFA removed
    "control.update",  // Update conditional access policy: MFA added
    "control.disable", // Update policy (directory copy): MFA removed
    "login.success",   // confirmed compromised
    "login.success",   // no risk
    "control.disable", // Delete conditional access policy
    "control.disable", // Delete policy
    "unmapped_type",   // Added policy (not a Microsoft activity name)
    "login.failure",   // service principal 7000215 (x5)
    "login.failure",
    "login.failure",
    "login.failure",
    "login.failure",
    "rbac.assign",           // Add member to role in PIM completed (permanent)
    "unmapped_type",         // Add member to role in PIM requested (permanent)
    "rbac.assign",           // Add member to role
    "login.success",         // ROPC without MFA
    "login.failure",         // ROPC failed, 50126
    "api.admin.keys.create", // Add service principal credentials
    "unmapped_type",         // Add service principal
    "token.refreshed",       // VS Code, non-interactive
    "token.refreshed",       // VS Code, non-interactive
    "token.issued",          // service principal (rogue state rule)
];

#[test]
fn panther_azure_audit_every_record_maps_or_is_rejected() {
    let Some(records) = panther_azure() else {
        return;
    };
    assert_eq!(records.len(), 48);
    let mut tally = new_tally();
    for (i, (case, bytes)) in records.iter().enumerate() {
        let result = entra(bytes);
        tally.add(&result);
        assert_eq!(
            outcome(&result),
            PANTHER_AZURE_EXPECTED[i],
            "record {i} ({:?}: {:?}): {result:?}",
            case.rule,
            case.test
        );
        if let Err(u) = &result {
            assert!(
                u.vendor_type.is_some(),
                "a rejection names the activity: {u}"
            );
        }
    }
    tally.print("panther/Azure_Audit.jsonl");
    assert_eq!(tally.mapped, 45);
    assert_eq!(tally.unmapped("unmapped_type"), 3);
    assert_eq!(tally.unmapped.values().sum::<usize>(), 3);
}

#[test]
fn panther_azure_audit_fields() {
    let Some(records) = panther_azure() else {
        return;
    };
    let ev = |i: usize| one(&records[i].1);

    // A service principal's client-credentials sign-in: a workload whose
    // session is the credential it used; envelope keys lower-cased.
    let sp = ev(12);
    assert_eq!(sp.name(), "token.issued");
    assert_eq!(sp.principal.kind, PrincipalType::Workload);
    assert_eq!(sp.principal.id, "4b6986ec-c49c-40c0-89ce-b2ac51213e39");
    assert_eq!(sp.session, "2afc776a-4e79-4588-b2ad-f62c94d6bea8");
    assert_eq!(sp.tenant, "85e54ec3-85ee-4b03-9e3b-863075eb9b62");
    assert_eq!(sp.id, "entra:55270060-d8fe-435e-9bf2-219a1d456b60");
    assert_eq!(sp.context.ip, "12.12.12.12".parse().ok());
    assert_eq!(
        sp.time,
        riskstream_schemas::Timestamp::parse_rfc3339("2023-07-27T13:59:53.691Z").unwrap()
    );
    assert_eq!(
        attr(&sp, "service_principal"),
        Some("very-normal-service-principal")
    );
    assert_eq!(attr(&sp, "entra_risk_level"), Some("low"));
    assert!(!missing(&sp).contains(&"session".to_owned()));

    // Its failure (7000215, invalid client secret).
    let sp_fail = ev(11);
    assert_eq!(sp_fail.name(), "login.failure");
    assert_eq!(sp_fail.principal.kind, PrincipalType::Workload);
    assert_eq!(sp_fail.attributes.as_ref().unwrap()["error_code"], 7000215);

    // Legacy authentication: password, MFA satisfied by a claim in the
    // token; no session id, so the correlation id stands in and is listed.
    let legacy = ev(23);
    assert_eq!(legacy.name(), "login.success");
    assert_eq!(legacy.principal.kind, PrincipalType::Human);
    assert_eq!(legacy.principal.id, "8105c513-d24b-4b8d-9035-f8d48854d703");
    assert_eq!(attr(&legacy, "upn"), Some("eve@lexcorp.com"));
    assert_eq!(legacy.context.user_agent.as_deref(), Some("BAV2ROPC"));
    assert_eq!(legacy.context.ip, "12.12.12.12".parse().ok());
    assert_eq!(legacy.context.asn, Some(1234));
    assert_eq!(legacy.context.device_trust, Some(DeviceTrust::Unknown));
    let auth = legacy.auth.as_ref().unwrap();
    assert_eq!(auth.amr, ["pwd", "mfa"]);
    assert_eq!(auth.aal, Some(2));
    assert_eq!(
        legacy.session,
        "correlation:9d5f7dd3-46a7-475a-9cc3-96160551ce49"
    );
    assert!(missing(&legacy).contains(&"session".to_owned()));
    assert!(missing(&legacy).contains(&"context.device_id".to_owned()));
    assert_eq!(attr(&legacy, "client_app"), Some("Authenticated SMTP"));

    // Entra's own session id.
    let graph = ev(13);
    assert_eq!(graph.session, "session-abc-123");
    assert!(!missing(&graph).contains(&"session".to_owned()));
    assert!(
        missing(&graph).contains(&"id".to_owned()),
        "no properties.id: derived"
    );

    // Smart lockout; the ASN written as text.
    let locked = ev(8);
    assert_eq!(locked.name(), "login.failure");
    assert_eq!(attr(&locked, "blocked"), Some("locked_out"));
    assert_eq!(locked.context.asn, Some(12345));
    assert_eq!(locked.context.ip, "4.4.4.4".parse().ok());
    assert_eq!(
        locked.context.user_agent.as_deref(),
        Some("python-requests/2.28.0")
    );

    // Microsoft's verdict is kept, never interpreted.
    let risky = ev(16);
    assert_eq!(attr(&risky, "entra_risk_level"), Some("high"));
    assert_eq!(attr(&risky, "entra_risk_state"), Some("atRisk"));
    assert_eq!(
        attr(&risky, "entra_risk_events"),
        Some("unfamiliarFeatures,anonymizedIPAddress")
    );

    // Non-interactive: a refresh, with the device the sign-in names.
    let refresh = ev(14);
    assert_eq!(refresh.name(), "token.refreshed");
    assert_eq!(refresh.session, "00baf379-e510-523f-1c0e-346163d4a768");
    let device_code = ev(2);
    assert_eq!(
        device_code.context.device_id.as_deref(),
        Some("device-attacker-456")
    );
    assert_eq!(device_code.context.device_trust, Some(DeviceTrust::Unknown));

    // Role grant through PIM: the role is the resource, the member named.
    let pim = ev(38);
    assert_eq!(pim.action(), Some("rbac.assign"));
    assert_eq!(pim.principal.id, "12345");
    assert_eq!(pim.resource.as_deref(), Some("Application Administrator"));
    assert_eq!(attr(&pim, "member"), Some("Malenia"));
    let azure_rbac = ev(7);
    assert_eq!(azure_rbac.action(), Some("rbac.revoke"));
    assert_eq!(attr(&azure_rbac, "role"), Some("Reader"));

    // Conditional access: MFA dropped from the grant controls disables it.
    let ca = ev(25);
    assert_eq!(ca.action(), Some("control.disable"));
    assert_eq!(attr(&ca, "change"), Some("weakened"));
    assert_eq!(ca.resource.as_deref(), Some("MFA"));
    assert_eq!(ca.id, "entra:IPCGraph_123456789");
    assert_eq!(ev(26).action(), Some("control.update"));

    // A secret added to a service principal.
    let creds = ev(43);
    assert_eq!(creds.action(), Some("api.admin.keys.create"));
    assert_eq!(creds.resource.as_deref(), Some("Production API Service"));
    assert_eq!(creds.principal.id, "admin-123");
    assert_eq!(creds.context.ip, "2.2.2.2".parse().ok());
}

#[test]
fn microsoft365_azure_active_directory_records() {
    let Some(path) = shared_file("idp/panther/Microsoft365_Audit_AzureActiveDirectory.jsonl")
    else {
        return;
    };
    let mut tally = new_tally();
    let mut events = Vec::new();
    for c in read_panther(&path) {
        let result = entra(&serde_json::to_vec(&c.event).unwrap());
        tally.add(&result);
        events.push(result);
    }
    tally.print("panther/Microsoft365_Audit_AzureActiveDirectory.jsonl");
    assert_eq!(tally.mapped, 4);
    assert!(tally.unmapped.is_empty());
    let names: Vec<String> = events.iter().map(outcome).collect();
    assert_eq!(
        names,
        [
            "login.failure",
            "login.success",
            "device.enrolled",
            "user.reset_mfa"
        ]
    );
    let failed = events[0].as_ref().unwrap();
    assert_eq!(failed.principal.id, "sample.user@yourorg.onmicrosoft.com");
    assert_eq!(
        attr(failed, "logon_error"),
        Some("InvalidUserNameOrPassword")
    );
    assert_eq!(failed.context.ip, "1.2.3.4".parse().ok());
    assert!(
        failed
            .context
            .user_agent
            .as_deref()
            .unwrap()
            .contains("Chrome/107")
    );
    assert_eq!(failed.tenant, "11-aa-22-bb");
    // Microsoft's MFA service wrote the change: the user is the principal.
    let removed = events[3].as_ref().unwrap();
    assert_eq!(removed.principal.id, "sample.user@yourorg.onmicrosoft.com");
    assert_eq!(removed.principal.kind, PrincipalType::Human);
    assert_eq!(attr(removed, "actor"), Some("ServicePrincipal_aa-bb-ccc"));
}

/// Every line of one of Elastic's files (`elastic/<file>` of the shared
/// identity-provider samples) through the adapter: each result tallied, then
/// checked; the tally printed. `None` where the file is absent.
fn elastic_lines(file: &str, check: impl Fn(Result<Event, Unmapped>)) -> Option<OutcomeTally> {
    let path = shared_file(&format!("idp/elastic/{file}"))?;
    let text = std::fs::read_to_string(path).unwrap();
    let mut tally = new_tally();
    for line in non_empty_lines(&text) {
        let result = entra(line.as_bytes());
        tally.add(&result);
        check(result);
    }
    tally.print(&format!("elastic/{file}"));
    Some(tally)
}

#[test]
fn elastic_sign_ins_are_keep_me_signed_in_interrupts() {
    let Some(tally) = elastic_lines("azure_signinlogs/test-signinlogs-raw.log", |result| {
        let u = result.as_ref().unwrap_err();
        assert!(u.vendor_type.as_deref().unwrap().ends_with(" 50140"), "{u}");
        assert!(u.detail.contains("Stay signed in"), "{u}");
    }) else {
        return;
    };
    assert_eq!(tally.mapped, 0);
    assert_eq!(tally.unmapped("unmapped_type"), 5);
    // One per category, MicrosoftServicePrincipalSignInLogs included.
    assert_eq!(tally.by_type.len(), 5);
}

#[test]
fn elastic_risk_detections_are_microsofts_verdict() {
    let Some(tally) = elastic_lines("azure_signinlogs/test-userriskevents-raw.log", |result| {
        assert_eq!(
            result.unwrap_err().vendor_type.as_deref(),
            Some("UserRiskEvents")
        );
    }) else {
        return;
    };
    assert_eq!(tally.mapped, 0);
    assert_eq!(tally.unmapped("unmapped_type"), 2);
}

// ---------------------------------------------------------------------------
// Hand-written payloads after Microsoft's documentation

#[test]
fn graph_sign_in_mfa_required() {
    let e = one(&sample_bytes("entra_signin_mfa_required.json"));
    assert_eq!(e.name(), "mfa.challenge");
    assert_eq!(e.id, "entra:66ea54eb-6301-4ee5-be62-ff5a759b0100");
    assert_eq!(e.tenant, "default", "a bare Graph signIn names no tenant");
    assert_eq!(e.principal.id, "d5e1c1a2-3a53-4b9c-9f1f-6a0d1c1a2b3c");
    let auth = e.auth.as_ref().unwrap();
    assert_eq!(auth.amr, ["pwd"], "the password step passed, MFA pending");
    assert_eq!(auth.aal, Some(1));
    assert_eq!(e.context.device_trust, Some(DeviceTrust::Unknown));
    assert_eq!(
        e.session,
        "correlation:d79f5bee-5860-4832-928f-3133e22ae912"
    );
}

#[test]
fn sign_in_push_denied() {
    let e = one(&sample_bytes("entra_signin_push_denied.json"));
    assert_eq!(e.name(), "mfa.push_denied");
    assert_eq!(attr(&e, "mfa_result"), Some("denied"));
    assert_eq!(e.session, "2f1a6c7d-58a4-4b55-b3a6-0e6b43f1c9d0");
    assert_eq!(e.context.asn, Some(4837));
    assert_eq!(e.tenant, "72f988bf-86f1-41af-91ab-2d7cd011db47");
    assert_eq!(attr(&e, "entra_risk_events"), Some("unfamiliarFeatures"));
}

#[test]
fn sign_in_fido2_on_a_compliant_device() {
    let e = one(&sample_bytes("entra_signin_fido2_compliant.json"));
    assert_eq!(e.name(), "login.success");
    assert_eq!(
        e.context.device_id.as_deref(),
        Some("4c64a3e0-9a1c-4fb7-8d52-0e1f23b45c67")
    );
    assert_eq!(e.context.device_trust, Some(DeviceTrust::Managed));
    let auth = e.auth.as_ref().unwrap();
    assert_eq!(auth.amr, ["hwk", "pin", "mfa"]);
    assert_eq!(auth.aal, Some(3));
    assert!(missing(&e).is_empty(), "{:?}", missing(&e));
}

#[test]
fn non_interactive_refresh_on_a_registered_device() {
    let e = one(&sample_bytes("entra_signin_registered_device_refresh.json"));
    assert_eq!(e.name(), "token.refreshed");
    assert_eq!(e.context.device_trust, Some(DeviceTrust::Known));
    assert_eq!(attr(&e, "incoming_token_type"), Some("refreshToken"));
    assert!(
        e.auth.is_none(),
        "\"Previously satisfied\" proves nothing new"
    );
}

#[test]
fn service_principal_and_managed_identity_are_workloads() {
    let sp = one(&sample_bytes("entra_signin_service_principal.json"));
    assert_eq!(sp.name(), "token.issued");
    assert_eq!(sp.principal.kind, PrincipalType::Workload);
    assert_eq!(sp.principal.id, "9e8d7c6b-5a49-4837-a261-50f4e3d2c1b0");
    assert_eq!(sp.session, "5d4c3b2a-1908-4f7e-8d6c-5b4a39281706");
    assert_eq!(attr(&sp, "credential_type"), Some("clientSecret"));
    assert_eq!(sp.context.device_trust, None, "no device for a workload");
    let mi = one(&sample_bytes("entra_signin_managed_identity.json"));
    assert_eq!(mi.principal.kind, PrincipalType::Workload);
    assert_eq!(mi.session, "TOKEN-ID-0002");
    assert_eq!(attr(&mi, "managed_identity_type"), Some("systemAssigned"));
    assert!(missing(&mi).contains(&"context.ip".to_owned()));
}

#[test]
fn audit_records_after_microsofts_documentation() {
    let cases: [(&str, &str, &str, PrincipalType, Option<&str>); 9] = [
        (
            "entra_audit_add_member_to_role.json",
            "rbac.assign",
            "d5e1c1a2-3a53-4b9c-9f1f-6a0d1c1a2b3c",
            PrincipalType::Human,
            Some("Global Administrator"),
        ),
        (
            "entra_audit_remove_member_from_role.json",
            "rbac.revoke",
            "aa11bb22-cc33-4d44-8e55-ff6677889900",
            PrincipalType::Human,
            Some("Global Administrator"),
        ),
        (
            "entra_audit_app_secret_by_app.json",
            "api.admin.keys.create",
            "9e8d7c6b-5a49-4837-a261-50f4e3d2c1b0",
            PrincipalType::Workload,
            Some("payments-api"),
        ),
        (
            "entra_audit_delete_user.json",
            "user.delete",
            "aa11bb22-cc33-4d44-8e55-ff6677889900",
            PrincipalType::Human,
            None,
        ),
        (
            "entra_audit_reset_password_by_admin.json",
            "user.reset_password",
            "aa11bb22-cc33-4d44-8e55-ff6677889900",
            PrincipalType::Human,
            None,
        ),
        (
            "entra_audit_user_registered_security_info.json",
            "device.enrolled",
            "d5e1c1a2-3a53-4b9c-9f1f-6a0d1c1a2b3c",
            PrincipalType::Human,
            None,
        ),
        (
            "entra_audit_admin_deleted_security_info.json",
            "user.reset_mfa",
            "aa11bb22-cc33-4d44-8e55-ff6677889900",
            PrincipalType::Human,
            None,
        ),
        (
            "entra_audit_disable_conditional_access_policy.json",
            "control.disable",
            "d5e1c1a2-3a53-4b9c-9f1f-6a0d1c1a2b3c",
            PrincipalType::Human,
            Some("Require MFA for admins"),
        ),
        (
            "entra_audit_change_own_password.json",
            "password.changed",
            "d5e1c1a2-3a53-4b9c-9f1f-6a0d1c1a2b3c",
            PrincipalType::Human,
            None,
        ),
    ];
    for (file, name, principal, kind, resource) in cases {
        let e = one(&sample_bytes(file));
        assert_eq!(e.name(), name, "{file}");
        assert_eq!(e.principal.id, principal, "{file}");
        assert_eq!(e.principal.kind, kind, "{file}");
        if resource.is_some() {
            assert_eq!(e.resource.as_deref(), resource, "{file}");
        }
        assert!(
            missing(&e).contains(&"session".to_owned()),
            "audit logs carry no session: {file}"
        );
    }
    let grant = one(&sample_bytes("entra_audit_add_member_to_role.json"));
    assert_eq!(attr(&grant, "member"), Some("mallory@contoso.com"));
    assert_eq!(grant.context.ip, "175.16.199.20".parse().ok());
    assert!(
        grant
            .context
            .user_agent
            .as_deref()
            .unwrap()
            .contains("Firefox/123.0")
    );
    assert_eq!(
        grant.id,
        "entra:Directory_F0E1D2C3-B4A5-4968-8776-655443322110_QWERT_12345678"
    );
    let deleted = one(&sample_bytes("entra_audit_delete_user.json"));
    assert_eq!(
        attr(&deleted, "target"),
        Some("0b1c2d3e4f5046178293a4b5c6d7e8f9mallory@contoso.com")
    );
}

#[test]
fn acts_on_another_account_are_actions_of_the_actor() {
    let record = |activity: &str, target: &str| {
        format!(
            r#"{{"activityDisplayName":"{activity}","activityDateTime":"2024-03-12T14:00:00Z","initiatedBy":{{"user":{{"id":"admin-1","userPrincipalName":"admin@contoso.com"}}}},"targetResources":[{{"id":"{target}","type":"User"}}]}}"#
        )
    };
    let other = one(record("Admin registered security info", "user-2").as_bytes());
    assert_eq!(other.action(), Some("user.register_mfa"));
    assert_eq!(other.principal.id, "admin-1");
    assert_eq!(other.resource.as_deref(), Some("user-2"));
    let own = one(record("User registered security info", "admin-1").as_bytes());
    assert_eq!(own.name(), "device.enrolled");
    let reset = one(record("Reset password (by admin)", "user-2").as_bytes());
    assert_eq!(reset.action(), Some("user.reset_password"));
}

#[test]
fn rejections_name_their_reason() {
    let risk = entra(&sample_bytes("entra_risk_detection.json")).unwrap_err();
    assert_eq!(risk.reason.as_str(), "unmapped_type");
    assert_eq!(risk.vendor_type.as_deref(), Some("riskDetection"));
    let device = entra(&sample_bytes("entra_audit_update_device.json")).unwrap_err();
    assert_eq!(device.reason.as_str(), "unmapped_type");
    assert_eq!(device.vendor_type.as_deref(), Some("Update device"));
    let okta = entra(br#"{"eventType":"user.session.start","published":"2024-01-01T00:00:00Z"}"#)
        .unwrap_err();
    assert_eq!(okta.reason.as_str(), "not_recognised");
    let not_json = entra(b"Sign-in activity, 2024-01-01").unwrap_err();
    assert_eq!(not_json.reason.as_str(), "not_json");
    let exchange = entra(br#"{"Operation":"MailItemsAccessed","CreationTime":"2024-01-01T00:00:00","RecordType":50,"Workload":"Exchange"}"#).unwrap_err();
    assert_eq!(exchange.reason.as_str(), "not_recognised");
    let no_actor = entra(br#"{"time":"2024-01-01T00:00:00Z","category":"SignInLogs","operationName":"Sign-in activity","properties":{"createdDateTime":"2024-01-01T00:00:00Z","status":{"errorCode":0},"ipAddress":"81.2.69.142"}}"#).unwrap_err();
    assert_eq!(no_actor.reason.as_str(), "no_actor");
}

// ---------------------------------------------------------------------------
// Verdict agreement

fn engine_config() -> Option<Arc<EngineConfig>> {
    // City and ASN only: in MaxMind's anonymous-IP test database the whole
    // of 81.2.69.0/24 carries every anonymizer flag, which says nothing of
    // these records.
    shared_file("geo").map(|dir| geo_config(&dir))
}

/// Microsoft's verdict on a sign-in: a medium or high risk level that no one
/// dismissed or remediated, or a confirmed compromise.
fn microsoft_says_risky(level: Option<&str>, state: Option<&str>) -> bool {
    let state = state.unwrap_or("none");
    state == "confirmedCompromised"
        || (matches!(level, Some("medium" | "high"))
            && !matches!(state, "dismissed" | "remediated" | "confirmedSafe"))
}

/// One comparison.
struct Verdict {
    source: &'static str,
    what: String,
    theirs: bool,
    ours: bool,
    level: &'static str,
    decision: &'static str,
    signals: Vec<String>,
}

/// The engine's verdict on one event, alone: a fresh engine each time,
/// because each Panther record is a test of its own (their ids repeat across
/// tests, the same sign-in with its risk fields edited) and each detection a
/// different user.
fn engine_verdict(
    config: &Arc<EngineConfig>,
    event: &Event,
) -> (bool, &'static str, &'static str, Vec<String>) {
    let mut engine = Engine::new(Arc::clone(config));
    let record = engine.handle_event(event).unwrap();
    let risky = record.level != Level::Low || record.decision.as_str() != "allow";
    let signals = record.signals.iter().map(|s| s.code.to_string()).collect();
    (
        risky,
        record.level.as_str(),
        record.decision.as_str(),
        signals,
    )
}

#[test]
fn verdict_agreement_with_microsoft_and_panther() {
    let Some(config) = engine_config() else {
        return;
    };
    let Some(records) = panther_azure() else {
        return;
    };
    let Some(risk_path) = shared_file("idp/elastic/azure_signinlogs/test-userriskevents-raw.log")
    else {
        return;
    };
    let mut verdicts = Vec::new();

    // Panther's sign-in records: Microsoft's verdict where the record
    // carries one, and the rule's expected alert on every one.
    for (case, bytes) in &records {
        let Ok(event) = entra(bytes) else { continue };
        if !event
            .source
            .as_ref()
            .and_then(|s| s.kind.as_deref())
            .is_some_and(|k| k.ends_with("SignInLogs"))
        {
            continue;
        }
        let (ours, level, decision, signals) = engine_verdict(&config, &event);
        let props = &case.event["properties"];
        let what = format!("{} / {}", case.rule, case.test);
        if let Some(risk) = props["riskLevelDuringSignIn"].as_str() {
            verdicts.push(Verdict {
                source: "Entra riskLevelDuringSignIn",
                what: format!(
                    "{what} [{risk}, {}]",
                    props["riskState"].as_str().unwrap_or("-")
                ),
                theirs: microsoft_says_risky(Some(risk), props["riskState"].as_str()),
                ours,
                level,
                decision,
                signals: signals.clone(),
            });
        }
        verdicts.push(Verdict {
            source: "panther _expected_alert",
            what,
            theirs: case.alert,
            ours,
            level,
            decision,
            signals,
        });
    }

    // Identity Protection detections: the sign-in each is about, rebuilt
    // from the detection's own fields (address, user, time, user agent).
    let text = std::fs::read_to_string(risk_path).unwrap();
    for line in non_empty_lines(&text) {
        let record: Value = serde_json::from_str(line).unwrap();
        assert!(
            entra(line.as_bytes()).is_err(),
            "a detection itself is rejected"
        );
        let p = &record["properties"];
        let ua = p["additionalInfo"]
            .as_str()
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
            .and_then(|v| {
                v.as_array().and_then(|a| {
                    a.iter()
                        .find(|kv| kv["Key"] == "userAgent")
                        .map(|kv| kv["Value"].clone())
                })
            })
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap();
        let event = serde_json::json!({
            "schema": "riskstream.event.v1",
            "kind": "auth",
            "type": "login.success",
            "id": format!("entra:signin-of-{}", p["id"].as_str().unwrap()),
            "time": p["activityDateTime"],
            "tenant": record["tenantId"],
            "principal": {"id": p["userId"]},
            "session": format!("correlation:{}", p["correlationId"].as_str().unwrap()),
            "context": {"ip": p["ipAddress"], "user_agent": ua},
        });
        let event = parse_event(event.to_string().as_bytes(), ParseLimits::default()).unwrap();
        let (ours, level, decision, signals) = engine_verdict(&config, &event);
        verdicts.push(Verdict {
            source: "Identity Protection detection",
            what: format!(
                "{} {} [{}]",
                p["riskEventType"].as_str().unwrap(),
                p["ipAddress"].as_str().unwrap(),
                p["riskLevel"].as_str().unwrap()
            ),
            theirs: microsoft_says_risky(p["riskLevel"].as_str(), p["riskState"].as_str()),
            ours,
            level,
            decision,
            signals,
        });
    }

    // The table.
    println!(
        "{:<32} {:>7} {:>10} {:>10} {:>10} {:>10} {:>9}",
        "source", "records", "both risky", "both fine", "only them", "only us", "agreement"
    );
    let mut counts = BTreeMap::new();
    for source in [
        "Entra riskLevelDuringSignIn",
        "Identity Protection detection",
        "panther _expected_alert",
    ] {
        let rows: Vec<&Verdict> = verdicts.iter().filter(|v| v.source == source).collect();
        let n = |f: &dyn Fn(&Verdict) -> bool| rows.iter().filter(|v| f(v)).count();
        let agree = n(&|v| v.theirs == v.ours);
        println!(
            "{source:<32} {:>7} {:>10} {:>10} {:>10} {:>10} {:>8.0}%",
            rows.len(),
            n(&|v| v.theirs && v.ours),
            n(&|v| !v.theirs && !v.ours),
            n(&|v| v.theirs && !v.ours),
            n(&|v| !v.theirs && v.ours),
            100.0 * agree as f64 / rows.len().max(1) as f64
        );
        counts.insert(source, rows.len());
    }
    println!("disagreements:");
    for v in verdicts.iter().filter(|v| v.theirs != v.ours) {
        println!(
            "  {:<30} {:<90} theirs={} ours={} ({}, {}) signals={:?}",
            v.source, v.what, v.theirs, v.ours, v.level, v.decision, v.signals
        );
    }
    // Computed over every sign-in that carries a verdict: the 15 Panther
    // sign-ins with riskLevelDuringSignIn, the 2 detections, the 27 Panther
    // sign-in records.
    assert_eq!(counts["Entra riskLevelDuringSignIn"], 15);
    assert_eq!(counts["Identity Protection detection"], 2);
    assert_eq!(counts["panther _expected_alert"], 27);
}
