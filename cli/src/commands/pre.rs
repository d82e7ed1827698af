//! `groundwork pre --event FILE`: the pre-human-task Lambda's logic on local events.
//!
//! The job context comes from flags (what the Lambda reads from its environment) or from a saved
//! `aws sagemaker describe-labeling-job` output; nothing is fetched from AWS.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use groundwork::contracts::PreHumanTaskRequest;
use groundwork::label_categories::LabelCategoryConfig;
use groundwork::labeling_job::LabelingJobDescription;
use groundwork::pre_annotation::{JobContext, pre_annotate};
use groundwork::{LabelAttributeName, TaskType};

/// Run pre-annotation on local events.
#[derive(Debug, Args)]
pub(crate) struct PreArgs {
    /// A pre-annotation event (JSON); repeat for several.
    #[arg(long = "event", required = true)]
    events: Vec<PathBuf>,
    /// The job's label attribute name (objects labeled under it are skipped).
    #[arg(long)]
    label_attribute_name: Option<String>,
    /// The job's task type (e.g. BoundingBox, ImageMultiClass).
    #[arg(long)]
    task_type: Option<TaskType>,
    /// The job's labels, comma-separated.
    #[arg(long, value_delimiter = ',', conflicts_with = "label_categories")]
    labels: Option<Vec<String>>,
    /// A label category configuration file.
    #[arg(long)]
    label_categories: Option<PathBuf>,
    /// A saved DescribeLabelingJob output (LAN and task type are read from it).
    #[arg(long)]
    describe: Option<PathBuf>,
}

fn read(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn job_context(args: &PreArgs) -> anyhow::Result<JobContext> {
    let mut context = JobContext::default();
    if let Some(path) = &args.describe {
        let description: LabelingJobDescription = serde_json::from_slice(&read(path)?)
            .with_context(|| format!("{} is not a DescribeLabelingJob output", path.display()))?;
        context.task_type = Some(description.task_type());
        context.label_attribute_name = description
            .label_attribute_name
            .map(LabelAttributeName::new)
            .transpose()?;
    }
    if let Some(task) = args.task_type {
        context.task_type = Some(task);
    }
    if let Some(lan) = &args.label_attribute_name {
        context.label_attribute_name = Some(match context.task_type {
            Some(task) => LabelAttributeName::for_task(lan.as_str(), task)?,
            None => LabelAttributeName::new(lan.as_str())?,
        });
    }
    context.labels = match (&args.labels, &args.label_categories) {
        (Some(labels), _) => Some(labels.clone()),
        (None, Some(path)) => Some(
            LabelCategoryConfig::parse(&read(path)?)
                .with_context(|| path.display().to_string())?
                .label_names(),
        ),
        (None, None) => None,
    };
    Ok(context)
}

pub(crate) fn run(args: PreArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let context = job_context(&args)?;
    let mut status = ExitCode::SUCCESS;
    for path in &args.events {
        let request: PreHumanTaskRequest = serde_json::from_slice(&read(path)?)
            .with_context(|| format!("{} is not a pre-annotation event", path.display()))?;
        match pre_annotate(&request, &context) {
            Ok(response) => writeln!(out, "{}", serde_json::to_string_pretty(&response)?)?,
            Err(error) => {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "errorType": error.error_type(),
                        "errorMessage": error.to_string(),
                    }))?
                )?;
                status = ExitCode::FAILURE;
            }
        }
    }
    Ok(status)
}
