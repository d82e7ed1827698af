//! The follow-up plan: a small JSON document in S3 that says what job to run after a job Completes.
//!
//! Every field is optional; what a plan leaves out is copied from the job it follows. Field names are
//! CreateLabelingJob's own (`HumanTaskConfig` members flattened), plus three of ours:
//! `ConfidenceThreshold` (only objects whose label under the source job's label attribute name has a
//! confidence below it go to the follow-up), `LabelCategories` (a label list the planner writes as a
//! label category file next to the follow-up's manifest) and `FollowUp` (the plan of the job after this
//! one; without it the follow-up job is tagged `groundwork:follow-up=none`, so plans never repeat
//! themselves). `LabelingJobAlgorithmsConfig` and `StoppingConditions` have three states: absent (copy
//! the source's), `null` (remove: switch from automated to human labeling) or an object (set: switch to
//! automated labeling).
//!
//! ```json
//! {
//!   "LabelAttributeName": "indoor-outdoor",
//!   "TaskTitle": "Indoor or outdoor?",
//!   "TaskDescription": "Is the sport in the picture played indoors or outdoors?",
//!   "TaskKeywords": ["Images", "Classification"],
//!   "UiTemplateS3Uri": "s3://my-bucket/templates/indoor-outdoor.liquid",
//!   "PreHumanTaskLambdaArn": "arn:aws:lambda:us-east-1:432418664414:function:PRE-ImageMultiClass",
//!   "AnnotationConsolidationLambdaArn": "arn:aws:lambda:us-east-1:432418664414:function:ACS-ImageMultiClass",
//!   "WorkteamArn": "arn:aws:sagemaker:us-east-1:111122223333:workteam/private-crowd/team",
//!   "NumberOfHumanWorkersPerDataObject": 3,
//!   "ConfidenceThreshold": 0.8,
//!   "LabelCategories": ["indoor", "outdoor"],
//!   "LabelingJobAlgorithmsConfig": null
//! }
//! ```
//!
//! Unknown fields are rejected (a misspelt field would otherwise be silently ignored), and every value is
//! checked against the API's limits up front, so a bad plan fails when the chainer reads it — with the
//! field named — rather than as a `ValidationException` from CreateLabelingJob.

use serde::{Deserialize, Deserializer};

use crate::label_categories::LabelCategoryConfig;
use crate::labeling_job::{
    LabelingJobAlgorithmsConfig, LabelingJobDescription, StoppingConditions,
};
use crate::lan::{LabelAttributeName, LanError};
use crate::s3_uri::{S3Uri, S3UriError};
use crate::task_type::TaskType;

/// A field that can be left alone, removed (`null`) or set.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Patch<T> {
    /// Absent: copy the source job's value.
    #[default]
    Keep,
    /// `null`: leave it out of the new job.
    Remove,
    /// A value: use it.
    Set(T),
}

