//! A consolidation request, end to end over the ports: read the payload and any answers stored in S3,
//! load the job's worker quality, consolidate, write masks, save the worker quality, answer.
//!
//! Only request-level problems fail the invocation (no payload, payload unreadable or not a JSON array);
//! everything per object becomes a per-object entry (see [`super::batch`]). Worker quality is best effort:
//! a missing or corrupt state document starts from nothing, a failed save is logged by the caller and
//! the batch is still answered — losing some learning is better than losing labels.
//!
//! Concurrent batches of one job update the same state document with S3 conditional writes
//! (`If-Match` on the ETag read, `If-None-Match: *` for the first write). The document read for the
//! priors is the one the first write is conditioned on, so an uncontested batch reads it once; on a
//! conflict the latest document is read again and this batch's contribution re-applied, so no batch's
//! update is lost.

use sha2::{Digest, Sha256};

use super::batch::{
    BatchJob, BatchObject, BatchOutcome, BatchSettings, ResolvedAnswer, ResolvedObject,
    consolidate_batch,
};
use super::job_audit::{AuditCache, AuditReport, audit_uri};
use super::prior_answers::{BadPriorAnswers, PriorAnswers, PriorAnswersCache, prior_answers_uri};
use super::worker_quality::JobWorkerQuality;
use crate::contracts::{
    ConsolidationRequest, ConsolidationResponseEntry, PayloadError, parse_payload,
};
use crate::lan::{LabelAttributeName, LanError};
use crate::metadata::{ArnError, Clock, LabelingJobArn};
use crate::ports::{
    ConditionalPut, Encryption, ObjectReader, ObjectWriter, StoreError, VersionedStore,
};
use crate::s3_scope::S3Scope;
use crate::s3_uri::{S3Uri, S3UriError, key_segment};

/// How many times a conflicting worker-quality write is retried before giving up (for this batch).
const QUALITY_WRITE_ATTEMPTS: usize = 5;

/// Why a whole request failed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The job ARN is malformed.
    #[error(transparent)]
    InvalidArn(#[from] ArnError),
    /// `labelAttributeName` breaks the label-attribute-name rules. It becomes part of S3 keys (the
    /// worker-quality document, the masks) and the output's keys (`<LAN>`, `<LAN>-metadata`), so it is
    /// checked before anything is read or written. Not a `#[source]`: the message already holds it.
    #[error("the request's {0}")]
    InvalidLabelAttributeName(LanError),
    /// `payload` has neither `s3Uri` nor `content`.
    #[error("the request's payload has neither s3Uri nor content")]
    NoPayload,
    /// `payload.s3Uri` is not an S3 URI.
    #[error("payload.s3Uri: {0}")]
    InvalidPayloadUri(#[from] S3UriError),
    /// The payload could not be read.
    #[error("cannot read the payload: {0}")]
    PayloadUnreadable(#[source] StoreError),
    /// `outputConfig` is outside the S3 locations the function may use: nothing of the request is
    /// read or written (its masks and worker quality would go there).
    #[error(
        "outputConfig {uri} is outside the S3 locations this function may use (ALLOWED_S3_LOCATIONS)"
    )]
    OutputOutsideScope {
        /// The request's `outputConfig`.
        uri: String,
    },
    /// The earlier answers of a top-up round could not be read (answering from this round's answers
    /// alone would quietly give a worse label than the round was started for).
    #[error("cannot read the earlier rounds' answers: {0}")]
    PriorAnswersUnreadable(#[source] StoreError),
    /// The earlier answers of a top-up round are not a valid file.
    #[error("the earlier rounds' answers: {0}")]
    InvalidPriorAnswers(#[source] BadPriorAnswers),
    /// The payload holds more objects than a request may (`BatchLimits::max_objects`): refused before
    /// any work, as its response could not be delivered anyway.
    #[error(
        "payload {uri} holds {objects} objects, over the limit of {limit} per request (MAX_PAYLOAD_OBJECTS)"
    )]
    TooManyObjects {
        /// Where it was read from.
        uri: String,
        /// Objects in it.
        objects: usize,
        /// The limit.
        limit: usize,
    },
    /// The payload is not a JSON array.
    #[error("payload {uri}: {source}")]
    InvalidPayload {
        /// Where it was read from.
        uri: String,
        /// Why it is unusable.
        #[source]
        source: PayloadError,
    },
}

impl RequestError {
    /// A stable name for Lambda error responses and alarms.
    pub fn error_type(&self) -> &'static str {
        match self {
            RequestError::InvalidArn(_)
            | RequestError::InvalidLabelAttributeName(_)
            | RequestError::NoPayload
            | RequestError::InvalidPayloadUri(_) => "InvalidRequest",
            RequestError::OutputOutsideScope { .. }
            | RequestError::PayloadUnreadable(StoreError::OutsideScope { .. }) => {
                "S3LocationNotAllowed"
            }
            RequestError::PayloadUnreadable(StoreError::NotFound { .. }) => "PayloadNotFound",
            RequestError::PayloadUnreadable(StoreError::TooLarge { .. }) => "PayloadTooLarge",
            RequestError::PayloadUnreadable(StoreError::AccessDenied { .. }) => {
                "PayloadAccessDenied"
            }
            RequestError::PayloadUnreadable(e) if e.is_retryable() => {
                "Retryable.PayloadUnavailable"
            }
            RequestError::PayloadUnreadable(_) => "PayloadUnreadable",
            RequestError::InvalidPayload { .. } => "InvalidPayload",
            RequestError::TooManyObjects { .. } => "PayloadTooManyObjects",
            RequestError::PriorAnswersUnreadable(StoreError::OutsideScope { .. }) => {
                "S3LocationNotAllowed"
            }
            RequestError::PriorAnswersUnreadable(e) if e.is_retryable() => {
                "Retryable.PriorAnswersUnavailable"
            }
            RequestError::PriorAnswersUnreadable(_) => "PriorAnswersUnreadable",
            RequestError::InvalidPriorAnswers(_) => "InvalidPriorAnswers",
        }
    }
}

