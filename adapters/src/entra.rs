//! Microsoft Entra ID to contract events.
//!
//! Three record shapes are read:
//!
//! - the Azure Monitor diagnostic-settings envelope (`{"time", "resourceId",
//!   "operationName", "category", "tenantId", "properties": {...}}`) of the
//!   sign-in categories (`SignInLogs`, `NonInteractiveUserSignInLogs`,
//!   `ServicePrincipalSignInLogs`, `ManagedIdentitySignInLogs`, ...) and of
//!   `AuditLogs`;
//! - bare Microsoft Graph `signIn` and `directoryAudit` objects;
//! - Office 365 Management Activity records of the `AzureActiveDirectory`
//!   workload (`UserLoggedIn`, `UserLoginFailed`, `Update user.`), which
//!   Microsoft 365 audit exports carry.
//!
//! A sign-in maps to one `auth` event; an audit record maps to an `action`
//! event where it is itself a sensitive act (a role grant, a credential added
//! to an application, a conditional access policy weakened, a user deleted)
//! or to an `auth` event where it is one (a password changed, an MFA method
//! registered). Identity Protection risk detections are Microsoft's verdict,
//! not something a principal did: they are rejected (`unmapped_type`), and
//! the verdict of a sign-in (`riskLevelDuringSignIn`, `riskState`,
//! `riskEventTypes`) is kept in the `entra_risk_*` attributes so that it can
//! be compared with the engine's, never fed to it.
//!
//! Sign-ins that Microsoft marks as interrupted (a "Stay signed in?" prompt,
//! a silent sign-in without a session, an account picker) or that fail only
//! because a session or refresh token expired are not authentication
//! outcomes: the same flow logs its outcome in a record of its own. They are
//! rejected (`unmapped_type`, naming the code) rather than counted as
//! failures, which would make failed-login bursts out of every browser that
//! asks to stay signed in.
//!
//! Envelope keys are matched case-insensitively when they are not found as
//! written: exports through data lakes (Panther, Sentinel) lower-case them
//! (`tenantid`, `calleripaddress`), and the values are the same.

use riskstream_schemas::{AuthType, DeviceTrust, Event, EventBody, PrincipalType, Timestamp};
use serde_json::{Map, Value};

use crate::draft::{Draft, at, parse_time, str_at};
use crate::{AdapterOptions, Format, Unmapped, UnmappedReason};

const FORMAT: Format = Format::Entra;

/// Maps one Entra ID record.
pub(crate) fn normalize(record: &Value, opts: &AdapterOptions) -> Result<Vec<Event>, Unmapped> {
    let Some(obj) = record.as_object() else {
        return Err(reject(
            UnmappedReason::NotRecognised,
            None,
            "not a JSON object",
        ));
    };
    // Stable bytes for derived ids: the same record always serialises the
    // same way.
    let fingerprint = record.to_string();
    let draft = match Shape::of(record, obj) {
        Shape::SignIn {
            envelope,
            props,
            category,
        } => sign_in(envelope, props, category)?,
        Shape::Audit { envelope, props } => audit(envelope, props)?,
        Shape::Office365 => office365(obj)?,
        Shape::RiskDetection { kind } => {
            return Err(reject(
                UnmappedReason::UnmappedType,
                Some(kind),
                "an Identity Protection risk detection is Microsoft's verdict on a sign-in, not an event of the principal",
            ));
        }
        Shape::OtherCategory { category } => {
            return Err(reject(
                UnmappedReason::UnmappedType,
                Some(category),
                format!(
                    "diagnostic category {category} is not mapped (sign-in and audit logs are)"
                ),
            ));
        }
        Shape::Unknown => {
            return Err(reject(
                UnmappedReason::NotRecognised,
                None,
                "neither a diagnostic-settings record, a Graph signIn or directoryAudit, nor an Office 365 AzureActiveDirectory record",
            ));
        }
    };
    Ok(vec![draft.finish(FORMAT, fingerprint.as_bytes(), opts)?])
}

fn reject(
    reason: UnmappedReason,
    vendor_type: Option<&str>,
    detail: impl Into<String>,
) -> Unmapped {
    Unmapped::new(FORMAT, reason, vendor_type, detail)
}

/// Which kind of Entra record this is.
enum Shape<'a> {
    SignIn {
        envelope: Option<&'a Map<String, Value>>,
        props: &'a Value,
        category: &'a str,
    },
    Audit {
        envelope: Option<&'a Map<String, Value>>,
        props: &'a Value,
    },
    Office365,
    RiskDetection {
        kind: &'a str,
    },
    OtherCategory {
        category: &'a str,
    },
    Unknown,
}

/// Diagnostic categories of Identity Protection: verdicts, not events.
const RISK_CATEGORIES: [&str; 4] = [
    "UserRiskEvents",
    "RiskyUsers",
    "ServicePrincipalRiskEvents",
    "RiskyServicePrincipals",
];

