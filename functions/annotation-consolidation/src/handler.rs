//! The consolidation handler: request in, one response entry per payload object out.
//!
//! All the work is `groundwork::consolidate::service::handle_request`; this module picks the S3 reader
//! (the function's own role, or the request's `roleArn` when configured), turns request-level failures
//! into stable Lambda error types, and logs one structured line per batch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use groundwork::consolidate::job_audit::{AuditCache, AuditReport};
use groundwork::consolidate::prior_answers::PriorAnswersCache;
use groundwork::consolidate::service::{Ports, QualityReport, RequestError, handle_request};
use groundwork::contracts::{ConsolidationRequest, ConsolidationResponseEntry, RawEvent};
use groundwork::emf::{MetricLine, MetricSink, Unit};
use groundwork::metadata::Clock;
use groundwork::ports::{ObjectReader, ObjectWriter, VersionedStore};
use groundwork::s3_scope::Confined;
use groundwork::text::echo;
use lambda_runtime::Diagnostic;
use serde_json::Value;

use crate::config::Config;

/// Why a whole request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConsolidationError {
    #[error("the event is not a consolidation request: {0}")]
    InvalidEvent(String),
    #[error("cannot assume {role}: {message}")]
    AssumeRole { role: String, message: String },
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(
        "the response for {objects} objects is {bytes} bytes, over Lambda's {limit}-byte response limit \
         (the runtime would fail the invocation without saying why)"
    )]
    ResponseTooLarge {
        objects: usize,
        bytes: usize,
        limit: usize,
    },
}

impl ConsolidationError {
    pub(crate) fn error_type(&self) -> &'static str {
        match self {
            ConsolidationError::InvalidEvent(_) => "InvalidEvent",
            ConsolidationError::AssumeRole { .. } => "AssumeRoleFailed",
            ConsolidationError::Request(e) => e.error_type(),
            ConsolidationError::ResponseTooLarge { .. } => "ResponseTooLarge",
        }
    }
}

impl From<ConsolidationError> for Diagnostic {
    fn from(error: ConsolidationError) -> Diagnostic {
        Diagnostic {
            error_type: error.error_type().to_owned(),
            error_message: error.to_string(),
        }
    }
}

/// Gives an S3 reader acting as a role (the request's `roleArn`).
#[async_trait]
pub(crate) trait RoleReaders: Send + Sync {
    async fn reader_for(&self, role_arn: &str) -> Result<Arc<dyn ObjectReader>, String>;
}

/// The storage the handler works with.
pub(crate) struct Storage {
    pub(crate) reader: Arc<dyn ObjectReader>,
    pub(crate) writer: Arc<dyn ObjectWriter>,
    pub(crate) quality: Arc<dyn VersionedStore>,
    pub(crate) roles: Option<Arc<dyn RoleReaders>>,
}

/// The metric namespace of the function's EMF line (one per invocation).
pub(crate) const NAMESPACE: &str = "groundwork/Consolidation";

/// The handler, built once per cold start.
pub(crate) struct Consolidation {
    config: Config,
    storage: Storage,
    clock: Arc<dyn Clock>,
    metrics: Arc<dyn MetricSink>,
    role_readers: Mutex<HashMap<String, Arc<dyn ObjectReader>>>,
    /// Top-up rounds' earlier answers, read once per job and container.
    prior_answers: PriorAnswersCache,
    /// Audits that recalibrate confidences, read at most every ten minutes per job family.
    audit: AuditCache,
}

impl Consolidation {
    /// Every store, and every reader assumed later, is confined to the configured S3 scope here, so that
    /// no path of the handler can reach outside it.
    pub(crate) fn new(
        config: Config,
        storage: Storage,
        clock: Arc<dyn Clock>,
        metrics: Arc<dyn MetricSink>,
    ) -> Self {
        let scope = &config.scope;
        let storage = Storage {
            reader: Arc::new(Confined::new(storage.reader, scope.clone())),
            writer: Arc::new(Confined::new(storage.writer, scope.clone())),
            quality: Arc::new(Confined::new(storage.quality, scope.clone())),
            roles: storage.roles,
        };
        Consolidation {
            config,
            storage,
            clock,
            metrics,
            role_readers: Mutex::new(HashMap::new()),
            prior_answers: PriorAnswersCache::new(),
            audit: AuditCache::new(),
        }
    }

