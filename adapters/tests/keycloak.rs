//! The Keycloak adapter on real payloads: Elastic's Keycloak server log
//! (../shared/data/idp, skipped when absent), and hand-written records after
//! Keycloak's documentation and source (tests/samples/keycloak_*): the
//! event-listener JSON of user and admin events, and log lines of the
//! `jboss-logging` listener in its old (bare values) and new (quoted) forms.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{OutcomeTally, attr, missing, non_empty_lines, outcome, sample_text, shared_file};
use riskstream_adapters::{AdapterOptions, Format, Unmapped, normalize};
use riskstream_schemas::{Event, PrincipalType, Timestamp};

// ---------------------------------------------------------------------------
// Helpers

fn keycloak(line: &str) -> Result<Event, Unmapped> {
    normalize(
        Format::Keycloak,
        line.as_bytes(),
        &AdapterOptions::default(),
    )
    .map(|mut events| {
        assert_eq!(events.len(), 1, "one Keycloak record, one event");
        events.remove(0)
    })
}

/// Counts per file: mapped, unmapped per reason, and both per vendor type.
fn new_tally() -> OutcomeTally {
    OutcomeTally::new(40)
}

/// Every non-blank line of one of this crate's samples through the adapter,
/// tallied; the tally printed as `samples/<name>`.
fn sample_results(name: &str) -> Vec<Result<Event, Unmapped>> {
    let text = sample_text(name);
    let results: Vec<Result<Event, Unmapped>> = non_empty_lines(&text).map(keycloak).collect();
    let mut tally = new_tally();
    for r in &results {
        tally.add(r);
    }
    tally.print(&format!("samples/{name}"));
    results
}

// ---------------------------------------------------------------------------
// The real server log

/// The date Elastic's current copy of the same log carries
/// (`2021-10-22 21:01:42,548 INFO ...`); the shared copy prints the time of
/// day only, as WildFly-era Keycloak consoles did.
const ELASTIC_LOG_DATE: &str = "2021-10-22";

#[test]
fn elastic_server_log_every_line_maps_or_is_rejected() {
    let Some(path) = shared_file("idp/elastic/keycloak/test-log.log") else {
        return;
    };
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 32);

    // As it is: no line carries a date, so no event has a time.
    let mut tally = new_tally();
    for line in &lines {
        let result = keycloak(line);
        tally.add(&result);
        if let Err(u) = &result
            && u.reason.as_str() == "not_json"
        {
            assert!(!line.contains("[org.keycloak.events]"), "{line}");
        }
    }
    tally.print("elastic/keycloak/test-log.log");
    assert_eq!(tally.mapped, 0);
    // 17 server lines (startup, deployment) are not event lines.
    assert_eq!(tally.unmapped("not_json"), 17);
    // 10 invalid_redirect_uri errors and one user_not_found without a
    // username name no one.
    assert_eq!(tally.unmapped("no_actor"), 11);
    // The 4 with a user id or a username have no date.
    assert_eq!(tally.unmapped("no_time"), 4);

    // With the date Elastic's copy of the same lines carries: the 4 map.
    let mut tally = new_tally();
    let mut mapped = Vec::new();
    for line in &lines {
        let result = keycloak(&format!("{ELASTIC_LOG_DATE} {line}"));
        tally.add(&result);
        if let Ok(e) = result {
            mapped.push(e);
        }
    }
    tally.print("elastic/keycloak/test-log.log, dated");
    assert_eq!(tally.mapped, 4);
    assert_eq!(tally.unmapped("not_json"), 17);
    assert_eq!(tally.unmapped("no_actor"), 11);
    assert_eq!(tally.unmapped.values().sum::<usize>(), 28);

    // invalid_user_credentials for a known user.
    let bad_password = &mapped[0];
    assert_eq!(bad_password.name(), "login.failure");
    assert_eq!(
        bad_password.principal.id,
        "cc74404c-de7e-482a-98f7-b271ff3c49be"
    );
    assert_eq!(bad_password.principal.kind, PrincipalType::Human);
    assert_eq!(bad_password.tenant, "test");
    assert_eq!(
        bad_password.time,
        Timestamp::parse_rfc3339("2021-10-22T21:20:42.120Z").unwrap()
    );
    assert_eq!(bad_password.context.ip, "172.18.0.1".parse().ok());
    assert_eq!(
        bad_password.session, "3a76b735-e324-42b1-aa15-7c1f69f22eb8",
        "the authentication session (code_id)"
    );
    assert_eq!(
        attr(bad_password, "error"),
        Some("invalid_user_credentials")
    );
    assert_eq!(attr(bad_password, "username"), Some("admin"));
    assert_eq!(attr(bad_password, "client_id"), Some("test"));
    assert_eq!(
        attr(bad_password, "redirect_uri"),
        Some("http://127.0.0.1:8080")
    );
    assert!(bad_password.id.starts_with("keycloak:"));
    let gaps = missing(bad_password);
    assert!(
        gaps.contains(&"id".to_owned()) && gaps.contains(&"context.user_agent".to_owned()),
        "{gaps:?}"
    );
    assert!(!gaps.contains(&"session".to_owned()));

    // user_not_found: the username typed is the principal.
    for e in &mapped[1..] {
        assert_eq!(e.name(), "login.failure");
        assert_eq!(e.principal.id, "asdf");
        assert_eq!(attr(e, "principal_source"), Some("username"));
        assert_eq!(attr(e, "error"), Some("user_not_found"));
        assert_eq!(e.tenant, "master");
        assert_eq!(attr(e, "client_id"), Some("security-admin-console"));
    }
    // Distinct lines, distinct derived ids.
    let mut ids: Vec<&str> = mapped.iter().map(|e| e.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4);
}

