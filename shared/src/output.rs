//! A consolidated label's own part of Ground Truth's output (`<LAN>` and the label's keys of
//! `<LAN>-metadata`), typed per task family, and the one place those keys are written.
//!
//! Every task family is typed: classification (a class index, a shared class name, a confidence: a batch
//! of thousands of objects holds one small value per label instead of a JSON tree with its own copy of
//! every key), verification, multi-label, object detection (boxes), named entities (spans), semantic
//! segmentation (a mask's location and colour map) and custom tasks (typed around the form's own
//! answer, the one open shape). The keys below are the only spelling of them.
//!
//! The metadata keys common to a batch (`type`, `job-name`, …) and `skipped-answers` are added around
//! these by [`crate::contracts::LabelContent`].

use std::sync::Arc;

use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::{Map, Value};

/// `class-name`: the label's class name.
pub const CLASS_NAME: &str = "class-name";
/// `confidence`: the label's confidence, two decimals.
pub const CONFIDENCE: &str = "confidence";
/// `worker-feedback`: the workers' comments of a verification label.
pub const WORKER_FEEDBACK: &str = "worker-feedback";
/// `class-map`: a multi-label's class names by class index.
pub const CLASS_MAP: &str = "class-map";
/// `confidence-map`: a multi-label's confidences by class index.
pub const CONFIDENCE_MAP: &str = "confidence-map";
/// `failure-reason`: why an object got no label.
pub const FAILURE_REASON: &str = "failure-reason";
/// `objects`: one `{"confidence"}` per box of an object-detection label.
pub const OBJECTS: &str = "objects";
/// `adjustment-status`: whether an adjustment job's workers changed the prior label.
pub const ADJUSTMENT_STATUS: &str = "adjustment-status";
/// `entities`: one `{"confidence"}` per entity of a named-entity label.
pub const ENTITIES: &str = "entities";
/// `internal-color-map`: a semantic-segmentation label's classes, colours and confidence.
pub const INTERNAL_COLOR_MAP: &str = "internal-color-map";
/// `dropped`: the answers and items a geometry engine left out, with reasons.
pub const DROPPED: &str = "dropped";
/// `duplicate-dataset-object-id`: how many payload elements shared the object's id.
pub const DUPLICATE_DATASET_OBJECT_ID: &str = "duplicate-dataset-object-id";

/// One class of a label: its index in the job's class list, its name (shared by the batch's labels)
/// and the confidence, already rounded ([`crate::metadata::round_confidence`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassConfidence {
    /// Index in the class list.
    pub class: usize,
    /// The class's name.
    pub name: Arc<str>,
    /// Rounded confidence.
    pub confidence: f64,
}

/// One box of an object-detection label, in pixels, with its class and rounded confidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectedBox {
    /// Index in the job's class list.
    pub class_id: usize,
    /// The class's name.
    pub class_name: String,
    /// Left edge.
    pub left: i64,
    /// Top edge.
    pub top: i64,
    /// Width.
    pub width: i64,
    /// Height.
    pub height: i64,
    /// Rounded confidence.
    pub confidence: f64,
    /// How many workers drew this box (not written to the output).
    pub workers: usize,
}

/// An object-detection label (bounding boxes and their adjustment):
/// `<LAN>: {"image_size": [{"width", "height", "depth": 3}], "annotations": [{"class_id", "left",
/// "top", "width", "height"}, …]}`, and `objects`, `class-map`, `adjustment-status` (adjustment jobs)
/// and `dropped` (when something was left out) in the metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxesLabel {
    /// The boxes, in output order.
    pub boxes: Vec<DetectedBox>,
    /// The image's width and height.
    pub image_size: (u32, u32),
    /// `adjusted` / `unadjusted`, for adjustment jobs.
    pub adjustment_status: Option<&'static str>,
    /// What was left out (`dropped`), when anything was.
    pub dropped: Option<Value>,
}

impl BoxesLabel {
    /// The classes the boxes name, by index, each once.
    fn classes(&self) -> Vec<(usize, &str)> {
        let mut classes: Vec<(usize, &str)> = self
            .boxes
            .iter()
            .map(|b| (b.class_id, b.class_name.as_str()))
            .collect();
        classes.sort_unstable();
        classes.dedup();
        classes
    }
}

/// One entity of a named-entity label: its label, its character range and rounded confidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entity {
    /// The entity's label.
    pub label: String,
    /// First character.
    pub start_offset: u64,
    /// One past the last character.
    pub end_offset: u64,
    /// Rounded confidence.
    pub confidence: f64,
    /// How many workers marked this entity, with any label or boundaries (not written to the output).
    pub workers: usize,
}

