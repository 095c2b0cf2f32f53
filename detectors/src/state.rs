//! Per-principal and per-session state, bounded.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use riskstream_schemas::{Level, PrincipalType, RiskRecord, Timestamp};
use rustc_hash::{FxHashSet, FxHasher};
use serde::{Deserialize, Serialize};

use crate::detectors::{Finding, SignalCode};
use crate::geo::IpInfo;

/// A 64-bit hash of a string (ids, device ids, user-agent skeletons).
pub(crate) fn hash_str(s: &str) -> u64 {
    let mut h = FxHasher::default();
    s.hash(&mut h);
    h.finish()
}

/// A user agent with its version numbers removed, hashed: a browser that
/// updates itself keeps its skeleton, a different browser or OS does not.
pub(crate) fn user_agent_skeleton(ua: &str) -> u64 {
    let mut h = FxHasher::default();
    let mut prev_digit = false;
    for b in ua.bytes() {
        let digit = b.is_ascii_digit();
        if digit || (prev_digit && (b == b'.' || b == b'_')) {
            prev_digit = true;
            continue;
        }
        prev_digit = false;
        h.write_u8(b);
    }
    h.finish()
}

/// The network an address belongs to: its AS number when known, otherwise
/// its prefix (see [`prefix_key`]).
pub(crate) fn network_key(ip: IpAddr, asn: Option<u32>) -> u64 {
    match asn {
        Some(asn) => u64::from(asn),
        None => prefix_key(ip),
    }
}

/// The /24 (IPv4) or /48 (IPv6) an address belongs to: the granularity at
/// which a tenant's egress (office NAT, VPN concentrator) is shared, and
/// finer than an ISP's AS, which thousands of homes share.
pub(crate) fn prefix_key(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => (1 << 62) | u64::from(u32::from(v4) >> 8),
        IpAddr::V6(v6) => (2 << 62) | ((u128::from(v6) >> 80) as u64 & ((1 << 62) - 1)),
    }
}

/// A small most-recently-used set: the principal's known devices, networks,
/// countries. Linear search is faster than hashing at these sizes (≤ 256).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct History<T> {
    items: Vec<(T, Timestamp)>,
}

impl<T: PartialEq> History<T> {
    pub(crate) fn contains(&self, item: &T) -> bool {
        self.items.iter().any(|(i, _)| i == item)
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter().map(|(i, _)| i)
    }

    /// Records `item` as seen at `now`, evicting the least recently seen when
    /// `cap` is reached.
    pub(crate) fn touch(&mut self, item: T, now: Timestamp, cap: usize) {
        if let Some(slot) = self.items.iter_mut().find(|(i, _)| *i == item) {
            slot.1 = slot.1.max(now);
            return;
        }
        if self.items.len() >= cap
            && let Some(oldest) = self
                .items
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(n, _)| n)
        {
            self.items.swap_remove(oldest);
        }
        self.items.push((item, now));
    }

    /// Drops items last seen before `cutoff`; returns the earliest time
    /// still held, if any.
    pub(crate) fn forget_before(&mut self, cutoff: Timestamp) -> Option<Timestamp> {
        self.items.retain(|(_, t)| *t >= cutoff);
        self.items.iter().map(|(_, t)| *t).min()
    }
}

/// The levels of the context hierarchy whose novelty is counted, coarse to
/// fine within each branch (Freeman et al., NDSS 2016: IP -> AS -> country,
/// user agent -> browser -> OS -> device type; here AS -> address range,
/// country -> place, the device, and device type -> OS -> browser -> user
/// agent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ContextLevel {
    /// The AS (`unfamiliar_network`).
    Network = 0,
    /// The /24 or /48, given a known AS (`unfamiliar_address`).
    Address = 1,
    /// The country (`new_country`).
    Country = 2,
    /// The place, given a known country (`unfamiliar_location`).
    Location = 3,
    /// The device id (`new_device`).
    Device = 4,
    /// The kind of client device, from the user agent: pc, smartphone…
    /// (`new_device_type`).
    DeviceType = 5,
    /// The operating system, given a known device type (`new_platform`).
    Platform = 6,
    /// The browser, given a known OS (`new_browser`).
    Browser = 7,
    /// The exact user agent, given a known browser: a version or build
    /// (`new_browser_version`).
    Agent = 8,
}

