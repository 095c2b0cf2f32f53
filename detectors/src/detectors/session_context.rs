//! Session context: the client of one session changing under it (the
//! stolen-token pattern), session age and assurance decay.

use serde_json::json;

use super::{Finding, SignalCode};
use crate::engine::DetectContext;

pub(crate) fn detect(ctx: &DetectContext<'_>, out: &mut Vec<Finding>) {
    let s = ctx.session;
    let e = ctx.event;
    let params = &ctx.policy.detectors;
    if s.seq > 0 {
        let mut changed = false;
        if let (Some(first), Some(now)) = (s.device, ctx.device)
            && first != now
        {
            changed = true;
            out.push(Finding::new(
                SignalCode::SessionDeviceChanged,
                json!({ "device_id": e.context.device_id }),
            ));
        }
        if let (Some(first), Some(now)) = (s.ua_skeleton, ctx.ua_skeleton)
            && first != now
        {
            changed = true;
            out.push(Finding::new(
                SignalCode::SessionUserAgentChanged,
                json!({ "from": s.user_agent, "to": e.context.user_agent }),
            ));
        }
        if let (Some(first), Some(now)) = (s.network, ctx.network)
            && first != now
            && !ctx.shared_network
            && !ctx.principal.networks.contains(&now)
        {
            changed = true;
            out.push(Finding::new(
                SignalCode::SessionNetworkChanged,
                json!({ "from": s.network_label, "to": ctx.network_label(), "ip": e.context.ip }),
            ));
        }
        // Many apps send no device id on some calls, so a missing one counts
        // only beside another change of client.
        if changed && s.device.is_some() && ctx.device.is_none() {
            out.push(Finding::new(SignalCode::SessionDeviceMissing, json!({})));
        }
    }
    let age = e.time.seconds_since(s.started);
    if age > f64::from(params.max_session_age_seconds) {
        out.push(Finding::new(
            SignalCode::SessionLongLived,
            json!({ "hours": (age / 3600.0 * 10.0).round() / 10.0, "max_hours": f64::from(params.max_session_age_seconds) / 3600.0 }),
        ));
    }
}
