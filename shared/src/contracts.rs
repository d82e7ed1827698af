//! The JSON Ground Truth and EventBridge exchange with our Lambdas, as typed values.
//!
//! Lenient on input, strict on output (`contracts.md` §1, §2, §6): both `version` values are accepted and
//! never checked, `labelCategories` may be absent or null, a payload annotation may carry `content` or
//! `s3Uri`, `datasetObjectId` may arrive as a number, and unknown keys are ignored. What we emit follows
//! the documented form exactly (`isHumanAnnotationRequired` is a JSON boolean, not the `"true"` string of
//! AWS's own recipe).
//!
//! A consolidation payload is parsed object by object ([`parse_payload`]): one malformed object becomes
//! one [`BadPayloadObject`], never a failed batch.

use std::sync::Arc;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::lan::metadata_key;
use crate::metadata::CommonMetadata;
use crate::output::LabelBody;

pub use crate::labeling_job::LabelingJobStatus;

// ---------------------------------------------------------------------------------------------------
// Pre-annotation (pre-human-task) Lambda, §1.

/// The event Ground Truth sends to a pre-annotation Lambda, once per data object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreHumanTaskRequest {
    /// `2018-10-06` in every captured event, `2018-10-16` in the docs; opaque.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The labeling job (its name segment is lower-cased by Ground Truth).
    pub labeling_job_arn: String,
    /// The whole manifest line, as the exact text of the event (so that values our JSON numbers
    /// cannot hold, such as integers past 64 bits or `1e400`, come through untouched). Always a JSON
    /// object.
    #[serde(deserialize_with = "object_text")]
    pub data_object: RawJson,
}

/// A [`RawJson`] that must be a JSON object.
fn object_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<RawJson, D::Error> {
    let raw = RawJson::deserialize(deserializer)?;
    if raw.get().trim_start().starts_with('{') {
        Ok(raw)
    } else {
        Err(serde::de::Error::invalid_type(
            serde::de::Unexpected::Other("a JSON value that is not an object"),
            &"a JSON object",
        ))
    }
}

/// JSON kept as its exact text: a manifest line Ground Truth copies through unchanged, whose values we
/// must not round (compared by text).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawJson(Box<serde_json::value::RawValue>);

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl RawJson {
    /// The exact text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// `text`, which must be one JSON value.
    pub fn from_text(text: impl Into<String>) -> Result<Self, serde_json::Error> {
        serde_json::value::RawValue::from_string(text.into()).map(RawJson)
    }

    /// `value` serialised compactly.
    pub fn from_value<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(RawJson)
    }
}

/// What the worker template receives as `task.input`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskInput {
    /// The `source-ref` (S3 URI) or `source` (inline text) of the data object.
    pub task_object: String,
    /// The whole data object, as adjustment/verification templates read `task.input.manifestLine.<LAN>`:
    /// the event's `dataObject`, byte for byte.
    pub manifest_line: RawJson,
    /// The job's label categories, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
}

/// The pre-annotation Lambda's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreHumanTaskResponse {
    /// Becomes `task.input` in the template.
    pub task_input: TaskInput,
    /// `false` skips human labeling of this object.
    pub is_human_annotation_required: bool,
}

// ---------------------------------------------------------------------------------------------------
// Annotation-consolidation Lambda, §2.

/// Where the consolidation payload is. Only `s3Uri` is documented; inline `content` is accepted too
/// (some samples and our CLI use it).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadLocation {
    /// `s3://…/consolidation-request/iteration-<n>/<timestamp>.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_uri: Option<String>,
    /// The payload itself, as JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// The event Ground Truth sends to a consolidation Lambda, once per batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsolidationRequest {
    /// Opaque.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The labeling job.
    pub labeling_job_arn: String,
    /// The job's labels; absent or null when the job has no label category file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_categories: Option<Vec<String>>,
    /// The job's label attribute name, case preserved.
    pub label_attribute_name: String,
    /// The job's execution role (may be assumed to read the payload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// Where the payload is.
    pub payload: PayloadLocation,
    /// Undocumented but always present in real events: `s3://<S3OutputPath>/<job-name>/annotations`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_config: Option<String>,
    /// Undocumented: the job's `NumberOfHumanWorkersPerDataObject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_human_workers_per_data_object: Option<u32>,
    /// Undocumented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_enabled: Option<bool>,
    /// Only mentioned by AWS's recipe: a KMS key for what we write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
}