/// Levels in [`ContextLevel`].
pub(crate) const CONTEXT_LEVELS: usize = 9;

/// Reads a counts array written with fewer levels (a snapshot from before
/// the user-agent levels) as zeros for the missing ones.
fn padded_levels<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<[u32; CONTEXT_LEVELS], D::Error> {
    let counts = Vec::<u32>::deserialize(d)?;
    if counts.len() > CONTEXT_LEVELS {
        return Err(serde::de::Error::invalid_length(
            counts.len(),
            &"at most one count per context level",
        ));
    }
    let mut out = [0; CONTEXT_LEVELS];
    out[..counts.len()].copy_from_slice(&counts);
    Ok(out)
}

/// How often clean authentications came with a value new at each level:
/// the principal's (or its role's) own rate of novelty, which its
/// likelihood ratio of a new value divides by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ContextNovelty {
    /// Clean authentications judged at each level.
    #[serde(deserialize_with = "padded_levels")]
    pub trials: [u32; CONTEXT_LEVELS],
    /// Of which with a value new to the principal.
    #[serde(deserialize_with = "padded_levels")]
    pub new: [u32; CONTEXT_LEVELS],
}

impl ContextNovelty {
    /// Counts one clean authentication at `level`; past `cap` trials the
    /// level's counts are halved (old habits fade, as the histories do).
    pub(crate) fn count(&mut self, level: ContextLevel, new: bool, cap: u32) {
        let l = level as usize;
        self.trials[l] += 1;
        self.new[l] += u32::from(new);
        if self.trials[l] > cap {
            self.trials[l] /= 2;
            self.new[l] /= 2;
        }
    }

    /// The smoothed rate of novelty at `level`: `strength` pseudo-trials at
    /// `prior` added to the counts (a Beta prior).
    pub(crate) fn rate(&self, level: ContextLevel, prior: f64, strength: f64) -> f64 {
        let l = level as usize;
        (f64::from(self.new[l]) + strength * prior) / (f64::from(self.trials[l]) + strength)
    }
}

/// A user agent placed in the hierarchy device type -> OS -> browser ->
/// exact string, each level keyed by a hash of itself and its parents.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Client {
    pub device_type: u64,
    pub platform: u64,
    pub browser: u64,
    pub agent: u64,
    /// The parsed names, for evidence.
    pub device_type_name: Arc<str>,
    pub platform_name: Arc<str>,
    pub browser_name: Arc<str>,
}

impl Client {
    /// Places `ua` in the hierarchy ([woothee]'s classification; a client
    /// it does not know, a script's say, is `UNKNOWN` at every level).
    pub(crate) fn parse(ua: &str) -> Client {
        let parsed = woothee::parser::Parser::new().parse(ua);
        let (kind, os, name) = parsed
            .as_ref()
            .map_or(("UNKNOWN", "UNKNOWN", "UNKNOWN"), |r| {
                (r.category, r.os, r.name)
            });
        let mut h = FxHasher::default();
        kind.hash(&mut h);
        let device_type = h.finish();
        os.hash(&mut h);
        let platform = h.finish();
        name.hash(&mut h);
        let browser = h.finish();
        ua.hash(&mut h);
        let agent = h.finish();
        Client {
            device_type,
            platform,
            browser,
            agent,
            device_type_name: Arc::from(kind),
            platform_name: Arc::from(os),
            browser_name: Arc::from(name),
        }
    }
}

/// The clients a human authenticated with cleanly, per level of the
/// user-agent hierarchy.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ClientHistory {
    pub device_types: History<u64>,
    pub platforms: History<u64>,
    pub browsers: History<u64>,
    pub agents: History<u64>,
}

impl ClientHistory {
    /// The coarsest level at which `client` is new, given the levels above
    /// it are known; `None` when it is known at every level or nothing is
    /// known yet. Levels below a new one are new by construction and say
    /// nothing more.
    pub(crate) fn novelty(&self, client: &Client) -> Option<ContextLevel> {
        if self.device_types.len() == 0 {
            return None;
        }
        for (level, history, key) in self.levels(client) {
            if !history.contains(&key) {
                return Some(level);
            }
        }
        None
    }

