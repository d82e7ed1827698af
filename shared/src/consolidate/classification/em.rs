//! The numeric core: Dawid-Skene EM and majority vote over dense indices and flat arrays.
//!
//! Everything here works on `u32` worker / class indices and contiguous `f64` buffers (CSR-style vote
//! lists, `W × K × K` confusion tables) so that the inner loops touch memory in order and never hash a
//! string: the public API in the parent module maps worker ids to indices once, up front.

use super::ClassificationConfig;
use super::calibration;
use super::votes::{RESCALE_BELOW, RESCALE_BY, VOTES_WITHOUT_RESCALE, Votes};
use crate::consolidate::worker_quality::StructureEvidence;

/// What EM hands back: the posterior per item (`N × K`, rows of items without votes are uniform), this
/// batch's own soft confusion counts per worker (`W × K × K`, `[worker][true][answered]`, prior excluded),
/// and, when the posterior is the calibrated one, each item's label (`u32::MAX` for none): the argmax of
/// the EM's own posterior, which the calibrated one need not share (see [`calibration`]). Without
/// `labels` the label is the posterior's argmax.
#[derive(Debug, Clone)]
pub(crate) struct EmOutput {
    pub(crate) posterior: Vec<f64>,
    pub(crate) batch_counts: Vec<f64>,
    pub(crate) labels: Option<Vec<u32>>,
    /// This batch's own evidence on the worker structure (empty when none was weighed).
    pub(crate) structure: StructureEvidence,
}

/// Probabilities below this are clamped before taking logs: a worker is never "certainly" not going to
/// give some answer, which keeps one surprising answer from vetoing an otherwise clear item.
const MIN_PROBABILITY: f64 = 1e-6;

/// Pseudo-answers per row of the one-coin base under the pooled confusion matrix. A small batch (Ground
/// Truth's first batches hold about ten objects) has only a handful of errors; without this weight their
/// exact pattern becomes the crowd's error structure, and an item split between two good workers is
/// decided with false certainty. Large batches outweigh it entirely.
const POOLED_BASE_STRENGTH: f64 = 10.0;

fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-9, 1.0 - 1e-9);
    (p / (1.0 - p)).ln()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Normalises `log_weights` into probabilities in place (log-sum-exp) and returns the log normaliser.
fn softmax_in_place(values: &mut [f64]) -> f64 {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        let uniform = 1.0 / values.len().max(1) as f64;
        values.iter_mut().for_each(|v| *v = uniform);
        return 0.0;
    }
    let mut sum = 0.0;
    for v in values.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in values.iter_mut() {
        *v /= sum;
    }
    max + sum.ln()
}

/// The worker model of one EM iteration: `pi[w][true][answered]` (probabilities).
pub(crate) struct WorkerModel {
    pi: Vec<f64>,
    /// The clamped probabilities stored answer-major (`[w][answered][true]`), because the E-step reads
    /// one answer's row for all true classes; it multiplies these instead of summing logs, which saves
    /// `K` exponentials per item and epoch.
    pi_by_answer: Vec<f64>,
    /// Each worker's prior row per true class (`[w][true][answered]`): the pooled matrix shifted by the
    /// worker's skill, which their own counts are smoothed towards. The calibration reads it.
    prior_rows: Vec<f64>,
}

impl WorkerModel {
    fn new(n_workers: usize, k: usize) -> Self {
        Self {
            prior_rows: vec![0.0; n_workers * k * k],
            pi: vec![0.0; n_workers * k * k],
            pi_by_answer: vec![0.0; n_workers * k * k],
        }
    }

    fn refresh_by_answer(&mut self, n_workers: usize, k: usize) {
        for w in 0..n_workers {
            let base = w * k * k;
            for t in 0..k {
                for a in 0..k {
                    let p = self.pi[base + t * k + a].max(MIN_PROBABILITY);
                    self.pi_by_answer[base + a * k + t] = p;
                }
            }
        }
    }
}

