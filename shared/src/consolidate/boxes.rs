//! Bounding-box consolidation (`crowd-bounding-box`, and bounding-box adjustment): several workers' boxes for
//! one image in, one list of boxes with a confidence each out, in Ground Truth's `groundtruth/object-detection`
//! format (`contracts.md` §4.2).
//!
//! ## Algorithm
//! 1. **Parse** every worker's answer (the driver reads each into a [`BoxAnswer`]). A malformed answer skips
//!    that worker; a malformed box (missing or non-numeric field, non-positive size, unknown label, outside
//!    the image) drops that box. Every skip is returned with its reason ([`Dropped`]). Boxes are clipped to
//!    the image. Work is bounded: at most [`BoxConfig::max_workers`] workers and
//!    [`BoxConfig::max_boxes_per_worker`] boxes per worker.
//! 2. **Image size**: the size most workers report; a worker reporting another size is skipped (its pixel
//!    coordinates belong to another picture). Without any, the prior label's size, else the boxes' extent.
//! 3. **Match** boxes across workers into clusters holding at most one box per worker (`matching`).
//!    Workers are taken in order of reliability; each worker's boxes are matched to the current cluster
//!    centres by an *optimal* assignment (`pathfinding`'s `kuhn_munkres`) maximising IoU (plus a small
//!    bonus when the labels agree, so that two overlapping objects of different classes stay apart), among
//!    pairs with IoU ≥ [`BoxConfig::match_iou`] (0.4: two sloppy boxes of one object overlap each other less
//!    than either overlaps the object). The assignment is solved per connected component of the "could
//!    match" graph, which keeps it cheap: in a typical image every component is a single pair. Then up to
//!    [`BoxConfig::refinement_passes`] passes re-match every worker against the fixed robust centres of the
//!    previous pass, removing the dependence on the order in which workers were seen.
//! 4. **Keep** a cluster when the weights of the workers who drew it reach [`BoxConfig::quorum`] of the total
//!    weight of all usable workers (a worker who drew nothing votes against every box). The default quorum
//!    is 0.4: with unknown workers, two of three, two of five, three of seven, four of nine; with two
//!    workers, either one's box; one worker's boxes are all kept. Spurious boxes rarely coincide, so two
//!    workers agreeing on a box is already strong evidence, while a box missed by a few is common; on the
//!    synthetic crowd of the tests 0.4 reaches F1 0.991 where one half reaches 0.975.
//! 5. **Box**: every edge is a weighted mean of the members' edges, weighted by reliability × *precision*:
//!    each worker's edge noise on this image is estimated from how far all its boxes sit from the clusters'
//!    robust centres (weighted medians), shrunk toward the crowd's, and an edge far off its worker's own
//!    noise (a slip of the mouse) is down-weighted (Huber). A careful worker's edges thus count several
//!    times a sloppy one's without anyone saying who is careful, which is what lets the consensus beat the
//!    best single worker's boxes. **Class**: weighted vote, ties to the smaller class id.
//! 6. **Confidence** per box, the probability that it is a correct detection, as the product of three
//!    probabilities: that the object exists (each worker who drew it adds `ln(recall / false alarm)` to the
//!    log-odds, each who did not `ln((1 - recall) / (1 - false alarm))`, weighted by reliability), that the
//!    class is right (one-coin posterior of the class votes), and that the box is well placed (from the
//!    members' mean IoU with the consolidated box). Rounded to two decimals; `0.00` for a lone worker of
//!    unknown reliability, like Ground Truth, or the worker's reliability when it is known. The rates
//!    ([`BoxConfig::worker_recall`], [`BoxConfig::false_alarm_rate`], [`BoxConfig::label_accuracy`]) were
//!    set so that confidences are calibrated on the synthetic crowd of the tests (expected calibration
//!    error 0.02); refit them from real jobs when available.
//!
//! Class ids are positions in the job's label list; when the job has none, ids follow the sorted labels seen.
//! Adjustment jobs also get `adjustment-status`: `adjusted` when a worker reports `initialValueModified` or
//! the consolidated boxes differ from the prior label (by class, count, or more than one pixel).

pub(crate) mod matching;

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Serialize;
use serde::de::{MapAccess, SeqAccess};
use serde_json::{Map, Value};

pub use super::crowd::{Dropped, NoUsableAnswer, WorkerAgreement, WorkerAnswer};
use super::crowd::{GeometryLabel, geometry_results, mean, no_usable_reason};
use super::crowd::{ReasonLog, existence_probability, round_confidence, vote_posterior};
use super::driver::{Driver, ObjectResult, Prepared};
use super::reading::{List, Read, ReadJson, Scalar, check_seq, next_key, next_value, read_tree};
use crate::output::{BoxesLabel, DetectedBox, LabelBody};
use matching::robust_centre;
pub(crate) use matching::{Candidate, Clusters, MatchParams, Rect, cluster_candidates, vote_class};

/// Ground Truth's `type` for bounding-box labels.
pub const OBJECT_DETECTION_TYPE: &str = "groundtruth/object-detection";

/// Why a worker's whole bounding-box answer is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoxAnswerError {
    /// The answer is not an object.
    #[error("the answer is not a JSON object")]
    NotAnObject,
    /// `boundingBoxes` is there but neither a list nor `null`.
    #[error("`boundingBoxes` is neither a list nor null")]
    BoxesNotAList,
    /// `inputImageProperties` is there but has no usable size.
    #[error("`inputImageProperties` has no positive `width` and `height`")]
    BadImageSize,
}

