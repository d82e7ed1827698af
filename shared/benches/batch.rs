//! The consolidation Lambda's own work on one request, side by side with a bare `serde_json` parse of the
//! same payload (the floor any handler pays): 1,000 objects × 5 workers, single-label classification.
//! Target: the whole request costs ≤ 1.5× the bare parse.
//!
//! "The whole request" is what the handler does between receiving the event and handing its answer to the
//! runtime, with S3 replaced by memory: parse the event, read and parse the payload, load the job's
//! worker-quality document, consolidate, record the batch in the document and write it back, and
//! serialise the response. Two cases: the job's first batch (no document yet) and a batch in the middle
//! of a job (a document holding the 16 earlier batches the Lambda keeps apart).
//!
//! Besides criterion's timings, the bench prints the ratios themselves, measured by alternating the floor
//! and the work (one of each per round, the fastest of each over the rounds): on a shared machine the
//! load changes between criterion's back-to-back groups, and only interleaving keeps it out of the ratio.
//!
//! `cargo bench -p groundwork --bench batch`

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::TimeZone;
use criterion::{Criterion, criterion_group, criterion_main};
use groundwork::consolidate::batch::BatchSettings;
use groundwork::consolidate::service::{Ports, RequestOutcome, handle_request, worker_quality_uri};
use groundwork::consolidate::worker_quality::{DEFAULT_MAX_BATCHES, JobWorkerQuality};
use groundwork::contracts::ConsolidationRequest;
use groundwork::metadata::FixedClock;
use groundwork::ports::{
    ConditionalPut, Encryption, ObjectReader, ObjectWriter, StoreError, VersionedObject,
    VersionedStore,
};
use groundwork::s3_uri::S3Uri;
use groundwork::testing::block_on;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const CLASSES: [&str; 4] = ["cat", "dog", "bird", "fish"];
const PAYLOAD_URI: &str = "s3://bucket/out/bench/annotations/consolidated-annotation/consolidation-request/iteration-1/2024-01-01_00:00:00.json";

/// A payload as Ground Truth writes it: 1,000 objects, 5 of 50 workers each, 85%-accurate answers.
fn payload(objects: usize, workers_per_object: usize) -> Vec<u8> {
    let mut rng = SmallRng::seed_from_u64(7);
    let items: Vec<Value> = (0..objects)
        .map(|i| {
            let truth = rng.random_range(0..CLASSES.len());
            let annotations: Vec<Value> = (0..workers_per_object)
                .map(|w| {
                    let worker = (i * 7 + w * 11) % 50;
                    let label = if rng.random_bool(0.85) { truth } else { rng.random_range(0..CLASSES.len()) };
                    json!({
                        "workerId": format!("private.us-east-1.{worker:026}"),
                        "annotationData": {"content": json!({"crowd-image-classifier": {"label": CLASSES[label]}}).to_string()}
                    })
                })
                .collect();
            json!({"datasetObjectId": i.to_string(), "dataObject": {"s3Uri": format!("s3://bucket/images/{i:06}.jpg")}, "annotations": annotations})
        })
        .collect();
    serde_json::to_vec(&items).unwrap_or_default()
}

/// The consolidation event Ground Truth sends for that payload.
fn event() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "version": "2018-10-06",
        "labelingJobArn": "arn:aws:sagemaker:us-east-1:111111111111:labeling-job/bench",
        "labelCategories": CLASSES,
        "labelAttributeName": "animal",
        "roleArn": "arn:aws:iam::111111111111:role/gt",
        "payload": {"s3Uri": PAYLOAD_URI},
        "outputConfig": "s3://bucket/out/bench/annotations"
    }))
    .unwrap_or_default()
}

/// S3 in memory: the payload, and a worker-quality document that every round starts from (its writes
/// are accepted and dropped, so each round does the same work).
struct BenchStore {
    payload: Vec<u8>,
    quality: Option<Vec<u8>>,
    written: Mutex<usize>,
}

#[async_trait]
impl ObjectReader for BenchStore {
    async fn get_object(&self, _: &S3Uri) -> Result<Vec<u8>, StoreError> {
        Ok(self.payload.clone())
    }
}

#[async_trait]
impl ObjectWriter for BenchStore {
    async fn put_object(
        &self,
        _: &S3Uri,
        _: Vec<u8>,
        _: &str,
        _: &Encryption,
    ) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait]
impl VersionedStore for BenchStore {
    async fn get_versioned(&self, _: &S3Uri) -> Result<Option<VersionedObject>, StoreError> {
        Ok(self.quality.clone().map(|body| VersionedObject {
            body,
            etag: "\"1\"".to_owned(),
        }))
    }