/// A data object of the payload: `s3Uri` for `source-ref` manifests, `content` for `source` ones.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadDataObject {
    /// The `source-ref`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_uri: Option<String>,
    /// The `source` text (which may itself be JSON text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// One worker's answer: a JSON-encoded string of the crowd form's output, inline or in S3.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnnotationData {
    /// The answer as JSON text, e.g. `{"crowd-image-classifier":{"label":"Cat"}}` (identical answers of a
    /// payload share one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Arc<str>>,
    /// Where the answer is, for large answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_uri: Option<String>,
}

/// One worker's submission for a data object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerAnnotation {
    /// e.g. `private.us-west-2.ef7294f850a3d9d1` (shared by the worker's answers in a payload).
    pub worker_id: Arc<str>,
    /// The answer.
    pub annotation_data: AnnotationData,
}

/// A Ground Truth worker-response file (`annotations/worker-response/iteration-<n>/<datasetObjectId>/
/// <timestamp>.json`): the answers submitted for one data object. Only what consolidation needs is read;
/// timings and worker metadata are ignored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WorkerResponseFile {
    /// The answers; an element that is not an answer object is kept as [`WorkerResponse::Unreadable`]
    /// so that one bad element never loses the others.
    #[serde(default)]
    pub answers: Vec<WorkerResponse>,
}

/// One element of [`WorkerResponseFile::answers`].
#[derive(Debug, Clone, PartialEq)]
pub enum WorkerResponse {
    /// An answer object.
    Answer(WorkerResponseAnswer),
    /// Anything else (not read further).
    Unreadable,
}

impl<'de> Deserialize<'de> for WorkerResponse {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Each element is read on its own, from its text: an untagged enum would buffer it and lose the
        // exact text of `answerContent`.
        let element = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        Ok(serde_json::from_str(element.get()).map_or(Self::Unreadable, Self::Answer))
    }
}

/// One worker's answer in a worker-response file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerResponseAnswer {
    /// The worker, absent in a damaged file.
    #[serde(default)]
    pub worker_id: Option<String>,
    /// The crowd form's output as Ground Truth wrote it (the same JSON a consolidation payload carries as
    /// `annotationData.content` text); open, since its shape is the template's.
    #[serde(default)]
    pub answer_content: Option<RawJson>,
}

/// One data object of a consolidation payload with all its workers' answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadObject {
    /// Ground Truth's id of the object (numeric text in practice; opaque).
    #[serde(deserialize_with = "string_or_number")]
    pub dataset_object_id: String,
    /// The data.
    #[serde(default)]
    pub data_object: PayloadDataObject,
    /// One entry per worker who submitted.
    #[serde(default)]
    pub annotations: Vec<WorkerAnnotation>,
}

/// A payload element that is not a valid data object. It keeps its id when it had one, so the response
/// can still carry an entry for it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("payload object {index}{}: {reason}", dataset_object_id.as_ref().map(|id| format!(" (datasetObjectId {id})")).unwrap_or_default())]
pub struct BadPayloadObject {
    /// Position in the payload array.
    pub index: usize,
    /// The id, when readable.
    pub dataset_object_id: Option<String>,
    /// What is wrong.
    pub reason: String,
}

/// Why a whole payload is unusable (as opposed to one of its objects).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PayloadError {
    /// Not JSON.
    #[error("payload is not valid JSON: {0}")]
    InvalidJson(String),
    /// JSON, but not an array.
    #[error("payload is not a JSON array")]
    NotAnArray,
}

/// Parses a payload file object by object.
///
/// Workers and answers repeat across a batch (a few hundred workers, a handful of distinct classification
/// answers over thousands of objects), so each distinct worker id and answer text is stored once and
/// shared ([`Arc<str>`]): the parsed objects take a fraction of the payload's size instead of more than it.
pub fn parse_payload(
    bytes: &[u8],
) -> Result<Vec<Result<PayloadObject, BadPayloadObject>>, PayloadError> {
    // A UTF-8 byte order mark before the array is not data.
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    // Fast path: a well-formed payload (the normal case) is read in one pass straight into the typed
    // objects. Only when that fails is it re-read element by element (each element's text borrowed, not
    // parsed into a tree), so one bad object costs a second pass, never the other objects.
    let mut interner = Interner::default();
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let fast = serde::de::DeserializeSeed::deserialize(
        PayloadSeed {
            interner: &mut interner,
        },
        &mut deserializer,
    )
    .and_then(|objects| deserializer.end().map(|()| objects));
    if let Ok(objects) = fast {
        return Ok(objects);
    }
    let value: serde_json::Result<Vec<&serde_json::value::RawValue>> =
        serde_json::from_slice(bytes);
    let items = match value {
        Ok(items) => items,
        // Tell "not JSON" from "JSON, but not an array".
        Err(e) => {
            return Err(
                match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                    Ok(_) => PayloadError::NotAnArray,
                    Err(_) => PayloadError::InvalidJson(e.to_string()),
                },
            );
        }
    };
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let mut deserializer = serde_json::Deserializer::from_str(item.get());
            RawObject::deserialize(&mut deserializer)
                .map(|raw| raw.into_object(&mut interner))
                .map_err(|e| {
                    /// The id alone, read by the same rule as a good object's.
                    #[derive(Deserialize)]
                    struct IdOnly {
                        #[serde(rename = "datasetObjectId", deserialize_with = "string_or_number")]
                        id: String,
                    }
                    let id = serde_json::from_str::<IdOnly>(item.get())
                        .ok()
                        .map(|o| o.id);
                    BadPayloadObject {
                        index,
                        dataset_object_id: id,
                        reason: e.to_string(),
                    }
                })
        })
        .collect())
}

