//! Simulated workers. Each answer is a pure function of (data object, worker), so an object gets the same
//! answers in whichever job it is worked on: a continued job answers exactly as one uninterrupted job
//! would have.
//!
//! - [`ClassWorkers`]: classification workers with a known accuracy per class.
//! - [`BoxWorkers`]: bounding-box workers who jitter edges, miss boxes and draw extra ones.
//! - [`Replay`]: the answers of a real crowd (`data/crowd/<set>/labels.csv`, gold in `gold.csv`), so the
//!   accuracy shown is real.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use groundwork::ManifestLine;
use serde::{Deserialize, Serialize};

use crate::error::SimError;

/// One worker's answer to one object.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerAnswer {
    /// e.g. `private.us-east-1.sim-07`.
    pub worker_id: String,
    /// The crowd form's output as JSON text (`annotationData.content`).
    pub content: String,
    /// Seconds spent.
    pub time_spent: f64,
}

/// A true box, in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrueBox {
    /// Index into the job's labels.
    pub class: usize,
    /// Left edge.
    pub left: f64,
    /// Top edge.
    pub top: f64,
    /// Width.
    pub width: f64,
    /// Height.
    pub height: f64,
}

/// The truth about an object, when the workforce knows it.
#[derive(Debug, Clone, PartialEq)]
pub enum Gold {
    /// The class name.
    Class(String),
    /// The boxes.
    Boxes(Vec<TrueBox>),
}

/// Who answers a job's tasks.
pub trait Workforce: Send + Sync + std::fmt::Debug {
    /// Up to `n` answers for `object`; `labels` are the job's label categories.
    fn answers(&self, object: &ManifestLine, n: usize, labels: &[String]) -> Vec<WorkerAnswer>;
    /// The truth, if known.
    fn gold(&self, object: &ManifestLine, labels: &[String]) -> Option<Gold>;
    /// One line saying what this workforce is.
    fn describe(&self) -> String;
}

/// FNV-1a, for stable seeds.
pub fn hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// splitmix64: a small deterministic generator.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        // 53 random bits as a fraction.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// The object's identity: its `source-ref` or `source`.
pub fn object_key(object: &ManifestLine) -> &str {
    object.source().value()
}

/// The file stem of an object's `source-ref` (`s3://b/img/81991168.jpg` → `81991168`).
pub fn object_stem(object: &ManifestLine) -> &str {
    let key = object_key(object);
    let file = key.rsplit('/').next().unwrap_or(key);
    file.split('.').next().unwrap_or(file)
}

fn worker_id(n: usize) -> String {
    format!("private.us-east-1.sim-{n:03}")
}

fn classifier_answer(label: &str) -> String {
    #[derive(Serialize)]
    struct Label<'a> {
        label: &'a str,
    }
    #[derive(Serialize)]
    struct Form<'a> {
        #[serde(rename = "crowd-image-classifier")]
        classifier: Label<'a>,
    }
    serde_json::to_string(&Form {
        classifier: Label { label },
    })
    .unwrap_or_default()
}

/// Workers picked for an object: `n` distinct ones of `pool`, in a stable order.
fn pick(object: &str, pool: usize, n: usize) -> Vec<usize> {
    let mut rng = Rng::new(hash(&[object, "pick"]));
    let mut all: Vec<usize> = (0..pool).collect();
    for i in (1..all.len()).rev() {
        let j = rng.below(i + 1);
        all.swap(i, j);
    }
    all.truncate(n.min(pool));
    all
}

/// Classification workers: worker `w` answers class `c` correctly with probability `accuracy[w][c]`,
/// otherwise a uniformly chosen other class. The true class of an object is a stable hash of it.
#[derive(Debug, Clone)]
pub struct ClassWorkers {
    /// Per worker, per class.
    pub accuracy: Vec<Vec<f64>>,
}

impl ClassWorkers {
    /// `pool` workers with accuracy spread evenly between `low` and `high`, the same for every class
    /// but the last, which every worker finds `hard` points harder.
    pub fn spread(pool: usize, classes: usize, low: f64, high: f64, hard: f64) -> ClassWorkers {
        let accuracy = (0..pool)
            .map(|w| {
                let a = if pool > 1 {
                    low + (high - low) * w as f64 / (pool - 1) as f64
                } else {
                    high
                };
                (0..classes)
                    .map(|c| {
                        if c + 1 == classes {
                            (a - hard).max(0.0)
                        } else {
                            a
                        }
                    })
                    .collect()
            })
            .collect();
        ClassWorkers { accuracy }
    }

    fn truth(object: &ManifestLine, classes: usize) -> usize {
        (hash(&[object_key(object), "truth"]) % classes.max(1) as u64) as usize
    }
}