/// A named-entity label: `<LAN>: {"annotations": {"labels": [{"label", "shortDisplayName"?}, …],
/// "entities": [{"label", "startOffset", "endOffset"}, …]}}`, and `entities` (one `{"confidence"}` per
/// entity) and `dropped` (when something was left out) in the metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct EntitiesLabel {
    /// The job's labels with their short display names (or the labels the workers used).
    pub labels: Vec<(String, Option<String>)>,
    /// The entities, by start offset.
    pub entities: Vec<Entity>,
    /// What was left out (`dropped`), when anything was.
    pub dropped: Option<Value>,
}

/// One class of a semantic-segmentation label's colour map.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskClass {
    /// Pixel value (and index in the job's class list).
    pub index: usize,
    /// The class's name.
    pub name: String,
    /// Its colour, `#rrggbb`.
    pub hex_color: String,
}

/// A semantic-segmentation label: `<LAN>: "<the mask's S3 URI>"`, and `internal-color-map` (`{"<index>":
/// {"class-name", "hex-color", "confidence"}, …}`, every class of the job) and `dropped` (when
/// something was left out) in the metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskLabel {
    /// Where the consolidated mask is stored.
    pub location: String,
    /// The colour map.
    pub classes: Vec<MaskClass>,
    /// The image's confidence (the same for every class), rounded.
    pub confidence: f64,
    /// What was left out (`dropped`), when anything was.
    pub dropped: Option<Value>,
}

/// One worker's answer as given (its text shared with the payload).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerContent {
    /// The worker.
    pub worker_id: Arc<str>,
    /// `annotationData.content`: the answer's JSON text.
    pub content: Arc<str>,
}

/// The label part of a consolidated annotation.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelBody {
    /// Image and text classification: `<LAN>: <index>`, `class-name`, `confidence`.
    Class(ClassConfidence),
    /// Label verification and adjustment: `<LAN>: "<index>"` (a string, as Ground Truth writes it),
    /// `class-name`, `confidence`, and `worker-feedback` when workers commented.
    Verification {
        /// The verdict.
        class: ClassConfidence,
        /// The workers' comments, in answer order.
        feedback: Vec<String>,
    },
    /// Multi-label classification: `<LAN>: [indices]`, `class-map`, `confidence-map`.
    MultiLabel(Vec<ClassConfidence>),
    /// A custom task's most common answer (`CUSTOM_MODE=most-common`): `<LAN>: <the answer>`,
    /// `confidence`. The answer is the form's own output, whose shape only the form knows.
    Custom {
        /// The answer, as the workers' form wrote it.
        answer: Value,
        /// Rounded confidence.
        confidence: f64,
    },
    /// A custom task's every answer (`CUSTOM_MODE=all-answers`):
    /// `<LAN>: {"annotationsFromAllWorkers": [{"workerId", "annotationData": {"content"}}, …]}`, no
    /// label metadata.
    AllAnswers(Vec<WorkerContent>),
    /// Bounding boxes and their adjustment.
    Boxes(BoxesLabel),
    /// Named entities.
    Entities(EntitiesLabel),
    /// A semantic-segmentation mask (and its adjustment).
    Mask(MaskLabel),
    /// No label: `failure-reason`.
    Failed(String),
    /// A label that was made and then failed (a mask that could not be stored): no `<LAN>`, the made
    /// label's own metadata keys (what was measured of it), then `failure-reason`.
    Withdrawn {
        /// The label as it was made.
        made: Box<LabelBody>,
        /// Why it failed.
        reason: String,
    },
}

impl LabelBody {
    /// Whether there is a label (not a failure).
    pub fn has_label(&self) -> bool {
        !matches!(self, LabelBody::Failed(_) | LabelBody::Withdrawn { .. })
    }

    /// The class names the label names (one, or a multi-label's), for reports.
    pub fn class_names(&self) -> Vec<&str> {
        match self {
            LabelBody::Class(c) | LabelBody::Verification { class: c, .. } => vec![&c.name],
            LabelBody::MultiLabel(classes) => classes.iter().map(|c| &*c.name).collect(),
            LabelBody::Boxes(label) => label.classes().into_iter().map(|(_, name)| name).collect(),
            LabelBody::Mask(label) => label.classes.iter().map(|c| c.name.as_str()).collect(),
            LabelBody::Entities(label) => {
                let mut names: Vec<&str> =
                    label.entities.iter().map(|e| e.label.as_str()).collect();
                names.sort_unstable();
                names.dedup();
                names
            }
            LabelBody::Failed(_)
            | LabelBody::Withdrawn { .. }
            | LabelBody::Custom { .. }
            | LabelBody::AllAnswers(_) => Vec::new(),
        }
    }

