//! AWS CloudTrail: one management-event record, or a log file's
//! `{"Records": [...]}` envelope, to contract events.
//!
//! What maps: console sign-in (`ConsoleLogin`, `CheckMfa`,
//! `PasswordUpdated`), credential issuance by STS and the console
//! (`token.issued`), and the calls that are themselves sensitive acts: IAM
//! privilege and credential changes, switching off logging and detection,
//! reading secrets. Every other call is `unmapped_type` naming
//! `eventSource:eventName`: CloudTrail records every API call of an account,
//! and most of them (describing instances, reading objects) say nothing about
//! who is signed in.
//!
//! CloudTrail has no session id. A call made with temporary credentials
//! carries their access key id, and the contract's session "for a workload,
//! the credential or token id" is exactly that; a console sign-in carries no
//! key, so its session is derived (and listed in `source.missing`).

use riskstream_schemas::{AuthType, Event, EventBody, PrincipalType, Timestamp};
use serde_json::Value;

use crate::draft::{Draft, field as get, parse_time, path};
use crate::{AdapterOptions, Format, Unmapped, UnmappedReason};

const FORMAT: Format = Format::CloudTrail;

const SIGNIN: &str = "signin.amazonaws.com";
const STS: &str = "sts.amazonaws.com";
const IAM: &str = "iam.amazonaws.com";

/// How a call maps.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// A console sign-in; its outcome is `responseElements[eventName]`.
    SignIn,
    /// The MFA step of a console sign-in.
    CheckMfa,
    /// The console's password change; outcome as for [`Kind::SignIn`].
    PasswordUpdated,
    /// A credential handed out: `token.issued` when the call succeeded.
    Token,
    /// An auth event that happened only if the call succeeded.
    Auth(AuthType),
    /// A sensitive act, attempted or done.
    Action(&'static str),
    /// `secrets.read` when the request asked SSM to decrypt the parameters.
    DecryptedParameter,
}

