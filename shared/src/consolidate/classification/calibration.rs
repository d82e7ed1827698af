//! Calibration of the Dawid-Skene posterior: how much are an item's votes really worth?
//!
//! Dawid-Skene assumes that workers err independently given the true class, so ten agreeing votes count
//! as ten independent pieces of evidence and the posterior says 0.999. Real crowds share blind spots: a
//! hard item fools many workers at once, so the votes on one item are correlated and the posterior is
//! over-confident (on the shared RTE set a 5-to-5 split decided by worker quality is right 85 % of the
//! time, not 98 %).
//!
//! **The model.** The votes on an item are exchangeable with an intra-item correlation `rho` (a shared
//! item effect). By the classic design effect, `n` such votes carry the evidence of
//! `n / (1 + (n − 1) rho)` independent ones, so the item's log-likelihood (and log prior) is scaled by
//! `tau(n) = 1 / (1 + (n − 1) rho)` before normalising. A single vote is never scaled; `rho = 0` is plain
//! Dawid-Skene; scaling a log-posterior never changes its argmax.
//!
//! **Confidence held out of the model.** The label is the EM's argmax; its confidence is not the EM's
//! posterior. EM fits every worker's confusion row on the very items it then scores, and on a hard task
//! in a small batch (workers right 40–75 % of the time, 1,000 objects × 5 votes) that self-reinforcement
//! is most of the error: a worker who sided with the majority on items where the majority was wrong is
//! credited as right, their rows grow sharper than the crowd is, and the posterior says 0.98 for labels
//! that are right far less often, and the error shrinks only as the batch grows. So each
//! item is scored by a model that never saw it: every vote is weighed by its worker's answers on the
//! *other* items (the item's posterior, which it credited to its workers' rows, is taken back out:
//! `(c_ta − r_t) / (n_t − r_t)`), smoothed towards the worker's prior row with the strength that best
//! predicts held-out answers ([`cross_validated_strength`]: with the EM's light smoothing, a mistake a
//! worker made once looks impossible once that item is taken out, and every dissenting vote would then
//! look damning). The counts are then rebuilt once from these held-out posteriors (so that no item's own
//! votes vouch for its workers through its label either) and every item is scored again the same way
//! ([`held_out_posterior`]). Where the held-out posterior prefers another class than the EM's label, the
//! confidence is its probability of the EM's label (below one half): the label keeps its accuracy, the
//! confidence says how likely it is to be right.
//!
//! **Fitting `rho` without gold.** The one check the crowd offers is itself: every vote is predicted from
//! the other `n − 1` votes of its item (scaled by `tau(n − 1)`) through its worker's confusion row, and
//! the `rho` with the best held-out log-likelihood is kept. Every row involved, for the held-out vote and
//! for the others, is the held-out row above (the item taken out of the counts, the cross-validated
//! smoothing), i.e. exactly the rows that score the reported confidence: `rho` is fitted for the model it
//! tempers. On crowds that fit the model (the synthetic ones, easy or hard, large batches or 300
//! objects) `rho` comes out near 0 and nothing changes.
//!
//! What no gold-free check can see is a blind spot shared by the *whole* crowd: an item every worker
//! gets wrong in the same way looks exactly like an easy one. Such errors (7 % of the unanimous items of
//! the shared dog set) stay over-confident.

use super::votes::{RESCALE_BELOW, RESCALE_BY, VOTES_WITHOUT_RESCALE, Votes};

/// Probabilities below this are clamped before taking logs (as in the EM).
const MIN_PROBABILITY: f64 = 1e-6;

/// At most this many items are used to choose `rho` (evenly spread over the batch): the choice is one
/// number, and scoring every vote of a 100 000-item set would cost more than EM itself.
const MAX_ITEMS_FOR_RHO: usize = 1000;

/// The coarse scan: `rho = 0`, then `1 / 2^k` from `2^-6` up to 1. Smaller correlations barely move a
/// confidence (with 10 votes `rho = 2^-6` already leaves 88 % of the evidence) and each candidate costs a
/// pass over the sample; the refinement steps reach down from `2^-6` when it wins.
const COARSE_STEPS: i32 = 6;

