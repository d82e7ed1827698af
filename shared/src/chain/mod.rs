//! The chain planner: whether and how to start a labeling job from one that has just ended.
//!
//! SageMaker Ground Truth emits a state-change event when a labeling job ends Stopped, Failed or
//! Completed (`contracts.md` §6). The auto-chainer Lambda answers with at most one new job, built from
//! the old one the way the developer guide's chaining pages describe (§8, `docs/seeds/`):
//!
//! * **Stopped / Failed → continue**: same label attribute name (LAN), input = the job's output manifest
//!   (or, without one, its newest intermediate manifest, or its input manifest), so Ground Truth works
//!   only on the objects not labeled yet. Nothing left unlabeled: no job. Failed for a reason that would
//!   fail again (see [`failure`]): no job.
//! * **Completed → follow-up**, only when the job declares a follow-up plan ([`plan`](mod@plan)): a new LAN and
//!   task (a verification, an adjustment, a second question), optionally only for objects whose label is
//!   unsure, optionally switching automated labeling on or off. A Completed job that declares only a
//!   staging manifest is *extended*: continued over its output plus the new objects.
//! * **Staged objects** (`groundwork:staging-manifest`) are appended to the chained job's input.
//! * **Automated labeling**: with the LAN unchanged, the source's `FinalActiveLearningModelArn` becomes
//!   the new job's `InitialActiveLearningModelArn`.
//! * Everything else is copied from the source job: role, output path, human task, label category file,
//!   stopping conditions, algorithms, data attributes, user tags (never `aws:` tags).
//!
//! # Design: two pure phases around the I/O
//!
//! The planner never does I/O, so every rule is unit-tested on plain values; the caller fetches what it
//! asks for ([`executor`] does this over the [`ports`](crate::ports), for the Lambda and the CLI alike):
//!
//! 1. [`prepare`]`(job, settings, request)` looks only at the DescribeLabelingJob output, the function's
//!    [`ChainSettings`] and the caller's [`ChainRequest`], and answers [`Preparation::Skip`] (not
//!    terminal, streaming, chaining off, permanent failure, depth limit, no follow-up declared) or
//!    [`Preparation::Fetch`] with the [`Needs`]: which manifest candidates to read, in order, which
//!    follow-up plan and which staging manifest.
//! 2. [`plan()`]`(&PlannerInput)` gets the same three values plus the fetched bytes and returns a
//!    [`Decision`]: [`Decision::Chain`] with the exact `CreateLabelingJobRequest` and the S3 objects to
//!    write first (a filtered or extended manifest, a label category file), or [`Decision::Skip`] with a
//!    [`SkipReason`] (no progress, nothing to label, nothing below the threshold). Broken inputs (a bad
//!    plan, an unreadable manifest, an unreadable tag) are a [`ChainError`], not a decision: they need a
//!    person, and the event can be replayed once they are fixed.
//!
//! # Guarantees
//!
//! * **One chained job per state change.** The new job's name is derived from the source job's ARN and
//!   the step ([`naming`]); a duplicate event computes the same name, and CreateLabelingJob answers
//!   `ResourceInUse`, which callers count as success. The objects written first live under a folder
//!   named after the new job, so a duplicate rewrites the same keys.
//! * **No runaway chains.** Lineage tags ([`tags`]) carry the root, the depth and the number of labeled
//!   objects a chained job started with. Beyond `MAX_CHAIN_DEPTH` there is no job, and a continued job
//!   that labeled nothing since it started is not continued again.
//! * A person can override the automatic refusals with [`ChainRequest::force`] (`groundwork chain start
//!   --force`): continue a failed job once its cause is fixed, or a job that chaining is off for.
//!
//! * **Top-up rounds** ([`top_up`]): a follow-up plan with `"Mode": "top-up"` asks more workers, round
//!   by round, only about the objects whose label is still below a target confidence, and ends with one
//!   merged output manifest.
//!
//! Cloning (the prior job's setup with its input manifest or a new one) is [`clone::clone_request`].

pub mod clone;
pub mod decision;
pub mod executor;
pub mod failure;
pub mod manifest_edit;
pub mod naming;
pub mod plan;
pub mod settings;
pub mod tags;
pub mod top_up;

#[cfg(test)]
pub(crate) mod testing;

use std::fmt;

use crate::labeling_job::{CreateLabelingJobRequest, LabelingJobDescription, LabelingJobStatus};
use crate::ports::Encryption;
use crate::s3_uri::S3Uri;

pub use decision::{plan, prepare};
pub use failure::{FailureClass, PermanentCause, classify_failure};
pub use manifest_edit::BadManifest;
pub use plan::{FollowUpPlan, Patch, PlanError};
pub use settings::{ChainMode, ChainSettings, SettingsError};
pub use tags::InvalidTag;

/// The kind of chained job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainStep {
    /// Same label attribute name: label what is not labeled yet.
    Continue,
    /// A follow-up plan's job.
    FollowUp,
}

impl ChainStep {
    /// The letter in the new job's name (`-c2-`, `-f1-`).
    pub fn letter(self) -> char {
        match self {
            ChainStep::Continue => 'c',
            ChainStep::FollowUp => 'f',
        }
    }

