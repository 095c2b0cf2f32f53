//! Geo-velocity: impossible travel between consecutive located events of a
//! principal, and places, countries and networks new to the principal.

use haversine::{Location as HLocation, Units, distance};
use riskstream_schemas::PrincipalType;
use serde_json::json;

use super::{Finding, SignalCode};
use crate::engine::DetectContext;
use crate::geo::Location;
use crate::state::Place;

/// Great-circle distance in km.
pub(crate) fn km_between(a_lat: f64, a_lon: f64, b_lat: f64, b_lon: f64) -> f64 {
    distance(
        HLocation {
            latitude: a_lat,
            longitude: a_lon,
        },
        HLocation {
            latitude: b_lat,
            longitude: b_lon,
        },
        Units::Kilometers,
    )
}

/// Whether `loc` lies within `slack_km` (plus both accuracy radii) of a place
/// the principal authenticated from before.
pub(crate) fn familiar(places: &[Place], loc: &Location, slack_km: f64) -> bool {
    places.iter().any(|p| {
        km_between(p.latitude, p.longitude, loc.latitude, loc.longitude)
            - p.radius_km
            - loc.radius_km
            <= slack_km
    })
}

pub(crate) fn detect(ctx: &DetectContext<'_>, out: &mut Vec<Finding>) {
    let Some(info) = ctx.ip_info else { return };
    let params = &ctx.policy.detectors;
    let p = ctx.principal;
    let mature = p.learned > 0;

    // A network the tenant's principals share (office, VPN egress) is the
    // tenant's own: its geolocation says where the concentrator is, not the
    // user, and its AS is not new to anyone there.
    if ctx.shared_network {
        return;
    }
    // A machine's new network is `machine_baseline`'s `new_source_network`.
    let human = ctx.kind == PrincipalType::Human;
    if human && mature && !p.networks.contains(&ctx.network.unwrap_or(0)) {
        out.push(Finding::new(
            SignalCode::UnfamiliarNetwork,
            json!({ "asn": info.asn, "as_org": info.as_org.as_deref(), "known_networks": p.networks.len() }),
        ));
    } else if mature
        && (human || p.networks.contains(&ctx.network.unwrap_or(0)))
        && p.prefixes.len() > 0
        && ctx.prefix.is_some_and(|n| !p.prefixes.contains(&n))
        && ctx.event.context.ip.is_some()
    {
        // A known network, an address range of it never used: the finest
        // level of the IP -> AS hierarchy (Freeman et al.).
        out.push(Finding::new(
            SignalCode::UnfamiliarAddress,
            json!({ "ip": ctx.event.context.ip, "asn": info.asn, "known_prefixes": p.prefixes.len() }),
        ));
    }
    // Workloads and agents run in clouds whose addresses geolocate anywhere:
    // their network, not their city, is the baseline.
    if ctx.kind != PrincipalType::Human {
        return;
    }
    let Some(loc) = &info.location else { return };

    if mature {
        let new_country = match &loc.country {
            Some(cc) => p.countries.len() > 0 && !p.countries.contains(cc),
            None => false,
        };
        if new_country {
            out.push(Finding::new(
                SignalCode::NewCountry,
                json!({ "country": loc.country.as_deref(), "location": loc.label(),
                        "known_countries": p.countries.iter().map(|c| c.to_string()).collect::<Vec<_>>() }),
            ));
        } else if !p.places.is_empty() && !familiar(&p.places, loc, params.min_travel_km) {
            out.push(Finding::new(
                SignalCode::UnfamiliarLocation,
                json!({ "location": loc.label(), "known_places": p.places.len() }),
            ));
        }
    }

    let Some(fix) = &p.last_fix else { return };
    // One network seen in two places is geolocation noise (mobile carriers'
    // gateways, national ISPs' pools), not a person moving.
    if fix.network.is_some() && fix.network == ctx.network {
        return;
    }
    // The principal's own device on a network it has used before: its phone
    // on the carrier it always uses while its laptop is at home.
    if let (Some(dev), Some(net)) = (ctx.device, ctx.network)
        && p.devices.contains(&dev)
        && p.networks.contains(&net)
    {
        return;
    }
    let hours = ctx.event.time.seconds_since(fix.time).abs() / 3600.0;
    let km = km_between(fix.latitude, fix.longitude, loc.latitude, loc.longitude);
    // Both ends may be anywhere inside their accuracy circles: only the
    // distance that no placement inside them can explain counts.
    let effective_km = (km - fix.radius_km - loc.radius_km).max(0.0);
    if effective_km < params.min_travel_km {
        return;
    }
    // Events less than a minute apart are treated as a minute apart, so that
    // two events in the same second do not give infinite speed.
    let kmh = effective_km / hours.max(1.0 / 60.0);
    if kmh <= params.max_travel_kmh {
        return;
    }
    // A hop between two places this principal has authenticated from before
    // (home and a VPN it uses, home and office) is routine, not travel.
    let from_known = familiar(
        &p.places,
        &Location {
            latitude: fix.latitude,
            longitude: fix.longitude,
            radius_km: fix.radius_km,
            city: None,
            country: None,
        },
        params.min_travel_km,
    );
    if from_known && familiar(&p.places, loc, params.min_travel_km) && p.places.len() > 1 {
        return;
    }
    out.push(Finding::new(
        SignalCode::ImpossibleTravel,
        json!({
            "from": fix.label,
            "to": loc.label(),
            "km": km.round(),
            "km_beyond_accuracy": effective_km.round(),
            "minutes": (hours * 60.0).round(),
            "kmh": kmh.round(),
            "max_kmh": params.max_travel_kmh,
        }),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_distances_of_known_pairs() {
        // London - Paris: 344 km.
        let d = km_between(51.5074, -0.1278, 48.8566, 2.3522);
        assert!((d - 344.0).abs() < 5.0, "{d}");
        // Suva (Fiji) - Apia (Samoa) across the antimeridian: ~1,150 km,
        // not the ~39,000 km a naive longitude difference would suggest.
        let d = km_between(-18.1248, 178.4501, -13.8333, -171.7667);
        assert!((1_100.0..1_200.0).contains(&d), "{d}");
        // Same point.
        assert!(km_between(1.0, 2.0, 1.0, 2.0).abs() < 1e-9);
    }

    #[test]
    fn familiarity_subtracts_accuracy_radii() {
        let home = [Place {
            latitude: 51.5074,
            longitude: -0.1278,
            radius_km: 10.0,
            seen: None,
        }];
        let reading = Location {
            latitude: 51.4543,
            longitude: -0.9781,
            radius_km: 20.0,
            city: None,
            country: None,
        };
        let paris = Location {
            latitude: 48.8566,
            longitude: 2.3522,
            radius_km: 20.0,
            city: None,
            country: None,
        };
        let vague = Location {
            latitude: 53.4808,
            longitude: -2.2426,
            radius_km: 1000.0,
            city: None,
            country: None,
        };
        assert!(familiar(&home, &reading, 100.0));
        assert!(!familiar(&home, &paris, 100.0));
        assert!(
            familiar(&home, &vague, 100.0),
            "a 1000 km radius covers London"
        );
    }
}
