//! The classification engines' driver: a batch's prepared answers to class votes (the job's classes, or
//! the sorted labels seen), the engine run, and its estimates to typed labels.

use std::sync::Arc;

use crate::TaskType;
use crate::metadata::round_confidence;
use crate::output::{ClassConfidence, LabelBody};

use super::super::batch::BatchJob;
use super::super::driver::{Driver, ObjectResult, Prepared, Skipped, Usable};
use super::super::worker_quality::{WorkerPriors, WorkerStats};
use super::{
    MultiLabelItem, MultiLabelOutcome, SingleLabelItem, SingleLabelOutcome,
    consolidate_multi_label, consolidate_single_label,
};

/// The class list: the job's labels, or (without a label file) the labels the batch used, sorted.
fn class_names(job: &BatchJob<'_>, seen: impl Iterator<Item = String>) -> (Vec<String>, bool) {
    let labels = job.labels.unwrap_or(&[]).to_vec();
    let from_job = !labels.is_empty();
    (
        crate::consolidate::job_or_seen_labels(labels, seen),
        from_job,
    )
}

/// An engine's outcome that carries what the batch taught about its workers.
pub(crate) trait TaughtStats {
    /// The batch's worker statistics.
    fn stats(&self) -> &WorkerStats;
}

impl TaughtStats for SingleLabelOutcome {
    fn stats(&self) -> &WorkerStats {
        &self.stats
    }
}

impl TaughtStats for MultiLabelOutcome {
    fn stats(&self) -> &WorkerStats {
        &self.stats
    }
}

/// Runs an engine with the job's worker history when the class list is the job's own, and records
/// what the batch taught likewise: class ids made up from one batch's labels mean nothing in another.
fn with_job_history<O: TaughtStats>(
    d: &mut Driver<'_, '_>,
    stable: bool,
    run: impl FnOnce(&WorkerPriors) -> O,
) -> O {
    let empty = WorkerPriors::empty();
    let outcome = run(if stable { d.priors } else { &empty });
    if stable {
        d.stats.absorb(outcome.stats());
    }
    outcome
}

/// A usable answer's class name and comment, or why it has none: read where it is needed, not stored
/// per answer.
fn single_label<'u>(
    u: &'u Usable<'_>,
    task_type: TaskType,
) -> Result<(&'u str, Option<&'u str>), String> {
    let element = u.answer.element_for(task_type).map_err(|e| e.to_string())?;
    let label = element
        .shape
        .label
        .as_deref()
        .ok_or_else(|| "answer has no label".to_owned())?;
    Ok((label, element.shape.comment.as_deref()))
}

/// A usable answer's class names (multi-label), or why it has none: read where needed, not stored.
fn multi_labels<'u>(u: &'u Usable<'_>) -> Result<Vec<&'u str>, String> {
    let element = u
        .answer
        .element_for(TaskType::TextMultiLabelClassification)
        .map_err(|e| e.to_string())?;
    element
        .shape
        .labels
        .as_ref()
        .map(|labels| labels.iter().map(AsRef::as_ref).collect())
        .ok_or_else(|| "answer has no labels".to_owned())
}