/// The ports a request needs. `quality` is `None` when worker quality is switched off.
#[derive(Clone, Copy)]
pub struct Ports<'a> {
    /// Reads the payload and answers stored in S3 (possibly as the job's role).
    pub reader: &'a dyn ObjectReader,
    /// Writes consolidated masks.
    pub writer: &'a dyn ObjectWriter,
    /// Keeps the job's worker quality.
    pub quality: Option<&'a dyn VersionedStore>,
    /// Earlier top-up rounds' answers, read once per job ([`super::prior_answers`]); `None` reads none.
    pub prior_answers: Option<&'a PriorAnswersCache>,
    /// The audits that recalibrate confidences ([`super::job_audit`]); `None` looks for none.
    pub audit: Option<&'a AuditCache>,
    /// Where the request may read and write. The stores are expected to be [`Confined`] to it as well
    /// (the functions build them so); the service checks `outputConfig` against it up front, so that a
    /// request pointing its output elsewhere is refused as a whole rather than object by object.
    ///
    /// [`Confined`]: crate::s3_scope::Confined
    pub scope: &'a S3Scope,
}

impl std::fmt::Debug for Ports<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ports")
            .field("quality", &self.quality.is_some())
            .finish_non_exhaustive()
    }
}

/// What happened to the worker-quality state.
#[derive(Debug, Clone, PartialEq)]
pub enum QualityReport {
    /// Switched off, or no `outputConfig` to keep it under.
    Off,
    /// Saved at this URI.
    Saved {
        /// Where.
        uri: String,
        /// Batches in the document.
        batches: usize,
    },
    /// Could not be loaded or saved; the batch was answered anyway.
    Failed {
        /// Why.
        reason: String,
    },
}

/// A request's result.
#[derive(Debug, Clone)]
pub struct RequestOutcome {
    /// The response entries.
    pub entries: Vec<ConsolidationResponseEntry>,
    /// The batch, with its summary (its entries are moved to `entries`).
    pub batch: BatchOutcome,
    /// The worker-quality state.
    pub quality: QualityReport,
    /// Masks that could not be written (their entries were turned into failures).
    pub mask_failures: Vec<String>,
    /// Answers from earlier top-up rounds added to this batch's objects ([`super::prior_answers`]).
    pub earlier_answers: usize,
    /// Whether an audit recalibrated the confidences ([`super::job_audit`]).
    pub audit: AuditReport,
}

/// Where a job's worker quality is kept: `<outputConfig>/groundwork/worker-quality/<LAN>.json`.
pub fn worker_quality_uri(output_config: &S3Uri, label_attribute_name: &str) -> S3Uri {
    output_config.join(&format!(
        "groundwork/worker-quality/{label_attribute_name}.json"
    ))
}

/// Where a consolidated mask goes: beside Ground Truth's own consolidated output,
/// `<outputConfig>/consolidated-annotation/output/<datasetObjectId>/<LAN>.png`. The id comes from the
/// payload, so it is one [`key_segment`]: `../x` or `/x` cannot climb out of (or split) the folder.
pub fn mask_uri(
    output_config: &S3Uri,
    dataset_object_id: &str,
    label_attribute_name: &str,
) -> S3Uri {
    output_config.join(&format!(
        "consolidated-annotation/output/{}/{label_attribute_name}.png",
        key_segment(dataset_object_id)
    ))
}

/// The key of a batch in the worker-quality document: the payload URI (re-deliveries reuse it), or a
/// hash of an inline payload.
pub fn batch_key(request: &ConsolidationRequest) -> String {
    match (&request.payload.s3_uri, &request.payload.content) {
        (Some(uri), _) => uri.clone(),
        (None, Some(content)) => {
            format!("sha256:{}", hex::encode(Sha256::digest(content.as_bytes())))
        }
        (None, None) => String::new(),
    }
}

