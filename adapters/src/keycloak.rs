//! Keycloak to contract events.
//!
//! Three forms carry the same events:
//!
//! - event-listener JSON, as the admin REST API (`GET /admin/realms/{realm}/events`
//!   and `.../admin-events`) and HTTP or Kafka event-listener plugins write
//!   it: user events `{"time": epoch_ms, "type", "realmId", "clientId",
//!   "userId", "sessionId", "ipAddress", "error", "details": {...}}` and admin
//!   events `{"time", "realmId", "authDetails": {...}, "operationType",
//!   "resourceType", "resourcePath", "representation"}`;
//! - server log lines of the `jboss-logging` event listener (logger
//!   `org.keycloak.events`): `<timestamp> WARN [org.keycloak.events] (thread)
//!   type=LOGIN_ERROR, realmId=..., clientId=..., userId=..., ipAddress=...,
//!   error=..., <details>` and `operationType=..., resourceType=...` for admin
//!   events; values bare (`userId=null`), single-quoted when they hold a
//!   space, or double-quoted (Keycloak 24 and later);
//! - the same line inside a JSON console log record (`{"timestamp",
//!   "loggerName": "org.keycloak.events", "message": "type=..."}`).
//!
//! Log timestamps carry no offset and are read as UTC; WildFly-era consoles
//! (Keycloak 16 and earlier) print the time of day only
//! (`21:01:45,403`), which is no event time: such lines are rejected with
//! `no_time` rather than given a date the log does not have.
//!
//! Keycloak's events carry no user agent, device or assurance (`amr`), so
//! `source.missing` lists `context.user_agent` and `context.device_id` on
//! every event.

use riskstream_schemas::{AuthType, Event, EventBody, PrincipalType, Timestamp};
use serde_json::{Map, Value};

use crate::draft::{Draft, parse_time, str_at};
use crate::{AdapterOptions, Format, Unmapped, UnmappedReason};

const FORMAT: Format = Format::Keycloak;

/// The logger of Keycloak's `jboss-logging` event listener.
const EVENTS_LOGGER: &str = "org.keycloak.events";

/// Maps one Keycloak record: a JSON document or one server log line.
pub(crate) fn normalize(record: &[u8], opts: &AdapterOptions) -> Result<Vec<Event>, Unmapped> {
    let text = std::str::from_utf8(record)
        .map_err(|e| reject(UnmappedReason::NotJson, None, format!("not UTF-8: {e}")))?
        .trim();
    let (event, time) = if text.starts_with('{') {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| reject(UnmappedReason::NotJson, None, e.to_string()))?;
        from_json(&value)?
    } else {
        from_log_line(text)?
    };
    let draft = if field(&event, "operationType").is_some() {
        admin_event(&event)?
    } else {
        user_event(&event)?
    };
    let mut draft = draft;
    draft.time = time;
    Ok(vec![draft.finish(FORMAT, record, opts)?])
}

fn reject(
    reason: UnmappedReason,
    vendor_type: Option<&str>,
    detail: impl Into<String>,
) -> Unmapped {
    Unmapped::new(FORMAT, reason, vendor_type, detail)
}

/// A JSON record as an event in the event-listener shape, with its time.
fn from_json(value: &Value) -> Result<(Value, Option<Timestamp>), Unmapped> {
    if !value.is_object() {
        return Err(reject(
            UnmappedReason::NotRecognised,
            None,
            "not a JSON object",
        ));
    }
    let has = |k: &str| field(value, k).is_some();
    if has("operationType") && (has("authDetails") || has("resourceType")) {
        return Ok((value.clone(), field(value, "time").and_then(parse_time)));
    }
    // A user event names its realm, or at least has Keycloak's epoch time
    // (a contract event's `type` and `time` are no Keycloak event).
    let epoch_time = field(value, "time").is_some_and(Value::is_number);
    if has("type") && (has("realmId") || epoch_time) && !has("loggerName") {
        return Ok((value.clone(), field(value, "time").and_then(parse_time)));
    }
    // A JSON console log record.
    if let Some(logger) = text(value, "loggerName") {
        let message = text(value, "message").unwrap_or("");
        if logger != EVENTS_LOGGER && !is_event_message(message) {
            return Err(reject(
                UnmappedReason::NotRecognised,
                None,
                format!("log record of {logger}, not of the event logger {EVENTS_LOGGER}"),
            ));
        }
        let event = event_from_pairs(&parse_pairs(message))?;
        let time = field(value, "timestamp")
            .and_then(|t| t.as_str())
            .and_then(log_time);
        return Ok((event, time));
    }
    Err(reject(
        UnmappedReason::NotRecognised,
        None,
        "neither a Keycloak event, an admin event nor an event log record",
    ))
}

