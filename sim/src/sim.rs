//! The simulator: a registry of labeling jobs behind the API, the three functions, the workforces and the
//! per-job scripts (stop or fail part way), and the server on 127.0.0.1.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use groundwork::labeling_job::{
    CreateLabelingJobRequest, LabelCounters, LabelingJobDescription, LabelingJobStatus, Tag,
};

use crate::api::{self, ApiError, LabelingJobSummary, ListRequest, ListResponse};
use crate::error::SimError;
use crate::lambda::{Function, FunctionError, FunctionStats};
use crate::workforce::Workforce;

/// The simulated account and region.
pub const ACCOUNT: &str = "111122223333";
/// The simulated region.
pub const REGION: &str = "us-east-1";

/// How the simulator behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where `gt-pre-human-task`, `gt-annotation-consolidation` and `gt-auto-chainer` are.
    pub bin_dir: PathBuf,
    /// Where the functions' logs go.
    pub log_dir: PathBuf,
    /// moto's endpoint.
    pub s3_endpoint: String,
    /// Objects per consolidation batch.
    pub batch_size: usize,
    /// How many times each state-change event is delivered to the auto-chainer.
    pub event_deliveries: usize,
    /// Extra environment for the auto-chainer (`CHAIN_DEFAULT`, `MAX_CHAIN_DEPTH`, …).
    pub chainer_env: Vec<(String, String)>,
    /// Extra environment for the consolidation function (`CONSOLIDATION_METHOD`, …).
    pub consolidation_env: Vec<(String, String)>,
    /// `ALLOWED_S3_LOCATIONS` for all three functions, as the template sets it (the data bucket by
    /// default); `None` leaves them unconfined.
    pub allowed_s3_locations: Option<String>,
}

/// What the simulated operator or a fault does to a job part way.
#[derive(Debug, Clone, PartialEq)]
pub enum Interruption {
    /// StopLabelingJob once this many objects are labeled by the job (0: before any).
    StopAfter(usize),
    /// The job fails with this `FailureReason` once this many objects are labeled.
    FailAfter(usize, String),
}

/// A script for the jobs whose name matches.
#[derive(Debug, Clone, PartialEq)]
pub struct JobScript {
    /// The name, or a name prefix when it ends in `*` (case-insensitive).
    pub name: String,
    /// What happens.
    pub interruption: Interruption,
}

impl JobScript {
    fn matches(&self, job: &str) -> bool {
        let (job, name) = (job.to_lowercase(), self.name.to_lowercase());
        match name.strip_suffix('*') {
            Some(prefix) => job.starts_with(prefix),
            None => job == name,
        }
    }
}

/// What the auto-chainer answered to one delivery of a state-change event.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The job whose state changed.
    pub job: String,
    /// The status in the event.
    pub status: LabelingJobStatus,
    /// The function's response (JSON text) or error.
    pub outcome: Result<String, FunctionError>,
}

pub(crate) struct JobRecord {
    pub(crate) description: LabelingJobDescription,
    pub(crate) stop_requested: bool,
}

/// The three functions, each run as Lambda runs it.
#[derive(Debug)]
pub struct Functions {
    /// `gt-pre-human-task`.
    pub pre: Function,
    /// `gt-annotation-consolidation`.
    pub consolidation: Function,
    /// `gt-auto-chainer`.
    pub chainer: Function,
}

/// The simulated Ground Truth.
pub struct GroundTruth {
    pub(crate) config: SimConfig,
    pub(crate) s3: aws_sdk_s3::Client,
    pub(crate) jobs: Mutex<BTreeMap<String, JobRecord>>,
    pub(crate) order: Mutex<Vec<String>>,
    /// The functions.
    pub functions: Functions,
    pub(crate) workforces: Mutex<BTreeMap<String, Arc<dyn Workforce>>>,
    pub(crate) scripts: Mutex<Vec<JobScript>>,
    pub(crate) deliveries: Mutex<Vec<Delivery>>,
    active: AtomicUsize,
    idle: Notify,
    /// The API's endpoint, `http://127.0.0.1:<port>`.
    pub endpoint: String,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for GroundTruth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroundTruth")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock means a panic elsewhere already failed the run; the data is still usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now_epoch() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1e6
}