/// Why a worker's answer was skipped during consolidation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoxWorkerProblem {
    /// The answer could not be parsed.
    #[error(transparent)]
    Unparseable(#[from] BoxAnswerError),
    /// The worker saw an image of another size than most workers did.
    #[error("image size {got} differs from the {expected} most workers reported")]
    ImageSizeMismatch {
        /// What the worker reported.
        got: ImageSize,
        /// What most workers reported.
        expected: ImageSize,
    },
    /// More workers than [`BoxConfig::max_workers`].
    #[error("more than {0} workers answered; the rest are ignored")]
    TooManyWorkers(usize),
}

/// Why one drawn box was left out.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BoxProblem {
    /// The list item is not an object.
    #[error("the box is not a JSON object")]
    NotAnObject,
    /// A coordinate is missing, not a number or not finite.
    #[error("`{0}` is missing or not a finite number")]
    BadNumber(&'static str),
    /// `label` is missing or not a string.
    #[error("`label` is missing or not a string")]
    BadLabel,
    /// The label is not one of the job's labels.
    #[error("label `{0}` is not one of the job's labels")]
    UnknownLabel(String),
    /// Width or height is zero or negative.
    #[error("non-positive size {width}x{height}")]
    NonPositiveSize {
        /// Drawn width.
        width: f64,
        /// Drawn height.
        height: f64,
    },
    /// Less than a pixel of the box is inside the image.
    #[error("the box lies outside the {0} image")]
    OutsideImage(ImageSize),
    /// The worker drew more than [`BoxConfig::max_boxes_per_worker`] boxes.
    #[error("over the cap of {0} boxes per worker")]
    OverCap(usize),
}

/// Image size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct ImageSize {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl std::fmt::Display for ImageSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// One box as a worker drew it (pixels, origin top-left): an item of `boundingBoxes`
/// (`{"height","label","left","top","width"}`).
#[derive(Debug, Clone, PartialEq)]
pub struct DrawnBox<'a> {
    /// Position in the worker's `boundingBoxes` list.
    pub index: usize,
    /// `label`: the label the worker chose (borrowed from the answer's text when it has no escapes).
    pub label: Cow<'a, str>,
    /// `left`.
    pub left: f64,
    /// `top`.
    pub top: f64,
    /// `width`.
    pub width: f64,
    /// `height`.
    pub height: f64,
}

/// One worker's `crowd-bounding-box` output, the engine's input
/// (`{"boundingBoxes":[{"height","label","left","top","width"}…],"inputImageProperties":{"height","width"},
/// "initialValueModified":…}`).
#[derive(Debug, Clone, PartialEq)]
pub struct BoxAnswer<'a> {
    /// The well-formed boxes (not yet checked against the image or the labels).
    pub boxes: Vec<DrawnBox<'a>>,
    /// Malformed boxes: position in the list and problem.
    pub rejected: Vec<(usize, BoxProblem)>,
    /// `inputImageProperties`, when present.
    pub image_size: Option<ImageSize>,
    /// `initialValueModified` (adjustment tasks only).
    pub initial_value_modified: Option<bool>,
}

/// A worker's output as its driver read it: the answer, or why the whole of it is unusable.
pub type BoxOutput<'a> = Result<BoxAnswer<'a>, BoxAnswerError>;

/// Reads a worker's output from a JSON tree, by the reader the batch uses on answer texts. Numbers may
/// be integers or floats; `boundingBoxes` may be absent or `null` (nothing drawn).
pub fn parse_box_answer(answer: &Value) -> BoxOutput<'_> {
    read_tree(answer)
}

/// The reader of a worker's output: one pass, each field as lenient as `contracts.md` §3 allows (a
/// malformed box is rejected with its reason, a malformed answer is an error); a key given twice keeps
/// its last value.
impl<'de> ReadJson<'de> for BoxOutput<'de> {
    fn other() -> Self {
        Err(BoxAnswerError::NotAnObject)
    }

    fn map<M: MapAccess<'de>>(mut map: M) -> Result<Self, M::Error> {
        let (mut boxes, mut properties, mut modified) = (None, None, None);
        while let Some(key) = next_key(&mut map)? {
            match key.as_ref() {
                "boundingBoxes" => boxes = Some(next_value::<List<DrawnItem<'de>>, M>(&mut map)?),
                "inputImageProperties" => {
                    properties = Some(next_value::<ImageProperties, M>(&mut map)?)
                }
                "initialValueModified" => modified = Some(next_value::<Scalar<'de>, M>(&mut map)?),
                _ => {
                    next_value::<Scalar<'de>, M>(&mut map)?;
                }
            }
        }
        let image_size = match properties {
            None | Some(ImageProperties::Null) => None,
            Some(ImageProperties::Size(size)) => Some(size.ok_or(BoxAnswerError::BadImageSize)),
        }
        .transpose();
        let image_size = match image_size {
            Ok(size) => size,
            Err(error) => return Ok(Err(error)),
        };
        let initial_value_modified = modified.and_then(|flag| flag.as_flag());
        let mut drawn = Vec::new();
        let mut rejected = Vec::new();
        match boxes {
            None | Some(List::Null) => {}
            Some(List::Items(items)) => {
                drawn.reserve(items.len());
                for (index, DrawnItem(item)) in items.into_iter().enumerate() {
                    match item {
                        Ok(mut b) => {
                            b.index = index;
                            drawn.push(b);
                        }
                        Err(problem) => rejected.push((index, problem)),
                    }
                }
            }
            Some(List::Other) => return Ok(Err(BoxAnswerError::BoxesNotAList)),
        }
        Ok(Ok(BoxAnswer {
            boxes: drawn,
            rejected,
            image_size,
            initial_value_modified,
        }))
    }
}

