//! `groundwork reconsolidate`: re-run consolidation over a finished job's raw worker answers and write a
//! complete output manifest.
//!
//! Ground Truth keeps every answer under `annotations/worker-response/iteration-<n>/<datasetObjectId>/
//! <timestamp>.json` (`{"answers": [{"workerId", "answerContent", …}]}`), where the id is the 0-based line
//! of the input manifest. Reading them all into one batch lets the truth inference judge every worker by
//! all of their work, which Ground Truth's own per-batch consolidation cannot.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::Args;
use groundwork::consolidate::batch::{
    BatchJob, BatchSettings, ResolvedAnswer, ResolvedObject, consolidate_batch,
};
use groundwork::consolidate::classification::{ClassificationConfig, Method};
use groundwork::consolidate::worker_quality::WorkerPriors;
use groundwork::contracts::{LabelContent, PayloadDataObject, WorkerResponse, WorkerResponseFile};
use groundwork::label_categories::LabelCategoryConfig;
use groundwork::manifest::{DataSource, ManifestLine, ManifestReader, ManifestWriter};
use groundwork::{LabelAttributeName, TaskType};
use indicatif::{ProgressBar, ProgressStyle};

/// Re-run consolidation over a finished job's worker responses.
#[derive(Debug, Args)]
pub(crate) struct ReconsolidateArgs {
    /// The job's `annotations/worker-response` folder (or any folder holding `iteration-*` folders).
    #[arg(long)]
    worker_responses: PathBuf,
    /// The job's input manifest (line i is datasetObjectId i).
    #[arg(long)]
    manifest: PathBuf,
    /// The label attribute name to write.
    #[arg(long)]
    label_attribute_name: String,
    /// The task type.
    #[arg(long)]
    task_type: TaskType,
    /// Where to write the output manifest.
    #[arg(long)]
    out: PathBuf,
    /// The job's labels, comma-separated (class ids are positions).
    #[arg(long, value_delimiter = ',', conflicts_with = "label_categories")]
    labels: Option<Vec<String>>,
    /// The job's label category file.
    #[arg(long)]
    label_categories: Option<PathBuf>,
    /// The job name written in `job-name` (default: the job folder of `--worker-responses` when it is
    /// Ground Truth's `<job>/annotations/worker-response`, else the label attribute name).
    #[arg(long)]
    job_name: Option<String>,
    /// `dawid-skene` or `majority-vote`.
    #[arg(long, default_value = "dawid-skene")]
    method: Method,
    /// Folder for consolidated segmentation masks (default: `<out>.masks`).
    #[arg(long)]
    masks_dir: Option<PathBuf>,
    /// `creation-date` of the labels (RFC 3339).
    #[arg(long)]
    now: Option<DateTime<Utc>>,
    /// An audit document (`groundwork audit`): single-label confidences are recalibrated with it.
    #[arg(long)]
    audit: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// The job a worker-response folder belongs to, from Ground Truth's layout
/// `<S3OutputPath>/<job>/annotations/worker-response` (a copy keeps it).
fn job_of_worker_responses(folder: &Path) -> Option<String> {
    let mut parts = folder
        .components()
        .rev()
        .map(|c| c.as_os_str().to_string_lossy());
    let (Some(last), Some(annotations), Some(job)) = (parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    (last == "worker-response" && annotations == "annotations").then(|| job.into_owned())
}

/// Per dataset object id, per worker: the answer's JSON text, or why it is unreadable.
type AnswersByObject = BTreeMap<String, BTreeMap<String, Result<String, String>>>;

/// Every answer file under `dir`, grouped by dataset object id; a worker who answered in several
/// iterations counts once, with their latest answer.
fn read_worker_responses(dir: &Path, progress: &ProgressBar) -> anyhow::Result<AnswersByObject> {
    let mut files = Vec::new();
    collect_answer_files(dir, &mut files)?;
    files.sort();
    progress.set_length(files.len() as u64);
    progress.set_message("reading worker responses");
    let mut by_object: AnswersByObject = BTreeMap::new();
    for (iteration, object_id, path) in files {
        progress.inc(1);
        let _ = iteration;
        let parsed: Result<WorkerResponseFile, String> = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()));
        let file = match parsed {
            Ok(file) => file,
            Err(e) => {
                eprintln!("{}: unreadable ({e}); skipped", path.display());
                continue;
            }
        };
        let object = by_object.entry(object_id).or_default();
        for answer in file.answers {
            let WorkerResponse::Answer(answer) = answer else {
                continue;
            };
            let Some(worker) = answer.worker_id else {
                continue;
            };
            let content = match answer.answer_content {
                Some(c) => Ok(c.get().to_owned()),
                None => Err(format!("{}: answer has no answerContent", path.display())),
            };
            object.insert(worker, content);
        }
    }
    Ok(by_object)
}

