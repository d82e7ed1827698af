//! `groundwork chain plan|start` and `groundwork clone`: the auto-chainer's planner for people.
//!
//! * `chain plan` is offline: given what `aws sagemaker describe-labeling-job` printed, the state-change
//!   event, and local copies of what the planner reads (the job's manifest, its follow-up plan, its
//!   staging manifest), it prints the exact CreateLabelingJob request the Lambda would send — in the
//!   API's own field names, ready for `aws sagemaker create-labeling-job --cli-input-json` — or why it
//!   would not chain. Configuration comes from the same variables as the Lambda's (`CHAIN_DEFAULT`,
//!   `MAX_CHAIN_DEPTH`, `DEFAULT_FOLLOW_UP_PLAN`, `CHAIN_WRITE_PREFIX`) or the matching flags.
//! * `chain start` runs one chain step against your AWS account, with the Lambda's code
//!   (`groundwork::chain::executor`): continue a stopped job, run a plan (`--plan`, local or `s3://`),
//!   or, with `--force`, continue a failed job once its cause is fixed — which the Lambda refuses.
//!   Running it twice is harmless: the chained job's name is derived from the source job.
//! * `clone` creates a job with a prior job's setup and its input manifest, or `--manifest`.
//!
//! Results go to standard output as JSON; notes go to standard error. Exit codes: 0 a job was (or
//! would be) created or exists already, 3 no job on purpose (the reason is printed), 2 an error.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use groundwork::S3Uri;
use groundwork::chain::executor::{
    ChainPorts, ChainRun, CloneOutcome, RunOutcome, chain_described, chain_job, clone_job,
};
use groundwork::chain::{
    ChainAction, ChainMode, ChainSettings, ManifestCandidate, Needs, PlanSource, Preparation,
    SkipReason, prepare,
};
use groundwork::labeling_job::{CreateLabelingJobRequest, LabelingJobDescription};
use groundwork::metadata::LabelingJobArn;
use groundwork::ports::{
    CreateOutcome, JobsError, LabelingJobCreator, LabelingJobDescriber, ObjectReader,
};
use groundwork_s3::S3Store;
use groundwork_sagemaker::SageMakerJobs;
use serde_json::{Value, json};

use crate::local_store::LocalStore;

/// Exit code of "no job, on purpose".
const NOT_CHAINED: u8 = 3;

/// Plan or start a chained labeling job.
#[derive(Debug, Args)]
pub(crate) struct ChainArgs {
    #[command(subcommand)]
    command: ChainCommand,
}

#[derive(Debug, Subcommand)]
enum ChainCommand {
    /// Print the CreateLabelingJob request the auto-chainer would send for an event (offline).
    Plan(PlanArgs),
    /// Chain a job in your AWS account now (continue it, or run a follow-up plan).
    Start(StartArgs),
}

/// The function-level chaining configuration, as flags or the Lambda's environment variables.
#[derive(Debug, Args)]
struct SettingsArgs {
    /// Whether Stopped/Failed jobs without a `groundwork:chain` tag are continued (`continue` or
    /// `off`; `chain plan` defaults to the Lambda's `off`, `chain start` to `continue`).
    #[arg(long, env = "CHAIN_DEFAULT")]
    chain_default: Option<ChainMode>,
    /// Most chained jobs below a root job.
    #[arg(long, env = "MAX_CHAIN_DEPTH", default_value_t = groundwork::chain::settings::DEFAULT_MAX_DEPTH)]
    max_depth: u32,
    /// Follow-up plan of Completed jobs without a `groundwork:follow-up` tag.
    #[arg(long, env = "DEFAULT_FOLLOW_UP_PLAN")]
    default_follow_up_plan: Option<S3Uri>,
    /// Where new manifests and label category files go (default: `<S3OutputPath>/groundwork-chain/`).
    #[arg(long, env = "CHAIN_WRITE_PREFIX")]
    write_prefix: Option<S3Uri>,
}

