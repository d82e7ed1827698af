//! The planner's rules, one test (or a few) per rule, on the `Animals` fixture job.

use super::*;
use crate::chain::naming::is_valid_job_name;
use crate::chain::settings::ChainMode;
use crate::chain::tags::{TAG_CHAIN, TAG_CLONED_FROM};
use crate::chain::testing::{
    OUTPUT_MANIFEST, OUTPUT_URI, PLAN, STAGING_MANIFEST, fetched, job_in, job_with_tags, uri,
};
use crate::chain::{FailureClass, PermanentCause, PlanError};
use crate::labeling_job::{LabelingJobAlgorithmsConfig, LabelingJobOutput, Tag};
use crate::manifest::ManifestLine;

const STAGING_URI: &str = "s3://in-bucket/animals/staging.manifest";
const PLAN_URI: &str = "s3://plans/indoor-outdoor.json";
const ALGORITHM: &str = "arn:aws:sagemaker:us-east-1:027400017018:labeling-job-algorithm-specification/image-classification";
const FINAL_MODEL: &str = "arn:aws:sagemaker:us-east-1:111122223333:model/animals-final";

fn continuing() -> ChainSettings {
    ChainSettings {
        default_mode: ChainMode::Continue,
        ..ChainSettings::default()
    }
}

/// The inputs of one decision; `decide` fills in what `prepare` asks for from these.
struct Case {
    job: LabelingJobDescription,
    settings: ChainSettings,
    request: ChainRequest,
    plan: Option<String>,
    manifest: String,
    staging: Option<String>,
}

impl Case {
    fn new(job: LabelingJobDescription) -> Self {
        Case {
            job,
            settings: continuing(),
            request: ChainRequest::default(),
            plan: None,
            manifest: OUTPUT_MANIFEST.to_owned(),
            staging: None,
        }
    }

    fn tag(mut self, key: &str, value: &str) -> Self {
        set_tag(&mut self.job.tags, key, value);
        self
    }

    fn plan(mut self, plan: &str) -> Self {
        self.plan = Some(plan.to_owned());
        self
    }

    fn decide(&self) -> Result<Decision, ChainError> {
        let manifest = fetched(OUTPUT_URI, &self.manifest);
        let staging = self.staging.as_deref().map(|s| fetched(STAGING_URI, s));
        plan(&PlannerInput {
            job: &self.job,
            settings: &self.settings,
            request: &self.request,
            plan: self.plan.as_deref().map(str::as_bytes),
            manifest: Some(&manifest),
            staging: staging.as_ref(),
        })
    }

    fn chain(&self) -> ChainAction {
        match self.decide() {
            Ok(Decision::Chain(action)) => *action,
            other => panic!("expected a chained job, got {other:?}"),
        }
    }

    fn skip(&self) -> SkipReason {
        match self.decide() {
            Ok(Decision::Skip(reason)) => reason,
            other => panic!("expected a skip, got {other:?}"),
        }
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
        .expect("an S3 input")
        .manifest_s3_uri
}

fn lines(bytes: &[u8]) -> Vec<ManifestLine> {
    std::str::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| ManifestLine::parse(l).unwrap())
        .collect()
}

fn with_auto_labeling(mut job: LabelingJobDescription) -> LabelingJobDescription {
    job.labeling_job_algorithms_config = Some(LabelingJobAlgorithmsConfig {
        labeling_job_algorithm_specification_arn: ALGORITHM.to_owned(),
        initial_active_learning_model_arn: None,
        labeling_job_resource_config: None,
    });
    job.labeling_job_output = Some(LabelingJobOutput {
        output_dataset_s3_uri: OUTPUT_URI.to_owned(),
        final_active_learning_model_arn: Some(FINAL_MODEL.to_owned()),
    });
    job
}

// --- Stopped / Failed: continue ------------------------------------------------------------------

