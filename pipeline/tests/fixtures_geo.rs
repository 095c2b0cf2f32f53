//! The fixture GeoIP databases: built from the committed `world.csv`, equal
//! to the committed `.mmdb` files, and readable with the real `maxminddb`
//! reader in the GeoIP2 City, ASN and Anonymous IP layouts.
//!
//! After changing `fixtures/geo/world.csv`, rebuild the committed files with
//! `RISKSTREAM_BLESS=1 cargo test -p riskstream --test fixtures_geo`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use maxminddb::{Reader, geoip2};
use riskstream::fixtures::{
    self, Cidr, GeoDatabases, NetworkKind, WorldNetwork, build_geoip, parse_world_csv, write_geoip,
};

fn built() -> GeoDatabases {
    build_geoip(fixtures::WORLD_CSV).expect("the committed world.csv builds")
}

fn rows() -> Vec<WorldNetwork> {
    parse_world_csv(fixtures::WORLD_CSV).expect("the committed world.csv parses")
}

/// First, second, middle and last address of a network.
fn probes(net: Cidr) -> Vec<IpAddr> {
    let size = net.size();
    vec![
        net.host(0),
        net.host(1),
        net.host(size / 2),
        net.host(size - 1),
    ]
}

#[test]
fn committed_databases_are_exactly_what_the_csv_builds() {
    let dbs = built();
    if std::env::var_os("RISKSTREAM_BLESS").is_some() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/geo");
        write_geoip(&dbs, &dir).expect("write the fixture databases");
        eprintln!("wrote the fixture databases to {}", dir.display());
        return;
    }
    let hint = "the committed .mmdb files differ from what fixtures/geo/world.csv builds; \
                run RISKSTREAM_BLESS=1 cargo test -p riskstream --test fixtures_geo";
    assert!(dbs.city == fixtures::FIXTURE_CITY_DB, "city: {hint}");
    assert!(dbs.asn == fixtures::FIXTURE_ASN_DB, "asn: {hint}");
    assert!(
        dbs.anonymous == fixtures::FIXTURE_ANONYMOUS_DB,
        "anonymous: {hint}"
    );
}

#[test]
fn building_twice_gives_the_same_bytes() {
    assert_eq!(built(), built());
}

#[test]
fn metadata_names_the_real_layouts() {
    let dbs = built();
    for (bytes, kind) in [
        (&dbs.city, "GeoIP2-City"),
        (&dbs.asn, "GeoLite2-ASN"),
        (&dbs.anonymous, "GeoIP2-Anonymous-IP"),
    ] {
        let reader = Reader::from_source(bytes.as_slice()).expect("opens");
        let m = reader.metadata();
        assert_eq!(m.database_type, kind);
        assert_eq!(m.ip_version, 6);
        assert_eq!(m.binary_format_major_version, 2);
        assert_eq!(m.build_epoch, fixtures::geo::FIXTURE_BUILD_EPOCH);
        assert_eq!(m.languages, vec!["en".to_owned()]);
        assert_eq!(m.description.len(), 1);
    }
}

#[test]
fn the_world_covers_what_the_generator_needs() {
    let rows = rows();
    let cities: Vec<&str> = rows.iter().map(|r| r.city.as_str()).collect();
    for city in [
        "London",
        "Reading",
        "Frankfurt am Main",
        "Mainz",
        "San Francisco",
        "San Jose",
        "Auckland",
        "Suva",
        "Honolulu",
        "Anchorage",
        "Singapore",
        "Paris",
        "Amsterdam",
        "New York",
        "Ashburn",
    ] {
        assert!(cities.contains(&city), "{city} missing");
    }
    let mut continents: Vec<&str> = rows.iter().map(|r| r.continent.as_str()).collect();
    continents.sort_unstable();
    continents.dedup();
    assert_eq!(continents, ["AF", "AS", "EU", "NA", "OC", "SA"]);
    for kind in NetworkKind::ALL {
        assert!(rows.iter().any(|r| r.kind == kind), "no {kind} network");
    }
    let infra = |tenant: &str, kind: NetworkKind| -> Vec<&str> {
        let mut v: Vec<&str> = rows
            .iter()
            .filter(|r| r.kind == kind && r.tenant().as_deref() == Some(tenant))
            .map(|r| r.city.as_str())
            .collect();
        v.dedup();
        v
    };
    assert_eq!(
        infra("acme", NetworkKind::Corporate),
        ["London", "New York"]
    );
    assert_eq!(
        infra("acme", NetworkKind::CorporateVpn),
        ["Frankfurt am Main", "Ashburn"]
    );
    assert_eq!(
        infra("globex", NetworkKind::Corporate),
        ["Paris", "Singapore"]
    );
    assert_eq!(infra("globex", NetworkKind::CorporateVpn), ["Amsterdam"]);
    assert!(rows.iter().any(|r| r.network.addr().is_ipv6()));
    for r in &rows {
        let radius = r.accuracy_radius;
        match r.kind {
            NetworkKind::Residential => assert!((5..=50).contains(&radius), "line {}", r.line),
            NetworkKind::Mobile => assert!((50..=200).contains(&radius), "line {}", r.line),
            NetworkKind::Hosting => assert!((100..=1000).contains(&radius), "line {}", r.line),
            _ => {}
        }
        if r.network.addr().is_ipv4() {
            assert!(
                (20..=24).contains(&r.network.prefix_len()),
                "line {}",
                r.line
            );
        } else {
            assert_eq!(r.network.prefix_len(), 48, "line {}", r.line);
        }
    }
}

