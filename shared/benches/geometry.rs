//! Criterion benches of the geometry consolidators, each beside the baseline it is judged against:
//!
//! * `segmentation`: [`consolidate_masks`] on 100 images of 256² with 5 workers, the shape of crowd-kit's
//!   segmentation bench (`crowdkit_bench.py seg`; target: 20× faster than its majority vote), with our own
//!   plain per-pixel majority vote alongside, and the PNG round trip (decode five worker PNGs, encode one)
//!   on 10 of the images. Side by side in one session on a shared 2-core machine (nine rounds):
//!   `consolidate_masks` 8.8–11.1 ms; SegmentationMajorityVote 0.24–0.32 s as the script times it (one
//!   run per process: 24–34× ours), 0.094–0.133 s when repeated in one process (8.5–12×);
//!   SegmentationEM 4.8–14.4 s (the machine was shared: its load varied). Later session (two nice-19
//!   rustc on both cores): `consolidate_masks` medians 7.6–9.2 ms over 15 runs, plain majority vote
//!   3.3–4.2 ms, SegmentationMajorityVote 0.109–0.137 s best of 3 warm (12–15×). The `read_floor` row
//!   (only reading the masks: 2.2–3.0 ms) and the `10_images_in_cache` row (0.60–0.85 ms, i.e. 6–8 ms
//!   per 100 images, against 0.10–0.13 ms for the plain vote) show that ours is compute-bound, not
//!   memory-bound: about 65 µs of work per image, pass 1 (`WordPass::run`) 55–60% of it, spread over
//!   its loops. The in-cache row is also the least noisy way to compare two versions.
//! * `boxes`: [`consolidate_boxes`] on 10,000 images × 5 workers × ~5 boxes, against a bare
//!   `serde_json::from_str::<Value>` of the same answers' JSON (target: at most 1.5× the parse).
//! * `spans`: [`consolidate_spans`] on 10,000 texts × 3 workers (Ground Truth's default for NER), against
//!   parsing the same payload (text and answers).
//!
//! Kept short (10 samples, 3 s): the machine is shared.
//! `cargo bench -p groundwork --bench geometry`

use std::hint::black_box;
use std::time::Duration;

use base64::Engine;
use criterion::{Criterion, criterion_group, criterion_main};
use groundwork::consolidate::boxes::{
    BoxConfig, BoxJob, BoxOutput, ImageSize, WorkerAnswer, consolidate_boxes, parse_box_answer,
};
use groundwork::consolidate::segmentation::{
    SegmentationConfig, SegmentationJob, SegmentationOutput, WorkerMask, consolidate_masks,
    consolidate_segmentation, parse_segmentation_answer,
};
use groundwork::consolidate::spans::{
    EntityOutput, JobLabel, SpanConfig, SpanJob, consolidate_spans, parse_entity_answer,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use serde_json::{Value, json};

/// crowd-kit's segmentation generator (`make_segmentation`): an ellipse per image; each worker shifts and
/// scales it by an amount that grows as its quality (uniform in 0.6–1) falls.
fn segmentation_set(images: usize, side: usize, workers: usize) -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
    let mut rng = StdRng::seed_from_u64(0);
    let h = side as f64;
    let ellipse = |cy: f64, cx: f64, ry: f64, rx: f64| -> Vec<u8> {
        let mut mask = vec![0u8; side * side];
        for y in 0..side {
            for x in 0..side {
                let (dy, dx) = ((y as f64 - cy) / ry, (x as f64 - cx) / rx);
                mask[y * side + x] = u8::from(dy * dy + dx * dx <= 1.0);
            }
        }
        mask
    };
    (0..images)
        .map(|_| {
            let (cy, cx) = (
                rng.random_range(0.3..0.7) * h,
                rng.random_range(0.3..0.7) * h,
            );
            let (ry, rx) = (
                rng.random_range(0.1..0.3) * h,
                rng.random_range(0.1..0.3) * h,
            );
            let gold = ellipse(cy, cx, ry, rx);
            let masks = (0..workers)
                .map(|_| {
                    let quality: f64 = rng.random_range(0.6..1.0);
                    let shift = Normal::new(0.0, (1.0 - quality) * 0.2 * h)
                        .unwrap_or_else(|_| unreachable!());
                    let scale =
                        Normal::new(1.0, (1.0 - quality) * 0.3).unwrap_or_else(|_| unreachable!());
                    let (sy, sx) = (shift.sample(&mut rng), shift.sample(&mut rng));
                    let s = scale.sample(&mut rng);
                    ellipse(cy + sy, cx + sx, ry * s, rx * s)
                })
                .collect();
            (gold, masks)
        })
        .collect()
}

