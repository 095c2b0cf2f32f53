//! Attack sources: a human's login from an address (or network) where the
//! tenant's other accounts are failing, the cross-principal view of
//! credential stuffing and password spraying. The counts come from the
//! tenant-wide table in `sources.rs`; this only judges them.

use riskstream_schemas::PrincipalType;
use serde_json::json;

use super::{Finding, SignalCode};
use crate::engine::DetectContext;

pub(crate) fn detect(ctx: &DetectContext<'_>, out: &mut Vec<Finding>) {
    // Lists of passwords are tried against people's accounts; a workload's
    // or agent's client secret is not guessed. The tenant's own egress
    // (office NAT, VPN) carries many people's typos and is not a source.
    if ctx.kind != PrincipalType::Human || ctx.shared_network {
        return;
    }
    let params = &ctx.policy.detectors;
    if let Some(c) = ctx.ip_source
        && c.unresolved >= params.source_principals
    {
        out.push(Finding::new(
            SignalCode::CredentialStuffingSource,
            json!({
                "ip": ctx.event.context.ip,
                "accounts_failed": c.unresolved,
                "accounts_logged_in": c.succeeded,
                "window_hours": params.source_window_seconds / 3600,
            }),
        ));
        // The address explains its network's failures: one finding.
        return;
    }
    if let Some(c) = ctx.asn_source
        && c.unresolved >= params.spray_principals
        && c.unresolved > c.succeeded
    {
        out.push(Finding::new(
            SignalCode::PasswordSpraySource,
            json!({
                "network": ctx.network_label(),
                "accounts_failed": c.unresolved,
                "accounts_logged_in": c.succeeded,
                "window_minutes": params.spray_window_seconds / 60,
            }),
        ));
    }
}
