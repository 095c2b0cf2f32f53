//! The policy: sensitivity classes, thresholds, step-up methods, weights.
//!
//! Loaded from TOML in two steps (STYLE.md 5): [`RawPolicy`] mirrors the file
//! with `deny_unknown_fields`; [`Policy::from_toml_str`] checks the rules
//! across fields and builds the matchers, with errors that name the value.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use globset::{Glob, GlobMatcher};
use riskstream_schemas::{PrincipalType, Sensitivity, StepUp, StepUpMethod};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::detectors::SignalCode;

/// The policy shipped with riskstream (`detectors/policy/default.toml`).
pub const DEFAULT_POLICY_TOML: &str = include_str!("../policy/default.toml");

/// A policy file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Not valid TOML, or a field of the wrong type or an unknown field.
    #[error("policy is not valid: {0}")]
    Toml(#[from] toml::de::Error),
    /// A glob that does not compile.
    #[error("policy: bad pattern {pattern:?} in [[{table}]]: {source}")]
    Pattern {
        /// `actions` or `auth`.
        table: &'static str,
        /// The pattern.
        pattern: String,
        /// What globset said.
        #[source]
        source: globset::Error,
    },
    /// A value outside its range, or rules that contradict each other.
    #[error("policy: {0}")]
    Invalid(String),
}

/// `[scoring]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScoring {
    /// Prior log-odds that an event belongs to an attacker, before evidence.
    base_log_odds: f64,
    /// Score at which the level becomes medium, high, critical.
    level_medium: u8,
    /// See `level_medium`.
    level_high: u8,
    /// See `level_medium`.
    level_critical: u8,
}

/// `[classes.<class>]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClass {
    /// Score at or above which an action of this class is stepped up.
    step_up_at: u8,
    /// Score at or above which it is denied (101: never).
    deny_at: u8,
    /// A strong authentication (aal ≥ 2) this recent, with no new risk since,
    /// satisfies a step-up: it is not asked again. Seconds.
    fresh_auth_seconds: u32,
    /// Step up when the session's assurance is below this level.
    #[serde(default)]
    min_aal: Option<u8>,
    /// Step up when the last strong authentication is older than this (humans).
    #[serde(default)]
    max_auth_age_seconds: Option<u32>,
    /// RFC 9470 `acr_values` to ask for when stepping up a human.
    acr_values: String,
}

/// `[step_up.workload]` and `[step_up.agent]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMachineStepUp {
    /// `jit_credential` or `approval`.
    method: StepUpMethod,
    /// Scope of a narrowed credential.
    #[serde(default)]
    scope: Option<String>,
    /// Lifetime of the credential or approval, seconds.
    ttl: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStepUp {
    workload: RawMachineStepUp,
    agent: RawMachineStepUp,
}

/// One `[[actions]]` or `[[auth]]` rule; the first match wins.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    /// Glob over the dotted name (`payment.*`, `tool.invoke.shell`).
    #[serde(rename = "match")]
    pattern: String,
    /// Sensitivity class of matching names.
    class: Sensitivity,
}

