//! `gt-auto-chainer`: starts the next labeling job when one ends (EventBridge "SageMaker Ground Truth
//! Labeling Job State Change", Stopped/Failed/Completed).
//!
//! Wiring only: JSON logs, the chaining configuration (read once; a bad value fails the cold start
//! instead of chaining with half a configuration — see `groundwork::chain::settings`), the SageMaker and
//! S3 clients (built once), then the runtime loop. The handler is in [`handler`], its error types in
//! [`error`], its metric in [`metrics`].

mod error;
mod handler;
mod metrics;

use std::sync::Arc;

use groundwork::chain::ChainSettings;
use groundwork::contracts::RawEvent;
use groundwork::metadata::SystemClock;
use groundwork_s3::S3Store;
use groundwork_sagemaker::SageMakerJobs;
use lambda_runtime::{LambdaEvent, service_fn};
use tracing_subscriber::EnvFilter;

use crate::handler::{Chainer, Services};
use crate::metrics::StdoutEmf;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_logging();

    let settings = ChainSettings::from_lookup(|name| std::env::var(name).ok())?;
    tracing::info!(
        chain_default = %settings.default_mode,
        max_chain_depth = settings.max_depth,
        default_follow_up_plan = settings.default_follow_up_plan.as_ref().map(ToString::to_string),
        chain_write_prefix = settings.write_prefix.as_ref().map(ToString::to_string),
        allowed_s3_locations = settings.scope.describe(),
        "configured"
    );

    let aws = aws_config::load_from_env().await;
    let jobs = Arc::new(SageMakerJobs::from_conf(&aws));
    let store = Arc::new(S3Store::from_conf(&aws));
    let chainer = Chainer::new(
        Services {
            describer: jobs.clone(),
            creator: jobs,
            reader: store.clone(),
            writer: store.clone(),
            lister: store,
        },
        settings,
        Arc::new(SystemClock),
        Arc::new(StdoutEmf),
    );
    let chainer = &chainer;
    // A `RawEvent` never fails to deserialize: a body that is not JSON is rejected as malformed.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<RawEvent>| async move {
        chainer.handle_event(event.payload).await
    }))
    .await
}

/// JSON lines, one per event, at the level of `AWS_LAMBDA_LOG_LEVEL` (the function's logging
/// configuration), else `RUST_LOG`, else `info`. No timestamp: CloudWatch stamps every line.
fn init_logging() {
    let directives = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned());
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_target(false)
        .with_current_span(true)
        .with_span_list(false)
        .without_time()
        .init();
}