    async fn put_if_match(
        &self,
        _: &S3Uri,
        body: Vec<u8>,
        _: Option<&str>,
        _: &Encryption,
    ) -> Result<ConditionalPut, StoreError> {
        if let Ok(mut written) = self.written.lock() {
            *written = body.len();
        }
        Ok(ConditionalPut::Written {
            etag: "\"2\"".to_owned(),
        })
    }
}

/// The handler's work on one event, up to its outcome (`None` on an error).
fn run(
    event: &[u8],
    store: &BenchStore,
    clock: &FixedClock,
    settings: &BatchSettings,
) -> Option<RequestOutcome> {
    let request = serde_json::from_slice::<ConsolidationRequest>(event).ok()?;
    let ports = Ports {
        reader: store,
        writer: store,
        quality: Some(store),
        prior_answers: None,
        audit: None,
        scope: &groundwork::s3_scope::S3Scope::anywhere(),
    };
    block_on(handle_request(&request, ports, settings, clock)).ok()
}

/// The handler's work on one event: response bytes, or 0 on an error (which the bench would show as an
/// implausibly fast run).
fn handle(event: &[u8], store: &BenchStore, clock: &FixedClock, settings: &BatchSettings) -> usize {
    run(event, store, clock, settings)
        .and_then(|outcome| serde_json::to_vec(&outcome.entries).ok())
        .map_or(0, |v| v.len())
}

/// The fastest of `rounds` alternating runs of `floor` and `work`.
fn interleaved(rounds: usize, floor: impl Fn(), work: impl Fn()) -> (Duration, Duration) {
    let (mut best_floor, mut best_work) = (Duration::MAX, Duration::MAX);
    for _ in 0..rounds {
        let start = Instant::now();
        floor();
        best_floor = best_floor.min(start.elapsed());
        let start = Instant::now();
        work();
        best_work = best_work.min(start.elapsed());
    }
    (best_floor, best_work)
}

fn bench(c: &mut Criterion) {
    let bytes = payload(1000, 5);
    let event = event();
    let clock = FixedClock(chrono::Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap());
    let settings = BatchSettings::default();
    let first_batch = BenchStore {
        payload: bytes.clone(),
        quality: None,
        written: Mutex::new(0),
    };
    // A job's middle: the document holds DEFAULT_MAX_BATCHES earlier batches of the same shape.
    let stats = run(&event, &first_batch, &clock, &settings)
        .map(|outcome| outcome.batch.stats)
        .unwrap_or_default();
    let mut document = JobWorkerQuality::new();
    for b in 0..DEFAULT_MAX_BATCHES {
        document.record(
            &format!("s3://bucket/out/bench/earlier-{b:04}.json"),
            stats.clone(),
        );
    }
    let mid_job = BenchStore {
        payload: bytes.clone(),
        quality: document.to_json_vec().ok(),
        written: Mutex::new(0),
    };
    let state_uri = worker_quality_uri(
        &"s3://bucket/out/bench/annotations"
            .parse()
            .unwrap_or_else(|_| unreachable!()),
        "animal",
    );
    eprintln!(
        "payload {} bytes; worker-quality document ({state_uri}) mid-job {} bytes",
        bytes.len(),
        mid_job.quality.as_ref().map_or(0, Vec::len)
    );

    let floor =
        || serde_json::from_slice::<Value>(std::hint::black_box(&bytes)).map(|v| v.is_array());
    let mut group = c.benchmark_group("request-1000x5");
    group.sample_size(30);
    group.bench_function("bare serde_json parse (floor)", |b| b.iter(floor));
    group.bench_function("first batch of a job", |b| {
        b.iter(|| {
            handle(
                std::hint::black_box(&event),
                &first_batch,
                &clock,
                &settings,
            )
        })
    });
    group.bench_function("mid-job batch (16 earlier batches)", |b| {
        b.iter(|| handle(std::hint::black_box(&event), &mid_job, &clock, &settings))
    });
    group.finish();

    for (name, store) in [("first batch", &first_batch), ("mid-job batch", &mid_job)] {
        let (floor_time, work_time) = interleaved(
            200,
            || {
                let _ = std::hint::black_box(floor());
            },
            || {
                std::hint::black_box(handle(&event, store, &clock, &settings));
            },
        );
        println!(
            "request-1000x5 {name}, interleaved, fastest of 200 rounds: bare parse {floor_time:.2?}, \
             request {work_time:.2?}, ratio {:.2}× (target ≤ 1.5×)",
            work_time.as_secs_f64() / floor_time.as_secs_f64()
        );
    }
    let written = mid_job.written.lock().map(|w| *w).unwrap_or(0);
    println!("worker-quality document written mid-job: {written} bytes");
}

criterion_group!(benches, bench);
criterion_main!(benches);