/// Handles one consolidation request.
pub async fn handle_request(
    request: &ConsolidationRequest,
    ports: Ports<'_>,
    settings: &BatchSettings,
    clock: &dyn Clock,
) -> Result<RequestOutcome, RequestError> {
    let job: LabelingJobArn = request.labeling_job_arn.parse()?;
    let lan = LabelAttributeName::new(request.label_attribute_name.as_str())
        .map_err(RequestError::InvalidLabelAttributeName)?;
    let lan = lan.as_str();
    let output_config: Option<S3Uri> = request
        .output_config
        .as_deref()
        .and_then(|o| o.parse().ok());
    if let Some(out) = &output_config
        && !ports.scope.allows(out)
    {
        return Err(RequestError::OutputOutsideScope {
            uri: out.to_string(),
        });
    }
    let (payload_name, payload) = match (&request.payload.s3_uri, &request.payload.content) {
        (Some(uri), _) => {
            let uri: S3Uri = uri.parse()?;
            let bytes = ports
                .reader
                .get_object(&uri)
                .await
                .map_err(RequestError::PayloadUnreadable)?;
            (uri.to_string(), bytes)
        }
        (None, Some(content)) => ("payload.content".to_owned(), content.clone().into_bytes()),
        (None, None) => return Err(RequestError::NoPayload),
    };
    let mut parsed = parse_payload(&payload).map_err(|source| RequestError::InvalidPayload {
        uri: payload_name.clone(),
        source,
    })?;
    if parsed.len() > settings.limits.max_objects {
        return Err(RequestError::TooManyObjects {
            uri: payload_name,
            objects: parsed.len(),
            limit: settings.limits.max_objects,
        });
    }
    // The parsed objects own their strings: the payload's bytes (as large as everything else together)
    // are not needed past this point.
    drop(payload);
    let mut earlier_answers = 0;
    if let (Some(cache), Some(out)) = (ports.prior_answers, &output_config) {
        let prior = load_prior_answers(cache, ports.reader, out).await?;
        if !prior.is_empty() {
            for object in parsed.iter_mut().flatten() {
                earlier_answers += prior.merge_into(object);
            }
        }
    }
    let objects = resolve_answers(parsed, ports.reader).await;
    // What we write (masks, worker quality) is encrypted with the request's key when it names one, as
    // Ground Truth encrypts the job's own output.
    let encryption = Encryption::kms_or_default(request.kms_key_id.as_deref());
    let key = batch_key(request);
    let state_uri = match (ports.quality, &output_config) {
        (Some(_), Some(out)) => Some(worker_quality_uri(out, lan)),
        _ => None,
    };
    let mut quality_report = QualityReport::Off;
    // The document and its ETag: the first save is conditioned on this very read.
    let (state, etag) = match (ports.quality, &state_uri) {
        (Some(store), Some(uri)) => load_quality(store, uri).await.unwrap_or_else(|e| {
            quality_report = QualityReport::Failed {
                reason: format!("load: {e}"),
            };
            (JobWorkerQuality::new(), None)
        }),
        _ => (JobWorkerQuality::new(), None),
    };
    let priors = state.prior_excluding(&key);
    let now = clock.now();
    let (audit, audit_report) = match (
        ports.audit,
        output_config
            .as_ref()
            .and_then(|out| audit_uri(out, job.name(), lan)),
    ) {
        (Some(cache), Some(uri)) => cache.load(ports.reader, &uri, now).await,
        _ => (None, AuditReport::Off),
    };

    let batch_job = BatchJob {
        job_name: job.name(),
        label_attribute_name: lan,
        labels: request.label_categories.as_deref(),
        now,
        audit: audit.as_deref(),
    };
    let mask_location = |id: &str| {
        output_config
            .as_ref()
            .map(|out| mask_uri(out, id, lan).to_string())
    };
    let mut batch = consolidate_batch(&batch_job, &objects, &priors, settings, &mask_location);

    // The entries are the response: moved out of the batch, not copied.
    let mut entries = std::mem::take(&mut batch.entries);
    let mut mask_failures = Vec::new();
    let mut unstored: std::collections::HashMap<&str, String> = std::collections::HashMap::new();
    for mask in &batch.mask_writes {
        let written = match mask.location.parse::<S3Uri>() {
            Ok(uri) => ports
                .writer
                .put_object(&uri, mask.png.clone(), "image/png", &encryption)
                .await
                .map_err(|e| e.to_string()),
            // Locations are made from `outputConfig` above; a key S3 would not take is still no panic.
            Err(e) => Err(format!("{}: {e}", mask.location)),
        };
        if let Err(reason) = written {
            mask_failures.push(format!("{}: {reason}", mask.dataset_object_id));
            unstored.insert(mask.dataset_object_id.as_str(), reason);
        }
    }
    // One pass over the entries, however many masks failed.
    if !unstored.is_empty() {
        for entry in &mut entries {
            if let Some(reason) = unstored.get(entry.dataset_object_id.as_str()) {
                mark_failed(entry, &format!("consolidated mask not stored: {reason}"));
            }
        }
    }

    if let (Some(store), Some(uri)) = (ports.quality, &state_uri)
        && !batch.stats.is_empty()
        && quality_report == QualityReport::Off
    {
        quality_report = save_quality(store, uri, &key, &batch, (state, etag), &encryption).await;
    }

    Ok(RequestOutcome {
        entries,
        batch,
        quality: quality_report,
        mask_failures,
        earlier_answers,
        audit: audit_report,
    })
}

/// Turns an entry into a failure entry (label removed, reason added), keeping its metadata.
fn mark_failed(entry: &mut ConsolidationResponseEntry, reason: &str) {
    entry.consolidated_annotation.content.body.fail(reason);
}

/// Why the worker-quality document cannot be used by this batch (which is then answered without it,
/// and writes nothing).
#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Written by a newer version of the function: left alone.
    #[error("{0}; the document is left alone")]
    Newer(super::worker_quality::WorkerQualityError),
}

/// The worker-quality document at `uri` and its ETag: an empty document without an ETag when there is
/// none yet, an empty one with the stored ETag when the stored JSON is unreadable (so that the write
/// replaces it); refused when a newer function version wrote it.
async fn load_quality(
    store: &dyn VersionedStore,
    uri: &S3Uri,
) -> Result<(JobWorkerQuality, Option<String>), LoadError> {
    Ok(match store.get_versioned(uri).await? {
        Some(doc) => (
            JobWorkerQuality::from_stored(&doc.body).map_err(LoadError::Newer)?,
            Some(doc.etag),
        ),
        None => (JobWorkerQuality::new(), None),
    })
}

/// Records the batch in the document `loaded` (as read for the priors, with its ETag) and writes it back
/// conditionally; on a conflict, reads the latest document and tries again.
async fn save_quality(
    store: &dyn VersionedStore,
    uri: &S3Uri,
    key: &str,
    batch: &BatchOutcome,
    loaded: (JobWorkerQuality, Option<String>),
    encryption: &Encryption,
) -> QualityReport {
    let mut loaded = Some(loaded);
    for _ in 0..QUALITY_WRITE_ATTEMPTS {
        let (mut state, etag) = match loaded.take() {
            Some(first) => first,
            None => match load_quality(store, uri).await {
                Ok(latest) => latest,
                Err(e) => {
                    return QualityReport::Failed {
                        reason: format!("reload: {e}"),
                    };
                }
            },
        };
        // `record` keeps at most `DEFAULT_MAX_BATCHES` batches apart.
        state.record(key, batch.stats.clone());
        let body = match state.to_json_vec() {
            Ok(b) => b,
            Err(e) => {
                return QualityReport::Failed {
                    reason: e.to_string(),
                };
            }
        };
        match store
            .put_if_match(uri, body, etag.as_deref(), encryption)
            .await
        {
            Ok(ConditionalPut::Written { .. }) => {
                return QualityReport::Saved {
                    uri: uri.to_string(),
                    batches: state.batch_count(),
                };
            }
            Ok(ConditionalPut::Conflict) => continue,
            Err(e) => {
                return QualityReport::Failed {
                    reason: format!("save: {e}"),
                };
            }
        }
    }
    QualityReport::Failed {
        reason: format!("save: still conflicting after {QUALITY_WRITE_ATTEMPTS} attempts"),
    }
}

/// The job's earlier top-up answers, from the cache or read once; none when the file does not exist.
async fn load_prior_answers(
    cache: &PriorAnswersCache,
    reader: &dyn ObjectReader,
    output_config: &S3Uri,
) -> Result<std::sync::Arc<PriorAnswers>, RequestError> {
    let uri = prior_answers_uri(output_config);
    if let Some(answers) = cache.get(&uri) {
        return Ok(answers);
    }
    let answers = match reader.get_object(&uri).await {
        Ok(bytes) => {
            PriorAnswers::parse(&uri, &bytes).map_err(RequestError::InvalidPriorAnswers)?
        }
        Err(StoreError::NotFound { .. }) => PriorAnswers::new(),
        Err(e) => return Err(RequestError::PriorAnswersUnreadable(e)),
    };
    let answers = std::sync::Arc::new(answers);
    cache.insert(&uri, answers.clone());
    Ok(answers)
}