/// What the calibration reads of the fitted model.
pub(crate) struct FittedModel<'a> {
    /// The prior row each worker's counts are smoothed towards (`[w][true][answered]`).
    pub(crate) prior_rows: &'a [f64],
    /// The class prior, as logs.
    pub(crate) log_class_prior: &'a [f64],
    /// The soft counts the model was fitted on (`W × K × K`, earlier batches included).
    pub(crate) total_counts: &'a [f64],
    /// Every worker is their prior row (one coin): no counts of their own pull on it.
    pub(crate) one_coin: bool,
}

/// Pseudo-answers that hold every row at its prior row: a one-coin model's rows.
const ONE_COIN_STRENGTH: f64 = 1e12;

impl FittedModel<'_> {
    /// How strongly the rows that score held-out items are pulled towards the prior rows.
    pub(crate) fn row_strength(&self, k: usize) -> f64 {
        if self.one_coin {
            ONE_COIN_STRENGTH
        } else {
            cross_validated_strength(self.total_counts, self.prior_rows, k)
        }
    }
}

/// A class whose (tempered) probability is below `e^-NEGLIGIBLE_LOG_RATIO` times the top class's cannot
/// change a sum of probabilities in f64 (e^-40 ≈ 4e-18): it is taken as 0 without computing it. Jobs with
/// many classes are mostly such classes.
const NEGLIGIBLE_LOG_RATIO: f64 = 40.0;

/// The design-effect scaling of an item with `n` votes.
fn tau(n: usize, rho: f64) -> f64 {
    1.0 / (1.0 + n.saturating_sub(1) as f64 * rho)
}

/// The sampled votes' held-out terms, computed once. Each vote is predicted from its item's other votes:
/// `softmax(scale · (total − own)) · own_p`. The top class of `total − own` does not depend on
/// `scale > 0`, so each vote keeps that class's predictive probability and, per other class, its gap to
/// the top (`≤ 0`) and its probability: a candidate `rho` then costs one exponential per vote and
/// other class, in one pass over flat arrays.
struct HeldOut {
    /// Other classes per vote (`k − 1`).
    others: usize,
    /// Per vote: P(its answer | the top class of the other votes), item held out.
    top_p: Vec<f64>,
    /// Per vote and other class (`others` entries each): `(total − own)` minus its top value (`≤ 0`;
    /// a near-tie within `argmax_with_ties`' tolerance may sit just above, and weighs as a tie).
    gap: Vec<f64>,
    /// Per vote and other class: P(the vote's answer | that class), item held out.
    other_p: Vec<f64>,
    /// Per vote and other class: `m − 1` for the `m` other votes on the vote's item, so that their
    /// evidence is scaled by `tau(m) = 1 / (1 + (m − 1) rho)`.
    excess_votes: Vec<f64>,
}

impl HeldOut {
    /// `posterior` is the one the counts were built from (each item's share is taken back out of them);
    /// `strength` the cross-validated smoothing of the rows.
    fn new(votes: &Votes, model: &FittedModel<'_>, strength: f64, posterior: &[f64]) -> Self {
        let k = votes.n_classes;
        let n_items = votes.n_items();
        let row_totals = row_totals(model.total_counts, k);
        let multi: Vec<usize> = (0..n_items)
            .filter(|&i| votes.offsets[i + 1] - votes.offsets[i] >= 2)
            .collect();
        let stride = multi.len().div_ceil(MAX_ITEMS_FOR_RHO).max(1);
        let mut held = Self {
            others: k.saturating_sub(1),
            top_p: Vec::new(),
            gap: Vec::new(),
            other_p: Vec::new(),
            excess_votes: Vec::new(),
        };
        let (mut own, mut own_p, mut rest) = (Vec::new(), Vec::new(), vec![0.0; k]);
        for &item in multi.iter().step_by(stride) {
            let r = &posterior[item * k..(item + 1) * k];
            let range = votes.offsets[item]..votes.offsets[item + 1];
            let excess_votes = range.len().saturating_sub(2) as f64;
            let mut total = model.log_class_prior.to_vec();
            own.clear();
            own_p.clear();
            for v in range {
                let (w, a) = (votes.worker[v] as usize, votes.answer[v] as usize);
                for (t, total) in total.iter_mut().enumerate() {
                    // Every vote, the held-out one and the others, is weighed by its worker's answers
                    // on the other items, smoothed with the cross-validated strength: the same rows
                    // that score the reported confidence ([`held_out_posterior`]).
                    let q = held_out_probability(model, &row_totals, strength, r[t], w, t, a, k);
                    let lp = q.ln();
                    own.push(lp);
                    *total += lp;
                    own_p.push(q);
                }
            }
            for (own, own_p) in own.chunks_exact(k).zip(own_p.chunks_exact(k)) {
                for ((x, t), o) in rest.iter_mut().zip(&total).zip(own) {
                    *x = t - o;
                }
                let top = super::argmax_with_ties(&rest).unwrap_or(0);
                held.top_p.push(own_p[top]);
                for t in (0..k).filter(|&t| t != top) {
                    held.gap.push(rest[t] - rest[top]);
                    held.other_p.push(own_p[t]);
                    held.excess_votes.push(excess_votes);
                }
            }
        }
        held
    }

