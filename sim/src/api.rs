//! The SageMaker labeling-job API as the service speaks it (AWS JSON 1.1: `POST /`, `X-Amz-Target:
//! SageMaker.<Op>`, errors HTTP 400 `{"__type": "<Code>", "Message": …}`), for the operations Ground
//! Truth users call: CreateLabelingJob (validated as the service validates it, `contracts.md` §7.1),
//! DescribeLabelingJob, StopLabelingJob, ListLabelingJobs, AddTags and ListTags.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::{Deserialize, Serialize};

use groundwork::chain::naming::is_valid_job_name;
use groundwork::labeling_job::{
    CreateLabelingJobRequest, InputConfig, LabelCounters, LabelingJobOutput, LabelingJobStatus, Tag,
};
use groundwork::lan::LabelAttributeName;

use crate::sim::GroundTruth;

/// A service error: its wire code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// `ValidationException`, `ResourceInUse`, `ResourceNotFound`, `ResourceLimitExceeded`, …
    pub code: &'static str,
    /// The message.
    pub message: String,
}

impl ApiError {
    /// A `ValidationException`.
    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError {
            code: "ValidationException",
            message: message.into(),
        }
    }

    /// A `ResourceNotFound`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            code: "ResourceNotFound",
            message: message.into(),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "__type")]
    code: &'a str,
    #[serde(rename = "Message")]
    message: &'a str,
}

/// `{"LabelingJobName": …}` (Describe, Stop).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobNameRequest {
    /// The job.
    pub labeling_job_name: String,
}

/// The CreateLabelingJob answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateResponse {
    /// The new job's ARN.
    pub labeling_job_arn: String,
}

/// ListLabelingJobs' request.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListRequest {
    /// 1–100, default 10.
    #[serde(default)]
    pub max_results: Option<usize>,
    /// From the previous page.
    #[serde(default)]
    pub next_token: Option<String>,
    /// Case-insensitive substring of the name.
    #[serde(default)]
    pub name_contains: Option<String>,
    /// Only jobs in this status.
    #[serde(default)]
    pub status_equals: Option<LabelingJobStatus>,
    /// `Name`, `CreationTime` (default) or `Status`.
    #[serde(default)]
    pub sort_by: Option<String>,
    /// `Ascending` (default) or `Descending`.
    #[serde(default)]
    pub sort_order: Option<String>,
    /// Epoch seconds.
    #[serde(default)]
    pub creation_time_after: Option<f64>,
    /// Epoch seconds.
    #[serde(default)]
    pub creation_time_before: Option<f64>,
}

/// One row of ListLabelingJobs.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LabelingJobSummary {
    /// The name.
    pub labeling_job_name: String,
    /// The ARN.
    pub labeling_job_arn: String,
    /// Epoch seconds.
    pub creation_time: f64,
    /// Epoch seconds.
    pub last_modified_time: f64,
    /// The status.
    pub labeling_job_status: LabelingJobStatus,
    /// The counters.
    pub label_counters: LabelCounters,
    /// The work team.
    pub workteam_arn: String,
    /// The pre-annotation Lambda.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_human_task_lambda_arn: Option<String>,
    /// The consolidation Lambda.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotation_consolidation_lambda_arn: Option<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// The output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labeling_job_output: Option<LabelingJobOutput>,
    /// The input.
    pub input_config: InputConfig,
}

/// ListLabelingJobs' answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListResponse {
    /// This page.
    pub labeling_job_summary_list: Vec<LabelingJobSummary>,
    /// The next page, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// AddTags' request (and answer: the tags added).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddTagsRequest {
    /// The job's ARN.
    #[serde(default, skip_serializing)]
    pub resource_arn: String,
    /// The tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// ListTags' request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsRequest {
    /// The job's ARN.
    pub resource_arn: String,
}

/// ListTags' answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsResponse {
    /// The tags.
    pub tags: Vec<Tag>,
}

#[derive(Debug, Serialize)]
struct Empty {}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::validation(format!("1 validation error detected: {e}")))
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value).map_err(|e| ApiError {
        code: "InternalFailure",
        message: e.to_string(),
    })
}