impl GroundTruth {
    /// Starts the API on 127.0.0.1 and prepares the functions (started on first use).
    pub async fn start(config: SimConfig) -> Result<Arc<GroundTruth>, SimError> {
        std::fs::create_dir_all(&config.log_dir)
            .map_err(SimError::io(format!("create {}", config.log_dir.display())))?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(SimError::io("bind the SageMaker API on 127.0.0.1"))?;
        let address = listener
            .local_addr()
            .map_err(SimError::io("SageMaker API address"))?;
        let endpoint = format!("http://{address}");
        let aws_env: Vec<(String, String)> = [
            ("AWS_ENDPOINT_URL_S3", config.s3_endpoint.as_str()),
            ("AWS_ENDPOINT_URL_SAGEMAKER", endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", REGION),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let function = |name: &str, extra: &[(String, String)]| {
            let mut env = aws_env.clone();
            if let Some(allowed) = &config.allowed_s3_locations {
                env.push(("ALLOWED_S3_LOCATIONS".to_owned(), allowed.clone()));
            }
            env.extend(extra.iter().cloned());
            Function::new(
                &config.bin_dir.join(name),
                env,
                config.log_dir.join(format!("{name}.log")),
            )
        };
        let functions = Functions {
            pre: function("gt-pre-human-task", &[]),
            consolidation: function("gt-annotation-consolidation", &config.consolidation_env),
            chainer: function("gt-auto-chainer", &config.chainer_env),
        };
        let gt = Arc::new(GroundTruth {
            s3: crate::moto::s3_client(&config.s3_endpoint),
            config,
            jobs: Mutex::new(BTreeMap::new()),
            order: Mutex::new(Vec::new()),
            functions,
            workforces: Mutex::new(BTreeMap::new()),
            scripts: Mutex::new(Vec::new()),
            deliveries: Mutex::new(Vec::new()),
            active: AtomicUsize::new(0),
            idle: Notify::new(),
            endpoint,
            server: Mutex::new(None),
        });
        let served = gt.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let gt = served.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req| api::serve(gt.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        *lock(&gt.server) = Some(server);
        Ok(gt)
    }

    /// A SageMaker client pointed at this simulator (what the CLI and the demo use).
    pub fn sagemaker_client(&self) -> aws_sdk_sagemaker::Client {
        let conf = aws_sdk_sagemaker::Config::builder()
            .behavior_version(aws_sdk_sagemaker::config::BehaviorVersion::latest())
            .region(aws_sdk_sagemaker::config::Region::new(REGION))
            .credentials_provider(aws_sdk_sagemaker::config::Credentials::new(
                "test", "test", None, None, "static",
            ))
            .endpoint_url(&self.endpoint)
            .build();
        aws_sdk_sagemaker::Client::from_conf(conf)
    }

    /// Who answers jobs with this label attribute name.
    pub fn set_workforce(&self, label_attribute_name: &str, workforce: Arc<dyn Workforce>) {
        lock(&self.workforces).insert(label_attribute_name.to_owned(), workforce);
    }

    /// The workforce of a label attribute name.
    pub fn workforce(&self, label_attribute_name: &str) -> Option<Arc<dyn Workforce>> {
        lock(&self.workforces).get(label_attribute_name).cloned()
    }

    /// Adds a script.
    pub fn script(&self, script: JobScript) {
        lock(&self.scripts).push(script);
    }

    pub(crate) fn interruption_for(&self, job: &str) -> Option<Interruption> {
        lock(&self.scripts)
            .iter()
            .find(|s| s.matches(job))
            .map(|s| s.interruption.clone())
    }

    /// Every delivery of a state-change event and what the chainer answered.
    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.deliveries).clone()
    }

    /// Every job, in creation order.
    pub fn jobs(&self) -> Vec<LabelingJobDescription> {
        let order = lock(&self.order).clone();
        let jobs = lock(&self.jobs);
        order
            .iter()
            .filter_map(|k| jobs.get(k).map(|r| r.description.clone()))
            .collect()
    }

    /// The functions' statistics.
    pub fn function_stats(&self) -> Vec<FunctionStats> {
        vec![
            self.functions.pre.stats(),
            self.functions.consolidation.stats(),
            self.functions.chainer.stats(),
        ]
    }