impl<T> Patch<T> {
    /// The new value, given the source's.
    pub fn apply(&self, source: Option<&T>) -> Option<T>
    where
        T: Clone,
    {
        match self {
            Patch::Keep => source.cloned(),
            Patch::Remove => None,
            Patch::Set(v) => Some(v.clone()),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Only reached for a present field (absent ones take `Default`), so `None` here is a JSON null.
        Ok(Option::<T>::deserialize(deserializer)?.map_or(Patch::Remove, Patch::Set))
    }
}

/// The follow-up plan document.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct FollowUpPlan {
    /// The follow-up's label attribute name; absent: the source job's (add data objects, or switch
    /// between human and automated labeling).
    #[serde(default)]
    pub label_attribute_name: Option<String>,
    /// Title shown to workers.
    #[serde(default)]
    pub task_title: Option<String>,
    /// Description shown to workers.
    #[serde(default)]
    pub task_description: Option<String>,
    /// Search keywords.
    #[serde(default)]
    pub task_keywords: Option<Vec<String>>,
    /// A worker template in S3.
    #[serde(default, rename = "UiTemplateS3Uri")]
    pub ui_template_s3_uri: Option<String>,
    /// An AWS-hosted worker UI.
    #[serde(default)]
    pub human_task_ui_arn: Option<String>,
    /// The pre-annotation Lambda (its name gives the task type of built-in ones).
    #[serde(default)]
    pub pre_human_task_lambda_arn: Option<String>,
    /// The consolidation Lambda.
    #[serde(default)]
    pub annotation_consolidation_lambda_arn: Option<String>,
    /// The work team.
    #[serde(default)]
    pub workteam_arn: Option<String>,
    /// 1–9.
    #[serde(default)]
    pub number_of_human_workers_per_data_object: Option<u32>,
    /// At least 30.
    #[serde(default)]
    pub task_time_limit_in_seconds: Option<u32>,
    /// At least 60.
    #[serde(default)]
    pub task_availability_lifetime_in_seconds: Option<u32>,
    /// 1–5000.
    #[serde(default)]
    pub max_concurrent_task_count: Option<u32>,
    /// Only objects whose source label's confidence is below this (0–1) are sent.
    #[serde(default)]
    pub confidence_threshold: Option<f64>,
    /// Labels to write as the follow-up's label category file.
    #[serde(default)]
    pub label_categories: Option<Vec<String>>,
    /// An existing label category file instead.
    #[serde(default, rename = "LabelCategoryConfigS3Uri")]
    pub label_category_config_s3_uri: Option<String>,
    /// Automated labeling: absent keep, `null` off, object on.
    #[serde(default)]
    pub labeling_job_algorithms_config: Patch<LabelingJobAlgorithmsConfig>,
    /// Stopping conditions: absent keep, `null` none, object set.
    #[serde(default)]
    pub stopping_conditions: Patch<StoppingConditions>,
    /// The plan of the job after the follow-up.
    #[serde(default)]
    pub follow_up: Option<String>,
}

/// Why a plan cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// Not JSON, a wrong type, or an unknown field.
    #[error("the follow-up plan is not a valid plan document: {0}")]
    Json(String),
    /// The label attribute name breaks a rule. (Not a `#[source]`: the message holds it, and a chain
    /// printer would say it twice.)
    #[error("LabelAttributeName: {0}")]
    Lan(LanError),
    /// A verification or adjustment job reusing the label attribute name it reviews.
    #[error(
        "LabelAttributeName: a {task} job must use a label attribute name other than the one it reviews (`{lan}`)"
    )]
    ReviewNeedsNewLan {
        /// The follow-up's task type.
        task: TaskType,
        /// The shared name.
        lan: String,
    },
    /// A number out of the API's range.
    #[error("{field}: {value} is out of range ({range})")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The value.
        value: String,
        /// The accepted range.
        range: &'static str,
    },
    /// A text out of the API's limits.
    #[error("{field}: {reason}")]
    Text {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Two fields that exclude each other.
    #[error("{0} and {1} cannot both be given")]
    Exclusive(&'static str, &'static str),
    /// A new task type without its own worker UI.
    #[error(
        "the follow-up is a {to} job but the source job is a {from} job: give the follow-up its own UiTemplateS3Uri or HumanTaskUiArn"
    )]
    NeedsOwnUi {
        /// The source's task type.
        from: TaskType,
        /// The follow-up's.
        to: TaskType,
    },
    /// An S3 URI field that is not one.
    #[error("{field}: {source}")]
    Uri {
        /// The field.
        field: &'static str,
        /// Why.
        #[source]
        source: S3UriError,
    },
    /// An ARN field of the wrong kind.
    #[error("{field}: `{value}` is not {expected}")]
    Arn {
        /// The field.
        field: &'static str,
        /// The value.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
}

impl From<LanError> for PlanError {
    fn from(error: LanError) -> Self {
        PlanError::Lan(error)
    }
}

impl FollowUpPlan {
    /// Parses a plan document and checks everything that does not depend on the source job.
    pub fn parse(bytes: &[u8]) -> Result<Self, PlanError> {
        let plan: FollowUpPlan =
            serde_json::from_slice(bytes).map_err(|e| PlanError::Json(e.to_string()))?;
        plan.check()?;
        Ok(plan)
    }