#[test]
fn a_stopped_job_is_continued_with_its_output_manifest_and_setup() {
    let case = Case::new(job_in(LabelingJobStatus::Stopped));
    let action = case.chain();
    let request = &action.request;
    let source = &case.job;

    assert_eq!(action.step, ChainStep::Continue);
    assert_eq!(action.depth, 1);
    assert!(request.labeling_job_name.starts_with("Animals-c1-"));
    assert!(is_valid_job_name(&request.labeling_job_name));
    assert_eq!(request.label_attribute_name, "animal");
    assert_eq!(manifest_uri(request), OUTPUT_URI);
    assert!(action.manifest_writes.is_empty());
    assert_eq!(
        action.counts,
        ChainCounts {
            input_objects: 4,
            unlabeled: 2,
            appended: 0,
            filtered_out: 0
        }
    );
    // Everything else is the source job's.
    assert_eq!(
        request.input_config.data_attributes,
        source.input_config.data_attributes
    );
    assert_eq!(request.output_config, source.output_config);
    assert_eq!(request.role_arn, source.role_arn);
    assert_eq!(request.human_task_config, source.human_task_config);
    assert_eq!(
        request.label_category_config_s3_uri,
        source.label_category_config_s3_uri
    );
    assert_eq!(request.stopping_conditions, source.stopping_conditions);
    assert_eq!(request.labeling_job_algorithms_config, None);

    let tags: Vec<(&str, &str)> = request
        .tags
        .iter()
        .map(|t| (t.key.as_str(), t.value.as_str()))
        .collect();
    assert_eq!(
        tags,
        [
            ("team", "vision"),
            (TAG_ROOT_JOB, "Animals"),
            (TAG_PARENT_JOB, "Animals"),
            (TAG_DEPTH, "1"),
            (TAG_STEP, "continue"),
            (TAG_LABELED_AT_START, "2"),
        ],
        "user tags, no aws: tags, lineage"
    );
}

#[test]
fn the_same_event_plans_the_same_job() {
    let case = Case::new(job_in(LabelingJobStatus::Stopped));
    assert_eq!(case.chain(), case.chain());
    let mut lower = job_in(LabelingJobStatus::Stopped);
    lower.labeling_job_arn = lower.labeling_job_arn.to_uppercase();
    assert_eq!(
        Case::new(lower).chain().request.labeling_job_name,
        case.chain().request.labeling_job_name
    );
}

#[test]
fn chained_names_keep_the_root_and_count_depth() {
    let case = Case::new(job_in(LabelingJobStatus::Stopped))
        .tag(TAG_ROOT_JOB, "Zoo")
        .tag(TAG_DEPTH, "2")
        .tag(TAG_LABELED_AT_START, "1");
    let action = case.chain();
    assert!(action.request.labeling_job_name.starts_with("Zoo-c3-"));
    assert_eq!(tag(&action.request, TAG_ROOT_JOB), Some("Zoo"));
    assert_eq!(tag(&action.request, TAG_PARENT_JOB), Some("Animals"));
    assert_eq!(tag(&action.request, TAG_DEPTH), Some("3"));
}

#[test]
fn nothing_left_unlabeled_means_no_job() {
    let mut case = Case::new(job_in(LabelingJobStatus::Stopped));
    case.manifest = OUTPUT_MANIFEST
        .lines()
        .take(2)
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        case.skip(),
        SkipReason::NothingToLabel {
            label_attribute_name: "animal".to_owned()
        }
    );
}

#[test]
fn metadata_without_a_label_is_still_unlabeled() {
    let mut case = Case::new(job_in(LabelingJobStatus::Stopped));
    case.manifest =
        r#"{"source-ref":"s3://bkt/1","animal-metadata":{"failure-reason":"x"}}"#.to_owned();
    assert_eq!(case.chain().counts.unlabeled, 1);
}

#[test]
fn continuing_follows_the_tag_then_the_default() {
    let mut case = Case::new(job_in(LabelingJobStatus::Stopped));
    case.settings.default_mode = ChainMode::Off;
    assert_eq!(case.skip(), SkipReason::ChainingOff { by_tag: false });
    let case = case.tag(TAG_CHAIN, "continue");
    assert_eq!(case.chain().step, ChainStep::Continue);
    let case = Case::new(job_in(LabelingJobStatus::Stopped)).tag(TAG_CHAIN, "off");
    assert_eq!(case.skip(), SkipReason::ChainingOff { by_tag: true });
}