impl SettingsArgs {
    fn settings(&self, default_mode: ChainMode) -> ChainSettings {
        ChainSettings {
            default_mode: self.chain_default.unwrap_or(default_mode),
            max_depth: self.max_depth,
            default_follow_up_plan: self.default_follow_up_plan.clone(),
            write_prefix: self.write_prefix.clone(),
            // The local store keeps every key inside its folder; no further allow-list here.
            scope: groundwork::s3_scope::S3Scope::anywhere(),
        }
    }
}

#[derive(Debug, Args)]
struct PlanArgs {
    /// What `aws sagemaker describe-labeling-job --labeling-job-name NAME` printed.
    #[arg(long)]
    describe: PathBuf,
    /// The EventBridge state-change event.
    #[arg(long)]
    event: PathBuf,
    /// A local copy of the follow-up plan the job declares.
    #[arg(long)]
    plan: Option<PathBuf>,
    /// A local copy of the job's manifest (its output manifest, or its newest intermediate one).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Where that manifest is in S3 (default: the job's `OutputDatasetS3Uri`).
    #[arg(long)]
    manifest_uri: Option<S3Uri>,
    /// A local copy of the staging manifest the job declares.
    #[arg(long)]
    staging: Option<PathBuf>,
    /// Also save the objects the chainer would write to S3 in this folder.
    #[arg(long)]
    write_dir: Option<PathBuf>,
    /// A folder standing in for S3 (`s3://bucket/key` is `<store>/bucket/key`) for everything else
    /// the step reads: a top-up round's consolidation requests and earlier answers, worker quality.
    #[arg(long, default_value = "groundwork-store")]
    store: PathBuf,
    #[command(flatten)]
    settings: SettingsArgs,
}

#[derive(Debug, Args)]
struct StartArgs {
    /// The job to chain from (its name; case does not matter).
    #[arg(long)]
    job: String,
    /// A follow-up plan of your own (a local file or an s3:// URI), whatever the job's status and tags.
    #[arg(long)]
    plan: Option<String>,
    /// Chain even where the auto-chainer refuses: a failure that looks permanent, `groundwork:chain=off`,
    /// the depth limit, no progress, a Completed job without a plan.
    #[arg(long)]
    force: bool,
    /// Print what would be written and created; change nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    settings: SettingsArgs,
}

/// Create a labeling job with a prior job's setup.
#[derive(Debug, Args)]
pub(crate) struct CloneArgs {
    /// The prior job (its name).
    #[arg(long)]
    job: String,
    /// Input manifest of the clone (default: the prior job's input).
    #[arg(long)]
    manifest: Option<S3Uri>,
    /// Print the request; create nothing.
    #[arg(long)]
    dry_run: bool,
}

/// `groundwork chain …`.
pub(crate) async fn run_chain(args: ChainArgs) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let chained = match args.command {
        ChainCommand::Plan(args) => plan_offline(&args, &mut out).await?,
        ChainCommand::Start(args) => start(&args, &mut out).await?,
    };
    out.flush()?;
    Ok(exit_code(chained))
}

/// `groundwork clone …`.
pub(crate) async fn run_clone(args: CloneArgs) -> anyhow::Result<ExitCode> {
    let aws = aws_config::load_from_env().await;
    let jobs = SageMakerJobs::from_conf(&aws);
    let report = clone_job(
        &jobs,
        &jobs,
        &args.job,
        args.manifest.as_ref(),
        args.dry_run,
    )
    .await?;
    let (outcome, arn) = match &report.outcome {
        CloneOutcome::Created { arn } => ("created", Some(arn.as_str())),
        CloneOutcome::AlreadyExists => ("duplicate", None),
        CloneOutcome::WouldCreate => ("dry-run", None),
    };
    eprintln!(
        "{outcome}: {} (clone of {})",
        report.request.labeling_job_name, args.job
    );
    print_json(
        &mut std::io::stdout().lock(),
        &json!({
            "outcome": outcome,
            "job_name": report.request.labeling_job_name,
            "job_arn": arn,
            "request": report.request,
        }),
    )?;
    Ok(ExitCode::SUCCESS)
}

fn exit_code(chained: bool) -> ExitCode {
    if chained {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(NOT_CHAINED)
    }
}

fn print_json(out: &mut impl Write, value: &impl serde::Serialize) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("reading the {what} {}", path.display()))
}