impl<'a> Shape<'a> {
    fn of(record: &'a Value, obj: &'a Map<String, Value>) -> Shape<'a> {
        if let Some(props) = field(obj, "properties").filter(|p| p.is_object()) {
            let category = text(obj, "category").unwrap_or("");
            let operation = text(obj, "operationName").unwrap_or("");
            if RISK_CATEGORIES
                .iter()
                .any(|c| c.eq_ignore_ascii_case(category))
                || is_risk_detection(props)
            {
                return Shape::RiskDetection {
                    kind: if category.is_empty() {
                        "riskDetection"
                    } else {
                        category
                    },
                };
            }
            if ends_with_ignore_case(category, "SignInLogs")
                || operation.eq_ignore_ascii_case("Sign-in activity")
            {
                return Shape::SignIn {
                    envelope: Some(obj),
                    props,
                    category: if category.is_empty() {
                        "signIn"
                    } else {
                        category
                    },
                };
            }
            // Audit records: `AuditLogs`, or the audit category itself
            // (`Policy`, `RoleManagement`...) where an export put it on the
            // envelope.
            if category.eq_ignore_ascii_case("AuditLogs")
                || field_of(props, "activityDisplayName").is_some()
                || field_of(props, "initiatedBy").is_some()
            {
                return Shape::Audit {
                    envelope: Some(obj),
                    props,
                };
            }
            let from_entra = text(obj, "resourceId")
                .is_some_and(|r| r.to_ascii_lowercase().contains("microsoft.aadiam"));
            if !category.is_empty() && from_entra {
                return Shape::OtherCategory { category };
            }
            return Shape::Unknown;
        }
        let has = |k: &str| field(obj, k).is_some();
        if is_risk_detection(record) {
            return Shape::RiskDetection {
                kind: "riskDetection",
            };
        }
        if has("Operation") && has("CreationTime") && has("RecordType") {
            return Shape::Office365;
        }
        // A bare Graph object is its own `properties`.
        if has("activityDisplayName") && has("initiatedBy") {
            return Shape::Audit {
                envelope: None,
                props: record,
            };
        }
        if has("createdDateTime")
            && (has("userId") || has("userPrincipalName") || has("servicePrincipalId"))
        {
            return Shape::SignIn {
                envelope: None,
                props: record,
                category: "signIn",
            };
        }
        Shape::Unknown
    }
}

fn is_risk_detection(v: &Value) -> bool {
    field_of(v, "riskEventType").is_some()
        && (field_of(v, "detectedDateTime").is_some() || field_of(v, "activityDateTime").is_some())
}

fn ends_with_ignore_case(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len()
        && s.get(s.len() - suffix.len()..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
}

// ---------------------------------------------------------------------------
// Field access

/// A field of an object, by its key as Microsoft writes it or, failing that,
/// case-insensitively. `null` counts as absent.
fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key)
        .or_else(|| {
            obj.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null())
}

/// [`field`] of a value that may be an object.
fn field_of<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_object().and_then(|o| field(o, key))
}

/// Non-empty text of a field.
fn text<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    field(obj, key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Non-empty text of a field of a value.
fn text_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.as_object().and_then(|o| text(o, key))
}

/// A whole number written as a number or as text (`"12345"`).
fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Entra writes `2025-01-15T09:30:25.1234567Z`; exports write
/// `2025-01-15 09:30:25.123` (a space, no offset: UTC).
fn entra_time(v: &Value) -> Option<Timestamp> {
    match v {
        Value::String(s) => {
            let s = s.trim();
            if s.as_bytes().get(10) == Some(&b' ') {
                let fixed = format!("{}T{}", s.get(..10)?, s.get(11..)?);
                parse_time(&Value::String(fixed))
            } else {
                parse_time(v)
            }
        }
        other => parse_time(other),
    }
}

/// The tenant id of a record: the envelope's `tenantId`, the record's own,
/// or the one in `resourceId` (`/tenants/<id>/providers/...`).
fn tenant_of(envelope: Option<&Map<String, Value>>, props: &Value) -> Option<String> {
    let from_resource = |r: &str| {
        let lower = r.to_ascii_lowercase();
        let start = lower.find("/tenants/")? + "/tenants/".len();
        let rest = r.get(start..)?;
        let id = rest.split('/').next()?;
        (!id.is_empty()).then(|| id.to_owned())
    };
    envelope
        .and_then(|e| text(e, "tenantId"))
        .or_else(|| text_of(props, "tenantId"))
        .or_else(|| text_of(props, "resourceTenantId"))
        .map(str::to_owned)
        .or_else(|| {
            envelope
                .and_then(|e| text(e, "resourceId"))
                .and_then(from_resource)
        })
}

// ---------------------------------------------------------------------------
// Sign-in logs

/// Codes of sign-ins that Microsoft marks as interrupted or that end an
/// expired session or token: not authentication outcomes, since the flow
/// logs its outcome in a record of its own. From Microsoft's AADSTS error
/// code reference.
const NOT_OUTCOMES: [(i64, &str); 15] = [
    (50140, "interrupt: \"Stay signed in?\" prompt"),
    (
        50199,
        "interrupt: confirmation prompt for a native or mobile app",
    ),
    (50125, "interrupt: password reset or registration"),
    (50097, "interrupt: device authentication required"),
    (50072, "interrupt: MFA registration required"),
    (
        50158,
        "interrupt: external security challenge not yet satisfied",
    ),
    (
        50058,
        "interrupt: silent sign-in without session information",
    ),
    (16000, "interrupt: account selection"),
    (16001, "interrupt: account selection"),
    (65001, "interrupt: consent required"),
    (70043, "expiry: refresh token past the sign-in frequency"),
    (700082, "expiry: refresh token idle too long"),
    (50173, "expiry: grant expired, fresh authentication needed"),
    (
        50133,
        "expiry: session invalid after expiry or password change",
    ),
    (50132, "expiry: session invalid"),
];

