//! Annotation consolidation: the workers' answers for a batch of data objects in, one label per object
//! with a calibrated confidence out, in the exact output format Ground Truth writes.
//!
//! | module | what lives there |
//! |---|---|
//! | [`batch`] | one batch end to end: answers in, Ground Truth's response entries out (the one code path of the Lambda and the CLI) |
//! | `driver` | what the batch hands each engine's driver and gets back (one signature for every engine) |
//! | [`service`] | a request over the ports: payload and answers from S3, worker quality kept with conditional writes, masks stored |
//! | [`answers`] | reading a worker's answer; inferring the task type from the answers |
//! | `reading` | what the geometry engines' readers are built from: one element's output read from an answer's text straight into the engine's typed input |
//! | [`custom`] | custom task types: canonical-JSON majority, or every answer |
//! | [`classification`] | truth inference for single- and multi-label classes (Dawid-Skene EM, majority vote) |
//! | [`worker_quality`] | per-job worker quality, kept between batches |
//! | [`prior_answers`] | answers an object got in earlier top-up rounds, merged into the round's own |
//! | [`job_audit`] | where a job's audit (a team's verdicts on an earlier job's labels) is found, and its cache |
//! | [`crowd`] | what the geometry engines (boxes, segmentation, spans) share: the answer they are handed, reliability as a vote weight, skipped answers and per-worker agreement |
//! | [`boxes`] | bounding boxes: matching across workers, robust centres, per-box confidence |
//! | [`segmentation`] | semantic segmentation masks: per-pixel weighted vote, PNG in and out |
//! | [`spans`] | named entities: span clustering, boundary and label votes |

pub mod answers;
pub mod batch;
pub mod boxes;
pub mod classification;
pub mod crowd;
pub mod custom;
mod driver;
pub mod job_audit;
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
