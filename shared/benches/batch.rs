//! The consolidation Lambda's own work on one batch, side by side with a bare `serde_json` parse of the
//! same payload (the floor any handler pays): 1,000 objects × 5 workers, single-label classification.
//! Target: the whole batch (payload parse, answers, truth inference, response entries) costs ≤ 1.5× the
//! bare parse.
//!
//! Besides criterion's two timings, the bench prints the ratio itself, measured by alternating the two
//! (one of each per round, the fastest of each over the rounds): on a shared machine the load changes
//! between criterion's back-to-back groups, and only interleaving keeps it out of the ratio.
//!
//! `cargo bench -p groundwork --bench batch`

use std::time::{Duration, Instant};

use chrono::TimeZone;
use criterion::{Criterion, criterion_group, criterion_main};
use groundwork::consolidate::batch::{BatchJob, BatchSettings, consolidate_batch, resolve_inline};
use groundwork::consolidate::worker_quality::WorkerPriors;
use groundwork::contracts::parse_payload;
use groundwork::metadata::LabelingJobArn;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const CLASSES: [&str; 4] = ["cat", "dog", "bird", "fish"];

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

/// The fastest of `rounds` alternating runs of `floor` and `work`, and their ratio.
fn interleaved_ratio(rounds: usize, floor: impl Fn(), work: impl Fn()) -> (Duration, Duration) {
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
    let arn: LabelingJobArn = "arn:aws:sagemaker:us-east-1:111111111111:labeling-job/bench"
        .parse()
        .unwrap_or_else(|_| unreachable!("a valid ARN"));
    let labels: Vec<String> = CLASSES.iter().map(|c| (*c).to_owned()).collect();
    let now = chrono::Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let settings = BatchSettings::default();
    let floor =
        || serde_json::from_slice::<Value>(std::hint::black_box(&bytes)).map(|v| v.is_array());
    let batch = || {
        let objects =
            resolve_inline(parse_payload(std::hint::black_box(&bytes)).unwrap_or_default());
        let job = BatchJob {
            job: &arn,
            label_attribute_name: "animal",
            labels: Some(&labels),
            now,
        };
        let outcome = consolidate_batch(&job, &objects, &WorkerPriors::empty(), &settings, &|id| {
            id.to_owned()
        });
        serde_json::to_vec(&outcome.entries).map(|v| v.len())
    };
    let mut group = c.benchmark_group("batch-1000x5");
    group.sample_size(30);
    group.bench_function("bare serde_json parse (floor)", |b| b.iter(floor));
    group.bench_function("consolidation batch (parse + infer + respond)", |b| {
        b.iter(batch)
    });
    group.finish();
    let (floor_time, batch_time) = interleaved_ratio(
        200,
        || {
            let _ = std::hint::black_box(floor());
        },
        || {
            let _ = std::hint::black_box(batch());
        },
    );
    println!(
        "batch-1000x5 interleaved, fastest of 200 rounds: bare parse {floor_time:.2?}, batch {batch_time:.2?}, \
         ratio {:.2}× (target ≤ 1.5×)",
        batch_time.as_secs_f64() / floor_time.as_secs_f64()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
