//! The labelled world generator: contract-valid, sorted, deterministic,
//! labelled, and containing every attack scenario and benign trap.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use riskstream::fixtures::{
    self, GenerateOptions, GenerateSummary, WorldNetwork, generate, parse_world_csv,
};
use riskstream_schemas::{AuthType, Event, ParseLimits, PrincipalType, parse_event};

const ATTACKS: [&str; 8] = [
    "impossible_travel_push_fatigue",
    "stolen_session_token",
    "new_device_persistence",
    "credential_stuffing",
    "insider_sequence",
    "workload_token_leak",
    "agent_hijack",
    "low_and_slow",
];
const TRAPS: [&str; 7] = [
    "benign_vpn",
    "benign_travel",
    "benign_new_laptop",
    "benign_mobile",
    "benign_browser_upgrade",
    "benign_workload_redeploy",
    "benign_agent_new_tool",
];
const SENSITIVE: [&str; 10] = [
    "data.export",
    "rbac.assign",
    "secrets.read",
    "deploy.production",
    "payment.approve",
    "refund.issue",
    "user.reset_mfa",
    "control.disable",
    "api.admin.keys.create",
    "device.enroll",
];

fn small(seed: u64) -> GenerateOptions {
    GenerateOptions {
        seed,
        principals: 60,
        days: 3,
        ..GenerateOptions::default()
    }
}

fn run(opts: &GenerateOptions) -> (Vec<u8>, GenerateSummary) {
    let mut out = Vec::new();
    let summary = generate(opts, &mut out).expect("generates");
    (out, summary)
}

fn parse_all(bytes: &[u8]) -> Vec<Event> {
    let text = std::str::from_utf8(bytes).expect("utf-8");
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            parse_event(line.as_bytes(), ParseLimits::default())
                .unwrap_or_else(|e| panic!("line {}: {e}: {line}", i + 1))
        })
        .collect()
}

fn row_of<'a>(rows: &'a [WorldNetwork], e: &Event) -> &'a WorldNetwork {
    let ip = e.context.ip.expect("every event has an address");
    rows.iter()
        .find(|r| r.network.contains(ip))
        .unwrap_or_else(|| panic!("{ip} of {} is in no world.csv network", e.id))
}

fn km(a: &WorldNetwork, b: &WorldNetwork) -> f64 {
    let (la1, la2) = (a.latitude.to_radians(), b.latitude.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.longitude - a.longitude).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}

