//! Okta System Log events (`/api/v1/logs`, log streaming, or an export of
//! either) to contract events.
//!
//! One System Log event maps to one contract event: an `auth` event for
//! sign-in, MFA, session and token events, an `action` event where the record
//! is itself a sensitive act (an admin role grant, an MFA reset, an API token,
//! a policy change). Okta's own verdict (`debugData.risk`, `behaviors`) is
//! kept in the attributes `okta_risk` and `okta_behaviors` so that it can be
//! compared with the engine's, never fed to it.
//!
//! Keys are matched case-insensitively when they are not found as written:
//! exports through data lakes (Snowflake, Panther) lower-case them
//! (`eventtype`, `authenticationcontext`), and the values are the same.

use riskstream_schemas::{AuthType, DeviceTrust, Event, PrincipalType};
use serde_json::Value;

use crate::draft::{Draft, field, parse_ip, parse_time, path};
use crate::{AdapterOptions, Format, Unmapped, UnmappedReason};

const FORMAT: Format = Format::Okta;

/// Maps one Okta System Log event.
pub(crate) fn normalize(record: &Value, opts: &AdapterOptions) -> Result<Vec<Event>, Unmapped> {
    if !record.is_object() {
        return Err(Unmapped::new(
            FORMAT,
            UnmappedReason::NotRecognised,
            None,
            "not a JSON object",
        ));
    }
    let Some(event_type) = text(record, &["eventType"]) else {
        return Err(Unmapped::new(
            FORMAT,
            UnmappedReason::NotRecognised,
            None,
            "no eventType: not an Okta System Log event",
        ));
    };
    let actor = Actor::of(record);
    let target_user = target_of(record, |t| t.eq_ignore_ascii_case("User"));
    // An admin acting on someone else's account is an action of the admin,
    // not an authentication of the admin.
    let on_other = match (&target_user, actor.id.as_deref()) {
        (Some(t), Some(a)) => t.id.as_deref().is_some_and(|id| id != a),
        _ => false,
    };
    let outcome = Outcome::of(record);
    let debug = path(record, &["debugContext", "debugData"]);
    let factor = debug.and_then(|d| text(d, &["factor"]));
    let mapping = classify(event_type, outcome, record, factor, on_other).map_err(|why| {
        Unmapped::new(FORMAT, UnmappedReason::UnmappedType, Some(event_type), why)
    })?;

    let mut d = Draft::new(Some(event_type));
    d.vendor_id = text(record, &["uuid"]).map(str::to_owned);
    // Panther's export carries its own parse of `published` as `p_event_time`,
    // used when `published` is absent or redacted.
    d.time = field(record, "published")
        .and_then(parse_time)
        .or_else(|| field(record, "p_event_time").and_then(parse_time));
    match mapping.body {
        Body::Auth(t) => {
            d.auth(t);
        }
        Body::Action(name) => {
            d.action(name);
        }
    }
    for (k, v) in mapping.attributes {
        d.attr(k, Some(v));
    }

    // Who: the actor's stable id, its login beside it.
    d.principal = actor.id.clone();
    d.principal_type = actor.kind;
    d.attr("login", actor.login.as_deref());
    d.attr("okta_actor_type", actor.okta_type.as_deref());
    // A client's token for a user belongs to the user's session.
    if let Body::Auth(AuthType::TokenIssued | AuthType::TokenRefreshed | AuthType::TokenRevoked) =
        mapping.body
        && actor.kind == PrincipalType::Workload
        && debug.and_then(|d| text(d, &["grantType"])) != Some("client_credentials")
        && let Some(user) = debug
            .and_then(|d| text(d, &["userId"]))
            .or(target_user.as_ref().and_then(|t| t.id.as_deref()))
    {
        d.attributes.remove("login");
        d.attr("client_id", actor.id.as_deref());
        d.attr("client_name", actor.login.as_deref());
        d.principal = Some(user.to_owned());
        d.principal_type = PrincipalType::Human;
    }

    // Where from.
    let client = field(record, "client");
    d.ip = client
        .and_then(|c| text(c, &["ipAddress"]))
        .or_else(|| {
            path(record, &["request", "ipChain"])
                .and_then(Value::as_array)
                .and_then(|chain| chain.first())
                .and_then(|hop| text(hop, &["ip"]))
        })
        .and_then(parse_ip);
    d.user_agent = client
        .and_then(|c| text(c, &["userAgent", "rawUserAgent"]))
        .map(str::to_owned);
    // The registered device (Okta Identity Engine), else the browser's
    // device token hash, else Okta's browser fingerprint. `client.device` is
    // a form factor ("Computer"), not an identifier.
    let device = field(record, "device");
    d.device_id = device
        .and_then(|dev| text(dev, &["id"]))
        .or_else(|| debug.and_then(|d| text(d, &["dtHash"])))
        .or_else(|| debug.and_then(|d| text(d, &["deviceFingerprint"])))
        .map(str::to_owned);
    d.device_trust = device.and_then(|dev| {
        if flag(dev, "managed") == Some(true) {
            Some(DeviceTrust::Managed)
        } else if flag(dev, "registered") == Some(true) {
            Some(DeviceTrust::Known)
        } else {
            None
        }
    });
    d.attr("client_device", client.and_then(|c| text(c, &["device"])));
    let security = field(record, "securityContext");
    d.asn = security
        .and_then(|s| field(s, "asNumber"))
        .and_then(as_number);
    d.attr("as_org", security.and_then(|s| text(s, &["asOrg"])));
    if security.and_then(|s| flag(s, "isProxy")) == Some(true) {
        d.attr("okta_is_proxy", Some("true"));
    }

    // The session: Okta's session id; a client without one is its own
    // credential.
    d.session = text(record, &["authenticationContext", "externalSessionId"]).map(str::to_owned);
    if d.session.is_none() && d.principal_type == PrincipalType::Workload {
        d.session = actor.id.clone();
    }

    // Assurance, on successes only: a failure reaches no level.
    if let Body::Auth(t @ (AuthType::LoginSuccess | AuthType::MfaSuccess)) = mapping.body {
        let mut amr: Vec<String> = Vec::new();
        let credential = text(record, &["authenticationContext", "credentialType"]);
        for method in [
            credential.and_then(credential_amr),
            factor.and_then(factor_amr),
        ]
        .into_iter()
        .flatten()
        {
            push_unique(&mut amr, method);
        }
        if t == AuthType::MfaSuccess {
            push_unique(&mut amr, "mfa");
        }
        d.amr = amr;
    }
    d.attr("okta_factor", factor);
    d.attr("okta_outcome", outcome.result);
    d.attr("okta_reason", outcome.reason);

    // What the action touches.
    if let Body::Action(_) = mapping.body {
        d.resource = action_resource(record, debug, event_type);
        if let Some(t) = &target_user {
            d.attr("target_user", t.id.as_deref());
            d.attr("target_login", t.login.as_deref());
        }
    }

    // Okta's own verdict, for comparison.
    if let Some(dbg) = debug {
        let v = OktaVerdict::of(dbg);
        d.attr("okta_risk", v.level.as_deref());
        d.attr("okta_risk_reasons", v.reasons.as_deref());
        if v.evaluated {
            let positive = if v.positive.is_empty() {
                "none".to_owned()
            } else {
                v.positive.join(", ")
            };
            d.attr("okta_behaviors", Some(positive.as_str()));
        }
        if text(dbg, &["threatSuspected"]) == Some("true") {
            d.attr("okta_threat_suspected", Some("true"));
        }
        d.attr("okta_request_id", text(dbg, &["requestId"]));
        // What the user reported as not theirs.
        d.attr(
            "okta_reported_event_type",
            text(dbg, &["suspiciousActivityEventType"]),
        );
        d.attr(
            "okta_reported_ip",
            text(dbg, &["suspiciousActivityEventIp"]),
        );
    }

    d.finish(FORMAT, record.to_string().as_bytes(), opts)
        .map(|e| vec![e])
}