/// Each distinct text once: repeated worker ids and answers share one allocation.
#[derive(Default)]
struct Interner {
    texts: std::collections::HashSet<Arc<str>>,
}

impl Interner {
    fn intern(&mut self, text: &str) -> Arc<str> {
        if let Some(known) = self.texts.get(text) {
            return Arc::clone(known);
        }
        let new: Arc<str> = Arc::from(text);
        self.texts.insert(Arc::clone(&new));
        new
    }
}

/// Text as it is in the payload: borrowed when it has no escapes, owned otherwise (answers, which are
/// JSON inside JSON, always have some). Only lives until it is interned.
struct Text<'a>(std::borrow::Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> serde::de::Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(std::borrow::Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(std::borrow::Cow::Owned(v)))
            }
        }
        d.deserialize_str(TextVisitor)
    }
}

/// A payload object as read, before its texts are interned (the same keys and rules as
/// [`PayloadObject`]).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawObject<'a> {
    #[serde(deserialize_with = "string_or_number")]
    dataset_object_id: String,
    #[serde(default)]
    data_object: PayloadDataObject,
    #[serde(default, borrow)]
    annotations: Vec<RawAnnotation<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAnnotation<'a> {
    #[serde(borrow)]
    worker_id: Text<'a>,
    #[serde(borrow)]
    annotation_data: RawAnnotationData<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAnnotationData<'a> {
    #[serde(default, borrow)]
    content: Option<Text<'a>>,
    #[serde(default)]
    s3_uri: Option<String>,
}

impl RawObject<'_> {
    fn into_object(self, interner: &mut Interner) -> PayloadObject {
        PayloadObject {
            dataset_object_id: self.dataset_object_id,
            data_object: self.data_object,
            annotations: self
                .annotations
                .into_iter()
                .map(|a| WorkerAnnotation {
                    worker_id: interner.intern(&a.worker_id.0),
                    annotation_data: AnnotationData {
                        content: a.annotation_data.content.map(|c| interner.intern(&c.0)),
                        s3_uri: a.annotation_data.s3_uri,
                    },
                })
                .collect(),
        }
    }
}

/// The payload array, each element interned as it is read (no intermediate list of raw objects).
struct PayloadSeed<'i> {
    interner: &'i mut Interner,
}

impl<'de> serde::de::DeserializeSeed<'de> for PayloadSeed<'_> {
    type Value = Vec<Result<PayloadObject, BadPayloadObject>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for PayloadSeed<'_> {
    type Value = Vec<Result<PayloadObject, BadPayloadObject>>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of data objects")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut objects = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(raw) = seq.next_element::<RawObject<'de>>()? {
            objects.push(Ok(raw.into_object(self.interner)));
        }
        Ok(objects)
    }
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "datasetObjectId must be a string, found {other}"
        ))),
    }
}

/// `consolidatedAnnotation` of a response entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsolidatedAnnotation {
    /// `{"<LAN>": label, "<LAN>-metadata": {...}}`.
    pub content: LabelContent,
}

/// `consolidatedAnnotation.content`: the label under the job's label attribute name and its metadata under
/// `<LAN>-metadata`, serialised as that JSON object.
///
/// Typed rather than a JSON map because a batch builds a thousand of these and most of their keys are the
/// same for every label of the batch: the name and the four common metadata keys are shared (`Arc`), not
/// copied per label, which was a visible share of the Lambda's time. [`LabelContent::to_map`] gives the
/// JSON object for code that merges it into a manifest line.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelContent {
    /// The job's label attribute name (`<LAN>`).
    pub label_attribute_name: Arc<str>,
    /// The label and its own metadata keys (`class-name`, `confidence`, …, or `failure-reason` for an
    /// object that got none), written first.
    pub body: LabelBody,
    /// `duplicate-dataset-object-id`: payload elements that shared this object's id, when more than one.
    pub duplicate_elements: Option<usize>,
    /// `type`, `job-name`, `human-annotated`, `creation-date`: the same for the whole batch.
    pub common: Arc<CommonMetadata>,
    /// `skipped-answers`, written last when present.
    pub skipped_answers: Option<Value>,
}

