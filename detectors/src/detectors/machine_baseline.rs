//! Workloads' and agents' baselines: the networks (AS) and clients (user
//! agent, versions ignored) they authenticate from. A service account runs
//! from the same cloud with the same SDK day after day; its credential used
//! from elsewhere, or by another client, is the leaked-token pattern. A
//! client credential proves nothing against that (it is what leaked), so
//! these signals are not explained away by a token issue.

use riskstream_schemas::PrincipalType;
use serde_json::json;

use super::{Finding, SignalCode};
use crate::engine::DetectContext;

pub(crate) fn detect(ctx: &DetectContext<'_>, out: &mut Vec<Finding>) {
    if ctx.kind == PrincipalType::Human {
        return;
    }
    let p = ctx.principal;
    // Cold start: before its first clean token issue a machine has no
    // baseline; novelty then counts in proportion to its history (the
    // engine scales it by `history_maturity`).
    if p.learned == 0 {
        return;
    }
    if let Some(net) = ctx.network
        && p.networks.len() > 0
        && !p.networks.contains(&net)
    {
        out.push(Finding::new(
            SignalCode::NewSourceNetwork,
            json!({
                "network": ctx.network_label(),
                "ip": ctx.event.context.ip,
                "known_networks": p.networks.len(),
            }),
        ));
    }
    if let Some(ua) = ctx.ua_skeleton
        && p.user_agents.len() > 0
        && !p.user_agents.contains(&ua)
    {
        out.push(Finding::new(
            SignalCode::NewUserAgent,
            json!({
                "user_agent": ctx.event.context.user_agent,
                "known_user_agents": p.user_agents.len(),
            }),
        ));
    }
}
