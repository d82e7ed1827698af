//! Per-job worker quality, kept between the batches of one labeling job.
//!
//! Ground Truth hands a job's data objects to the consolidation Lambda in many batches (first 10, then up
//! to `MaxConcurrentTaskCount`). A worker who labelled 300 objects over 30 batches should be judged by all
//! 300 answers, not by the 10 in the current batch, so the Lambda keeps one [`JobWorkerQuality`] document per
//! job (in S3) and feeds [`JobWorkerQuality::prior_excluding`] into every consolidation.
//!
//! | type | what it is |
//! |---|---|
//! | [`WorkerStats`] | what one batch taught us about its workers: soft (posterior-weighted) confusion counts for single-label classification, per-class 2×2 counts for multi-label, and a generic `(agreed, total)` pair that the box / span / mask consolidators fill |
//! | [`JobWorkerQuality`] | the persisted, versioned JSON document: one [`WorkerStats`] per batch key, plus one compacted bucket for very old batches |
//! | [`WorkerPriors`] | the sum of the stats of every *other* batch, as pseudo-counts for the truth-inference engine and as a [`WorkerPriors::reliability`] weight for the other task types |
//!
//! Why per-batch contributions rather than one running total: Ground Truth (and Lambda retries) may deliver
//! the same batch more than once. The prior for batch `B` is built from every batch except `B`, and
//! recording `B` again replaces its contribution, so a redelivery produces byte-identical output and never
//! counts a worker's answers twice. Two Lambdas racing on the same document resolve a failed conditional
//! write with [`JobWorkerQuality::merge`] (union by batch key).
//!
//! Robustness: the document tolerates unknown fields (a newer writer may add some), every count read from it
//! is sanitised (non-finite or negative numbers are dropped, mismatched matrix sizes are ignored), and a
//! document that does not parse at all is meant to be replaced by an empty one
//! ([`JobWorkerQuality::from_json_or_empty`]): losing history costs accuracy on the next batches, never
//! correctness.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// The version written into every [`JobWorkerQuality`] document; documents of a newer version are refused.
pub const FORMAT_VERSION: u32 = 1;

/// How many batches are kept individually before the oldest ones are folded into the compacted bucket.
///
/// The trade-off: each kept batch costs space and buys exact idempotency for its redelivery. A batch
/// folded into the compacted bucket still counts in every prior, but its contribution can no longer be
/// told apart: redelivering it then leaves the document unchanged (see [`JobWorkerQuality::record`]) and
/// its prior includes its own old answers. Ground Truth and Lambda retry a batch within minutes, before
/// 16 newer batches have finished in all but the busiest jobs.
///
/// The space is time: every batch reads and writes the whole document. A 1,000-object batch of 50
/// workers and 4 classes contributes about 20 KB; with 200 batches kept the document was 3.9 MB, and
/// parsing, updating and writing it cost 22 ms per batch, five times the batch's own payload parse (and
/// that much more S3 transfer). With 16 it is about 310 KB and 1.7 ms.
pub const DEFAULT_MAX_BATCHES: usize = 16;

/// Soft confusion counts of one worker for single-label classification: `counts[true * n_classes + answered]`
/// is the posterior mass of "the truth was `true` and the worker answered `answered`".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfusionCounts {
    /// The number of classes `K`; `counts` holds `K × K` numbers.
    pub n_classes: usize,
    /// Row-major `K × K`: rows are true classes, columns are the worker's answers.
    #[serde(serialize_with = "serialize_rounded")]
    pub counts: Vec<f64>,
}

/// Soft counts are stored to 1e-4 of an answer. They are posterior sums like `12.999999873412`: their
/// seventeen digits made the document twice as large, and every batch reads and writes the whole
/// document (parsing those floats was most of it). A ten-thousandth of an answer changes no prior.
fn serialize_rounded<S: serde::Serializer>(
    counts: &[f64],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(counts.iter().map(|c| (c * 1e4).round() / 1e4))
}

impl ConfusionCounts {
    /// An all-zero `n_classes × n_classes` matrix.
    pub fn zeros(n_classes: usize) -> Self {
        Self {
            n_classes,
            counts: vec![0.0; n_classes * n_classes],
        }
    }

    /// The count at `(true_class, answered)`, 0 outside the matrix.
    pub fn get(&self, true_class: usize, answered: usize) -> f64 {
        if true_class >= self.n_classes || answered >= self.n_classes {
            return 0.0;
        }
        self.counts
            .get(true_class * self.n_classes + answered)
            .copied()
            .unwrap_or(0.0)
    }