/// `inputImageProperties`: `null`, or the size it holds (`None`: no positive `width` and `height` that
/// fit a `u32`; floats are rounded).
pub(crate) enum ImageProperties {
    Null,
    Size(Option<ImageSize>),
}

impl<'de> ReadJson<'de> for ImageProperties {
    fn other() -> Self {
        ImageProperties::Size(None)
    }

    fn scalar(value: Scalar<'de>) -> Self {
        match value {
            Scalar::Null => ImageProperties::Null,
            _ => Self::other(),
        }
    }

    fn map<M: MapAccess<'de>>(mut map: M) -> Result<Self, M::Error> {
        let (mut width, mut height) = (None, None);
        while let Some(key) = next_key(&mut map)? {
            let value = next_value::<Scalar<'de>, M>(&mut map)?;
            match key.as_ref() {
                "width" => width = value.as_f64(),
                "height" => height = value.as_f64(),
                _ => {}
            }
        }
        let side = |value: Option<f64>| {
            let value = value?.round();
            (value >= 1.0 && value <= f64::from(u32::MAX)).then_some(value as u32)
        };
        Ok(ImageProperties::Size(
            side(width)
                .zip(side(height))
                .map(|(width, height)| ImageSize { width, height }),
        ))
    }
}

/// One item of `boundingBoxes`: a box, or why it was left out (its `index` is set by the list).
struct DrawnItem<'a>(Result<DrawnBox<'a>, BoxProblem>);

impl<'de> ReadJson<'de> for DrawnItem<'de> {
    fn other() -> Self {
        DrawnItem(Err(BoxProblem::NotAnObject))
    }

    fn map<M: MapAccess<'de>>(mut map: M) -> Result<Self, M::Error> {
        let (mut label, mut left, mut top, mut width, mut height) = (None, None, None, None, None);
        while let Some(key) = next_key(&mut map)? {
            let value = next_value::<Scalar<'de>, M>(&mut map)?;
            match key.as_ref() {
                "label" => label = value.into_str(),
                "left" => left = value.as_f64(),
                "top" => top = value.as_f64(),
                "width" => width = value.as_f64(),
                "height" => height = value.as_f64(),
                _ => {}
            }
        }
        let number = |value: Option<f64>, key: &'static str| {
            value
                .filter(|value| value.is_finite())
                .ok_or(BoxProblem::BadNumber(key))
        };
        let drawn = (|| {
            let drawn = DrawnBox {
                index: 0,
                label: label.ok_or(BoxProblem::BadLabel)?,
                left: number(left, "left")?,
                top: number(top, "top")?,
                width: number(width, "width")?,
                height: number(height, "height")?,
            };
            if drawn.width <= 0.0 || drawn.height <= 0.0 {
                return Err(BoxProblem::NonPositiveSize {
                    width: drawn.width,
                    height: drawn.height,
                });
            }
            Ok(drawn)
        })();
        Ok(DrawnItem(drawn))
    }
}

/// Tuning of [`consolidate_boxes`].
#[derive(Debug, Clone, PartialEq)]
pub struct BoxConfig {
    /// Least IoU for two workers' boxes to count as the same object. Lower than the 0.5 used to score
    /// detections, because two sloppy boxes of the same object overlap each other less than either
    /// overlaps the object.
    pub match_iou: f64,
    /// Added to a candidate pair's IoU when the labels agree, so that the assignment prefers same-class
    /// pairs among overlapping objects. Does not let a pair below [`Self::match_iou`] match.
    pub same_label_bonus: f64,
    /// Share of the total worker weight that must have drawn a box for it to be kept.
    pub quorum: f64,
    /// Reliability assumed for workers of unknown quality.
    pub neutral_reliability: f64,
    /// Chance that a worker of neutral reliability draws an object that is there (for the confidence's
    /// existence probability).
    pub worker_recall: f64,
    /// Chance that a worker draws a box where another worker's spurious box is (for the same). Spurious
    /// boxes rarely coincide, so two workers agreeing on a box is strong evidence, while one worker
    /// missing it is weak evidence against.
    pub false_alarm_rate: f64,
    /// Chance that a neutral worker picks the right class (for the confidence's class probability).
    pub label_accuracy: f64,
    /// Passes re-matching all workers against fixed robust centres after the first, greedy-order pass.
    pub refinement_passes: usize,
    /// Boxes kept per worker; the rest are dropped (bounds the matching work: a worker's boxes are matched
    /// by a cubic assignment in the worst case).
    pub max_boxes_per_worker: usize,
    /// Workers considered per object; later answers are skipped.
    pub max_workers: usize,
    /// Least width and height, in pixels, of a box after clipping to the image.
    pub min_box_side: f64,
}

impl Default for BoxConfig {
    fn default() -> Self {
        Self {
            match_iou: 0.4,
            same_label_bonus: 0.1,
            quorum: 0.4,
            neutral_reliability: super::crowd::NEUTRAL_RELIABILITY,
            worker_recall: 0.85,
            false_alarm_rate: 0.02,
            label_accuracy: 0.85,
            refinement_passes: 2,
            max_boxes_per_worker: 200,
            max_workers: 32,
            min_box_side: 1.0,
        }
    }
}

