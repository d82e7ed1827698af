//! One consolidation batch, end to end and pure: the payload's objects (answers already fetched) in, one
//! response entry per object out, in Ground Truth's exact output format, plus what the batch taught about
//! the workers and the mask files to write.
//!
//! This is the single code path of the consolidation Lambda, `groundwork consolidate` and
//! `groundwork reconsolidate`, so the CLI prints exactly what the Lambda returns.
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

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::answers::{AnswerError, answer_task_type, infer_task_type};
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

use super::classification;
use super::driver::{Driver, ObjectResult, ParsedAnswers, Prepared, Skipped, Usable};

/// Up to this many answers per object, a worker's repeated answers are found by scanning them.
const LINEAR_DEDUP_ANSWERS: usize = 32;
use crate::task_type::{AnswerKind, TaskType};

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

/// The payload elements that share one `datasetObjectId`, in payload order.
#[derive(Default)]
struct Group<'a> {
    objects: Vec<&'a ResolvedObject>,
    bad: Vec<&'a BadPayloadObject>,
}

/// Groups the payload by `datasetObjectId`, in the order ids first appear; elements without a readable
/// id are counted, not grouped (no entry is possible for them).
fn group_by_id(objects: &[BatchObject]) -> (Vec<Group<'_>>, usize) {
    let mut groups: Vec<Group<'_>> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(objects.len());
    let mut unidentifiable = 0;
    for object in objects {
        let id = match object {
            Ok(o) => o.dataset_object_id.as_str(),
            Err(bad) => match &bad.dataset_object_id {
                Some(id) => id.as_str(),
                None => {
                    unidentifiable += 1;
                    continue;
                }
            },
        };
        let slot = *index.entry(id).or_insert_with(|| {
            groups.push(Group::default());
            groups.len() - 1
        });
        match object {
            Ok(o) => groups[slot].objects.push(o),
            Err(bad) => groups[slot].bad.push(bad),
        }
    }
    (groups, unidentifiable)
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
    let mut summary = BatchSummary::default();
    let (groups, unidentifiable) = group_by_id(objects);
    summary.unidentifiable = unidentifiable;

    let mut prepared_ok: Vec<Prepared<'_>> = Vec::with_capacity(groups.len());
    let mut parsed = ParsedAnswers::default();
    // Per entry: a prepared object, or an id whose every element was unparseable (and how many).
    let mut order: Vec<Result<usize, (&BadPayloadObject, usize)>> = Vec::new();
    for group in &groups {
        let elements = group.objects.len() + group.bad.len();
        summary.duplicate_objects += elements - 1;
        match (group.objects.as_slice(), group.bad.first()) {
            ([], Some(bad)) => order.push(Err((*bad, elements))),
            ([], None) => {}
            (objects, _) => {
                order.push(Ok(prepared_ok.len()));
                prepared_ok.push(prepare(
                    objects,
                    elements,
                    settings.limits.max_answers_per_object,
                    &mut parsed,
                ));
            }
        }
    }
    let task_type = match settings.task_type {
        Some(task) => task,
        None => {
            let task = infer_task_type(
                prepared_ok
                    .iter()
                    .flat_map(|p| p.usable.iter().map(|u| &*u.answer)),
            );
            leave_out_other_shapes(&mut prepared_ok, task);
            task
        }
    };

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
    // One driver per kind of answer, all with the same signature.
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
    let mut results = drive(&mut driver, &mut prepared_ok);
    let Driver {
        stats,
        mask_writes,
        plain_vote,
        ..
    } = driver;
    summary.plain_vote = plain_vote;

    // Shared by every entry of the batch, not copied into each.
    let shared = Shared {
        lan: Arc::from(job.label_attribute_name),
        common: Arc::new(CommonMetadata::new(task_type, job.job_name, job.now)),
    };
    let mut entries = Vec::with_capacity(order.len());
    let mut confidence_sum = 0.0;
    for slot in order {
        let elements = match slot {
            Err((bad, elements)) => {
                let id = bad.dataset_object_id.as_deref().unwrap_or_default();
                entries.push(shared.failure(id, &bad.reason, &[]));
                summary.failed += 1;
                elements
            }
            Ok(i) => {
                let p = &prepared_ok[i];
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

/// The answers of the payload elements `objects` (one id): one vote per worker, its last answer in
/// payload order, the earlier ones skipped; then each kept answer parsed.
fn prepare<'a>(
    objects: &[&'a ResolvedObject],
    elements: usize,
    max_answers: usize,
    parsed_answers: &mut ParsedAnswers<'a>,
) -> Prepared<'a> {
    let mut all: Vec<&ResolvedAnswer> = objects.iter().flat_map(|o| o.answers.iter()).collect();
    let mut skipped = Vec::new();
    if let Some(excess) = all.len().checked_sub(max_answers).filter(|&n| n > 0) {
        // One record for all of them: listing each would make the response as large as the excess.
        skipped.push(Skipped {
            worker: format!("{excess} workers"),
            reason: format!(
                "{excess} answers past this object's first {max_answers} were left out \
                 (MAX_ANSWERS_PER_OBJECT)"
            ),
        });
        all.truncate(max_answers);
    }
    // Whether answer `i` is its worker's last: a scan for the few answers an object has (no map to
    // allocate per object), a map for a hostile number of them.
    let last: Option<HashMap<&str, usize>> = (all.len() > LINEAR_DEDUP_ANSWERS).then(|| {
        let mut last = HashMap::with_capacity(all.len());
        for (i, answer) in all.iter().enumerate() {
            last.insert(&*answer.worker_id, i);
        }
        last
    });
    let is_last = |i: usize, worker: &str| match &last {
        Some(last) => last.get(worker) == Some(&i),
        None => !all[i + 1..].iter().any(|a| &*a.worker_id == worker),
    };
    let mut answers = Vec::with_capacity(all.len());
    let mut usable = Vec::with_capacity(all.len());
    for (i, answer) in all.iter().enumerate() {
        if !is_last(i, &answer.worker_id) {
            skipped.push(Skipped {
                worker: answer.worker_id.to_string(),
                reason: "this worker answered again later for this object: only a worker's last \
                         answer counts"
                    .to_owned(),
            });
            continue;
        }
        answers.push(*answer);
        let parsed = match &answer.content {
            Ok(text) => parsed_answers.parse(text),
            Err(why) => Err(AnswerError::Unavailable(why.clone())),
        };
        match parsed {
            Ok(parsed) => usable.push(Usable {
                worker: &answer.worker_id,
                answer: parsed,
            }),
            Err(e) => skipped.push(Skipped {
                worker: answer.worker_id.to_string(),
                reason: e.to_string(),
            }),
        }
    }
    Prepared {
        // `objects` is never empty: a group holds at least one element.
        object: objects[0],
        answers,
        usable,
        skipped,
        elements,
    }
}

/// With an inferred task type, the answers that look like another type are left out with a reason (the
/// type is the answers' majority; custom takes any answer).
fn leave_out_other_shapes(prepared: &mut [Prepared<'_>], task: TaskType) {
    if task.answer_kind() == AnswerKind::Custom {
        return;
    }
    for p in prepared {
        let fits = |u: &Usable<'_>| answer_task_type(&u.answer).answer_kind() == task.answer_kind();
        // Most objects have no odd answer: their list is left as it is.
        if p.usable.iter().all(fits) {
            continue;
        }
        let (keep, odd): (Vec<_>, Vec<_>) =
            std::mem::take(&mut p.usable).into_iter().partition(fits);
        p.usable = keep;
        p.skipped.extend(odd.into_iter().map(|u| Skipped {
            worker: u.worker.to_owned(),
            reason: format!(
                "this answer looks like {}, but the batch's answers are mostly {task}: left out \
                 (set TASK_TYPE to choose the task type)",
                answer_task_type(&u.answer)
            ),
        }));
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
mod tests {
    use super::*;
    use crate::contracts::parse_payload;
    use chrono::TimeZone;
    use serde_json::Map;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/aws");

    fn arn() -> crate::metadata::LabelingJobArn {
        "arn:aws:sagemaker:us-east-1:111111111111:labeling-job/Test-Job"
            .parse()
            .unwrap()
    }

    fn run(payload: &str, labels: Option<&[String]>, task: Option<TaskType>) -> BatchOutcome {
        let arn = arn();
        let job = BatchJob {
            job_name: arn.name(),
            label_attribute_name: "category",
            labels,
            now: Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap(),
            audit: None,
        };
        let objects = resolve_inline(parse_payload(payload.as_bytes()).unwrap());
        let settings = BatchSettings {
            task_type: task,
            ..BatchSettings::default()
        };
        consolidate_batch(&job, &objects, &WorkerPriors::empty(), &settings, &|id| {
            Some(format!("masks/{id}.png"))
        })
    }

    fn content(outcome: &BatchOutcome, i: usize) -> Map<String, Value> {
        outcome.entries[i].content_map()
    }

    fn answer(worker: &str, element: &str, output: Value) -> Value {
        json!({"workerId": worker, "annotationData": {"content": json!({element: output}).to_string()}})
    }

    #[test]
    fn recipe_two_worker_classification() {
        // aws-sagemaker-ground-truth-recipe tests/unit/test_annotation_consolidation_lambda.py
        let payload = r#"[
          {"datasetObjectId": "2", "dataObject": {"s3Uri": "s3://samurai-wis-test-2/datasetobjects/cat2.jpg"},
           "annotations": [
             {"workerId": "public.us-east-1.LZMJJLCU6JBGXAC4TLKLEVEJBQ", "annotationData": {"content": "{\"crowd-image-classifier\":{\"label\":\"Cat\"}}"}},
             {"workerId": "public.us-east-1.FWJCMUKABODTR5HHPNYHB22U7Q", "annotationData": {"content": "{\"crowd-image-classifier\":{\"label\":\"Cat\"}}"}}]},
          {"datasetObjectId": "1", "dataObject": {"s3Uri": "s3://samurai-wis-test-2/datasetobjects/cat1.jpg"},
           "annotations": [
             {"workerId": "public.us-east-1.LZMJJLCU6JBGXAC4TLKLEVEJBQ", "annotationData": {"content": "{\"crowd-image-classifier\":{\"label\":\"Cat\"}}"}},
             {"workerId": "public.us-east-1.FWJCMUKABODTR5HHPNYHB22U7Q", "annotationData": {"content": "{\"crowd-image-classifier\":{\"label\":\"Cat\"}}"}}]}
        ]"#;
        let labels = ["Cat".to_owned(), "Dog".to_owned()];
        let out = run(payload, Some(&labels), None);
        assert_eq!(out.task_type, TaskType::ImageClassification);
        assert_eq!(out.entries.len(), 2);
        assert_eq!(out.entries[0].dataset_object_id, "2");
        assert_eq!(out.entries[1].dataset_object_id, "1");
        let c = content(&out, 0);
        assert_eq!(c["category"], json!(0));
        let meta = c["category-metadata"].as_object().unwrap();
        assert_eq!(
            meta.keys().collect::<Vec<_>>(),
            [
                "class-name",
                "confidence",
                "type",
                "job-name",
                "human-annotated",
                "creation-date"
            ]
        );
        assert_eq!(meta["class-name"], "Cat");
        assert_eq!(meta["type"], "groundtruth/image-classification");
        assert_eq!(meta["job-name"], "labeling-job/test-job");
        assert_eq!(meta["human-annotated"], "yes");
        assert_eq!(meta["creation-date"], "2024-01-02T03:04:05.000000");
        let confidence = meta["confidence"].as_f64().unwrap();
        assert!(confidence > 0.5 && confidence <= 1.0, "{confidence}");
        assert_eq!(out.summary.labeled, 2);
    }

    #[test]
    fn a_lone_worker_gets_zero_confidence() {
        let payload = json!([{"datasetObjectId": "0", "dataObject": {"content": "hi"},
            "annotations": [answer("w1", "crowd-classifier", json!({"label": "pos"}))]}]);
        let labels = ["neg".to_owned(), "pos".to_owned()];
        let out = run(&payload.to_string(), Some(&labels), None);
        let meta = &content(&out, 0)["category-metadata"];
        assert_eq!(content(&out, 0)["category"], json!(1));
        assert_eq!(meta["confidence"], json!(0.0));
        assert_eq!(meta["type"], "groundtruth/text-classification");
    }

    #[test]
    fn nothing_is_lost() {
        let payload = json!([
            {"datasetObjectId": "a", "annotations": [
                answer("w1", "crowd-classifier", json!({"label": "pos"})),
                answer("w2", "crowd-classifier", json!({"label": "maybe"})),
                {"workerId": "w3", "annotationData": {"content": "{broken"}},
            ]},
            {"datasetObjectId": "b", "annotations": [
                {"workerId": "w1", "annotationData": {"s3Uri": "s3://bucket/answer.json"}},
                answer("w2", "crowd-classifier", json!({"nolabel": 1})),
            ]},
            {"datasetObjectId": "c", "annotations": "not a list"},
            {"annotations": []},
            {"datasetObjectId": "d", "annotations": []},
        ]);
        let labels = ["neg".to_owned(), "pos".to_owned()];
        let out = run(
            &payload.to_string(),
            Some(&labels),
            Some(TaskType::TextClassification),
        );
        let ids: Vec<_> = out
            .entries
            .iter()
            .map(|e| e.dataset_object_id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b", "c", "d"]);
        assert_eq!(out.summary.unidentifiable, 1);
        assert_eq!((out.summary.labeled, out.summary.failed), (1, 3));

        let a = content(&out, 0);
        assert_eq!(a["category"], json!(1));
        let skipped = a["category-metadata"]["skipped-answers"]
            .as_array()
            .unwrap();
        assert_eq!(skipped.len(), 2);
        assert!(
            skipped
                .iter()
                .any(|s| s["reason"].as_str().unwrap().contains("`maybe`"))
        );

        for i in 1..4 {
            let c = content(&out, i);
            assert!(!c.contains_key("category"), "no label is invented: {c:?}");
            assert!(c["category-metadata"]["failure-reason"].is_string());
        }
        assert_eq!(out.summary.skipped_answers, 4);
    }

    fn skip_reasons(c: &Map<String, Value>) -> Vec<(String, String)> {
        c["category-metadata"]["skipped-answers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| {
                        (
                            s["worker-id"].as_str().unwrap_or("").to_owned(),
                            s["reason"].as_str().unwrap_or("").to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn a_worker_answering_three_times_is_one_vote() {
        let cls = |w: &str, l: &str| answer(w, "crowd-image-classifier", json!({ "label": l }));
        let labels = ["Cat".to_owned(), "Dog".to_owned()];
        // Every task type goes through the same de-duplication: classification, and a custom task.
        for task in [None, Some(TaskType::ImageClassification)] {
            let payload = json!([{"datasetObjectId": "0", "annotations": [
                cls("mallory", "Cat"), cls("w1", "Dog"), cls("mallory", "Cat"),
                cls("w2", "Dog"), cls("mallory", "Dog")]}]);
            let out = run(&payload.to_string(), Some(&labels), task);
            let c = content(&out, 0);
            // mallory's last answer (Dog) is her one vote: three votes for Dog, none for Cat.
            assert_eq!(c["category"], json!(1), "{c:?}");
            let skipped = skip_reasons(&c);
            assert_eq!(skipped.len(), 2, "{skipped:?}");
            assert!(
                skipped
                    .iter()
                    .all(|(w, r)| w == "mallory" && r.contains("answered again")),
                "{skipped:?}"
            );
            assert_eq!(out.summary.skipped_answers, 2);
        }
        let custom = |w: &str, v: &str| answer(w, "my-form", json!({ "v": v }));
        let payload = json!([{"datasetObjectId": "0", "annotations": [
            custom("mallory", "x"), custom("mallory", "x"), custom("mallory", "x"),
            custom("w1", "y"), custom("w2", "y")]}]);
        let out = run(&payload.to_string(), None, Some(TaskType::Custom));
        let c = content(&out, 0);
        assert_eq!(c["category"], json!({"my-form": {"v": "y"}}), "{c:?}");
        assert_eq!(skip_reasons(&c).len(), 2);
    }

    #[test]
    fn answers_past_the_limit_are_left_out_as_one_record() {
        let cls = |w: &str, l: &str| answer(w, "crowd-image-classifier", json!({ "label": l }));
        let labels = ["Cat".to_owned(), "Dog".to_owned()];
        // Two Cats first, then eight Dogs past a limit of three answers.
        let mut answers = vec![cls("a", "Cat"), cls("b", "Cat"), cls("c", "Dog")];
        answers.extend((0..8).map(|i| cls(&format!("x{i}"), "Dog")));
        let payload = json!([{"datasetObjectId": "0", "annotations": answers}]);
        let objects = resolve_inline(parse_payload(payload.to_string().as_bytes()).unwrap());
        let job = BatchJob {
            job_name: "pets",
            label_attribute_name: "category",
            labels: Some(&labels),
            now: Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap(),
            audit: None,
        };
        let mut settings = BatchSettings::default();
        settings.limits.max_answers_per_object = 3;
        let out = consolidate_batch(&job, &objects, &WorkerPriors::empty(), &settings, &|_| None);
        let c = content(&out, 0);
        assert_eq!(
            c["category"],
            json!(0),
            "the first three answers decide: {c:?}"
        );
        let skipped = skip_reasons(&c);
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert_eq!(skipped[0].0, "8 workers");
        assert!(
            skipped[0]
                .1
                .contains("8 answers past this object's first 3")
        );
        // Without the limit the eight Dogs win.
        let out = run(&payload.to_string(), Some(&labels), None);
        assert_eq!(content(&out, 0)["category"], json!(1));
    }

    #[test]
    fn one_odd_answer_does_not_turn_a_batch_custom() {
        let cls = |w: &str, l: &str| answer(w, "crowd-image-classifier", json!({ "label": l }));
        let mut objects: Vec<Value> = (0..50)
            .map(|i| json!({"datasetObjectId": i.to_string(), "annotations": [cls("w1", "Cat"), cls("w2", "Cat")]}))
            .collect();
        objects[7]["annotations"]
            .as_array_mut()
            .unwrap()
            .push(answer("w3", "my-form", json!({"anything": true})));
        let labels = ["Cat".to_owned(), "Dog".to_owned()];
        let out = run(&Value::Array(objects).to_string(), Some(&labels), None);
        assert_eq!(out.task_type, TaskType::ImageClassification);
        assert_eq!(out.summary.labeled, 50);
        for i in 0..50 {
            assert_eq!(content(&out, i)["category"], json!(0), "{i}");
        }
        let skipped = skip_reasons(&content(&out, 7));
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert_eq!(skipped[0].0, "w3");
        assert!(
            skipped[0].1.contains("mostly ImageMultiClass"),
            "{skipped:?}"
        );
        assert_eq!(out.summary.skipped_answers, 1);
    }

    #[test]
    fn duplicate_dataset_object_ids_are_one_object_and_one_entry() {
        let cls = |w: &str, l: &str| answer(w, "crowd-image-classifier", json!({ "label": l }));
        let payload = json!([
            {"datasetObjectId": "7", "dataObject": {"s3Uri": "s3://b/7.jpg"}, "annotations": [cls("w1", "Dog"), cls("w2", "Dog")]},
            {"datasetObjectId": "8", "annotations": [cls("w1", "Cat"), cls("w2", "Cat")]},
            {"datasetObjectId": "7", "dataObject": {"s3Uri": "s3://b/other.jpg"}, "annotations": [cls("w3", "Dog"), cls("w2", "Cat")]},
            {"datasetObjectId": "8", "annotations": "not a list"},
        ]);
        let labels = ["Cat".to_owned(), "Dog".to_owned()];
        let out = run(&payload.to_string(), Some(&labels), None);
        let ids: Vec<_> = out
            .entries
            .iter()
            .map(|e| e.dataset_object_id.as_str())
            .collect();
        assert_eq!(
            ids,
            ["7", "8"],
            "one entry per distinct id, first-seen order"
        );
        assert_eq!(out.summary.entries, 2);
        let seven = content(&out, 0);
        assert_eq!(
            seven["category"],
            json!(1),
            "answers merged: w1, w3 Dog; w2 last said Cat"
        );
        assert_eq!(
            seven["category-metadata"]["duplicate-dataset-object-id"],
            json!(2),
            "{seven:?}"
        );
        let eight = content(&out, 1);
        assert_eq!(eight["category"], json!(0));
        assert_eq!(
            eight["category-metadata"]["duplicate-dataset-object-id"],
            json!(2)
        );
        assert_eq!(out.summary.duplicate_objects, 2);
    }

    #[test]
    fn multi_label_writes_class_and_confidence_maps() {
        let payload = json!([{"datasetObjectId": "0", "annotations": [
            answer("w1", "crowd-image-classifier-multi-select", json!({"labels": ["person", "bicycle"]})),
            answer("w2", "crowd-image-classifier-multi-select", json!({"labels": ["person"]})),
            answer("w3", "crowd-image-classifier-multi-select", json!({"labels": ["person", "bicycle"]})),
        ]}]);
        let labels = [
            "person".to_owned(),
            "bicycle".to_owned(),
            "clothing".to_owned(),
        ];
        let out = run(&payload.to_string(), Some(&labels), None);
        assert_eq!(out.task_type, TaskType::ImageMultiLabelClassification);
        let c = content(&out, 0);
        let chosen = c["category"].as_array().unwrap();
        assert!(chosen.contains(&json!(0)));
        let meta = &c["category-metadata"];
        assert_eq!(meta["class-map"]["0"], "person");
        assert!(meta["confidence-map"]["0"].as_f64().unwrap() > 0.5);
        assert_eq!(meta["type"], "groundtruth/image-classification-multilabel");
    }

    #[test]
    fn verification_labels_are_strings_with_feedback() {
        let payload = json!([{"datasetObjectId": "0", "annotations": [
            answer("w1", "crowd-classifier", json!({"label": "bad", "workerComment": "box too loose"})),
            answer("w2", "crowd-classifier", json!({"label": "bad"})),
        ]}]);
        let labels = ["good".to_owned(), "bad".to_owned()];
        let out = run(
            &payload.to_string(),
            Some(&labels),
            Some(TaskType::VerificationBoundingBox),
        );
        let c = content(&out, 0);
        assert_eq!(c["category"], json!("1"));
        assert_eq!(
            c["category-metadata"]["type"],
            "groundtruth/label-verification"
        );
        assert_eq!(
            c["category-metadata"]["worker-feedback"],
            json!([{"comment": "box too loose"}])
        );
    }

    #[test]
    fn aws_ner_custom_template_goes_through_the_custom_path() {
        let payload = std::fs::read_to_string(format!(
            "{FIXTURES}/aws_examples_ner_custom_template/consolidation_payload.json"
        ))
        .unwrap();
        let out = run(&payload, None, None);
        assert_eq!(out.task_type, TaskType::Custom);
        assert_eq!(out.entries.len(), 2);
        let c = content(&out, 0);
        assert_eq!(
            c["category"]["entities"]["0"],
            json!({"startindex": "10", "tokentext": "tyrosine"})
        );
        assert_eq!(c["category-metadata"]["type"], "groundtruth/custom");
        assert_eq!(
            c["category-metadata"]["confidence"],
            json!(0.0),
            "one worker"
        );
        let c = content(&out, 1);
        assert_eq!(c["category"]["entities"]["1"]["tokentext"], "receptor");
    }

    #[test]
    fn all_answers_mode_returns_every_worker() {
        let payload = std::fs::read_to_string(format!(
            "{FIXTURES}/aws_sagemaker_ground_truth_recipe/sample_annotation_consolidation_payload.json"
        ))
        .unwrap();
        let arn = arn();
        let job = BatchJob {
            job_name: arn.name(),
            label_attribute_name: "gt-label",
            labels: None,
            now: Utc::now(),
            audit: None,
        };
        let settings = BatchSettings {
            task_type: Some(TaskType::Custom),
            custom_mode: CustomMode::AllAnswers,
            ..BatchSettings::default()
        };
        let objects = resolve_inline(parse_payload(payload.as_bytes()).unwrap());
        let out = consolidate_batch(&job, &objects, &WorkerPriors::empty(), &settings, &|id| {
            Some(id.to_owned())
        });
        let all = &out.entries[0].content_map()["gt-label"]["annotationsFromAllWorkers"];
        // The recipe's expected response carries the same worker and content.
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{FIXTURES}/aws_sagemaker_ground_truth_recipe/sample_annotation_consolidation_payload.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            all[0]["workerId"],
            expected[0]["annotations"][0]["workerId"]
        );
        assert_eq!(
            all[0]["annotationData"]["content"],
            expected[0]["annotations"][0]["annotationData"]["content"]
        );
    }

    #[test]
    fn the_same_batch_twice_gives_the_same_response() {
        let payload = json!([
            {"datasetObjectId": "0", "annotations": [
                answer("w1", "crowd-classifier", json!({"label": "pos"})),
                answer("w2", "crowd-classifier", json!({"label": "neg"})),
                answer("w3", "crowd-classifier", json!({"label": "pos"}))]},
            {"datasetObjectId": "1", "annotations": [
                answer("w2", "crowd-classifier", json!({"label": "neg"})),
                answer("w3", "crowd-classifier", json!({"label": "neg"}))]},
        ])
        .to_string();
        let labels = ["neg".to_owned(), "pos".to_owned()];
        let a = run(&payload, Some(&labels), None);
        let b = run(&payload, Some(&labels), None);
        assert_eq!(a.entries, b.entries);
    }

    #[test]
    fn recipe_bounding_boxes_in_object_detection_format() {
        let payload = std::fs::read_to_string(format!(
            "{FIXTURES}/aws_sagemaker_ground_truth_recipe/sample_annotation_consolidation_payload.json"
        ))
        .unwrap();
        let out = run(&payload, None, None);
        assert_eq!(out.task_type, TaskType::BoundingBox);
        let c = content(&out, 0);
        let label = &c["category"];
        assert_eq!(
            label["image_size"],
            json!([{"width": 640, "height": 432, "depth": 3}])
        );
        let boxes = label["annotations"].as_array().unwrap();
        assert_eq!(boxes.len(), 2);
        let meta = &c["category-metadata"];
        assert_eq!(meta["class-map"], json!({"0": "Green", "1": "Red"}));
        assert_eq!(
            meta["objects"],
            json!([{"confidence": 0.0}, {"confidence": 0.0}]),
            "one worker"
        );
        assert_eq!(meta["type"], "groundtruth/object-detection");
        for b in boxes {
            for key in ["class_id", "left", "top", "width", "height"] {
                assert!(b[key].is_i64(), "{key} is an integer: {b}");
            }
        }
    }

    #[test]
    fn docs_named_entities_in_text_span_format() {
        // The developer guide's NER payload (contracts.md section 2.2).
        let payload = r#"[{"datasetObjectId": "1", "dataObject": {"content": "Sift 3 cups of flour into the bowl."},
          "annotations": [{"workerId": "private.us-west-2.ef7294f850a3d9d1", "annotationData": {"content":
          "{\"crowd-entity-annotation\":{\"entities\":[{\"endOffset\":4,\"label\":\"verb\",\"startOffset\":0},{\"endOffset\":6,\"label\":\"number\",\"startOffset\":5},{\"endOffset\":20,\"label\":\"object\",\"startOffset\":15},{\"endOffset\":34,\"label\":\"object\",\"startOffset\":30}]}}"}}]}]"#;
        let labels = ["verb".to_owned(), "number".to_owned(), "object".to_owned()];
        let out = run(payload, Some(&labels), None);
        assert_eq!(out.task_type, TaskType::NamedEntityRecognition);
        let c = content(&out, 0);
        let entities = c["category"]["annotations"]["entities"].as_array().unwrap();
        assert_eq!(entities.len(), 4);
        assert_eq!(
            entities[0],
            json!({"label": "verb", "startOffset": 0, "endOffset": 4})
        );
        assert_eq!(c["category-metadata"]["type"], "groundtruth/text-span");
        assert_eq!(
            c["category-metadata"]["entities"].as_array().unwrap().len(),
            4
        );
    }

    /// An 8×8 RGB PNG, white except a `#2ca02c` square from (2,2) to (5+extra,5).
    fn bird_png(extra: u32) -> String {
        use base64::Engine;
        let (w, h) = (8u32, 8u32);
        let mut pixels = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let inside = (2..=5 + extra).contains(&x) && (2..=5).contains(&y);
                pixels.extend_from_slice(if inside {
                    &[0x2c, 0xa0, 0x2c]
                } else {
                    &[0xff, 0xff, 0xff]
                });
            }
        }
        let mut out = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut out, w, h);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().unwrap();
            writer.write_image_data(&pixels).unwrap();
        }
        base64::engine::general_purpose::STANDARD.encode(out)
    }

    #[test]
    fn segmentation_masks_are_written_and_referenced() {
        let seg = |png: String| {
            json!({"inputImageProperties": {"height": 8, "width": 8},
                   "labelMappings": {"Bird": {"color": "#2ca02c"}},
                   "labeledImage": {"pngImageData": png}})
        };
        let payload = json!([{"datasetObjectId": "7", "dataObject": {"s3Uri": "s3://b/bird.jpg"}, "annotations": [
            answer("w1", "crowd-semantic-segmentation", seg(bird_png(0))),
            answer("w2", "crowd-semantic-segmentation", seg(bird_png(0))),
            answer("w3", "crowd-semantic-segmentation", seg(bird_png(1))),
        ]}]);
        let labels = ["Bird".to_owned()];
        let out = run(&payload.to_string(), Some(&labels), None);
        assert_eq!(out.task_type, TaskType::SemanticSegmentation);
        assert_eq!(out.mask_writes.len(), 1);
        assert_eq!(out.mask_writes[0].location, "masks/7.png");
        assert_eq!(&out.mask_writes[0].png[1..4], b"PNG");
        let c = content(&out, 0);
        assert_eq!(c["category"], "masks/7.png");
        let meta = &c["category-metadata"];
        assert_eq!(meta["type"], "groundtruth/semantic-segmentation");
        assert_eq!(meta["internal-color-map"]["0"]["class-name"], "BACKGROUND");
        assert_eq!(meta["internal-color-map"]["1"]["class-name"], "Bird");
        assert_eq!(meta["internal-color-map"]["1"]["hex-color"], "#2ca02c");
        let confidence = meta["internal-color-map"]["1"]["confidence"]
            .as_f64()
            .unwrap();
        assert!(confidence > 0.5, "{confidence}");
    }

    #[test]
    fn a_small_batch_does_not_decide_a_split_with_false_certainty() {
        // Ground Truth's first batches hold about ten objects. Object 9 of the demo batch got three
        // different answers from three workers: whatever the engine picks, it must not claim certainty.
        let payload = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/demo/consolidation-payload.json"
        ))
        .unwrap();
        let labels = ["cat".to_owned(), "dog".to_owned(), "bird".to_owned()];
        let out = run(&payload, Some(&labels), None);
        let confidence = |i: usize| {
            content(&out, i)["category-metadata"]["confidence"]
                .as_f64()
                .unwrap()
        };
        assert!(confidence(9) < 0.95, "three-way split: {}", confidence(9));
        assert!(
            confidence(1) > confidence(9),
            "a unanimous object is surer than a split one"
        );
    }
}