/// `(iteration, dataset object id, file)` for every `iteration-<n>/<id>/<file>.json` under `dir`.
fn collect_answer_files(dir: &Path, out: &mut Vec<(u64, String, PathBuf)>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        match name
            .strip_prefix("iteration-")
            .and_then(|n| n.parse::<u64>().ok())
        {
            Some(iteration) => {
                for object in std::fs::read_dir(&path)? {
                    let object = object?.path();
                    let Some(id) = object
                        .file_name()
                        .and_then(|n| n.to_str())
                        .map(str::to_owned)
                    else {
                        continue;
                    };
                    if !object.is_dir() {
                        continue;
                    }
                    for file in std::fs::read_dir(&object)? {
                        let file = file?.path();
                        if file.extension().is_some_and(|e| e == "json") {
                            out.push((iteration, id.clone(), file));
                        }
                    }
                }
            }
            None => collect_answer_files(&path, out)?,
        }
    }
    Ok(())
}

fn progress_bar(quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("{msg:28} [{bar:40}] {pos}/{len}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

pub(crate) fn run(args: ReconsolidateArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let lan = LabelAttributeName::for_task(args.label_attribute_name.as_str(), args.task_type)?;
    let labels: Option<Vec<String>> = match (&args.labels, &args.label_categories) {
        (Some(l), _) => Some(l.clone()),
        (None, Some(path)) => Some(
            LabelCategoryConfig::parse(
                &std::fs::read(path).with_context(|| path.display().to_string())?,
            )
            .with_context(|| path.display().to_string())?
            .label_names(),
        ),
        _ => None,
    };
    let job_name = match &args.job_name {
        Some(name) => name.clone(),
        None => job_of_worker_responses(&args.worker_responses)
            .filter(|name| groundwork::chain::naming::is_valid_job_name(name))
            .unwrap_or_else(|| lan.to_string()),
    };
    if !groundwork::chain::naming::is_valid_job_name(&job_name) {
        bail!(
            "--job-name `{}` is not a labeling job name (1-63 letters, digits and hyphens)",
            groundwork::text::echo(&job_name)
        );
    }

    let progress = progress_bar(args.quiet);
    let answers = read_worker_responses(&args.worker_responses, &progress)?;

    let file = File::open(&args.manifest)
        .with_context(|| format!("cannot open {}", args.manifest.display()))?;
    let mut lines = Vec::new();
    let mut bad = Vec::new();
    for item in ManifestReader::new(BufReader::new(file)) {
        match item {
            Ok((_, line)) => lines.push(line),
            Err(e) => bad.push(e.to_string()),
        }
    }
    if !bad.is_empty() {
        for e in &bad {
            eprintln!("{}:{e}", args.manifest.display());
        }
        bail!("{} invalid manifest lines: nothing written", bad.len());
    }

    let objects: Vec<_> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, line)| {
            let id = i.to_string();
            let worker_answers = answers.get(&id)?;
            let data_object = match line.source() {
                DataSource::SourceRef(uri) => PayloadDataObject {
                    s3_uri: Some(uri.to_owned()),
                    content: None,
                },
                DataSource::Source(text) => PayloadDataObject {
                    s3_uri: None,
                    content: Some(text.to_owned()),
                },
            };
            Some(Ok(ResolvedObject {
                dataset_object_id: id,
                data_object,
                answers: worker_answers
                    .iter()
                    .map(|(w, c)| ResolvedAnswer {
                        worker_id: w.as_str().into(),
                        content: c.as_deref().map(Arc::from).map_err(Clone::clone),
                    })
                    .collect(),
                prior_label: line.get(lan.as_str()).cloned(),
            }))
        })
        .collect();
    let orphans = answers
        .keys()
        .filter(|id| id.parse::<usize>().map_or(true, |i| i >= lines.len()))
        .count();

    progress.set_message("consolidating");
    let masks_dir = args
        .masks_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.masks", args.out.display())));
    let audit = match &args.audit {
        Some(path) => Some(super::audit::read_map(path)?),
        None => None,
    };
    let batch_job = BatchJob {
        job_name: &job_name,
        label_attribute_name: lan.as_str(),
        labels: labels.as_deref(),
        now: args.now.unwrap_or_else(Utc::now),
        audit: audit.as_ref(),
    };
    let settings = BatchSettings {
        task_type: Some(args.task_type),
        classification: ClassificationConfig {
            method: args.method,
            ..ClassificationConfig::default()
        },
        ..BatchSettings::default()
    };
    let mask_location = |id: &str| Some(masks_dir.join(format!("{id}.png")).display().to_string());
    let outcome = consolidate_batch(
        &batch_job,
        &objects,
        &WorkerPriors::empty(),
        &settings,
        &mask_location,
    );
    for mask in &outcome.mask_writes {
        if let Some(parent) = Path::new(&mask.location).parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&mask.location, &mask.png).with_context(|| mask.location.clone())?;
    }

    progress.set_message("writing the output manifest");
    progress.set_length(lines.len() as u64);
    progress.set_position(0);
    let by_id: BTreeMap<&str, &LabelContent> = outcome
        .entries
        .iter()
        .map(|e| {
            (
                e.dataset_object_id.as_str(),
                &e.consolidated_annotation.content,
            )
        })
        .collect();
    let file =
        File::create(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut writer = ManifestWriter::new(BufWriter::new(file));
    let mut failed = Vec::new();
    for (i, line) in lines.into_iter().enumerate() {
        progress.inc(1);
        let line = match by_id.get(i.to_string().as_str()) {
            // A failed object keeps its line as it was, rather than losing an earlier label.
            Some(content) if content.has_label() => with_label(line, content),
            Some(_) => {
                failed.push(i);
                line
            }
            None => line,
        };
        writer.write_line(&line)?;
    }
    writer.into_inner()?;
    progress.finish_and_clear();

    report(out, &outcome, orphans, &failed)?;
    Ok(ExitCode::SUCCESS)
}

