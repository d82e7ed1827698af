//! One chain step over the ports: describe, fetch what the planner asks for, plan, write, create.
//!
//! This is the only place where chaining does I/O, and it does it through the port traits only, so the
//! Lambda (over the S3 and SageMaker adapters) and the CLI (the same adapters, or a dry run) share it, and
//! its tests run on the in-memory fakes. No async runtime is needed here: the futures are the ports'.
//!
//! Order of effects, chosen for "one job per state change":
//! 1. DescribeLabelingJob on the source (the event only carries its ARN).
//! 2. [`prepare`], then read the plan, the first manifest candidate that exists, the staging manifest.
//! 3. [`plan()`](super::plan()).
//! 4. DescribeLabelingJob on the *new* name: if it exists, a duplicate event already did the work —
//!    stop before rewriting objects a running job may be reading.
//! 5. Write the planner's objects, then CreateLabelingJob; `ResourceInUse` (a duplicate racing this one)
//!    is [`RunOutcome::AlreadyExists`], a success.

use crate::labeling_job::{CreateLabelingJobRequest, LabelingJobDescription};
use crate::ports::{
    CreateOutcome, JobsError, LabelingJobCreator, LabelingJobDescriber, ObjectLister, ObjectReader,
    ObjectWriter, StoreError,
};
use crate::s3_uri::S3Uri;

use super::clone::clone_request;
use super::manifest_edit::newest_intermediate_manifest;
use super::tags::TAG_FOLLOW_UP;
use super::top_up::{self, TopUpDecision, TopUpInput, TopUpPlan, TopUpSummary};
use super::{
    ChainAction, ChainError, ChainRequest, ChainSettings, ChainStep, Decision, FetchedObject,
    ManifestCandidate, PlanSource, PlannerInput, Preparation, SkipReason, plan, prepare,
};

/// The capabilities a chain step uses (IAM: `sagemaker:DescribeLabelingJob`,
/// `sagemaker:CreateLabelingJob` + `sagemaker:AddTags` + `iam:PassRole`, `s3:GetObject`, `s3:PutObject`,
/// `s3:ListBucket`).
#[derive(Clone, Copy)]
pub struct ChainPorts<'a> {
    /// DescribeLabelingJob.
    pub describer: &'a dyn LabelingJobDescriber,
    /// CreateLabelingJob.
    pub creator: &'a dyn LabelingJobCreator,
    /// Reads plans and manifests.
    pub reader: &'a dyn ObjectReader,
    /// Writes new manifests and label category files.
    pub writer: &'a dyn ObjectWriter,
    /// Finds the newest intermediate manifest.
    pub lister: &'a dyn ObjectLister,
}

impl std::fmt::Debug for ChainPorts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainPorts")
    }
}

/// How to run a step. The Lambda's is [`ChainRun::lambda`]: follow the job's declarations and every guard.
#[derive(Debug, Clone, Copy)]
pub struct ChainRun<'a> {
    /// The function's defaults.
    pub settings: &'a ChainSettings,
    /// A person's override ([`ChainRequest::force`]).
    pub force: bool,
    /// The caller's own follow-up plan, run whatever the job's status and declarations.
    pub supplied_plan: Option<&'a [u8]>,
    /// Plan and check, but write and create nothing.
    pub dry_run: bool,
}

impl<'a> ChainRun<'a> {
    /// What the auto-chainer does on an event.
    pub fn lambda(settings: &'a ChainSettings) -> Self {
        ChainRun {
            settings,
            force: false,
            supplied_plan: None,
            dry_run: false,
        }
    }

    /// The planner's view of the request: whether a plan is supplied is read off the plan itself, so the
    /// two cannot disagree.
    pub fn request(&self) -> ChainRequest {
        ChainRequest {
            force: self.force,
            supplied_plan: self.supplied_plan.is_some(),
        }
    }
}

