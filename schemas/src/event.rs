//! The input event (`riskstream.event.v1`).

use std::net::IpAddr;

use serde::{Deserialize, Serialize, Serializer};

use crate::Timestamp;

/// Whether an event is an authentication event or an in-app action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// An event from an identity provider (`kind: "auth"`).
    Auth,
    /// An action inside an application (`kind: "action"`).
    Action,
}

impl EventKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Auth => "auth",
            EventKind::Action => "action",
        }
    }
}

/// What kind of principal acts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalType {
    /// A person (the default).
    #[default]
    Human,
    /// A service account, CI job or API client.
    Workload,
    /// An AI agent acting for a human or on its own.
    Agent,
}

impl PrincipalType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalType::Human => "human",
            PrincipalType::Workload => "workload",
            PrincipalType::Agent => "agent",
        }
    }

    /// Parses a wire name.
    pub fn from_wire(s: &str) -> Option<Self> {
        Some(match s {
            "human" => PrincipalType::Human,
            "workload" => PrincipalType::Workload,
            "agent" => PrincipalType::Agent,
            _ => return None,
        })
    }
}

/// The auth event types of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuthType {
    /// `login.success`
    #[serde(rename = "login.success")]
    LoginSuccess,
    /// `login.failure`
    #[serde(rename = "login.failure")]
    LoginFailure,
    /// `mfa.challenge`
    #[serde(rename = "mfa.challenge")]
    MfaChallenge,
    /// `mfa.success`
    #[serde(rename = "mfa.success")]
    MfaSuccess,
    /// `mfa.failure`
    #[serde(rename = "mfa.failure")]
    MfaFailure,
    /// `mfa.push_denied`
    #[serde(rename = "mfa.push_denied")]
    MfaPushDenied,
    /// `logout`
    #[serde(rename = "logout")]
    Logout,
    /// `token.issued`
    #[serde(rename = "token.issued")]
    TokenIssued,
    /// `token.refreshed`
    #[serde(rename = "token.refreshed")]
    TokenRefreshed,
    /// `token.revoked`
    #[serde(rename = "token.revoked")]
    TokenRevoked,
    /// `device.enrolled`
    #[serde(rename = "device.enrolled")]
    DeviceEnrolled,
    /// `password.changed`
    #[serde(rename = "password.changed")]
    PasswordChanged,
    /// `session.revoked`
    #[serde(rename = "session.revoked")]
    SessionRevoked,
}

impl AuthType {
    /// Every auth type, in contract order.
    pub const ALL: [AuthType; 13] = [
        AuthType::LoginSuccess,
        AuthType::LoginFailure,
        AuthType::MfaChallenge,
        AuthType::MfaSuccess,
        AuthType::MfaFailure,
        AuthType::MfaPushDenied,
        AuthType::Logout,
        AuthType::TokenIssued,
        AuthType::TokenRefreshed,
        AuthType::TokenRevoked,
        AuthType::DeviceEnrolled,
        AuthType::PasswordChanged,
        AuthType::SessionRevoked,
    ];

    /// The wire name, e.g. `login.success`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthType::LoginSuccess => "login.success",
            AuthType::LoginFailure => "login.failure",
            AuthType::MfaChallenge => "mfa.challenge",
            AuthType::MfaSuccess => "mfa.success",
            AuthType::MfaFailure => "mfa.failure",
            AuthType::MfaPushDenied => "mfa.push_denied",
            AuthType::Logout => "logout",
            AuthType::TokenIssued => "token.issued",
            AuthType::TokenRefreshed => "token.refreshed",
            AuthType::TokenRevoked => "token.revoked",
            AuthType::DeviceEnrolled => "device.enrolled",
            AuthType::PasswordChanged => "password.changed",
            AuthType::SessionRevoked => "session.revoked",
        }
    }

    /// Parses a wire name.
    pub fn from_wire(s: &str) -> Option<Self> {
        AuthType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Device trust as the IdP or MDM reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceTrust {
    /// Managed by the organisation (MDM enrolled).
    Managed,
    /// Known to the IdP, not managed.
    Known,
    /// Not known.
    Unknown,
}

impl DeviceTrust {
    /// Parses a wire name.
    pub fn from_wire(s: &str) -> Option<Self> {
        Some(match s {
            "managed" => DeviceTrust::Managed,
            "known" => DeviceTrust::Known,
            "unknown" => DeviceTrust::Unknown,
            _ => return None,
        })
    }
}

/// Who acts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// User, workload or agent id; the partition key.
    pub id: String,
    /// Human, workload or agent.
    #[serde(rename = "type", default)]
    pub kind: PrincipalType,
    /// Role or group, used to learn peer-group baselines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// Where the event came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// Client IP address, v4 or v6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// Raw User-Agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Stable device identifier from the IdP or app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// Device trust as the IdP or MDM says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_trust: Option<DeviceTrust>,
    /// Autonomous system number, where the sender knows better than GeoIP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
}

