//! The pre-annotation decision: one data object in, the worker task input (or "no human needed") out.
//!
//! Built-in PRE functions are undocumented; AWS's templates show what they return (`contracts.md` §1.3,
//! §1.4): `taskObject` (the `source-ref` or `source`), `labels`, and, for adjustment/verification templates,
//! the whole line as `manifestLine`. We return all three for every task type, so one function serves every
//! template.
//!
//! Chained jobs: Ground Truth labels "only the unlabeled objects" when the LAN is reused; we make that rule
//! explicit and answer `isHumanAnnotationRequired: false` for an object already labeled under this job's
//! label attribute name, so a chained job never pays twice for the same object.

use crate::contracts::{PreHumanTaskRequest, PreHumanTaskResponse, RawJson, TaskInput};
use crate::lan::LabelAttributeName;
use crate::manifest::{LineProblem, ManifestLine};
use crate::task_type::TaskType;

/// What the pre-annotation step knows about the job: from configuration, or from DescribeLabelingJob and
/// its label category file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobContext {
    /// The job's label attribute name, when known.
    pub label_attribute_name: Option<LabelAttributeName>,
    /// The job's task type, when known.
    pub task_type: Option<TaskType>,
    /// The job's labels, in class-id order, when known.
    pub labels: Option<Vec<String>>,
}

/// Why a pre-annotation event cannot be answered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PreAnnotationError {
    /// The data object is not a valid manifest line.
    #[error(
        "data object of {} is invalid: {problem}",
        crate::text::echo(labeling_job_arn)
    )]
    InvalidDataObject {
        /// The job.
        labeling_job_arn: String,
        /// What is wrong.
        problem: LineProblem,
    },
}

impl PreAnnotationError {
    /// A stable name for Lambda error responses and alarms.
    pub fn error_type(&self) -> &'static str {
        match self {
            PreAnnotationError::InvalidDataObject { .. } => "InvalidDataObject",
        }
    }
}

/// Answers one pre-annotation event.
pub fn pre_annotate(
    request: &PreHumanTaskRequest,
    job: &JobContext,
) -> Result<PreHumanTaskResponse, PreAnnotationError> {
    parse_data_object(request).map(|line| respond(line, request.data_object.clone(), job))
}

/// Checks the event's data object (exactly one string `source` / `source-ref`, the latter an S3 object
/// URI; at most a manifest line's 100 KB). Done before anything else, so a broken object is reported as
/// such whatever the state of the job lookup.
pub fn parse_data_object(
    request: &PreHumanTaskRequest,
) -> Result<ManifestLine, PreAnnotationError> {
    ManifestLine::from_data_object(request.data_object.get()).map_err(|problem| {
        PreAnnotationError::InvalidDataObject {
            labeling_job_arn: request.labeling_job_arn.clone(),
            problem,
        }
    })
}

