//! One consolidation batch, end to end and pure: the payload's objects (answers already fetched) in, one
//! response entry per object out, in Ground Truth's exact output format, plus what the batch taught about
//! the workers and the mask files to write.
//!
//! This is the single code path of the consolidation Lambda, `groundwork consolidate` and
//! `groundwork reconsolidate`, so the CLI prints exactly what the Lambda returns.
//!
//! [`consolidate_batch`] takes four steps, each elsewhere but the last:
//! 1. **Parse**: the payload's elements grouped into objects, one vote per worker, each distinct answer
//!    parsed once (`prepare`).
//! 2. **Infer** the task type when it is not configured, and leave out the answers of another shape
//!    (`prepare`, by [`infer_task_type`](super::answers::infer_task_type)).
//! 3. **Dispatch** to the driver of the task type's kind of answer, one line per kind; each driver lives
//!    beside its engine and has one signature (`driver`).
//! 4. **Collect** the drivers' results into response entries, one per id, in payload order, with the
//!    skipped answers and the counts of the [`BatchSummary`].
//!
//! Nothing is lost: every distinct readable `datasetObjectId` of the payload gets exactly one entry, in
//! the order the ids first appear. An object whose answers are all unusable gets `<LAN>-metadata` with a
//! `failure-reason` and no label (so a chained job labels it again); unusable answers of an otherwise
//! fine object are left out and listed in `skipped-answers`.
//!
//! Three rules keep one odd input from outweighing the rest, for every task type:
//! - **One vote per worker per object.** A worker id that answers an object more than once counts once,
//!   with its last answer in payload order (what a later iteration of Ground Truth means); the earlier
//!   ones are listed in `skipped-answers`.
//! - **Duplicate `datasetObjectId`s are one object.** Payload elements that share an id are merged into
//!   the first one (its `dataObject`, the answers of all of them in payload order, then one vote per
//!   worker), so the response has one entry per distinct id and never two conflicting ones; the entry's
//!   metadata says `"duplicate-dataset-object-id": <elements with this id>`. An unparseable element that
//!   shares an id with a good one adds nothing but that count.
//! - **An inferred task type is the answers' majority.** Without `TASK_TYPE`, each answer's type is read
//!   from its crowd element and shape and the most common one is the batch's; answers of another shape are
//!   left out with a reason (a tie between the two most common means custom).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::boxes::BoxConfig;
use super::classification::ClassificationConfig;
use super::classification::audit::AuditMap;
use super::custom::CustomMode;
use super::segmentation::SegmentationConfig;
use super::spans::SpanConfig;
use super::worker_quality::{WorkerPriors, WorkerStats};
use crate::contracts::{
    BadPayloadObject, ConsolidationResponseEntry, LabelContent, PayloadDataObject,
};
use crate::metadata::CommonMetadata;
use crate::output::LabelBody;
use crate::task_type::{AnswerKind, TaskType};

use super::classification;
use super::driver::{Driver, ObjectResult, Prepared, Skipped};
use super::prepare::{prepare_batch, task_type_of};

/// One worker's answer, fetched: its JSON text, or why it could not be had.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedAnswer {
    /// The worker (shared by their answers in a payload).
    pub worker_id: Arc<str>,
    /// `annotationData.content` (or the object at its `s3Uri`), or why it is unavailable. Identical
    /// answers of a payload share one text.
    pub content: Result<Arc<str>, String>,
}

/// A payload object with its answers fetched.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedObject {
    /// Ground Truth's id.
    pub dataset_object_id: String,
    /// The data (`content` is the text for entity recognition).
    pub data_object: PayloadDataObject,
    /// The workers' answers.
    pub answers: Vec<ResolvedAnswer>,
    /// The object's current label under the job's LAN, when known (the CLI reads it from the manifest;
    /// adjustment jobs compare with it).
    pub prior_label: Option<Value>,
}

/// A payload element: a resolved object, or one that could not even be parsed.
pub type BatchObject = Result<ResolvedObject, BadPayloadObject>;

/// The job a batch belongs to.
#[derive(Debug, Clone)]
pub struct BatchJob<'a> {
    /// The labeling job's name (as in its ARN).
    pub job_name: &'a str,
    /// Its label attribute name (checked by the callers: `service::handle_request` refuses a request whose
    /// name breaks the rules, `reconsolidate` checks its argument).
    pub label_attribute_name: &'a str,
    /// Its labels, when known (class ids are positions in this list).
    pub labels: Option<&'a [String]>,
    /// `creation-date` of the labels.
    pub now: DateTime<Utc>,
    /// Recalibrates single-label classification (and verification) confidences: the team's audit of
    /// an earlier job ([`super::job_audit`]). Labels never change.
    pub audit: Option<&'a AuditMap>,
}

