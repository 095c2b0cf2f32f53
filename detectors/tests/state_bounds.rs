//! Bounded memory, idle expiry, duplicate ids, and robustness on arbitrary
//! event sequences.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use base64::Engine as _;
use proptest::prelude::*;
use riskstream_detectors::{Policy, StateLimits};
use riskstream_schemas::{Event, ParseLimits, RejectReason, Timestamp, parse_event};

fn event(id: &str, minute: i64, principal: &str, session: &str, name: &str, ip: &str) -> Event {
    let base = Timestamp::parse_rfc3339("2026-11-02T08:00:00Z").unwrap();
    let time = Timestamp(base.0 + minute * 60_000);
    let (kind, field) = if name.contains("login") || name.starts_with("mfa") {
        ("auth", "type")
    } else {
        ("action", "action")
    };
    let s = format!(
        r#"{{"schema":"riskstream.event.v1","kind":"{kind}","id":"{id}","time":"{time}","principal":{{"id":"{principal}"}},"session":"{session}","{field}":"{name}","context":{{"ip":"{ip}","device_id":"d-{principal}"}},"auth":{{"aal":2}}}}"#
    );
    parse_event(s.as_bytes(), ParseLimits::default()).unwrap()
}

/// Event `e{n}` of principal `a`'s session: a page view at minute `n`.
fn view(n: i64) -> Event {
    event(&format!("e{n}"), n, "a", "s-a", "page.view", "81.2.69.1")
}

#[test]
fn principal_cap_evicts_the_least_recently_seen() {
    let limits = StateLimits {
        max_principals: 3,
        ..StateLimits::default()
    };
    let mut engine = common::engine_with(Policy::default_policy().unwrap(), limits);
    for (n, p) in ["a", "b", "c", "a", "d"].iter().enumerate() {
        engine
            .handle_event(&event(
                &format!("e{n}"),
                n as i64,
                p,
                &format!("s-{p}"),
                "login.success",
                "81.2.69.1",
            ))
            .unwrap();
    }
    let stats = engine.stats();
    assert_eq!(stats.principals, 3);
    assert_eq!(stats.evicted, 1);
    // "b" was the least recently seen: it starts over, its session at seq 1.
    let r = engine
        .handle_event(&event("e9", 9, "b", "s-b", "page.view", "81.2.69.1"))
        .unwrap();
    assert_eq!(r.seq, 1);
    // "a" was kept: its session continues.
    let r = engine
        .handle_event(&event("e10", 10, "a", "s-a", "page.view", "81.2.69.1"))
        .unwrap();
    assert_eq!(r.seq, 3);
}

#[test]
fn idle_principals_expire_by_event_time() {
    let limits = StateLimits {
        idle_expiry_seconds: 3600,
        ..StateLimits::default()
    };
    let mut engine = common::engine_with(Policy::default_policy().unwrap(), limits);
    engine
        .handle_event(&event("e1", 0, "a", "s-a", "login.success", "81.2.69.1"))
        .unwrap();
    engine
        .handle_event(&event("e2", 30, "b", "s-b", "login.success", "81.2.69.1"))
        .unwrap();
    let due = engine.poll_timeout().unwrap();
    assert_eq!(due, event("x", 60, "a", "s", "page.view", "81.2.69.1").time);
    engine.handle_timeout(Timestamp(due.0 - 1));
    assert_eq!(engine.stats().principals, 2);
    engine.handle_timeout(due);
    assert_eq!(engine.stats().principals, 1);
    assert_eq!(engine.stats().expired, 1);
    engine.handle_timeout(Timestamp(due.0 + 3600 * 1000));
    assert_eq!(engine.stats().principals, 0);
    assert_eq!(engine.poll_timeout(), None);
}

#[test]
fn a_duplicate_is_replayed_while_remembered_then_rejected() {
    let limits = StateLimits {
        remembered_records: 2,
        remembered_ids: 100,
        ..StateLimits::default()
    };
    let mut engine = common::engine_with(Policy::default_policy().unwrap(), limits);
    let first = engine
        .handle_event(&event("e0", 0, "a", "s-a", "login.success", "81.2.69.1"))
        .unwrap();
    let again = engine
        .handle_event(&event("e0", 0, "a", "s-a", "login.success", "81.2.69.1"))
        .unwrap();
    assert_eq!(first, again);
    for n in 1..=3 {
        engine.handle_event(&view(n)).unwrap();
    }
    let err = engine
        .handle_event(&event("e0", 0, "a", "s-a", "login.success", "81.2.69.1"))
        .unwrap_err();
    assert_eq!(err.reason, RejectReason::Duplicate);
    // The duplicate changed nothing: the session goes on at seq 5.
    let r = engine.handle_event(&view(4)).unwrap();
    assert_eq!(r.seq, 5);
}

