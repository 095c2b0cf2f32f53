//! The detectors. Each reads the event, what GeoIP says of its address and
//! the principal's and session's state, and adds [`Finding`]s; none of them
//! changes state (the engine learns after scoring, see `engine.rs`).

pub(crate) mod action_sequence;
pub(crate) mod anonymizer;
pub(crate) mod attack_source;
pub(crate) mod auth_failures;
pub(crate) mod client;
pub(crate) mod device;
pub(crate) mod geo_velocity;
pub(crate) mod machine_baseline;
pub(crate) mod session_context;

use serde_json::Value;

/// Every signal code the engine can emit. The names are stable: they are
/// the `code` field of the contract's signals and the keys of `[weights]`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SignalCode {
    ImpossibleTravel,
    NewCountry,
    UnfamiliarLocation,
    UnfamiliarNetwork,
    UnfamiliarAddress,
    TorExit,
    AnonymousVpn,
    PublicProxy,
    ResidentialProxy,
    HostingProvider,
    NewDevice,
    KnownDevice,
    UntrustedDevice,
    TaintedDevice,
    RiskyEnrolment,
    SessionNetworkChanged,
    SessionUserAgentChanged,
    SessionDeviceChanged,
    SessionDeviceMissing,
    SessionLongLived,
    AssuranceStale,
    FailedLoginBurst,
    LoginAfterFailures,
    MfaPushDenied,
    MfaPushFatigue,
    UnusualAction,
    UnusualTransition,
    SensitiveBurst,
    AttributeOutlier,
    NewSourceNetwork,
    NewUserAgent,
    CredentialStuffingSource,
    PasswordSpraySource,
    NewDeviceType,
    NewPlatform,
    NewBrowser,
    NewBrowserVersion,
}

impl SignalCode {
    pub(crate) const COUNT: usize = 37;
    pub(crate) const ALL: [SignalCode; Self::COUNT] = [
        SignalCode::ImpossibleTravel,
        SignalCode::NewCountry,
        SignalCode::UnfamiliarLocation,
        SignalCode::UnfamiliarNetwork,
        SignalCode::UnfamiliarAddress,
        SignalCode::TorExit,
        SignalCode::AnonymousVpn,
        SignalCode::PublicProxy,
        SignalCode::ResidentialProxy,
        SignalCode::HostingProvider,
        SignalCode::NewDevice,
        SignalCode::KnownDevice,
        SignalCode::UntrustedDevice,
        SignalCode::TaintedDevice,
        SignalCode::RiskyEnrolment,
        SignalCode::SessionNetworkChanged,
        SignalCode::SessionUserAgentChanged,
        SignalCode::SessionDeviceChanged,
        SignalCode::SessionDeviceMissing,
        SignalCode::SessionLongLived,
        SignalCode::AssuranceStale,
        SignalCode::FailedLoginBurst,
        SignalCode::LoginAfterFailures,
        SignalCode::MfaPushDenied,
        SignalCode::MfaPushFatigue,
        SignalCode::UnusualAction,
        SignalCode::UnusualTransition,
        SignalCode::SensitiveBurst,
        SignalCode::AttributeOutlier,
        SignalCode::NewSourceNetwork,
        SignalCode::NewUserAgent,
        SignalCode::CredentialStuffingSource,
        SignalCode::PasswordSpraySource,
        SignalCode::NewDeviceType,
        SignalCode::NewPlatform,
        SignalCode::NewBrowser,
        SignalCode::NewBrowserVersion,
    ];

    /// The stable code.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SignalCode::ImpossibleTravel => "impossible_travel",
            SignalCode::NewCountry => "new_country",
            SignalCode::UnfamiliarLocation => "unfamiliar_location",
            SignalCode::UnfamiliarNetwork => "unfamiliar_network",
            SignalCode::UnfamiliarAddress => "unfamiliar_address",
            SignalCode::TorExit => "tor_exit",
            SignalCode::AnonymousVpn => "anonymous_vpn",
            SignalCode::PublicProxy => "public_proxy",
            SignalCode::ResidentialProxy => "residential_proxy",
            SignalCode::HostingProvider => "hosting_provider",
            SignalCode::NewDevice => "new_device",
            SignalCode::KnownDevice => "known_device",
            SignalCode::UntrustedDevice => "untrusted_device",
            SignalCode::TaintedDevice => "tainted_device",
            SignalCode::RiskyEnrolment => "risky_enrolment",
            SignalCode::SessionNetworkChanged => "session_network_changed",
            SignalCode::SessionUserAgentChanged => "session_user_agent_changed",
            SignalCode::SessionDeviceChanged => "session_device_changed",
            SignalCode::SessionDeviceMissing => "session_device_missing",
            SignalCode::SessionLongLived => "session_long_lived",
            SignalCode::AssuranceStale => "assurance_stale",
            SignalCode::FailedLoginBurst => "failed_login_burst",
            SignalCode::LoginAfterFailures => "login_after_failures",
            SignalCode::MfaPushDenied => "mfa_push_denied",
            SignalCode::MfaPushFatigue => "mfa_push_fatigue",
            SignalCode::UnusualAction => "unusual_action",
            SignalCode::UnusualTransition => "unusual_transition",
            SignalCode::SensitiveBurst => "sensitive_burst",
            SignalCode::AttributeOutlier => "attribute_outlier",
            SignalCode::NewSourceNetwork => "new_source_network",
            SignalCode::NewUserAgent => "new_user_agent",
            SignalCode::CredentialStuffingSource => "credential_stuffing_source",
            SignalCode::PasswordSpraySource => "password_spray_source",
            SignalCode::NewDeviceType => "new_device_type",
            SignalCode::NewPlatform => "new_platform",
            SignalCode::NewBrowser => "new_browser",
            SignalCode::NewBrowserVersion => "new_browser_version",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<SignalCode> {
        SignalCode::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The detector that emits this code.
    pub(crate) fn detector(self) -> &'static str {
        use SignalCode::*;
        match self {
            ImpossibleTravel | NewCountry | UnfamiliarLocation | UnfamiliarNetwork
            | UnfamiliarAddress => "geo_velocity",
            TorExit | AnonymousVpn | PublicProxy | ResidentialProxy | HostingProvider => {
                "anonymizer"
            }
            NewDevice | KnownDevice | UntrustedDevice | TaintedDevice | RiskyEnrolment => "device",
            SessionNetworkChanged
            | SessionUserAgentChanged
            | SessionDeviceChanged
            | SessionDeviceMissing
            | SessionLongLived
            | AssuranceStale => "session_context",
            FailedLoginBurst | LoginAfterFailures | MfaPushDenied | MfaPushFatigue => {
                "auth_failures"
            }
            UnusualAction | UnusualTransition | SensitiveBurst | AttributeOutlier => {
                "action_sequence"
            }
            NewSourceNetwork | NewUserAgent => "machine_baseline",
            CredentialStuffingSource | PasswordSpraySource => "attack_source",
            NewDeviceType | NewPlatform | NewBrowser | NewBrowserVersion => "client",
        }
    }

