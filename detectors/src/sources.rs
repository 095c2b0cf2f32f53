//! Attack sources: which addresses and networks a tenant's logins fail
//! from, across principals (credential stuffing, password spraying).
//!
//! Per-principal state cannot see a list of passwords tried against many
//! accounts from one address; this table can. It is keyed by tenant and
//! address (and by tenant and AS number), and it holds, per source, which
//! principals failed to log in from it and which logged in, with the event
//! time of the latest of each. It is fed by [`IpObservation`]s: the
//! engine's own (made while scoring a human's `login.failure` or
//! `login.success`) and, in a deployment of several instances, those of the
//! others, which the shell relays (see `docs/DETECTION.md`, "Attack sources
//! across instances").
//!
//! Applying an observation is idempotent and commutes with other
//! observations of other principals: a source remembers per principal the
//! latest failure and the latest success, so an observation applied twice
//! (an instance reading its own back from the topic) or late changes
//! nothing it should not.
//!
//! Bounded: at most `max_ip_sources` addresses and `max_asn_sources`
//! networks (least recently updated evicted), each remembering at most
//! [`MAX_SOURCE_PRINCIPALS`] principals per outcome (the least recent
//! evicted), and entries older than the windows are dropped on update.

use std::net::IpAddr;
use std::num::NonZeroUsize;

use lru::LruCache;
use riskstream_schemas::Timestamp;
use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize};

use crate::state::hash_str;

/// The outcome of a login attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginOutcome {
    /// `login.failure`.
    Failure,
    /// `login.success`.
    Success,
}

/// One login attempt of a human principal from an address: what an engine
/// tells the other instances of a deployment (the shell publishes it on
/// the `riskstream.ip-observations` topic, keyed by [`IpObservation::key`])
/// and what it applies to its own attack-source table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpObservation {
    /// The tenant; sources never cross tenants.
    pub tenant: String,
    /// The client address.
    pub ip: IpAddr,
    /// Its AS number (the sender's `context.asn`, or GeoIP's), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// The principal id.
    pub principal: String,
    /// Failure or success.
    pub outcome: LoginOutcome,
    /// Event time of the attempt.
    pub time: Timestamp,
}

impl IpObservation {
    /// The key to publish under (`tenant/ip`): all observations of one
    /// address land in one partition, in order.
    pub fn key(&self) -> String {
        format!("{}/{}", self.tenant, self.ip)
    }

    /// Serialised (JSON), for a topic value.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising plain data to a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// From a topic value.
    pub fn from_bytes(bytes: &[u8]) -> Result<IpObservation, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// How an engine handles the observations its own events make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpObservationConfig {
    /// Apply the engine's own observations to its table as soon as the
    /// event is scored. Yes in replay (one engine sees every principal) and
    /// live (an instance knows its own at once; the others' come later).
    pub apply_own: bool,
    /// Queue the engine's own observations for
    /// [`Engine::drain_ip_observations`](crate::Engine::drain_ip_observations).
    /// No in replay (nobody drains); yes live, where the shell publishes
    /// them for the other instances.
    pub publish: bool,
}

impl IpObservationConfig {
    /// One engine sees everything (replay, tests): apply, do not queue.
    pub const REPLAY: IpObservationConfig = IpObservationConfig {
        apply_own: true,
        publish: false,
    };
    /// One of several instances: apply own observations at once and queue
    /// them for the shell to publish.
    pub const LIVE: IpObservationConfig = IpObservationConfig {
        apply_own: true,
        publish: true,
    };
}

impl Default for IpObservationConfig {
    fn default() -> Self {
        IpObservationConfig::REPLAY
    }
}

/// Principals remembered per source and outcome. The thresholds that use
/// them are a few to a few tens; a source that a hundred principals use is
/// either the tenant's own egress or an attack already well established.
pub(crate) const MAX_SOURCE_PRINCIPALS: usize = 64;

/// Who failed and who succeeded to log in from one source.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct SourceUse {
    /// (principal hash, latest failure).
    failed: Vec<(u64, Timestamp)>,
    /// (principal hash, latest success).
    succeeded: Vec<(u64, Timestamp)>,
}

/// What a source says at one moment, about everyone but the principal
/// asking.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SourceCounts {
    /// Other principals whose latest failure from the source is in the
    /// window and who have not logged in from it since: the accounts a
    /// list was tried against (a typo is followed by a login).
    pub unresolved: u32,
    /// Other principals that logged in from the source in the window
    /// (for an address: since its first failure).
    pub succeeded: u32,
}