    fn check(&self) -> Result<(), PlanError> {
        if let Some(lan) = &self.label_attribute_name {
            LabelAttributeName::new(lan.clone())?;
        }
        check_text("TaskTitle", self.task_title.as_deref(), 128, |c| {
            // The API's `[\t\n\r -\uD7FF\uE000-\uFFFD]*`.
            matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        })?;
        // The API's `.+`: no line breaks.
        check_text(
            "TaskDescription",
            self.task_description.as_deref(),
            255,
            |c| c != '\n' && c != '\r',
        )?;
        if let Some(keywords) = &self.task_keywords {
            check_keywords(keywords)?;
        }
        if self.ui_template_s3_uri.is_some() && self.human_task_ui_arn.is_some() {
            return Err(PlanError::Exclusive("UiTemplateS3Uri", "HumanTaskUiArn"));
        }
        if self.label_categories.is_some() && self.label_category_config_s3_uri.is_some() {
            return Err(PlanError::Exclusive(
                "LabelCategories",
                "LabelCategoryConfigS3Uri",
            ));
        }
        for (field, value) in [
            ("UiTemplateS3Uri", &self.ui_template_s3_uri),
            (
                "LabelCategoryConfigS3Uri",
                &self.label_category_config_s3_uri,
            ),
            ("FollowUp", &self.follow_up),
        ] {
            if let Some(v) = value {
                v.parse::<S3Uri>()
                    .map_err(|source| PlanError::Uri { field, source })?;
            }
        }
        check_arn(
            "HumanTaskUiArn",
            self.human_task_ui_arn.as_deref(),
            ":human-task-ui/",
            "a human task UI ARN (arn:aws:sagemaker:<region>:<account>:human-task-ui/<name>)",
        )?;
        check_arn(
            "PreHumanTaskLambdaArn",
            self.pre_human_task_lambda_arn.as_deref(),
            ":function:",
            "a Lambda function ARN (arn:aws:lambda:<region>:<account>:function:<name>)",
        )?;
        check_arn(
            "AnnotationConsolidationLambdaArn",
            self.annotation_consolidation_lambda_arn.as_deref(),
            ":function:",
            "a Lambda function ARN (arn:aws:lambda:<region>:<account>:function:<name>)",
        )?;
        check_arn(
            "WorkteamArn",
            self.workteam_arn.as_deref(),
            ":workteam/",
            "a work team ARN (arn:aws:sagemaker:<region>:<account>:workteam/<type>/<name>)",
        )?;
        check_range(
            "NumberOfHumanWorkersPerDataObject",
            self.number_of_human_workers_per_data_object,
            1,
            9,
            "1–9",
        )?;
        check_range(
            "TaskTimeLimitInSeconds",
            self.task_time_limit_in_seconds,
            30,
            30 * 24 * 3600,
            "30 s – 30 days",
        )?;
        check_range(
            "TaskAvailabilityLifetimeInSeconds",
            self.task_availability_lifetime_in_seconds,
            60,
            30 * 24 * 3600,
            "60 s – 30 days",
        )?;
        check_range(
            "MaxConcurrentTaskCount",
            self.max_concurrent_task_count,
            1,
            5000,
            "1–5000",
        )?;
        if let Some(t) = self.confidence_threshold
            && !(t.is_finite() && (0.0..=1.0).contains(&t))
        {
            return Err(PlanError::OutOfRange {
                field: "ConfidenceThreshold",
                value: t.to_string(),
                range: "0–1",
            });
        }
        if let Some(labels) = &self.label_categories {
            // The planner writes these as a label category file: check them as one.
            let file = LabelCategoryConfig::to_2018_json(labels).to_string();
            LabelCategoryConfig::parse(file.as_bytes()).map_err(|e| PlanError::Text {
                field: "LabelCategories",
                reason: e.to_string(),
            })?;
            if let Some(long) = labels.iter().find(|l| l.chars().count() > 256) {
                return Err(PlanError::Text {
                    field: "LabelCategories",
                    reason: format!("label `{long}` is longer than 256 characters"),
                });
            }
        }
        if let Patch::Set(stop) = &self.stopping_conditions {
            check_range(
                "StoppingConditions.MaxHumanLabeledObjectCount",
                stop.max_human_labeled_object_count,
                1,
                u32::MAX,
                "at least 1",
            )?;
            check_range(
                "StoppingConditions.MaxPercentageOfInputDatasetLabeled",
                stop.max_percentage_of_input_dataset_labeled,
                1,
                100,
                "1–100",
            )?;
        }
        if let Patch::Set(algorithms) = &self.labeling_job_algorithms_config
            && !algorithms
                .labeling_job_algorithm_specification_arn
                .starts_with("arn:")
        {
            return Err(PlanError::Arn {
                field: "LabelingJobAlgorithmsConfig.LabelingJobAlgorithmSpecificationArn",
                value: algorithms.labeling_job_algorithm_specification_arn.clone(),
                expected: "an algorithm specification ARN",
            });
        }
        Ok(())
    }

