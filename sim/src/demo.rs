//! The scenarios `make demo` runs, the helpers the end-to-end tests share, and the per-job summary.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use groundwork::label_categories::LabelCategoryConfig;
use groundwork::labeling_job::{
    AnnotationConsolidationConfig, CreateLabelingJobRequest, DataSource, HumanTaskConfig,
    InputConfig, LabelingJobDescription, OutputConfig, S3DataSource, Tag, UiConfig,
};
use groundwork::ports::{CreateOutcome, LabelingJobCreator};
use groundwork::{ManifestLine, S3Uri};
use groundwork_sagemaker::SageMakerJobs;

use crate::error::SimError;
use crate::lambda::FunctionStats;
use crate::moto::{Moto, create_bucket, get, put};

/// The demo's data bucket.
const DEMO_BUCKET: &str = "groundwork-demo";
use crate::sim::{GroundTruth, Interruption, JobScript, SimConfig};
use crate::workforce::{BoxWorkers, Gold, Replay, TrueBox, Workforce};

/// The built-in task types the simulator runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// `ImageMultiClass`.
    ImageClassification,
    /// `BoundingBox`.
    BoundingBox,
}

impl Task {
    fn name(self) -> &'static str {
        match self {
            Task::ImageClassification => "ImageMultiClass",
            Task::BoundingBox => "BoundingBox",
        }
    }
}

/// A labeling job to create, in short.
#[derive(Debug, Clone)]
pub struct JobSpec<'a> {
    /// The job's name.
    pub name: &'a str,
    /// Its label attribute name.
    pub lan: &'a str,
    /// The task.
    pub task: Task,
    /// The input manifest.
    pub manifest: &'a S3Uri,
    /// The label category file.
    pub labels: &'a S3Uri,
    /// `S3OutputPath`.
    pub output: &'a S3Uri,
    /// Workers per object.
    pub workers: u32,
    /// Tags.
    pub tags: &'a [(&'a str, &'a str)],
}

/// A CreateLabelingJob request for a built-in task in the simulated account.
pub fn job_request(spec: &JobSpec<'_>) -> CreateLabelingJobRequest {
    let JobSpec {
        name,
        lan,
        task,
        manifest,
        labels,
        output,
        workers,
        tags,
    } = *spec;
    let region = crate::sim::REGION;
    CreateLabelingJobRequest {
        labeling_job_name: name.to_owned(),
        label_attribute_name: lan.to_owned(),
        input_config: InputConfig {
            data_source: DataSource {
                s3_data_source: Some(S3DataSource {
                    manifest_s3_uri: manifest.to_string(),
                }),
                sns_data_source: None,
            },
            data_attributes: None,
        },
        output_config: OutputConfig {
            s3_output_path: output.to_string(),
            ..OutputConfig::default()
        },
        role_arn: format!(
            "arn:aws:iam::{}:role/GroundTruthExecution",
            crate::sim::ACCOUNT
        ),
        label_category_config_s3_uri: Some(labels.to_string()),
        stopping_conditions: None,
        labeling_job_algorithms_config: None,
        human_task_config: HumanTaskConfig {
            workteam_arn: format!(
                "arn:aws:sagemaker:{region}:{}:workteam/private-crowd/sim",
                crate::sim::ACCOUNT
            ),
            ui_config: UiConfig {
                ui_template_s3_uri: Some(format!(
                    "s3://{}/ui/{}.liquid",
                    manifest.bucket(),
                    task.name()
                )),
                human_task_ui_arn: None,
            },
            pre_human_task_lambda_arn: Some(format!(
                "arn:aws:lambda:{region}:432418664414:function:PRE-{}",
                task.name()
            )),
            task_title: format!("{name}: {}", task.name()),
            task_description: "Simulated labeling task".to_owned(),
            number_of_human_workers_per_data_object: workers,
            task_time_limit_in_seconds: 300,
            annotation_consolidation_config: Some(AnnotationConsolidationConfig {
                annotation_consolidation_lambda_arn: format!(
                    "arn:aws:lambda:{region}:432418664414:function:ACS-{}",
                    task.name()
                ),
            }),
            ..HumanTaskConfig::default()
        },
        tags: tags
            .iter()
            .map(|(k, v)| Tag {
                key: (*k).to_owned(),
                value: (*v).to_owned(),
            })
            .collect(),
    }
}