    /// For the novelty rates: each level of the hierarchy judged (its
    /// parent known), with whether `client` is new there, down to the
    /// first new one (as the detector reports it); nothing while nothing
    /// is known.
    pub(crate) fn judged(&self, client: &Client) -> [Option<(ContextLevel, bool)>; 4] {
        let mut out = [None; 4];
        if self.device_types.len() == 0 {
            return out;
        }
        let new = self.novelty(client);
        for (slot, (level, _, _)) in out.iter_mut().zip(self.levels(client)) {
            *slot = Some((level, new == Some(level)));
            if new == Some(level) {
                break;
            }
        }
        out
    }

    /// Remembers every level of `client`.
    pub(crate) fn touch(&mut self, client: &Client, now: Timestamp, cap: usize) {
        self.device_types.touch(client.device_type, now, cap);
        self.platforms.touch(client.platform, now, cap);
        self.browsers.touch(client.browser, now, cap);
        self.agents.touch(client.agent, now, cap);
    }

    /// The levels, coarse to fine, each with its history and `client`'s
    /// key there.
    fn levels(&self, client: &Client) -> [(ContextLevel, &History<u64>, u64); 4] {
        [
            (
                ContextLevel::DeviceType,
                &self.device_types,
                client.device_type,
            ),
            (ContextLevel::Platform, &self.platforms, client.platform),
            (ContextLevel::Browser, &self.browsers, client.browser),
            (ContextLevel::Agent, &self.agents, client.agent),
        ]
    }
}

/// A place a principal authenticated from, for familiarity by distance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Place {
    pub latitude: f64,
    pub longitude: f64,
    pub radius_km: f64,
    /// When the principal last authenticated from within reach of it.
    /// Absent in snapshots written before history aged: such a place is
    /// kept until it is replaced.
    #[serde(default)]
    pub seen: Option<Timestamp>,
}

/// The last located event of a principal (geo-velocity's "from").
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Fix {
    pub time: Timestamp,
    pub latitude: f64,
    pub longitude: f64,
    pub radius_km: f64,
    pub label: String,
    /// The network the fix was seen from.
    pub network: Option<u64>,
}

/// A signal attached to a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StickySignal {
    pub finding: Finding,
    pub weight: f64,
}

/// Per-session state.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SessionState {
    pub id: String,
    /// Last `seq` issued.
    pub seq: u64,
    pub started: Timestamp,
    pub last_seen: Timestamp,
    /// Context the session started with.
    pub network: Option<u64>,
    pub network_label: Option<String>,
    pub ua_skeleton: Option<u64>,
    pub user_agent: Option<String>,
    pub device: Option<u64>,
    /// Highest aal reached in the session.
    pub aal: u8,
    pub last_strong_auth: Option<Timestamp>,
    /// Signals that stay with the session, one per code.
    pub sticky: Vec<StickySignal>,
    /// A strong authentication that satisfies step-ups while `sticky` has
    /// not grown since: (time, number of sticky signals then).
    pub satisfied: Option<(Timestamp, usize)>,
    pub level: Level,
    /// The session's previous action (hashed name), the state of the
    /// first-order action-transition model.
    #[serde(default)]
    pub last_action: Option<u64>,
}

impl SessionState {
    pub(crate) fn new(id: &str, now: Timestamp) -> SessionState {
        SessionState {
            id: id.to_owned(),
            seq: 0,
            started: now,
            last_seen: now,
            network: None,
            network_label: None,
            ua_skeleton: None,
            user_agent: None,
            device: None,
            aal: 0,
            last_strong_auth: None,
            sticky: Vec::new(),
            satisfied: None,
            level: Level::Low,
            last_action: None,
        }
    }

    pub(crate) fn has_sticky(&self, code: SignalCode) -> bool {
        self.sticky.iter().any(|s| s.finding.code == code)
    }
}

/// A remembered event id and, for the most recent ones, its record: the
/// form of [`SeenIds`] in snapshots written before the compact one, one per
/// id, oldest first. Still read, so that an older changelog restores.
#[derive(Debug, Deserialize)]
struct SeenId {
    hash: u64,
    record: Option<Arc<RiskRecord>>,
}

