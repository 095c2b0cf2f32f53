//! Action sequences: what this principal does, against what it and its
//! peers usually do. The insider pattern (same device, same network, only
//! the behaviour is wrong) and a hijacked agent show up here and nowhere
//! else.
//!
//! Four likelihood ratios, each the evidence of one signal, in nats:
//!
//! - `unusual_action`: `ln(P_tenant(a) / P_principal(a))`. Following Freeman
//!   et al. (NDSS 2016), an attacker's choice is modelled by the tenant-wide
//!   distribution and the principal's by its own counts, smoothed towards
//!   its role's peer group (itself smoothed towards the tenant): a
//!   Dirichlet prior of strength `action_prior_strength` and
//!   `peer_prior_strength` pseudo-actions. Cold start is thus the role's
//!   habits, never a silent default.
//! - `unusual_transition`: `ln(P(a) / P(a | previous action))`, a
//!   first-order Markov chain within the session, smoothed towards the
//!   principal's own distribution with `transition_prior_strength`.
//! - `sensitive_burst`: of the actions in the last `burst_window_seconds`
//!   before this sensitive one, `k` of `m` were sensitive: the binomial
//!   likelihood ratio of that under the attacker's share
//!   (`burst_attack_share`) against the principal's own (smoothed) share.
//! - `attribute_outlier`: a numeric attribute (rows, amount) against the
//!   principal's log-normal range (its role's for cold start): the
//!   log-normal density against an attacker's value spread evenly over
//!   `attribute_log_range` nats of magnitude.
//!
//! A signal is reported when its evidence reaches `behaviour_min_evidence`,
//! and counts for at most `behaviour_max_evidence`; the policy weight of
//! each code multiplies the evidence (1.0: trust the model as it is).

use riskstream_schemas::{EventBody, Sensitivity};
use serde_json::json;

use super::{Finding, SignalCode};
use crate::engine::DetectContext;
use crate::policy::DetectorParams;
use crate::state::{ActionProfile, AttributeStats, hash_str};

/// The peer groups an action is judged against.
pub(crate) struct Peers<'a> {
    /// The tenant, every principal type.
    pub tenant: Option<&'a ActionProfile>,
    /// The principal's role within its type and tenant.
    pub role: Option<&'a ActionProfile>,
}

/// Key of an action name in the profiles.
pub(crate) fn action_key(name: &str) -> u64 {
    hash_str(name)
}

/// Key of an (action, numeric attribute) pair.
pub(crate) fn attribute_key(action: u64, attribute: &str) -> u64 {
    action ^ hash_str(attribute).rotate_left(17)
}

/// A numeric attribute in the log space the statistics use.
pub(crate) fn attribute_value(v: &serde_json::Value) -> Option<f64> {
    let x = v.as_f64()?;
    (x.is_finite() && x >= 0.0).then(|| x.ln_1p())
}

/// Numeric attributes of an event worth modelling (at most four).
pub(crate) fn numeric_attributes(
    ctx_attributes: Option<&serde_json::Map<String, serde_json::Value>>,
) -> impl Iterator<Item = (&str, f64)> {
    ctx_attributes
        .into_iter()
        .flat_map(|m| m.iter())
        .filter_map(|(k, v)| attribute_value(v).map(|x| (k.as_str(), x)))
        .take(4)
}

/// Laplace-smoothed tenant-wide probability of an action.
fn p_tenant(t: Option<&ActionProfile>, a: u64) -> f64 {
    match t {
        Some(t) => {
            (f64::from(t.count(a)) + 1.0) / (f64::from(t.total) + t.counts.len() as f64 + 1.0)
        }
        None => 1.0,
    }
}

/// Dirichlet-smoothed probability: `(count + strength·prior) / (total + strength)`.
fn smoothed(count: u32, total: u32, strength: f64, prior: f64) -> f64 {
    (f64::from(count) + strength * prior) / (f64::from(total) + strength)
}

/// `P_principal(a)` and the role and tenant probabilities it was built on.
pub(crate) fn action_probabilities(
    own: &ActionProfile,
    peers: &Peers<'_>,
    a: u64,
    params: &DetectorParams,
) -> (f64, f64, f64) {
    let pt = p_tenant(peers.tenant, a);
    let pr = match peers.role {
        Some(r) => smoothed(r.count(a), r.total, params.peer_prior_strength, pt),
        None => pt,
    };
    let pp = smoothed(own.count(a), own.total, params.action_prior_strength, pr);
    (pp, pr, pt)
}

/// The principal's smoothed share of sensitive actions.
fn sensitive_share(own: &ActionProfile, peers: &Peers<'_>, params: &DetectorParams) -> f64 {
    let st = match peers.tenant {
        Some(t) => (f64::from(t.sensitive) + 1.0) / (f64::from(t.total) + 2.0),
        None => 0.5,
    };
    let sr = match peers.role {
        Some(r) => smoothed(r.sensitive, r.total, params.peer_prior_strength, st),
        None => st,
    };
    smoothed(own.sensitive, own.total, params.action_prior_strength, sr)
}