    /// Turns the label into a failure saying `reason`, keeping the label's metadata keys (a mask that
    /// could not be stored keeps what was measured of it).
    pub fn fail(&mut self, reason: &str) {
        let reason = reason.to_owned();
        *self = match std::mem::replace(self, LabelBody::Failed(String::new())) {
            LabelBody::Failed(_) => LabelBody::Failed(reason),
            LabelBody::Withdrawn { made, .. } => LabelBody::Withdrawn { made, reason },
            made => LabelBody::Withdrawn {
                made: Box::new(made),
                reason,
            },
        };
    }

    /// Writes the label's own metadata keys into `map`, in Ground Truth's order.
    pub fn serialize_metadata<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        match self {
            LabelBody::Class(c) => {
                map.serialize_entry(CLASS_NAME, &*c.name)?;
                map.serialize_entry(CONFIDENCE, &c.confidence)
            }
            LabelBody::Verification { class, feedback } => {
                map.serialize_entry(CLASS_NAME, &*class.name)?;
                map.serialize_entry(CONFIDENCE, &class.confidence)?;
                if !feedback.is_empty() {
                    map.serialize_entry(WORKER_FEEDBACK, &Feedback(feedback))?;
                }
                Ok(())
            }
            LabelBody::MultiLabel(classes) => {
                map.serialize_entry(CLASS_MAP, &ByClass::Names(classes))?;
                map.serialize_entry(CONFIDENCE_MAP, &ByClass::Confidences(classes))
            }
            LabelBody::Custom { confidence, .. } => map.serialize_entry(CONFIDENCE, confidence),
            LabelBody::AllAnswers(_) => Ok(()),
            LabelBody::Mask(label) => {
                #[derive(Serialize)]
                struct Color<'a> {
                    #[serde(rename = "class-name")]
                    class_name: &'a str,
                    #[serde(rename = "hex-color")]
                    hex_color: &'a str,
                    confidence: f64,
                }
                struct ColorMap<'a>(&'a MaskLabel);
                impl Serialize for ColorMap<'_> {
                    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                        let mut map = s.serialize_map(Some(self.0.classes.len()))?;
                        for class in &self.0.classes {
                            map.serialize_entry(
                                &class.index.to_string(),
                                &Color {
                                    class_name: &class.name,
                                    hex_color: &class.hex_color,
                                    confidence: self.0.confidence,
                                },
                            )?;
                        }
                        map.end()
                    }
                }
                map.serialize_entry(INTERNAL_COLOR_MAP, &ColorMap(label))?;
                if let Some(dropped) = &label.dropped {
                    map.serialize_entry(DROPPED, dropped)?;
                }
                Ok(())
            }
            LabelBody::Entities(label) => {
                map.serialize_entry(
                    ENTITIES,
                    &confidence_list(label.entities.iter().map(|e| e.confidence)),
                )?;
                if let Some(dropped) = &label.dropped {
                    map.serialize_entry(DROPPED, dropped)?;
                }
                Ok(())
            }
            LabelBody::Boxes(label) => {
                map.serialize_entry(
                    OBJECTS,
                    &confidence_list(label.boxes.iter().map(|b| b.confidence)),
                )?;
                map.serialize_entry(CLASS_MAP, &ClassMap(&label.classes()))?;
                if let Some(status) = label.adjustment_status {
                    map.serialize_entry(ADJUSTMENT_STATUS, status)?;
                }
                if let Some(dropped) = &label.dropped {
                    map.serialize_entry(DROPPED, dropped)?;
                }
                Ok(())
            }
            LabelBody::Failed(reason) => map.serialize_entry(FAILURE_REASON, reason),
            LabelBody::Withdrawn { made, reason } => {
                made.serialize_metadata(map)?;
                map.serialize_entry(FAILURE_REASON, reason)
            }
        }
    }

    /// The label's own metadata keys as a JSON object (for tests and reports).
    pub fn metadata_json(&self) -> Map<String, Value> {
        match serde_json::to_value(MetadataKeys(self)) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }

    /// The value written under `<LAN>` as JSON (for tests and reports).
    pub fn label_json(&self) -> Option<Value> {
        self.label().and_then(|l| serde_json::to_value(l).ok())
    }

    /// The value written under `<LAN>`, `None` for a failure.
    pub fn label(&self) -> Option<LabelValue<'_>> {
        match self {
            LabelBody::Class(c) => Some(LabelValue::Index(c.class)),
            LabelBody::Verification { class, .. } => Some(LabelValue::IndexText(class.class)),
            LabelBody::MultiLabel(classes) => Some(LabelValue::Indices(classes)),
            LabelBody::Custom { answer, .. } => Some(LabelValue::Json(answer)),
            LabelBody::AllAnswers(all) => Some(LabelValue::AllAnswers(all)),
            LabelBody::Boxes(label) => Some(LabelValue::Boxes(label)),
            LabelBody::Entities(label) => Some(LabelValue::Entities(label)),
            LabelBody::Mask(label) => Some(LabelValue::Location(&label.location)),
            LabelBody::Failed(_) | LabelBody::Withdrawn { .. } => None,
        }
    }
}