/// Codes that mean "MFA is required": the first factor passed and the user
/// is being challenged (`50074` strong authentication required, `50076`
/// MFA required by policy or location, `50079` MFA registration required).
const MFA_REQUIRED: [i64; 3] = [50074, 50076, 50079];

/// `500121`: authentication failed during the strong authentication request.
const MFA_FAILED: i64 = 500121;

/// `50053`: the account is locked (smart lockout) or the address is blocked.
const LOCKED: i64 = 50053;

/// `53003`: access blocked by a conditional access policy.
const BLOCKED_BY_POLICY: i64 = 53003;

fn sign_in(
    envelope: Option<&Map<String, Value>>,
    p: &Value,
    category: &str,
) -> Result<Draft, Unmapped> {
    let cat = category.to_ascii_lowercase();
    let event_types: Vec<String> = field_of(p, "signInEventTypes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_ascii_lowercase)
                .collect()
        })
        .unwrap_or_default();
    let user_id = text_of(p, "userId");
    let upn = text_of(p, "userPrincipalName");
    let sp_id = text_of(p, "servicePrincipalId");
    let workload = cat.contains("serviceprincipal")
        || cat.contains("managedidentity")
        || event_types
            .iter()
            .any(|t| t == "serviceprincipal" || t == "managedidentity")
        || (user_id.is_none() && upn.is_none() && sp_id.is_some());
    let non_interactive = cat == "noninteractiveusersigninlogs"
        || event_types.iter().any(|t| t == "noninteractiveuser");

    let code = error_code(envelope, p).ok_or_else(|| {
        reject(
            UnmappedReason::UnmappedType,
            Some(category),
            "sign-in without a status: neither status.errorCode nor resultType",
        )
    })?;
    if let Some((_, why)) = NOT_OUTCOMES.iter().find(|(c, _)| *c == code) {
        let vendor_type = format!("{category} {code}");
        return Err(reject(
            UnmappedReason::UnmappedType,
            Some(&vendor_type),
            format!(
                "sign-in {why}; not an authentication outcome (the flow's outcome is its own record)"
            ),
        ));
    }
    let failure_detail = [
        str_at(p, &["status", "additionalDetails"]),
        str_at(p, &["status", "failureReason"]),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ")
    .to_ascii_lowercase();

    let mut d = Draft::new(Some(category));
    let auth_type = match code {
        0 if workload => AuthType::TokenIssued,
        0 if non_interactive => AuthType::TokenRefreshed,
        0 => AuthType::LoginSuccess,
        c if MFA_REQUIRED.contains(&c) => AuthType::MfaChallenge,
        MFA_FAILED if failure_detail.contains("declined") || failure_detail.contains("fraud") => {
            d.attr("mfa_result", Some("denied"));
            AuthType::MfaPushDenied
        }
        MFA_FAILED => {
            d.attr("mfa_result", Some("failed"));
            AuthType::MfaFailure
        }
        LOCKED => {
            d.attr("blocked", Some("locked_out"));
            AuthType::LoginFailure
        }
        BLOCKED_BY_POLICY => {
            d.attr("blocked", Some("conditional_access"));
            AuthType::LoginFailure
        }
        _ => AuthType::LoginFailure,
    };
    d.auth(auth_type);
    d.attributes
        .insert("error_code".to_owned(), Value::from(code));
    d.attr("failure_reason", str_at(p, &["status", "failureReason"]));
    d.attr("status_detail", str_at(p, &["status", "additionalDetails"]));

    d.vendor_id = text_of(p, "id").map(str::to_owned);
    d.time = field_of(p, "createdDateTime")
        .and_then(entra_time)
        .or_else(|| envelope.and_then(|e| field(e, "time")).and_then(entra_time));
    d.tenant = tenant_of(envelope, p);

    // Who signed in.
    if workload {
        d.principal_type = PrincipalType::Workload;
        d.principal = sp_id
            .or_else(|| text_of(p, "appId"))
            .or_else(|| text_of(p, "servicePrincipalName"))
            .map(str::to_owned);
        d.attr("service_principal", text_of(p, "servicePrincipalName"));
        d.attr(
            "managed_identity_type",
            text_of(p, "managedIdentityType").filter(|t| !t.eq_ignore_ascii_case("none")),
        );
        d.attr(
            "credential_type",
            text_of(p, "clientCredentialType").filter(|t| !t.eq_ignore_ascii_case("none")),
        );
    } else {
        d.principal = user_id.or(upn).map(str::to_owned);
        d.attr("upn", upn);
        d.attr("user_type", text_of(p, "userType"));
    }

    // Session: Entra's own sessionId; for a workload the credential (key id)
    // or token it used; otherwise the flow's correlation id, listed as
    // missing since it spans one sign-in flow, not a session.
    let correlation =
        text_of(p, "correlationId").or_else(|| envelope.and_then(|e| text(e, "correlationId")));
    let session = if workload {
        text_of(p, "servicePrincipalCredentialKeyId")
            .or_else(|| text_of(p, "uniqueTokenIdentifier"))
            .or(text_of(p, "sessionId"))
    } else {
        text_of(p, "sessionId")
    };
    match (session, correlation) {
        (Some(s), _) => d.session = Some(s.to_owned()),
        (None, Some(c)) => {
            d.session = Some(format!("correlation:{c}"));
            d.missing.push("session".to_owned());
        }
        (None, None) => {}
    }

    // Where from.
    d.ip_text(
        text_of(p, "ipAddress").or_else(|| envelope.and_then(|e| text(e, "callerIpAddress"))),
    );
    d.user_agent = text_of(p, "userAgent").map(str::to_owned);
    d.asn = field_of(p, "autonomousSystemNumber")
        .and_then(int)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n != 0);
    if let Some(device) = field_of(p, "deviceDetail") {
        d.device_id = text_of(device, "deviceId").map(str::to_owned);
        if !workload {
            d.device_trust = Some(device_trust(device));
        }
    }
    d.attr("country", str_at(p, &["location", "countryOrRegion"]));
    d.attr("city", str_at(p, &["location", "city"]));

    // Assurance.
    d.amr = amr_of(p, code);
    d.attr(
        "authentication_requirement",
        text_of(p, "authenticationRequirement"),
    );
    d.attr(
        "authentication_protocol",
        text_of(p, "authenticationProtocol"),
    );
    d.attr("client_app", text_of(p, "clientAppUsed"));
    d.attr(
        "incoming_token_type",
        text_of(p, "incomingTokenType").filter(|t| !t.eq_ignore_ascii_case("none")),
    );
    d.attr("conditional_access", text_of(p, "conditionalAccessStatus"));

    // What was signed in to.
    d.attr("app_id", text_of(p, "appId"));
    d.attr("app", text_of(p, "appDisplayName"));
    d.resource = text_of(p, "resourceDisplayName")
        .or_else(|| text_of(p, "resourceId"))
        .map(str::to_owned);

    // Microsoft's own verdict, kept for comparison.
    d.attr("entra_risk_level", text_of(p, "riskLevelDuringSignIn"));
    d.attr(
        "entra_risk_level_aggregated",
        text_of(p, "riskLevelAggregated"),
    );
    d.attr("entra_risk_state", text_of(p, "riskState"));
    d.attr("entra_risk_detail", text_of(p, "riskDetail"));
    let risk_events = risk_event_types(p);
    d.attr("entra_risk_events", Some(risk_events.join(",").as_str()));
    d.attr("category", Some(category));
    Ok(d)
}

