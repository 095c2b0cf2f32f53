//! Devices: new to the principal, untrusted, tainted by a risky enrolment.

use riskstream_schemas::{AuthType, DeviceTrust, EventBody, PrincipalType};
use serde_json::json;

use super::{Finding, SignalCode};
use crate::engine::DetectContext;

/// Whether an event enrols a device.
pub(crate) fn is_enrolment(body: &EventBody) -> bool {
    match body {
        EventBody::Auth(t) => *t == AuthType::DeviceEnrolled,
        EventBody::Action(a) => a.name == "device.enroll",
    }
}

pub(crate) fn detect(ctx: &DetectContext<'_>, out: &mut Vec<Finding>) {
    if ctx.kind != PrincipalType::Human {
        return;
    }
    let p = ctx.principal;
    let device_id = ctx.event.context.device_id.as_deref();
    if let Some(dev) = ctx.device {
        if p.tainted_devices.contains(&dev) {
            out.push(Finding::new(
                SignalCode::TaintedDevice,
                json!({ "device_id": device_id, "why": "enrolled in a risky session" }),
            ));
        } else if p.learned > 0 && p.devices.len() > 0 && !p.devices.contains(&dev) {
            out.push(Finding::new(
                SignalCode::NewDevice,
                json!({ "device_id": device_id, "known_devices": p.devices.len() }),
            ));
        } else if p.devices.contains(&dev) && (!out.is_empty() || !ctx.session.sticky.is_empty()) {
            // The principal's own device is evidence for the principal (a
            // likelihood ratio below one). Listed only where there is other
            // evidence to weigh it against; alone it changes nothing.
            out.push(Finding::new(
                SignalCode::KnownDevice,
                json!({ "device_id": device_id }),
            ));
        }
    }
    if ctx.event.context.device_trust == Some(DeviceTrust::Unknown) {
        out.push(Finding::new(
            SignalCode::UntrustedDevice,
            json!({ "device_id": device_id, "device_trust": "unknown" }),
        ));
    }
    let own_device = ctx.device.is_some_and(|d| p.devices.contains(&d));
    if is_enrolment(&ctx.event.body)
        && !own_device
        && ctx.session_evidence_before >= ctx.policy.detectors.risky_enrolment_evidence
    {
        out.push(Finding::new(
            SignalCode::RiskyEnrolment,
            json!({ "device_id": device_id, "session_score": ctx.session_score_before, "evidence": (ctx.session_evidence_before * 100.0).round() / 100.0 }),
        ));
    }
}