impl Context {
    fn is_empty(&self) -> bool {
        self.ip.is_none()
            && self.user_agent.is_none()
            && self.device_id.is_none()
            && self.device_trust.is_none()
            && self.asn.is_none()
    }
}

/// Authentication assurance reached by an event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assurance {
    /// NIST SP 800-63 authenticator assurance level, 1 to 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aal: Option<u8>,
    /// OpenID Connect `acr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// OpenID Connect `amr`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
}

/// Where an event came from, when an adapter made it from a vendor's own
/// record (an extension of the contract: fields may be added).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The adapter's format name: `okta`, `auth0`, `entra`, `keycloak`,
    /// `cloudtrail`, `google_workspace`.
    pub format: String,
    /// The vendor's own event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The vendor's own event type.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Contract fields the vendor's record did not carry (`context.ip`,
    /// `session`...): the event keeps what it could map and says what not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

/// An in-app action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    /// Dotted action name, e.g. `data.export`.
    pub name: String,
}

/// The kind-specific part of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventBody {
    /// An auth event and its type.
    Auth(AuthType),
    /// An action event.
    Action(Action),
}

/// A validated input event.
///
/// Built by [`crate::parse_event`], which checks every rule of the contract;
/// serialises back to the contract's JSON form.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Unique event id.
    pub id: String,
    /// Event time.
    pub time: Timestamp,
    /// Tenant; `default` when absent.
    pub tenant: String,
    /// Who acts.
    pub principal: Principal,
    /// Session id; for a workload, the credential or token id.
    pub session: String,
    /// Auth type or action name.
    pub body: EventBody,
    /// What the action touches.
    pub resource: Option<String>,
    /// Free numbers and strings.
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
    /// Where the event came from.
    pub context: Context,
    /// Assurance reached by this event.
    pub auth: Option<Assurance>,
    /// Ground truth in fixtures; never read by the engine. Always an object,
    /// whose `attack` is a boolean and `scenario` a string when present (the
    /// parser checks both, since the evaluation reads them).
    pub labels: Option<serde_json::Value>,
    /// The vendor record this event was mapped from, if an adapter made it.
    pub source: Option<Source>,
}

impl Event {
    /// `auth` or `action`.
    pub fn kind(&self) -> EventKind {
        match self.body {
            EventBody::Auth(_) => EventKind::Auth,
            EventBody::Action(_) => EventKind::Action,
        }
    }

    /// The auth type, for an auth event.
    pub fn auth_type(&self) -> Option<AuthType> {
        match self.body {
            EventBody::Auth(t) => Some(t),
            EventBody::Action(_) => None,
        }
    }

    /// The action name, for an action event.
    pub fn action(&self) -> Option<&str> {
        match &self.body {
            EventBody::Action(a) => Some(&a.name),
            EventBody::Auth(_) => None,
        }
    }

    /// The auth `type` or the action name.
    pub fn name(&self) -> &str {
        match &self.body {
            EventBody::Auth(t) => t.as_str(),
            EventBody::Action(a) => &a.name,
        }
    }

    /// The assurance level this event reached, if it says.
    pub fn aal(&self) -> Option<u8> {
        self.auth.as_ref().and_then(|a| a.aal)
    }

    /// Whether `labels.attack` is true (for evaluation only).
    pub fn is_labelled_attack(&self) -> bool {
        self.labels
            .as_ref()
            .and_then(|l| l.get("attack"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    }

    /// `labels.scenario`, if any (for evaluation only).
    pub fn labelled_scenario(&self) -> Option<&str> {
        self.labels
            .as_ref()
            .and_then(|l| l.get("scenario"))
            .and_then(serde_json::Value::as_str)
    }
}

/// The contract's JSON form of an event, borrowed for serialisation.
#[derive(Serialize)]
struct EventOut<'a> {
    schema: &'static str,
    kind: EventKind,
    id: &'a str,
    time: Timestamp,
    tenant: &'a str,
    principal: &'a Principal,
    session: &'a str,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    auth_type: Option<AuthType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attributes: Option<&'a serde_json::Map<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Context::is_empty")]
    context: &'a Context,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth: Option<&'a Assurance>,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a Source>,
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        EventOut {
            schema: crate::EVENT_SCHEMA_ID,
            kind: self.kind(),
            id: &self.id,
            time: self.time,
            tenant: &self.tenant,
            principal: &self.principal,
            session: &self.session,
            auth_type: self.auth_type(),
            action: self.action(),
            resource: self.resource.as_deref(),
            attributes: self.attributes.as_ref(),
            context: &self.context,
            auth: self.auth.as_ref(),
            labels: self.labels.as_ref(),
            source: self.source.as_ref(),
        }
        .serialize(serializer)
    }
}
