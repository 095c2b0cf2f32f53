//! Failed-login bursts and MFA push fatigue, per principal.

use riskstream_schemas::AuthType;
use serde_json::json;

use super::{Finding, SignalCode};
use crate::engine::DetectContext;

pub(crate) fn detect(ctx: &DetectContext<'_>, out: &mut Vec<Finding>) {
    let Some(t) = ctx.event.auth_type() else {
        return;
    };
    let params = &ctx.policy.detectors;
    let p = ctx.principal;
    let now = ctx.event.time;
    let in_window = |q: &std::collections::VecDeque<riskstream_schemas::Timestamp>, secs: u32| {
        q.iter()
            .filter(|t| now.0 - t.0 <= i64::from(secs) * 1000 && t.0 <= now.0)
            .count() as u32
    };
    match t {
        AuthType::LoginFailure => {
            // This failure plus those before it in the window.
            let n = in_window(&p.failures, params.failure_window_seconds) + 1;
            if n >= params.failure_burst {
                out.push(Finding::new(
                    SignalCode::FailedLoginBurst,
                    json!({ "failures": n, "window_minutes": params.failure_window_seconds / 60 }),
                ));
            }
        }
        AuthType::MfaPushDenied => {
            let n = in_window(&p.push_denials, params.push_window_seconds) + 1;
            out.push(Finding::new(
                SignalCode::MfaPushDenied,
                json!({ "denials": n, "window_minutes": params.push_window_seconds / 60 }),
            ));
        }
        AuthType::LoginSuccess | AuthType::MfaSuccess => {
            let denials = in_window(&p.push_denials, params.push_window_seconds);
            if denials >= params.push_denials {
                out.push(Finding::new(
                    SignalCode::MfaPushFatigue,
                    json!({ "denials_before_success": denials, "window_minutes": params.push_window_seconds / 60 }),
                ));
            }
            let failures = in_window(&p.failures, params.failure_window_seconds);
            if t == AuthType::LoginSuccess && failures >= params.failure_burst {
                out.push(Finding::new(
                    SignalCode::LoginAfterFailures,
                    json!({ "failures_before_success": failures, "window_minutes": params.failure_window_seconds / 60 }),
                ));
            }
        }
        _ => {}
    }
}