fn majority_vote(masks: &[Vec<u8>]) -> Vec<u8> {
    let pixels = masks.first().map_or(0, Vec::len);
    let mut votes = vec![0u8; pixels];
    for mask in masks {
        for (vote, &class) in votes.iter_mut().zip(mask) {
            *vote += class;
        }
    }
    let half = masks.len() as u8 / 2;
    votes.iter().map(|&v| u8::from(v > half)).collect()
}

fn iou(predicted: &[u8], gold: &[u8]) -> f64 {
    let intersection = predicted
        .iter()
        .zip(gold)
        .filter(|(p, g)| **p == 1 && **g == 1)
        .count();
    let union = predicted
        .iter()
        .zip(gold)
        .filter(|(p, g)| **p == 1 || **g == 1)
        .count();
    intersection as f64 / union.max(1) as f64
}

fn rgb_png(mask: &[u8], side: u32) -> Vec<u8> {
    let data: Vec<u8> = mask
        .iter()
        .flat_map(|&class| {
            if class == 1 {
                [0x2c, 0xa0, 0x2c]
            } else {
                [0xff, 0xff, 0xff]
            }
        })
        .collect();
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, side, side);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    if let Ok(mut writer) = encoder.write_header() {
        let _ = writer.write_image_data(&data);
        let _ = writer.finish();
    }
    bytes
}

fn bench_segmentation(c: &mut Criterion) {
    const SIDE: usize = 256;
    let set = segmentation_set(100, SIDE, 5);
    let size = ImageSize {
        width: SIDE as u32,
        height: SIDE as u32,
    };
    let ids: Vec<String> = (0..5).map(|w| format!("w{w}")).collect();
    let config = SegmentationConfig::default();
    let run = |set: &[(Vec<u8>, Vec<Vec<u8>>)]| {
        set.iter()
            .filter_map(|(_, masks)| {
                let workers: Vec<WorkerMask<'_>> = masks
                    .iter()
                    .zip(&ids)
                    .map(|(mask, id)| WorkerMask {
                        worker_id: id,
                        classes: mask,
                        reliability: None,
                    })
                    .collect();
                consolidate_masks(&workers, size, 2, &config).ok()
            })
            .collect::<Vec<_>>()
    };
    let ours: f64 = run(&set)
        .iter()
        .zip(&set)
        .map(|(r, (gold, _))| iou(&r.classes, gold))
        .sum::<f64>()
        / 100.0;
    let plain: f64 = set
        .iter()
        .map(|(gold, masks)| iou(&majority_vote(masks), gold))
        .sum::<f64>()
        / 100.0;
    eprintln!(
        "segmentation, 100 images 256² × 5 workers: ours mIoU {ours:.4}, plain majority vote {plain:.4}"
    );

    let mut group = c.benchmark_group("segmentation");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("consolidate_masks/100_images_256x256_5_workers", |b| {
        b.iter(|| run(black_box(&set)))
    });
    // Ten images (3.3 MB of masks) stay in cache between iterations: the compute alone, no memory.
    group.bench_function("consolidate_masks/10_images_in_cache", |b| {
        b.iter(|| run(black_box(&set[..10])))
    });
    // The floor: reading the five masks once and comparing them with the first, nothing else.
    group.bench_function("read_floor/100_images_256x256_5_workers", |b| {
        b.iter(|| {
            set.iter()
                .map(|(_, masks)| {
                    let masks = black_box(masks);
                    let first = &masks[0];
                    let mut acc = [0u64; 32];
                    for m in &masks[1..] {
                        for (x, y) in first
                            .as_chunks::<256>()
                            .0
                            .iter()
                            .zip(m.as_chunks::<256>().0)
                        {
                            for (a, (x, y)) in acc
                                .iter_mut()
                                .zip(x.as_chunks::<8>().0.iter().zip(y.as_chunks::<8>().0))
                            {
                                *a |= u64::from_le_bytes(*x) ^ u64::from_le_bytes(*y);
                            }
                        }
                    }
                    acc.iter().fold(0, |a, b| a | b)
                })
                .fold(0u64, |a, b| a | b)
        })
    });
    group.bench_function("plain_majority_vote/100_images_256x256_5_workers", |b| {
        b.iter(|| {
            set.iter()
                .map(|(_, masks)| majority_vote(black_box(masks)))
                .collect::<Vec<_>>()
        })
    });

    // End to end with PNGs on 10 images: base64 decode, PNG decode, consolidate, indexed-PNG encode.
    let answers: Vec<Vec<Value>> = set[..10]
        .iter()
        .map(|(_, masks)| {
            masks
                .iter()
                .map(|mask| {
                    json!({
                        "inputImageProperties": {"height": SIDE, "width": SIDE},
                        "labelMappings": {"Bird": {"color": "#2ca02c"}},
                        "labeledImage": {"pngImageData": base64::engine::general_purpose::STANDARD.encode(rgb_png(mask, SIDE as u32))}
                    })
                })
                .collect()
        })
        .collect();
    let labels = vec!["Bird".to_owned()];
    let job = SegmentationJob { labels: &labels };
    group.bench_function(
        "consolidate_segmentation_png/10_images_256x256_5_workers",
        |b| {
            b.iter(|| {
                answers
                    .iter()
                    .filter_map(|image| {
                        let workers: Vec<WorkerAnswer<'_, SegmentationOutput<'_>>> = image
                            .iter()
                            .zip(&ids)
                            .map(|(answer, id)| {
                                WorkerAnswer::new(id, parse_segmentation_answer(answer))
                            })
                            .collect();
                        consolidate_segmentation(&workers, &job, &config).ok()
                    })
                    .count()
            })
        },
    );
    group.finish();
}

