//! One evaluation of the classification engine, the same every time: every real crowd set and the
//! synthetic regimes, scored against gold as a whole set and batch by batch the way the Lambda sees a
//! job (worker quality carried between batches through the stored worker-quality document).
//!
//! Per set it reports accuracy, expected calibration error (10 bins), the multi-class Brier score, the
//! plain majority vote's accuracy and the calibration of its bare vote share (the baselines the engine
//! must never fall below), and the time taken. `groundwork eval` and `examples/eval.rs` print it; the
//! tests hold the engine to it.
//!
//! The batch replay mirrors [`crate::consolidate::service::handle_request`]: per batch, the priors are
//! the document's other batches ([`JobWorkerQuality::prior_excluding`]), the batch's statistics are
//! recorded under its key, and the document goes through its JSON form between batches exactly as it
//! does through S3. A test checks that the replay and the request path give the same labels.

use std::path::Path;
use std::time::Instant;

use super::synthetic::SmallRng;
use super::{
    ClassificationConfig, LabelTable, Method, SingleLabelItem, consolidate_single_label,
    expected_calibration_error, read_gold_csv, read_labels_csv,
};
use crate::consolidate::worker_quality::{JobWorkerQuality, WorkerPriors};

/// A set to evaluate on: the workers' answers and the gold class of every task (`None`: no gold).
#[derive(Debug, Clone)]
pub struct EvalSet {
    /// A short name (the folder's name for a real set).
    pub name: String,
    /// The answers.
    pub table: LabelTable,
    /// The gold class per task of `table` (`usize::MAX` for a gold label no worker used).
    pub gold: Vec<Option<usize>>,
}

/// Why a set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum EvalSetError {
    /// A file is missing or unreadable.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A CSV file is malformed.
    #[error("{path}: {source}")]
    Csv {
        /// The file.
        path: String,
        /// What is wrong with it.
        #[source]
        source: super::CsvError,
    },
}

impl EvalSet {
    /// Loads `DIR/labels.csv` (`task,worker,label`) and `DIR/gold.csv` (`task,label`).
    pub fn load(dir: &Path) -> Result<Self, EvalSetError> {
        let open = |name: &str| {
            let path = dir.join(name);
            std::fs::File::open(&path)
                .map(std::io::BufReader::new)
                .map_err(|source| EvalSetError::Io {
                    path: path.display().to_string(),
                    source,
                })
        };
        let csv_error = |name: &str, source| EvalSetError::Csv {
            path: dir.join(name).display().to_string(),
            source,
        };
        let table = read_labels_csv(open("labels.csv")?).map_err(|e| csv_error("labels.csv", e))?;
        let gold = read_gold_csv(open("gold.csv")?).map_err(|e| csv_error("gold.csv", e))?;
        let gold = table.gold_classes(&gold);
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        Ok(Self { name, table, gold })
    }
}

impl EvalSet {
    /// The same set with at most `per_object` answers per task, drawn at random (seeded) from each task's
    /// answers: most Ground Truth jobs ask 3 or 5 workers, and a set with 10–39 answers per object says
    /// little about those.
    pub fn subsample(&self, per_object: usize, seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut by_task: Vec<Vec<usize>> = vec![Vec::new(); self.table.tasks.len()];
        for (i, row) in self.table.rows.iter().enumerate() {
            if let Some(rows) = by_task.get_mut(row.task) {
                rows.push(i);
            }
        }
        let mut keep = vec![false; self.table.rows.len()];
        for rows in &mut by_task {
            for i in (1..rows.len()).rev() {
                let j = (rng.next_u64() % (i as u64 + 1)) as usize;
                rows.swap(i, j);
            }
            for &r in rows.iter().take(per_object) {
                keep[r] = true;
            }
        }
        let mut table = self.table.clone();
        table.rows = table
            .rows
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(r, _)| *r)
            .collect();
        Self {
            name: format!("{}@{per_object}", self.name),
            table,
            gold: self.gold.clone(),
        }
    }
}

