//! groundwork's labeling-job ports over aws-sdk-sagemaker: [`SageMakerJobs`] implements
//! [`LabelingJobDescriber`] (`sagemaker:DescribeLabelingJob`) and [`LabelingJobCreator`]
//! (`sagemaker:CreateLabelingJob`, plus `sagemaker:AddTags` for its tags and `iam:PassRole` on its role).
//!
//! This crate is the only one that compiles the SageMaker SDK (a large crate); everything else speaks
//! the domain's [`labeling_job`](groundwork::labeling_job) mirrors, converted field by field in
//! [`convert`]. Service errors are classified by their wire code (`contracts.md` §7):
//!
//! | code | port result |
//! |---|---|
//! | `ResourceInUse` (create) | `Ok(CreateOutcome::AlreadyExists)` — the name is taken: a duplicate event |
//! | `ThrottlingException`, `ResourceLimitExceeded`, other throttling codes | `JobsError::Throttled` (retryable) |
//! | `ResourceNotFound` | `JobsError::NotFound` |
//! | `ValidationException`, any other 4xx code | `JobsError::Invalid` (not retryable) |
//! | 5xx, timeouts, connection errors, unreadable responses | `JobsError::Other` (retryable) |

pub mod convert;

use async_trait::async_trait;
use aws_sdk_sagemaker::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use groundwork::labeling_job::{CreateLabelingJobRequest, LabelingJobDescription};
use groundwork::ports::{CreateOutcome, JobsError, LabelingJobCreator, LabelingJobDescriber};

/// The labeling-job ports over a SageMaker client.
#[derive(Debug, Clone)]
pub struct SageMakerJobs {
    client: aws_sdk_sagemaker::Client,
}

impl SageMakerJobs {
    /// Wraps a client (tests point one at a fake endpoint).
    pub fn new(client: aws_sdk_sagemaker::Client) -> Self {
        SageMakerJobs { client }
    }

    /// A client from loaded AWS configuration (region, credentials, `AWS_ENDPOINT_URL_SAGEMAKER`).
    pub fn from_conf(conf: &aws_config::SdkConfig) -> Self {
        SageMakerJobs::new(aws_sdk_sagemaker::Client::new(conf))
    }
}

/// Codes AWS services use for "slow down"; SageMaker uses the first two, the others are generic.
const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "ResourceLimitExceeded",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "LimitExceededException",
];

/// What a failed call means for the caller.
#[derive(Debug)]
enum Failure {
    /// `ResourceInUse`.
    InUse,
    /// Any other error, classified.
    Jobs(JobsError),
}

fn classify<E>(err: SdkError<E>, job: &str) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let SdkError::ServiceError(service) = &err else {
        // No answer from the service (timeout, connection, an unreadable response): worth retrying.
        return Failure::Jobs(JobsError::Other {
            message: DisplayErrorContext(&err).to_string(),
        });
    };
    let status = service.raw().status().as_u16();
    let code = service.err().code().unwrap_or_default().to_owned();
    let message = service.err().message().unwrap_or_default().to_owned();
    let jobs = match code.as_str() {
        "ResourceInUse" => return Failure::InUse,
        "ResourceNotFound" => JobsError::NotFound {
            name: job.to_owned(),
        },
        c if THROTTLING_CODES.contains(&c) => JobsError::Throttled { code, message },
        _ if status >= 500 => JobsError::Other {
            message: format!("{code} (HTTP {status}): {message}"),
        },
        _ => JobsError::Invalid { code, message },
    };
    Failure::Jobs(jobs)
}

#[async_trait]
impl LabelingJobDescriber for SageMakerJobs {
    async fn describe_labeling_job(&self, name: &str) -> Result<LabelingJobDescription, JobsError> {
        let out = self
            .client
            .describe_labeling_job()
            .labeling_job_name(name)
            .send()
            .await
            .map_err(|e| match classify(e, name) {
                Failure::Jobs(e) => e,
                // Not a describe error; keep the code if a service ever sends it.
                Failure::InUse => JobsError::Invalid {
                    code: "ResourceInUse".to_owned(),
                    message: format!("DescribeLabelingJob {name}"),
                },
            })?;
        convert::description_from_sdk(&out).map_err(|e| JobsError::Other {
            message: e.to_string(),
        })
    }
}

#[async_trait]
impl LabelingJobCreator for SageMakerJobs {
    async fn create_labeling_job(
        &self,
        request: &CreateLabelingJobRequest,
    ) -> Result<CreateOutcome, JobsError> {
        let call = convert::create_request_to_sdk(self.client.create_labeling_job(), request);
        match call.send().await {
            Ok(out) => Ok(CreateOutcome::Created {
                arn: out.labeling_job_arn().unwrap_or_default().to_owned(),
            }),
            Err(e) => match classify(e, &request.labeling_job_name) {
                Failure::InUse => Ok(CreateOutcome::AlreadyExists),
                Failure::Jobs(e) => Err(e),
            },
        }
    }
}
