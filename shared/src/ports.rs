//! Ports: one small trait per AWS capability, shaped like the IAM action it needs.
//!
//! The functions take only the ports they use, so a handler's signature says which IAM statements its
//! role needs (`ObjectReader` = `s3:GetObject`, `LabelingJobCreator` = `sagemaker:CreateLabelingJob`, …).
//! The real adapters live in `groundwork-s3` and `groundwork-sagemaker`; in-memory fakes that record
//! calls live here behind the `test-util` feature, so every crate's tests use the same ones.

use async_trait::async_trait;

use crate::labeling_job::{CreateLabelingJobRequest, LabelingJobDescription};
use crate::s3_uri::S3Uri;

/// Why an object-store call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// No such object (or bucket).
    #[error("{uri} does not exist")]
    NotFound {
        /// The object.
        uri: String,
    },
    /// The caller's role may not do this.
    #[error("access to {uri} denied: {message}")]
    AccessDenied {
        /// The object.
        uri: String,
        /// The service's message.
        message: String,
    },
    /// Throttled or a 5xx: worth retrying.
    #[error("{uri}: service unavailable or throttled: {message}")]
    Unavailable {
        /// The object.
        uri: String,
        /// The service's message.
        message: String,
    },
    /// The object is larger than the caller allows.
    #[error("{uri} is {bytes} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// The object.
        uri: String,
        /// Its size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// The location is outside the S3 locations the function's owner allows
    /// ([`crate::s3_scope::S3Scope`]); nothing was sent to S3.
    #[error("{uri} is outside the S3 locations this function may use (ALLOWED_S3_LOCATIONS)")]
    OutsideScope {
        /// The object.
        uri: String,
    },
    /// Anything else.
    #[error("{uri}: {message}")]
    Other {
        /// The object.
        uri: String,
        /// What happened.
        message: String,
    },
}

impl StoreError {
    /// Whether retrying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

/// An object with the version tag a conditional write must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedObject {
    /// The bytes.
    pub body: Vec<u8>,
    /// The ETag.
    pub etag: String,
}

/// The result of a conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionalPut {
    /// Written; the new ETag.
    Written {
        /// The new version's ETag.
        etag: String,
    },
    /// Someone else wrote first (HTTP 412 / 409): read again, merge, retry.
    Conflict,
}

/// `s3:GetObject`.
#[async_trait]
pub trait ObjectReader: Send + Sync {
    /// Reads a whole object.
    async fn get_object(&self, uri: &S3Uri) -> Result<Vec<u8>, StoreError>;
}

/// How a written object is encrypted at rest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Encryption {
    /// The bucket's default encryption (SSE-S3 unless the bucket says otherwise).
    #[default]
    BucketDefault,
    /// SSE-KMS with this key (id, ARN or alias): what a job asks for with `kmsKeyId` /
    /// `OutputConfig.KmsKeyId`. Writing needs `kms:GenerateDataKey` on the key.
    Kms {
        /// The key.
        key_id: String,
    },
}

impl Encryption {
    /// SSE-KMS with `key_id` when there is one (blank counts as none), else the bucket's default.
    pub fn kms_or_default(key_id: Option<&str>) -> Self {
        match key_id.map(str::trim).filter(|k| !k.is_empty()) {
            Some(key_id) => Encryption::Kms {
                key_id: key_id.to_owned(),
            },
            None => Encryption::BucketDefault,
        }
    }
}

/// `s3:PutObject`.
#[async_trait]
pub trait ObjectWriter: Send + Sync {
    /// Writes a whole object, encrypted as `encryption` says.
    async fn put_object(
        &self,
        uri: &S3Uri,
        body: Vec<u8>,
        content_type: &str,
        encryption: &Encryption,
    ) -> Result<(), StoreError>;
}