/// What is written under `<LAN>`.
#[derive(Debug)]
pub enum LabelValue<'a> {
    /// A class index, as a number.
    Index(usize),
    /// A class index, as text.
    IndexText(usize),
    /// Class indices.
    Indices(&'a [ClassConfidence]),
    /// Every worker's answer.
    AllAnswers(&'a [WorkerContent]),
    /// An object-detection label.
    Boxes(&'a BoxesLabel),
    /// A named-entity label.
    Entities(&'a EntitiesLabel),
    /// Where a mask is.
    Location(&'a str),
    /// Any JSON.
    Json(&'a Value),
}

impl Serialize for LabelValue<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            LabelValue::Index(class) => serializer.serialize_u64(*class as u64),
            LabelValue::IndexText(class) => serializer.collect_str(class),
            LabelValue::Indices(classes) => serializer.collect_seq(classes.iter().map(|c| c.class)),
            LabelValue::AllAnswers(all) => {
                #[derive(Serialize)]
                struct AnnotationData<'a> {
                    content: &'a str,
                }
                #[derive(Serialize)]
                #[serde(rename_all = "camelCase")]
                struct Answer<'a> {
                    worker_id: &'a str,
                    annotation_data: AnnotationData<'a>,
                }
                #[derive(Serialize)]
                #[serde(rename_all = "camelCase")]
                struct All<I: Serialize> {
                    annotations_from_all_workers: I,
                }
                let answers: Vec<Answer<'_>> = all
                    .iter()
                    .map(|a| Answer {
                        worker_id: &a.worker_id,
                        annotation_data: AnnotationData {
                            content: &a.content,
                        },
                    })
                    .collect();
                All {
                    annotations_from_all_workers: answers,
                }
                .serialize(serializer)
            }
            LabelValue::Boxes(label) => {
                #[derive(Serialize)]
                struct Size {
                    width: u32,
                    height: u32,
                    depth: u32,
                }
                #[derive(Serialize)]
                struct Annotation {
                    class_id: usize,
                    left: i64,
                    top: i64,
                    width: i64,
                    height: i64,
                }
                #[derive(Serialize)]
                struct Detection {
                    image_size: [Size; 1],
                    annotations: Vec<Annotation>,
                }
                let (width, height) = label.image_size;
                Detection {
                    image_size: [Size {
                        width,
                        height,
                        depth: 3,
                    }],
                    annotations: label
                        .boxes
                        .iter()
                        .map(|b| Annotation {
                            class_id: b.class_id,
                            left: b.left,
                            top: b.top,
                            width: b.width,
                            height: b.height,
                        })
                        .collect(),
                }
                .serialize(serializer)
            }
            LabelValue::Entities(label) => {
                #[derive(Serialize)]
                #[serde(rename_all = "camelCase")]
                struct LabelEntry<'a> {
                    label: &'a str,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    short_display_name: Option<&'a str>,
                }
                #[derive(Serialize)]
                #[serde(rename_all = "camelCase")]
                struct Span<'a> {
                    label: &'a str,
                    start_offset: u64,
                    end_offset: u64,
                }
                #[derive(Serialize)]
                struct Annotations<'a> {
                    labels: Vec<LabelEntry<'a>>,
                    entities: Vec<Span<'a>>,
                }
                #[derive(Serialize)]
                struct Spans<'a> {
                    annotations: Annotations<'a>,
                }
                Spans {
                    annotations: Annotations {
                        labels: label
                            .labels
                            .iter()
                            .map(|(name, short)| LabelEntry {
                                label: name,
                                short_display_name: short.as_deref(),
                            })
                            .collect(),
                        entities: label
                            .entities
                            .iter()
                            .map(|e| Span {
                                label: &e.label,
                                start_offset: e.start_offset,
                                end_offset: e.end_offset,
                            })
                            .collect(),
                    },
                }
                .serialize(serializer)
            }
            LabelValue::Location(location) => serializer.serialize_str(location),
            LabelValue::Json(value) => value.serialize(serializer),
        }
    }
}