/// The hierarchical M-step: every worker's confusion matrix is shrunk towards a prior row built from the
/// pooled (all-worker) confusion matrix, shifted by the worker's own overall skill. The skill itself is
/// shrunk towards the pooled accuracy. Workers with little evidence thus inherit the crowd's error
/// structure and an accuracy near the crowd's, while workers with hundreds of answers get their own
/// full matrix (which is what gives Dawid-Skene its edge on dense sets such as Bluebirds).
fn fit_worker_model(
    votes: &Votes,
    total_counts: &[f64],
    config: &ClassificationConfig,
    model: &mut WorkerModel,
) {
    let k = votes.n_classes;
    let n_workers = votes.n_workers;
    // Pooled matrix, with a weak one-coin base so that an empty batch still yields a sane matrix.
    let mut pooled = vec![0.0; k * k];
    let off_base = (1.0 - config.initial_accuracy) / (k as f64 - 1.0);
    for t in 0..k {
        for a in 0..k {
            pooled[t * k + a] = POOLED_BASE_STRENGTH
                * if t == a {
                    config.initial_accuracy
                } else {
                    off_base
                };
        }
    }
    for w in 0..n_workers {
        let base = w * k * k;
        for (p, c) in pooled.iter_mut().zip(&total_counts[base..base + k * k]) {
            *p += c;
        }
    }
    let pooled_total: f64 = pooled.iter().sum();
    let pooled_correct: f64 = (0..k).map(|t| pooled[t * k + t]).sum();
    let pooled_accuracy = pooled_correct / pooled_total;
    for t in 0..k {
        let row = &mut pooled[t * k..(t + 1) * k];
        let sum: f64 = row.iter().sum();
        row.iter_mut().for_each(|p| *p /= sum);
    }
    let pooled_logit = logit(pooled_accuracy);

    let mut prior_row = vec![0.0; k];
    for w in 0..n_workers {
        let base = w * k * k;
        let counts = &total_counts[base..base + k * k];
        let n_answers: f64 = counts.iter().sum();
        let correct: f64 = (0..k).map(|t| counts[t * k + t]).sum();
        let skill = (correct + config.skill_prior_strength * pooled_accuracy)
            / (n_answers + config.skill_prior_strength);
        let skill_shift = logit(skill) - pooled_logit;
        for t in 0..k {
            let pooled_row = &pooled[t * k..(t + 1) * k];
            if config.symmetric_prior_rows {
                // One coin: the worker's skill on the diagonal, the rest spread evenly.
                for (a, p) in prior_row.iter_mut().enumerate() {
                    *p = if a == t {
                        skill
                    } else {
                        (1.0 - skill) / (k as f64 - 1.0)
                    };
                }
                model.prior_rows[base + t * k..base + (t + 1) * k].copy_from_slice(&prior_row);
                continue;
            }
            let diagonal = sigmoid(logit(pooled_row[t]) + skill_shift);
            let pooled_off = 1.0 - pooled_row[t];
            for a in 0..k {
                prior_row[a] = if a == t {
                    diagonal
                } else if pooled_off > 1e-12 {
                    (1.0 - diagonal) * pooled_row[a] / pooled_off
                } else {
                    (1.0 - diagonal) / (k as f64 - 1.0)
                };
            }
            model.prior_rows[base + t * k..base + (t + 1) * k].copy_from_slice(&prior_row);
        }
    }
    // How far a worker's own answers may pull their rows from the prior row: fixed, or the strength that
    // best predicts each answer from the worker's other answers (empirical Bayes on the hierarchy).
    let strength = if config.cross_validated_confusion {
        calibration::cross_validated_strength(total_counts, &model.prior_rows, k)
    } else {
        config.confusion_prior_strength
    };
    for w in 0..n_workers {
        let base = w * k * k;
        let counts = &total_counts[base..base + k * k];
        let n_answers: f64 = counts.iter().sum();
        let own_matrix = n_answers >= config.min_answers_for_own_matrix as f64;
        for t in 0..k {
            let row_counts = &counts[t * k..(t + 1) * k];
            let row_total: f64 = row_counts.iter().sum();
            let cells = base + t * k..base + (t + 1) * k;
            for ((pi, &prior), &count) in model.pi[cells.clone()]
                .iter_mut()
                .zip(&model.prior_rows[cells])
                .zip(row_counts)
            {
                *pi = if own_matrix {
                    (count + strength * prior) / (row_total + strength)
                } else {
                    prior
                };
            }
        }
    }
    model.refresh_by_answer(n_workers, k);
}