    /// The follow-up's task type: read from the plan's Lambda ARNs, else the source job's.
    pub fn task_type(&self, source: &LabelingJobDescription) -> TaskType {
        let from = |arn: &Option<String>| arn.as_deref().map(TaskType::from_lambda_arn);
        match (
            from(&self.pre_human_task_lambda_arn),
            from(&self.annotation_consolidation_lambda_arn),
        ) {
            (Some(t), _) if t != TaskType::Custom => t,
            (_, Some(t)) if t != TaskType::Custom => t,
            (Some(t), _) | (_, Some(t)) => t,
            (None, None) => source.task_type(),
        }
    }

    /// The follow-up's label attribute name, and the checks that need the source job: the `-ref` rule of
    /// the follow-up's task type, a new name for verification and adjustment, and a worker UI of its own
    /// when the task type changes.
    pub fn resolve_lan(
        &self,
        source: &LabelingJobDescription,
        source_lan: &str,
    ) -> Result<LabelAttributeName, PlanError> {
        let task = self.task_type(source);
        let name = self
            .label_attribute_name
            .clone()
            .unwrap_or_else(|| source_lan.to_owned());
        let lan = LabelAttributeName::for_task(name, task)?;
        if (task.is_verification() || task.is_adjustment()) && lan.as_str() == source_lan {
            return Err(PlanError::ReviewNeedsNewLan {
                task,
                lan: lan.as_str().to_owned(),
            });
        }
        let source_task = source.task_type();
        if task != source_task
            && self.ui_template_s3_uri.is_none()
            && self.human_task_ui_arn.is_none()
        {
            return Err(PlanError::NeedsOwnUi {
                from: source_task,
                to: task,
            });
        }
        Ok(lan)
    }
}

fn check_text(
    field: &'static str,
    value: Option<&str>,
    max_chars: usize,
    allowed: impl Fn(char) -> bool,
) -> Result<(), PlanError> {
    let Some(value) = value else {
        return Ok(());
    };
    let len = value.chars().count();
    if value.trim().is_empty() {
        return Err(PlanError::Text {
            field,
            reason: "must not be empty".to_owned(),
        });
    }
    if len > max_chars {
        return Err(PlanError::Text {
            field,
            reason: format!("is {len} characters long (at most {max_chars})"),
        });
    }
    if let Some(c) = value.chars().find(|c| !allowed(*c)) {
        return Err(PlanError::Text {
            field,
            reason: format!("must not contain {c:?}"),
        });
    }
    Ok(())
}

/// 1–5 keywords of `[A-Za-z0-9]+( [A-Za-z0-9]+)*`, each 1–30 characters.
fn check_keywords(keywords: &[String]) -> Result<(), PlanError> {
    let err = |reason: String| PlanError::Text {
        field: "TaskKeywords",
        reason,
    };
    if !(1..=5).contains(&keywords.len()) {
        return Err(err(format!("{} keywords (1–5 allowed)", keywords.len())));
    }
    for k in keywords {
        let words_ok = k
            .split(' ')
            .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric()));
        if !(1..=30).contains(&k.len()) || !words_ok {
            return Err(err(format!(
                "`{k}` must be 1–30 letters or digits, words separated by single spaces"
            )));
        }
    }
    Ok(())
}

fn check_arn(
    field: &'static str,
    value: Option<&str>,
    marker: &str,
    expected: &'static str,
) -> Result<(), PlanError> {
    match value {
        Some(v) if !(v.starts_with("arn:aws") && v.contains(marker)) => Err(PlanError::Arn {
            field,
            value: v.to_owned(),
            expected,
        }),
        _ => Ok(()),
    }
}

