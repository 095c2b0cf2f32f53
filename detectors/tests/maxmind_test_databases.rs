//! The engine on MaxMind's own test databases (../shared/data/geo), in the
//! real format, as the `maxminddb` crate reads production databases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use riskstream_detectors::{Engine, EngineConfig, GeoIp, Policy, StateLimits};
use riskstream_schemas::{ParseLimits, parse_event};

fn geo_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/geo");
    if dir.join("GeoLite2-City-Test.mmdb").exists() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: {} is absent (the shared MaxMind test databases)",
            dir.display()
        );
        None
    }
}

fn geoip(dir: &std::path::Path, anonymous: bool) -> GeoIp {
    let read = |f: &str| Some(std::fs::read(dir.join(f)).unwrap());
    GeoIp::from_bytes(
        read("GeoLite2-City-Test.mmdb"),
        read("GeoLite2-ASN-Test.mmdb"),
        if anonymous {
            read("GeoIP2-Anonymous-IP-Test.mmdb")
        } else {
            None
        },
    )
    .unwrap()
}

#[test]
fn lookups_match_maxmind_source_data() {
    let Some(dir) = geo_dir() else { return };
    let geo = geoip(&dir, true);
    let london = geo.lookup("81.2.69.142".parse().unwrap());
    let loc = london.location.unwrap();
    assert_eq!(loc.label(), "London, GB");
    assert!((loc.latitude - 51.5142).abs() < 0.01 && (loc.longitude + 0.0931).abs() < 0.01);
    let cn = geo
        .lookup("175.16.199.7".parse().unwrap())
        .location
        .unwrap();
    assert_eq!(cn.label(), "Changchun, CN");
    let se = geo
        .lookup("89.160.20.130".parse().unwrap())
        .location
        .unwrap();
    assert_eq!(se.country.as_deref(), Some("SE"));
    // Anonymous-IP flags.
    let tor = geo.lookup("1.124.213.1".parse().unwrap());
    assert!(tor.anonymizer.tor && tor.anonymizer.vpn);
    let hosting = geo.lookup("71.160.223.5".parse().unwrap());
    assert!(hosting.anonymizer.hosting && !hosting.anonymizer.tor);
    // ASN.
    let google = geo.lookup("1.0.0.1".parse().unwrap());
    assert_eq!(google.asn, Some(15169));
    assert_eq!(google.as_org.as_deref(), Some("Google Inc."));
    // Nothing known: no location, no error.
    let none = geo.lookup("10.0.0.1".parse().unwrap());
    assert!(none.location.is_none() && none.asn.is_none());
}

#[test]
fn contract_example_london_to_changchun_is_impossible_travel() {
    let Some(dir) = geo_dir() else { return };
    let config = EngineConfig {
        policy: Policy::default_policy().unwrap(),
        geo: geoip(&dir, false),
        limits: StateLimits::default(),
        ip_observations: Default::default(),
    };
    // Without the anonymous-IP database: in it, MaxMind's test network
    // 81.2.69.0/24 carries every anonymizer flag, which would (rightly) keep
    // the London login from serving as a trusted origin.
    let mut engine = Engine::new(Arc::new(config));
    let ev = |id: &str, time: &str, session: &str, ty: &str, ip: &str, dev: &str| {
        let (kind, name) = if ty.starts_with("login") {
            ("auth", "type")
        } else {
            ("action", "action")
        };
        let s = format!(
            r#"{{"schema":"riskstream.event.v1","kind":"{kind}","id":"{id}","time":"{time}","tenant":"acme","principal":{{"id":"u-42","role":"finance"}},"session":"{session}","{name}":"{ty}","context":{{"ip":"{ip}","device_id":"{dev}","user_agent":"Mozilla/5.0 Chrome/120"}},"auth":{{"aal":2}}}}"#
        );
        parse_event(s.as_bytes(), ParseLimits::default()).unwrap()
    };
    let r = engine
        .handle_event(&ev(
            "e1",
            "2026-11-30T09:33:00Z",
            "s-1",
            "login.success",
            "81.2.69.142",
            "d-7",
        ))
        .unwrap();
    assert_eq!(r.decision.as_str(), "allow");
    let r = engine
        .handle_event(&ev(
            "e2",
            "2026-11-30T10:15:00Z",
            "s-9f2",
            "login.success",
            "175.16.199.20",
            "d-9",
        ))
        .unwrap();
    let travel = r
        .signals
        .iter()
        .find(|s| s.code == "impossible_travel")
        .expect("impossible_travel");
    assert_eq!(travel.evidence["from"], "London, GB");
    assert_eq!(travel.evidence["to"], "Changchun, CN");
    assert_eq!(travel.evidence["minutes"], 42.0);
    assert!(travel.evidence["km"].as_f64().unwrap() > 8000.0);
    let r = engine
        .handle_event(&ev(
            "e3",
            "2026-11-30T10:16:00Z",
            "s-9f2",
            "data.export",
            "175.16.199.20",
            "d-9",
        ))
        .unwrap();
    assert!(r.decision.is_intervention(), "{r:?}");
    assert_eq!(r.trigger.sensitivity.as_str(), "high");
}