/// 10,000 images × 5 workers, 3–7 objects each, noisy edges, misses and extras.
fn box_payloads(images: usize) -> Vec<(String, Vec<Value>)> {
    let mut rng = StdRng::seed_from_u64(1);
    let labels = ["car", "person", "bike", "dog"];
    (0..images)
        .map(|_| {
            let objects: Vec<(f64, f64, f64, f64, usize)> = (0..rng.random_range(3..=7))
                .map(|_| {
                    let (w, h) = (rng.random_range(30.0..200.0), rng.random_range(30.0..200.0));
                    (rng.random_range(0.0..1024.0 - w), rng.random_range(0.0..768.0 - h), w, h, rng.random_range(0..4))
                })
                .collect();
            let answers: Vec<Value> = (0..5)
                .map(|_| {
                    let drawn: Vec<(f64, f64, f64, f64, usize)> =
                        objects.iter().copied().filter(|_| rng.random_bool(0.85)).collect();
                    let mut boxes: Vec<Value> = drawn
                        .iter()
                        .map(|&(left, top, width, height, label)| {
                            let mut jitter = |side: f64| (rng.random_range(-0.05..0.05) * side).round();
                            let (dh, dl, dt, dw) = (jitter(height), jitter(width), jitter(height), jitter(width));
                            json!({"height": (height + dh).round(), "label": labels[label],
                                   "left": (left + dl).round(), "top": (top + dt).round(),
                                   "width": (width + dw).round()})
                        })
                        .collect();
                    if rng.random_bool(0.2) {
                        boxes.push(json!({"height": 50, "label": labels[0], "left": rng.random_range(0..900), "top": rng.random_range(0..700), "width": 60}));
                    }
                    json!({"boundingBoxes": boxes, "inputImageProperties": {"height": 768, "width": 1024}})
                })
                .collect();
            (Value::Array(answers.clone()).to_string(), answers)
        })
        .collect()
}

