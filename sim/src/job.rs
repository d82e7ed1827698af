//! One labeling job, run as Ground Truth runs it (`contracts.md` §4): the input manifest from S3, the
//! pre-annotation Lambda per data object (`isHumanAnnotationRequired` honoured), each object to
//! `NumberOfHumanWorkersPerDataObject` workers, worker responses and the consolidation request in Ground
//! Truth's S3 layout, the consolidation Lambda per batch, an intermediate manifest after every batch and
//! the output manifest at the end; stopping conditions, StopLabelingJob and scripted failures; then the
//! EventBridge state-change event to the auto-chainer.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use groundwork::contracts::{
    AnnotationData, ConsolidationRequest, LabelingJobStateChange, PayloadDataObject,
    PayloadLocation, PayloadObject, PreHumanTaskRequest, PreHumanTaskResponse, RawJson,
    SAGEMAKER_EVENT_SOURCE, STATE_CHANGE_DETAIL_TYPE, WorkerAnnotation,
};
use groundwork::label_categories::LabelCategoryConfig;
use groundwork::labeling_job::{LabelingJobDescription, LabelingJobOutput, LabelingJobStatus};
use groundwork::manifest::DataSource;
use groundwork::{ManifestLine, S3Uri};

use crate::error::SimError;
use crate::lambda::{Answer, Function, FunctionError};
use crate::moto::{get, put};
use crate::sim::{ACCOUNT, Delivery, GroundTruth, Interruption, REGION};
use crate::workforce::Workforce;

/// How a job ended.
#[derive(Debug, Clone, PartialEq)]
enum End {
    Completed,
    Stopped,
    Failed(String),
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    labeled: u64,
    failed: u64,
    skipped: u64,
}

#[derive(Deserialize)]
struct ResponseEntry {
    #[serde(rename = "datasetObjectId")]
    dataset_object_id: String,
    #[serde(rename = "consolidatedAnnotation")]
    consolidated_annotation: ConsolidatedContent,
}