/// [`SeenIds`] as snapshots hold it: `ids`, the hashes as little-endian
/// `u64`s in base64, oldest first; `records`, the records of the newest
/// ids, oldest first.
///
/// The list of `{"hash": …, "record": null}` it replaces was 70 % of a
/// principal's changelog record (16 kB of 23 kB, measured on the seed-1
/// world): 43 bytes an id against 11 now.
#[derive(Serialize, Deserialize)]
struct CompactSeenIds<R> {
    ids: String,
    records: Vec<R>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SeenIdsWire {
    Compact(CompactSeenIds<Arc<RiskRecord>>),
    List(Vec<SeenId>),
}

/// The event ids a principal's events carried (hashed), oldest first, and
/// the records of the most recent ones, so that a retried event gets its
/// record again.
///
/// Every event asks whether its id was seen. The ids are kept in a hash set
/// beside the ordered list, so the question costs one probe. It was a scan
/// of the whole list (256 ids, 6 kB), which cost about 3 % of replay's time
/// in cache misses. The set is not state: it is rebuilt from the list when a
/// snapshot is restored ([`CompactSeenIds`] is the form snapshots hold).
#[derive(Debug, Default)]
pub(crate) struct SeenIds {
    /// Oldest first.
    order: VecDeque<u64>,
    /// The same hashes, for lookup.
    index: FxHashSet<u64>,
    /// The records of the last `records.len()` ids of `order`.
    records: VecDeque<Arc<RiskRecord>>,
}

/// Whether an id was seen, and its record if it is still kept.
pub(crate) enum Seen<'a> {
    New,
    Scored(&'a Arc<RiskRecord>),
    Forgotten,
}

impl SeenIds {
    pub(crate) fn lookup(&self, hash: u64) -> Seen<'_> {
        if !self.index.contains(&hash) {
            return Seen::New;
        }
        let kept = self.records.len();
        let newest = self.order.iter().rev().take(kept).position(|h| *h == hash);
        match newest {
            Some(back) => Seen::Scored(&self.records[kept - 1 - back]),
            None => Seen::Forgotten,
        }
    }

    /// Remembers a new id with its record, keeping the last `max_records`
    /// records and the last `max_ids` ids.
    pub(crate) fn remember(
        &mut self,
        hash: u64,
        record: Arc<RiskRecord>,
        max_records: usize,
        max_ids: usize,
    ) {
        self.order.push_back(hash);
        self.index.insert(hash);
        self.records.push_back(record);
        while self.order.len() > max_ids {
            if let Some(old) = self.order.pop_front() {
                self.index.remove(&old);
            }
        }
        let max_records = max_records.min(self.order.len());
        while self.records.len() > max_records {
            self.records.pop_front();
        }
    }
}

