//! Truth inference for single- and multi-label classification: which class is each data object, and how
//! sure are we, given several workers' answers of uneven quality.
//!
//! # API
//!
//! ```text
//! pub enum Method { DawidSkene /* default */, MajorityVote }            // FromStr: "dawid-skene" | "ds" | "majority-vote" | "mv"
//! pub struct ClassificationConfig { method, max_epochs, tolerance, initial_accuracy, confusion_prior_strength,
//!                                   skill_prior_strength, class_prior_strength, min_answers_for_own_matrix,
//!                                   select_structure, leave_one_out, calibrate, max_model_cells }  // impl Default
//! pub struct SingleLabelItem<'a> { pub votes: Vec<(&'a str /* worker id */, usize /* class index */)> }
//! pub struct MultiLabelItem<'a>  { pub votes: Vec<(&'a str /* worker id */, Vec<usize> /* chosen classes */)> }
//!
//! pub fn consolidate_single_label(n_classes: usize, items: &[SingleLabelItem<'_>], priors: &WorkerPriors,
//!                                 config: &ClassificationConfig) -> SingleLabelOutcome
//!     SingleLabelOutcome { items: Vec<ItemEstimate { label: Option<usize>, confidence: f64 }>,
//!                          posteriors (outcome.posterior(i) -> &[f64]),
//!                          stats: WorkerStats }
//! pub fn consolidate_label_table(table: &LabelTable, priors: &WorkerPriors, config: &ClassificationConfig)
//!                                -> SingleLabelOutcome        // the same, on a CSV's dense indices
//! pub fn consolidate_multi_label(n_classes: usize, items: &[MultiLabelItem<'_>], priors: &WorkerPriors,
//!                                config: &ClassificationConfig) -> MultiLabelOutcome
//!     MultiLabelOutcome { items: Vec<MultiLabelEstimate { classes: Vec<usize>, confidences: Vec<f64>,
//!                                                         presence: Vec<f64> }>, stats: WorkerStats }
//!
//! // CSV and evaluation helpers (CLI, tests, benches)
//! pub fn read_labels_csv(reader: impl BufRead) -> Result<LabelTable, CsvError>      // task,worker,label
//! pub fn read_gold_csv(reader: impl BufRead) -> Result<Vec<(String, String)>, CsvError>  // task,label
//! pub fn accuracy(predicted: &[Option<usize>], gold: &[Option<usize>]) -> f64
//! pub fn expected_calibration_error(confidence: &[f64], predicted: &[Option<usize>], gold: &[Option<usize>],
//!                                   n_bins: usize) -> f64
//! pub mod synthetic   // generate(&SyntheticConfig) -> SyntheticSet, generate_multi_label(..)
//! ```
//!
//! Per-job worker quality across batches lives in [`super::worker_quality`]: pass
//! `JobWorkerQuality::prior_excluding(batch_key)` as `priors`, then `record(batch_key, outcome.stats)`.
//!
//! # The method
//!
//! [`Method::DawidSkene`] is Dawid & Skene's EM (one confusion matrix per worker, a class prior, the true
//! class as the hidden variable) in the family AWS ships as "modified Dawid-Skene": matrices start at 0.7
//! on the diagonal, the M-step is smoothed, the class prior is the mean posterior, and EM stops after
//! `max_epochs` or when the log-likelihood moves by less than `tolerance` (relative). What differs, and why:
//!
//! * **Hierarchical smoothing instead of a fixed one.** Each worker's matrix is pulled towards a prior row:
//!   by default their *one-coin* row (their overall skill on the diagonal, the rest spread evenly; the
//!   skill itself pulled towards the pooled accuracy), or, with `symmetric_prior_rows` off, the pooled
//!   matrix of all workers shifted by that skill. How hard it is pulled is chosen per job, in every
//!   M-step, as the strength that best predicts each answer from the worker's other answers
//!   (`cross_validated_confusion`). A worker with 15 answers over 10 classes cannot support a 10 × 10
//!   matrix: unregularised DS then falls below majority vote (anchors.md §1.3). With this prior such a
//!   worker gets a skill and no invented error structure, while a worker with hundreds of answers gets
//!   their own matrix where those answers support it (Bluebirds, where DS beats majority vote by 13
//!   points). The pooled asymmetric prior lent a crowd-wide asymmetry learnt by EM from its own labels to
//!   every sparse worker, which put hard and sparse crowds below the vote (`make eval` has the figures).
//! * **How much structure the job supports, decided per job** (`select_structure`). Own matrices can read
//!   a crowd wrongly even when each worker has hundreds of answers: where the workers' mistakes follow
//!   the *object* (zencrowd's crowd answers "0" for 44 % of the true "1" objects, object by object),
//!   class-conditional rows explain the answers better and the labels worse. The likelihood of held-out
//!   answers cannot see this (it prefers the own matrices on zencrowd by 0.08 nats an answer). What it
//!   can be judged by is the labels: the answers are split into five folds, both structures (the
//!   workers' own matrices and one-coin workers, every worker their prior row) are fitted on four, and
//!   every answer of the fifth scores the posterior its item gets for that answer's class. A worker
//!   better than chance gives the true class more often than any other, so the structure whose
//!   posteriors put more mass on held-out answers is closer to the truth. One-coin workers replace the
//!   own matrices only when they lead by two standard errors of the paired per-answer differences
//!   ([`STRUCTURE_EVIDENCE_SIGMAS`](super::worker_quality::STRUCTURE_EVIDENCE_SIGMAS)), since where the
//!   two tie the own matrices are what holds on the other sets. The evidence is summed over a job's
//!   batches in the worker-quality document, so a job of 50-object batches makes one choice that firms
//!   up as its answers accrue, not a noisy one per batch; and since a batch's own evidence is excluded
//!   from its prior like its counts, a redelivered batch decides as it did.
//! * **One vote per worker per object**: a worker's repeated answers on one item count once, their last.
//! * **Class prior** with `class_prior_strength` pseudo-objects per class, so that a 10- or 50-object batch
//!   cannot drift onto the class its crowd over-answers.
//! * **Fallback for workers with too few answers**: below `min_answers_for_own_matrix` counted answers a
//!   worker uses the prior row outright.
//! * **Leave-one-out M-step.** A vote is credited with the posterior computed without it, so a worker's own
//!   answer never vouches for them. With 3–5 workers per item plain DS inflates every accuracy, and with
//!   it every confidence; this is what keeps the confidence calibrated.
//! * **Items with one vote teach nothing about workers** and are left out of the counts.
//! * **Confidence** is the calibrated posterior probability of the chosen label (not rounded; the output
//!   layer rounds). An item answered by a single worker gets `0.0`, as in Ground Truth, unless the model
//!   knows that worker (from earlier batches, `priors`, or from their answers on this batch's items
//!   with other votes beside theirs), in which case their track record gives a real posterior: 0 would
//!   call a label that is right three times in four certainly wrong.
//! * **Confidence held out of the model** (`calibrate`, `calibration`). The label is EM's argmax, but
//!   EM fits the workers on the very items it scores, and on hard tasks in small batches that makes its
//!   posterior over-confident. The reported posterior scores each item
//!   with its own share taken back out of its workers' rows (smoothed with a cross-validated strength,
//!   the counts rebuilt once from such held-out posteriors). It can prefer another
//!   class than the label; the confidence is then its probability of the label.
//! * **Correlated votes** (`calibrate`, `calibration`). Dawid-Skene counts ten agreeing votes as ten
//!   independent pieces of evidence; real crowds share blind spots, and the posterior is over-confident.
//!   The votes on an item are modelled as exchangeable with an intra-item correlation `rho`, so `n` of
//!   them carry the evidence of `n / (1 + (n − 1) rho)` independent votes (the design effect): each
//!   item's log-posterior is scaled by that factor. `rho` is chosen without gold, as the value that best
//!   predicts every vote from the other votes of its item, with the item also taken out of every worker's
//!   confusion row (a vote must not vouch for the model that predicts it), and the held-out vote scored
//!   by its worker's other answers under a cross-validated smoothing strength (so that a mistake made
//!   once does not look impossible). It comes out near 0 on crowds that fit the model (synthetic) and
//!   higher on the shared real sets; the argmax never changes. A blind spot shared by the whole crowd
//!   leaves no trace in the votes for any gold-free model to see, and stays over-confident (`make eval`
//!   in the README has the figures, set by set).
//! * **Ties** are broken deterministically: the lower class index (as crowd-kit's majority vote does).
//! * **Multi-label** is binary relevance: one two-class problem per class, over the workers who answered
//!   the item (ticking a class = "present", not ticking it = "absent").
//!
//! All numeric work happens in `em` on dense worker indices and flat arrays.