/// The job an event is about, checked by the auto-chainer's own check, in its words.
fn event_job(path: &Path) -> anyhow::Result<LabelingJobArn> {
    let value: Value = serde_json::from_slice(&read(path, "event")?)
        .with_context(|| format!("{} is not JSON", path.display()))?;
    let (arn, _) = groundwork::contracts::accept_state_change(&value).map_err(|rejection| {
        anyhow!(
            "{}: {rejection}; the auto-chainer would reject it ({})",
            path.display(),
            rejection.code()
        )
    })?;
    Ok(arn)
}

/// `chain plan`: the Lambda's decision, on local files.
async fn plan_offline(args: &PlanArgs, out: &mut impl Write) -> anyhow::Result<bool> {
    let arn = event_job(&args.event)?;
    let job: LabelingJobDescription = serde_json::from_slice(&read(&args.describe, "description")?)
        .with_context(|| {
            format!(
                "{} is not DescribeLabelingJob output",
                args.describe.display()
            )
        })?;
    if !arn.name().eq_ignore_ascii_case(&job.labeling_job_name) {
        bail!(
            "the event is about labeling job `{}` but {} describes `{}`",
            arn.name(),
            args.describe.display(),
            job.labeling_job_name
        );
    }
    let settings = args.settings.settings(ChainMode::Off);
    // The Lambda's step, as a dry run.
    let run = ChainRun {
        dry_run: true,
        ..ChainRun::lambda(&settings)
    };
    let request = run.request();

    // Which objects the step reads, so that the given copies stand at their S3 locations; the step
    // itself is the auto-chainer's (`chain_described`), as a dry run over the local store.
    let needs = match prepare(&job, &settings, &request)? {
        Preparation::Skip(reason) => return not_chained(out, &reason, args.plan.is_some()),
        Preparation::Fetch(needs) => needs,
    };
    let mut store = LocalStore::new(&args.store);
    match (&needs.plan, &args.plan) {
        (Some(PlanSource::Declared(uri)), Some(path)) => {
            store = store.with_file(&uri.to_string(), path);
        }
        (Some(PlanSource::Declared(uri)), None) => {
            bail!("the job declares the follow-up plan {uri}: pass a copy with --plan")
        }
        (_, Some(_)) => eprintln!(
            "note: --plan ignored: the job declares no follow-up for a {} job",
            job.labeling_job_status
        ),
        (_, None) => {}
    }
    let manifest_uri = local_manifest_uri(args, &needs)?;
    if let Some(path) = &args.manifest {
        store = store.with_file(&manifest_uri.to_string(), path);
    }
    match (&needs.staging, &args.staging) {
        (Some(uri), Some(path)) => store = store.with_file(&uri.to_string(), path),
        (Some(uri), None) => {
            bail!("the job declares the staging manifest {uri}: pass a copy with --staging")
        }
        (None, _) => {}
    }
    let described = DescribedJob(job);
    let ports = ChainPorts {
        describer: &described,
        creator: &described,
        reader: &store,
        writer: &store,
        lister: &store,
    };
    match chain_described(ports, &described.0, run).await? {
        RunOutcome::Skipped(reason) => not_chained(out, &reason, false),
        RunOutcome::WouldCreate { action } => {
            describe_action(&action);
            if let Some(dir) = &args.write_dir {
                save_writes(dir, &action)?;
            }
            print_json(out, &action.request)?;
            Ok(true)
        }
        RunOutcome::TopUpFinished {
            manifest,
            summary,
            written,
        } => top_up_finished(
            out,
            &described.0.labeling_job_name,
            &manifest,
            &summary,
            written,
        ),
        RunOutcome::Created { .. } | RunOutcome::AlreadyExists { .. } => {
            bail!("a dry run created a job: this is a bug")
        }
    }
}