/// `s3:ListBucket` on a prefix.
#[async_trait]
pub trait ObjectLister: Send + Sync {
    /// Every key under `prefix`, as URIs, in S3's (lexicographic) order.
    async fn list_objects(&self, prefix: &S3Uri) -> Result<Vec<S3Uri>, StoreError>;
}

/// `s3:GetObject` + `s3:PutObject` with S3 conditional writes (`If-Match` / `If-None-Match: *`), for state
/// that concurrent invocations update (worker quality).
#[async_trait]
pub trait VersionedStore: Send + Sync {
    /// Reads an object and its ETag; `None` when it does not exist.
    async fn get_versioned(&self, uri: &S3Uri) -> Result<Option<VersionedObject>, StoreError>;

    /// Writes `body` only if the object's ETag is still `expected` (`None`: only if it does not exist),
    /// encrypted as `encryption` says.
    async fn put_if_match(
        &self,
        uri: &S3Uri,
        body: Vec<u8>,
        expected: Option<&str>,
        encryption: &Encryption,
    ) -> Result<ConditionalPut, StoreError>;
}

// A shared store is a store: `Arc<S3Store>` or `Arc<dyn ObjectReader>` wrapped in a decorator such
// as `s3_scope::Confined`.
#[async_trait]
impl<T: ObjectReader + ?Sized> ObjectReader for std::sync::Arc<T> {
    async fn get_object(&self, uri: &S3Uri) -> Result<Vec<u8>, StoreError> {
        (**self).get_object(uri).await
    }
}

#[async_trait]
impl<T: ObjectWriter + ?Sized> ObjectWriter for std::sync::Arc<T> {
    async fn put_object(
        &self,
        uri: &S3Uri,
        body: Vec<u8>,
        content_type: &str,
        encryption: &Encryption,
    ) -> Result<(), StoreError> {
        (**self)
            .put_object(uri, body, content_type, encryption)
            .await
    }
}

#[async_trait]
impl<T: ObjectLister + ?Sized> ObjectLister for std::sync::Arc<T> {
    async fn list_objects(&self, prefix: &S3Uri) -> Result<Vec<S3Uri>, StoreError> {
        (**self).list_objects(prefix).await
    }
}

#[async_trait]
impl<T: VersionedStore + ?Sized> VersionedStore for std::sync::Arc<T> {
    async fn get_versioned(&self, uri: &S3Uri) -> Result<Option<VersionedObject>, StoreError> {
        (**self).get_versioned(uri).await
    }

    async fn put_if_match(
        &self,
        uri: &S3Uri,
        body: Vec<u8>,
        expected: Option<&str>,
        encryption: &Encryption,
    ) -> Result<ConditionalPut, StoreError> {
        (**self).put_if_match(uri, body, expected, encryption).await
    }
}

/// Why a labeling-job call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobsError {
    /// No such job.
    #[error("labeling job {name} not found")]
    NotFound {
        /// The job name.
        name: String,
    },
    /// Throttled or over a limit: retry later.
    #[error("SageMaker throttled or over a limit ({code}): {message}")]
    Throttled {
        /// The service error code.
        code: String,
        /// The service's message.
        message: String,
    },
    /// The request was refused as invalid.
    #[error("SageMaker refused the request ({code}): {message}")]
    Invalid {
        /// The service error code.
        code: String,
        /// The service's message.
        message: String,
    },
    /// Anything else (network, 5xx).
    #[error("SageMaker call failed: {message}")]
    Other {
        /// What happened.
        message: String,
    },
}

impl JobsError {
    /// Whether retrying later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, JobsError::Throttled { .. } | JobsError::Other { .. })
    }
}

/// The result of CreateLabelingJob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// A new job; its ARN.
    Created {
        /// The new job's ARN.
        arn: String,
    },
    /// A job of that name exists already (`ResourceInUse`): a duplicate event, and success.
    AlreadyExists,
}

/// `sagemaker:DescribeLabelingJob`.
#[async_trait]
pub trait LabelingJobDescriber: Send + Sync {
    /// Describes a job by name (case-insensitive).
    async fn describe_labeling_job(&self, name: &str) -> Result<LabelingJobDescription, JobsError>;
}

