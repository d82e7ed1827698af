//! `gt-annotation-consolidation`: Ground Truth's annotation-consolidation Lambda.
//!
//! Wiring only: logging, configuration (read once; a bad value stops the cold start), the S3 client built
//! once (and one per assumed role, when configured), then the runtime loop. The handler is in
//! [`handler`]; the consolidation itself is `groundwork::consolidate`.

mod config;
mod handler;

use std::sync::Arc;

use async_trait::async_trait;
use aws_config::SdkConfig;
use groundwork::contracts::RawEvent;
use groundwork::emf::StdoutEmf;
use groundwork::metadata::SystemClock;
use groundwork::ports::ObjectReader;
use groundwork_s3::S3Store;
use lambda_runtime::{LambdaEvent, service_fn};

use crate::handler::{Consolidation, RoleReaders, Storage};

/// S3 readers acting as a labeling job's role, through STS.
struct StsRoleReaders {
    aws: SdkConfig,
    max_object_bytes: u64,
}

#[async_trait]
impl RoleReaders for StsRoleReaders {
    async fn reader_for(&self, role_arn: &str) -> Result<Arc<dyn ObjectReader>, String> {
        Ok(Arc::new(
            S3Store::assuming_role(&self.aws, role_arn, "groundwork-annotation-consolidation")
                .await
                .with_max_object_bytes(self.max_object_bytes),
        ))
    }
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    // A bad value stops the cold start with a readable message (Lambda reports Runtime.ExitError).
    let config = config::from_vars(|name| std::env::var(name).ok())
        .map_err(|e| lambda_runtime::Error::from(format!("configuration: {e}")))?;
    tracing::info!(allowed_s3_locations = config.scope.describe(), "configured");
    let aws = aws_config::load_from_env().await;
    let store = Arc::new(S3Store::from_conf(&aws).with_max_object_bytes(config.max_object_bytes));
    let roles: Option<Arc<dyn RoleReaders>> = config.assume_role.then(|| {
        Arc::new(StsRoleReaders {
            aws: aws.clone(),
            max_object_bytes: config.max_object_bytes,
        }) as Arc<dyn RoleReaders>
    });
    let storage = Storage {
        reader: store.clone(),
        writer: store.clone(),
        quality: store,
        roles,
    };
    let handler = Consolidation::new(config, storage, Arc::new(SystemClock), Arc::new(StdoutEmf));
    let handler = &handler;
    // A `RawEvent` never fails to deserialize: a body that is not JSON gets our `InvalidEvent`.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<RawEvent>| async move {
        handler.handle_event(event.payload).await
    }))
    .await
}