/// What a step did.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    /// A new job.
    Created {
        /// Its ARN.
        arn: String,
        /// What was planned and done.
        action: Box<ChainAction>,
    },
    /// The job exists already: a duplicate event (or a second `chain start`) — success.
    AlreadyExists {
        /// What was planned (nothing was written or created).
        action: Box<ChainAction>,
    },
    /// A dry run: what would be written and created.
    WouldCreate {
        /// The plan.
        action: Box<ChainAction>,
    },
    /// A top-up chain is over: its merged output manifest was written (or, on a dry run, would be).
    TopUpFinished {
        /// Where the merged manifest is.
        manifest: S3Uri,
        /// Where the rounds ended.
        summary: TopUpSummary,
        /// False on a dry run.
        written: bool,
    },
    /// No job.
    Skipped(SkipReason),
}

/// A step's result, with the source job it was about.
#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    /// The source job, as described.
    pub job: Box<LabelingJobDescription>,
    /// What happened.
    pub outcome: RunOutcome,
}

/// Why a step could not finish. [`RunError::is_retryable`] tells the caller whether trying again later
/// may succeed (throttling, a 5xx) or a person must act first.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// DescribeLabelingJob of the source job failed.
    #[error("DescribeLabelingJob {job}: {source}")]
    Describe {
        /// The job name.
        job: String,
        /// Why.
        #[source]
        source: JobsError,
    },
    /// DescribeLabelingJob of the new name (the duplicate check) failed.
    #[error("checking whether labeling job {job} exists: {source}")]
    CheckExisting {
        /// The new job's name.
        job: String,
        /// Why.
        #[source]
        source: JobsError,
    },
    /// CreateLabelingJob failed.
    #[error("CreateLabelingJob {job}: {source}")]
    Create {
        /// The new job's name.
        job: String,
        /// Why.
        #[source]
        source: JobsError,
    },
    /// Reading an object failed.
    #[error("reading the {what} {source}")]
    Read {
        /// Which input.
        what: &'static str,
        /// Why (the error names the object).
        #[source]
        source: StoreError,
    },
    /// Listing intermediate manifests failed.
    #[error("listing intermediate manifests: {source}")]
    List {
        /// Why.
        #[source]
        source: StoreError,
    },
    /// Writing an object failed.
    #[error("writing the new job's input: {source}")]
    Write {
        /// Why.
        #[source]
        source: StoreError,
    },
    /// None of the manifest candidates exists.
    #[error("no manifest of labeling job {job} was found (looked at {tried})")]
    NoManifest {
        /// The source job.
        job: String,
        /// The candidates.
        tried: String,
    },
    /// The planner's inputs are broken.
    #[error(transparent)]
    Plan(#[from] ChainError),
}

impl RunError {
    /// Whether trying the same step again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            RunError::Describe { source, .. }
            | RunError::CheckExisting { source, .. }
            | RunError::Create { source, .. } => source.is_retryable(),
            RunError::Read { source, .. }
            | RunError::List { source }
            | RunError::Write { source } => source.is_retryable(),
            RunError::NoManifest { .. } | RunError::Plan(_) => false,
        }
    }
}

/// Describes `job_name` and runs one chain step from it.
pub async fn chain_job(
    ports: ChainPorts<'_>,
    job_name: &str,
    run: ChainRun<'_>,
) -> Result<RunReport, RunError> {
    let job = ports
        .describer
        .describe_labeling_job(job_name)
        .await
        .map_err(|source| RunError::Describe {
            job: job_name.to_owned(),
            source,
        })?;
    let outcome = chain_described(ports, &job, run).await?;
    Ok(RunReport {
        job: Box::new(job),
        outcome,
    })
}