/// The folders below `root` that hold a crowd set (a `labels.csv`), sorted by name.
pub fn set_dirs(root: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut dirs: Vec<std::path::PathBuf> = std::fs::read_dir(root)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("labels.csv").is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// How a batch replay cuts a job: tasks in a random order (seeded), a first batch, then equal batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPlan {
    /// Objects per batch.
    pub batch_size: usize,
    /// Objects in the first batch (Ground Truth's first batch is often small); 0 = `batch_size`.
    pub first_batch: usize,
    /// Seed of the task order.
    pub seed: u64,
}

impl Default for BatchPlan {
    fn default() -> Self {
        Self {
            batch_size: 50,
            first_batch: 10,
            seed: 0,
        }
    }
}

/// Scores of one way of labelling a set.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Scores {
    /// Share of the gold tasks labelled right.
    pub accuracy: f64,
    /// Expected calibration error of the label's confidence (10 equal-width bins).
    pub ece: f64,
    /// Multi-class Brier score of the posterior (sum over classes of the squared error, mean over tasks).
    pub brier: f64,
    /// Mean confidence of the label.
    pub mean_confidence: f64,
    /// Seconds taken.
    pub seconds: f64,
}

/// The evaluation of one set.
#[derive(Debug, Clone, PartialEq)]
pub struct SetReport {
    /// The set's name.
    pub name: String,
    /// Tasks, workers, answers and classes.
    pub tasks: usize,
    /// Distinct workers.
    pub workers: usize,
    /// Answers (rows).
    pub answers: usize,
    /// Classes.
    pub classes: usize,
    /// The engine on the whole set.
    pub whole: Scores,
    /// The engine batch by batch with worker quality carried.
    pub batches: Option<Scores>,
    /// Plain plurality vote (ties to the lower class), confidence = the label's vote share.
    pub vote: Scores,
    /// The whole-set ECE after recalibration on 50 audited objects ([`super::audit`]), cross-validated:
    /// the mean over 20 random audits of the ECE on the other gold objects.
    pub audited_ece: Option<f64>,
    /// The same, with the batch path's confidences (the Lambda's own).
    pub batches_audited_ece: Option<f64>,
    /// The ECE when the audit comes from *another* job, as the Lambda uses one
    /// ([`transferred_audit_ece`]; not run by [`evaluate_set`], it consolidates the set 20 more times).
    pub transferred_audit_ece: Option<f64>,
}

/// Random splits in `make eval`'s [`SetReport::transferred_audit_ece`].
pub const TRANSFER_ROUNDS: usize = 10;

/// Audited objects per recalibration in [`SetReport::audited_ece`].
pub const AUDITED_OBJECTS: usize = 50;

/// What a labelling gives per task: the label, its confidence and the posterior over the classes.
struct Labelling {
    labels: Vec<Option<usize>>,
    confidence: Vec<f64>,
    posteriors: Vec<f64>,
}

fn score(labelling: &Labelling, gold: &[Option<usize>], k: usize, seconds: f64) -> Scores {
    let mut right = 0usize;
    let mut judged = 0usize;
    let mut brier = 0.0;
    let mut confidence_sum = 0.0;
    for (i, g) in gold.iter().enumerate() {
        let Some(g) = *g else { continue };
        judged += 1;
        right += usize::from(labelling.labels[i] == Some(g));
        confidence_sum += labelling.confidence[i];
        let row = &labelling.posteriors[i * k..(i + 1) * k];
        brier += row
            .iter()
            .enumerate()
            .map(|(c, p)| (p - f64::from(u8::from(c == g))).powi(2))
            .sum::<f64>();
        if g >= k {
            brier += 1.0;
        }
    }
    let n = judged.max(1) as f64;
    Scores {
        accuracy: right as f64 / n,
        ece: expected_calibration_error(&labelling.confidence, &labelling.labels, gold, 10),
        brier: brier / n,
        mean_confidence: confidence_sum / n,
        seconds,
    }
}