    /// The total mass (the worker's number of counted answers).
    pub fn total(&self) -> f64 {
        self.counts.iter().sum()
    }

    /// The mass on the diagonal (answers that matched the truth).
    pub fn correct(&self) -> f64 {
        (0..self.n_classes).map(|c| self.get(c, c)).sum()
    }

    fn is_well_formed(&self) -> bool {
        self.n_classes > 0
            && self.counts.len() == self.n_classes * self.n_classes
            && self.counts.iter().all(|x| x.is_finite() && *x >= 0.0)
    }

    fn add_assign(&mut self, other: &ConfusionCounts) {
        if other.n_classes != self.n_classes || !other.is_well_formed() {
            return;
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
    }
}

/// Soft counts of one worker on one class of a multi-label task, as a binary problem:
/// `[truth absent/present][answered absent/present]`.
pub type BinaryCounts = [[f64; 2]; 2];

/// A worker's agreement with the consolidated answer, for task types without class confusion (boxes,
/// spans, masks): `agreed` out of `total` (both may be fractional, e.g. IoU-weighted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// How much of the worker's work agreed with the consolidated answer.
    pub agreed: f64,
    /// How much work was judged.
    pub total: f64,
}

impl Agreement {
    fn is_well_formed(&self) -> bool {
        self.agreed.is_finite() && self.total.is_finite() && self.agreed >= 0.0 && self.total >= 0.0
    }
}

/// How many standard errors one-coin workers must lead by before they replace the workers' own
/// matrices: the simpler model takes over only on clear evidence, because where the two predict equally
/// well the own matrices are the engine that was validated on every set.
pub const STRUCTURE_EVIDENCE_SIGMAS: f64 = 2.0;

/// How many standard errors of lead, either way, settle the structure for the rest of a job.
pub const DECISIVE_STRUCTURE_SIGMAS: f64 = 4.0;

/// The truth-inference engine's evidence on how much structure the job's workers support: over the
/// answers held out of its fits, the posterior mass each candidate model put on the class each answer
/// gave (see the classification engine's `em` module). Summed over batches, it makes one choice for
/// the whole job instead of a noisy one per 50-object batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StructureEvidence {
    /// The held-out answers' summed posterior mass when every worker has their own confusion matrix.
    pub own_matrices: f64,
    /// The same with one-coin workers (one skill each, errors spread evenly).
    pub one_coin: f64,
    /// The sum of the squared per-answer differences between the two: the variance of
    /// `one_coin − own_matrices` under the hypothesis that neither predicts better.
    pub squared_differences: f64,
}

impl StructureEvidence {
    fn is_well_formed(&self) -> bool {
        [self.own_matrices, self.one_coin, self.squared_differences]
            .iter()
            .all(|x| x.is_finite() && *x >= 0.0)
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.own_matrices == 0.0 && self.one_coin == 0.0 && self.squared_differences == 0.0
    }

    /// True when either structure leads by [`DECISIVE_STRUCTURE_SIGMAS`] standard errors: more
    /// evidence would not change the choice, and the engine stops gathering it.
    pub fn is_decisive(&self) -> bool {
        let lead = (self.one_coin - self.own_matrices).abs();
        self.squared_differences > 0.0
            && lead >= DECISIVE_STRUCTURE_SIGMAS * self.squared_differences.sqrt()
    }

    /// True when one-coin workers predicted the held-out answers better by at least
    /// [`STRUCTURE_EVIDENCE_SIGMAS`] standard errors.
    pub fn favours_one_coin(&self) -> bool {
        let lead = self.one_coin - self.own_matrices;
        lead > 0.0 && lead >= STRUCTURE_EVIDENCE_SIGMAS * self.squared_differences.sqrt()
    }

    /// Adds `other`'s evidence to this (malformed evidence is ignored).
    pub fn add(&mut self, other: &StructureEvidence) {
        if other.is_well_formed() {
            self.own_matrices += other.own_matrices;
            self.one_coin += other.one_coin;
            self.squared_differences += other.squared_differences;
        }
    }
}