/// The contract event a System Log event type maps to.
enum Body {
    Auth(AuthType),
    Action(&'static str),
}

struct Mapping {
    body: Body,
    attributes: Vec<(&'static str, &'static str)>,
}

impl Mapping {
    fn auth(t: AuthType) -> Mapping {
        Mapping {
            body: Body::Auth(t),
            attributes: Vec::new(),
        }
    }

    fn action(name: &'static str) -> Mapping {
        Mapping {
            body: Body::Action(name),
            attributes: Vec::new(),
        }
    }

    fn with(mut self, key: &'static str, value: &'static str) -> Mapping {
        self.attributes.push((key, value));
        self
    }
}

/// What happened, by `outcome.result`.
#[derive(Clone, Copy)]
struct Outcome<'a> {
    result: Option<&'a str>,
    reason: Option<&'a str>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Success,
    Failure,
    /// CHALLENGE, SKIPPED, UNKNOWN.
    Other,
    Absent,
}

impl<'a> Outcome<'a> {
    fn of(record: &'a Value) -> Outcome<'a> {
        Outcome {
            result: text(record, &["outcome", "result"]),
            reason: text(record, &["outcome", "reason"]),
        }
    }

    fn verdict(self) -> Verdict {
        match self.result.map(str::to_ascii_uppercase).as_deref() {
            Some("SUCCESS" | "ALLOW") => Verdict::Success,
            Some("FAILURE" | "DENY") => Verdict::Failure,
            Some(_) => Verdict::Other,
            None => Verdict::Absent,
        }
    }

    fn is(self, result: &str) -> bool {
        self.result.is_some_and(|r| r.eq_ignore_ascii_case(result))
    }
}

/// Success or failure of an authentication step, or why it does not map.
fn by_outcome(
    outcome: Outcome<'_>,
    success: AuthType,
    failure: AuthType,
) -> Result<Mapping, String> {
    match outcome.verdict() {
        Verdict::Success => Ok(Mapping::auth(success)),
        Verdict::Failure => Ok(Mapping::auth(failure)),
        Verdict::Other => Err(format!(
            "outcome {:?} is neither success nor failure",
            outcome.result.unwrap_or("")
        )),
        Verdict::Absent => Err("no outcome.result: success or failure unknown".to_owned()),
    }
}

/// The mapping table (docs/adapters/okta.md shows it).
fn classify(
    event_type: &str,
    outcome: Outcome<'_>,
    record: &Value,
    factor: Option<&str>,
    on_other: bool,
) -> Result<Mapping, String> {
    use AuthType::*;
    let t = event_type;
    let m = match t {
        "user.session.start" => by_outcome(outcome, LoginSuccess, LoginFailure)?,
        // Single sign-on into an app: an assertion or token issued on the
        // existing Okta session, not a new authentication.
        "user.authentication.sso" => by_outcome(outcome, TokenIssued, LoginFailure)?,
        "user.authentication.auth_via_mfa" => {
            if outcome.verdict() == Verdict::Failure && is_push_denial(outcome, factor) {
                Mapping::auth(MfaPushDenied)
            } else {
                by_outcome(outcome, MfaSuccess, MfaFailure)?
            }
        }
        // Verification of an authenticator: a factor (MFA), or the primary
        // password step when no factor is named.
        "user.authentication.verify" => {
            let request_uri =
                text(record, &["debugContext", "debugData", "requestUri"]).unwrap_or("");
            let credential = text(record, &["authenticationContext", "credentialType"]);
            let is_factor = factor.is_some()
                || request_uri.contains("/factors/")
                || credential.is_some_and(|c| !c.eq_ignore_ascii_case("PASSWORD"));
            if is_factor {
                by_outcome(outcome, MfaSuccess, MfaFailure)?
            } else {
                by_outcome(outcome, LoginSuccess, LoginFailure)?
            }
        }
        "user.authentication.authenticate" => by_outcome(outcome, LoginSuccess, LoginFailure)?,
        t if t.starts_with("user.authentication.auth_via_") => {
            by_outcome(outcome, LoginSuccess, LoginFailure)?
        }
        "system.push.send_factor_verify_push" => Mapping::auth(MfaChallenge),
        "user.mfa.okta_verify.deny_push" | "user.mfa.okta_verify.deny_push_upgrade_needed" => {
            Mapping::auth(MfaPushDenied)
        }
        // "No, it's not me" on an Okta Verify push or a new-sign-on email: a
        // denial the user also reported.
        "user.account.report_suspicious_activity_by_enduser" => {
            Mapping::auth(MfaPushDenied).with("okta_user_reported", "true")
        }
        // ThreatInsight's verdict on an address (password spraying), with no
        // principal to attribute it to.
        "security.threat.detected" => {
            return Err(
                "a ThreatInsight verdict on an address, not an event of a principal".to_owned(),
            );
        }
        // The sign-on policy's verdict: DENY ends the sign-in, CHALLENGE asks
        // for a factor; ALLOW is followed by the user.session.start that is
        // the login itself.
        "policy.evaluate_sign_on" => match outcome.result.map(str::to_ascii_uppercase).as_deref() {
            Some("DENY") => Mapping::auth(LoginFailure).with("blocked", "sign_on_policy"),
            Some("CHALLENGE") => Mapping::auth(MfaChallenge),
            Some(other) => {
                return Err(format!(
                    "sign-on policy {other}: the user.session.start that follows is the login"
                ));
            }
            None => return Err("no outcome.result: the policy's decision is unknown".to_owned()),
        },
        "user.mfa.factor.activate" | "device.enrollment.create" => Mapping::auth(DeviceEnrolled),
        "user.mfa.factor.deactivate" | "user.mfa.factor.reset_all" => {
            Mapping::action("user.reset_mfa")
        }
        "user.mfa.factor.suspend" => Mapping::action("user.suspend_mfa"),
        "user.mfa.factor.update" => Mapping::action("user.update_mfa"),
        "system.mfa.factor.deactivate" => Mapping::action("control.disable"),
        "system.mfa.factor.activate" => Mapping::action("control.update"),
        // Okta locks an account after too many failures: a blocked attempt.
        "user.account.lock" | "user.account.lock.limit" => {
            Mapping::auth(LoginFailure).with("blocked", "locked_out")
        }
        "user.account.unlock" | "user.account.unlock_by_admin" => Mapping::action("user.unlock"),
        "user.account.reset_password" | "user.account.update_password" => {
            if on_other {
                Mapping::action("user.reset_password")
            } else {
                Mapping::auth(PasswordChanged)
            }
        }
        "user.account.privilege.grant" | "group.privilege.grant" | "group.user_membership.add" => {
            Mapping::action("rbac.assign")
        }
        "user.account.privilege.revoke"
        | "group.privilege.revoke"
        | "group.user_membership.remove" => Mapping::action("rbac.revoke"),
        "iam.resourceset.bindings.add" => Mapping::action("rbac.assign"),
        "iam.resourceset.bindings.delete" => Mapping::action("rbac.revoke"),
        "iam.role.create" => Mapping::action("rbac.role.create"),
        "user.session.end" | "user.session.expire" => Mapping::auth(Logout),
        "user.session.clear" => {
            if on_other {
                Mapping::action("user.clear_sessions")
            } else {
                Mapping::auth(SessionRevoked)
            }
        }
        "user.session.impersonation.grant"
        | "user.session.impersonation.initiate"
        | "user.session.impersonation.extend" => Mapping::action("user.impersonate"),
        t if is_token_grant(t) => {
            let refresh =
                text(record, &["debugContext", "debugData", "grantType"]) == Some("refresh_token");
            match (outcome.verdict(), refresh) {
                (Verdict::Success | Verdict::Absent, true) => Mapping::auth(TokenRefreshed),
                (Verdict::Success | Verdict::Absent, false) => Mapping::auth(TokenIssued),
                (Verdict::Failure, false) => Mapping::auth(LoginFailure),
                (Verdict::Failure, true) => {
                    return Err(
                        "failed refresh-token grant: a client error, not a credential guess"
                            .to_owned(),
                    );
                }
                (Verdict::Other, _) => {
                    return Err("token grant neither succeeded nor failed".to_owned());
                }
            }
        }
        "app.oauth2.token.revoke" | "app.oauth2.as.token.revoke" => Mapping::auth(TokenRevoked),
        // Okta revokes the token family when a rotated refresh token is
        // presented again: the stolen-token signal.
        "app.oauth2.token.detect_reuse" | "app.oauth2.as.token.detect_reuse" => {
            Mapping::auth(TokenRevoked).with("token_reuse", "true")
        }
        "app.generic.unauth_app_access_attempt" => {
            Mapping::auth(LoginFailure).with("blocked", "app_not_assigned")
        }
        "system.api_token.create" => Mapping::action("api.admin.keys.create"),
        "system.api_token.revoke" => Mapping::action("api.admin.keys.revoke"),
        "policy.lifecycle.deactivate"
        | "policy.lifecycle.delete"
        | "policy.rule.deactivate"
        | "policy.rule.delete"
        | "zone.deactivate"
        | "zone.delete" => Mapping::action("control.disable"),
        "policy.lifecycle.create"
        | "policy.lifecycle.update"
        | "policy.lifecycle.activate"
        | "policy.rule.create"
        | "policy.rule.update"
        | "policy.rule.activate"
        | "zone.create"
        | "zone.update"
        | "zone.activate" => Mapping::action("control.update"),
        // A new or changed identity provider can sign anyone in.
        t if t.starts_with("system.idp.lifecycle.") => Mapping::action("control.update"),
        "application.user_membership.show_password" => Mapping::action("secrets.read"),
        "application.lifecycle.create" => Mapping::action("app.lifecycle.create"),
        "application.lifecycle.update" | "application.lifecycle.activate" => {
            Mapping::action("app.lifecycle.update")
        }
        "application.lifecycle.deactivate" | "application.lifecycle.delete" => {
            Mapping::action("app.lifecycle.delete")
        }
        "user.lifecycle.create" => Mapping::action("user.create"),
        "user.lifecycle.delete.initiated" | "user.lifecycle.delete.completed" => {
            Mapping::action("user.delete")
        }
        "user.lifecycle.deactivate" => Mapping::action("user.deactivate"),
        "user.lifecycle.suspend" => Mapping::action("user.suspend"),
        _ => return Err(format!("{t} has no contract event")),
    };
    Ok(m)
}

fn is_token_grant(t: &str) -> bool {
    t.starts_with("app.oauth2.token.grant") || t.starts_with("app.oauth2.as.token.grant")
}

/// A failed push verification the user rejected, as Okta words it.
fn is_push_denial(outcome: Outcome<'_>, factor: Option<&str>) -> bool {
    let push = factor.is_some_and(|f| f.to_ascii_uppercase().contains("PUSH"));
    let rejected = outcome.is("DENY")
        || outcome.reason.is_some_and(|r| {
            let r = r.to_ascii_lowercase();
            r.contains("reject") || r.contains("denied")
        });
    push && rejected
}

/// OpenID Connect `amr` (RFC 8176) for an Okta factor name
/// (`debugData.factor`, e.g. `OKTA_VERIFY_PUSH`, `FIDO_WEBAUTHN`).
fn factor_amr(factor: &str) -> Option<&'static str> {
    let f = factor.to_ascii_uppercase();
    let has = |s: &str| f.contains(s);
    if has("WEBAUTHN") || has("U2F") || has("YUBIKEY") || has("FIDO") {
        Some("hwk")
    } else if has("PUSH") || has("SIGNED_NONCE") || has("OKTA_VERIFY") || has("FASTPASS") {
        Some("swk")
    } else if has("SMS") {
        Some("sms")
    } else if has("CALL") || has("VOICE") {
        Some("tel")
    } else if has("OTP") || has("TOKEN") || has("RSA") || has("SYMANTEC") || has("EMAIL") {
        Some("otp")
    } else if has("QUESTION") {
        Some("kba")
    } else if has("PASSWORD") {
        Some("pwd")
    } else {
        None
    }
}