#[test]
fn city_lookups_give_each_rows_place() {
    let dbs = built();
    let reader = Reader::from_source(dbs.city.as_slice()).expect("opens");
    let mut v4 = 0;
    let mut v6 = 0;
    for row in rows() {
        for ip in probes(row.network) {
            let result = reader.lookup(ip).expect("lookup");
            assert!(result.has_data(), "{ip} (line {}) has no data", row.line);
            let city: geoip2::City = result.decode().expect("decodes").expect("a record");
            let at = format!("{ip} (line {})", row.line);
            assert_eq!(city.city.names.english, Some(row.city.as_str()), "{at}");
            assert_eq!(
                city.country.iso_code,
                Some(row.country_iso.as_str()),
                "{at}"
            );
            assert_eq!(
                city.country.names.english,
                Some(row.country_name.as_str()),
                "{at}"
            );
            assert_eq!(
                city.registered_country.iso_code,
                Some(row.country_iso.as_str()),
                "{at}"
            );
            assert_eq!(city.continent.code, Some(row.continent.as_str()), "{at}");
            assert_eq!(city.location.latitude, Some(row.latitude), "{at}");
            assert_eq!(city.location.longitude, Some(row.longitude), "{at}");
            assert_eq!(
                city.location.accuracy_radius,
                Some(row.accuracy_radius),
                "{at}"
            );
            assert_eq!(
                city.location.time_zone,
                Some(row.time_zone.as_str()),
                "{at}"
            );
            let subdivision = city.subdivisions.first().and_then(|s| s.names.english);
            assert_eq!(subdivision, row.subdivision.as_deref(), "{at}");
            let network = result.network().expect("network");
            assert_eq!(network.prefix(), row.network.prefix_len(), "{at}");
            if ip.is_ipv4() {
                v4 += 1;
            } else {
                v6 += 1;
            }
        }
    }
    assert!(v4 > 100 && v6 > 20, "{v4} IPv4 and {v6} IPv6 probes");
}

#[test]
fn known_addresses_resolve_to_their_cities() {
    let dbs = built();
    let reader = Reader::from_source(dbs.city.as_slice()).expect("opens");
    let rows = rows();
    // The acme London office and the globex Singapore office, IPv4 and IPv6.
    for (city, kind, v6) in [
        ("London", NetworkKind::Corporate, false),
        ("London", NetworkKind::Corporate, true),
        ("Singapore", NetworkKind::Corporate, true),
        ("Auckland", NetworkKind::Residential, false),
        ("Honolulu", NetworkKind::Mobile, false),
    ] {
        let row = rows
            .iter()
            .find(|r| r.city == city && r.kind == kind && r.network.addr().is_ipv6() == v6)
            .expect("row");
        let ip = row.network.host(7);
        let c: geoip2::City = reader.lookup(ip).unwrap().decode().unwrap().unwrap();
        assert_eq!(c.city.names.english, Some(city), "{ip}");
    }
    let london = rows.iter().find(|r| r.city == "London").unwrap();
    assert_eq!((london.latitude, london.longitude), (51.5074, -0.1278));
    let auckland = rows.iter().find(|r| r.city == "Auckland").unwrap();
    assert_eq!(
        (auckland.latitude, auckland.longitude),
        (-36.8485, 174.7633)
    );
    assert_eq!(auckland.utc_offset_minutes, 13 * 60);
}

#[test]
fn addresses_outside_every_network_have_no_data() {
    let dbs = built();
    let rows = rows();
    let mut outside: Vec<IpAddr> = vec![
        IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)),
        IpAddr::V4(Ipv4Addr::new(81, 2, 69, 142)),
        IpAddr::V4(Ipv4Addr::new(175, 16, 199, 1)),
        IpAddr::V6("2001:4860:4860::8888".parse::<Ipv6Addr>().unwrap()),
        // An IPv4-mapped IPv6 address: this fixture has no alias for it.
        IpAddr::V6(Ipv4Addr::new(8, 8, 4, 4).to_ipv6_mapped()),
    ];
    // The address right after each network, when no other row holds it.
    for r in &rows {
        let after = r.network.host(r.network.size() - 1);
        let next = match after {
            IpAddr::V4(a) => u32::from(a)
                .checked_add(1)
                .map(|n| IpAddr::V4(Ipv4Addr::from(n))),
            IpAddr::V6(a) => u128::from(a)
                .checked_add(1)
                .map(|n| IpAddr::V6(Ipv6Addr::from(n))),
        };
        outside.extend(next);
    }
    outside.retain(|ip| !rows.iter().any(|r| r.network.contains(*ip)));
    assert!(outside.len() > 100);
    for bytes in [&dbs.city, &dbs.asn, &dbs.anonymous] {
        let reader = Reader::from_source(bytes.as_slice()).expect("opens");
        for ip in &outside {
            let result = reader.lookup(*ip).expect("lookup");
            assert!(!result.has_data(), "{ip} should have no data");
        }
    }
}