impl From<&BoxConfig> for MatchParams {
    fn from(config: &BoxConfig) -> Self {
        Self {
            min_overlap: config.match_iou,
            same_label_bonus: config.same_label_bonus,
            refinement_passes: config.refinement_passes,
        }
    }
}

/// What the job contributes to consolidating one object.
#[derive(Debug, Clone, Copy, Default)]
pub struct BoxJob<'a> {
    /// The job's labels in label-category order (class id = position). Empty when the job has no label
    /// file: class ids then follow the sorted labels the workers used.
    pub labels: &'a [String],
    /// Whether this is a bounding-box adjustment job (then `adjustment-status` is written).
    pub adjustment: bool,
    /// The prior `<LAN>` value from the manifest line (adjustment jobs), in the same output format. Class ids
    /// are compared as they are, so the prior job must have used the same label list.
    pub prior_label: Option<&'a PriorBoxes>,
}

/// The prior label of an adjustment job as the engine compares with it: Ground Truth's object-detection
/// label (`{"image_size":[{"width","height","depth"}],"annotations":[{"class_id","left","top","width",
/// "height"}…]}`), read leniently (a `class_id` may be a string).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PriorBoxes {
    /// `image_size[0]`, when it holds a usable size.
    pub image_size: Option<ImageSize>,
    /// `annotations`.
    pub annotations: PriorAnnotations,
}

/// A prior label's `annotations`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum PriorAnnotations {
    /// Not there, or not a list.
    #[default]
    Missing,
    /// A list with an annotation lacking a number (the prior then counts as different).
    Unreadable,
    /// Every annotation: class id, left, top, width, height.
    Boxes(Vec<(u64, f64, f64, f64, f64)>),
}

impl PriorBoxes {
    /// Reads the prior `<LAN>` value of a manifest line.
    pub fn read(label: &Value) -> Self {
        read_tree(label)
    }
}

impl<'de> ReadJson<'de> for PriorBoxes {
    fn other() -> Self {
        PriorBoxes::default()
    }

    fn map<M: MapAccess<'de>>(mut map: M) -> Result<Self, M::Error> {
        let mut prior = PriorBoxes::default();
        while let Some(key) = next_key(&mut map)? {
            match key.as_ref() {
                "image_size" => prior.image_size = next_value::<FirstImageSize, M>(&mut map)?.0,
                "annotations" => prior.annotations = next_value::<PriorAnnotations, M>(&mut map)?,
                _ => {
                    next_value::<Scalar<'de>, M>(&mut map)?;
                }
            }
        }
        Ok(prior)
    }
}

/// `image_size`: the size its first item holds.
struct FirstImageSize(Option<ImageSize>);

impl<'de> ReadJson<'de> for FirstImageSize {
    fn other() -> Self {
        FirstImageSize(None)
    }

    fn seq<S: SeqAccess<'de>>(mut seq: S) -> Result<Self, S::Error> {
        let first = seq.next_element::<Read<ImageProperties>>()?;
        check_seq(seq)?;
        Ok(FirstImageSize(match first {
            Some(Read(ImageProperties::Size(size))) => size,
            _ => None,
        }))
    }
}

impl<'de> ReadJson<'de> for PriorAnnotations {
    fn other() -> Self {
        PriorAnnotations::Missing
    }

    fn seq<S: SeqAccess<'de>>(seq: S) -> Result<Self, S::Error> {
        let List::Items(items) = <List<PriorBox> as ReadJson<'de>>::seq(seq)? else {
            return Ok(PriorAnnotations::Missing);
        };
        Ok(items
            .into_iter()
            .map(|PriorBox(b)| b)
            .collect::<Option<Vec<_>>>()
            .map_or(PriorAnnotations::Unreadable, PriorAnnotations::Boxes))
    }
}

/// One prior annotation, when it has all five numbers.
struct PriorBox(Option<(u64, f64, f64, f64, f64)>);

impl<'de> ReadJson<'de> for PriorBox {
    fn other() -> Self {
        PriorBox(None)
    }

    fn map<M: MapAccess<'de>>(mut map: M) -> Result<Self, M::Error> {
        let (mut class, mut left, mut top, mut width, mut height) = (None, None, None, None, None);
        while let Some(key) = next_key(&mut map)? {
            let value = next_value::<Scalar<'de>, M>(&mut map)?;
            match key.as_ref() {
                "class_id" => {
                    class = value
                        .as_u64()
                        .or_else(|| value.into_str().and_then(|text| text.parse().ok()));
                }
                "left" => left = value.as_f64(),
                "top" => top = value.as_f64(),
                "width" => width = value.as_f64(),
                "height" => height = value.as_f64(),
                _ => {}
            }
        }
        let all = || Some((class?, left?, top?, width?, height?));
        Ok(PriorBox(all()))
    }
}

/// `adjustment-status` of an adjustment job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AdjustmentStatus {
    /// A worker changed the prior label, or the result differs from it.
    Adjusted,
    /// The prior label stands.
    Unadjusted,
}

impl AdjustmentStatus {
    /// The metadata value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Adjusted => "adjusted",
            Self::Unadjusted => "unadjusted",
        }
    }
}

/// One consolidated box: the output's own box.
pub type ConsolidatedBox = DetectedBox;