/// Runs one chain step from an already described job.
pub async fn chain_described(
    ports: ChainPorts<'_>,
    job: &LabelingJobDescription,
    run: ChainRun<'_>,
) -> Result<RunOutcome, RunError> {
    let request = run.request();
    let needs = match prepare(job, run.settings, &request)? {
        Preparation::Skip(reason) => return Ok(RunOutcome::Skipped(reason)),
        Preparation::Fetch(needs) => needs,
    };
    let plan_bytes = match &needs.plan {
        None => None,
        Some(PlanSource::Supplied) => run.supplied_plan.map(<[u8]>::to_vec),
        Some(PlanSource::Declared(uri)) => Some(read(ports, "follow-up plan", uri).await?),
    };
    let manifest = find_manifest(ports, job, &needs.manifest).await?;
    if let Some(bytes) = plan_bytes.as_deref()
        && TopUpPlan::is_top_up(bytes)
    {
        return top_up_round(ports, job, run, bytes, &manifest).await;
    }
    let staging = match &needs.staging {
        None => None,
        Some(uri) => Some(FetchedObject {
            uri: uri.clone(),
            body: read(ports, "staging manifest", uri).await?,
        }),
    };
    let decision = plan(&PlannerInput {
        job,
        settings: run.settings,
        request: &request,
        plan: plan_bytes.as_deref(),
        manifest: Some(&manifest),
        staging: staging.as_ref(),
    })?;
    let mut action = match decision {
        Decision::Skip(reason) => return Ok(RunOutcome::Skipped(reason)),
        Decision::Chain(action) => action,
    };
    if action.step == ChainStep::Continue {
        let carried = carry_over(ports, job, &action).await?;
        // Written before the manifest the job reads, like every object the new job refers to.
        action.manifest_writes.splice(0..0, carried);
    }
    create_once(ports, action, run.dry_run).await
}

/// What a continued job takes over from the one it continues ([`top_up::continuation_writes`]): its
/// worker quality, and in a top-up chain the answers so far and the merged manifest.
async fn carry_over(
    ports: ChainPorts<'_>,
    job: &LabelingJobDescription,
    action: &ChainAction,
) -> Result<Vec<super::ObjectWrite>, RunError> {
    let needs = top_up::needs(job)?;
    let top_up_chain = match (job.tag(top_up::TAG_TOP_UP_ROUND), job.tag(TAG_FOLLOW_UP)) {
        (Some(_), _) => true,
        (None, Some(plan)) => match plan.parse::<S3Uri>() {
            Ok(uri) => optional(ports, Some(uri), "follow-up plan")
                .await?
                .is_some_and(|p| TopUpPlan::is_top_up(&p.body)),
            Err(_) => false,
        },
        (None, None) => false,
    };
    let worker_quality =
        optional(ports, Some(needs.worker_quality.clone()), "worker quality").await?;
    let (prior, merged, payloads) = if top_up_chain {
        (
            optional(ports, needs.prior.clone(), "earlier rounds' answers").await?,
            optional(ports, needs.merged.clone(), "merged manifest of the rounds").await?,
            consolidation_requests(ports, &needs.payloads).await?,
        )
    } else {
        (None, None, Vec::new())
    };
    Ok(top_up::continuation_writes(
        job,
        &action.request,
        top_up_chain,
        &top_up::ContinuationInput {
            worker_quality: worker_quality.as_ref(),
            prior: prior.as_ref(),
            merged: merged.as_ref(),
            payloads: &payloads,
        },
    )?)
}

/// An object that may not exist.
async fn optional(
    ports: ChainPorts<'_>,
    uri: Option<S3Uri>,
    what: &'static str,
) -> Result<Option<FetchedObject>, RunError> {
    let Some(uri) = uri else { return Ok(None) };
    match ports.reader.get_object(&uri).await {
        Ok(body) => Ok(Some(FetchedObject { uri, body })),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(source) => Err(RunError::Read { what, source }),
    }
}

/// Every consolidation request file of a job (none when the folder does not exist).
async fn consolidation_requests(
    ports: ChainPorts<'_>,
    prefix: &S3Uri,
) -> Result<Vec<FetchedObject>, RunError> {
    let keys = match ports.lister.list_objects(prefix).await {
        Ok(keys) => keys,
        Err(StoreError::NotFound { .. }) => Vec::new(),
        Err(source) => return Err(RunError::List { source }),
    };
    let mut payloads = Vec::new();
    for uri in keys.into_iter().filter(|k| k.key().ends_with(".json")) {
        let body = read(ports, "consolidation request", &uri).await?;
        payloads.push(FetchedObject { uri, body });
    }
    Ok(payloads)
}

