//! Synthetic crowds with known truth, for tests, benches and the CLI.
//!
//! A port of the idea of `tests/scripts/crowdkit/crowdkit_bench.py gen` (not of its random stream): a pool of workers
//! with per-worker `K × K` confusion matrices (65 % good, 15 % noisy, 10 % spammers, 10 % biased),
//! heavy-tailed (lognormal) activity, a fixed number of distinct workers per task and a mildly imbalanced
//! class prior (Dirichlet(5)). It carries its own small PRNG (xoshiro256**) so that the library needs no
//! `rand` dependency and a seed gives the same set on every platform.

use super::csv::{LabelRow, LabelTable};

/// A small, fast, seedable PRNG (xoshiro256**, seeded through splitmix64).
#[derive(Debug, Clone)]
pub struct SmallRng {
    state: [u64; 4],
}

impl SmallRng {
    /// A generator from a seed.
    pub fn seed_from_u64(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Self {
            state: [next(), next(), next(), next()],
        }
    }

    /// 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[low, high)`.
    pub fn uniform_range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.uniform()
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Standard exponential.
    pub fn exponential(&mut self) -> f64 {
        -(1.0 - self.uniform()).ln()
    }

    /// Dirichlet with the same integer concentration on `n` components (sums of exponentials are
    /// Gamma(integer) draws, which is all the generator needs).
    pub fn dirichlet_integer(&mut self, n: usize, concentration: u32) -> Vec<f64> {
        let mut draws: Vec<f64> = (0..n)
            .map(|_| (0..concentration.max(1)).map(|_| self.exponential()).sum())
            .collect();
        let sum: f64 = draws.iter().sum();
        draws.iter_mut().for_each(|d| *d /= sum);
        draws
    }

    /// An index drawn from (unnormalised) cumulative weights.
    pub fn pick_cumulative(&mut self, cumulative: &[f64]) -> usize {
        let total = cumulative.last().copied().unwrap_or(0.0);
        let target = self.uniform() * total;
        cumulative
            .partition_point(|&c| c <= target)
            .min(cumulative.len().saturating_sub(1))
    }

    /// An index drawn from probabilities.
    pub fn pick(&mut self, probabilities: &[f64]) -> usize {
        let mut target = self.uniform() * probabilities.iter().sum::<f64>();
        for (i, p) in probabilities.iter().enumerate() {
            if target < *p {
                return i;
            }
            target -= p;
        }
        probabilities.len().saturating_sub(1)
    }
}

/// The kinds of synthetic worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerKind {
    /// Diagonal accuracy uniform in 0.70–0.95.
    Good,
    /// Diagonal accuracy uniform in 1/K–0.60.
    Noisy,
    /// Uniformly random answers.
    Spammer,
    /// Answers one favourite class with probability 0.7, otherwise at random.
    Biased,
}

/// Shape of a synthetic single-label set. The defaults are the bench's (200 workers, 5 per task, 4 classes).
#[derive(Debug, Clone)]
pub struct SyntheticConfig {
    /// Number of tasks (items).
    pub tasks: usize,
    /// Distinct workers per task.
    pub overlap: usize,
    /// Size of the worker pool.
    pub workers: usize,
    /// Number of classes.
    pub classes: usize,
    /// Random seed.
    pub seed: u64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            tasks: 10_000,
            overlap: 5,
            workers: 200,
            classes: 4,
            seed: 0,
        }
    }
}

/// A generated set: the labels as a [`LabelTable`] (tasks `"0"`…, workers `"w0"`…, classes `"0"`…) and
/// the true class of every task (indexed like [`LabelTable::tasks`]).
#[derive(Debug, Clone)]
pub struct SyntheticSet {
    /// The workers' answers.
    pub table: LabelTable,
    /// The true class of every task.
    pub truth: Vec<usize>,
    /// The kind of every worker (indexed by worker number, not by table order).
    pub kinds: Vec<WorkerKind>,
}

impl SyntheticSet {
    /// The truth as `Option`s, ready for [`super::accuracy`].
    pub fn gold(&self) -> Vec<Option<usize>> {
        self.truth.iter().copied().map(Some).collect()
    }
}

fn draw_kind(rng: &mut SmallRng) -> WorkerKind {
    match rng.pick(&[0.65, 0.15, 0.10, 0.10]) {
        0 => WorkerKind::Good,
        1 => WorkerKind::Noisy,
        2 => WorkerKind::Spammer,
        _ => WorkerKind::Biased,
    }
}

fn confusion_row(
    rng: &mut SmallRng,
    kind: WorkerKind,
    worker: usize,
    class: usize,
    k: usize,
) -> Vec<f64> {
    let mut row = match kind {
        WorkerKind::Spammer => vec![1.0 / k as f64; k],
        WorkerKind::Biased => {
            let mut row: Vec<f64> = rng
                .dirichlet_integer(k, 1)
                .iter()
                .map(|p| p * 0.3)
                .collect();
            row[worker % k] += 0.7;
            row
        }
        WorkerKind::Good | WorkerKind::Noisy => {
            let accuracy = if kind == WorkerKind::Good {
                rng.uniform_range(0.70, 0.95)
            } else {
                rng.uniform_range(1.0 / k as f64, 0.60)
            };
            let off = rng.dirichlet_integer(k - 1, 1);
            let mut row = Vec::with_capacity(k);
            row.extend(off[..class].iter().map(|p| p * (1.0 - accuracy)));
            row.push(accuracy);
            row.extend(off[class..].iter().map(|p| p * (1.0 - accuracy)));
            row
        }
    };
    let sum: f64 = row.iter().sum();
    row.iter_mut().for_each(|p| *p /= sum);
    row
}