impl LabelContent {
    /// `<LAN>-metadata`.
    pub fn metadata_key(&self) -> String {
        metadata_key(&self.label_attribute_name)
    }

    /// Whether the object got a label.
    pub fn has_label(&self) -> bool {
        self.body.has_label()
    }

    /// The content as the JSON object it is serialised as (one source of truth for its keys and their
    /// order: the `Serialize` impl below).
    pub fn to_map(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(content)) => content,
            // Cannot happen: the content serialises as an object with string keys.
            _ => Map::new(),
        }
    }
}

impl Serialize for LabelContent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;

        /// The metadata object, written from its parts without building it.
        struct Metadata<'a>(&'a LabelContent);
        impl Serialize for Metadata<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let content = self.0;
                let mut map = serializer.serialize_map(None)?;
                content.body.serialize_metadata(&mut map)?;
                if let Some(elements) = content.duplicate_elements {
                    map.serialize_entry(crate::output::DUPLICATE_DATASET_OBJECT_ID, &elements)?;
                }
                for (key, value) in content.common.entries() {
                    map.serialize_entry(key, value)?;
                }
                if let Some(skipped) = &content.skipped_answers {
                    map.serialize_entry("skipped-answers", skipped)?;
                }
                map.end()
            }
        }

        let label = self.body.label();
        let mut map = serializer.serialize_map(Some(1 + usize::from(label.is_some())))?;
        if let Some(label) = label {
            map.serialize_entry(&*self.label_attribute_name, &label)?;
        }
        map.serialize_entry(&self.metadata_key(), &Metadata(self))?;
        map.end()
    }
}

/// One element of the consolidation Lambda's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsolidationResponseEntry {
    /// Echoes the payload's id.
    pub dataset_object_id: String,
    /// The label and its metadata.
    pub consolidated_annotation: ConsolidatedAnnotation,
}

impl ConsolidationResponseEntry {
    /// An entry with `content` as its consolidated annotation.
    pub fn new(dataset_object_id: impl Into<String>, content: LabelContent) -> Self {
        ConsolidationResponseEntry {
            dataset_object_id: dataset_object_id.into(),
            consolidated_annotation: ConsolidatedAnnotation { content },
        }
    }

    /// The content as the JSON object it is serialised as.
    pub fn content_map(&self) -> Map<String, Value> {
        self.consolidated_annotation.content.to_map()
    }
}

// ---------------------------------------------------------------------------------------------------
// EventBridge, §6.

/// `detail-type` of the labeling-job state change event.
pub const STATE_CHANGE_DETAIL_TYPE: &str = "SageMaker Ground Truth Labeling Job State Change";
/// `source` of SageMaker's events.
pub const SAGEMAKER_EVENT_SOURCE: &str = "aws.sagemaker";

/// `detail` of the labeling-job state change event: only the status is ever sent; the job is
/// `resources[0]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelingJobStateChange {
    /// The new status.
    #[serde(rename = "LabelingJobStatus")]
    pub labeling_job_status: LabelingJobStatus,
}

/// The whole EventBridge event.
pub type LabelingJobStateChangeEvent = EventBridgeEvent<LabelingJobStateChange>;

/// Why an event is not a labeling-job state change the auto-chainer handles (the Lambda rejects it
/// without retry; the CLI says the same words).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventRejection {
    /// Not SageMaker's.
    #[error("source is `{0}`, not `{SAGEMAKER_EVENT_SOURCE}`")]
    WrongSource(String),
    /// Another kind of SageMaker event.
    #[error("detail-type is `{0}`, not `{STATE_CHANGE_DETAIL_TYPE}`")]
    WrongDetailType(String),
    /// Not JSON, or not the event's shape.
    #[error("not a labeling-job state change event: {0}")]
    Malformed(String),
    /// `resources` is empty.
    #[error("the event names no labeling job (resources is empty)")]
    NoJobArn,
    /// `resources[0]` is not a labeling-job ARN.
    #[error("{0}")]
    BadJobArn(String),
    /// A status that is not an end.
    #[error("LabelingJobStatus `{0}` is not Stopped, Failed or Completed")]
    UnexpectedStatus(String),
}