/// Writes the action's objects and creates its job, unless the job exists already (a duplicate event:
/// nothing is rewritten that a running job may be reading).
async fn create_once(
    ports: ChainPorts<'_>,
    action: Box<ChainAction>,
    dry_run: bool,
) -> Result<RunOutcome, RunError> {
    let name = action.request.labeling_job_name.clone();
    match ports.describer.describe_labeling_job(&name).await {
        Ok(_) => return Ok(RunOutcome::AlreadyExists { action }),
        Err(JobsError::NotFound { .. }) => {}
        Err(source) => return Err(RunError::CheckExisting { job: name, source }),
    }
    if dry_run {
        return Ok(RunOutcome::WouldCreate { action });
    }
    for write in &action.manifest_writes {
        put(ports, write).await?;
    }
    match ports.creator.create_labeling_job(&action.request).await {
        Ok(CreateOutcome::Created { arn }) => Ok(RunOutcome::Created { arn, action }),
        Ok(CreateOutcome::AlreadyExists) => Ok(RunOutcome::AlreadyExists { action }),
        Err(source) => Err(RunError::Create { job: name, source }),
    }
}

/// A completed top-up round: read its answers, the earlier rounds' state and its worker quality, then
/// start the next round or write the merged manifest.
async fn top_up_round(
    ports: ChainPorts<'_>,
    job: &LabelingJobDescription,
    run: ChainRun<'_>,
    plan: &[u8],
    manifest: &FetchedObject,
) -> Result<RunOutcome, RunError> {
    let needs = top_up::needs(job)?;
    let payloads = consolidation_requests(ports, &needs.payloads).await?;
    let prior = optional(ports, needs.prior, "earlier rounds' answers").await?;
    let merged = optional(ports, needs.merged, "merged manifest of the rounds").await?;
    let worker_quality = optional(ports, Some(needs.worker_quality), "worker quality").await?;
    let decision = top_up::plan_round(&TopUpInput {
        job,
        settings: run.settings,
        plan,
        manifest,
        prior: prior.as_ref(),
        merged: merged.as_ref(),
        payloads: &payloads,
        worker_quality: worker_quality.as_ref(),
    })?;
    match decision {
        TopUpDecision::NextRound { action, .. } => create_once(ports, action, run.dry_run).await,
        TopUpDecision::Finished { write, summary } => {
            if !run.dry_run {
                put(ports, &write).await?;
            }
            Ok(RunOutcome::TopUpFinished {
                manifest: write.uri,
                summary,
                written: !run.dry_run,
            })
        }
    }
}

/// Writes one object the step planned.
async fn put(ports: ChainPorts<'_>, write: &super::ObjectWrite) -> Result<(), RunError> {
    ports
        .writer
        .put_object(
            &write.uri,
            write.body.clone(),
            write.content_type,
            &write.encryption,
        )
        .await
        .map_err(|source| RunError::Write { source })
}

async fn read(ports: ChainPorts<'_>, what: &'static str, uri: &S3Uri) -> Result<Vec<u8>, RunError> {
    ports
        .reader
        .get_object(uri)
        .await
        .map_err(|source| RunError::Read { what, source })
}