/// Accumulates this batch's soft confusion counts from a finished posterior (majority vote's). An item
/// with a single vote says nothing about its worker (the worker only agrees with themself) and is skipped.
fn accumulate_counts(votes: &Votes, posterior: &[f64], counts: &mut [f64]) {
    let k = votes.n_classes;
    counts.iter_mut().for_each(|c| *c = 0.0);
    for item in 0..votes.n_items() {
        let range = votes.range(item);
        if range.len() < 2 {
            continue;
        }
        let post = &posterior[item * k..(item + 1) * k];
        for v in range {
            let w = votes.worker[v] as usize;
            let a = votes.answer[v] as usize;
            for (t, p) in post.iter().enumerate() {
                counts[(w * k + t) * k + a] += p;
            }
        }
    }
}

/// One fused pass over the votes: the E-step (posteriors of every item under `model`, returning the total
/// log-likelihood), and with it this batch's soft confusion counts and the posterior mass per class (for
/// the class prior). Reading each item once keeps the loop in cache. Items with a single vote teach
/// nothing about their worker and are not counted. With `leave_one_out`, a vote is credited with the
/// posterior computed *without* it, so that a worker's own answer does not vouch for them: with 3 workers
/// per item the plain posterior inflates every worker's accuracy and, with it, the confidence.
///
/// This is where EM spends its time (one pass per epoch over every vote), so the body is compiled once
/// per common class count: with `k` a constant the per-class loops unroll and vectorise, which halves
/// the pass for 2–4 classes. Other class counts share the generic copy.
#[allow(clippy::too_many_arguments)]
fn expect_and_count(
    votes: &Votes,
    model: &WorkerModel,
    log_class_prior: &[f64],
    leave_one_out: bool,
    posterior: &mut [f64],
    counts: &mut [f64],
    counts_by_answer: &mut [f64],
    class_mass: &mut [f64],
) -> f64 {
    let pass = |k: usize, posterior: &mut [f64], counts: &mut [f64], mass: &mut [f64]| {
        expect_and_count_k(
            k,
            votes,
            model,
            log_class_prior,
            leave_one_out,
            posterior,
            counts,
            mass,
        )
    };
    let log_likelihood = match votes.n_classes {
        2 => pass(2, posterior, counts_by_answer, class_mass),
        3 => pass(3, posterior, counts_by_answer, class_mass),
        4 => pass(4, posterior, counts_by_answer, class_mass),
        k => pass(k, posterior, counts_by_answer, class_mass),
    };
    // The pass accumulates answer-major (one contiguous row per vote); the M-step and the recorded
    // worker statistics read `[worker][true][answered]`.
    let k = votes.n_classes;
    for (cell, by_answer) in counts
        .chunks_exact_mut(k * k)
        .zip(counts_by_answer.chunks_exact(k * k))
    {
        for t in 0..k {
            for a in 0..k {
                cell[t * k + a] = by_answer[a * k + t];
            }
        }
    }
    log_likelihood
}

