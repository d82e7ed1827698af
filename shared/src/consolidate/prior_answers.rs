//! Answers an object got in earlier top-up rounds, so that a round decides from all of them.
//!
//! A top-up chain (see [`chain::top_up`](crate::chain::top_up)) asks a few workers about every object,
//! then more workers only about the objects whose label is still unsure, one labeling job per round.
//! Ground Truth hands each round's consolidation only that round's answers. Before a round starts, the
//! chainer writes every answer its objects got so far into one JSON-lines file in the round's own output
//! folder, `<outputConfig>/groundwork/top-up/prior-answers.jsonl`, one line per object:
//!
//! ```json
//! {"object":"s3:s3://bucket/images/0001.jpg","annotations":[{"workerId":"private.us-east-1.a1","annotationData":{"content":"{\"crowd-image-classifier\":{\"label\":\"cat\"}}"}}]}
//! ```
//!
//! `annotations` are the consolidation payload's own entries, as Ground Truth wrote them in the earlier
//! rounds (an answer stored in S3 keeps its `s3Uri` and is read like any other). The consolidation reads
//! the file once per job and container ([`PriorAnswersCache`]) and puts each object's earlier answers
//! before its new ones ([`PriorAnswers::merge_into`]); a worker who answers again in a later round is
//! counted once, with the newer answer.
//!
//! An object is its data: `source-ref` in the manifest, `dataObject.s3Uri` in the payload, or a hash of
//! the inline `source` / `dataObject.content` ([`object_key`]). Ground Truth's `datasetObjectId` is an
//! index into one job's manifest and means nothing in the next round's job.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::contracts::{PayloadDataObject, PayloadObject, WorkerAnnotation};
use crate::manifest::DataSource;
use crate::s3_uri::S3Uri;

/// Where a round's earlier answers are, below its `outputConfig`.
pub const PRIOR_ANSWERS_FILE: &str = "groundwork/top-up/prior-answers.jsonl";

/// `<outputConfig>/groundwork/top-up/prior-answers.jsonl`.
pub fn prior_answers_uri(output_config: &S3Uri) -> S3Uri {
    output_config.join(PRIOR_ANSWERS_FILE)
}

/// The identity of a data object across jobs: `s3:<source-ref>`, or `sha256:<hex>` of the inline data.
pub fn object_key(source: DataSource<'_>) -> String {
    match source {
        DataSource::SourceRef(uri) => format!("s3:{uri}"),
        DataSource::Source(text) => {
            format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())))
        }
    }
}

/// [`object_key`] of a payload's data object; `None` when it names no data.
pub fn payload_object_key(data: &PayloadDataObject) -> Option<String> {
    match (&data.s3_uri, &data.content) {
        (Some(uri), _) => Some(object_key(DataSource::SourceRef(uri))),
        (None, Some(text)) => Some(object_key(DataSource::Source(text))),
        (None, None) => None,
    }
}

/// One line of the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PriorAnswersLine {
    object: String,
    annotations: Vec<WorkerAnnotation>,
}

/// A line of the file that cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{uri} line {line}: {message}")]
pub struct BadPriorAnswers {
    /// The file.
    pub uri: String,
    /// 1-based.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Every object's answers so far, by [`object_key`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriorAnswers {
    by_object: BTreeMap<String, Vec<WorkerAnnotation>>,
}

