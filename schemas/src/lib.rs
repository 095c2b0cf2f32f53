//! The riskstream wire contract (`CONTRACT.md`, v1) as Rust types.
//!
//! Identity providers and applications send [`Event`]s; enforcement points
//! receive [`RiskRecord`]s. The JSON Schema files that implement the same
//! contract live in `schemas/json/` and are exposed as [`EVENT_SCHEMA`] and
//! [`RISK_SCHEMA`]; the tests validate every committed fixture against them.
//!
//! # Layout
//!
//! - [`event`]: the input event, its enums and its serialised form;
//! - `parse`: bytes to a validated [`Event`] or a typed [`Rejection`] that
//!   names the field and the reason;
//! - [`record`]: the output risk record;
//! - `timestamp`: event time as an integer of milliseconds, parsed from and
//!   formatted to RFC 3339.

pub mod event;
mod parse;
pub mod record;
mod timestamp;

pub use event::{
    Action, Assurance, AuthType, Context, DeviceTrust, Event, EventBody, EventKind, Principal,
    PrincipalType, Source,
};
pub use parse::{ParseLimits, RejectReason, Rejection, parse_event, parse_event_str};
pub use record::{
    AssuranceState, Decision, Decisions, Level, ModelInfo, RecordPrincipal, RiskRecord,
    Sensitivity, Signal, StepUp, StepUpMethod, Trigger,
};
pub use timestamp::{Timestamp, TimestampError};

/// The `schema` value of every input event.
pub const EVENT_SCHEMA_ID: &str = "riskstream.event.v1";
/// The `schema` value of every risk record.
pub const RISK_SCHEMA_ID: &str = "riskstream.risk.v1";
/// JSON Schema (draft 2020-12) of the input event.
pub const EVENT_SCHEMA: &str = include_str!("../json/event.v1.schema.json");
/// JSON Schema (draft 2020-12) of the risk record.
pub const RISK_SCHEMA: &str = include_str!("../json/risk.v1.schema.json");