/// The consolidated label of one image.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxConsolidation {
    /// The boxes, in output order (top, then left).
    pub boxes: Vec<ConsolidatedBox>,
    /// The image size written in `image_size`.
    pub image_size: ImageSize,
    /// For adjustment jobs.
    pub adjustment_status: Option<AdjustmentStatus>,
    /// Answers and boxes left out, with reasons.
    pub dropped: Vec<Dropped>,
    /// Per-worker agreement with the result (empty with fewer than two usable workers). Boxes count as
    /// units: `agreed` = consolidated boxes the worker drew with the winning class, `total` = the worker's
    /// usable boxes plus the consolidated boxes it missed.
    pub agreements: Vec<WorkerAgreement>,
}

/// Consolidates the workers' boxes for one image. Fails only when no worker answer is usable.
pub fn consolidate_boxes(
    workers: &[WorkerAnswer<'_, BoxOutput<'_>>],
    job: &BoxJob<'_>,
    config: &BoxConfig,
) -> Result<BoxConsolidation, NoUsableAnswer> {
    let mut dropped = Vec::new();

    // 1. The readable answers, within the worker cap.
    let mut parsed = super::crowd::usable_answers(
        workers,
        config.max_workers,
        BoxWorkerProblem::TooManyWorkers,
        &mut dropped,
    );

    // 2. Image size, and workers who saw another image.
    let prior_size = job.prior_label.and_then(|prior| prior.image_size);
    let reported_size = most_common(parsed.iter().filter_map(|(_, answer)| answer.image_size));
    if let Some(expected) = reported_size {
        parsed.retain(|(worker, answer)| match answer.image_size {
            Some(got) if got != expected => {
                dropped.push(Dropped::worker(
                    worker.worker_id,
                    BoxWorkerProblem::ImageSizeMismatch { got, expected },
                ));
                false
            }
            _ => true,
        });
    }
    if parsed.is_empty() {
        return Err(NoUsableAnswer { dropped });
    }
    let known_size = reported_size.or(prior_size);

    // 3. Class table.
    let class_names: Vec<&str> = super::job_or_seen_labels(
        job.labels.iter().map(String::as_str).collect(),
        parsed
            .iter()
            .flat_map(|(_, answer)| answer.boxes.iter().map(|drawn| drawn.label.as_ref())),
    );
    let class_lookup = ClassLookup::new(&class_names);

    // 4. Usable boxes: known label, clipped to the image, within the cap.
    let mut candidates: Vec<Vec<Candidate>> = Vec::with_capacity(parsed.len());
    let mut weights = Vec::with_capacity(parsed.len());
    for (usable_index, (worker, answer)) in parsed.iter().enumerate() {
        let mut reasons = ReasonLog::new(worker.worker_id);
        for (index, problem) in &answer.rejected {
            reasons.push(&mut dropped, *index, problem);
        }
        let mut boxes = Vec::with_capacity(answer.boxes.len().min(config.max_boxes_per_worker));
        let mut over_cap = 0usize;
        for drawn in &answer.boxes {
            let Some(class) = class_lookup.find(&drawn.label) else {
                reasons.push(
                    &mut dropped,
                    drawn.index,
                    BoxProblem::UnknownLabel(drawn.label.to_string()),
                );
                continue;
            };
            let rect = Rect::from_xywh(drawn.left, drawn.top, drawn.width, drawn.height);
            let Some(rect) = clip(rect, known_size, config.min_box_side) else {
                let problem = known_size.map_or(
                    BoxProblem::NonPositiveSize {
                        width: drawn.width,
                        height: drawn.height,
                    },
                    BoxProblem::OutsideImage,
                );
                reasons.push(&mut dropped, drawn.index, problem);
                continue;
            };
            if boxes.len() >= config.max_boxes_per_worker {
                over_cap += 1;
                continue;
            }
            boxes.push(Candidate {
                worker: usable_index,
                item: boxes.len(),
                rect,
                class,
            });
        }
        reasons.finish(&mut dropped);
        if over_cap > 0 {
            dropped.push(Dropped::worker(
                worker.worker_id,
                format!(
                    "{over_cap} boxes dropped: {}",
                    BoxProblem::OverCap(config.max_boxes_per_worker)
                ),
            ));
        }
        candidates.push(boxes);
        weights.push(super::crowd::vote_weight(
            worker.reliability,
            config.neutral_reliability,
        ));
    }

    // 5. Match, keep, and centre.
    let clusters = cluster_candidates(&candidates, &weights, MatchParams::from(config));
    let total_weight: f64 = weights.iter().sum();
    let lone_worker = parsed.len() == 1;
    let image_size = known_size.unwrap_or_else(|| extent_of(&candidates));
    // Kept clusters (by index) and their robust centres.
    let mut kept: Vec<(usize, Rect)> = Vec::new();
    for (index, members) in clusters.iter().enumerate() {
        let support: f64 = members.iter().map(|member| weights[member.worker]).sum();
        if !lone_worker && support + 1e-9 < config.quorum * total_weight {
            continue;
        }
        if let Some(centre) = robust_centre(members, &weights) {
            kept.push((index, centre));
        }
    }
    let centres = precision_weighted_centres(&clusters, &kept, &weights, parsed.len());

    let mut consolidated = Vec::with_capacity(kept.len());
    let mut kept_members: Vec<(usize, usize)> = Vec::with_capacity(kept.len());
    for ((index, _), centre) in kept.iter().zip(centres) {
        let Some(rect) = clip(centre, Some(image_size), 0.0) else {
            continue;
        };
        let members = clusters.get(*index);
        let (class, _) = vote_class(members, &weights);
        let confidence = if lone_worker {
            parsed
                .first()
                .and_then(|(worker, _)| worker.reliability)
                .filter(|p| p.is_finite())
                .unwrap_or(0.0)
        } else {
            box_confidence(members, &weights, rect, class, class_names.len(), config)
        };
        let (left, top, width, height) = to_pixels(rect, image_size);
        consolidated.push(ConsolidatedBox {
            class_id: class,
            class_name: class_names
                .get(class)
                .copied()
                .unwrap_or_default()
                .to_owned(),
            left,
            top,
            width,
            height,
            confidence: round_confidence(confidence),
            workers: members.len(),
        });
        kept_members.push((*index, class));
    }

    // Output order: top, then left, then class; agreements follow the same boxes.
    let mut order: Vec<usize> = (0..consolidated.len()).collect();
    order.sort_by_key(|&i| {
        let b = &consolidated[i];
        (b.top, b.left, b.class_id, b.width, b.height)
    });
    let mut slots: Vec<Option<ConsolidatedBox>> = consolidated.into_iter().map(Some).collect();
    let boxes: Vec<ConsolidatedBox> = order.iter().filter_map(|&i| slots[i].take()).collect();

    let agreements = if parsed.len() >= 2 {
        worker_agreements(&parsed, &candidates, &clusters, &kept_members)
    } else {
        Vec::new()
    };

    let adjustment_status = job.adjustment.then(|| {
        let modified = parsed
            .iter()
            .any(|(_, answer)| answer.initial_value_modified == Some(true));
        let differs = job
            .prior_label
            .is_some_and(|prior| differs_from_prior(&boxes, prior));
        if modified || differs {
            AdjustmentStatus::Adjusted
        } else {
            AdjustmentStatus::Unadjusted
        }
    });

    Ok(BoxConsolidation {
        boxes,
        image_size,
        adjustment_status,
        dropped,
        agreements,
    })
}