fn with_label(mut line: ManifestLine, content: &LabelContent) -> ManifestLine {
    for (key, value) in content.to_map() {
        line.insert(key, value);
    }
    line
}

fn report(
    out: &mut dyn Write,
    outcome: &groundwork::consolidate::batch::BatchOutcome,
    orphans: usize,
    failed: &[usize],
) -> anyhow::Result<()> {
    let s = &outcome.summary;
    writeln!(out, "objects with answers: {}", s.entries)?;
    writeln!(
        out,
        "labeled: {}  failed (line kept as it was): {}",
        s.labeled, s.failed
    )?;
    if !failed.is_empty() {
        let shown: Vec<String> = failed
            .iter()
            .take(10)
            .map(|i| (i + 1).to_string())
            .collect();
        writeln!(
            out,
            "  failed lines: {}{}",
            shown.join(", "),
            if failed.len() > 10 { ", …" } else { "" }
        )?;
    }
    if orphans > 0 {
        writeln!(out, "answers for objects not in the manifest: {orphans}")?;
    }
    writeln!(out, "mean confidence: {:.3}", s.mean_confidence)?;
    let mut per_class: BTreeMap<String, usize> = BTreeMap::new();
    for entry in &outcome.entries {
        for name in entry.consolidated_annotation.content.body.class_names() {
            *per_class.entry(name.to_owned()).or_default() += 1;
        }
    }
    if !per_class.is_empty() {
        writeln!(out, "labels per class:")?;
        for (class, n) in &per_class {
            writeln!(out, "  {class}: {n}")?;
        }
    }
    let priors = WorkerPriors::from_stats(&outcome.stats);
    let stats = &outcome.stats;
    let ids: std::collections::BTreeSet<&String> = stats
        .single_label
        .keys()
        .chain(stats.multi_label.keys())
        .chain(stats.agreement.keys())
        .collect();
    let mut workers: Vec<(String, f64)> = ids
        .into_iter()
        .filter_map(|w| priors.reliability(w).map(|r| (w.clone(), r)))
        .collect();
    workers.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    if !workers.is_empty() {
        writeln!(
            out,
            "least reliable workers (estimated probability of a right answer):"
        )?;
        for (worker, r) in workers.iter().take(5) {
            writeln!(out, "  {worker}: {r:.2}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_name_comes_from_ground_truths_folder_layout() {
        let of = |p: &str| job_of_worker_responses(Path::new(p));
        assert_eq!(
            of("out/Animals-c1-1f0c9a3e/annotations/worker-response").as_deref(),
            Some("Animals-c1-1f0c9a3e")
        );
        assert_eq!(
            of("/copies/x/annotations/worker-response/").as_deref(),
            Some("x")
        );
        assert_eq!(of("responses"), None);
        assert_eq!(of("x/worker-response"), None);
    }
}