    /// Waits until no job runs and no event is being delivered (or `timeout` passed; then `false`).
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.idle.notified();
            if self.active.load(Ordering::SeqCst) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.active.load(Ordering::SeqCst) == 0;
            }
        }
    }

    /// Stops the functions' processes and the API server.
    pub async fn shutdown(&self) {
        self.functions.pre.stop().await;
        self.functions.consolidation.stop().await;
        self.functions.chainer.stop().await;
        if let Some(server) = lock(&self.server).take() {
            server.abort();
        }
    }

    pub(crate) fn with_job<R>(&self, key: &str, f: impl FnOnce(&mut JobRecord) -> R) -> Option<R> {
        lock(&self.jobs).get_mut(key).map(f)
    }

    /// CreateLabelingJob: validates, registers and starts the job.
    pub fn create_job(
        self: &Arc<Self>,
        request: CreateLabelingJobRequest,
    ) -> Result<String, ApiError> {
        api::validate_create(&request)?;
        let key = request.labeling_job_name.to_lowercase();
        let arn = format!("arn:aws:sagemaker:{REGION}:{ACCOUNT}:labeling-job/{key}");
        {
            let mut jobs = lock(&self.jobs);
            if jobs.contains_key(&key) {
                return Err(ApiError {
                    code: "ResourceInUse",
                    message: format!(
                        "Job name must be unique within an AWS account and region, and a job with this name already exists ({arn})"
                    ),
                });
            }
            let now = serde_json::Number::from_f64(now_epoch()).map(serde_json::Value::Number);
            let description = LabelingJobDescription {
                labeling_job_status: LabelingJobStatus::Initializing,
                label_counters: LabelCounters {
                    total_labeled: Some(0),
                    human_labeled: Some(0),
                    machine_labeled: Some(0),
                    failed_non_retryable_error: Some(0),
                    unlabeled: Some(0),
                },
                failure_reason: None,
                creation_time: now.clone(),
                last_modified_time: now,
                job_reference_code: Some(format!("{:016x}", crate::workforce::hash(&[&arn]))),
                labeling_job_name: request.labeling_job_name.clone(),
                labeling_job_arn: arn.clone(),
                label_attribute_name: Some(request.label_attribute_name.clone()),
                input_config: request.input_config,
                output_config: request.output_config,
                role_arn: request.role_arn,
                label_category_config_s3_uri: request.label_category_config_s3_uri,
                stopping_conditions: request.stopping_conditions,
                labeling_job_algorithms_config: request.labeling_job_algorithms_config,
                human_task_config: request.human_task_config,
                tags: request.tags,
                labeling_job_output: None,
            };
            jobs.insert(
                key.clone(),
                JobRecord {
                    description,
                    stop_requested: false,
                },
            );
            lock(&self.order).push(key.clone());
        }
        self.active.fetch_add(1, Ordering::SeqCst);
        let gt = self.clone();
        tokio::spawn(async move {
            crate::job::run(&gt, &key).await;
            gt.active.fetch_sub(1, Ordering::SeqCst);
            gt.idle.notify_waiters();
        });
        Ok(arn)
    }

    /// DescribeLabelingJob.
    pub fn describe(&self, name: &str) -> Result<LabelingJobDescription, ApiError> {
        lock(&self.jobs)
            .get(&name.to_lowercase())
            .map(|r| r.description.clone())
            .ok_or_else(|| ApiError::not_found(format!("Could not find labeling job '{name}'")))
    }

    /// StopLabelingJob: the job stops before its next batch.
    pub fn stop(&self, name: &str) -> Result<(), ApiError> {
        let mut jobs = lock(&self.jobs);
        let record = jobs
            .get_mut(&name.to_lowercase())
            .ok_or_else(|| ApiError::not_found(format!("Could not find labeling job '{name}'")))?;
        if !record.description.labeling_job_status.is_terminal() {
            record.stop_requested = true;
            record.description.labeling_job_status = LabelingJobStatus::Stopping;
        }
        Ok(())
    }

    /// ListLabelingJobs.
    pub fn list(&self, request: &ListRequest) -> Result<ListResponse, ApiError> {
        let max = request.max_results.unwrap_or(10);
        if !(1..=100).contains(&max) {
            return Err(ApiError::validation("MaxResults must be between 1 and 100"));
        }
        let time = |d: &LabelingJobDescription| {
            d.creation_time
                .as_ref()
                .and_then(serde_json::Value::as_f64)
                .unwrap_or_default()
        };
        let mut rows: Vec<LabelingJobSummary> = self
            .jobs()
            .into_iter()
            .filter(|d| {
                request.name_contains.as_ref().is_none_or(|n| {
                    d.labeling_job_name
                        .to_lowercase()
                        .contains(&n.to_lowercase())
                })
            })
            .filter(|d| {
                request
                    .status_equals
                    .as_ref()
                    .is_none_or(|s| *s == d.labeling_job_status)
            })
            .filter(|d| request.creation_time_after.is_none_or(|t| time(d) > t))
            .filter(|d| request.creation_time_before.is_none_or(|t| time(d) < t))
            .map(|d| LabelingJobSummary {
                creation_time: time(&d),
                last_modified_time: d
                    .last_modified_time
                    .as_ref()
                    .and_then(serde_json::Value::as_f64)
                    .unwrap_or_default(),
                labeling_job_name: d.labeling_job_name,
                labeling_job_arn: d.labeling_job_arn,
                labeling_job_status: d.labeling_job_status,
                label_counters: d.label_counters,
                workteam_arn: d.human_task_config.workteam_arn,
                pre_human_task_lambda_arn: d.human_task_config.pre_human_task_lambda_arn,
                annotation_consolidation_lambda_arn: d
                    .human_task_config
                    .annotation_consolidation_config
                    .map(|c| c.annotation_consolidation_lambda_arn),
                failure_reason: d.failure_reason,
                labeling_job_output: d.labeling_job_output,
                input_config: d.input_config,
            })
            .collect();
        match request.sort_by.as_deref() {
            Some("Name") => rows.sort_by(|a, b| a.labeling_job_name.cmp(&b.labeling_job_name)),
            Some("Status") => rows.sort_by(|a, b| {
                a.labeling_job_status
                    .as_str()
                    .cmp(b.labeling_job_status.as_str())
            }),
            _ => rows.sort_by(|a, b| a.creation_time.total_cmp(&b.creation_time)),
        }
        if request.sort_order.as_deref() == Some("Descending") {
            rows.reverse();
        }
        let start: usize = match &request.next_token {
            Some(t) => t
                .parse()
                .map_err(|_| ApiError::validation("invalid NextToken"))?,
            None => 0,
        };
        let end = (start + max).min(rows.len());
        let next_token = (end < rows.len()).then(|| end.to_string());
        Ok(ListResponse {
            labeling_job_summary_list: rows.get(start..end).map(<[_]>::to_vec).unwrap_or_default(),
            next_token,
        })
    }

    fn key_of_arn(&self, arn: &str) -> Result<String, ApiError> {
        let key = arn
            .rsplit_once(":labeling-job/")
            .map(|(_, name)| name.to_lowercase())
            .ok_or_else(|| ApiError::validation(format!("Invalid ResourceArn '{arn}'")))?;
        if lock(&self.jobs).contains_key(&key) {
            Ok(key)
        } else {
            Err(ApiError::not_found(format!(
                "Could not find resource '{arn}'"
            )))
        }
    }

    /// AddTags (a key already there gets the new value).
    pub fn add_tags(&self, arn: &str, tags: &[Tag]) -> Result<(), ApiError> {
        let key = self.key_of_arn(arn)?;
        self.with_job(&key, |r| {
            for tag in tags {
                match r.description.tags.iter_mut().find(|t| t.key == tag.key) {
                    Some(t) => t.value.clone_from(&tag.value),
                    None => r.description.tags.push(tag.clone()),
                }
            }
            if r.description.tags.len() > 50 {
                return Err(ApiError {
                    code: "ResourceLimitExceeded",
                    message: "a resource has at most 50 tags".to_owned(),
                });
            }
            Ok(())
        })
        .unwrap_or(Ok(()))
    }

    /// ListTags.
    pub fn tags(&self, arn: &str) -> Result<Vec<Tag>, ApiError> {
        let key = self.key_of_arn(arn)?;
        Ok(self
            .with_job(&key, |r| r.description.tags.clone())
            .unwrap_or_default())
    }
}

