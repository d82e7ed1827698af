//! What the three geometry consolidators ([`boxes`](super::boxes), [`segmentation`](super::segmentation)
//! and [`spans`](super::spans)) share: the worker answer they are handed (read into each engine's typed
//! input by `geometry_results`, the drivers' one loop), how a worker's learned reliability turns into a
//! vote weight, the records they hand back (skipped answers, per-worker agreement), and a few numeric
//! helpers.
//!
//! The three engines re-export the types their callers need, so callers never have to name this path.
//!
//! ## Weights
//! A worker's reliability `p` (the learned probability that the worker is right; `None` = unknown) becomes
//! the log-odds `ln(p / (1 - p))`, the weight that is optimal for independent votes under the one-coin model.
//! `p` is clamped to [0.55, 0.95] first, so that no single worker can outvote a whole crowd and a
//! below-chance worker still counts a little instead of voting backwards. The weight is divided by the
//! log-odds of the neutral reliability, so a worker of unknown quality weighs exactly 1.0 and plain
//! majority voting is what happens when nothing has been learned yet.

use super::driver::{ObjectResult, Prepared, Skipped};
use super::reading::{Read, ReadJson};
use super::worker_quality::{WorkerPriors, WorkerStats};
use crate::TaskType;
use crate::output::LabelBody;
use serde::Serialize;
use serde_json::Value;

/// Reliability assumed for a worker nothing is known about: the prior accuracy AWS's own Dawid-Skene
/// consolidation starts from (`contracts.md` §5).
pub const NEUTRAL_RELIABILITY: f64 = 0.7;

/// Reliabilities are clamped into this range before they become weights (see the module docs).
pub const RELIABILITY_RANGE: (f64, f64) = (0.55, 0.95);

/// Most drop reasons recorded per worker; the rest are summed up in one last entry, so that a worker who
/// sends thousands of broken items cannot bloat the output manifest.
pub const MAX_REASONS_PER_WORKER: usize = 10;

/// One worker's answer to one data object, as an engine's driver hands it over: the worker's element output
/// taken out of `annotationData.content` (`{"<element name>": <output>}`), read into the engine's typed
/// input `A` ([`BoxOutput`](super::boxes::BoxOutput), [`EntityOutput`](super::spans::EntityOutput),
/// [`SegmentationOutput`](super::segmentation::SegmentationOutput): the answer, or why it is unusable).
#[derive(Debug, Clone)]
pub struct WorkerAnswer<'a, A> {
    /// The worker's id (`private.us-west-2.…`).
    pub worker_id: &'a str,
    /// The output, as read.
    pub answer: A,
    /// Learned probability that this worker is right; `None` when unknown.
    pub reliability: Option<f64>,
}

impl<'a, A> WorkerAnswer<'a, A> {
    /// An answer from a worker of unknown reliability.
    pub fn new(worker_id: &'a str, answer: A) -> Self {
        Self {
            worker_id,
            answer,
            reliability: None,
        }
    }

    /// The same answer with a learned reliability.
    pub fn with_reliability(self, reliability: Option<f64>) -> Self {
        Self {
            reliability,
            ..self
        }
    }
}

/// How well one worker agreed with the consolidated label of one object, to learn worker quality across
/// batches: `agreed` out of `total` (fractions allowed). Only produced when at least two workers answered,
/// because a lone worker trivially agrees with itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct WorkerAgreement {
    /// The worker's id.
    pub worker_id: String,
    /// How much of the worker's answer the consolidated label confirmed.
    pub agreed: f64,
    /// How much there was to agree on.
    pub total: f64,
}

/// A worker answer, or one item of it (a box, an entity), left out of consolidation, and why. Serialises as
/// `{"worker-id": …, "item": …, "reason": …}` so that the caller can put a `dropped` list in the metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Dropped {
    /// The worker's id.
    pub worker_id: String,
    /// Position of the item in the worker's list; `None` when the whole answer was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<usize>,
    /// Human-readable reason.
    pub reason: String,
}

impl Dropped {
    /// The whole answer of `worker_id` was skipped.
    pub fn worker(worker_id: &str, reason: impl ToString) -> Self {
        Self {
            worker_id: worker_id.to_owned(),
            item: None,
            reason: reason.to_string(),
        }
    }

    /// Item `item` of `worker_id`'s answer was left out.
    pub fn item(worker_id: &str, item: usize, reason: impl ToString) -> Self {
        Self {
            worker_id: worker_id.to_owned(),
            item: Some(item),
            reason: reason.to_string(),
        }
    }
}