#[test]
fn small_world_is_valid_sorted_unique_and_labelled() {
    let opts = small(7);
    let (bytes, summary) = run(&opts);
    assert!(bytes.ends_with(b"\n"));
    let events = parse_all(&bytes);
    assert_eq!(summary.events, events.len() as u64);
    assert!(events.len() > 5_000, "only {} events", events.len());

    let mut ids = BTreeSet::new();
    for (i, e) in events.iter().enumerate() {
        assert!(ids.insert(e.id.clone()), "duplicate id {}", e.id);
        if i > 0 {
            assert!(
                events[i - 1].time <= e.time,
                "{} is before {}",
                e.id,
                events[i - 1].id
            );
        }
        assert!(e.time >= opts.start, "{} before the start", e.id);
        assert!(e.id.starts_with("evt-7-"), "{}", e.id);
        assert!(e.tenant == "acme" || e.tenant == "globex", "{}", e.id);
        let labels = e.labels.as_ref().expect("labels on every event");
        assert!(
            labels.get("attack").and_then(|a| a.as_bool()).is_some(),
            "{}",
            e.id
        );
        assert!(
            e.context.ip.is_some() && e.context.user_agent.is_some(),
            "{}",
            e.id
        );
        if e.kind() == riskstream_schemas::EventKind::Action {
            assert!(
                e.context.device_trust.is_none(),
                "{}: trust is the IdP's",
                e.id
            );
        }
        match e.auth_type() {
            Some(
                AuthType::LoginSuccess
                | AuthType::MfaSuccess
                | AuthType::TokenIssued
                | AuthType::DeviceEnrolled,
            ) => {
                let aal = e.aal().expect("success carries assurance");
                assert!((1..=3).contains(&aal), "{}", e.id);
            }
            Some(AuthType::MfaChallenge | AuthType::MfaPushDenied | AuthType::LoginFailure) => {
                assert!(e.auth.is_none(), "{}", e.id)
            }
            _ => {}
        }
    }

    // Summary counts match the file.
    let attack = events.iter().filter(|e| e.is_labelled_attack()).count() as u64;
    assert_eq!(summary.attack_events, attack);
    let mut by_scenario: BTreeMap<String, u64> = BTreeMap::new();
    for e in &events {
        if let Some(s) = e.labelled_scenario() {
            *by_scenario.entry(s.to_owned()).or_insert(0) += 1;
        }
    }
    assert_eq!(summary.events_by_scenario, by_scenario);
    let total: u64 = summary.principals_by_type.values().sum();
    assert_eq!(total, 60);
    for kind in [PrincipalType::Workload, PrincipalType::Agent] {
        let seen: BTreeSet<&str> = events
            .iter()
            .filter(|e| e.principal.kind == kind)
            .map(|e| e.principal.id.as_str())
            .collect();
        assert_eq!(
            summary.principals_by_type.get(kind.as_str()).copied(),
            Some(seen.len() as u64)
        );
    }
    let humans = summary.principals_by_type["human"];
    assert!((48..=54).contains(&humans), "{humans} humans");

    // Every scenario and trap is there, with the right truth.
    for name in ATTACKS {
        assert!(by_scenario.get(name).copied().unwrap_or(0) > 0, "no {name}");
    }
    for name in TRAPS {
        assert!(by_scenario.get(name).copied().unwrap_or(0) > 0, "no {name}");
    }
    for e in &events {
        match e.labelled_scenario() {
            Some(s) if ATTACKS.contains(&s) => assert!(e.is_labelled_attack(), "{}", e.id),
            Some(s) => {
                assert!(TRAPS.contains(&s), "unknown scenario {s}");
                assert!(!e.is_labelled_attack(), "{}", e.id);
            }
            None => assert!(!e.is_labelled_attack(), "{}: attack without scenario", e.id),
        }
    }

    // Every address is one the fixture GeoIP databases locate.
    let rows = parse_world_csv(fixtures::WORLD_CSV).unwrap();
    for e in &events {
        row_of(&rows, e);
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let (a, sa) = run(&small(11));
    let (b, sb) = run(&small(11));
    assert!(a == b, "same options must give identical bytes");
    assert_eq!(sa, sb);
    let (c, _) = run(&small(12));
    assert!(a != c, "another seed must give other bytes");
}

#[test]
fn attacks_look_like_their_scenarios() {
    let (bytes, _) = run(&small(3));
    let events = parse_all(&bytes);
    let rows = parse_world_csv(fixtures::WORLD_CSV).unwrap();
    let of = |name: &str| -> Vec<&Event> {
        events
            .iter()
            .filter(|e| e.labelled_scenario() == Some(name))
            .collect()
    };

    // Push fatigue: denied pushes, then a login, then sensitive actions,
    // from a network more than 3000 km from the victim's other activity.
    let fatigue = of("impossible_travel_push_fatigue");
    let sessions: BTreeSet<&str> = fatigue.iter().map(|e| e.session.as_str()).collect();
    assert!(sessions.len() >= 3);
    for s in &sessions {
        let evs: Vec<&&Event> = fatigue.iter().filter(|e| e.session == *s).collect();
        let denied = evs
            .iter()
            .filter(|e| e.auth_type() == Some(AuthType::MfaPushDenied))
            .count();
        assert!((3..=8).contains(&denied), "{s}: {denied} denials");
        let login = evs
            .iter()
            .position(|e| e.auth_type() == Some(AuthType::LoginSuccess))
            .expect("login");
        assert_eq!(evs[login].aal(), Some(2));
        let sensitive = evs[login..]
            .iter()
            .filter(|e| e.action().is_some_and(|a| SENSITIVE.contains(&a)))
            .count();
        assert!(
            (2..=5).contains(&sensitive),
            "{s}: {sensitive} sensitive actions"
        );
        let victim = &evs[0].principal.id;
        let attacker_row = row_of(&rows, evs[0]);
        let own = events
            .iter()
            .find(|e| &e.principal.id == victim && !e.is_labelled_attack())
            .expect("the victim works too");
        assert!(km(attacker_row, row_of(&rows, own)) > 3000.0);
    }

    // Stolen token: action events only, in a session the victim opened.
    let stolen = of("stolen_session_token");
    assert!(stolen.iter().all(|e| e.auth_type().is_none()));
    for e in &stolen {
        let victim_login = events.iter().any(|v| {
            v.session == e.session
                && !v.is_labelled_attack()
                && v.auth_type() == Some(AuthType::LoginSuccess)
        });
        assert!(
            victim_login,
            "{}: session {} is not the victim's",
            e.id, e.session
        );
        let victim_ua = events
            .iter()
            .find(|v| v.session == e.session && !v.is_labelled_attack())
            .and_then(|v| v.context.user_agent.clone());
        assert_ne!(e.context.user_agent, victim_ua, "{}", e.id);
    }

    // New device: enrolled, then used again on a later day.
    let persistence = of("new_device_persistence");
    assert!(persistence.iter().any(|e| {
        e.auth_type() == Some(AuthType::DeviceEnrolled) || e.action() == Some("device.enroll")
    }));
    let mut days_per_device: BTreeMap<&str, BTreeSet<i64>> = BTreeMap::new();
    for e in &persistence {
        if let Some(d) = &e.context.device_id {
            days_per_device
                .entry(d)
                .or_default()
                .insert(e.time.millis() / 86_400_000);
        }
    }
    assert!(
        days_per_device.values().any(|days| days.len() >= 2),
        "no device comes back"
    );

    // Credential stuffing: one address, 20–60 principals, within an hour.
    let stuffing = of("credential_stuffing");
    let mut per_ip: BTreeMap<String, Vec<&Event>> = BTreeMap::new();
    for e in &stuffing {
        if e.auth_type() == Some(AuthType::LoginFailure) {
            per_ip
                .entry(e.context.ip.unwrap().to_string())
                .or_default()
                .push(e);
        }
    }
    assert!(per_ip.len() >= 3);
    for (ip, failures) in &per_ip {
        let principals: BTreeSet<&str> = failures.iter().map(|e| e.principal.id.as_str()).collect();
        assert!(
            (20..=60).contains(&principals.len()),
            "{ip}: {} principals",
            principals.len()
        );
        let span = failures
            .last()
            .unwrap()
            .time
            .seconds_since(failures[0].time);
        assert!(span <= 3600.0, "{ip}: {span} s");
        let tenants: BTreeSet<&str> = failures.iter().map(|e| e.tenant.as_str()).collect();
        assert_eq!(tenants.len(), 1, "{ip}");
    }
    let successes: Vec<&&Event> = stuffing
        .iter()
        .filter(|e| e.auth_type() == Some(AuthType::LoginSuccess))
        .collect();
    assert!(!successes.is_empty());
    assert!(successes.iter().all(|e| e.aal() == Some(1)));
}

#[test]
fn new_attacks_look_like_their_scenarios() {
    let (bytes, _) = run(&GenerateOptions {
        seed: 3,
        principals: 200,
        days: 7,
        ..GenerateOptions::default()
    });
    let events = parse_all(&bytes);
    let rows = parse_world_csv(fixtures::WORLD_CSV).unwrap();
    let of = |name: &str| -> Vec<&Event> {
        events
            .iter()
            .filter(|e| e.labelled_scenario() == Some(name))
            .collect()
    };
    let benign_of = |principal: &str| -> Vec<&Event> {
        events
            .iter()
            .filter(|e| e.principal.id == principal && !e.is_labelled_attack())
            .collect()
    };

    // Insider: actions only, inside the victim's own session, from the same
    // address, client and device as the victim's login; several sensitive.
    let insider = of("insider_sequence");
    let sessions: BTreeSet<&str> = insider.iter().map(|e| e.session.as_str()).collect();
    assert!(sessions.len() >= 3);
    for s in &sessions {
        let evs: Vec<&&Event> = insider.iter().filter(|e| e.session == *s).collect();
        assert!(evs.iter().all(|e| e.action().is_some()), "{s}");
        let login = events
            .iter()
            .find(|v| {
                v.session == *s
                    && !v.is_labelled_attack()
                    && v.auth_type() == Some(AuthType::LoginSuccess)
            })
            .unwrap_or_else(|| panic!("{s}: not the victim's session"));
        for e in &evs {
            assert_eq!(e.context.ip, login.context.ip, "{}", e.id);
            assert_eq!(e.context.user_agent, login.context.user_agent, "{}", e.id);
            assert_eq!(e.context.device_id, login.context.device_id, "{}", e.id);
        }
        let sensitive = evs
            .iter()
            .filter(|e| e.action().is_some_and(|a| SENSITIVE.contains(&a)))
            .count();
        assert!(sensitive >= 3, "{s}: {sensitive} sensitive actions");
    }

    // Workload token leak: a token issued by a workload from an AS and with
    // a client its benign events never used.
    let leak = of("workload_token_leak");
    let issued: Vec<&&Event> = leak
        .iter()
        .filter(|e| e.auth_type() == Some(AuthType::TokenIssued))
        .collect();
    assert!(issued.len() >= 3);
    for e in issued {
        assert_eq!(e.principal.kind, PrincipalType::Workload);
        let own = benign_of(&e.principal.id);
        assert!(!own.is_empty());
        let asn = row_of(&rows, e).asn;
        assert!(own.iter().all(|o| row_of(&rows, o).asn != asn), "{}", e.id);
        assert!(
            own.iter()
                .all(|o| o.context.user_agent != e.context.user_agent)
        );
        assert!(
            leak.iter()
                .any(|a| a.session == e.session
                    && a.action().is_some_and(|a| SENSITIVE.contains(&a)))
        );
    }

    // Agent hijack: the agent's own address and client, and at least one
    // action it never made in its benign sessions.
    let hijack = of("agent_hijack");
    let agents: BTreeSet<&str> = hijack.iter().map(|e| e.principal.id.as_str()).collect();
    assert!(agents.len() >= 3);
    for a in agents {
        let own = benign_of(a);
        let mine: Vec<&&Event> = hijack.iter().filter(|e| e.principal.id == a).collect();
        assert!(
            mine.iter()
                .all(|e| e.principal.kind == PrincipalType::Agent)
        );
        assert!(
            mine.iter()
                .all(|e| own.iter().any(|o| o.context.ip == e.context.ip))
        );
        assert!(mine.iter().any(|e| {
            e.action()
                .is_some_and(|name| !own.iter().any(|o| o.action() == Some(name)))
        }));
    }

    // Low and slow: a login on a new device in the victim's own country,
    // and one sensitive action, an export of ordinary size.
    let slow = of("low_and_slow");
    let sessions: BTreeSet<&str> = slow.iter().map(|e| e.session.as_str()).collect();
    assert!(sessions.len() >= 3);
    for s in &sessions {
        let evs: Vec<&&Event> = slow.iter().filter(|e| e.session == *s).collect();
        let sensitive: Vec<&&&Event> = evs
            .iter()
            .filter(|e| e.action().is_some_and(|a| SENSITIVE.contains(&a)))
            .collect();
        assert_eq!(sensitive.len(), 1, "{s}");
        assert_eq!(sensitive[0].action(), Some("data.export"));
        let rows_exported = sensitive[0]
            .attributes
            .as_ref()
            .and_then(|a| a.get("rows"))
            .and_then(|r| r.as_u64())
            .unwrap();
        assert!(rows_exported < 5_000, "{s}: {rows_exported} rows");
        let own = benign_of(&evs[0].principal.id);
        assert!(
            own.iter()
                .all(|o| o.context.device_id != evs[0].context.device_id)
        );
        let country = &row_of(&rows, evs[0]).country_iso;
        assert!(
            own.iter()
                .any(|o| o.auth_type() == Some(AuthType::LoginSuccess)
                    && &row_of(&rows, o).country_iso == country),
            "{s}: not the victim's country"
        );
    }
}

#[test]
fn benign_travellers_never_outrun_a_plane() {
    let (bytes, _) = run(&GenerateOptions {
        seed: 5,
        principals: 200,
        days: 7,
        ..GenerateOptions::default()
    });
    let events = parse_all(&bytes);
    let rows = parse_world_csv(fixtures::WORLD_CSV).unwrap();
    let travellers: BTreeSet<&str> = events
        .iter()
        .filter(|e| e.labelled_scenario() == Some("benign_travel"))
        .map(|e| e.principal.id.as_str())
        .collect();
    assert!(!travellers.is_empty());
    let mut far = 0;
    for who in travellers {
        let mine: Vec<&Event> = events
            .iter()
            .filter(|e| e.principal.id == who && !e.is_labelled_attack())
            .collect();
        for pair in mine.windows(2) {
            let d = km(row_of(&rows, pair[0]), row_of(&rows, pair[1]));
            if d < 100.0 {
                continue;
            }
            far += 1;
            let hours = pair[1].time.seconds_since(pair[0].time) / 3600.0;
            assert!(
                d / hours <= 800.0,
                "{who}: {d:.0} km in {hours:.2} h ({} -> {})",
                pair[0].id,
                pair[1].id
            );
        }
    }
    assert!(far > 0, "nobody travelled far");
}

#[test]
fn benign_traps_keep_their_devices() {
    let (bytes, _) = run(&small(9));
    let events = parse_all(&bytes);
    // VPN and mobile traps change address mid-session on the same device.
    for trap in ["benign_vpn", "benign_mobile"] {
        let mut per_session: BTreeMap<&str, (BTreeSet<String>, BTreeSet<Option<String>>)> =
            BTreeMap::new();
        for e in events
            .iter()
            .filter(|e| e.labelled_scenario() == Some(trap))
        {
            let entry = per_session.entry(&e.session).or_default();
            entry.0.insert(e.context.ip.unwrap().to_string());
            entry.1.insert(e.context.device_id.clone());
        }
        assert!(
            per_session.values().all(|(_, devices)| devices.len() == 1),
            "{trap}"
        );
        if trap == "benign_mobile" {
            assert!(
                per_session.values().all(|(ips, _)| ips.len() == 2),
                "{trap}"
            );
        }
    }
    // A new laptop is enrolled after a strong MFA, and used afterwards.
    let enrolled: Vec<&Event> = events
        .iter()
        .filter(|e| {
            e.labelled_scenario() == Some("benign_new_laptop")
                && e.auth_type() == Some(AuthType::DeviceEnrolled)
        })
        .collect();
    assert!(!enrolled.is_empty());
    for e in enrolled {
        assert!(e.aal() >= Some(2));
        let session_login = events
            .iter()
            .find(|l| l.session == e.session && l.auth_type() == Some(AuthType::LoginSuccess))
            .expect("login before enrolment");
        assert!(session_login.time <= e.time);
        assert_eq!(session_login.context.device_id, e.context.device_id);
    }
}

#[test]
fn tiny_and_odd_worlds_still_generate() {
    let saturday_noon =
        riskstream_schemas::Timestamp::parse_rfc3339("2026-11-07T12:34:56Z").unwrap();
    for (principals, days) in [(1, 1), (2, 1), (3, 2), (7, 1), (12, 4)] {
        for start in [fixtures::DEFAULT_START, saturday_noon] {
            let opts = GenerateOptions {
                seed: 42,
                principals,
                days,
                start,
            };
            let (bytes, summary) = run(&opts);
            let events = parse_all(&bytes);
            assert_eq!(summary.events, events.len() as u64, "{opts:?}");
            assert!(events.iter().all(|e| e.time >= start), "{opts:?}");
            assert_eq!(
                summary.principals_by_type.values().sum::<u64>(),
                principals as u64
            );
        }
    }
    for bad in [
        GenerateOptions {
            principals: 0,
            ..small(1)
        },
        GenerateOptions {
            days: 0,
            ..small(1)
        },
    ] {
        assert!(generate(&bad, Vec::new()).is_err(), "{bad:?}");
    }
}

/// `cargo test --release -p riskstream --test fixtures_world -- --ignored --nocapture`
#[test]
#[ignore = "a 1000-principal, 14-day world: run in release to measure speed"]
fn thousand_principals_over_a_fortnight() {
    let opts = GenerateOptions::default();
    let started = std::time::Instant::now();
    let mut out = Vec::with_capacity(256 << 20);
    let summary = generate(&opts, &mut out).unwrap();
    let elapsed = started.elapsed();
    eprintln!("{summary}");
    eprintln!("{:#?}", summary);
    eprintln!(
        "{} events, {} MB in {:.2} s ({:.0} events/s)",
        summary.events,
        out.len() >> 20,
        elapsed.as_secs_f64(),
        summary.events as f64 / elapsed.as_secs_f64()
    );
    assert!(summary.events >= 300_000, "{} events", summary.events);
    for name in ATTACKS {
        assert!(summary.events_by_scenario.contains_key(name), "{name}");
    }
}