#[test]
fn asn_and_anonymous_flags_follow_the_rows() {
    let dbs = built();
    let asn = Reader::from_source(dbs.asn.as_slice()).expect("opens");
    let anon = Reader::from_source(dbs.anonymous.as_slice()).expect("opens");
    for row in rows() {
        for ip in probes(row.network) {
            let at = format!("{ip} (line {}, {})", row.line, row.kind);
            let a: geoip2::Asn = asn
                .lookup(ip)
                .unwrap()
                .decode()
                .unwrap()
                .expect("asn record");
            assert_eq!(a.autonomous_system_number, Some(row.asn), "{at}");
            assert_eq!(
                a.autonomous_system_organization,
                Some(row.as_org.as_str()),
                "{at}"
            );
            let flags: Option<geoip2::AnonymousIp> = anon.lookup(ip).unwrap().decode().unwrap();
            let flagged = |f: Option<bool>| f == Some(true);
            match row.kind {
                NetworkKind::Residential
                | NetworkKind::Mobile
                | NetworkKind::Corporate
                | NetworkKind::CorporateVpn => assert!(flags.is_none(), "{at} is flagged"),
                kind => {
                    let f = flags.unwrap_or_else(|| panic!("{at} is not flagged"));
                    assert!(flagged(f.is_anonymous), "{at}");
                    assert_eq!(
                        flagged(f.is_hosting_provider),
                        kind == NetworkKind::Hosting,
                        "{at}"
                    );
                    assert_eq!(
                        flagged(f.is_tor_exit_node),
                        kind == NetworkKind::Tor,
                        "{at}"
                    );
                    assert_eq!(
                        flagged(f.is_anonymous_vpn),
                        kind == NetworkKind::AnonymousVpn,
                        "{at}"
                    );
                    assert_eq!(
                        flagged(f.is_public_proxy),
                        kind == NetworkKind::PublicProxy,
                        "{at}"
                    );
                    assert_eq!(f.is_residential_proxy, None, "{at}");
                }
            }
        }
    }
}

#[test]
fn written_files_have_the_documented_names() {
    let dir = std::env::temp_dir().join(format!("riskstream-geo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dbs = built();
    write_geoip(&dbs, &dir).unwrap();
    assert_eq!(
        std::fs::read(dir.join("riskstream-city.mmdb")).unwrap(),
        dbs.city
    );
    assert_eq!(
        std::fs::read(dir.join("riskstream-asn.mmdb")).unwrap(),
        dbs.asn
    );
    assert_eq!(
        std::fs::read(dir.join("riskstream-anonymous.mmdb")).unwrap(),
        dbs.anonymous
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn csv_errors_name_line_and_column() {
    let header = fixtures::geo::WORLD_CSV_HEADER;
    let good = "62.193.80.0/22,London,England,GB,United Kingdom,EU,51.5074,-0.1278,5,0,Europe/London,2856,BT,residential";
    let cases = [
        (
            format!(
                "# comment\n{header}\n{good}\n{}",
                good.replace("residential", "satellite")
            ),
            "line 4, column 14 (kind)",
        ),
        (
            format!("{header}\n{}", good.replace(",2856,", ",AS2856,")),
            "line 2, column 12 (asn)",
        ),
        (
            format!(
                "{header}\n{}",
                good.replace("62.193.80.0/22", "10.0.0.0/22")
            ),
            "line 2, column 1 (network)",
        ),
        (
            format!("{header}\n{}", good.replace(",EU,", ",XX,")),
            "line 2, column 6 (continent)",
        ),
        (
            format!("{header}\n{}", good.replace(",London,", ",,")),
            "line 2, column 2 (city)",
        ),
        (
            format!("{header}\n{}", good.replace(",5,0,", ",5,")),
            "line 2: 13 fields, expected 14",
        ),
        (format!("network,city\n{good}"), "line 1: header"),
    ];
    for (csv, expected) in cases {
        let error = parse_world_csv(&csv).unwrap_err().to_string();
        assert!(
            error.starts_with(expected),
            "{error:?} should start with {expected:?}"
        );
    }
    assert_eq!(
        parse_world_csv(&format!("# only\n{header}\n{good}\n"))
            .unwrap()
            .len(),
        1
    );
}