/// `(eventSource, eventName, kind)`. A record without `eventSource` (some
/// exports drop it) is matched on the name alone, first rule first.
// One rule a line, read as a table: not reflowed.
#[rustfmt::skip]
const RULES: &[(&str, &str, Kind)] = &[
    // Console sign-in.
    (SIGNIN, "ConsoleLogin", Kind::SignIn),
    (SIGNIN, "ExternalIdPDirectoryLogin", Kind::SignIn),
    (SIGNIN, "CheckMfa", Kind::CheckMfa),
    (SIGNIN, "PasswordUpdated", Kind::PasswordUpdated),
    (SIGNIN, "GetSigninToken", Kind::Token),
    (SIGNIN, "SwitchRole", Kind::Token),
    // Credentials.
    (STS, "AssumeRole", Kind::Token),
    (STS, "AssumeRoleWithSAML", Kind::Token),
    (STS, "AssumeRoleWithWebIdentity", Kind::Token),
    (STS, "GetSessionToken", Kind::Token),
    (STS, "GetFederationToken", Kind::Token),
    ("sso.amazonaws.com", "CreateToken", Kind::Token),
    ("sso-oauth.amazonaws.com", "CreateToken", Kind::Token),
    // IAM privilege changes.
    (IAM, "AttachUserPolicy", Kind::Action("rbac.assign")),
    (IAM, "AttachRolePolicy", Kind::Action("rbac.assign")),
    (IAM, "AttachGroupPolicy", Kind::Action("rbac.assign")),
    (IAM, "PutUserPolicy", Kind::Action("rbac.assign")),
    (IAM, "PutRolePolicy", Kind::Action("rbac.assign")),
    (IAM, "PutGroupPolicy", Kind::Action("rbac.assign")),
    (IAM, "AddUserToGroup", Kind::Action("rbac.assign")),
    // Who may assume a role: widening it is how roles are backdoored.
    (IAM, "UpdateAssumeRolePolicy", Kind::Action("rbac.assign")),
    (IAM, "CreatePolicyVersion", Kind::Action("rbac.policy.update")),
    (IAM, "SetDefaultPolicyVersion", Kind::Action("rbac.policy.update")),
    (IAM, "DetachUserPolicy", Kind::Action("rbac.revoke")),
    (IAM, "DetachRolePolicy", Kind::Action("rbac.revoke")),
    (IAM, "DetachGroupPolicy", Kind::Action("rbac.revoke")),
    (IAM, "DeleteUserPolicy", Kind::Action("rbac.revoke")),
    (IAM, "DeleteRolePolicy", Kind::Action("rbac.revoke")),
    (IAM, "DeleteGroupPolicy", Kind::Action("rbac.revoke")),
    (IAM, "RemoveUserFromGroup", Kind::Action("rbac.revoke")),
    // IAM credentials and users.
    (IAM, "CreateAccessKey", Kind::Action("api.admin.keys.create")),
    (IAM, "CreateLoginProfile", Kind::Auth(AuthType::PasswordChanged)),
    (IAM, "UpdateLoginProfile", Kind::Auth(AuthType::PasswordChanged)),
    (IAM, "ChangePassword", Kind::Auth(AuthType::PasswordChanged)),
    (IAM, "DeactivateMFADevice", Kind::Action("user.reset_mfa")),
    (IAM, "DeleteVirtualMFADevice", Kind::Action("user.reset_mfa")),
    (IAM, "EnableMFADevice", Kind::Auth(AuthType::DeviceEnrolled)),
    (IAM, "CreateVirtualMFADevice", Kind::Auth(AuthType::DeviceEnrolled)),
    (IAM, "CreateUser", Kind::Action("user.create")),
    (IAM, "DeleteUser", Kind::Action("user.delete")),
    // Logging and detection switched off (MITRE T1562, impair defenses).
    ("cloudtrail.amazonaws.com", "StopLogging", Kind::Action("control.disable")),
    ("cloudtrail.amazonaws.com", "DeleteTrail", Kind::Action("control.disable")),
    ("cloudtrail.amazonaws.com", "UpdateTrail", Kind::Action("control.disable")),
    ("cloudtrail.amazonaws.com", "PutEventSelectors", Kind::Action("control.disable")),
    ("securityhub.amazonaws.com", "DisableSecurityHub", Kind::Action("control.disable")),
    ("guardduty.amazonaws.com", "DeleteDetector", Kind::Action("control.disable")),
    // Trusted IP lists silence GuardDuty findings from those addresses.
    ("guardduty.amazonaws.com", "CreateIPSet", Kind::Action("control.update")),
    ("guardduty.amazonaws.com", "UpdateIPSet", Kind::Action("control.update")),
    ("ec2.amazonaws.com", "DeleteFlowLogs", Kind::Action("control.disable")),
    ("ec2.amazonaws.com", "DisableEbsEncryptionByDefault", Kind::Action("control.disable")),
    ("config.amazonaws.com", "StopConfigurationRecorder", Kind::Action("control.disable")),
    ("config.amazonaws.com", "DeleteConfigurationRecorder", Kind::Action("control.disable")),
    ("config.amazonaws.com", "DeleteDeliveryChannel", Kind::Action("control.disable")),
    ("route53resolver.amazonaws.com", "DeleteResolverQueryLogConfig", Kind::Action("control.disable")),
    ("bedrock.amazonaws.com", "DeleteModelInvocationLoggingConfiguration", Kind::Action("control.disable")),
    ("wafv2.amazonaws.com", "DisassociateWebACL", Kind::Action("control.disable")),
    ("s3.amazonaws.com", "DeleteBucketEncryption", Kind::Action("control.disable")),
    ("s3.amazonaws.com", "DeleteBucketPublicAccessBlock", Kind::Action("control.disable")),
    ("rds.amazonaws.com", "StopActivityStream", Kind::Action("control.disable")),
    // Leaving the organisation sheds its service control policies.
    ("organizations.amazonaws.com", "LeaveOrganization", Kind::Action("control.disable")),
    // Secrets and bulk data.
    ("secretsmanager.amazonaws.com", "GetSecretValue", Kind::Action("secrets.read")),
    ("secretsmanager.amazonaws.com", "BatchGetSecretValue", Kind::Action("secrets.read")),
    ("ssm.amazonaws.com", "GetParameter", Kind::DecryptedParameter),
    ("ssm.amazonaws.com", "GetParameters", Kind::DecryptedParameter),
    // The Windows administrator password of an instance.
    ("ec2.amazonaws.com", "GetPasswordData", Kind::Action("secrets.read")),
    ("rds.amazonaws.com", "StartExportTask", Kind::Action("data.export")),
];