/// Label → class id, by linear search for short lists and a hash map for long ones.
struct ClassLookup<'a> {
    names: &'a [&'a str],
    index: Option<HashMap<&'a str, usize>>,
}

impl<'a> ClassLookup<'a> {
    fn new(names: &'a [&'a str]) -> Self {
        let index = (names.len() > 16).then(|| {
            let mut index = HashMap::with_capacity(names.len());
            for (id, name) in names.iter().enumerate() {
                index.entry(*name).or_insert(id);
            }
            index
        });
        Self { names, index }
    }

    fn find(&self, label: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(label).copied(),
            None => self.names.iter().position(|name| *name == label),
        }
    }
}

/// The most frequent value, ties to the first seen.
fn most_common(values: impl Iterator<Item = ImageSize>) -> Option<ImageSize> {
    let mut counts: Vec<(ImageSize, usize)> = Vec::new();
    for value in values {
        match counts.iter_mut().find(|(seen, _)| *seen == value) {
            Some((_, count)) => *count += 1,
            None => counts.push((value, 1)),
        }
    }
    let best = counts.iter().map(|(_, count)| *count).max()?;
    counts
        .into_iter()
        .find(|(_, count)| *count == best)
        .map(|(value, _)| value)
}

/// Clips to the image (or to the non-negative quadrant when its size is unknown); `None` when less than
/// `min_side` pixels remain in either direction.
fn clip(rect: Rect, image: Option<ImageSize>, min_side: f64) -> Option<Rect> {
    let (max_x, max_y) = image.map_or((f64::INFINITY, f64::INFINITY), |size| {
        (f64::from(size.width), f64::from(size.height))
    });
    let clipped = Rect {
        left: rect.left.clamp(0.0, max_x),
        top: rect.top.clamp(0.0, max_y),
        right: rect.right.clamp(0.0, max_x),
        bottom: rect.bottom.clamp(0.0, max_y),
    };
    let wide_enough = clipped.right - clipped.left >= min_side.max(f64::MIN_POSITIVE);
    let tall_enough = clipped.bottom - clipped.top >= min_side.max(f64::MIN_POSITIVE);
    (wide_enough && tall_enough && clipped.right.is_finite() && clipped.bottom.is_finite())
        .then_some(clipped)
}

/// When nobody reported the image size: the smallest image holding every box.
fn extent_of(candidates: &[Vec<Candidate>]) -> ImageSize {
    let (mut width, mut height) = (1.0f64, 1.0f64);
    for candidate in candidates.iter().flatten() {
        width = width.max(candidate.rect.right.ceil());
        height = height.max(candidate.rect.bottom.ceil());
    }
    ImageSize {
        width: width.min(f64::from(u32::MAX)) as u32,
        height: height.min(f64::from(u32::MAX)) as u32,
    }
}

/// Integer left, top, width, height: edges are rounded (so adjacent boxes stay adjacent), sides are at least
/// one pixel and stay inside the image.
fn to_pixels(rect: Rect, image: ImageSize) -> (i64, i64, i64, i64) {
    let (max_x, max_y) = (i64::from(image.width), i64::from(image.height));
    let left = (rect.left.round() as i64).clamp(0, (max_x - 1).max(0));
    let top = (rect.top.round() as i64).clamp(0, (max_y - 1).max(0));
    let right = (rect.right.round() as i64).clamp(left + 1, max_x.max(left + 1));
    let bottom = (rect.bottom.round() as i64).clamp(top + 1, max_y.max(top + 1));
    (left, top, right - left, bottom - top)
}

