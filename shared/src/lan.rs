//! Label attribute names (LAN): the manifest key a job writes its labels under, `<LAN>-metadata` beside it.
//!
//! Every rule of the CreateLabelingJob API and the chaining guide is checked here, in one place
//! (`contracts.md` §7.1, §8): 1–127 characters of the API pattern `[a-zA-Z0-9](-*[a-zA-Z0-9]){0,126}`, no
//! `-metadata` suffix, `source`/`source-ref` reserved, and `-ref` required for the task types that write S3
//! references (segmentation, video, 3D tracking) and forbidden for the other built-in types.
//!
//! "Labeled under LAN X" means the line has an `X` key: a line holding only `X-metadata` (what a failed
//! object may carry) is not labeled, so a chained job still works on it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::manifest::{ManifestLine, SOURCE, SOURCE_REF};
use crate::task_type::TaskType;

/// Longest label attribute name the API accepts.
pub const MAX_LAN_CHARS: usize = 127;

/// Why a label attribute name is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LanError {
    /// Empty.
    #[error("the label attribute name is empty")]
    Empty,
    /// Over 127 characters.
    #[error(
        "label attribute name `{}` is {len} characters long (at most {MAX_LAN_CHARS})",
        crate::text::echo(name)
    )]
    TooLong {
        /// The name.
        name: String,
        /// Its length.
        len: usize,
    },
    /// Outside the API pattern.
    #[error(
        "label attribute name `{}` must be letters and digits, with hyphens only between them (pattern [a-zA-Z0-9](-*[a-zA-Z0-9]){{0,126}})",
        crate::text::echo(name)
    )]
    Pattern {
        /// The name.
        name: String,
    },
    /// `source` or `source-ref`.
    #[error("label attribute name `{name}` is reserved for the data object itself")]
    Reserved {
        /// The name.
        name: String,
    },
    /// Ends in `-metadata`.
    #[error(
        "label attribute name `{}` must not end in `-metadata`",
        crate::text::echo(name)
    )]
    MetadataSuffix {
        /// The name.
        name: String,
    },
    /// `-ref` missing for a task type that needs it.
    #[error("label attribute name `{name}` must end in `-ref` for {task} jobs")]
    RefRequired {
        /// The name.
        name: String,
        /// The job's task type.
        task: TaskType,
    },
    /// `-ref` present for a task type that forbids it.
    #[error("label attribute name `{name}` must not end in `-ref` for {task} jobs")]
    RefForbidden {
        /// The name.
        name: String,
        /// The job's task type.
        task: TaskType,
    },
}

/// A label attribute name that passed the API's rules (those that do not depend on the task type).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct LabelAttributeName(String);

impl LabelAttributeName {
    /// Checks `name` against every rule that does not depend on the task type.
    pub fn new(name: impl Into<String>) -> Result<Self, LanError> {
        let name = name.into();
        if name.is_empty() {
            return Err(LanError::Empty);
        }
        let len = name.chars().count();
        if len > MAX_LAN_CHARS {
            return Err(LanError::TooLong { name, len });
        }
        if name == SOURCE || name == SOURCE_REF {
            return Err(LanError::Reserved { name });
        }
        if !matches_api_pattern(&name) {
            return Err(LanError::Pattern { name });
        }
        if name.ends_with("-metadata") {
            return Err(LanError::MetadataSuffix { name });
        }
        Ok(LabelAttributeName(name))
    }

    /// Checks the name and the `-ref` rule of `task`. Custom task types have no `-ref` rule: the API
    /// states it for built-in types only, and a custom consolidation may well write S3 references.
    pub fn for_task(name: impl Into<String>, task: TaskType) -> Result<Self, LanError> {
        let lan = Self::new(name)?;
        lan.check_task(task)?;
        Ok(lan)
    }