/// Whether the credential's session was created with MFA (`"true"`/`"false"`).
const MFA_AUTHENTICATED: &[&str] = &[
    "userIdentity",
    "sessionContext",
    "attributes",
    "mfaAuthenticated",
];

/// Fields whose presence, beside `eventName`, says a record is CloudTrail's.
const CLOUDTRAIL_FIELDS: &[&str] = &[
    "eventVersion",
    "eventSource",
    "eventTime",
    "eventID",
    "eventType",
    "userIdentity",
    "awsRegion",
    "recipientAccountId",
];

/// Request parameters that name what an action touches, most specific first.
const RESOURCE_PARAMETERS: &[&str] = &[
    "policyArn",
    "roleArn",
    "secretId",
    "trailName",
    "name",
    "detectorId",
    "bucketName",
    "userName",
    "roleName",
    "groupName",
];

/// One record, or every record of a log file that maps.
/// One outcome per record: a log file (`{"Records": [...]}`) gives one per
/// record it holds, so a record that does not map is reported, not lost.
pub(crate) fn normalize_items(
    record: &Value,
    opts: &AdapterOptions,
) -> Vec<Result<Event, Unmapped>> {
    match get(record, "Records").and_then(Value::as_array) {
        Some(records) if records.is_empty() => vec![Err(Unmapped::new(
            FORMAT,
            UnmappedReason::UnmappedType,
            Some("Records"),
            "a log file with no records",
        ))],
        Some(records) => records.iter().map(|r| one(r, opts)).collect(),
        None => vec![one(record, opts)],
    }
}

pub(crate) fn normalize(record: &Value, opts: &AdapterOptions) -> Result<Vec<Event>, Unmapped> {
    if let Some(records) = get(record, "Records").and_then(Value::as_array) {
        return log_file(records, opts);
    }
    one(record, opts).map(|e| vec![e])
}

/// A CloudTrail log file: every record that maps. The file as a whole is
/// rejected only when none does, with the first record's reason.
fn log_file(records: &[Value], opts: &AdapterOptions) -> Result<Vec<Event>, Unmapped> {
    let mut events = Vec::with_capacity(records.len());
    let mut first_rejection = None;
    for r in records {
        match one(r, opts) {
            Ok(e) => events.push(e),
            Err(u) => {
                first_rejection.get_or_insert(u);
            }
        }
    }
    match first_rejection {
        Some(mut u) if events.is_empty() => {
            u.detail = format!(
                "none of the {} records of the log file maps; the first: {}",
                records.len(),
                u.detail
            );
            Err(u)
        }
        None if events.is_empty() => Err(Unmapped::new(
            FORMAT,
            UnmappedReason::UnmappedType,
            Some("Records"),
            "a log file with no records",
        )),
        _ => Ok(events),
    }
}

