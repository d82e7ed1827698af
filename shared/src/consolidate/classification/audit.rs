//! Confidence recalibrated on an audited sample: when a team has checked some labels by hand.
//!
//! No gold-free model can see a mistake the whole crowd shares (an object every worker gets wrong the
//! same way looks exactly like an easy one), so on such crowds the model's confidence stays too high. A
//! reviewer's verdicts on a random sample of the labels (at least [`MIN_AUDITED`] objects) say how often
//! labels of each confidence are really right. [`AuditMap`] is the logistic map
//! `p = σ(a · logit(c) + b)` from the model's confidence `c` to the probability that the label is right,
//! fitted to those verdicts by maximum likelihood (Platt scaling; a weak Gaussian prior centred on the
//! identity map, `a = 1, b = 0`, keeps 50 verdicts from producing a degenerate map). Two parameters are
//! what 50 verdicts can support; the map is monotone, so it never reorders the labels by confidence, and
//! it never changes a label.

use super::synthetic::SmallRng;
use super::{SingleLabelOutcome, expected_calibration_error};

/// The fewest audited objects a map is fitted on.
pub const MIN_AUDITED: usize = 50;

/// Confidences are clamped to `[EDGE, 1 − EDGE]` before their logit is taken.
const EDGE: f64 = 1e-4;

/// The prior's precision on `a − 1` and on `b` (in units of one verdict's curvature): weak enough for
/// 50 verdicts to move the map wherever they point, strong enough that a sample with no wrong label (or
/// no right one) does not send `a` to infinity.
const PRIOR_PRECISION: f64 = 1.0;

/// Why no map could be fitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// Too few audited objects matched a label.
    #[error(
        "{found} audited objects match a consolidated label; at least {MIN_AUDITED} are needed"
    )]
    TooFew {
        /// How many matched.
        found: usize,
    },
}

/// The fitted map from a label's confidence to the probability that it is right.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AuditMap {
    /// Slope on the logit of the confidence.
    pub slope: f64,
    /// Intercept.
    pub intercept: f64,
    /// How many verdicts it was fitted on.
    pub audited: usize,
}