/// Fetches answers given as `s3Uri` (large answers); an unreadable one becomes an unavailable answer of
/// its object, not a failed batch.
async fn resolve_answers(
    parsed: Vec<Result<crate::contracts::PayloadObject, crate::contracts::BadPayloadObject>>,
    reader: &dyn ObjectReader,
) -> Vec<BatchObject> {
    let mut objects = Vec::with_capacity(parsed.len());
    for item in parsed {
        let object = match item {
            Err(bad) => Err(bad),
            Ok(o) => {
                let mut answers = Vec::with_capacity(o.annotations.len());
                for a in o.annotations {
                    let content = match (a.annotation_data.content, a.annotation_data.s3_uri) {
                        (Some(c), _) => Ok(c),
                        (None, Some(uri)) => {
                            fetch_answer(&uri, reader).await.map(std::sync::Arc::from)
                        }
                        (None, None) => {
                            Err("annotationData has neither content nor s3Uri".to_owned())
                        }
                    };
                    answers.push(ResolvedAnswer {
                        worker_id: a.worker_id,
                        content,
                    });
                }
                Ok(ResolvedObject {
                    dataset_object_id: o.dataset_object_id,
                    data_object: o.data_object,
                    answers,
                    prior_label: None,
                })
            }
        };
        objects.push(object);
    }
    objects
}