/// `amr` for `authenticationContext.credentialType`.
fn credential_amr(credential: &str) -> Option<&'static str> {
    match credential.to_ascii_uppercase().as_str() {
        "PASSWORD" => Some("pwd"),
        "OTP" | "EMAIL" => Some("otp"),
        "SMS" => Some("sms"),
        _ => None,
    }
}

fn push_unique(amr: &mut Vec<String>, method: &str) {
    if !amr.iter().any(|a| a == method) {
        amr.push(method.to_owned());
    }
}

/// The acting principal.
struct Actor {
    id: Option<String>,
    login: Option<String>,
    okta_type: Option<String>,
    kind: PrincipalType,
}

impl Actor {
    fn of(record: &Value) -> Actor {
        let Some(actor) = field(record, "actor") else {
            return Actor {
                id: None,
                login: None,
                okta_type: None,
                kind: PrincipalType::Human,
            };
        };
        let okta_type = text(actor, &["type"]);
        let id = text(actor, &["id"]);
        let login = text(actor, &["alternateId"]);
        // ThreatInsight names an address, not a principal.
        let is_address =
            okta_type.is_some_and(|t| t.to_ascii_lowercase().replace(' ', "") == "ipaddress");
        let kind = match okta_type {
            Some(t) if t.eq_ignore_ascii_case("User") => PrincipalType::Human,
            Some(t) if t.contains("Client") || t.contains("App") || t == "SystemPrincipal" => {
                PrincipalType::Workload
            }
            _ => PrincipalType::Human,
        };
        Actor {
            // Okta writes "unknown" as the id of a user it cannot resolve
            // (a failed sign-in with a mistyped name); the typed name is then
            // the only handle on the attempt.
            id: if is_address {
                None
            } else {
                id.or(login).map(str::to_owned)
            },
            login: login.filter(|l| Some(*l) != id).map(str::to_owned),
            okta_type: okta_type.map(str::to_owned),
            kind,
        }
    }
}

