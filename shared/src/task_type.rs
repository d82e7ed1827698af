//! The catalogue of Ground Truth task types.
//!
//! One table answers every per-type question the rest of the crate asks: the `type` string written into
//! `<LAN>-metadata`, whether the label attribute name must end in `-ref`, the `PRE-`/`ACS-` function-name
//! suffix (so a task type can be read back from a built-in Lambda ARN), and the crowd element whose answer
//! the consolidation step reads. Keeping it in one place means a new task type is one new row, not a hunt
//! through `match` statements.
//!
//! Sources: `contracts.md` §3 (crowd elements), §4.2 (output `type` strings), §7.4 (function names) and §8
//! (`-ref` rules, taken from the API reference, which is the most complete of AWS's documents).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A Ground Truth task type, built-in or custom.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum TaskType {
    /// Single-label image classification (`ImageMultiClass`).
    ImageClassification,
    /// Multi-label image classification (`ImageMultiClassMultiLabel`).
    ImageMultiLabelClassification,
    /// Single-label text classification (`TextMultiClass`).
    TextClassification,
    /// Multi-label text classification (`TextMultiClassMultiLabel`).
    TextMultiLabelClassification,
    /// Image bounding boxes (`BoundingBox`).
    BoundingBox,
    /// Image semantic segmentation (`SemanticSegmentation`).
    SemanticSegmentation,
    /// Text named entity recognition (`NamedEntityRecognition`).
    NamedEntityRecognition,
    /// Verification of bounding-box labels (`VerificationBoundingBox`).
    VerificationBoundingBox,
    /// Verification of segmentation labels (`VerificationSemanticSegmentation`).
    VerificationSemanticSegmentation,
    /// Adjustment of bounding-box labels (`AdjustmentBoundingBox`).
    AdjustmentBoundingBox,
    /// Adjustment of segmentation masks (`AdjustmentSemanticSegmentation`).
    AdjustmentSemanticSegmentation,
    /// Video clip classification (`VideoMultiClass`; the developer guide also says `VideoClassification`).
    VideoClassification,
    /// Video frame object detection (`VideoObjectDetection`).
    VideoObjectDetection,
    /// Video frame object tracking (`VideoObjectTracking`).
    VideoObjectTracking,
    /// Adjustment of video frame object detection (`AdjustmentVideoObjectDetection`).
    AdjustmentVideoObjectDetection,
    /// Adjustment of video frame object tracking (`AdjustmentVideoObjectTracking`).
    AdjustmentVideoObjectTracking,
    /// 3D point cloud object detection (`3DPointCloudObjectDetection`).
    PointCloudObjectDetection,
    /// 3D point cloud object tracking (`3DPointCloudObjectTracking`).
    PointCloudObjectTracking,
    /// 3D point cloud semantic segmentation (`3DPointCloudSemanticSegmentation`).
    PointCloudSemanticSegmentation,
    /// Adjustment of 3D point cloud object detection.
    AdjustmentPointCloudObjectDetection,
    /// Adjustment of 3D point cloud object tracking.
    AdjustmentPointCloudObjectTracking,
    /// Adjustment of 3D point cloud semantic segmentation.
    AdjustmentPointCloudSemanticSegmentation,
    /// A custom template (including AWS's `PassThrough` functions).
    Custom,
}

/// What kind of answer a task type's workers give, which decides the consolidation method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AnswerKind {
    /// One class per object (classification, verification, video classification).
    SingleLabel,
    /// A set of classes per object.
    MultiLabel,
    /// Boxes on an image.
    BoundingBoxes,
    /// A PNG mask per image.
    SegmentationMask,
    /// Character-offset spans in a text.
    Entities,
    /// Video and 3D tasks: AWS-hosted UIs whose worker format is undocumented.
    Unsupported,
    /// Anything a custom template returns.
    Custom,
}

