//! Google Workspace Reports API activities (`admin#reports#activity`) to
//! contract events: one event for each sub-event of `events` that maps.
//!
//! Three shapes are read: the API's own (`events` an array of
//! `{type, name, parameters: [{name, value | multiValue | boolValue |
//! intValue}]}`), the same with `events` a single object (as in Elastic's
//! test data), and the one-row-per-sub-event form Panther stores
//! (`type`, `name` and a `parameters` map beside `id` and `actor`).
//!
//! What maps: the `login` application (sign-in, challenges, logout, Google's
//! own account warnings), account changes of `user_accounts` (2-step
//! verification, password, recovery information, Advanced Protection),
//! delegated-admin, user and security-setting changes of `admin`, OAuth
//! grants of `token`, device registration of `mobile`, SAML sign-ins to apps
//! through Google. Drive, Gmail, Calendar and the rest are content activity:
//! `unmapped_type` naming `application:event`.
//!
//! The Reports API has no session id: sessions are derived and listed in
//! `source.missing`.

use riskstream_schemas::{AuthType, Event, PrincipalType};
use serde_json::Value;

use crate::cloudtrail::vendor_time;
use crate::draft::{Draft, aal_from_amr, str_at};
use crate::{AdapterOptions, Format, Unmapped, UnmappedReason};

const FORMAT: Format = Format::GoogleWorkspace;