    fn is_empty(&self) -> bool {
        self.top_p.is_empty()
    }

    /// The held-out log-likelihood of every sampled vote under correlation `rho`.
    ///
    /// This runs once per candidate `rho` over every sampled vote, so it is the calibration's cost: the
    /// exponentials are taken in one branch-free pass over a flat array ([`exp_nonpositive`], which
    /// vectorises where a libm call per value cannot), and the per-vote predictive probabilities are
    /// multiplied, with a logarithm taken only when the product nears the bottom of the f64 range.
    fn score(&self, rho: f64) -> f64 {
        let weights: Vec<f64> = self
            .gap
            .iter()
            .zip(&self.excess_votes)
            .map(|(&gap, &excess)| exp_nonpositive(gap / (1.0 + excess * rho)))
            .collect();
        let mut log_likelihood = 0.0;
        let mut product = 1.0f64;
        let others = self.others.max(1);
        for ((top_p, weights), other_p) in self
            .top_p
            .iter()
            .zip(weights.chunks_exact(others))
            .zip(self.other_p.chunks_exact(others))
        {
            let (mut predictive, mut norm) = (*top_p, 1.0);
            for (e, q) in weights.iter().zip(other_p) {
                predictive += e * q;
                norm += e;
            }
            product *= (predictive / norm).max(1e-300);
            if product < 1e-250 {
                log_likelihood += product.ln();
                product = 1.0;
            }
        }
        log_likelihood + product.ln()
    }
}

/// `e^x` for `x ≤ 0`, to within a few units in the last place (inputs below −708 give `e^-708`, which
/// is 0 to every sum it joins). Written without branches or calls, so that a loop over a slice
/// vectorises: range reduction `x = n ln 2 + r` with `|r| ≤ ln 2 / 2` (`n` rounded by the 1.5 · 2^52
/// trick, `ln 2` split in two so that `n ln 2` is exact), a degree-13 Taylor polynomial for `e^r`
/// (truncation below 1e-17, evaluated by Estrin's scheme), and `2^n` assembled from its exponent bits.
#[inline(always)]
fn exp_nonpositive(x: f64) -> f64 {
    const ROUND: f64 = 6_755_399_441_055_744.0;
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    const C: [f64; 14] = [
        1.0,
        1.0,
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5_040.0,
        1.0 / 40_320.0,
        1.0 / 362_880.0,
        1.0 / 3_628_800.0,
        1.0 / 39_916_800.0,
        1.0 / 479_001_600.0,
        1.0 / 6_227_020_800.0,
    ];
    let x = x.clamp(-708.0, 0.0);
    let shifted = x * std::f64::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    // Estrin's scheme: the same polynomial as Horner's, in four dependent steps instead of thirteen.
    let (r2, r4) = (r * r, r * r * r * r);
    let pair = |i: usize| C[i] + C[i + 1] * r;
    let low = (pair(0) + r2 * pair(2)) + r4 * (pair(4) + r2 * pair(6));
    let high = (pair(8) + r2 * pair(10)) + r4 * pair(12);
    let p = low + r4 * r4 * high;
    let exponent = shifted
        .to_bits()
        .wrapping_sub(ROUND.to_bits())
        .wrapping_add(1023)
        << 52;
    p * f64::from_bits(exponent)
}

