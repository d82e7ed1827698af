//! Semantic-segmentation consolidation (`crowd-semantic-segmentation`, and its adjustment): several workers'
//! painted masks for one image in, one indexed-PNG mask and Ground Truth's `internal-color-map` out
//! (`contracts.md` §4.2, `groundtruth/semantic-segmentation`).
//!
//! ## Flow
//! 1. **Parse** every answer (the driver reads each into a [`SegmentationAnswer`]): image size, label →
//!    colour mappings and the base64 PNG (not decoded yet).
//! 2. **Size and limits**: the size most workers report (else the first PNG header) must not exceed
//!    [`SegmentationConfig::max_pixels`] (default 50 megapixels): a bigger image is refused as a whole, with
//!    [`SegmentationError::TooLarge`], before anything is decoded. Each PNG's header is checked against that
//!    size and the limit *before* its pixels are allocated, and the encoded data against
//!    [`SegmentationConfig::max_png_bytes`]; the decoder runs under `png::Limits`. A decompression bomb thus
//!    fails on its header; a worker whose PNG is broken or of another size is skipped with the reason.
//! 3. **Decode** workers one at a time (row by row, unless interlaced) into a class per pixel: a colour the
//!    worker's `labelMappings` gives a label becomes that label's class; white `#ffffff`, transparent
//!    pixels and unmapped colours are background (class 0, `BACKGROUND`). RGB, RGBA, grey, grey+alpha,
//!    indexed and 16-bit PNGs are all accepted. Each mask is folded into per-pixel answer patterns and
//!    dropped, so memory is proportional to one image, not to the number of workers (`votes`).
//! 4. **Infer** per image: every worker's accuracy on the painted region is learned by EM on the answer
//!    patterns (steadied by its learned reliability), a pixel gets a foreground class when that class's
//!    posterior reaches the IoU-optimal threshold, and contested pixels are **cleaned** with their 3×3
//!    neighbourhood: isolated specks vanish, pixels all workers agree on never change (`votes` explains
//!    all three). How it scores and how fast it runs on crowd-kit's own benchmark masks, against
//!    crowd-kit's `SegmentationEM` and majority vote: `shared/tests/data/geometry/README.md` and the
//!    README.
//! 5. **Encode** the result as an 8-bit indexed PNG whose pixel values are the class indices and whose
//!    palette holds the class colours; the caller stores it and writes its URI as the `<LAN>` value.
//!
//! Class indices: 0 is `BACKGROUND` (`#ffffff`); 1.. follow the job's labels (sorted labels seen when the
//! job has none), at most 255. A label's colour is the one most workers mapped it to (a default palette
//! colour when nobody used it). The image confidence, the same for every class as in Ground Truth, is the
//! expected IoU of the result with the truth under the (tempered) EM posteriors, averaged over the
//! foreground classes present; `0.00` for a lone worker of unknown reliability. [`consolidate_masks`] runs
//! step 4 on masks decoded by the caller.

pub(crate) mod votes;

use std::io::Cursor;

use std::borrow::Cow;

use base64::Engine;
use serde::de::MapAccess;
use serde_json::Value;

use crate::output::{LabelBody, MaskClass, MaskLabel};

use super::batch::MaskWrite;
use super::boxes::ImageProperties;
pub use super::boxes::ImageSize;
pub use super::crowd::{Dropped, NoUsableAnswer, WorkerAgreement, WorkerAnswer};
use super::crowd::{GeometryLabel, geometry_results, usable_answers};
use super::crowd::{ReasonLog, effective_reliability, round_confidence};
use super::driver::{Driver, ObjectResult, Prepared};
use super::reading::{ReadJson, Scalar, next_key, next_value, read_tree};
use votes::{InferenceParams, PatternAccumulator};

/// Ground Truth's `type` for semantic-segmentation labels.
pub const SEMANTIC_SEGMENTATION_TYPE: &str = "groundtruth/semantic-segmentation";

/// Name of class 0.
pub const BACKGROUND: &str = "BACKGROUND";

/// An RGB colour.
pub type Rgb = [u8; 3];

/// Colour of class 0: white, as the worker UI paints unlabelled pixels.
pub const BACKGROUND_COLOR: Rgb = [0xff, 0xff, 0xff];

/// Colours for labels no worker mapped (the worker UI's own ten-colour palette).
const DEFAULT_PALETTE: [Rgb; 10] = [
    [0x1f, 0x77, 0xb4],
    [0xff, 0x7f, 0x0e],
    [0x2c, 0xa0, 0x2c],
    [0xd6, 0x27, 0x28],
    [0x94, 0x67, 0xbd],
    [0x8c, 0x56, 0x4b],
    [0xe3, 0x77, 0xc2],
    [0x7f, 0x7f, 0x7f],
    [0xbc, 0xbd, 0x22],
    [0x17, 0xbe, 0xcf],
];

/// Most classes an 8-bit indexed PNG can hold, background included.
pub const MAX_CLASSES: usize = 256;

/// Why a worker's whole segmentation answer is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentationAnswerError {
    /// The answer is not an object.
    #[error("the answer is not a JSON object")]
    NotAnObject,
    /// `labeledImage.pngImageData` is missing or not a string.
    #[error("`labeledImage.pngImageData` is missing or not a string")]
    MissingImage,
    /// `labelMappings` is there but not an object.
    #[error("`labelMappings` is not an object")]
    BadLabelMappings,
    /// `inputImageProperties` is there but has no usable size.
    #[error("`inputImageProperties` has no positive `width` and `height`")]
    BadImageSize,
}