/// A `target[]` entry.
struct Target {
    id: Option<String>,
    login: Option<String>,
    name: Option<String>,
}

fn target_of(record: &Value, wanted: impl Fn(&str) -> bool) -> Option<Target> {
    field(record, "target")?
        .as_array()?
        .iter()
        .find(|t| text(t, &["type"]).is_some_and(&wanted))
        .map(|t| Target {
            id: text(t, &["id"]).map(str::to_owned),
            login: text(t, &["alternateId"]).map(str::to_owned),
            name: text(t, &["displayName"]).map(str::to_owned),
        })
}

/// What an action touches: the privilege granted, the group, the token, the
/// app or policy, else the target user.
fn action_resource(record: &Value, debug: Option<&Value>, event_type: &str) -> Option<String> {
    if let Some(p) = debug.and_then(|d| text(d, &["privilegeGranted"])) {
        return Some(p.to_owned());
    }
    let named = |pred: &dyn Fn(&str) -> bool| {
        target_of(record, pred).and_then(|t| t.name.or(t.login).or(t.id))
    };
    let by_type: Option<String> = if event_type.starts_with("group.") {
        named(&|t: &str| t.eq_ignore_ascii_case("UserGroup") || t.contains("Group"))
    } else if event_type.starts_with("system.api_token.") {
        named(&|t: &str| t.eq_ignore_ascii_case("Token"))
    } else if event_type.starts_with("application.") {
        named(&|t: &str| t.contains("AppInstance") || t.contains("AppUser"))
    } else if event_type.starts_with("policy.") || event_type.starts_with("zone.") {
        named(&|t: &str| t.contains("Policy") || t.contains("Rule") || t.contains("Zone"))
    } else {
        None
    };
    by_type.or_else(|| {
        target_of(record, |t| t.eq_ignore_ascii_case("User")).and_then(|t| t.login.or(t.id))
    })
}