    async fn reader(
        &self,
        request: &ConsolidationRequest,
    ) -> Result<Arc<dyn ObjectReader>, ConsolidationError> {
        let (true, Some(roles), Some(role)) = (
            self.config.assume_role,
            &self.storage.roles,
            &request.role_arn,
        ) else {
            return Ok(Arc::clone(&self.storage.reader));
        };
        if let Some(reader) = self
            .role_readers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(role)
        {
            return Ok(Arc::clone(reader));
        }
        let reader =
            roles
                .reader_for(role)
                .await
                .map_err(|message| ConsolidationError::AssumeRole {
                    role: role.clone(),
                    message,
                })?;
        let reader: Arc<dyn ObjectReader> =
            Arc::new(Confined::new(reader, self.config.scope.clone()));
        self.role_readers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(role.clone(), Arc::clone(&reader));
        Ok(reader)
    }

    /// Answers one request as the runtime delivers it: a body that is not JSON is an `InvalidEvent`.
    /// Every invocation writes one EMF line: the batch's counts, or the failed request's error type.
    pub(crate) async fn handle_event(
        &self,
        event: RawEvent,
    ) -> Result<Vec<ConsolidationResponseEntry>, ConsolidationError> {
        let result = match event.into_json() {
            Ok(event) => self.consolidate(event).await,
            Err(e) => Err(ConsolidationError::InvalidEvent(e)),
        };
        let now = self.clock.now().timestamp_millis();
        let line = match &result {
            Ok((_, metrics)) => metrics.clone(),
            Err(e) => MetricLine::new(NAMESPACE, &[&["ErrorType"]])
                .dimension("ErrorType", e.error_type())
                .metric("FailedRequests", 1.0, Unit::Count),
        };
        self.metrics.emit(line.to_line(now));
        result.map(|(entries, _)| entries)
    }

    /// Answers one request already parsed (tests), as [`Consolidation::handle_event`] does.
    #[cfg(test)]
    pub(crate) async fn handle(
        &self,
        event: Value,
    ) -> Result<Vec<ConsolidationResponseEntry>, ConsolidationError> {
        self.handle_event(RawEvent::from_json(event)).await
    }

