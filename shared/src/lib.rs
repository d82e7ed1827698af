//! groundwork's domain: everything about SageMaker Ground Truth that can be decided without talking to AWS.
//!
//! The Lambdas (`functions/`) and the CLI are thin shells around this crate. It has no AWS SDK and no async
//! runtime, so it builds and tests in seconds, and every decision (which objects to skip, how to
//! consolidate answers, whether and how to chain a job) is unit-tested here without mocks of the world.
//!
//! | module | what lives there |
//! |---|---|
//! | [`manifest`] | augmented manifest lines, the streaming JSON Lines reader and byte-exact writer |
//! | [`lan`] | label attribute name rules, `<LAN>-metadata`, "is this line labeled" |
//! | [`task_type`] | the catalogue of built-in task types |
//! | [`contracts`] | the Lambda events and responses, and the EventBridge state-change event |
//! | [`labeling_job`] | DescribeLabelingJob / CreateLabelingJob in the API's own field names |
//! | [`label_categories`] | label category configuration files |
//! | [`metadata`] | labeling-job ARNs, `job-name`, `creation-date`, the injected clock |
//! | [`s3_uri`] | `s3://bucket/key` |
//! | [`s3_scope`] | the S3 locations a function may use, and the store wrapper that enforces them |
//! | [`pre_annotation`] | the pre-human-task decision |
//! | [`job_context`] | what a pre-annotation event's job is: configuration or DescribeLabelingJob, cached |
//! | [`consolidate`] | annotation consolidation for every task type |
//! | [`chain`] | the chain planner: whether and how to start a follow-up labeling job |
//! | [`ports`] | one trait per AWS capability (and in-memory fakes behind `test-util`) |
//! | `testing` | the test kit of this crate and the crates on it, behind `test-util` |
//! | [`emf`] | CloudWatch metrics as Embedded Metric Format log lines |

pub mod chain;
pub mod consolidate;
pub mod contracts;
pub mod emf;
#[cfg(any(test, feature = "test-util"))]
pub mod fuzz_checks;
pub mod job_context;
pub mod label_categories;
pub mod labeling_job;
pub mod lan;
pub mod manifest;
pub mod metadata;
pub mod output;
pub mod ports;
pub mod pre_annotation;
pub mod s3_scope;
pub mod s3_uri;
pub mod task_type;
/// The test kit: `block_on`, DescribeLabelingJob builders, the in-memory ports (behind `test-util`).
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
pub mod text;

pub use lan::LabelAttributeName;
pub use manifest::ManifestLine;
pub use s3_uri::S3Uri;
pub use task_type::TaskType;

/// Helpers for this crate's unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    /// An error and its sources joined with ": ", as `anyhow`'s `{:#}` (the CLI) prints it.
    pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    }
}