#[test]
fn force_overrides_chaining_off() {
    let mut case = Case::new(job_in(LabelingJobStatus::Stopped)).tag(TAG_CHAIN, "off");
    case.request.force = true;
    assert_eq!(case.chain().step, ChainStep::Continue);
}

#[test]
fn a_job_failed_for_good_is_not_continued() {
    let mut case = Case::new(job_in(LabelingJobStatus::Failed));
    case.job.failure_reason =
        Some("ClientError: Access Denied for s3://in-bucket/animals/1.jpg".to_owned());
    assert_eq!(
        case.skip(),
        SkipReason::PermanentFailure {
            cause: PermanentCause::MissingPermissions,
            reason: "ClientError: Access Denied for s3://in-bucket/animals/1.jpg".to_owned()
        }
    );
    assert!(case.skip().to_string().contains("permission"));
    case.request.force = true;
    assert_eq!(case.chain().step, ChainStep::Continue);
}

#[test]
fn a_job_failed_for_a_transient_or_unknown_reason_is_continued() {
    for reason in [
        Some("InternalServerError: We encountered an internal error."),
        Some("Labeling job expired after 30 days"),
        Some("something odd"),
        None,
    ] {
        let mut case = Case::new(job_in(LabelingJobStatus::Failed));
        case.job.failure_reason = reason.map(str::to_owned);
        assert!(!classify_failure(reason).would_fail_again(), "{reason:?}");
        assert_eq!(case.chain().step, ChainStep::Continue, "{reason:?}");
    }
    assert_eq!(classify_failure(None), FailureClass::Unknown);
}

#[test]
fn jobs_that_have_not_ended_or_stream_are_not_chained() {
    for status in [LabelingJobStatus::InProgress, LabelingJobStatus::Stopping] {
        let case = Case::new(job_in(status.clone()));
        assert_eq!(case.skip(), SkipReason::NotTerminal { status });
    }
    let mut case = Case::new(job_in(LabelingJobStatus::Stopped));
    case.job.input_config.data_source = crate::labeling_job::DataSource {
        s3_data_source: None,
        sns_data_source: Some(crate::labeling_job::SnsDataSource {
            sns_topic_arn: "arn:aws:sns:us-east-1:111122223333:in".to_owned(),
        }),
    };
    assert_eq!(case.skip(), SkipReason::StreamingJob);
    let mut case = Case::new(job_in(LabelingJobStatus::Stopped));
    case.job.label_attribute_name = None;
    assert_eq!(case.skip(), SkipReason::NoLabelAttributeName);
}

// --- Runaway guards ------------------------------------------------------------------------------

#[test]
fn the_depth_limit_stops_the_chain() {
    let mut case = Case::new(job_in(LabelingJobStatus::Stopped))
        .tag(TAG_DEPTH, "5")
        .tag(TAG_LABELED_AT_START, "0");
    assert_eq!(case.skip(), SkipReason::MaxDepth { depth: 6, max: 5 });
    case.settings.max_depth = 6;
    assert_eq!(case.chain().depth, 6);
    case.settings.max_depth = 0;
    let root = Case {
        settings: case.settings,
        ..Case::new(job_in(LabelingJobStatus::Stopped))
    };
    assert_eq!(root.skip(), SkipReason::MaxDepth { depth: 1, max: 0 });
}

#[test]
fn a_continued_job_that_labeled_nothing_is_not_continued_again() {
    // It started with 2 labeled objects and still has 2.
    let case = Case::new(job_in(LabelingJobStatus::Stopped))
        .tag(TAG_DEPTH, "1")
        .tag(TAG_LABELED_AT_START, "2");
    assert_eq!(
        case.skip(),
        SkipReason::NoProgress {
            labeled: 2,
            labeled_at_start: Some(2)
        }
    );
    // It started with 1: progress.
    let case = Case::new(job_in(LabelingJobStatus::Stopped))
        .tag(TAG_DEPTH, "1")
        .tag(TAG_LABELED_AT_START, "1");
    assert_eq!(case.chain().depth, 2);
    // Without the count tag, the job's counters decide.
    let mut case = Case::new(job_in(LabelingJobStatus::Failed)).tag(TAG_DEPTH, "1");
    case.job.label_counters.total_labeled = Some(0);
    assert!(matches!(
        case.skip(),
        SkipReason::NoProgress {
            labeled_at_start: None,
            ..
        }
    ));
    // A root job is continued even when it labeled nothing: there is no earlier job to compare with.
    let mut case = Case::new(job_in(LabelingJobStatus::Stopped));
    case.job.label_counters.total_labeled = Some(0);
    assert_eq!(case.chain().depth, 1);
}