/// `status.errorCode`, else the envelope's `resultType` (a code, or
/// `Success`).
fn error_code(envelope: Option<&Map<String, Value>>, p: &Value) -> Option<i64> {
    if let Some(code) = at(p, &["status", "errorCode"]).and_then(int) {
        return Some(code);
    }
    let result = envelope.and_then(|e| field(e, "resultType"))?;
    int(result).or_else(|| match result.as_str() {
        Some(s) if s.eq_ignore_ascii_case("success") => Some(0),
        _ => None,
    })
}

/// Device trust as Entra reports it: compliant or managed (Intune or another
/// MDM) is `managed`; registered or joined to the directory is `known`;
/// anything else `unknown`.
fn device_trust(device: &Value) -> DeviceTrust {
    let flag = |k: &str| {
        field_of(device, k)
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    if flag("isCompliant") || flag("isManaged") {
        DeviceTrust::Managed
    } else if text_of(device, "trustType").is_some() {
        DeviceTrust::Known
    } else {
        DeviceTrust::Unknown
    }
}

/// `riskEventTypes_v2`, else `riskEventTypes`.
fn risk_event_types(p: &Value) -> Vec<String> {
    let list = |k: &str| -> Vec<String> {
        field_of(p, k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let v2 = list("riskEventTypes_v2");
    if v2.is_empty() {
        list("riskEventTypes")
    } else {
        v2
    }
}

/// OpenID Connect `amr` values (RFC 8176) of the authentication steps that
/// succeeded, plus `mfa` where Entra says multi-factor authentication was
/// required and the sign-in succeeded, or satisfied by a claim in the token.
fn amr_of(p: &Value, code: i64) -> Vec<String> {
    let mut amr: Vec<String> = Vec::new();
    let mut push = |v: &str| {
        if !amr.iter().any(|a| a == v) {
            amr.push(v.to_owned());
        }
    };
    if let Some(steps) = field_of(p, "authenticationDetails").and_then(Value::as_array) {
        for step in steps {
            let succeeded = match field_of(step, "succeeded").and_then(Value::as_bool) {
                Some(s) => s,
                // Older records leave it out; only a successful sign-in
                // vouches for its steps then.
                None => code == 0,
            };
            if succeeded && let Some(method) = text_of(step, "authenticationMethod") {
                for v in amr_of_method(method) {
                    push(v);
                }
            }
        }
    }
    if code == 0
        && let Some(method) = str_at(p, &["mfaDetail", "authMethod"])
    {
        for v in amr_of_method(method) {
            push(v);
        }
    }
    let requirement_mfa = text_of(p, "authenticationRequirement")
        .is_some_and(|r| r.eq_ignore_ascii_case("multiFactorAuthentication"));
    let satisfied_by_claim = str_at(p, &["status", "additionalDetails"])
        .is_some_and(|s| s.to_ascii_lowercase().contains("mfa requirement satisfied"));
    if code == 0 && (requirement_mfa || satisfied_by_claim) {
        push("mfa");
    }
    amr
}

/// `amr` values of one Entra authentication method, by the names of the
/// sign-in log (`authenticationDetails[].authenticationMethod`) and of the
/// older `mfaDetail.authMethod` (`PhoneAppNotification`, `OneWaySMS`...).
fn amr_of_method(method: &str) -> &'static [&'static str] {
    let m = method.to_ascii_lowercase();
    let has = |s: &str| m.contains(s);
    if has("temporary access pass") {
        &["otp"]
    } else if has("passkey") && has("synced") {
        // A synced passkey lives in software (NIST SP 800-63B supplement).
        &["swk", "pin"]
    } else if has("fido") || has("passkey") || has("security key") || has("windows hello") {
        // A device-bound key unlocked by PIN or biometric.
        &["hwk", "pin"]
    } else if has("x.509") || has("certificate") {
        &["sc"]
    } else if has("verification code") || has("otp") || has("oath") {
        &["otp"]
    } else if has("notification") || has("authenticator") {
        &["mfa"]
    } else if has("text message") || has("sms") {
        &["sms"]
    } else if has("voice") || has("phone call") {
        &["tel"]
    } else if has("password") {
        &["pwd"]
    } else {
        &[]
    }
}

// ---------------------------------------------------------------------------
// Audit logs

/// What an audit activity is, in contract terms.
enum AuditMapping {
    Auth(AuthType),
    Action(&'static str),
}

fn audit(envelope: Option<&Map<String, Value>>, p: &Value) -> Result<Draft, Unmapped> {
    let activity = text_of(p, "activityDisplayName")
        .or_else(|| text_of(p, "operationName"))
        .or_else(|| envelope.and_then(|e| text(e, "operationName")))
        .ok_or_else(|| {
            reject(
                UnmappedReason::NotRecognised,
                Some("AuditLogs"),
                "audit record without an activity name",
            )
        })?;
    let targets: &[Value] = field_of(p, "targetResources")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mapping = classify_activity(activity, targets).map_err(|why| {
        reject(
            UnmappedReason::UnmappedType,
            Some(activity),
            format!("audit activity {activity:?} {why}"),
        )
    })?;
    // Who did it.
    let user = at(p, &["initiatedBy", "user"])
        .filter(|u| text_of(u, "id").is_some() || text_of(u, "userPrincipalName").is_some());
    let app = at(p, &["initiatedBy", "app"]).filter(|a| {
        text_of(a, "servicePrincipalId").is_some()
            || text_of(a, "appId").is_some()
            || text_of(a, "displayName").is_some()
    });
    let target_user = targets
        .iter()
        .find(|t| text_of(t, "type").is_some_and(|ty| ty.eq_ignore_ascii_case("User")));
    // Microsoft's MFA service writes the change a user made to their own
    // methods: the principal is then the user, not the service.
    let written_for_user = user.is_none()
        && activity.trim().eq_ignore_ascii_case("Update user")
        && target_user.is_some();
    // An act on one's own account is an auth event of that account (a
    // password changed, an MFA method registered); the same act on someone
    // else's is an action of whoever did it, as in the Okta adapter.
    let on_other = !written_for_user
        && match (user, target_user) {
            (Some(u), Some(t)) => !same_identity(u, t),
            (None, Some(_)) => true,
            _ => false,
        };
    let mapping = match (mapping, on_other) {
        (AuditMapping::Auth(AuthType::PasswordChanged), true) => {
            AuditMapping::Action("user.reset_password")
        }
        (AuditMapping::Auth(AuthType::DeviceEnrolled), true) => {
            AuditMapping::Action("user.register_mfa")
        }
        (m, _) => m,
    };
    let mut d = Draft::new(Some(activity));
    match mapping {
        AuditMapping::Auth(t) => d.auth(t),
        AuditMapping::Action(name) => d.action(name),
    };
    d.vendor_id = text_of(p, "id").map(str::to_owned);
    d.time = field_of(p, "activityDateTime")
        .and_then(entra_time)
        .or_else(|| envelope.and_then(|e| field(e, "time")).and_then(entra_time));
    d.tenant = tenant_of(envelope, p);

    let mut ip = None;
    if let (true, Some(t)) = (written_for_user, target_user) {
        d.principal = text_of(t, "id")
            .or_else(|| text_of(t, "userPrincipalName"))
            .map(str::to_owned);
        d.attr("upn", text_of(t, "userPrincipalName"));
        d.attr(
            "actor",
            app.and_then(|a| text_of(a, "displayName").or_else(|| text_of(a, "appId"))),
        );
    } else if let Some(u) = user {
        d.principal = text_of(u, "id")
            .or_else(|| text_of(u, "userPrincipalName"))
            .map(str::to_owned);
        d.attr("upn", text_of(u, "userPrincipalName"));
        ip = text_of(u, "ipAddress");
    } else if let Some(a) = app {
        d.principal_type = PrincipalType::Workload;
        d.principal = text_of(a, "servicePrincipalId")
            .or_else(|| text_of(a, "appId"))
            .or_else(|| text_of(a, "displayName"))
            .map(str::to_owned);
        d.attr("service_principal", text_of(a, "displayName"));
    }
    let details = additional_details(p);
    let detail = |key: &str| {
        details
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| *v)
    };
    d.ip_text(
        ip.or_else(|| envelope.and_then(|e| text(e, "callerIpAddress")))
            .or_else(|| detail("ipaddr")),
    );
    d.user_agent = detail("User-Agent")
        .or_else(|| text_of(p, "userAgent"))
        .map(str::to_owned);

    // What it touched.
    let role = role_name(targets)
        .or_else(|| detail("RoleName"))
        .or_else(|| detail("RoleDefinitionName"));
    let member = targets
        .iter()
        .find(|t| {
            text_of(t, "type").is_some_and(|ty| {
                ["User", "ServicePrincipal", "Group", "Application", "Device"]
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(ty))
            })
        })
        .and_then(|t| {
            text_of(t, "userPrincipalName")
                .or_else(|| text_of(t, "displayName"))
                .or_else(|| text_of(t, "id"))
        });
    let first = targets.first().and_then(|t| {
        text_of(t, "displayName")
            .or_else(|| text_of(t, "userPrincipalName"))
            .or_else(|| text_of(t, "id"))
    });
    let is_rbac = matches!(d.body, Some(EventBody::Action(ref a)) if a.name.starts_with("rbac."));
    if is_rbac {
        d.resource = role.or(first).map(str::to_owned);
        d.attr("role", role);
        d.attr("member", member);
    } else {
        d.resource = first.or(member).map(str::to_owned);
        d.attr("target", member);
    }
    d.attr(
        "target_type",
        targets.first().and_then(|t| text_of(t, "type")),
    );
    d.attr("scope", detail("Scope"));
    d.attr("activity", Some(activity));
    d.attr("service", text_of(p, "loggedByService"));
    let result = text_of(p, "result").or_else(|| envelope.and_then(|e| text(e, "result")));
    d.attr("result", result.map(str::to_ascii_lowercase).as_deref());
    if let Some(change) = policy_change(targets) {
        d.attr("change", Some(change.as_str()));
    }
    Ok(d)
}

/// Whether an initiator and a target are the same account: the same object
/// id, or the same user principal name.
fn same_identity(a: &Value, b: &Value) -> bool {
    let eq = |k: &str| match (text_of(a, k), text_of(b, k)) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        _ => false,
    };
    eq("id") || eq("userPrincipalName")
}