impl PriorAnswers {
    /// No answers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the JSON-lines file; every line must be good (the chainer wrote it; a broken one needs a
    /// person, and answering without some of an object's answers would be a quietly worse label).
    pub fn parse(uri: &S3Uri, bytes: &[u8]) -> Result<Self, BadPriorAnswers> {
        let mut answers = Self::new();
        let bad = |line: usize, message: String| BadPriorAnswers {
            uri: uri.to_string(),
            line,
            message,
        };
        let text = std::str::from_utf8(bytes).map_err(|e| bad(0, format!("not UTF-8: {e}")))?;
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let parsed: PriorAnswersLine =
                serde_json::from_str(line).map_err(|e| bad(n + 1, e.to_string()))?;
            answers.add(parsed.object, parsed.annotations);
        }
        Ok(answers)
    }

    /// The file's bytes: one line per object, in key order (the same answers give the same bytes).
    pub fn to_jsonl(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (object, annotations) in &self.by_object {
            let line = PriorAnswersLine {
                object: object.clone(),
                annotations: annotations.clone(),
            };
            // Serialising strings and plain structs cannot fail.
            if let Ok(text) = serde_json::to_vec(&line) {
                out.extend_from_slice(&text);
                out.push(b'\n');
            }
        }
        out
    }

    /// Adds newer answers of `object`: a worker already known for it is replaced by the newer answer,
    /// so every worker counts once per object.
    pub fn add(&mut self, object: String, newer: Vec<WorkerAnnotation>) {
        let kept = self.by_object.entry(object).or_default();
        for answer in newer {
            kept.retain(|a| a.worker_id != answer.worker_id);
            kept.push(answer);
        }
    }

    /// The answers of `object` so far.
    pub fn get(&self, object: &str) -> &[WorkerAnnotation] {
        self.by_object.get(object).map_or(&[], Vec::as_slice)
    }

    /// How many different workers answered `object`.
    pub fn count(&self, object: &str) -> usize {
        self.get(object).len()
    }

    /// Objects with answers.
    pub fn len(&self) -> usize {
        self.by_object.len()
    }

    /// Whether no object has answers.
    pub fn is_empty(&self) -> bool {
        self.by_object.is_empty()
    }

    /// Keeps only the objects `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.by_object.retain(|k, _| keep(k));
    }

    /// Puts `object`'s earlier answers before its new ones, leaving out earlier answers of workers who
    /// answered again. Returns how many were added.
    pub fn merge_into(&self, object: &mut PayloadObject) -> usize {
        let Some(key) = payload_object_key(&object.data_object) else {
            return 0;
        };
        let earlier: Vec<WorkerAnnotation> = self
            .get(&key)
            .iter()
            .filter(|a| {
                !object
                    .annotations
                    .iter()
                    .any(|new| new.worker_id == a.worker_id)
            })
            .cloned()
            .collect();
        let added = earlier.len();
        if added > 0 {
            let newer = std::mem::replace(&mut object.annotations, earlier);
            object.annotations.extend(newer);
        }
        added
    }
}

/// The prior answers of each job a container has seen, read once: the file is written before its round's
/// job is created and never changes, and its absence (every job that is not a top-up round) is kept too,
/// so a job's batches cost one extra read per container, not one per batch.
#[derive(Debug, Default)]
pub struct PriorAnswersCache {
    by_uri: Mutex<HashMap<String, Arc<PriorAnswers>>>,
}

/// Jobs remembered before the cache starts over (a container serves few jobs at a time).
const CACHED_JOBS: usize = 64;