/// The body of [`expect_and_count`], inlined into each of its call sites so that `k` is a constant.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn expect_and_count_k(
    k: usize,
    votes: &Votes,
    model: &WorkerModel,
    log_class_prior: &[f64],
    leave_one_out: bool,
    posterior: &mut [f64],
    counts_by_answer: &mut [f64],
    class_mass: &mut [f64],
) -> f64 {
    counts_by_answer.iter_mut().for_each(|c| *c = 0.0);
    class_mass.iter_mut().for_each(|m| *m = 0.0);
    let mut weights = vec![0.0; k];
    let mut log_likelihood = 0.0;
    let mut likelihood_product = 1.0f64;
    let pi = &model.pi_by_answer;
    // The class prior as probabilities, once per pass.
    let class_prior: Vec<f64> = log_class_prior.iter().map(|lp| lp.exp()).collect();
    for (item, row) in posterior.chunks_exact_mut(k).enumerate() {
        let (start, end) = (votes.offsets[item], votes.offsets[item + 1]);
        let workers = &votes.worker[start..end];
        let answers = &votes.answer[start..end];
        // Products of probabilities (each ≥ MIN_PROBABILITY), rescaled whenever they get small, so that
        // an item with hundreds of votes never underflows; `log_scale` keeps the likelihood exact.
        row.copy_from_slice(&class_prior);
        let mut log_scale = 0.0;
        if workers.len() <= VOTES_WITHOUT_RESCALE {
            for (&w, &a) in workers.iter().zip(answers) {
                let base = (w as usize * k + a as usize) * k;
                for (r, p) in row.iter_mut().zip(&pi[base..base + k]) {
                    *r *= p;
                }
            }
        } else {
            for (&w, &a) in workers.iter().zip(answers) {
                let base = (w as usize * k + a as usize) * k;
                let mut max = 0.0f64;
                for (r, p) in row.iter_mut().zip(&pi[base..base + k]) {
                    *r *= p;
                    max = max.max(*r);
                }
                if max < RESCALE_BELOW {
                    row.iter_mut().for_each(|r| *r *= RESCALE_BY);
                    log_scale -= RESCALE_BY.ln();
                }
            }
        }
        let sum: f64 = row.iter().sum();
        let normaliser = if sum > 0.0 && sum.is_finite() {
            row.iter_mut().for_each(|r| *r /= sum);
            sum
        } else {
            let uniform = 1.0 / k as f64;
            row.iter_mut().for_each(|r| *r = uniform);
            1.0
        };
        if workers.is_empty() {
            continue;
        }
        // The log-likelihood is a sum of one log per item; multiplying the normalisers and taking the
        // log only when the product nears the ends of the f64 range saves most of those logarithms.
        likelihood_product *= normaliser;
        log_likelihood += log_scale;
        if !(1e-250..=1e250).contains(&likelihood_product) {
            log_likelihood += likelihood_product.ln();
            likelihood_product = 1.0;
        }
        for (m, p) in class_mass.iter_mut().zip(row.iter()) {
            *m += p;
        }
        if workers.len() < 2 {
            continue;
        }
        for (&w, &a) in workers.iter().zip(answers) {
            let base = (w as usize * k + a as usize) * k;
            let cell = &mut counts_by_answer[base..base + k];
            if leave_one_out {
                let mut sum = 0.0;
                for ((x, p), q) in weights.iter_mut().zip(row.iter()).zip(&pi[base..base + k]) {
                    *x = p / q;
                    sum += *x;
                }
                if sum > 0.0 && sum.is_finite() {
                    for (c, x) in cell.iter_mut().zip(&weights) {
                        *c += x / sum;
                    }
                    continue;
                }
            }
            for (c, p) in cell.iter_mut().zip(row.iter()) {
                *c += p;
            }
        }
    }
    log_likelihood + likelihood_product.ln()
}