/// Why a worker's answer was skipped during consolidation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentationWorkerProblem {
    /// The answer could not be parsed.
    #[error(transparent)]
    Unparseable(#[from] SegmentationAnswerError),
    /// More workers than [`SegmentationConfig::max_workers`].
    #[error("more than {0} workers answered; the rest are ignored")]
    TooManyWorkers(usize),
    /// The encoded PNG is larger than [`SegmentationConfig::max_png_bytes`].
    #[error("the PNG data is {bytes} bytes, over the limit of {max}")]
    PngTooLarge {
        /// Size of the base64 text.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// `pngImageData` is not base64.
    #[error("`pngImageData` is not valid base64: {0}")]
    Base64(String),
    /// The PNG could not be decoded (corrupt, truncated, over the decoder's memory limit).
    #[error("the PNG could not be decoded: {0}")]
    Png(String),
    /// The PNG is of another size than the image.
    #[error("the mask is {got}, the image {expected}")]
    SizeMismatch {
        /// The PNG's size.
        got: ImageSize,
        /// The image's.
        expected: ImageSize,
    },
    /// The PNG alone is bigger than [`SegmentationConfig::max_pixels`].
    #[error("the mask is {got} = {pixels} pixels, over the limit of {max}")]
    TooManyPixels {
        /// The PNG's size.
        got: ImageSize,
        /// Its pixel count.
        pixels: u64,
        /// The limit.
        max: u64,
    },
}

/// Why an object got no consolidated mask.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SegmentationError {
    /// No worker answer was usable.
    #[error(transparent)]
    NoUsableAnswer(#[from] NoUsableAnswer),
    /// The image is bigger than [`SegmentationConfig::max_pixels`]; nothing was decoded.
    #[error("the image is {size} = {pixels} pixels, over the limit of {max}")]
    TooLarge {
        /// The image size.
        size: ImageSize,
        /// Its pixel count.
        pixels: u64,
        /// The limit.
        max: u64,
    },
    /// Writing the PNG failed (should not happen for in-memory output).
    #[error("could not encode the consolidated mask: {0}")]
    Encoding(String),
}

/// One worker's `crowd-semantic-segmentation` output, the engine's input
/// (`{"inputImageProperties":{…},"labelMappings":{"<label>":{"color":"#rrggbb"}…},"labeledImage":
/// {"pngImageData":"<base64>"},"initialValueModified":…}`); the PNG is decoded during consolidation.
/// Texts are borrowed from the answer's text when they have no escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentationAnswer<'a> {
    /// `inputImageProperties`, when present.
    pub image_size: Option<ImageSize>,
    /// `labelMappings`: label → colour, in the answer's order.
    pub label_colors: Vec<(Cow<'a, str>, Rgb)>,
    /// Mappings whose colour is not `#rrggbb` (or `#rgb`): label and the offending value.
    pub bad_colors: Vec<(Cow<'a, str>, String)>,
    /// `labeledImage.pngImageData`, base64.
    pub png_base64: Cow<'a, str>,
    /// `initialValueModified` (adjustment tasks only).
    pub initial_value_modified: Option<bool>,
}

/// A worker's output as its driver read it: the answer, or why the whole of it is unusable.
pub type SegmentationOutput<'a> = Result<SegmentationAnswer<'a>, SegmentationAnswerError>;

/// Reads a worker's output from a JSON tree, by the reader the batch uses on answer texts.
pub fn parse_segmentation_answer(answer: &Value) -> SegmentationOutput<'_> {
    read_tree(answer)
}

/// The reader of a worker's output: one pass; a key given twice keeps its last value (a label mapped
/// twice keeps its first place), as a JSON object map does.
impl<'de> ReadJson<'de> for SegmentationOutput<'de> {
    fn other() -> Self {
        Err(SegmentationAnswerError::NotAnObject)
    }

    fn map<M: MapAccess<'de>>(mut map: M) -> Result<Self, M::Error> {
        let (mut properties, mut image, mut mappings, mut modified) = (None, None, None, None);
        while let Some(key) = next_key(&mut map)? {
            match key.as_ref() {
                "inputImageProperties" => {
                    properties = Some(next_value::<ImageProperties, M>(&mut map)?);
                }
                "labeledImage" => image = Some(next_value::<LabeledImage<'de>, M>(&mut map)?),
                "labelMappings" => mappings = Some(next_value::<LabelMappings<'de>, M>(&mut map)?),
                "initialValueModified" => modified = Some(next_value::<Scalar<'de>, M>(&mut map)?),
                _ => {
                    next_value::<Scalar<'de>, M>(&mut map)?;
                }
            }
        }
        let image_size = match properties {
            None | Some(ImageProperties::Null) => None,
            Some(ImageProperties::Size(Some(size))) => Some(size),
            Some(ImageProperties::Size(None)) => {
                return Ok(Err(SegmentationAnswerError::BadImageSize));
            }
        };
        let Some(LabeledImage(Some(png_base64))) = image else {
            return Ok(Err(SegmentationAnswerError::MissingImage));
        };
        let mut label_colors = Vec::new();
        let mut bad_colors = Vec::new();
        match mappings {
            None | Some(LabelMappings::Null) => {}
            Some(LabelMappings::Mappings(mappings)) => {
                for (label, mapping) in mappings {
                    let color = mapping.get("color").and_then(Value::as_str);
                    match color.and_then(parse_hex_color) {
                        Some(rgb) => label_colors.push((label, rgb)),
                        None => bad_colors.push((
                            label,
                            color.map_or_else(|| mapping.to_string(), str::to_owned),
                        )),
                    }
                }
            }
            Some(LabelMappings::NotAnObject) => {
                return Ok(Err(SegmentationAnswerError::BadLabelMappings));
            }
        }
        Ok(Ok(SegmentationAnswer {
            image_size,
            label_colors,
            bad_colors,
            png_base64,
            initial_value_modified: modified.and_then(|flag| flag.as_flag()),
        }))
    }
}

/// `labeledImage`: its `pngImageData`, when that is a string.
struct LabeledImage<'a>(Option<Cow<'a, str>>);

impl<'de> ReadJson<'de> for LabeledImage<'de> {
    fn other() -> Self {
        LabeledImage(None)
    }

    fn map<M: MapAccess<'de>>(mut map: M) -> Result<Self, M::Error> {
        let mut png = None;
        while let Some(key) = next_key(&mut map)? {
            let value = next_value::<Scalar<'de>, M>(&mut map)?;
            if key == "pngImageData" {
                png = value.into_str();
            }
        }
        Ok(LabeledImage(png))
    }
}

