//! Label category configuration files (`LabelCategoryConfigS3Uri`).
//!
//! Two documented forms (`contracts.md` §9): the 2D/custom file (`"document-version": "2018-11-28"`,
//! `labels[{label}]`, NER labels may add `shortDisplayName`) and the video/3D file (`"documentVersion":
//! "2020-03-01"`, which AWS's own pages also spell `document-version`; labels may carry attributes, and
//! adjustment/verification jobs name the audited job in `auditLabelAttributeName`). Anything else is a
//! clear error rather than a guess, because a wrong label list silently mislabels a whole job.

use serde::Deserialize;
use serde_json::{Map, Value};

/// The 2D and custom form.
pub const DOCUMENT_VERSION_2018: &str = "2018-11-28";
/// The video frame and 3D point cloud form.
pub const DOCUMENT_VERSION_2020: &str = "2020-03-01";

/// Why a label category file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelCategoryError {
    /// Not JSON, or not an object.
    #[error("label category file is not a JSON object: {0}")]
    InvalidJson(String),
    /// Neither `document-version` nor `documentVersion`.
    #[error("label category file has no `document-version`")]
    MissingVersion,
    /// A version other than the two documented ones.
    #[error(
        "unsupported label category `document-version` `{0}` (expected 2018-11-28 or 2020-03-01)"
    )]
    UnsupportedVersion(String),
    /// No `labels` array, or an empty one.
    #[error("label category file has no labels")]
    NoLabels,
    /// A `labels` entry without a non-empty string `label`.
    #[error("labels[{index}] has no `label` string")]
    BadLabel {
        /// Position in `labels`.
        index: usize,
    },
    /// The same label twice.
    #[error("label `{0}` appears more than once")]
    Duplicate(String),
}

/// One label of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelCategory {
    /// The label, as workers see it and as `class-name` / `class-map` write it.
    pub label: String,
    /// NER's short display name, when given.
    pub short_display_name: Option<String>,
}

/// A parsed label category file.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelCategoryConfig {
    /// `2018-11-28` or `2020-03-01`.
    pub document_version: String,
    /// The labels, in file order (a label's index is its class id).
    pub labels: Vec<LabelCategory>,
    /// For adjustment/verification jobs: the LAN of the job under review.
    pub audit_label_attribute_name: Option<String>,
    /// Every other top-level key, untouched (instructions, attributes, annotation type).
    pub other: Map<String, Value>,
}

#[derive(Deserialize)]
struct RawLabel {
    label: Option<Value>,
    #[serde(rename = "shortDisplayName")]
    short_display_name: Option<String>,
}

impl LabelCategoryConfig {
    /// Parses a file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, LabelCategoryError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| LabelCategoryError::InvalidJson(e.to_string()))?;
        let Value::Object(mut map) = value else {
            return Err(LabelCategoryError::InvalidJson("not an object".to_owned()));
        };
        let version = map
            .shift_remove("document-version")
            .or_else(|| map.shift_remove("documentVersion"))
            .ok_or(LabelCategoryError::MissingVersion)?;
        let version = match version {
            Value::String(v) if v == DOCUMENT_VERSION_2018 || v == DOCUMENT_VERSION_2020 => v,
            other => {
                return Err(LabelCategoryError::UnsupportedVersion(match other {
                    Value::String(s) => s,
                    v => v.to_string(),
                }));
            }
        };
        let labels = match map.shift_remove("labels") {
            Some(Value::Array(items)) if !items.is_empty() => items,
            _ => return Err(LabelCategoryError::NoLabels),
        };
        let mut parsed = Vec::with_capacity(labels.len());
        for (index, item) in labels.into_iter().enumerate() {
            let raw: RawLabel =
                serde_json::from_value(item).map_err(|_| LabelCategoryError::BadLabel { index })?;
            let label = match raw.label {
                Some(Value::String(s)) if !s.is_empty() => s,
                _ => return Err(LabelCategoryError::BadLabel { index }),
            };
            if parsed.iter().any(|l: &LabelCategory| l.label == label) {
                return Err(LabelCategoryError::Duplicate(label));
            }
            parsed.push(LabelCategory {
                label,
                short_display_name: raw.short_display_name,
            });
        }
        let audit = match map.get("auditLabelAttributeName") {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        Ok(LabelCategoryConfig {
            document_version: version,
            labels: parsed,
            audit_label_attribute_name: audit,
            other: map,
        })
    }

    /// The label names in class-id order.
    pub fn label_names(&self) -> Vec<String> {
        self.labels.iter().map(|l| l.label.clone()).collect()
    }

    /// Writes a 2018-11-28 file for `labels` (used by the chainer's follow-up jobs).
    pub fn to_2018_json(labels: &[String]) -> Value {
        serde_json::json!({
            "document-version": DOCUMENT_VERSION_2018,
            "labels": labels.iter().map(|l| serde_json::json!({"label": l})).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_2d_form() {
        let cfg = LabelCategoryConfig::parse(
            br#"{"document-version":"2018-11-28","labels":[{"label":"dog"},{"label":"cat","shortDisplayName":"c"}]}"#,
        )
        .unwrap();
        assert_eq!(cfg.label_names(), ["dog", "cat"]);
        assert_eq!(cfg.labels[1].short_display_name.as_deref(), Some("c"));
    }

    #[test]
    fn parses_the_3d_form_with_attributes() {
        let cfg = LabelCategoryConfig::parse(
            br#"{
            "documentVersion": "2020-03-01",
            "frameAttributes": [{"name":"count players","description":"How many?","type":"number"}],
            "labels": [{"label": "Car", "categoryAttributes": [{"name":"X","type":"number"}]}, {"label": "Pedestrian"}],
            "instructions": {"shortInstruction":"Draw a tight Cuboid", "fullInstruction":"<html markup>"},
            "auditLabelAttributeName": "myPrevJobLabelAttributeName"
        }"#,
        )
        .unwrap();
        assert_eq!(cfg.document_version, DOCUMENT_VERSION_2020);
        assert_eq!(cfg.label_names(), ["Car", "Pedestrian"]);
        assert_eq!(
            cfg.audit_label_attribute_name.as_deref(),
            Some("myPrevJobLabelAttributeName")
        );
        assert!(cfg.other.contains_key("frameAttributes"));
    }

    #[test]
    fn rejects_anything_else_clearly() {
        use LabelCategoryError::*;
        let cases: [(&[u8], LabelCategoryError); 6] = [
            (b"[1]", InvalidJson("not an object".to_owned())),
            (br#"{"labels":[{"label":"a"}]}"#, MissingVersion),
            (
                br#"{"document-version":"2019-01-01","labels":[{"label":"a"}]}"#,
                UnsupportedVersion("2019-01-01".to_owned()),
            ),
            (
                br#"{"document-version":"2018-11-28","labels":[]}"#,
                NoLabels,
            ),
            (
                br#"{"document-version":"2018-11-28","labels":[{"name":"a"}]}"#,
                BadLabel { index: 0 },
            ),
            (
                br#"{"document-version":"2018-11-28","labels":[{"label":"a"},{"label":"a"}]}"#,
                Duplicate("a".to_owned()),
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(LabelCategoryConfig::parse(bytes), Err(want));
        }
    }

    #[test]
    fn writes_a_file_it_can_read() {
        let json = LabelCategoryConfig::to_2018_json(&["a".to_owned(), "b".to_owned()]);
        let cfg = LabelCategoryConfig::parse(json.to_string().as_bytes()).unwrap();
        assert_eq!(cfg.label_names(), ["a", "b"]);
    }
}