impl Serialize for SeenIds {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::with_capacity(self.order.len() * 8);
        for hash in &self.order {
            bytes.extend_from_slice(&hash.to_le_bytes());
        }
        CompactSeenIds {
            ids: BASE64.encode(bytes),
            records: self.records.iter().collect(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SeenIds {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut seen = SeenIds::default();
        match SeenIdsWire::deserialize(deserializer)? {
            SeenIdsWire::Compact(c) => {
                let bytes = BASE64
                    .decode(c.ids.as_bytes())
                    .map_err(|e| D::Error::custom(format!("seen_ids.ids: {e}")))?;
                if bytes.len() % 8 != 0 {
                    return Err(D::Error::custom(format!(
                        "seen_ids.ids: {} bytes, not a whole number of 8-byte hashes",
                        bytes.len()
                    )));
                }
                for chunk in bytes.chunks_exact(8) {
                    let mut h = [0u8; 8];
                    h.copy_from_slice(chunk);
                    let hash = u64::from_le_bytes(h);
                    seen.order.push_back(hash);
                    seen.index.insert(hash);
                }
                if c.records.len() > seen.order.len() {
                    return Err(D::Error::custom(format!(
                        "seen_ids: {} records for {} ids",
                        c.records.len(),
                        seen.order.len()
                    )));
                }
                seen.records = c.records.into();
            }
            SeenIdsWire::List(list) => {
                for id in list {
                    seen.order.push_back(id.hash);
                    seen.index.insert(id.hash);
                    match id.record {
                        Some(r) => seen.records.push_back(r),
                        // Records are kept for the newest ids only: one
                        // without a record drops those of older ids.
                        None => seen.records.clear(),
                    }
                }
            }
        }
        Ok(seen)
    }
}

/// Per-principal state.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PrincipalState {
    pub kind: PrincipalType,
    pub last_seen: Timestamp,
    /// Clean strong authentications learned from (history maturity).
    pub learned: u32,
    pub last_fix: Option<Fix>,
    pub places: Vec<Place>,
    pub countries: History<Arc<str>>,
    pub networks: History<u64>,
    /// Address prefixes (/24, /48) authenticated from.
    pub prefixes: History<u64>,
    pub devices: History<u64>,
    pub tainted_devices: History<u64>,
    pub failures: VecDeque<Timestamp>,
    pub push_denials: VecDeque<Timestamp>,
    pub sessions: Vec<SessionState>,
    pub seen_ids: SeenIds,
    /// What the principal does: action counts, transitions, rates and
    /// numeric attributes (the action-sequence model).
    #[serde(default)]
    pub actions: ActionProfile,
    /// User-agent skeletons the principal authenticated with cleanly
    /// (workloads' and agents' client baseline).
    #[serde(default)]
    pub user_agents: History<u64>,
    /// A human's clients, by level of the user-agent hierarchy.
    #[serde(default)]
    pub clients: ClientHistory,
    /// When the oldest remembered context (device, network, place…) passes
    /// the policy's `history_max_age_days`: the next event at or after it
    /// prunes the histories. `None` when nothing is held yet (or a snapshot
    /// predates ageing): the next event computes it.
    #[serde(default)]
    pub history_expiry: Option<Timestamp>,
    /// How often the principal's clean authentications bring new context,
    /// per level (its own novelty rates).
    #[serde(default)]
    pub novelty: ContextNovelty,
    /// Cache of the last address looked up (not state: rebuilt on use).
    #[serde(skip)]
    pub last_ip: Option<(IpAddr, Arc<IpInfo>)>,
}

impl PrincipalState {
    /// A deep copy of the state (caches left empty).
    pub(crate) fn clone_state(&self) -> PrincipalState {
        // Through serde, so that a snapshot holds exactly what restores.
        serde_json::to_value(self)
            .and_then(serde_json::from_value)
            .unwrap_or_else(|_| PrincipalState::new(self.kind, self.last_seen))
    }

    pub(crate) fn new(kind: PrincipalType, now: Timestamp) -> PrincipalState {
        PrincipalState {
            kind,
            last_seen: now,
            learned: 0,
            last_fix: None,
            places: Vec::new(),
            countries: History::default(),
            networks: History::default(),
            prefixes: History::default(),
            devices: History::default(),
            tainted_devices: History::default(),
            failures: VecDeque::new(),
            push_denials: VecDeque::new(),
            sessions: Vec::new(),
            seen_ids: SeenIds::default(),
            actions: ActionProfile::default(),
            user_agents: History::default(),
            clients: ClientHistory::default(),
            history_expiry: None,
            novelty: ContextNovelty::default(),
            last_ip: None,
        }
    }

    /// Forgets context (devices, networks, address ranges, countries,
    /// places, clients) last seen more than `max_age_ms` before `now`, by
    /// event time. Cheap on the hot path: the histories are scanned only
    /// once the earliest item they hold has passed the age.
    pub(crate) fn age_histories(&mut self, now: Timestamp, max_age_ms: i64) {
        if self.history_expiry.is_some_and(|e| now.0 < e.0) {
            return;
        }
        let cutoff = Timestamp(now.0.saturating_sub(max_age_ms));
        self.places
            .retain(|p| p.seen.is_none_or(|t| t.0 >= cutoff.0));
        let earliest = [
            self.countries.forget_before(cutoff),
            self.networks.forget_before(cutoff),
            self.prefixes.forget_before(cutoff),
            self.devices.forget_before(cutoff),
            self.tainted_devices.forget_before(cutoff),
            self.user_agents.forget_before(cutoff),
            self.clients.device_types.forget_before(cutoff),
            self.clients.platforms.forget_before(cutoff),
            self.clients.browsers.forget_before(cutoff),
            self.clients.agents.forget_before(cutoff),
        ]
        .into_iter()
        .chain(self.places.iter().map(|p| p.seen))
        .flatten()
        .min();
        if self.last_fix.as_ref().is_some_and(|f| f.time.0 < cutoff.0) {
            self.last_fix = None;
        }
        self.history_expiry = earliest.map(|t| Timestamp(t.0.saturating_add(max_age_ms)));
    }
}

/// Running statistics of one numeric attribute of one action (e.g. the
/// `rows` of `data.export`), over `ln(1 + value)`: Welford's online mean and
/// sum of squared deviations, so that memory stays constant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct AttributeStats {
    /// Hash of `action` and attribute name.
    pub key: u64,
    /// Observations (halved with the action counts, see [`ActionProfile`]).
    pub n: f64,
    /// Mean of `ln(1 + value)`.
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
}

