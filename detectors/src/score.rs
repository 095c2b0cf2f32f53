//! From signals to a score, a level and a decision per sensitivity class.
//!
//! Signals combine in log-odds, as independent likelihood ratios do in a
//! naive Bayes model: `log_odds = base + Σ weight`, `score = 100·σ(log_odds)`.
//! The score is thus the model's probability, in percent, that the session
//! is not its principal's; `base` is the prior and each weight the natural
//! log of how much likelier the signal is under attack than under normal use.

use riskstream_schemas::{Decision, Decisions, Level, PrincipalType, Sensitivity, Timestamp};

use crate::policy::Policy;

/// `100·σ(log_odds)`, rounded.
pub(crate) fn score_of(log_odds: f64) -> u8 {
    let p = 1.0 / (1.0 + (-log_odds).exp());
    (p * 100.0).round().clamp(0.0, 100.0) as u8
}

/// The level of a score, from the policy's boundaries.
pub(crate) fn level_of(policy: &Policy, score: u8) -> Level {
    let [medium, high, critical] = policy.levels();
    if score >= critical {
        Level::Critical
    } else if score >= high {
        Level::High
    } else if score >= medium {
        Level::Medium
    } else {
        Level::Low
    }
}

/// What the session knows of its assurance when deciding.
pub(crate) struct AssuranceView {
    pub kind: PrincipalType,
    pub aal: u8,
    pub last_strong_auth: Option<Timestamp>,
    /// The step-up satisfaction in force: a strong authentication at this
    /// time with no new sticky risk since.
    pub satisfied_at: Option<Timestamp>,
}

/// Why a class got its decision (for the `assurance_stale` signal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Because {
    Score,
    Assurance,
    Nothing,
}

/// The decision for one class.
pub(crate) fn decide(
    policy: &Policy,
    class: Sensitivity,
    score: u8,
    a: &AssuranceView,
    now: Timestamp,
) -> (Decision, Because) {
    let c = policy.class(class);
    if score >= c.deny_at {
        return (Decision::Deny, Because::Score);
    }
    let fresh = |t: Option<Timestamp>| t.is_some_and(|t| now.0 - t.0 <= c.fresh_auth_ms);
    if score >= c.step_up_at {
        if fresh(a.satisfied_at) {
            return (Decision::Allow, Because::Nothing);
        }
        return (Decision::StepUp, Because::Score);
    }
    if a.kind == PrincipalType::Human {
        let too_low = c.min_aal.is_some_and(|m| a.aal < m);
        let too_old = c
            .max_auth_age_ms
            .is_some_and(|max| a.last_strong_auth.is_none_or(|t| now.0 - t.0 > max));
        if (too_low || too_old) && !fresh(a.last_strong_auth) {
            return (Decision::StepUp, Because::Assurance);
        }
    }
    (Decision::Allow, Because::Nothing)
}

/// Decisions for every class.
pub(crate) fn decide_all(
    policy: &Policy,
    score: u8,
    a: &AssuranceView,
    now: Timestamp,
) -> [(Decision, Because); 4] {
    Sensitivity::ALL.map(|c| decide(policy, c, score, a, now))
}

/// Packs per-class decisions.
pub(crate) fn pack(d: &[(Decision, Because); 4]) -> Decisions {
    Decisions {
        low: d[0].0,
        medium: d[1].0,
        high: d[2].0,
        critical: d[3].0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_is_a_posterior_in_percent() {
        assert_eq!(score_of(0.0), 50);
        assert_eq!(score_of(-6.0), 0);
        assert_eq!(score_of(6.0), 100);
        assert_eq!(score_of(f64::INFINITY), 100);
        assert_eq!(score_of(f64::NEG_INFINITY), 0);
    }

    #[test]
    fn assurance_rules_step_up_people_not_machines() {
        let policy = Policy::default_policy().unwrap_or_else(|e| panic!("{e}"));
        let now = Timestamp(100 * 3600 * 1000);
        let human = AssuranceView {
            kind: PrincipalType::Human,
            aal: 1,
            last_strong_auth: None,
            satisfied_at: None,
        };
        // Critical needs aal 2: a clean aal 1 session is stepped up for it.
        assert_eq!(
            decide(&policy, Sensitivity::Critical, 0, &human, now).0,
            Decision::StepUp
        );
        assert_eq!(
            decide(&policy, Sensitivity::Low, 0, &human, now).0,
            Decision::Allow
        );
        let workload = AssuranceView {
            kind: PrincipalType::Workload,
            ..human
        };
        assert_eq!(
            decide(&policy, Sensitivity::Critical, 0, &workload, now).0,
            Decision::Allow
        );
        // A fresh strong authentication with nothing new since satisfies a
        // score step-up, but never a deny.
        let fresh = AssuranceView {
            kind: PrincipalType::Human,
            aal: 2,
            last_strong_auth: Some(now),
            satisfied_at: Some(now),
        };
        assert_eq!(
            decide(&policy, Sensitivity::High, 50, &fresh, now).0,
            Decision::Allow
        );
        assert_eq!(
            decide(&policy, Sensitivity::High, 99, &fresh, now).0,
            Decision::Deny
        );
    }
}
