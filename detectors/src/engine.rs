//! The engine: state store, detectors, scoring, learning.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;

use lru::LruCache;
use riskstream_schemas::{
    AssuranceState, AuthType, Decision, Event, EventBody, ModelInfo, PrincipalType, RISK_SCHEMA_ID,
    RecordPrincipal, RejectReason, Rejection, RiskRecord, Sensitivity, Signal, Timestamp, Trigger,
};
use rustc_hash::{FxBuildHasher, FxHashMap};
use serde_json::json;

use crate::MODEL_VERSION;
use crate::detectors::action_sequence::{self, Peers};
use crate::detectors::{self, Finding, SignalCode};
use crate::geo::{GeoIp, IpInfo};
use crate::policy::Policy;
use crate::score::{self, AssuranceView, Because};
use crate::sources::{
    AttackSources, IpObservation, IpObservationConfig, LoginOutcome, SourceCounts,
};
use crate::state::{
    ActionProfile, CONTEXT_LEVELS, Client, ContextLevel, Fix, PrincipalState, Seen, SessionState,
    StickySignal, hash_str, network_key, prefix_key, push_windowed, user_agent_skeleton,
};

/// Bounds on the state the engine keeps.
#[derive(Clone, Debug)]
pub struct StateLimits {
    /// Principals tracked at once; the least recently seen is evicted beyond.
    pub max_principals: usize,
    /// A principal unseen for this long (event time) is forgotten, seconds.
    /// Default 30 days: long enough for monthly routines, short enough that
    /// leavers' state goes.
    pub idle_expiry_seconds: i64,
    /// Sessions kept per principal; the least recently seen is evicted beyond.
    pub max_sessions_per_principal: usize,
    /// A session unseen for this long is forgotten, seconds. Default 7 days,
    /// beyond any IdP's refresh-token idle lifetime we know of.
    pub session_idle_seconds: i64,
    /// Event ids remembered per principal for duplicate detection.
    pub remembered_ids: usize,
    /// Of those, how many keep their record, to re-emit it on redelivery.
    pub remembered_records: usize,
    /// Networks tracked per engine for the tenant-infrastructure table.
    pub max_networks: usize,
    /// Addresses tracked in the attack-source table (the least recently
    /// updated evicted beyond). Each holds at most 128 (principal, time)
    /// pairs; a few hundred bytes, so the default is ~100 MB at worst.
    pub max_ip_sources: usize,
    /// AS numbers tracked in the attack-source table.
    pub max_asn_sources: usize,
    /// Observations queued for [`Engine::drain_ip_observations`] at most;
    /// beyond, the oldest are dropped (and counted), so that a shell that
    /// stops draining does not grow the engine without bound.
    pub max_pending_ip_observations: usize,
}

impl Default for StateLimits {
    fn default() -> Self {
        StateLimits {
            max_principals: 1_000_000,
            idle_expiry_seconds: 30 * 24 * 3600,
            max_sessions_per_principal: 64,
            session_idle_seconds: 7 * 24 * 3600,
            remembered_ids: 256,
            remembered_records: 16,
            max_networks: 1_000_000,
            max_ip_sources: 262_144,
            max_asn_sources: 65_536,
            max_pending_ip_observations: 65_536,
        }
    }
}

/// The frozen, shared part of an engine.
#[derive(Debug)]
pub struct EngineConfig {
    /// Validated policy.
    pub policy: Policy,
    /// GeoIP databases.
    pub geo: GeoIp,
    /// State bounds.
    pub limits: StateLimits,
    /// What the engine does with the [`IpObservation`]s its events make.
    pub ip_observations: IpObservationConfig,
}

/// Counters for telemetry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Principals tracked now.
    pub principals: usize,
    /// Sessions tracked now.
    pub sessions: usize,
    /// Principals evicted by the cap.
    pub evicted: u64,
    /// Principals expired by idleness.
    pub expired: u64,
    /// Duplicate ids answered with their first record.
    pub replayed_duplicates: u64,
    /// Addresses in the attack-source table now.
    pub ip_sources: usize,
    /// Observations waiting for [`Engine::drain_ip_observations`].
    pub pending_ip_observations: usize,
    /// Observations dropped because nobody drained them.
    pub dropped_ip_observations: u64,
}

/// What the tenant knows of a network: who authenticated cleanly from it.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct NetworkUse {
    principals: Vec<u64>,
    shared: bool,
}

/// Everything a detector may read.
pub(crate) struct DetectContext<'a> {
    pub event: &'a Event,
    pub kind: PrincipalType,
    pub policy: &'a Policy,
    pub principal: &'a PrincipalState,
    pub session: &'a SessionState,
    pub ip_info: Option<&'a IpInfo>,
    pub network: Option<u64>,
    /// The address's /24 or /48.
    pub prefix: Option<u64>,
    pub device: Option<u64>,
    pub ua_skeleton: Option<u64>,
    /// A human's user agent in the client hierarchy.
    pub client: Option<&'a Client>,
    pub shared_network: bool,
    /// What the attack-source table says of the address and of its AS,
    /// about the tenant's other principals (humans only).
    pub ip_source: Option<SourceCounts>,
    pub asn_source: Option<SourceCounts>,
    pub session_score_before: u8,
    /// Sum of the session's weights other than the device's own novelty.
    pub session_evidence_before: f64,
    /// Sensitivity of the trigger.
    pub sensitivity: Sensitivity,
    /// The action's key in the action profiles, for action events.
    pub action: Option<u64>,
    /// The peer groups the principal's actions are judged against.
    pub peers: Peers<'a>,
}

