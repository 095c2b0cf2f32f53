//! Auth0 tenant log events (the Management API's `/api/v2/logs`, or a log
//! stream, which wraps each as `{"log_id", "data": {...}}`) to contract
//! events.
//!
//! The log `type` code decides the contract event: sign-ins, MFA (Guardian)
//! steps, token exchanges and logouts are `auth` events; Management API
//! writes (`sapi`) are `action` events named after what they change, so that
//! the policy's globs (`control.*`, `rbac.*`, `api.admin.*`) decide their
//! sensitivity. Codes with no bearing on authentication risk (e-mail
//! verification, rate-limit warnings, deprecation notices) are rejected as
//! `unmapped_type`, naming the code.

use riskstream_schemas::{AuthType, Event, PrincipalType};
use serde_json::Value;

use crate::draft::{Draft, at, parse_ip, parse_time, str_at};
use crate::{AdapterOptions, Format, Unmapped, UnmappedReason};

const FORMAT: Format = Format::Auth0;

/// Maps one Auth0 log event, bare or in a log-stream envelope.
pub(crate) fn normalize(record: &Value, opts: &AdapterOptions) -> Result<Vec<Event>, Unmapped> {
    let (log, envelope_id) = unwrap(record);
    let recognised = log.is_object()
        && str_at(log, &["type"]).is_some()
        && (at(log, &["date"]).is_some() || log_id(log).is_some() || envelope_id.is_some());
    let Some(code) = str_at(log, &["type"]).filter(|_| recognised) else {
        return Err(Unmapped::new(
            FORMAT,
            UnmappedReason::NotRecognised,
            None,
            "no log type and date: not an Auth0 log event",
        ));
    };
    let mapping = classify(code, log)
        .map_err(|why| Unmapped::new(FORMAT, UnmappedReason::UnmappedType, Some(code), why))?;

    let mut d = Draft::new(Some(code));
    d.vendor_id = log_id(log).or(envelope_id).map(str::to_owned);
    d.time = at(log, &["date"]).and_then(parse_time);
    match &mapping.body {
        Body::Auth(t) => {
            d.auth(*t);
        }
        Body::Action(name) => {
            d.action(name);
        }
    }
    for (k, v) in &mapping.attributes {
        d.attr(k, Some(v));
    }
    d.resource = mapping.resource.clone();

    // Who. The Management API names the dashboard user in the request's
    // credentials; a machine-to-machine client has no user at all.
    let request_user = at(log, &["details", "request", "auth", "user"]);
    let user_id =
        str_at(log, &["user_id"]).or_else(|| request_user.and_then(|u| str_at(u, &["user_id"])));
    let user_name =
        str_at(log, &["user_name"]).or_else(|| request_user.and_then(|u| str_at(u, &["email"])));
    let client_id = str_at(log, &["client_id"]);
    let workload =
        mapping.workload || (mapping.management && user_id.is_none() && user_name.is_none());
    if workload {
        d.principal = client_id.map(str::to_owned);
        d.principal_type = PrincipalType::Workload;
    } else {
        d.principal = user_id.or(user_name).map(str::to_owned);
        if user_id.is_some() {
            d.attr("login", user_name);
        }
    }
    d.attr("client_id", client_id.filter(|_| !workload));
    d.attr("client_name", str_at(log, &["client_name"]));
    d.attr("connection", str_at(log, &["connection"]));
    d.attr("strategy", str_at(log, &["strategy"]));
    d.attr("session_connection", str_at(log, &["session_connection"]));
    d.attr("organization_id", str_at(log, &["organization_id"]));
    d.attr("hostname", str_at(log, &["hostname"]));
    d.attr("auth0_description", str_at(log, &["description"]));
    // The tenant name, which every streamed log carries. Not the hostname:
    // a custom domain and the dashboard's Management API calls would split
    // one tenant's principals in two.
    d.tenant = str_at(log, &["tenant_name"]).map(str::to_owned);

    // Where from.
    d.ip = str_at(log, &["ip"])
        .or_else(|| str_at(log, &["details", "request", "ip"]))
        .and_then(parse_ip);
    d.user_agent = str_at(log, &["user_agent"])
        .or_else(|| str_at(log, &["details", "request", "userAgent"]))
        .map(str::to_owned);
    // Guardian's device for MFA steps (the enrolled phone), else the device
    // Auth0's risk assessment recognised.
    d.device_id = str_at(log, &["details", "device_id"])
        .or_else(|| {
            str_at(
                log,
                &[
                    "details",
                    "riskAssessment",
                    "assessments",
                    "NewDevice",
                    "details",
                    "device",
                ],
            )
        })
        .map(str::to_owned);

    // The session: Auth0's session id; for the Management API, the access
    // token's id; for a client, the client itself (its credential).
    d.session = session_id(log).map(str::to_owned);
    if d.session.is_none() && workload {
        d.session = client_id.map(str::to_owned);
    }

    // Assurance, on successes only.
    if let Body::Auth(t @ (AuthType::LoginSuccess | AuthType::MfaSuccess)) = mapping.body {
        let (amr, acr) = assurance(log, t == AuthType::LoginSuccess, &mapping.amr);
        d.amr = amr;
        d.acr = acr;
    }
    d.attr(
        "authenticator",
        str_at(log, &["details", "authenticator", "type"]),
    );

    // Auth0's own verdict (Adaptive MFA risk assessment), for comparison.
    if let Some(risk) = at(log, &["details", "riskAssessment"]) {
        d.attr("auth0_risk_confidence", str_at(risk, &["confidence"]));
        for (assessor, key) in [
            ("ImpossibleTravel", "auth0_risk_impossible_travel"),
            ("NewDevice", "auth0_risk_new_device"),
            ("UntrustedIP", "auth0_risk_untrusted_ip"),
        ] {
            d.attr(key, str_at(risk, &["assessments", assessor, "code"]));
        }
    }

    d.finish(FORMAT, record.to_string().as_bytes(), opts)
        .map(|e| vec![e])
}