pub mod audit;
mod calibration;
pub mod csv;
pub(crate) mod driver;
mod em;
pub mod eval;
pub mod synthetic;
pub mod topup;
mod votes;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::str::FromStr;

pub use self::csv::{
    CsvError, LabelRow, LabelTable, accuracy, expected_calibration_error, read_gold_csv,
    read_labels_csv,
};
use self::votes::Votes;
use super::worker_quality::{StructureEvidence, WorkerPriors, WorkerStats};

/// The truth-inference method.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Method {
    /// Smoothed Dawid-Skene EM (see the module docs).
    #[default]
    DawidSkene,
    /// Plurality vote, with a calibrated confidence from one pooled worker accuracy.
    MajorityVote,
}

/// An unknown method name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown consolidation method {0:?} (expected dawid-skene, ds, majority-vote or mv)")]
pub struct UnknownMethod(pub String);

impl FromStr for Method {
    type Err = UnknownMethod;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "dawid-skene" | "ds" => Ok(Self::DawidSkene),
            "majority-vote" | "mv" => Ok(Self::MajorityVote),
            _ => Err(UnknownMethod(s.to_owned())),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DawidSkene => "dawid-skene",
            Self::MajorityVote => "majority-vote",
        })
    }
}

/// Knobs of the consolidation. The defaults are one setting for every data set (not tuned per set).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassificationConfig {
    /// Which method.
    pub method: Method,
    /// At most this many EM iterations.
    pub max_epochs: usize,
    /// Stop when the log-likelihood changes by less than this, relatively.
    pub tolerance: f64,
    /// The diagonal every worker's matrix starts from (and the pooled matrix's weak base).
    pub initial_accuracy: f64,
    /// Pseudo-counts per confusion-matrix row pulling a worker's row towards their prior row (when not
    /// cross-validated).
    pub confusion_prior_strength: f64,
    /// Choose the confusion prior strength per job, in every M-step, as the one that best predicts each
    /// answer from the worker's other answers.
    pub cross_validated_confusion: bool,
    /// Prior rows are the worker's one-coin row (their skill on the diagonal, the rest spread evenly)
    /// instead of the pooled matrix shifted by their skill.
    pub symmetric_prior_rows: bool,
    /// Pseudo-counts pulling a worker's overall skill towards the pooled accuracy: a worker's own record
    /// outweighs the crowd's once they have answered more objects than this. Skills fitted by EM from the
    /// labels it is fitting are flattering (a worker who sided with a wrong majority is credited as
    /// right), and a light pull lets the workers with a lucky few answers outvote the rest; the pull of
    /// 20 was chosen on all ten real sets and the synthetic regimes at once (see `make eval`).
    pub skill_prior_strength: f64,
    /// Pseudo-objects per class added to the class prior (the mean posterior). A class prior learnt from
    /// a 10- or 50-object batch alone drifts onto whichever class the crowd over-answers, and the labels
    /// follow it; ten pseudo-objects per class hold a small batch, and a large batch outweighs them.
    pub class_prior_strength: f64,
    /// Workers with fewer counted answers (this batch plus earlier ones) use their prior row outright.
    pub min_answers_for_own_matrix: usize,
    /// Choose per job between the workers' own matrices and one-coin workers (every worker their prior
    /// row) by which predicts answers held out of its fit better (module docs, "How much structure").
    pub select_structure: bool,
    /// Credit each vote with the posterior computed without it (see the module docs).
    pub leave_one_out: bool,
    /// Discount correlated votes by the design effect that best predicts held-out votes (module docs).
    pub calibrate: bool,
    /// The most per-worker model cells a batch may need — workers × classes² for single-label,
    /// (objects + workers) × classes for multi-label — before the engine gives up modelling workers and
    /// answers by plain vote ([`SingleLabelOutcome::plain_vote`]). Memory and time grow with these cells:
    /// a 1 MB payload naming 9,000 distinct labels needed 12 GB as a worker model.
    pub max_model_cells: usize,
}