impl Workforce for ClassWorkers {
    fn answers(&self, object: &ManifestLine, n: usize, labels: &[String]) -> Vec<WorkerAnswer> {
        if labels.is_empty() {
            return Vec::new();
        }
        let key = object_key(object);
        let truth = Self::truth(object, labels.len());
        pick(key, self.accuracy.len(), n)
            .into_iter()
            .map(|w| {
                let mut rng = Rng::new(hash(&[key, &w.to_string()]));
                let p = self.accuracy[w].get(truth).copied().unwrap_or(0.5);
                let class = if rng.unit() < p || labels.len() == 1 {
                    truth
                } else {
                    let other = rng.below(labels.len() - 1);
                    if other >= truth { other + 1 } else { other }
                };
                WorkerAnswer {
                    worker_id: worker_id(w),
                    content: classifier_answer(&labels[class]),
                    time_spent: 5.0 + 20.0 * rng.unit(),
                }
            })
            .collect()
    }

    fn gold(&self, object: &ManifestLine, labels: &[String]) -> Option<Gold> {
        let truth = Self::truth(object, labels.len());
        labels.get(truth).cloned().map(Gold::Class)
    }

    fn describe(&self) -> String {
        let mean: f64 = self
            .accuracy
            .iter()
            .map(|w| w.iter().sum::<f64>() / w.len().max(1) as f64)
            .sum::<f64>()
            / self.accuracy.len().max(1) as f64;
        format!(
            "{} simulated classification workers, mean accuracy {mean:.2}",
            self.accuracy.len()
        )
    }
}

/// Bounding-box workers on images of `width`×`height` with 1–3 true boxes each.
#[derive(Debug, Clone)]
pub struct BoxWorkers {
    /// Workers.
    pub pool: usize,
    /// Edge jitter, as a share of the box's size (standard deviation-ish, uniform).
    pub jitter: f64,
    /// Chance a worker misses a box.
    pub miss: f64,
    /// Chance a worker draws one extra box.
    pub extra: f64,
    /// Chance a worker gives a box the wrong class.
    pub wrong_class: f64,
    /// Image width.
    pub width: u32,
    /// Image height.
    pub height: u32,
}

impl BoxWorkers {
    fn truth(&self, object: &ManifestLine, classes: usize) -> Vec<TrueBox> {
        let mut rng = Rng::new(hash(&[object_key(object), "boxes"]));
        let count = 1 + rng.below(3);
        let (w, h) = (f64::from(self.width), f64::from(self.height));
        (0..count)
            .map(|_| {
                let width = w * (0.12 + 0.2 * rng.unit());
                let height = h * (0.12 + 0.2 * rng.unit());
                TrueBox {
                    class: rng.below(classes.max(1)),
                    left: (w - width) * rng.unit(),
                    top: (h - height) * rng.unit(),
                    width,
                    height,
                }
            })
            .collect()
    }
}