/// Creates a job through the real SDK client against the simulator (as the CLI does).
pub async fn create(
    gt: &GroundTruth,
    request: &CreateLabelingJobRequest,
) -> Result<String, SimError> {
    let jobs = SageMakerJobs::new(gt.sagemaker_client());
    match jobs.create_labeling_job(request).await {
        Ok(CreateOutcome::Created { arn }) => Ok(arn),
        Ok(CreateOutcome::AlreadyExists) => Err(SimError::Api {
            operation: "CreateLabelingJob",
            message: format!("ResourceInUse: {}", request.labeling_job_name),
        }),
        Err(e) => Err(SimError::Api {
            operation: "CreateLabelingJob",
            message: e.to_string(),
        }),
    }
}

/// Writes a manifest of `source-ref` lines.
pub async fn put_manifest(
    s3: &aws_sdk_s3::Client,
    uri: &S3Uri,
    source_refs: &[String],
) -> Result<(), SimError> {
    #[derive(Serialize)]
    struct Line<'a> {
        #[serde(rename = "source-ref")]
        source_ref: &'a str,
    }
    let mut text = String::new();
    for r in source_refs {
        text.push_str(
            &serde_json::to_string(&Line { source_ref: r })
                .map_err(SimError::json("a manifest line"))?,
        );
        text.push('\n');
    }
    put(s3, uri, text.into_bytes()).await
}

/// Writes a label category file.
pub async fn put_labels(
    s3: &aws_sdk_s3::Client,
    uri: &S3Uri,
    labels: &[String],
) -> Result<(), SimError> {
    let json = LabelCategoryConfig::to_2018_json(labels);
    put(
        s3,
        uri,
        serde_json::to_vec(&json).map_err(SimError::json("a label file"))?,
    )
    .await
}

/// Reads a manifest.
pub async fn read_manifest(
    s3: &aws_sdk_s3::Client,
    uri: &str,
) -> Result<Vec<ManifestLine>, SimError> {
    let uri: S3Uri = uri
        .parse()
        .map_err(|e: groundwork::s3_uri::S3UriError| SimError::S3 {
            operation: "GetObject",
            uri: uri.to_owned(),
            message: e.to_string(),
        })?;
    let bytes = get(s3, &uri).await?;
    Ok(String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|l| ManifestLine::parse(l).ok())
        .collect())
}

/// `<LAN>-metadata` of a classification label.
#[derive(Debug, Clone, Deserialize)]
pub struct ClassMetadata {
    /// The class.
    #[serde(rename = "class-name")]
    pub class_name: String,
    /// 0–1.
    pub confidence: f64,
    /// `labeling-job/<name>`.
    #[serde(rename = "job-name")]
    pub job_name: String,
    /// `groundtruth/image-classification`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `yes`.
    #[serde(rename = "human-annotated")]
    pub human_annotated: String,
    /// When.
    #[serde(rename = "creation-date")]
    pub creation_date: String,
}

/// A bounding-box label.
#[derive(Debug, Clone, Deserialize)]
pub struct BoxLabel {
    /// The boxes.
    pub annotations: Vec<BoxAnnotation>,
}

/// One box of a label.
#[derive(Debug, Clone, Deserialize)]
pub struct BoxAnnotation {
    /// Index into the labels.
    pub class_id: usize,
    /// Left.
    pub left: f64,
    /// Top.
    pub top: f64,
    /// Width.
    pub width: f64,
    /// Height.
    pub height: f64,
}