/// Okta's own risk verdict on a sign-in: `debugData.risk` ("{reasons=...,
/// level=HIGH}"), `debugData.behaviors` ("{New Device=POSITIVE, ...}", or the
/// list or object forms some exports use), or `logOnlySecurityData` (JSON,
/// as an object or a string) when the org only logs them.
struct OktaVerdict {
    level: Option<String>,
    reasons: Option<String>,
    positive: Vec<String>,
    evaluated: bool,
}

impl OktaVerdict {
    fn of(debug: &Value) -> OktaVerdict {
        let mut v = OktaVerdict {
            level: None,
            reasons: None,
            positive: Vec::new(),
            evaluated: false,
        };
        let log_only = field(debug, "logOnlySecurityData").and_then(|l| match l {
            Value::String(s) => serde_json::from_str::<Value>(s).ok(),
            other => Some(other.clone()),
        });
        for source in [
            field(debug, "risk"),
            log_only.as_ref().and_then(|l| field(l, "risk")),
        ]
        .into_iter()
        .flatten()
        {
            let kv = key_values(source);
            if v.level.is_none() {
                v.level = kv
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("level"))
                    .map(|(_, val)| val.clone());
            }
            if v.reasons.is_none() {
                v.reasons = kv
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("reasons"))
                    .map(|(_, val)| val.clone());
            }
        }
        for source in [
            field(debug, "behaviors"),
            log_only.as_ref().and_then(|l| field(l, "behaviors")),
        ]
        .into_iter()
        .flatten()
        {
            let kv = key_values(source);
            if kv.is_empty() {
                continue;
            }
            v.evaluated = true;
            for (name, value) in kv {
                if value.eq_ignore_ascii_case("POSITIVE") && !v.positive.contains(&name) {
                    v.positive.push(name);
                }
            }
        }
        // One order whatever the form (an object's keys come sorted).
        v.positive.sort();
        v
    }
}