impl DetectContext<'_> {
    pub(crate) fn network_label(&self) -> Option<String> {
        network_label(self.event.context.ip, self.ip_info)
    }
}

fn network_label(ip: Option<IpAddr>, info: Option<&IpInfo>) -> Option<String> {
    match info.and_then(|i| i.asn.map(|a| (a, i.as_org.clone()))) {
        Some((asn, Some(org))) => Some(format!("AS{asn} {org}")),
        Some((asn, None)) => Some(format!("AS{asn}")),
        None => ip.map(|ip| ip.to_string()),
    }
}

/// The scoring engine for a set of principals (one partition, or a replay).
pub struct Engine {
    config: Arc<EngineConfig>,
    pub(crate) principals: LruCache<String, PrincipalState, FxBuildHasher>,
    pub(crate) networks: FxHashMap<(u64, u64), NetworkUse>,
    /// Peer groups' action profiles: one per tenant and one per (tenant,
    /// principal type, role), keyed by [`peer_keys`].
    pub(crate) peers: FxHashMap<u64, ActionProfile>,
    /// Which addresses and networks the tenant's logins fail from.
    pub(crate) sources: AttackSources,
    /// Own observations waiting to be drained (when publishing).
    outbox: VecDeque<IpObservation>,
    stats: EngineStats,
    findings: Vec<Finding>,
    /// Sensitivity of action names seen, so that the policy's globs run once
    /// per name rather than once per event. Bounded: cleared when full.
    sensitivity_cache: FxHashMap<Box<str>, Sensitivity>,
    /// Humans' user agents placed in the client hierarchy, so that each
    /// string is parsed once. Bounded: cleared when full.
    client_cache: FxHashMap<u64, Arc<Client>>,
    /// The principal key of the event being scored, in a buffer kept so
    /// that building it allocates nothing.
    key_buffer: String,
}

/// Distinct action names cached; applications have hundreds, not millions,
/// and a sender inventing names only costs a cache refill.
const SENSITIVITY_CACHE: usize = 4096;

/// Distinct user agents cached: a fleet has hundreds of browser builds.
const CLIENT_CACHE: usize = 4096;

/// The client hierarchy of `ua`, parsed once per distinct string.
fn client_of(cache: &mut FxHashMap<u64, Arc<Client>>, ua: &str) -> Arc<Client> {
    let h = hash_str(ua);
    if let Some(c) = cache.get(&h) {
        return Arc::clone(c);
    }
    let c = Arc::new(Client::parse(ua));
    if cache.len() >= CLIENT_CACHE {
        cache.clear();
    }
    cache.insert(h, Arc::clone(&c));
    c
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("stats", &self.stats())
            .finish()
    }
}

pub(crate) fn principal_key(tenant: &str, id: &str) -> String {
    let mut k = String::with_capacity(tenant.len() + id.len() + 1);
    push_principal_key(&mut k, tenant, id);
    k
}

/// Appends the state store's key of a principal to `k`.
fn push_principal_key(k: &mut String, tenant: &str, id: &str) {
    k.push_str(tenant);
    k.push('\u{1f}');
    k.push_str(id);
}

/// Keys of the tenant's and the role's action profiles.
pub(crate) fn peer_keys(event: &Event) -> (u64, u64) {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    event.tenant.hash(&mut h);
    let tenant = h.finish();
    (event.principal.kind as u8).hash(&mut h);
    event.principal.role.as_deref().unwrap_or("").hash(&mut h);
    (tenant, h.finish() ^ 1)
}

/// Peer groups tracked at most; beyond, new groups are not learned.
const MAX_PEER_GROUPS: usize = 65_536;

fn is_authentication(body: &EventBody, kind: PrincipalType) -> bool {
    match body {
        EventBody::Auth(AuthType::LoginSuccess | AuthType::MfaSuccess) => true,
        EventBody::Auth(AuthType::TokenIssued) => kind != PrincipalType::Human,
        _ => false,
    }
}

impl Engine {
    /// A new engine with empty state.
    pub fn new(config: Arc<EngineConfig>) -> Engine {
        Engine {
            principals: LruCache::unbounded_with_hasher(FxBuildHasher),
            networks: FxHashMap::default(),
            peers: FxHashMap::default(),
            sources: AttackSources::new(
                config.limits.max_ip_sources,
                config.limits.max_asn_sources,
            ),
            outbox: VecDeque::new(),
            stats: EngineStats::default(),
            findings: Vec::new(),
            sensitivity_cache: FxHashMap::default(),
            client_cache: FxHashMap::default(),
            key_buffer: String::new(),
            config,
        }
    }