/// The answer for a valid data object of `job`; `data_object` is the event's own text of it, which
/// becomes `manifestLine` byte for byte.
pub fn respond(line: ManifestLine, data_object: RawJson, job: &JobContext) -> PreHumanTaskResponse {
    let already_labeled = job
        .label_attribute_name
        .as_ref()
        .is_some_and(|lan| lan.is_labeled(&line));
    let task_object = line.source().value().to_owned();
    PreHumanTaskResponse {
        task_input: TaskInput {
            task_object,
            manifest_line: data_object,
            labels: job.labels.clone(),
        },
        is_human_annotation_required: !already_labeled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(data: serde_json::Value) -> PreHumanTaskRequest {
        serde_json::from_value(json!({
            "version": "2018-10-06",
            "labelingJobArn": "arn:aws:sagemaker:us-east-1:111133333:labeling-job/gt-label6",
            "dataObject": data,
        }))
        .unwrap()
    }

    fn manifest_line(response: &PreHumanTaskResponse) -> serde_json::Value {
        serde_json::from_str(response.task_input.manifest_line.get()).unwrap()
    }

    #[test]
    fn untouched_values_come_through_byte_for_byte() {
        // Integers past 64 bits, a number no f64 holds, trailing zeros, escapes: Ground Truth's to copy.
        let data = r#"{"source-ref":"s3://b/k.jpg","id":123456789012345678901234567890,"huge":1e400,"price":1.50,"note":"café","animal":1,"animal-metadata":{"class-name":"dog"}}"#;
        let req: PreHumanTaskRequest = serde_json::from_str(&format!(
            r#"{{"labelingJobArn":"arn:aws:sagemaker:us-east-1:1:labeling-job/j","dataObject":{data}}}"#
        ))
        .unwrap();
        let resp = pre_annotate(&req, &ctx("animal-check")).unwrap();
        assert_eq!(resp.task_input.manifest_line.get(), data);
        let out = serde_json::to_string(&resp).unwrap();
        assert!(out.contains(&format!(r#""manifestLine":{data}"#)), "{out}");
        assert!(resp.is_human_annotation_required);
        // The label under the job's own name is still read, next to a value a `Value` cannot hold.
        assert!(
            !pre_annotate(&req, &ctx("animal"))
                .unwrap()
                .is_human_annotation_required
        );
    }

    fn ctx(lan: &str) -> JobContext {
        JobContext {
            label_attribute_name: Some(LabelAttributeName::new(lan).unwrap()),
            task_type: Some(TaskType::ImageClassification),
            labels: Some(vec!["cat".to_owned(), "dog".to_owned()]),
        }
    }

    #[test]
    fn source_ref_becomes_the_task_object() {
        let resp = pre_annotate(
            &request(json!({"source-ref": "s3://gt-try-img/deep/deep3.jpg"})),
            &ctx("animal"),
        )
        .unwrap();
        assert_eq!(
            resp.task_input.task_object,
            "s3://gt-try-img/deep/deep3.jpg"
        );
        assert!(resp.is_human_annotation_required);
        assert_eq!(
            resp.task_input.labels.as_deref(),
            Some(&["cat".to_owned(), "dog".to_owned()][..])
        );
        assert_eq!(
            manifest_line(&resp)["source-ref"],
            "s3://gt-try-img/deep/deep3.jpg"
        );
    }

    #[test]
    fn inline_source_becomes_the_task_object() {
        let resp = pre_annotate(
            &request(json!({"source": "some-test-text"})),
            &JobContext::default(),
        )
        .unwrap();
        assert_eq!(resp.task_input.task_object, "some-test-text");
        assert_eq!(resp.task_input.labels, None);
    }

    #[test]
    fn objects_labeled_under_this_lan_are_skipped() {
        let data = json!({"source-ref": "s3://b/1.jpg", "animal": 1, "animal-metadata": {"class-name": "dog"}});
        let resp = pre_annotate(&request(data.clone()), &ctx("animal")).unwrap();
        assert!(!resp.is_human_annotation_required);
        // Another job's LAN (a verification job, say) still needs workers, and sees the prior label.
        let resp = pre_annotate(&request(data), &ctx("animal-check")).unwrap();
        assert!(resp.is_human_annotation_required);
        assert_eq!(manifest_line(&resp)["animal-metadata"]["class-name"], "dog");
    }

    #[test]
    fn failure_metadata_alone_does_not_skip() {
        let data =
            json!({"source-ref": "s3://b/1.jpg", "animal-metadata": {"failure-reason": "expired"}});
        assert!(
            pre_annotate(&request(data), &ctx("animal"))
                .unwrap()
                .is_human_annotation_required
        );
    }

    #[test]
    fn a_data_object_without_source_is_an_error() {
        let err = pre_annotate(&request(json!({})), &ctx("animal")).unwrap_err();
        assert_eq!(err.error_type(), "InvalidDataObject");
        assert!(
            err.to_string()
                .contains("neither `source` nor `source-ref`")
        );
        let err = pre_annotate(&request(json!({"source": 1})), &ctx("animal")).unwrap_err();
        assert!(err.to_string().contains("must be a string"));
    }

    #[test]
    fn a_data_object_over_the_manifest_line_limit_is_refused() {
        let big = "x".repeat(10 * 1024 * 1024);
        let err = parse_data_object(&request(json!({"source": big}))).unwrap_err();
        assert_eq!(err.error_type(), "InvalidDataObject");
        let PreAnnotationError::InvalidDataObject { problem, .. } = &err;
        assert!(
            matches!(problem, LineProblem::TooLong { bytes } if *bytes > 10 * 1024 * 1024),
            "{err}"
        );
        assert!(err.to_string().len() < 300, "{err}");
        // Just under the limit (the line's own braces and key included) is fine.
        let fits = "x".repeat(crate::manifest::MAX_LINE_BYTES - r#"{"source":""}"#.len());
        assert!(parse_data_object(&request(json!({ "source": fits }))).is_ok());
        let over = "x".repeat(crate::manifest::MAX_LINE_BYTES - r#"{"source":""}"#.len() + 1);
        assert!(parse_data_object(&request(json!({ "source": over }))).is_err());
    }

    #[test]
    fn a_source_ref_must_be_an_s3_object_uri() {
        for bad in [
            "",
            "http://x/y",
            "s3://",
            "s3://bucket",
            "s3://bucket/",
            "/etc/passwd",
        ] {
            let err = parse_data_object(&request(json!({ "source-ref": bad }))).unwrap_err();
            assert_eq!(err.error_type(), "InvalidDataObject", "{bad}");
            let PreAnnotationError::InvalidDataObject { problem, .. } = &err;
            assert!(
                matches!(problem, LineProblem::InvalidSourceRef { .. }),
                "{bad}: {err}"
            );
        }
        assert!(parse_data_object(&request(json!({"source-ref": "s3://bucket/a.jpg"}))).is_ok());
    }

    #[test]
    fn key_order_of_the_manifest_line_is_kept() {
        let req: PreHumanTaskRequest = serde_json::from_str(
            r#"{"labelingJobArn":"a","dataObject":{"z":1,"source-ref":"s3://b/k","a":2}}"#,
        )
        .unwrap();
        let resp = pre_annotate(&req, &JobContext::default()).unwrap();
        let out = serde_json::to_string(&resp).unwrap();
        assert!(
            out.contains(r#""manifestLine":{"z":1,"source-ref":"s3://b/k","a":2}"#),
            "{out}"
        );
    }
}
