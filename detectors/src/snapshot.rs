//! Snapshots of engine state, for a changelog: one per principal (the unit
//! a partition owns), plus the tenant-infrastructure table.
//!
//! A shell writes a principal's snapshot after each event of that principal
//! (keyed by principal, compacted), and on taking over a partition restores
//! every snapshot of it before processing: the records that follow are then
//! the ones an uninterrupted engine would have given. Caches (the last
//! GeoIP answer, action sensitivities) are not state and are not kept.

use serde::{Deserialize, Serialize};

use crate::engine::{Engine, NetworkUse};
use crate::sources::{AsnKey, IpKey, SourceUse};
use crate::state::{ActionProfile, PrincipalState};

/// Version of the snapshot format, written in every snapshot.
pub const SNAPSHOT_VERSION: u32 = 1;

/// A snapshot that cannot be restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Not a snapshot of this format.
    #[error("not a riskstream state snapshot: {0}")]
    Decode(#[from] serde_json::Error),
    /// Written by another version of the format.
    #[error("snapshot version {found}, this engine reads version {expected}")]
    Version {
        /// The version in the snapshot.
        found: u32,
        /// The version this engine reads.
        expected: u32,
    },
}

/// The state of one principal.
#[derive(Debug, Serialize, Deserialize)]
pub struct PrincipalSnapshot {
    version: u32,
    tenant: String,
    principal: String,
    state: PrincipalState,
}

impl PrincipalSnapshot {
    /// The tenant.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The principal id (the changelog key).
    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// Serialised, for the changelog value.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising plain data to a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// From a changelog value.
    pub fn from_bytes(bytes: &[u8]) -> Result<PrincipalSnapshot, SnapshotError> {
        let s: PrincipalSnapshot = serde_json::from_slice(bytes)?;
        if s.version != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version {
                found: s.version,
                expected: SNAPSHOT_VERSION,
            });
        }
        Ok(s)
    }
}

/// The tenant-wide tables: which address ranges several of a tenant's
/// principals authenticate from, the peer groups' action profiles (per
/// tenant and per role) that principals' action models are smoothed with,
/// and the attack-source table (logins failing across principals per
/// address and AS).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct NetworksSnapshot {
    version: u32,
    /// (tenant hash, prefix key) and what is known of it, sorted.
    networks: Vec<((u64, u64), NetworkUse)>,
    /// Peer-group key and its action profile, sorted. Absent in snapshots
    /// written before action sequences were modelled.
    #[serde(default)]
    peers: Vec<(u64, ActionProfile)>,
    /// The attack-source table's addresses, least recently updated first
    /// (restoring them in this order rebuilds the eviction order). Absent
    /// in snapshots written before the table existed.
    #[serde(default)]
    ip_sources: Vec<(IpKey, SourceUse)>,
    /// Its AS numbers, in the same order.
    #[serde(default)]
    asn_sources: Vec<(AsnKey, SourceUse)>,
}

impl NetworksSnapshot {
    /// Serialised.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// From bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<NetworksSnapshot, SnapshotError> {
        let s: NetworksSnapshot = serde_json::from_slice(bytes)?;
        if s.version != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version {
                found: s.version,
                expected: SNAPSHOT_VERSION,
            });
        }
        Ok(s)
    }
}

/// A principal's snapshot by reference: the same JSON as
/// [`PrincipalSnapshot`], written without copying the state.
#[derive(Serialize)]
struct PrincipalSnapshotRef<'a> {
    version: u32,
    tenant: &'a str,
    principal: &'a str,
    state: &'a PrincipalState,
}

impl Engine {
    /// The serialised snapshot of one principal, if the engine tracks it:
    /// the bytes `principal_snapshot(..).to_bytes()` gives, in one pass
    /// and without copying the state (what a changelog writer wants).
    pub fn principal_snapshot_bytes(&self, tenant: &str, principal: &str) -> Option<Vec<u8>> {
        let key = crate::engine::principal_key(tenant, principal);
        self.principals.peek(&key).map(|state| {
            // Serialising plain data to a Vec cannot fail.
            serde_json::to_vec(&PrincipalSnapshotRef {
                version: SNAPSHOT_VERSION,
                tenant,
                principal,
                state,
            })
            .unwrap_or_default()
        })
    }

    /// The state of one principal, if the engine tracks it.
    pub fn principal_snapshot(&self, tenant: &str, principal: &str) -> Option<PrincipalSnapshot> {
        let key = crate::engine::principal_key(tenant, principal);
        self.principals.peek(&key).map(|state| PrincipalSnapshot {
            version: SNAPSHOT_VERSION,
            tenant: tenant.to_owned(),
            principal: principal.to_owned(),
            state: state.clone_state(),
        })
    }

