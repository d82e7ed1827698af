//! The auto-chainer's handler: one EventBridge state-change event in, at most one labeling job out.
//!
//! The event is checked first (source `aws.sagemaker`, detail-type "SageMaker Ground Truth Labeling Job
//! State Change", `detail.LabelingJobStatus` Stopped/Failed/Completed, a labeling-job ARN in
//! `resources[0]`). Anything else is *rejected*: an `Ok` outcome, logged as a warning and counted, never
//! retried — the rule's pattern should not have sent it, and retrying cannot make it valid.
//!
//! The chain step itself is `groundwork::chain::executor::chain_job`: describe the job, plan (every
//! decision rule is in `groundwork::chain`), write the new input, create. Each invocation ends with one
//! structured log line and one EMF metric line saying what happened and why.

use std::sync::Arc;

use groundwork::chain::executor::{ChainPorts, ChainRun, RunOutcome, RunReport, chain_job};
use groundwork::chain::{ChainSettings, SkipReason};
use groundwork::contracts::RawEvent;
use groundwork::labeling_job::LabelingJobStatus;
use groundwork::metadata::{Clock, LabelingJobArn};
use groundwork::ports::{
    LabelingJobCreator, LabelingJobDescriber, ObjectLister, ObjectReader, ObjectWriter,
};
use groundwork::s3_scope::Confined;
use serde::Serialize;
use tracing::Instrument;

use crate::error::ChainerError;
use crate::metrics::{MetricSink, emf_line};

/// The AWS capabilities the handler uses, built once per cold start.
pub(crate) struct Services {
    pub(crate) describer: Arc<dyn LabelingJobDescriber>,
    pub(crate) creator: Arc<dyn LabelingJobCreator>,
    pub(crate) reader: Arc<dyn ObjectReader>,
    pub(crate) writer: Arc<dyn ObjectWriter>,
    pub(crate) lister: Arc<dyn ObjectLister>,
}

/// What one invocation did; also the function's response (visible in tests and `cargo lambda invoke`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub(crate) enum Outcome {
    /// A chained job was created.
    Created {
        source_job: String,
        job_name: String,
        job_arn: String,
        step: String,
        depth: u32,
        input_objects: usize,
        unlabeled: usize,
    },
    /// The chained job exists already: a duplicate delivery of the event.
    Duplicate {
        source_job: String,
        job_name: String,
    },
    /// A top-up chain ended: its merged output manifest was written.
    TopUpFinished {
        source_job: String,
        manifest: String,
        round: u32,
        objects: usize,
        answers: usize,
        below_target: usize,
    },
    /// No job, on purpose.
    Skipped {
        source_job: String,
        reason_code: String,
        reason: String,
    },
    /// Not a labeling-job state change this function handles.
    Rejected { reason_code: String, reason: String },
}

/// Why an event is rejected: the shared check's reasons (the CLI's `chain plan` says the same).
pub(crate) use groundwork::contracts::{
    EventRejection as Rejection, accept_state_change as accept,
};

/// The handler, built once per cold start.
pub(crate) struct Chainer {
    services: Services,
    settings: ChainSettings,
    clock: Arc<dyn Clock>,
    metrics: Arc<dyn MetricSink>,
}

impl Chainer {
    pub(crate) fn new(
        services: Services,
        settings: ChainSettings,
        clock: Arc<dyn Clock>,
        metrics: Arc<dyn MetricSink>,
    ) -> Self {
        // Every S3 call of the chain goes through the configured scope (`ALLOWED_S3_LOCATIONS`).
        let scope = &settings.scope;
        let services = Services {
            reader: Arc::new(Confined::new(services.reader, scope.clone())),
            writer: Arc::new(Confined::new(services.writer, scope.clone())),
            lister: Arc::new(Confined::new(services.lister, scope.clone())),
            ..services
        };
        Chainer {
            services,
            settings,
            clock,
            metrics,
        }
    }

    /// Handles one event as the runtime delivers it: a body that is not JSON is rejected like any other
    /// malformed event (`InvalidEvent.Malformed`, logged and counted, no retry).
    pub(crate) async fn handle_event(&self, event: RawEvent) -> Result<Outcome, ChainerError> {
        let accepted = event
            .into_json()
            .map_err(Rejection::Malformed)
            .and_then(|payload| accept(&payload));
        self.handle_accepted(accepted).await
    }

    async fn handle_accepted(
        &self,
        accepted: Result<(LabelingJobArn, LabelingJobStatus), Rejection>,
    ) -> Result<Outcome, ChainerError> {
        let (arn, status) = match accepted {
            Ok(accepted) => accepted,
            Err(rejection) => {
                tracing::warn!(
                    outcome = "rejected",
                    reason_code = rejection.code(),
                    reason = %rejection,
                    "rejected an event that is not a labeling-job state change"
                );
                self.record("Rejected", rejection.code(), None);
                return Ok(Outcome::Rejected {
                    reason_code: rejection.code().to_owned(),
                    reason: rejection.to_string(),
                });
            }
        };
        let span = tracing::info_span!(
            "chain",
            labeling_job_arn = %arn,
            event_status = %status
        );
        self.chain(arn).instrument(span).await
    }

