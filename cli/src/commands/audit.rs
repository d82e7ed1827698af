//! `groundwork audit`: a reviewer's verdicts on a job's labels, as the audit document the
//! consolidation Lambda reads (`<S3OutputPath>/groundwork/audit/<LAN>.json`).
//!
//! The team draws a random sample of at least 50 objects of a finished job's output manifest, a
//! reviewer writes the right class of each (`task,label`, the task being the line's `source-ref` or
//! `source`), and this command joins the two into verdicts, fits the map to check it, and writes the
//! document. It never changes a label; it says how often labels of each confidence are right.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use groundwork::consolidate::classification::audit::{AuditDocument, AuditMap};
use groundwork::consolidate::classification::read_gold_csv;
use groundwork::consolidate::job_audit::AUDIT_FOLDER;

/// Build an audit document from an output manifest and a reviewer's verdicts.
#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// The audited job's output manifest (`<S3OutputPath>/<job>/manifests/output/output.manifest`).
    #[arg(long)]
    manifest: PathBuf,
    /// The label attribute name whose labels were audited.
    #[arg(long)]
    label_attribute_name: String,
    /// The reviewer's `task,label` CSV: the object's `source-ref` (or `source`) and its right class name.
    #[arg(long)]
    audited: PathBuf,
    /// Where to write the document (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Recorded as the document's `Source` (default: the manifest's path).
    #[arg(long)]
    source: Option<String>,
}

/// The map of the audit document at `path` (for `consolidate --audit` and `reconsolidate --audit`).
pub(crate) fn read_map(path: &Path) -> anyhow::Result<AuditMap> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    AuditDocument::map_of(&bytes).with_context(|| path.display().to_string())
}

pub(crate) fn run(args: AuditArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let manifest = std::fs::read_to_string(&args.manifest)
        .with_context(|| format!("cannot read {}", args.manifest.display()))?;
    let file = std::fs::File::open(&args.audited)
        .with_context(|| format!("cannot open {}", args.audited.display()))?;
    let rows =
        read_gold_csv(BufReader::new(file)).with_context(|| args.audited.display().to_string())?;
    let mut audited: HashMap<String, String> = HashMap::with_capacity(rows.len());
    for (task, label) in rows {
        if let Some(earlier) = audited.insert(task.clone(), label.clone())
            && earlier != label
        {
            bail!(
                "{}: {task} is audited twice, as `{earlier}` and as `{label}`",
                args.audited.display()
            );
        }
    }
    let (mut document, join) =
        AuditDocument::from_output_manifest(&manifest, &args.label_attribute_name, &audited)
            .with_context(|| args.manifest.display().to_string())?;
    document.source = Some(
        args.source
            .clone()
            .unwrap_or_else(|| args.manifest.display().to_string()),
    );
    let map = document.map().with_context(|| {
        format!(
            "{} joined with {}",
            args.manifest.display(),
            args.audited.display()
        )
    })?;
    let right = document.verdicts.iter().filter(|v| v.correct).count();
    eprintln!(
        "{} audited labels, {right} right; not in the manifest {}, not labeled {}, repeated lines {}",
        document.verdicts.len(),
        join.missing,
        join.unlabeled,
        join.repeated
    );
    eprintln!(
        "confidence map: p = sigmoid({:.4} * logit(c) + {:.4}); 0.99 -> {:.3}, 0.9 -> {:.3}, 0.7 -> {:.3}{}",
        map.slope,
        map.intercept,
        map.apply(0.99),
        map.apply(0.9),
        map.apply(0.7),
        map.lone_answer
            .map(|p| format!("; labels from one answer -> {p:.3}"))
            .unwrap_or_default()
    );
    eprintln!(
        "put it at <S3OutputPath>/{AUDIT_FOLDER}/{}.json for later jobs to use",
        args.label_attribute_name
    );
    let bytes = document.to_json_vec();
    match &args.out {
        Some(path) => std::fs::write(path, &bytes)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            out.write_all(&bytes)?;
            writeln!(out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