/// Parameters of the detectors.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct DetectorParams {
    /// Fastest plausible travel, km/h. Commercial jets cruise at 800–950 km/h;
    /// 1000 leaves room for time-zone rounding without admitting teleports.
    pub max_travel_kmh: f64,
    /// Distances below this, after subtracting accuracy radii, never count as
    /// travel (metro-area IP churn), km.
    pub min_travel_km: f64,
    /// Locations, countries, networks and devices remembered per principal.
    pub history_size: usize,
    /// Context (devices, networks, address ranges, countries, places,
    /// clients) last seen longer ago than this is forgotten, days of event
    /// time: a laptop handed back or a flat moved out of stops vouching.
    pub history_max_age_days: u32,
    /// Distinct principals that must have authenticated strongly and cleanly
    /// from a network before the tenant treats it as its own infrastructure
    /// (office, VPN egress), whose geolocation does not count as travel.
    pub shared_network_principals: usize,
    /// Window for failed-login bursts, seconds.
    pub failure_window_seconds: u32,
    /// Failures in the window that make a burst.
    pub failure_burst: u32,
    /// Window in which push denials count towards fatigue, seconds.
    pub push_window_seconds: u32,
    /// Denials in the window before a success that make fatigue.
    pub push_denials: u32,
    /// A session older than this is long-lived, seconds.
    pub max_session_age_seconds: u32,
    /// Clean strong authentications after which a principal's history is
    /// mature. Before, novelty signals (new device, country, place, network)
    /// count in proportion: against one login, almost everything is new.
    pub history_maturity: u32,
    /// Evidence (sum of log-likelihood-ratio weights) in the session, other
    /// than the device's own novelty, at or above which enrolling a device is
    /// risky: enrolment is how attackers persist, so the bar is low.
    pub risky_enrolment_evidence: f64,
    /// Pseudo-actions of the role's distribution added to a principal's own
    /// counts (Dirichlet prior strength): how many actions of its own a
    /// principal needs before its habits outweigh its role's.
    pub action_prior_strength: f64,
    /// Pseudo-actions of the tenant's distribution added to a role's counts.
    pub peer_prior_strength: f64,
    /// Pseudo-transitions of the principal's own action distribution added
    /// to its transition counts from one action.
    pub transition_prior_strength: f64,
    /// Action counts of a principal are halved when their total passes this
    /// (exponential forgetting of old habits; peer groups use 1000 times it).
    pub action_history: u32,
    /// Window in which sensitive actions count towards a burst, seconds.
    pub burst_window_seconds: u32,
    /// Share of an attacker's actions that are sensitive, the alternative
    /// hypothesis of the burst likelihood ratio.
    pub burst_attack_share: f64,
    /// Width, in nats of magnitude (ln of max/min), over which an attacker's
    /// numeric attribute value is taken as spread evenly.
    pub attribute_log_range: f64,
    /// Smallest standard deviation of a log-normal attribute baseline.
    pub attribute_min_sd: f64,
    /// Pseudo-observations of the role's attribute statistics added to a
    /// principal's own.
    pub attribute_prior_count: f64,
    /// Observations a role (or, without one, the principal) needs before
    /// its attribute statistics are a baseline at all.
    pub attribute_min_peer_count: f64,
    /// How long an address's failures on other principals count against
    /// it (`credential_stuffing_source`), seconds.
    pub source_window_seconds: u32,
    /// Other principals that must have failed from one address in the
    /// window, and not logged in from it since, for a login from it to be
    /// from a credential-stuffing source.
    pub source_principals: u32,
    /// Window of the network-level count (`password_spray_source`),
    /// seconds.
    pub spray_window_seconds: u32,
    /// Other principals that must have failed from one AS in the window,
    /// without logging in since, and outnumber those that logged in from it,
    /// for a login from it to be from a password-spraying source.
    pub spray_principals: u32,
    /// Population rates of a clean login bringing a new AS, a new address
    /// range of a known AS, a new country, a new place in a known country,
    /// a new device: the rates the fixed weights of `unfamiliar_network`,
    /// `unfamiliar_address`, `new_country`, `unfamiliar_location` and
    /// `new_device` are for. A principal whose own rate differs gets
    /// `ln(population rate / own rate)` added (Freeman et al.'s per-user
    /// likelihood).
    pub novelty_rates: [f64; 5],
    /// The same for the client hierarchy: device type, OS given the device
    /// type, browser given the OS, exact user agent given the browser: the
    /// rates `new_device_type`, `new_platform`, `new_browser` and
    /// `new_browser_version` are for.
    pub client_novelty_rates: [f64; 4],
    /// Multiplier on a client signal that comes with a device new to the
    /// principal: a new device brings its own client for users as for
    /// attackers, so the client says less than when the device is known
    /// or absent. In [0, 1].
    pub client_with_new_device: f64,
    /// Pseudo-logins of the role's novelty rates added to a principal's own
    /// counts (Beta prior strength).
    pub context_prior_strength: f64,
    /// Pseudo-logins of the population rates added to a role's counts.
    pub context_peer_prior_strength: f64,
    /// Evidence (nats) at or above which a behavioural signal is reported.
    pub behaviour_min_evidence: f64,
    /// Most evidence (nats) one behavioural signal may contribute.
    pub behaviour_max_evidence: f64,
}

impl DetectorParams {
    /// `history_max_age_days` in milliseconds.
    pub(crate) fn history_max_age_ms(&self) -> i64 {
        i64::from(self.history_max_age_days) * 24 * 3600 * 1000
    }