#[test]
fn duplicate_memory_is_bounded_and_survives_a_snapshot() {
    let limits = StateLimits {
        remembered_records: 2,
        remembered_ids: 3,
        ..StateLimits::default()
    };
    let mut engine = common::engine_with(Policy::default_policy().unwrap(), limits.clone());
    let records: Vec<_> = (0..5)
        .map(|n| engine.handle_event(&view(n)).unwrap())
        .collect();
    // A snapshot holds the ids and the records that go with them: the
    // restored engine answers repeats exactly as the original does.
    let mut restored = common::engine_with(Policy::default_policy().unwrap(), limits.clone());
    // ... and so does one restored from the list form snapshots held
    // before the compact one.
    let mut legacy = common::engine_with(Policy::default_policy().unwrap(), limits);
    for snapshot in engine.snapshot_all() {
        let bytes = snapshot.to_bytes();
        let compact: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let seen = &compact["state"]["seen_ids"];
        let records = seen["records"].as_array().unwrap();
        assert_eq!(records.len(), 2);
        let ids = base64::engine::general_purpose::STANDARD
            .decode(seen["ids"].as_str().unwrap())
            .unwrap();
        assert_eq!(ids.len(), 3 * 8);
        let unrecorded = 3 - records.len();
        let list: Vec<serde_json::Value> = ids
            .chunks_exact(8)
            .enumerate()
            .map(|(i, h)| {
                serde_json::json!({
                    "hash": u64::from_le_bytes(h.try_into().unwrap()),
                    "record": i.checked_sub(unrecorded).map_or(serde_json::Value::Null, |r| records[r].clone()),
                })
            })
            .collect();
        let mut old = compact.clone();
        old["state"]["seen_ids"] = serde_json::Value::Array(list);
        restored.restore_principal(
            riskstream_detectors::PrincipalSnapshot::from_bytes(&bytes).unwrap(),
        );
        legacy.restore_principal(
            riskstream_detectors::PrincipalSnapshot::from_bytes(&serde_json::to_vec(&old).unwrap())
                .unwrap(),
        );
    }
    for e in [&mut engine, &mut restored, &mut legacy] {
        // The last two ids keep their records.
        for n in [3, 4] {
            let again = e.handle_event(&view(n)).unwrap();
            assert_eq!(again, records[n as usize]);
        }
        // The third newest id is remembered without its record.
        let err = e.handle_event(&view(2)).unwrap_err();
        assert_eq!(err.reason, RejectReason::Duplicate);
        // Older ids are forgotten: scored again as new events.
        let fresh = e.handle_event(&view(1)).unwrap();
        assert_eq!(fresh.seq, 6);
        // ... which pushes e2 out of the bound in turn.
        assert!(e.handle_event(&view(2)).is_ok());
    }
}

const IPS: &[&str] = &[
    "81.2.69.1",
    "175.16.199.3",
    "45.1.1.9",
    "103.2.2.1",
    "2a02:c7f::1",
    "10.0.0.1",
    "185.220.101.4",
    "90.1.1.1",
];
const NAMES: &[&str] = &[
    "login.success",
    "login.failure",
    "mfa.push_denied",
    "mfa.success",
    "data.export",
    "page.view",
    "payment.approve",
    "device.enroll",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Whatever the order, addresses and names, the engine answers every
    /// event, scores stay in range and each session's seq is gap-free.
    #[test]
    fn arbitrary_sequences_keep_the_invariants(steps in proptest::collection::vec((0i64..5000, 0usize..3, 0usize..4, 0usize..IPS.len(), 0usize..NAMES.len()), 1..120)) {
        let mut engine = common::engine();
        let mut last_seq: HashMap<String, u64> = HashMap::new();
        for (n, (minute, p, s, ip, name)) in steps.into_iter().enumerate() {
            let session = format!("s-{p}-{s}");
            let e = event(&format!("e{n}"), minute, &format!("u-{p}"), &session, NAMES[name], IPS[ip]);
            let r = engine.handle_event(&e).unwrap();
            prop_assert!(r.score <= 100);
            let prev = last_seq.insert(session.clone(), r.seq).unwrap_or(0);
            prop_assert_eq!(r.seq, prev + 1);
            prop_assert!(r.signals.iter().all(|s| s.weight.is_finite()));
            let enc = serde_json::to_vec(&r).unwrap();
            prop_assert!(!enc.is_empty());
        }
    }
}