impl AttributeStats {
    /// Adds one observation (`x` already in log space).
    pub(crate) fn add(&mut self, x: f64) {
        self.n += 1.0;
        let d = x - self.mean;
        self.mean += d / self.n;
        self.m2 += d * (x - self.mean);
    }

    /// Sample variance, when there are two observations or more.
    pub(crate) fn variance(&self) -> Option<f64> {
        (self.n >= 2.0).then(|| self.m2 / (self.n - 1.0))
    }
}

/// Counts of what one principal (or one peer group) does.
///
/// Bounded: at most [`MAX_ACTIONS`] distinct actions, [`MAX_TRANSITIONS`]
/// transitions and [`MAX_ATTRIBUTES`] attribute statistics are kept, and
/// when the total passes the policy's `action_history` every count is
/// halved: old habits fade geometrically instead of being kept forever.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ActionProfile {
    /// (action hash, count).
    pub counts: Vec<(u64, u32)>,
    /// Sum of `counts`.
    pub total: u32,
    /// Of which high or critical.
    pub sensitive: u32,
    /// (previous action, action, count), within one session; sorted by
    /// (previous action, action), for binary search on the hot path.
    pub transitions: Vec<(u64, u64, u32)>,
    /// (previous action, transitions counted from it): the row sums of
    /// `transitions`, kept so that scoring needs one short scan.
    #[serde(default)]
    pub departures: Vec<(u64, u32)>,
    /// Recent actions of the principal (time, whether sensitive), within the
    /// burst window; every action, learned from or not.
    pub recent: VecDeque<(Timestamp, bool)>,
    /// Numeric attributes per action.
    pub attributes: Vec<AttributeStats>,
    /// For a role's profile: how often its members' clean authentications
    /// bring new context (the cold-start prior of a member's own rates).
    #[serde(default)]
    pub context: ContextNovelty,
}

/// Distinct actions counted per profile.
pub(crate) const MAX_ACTIONS: usize = 128;
/// Distinct transitions counted per principal.
pub(crate) const MAX_TRANSITIONS: usize = 512;
/// Attribute statistics per profile.
pub(crate) const MAX_ATTRIBUTES: usize = 32;
/// Recent actions kept for the burst window.
pub(crate) const MAX_RECENT: usize = 64;

impl ActionProfile {
    /// How often `action` was seen.
    pub(crate) fn count(&self, action: u64) -> u32 {
        self.counts
            .iter()
            .find(|(a, _)| *a == action)
            .map_or(0, |(_, c)| *c)
    }

    /// (transitions from `from`, of which to `to`).
    pub(crate) fn transition(&self, from: u64, to: u64) -> (u32, u32) {
        let out = self
            .departures
            .iter()
            .find(|(f, _)| *f == from)
            .map_or(0, |(_, c)| *c);
        if out == 0 {
            return (0, 0);
        }
        let hit = self
            .transitions
            .binary_search_by_key(&(from, to), |(f, t, _)| (*f, *t))
            .map_or(0, |i| self.transitions[i].2);
        (out, hit)
    }

    pub(crate) fn attribute(&self, key: u64) -> Option<&AttributeStats> {
        self.attributes.iter().find(|a| a.key == key)
    }

    /// Counts one action (and its transition from `previous`, if any).
    pub(crate) fn learn(&mut self, action: u64, sensitive: bool, previous: Option<u64>, cap: u32) {
        if let Some(slot) = self.counts.iter_mut().find(|(a, _)| *a == action) {
            slot.1 += 1;
        } else if self.counts.len() < MAX_ACTIONS {
            self.counts.push((action, 1));
        } else {
            return;
        }
        self.total += 1;
        self.sensitive += u32::from(sensitive);
        if let Some(from) = previous {
            let counted = match self
                .transitions
                .binary_search_by_key(&(from, action), |(f, t, _)| (*f, *t))
            {
                Ok(i) => {
                    self.transitions[i].2 += 1;
                    true
                }
                Err(i) if self.transitions.len() < MAX_TRANSITIONS => {
                    self.transitions.insert(i, (from, action, 1));
                    true
                }
                Err(_) => false,
            };
            if counted {
                if let Some(d) = self.departures.iter_mut().find(|(f, _)| *f == from) {
                    d.1 += 1;
                } else {
                    self.departures.push((from, 1));
                }
            }
        }
        if self.total > cap {
            self.halve();
        }
    }