/// More classes than this in a multi-label batch are answered by plain vote (Ground Truth's multi-label
/// tasks offer at most 50).
pub const MAX_MULTI_LABEL_CLASSES: usize = 1_000;

/// [`ClassificationConfig::max_model_cells`] by default: 8 Mi cells (64 MB per array, about seven arrays:
/// 50 classes over 3,300 workers, or 200 classes over 200 workers, in one batch).
pub const DEFAULT_MAX_MODEL_CELLS: usize = 1 << 23;

impl Default for ClassificationConfig {
    fn default() -> Self {
        Self {
            method: Method::DawidSkene,
            max_epochs: 20,
            tolerance: 1e-5,
            initial_accuracy: 0.7,
            confusion_prior_strength: 2.0,
            cross_validated_confusion: true,
            symmetric_prior_rows: true,
            skill_prior_strength: 20.0,
            class_prior_strength: 10.0,
            min_answers_for_own_matrix: 8,
            select_structure: true,
            leave_one_out: false,
            calibrate: true,
            max_model_cells: DEFAULT_MAX_MODEL_CELLS,
        }
    }
}

/// One data object's single-label answers: `(worker id, class index)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SingleLabelItem<'a> {
    /// The workers' answers.
    pub votes: Vec<(&'a str, usize)>,
}

/// One data object's multi-label answers: `(worker id, chosen class indices)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MultiLabelItem<'a> {
    /// The workers' answers.
    pub votes: Vec<(&'a str, Vec<usize>)>,
}