/// Binomial log-likelihood ratio of `k` sensitive among `m` actions, attack
/// share against the principal's.
pub(crate) fn burst_evidence(k: u32, m: u32, attack: f64, own: f64) -> f64 {
    let own = own.clamp(1e-6, 1.0 - 1e-6);
    f64::from(k) * (attack / own).ln() + f64::from(m - k) * ((1.0 - attack) / (1.0 - own)).ln()
}

/// Log-normal baseline of an attribute: the principal's statistics with
/// `attribute_prior_count` pseudo-observations of its role's.
pub(crate) fn attribute_baseline(
    own: Option<&AttributeStats>,
    role: Option<&AttributeStats>,
    params: &DetectorParams,
) -> Option<(f64, f64, f64)> {
    let n0 = params.attribute_prior_count;
    let role = role.filter(|r| r.n >= params.attribute_min_peer_count);
    let (mean, var, n) = match (own, role) {
        (Some(o), Some(r)) => {
            let rv = r.variance().unwrap_or(0.0);
            let n = o.n + n0;
            let mean = (n0 * r.mean + o.n * o.mean) / n;
            let shift = n0 * o.n / n * (o.mean - r.mean).powi(2);
            (mean, (n0 * rv + o.m2 + shift) / n, n)
        }
        (None, Some(r)) => (r.mean, r.variance().unwrap_or(0.0), n0),
        (Some(o), None) if o.n >= params.attribute_min_peer_count => {
            (o.mean, o.variance().unwrap_or(0.0), o.n)
        }
        _ => return None,
    };
    let sd = var.max(0.0).sqrt().max(params.attribute_min_sd);
    Some((mean, sd, n))
}

