//! The output risk record (`riskstream.risk.v1`).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::{EventKind, PrincipalType, Timestamp};

/// How sensitive an action is, from the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sensitivity {
    /// Reading ordinary screens.
    Low,
    /// Changing one's own data.
    Medium,
    /// Changing what others can see or do: exports, role grants.
    High,
    /// Irreversible or control-plane: payments, disabling controls.
    Critical,
}

impl Sensitivity {
    /// Every class, least sensitive first.
    pub const ALL: [Sensitivity; 4] = [
        Sensitivity::Low,
        Sensitivity::Medium,
        Sensitivity::High,
        Sensitivity::Critical,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Sensitivity::Low => "low",
            Sensitivity::Medium => "medium",
            Sensitivity::High => "high",
            Sensitivity::Critical => "critical",
        }
    }

    /// Position in [`Sensitivity::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Risk level of the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Nothing unusual.
    Low,
    /// Something unusual.
    Medium,
    /// Likely not the principal.
    High,
    /// Almost certainly not the principal.
    Critical,
}

impl Level {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }
}

/// What to do with an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Let it through.
    Allow,
    /// Ask for a stronger proof first (see [`StepUp`]).
    StepUp,
    /// Refuse it.
    Deny,
}

impl Decision {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::StepUp => "step_up",
            Decision::Deny => "deny",
        }
    }

    /// Whether the action is stopped (stepped up or denied).
    pub fn is_intervention(self) -> bool {
        !matches!(self, Decision::Allow)
    }
}

/// How to step up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepUpMethod {
    /// Multi-factor re-authentication (humans), RFC 9470.
    Mfa,
    /// A short-lived, narrowed credential (workloads).
    JitCredential,
    /// A human approves (agents).
    Approval,
}

/// The step-up to ask for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepUp {
    /// `mfa`, `jit_credential` or `approval`.
    pub method: StepUpMethod,
    /// RFC 9470 `acr_values` (for `mfa`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr_values: Option<String>,
    /// RFC 9470 `max_age` in seconds (for `mfa`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u32>,
    /// Scope of the narrowed credential (for `jit_credential`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Lifetime of the narrowed credential or approval, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
}

/// Decision per sensitivity class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decisions {
    /// For `low` actions.
    pub low: Decision,
    /// For `medium` actions.
    pub medium: Decision,
    /// For `high` actions.
    pub high: Decision,
    /// For `critical` actions.
    pub critical: Decision,
}

impl Decisions {
    /// The decision for a class.
    pub fn get(&self, s: Sensitivity) -> Decision {
        match s {
            Sensitivity::Low => self.low,
            Sensitivity::Medium => self.medium,
            Sensitivity::High => self.high,
            Sensitivity::Critical => self.critical,
        }
    }
}

/// The principal as the record names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordPrincipal {
    /// Principal id.
    pub id: String,
    /// Human, workload or agent.
    #[serde(rename = "type")]
    pub kind: PrincipalType,
}

/// The event that produced a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// Input event id.
    pub event_id: String,
    /// `auth` or `action`.
    pub kind: EventKind,
    /// Auth `type` or action name.
    pub name: String,
    /// Sensitivity class from the policy.
    pub sensitivity: Sensitivity,
}

/// Assurance of the session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssuranceState {
    /// Highest NIST AAL reached in the session that is still fresh (0: none).
    pub aal: u8,
    /// Time of the last aal ≥ 2 event in the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_strong_auth: Option<Timestamp>,
}

/// One detector's contribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// Detector name, e.g. `geo_velocity`.
    pub detector: Cow<'static, str>,
    /// Stable signal code, e.g. `impossible_travel`.
    pub code: Cow<'static, str>,
    /// Contribution to the score's log-odds (natural log of a likelihood ratio).
    pub weight: f64,
    /// What a person needs to understand the signal.
    pub evidence: serde_json::Value,
}

/// Engine and policy that produced a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// e.g. `riskstream 0.1.0`.
    pub version: Cow<'static, str>,
    /// `sha256:` of the policy file.
    pub policy: String,
}

/// A per-session risk record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RiskRecord {
    /// Always `riskstream.risk.v1`.
    pub schema: Cow<'static, str>,
    /// Tenant.
    pub tenant: String,
    /// Who acted.
    pub principal: RecordPrincipal,
    /// Session id: the key on `session-risk`.
    pub session: String,
    /// Per-session sequence, gap-free in input order, from 1.
    pub seq: u64,
    /// Event time of the trigger.
    pub time: Timestamp,
    /// The event that produced this record.
    pub trigger: Trigger,
    /// 0 to 100.
    pub score: u8,
    /// Risk level.
    pub level: Level,
    /// For the trigger itself.
    pub decision: Decision,
    /// The step-up to ask for: the trigger's when `decision` is `step_up`,
    /// otherwise that of the least sensitive class whose decision is `step_up`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_up: Option<StepUp>,
    /// What the session may do next, per class, until the next record.
    pub decisions: Decisions,
    /// Assurance of the session.
    pub assurance: AssuranceState,
    /// Every contributing detector.
    pub signals: Vec<Signal>,
    /// Engine and policy version.
    pub model: ModelInfo,
}