/// The consolidated answer for one single-label item.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ItemEstimate {
    /// The chosen class; `None` only for an item without (valid) votes.
    pub label: Option<usize>,
    /// The posterior probability of `label`; 0 for no votes or a lone worker unknown from earlier batches.
    pub confidence: f64,
}

/// The outcome of [`consolidate_single_label`].
#[derive(Debug, Clone, PartialEq)]
pub struct SingleLabelOutcome {
    /// One estimate per input item, in input order.
    pub items: Vec<ItemEstimate>,
    /// The (calibrated) posteriors over all classes, one row of `n_classes` per item in input order (see
    /// [`Self::posterior`]); an item's label is the uncalibrated EM's argmax, which this row may not
    /// share on a contested item. One flat buffer: a batch of 100,000 items would otherwise allocate (and
    /// free) 100,000 small vectors, a visible share of its time.
    posteriors: Vec<f64>,
    n_classes: usize,
    /// What this batch taught about its workers, to be recorded in the job's worker quality.
    pub stats: WorkerStats,
    /// The batch needed more than [`ClassificationConfig::max_model_cells`]: every item was answered by
    /// plain vote (confidence = the label's share of the votes, 0 for a single vote), no posteriors, no
    /// worker statistics.
    pub plain_vote: bool,
}

impl SingleLabelOutcome {
    /// Item `i`'s posterior over all classes (sums to 1; the estimated class prior for an item without
    /// votes; empty when there are no classes or no such item).
    pub fn posterior(&self, i: usize) -> &[f64] {
        let k = self.n_classes;
        self.posteriors.get(i * k..(i + 1) * k).unwrap_or(&[])
    }
}

/// The consolidated answer for one multi-label item.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiLabelEstimate {
    /// The classes judged present, sorted.
    pub classes: Vec<usize>,
    /// For each of `classes`, the posterior probability that it is present (0 for a lone unknown worker).
    pub confidences: Vec<f64>,
    /// For every class, the posterior probability that it is present.
    pub presence: Vec<f64>,
}

/// The outcome of [`consolidate_multi_label`].
#[derive(Debug, Clone, PartialEq)]
pub struct MultiLabelOutcome {
    /// One estimate per input item, in input order.
    pub items: Vec<MultiLabelEstimate>,
    /// What this batch taught about its workers.
    pub stats: WorkerStats,
    /// As [`SingleLabelOutcome::plain_vote`]: a class is chosen when more than half of the item's
    /// workers ticked it, with its share of them as confidence; `presence` is left empty.
    pub plain_vote: bool,
}

/// Worker ids mapped to dense indices in sorted id order, so that results do not depend on the order in
/// which workers happen to appear.
struct WorkerIndex<'a> {
    names: Vec<&'a str>,
}

impl<'a> WorkerIndex<'a> {
    /// Interns every vote's worker id, returning the index and each vote's worker index in the same order
    /// as `ids`. Each id is hashed once: indices are handed out in order of first appearance, then renumbered
    /// to sorted-id order with a table lookup per vote.
    fn intern(ids: impl Iterator<Item = &'a str>) -> (Self, Vec<u32>) {
        let mut lookup: HashMap<&'a str, u32, BuildHasherDefault<FnvHasher>> = HashMap::default();
        let mut first_seen: Vec<&'a str> = Vec::new();
        let mut per_vote: Vec<u32> = Vec::with_capacity(ids.size_hint().0);
        for id in ids {
            let next = u32::try_from(first_seen.len()).unwrap_or(u32::MAX);
            let index = *lookup.entry(id).or_insert_with(|| {
                first_seen.push(id);
                next
            });
            per_vote.push(index);
        }
        let mut by_name: Vec<u32> = (0..first_seen.len())
            .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
            .collect();
        by_name.sort_unstable_by_key(|&i| first_seen[i as usize]);
        let mut rank = vec![0u32; first_seen.len()];
        for (sorted, &first) in by_name.iter().enumerate() {
            rank[first as usize] = u32::try_from(sorted).unwrap_or(u32::MAX);
        }
        per_vote.iter_mut().for_each(|w| *w = rank[*w as usize]);
        let names = by_name.iter().map(|&i| first_seen[i as usize]).collect();
        (Self { names }, per_vote)
    }
}

/// FNV-1a: a small deterministic hasher for worker ids (the map is only a lookup table; its iteration
/// order is never used for results, the ids are sorted).
#[derive(Clone, Copy)]
pub(crate) struct FnvHasher(u64);

