//! Annotation consolidation: the workers' answers for a batch of data objects in, one label per object
//! with a calibrated confidence out, in the exact output format Ground Truth writes.
//!
//! | module | what lives there |
//! |---|---|
//! | [`service`] | a request over the ports: payload and answers from S3, worker quality kept with conditional writes, masks stored |
//! | [`batch`] | one batch end to end, pure: parse, infer the task type, dispatch to the engine's driver, collect the response entries (the one code path of the Lambda and the CLI) |
//! | `prepare` | the batch's first steps: objects by id, one vote per worker, each distinct answer parsed once, the task-type check |
//! | `driver` | what the batch hands each engine's driver and gets back (one signature for every engine) |
//! | [`answers`] | reading a worker's answer (its elements and their shapes, an element's output); inferring the task type from the answers |
//! | `reading` | what the geometry engines' readers are built from: one element's output read from an answer's text straight into the engine's typed input |
//! | [`crowd`] | what the geometry engines (boxes, segmentation, spans) share: the answer they are handed, their drivers' loop, reliability as a vote weight, skipped answers and per-worker agreement |
//! | [`classification`] | truth inference for single- and multi-label classes (Dawid-Skene EM, majority vote), its drivers in `classification/driver.rs` |
//! | [`boxes`] | bounding boxes: the answer's reader, matching across workers, robust centres, per-box confidence, the driver |
//! | [`spans`] | named entities: the answer's reader, span clustering, boundary and label votes, the driver |
//! | [`segmentation`] | semantic segmentation masks: the answer's reader, per-pixel weighted vote, PNG in and out, the driver |
//! | [`custom`] | custom task types: canonical-JSON majority, or every answer (answers kept as JSON: their shape is open) |
//! | [`worker_quality`] | per-job worker quality, kept between batches |
//! | [`prior_answers`] | answers an object got in earlier top-up rounds, merged into the round's own |
//! | [`job_audit`] | where a job's audit (a team's verdicts on an earlier job's labels) is found, and its cache |
//!
//! A new task type touches its engine's folder (its typed answer and reader, its engine, its driver) and
//! one dispatch line in `batch` (plus its row in [`crate::task_type`]'s catalogue).

pub mod answers;
pub mod batch;
pub mod boxes;
pub mod classification;
pub mod crowd;
pub mod custom;
mod driver;
pub mod job_audit;
mod prepare;
pub mod prior_answers;
mod reading;
pub mod segmentation;
pub mod service;
pub mod spans;
pub mod worker_quality;

/// A batch's class table: the job's labels when it has any, else the distinct labels its answers used,
/// sorted (so that class ids do not depend on answer order). `seen` is only read without job labels.
pub(crate) fn job_or_seen_labels<T: Ord>(job: Vec<T>, seen: impl IntoIterator<Item = T>) -> Vec<T> {
    if !job.is_empty() {
        return job;
    }
    seen.into_iter()
        .collect::<std::collections::BTreeSet<T>>()
        .into_iter()
        .collect()
}