impl PriorAnswersCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The cached answers for `uri`, if read before.
    pub fn get(&self, uri: &S3Uri) -> Option<Arc<PriorAnswers>> {
        self.lock().get(&uri.to_string()).cloned()
    }

    /// Remembers `answers` for `uri`.
    pub fn insert(&self, uri: &S3Uri, answers: Arc<PriorAnswers>) {
        let mut map = self.lock();
        if map.len() >= CACHED_JOBS {
            map.clear();
        }
        map.insert(uri.to_string(), answers);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<PriorAnswers>>> {
        // A panic while holding the lock leaves a map that is still whole: use it.
        self.by_uri.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::AnnotationData;

    fn answer(worker: &str, label: &str) -> WorkerAnnotation {
        WorkerAnnotation {
            worker_id: worker.into(),
            annotation_data: AnnotationData {
                content: Some(format!(r#"{{"c":{{"label":"{label}"}}}}"#).into()),
                s3_uri: None,
            },
        }
    }

    fn object(uri: &str, answers: Vec<WorkerAnnotation>) -> PayloadObject {
        PayloadObject {
            dataset_object_id: "0".to_owned(),
            data_object: PayloadDataObject {
                s3_uri: Some(uri.to_owned()),
                content: None,
            },
            annotations: answers,
        }
    }

    fn uri() -> S3Uri {
        "s3://bucket/job/annotations/groundwork/top-up/prior-answers.jsonl"
            .parse()
            .unwrap()
    }

    #[test]
    fn keys_are_the_same_for_a_manifest_line_and_its_payload_object() {
        let line =
            crate::manifest::ManifestLine::parse(r#"{"source-ref":"s3://b/1.jpg"}"#).unwrap();
        let data = PayloadDataObject {
            s3_uri: Some("s3://b/1.jpg".to_owned()),
            content: None,
        };
        assert_eq!(Some(object_key(line.source())), payload_object_key(&data));
        let text = crate::manifest::ManifestLine::parse(r#"{"source":"a, b"}"#).unwrap();
        let inline = PayloadDataObject {
            s3_uri: None,
            content: Some("a, b".to_owned()),
        };
        assert_eq!(Some(object_key(text.source())), payload_object_key(&inline));
        assert_ne!(object_key(line.source()), object_key(text.source()));
    }

    #[test]
    fn a_file_round_trips_and_a_worker_counts_once_with_the_newer_answer() {
        let mut prior = PriorAnswers::new();
        prior.add(
            "s3:s3://b/1.jpg".into(),
            vec![answer("w1", "cat"), answer("w2", "dog")],
        );
        prior.add("s3:s3://b/1.jpg".into(), vec![answer("w1", "dog")]);
        assert_eq!(prior.count("s3:s3://b/1.jpg"), 2);
        assert_eq!(prior.get("s3:s3://b/1.jpg")[1], answer("w1", "dog"));
        let again = PriorAnswers::parse(&uri(), &prior.to_jsonl()).unwrap();
        assert_eq!(again, prior);
        assert_eq!(again.to_jsonl(), prior.to_jsonl());
    }

    #[test]
    fn earlier_answers_go_first_and_a_returning_worker_keeps_the_newer() {
        let mut prior = PriorAnswers::new();
        prior.add(
            "s3:s3://b/1.jpg".into(),
            vec![answer("w1", "cat"), answer("w2", "dog")],
        );
        let mut obj = object(
            "s3://b/1.jpg",
            vec![answer("w2", "cat"), answer("w3", "cat")],
        );
        assert_eq!(prior.merge_into(&mut obj), 1);
        let workers: Vec<&str> = obj.annotations.iter().map(|a| &*a.worker_id).collect();
        assert_eq!(workers, ["w1", "w2", "w3"]);
        assert_eq!(obj.annotations[1], answer("w2", "cat"));
        let mut other = object("s3://b/2.jpg", vec![answer("w3", "cat")]);
        assert_eq!(prior.merge_into(&mut other), 0);
        assert_eq!(other.annotations.len(), 1);
    }

    #[test]
    fn a_broken_line_is_named() {
        let err = PriorAnswers::parse(&uri(), b"{\"object\":\"x\",\"annotations\":[]}\n{oops\n")
            .unwrap_err();
        assert_eq!(err.line, 2);
        assert!(
            err.to_string().contains("prior-answers.jsonl line 2"),
            "{err}"
        );
    }

    #[test]
    fn the_cache_keeps_absence_and_starts_over_when_full() {
        let cache = PriorAnswersCache::new();
        let first = uri();
        assert!(cache.get(&first).is_none());
        cache.insert(&first, Arc::new(PriorAnswers::new()));
        assert!(cache.get(&first).is_some_and(|a| a.is_empty()));
        for i in 0..CACHED_JOBS {
            cache.insert(&first.join(&format!("{i}")), Arc::new(PriorAnswers::new()));
        }
        assert!(cache.lock().len() <= CACHED_JOBS);
    }
}
