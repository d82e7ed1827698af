//! The pre-annotation handler: event in, `taskInput` out, every decision delegated to `groundwork`.
//!
//! The event is taken as a [`RawEvent`] and parsed here, so a malformed event (not JSON at all, or JSON
//! of the wrong shape) gets our stable `InvalidEvent` error type (with the JSON path of the problem)
//! instead of the runtime's Rust type name.

use std::sync::Arc;

use groundwork::contracts::{PreHumanTaskRequest, PreHumanTaskResponse, RawEvent};
use groundwork::job_context::{JobContextError, JobContextResolver};
use groundwork::ports::{JobsError, LabelingJobDescriber, ObjectReader};
use groundwork::pre_annotation::{PreAnnotationError, parse_data_object, respond};
use lambda_runtime::Diagnostic;
use serde_json::Value;

/// Why an event got an error response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PreHumanTaskError {
    #[error("the event is not a pre-annotation request: {0}")]
    InvalidEvent(String),
    #[error(transparent)]
    InvalidDataObject(#[from] PreAnnotationError),
    #[error(transparent)]
    JobContext(#[from] JobContextError),
}

impl PreHumanTaskError {
    /// Stable names for alarms and for Ground Truth's error reports.
    pub(crate) fn error_type(&self) -> &'static str {
        match self {
            PreHumanTaskError::InvalidEvent(_) => "InvalidEvent",
            PreHumanTaskError::InvalidDataObject(e) => e.error_type(),
            PreHumanTaskError::JobContext(e) => match e {
                JobContextError::InvalidArn(_) => "InvalidLabelingJobArn",
                JobContextError::Describe {
                    source: JobsError::NotFound { .. },
                    ..
                } => "LabelingJobNotFound",
                e if e.is_retryable() => "Retryable.JobLookup",
                JobContextError::Describe { .. } => "JobLookupFailed",
                JobContextError::InvalidLan { .. } => "InvalidLabelAttributeName",
                JobContextError::InvalidUri { .. } | JobContextError::BadLabels { .. } => {
                    "InvalidLabelCategories"
                }
                JobContextError::ReadLabels { .. } => "LabelCategoriesUnreadable",
            },
        }
    }
}

impl From<PreHumanTaskError> for Diagnostic {
    fn from(error: PreHumanTaskError) -> Diagnostic {
        Diagnostic {
            error_type: error.error_type().to_owned(),
            error_message: error.to_string(),
        }
    }
}

/// The handler and what it needs, built once per cold start.
pub(crate) struct PreHumanTask {
    resolver: JobContextResolver,
    jobs: Arc<dyn LabelingJobDescriber>,
    objects: Arc<dyn ObjectReader>,
}

impl PreHumanTask {
    pub(crate) fn new(
        resolver: JobContextResolver,
        jobs: Arc<dyn LabelingJobDescriber>,
        objects: Arc<dyn ObjectReader>,
    ) -> Self {
        PreHumanTask {
            resolver,
            jobs,
            objects,
        }
    }

    /// Answers one event as the runtime delivers it.
    pub(crate) async fn handle_event(
        &self,
        event: RawEvent,
    ) -> Result<PreHumanTaskResponse, PreHumanTaskError> {
        let event = event.into_json().map_err(PreHumanTaskError::InvalidEvent)?;
        self.handle(event).await
    }