async fn fetch_answer(uri: &str, reader: &dyn ObjectReader) -> Result<String, String> {
    let uri: S3Uri = uri.parse().map_err(|e: S3UriError| e.to_string())?;
    let bytes = reader.get_object(&uri).await.map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|_| format!("{uri} is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::FixedClock;
    use crate::ports::fakes::MemoryObjectStore;
    use crate::testing::block_on;
    use chrono::TimeZone;
    use serde_json::json;

    fn clock() -> FixedClock {
        FixedClock(chrono::Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).unwrap())
    }

    /// Handles `request` with the default settings and the test clock.
    fn handle(
        request: &ConsolidationRequest,
        ports: Ports<'_>,
    ) -> Result<RequestOutcome, RequestError> {
        block_on(handle_request(
            request,
            ports,
            &BatchSettings::default(),
            &clock(),
        ))
    }

    /// Every port on one in-memory store, worker quality on, no S3 scope.
    fn store_ports(store: &MemoryObjectStore) -> Ports<'_> {
        Ports {
            reader: store,
            writer: store,
            quality: Some(store),
            prior_answers: None,
            audit: None,
            scope: &ANYWHERE,
        }
    }

    static ANYWHERE: crate::s3_scope::S3Scope = crate::s3_scope::S3Scope::anywhere();

    fn request(payload_uri: &str) -> ConsolidationRequest {
        serde_json::from_value(json!({
            "version": "2018-10-06",
            "labelingJobArn": "arn:aws:sagemaker:us-east-1:111111111111:labeling-job/animals",
            "labelCategories": ["cat", "dog"],
            "labelAttributeName": "animal",
            "roleArn": "arn:aws:iam::111111111111:role/gt",
            "payload": {"s3Uri": payload_uri},
            "outputConfig": "s3://bucket/out/animals/annotations"
        }))
        .unwrap()
    }

    fn answer(worker: &str, label: &str) -> serde_json::Value {
        json!({"workerId": worker, "annotationData": {"content": json!({"crowd-image-classifier": {"label": label}}).to_string()}})
    }

    fn payload(objects: &[(&str, &[(&str, &str)])]) -> String {
        let items: Vec<_> = objects
            .iter()
            .map(|(id, answers)| {
                json!({"datasetObjectId": id, "dataObject": {"s3Uri": format!("s3://bucket/{id}.jpg")},
                       "annotations": answers.iter().map(|(w, l)| answer(w, l)).collect::<Vec<_>>()})
            })
            .collect();
        serde_json::to_string(&items).unwrap()
    }

    #[test]
    fn a_top_up_round_decides_from_the_earlier_rounds_answers_too() {
        let store = MemoryObjectStore::new();
        let uri = "s3://bucket/out/animals/annotations/consolidated-annotation/consolidation-request/iteration-1/r2.json";
        // This round: one worker says dog. Earlier: two said cat, and w3 said cat but now says dog.
        store.insert(uri, payload(&[("0", &[("w3", "dog")])]));
        let mut earlier = PriorAnswers::new();
        let annotations = serde_json::from_value(json!([
            answer("w1", "cat"),
            answer("w2", "cat"),
            answer("w3", "cat")
        ]))
        .unwrap();
        earlier.add("s3:s3://bucket/0.jpg".to_owned(), annotations);
        let prior_uri = "s3://bucket/out/animals/annotations/groundwork/top-up/prior-answers.jsonl";
        store.insert(prior_uri, earlier.to_jsonl());
        let cache = PriorAnswersCache::new();
        let ports = Ports {
            prior_answers: Some(&cache),
            ..store_ports(&store)
        };
        let outcome = handle(&request(uri), ports).unwrap();
        let content = &outcome.entries[0].consolidated_annotation.content;
        let meta = serde_json::to_value(content).unwrap();
        assert_eq!(meta["animal-metadata"]["class-name"], "cat", "{meta}");
        assert_eq!(outcome.earlier_answers, 2, "w1 and w2; w3 answered again");
        assert_eq!(
            outcome.batch.summary.skipped_answers, 0,
            "w3 counts once, with the newer answer"
        );

        // Read once per job: a changed file is not read again by this container.
        store.insert(prior_uri, "not json");
        assert!(handle(&request(uri), ports).is_ok());
        // A broken file fails the batch with a stable name, before anything is answered.
        let fresh = PriorAnswersCache::new();
        let err = handle(
            &request(uri),
            Ports {
                prior_answers: Some(&fresh),
                ..ports
            },
        )
        .unwrap_err();
        assert_eq!(err.error_type(), "InvalidPriorAnswers");
        // Without the file (every job that is not a top-up round) nothing changes.
        let other = MemoryObjectStore::new();
        other.insert(uri, payload(&[("0", &[("w3", "dog")])]));
        let cache = PriorAnswersCache::new();
        let alone = handle(
            &request(uri),
            Ports {
                prior_answers: Some(&cache),
                ..store_ports(&other)
            },
        )
        .unwrap();
        let meta = serde_json::to_value(&alone.entries[0].consolidated_annotation.content).unwrap();
        assert_eq!(meta["animal-metadata"]["class-name"], "dog");
    }

    #[test]
    fn an_audit_below_the_output_path_recalibrates_confidences_and_never_labels() {
        use crate::consolidate::classification::audit::{AuditDocument, Verdict};
        let store = MemoryObjectStore::new();
        let uri = "s3://bucket/out/animals/annotations/consolidated-annotation/consolidation-request/iteration-1/a.json";
        let objects: Vec<(String, Vec<(&str, &str)>)> = (0..6)
            .map(|i| {
                let label = if i % 2 == 0 { "cat" } else { "dog" };
                (
                    i.to_string(),
                    vec![("w1", label), ("w2", label), ("w3", label)],
                )
            })
            // A lone answer from a worker the batch knows nothing else of.
            .chain([("6".to_owned(), vec![("w9", "cat")])])
            .collect();
        let refs: Vec<(&str, &[(&str, &str)])> = objects
            .iter()
            .map(|(id, a)| (id.as_str(), a.as_slice()))
            .collect();
        store.insert(uri, payload(&refs));
        let confidences = |outcome: &RequestOutcome| -> Vec<(serde_json::Value, f64)> {
            outcome
                .entries
                .iter()
                .map(|e| {
                    let content = serde_json::to_value(&e.consolidated_annotation.content).unwrap();
                    let confidence = content["animal-metadata"]["confidence"].as_f64().unwrap();
                    (content["animal"].clone(), confidence)
                })
                .collect()
        };
        let cache = AuditCache::new();
        let ports = Ports {
            audit: Some(&cache),
            ..store_ports(&store)
        };
        let audit_uri = "s3://bucket/out/groundwork/audit/animal.json";
        let before = handle(&request(uri), ports).unwrap();
        assert_eq!(
            before.audit,
            AuditReport::Absent {
                uri: audit_uri.to_owned()
            }
        );
        // The audit says: labels this sure are right 80 % of the time; lone answers 60 %.
        let mut verdicts: Vec<Verdict> = (0..60)
            .map(|i| Verdict {
                confidence: 0.99,
                correct: i % 5 != 0,
            })
            .collect();
        verdicts.extend((0..10).map(|i| Verdict {
            confidence: 0.0,
            correct: i < 6,
        }));
        let document = AuditDocument {
            source: None,
            verdicts,
        };
        store.insert(audit_uri, document.to_json_vec());
        // The absence is remembered for ten minutes: this container does not read it yet.
        let cached = handle(&request(uri), ports).unwrap();
        assert_eq!(confidences(&cached), confidences(&before));
        let fresh = AuditCache::new();
        let after = handle(
            &request(uri),
            Ports {
                audit: Some(&fresh),
                ..ports
            },
        )
        .unwrap();
        assert_eq!(
            after.audit,
            AuditReport::Applied {
                uri: audit_uri.to_owned(),
                audited: 70
            }
        );
        let (before, after) = (confidences(&before), confidences(&after));
        for ((label_before, c_before), (label_after, c_after)) in before.iter().zip(&after) {
            assert_eq!(label_before, label_after, "an audit never changes a label");
            if *c_before >= 0.9 {
                assert!(*c_after <= *c_before - 0.03, "{c_before} -> {c_after}");
            }
        }
        assert_eq!(before[6].1, 0.0, "one answer: Ground Truth's confidence 0");
        assert_eq!(after[6].1, 0.58, "one answer, audited: (6 + 1) / (10 + 2)");

        // A top-up round reads its root job's audit.
        let mut round = request(uri);
        round.label_attribute_name = "animal-top-up-2".to_owned();
        let outcome = handle(
            &round,
            Ports {
                audit: Some(&fresh),
                ..ports
            },
        )
        .unwrap();
        assert!(matches!(outcome.audit, AuditReport::Applied { .. }));

        // A broken document is reported; the batch is answered with the model's confidences.
        store.insert(audit_uri, "{\"Verdicts\": 3}");
        let broken = AuditCache::new();
        let outcome = handle(
            &request(uri),
            Ports {
                audit: Some(&broken),
                ..ports
            },
        )
        .unwrap();
        assert!(
            matches!(&outcome.audit, AuditReport::Failed { uri, .. } if uri == audit_uri),
            "{:?}",
            outcome.audit
        );
        assert_eq!(confidences(&outcome), before);
    }

    #[test]
    fn reads_answers_from_s3_and_keeps_worker_quality() {
        let store = MemoryObjectStore::new();
        let uri = "s3://bucket/out/animals/annotations/consolidated-annotation/consolidation-request/iteration-1/a.json";
        let mut body: serde_json::Value = serde_json::from_str(&payload(&[
            ("0", &[("w1", "cat"), ("w2", "cat")]),
            ("1", &[("w1", "dog"), ("w2", "dog")]),
        ]))
        .unwrap();
        body[1]["annotations"][1]["annotationData"] =
            json!({"s3Uri": "s3://bucket/answers/1-w2.json"});
        store.insert(uri, body.to_string());
        store.insert(
            "s3://bucket/answers/1-w2.json",
            r#"{"crowd-image-classifier":{"label":"dog"}}"#,
        );
        let ports = store_ports(&store);
        let out = handle(&request(uri), ports).unwrap();
        assert_eq!(out.entries.len(), 2);
        assert_eq!(out.entries[1].content_map()["animal"], json!(1));
        let state_uri = "s3://bucket/out/animals/annotations/groundwork/worker-quality/animal.json";
        assert_eq!(
            out.quality,
            QualityReport::Saved {
                uri: state_uri.to_owned(),
                batches: 1
            }
        );
        let state = JobWorkerQuality::from_json_slice(&store.get(state_uri).unwrap()).unwrap();
        assert!(state.contains_batch(uri));
    }

    #[test]
    fn what_a_request_writes_is_encrypted_with_its_kms_key() {
        let store = MemoryObjectStore::new();
        let uri = "s3://bucket/p/kms.json";
        store.insert(uri, payload(&[("0", &[("w1", "cat"), ("w2", "cat")])]));
        let ports = store_ports(&store);
        let state_uri = "s3://bucket/out/animals/annotations/groundwork/worker-quality/animal.json";
        handle(&request(uri), ports).unwrap();
        assert_eq!(
            store.encryption_of(state_uri),
            Some(Encryption::BucketDefault)
        );
        let mut with_key = request(uri);
        with_key.kms_key_id = Some("alias/labels".to_owned());
        handle(&with_key, ports).unwrap();
        assert_eq!(
            store.encryption_of(state_uri),
            Some(Encryption::Kms {
                key_id: "alias/labels".to_owned()
            })
        );
    }

    #[test]
    fn a_redelivered_batch_gives_the_same_answer_and_replaces_its_contribution() {
        let store = MemoryObjectStore::new();
        let uri = "s3://bucket/p/1.json";
        store.insert(
            uri,
            payload(&[("0", &[("w1", "cat"), ("w2", "dog"), ("w3", "cat")])]),
        );
        let ports = store_ports(&store);
        let state = "s3://bucket/out/animals/annotations/groundwork/worker-quality/animal.json";
        let stored = || block_on(store.get_object(&state.parse().unwrap())).unwrap();
        let first = handle(&request(uri), ports).unwrap();
        let after_first = stored();
        let second = handle(&request(uri), ports).unwrap();
        assert_eq!(first.entries, second.entries);
        assert_eq!(
            second.quality,
            QualityReport::Saved {
                uri: state.to_owned(),
                batches: 1
            }
        );
        // Replaced, not added: the stored document is byte for byte what the first delivery left.
        assert_eq!(stored(), after_first);
    }

    /// A batch redelivered after other batches were recorded is answered from every *other* batch's
    /// contribution as recorded (the later ones included), and its own earlier contribution is replaced.
    /// So "the same answer" is exact while the job's history stands still — every further redelivery
    /// gives the same entries and leaves the same document — and a redelivery after later batches may
    /// differ from the batch's first answer, because more is known about its workers.
    #[test]
    fn a_batch_redelivered_after_later_batches_is_answered_from_their_contributions() {
        let a = "s3://bucket/p/a.json";
        let b = "s3://bucket/p/b.json";
        let store = MemoryObjectStore::new();
        store.insert(a, payload(&[("0", &[("w1", "cat"), ("w2", "dog")])]));
        store.insert(
            b,
            payload(&[
                ("1", &[("w1", "cat"), ("w2", "dog"), ("w3", "dog")]),
                ("2", &[("w1", "cat"), ("w2", "cat"), ("w3", "cat")]),
                ("3", &[("w1", "dog"), ("w2", "cat"), ("w3", "cat")]),
            ]),
        );
        let ports = store_ports(&store);
        let state: S3Uri =
            "s3://bucket/out/animals/annotations/groundwork/worker-quality/animal.json"
                .parse()
                .unwrap();
        let first = handle(&request(a), ports).unwrap();
        handle(&request(b), ports).unwrap();
        let again = handle(&request(a), ports).unwrap();
        let document = block_on(store.get_object(&state)).unwrap();
        let once_more = handle(&request(a), ports).unwrap();
        assert_eq!(again.entries, once_more.entries);
        assert_eq!(block_on(store.get_object(&state)).unwrap(), document);
        assert!(matches!(
            again.quality,
            QualityReport::Saved { batches: 2, .. }
        ));
        // Two workers who disagree, first with no history, then with b's: another confidence.
        assert_ne!(first.entries, again.entries);
    }

    /// A store where another Lambda saves its batch between this batch's read and its first write.
    struct RacedStore {
        inner: MemoryObjectStore,
        rival: std::sync::Mutex<Option<(S3Uri, Vec<u8>)>>,
    }

    #[async_trait::async_trait]
    impl VersionedStore for RacedStore {
        async fn get_versioned(
            &self,
            uri: &S3Uri,
        ) -> Result<Option<crate::ports::VersionedObject>, StoreError> {
            self.inner.get_versioned(uri).await
        }

        async fn put_if_match(
            &self,
            uri: &S3Uri,
            body: Vec<u8>,
            expected: Option<&str>,
            encryption: &crate::ports::Encryption,
        ) -> Result<ConditionalPut, StoreError> {
            let rival = self.rival.lock().ok().and_then(|mut r| r.take());
            if let Some((rival_uri, rival_body)) = rival {
                self.inner.insert(&rival_uri.to_string(), rival_body);
            }
            self.inner
                .put_if_match(uri, body, expected, encryption)
                .await
        }
    }

    #[test]
    fn a_batch_saved_meanwhile_by_another_lambda_is_kept_beside_ours() {
        let store = MemoryObjectStore::new();
        let uri = "s3://bucket/p/ours.json";
        store.insert(uri, payload(&[("0", &[("w1", "cat"), ("w2", "cat")])]));
        let state_uri: S3Uri =
            "s3://bucket/out/animals/annotations/groundwork/worker-quality/animal.json"
                .parse()
                .unwrap();
        let mut rival_state = JobWorkerQuality::new();
        let mut rival_stats = crate::consolidate::worker_quality::WorkerStats::new();
        rival_stats.add_agreement("w9", 1.0, 1.0);
        rival_state.record("s3://bucket/p/theirs.json", rival_stats);
        let quality = RacedStore {
            inner: MemoryObjectStore::new(),
            rival: std::sync::Mutex::new(Some((
                state_uri.clone(),
                rival_state.to_json_vec().unwrap(),
            ))),
        };
        let ports = Ports {
            reader: &store,
            writer: &store,
            quality: Some(&quality),
            prior_answers: None,
            audit: None,
            scope: &crate::s3_scope::S3Scope::anywhere(),
        };
        let out = handle(&request(uri), ports).unwrap();
        assert_eq!(
            out.quality,
            QualityReport::Saved {
                uri: state_uri.to_string(),
                batches: 2
            }
        );
        let saved = quality.inner.get(&state_uri.to_string()).unwrap();
        let state = JobWorkerQuality::from_json_slice(&saved).unwrap();
        assert!(state.contains_batch(uri), "ours");
        assert!(state.contains_batch("s3://bucket/p/theirs.json"), "theirs");
    }

    #[test]
    fn earlier_batches_make_a_lone_worker_confident() {
        let store = MemoryObjectStore::new();
        let ports = store_ports(&store);
        // Batch 1: w1 always agrees with two others.
        let many: Vec<(String, Vec<(&str, &str)>)> = (0..20)
            .map(|i| {
                let l = if i % 2 == 0 { "cat" } else { "dog" };
                (i.to_string(), vec![("w1", l), ("w2", l), ("w3", l)])
            })
            .collect();
        let objects: Vec<(&str, &[(&str, &str)])> = many
            .iter()
            .map(|(id, a)| (id.as_str(), a.as_slice()))
            .collect();
        store.insert("s3://bucket/p/1.json", payload(&objects));
        handle(&request("s3://bucket/p/1.json"), ports).unwrap();
        // Batch 2: w1 alone.
        store.insert("s3://bucket/p/2.json", payload(&[("x", &[("w1", "dog")])]));
        let out = handle(&request("s3://bucket/p/2.json"), ports).unwrap();
        let confidence = out.entries[0].content_map()["animal-metadata"]["confidence"]
            .as_f64()
            .unwrap();
        assert!(
            confidence > 0.5,
            "a known good worker alone is trusted: {confidence}"
        );
        // Without the earlier batch the same answer is 0.00, as Ground Truth writes.
        let fresh = MemoryObjectStore::new();
        fresh.insert("s3://bucket/p/2.json", payload(&[("x", &[("w1", "dog")])]));
        let ports = Ports {
            reader: &fresh,
            writer: &fresh,
            quality: Some(&fresh),
            prior_answers: None,
            audit: None,
            scope: &crate::s3_scope::S3Scope::anywhere(),
        };
        let out = handle(&request("s3://bucket/p/2.json"), ports).unwrap();
        assert_eq!(
            out.entries[0].content_map()["animal-metadata"]["confidence"],
            json!(0.0)
        );
    }

    #[test]
    fn corrupt_worker_quality_never_fails_a_batch() {
        let store = MemoryObjectStore::new();
        store.insert(
            "s3://bucket/out/animals/annotations/groundwork/worker-quality/animal.json",
            "{not json",
        );
        store.insert(
            "s3://bucket/p/1.json",
            payload(&[("0", &[("w1", "cat"), ("w2", "cat")])]),
        );
        let ports = store_ports(&store);
        let out = handle(&request("s3://bucket/p/1.json"), ports).unwrap();
        assert_eq!(out.entries.len(), 1);
        assert!(matches!(out.quality, QualityReport::Saved { .. }));
    }

    #[test]
    fn a_worker_quality_document_of_a_newer_format_is_left_alone() {
        let store = MemoryObjectStore::new();
        let state_uri = "s3://bucket/out/animals/annotations/groundwork/worker-quality/animal.json";
        let newer = format!(
            r#"{{"version":{},"workers":{{"w1":[0.9]}}}}"#,
            super::super::worker_quality::FORMAT_VERSION + 1
        );
        store.insert(state_uri, newer.clone());
        store.insert(
            "s3://bucket/p/1.json",
            payload(&[("0", &[("w1", "cat"), ("w2", "cat")])]),
        );
        let ports = store_ports(&store);
        let out = handle(&request("s3://bucket/p/1.json"), ports).unwrap();
        assert_eq!(out.entries.len(), 1, "the batch is answered");
        assert!(out.entries[0].content_map()["animal"].is_number());
        let QualityReport::Failed { reason } = &out.quality else {
            panic!("{:?}", out.quality)
        };
        assert!(reason.contains("left alone"), "{reason}");
        assert_eq!(
            store.get(state_uri).unwrap(),
            newer.as_bytes(),
            "not overwritten"
        );
        assert!(store.writes().is_empty());
    }

    #[test]
    fn request_level_errors_have_stable_names() {
        let store = MemoryObjectStore::new();
        let ports = Ports {
            reader: &store,
            writer: &store,
            quality: None,
            prior_answers: None,
            audit: None,
            scope: &crate::s3_scope::S3Scope::anywhere(),
        };
        let run = |r: ConsolidationRequest| handle(&r, ports);
        assert_eq!(
            run(request("s3://bucket/missing.json"))
                .unwrap_err()
                .error_type(),
            "PayloadNotFound"
        );
        store.insert("s3://bucket/denied.json", "[]");
        store.deny("s3://bucket/denied.json");
        assert_eq!(
            run(request("s3://bucket/denied.json"))
                .unwrap_err()
                .error_type(),
            "PayloadAccessDenied"
        );
        store.insert("s3://bucket/obj.json", "{}");
        assert_eq!(
            run(request("s3://bucket/obj.json"))
                .unwrap_err()
                .error_type(),
            "InvalidPayload"
        );
        assert_eq!(
            run(request("not-s3")).unwrap_err().error_type(),
            "InvalidRequest"
        );
        let mut r = request("s3://bucket/x.json");
        r.payload.s3_uri = None;
        assert_eq!(run(r).unwrap_err().error_type(), "InvalidRequest");
        let too_large = RequestError::PayloadUnreadable(StoreError::TooLarge {
            uri: "s3://bucket/x.json".to_owned(),
            bytes: 10,
            limit: 5,
        });
        assert_eq!(too_large.error_type(), "PayloadTooLarge");
    }

    #[test]
    fn a_payload_over_the_object_limit_is_refused_before_any_work() {
        let store = MemoryObjectStore::new();
        let answers: &[(&str, &str)] = &[("w1", "cat"), ("w2", "cat")];
        store.insert(
            "s3://bucket/p.json",
            payload(&[("0", answers), ("1", answers), ("2", answers)]),
        );
        let mut settings = BatchSettings::default();
        settings.limits.max_objects = 2;
        let refused = block_on(handle_request(
            &request("s3://bucket/p.json"),
            store_ports(&store),
            &settings,
            &clock(),
        ))
        .unwrap_err();
        assert_eq!(refused.error_type(), "PayloadTooManyObjects");
        assert!(
            refused
                .to_string()
                .contains("holds 3 objects, over the limit of 2"),
            "{refused}"
        );
        assert!(store.writes().is_empty(), "nothing written");
        // At the limit, the batch is answered.
        settings.limits.max_objects = 3;
        let outcome = block_on(handle_request(
            &request("s3://bucket/p.json"),
            store_ports(&store),
            &settings,
            &clock(),
        ))
        .unwrap();
        assert_eq!(outcome.entries.len(), 3);
    }

    #[test]
    fn a_broken_label_attribute_name_is_refused_before_any_read_or_write() {
        let store = MemoryObjectStore::new();
        store.insert(
            "s3://bucket/p/1.json",
            payload(&[("0", &[("w1", "cat"), ("w2", "cat")])]),
        );
        let ports = store_ports(&store);
        let long = "x".repeat(100_000);
        for (lan, says) in [
            ("../../../../etc/x", "must be letters and digits"),
            ("animal-metadata", "must not end in `-metadata`"),
            ("source-ref", "reserved"),
            ("", "empty"),
            (long.as_str(), "100000 characters long"),
        ] {
            let mut r = request("s3://bucket/p/1.json");
            r.label_attribute_name = lan.to_owned();
            let error = handle(&r, ports).unwrap_err();
            assert_eq!(error.error_type(), "InvalidRequest", "{lan}");
            let message = error.to_string();
            assert!(message.contains(says), "{lan}: {message}");
            assert!(message.len() < 500, "{} characters", message.len());
            assert_eq!(
                message.matches("label attribute name").count(),
                1,
                "said once: {message}"
            );
        }
        assert_eq!(
            store.keys(),
            vec!["s3://bucket/p/1.json".to_owned()],
            "nothing written"
        );
    }

    #[test]
    fn a_mask_key_never_climbs_out_of_the_output_prefix() {
        let out: S3Uri = "s3://bucket/out/job/annotations".parse().unwrap();
        let folder = "out/job/annotations/consolidated-annotation/output/";
        let mut seen = std::collections::HashSet::new();
        for id in [
            "3",
            "../../../../etc",
            "/abs",
            "a/b",
            "..",
            ".",
            "",
            "%2E%2E",
            "x\\..\\y",
        ] {
            let key = mask_uri(&out, id, "bird-ref").key().to_owned();
            let rest = key
                .strip_prefix(folder)
                .unwrap_or_else(|| panic!("{id:?} -> {key}"));
            let segment = rest
                .strip_suffix("/bird-ref.png")
                .unwrap_or_else(|| panic!("{id:?} -> {key}"));
            assert!(!segment.contains('/'), "{id:?} -> {key}");
            assert!(!matches!(segment, "" | "." | ".."), "{id:?} -> {key}");
            assert!(seen.insert(segment.to_owned()), "{id:?} shares {key}");
        }
        assert_eq!(
            mask_uri(&out, "3", "bird-ref").key(),
            "out/job/annotations/consolidated-annotation/output/3/bird-ref.png"
        );
    }

    #[test]
    fn batch_keys_identify_deliveries() {
        let mut r = request("s3://b/p.json");
        assert_eq!(batch_key(&r), "s3://b/p.json");
        r.payload.s3_uri = None;
        r.payload.content = Some("[]".to_owned());
        assert!(batch_key(&r).starts_with("sha256:"));
    }

    #[test]
    fn segmentation_masks_are_stored_beside_ground_truths_output() {
        use base64::Engine;
        // A 4×4 mask, all "Bird" (#2ca02c) but the first row, as two workers painted it.
        let mut raw = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut raw, 4, 4);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().unwrap();
            let pixels: Vec<u8> = (0..16)
                .flat_map(|i| {
                    if i < 4 {
                        [0xff, 0xff, 0xff]
                    } else {
                        [0x2c, 0xa0, 0x2c]
                    }
                })
                .collect();
            writer.write_image_data(&pixels).unwrap();
        }
        let png = base64::engine::general_purpose::STANDARD.encode(raw);
        let answer = |w: &str| {
            json!({"workerId": w, "annotationData": {"content": json!({"crowd-semantic-segmentation": {
                "inputImageProperties": {"height": 4, "width": 4},
                "labelMappings": {"Bird": {"color": "#2ca02c"}},
                "labeledImage": {"pngImageData": png}}}).to_string()}})
        };
        let store = MemoryObjectStore::new();
        store.insert(
            "s3://bucket/p/seg.json",
            json!([{"datasetObjectId": "3", "dataObject": {"s3Uri": "s3://bucket/3.jpg"},
                    "annotations": [answer("w1"), answer("w2")]}])
            .to_string(),
        );
        let mut r = request("s3://bucket/p/seg.json");
        r.label_attribute_name = "bird-ref".to_owned();
        r.label_categories = Some(vec!["Bird".to_owned()]);
        let ports = store_ports(&store);
        let out = handle(&r, ports).unwrap();
        let mask =
            "s3://bucket/out/animals/annotations/consolidated-annotation/output/3/bird-ref.png";
        assert_eq!(out.entries[0].content_map()["bird-ref"], mask);
        assert!(out.mask_failures.is_empty());
        let stored = store
            .get(mask)
            .expect("the mask is written before the answer");
        assert_eq!(&stored[1..4], b"PNG");

        // A mask that cannot be stored fails its own entry (no label pointing at a missing file), with
        // the reason; the request is still answered.
        struct NoWrites;
        #[async_trait::async_trait]
        impl ObjectWriter for NoWrites {
            async fn put_object(
                &self,
                uri: &S3Uri,
                _: Vec<u8>,
                _: &str,
                _: &Encryption,
            ) -> Result<(), StoreError> {
                Err(StoreError::AccessDenied {
                    uri: uri.to_string(),
                    message: "no".to_owned(),
                })
            }
        }
        let refused = handle(
            &r,
            Ports {
                writer: &NoWrites,
                ..ports
            },
        )
        .unwrap();
        assert_eq!(refused.mask_failures.len(), 1);
        let content = refused.entries[0].content_map();
        assert!(
            content
                .get("bird-ref")
                .is_none_or(serde_json::Value::is_null),
            "{content:?}"
        );
        let reason = content["bird-ref-metadata"]["failure-reason"]
            .as_str()
            .unwrap();
        assert!(
            reason.starts_with("consolidated mask not stored"),
            "{reason}"
        );
    }
}