/// The readable answers among the first `max_workers`, paired with their worker, in order: answers past
/// the cap and unreadable ones are recorded in `dropped` (`too_many` and the reading error say why). The
/// first step of every geometry engine.
pub fn usable_answers<'w, 'a, A, E, R>(
    workers: &'w [WorkerAnswer<'a, Result<A, E>>],
    max_workers: usize,
    too_many: impl Fn(usize) -> R,
    dropped: &mut Vec<Dropped>,
) -> Vec<(&'w WorkerAnswer<'a, Result<A, E>>, &'w A)>
where
    R: ToString,
    E: Clone + Into<R>,
{
    let mut usable = Vec::with_capacity(workers.len().min(max_workers));
    for (position, worker) in workers.iter().enumerate() {
        if position >= max_workers {
            dropped.push(Dropped::worker(worker.worker_id, too_many(max_workers)));
            continue;
        }
        match &worker.answer {
            Ok(answer) => usable.push((worker, answer)),
            Err(error) => dropped.push(Dropped::worker(worker.worker_id, error.clone().into())),
        }
    }
    usable
}

/// No worker gave a usable answer, so the object gets no label (rather than an empty one that would claim
/// "nothing here").
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("no usable worker answer ({} answers or items dropped)", dropped.len())]
pub struct NoUsableAnswer {
    /// Why each answer was skipped.
    pub dropped: Vec<Dropped>,
}

/// Collects per-item drop reasons for one worker, keeping at most [`MAX_REASONS_PER_WORKER`] and counting
/// the rest.
#[derive(Debug)]
pub(crate) struct ReasonLog<'a> {
    worker_id: &'a str,
    kept: usize,
    suppressed: usize,
}

impl<'a> ReasonLog<'a> {
    pub(crate) fn new(worker_id: &'a str) -> Self {
        Self {
            worker_id,
            kept: 0,
            suppressed: 0,
        }
    }

    pub(crate) fn push(&mut self, out: &mut Vec<Dropped>, item: usize, reason: impl ToString) {
        if self.kept < MAX_REASONS_PER_WORKER {
            out.push(Dropped::item(self.worker_id, item, reason));
            self.kept += 1;
        } else {
            self.suppressed += 1;
        }
    }

    pub(crate) fn finish(self, out: &mut Vec<Dropped>) {
        if self.suppressed > 0 {
            out.push(Dropped::worker(
                self.worker_id,
                format!(
                    "{} more items dropped (reasons not listed)",
                    self.suppressed
                ),
            ));
        }
    }
}

/// The reliability actually used for a worker: the learned one if it is a probability, else `neutral`,
/// clamped into [`RELIABILITY_RANGE`].
pub fn effective_reliability(reliability: Option<f64>, neutral: f64) -> f64 {
    let neutral = if neutral.is_finite() {
        neutral
    } else {
        NEUTRAL_RELIABILITY
    };
    reliability
        .filter(|p| p.is_finite())
        .unwrap_or(neutral)
        .clamp(RELIABILITY_RANGE.0, RELIABILITY_RANGE.1)
}

/// Log-odds `ln(p / (1 - p))`.
pub(crate) fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

/// The logistic function, inverse of [`logit`].
pub(crate) fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// A worker's vote weight: its log-odds relative to the neutral worker's (see the module docs). Always in
/// about [0.24, 3.5] and exactly 1.0 for an unknown worker.
pub fn vote_weight(reliability: Option<f64>, neutral: f64) -> f64 {
    logit(effective_reliability(reliability, neutral)) / logit(effective_reliability(None, neutral))
}

/// Probability that an item (a box, an entity) some workers drew is really there, from who drew it: each
/// worker who drew it adds `weight · ln(recall / false_alarm)` to the log-odds, each who did not adds
/// `weight · ln((1 - recall) / (1 - false_alarm))`, from even prior odds. `total_weight` is the weight of
/// all usable workers, `member_weight` of those who drew it.
pub(crate) fn existence_probability(
    total_weight: f64,
    member_weight: f64,
    recall: f64,
    false_alarm: f64,
) -> f64 {
    let recall = if recall.is_finite() {
        recall.clamp(0.01, 0.99)
    } else {
        0.85
    };
    let false_alarm = if false_alarm.is_finite() {
        false_alarm.clamp(0.001, recall)
    } else {
        0.05
    };
    let drew = (recall / false_alarm).ln();
    let did_not_draw = ((1.0 - recall) / (1.0 - false_alarm)).ln();
    let absent = (total_weight - member_weight).max(0.0);
    sigmoid(member_weight * drew + absent * did_not_draw)
}