/// One row of the catalogue.
#[derive(Debug)]
struct Entry {
    task: TaskType,
    /// Canonical name (the function-name suffix of the API model).
    name: &'static str,
    /// Other names seen in AWS material for the same function.
    aliases: &'static [&'static str],
    /// `type` written into `<LAN>-metadata`.
    output_type: &'static str,
    /// The label attribute name must end in `-ref`.
    lan_ends_in_ref: bool,
    /// `name` attribute of the crowd element AWS's own template uses, when there is one.
    crowd_element: Option<&'static str>,
    answer: AnswerKind,
}

const CATALOGUE: &[Entry] = &[
    Entry {
        task: TaskType::ImageClassification,
        name: "ImageMultiClass",
        aliases: &[],
        output_type: "groundtruth/image-classification",
        lan_ends_in_ref: false,
        crowd_element: Some("crowd-image-classifier"),
        answer: AnswerKind::SingleLabel,
    },
    Entry {
        task: TaskType::ImageMultiLabelClassification,
        name: "ImageMultiClassMultiLabel",
        aliases: &[],
        output_type: "groundtruth/image-classification-multilabel",
        lan_ends_in_ref: false,
        crowd_element: Some("crowd-image-classifier-multi-select"),
        answer: AnswerKind::MultiLabel,
    },
    Entry {
        task: TaskType::TextClassification,
        name: "TextMultiClass",
        aliases: &[],
        output_type: "groundtruth/text-classification",
        lan_ends_in_ref: false,
        crowd_element: Some("crowd-classifier"),
        answer: AnswerKind::SingleLabel,
    },
    Entry {
        task: TaskType::TextMultiLabelClassification,
        name: "TextMultiClassMultiLabel",
        aliases: &[],
        output_type: "groundtruth/text-classification-multilabel",
        lan_ends_in_ref: false,
        crowd_element: Some("crowd-classifier-multi-select"),
        answer: AnswerKind::MultiLabel,
    },
    Entry {
        task: TaskType::BoundingBox,
        name: "BoundingBox",
        aliases: &[],
        output_type: "groundtruth/object-detection",
        lan_ends_in_ref: false,
        crowd_element: Some("crowd-bounding-box"),
        answer: AnswerKind::BoundingBoxes,
    },
    Entry {
        task: TaskType::SemanticSegmentation,
        name: "SemanticSegmentation",
        aliases: &[],
        output_type: "groundtruth/semantic-segmentation",
        lan_ends_in_ref: true,
        crowd_element: Some("crowd-semantic-segmentation"),
        answer: AnswerKind::SegmentationMask,
    },
    Entry {
        task: TaskType::NamedEntityRecognition,
        name: "NamedEntityRecognition",
        aliases: &[],
        output_type: "groundtruth/text-span",
        lan_ends_in_ref: false,
        crowd_element: Some("crowd-entity-annotation"),
        answer: AnswerKind::Entities,
    },
    Entry {
        task: TaskType::VerificationBoundingBox,
        name: "VerificationBoundingBox",
        aliases: &[],
        output_type: "groundtruth/label-verification",
        lan_ends_in_ref: false,
        crowd_element: Some("crowd-classifier"),
        answer: AnswerKind::SingleLabel,
    },
    Entry {
        task: TaskType::VerificationSemanticSegmentation,
        name: "VerificationSemanticSegmentation",
        aliases: &[],
        output_type: "groundtruth/label-verification",
        // The API reference singles this one out: unlike segmentation itself, its LAN must NOT end in -ref.
        lan_ends_in_ref: false,
        crowd_element: Some("crowd-classifier"),
        answer: AnswerKind::SingleLabel,
    },
    Entry {
        task: TaskType::AdjustmentBoundingBox,
        name: "AdjustmentBoundingBox",
        aliases: &[],
        output_type: "groundtruth/object-detection",
        lan_ends_in_ref: false,
        crowd_element: Some("crowd-bounding-box"),
        answer: AnswerKind::BoundingBoxes,
    },
    Entry {
        task: TaskType::AdjustmentSemanticSegmentation,
        name: "AdjustmentSemanticSegmentation",
        aliases: &[],
        output_type: "groundtruth/semantic-segmentation",
        lan_ends_in_ref: true,
        crowd_element: Some("crowd-semantic-segmentation"),
        answer: AnswerKind::SegmentationMask,
    },
    Entry {
        task: TaskType::VideoClassification,
        name: "VideoMultiClass",
        aliases: &["VideoClassification"],
        // Undocumented (contracts.md gap 10); AWS says the output is "the same as classification".
        output_type: "groundtruth/video-classification",
        lan_ends_in_ref: false,
        crowd_element: Some("crowd-classifier"),
        answer: AnswerKind::SingleLabel,
    },
    Entry {
        task: TaskType::VideoObjectDetection,
        name: "VideoObjectDetection",
        aliases: &[],
        output_type: "groundtruth/video-object-detection",
        lan_ends_in_ref: true,
        crowd_element: None,
        answer: AnswerKind::Unsupported,
    },
    Entry {
        task: TaskType::VideoObjectTracking,
        name: "VideoObjectTracking",
        aliases: &[],
        output_type: "groundtruth/video-object-tracking",
        lan_ends_in_ref: true,
        crowd_element: None,
        answer: AnswerKind::Unsupported,
    },
    Entry {
        task: TaskType::AdjustmentVideoObjectDetection,
        name: "AdjustmentVideoObjectDetection",
        aliases: &[],
        output_type: "groundtruth/video-object-detection",
        lan_ends_in_ref: true,
        crowd_element: None,
        answer: AnswerKind::Unsupported,
    },
    Entry {
        task: TaskType::AdjustmentVideoObjectTracking,
        name: "AdjustmentVideoObjectTracking",
        aliases: &[],
        output_type: "groundtruth/video-object-tracking",
        lan_ends_in_ref: true,
        crowd_element: None,
        answer: AnswerKind::Unsupported,
    },
    Entry {
        task: TaskType::PointCloudObjectDetection,
        name: "3DPointCloudObjectDetection",
        aliases: &[],
        output_type: "groundtruth/point_cloud_object_detection",
        lan_ends_in_ref: false,
        crowd_element: None,
        answer: AnswerKind::Unsupported,
    },
    Entry {
        task: TaskType::PointCloudObjectTracking,
        name: "3DPointCloudObjectTracking",
        aliases: &[],
        output_type: "groundtruth/point_cloud_object_tracking",
        lan_ends_in_ref: true,
        crowd_element: None,
        answer: AnswerKind::Unsupported,
    },
    Entry {
        task: TaskType::PointCloudSemanticSegmentation,
        name: "3DPointCloudSemanticSegmentation",
        aliases: &[],
        output_type: "groundtruth/point_cloud_single_frame_semantic_segmentation",
        lan_ends_in_ref: true,
        crowd_element: None,
        answer: AnswerKind::Unsupported,
    },
    Entry {
        task: TaskType::AdjustmentPointCloudObjectDetection,
        name: "Adjustment3DPointCloudObjectDetection",
        aliases: &[],
        output_type: "groundtruth/point_cloud_object_detection",
        lan_ends_in_ref: false,
        crowd_element: None,
        answer: AnswerKind::Unsupported,
    },
    Entry {
        task: TaskType::AdjustmentPointCloudObjectTracking,
        name: "Adjustment3DPointCloudObjectTracking",
        aliases: &[],
        output_type: "groundtruth/point_cloud_object_tracking",
        lan_ends_in_ref: true,
        crowd_element: None,
        answer: AnswerKind::Unsupported,
    },
    Entry {
        task: TaskType::AdjustmentPointCloudSemanticSegmentation,
        name: "Adjustment3DPointCloudSemanticSegmentation",
        aliases: &[],
        output_type: "groundtruth/point_cloud_single_frame_semantic_segmentation",
        lan_ends_in_ref: true,
        crowd_element: None,
        answer: AnswerKind::Unsupported,
    },
    Entry {
        task: TaskType::Custom,
        name: "Custom",
        aliases: &["PassThrough"],
        output_type: "groundtruth/custom",
        lan_ends_in_ref: false,
        crowd_element: None,
        answer: AnswerKind::Custom,
    },
];