impl SourceUse {
    fn record(&mut self, who: u64, outcome: LoginOutcome, time: Timestamp, keep_ms: i64) {
        let list = match outcome {
            LoginOutcome::Failure => &mut self.failed,
            LoginOutcome::Success => &mut self.succeeded,
        };
        if let Some(slot) = list.iter_mut().find(|(p, _)| *p == who) {
            slot.1 = slot.1.max(time);
        } else {
            list.push((who, time));
        }
        // Decay by event time: what fell out of the window goes.
        let cutoff = time.0.saturating_sub(keep_ms);
        for list in [&mut self.failed, &mut self.succeeded] {
            list.retain(|(_, t)| t.0 >= cutoff);
            while list.len() > MAX_SOURCE_PRINCIPALS {
                if let Some(oldest) = list
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, (p, t))| (*t, *p))
                    .map(|(i, _)| i)
                {
                    list.swap_remove(oldest);
                }
            }
        }
    }

    fn counts(&self, me: u64, now: Timestamp, window_ms: i64) -> SourceCounts {
        let from = now.0.saturating_sub(window_ms);
        let mut c = SourceCounts::default();
        for (p, tf) in &self.failed {
            if *p == me || tf.0 < from {
                continue;
            }
            let resolved = self.succeeded.iter().any(|(q, ts)| q == p && ts.0 >= tf.0);
            if !resolved {
                c.unresolved += 1;
            }
        }
        c.succeeded = self
            .succeeded
            .iter()
            .filter(|(p, t)| *p != me && t.0 >= from)
            .count() as u32;
        c
    }
}

/// Key of an address source: (tenant hash, address).
pub(crate) type IpKey = (u64, IpAddr);
/// Key of a network source: (tenant hash, AS number).
pub(crate) type AsnKey = (u64, u32);

/// The tenant-wide attack-source table (see the module doc).
pub(crate) struct AttackSources {
    pub(crate) ips: LruCache<IpKey, SourceUse, FxBuildHasher>,
    pub(crate) asns: LruCache<AsnKey, SourceUse, FxBuildHasher>,
}

fn cap(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
}