/// Each worker's row totals (`[w][true]`) of `total_counts`.
fn row_totals(total_counts: &[f64], k: usize) -> Vec<f64> {
    total_counts
        .chunks_exact(k)
        .map(|row| row.iter().sum())
        .collect()
}

/// P(worker `w` answers `a` | true class `t`) with the item's own share `r_t` (its posterior of `t`,
/// which it credited to that row) taken back out, smoothed towards the worker's prior row with
/// `strength` pseudo-answers.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn held_out_probability(
    model: &FittedModel<'_>,
    row_totals: &[f64],
    strength: f64,
    r_t: f64,
    w: usize,
    t: usize,
    a: usize,
    k: usize,
) -> f64 {
    let cell = (w * k + t) * k;
    let q = ((model.total_counts[cell + a] - r_t).max(0.0) + strength * model.prior_rows[cell + a])
        / ((row_totals[w * k + t] - r_t).max(0.0) + strength);
    q.max(MIN_PROBABILITY)
}

/// Every item's posterior with the item held out of the model that scores it: each vote is weighed by
/// its worker's answers on the *other* items (the item's share, `posterior`, is taken back out of the
/// counts), smoothed towards the worker's prior row with the cross-validated `strength`. Items with
/// fewer than two votes taught the counts nothing and keep `posterior`. Written to `out`.
pub(crate) fn held_out_posterior(
    votes: &Votes,
    model: &FittedModel<'_>,
    strength: f64,
    posterior: &[f64],
    out: &mut [f64],
) {
    let k = votes.n_classes;
    match k {
        2 => held_out_posterior_k(2, votes, model, strength, posterior, out),
        3 => held_out_posterior_k(3, votes, model, strength, posterior, out),
        4 => held_out_posterior_k(4, votes, model, strength, posterior, out),
        k => held_out_posterior_k(k, votes, model, strength, posterior, out),
    }
}

#[inline(always)]
fn held_out_posterior_k(
    k: usize,
    votes: &Votes,
    model: &FittedModel<'_>,
    strength: f64,
    posterior: &[f64],
    out: &mut [f64],
) {
    let row_totals = row_totals(model.total_counts, k);
    let class_prior: Vec<f64> = model.log_class_prior.iter().map(|lp| lp.exp()).collect();
    for (item, (row, r)) in out
        .chunks_exact_mut(k)
        .zip(posterior.chunks_exact(k))
        .enumerate()
    {
        let (start, end) = (votes.offsets[item], votes.offsets[item + 1]);
        if end - start < 2 {
            row.copy_from_slice(r);
            continue;
        }
        row.copy_from_slice(&class_prior);
        for v in start..end {
            let (w, a) = (votes.worker[v] as usize, votes.answer[v] as usize);
            let mut max = 0.0f64;
            for (t, x) in row.iter_mut().enumerate() {
                *x *= held_out_probability(model, &row_totals, strength, r[t], w, t, a, k);
                max = max.max(*x);
            }
            if end - start > VOTES_WITHOUT_RESCALE && max < RESCALE_BELOW {
                row.iter_mut().for_each(|x| *x *= RESCALE_BY);
            }
        }
        let sum: f64 = row.iter().sum();
        if sum > 0.0 && sum.is_finite() {
            row.iter_mut().for_each(|x| *x /= sum);
        } else {
            row.copy_from_slice(r);
        }
    }
}