/// Generates a single-label set (see the module docs). Needs at least 2 classes and `overlap ≤ workers`;
/// smaller values are raised to those minimums.
pub fn generate(config: &SyntheticConfig) -> SyntheticSet {
    let k = config.classes.max(2);
    let n_workers = config.workers.max(1);
    let overlap = config.overlap.clamp(1, n_workers);
    let mut rng = SmallRng::seed_from_u64(config.seed);
    let kinds: Vec<WorkerKind> = (0..n_workers).map(|_| draw_kind(&mut rng)).collect();
    let confusion: Vec<Vec<Vec<f64>>> = kinds
        .iter()
        .enumerate()
        .map(|(w, &kind)| {
            (0..k)
                .map(|c| confusion_row(&mut rng, kind, w, c, k))
                .collect()
        })
        .collect();
    let prior = rng.dirichlet_integer(k, 5);
    let truth: Vec<usize> = (0..config.tasks).map(|_| rng.pick(&prior)).collect();
    let mut cumulative = Vec::with_capacity(n_workers);
    let mut running = 0.0;
    for _ in 0..n_workers {
        running += rng.normal().exp();
        cumulative.push(running);
    }

    // Workers appear in the table in first-seen order, so remember each pool index's table index.
    let mut table_index = vec![usize::MAX; n_workers];
    let mut workers = Vec::new();
    let mut rows = Vec::with_capacity(config.tasks * overlap);
    let mut chosen = Vec::with_capacity(overlap);
    for (task, &true_class) in truth.iter().enumerate() {
        chosen.clear();
        // Distinct workers proportional to activity: redraw duplicates (cheap while overlap ≪ pool).
        while chosen.len() < overlap {
            let w = rng.pick_cumulative(&cumulative);
            if !chosen.contains(&w) {
                chosen.push(w);
            }
        }
        for &w in &chosen {
            let answer = rng.pick(&confusion[w][true_class]);
            if table_index[w] == usize::MAX {
                table_index[w] = workers.len();
                workers.push(format!("w{w}"));
            }
            rows.push(LabelRow {
                task,
                worker: table_index[w],
                class: answer,
            });
        }
    }
    SyntheticSet {
        table: LabelTable {
            tasks: (0..config.tasks).map(|t| t.to_string()).collect(),
            workers,
            classes: (0..k).map(|c| c.to_string()).collect(),
            rows,
        },
        truth,
        kinds,
    }
}

/// A generated multi-label set: per task, each worker's chosen classes; and the true class set per task.
#[derive(Debug, Clone)]
pub struct SyntheticMultiLabelSet {
    /// Worker ids (`"w0"`…).
    pub workers: Vec<String>,
    /// Per task: `(worker index, chosen classes)`.
    pub answers: Vec<Vec<(usize, Vec<usize>)>>,
    /// Per task: which classes are truly present.
    pub truth: Vec<Vec<bool>>,
}

/// Generates a multi-label set: `labels` classes, each truly present with probability `positive_rate`;
/// every worker has a per-class sensitivity and specificity drawn by kind (good, noisy, spammer, and
/// "biased" workers who tick too much).
pub fn generate_multi_label(
    config: &SyntheticConfig,
    positive_rate: f64,
) -> SyntheticMultiLabelSet {
    let labels = config.classes.max(1);
    let n_workers = config.workers.max(1);
    let overlap = config.overlap.clamp(1, n_workers);
    let mut rng = SmallRng::seed_from_u64(config.seed ^ 0x006d_756c_7469);
    let kinds: Vec<WorkerKind> = (0..n_workers).map(|_| draw_kind(&mut rng)).collect();
    // (sensitivity, specificity) per worker per label.
    let quality: Vec<Vec<(f64, f64)>> = kinds
        .iter()
        .map(|&kind| {
            (0..labels)
                .map(|_| match kind {
                    WorkerKind::Good => {
                        (rng.uniform_range(0.75, 0.97), rng.uniform_range(0.85, 0.99))
                    }
                    WorkerKind::Noisy => {
                        (rng.uniform_range(0.5, 0.75), rng.uniform_range(0.6, 0.85))
                    }
                    WorkerKind::Spammer => (positive_rate, 1.0 - positive_rate),
                    WorkerKind::Biased => {
                        (rng.uniform_range(0.85, 0.99), rng.uniform_range(0.4, 0.6))
                    }
                })
                .collect()
        })
        .collect();
    let mut cumulative = Vec::with_capacity(n_workers);
    let mut running = 0.0;
    for _ in 0..n_workers {
        running += rng.normal().exp();
        cumulative.push(running);
    }
    let mut answers = Vec::with_capacity(config.tasks);
    let mut truth = Vec::with_capacity(config.tasks);
    for _ in 0..config.tasks {
        let present: Vec<bool> = (0..labels).map(|_| rng.uniform() < positive_rate).collect();
        let mut chosen = Vec::with_capacity(overlap);
        while chosen.len() < overlap {
            let w = rng.pick_cumulative(&cumulative);
            if !chosen.contains(&w) {
                chosen.push(w);
            }
        }
        let task_answers = chosen
            .iter()
            .map(|&w| {
                let picked = (0..labels)
                    .filter(|&c| {
                        let (sensitivity, specificity) = quality[w][c];
                        let p_tick = if present[c] {
                            sensitivity
                        } else {
                            1.0 - specificity
                        };
                        rng.uniform() < p_tick
                    })
                    .collect();
                (w, picked)
            })
            .collect();
        answers.push(task_answers);
        truth.push(present);
    }
    SyntheticMultiLabelSet {
        workers: (0..n_workers).map(|w| format!("w{w}")).collect(),
        answers,
        truth,
    }
}