/// `name=value` pairs from Okta's map forms: "{a=b, c=d, e}" (a value may
/// hold ", " itself, as `reasons` does), ["a=b", ...], {"a": "b"} and
/// {"a=b": null}.
fn key_values(value: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let push_part = |part: &str, out: &mut Vec<(String, String)>| match part.split_once('=') {
        Some((k, v)) => out.push((k.trim().to_owned(), v.trim().to_owned())),
        None => {
            if let Some(last) = out.last_mut() {
                last.1.push_str(", ");
                last.1.push_str(part.trim());
            }
        }
    };
    match value {
        Value::String(s) => {
            let inner = s.trim().trim_start_matches('{').trim_end_matches('}');
            for part in inner.split(", ").filter(|p| !p.trim().is_empty()) {
                push_part(part, &mut out);
            }
        }
        Value::Array(items) => {
            for part in items.iter().filter_map(Value::as_str) {
                push_part(part, &mut out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::String(s) => out.push((k.clone(), s.clone())),
                    Value::Null => push_part(k, &mut out),
                    other => out.push((k.clone(), other.to_string())),
                }
            }
        }
        _ => {}
    }
    out
}

/// Text at a path; empty text and Okta's placeholders ("unknown", "null")
/// are absent.
fn text<'a>(value: &'a Value, keys: &[&str]) -> Option<&'a str> {
    path(value, keys)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| {
            !s.is_empty() && !s.eq_ignore_ascii_case("unknown") && !s.eq_ignore_ascii_case("null")
        })
}