impl EventRejection {
    /// A stable code (metric dimension, log field).
    pub fn code(&self) -> &'static str {
        match self {
            EventRejection::WrongSource(_) => "InvalidEvent.WrongSource",
            EventRejection::WrongDetailType(_) => "InvalidEvent.WrongDetailType",
            EventRejection::Malformed(_) => "InvalidEvent.Malformed",
            EventRejection::NoJobArn => "InvalidEvent.NoJobArn",
            EventRejection::BadJobArn(_) => "InvalidEvent.BadJobArn",
            EventRejection::UnexpectedStatus(_) => "InvalidEvent.UnexpectedStatus",
        }
    }
}

/// Checks a state-change event and returns the job it is about and its new (terminal) status. Source
/// and detail-type are read first, from the raw JSON: other events' details do not have our shape, and
/// "wrong detail-type" says more than a deserialisation error.
pub fn accept_state_change(
    payload: &Value,
) -> Result<(crate::metadata::LabelingJobArn, LabelingJobStatus), EventRejection> {
    let text = |key: &str| payload.get(key).and_then(Value::as_str).unwrap_or_default();
    if text("source") != SAGEMAKER_EVENT_SOURCE {
        return Err(EventRejection::WrongSource(text("source").to_owned()));
    }
    if text("detail-type") != STATE_CHANGE_DETAIL_TYPE {
        return Err(EventRejection::WrongDetailType(
            text("detail-type").to_owned(),
        ));
    }
    let event: LabelingJobStateChangeEvent = serde_json::from_value(payload.clone())
        .map_err(|e| EventRejection::Malformed(e.to_string()))?;
    let status = event.detail.labeling_job_status;
    if !status.is_terminal() {
        return Err(EventRejection::UnexpectedStatus(status.to_string()));
    }
    let arn = event
        .resources
        .as_deref()
        .and_then(<[String]>::first)
        .ok_or(EventRejection::NoJobArn)?;
    let arn = arn
        .parse()
        .map_err(|e: crate::metadata::ArnError| EventRejection::BadJobArn(e.to_string()))?;
    Ok((arn, status))
}

/// The largest response a synchronously invoked Lambda may return (6 MB): a larger one fails the
/// invocation in the runtime, with no word of why in the function's own logs.
pub const LAMBDA_RESPONSE_LIMIT_BYTES: usize = 6 * 1024 * 1024;

/// Longest excerpt of a parse error kept in a message (serde_json's errors are short; this bounds them).
const EVENT_ERROR_CHARS: usize = 300;

/// A Lambda event as the runtime hands it to a function: JSON, or why it is not.
///
/// The runtime deserializes the invocation body into the handler's event type before the handler runs,
/// and reports a failure with its own error type (a Rust type name). Every function takes this instead:
/// deserializing it never fails, so truncated JSON, invalid UTF-8 or nesting past serde_json's recursion
/// limit reach the handler, which answers with its stable `InvalidEvent` type and a clear message. (The
/// runtime does not check for trailing input after the event, so nothing else can fail.)
///
/// The event is kept as its exact text (checked to be JSON), so that a handler can read values a
/// `serde_json::Value` would round (pre-human-task's `dataObject`) from the original bytes.
#[derive(Debug, Clone)]
pub struct RawEvent(Result<RawJson, String>);

/// "the event is not valid JSON: …", the parser's message cut to [`EVENT_ERROR_CHARS`].
fn not_json(error: &dyn std::fmt::Display) -> String {
    let mut text = error.to_string();
    if text.len() > EVENT_ERROR_CHARS {
        let cut = (0..=EVENT_ERROR_CHARS)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        text.truncate(cut);
        text.push('…');
    }
    format!("the event is not valid JSON: {text}")
}

impl<'de> Deserialize<'de> for RawEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(RawEvent(
            RawJson::deserialize(deserializer).map_err(|e| not_json(&e)),
        ))
    }
}

impl RawEvent {
    /// Reads `body` exactly as the Lambda runtime does (a `serde_json` deserializer over the bytes, no
    /// check for trailing input), for tests and tools.
    pub fn from_slice(body: &[u8]) -> RawEvent {
        let mut de = serde_json::Deserializer::from_slice(body);
        match RawEvent::deserialize(&mut de) {
            Ok(event) => event,
            Err(e) => RawEvent(Err(format!("the event is not valid JSON: {e}"))),
        }
    }

    /// An event already parsed.
    pub fn from_json(value: Value) -> RawEvent {
        RawEvent(RawJson::from_value(&value).map_err(|e| not_json(&e)))
    }