/// `additionalDetails[]` as (key, value) pairs.
fn additional_details(p: &Value) -> Vec<(&str, &str)> {
    field_of(p, "additionalDetails")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|kv| Some((text_of(kv, "key")?, text_of(kv, "value")?)))
                .collect()
        })
        .unwrap_or_default()
}

/// The role of a role change: a target of type `Role`, or the
/// `Role.DisplayName` property Entra puts on the member.
fn role_name(targets: &[Value]) -> Option<&str> {
    targets
        .iter()
        .find(|t| text_of(t, "type").is_some_and(|ty| ty.eq_ignore_ascii_case("Role")))
        .and_then(|t| text_of(t, "displayName"))
        .or_else(|| {
            targets.iter().find_map(|t| {
                modified(t, "Role.DisplayName")
                    .and_then(|(old, new)| new.or(old))
                    .map(unquote)
            })
        })
}

/// `modifiedProperties[]` entry `name` of a target: (old, new).
fn modified<'a>(target: &'a Value, name: &str) -> Option<(Option<&'a str>, Option<&'a str>)> {
    field_of(target, "modifiedProperties")
        .and_then(Value::as_array)?
        .iter()
        .find(|m| text_of(m, "displayName").is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .map(|m| (text_of(m, "oldValue"), text_of(m, "newValue")))
}

/// Entra writes string property values JSON-quoted: `"\"Global Administrator\""`.
fn unquote(s: &str) -> &str {
    s.trim().trim_matches('"')
}

/// How an audit activity maps, or why it does not.
fn classify_activity(activity: &str, targets: &[Value]) -> Result<AuditMapping, &'static str> {
    use AuditMapping::{Action, Auth};
    // Entra writes en dashes in some names ("Update application –
    // Certificates and secrets management").
    let a = activity
        .replace(['\u{2013}', '\u{2014}'], "-")
        .to_ascii_lowercase();
    let a = a.trim();
    let is = |names: &[&str]| names.contains(&a);
    // Role grants, PIM included; a PIM *request* is not a grant yet.
    if a.starts_with("add ") && a.contains("member to role") {
        return if a.contains("request") {
            Err("is a PIM request; its grant is logged when completed")
        } else {
            Ok(Action("rbac.assign"))
        };
    }
    if a.starts_with("remove ") && a.contains("member from role") {
        return if a.contains("request") {
            Err("is a PIM request; its removal is logged when completed")
        } else {
            Ok(Action("rbac.revoke"))
        };
    }
    if a.starts_with("user has elevated their access to user access administrator")
        || is(&[
            "add role assignment",
            "create role assignment",
            "add app role assignment to service principal",
            "add app role assignment grant to user",
            "add delegated permission grant",
        ])
    {
        return Ok(Action("rbac.assign"));
    }
    if is(&[
        "remove role assignment",
        "delete role assignment",
        "remove app role assignment from service principal",
        "remove app role assignment from user",
        "remove delegated permission grant",
    ]) {
        return Ok(Action("rbac.revoke"));
    }
    if is(&[
        "add service principal credentials",
        "update application - certificates and secrets management",
    ]) {
        return Ok(Action("api.admin.keys.create"));
    }
    if is(&["delete user", "hard delete user"]) {
        return Ok(Action("user.delete"));
    }
    if is(&["invite external user"]) {
        return Ok(Action("user.invite"));
    }
    if is(&[
        "reset password (by admin)",
        "reset user password",
        "change user password",
        "change password (self-service)",
        "reset password (self-service)",
    ]) {
        return Ok(Auth(AuthType::PasswordChanged));
    }
    if is(&[
        "user registered security info",
        "admin registered security info",
    ]) {
        return Ok(Auth(AuthType::DeviceEnrolled));
    }
    if is(&[
        "admin deleted security info",
        "user deleted security info",
        "disable strong authentication",
    ]) {
        return Ok(Action("user.reset_mfa"));
    }
    if a == "update user" {
        return match targets
            .iter()
            .find_map(|t| modified(t, "StrongAuthenticationMethod"))
            .and_then(|(old, new)| mfa_methods_change(old, new))
        {
            Some(MethodsChange::Removed) => Ok(Action("user.reset_mfa")),
            Some(MethodsChange::Added) => Ok(Auth(AuthType::DeviceEnrolled)),
            None => Err("changes no MFA method; other user updates are not mapped"),
        };
    }
    if is(&["delete conditional access policy", "delete policy"]) {
        return Ok(Action("control.disable"));
    }
    if is(&["update conditional access policy", "update policy"]) {
        let weakened = targets.iter().any(|t| {
            ["ConditionalAccessPolicy", "PolicyDetail"]
                .iter()
                .filter_map(|name| modified(t, name))
                .any(|(old, new)| conditional_access_weakened(old, new))
        });
        return Ok(Action(if weakened {
            "control.disable"
        } else {
            "control.update"
        }));
    }
    if is(&[
        "add conditional access policy",
        "add policy",
        "update authentication methods policy",
        "authentication methods policy update",
        "set federation settings on domain",
        "set domain authentication",
    ]) {
        return Ok(Action("control.update"));
    }
    Err("is not mapped")
}