/// What one batch (or several, summed) taught us about its workers. Keys are worker ids.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkerStats {
    /// Single-label classification: a `K × K` soft confusion matrix per worker.
    pub single_label: BTreeMap<String, ConfusionCounts>,
    /// Multi-label classification: per worker, per class index, a 2×2 soft confusion matrix.
    pub multi_label: BTreeMap<String, BTreeMap<usize, BinaryCounts>>,
    /// Any task type: agreement with the consolidated answer.
    pub agreement: BTreeMap<String, Agreement>,
    /// Single-label classification: which worker structure predicted held-out answers better.
    #[serde(skip_serializing_if = "StructureEvidence::is_empty")]
    pub single_label_structure: StructureEvidence,
    /// Multi-label classification: the same per class index.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub multi_label_structure: BTreeMap<usize, StructureEvidence>,
}

impl WorkerStats {
    /// Empty stats.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.single_label.is_empty()
            && self.multi_label.is_empty()
            && self.agreement.is_empty()
            && self.single_label_structure.is_empty()
            && self.multi_label_structure.is_empty()
    }

    /// Adds `agreed` out of `total` to the worker's agreement pair (boxes, spans, masks). Non-finite or
    /// negative numbers are ignored, and `agreed` is capped at `total`.
    pub fn add_agreement(&mut self, worker: &str, agreed: f64, total: f64) {
        if !(agreed.is_finite() && total.is_finite()) || agreed < 0.0 || total <= 0.0 {
            return;
        }
        let entry = self.agreement.entry(worker.to_owned()).or_default();
        entry.agreed += agreed.min(total);
        entry.total += total;
    }

    /// The worker's single-label matrix, created empty; one of another size (or a corrupt one) is replaced,
    /// since a job's class list does not change.
    fn single_label_matrix(&mut self, worker: &str, n_classes: usize) -> &mut ConfusionCounts {
        let matrix = self
            .single_label
            .entry(worker.to_owned())
            .or_insert_with(|| ConfusionCounts::zeros(n_classes));
        if matrix.n_classes != n_classes || !matrix.is_well_formed() {
            *matrix = ConfusionCounts::zeros(n_classes);
        }
        matrix
    }

    /// Adds `weight` to the worker's single-label confusion count at `(true_class, answered)`.
    /// A matrix of another size for this worker is replaced (a job's class list does not change).
    pub fn add_confusion(
        &mut self,
        worker: &str,
        n_classes: usize,
        true_class: usize,
        answered: usize,
        weight: f64,
    ) {
        if true_class >= n_classes || answered >= n_classes || !weight.is_finite() || weight <= 0.0
        {
            return;
        }
        let matrix = self.single_label_matrix(worker, n_classes);
        if let Some(cell) = matrix.counts.get_mut(true_class * n_classes + answered) {
            *cell += weight;
        }
    }

    /// Adds a whole `n_classes × n_classes` block of soft counts (`[true][answered]`, row-major) to the
    /// worker's matrix: one lookup and one validity check per worker, where adding cell by cell costs
    /// both per cell (quadratic in the cells: seconds for a 50-class job). Cells that are not finite and
    /// positive are skipped, as in [`Self::add_confusion`].
    pub fn add_confusion_block(&mut self, worker: &str, n_classes: usize, block: &[f64]) {
        let counts = |w: &f64| w.is_finite() && *w > 0.0;
        if n_classes == 0 || block.len() != n_classes * n_classes || !block.iter().any(counts) {
            return;
        }
        let matrix = self.single_label_matrix(worker, n_classes);
        for (cell, &weight) in matrix.counts.iter_mut().zip(block) {
            if counts(&weight) {
                *cell += weight;
            }
        }
    }

    /// Adds `weight` to the worker's 2×2 count for `class` at `(truth present?, answered present?)`.
    pub fn add_binary(
        &mut self,
        worker: &str,
        class: usize,
        truth_present: bool,
        answered_present: bool,
        weight: f64,
    ) {
        if !weight.is_finite() || weight <= 0.0 {
            return;
        }
        let cell = self
            .multi_label
            .entry(worker.to_owned())
            .or_default()
            .entry(class)
            .or_insert([[0.0; 2]; 2]);
        cell[usize::from(truth_present)][usize::from(answered_present)] += weight;
    }

    /// Adds every well-formed count of `other` to these stats.
    pub fn absorb(&mut self, other: &WorkerStats) {
        for (worker, matrix) in &other.single_label {
            if !matrix.is_well_formed() {
                continue;
            }
            match self.single_label.get_mut(worker) {
                Some(mine) if mine.n_classes == matrix.n_classes => mine.add_assign(matrix),
                Some(_) => {} // a different class count: a corrupt or foreign entry, keep ours
                None => {
                    self.single_label.insert(worker.clone(), matrix.clone());
                }
            }
        }
        for (worker, classes) in &other.multi_label {
            for (class, counts) in classes {
                if !counts.iter().flatten().all(|x| x.is_finite() && *x >= 0.0) {
                    continue;
                }
                let mine = self
                    .multi_label
                    .entry(worker.clone())
                    .or_default()
                    .entry(*class)
                    .or_insert([[0.0; 2]; 2]);
                for (row_mine, row_theirs) in mine.iter_mut().zip(counts) {
                    for (a, b) in row_mine.iter_mut().zip(row_theirs) {
                        *a += b;
                    }
                }
            }
        }
        for (worker, agreement) in &other.agreement {
            if agreement.is_well_formed() {
                let mine = self.agreement.entry(worker.clone()).or_default();
                mine.agreed += agreement.agreed.min(agreement.total);
                mine.total += agreement.total;
            }
        }
        self.single_label_structure
            .add(&other.single_label_structure);
        for (class, evidence) in &other.multi_label_structure {
            if evidence.is_well_formed() {
                self.multi_label_structure
                    .entry(*class)
                    .or_default()
                    .add(evidence);
            }
        }
    }
}