    /// The JSON, or why the body is not JSON (numbers a `Value` cannot hold, such as `1e400`, are
    /// reported here).
    pub fn into_json(self) -> Result<Value, String> {
        let raw = self.0?;
        serde_json::from_str(raw.get()).map_err(|e| not_json(&e))
    }

    /// The event's exact text, or why the body is not JSON.
    pub fn into_raw(self) -> Result<RawJson, String> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_response_file_keeps_each_answer_text_and_survives_a_bad_element() {
        // The documented shape (contracts.md §3), timings and metadata included, plus two damaged
        // elements.
        let text = r#"{"answers": [
            {"answerContent": {"crowd-image-classifier": {"label": "Cat"}}, "workerId": "private.us-west-2.a",
             "submissionTime": "2020-01-01T00:00:10.000Z", "acceptanceTime": "2020-01-01T00:00:00.000Z",
             "timeSpentInSeconds": 10.5,
             "workerMetadata": {"identityData": {"identityProviderType": "Cognito", "issuer": "x", "sub": "y"}}},
            "not an answer",
            {"workerId": "private.us-west-2.b"}
        ]}"#;
        let file: WorkerResponseFile = serde_json::from_str(text).unwrap();
        assert_eq!(file.answers.len(), 3);
        let WorkerResponse::Answer(first) = &file.answers[0] else {
            panic!("{:?}", file.answers[0]);
        };
        assert_eq!(first.worker_id.as_deref(), Some("private.us-west-2.a"));
        assert_eq!(
            first.answer_content.as_ref().map(RawJson::get),
            Some(r#"{"crowd-image-classifier": {"label": "Cat"}}"#)
        );
        assert_eq!(file.answers[1], WorkerResponse::Unreadable);
        let WorkerResponse::Answer(third) = &file.answers[2] else {
            panic!("{:?}", file.answers[2]);
        };
        assert_eq!(third.answer_content, None);
        let empty: WorkerResponseFile = serde_json::from_str("{}").unwrap();
        assert!(empty.answers.is_empty());
    }
    use proptest::prelude::*;

    #[test]
    fn a_state_change_is_accepted_once_and_each_refusal_has_its_code() {
        let event = |source: &str, detail_type: &str, resources: &str, status: &str| {
            serde_json::from_str::<Value>(&format!(
                r#"{{"version":"0","id":"1","detail-type":"{detail_type}","source":"{source}","account":"1","time":"2018-10-06T12:26:13Z","region":"us-east-1","resources":{resources},"detail":{{"LabelingJobStatus":"{status}"}}}}"#
            ))
            .unwrap()
        };
        let arn = r#"["arn:aws:sagemaker:us-east-1:111122223333:labeling-job/x"]"#;
        let (job, status) = accept_state_change(&event(
            SAGEMAKER_EVENT_SOURCE,
            STATE_CHANGE_DETAIL_TYPE,
            arn,
            "Failed",
        ))
        .unwrap();
        assert_eq!((job.name(), status), ("x", LabelingJobStatus::Failed));
        let refused = [
            (
                event("aws.s3", STATE_CHANGE_DETAIL_TYPE, arn, "Failed"),
                "InvalidEvent.WrongSource",
            ),
            (
                event(SAGEMAKER_EVENT_SOURCE, "Other", arn, "Failed"),
                "InvalidEvent.WrongDetailType",
            ),
            (
                event(
                    SAGEMAKER_EVENT_SOURCE,
                    STATE_CHANGE_DETAIL_TYPE,
                    "[]",
                    "Failed",
                ),
                "InvalidEvent.NoJobArn",
            ),
            (
                event(
                    SAGEMAKER_EVENT_SOURCE,
                    STATE_CHANGE_DETAIL_TYPE,
                    r#"["nope"]"#,
                    "Failed",
                ),
                "InvalidEvent.BadJobArn",
            ),
            (
                event(
                    SAGEMAKER_EVENT_SOURCE,
                    STATE_CHANGE_DETAIL_TYPE,
                    arn,
                    "InProgress",
                ),
                "InvalidEvent.UnexpectedStatus",
            ),
            (
                event(
                    SAGEMAKER_EVENT_SOURCE,
                    STATE_CHANGE_DETAIL_TYPE,
                    arn,
                    "Sleeping",
                ),
                "InvalidEvent.UnexpectedStatus",
            ),
            (
                event(
                    SAGEMAKER_EVENT_SOURCE,
                    STATE_CHANGE_DETAIL_TYPE,
                    "5",
                    "Failed",
                ),
                "InvalidEvent.Malformed",
            ),
        ];
        for (payload, code) in refused {
            assert_eq!(
                accept_state_change(&payload).unwrap_err().code(),
                code,
                "{payload}"
            );
        }
    }

    #[test]
    fn a_payload_may_start_with_a_byte_order_mark() {
        let body = "\u{feff}[{\"datasetObjectId\":\"0\",\"dataObject\":{\"content\":\"x\"},\"annotations\":[]}]";
        let objects = parse_payload(body.as_bytes()).unwrap();
        assert_eq!(objects.len(), 1);
        assert!(objects[0].is_ok());
    }

    #[test]
    fn any_body_reaches_the_handler_as_a_raw_event() {
        let deep = "[".repeat(100_000);
        let bodies: [&[u8]; 4] = [
            b"{\"version\": \"2018-10-06\", \"labe",
            deep.as_bytes(),
            b"{\"a\": \"\xff\xfe\"}",
            b"",
        ];
        for body in bodies {
            let error = RawEvent::from_slice(body).into_json().unwrap_err();
            assert!(
                error.starts_with("the event is not valid JSON: "),
                "{error}"
            );
            assert!(error.len() < 400, "{error}");
        }
        assert_eq!(
            RawEvent::from_slice(br#"{"a": 1}"#).into_json(),
            Ok(serde_json::json!({"a": 1}))
        );
    }

    fn label_content(labeled: bool, skipped: Option<Value>) -> LabelContent {
        let arn: crate::metadata::LabelingJobArn =
            "arn:aws:sagemaker:us-east-1:111111111111:labeling-job/Pets"
                .parse()
                .unwrap();
        let mut body = LabelBody::Class(crate::output::ClassConfidence {
            class: 0,
            name: Arc::from("cat"),
            confidence: 0.93,
        });
        if !labeled {
            body.fail("not stored");
        }
        LabelContent {
            label_attribute_name: Arc::from("animal"),
            body,
            duplicate_elements: None,
            common: Arc::new(CommonMetadata::new(
                crate::TaskType::ImageClassification,
                arn.name(),
                chrono::DateTime::UNIX_EPOCH,
            )),
            skipped_answers: skipped,
        }
    }

    #[test]
    fn label_content_serialises_as_the_object_it_stands_for() {
        let skipped = serde_json::json!([{"worker-id": "w9", "reason": "answer is not JSON"}]);
        for content in [
            label_content(true, None),
            label_content(true, Some(skipped.clone())),
            label_content(false, Some(skipped)),
        ] {
            let written = serde_json::to_string(&content).unwrap();
            assert_eq!(
                written,
                serde_json::to_string(&content.to_map()).unwrap(),
                "same keys, same order"
            );
        }
        let content = label_content(true, None);
        assert_eq!(
            serde_json::to_string(&content).unwrap(),
            r#"{"animal":0,"animal-metadata":{"class-name":"cat","confidence":0.93,"type":"groundtruth/image-classification","job-name":"labeling-job/pets","human-annotated":"yes","creation-date":"1970-01-01T00:00:00.000000"}}"#
        );
        let failed = label_content(false, None);
        assert_eq!(
            failed.to_map().keys().collect::<Vec<_>>(),
            ["animal-metadata"],
            "no label key without a label"
        );
    }

    #[test]
    fn pre_request_accepts_both_versions_and_extra_keys() {
        let req: PreHumanTaskRequest = serde_json::from_str(
            r#"{"version":"2018-10-16","labelingJobArn":"arn:aws:sagemaker:us-east-1:1:labeling-job/j","dataObject":{"source":"x","page":"1"},"future":true}"#,
        )
        .unwrap();
        assert_eq!(req.version.as_deref(), Some("2018-10-16"));
        assert_eq!(req.data_object.get(), r#"{"source":"x","page":"1"}"#);
        let no_version: PreHumanTaskRequest =
            serde_json::from_str(r#"{"labelingJobArn":"a","dataObject":{}}"#).unwrap();
        assert_eq!(no_version.version, None);
    }

    #[test]
    fn pre_response_uses_a_boolean() {
        let resp = PreHumanTaskResponse {
            task_input: TaskInput {
                task_object: "s3://b/k".to_owned(),
                manifest_line: RawJson::from_text("{}").unwrap(),
                labels: None,
            },
            is_human_annotation_required: false,
        };
        let json = serde_json::to_value(&resp).unwrap();
        assert_eq!(json["isHumanAnnotationRequired"], Value::Bool(false));
        assert!(json["taskInput"].get("labels").is_none());
    }

    #[test]
    fn consolidation_request_tolerates_null_categories() {
        let req: ConsolidationRequest = serde_json::from_str(
            r#"{"labelingJobArn":"a","labelCategories":null,"labelAttributeName":"x","payload":{"s3Uri":"s3://b/k"}}"#,
        )
        .unwrap();
        assert_eq!(req.label_categories, None);
        assert_eq!(req.role_arn, None);
    }

    #[test]
    fn payload_objects_fail_one_by_one() {
        let items = parse_payload(
            br#"[
            {"datasetObjectId":"0","dataObject":{"s3Uri":"s3://b/0"},"annotations":[]},
            {"datasetObjectId":7,"annotations":[{"workerId":"w","annotationData":{"s3Uri":"s3://b/a"}}]},
            {"datasetObjectId":"2","annotations":"broken"},
            {"annotations":[]}
        ]"#,
        )
        .unwrap();
        assert_eq!(items.len(), 4);
        assert_eq!(items[1].as_ref().unwrap().dataset_object_id, "7");
        let bad = items[2].as_ref().unwrap_err();
        assert_eq!(bad.dataset_object_id.as_deref(), Some("2"));
        assert!(
            bad.to_string()
                .starts_with("payload object 2 (datasetObjectId 2)")
        );
        assert_eq!(items[3].as_ref().unwrap_err().dataset_object_id, None);
        assert_eq!(parse_payload(b"{}"), Err(PayloadError::NotAnArray));
        assert!(matches!(
            parse_payload(b"nope"),
            Err(PayloadError::InvalidJson(_))
        ));
    }

    proptest! {
        /// The interning parser reads what a plain typed parse of each element reads (escapes, numbers
        /// as ids, missing keys, bad elements and all), and gives identical texts one allocation.
        #[test]
        fn the_interning_parser_reads_what_a_plain_parse_reads(
            objects in proptest::collection::vec(
                (
                    proptest::prop_oneof![
                        "[a-z0-9]{0,4}".prop_map(Value::from),
                        (0u32..1000).prop_map(Value::from),
                        proptest::strategy::Just(Value::Null),
                    ],
                    proptest::collection::vec(
                        ("[a-c\\\"\u{e9}]{1,3}", "[a-c\\\"{}:]{0,6}", proptest::bool::ANY),
                        0..5,
                    ),
                ),
                0..8,
            )
        ) {
            let payload: Vec<Value> = objects
                .iter()
                .map(|(id, answers)| {
                    let answers: Vec<Value> = answers
                        .iter()
                        .map(|(worker, content, inline)| {
                            let data = if *inline {
                                serde_json::json!({"content": content})
                            } else {
                                serde_json::json!({"s3Uri": format!("s3://b/{content}")})
                            };
                            serde_json::json!({"workerId": worker, "annotationData": data})
                        })
                        .collect();
                    serde_json::json!({"datasetObjectId": id, "dataObject": {"s3Uri": "s3://b/x"},
                                       "annotations": answers})
                })
                .collect();
            let text = serde_json::to_vec(&payload).unwrap();
            let parsed = parse_payload(&text).unwrap();
            prop_assert_eq!(parsed.len(), payload.len());
            let mut seen: std::collections::HashMap<String, *const u8> = std::collections::HashMap::new();
            for (got, element) in parsed.iter().zip(&payload) {
                let plain = serde_json::from_value::<PayloadObject>(element.clone());
                match (got, plain) {
                    (Ok(got), Ok(plain)) => {
                        prop_assert_eq!(got, &plain);
                        for a in &got.annotations {
                            for text in [Some(&a.worker_id), a.annotation_data.content.as_ref()]
                                .into_iter()
                                .flatten()
                            {
                                let at = *seen.entry(text.to_string()).or_insert(text.as_ptr());
                                prop_assert_eq!(at, text.as_ptr(), "one allocation per text");
                            }
                        }
                    }
                    (Err(bad), Err(_)) => prop_assert_eq!(bad.dataset_object_id.is_some(),
                        element["datasetObjectId"].is_string() || element["datasetObjectId"].is_number()),
                    (got, plain) => prop_assert!(false, "{got:?} against {plain:?}"),
                }
            }
        }
    }

    #[test]
    fn state_change_event_parses() {
        let event: LabelingJobStateChangeEvent = serde_json::from_str(
            r#"{"version":"0","id":"1","detail-type":"SageMaker Ground Truth Labeling Job State Change","source":"aws.sagemaker","account":"1","time":"2018-10-06T12:26:13Z","region":"us-east-1","resources":["arn:aws:sagemaker:us-east-1:1:labeling-job/x"],"detail":{"LabelingJobStatus":"Stopped"}}"#,
        )
        .unwrap();
        assert_eq!(event.detail.labeling_job_status, LabelingJobStatus::Stopped);
        assert_eq!(event.detail_type, STATE_CHANGE_DETAIL_TYPE);
    }
}