/// Whether a change of a user's registered MFA methods added the first or
/// removed the last.
#[derive(Debug, PartialEq, Eq)]
enum MethodsChange {
    Added,
    Removed,
}

/// `StrongAuthenticationMethod` old and new values (`[]` or a JSON list of
/// methods).
fn mfa_methods_change(old: Option<&str>, new: Option<&str>) -> Option<MethodsChange> {
    let count = |v: Option<&str>| -> usize {
        v.and_then(|s| serde_json::from_str::<Value>(s).ok())
            .and_then(|v| v.as_array().map(Vec::len))
            .unwrap_or(0)
    };
    let (before, after) = (count(old), count(new));
    if after < before {
        Some(MethodsChange::Removed)
    } else if after > before {
        Some(MethodsChange::Added)
    } else {
        None
    }
}

/// Whether a conditional access policy stopped enforcing: its state went
/// from enabled to disabled or report-only, or MFA left its grant controls.
fn conditional_access_weakened(old: Option<&str>, new: Option<&str>) -> bool {
    let parse = |v: Option<&str>| -> Option<Value> {
        let v: Value = serde_json::from_str(v?).ok()?;
        // The directory's copy is a list of JSON strings.
        match v {
            Value::Array(items) => items
                .first()
                .and_then(Value::as_str)
                .and_then(|s| serde_json::from_str(s).ok()),
            other => Some(other),
        }
    };
    let (Some(old), Some(new)) = (parse(old), parse(new)) else {
        return false;
    };
    let state = |v: &Value| text_of(v, "state").map(str::to_ascii_lowercase);
    let enforcing = |s: Option<String>| s.is_some_and(|s| s == "enabled");
    let requires_mfa = |v: &Value| {
        at(v, &["grantControls", "builtInControls"])
            .or_else(|| field_of(v, "Controls"))
            .is_some_and(|c| c.to_string().to_ascii_lowercase().contains("mfa"))
    };
    (enforcing(state(&old)) && !enforcing(state(&new)) && state(&new).is_some())
        || (requires_mfa(&old) && !requires_mfa(&new))
}