#[derive(Serialize, Deserialize)]
struct DrawnBox {
    height: i64,
    label: String,
    left: i64,
    top: i64,
    width: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImageProperties {
    height: u32,
    width: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BoxAnswer {
    bounding_boxes: Vec<DrawnBox>,
    input_image_properties: ImageProperties,
}

#[derive(Serialize)]
struct BoxForm {
    #[serde(rename = "boundingBox")]
    bounding_box: BoxAnswer,
}

impl Workforce for BoxWorkers {
    fn answers(&self, object: &ManifestLine, n: usize, labels: &[String]) -> Vec<WorkerAnswer> {
        if labels.is_empty() {
            return Vec::new();
        }
        let key = object_key(object);
        let truth = self.truth(object, labels.len());
        let clamp = |v: f64, max: u32| v.round().clamp(0.0, f64::from(max)) as i64;
        pick(key, self.pool, n)
            .into_iter()
            .map(|w| {
                let mut rng = Rng::new(hash(&[key, &w.to_string(), "draw"]));
                let mut boxes = Vec::new();
                for t in &truth {
                    if rng.unit() < self.miss {
                        continue;
                    }
                    let mut j = |size: f64| (rng.unit() * 2.0 - 1.0) * self.jitter * size;
                    let left = t.left + j(t.width);
                    let top = t.top + j(t.height);
                    let right = t.left + t.width + j(t.width);
                    let bottom = t.top + t.height + j(t.height);
                    let class = if rng.unit() < self.wrong_class {
                        rng.below(labels.len())
                    } else {
                        t.class
                    };
                    boxes.push(DrawnBox {
                        left: clamp(left, self.width),
                        top: clamp(top, self.height),
                        width: (clamp(right, self.width) - clamp(left, self.width)).max(1),
                        height: (clamp(bottom, self.height) - clamp(top, self.height)).max(1),
                        label: labels[class].clone(),
                    });
                }
                if rng.unit() < self.extra {
                    let (bw, bh) = (f64::from(self.width) * 0.1, f64::from(self.height) * 0.1);
                    boxes.push(DrawnBox {
                        left: clamp((f64::from(self.width) - bw) * rng.unit(), self.width),
                        top: clamp((f64::from(self.height) - bh) * rng.unit(), self.height),
                        width: bw as i64,
                        height: bh as i64,
                        label: labels[rng.below(labels.len())].clone(),
                    });
                }
                let form = BoxForm {
                    bounding_box: BoxAnswer {
                        bounding_boxes: boxes,
                        input_image_properties: ImageProperties {
                            height: self.height,
                            width: self.width,
                        },
                    },
                };
                WorkerAnswer {
                    worker_id: worker_id(w),
                    content: serde_json::to_string(&form).unwrap_or_default(),
                    time_spent: 20.0 + 40.0 * rng.unit(),
                }
            })
            .collect()
    }

    fn gold(&self, object: &ManifestLine, labels: &[String]) -> Option<Gold> {
        Some(Gold::Boxes(self.truth(object, labels.len())))
    }

    fn describe(&self) -> String {
        format!(
            "{} simulated box workers (jitter {:.0} %, miss {:.0} %, extra box {:.0} %, wrong class {:.0} %)",
            self.pool,
            self.jitter * 100.0,
            self.miss * 100.0,
            self.extra * 100.0,
            self.wrong_class * 100.0
        )
    }
}

/// A real crowd's answers, replayed: the object whose `source-ref` file stem is a task id gets that
/// task's answers, in the file's order, starting at `offset` (so a follow-up job can be answered by
/// workers the first job did not use).
#[derive(Debug, Clone)]
pub struct Replay {
    /// The set's name (its folder).
    pub name: String,
    /// Task → (worker, label), in file order.
    pub answers: BTreeMap<String, Vec<(String, String)>>,
    /// Task → gold label.
    pub gold: BTreeMap<String, String>,
    /// First answer used.
    pub offset: usize,
}

#[derive(Deserialize)]
struct LabelRow {
    task: String,
    worker: String,
    label: String,
}

#[derive(Deserialize)]
struct GoldRow {
    task: String,
    label: String,
}

fn read_csv<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>, SimError> {
    let text = std::fs::read_to_string(path).map_err(|e| SimError::Crowd {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .collect();
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: BTreeMap<&str, &str> = header
            .iter()
            .copied()
            .zip(line.split(',').map(str::trim))
            .collect();
        let value = serde_json::to_value(&fields).map_err(SimError::json("a CSV row"))?;
        let row = serde_json::from_value(value).map_err(|e| SimError::Crowd {
            path: path.to_owned(),
            message: format!("line {}: {e}", i + 2),
        })?;
        rows.push(row);
    }
    Ok(rows)
}

impl Replay {
    /// Loads `dir/labels.csv` and `dir/gold.csv`.
    pub fn load(dir: &Path) -> Result<Replay, SimError> {
        let mut answers: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for row in read_csv::<LabelRow>(&dir.join("labels.csv"))? {
            answers
                .entry(row.task)
                .or_default()
                .push((row.worker, row.label));
        }
        let gold = read_csv::<GoldRow>(&dir.join("gold.csv"))?
            .into_iter()
            .map(|r| (r.task, r.label))
            .collect();
        Ok(Replay {
            name: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            answers,
            gold,
            offset: 0,
        })
    }

    /// The same answers from `offset` on.
    pub fn with_offset(&self, offset: usize) -> Replay {
        Replay {
            offset,
            ..self.clone()
        }
    }

    /// Every label used, sorted (numerically when they are numbers).
    pub fn labels(&self) -> Vec<String> {
        let set: BTreeSet<&String> = self
            .answers
            .values()
            .flatten()
            .map(|(_, l)| l)
            .chain(self.gold.values())
            .collect();
        let mut labels: Vec<String> = set.into_iter().cloned().collect();
        labels.sort_by(|a, b| match (a.parse::<i64>(), b.parse::<i64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => a.cmp(b),
        });
        labels
    }

    /// Tasks with gold, in the gold file's order of task ids (sorted).
    pub fn tasks(&self) -> Vec<String> {
        self.gold
            .keys()
            .filter(|t| self.answers.contains_key(*t))
            .cloned()
            .collect()
    }
}

impl Workforce for Replay {
    fn answers(&self, object: &ManifestLine, n: usize, _labels: &[String]) -> Vec<WorkerAnswer> {
        let task = object_stem(object);
        let Some(all) = self.answers.get(task) else {
            return Vec::new();
        };
        all.iter()
            .skip(self.offset)
            .take(n)
            .map(|(worker, label)| WorkerAnswer {
                worker_id: format!("public.us-east-1.{worker}"),
                content: classifier_answer(label),
                time_spent: 10.0,
            })
            .collect()
    }

    fn gold(&self, object: &ManifestLine, _labels: &[String]) -> Option<Gold> {
        self.gold.get(object_stem(object)).cloned().map(Gold::Class)
    }

    fn describe(&self) -> String {
        let answers: usize = self.answers.values().map(Vec::len).sum();
        format!(
            "replay of the real crowd set {} ({} tasks, {answers} answers), answers from #{} on",
            self.name,
            self.answers.len(),
            self.offset + 1
        )
    }
}