    async fn chain(&self, arn: LabelingJobArn) -> Result<Outcome, ChainerError> {
        let s = &self.services;
        let ports = ChainPorts {
            describer: s.describer.as_ref(),
            creator: s.creator.as_ref(),
            reader: s.reader.as_ref(),
            writer: s.writer.as_ref(),
            lister: s.lister.as_ref(),
        };
        let run = ChainRun::lambda(&self.settings);
        // The ARN's name may be lower-cased; DescribeLabelingJob does not mind.
        match chain_job(ports, arn.name(), run).await {
            Ok(report) => Ok(self.report(report)),
            Err(source) => {
                let error = ChainerError {
                    job_arn: arn.to_string(),
                    source,
                };
                tracing::error!(
                    outcome = "error",
                    error_type = error.error_type(),
                    retryable = error.is_retryable(),
                    error = %error,
                    "could not chain"
                );
                self.record("Error", error.error_type(), Some(arn.name()));
                Err(error)
            }
        }
    }

    /// Logs and counts a finished step.
    fn report(&self, report: RunReport) -> Outcome {
        let source_job = report.job.labeling_job_name.clone();
        let outcome = match report.outcome {
            RunOutcome::Created { arn, action } => {
                let c = action.counts;
                tracing::info!(
                    outcome = "created",
                    source_job = %source_job,
                    job_name = %action.request.labeling_job_name,
                    job_arn = %arn,
                    step = %action.step,
                    depth = action.depth,
                    label_attribute_name = %action.request.label_attribute_name,
                    input_objects = c.input_objects,
                    unlabeled = c.unlabeled,
                    appended = c.appended,
                    filtered_out = c.filtered_out,
                    objects_written = action.manifest_writes.len(),
                    "created the chained labeling job"
                );
                Outcome::Created {
                    source_job,
                    job_name: action.request.labeling_job_name,
                    job_arn: arn,
                    step: action.step.to_string(),
                    depth: action.depth,
                    input_objects: c.input_objects,
                    unlabeled: c.unlabeled,
                }
            }
            RunOutcome::AlreadyExists { action } => {
                tracing::info!(
                    outcome = "duplicate",
                    source_job = %source_job,
                    job_name = %action.request.labeling_job_name,
                    "the chained labeling job exists already (duplicate event)"
                );
                Outcome::Duplicate {
                    source_job,
                    job_name: action.request.labeling_job_name,
                }
            }
            RunOutcome::TopUpFinished {
                manifest, summary, ..
            } => {
                tracing::info!(
                    outcome = "top-up-finished",
                    source_job = %source_job,
                    manifest = %manifest,
                    round = summary.round,
                    objects = summary.objects,
                    answers = summary.answers,
                    below_target = summary.below_target,
                    over_budget = summary.over_budget,
                    "the top-up rounds are over: wrote the merged output manifest"
                );
                Outcome::TopUpFinished {
                    source_job,
                    manifest: manifest.to_string(),
                    round: summary.round,
                    objects: summary.objects,
                    answers: summary.answers,
                    below_target: summary.below_target,
                }
            }
            RunOutcome::Skipped(reason) => skipped(source_job, &reason),
            // The handler never asks for a dry run; say so rather than pretend a job was made.
            RunOutcome::WouldCreate { .. } => Outcome::Skipped {
                source_job,
                reason_code: "DryRun".to_owned(),
                reason: "dry run".to_owned(),
            },
        };
        let (name, reason) = match &outcome {
            Outcome::Created { step, .. } => ("Created", step.as_str()),
            Outcome::Duplicate { .. } => ("Duplicate", "DuplicateEvent"),
            Outcome::TopUpFinished { .. } => ("TopUpFinished", "TopUpFinished"),
            Outcome::Skipped { reason_code, .. } => ("Skipped", reason_code.as_str()),
            Outcome::Rejected { reason_code, .. } => ("Rejected", reason_code.as_str()),
        };
        self.record(name, reason, Some(&report.job.labeling_job_name));
        outcome
    }

    fn record(&self, outcome: &str, reason: &str, source_job: Option<&str>) {
        let now = self.clock.now().timestamp_millis();
        self.metrics
            .emit(emf_line(now, outcome, reason, source_job));
    }
}

/// A skip, logged at `warn` when someone may want to act (a permanent failure, a guard that stopped a
/// chain), at `info` otherwise.
fn skipped(source_job: String, reason: &SkipReason) -> Outcome {
    let notable = matches!(
        reason,
        SkipReason::PermanentFailure { .. }
            | SkipReason::MaxDepth { .. }
            | SkipReason::NoProgress { .. }
    );
    if notable {
        tracing::warn!(outcome = "skipped", source_job = %source_job, reason_code = reason.code(), reason = %reason, "not chaining");
    } else {
        tracing::info!(outcome = "skipped", source_job = %source_job, reason_code = reason.code(), reason = %reason, "not chaining");
    }
    Outcome::Skipped {
        source_job,
        reason_code: reason.code().to_owned(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod tests;