/// Posterior probability that `chosen` is the true value of a categorical question, given weighted votes
/// `(value, weight)`, under the one-coin model: a worker names the true value with probability `accuracy`
/// and each of the other `options - 1` values with equal probability. Values nobody voted for keep their
/// prior share, so two lone dissenting votes among many options do not make the winner look certain.
pub(crate) fn vote_posterior<T: PartialEq + Copy>(
    votes: impl Iterator<Item = (T, f64)>,
    chosen: T,
    accuracy: f64,
    options: usize,
) -> f64 {
    let options = options.max(2);
    let accuracy = if accuracy.is_finite() {
        accuracy.clamp(1.0 / options as f64 + 1e-6, 0.999)
    } else {
        0.8
    };
    let step = (accuracy / ((1.0 - accuracy) / (options - 1) as f64)).ln();
    // Weight per distinct value; a handful of workers fits the stack.
    let mut stack: [Option<(T, f64)>; 16] = [None; 16];
    let mut heap: Vec<(T, f64)> = Vec::new();
    let mut distinct = 0usize;
    for (value, weight) in votes {
        if let Some(entry) = stack[..distinct.min(16)]
            .iter_mut()
            .flatten()
            .find(|(seen, _)| *seen == value)
        {
            entry.1 += weight;
        } else if let Some(entry) = heap.iter_mut().find(|(seen, _)| *seen == value) {
            entry.1 += weight;
        } else if distinct < 16 {
            stack[distinct] = Some((value, weight));
            distinct += 1;
        } else {
            heap.push((value, weight));
        }
    }
    let tallies = || stack.iter().flatten().chain(heap.iter());
    let chosen_weight = tallies()
        .find(|(value, _)| *value == chosen)
        .map_or(0.0, |t| t.1);
    let top = tallies().map(|t| t.1).fold(0.0, f64::max) * step;
    let unvoted = options.saturating_sub(distinct + heap.len()) as f64;
    let normaliser: f64 =
        tallies().map(|t| (t.1 * step - top).exp()).sum::<f64>() + unvoted * (-top).exp();
    let posterior = (chosen_weight * step - top).exp() / normaliser;
    if posterior.is_finite() {
        posterior
    } else {
        0.0
    }
}

/// Confidence as Ground Truth writes it (one rounding for every engine).
pub(crate) use crate::metadata::round_confidence;

/// Weighted median of `(value, weight)` pairs (weights > 0); reorders the slice. When the cumulative weight
/// lands exactly on one half between two values, their midpoint is returned, so two equal votes average.
/// `None` for an empty slice.
pub(crate) fn weighted_median(values: &mut [(f64, f64)]) -> Option<f64> {
    values.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = values.iter().map(|v| v.1).sum();
    let half = total / 2.0;
    let mut cumulative = 0.0;
    for (i, &(value, weight)) in values.iter().enumerate() {
        cumulative += weight;
        if (cumulative - half).abs() <= 1e-9 * total.max(1.0) {
            let next = values.get(i + 1).map_or(value, |v| v.0);
            return Some((value + next) / 2.0);
        }
        if cumulative > half {
            return Some(value);
        }
    }
    values.last().map(|v| v.0)
}

/// The usable answers' element outputs for `task`, each read once from its answer's text into the
/// engine's input `A`, with the workers' reliabilities; answers without such an element are moved to
/// `skipped`.
fn element_outputs<'a, A: ReadJson<'a>>(
    p: &mut Prepared<'a>,
    task: TaskType,
    priors: &WorkerPriors,
) -> Vec<WorkerAnswer<'a, A>> {
    let mut out = Vec::with_capacity(p.usable.len());
    for u in &p.usable {
        match u
            .answer
            .element_for(task)
            .and_then(|e| u.answer.read_output::<Read<A>>(e))
        {
            Ok(Read(output)) => out.push(WorkerAnswer {
                worker_id: u.worker,
                answer: output,
                reliability: priors.reliability(u.worker),
            }),
            Err(e) => p.skipped.push(Skipped {
                worker: u.worker.to_owned(),
                reason: e.to_string(),
            }),
        }
    }
    out
}

/// `dropped`: what an engine left out, when it left anything out.
pub(crate) fn dropped_list(dropped: &[Dropped]) -> Option<Value> {
    (!dropped.is_empty()).then(|| serde_json::to_value(dropped).unwrap_or(Value::Null))
}