/// The smoothing strength (pseudo-answers towards the worker's prior row) that best predicts each of
/// a worker's answers from their other answers, over every worker and row.
///
/// The held-out vote must be judged by how likely its worker was to give that answer, estimated without
/// it. With the EM's light smoothing, a confusion a worker made once becomes nearly impossible once that
/// answer is taken out, so every rare mistake looks like a shock and `rho` is pushed up to soften the
/// posterior, even on crowds whose errors are independent (a 1,000-object batch of 50 equally good
/// workers came out at `rho = 0.7` and under-confident). Choosing the strength by the same held-out
/// principle removes that bias: homogeneous crowds get strong smoothing, crowds of distinct workers weak.
pub(crate) fn cross_validated_strength(total_counts: &[f64], prior_rows: &[f64], k: usize) -> f64 {
    // Each cell `c` of a row with total `n` scores `c · ln((max(c − 1, 0) + s m) / (n − 1 + s))` for
    // strength `s` and prior share `m`. A cell with at most one answer in it scores `c · (ln s + ln m)`,
    // whose `ln m` part does not depend on `s`: those cells (nearly all of them in a job with many
    // classes) reduce to one sum per batch, and only the few fuller cells are visited per candidate.
    let mut sparse_mass = 0.0;
    let mut rows: Vec<(f64, f64)> = Vec::new();
    let mut full_cells: Vec<(f64, f64)> = Vec::new();
    for (counts, prior) in total_counts.chunks_exact(k).zip(prior_rows.chunks_exact(k)) {
        let row: f64 = counts.iter().sum();
        if row < 1.0 {
            continue;
        }
        // Cells holding less than a millionth of an answer (the posterior's crumbs on unlikely
        // classes) cannot move the choice.
        let mut weight = 0.0;
        for (&c, &m) in counts.iter().zip(prior) {
            if c > 1e-6 {
                weight += c;
                if c > 1.0 {
                    full_cells.push((c, m.max(MIN_PROBABILITY)));
                } else {
                    sparse_mass += c;
                }
            }
        }
        rows.push((row, weight));
    }
    let score = |strength: f64| -> f64 {
        let sparse = sparse_mass * strength.ln();
        let full: f64 = full_cells
            .iter()
            .map(|&(c, m)| c * (c - 1.0 + strength * m).ln())
            .sum();
        let denominators: f64 = rows
            .iter()
            .map(|&(row, weight)| weight * (row - 1.0 + strength).ln())
            .sum();
        sparse + full - denominators
    };
    // A log grid from half a pseudo-answer to 4096, then one refinement step each side.
    let mut best = (0.5, score(0.5));
    for step in 0..=13 {
        let strength = 2f64.powi(step);
        let s = score(strength);
        if s > best.1 {
            best = (strength, s);
        }
    }
    let centre = best.0;
    for strength in [
        centre / std::f64::consts::SQRT_2,
        centre * std::f64::consts::SQRT_2,
    ] {
        let s = score(strength);
        if s > best.1 {
            best = (strength, s);
        }
    }
    best.0
}

/// Chooses the intra-item correlation `rho` by held-out vote likelihood (see the module docs).
fn fit_correlation(
    votes: &Votes,
    model: &FittedModel<'_>,
    strength: f64,
    posterior: &[f64],
) -> f64 {
    let held = HeldOut::new(votes, model, strength, posterior);
    if held.is_empty() {
        return 0.0;
    }
    // A larger rho must win clearly: rounding noise must not decide it.
    let better = |s: f64, best: f64| s > best + 1e-9 * best.abs().max(1.0);
    // Coarse scan of the whole grid, 0 and then upwards by factors of 2. The score is not unimodal on a
    // small batch: on one of 50 objects with 39 votes each it dipped at 2^-6 and peaked at 2^-3, and a
    // scan that stopped at the first fall kept `rho = 0` and called every label certain.
    let mut best = (0.0, held.score(0.0));
    for step in (0..=COARSE_STEPS).rev() {
        let rho = 0.5f64.powi(step);
        let s = held.score(rho);
        if better(s, best.1) {
            best = (rho, s);
        }
    }
    if best.0 == 0.0 {
        return 0.0;
    }
    // Refine on a log scale: factors 2^±1/2, then 2^±1/4.
    for factor in [std::f64::consts::SQRT_2, 2f64.powf(0.25)] {
        let centre = best.0;
        for rho in [centre / factor, (centre * factor).min(1.0)] {
            let s = held.score(rho);
            if better(s, best.1) {
                best = (rho, s);
            }
        }
    }
    best.0
}