/// A boolean, written as one or as text.
fn flag(value: &Value, key: &str) -> Option<bool> {
    match field(value, key)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// An AS number, written as a number or as text ("AS7922", "7922").
fn as_number(value: &Value) -> Option<u32> {
    match value {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().trim_start_matches("AS").parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn okta_verdict_forms() {
        let v = OktaVerdict::of(&serde_json::json!({
            "risk": "{reasons=Anomalous Device, Anomalous Location, level=HIGH}",
            "behaviors": "{New Geo-Location=NEGATIVE, New Device=POSITIVE, Velocity=POSITIVE}"
        }));
        assert_eq!(v.level.as_deref(), Some("HIGH"));
        assert_eq!(
            v.reasons.as_deref(),
            Some("Anomalous Device, Anomalous Location")
        );
        assert_eq!(
            v.positive,
            vec!["New Device".to_owned(), "Velocity".to_owned()]
        );
        let v = OktaVerdict::of(&serde_json::json!({
            "logOnlySecurityData": "{\"risk\":{\"level\":\"LOW\"},\"behaviors\":{\"New IP\":\"POSITIVE\"}}"
        }));
        assert_eq!(v.level.as_deref(), Some("LOW"));
        assert_eq!(v.positive, vec!["New IP".to_owned()]);
        let v = OktaVerdict::of(
            &serde_json::json!({ "behaviors": ["New Device=POSITIVE", "New IP=NEGATIVE"] }),
        );
        assert_eq!(v.positive, vec!["New Device".to_owned()]);
        let v = OktaVerdict::of(&serde_json::json!({ "behaviors": { "New City=POSITIVE": null } }));
        assert_eq!(v.positive, vec!["New City".to_owned()]);
        let v = OktaVerdict::of(&serde_json::json!({ "requestId": "x" }));
        assert!(!v.evaluated && v.level.is_none());
    }

    #[test]
    fn keys_match_regardless_of_case() {
        let r = serde_json::json!({ "authenticationcontext": { "externalSessionId": "s1" } });
        assert_eq!(
            text(&r, &["authenticationContext", "externalSessionId"]),
            Some("s1")
        );
        assert_eq!(text(&serde_json::json!({ "a": "unknown" }), &["a"]), None);
    }

    #[test]
    fn factors_as_amr() {
        assert_eq!(factor_amr("OKTA_VERIFY_PUSH"), Some("swk"));
        assert_eq!(factor_amr("FIDO_WEBAUTHN"), Some("hwk"));
        assert_eq!(factor_amr("GOOGLE_OTP"), Some("otp"));
        assert_eq!(factor_amr("SMS_FACTOR"), Some("sms"));
        assert_eq!(factor_amr("whatever"), None);
    }
}