/// Prior knowledge about workers, from earlier batches of the same job: pseudo-counts for the
/// classification engine and a reliability weight for the other task types.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerPriors {
    stats: WorkerStats,
}

impl WorkerPriors {
    /// No prior knowledge: every worker is judged by the current batch alone.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Priors made of summed stats (malformed entries are dropped).
    pub fn from_stats(stats: &WorkerStats) -> Self {
        let mut clean = WorkerStats::new();
        clean.absorb(stats);
        Self { stats: clean }
    }

    /// True when no worker is known.
    pub fn is_empty(&self) -> bool {
        self.stats.is_empty()
    }

    /// The summed stats behind these priors.
    pub fn stats(&self) -> &WorkerStats {
        &self.stats
    }

    /// The worker's single-label soft confusion counts from earlier batches, if any.
    pub fn single_label_counts(&self, worker: &str) -> Option<&ConfusionCounts> {
        self.stats.single_label.get(worker)
    }

    /// The worker's 2×2 counts for `class` of a multi-label task from earlier batches, if any.
    pub fn multi_label_counts(&self, worker: &str, class: usize) -> Option<&BinaryCounts> {
        self.stats.multi_label.get(worker)?.get(&class)
    }

    /// The structure evidence of earlier batches (single-label classification).
    pub fn single_label_structure(&self) -> StructureEvidence {
        self.stats.single_label_structure
    }

    /// The structure evidence of earlier batches for `class` of a multi-label task.
    pub fn multi_label_structure(&self, class: usize) -> StructureEvidence {
        self.stats
            .multi_label_structure
            .get(&class)
            .copied()
            .unwrap_or_default()
    }

    /// The worker's agreement pair from earlier batches, if any.
    pub fn agreement(&self, worker: &str) -> Option<Agreement> {
        self.stats.agreement.get(worker).copied()
    }

    /// An estimated probability that the worker's answer is right, pooling everything known about them
    /// (single-label confusion, multi-label per-class decisions, agreement pairs), with a uniform Beta(1, 1)
    /// prior so that one lucky answer does not read as certainty. `None` for a worker never seen.
    pub fn reliability(&self, worker: &str) -> Option<f64> {
        let mut correct = 0.0;
        let mut total = 0.0;
        if let Some(matrix) = self.stats.single_label.get(worker) {
            correct += matrix.correct();
            total += matrix.total();
        }
        if let Some(classes) = self.stats.multi_label.get(worker) {
            for counts in classes.values() {
                correct += counts[0][0] + counts[1][1];
                total += counts.iter().flatten().sum::<f64>();
            }
        }
        if let Some(agreement) = self.stats.agreement.get(worker) {
            correct += agreement.agreed;
            total += agreement.total;
        }
        (total > 0.0 && total.is_finite()).then(|| (correct + 1.0) / (total + 2.0))
    }
}