// --- Completed: follow-up ------------------------------------------------------------------------

#[test]
fn a_completed_job_without_a_plan_is_not_chained() {
    let case = Case::new(job_in(LabelingJobStatus::Completed));
    assert_eq!(case.skip(), SkipReason::NoFollowUpDeclared);
    let case = Case::new(job_in(LabelingJobStatus::Completed)).tag(TAG_FOLLOW_UP, "none");
    assert_eq!(case.skip(), SkipReason::NoFollowUpDeclared);
}

#[test]
fn what_a_chain_writes_is_encrypted_as_its_source_jobs_output() {
    // The fixture's job encrypts its output with a key.
    let encrypted = Case::new(job_in(LabelingJobStatus::Completed))
        .tag(TAG_FOLLOW_UP, PLAN_URI)
        .plan(PLAN)
        .chain();
    assert_eq!(encrypted.manifest_writes.len(), 2);
    for write in &encrypted.manifest_writes {
        assert_eq!(
            write.encryption,
            crate::ports::Encryption::Kms {
                key_id:
                    "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                        .to_owned()
            },
            "{write:?}"
        );
    }
    let mut job = job_in(LabelingJobStatus::Completed);
    job.output_config.kms_key_id = None;
    let plain = Case::new(job)
        .tag(TAG_FOLLOW_UP, PLAN_URI)
        .plan(PLAN)
        .chain();
    assert_eq!(plain.manifest_writes.len(), 2);
    assert!(
        plain
            .manifest_writes
            .iter()
            .all(|w| w.encryption == crate::ports::Encryption::BucketDefault)
    );
}

#[test]
fn a_follow_up_plan_makes_a_filtered_job_with_its_own_labels() {
    let case = Case::new(job_in(LabelingJobStatus::Completed))
        .tag(TAG_FOLLOW_UP, PLAN_URI)
        .tag(TAG_CHAIN, "continue")
        .plan(PLAN);
    let action = case.chain();
    let request = &action.request;
    assert_eq!(action.step, ChainStep::FollowUp);
    assert!(request.labeling_job_name.starts_with("Animals-f1-"));
    assert_eq!(request.label_attribute_name, "indoor-outdoor");

    // Only the labeled object below 0.8 (dog, 0.55) is sent, in a manifest of its own.
    let work = format!(
        "s3://out-bucket/jobs/groundwork-chain/{}/",
        request.labeling_job_name
    );
    assert_eq!(manifest_uri(request), format!("{work}input.manifest"));
    assert_eq!(action.manifest_writes.len(), 2);
    let manifest = &action.manifest_writes[0];
    assert_eq!(manifest.uri.to_string(), format!("{work}input.manifest"));
    assert_eq!(manifest.content_type, MANIFEST_CONTENT_TYPE);
    let sent = lines(&manifest.body);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].source().value(), "s3://in-bucket/animals/2.jpg");
    assert_eq!(
        std::str::from_utf8(&manifest.body).unwrap(),
        format!("{}\n", OUTPUT_MANIFEST.lines().nth(1).unwrap()),
        "lines are copied byte for byte"
    );
    assert_eq!(action.counts.filtered_out, 3);

    // The plan's labels become a label category file beside it.
    let categories = &action.manifest_writes[1];
    assert_eq!(
        categories.uri.to_string(),
        format!("{work}label-categories.json")
    );
    assert_eq!(
        request.label_category_config_s3_uri.as_deref(),
        Some(categories.uri.to_string().as_str())
    );
    let file = crate::label_categories::LabelCategoryConfig::parse(&categories.body).unwrap();
    assert_eq!(file.label_names(), ["indoor", "outdoor"]);

    // The plan's task replaces the source's; what it leaves out is copied.
    let task = &request.human_task_config;
    assert_eq!(task.task_title, "Indoor or outdoor?");
    assert_eq!(task.task_keywords, ["Images", "Classification"]);
    assert_eq!(
        task.ui_config.ui_template_s3_uri.as_deref(),
        Some("s3://my-bucket/templates/indoor-outdoor.liquid")
    );
    assert_eq!(
        task.workteam_arn,
        "arn:aws:sagemaker:us-east-1:111122223333:workteam/private-crowd/team"
    );
    assert_eq!(task.task_time_limit_in_seconds, 300);
    assert_eq!(task.max_concurrent_task_count, Some(1000));

    // The plan is consumed; chaining declarations stay.
    assert_eq!(tag(request, TAG_FOLLOW_UP), Some("none"));
    assert_eq!(tag(request, TAG_CHAIN), Some("continue"));
    assert_eq!(tag(request, TAG_STEP), Some("follow-up"));
    assert_eq!(tag(request, TAG_LABELED_AT_START), Some("0"));
}

