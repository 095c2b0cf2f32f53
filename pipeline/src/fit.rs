//! `riskstream fit-weights`: the signal weights a labelled world supports,
//! by logistic regression, printed as a `[weights]` table to study beside
//! the policy's.
//!
//! Each sensitive action (high or critical, the population protection and
//! friction are measured on) is a row; its label is the event's
//! `labels.attack`; its features are, per signal code, the record's weight
//! divided by the policy's weight for the code (1 for a fixed-weight signal
//! at full strength, less under cold start; the model's evidence in nats
//! for a behavioural signal, whose policy weight is a multiplier). A fitted
//! coefficient is then directly a `[weights]` value. The fit is the maximum
//! a posteriori under a Gaussian prior centred on the policy's weights
//! (`l2` is the prior's precision, per coefficient), so that a code the
//! world shows rarely keeps its published weight, and one it shows often
//! moves to what the labels say. The intercept is free.
//!
//! What it is not: a way to set the default policy. The generator's worlds
//! are not the field; the default weights come from published rates
//! (`detectors/policy/default.toml`). The fit shows where the generator
//! and the published rates disagree, and is the tool for a deployment with
//! labelled incidents of its own.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;

use riskstream_detectors::Policy;
use riskstream_schemas::{Event, EventKind, RiskRecord, Sensitivity};

use crate::replay::RecordSink;

/// The rows of the fit, collected from a replay.
#[derive(Debug)]
pub struct WeightFit {
    /// Policy weights, by code, of the codes the fit may use (non-zero).
    prior: Vec<(&'static str, f64)>,
    /// Rows: (feature index, value) pairs, and the label.
    rows: Vec<(Vec<(usize, f64)>, bool)>,
    base_log_odds: f64,
}

/// The fitted weights.
#[derive(Debug, Clone)]
pub struct FittedWeights {
    /// Per code: (policy weight, fitted weight, rows with the signal,
    /// of which attack).
    pub weights: BTreeMap<&'static str, (f64, f64, u64, u64)>,
    /// Fitted intercept (log-odds of an attack on this sample of sensitive
    /// actions with no signal).
    pub intercept: f64,
    /// Rows, and of them attacks.
    pub rows: (u64, u64),
    /// Prior precision used.
    pub l2: f64,
    /// Newton iterations run.
    pub iterations: u32,
}

impl WeightFit {
    /// An empty fit against `policy`'s weights.
    pub fn new(policy: &Policy) -> WeightFit {
        let prior = Policy::signal_codes()
            .filter_map(|c| policy.weight_of(c).map(|w| (c, w)))
            .filter(|(_, w)| *w != 0.0)
            .collect();
        WeightFit {
            prior,
            rows: Vec::new(),
            base_log_odds: policy.base_log_odds(),
        }
    }

    /// Takes one record (kept only for sensitive actions).
    pub fn add(&mut self, event: &Event, record: &RiskRecord) {
        if event.kind() != EventKind::Action
            || !matches!(
                record.trigger.sensitivity,
                Sensitivity::High | Sensitivity::Critical
            )
        {
            return;
        }
        let mut x = Vec::with_capacity(record.signals.len());
        for s in &record.signals {
            if let Some(i) = self.prior.iter().position(|(c, _)| *c == s.code) {
                x.push((i, s.weight / self.prior[i].1));
            }
        }
        self.rows.push((x, event.is_labelled_attack()));
    }