/// Why a [`JobWorkerQuality`] document could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WorkerQualityError {
    /// Not JSON, or not the expected shape.
    #[error("worker quality document is not valid JSON of the expected shape: {0}")]
    Json(#[from] serde_json::Error),
    /// Written by a newer groundwork that this one cannot read.
    #[error(
        "worker quality document version {found} is newer than the supported version {supported}"
    )]
    UnsupportedVersion {
        /// The version found in the document.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
}

/// One batch's contribution, with the order it was first recorded in (to find the oldest batches).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchContribution {
    /// Increasing record order within the document.
    #[serde(default)]
    pub sequence: u64,
    /// What the batch taught us.
    #[serde(default)]
    pub stats: WorkerStats,
}

/// The oldest batches, folded into one sum; `batch_keys` remembers which ones so that their redelivery is
/// recognised.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CompactedBatches {
    /// The keys of the batches folded in.
    pub batch_keys: BTreeSet<String>,
    /// Their summed stats.
    pub stats: WorkerStats,
}

/// The per-job worker-quality document the consolidation Lambda keeps between batches (serialised as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobWorkerQuality {
    /// The document format version ([`FORMAT_VERSION`]).
    pub version: u32,
    /// The sequence number the next newly recorded batch gets.
    #[serde(default)]
    pub next_sequence: u64,
    /// Per batch key, that batch's contribution.
    #[serde(default)]
    pub batches: BTreeMap<String, BatchContribution>,
    /// The oldest batches, folded together once there were more than [`DEFAULT_MAX_BATCHES`].
    #[serde(default)]
    pub compacted: CompactedBatches,
}

impl Default for JobWorkerQuality {
    fn default() -> Self {
        Self {
            version: FORMAT_VERSION,
            next_sequence: 0,
            batches: BTreeMap::new(),
            compacted: CompactedBatches::default(),
        }
    }
}

impl JobWorkerQuality {
    /// An empty document (a job's first batch, or the replacement for a corrupt document).
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a stored document. Unknown fields are ignored; a newer version is refused.
    pub fn from_json_slice(bytes: &[u8]) -> Result<Self, WorkerQualityError> {
        let document: Self = serde_json::from_slice(bytes)?;
        if document.version > FORMAT_VERSION {
            return Err(WorkerQualityError::UnsupportedVersion {
                found: document.version,
                supported: FORMAT_VERSION,
            });
        }
        Ok(document)
    }

    /// Parses a stored document, or starts afresh when it cannot be read: history only improves
    /// accuracy, so a corrupt document must never fail a batch.
    pub fn from_json_or_empty(bytes: &[u8]) -> Self {
        Self::from_json_slice(bytes).unwrap_or_default()
    }

    /// Parses a stored document for a batch that will write it back: a corrupt or older one starts
    /// afresh (it is then replaced), but a document of a *newer* format is refused even when its body no
    /// longer parses as ours, so that a function version rolled back during a deploy never overwrites
    /// the newer version's state.
    pub fn from_stored(bytes: &[u8]) -> Result<Self, WorkerQualityError> {
        #[derive(Deserialize)]
        struct Version {
            version: Option<u32>,
        }
        match Self::from_json_slice(bytes) {
            Ok(document) => Ok(document),
            Err(newer @ WorkerQualityError::UnsupportedVersion { .. }) => Err(newer),
            // Not our shape: look at its version alone (only here, so a readable document is parsed
            // once) before starting afresh.
            Err(WorkerQualityError::Json(_)) => {
                match serde_json::from_slice::<Version>(bytes)
                    .ok()
                    .and_then(|v| v.version)
                {
                    Some(found) if found > FORMAT_VERSION => {
                        Err(WorkerQualityError::UnsupportedVersion {
                            found,
                            supported: FORMAT_VERSION,
                        })
                    }
                    _ => Ok(Self::new()),
                }
            }
        }
    }

    /// Serialises the document (compact JSON).
    pub fn to_json_vec(&self) -> Result<Vec<u8>, WorkerQualityError> {
        Ok(serde_json::to_vec(self)?)
    }

    /// How many batches are kept individually (not counting the compacted ones).
    pub fn batch_count(&self) -> usize {
        self.batches.len()
    }

    /// True when the batch was recorded (individually or compacted).
    pub fn contains_batch(&self, batch_key: &str) -> bool {
        self.batches.contains_key(batch_key) || self.compacted.batch_keys.contains(batch_key)
    }