fn one(record: &Value, opts: &AdapterOptions) -> Result<Event, Unmapped> {
    let reject = |reason, vendor_type: Option<&str>, detail: String| {
        Unmapped::new(FORMAT, reason, vendor_type, detail)
    };
    if !record.is_object() {
        return Err(reject(
            UnmappedReason::NotRecognised,
            None,
            "not a JSON object".to_owned(),
        ));
    }
    let Some(name) = text(record, &["eventName"]) else {
        return Err(reject(
            UnmappedReason::NotRecognised,
            None,
            "no eventName: not a CloudTrail record".to_owned(),
        ));
    };
    let panther_cloudtrail = text(record, &["p_log_type"]) == Some("AWS.CloudTrail");
    if !panther_cloudtrail && !CLOUDTRAIL_FIELDS.iter().any(|f| get(record, f).is_some()) {
        return Err(reject(
            UnmappedReason::NotRecognised,
            None,
            "an eventName without eventSource, eventTime or userIdentity: not a CloudTrail record"
                .to_owned(),
        ));
    }
    let source = text(record, &["eventSource"]);
    let vendor_type = source.map_or_else(|| name.to_owned(), |s| format!("{s}:{name}"));
    let Some(kind) = rule(source, name) else {
        return Err(reject(
            UnmappedReason::UnmappedType,
            Some(&vendor_type),
            format!(
                "{vendor_type} is neither a sign-in, a credential issued nor a sensitive act riskstream maps"
            ),
        ));
    };

    let mut d = Draft::new(Some(&vendor_type));
    let console_sign_in = matches!(kind, Kind::SignIn | Kind::CheckMfa | Kind::PasswordUpdated);
    let who = identity(record, source, console_sign_in);
    d.vendor_id = text(record, &["eventID"]).map(str::to_owned);
    d.time = get(record, "eventTime")
        .and_then(vendor_time)
        .or_else(|| get(record, "p_event_time").and_then(vendor_time));
    d.tenant = text(record, &["recipientAccountId"])
        .or_else(|| text(record, &["userIdentity", "accountId"]))
        .map(str::to_owned);
    d.principal.clone_from(&who.id);
    d.principal_type = who.kind;
    d.role.clone_from(&who.role);
    d.session = text(record, &["userIdentity", "accessKeyId"]).map(str::to_owned);
    let address = text(record, &["sourceIPAddress"]);
    d.ip_text(address);
    if d.ip.is_none() {
        // An AWS service calling on the principal's behalf writes its own
        // name here ("lambda.amazonaws.com", "AWS Internal").
        d.attr("source_service", address);
    }
    d.user_agent = text(record, &["userAgent"]).map(str::to_owned);
    d.attr("identity_type", who.type_name.as_deref());
    d.attr("arn", text(record, &["userIdentity", "arn"]));
    d.attr("aws_region", text(record, &["awsRegion"]));
    d.attr("mfa_authenticated", text(record, MFA_AUTHENTICATED));
    let error_code = text(record, &["errorCode"]);
    let error_message = text(record, &["errorMessage"]);
    d.attr("error_code", error_code);
    d.attr("error_message", error_message);
    let failed = error_code.is_some();

    match kind {
        Kind::SignIn => sign_in(record, name, &who, &mut d)?,
        Kind::CheckMfa => match outcome(record, name) {
            Some(true) => {
                d.auth(AuthType::MfaSuccess);
                d.amr = vec!["mfa".to_owned()];
                d.aal = Some(2);
            }
            Some(false) => {
                d.auth(AuthType::MfaFailure);
            }
            None => return Err(no_outcome(&vendor_type, name)),
        },
        Kind::PasswordUpdated => match outcome(record, name) {
            Some(true) => {
                d.auth(AuthType::PasswordChanged);
            }
            Some(false) => {
                return Err(reject(
                    UnmappedReason::UnmappedType,
                    Some(&vendor_type),
                    "the password change failed: the password is unchanged".to_owned(),
                ));
            }
            None => return Err(no_outcome(&vendor_type, name)),
        },
        Kind::Token => token(record, error_code.or(error_message), &vendor_type, &mut d)?,
        Kind::Auth(t) => {
            if failed {
                return Err(reject(
                    UnmappedReason::UnmappedType,
                    Some(&vendor_type),
                    format!(
                        "the call failed ({}): nothing changed",
                        error_code.unwrap_or_default()
                    ),
                ));
            }
            d.auth(t);
            target(record, &mut d);
            d.attr(
                "mfa_serial",
                text(record, &["requestParameters", "serialNumber"]),
            );
        }
        Kind::Action(action) => {
            d.action(action);
            target(record, &mut d);
        }
        Kind::DecryptedParameter => {
            let decrypted = matches!(
                path(record, &["requestParameters", "withDecryption"]),
                Some(Value::Bool(true))
            ) || text(record, &["requestParameters", "withDecryption"])
                == Some("true");
            if !decrypted {
                return Err(reject(
                    UnmappedReason::UnmappedType,
                    Some(&vendor_type),
                    "parameters read without decryption: not a secret read".to_owned(),
                ));
            }
            d.action("secrets.read");
            target(record, &mut d);
        }
    }
    if failed && matches!(d.body, Some(EventBody::Action(_))) {
        // The attempt is the risk: a denied StopLogging is still someone
        // trying to blind the account.
        d.attr("outcome", Some("failure"));
    }
    let fingerprint = serde_json::to_vec(record).unwrap_or_default();
    d.finish(FORMAT, &fingerprint, opts)
}

fn no_outcome(vendor_type: &str, name: &str) -> Unmapped {
    Unmapped::new(
        FORMAT,
        UnmappedReason::UnmappedType,
        Some(vendor_type),
        format!(
            "no outcome: responseElements.{name} is neither Success nor Failure and there is no error"
        ),
    )
}

