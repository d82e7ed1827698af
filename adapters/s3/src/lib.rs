//! groundwork's object-store ports over aws-sdk-s3.
//!
//! [`S3Store`] implements every S3 port of `groundwork::ports` (`ObjectReader`, `ObjectWriter`,
//! `ObjectLister`, `VersionedStore`). It is built once per cold start and shared by reference. Service
//! errors are mapped to [`StoreError`] by status and error code, so callers can tell "does not exist" from
//! "denied" from "try again", and a conditional write that lost a race comes back as
//! [`ConditionalPut::Conflict`] rather than as an error.
//!
//! Local S3-compatible servers (moto, s3rver, s3s-fs) need path-style addressing; it is switched on when an
//! endpoint override is configured (`AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`), never in production.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use groundwork::S3Uri;
use groundwork::ports::{
    ConditionalPut, Encryption, ObjectLister, ObjectReader, ObjectWriter, StoreError,
    VersionedObject, VersionedStore,
};

/// The S3 adapter.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    max_object_bytes: u64,
}

/// Objects larger than this are refused before download: a consolidation payload of 1,000 objects with
/// 9 workers is a few MB, and the Lambda's memory is the real bound.
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 512 * 1024 * 1024;

impl S3Store {
    /// Wraps a client.
    pub fn new(client: Client) -> Self {
        S3Store {
            client,
            max_object_bytes: DEFAULT_MAX_OBJECT_BYTES,
        }
    }

    /// Builds the client from shared AWS configuration, with path-style addressing when an endpoint
    /// override points at a local server.
    pub fn from_conf(conf: &aws_config::SdkConfig) -> Self {
        let endpoint_overridden = conf.endpoint_url().is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL").is_some();
        let s3_conf = aws_sdk_s3::config::Builder::from(conf)
            .force_path_style(endpoint_overridden)
            .build();
        Self::new(Client::from_conf(s3_conf))
    }

