//! `groundwork consolidate`: the consolidation Lambda on local files, or truth inference on a CSV.
//!
//! With `--request` and `--payload` it runs the Lambda's own code path (`consolidate::service`) over a
//! local folder standing in for S3, and prints exactly the response the Lambda would return. With
//! `--labels` it reads `task,worker,label` rows and writes `task,label,confidence`, so the same file can be
//! fed to crowd-kit side by side.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::Args;
use groundwork::TaskType;
use groundwork::consolidate::batch::{
    BatchLimits, BatchSettings, DEFAULT_MAX_ANSWERS_PER_OBJECT, DEFAULT_MAX_OBJECTS,
};
use groundwork::consolidate::classification::audit::AuditMap;
use groundwork::consolidate::classification::{
    ClassificationConfig, Method, consolidate_label_table, read_gold_csv, read_labels_csv,
};
use groundwork::consolidate::custom::CustomMode;
use groundwork::consolidate::service::{Ports, QualityReport, handle_request};
use groundwork::consolidate::worker_quality::WorkerPriors;
use groundwork::contracts::ConsolidationRequest;
use groundwork::metadata::{Clock, FixedClock, SystemClock};

use crate::local_store::LocalStore;

/// Consolidate workers' answers.
#[derive(Debug, Args)]
pub(crate) struct ConsolidateArgs {
    /// A consolidation request (the Lambda's event).
    #[arg(long, requires = "payload", conflicts_with = "labels")]
    request: Option<PathBuf>,
    /// The payload file the request's `payload.s3Uri` points at.
    #[arg(long)]
    payload: Option<PathBuf>,
    /// A folder standing in for S3: `s3://bucket/key` is `<store>/bucket/key`. Answers stored as
    /// `s3Uri` are read from it and consolidated masks written to it.
    #[arg(long, default_value = "groundwork-store")]
    store: PathBuf,
    /// Keep worker quality across runs in the store, as the Lambda does in S3.
    #[arg(long)]
    worker_quality: bool,
    /// Task type (inferred from the answers when absent).
    #[arg(long)]
    task_type: Option<TaskType>,
    /// `dawid-skene` or `majority-vote`.
    #[arg(long, default_value = "dawid-skene")]
    method: Method,
    /// Custom task types: `most-common` or `all-answers`.
    #[arg(long, default_value = "most-common")]
    custom_mode: CustomMode,
    /// `creation-date` of the labels (RFC 3339), for reproducible output.
    #[arg(long)]
    now: Option<DateTime<Utc>>,
    /// A `task,worker,label` CSV file to consolidate instead of a request.
    #[arg(long, conflicts_with_all = ["request", "payload"])]
    labels: Option<PathBuf>,
    /// Where to write the `task,label,confidence` CSV (standard output when absent).
    #[arg(long, requires = "labels")]
    out: Option<PathBuf>,
    /// A `task,label` CSV of audited labels (at least 50 objects checked by a reviewer): the confidence
    /// is recalibrated on them so that it estimates how often a label is right. Labels are unchanged.
    #[arg(long, requires = "labels")]
    audited: Option<PathBuf>,
    /// An audit document of an earlier job of the same kind (`groundwork audit`): the confidence is
    /// recalibrated with it, as the Lambda does with `<S3OutputPath>/groundwork/audit/<LAN>.json`.
    #[arg(long, requires = "labels", conflicts_with = "audited")]
    audit: Option<PathBuf>,
    /// A payload with more objects is refused, as the Lambda does (`MAX_PAYLOAD_OBJECTS`).
    #[arg(long, default_value_t = DEFAULT_MAX_OBJECTS, conflicts_with = "labels")]
    max_objects: usize,
    /// An object's answers past this many are left out, as the Lambda does (`MAX_ANSWERS_PER_OBJECT`).
    #[arg(long, default_value_t = DEFAULT_MAX_ANSWERS_PER_OBJECT, conflicts_with = "labels")]
    max_answers_per_object: usize,
}