    /// The population's rate of novelty at `level`.
    pub(crate) fn novelty_rate(&self, level: crate::state::ContextLevel) -> f64 {
        let l = level as usize;
        match self.novelty_rates.get(l) {
            Some(r) => *r,
            None => self.client_novelty_rates[l - self.novelty_rates.len()],
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    /// Free text naming this policy.
    name: String,
    scoring: RawScoring,
    classes: BTreeMap<Sensitivity, RawClass>,
    step_up: RawStepUp,
    detectors: DetectorParams,
    /// Log-likelihood-ratio weight of each signal code.
    weights: BTreeMap<String, f64>,
    /// Class of names that no rule matches.
    default_class: Sensitivity,
    actions: Vec<RawRule>,
    auth: Vec<RawRule>,
}

/// Thresholds and step-up of one sensitivity class.
#[derive(Debug, Clone)]
pub(crate) struct ClassPolicy {
    pub step_up_at: u8,
    pub deny_at: u8,
    pub fresh_auth_ms: i64,
    pub min_aal: Option<u8>,
    pub max_auth_age_ms: Option<i64>,
    pub acr_values: String,
}

#[derive(Debug)]
struct Rule {
    matcher: GlobMatcher,
    class: Sensitivity,
}

/// A validated policy, shared by every engine (`Arc<EngineConfig>`).
#[derive(Debug)]
pub struct Policy {
    name: String,
    hash: String,
    pub(crate) base_log_odds: f64,
    levels: [u8; 3],
    pub(crate) classes: [ClassPolicy; 4],
    workload: RawMachineStepUp,
    agent: RawMachineStepUp,
    pub(crate) detectors: DetectorParams,
    weights: [f64; SignalCode::COUNT],
    default_class: Sensitivity,
    actions: Vec<Rule>,
    auth: Vec<Rule>,
}

fn compile(table: &'static str, raw: Vec<RawRule>) -> Result<Vec<Rule>, PolicyError> {
    raw.into_iter()
        .map(|r| {
            let glob = Glob::new(&r.pattern).map_err(|source| PolicyError::Pattern {
                table,
                pattern: r.pattern.clone(),
                source,
            })?;
            Ok(Rule {
                matcher: glob.compile_matcher(),
                class: r.class,
            })
        })
        .collect()
}

impl Policy {
    /// The default policy.
    ///
    /// # Errors
    /// Never in a released build: a test loads it.
    pub fn default_policy() -> Result<Policy, PolicyError> {
        Policy::from_toml_str(DEFAULT_POLICY_TOML)
    }

    /// Parses and validates a policy file's text.
    pub fn from_toml_str(text: &str) -> Result<Policy, PolicyError> {
        let raw: RawPolicy = toml::from_str(text)?;
        let s = &raw.scoring;
        if !(s.base_log_odds.is_finite() && (-30.0..=0.0).contains(&s.base_log_odds)) {
            return Err(PolicyError::Invalid(format!(
                "scoring.base_log_odds = {} must be between -30 and 0",
                s.base_log_odds
            )));
        }
        if !(s.level_medium < s.level_high
            && s.level_high < s.level_critical
            && s.level_critical <= 100)
        {
            return Err(PolicyError::Invalid(format!(
                "scoring levels must rise: level_medium = {}, level_high = {}, level_critical = {} (at most 100)",
                s.level_medium, s.level_high, s.level_critical
            )));
        }
        let mut classes = Vec::with_capacity(4);
        for class in Sensitivity::ALL {
            let c = raw.classes.get(&class).ok_or_else(|| {
                PolicyError::Invalid(format!("[classes.{}] is missing", class.as_str()))
            })?;
            if c.step_up_at > 101 || c.deny_at > 101 || c.step_up_at > c.deny_at {
                return Err(PolicyError::Invalid(format!(
                    "[classes.{}] step_up_at = {} and deny_at = {}: both at most 101 (never), and step_up_at <= deny_at",
                    class.as_str(),
                    c.step_up_at,
                    c.deny_at
                )));
            }
            if let Some(aal) = c.min_aal
                && !(1..=3).contains(&aal)
            {
                return Err(PolicyError::Invalid(format!(
                    "[classes.{}] min_aal = {aal} must be 1, 2 or 3",
                    class.as_str()
                )));
            }
            classes.push(ClassPolicy {
                step_up_at: c.step_up_at,
                deny_at: c.deny_at,
                fresh_auth_ms: i64::from(c.fresh_auth_seconds) * 1000,
                min_aal: c.min_aal,
                max_auth_age_ms: c.max_auth_age_seconds.map(|s| i64::from(s) * 1000),
                acr_values: c.acr_values.clone(),
            });
        }
        // Thresholds must not fall as sensitivity rises: a critical action
        // never needs more risk than a high one to be stopped.
        for pair in classes.windows(2) {
            if pair[1].step_up_at > pair[0].step_up_at || pair[1].deny_at > pair[0].deny_at {
                return Err(PolicyError::Invalid(format!(
                    "thresholds must not rise with sensitivity: step_up_at {} then {}, deny_at {} then {}",
                    pair[0].step_up_at, pair[1].step_up_at, pair[0].deny_at, pair[1].deny_at
                )));
            }
        }
        for (who, m, expected) in [
            (
                "workload",
                &raw.step_up.workload,
                StepUpMethod::JitCredential,
            ),
            ("agent", &raw.step_up.agent, StepUpMethod::Approval),
        ] {
            if m.method == StepUpMethod::Mfa {
                return Err(PolicyError::Invalid(format!(
                    "[step_up.{who}] method = \"mfa\": a {who} cannot answer an MFA prompt; use {:?}",
                    expected
                )));
            }
        }
        let d = &raw.detectors;
        if !(d.max_travel_kmh > 0.0 && d.min_travel_km >= 0.0) {
            return Err(PolicyError::Invalid(format!(
                "[detectors] max_travel_kmh = {} must be > 0 and min_travel_km = {} >= 0",
                d.max_travel_kmh, d.min_travel_km
            )));
        }
        if d.history_size == 0 || d.history_size > 256 {
            return Err(PolicyError::Invalid(format!(
                "[detectors] history_size = {} must be 1 to 256",
                d.history_size
            )));
        }
        if d.history_max_age_days == 0 {
            return Err(PolicyError::Invalid(format!(
                "[detectors] history_max_age_days = {} must be >= 1",
                d.history_max_age_days
            )));
        }
        if d.history_maturity == 0
            || !(d.risky_enrolment_evidence.is_finite() && d.risky_enrolment_evidence > 0.0)
        {
            return Err(PolicyError::Invalid(format!(
                "[detectors] history_maturity = {} must be >= 1 and risky_enrolment_evidence = {} > 0",
                d.history_maturity, d.risky_enrolment_evidence
            )));
        }
        for (name, v) in [
            ("action_prior_strength", d.action_prior_strength),
            ("peer_prior_strength", d.peer_prior_strength),
            ("transition_prior_strength", d.transition_prior_strength),
            ("attribute_log_range", d.attribute_log_range),
            ("attribute_min_sd", d.attribute_min_sd),
            ("attribute_prior_count", d.attribute_prior_count),
            ("attribute_min_peer_count", d.attribute_min_peer_count),
            ("behaviour_max_evidence", d.behaviour_max_evidence),
            ("context_prior_strength", d.context_prior_strength),
            ("context_peer_prior_strength", d.context_peer_prior_strength),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(PolicyError::Invalid(format!(
                    "[detectors] {name} = {v} must be > 0"
                )));
            }
        }
        if let Some(r) = d
            .novelty_rates
            .iter()
            .chain(&d.client_novelty_rates)
            .find(|r| !(r.is_finite() && **r > 0.0 && **r < 1.0))
        {
            return Err(PolicyError::Invalid(format!(
                "[detectors] novelty_rates, client_novelty_rates: {r} must be in (0, 1)"
            )));
        }
        if !(0.0..=1.0).contains(&d.client_with_new_device) {
            return Err(PolicyError::Invalid(format!(
                "[detectors] client_with_new_device = {} must be in [0, 1]",
                d.client_with_new_device
            )));
        }
        let share_ok = d.burst_attack_share > 0.0 && d.burst_attack_share < 1.0;
        let evidence_ok = d.behaviour_min_evidence.is_finite()
            && d.behaviour_min_evidence >= 0.0
            && d.behaviour_min_evidence <= d.behaviour_max_evidence;
        if !share_ok || !evidence_ok || d.action_history < 10 || d.burst_window_seconds == 0 {
            return Err(PolicyError::Invalid(format!(
                "[detectors] burst_attack_share = {} must be in (0, 1), behaviour_min_evidence = {} in [0, behaviour_max_evidence = {}], action_history = {} >= 10, burst_window_seconds = {} >= 1",
                d.burst_attack_share,
                d.behaviour_min_evidence,
                d.behaviour_max_evidence,
                d.action_history,
                d.burst_window_seconds
            )));
        }
        if d.source_principals == 0
            || d.spray_principals == 0
            || d.source_window_seconds == 0
            || d.spray_window_seconds == 0
        {
            return Err(PolicyError::Invalid(format!(
                "[detectors] source_principals = {}, spray_principals = {}, source_window_seconds = {}, spray_window_seconds = {} must all be >= 1",
                d.source_principals,
                d.spray_principals,
                d.source_window_seconds,
                d.spray_window_seconds
            )));
        }
        if d.failure_burst == 0 || d.push_denials == 0 || d.shared_network_principals < 2 {
            return Err(PolicyError::Invalid(format!(
                "[detectors] failure_burst = {}, push_denials = {} must be >= 1 and shared_network_principals = {} >= 2",
                d.failure_burst, d.push_denials, d.shared_network_principals
            )));
        }
        let mut weights = [f64::NAN; SignalCode::COUNT];
        for (code, w) in &raw.weights {
            let sc = SignalCode::from_name(code).ok_or_else(|| {
                PolicyError::Invalid(format!(
                    "[weights] unknown signal code {code:?}; known: {}",
                    SignalCode::ALL
                        .iter()
                        .map(|c| c.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            if !w.is_finite() || w.abs() > 20.0 {
                return Err(PolicyError::Invalid(format!(
                    "[weights] {code} = {w} must be finite, within ±20"
                )));
            }
            weights[sc as usize] = *w;
        }
        if let Some(missing) = SignalCode::ALL
            .iter()
            .find(|c| weights[**c as usize].is_nan())
        {
            return Err(PolicyError::Invalid(format!(
                "[weights] {} is missing",
                missing.name()
            )));
        }
        let mut hash = String::from("sha256:");
        for b in Sha256::digest(text.as_bytes()) {
            let _ = write!(hash, "{b:02x}");
        }
        let classes: [ClassPolicy; 4] = classes
            .try_into()
            .map_err(|_| PolicyError::Invalid("four classes expected".into()))?;
        Ok(Policy {
            name: raw.name,
            hash,
            base_log_odds: s.base_log_odds,
            levels: [s.level_medium, s.level_high, s.level_critical],
            classes,
            workload: raw.step_up.workload,
            agent: raw.step_up.agent,
            detectors: raw.detectors,
            weights,
            default_class: raw.default_class,
            actions: compile("actions", raw.actions)?,
            auth: compile("auth", raw.auth)?,
        })
    }

    /// The policy's `name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `sha256:` of the policy text, written into every record.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// How far back attack-source observations matter: the longer of the
    /// address and the spraying windows. A shell that shares observations
    /// between instances reads this much history when it starts.
    pub fn attack_source_lookback_seconds(&self) -> u32 {
        self.detectors
            .source_window_seconds
            .max(self.detectors.spray_window_seconds)
    }

    /// Sensitivity of an action name (first matching `[[actions]]` rule).
    pub fn action_sensitivity(&self, name: &str) -> Sensitivity {
        first_match(&self.actions, name).unwrap_or(self.default_class)
    }

    /// Sensitivity of an auth event type (first matching `[[auth]]` rule).
    pub fn auth_sensitivity(&self, name: &str) -> Sensitivity {
        first_match(&self.auth, name).unwrap_or(Sensitivity::Low)
    }

    /// The `[weights]` entry of a signal code, by its stable name (`None`
    /// for a code the engine does not know).
    pub fn weight_of(&self, code: &str) -> Option<f64> {
        SignalCode::from_name(code).map(|c| self.weight(c))
    }

    /// Every signal code, in the engine's order.
    pub fn signal_codes() -> impl Iterator<Item = &'static str> {
        SignalCode::ALL.into_iter().map(SignalCode::name)
    }

    /// The prior log-odds of `[scoring]`.
    pub fn base_log_odds(&self) -> f64 {
        self.base_log_odds
    }

    /// The weight of a signal.
    pub(crate) fn weight(&self, code: SignalCode) -> f64 {
        self.weights[code as usize]
    }

    pub(crate) fn class(&self, s: Sensitivity) -> &ClassPolicy {
        &self.classes[s.index()]
    }

    /// Level boundaries: medium, high, critical.
    pub(crate) fn levels(&self) -> [u8; 3] {
        self.levels
    }

    /// The step-up to ask a principal of this type for an action of `class`.
    pub fn step_up_for(&self, kind: PrincipalType, class: Sensitivity) -> StepUp {
        match kind {
            PrincipalType::Human => {
                let c = self.class(class);
                StepUp {
                    method: StepUpMethod::Mfa,
                    acr_values: Some(c.acr_values.clone()),
                    max_age: Some(u32::try_from(c.fresh_auth_ms / 1000).unwrap_or(u32::MAX)),
                    scope: None,
                    ttl: None,
                }
            }
            PrincipalType::Workload | PrincipalType::Agent => {
                let m = if kind == PrincipalType::Workload {
                    &self.workload
                } else {
                    &self.agent
                };
                StepUp {
                    method: m.method,
                    acr_values: None,
                    max_age: None,
                    scope: m.scope.clone(),
                    ttl: Some(m.ttl),
                }
            }
        }
    }
}

fn first_match(rules: &[Rule], name: &str) -> Option<Sensitivity> {
    rules
        .iter()
        .find(|r| r.matcher.is_match(name))
        .map(|r| r.class)
}