    /// Answers one request, with the invocation's metrics.
    async fn consolidate(
        &self,
        event: Value,
    ) -> Result<(Vec<ConsolidationResponseEntry>, MetricLine), ConsolidationError> {
        let request: ConsolidationRequest = serde_path_to_error::deserialize(event)
            .map_err(|e| ConsolidationError::InvalidEvent(e.to_string()))?;
        let reader = self.reader(&request).await?;
        let ports = Ports {
            reader: reader.as_ref(),
            writer: self.storage.writer.as_ref(),
            quality: self
                .config
                .worker_quality
                .then_some(self.storage.quality.as_ref()),
            prior_answers: Some(&self.prior_answers),
            audit: Some(&self.audit),
            scope: &self.config.scope,
        };
        let outcome = handle_request(&request, ports, &self.config.settings, self.clock.as_ref())
            .await
            .inspect_err(|e| {
                tracing::error!(labeling_job_arn = %echo(&request.labeling_job_arn), error = %e, error_type = e.error_type(), "batch failed");
            })?;
        let summary = &outcome.batch.summary;
        if let QualityReport::Failed { reason } = &outcome.quality {
            tracing::warn!(labeling_job_arn = %echo(&request.labeling_job_arn), %reason, "worker quality not kept for this batch");
        }
        let audit_verdicts = match &outcome.audit {
            AuditReport::Applied { audited, .. } => *audited,
            AuditReport::Failed { uri, reason } => {
                tracing::warn!(labeling_job_arn = %echo(&request.labeling_job_arn), audit = %uri, %reason, "audit not used: the model's confidences stand");
                0
            }
            AuditReport::Off | AuditReport::Absent { .. } => 0,
        };
        if summary.plain_vote {
            tracing::warn!(labeling_job_arn = %echo(&request.labeling_job_arn), "the batch names too many classes for a worker model (MAX_MODEL_CELLS): answered by plain vote");
        }
        for failure in &outcome.mask_failures {
            tracing::warn!(labeling_job_arn = %echo(&request.labeling_job_arn), %failure, "mask not stored");
        }
        tracing::info!(
            labeling_job_arn = %echo(&request.labeling_job_arn),
            label_attribute_name = %echo(&request.label_attribute_name),
            task_type = %outcome.batch.task_type,
            entries = summary.entries,
            labeled = summary.labeled,
            failed = summary.failed,
            unidentifiable = summary.unidentifiable,
            skipped_answers = summary.skipped_answers,
            earlier_round_answers = outcome.earlier_answers,
            audit_verdicts,
            mean_confidence = summary.mean_confidence,
            "batch consolidated"
        );
        let quality_failed = matches!(outcome.quality, QualityReport::Failed { .. });
        let metrics = MetricLine::new(NAMESPACE, &[&[], &["TaskType"]])
            .dimension("TaskType", &outcome.batch.task_type.to_string())
            .metric("Objects", summary.entries as f64, Unit::Count)
            .metric("LabeledObjects", summary.labeled as f64, Unit::Count)
            .metric("FailedObjects", summary.failed as f64, Unit::Count)
            .metric(
                "SkippedAnswers",
                summary.skipped_answers as f64,
                Unit::Count,
            )
            .metric("MeanConfidence", summary.mean_confidence, Unit::None)
            .metric(
                "EarlierRoundAnswers",
                outcome.earlier_answers as f64,
                Unit::Count,
            )
            .metric(
                "AuditRecalibratedBatches",
                f64::from(u8::from(audit_verdicts > 0)),
                Unit::Count,
            )
            .metric(
                "PlainVoteBatches",
                f64::from(u8::from(summary.plain_vote)),
                Unit::Count,
            )
            .metric(
                "WorkerQualityNotKept",
                f64::from(u8::from(quality_failed)),
                Unit::Count,
            )
            .property(
                "LabelingJobArn",
                echo(&request.labeling_job_arn).into_owned(),
            );
        // Fail here, with a name and the sizes, rather than in the runtime after the work is done.
        let bytes = groundwork::text::compact_json_len(&outcome.entries);
        if bytes > self.config.max_response_bytes {
            return Err(ConsolidationError::ResponseTooLarge {
                objects: outcome.entries.len(),
                bytes,
                limit: self.config.max_response_bytes,
            });
        }
        Ok((outcome.entries, metrics))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use groundwork::metadata::FixedClock;
    use groundwork::ports::fakes::MemoryObjectStore;
    use serde_json::json;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/aws");

    fn handler(
        store: Arc<MemoryObjectStore>,
        config: Config,
        roles: Option<Arc<dyn RoleReaders>>,
    ) -> Consolidation {
        let storage = Storage {
            reader: store.clone(),
            writer: store.clone(),
            quality: store,
            roles,
        };
        Consolidation::new(
            config,
            storage,
            Arc::new(FixedClock(chrono::DateTime::UNIX_EPOCH)),
            Arc::new(groundwork::emf::RecordedMetrics::default()),
        )
    }

    fn config() -> Config {
        crate::config::from_vars(|_| None).unwrap()
    }

    #[tokio::test]
    async fn consolidates_the_ner_fixture_from_s3() {
        let store = Arc::new(MemoryObjectStore::new());
        let request: Value = serde_json::from_str(
            &std::fs::read_to_string(format!(
                "{FIXTURES}/aws_examples_ner_custom_template/consolidation_request.json"
            ))
            .unwrap(),
        )
        .unwrap();
        let payload = std::fs::read_to_string(format!(
            "{FIXTURES}/aws_examples_ner_custom_template/consolidation_payload.json"
        ))
        .unwrap();
        store.insert(request["payload"]["s3Uri"].as_str().unwrap(), payload);
        let entries = handler(store, config(), None)
            .handle(request)
            .await
            .unwrap();
        let ids: Vec<_> = entries
            .iter()
            .map(|e| e.dataset_object_id.as_str())
            .collect();
        assert_eq!(ids, ["1", "2"]);
        let content = entries[0].content_map();
        assert_eq!(
            content["EntityRecognition-ProtienName"]["entities"]["0"]["tokentext"],
            "tyrosine"
        );
        assert_eq!(
            content["EntityRecognition-ProtienName-metadata"]["job-name"],
            "labeling-job/entityrecognition-protienname"
        );
        let json = serde_json::to_value(&entries).unwrap();
        assert!(json[0]["consolidatedAnnotation"]["content"].is_object());
    }

    #[tokio::test]
    async fn every_invocation_writes_one_emf_line_of_counts_never_of_data() {
        let store = Arc::new(MemoryObjectStore::new());
        let metrics = Arc::new(groundwork::emf::RecordedMetrics::default());
        let h = Consolidation::new(
            config(),
            Storage {
                reader: store.clone(),
                writer: store.clone(),
                quality: store.clone(),
                roles: None,
            },
            Arc::new(FixedClock(chrono::DateTime::UNIX_EPOCH)),
            metrics.clone(),
        );
        let payload = json!([
            {"datasetObjectId": "0", "dataObject": {"content": "secret text"},
             "annotations": [{"workerId": "w1", "annotationData": {"content": "{\"answer\":\"secret answer\"}"}}]},
        ]);
        store.insert("s3://data/jobs/request.json", payload.to_string());
        h.handle(scoped_request(
            "s3://data/jobs/request.json",
            "s3://data/jobs/out/annotations",
        ))
        .await
        .unwrap();
        h.handle(json!({"nope": 1})).await.unwrap_err();
        let lines = metrics.documents();
        assert_eq!(lines.len(), 2);
        let batch = &lines[0];
        assert_eq!(
            batch["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            NAMESPACE
        );
        assert_eq!(batch["TaskType"], "Custom");
        assert_eq!(batch["Objects"], 1);
        assert_eq!(batch["LabeledObjects"], 1);
        assert_eq!(batch["FailedObjects"], 0);
        assert!(!batch.to_string().contains("secret"), "{batch}");
        let failed = &lines[1];
        assert_eq!(failed["ErrorType"], "InvalidEvent");
        assert_eq!(failed["FailedRequests"], 1);
    }

    #[tokio::test]
    async fn a_response_over_the_lambda_limit_fails_by_name_before_the_runtime_does() {
        let store = Arc::new(MemoryObjectStore::new());
        let payload = json!([
            {"datasetObjectId": "0", "dataObject": {"content": "a"},
             "annotations": [{"workerId": "w", "annotationData": {"content": "{\"x\":1}"}}]},
        ]);
        store.insert("s3://data/jobs/request.json", payload.to_string());
        let mut config = config();
        config.max_response_bytes = 100;
        let err = handler(store, config, None)
            .handle(scoped_request(
                "s3://data/jobs/request.json",
                "s3://data/jobs/out/annotations",
            ))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("over Lambda's 100-byte response limit"),
            "{err}"
        );
        assert_eq!(Diagnostic::from(err).error_type, "ResponseTooLarge");
    }

    #[tokio::test]
    async fn a_body_that_is_not_json_is_an_invalid_event() {
        let store = Arc::new(MemoryObjectStore::new());
        let h = handler(store.clone(), config(), None);
        let deep = "[".repeat(100_000);
        let bodies: [&[u8]; 3] = [
            br#"{"version":"2018-10-06","labelingJobArn":"arn:aws:sagemaker:us-east-1:1:labeling-job/x","payl"#,
            deep.as_bytes(),
            b"{\"labelAttributeName\":\"\xff\"}",
        ];
        for body in bodies {
            let err = h
                .handle_event(RawEvent::from_slice(body))
                .await
                .unwrap_err();
            assert!(err.to_string().contains("not valid JSON"), "{err}");
            assert_eq!(Diagnostic::from(err).error_type, "InvalidEvent");
        }
    }

    #[tokio::test]
    async fn request_failures_get_stable_error_types() {
        let store = Arc::new(MemoryObjectStore::new());
        let h = handler(store.clone(), config(), None);
        let err = h.handle(json!({"nope": 1})).await.unwrap_err();
        assert_eq!(Diagnostic::from(err).error_type, "InvalidEvent");
        let request: Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{FIXTURES}/aws_sagemaker_ground_truth_recipe/annotation_consolidation_test_event.json")).unwrap(),
        )
        .unwrap();
        let err = h.handle(request).await.unwrap_err();
        assert_eq!(Diagnostic::from(err).error_type, "PayloadNotFound");
    }