    /// The `-ref` rule of `task` on an already valid name.
    pub fn check_task(&self, task: TaskType) -> Result<(), LanError> {
        if task == TaskType::Custom {
            return Ok(());
        }
        let has_ref = self.0.ends_with("-ref");
        match (task.lan_ends_in_ref(), has_ref) {
            (true, false) => Err(LanError::RefRequired {
                name: self.0.clone(),
                task,
            }),
            (false, true) => Err(LanError::RefForbidden {
                name: self.0.clone(),
                task,
            }),
            _ => Ok(()),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `<LAN>-metadata`.
    pub fn metadata_key(&self) -> String {
        metadata_key(&self.0)
    }

    /// Whether `line` is labeled under this name: it has a non-null `<LAN>` value. Metadata alone (as a
    /// failed object may carry) does not count.
    pub fn is_labeled(&self, line: &ManifestLine) -> bool {
        is_labeled_under(line, &self.0)
    }
}

/// `<name>-metadata`, for any name (also one read from an old manifest that may break today's rules).
pub fn metadata_key(name: &str) -> String {
    format!("{name}-metadata")
}

/// Whether `line` has a non-null value under `name`.
pub fn is_labeled_under(line: &ManifestLine, name: &str) -> bool {
    !matches!(line.get(name), None | Some(Value::Null))
}

/// `[a-zA-Z0-9](-*[a-zA-Z0-9]){0,126}`, as a full match: ASCII letters and digits, hyphens only
/// between them.
fn matches_api_pattern(name: &str) -> bool {
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_alphanumeric();
    bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes.iter().all(|b| alnum(b) || *b == b'-')
}

impl FromStr for LabelAttributeName {
    type Err = LanError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for LabelAttributeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<LabelAttributeName> for String {
    fn from(l: LabelAttributeName) -> String {
        l.0
    }
}

impl TryFrom<String> for LabelAttributeName {
    type Error = LanError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl AsRef<str> for LabelAttributeName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_api_names() {
        for ok in [
            "a",
            "category",
            "bounding-box-attribute-name",
            "A1--b2",
            "test-labeling-job-20211118T021255",
        ] {
            assert!(LabelAttributeName::new(ok).is_ok(), "{ok}");
        }
        assert!(LabelAttributeName::new("x".repeat(127)).is_ok());
    }

    #[test]
    fn rejects_every_broken_rule() {
        assert_eq!(LabelAttributeName::new(""), Err(LanError::Empty));
        assert!(matches!(
            LabelAttributeName::new("x".repeat(128)),
            Err(LanError::TooLong { len: 128, .. })
        ));
        for bad in ["-a", "a-", "a_b", "a b", "a.b", "é"] {
            assert!(
                matches!(LabelAttributeName::new(bad), Err(LanError::Pattern { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            LabelAttributeName::new("source"),
            Err(LanError::Reserved { .. })
        ));
        assert!(matches!(
            LabelAttributeName::new("source-ref"),
            Err(LanError::Reserved { .. })
        ));
        assert!(matches!(
            LabelAttributeName::new("dog-metadata"),
            Err(LanError::MetadataSuffix { .. })
        ));
    }

    #[test]
    fn ref_suffix_depends_on_task_type() {
        assert!(LabelAttributeName::for_task("mask-ref", TaskType::SemanticSegmentation).is_ok());
        assert!(matches!(
            LabelAttributeName::for_task("mask", TaskType::SemanticSegmentation),
            Err(LanError::RefRequired { .. })
        ));
        assert!(matches!(
            LabelAttributeName::for_task("boxes-ref", TaskType::BoundingBox),
            Err(LanError::RefForbidden { .. })
        ));
        assert!(matches!(
            LabelAttributeName::for_task("check-ref", TaskType::VerificationSemanticSegmentation),
            Err(LanError::RefForbidden { .. })
        ));
        assert!(LabelAttributeName::for_task("tracks-ref", TaskType::VideoObjectTracking).is_ok());
        assert!(LabelAttributeName::for_task("anything-ref", TaskType::Custom).is_ok());
        assert!(LabelAttributeName::for_task("anything", TaskType::Custom).is_ok());
    }

    #[test]
    fn labeled_means_a_label_not_metadata() {
        let lan = LabelAttributeName::new("animal").unwrap();
        let labeled =
            ManifestLine::parse(r#"{"source-ref":"s3://b/k","animal":0,"animal-metadata":{}}"#)
                .unwrap();
        let failed = ManifestLine::parse(
            r#"{"source-ref":"s3://b/k","animal-metadata":{"failure-reason":"x"}}"#,
        )
        .unwrap();
        let null = ManifestLine::parse(r#"{"source-ref":"s3://b/k","animal":null}"#).unwrap();
        let other = ManifestLine::parse(r#"{"source-ref":"s3://b/k","plant":1}"#).unwrap();
        assert!(lan.is_labeled(&labeled));
        assert!(!lan.is_labeled(&failed));
        assert!(!lan.is_labeled(&null));
        assert!(!lan.is_labeled(&other));
        assert_eq!(lan.metadata_key(), "animal-metadata");
    }

    /// The oracle: the API's own pattern and length limit (contracts §7.1) read by the regex crate, not
    /// by the implementation under test, and the two reserved rules.
    fn api_allows(name: &str) -> bool {
        let api = regex::Regex::new("^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,126}$").unwrap();
        api.is_match(name)
            && name.len() <= 127
            && name != "source"
            && name != "source-ref"
            && !name.ends_with("-metadata")
    }

    proptest! {
        #[test]
        fn valid_names_follow_the_pattern(name in "[a-zA-Z0-9](-{0,2}[a-zA-Z0-9]){0,40}") {
            let reserved = name == "source" || name.ends_with("-metadata");
            prop_assert_eq!(LabelAttributeName::new(name).is_ok(), !reserved);
        }

        #[test]
        fn names_near_the_rules_are_judged_as_the_api_pattern_says(
            name in "[a-zA-Z0-9-]{0,132}(-metadata|-ref)?|source|source-ref"
        ) {
            prop_assert_eq!(LabelAttributeName::new(name.clone()).is_ok(), api_allows(&name), "{:?}", name);
        }

        #[test]
        fn anything_else_is_rejected(name in ".{0,140}") {
            prop_assert_eq!(LabelAttributeName::new(name.clone()).is_ok(), api_allows(&name), "{:?}", name);
            if let Ok(lan) = LabelAttributeName::new(name) {
                prop_assert!(matches_api_pattern(lan.as_str()));
                prop_assert!(lan.as_str().len() <= MAX_LAN_CHARS);
                prop_assert!(!lan.as_str().ends_with("-metadata"));
                prop_assert!(lan.as_str() != "source" && lan.as_str() != "source-ref");
            }
        }

        #[test]
        fn ref_rule_is_exclusive(name in "[a-z]{1,10}(-ref)?") {
            let lan = LabelAttributeName::new(name.clone()).unwrap();
            let seg = lan.check_task(TaskType::SemanticSegmentation).is_ok();
            let bbox = lan.check_task(TaskType::BoundingBox).is_ok();
            prop_assert!(seg != bbox);
            prop_assert_eq!(seg, name.ends_with("-ref"));
        }
    }
}