/// The log inside a stream envelope (`{"log_id", "data"}`, or EventBridge's
/// `{"detail": {"data"}}`), with the envelope's id; else the record itself.
fn unwrap(record: &Value) -> (&Value, Option<&str>) {
    for envelope in [Some(record), at(record, &["detail"])]
        .into_iter()
        .flatten()
    {
        if let Some(data) = at(envelope, &["data"]).filter(|d| str_at(d, &["type"]).is_some()) {
            return (data, str_at(envelope, &["log_id"]));
        }
    }
    (record, None)
}

fn log_id(log: &Value) -> Option<&str> {
    str_at(log, &["log_id"]).or_else(|| str_at(log, &["_id"]))
}

/// Auth0's session id, wherever this log type keeps it.
fn session_id(log: &Value) -> Option<&str> {
    str_at(log, &["details", "session_id"])
        .or_else(|| str_at(log, &["session_id"]))
        .or_else(|| {
            at(log, &["details", "prompts"])
                .and_then(Value::as_array)
                .and_then(|prompts| prompts.iter().find_map(|p| str_at(p, &["session_id"])))
        })
        .or_else(|| str_at(log, &["details", "request", "auth", "credentials", "jti"]))
}

/// `amr` and `acr` of a successful step: what the prompts performed, the
/// password of a sign-in through a database connection (the connection of a
/// Guardian step says nothing of that step), the MFA prompt, the Guardian
/// authenticator, and what the log type itself implies.
fn assurance(
    log: &Value,
    sign_in: bool,
    implied: &[&'static str],
) -> (Vec<String>, Option<String>) {
    let mut amr: Vec<String> = Vec::new();
    let mut push = |m: &str| {
        if !m.is_empty() && !amr.iter().any(|a| a == m) {
            amr.push(m.to_owned());
        }
    };
    let mut acr = None;
    if sign_in && str_at(log, &["strategy_type"]) == Some("database") {
        push("pwd");
    }
    for p in at(log, &["details", "prompts"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if str_at(p, &["strategy"]) == Some("auth0") {
            push("pwd");
        }
        if str_at(p, &["name"]) == Some("mfa") {
            push("mfa");
        }
        if let Some(m) = str_at(p, &["passwordless_amr"]) {
            push(m);
        }
        for m in at(p, &["performed_amr"])
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            push(m);
        }
        if let Some(a) = at(p, &["performed_acr"])
            .and_then(Value::as_array)
            .and_then(|a| a.iter().filter_map(Value::as_str).next_back())
        {
            acr = Some(a.to_owned());
        }
    }
    if let Some(m) = str_at(log, &["details", "authenticator", "type"]).and_then(authenticator_amr)
    {
        push(m);
    }
    for m in implied {
        push(m);
    }
    (amr, acr)
}

/// OpenID Connect `amr` (RFC 8176) for a Guardian authenticator type.
fn authenticator_amr(kind: &str) -> Option<&'static str> {
    match kind {
        "otp" | "email" => Some("otp"),
        "sms" => Some("sms"),
        "voice" | "phone" => Some("tel"),
        "push" | "push-notification" | "guardian" => Some("swk"),
        "webauthn-roaming" => Some("hwk"),
        "webauthn-platform" => Some("swk"),
        _ => None,
    }
}