    /// The priors for consolidating batch `batch_key`: the sum of every other batch's stats. Excluding the
    /// batch itself is what makes a redelivery reproduce the same output.
    pub fn prior_excluding(&self, batch_key: &str) -> WorkerPriors {
        let mut sum = WorkerStats::new();
        sum.absorb(&self.compacted.stats);
        for (key, contribution) in &self.batches {
            if key != batch_key {
                sum.absorb(&contribution.stats);
            }
        }
        WorkerPriors { stats: sum }
    }

    /// Records (or replaces) batch `batch_key`'s contribution, then compacts beyond
    /// [`DEFAULT_MAX_BATCHES`]. A batch already folded into the compacted bucket is left as it was: its
    /// old contribution still counts and cannot be separated out (see [`DEFAULT_MAX_BATCHES`]).
    pub fn record(&mut self, batch_key: &str, stats: WorkerStats) {
        if self.compacted.batch_keys.contains(batch_key) {
            return;
        }
        let sequence = match self.batches.get(batch_key) {
            Some(existing) => existing.sequence,
            None => {
                let sequence = self.next_sequence;
                self.next_sequence = self.next_sequence.saturating_add(1);
                sequence
            }
        };
        self.batches
            .insert(batch_key.to_owned(), BatchContribution { sequence, stats });
        self.compact_to(DEFAULT_MAX_BATCHES);
    }

    /// Folds the oldest batches into the compacted bucket until at most `max_batches` remain individually.
    pub fn compact_to(&mut self, max_batches: usize) {
        while self.batches.len() > max_batches {
            let oldest = self
                .batches
                .iter()
                .min_by(|a, b| a.1.sequence.cmp(&b.1.sequence).then_with(|| a.0.cmp(b.0)))
                .map(|(key, _)| key.clone());
            let Some(oldest) = oldest else { break };
            if let Some(contribution) = self.batches.remove(&oldest) {
                self.compacted.stats.absorb(&contribution.stats);
                self.compacted.batch_keys.insert(oldest);
            }
        }
    }