/// The directory of the running executable's siblings (`target/<profile>`), where the workspace's
/// binaries are.
pub fn sibling_bin_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    // A test binary lives in target/<profile>/deps.
    if dir.file_name().is_some_and(|n| n == "deps") {
        return dir.parent().map(Path::to_path_buf);
    }
    Some(dir.to_path_buf())
}

pub(crate) fn record_delivery(gt: &GroundTruth, delivery: Delivery) {
    lock(&gt.deliveries).push(delivery);
}

/// Who answers a job no workforce was set for: ten classification workers of accuracy 0.65–0.95, or
/// eight box workers; other task types have none.
pub fn default_workforce(task: groundwork::TaskType) -> Option<Arc<dyn Workforce>> {
    use groundwork::TaskType;
    match task {
        TaskType::ImageClassification | TaskType::TextClassification => Some(Arc::new(
            crate::workforce::ClassWorkers::spread(10, 16, 0.65, 0.95, 0.0),
        )),
        TaskType::BoundingBox | TaskType::AdjustmentBoundingBox => {
            Some(Arc::new(crate::workforce::BoxWorkers {
                pool: 8,
                jitter: 0.06,
                miss: 0.1,
                extra: 0.1,
                wrong_class: 0.05,
                width: 640,
                height: 480,
            }))
        }
        _ => None,
    }
}
