//! DescribeLabelingJob and CreateLabelingJob, as plain serde types with the API's own field names.
//!
//! These mirror the SageMaker API model (`contracts.md` §7) so that the same values can be read from what
//! `aws sagemaker describe-labeling-job` prints, written as the exact request the chainer would send
//! (`groundwork chain plan`), and converted to and from aws-sdk-sagemaker's builders at the edge — the
//! domain never sees SDK types, and crates that do not call SageMaker never compile its SDK.
//! Unknown fields are ignored on input; absent optional fields are omitted on output.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `LabelingJobStatus`. Unknown values are kept, not rejected: AWS may add states.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum LabelingJobStatus {
    /// `Initializing`.
    Initializing,
    /// `InProgress`.
    InProgress,
    /// `Completed`.
    Completed,
    /// `Failed`.
    Failed,
    /// `Stopping`.
    Stopping,
    /// `Stopped`.
    Stopped,
    /// Any other value.
    Other(String),
}

impl LabelingJobStatus {
    /// The API spelling.
    pub fn as_str(&self) -> &str {
        match self {
            LabelingJobStatus::Initializing => "Initializing",
            LabelingJobStatus::InProgress => "InProgress",
            LabelingJobStatus::Completed => "Completed",
            LabelingJobStatus::Failed => "Failed",
            LabelingJobStatus::Stopping => "Stopping",
            LabelingJobStatus::Stopped => "Stopped",
            LabelingJobStatus::Other(s) => s,
        }
    }

    /// Completed, Failed or Stopped: the job will not change any more.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            LabelingJobStatus::Completed | LabelingJobStatus::Failed | LabelingJobStatus::Stopped
        )
    }
}

impl From<String> for LabelingJobStatus {
    fn from(s: String) -> Self {
        match s.as_str() {
            "Initializing" => LabelingJobStatus::Initializing,
            "InProgress" => LabelingJobStatus::InProgress,
            "Completed" => LabelingJobStatus::Completed,
            "Failed" => LabelingJobStatus::Failed,
            "Stopping" => LabelingJobStatus::Stopping,
            "Stopped" => LabelingJobStatus::Stopped,
            _ => LabelingJobStatus::Other(s),
        }
    }
}

impl From<&str> for LabelingJobStatus {
    fn from(s: &str) -> Self {
        LabelingJobStatus::from(s.to_owned())
    }
}

impl From<LabelingJobStatus> for String {
    fn from(s: LabelingJobStatus) -> String {
        s.as_str().to_owned()
    }
}

impl fmt::Display for LabelingJobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `LabelCounters`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LabelCounters {
    /// Objects labeled (human + machine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_labeled: Option<u64>,
    /// Objects labeled by workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub human_labeled: Option<u64>,
    /// Objects labeled by automated labeling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_labeled: Option<u64>,
    /// Objects that failed for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_non_retryable_error: Option<u64>,
    /// Objects not labeled yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlabeled: Option<u64>,
}

/// `InputConfig.DataSource.S3DataSource`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct S3DataSource {
    /// The input manifest.
    pub manifest_s3_uri: String,
}

/// `InputConfig.DataSource.SnsDataSource` (streaming jobs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnsDataSource {
    /// The input topic.
    pub sns_topic_arn: String,
}

/// `InputConfig.DataSource`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DataSource {
    /// A manifest in S3.
    #[serde(
        default,
        rename = "S3DataSource",
        skip_serializing_if = "Option::is_none"
    )]
    pub s3_data_source: Option<S3DataSource>,
    /// An SNS topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sns_data_source: Option<SnsDataSource>,
}

/// `InputConfig.DataAttributes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DataAttributes {
    /// `FreeOfPersonallyIdentifiableInformation`, `FreeOfAdultContent`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content_classifiers: Vec<String>,
}

/// `InputConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InputConfig {
    /// Where the data objects come from.
    pub data_source: DataSource,
    /// Content classifiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_attributes: Option<DataAttributes>,
}

/// `OutputConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OutputConfig {
    /// Where the job writes (`<S3OutputPath>/<job name>/...`).
    #[serde(rename = "S3OutputPath")]
    pub s3_output_path: String,
    /// Encryption key for the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// Streaming output topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sns_topic_arn: Option<String>,
}

/// `StoppingConditions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StoppingConditions {
    /// Stop after this many human labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_human_labeled_object_count: Option<u32>,
    /// Stop after this share of the input is labeled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_percentage_of_input_dataset_labeled: Option<u32>,
}

/// `LabelingJobResourceConfig.VpcConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VpcConfig {
    /// Security groups.
    pub security_group_ids: Vec<String>,
    /// Subnets.
    pub subnets: Vec<String>,
}

