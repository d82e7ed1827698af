//! The pre-annotation handler: event in, `taskInput` out, every decision delegated to `groundwork`.
//!
//! The event is taken as a [`RawEvent`] and parsed here, so a malformed event (not JSON at all, or JSON
//! of the wrong shape) gets our stable `InvalidEvent` error type (with the JSON path of the problem)
//! instead of the runtime's Rust type name.

use std::sync::Arc;

use groundwork::contracts::{PreHumanTaskRequest, PreHumanTaskResponse, RawEvent};
use groundwork::emf::{MetricLine, MetricSink, Unit};
use groundwork::job_context::{JobContextError, JobContextResolver};
use groundwork::manifest::DataSource;
use groundwork::metadata::{Clock, SystemClock};
use groundwork::ports::{JobsError, LabelingJobDescriber, ObjectReader, StoreError};
use groundwork::pre_annotation::{PreAnnotationError, parse_data_object, respond};
use groundwork::s3_scope::{Confined, S3Scope};
use groundwork::text::echo;
use lambda_runtime::Diagnostic;

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
                JobContextError::ReadLabels {
                    source: StoreError::OutsideScope { .. },
                    ..
                } => "S3LocationNotAllowed",
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

/// The metric namespace of the function's EMF line (one per event).
pub(crate) const NAMESPACE: &str = "groundwork/PreHumanTask";

/// The handler and what it needs, built once per cold start.
pub(crate) struct PreHumanTask {
    resolver: JobContextResolver,
    jobs: Arc<dyn LabelingJobDescriber>,
    objects: Arc<dyn ObjectReader>,
    metrics: Arc<dyn MetricSink>,
}

impl PreHumanTask {
    /// `objects` (the label-category files) is confined to `scope` here, so no read leaves it.
    pub(crate) fn new(
        resolver: JobContextResolver,
        jobs: Arc<dyn LabelingJobDescriber>,
        objects: Arc<dyn ObjectReader>,
        scope: S3Scope,
        metrics: Arc<dyn MetricSink>,
    ) -> Self {
        PreHumanTask {
            resolver,
            jobs,
            objects: Arc::new(Confined::new(objects, scope)),
            metrics,
        }
    }

    /// Answers one event as the runtime delivers it. The request is read from the event's own text, so
    /// the data object reaches `manifestLine` byte for byte.
    ///
    /// Every event writes one EMF line: `DataObjects` by `Outcome` (`HumanRequired`, `AlreadyLabeled`,
    /// `Refused`) and, for refusals, by `Reason` (the stable error type).
    pub(crate) async fn handle_event(
        &self,
        event: RawEvent,
    ) -> Result<PreHumanTaskResponse, PreHumanTaskError> {
        let result = self.read_and_answer(event).await;
        let (outcome, reason) = match &result {
            Ok(r) if r.is_human_annotation_required => ("HumanRequired", "-"),
            Ok(_) => ("AlreadyLabeled", "-"),
            Err(e) => ("Refused", e.error_type()),
        };
        let now = SystemClock.now().timestamp_millis();
        let line = MetricLine::new(NAMESPACE, &[&["Outcome"], &["Outcome", "Reason"]])
            .dimension("Outcome", outcome)
            .dimension("Reason", reason)
            .metric("DataObjects", 1.0, Unit::Count);
        self.metrics.emit(line.to_line(now));
        result
    }

    async fn read_and_answer(
        &self,
        event: RawEvent,
    ) -> Result<PreHumanTaskResponse, PreHumanTaskError> {
        let event = event.into_raw().map_err(PreHumanTaskError::InvalidEvent)?;
        let mut json = serde_json::Deserializer::from_str(event.get());
        let request: PreHumanTaskRequest = serde_path_to_error::deserialize(&mut json)
            .map_err(|e| PreHumanTaskError::InvalidEvent(e.to_string()))?;
        self.answer(request).await
    }

    /// Answers one event already parsed (tests).
    #[cfg(test)]
    pub(crate) async fn handle(
        &self,
        event: serde_json::Value,
    ) -> Result<PreHumanTaskResponse, PreHumanTaskError> {
        self.handle_event(RawEvent::from_json(event)).await
    }