/// Says how a top-up chain ended (or, on a dry run, would end), for `chain plan` and `chain start` alike.
fn top_up_finished(
    out: &mut impl Write,
    source_job: &str,
    manifest: &S3Uri,
    summary: &groundwork::chain::top_up::TopUpSummary,
    written: bool,
) -> anyhow::Result<bool> {
    eprintln!(
        "the top-up rounds {} after round {}: {} objects, {} answers, {} still below the target",
        if written { "are over" } else { "would end" },
        summary.round,
        summary.objects,
        summary.answers,
        summary.below_target
    );
    print_json(
        out,
        &json!({
            "outcome": if written { "top-up-finished" } else { "dry-run" },
            "source_job": source_job,
            "merged_manifest": manifest.to_string(),
            "round": summary.round,
            "objects": summary.objects,
            "answers": summary.answers,
            "below_target": summary.below_target,
            "over_budget": summary.over_budget,
        }),
    )?;
    Ok(true)
}

/// The job as `--describe` gave it, standing for SageMaker in a dry run: every other name (the new
/// job's, which the step checks for a duplicate) does not exist, and nothing is created.
struct DescribedJob(LabelingJobDescription);

#[async_trait::async_trait]
impl LabelingJobDescriber for DescribedJob {
    async fn describe_labeling_job(&self, name: &str) -> Result<LabelingJobDescription, JobsError> {
        if name.eq_ignore_ascii_case(&self.0.labeling_job_name) {
            Ok(self.0.clone())
        } else {
            Err(JobsError::NotFound {
                name: name.to_owned(),
            })
        }
    }
}

#[async_trait::async_trait]
impl LabelingJobCreator for DescribedJob {
    async fn create_labeling_job(
        &self,
        request: &CreateLabelingJobRequest,
    ) -> Result<CreateOutcome, JobsError> {
        Err(JobsError::Invalid {
            code: "DryRun".to_owned(),
            message: format!(
                "`chain plan` creates no job ({})",
                request.labeling_job_name
            ),
        })
    }
}

/// Where the given manifest copy stands: the first candidate the Lambda would read, or `--manifest-uri`.
fn local_manifest_uri(args: &PlanArgs, needs: &Needs) -> anyhow::Result<S3Uri> {
    let first_object = needs.manifest.iter().find_map(|c| match c {
        ManifestCandidate::Object(uri) => Some(uri.clone()),
        ManifestCandidate::NewestIntermediate(_) => None,
    });
    let candidates = needs
        .manifest
        .iter()
        .map(|c| match c {
            ManifestCandidate::Object(uri) => uri.to_string(),
            ManifestCandidate::NewestIntermediate(prefix) => format!("{prefix}<n>/output.manifest"),
        })
        .collect::<Vec<_>>()
        .join(", then ");
    if args.manifest.is_none() {
        bail!("the planner reads the job's manifest ({candidates}): pass a copy with --manifest");
    }
    args.manifest_uri
        .clone()
        .or(first_object)
        .ok_or_else(|| anyhow!("say where the manifest is in S3 with --manifest-uri"))
}

fn not_chained(out: &mut impl Write, reason: &SkipReason, had_plan: bool) -> anyhow::Result<bool> {
    print_json(
        out,
        &json!({"outcome": "not-chained", "reason_code": reason.code(), "reason": reason.to_string()}),
    )?;
    if had_plan && matches!(reason, SkipReason::NoFollowUpDeclared) {
        eprintln!(
            "note: to plan with --plan as if the job declared it, also pass --default-follow-up-plan s3://<where it will be>"
        );
    }
    Ok(false)
}

/// A summary of the step on standard error.
fn describe_action(action: &ChainAction) {
    let c = action.counts;
    eprintln!(
        "{} {} (depth {}): {} objects, {} to label ({} appended from staging, {} filtered out by confidence)",
        action.step,
        action.request.labeling_job_name,
        action.depth,
        c.input_objects,
        c.unlabeled,
        c.appended,
        c.filtered_out
    );
    for write in &action.manifest_writes {
        eprintln!("writes {} ({} bytes)", write.uri, write.body.len());
    }
}

fn save_writes(dir: &Path, action: &ChainAction) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for write in &action.manifest_writes {
        let path = dir.join(write.uri.file_name());
        fs::write(&path, &write.body).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("saved {} as {}", write.uri, path.display());
    }
    Ok(())
}

