//! Anonymizers: Tor, VPN, proxies and hosting networks, when an
//! anonymous-IP database is configured.

use riskstream_schemas::PrincipalType;
use serde_json::json;

use super::{Finding, SignalCode};
use crate::engine::DetectContext;

pub(crate) fn detect(ctx: &DetectContext<'_>, out: &mut Vec<Finding>) {
    let Some(info) = ctx.ip_info else { return };
    let f = info.anonymizer;
    // The address is formatted only for a finding: this runs on every event
    // with an address, and most find nothing.
    let evidence = || {
        let ip = ctx.event.context.ip.map(|ip| ip.to_string());
        json!({ "ip": ip, "asn": info.asn, "as_org": info.as_org.as_deref() })
    };
    if f.tor {
        out.push(Finding::new(SignalCode::TorExit, evidence()));
    } else if f.public_proxy {
        out.push(Finding::new(SignalCode::PublicProxy, evidence()));
    } else if f.residential_proxy {
        out.push(Finding::new(SignalCode::ResidentialProxy, evidence()));
    } else if f.vpn && !ctx.shared_network {
        out.push(Finding::new(SignalCode::AnonymousVpn, evidence()));
    } else if f.hosting && ctx.kind == PrincipalType::Human && !ctx.shared_network {
        // Workloads and agents live in data centres; people rarely do.
        out.push(Finding::new(SignalCode::HostingProvider, evidence()));
    }
}
