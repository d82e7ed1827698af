//! Where the pre-annotation step learns about its job: configuration, or DescribeLabelingJob plus the label
//! category file, fetched once per job and kept for the life of the warm container.
//!
//! A function dedicated to one job type is configured (LAN, task type, labels) and never calls SageMaker.
//! A general-purpose function looks the job up by the event's ARN; Ground Truth sends one event per data
//! object, so without the cache a 10,000-object job would make 10,000 DescribeLabelingJob calls (and be
//! throttled long before the end).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::label_categories::{LabelCategoryConfig, LabelCategoryError};
use crate::lan::{LabelAttributeName, LanError};
use crate::metadata::{ArnError, LabelingJobArn};
use crate::ports::{JobsError, LabelingJobDescriber, ObjectReader, StoreError};
use crate::pre_annotation::JobContext;
use crate::s3_uri::{S3Uri, S3UriError};
use crate::task_type::TaskType;

/// The job context given by configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfiguredJob {
    /// The job's label attribute name.
    pub label_attribute_name: LabelAttributeName,
    /// The task type, when configured.
    pub task_type: Option<TaskType>,
    /// The labels, when configured inline.
    pub labels: Option<Vec<String>>,
    /// A label category file to read the labels from, when not inline.
    pub label_category_config: Option<S3Uri>,
}

/// Why the job context could not be found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JobContextError {
    /// The event's ARN is not a labeling-job ARN.
    #[error(transparent)]
    InvalidArn(#[from] ArnError),
    /// DescribeLabelingJob failed.
    #[error("cannot describe labeling job {job}: {source}")]
    Describe {
        /// The job name.
        job: String,
        /// Why.
        #[source]
        source: JobsError,
    },
    /// The job's LAN breaks the rules (it cannot, if SageMaker accepted it; kept for safety).
    /// (Not a `#[source]`: the message holds it, and a chain printer would say it twice.)
    #[error("labeling job {job}: {reason}")]
    InvalidLan {
        /// The job name.
        job: String,
        /// Why.
        reason: LanError,
    },
    /// The label category URI is not an S3 URI.
    #[error("label category file of {job}: {source}")]
    InvalidUri {
        /// The job name (or `configuration`).
        job: String,
        /// Why.
        #[source]
        source: S3UriError,
    },
    /// The label category file could not be read.
    #[error("cannot read label category file: {source}")]
    ReadLabels {
        /// Why.
        #[source]
        source: StoreError,
    },
    /// The label category file is not usable.
    #[error("label category file {uri}: {source}")]
    BadLabels {
        /// The file.
        uri: String,
        /// Why.
        #[source]
        source: LabelCategoryError,
    },
}

impl JobContextError {
    /// Whether retrying later may help (throttling, a transient S3 error).
    pub fn is_retryable(&self) -> bool {
        match self {
            JobContextError::Describe { source, .. } => source.is_retryable(),
            JobContextError::ReadLabels { source } => source.is_retryable(),
            _ => false,
        }
    }
}

/// Resolves and caches job contexts.
#[derive(Debug)]
pub struct JobContextResolver {
    configured: Option<ConfiguredJob>,
    cache: Mutex<HashMap<String, Arc<JobContext>>>,
}

/// The cache key of the configured job (one context for every event).
const CONFIGURED_KEY: &str = "";