/// Answers one call.
pub fn dispatch(gt: &Arc<GroundTruth>, target: &str, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    match target {
        "SageMaker.CreateLabelingJob" => {
            let request: CreateLabelingJobRequest = parse(body)?;
            let arn = gt.create_job(request)?;
            to_json(&CreateResponse {
                labeling_job_arn: arn,
            })
        }
        "SageMaker.DescribeLabelingJob" => {
            let request: JobNameRequest = parse(body)?;
            to_json(&gt.describe(&request.labeling_job_name)?)
        }
        "SageMaker.StopLabelingJob" => {
            let request: JobNameRequest = parse(body)?;
            gt.stop(&request.labeling_job_name)?;
            to_json(&Empty {})
        }
        "SageMaker.ListLabelingJobs" => {
            let request: ListRequest = parse(body)?;
            to_json(&gt.list(&request)?)
        }
        "SageMaker.AddTags" => {
            let request: AddTagsRequest = parse(body)?;
            check_tags(&request.tags)?;
            gt.add_tags(&request.resource_arn, &request.tags)?;
            to_json(&request)
        }
        "SageMaker.ListTags" => {
            let request: ListTagsRequest = parse(body)?;
            to_json(&ListTagsResponse {
                tags: gt.tags(&request.resource_arn)?,
            })
        }
        other => Err(ApiError {
            code: "UnknownOperationException",
            message: format!("the simulator does not serve {other}"),
        }),
    }
}