pub(crate) fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// What a geometry engine (boxes, spans, masks) made of one object.
pub(crate) struct GeometryLabel {
    pub(crate) body: LabelBody,
    pub(crate) confidence: f64,
    pub(crate) agreements: Vec<super::boxes::WorkerAgreement>,
}

/// Runs `consolidate` on every object's answers for `task_type`, each read into the engine's input `A`
/// (with the workers' reliabilities), records the workers' agreement and lists what was dropped. The one
/// loop behind boxes, spans and masks; an object's answers are read just before its consolidation and
/// dropped after it.
pub(crate) fn geometry_results<'a, A: ReadJson<'a>>(
    task_type: TaskType,
    prepared: &mut [Prepared<'a>],
    priors: &WorkerPriors,
    stats: &mut WorkerStats,
    mut consolidate: impl FnMut(&Prepared<'a>, &[WorkerAnswer<'a, A>]) -> Result<GeometryLabel, String>,
) -> Vec<ObjectResult> {
    prepared
        .iter_mut()
        .map(|p| {
            let workers = element_outputs::<A>(p, task_type, priors);
            match consolidate(p, &workers) {
                Ok(g) => {
                    for a in &g.agreements {
                        stats.add_agreement(&a.worker_id, a.agreed, a.total);
                    }
                    ObjectResult::Labeled {
                        body: g.body,
                        confidence: g.confidence,
                    }
                }
                Err(reason) => ObjectResult::Failed(reason),
            }
        })
        .collect()
}

pub(crate) fn no_usable_reason(dropped: &[super::boxes::Dropped]) -> String {
    let reasons: Vec<String> = dropped
        .iter()
        .filter(|d| d.item.is_none())
        .map(|d| format!("{}: {}", d.worker_id, d.reason))
        .collect();
    if reasons.is_empty() {
        "no usable answer".to_owned()
    } else {
        format!("no usable answer ({})", reasons.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_workers_weigh_one_and_weights_are_bounded() {
        assert!((vote_weight(None, NEUTRAL_RELIABILITY) - 1.0).abs() < 1e-12);
        assert!(vote_weight(Some(0.99), NEUTRAL_RELIABILITY) < 3.6);
        assert!(vote_weight(Some(0.0), NEUTRAL_RELIABILITY) > 0.2);
        assert!((vote_weight(Some(f64::NAN), NEUTRAL_RELIABILITY) - 1.0).abs() < 1e-12);
        assert!(vote_weight(None, f64::NAN).is_finite());
    }

    #[test]
    fn weighted_median_averages_an_even_split_and_resists_outliers() {
        assert_eq!(weighted_median(&mut [(10.0, 1.0), (20.0, 1.0)]), Some(15.0));
        assert_eq!(
            weighted_median(&mut [(10.0, 1.0), (11.0, 1.0), (500.0, 1.0)]),
            Some(11.0)
        );
        assert_eq!(weighted_median(&mut [(10.0, 3.0), (20.0, 1.0)]), Some(10.0));
        assert_eq!(weighted_median(&mut []), None);
    }

    #[test]
    fn vote_posteriors_grow_with_agreement() {
        let posterior = |votes: &[(u32, f64)], chosen: u32, options: usize| {
            vote_posterior(votes.iter().copied(), chosen, 0.8, options)
        };
        let unanimous = posterior(&[(1, 1.0), (1, 1.0), (1, 1.0)], 1, 4);
        let split = posterior(&[(1, 1.0), (1, 1.0), (2, 1.0)], 1, 4);
        let tie = posterior(&[(1, 1.0), (2, 1.0)], 1, 2);
        assert!(unanimous > split && split > tie);
        assert!((tie - 0.5).abs() < 1e-9);
        assert!(posterior(&[(1, 1e9)], 1, 4) > 0.99);
        assert_eq!(posterior(&[], 1, 4), 0.25);
        // More distinct values than the stack holds.
        let many: Vec<(u32, f64)> = (0..40).map(|v| (v, 1.0)).chain([(7, 1.0)]).collect();
        let spread = posterior(&many, 7, 50);
        assert!(spread > posterior(&many, 8, 50) && spread < 0.9);
    }

    #[test]
    fn confidences_have_two_decimals() {
        assert_eq!(round_confidence(0.934), 0.93);
        assert_eq!(round_confidence(f64::NAN), 0.0);
        assert_eq!(round_confidence(7.0), 1.0);
    }
}
