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
pub const TARGETS: [(&str, Check); 6] = [
    ("manifest_line", manifest_line),
    ("consolidation_payload", consolidation_payload),
    ("segmentation_png", segmentation_png),
    ("events", events),
    ("labels_csv", labels_csv),
    ("chain_planner", chain_planner),
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
        // A line that gains a label is still a line, with the same keys and values (numbers a `Value`
        // would rewrite keep their text), and it reads back as written.
        let mut changed = line;
        changed.insert("groundwork-fuzz-label", serde_json::Value::from(1));
        let written = changed.to_json_line().into_owned();
        let reread = ManifestLine::parse(&written).expect("a changed line reads back");
        assert_eq!(reread.fields(), changed.fields());
        assert_eq!(reread.to_json_line(), written);
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
        audit: None,
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
        audit: None,
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

/// The chain planner on arbitrary inputs: `data` is split at NUL bytes into a DescribeLabelingJob
/// document (the `Animals` fixture when it does not parse; the first byte then picks its status and
/// tags), a manifest, a plan document (follow-up or top-up), a staging manifest and a consolidation
/// request file. Never a panic; a decision to chain names a valid job and writes only under the job's
/// output path or the chain's work folder.
pub fn chain_planner(data: &[u8]) {
    use crate::chain::top_up::{self, TopUpDecision, TopUpInput, TopUpPlan};
    use crate::chain::{ChainRequest, ChainSettings, Decision, FetchedObject, PlannerInput, plan};
    use crate::labeling_job::{LabelingJobStatus, Tag};

    let mut parts = data.splitn(5, |b| *b == 0);
    let mut part = || parts.next().unwrap_or_default();
    let (describe, manifest, plan_bytes, staging, payload) =
        (part(), part(), part(), part(), part());
    let mut job: LabelingJobDescription = match serde_json::from_slice(describe) {
        Ok(job) => job,
        Err(_) => {
            // The `Animals` job the check starts from when its input describes no job.
            let mut job = crate::testing::DescribedJob::animals().build();
            let pick = describe.first().copied().unwrap_or(0);
            job.labeling_job_status = match pick % 3 {
                0 => LabelingJobStatus::Completed,
                1 => LabelingJobStatus::Stopped,
                _ => LabelingJobStatus::Failed,
            };
            let tag = |key: &str, value: &str| Tag {
                key: key.to_owned(),
                value: value.to_owned(),
            };
            job.tags = vec![tag("groundwork:follow-up", "s3://plans/plan.json")];
            if pick & 4 != 0 {
                job.tags.push(tag(
                    "groundwork:staging-manifest",
                    "s3://in-bucket/staging.manifest",
                ));
            }
            if pick & 8 != 0 {
                job.tags
                    .push(tag("groundwork:top-up-round", &(pick >> 4).to_string()));
                job.tags.push(tag("groundwork:depth", "1"));
            }
            if pick & 16 != 0 {
                job.tags.push(tag("groundwork:chain", "continue"));
            }
            job
        }
    };
    job.tags.truncate(60);
    let fetched = |uri: &str, body: &[u8]| FetchedObject {
        uri: uri.parse().expect("a fixed URI"),
        body: body.to_vec(),
    };
    let manifest = fetched(
        "s3://out-bucket/jobs/Animals/manifests/output/output.manifest",
        manifest,
    );
    let staging = fetched("s3://in-bucket/staging.manifest", staging);
    let settings = ChainSettings::default();
    let request = ChainRequest::default();
    let check_writes = |writes: &[crate::chain::ObjectWrite], name: &str| {
        for write in writes {
            assert!(
                write.uri.key().contains(name) || write.uri.key().contains("/manifests/output/"),
                "{} is outside the new job's folders",
                write.uri
            );
        }
    };
    if let Ok(Decision::Chain(action)) = plan(&PlannerInput {
        job: &job,
        settings: &settings,
        request: &request,
        plan: Some(plan_bytes),
        manifest: Some(&manifest),
        staging: Some(&staging),
    }) {
        let name = &action.request.labeling_job_name;
        assert!(crate::chain::naming::is_valid_job_name(name), "{name}");
        check_writes(&action.manifest_writes, name);
    }
    if TopUpPlan::is_top_up(plan_bytes) && top_up::needs(&job).is_ok() {
        let payloads = [fetched(PAYLOAD, payload)];
        let decision = top_up::plan_round(&TopUpInput {
            job: &job,
            settings: &settings,
            plan: plan_bytes,
            manifest: &manifest,
            prior: None,
            merged: Some(&manifest),
            payloads: &payloads,
            worker_quality: None,
        });
        match decision {
            Ok(TopUpDecision::NextRound { action, summary }) => {
                let name = &action.request.labeling_job_name;
                assert!(crate::chain::naming::is_valid_job_name(name), "{name}");
                check_writes(&action.manifest_writes, name);
                assert!(action.counts.input_objects <= summary.objects);
            }
            Ok(TopUpDecision::Finished { write, summary }) => {
                assert!(write.uri.key().ends_with(top_up::OUTPUT_FILE));
                assert!(summary.below_target <= summary.objects);
            }
            Err(_) => {}
        }
    }
}