    /// A request for job `scoped` whose payload is at `payload` and whose output goes under `output`.
    fn scoped_request(payload: &str, output: &str) -> Value {
        json!({
            "version": "2018-10-06",
            "labelingJobArn": "arn:aws:sagemaker:us-east-1:111122223333:labeling-job/scoped",
            "labelAttributeName": "scoped",
            "roleArn": "arn:aws:iam::111122223333:role/gt",
            "payload": {"s3Uri": payload},
            "outputConfig": output,
        })
    }

    #[tokio::test]
    async fn nothing_is_read_or_written_outside_the_allowed_s3_locations() {
        let store = Arc::new(MemoryObjectStore::new());
        let config = crate::config::from_vars(|name| {
            (name == "ALLOWED_S3_LOCATIONS").then(|| "s3://data/jobs".to_owned())
        })
        .unwrap();
        let payload = json!([
            {"datasetObjectId": "0", "dataObject": {"content": "a"},
             "annotations": [{"workerId": "w", "annotationData": {"s3Uri": "s3://data/jobs/answers/0.json"}}]},
            {"datasetObjectId": "1", "dataObject": {"content": "b"},
             "annotations": [{"workerId": "w", "annotationData": {"s3Uri": "s3://data/secret.json"}}]},
        ]);
        for uri in ["s3://data/jobs/request.json", "s3://data/request.json"] {
            store.insert(uri, payload.to_string());
        }
        store.insert("s3://data/jobs/answers/0.json", r#"{"x": 1}"#);
        store.insert("s3://data/secret.json", r#"{"secret": 1}"#);
        let h = handler(store.clone(), config, None);

        // The payload elsewhere: refused before it is read.
        let err = h
            .handle(scoped_request(
                "s3://data/request.json",
                "s3://data/jobs/out/annotations",
            ))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("s3://data/request.json"), "{err}");
        assert_eq!(Diagnostic::from(err).error_type, "S3LocationNotAllowed");
        // The output elsewhere: the whole request is refused, nothing is written.
        let err = h
            .handle(scoped_request(
                "s3://data/jobs/request.json",
                "s3://data/annotations",
            ))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("outputConfig s3://data/annotations"),
            "{err}"
        );
        assert_eq!(Diagnostic::from(err).error_type, "S3LocationNotAllowed");
        assert_eq!(store.writes(), Vec::<String>::new());
        // An answer elsewhere: that object fails, the other is labelled, the secret is not echoed.
        let entries = h
            .handle(scoped_request(
                "s3://data/jobs/request.json",
                "s3://data/jobs/out/annotations",
            ))
            .await
            .unwrap();
        assert_eq!(entries.len(), 2);
        let json = serde_json::to_string(&entries).unwrap();
        assert_eq!(entries[0].content_map()["scoped"], json!({"x": 1}));
        let failed = entries[1].content_map();
        let metadata = &failed["scoped-metadata"];
        assert_eq!(metadata["failure-reason"], "no usable answer", "{failed:?}");
        let reason = metadata["skipped-answers"][0]["reason"]
            .as_str()
            .unwrap_or_default();
        assert!(
            reason.contains("s3://data/secret.json is outside the S3 locations"),
            "{failed:?}"
        );
        assert!(!json.contains(r#""secret""#), "{json}");
    }

    struct FixedRole(Arc<MemoryObjectStore>, Mutex<Vec<String>>);

    #[async_trait]
    impl RoleReaders for FixedRole {
        async fn reader_for(&self, role_arn: &str) -> Result<Arc<dyn ObjectReader>, String> {
            self.1.lock().unwrap().push(role_arn.to_owned());
            Ok(self.0.clone())
        }
    }

    #[tokio::test]
    async fn assumes_the_request_role_once_when_configured() {
        let own = Arc::new(MemoryObjectStore::new());
        let role_store = Arc::new(MemoryObjectStore::new());
        let request: Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{FIXTURES}/aws_sagemaker_ground_truth_recipe/annotation_consolidation_test_event.json")).unwrap(),
        )
        .unwrap();
        let payload = std::fs::read_to_string(format!(
            "{FIXTURES}/aws_sagemaker_ground_truth_recipe/sample_annotation_consolidation_payload.json"
        ))
        .unwrap();
        role_store.insert(request["payload"]["s3Uri"].as_str().unwrap(), payload);
        let roles = Arc::new(FixedRole(role_store, Mutex::new(Vec::new())));
        let mut cfg = config();
        cfg.assume_role = true;
        let h = handler(own, cfg, Some(roles.clone()));
        let first = h.handle(request.clone()).await.unwrap();
        let second = h.handle(request).await.unwrap();
        assert_eq!(first.len(), 2);
        assert_eq!(first, second, "idempotent");
        assert_eq!(
            roles.1.lock().unwrap().as_slice(),
            ["arn:aws:iam::111111111111:role/service-role/test-gt-role"]
        );
    }
}