impl Default for FnvHasher {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for FnvHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// Builds the CSR vote list in a canonical item order, and returns it with `order` (`order[position]` is
/// the input index of the item at that position). Each item keeps one vote per worker (their last), sorted
/// by worker, and the items are sorted by their vote lists, so that neither the order in which workers
/// are listed nor the order of the items can change a floating-point sum: a permuted batch gives bit-identical estimates. Items are compared by
/// a hash of their vote list first (a primitive sort key), and by the lists themselves only when hashes
/// tie, which is what identical lists do: they are interchangeable, so any order among them is canonical.
fn build_votes<I>(
    n_classes: usize,
    n_workers: usize,
    items: impl Iterator<Item = I>,
) -> (Votes, Vec<usize>)
where
    I: IntoIterator<Item = (u32, usize)>,
{
    // All valid votes in input order, flat, as (worker, answer) pairs, with per-item offsets.
    let mut flat: Vec<(u32, u32)> = Vec::new();
    let mut input_offsets: Vec<usize> = vec![0];
    let mut keys: Vec<(u64, u32)> = Vec::new();
    let mut scratch: Vec<(u32, u32)> = Vec::new();
    for item in items {
        let start = flat.len();
        scratch.clear();
        scratch.extend(item.into_iter().filter_map(|(w, a)| {
            let a = u32::try_from(a)
                .ok()
                .filter(|&a| (a as usize) < n_classes)?;
            ((w as usize) < n_workers).then_some((w, a))
        }));
        // One vote per worker: a worker who answered an item more than once counts once, with their
        // last answer in input order (as a later iteration of a Ground Truth task replaces an earlier
        // one). Reversed, a stable sort by worker puts each worker's last answer first.
        scratch.reverse();
        scratch.sort_by_key(|&(w, _)| w);
        scratch.dedup_by_key(|&mut (w, _)| w);
        flat.extend_from_slice(&scratch);
        let own = &mut flat[start..];
        let key = own.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &(w, a)| {
            (h ^ (u64::from(w) << 32 | u64::from(a))).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        });
        keys.push((key, u32::try_from(keys.len()).unwrap_or(u32::MAX)));
        input_offsets.push(flat.len());
    }
    let slice = |i: u32| &flat[input_offsets[i as usize]..input_offsets[i as usize + 1]];
    keys.sort_unstable_by(|&(ka, a), &(kb, b)| {
        ka.cmp(&kb)
            .then_with(|| slice(a).cmp(slice(b)))
            .then(a.cmp(&b))
    });
    let mut votes = Votes {
        n_classes,
        n_workers,
        offsets: Vec::with_capacity(keys.len() + 1),
        worker: Vec::with_capacity(flat.len()),
        answer: Vec::with_capacity(flat.len()),
    };
    votes.offsets.push(0);
    for &(_, item) in &keys {
        let own = slice(item);
        votes.worker.extend(own.iter().map(|&(w, _)| w));
        votes.answer.extend(own.iter().map(|&(_, a)| a));
        votes.offsets.push(votes.worker.len());
    }
    let order = keys.into_iter().map(|(_, item)| item as usize).collect();
    (votes, order)
}

/// The index of the largest value; near-ties (within rounding noise, so that the order items were
/// summed in cannot flip a label) go to the lower index.
fn argmax_with_ties(values: &[f64]) -> Option<usize> {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return None;
    }
    let tolerance = 1e-9 * max.abs();
    values.iter().position(|&v| v >= max - tolerance)
}

impl em::EmOutput {
    /// The label of the item at canonical `position`, whose posterior row is `posterior`.
    fn label(&self, position: usize, posterior: &[f64]) -> Option<usize> {
        match &self.labels {
            Some(labels) => labels
                .get(position)
                .map(|&l| l as usize)
                .filter(|&l| l < posterior.len()),
            None => argmax_with_ties(posterior),
        }
    }
}

fn run_method(
    votes: &Votes,
    prior_counts: &[f64],
    prior_structure: StructureEvidence,
    config: &ClassificationConfig,
) -> em::EmOutput {
    match config.method {
        Method::DawidSkene => em::dawid_skene(votes, prior_counts, prior_structure, config),
        Method::MajorityVote => em::majority_vote(votes, config),
    }
}

/// Per worker: does the model's row rest on answers, from earlier batches (`known`) or from this
/// batch's items with other votes (`cells` counts per worker in `batch_counts`)? A lone vote from such a
/// worker gets their record as its confidence; from any other, Ground Truth's 0.
fn informed_workers(known: &[bool], batch_counts: &[f64], cells: usize) -> Vec<bool> {
    known
        .iter()
        .enumerate()
        .map(|(w, &known)| {
            known
                || batch_counts
                    .get(w * cells..(w + 1) * cells)
                    .is_some_and(|c| c.iter().sum::<f64>() > 0.0)
        })
        .collect()
}