    async fn answer(
        &self,
        request: PreHumanTaskRequest,
    ) -> Result<PreHumanTaskResponse, PreHumanTaskError> {
        let line = parse_data_object(&request).inspect_err(|e| {
            tracing::warn!(labeling_job_arn = %echo(&request.labeling_job_arn), error = %e, "invalid data object");
        })?;
        let job = self
            .resolver
            .resolve(&request.labeling_job_arn, self.jobs.as_ref(), self.objects.as_ref())
            .await
            .inspect_err(|e| {
                tracing::error!(labeling_job_arn = %echo(&request.labeling_job_arn), error = %e, "job lookup failed");
            })?;
        // Ids, sizes and URIs only: an inline `source` is the data itself (often personal text), and
        // never goes into the logs, nor do earlier labels of the line.
        let (data_kind, source_ref, data_bytes) = match line.source() {
            DataSource::SourceRef(uri) => ("source-ref", echo(uri), uri.len()),
            DataSource::Source(text) => ("source", "".into(), text.len()),
        };
        let (source_ref, manifest_keys) = (source_ref.into_owned(), line.fields().len());
        let response = respond(line, request.data_object, &job);
        tracing::info!(
            labeling_job_arn = %echo(&request.labeling_job_arn),
            data_object = data_kind,
            source_ref = %source_ref,
            data_bytes,
            manifest_keys,
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
    use groundwork::testing::DescribedJob;
    use groundwork::testing::fakes::{MemoryLabelingJobs, MemoryObjectStore};
    use groundwork::{LabelAttributeName, TaskType};
    use serde_json::Value;
    use serde_json::json;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/aws");

    fn fixture(path: &str) -> Value {
        let text = std::fs::read_to_string(format!("{FIXTURES}/{path}"))
            .expect("fixture in tests/fixtures/aws");
        serde_json::from_str(&text).unwrap()
    }

    fn describing_handler() -> (PreHumanTask, Arc<MemoryLabelingJobs>) {
        describing_handler_within(S3Scope::anywhere())
    }

    #[tokio::test]
    async fn a_label_category_file_outside_the_allowed_s3_locations_is_never_read() {
        let (handler, _) =
            describing_handler_within(S3Scope::parse("s3://test-bucket/out").unwrap());
        let err = handler
            .handle(json!({
                "version": "2018-10-06",
                "labelingJobArn": "arn:aws:sagemaker:us-east-1:111111111111:labeling-job/test-labeling-job",
                "dataObject": {"source-ref": "s3://test-bucket/1.jpg"}
            }))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("s3://test-bucket/labels.json"),
            "{err}"
        );
        assert_eq!(Diagnostic::from(err).error_type, "S3LocationNotAllowed");
    }

    fn describing_handler_within(scope: S3Scope) -> (PreHumanTask, Arc<MemoryLabelingJobs>) {
        describing_handler_recording(scope, Arc::new(groundwork::emf::RecordedMetrics::default()))
    }

    #[tokio::test]
    async fn every_event_writes_one_emf_line_with_its_outcome() {
        let metrics = Arc::new(groundwork::emf::RecordedMetrics::default());
        let (handler, _) = describing_handler_recording(S3Scope::anywhere(), metrics.clone());
        let arn = "arn:aws:sagemaker:us-east-1:111111111111:labeling-job/test-labeling-job";
        for data in [
            json!({"source-ref": "s3://test-bucket/1.jpg"}),
            json!({"source-ref": "s3://test-bucket/2.jpg", "category": 0, "category-metadata": {"class-name": "Cat"}}),
            json!({"source": "private text", "source-ref": "s3://test-bucket/3.jpg"}),
        ] {
            let _ = handler
                .handle(json!({"labelingJobArn": arn, "dataObject": data}))
                .await;
        }
        let lines = metrics.documents();
        let outcomes: Vec<(&str, &str)> = lines
            .iter()
            .map(|l| {
                (
                    l["Outcome"].as_str().unwrap(),
                    l["Reason"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            outcomes,
            [
                ("HumanRequired", "-"),
                ("AlreadyLabeled", "-"),
                ("Refused", "InvalidDataObject")
            ]
        );
        assert!(lines.iter().all(|l| l["DataObjects"] == 1));
        assert!(
            lines
                .iter()
                .all(|l| l["_aws"]["CloudWatchMetrics"][0]["Namespace"] == NAMESPACE)
        );
        assert!(!format!("{lines:?}").contains("private text"));
    }

    fn describing_handler_recording(
        scope: S3Scope,
        metrics: Arc<groundwork::emf::RecordedMetrics>,
    ) -> (PreHumanTask, Arc<MemoryLabelingJobs>) {
        let jobs = Arc::new(MemoryLabelingJobs::new());
        let description = DescribedJob::animals()
            .status("InProgress")
            .name("test-labeling-job")
            .arn("arn:aws:sagemaker:us-east-1:111111111111:labeling-job/test-labeling-job")
            .label_attribute_name("category")
            .stored_at("s3://test-bucket/", "s3://test-bucket/out/")
            .without_output()
            .build();
        jobs.insert(description);
        let store = Arc::new(MemoryObjectStore::new());
        store.insert(
            "s3://test-bucket/labels.json",
            r#"{"document-version":"2018-11-28","labels":[{"label":"Cat"},{"label":"Dog"}]}"#,
        );
        let handler = PreHumanTask::new(
            JobContextResolver::from_describe(),
            jobs.clone(),
            store,
            scope,
            metrics,
        );
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

    /// Everything this test binary logs: one global subscriber (a thread-local one races with the
    /// callsite interest other test threads cache), read back by the lines of one job.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    fn captured_logs() -> &'static Captured {
        static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
        CAPTURED.get_or_init(|| {
            let captured = Captured::default();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(captured.clone())
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .finish();
            // Only this test sets a subscriber in this binary.
            let _ = tracing::subscriber::set_global_default(subscriber);
            captured
        })
    }

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    #[tokio::test]
    async fn logs_ids_sizes_and_uris_never_the_data() {
        let captured = captured_logs();
        let (handler, _) = describing_handler();
        let secret = format!("SECRET patient note\u{0}{}", "x".repeat(50_000));
        let arn = "arn:aws:sagemaker:us-east-1:111111111111:labeling-job/test-labeling-job";
        let before = captured.0.lock().unwrap().len();
        for data_object in [
            json!({"source": secret, "category": 1, "category-metadata": {"class-name": "SECRET-LABEL"}}),
            json!({"source-ref": "s3://test-bucket/img/1.jpg", "note": "SECRET"}),
            json!({"source": secret, "source-ref": "s3://test-bucket/both.jpg"}),
        ] {
            let event =
                json!({"version": "2018-10-06", "labelingJobArn": arn, "dataObject": data_object});
            let _ = handler.handle(event).await;
        }
        let logs = String::from_utf8(captured.0.lock().unwrap()[before..].to_vec()).unwrap();
        // Lines of this test's events only (other tests log concurrently).
        let logs: String = logs
            .lines()
            .filter(|l| l.contains(arn) || l.contains("SECRET"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(!logs.contains("SECRET"), "{logs}");
        assert!(!logs.contains('\0'));
        assert!(logs.len() < 4_000, "{} bytes of logs", logs.len());
        assert!(logs.contains("data_bytes=50020"), "{logs}");
        assert!(
            logs.contains("source_ref=s3://test-bucket/img/1.jpg"),
            "{logs}"
        );
        assert!(logs.contains("invalid data object"), "{logs}");
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
        let handler = PreHumanTask::new(
            resolver,
            jobs.clone(),
            Arc::new(MemoryObjectStore::new()),
            S3Scope::anywhere(),
            Arc::new(groundwork::emf::RecordedMetrics::default()),
        );
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
    async fn the_data_object_reaches_manifest_line_byte_for_byte() {
        let (handler, _) = describing_handler();
        let data = r#"{"source-ref":"s3://test-bucket/1.jpg","id":123456789012345678901234567890,"big":1e400,"w":2.50}"#;
        let body = format!(
            r#"{{"version":"2018-10-06","labelingJobArn":"arn:aws:sagemaker:us-east-1:111111111111:labeling-job/test-labeling-job","dataObject":{data}}}"#
        );
        let response = handler
            .handle_event(RawEvent::from_slice(body.as_bytes()))
            .await
            .unwrap();
        let out = serde_json::to_string(&response).unwrap();
        assert!(out.contains(&format!(r#""manifestLine":{data}"#)), "{out}");
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