impl JobContextResolver {
    /// Looks jobs up with DescribeLabelingJob.
    pub fn from_describe() -> Self {
        JobContextResolver {
            configured: None,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Uses configuration for every event.
    pub fn configured(job: ConfiguredJob) -> Self {
        JobContextResolver {
            configured: Some(job),
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, key: &str) -> Option<Arc<JobContext>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    fn remember(&self, key: String, context: JobContext) -> Arc<JobContext> {
        let context = Arc::new(context);
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, Arc::clone(&context));
        context
    }

    /// The context of the job that sent the event `labeling_job_arn`.
    pub async fn resolve(
        &self,
        labeling_job_arn: &str,
        jobs: &dyn LabelingJobDescriber,
        objects: &dyn ObjectReader,
    ) -> Result<Arc<JobContext>, JobContextError> {
        // Checked in both modes: Ground Truth always sends a labeling-job ARN, so anything else is a
        // broken or hostile caller, whether or not the ARN is needed to find the job.
        let arn: LabelingJobArn = labeling_job_arn.parse()?;
        if let Some(configured) = &self.configured {
            if let Some(hit) = self.cached(CONFIGURED_KEY) {
                return Ok(hit);
            }
            let labels = match (&configured.labels, &configured.label_category_config) {
                (Some(labels), _) => Some(labels.clone()),
                (None, Some(uri)) => Some(read_labels(uri, objects).await?),
                (None, None) => None,
            };
            let context = JobContext {
                label_attribute_name: Some(configured.label_attribute_name.clone()),
                task_type: configured.task_type,
                labels,
            };
            return Ok(self.remember(CONFIGURED_KEY.to_owned(), context));
        }

        let key = arn.name().to_lowercase();
        if let Some(hit) = self.cached(&key) {
            return Ok(hit);
        }
        let job = arn.name().to_owned();
        let description =
            jobs.describe_labeling_job(&job)
                .await
                .map_err(|source| JobContextError::Describe {
                    job: job.clone(),
                    source,
                })?;
        let label_attribute_name = description
            .label_attribute_name
            .as_deref()
            .map(LabelAttributeName::new)
            .transpose()
            .map_err(|reason| JobContextError::InvalidLan {
                job: job.clone(),
                reason,
            })?;
        let labels = match &description.label_category_config_s3_uri {
            Some(uri) => {
                let uri: S3Uri = uri.parse().map_err(|source| JobContextError::InvalidUri {
                    job: job.clone(),
                    source,
                })?;
                Some(read_labels(&uri, objects).await?)
            }
            None => None,
        };
        let context = JobContext {
            label_attribute_name,
            task_type: Some(description.task_type()),
            labels,
        };
        Ok(self.remember(key, context))
    }
}

async fn read_labels(
    uri: &S3Uri,
    objects: &dyn ObjectReader,
) -> Result<Vec<String>, JobContextError> {
    let bytes = objects
        .get_object(uri)
        .await
        .map_err(|source| JobContextError::ReadLabels { source })?;
    LabelCategoryConfig::parse(&bytes)
        .map(|c| c.label_names())
        .map_err(|source| JobContextError::BadLabels {
            uri: uri.to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labeling_job::LabelingJobDescription;
    use crate::testing::fakes::{MemoryLabelingJobs, MemoryObjectStore};
    use crate::testing::{DescribedJob, block_on};

    /// The `Animals` job in progress, a bounding-box job with its files under `s3://bucket/`.
    fn description() -> LabelingJobDescription {
        DescribedJob::animals()
            .status("InProgress")
            .arn("arn:aws:sagemaker:us-east-1:111111111111:labeling-job/animals")
            .task_type(TaskType::BoundingBox)
            .stored_at("s3://bucket/", "s3://bucket/out/")
            .without_output()
            .build()
    }

    #[test]
    fn describes_once_per_job_and_reads_labels() {
        let jobs = MemoryLabelingJobs::new();
        jobs.insert(description());
        let store = MemoryObjectStore::new();
        store.insert(
            "s3://bucket/labels.json",
            r#"{"document-version":"2018-11-28","labels":[{"label":"cat"},{"label":"dog"}]}"#,
        );
        let resolver = JobContextResolver::from_describe();
        let arn = "arn:aws:sagemaker:us-east-1:111111111111:labeling-job/animals";
        for _ in 0..3 {
            let ctx = block_on(resolver.resolve(arn, &jobs, &store)).unwrap();
            assert_eq!(
                ctx.label_attribute_name.as_ref().unwrap().as_str(),
                "animal"
            );
            assert_eq!(ctx.task_type, Some(TaskType::BoundingBox));
            assert_eq!(
                ctx.labels.as_deref(),
                Some(&["cat".to_owned(), "dog".to_owned()][..])
            );
        }
        assert_eq!(jobs.describe_calls(), 1);
    }

    #[test]
    fn configuration_never_calls_sagemaker() {
        let jobs = MemoryLabelingJobs::new();
        let store = MemoryObjectStore::new();
        let resolver = JobContextResolver::configured(ConfiguredJob {
            label_attribute_name: LabelAttributeName::new("sport").unwrap(),
            task_type: Some(TaskType::TextClassification),
            labels: Some(vec!["a".to_owned()]),
            label_category_config: None,
        });
        let arn = "arn:aws:sagemaker:us-east-1:111122223333:labeling-job/anything";
        let ctx = block_on(resolver.resolve(arn, &jobs, &store)).unwrap();
        assert_eq!(ctx.labels.as_deref(), Some(&["a".to_owned()][..]));
        assert_eq!(jobs.describe_calls(), 0);
        // Not needed to find the job, but still checked: nothing but Ground Truth sends such events.
        assert!(matches!(
            block_on(resolver.resolve("not even an arn", &jobs, &store)),
            Err(JobContextError::InvalidArn(_))
        ));
    }

    #[test]
    fn an_invalid_job_lan_is_said_once() {
        let jobs = MemoryLabelingJobs::new();
        let mut job = description();
        job.label_attribute_name = Some("bad_lan".to_owned());
        jobs.insert(job);
        let store = MemoryObjectStore::new();
        let err = block_on(JobContextResolver::from_describe().resolve(
            "arn:aws:sagemaker:us-east-1:111111111111:labeling-job/animals",
            &jobs,
            &store,
        ))
        .unwrap_err();
        assert!(matches!(err, JobContextError::InvalidLan { .. }));
        let chain = crate::test_support::error_chain(&err);
        assert_eq!(chain.matches("bad_lan").count(), 1, "{chain}");
    }

    #[test]
    fn a_bad_job_name_is_refused_before_describing() {
        let jobs = MemoryLabelingJobs::new();
        let store = MemoryObjectStore::new();
        let arn = format!(
            "arn:aws:sagemaker:us-east-1:1:labeling-job/{}",
            "x".repeat(100_000)
        );
        let err =
            block_on(JobContextResolver::from_describe().resolve(&arn, &jobs, &store)).unwrap_err();
        assert!(matches!(err, JobContextError::InvalidArn(_)), "{err}");
        assert!(crate::test_support::error_chain(&err).len() < 600);
        assert_eq!(jobs.describe_calls(), 0);
    }

    #[test]
    fn errors_say_what_failed() {
        let jobs = MemoryLabelingJobs::new();
        let store = MemoryObjectStore::new();
        let resolver = JobContextResolver::from_describe();
        let err = block_on(resolver.resolve(
            "arn:aws:sagemaker:us-east-1:1:labeling-job/missing",
            &jobs,
            &store,
        ))
        .unwrap_err();
        assert!(matches!(
            err,
            JobContextError::Describe {
                source: JobsError::NotFound { .. },
                ..
            }
        ));
        assert!(!err.is_retryable());
        let err = block_on(resolver.resolve("garbage", &jobs, &store)).unwrap_err();
        assert!(matches!(err, JobContextError::InvalidArn(_)));

        jobs.insert(description());
        let err = block_on(resolver.resolve(
            "arn:aws:sagemaker:us-east-1:111111111111:labeling-job/animals",
            &jobs,
            &store,
        ))
        .unwrap_err();
        assert!(matches!(
            err,
            JobContextError::ReadLabels {
                source: StoreError::NotFound { .. }
            }
        ));
        *jobs.fail_with.lock().unwrap() = Some(JobsError::Throttled {
            code: "ThrottlingException".to_owned(),
            message: "slow down".to_owned(),
        });
        let err = block_on(resolver.resolve(
            "arn:aws:sagemaker:us-east-1:1:labeling-job/other",
            &jobs,
            &store,
        ))
        .unwrap_err();
        assert!(err.is_retryable());
    }
}