fn bench_boxes(c: &mut Criterion) {
    let payloads = box_payloads(10_000);
    let bytes: usize = payloads.iter().map(|(text, _)| text.len()).sum();
    eprintln!(
        "boxes payload: {:.1} MB of answer JSON for 10,000 images",
        bytes as f64 / 1e6
    );
    let labels: Vec<String> = ["car", "person", "bike", "dog"]
        .iter()
        .map(|l| (*l).to_owned())
        .collect();
    let ids: Vec<String> = (0..5).map(|w| format!("w{w}")).collect();
    let job = BoxJob {
        labels: &labels,
        ..BoxJob::default()
    };
    let config = BoxConfig::default();

    let mut group = c.benchmark_group("boxes");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("serde_json_parse_baseline/10k_images_5_workers", |b| {
        b.iter(|| {
            payloads
                .iter()
                .filter_map(|(text, _)| serde_json::from_str::<Value>(black_box(text)).ok())
                .count()
        })
    });
    group.bench_function("consolidate_boxes/10k_images_5_workers", |b| {
        b.iter(|| {
            payloads
                .iter()
                .filter_map(|(_, answers)| {
                    let workers: Vec<WorkerAnswer<'_, BoxOutput<'_>>> = answers
                        .iter()
                        .zip(&ids)
                        .map(|(answer, id)| WorkerAnswer::new(id, parse_box_answer(answer)))
                        .collect();
                    consolidate_boxes(black_box(&workers), &job, &config).ok()
                })
                .count()
        })
    });
    group.finish();
}

/// 10,000 texts of 20–60 words, 2–8 entities, 3 workers with misses, label confusion and jitter.
fn span_payloads(texts: usize) -> Vec<(String, String, Vec<Value>)> {
    let mut rng = StdRng::seed_from_u64(2);
    let labels = ["PER", "ORG", "LOC", "MISC"];
    let words = [
        "Ada", "Lovelace", "visited", "the", "Royal", "Society", "in", "London", "on", "Monday",
        "with", "Charles", "Babbage", "and", "wrote", "notes", "über", "東京",
    ];
    (0..texts)
        .map(|_| {
            let count = rng.random_range(20..60);
            let mut text = String::new();
            let mut spans = Vec::new();
            let mut offset = 0u64;
            for i in 0..count {
                if i > 0 {
                    text.push(' ');
                    offset += 1;
                }
                let word = words[rng.random_range(0..words.len())];
                text.push_str(word);
                let length = word.chars().count() as u64;
                if rng.random_bool(0.12) {
                    spans.push((offset, offset + length, rng.random_range(0..4)));
                }
                offset += length;
            }
            let answers: Vec<Value> = (0..3)
                .map(|_| {
                    let marked: Vec<(u64, u64, usize)> = spans
                        .iter()
                        .copied()
                        .filter(|_| rng.random_bool(0.9))
                        .collect();
                    let entities: Vec<Value> = marked
                        .iter()
                        .map(|&(start, end, label)| {
                            let label = if rng.random_bool(0.1) {
                                rng.random_range(0..4)
                            } else {
                                label
                            };
                            let end = if rng.random_bool(0.1) { end + 1 } else { end }.min(offset);
                            json!({"endOffset": end, "label": labels[label], "startOffset": start})
                        })
                        .collect();
                    json!({"entities": entities})
                })
                .collect();
            let payload = json!({"dataObject": {"content": text}, "answers": answers}).to_string();
            (payload, text, answers)
        })
        .collect()
}

fn bench_spans(c: &mut Criterion) {
    let payloads = span_payloads(10_000);
    let labels: Vec<JobLabel> = ["PER", "ORG", "LOC", "MISC"]
        .iter()
        .map(|l| ((*l).to_owned(), None))
        .collect();
    let ids: Vec<String> = (0..3).map(|w| format!("w{w}")).collect();
    let config = SpanConfig::default();

    let mut group = c.benchmark_group("spans");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("serde_json_parse_baseline/10k_texts_3_workers", |b| {
        b.iter(|| {
            payloads
                .iter()
                .filter_map(|(text, _, _)| serde_json::from_str::<Value>(black_box(text)).ok())
                .count()
        })
    });
    group.bench_function("consolidate_spans/10k_texts_3_workers", |b| {
        b.iter(|| {
            payloads
                .iter()
                .filter_map(|(_, text, answers)| {
                    let workers: Vec<WorkerAnswer<'_, EntityOutput<'_>>> = answers
                        .iter()
                        .zip(&ids)
                        .map(|(answer, id)| WorkerAnswer::new(id, parse_entity_answer(answer)))
                        .collect();
                    let job = SpanJob {
                        text: Some(text),
                        labels: &labels,
                    };
                    consolidate_spans(black_box(&workers), &job, &config).ok()
                })
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_segmentation, bench_boxes, bench_spans);
criterion_main!(benches);
