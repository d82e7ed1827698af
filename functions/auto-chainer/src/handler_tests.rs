//! Every path of the handler, on the in-memory ports: the `Animals` job of groundwork's test kit (image
//! classification, label attribute name `animal`, 2 of 4 objects labeled, one of them with confidence
//! 0.55) and the state-change events SageMaker sends for it (`tests/fixtures/`).

use std::sync::Mutex;

use async_trait::async_trait;
use groundwork::chain::ChainMode;
use groundwork::chain::tags::{
    TAG_CHAIN, TAG_DEPTH, TAG_FOLLOW_UP, TAG_LABELED_AT_START, TAG_STAGING_MANIFEST,
};
use groundwork::labeling_job::{
    CreateLabelingJobRequest, LabelingJobAlgorithmsConfig, LabelingJobDescription,
};
use groundwork::metadata::FixedClock;
use groundwork::ports::{CreateOutcome, JobsError};
use groundwork::s3_scope::S3Scope;
use groundwork::testing::DescribedJob;
use groundwork::testing::animals::{OUTPUT_MANIFEST, OUTPUT_URI, STAGING_MANIFEST};
use groundwork::testing::fakes::{MemoryLabelingJobs, MemoryObjectStore};
use lambda_runtime::Diagnostic;
use serde_json::Value;

use super::*;

const EVENT_STOPPED: &str = include_str!("../tests/fixtures/event-stopped.json");
const EVENT_FAILED: &str = include_str!("../tests/fixtures/event-failed.json");
const EVENT_COMPLETED: &str = include_str!("../tests/fixtures/event-completed.json");
const EVENT_TASK_STATUS: &str = include_str!("../tests/fixtures/event-task-status-change.json");
const PLAN_SECOND_QUESTION: &str = include_str!("../tests/fixtures/plan-second-question.json");
const PLAN_REVIEW_UNSURE: &str = include_str!("../tests/fixtures/plan-review-unsure.json");

const STAGING_URI: &str = "s3://in-bucket/animals/staging.manifest";
const PLAN_URI: &str = "s3://plans-bucket/follow-up.json";
const FINAL_MODEL: &str = "arn:aws:sagemaker:us-east-1:111122223333:model/animals-final";

#[derive(Default)]
struct RecordingMetrics(Mutex<Vec<Value>>);

impl MetricSink for RecordingMetrics {
    fn emit(&self, line: String) {
        let parsed = serde_json::from_str(&line).expect("an EMF line is JSON");
        self.0.lock().unwrap().push(parsed);
    }
}

impl RecordingMetrics {
    /// `(Outcome, Reason)` of every line.
    fn decisions(&self) -> Vec<(String, String)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["Outcome"].as_str().unwrap_or_default().to_owned(),
                    v["Reason"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}

/// A creator that is always throttled (the describe calls still work).
struct ThrottledCreator;

#[async_trait]
impl LabelingJobCreator for ThrottledCreator {
    async fn create_labeling_job(
        &self,
        _request: &CreateLabelingJobRequest,
    ) -> Result<CreateOutcome, JobsError> {
        Err(JobsError::Throttled {
            code: "ResourceLimitExceeded".to_owned(),
            message: "too many active labeling jobs".to_owned(),
        })
    }
}

/// The `Animals` job in `status` with `tags` added to its own.
fn job(status: &str, tags: &[(&str, &str)]) -> LabelingJobDescription {
    DescribedJob::animals()
        .status(status)
        .add_tags(tags)
        .build()
}

struct World {
    jobs: Arc<MemoryLabelingJobs>,
    store: Arc<MemoryObjectStore>,
    metrics: Arc<RecordingMetrics>,
    settings: ChainSettings,
    creator: Option<Arc<dyn LabelingJobCreator>>,
}

impl World {
    /// `job` described, its output manifest in S3, and the default settings (continuing off unless
    /// tagged, depth 5).
    fn with(job: LabelingJobDescription) -> Self {
        let world = World {
            jobs: Arc::new(MemoryLabelingJobs::new()),
            store: Arc::new(MemoryObjectStore::new()),
            metrics: Arc::new(RecordingMetrics::default()),
            settings: ChainSettings::default(),
            creator: None,
        };
        world.jobs.insert(job);
        world.store.insert(OUTPUT_URI, OUTPUT_MANIFEST);
        world
    }

    fn new(status: &str, tags: &[(&str, &str)]) -> Self {
        World::with(job(status, tags))
    }