/// `chain start`: one chain step against AWS.
async fn start(args: &StartArgs, out: &mut impl Write) -> anyhow::Result<bool> {
    let aws = aws_config::load_from_env().await;
    let jobs = SageMakerJobs::from_conf(&aws);
    let store = S3Store::from_conf(&aws);
    let supplied_plan = match &args.plan {
        None => None,
        Some(location) if location.starts_with("s3://") => {
            let uri: S3Uri = location.parse()?;
            Some(
                store
                    .get_object(&uri)
                    .await
                    .with_context(|| format!("reading the plan {uri}"))?,
            )
        }
        Some(path) => Some(read(Path::new(path), "follow-up plan")?),
    };
    let settings = args.settings.settings(ChainMode::Continue);
    let ports = ChainPorts {
        describer: &jobs,
        creator: &jobs,
        reader: &store,
        writer: &store,
        lister: &store,
    };
    let run = ChainRun {
        settings: &settings,
        force: args.force,
        supplied_plan: supplied_plan.as_deref(),
        dry_run: args.dry_run,
    };
    let report = chain_job(ports, &args.job, run).await?;
    let (outcome, arn, action) = match report.outcome {
        RunOutcome::Skipped(reason) => {
            if !args.force {
                eprintln!("note: --force overrides the auto-chainer's refusals");
            }
            return not_chained(out, &reason, false);
        }
        RunOutcome::TopUpFinished {
            manifest,
            summary,
            written,
        } => {
            return top_up_finished(
                out,
                &report.job.labeling_job_name,
                &manifest,
                &summary,
                written,
            );
        }
        RunOutcome::Created { arn, action } => ("created", Some(arn), action),
        RunOutcome::AlreadyExists { action } => ("duplicate", None, action),
        RunOutcome::WouldCreate { action } => ("dry-run", None, action),
    };
    describe_action(&action);
    print_json(
        out,
        &json!({
            "outcome": outcome,
            "source_job": report.job.labeling_job_name,
            "job_name": action.request.labeling_job_name,
            "job_arn": arn,
            "step": action.step.as_str(),
            "depth": action.depth,
            "writes": action.manifest_writes.iter().map(|w| w.uri.to_string()).collect::<Vec<_>>(),
            "request": action.request,
        }),
    )?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use groundwork::testing::DescribedJob;

    fn fixture(path: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
    }

    const DATA: &str = "shared/tests/data/chain";
    const EVENTS: &str = "functions/auto-chainer/tests/fixtures";

    fn args(event: &str) -> PlanArgs {
        PlanArgs {
            describe: fixture(&format!("{DATA}/describe-animals.json")),
            event: fixture(&format!("{EVENTS}/{event}")),
            plan: None,
            manifest: Some(fixture(&format!("{DATA}/output-animals.manifest"))),
            manifest_uri: None,
            staging: None,
            write_dir: None,
            store: PathBuf::from("/nonexistent/groundwork-store"),
            settings: SettingsArgs {
                chain_default: Some(ChainMode::Continue),
                max_depth: 5,
                default_follow_up_plan: None,
                write_prefix: None,
            },
        }
    }

    fn offline(args: &PlanArgs, out: &mut Vec<u8>) -> anyhow::Result<bool> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(plan_offline(args, out))
    }

    /// The describe fixture says Stopped; an event about a Completed job must come with a Completed
    /// description: the test kit's `Animals` job (the fixture's), completed, in `dir`.
    fn completed_copy(dir: &Path) -> PathBuf {
        let job = DescribedJob::animals().status("Completed").build();
        let path = dir.join("describe.json");
        fs::write(&path, serde_json::to_vec(&job).unwrap()).unwrap();
        path
    }

    fn run(args: &PlanArgs) -> (bool, Value) {
        let mut out = Vec::new();
        let chained = offline(args, &mut out).unwrap();
        (chained, serde_json::from_slice(&out).unwrap())
    }

    #[test]
    fn prints_the_create_request_in_api_field_names() {
        let (chained, request) = run(&args("event-stopped.json"));
        assert!(chained);
        let name = request["LabelingJobName"].as_str().unwrap();
        assert!(name.starts_with("Animals-c1-"), "{name}");
        assert_eq!(request["LabelAttributeName"], "animal");
        assert_eq!(
            request["InputConfig"]["DataSource"]["S3DataSource"]["ManifestS3Uri"],
            "s3://out-bucket/jobs/Animals/manifests/output/output.manifest"
        );
        assert_eq!(
            request["RoleArn"],
            "arn:aws:iam::111122223333:role/GroundTruthRole"
        );
        assert!(request["Tags"].as_array().unwrap().len() >= 6);
    }

    #[test]
    fn says_why_it_would_not_chain() {
        let mut off = args("event-stopped.json");
        off.settings.chain_default = None;
        let (chained, answer) = run(&off);
        assert!(!chained);
        assert_eq!(answer["reason_code"], "ChainingOff");
        assert!(answer["reason"].as_str().unwrap().contains("CHAIN_DEFAULT"));
    }

    #[test]
    fn asks_for_the_inputs_the_planner_needs() {
        let mut no_manifest = args("event-stopped.json");
        no_manifest.manifest = None;
        let err = offline(&no_manifest, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("--manifest"), "{err}");
    }

    #[test]
    fn plans_a_declared_follow_up_and_saves_its_writes() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = args("event-completed.json");
        a.settings.default_follow_up_plan = Some("s3://plans/p.json".parse().unwrap());
        a.plan = Some(fixture(&format!("{DATA}/plan-indoor-outdoor.json")));
        a.write_dir = Some(dir.path().to_path_buf());
        a.describe = completed_copy(dir.path());

        let (chained, request) = run(&a);

        assert!(chained);
        assert_eq!(request["LabelAttributeName"], "indoor-outdoor");
        let saved = fs::read_to_string(dir.path().join("input.manifest")).unwrap();
        assert_eq!(saved.lines().count(), 1);
        assert!(dir.path().join("label-categories.json").exists());
    }

    #[test]
    fn plans_a_top_up_round_from_the_consolidation_requests_in_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let requests = dir
            .path()
            .join("out-bucket/jobs/Animals/annotations/consolidated-annotation/consolidation-request/iteration-1");
        fs::create_dir_all(&requests).unwrap();
        let answer = |w: &str, l: &str| json!({"workerId": w, "annotationData": {"content": json!({"c": {"label": l}}).to_string()}});
        let payload = json!([
            {"datasetObjectId": "1", "dataObject": {"s3Uri": "s3://in-bucket/animals/2.jpg"},
             "annotations": [answer("w1", "dog"), answer("w2", "cat"), answer("w3", "dog")]}
        ]);
        fs::write(
            requests.join("2024-05-01_10:05:00.json"),
            payload.to_string(),
        )
        .unwrap();
        let plan = dir.path().join("top-up.json");
        fs::write(
            &plan,
            r#"{"Mode":"top-up","TargetConfidence":0.9,"WorkersPerRound":[3,2]}"#,
        )
        .unwrap();
        let mut a = args("event-completed.json");
        a.settings.default_follow_up_plan = Some("s3://plans/top-up.json".parse().unwrap());
        a.plan = Some(plan);
        a.store = dir.path().to_path_buf();
        a.write_dir = Some(dir.path().join("writes"));
        a.describe = completed_copy(dir.path());

        let (chained, request) = run(&a);

        assert!(chained);
        assert_eq!(request["LabelAttributeName"], "animal-top-up-2");
        assert_eq!(
            request["HumanTaskConfig"]["NumberOfHumanWorkersPerDataObject"],
            2
        );
        let input = fs::read_to_string(dir.path().join("writes/input.manifest")).unwrap();
        assert_eq!(
            input.lines().count(),
            3,
            "the unsure and the unlabeled objects"
        );
        let prior = fs::read_to_string(dir.path().join("writes/prior-answers.jsonl")).unwrap();
        assert!(
            prior.contains("animals/2.jpg") && prior.contains("w3"),
            "{prior}"
        );
    }

    #[test]
    fn rejects_an_event_about_another_job() {
        let dir = tempfile::tempdir().unwrap();
        let event = fs::read_to_string(fixture(&format!("{EVENTS}/event-stopped.json")))
            .unwrap()
            .replace("labeling-job/animals", "labeling-job/plants");
        let path = dir.path().join("event.json");
        fs::write(&path, event).unwrap();
        let mut a = args("event-stopped.json");
        a.event = path;
        let err = offline(&a, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("plants"), "{err}");
    }
}
