//! `gt-pre-human-task`: Ground Truth's pre-annotation Lambda.
//!
//! Wiring only: logging, configuration (read once; a bad value stops the cold start rather than
//! mislabeling), AWS clients built once, then the runtime loop. The handler is in [`handler`].

mod config;
mod handler;

use std::sync::Arc;

use groundwork::contracts::RawEvent;
use groundwork::emf::StdoutEmf;
use groundwork::job_context::JobContextResolver;
use groundwork::s3_scope::S3Scope;
use groundwork_s3::S3Store;
use groundwork_sagemaker::SageMakerJobs;
use lambda_runtime::{LambdaEvent, service_fn};

use crate::handler::PreHumanTask;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    // Level and JSON format come from the function's logging configuration (AWS_LAMBDA_LOG_LEVEL /
    // AWS_LAMBDA_LOG_FORMAT), set in template.yaml.
    lambda_runtime::tracing::init_default_subscriber();

    // A bad value stops the cold start with a readable message (Lambda logs stderr and reports
    // Runtime.ExitError) instead of labeling a job the wrong way.
    let configured = config::configured_job(|name| std::env::var(name).ok())
        .map_err(|e| lambda_runtime::Error::from(format!("configuration: {e}")))?;
    let resolver = match configured {
        Some(job) => {
            tracing::info!(label_attribute_name = %job.label_attribute_name, "serving one configured job");
            JobContextResolver::configured(job)
        }
        None => JobContextResolver::from_describe(),
    };
    let scope = S3Scope::from_lookup(|name| std::env::var(name).ok())
        .map_err(|e| lambda_runtime::Error::from(format!("configuration: {e}")))?;
    tracing::info!(allowed_s3_locations = scope.describe(), "configured");
    let aws = aws_config::load_from_env().await;
    let handler = PreHumanTask::new(
        resolver,
        Arc::new(SageMakerJobs::from_conf(&aws)),
        Arc::new(S3Store::from_conf(&aws)),
        scope,
        Arc::new(StdoutEmf),
    );
    let handler = &handler;
    // A `RawEvent` never fails to deserialize: a body that is not JSON gets our `InvalidEvent`.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<RawEvent>| async move {
        handler.handle_event(event.payload).await
    }))
    .await
}