    /// An adapter that acts as `role_arn` (STS AssumeRole, credentials refreshed as they expire), for
    /// reading what a labeling job's role may read.
    pub async fn assuming_role(
        conf: &aws_config::SdkConfig,
        role_arn: &str,
        session_name: &str,
    ) -> Self {
        let provider = aws_config::sts::AssumeRoleProvider::builder(role_arn)
            .session_name(session_name)
            .configure(conf)
            .build()
            .await;
        let conf = conf
            .to_builder()
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(provider))
            .build();
        Self::from_conf(&conf)
    }

    /// Refuses objects larger than `bytes`.
    pub fn with_max_object_bytes(mut self, bytes: u64) -> Self {
        self.max_object_bytes = bytes;
        self
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// Maps an SDK error to a port error, by HTTP status first (stable across operations) and error code.
fn store_error<E>(uri: &S3Uri, err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let uri = uri.to_string();
    let status = http_status(&err);
    let code = err.code().unwrap_or_default().to_owned();
    let message = err
        .message()
        .map(str::to_owned)
        .unwrap_or_else(|| error_chain(&err));
    match (status, code.as_str()) {
        (Some(404), _) | (_, "NoSuchKey" | "NoSuchBucket" | "NotFound") => {
            StoreError::NotFound { uri }
        }
        (Some(403), _) | (_, "AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch") => {
            StoreError::AccessDenied { uri, message }
        }
        (Some(429 | 500 | 502 | 503 | 504), _)
        | (_, "SlowDown" | "InternalError" | "ServiceUnavailable") => {
            StoreError::Unavailable { uri, message }
        }
        // No response at all (connection refused, timeout): transient from the caller's point of view.
        (None, _) => StoreError::Unavailable { uri, message },
        _ => StoreError::Other {
            uri,
            message: if code.is_empty() {
                message
            } else {
                format!("{code}: {message}")
            },
        },
    }
}

/// The HTTP status of a service or response error; `None` when no response arrived.
fn http_status<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    match err {
        SdkError::ServiceError(e) => Some(e.raw().status().as_u16()),
        SdkError::ResponseError(e) => Some(e.raw().status().as_u16()),
        _ => None,
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn is_precondition_failure<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    matches!(http_status(err), Some(409 | 412))
        || matches!(
            err.code(),
            Some("PreconditionFailed" | "ConditionalRequestConflict")
        )
}

impl S3Store {
    async fn read(&self, uri: &S3Uri) -> Result<(Vec<u8>, Option<String>), StoreError> {
        let output = self
            .client
            .get_object()
            .bucket(uri.bucket())
            .key(uri.key())
            .send()
            .await
            .map_err(|e| store_error(uri, e))?;
        let length = output.content_length().unwrap_or(0).max(0) as u64;
        if length > self.max_object_bytes {
            return Err(StoreError::TooLarge {
                uri: uri.to_string(),
                bytes: length,
                limit: self.max_object_bytes,
            });
        }
        let etag = output.e_tag().map(str::to_owned);
        // Chunk by chunk into one buffer of the announced size: each chunk is freed once copied, so a
        // payload costs its size once, not twice (collected chunks, then their contiguous copy).
        let mut body = output.body;
        let mut bytes = Vec::with_capacity(length as usize);
        while let Some(chunk) = body.try_next().await.map_err(|e| StoreError::Unavailable {
            uri: uri.to_string(),
            message: format!("body read failed: {e}"),
        })? {
            if (bytes.len() + chunk.len()) as u64 > self.max_object_bytes {
                return Err(StoreError::TooLarge {
                    uri: uri.to_string(),
                    bytes: (bytes.len() + chunk.len()) as u64,
                    limit: self.max_object_bytes,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok((bytes, etag))
    }
}

#[async_trait]
impl ObjectReader for S3Store {
    async fn get_object(&self, uri: &S3Uri) -> Result<Vec<u8>, StoreError> {
        self.read(uri).await.map(|(body, _)| body)
    }
}

/// A PutObject request with the server-side encryption `encryption` asks for.
fn encrypted(request: PutObjectFluentBuilder, encryption: &Encryption) -> PutObjectFluentBuilder {
    match encryption {
        Encryption::BucketDefault => request,
        Encryption::Kms { key_id } => request
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(key_id),
    }
}

#[async_trait]
impl ObjectWriter for S3Store {
    async fn put_object(
        &self,
        uri: &S3Uri,
        body: Vec<u8>,
        content_type: &str,
        encryption: &Encryption,
    ) -> Result<(), StoreError> {
        let request = self
            .client
            .put_object()
            .bucket(uri.bucket())
            .key(uri.key())
            .content_type(content_type)
            .body(ByteStream::from(body));
        encrypted(request, encryption)
            .send()
            .await
            .map_err(|e| store_error(uri, e))?;
        Ok(())
    }
}

#[async_trait]
impl ObjectLister for S3Store {
    async fn list_objects(&self, prefix: &S3Uri) -> Result<Vec<S3Uri>, StoreError> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(prefix.bucket())
            .prefix(prefix.key())
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| store_error(prefix, e))?;
            for object in page.contents() {
                if let Some(key) = object.key() {
                    keys.push(
                        S3Uri::new(prefix.bucket(), key).map_err(|e| StoreError::Other {
                            uri: prefix.to_string(),
                            message: e.to_string(),
                        })?,
                    );
                }
            }
        }
        Ok(keys)
    }
}

#[async_trait]
impl VersionedStore for S3Store {
    async fn get_versioned(&self, uri: &S3Uri) -> Result<Option<VersionedObject>, StoreError> {
        match self.read(uri).await {
            Ok((body, etag)) => Ok(Some(VersionedObject {
                body,
                etag: etag.unwrap_or_default(),
            })),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn put_if_match(
        &self,
        uri: &S3Uri,
        body: Vec<u8>,
        expected: Option<&str>,
        encryption: &Encryption,
    ) -> Result<ConditionalPut, StoreError> {
        let request = self
            .client
            .put_object()
            .bucket(uri.bucket())
            .key(uri.key())
            .content_type("application/json")
            .body(ByteStream::from(body));
        let request = encrypted(request, encryption);
        // S3 conditional writes: If-Match for an update, If-None-Match: * for a first write.
        let request = match expected {
            Some(etag) => request.if_match(etag),
            None => request.if_none_match("*"),
        };
        match request.send().await {
            Ok(output) => Ok(ConditionalPut::Written {
                etag: output.e_tag().unwrap_or_default().to_owned(),
            }),
            Err(e) if is_precondition_failure(&e) => Ok(ConditionalPut::Conflict),
            Err(e) => Err(store_error(uri, e)),
        }
    }
}