    /// The MAP fit by Newton's method, with prior precision `l2`.
    pub fn fit(&self, l2: f64) -> FittedWeights {
        let d = self.prior.len();
        // Parameters: intercept, then one per code.
        let mut beta: Vec<f64> = std::iter::once(self.base_log_odds)
            .chain(self.prior.iter().map(|(_, w)| *w))
            .collect();
        let mut iterations = 0;
        for _ in 0..50 {
            iterations += 1;
            let mut grad = vec![0.0; d + 1];
            let mut hess = vec![vec![0.0; d + 1]; d + 1];
            for (x, y) in &self.rows {
                let z = beta[0] + x.iter().map(|(i, v)| beta[i + 1] * v).sum::<f64>();
                let p = 1.0 / (1.0 + (-z).exp());
                let r = f64::from(u8::from(*y)) - p;
                let w = (p * (1.0 - p)).max(1e-12);
                let feats: Vec<(usize, f64)> = std::iter::once((0, 1.0))
                    .chain(x.iter().map(|(i, v)| (i + 1, *v)))
                    .collect();
                for &(a, va) in &feats {
                    grad[a] += r * va;
                    for &(b, vb) in &feats {
                        hess[a][b] += w * va * vb;
                    }
                }
            }
            for k in 1..=d {
                grad[k] -= l2 * (beta[k] - self.prior[k - 1].1);
                hess[k][k] += l2;
            }
            // The intercept gets a tiny ridge so that the system stays
            // solvable on a sample of one class.
            hess[0][0] += 1e-9;
            let Some(mut step) = solve(hess, grad) else {
                break;
            };
            // Damped Newton: at most two nats a step, halved until the
            // penalised likelihood rises (near-separable classes otherwise
            // send the plain iteration to infinity).
            let largest = step.iter().fold(0.0f64, |m, s| m.max(s.abs()));
            if largest > 2.0 {
                step.iter_mut().for_each(|s| *s *= 2.0 / largest);
            }
            let before = self.objective(&beta, l2);
            let mut t = 1.0;
            let mut moved = false;
            for _ in 0..30 {
                let trial: Vec<f64> = beta.iter().zip(&step).map(|(b, s)| b + t * s).collect();
                if self.objective(&trial, l2) >= before {
                    beta = trial;
                    moved = true;
                    break;
                }
                t /= 2.0;
            }
            if !moved || largest * t < 1e-6 {
                break;
            }
        }
        let mut weights = BTreeMap::new();
        for (k, (code, w)) in self.prior.iter().enumerate() {
            let with: Vec<&(Vec<(usize, f64)>, bool)> = self
                .rows
                .iter()
                .filter(|(x, _)| x.iter().any(|(i, _)| *i == k))
                .collect();
            let attack = with.iter().filter(|(_, y)| *y).count() as u64;
            weights.insert(*code, (*w, beta[k + 1], with.len() as u64, attack));
        }
        FittedWeights {
            weights,
            intercept: beta[0],
            rows: (
                self.rows.len() as u64,
                self.rows.iter().filter(|(_, y)| *y).count() as u64,
            ),
            l2,
            iterations,
        }
    }
}

impl WeightFit {
    /// The penalised log-likelihood of `beta`.
    fn objective(&self, beta: &[f64], l2: f64) -> f64 {
        let mut ll = 0.0;
        for (x, y) in &self.rows {
            let z = beta[0] + x.iter().map(|(i, v)| beta[i + 1] * v).sum::<f64>();
            // ln(1 + e^z), stable for large |z|.
            let log1pexp = if z > 0.0 {
                z + (-z).exp().ln_1p()
            } else {
                z.exp().ln_1p()
            };
            ll += if *y { z } else { 0.0 } - log1pexp;
        }
        let penalty: f64 = self
            .prior
            .iter()
            .zip(&beta[1..])
            .map(|((_, w), b)| (b - w).powi(2))
            .sum();
        ll - 0.5 * l2 * penalty
    }
}

impl RecordSink for WeightFit {
    fn accept(&mut self, event: &Event, record: &RiskRecord) -> io::Result<()> {
        self.add(event, record);
        Ok(())
    }
}

/// Solves `a · x = b` by Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-300 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..n {
            let f = a[row][col] / a[col][col];
            if f == 0.0 {
                continue;
            }
            let (top, bottom) = a.split_at_mut(row);
            for (x, p) in bottom[0][col..n].iter_mut().zip(&top[col][col..n]) {
                *x -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

impl FittedWeights {
    /// As a TOML `[weights]` table with a comment per code.
    pub fn to_toml(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# riskstream fit-weights: MAP logistic regression of {} sensitive actions ({} attack)",
            self.rows.0, self.rows.1
        );
        let _ = writeln!(
            s,
            "# on the signals, Gaussian prior around the policy's weights (precision {}), {} Newton steps.",
            self.l2, self.iterations
        );
        let _ = writeln!(
            s,
            "# Intercept {:.2}: the log-odds of an attack among these actions with no signal, not the",
            self.intercept
        );
        let _ = writeln!(
            s,
            "# per-event prior of [scoring] base_log_odds. Study beside the policy; do not paste blindly."
        );
        let _ = writeln!(s, "[weights]");
        for (code, (policy, fitted, n, attack)) in &self.weights {
            let _ = writeln!(
                s,
                "{code} = {fitted:.2}  # policy {policy:.2}; in {n} rows, {attack} attack{}",
                if *n == 0 { " (the prior alone)" } else { "" }
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newton_recovers_a_known_model() {
        // Two features, intercept -3, weights 2 and -1, on a grid.
        let mut f = WeightFit {
            prior: vec![("a", 0.5), ("b", 0.5)],
            rows: Vec::new(),
            base_log_odds: 0.0,
        };
        let mut state: u64 = 7;
        let mut uniform = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for _ in 0..40_000 {
            let a = uniform() < 0.5;
            let b = uniform() < 0.5;
            let z = -3.0 + 2.0 * f64::from(u8::from(a)) - f64::from(u8::from(b));
            let y = uniform() < 1.0 / (1.0 + (-z).exp());
            let mut x = Vec::new();
            if a {
                x.push((0, 1.0));
            }
            if b {
                x.push((1, 1.0));
            }
            f.rows.push((x, y));
        }
        let fit = f.fit(1e-6);
        let w = |c: &str| fit.weights.get(c).map_or(f64::NAN, |w| w.1);
        assert!((fit.intercept + 3.0).abs() < 0.15, "{}", fit.intercept);
        assert!((w("a") - 2.0).abs() < 0.15, "{}", w("a"));
        assert!((w("b") + 1.0).abs() < 0.2, "{}", w("b"));
        assert!(fit.to_toml().contains("[weights]"));
    }

    #[test]
    fn solve_solves() {
        let x = solve(vec![vec![2.0, 1.0], vec![1.0, 3.0]], vec![3.0, 5.0]);
        let x = x.unwrap_or_default();
        assert!((x[0] - 0.8).abs() < 1e-12 && (x[1] - 1.4).abs() < 1e-12);
    }
}