/// The HTTP side of [`dispatch`].
pub async fn serve(
    gt: Arc<GroundTruth>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let (status, bytes) = match dispatch(&gt, &target, &body) {
        Ok(bytes) => (StatusCode::OK, bytes),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            serde_json::to_vec(&ErrorBody {
                code: e.code,
                message: &e.message,
            })
            .unwrap_or_default(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    if let Ok(v) = "application/x-amz-json-1.1".parse() {
        response.headers_mut().insert("content-type", v);
    }
    Ok(response)
}

fn s3_uri_ok(uri: &str) -> bool {
    uri.len() <= 1024
        && (uri
            .strip_prefix("s3://")
            .or_else(|| uri.strip_prefix("https://")))
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
}

fn arn_ok(arn: &str, service: &str, resource: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(), [a, p, s, _, acct, res]
        if *a == "arn" && p.starts_with("aws") && *s == service
            && (acct.is_empty() || (acct.len() == 12 && acct.bytes().all(|b| b.is_ascii_digit())))
            && res.starts_with(resource))
}

fn check_tags(tags: &[Tag]) -> Result<(), ApiError> {
    if tags.len() > 50 {
        return Err(ApiError::validation(format!(
            "Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50 (got {})",
            tags.len()
        )));
    }
    for t in tags {
        if t.key.is_empty() || t.key.chars().count() > 128 || t.value.chars().count() > 256 {
            return Err(ApiError::validation(format!(
                "tag '{}': key must be 1-128 characters and value at most 256",
                t.key
            )));
        }
    }
    Ok(())
}

/// The checks CreateLabelingJob makes before accepting a job (`contracts.md` §7.1), except the
/// name's uniqueness (checked under the registry's lock).
pub fn validate_create(r: &CreateLabelingJobRequest) -> Result<(), ApiError> {
    let v = |m: String| ApiError::validation(m);
    if !is_valid_job_name(&r.labeling_job_name) {
        return Err(v(format!(
            "Value '{}' at 'labelingJobName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){{0,62}}",
            r.labeling_job_name
        )));
    }
    let task = r.human_task_config.task_type();
    LabelAttributeName::for_task(r.label_attribute_name.clone(), task).map_err(|e| {
        v(format!(
            "Invalid LabelAttributeName '{}': {e}",
            r.label_attribute_name
        ))
    })?;
    let source = &r.input_config.data_source;
    match (&source.s3_data_source, &source.sns_data_source) {
        (Some(s3), None) if s3_uri_ok(&s3.manifest_s3_uri) => {}
        (Some(s3), None) => {
            return Err(v(format!("Invalid ManifestS3Uri '{}'", s3.manifest_s3_uri)));
        }
        (None, Some(_)) => {
            return Err(v(
                "streaming (SnsDataSource) jobs are not simulated".to_owned()
            ));
        }
        _ => {
            return Err(v(
                "DataSource needs exactly one of S3DataSource or SnsDataSource".to_owned(),
            ));
        }
    }
    if !s3_uri_ok(&r.output_config.s3_output_path) {
        return Err(v(format!(
            "Invalid S3OutputPath '{}'",
            r.output_config.s3_output_path
        )));
    }
    if r.role_arn.len() < 20 || !arn_ok(&r.role_arn, "iam", "role/") {
        return Err(v(format!("Invalid RoleArn '{}'", r.role_arn)));
    }
    if let Some(uri) = &r.label_category_config_s3_uri
        && !s3_uri_ok(uri)
    {
        return Err(v(format!("Invalid LabelCategoryConfigS3Uri '{uri}'")));
    }
    if let Some(sc) = &r.stopping_conditions {
        if sc.max_human_labeled_object_count == Some(0) {
            return Err(v("MaxHumanLabeledObjectCount must be at least 1".to_owned()));
        }
        if let Some(p) = sc.max_percentage_of_input_dataset_labeled
            && !(1..=100).contains(&p)
        {
            return Err(v(
                "MaxPercentageOfInputDatasetLabeled must be between 1 and 100".to_owned(),
            ));
        }
    }
    let h = &r.human_task_config;
    if !arn_ok(&h.workteam_arn, "sagemaker", "workteam/") || h.workteam_arn.len() > 256 {
        return Err(v(format!("Invalid WorkteamArn '{}'", h.workteam_arn)));
    }
    match (
        &h.ui_config.ui_template_s3_uri,
        &h.ui_config.human_task_ui_arn,
    ) {
        (Some(uri), None) if s3_uri_ok(uri) => {}
        (None, Some(arn)) if arn_ok(arn, "sagemaker", "human-task-ui/") => {}
        _ => {
            return Err(v(
                "UiConfig needs exactly one valid UiTemplateS3Uri or HumanTaskUiArn".to_owned(),
            ));
        }
    }
    if let Some(arn) = &h.pre_human_task_lambda_arn
        && !arn_ok(arn, "lambda", "function:")
    {
        return Err(v(format!("Invalid PreHumanTaskLambdaArn '{arn}'")));
    }
    if let Some(c) = &h.annotation_consolidation_config
        && !arn_ok(
            &c.annotation_consolidation_lambda_arn,
            "lambda",
            "function:",
        )
    {
        return Err(v(format!(
            "Invalid AnnotationConsolidationLambdaArn '{}'",
            c.annotation_consolidation_lambda_arn
        )));
    }
    let title = h.task_title.chars().count();
    if !(1..=128).contains(&title) {
        return Err(v("TaskTitle must be 1-128 characters".to_owned()));
    }
    let description = h.task_description.chars().count();
    if !(1..=255).contains(&description) {
        return Err(v("TaskDescription must be 1-255 characters".to_owned()));
    }
    if !(1..=9).contains(&h.number_of_human_workers_per_data_object) {
        return Err(v(format!(
            "NumberOfHumanWorkersPerDataObject must be between 1 and 9 (got {})",
            h.number_of_human_workers_per_data_object
        )));
    }
    if h.task_time_limit_in_seconds < 30 {
        return Err(v("TaskTimeLimitInSeconds must be at least 30".to_owned()));
    }
    if h.task_availability_lifetime_in_seconds
        .is_some_and(|s| s < 60)
    {
        return Err(v(
            "TaskAvailabilityLifetimeInSeconds must be at least 60".to_owned()
        ));
    }
    if h.max_concurrent_task_count
        .is_some_and(|c| !(1..=5000).contains(&c))
    {
        return Err(v(
            "MaxConcurrentTaskCount must be between 1 and 5000".to_owned()
        ));
    }
    if h.task_keywords.len() > 5 {
        return Err(v("at most 5 TaskKeywords".to_owned()));
    }
    check_tags(&r.tags)
}