#[test]
fn a_plan_can_name_the_next_plan() {
    let plan = r#"{"LabelAttributeName":"habitat","FollowUp":"s3://plans/third.json"}"#;
    let case = Case::new(job_in(LabelingJobStatus::Completed))
        .tag(TAG_FOLLOW_UP, PLAN_URI)
        .plan(plan);
    let action = case.chain();
    assert_eq!(
        tag(&action.request, TAG_FOLLOW_UP),
        Some("s3://plans/third.json")
    );
    // No threshold, no staging: the follow-up reads the source's output manifest as it is.
    assert_eq!(manifest_uri(&action.request), OUTPUT_URI);
    assert!(action.manifest_writes.is_empty());
    assert_eq!(action.counts.unlabeled, 4);
}

#[test]
fn the_default_plan_applies_to_untagged_completed_jobs() {
    let mut case = Case::new(job_in(LabelingJobStatus::Completed)).plan(PLAN);
    case.settings.default_follow_up_plan = Some(uri(PLAN_URI));
    assert_eq!(case.chain().step, ChainStep::FollowUp);
    let case = case.tag(TAG_FOLLOW_UP, "none");
    assert_eq!(case.skip(), SkipReason::NoFollowUpDeclared);
    // The kill switch beats a plan.
    let mut case = Case::new(job_in(LabelingJobStatus::Completed))
        .tag(TAG_FOLLOW_UP, PLAN_URI)
        .tag(TAG_CHAIN, "off")
        .plan(PLAN);
    assert_eq!(case.skip(), SkipReason::ChainingOff { by_tag: true });
    // A default mode of `off` is about continuing; a declared follow-up still runs.
    case.job.tags.retain(|t| t.key != TAG_CHAIN);
    case.settings.default_mode = ChainMode::Off;
    assert_eq!(case.chain().step, ChainStep::FollowUp);
}

#[test]
fn nothing_below_the_threshold_means_no_job() {
    let plan = r#"{"LabelAttributeName":"check","ConfidenceThreshold":0.5}"#;
    let case = Case::new(job_in(LabelingJobStatus::Completed))
        .tag(TAG_FOLLOW_UP, PLAN_URI)
        .plan(plan);
    assert_eq!(
        case.skip(),
        SkipReason::NothingBelowThreshold { threshold: 0.5 }
    );
}

#[test]
fn a_verification_plan_must_use_a_new_lan() {
    let plan = r#"{"PreHumanTaskLambdaArn":"arn:aws:lambda:us-east-1:432418664414:function:PRE-VerificationBoundingBox","UiTemplateS3Uri":"s3://bkt/verify.liquid"}"#;
    let case = Case::new(job_in(LabelingJobStatus::Completed))
        .tag(TAG_FOLLOW_UP, PLAN_URI)
        .plan(plan);
    assert!(matches!(
        case.decide(),
        Err(ChainError::InvalidPlan(PlanError::ReviewNeedsNewLan { .. }))
    ));
    let plan = r#"{"LabelAttributeName":"animal-check","PreHumanTaskLambdaArn":"arn:aws:lambda:us-east-1:432418664414:function:PRE-VerificationBoundingBox","AnnotationConsolidationLambdaArn":"arn:aws:lambda:us-east-1:432418664414:function:ACS-VerificationBoundingBox","UiTemplateS3Uri":"s3://bkt/verify.liquid","ConfidenceThreshold":0.9}"#;
    let case = case.plan(plan);
    let action = case.chain();
    assert_eq!(action.request.label_attribute_name, "animal-check");
    assert_eq!(
        action
            .request
            .human_task_config
            .annotation_consolidation_config
            .as_ref()
            .unwrap()
            .annotation_consolidation_lambda_arn,
        "arn:aws:lambda:us-east-1:432418664414:function:ACS-VerificationBoundingBox"
    );
    assert_eq!(
        action.counts.input_objects, 1,
        "only the 0.55 label is below 0.9"
    );
}