    fn chainer(&self) -> Chainer {
        let at = chrono::DateTime::parse_from_rfc3339("2024-05-02T10:00:00Z")
            .unwrap()
            .to_utc();
        Chainer::new(
            Services {
                describer: self.jobs.clone(),
                creator: self.creator.clone().unwrap_or_else(|| self.jobs.clone()),
                reader: self.store.clone(),
                writer: self.store.clone(),
                lister: self.store.clone(),
            },
            self.settings.clone(),
            Arc::new(FixedClock(at)),
            self.metrics.clone(),
        )
    }

    async fn handle(&self, event: &str) -> Result<Outcome, ChainerError> {
        self.chainer()
            .handle_event(RawEvent::from_json(serde_json::from_str(event).unwrap()))
            .await
    }

    fn created(&self) -> Vec<CreateLabelingJobRequest> {
        self.jobs.created()
    }

    fn only_created(&self) -> CreateLabelingJobRequest {
        let created = self.created();
        assert_eq!(created.len(), 1, "{created:#?}");
        created.into_iter().next().unwrap()
    }
}

fn tag<'a>(request: &'a CreateLabelingJobRequest, key: &str) -> Option<&'a str> {
    request
        .tags
        .iter()
        .find(|t| t.key == key)
        .map(|t| t.value.as_str())
}

fn manifest_uri(request: &CreateLabelingJobRequest) -> &str {
    &request
        .input_config
        .data_source
        .s3_data_source
        .as_ref()
        .unwrap()
        .manifest_s3_uri
}

fn skipped_code(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Skipped { reason_code, .. } => reason_code,
        other => panic!("expected a skip, got {other:?}"),
    }
}