/// The contract event a log type maps to.
enum Body {
    Auth(AuthType),
    Action(String),
}

struct Mapping {
    body: Body,
    attributes: Vec<(&'static str, String)>,
    resource: Option<String>,
    /// `amr` the log type itself implies on success.
    amr: Vec<&'static str>,
    /// The principal is the client (client credentials).
    workload: bool,
    /// A Management API record: without a user, the client is the principal.
    management: bool,
}

impl Mapping {
    fn auth(t: AuthType) -> Mapping {
        Mapping {
            body: Body::Auth(t),
            attributes: Vec::new(),
            resource: None,
            amr: Vec::new(),
            workload: false,
            management: false,
        }
    }

    fn action(name: impl Into<String>) -> Mapping {
        Mapping {
            body: Body::Action(name.into()),
            ..Mapping::auth(AuthType::LoginSuccess)
        }
    }

    fn with(mut self, key: &'static str, value: impl Into<String>) -> Mapping {
        self.attributes.push((key, value.into()));
        self
    }

    fn amr(mut self, amr: &[&'static str]) -> Mapping {
        self.amr.extend_from_slice(amr);
        self
    }

    fn for_client(mut self) -> Mapping {
        self.workload = true;
        self
    }
}

/// The mapping table (docs/adapters/auth0.md shows it).
fn classify(code: &str, log: &Value) -> Result<Mapping, String> {
    use AuthType::*;
    let m = match code {
        "s" | "scoa" | "sens" => Mapping::auth(LoginSuccess),
        // Resource-owner password grant: the password is the sign-in.
        "sepft" => Mapping::auth(LoginSuccess).amr(&["pwd"]),
        "f" | "fp" | "fu" | "fc" | "fcoa" | "fens" | "fepft" | "fd" => Mapping::auth(LoginFailure),
        "feccft" => Mapping::auth(LoginFailure).for_client(),
        // Attack protection blocked the attempt.
        "limit_wc" | "limit_sul" | "limit_mu" => Mapping::auth(LoginFailure).with("blocked", code),
        // Breached-password detection: Auth0 blocks the sign-in (and, in
        // notify-only mode, logs the `s` that follows).
        "pwd_leak" => Mapping::auth(LoginFailure)
            .with("blocked", code)
            .with("breached_password", "true"),
        "mfar" | "gd_start_auth" | "gd_send_pn" | "gd_send_sms" | "gd_send_voice"
        | "gd_send_mail" | "gd_send_email" => Mapping::auth(MfaChallenge),
        "gd_auth_succeed" | "gd_recovery_succeed" => Mapping::auth(MfaSuccess).amr(&["mfa"]),
        "seotpft" => Mapping::auth(MfaSuccess).amr(&["pwd", "otp", "mfa"]),
        "seoobft" | "sercft" => Mapping::auth(MfaSuccess).amr(&["pwd", "mfa"]),
        "gd_auth_failed"
        | "gd_recovery_failed"
        | "gd_webauthn_challenge_failed"
        | "feotpft"
        | "feoobft"
        | "fercft" => Mapping::auth(MfaFailure),
        "gd_otp_rate_limit_exceed" | "gd_recovery_rate_limit_exceed" => {
            Mapping::auth(MfaFailure).with("blocked", code)
        }
        // The user rejected the Guardian push; another authenticator type
        // named here is a plain failure.
        "gd_auth_rejected" => match str_at(log, &["details", "authenticator", "type"]) {
            Some(kind) if authenticator_amr(kind) != Some("swk") => Mapping::auth(MfaFailure),
            _ => Mapping::auth(MfaPushDenied),
        },
        "gd_enrollment_complete" => Mapping::auth(DeviceEnrolled),
        "gd_unenroll" | "gd_user_delete" => Mapping::action("user.reset_mfa"),
        "gd_tenant_update" => Mapping::action("control.update"),
        "scp" => Mapping::auth(PasswordChanged),
        "slo" => Mapping::auth(Logout),
        "seacft" | "sede" | "ssa" | "sd" => Mapping::auth(TokenIssued),
        "seccft" => Mapping::auth(TokenIssued).for_client(),
        "sertft" => Mapping::auth(TokenRefreshed),
        "srrt" => Mapping::auth(TokenRevoked),
        // A rotated refresh token presented again: Auth0 revokes its family.
        "ferrt" => Mapping::auth(TokenRevoked).with("token_reuse", "true"),
        "sce" => Mapping::action("user.update_email"),
        "scpn" => Mapping::action("user.update_phone"),
        "scu" => Mapping::action("user.update_username"),
        "ublkdu" => Mapping::action("user.unlock"),
        "sapi" | "fapi" => management_action(code, log)?,
        "mgmt_api_read" => {
            let mut m = Mapping::action("secrets.read");
            m.management = true;
            m.resource = str_at(log, &["details", "request", "path"]).map(str::to_owned);
            m
        }
        "fs" | "ss" | "signup_pwd_leak" => {
            return Err("a sign-up, not a sign-in of an existing principal".to_owned());
        }
        "feacft" | "fertft" => {
            return Err(
                "a failed code or refresh exchange is a client error, not a credential guess"
                    .to_owned(),
            );
        }
        "du" | "sdu" => {
            return Err("the deletion's sapi record names the admin who deleted".to_owned());
        }
        "fsa" => return Err("silent authentication without a session: routine".to_owned()),
        "gd_start_enroll" => {
            return Err("enrolment started; gd_enrollment_complete is the enrolment".to_owned());
        }
        _ => return Err(format!("Auth0 log type {code:?} has no contract event")),
    };
    Ok(m)
}

/// A Management API write, named after what it changes.
fn management_action(code: &str, log: &Value) -> Result<Mapping, String> {
    let Some(raw_path) = str_at(log, &["details", "request", "path"]) else {
        return Err("Management API record without details.request.path".to_owned());
    };
    let method = str_at(log, &["details", "request", "method"])
        .unwrap_or("")
        .to_ascii_lowercase();
    let path = raw_path.split('?').next().unwrap_or(raw_path);
    let rest = path.trim_start_matches('/');
    let rest = rest.strip_prefix("api/").unwrap_or(rest);
    let rest = rest.strip_prefix("v2/").unwrap_or(rest);
    let seg: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let request = at(log, &["details", "request", "body"]);
    let response = at(log, &["details", "response", "body"]);
    // A protection's state after the call: the response says it, else the
    // request asked for it.
    let enabled = response
        .and_then(|b| b.get("enabled"))
        .and_then(Value::as_bool)
        .or_else(|| {
            request
                .and_then(|b| b.get("enabled"))
                .and_then(Value::as_bool)
        });
    let control = |off: bool| {
        if off {
            "control.disable"
        } else {
            "control.update"
        }
    };
    let verb = match method.as_str() {
        "post" => "create",
        "put" | "patch" => "update",
        "delete" => "delete",
        "get" => "read",
        _ => "call",
    };
    let m = method.as_str();
    let name: String = match seg.as_slice() {
        ["attack-protection", ..] => control(enabled == Some(false)).to_owned(),
        // An empty MFA policy list turns MFA off for every application.
        ["guardian", "policies"] => control(
            request
                .and_then(Value::as_array)
                .is_some_and(|a| a.is_empty()),
        )
        .to_owned(),
        ["guardian", "factors", ..] => control(enabled == Some(false)).to_owned(),
        ["guardian", "enrollments", _] if m == "delete" => "user.reset_mfa".to_owned(),
        ["guardian", ..] => "control.update".to_owned(),
        // Adaptive MFA's risk assessment switched off.
        ["risk-assessment", ..] => {
            let off = request
                .and_then(Value::as_object)
                .is_some_and(|b| b.values().any(|v| v.as_bool() == Some(false)));
            control(off).to_owned()
        }
        // Actions bound to the login flow run on every sign-in.
        ["actions", "triggers", ..] => "control.update".to_owned(),
        ["roles"] if m == "post" => "rbac.role.create".to_owned(),
        ["roles", _] => format!("rbac.role.{verb}"),
        ["roles", _, "users" | "permissions"]
        | ["users", _, "roles" | "permissions"]
        | ["organizations", _, "members", _, "roles"] => if m == "delete" {
            "rbac.revoke"
        } else {
            "rbac.assign"
        }
        .to_owned(),
        // A dashboard invitation carries the roles it grants.
        ["tenants", "invitations"] if m == "post" => "rbac.assign".to_owned(),
        ["organizations", _, "invitations"] if m == "post" => "user.invite".to_owned(),
        ["users"] if m == "post" => "user.create".to_owned(),
        ["users", _] if m == "delete" => "user.delete".to_owned(),
        ["users", _] if m == "patch" => user_update(request).to_owned(),
        [
            "users",
            _,
            "multifactor" | "authenticators" | "authentication-methods" | "enrollments",
            ..,
        ] if m == "delete" => "user.reset_mfa".to_owned(),
        ["users", _, "recovery-code-regeneration"] => "user.reset_mfa".to_owned(),
        ["users", _, "sessions" | "refresh-tokens"] | ["sessions", _] if m == "delete" => {
            "user.clear_sessions".to_owned()
        }
        ["users", _, "impersonate"] => "user.impersonate".to_owned(),
        // New credentials for an API: a grant, a client (with its secret),
        // a client credential or a rotated secret.
        ["client-grants"]
        | ["clients"]
        | ["clients", _, "credentials"]
        | ["clients", _, "rotate-secret"]
            if m == "post" =>
        {
            "api.admin.keys.create".to_owned()
        }
        ["keys", "signing", "rotate"] => "api.admin.keys.rotate".to_owned(),
        [first, ..] => format!("api.admin.{}.{verb}", first.replace('-', "_")),
        [] => {
            return Err(format!(
                "Management API path {raw_path:?} names no resource"
            ));
        }
    };
    let mut mapping = Mapping::action(name);
    mapping.management = true;
    mapping.resource = Some(path.to_owned());
    if !m.is_empty() {
        mapping = mapping.with("http_method", m.to_ascii_uppercase());
    }
    let status = at(log, &["details", "response", "statusCode"]).and_then(Value::as_u64);
    if code == "fapi" || status.is_some_and(|s| s >= 400) {
        mapping = mapping.with("outcome", "failure");
    }
    if let Some(s) = status {
        mapping = mapping.with("status", s.to_string());
    }
    Ok(mapping)
}

/// What a `PATCH /users/{id}` changes, most sensitive first.
fn user_update(body: Option<&Value>) -> &'static str {
    let has = |k: &str| body.and_then(|b| b.get(k)).is_some_and(|v| !v.is_null());
    if body.and_then(|b| b.get("blocked")).and_then(Value::as_bool) == Some(true) {
        "user.block"
    } else if has("password") {
        "user.reset_password"
    } else if has("email") {
        "user.update_email"
    } else if has("phone_number") {
        "user.update_phone"
    } else {
        "user.update"
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn action_of(method: &str, path: &str, body: Value) -> String {
        let log = json!({ "type": "sapi", "details": { "request": { "method": method, "path": path, "body": body } } });
        match management_action("sapi", &log).map(|m| m.body) {
            Ok(Body::Action(name)) => name,
            _ => String::new(),
        }
    }

    #[test]
    fn management_paths_name_actions() {
        assert_eq!(
            action_of("post", "/api/v2/roles/rol_1/users", json!({})),
            "rbac.assign"
        );
        assert_eq!(
            action_of("delete", "/api/v2/users/auth0|1/roles", json!({})),
            "rbac.revoke"
        );
        assert_eq!(
            action_of("post", "/api/v2/client-grants", json!({})),
            "api.admin.keys.create"
        );
        assert_eq!(
            action_of("patch", "/api/v2/users/auth0|1", json!({"blocked": true})),
            "user.block"
        );
        assert_eq!(
            action_of(
                "delete",
                "/api/v2/users/auth0|1/multifactor/guardian",
                json!({})
            ),
            "user.reset_mfa"
        );
        assert_eq!(
            action_of("put", "/api/v2/guardian/policies", json!([])),
            "control.disable"
        );
        assert_eq!(
            action_of(
                "put",
                "/api/v2/guardian/factors/sms",
                json!({"enabled": false})
            ),
            "control.disable"
        );
        assert_eq!(
            action_of("patch", "/api/v2/log-streams/lst_1", json!({})),
            "api.admin.log_streams.update"
        );
    }
}