// ---------------------------------------------------------------------------
// Hand-written payloads

#[test]
fn event_listener_json_user_and_admin_events() {
    let results = sample_results("keycloak_events.jsonl");
    let names: Vec<String> = results.iter().map(outcome).collect();
    assert_eq!(
        names,
        [
            "login.success",
            "token.issued",
            "token.refreshed",
            "login.failure",
            "login.failure",
            "login.failure",
            "no_actor",
            "token.issued",
            "login.failure",
            "password.changed",
            "unmapped_type",
            "device.enrolled",
            "device.enrolled",
            "user.reset_mfa",
            "logout",
            "unmapped_type",
            "rbac.assign",
            "rbac.revoke",
            "api.admin.keys.create",
            "user.delete",
            "control.disable",
            "unmapped_type",
            "user.reset_password",
        ]
    );
    let ev = |i: usize| results[i].as_ref().unwrap();

    let login = ev(0);
    assert_eq!(login.id, "keycloak:5f8f3a52-6f0a-4bde-9b53-1f2e3d4c5b01");
    assert_eq!(
        login.time,
        Timestamp::parse_rfc3339("2024-03-12T08:00:00Z").unwrap()
    );
    assert_eq!(login.tenant, "acme");
    assert_eq!(login.principal.id, "b3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d");
    assert_eq!(login.session, "8f0e1d2c-3b4a-4596-8877-665544332211");
    assert_eq!(login.context.ip, "81.2.69.142".parse().ok());
    assert_eq!(attr(login, "auth_method"), Some("openid-connect"));
    assert_eq!(attr(login, "username"), Some("alice"));
    assert!(login.auth.is_none(), "Keycloak events carry no amr");
    assert_eq!(missing(login), ["context.device_id", "context.user_agent"]);
    assert_eq!(
        ev(1).session,
        login.session,
        "token and login share the user session"
    );

    // LOGIN_ERROR without a user id: the username, and it says so.
    let unknown = ev(4);
    assert_eq!(unknown.principal.id, "administrator");
    assert_eq!(attr(unknown, "principal_source"), Some("username"));
    assert_eq!(unknown.session, "6f7a8b9c-0d1e-4f2a-8b3c-4d5e6f7a8b9c");
    // Brute-force protection locked the account.
    assert_eq!(attr(ev(5), "blocked"), Some("locked_out"));
    let no_actor = results[6].as_ref().unwrap_err();
    assert_eq!(no_actor.vendor_type.as_deref(), Some("LOGIN_ERROR"));

    // Client credentials: the client is a workload.
    let client = ev(7);
    assert_eq!(client.principal.kind, PrincipalType::Workload);
    assert_eq!(client.principal.id, "billing-export");
    assert_eq!(
        attr(client, "service_account"),
        Some("service-account-billing-export")
    );
    let client_fail = ev(8);
    assert_eq!(client_fail.principal.kind, PrincipalType::Workload);
    assert_eq!(client_fail.principal.id, "billing-export");
    assert_eq!(
        attr(client_fail, "error"),
        Some("invalid_client_credentials")
    );

    // UPDATE_CREDENTIAL beside UPDATE_PASSWORD is the same change.
    let duplicate = results[10].as_ref().unwrap_err();
    assert!(duplicate.detail.contains("beside it"), "{duplicate}");
    assert_eq!(attr(ev(12), "credential_type"), Some("webauthn"));
    assert_eq!(
        results[15].as_ref().unwrap_err().vendor_type.as_deref(),
        Some("UPDATE_PROFILE")
    );

    // Admin events: the admin, in their own realm, acting on another.
    let grant = ev(16);
    assert_eq!(grant.principal.id, "e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b");
    assert_eq!(grant.tenant, "master");
    assert_eq!(attr(grant, "target_realm"), Some("acme"));
    assert_eq!(grant.resource.as_deref(), Some("admin"));
    assert_eq!(attr(grant, "role"), Some("admin"));
    assert_eq!(
        attr(grant, "member"),
        Some("users/b3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d")
    );
    assert_eq!(grant.context.ip, "175.16.199.20".parse().ok());
    assert_eq!(attr(grant, "client_id"), Some("security-admin-console"));
    assert!(missing(grant).contains(&"session".to_owned()));
    assert_eq!(
        grant.source.as_ref().unwrap().kind.as_deref(),
        Some("REALM_ROLE_MAPPING CREATE")
    );
    assert_eq!(ev(17).resource.as_deref(), Some("manage-users"));
    assert_eq!(
        ev(19).resource.as_deref(),
        Some("users/0f9e8d7c-6b5a-4493-8281-706f5e4d3c2b")
    );
    let generic = results[21].as_ref().unwrap_err();
    assert_eq!(generic.vendor_type.as_deref(), Some("USER UPDATE"));
}