/// `<LAN>-metadata` of a bounding-box label.
#[derive(Debug, Clone, Deserialize)]
pub struct BoxMetadata {
    /// One per box.
    pub objects: Vec<BoxConfidence>,
    /// Class id → name.
    #[serde(rename = "class-map")]
    pub class_map: BTreeMap<String, String>,
    /// `labeling-job/<name>`.
    #[serde(rename = "job-name")]
    pub job_name: String,
    /// `groundtruth/object-detection`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// A box's confidence.
#[derive(Debug, Clone, Deserialize)]
pub struct BoxConfidence {
    /// 0–1.
    pub confidence: f64,
}

/// The typed value of `key` on a line.
pub fn field<T: for<'de> Deserialize<'de>>(line: &ManifestLine, key: &str) -> Option<T> {
    line.get(key).and_then(|v| T::deserialize(v).ok())
}

fn iou(a: &BoxAnnotation, b: &TrueBox) -> f64 {
    let x = (a.left + a.width).min(b.left + b.width) - a.left.max(b.left);
    let y = (a.top + a.height).min(b.top + b.height) - a.top.max(b.top);
    let inter = x.max(0.0) * y.max(0.0);
    let union = a.width * a.height + b.width * b.height - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

fn histogram(values: &[f64]) -> String {
    let mut bins = [0usize; 5];
    for v in values {
        let i = ((v * 5.0).floor() as usize).min(4);
        bins[i] += 1;
    }
    let max = bins.iter().copied().max().unwrap_or(0).max(1);
    let mut out = String::new();
    for (i, n) in bins.iter().enumerate() {
        let bar = "#".repeat((n * 40).div_ceil(max));
        let _ = writeln!(
            out,
            "      {:.1}-{:.1} {n:>4} {bar}",
            i as f64 / 5.0,
            (i + 1) as f64 / 5.0
        );
    }
    out
}

/// One job's summary: what it labeled, against gold when the workforce knows it.
pub async fn summarize(
    gt: &GroundTruth,
    job: &LabelingJobDescription,
    out_dir: &Path,
) -> Result<String, SimError> {
    let mut s = String::new();
    let lan = job.label_attribute_name.clone().unwrap_or_default();
    let c = &job.label_counters;
    let _ = writeln!(
        s,
        "\n  {}  [{}]  LAN '{lan}'  {}",
        job.labeling_job_name,
        job.task_type(),
        job.labeling_job_status
    );
    let _ = writeln!(
        s,
        "    labeled {} · failed {} · unlabeled {}",
        c.total_labeled.unwrap_or(0),
        c.failed_non_retryable_error.unwrap_or(0),
        c.unlabeled.unwrap_or(0)
    );
    if let Some(reason) = &job.failure_reason {
        let _ = writeln!(s, "    failure reason: {reason}");
    }
    let tag = |k: &str| job.tag(k).unwrap_or("-").to_owned();
    let _ = writeln!(
        s,
        "    lineage: root {} · parent {} · depth {} · step {}",
        tag("groundwork:root-job"),
        tag("groundwork:parent-job"),
        tag("groundwork:depth"),
        tag("groundwork:step")
    );
    let manifest_uri = match &job.labeling_job_output {
        Some(o) => o.output_dataset_s3_uri.clone(),
        None => {
            let _ = writeln!(s, "    no output manifest (intermediate manifests only)");
            return Ok(s);
        }
    };
    let lines = read_manifest(&gt.s3, &manifest_uri).await?;
    let local = out_dir.join(&job.labeling_job_name).join("output.manifest");
    if let Some(parent) = local.parent() {
        std::fs::create_dir_all(parent)
            .map_err(SimError::io(format!("create {}", parent.display())))?;
    }
    let bytes = get(
        &gt.s3,
        &manifest_uri
            .parse()
            .map_err(|e: groundwork::s3_uri::S3UriError| SimError::S3 {
                operation: "GetObject",
                uri: manifest_uri.clone(),
                message: e.to_string(),
            })?,
    )
    .await?;
    std::fs::write(&local, bytes).map_err(SimError::io(format!("write {}", local.display())))?;
    let _ = writeln!(
        s,
        "    output manifest: {manifest_uri}\n      copied to {}",
        local.display()
    );
    let this_job = format!("labeling-job/{}", job.labeling_job_name.to_lowercase());
    let meta_key = format!("{lan}-metadata");
    let labels = gt.workforce(&lan).map(|w| (w, label_names(gt, job)));
    let mut confidences = Vec::new();
    match job.task_type() {
        groundwork::TaskType::BoundingBox => {
            let (mut truth_boxes, mut drawn, mut matched, mut iou_sum) =
                (0usize, 0usize, 0usize, 0.0);
            for line in &lines {
                let (Some(label), Some(meta)) = (
                    field::<BoxLabel>(line, &lan),
                    field::<BoxMetadata>(line, &meta_key),
                ) else {
                    continue;
                };
                if meta.job_name != this_job {
                    continue;
                }
                confidences.extend(meta.objects.iter().map(|o| o.confidence));
                drawn += label.annotations.len();
                if let Some((w, names)) = &labels
                    && let Some(Gold::Boxes(truth)) = w.gold(line, names)
                {
                    truth_boxes += truth.len();
                    let mut used = vec![false; truth.len()];
                    for a in &label.annotations {
                        let best = truth
                            .iter()
                            .enumerate()
                            .filter(|(i, t)| !used[*i] && t.class == a.class_id)
                            .map(|(i, t)| (i, iou(a, t)))
                            .max_by(|x, y| x.1.total_cmp(&y.1));
                        if let Some((i, v)) = best
                            && v >= 0.5
                        {
                            used[i] = true;
                            matched += 1;
                            iou_sum += v;
                        }
                    }
                }
            }
            if truth_boxes > 0 {
                let _ = writeln!(
                    s,
                    "    against the true boxes: recall {:.3} ({matched}/{truth_boxes}), precision {:.3} ({matched}/{drawn}), mean IoU of matches {:.3}",
                    matched as f64 / truth_boxes as f64,
                    matched as f64 / drawn.max(1) as f64,
                    iou_sum / matched.max(1) as f64
                );
            }
            let _ = writeln!(s, "    box confidence:");
        }
        _ => {
            let (mut right, mut known) = (0usize, 0usize);
            for line in &lines {
                let Some(meta) = field::<ClassMetadata>(line, &meta_key) else {
                    continue;
                };
                if meta.job_name != this_job || line.get(&lan).is_none() {
                    continue;
                }
                confidences.push(meta.confidence);
                if let Some((w, names)) = &labels
                    && let Some(Gold::Class(gold)) = w.gold(line, names)
                {
                    known += 1;
                    right += usize::from(gold == meta.class_name);
                }
            }
            if known > 0 {
                let _ = writeln!(
                    s,
                    "    accuracy against gold of the labels this job wrote: {:.3} ({right}/{known})",
                    right as f64 / known as f64
                );
            }
            let _ = writeln!(s, "    label confidence:");
        }
    }
    s.push_str(&histogram(&confidences));
    Ok(s)
}

/// The chain's end result: the continued job's labels, replaced by the follow-up's where it relabeled
/// an object, against gold.
async fn chain_result(
    gt: &GroundTruth,
    jobs: &[LabelingJobDescription],
    lan: &str,
    check_lan: &str,
) -> Result<String, SimError> {
    let mut s = String::new();
    let last = jobs.iter().rev().find(|j| {
        j.label_attribute_name.as_deref() == Some(lan) && j.labeling_job_output.is_some()
    });
    let check = jobs.iter().rev().find(|j| {
        j.label_attribute_name.as_deref() == Some(check_lan) && j.labeling_job_output.is_some()
    });
    let (Some(last), Some(workforce)) = (last, gt.workforce(lan)) else {
        return Ok(s);
    };
    let names = label_names(gt, last);
    let first: Vec<ManifestLine> = match &last.labeling_job_output {
        Some(o) => read_manifest(&gt.s3, &o.output_dataset_s3_uri).await?,
        None => Vec::new(),
    };
    let mut checked: BTreeMap<String, String> = BTreeMap::new();
    if let Some(o) = check.and_then(|c| c.labeling_job_output.as_ref()) {
        for line in read_manifest(&gt.s3, &o.output_dataset_s3_uri).await? {
            if let Some(m) = field::<ClassMetadata>(&line, &format!("{check_lan}-metadata"))
                && line.get(check_lan).is_some()
            {
                checked.insert(line.source().value().to_owned(), m.class_name);
            }
        }
    }
    let (mut before, mut after, mut known, mut labeled) = (0usize, 0usize, 0usize, 0usize);
    for line in &first {
        let Some(m) = field::<ClassMetadata>(line, &format!("{lan}-metadata")) else {
            continue;
        };
        if line.get(lan).is_none() {
            continue;
        }
        labeled += 1;
        let Some(Gold::Class(gold)) = workforce.gold(line, &names) else {
            continue;
        };
        known += 1;
        before += usize::from(m.class_name == gold);
        let fin = checked.get(line.source().value()).unwrap_or(&m.class_name);
        after += usize::from(*fin == gold);
    }
    let _ = writeln!(
        s,
        "\n  chain result ('{lan}', {labeled} objects labeled exactly once across the stopped and the continued job):"
    );
    if known > 0 {
        let _ = writeln!(
            s,
            "    accuracy against gold {:.3} ({before}/{known}); with the {} low-confidence labels verified ('{check_lan}'): {:.3} ({after}/{known})",
            before as f64 / known as f64,
            checked.len(),
            after as f64 / known as f64
        );
    }
    Ok(s)
}

fn label_names(_gt: &GroundTruth, job: &LabelingJobDescription) -> Vec<String> {
    // The workforce's gold is in label names; boxes need the job's order, which the class ids index.
    job.tags
        .iter()
        .find(|t| t.key == "sim:labels")
        .map(|t| t.value.split(',').map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The functions' table.
pub fn function_table(stats: &[FunctionStats]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "  {:<28} {:>6} {:>11} {:>7} {:>9} {:>9} {:>9} {:>8}",
        "function", "starts", "cold (ms)", "calls", "p50 (ms)", "p95 (ms)", "max (ms)", "RSS MiB"
    );
    for f in stats {
        let mut calls: Vec<f64> = f
            .invocations
            .iter()
            .map(|d| d.as_secs_f64() * 1e3)
            .collect();
        calls.sort_by(f64::total_cmp);
        let q = |p: f64| {
            calls
                .get(((calls.len() as f64 - 1.0) * p).round() as usize)
                .copied()
                .unwrap_or(0.0)
        };
        let cold: Vec<String> = f
            .cold_starts
            .iter()
            .map(|d| format!("{:.0}", d.as_secs_f64() * 1e3))
            .collect();
        let _ = writeln!(
            s,
            "  {:<28} {:>6} {:>11} {:>7} {:>9.1} {:>9.1} {:>9.1} {:>8.1}",
            f.name,
            f.cold_starts.len(),
            cold.join("/"),
            calls.len(),
            q(0.5),
            q(0.95),
            q(1.0),
            f.peak_rss_kib as f64 / 1024.0
        );
    }
    s
}

/// What `groundwork-sim demo` needs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// `data/crowd`.
    pub crowd_dir: PathBuf,
    /// The crowd set to replay.
    pub set: String,
    /// How many of its tasks.
    pub objects: usize,
    /// Where manifests and logs are copied.
    pub out_dir: PathBuf,
    /// Where the function binaries are.
    pub bin_dir: PathBuf,
    /// Deliveries of each state-change event.
    pub deliveries: usize,
}

/// The follow-up plan document (the fields the demo sets).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Plan {
    label_attribute_name: String,
    task_title: String,
    task_description: String,
    number_of_human_workers_per_data_object: u32,
    confidence_threshold: f64,
}

/// `s3://<bucket>/<key>` of the demo's own objects.
fn object_uri(bucket: &str, key: &str) -> Result<S3Uri, SimError> {
    S3Uri::new(bucket, key).map_err(|e| SimError::Api {
        operation: "S3 URI",
        message: e.to_string(),
    })
}

/// Runs the demo: a replayed classification job stopped halfway, continued by the chainer, completed,
/// then verified on its low-confidence labels; then a bounding-box job; then the same objects as a
/// three-round top-up chain. Prints the summaries.
pub async fn run_demo(options: &DemoOptions) -> Result<(), SimError> {
    let started = Instant::now();
    std::fs::create_dir_all(&options.out_dir).map_err(SimError::io(format!(
        "create {}",
        options.out_dir.display()
    )))?;
    println!(
        "groundwork-sim: a local Ground Truth (SageMaker API + Lambda Runtime API on 127.0.0.1, moto S3)"
    );
    let moto = Moto::start()?;
    let gt = GroundTruth::start(SimConfig {
        bin_dir: options.bin_dir.clone(),
        log_dir: options.out_dir.join("logs"),
        s3_endpoint: moto.endpoint.clone(),
        batch_size: 25,
        event_deliveries: options.deliveries,
        chainer_env: Vec::new(),
        consolidation_env: Vec::new(),
        // As the template deploys them: nothing outside the data bucket.
        allowed_s3_locations: Some(format!("s3://{DEMO_BUCKET}")),
    })
    .await?;
    // Ctrl-C ends the scenario but not the clean-up: every process is still stopped below.
    let result = tokio::select! {
        r = demo_jobs(&gt, &moto, options) => r,
        _ = tokio::signal::ctrl_c() => Err(SimError::Api { operation: "demo", message: "interrupted".to_owned() }),
    };
    let stats = gt.function_stats();
    let jobs = gt.jobs();
    let mut summaries = String::new();
    if result.is_ok() {
        for job in &jobs {
            summaries.push_str(&summarize(&gt, job, &options.out_dir).await?);
        }
        summaries.push_str(&chain_result(&gt, &jobs, "crowd-label", "crowd-label-check").await?);
        summaries.push_str(&top_up_summary(&gt, options).await?);
    }
    gt.shutdown().await;
    drop(moto);
    result?;
    println!("\n== Jobs ({} in all, in creation order)", jobs.len());
    print!("{summaries}");
    let deliveries = gt.deliveries();
    // Three jobs are the demo's own: the classification job, the box job, the top-up chain's root.
    let created = jobs.len().saturating_sub(3);
    println!(
        "\n  {} state-change deliveries to gt-auto-chainer ({} per event); chained jobs created: {created}",
        deliveries.len(),
        options.deliveries
    );
    println!(
        "\n== Functions (each the real binary under the Lambda Runtime API; cold = exec → first event served)"
    );
    print!("{}", function_table(&stats));
    println!(
        "\n  function logs: {}\n  demo time {:.1} s; every process started by the demo is stopped.",
        options.out_dir.join("logs").display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn demo_jobs(gt: &Arc<GroundTruth>, moto: &Moto, o: &DemoOptions) -> Result<(), SimError> {
    let s3 = moto.s3();
    let bucket = DEMO_BUCKET;
    create_bucket(&s3, bucket).await?;
    let root = |k: &str| object_uri(bucket, k);
    let replay = Replay::load(&o.crowd_dir.join(&o.set))?;
    let tasks: Vec<String> = replay.tasks().into_iter().take(o.objects).collect();
    let labels = replay.labels();
    let refs: Vec<String> = tasks
        .iter()
        .map(|t| format!("s3://{bucket}/crowd/{}/{t}.jpg", o.set))
        .collect();
    let manifest = root("jobs/crowd/input.manifest")?;
    let labels_uri = root("jobs/crowd/labels.json")?;
    let plan_uri = root("jobs/crowd/verify-plan.json")?;
    put_manifest(&s3, &manifest, &refs).await?;
    put_labels(&s3, &labels_uri, &labels).await?;
    let lan = "crowd-label";
    let plan = Plan {
        label_attribute_name: format!("{lan}-check"),
        task_title: "Check a low-confidence label".to_owned(),
        task_description: "Label again: the first crowd was unsure".to_owned(),
        number_of_human_workers_per_data_object: 7,
        confidence_threshold: 0.9,
    };
    put(
        &s3,
        &plan_uri,
        serde_json::to_vec(&plan).map_err(SimError::json("a plan"))?,
    )
    .await?;
    gt.set_workforce(lan, Arc::new(replay.with_offset(0)));
    gt.set_workforce(&plan.label_attribute_name, Arc::new(replay.with_offset(5)));
    let name = "crowd-sentiment";
    let half = tasks.len() / 2;
    gt.script(JobScript {
        name: name.to_owned(),
        interruption: Interruption::StopAfter(half),
    });
    println!(
        "\n== 1. Image classification, {} objects of the real crowd set {} ({} classes), 5 workers each",
        tasks.len(),
        o.set,
        labels.len()
    );
    println!("   workforce: {}", replay.describe());
    println!(
        "   the operator stops it after {half} labels; the chainer continues it (tag groundwork:chain=continue),"
    );
    println!(
        "   then runs the declared follow-up on labels below confidence {} (7 fresh workers each)",
        plan.confidence_threshold
    );
    let labels_tag = labels.join(",");
    let follow_up = plan_uri.to_string();
    let output = root("out/")?;
    let request = job_request(&JobSpec {
        name,
        lan,
        task: Task::ImageClassification,
        manifest: &manifest,
        labels: &labels_uri,
        output: &output,
        workers: 5,
        tags: &[
            ("groundwork:chain", "continue"),
            ("groundwork:follow-up", follow_up.as_str()),
            ("sim:labels", labels_tag.as_str()),
        ],
    });
    create(gt, &request).await?;
    if !gt.wait_idle(Duration::from_secs(100)).await {
        return Err(SimError::Api {
            operation: "demo",
            message: "the classification chain did not finish in 100 s".to_owned(),
        });
    }

    let box_labels: Vec<String> = ["car", "person", "bicycle"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let workers = BoxWorkers {
        pool: 8,
        jitter: 0.06,
        miss: 0.1,
        extra: 0.1,
        wrong_class: 0.05,
        width: 640,
        height: 480,
    };
    println!(
        "\n== 2. Bounding boxes, 40 images, 5 workers each; {}",
        workers.describe()
    );
    let box_refs: Vec<String> = (0..40)
        .map(|i| format!("s3://{bucket}/street/{i:04}.jpg"))
        .collect();
    let box_manifest = root("jobs/street/input.manifest")?;
    let box_labels_uri = root("jobs/street/labels.json")?;
    put_manifest(&s3, &box_manifest, &box_refs).await?;
    put_labels(&s3, &box_labels_uri, &box_labels).await?;
    gt.set_workforce("vehicles", Arc::new(workers));
    let tag = box_labels.join(",");
    let request = job_request(&JobSpec {
        name: "street-boxes",
        lan: "vehicles",
        task: Task::BoundingBox,
        manifest: &box_manifest,
        labels: &box_labels_uri,
        output: &output,
        workers: 5,
        tags: &[("sim:labels", tag.as_str())],
    });
    create(gt, &request).await?;
    if !gt.wait_idle(Duration::from_secs(60)).await {
        return Err(SimError::Api {
            operation: "demo",
            message: "the box job did not finish in 60 s".to_owned(),
        });
    }

    println!(
        "\n== 3. Adaptive redundancy: the same {} objects as a top-up chain, workers per round {:?}, target confidence {DEMO_TOP_UP_TARGET}",
        tasks.len(),
        TOP_UP_WORKERS
    );
    println!(
        "   round 1 asks everyone {} workers; the chainer starts each next round over only the objects still below the target",
        TOP_UP_WORKERS[0]
    );
    start_top_up(
        gt,
        &s3,
        &replay,
        &tasks,
        bucket,
        DEMO_TOP_UP_JOB,
        DEMO_TOP_UP_TARGET,
    )
    .await?;
    if !gt.wait_idle(Duration::from_secs(120)).await {
        return Err(SimError::Api {
            operation: "demo",
            message: "the top-up chain did not finish in 120 s".to_owned(),
        });
    }
    Ok(())
}

/// The demo's top-up root job.
const DEMO_TOP_UP_JOB: &str = "crowd-topup";
/// Its target confidence.
const DEMO_TOP_UP_TARGET: f64 = 0.95;

/// The top-up chain's result, as the demo prints it.
async fn top_up_summary(gt: &GroundTruth, o: &DemoOptions) -> Result<String, SimError> {
    let replay = Replay::load(&o.crowd_dir.join(&o.set))?;
    let r = top_up_report(&gt.s3, &replay, DEMO_BUCKET, DEMO_TOP_UP_JOB).await?;
    let mut s = String::new();
    let fixed: u32 = TOP_UP_WORKERS.iter().sum();
    let _ = writeln!(
        s,
        "\n  top-up result (merged manifest out/{DEMO_TOP_UP_JOB}/{}):",
        groundwork::chain::top_up::OUTPUT_FILE
    );
    let _ = writeln!(
        s,
        "    {} objects once each ({} labeled), {} answers: {:.2} per object against {fixed} for asking everyone {fixed} workers ({:.0} %)",
        r.objects,
        r.labeled,
        r.answers,
        r.answers as f64 / r.objects.max(1) as f64,
        100.0 * r.answers as f64 / (fixed as usize * r.objects).max(1) as f64
    );
    let rounds: Vec<String> = r
        .rounds
        .iter()
        .map(|(round, n)| format!("{n} ended in round {round}"))
        .collect();
    let _ = writeln!(s, "    {}", rounds.join(", "));
    if r.known > 0 {
        let _ = writeln!(
            s,
            "    accuracy against gold {:.3} ({}/{}); compare job 1's labels from {fixed} workers each, above",
            r.correct as f64 / r.known as f64,
            r.correct,
            r.known
        );
    }
    let _ = writeln!(
        s,
        "    answers in the merged manifest = answers the replayed workforce gave: {}",
        if r.answers == r.answers_given {
            "yes"
        } else {
            "NO"
        }
    );
    Ok(s)
}

/// `groundwork-sim serve`: moto and the API until Ctrl-C, for the CLI or any SDK client; prints the
/// environment to point them at it.
pub async fn serve(bin_dir: PathBuf, log_dir: PathBuf, deliveries: usize) -> Result<(), SimError> {
    let moto = Moto::start()?;
    let gt = GroundTruth::start(SimConfig {
        bin_dir,
        log_dir: log_dir.clone(),
        s3_endpoint: moto.endpoint.clone(),
        batch_size: 25,
        event_deliveries: deliveries,
        chainer_env: Vec::new(),
        consolidation_env: Vec::new(),
        allowed_s3_locations: None,
    })
    .await?;
    println!("groundwork-sim serving on 127.0.0.1 (Ctrl-C stops it and every process it started):");
    println!("  export AWS_ENDPOINT_URL_SAGEMAKER={}", gt.endpoint);
    println!("  export AWS_ENDPOINT_URL_S3={}", moto.endpoint);
    println!(
        "  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION={}",
        crate::sim::REGION
    );
    println!("  function logs: {}", log_dir.display());
    let _ = tokio::signal::ctrl_c().await;
    gt.shutdown().await;
    drop(moto);
    println!("\n== Jobs");
    for job in gt.jobs() {
        println!(
            "  {} {} labeled {}",
            job.labeling_job_name,
            job.labeling_job_status,
            job.label_counters.total_labeled.unwrap_or(0)
        );
    }
    print!("{}", function_table(&gt.function_stats()));
    Ok(())
}

/// The label attribute name of the demo's top-up chain (its rounds add `-top-up-<r>`).
pub const TOP_UP_LAN: &str = "crowd-topup";
/// The top-up chain's workers per round: 2 for everyone, then 1, then 2 more for the still unsure.
pub const TOP_UP_WORKERS: [u32; 3] = [2, 1, 2];

/// A top-up chain over a replayed real crowd set: the plan, the workforces of its three rounds (each
/// round's workers are the set's next answers for the object, so no object sees a worker twice) and the
/// root job (`TOP_UP_WORKERS[0]` workers, tagged with the plan).
pub async fn start_top_up(
    gt: &GroundTruth,
    s3: &aws_sdk_s3::Client,
    replay: &Replay,
    tasks: &[String],
    bucket: &str,
    job_name: &str,
    target: f64,
) -> Result<(), SimError> {
    let uri = |k: &str| object_uri(bucket, k);
    let refs: Vec<String> = tasks
        .iter()
        .map(|t| format!("s3://{bucket}/crowd/{}/{t}.jpg", replay.name))
        .collect();
    let manifest = uri("jobs/topup/input.manifest")?;
    let labels_uri = uri("jobs/topup/labels.json")?;
    let plan_uri = uri("jobs/topup/plan.json")?;
    let labels = replay.labels();
    put_manifest(s3, &manifest, &refs).await?;
    put_labels(s3, &labels_uri, &labels).await?;
    let plan = serde_json::json!({
        "Mode": "top-up",
        "TargetConfidence": target,
        "WorkersPerRound": TOP_UP_WORKERS,
        "MaxAnswersPerObject": TOP_UP_WORKERS.iter().sum::<u32>(),
    });
    put(
        s3,
        &plan_uri,
        serde_json::to_vec(&plan).map_err(SimError::json("a plan"))?,
    )
    .await?;
    let mut offset = 0;
    for (i, workers) in TOP_UP_WORKERS.iter().enumerate() {
        let lan = if i == 0 {
            TOP_UP_LAN.to_owned()
        } else {
            groundwork::chain::top_up::round_label_attribute_name(TOP_UP_LAN, i as u32 + 1)
                .map_err(|e| SimError::Api {
                    operation: "top-up",
                    message: e.to_string(),
                })?
                .as_str()
                .to_owned()
        };
        gt.set_workforce(&lan, Arc::new(replay.with_offset(offset)));
        offset += *workers as usize;
    }
    let labels_tag = labels.join(",");
    let plan_tag = plan_uri.to_string();
    let output = uri("out/")?;
    let request = job_request(&JobSpec {
        name: job_name,
        lan: TOP_UP_LAN,
        task: Task::ImageClassification,
        manifest: &manifest,
        labels: &labels_uri,
        output: &output,
        workers: TOP_UP_WORKERS[0],
        tags: &[
            ("groundwork:follow-up", plan_tag.as_str()),
            ("sim:labels", labels_tag.as_str()),
        ],
    });
    create(gt, &request).await?;
    Ok(())
}

/// What a finished top-up chain gave, read back from its merged manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct TopUpReport {
    /// Lines of the merged manifest.
    pub objects: usize,
    /// Of those, labeled.
    pub labeled: usize,
    /// Answers the merged manifest says were spent.
    pub answers: usize,
    /// Answers the replayed workforce gave those objects (distinct workers of the rounds each object
    /// went through).
    pub answers_given: usize,
    /// Objects per last round (1, 2, 3).
    pub rounds: BTreeMap<u32, usize>,
    /// Correct labels among the objects with gold, and how many have gold.
    pub correct: usize,
    /// Objects with gold.
    pub known: usize,
    /// Sources that appear more than once in the merged manifest.
    pub repeated: usize,
}

/// Reads `<out>/<root>/manifests/output/top-up.manifest` and checks it against the replay.
pub async fn top_up_report(
    s3: &aws_sdk_s3::Client,
    replay: &Replay,
    bucket: &str,
    root_job: &str,
) -> Result<TopUpReport, SimError> {
    let uri = format!(
        "s3://{bucket}/out/{root_job}/{}",
        groundwork::chain::top_up::OUTPUT_FILE
    );
    let lines = read_manifest(s3, &uri).await?;
    let mut report = TopUpReport {
        objects: lines.len(),
        labeled: 0,
        answers: 0,
        answers_given: 0,
        rounds: BTreeMap::new(),
        correct: 0,
        known: 0,
        repeated: 0,
    };
    let mut seen = std::collections::BTreeSet::new();
    let meta_key = format!("{TOP_UP_LAN}-metadata");
    for line in &lines {
        if !seen.insert(line.source().value().to_owned()) {
            report.repeated += 1;
        }
        let meta = line.get(&meta_key);
        let number = |k: &str| {
            meta.and_then(|m| m.get(k))
                .and_then(serde_json::Value::as_u64)
        };
        let answers = number("answers").unwrap_or(0) as usize;
        let round = number("rounds").unwrap_or(0) as u32;
        report.answers += answers;
        *report.rounds.entry(round).or_default() += 1;
        let asked: usize = TOP_UP_WORKERS
            .iter()
            .take(round as usize)
            .map(|w| *w as usize)
            .sum();
        let task = crate::workforce::object_stem(line);
        let given: std::collections::BTreeSet<&str> = replay
            .answers
            .get(task)
            .map(|a| a.iter().take(asked).map(|(w, _)| w.as_str()).collect())
            .unwrap_or_default();
        report.answers_given += given.len();
        let Some(class) = field::<ClassMetadata>(line, &meta_key) else {
            continue;
        };
        if line.get(TOP_UP_LAN).is_none() {
            continue;
        }
        report.labeled += 1;
        if let Some(Gold::Class(gold)) = replay.gold(line, &[]) {
            report.known += 1;
            report.correct += usize::from(class.class_name == gold);
        }
    }
    Ok(report)
}