/// `sagemaker:CreateLabelingJob` (+ `sagemaker:AddTags` for its tags, + `iam:PassRole` on its role).
#[async_trait]
pub trait LabelingJobCreator: Send + Sync {
    /// Creates a job.
    async fn create_labeling_job(
        &self,
        request: &CreateLabelingJobRequest,
    ) -> Result<CreateOutcome, JobsError>;
}

/// In-memory fakes of the ports, for tests.
#[cfg(any(test, feature = "test-util"))]
pub mod fakes {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        // A test that panicked while holding the lock has already failed; keep going for its report.
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An object store in memory, with ETags (a counter) and a log of the writes.
    #[derive(Debug, Default)]
    pub struct MemoryObjectStore {
        objects: Mutex<BTreeMap<String, (Vec<u8>, u64)>>,
        next_version: Mutex<u64>,
        writes: Mutex<Vec<String>>,
        /// How each object was last written.
        encryption: Mutex<BTreeMap<String, Encryption>>,
        /// URIs whose reads fail with `AccessDenied`.
        denied: Mutex<Vec<String>>,
    }

    impl MemoryObjectStore {
        /// An empty store.
        pub fn new() -> Self {
            Self::default()
        }

        /// Puts an object (test setup).
        pub fn insert(&self, uri: &str, body: impl Into<Vec<u8>>) {
            let version = self.bump();
            lock(&self.objects).insert(uri.to_owned(), (body.into(), version));
        }

        /// Makes reads of `uri` fail with `AccessDenied`.
        pub fn deny(&self, uri: &str) {
            lock(&self.denied).push(uri.to_owned());
        }

        /// An object's bytes.
        pub fn get(&self, uri: &str) -> Option<Vec<u8>> {
            lock(&self.objects).get(uri).map(|(b, _)| b.clone())
        }

        /// Every URI written through the ports, in order.
        pub fn writes(&self) -> Vec<String> {
            lock(&self.writes).clone()
        }

        /// How `uri` was last written through the ports (`None`: never written through them).
        pub fn encryption_of(&self, uri: &str) -> Option<Encryption> {
            lock(&self.encryption).get(uri).cloned()
        }

        /// Every URI stored.
        pub fn keys(&self) -> Vec<String> {
            lock(&self.objects).keys().cloned().collect()
        }

        fn bump(&self) -> u64 {
            let mut v = lock(&self.next_version);
            *v += 1;
            *v
        }

        fn check_denied(&self, uri: &S3Uri) -> Result<(), StoreError> {
            let key = uri.to_string();
            if lock(&self.denied).contains(&key) {
                return Err(StoreError::AccessDenied {
                    uri: key,
                    message: "denied by test".to_owned(),
                });
            }
            Ok(())
        }
    }

    #[async_trait]
    impl ObjectReader for MemoryObjectStore {
        async fn get_object(&self, uri: &S3Uri) -> Result<Vec<u8>, StoreError> {
            self.check_denied(uri)?;
            self.get(&uri.to_string())
                .ok_or_else(|| StoreError::NotFound {
                    uri: uri.to_string(),
                })
        }
    }

    #[async_trait]
    impl ObjectWriter for MemoryObjectStore {
        async fn put_object(
            &self,
            uri: &S3Uri,
            body: Vec<u8>,
            _content_type: &str,
            encryption: &Encryption,
        ) -> Result<(), StoreError> {
            self.insert(&uri.to_string(), body);
            lock(&self.encryption).insert(uri.to_string(), encryption.clone());
            lock(&self.writes).push(uri.to_string());
            Ok(())
        }
    }

    #[async_trait]
    impl ObjectLister for MemoryObjectStore {
        async fn list_objects(&self, prefix: &S3Uri) -> Result<Vec<S3Uri>, StoreError> {
            let prefix = prefix.to_string();
            Ok(lock(&self.objects)
                .keys()
                .filter(|k| k.starts_with(&prefix))
                .filter_map(|k| k.parse().ok())
                .collect())
        }
    }