/// Log-likelihood ratio of `x` (log space) under an even spread over
/// `range` nats against the log-normal `(mean, sd)`; only values above the
/// mean count (a small export is no risk).
pub(crate) fn outlier_evidence(x: f64, mean: f64, sd: f64, range: f64) -> f64 {
    let z = (x - mean) / sd;
    if z <= 0.0 {
        return f64::NEG_INFINITY;
    }
    // ln N(x; mean, sd) = -z²/2 - ln(sd) - ln(√(2π)).
    z * z / 2.0 + sd.ln() + 0.5 * (2.0 * std::f64::consts::PI).ln() - range.ln()
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

pub(crate) fn detect(ctx: &DetectContext<'_>, out: &mut Vec<Finding>) {
    let EventBody::Action(action) = &ctx.event.body else {
        return;
    };
    let params = &ctx.policy.detectors;
    let own = &ctx.principal.actions;
    let peers = &ctx.peers;
    let a = ctx.action.unwrap_or_else(|| action_key(&action.name));
    let (lo, hi) = (params.behaviour_min_evidence, params.behaviour_max_evidence);
    // Evidence first, the explanation only for what is reported: this runs
    // on every action of the replay's hot path.
    let mut push = |code: SignalCode, evidence: f64, detail: &dyn Fn() -> serde_json::Value| {
        if evidence >= lo {
            let mut f = Finding::new(code, detail());
            f.scale = evidence.min(hi);
            out.push(f);
        }
    };

    // The action itself. An action the tenant has never seen is a new
    // feature of the application, not a deviation of this principal: there
    // is nothing to compare it with.
    let seen_in_tenant = peers.tenant.is_some_and(|t| t.count(a) > 0);
    let (pp, pr, pt) = action_probabilities(own, peers, a, params);
    if seen_in_tenant {
        push(SignalCode::UnusualAction, (pt / pp).ln(), &|| {
            json!({
                "action": action.name,
                "principal_count": own.count(a),
                "principal_actions": own.total,
                "p_principal": pp, "p_role": pr, "p_tenant": pt,
            })
        });
    }

    // The transition from the session's previous action.
    if let Some(prev) = ctx.session.last_action {
        let (from, hit) = own.transition(prev, a);
        let pt_cond = smoothed(hit, from, params.transition_prior_strength, pp);
        if seen_in_tenant && from > 0 {
            push(SignalCode::UnusualTransition, (pp / pt_cond).ln(), &|| {
                json!({
                    "action": action.name,
                    "transitions_from_previous": from,
                    "of_which_to_this": hit,
                    "p_action": pp, "p_after_previous": pt_cond,
                })
            });
        }
    }

    // A burst of sensitive actions.
    if ctx.sensitivity >= Sensitivity::High {
        let since = ctx.event.time.0 - i64::from(params.burst_window_seconds) * 1000;
        let (mut k, mut m) = (0u32, 0u32);
        for (_, s) in own.recent.iter().filter(|(t, _)| t.0 >= since) {
            m += 1;
            k += u32::from(*s);
        }
        if k > 0 {
            let share = sensitive_share(own, peers, params);
            push(
                SignalCode::SensitiveBurst,
                burst_evidence(k, m, params.burst_attack_share, share),
                &|| {
                    json!({
                        "sensitive": k + 1, "actions": m + 1,
                        "window_minutes": params.burst_window_seconds / 60,
                        "usual_share": round2(share),
                    })
                },
            );
        }
    }

    // Numeric attributes far above the principal's range.
    let mut best: Option<(f64, &str, f64, f64, f64, f64)> = None;
    for (name, x) in numeric_attributes(ctx.event.attributes.as_ref()) {
        let key = attribute_key(a, name);
        let Some((mean, sd, n)) = attribute_baseline(
            own.attribute(key),
            peers.role.and_then(|r| r.attribute(key)),
            params,
        ) else {
            continue;
        };
        let e = outlier_evidence(x, mean, sd, params.attribute_log_range);
        if best.as_ref().is_none_or(|b| e > b.0) {
            best = Some((e, name, x, mean, sd, n));
        }
    }
    if let Some((e, name, x, mean, sd, n)) = best {
        push(SignalCode::AttributeOutlier, e, &|| {
            json!({
                "attribute": name,
                "value": ctx.event.attributes.as_ref().and_then(|m| m.get(name)),
                "usual": round2(mean.exp_m1()),
                "sigmas": round2((x - mean) / sd),
                "baseline_n": round2(n),
            })
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> DetectorParams {
        crate::policy::Policy::default_policy()
            .unwrap_or_else(|e| panic!("{e}"))
            .detectors
            .clone()
    }

    fn profile(items: &[(&str, u32)]) -> ActionProfile {
        let mut p = ActionProfile::default();
        for (name, n) in items {
            for _ in 0..*n {
                p.learn(action_key(name), *name != "page.view", None, u32::MAX);
            }
        }
        p
    }

    #[test]
    fn an_action_outside_the_role_is_strong_evidence_one_inside_is_none() {
        let params = params();
        let tenant = profile(&[
            ("page.view", 9000),
            ("data.export", 300),
            ("rbac.assign", 40),
        ]);
        let sales = profile(&[("page.view", 3000), ("data.export", 100)]);
        let me = profile(&[("page.view", 200), ("data.export", 6)]);
        let peers = Peers {
            tenant: Some(&tenant),
            role: Some(&sales),
        };
        let ev = |name: &str| {
            let a = action_key(name);
            let (pp, _, pt) = action_probabilities(&me, &peers, a, &params);
            (pt / pp).ln()
        };
        assert!(ev("rbac.assign") > 6.0, "{}", ev("rbac.assign"));
        assert!(ev("data.export") < 0.5, "{}", ev("data.export"));
        assert!(ev("page.view") < 0.0);
        // Cold start: a principal with no history is judged by its role.
        let newcomer = ActionProfile::default();
        let a = action_key("rbac.assign");
        let (pp, pr, _) = action_probabilities(&newcomer, &peers, a, &params);
        assert!((pp - pr).abs() < 1e-12);
    }

    #[test]
    fn bursts_weigh_sensitive_share() {
        // Three sensitive of three against a 5% habit: ln(10)·3.
        assert!((burst_evidence(3, 3, 0.5, 0.05) - 3.0 * 10f64.ln()).abs() < 1e-9);
        // One of five: less than nothing.
        assert!(burst_evidence(1, 5, 0.5, 0.05) < 1.0);
    }

    #[test]
    fn outliers_count_only_far_above_the_range() {
        let mut s = AttributeStats::default();
        for rows in [120.0, 800.0, 2000.0, 4500.0, 300.0, 1500.0] {
            s.add(f64::ln_1p(rows));
        }
        let params = params();
        let (mean, sd, _) = attribute_baseline(Some(&s), None, &params)
            .unwrap_or_else(|| panic!("a baseline from six values"));
        let r = params.attribute_log_range;
        assert!(outlier_evidence(f64::ln_1p(3000.0), mean, sd, r) < 0.0);
        assert!(outlier_evidence(f64::ln_1p(250_000.0), mean, sd, r) > 4.0);
        assert!(outlier_evidence(f64::ln_1p(10.0), mean, sd, r).is_infinite());
    }

    #[test]
    fn counts_halve_beyond_the_history_cap() {
        let mut p = ActionProfile::default();
        for _ in 0..11 {
            p.learn(action_key("x"), true, Some(1), 10);
        }
        assert_eq!(p.total, 5);
        assert_eq!(p.count(action_key("x")), 5);
        assert_eq!(p.transition(1, action_key("x")), (5, 5));
    }
}