/// How to consolidate.
#[derive(Debug, Clone, Default)]
pub struct BatchSettings {
    /// The task type; inferred from the answers when `None`.
    pub task_type: Option<TaskType>,
    /// Classification engine settings.
    pub classification: ClassificationConfig,
    /// Custom task types.
    pub custom_mode: CustomMode,
    /// Bounding boxes (and their adjustment).
    pub boxes: BoxConfig,
    /// Named entities.
    pub spans: SpanConfig,
    /// Semantic segmentation (and its adjustment).
    pub segmentation: SegmentationConfig,
    /// How much one request may hold.
    pub limits: BatchLimits,
}

/// Bounds on one request, so that a hostile or mistaken payload is refused (or trimmed) with a reason
/// instead of exhausting the function.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchLimits {
    /// Payload objects (elements) per request; more is refused as a whole (`PayloadTooManyObjects`)
    /// before any consolidation.
    pub max_objects: usize,
    /// Answers per data object (over every element with its id, earlier rounds' answers included);
    /// the answers past this many, in payload order, are left out and listed as one skipped entry.
    pub max_answers_per_object: usize,
}

/// [`BatchLimits::max_objects`] by default: more objects than this cannot be answered within Lambda's
/// 6 MB response (the smallest entry, a one-character label attribute name's class label, is about
/// 200 bytes), so such a payload is refused before the work rather than after it.
pub const DEFAULT_MAX_OBJECTS: usize = 30_000;

/// [`BatchLimits::max_answers_per_object`] by default: Ground Truth asks at most 9 workers per object
/// per job; top-up rounds merge more, but never thousands.
pub const DEFAULT_MAX_ANSWERS_PER_OBJECT: usize = 1_000;

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_objects: DEFAULT_MAX_OBJECTS,
            max_answers_per_object: DEFAULT_MAX_ANSWERS_PER_OBJECT,
        }
    }
}

/// A consolidated mask to store; the entry already refers to `location`.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskWrite {
    /// The object it belongs to.
    pub dataset_object_id: String,
    /// Where the entry says it is (an S3 URI in the Lambda, a path in the CLI).
    pub location: String,
    /// The PNG bytes.
    pub png: Vec<u8>,
}

/// Counts for logs and reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchSummary {
    /// Response entries.
    pub entries: usize,
    /// Entries with a label.
    pub labeled: usize,
    /// Entries with a failure reason instead.
    pub failed: usize,
    /// Payload elements without a readable `datasetObjectId` (no entry possible).
    pub unidentifiable: usize,
    /// Answers left out.
    pub skipped_answers: usize,
    /// Payload elements merged into an earlier one with the same `datasetObjectId`.
    pub duplicate_objects: usize,
    /// Mean confidence of the labeled entries.
    pub mean_confidence: f64,
    /// The batch named too many classes for a worker model (`ClassificationConfig::max_model_cells`)
    /// and was answered by plain vote.
    pub plain_vote: bool,
}

/// What a batch produced.
#[derive(Debug, Clone)]
pub struct BatchOutcome {
    /// The task type used.
    pub task_type: TaskType,
    /// One entry per identifiable payload object, in payload order.
    pub entries: Vec<ConsolidationResponseEntry>,
    /// Masks to write before answering.
    pub mask_writes: Vec<MaskWrite>,
    /// What the batch taught about its workers.
    pub stats: WorkerStats,
    /// Counts.
    pub summary: BatchSummary,
}