/// Dawid-Skene EM with hierarchical smoothing. `prior_counts` (`W × K × K`) are the workers' soft counts
/// from earlier batches; they are added to this batch's counts in every M-step and seed the first one.
/// With [`ClassificationConfig::select_structure`], the batch is first fitted both ways, with and
/// without the workers' own matrices, on folds of its answers ([`structure_evidence`]); with the
/// evidence of the job's earlier batches (`prior_structure`) added, one-coin workers are fitted when
/// they predict the held-out answers clearly better. The batch's own evidence is returned for the
/// worker-quality document.
pub(crate) fn dawid_skene(
    votes: &Votes,
    prior_counts: &[f64],
    prior_structure: StructureEvidence,
    config: &ClassificationConfig,
) -> EmOutput {
    if !config.select_structure {
        return fit_dawid_skene(votes, prior_counts, config);
    }
    let structure = if prior_structure.is_decisive() {
        StructureEvidence::default()
    } else {
        structure_evidence(votes, prior_counts, prior_structure, config)
    };
    let mut job = prior_structure;
    job.add(&structure);
    let one_coin = job.favours_one_coin();
    let mut output = if one_coin {
        fit_dawid_skene(votes, prior_counts, &with_one_coin_workers(config))
    } else {
        fit_dawid_skene(votes, prior_counts, config)
    };
    output.structure = structure;
    output
}

/// `config` with every worker held at their prior row (one coin): no worker counts as having enough
/// answers for a matrix of their own.
fn with_one_coin_workers(config: &ClassificationConfig) -> ClassificationConfig {
    ClassificationConfig {
        min_answers_for_own_matrix: usize::MAX,
        ..config.clone()
    }
}

/// Whether `config` is one made by [`with_one_coin_workers`].
fn has_one_coin_workers(config: &ClassificationConfig) -> bool {
    config.min_answers_for_own_matrix == usize::MAX
}

/// Folds of the structure choice: every answer is left out of exactly one of them.
const STRUCTURE_FOLDS: u64 = 5;

/// A fixed scramble of `(item, worker)` that spreads the answers over the folds evenly and the same way
/// on every run (splitmix64's finaliser).
fn fold_of(item: usize, worker: u32) -> u64 {
    let mut z = ((item as u64) << 32 ^ u64::from(worker)).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) % STRUCTURE_FOLDS
}

/// How well each structure, the workers' own matrices and one-coin workers (every worker their prior
/// row), predicts answers held out of its fit. For each of [`STRUCTURE_FOLDS`] folds, both are fitted
/// on the other answers, and each left-out answer scores the posterior probability its item gets, from
/// the remaining answers, for the class that answer gave. A worker better than chance gives the true
/// class more often than any other, so the structure whose posteriors put more mass on the held-out
/// answers is the one closer to the truth, judged on answers neither fit saw. The squared per-answer
/// differences give the paired comparison its standard error.
///
/// Folds stop early once the job's evidence (`prior_structure` and this batch's so far) is decisive
/// either way: on a 500,000-answer job one fold settles it, and the other four would cost eight fits.
fn structure_evidence(
    votes: &Votes,
    prior_counts: &[f64],
    prior_structure: StructureEvidence,
    config: &ClassificationConfig,
) -> StructureEvidence {
    let fold_config = ClassificationConfig {
        select_structure: false,
        calibrate: false,
        ..config.clone()
    };
    let one_coin_config = with_one_coin_workers(&fold_config);
    let k = votes.n_classes;
    let mut evidence = StructureEvidence::default();
    let mut training = Votes {
        n_classes: k,
        n_workers: votes.n_workers,
        offsets: Vec::with_capacity(votes.offsets.len()),
        worker: Vec::with_capacity(votes.worker.len()),
        answer: Vec::with_capacity(votes.answer.len()),
    };
    let mut held: Vec<(usize, u32)> = Vec::new();
    for fold in 0..STRUCTURE_FOLDS {
        training.offsets.clear();
        training.worker.clear();
        training.answer.clear();
        training.offsets.push(0);
        held.clear();
        for item in 0..votes.n_items() {
            let start = training.worker.len();
            let held_start = held.len();
            for v in votes.range(item) {
                let (w, a) = (votes.worker[v], votes.answer[v]);
                if fold_of(item, w) == fold {
                    held.push((item, a));
                } else {
                    training.worker.push(w);
                    training.answer.push(a);
                }
            }
            if training.worker.len() == start {
                // Nothing left to predict this item's answers from.
                held.truncate(held_start);
            }
            training.offsets.push(training.worker.len());
        }
        if held.is_empty() {
            continue;
        }
        // The two fits are independent: on a machine with a second core they run side by side.
        let (own_fit, one_coin_fit) = std::thread::scope(|scope| {
            let one_coin =
                scope.spawn(|| fit_dawid_skene(&training, prior_counts, &one_coin_config));
            let own = fit_dawid_skene(&training, prior_counts, &fold_config);
            let one_coin = one_coin
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (own, one_coin)
        });
        for &(item, answer) in &held {
            let cell = item * k + answer as usize;
            let (a, b) = (own_fit.posterior[cell], one_coin_fit.posterior[cell]);
            evidence.own_matrices += a;
            evidence.one_coin += b;
            evidence.squared_differences += (a - b) * (a - b);
        }
        let mut job = prior_structure;
        job.add(&evidence);
        if job.is_decisive() {
            break;
        }
    }
    evidence
}