    /// Merges another copy of the document (after a failed conditional write: `mine.merge(&theirs)`):
    /// the union of both sets of batches. For a batch key present in both, `self`'s entry wins (it is the
    /// one just computed). Compacted buckets cannot be unioned without double counting, so the one folding
    /// more batches is kept and the batches it covers are dropped from the individual list; batches only
    /// the other bucket covered are lost (a rare race between two compactions; it costs a little history).
    pub fn merge(&mut self, other: &JobWorkerQuality) {
        if other.compacted.batch_keys.len() > self.compacted.batch_keys.len() {
            self.compacted = other.compacted.clone();
        }
        let mut next_sequence = self.next_sequence.max(other.next_sequence);
        for (key, contribution) in &other.batches {
            if !self.batches.contains_key(key) {
                self.batches.insert(key.clone(), contribution.clone());
            }
        }
        let compacted_keys = &self.compacted.batch_keys;
        self.batches.retain(|key, _| !compacted_keys.contains(key));
        // Keep sequences unique and increasing so that "oldest" stays meaningful after the union.
        for contribution in self.batches.values() {
            next_sequence = next_sequence.max(contribution.sequence.saturating_add(1));
        }
        self.next_sequence = next_sequence;
        self.compact_to(DEFAULT_MAX_BATCHES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats_with(worker: &str, agreed: f64, total: f64) -> WorkerStats {
        let mut stats = WorkerStats::new();
        stats.add_agreement(worker, agreed, total);
        stats
    }

    #[test]
    fn soft_counts_are_stored_to_a_ten_thousandth() {
        let counts = ConfusionCounts {
            n_classes: 2,
            counts: vec![12.999_999_873_412, 0.000_012_5, 1.0 / 3.0, 0.0],
        };
        let json = serde_json::to_string(&counts).unwrap();
        assert_eq!(json, r#"{"n_classes":2,"counts":[13.0,0.0,0.3333,0.0]}"#);
        let back: ConfusionCounts = serde_json::from_str(&json).unwrap();
        assert!((back.total() - counts.total()).abs() < 2e-4);
    }

    #[test]
    fn prior_excludes_the_batch_itself_and_rerecording_replaces() {
        let mut doc = JobWorkerQuality::new();
        doc.record("b1", stats_with("alice", 8.0, 10.0));
        doc.record("b2", stats_with("alice", 1.0, 10.0));
        let prior_b2 = doc.prior_excluding("b2");
        assert_eq!(
            prior_b2.agreement("alice"),
            Some(Agreement {
                agreed: 8.0,
                total: 10.0
            })
        );
        doc.record("b2", stats_with("alice", 1.0, 10.0));
        assert_eq!(doc.batch_count(), 2);
        assert_eq!(doc.prior_excluding("b2"), prior_b2);
        let all = doc.prior_excluding("none");
        assert_eq!(
            all.agreement("alice"),
            Some(Agreement {
                agreed: 9.0,
                total: 20.0
            })
        );
    }

    #[test]
    fn structure_evidence_sums_over_other_batches_and_decides_at_two_standard_errors() {
        let evidence = |own_matrices, one_coin, squared_differences| StructureEvidence {
            own_matrices,
            one_coin,
            squared_differences,
        };
        let batch = |e: StructureEvidence| WorkerStats {
            single_label_structure: e,
            ..WorkerStats::new()
        };
        let mut doc = JobWorkerQuality::new();
        // Each batch alone leads by 1.5 standard errors; two of them by 2.1.
        doc.record("b1", batch(evidence(100.0, 103.0, 4.0)));
        doc.record("b2", batch(evidence(50.0, 53.0, 4.0)));
        doc.record("b3", batch(evidence(-1.0, 1.0, 1.0)));
        let single = doc.prior_excluding("b2").single_label_structure();
        assert_eq!(single, evidence(100.0, 103.0, 4.0), "b3 is malformed");
        assert!(!single.favours_one_coin());
        let mut job = single;
        job.add(&evidence(50.0, 53.0, 4.0));
        assert!(job.favours_one_coin());
        assert!(!evidence(10.0, 9.0, 0.0).favours_one_coin());
        assert!(!StructureEvidence::default().favours_one_coin());
        // Empty evidence is not written; written evidence reads back.
        let json = String::from_utf8(doc.to_json_vec().expect("serialises")).expect("utf-8");
        assert_eq!(json.matches("single_label_structure").count(), 3);
        assert!(!json.contains("multi_label_structure"));
        let back = JobWorkerQuality::from_json_slice(json.as_bytes()).expect("parses");
        assert_eq!(
            back.prior_excluding("b3").single_label_structure(),
            evidence(150.0, 156.0, 8.0)
        );
    }

    #[test]
    fn reliability_is_smoothed_and_none_for_strangers() {
        let mut stats = stats_with("alice", 9.0, 10.0);
        stats.add_confusion("bob", 2, 0, 0, 3.0);
        stats.add_confusion("bob", 2, 1, 0, 1.0);
        stats.add_binary("carol", 3, true, true, 2.0);
        let priors = WorkerPriors::from_stats(&stats);
        assert_eq!(priors.reliability("alice"), Some(10.0 / 12.0));
        assert_eq!(priors.reliability("bob"), Some(4.0 / 6.0));
        assert_eq!(priors.reliability("carol"), Some(3.0 / 4.0));
        assert_eq!(priors.reliability("dave"), None);
    }

    #[test]
    fn compaction_bounds_the_document_and_keeps_the_sum() {
        let mut doc = JobWorkerQuality::new();
        for i in 0..(DEFAULT_MAX_BATCHES + 5) {
            doc.record(&format!("batch-{i}"), stats_with("w", 1.0, 1.0));
        }
        assert_eq!(doc.batch_count(), DEFAULT_MAX_BATCHES);
        assert_eq!(doc.compacted.batch_keys.len(), 5);
        assert!(doc.compacted.batch_keys.contains("batch-0"));
        let total = doc.prior_excluding("none").agreement("w").map(|a| a.total);
        assert_eq!(total, Some((DEFAULT_MAX_BATCHES + 5) as f64));
        // Redelivering a compacted batch leaves the document as it was.
        let before = doc.clone();
        doc.record("batch-0", stats_with("w", 1.0, 1.0));
        assert_eq!(doc, before);
    }

    #[test]
    fn a_block_of_counts_adds_like_its_cells() {
        let block = [3.0, 0.0, f64::NAN, 1.5];
        let mut by_cell = WorkerStats::new();
        for (i, &w) in block.iter().enumerate() {
            by_cell.add_confusion("w", 2, i / 2, i % 2, w);
        }
        let mut by_block = WorkerStats::new();
        by_block.add_confusion_block("w", 2, &block);
        assert_eq!(by_block, by_cell);
        // Nothing to count: no entry at all, as cell by cell.
        by_block.add_confusion_block("idle", 2, &[0.0; 4]);
        assert_eq!(by_block, by_cell);
    }

    #[test]
    fn merge_is_a_union_by_batch_key_with_ours_winning() {
        let mut base = JobWorkerQuality::new();
        base.record("b1", stats_with("w", 1.0, 1.0));
        let mut theirs = base.clone();
        theirs.record("b2", stats_with("w", 0.0, 1.0));
        let mut mine = base.clone();
        mine.record("b3", stats_with("w", 1.0, 2.0));
        mine.record("b1", stats_with("w", 5.0, 5.0));
        mine.merge(&theirs);
        assert_eq!(mine.batch_count(), 3);
        let all = mine.prior_excluding("none").agreement("w");
        assert_eq!(
            all,
            Some(Agreement {
                agreed: 6.0,
                total: 8.0
            })
        );
        // Merging again changes nothing.
        let once = mine.clone();
        mine.merge(&theirs);
        assert_eq!(mine, once);
    }

    #[test]
    fn json_roundtrip_tolerates_unknown_fields_and_refuses_newer_versions() {
        let mut doc = JobWorkerQuality::new();
        let mut stats = stats_with("alice", 2.0, 3.0);
        stats.add_confusion("alice", 3, 1, 2, 0.25);
        stats.add_binary("alice", 4, false, true, 0.5);
        doc.record("b1", stats);
        let json = doc.to_json_vec().expect("serialises");
        assert_eq!(
            JobWorkerQuality::from_json_slice(&json).expect("parses"),
            doc
        );

        let mut value: serde_json::Value = serde_json::from_slice(&json).expect("json");
        value["some_future_field"] = serde_json::json!({"x": 1});
        value["batches"]["b1"]["extra"] = serde_json::json!(true);
        let bytes = serde_json::to_vec(&value).expect("json");
        assert_eq!(
            JobWorkerQuality::from_json_slice(&bytes).expect("parses"),
            doc
        );

        value["version"] = serde_json::json!(FORMAT_VERSION + 1);
        let bytes = serde_json::to_vec(&value).expect("json");
        assert!(matches!(
            JobWorkerQuality::from_json_slice(&bytes),
            Err(WorkerQualityError::UnsupportedVersion { .. })
        ));
        assert_eq!(
            JobWorkerQuality::from_json_or_empty(&bytes),
            JobWorkerQuality::new()
        );
        assert_eq!(
            JobWorkerQuality::from_json_or_empty(b"{not json"),
            JobWorkerQuality::new()
        );
        // For a batch that writes back: newer is refused even when the rest is not our shape.
        assert!(JobWorkerQuality::from_stored(&bytes).is_err());
        let newer_shape = format!(r#"{{"version":{},"batches":[1,2]}}"#, FORMAT_VERSION + 1);
        assert!(matches!(
            JobWorkerQuality::from_stored(newer_shape.as_bytes()),
            Err(WorkerQualityError::UnsupportedVersion { found, .. }) if found == FORMAT_VERSION + 1
        ));
        assert_eq!(
            JobWorkerQuality::from_stored(b"{not json").unwrap(),
            JobWorkerQuality::new()
        );
        let older = br#"{"version":1,"batches":[]}"#;
        assert_eq!(
            JobWorkerQuality::from_stored(older).unwrap(),
            JobWorkerQuality::new(),
            "a corrupt document of our format is replaced"
        );
    }

    #[test]
    fn malformed_counts_are_dropped_from_priors() {
        let json = br#"{"version":1,"batches":{"b":{"sequence":0,"stats":{
            "single_label":{"a":{"n_classes":2,"counts":[1,2,3]},"b":{"n_classes":2,"counts":[1,0,0,-1]},
                            "c":{"n_classes":2,"counts":[3,1,0,2]}},
            "agreement":{"d":{"agreed":-1,"total":2}}}}}}"#;
        let doc = JobWorkerQuality::from_json_slice(json).expect("parses");
        let priors = doc.prior_excluding("other");
        assert!(priors.single_label_counts("a").is_none());
        assert!(priors.single_label_counts("b").is_none());
        assert_eq!(
            priors.single_label_counts("c").map(ConfusionCounts::total),
            Some(6.0)
        );
        assert_eq!(priors.reliability("d"), None);
    }
}
