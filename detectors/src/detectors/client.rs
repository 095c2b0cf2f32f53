//! A human's client: the user agent placed in the hierarchy device type ->
//! OS -> browser -> exact string (Freeman et al., NDSS 2016), new to the
//! principal at its coarsest new level.

use riskstream_schemas::PrincipalType;
use serde_json::json;

use super::{Finding, SignalCode};
use crate::engine::DetectContext;
use crate::state::ContextLevel;

pub(crate) fn detect(ctx: &DetectContext<'_>, out: &mut Vec<Finding>) {
    if ctx.kind != PrincipalType::Human || ctx.principal.learned == 0 {
        return;
    }
    let Some(client) = ctx.client else { return };
    let clients = &ctx.principal.clients;
    let Some(level) = clients.novelty(client) else {
        return;
    };
    let (code, evidence) = match level {
        ContextLevel::DeviceType => (
            SignalCode::NewDeviceType,
            json!({ "device_type": &*client.device_type_name, "known_device_types": clients.device_types.len() }),
        ),
        ContextLevel::Platform => (
            SignalCode::NewPlatform,
            json!({ "os": &*client.platform_name, "device_type": &*client.device_type_name, "known_platforms": clients.platforms.len() }),
        ),
        ContextLevel::Browser => (
            SignalCode::NewBrowser,
            json!({ "browser": &*client.browser_name, "os": &*client.platform_name, "known_browsers": clients.browsers.len() }),
        ),
        _ => (
            SignalCode::NewBrowserVersion,
            json!({ "user_agent": ctx.event.context.user_agent, "browser": &*client.browser_name, "known_user_agents": clients.agents.len() }),
        ),
    };
    let mut finding = Finding::new(code, evidence);
    let p = ctx.principal;
    if ctx
        .device
        .is_some_and(|d| p.devices.len() > 0 && !p.devices.contains(&d))
    {
        // A new device brings its own client: `new_device` has said it.
        finding.scale = ctx.policy.detectors.client_with_new_device;
        if finding.scale == 0.0 {
            return;
        }
    }
    out.push(finding);
}