    /// Every principal's state, least recently seen first, so that
    /// restoring them in this order rebuilds the same eviction order.
    pub fn snapshot_all(&self) -> Vec<PrincipalSnapshot> {
        let mut all: Vec<PrincipalSnapshot> = self
            .principals
            .iter()
            .filter_map(|(key, state)| {
                let (tenant, principal) = key.split_once('\u{1f}')?;
                Some(PrincipalSnapshot {
                    version: SNAPSHOT_VERSION,
                    tenant: tenant.to_owned(),
                    principal: principal.to_owned(),
                    state: state.clone_state(),
                })
            })
            .collect();
        all.reverse();
        all
    }

    /// Restores (or replaces) one principal's state, as most recently seen.
    pub fn restore_principal(&mut self, snapshot: PrincipalSnapshot) {
        let key = crate::engine::principal_key(&snapshot.tenant, &snapshot.principal);
        if !self.principals.contains(&key)
            && self.principals.len() >= self.config().limits.max_principals
        {
            self.principals.pop_lru();
        }
        self.principals.put(key, snapshot.state);
    }

    /// Forgets a principal (a changelog tombstone).
    pub fn forget_principal(&mut self, tenant: &str, principal: &str) {
        self.principals
            .pop(&crate::engine::principal_key(tenant, principal));
    }

    /// The tenant-wide tables (infrastructure networks, peer groups).
    pub fn networks_snapshot(&self) -> NetworksSnapshot {
        self.networks_snapshot_of(true)
    }

    /// [`Engine::networks_snapshot`] without the attack-source table: for
    /// a shell that rebuilds that table from a shared topic instead (the
    /// table can hold every instance's observations of a day, too much to
    /// rewrite at each checkpoint).
    pub fn networks_snapshot_without_sources(&self) -> NetworksSnapshot {
        self.networks_snapshot_of(false)
    }

    fn networks_snapshot_of(&self, sources: bool) -> NetworksSnapshot {
        let mut networks: Vec<((u64, u64), NetworkUse)> =
            self.networks.iter().map(|(k, v)| (*k, v.clone())).collect();
        networks.sort_by_key(|(k, _)| *k);
        let mut peers: Vec<(u64, ActionProfile)> =
            self.peers.iter().map(|(k, v)| (*k, v.clone())).collect();
        peers.sort_by_key(|(k, _)| *k);
        let mut ip_sources: Vec<(IpKey, SourceUse)> = Vec::new();
        let mut asn_sources: Vec<(AsnKey, SourceUse)> = Vec::new();
        if sources {
            ip_sources = self
                .sources
                .ips
                .iter()
                .map(|(k, v)| (*k, v.clone()))
                .collect();
            ip_sources.reverse();
            asn_sources = self
                .sources
                .asns
                .iter()
                .map(|(k, v)| (*k, v.clone()))
                .collect();
            asn_sources.reverse();
        }
        NetworksSnapshot {
            version: SNAPSHOT_VERSION,
            networks,
            peers,
            ip_sources,
            asn_sources,
        }
    }

    /// Restores the tenant-wide tables.
    pub fn restore_networks(&mut self, snapshot: NetworksSnapshot) {
        self.networks = snapshot.networks.into_iter().collect();
        self.peers = snapshot.peers.into_iter().collect();
        self.sources.ips.clear();
        for (k, v) in snapshot.ip_sources {
            self.sources.ips.put(k, v);
        }
        self.sources.asns.clear();
        for (k, v) in snapshot.asn_sources {
            self.sources.asns.put(k, v);
        }
    }
}

/// What a session's latest record said, as the engine holds it: what a
/// shell needs to turn the next record into CAEP events (a level change, an
/// assurance change) even when the session's earlier records were scored by
/// another instance before a partition moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionView {
    /// `seq` of the session's latest record.
    pub seq: u64,
    /// `level` of that record.
    pub level: riskstream_schemas::Level,
    /// `assurance.aal` of that record.
    pub aal: u8,
}

impl Engine {
    /// The latest record's view of a session, if the engine tracks it (a
    /// read: the principal's recency does not change).
    pub fn session_view(
        &self,
        tenant: &str,
        principal: &str,
        session: &str,
    ) -> Option<SessionView> {
        let key = crate::engine::principal_key(tenant, principal);
        let state = self.principals.peek(&key)?;
        state
            .sessions
            .iter()
            .find(|s| s.id == session && s.seq > 0)
            .map(|s| SessionView {
                seq: s.seq,
                level: s.level,
                aal: s.aal,
            })
    }
}