#[test]
fn server_log_lines_old_and_new_forms() {
    let results = sample_results("keycloak_server.log");
    let names: Vec<String> = results.iter().map(outcome).collect();
    assert_eq!(
        names,
        [
            "not_json",
            "login.success",
            "login.failure",
            "login.failure",
            "rbac.assign",
            "token.issued",
            "not_recognised"
        ]
    );
    let ev = |i: usize| results[i].as_ref().unwrap();

    // Keycloak 24 quotes every value; "null" is absent.
    let login = ev(1);
    assert_eq!(login.principal.id, "b3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d");
    assert_eq!(login.session, "8f0e1d2c-3b4a-4596-8877-665544332211");
    assert_eq!(
        login.time,
        Timestamp::parse_rfc3339("2024-03-12T08:14:02.518Z").unwrap()
    );
    assert_eq!(
        attr(login, "redirect_uri"),
        Some("https://sso.acme.example/realms/acme/account/")
    );
    let not_found = ev(2);
    assert_eq!(not_found.principal.id, "root");
    assert_eq!(attr(not_found, "principal_source"), Some("username"));
    assert_eq!(not_found.session, "6f7a8b9c-0d1e-4f2a-8b3c-4d5e6f7a8b9c");

    // Older bare values, one single-quoted because it holds a space.
    let old = ev(3);
    assert_eq!(old.principal.id, "b3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d");
    assert_eq!(
        old.time,
        Timestamp::parse_rfc3339("2022-11-03T14:02:10.884Z").unwrap()
    );
    assert_eq!(attr(old, "username"), Some("alice"));

    // An admin event line: the admin in their own realm.
    let admin = ev(4);
    assert_eq!(admin.principal.id, "e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b");
    assert_eq!(admin.tenant, "master");
    assert_eq!(
        attr(admin, "member"),
        Some("users/b3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d")
    );

    // A JSON console log record: its own timestamp, with its offset.
    let json = ev(5);
    assert_eq!(
        json.time,
        Timestamp::parse_rfc3339("2024-03-12T08:05:00.250Z").unwrap()
    );
    assert_eq!(json.session, "8f0e1d2c-3b4a-4596-8877-665544332211");
}

#[test]
fn rejections_name_their_reason() {
    let no_type = keycloak(r#"{"time":1710230400000,"realmId":"acme","userId":"u"}"#).unwrap_err();
    assert_eq!(no_type.reason.as_str(), "not_recognised");
    let okta = keycloak(r#"{"eventType":"user.session.start","published":"2024-01-01T00:00:00Z"}"#)
        .unwrap_err();
    assert_eq!(okta.reason.as_str(), "not_recognised");
    let contract = keycloak(
        r#"{"schema":"riskstream.event.v1","kind":"auth","type":"login.success","id":"e1","time":"2024-01-01T00:00:00Z","principal":{"id":"u"},"session":"s"}"#,
    )
    .unwrap_err();
    assert_eq!(contract.reason.as_str(), "not_recognised");
    let broken = keycloak(r#"{"type":"LOGIN""#).unwrap_err();
    assert_eq!(broken.reason.as_str(), "not_json");
    let blank = keycloak("").unwrap_err();
    assert_eq!(blank.reason.as_str(), "not_json");
    let unmapped = keycloak(
        r#"{"time":1710230400000,"type":"SEND_VERIFY_EMAIL","realmId":"acme","userId":"u"}"#,
    )
    .unwrap_err();
    assert_eq!(unmapped.reason.as_str(), "unmapped_type");
    assert_eq!(unmapped.vendor_type.as_deref(), Some("SEND_VERIFY_EMAIL"));
    let no_time = keycloak(r#"{"type":"LOGIN","realmId":"acme","userId":"u"}"#).unwrap_err();
    assert_eq!(no_time.reason.as_str(), "no_time");
}