    /// Adds a numeric attribute observation.
    pub(crate) fn learn_attribute(&mut self, key: u64, x: f64) {
        if let Some(a) = self.attributes.iter_mut().find(|a| a.key == key) {
            a.add(x);
        } else if self.attributes.len() < MAX_ATTRIBUTES {
            let mut a = AttributeStats {
                key,
                ..AttributeStats::default()
            };
            a.add(x);
            self.attributes.push(a);
        }
    }

    /// Halves every count (exponential forgetting), dropping what reaches 0.
    fn halve(&mut self) {
        for c in &mut self.counts {
            c.1 /= 2;
        }
        self.counts.retain(|c| c.1 > 0);
        self.total = self.counts.iter().map(|c| c.1).sum();
        self.sensitive /= 2;
        for t in &mut self.transitions {
            t.2 /= 2;
        }
        self.transitions.retain(|t| t.2 > 0);
        self.departures.clear();
        for (f, _, c) in &self.transitions {
            if let Some(d) = self.departures.iter_mut().find(|(x, _)| x == f) {
                d.1 += c;
            } else {
                self.departures.push((*f, *c));
            }
        }
        for a in &mut self.attributes {
            a.n /= 2.0;
            a.m2 /= 2.0;
        }
    }

    /// Records an action in the burst window and drops what fell out of it.
    pub(crate) fn push_recent(&mut self, now: Timestamp, sensitive: bool, window_seconds: u32) {
        let window_ms = i64::from(window_seconds) * 1000;
        while let Some((t, _)) = self.recent.front() {
            if now.0 - t.0 > window_ms || self.recent.len() >= MAX_RECENT {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        self.recent.push_back((now, sensitive));
    }
}

/// Records `now` in a time queue and drops what fell out of the window.
pub(crate) fn push_windowed(q: &mut VecDeque<Timestamp>, now: Timestamp, window_seconds: u32) {
    q.push_back(now);
    let window_ms = i64::from(window_seconds) * 1000;
    while let Some(front) = q.front() {
        if now.0 - front.0 > window_ms {
            q.pop_front();
        } else {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_levels_nest_from_device_type_to_exact_agent() {
        let mac_chrome = Client::parse(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        );
        let mac_chrome_next = Client::parse(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/132.0.0.0 Safari/537.36",
        );
        let mac_firefox = Client::parse(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:128.0) Gecko/20100101 Firefox/128.0",
        );
        let win_chrome = Client::parse(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        );
        let iphone = Client::parse(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1",
        );
        let script = Client::parse("python-requests/2.31.0");
        assert_eq!(&*mac_chrome.device_type_name, "pc");
        assert_eq!(&*iphone.device_type_name, "smartphone");
        assert_eq!(&*script.device_type_name, "UNKNOWN");
        assert_eq!(&*mac_chrome.browser_name, "Chrome");

        let mut h = ClientHistory::default();
        assert_eq!(h.novelty(&win_chrome), None, "nothing known: no judgement");
        h.touch(&mac_chrome, Timestamp(0), 16);
        assert_eq!(h.novelty(&mac_chrome), None);
        assert_eq!(h.novelty(&mac_chrome_next), Some(ContextLevel::Agent));
        assert_eq!(h.novelty(&mac_firefox), Some(ContextLevel::Browser));
        assert_eq!(h.novelty(&win_chrome), Some(ContextLevel::Platform));
        assert_eq!(h.novelty(&iphone), Some(ContextLevel::DeviceType));
        assert_eq!(h.novelty(&script), Some(ContextLevel::DeviceType));
        // The same browser name on another OS is another browser key.
        assert_ne!(mac_chrome.browser, win_chrome.browser);
    }

    #[test]
    fn novelty_counts_from_before_the_client_levels_still_load() {
        let old = r#"{"trials":[4,3,2,1,5],"new":[1,0,0,0,1]}"#;
        let n: ContextNovelty = serde_json::from_str(old).unwrap_or_default();
        assert_eq!(n.trials, [4, 3, 2, 1, 5, 0, 0, 0, 0]);
        assert_eq!(n.new, [1, 0, 0, 0, 1, 0, 0, 0, 0]);
        let too_many = r#"{"trials":[0,0,0,0,0,0,0,0,0,0],"new":[]}"#;
        assert!(serde_json::from_str::<ContextNovelty>(too_many).is_err());
    }

    #[test]
    fn user_agent_skeleton_ignores_versions_only() {
        let a = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 Chrome/120.0.6099.71 Safari/537.36";
        let b = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 Chrome/121.0.6167.85 Safari/537.36";
        let c = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0";
        assert_eq!(user_agent_skeleton(a), user_agent_skeleton(b));
        assert_ne!(user_agent_skeleton(a), user_agent_skeleton(c));
    }

    #[test]
    fn prefixes_are_slash_24_and_slash_48() {
        let p = |s: &str| prefix_key(s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])));
        assert_eq!(p("81.2.69.1"), p("81.2.69.254"));
        assert_ne!(p("81.2.69.1"), p("81.2.70.1"));
        assert_eq!(p("2a02:c7f:1:1::1"), p("2a02:c7f:1:ffff::9"));
        assert_ne!(p("2a02:c7f:1::1"), p("2a02:c7f:2::1"));
        // An AS number, when known, names the network instead.
        assert_eq!(
            network_key(
                "81.2.69.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
                Some(64500)
            ),
            64500
        );
    }