/// A task-type name that is in no row of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown task type `{0}` (expected one of: {names})", names = TaskType::names().collect::<Vec<_>>().join(", "))]
pub struct UnknownTaskType(pub String);

impl TaskType {
    /// Every task type, in catalogue order.
    pub fn all() -> impl Iterator<Item = TaskType> {
        CATALOGUE.iter().map(|e| e.task)
    }

    /// The canonical names, in catalogue order.
    pub fn names() -> impl Iterator<Item = &'static str> {
        CATALOGUE.iter().map(|e| e.name)
    }

    fn entry(self) -> &'static Entry {
        // Every variant has exactly one row; the catalogue test checks it.
        CATALOGUE
            .iter()
            .find(|e| e.task == self)
            .unwrap_or(&CATALOGUE[CATALOGUE.len() - 1])
    }

    /// The canonical name, as in `PRE-<name>` / `ACS-<name>`.
    pub fn name(self) -> &'static str {
        self.entry().name
    }

    /// The `type` string of the output metadata.
    pub fn output_type(self) -> &'static str {
        self.entry().output_type
    }

    /// Whether the label attribute name of a job of this type must end in `-ref` (and must not otherwise).
    pub fn lan_ends_in_ref(self) -> bool {
        self.entry().lan_ends_in_ref
    }

    /// The `name` of the crowd element whose answer this type's consolidation reads, if built in.
    pub fn crowd_element(self) -> Option<&'static str> {
        self.entry().crowd_element
    }

    /// The shape of the workers' answers.
    pub fn answer_kind(self) -> AnswerKind {
        self.entry().answer
    }

    /// Adjustment jobs compare the consolidated label with the prior one (`adjustment-status`).
    pub fn is_adjustment(self) -> bool {
        self.name().starts_with("Adjustment")
    }

    /// Verification jobs review another job's labels (and must use another label attribute name).
    pub fn is_verification(self) -> bool {
        self.name().starts_with("Verification")
    }

    /// Reads the task type from a built-in Lambda ARN or function name, e.g.
    /// `arn:aws:lambda:us-east-1:432418664414:function:PRE-BoundingBox` or `ACS-TextMultiClass`.
    /// Any other function (a custom Lambda, ours included) is a custom task: `None` is never returned for
    /// a well-formed name, because a custom template is a task type too.
    pub fn from_lambda_arn(arn: &str) -> TaskType {
        let function = arn.rsplit_once(":function:").map_or(arn, |(_, f)| f);
        // A qualified ARN (`...:function:PRE-BoundingBox:1`) carries a version or alias after the name.
        let function = function.split(':').next().unwrap_or(function);
        let suffix = function
            .strip_prefix("PRE-")
            .or_else(|| function.strip_prefix("ACS-"));
        suffix
            .and_then(|s| s.parse().ok())
            .unwrap_or(TaskType::Custom)
    }

    /// The task type whose crowd element is `element`, when it names one unambiguously.
    /// `crowd-classifier` answers text classification, video classification and verification alike; the
    /// text type is returned, which consolidates the same way (a single label).
    pub fn from_crowd_element(element: &str) -> Option<TaskType> {
        CATALOGUE
            .iter()
            .find(|e| e.crowd_element == Some(element))
            .map(|e| e.task)
    }
}