/// `labelMappings`: `null`, an object of label → mapping, or something else.
enum LabelMappings<'a> {
    Null,
    /// Each label once, at its first place, with its last mapping. A mapping is a small tree: a bad one
    /// is quoted whole in the reason it is dropped for.
    Mappings(Vec<(Cow<'a, str>, Value)>),
    NotAnObject,
}

impl<'de> ReadJson<'de> for LabelMappings<'de> {
    fn other() -> Self {
        LabelMappings::NotAnObject
    }

    fn scalar(value: Scalar<'de>) -> Self {
        match value {
            Scalar::Null => LabelMappings::Null,
            _ => LabelMappings::NotAnObject,
        }
    }

    fn map<M: MapAccess<'de>>(mut map: M) -> Result<Self, M::Error> {
        let mut mappings: Vec<(Cow<'de, str>, Value)> = Vec::new();
        while let Some(label) = next_key(&mut map)? {
            let mapping: Value = map.next_value()?;
            match mappings.iter_mut().find(|(seen, _)| *seen == label) {
                Some(earlier) => earlier.1 = mapping,
                None => mappings.push((label, mapping)),
            }
        }
        Ok(LabelMappings::Mappings(mappings))
    }
}

/// `#rrggbb` or `#rgb`, any case.
pub fn parse_hex_color(text: &str) -> Option<Rgb> {
    let hex = text.trim().strip_prefix('#')?;
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let bytes = hex.as_bytes();
    match bytes.len() {
        6 => {
            let mut rgb = [0u8; 3];
            for (i, channel) in rgb.iter_mut().enumerate() {
                *channel = digit(bytes[2 * i])? * 16 + digit(bytes[2 * i + 1])?;
            }
            Some(rgb)
        }
        3 => {
            let mut rgb = [0u8; 3];
            for (i, channel) in rgb.iter_mut().enumerate() {
                *channel = digit(bytes[i])? * 17;
            }
            Some(rgb)
        }
        _ => None,
    }
}

/// `#rrggbb`, lower case.
pub fn hex_color(rgb: Rgb) -> String {
    format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2])
}

/// Tuning of [`consolidate_segmentation`] and [`consolidate_masks`].
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentationConfig {
    /// Largest image accepted, in pixels (width × height); checked before any allocation.
    pub max_pixels: u64,
    /// Largest `pngImageData` accepted, in base64 characters.
    pub max_png_bytes: usize,
    /// Memory the PNG decoder may allocate for itself per image (`png::Limits`), besides our mask.
    pub max_decoder_bytes: usize,
    /// Workers considered per object; later answers are skipped.
    pub max_workers: usize,
    /// Reliability assumed for workers of unknown quality.
    pub neutral_reliability: f64,
    /// Most EM iterations.
    pub max_iterations: usize,
    /// EM stops when no posterior moves more than this.
    pub tolerance: f64,
    /// Pseudo-pixels at a worker's learned reliability added to its accuracy estimate on an image.
    pub prior_strength: f64,
    /// Least posterior for a pixel to get a foreground class: below one half because the score is IoU
    /// (see `votes`).
    pub foreground_threshold: f64,
    /// Whether contested pixels are smoothed with their neighbourhood.
    pub smooth: bool,
}

impl Default for SegmentationConfig {
    fn default() -> Self {
        Self {
            max_pixels: 50_000_000,
            max_png_bytes: 64 << 20,
            max_decoder_bytes: 64 << 20,
            max_workers: 16,
            neutral_reliability: super::crowd::NEUTRAL_RELIABILITY,
            max_iterations: 50,
            tolerance: 1e-6,
            prior_strength: 50.0,
            foreground_threshold: 0.45,
            smooth: true,
        }
    }
}