fn logit(c: f64) -> f64 {
    let c = if c.is_finite() { c } else { 0.5 };
    let c = c.clamp(EDGE, 1.0 - EDGE);
    (c / (1.0 - c)).ln()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl AuditMap {
    /// Fits the map to `(model confidence, label was right)` verdicts.
    pub fn fit(verdicts: &[(f64, bool)]) -> Result<Self, AuditError> {
        if verdicts.len() < MIN_AUDITED {
            return Err(AuditError::TooFew {
                found: verdicts.len(),
            });
        }
        let xs: Vec<(f64, f64)> = verdicts
            .iter()
            .map(|&(c, right)| (logit(c), f64::from(u8::from(right))))
            .collect();
        // Newton's method on the penalised log-likelihood (concave), each step halved until it improves
        // the objective: a full step can overshoot when the verdicts sit at the edges.
        let objective = |a: f64, b: f64| -> f64 {
            let prior = -0.5 * PRIOR_PRECISION * ((a - 1.0).powi(2) + b.powi(2));
            xs.iter().fold(prior, |acc, &(x, y)| {
                let z = a * x + b;
                // y·z − ln(1 + e^z), written to stay finite for large |z|.
                acc + y * z - (z.max(0.0) + (-z.abs()).exp().ln_1p())
            })
        };
        let (mut a, mut b) = (1.0, 0.0);
        let mut current = objective(a, b);
        for _ in 0..100 {
            let (mut ga, mut gb) = (-PRIOR_PRECISION * (a - 1.0), -PRIOR_PRECISION * b);
            let (mut haa, mut hab, mut hbb) = (PRIOR_PRECISION, 0.0, PRIOR_PRECISION);
            for &(x, y) in &xs {
                let p = sigmoid(a * x + b);
                let w = (p * (1.0 - p)).max(1e-12);
                ga += (y - p) * x;
                gb += y - p;
                haa += w * x * x;
                hab += w * x;
                hbb += w;
            }
            let det = haa * hbb - hab * hab;
            if det.abs() < 1e-18 {
                break;
            }
            let da = (hbb * ga - hab * gb) / det;
            let db = (haa * gb - hab * ga) / det;
            let mut step = 1.0;
            let mut moved = false;
            while step > 1e-6 {
                let (na, nb) = (a + step * da, b + step * db);
                let value = objective(na, nb);
                if value >= current {
                    (a, b, current) = (na, nb, value);
                    moved = true;
                    break;
                }
                step *= 0.5;
            }
            if !moved || (step * (da.abs() + db.abs())) < 1e-10 {
                break;
            }
        }
        Ok(Self {
            slope: a,
            intercept: b,
            audited: verdicts.len(),
        })
    }

    /// The probability that a label of model confidence `c` is right.
    pub fn apply(&self, c: f64) -> f64 {
        sigmoid(self.slope * logit(c) + self.intercept)
    }

    /// Fits the map to the audited objects of a consolidation: `audited` gives, per item, the audited
    /// class (`None`: not audited).
    pub fn fit_outcome(
        outcome: &SingleLabelOutcome,
        audited: &[Option<usize>],
    ) -> Result<Self, AuditError> {
        let verdicts: Vec<(f64, bool)> = outcome
            .items
            .iter()
            .zip(audited)
            .filter_map(|(estimate, audit)| {
                let label = estimate.label?;
                audit.map(|truth| (estimate.confidence, truth == label))
            })
            .collect();
        Self::fit(&verdicts)
    }
}

/// The ECE a team would see with `n_audited` audited objects, estimated by cross-validation over the
/// gold: `rounds` times, `n_audited` gold objects drawn at random (seeded) are the audit, the map is
/// fitted on them and the ECE is measured on the other gold objects. Returns the mean ECE, or `None`
/// when there are too few gold objects.
pub fn cross_validated_ece(
    labels: &[Option<usize>],
    confidence: &[f64],
    gold: &[Option<usize>],
    n_audited: usize,
    rounds: usize,
    seed: u64,
) -> Option<f64> {
    let judged: Vec<usize> = (0..gold.len())
        .filter(|&i| gold[i].is_some() && labels[i].is_some())
        .collect();
    if n_audited < MIN_AUDITED || judged.len() < n_audited + MIN_AUDITED {
        return None;
    }
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut total = 0.0;
    for _ in 0..rounds.max(1) {
        let mut order = judged.clone();
        for i in (1..order.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let (audit, rest) = order.split_at(n_audited);
        let verdicts: Vec<(f64, bool)> = audit
            .iter()
            .map(|&i| (confidence[i], labels[i] == gold[i]))
            .collect();
        let map = AuditMap::fit(&verdicts).ok()?;
        let mapped: Vec<f64> = rest.iter().map(|&i| map.apply(confidence[i])).collect();
        let rest_labels: Vec<Option<usize>> = rest.iter().map(|&i| labels[i]).collect();
        let rest_gold: Vec<Option<usize>> = rest.iter().map(|&i| gold[i]).collect();
        total += expected_calibration_error(&mapped, &rest_labels, &rest_gold, 10);
    }
    Some(total / rounds.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_few_verdicts_are_refused() {
        let verdicts = vec![(0.9, true); MIN_AUDITED - 1];
        assert_eq!(
            AuditMap::fit(&verdicts),
            Err(AuditError::TooFew {
                found: MIN_AUDITED - 1
            })
        );
    }

    #[test]
    fn an_over_confident_model_is_brought_down_to_its_accuracy() {
        // The model says 0.99 and is right 80 % of the time; says 0.6 and is right 55 %.
        let mut verdicts = Vec::new();
        for i in 0..100 {
            verdicts.push((0.99, i % 5 != 0));
            verdicts.push((0.6, i % 20 < 11));
        }
        let map = AuditMap::fit(&verdicts).expect("enough verdicts");
        assert!((map.apply(0.99) - 0.8).abs() < 0.03, "{}", map.apply(0.99));
        assert!((map.apply(0.6) - 0.55).abs() < 0.05, "{}", map.apply(0.6));
        assert!(map.apply(0.99) > map.apply(0.6), "monotone");
    }

    #[test]
    fn a_calibrated_model_is_left_nearly_alone() {
        let mut rng = SmallRng::seed_from_u64(4);
        let verdicts: Vec<(f64, bool)> = (0..2000)
            .map(|_| {
                let c = rng.uniform_range(0.5, 1.0);
                (c, rng.uniform() < c)
            })
            .collect();
        let map = AuditMap::fit(&verdicts).expect("enough verdicts");
        for c in [0.55, 0.7, 0.9] {
            assert!((map.apply(c) - c).abs() < 0.04, "{c} -> {}", map.apply(c));
        }
    }

    #[test]
    fn a_sample_without_a_wrong_label_gives_a_finite_map() {
        let verdicts = vec![(0.95, true); 60];
        let map = AuditMap::fit(&verdicts).expect("enough verdicts");
        assert!(map.slope.is_finite() && map.intercept.is_finite());
        assert!(map.apply(0.95) > 0.95 && map.apply(0.95) < 1.0);
    }
}