/// What a sub-event becomes.
enum Mapping {
    Auth(AuthType),
    Action(&'static str),
}

/// One activity: an event for each of its sub-events that maps.
/// One outcome per event of the activity: its contract event, or why it
/// does not map. An activity that is not one gives a single rejection.
pub(crate) fn normalize_items(
    record: &Value,
    opts: &AdapterOptions,
) -> Vec<Result<Event, Unmapped>> {
    let reject = |reason, vendor_type: Option<&str>, detail: &str| {
        Unmapped::new(FORMAT, reason, vendor_type, detail)
    };
    if !record.is_object() {
        return vec![Err(reject(
            UnmappedReason::NotRecognised,
            None,
            "not a JSON object",
        ))];
    }
    let app = str_at(record, &["id", "applicationName"]);
    let is_activity = str_at(record, &["kind"]) == Some("admin#reports#activity");
    let Some(app) = app.or(is_activity.then_some("unknown")) else {
        return vec![Err(reject(
            UnmappedReason::NotRecognised,
            None,
            "no id.applicationName and not kind admin#reports#activity: not a Reports API activity",
        ))];
    };
    let subs: Vec<&Value> = match record.get("events") {
        Some(Value::Array(events)) => events.iter().collect(),
        Some(event @ Value::Object(_)) => vec![event],
        _ if record.get("name").is_some_and(Value::is_string) => vec![record],
        _ => Vec::new(),
    };
    if subs.is_empty() {
        return vec![Err(reject(
            UnmappedReason::UnmappedType,
            Some(app),
            &format!("a {app} activity with no event name: nothing happened that could map"),
        ))];
    }

    subs.iter()
        .enumerate()
        .map(|(i, sub)| {
            let name = str_at(sub, &["name"]).unwrap_or("");
            // The n-th repeat of a name in one activity, for a unique event id.
            let repeat = subs[..i]
                .iter()
                .filter(|s| str_at(s, &["name"]).unwrap_or("") == name)
                .count();
            one(record, sub, app, i, repeat, opts)
        })
        .collect()
}

/// The activity's events that map, or, when none does, one reason.
pub(crate) fn normalize(record: &Value, opts: &AdapterOptions) -> Result<Vec<Event>, Unmapped> {
    let reject = |reason, vendor_type: Option<&str>, detail: &str| {
        Unmapped::new(FORMAT, reason, vendor_type, detail)
    };
    let mut events = Vec::new();
    let mut rejections = Vec::new();
    for item in normalize_items(record, opts) {
        match item {
            Ok(e) => events.push(e),
            Err(u) => rejections.push(u),
        }
    }
    if !events.is_empty() {
        return Ok(events);
    }
    // None mapped: a reason other than the type (no actor, no time) is the
    // one to act on; otherwise name every type.
    if let Some(u) = rejections
        .iter()
        .find(|u| u.reason != UnmappedReason::UnmappedType)
    {
        return Err(u.clone());
    }
    if rejections.len() == 1 {
        return Err(rejections.remove(0));
    }
    let types: Vec<&str> = rejections
        .iter()
        .filter_map(|u| u.vendor_type.as_deref())
        .collect();
    Err(reject(
        UnmappedReason::UnmappedType,
        types.first().copied(),
        &format!("none of the activity's events maps: {}", types.join(", ")),
    ))
}

fn one(
    activity: &Value,
    sub: &Value,
    app: &str,
    index: usize,
    repeat: usize,
    opts: &AdapterOptions,
) -> Result<Event, Unmapped> {
    let name = str_at(sub, &["name"]).unwrap_or("");
    let vendor_type = format!("{app}:{name}");
    let unmapped = |detail: String| {
        Unmapped::new(
            FORMAT,
            UnmappedReason::UnmappedType,
            Some(&vendor_type),
            detail,
        )
    };
    let p = Parameters(sub.get("parameters"));
    let mut d = Draft::new(Some(&vendor_type));

    let mapping = match (app, name) {
        ("login" | "user_accounts" | "saml", _) => {
            login(app, name, &p, &mut d).map_err(unmapped)?
        }
        ("admin", _) => admin(name, &p, &mut d).map_err(unmapped)?,
        ("token", "authorize") => Mapping::Auth(AuthType::TokenIssued),
        ("token", "revoke") => Mapping::Auth(AuthType::TokenRevoked),
        ("mobile", "DEVICE_REGISTER_UNREGISTER_EVENT") => match p.text("ACCOUNT_STATE") {
            Some("REGISTERED") => Mapping::Auth(AuthType::DeviceEnrolled),
            state => {
                return Err(unmapped(format!(
                    "device registration with ACCOUNT_STATE {}: only a registration enrols a device",
                    state.unwrap_or("absent")
                )));
            }
        },
        _ => {
            return Err(unmapped(format!(
                "{vendor_type} is content or device activity, not a sign-in, credential or sensitive act riskstream maps"
            )));
        }
    };
    match mapping {
        Mapping::Auth(t) => d.auth(t),
        Mapping::Action(a) => d.action(a),
    };
    if app == "token" {
        let scopes = p.list("scope");
        d.attr("client_id", p.text("client_id"));
        d.attr("app_name", p.text("app_name"));
        d.attr("client_type", p.text("client_type"));
        if !scopes.is_empty() {
            d.attr("scope", Some(&scopes.join(" ")));
        }
        d.resource = p.text("client_id").map(str::to_owned);
    }

    // The actor; for Google's account warnings, the account warned about.
    let affected = p.text("affected_email_address");
    let actor_email = str_at(activity, &["actor", "email"]);
    let actor_key = str_at(activity, &["actor", "key"]);
    let profile = scalar_text(activity.get("actor").and_then(|a| a.get("profileId")));
    d.principal = affected
        .or(actor_email)
        .or(actor_key)
        .map(str::to_owned)
        .or_else(|| profile.clone());
    let service_account = affected.is_none()
        && (str_at(activity, &["actor", "callerType"]) == Some("KEY")
            || actor_email.is_some_and(|e| e.ends_with(".gserviceaccount.com")));
    if service_account {
        d.principal_type = PrincipalType::Workload;
    }
    if affected.is_some() && actor_email.is_some_and(|a| Some(a) != affected) {
        d.attr("reported_by", actor_email);
    }
    d.attr("actor_profile_id", profile.as_deref());
    d.attr("application", Some(app));

    let time = str_at(activity, &["id", "time"]);
    let unique = scalar_text(activity.get("id").and_then(|i| i.get("uniqueQualifier")));
    d.vendor_id = unique.map(|u| {
        let id = format!("{app}/{}/{u}/{name}", time.unwrap_or("-"));
        if repeat > 0 {
            format!("{id}#{repeat}")
        } else {
            id
        }
    });
    d.time = activity
        .get("id")
        .and_then(|i| i.get("time"))
        .and_then(vendor_time)
        .or_else(|| activity.get("p_event_time").and_then(vendor_time));
    d.tenant = str_at(activity, &["id", "customerId"]).map(str::to_owned);
    d.ip_text(str_at(activity, &["ipAddress"]));
    d.user_agent = p.text("user_agent").map(str::to_owned);
    d.device_id = p
        .text("DEVICE_ID")
        .or_else(|| p.text("device_id"))
        .map(str::to_owned);

    let mut fingerprint = serde_json::to_vec(activity).unwrap_or_default();
    fingerprint.extend_from_slice(format!("\u{1f}{index}").as_bytes());
    d.finish(FORMAT, &fingerprint, opts)
}

/// The `login` application, the account changes `user_accounts` reports
/// under the same names, and SAML sign-ins to apps through Google.
fn login(app: &str, name: &str, p: &Parameters<'_>, d: &mut Draft) -> Result<Mapping, String> {
    d.attr("login_type", p.text("login_type"));
    if let Some(s) = p.bool("is_suspicious") {
        d.attr("vendor_suspicious", Some(if s { "true" } else { "false" }));
    }
    let methods = p.list("login_challenge_method");
    if !methods.is_empty() {
        d.attr("login_challenge_method", Some(&methods.join(",")));
    }
    Ok(match name {
        "login_success" => {
            d.amr = amr_of(&methods);
            d.aal = aal_from_amr(&d.amr);
            d.attr("saml_application", p.text("application_name"));
            Mapping::Auth(AuthType::LoginSuccess)
        }
        "login_failure" => {
            d.attr("login_failure_type", p.text("login_failure_type"));
            d.attr("saml_status_code", p.text("saml_status_code"));
            d.attr("saml_application", p.text("application_name"));
            Mapping::Auth(AuthType::LoginFailure)
        }
        _ if app == "saml" => {
            return Err(format!(
                "SAML event {name} is neither a sign-in nor a failed one"
            ));
        }
        "login_challenge" | "login_verification" => {
            let second = p.bool("is_second_factor");
            if let Some(s) = second {
                d.attr("is_second_factor", Some(if s { "true" } else { "false" }));
            }
            match challenge_passed(p) {
                Some(true) => {
                    d.amr = amr_of(&methods);
                    // A second factor passed: the session now holds two.
                    let strong = d
                        .amr
                        .iter()
                        .any(|a| matches!(a.as_str(), "otp" | "sms" | "swk" | "hwk"));
                    if (second == Some(true) || strong)
                        && second != Some(false)
                        && !d.amr.iter().any(|a| a == "mfa")
                    {
                        d.amr.push("mfa".to_owned());
                    }
                    d.aal = aal_from_amr(&d.amr);
                    Mapping::Auth(AuthType::MfaSuccess)
                }
                Some(false) => Mapping::Auth(AuthType::MfaFailure),
                None => Mapping::Auth(AuthType::MfaChallenge),
            }
        }
        "logout" => Mapping::Auth(AuthType::Logout),
        // Google's own verdicts on a sign-in. Its Alert Center documents the
        // login time of such a warning as "the successful login time …
        // not present for blocked login attempts": with login_timestamp the
        // sign-in succeeded, without it Google blocked it.
        "suspicious_login"
        | "suspicious_login_less_secure_app"
        | "suspicious_programmatic_login" => {
            d.attr("vendor_verdict", Some(name));
            match p.int("login_timestamp") {
                Some(micros) => {
                    d.attributes
                        .insert("login_time_ms".to_owned(), Value::from(micros / 1000));
                    Mapping::Auth(AuthType::LoginSuccess)
                }
                None => Mapping::Auth(AuthType::LoginFailure),
            }
        }
        // Google disabled the account: every session of it ends.
        "account_disabled_generic"
        | "account_disabled_spamming"
        | "account_disabled_spamming_through_relay"
        | "account_disabled_hijacked"
        | "account_disabled_password_leak"
        | "user_signed_out_due_to_suspicious_session_cookie" => {
            d.attr("vendor_verdict", Some(name));
            Mapping::Auth(AuthType::SessionRevoked)
        }
        "gov_attack_warning" => {
            return Err("a warning that government-backed attackers may target the account: no sign-in or act \
                        happened for the engine to score"
                .to_owned());
        }
        "risky_sensitive_action_allowed" => {
            d.attr("sensitive_action", p.text("sensitive_action_name"));
            match challenge_passed(p) {
                Some(true) => {
                    d.amr = amr_of(&methods);
                    d.aal = aal_from_amr(&d.amr);
                    Mapping::Auth(AuthType::MfaSuccess)
                }
                _ => return Err("a risky sensitive action allowed without a challenge passed: no authentication".to_owned()),
            }
        }
        "risky_sensitive_action_blocked" => {
            d.attr("sensitive_action", p.text("sensitive_action_name"));
            Mapping::Auth(AuthType::MfaFailure)
        }
        "password_edit" => Mapping::Auth(AuthType::PasswordChanged),
        "recovery_email_edit" | "recovery_phone_edit" | "recovery_secret_qa_edit" => {
            Mapping::Action("user.recovery.update")
        }
        "2sv_enroll" => Mapping::Auth(AuthType::DeviceEnrolled),
        "2sv_disable" => Mapping::Action("user.reset_mfa"),
        // Advanced Protection: leaving it removes the account's strongest
        // control; joining binds the account to the enrolled security keys.
        "titanium_unenroll" => Mapping::Action("control.disable"),
        "titanium_enroll" => Mapping::Action("control.update"),
        "email_forwarding_out_of_domain" => {
            d.resource = p
                .text("email_forwarding_destination_address")
                .map(str::to_owned);
            Mapping::Action("user.forwarding.update")
        }
        _ => return Err(format!("{app} event {name} has no contract counterpart")),
    })
}

/// Admin console activity: the principal is the administrator; the user
/// acted on is `target_user`.
fn admin(name: &str, p: &Parameters<'_>, d: &mut Draft) -> Result<Mapping, String> {
    d.attr("target_user", p.text("USER_EMAIL"));
    d.attr("role_name", p.text("ROLE_NAME"));
    d.attr("setting", p.text("SETTING_NAME"));
    d.attr("new_value", p.text("NEW_VALUE"));
    d.attr("old_value", p.text("OLD_VALUE"));
    d.attr("admin_application", p.text("APPLICATION_NAME"));
    d.attr("org_unit", p.text("ORG_UNIT_NAME"));
    d.attr("oauth_app", p.text("OAUTH2_APP_NAME"));
    d.resource = [
        "USER_EMAIL",
        "ROLE_NAME",
        "OAUTH2_APP_ID",
        "SETTING_NAME",
        "DOMAIN_NAME",
        "APPLICATION_NAME",
        "ORG_UNIT_NAME",
    ]
    .iter()
    .find_map(|k| p.text(k))
    .map(str::to_owned);
    Ok(match name {
        "ASSIGN_ROLE" | "GRANT_ADMIN_PRIVILEGE" | "GRANT_DELEGATED_ADMIN_PRIVILEGES" => {
            Mapping::Action("rbac.assign")
        }
        "UNASSIGN_ROLE" | "REVOKE_ADMIN_PRIVILEGE" | "REVOKE_DELEGATED_ADMIN_PRIVILEGES" => {
            Mapping::Action("rbac.revoke")
        }
        "CREATE_ROLE" => Mapping::Action("rbac.role.create"),
        "ADD_PRIVILEGE" | "REMOVE_PRIVILEGE" => Mapping::Action("rbac.role.update"),
        "DELETE_ROLE" => Mapping::Action("rbac.role.delete"),
        "CREATE_USER" => Mapping::Action("user.create"),
        "DELETE_USER" => Mapping::Action("user.delete"),
        "SUSPEND_USER" => Mapping::Action("user.suspend"),
        "CHANGE_PASSWORD" => Mapping::Auth(AuthType::PasswordChanged),
        "TURN_OFF_2_STEP_VERIFICATION" => Mapping::Action("control.disable"),
        // Backup codes an administrator generates let whoever holds them
        // pass the user's second factor.
        "GENERATE_2SV_SCRATCH_CODES" => Mapping::Action("user.reset_mfa"),
        "ENFORCE_STRONG_AUTHENTICATION" | "ALLOW_STRONG_AUTHENTICATION" => {
            if p.text("NEW_VALUE")
                .is_some_and(|v| v.eq_ignore_ascii_case("false"))
            {
                Mapping::Action("control.disable")
            } else {
                Mapping::Action("control.update")
            }
        }
        "CREATE_APPLICATION_SETTING" => Mapping::Action("api.admin.settings.create"),
        "ADD_TO_TRUSTED_OAUTH2_APPS" | "REMOVE_FROM_BLOCKED_OAUTH2_APPS" => {
            Mapping::Action("api.admin.oauth_apps.trust")
        }
        // A Marketplace app installed for the whole domain reads its data.
        "ADD_APPLICATION" => Mapping::Action("api.admin.apps.install"),
        // The whole organisation's data, exported.
        "CUSTOMER_TAKEOUT_CREATED" => Mapping::Action("data.export"),
        "ADD_TRUSTED_DOMAINS"
        | "REMOVE_TRUSTED_DOMAINS"
        | "ADD_MOBILE_APPLICATION_TO_WHITELIST" => Mapping::Action("control.update"),
        // Organisation-wide service settings (Gmail routing and scanning,
        // Calendar sharing, security settings) are the tenant's controls.
        _ if (name.starts_with("CHANGE_")
            || name.starts_with("CREATE_")
            || name.starts_with("DELETE_"))
            && name.ends_with("_SETTING") =>
        {
            Mapping::Action("control.update")
        }
        _ => return Err(format!("admin event {name} has no contract counterpart")),
    })
}

/// Whether a challenge passed: `login_challenge_status` is "Challenge
/// Passed." in the API's older wording, "passed" in the newer.
fn challenge_passed(p: &Parameters<'_>) -> Option<bool> {
    let status = p.text("login_challenge_status")?.to_ascii_lowercase();
    if status.contains("passed") {
        Some(true)
    } else if status.contains("failed") {
        Some(false)
    } else {
        None
    }
}

/// RFC 8176 `amr` values for Google's `login_challenge_method` values.
fn amr_of(methods: &[&str]) -> Vec<String> {
    let mut amr: Vec<String> = Vec::new();
    for m in methods {
        let values: &[&str] = match *m {
            "password" => &["pwd"],
            "google_authenticator"
            | "offline_otp"
            | "security_key_otp"
            | "backup_code"
            | "totp" => &["otp"],
            "idv_any_phone" | "idv_preregistered_phone" | "sms" => &["sms"],
            "voice" => &["tel"],
            // The Google prompt: a key held by the user's signed-in phone.
            "internal_two_factor" | "google_prompt" => &["swk"],
            "security_key" => &["hwk"],
            // A passkey with user verification is possession and
            // inherence or knowledge in one: multi-factor by itself.
            "passkey" => &["swk", "mfa"],
            "knowledge_employee_id"
            | "knowledge_preregistered_email"
            | "knowledge_preregistered_phone" => &["kba"],
            "login_location" => &["geo"],
            _ => &[],
        };
        for v in values {
            if !amr.iter().any(|a| a == v) {
                amr.push((*v).to_owned());
            }
        }
    }
    amr
}

/// A scalar as text: Google writes ids as strings, test data as numbers.
fn scalar_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A sub-event's parameters: the API's list of `{name, value | multiValue |
/// boolValue | intValue}`, or Panther's map.
struct Parameters<'a>(Option<&'a Value>);

impl<'a> Parameters<'a> {
    fn get(&self, name: &str) -> Option<&'a Value> {
        let v = match self.0? {
            Value::Array(list) => {
                let p = list
                    .iter()
                    .find(|p| p.get("name").and_then(Value::as_str) == Some(name))?;
                [
                    "value",
                    "multiValue",
                    "boolValue",
                    "intValue",
                    "multiIntValue",
                    "messageValue",
                ]
                .iter()
                .find_map(|k| p.get(*k))?
            }
            Value::Object(map) => map.get(name)?,
            _ => return None,
        };
        if v.is_null() { None } else { Some(v) }
    }

    fn text(&self, name: &str) -> Option<&'a str> {
        self.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// One value or several.
    fn list(&self, name: &str) -> Vec<&'a str> {
        match self.get(name) {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    fn bool(&self, name: &str) -> Option<bool> {
        match self.get(name)? {
            Value::Bool(b) => Some(*b),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// Google writes int64 values as strings.
    fn int(&self, name: &str) -> Option<i64> {
        match self.get(name)? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }
}