/// A server log line as an event in the event-listener shape, with its time.
fn from_log_line(line: &str) -> Result<(Value, Option<Timestamp>), Unmapped> {
    let Some(start) = event_start(line) else {
        return Err(reject(
            UnmappedReason::NotJson,
            None,
            "not a Keycloak event line (no type= or operationType= list)",
        ));
    };
    let (prefix, list) = line.split_at(start);
    let event = event_from_pairs(&parse_pairs(list))?;
    // "<timestamp> <LEVEL> [logger] (thread) ": the timestamp is what comes
    // before the level.
    let stamp = prefix
        .split_whitespace()
        .take_while(|t| !LEVELS.contains(t))
        .collect::<Vec<_>>()
        .join(" ");
    Ok((event, log_time(&stamp)))
}

/// Log levels of JBoss Logging, as Keycloak prints them.
const LEVELS: [&str; 8] = [
    "TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "FATAL", "SEVERE",
];

/// Where the `type=` or `operationType=` list of an event line starts.
fn event_start(line: &str) -> Option<usize> {
    ["operationType=", "type="].iter().find_map(|key| {
        line.match_indices(key).map(|(i, _)| i).find(|&i| {
            i == 0
                || line
                    .as_bytes()
                    .get(i - 1)
                    .is_some_and(|b| b.is_ascii_whitespace())
        })
    })
}

fn is_event_message(message: &str) -> bool {
    message.starts_with("type=") || message.starts_with("operationType=")
}

/// A log timestamp: `2021-10-22 21:01:45,403` (read as UTC, as Keycloak
/// prints no offset), or RFC 3339 as JSON logs write it. The time of day
/// alone (`21:01:45,403`) is no event time.
fn log_time(stamp: &str) -> Option<Timestamp> {
    let s = stamp.trim().replace(',', ".");
    let bytes = s.as_bytes();
    let dated = bytes.len() >= 19 && bytes.get(4) == Some(&b'-') && bytes.get(7) == Some(&b'-');
    if !dated {
        return None;
    }
    let s = if bytes.get(10) == Some(&b' ') {
        format!("{}T{}", s.get(..10)?, s.get(11..)?)
    } else {
        s
    };
    parse_time(&Value::String(s))
}

/// The `key=value, key=value` list of an event line. Values are bare (up to
/// the `, ` before the next `key=`), `'single-quoted'` when Keycloak found a
/// space in them, or `"double-quoted"` with backslash escapes (Keycloak 24
/// and later). `null` is absent.
fn parse_pairs(list: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = list.trim();
    while !rest.is_empty() {
        rest = rest.trim_start_matches([',', ' ']);
        let Some(eq) = rest.find('=') else { break };
        let key = rest.get(..eq).unwrap_or("").trim();
        if key.is_empty() || !key.bytes().all(is_key_byte) {
            break;
        }
        let after = rest.get(eq + 1..).unwrap_or("");
        let (value, next) = match after.as_bytes().first() {
            Some(b'"') => quoted(after),
            Some(b'\'') => single_quoted(after),
            _ => bare(after),
        };
        if value != "null" && !value.is_empty() {
            out.push((key.to_owned(), value));
        }
        rest = next;
    }
    out
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-'
}

/// Whether `s` starts with `key=`.
fn starts_with_key(s: &str) -> bool {
    match s.find('=') {
        Some(eq) if eq > 0 => s.get(..eq).is_some_and(|k| k.bytes().all(is_key_byte)),
        _ => false,
    }
}

