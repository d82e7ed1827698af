//! A batch's answers made ready for the engines, the first two steps of
//! [`consolidate_batch`](super::batch::consolidate_batch): the payload's elements grouped into objects
//! by `datasetObjectId`, one vote per worker (at most
//! [`BatchLimits::max_answers_per_object`](super::batch::BatchLimits::max_answers_per_object) answers
//! an object), each distinct answer parsed once ([`ParsedAnswers`]), and the task-type check (an
//! inferred type is the answers' majority; answers of another shape are left out). The rules are the
//! batch's, stated in its docs.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use super::answers::{Answer, AnswerError, answer_task_type, infer_task_type};
use super::batch::{BatchObject, ResolvedAnswer, ResolvedObject};
use super::driver::{Prepared, Skipped, Usable};
use crate::contracts::BadPayloadObject;
use crate::task_type::{AnswerKind, TaskType};

/// Up to this many answers per object, a worker's repeated answers are found by scanning them.
const LINEAR_DEDUP_ANSWERS: usize = 32;

/// A batch ready for its engine's driver.
pub(crate) struct PreparedBatch<'a> {
    /// The objects with at least one readable element, in the order their ids first appear.
    pub(crate) objects: Vec<Prepared<'a>>,
    /// One per response entry, in payload order: a prepared object (its index in `objects`), or an id
    /// whose every element was unreadable (the first one, and how many elements had that id).
    pub(crate) entries: Vec<Result<usize, (&'a BadPayloadObject, usize)>>,
    /// Payload elements without a readable `datasetObjectId` (no entry possible).
    pub(crate) unidentifiable: usize,
    /// Payload elements merged into an earlier one with the same id.
    pub(crate) duplicate_objects: usize,
}

/// Groups the payload by id and prepares each object's answers (one vote per worker, at most
/// `max_answers` of them, each distinct answer parsed once).
pub(crate) fn prepare_batch(objects: &[BatchObject], max_answers: usize) -> PreparedBatch<'_> {
    let (groups, unidentifiable) = group_by_id(objects);
    let mut batch = PreparedBatch {
        objects: Vec::with_capacity(groups.len()),
        entries: Vec::with_capacity(groups.len()),
        unidentifiable,
        duplicate_objects: 0,
    };
    let mut parsed = ParsedAnswers::default();
    for group in &groups {
        let elements = group.objects.len() + group.bad.len();
        batch.duplicate_objects += elements - 1;
        match (group.objects.as_slice(), group.bad.first()) {
            ([], Some(bad)) => batch.entries.push(Err((*bad, elements))),
            ([], None) => {}
            (objects, _) => {
                batch.entries.push(Ok(batch.objects.len()));
                batch
                    .objects
                    .push(prepare(objects, elements, max_answers, &mut parsed));
            }
        }
    }
    batch
}

/// The batch's task type: the configured one, else the answers' majority, with the answers that look
/// like another type left out with a reason.
pub(crate) fn task_type_of(
    prepared: &mut [Prepared<'_>],
    configured: Option<TaskType>,
) -> TaskType {
    if let Some(task) = configured {
        return task;
    }
    let task = infer_task_type(
        prepared
            .iter()
            .flat_map(|p| p.usable.iter().map(|u| &*u.answer)),
    );
    leave_out_other_shapes(prepared, task);
    task
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

/// Each distinct answer text of a batch parsed once: identical answers share one text (the payload
/// parser interns them), so a 3-class batch of a thousand objects parses three answers, not thousands.
#[derive(Default)]
pub(crate) struct ParsedAnswers<'a> {
    by_text: HashMap<*const u8, Rc<Answer<'a>>>,
}

impl<'a> ParsedAnswers<'a> {
    pub(crate) fn parse(&mut self, text: &'a Arc<str>) -> Result<Rc<Answer<'a>>, AnswerError> {
        // The texts are borrowed for the whole batch, so an address stands for one text throughout.
        let key = text.as_ptr();
        if let Some(known) = self.by_text.get(&key) {
            return Ok(Rc::clone(known));
        }
        let parsed = Rc::new(Answer::parse(text)?);
        self.by_text.insert(key, Rc::clone(&parsed));
        Ok(parsed)
    }
}