/// Normalised edge residuals of one member against its cluster's centre (edge offset / box side).
fn residuals(member: &Rect, centre: &Rect) -> [f64; 4] {
    let width = (centre.right - centre.left).max(1.0);
    let height = (centre.bottom - centre.top).max(1.0);
    [
        (member.left - centre.left) / width,
        (member.top - centre.top) / height,
        (member.right - centre.right) / width,
        (member.bottom - centre.bottom) / height,
    ]
}

/// Median absolute value, scaled to a Gaussian standard deviation (×1.4826).
fn robust_scale(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    for value in values.iter_mut() {
        *value = value.abs();
    }
    let middle = values.len() / 2;
    let (_, median, _) = values.select_nth_unstable_by(middle, f64::total_cmp);
    Some(*median * 1.4826)
}

/// Final box edges: every edge is the mean of the members' edges weighted by reliability × precision, where
/// a worker's precision (1 / its edge noise²) is estimated from how far *all* its boxes in this image sit
/// from the robust centres (a robust scale, shrunk toward the crowd's), and a member whose edge sits more
/// than 1.5 of its own noise scales away (a slip) is down-weighted Huber-style. Two rounds: the second
/// re-estimates the noise against the first round's centres. This is what lets the
/// consensus beat even the most precise single worker: a careful worker's edges count several times more
/// than a sloppy one's, without anyone saying who is careful.
fn precision_weighted_centres(
    clusters: &Clusters,
    kept: &[(usize, Rect)],
    weights: &[f64],
    worker_count: usize,
) -> Vec<Rect> {
    /// Re-estimations of the workers' noise against the improved centres.
    const ROUNDS: usize = 2;
    let mut centres: Vec<Rect> = kept.iter().map(|(_, centre)| *centre).collect();
    let mut buffer = Vec::new();
    for _ in 0..ROUNDS {
        centres = precision_step(clusters, kept, &centres, weights, worker_count, &mut buffer);
    }
    centres
}

fn precision_step(
    clusters: &Clusters,
    kept: &[(usize, Rect)],
    centres: &[Rect],
    weights: &[f64],
    worker_count: usize,
    buffer: &mut Vec<f64>,
) -> Vec<Rect> {
    /// Pseudo-residuals at the crowd's scale added to every worker's own (shrinkage).
    const PRIOR_RESIDUALS: f64 = 4.0;
    /// Residuals beyond this many of the worker's own noise scales are down-weighted (Huber).
    const HUBER: f64 = 1.5;
    /// No worker is assumed more precise than this (share of the box side).
    const MIN_SCALE: f64 = 0.005;

    // With two boxes, both residuals mirror each other and say nothing about who is right: only clusters
    // of three or more inform the scales.
    let informative = || {
        kept.iter()
            .zip(centres)
            .map(|((index, _), centre)| (clusters.get(*index), centre))
            .filter(|(members, _)| members.len() >= 3)
    };
    buffer.clear();
    for (members, centre) in informative() {
        for member in members {
            buffer.extend_from_slice(&residuals(&member.rect, centre));
        }
    }
    let Some(pooled_scale) = robust_scale(buffer) else {
        return centres.to_vec();
    };
    let pooled_scale = pooled_scale.max(MIN_SCALE);
    let scales: Vec<f64> = (0..worker_count)
        .map(|worker| {
            buffer.clear();
            for (members, centre) in informative() {
                for member in members.iter().filter(|m| m.worker == worker) {
                    buffer.extend_from_slice(&residuals(&member.rect, centre));
                }
            }
            let count = buffer.len() as f64;
            let own = robust_scale(buffer).unwrap_or(pooled_scale);
            let variance = (count * own * own + PRIOR_RESIDUALS * pooled_scale * pooled_scale)
                / (count + PRIOR_RESIDUALS);
            variance.sqrt().max(MIN_SCALE)
        })
        .collect();

    kept.iter()
        .zip(centres)
        .map(|((index, _), centre)| {
            let members = clusters.get(*index);
            let mut sums = [0.0f64; 4];
            let mut totals = [0.0f64; 4];
            for member in members {
                let scale = scales[member.worker];
                let base = weights[member.worker] / (scale * scale);
                let residuals = residuals(&member.rect, centre);
                let edges = [
                    member.rect.left,
                    member.rect.top,
                    member.rect.right,
                    member.rect.bottom,
                ];
                for edge in 0..4 {
                    let distance = residuals[edge].abs() / scale;
                    let huber = if distance > HUBER {
                        HUBER / distance
                    } else {
                        1.0
                    };
                    sums[edge] += base * huber * edges[edge];
                    totals[edge] += base * huber;
                }
            }
            if totals
                .iter()
                .any(|total| total.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater))
            {
                return *centre;
            }
            let rect = Rect {
                left: sums[0] / totals[0],
                top: sums[1] / totals[1],
                right: sums[2] / totals[2],
                bottom: sums[3] / totals[3],
            };
            if rect.right > rect.left && rect.bottom > rect.top {
                rect
            } else {
                *centre
            }
        })
        .collect()
}