/// The batch's driver for single-label classification and verification: each usable answer's class
/// as a vote, the engine run (with the job's worker history when the class list is the job's), and
/// each estimate as a typed label (its confidence recalibrated by the job's audit, if any).
pub(crate) fn single_label_results(
    d: &mut Driver<'_, '_>,
    prepared: &mut [Prepared<'_>],
) -> Vec<ObjectResult> {
    let (job, task_type, settings) = (d.job, d.task_type, d.settings);
    let (classes, stable) = class_names(
        job,
        prepared
            .iter()
            .flat_map(|p| p.usable.iter())
            .filter_map(|u| single_label(u, task_type).ok().map(|(l, _)| l.to_owned())),
    );
    let mut items = Vec::with_capacity(prepared.len());
    let mut comments: Vec<Vec<&str>> = Vec::with_capacity(prepared.len());
    // Answers left out, per object: recorded once the borrowed answers are no longer needed.
    let mut skips: Vec<Vec<Skipped>> = Vec::with_capacity(prepared.len());
    for p in prepared.iter() {
        let mut votes = Vec::with_capacity(p.usable.len());
        let mut object_comments = Vec::new();
        let mut object_skips = Vec::new();
        for u in &p.usable {
            match single_label(u, task_type) {
                Ok((name, comment)) => match classes.iter().position(|c| c == name) {
                    Some(class) => {
                        votes.push((u.worker, class));
                        object_comments.extend(comment);
                    }
                    None => object_skips.push(Skipped {
                        worker: u.worker.to_owned(),
                        reason: format!("label `{name}` is not one of the job's labels"),
                    }),
                },
                Err(reason) => object_skips.push(Skipped {
                    worker: u.worker.to_owned(),
                    reason,
                }),
            }
        }
        items.push(SingleLabelItem { votes });
        comments.push(object_comments);
        skips.push(object_skips);
    }
    let outcome = with_job_history(d, stable, |priors| {
        consolidate_single_label(classes.len(), &items, priors, &settings.classification)
    });
    // Each class name once, shared by the labels that name it.
    let names: Vec<Arc<str>> = classes.iter().map(|c| Arc::from(c.as_str())).collect();
    let results = outcome
        .items
        .iter()
        .zip(&comments)
        .map(|(estimate, comments)| match estimate.label {
            None => ObjectResult::Failed("no usable answer".to_owned()),
            Some(class) => {
                let confidence = round_confidence(
                    job.audit
                        .map_or(estimate.confidence, |map| map.apply(estimate.confidence)),
                );
                let class = ClassConfidence {
                    class,
                    name: Arc::clone(&names[class]),
                    confidence,
                };
                // Verification labels are written as strings; classification labels as integers.
                let body = if task_type.is_verification() {
                    LabelBody::Verification {
                        class,
                        feedback: comments.iter().map(|c| (*c).to_owned()).collect(),
                    }
                } else {
                    LabelBody::Class(class)
                };
                ObjectResult::Labeled { body, confidence }
            }
        })
        .collect();
    for (p, object_skips) in prepared.iter_mut().zip(skips) {
        p.skipped.extend(object_skips);
    }
    d.plain_vote = outcome.plain_vote;
    results
}

/// The batch's driver for multi-label classification: each usable answer's classes as votes, one
/// engine run per class, and each object's classes as a typed multi-label.
pub(crate) fn multi_label_results(
    d: &mut Driver<'_, '_>,
    prepared: &mut [Prepared<'_>],
) -> Vec<ObjectResult> {
    let (job, settings) = (d.job, d.settings);
    let (classes, stable) = class_names(
        job,
        prepared
            .iter()
            .flat_map(|p| p.usable.iter())
            .filter_map(|u| multi_labels(u).ok())
            .flatten()
            .map(str::to_owned),
    );
    let mut items = Vec::with_capacity(prepared.len());
    let mut skips: Vec<Vec<Skipped>> = Vec::with_capacity(prepared.len());
    for p in prepared.iter() {
        let mut votes = Vec::with_capacity(p.usable.len());
        let mut object_skips = Vec::new();
        for u in &p.usable {
            match multi_labels(u) {
                Ok(names) => {
                    if let Some(name) = names.iter().find(|n| !classes.iter().any(|c| c == *n)) {
                        object_skips.push(Skipped {
                            worker: u.worker.to_owned(),
                            reason: format!("label `{name}` is not one of the job's labels"),
                        });
                        continue;
                    }
                    let ids = names
                        .iter()
                        .filter_map(|n| classes.iter().position(|c| c == n))
                        .collect();
                    votes.push((u.worker, ids));
                }
                Err(reason) => object_skips.push(Skipped {
                    worker: u.worker.to_owned(),
                    reason,
                }),
            }
        }
        items.push(MultiLabelItem { votes });
        skips.push(object_skips);
    }
    let outcome = with_job_history(d, stable, |priors| {
        consolidate_multi_label(classes.len(), &items, priors, &settings.classification)
    });
    let names: Vec<Arc<str>> = classes.iter().map(|c| Arc::from(c.as_str())).collect();
    let results = outcome
        .items
        .iter()
        .zip(&items)
        .map(|(estimate, item)| {
            if item.votes.is_empty() {
                return ObjectResult::Failed("no usable answer".to_owned());
            }
            let labels = estimate
                .classes
                .iter()
                .zip(&estimate.confidences)
                .map(|(class, confidence)| ClassConfidence {
                    class: *class,
                    name: Arc::clone(&names[*class]),
                    confidence: round_confidence(*confidence),
                })
                .collect();
            let mean = if estimate.confidences.is_empty() {
                0.0
            } else {
                estimate.confidences.iter().sum::<f64>() / estimate.confidences.len() as f64
            };
            ObjectResult::Labeled {
                body: LabelBody::MultiLabel(labels),
                confidence: round_confidence(mean),
            }
        })
        .collect();
    for (p, object_skips) in prepared.iter_mut().zip(skips) {
        p.skipped.extend(object_skips);
    }
    d.plain_vote = outcome.plain_vote;
    results
}