#[derive(Deserialize)]
struct ConsolidatedContent {
    // The label and its metadata are whatever JSON the function wrote under `<LAN>` and
    // `<LAN>-metadata`: merged into the manifest line as they are.
    content: Map<String, Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WorkerResponse {
    answer_content: Box<RawValue>,
    worker_id: String,
    submission_time: String,
    acceptance_time: String,
    time_spent_in_seconds: f64,
}

#[derive(Serialize)]
struct WorkerResponseFile {
    answers: Vec<WorkerResponse>,
}

/// The EventBridge event, as SageMaker sends it (`contracts.md` §6.1).
#[derive(Debug, Serialize)]
pub struct StateChangeEvent {
    /// `0`.
    pub version: String,
    /// A fresh id per delivery.
    pub id: String,
    /// `SageMaker Ground Truth Labeling Job State Change`.
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    /// `aws.sagemaker`.
    pub source: String,
    /// The account.
    pub account: String,
    /// When.
    pub time: String,
    /// The region.
    pub region: String,
    /// The job's ARN.
    pub resources: Vec<String>,
    /// The status.
    pub detail: LabelingJobStateChange,
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d_%H:%M:%S").to_string()
}

/// Invokes with Ground Truth's patience: a crashed process is restarted and the call made again, an
/// error answer is retried, up to `attempts` in all.
async fn invoke<E: Serialize>(
    function: &Function,
    event: &E,
    attempts: usize,
) -> Result<Answer, SimError> {
    let mut last = None;
    for _ in 0..attempts.max(1) {
        match function.invoke(event).await {
            Ok(Answer::Response(body)) => return Ok(Answer::Response(body)),
            Ok(error) => last = Some(Ok(error)),
            Err(e @ (SimError::Crashed { .. } | SimError::Timeout { .. })) => last = Some(Err(e)),
            Err(e) => return Err(e),
        }
    }
    last.unwrap_or_else(|| {
        Err(SimError::Timeout {
            function: function.name().to_owned(),
            seconds: 0,
        })
    })
}

fn set_status(gt: &GroundTruth, key: &str, status: LabelingJobStatus) {
    gt.with_job(key, |r| {
        if r.description.labeling_job_status != LabelingJobStatus::Stopping {
            r.description.labeling_job_status = status;
        }
    });
}

fn update_counters(gt: &GroundTruth, key: &str, counts: Counts, total: usize) {
    let unlabeled = (total as u64).saturating_sub(counts.labeled + counts.failed + counts.skipped);
    gt.with_job(key, |r| {
        let c = &mut r.description.label_counters;
        c.total_labeled = Some(counts.labeled);
        c.human_labeled = Some(counts.labeled);
        c.machine_labeled = Some(0);
        c.failed_non_retryable_error = Some(counts.failed);
        c.unlabeled = Some(unlabeled);
        r.description.last_modified_time =
            serde_json::Number::from_f64(Utc::now().timestamp_micros() as f64 / 1e6)
                .map(Value::Number);
    });
}

fn manifest_text(lines: &[ManifestLine]) -> Vec<u8> {
    let mut out = String::new();
    for line in lines {
        out.push_str(&line.to_json_line());
        out.push('\n');
    }
    out.into_bytes()
}

/// Runs the job registered under `key` to its end and delivers its state change.
pub(crate) async fn run(gt: &Arc<GroundTruth>, key: &str) {
    let Ok(job) = gt.describe(key) else {
        return;
    };
    set_status(gt, key, LabelingJobStatus::InProgress);
    let folder = job
        .output_config
        .s3_output_path
        .parse::<S3Uri>()
        .ok()
        .map(|o| o.join(&format!("{}/", job.labeling_job_name)));
    let mut lines = Vec::new();
    let mut counts = Counts::default();
    let end = match &folder {
        Some(folder) => match execute(gt, key, &job, folder, &mut lines, &mut counts).await {
            Ok(end) => end,
            Err(e) => End::Failed(format!("InternalServerError: {e}")),
        },
        None => End::Failed(format!(
            "ClientError: S3OutputPath {} is not an S3 URI",
            job.output_config.s3_output_path
        )),
    };
    update_counters(gt, key, counts, lines.len());
    let mut output = None;
    if let (Some(folder), End::Completed | End::Stopped) = (&folder, &end) {
        let uri = folder.join("manifests/output/output.manifest");
        match put(&gt.s3, &uri, manifest_text(&lines)).await {
            Ok(()) => output = Some(uri.to_string()),
            Err(e) => eprintln!("groundwork-sim: {e}"),
        }
    }
    let status = match &end {
        End::Completed => LabelingJobStatus::Completed,
        End::Stopped => LabelingJobStatus::Stopped,
        End::Failed(_) => LabelingJobStatus::Failed,
    };
    gt.with_job(key, |r| {
        r.description.labeling_job_status = status.clone();
        if let End::Failed(reason) = &end {
            r.description.failure_reason = Some(reason.chars().take(1024).collect());
        }
        r.description.labeling_job_output = output.map(|uri| LabelingJobOutput {
            output_dataset_s3_uri: uri,
            final_active_learning_model_arn: None,
        });
    });
    deliver(gt, &job, status).await;
}

/// Sends the state change to the auto-chainer, `event_deliveries` times (EventBridge may deliver an
/// event more than once); an error answer is retried twice, as Lambda retries an asynchronous call.
async fn deliver(gt: &Arc<GroundTruth>, job: &LabelingJobDescription, status: LabelingJobStatus) {
    for n in 0..gt.config.event_deliveries {
        let event = StateChangeEvent {
            version: "0".to_owned(),
            id: format!(
                "{:016x}-{n}",
                crate::workforce::hash(&[&job.labeling_job_arn, status.as_str()])
            ),
            detail_type: STATE_CHANGE_DETAIL_TYPE.to_owned(),
            source: SAGEMAKER_EVENT_SOURCE.to_owned(),
            account: ACCOUNT.to_owned(),
            time: Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            region: REGION.to_owned(),
            resources: vec![job.labeling_job_arn.clone()],
            detail: LabelingJobStateChange {
                labeling_job_status: status.clone(),
            },
        };
        let outcome = match invoke(&gt.functions.chainer, &event, 3).await {
            Ok(Answer::Response(body)) => Ok(String::from_utf8_lossy(&body).into_owned()),
            Ok(Answer::Error(e)) => Err(e),
            Err(e) => Err(FunctionError {
                error_type: "Sim.InvocationFailed".to_owned(),
                error_message: e.to_string(),
            }),
        };
        crate::sim::record_delivery(
            gt,
            Delivery {
                job: job.labeling_job_name.clone(),
                status: status.clone(),
                outcome,
            },
        );
    }
}

struct Plan<'a> {
    job: &'a LabelingJobDescription,
    arn: String,
    lan: String,
    labels: Vec<String>,
    workers: usize,
    workforce: Arc<dyn Workforce>,
    folder: &'a S3Uri,
    started: DateTime<Utc>,
}