    #[test]
    fn novelty_rates_are_smoothed_towards_the_prior_and_fade() {
        let mut n = ContextNovelty::default();
        // No history: the prior.
        assert!((n.rate(ContextLevel::Network, 0.08, 20.0) - 0.08).abs() < 1e-12);
        // Twenty logins, none from a new AS: half way to zero.
        for _ in 0..20 {
            n.count(ContextLevel::Network, false, 180);
        }
        assert!((n.rate(ContextLevel::Network, 0.08, 20.0) - 0.04).abs() < 1e-12);
        // A road warrior: ten new ASes in twenty logins.
        let mut r = ContextNovelty::default();
        for i in 0..20 {
            r.count(ContextLevel::Network, i % 2 == 0, 180);
        }
        assert!(r.rate(ContextLevel::Network, 0.08, 20.0) > 0.25);
        // Other levels untouched; counts halve past the cap.
        assert_eq!(r.trials[ContextLevel::Device as usize], 0);
        for _ in 0..200 {
            r.count(ContextLevel::Network, false, 180);
        }
        assert!(r.trials[ContextLevel::Network as usize] <= 180);
    }

    #[test]
    fn ageing_forgets_old_context_by_event_time() {
        let day = 24 * 3600 * 1000;
        let mut p = PrincipalState::new(PrincipalType::Human, Timestamp(0));
        p.devices.touch(1, Timestamp(0), 16);
        p.devices.touch(2, Timestamp(100 * day), 16);
        p.age_histories(Timestamp(150 * day), 180 * day);
        assert!(p.devices.contains(&1) && p.devices.contains(&2));
        assert_eq!(p.history_expiry, Some(Timestamp(180 * day)));
        p.age_histories(Timestamp(181 * day), 180 * day);
        assert!(!p.devices.contains(&1) && p.devices.contains(&2));
        assert_eq!(p.history_expiry, Some(Timestamp(280 * day)));
    }

    #[test]
    fn history_evicts_the_least_recently_seen() {
        let mut h = History::default();
        h.touch(1u64, Timestamp(10), 2);
        h.touch(2u64, Timestamp(20), 2);
        h.touch(1u64, Timestamp(30), 2);
        h.touch(3u64, Timestamp(40), 2);
        assert!(h.contains(&1) && h.contains(&3) && !h.contains(&2));
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn windowed_queue_keeps_only_the_window() {
        let mut q = VecDeque::new();
        for t in [0, 100_000, 899_000, 901_000] {
            push_windowed(&mut q, Timestamp(t), 900);
        }
        assert_eq!(
            q.iter().map(|t| t.0).collect::<Vec<_>>(),
            vec![100_000, 899_000, 901_000]
        );
    }
}
