//! The attack-source table across instances: what one engine observes,
//! drained and applied to another, gives that engine the same evidence a
//! single engine seeing everything has.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use riskstream_detectors::{
    Engine, EngineConfig, IpObservation, IpObservationConfig, LoginOutcome, Policy, StateLimits,
};
use riskstream_schemas::{Event, ParseLimits, RiskRecord, parse_event};

fn engine(mode: IpObservationConfig, limits: StateLimits) -> Engine {
    Engine::new(Arc::new(EngineConfig {
        policy: Policy::default_policy().unwrap(),
        geo: common::test_geoip(),
        limits,
        ip_observations: mode,
    }))
}

fn login(n: u32, principal: &str, ip: &str, asn: Option<u32>, success: bool) -> Event {
    let mut context = serde_json::json!({ "ip": ip, "user_agent": "python-requests/2.28.2" });
    if let Some(a) = asn {
        context["asn"] = a.into();
    }
    let json = serde_json::json!({
        "schema": "riskstream.event.v1",
        "kind": "auth",
        "id": format!("e-{n}"),
        "time": format!("2026-11-02T10:{:02}:00Z", n % 60),
        "tenant": "acme",
        "principal": { "id": principal, "type": "human" },
        "session": format!("s-{principal}"),
        "type": if success { "login.success" } else { "login.failure" },
        "context": context,
    });
    parse_event(json.to_string().as_bytes(), ParseLimits::default()).unwrap()
}

fn codes(r: &RiskRecord) -> Vec<String> {
    r.signals.iter().map(|s| s.code.to_string()).collect()
}

const IP: &str = "203.0.113.50";

#[test]
fn observations_drained_on_one_instance_inform_another() {
    let mut a = engine(IpObservationConfig::LIVE, StateLimits::default());
    let mut b = engine(IpObservationConfig::LIVE, StateLimits::default());
    let mut single = engine(IpObservationConfig::REPLAY, StateLimits::default());
    let failures: Vec<Event> = (2..=5)
        .map(|i| login(i, &format!("u-{i}"), IP, None, false))
        .collect();
    for e in &failures {
        a.handle_event(e).unwrap();
        single.handle_event(e).unwrap();
    }
    let drained: Vec<IpObservation> = a.drain_ip_observations().collect();
    assert_eq!(drained.len(), 4);
    assert!(drained.iter().all(|o| o.outcome == LoginOutcome::Failure));
    assert_eq!(a.drain_ip_observations().count(), 0, "drained once");

    let success = login(10, "u-1", IP, None, true);
    // Before the observations arrive, instance b knows nothing of the list.
    let mut early = engine(IpObservationConfig::LIVE, StateLimits::default());
    assert!(
        !codes(&early.handle_event(&success).unwrap())
            .contains(&"credential_stuffing_source".to_owned())
    );
    // Relayed (through bytes, as a topic would, and twice: idempotent).
    for o in drained.iter().chain(drained.iter()) {
        b.apply_remote_ip_observation(&IpObservation::from_bytes(&o.to_bytes()).unwrap());
    }
    let relayed = b.handle_event(&success).unwrap();
    let one = single.handle_event(&success).unwrap();
    assert!(codes(&relayed).contains(&"credential_stuffing_source".to_owned()));
    assert_eq!(
        serde_json::to_string(&relayed).unwrap(),
        serde_json::to_string(&one).unwrap()
    );
    // b's own observation of the success is queued for the others.
    let own: Vec<IpObservation> = b.drain_ip_observations().collect();
    assert_eq!(own.len(), 1);
    assert_eq!(own[0].outcome, LoginOutcome::Success);
    assert_eq!(own[0].key(), format!("acme/{IP}"));
}

#[test]
fn a_replay_engine_queues_nothing() {
    let mut e = engine(IpObservationConfig::REPLAY, StateLimits::default());
    for i in 2..=5 {
        e.handle_event(&login(i, &format!("u-{i}"), IP, None, false))
            .unwrap();
    }
    assert_eq!(e.drain_ip_observations().count(), 0);
    assert_eq!(e.stats().ip_sources, 1);
}

#[test]
fn an_undrained_outbox_stays_bounded() {
    let limits = StateLimits {
        max_pending_ip_observations: 2,
        ..StateLimits::default()
    };
    let mut e = engine(IpObservationConfig::LIVE, limits);
    for i in 2..=6 {
        e.handle_event(&login(i, &format!("u-{i}"), IP, None, false))
            .unwrap();
    }
    let stats = e.stats();
    assert_eq!(stats.pending_ip_observations, 2);
    assert_eq!(stats.dropped_ip_observations, 3);
    let kept: Vec<String> = e.drain_ip_observations().map(|o| o.principal).collect();
    assert_eq!(
        kept,
        vec!["u-5".to_owned(), "u-6".to_owned()],
        "the newest kept"
    );
}

#[test]
fn a_spray_through_one_provider_marks_its_network() {
    let mut e = engine(IpObservationConfig::REPLAY, StateLimits::default());
    // Ten accounts, each tried once from another address of AS 64999.
    for i in 0..10 {
        let ip = format!("198.18.{i}.7");
        e.handle_event(&login(
            i,
            &format!("u-{}", 100 + i),
            &ip,
            Some(64999),
            false,
        ))
        .unwrap();
    }
    let r = e
        .handle_event(&login(20, "u-1", "198.18.50.7", Some(64999), true))
        .unwrap();
    let c = codes(&r);
    assert!(c.contains(&"password_spray_source".to_owned()), "{c:?}");
    assert!(
        !c.contains(&"credential_stuffing_source".to_owned()),
        "{c:?}"
    );
    // Another network is not touched.
    let r = e
        .handle_event(&login(21, "u-2", "198.19.0.7", Some(65000), true))
        .unwrap();
    assert!(!codes(&r).contains(&"password_spray_source".to_owned()));
}