/// `LabelingJobAlgorithmsConfig.LabelingJobResourceConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LabelingJobResourceConfig {
    /// Volume encryption key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_kms_key_id: Option<String>,
    /// VPC of the training/inference instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_config: Option<VpcConfig>,
}

/// `LabelingJobAlgorithmsConfig`: present = automated labeling on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LabelingJobAlgorithmsConfig {
    /// `arn:aws:sagemaker:<region>:027400017018:labeling-job-algorithm-specification/<type>`.
    pub labeling_job_algorithm_specification_arn: String,
    /// A model from an earlier job to start from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_active_learning_model_arn: Option<String>,
    /// Instances' encryption and network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labeling_job_resource_config: Option<LabelingJobResourceConfig>,
}

/// `HumanTaskConfig.UiConfig` (exactly one of the two).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UiConfig {
    /// A Liquid template in S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ui_template_s3_uri: Option<String>,
    /// An AWS-hosted UI (NER, video, 3D).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub human_task_ui_arn: Option<String>,
}

/// `HumanTaskConfig.AnnotationConsolidationConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AnnotationConsolidationConfig {
    /// The consolidation Lambda.
    pub annotation_consolidation_lambda_arn: String,
}

/// `PublicWorkforceTaskPrice.AmountInUsd`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AmountInUsd {
    /// 0–2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dollars: Option<u32>,
    /// 0–99.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cents: Option<u32>,
    /// 0–9.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenth_fractions_of_a_cent: Option<u32>,
}

/// `PublicWorkforceTaskPrice`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublicWorkforceTaskPrice {
    /// The price per task and worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_in_usd: Option<AmountInUsd>,
}

/// `HumanTaskConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HumanTaskConfig {
    /// The work team.
    pub workteam_arn: String,
    /// The worker UI.
    pub ui_config: UiConfig,
    /// The pre-annotation Lambda (optional since 2024 for custom jobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_human_task_lambda_arn: Option<String>,
    /// Search keywords.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub task_keywords: Vec<String>,
    /// Title shown to workers.
    pub task_title: String,
    /// Description shown to workers.
    pub task_description: String,
    /// 1–9.
    pub number_of_human_workers_per_data_object: u32,
    /// Time a worker has per task.
    pub task_time_limit_in_seconds: u32,
    /// Time a task stays available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_availability_lifetime_in_seconds: Option<u32>,
    /// Tasks out at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_task_count: Option<u32>,
    /// The consolidation Lambda.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation_consolidation_config: Option<AnnotationConsolidationConfig>,
    /// Price for the public workforce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_workforce_task_price: Option<PublicWorkforceTaskPrice>,
}

impl HumanTaskConfig {
    /// The task type, read from the pre-annotation Lambda (a built-in one names its task), else from the
    /// consolidation Lambda; custom when neither is a built-in.
    pub fn task_type(&self) -> crate::task_type::TaskType {
        use crate::task_type::TaskType;
        let from_pre = self
            .pre_human_task_lambda_arn
            .as_deref()
            .map(TaskType::from_lambda_arn);
        let from_acs = self
            .annotation_consolidation_config
            .as_ref()
            .map(|c| TaskType::from_lambda_arn(&c.annotation_consolidation_lambda_arn));
        match (from_pre, from_acs) {
            (Some(t), _) if t != TaskType::Custom => t,
            (_, Some(t)) => t,
            _ => TaskType::Custom,
        }
    }
}

/// A tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    /// 1–128 characters.
    pub key: String,
    /// 0–256 characters.
    pub value: String,
}

/// `LabelingJobOutput`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LabelingJobOutput {
    /// The output manifest.
    pub output_dataset_s3_uri: String,
    /// The automated-labeling model of the job, when it trained one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_active_learning_model_arn: Option<String>,
}

/// The DescribeLabelingJob response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LabelingJobDescription {
    /// The job's status.
    pub labeling_job_status: LabelingJobStatus,
    /// Progress counters.
    #[serde(default)]
    pub label_counters: LabelCounters,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// Epoch seconds on the wire, ISO text from the AWS CLI; kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<Value>,
    /// As `CreationTime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified_time: Option<Value>,
    /// Work-team reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_reference_code: Option<String>,
    /// The name, case as created.
    pub labeling_job_name: String,
    /// The ARN.
    pub labeling_job_arn: String,
    /// The label attribute name (optional in the model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_attribute_name: Option<String>,
    /// The input.
    pub input_config: InputConfig,
    /// The output.
    pub output_config: OutputConfig,
    /// The execution role.
    pub role_arn: String,
    /// The label category file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_category_config_s3_uri: Option<String>,
    /// Stopping conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopping_conditions: Option<StoppingConditions>,
    /// Automated labeling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labeling_job_algorithms_config: Option<LabelingJobAlgorithmsConfig>,
    /// The human task.
    pub human_task_config: HumanTaskConfig,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// The output manifest and model, once there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labeling_job_output: Option<LabelingJobOutput>,
}