async fn execute(
    gt: &Arc<GroundTruth>,
    key: &str,
    job: &LabelingJobDescription,
    folder: &S3Uri,
    lines: &mut Vec<ManifestLine>,
    counts: &mut Counts,
) -> Result<End, SimError> {
    let client = |m: String| Ok(End::Failed(format!("ClientError: {m}")));
    let Some(source) = &job.input_config.data_source.s3_data_source else {
        return client("the job has no S3DataSource".to_owned());
    };
    let Ok(manifest_uri) = source.manifest_s3_uri.parse::<S3Uri>() else {
        return client(format!(
            "ManifestS3Uri {} is not an S3 URI",
            source.manifest_s3_uri
        ));
    };
    let bytes = match get(&gt.s3, &manifest_uri).await {
        Ok(b) => b,
        Err(e) => return client(format!("Failed to read the input manifest: {e}")),
    };
    let text = String::from_utf8_lossy(&bytes);
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match ManifestLine::parse(line) {
            Ok(l) => lines.push(l),
            Err(problem) => {
                return client(format!(
                    "The input manifest {manifest_uri} is invalid: line {}: {problem}",
                    n + 1
                ));
            }
        }
    }
    let labels = match &job.label_category_config_s3_uri {
        Some(uri) => {
            let parsed = match uri.parse::<S3Uri>() {
                Ok(u) => get(&gt.s3, &u)
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|b| LabelCategoryConfig::parse(&b).map_err(|e| e.to_string())),
                Err(e) => Err(e.to_string()),
            };
            match parsed {
                Ok(config) => config.label_names(),
                Err(e) => {
                    return client(format!("Invalid label category configuration {uri}: {e}"));
                }
            }
        }
        None => Vec::new(),
    };
    let lan = job.label_attribute_name.clone().unwrap_or_default();
    let Some(workforce) = gt
        .workforce(&lan)
        .or_else(|| crate::sim::default_workforce(job.task_type()))
    else {
        return client(format!(
            "the simulator has no workforce for task type {} (label attribute name '{lan}')",
            job.task_type()
        ));
    };
    let plan = Plan {
        job,
        arn: job.labeling_job_arn.to_lowercase(),
        lan,
        labels,
        workers: job
            .human_task_config
            .number_of_human_workers_per_data_object as usize,
        workforce,
        folder,
        started: Utc::now(),
    };
    let total = lines.len();
    let interruption = gt.interruption_for(&job.labeling_job_name);
    let stopping = job.stopping_conditions.clone().unwrap_or_default();
    let max_human = stopping
        .max_human_labeled_object_count
        .map(|m| m as usize)
        .unwrap_or(usize::MAX);
    let max_pct = stopping
        .max_percentage_of_input_dataset_labeled
        .map(|p| (total * p as usize).div_ceil(100))
        .unwrap_or(usize::MAX);
    let mut cursor = 0;
    let mut batch_no = 0;
    loop {
        let labeled = counts.labeled as usize;
        let mut room = gt
            .config
            .batch_size
            .min(max_human.min(max_pct).saturating_sub(labeled));
        match &interruption {
            Some(Interruption::StopAfter(k)) => {
                if labeled >= *k {
                    // The simulated operator calls StopLabelingJob: the same path as the API's.
                    let _ = gt.stop(&job.labeling_job_name);
                }
                room = room.min(k.saturating_sub(labeled));
            }
            Some(Interruption::FailAfter(k, reason)) => {
                if labeled >= *k {
                    return Ok(End::Failed(reason.clone()));
                }
                room = room.min(k - labeled);
            }
            None => {}
        }
        let stop_requested = gt.with_job(key, |r| r.stop_requested).unwrap_or(false);
        if stop_requested || (room == 0 && cursor < total) {
            return Ok(End::Stopped);
        }
        // Pre-annotation, object by object, until the batch is full.
        let mut batch: Vec<(usize, Map<String, Value>)> = Vec::new();
        while batch.len() < room && cursor < total {
            let index = cursor;
            cursor += 1;
            let request = PreHumanTaskRequest {
                version: Some("2018-10-06".to_owned()),
                labeling_job_arn: plan.arn.clone(),
                // The line's own text, as Ground Truth sends it.
                data_object: RawJson::from_text(lines[index].to_json_line().into_owned())
                    .map_err(SimError::json("a manifest line"))?,
            };
            match invoke(&gt.functions.pre, &request, 3).await? {
                Answer::Response(body) => {
                    let response: PreHumanTaskResponse = serde_json::from_slice(&body)
                        .map_err(SimError::json("the pre-annotation Lambda's response"))?;
                    if response.is_human_annotation_required {
                        batch.push((index, lines[index].fields().clone()));
                    } else {
                        counts.skipped += 1;
                    }
                }
                Answer::Error(_) => counts.failed += 1,
            }
        }
        if batch.is_empty() {
            break;
        }
        batch_no += 1;
        consolidate_batch(gt, &plan, batch_no, &batch, lines, counts).await?;
        update_counters(gt, key, *counts, total);
        let uri = folder.join(&format!(
            "manifests/intermediate/{batch_no}/output.manifest"
        ));
        put(&gt.s3, &uri, manifest_text(lines)).await?;
    }
    Ok(End::Completed)
}