    /// `continue` or `follow-up` (the `groundwork:step` tag, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            ChainStep::Continue => "continue",
            ChainStep::FollowUp => "follow-up",
        }
    }
}

impl fmt::Display for ChainStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the caller asks for. The Lambda asks with the default: follow the job's declarations and every
/// guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChainRequest {
    /// A person's override: chain although chaining is off for the job, its failure looks permanent, the
    /// depth limit is reached or it made no progress, and continue a Completed job without a plan.
    pub force: bool,
    /// The caller brings a follow-up plan of its own (`groundwork chain start --plan`): run it, whatever
    /// the job's status and declarations.
    pub supplied_plan: bool,
}

/// Where the follow-up plan comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanSource {
    /// The job's `groundwork:follow-up` tag, or the function's default plan.
    Declared(S3Uri),
    /// The caller's own.
    Supplied,
}

/// A place to read the source job's manifest from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestCandidate {
    /// This object.
    Object(S3Uri),
    /// The newest `<n>/output.manifest` under this prefix
    /// ([`manifest_edit::newest_intermediate_manifest`]).
    NewestIntermediate(S3Uri),
}

/// What [`plan()`] needs read before it can decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needs {
    /// The step it will take.
    pub step: ChainStep,
    /// The follow-up plan to read.
    pub plan: Option<PlanSource>,
    /// The source job's manifest: the first candidate that exists.
    pub manifest: Vec<ManifestCandidate>,
    /// The staging manifest to read.
    pub staging: Option<S3Uri>,
}

/// The first phase's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Preparation {
    /// Read these, then call [`plan()`].
    Fetch(Needs),
    /// No job; no need to read anything.
    Skip(SkipReason),
}

/// An S3 object's bytes and where they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedObject {
    /// The object.
    pub uri: S3Uri,
    /// Its bytes.
    pub body: Vec<u8>,
}

/// Everything the planner decides on.
#[derive(Debug, Clone, Copy)]
pub struct PlannerInput<'a> {
    /// The source job, as DescribeLabelingJob returned it.
    pub job: &'a LabelingJobDescription,
    /// The function's defaults.
    pub settings: &'a ChainSettings,
    /// The caller's request.
    pub request: &'a ChainRequest,
    /// The follow-up plan's bytes, when [`Needs::plan`] asked for it.
    pub plan: Option<&'a [u8]>,
    /// The source job's manifest (the first [`Needs::manifest`] candidate found).
    pub manifest: Option<&'a FetchedObject>,
    /// The staging manifest, when [`Needs::staging`] asked for it.
    pub staging: Option<&'a FetchedObject>,
}

/// An object to write before creating the job.
#[derive(Clone, PartialEq, Eq)]
pub struct ObjectWrite {
    /// Where.
    pub uri: S3Uri,
    /// What.
    pub body: Vec<u8>,
    /// Its content type.
    pub content_type: &'static str,
    /// SSE-KMS with the source job's `OutputConfig.KmsKeyId` when it has one: a staged manifest holds
    /// the source's labels, so it is protected as the source's output is.
    pub encryption: Encryption,
}

impl fmt::Debug for ObjectWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectWrite")
            .field("uri", &self.uri.to_string())
            .field("bytes", &self.body.len())
            .field("content_type", &self.content_type)
            .field("encryption", &self.encryption)
            .finish()
    }
}

/// Object counts of a chain step, for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChainCounts {
    /// Lines of the new job's input manifest.
    pub input_objects: usize,
    /// Of those, not labeled under the new job's label attribute name: the new job's work.
    pub unlabeled: usize,
    /// Lines appended from the staging manifest.
    pub appended: usize,
    /// Lines dropped by the confidence threshold.
    pub filtered_out: usize,
}

/// A job to create.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainAction {
    /// Continue or follow-up.
    pub step: ChainStep,
    /// The new job's depth below its root.
    pub depth: u32,
    /// The exact request.
    pub request: CreateLabelingJobRequest,
    /// Objects to write first, in order (the request refers to them).
    pub manifest_writes: Vec<ObjectWrite>,
    /// What the new job will work on.
    pub counts: ChainCounts,
}

/// The planner's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Create this job.
    Chain(Box<ChainAction>),
    /// No job, for this reason.
    Skip(SkipReason),
}