fn check_range(
    field: &'static str,
    value: Option<u32>,
    min: u32,
    max: u32,
    range: &'static str,
) -> Result<(), PlanError> {
    match value {
        Some(v) if !(min..=max).contains(&v) => Err(PlanError::OutOfRange {
            field,
            value: v.to_string(),
            range,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::testing::job_with_tags;

    fn parse(json: &str) -> Result<FollowUpPlan, PlanError> {
        FollowUpPlan::parse(json.as_bytes())
    }

    #[test]
    fn parses_the_documented_example() {
        let plan = parse(include_str!(
            "../../tests/data/chain/plan-indoor-outdoor.json"
        ))
        .unwrap();
        assert_eq!(plan.label_attribute_name.as_deref(), Some("indoor-outdoor"));
        assert_eq!(plan.confidence_threshold, Some(0.8));
        assert_eq!(plan.labeling_job_algorithms_config, Patch::Remove);
        assert_eq!(plan.stopping_conditions, Patch::Keep);
        assert_eq!(
            plan.label_categories,
            Some(vec!["indoor".to_owned(), "outdoor".to_owned()])
        );
    }

    #[test]
    fn an_empty_plan_is_valid() {
        assert_eq!(parse("{}").unwrap(), FollowUpPlan::default());
    }

    #[test]
    fn patches_have_three_states() {
        let set = parse(
            r#"{"LabelingJobAlgorithmsConfig":{"LabelingJobAlgorithmSpecificationArn":"arn:aws:sagemaker:us-east-1:027400017018:labeling-job-algorithm-specification/image-classification"}}"#,
        )
        .unwrap();
        assert!(matches!(set.labeling_job_algorithms_config, Patch::Set(_)));
        let source = StoppingConditions {
            max_human_labeled_object_count: Some(5),
            ..Default::default()
        };
        assert_eq!(Patch::Keep.apply(Some(&source)), Some(source.clone()));
        assert_eq!(Patch::Remove.apply(Some(&source)), None);
        let other = StoppingConditions::default();
        assert_eq!(Patch::Set(other.clone()).apply(Some(&source)), Some(other));
    }

    #[test]
    fn rejects_unknown_fields_and_bad_json() {
        let e = parse(r#"{"LabelAtributeName":"x"}"#).unwrap_err();
        assert!(matches!(e, PlanError::Json(_)));
        assert!(e.to_string().contains("LabelAtributeName"), "{e}");
        assert!(matches!(parse("[1]"), Err(PlanError::Json(_))));
    }

    #[test]
    fn rejects_each_bad_field_by_name() {
        let cases = [
            (
                r#"{"LabelAttributeName":"x-metadata"}"#,
                "LabelAttributeName",
            ),
            (r#"{"LabelAttributeName":"source"}"#, "LabelAttributeName"),
            (r#"{"TaskTitle":""}"#, "TaskTitle"),
            (r#"{"TaskDescription":"line1\nline2"}"#, "TaskDescription"),
            (r#"{"TaskKeywords":[]}"#, "TaskKeywords"),
            (r#"{"TaskKeywords":["a_b"]}"#, "TaskKeywords"),
            (
                r#"{"UiTemplateS3Uri":"s3://bkt/t","HumanTaskUiArn":"arn:aws:sagemaker:us-east-1:1:human-task-ui/x"}"#,
                "UiTemplateS3Uri",
            ),
            (r#"{"UiTemplateS3Uri":"https://b/t"}"#, "UiTemplateS3Uri"),
            (r#"{"FollowUp":"plan.json"}"#, "FollowUp"),
            (
                r#"{"PreHumanTaskLambdaArn":"PRE-BoundingBox"}"#,
                "PreHumanTaskLambdaArn",
            ),
            (
                r#"{"WorkteamArn":"arn:aws:sagemaker:us-east-1:1:team/x"}"#,
                "WorkteamArn",
            ),
            (
                r#"{"NumberOfHumanWorkersPerDataObject":0}"#,
                "NumberOfHumanWorkersPerDataObject",
            ),
            (
                r#"{"NumberOfHumanWorkersPerDataObject":10}"#,
                "NumberOfHumanWorkersPerDataObject",
            ),
            (r#"{"TaskTimeLimitInSeconds":10}"#, "TaskTimeLimitInSeconds"),
            (
                r#"{"TaskAvailabilityLifetimeInSeconds":59}"#,
                "TaskAvailabilityLifetimeInSeconds",
            ),
            (
                r#"{"MaxConcurrentTaskCount":5001}"#,
                "MaxConcurrentTaskCount",
            ),
            (r#"{"ConfidenceThreshold":1.5}"#, "ConfidenceThreshold"),
            (r#"{"LabelCategories":[]}"#, "LabelCategories"),
            (r#"{"LabelCategories":["a","a"]}"#, "LabelCategories"),
            (
                r#"{"LabelCategories":["a"],"LabelCategoryConfigS3Uri":"s3://bkt/l.json"}"#,
                "LabelCategories",
            ),
            (
                r#"{"StoppingConditions":{"MaxPercentageOfInputDatasetLabeled":101}}"#,
                "StoppingConditions",
            ),
            (
                r#"{"LabelingJobAlgorithmsConfig":{"LabelingJobAlgorithmSpecificationArn":"image-classification"}}"#,
                "LabelingJobAlgorithmsConfig",
            ),
        ];
        for (json, field) in cases {
            let err = parse(json).expect_err(json);
            assert!(err.to_string().contains(field), "{json}: {err}");
        }
    }

    #[test]
    fn resolves_the_lan_against_the_source_job() {
        // The source job is image classification with LAN `animal`.
        let source = job_with_tags(&[]);
        let same = parse("{}").unwrap();
        assert_eq!(
            same.resolve_lan(&source, "animal").unwrap().as_str(),
            "animal"
        );
        let new = parse(r#"{"LabelAttributeName":"habitat"}"#).unwrap();
        assert_eq!(
            new.resolve_lan(&source, "animal").unwrap().as_str(),
            "habitat"
        );

        let verify_same = parse(
            r#"{"PreHumanTaskLambdaArn":"arn:aws:lambda:us-east-1:432418664414:function:PRE-VerificationBoundingBox","UiTemplateS3Uri":"s3://bkt/v.liquid"}"#,
        )
        .unwrap();
        assert!(matches!(
            verify_same.resolve_lan(&source, "animal"),
            Err(PlanError::ReviewNeedsNewLan { .. })
        ));

        let seg_without_ref = parse(
            r#"{"LabelAttributeName":"mask","AnnotationConsolidationLambdaArn":"arn:aws:lambda:us-east-1:432418664414:function:ACS-SemanticSegmentation","UiTemplateS3Uri":"s3://bkt/s.liquid"}"#,
        )
        .unwrap();
        let error = seg_without_ref.resolve_lan(&source, "animal").unwrap_err();
        assert!(matches!(
            error,
            PlanError::Lan(LanError::RefRequired { .. })
        ));
        let chain = crate::test_support::error_chain(&error);
        assert_eq!(chain.matches("label attribute name").count(), 1, "{chain}");

        let new_type_without_ui = parse(
            r#"{"LabelAttributeName":"boxes","PreHumanTaskLambdaArn":"arn:aws:lambda:us-east-1:432418664414:function:PRE-BoundingBox"}"#,
        )
        .unwrap();
        assert!(matches!(
            new_type_without_ui.resolve_lan(&source, "animal"),
            Err(PlanError::NeedsOwnUi { .. })
        ));
    }

    #[test]
    fn task_type_prefers_built_in_lambdas() {
        let source = job_with_tags(&[]);
        let custom_pre = parse(
            r#"{"PreHumanTaskLambdaArn":"arn:aws:lambda:us-east-1:111111111111:function:my-pre","AnnotationConsolidationLambdaArn":"arn:aws:lambda:us-east-1:432418664414:function:ACS-BoundingBox"}"#,
        )
        .unwrap();
        assert_eq!(custom_pre.task_type(&source), TaskType::BoundingBox);
        assert_eq!(parse("{}").unwrap().task_type(&source), source.task_type());
    }
}
