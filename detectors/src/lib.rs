//! The riskstream scoring engine: no I/O, no clock, deterministic.
//!
//! The same events in give the same risk records out, live or replayed: every
//! window and age comes from event time, state lives in an [`Engine`] that the
//! caller owns, and nothing here reads files, sockets or the wall clock. The
//! shell (the `riskstream` crate) reads GeoIP databases and policy files and
//! hands their bytes to [`GeoIp::from_bytes`] and [`Policy::from_toml_str`].
//!
//! # Layout
//!
//! - [`Engine`]: `handle_event(&Event) -> Result<RiskRecord, Rejection>`,
//!   `poll_timeout()` / `handle_timeout(now)` for idle expiry;
//! - [`EngineConfig`]: the frozen, shared part (policy, GeoIP, limits);
//! - [`Policy`]: sensitivity classes, thresholds, step-up methods, signal
//!   weights, loaded from TOML and validated;
//! - [`GeoIp`]: city, ASN and anonymous-IP lookups over MaxMind DB bytes;
//! - `detectors`: one module per detector (`geo_velocity`, `anonymizer`,
//!   `device`, `session_context`, `auth_failures`, `machine_baseline`,
//!   `action_sequence`, `attack_source`), each adding [`Signal`]s;
//! - `state`: per-principal and per-session state, bounded by an LRU cap and
//!   idle expiry;
//! - `sources`: the tenant-wide attack-source table (which addresses and
//!   networks logins fail from across principals), fed by
//!   [`IpObservation`]s that [`Engine::drain_ip_observations`] hands to a
//!   shell and [`Engine::apply_remote_ip_observation`] takes from other
//!   instances;
//! - [`PrincipalSnapshot`], [`NetworksSnapshot`]: that state serialised, for
//!   a changelog from which another instance restores it.
//!
//! [`Signal`]: riskstream_schemas::Signal

mod detectors;
mod engine;
mod geo;
mod policy;
mod score;
mod snapshot;
mod sources;
mod state;

pub use engine::{Engine, EngineConfig, EngineStats, StateLimits};
pub use geo::{GeoError, GeoIp, IpInfo, Location};
pub use policy::{DEFAULT_POLICY_TOML, Policy, PolicyError};
pub use snapshot::{
    NetworksSnapshot, PrincipalSnapshot, SNAPSHOT_VERSION, SessionView, SnapshotError,
};
pub use sources::{IpObservation, IpObservationConfig, LoginOutcome};

/// Version string written into every record's `model.version`.
pub const MODEL_VERSION: &str = concat!("riskstream ", env!("CARGO_PKG_VERSION"));