    /// The shared configuration.
    pub fn config(&self) -> &Arc<EngineConfig> {
        &self.config
    }

    /// Current counters.
    pub fn stats(&self) -> EngineStats {
        let mut s = self.stats;
        s.principals = self.principals.len();
        s.sessions = self.principals.iter().map(|(_, p)| p.sessions.len()).sum();
        s.ip_sources = self.sources.ips.len();
        s.pending_ip_observations = self.outbox.len();
        s
    }

    /// Takes the observations the engine's own events made since the last
    /// call, oldest first, for the shell to publish to the other instances
    /// (`riskstream.ip-observations`, keyed by [`IpObservation::key`]).
    /// Empty unless [`IpObservationConfig::publish`] is set.
    pub fn drain_ip_observations(&mut self) -> impl Iterator<Item = IpObservation> + '_ {
        self.outbox.drain(..)
    }

    /// Applies an observation another instance made (or this one, read back
    /// from the topic: applying one twice changes nothing) to the
    /// attack-source table. It affects the records of events scored after
    /// it, never those before.
    pub fn apply_remote_ip_observation(&mut self, obs: &IpObservation) {
        let (keep_ip, keep_asn) = self.source_windows_ms();
        self.sources.apply(obs, keep_ip, keep_asn);
    }

    fn source_windows_ms(&self) -> (i64, i64) {
        let d = &self.config.policy.detectors;
        (
            i64::from(d.source_window_seconds) * 1000,
            i64::from(d.spray_window_seconds) * 1000,
        )
    }

    /// When the next principal becomes idle enough to expire, in event time;
    /// the shell calls [`Engine::handle_timeout`] once its clock passes it.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.principals.peek_lru().map(|(_, p)| {
            p.last_seen
                .plus_seconds(self.config.limits.idle_expiry_seconds)
        })
    }

    /// Forgets principals idle since before `now - idle_expiry`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let idle = self.config.limits.idle_expiry_seconds;
        while let Some((_, p)) = self.principals.peek_lru() {
            if p.last_seen.plus_seconds(idle) <= now {
                self.principals.pop_lru();
                self.stats.expired += 1;
            } else {
                break;
            }
        }
    }

    /// Scores one event and returns its risk record.
    ///
    /// A repeated event id changes no state: while the engine remembers the
    /// id with its record, that record is returned again, identical; once
    /// only the id is remembered, the event is rejected as `duplicate`.
    pub fn handle_event(&mut self, event: &Event) -> Result<RiskRecord, Rejection> {
        self.handle_event_shared(event).map(Arc::unwrap_or_clone)
    }

    /// [`Engine::handle_event`], with the record shared with the engine's
    /// memory of recent ids rather than copied out of it: for a shell that
    /// only reads the record (writes it out), which saves a deep copy of
    /// every record.
    pub fn handle_event_shared(&mut self, event: &Event) -> Result<Arc<RiskRecord>, Rejection> {
        // The key is built in a buffer kept across events; only a new
        // principal's key is allocated, for the state store.
        let mut key = std::mem::take(&mut self.key_buffer);
        key.clear();
        push_principal_key(&mut key, &event.tenant, &event.principal.id);
        let result = self.handle_event_keyed(event, &key);
        self.key_buffer = key;
        result
    }

    fn handle_event_keyed(
        &mut self,
        event: &Event,
        key: &str,
    ) -> Result<Arc<RiskRecord>, Rejection> {
        let config = Arc::clone(&self.config);
        let policy = &config.policy;
        let limits = &config.limits;
        if !self.principals.contains(key) {
            if self.principals.len() >= limits.max_principals && self.principals.pop_lru().is_some()
            {
                self.stats.evicted += 1;
            }
            self.principals.put(
                key.to_owned(),
                PrincipalState::new(event.principal.kind, event.time),
            );
        }
        let Some(p) = self.principals.get_mut(key) else {
            return Err(Rejection::new(
                RejectReason::InvalidField,
                Some("principal.id"),
                "state store full",
            ));
        };

        let id_hash = hash_str(&event.id);
        match p.seen_ids.lookup(id_hash) {
            Seen::New => {}
            Seen::Scored(r) => {
                self.stats.replayed_duplicates += 1;
                return Ok(Arc::clone(r));
            }
            Seen::Forgotten => {
                return Err(Rejection::new(
                    RejectReason::Duplicate,
                    Some("id"),
                    format!("event id {:?} was already scored", event.id),
                ));
            }
        }
        let now = event.time;
        p.last_seen = p.last_seen.max(now);
        p.kind = event.principal.kind;
        let kind = p.kind;
        p.age_histories(now, policy.detectors.history_max_age_ms());

        // Address facts, cached for the principal's last address.
        // Shared, not copied: a clone is one reference count, not three.
        let ip_info: Option<Arc<IpInfo>> = match event.context.ip {
            None => None,
            Some(ip) => match &p.last_ip {
                Some((last, info)) if *last == ip => Some(info.clone()),
                _ => {
                    let info = config.geo.lookup(ip);
                    let info = Arc::new(info);
                    p.last_ip = Some((ip, Arc::clone(&info)));
                    Some(info)
                }
            },
        };
        let asn = event.context.asn.or(ip_info.as_deref().and_then(|i| i.asn));
        let network = event.context.ip.map(|ip| network_key(ip, asn));
        let tenant_hash = hash_str(&event.tenant);
        let prefix = event.context.ip.map(prefix_key);
        let shared_network = prefix
            .and_then(|n| self.networks.get(&(tenant_hash, n)))
            .is_some_and(|u| u.shared);
        let device = event.context.device_id.as_deref().map(hash_str);
        let client = match event.context.user_agent.as_deref() {
            Some(ua) if kind == PrincipalType::Human => Some(client_of(&mut self.client_cache, ua)),
            _ => None,
        };

        // The session: found, or opened (evicting the stalest beyond the cap).
        let session_idle_ms = limits.session_idle_seconds * 1000;
        p.sessions
            .retain(|s| now.0 - s.last_seen.0 <= session_idle_ms);
        let si = match p.sessions.iter().position(|s| s.id == event.session) {
            Some(i) => i,
            None => {
                if p.sessions.len() >= limits.max_sessions_per_principal
                    && let Some(stalest) = p
                        .sessions
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, s)| s.last_seen)
                        .map(|(i, _)| i)
                {
                    p.sessions.swap_remove(stalest);
                }
                p.sessions.push(SessionState::new(&event.session, now));
                p.sessions.len() - 1
            }
        };
        // A session's user agent is usually the one it started with, whose
        // skeleton the session keeps: hashing a browser's user agent byte by
        // byte was about 3% of replay's instructions.
        let ua_skeleton = event.context.user_agent.as_deref().map(|ua| {
            let s = &p.sessions[si];
            match (&s.user_agent, s.ua_skeleton) {
                (Some(first), Some(skeleton)) if first == ua => skeleton,
                _ => user_agent_skeleton(ua),
            }
        });

        // The session's risk before this event, from everything but the
        // device's own novelty (which every enrolment of a new device shows).
        let sticky_sum: f64 = p.sessions[si]
            .sticky
            .iter()
            .filter(|s| !detectors::is_device_novelty(s.finding.code))
            .map(|s| s.weight)
            .sum();
        let session_score_before = score::score_of(policy.base_log_odds + sticky_sum);
        let session_evidence_before = sticky_sum;

        // Sensitivity of the trigger.
        let sensitivity = match &event.body {
            EventBody::Auth(t) => policy.auth_sensitivity(t.as_str()),
            EventBody::Action(a) => match self.sensitivity_cache.get(a.name.as_str()) {
                Some(s) => *s,
                None => {
                    let s = policy.action_sensitivity(&a.name);
                    if self.sensitivity_cache.len() >= SENSITIVITY_CACHE {
                        self.sensitivity_cache.clear();
                    }
                    self.sensitivity_cache.insert(a.name.as_str().into(), s);
                    s
                }
            },
        };

        let me = hash_str(key);
        let (ip_source, asn_source) = match event.context.ip {
            // Looked up where a decision can hinge on it: the session's
            // first event, authentications, and high or critical actions
            // (which see sources that became known during the session).
            // Low actions keep what the session already carries.
            Some(ip)
                if kind == PrincipalType::Human
                    && !self.sources.is_empty()
                    && (p.sessions[si].seq == 0
                        || is_authentication(&event.body, kind)
                        || event.auth_type() == Some(AuthType::LoginFailure)
                        || sensitivity >= Sensitivity::High) =>
            {
                let d = &policy.detectors;
                let by_ip = self.sources.ip_counts(
                    &(tenant_hash, ip),
                    me,
                    now,
                    i64::from(d.source_window_seconds) * 1000,
                );
                // The address explains its network's failures: no need to
                // ask the network when the address is a source already.
                let by_asn = if by_ip.is_some_and(|c| c.unresolved >= d.source_principals) {
                    None
                } else {
                    asn.and_then(|a| {
                        self.sources.asn_counts(
                            &(tenant_hash, a),
                            me,
                            now,
                            i64::from(d.spray_window_seconds) * 1000,
                        )
                    })
                };
                (by_ip, by_asn)
            }
            _ => (None, None),
        };
        let action = event.action().map(action_sequence::action_key);
        let (tenant_peer, role_peer) = peer_keys(event);

        // Detect.
        let mut findings = std::mem::take(&mut self.findings);
        findings.clear();
        {
            let ctx = DetectContext {
                event,
                kind,
                policy,
                principal: p,
                session: &p.sessions[si],
                ip_info: ip_info.as_deref(),
                network,
                prefix,
                device,
                ua_skeleton,
                client: client.as_deref(),
                shared_network,
                ip_source,
                asn_source,
                session_score_before,
                session_evidence_before,
                sensitivity,
                action,
                peers: Peers {
                    tenant: self.peers.get(&tenant_peer),
                    role: self.peers.get(&role_peer),
                },
            };
            detectors::auth_failures::detect(&ctx, &mut findings);
            detectors::geo_velocity::detect(&ctx, &mut findings);
            detectors::anonymizer::detect(&ctx, &mut findings);
            detectors::client::detect(&ctx, &mut findings);
            detectors::device::detect(&ctx, &mut findings);
            detectors::session_context::detect(&ctx, &mut findings);
            detectors::machine_baseline::detect(&ctx, &mut findings);
            detectors::action_sequence::detect(&ctx, &mut findings);
            detectors::attack_source::detect(&ctx, &mut findings);
        }
        // Cold start: novelty against a short history is weak evidence.
        let maturity = f64::from(p.learned) / f64::from(policy.detectors.history_maturity);
        if maturity < 1.0 {
            for f in findings
                .iter_mut()
                .filter(|f| detectors::is_novelty(f.code))
            {
                f.scale *= maturity;
            }
        }
        // Freeman et al.'s per-principal likelihood: the novelty weights are
        // for a principal as novel as the population; this one's own rate of
        // new context, smoothed towards its role's (the cold start), moves
        // each by ln(population rate / own rate).
        if kind == PrincipalType::Human
            && findings
                .iter()
                .any(|f| detectors::context_level(f.code).is_some())
        {
            let params = &policy.detectors;
            let role = self.peers.get(&role_peer).map(|r| &r.context);
            for f in findings.iter_mut() {
                let Some(level) = detectors::context_level(f.code) else {
                    continue;
                };
                let w0 = policy.weight(f.code);
                if w0 <= 0.0 {
                    continue;
                }
                let p0 = params.novelty_rate(level);
                let p_role = role.map_or(p0, |r| {
                    r.rate(level, p0, params.context_peer_prior_strength)
                });
                let p_own = p.novelty.rate(level, p_role, params.context_prior_strength);
                let w = (w0 + (p0 / p_own).ln()).clamp(0.0, params.behaviour_max_evidence.max(w0));
                f.scale *= w / w0;
                if let Some(evidence) = f.evidence.as_object_mut() {
                    evidence.insert(
                        "novelty_rate".into(),
                        json!((p_own * 1000.0).round() / 1000.0),
                    );
                }
            }
        }

        let session = &mut p.sessions[si];
        for f in findings.iter().filter(|f| f.code.sticky()) {
            if !session.has_sticky(f.code) {
                session.sticky.push(StickySignal {
                    weight: policy.weight(f.code) * f.scale,
                    finding: f.clone(),
                });
            }
        }
        let momentary: Vec<&Finding> = findings.iter().filter(|f| !f.code.sticky()).collect();
        let mut log_odds = policy.base_log_odds;
        log_odds += session.sticky.iter().map(|s| s.weight).sum::<f64>();
        log_odds += momentary
            .iter()
            .map(|f| policy.weight(f.code) * f.scale)
            .sum::<f64>();
        // The principal's own device is evidence against someone else using
        // the account, not against the principal misusing it: it explains
        // away at most the context evidence (network, place, session), never
        // what the principal does.
        let known: f64 = session
            .sticky
            .iter()
            .filter(|s| s.finding.code == SignalCode::KnownDevice)
            .map(|s| s.weight)
            .sum();
        let known_effective = if known < 0.0 {
            let context: f64 = session
                .sticky
                .iter()
                .map(|s| s.weight)
                .chain(
                    momentary
                        .iter()
                        .filter(|f| !f.code.behavioural())
                        .map(|f| policy.weight(f.code) * f.scale),
                )
                .filter(|w| *w > 0.0)
                .sum();
            known.max(-context)
        } else {
            known
        };
        log_odds += known_effective - known;
        let score = score::score_of(log_odds);
        let level = score::level_of(policy, score);

        // The assurance this event itself reached counts for its own record:
        // `decisions` say what the session may do next, and after an MFA
        // sign-in that is an aal 2 session.
        if is_authentication(&event.body, kind) {
            let aal = event.aal().unwrap_or(1);
            session.aal = session.aal.max(aal);
            if aal >= 2 {
                session.last_strong_auth =
                    Some(session.last_strong_auth.map_or(now, |t| t.max(now)));
            }
        }
        // What the principal does is judged afresh: a step-up satisfied
        // earlier proves who is there, not that this is what they do.
        let behavioural = momentary.iter().any(|f| f.code.behavioural());
        let satisfied_at = session
            .satisfied
            .filter(|(_, n)| *n == session.sticky.len() && !behavioural)
            .map(|(t, _)| t);
        let view = AssuranceView {
            kind,
            aal: session.aal,
            last_strong_auth: session.last_strong_auth,
            satisfied_at,
        };
        let per_class = score::decide_all(policy, score, &view, now);
        let (decision, because) = per_class[sensitivity.index()];
        let step_up = if decision == Decision::StepUp {
            Some(policy.step_up_for(kind, sensitivity))
        } else {
            Sensitivity::ALL
                .into_iter()
                .find(|c| per_class[c.index()].0 == Decision::StepUp)
                .map(|c| policy.step_up_for(kind, c))
        };

        let mut signals: Vec<Signal> =
            Vec::with_capacity(session.sticky.len() + momentary.len() + 1);
        for s in &session.sticky {
            let weight = if s.finding.code == SignalCode::KnownDevice {
                known_effective
            } else {
                s.weight
            };
            signals.push(signal(s.finding.code, weight, &s.finding.evidence));
        }
        for f in &momentary {
            signals.push(signal(f.code, policy.weight(f.code) * f.scale, &f.evidence));
        }
        if because == Because::Assurance {
            signals.push(signal(
                SignalCode::AssuranceStale,
                policy.weight(SignalCode::AssuranceStale),
                &json!({
                    "aal": session.aal,
                    "last_strong_auth": session.last_strong_auth,
                    "required_aal": policy.class(sensitivity).min_aal,
                    "max_age_minutes": policy.class(sensitivity).max_auth_age_ms.map(|m| m / 60_000),
                }),
            ));
        }
        // Highest contribution first, so the top signal explains the most.
        signals.sort_by(|a, b| {
            b.weight
                .total_cmp(&a.weight)
                .then_with(|| a.code.cmp(&b.code))
        });

        session.seq += 1;
        session.last_seen = session.last_seen.max(now);
        session.level = level;
        let record = RiskRecord {
            schema: Cow::Borrowed(RISK_SCHEMA_ID),
            tenant: event.tenant.clone(),
            principal: RecordPrincipal {
                id: event.principal.id.clone(),
                kind,
            },
            session: event.session.clone(),
            seq: session.seq,
            time: now,
            trigger: Trigger {
                event_id: event.id.clone(),
                kind: event.kind(),
                name: event.name().to_owned(),
                sensitivity,
            },
            score,
            level,
            decision,
            step_up,
            decisions: score::pack(&per_class),
            assurance: AssuranceState {
                aal: session.aal,
                last_strong_auth: session.last_strong_auth,
            },
            signals,
            model: ModelInfo {
                version: Cow::Borrowed(MODEL_VERSION),
                policy: policy.hash().to_owned(),
            },
        };

        // Learn.
        let learned_net = self.learn(
            event,
            key,
            &findings,
            ip_info.as_deref(),
            network,
            device,
            ua_skeleton,
            client.as_deref(),
            si,
            score,
            role_peer,
        );
        if let Some(net) = learned_net {
            let k = (tenant_hash, net);
            let threshold = policy.detectors.shared_network_principals;
            if self.networks.len() < limits.max_networks || self.networks.contains_key(&k) {
                let u = self.networks.entry(k).or_default();
                if !u.shared && !u.principals.contains(&me) {
                    u.principals.push(me);
                    if u.principals.len() >= threshold {
                        u.shared = true;
                        u.principals = Vec::new();
                    }
                }
            }
        }
        self.findings = findings;
        if kind == PrincipalType::Human
            && let Some(ip) = event.context.ip
        {
            let outcome = match event.auth_type() {
                Some(AuthType::LoginFailure) => Some(LoginOutcome::Failure),
                Some(AuthType::LoginSuccess) => Some(LoginOutcome::Success),
                _ => None,
            };
            if let Some(outcome) = outcome {
                let mode = self.config.ip_observations;
                if mode.apply_own {
                    let (keep_ip, keep_asn) = self.source_windows_ms();
                    self.sources.record(
                        (tenant_hash, ip),
                        asn.map(|a| (tenant_hash, a)),
                        me,
                        outcome,
                        now,
                        (keep_ip, keep_asn),
                    );
                }
                if mode.publish {
                    self.publish(IpObservation {
                        tenant: event.tenant.clone(),
                        ip,
                        asn,
                        principal: event.principal.id.clone(),
                        outcome,
                        time: now,
                    });
                }
            }
        }
        if let Some(a) = action {
            self.learn_action(
                policy,
                event,
                key,
                a,
                sensitivity,
                si,
                score,
                (tenant_peer, role_peer),
            );
        }

        // Remember the id, with the record while it is recent.
        let record = Arc::new(record);
        if let Some(p) = self.principals.get_mut(key) {
            p.seen_ids.remember(
                id_hash,
                Arc::clone(&record),
                limits.remembered_records,
                limits.remembered_ids,
            );
        }
        Ok(record)
    }

    /// Queues an observation of this engine's own for the shell, dropping
    /// the oldest beyond the bound.
    fn publish(&mut self, obs: IpObservation) {
        if self.outbox.len() >= self.config.limits.max_pending_ip_observations.max(1) {
            self.outbox.pop_front();
            self.stats.dropped_ip_observations += 1;
        }
        self.outbox.push_back(obs);
    }

    /// Updates the action-sequence model after scoring an action. The burst
    /// window and the session's last action always move; counts learn only
    /// from actions scored below the medium level, so that an attacker's
    /// actions never become the principal's habits.
    #[allow(clippy::too_many_arguments)]
    fn learn_action(
        &mut self,
        policy: &Policy,
        event: &Event,
        key: &str,
        a: u64,
        sensitivity: Sensitivity,
        si: usize,
        score: u8,
        (tenant_peer, role_peer): (u64, u64),
    ) {
        let params = &policy.detectors;
        let Some(p) = self.principals.get_mut(key) else {
            return;
        };
        let sensitive = sensitivity >= Sensitivity::High;
        let Some(session) = p.sessions.get_mut(si) else {
            return;
        };
        let previous = session.last_action.replace(a);
        p.actions
            .push_recent(event.time, sensitive, params.burst_window_seconds);
        if score >= policy.levels()[0] {
            return;
        }
        p.actions
            .learn(a, sensitive, previous, params.action_history);
        let attributes = || action_sequence::numeric_attributes(event.attributes.as_ref());
        for (name, x) in attributes() {
            p.actions
                .learn_attribute(action_sequence::attribute_key(a, name), x);
        }
        let peer_cap = params.action_history.saturating_mul(1000);
        for peer in [tenant_peer, role_peer] {
            if self.peers.len() >= MAX_PEER_GROUPS && !self.peers.contains_key(&peer) {
                continue;
            }
            let profile = self.peers.entry(peer).or_default();
            profile.learn(a, sensitive, None, peer_cap);
            if peer == role_peer {
                for (name, x) in attributes() {
                    profile.learn_attribute(action_sequence::attribute_key(a, name), x);
                }
            }
        }
    }

    /// Updates state after scoring. Returns the network to credit to the
    /// tenant's infrastructure table, if this was a clean authentication.
    #[allow(clippy::too_many_arguments)]
    fn learn(
        &mut self,
        event: &Event,
        key: &str,
        findings: &[Finding],
        ip_info: Option<&IpInfo>,
        network: Option<u64>,
        device: Option<u64>,
        ua_skeleton: Option<u64>,
        client: Option<&Client>,
        si: usize,
        score: u8,
        role_peer: u64,
    ) -> Option<u64> {
        let config = Arc::clone(&self.config);
        let policy = &config.policy;
        let params = &policy.detectors;
        let cap = params.history_size;
        let p = self.principals.get_mut(key)?;
        let now = event.time;
        let kind = p.kind;

        match event.auth_type() {
            Some(AuthType::LoginFailure) => {
                push_windowed(&mut p.failures, now, params.failure_window_seconds);
            }
            Some(AuthType::MfaPushDenied) => {
                push_windowed(&mut p.push_denials, now, params.push_window_seconds);
            }
            Some(AuthType::LoginSuccess | AuthType::MfaSuccess) => {
                p.push_denials.clear();
                if event.auth_type() == Some(AuthType::LoginSuccess) {
                    p.failures.clear();
                }
            }
            _ => {}
        }

        let session = &mut p.sessions[si];
        if session.network.is_none() {
            session.network = network;
            session.network_label = network_label(event.context.ip, ip_info);
        }
        if session.ua_skeleton.is_none() {
            session.ua_skeleton = ua_skeleton;
            session.user_agent = event.context.user_agent.clone();
        }
        if session.device.is_none() {
            session.device = device;
        }

        let risky_enrolment = findings
            .iter()
            .any(|f| f.code == SignalCode::RiskyEnrolment);
        let device_known =
            device.is_some_and(|d| p.devices.contains(&d) && !p.tainted_devices.contains(&d));
        // The device in the context of an enrolment is the one enrolled,
        // unless it is already the principal's own (an admin enrolling
        // someone else's device from their own laptop).
        if detectors::device::is_enrolment(&event.body)
            && let Some(d) = device
            && !device_known
        {
            if risky_enrolment {
                p.tainted_devices.touch(d, now, cap);
            } else {
                // The organisation enrolled it while nothing else was
                // unusual: from now on it is one of the principal's devices.
                p.devices.touch(d, now, cap);
                p.sessions[si]
                    .sticky
                    .retain(|s| !detectors::is_device_novelty(s.finding.code));
            }
        }

        let session = &mut p.sessions[si];
        let non_mitigable = session.sticky.iter().any(|s| !s.finding.code.mitigable());
        let mut credit = None;
        let mut clean_auth = false;
        if is_authentication(&event.body, kind) {
            let aal = event.aal().unwrap_or(1);
            session.aal = session.aal.max(aal);
            let strong = aal >= 2;
            if strong {
                session.last_strong_auth =
                    Some(session.last_strong_auth.map_or(now, |t| t.max(now)));
            }
            if (strong || kind != PrincipalType::Human) && !non_mitigable {
                // The factor was proven with nothing that suggests it is
                // compromised: it satisfies step-ups while nothing new comes.
                session.satisfied = Some((now, session.sticky.len()));
                // It also vouches for the context (a new place, network or
                // country) when it comes from a device the principal or the
                // organisation knows, or when little is new at all. A strong
                // factor on an unknown device in an unusual context does not:
                // that is how phished or fatigued factors are used.
                let managed =
                    event.context.device_trust == Some(riskstream_schemas::DeviceTrust::Managed);
                if device_known || managed || score < policy.levels()[0] {
                    session.sticky.retain(|s| !s.finding.code.mitigable());
                    session.satisfied = Some((now, session.sticky.len()));
                    clean_auth = true;
                }
            }
        }

        let clean_session = session.sticky.is_empty() && score < policy.levels()[0];
        let session_strong = session.last_strong_auth.is_some();
        let shared = event.context.ip.map(prefix_key).is_some_and(|n| {
            self.networks
                .get(&(hash_str(&event.tenant), n))
                .is_some_and(|u| u.shared)
        });
        if clean_auth && kind == PrincipalType::Human && p.learned > 0 {
            let mut novel = context_novelty(p, event, ip_info, network, device, shared, params);
            if let Some(c) = client {
                for (slot, judged) in novel[5..].iter_mut().zip(p.clients.judged(c)) {
                    *slot = judged;
                }
            }
            let cap = params.history_max_age_days;
            let role = if self.peers.len() < MAX_PEER_GROUPS || self.peers.contains_key(&role_peer)
            {
                Some(&mut self.peers.entry(role_peer).or_default().context)
            } else {
                None
            };
            let mut role = role;
            for (level, new) in novel.into_iter().flatten() {
                p.novelty.count(level, new, cap);
                if let Some(r) = role.as_deref_mut() {
                    r.count(level, new, cap);
                }
            }
        }
        if clean_auth || (clean_session && p.learned > 0 && session_strong) {
            if clean_auth {
                p.learned += 1;
                if kind != PrincipalType::Human
                    && let Some(ua) = ua_skeleton
                {
                    p.user_agents.touch(ua, now, cap);
                }
                if let Some(d) = device
                    && !p.tainted_devices.contains(&d)
                {
                    p.devices.touch(d, now, cap);
                }
                if let Some(c) = client {
                    p.clients.touch(c, now, cap);
                }
                credit = event.context.ip.map(prefix_key);
            }
            if let Some(n) = network {
                p.networks.touch(n, now, cap);
            }
            if let Some(n) = event.context.ip.map(prefix_key) {
                p.prefixes.touch(n, now, cap);
            }
            if !shared
                && kind == PrincipalType::Human
                && let Some(loc) = ip_info.and_then(|i| i.location.as_ref())
            {
                if let Some(cc) = &loc.country {
                    p.countries.touch(cc.clone(), now, cap);
                }
                if let Some(place) = p.places.iter_mut().find(|place| {
                    detectors::geo_velocity::familiar(
                        std::slice::from_ref(place),
                        loc,
                        params.min_travel_km,
                    )
                }) {
                    place.seen = Some(place.seen.map_or(now, |t| t.max(now)));
                } else {
                    if p.places.len() >= cap {
                        p.places.remove(0);
                    }
                    p.places.push(crate::state::Place {
                        latitude: loc.latitude,
                        longitude: loc.longitude,
                        radius_km: loc.radius_km,
                        seen: Some(now),
                    });
                }
            }
        }
        // The last located event, from sessions not under suspicion only, so
        // that an attacker's events do not make the victim's next login look
        // like impossible travel.
        if clean_session
            && !shared
            && let Some(loc) = ip_info.and_then(|i| i.location.as_ref())
        {
            p.last_fix = Some(Fix {
                time: now,
                latitude: loc.latitude,
                longitude: loc.longitude,
                radius_km: loc.radius_km,
                label: loc.label(),
                network,
            });
        }
        credit
    }
}

