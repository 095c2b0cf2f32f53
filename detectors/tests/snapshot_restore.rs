//! A restart from snapshots gives the records of an uninterrupted run: the
//! property issue 3's changelog relies on when a partition moves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use riskstream_detectors::{
    Engine, EngineConfig, GeoIp, NetworksSnapshot, Policy, PrincipalSnapshot, SnapshotError,
    StateLimits,
};
use riskstream_schemas::{Event, ParseLimits, parse_event};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn config() -> Arc<EngineConfig> {
    let geo = |f: &str| Some(std::fs::read(root().join("fixtures/geo").join(f)).unwrap());
    Arc::new(EngineConfig {
        policy: Policy::default_policy().unwrap(),
        geo: GeoIp::from_bytes(
            geo("riskstream-city.mmdb"),
            geo("riskstream-asn.mmdb"),
            geo("riskstream-anonymous.mmdb"),
        )
        .unwrap(),
        limits: StateLimits::default(),
        ip_observations: Default::default(),
    })
}

fn events() -> Vec<Event> {
    std::fs::read_to_string(root().join("fixtures/small/events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| parse_event(l.as_bytes(), ParseLimits::default()).unwrap())
        .collect()
}

fn run(engine: &mut Engine, events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| serde_json::to_string(&engine.handle_event(e).unwrap()).unwrap())
        .collect()
}

/// Moves every principal and the networks table through bytes into a new
/// engine, as a changelog would.
fn move_state(from: &Engine, config: &Arc<EngineConfig>) -> Engine {
    let mut to = Engine::new(Arc::clone(config));
    for s in from.snapshot_all() {
        to.restore_principal(PrincipalSnapshot::from_bytes(&s.to_bytes()).unwrap());
    }
    to.restore_networks(
        NetworksSnapshot::from_bytes(&from.networks_snapshot().to_bytes()).unwrap(),
    );
    to
}

#[test]
fn restoring_snapshots_mid_stream_changes_no_record() {
    let config = config();
    let events = events();
    assert!(events.len() > 7000);
    let uninterrupted = run(&mut Engine::new(Arc::clone(&config)), &events);
    for split in [1, 977, 3777, events.len() - 1] {
        let mut before = Engine::new(Arc::clone(&config));
        let mut records = run(&mut before, &events[..split]);
        let mut after = move_state(&before, &config);
        assert_eq!(after.stats().principals, before.stats().principals);
        records.extend(run(&mut after, &events[split..]));
        let first_difference = records.iter().zip(&uninterrupted).position(|(a, b)| a != b);
        assert_eq!(first_difference, None, "split at {split}: records differ");
        assert_eq!(records.len(), uninterrupted.len());
    }
}

#[test]
fn a_redelivery_after_restore_gets_its_first_record() {
    let config = config();
    let events = events();
    let mut before = Engine::new(Arc::clone(&config));
    let records = run(&mut before, &events[..2000]);
    let mut after = move_state(&before, &config);
    let again = serde_json::to_string(&after.handle_event(&events[1999]).unwrap()).unwrap();
    assert_eq!(again, records[1999]);
}

#[test]
fn one_principal_at_a_time_as_a_changelog_writes_it() {
    let config = config();
    let events = events();
    let mut live = Engine::new(Arc::clone(&config));
    let mut changelog: std::collections::BTreeMap<(String, String), Vec<u8>> = Default::default();
    // After each event, its principal's snapshot replaces the previous one
    // (a compacted topic keyed by principal).
    for e in &events[..3000] {
        live.handle_event(e).unwrap();
        let s = live.principal_snapshot(&e.tenant, &e.principal.id).unwrap();
        changelog.insert((e.tenant.clone(), e.principal.id.clone()), s.to_bytes());
    }
    let mut restored = Engine::new(Arc::clone(&config));
    for bytes in changelog.values() {
        restored.restore_principal(PrincipalSnapshot::from_bytes(bytes).unwrap());
    }
    restored.restore_networks(live.networks_snapshot());
    // Per-principal order of restoring differs from the live LRU order,
    // which only matters at the cap; below it, records are the same.
    let rest_live = run(&mut live, &events[3000..]);
    let rest_restored = run(&mut restored, &events[3000..]);
    assert_eq!(rest_live, rest_restored);
}

#[test]
fn foreign_or_newer_snapshots_are_refused() {
    assert!(matches!(
        PrincipalSnapshot::from_bytes(b"not json"),
        Err(SnapshotError::Decode(_))
    ));
    let config = config();
    let events = events();
    let mut engine = Engine::new(config);
    engine.handle_event(&events[0]).unwrap();
    let s = engine
        .principal_snapshot(&events[0].tenant, &events[0].principal.id)
        .unwrap();
    let text =
        String::from_utf8(s.to_bytes())
            .unwrap()
            .replacen("\"version\":1", "\"version\":99", 1);
    let err = PrincipalSnapshot::from_bytes(text.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("snapshot version 99"), "{err}");
    assert_eq!(s.principal(), events[0].principal.id);
    assert_eq!(s.tenant(), events[0].tenant);
}

/// Snapshots written before the action-sequence model and machine
/// baselines (no `actions`, `user_agents`, sessions' `last_action`, nor the
/// peer groups beside the networks) still restore: the live pipeline's
/// changelog may hold them. The restored engine starts those models cold,
/// and keeps working.
#[test]
fn snapshots_without_the_action_model_still_restore() {
    let config = config();
    let events = events();
    let mut before = Engine::new(Arc::clone(&config));
    run(&mut before, &events[..2000]);
    let mut after = Engine::new(Arc::clone(&config));
    let mut restored = 0;
    for s in before.snapshot_all() {
        let mut v: serde_json::Value = serde_json::from_slice(&s.to_bytes()).unwrap();
        let state = v["state"].as_object_mut().unwrap();
        assert!(state.remove("actions").is_some());
        assert!(state.remove("user_agents").is_some());
        for session in state["sessions"].as_array_mut().unwrap() {
            session.as_object_mut().unwrap().remove("last_action");
        }
        let old = serde_json::to_vec(&v).unwrap();
        after.restore_principal(PrincipalSnapshot::from_bytes(&old).unwrap());
        restored += 1;
    }
    let mut networks: serde_json::Value =
        serde_json::from_slice(&before.networks_snapshot().to_bytes()).unwrap();
    assert!(networks.as_object_mut().unwrap().remove("peers").is_some());
    after.restore_networks(
        NetworksSnapshot::from_bytes(&serde_json::to_vec(&networks).unwrap()).unwrap(),
    );
    assert_eq!(after.stats().principals, restored);
    assert_eq!(run(&mut after, &events[2000..]).len(), events.len() - 2000);
}

#[test]
fn snapshot_bytes_by_reference_restore_like_the_owned_snapshot() {
    let config = config();
    let events = events();
    let mut engine = Engine::new(Arc::clone(&config));
    run(&mut engine, &events[..3000]);
    let all = engine.snapshot_all();
    assert!(!all.is_empty());
    for s in &all {
        let by_ref = engine
            .principal_snapshot_bytes(s.tenant(), s.principal())
            .unwrap();
        let owned: serde_json::Value = serde_json::from_slice(&s.to_bytes()).unwrap();
        let borrowed: serde_json::Value = serde_json::from_slice(&by_ref).unwrap();
        assert_eq!(owned, borrowed, "{}", s.principal());
        PrincipalSnapshot::from_bytes(&by_ref).unwrap();
    }
    assert!(
        engine
            .principal_snapshot_bytes("nobody", "nobody")
            .is_none()
    );
}
