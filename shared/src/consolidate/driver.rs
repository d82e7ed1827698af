//! What the batch hands every engine's driver, and what a driver hands back: the batch's context
//! ([`Driver`]), each object's answers as `prepare` made them ready ([`Prepared`]: one vote per worker,
//! each answer parsed once), and the per-object result ([`ObjectResult`]) that `batch` turns into
//! response entries. Each engine's driver lives beside its engine (`classification/driver.rs`,
//! `boxes.rs`, `spans.rs`, `segmentation.rs`, `custom.rs`) and has one signature:
//! `fn(&mut Driver, &mut [Prepared]) -> Vec<ObjectResult>`. The geometry drivers read each answer's
//! element into their engine's typed input through `crowd::geometry_results`.

use std::rc::Rc;

use crate::TaskType;
use crate::output::LabelBody;

use super::answers::Answer;
use super::batch::{BatchJob, BatchSettings, MaskWrite, ResolvedAnswer, ResolvedObject};
use super::worker_quality::{WorkerPriors, WorkerStats};

/// What every engine driver is given (the batch's context) and where it records what the batch taught
/// (worker statistics, masks to store, whether the worker model was given up for plain vote).
pub(crate) struct Driver<'b, 'j> {
    pub(crate) job: &'b BatchJob<'j>,
    pub(crate) task_type: TaskType,
    pub(crate) priors: &'b WorkerPriors,
    pub(crate) settings: &'b BatchSettings,
    pub(crate) mask_location: &'b dyn Fn(&str) -> Option<String>,
    pub(crate) stats: WorkerStats,
    pub(crate) mask_writes: Vec<MaskWrite>,
    pub(crate) plain_vote: bool,
}

/// A task type whose answers this version does not consolidate: every object says so.
pub(crate) fn unsupported_results(
    d: &mut Driver<'_, '_>,
    prepared: &mut [Prepared<'_>],
) -> Vec<ObjectResult> {
    let task_type = d.task_type;
    prepared
        .iter()
        .map(|_| {
            ObjectResult::Failed(format!(
                "{task_type} answers are not consolidated by this version"
            ))
        })
        .collect()
}

/// Per-object result before formatting.
pub(crate) enum ObjectResult {
    Labeled { body: LabelBody, confidence: f64 },
    Failed(String),
}

/// A parsed, usable answer.
pub(crate) struct Usable<'a> {
    pub(crate) worker: &'a str,
    /// Shared by every identical answer of the batch (parsed once, see
    /// [`ParsedAnswers`](super::prepare::ParsedAnswers)).
    pub(crate) answer: Rc<Answer<'a>>,
}

/// Why an answer was left out.
pub(crate) struct Skipped {
    pub(crate) worker: String,
    pub(crate) reason: String,
}

pub(crate) struct Prepared<'a> {
    /// The first payload element with this id (its `dataObject` and prior label are used).
    pub(crate) object: &'a ResolvedObject,
    /// Each worker's last answer, over every element with this id, in payload order.
    pub(crate) answers: Vec<&'a ResolvedAnswer>,
    pub(crate) usable: Vec<Usable<'a>>,
    pub(crate) skipped: Vec<Skipped>,
    /// Payload elements with this id (1 unless the id is duplicated).
    pub(crate) elements: usize,
}