/// The rule for a call, by service and name, or by name alone when the
/// record has no service.
fn rule(source: Option<&str>, name: &str) -> Option<Kind> {
    RULES
        .iter()
        .find(|(s, n, _)| *n == name && source.is_none_or(|src| src == *s))
        .map(|(_, _, k)| *k)
}

/// `Some(true)` for `Success`, `Some(false)` for `Failure` or an error.
fn outcome(record: &Value, name: &str) -> Option<bool> {
    match text(record, &["responseElements", name]) {
        Some(s) if s.eq_ignore_ascii_case("success") => Some(true),
        Some(s) if s.eq_ignore_ascii_case("failure") => Some(false),
        _ if text(record, &["errorMessage"]).is_some()
            || text(record, &["errorCode"]).is_some() =>
        {
            Some(false)
        }
        _ => None,
    }
}

/// `ConsoleLogin` and `ExternalIdPDirectoryLogin`.
fn sign_in(record: &Value, name: &str, who: &Identity, d: &mut Draft) -> Result<(), Unmapped> {
    let extra = |k: &str| text(record, &["additionalEventData", k]);
    let mfa_used = extra("MFAUsed").is_some_and(|v| v.eq_ignore_ascii_case("yes"));
    let saml = extra("SamlProviderArn");
    d.attr("login_to", extra("LoginTo"));
    d.attr("saml_provider", saml);
    d.attr("mfa_device", extra("MFAIdentifier"));
    // Federated sign-ins authenticate at the identity provider: AWS's
    // MFAUsed says only whether AWS itself asked for a factor.
    let federated = saml.is_some()
        || matches!(
            who.type_name.as_deref(),
            Some("AssumedRole" | "FederatedUser" | "SAMLUser" | "WebIdentityUser")
        );
    let session_mfa = text(record, MFA_AUTHENTICATED) == Some("true");
    match outcome(record, name) {
        Some(true) => {
            d.auth(AuthType::LoginSuccess);
            if mfa_used {
                d.amr = if federated {
                    vec!["mfa".to_owned()]
                } else {
                    vec!["pwd".to_owned(), "mfa".to_owned()]
                };
                // A FIDO security key ("arn:aws:iam::…:u2f/…") is a hardware key.
                if extra("MFAIdentifier").is_some_and(|m| m.contains(":u2f/")) {
                    d.amr.push("hwk".to_owned());
                }
                d.aal = Some(2);
            } else if session_mfa {
                d.amr = vec!["mfa".to_owned()];
                d.aal = Some(2);
            } else if !federated {
                d.amr = vec!["pwd".to_owned()];
                d.aal = Some(1);
            }
            Ok(())
        }
        Some(false) => {
            // MFAUsed is Yes on a failure only when the password was right
            // and the second factor was not (the reading of Panther's
            // "Unsuccessful MFA attempt" and Splunk's "Console Login Failed
            // During MFA Challenge" rules).
            d.auth(if mfa_used {
                AuthType::MfaFailure
            } else {
                AuthType::LoginFailure
            });
            Ok(())
        }
        None => Err(no_outcome(d.vendor_type.as_deref().unwrap_or(name), name)),
    }
}

/// STS and console credential issuance.
fn token(
    record: &Value,
    error: Option<&str>,
    vendor_type: &str,
    d: &mut Draft,
) -> Result<(), Unmapped> {
    let request = |k: &str| text(record, &["requestParameters", k]);
    let mfa_serial = request("serialNumber");
    let mfa_presented = mfa_serial.is_some() || request("tokenCode").is_some();
    if let Some(error) = error {
        let mfa_error = text(record, &["errorMessage"])
            .is_some_and(|m| m.contains("MultiFactorAuthentication"));
        if mfa_presented || mfa_error {
            d.principal_type = PrincipalType::Human;
            d.auth(AuthType::MfaFailure);
            d.attr("mfa_serial", mfa_serial);
            return Ok(());
        }
        return Err(Unmapped::new(
            FORMAT,
            UnmappedReason::UnmappedType,
            Some(vendor_type),
            format!("the call failed ({error}): no credential was issued"),
        ));
    }
    d.auth(AuthType::TokenIssued);
    let role_arn = request("roleArn");
    d.resource = role_arn.map(str::to_owned);
    d.attr("role_arn", role_arn);
    d.attr("role_session_name", request("roleSessionName"));
    d.attr("federated_user", request("name"));
    d.attr(
        "issued_access_key_id",
        text(record, &["responseElements", "credentials", "accessKeyId"]),
    );
    d.attr("grant_type", request("grantType"));
    if mfa_presented {
        // The caller proved its credential and a one-time code from its MFA
        // device in this very call; a workload has no MFA device.
        d.principal_type = PrincipalType::Human;
        d.amr = vec!["otp".to_owned(), "mfa".to_owned()];
        d.aal = Some(2);
        d.attr("mfa_serial", mfa_serial);
    }
    Ok(())
}