#[test]
fn a_bad_plan_is_an_error_not_a_decision() {
    let case = Case::new(job_in(LabelingJobStatus::Completed))
        .tag(TAG_FOLLOW_UP, PLAN_URI)
        .plan(r#"{"NumberOfHumanWorkersPerDataObject":12}"#);
    let err = case.decide().unwrap_err();
    assert!(matches!(err, ChainError::InvalidPlan(_)));
    assert!(
        err.to_string()
            .contains("NumberOfHumanWorkersPerDataObject"),
        "{err}"
    );
}

// --- Staged objects ------------------------------------------------------------------------------

#[test]
fn staged_objects_are_appended_once_to_a_new_manifest() {
    let mut case =
        Case::new(job_in(LabelingJobStatus::Stopped)).tag(TAG_STAGING_MANIFEST, STAGING_URI);
    case.staging = Some(STAGING_MANIFEST.to_owned());
    let action = case.chain();
    assert_eq!(
        action.counts.appended, 2,
        "4.jpg is in the manifest already"
    );
    assert_eq!(action.counts.input_objects, 6);
    assert_eq!(action.counts.unlabeled, 4);
    assert_eq!(action.manifest_writes.len(), 1);
    let write = &action.manifest_writes[0];
    assert_eq!(manifest_uri(&action.request), write.uri.to_string());
    let body = std::str::from_utf8(&write.body).unwrap();
    assert!(
        body.starts_with(OUTPUT_MANIFEST),
        "the output manifest, unchanged, first"
    );
    let sources: Vec<String> = lines(&write.body)
        .iter()
        .map(|l| l.source().value().to_owned())
        .collect();
    assert_eq!(sources.last().unwrap(), "s3://in-bucket/animals/6.jpg");
    assert_eq!(tag(&action.request, TAG_STAGING_MANIFEST), None, "consumed");
}

#[test]
fn a_completed_job_with_only_staged_objects_is_extended() {
    let mut case =
        Case::new(job_in(LabelingJobStatus::Completed)).tag(TAG_STAGING_MANIFEST, STAGING_URI);
    let mut all_labeled = String::new();
    for line in OUTPUT_MANIFEST.lines().take(2) {
        all_labeled.push_str(line);
        all_labeled.push('\n');
    }
    case.manifest = all_labeled;
    case.staging = Some(STAGING_MANIFEST.to_owned());
    let action = case.chain();
    assert_eq!(action.step, ChainStep::Continue);
    assert_eq!(action.request.label_attribute_name, "animal");
    assert_eq!(action.counts.unlabeled, 3);
    // Nothing new staged: nothing to label.
    case.staging = Some(OUTPUT_MANIFEST.lines().next().unwrap().to_owned());
    assert!(matches!(case.skip(), SkipReason::NothingToLabel { .. }));
}

// --- Automated labeling --------------------------------------------------------------------------

#[test]
fn the_final_model_is_passed_on_when_the_lan_is_unchanged() {
    let case = Case::new(with_auto_labeling(job_in(LabelingJobStatus::Stopped)));
    let request = case.chain().request;
    let algorithms = request.labeling_job_algorithms_config.unwrap();
    assert_eq!(
        algorithms.labeling_job_algorithm_specification_arn,
        ALGORITHM
    );
    assert_eq!(
        algorithms.initial_active_learning_model_arn.as_deref(),
        Some(FINAL_MODEL)
    );
}

#[test]
fn the_final_model_is_not_passed_to_a_new_lan() {
    let case = Case::new(with_auto_labeling(job_in(LabelingJobStatus::Completed)))
        .tag(TAG_FOLLOW_UP, PLAN_URI)
        .plan(r#"{"LabelAttributeName":"habitat"}"#);
    let algorithms = case.chain().request.labeling_job_algorithms_config.unwrap();
    assert_eq!(algorithms.initial_active_learning_model_arn, None);
}

#[test]
fn a_plan_switches_from_automated_to_human_labeling() {
    let case = Case::new(with_auto_labeling(job_in(LabelingJobStatus::Completed)))
        .tag(TAG_FOLLOW_UP, PLAN_URI)
        .plan(r#"{"LabelAttributeName":"habitat","LabelingJobAlgorithmsConfig":null}"#);
    assert_eq!(case.chain().request.labeling_job_algorithms_config, None);
}

#[test]
fn a_plan_switches_from_human_to_automated_labeling() {
    // A human-labeled job stopped by its stopping condition completes; the plan keeps the LAN and turns
    // automated labeling on for the rest.
    let plan = format!(
        r#"{{"LabelingJobAlgorithmsConfig":{{"LabelingJobAlgorithmSpecificationArn":"{ALGORITHM}"}},"StoppingConditions":null}}"#
    );
    let case = Case::new(job_in(LabelingJobStatus::Completed))
        .tag(TAG_FOLLOW_UP, PLAN_URI)
        .plan(&plan);
    let action = case.chain();
    assert_eq!(action.request.label_attribute_name, "animal");
    assert_eq!(action.counts.unlabeled, 2);
    let algorithms = action.request.labeling_job_algorithms_config.unwrap();
    assert_eq!(
        algorithms.labeling_job_algorithm_specification_arn,
        ALGORITHM
    );
    assert_eq!(action.request.stopping_conditions, None);
}

#[test]
fn a_plan_naming_its_own_model_keeps_it() {
    let plan = format!(
        r#"{{"LabelingJobAlgorithmsConfig":{{"LabelingJobAlgorithmSpecificationArn":"{ALGORITHM}","InitialActiveLearningModelArn":"arn:aws:sagemaker:us-east-1:111122223333:model/mine"}}}}"#
    );
    let case = Case::new(with_auto_labeling(job_in(LabelingJobStatus::Completed)))
        .tag(TAG_FOLLOW_UP, PLAN_URI)
        .plan(&plan);
    let algorithms = case.chain().request.labeling_job_algorithms_config.unwrap();
    assert_eq!(
        algorithms.initial_active_learning_model_arn.as_deref(),
        Some("arn:aws:sagemaker:us-east-1:111122223333:model/mine")
    );
}

#[test]
fn a_new_task_type_drops_the_source_algorithm() {
    let plan = r#"{"LabelAttributeName":"boxes","PreHumanTaskLambdaArn":"arn:aws:lambda:us-east-1:432418664414:function:PRE-BoundingBox","UiTemplateS3Uri":"s3://bkt/boxes.liquid"}"#;
    let case = Case::new(with_auto_labeling(job_in(LabelingJobStatus::Completed)))
        .tag(TAG_FOLLOW_UP, PLAN_URI)
        .plan(plan);
    assert_eq!(case.chain().request.labeling_job_algorithms_config, None);
}

// --- Callers -------------------------------------------------------------------------------------

#[test]
fn prepare_asks_for_what_plan_needs() {
    let job = job_in(LabelingJobStatus::Stopped);
    let Preparation::Fetch(needs) = prepare(&job, &continuing(), &ChainRequest::default()).unwrap()
    else {
        panic!("expected a fetch");
    };
    assert_eq!(needs.step, ChainStep::Continue);
    assert_eq!(needs.plan, None);
    assert_eq!(
        needs.manifest,
        [
            ManifestCandidate::Object(uri(OUTPUT_URI)),
            ManifestCandidate::NewestIntermediate(uri(
                "s3://out-bucket/jobs/Animals/manifests/intermediate/"
            )),
            ManifestCandidate::Object(uri("s3://in-bucket/animals/input.manifest")),
        ]
    );
    let mut completed = job_with_tags(&[
        (TAG_FOLLOW_UP, PLAN_URI),
        (TAG_STAGING_MANIFEST, STAGING_URI),
    ]);
    completed.labeling_job_status = LabelingJobStatus::Completed;
    completed.labeling_job_output = None;
    let Preparation::Fetch(needs) =
        prepare(&completed, &continuing(), &ChainRequest::default()).unwrap()
    else {
        panic!("expected a fetch");
    };
    assert_eq!(needs.plan, Some(PlanSource::Declared(uri(PLAN_URI))));
    assert_eq!(needs.staging, Some(uri(STAGING_URI)));
    assert_eq!(needs.manifest, [ManifestCandidate::Object(uri(OUTPUT_URI))]);
}

#[test]
fn missing_inputs_are_errors() {
    let job = job_in(LabelingJobStatus::Stopped);
    let settings = continuing();
    let request = ChainRequest::default();
    let err = plan(&PlannerInput {
        job: &job,
        settings: &settings,
        request: &request,
        plan: None,
        manifest: None,
        staging: None,
    })
    .unwrap_err();
    assert!(matches!(err, ChainError::MissingInput(_)), "{err}");
    let mut case = Case::new(job_in(LabelingJobStatus::Completed)).tag(TAG_FOLLOW_UP, PLAN_URI);
    assert!(matches!(case.decide(), Err(ChainError::MissingInput(_))));
    case.plan = Some(PLAN.to_owned());
    case.manifest = "{\"source-ref\":\"s3://bkt/1\"}\nnot json\n".to_owned();
    let err = case.decide().unwrap_err();
    assert!(matches!(err, ChainError::InvalidManifest(_)));
    assert!(err.to_string().contains(OUTPUT_URI), "{err}");
}

#[test]
fn unreadable_tags_are_errors() {
    let case = Case::new(job_in(LabelingJobStatus::Stopped)).tag(TAG_CHAIN, "maybe");
    assert!(matches!(case.decide(), Err(ChainError::InvalidTag(_))));
    let case = Case::new(job_in(LabelingJobStatus::Stopped)).tag(TAG_DEPTH, "deep");
    assert!(matches!(case.decide(), Err(ChainError::InvalidTag(_))));
}

#[test]
fn a_supplied_plan_runs_whatever_the_status() {
    let mut case = Case::new(job_in(LabelingJobStatus::Stopped)).plan(&format!(
        r#"{{"LabelingJobAlgorithmsConfig":{{"LabelingJobAlgorithmSpecificationArn":"{ALGORITHM}"}}}}"#
    ));
    case.request.supplied_plan = true;
    let action = case.chain();
    assert_eq!(action.step, ChainStep::FollowUp);
    assert_eq!(action.request.label_attribute_name, "animal");
    assert!(action.request.labeling_job_algorithms_config.is_some());
}

#[test]
fn force_continues_a_completed_job_with_failed_objects() {
    let mut case = Case::new(job_in(LabelingJobStatus::Completed));
    case.request.force = true;
    assert_eq!(case.chain().counts.unlabeled, 2);
}

#[test]
fn the_write_prefix_setting_moves_the_work_folder() {
    let mut case = Case::new(job_in(LabelingJobStatus::Completed))
        .tag(TAG_FOLLOW_UP, PLAN_URI)
        .plan(PLAN);
    case.settings.write_prefix = Some(uri("s3://work-bucket/chains/"));
    let action = case.chain();
    assert_eq!(
        action.manifest_writes[0].uri.to_string(),
        format!(
            "s3://work-bucket/chains/{}/input.manifest",
            action.request.labeling_job_name
        )
    );
}

#[test]
fn too_many_tags_is_an_error() {
    let mut case = Case::new(job_in(LabelingJobStatus::Stopped));
    case.job.tags = (0..46)
        .map(|i| Tag {
            key: format!("k{i}"),
            value: String::new(),
        })
        .collect();
    assert!(matches!(
        case.decide(),
        Err(ChainError::TooManyTags { count: 51 })
    ));
}

#[test]
fn lineage_tags_of_the_source_are_never_copied() {
    let case = Case::new(job_in(LabelingJobStatus::Stopped))
        .tag(TAG_CLONED_FROM, "Older")
        .tag(TAG_STEP, "follow-up");
    let request = case.chain().request;
    assert_eq!(tag(&request, TAG_CLONED_FROM), None);
    assert_eq!(tag(&request, TAG_STEP), Some("continue"));
}