pub(crate) async fn run(args: ConsolidateArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    if let Some(labels) = &args.labels {
        return run_csv(&args, labels, out);
    }
    let (Some(request_path), Some(payload_path)) = (&args.request, &args.payload) else {
        bail!("give --request and --payload, or --labels");
    };
    let request: ConsolidationRequest = serde_json::from_slice(
        &std::fs::read(request_path)
            .with_context(|| format!("cannot read {}", request_path.display()))?,
    )
    .with_context(|| format!("{} is not a consolidation request", request_path.display()))?;
    let mut store = LocalStore::new(&args.store);
    if let Some(uri) = &request.payload.s3_uri {
        store = store.with_file(uri, payload_path);
    }
    let settings = BatchSettings {
        task_type: args.task_type,
        classification: ClassificationConfig {
            method: args.method,
            ..ClassificationConfig::default()
        },
        custom_mode: args.custom_mode,
        limits: BatchLimits {
            max_objects: args.max_objects,
            max_answers_per_object: args.max_answers_per_object,
        },
        ..BatchSettings::default()
    };
    let clock: Box<dyn Clock> = match args.now {
        Some(t) => Box::new(FixedClock(t)),
        None => Box::new(SystemClock),
    };
    let prior_answers = groundwork::consolidate::prior_answers::PriorAnswersCache::new();
    let audit = groundwork::consolidate::job_audit::AuditCache::new();
    let ports = Ports {
        reader: &store,
        writer: &store,
        quality: args.worker_quality.then_some(&store as _),
        prior_answers: Some(&prior_answers),
        audit: Some(&audit),
        scope: &groundwork::s3_scope::S3Scope::anywhere(),
    };
    match handle_request(&request, ports, &settings, clock.as_ref()).await {
        Ok(outcome) => {
            writeln!(out, "{}", serde_json::to_string_pretty(&outcome.entries)?)?;
            let s = &outcome.batch.summary;
            eprintln!(
                "{} objects ({} labeled, {} failed), task type {}, mean confidence {:.2}",
                s.entries, s.labeled, s.failed, outcome.batch.task_type, s.mean_confidence
            );
            if s.plain_vote {
                eprintln!(
                    "note: the batch names too many classes for a worker model (MAX_MODEL_CELLS): answered by plain vote"
                );
            }
            for mask in &outcome.batch.mask_writes {
                if let Ok(uri) = mask.location.parse() {
                    eprintln!(
                        "mask {} written to {}",
                        mask.location,
                        store.path_of(&uri).display()
                    );
                }
            }
            if let QualityReport::Failed { reason } = &outcome.quality {
                eprintln!("worker quality not kept: {reason}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "errorType": error.error_type(),
                    "errorMessage": error.to_string(),
                }))?
            )?;
            Ok(ExitCode::FAILURE)
        }
    }
}

fn run_csv(
    args: &ConsolidateArgs,
    labels: &PathBuf,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let file = File::open(labels).with_context(|| format!("cannot open {}", labels.display()))?;
    let table =
        read_labels_csv(BufReader::new(file)).with_context(|| labels.display().to_string())?;
    let config = ClassificationConfig {
        method: args.method,
        ..ClassificationConfig::default()
    };
    let outcome = consolidate_label_table(&table, &WorkerPriors::empty(), &config);
    let audit = match &args.audited {
        Some(path) => {
            let file =
                File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            let verdicts =
                read_gold_csv(BufReader::new(file)).with_context(|| path.display().to_string())?;
            let map = AuditMap::fit_outcome(&outcome, &table.gold_classes(&verdicts))
                .with_context(|| path.display().to_string())?;
            eprintln!(
                "confidence recalibrated on {} audited objects: p = sigmoid({:.4} * logit(c) + {:.4})",
                map.audited, map.slope, map.intercept
            );
            Some(map)
        }
        None => match &args.audit {
            Some(path) => Some(super::audit::read_map(path)?),
            None => None,
        },
    };
    let confidence = |c: f64| audit.map_or(c, |map| map.apply(c));
    // Quoted where a task id or a label needs it (a comma, a quote), as the reader expects. One
    // confidence buffer for every row.
    let write = |w: &mut dyn Write| -> Result<(), csv::Error> {
        let mut csv = csv::Writer::from_writer(w);
        csv.write_record(["task", "label", "confidence"])?;
        let mut text = String::new();
        for (task, estimate) in table.tasks.iter().zip(&outcome.items) {
            if let Some(class) = estimate.label {
                text.clear();
                std::fmt::Write::write_fmt(
                    &mut text,
                    format_args!("{:.6}", confidence(estimate.confidence)),
                )
                .map_err(|_| std::io::Error::other("formatting a confidence"))?;
                csv.write_record([task.as_str(), table.classes[class].as_str(), &text])?;
            }
        }
        csv.flush()?;
        Ok(())
    };
    match &args.out {
        Some(path) => {
            let mut file = BufWriter::new(
                File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
            );
            write(&mut file)?;
        }
        None => write(out)?,
    }
    Ok(ExitCode::SUCCESS)
}
