//! The fuzz targets' checks (`shared/fuzz/`, cargo-fuzz on nightly), here so that the inputs they found and the
//! seeds they started from are replayed by an ordinary stable test as well (`tests/fuzz_regressions.rs`
//! over `shared/fuzz/regressions/<target>/`). Each check panics on a finding: a panic in our code, or an
//! invariant broken.

use base64::Engine;

use crate::LabelAttributeName;
use crate::TaskType;
use crate::consolidate::batch::BatchSettings;
use crate::consolidate::classification::{
    ClassificationConfig, consolidate_single_label, read_gold_csv, read_labels_csv,
};
use crate::consolidate::service::{Ports, handle_request};
use crate::consolidate::worker_quality::WorkerPriors;
use crate::contracts::{
    ConsolidationRequest, LabelingJobStateChangeEvent, PreHumanTaskRequest, RawEvent, parse_payload,
};
use crate::labeling_job::LabelingJobDescription;
use crate::manifest::ManifestLine;
use crate::metadata::FixedClock;
use crate::ports::fakes::MemoryObjectStore;
use crate::pre_annotation::{JobContext, pre_annotate};
use crate::s3_scope::S3Scope;
use crate::testing::block_on;

/// A check: panics on a finding.
pub type Check = fn(&[u8]);

/// The targets, by name (the file names under `shared/fuzz/fuzz_targets/`).
pub const TARGETS: [(&str, Check); 5] = [
    ("manifest_line", manifest_line),
    ("consolidation_payload", consolidation_payload),
    ("segmentation_png", segmentation_png),
    ("events", events),
    ("labels_csv", labels_csv),
];

const PAYLOAD: &str = "s3://fuzz-bucket/job/annotations/consolidated-annotation/consolidation-request/iteration-1/p.json";

fn segmentation_answer(worker: &str, png: &[u8]) -> serde_json::Value {
    let content = serde_json::json!({"crowd-semantic-segmentation": {
        "inputImageProperties": {"height": 4, "width": 4},
        "labelMappings": {"cat": {"color": "#2ca02c"}},
        "labeledImage": {"pngImageData": base64::engine::general_purpose::STANDARD.encode(png)},
    }});
    serde_json::json!({"workerId": worker, "annotationData": {"content": content.to_string()}})
}

/// A manifest line, as the chainer and the CLI read it, and a `dataObject`, as pre-human-task reads it:
/// never a panic; a line that parses writes back byte for byte while unchanged.
pub fn manifest_line(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(line) = ManifestLine::parse(text) {
        let unchanged = text.strip_prefix('\u{feff}').unwrap_or(text);
        assert_eq!(line.to_json_line(), unchanged);
        let _ = line.source();
    }
    if let Ok(line) = ManifestLine::from_data_object(text) {
        assert_eq!(line.to_json_line(), text);
    }
}

/// A consolidation payload (the file at `payload.s3Uri`) through the whole request path, the task type
/// inferred from the answers as with `TASK_TYPE` unset: never a panic, and one response entry per
/// payload object with a readable id.
pub fn consolidation_payload(data: &[u8]) {
    let store = MemoryObjectStore::new();
    store.insert(PAYLOAD, data.to_vec());
    let request: ConsolidationRequest = serde_json::from_value(serde_json::json!({
        "version": "2018-10-06",
        "labelingJobArn": "arn:aws:sagemaker:us-east-1:111122223333:labeling-job/fuzz",
        "labelAttributeName": "fuzz",
        "payload": {"s3Uri": PAYLOAD},
        "outputConfig": "s3://fuzz-bucket/job/annotations",
    }))
    .expect("a valid request");
    let scope = S3Scope::anywhere();
    let ports = Ports {
        reader: &store,
        writer: &store,
        quality: Some(&store),
        prior_answers: None,
        scope: &scope,
    };
    let clock = FixedClock(chrono::DateTime::UNIX_EPOCH);
    let outcome = block_on(handle_request(
        &request,
        ports,
        &BatchSettings::default(),
        &clock,
    ));
    if let (Ok(outcome), Ok(objects)) = (outcome, parse_payload(data)) {
        let mut ids: Vec<&str> = objects
            .iter()
            .filter_map(|o| o.as_ref().ok().map(|o| o.dataset_object_id.as_str()))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert!(
            outcome.entries.len() >= ids.len(),
            "an object with a readable id was lost"
        );
    }
}

/// A semantic-segmentation answer whose PNG is the fuzzer's bytes, beside a valid one: never a panic,
/// and the object gets an entry (a label or a failure).
pub fn segmentation_png(data: &[u8]) {
    let payload = serde_json::json!([{
        "datasetObjectId": "0",
        "dataObject": {"s3Uri": "s3://fuzz-bucket/0.jpg"},
        "annotations": [segmentation_answer("fuzzer", data), segmentation_answer("other", data)],
    }]);
    let request: ConsolidationRequest = serde_json::from_value(serde_json::json!({
        "version": "2018-10-06",
        "labelingJobArn": "arn:aws:sagemaker:us-east-1:111122223333:labeling-job/fuzz",
        "labelAttributeName": "fuzz-ref",
        "labelCategories": ["cat"],
        "payload": {"content": payload.to_string()},
        "outputConfig": "s3://fuzz-bucket/job/annotations",
    }))
    .expect("a valid request");
    let store = MemoryObjectStore::new();
    let scope = S3Scope::anywhere();
    let ports = Ports {
        reader: &store,
        writer: &store,
        quality: None,
        prior_answers: None,
        scope: &scope,
    };
    let mut settings = BatchSettings {
        task_type: Some(TaskType::SemanticSegmentation),
        ..BatchSettings::default()
    };
    settings.segmentation.max_pixels = 1 << 20;
    let clock = FixedClock(chrono::DateTime::UNIX_EPOCH);
    let outcome = block_on(handle_request(&request, ports, &settings, &clock))
        .expect("the request itself is valid");
    assert_eq!(outcome.entries.len(), 1);
}

/// Lambda invocation bodies for the three functions: the raw event, then each function's request type,
/// the pre-human-task decision and the EventBridge event. Never a panic.
pub fn events(data: &[u8]) {
    let event = RawEvent::from_slice(data);
    if let Ok(raw) = event.clone().into_raw()
        && let Ok(request) = serde_json::from_str::<PreHumanTaskRequest>(raw.get())
    {
        let job = JobContext {
            label_attribute_name: LabelAttributeName::new("category").ok(),
            ..JobContext::default()
        };
        if let Ok(response) = pre_annotate(&request, &job) {
            // The data object comes through as sent.
            assert_eq!(
                response.task_input.manifest_line.get(),
                request.data_object.get()
            );
        }
    }
    if let Ok(value) = event.into_json() {
        let _ = serde_json::from_value::<ConsolidationRequest>(value.clone());
        let _ = serde_json::from_value::<LabelingJobStateChangeEvent>(value.clone());
        if let Ok(job) = serde_json::from_value::<LabelingJobDescription>(value) {
            let _ = job.task_type();
        }
    }
}

/// The labels CSV (`task,worker,label`) and the gold/audit CSV (`task,label`): never a panic, and a
/// table that reads gets consolidated without one.
pub fn labels_csv(data: &[u8]) {
    let _ = read_gold_csv(data);
    if let Ok(table) = read_labels_csv(data) {
        let items = table.single_label_items();
        let k = table.classes.len();
        if k > 0 {
            let outcome = consolidate_single_label(
                k,
                &items,
                &WorkerPriors::empty(),
                &ClassificationConfig::default(),
            );
            assert_eq!(outcome.items.len(), items.len());
        }
    }
}