/// Plain plurality vote: the most frequent answer (ties to the lower class), confidence its share.
pub fn plurality_vote(k: usize, items: &[SingleLabelItem<'_>]) -> (Vec<Option<usize>>, Vec<f64>) {
    let mut labels = Vec::with_capacity(items.len());
    let mut shares = Vec::with_capacity(items.len());
    let mut tally = vec![0usize; k];
    for item in items {
        tally.iter_mut().for_each(|t| *t = 0);
        for &(_, class) in &item.votes {
            if let Some(t) = tally.get_mut(class) {
                *t += 1;
            }
        }
        let total: usize = tally.iter().sum();
        let best = tally.iter().copied().max().unwrap_or(0);
        let label = (total > 0).then(|| tally.iter().position(|&t| t == best).unwrap_or(0));
        labels.push(label);
        shares.push(if total > 0 {
            best as f64 / total as f64
        } else {
            0.0
        });
    }
    (labels, shares)
}

fn vote_labelling(k: usize, items: &[SingleLabelItem<'_>]) -> Labelling {
    let (labels, confidence) = plurality_vote(k, items);
    let mut posteriors = vec![0.0; items.len() * k];
    for (i, item) in items.iter().enumerate() {
        let row = &mut posteriors[i * k..(i + 1) * k];
        for &(_, class) in &item.votes {
            if let Some(p) = row.get_mut(class) {
                *p += 1.0;
            }
        }
        let total: f64 = row.iter().sum();
        if total > 0.0 {
            row.iter_mut().for_each(|p| *p /= total);
        } else {
            row.iter_mut().for_each(|p| *p = 1.0 / k as f64);
        }
    }
    Labelling {
        labels,
        confidence,
        posteriors,
    }
}

fn engine_labelling(
    k: usize,
    items: &[SingleLabelItem<'_>],
    priors: &WorkerPriors,
    config: &ClassificationConfig,
) -> (Labelling, super::SingleLabelOutcome) {
    let outcome = consolidate_single_label(k, items, priors, config);
    let mut posteriors = vec![0.0; items.len() * k];
    for i in 0..items.len() {
        let row = outcome.posterior(i);
        if row.len() == k {
            posteriors[i * k..(i + 1) * k].copy_from_slice(row);
        }
    }
    let labelling = Labelling {
        labels: outcome.items.iter().map(|e| e.label).collect(),
        confidence: outcome.items.iter().map(|e| e.confidence).collect(),
        posteriors,
    };
    (labelling, outcome)
}

/// The task order of a batch replay and its cut into batches (index ranges into that order).
pub fn batch_order(n_tasks: usize, plan: &BatchPlan) -> (Vec<usize>, Vec<std::ops::Range<usize>>) {
    let mut order: Vec<usize> = (0..n_tasks).collect();
    let mut rng = SmallRng::seed_from_u64(plan.seed);
    for i in (1..order.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    let size = plan.batch_size.max(1);
    let first = if plan.first_batch == 0 {
        size
    } else {
        plan.first_batch
    };
    let mut ranges = Vec::new();
    let mut start = 0;
    while start < n_tasks {
        let len = if ranges.is_empty() { first } else { size };
        let end = (start + len).min(n_tasks);
        ranges.push(start..end);
        start = end;
    }
    (order, ranges)
}

/// The engine batch by batch, as the Lambda runs a job: each batch consolidated with the worker quality
/// of the batches before it, its statistics recorded, the document stored as JSON between batches.
pub fn replay_in_batches(
    set: &EvalSet,
    plan: &BatchPlan,
    config: &ClassificationConfig,
) -> (Vec<Option<usize>>, Vec<f64>, Vec<f64>) {
    let k = set.table.classes.len();
    let items = set.table.single_label_items();
    let (order, ranges) = batch_order(items.len(), plan);
    let mut labels = vec![None; items.len()];
    let mut confidence = vec![0.0; items.len()];
    let mut posteriors = vec![1.0 / k.max(1) as f64; items.len() * k];
    let mut stored: Vec<u8> = Vec::new();
    for (b, range) in ranges.into_iter().enumerate() {
        let key = format!("batch-{b:05}");
        let state = JobWorkerQuality::from_json_or_empty(&stored);
        let priors = state.prior_excluding(&key);
        let batch: Vec<SingleLabelItem<'_>> = order[range.clone()]
            .iter()
            .map(|&t| items[t].clone())
            .collect();
        let (labelling, outcome) = engine_labelling(k, &batch, &priors, config);
        for (j, &task) in order[range].iter().enumerate() {
            labels[task] = labelling.labels[j];
            confidence[task] = labelling.confidence[j];
            posteriors[task * k..(task + 1) * k]
                .copy_from_slice(&labelling.posteriors[j * k..(j + 1) * k]);
        }
        let mut state = state;
        if !outcome.stats.is_empty() {
            state.record(&key, outcome.stats);
        }
        stored = state.to_json_vec().unwrap_or_default();
    }
    (labels, confidence, posteriors)
}

/// Evaluates one set: the engine (with `config`) on the whole set, batch by batch when `plan` is given,
/// and the plain vote.
pub fn evaluate_set(
    set: &EvalSet,
    config: &ClassificationConfig,
    plan: Option<&BatchPlan>,
) -> SetReport {
    let k = set.table.classes.len();
    let items = set.table.single_label_items();
    let start = Instant::now();
    let (whole, _) = engine_labelling(k, &items, &WorkerPriors::empty(), config);
    let whole_seconds = start.elapsed().as_secs_f64();
    let mut batches_audited_ece = None;
    let batches = plan.map(|plan| {
        let start = Instant::now();
        let (labels, confidence, posteriors) = replay_in_batches(set, plan, config);
        let seconds = start.elapsed().as_secs_f64();
        batches_audited_ece = super::audit::cross_validated_ece(
            &labels,
            &confidence,
            &set.gold,
            AUDITED_OBJECTS,
            20,
            0,
        );
        let labelling = Labelling {
            labels,
            confidence,
            posteriors,
        };
        score(&labelling, &set.gold, k, seconds)
    });
    let audited_ece = super::audit::cross_validated_ece(
        &whole.labels,
        &whole.confidence,
        &set.gold,
        AUDITED_OBJECTS,
        20,
        0,
    );
    let start = Instant::now();
    let vote = vote_labelling(k, &items);
    let vote_seconds = start.elapsed().as_secs_f64();
    SetReport {
        name: set.name.clone(),
        tasks: set.table.tasks.len(),
        workers: set.table.workers.len(),
        answers: set.table.rows.len(),
        classes: k,
        whole: score(&whole, &set.gold, k, whole_seconds),
        batches,
        vote: score(&vote, &set.gold, k, vote_seconds),
        audited_ece,
        batches_audited_ece,
        transferred_audit_ece: None,
    }
}

/// The same set with only the tasks `keep` says, as a job of its own: the other tasks lose their
/// answers and their gold.
fn restricted(set: &EvalSet, keep: &[bool]) -> EvalSet {
    let mut table = set.table.clone();
    table
        .rows
        .retain(|row| keep.get(row.task).copied().unwrap_or(false));
    let gold = set
        .gold
        .iter()
        .zip(keep)
        .map(|(g, &k)| if k { *g } else { None })
        .collect();
    EvalSet {
        name: set.name.clone(),
        table,
        gold,
    }
}

/// The ECE of a job recalibrated with the audit of *another* job of the same kind, as the Lambda does
/// with `<S3OutputPath>/groundwork/audit/<LAN>.json`: `rounds` times, the set's tasks are split at
/// random into two jobs, each consolidated alone; `n_audited` gold objects of the first job are the
/// audit, and the map fitted on its verdicts recalibrates the second job, whose ECE is measured. The
/// mean over the rounds, or `None` when the halves hold too few gold objects.
///
/// [`TRANSFER_ROUNDS`] rounds are what `make eval` runs.
pub fn transferred_audit_ece(
    set: &EvalSet,
    config: &ClassificationConfig,
    n_audited: usize,
    rounds: usize,
    seed: u64,
) -> Option<f64> {
    let k = set.table.classes.len();
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_a0d1);
    let mut total = 0.0;
    for _ in 0..rounds.max(1) {
        let first: Vec<bool> = (0..set.table.tasks.len())
            .map(|_| rng.next_u64() & 1 == 0)
            .collect();
        let second: Vec<bool> = first.iter().map(|f| !f).collect();
        let (job_a, job_b) = (restricted(set, &first), restricted(set, &second));
        let (a, _) = engine_labelling(
            k,
            &job_a.table.single_label_items(),
            &WorkerPriors::empty(),
            config,
        );
        let mut audited: Vec<usize> = (0..job_a.gold.len())
            .filter(|&i| job_a.gold[i].is_some() && a.labels[i].is_some())
            .collect();
        if audited.len() < n_audited {
            return None;
        }
        for i in (1..audited.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            audited.swap(i, j);
        }
        let verdicts: Vec<(f64, bool)> = audited[..n_audited]
            .iter()
            .map(|&i| (a.confidence[i], a.labels[i] == job_a.gold[i]))
            .collect();
        let map = super::audit::AuditMap::fit(&verdicts).ok()?;
        let (b, _) = engine_labelling(
            k,
            &job_b.table.single_label_items(),
            &WorkerPriors::empty(),
            config,
        );
        let mapped: Vec<f64> = b.confidence.iter().map(|&c| map.apply(c)).collect();
        total += expected_calibration_error(&mapped, &b.labels, &job_b.gold, 10);
    }
    Some(total / rounds.max(1) as f64)
}

/// A synthetic regime the engine must handle: `tasks` objects of `classes` classes, `overlap` distinct
/// workers each from a pool of `workers`, every worker right with their own probability drawn from
/// `accuracy`, otherwise answering one of the other classes at random; optionally a confusion shared by
/// the whole crowd (`shared_confusion = (from, to, rate)`: an object of class `from` is answered `to`
/// with probability `rate` by every worker, on top of their own errors).
#[derive(Debug, Clone, PartialEq)]
pub struct Regime {
    /// A short name.
    pub name: &'static str,
    /// Objects.
    pub tasks: usize,
    /// Classes.
    pub classes: usize,
    /// Workers in the pool.
    pub workers: usize,
    /// Distinct workers per object.
    pub overlap: usize,
    /// Each worker's accuracy is drawn uniformly from this range.
    pub accuracy: (f64, f64),
    /// A confusion every worker shares.
    pub shared_confusion: Option<(usize, usize, f64)>,
    /// Seed.
    pub seed: u64,
}

impl Regime {
    /// Generates the set (answers and gold).
    pub fn generate(&self) -> EvalSet {
        let k = self.classes.max(2);
        let n_workers = self.workers.max(self.overlap).max(1);
        let overlap = self.overlap.clamp(1, n_workers);
        let mut rng = SmallRng::seed_from_u64(self.seed);
        let skill: Vec<f64> = (0..n_workers)
            .map(|_| rng.uniform_range(self.accuracy.0, self.accuracy.1))
            .collect();
        let mut triples = Vec::with_capacity(self.tasks * overlap);
        let mut gold = Vec::with_capacity(self.tasks);
        let mut chosen = Vec::with_capacity(overlap);
        for task in 0..self.tasks {
            let truth = (rng.next_u64() % k as u64) as usize;
            gold.push((task.to_string(), truth.to_string()));
            chosen.clear();
            while chosen.len() < overlap {
                let w = (rng.next_u64() % n_workers as u64) as usize;
                if !chosen.contains(&w) {
                    chosen.push(w);
                }
            }
            for &w in &chosen {
                let answer = match self.shared_confusion {
                    Some((from, to, rate)) if truth == from && rng.uniform() < rate => to,
                    _ if rng.uniform() < skill[w] => truth,
                    _ => (truth + 1 + (rng.next_u64() % (k as u64 - 1)) as usize) % k,
                };
                triples.push((task.to_string(), format!("w{w}"), answer.to_string()));
            }
        }
        let table = LabelTable::from_triples(
            triples
                .iter()
                .map(|(t, w, l)| (t.as_str(), w.as_str(), l.as_str())),
        );
        // Every class id as a label so that the table knows them all, even one nobody answered.
        let gold = table.gold_classes(&gold);
        EvalSet {
            name: self.name.to_owned(),
            table,
            gold,
        }
    }
}

/// The synthetic regimes where the engine used to fail: sparse workers, hard tasks, many classes, tiny
/// batches and a confusion the whole crowd shares.
pub fn regimes() -> Vec<Regime> {
    let base = Regime {
        name: "",
        tasks: 1000,
        classes: 4,
        workers: 50,
        overlap: 5,
        accuracy: (0.6, 0.9),
        shared_confusion: None,
        seed: 1,
    };
    vec![
        Regime {
            name: "sparse-300w",
            tasks: 1000,
            workers: 300,
            overlap: 5,
            classes: 10,
            accuracy: (0.5, 0.9),
            seed: 2,
            ..base.clone()
        },
        Regime {
            name: "sparse-3000w",
            tasks: 3000,
            workers: 3000,
            overlap: 5,
            classes: 4,
            accuracy: (0.5, 0.9),
            seed: 3,
            ..base.clone()
        },
        Regime {
            name: "hard",
            accuracy: (0.4, 0.75),
            seed: 4,
            ..base.clone()
        },
        Regime {
            name: "hard-sparse",
            tasks: 2000,
            workers: 400,
            accuracy: (0.4, 0.75),
            seed: 5,
            ..base.clone()
        },
        Regime {
            name: "10-classes",
            classes: 10,
            workers: 100,
            accuracy: (0.5, 0.85),
            seed: 6,
            ..base.clone()
        },
        Regime {
            name: "50-classes",
            tasks: 2000,
            classes: 50,
            workers: 150,
            overlap: 3,
            accuracy: (0.5, 0.85),
            seed: 7,
            ..base.clone()
        },
        Regime {
            name: "tiny-10",
            tasks: 10,
            workers: 20,
            overlap: 3,
            seed: 8,
            ..base.clone()
        },
        Regime {
            name: "tiny-100",
            tasks: 100,
            workers: 30,
            overlap: 3,
            seed: 9,
            ..base.clone()
        },
        Regime {
            name: "small-300-hard",
            tasks: 300,
            workers: 40,
            accuracy: (0.4, 0.75),
            seed: 10,
            ..base.clone()
        },
        Regime {
            name: "shared-confusion",
            shared_confusion: Some((0, 1, 0.3)),
            seed: 11,
            ..base
        },
    ]
}

/// The default configuration, and majority vote's, by name (for printing).
pub fn engine_config() -> ClassificationConfig {
    ClassificationConfig {
        method: Method::DawidSkene,
        ..ClassificationConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consolidate::batch::BatchSettings;
    use crate::consolidate::service::{Ports, handle_request};
    use crate::contracts::ConsolidationRequest;
    use crate::metadata::{FixedClock, round_confidence};
    use crate::ports::fakes::MemoryObjectStore;
    use crate::testing::block_on;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn the_batch_replay_is_what_the_request_path_answers() {
        // The replay stands for the Lambda: each batch of a real set sent through `handle_request`
        // (payload in a store, worker quality in the store between batches) must give the replay's
        // labels and confidences.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/crowd/snow2008_temp");
        let set = EvalSet::load(Path::new(dir)).expect("temp set");
        let plan = BatchPlan::default();
        let config = engine_config();
        let (labels, confidence, _) = replay_in_batches(&set, &plan, &config);
        let items = set.table.single_label_items();
        let (order, ranges) = batch_order(items.len(), &plan);
        let store = MemoryObjectStore::new();
        let clock = FixedClock(chrono::Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).unwrap());
        let mut compared = 0;
        for (b, range) in ranges.into_iter().enumerate() {
            let objects: Vec<serde_json::Value> = order[range]
                .iter()
                .map(|&task| {
                    let answers: Vec<serde_json::Value> = items[task]
                        .votes
                        .iter()
                        .map(|(worker, class)| {
                            let content = json!({"crowd-image-classifier": {"label": set.table.classes[*class]}});
                            json!({"workerId": worker, "annotationData": {"content": content.to_string()}})
                        })
                        .collect();
                    json!({"datasetObjectId": set.table.tasks[task], "dataObject": {"content": "x"},
                           "annotations": answers})
                })
                .collect();
            let uri =
                format!("s3://bucket/job/annotations/consolidation-request/iteration-{b}.json");
            store.insert(&uri, serde_json::to_vec(&objects).expect("payload"));
            let request: ConsolidationRequest = serde_json::from_value(json!({
                "version": "2018-10-06",
                "labelingJobArn": "arn:aws:sagemaker:us-east-1:111111111111:labeling-job/temp",
                "labelCategories": set.table.classes,
                "labelAttributeName": "order",
                "payload": {"s3Uri": uri},
                "outputConfig": "s3://bucket/job/annotations"
            }))
            .expect("request");
            let ports = Ports {
                reader: &store,
                writer: &store,
                quality: Some(&store),
                prior_answers: None,
                audit: None,
                scope: &crate::s3_scope::S3Scope::anywhere(),
            };
            let outcome = block_on(handle_request(
                &request,
                ports,
                &BatchSettings::default(),
                &clock,
            ))
            .expect("batch answered");
            for entry in &outcome.entries {
                let content = entry.content_map();
                let meta = &content["order-metadata"];
                let task = set
                    .table
                    .tasks
                    .iter()
                    .position(|t| *t == entry.dataset_object_id)
                    .expect("a task of the batch");
                let label = labels[task].map(|c| set.table.classes[c].clone());
                assert_eq!(
                    meta["class-name"].as_str(),
                    label.as_deref(),
                    "batch {b}, task {task}"
                );
                assert_eq!(
                    meta["confidence"].as_f64(),
                    Some(round_confidence(confidence[task])),
                    "batch {b}, task {task}"
                );
                compared += 1;
            }
        }
        assert_eq!(compared, items.len());
    }

    #[test]
    fn batch_order_is_a_permutation_cut_into_the_plan() {
        let (order, ranges) = batch_order(123, &BatchPlan::default());
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..123).collect::<Vec<_>>());
        assert_ne!(order, sorted, "shuffled");
        let lens: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
        assert_eq!(lens, vec![10, 50, 50, 13]);
        assert_eq!(batch_order(123, &BatchPlan::default()).0, order, "seeded");
    }

    #[test]
    fn subsampling_keeps_at_most_n_answers_of_each_task() {
        let set = Regime {
            name: "t",
            tasks: 50,
            classes: 3,
            workers: 20,
            overlap: 7,
            accuracy: (0.7, 0.9),
            shared_confusion: None,
            seed: 1,
        }
        .generate();
        let cut = set.subsample(3, 0);
        assert_eq!(cut.table.rows.len(), 150);
        let mut per_task = [0; 50];
        for row in &cut.table.rows {
            per_task[row.task] += 1;
        }
        assert!(per_task.iter().all(|&n| n == 3));
        assert_eq!(cut.gold, set.gold);
        assert_eq!(set.subsample(3, 0).table.rows, cut.table.rows, "seeded");
    }

    #[test]
    fn plurality_vote_breaks_ties_low_and_reports_the_share() {
        let items = vec![
            SingleLabelItem {
                votes: vec![("a", 1), ("b", 0)],
            },
            SingleLabelItem {
                votes: vec![("a", 2), ("b", 2), ("c", 1)],
            },
            SingleLabelItem { votes: vec![] },
        ];
        let (labels, shares) = plurality_vote(3, &items);
        assert_eq!(labels, vec![Some(0), Some(2), None]);
        assert_eq!(shares[0], 0.5);
        assert!((shares[1] - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn a_regime_has_its_shape_and_its_accuracy() {
        let regime = Regime {
            name: "t",
            tasks: 2000,
            classes: 3,
            workers: 20,
            overlap: 4,
            accuracy: (0.8, 0.8),
            shared_confusion: None,
            seed: 3,
        };
        let set = regime.generate();
        assert_eq!(set.table.tasks.len(), 2000);
        assert_eq!(set.table.rows.len(), 8000);
        let right = set
            .table
            .rows
            .iter()
            .filter(|r| set.gold[r.task] == Some(r.class))
            .count();
        let share = right as f64 / 8000.0;
        assert!((share - 0.8).abs() < 0.02, "{share}");
    }
}