fn fit_dawid_skene(votes: &Votes, prior_counts: &[f64], config: &ClassificationConfig) -> EmOutput {
    let k = votes.n_classes;
    let n = votes.n_items();
    let n_workers = votes.n_workers;
    let mut model = WorkerModel::new(n_workers, k);
    let mut posterior = vec![1.0 / k as f64; n * k];
    let mut batch_counts = vec![0.0; n_workers * k * k];
    let mut counts_by_answer = vec![0.0; n_workers * k * k];
    let mut total_counts = prior_counts.to_vec();
    let mut class_mass = vec![0.0; k];

    // Initial model: every worker at the prior accuracy (0.7 on the diagonal) unless earlier batches say
    // otherwise; the first E-step is then a (prior-weighted) vote.
    fit_worker_model(votes, &total_counts, config, &mut model);
    let mut log_class_prior = vec![-(k as f64).ln(); k];
    let mut previous_ll: Option<f64> = None;
    let epochs = config.max_epochs.max(1);
    for epoch in 0..epochs {
        // E-step, with the counts of the next M-step (the recorded counts come from the untempered
        // posterior, the one EM converged to; tempering is about what to report, not about how good the
        // workers are).
        let ll = expect_and_count(
            votes,
            &model,
            &log_class_prior,
            config.leave_one_out,
            &mut posterior,
            &mut batch_counts,
            &mut counts_by_answer,
            &mut class_mass,
        );
        let converged = previous_ll
            .is_some_and(|prev| ((ll - prev) / prev.abs().max(1e-300)).abs() < config.tolerance);
        if converged || epoch + 1 == epochs {
            break;
        }
        previous_ll = Some(ll);
        // M-step.
        add_counts(&mut total_counts, prior_counts, &batch_counts);
        fit_worker_model(votes, &total_counts, config, &mut model);
        let strength = config.class_prior_strength;
        let total: f64 = class_mass.iter().map(|m| m + strength).sum();
        for (lp, m) in log_class_prior.iter_mut().zip(&class_mass) {
            *lp = ((m + strength) / total).max(MIN_PROBABILITY).ln();
        }
    }
    let mut labels = None;
    let one_coin = has_one_coin_workers(config);
    if config.calibrate {
        // The label is EM's; the confidence comes from posteriors scored with each item held out of the
        // worker model (module docs of `calibration`). First pass: held out of the EM's own counts.
        let fitted = calibration::FittedModel {
            prior_rows: &model.prior_rows,
            log_class_prior: &log_class_prior,
            total_counts: &total_counts,
            one_coin,
        };
        let strength = fitted.row_strength(k);
        let mut held = vec![0.0; posterior.len()];
        calibration::held_out_posterior(votes, &fitted, strength, &posterior, &mut held);
        // One refit: the counts rebuilt from the held-out posteriors, so that no item's own votes vouch
        // for the workers through its label.
        let mut held_counts = counts_by_answer;
        accumulate_counts(votes, &held, &mut held_counts);
        add_counts(&mut total_counts, prior_counts, &held_counts);
        fit_worker_model(votes, &total_counts, config, &mut model);
        let refitted = calibration::FittedModel {
            prior_rows: &model.prior_rows,
            log_class_prior: &log_class_prior,
            total_counts: &total_counts,
            one_coin,
        };
        labels = Some(
            posterior
                .chunks_exact(k)
                .map(|row| {
                    super::argmax_with_ties(row)
                        .and_then(|l| u32::try_from(l).ok())
                        .unwrap_or(u32::MAX)
                })
                .collect(),
        );
        calibration::calibrate(votes, &refitted, &held, &mut posterior);
    }
    EmOutput {
        posterior,
        batch_counts,
        labels,
        structure: StructureEvidence::default(),
    }
}