/// Why no job is chained. Every variant is a normal outcome, logged and counted, never retried.
#[derive(Debug, Clone, PartialEq)]
pub enum SkipReason {
    /// The job has not ended (an event that raced a status change).
    NotTerminal {
        /// Its status.
        status: LabelingJobStatus,
    },
    /// A streaming job (SNS input): those chain through SNS topics, not manifests.
    StreamingJob,
    /// DescribeLabelingJob gave no label attribute name.
    NoLabelAttributeName,
    /// Chaining is off: by the job's `groundwork:chain=off` tag, or by `CHAIN_DEFAULT`.
    ChainingOff {
        /// True when the job's own tag turned it off.
        by_tag: bool,
    },
    /// A Completed job without a follow-up plan or staging manifest.
    NoFollowUpDeclared,
    /// The job failed for a reason that would fail the next job too.
    PermanentFailure {
        /// What kind of reason.
        cause: PermanentCause,
        /// The job's `FailureReason`.
        reason: String,
    },
    /// The new job would be deeper than `MAX_CHAIN_DEPTH`.
    MaxDepth {
        /// Its depth.
        depth: u32,
        /// The limit.
        max: u32,
    },
    /// A continued job that labeled nothing since it started.
    NoProgress {
        /// Objects labeled in its manifest now.
        labeled: u64,
        /// Objects labeled when it started (its lineage tag), if known.
        labeled_at_start: Option<u64>,
    },
    /// Every object is labeled under the new job's label attribute name already.
    NothingToLabel {
        /// The label attribute name.
        label_attribute_name: String,
    },
    /// No labeled object has a confidence below the plan's threshold.
    NothingBelowThreshold {
        /// The threshold.
        threshold: f64,
    },
}

impl SkipReason {
    /// A stable identifier: a metric dimension and a log field.
    pub fn code(&self) -> &'static str {
        match self {
            SkipReason::NotTerminal { .. } => "NotTerminal",
            SkipReason::StreamingJob => "StreamingJob",
            SkipReason::NoLabelAttributeName => "NoLabelAttributeName",
            SkipReason::ChainingOff { .. } => "ChainingOff",
            SkipReason::NoFollowUpDeclared => "NoFollowUpDeclared",
            SkipReason::PermanentFailure { .. } => "PermanentFailure",
            SkipReason::MaxDepth { .. } => "MaxDepth",
            SkipReason::NoProgress { .. } => "NoProgress",
            SkipReason::NothingToLabel { .. } => "NothingToLabel",
            SkipReason::NothingBelowThreshold { .. } => "NothingBelowThreshold",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NotTerminal { status } => {
                write!(f, "the job is {status}, not Stopped, Failed or Completed")
            }
            SkipReason::StreamingJob => {
                f.write_str("the job is a streaming job (SNS input); chain it through its SNS output topic")
            }
            SkipReason::NoLabelAttributeName => f.write_str("the job has no label attribute name"),
            SkipReason::ChainingOff { by_tag: true } => {
                f.write_str("chaining is off for this job (tag groundwork:chain=off)")
            }
            SkipReason::ChainingOff { by_tag: false } => f.write_str(
                "continuing is off for this job (no groundwork:chain=continue tag, CHAIN_DEFAULT=off)",
            ),
            SkipReason::NoFollowUpDeclared => f.write_str(
                "the job completed and declares no follow-up plan (tag groundwork:follow-up or DEFAULT_FOLLOW_UP_PLAN) and no staging manifest",
            ),
            SkipReason::PermanentFailure { cause, reason } => {
                write!(f, "the job failed because {cause}, which would fail the next job too: {reason}")
            }
            SkipReason::MaxDepth { depth, max } => write!(
                f,
                "the chained job would be {depth} jobs below its root, over MAX_CHAIN_DEPTH={max}"
            ),
            SkipReason::NoProgress {
                labeled,
                labeled_at_start: Some(start),
            } => write!(
                f,
                "the job labeled no object since it started ({start} labeled then, {labeled} now)"
            ),
            SkipReason::NoProgress {
                labeled_at_start: None,
                ..
            } => f.write_str("the job labeled no object (LabelCounters.TotalLabeled = 0)"),
            SkipReason::NothingToLabel {
                label_attribute_name,
            } => write!(
                f,
                "every object is labeled under `{label_attribute_name}` already"
            ),
            SkipReason::NothingBelowThreshold { threshold } => write!(
                f,
                "no labeled object has a confidence below the plan's threshold {threshold}"
            ),
        }
    }
}

/// Inputs the planner cannot work with: they need a person (and the event can be replayed after).
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// A declaration or lineage tag with an unreadable value.
    #[error(transparent)]
    InvalidTag(#[from] InvalidTag),
    /// The follow-up plan is invalid.
    #[error(transparent)]
    InvalidPlan(#[from] PlanError),
    /// A manifest has a bad line.
    #[error(transparent)]
    InvalidManifest(#[from] BadManifest),
    /// The caller did not fetch what [`prepare`] asked for.
    #[error("the planner needs {0}, which was not given")]
    MissingInput(&'static str),
    /// The source job's description cannot be used to build a job.
    #[error("the source job cannot be chained: {0}")]
    InvalidJob(String),
    /// A file a top-up round reads (Ground Truth's consolidation requests, the rounds' answers or
    /// merged manifest) cannot be used.
    #[error("top-up: {uri}: {message}")]
    InvalidTopUpInput {
        /// The file.
        uri: String,
        /// What is wrong.
        message: String,
    },
    /// More tags than CreateLabelingJob accepts.
    #[error(
        "the new job would carry {count} tags (the job's own plus groundwork's lineage tags), over the limit of {max}",
        max = tags::MAX_TAGS
    )]
    TooManyTags {
        /// How many.
        count: usize,
    },
}