/// Consolidates single-label answers (see the module docs). Never panics; class indices
/// `≥ n_classes` and items without votes are tolerated (ignored / answered with `label: None`).
pub fn consolidate_single_label(
    n_classes: usize,
    items: &[SingleLabelItem<'_>],
    priors: &WorkerPriors,
    config: &ClassificationConfig,
) -> SingleLabelOutcome {
    if n_classes == 0 {
        return SingleLabelOutcome {
            items: vec![ItemEstimate::default(); items.len()],
            posteriors: Vec::new(),
            n_classes: 0,
            stats: WorkerStats::new(),
            plain_vote: false,
        };
    }
    let (workers, worker_of_vote) =
        WorkerIndex::intern(items.iter().flat_map(|i| i.votes.iter().map(|v| v.0)));
    let mut next_vote = 0;
    let dense_items = items.iter().map(|item| {
        let ids = worker_of_vote.get(next_vote..next_vote + item.votes.len());
        next_vote += item.votes.len();
        ids.unwrap_or_default()
            .iter()
            .zip(&item.votes)
            .map(|(&w, &(_, answer))| (w, answer))
    });
    consolidate_dense(
        n_classes,
        &workers.names,
        items.len(),
        dense_items,
        || plain_single_label_vote(n_classes, items),
        priors,
        config,
    )
}

/// Consolidates a [`LabelTable`] (a `task,worker,label` file): one estimate per task, in
/// [`LabelTable::tasks`] order. The same model and result as [`consolidate_single_label`] on
/// [`LabelTable::single_label_items`], without a vote list per task or hashing every worker id again:
/// the table's dense indices go straight into the engine's vote arrays.
pub fn consolidate_label_table(
    table: &LabelTable,
    priors: &WorkerPriors,
    config: &ClassificationConfig,
) -> SingleLabelOutcome {
    let n_classes = table.classes.len();
    if n_classes == 0 {
        return consolidate_single_label(0, &table.single_label_items(), priors, config);
    }
    // Workers in sorted-id order, as the engine numbers them (the table's ids are distinct).
    let mut by_name: Vec<usize> = (0..table.workers.len()).collect();
    by_name.sort_unstable_by(|&a, &b| table.workers[a].cmp(&table.workers[b]));
    let names: Vec<&str> = by_name.iter().map(|&w| table.workers[w].as_str()).collect();
    let mut rank = vec![0u32; table.workers.len()];
    for (sorted, &w) in by_name.iter().enumerate() {
        rank[w] = u32::try_from(sorted).unwrap_or(u32::MAX);
    }
    // The rows grouped by task, in file order within a task (a counting sort).
    let mut offsets = vec![0usize; table.tasks.len() + 1];
    for row in &table.rows {
        if let Some(n) = offsets.get_mut(row.task + 1) {
            *n += 1;
        }
    }
    for t in 0..table.tasks.len() {
        offsets[t + 1] += offsets[t];
    }
    let mut fill = offsets.clone();
    let mut grouped = vec![(0u32, 0usize); offsets[table.tasks.len()]];
    for row in &table.rows {
        if let (Some(at), Some(&worker)) = (fill.get_mut(row.task), rank.get(row.worker)) {
            grouped[*at] = (worker, row.class);
            *at += 1;
        }
    }
    let dense_items = offsets
        .windows(2)
        .map(|w| grouped[w[0]..w[1]].iter().copied());
    consolidate_dense(
        n_classes,
        &names,
        table.tasks.len(),
        dense_items,
        || plain_single_label_vote(n_classes, &table.single_label_items()),
        priors,
        config,
    )
}

/// The engine on dense worker indices: `worker_names[w]` is worker `w`'s id (sorted), `items` yields
/// each of the `n_items` items' `(worker, class)` votes. `plain_vote` answers a batch too large to model.
fn consolidate_dense<I>(
    n_classes: usize,
    worker_names: &[&str],
    n_items: usize,
    items: impl Iterator<Item = I>,
    plain_vote: impl FnOnce() -> SingleLabelOutcome,
    priors: &WorkerPriors,
    config: &ClassificationConfig,
) -> SingleLabelOutcome
where
    I: IntoIterator<Item = (u32, usize)>,
{
    let cells = worker_names
        .len()
        .checked_mul(n_classes)
        .and_then(|c| c.checked_mul(n_classes));
    if cells.is_none_or(|c| c > config.max_model_cells) {
        return plain_vote();
    }
    let (votes, order) = build_votes(n_classes, worker_names.len(), items);
    let k = n_classes;
    let mut prior_counts = vec![0.0; worker_names.len() * k * k];
    let mut known = vec![false; worker_names.len()];
    for (w, name) in worker_names.iter().enumerate() {
        if let Some(counts) = priors.single_label_counts(name)
            && counts.n_classes == k
            && counts.counts.len() == k * k
            && counts.counts.iter().all(|x| x.is_finite() && *x >= 0.0)
        {
            prior_counts[w * k * k..(w + 1) * k * k].copy_from_slice(&counts.counts);
            known[w] = counts.total() > 0.0;
        }
    }

    let output = if k == 1 {
        em::EmOutput {
            posterior: vec![1.0; votes.n_items()],
            batch_counts: vec![0.0; worker_names.len()],
            labels: None,
            structure: StructureEvidence::default(),
        }
    } else {
        run_method(
            &votes,
            &prior_counts,
            priors.single_label_structure(),
            config,
        )
    };

    // A lone vote's confidence is its worker's row: real when that row rests on answers (earlier batches,
    // or this batch's items with other votes beside theirs), Ground Truth's 0 when it is only the prior.
    let informed = informed_workers(&known, &output.batch_counts, k * k);
    // Estimates are made in canonical order, reading the posterior and the votes in sequence, and
    // stored at their input position: a scattered write is cheaper than a scattered read.
    let mut estimates: Vec<ItemEstimate> = vec![ItemEstimate::default(); n_items];
    let mut posteriors = vec![0.0; n_items * k];
    for (item, &input_index) in order.iter().enumerate() {
        let posterior = &output.posterior[item * k..(item + 1) * k];
        posteriors[input_index * k..(input_index + 1) * k].copy_from_slice(posterior);
        let range = votes.offsets[item]..votes.offsets[item + 1];
        estimates[input_index] = match range.len() {
            0 => ItemEstimate {
                label: None,
                confidence: 0.0,
            },
            1 if !informed[votes.worker[range.start] as usize] => ItemEstimate {
                label: Some(votes.answer[range.start] as usize),
                confidence: 0.0,
            },
            _ => {
                let label = output.label(item, posterior);
                let confidence = label.and_then(|l| posterior.get(l).copied()).unwrap_or(0.0);
                ItemEstimate { label, confidence }
            }
        };
    }

    let mut stats = WorkerStats::new();
    stats.single_label_structure = output.structure;
    if k >= 2 {
        for (w, name) in worker_names.iter().enumerate() {
            stats.add_confusion_block(name, k, &output.batch_counts[w * k * k..(w + 1) * k * k]);
        }
    }
    SingleLabelOutcome {
        items: estimates,
        posteriors,
        n_classes: k,
        stats,
        plain_vote: false,
    }
}

/// Each item's plurality, its share of the item's workers as confidence (one worker, one vote: their
/// last), 0 for a single vote; ties go to the lowest class. Time and memory are the answers', whatever
/// the number of classes.
fn plain_single_label_vote(n_classes: usize, items: &[SingleLabelItem<'_>]) -> SingleLabelOutcome {
    let mut tally: HashMap<usize, usize> = HashMap::new();
    let estimates = items
        .iter()
        .map(|item| {
            tally.clear();
            let mut last: HashMap<&str, usize> = HashMap::with_capacity(item.votes.len());
            for &(worker, class) in &item.votes {
                if class < n_classes {
                    last.insert(worker, class);
                }
            }
            for &class in last.values() {
                *tally.entry(class).or_default() += 1;
            }
            let best = tally
                .iter()
                .map(|(&class, &n)| (n, std::cmp::Reverse(class)))
                .max();
            match best {
                None => ItemEstimate::default(),
                Some((n, std::cmp::Reverse(class))) => ItemEstimate {
                    label: Some(class),
                    confidence: if last.len() < 2 {
                        0.0
                    } else {
                        n as f64 / last.len() as f64
                    },
                },
            }
        })
        .collect();
    SingleLabelOutcome {
        items: estimates,
        posteriors: Vec::new(),
        n_classes,
        stats: WorkerStats::new(),
        plain_vote: true,
    }
}

/// Consolidates multi-label answers by binary relevance (see the module docs). Never panics; class
/// indices `≥ n_classes` are ignored and a class ticked twice by one worker counts once.
// The class loop builds one binary problem per class; the class index is data, not just a position.
#[allow(clippy::needless_range_loop)]
pub fn consolidate_multi_label(
    n_classes: usize,
    items: &[MultiLabelItem<'_>],
    priors: &WorkerPriors,
    config: &ClassificationConfig,
) -> MultiLabelOutcome {
    let (workers, worker_of_vote) =
        WorkerIndex::intern(items.iter().flat_map(|i| i.votes.iter().map(|v| v.0)));
    let n_workers = workers.names.len();
    let cells = items
        .len()
        .checked_add(n_workers)
        .and_then(|n| n.checked_mul(n_classes));
    // Each class is an EM of its own, and each adds a block per worker to the worker-quality document:
    // more classes than any labeling UI offers are a hostile answer, not a model to fit.
    if n_classes > MAX_MULTI_LABEL_CLASSES || cells.is_none_or(|c| c > config.max_model_cells) {
        return plain_multi_label_vote(n_classes, items);
    }
    // Each worker's chosen classes per item, deduplicated and filtered once.
    let mut worker_ids = worker_of_vote.iter();
    let ticked: Vec<Vec<(u32, BTreeSet<usize>)>> = items
        .iter()
        .map(|item| {
            item.votes
                .iter()
                .zip(worker_ids.by_ref())
                .map(|((_, classes), &w)| {
                    let set = classes.iter().copied().filter(|&c| c < n_classes).collect();
                    (w, set)
                })
                .collect()
        })
        .collect();

    let mut presence = vec![vec![0.0; n_classes]; items.len()];
    let mut chosen: Vec<BTreeMap<usize, f64>> = vec![BTreeMap::new(); items.len()];
    let mut stats = WorkerStats::new();
    for class in 0..n_classes {
        let (votes, order) = build_votes(
            2,
            n_workers,
            ticked.iter().map(|item| {
                item.iter()
                    .map(move |(w, set)| (*w, usize::from(set.contains(&class))))
            }),
        );
        let mut prior_counts = vec![0.0; n_workers * 4];
        let mut known = vec![false; n_workers];
        for (w, name) in workers.names.iter().enumerate() {
            if let Some(counts) = priors.multi_label_counts(name, class)
                && counts.iter().flatten().all(|x| x.is_finite() && *x >= 0.0)
            {
                let flat = [counts[0][0], counts[0][1], counts[1][0], counts[1][1]];
                prior_counts[w * 4..(w + 1) * 4].copy_from_slice(&flat);
                known[w] = flat.iter().sum::<f64>() > 0.0;
            }
        }
        let output = run_method(
            &votes,
            &prior_counts,
            priors.multi_label_structure(class),
            config,
        );
        if !output.structure.is_empty() {
            stats.multi_label_structure.insert(class, output.structure);
        }
        let informed = informed_workers(&known, &output.batch_counts, 4);
        for (position, &item) in order.iter().enumerate() {
            let range = votes.offsets[position]..votes.offsets[position + 1];
            let p_present = output.posterior[position * 2 + 1];
            presence[item][class] = p_present;
            let (present, confidence) = match range.len() {
                0 => (false, 0.0),
                1 if !informed[votes.worker[range.start] as usize] => {
                    (votes.answer[range.start] == 1, 0.0)
                }
                _ => {
                    let label =
                        output.label(position, &output.posterior[position * 2..position * 2 + 2]);
                    (label == Some(1), p_present)
                }
            };
            if present {
                chosen[item].insert(class, confidence);
            }
        }
        for (w, name) in workers.names.iter().enumerate() {
            let block = &output.batch_counts[w * 4..(w + 1) * 4];
            for truth in 0..2 {
                for answered in 0..2 {
                    stats.add_binary(
                        name,
                        class,
                        truth == 1,
                        answered == 1,
                        block[truth * 2 + answered],
                    );
                }
            }
        }
    }
    let estimates = chosen
        .into_iter()
        .zip(presence)
        .map(|(chosen, presence)| MultiLabelEstimate {
            classes: chosen.keys().copied().collect(),
            confidences: chosen.values().copied().collect(),
            presence,
        })
        .collect();
    MultiLabelOutcome {
        items: estimates,
        stats,
        plain_vote: false,
    }
}

/// Per item, the classes ticked by more than half of its workers (one answer per worker: their last),
/// each with its share of them as confidence (0 with a single worker).
fn plain_multi_label_vote(n_classes: usize, items: &[MultiLabelItem<'_>]) -> MultiLabelOutcome {
    let estimates = items
        .iter()
        .map(|item| {
            let mut last: HashMap<&str, &[usize]> = HashMap::with_capacity(item.votes.len());
            for (worker, classes) in &item.votes {
                last.insert(worker, classes);
            }
            let mut tally: BTreeMap<usize, usize> = BTreeMap::new();
            for classes in last.values() {
                let unique: BTreeSet<usize> =
                    classes.iter().copied().filter(|&c| c < n_classes).collect();
                for class in unique {
                    *tally.entry(class).or_default() += 1;
                }
            }
            let workers = last.len();
            let (classes, confidences) = tally
                .into_iter()
                .filter(|&(_, n)| 2 * n > workers)
                .map(|(class, n)| {
                    let share = if workers < 2 {
                        0.0
                    } else {
                        n as f64 / workers as f64
                    };
                    (class, share)
                })
                .unzip();
            MultiLabelEstimate {
                classes,
                confidences,
                presence: Vec::new(),
            }
        })
        .collect();
    MultiLabelOutcome {
        items: estimates,
        stats: WorkerStats::new(),
        plain_vote: true,
    }
}

#[cfg(test)]
mod tests;