    /// Whether a clean strong authentication explains the signal away.
    ///
    /// A fresh MFA proves the factor: it explains a new device, a new place
    /// or a few typos. It does not explain what suggests the factor itself is
    /// compromised or the session is used by someone else: push fatigue,
    /// travel no one can make, anonymizers, a session whose client changed.
    pub(crate) fn mitigable(self) -> bool {
        use SignalCode::*;
        matches!(
            self,
            NewCountry
                | UnfamiliarLocation
                | UnfamiliarNetwork
                | UnfamiliarAddress
                | NewDevice
                | UntrustedDevice
                | NewDeviceType
                | NewPlatform
                | NewBrowser
                | NewBrowserVersion
                | FailedLoginBurst
                | LoginAfterFailures
                | SessionLongLived
                | AssuranceStale
                | CredentialStuffingSource
                | PasswordSpraySource
        )
    }

    /// Whether the signal stays with the session once seen. Signals about
    /// the moment (session age, a denial, a failure, one action's
    /// unusualness) are recomputed instead.
    pub(crate) fn sticky(self) -> bool {
        use SignalCode::*;
        !matches!(
            self,
            SessionLongLived | AssuranceStale | MfaPushDenied | FailedLoginBurst
        ) && !self.behavioural()
    }

    /// Whether the signal is about what the principal does rather than who
    /// or where it is. A fresh strong authentication proves who is there,
    /// not that what they do is normal (the insider passes MFA): such a
    /// signal is judged on its own, never satisfied by an earlier step-up.
    pub(crate) fn behavioural(self) -> bool {
        use SignalCode::*;
        matches!(
            self,
            UnusualAction | UnusualTransition | SensitiveBurst | AttributeOutlier
        )
    }
}

/// One detector observation, before weighting.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Finding {
    pub code: SignalCode,
    pub evidence: Value,
    /// Multiplier on the policy weight (cold start scales novelty down).
    pub scale: f64,
}

impl Finding {
    pub(crate) fn new(code: SignalCode, evidence: Value) -> Finding {
        Finding {
            code,
            evidence,
            scale: 1.0,
        }
    }
}

/// Whether a code says something is new to the principal: such evidence
/// is only as strong as the history it is new against.
pub(crate) fn is_novelty(code: SignalCode) -> bool {
    matches!(
        code,
        SignalCode::NewCountry
            | SignalCode::UnfamiliarLocation
            | SignalCode::UnfamiliarNetwork
            | SignalCode::UnfamiliarAddress
            | SignalCode::NewDevice
            | SignalCode::NewSourceNetwork
            | SignalCode::NewUserAgent
            | SignalCode::NewDeviceType
            | SignalCode::NewPlatform
            | SignalCode::NewBrowser
            | SignalCode::NewBrowserVersion
    )
}

/// The level of the context hierarchy a novelty code is about.
pub(crate) fn context_level(code: SignalCode) -> Option<crate::state::ContextLevel> {
    use crate::state::ContextLevel;
    match code {
        SignalCode::UnfamiliarNetwork => Some(ContextLevel::Network),
        SignalCode::UnfamiliarAddress => Some(ContextLevel::Address),
        SignalCode::NewCountry => Some(ContextLevel::Country),
        SignalCode::UnfamiliarLocation => Some(ContextLevel::Location),
        SignalCode::NewDevice => Some(ContextLevel::Device),
        SignalCode::NewDeviceType => Some(ContextLevel::DeviceType),
        SignalCode::NewPlatform => Some(ContextLevel::Platform),
        SignalCode::NewBrowser => Some(ContextLevel::Browser),
        SignalCode::NewBrowserVersion => Some(ContextLevel::Agent),
        _ => None,
    }
}

/// Whether a code is about the device itself being new or unknown, which
/// every enrolment of a new device shows by definition (its client too).
pub(crate) fn is_device_novelty(code: SignalCode) -> bool {
    matches!(
        code,
        SignalCode::NewDevice
            | SignalCode::UntrustedDevice
            | SignalCode::KnownDevice
            | SignalCode::NewDeviceType
            | SignalCode::NewPlatform
            | SignalCode::NewBrowser
            | SignalCode::NewBrowserVersion
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_names_are_the_stable_codes() {
        for code in SignalCode::ALL {
            let json = serde_json::to_value(code).unwrap_or_default();
            assert_eq!(json.as_str(), Some(code.name()));
            assert_eq!(SignalCode::from_name(code.name()), Some(code));
        }
    }
}