/// A bare value: up to the `, ` that is followed by the next `key=`.
fn bare(s: &str) -> (String, &str) {
    for (i, _) in s.match_indices(", ") {
        let next = s.get(i + 2..).unwrap_or("");
        if starts_with_key(next) {
            return (s.get(..i).unwrap_or("").to_owned(), next);
        }
    }
    (s.trim_end().to_owned(), "")
}

/// A `"quoted"` value with backslash escapes.
fn quoted(s: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            '"' => return (value, s.get(i + 1..).unwrap_or("")),
            other => value.push(other),
        }
    }
    (value, "")
}

/// A `'quoted'` value: up to the `'` that ends the list or precedes `, key=`.
fn single_quoted(s: &str) -> (String, &str) {
    let body = s.get(1..).unwrap_or("");
    for (i, _) in body.match_indices('\'') {
        let next = body.get(i + 1..).unwrap_or("");
        let trimmed = next.trim_start_matches([',', ' ']);
        if next.trim().is_empty() || (next.starts_with(", ") && starts_with_key(trimmed)) {
            return (body.get(..i).unwrap_or("").to_owned(), next);
        }
    }
    (body.to_owned(), "")
}

/// Keys of an event line that are the event's own fields, not details.
const EVENT_FIELDS: [&str; 9] = [
    "type",
    "realmId",
    "realmName",
    "clientId",
    "userId",
    "sessionId",
    "ipAddress",
    "error",
    "id",
];

/// Keys of an admin event line that belong to `authDetails`.
const AUTH_DETAILS: [&str; 4] = ["realmId", "clientId", "userId", "ipAddress"];

/// Keys a trace-level listener adds that say nothing about the event.
const NOISE: [&str; 3] = ["requestUri", "cookies", "stackTrace"];

/// The pairs of an event line in the event-listener JSON shape.
fn event_from_pairs(pairs: &[(String, String)]) -> Result<Value, Unmapped> {
    let mut event = Map::new();
    let mut details = Map::new();
    let admin = pairs.iter().any(|(k, _)| k == "operationType");
    let mut auth_details = Map::new();
    for (k, v) in pairs {
        if NOISE.contains(&k.as_str()) {
            continue;
        }
        let value = Value::String(v.clone());
        if admin {
            if AUTH_DETAILS.contains(&k.as_str()) {
                auth_details.insert(k.clone(), value);
            } else {
                event.insert(k.clone(), value);
            }
        } else if EVENT_FIELDS.contains(&k.as_str()) {
            event.insert(k.clone(), value);
        } else {
            details.insert(k.clone(), value);
        }
    }
    if admin {
        event.insert("authDetails".to_owned(), Value::Object(auth_details));
    } else {
        if !event.contains_key("type") {
            return Err(reject(
                UnmappedReason::NotJson,
                None,
                "event line without type=",
            ));
        }
        event.insert("details".to_owned(), Value::Object(details));
    }
    Ok(Value::Object(event))
}

// ---------------------------------------------------------------------------
// Field access

/// A field of an object; `null` and `"null"` count as absent.
fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key)
        .filter(|v| !v.is_null() && v.as_str() != Some("null"))
}

/// Non-empty text of a field.
fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    field(v, key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "null")
}

/// A detail of a user event (`details.<key>`).
fn detail<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    str_at(v, &["details", key]).filter(|s| *s != "null")
}

// ---------------------------------------------------------------------------
// User events

/// Credential types of second factors, as Keycloak names them.
const SECOND_FACTORS: [&str; 6] = [
    "otp",
    "totp",
    "hotp",
    "webauthn",
    "webauthn-passwordless",
    "recovery-authn-codes",
];