impl LabelingJobDescription {
    /// The task type, read from the job's pre-annotation or consolidation Lambda.
    pub fn task_type(&self) -> crate::task_type::TaskType {
        self.human_task_config.task_type()
    }

    /// A tag's value.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.value.as_str())
    }
}

/// The CreateLabelingJob request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateLabelingJobRequest {
    /// 1–63 characters, `[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`.
    pub labeling_job_name: String,
    /// The label attribute name.
    pub label_attribute_name: String,
    /// The input.
    pub input_config: InputConfig,
    /// The output.
    pub output_config: OutputConfig,
    /// The execution role.
    pub role_arn: String,
    /// The label category file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_category_config_s3_uri: Option<String>,
    /// Stopping conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopping_conditions: Option<StoppingConditions>,
    /// Automated labeling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labeling_job_algorithms_config: Option<LabelingJobAlgorithmsConfig>,
    /// The human task.
    pub human_task_config: HumanTaskConfig,
    /// Tags (0–50).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task_type::TaskType;

    fn describe_json() -> &'static str {
        r#"{
            "LabelingJobStatus": "Stopped",
            "LabelCounters": {"TotalLabeled": 10, "HumanLabeled": 10, "MachineLabeled": 0, "FailedNonRetryableError": 0, "Unlabeled": 5},
            "CreationTime": "2024-01-01T00:00:00.000000+00:00",
            "LastModifiedTime": 1704067200.5,
            "JobReferenceCode": "abc",
            "LabelingJobName": "Animals",
            "LabelingJobArn": "arn:aws:sagemaker:us-east-1:111111111111:labeling-job/animals",
            "LabelAttributeName": "animal",
            "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": "s3://b/in.manifest"}}, "DataAttributes": {"ContentClassifiers": ["FreeOfPersonallyIdentifiableInformation"]}},
            "OutputConfig": {"S3OutputPath": "s3://b/out/"},
            "RoleArn": "arn:aws:iam::111111111111:role/gt",
            "LabelCategoryConfigS3Uri": "s3://b/labels.json",
            "StoppingConditions": {"MaxPercentageOfInputDatasetLabeled": 100},
            "HumanTaskConfig": {
                "WorkteamArn": "arn:aws:sagemaker:us-east-1:111111111111:workteam/private-crowd/team",
                "UiConfig": {"UiTemplateS3Uri": "s3://b/t.liquid"},
                "PreHumanTaskLambdaArn": "arn:aws:lambda:us-east-1:432418664414:function:PRE-ImageMultiClass",
                "TaskTitle": "t", "TaskDescription": "d",
                "NumberOfHumanWorkersPerDataObject": 3, "TaskTimeLimitInSeconds": 300,
                "AnnotationConsolidationConfig": {"AnnotationConsolidationLambdaArn": "arn:aws:lambda:us-east-1:432418664414:function:ACS-ImageMultiClass"},
                "PublicWorkforceTaskPrice": {"AmountInUsd": {"Dollars": 0, "Cents": 3, "TenthFractionsOfACent": 6}}
            },
            "Tags": [{"Key": "groundwork:chain", "Value": "continue"}],
            "SomethingNew": 1
        }"#
    }

    #[test]
    fn parses_describe_output_and_round_trips() {
        let d: LabelingJobDescription = serde_json::from_str(describe_json()).unwrap();
        assert_eq!(d.labeling_job_status, LabelingJobStatus::Stopped);
        assert_eq!(d.label_counters.unlabeled, Some(5));
        assert_eq!(d.task_type(), TaskType::ImageClassification);
        assert_eq!(d.tag("groundwork:chain"), Some("continue"));
        assert_eq!(
            d.input_config
                .data_source
                .s3_data_source
                .as_ref()
                .unwrap()
                .manifest_s3_uri,
            "s3://b/in.manifest"
        );
        let again: LabelingJobDescription =
            serde_json::from_value(serde_json::to_value(&d).unwrap()).unwrap();
        assert_eq!(again, d);
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(
            json["HumanTaskConfig"]["PublicWorkforceTaskPrice"]["AmountInUsd"]["TenthFractionsOfACent"],
            6
        );
        assert_eq!(json["OutputConfig"]["S3OutputPath"], "s3://b/out/");
    }

    #[test]
    fn unknown_status_is_kept() {
        assert_eq!(
            LabelingJobStatus::from("Paused"),
            LabelingJobStatus::Other("Paused".to_owned())
        );
        assert!(!LabelingJobStatus::from("Paused").is_terminal());
        assert!(LabelingJobStatus::Failed.is_terminal());
    }
}