impl SegmentationConfig {
    fn inference(&self) -> InferenceParams {
        InferenceParams {
            max_iterations: self.max_iterations,
            tolerance: self.tolerance,
            prior_strength: if self.prior_strength.is_finite() {
                self.prior_strength.max(0.0)
            } else {
                0.0
            },
            foreground_threshold: if self.foreground_threshold.is_finite() {
                self.foreground_threshold.clamp(0.0, 1.0)
            } else {
                0.5
            },
            smooth: self.smooth,
        }
    }
}

/// What the job contributes to consolidating one image.
#[derive(Debug, Clone, Copy, Default)]
pub struct SegmentationJob<'a> {
    /// The job's labels in label-category order (class index = position + 1). Empty when the job has no
    /// label file: the labels the workers mapped are then used, sorted.
    pub labels: &'a [String],
}

/// One class of the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentationClass {
    /// Index (the pixel value in the PNG).
    pub index: usize,
    /// Name (`BACKGROUND` for 0).
    pub name: String,
    /// Colour (the PNG's palette entry).
    pub color: Rgb,
}

/// The consolidated label of one image.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentationConsolidation {
    /// The mask: an 8-bit indexed PNG, pixel value = class index, palette = class colours. The caller stores
    /// it and writes its S3 URI as the `<LAN>` value.
    pub png: Vec<u8>,
    /// The image confidence (two decimals), the same for every class.
    pub confidence: f64,
    /// Image size.
    pub image_size: ImageSize,
    /// The classes, by index.
    pub classes: Vec<SegmentationClass>,
    /// Whether a worker reported `initialValueModified` (adjustment jobs).
    pub initial_value_modified: bool,
    /// Answers and mappings left out, with reasons.
    pub dropped: Vec<Dropped>,
    /// Per-worker agreement (empty with fewer than two usable workers): per image, `total` is 1 and
    /// `agreed` the share of pixels, among those anyone painted, where the worker gave the result's class.
    pub agreements: Vec<WorkerAgreement>,
}

/// Consolidates the workers' masks for one image.
pub fn consolidate_segmentation(
    workers: &[WorkerAnswer<'_, SegmentationOutput<'_>>],
    job: &SegmentationJob<'_>,
    config: &SegmentationConfig,
) -> Result<SegmentationConsolidation, SegmentationError> {
    let mut dropped = Vec::new();

    let parsed = usable_answers(
        workers,
        config.max_workers,
        SegmentationWorkerProblem::TooManyWorkers,
        &mut dropped,
    );
    if parsed.is_empty() {
        return Err(NoUsableAnswer { dropped }.into());
    }

    // The class table: background, then the job's labels (or the sorted labels mapped).
    let class_names: Vec<String> = {
        let labels: Vec<String> = super::job_or_seen_labels(
            job.labels.to_vec(),
            parsed.iter().flat_map(|(_, answer)| {
                answer
                    .label_colors
                    .iter()
                    .map(|(label, _)| label.to_string())
            }),
        );
        std::iter::once(BACKGROUND.to_owned())
            .chain(labels)
            .take(MAX_CLASSES)
            .collect()
    };
    let class_of = |label: &str| {
        class_names
            .iter()
            .skip(1)
            .position(|name| name == label)
            .map(|i| i + 1)
    };
    let colors = class_colors(&class_names, &parsed, &class_of);

    // Compact classes: background plus the classes any worker mapped (keeps the pattern space small).
    let mut compact_to_class: Vec<usize> = vec![0];
    let mut worker_colors: Vec<Vec<(u32, u8)>> = Vec::with_capacity(parsed.len());
    for (worker, answer) in &parsed {
        let mut reasons = ReasonLog::new(worker.worker_id);
        for (index, (label, value)) in answer.bad_colors.iter().enumerate() {
            reasons.push(
                &mut dropped,
                index,
                format!("label `{label}` has no #rrggbb colour (`{value}`); its pixels count as background"),
            );
        }
        let mut table = Vec::with_capacity(answer.label_colors.len());
        for (index, (label, rgb)) in answer.label_colors.iter().enumerate() {
            let Some(class) = class_of(label) else {
                reasons.push(
                    &mut dropped,
                    index,
                    format!("label `{label}` is not one of the job's labels; its pixels count as background"),
                );
                continue;
            };
            if *rgb == BACKGROUND_COLOR {
                continue; // white is background whatever the mapping says
            }
            let compact = match compact_to_class.iter().position(|&c| c == class) {
                Some(compact) => compact,
                None => {
                    compact_to_class.push(class);
                    compact_to_class.len() - 1
                }
            };
            let key = rgb_key(*rgb);
            if table.iter().all(|(seen, _)| *seen != key) {
                table.push((key, compact as u8));
            }
        }
        reasons.finish(&mut dropped);
        worker_colors.push(table);
    }

    // Image size: what most workers report, else the first readable PNG header; refuse oversized images
    // before decoding anything.
    let reported = most_common_size(parsed.iter().filter_map(|(_, a)| a.image_size));
    let size = match reported {
        Some(size) => size,
        None => match parsed
            .iter()
            .find_map(|(_, answer)| png_header_size(&answer.png_base64, config))
        {
            Some(size) => size,
            None => {
                for (worker, _) in &parsed {
                    dropped.push(Dropped::worker(
                        worker.worker_id,
                        SegmentationWorkerProblem::Png("no readable PNG header".to_owned()),
                    ));
                }
                return Err(NoUsableAnswer { dropped }.into());
            }
        },
    };
    let pixels = u64::from(size.width) * u64::from(size.height);
    if pixels > config.max_pixels {
        return Err(SegmentationError::TooLarge {
            size,
            pixels,
            max: config.max_pixels,
        });
    }
    let pixel_count = usize::try_from(pixels).map_err(|_| SegmentationError::TooLarge {
        size,
        pixels,
        max: config.max_pixels,
    })?;

    // Decode one worker at a time into the pattern accumulator.
    let mut accumulator =
        PatternAccumulator::new(pixel_count, compact_to_class.len(), parsed.len());
    let mut mask = vec![0u8; pixel_count];
    let mut usable: Vec<(&WorkerAnswer<'_, SegmentationOutput<'_>>, bool)> =
        Vec::with_capacity(parsed.len());
    for ((worker, answer), colors) in parsed.iter().zip(&worker_colors) {
        match decode_mask(&answer.png_base64, size, colors, config, &mut mask) {
            Ok(()) => {
                accumulator.add(&mask);
                usable.push((worker, answer.initial_value_modified == Some(true)));
            }
            Err(problem) => dropped.push(Dropped::worker(worker.worker_id, problem)),
        }
    }
    drop(mask);
    if usable.is_empty() {
        return Err(NoUsableAnswer { dropped }.into());
    }

    let reliabilities: Vec<f64> = usable
        .iter()
        .map(|(worker, _)| effective_reliability(worker.reliability, config.neutral_reliability))
        .collect();
    let patterns = accumulator.finish();
    let inference = votes::infer(
        &patterns,
        size.width as usize,
        size.height as usize,
        &reliabilities,
        config.inference(),
    );
    drop(patterns);

    let confidence = if usable.len() == 1 {
        usable
            .first()
            .and_then(|(worker, _)| worker.reliability)
            .filter(|p| p.is_finite())
            .unwrap_or(0.0)
    } else {
        inference.expected_iou
    };
    let confidence = round_confidence(confidence);

    // Compact classes back to class indices, then the PNG.
    let mut to_class = [0u8; 256];
    for (compact, &class) in compact_to_class.iter().enumerate() {
        to_class[compact] = u8::try_from(class).unwrap_or(0);
    }
    let mut classes_mask = inference.mask;
    for value in &mut classes_mask {
        *value = to_class[usize::from(*value)];
    }
    let png = encode_indexed_png(&classes_mask, size, &colors)
        .map_err(|error| SegmentationError::Encoding(error.to_string()))?;

    let agreements = if usable.len() >= 2 {
        usable
            .iter()
            .zip(&inference.worker_agreement)
            .map(|((worker, _), &agreed)| WorkerAgreement {
                worker_id: worker.worker_id.to_owned(),
                agreed,
                total: 1.0,
            })
            .collect()
    } else {
        Vec::new()
    };

    let classes: Vec<SegmentationClass> = class_names
        .iter()
        .zip(&colors)
        .enumerate()
        .map(|(index, (name, color))| SegmentationClass {
            index,
            name: name.clone(),
            color: *color,
        })
        .collect();
    Ok(SegmentationConsolidation {
        png,
        confidence,
        image_size: size,
        classes,
        initial_value_modified: usable.iter().any(|(_, modified)| *modified),
        dropped,
        agreements,
    })
}