/// `total = prior + batch`, cell by cell: the counts a worker model is fitted on.
fn add_counts(total: &mut [f64], prior: &[f64], batch: &[f64]) {
    for ((total, prior), batch) in total.iter_mut().zip(prior).zip(batch) {
        *total = prior + batch;
    }
}

/// Majority vote, with a calibrated confidence: every worker is modelled by one pooled symmetric accuracy,
/// estimated by how often a vote agrees with the plurality of the *other* votes on its item. With a
/// uniform class prior the posterior's argmax is exactly the plurality.
pub(crate) fn majority_vote(votes: &Votes, config: &ClassificationConfig) -> EmOutput {
    let k = votes.n_classes;
    let n = votes.n_items();
    let mut tally = vec![0usize; k];
    let mut agreed = 0.0;
    let mut judged = 0.0;
    for item in 0..n {
        let range = votes.range(item);
        if range.len() < 2 {
            continue;
        }
        tally.iter_mut().for_each(|t| *t = 0);
        for v in range.clone() {
            tally[votes.answer[v] as usize] += 1;
        }
        for v in range {
            let own = votes.answer[v] as usize;
            tally[own] -= 1;
            let best = tally.iter().copied().max().unwrap_or(0);
            let winners = tally.iter().filter(|&&t| t == best).count();
            if best > 0 {
                // A tie among the others counts as a fractional agreement.
                if tally[own] == best {
                    agreed += 1.0 / winners as f64;
                }
                judged += 1.0;
            }
            tally[own] += 1;
        }
    }
    let accuracy = ((agreed + config.skill_prior_strength * config.initial_accuracy)
        / (judged + config.skill_prior_strength))
        .clamp(1.0 / k as f64 + 1e-6, 1.0 - 1e-6);
    let log_agree = accuracy.ln();
    let log_disagree = ((1.0 - accuracy) / (k as f64 - 1.0))
        .max(MIN_PROBABILITY)
        .ln();
    let mut posterior = vec![0.0; n * k];
    for item in 0..n {
        let row = &mut posterior[item * k..(item + 1) * k];
        for v in votes.range(item) {
            let a = votes.answer[v] as usize;
            for (t, r) in row.iter_mut().enumerate() {
                *r += if t == a { log_agree } else { log_disagree };
            }
        }
        softmax_in_place(row);
    }
    let mut batch_counts = vec![0.0; votes.n_workers * k * k];
    accumulate_counts(votes, &posterior, &mut batch_counts);
    EmOutput {
        posterior,
        batch_counts,
        labels: None,
        structure: StructureEvidence::default(),
    }
}