/// Who or what an IAM action is about.
fn target(record: &Value, d: &mut Draft) {
    let request = |k: &str| text(record, &["requestParameters", k]);
    d.attr("target_user", request("userName"));
    d.attr("target_role", request("roleName"));
    d.attr("group", request("groupName"));
    d.attr("policy_arn", request("policyArn"));
    d.attr("policy_name", request("policyName"));
    d.resource = RESOURCE_PARAMETERS
        .iter()
        .find_map(|k| request(k))
        .map(str::to_owned);
}

/// The principal of a record.
#[derive(Debug, Default)]
struct Identity {
    id: Option<String>,
    kind: PrincipalType,
    role: Option<String>,
    /// `userIdentity.type`.
    type_name: Option<String>,
}

/// The principal, its kind and role, from `userIdentity`.
///
/// - IAM users by user name (failed sign-ins carry no ARN, only the name),
///   workloads when they call with a long-term access key (`AKIA…`) rather
///   than through a console sign-in;
/// - the root user as `arn:aws:iam::<account>:root`, always human;
/// - assumed-role sessions of people by session name, with the role as
///   `principal.role`. A session is a person's when it comes from IAM
///   Identity Center (`AWSReservedSSO_*` roles), was created with MFA (a
///   workload has no MFA device), is used from the console (a browser or the
///   console's own user agent) or is named by an e-mail address. Other
///   assumed-role sessions are workloads, named `role/<RoleName>`: their
///   session names (instance ids, invocation ids) change with every
///   credential;
/// - AWS services by the service's name, workloads.
fn identity(record: &Value, source: Option<&str>, console_sign_in: bool) -> Identity {
    let ui = |k: &str| text(record, &["userIdentity", k]);
    let type_name = ui("type").map(str::to_owned);
    let arn = ui("arn");
    let arn_tail = arn
        .and_then(|a| a.rsplit('/').next())
        .filter(|s| !s.is_empty());
    let user_name = ui("userName");
    let account = ui("accountId").or_else(|| text(record, &["recipientAccountId"]));
    let user_agent = text(record, &["userAgent"]).unwrap_or("");
    let console = console_sign_in
        || user_agent.starts_with("Mozilla/")
        || user_agent.contains("console.amazonaws.com")
        || user_agent.contains("S3Console");
    let mut who = Identity {
        type_name: type_name.clone(),
        ..Identity::default()
    };
    match type_name.as_deref() {
        Some("Root") => {
            who.id = Some(
                account.map_or_else(|| "root".to_owned(), |a| format!("arn:aws:iam::{a}:root")),
            );
        }
        Some("IAMUser") => {
            who.id = user_name
                .or(arn_tail)
                .or_else(|| ui("principalId"))
                .map(str::to_owned);
            let long_term_key = ui("accessKeyId").is_some_and(|k| k.starts_with("AKIA"));
            let mfa = text(record, MFA_AUTHENTICATED) == Some("true");
            if long_term_key && !mfa && !console_sign_in && source != Some(SIGNIN) {
                who.kind = PrincipalType::Workload;
            }
        }
        Some("AssumedRole") => {
            let issuer = |k: &str| {
                text(
                    record,
                    &["userIdentity", "sessionContext", "sessionIssuer", k],
                )
            };
            // arn:aws:sts::<account>:assumed-role/<role>/<session>
            let mut parts = arn
                .and_then(|a| a.split_once(":assumed-role/"))
                .map(|(_, rest)| rest.split('/'))
                .into_iter()
                .flatten();
            let (arn_role, arn_session) = (parts.next(), parts.next());
            let role = issuer("userName")
                .or(arn_role)
                .filter(|r| !r.is_empty())
                .map(str::to_owned);
            let session_name = arn_session
                .or_else(|| {
                    ui("principalId")
                        .and_then(|p| p.split_once(':'))
                        .map(|(_, s)| s)
                })
                .filter(|s| !s.is_empty());
            let sso = role
                .as_deref()
                .is_some_and(|r| r.starts_with("AWSReservedSSO_"))
                || issuer("arn").is_some_and(|a| a.contains("/aws-reserved/sso.amazonaws.com/"));
            let mfa = text(record, MFA_AUTHENTICATED) == Some("true");
            let person = sso || mfa || console || session_name.is_some_and(|s| s.contains('@'));
            if person && let Some(s) = session_name {
                who.id = Some(s.to_owned());
            } else {
                who.id = role
                    .as_deref()
                    .map(|r| format!("role/{r}"))
                    .or_else(|| arn.map(str::to_owned));
                if !person {
                    who.kind = PrincipalType::Workload;
                }
            }
            who.role = role;
        }
        Some("FederatedUser") => {
            who.id = arn_tail
                .or(user_name)
                .or_else(|| ui("principalId"))
                .map(str::to_owned);
        }
        Some("WebIdentityUser") => {
            // OpenID Connect federation: CI jobs, Kubernetes service accounts.
            who.id = user_name.or_else(|| ui("principalId")).map(str::to_owned);
            who.kind = PrincipalType::Workload;
        }
        Some("AWSService") => {
            who.id = ui("invokedBy")
                .or(text(record, &["sourceIPAddress"]))
                .map(str::to_owned);
            who.kind = PrincipalType::Workload;
        }
        Some("AWSAccount") => {
            who.id = ui("principalId")
                .or(ui("accountId"))
                .map(|p| format!("account/{p}"));
            who.kind = PrincipalType::Workload;
        }
        _ => {
            // SAMLUser, IdentityCenterUser, Unknown (IAM Identity Center
            // sign-in), or exports that dropped the type.
            who.id = user_name
                .or_else(|| text(record, &["userIdentity", "onBehalfOf", "userId"]))
                .or(arn)
                .or_else(|| ui("principalId"))
                .map(str::to_owned);
        }
    }
    who
}