impl FromStr for TaskType {
    type Err = UnknownTaskType;

    /// Accepts the canonical name, an alias, or the kebab-case form (`bounding-box`,
    /// `image-multi-class`), case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = normalise(s);
        CATALOGUE
            .iter()
            .find(|e| {
                normalise(e.name) == wanted || e.aliases.iter().any(|a| normalise(a) == wanted)
            })
            .map(|e| e.task)
            .ok_or_else(|| UnknownTaskType(s.to_owned()))
    }
}

fn normalise(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '-' && *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

impl fmt::Display for TaskType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<TaskType> for String {
    fn from(t: TaskType) -> String {
        t.name().to_owned()
    }
}

impl TryFrom<String> for TaskType {
    type Error = UnknownTaskType;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_exactly_one_row() {
        for entry in CATALOGUE {
            let rows = CATALOGUE.iter().filter(|e| e.task == entry.task).count();
            assert_eq!(rows, 1, "{:?}", entry.task);
            assert_eq!(entry.task.name(), entry.name);
        }
        assert_eq!(CATALOGUE.len(), 23);
    }

    #[test]
    fn reads_task_type_from_built_in_arns() {
        let cases = [
            (
                "arn:aws:lambda:us-east-1:432418664414:function:PRE-BoundingBox",
                TaskType::BoundingBox,
            ),
            (
                "arn:aws:lambda:us-west-2:081040173940:function:ACS-TextMultiClass",
                TaskType::TextClassification,
            ),
            (
                "arn:aws:lambda:eu-west-1:568282634449:function:ACS-3DPointCloudObjectTracking",
                TaskType::PointCloudObjectTracking,
            ),
            (
                "arn:aws:lambda:us-east-1:432418664414:function:PRE-VideoClassification",
                TaskType::VideoClassification,
            ),
            (
                "arn:aws:lambda:us-east-1:432418664414:function:ACS-VerificationSemanticSegmentation",
                TaskType::VerificationSemanticSegmentation,
            ),
            (
                "arn:aws:lambda:us-east-1:432418664414:function:PRE-ImageMultiClassMultiLabel:3",
                TaskType::ImageMultiLabelClassification,
            ),
            (
                "arn:aws:lambda:us-east-1:432418664414:function:PRE-PassThrough",
                TaskType::Custom,
            ),
            (
                "arn:aws:lambda:us-east-1:111111111111:function:groundwork-PreHumanTask",
                TaskType::Custom,
            ),
            (
                "ACS-NamedEntityRecognition",
                TaskType::NamedEntityRecognition,
            ),
        ];
        for (arn, want) in cases {
            assert_eq!(TaskType::from_lambda_arn(arn), want, "{arn}");
        }
    }

    #[test]
    fn ref_rule_follows_the_api_reference() {
        assert!(TaskType::SemanticSegmentation.lan_ends_in_ref());
        assert!(TaskType::AdjustmentSemanticSegmentation.lan_ends_in_ref());
        assert!(!TaskType::VerificationSemanticSegmentation.lan_ends_in_ref());
        assert!(!TaskType::PointCloudObjectDetection.lan_ends_in_ref());
        assert!(TaskType::PointCloudObjectTracking.lan_ends_in_ref());
        assert!(!TaskType::BoundingBox.lan_ends_in_ref());
    }

    #[test]
    fn parses_names_aliases_and_kebab_case() {
        assert_eq!("bounding-box".parse(), Ok(TaskType::BoundingBox));
        assert_eq!("ImageMultiClass".parse(), Ok(TaskType::ImageClassification));
        assert_eq!(
            "video-classification".parse(),
            Ok(TaskType::VideoClassification)
        );
        assert_eq!("custom".parse(), Ok(TaskType::Custom));
        let err = "boxes".parse::<TaskType>().unwrap_err();
        assert!(err.to_string().contains("BoundingBox"));
    }

    #[test]
    fn names_round_trip_through_serde() {
        for t in TaskType::all() {
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(serde_json::from_str::<TaskType>(&json).unwrap(), t);
        }
    }

    #[test]
    fn crowd_elements_map_back() {
        assert_eq!(
            TaskType::from_crowd_element("crowd-bounding-box"),
            Some(TaskType::BoundingBox)
        );
        assert_eq!(
            TaskType::from_crowd_element("crowd-classifier"),
            Some(TaskType::TextClassification)
        );
        assert_eq!(TaskType::from_crowd_element("crowd-polygon"), None);
    }
}