fn manifest_lines(body: &[u8]) -> Vec<Value> {
    std::str::from_utf8(body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

// --- Stopped / Failed ----------------------------------------------------------------------------

#[tokio::test]
async fn continues_a_stopped_job_tagged_continue() {
    let world = World::new("Stopped", &[(TAG_CHAIN, "continue")]);

    let outcome = world.handle(EVENT_STOPPED).await.unwrap();

    let request = world.only_created();
    let Outcome::Created {
        source_job,
        job_name,
        job_arn,
        step,
        depth,
        input_objects,
        unlabeled,
    } = &outcome
    else {
        panic!("{outcome:?}");
    };
    assert_eq!(source_job, "Animals");
    assert_eq!(job_name, &request.labeling_job_name);
    assert!(job_name.starts_with("Animals-c1-"), "{job_name}");
    assert!(job_arn.ends_with(&job_name.to_lowercase()));
    assert_eq!((step.as_str(), *depth), ("continue", 1));
    assert_eq!((*input_objects, *unlabeled), (4, 2));
    assert_eq!(request.label_attribute_name, "animal");
    assert_eq!(manifest_uri(&request), OUTPUT_URI);
    assert_eq!(tag(&request, TAG_DEPTH), Some("1"));
    assert_eq!(tag(&request, TAG_LABELED_AT_START), Some("2"));
    assert_eq!(tag(&request, "aws:cloudformation:stack-name"), None);
    assert!(
        world.store.writes().is_empty(),
        "the output manifest is used as it is"
    );
    assert_eq!(
        world.metrics.decisions(),
        [("Created".to_owned(), "continue".to_owned())]
    );
    let response = serde_json::to_value(&outcome).unwrap();
    assert_eq!(response["outcome"], "created");
}

#[tokio::test]
async fn continuing_is_off_unless_asked_for() {
    let world = World::new("Stopped", &[]);
    let outcome = world.handle(EVENT_STOPPED).await.unwrap();
    assert_eq!(skipped_code(&outcome), "ChainingOff");
    assert!(world.created().is_empty());

    let mut world = World::new("Stopped", &[]);
    world.settings.default_mode = ChainMode::Continue;
    assert!(matches!(
        world.handle(EVENT_STOPPED).await.unwrap(),
        Outcome::Created { .. }
    ));
}

#[tokio::test]
async fn nothing_left_unlabeled_means_no_job() {
    let world = World::new("Stopped", &[(TAG_CHAIN, "continue")]);
    let labeled: String = OUTPUT_MANIFEST
        .lines()
        .take(2)
        .map(|l| format!("{l}\n"))
        .collect();
    world.store.insert(OUTPUT_URI, labeled);
    let outcome = world.handle(EVENT_STOPPED).await.unwrap();
    assert_eq!(skipped_code(&outcome), "NothingToLabel");
    assert!(world.created().is_empty());
    assert_eq!(
        world.metrics.decisions(),
        [("Skipped".to_owned(), "NothingToLabel".to_owned())]
    );
}

#[tokio::test]
async fn a_job_failed_for_good_is_not_continued_and_says_why() {
    let mut failed = job("Failed", &[(TAG_CHAIN, "continue")]);
    failed.failure_reason =
        Some("ClientError: Failed to parse the input manifest: line 3 is not JSON".to_owned());
    let world = World::with(failed);

    let outcome = world.handle(EVENT_FAILED).await.unwrap();

    assert_eq!(skipped_code(&outcome), "PermanentFailure");
    let Outcome::Skipped { reason, .. } = &outcome else {
        unreachable!()
    };
    assert!(
        reason.contains("Failed to parse the input manifest"),
        "{reason}"
    );
    assert!(
        world.created().is_empty(),
        "never loop on a permanent failure"
    );
    assert_eq!(
        world.metrics.decisions(),
        [("Skipped".to_owned(), "PermanentFailure".to_owned())]
    );
}

#[tokio::test]
async fn a_job_failed_for_a_transient_reason_is_continued() {
    let mut failed = job("Failed", &[(TAG_CHAIN, "continue")]);
    failed.failure_reason =
        Some("InternalServerError: We encountered an internal error.".to_owned());
    let world = World::with(failed);
    assert!(matches!(
        world.handle(EVENT_FAILED).await.unwrap(),
        Outcome::Created { .. }
    ));
}

// --- Completed -----------------------------------------------------------------------------------

#[tokio::test]
async fn a_completed_job_without_a_plan_is_left_alone() {
    let world = World::new("Completed", &[(TAG_CHAIN, "continue")]);
    let outcome = world.handle(EVENT_COMPLETED).await.unwrap();
    assert_eq!(skipped_code(&outcome), "NoFollowUpDeclared");
}

#[tokio::test]
async fn a_completed_job_gets_its_follow_up() {
    let world = World::new("Completed", &[(TAG_FOLLOW_UP, PLAN_URI)]);
    world.store.insert(PLAN_URI, PLAN_SECOND_QUESTION);

    let outcome = world.handle(EVENT_COMPLETED).await.unwrap();

    let request = world.only_created();
    assert!(matches!(&outcome, Outcome::Created { step, .. } if step == "follow-up"));
    assert!(request.labeling_job_name.starts_with("Animals-f1-"));
    assert_eq!(request.label_attribute_name, "habitat");
    assert_eq!(
        manifest_uri(&request),
        OUTPUT_URI,
        "all objects, as labeled so far"
    );
    assert_eq!(
        request.human_task_config.task_title,
        "Where does this animal live?"
    );
    // The plan's labels, written next to the job's other inputs.
    let categories_uri = request.label_category_config_s3_uri.clone().unwrap();
    assert_eq!(
        categories_uri,
        format!(
            "s3://out-bucket/jobs/groundwork-chain/{}/label-categories.json",
            request.labeling_job_name
        )
    );
    assert_eq!(world.store.writes(), std::slice::from_ref(&categories_uri));
    let file: Value = serde_json::from_slice(&world.store.get(&categories_uri).unwrap()).unwrap();
    assert_eq!(file["labels"][2]["label"], "air");
    assert_eq!(
        tag(&request, TAG_FOLLOW_UP),
        Some("none"),
        "the plan does not repeat"
    );
}

#[tokio::test]
async fn a_follow_up_can_take_only_unsure_labels() {
    let world = World::new("Completed", &[(TAG_FOLLOW_UP, PLAN_URI)]);
    world.store.insert(PLAN_URI, PLAN_REVIEW_UNSURE);

    world.handle(EVENT_COMPLETED).await.unwrap();

    let request = world.only_created();
    assert_eq!(request.label_attribute_name, "animal-review");
    assert_eq!(
        request
            .human_task_config
            .number_of_human_workers_per_data_object,
        5
    );
    let filtered = manifest_uri(&request).to_owned();
    assert!(filtered.ends_with("/input.manifest"), "{filtered}");
    assert_eq!(world.store.writes(), std::slice::from_ref(&filtered));
    let lines = manifest_lines(&world.store.get(&filtered).unwrap());
    assert_eq!(lines.len(), 1, "only the dog at 0.55 is below 0.8");
    assert_eq!(lines[0]["source-ref"], "s3://in-bucket/animals/2.jpg");
    assert_eq!(lines[0]["animal-metadata"]["confidence"], 0.55);
    assert_eq!(
        tag(&request, TAG_FOLLOW_UP),
        Some("s3://plans-bucket/after-review.json")
    );
}

#[tokio::test]
async fn an_invalid_plan_is_a_permanent_error() {
    let world = World::new("Completed", &[(TAG_FOLLOW_UP, PLAN_URI)]);
    world
        .store
        .insert(PLAN_URI, r#"{"LabelAttributeName":"habitat-metadata"}"#);
    let err = world.handle(EVENT_COMPLETED).await.unwrap_err();
    assert_eq!(err.error_type(), "Permanent.InvalidPlan");
    assert!(err.to_string().contains("-metadata"), "{err}");
    assert!(world.created().is_empty());
    assert_eq!(
        world.metrics.decisions(),
        [("Error".to_owned(), "Permanent.InvalidPlan".to_owned())]
    );

    let missing = World::new("Completed", &[(TAG_FOLLOW_UP, PLAN_URI)]);
    let err = missing.handle(EVENT_COMPLETED).await.unwrap_err();
    assert_eq!(err.error_type(), "Permanent.S3ObjectNotFound");
}

#[tokio::test]
async fn a_plan_outside_the_allowed_s3_locations_is_never_read() {
    let mut world = World::new("Completed", &[(TAG_FOLLOW_UP, PLAN_URI)]);
    world.store.insert(PLAN_URI, PLAN_SECOND_QUESTION);
    world.settings.scope = S3Scope::parse("s3://out-bucket,s3://in-bucket").unwrap();
    let err = world.handle(EVENT_COMPLETED).await.unwrap_err();
    assert_eq!(err.error_type(), "Permanent.S3LocationNotAllowed");
    assert!(err.to_string().contains(PLAN_URI), "{err}");
    assert!(world.created().is_empty());
    assert!(world.store.writes().is_empty());

    // With the plans' bucket allowed, the same event chains, writing only inside the scope.
    world.settings.scope = S3Scope::parse("s3://out-bucket/jobs,s3://plans-bucket").unwrap();
    world.handle(EVENT_COMPLETED).await.unwrap();
    assert_eq!(world.created().len(), 1);
    assert!(
        world
            .store
            .writes()
            .iter()
            .all(|uri| uri.starts_with("s3://out-bucket/jobs/"))
    );
}

// --- Staging, automated labeling -----------------------------------------------------------------

#[tokio::test]
async fn staged_objects_are_appended_without_duplicates() {
    let world = World::new(
        "Stopped",
        &[(TAG_CHAIN, "continue"), (TAG_STAGING_MANIFEST, STAGING_URI)],
    );
    world.store.insert(STAGING_URI, STAGING_MANIFEST);

    world.handle(EVENT_STOPPED).await.unwrap();

    let request = world.only_created();
    let extended = manifest_uri(&request).to_owned();
    assert_eq!(world.store.writes(), std::slice::from_ref(&extended));
    let sources: Vec<String> = manifest_lines(&world.store.get(&extended).unwrap())
        .iter()
        .map(|l| l["source-ref"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        sources,
        (1..=6)
            .map(|i| format!("s3://in-bucket/animals/{i}.jpg"))
            .collect::<Vec<_>>(),
        "4.jpg was in the output already"
    );
    assert_eq!(
        tag(&request, TAG_STAGING_MANIFEST),
        None,
        "staging is consumed"
    );
    assert_eq!(tag(&request, TAG_LABELED_AT_START), Some("2"));
}

#[tokio::test]
async fn the_auto_labeling_model_is_passed_on() {
    let mut auto = job("Stopped", &[(TAG_CHAIN, "continue")]);
    auto.labeling_job_algorithms_config = Some(LabelingJobAlgorithmsConfig {
        labeling_job_algorithm_specification_arn: "arn:aws:sagemaker:us-east-1:027400017018:labeling-job-algorithm-specification/image-classification".to_owned(),
        initial_active_learning_model_arn: None,
        labeling_job_resource_config: None,
    });
    if let Some(output) = auto.labeling_job_output.as_mut() {
        output.final_active_learning_model_arn = Some(FINAL_MODEL.to_owned());
    }
    let world = World::with(auto);

    world.handle(EVENT_STOPPED).await.unwrap();

    let algorithms = world
        .only_created()
        .labeling_job_algorithms_config
        .expect("automated labeling stays on");
    assert_eq!(
        algorithms.initial_active_learning_model_arn.as_deref(),
        Some(FINAL_MODEL)
    );
}

// --- Guarantees ----------------------------------------------------------------------------------
/// A creator that finds the job created meanwhile by a concurrent delivery (`ResourceInUse`).
struct RacedCreator;

#[async_trait]
impl LabelingJobCreator for RacedCreator {
    async fn create_labeling_job(
        &self,
        _request: &CreateLabelingJobRequest,
    ) -> Result<CreateOutcome, JobsError> {
        Ok(CreateOutcome::AlreadyExists)
    }
}

#[tokio::test]
async fn a_delivery_that_loses_the_race_to_create_is_a_duplicate() {
    // Two deliveries at once: both describe the chained name (not found), the other creates it first,
    // and this one's CreateLabelingJob gets ResourceInUse.
    let mut world = World::new("Stopped", &[(TAG_CHAIN, "continue")]);
    world.creator = Some(Arc::new(RacedCreator));
    let outcome = world.handle(EVENT_STOPPED).await.unwrap();
    assert!(
        matches!(&outcome, Outcome::Duplicate { source_job, job_name } if source_job == "Animals" && job_name.starts_with("Animals-c1-")),
        "{outcome:?}"
    );
    assert_eq!(
        world.metrics.decisions(),
        [("Duplicate".to_owned(), "DuplicateEvent".to_owned())]
    );
}

#[tokio::test]
async fn a_duplicate_event_creates_no_second_job() {
    let world = World::new("Stopped", &[(TAG_CHAIN, "continue")]);

    let first = world.handle(EVENT_STOPPED).await.unwrap();
    let second = world.handle(EVENT_STOPPED).await.unwrap();

    let Outcome::Created { job_name, .. } = first else {
        panic!("{first:?}");
    };
    assert_eq!(
        second,
        Outcome::Duplicate {
            source_job: "Animals".to_owned(),
            job_name
        }
    );
    assert_eq!(world.created().len(), 1);
    assert_eq!(
        world.metrics.decisions()[1],
        ("Duplicate".to_owned(), "DuplicateEvent".to_owned())
    );
}

#[tokio::test]
async fn the_depth_limit_stops_a_chain() {
    let world = World::new(
        "Stopped",
        &[
            (TAG_CHAIN, "continue"),
            (TAG_DEPTH, "5"),
            (TAG_LABELED_AT_START, "0"),
        ],
    );
    let outcome = world.handle(EVENT_STOPPED).await.unwrap();
    assert_eq!(skipped_code(&outcome), "MaxDepth");
    assert!(world.created().is_empty());
}

#[tokio::test]
async fn a_continued_job_without_progress_is_not_continued_again() {
    // The job started with 2 labeled objects; its output still has 2.
    let world = World::new(
        "Stopped",
        &[
            (TAG_CHAIN, "continue"),
            (TAG_DEPTH, "1"),
            (TAG_LABELED_AT_START, "2"),
        ],
    );
    let outcome = world.handle(EVENT_STOPPED).await.unwrap();
    assert_eq!(skipped_code(&outcome), "NoProgress");
    assert!(world.created().is_empty());
}

// --- Errors --------------------------------------------------------------------------------------

#[tokio::test]
async fn throttling_is_a_retryable_error() {
    let world = World::new("Stopped", &[(TAG_CHAIN, "continue")]);
    *world.jobs.fail_with.lock().unwrap() = Some(JobsError::Throttled {
        code: "ThrottlingException".to_owned(),
        message: "Rate exceeded".to_owned(),
    });

    let err = world.handle(EVENT_STOPPED).await.unwrap_err();

    assert_eq!(err.error_type(), "Retryable.SageMakerThrottled");
    assert!(err.is_retryable());
    let diagnostic = Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "Retryable.SageMakerThrottled");
    assert_eq!(
        world.metrics.decisions(),
        [(
            "Error".to_owned(),
            "Retryable.SageMakerThrottled".to_owned()
        )]
    );
}

#[tokio::test]
async fn a_job_limit_on_create_is_a_retryable_error() {
    let mut world = World::new("Stopped", &[(TAG_CHAIN, "continue")]);
    world.creator = Some(Arc::new(ThrottledCreator));
    let err = world.handle(EVENT_STOPPED).await.unwrap_err();
    assert_eq!(err.error_type(), "Retryable.SageMakerThrottled");
    assert!(err.to_string().contains("CreateLabelingJob"), "{err}");
}

#[tokio::test]
async fn an_unknown_job_is_a_permanent_error() {
    let world = World::new("Stopped", &[]);
    let event = EVENT_STOPPED.replace("labeling-job/animals", "labeling-job/plants");
    let err = world.handle(&event).await.unwrap_err();
    assert_eq!(err.error_type(), "Permanent.JobNotFound");
    assert!(!err.is_retryable());
}

// --- Bad events ----------------------------------------------------------------------------------

#[tokio::test]
async fn bad_events_are_rejected_without_calling_aws() {
    let mut wrong_source: Value = serde_json::from_str(EVENT_STOPPED).unwrap();
    wrong_source["source"] = Value::from("aws.s3");
    let mut no_resources: Value = serde_json::from_str(EVENT_STOPPED).unwrap();
    no_resources["resources"] = serde_json::json!([]);
    let mut bad_arn: Value = serde_json::from_str(EVENT_STOPPED).unwrap();
    bad_arn["resources"] =
        serde_json::json!(["arn:aws:sagemaker:us-east-1:111122223333:training-job/x"]);
    let mut in_progress: Value = serde_json::from_str(EVENT_STOPPED).unwrap();
    in_progress["detail"]["LabelingJobStatus"] = Value::from("InProgress");
    let mut no_detail: Value = serde_json::from_str(EVENT_STOPPED).unwrap();
    no_detail["detail"] = serde_json::json!({});
    let cases = [
        (wrong_source, "InvalidEvent.WrongSource"),
        (
            serde_json::from_str(EVENT_TASK_STATUS).unwrap(),
            "InvalidEvent.WrongDetailType",
        ),
        (no_resources, "InvalidEvent.NoJobArn"),
        (bad_arn, "InvalidEvent.BadJobArn"),
        (in_progress, "InvalidEvent.UnexpectedStatus"),
        (no_detail, "InvalidEvent.Malformed"),
        (serde_json::json!("hello"), "InvalidEvent.WrongSource"),
    ];
    for (event, code) in cases {
        let world = World::new("Stopped", &[(TAG_CHAIN, "continue")]);
        let outcome = world
            .chainer()
            .handle_event(RawEvent::from_json(event.clone()))
            .await
            .unwrap();
        let Outcome::Rejected { reason_code, .. } = &outcome else {
            panic!("{event}: {outcome:?}");
        };
        assert_eq!(reason_code, code, "{event}");
        assert_eq!(world.jobs.describe_calls(), 0);
        assert_eq!(
            world.metrics.decisions(),
            [("Rejected".to_owned(), code.to_owned())]
        );
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_is_rejected_as_malformed() {
    let deep = "[".repeat(100_000);
    let truncated = &EVENT_STOPPED[..EVENT_STOPPED.len() / 2];
    let bodies: [&[u8]; 3] = [
        truncated.as_bytes(),
        deep.as_bytes(),
        b"{\"source\":\"\xff\"}",
    ];
    for body in bodies {
        let world = World::new("Stopped", &[(TAG_CHAIN, "continue")]);
        let outcome = world
            .chainer()
            .handle_event(RawEvent::from_slice(body))
            .await
            .unwrap();
        let Outcome::Rejected {
            reason_code,
            reason,
        } = &outcome
        else {
            panic!("{outcome:?}");
        };
        assert_eq!(reason_code, "InvalidEvent.Malformed");
        assert!(reason.contains("not valid JSON"), "{reason}");
        assert_eq!(world.jobs.describe_calls(), 0);
        assert_eq!(
            world.metrics.decisions(),
            [("Rejected".to_owned(), "InvalidEvent.Malformed".to_owned())]
        );
    }
}

#[test]
fn accepts_every_documented_event_shape() {
    for (event, status) in [
        (EVENT_STOPPED, LabelingJobStatus::Stopped),
        (EVENT_FAILED, LabelingJobStatus::Failed),
        (EVENT_COMPLETED, LabelingJobStatus::Completed),
    ] {
        let (arn, got) = accept(&serde_json::from_str(event).unwrap()).unwrap();
        assert_eq!(got, status);
        assert_eq!(arn.name(), "animals");
    }
}