    #[async_trait]
    impl VersionedStore for MemoryObjectStore {
        async fn get_versioned(&self, uri: &S3Uri) -> Result<Option<VersionedObject>, StoreError> {
            self.check_denied(uri)?;
            Ok(lock(&self.objects)
                .get(&uri.to_string())
                .map(|(body, v)| VersionedObject {
                    body: body.clone(),
                    etag: format!("\"{v}\""),
                }))
        }

        async fn put_if_match(
            &self,
            uri: &S3Uri,
            body: Vec<u8>,
            expected: Option<&str>,
            encryption: &Encryption,
        ) -> Result<ConditionalPut, StoreError> {
            let key = uri.to_string();
            let version = self.bump();
            let mut objects = lock(&self.objects);
            let current = objects.get(&key).map(|(_, v)| format!("\"{v}\""));
            if current.as_deref() != expected {
                return Ok(ConditionalPut::Conflict);
            }
            objects.insert(key.clone(), (body, version));
            lock(&self.encryption).insert(key.clone(), encryption.clone());
            lock(&self.writes).push(key);
            Ok(ConditionalPut::Written {
                etag: format!("\"{version}\""),
            })
        }
    }

    /// Labeling jobs in memory: describe what was inserted, record what was created, answer
    /// `AlreadyExists` for a name used before (case-insensitively, as SageMaker does).
    #[derive(Debug, Default)]
    pub struct MemoryLabelingJobs {
        jobs: Mutex<BTreeMap<String, LabelingJobDescription>>,
        created: Mutex<Vec<CreateLabelingJobRequest>>,
        describe_calls: Mutex<usize>,
        /// When set, every call fails with this error.
        pub fail_with: Mutex<Option<JobsError>>,
    }

    impl MemoryLabelingJobs {
        /// No jobs.
        pub fn new() -> Self {
            Self::default()
        }

        /// Adds a job to describe.
        pub fn insert(&self, job: LabelingJobDescription) {
            lock(&self.jobs).insert(job.labeling_job_name.to_lowercase(), job);
        }

        /// Every successful create request, in order.
        pub fn created(&self) -> Vec<CreateLabelingJobRequest> {
            lock(&self.created).clone()
        }

        /// How many times describe was called.
        pub fn describe_calls(&self) -> usize {
            *lock(&self.describe_calls)
        }
    }

    #[async_trait]
    impl LabelingJobDescriber for MemoryLabelingJobs {
        async fn describe_labeling_job(
            &self,
            name: &str,
        ) -> Result<LabelingJobDescription, JobsError> {
            *lock(&self.describe_calls) += 1;
            if let Some(e) = lock(&self.fail_with).clone() {
                return Err(e);
            }
            lock(&self.jobs)
                .get(&name.to_lowercase())
                .cloned()
                .ok_or_else(|| JobsError::NotFound {
                    name: name.to_owned(),
                })
        }
    }

    #[async_trait]
    impl LabelingJobCreator for MemoryLabelingJobs {
        async fn create_labeling_job(
            &self,
            request: &CreateLabelingJobRequest,
        ) -> Result<CreateOutcome, JobsError> {
            if let Some(e) = lock(&self.fail_with).clone() {
                return Err(e);
            }
            let key = request.labeling_job_name.to_lowercase();
            let mut created = lock(&self.created);
            let exists = lock(&self.jobs).contains_key(&key)
                || created
                    .iter()
                    .any(|r| r.labeling_job_name.to_lowercase() == key);
            if exists {
                return Ok(CreateOutcome::AlreadyExists);
            }
            created.push(request.clone());
            let arn = format!("arn:aws:sagemaker:us-east-1:111111111111:labeling-job/{key}");
            Ok(CreateOutcome::Created { arn })
        }
    }
}