/// Non-empty text at a path.
fn text<'a>(value: &'a Value, keys: &[&str]) -> Option<&'a str> {
    path(value, keys)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Event time as CloudTrail writes it, and as SQL exports and Panther write
/// it: a space between date and time (`2024-06-02 19:41:40.000000000`),
/// UTC when no offset is given. RFC 3339 itself allows the space (§5.6,
/// note); the contract's parser does not, so it is replaced here.
pub(crate) fn vendor_time(value: &Value) -> Option<Timestamp> {
    if let Some(s) = value.as_str() {
        let s = s.trim();
        if s.as_bytes().get(10) == Some(&b' ') {
            let (date, rest) = s.split_at(10);
            return parse_time(&Value::String(format!("{date}T{}", rest.trim_start())));
        }
    }
    parse_time(value)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn times_with_a_space() {
        let t = Timestamp::parse_rfc3339("2024-06-02T19:41:40Z").ok();
        assert_eq!(
            vendor_time(&Value::from("2024-06-02 19:41:40.000000000")),
            t
        );
        assert_eq!(vendor_time(&Value::from("2024-06-02 19:41:40")), t);
        assert_eq!(vendor_time(&Value::from("2024-06-02 19:41:40Z")), t);
        assert_eq!(vendor_time(&Value::from("2024-06-02T19:41:40Z")), t);
        assert_eq!(vendor_time(&Value::from("redacted")), None);
    }

    #[test]
    fn lower_case_columns() {
        let v: Value =
            serde_json::from_str(r#"{"eventname":"X","useridentity":{"arn":"a"}}"#).unwrap();
        assert_eq!(text(&v, &["eventName"]), Some("X"));
        assert_eq!(text(&v, &["userIdentity", "arn"]), Some("a"));
    }

    #[test]
    fn rules_by_service_or_name() {
        assert!(matches!(rule(Some(STS), "AssumeRole"), Some(Kind::Token)));
        assert!(rule(Some("ec2.amazonaws.com"), "DeleteBucketEncryption").is_none());
        assert!(matches!(rule(None, "ConsoleLogin"), Some(Kind::SignIn)));
    }
}
