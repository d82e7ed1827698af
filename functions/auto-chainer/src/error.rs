//! The function's error: a chain step that could not finish, with a stable Lambda `errorType`.
//!
//! Only failures are errors. A decision not to chain (and an event that is not a labeling-job state
//! change) is an `Ok` outcome: Lambda retries every error of an asynchronous invocation, and retrying a
//! decision changes nothing.
//!
//! Errors come in two families, both delivered to the function's on-failure destination (SQS) once
//! Lambda's asynchronous retries are spent, so the event can be replayed:
//!
//! * `Retryable.*` — throttling, limits, a 5xx, a network failure. Lambda's retries (with back-off) are
//!   likely to succeed.
//! * `Permanent.*` — a person must act first (fix the plan, a tag, a permission, a manifest). Lambda
//!   retries these too (it cannot tell them apart); the retries fail the same way and the event lands
//!   in the queue, ready to be replayed once the cause is fixed. Being idempotent, a replay never starts
//!   a second job.
//!
//! | `errorType` | cause |
//! |---|---|
//! | `Retryable.SageMakerThrottled` | ThrottlingException / ResourceLimitExceeded |
//! | `Retryable.SageMakerUnavailable` | SageMaker 5xx, timeout, network |
//! | `Retryable.S3Unavailable` | S3 throttling, 5xx, network |
//! | `Permanent.JobNotFound` | the event's job does not exist (another account or region?) |
//! | `Permanent.SageMakerRejected` | ValidationException or another 4xx from SageMaker |
//! | `Permanent.S3AccessDenied` | the function's role may not read or write an object |
//! | `Permanent.S3ObjectNotFound` | the follow-up plan or staging manifest does not exist |
//! | `Permanent.S3Error` | any other S3 failure |
//! | `Permanent.NoManifest` | none of the job's manifests exists |
//! | `Permanent.InvalidPlan` | the follow-up plan is invalid |
//! | `Permanent.InvalidManifest` | a manifest has a bad line |
//! | `Permanent.InvalidTag` | a `groundwork:*` tag has an unreadable value |
//! | `Permanent.InvalidJob` | the job's description cannot be turned into a request |

use groundwork::chain::ChainError;
use groundwork::chain::executor::RunError;
use groundwork::ports::{JobsError, StoreError};
use lambda_runtime::Diagnostic;

/// A chain step from the event's job failed.
#[derive(Debug, thiserror::Error)]
#[error("chaining from {job_arn}: {source}")]
pub(crate) struct ChainerError {
    /// The event's job.
    pub(crate) job_arn: String,
    /// What failed.
    #[source]
    pub(crate) source: RunError,
}

impl ChainerError {
    /// The stable `errorType`.
    pub(crate) fn error_type(&self) -> &'static str {
        match &self.source {
            RunError::Describe {
                source: JobsError::NotFound { .. },
                ..
            } => "Permanent.JobNotFound",
            RunError::Describe { source, .. }
            | RunError::CheckExisting { source, .. }
            | RunError::Create { source, .. } => jobs_error_type(source),
            RunError::Read { source, .. }
            | RunError::List { source }
            | RunError::Write { source } => store_error_type(source),
            RunError::NoManifest { .. } => "Permanent.NoManifest",
            RunError::Plan(ChainError::InvalidPlan(_)) => "Permanent.InvalidPlan",
            RunError::Plan(ChainError::InvalidManifest(_)) => "Permanent.InvalidManifest",
            RunError::Plan(ChainError::InvalidTag(_)) => "Permanent.InvalidTag",
            RunError::Plan(
                ChainError::InvalidJob(_)
                | ChainError::MissingInput(_)
                | ChainError::TooManyTags { .. },
            ) => "Permanent.InvalidJob",
            RunError::Plan(ChainError::InvalidTopUpInput { .. }) => "Permanent.InvalidTopUpInput",
        }
    }

    /// Whether Lambda's retries may succeed.
    pub(crate) fn is_retryable(&self) -> bool {
        self.source.is_retryable()
    }
}

fn jobs_error_type(error: &JobsError) -> &'static str {
    match error {
        JobsError::Throttled { .. } => "Retryable.SageMakerThrottled",
        JobsError::Other { .. } => "Retryable.SageMakerUnavailable",
        JobsError::NotFound { .. } | JobsError::Invalid { .. } => "Permanent.SageMakerRejected",
    }
}

fn store_error_type(error: &StoreError) -> &'static str {
    match error {
        StoreError::Unavailable { .. } => "Retryable.S3Unavailable",
        StoreError::AccessDenied { .. } => "Permanent.S3AccessDenied",
        StoreError::NotFound { .. } => "Permanent.S3ObjectNotFound",
        StoreError::OutsideScope { .. } => "Permanent.S3LocationNotAllowed",
        StoreError::TooLarge { .. } | StoreError::Other { .. } => "Permanent.S3Error",
    }
}

impl From<ChainerError> for Diagnostic {
    fn from(error: ChainerError) -> Diagnostic {
        Diagnostic {
            error_type: error.error_type().to_owned(),
            error_message: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(source: RunError) -> ChainerError {
        ChainerError {
            job_arn: "arn:aws:sagemaker:us-east-1:111122223333:labeling-job/animals".to_owned(),
            source,
        }
    }

    #[test]
    fn error_types_are_stable_and_match_retryability() {
        let throttled = JobsError::Throttled {
            code: "ThrottlingException".to_owned(),
            message: "slow down".to_owned(),
        };
        let cases = [
            (
                RunError::Create {
                    job: "j".to_owned(),
                    source: throttled,
                },
                "Retryable.SageMakerThrottled",
            ),
            (
                RunError::Describe {
                    job: "j".to_owned(),
                    source: JobsError::Other {
                        message: "timeout".to_owned(),
                    },
                },
                "Retryable.SageMakerUnavailable",
            ),
            (
                RunError::Describe {
                    job: "j".to_owned(),
                    source: JobsError::NotFound {
                        name: "j".to_owned(),
                    },
                },
                "Permanent.JobNotFound",
            ),
            (
                RunError::Create {
                    job: "j".to_owned(),
                    source: JobsError::Invalid {
                        code: "ValidationException".to_owned(),
                        message: "no".to_owned(),
                    },
                },
                "Permanent.SageMakerRejected",
            ),
            (
                RunError::Write {
                    source: StoreError::Unavailable {
                        uri: "s3://b/k".to_owned(),
                        message: "503".to_owned(),
                    },
                },
                "Retryable.S3Unavailable",
            ),
            (
                RunError::Read {
                    what: "follow-up plan",
                    source: StoreError::AccessDenied {
                        uri: "s3://b/k".to_owned(),
                        message: "no".to_owned(),
                    },
                },
                "Permanent.S3AccessDenied",
            ),
            (
                RunError::Plan(ChainError::MissingInput("x")),
                "Permanent.InvalidJob",
            ),
        ];
        for (source, expected) in cases {
            let err = error(source);
            assert_eq!(err.error_type(), expected, "{err}");
            assert_eq!(
                err.is_retryable(),
                expected.starts_with("Retryable."),
                "{err}"
            );
            let diagnostic = Diagnostic::from(err);
            assert_eq!(diagnostic.error_type, expected);
            assert!(diagnostic.error_message.contains("labeling-job/animals"));
        }
    }
}