/// The first candidate that exists. A missing object (or an empty listing) moves on to the next
/// candidate; any other error stops, since the next candidate would be a worse answer, not a fix.
async fn find_manifest(
    ports: ChainPorts<'_>,
    job: &LabelingJobDescription,
    candidates: &[ManifestCandidate],
) -> Result<FetchedObject, RunError> {
    for candidate in candidates {
        let uri = match candidate {
            ManifestCandidate::Object(uri) => uri.clone(),
            ManifestCandidate::NewestIntermediate(prefix) => {
                let keys = match ports.lister.list_objects(prefix).await {
                    Ok(keys) => keys,
                    Err(StoreError::NotFound { .. }) => continue,
                    Err(source) => return Err(RunError::List { source }),
                };
                match newest_intermediate_manifest(&keys, prefix) {
                    Some(uri) => uri,
                    None => continue,
                }
            }
        };
        match ports.reader.get_object(&uri).await {
            Ok(body) => return Ok(FetchedObject { uri, body }),
            Err(StoreError::NotFound { .. }) => continue,
            Err(source) => {
                return Err(RunError::Read {
                    what: "manifest",
                    source,
                });
            }
        }
    }
    let tried = candidates
        .iter()
        .map(|c| match c {
            ManifestCandidate::Object(uri) => uri.to_string(),
            ManifestCandidate::NewestIntermediate(prefix) => format!("{prefix}<n>/output.manifest"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    Err(RunError::NoManifest {
        job: job.labeling_job_name.clone(),
        tried,
    })
}

/// What a clone did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloneOutcome {
    /// A new job.
    Created {
        /// Its ARN.
        arn: String,
    },
    /// A job of that name exists: the same clone was made before.
    AlreadyExists,
    /// A dry run.
    WouldCreate,
}

/// A clone's request and result.
#[derive(Debug, Clone, PartialEq)]
pub struct CloneReport {
    /// The request (sent, or not on a dry run).
    pub request: CreateLabelingJobRequest,
    /// What happened.
    pub outcome: CloneOutcome,
}

/// Clones `job_name` ([`clone_request`]).
pub async fn clone_job(
    describer: &dyn LabelingJobDescriber,
    creator: &dyn LabelingJobCreator,
    job_name: &str,
    manifest: Option<&S3Uri>,
    dry_run: bool,
) -> Result<CloneReport, RunError> {
    let job = describer
        .describe_labeling_job(job_name)
        .await
        .map_err(|source| RunError::Describe {
            job: job_name.to_owned(),
            source,
        })?;
    let request = clone_request(&job, manifest)?;
    if dry_run {
        return Ok(CloneReport {
            request,
            outcome: CloneOutcome::WouldCreate,
        });
    }
    let outcome = match creator.create_labeling_job(&request).await {
        Ok(CreateOutcome::Created { arn }) => CloneOutcome::Created { arn },
        Ok(CreateOutcome::AlreadyExists) => CloneOutcome::AlreadyExists,
        Err(source) => {
            return Err(RunError::Create {
                job: request.labeling_job_name.clone(),
                source,
            });
        }
    };
    Ok(CloneReport { request, outcome })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::ChainStep;
    use crate::chain::tags::{TAG_CHAIN, TAG_FOLLOW_UP};
    use crate::chain::testing::{OUTPUT_MANIFEST, OUTPUT_URI, PLAN, job_in, job_with_tags};
    use crate::labeling_job::LabelingJobStatus;
    use crate::ports::fakes::{MemoryLabelingJobs, MemoryObjectStore};
    use crate::testing::{DescribedJob, block_on};

    struct World {
        jobs: MemoryLabelingJobs,
        store: MemoryObjectStore,
        settings: ChainSettings,
    }

    impl World {
        fn new(job: LabelingJobDescription) -> Self {
            let jobs = MemoryLabelingJobs::new();
            jobs.insert(job);
            World {
                jobs,
                store: MemoryObjectStore::new(),
                settings: ChainSettings {
                    default_mode: crate::chain::ChainMode::Continue,
                    ..ChainSettings::default()
                },
            }
        }

        fn ports(&self) -> ChainPorts<'_> {
            ChainPorts {
                describer: &self.jobs,
                creator: &self.jobs,
                reader: &self.store,
                writer: &self.store,
                lister: &self.store,
            }
        }

        fn run(&self, request: ChainRequest, dry_run: bool) -> Result<RunReport, RunError> {
            block_on(chain_job(
                self.ports(),
                "animals",
                ChainRun {
                    force: request.force,
                    dry_run,
                    ..ChainRun::lambda(&self.settings)
                },
            ))
        }
    }

    fn stopped_without_output() -> LabelingJobDescription {
        DescribedJob::animals().without_output().build()
    }

    #[test]
    fn continues_from_the_output_manifest() {
        let world = World::new(job_in(LabelingJobStatus::Stopped));
        world.store.insert(OUTPUT_URI, OUTPUT_MANIFEST);
        let report = world.run(ChainRequest::default(), false).unwrap();
        let RunOutcome::Created { action, arn } = report.outcome else {
            panic!("{:?}", report.outcome);
        };
        assert!(arn.contains(&action.request.labeling_job_name.to_lowercase()));
        assert_eq!(action.step, ChainStep::Continue);
        assert_eq!(world.jobs.created(), std::slice::from_ref(&action.request));
        assert!(world.store.writes().is_empty());
    }

    #[test]
    fn a_continued_job_takes_over_the_worker_quality_of_the_job_it_continues() {
        let world = World::new(job_in(LabelingJobStatus::Stopped));
        world.store.insert(OUTPUT_URI, OUTPUT_MANIFEST);
        let quality =
            "s3://out-bucket/jobs/Animals/annotations/groundwork/worker-quality/animal.json";
        world.store.insert(quality, r#"{"version":1}"#);
        let report = world.run(ChainRequest::default(), false).unwrap();
        let RunOutcome::Created { action, .. } = report.outcome else {
            panic!("{:?}", report.outcome);
        };
        let copied = format!(
            "s3://out-bucket/jobs/{}/annotations/groundwork/worker-quality/animal.json",
            action.request.labeling_job_name
        );
        assert_eq!(
            world.store.get(&copied).as_deref(),
            Some(&br#"{"version":1}"#[..])
        );
    }

    #[test]
    fn falls_back_to_the_newest_intermediate_manifest_then_the_input() {
        let world = World::new(stopped_without_output());
        let prefix = "s3://out-bucket/jobs/Animals/manifests/intermediate/";
        world
            .store
            .insert(&format!("{prefix}2/output.manifest"), OUTPUT_MANIFEST);
        world
            .store
            .insert(&format!("{prefix}10/output.manifest"), OUTPUT_MANIFEST);
        let report = world.run(ChainRequest::default(), true).unwrap();
        let RunOutcome::WouldCreate { action } = report.outcome else {
            panic!("{:?}", report.outcome);
        };
        assert_eq!(
            action
                .request
                .input_config
                .data_source
                .s3_data_source
                .unwrap()
                .manifest_s3_uri,
            format!("{prefix}10/output.manifest")
        );

        let world = World::new(stopped_without_output());
        world.store.insert(
            "s3://in-bucket/animals/input.manifest",
            "{\"source-ref\":\"s3://bkt/1\"}\n",
        );
        let report = world.run(ChainRequest::default(), true).unwrap();
        let RunOutcome::WouldCreate { action } = report.outcome else {
            panic!("{:?}", report.outcome);
        };
        assert_eq!(
            action
                .request
                .input_config
                .data_source
                .s3_data_source
                .unwrap()
                .manifest_s3_uri,
            "s3://in-bucket/animals/input.manifest"
        );
        assert!(world.jobs.created().is_empty(), "a dry run creates nothing");
    }

    #[test]
    fn no_manifest_at_all_is_an_error_naming_the_candidates() {
        let world = World::new(stopped_without_output());
        let err = world.run(ChainRequest::default(), false).unwrap_err();
        assert!(matches!(err, RunError::NoManifest { .. }));
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("input.manifest"), "{err}");
    }

    #[test]
    fn reads_the_declared_plan_and_writes_before_creating() {
        let mut job = job_with_tags(&[(TAG_FOLLOW_UP, "s3://plans/p.json")]);
        job.labeling_job_status = LabelingJobStatus::Completed;
        let world = World::new(job);
        world.store.insert(OUTPUT_URI, OUTPUT_MANIFEST);
        world.store.insert("s3://plans/p.json", PLAN);
        let report = world.run(ChainRequest::default(), false).unwrap();
        let RunOutcome::Created { action, .. } = report.outcome else {
            panic!("{:?}", report.outcome);
        };
        let written: Vec<String> = action
            .manifest_writes
            .iter()
            .map(|w| w.uri.to_string())
            .collect();
        assert_eq!(world.store.writes(), written);
        assert_eq!(written.len(), 2, "filtered manifest and label categories");
    }

    #[test]
    fn a_missing_plan_is_a_permanent_error() {
        let mut job = job_with_tags(&[(TAG_FOLLOW_UP, "s3://plans/missing.json")]);
        job.labeling_job_status = LabelingJobStatus::Completed;
        let world = World::new(job);
        world.store.insert(OUTPUT_URI, OUTPUT_MANIFEST);
        let err = world.run(ChainRequest::default(), false).unwrap_err();
        assert!(
            matches!(
                err,
                RunError::Read {
                    what: "follow-up plan",
                    ..
                }
            ),
            "{err}"
        );
        assert!(!err.is_retryable());
    }

    #[test]
    fn an_existing_job_of_the_new_name_stops_before_any_write() {
        let mut job = job_with_tags(&[(TAG_FOLLOW_UP, "s3://plans/p.json")]);
        job.labeling_job_status = LabelingJobStatus::Completed;
        let world = World::new(job);
        world.store.insert(OUTPUT_URI, OUTPUT_MANIFEST);
        world.store.insert("s3://plans/p.json", PLAN);
        let first = world.run(ChainRequest::default(), true).unwrap();
        let RunOutcome::WouldCreate { action } = first.outcome else {
            panic!("{:?}", first.outcome);
        };
        let mut existing = job_in(LabelingJobStatus::InProgress);
        existing.labeling_job_name = action.request.labeling_job_name.to_uppercase();
        world.jobs.insert(existing);
        let again = world.run(ChainRequest::default(), false).unwrap();
        assert!(matches!(again.outcome, RunOutcome::AlreadyExists { .. }));
        assert!(world.store.writes().is_empty());
        assert!(world.jobs.created().is_empty());
    }

    #[test]
    fn skips_without_reading_anything() {
        let world = World::new(job_with_tags(&[(TAG_CHAIN, "off")]));
        let report = world.run(ChainRequest::default(), false).unwrap();
        assert!(matches!(
            report.outcome,
            RunOutcome::Skipped(SkipReason::ChainingOff { by_tag: true })
        ));
    }

    #[test]
    fn throttling_is_retryable() {
        let world = World::new(job_in(LabelingJobStatus::Stopped));
        *world.jobs.fail_with.lock().unwrap() = Some(JobsError::Throttled {
            code: "ThrottlingException".to_owned(),
            message: "slow down".to_owned(),
        });
        let err = world.run(ChainRequest::default(), false).unwrap_err();
        assert!(err.is_retryable());
    }

    #[test]
    fn clones_and_reports_duplicates() {
        let world = World::new(job_in(LabelingJobStatus::Completed));
        let first = block_on(clone_job(&world.jobs, &world.jobs, "ANIMALS", None, false)).unwrap();
        assert!(matches!(first.outcome, CloneOutcome::Created { .. }));
        let again = block_on(clone_job(&world.jobs, &world.jobs, "animals", None, false)).unwrap();
        assert_eq!(again.outcome, CloneOutcome::AlreadyExists);
        assert_eq!(again.request, first.request);
        let dry = block_on(clone_job(&world.jobs, &world.jobs, "animals", None, true)).unwrap();
        assert_eq!(dry.outcome, CloneOutcome::WouldCreate);
        assert_eq!(world.jobs.created().len(), 1);
    }
}
