//! `groundwork-sim`: a local SageMaker Ground Truth.
//!
//! - [`api`]: the labeling-job API (AWS JSON 1.1 on 127.0.0.1) the real aws-sdk-sagemaker client calls.
//! - [`job`]: each created job run as Ground Truth runs it, against moto S3 ([`moto`]).
//! - [`lambda`]: the real function binaries run as Lambda runs them (Runtime API, warm, restarted on a
//!   crash, cold start / duration / peak RSS recorded).
//! - [`workforce`]: simulated classification and bounding-box workers, and replayed real crowds.
//! - [`demo`]: the scenarios `make demo` runs and their summaries.

pub mod api;
pub mod demo;
pub mod error;
pub mod job;
pub mod lambda;
pub mod moto;
pub mod sim;
pub mod workforce;

pub use error::SimError;
pub use sim::{GroundTruth, Interruption, JobScript, SimConfig};