/// Probability that a consolidated box is a correct detection (see the module docs, step 6).
fn box_confidence(
    members: &[Candidate],
    weights: &[f64],
    rect: Rect,
    class: usize,
    class_count: usize,
    config: &BoxConfig,
) -> f64 {
    let votes = members
        .iter()
        .map(|member| (member.class, weights[member.worker]));
    let class_right = vote_posterior(votes, class, config.label_accuracy, class_count);
    let total_weight: f64 = weights.iter().sum();
    let mut member_weight = 0.0;
    let mut iou_sum = 0.0;
    for member in members {
        member_weight += weights[member.worker];
        iou_sum += member.rect.iou(&rect);
    }
    let exists = existence_probability(
        total_weight,
        member_weight,
        config.worker_recall,
        config.false_alarm_rate,
    );
    let mean_iou = iou_sum / members.len().max(1) as f64;
    exists * class_right * placement_probability(mean_iou)
}

/// Probability that a box is placed well enough (IoU ≥ 0.5 with the object) given how well the workers'
/// boxes agree with it: near certain when they overlap it by 0.8 or more, falling off below.
fn placement_probability(mean_iou: f64) -> f64 {
    ((mean_iou - 0.3) / 0.5).clamp(0.0, 1.0).sqrt()
}

fn worker_agreements(
    parsed: &[(&WorkerAnswer<'_, BoxOutput<'_>>, &BoxAnswer<'_>)],
    candidates: &[Vec<Candidate>],
    clusters: &Clusters,
    kept: &[(usize, usize)],
) -> Vec<WorkerAgreement> {
    parsed
        .iter()
        .enumerate()
        .map(|(worker, (answer, _))| {
            let mut agreed = 0.0;
            let mut missed = 0.0;
            for &(index, class) in kept {
                match clusters
                    .get(index)
                    .iter()
                    .find(|member| member.worker == worker)
                {
                    Some(member) if member.class == class => agreed += 1.0,
                    Some(_) => {}
                    None => missed += 1.0,
                }
            }
            WorkerAgreement {
                worker_id: answer.worker_id.to_owned(),
                agreed,
                total: candidates[worker].len() as f64 + missed,
            }
        })
        .collect()
}

/// Whether the consolidated boxes differ from the prior label (class, count, or an edge by more than one
/// pixel). An unreadable prior counts as different.
fn differs_from_prior(boxes: &[ConsolidatedBox], prior: &PriorBoxes) -> bool {
    let prior_boxes = match &prior.annotations {
        PriorAnnotations::Missing => return !boxes.is_empty(),
        PriorAnnotations::Unreadable => return true,
        PriorAnnotations::Boxes(prior_boxes) => prior_boxes,
    };
    if prior_boxes.len() != boxes.len() {
        return true;
    }
    let mut used = vec![false; prior_boxes.len()];
    for consolidated in boxes {
        let close = |(class, left, top, width, height): (u64, f64, f64, f64, f64)| {
            let near = |a: i64, b: f64| (a as f64 - b).abs() <= 1.0;
            class == consolidated.class_id as u64
                && near(consolidated.left, left)
                && near(consolidated.top, top)
                && near(consolidated.width, width)
                && near(consolidated.height, height)
        };
        let found = prior_boxes
            .iter()
            .enumerate()
            .position(|(i, prior_box)| !used[i] && close(*prior_box));
        match found {
            Some(i) => used[i] = true,
            None => return true,
        }
    }
    false
}

impl BoxConsolidation {
    /// The label as Ground Truth's object-detection output ([`crate::output::BoxesLabel`]), what was
    /// dropped included.
    pub fn output(&self) -> BoxesLabel {
        BoxesLabel {
            boxes: self.boxes.clone(),
            image_size: (self.image_size.width, self.image_size.height),
            adjustment_status: self.adjustment_status.map(AdjustmentStatus::as_str),
            dropped: super::crowd::dropped_list(&self.dropped),
        }
    }

    /// The `<LAN>` value as JSON: `{"image_size":[…],"annotations":[…]}`.
    pub fn label(&self) -> Value {
        LabelBody::Boxes(self.output())
            .label_json()
            .unwrap_or(Value::Null)
    }

    /// The label's own `<LAN>-metadata` keys as JSON: `objects`, `class-map` and, for adjustment jobs,
    /// `adjustment-status`.
    pub fn metadata(&self) -> Map<String, Value> {
        LabelBody::Boxes(self.output()).metadata_json()
    }
}

/// The batch's driver for bounding boxes (and their adjustment): each object's answers through
/// [`consolidate_boxes`], with the workers' reliabilities and the object's prior label.
pub(crate) fn box_results(
    d: &mut Driver<'_, '_>,
    prepared: &mut [Prepared<'_>],
) -> Vec<ObjectResult> {
    let (job, task_type, priors, settings) = (d.job, d.task_type, d.priors, d.settings);
    let stats = &mut d.stats;
    let labels = job.labels.unwrap_or(&[]);
    geometry_results(task_type, prepared, priors, stats, |p, workers| {
        let prior = p.object.prior_label.as_ref().map(PriorBoxes::read);
        let box_job = BoxJob {
            labels,
            adjustment: task_type.is_adjustment(),
            prior_label: prior.as_ref(),
        };
        consolidate_boxes(workers, &box_job, &settings.boxes)
            .map(|c| GeometryLabel {
                confidence: mean(c.boxes.iter().map(|b| b.confidence)),
                body: LabelBody::Boxes(c.output()),
                agreements: c.agreements,
            })
            .map_err(|none| no_usable_reason(&none.dropped))
    })
}

#[cfg(test)]
mod tests;