/// A short name for the change a policy record made, for the attributes.
fn policy_change(targets: &[Value]) -> Option<String> {
    targets.iter().find_map(|t| {
        let (old, new) =
            modified(t, "ConditionalAccessPolicy").or_else(|| modified(t, "PolicyDetail"))?;
        Some(
            match (
                old.is_some(),
                new.is_some(),
                conditional_access_weakened(old, new),
            ) {
                (_, _, true) => "weakened",
                (true, false, _) => "deleted",
                (false, true, _) => "added",
                _ => "updated",
            }
            .to_owned(),
        )
    })
}

// ---------------------------------------------------------------------------
// Office 365 Management Activity (AzureActiveDirectory workload)

/// Office 365 `UserType` values of accounts that are not people: 4 system,
/// 5 application, 6 service principal.
const O365_NON_HUMAN: [i64; 3] = [4, 5, 6];

fn office365(r: &Map<String, Value>) -> Result<Draft, Unmapped> {
    let operation = text(r, "Operation").unwrap_or("");
    if let Some(workload) =
        text(r, "Workload").filter(|w| !w.eq_ignore_ascii_case("AzureActiveDirectory"))
    {
        return Err(reject(
            UnmappedReason::NotRecognised,
            Some(operation),
            format!(
                "Office 365 {workload} record; only the AzureActiveDirectory workload is Entra ID"
            ),
        ));
    }
    let extended = |name: &str| -> Option<&str> {
        field(r, "ExtendedProperties")
            .and_then(Value::as_array)?
            .iter()
            .find(|kv| text_of(kv, "Name").is_some_and(|n| n.eq_ignore_ascii_case(name)))
            .and_then(|kv| text_of(kv, "Value"))
    };
    let actor = text(r, "UserId");
    let actor_is_system = field(r, "UserType")
        .and_then(int)
        .is_some_and(|t| O365_NON_HUMAN.contains(&t))
        || actor.is_some_and(|a| a.starts_with("ServicePrincipal_"));
    let mut d = Draft::new(Some(operation));
    match operation {
        "UserLoggedIn" => {
            d.auth(AuthType::LoginSuccess);
            d.principal = actor.map(str::to_owned);
        }
        "UserLoginFailed" => {
            d.auth(AuthType::LoginFailure);
            d.principal = actor.map(str::to_owned);
            let error = text(r, "LogonError");
            d.attr("logon_error", error);
            if error.is_some_and(|e| e.to_ascii_lowercase().contains("locked")) {
                d.attr("blocked", Some("locked_out"));
            }
        }
        "Update user." => {
            let change = field(r, "ModifiedProperties")
                .and_then(Value::as_array)
                .and_then(|props| {
                    props.iter().find(|m| {
                        text_of(m, "Name")
                            .is_some_and(|n| n.eq_ignore_ascii_case("StrongAuthenticationMethod"))
                    })
                })
                .and_then(|m| mfa_methods_change(text_of(m, "OldValue"), text_of(m, "NewValue")));
            // Microsoft's MFA service writes the change a user made to their
            // own methods: the principal is then the user (ObjectId), not the
            // service. A person changing someone else's methods acts.
            let target = text(r, "ObjectId");
            let on_other = !actor_is_system
                && match (actor, target) {
                    (Some(a), Some(t)) => !a.eq_ignore_ascii_case(t),
                    _ => false,
                };
            match change {
                Some(MethodsChange::Removed) => d.action("user.reset_mfa"),
                Some(MethodsChange::Added) if on_other => d.action("user.register_mfa"),
                Some(MethodsChange::Added) => d.auth(AuthType::DeviceEnrolled),
                None => {
                    return Err(reject(
                        UnmappedReason::UnmappedType,
                        Some(operation),
                        "Update user. changes no MFA method; other user updates are not mapped",
                    ));
                }
            };
            if actor_is_system {
                d.principal = target.map(str::to_owned);
                d.attr("actor", actor);
            } else {
                d.principal = actor.map(str::to_owned);
                d.resource = target.map(str::to_owned);
            }
        }
        other => {
            return Err(reject(
                UnmappedReason::UnmappedType,
                Some(other),
                format!("Office 365 operation {other:?} is not mapped"),
            ));
        }
    }
    if actor_is_system && matches!(operation, "UserLoggedIn" | "UserLoginFailed") {
        d.principal_type = PrincipalType::Workload;
    }
    d.vendor_id = text(r, "Id").map(str::to_owned);
    d.time = field(r, "CreationTime").and_then(entra_time);
    d.tenant = text(r, "OrganizationId").map(str::to_owned);
    d.ip_text(text(r, "ClientIP").or_else(|| text(r, "ActorIpAddress")));
    d.user_agent = extended("UserAgent").map(str::to_owned);
    d.attr("user_key", text(r, "UserKey"));
    d.attr("app_id", text(r, "ApplicationId"));
    d.attr("request_type", extended("RequestType"));
    d.attr(
        "result_status",
        extended("ResultStatusDetail").or_else(|| text(r, "ResultStatus")),
    );
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_map_to_amr() {
        assert_eq!(amr_of_method("Password"), &["pwd"]);
        assert_eq!(amr_of_method("Mobile app notification"), &["mfa"]);
        assert_eq!(amr_of_method("OATH verification code"), &["otp"]);
        assert_eq!(amr_of_method("FIDO2 security key"), &["hwk", "pin"]);
        assert_eq!(amr_of_method("Windows Hello for Business"), &["hwk", "pin"]);
        assert_eq!(amr_of_method("Passkey (synced)"), &["swk", "pin"]);
        assert_eq!(amr_of_method("Text message"), &["sms"]);
        assert_eq!(amr_of_method("PhoneAppNotification"), &["mfa"]);
        assert_eq!(amr_of_method("Previously satisfied"), &[] as &[&str]);
    }

    #[test]
    fn export_times_are_utc() {
        let t = |s: &str| entra_time(&Value::from(s));
        assert_eq!(t("2025-01-15 09:30:25.123"), t("2025-01-15T09:30:25.123Z"));
        assert_eq!(
            t("2023-07-26 22:58:30.983201900"),
            t("2023-07-26T22:58:30.983Z")
        );
        assert!(t("2019-10-18T04:45:48.0729893-05:00").is_some());
        assert_eq!(t("8/22/2022 6:07:16 PM"), None);
    }

    #[test]
    fn conditional_access_weakening() {
        let on = r#"{"state":"enabled","grantControls":{"builtInControls":["mfa"]}}"#;
        let off = r#"{"state":"disabled","grantControls":{"builtInControls":["mfa"]}}"#;
        let no_mfa =
            r#"{"state":"enabled","grantControls":{"builtInControls":["compliantDevice"]}}"#;
        let report_only = r#"{"state":"enabledForReportingButNotEnforced","grantControls":{"builtInControls":["mfa"]}}"#;
        assert!(conditional_access_weakened(Some(on), Some(off)));
        assert!(conditional_access_weakened(Some(on), Some(no_mfa)));
        assert!(conditional_access_weakened(Some(on), Some(report_only)));
        assert!(!conditional_access_weakened(Some(off), Some(on)));
        assert!(!conditional_access_weakened(Some(on), Some(on)));
    }

    #[test]
    fn mfa_method_changes() {
        let one = r#"[{"Default": true,"MethodType": 7}]"#;
        assert_eq!(
            mfa_methods_change(Some(one), Some("[]")),
            Some(MethodsChange::Removed)
        );
        assert_eq!(
            mfa_methods_change(Some("[]"), Some(one)),
            Some(MethodsChange::Added)
        );
        assert_eq!(mfa_methods_change(Some(one), Some(one)), None);
    }
}