/// For a clean authentication, per level of the context hierarchy that the
/// principal has a history at: whether its value is new. The same
/// conditions as the novelty detectors', so that the rates are of what
/// they would have reported.
fn context_novelty(
    p: &PrincipalState,
    event: &Event,
    ip_info: Option<&IpInfo>,
    network: Option<u64>,
    device: Option<u64>,
    shared: bool,
    params: &crate::policy::DetectorParams,
) -> [Option<(ContextLevel, bool)>; CONTEXT_LEVELS] {
    let mut out = [None; CONTEXT_LEVELS];
    if !shared {
        if let Some(n) = network
            && p.networks.len() > 0
        {
            let known = p.networks.contains(&n);
            out[0] = Some((ContextLevel::Network, !known));
            if known
                && p.prefixes.len() > 0
                && let Some(px) = event.context.ip.map(prefix_key)
            {
                out[1] = Some((ContextLevel::Address, !p.prefixes.contains(&px)));
            }
        }
        if let Some(loc) = ip_info.and_then(|i| i.location.as_ref())
            && let Some(cc) = &loc.country
            && p.countries.len() > 0
        {
            let known = p.countries.contains(cc);
            out[2] = Some((ContextLevel::Country, !known));
            if known && !p.places.is_empty() {
                let familiar =
                    detectors::geo_velocity::familiar(&p.places, loc, params.min_travel_km);
                out[3] = Some((ContextLevel::Location, !familiar));
            }
        }
    }
    if let Some(d) = device
        && p.devices.len() > 0
    {
        out[4] = Some((ContextLevel::Device, !p.devices.contains(&d)));
    }
    out
}

fn signal(code: SignalCode, weight: f64, evidence: &serde_json::Value) -> Signal {
    Signal {
        detector: Cow::Borrowed(code.detector()),
        code: Cow::Borrowed(code.name()),
        weight: (weight * 100.0).round() / 100.0,
        evidence: evidence.clone(),
    }
}