/// Consolidates one batch. `mask_location` names where the mask of an object is stored (`None`: nowhere,
/// and a segmentation object then fails with the reason instead of pointing at a mask never written).
pub fn consolidate_batch(
    job: &BatchJob<'_>,
    objects: &[BatchObject],
    priors: &WorkerPriors,
    settings: &BatchSettings,
    mask_location: &dyn Fn(&str) -> Option<String>,
) -> BatchOutcome {
    // Parse: the payload's objects, one vote per worker, each distinct answer parsed once.
    let mut batch = prepare_batch(objects, settings.limits.max_answers_per_object);
    let mut summary = BatchSummary {
        unidentifiable: batch.unidentifiable,
        duplicate_objects: batch.duplicate_objects,
        ..BatchSummary::default()
    };
    // Infer: the task type, unless configured.
    let task_type = task_type_of(&mut batch.objects, settings.task_type);

    // Dispatch: one driver per kind of answer, all with the same signature.
    let mut driver = Driver {
        job,
        task_type,
        priors,
        settings,
        mask_location,
        stats: WorkerStats::new(),
        mask_writes: Vec::new(),
        plain_vote: false,
    };
    let drive: fn(&mut Driver<'_, '_>, &mut [Prepared<'_>]) -> Vec<ObjectResult> =
        match task_type.answer_kind() {
            AnswerKind::SingleLabel => classification::driver::single_label_results,
            AnswerKind::MultiLabel => classification::driver::multi_label_results,
            AnswerKind::Custom => super::custom::custom_results,
            AnswerKind::BoundingBoxes => super::boxes::box_results,
            AnswerKind::Entities => super::spans::span_results,
            AnswerKind::SegmentationMask => super::segmentation::mask_results,
            AnswerKind::Unsupported => super::driver::unsupported_results,
        };
    let mut results = drive(&mut driver, &mut batch.objects);
    let Driver {
        stats,
        mask_writes,
        plain_vote,
        ..
    } = driver;
    summary.plain_vote = plain_vote;

    // Collect: one entry per id, in payload order. Shared by every entry of the batch, not copied
    // into each.
    let shared = Shared {
        lan: Arc::from(job.label_attribute_name),
        common: Arc::new(CommonMetadata::new(task_type, job.job_name, job.now)),
    };
    let mut entries = Vec::with_capacity(batch.entries.len());
    let mut confidence_sum = 0.0;
    for slot in batch.entries {
        let elements = match slot {
            Err((bad, elements)) => {
                let id = bad.dataset_object_id.as_deref().unwrap_or_default();
                entries.push(shared.failure(id, &bad.reason, &[]));
                summary.failed += 1;
                elements
            }
            Ok(i) => {
                let p = &batch.objects[i];
                summary.skipped_answers += p.skipped.len();
                let id = &p.object.dataset_object_id;
                // Each result is used once: taken, not cloned.
                let result =
                    std::mem::replace(&mut results[i], ObjectResult::Failed(String::new()));
                match result {
                    ObjectResult::Failed(reason) => {
                        entries.push(shared.failure(id, &reason, &p.skipped));
                        summary.failed += 1;
                    }
                    ObjectResult::Labeled { body, confidence } => {
                        let content = shared.content(body, &p.skipped);
                        entries.push(ConsolidationResponseEntry::new(id.clone(), content));
                        summary.labeled += 1;
                        confidence_sum += confidence;
                    }
                }
                p.elements
            }
        };
        if elements > 1
            && let Some(entry) = entries.last_mut()
        {
            entry.consolidated_annotation.content.duplicate_elements = Some(elements);
        }
    }
    summary.entries = entries.len();
    summary.mean_confidence = if summary.labeled > 0 {
        confidence_sum / summary.labeled as f64
    } else {
        0.0
    };
    BatchOutcome {
        task_type,
        entries,
        mask_writes,
        stats,
        summary,
    }
}

/// What every entry of a batch carries: the label attribute name and the common metadata.
struct Shared {
    lan: Arc<str>,
    common: Arc<CommonMetadata>,
}

impl Shared {
    fn content(&self, body: LabelBody, skipped: &[Skipped]) -> LabelContent {
        LabelContent {
            label_attribute_name: Arc::clone(&self.lan),
            body,
            duplicate_elements: None,
            common: Arc::clone(&self.common),
            skipped_answers: skipped_answers(skipped),
        }
    }

    /// An entry without a label, saying why.
    fn failure(&self, id: &str, reason: &str, skipped: &[Skipped]) -> ConsolidationResponseEntry {
        ConsolidationResponseEntry::new(
            id,
            self.content(LabelBody::Failed(reason.to_owned()), skipped),
        )
    }
}

/// `skipped-answers`: who was left out and why.
fn skipped_answers(skipped: &[Skipped]) -> Option<Value> {
    (!skipped.is_empty()).then(|| {
        skipped
            .iter()
            .map(|s| json!({"worker-id": s.worker, "reason": s.reason}))
            .collect()
    })
}

/// Turns parsed payload objects into batch objects whose answers are all inline (`content`); an answer
/// given only as `s3Uri` is marked unavailable. The Lambda fetches those instead; the CLI and tests use
/// this.
pub fn resolve_inline(
    objects: Vec<Result<crate::contracts::PayloadObject, BadPayloadObject>>,
) -> Vec<BatchObject> {
    objects
        .into_iter()
        .map(|o| {
            o.map(|o| ResolvedObject {
                dataset_object_id: o.dataset_object_id,
                data_object: o.data_object,
                answers: o
                    .annotations
                    .into_iter()
                    .map(|a| ResolvedAnswer {
                        content: match (a.annotation_data.content, a.annotation_data.s3_uri) {
                            (Some(c), _) => Ok(c),
                            (None, Some(uri)) => {
                                Err(format!("answer is at {uri}, which was not fetched"))
                            }
                            (None, None) => {
                                Err("annotationData has neither content nor s3Uri".to_owned())
                            }
                        },
                        worker_id: a.worker_id,
                    })
                    .collect(),
                prior_label: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