impl AttackSources {
    pub(crate) fn new(max_ips: usize, max_asns: usize) -> AttackSources {
        AttackSources {
            ips: LruCache::with_hasher(cap(max_ips), FxBuildHasher),
            asns: LruCache::with_hasher(cap(max_asns), FxBuildHasher),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ips.is_empty() && self.asns.is_empty()
    }

    /// Applies one observation; `keep_ip_ms` and `keep_asn_ms` are the
    /// windows entries are kept for.
    pub(crate) fn apply(&mut self, obs: &IpObservation, keep_ip_ms: i64, keep_asn_ms: i64) {
        let tenant = hash_str(&obs.tenant);
        self.record(
            (tenant, obs.ip),
            obs.asn.map(|a| (tenant, a)),
            principal_hash(&obs.tenant, &obs.principal),
            obs.outcome,
            obs.time,
            (keep_ip_ms, keep_asn_ms),
        );
    }

    /// [`AttackSources::apply`] from its parts (the engine's own
    /// observations, without building one).
    pub(crate) fn record(
        &mut self,
        ip: IpKey,
        asn: Option<AsnKey>,
        who: u64,
        outcome: LoginOutcome,
        time: Timestamp,
        (keep_ip_ms, keep_asn_ms): (i64, i64),
    ) {
        // An address is tracked from its first failure: a login from an
        // address nobody failed from resolves nothing, and most logins are
        // such, so the table stays the size of the failures, not of the
        // logins. (Its network keeps every login: the spray count compares
        // failures with logins.)
        match outcome {
            LoginOutcome::Failure => self
                .ips
                .get_or_insert_mut(ip, SourceUse::default)
                .record(who, outcome, time, keep_ip_ms),
            LoginOutcome::Success => {
                if let Some(u) = self.ips.get_mut(&ip) {
                    u.record(who, outcome, time, keep_ip_ms);
                }
            }
        }
        if let Some(asn) = asn {
            self.asns.get_or_insert_mut(asn, SourceUse::default).record(
                who,
                outcome,
                time,
                keep_asn_ms,
            );
        }
    }

    /// What the address says, for principal `me` at `now`.
    pub(crate) fn ip_counts(
        &self,
        key: &IpKey,
        me: u64,
        now: Timestamp,
        window_ms: i64,
    ) -> Option<SourceCounts> {
        self.ips.peek(key).map(|u| u.counts(me, now, window_ms))
    }

    /// What the network says, for principal `me` at `now`.
    pub(crate) fn asn_counts(
        &self,
        key: &AsnKey,
        me: u64,
        now: Timestamp,
        window_ms: i64,
    ) -> Option<SourceCounts> {
        self.asns.peek(key).map(|u| u.counts(me, now, window_ms))
    }
}

/// The hash a source remembers a principal by.
pub(crate) fn principal_hash(tenant: &str, principal: &str) -> u64 {
    hash_str(&crate::engine::principal_key(tenant, principal))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(p: &str, outcome: LoginOutcome, minute: i64) -> IpObservation {
        IpObservation {
            tenant: "acme".into(),
            ip: IpAddr::from([203, 0, 113, 7]),
            asn: Some(64500),
            principal: p.into(),
            outcome,
            time: Timestamp(minute * 60_000),
        }
    }

    const HOUR: i64 = 3600 * 1000;

    #[test]
    fn typos_are_resolved_lists_are_not() {
        let mut t = AttackSources::new(16, 16);
        for (p, o, m) in [
            ("a", LoginOutcome::Failure, 0),
            ("a", LoginOutcome::Success, 1),
            ("b", LoginOutcome::Failure, 2),
            ("c", LoginOutcome::Failure, 3),
            ("d", LoginOutcome::Failure, 4),
        ] {
            t.apply(&obs(p, o, m), 24 * HOUR, HOUR);
        }
        let key = (hash_str("acme"), IpAddr::from([203, 0, 113, 7]));
        let me = principal_hash("acme", "e");
        let c = t.ip_counts(&key, me, Timestamp(5 * 60_000), HOUR);
        assert_eq!(
            c,
            Some(SourceCounts {
                unresolved: 3,
                succeeded: 1
            })
        );
        // The asking principal's own failures are not counted.
        let c = t.ip_counts(
            &key,
            principal_hash("acme", "b"),
            Timestamp(5 * 60_000),
            HOUR,
        );
        assert_eq!(c.map(|c| c.unresolved), Some(2));
        // Out of the window, nothing.
        let c = t.ip_counts(&key, me, Timestamp(5 * 60_000 + 2 * HOUR), HOUR);
        assert_eq!(c.map(|c| c.unresolved), Some(0));
    }

    #[test]
    fn applying_twice_or_late_is_the_same() {
        let all = [
            obs("a", LoginOutcome::Failure, 0),
            obs("b", LoginOutcome::Failure, 2),
            obs("a", LoginOutcome::Success, 1),
        ];
        let mut once = AttackSources::new(16, 16);
        for o in &all {
            once.apply(o, 24 * HOUR, HOUR);
        }
        let mut twice = AttackSources::new(16, 16);
        for o in all.iter().chain(all.iter()).rev() {
            twice.apply(o, 24 * HOUR, HOUR);
        }
        let key = (hash_str("acme"), IpAddr::from([203, 0, 113, 7]));
        let me = principal_hash("acme", "z");
        let now = Timestamp(10 * 60_000);
        assert_eq!(
            once.ip_counts(&key, me, now, HOUR),
            twice.ip_counts(&key, me, now, HOUR)
        );
    }

    #[test]
    fn sources_and_their_principals_are_bounded() {
        let mut t = AttackSources::new(4, 2);
        for i in 0..200u8 {
            let mut o = obs(&format!("p{i}"), LoginOutcome::Failure, i64::from(i));
            o.ip = IpAddr::from([10, 0, i % 8, 1]);
            o.asn = Some(u32::from(i % 3));
            t.apply(&o, 24 * HOUR, HOUR);
        }
        assert_eq!(t.ips.len(), 4);
        assert_eq!(t.asns.len(), 2);
        assert!(
            t.ips
                .iter()
                .all(|(_, u)| u.failed.len() <= MAX_SOURCE_PRINCIPALS)
        );
    }

    #[test]
    fn observations_round_trip_as_json() {
        let o = obs("u-42", LoginOutcome::Failure, 3);
        let back = IpObservation::from_bytes(&o.to_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, o);
        assert_eq!(o.key(), "acme/203.0.113.7");
    }
}
