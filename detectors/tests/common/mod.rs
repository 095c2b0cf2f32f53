//! A small GeoIP world for engine tests, built in the real MaxMind DB format
//! with real city coordinates, and helpers to make contract events.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use maxminddb_writer::Database;
use maxminddb_writer::paths::IpAddrWithMask;
use riskstream_detectors::{Engine, EngineConfig, GeoIp, Policy, StateLimits};
use serde::Serialize;

/// network, city, country, lat, lon, accuracy radius km, asn, org, anonymizer
pub type TestNetwork = (
    &'static str,
    &'static str,
    &'static str,
    f64,
    f64,
    u16,
    u32,
    &'static str,
    &'static str,
);

/// The test world.
pub const NETWORKS: &[TestNetwork] = &[
    (
        "81.2.69.0/24",
        "London",
        "GB",
        51.5142,
        -0.0931,
        10,
        20001,
        "Thames Broadband",
        "",
    ),
    (
        "81.2.70.0/24",
        "London",
        "GB",
        51.5142,
        -0.0931,
        100,
        20002,
        "Albion Mobile",
        "",
    ),
    (
        "81.2.72.0/24",
        "Manchester",
        "GB",
        53.4808,
        -2.2426,
        20,
        20002,
        "Albion Mobile",
        "",
    ),
    (
        "81.2.71.0/24",
        "Reading",
        "GB",
        51.4543,
        -0.9781,
        20,
        20003,
        "Berkshire Net",
        "",
    ),
    (
        "90.1.1.0/24",
        "Paris",
        "FR",
        48.8566,
        2.3522,
        20,
        30001,
        "Lutece Telecom",
        "",
    ),
    (
        "91.1.1.0/24",
        "Frankfurt",
        "DE",
        50.1109,
        8.6821,
        20,
        40001,
        "Acme Corp VPN",
        "",
    ),
    (
        "175.16.199.0/24",
        "Changchun",
        "CN",
        43.88,
        125.3228,
        50,
        50001,
        "Jilin Net",
        "",
    ),
    (
        "45.1.1.0/24",
        "Sydney",
        "AU",
        -33.8688,
        151.2093,
        100,
        60001,
        "Cloudy Hosting",
        "hosting",
    ),
    (
        "185.220.101.0/24",
        "Berlin",
        "DE",
        52.52,
        13.405,
        50,
        60002,
        "Onion Relay",
        "tor",
    ),
    (
        "103.1.1.0/24",
        "Suva",
        "FJ",
        -18.1248,
        178.4501,
        25,
        70001,
        "Fiji Net",
        "",
    ),
    (
        "103.2.2.0/24",
        "Apia",
        "WS",
        -13.8333,
        -171.7667,
        25,
        70002,
        "Samoa Net",
        "",
    ),
    (
        "77.1.1.0/24",
        "Manchester",
        "GB",
        53.4808,
        -2.2426,
        1000,
        20004,
        "Wide Radius Net",
        "",
    ),
    (
        "2a02:c7f::/32",
        "London",
        "GB",
        51.5142,
        -0.0931,
        10,
        20001,
        "Thames Broadband",
        "",
    ),
    (
        "2406:3000::/32",
        "Changchun",
        "CN",
        43.88,
        125.3228,
        50,
        50001,
        "Jilin Net",
        "",
    ),
];

#[derive(Serialize)]
struct Names<'a> {
    en: &'a str,
}
#[derive(Serialize)]
struct NamedCity<'a> {
    names: Names<'a>,
}
#[derive(Serialize)]
struct Country<'a> {
    iso_code: &'a str,
}
#[derive(Serialize)]
struct Loc {
    latitude: f64,
    longitude: f64,
    accuracy_radius: u16,
}
#[derive(Serialize)]
struct City<'a> {
    city: NamedCity<'a>,
    country: Country<'a>,
    location: Loc,
}
#[derive(Serialize)]
struct Asn<'a> {
    autonomous_system_number: u32,
    autonomous_system_organization: &'a str,
}

fn path(cidr: &str) -> IpAddrWithMask {
    let (addr, mask) = cidr.split_once('/').unwrap();
    let mask: u8 = mask.parse().unwrap();
    match addr.parse::<IpAddr>().unwrap() {
        IpAddr::V4(v4) => IpAddrWithMask::new(IpAddr::V6(v4.to_ipv6_compatible()), mask + 96),
        v6 => IpAddrWithMask::new(v6, mask),
    }
}

fn new_db(kind: &str) -> Database {
    let mut db = Database::default();
    db.metadata.ip_version = maxminddb_writer::metadata::IpVersion::V6;
    db.metadata.database_type = kind.to_owned();
    db.metadata.binary_format_major_version = 2;
    db.metadata.languages = vec!["en".to_owned()];
    db
}

fn bytes(db: &Database) -> Vec<u8> {
    db.write_to(Vec::new()).unwrap()
}

/// City, ASN and anonymous-IP databases of [`NETWORKS`].
pub fn test_geoip() -> GeoIp {
    let mut city = new_db("GeoIP2-City");
    let mut asn = new_db("GeoLite2-ASN");
    let mut anon = new_db("GeoIP2-Anonymous-IP");
    for (net, name, cc, lat, lon, radius, as_no, org, flag) in NETWORKS {
        let d = city
            .insert_value(City {
                city: NamedCity {
                    names: Names { en: name },
                },
                country: Country { iso_code: cc },
                location: Loc {
                    latitude: *lat,
                    longitude: *lon,
                    accuracy_radius: *radius,
                },
            })
            .unwrap();
        city.insert_node(path(net), d);
        let d = asn
            .insert_value(Asn {
                autonomous_system_number: *as_no,
                autonomous_system_organization: org,
            })
            .unwrap();
        asn.insert_node(path(net), d);
        if !flag.is_empty() {
            let mut m = BTreeMap::new();
            m.insert("is_anonymous", true);
            m.insert(
                match *flag {
                    "tor" => "is_tor_exit_node",
                    "hosting" => "is_hosting_provider",
                    "proxy" => "is_public_proxy",
                    _ => "is_anonymous_vpn",
                },
                true,
            );
            let d = anon.insert_value(m).unwrap();
            anon.insert_node(path(net), d);
        }
    }
    GeoIp::from_bytes(Some(bytes(&city)), Some(bytes(&asn)), Some(bytes(&anon))).unwrap()
}

pub fn engine_with(policy: Policy, limits: StateLimits) -> Engine {
    Engine::new(Arc::new(EngineConfig {
        policy,
        geo: test_geoip(),
        limits,
        ip_observations: Default::default(),
    }))
}

pub fn engine() -> Engine {
    engine_with(Policy::default_policy().unwrap(), StateLimits::default())
}