/// What a Keycloak event is, in contract terms.
enum Mapping {
    Auth(AuthType),
    Action(&'static str),
}

fn user_event(e: &Value) -> Result<Draft, Unmapped> {
    let kind = text(e, "type")
        .ok_or_else(|| reject(UnmappedReason::NotRecognised, None, "event without a type"))?;
    let credential = detail(e, "credential_type").map(str::to_ascii_lowercase);
    let second_factor = credential
        .as_deref()
        .is_some_and(|c| SECOND_FACTORS.contains(&c));
    let error = text(e, "error");
    let unmapped = |why: &str| {
        reject(
            UnmappedReason::UnmappedType,
            Some(kind),
            format!("Keycloak event {kind} {why}"),
        )
    };
    let mapping = match kind {
        "LOGIN" => Mapping::Auth(AuthType::LoginSuccess),
        "LOGIN_ERROR" if second_factor => Mapping::Auth(AuthType::MfaFailure),
        "LOGIN_ERROR" | "CLIENT_LOGIN_ERROR" => Mapping::Auth(AuthType::LoginFailure),
        "CODE_TO_TOKEN" | "TOKEN_EXCHANGE" | "CLIENT_LOGIN" => Mapping::Auth(AuthType::TokenIssued),
        "REFRESH_TOKEN" => Mapping::Auth(AuthType::TokenRefreshed),
        "LOGOUT" => Mapping::Auth(AuthType::Logout),
        "REVOKE_GRANT" => Mapping::Auth(AuthType::TokenRevoked),
        // Keycloak 24 and later log UPDATE_CREDENTIAL and REMOVE_CREDENTIAL
        // beside the older UPDATE_PASSWORD, UPDATE_TOTP and REMOVE_TOTP of
        // the same change; the older ones map, the newer ones only for the
        // credential types the older ones never covered (WebAuthn, recovery
        // codes), so that one change is one event on every version.
        "UPDATE_PASSWORD" => Mapping::Auth(AuthType::PasswordChanged),
        "UPDATE_TOTP" => Mapping::Auth(AuthType::DeviceEnrolled),
        "REMOVE_TOTP" => Mapping::Action("user.reset_mfa"),
        "UPDATE_CREDENTIAL" | "REMOVE_CREDENTIAL" => match credential.as_deref() {
            Some("password" | "otp" | "totp" | "hotp") => {
                return Err(unmapped(
                    "repeats the UPDATE_PASSWORD, UPDATE_TOTP or REMOVE_TOTP that Keycloak logs beside it",
                ));
            }
            Some(_) if second_factor && kind == "UPDATE_CREDENTIAL" => {
                Mapping::Auth(AuthType::DeviceEnrolled)
            }
            Some(_) if second_factor => Mapping::Action("user.reset_mfa"),
            _ => return Err(unmapped("changes no password or second factor")),
        },
        "IMPERSONATE" => Mapping::Action("user.impersonate"),
        "DELETE_ACCOUNT" => Mapping::Action("user.delete"),
        _ if kind.ends_with("_ERROR") => {
            return Err(unmapped(
                "(an error of a step that is not mapped) is not mapped",
            ));
        }
        _ => return Err(unmapped("is not mapped")),
    };
    let mut d = Draft::new(Some(kind));
    match mapping {
        Mapping::Auth(t) => d.auth(t),
        Mapping::Action(name) => d.action(name),
    };
    d.vendor_id = text(e, "id").map(str::to_owned);
    d.tenant = text(e, "realmId").map(str::to_owned);
    let client = text(e, "clientId");
    let user = text(e, "userId");
    let username = detail(e, "username");

    // Who: a client's service account for client credentials; the
    // impersonator for impersonation; otherwise the user, or the username
    // typed when Keycloak found no user.
    if kind.starts_with("CLIENT_LOGIN") {
        d.principal_type = PrincipalType::Workload;
        d.principal = client.map(str::to_owned);
        d.attr("service_account", username.or(user));
    } else if kind == "IMPERSONATE" {
        d.principal = detail(e, "impersonator_id")
            .or_else(|| detail(e, "impersonator"))
            .or(user)
            .map(str::to_owned);
        d.resource = user.map(str::to_owned);
        d.attr("impersonator", detail(e, "impersonator"));
    } else if let Some(u) = user {
        d.principal = Some(u.to_owned());
    } else if let Some(name) = username {
        d.principal = Some(name.to_owned());
        d.attr("principal_source", Some("username"));
    }
    d.attr("username", username);

    // Session: the user session, else the authentication session (`code_id`,
    // which Keycloak keeps as the user session's id once the login succeeds).
    d.session = text(e, "sessionId")
        .or_else(|| detail(e, "code_id"))
        .or_else(|| detail(e, "authSessionParentId"))
        .map(str::to_owned);
    d.ip_text(text(e, "ipAddress"));
    d.attr("client_id", client);
    d.attr("error", error);
    if error == Some("user_temporarily_disabled") {
        d.attr("blocked", Some("locked_out"));
    }
    for key in [
        "auth_method",
        "auth_type",
        "grant_type",
        "credential_type",
        "identity_provider",
        "redirect_uri",
        "remember_me",
        "client_auth_method",
    ] {
        d.attr(key, detail(e, key));
    }
    d.attr("realm_name", text(e, "realmName"));
    Ok(d)
}

// ---------------------------------------------------------------------------
// Admin events

/// Resource types whose changes change how users authenticate.
const CONTROL_RESOURCES: [&str; 5] = [
    "AUTH_FLOW",
    "AUTH_EXECUTION_FLOW",
    "AUTH_EXECUTION",
    "AUTHENTICATOR_CONFIG",
    "REQUIRED_ACTION",
];

fn admin_event(e: &Value) -> Result<Draft, Unmapped> {
    let op = text(e, "operationType").unwrap_or("");
    let resource_type = text(e, "resourceType").unwrap_or("");
    let path = text(e, "resourcePath").unwrap_or("");
    let vendor_type = format!("{resource_type} {op}").trim().to_owned();
    let representation = representation(e);
    let mapping =
        classify_admin(op, resource_type, path, representation.as_ref()).map_err(|why| {
            reject(
                UnmappedReason::UnmappedType,
                Some(&vendor_type),
                format!("Keycloak admin event {vendor_type} on {path:?} {why}"),
            )
        })?;
    let mut d = Draft::new(Some(&vendor_type));
    match mapping {
        Mapping::Auth(t) => d.auth(t),
        Mapping::Action(name) => d.action(name),
    };
    d.vendor_id = text(e, "id").map(str::to_owned);
    let auth = field(e, "authDetails");
    let actor_realm = auth.and_then(|a| text(a, "realmId"));
    let target_realm = text(e, "realmId");
    // The admin's own realm: their logins are there, so their state is.
    d.tenant = actor_realm.or(target_realm).map(str::to_owned);
    d.principal = auth.and_then(|a| text(a, "userId")).map(str::to_owned);
    d.ip_text(auth.and_then(|a| text(a, "ipAddress")));
    d.attr("client_id", auth.and_then(|a| text(a, "clientId")));
    if target_realm != actor_realm {
        d.attr("target_realm", target_realm);
    }
    d.attr("resource_path", Some(path));
    d.attr("error", text(e, "error"));

    // What it touched: the user or group of the path, the roles granted.
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let member = match segments.as_slice() {
        [kind @ ("users" | "groups"), id, ..] => Some(format!("{kind}/{id}")),
        _ => None,
    };
    let names = representation
        .as_ref()
        .map(|r| {
            let one = |v: &Value| {
                text(v, "name")
                    .or_else(|| text(v, "path"))
                    .map(str::to_owned)
            };
            match r {
                Value::Array(items) => items.iter().filter_map(one).collect::<Vec<_>>(),
                other => one(other).into_iter().collect(),
            }
        })
        .unwrap_or_default()
        .join(",");
    let is_rbac = matches!(d.body, Some(EventBody::Action(ref a)) if a.name.starts_with("rbac."));
    if is_rbac {
        d.attr(
            if resource_type == "GROUP_MEMBERSHIP" {
                "group"
            } else {
                "role"
            },
            Some(&names),
        );
        d.attr("member", member.as_deref());
        d.resource = Some(if names.is_empty() {
            path.to_owned()
        } else {
            names
        });
    } else {
        d.resource = member.or_else(|| (!path.is_empty()).then(|| path.to_owned()));
    }
    Ok(d)
}

/// The `representation` of an admin event: a JSON document written as a
/// string (or, from some exporters, as JSON).
fn representation(e: &Value) -> Option<Value> {
    match field(e, "representation")? {
        Value::String(s) => serde_json::from_str(s).ok(),
        other => Some(other.clone()),
    }
}

fn classify_admin(
    op: &str,
    resource_type: &str,
    path: &str,
    representation: Option<&Value>,
) -> Result<Mapping, &'static str> {
    use Mapping::Action;
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match (resource_type, op) {
        ("REALM_ROLE_MAPPING" | "CLIENT_ROLE_MAPPING" | "GROUP_MEMBERSHIP", "CREATE") => {
            Ok(Action("rbac.assign"))
        }
        ("REALM_ROLE_MAPPING" | "CLIENT_ROLE_MAPPING" | "GROUP_MEMBERSHIP", "DELETE") => {
            Ok(Action("rbac.revoke"))
        }
        ("USER", "DELETE") if segments.len() == 2 => Ok(Action("user.delete")),
        // An admin setting another user's password acts on that account (as
        // in the Okta and Entra adapters); a user's own change is the
        // UPDATE_PASSWORD user event.
        ("USER", _) if path.ends_with("/reset-password") => Ok(Action("user.reset_password")),
        ("USER", _)
            if path.ends_with("/remove-totp") || path.ends_with("/disable-credential-types") =>
        {
            Ok(Action("user.reset_mfa"))
        }
        ("USER", "DELETE" | "ACTION")
            if segments.len() == 4 && segments.get(2) == Some(&"credentials") =>
        {
            Ok(Action("user.reset_mfa"))
        }
        ("USER", _) if path.ends_with("/impersonation") => Ok(Action("user.impersonate")),
        ("CLIENT", _)
            if path.ends_with("/client-secret")
                || (path.contains("/certificates/")
                    && (path.ends_with("/generate") || path.contains("/upload"))) =>
        {
            Ok(Action("api.admin.keys.create"))
        }
        (rt, "DELETE") if CONTROL_RESOURCES.contains(&rt) => Ok(Action("control.disable")),
        (rt, _) if CONTROL_RESOURCES.contains(&rt) => {
            let disabled = representation.is_some_and(|r| {
                text(r, "requirement").is_some_and(|q| q.eq_ignore_ascii_case("DISABLED"))
                    || field(r, "enabled").and_then(Value::as_bool) == Some(false)
            });
            Ok(Action(if disabled {
                "control.disable"
            } else {
                "control.update"
            }))
        }
        _ => Err("is not mapped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(s: &str) -> Vec<(String, String)> {
        parse_pairs(s)
    }

    #[test]
    fn bare_single_and_double_quoted_values() {
        let p = pairs(
            "type=LOGIN_ERROR, realmId=test, userId=null, error=invalid_redirect_uri, redirect_uri=http://localhost:8080",
        );
        assert_eq!(p.len(), 4);
        assert_eq!(
            p[3],
            (
                "redirect_uri".to_owned(),
                "http://localhost:8080".to_owned()
            )
        );
        let p = pairs("type=LOGIN, realmId=r, reason='two words, here', username=bob");
        assert_eq!(p[2].1, "two words, here");
        assert_eq!(p[3].1, "bob");
        let p = pairs(
            r#"type="LOGIN", realmId="r", userId="null", note="say \"hi\", then", username="bob""#,
        );
        assert_eq!(p.len(), 4);
        assert_eq!(p[2].1, "say \"hi\", then");
        assert_eq!(p[3].1, "bob");
    }

    #[test]
    fn log_times() {
        assert_eq!(
            log_time("2021-10-22 21:01:45,403"),
            Timestamp::parse_rfc3339("2021-10-22T21:01:45.403Z").ok()
        );
        assert_eq!(
            log_time("2023-03-02T10:15:20.123+01:00"),
            Timestamp::parse_rfc3339("2023-03-02T09:15:20.123Z").ok()
        );
        assert_eq!(log_time("21:01:45,403"), None);
    }

    #[test]
    fn event_start_skips_detail_keys() {
        let line = "x WARN [org.keycloak.events] (t) type=LOGIN, auth_type=code";
        assert_eq!(
            event_start(line).map(|i| &line[i..i + 10]),
            Some("type=LOGIN")
        );
        assert_eq!(event_start("no event here"), None);
    }
}