    /// Answers one event.
    pub(crate) async fn handle(
        &self,
        event: Value,
    ) -> Result<PreHumanTaskResponse, PreHumanTaskError> {
        let request: PreHumanTaskRequest = serde_path_to_error::deserialize(event)
            .map_err(|e| PreHumanTaskError::InvalidEvent(e.to_string()))?;
        let line = parse_data_object(&request).inspect_err(|e| {
            tracing::warn!(labeling_job_arn = %request.labeling_job_arn, error = %e, "invalid data object");
        })?;
        let job = self
            .resolver
            .resolve(&request.labeling_job_arn, self.jobs.as_ref(), self.objects.as_ref())
            .await
            .inspect_err(|e| {
                tracing::error!(labeling_job_arn = %request.labeling_job_arn, error = %e, "job lookup failed");
            })?;
        let response = respond(line, &job);
        tracing::info!(
            labeling_job_arn = %request.labeling_job_arn,
            task_object = %response.task_input.task_object,
            human_annotation_required = response.is_human_annotation_required,
            "pre-annotation"
        );
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use groundwork::job_context::ConfiguredJob;
    use groundwork::labeling_job::LabelingJobDescription;
    use groundwork::ports::fakes::{MemoryLabelingJobs, MemoryObjectStore};
    use groundwork::{LabelAttributeName, TaskType};
    use serde_json::json;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/aws");

    fn fixture(path: &str) -> Value {
        let text = std::fs::read_to_string(format!("{FIXTURES}/{path}"))
            .expect("fixture in tests/fixtures/aws");
        serde_json::from_str(&text).unwrap()
    }

    fn describing_handler() -> (PreHumanTask, Arc<MemoryLabelingJobs>) {
        let jobs = Arc::new(MemoryLabelingJobs::new());
        let description: LabelingJobDescription = serde_json::from_value(json!({
            "LabelingJobStatus": "InProgress",
            "LabelingJobName": "test-labeling-job",
            "LabelingJobArn": "arn:aws:sagemaker:us-east-1:111111111111:labeling-job/test-labeling-job",
            "LabelAttributeName": "category",
            "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": "s3://test-bucket/in.manifest"}}},
            "OutputConfig": {"S3OutputPath": "s3://test-bucket/out/"},
            "RoleArn": "arn:aws:iam::111111111111:role/gt",
            "LabelCategoryConfigS3Uri": "s3://test-bucket/labels.json",
            "HumanTaskConfig": {
                "WorkteamArn": "arn:aws:sagemaker:us-east-1:111111111111:workteam/private-crowd/t",
                "UiConfig": {"UiTemplateS3Uri": "s3://test-bucket/t.liquid"},
                "PreHumanTaskLambdaArn": "arn:aws:lambda:us-east-1:432418664414:function:PRE-ImageMultiClass",
                "TaskTitle": "t", "TaskDescription": "d",
                "NumberOfHumanWorkersPerDataObject": 3, "TaskTimeLimitInSeconds": 60
            }
        }))
        .unwrap();
        jobs.insert(description);
        let store = Arc::new(MemoryObjectStore::new());
        store.insert(
            "s3://test-bucket/labels.json",
            r#"{"document-version":"2018-11-28","labels":[{"label":"Cat"},{"label":"Dog"}]}"#,
        );
        let handler = PreHumanTask::new(JobContextResolver::from_describe(), jobs.clone(), store);
        (handler, jobs)
    }

    #[tokio::test]
    async fn a_body_that_is_not_json_is_an_invalid_event() {
        let (handler, jobs) = describing_handler();
        let deep = "[".repeat(100_000);
        let bodies: [&[u8]; 3] = [
            br#"{"version":"2018-10-06","labelingJobArn":"arn:aws:sagemaker:us-east-1:1:labeling-job/x","dataObj"#,
            deep.as_bytes(),
            b"{\"version\":\"\xff\"}",
        ];
        for body in bodies {
            let error = handler
                .handle_event(RawEvent::from_slice(body))
                .await
                .unwrap_err();
            assert_eq!(error.error_type(), "InvalidEvent");
            assert!(error.to_string().contains("not valid JSON"), "{error}");
        }
        assert_eq!(jobs.describe_calls(), 0);
    }

    #[tokio::test]
    async fn answers_the_recipe_fixture_with_job_labels() {
        let (handler, jobs) = describing_handler();
        let event = fixture("aws_sagemaker_ground_truth_recipe/pre_human_task_test_event.json");
        let response = handler.handle(event.clone()).await.unwrap();
        assert_eq!(
            response.task_input.task_object,
            "s3://test-bucket/test-image.jpg"
        );
        assert_eq!(
            response.task_input.labels.as_deref(),
            Some(&["Cat".to_owned(), "Dog".to_owned()][..])
        );
        assert!(response.is_human_annotation_required);
        let json = serde_json::to_value(&response).unwrap();
        assert_eq!(json["isHumanAnnotationRequired"], json!(true));
        assert_eq!(json["taskInput"]["manifestLine"], event["dataObject"]);
        handler.handle(event).await.unwrap();
        assert_eq!(
            jobs.describe_calls(),
            1,
            "the job is described once per warm container"
        );
    }

    #[tokio::test]
    async fn skips_objects_already_labeled_under_the_job_lan() {
        let (handler, _) = describing_handler();
        let event = json!({
            "version": "2018-10-06",
            "labelingJobArn": "arn:aws:sagemaker:us-east-1:111111111111:labeling-job/test-labeling-job",
            "dataObject": {"source-ref": "s3://test-bucket/1.jpg", "category": 1, "category-metadata": {"class-name": "Dog"}}
        });
        let response = handler.handle(event).await.unwrap();
        assert!(!response.is_human_annotation_required);
    }

    #[tokio::test]
    async fn configured_function_answers_the_ner_fixture_without_sagemaker() {
        let jobs = Arc::new(MemoryLabelingJobs::new());
        let resolver = JobContextResolver::configured(ConfiguredJob {
            label_attribute_name: LabelAttributeName::new("EntityRecognition-ProtienName").unwrap(),
            task_type: Some(TaskType::Custom),
            labels: None,
            label_category_config: None,
        });
        let handler = PreHumanTask::new(resolver, jobs.clone(), Arc::new(MemoryObjectStore::new()));
        let response = handler
            .handle(fixture(
                "aws_examples_ner_custom_template/pre_annotation_request.json",
            ))
            .await
            .unwrap();
        assert_eq!(
            response.task_input.task_object,
            "Protein tyrosine regulates insulin receptor protein."
        );
        assert_eq!(jobs.describe_calls(), 0);
    }

    #[tokio::test]
    async fn bad_input_gets_stable_error_types() {
        let (handler, _) = describing_handler();
        let cases = [
            (
                json!({"labelingJobArn": "arn:aws:sagemaker:us-east-1:1:labeling-job/x"}),
                "InvalidEvent",
            ),
            (json!([1, 2]), "InvalidEvent"),
            (
                json!({"labelingJobArn": "arn:aws:sagemaker:us-east-1:111111111111:labeling-job/test-labeling-job", "dataObject": {}}),
                "InvalidDataObject",
            ),
            (
                json!({"labelingJobArn": "nope", "dataObject": {"source": "x"}}),
                "InvalidLabelingJobArn",
            ),
            (
                json!({"labelingJobArn": "arn:aws:sagemaker:us-east-1:1:labeling-job/unknown", "dataObject": {"source": "x"}}),
                "LabelingJobNotFound",
            ),
        ];
        for (event, want) in cases {
            let err = handler.handle(event.clone()).await.unwrap_err();
            let diagnostic = Diagnostic::from(err);
            assert_eq!(diagnostic.error_type, want, "{event}");
            assert!(!diagnostic.error_message.is_empty());
        }
        let err = handler
            .handle(json!({"labelingJobArn": "a", "dataObject": "text"}))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("dataObject"),
            "the JSON path is reported: {err}"
        );
    }
}