/// Scales every item's log-posterior by `tau(n)` for its `n` votes and renormalises (single-vote items
/// keep theirs: their confidence is decided by the caller, and `tau(1) = 1` anyway).
pub(crate) fn temper(votes: &Votes, rho: f64, posterior: &mut [f64]) {
    let k = votes.n_classes;
    if rho <= 0.0 {
        return;
    }
    for (item, row) in posterior.chunks_exact_mut(k).enumerate() {
        let n = votes.offsets[item + 1] - votes.offsets[item];
        if n < 2 {
            continue;
        }
        let scale = tau(n, rho);
        // Ratios to the largest entry below this stay below e^-40 once tempered: 0, without a log.
        let negligible = (-NEGLIGIBLE_LOG_RATIO / scale).exp();
        // p^tau / sum p^tau, computed on ratios to the largest entry: the largest becomes 1 without a
        // logarithm or an exponential, and an entry of exactly 0 stays 0.
        let max = row.iter().copied().fold(0.0f64, f64::max);
        if !(max > 0.0 && max.is_finite()) {
            continue;
        }
        let mut sum = 0.0;
        for p in row.iter_mut() {
            let ratio = *p / max;
            *p = if ratio >= 1.0 {
                1.0
            } else if ratio > negligible {
                (scale * ratio.ln()).exp()
            } else {
                0.0
            };
            sum += *p;
        }
        row.iter_mut().for_each(|p| *p /= sum);
    }
}

/// The calibrated posteriors: `held` (the items' held-out posteriors, from which `model`'s counts were
/// rebuilt; see the module docs) scored once more with every item held out of `model`, and tempered by
/// the `rho` fitted with those same rows. Written to `out`.
pub(crate) fn calibrate(votes: &Votes, model: &FittedModel<'_>, held: &[f64], out: &mut [f64]) {
    let strength = model.row_strength(votes.n_classes);
    let rho = fit_correlation(votes, model, strength, held);
    held_out_posterior(votes, model, strength, held, out);
    temper(votes, rho, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn votes_of(items: &[&[(u32, u32)]], n_classes: usize) -> Votes {
        let mut votes = Votes {
            n_classes,
            n_workers: 4,
            offsets: vec![0],
            ..Votes::default()
        };
        for item in items {
            for &(w, a) in *item {
                votes.worker.push(w);
                votes.answer.push(a);
            }
            votes.offsets.push(votes.worker.len());
        }
        votes
    }

    #[test]
    fn the_vectorisable_exponential_matches_libm() {
        let mut worst = 0.0f64;
        for i in 0..=200_000 {
            let x = -(i as f64) * 708.0 / 200_000.0;
            let (ours, libm) = (exp_nonpositive(x), x.exp());
            worst = worst.max(((ours - libm) / libm).abs());
        }
        assert!(worst < 1e-14, "worst relative error {worst:e}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-0.0), 1.0);
        assert!(exp_nonpositive(-1e6) < 1e-300);
        assert!(exp_nonpositive(f64::NEG_INFINITY) < 1e-300);
    }

    #[test]
    fn tempering_discounts_many_votes_more_and_keeps_the_argmax() {
        let votes = votes_of(
            &[
                &[(0, 1)],
                &[(0, 1), (1, 1)],
                &[(0, 1), (1, 1), (2, 1), (3, 0)],
            ],
            2,
        );
        let before = vec![0.1, 0.9, 0.01, 0.99, 0.001, 0.999];
        let mut after = before.clone();
        temper(&votes, 0.0, &mut after);
        assert_eq!(after, before);
        temper(&votes, 0.5, &mut after);
        assert_eq!(&after[..2], &before[..2], "a single vote is never scaled");
        for row in after.chunks_exact(2) {
            assert!(row[1] > row[0]);
            assert!((row[0] + row[1] - 1.0).abs() < 1e-12);
        }
        // tau(2) = 2/3, tau(4) = 2/5: both rows come down, the 4-vote row by a larger factor.
        assert!(after[3] < 0.99 && after[5] < 0.999);
        let log_odds = |p: f64| (p / (1.0 - p)).ln();
        let ratio = log_odds(after[5]) / log_odds(before[5]);
        assert!((ratio - 0.4).abs() < 1e-9, "{ratio}");
    }
}
