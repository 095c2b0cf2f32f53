//! Identity-provider adapters: a vendor's native record in, contract events
//! out. No I/O, no clock: the same record always maps to the same events.
//!
//! Each adapter keeps the vendor's ids, IP, user agent, device id, session
//! id, MFA outcome and assurance (amr, acr) wherever the vendor has them, and
//! says in the event's `source.missing` which contract fields it could not
//! fill. A record that does not map at all (a type with no bearing on
//! authentication risk, no actor, no time) is an [`Unmapped`] value with its
//! reason, for the dead-letter topic or the rejects file: nothing is dropped
//! silently.
//!
//! # Layout
//!
//! - [`Format`] and [`normalize`]: the entry point;
//! - `draft`: the builder every adapter fills, which validates the result
//!   against the contract;
//! - one module per vendor: `okta`, `auth0`, `entra`, `keycloak`,
//!   `cloudtrail`, `google_workspace`.

mod auth0;
mod cloudtrail;
mod draft;
mod entra;
mod google_workspace;
mod keycloak;
mod okta;

use std::fmt;
use std::str::FromStr;

use riskstream_schemas::{Event, ParseLimits, parse_event};

pub use draft::aal_from_amr;

/// A native event format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// riskstream's own contract (`riskstream.event.v1`).
    Contract,
    /// Okta System Log events.
    Okta,
    /// Auth0 log events.
    Auth0,
    /// Microsoft Entra ID sign-in and audit logs.
    Entra,
    /// Keycloak events (event-listener JSON or server log lines).
    Keycloak,
    /// AWS CloudTrail records.
    CloudTrail,
    /// Google Workspace Reports API activities.
    GoogleWorkspace,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 7] = [
        Format::Contract,
        Format::Okta,
        Format::Auth0,
        Format::Entra,
        Format::Keycloak,
        Format::CloudTrail,
        Format::GoogleWorkspace,
    ];

    /// The configuration name, e.g. `google_workspace`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Contract => "contract",
            Format::Okta => "okta",
            Format::Auth0 => "auth0",
            Format::Entra => "entra",
            Format::Keycloak => "keycloak",
            Format::CloudTrail => "cloudtrail",
            Format::GoogleWorkspace => "google_workspace",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that riskstream does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown format {0:?}; known: contract, okta, auth0, entra, keycloak, cloudtrail, google_workspace"
)]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

/// Why a native record did not become an event. The codes are stable: they
/// are the `reason` of the rejects file and the `error` header of the DLQ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnmappedReason {
    /// Not JSON (or, for Keycloak log lines, not an event line).
    NotJson,
    /// JSON, but not a record of this vendor's format.
    NotRecognised,
    /// A record of this vendor whose type has no bearing on authentication
    /// risk (or that riskstream does not map yet); its type is named.
    UnmappedType,
    /// No user, workload or agent to attribute the record to.
    NoActor,
    /// No usable event time.
    NoTime,
    /// The mapped event failed the contract's validation.
    Invalid,
}

impl UnmappedReason {
    /// The stable code.
    pub fn as_str(self) -> &'static str {
        match self {
            UnmappedReason::NotJson => "not_json",
            UnmappedReason::NotRecognised => "not_recognised",
            UnmappedReason::UnmappedType => "unmapped_type",
            UnmappedReason::NoActor => "no_actor",
            UnmappedReason::NoTime => "no_time",
            UnmappedReason::Invalid => "invalid",
        }
    }
}

impl fmt::Display for UnmappedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A native record that did not map, with its reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{format} record not mapped ({reason}){}: {detail}", vendor_type.as_ref().map(|t| format!(" [{t}]")).unwrap_or_default())]
pub struct Unmapped {
    /// The format that was tried.
    pub format: Format,
    /// Stable reason code.
    pub reason: UnmappedReason,
    /// The vendor's own type of the record, when it has one.
    pub vendor_type: Option<String>,
    /// What was wrong, for a person.
    pub detail: String,
}

impl Unmapped {
    pub(crate) fn new(
        format: Format,
        reason: UnmappedReason,
        vendor_type: Option<&str>,
        detail: impl Into<String>,
    ) -> Self {
        Unmapped {
            format,
            reason,
            vendor_type: vendor_type.map(str::to_owned),
            detail: detail.into(),
        }
    }
}

/// Settings that apply to every record of an input.
#[derive(Clone, Debug, Default)]
pub struct AdapterOptions {
    /// Tenant to stamp on every event, overriding what the vendor's record
    /// says (Okta org, Entra tenant id, AWS account, Google customer id).
    pub tenant: Option<String>,
}

/// Maps one native record (one JSON document, or one Keycloak log line) to
/// contract events: usually one, several for a Google Workspace activity
/// with several events, never zero (a record that maps to nothing is
/// [`Unmapped`]).
pub fn normalize(
    format: Format,
    record: &[u8],
    opts: &AdapterOptions,
) -> Result<Vec<Event>, Unmapped> {
    match format {
        Format::Contract => parse_event(record, ParseLimits::default())
            .map(|e| vec![e])
            .map_err(|r| Unmapped::new(format, UnmappedReason::Invalid, None, r.to_string())),
        Format::Keycloak => keycloak::normalize(record, opts),
        _ => {
            let value: serde_json::Value = serde_json::from_slice(record)
                .map_err(|e| Unmapped::new(format, UnmappedReason::NotJson, None, e.to_string()))?;
            match format {
                Format::Okta => okta::normalize(&value, opts),
                Format::Auth0 => auth0::normalize(&value, opts),
                Format::Entra => entra::normalize(&value, opts),
                Format::CloudTrail => cloudtrail::normalize(&value, opts),
                Format::GoogleWorkspace => google_workspace::normalize(&value, opts),
                Format::Contract | Format::Keycloak => unreachable_format(format),
            }
        }
    }
}

/// One outcome per native record, never none: its contract event, or why it
/// does not map. A single document gives one outcome (or, for a Google
/// Workspace activity, one per event it holds); a CloudTrail log file gives
/// one per record. This is what the pipeline uses, so that a record that
/// does not map inside a file that partly does is reported, not lost;
/// [`normalize`] is the view with only the events.
pub fn normalize_items(
    format: Format,
    record: &[u8],
    opts: &AdapterOptions,
) -> Vec<Result<Event, Unmapped>> {
    let multi = match format {
        Format::CloudTrail | Format::GoogleWorkspace => {
            serde_json::from_slice::<serde_json::Value>(record).ok()
        }
        _ => None,
    };
    match (format, multi) {
        (Format::CloudTrail, Some(v)) => cloudtrail::normalize_items(&v, opts),
        (Format::GoogleWorkspace, Some(v)) => google_workspace::normalize_items(&v, opts),
        _ => match normalize(format, record, opts) {
            Ok(events) => events.into_iter().map(Ok).collect(),
            Err(u) => vec![Err(u)],
        },
    }
}

fn unreachable_format(format: Format) -> Result<Vec<Event>, Unmapped> {
    Err(Unmapped::new(
        format,
        UnmappedReason::NotRecognised,
        None,
        "dispatched to the wrong adapter",
    ))
}