async fn consolidate_batch(
    gt: &Arc<GroundTruth>,
    plan: &Plan<'_>,
    batch_no: usize,
    batch: &[(usize, Map<String, Value>)],
    lines: &mut [ManifestLine],
    counts: &mut Counts,
) -> Result<(), SimError> {
    let at = plan.started + chrono::Duration::minutes(batch_no as i64);
    let ts = stamp(at);
    let annotations = plan.folder.join("annotations/");
    let mut payload = Vec::new();
    for (index, _) in batch {
        let line = &lines[*index];
        let answers = plan.workforce.answers(line, plan.workers, &plan.labels);
        if answers.is_empty() {
            // No worker took the task before it expired: the object fails, unconsolidated.
            counts.failed += 1;
            continue;
        }
        let mut file = WorkerResponseFile {
            answers: Vec::new(),
        };
        for a in &answers {
            let content = RawValue::from_string(a.content.clone())
                .map_err(SimError::json("a worker's answer"))?;
            let submitted = at - chrono::Duration::milliseconds((a.time_spent * 1000.0) as i64);
            file.answers.push(WorkerResponse {
                answer_content: content,
                worker_id: a.worker_id.clone(),
                submission_time: at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                acceptance_time: submitted.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                time_spent_in_seconds: a.time_spent,
            });
        }
        let uri = annotations.join(&format!("worker-response/iteration-1/{index}/{ts}.json"));
        put(
            &gt.s3,
            &uri,
            serde_json::to_vec(&file).map_err(SimError::json("a worker-response file"))?,
        )
        .await?;
        let data_object = match line.source() {
            DataSource::SourceRef(r) => PayloadDataObject {
                s3_uri: Some(r.to_owned()),
                content: None,
            },
            DataSource::Source(s) => PayloadDataObject {
                s3_uri: None,
                content: Some(s.to_owned()),
            },
        };
        payload.push(PayloadObject {
            dataset_object_id: index.to_string(),
            data_object,
            annotations: answers
                .into_iter()
                .map(|a| WorkerAnnotation {
                    worker_id: a.worker_id.into(),
                    annotation_data: AnnotationData {
                        content: Some(a.content.into()),
                        s3_uri: None,
                    },
                })
                .collect(),
        });
    }
    if payload.is_empty() {
        return Ok(());
    }
    let payload_uri = annotations.join(&format!(
        "consolidated-annotation/consolidation-request/iteration-1/{ts}.json"
    ));
    put(
        &gt.s3,
        &payload_uri,
        serde_json::to_vec(&payload).map_err(SimError::json("a consolidation payload"))?,
    )
    .await?;
    let request = ConsolidationRequest {
        version: Some("2018-10-06".to_owned()),
        labeling_job_arn: plan.arn.clone(),
        label_categories: (!plan.labels.is_empty()).then(|| plan.labels.clone()),
        label_attribute_name: plan.lan.clone(),
        role_arn: Some(plan.job.role_arn.clone()),
        payload: PayloadLocation {
            s3_uri: Some(payload_uri.to_string()),
            content: None,
        },
        output_config: Some(annotations.to_string().trim_end_matches('/').to_owned()),
        max_human_workers_per_data_object: Some(plan.workers as u32),
        vpc_enabled: None,
        kms_key_id: None,
    };
    let body = match invoke(&gt.functions.consolidation, &request, 3).await? {
        Answer::Response(body) => body,
        Answer::Error(e) => {
            return Err(SimError::Api {
                operation: "annotation consolidation",
                message: format!("{}: {}", e.error_type, e.error_message),
            });
        }
    };
    let response: Vec<ResponseEntry> = serde_json::from_slice(&body)
        .map_err(SimError::json("the consolidation Lambda's response"))?;
    put(
        &gt.s3,
        &annotations.join(&format!(
            "consolidated-annotation/consolidation-response/iteration-1/{ts}.json"
        )),
        body.to_vec(),
    )
    .await?;
    for entry in response {
        let Some(line) = entry
            .dataset_object_id
            .parse::<usize>()
            .ok()
            .and_then(|i| lines.get_mut(i))
        else {
            continue;
        };
        let content = entry.consolidated_annotation.content;
        let labeled = content.get(&plan.lan).is_some_and(|v| !v.is_null());
        for (k, v) in content {
            line.insert(k, v);
        }
        if labeled {
            counts.labeled += 1;
        } else {
            counts.failed += 1;
        }
    }
    Ok(())
}