/// The label's metadata keys alone, as an object.
struct MetadataKeys<'a>(&'a LabelBody);

impl Serialize for MetadataKeys<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        self.0.serialize_metadata(&mut map)?;
        map.end()
    }
}

/// `worker-feedback`: `[{"comment": …}, …]`.
struct Feedback<'a>(&'a [String]);

impl Serialize for Feedback<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Comment<'a> {
            comment: &'a str,
        }
        serializer.collect_seq(self.0.iter().map(|c| Comment { comment: c }))
    }
}

/// `[{"confidence": c}, …]`: the per-item confidences of boxes (`objects`) and entities (`entities`).
fn confidence_list(confidences: impl Iterator<Item = f64>) -> Vec<Confidence> {
    confidences
        .map(|confidence| Confidence { confidence })
        .collect()
}

#[derive(Serialize)]
struct Confidence {
    confidence: f64,
}

/// `class-map` of an object-detection label: class index (as text) → name, in index order.
struct ClassMap<'a>(&'a [(usize, &'a str)]);

impl Serialize for ClassMap<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (id, name) in self.0 {
            map.serialize_entry(&id.to_string(), name)?;
        }
        map.end()
    }
}

/// An object keyed by class index (as text), in the label's class order: the class names, or the
/// confidences.
enum ByClass<'a> {
    Names(&'a [ClassConfidence]),
    Confidences(&'a [ClassConfidence]),
}

impl Serialize for ByClass<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (ByClass::Names(classes) | ByClass::Confidences(classes)) = self;
        let mut map = serializer.serialize_map(Some(classes.len()))?;
        for class in *classes {
            let key = class.class.to_string();
            match self {
                ByClass::Names(_) => map.serialize_entry(&key, &*class.name)?,
                ByClass::Confidences(_) => map.serialize_entry(&key, &class.confidence)?,
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn class(i: usize, name: &str, confidence: f64) -> ClassConfidence {
        ClassConfidence {
            class: i,
            name: Arc::from(name),
            confidence,
        }
    }

    fn written(body: &LabelBody) -> (Option<Value>, Value) {
        (
            body.label().map(|l| serde_json::to_value(l).unwrap()),
            serde_json::to_value(MetadataKeys(body)).unwrap(),
        )
    }

    #[test]
    fn each_family_writes_ground_truths_keys() {
        assert_eq!(
            written(&LabelBody::Class(class(1, "dog", 0.93))),
            (
                Some(json!(1)),
                json!({"class-name": "dog", "confidence": 0.93})
            )
        );
        assert_eq!(
            written(&LabelBody::Verification {
                class: class(0, "yes", 0.5),
                feedback: vec!["blurry".to_owned()],
            }),
            (
                Some(json!("0")),
                json!({"class-name": "yes", "confidence": 0.5,
                       "worker-feedback": [{"comment": "blurry"}]})
            )
        );
        let (label, meta) = written(&LabelBody::MultiLabel(vec![
            class(2, "sky", 0.8),
            class(0, "sea", 0.61),
        ]));
        assert_eq!(label, Some(json!([2, 0])));
        assert_eq!(
            serde_json::to_string(&meta).unwrap(),
            r#"{"class-map":{"2":"sky","0":"sea"},"confidence-map":{"2":0.8,"0":0.61}}"#
        );
        assert_eq!(
            written(&LabelBody::Custom {
                answer: json!({"form": {"x": 1}}),
                confidence: 0.67,
            }),
            (Some(json!({"form": {"x": 1}})), json!({"confidence": 0.67}))
        );
        assert_eq!(
            written(&LabelBody::AllAnswers(vec![WorkerContent {
                worker_id: Arc::from("w1"),
                content: Arc::from(r#"{"form":{"x":1}}"#),
            }])),
            (
                Some(json!({"annotationsFromAllWorkers": [
                    {"workerId": "w1", "annotationData": {"content": "{\"form\":{\"x\":1}}"}}
                ]})),
                json!({})
            )
        );
        assert_eq!(
            written(&LabelBody::Failed("no usable answer".to_owned())),
            (None, json!({"failure-reason": "no usable answer"}))
        );
    }

    #[test]
    fn a_failed_label_keeps_its_metadata_and_says_why() {
        let mut body = LabelBody::Class(class(1, "dog", 0.93));
        body.fail("not stored");
        assert!(!body.has_label());
        assert_eq!(
            written(&body),
            (
                None,
                json!({"class-name": "dog", "confidence": 0.93, "failure-reason": "not stored"})
            )
        );
    }
}