/// One worker's decoded mask: a class per pixel, row-major.
#[derive(Debug, Clone, Copy)]
pub struct WorkerMask<'a> {
    /// The worker's id.
    pub worker_id: &'a str,
    /// Class per pixel (`width × height` values); values at or above the class count are background.
    pub classes: &'a [u8],
    /// Learned probability that this worker is right; `None` when unknown.
    pub reliability: Option<f64>,
}

/// The consolidated mask of [`consolidate_masks`].
#[derive(Debug, Clone, PartialEq)]
pub struct MaskConsolidation {
    /// Class per pixel.
    pub classes: Vec<u8>,
    /// Image confidence (expected IoU, two decimals; 0 for a lone worker of unknown reliability).
    pub confidence: f64,
    /// Unrounded expected IoU (for calibration studies).
    pub expected_iou: f64,
    /// Masks left out, with reasons.
    pub dropped: Vec<Dropped>,
    /// Per-worker agreement, as in [`SegmentationConsolidation::agreements`].
    pub agreements: Vec<WorkerAgreement>,
}

/// Consolidates already decoded masks (class indices `0..class_count`, 0 = background): the inference of
/// [`consolidate_segmentation`] without PNG decoding and encoding (for benchmarks, and for callers who
/// decode themselves). A mask of the wrong length is skipped with a reason.
pub fn consolidate_masks(
    masks: &[WorkerMask<'_>],
    size: ImageSize,
    class_count: usize,
    config: &SegmentationConfig,
) -> Result<MaskConsolidation, SegmentationError> {
    let pixels = u64::from(size.width) * u64::from(size.height);
    let too_large = SegmentationError::TooLarge {
        size,
        pixels,
        max: config.max_pixels,
    };
    if pixels > config.max_pixels {
        return Err(too_large);
    }
    let pixel_count = usize::try_from(pixels).map_err(|_| too_large)?;
    let class_count = class_count.clamp(1, MAX_CLASSES);
    let mut dropped = Vec::new();
    let considered = masks.len().min(config.max_workers);
    let mut usable = Vec::with_capacity(considered);
    for (position, mask) in masks.iter().enumerate() {
        if position >= config.max_workers {
            dropped.push(Dropped::worker(
                mask.worker_id,
                SegmentationWorkerProblem::TooManyWorkers(config.max_workers),
            ));
        } else if mask.classes.len() == pixel_count {
            usable.push(mask);
        } else {
            dropped.push(Dropped::worker(
                mask.worker_id,
                format!(
                    "the mask has {} pixels, the image {pixel_count}",
                    mask.classes.len()
                ),
            ));
        }
    }
    if usable.is_empty() {
        return Err(NoUsableAnswer { dropped }.into());
    }
    let slices: Vec<&[u8]> = usable.iter().map(|mask| mask.classes).collect();
    let reliabilities: Vec<f64> = usable
        .iter()
        .map(|mask| effective_reliability(mask.reliability, config.neutral_reliability))
        .collect();
    let (width, height) = (size.width as usize, size.height as usize);
    // All masks are at hand: eight pixels at a time when a pattern id fits a byte; else one blocked pass
    // when it fits 16 bits, else worker by worker.
    let inference = match votes::infer_masks(
        &slices,
        width,
        height,
        class_count,
        &reliabilities,
        config.inference(),
    ) {
        Some(inference) => inference,
        None => {
            let patterns = match votes::patterns_of_masks(&slices, pixel_count, class_count) {
                Some(patterns) => patterns,
                None => {
                    let mut accumulator =
                        PatternAccumulator::new(pixel_count, class_count, slices.len());
                    for mask in &slices {
                        accumulator.add(mask);
                    }
                    accumulator.finish()
                }
            };
            votes::infer(&patterns, width, height, &reliabilities, config.inference())
        }
    };
    let confidence = if usable.len() == 1 {
        usable
            .first()
            .and_then(|mask| mask.reliability)
            .filter(|p| p.is_finite())
            .unwrap_or(0.0)
    } else {
        inference.expected_iou
    };
    let agreements = if usable.len() >= 2 {
        usable
            .iter()
            .zip(&inference.worker_agreement)
            .map(|(mask, &agreed)| WorkerAgreement {
                worker_id: mask.worker_id.to_owned(),
                agreed,
                total: 1.0,
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(MaskConsolidation {
        classes: inference.mask,
        confidence: round_confidence(confidence),
        expected_iou: inference.expected_iou,
        dropped,
        agreements,
    })
}

fn most_common_size(sizes: impl Iterator<Item = ImageSize>) -> Option<ImageSize> {
    let mut counts: Vec<(ImageSize, usize)> = Vec::new();
    for size in sizes {
        match counts.iter_mut().find(|(seen, _)| *seen == size) {
            Some((_, count)) => *count += 1,
            None => counts.push((size, 1)),
        }
    }
    let best = counts.iter().map(|c| c.1).max()?;
    counts.into_iter().find(|c| c.1 == best).map(|c| c.0)
}

/// Per class, the colour most workers mapped its label to; default palette colours (not used by another
/// class) for the rest; white for background.
fn class_colors(
    class_names: &[String],
    parsed: &[(
        &WorkerAnswer<'_, SegmentationOutput<'_>>,
        &SegmentationAnswer<'_>,
    )],
    class_of: &dyn Fn(&str) -> Option<usize>,
) -> Vec<Rgb> {
    let mut votes: Vec<Vec<(Rgb, usize)>> = vec![Vec::new(); class_names.len()];
    for (_, answer) in parsed {
        for (label, rgb) in &answer.label_colors {
            if let Some(class) = class_of(label) {
                match votes[class].iter_mut().find(|(seen, _)| seen == rgb) {
                    Some((_, count)) => *count += 1,
                    None => votes[class].push((*rgb, 1)),
                }
            }
        }
    }
    let mut colors: Vec<Option<Rgb>> = votes
        .iter()
        .map(|candidates| {
            let best = candidates.iter().map(|c| c.1).max()?;
            candidates.iter().find(|c| c.1 == best).map(|c| c.0)
        })
        .collect();
    if let Some(background) = colors.first_mut() {
        *background = Some(BACKGROUND_COLOR);
    }
    let mut palette = DEFAULT_PALETTE.iter().cycle().take(DEFAULT_PALETTE.len());
    let used: Vec<Rgb> = colors.iter().flatten().copied().collect();
    colors
        .into_iter()
        .map(|color| {
            color.unwrap_or_else(|| {
                palette
                    .find(|candidate| !used.contains(candidate))
                    .copied()
                    .unwrap_or([0, 0, 0])
            })
        })
        .collect()
}

fn rgb_key(rgb: Rgb) -> u32 {
    (u32::from(rgb[0]) << 16) | (u32::from(rgb[1]) << 8) | u32::from(rgb[2])
}

fn decode_base64(
    data: &str,
    config: &SegmentationConfig,
) -> Result<Vec<u8>, SegmentationWorkerProblem> {
    if data.len() > config.max_png_bytes {
        return Err(SegmentationWorkerProblem::PngTooLarge {
            bytes: data.len(),
            max: config.max_png_bytes,
        });
    }
    // Some producers prepend a data-URL header.
    let data = data
        .find("base64,")
        .map_or(data, |at| &data[at + "base64,".len()..]);
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|error| SegmentationWorkerProblem::Base64(error.to_string()))
}

/// The size in a PNG's header, if it can be read.
fn png_header_size(data: &str, config: &SegmentationConfig) -> Option<ImageSize> {
    let bytes = decode_base64(data, config).ok()?;
    let mut decoder = png::Decoder::new_with_limits(
        Cursor::new(bytes.as_slice()),
        png::Limits {
            bytes: config.max_decoder_bytes,
        },
    );
    let info = decoder.read_header_info().ok()?;
    Some(ImageSize {
        width: info.width,
        height: info.height,
    })
}

/// Decodes one worker's PNG into compact classes (`out`, one per pixel of `size`), mapping colours with
/// `colors` (`(0xRRGGBB, class)`); the header is checked before any pixel buffer is allocated.
fn decode_mask(
    data: &str,
    size: ImageSize,
    colors: &[(u32, u8)],
    config: &SegmentationConfig,
    out: &mut [u8],
) -> Result<(), SegmentationWorkerProblem> {
    let bytes = decode_base64(data, config)?;
    let png_error = |error: png::DecodingError| SegmentationWorkerProblem::Png(error.to_string());
    let mut decoder = png::Decoder::new_with_limits(
        Cursor::new(bytes.as_slice()),
        png::Limits {
            bytes: config.max_decoder_bytes,
        },
    );
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    decoder.set_ignore_text_chunk(true);
    decoder.set_ignore_iccp_chunk(true);
    let header = decoder.read_header_info().map_err(png_error)?;
    let got = ImageSize {
        width: header.width,
        height: header.height,
    };
    let pixels = u64::from(got.width) * u64::from(got.height);
    if pixels > config.max_pixels {
        return Err(SegmentationWorkerProblem::TooManyPixels {
            got,
            pixels,
            max: config.max_pixels,
        });
    }
    if got != size {
        return Err(SegmentationWorkerProblem::SizeMismatch {
            got,
            expected: size,
        });
    }
    let interlaced = header.interlaced;
    let mut reader = decoder.read_info().map_err(png_error)?;
    let (color_type, _) = reader.output_color_type();
    let channels = color_type.samples();
    let width = size.width as usize;
    let mut lookup = ColorLookup::new(colors);
    // One loop per sample count, chosen once a row: the per-pixel work is then a few loads and a compare
    // (a loop over `chunks_exact(channels)` matched every pixel against four shapes, and cost more than
    // inflating the PNG).
    let mut convert_row = |row: &[u8], out_row: &mut [u8]| match channels {
        1 => classes_of_row::<1>(row, out_row, &mut lookup),
        2 => classes_of_row::<2>(row, out_row, &mut lookup),
        3 => classes_of_row::<3>(row, out_row, &mut lookup),
        4 => classes_of_row::<4>(row, out_row, &mut lookup),
        // `normalize_to_color8` gives one to four samples; anything else reads as background.
        _ => out_row.fill(0),
    };
    if interlaced {
        let buffer_size = reader
            .output_buffer_size()
            .ok_or_else(|| SegmentationWorkerProblem::Png("image too large".to_owned()))?;
        let mut buffer = vec![0u8; buffer_size];
        let frame = reader.next_frame(&mut buffer).map_err(png_error)?;
        for (row, out_row) in buffer
            .chunks(frame.line_size)
            .zip(out.chunks_mut(width))
            .take(size.height as usize)
        {
            convert_row(row, out_row);
        }
    } else {
        for out_row in out.chunks_mut(width) {
            let row = reader.next_row().map_err(png_error)?.ok_or_else(|| {
                SegmentationWorkerProblem::Png("fewer rows than the header says".to_owned())
            })?;
            convert_row(row.data(), out_row);
        }
    }
    Ok(())
}

/// Compact classes of one decoded row of `N` samples a pixel (gray, gray + alpha, RGB or RGBA): a pixel's
/// colour through `lookup`, background where it is fully transparent. Masks are long runs of one colour,
/// so pixels go sixteen at a time: a block whose bytes are the last converted pixel's, sixteen times over
/// (alpha included; compared eight bytes at a time), gets that pixel's class without a lookup.
fn classes_of_row<const N: usize>(row: &[u8], out: &mut [u8], lookup: &mut ColorLookup<'_>) {
    const BLOCK: usize = 16;
    // The last converted pixel repeated over a block (`N * BLOCK` bytes used), and its class.
    let mut repeated = [0u8; 4 * BLOCK];
    let mut repeated_class: Option<u8> = None;
    for (bytes, out_block) in row.chunks(N * BLOCK).zip(out.chunks_mut(BLOCK)) {
        if let (Some(class), Some(pattern)) = (repeated_class, repeated.get(..bytes.len()))
            && bytes.len() == N * BLOCK
            && same_bytes(bytes, pattern)
            && let Ok(whole) = <&mut [u8; BLOCK]>::try_from(&mut *out_block)
        {
            // A store of known length (`fill` on the slice would call memset for sixteen bytes).
            *whole = [class; BLOCK];
            continue;
        }
        let pixels = bytes.as_chunks::<N>().0;
        for (pixel, out) in pixels.iter().zip(out_block.iter_mut()) {
            *out = class_of_pixel(pixel, lookup);
        }
        if let (Some(last), Some(&class)) = (pixels.last(), out_block.last()) {
            for slot in repeated.as_chunks_mut::<N>().0.iter_mut().take(BLOCK) {
                *slot = *last;
            }
            repeated_class = Some(class);
        }
    }
}

/// Whether `a` and `b` (equally long, a multiple of 8 bytes) hold the same bytes: word by word, no early
/// exit, so that the loop is a few vector operations.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let differ = a
        .as_chunks::<8>()
        .0
        .iter()
        .zip(b.as_chunks::<8>().0)
        .fold(0u64, |acc, (x, y)| {
            acc | (u64::from_le_bytes(*x) ^ u64::from_le_bytes(*y))
        });
    differ == 0
}

/// The compact class of one pixel of `N` samples (see [`classes_of_row`]).
#[inline]
fn class_of_pixel<const N: usize>(pixel: &[u8; N], lookup: &mut ColorLookup<'_>) -> u8 {
    let sample = |i: usize| pixel.get(i).copied().unwrap_or(0);
    let (rgb, alpha) = match N {
        1 => ([sample(0); 3], 255),
        2 => ([sample(0); 3], sample(1)),
        3 => ([sample(0), sample(1), sample(2)], 255),
        _ => ([sample(0), sample(1), sample(2)], sample(3)),
    };
    if alpha == 0 {
        0
    } else {
        lookup.class(rgb_key(rgb))
    }
}

/// Colour → compact class, remembering the last hit (masks are long runs of one colour).
struct ColorLookup<'a> {
    colors: &'a [(u32, u8)],
    last: (u32, u8),
}

impl<'a> ColorLookup<'a> {
    fn new(colors: &'a [(u32, u8)]) -> Self {
        Self {
            colors,
            last: (rgb_key(BACKGROUND_COLOR), 0),
        }
    }

    #[inline]
    fn class(&mut self, key: u32) -> u8 {
        if key == self.last.0 {
            return self.last.1;
        }
        let class = self
            .colors
            .iter()
            .find(|(color, _)| *color == key)
            .map_or(0, |(_, class)| *class);
        self.last = (key, class);
        class
    }
}

/// An 8-bit indexed PNG of `mask` (values are palette indices) with one palette entry per class.
pub fn encode_indexed_png(
    mask: &[u8],
    size: ImageSize,
    palette: &[Rgb],
) -> Result<Vec<u8>, png::EncodingError> {
    let mut png_bytes = Vec::with_capacity(mask.len() / 16 + 1024);
    let mut encoder = png::Encoder::new(&mut png_bytes, size.width, size.height);
    encoder.set_color(png::ColorType::Indexed);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut entries: Vec<u8> = palette
        .iter()
        .take(MAX_CLASSES)
        .flatten()
        .copied()
        .collect();
    if entries.is_empty() {
        entries.extend_from_slice(&BACKGROUND_COLOR);
    }
    encoder.set_palette(entries);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(mask)?;
    writer.finish()?;
    Ok(png_bytes)
}

impl SegmentationConsolidation {
    /// The label as Ground Truth's semantic-segmentation output ([`crate::output::MaskLabel`]), the mask
    /// stored at `location`, what was dropped included.
    pub fn output(&self, location: String) -> MaskLabel {
        MaskLabel {
            location,
            classes: self
                .classes
                .iter()
                .map(|class| MaskClass {
                    index: class.index,
                    name: class.name.clone(),
                    hex_color: hex_color(class.color),
                })
                .collect(),
            confidence: self.confidence,
            dropped: super::crowd::dropped_list(&self.dropped),
        }
    }

    /// `internal-color-map` as JSON: `{"0": {"class-name": "BACKGROUND", "hex-color": "#ffffff",
    /// "confidence": f}, "1": {…}}`, every class of the job.
    pub fn internal_color_map(&self) -> Value {
        LabelBody::Mask(self.output(String::new()))
            .metadata_json()
            .remove(crate::output::INTERNAL_COLOR_MAP)
            .unwrap_or(Value::Null)
    }
}

/// The batch's driver for semantic segmentation: each object's masks through
/// [`consolidate_segmentation`], one image at a time; the consolidated mask goes to `mask_writes` and
/// the label points at where it will be stored.
pub(crate) fn mask_results(
    d: &mut Driver<'_, '_>,
    prepared: &mut [Prepared<'_>],
) -> Vec<ObjectResult> {
    let (job, task_type, priors, settings) = (d.job, d.task_type, d.priors, d.settings);
    let mask_location = d.mask_location;
    let (stats, mask_writes) = (&mut d.stats, &mut d.mask_writes);
    let seg_job = SegmentationJob {
        labels: job.labels.unwrap_or(&[]),
    };
    // One image at a time: an object's decoded masks are dropped before the next is read.
    geometry_results(task_type, prepared, priors, stats, |p, workers| {
        let id = &p.object.dataset_object_id;
        let location = mask_location(id).ok_or_else(|| {
            "consolidated mask not stored: the request has no outputConfig to store the mask under"
                .to_owned()
        })?;
        let mut c = consolidate_segmentation(workers, &seg_job, &settings.segmentation)
            .map_err(|e| e.to_string())?;
        let body = LabelBody::Mask(c.output(location.clone()));
        mask_writes.push(MaskWrite {
            dataset_object_id: id.clone(),
            location,
            png: std::mem::take(&mut c.png),
        });
        Ok(GeometryLabel {
            body,
            confidence: c.confidence,
            agreements: c.agreements,
        })
    })
}

#[cfg(test)]
mod tests;
