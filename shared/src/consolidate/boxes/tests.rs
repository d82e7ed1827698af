//! Bounding-box consolidation against the output contract, degenerate input, and a synthetic crowd with
//! known truth (scored against two baselines: greedy majority-of-boxes and the best single worker).

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use serde_json::{Value, json};

use super::*;

fn labels(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

fn answer(boxes: &[(&str, f64, f64, f64, f64)]) -> Value {
    let boxes: Vec<Value> = boxes
        .iter()
        .map(|(label, left, top, width, height)| {
            json!({"height": height, "label": label, "left": left, "top": top, "width": width})
        })
        .collect();
    json!({"boundingBoxes": boxes, "inputImageProperties": {"height": 480, "width": 640}})
}

fn consolidate(answers: &[Value], labels: &[String]) -> BoxConsolidation {
    let ids: Vec<String> = (0..answers.len()).map(|i| format!("w{i}")).collect();
    let workers: Vec<WorkerAnswer<'_, BoxOutput<'_>>> = answers
        .iter()
        .zip(&ids)
        .map(|(answer, id)| WorkerAnswer::new(id, parse_box_answer(answer)))
        .collect();
    let job = BoxJob {
        labels,
        ..BoxJob::default()
    };
    consolidate_boxes(&workers, &job, &BoxConfig::default()).unwrap()
}

#[test]
fn parses_the_documented_payload_answer() {
    let content = r#"{"boundingBox":{"boundingBoxes":[{"height":2052,"label":"Bird","left":583,"top":302,"width":1375}],"inputImageProperties":{"height":2497,"width":3745}}}"#;
    let wrapped: Value = serde_json::from_str(content).unwrap();
    let parsed = parse_box_answer(&wrapped["boundingBox"]).unwrap();
    assert_eq!(
        parsed.image_size,
        Some(ImageSize {
            width: 3745,
            height: 2497
        })
    );
    assert_eq!(parsed.boxes.len(), 1);
    assert_eq!(parsed.boxes[0].label, "Bird");
    assert_eq!(parsed.boxes[0].width, 1375.0);
    assert!(parsed.rejected.is_empty());
}

#[test]
fn nothing_drawn_is_a_valid_answer() {
    for answer in [
        json!({"boundingBoxes": null, "inputImageProperties": {"height": 4, "width": 4}}),
        json!({"inputImageProperties": {"height": 4, "width": 4}}),
        json!({"boundingBoxes": []}),
    ] {
        let parsed = parse_box_answer(&answer).unwrap();
        assert!(parsed.boxes.is_empty());
    }
}

#[test]
fn malformed_answers_are_errors_and_malformed_boxes_are_rejected() {
    assert_eq!(
        parse_box_answer(&json!([1])),
        Err(BoxAnswerError::NotAnObject)
    );
    assert_eq!(
        parse_box_answer(&json!({"boundingBoxes": "x"})),
        Err(BoxAnswerError::BoxesNotAList)
    );
    assert_eq!(
        parse_box_answer(&json!({"inputImageProperties": {"width": -3, "height": 2}})),
        Err(BoxAnswerError::BadImageSize)
    );
    let answer = json!({"boundingBoxes": [
        7,
        {"label": "a", "left": 1, "top": 1, "width": 0, "height": 3},
        {"label": "a", "left": "1", "top": 1, "width": 2, "height": 3},
        {"left": 1, "top": 1, "width": 2, "height": 3},
        {"label": "a", "left": 1.5, "top": 1, "width": 2.25, "height": 3}
    ]});
    let parsed = parse_box_answer(&answer).unwrap();
    assert_eq!(parsed.boxes.len(), 1);
    assert_eq!(parsed.boxes[0].index, 4);
    let problems: Vec<usize> = parsed.rejected.iter().map(|(index, _)| *index).collect();
    assert_eq!(problems, vec![0, 1, 2, 3]);
    assert_eq!(parsed.rejected[2].1, BoxProblem::BadNumber("left"));
}

#[test]
fn output_has_ground_truths_exact_shape() {
    let labels = labels(&["dog", "cat", "bone"]);
    let a = answer(&[
        ("dog", 100.0, 100.0, 50.0, 80.0),
        ("bone", 10.0, 10.0, 20.0, 20.0),
    ]);
    let b = answer(&[
        ("dog", 102.0, 98.0, 50.0, 84.0),
        ("bone", 11.0, 10.0, 20.0, 21.0),
    ]);
    let c = answer(&[("dog", 101.0, 101.0, 48.0, 80.0)]);
    let result = consolidate(&[a, b, c], &labels);
    // The dog is the median of three boxes; the bone, drawn by two, leans toward the worker whose dog
    // box sat closer to the consensus.
    assert_eq!(
        result.label(),
        json!({
            "image_size": [{"width": 640, "height": 480, "depth": 3}],
            "annotations": [
                {"class_id": 2, "left": 10, "top": 10, "width": 20, "height": 20},
                {"class_id": 0, "left": 101, "top": 100, "width": 49, "height": 81}
            ]
        })
    );
    // Key order matters for byte-exact manifests (preserve_order).
    assert_eq!(
        serde_json::to_string(&result.label()["annotations"][0]).unwrap(),
        r#"{"class_id":2,"left":10,"top":10,"width":20,"height":20}"#
    );
    let metadata = Value::Object(result.metadata());
    assert_eq!(metadata["class-map"], json!({"0": "dog", "2": "bone"}));
    let confidences: Vec<f64> = metadata["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["confidence"].as_f64().unwrap())
        .collect();
    assert_eq!(confidences.len(), 2);
    // Three agreeing workers beat two agreeing workers and one abstaining.
    assert!(confidences[1] > confidences[0], "{confidences:?}");
    assert!(confidences.iter().all(|c| (0.0..=1.0).contains(c)));
    assert!(metadata.get("adjustment-status").is_none());
    assert_eq!(result.agreements.len(), 3);
    assert_eq!(result.agreements[2].agreed, 1.0);
    assert_eq!(result.agreements[2].total, 2.0);
}

#[test]
fn a_lone_worker_gets_its_boxes_with_confidence_zero() {
    let a = answer(&[
        ("cat", 10.4, 20.6, 30.2, 40.0),
        ("cat", 300.0, 200.0, 10.0, 10.0),
    ]);
    let result = consolidate(std::slice::from_ref(&a), &[]);
    assert_eq!(result.boxes.len(), 2);
    assert!(result.boxes.iter().all(|b| b.confidence == 0.0));
    assert_eq!(
        result.label()["annotations"][0],
        json!({"class_id": 0, "left": 10, "top": 21, "width": 31, "height": 40})
    );
    assert!(result.agreements.is_empty());

    let workers = [WorkerAnswer::new("w0", parse_box_answer(&a)).with_reliability(Some(0.87))];
    let known = consolidate_boxes(&workers, &BoxJob::default(), &BoxConfig::default()).unwrap();
    assert!(known.boxes.iter().all(|b| b.confidence == 0.87));
}

#[test]
fn class_ids_without_a_label_file_follow_the_sorted_labels() {
    let a = answer(&[
        ("zebra", 10.0, 10.0, 30.0, 30.0),
        ("ant", 100.0, 100.0, 30.0, 30.0),
    ]);
    let result = consolidate(&[a.clone(), a], &[]);
    let metadata = Value::Object(result.metadata());
    assert_eq!(metadata["class-map"], json!({"0": "ant", "1": "zebra"}));
}

#[test]
fn the_class_is_voted_and_weighted_by_reliability() {
    let labels = labels(&["dog", "cat"]);
    let dog = answer(&[("dog", 10.0, 10.0, 100.0, 100.0)]);
    let cat = answer(&[("cat", 12.0, 10.0, 100.0, 100.0)]);
    assert_eq!(
        consolidate(&[dog.clone(), cat.clone(), cat.clone()], &labels).boxes[0].class_id,
        1
    );
    let workers = [
        WorkerAnswer::new("expert", parse_box_answer(&dog)).with_reliability(Some(0.95)),
        WorkerAnswer::new("novice1", parse_box_answer(&cat)).with_reliability(Some(0.56)),
        WorkerAnswer::new("novice2", parse_box_answer(&cat)).with_reliability(Some(0.56)),
    ];
    let job = BoxJob {
        labels: &labels,
        ..BoxJob::default()
    };
    let result = consolidate_boxes(&workers, &job, &BoxConfig::default()).unwrap();
    assert_eq!(result.boxes[0].class_id, 0);
}

#[test]
fn the_quorum_drops_boxes_few_workers_drew() {
    let labels = labels(&["a"]);
    let shared = ("a", 10.0, 10.0, 100.0, 100.0);
    let extra = ("a", 400.0, 300.0, 50.0, 50.0);
    let answers = [
        answer(&[shared, extra]),
        answer(&[shared]),
        answer(&[shared]),
        json!({"boundingBoxes": null}),
    ];
    let result = consolidate(&answers, &labels);
    assert_eq!(result.boxes.len(), 1);
    assert_eq!(result.boxes[0].workers, 3);
}

#[test]
fn optimal_matching_beats_first_come_matching_on_overlapping_objects() {
    // Two overlapping objects; worker 0 drew the right one first. Greedy first-come matching of worker
    // 1's left box against worker 0's boxes could take the wrong partner; the assignment must not.
    let labels = labels(&["a"]);
    let left = ("a", 100.0, 100.0, 100.0, 100.0);
    let right = ("a", 150.0, 100.0, 100.0, 100.0);
    let answers = [
        answer(&[right, left]),
        answer(&[
            ("a", 95.0, 100.0, 100.0, 100.0),
            ("a", 152.0, 100.0, 100.0, 100.0),
        ]),
        answer(&[
            ("a", 104.0, 100.0, 100.0, 100.0),
            ("a", 149.0, 100.0, 100.0, 100.0),
        ]),
    ];
    let result = consolidate(&answers, &labels);
    let lefts: Vec<i64> = result.boxes.iter().map(|b| b.left).collect();
    assert_eq!(lefts.len(), 2);
    assert!(
        (lefts[0] - 100).abs() <= 4 && (lefts[1] - 150).abs() <= 2,
        "{lefts:?}"
    );
    assert!(result.boxes.iter().all(|b| b.workers == 3));
}

#[test]
fn degenerate_boxes_are_clipped_or_dropped_with_reasons() {
    let labels = labels(&["a"]);
    let a = json!({"boundingBoxes": [
        {"label": "a", "left": -20, "top": -10, "width": 60, "height": 40},
        {"label": "a", "left": 700, "top": 10, "width": 60, "height": 40},
        {"label": "a", "left": 10, "top": 10, "width": -5, "height": 40},
        {"label": "nope", "left": 10, "top": 10, "width": 5, "height": 40},
        {"label": "a", "left": 1e300, "top": 1e300, "width": 1e300, "height": 1e300},
        {"label": "a", "left": 600, "top": 400, "width": 1e308, "height": 1e308}
    ], "inputImageProperties": {"height": 480, "width": 640}});
    let result = consolidate(&[a], &labels);
    assert_eq!(
        result.label()["annotations"],
        json!([
            {"class_id": 0, "left": 0, "top": 0, "width": 40, "height": 30},
            {"class_id": 0, "left": 600, "top": 400, "width": 40, "height": 80}
        ])
    );
    let items: Vec<Option<usize>> = result.dropped.iter().map(|d| d.item).collect();
    assert_eq!(items, vec![Some(2), Some(1), Some(3), Some(4)]);
    assert!(result.dropped[2].reason.contains("nope"));
}

#[test]
fn workers_who_saw_another_image_or_sent_garbage_are_skipped() {
    let labels = labels(&["a"]);
    let good = answer(&[("a", 10.0, 10.0, 30.0, 30.0)]);
    let other_size =
        json!({"boundingBoxes": [], "inputImageProperties": {"height": 10, "width": 10}});
    let answers = [good.clone(), good, other_size, json!("garbage")];
    let result = consolidate(&answers, &labels);
    assert_eq!(result.boxes.len(), 1);
    let skipped: Vec<&str> = result
        .dropped
        .iter()
        .map(|d| d.worker_id.as_str())
        .collect();
    assert_eq!(skipped, vec!["w3", "w2"]);
    assert!(result.dropped[1].reason.contains("10x10"));

    let null = Value::Null;
    let workers = [WorkerAnswer::new("w", parse_box_answer(&null))];
    let error = consolidate_boxes(&workers, &BoxJob::default(), &BoxConfig::default()).unwrap_err();
    assert_eq!(error.dropped.len(), 1);
    assert!(consolidate_boxes(&[], &BoxJob::default(), &BoxConfig::default()).is_err());
}

#[test]
fn hundreds_of_boxes_are_capped_and_stay_fast() {
    let labels = labels(&["a"]);
    let grid: Vec<(&str, f64, f64, f64, f64)> = (0..600)
        .map(|i| {
            (
                "a",
                f64::from(i % 30) * 20.0,
                f64::from(i / 30) * 20.0,
                25.0,
                25.0,
            )
        })
        .collect();
    let answers = [answer(&grid), answer(&grid), answer(&grid)];
    let result = consolidate(&answers, &labels);
    assert_eq!(result.boxes.len(), 200);
    assert!(
        result
            .dropped
            .iter()
            .any(|d| d.reason.contains("cap of 200"))
    );
}

#[test]
fn piles_of_identical_boxes_stay_cheap() {
    // Every worker stamps the same box 200 times: one component of 200 × 200 candidate pairs per worker,
    // matched greedily instead of by the cubic solver.
    let labels = labels(&["a"]);
    let pile: Vec<(&str, f64, f64, f64, f64)> =
        (0..200).map(|_| ("a", 10.0, 10.0, 50.0, 50.0)).collect();
    let answers = [answer(&pile), answer(&pile), answer(&pile)];
    let result = consolidate(&answers, &labels);
    assert_eq!(result.boxes.len(), 200);
    assert!(
        result
            .boxes
            .iter()
            .all(|b| b.workers == 3 && b.left == 10 && b.width == 50)
    );
}

#[test]
fn adjustment_status_follows_workers_and_the_prior_label() {
    let labels = labels(&["a"]);
    let prior = json!({"image_size": [{"width": 640, "height": 480, "depth": 3}],
        "annotations": [{"class_id": 0, "left": 10.4, "top": 10, "width": 30, "height": 30}]});
    let unchanged = json!({"boundingBoxes": [{"label": "a", "left": 10, "top": 10, "width": 30, "height": 30}],
        "inputImageProperties": {"height": 480, "width": 640}, "initialValueModified": false});
    let mut moved = unchanged.clone();
    moved["boundingBoxes"][0]["left"] = json!(200);
    moved["initialValueModified"] = json!(true);
    let run = |answers: &[&Value]| {
        let workers: Vec<WorkerAnswer<'_, BoxOutput<'_>>> = answers
            .iter()
            .enumerate()
            .map(|(i, answer)| WorkerAnswer::new(["a", "b", "c"][i], parse_box_answer(answer)))
            .collect();
        let job = BoxJob {
            labels: &labels,
            adjustment: true,
            prior_label: Some(&PriorBoxes::read(&prior)),
        };
        consolidate_boxes(&workers, &job, &BoxConfig::default()).unwrap()
    };
    let result = run(&[&unchanged, &unchanged, &unchanged]);
    assert_eq!(result.adjustment_status, Some(AdjustmentStatus::Unadjusted));
    assert_eq!(result.metadata()["adjustment-status"], json!("unadjusted"));
    // One worker moved the box: Ground Truth calls that adjusted even though the majority kept it.
    let result = run(&[&unchanged, &unchanged, &moved]);
    assert_eq!(result.adjustment_status, Some(AdjustmentStatus::Adjusted));
    // No flags, but the result differs from the prior.
    let mut silent = moved.clone();
    silent
        .as_object_mut()
        .unwrap()
        .remove("initialValueModified");
    let result = run(&[&silent, &silent]);
    assert_eq!(result.adjustment_status, Some(AdjustmentStatus::Adjusted));
}

#[test]
fn the_aws_output_fixture_round_trips_as_a_prior_label() {
    // Real lines of Ground Truth output: every prior must parse as a prior, including float edges.
    let manifest =
        include_str!("../../../tests/data/geometry/object_detection_output_head.manifest");
    for line in manifest.lines() {
        let line: Value = serde_json::from_str(line).unwrap();
        let prior = &line["category"];
        let annotations = prior["annotations"].as_array().unwrap();
        let boxes: Vec<(&str, f64, f64, f64, f64)> = annotations
            .iter()
            .map(|a| {
                (
                    "Bird",
                    a["left"].as_f64().unwrap(),
                    a["top"].as_f64().unwrap(),
                    a["width"].as_f64().unwrap(),
                    a["height"].as_f64().unwrap(),
                )
            })
            .collect();
        let size = &prior["image_size"][0];
        let mut answer = answer(&boxes);
        answer["inputImageProperties"] = json!({"width": size["width"], "height": size["height"]});
        answer["initialValueModified"] = json!(false);
        let workers = [WorkerAnswer::new("w", parse_box_answer(&answer))];
        let labels = labels(&["Bird"]);
        let job = BoxJob {
            labels: &labels,
            adjustment: true,
            prior_label: Some(&PriorBoxes::read(prior)),
        };
        let result = consolidate_boxes(&workers, &job, &BoxConfig::default()).unwrap();
        assert_eq!(result.boxes.len(), annotations.len());
        assert_eq!(result.adjustment_status, Some(AdjustmentStatus::Unadjusted));
        assert_eq!(result.label()["image_size"], prior["image_size"]);
        let metadata = &line["category-metadata"];
        assert_eq!(
            Value::Object(result.metadata())["class-map"],
            metadata["class-map"]
        );
    }
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_answers(answers in proptest::collection::vec(arbitrary_answer(), 0..5)) {
        let ids: Vec<String> = (0..answers.len()).map(|i| format!("w{i}")).collect();
        let workers: Vec<WorkerAnswer<'_, BoxOutput<'_>>> = answers.iter().zip(&ids).map(|(a, id)| WorkerAnswer::new(id, parse_box_answer(a))).collect();
        let labels = labels(&["a", "b"]);
        for job_labels in [&labels[..], &[]] {
            let prior = answers.first().map(PriorBoxes::read);
            let job = BoxJob { labels: job_labels, adjustment: true, prior_label: prior.as_ref() };
            if let Ok(result) = consolidate_boxes(&workers, &job, &BoxConfig::default()) {
                let label = result.label();
                let annotations = label["annotations"].as_array().unwrap();
                prop_assert_eq!(annotations.len(), result.metadata()["objects"].as_array().unwrap().len());
                for b in &result.boxes {
                    prop_assert!(b.width >= 1 && b.height >= 1 && b.left >= 0 && b.top >= 0);
                    prop_assert!((0.0..=1.0).contains(&b.confidence));
                }
            }
        }
    }
}

fn arbitrary_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-50i64..700).prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        Just(json!(1e308)),
        Just(json!("12")),
        Just(Value::Null),
    ]
}

fn arbitrary_box() -> impl Strategy<Value = Value> {
    (
        prop_oneof![Just(json!("a")), Just(json!("b")), Just(json!("z")), Just(json!(3))],
        arbitrary_number(),
        arbitrary_number(),
        arbitrary_number(),
        arbitrary_number(),
    )
        .prop_map(|(label, left, top, width, height)| {
            json!({"label": label, "left": left, "top": top, "width": width, "height": height})
        })
}

fn arbitrary_answer() -> impl Strategy<Value = Value> {
    (
        proptest::option::of(proptest::collection::vec(arbitrary_box(), 0..8)),
        proptest::option::of((arbitrary_number(), arbitrary_number())),
        any::<Option<bool>>(),
    )
        .prop_map(|(boxes, size, modified)| {
            let mut answer = json!({"boundingBoxes": boxes});
            if let Some((width, height)) = size {
                answer["inputImageProperties"] = json!({"width": width, "height": height});
            }
            if let Some(modified) = modified {
                answer["initialValueModified"] = json!(modified);
            }
            answer
        })
}

// ---------------------------------------------------------------------------------------------------------
// Synthetic crowd with known truth.

/// How one simulated worker draws.
#[derive(Debug, Clone, Copy)]
struct Profile {
    /// Edge noise, as a share of the box side (standard deviation).
    sigma: f64,
    /// Chance to miss an object.
    miss: f64,
    /// Expected number of spurious boxes per image.
    extra: f64,
    /// Chance to pick a wrong class.
    confuse: f64,
    /// Chance that one edge is badly off (a slip of the mouse).
    slip: f64,
}

const PROFILES: [Profile; 5] = [
    Profile {
        sigma: 0.03,
        miss: 0.05,
        extra: 0.05,
        confuse: 0.03,
        slip: 0.02,
    },
    Profile {
        sigma: 0.05,
        miss: 0.10,
        extra: 0.10,
        confuse: 0.05,
        slip: 0.05,
    },
    Profile {
        sigma: 0.07,
        miss: 0.15,
        extra: 0.20,
        confuse: 0.10,
        slip: 0.10,
    },
    Profile {
        sigma: 0.10,
        miss: 0.25,
        extra: 0.35,
        confuse: 0.15,
        slip: 0.15,
    },
    Profile {
        sigma: 0.14,
        miss: 0.30,
        extra: 0.50,
        confuse: 0.25,
        slip: 0.20,
    },
];

const CLASSES: [&str; 4] = ["car", "person", "bike", "dog"];
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 480.0;

struct Scene {
    truth: Vec<(Rect, usize)>,
    answers: Vec<Value>,
}

fn random_box(rng: &mut StdRng) -> Rect {
    let width = rng.random_range(30.0..180.0);
    let height = rng.random_range(30.0..180.0);
    let left = rng.random_range(0.0..WIDTH - width);
    let top = rng.random_range(0.0..HEIGHT - height);
    Rect::from_xywh(left, top, width, height)
}

/// 1–7 objects; some are placed next to the previous one, overlapping it, as in crowded scenes.
fn scene(rng: &mut StdRng) -> Scene {
    let count = rng.random_range(1..=7);
    let mut truth: Vec<(Rect, usize)> = Vec::new();
    while truth.len() < count {
        let class = rng.random_range(0..CLASSES.len());
        let rect = match truth.last() {
            Some((previous, _)) if rng.random_bool(0.4) => {
                let width = previous.right - previous.left;
                let height = previous.bottom - previous.top;
                let dx = rng.random_range(0.35..0.7)
                    * width
                    * if rng.random_bool(0.5) { 1.0 } else { -1.0 };
                let dy = rng.random_range(-0.2..0.2) * height;
                let rect = Rect::from_xywh(
                    previous.left + dx,
                    previous.top + dy,
                    width * rng.random_range(0.8..1.2),
                    height * rng.random_range(0.8..1.2),
                );
                if rect.left < 0.0 || rect.top < 0.0 || rect.right > WIDTH || rect.bottom > HEIGHT {
                    continue;
                }
                rect
            }
            _ => random_box(rng),
        };
        if truth.iter().any(|(other, _)| other.iou(&rect) > 0.45) {
            continue;
        }
        truth.push((rect, class));
    }
    let answers = PROFILES
        .iter()
        .map(|profile| draw(rng, &truth, profile))
        .collect();
    Scene { truth, answers }
}

fn draw(rng: &mut StdRng, truth: &[(Rect, usize)], profile: &Profile) -> Value {
    let mut boxes = Vec::new();
    for (rect, class) in truth {
        if rng.random_bool(profile.miss) {
            continue;
        }
        let (width, height) = (rect.right - rect.left, rect.bottom - rect.top);
        let noise = |rng: &mut StdRng, side: f64| {
            Normal::new(0.0, profile.sigma * side).unwrap().sample(rng)
        };
        let mut edges = [
            rect.left + noise(rng, width),
            rect.top + noise(rng, height),
            rect.right + noise(rng, width),
            rect.bottom + noise(rng, height),
        ];
        if rng.random_bool(profile.slip) {
            let edge = rng.random_range(0..4);
            let side = if edge % 2 == 0 { width } else { height };
            let sign = if edge < 2 { -1.0 } else { 1.0 };
            edges[edge] += sign * rng.random_range(0.3..0.7) * side;
        }
        let class = if rng.random_bool(profile.confuse) {
            rng.random_range(0..CLASSES.len())
        } else {
            *class
        };
        push_box(&mut boxes, class, edges);
    }
    let mut extras = profile.extra;
    while extras > 0.0 && rng.random_bool(extras.min(1.0)) {
        let rect = random_box(rng);
        push_box(
            &mut boxes,
            rng.random_range(0..CLASSES.len()),
            [rect.left, rect.top, rect.right, rect.bottom],
        );
        extras -= 1.0;
    }
    // Workers draw in their own order.
    for i in (1..boxes.len()).rev() {
        boxes.swap(i, rng.random_range(0..=i));
    }
    json!({"boundingBoxes": boxes, "inputImageProperties": {"width": WIDTH, "height": HEIGHT}})
}

fn push_box(boxes: &mut Vec<Value>, class: usize, [left, top, right, bottom]: [f64; 4]) {
    let (left, top) = (left.round().max(0.0), top.round().max(0.0));
    let (right, bottom) = (right.round().min(WIDTH), bottom.round().min(HEIGHT));
    if right - left >= 2.0 && bottom - top >= 2.0 {
        boxes.push(json!({"height": bottom - top, "label": CLASSES[class], "left": left, "top": top, "width": right - left}));
    }
}

/// The simple baseline: greedy first-come matching (a box joins the first cluster whose seed overlaps it
/// by IoU ≥ 0.5), keep a cluster when at least half of the workers drew it, mean edges, majority class.
fn majority_of_boxes(answers: &[Value]) -> Vec<(Rect, usize)> {
    let mut clusters: Vec<Vec<(usize, Rect, usize)>> = Vec::new();
    for (worker, answer) in answers.iter().enumerate() {
        for drawn in parse_box_answer(answer).unwrap().boxes {
            let rect = Rect::from_xywh(drawn.left, drawn.top, drawn.width, drawn.height);
            let class = CLASSES.iter().position(|c| *c == drawn.label).unwrap();
            let target = clusters.iter_mut().find(|members| {
                members[0].1.iou(&rect) >= 0.5 && members.iter().all(|m| m.0 != worker)
            });
            match target {
                Some(members) => members.push((worker, rect, class)),
                None => clusters.push(vec![(worker, rect, class)]),
            }
        }
    }
    clusters
        .into_iter()
        .filter(|members| 2 * members.len() >= answers.len())
        .map(|members| {
            let n = members.len() as f64;
            let mean = |pick: fn(&Rect) -> f64| members.iter().map(|m| pick(&m.1)).sum::<f64>() / n;
            let rect = Rect {
                left: mean(|r| r.left),
                top: mean(|r| r.top),
                right: mean(|r| r.right),
                bottom: mean(|r| r.bottom),
            };
            let mut votes = [0usize; CLASSES.len()];
            for m in &members {
                votes[m.2] += 1;
            }
            let class = (0..CLASSES.len())
                .max_by_key(|&c| (votes[c], std::cmp::Reverse(c)))
                .unwrap();
            (rect, class)
        })
        .collect()
}

fn single_worker(answer: &Value) -> Vec<(Rect, usize)> {
    parse_box_answer(answer)
        .unwrap()
        .boxes
        .iter()
        .map(|d| {
            (
                Rect::from_xywh(d.left, d.top, d.width, d.height),
                CLASSES.iter().position(|c| *c == d.label).unwrap(),
            )
        })
        .collect()
}

fn ours(answers: &[Value]) -> (Vec<(Rect, usize)>, Vec<f64>) {
    let labels = labels(&CLASSES);
    let result = consolidate(answers, &labels);
    let boxes = result
        .boxes
        .iter()
        .map(|b| {
            (
                Rect::from_xywh(b.left as f64, b.top as f64, b.width as f64, b.height as f64),
                b.class_id,
            )
        })
        .collect();
    (boxes, result.boxes.iter().map(|b| b.confidence).collect())
}

/// Detection score accumulator: class-aware true positives at IoU ≥ 0.5 (greedy by IoU, as detection
/// benchmarks do) and the IoU of every true positive.
#[derive(Debug, Default, Clone)]
struct Score {
    true_positives: usize,
    predicted: usize,
    actual: usize,
    iou_sum: f64,
}

impl Score {
    /// Adds one image; returns for each prediction whether it was a true positive.
    fn add(&mut self, predicted: &[(Rect, usize)], truth: &[(Rect, usize)]) -> Vec<bool> {
        let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
        for (p, (rect, class)) in predicted.iter().enumerate() {
            for (t, (truth_rect, truth_class)) in truth.iter().enumerate() {
                let iou = rect.iou(truth_rect);
                if iou >= 0.5 && class == truth_class {
                    pairs.push((iou, p, t));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut hit = vec![false; predicted.len()];
        let mut taken = vec![false; truth.len()];
        for (iou, p, t) in pairs {
            if !hit[p] && !taken[t] {
                hit[p] = true;
                taken[t] = true;
                self.true_positives += 1;
                self.iou_sum += iou;
            }
        }
        self.predicted += predicted.len();
        self.actual += truth.len();
        hit
    }

    fn f1(&self) -> f64 {
        2.0 * self.true_positives as f64 / (self.predicted + self.actual).max(1) as f64
    }

    fn mean_iou(&self) -> f64 {
        self.iou_sum / self.true_positives.max(1) as f64
    }
}

#[test]
fn beats_majority_of_boxes_and_every_single_worker_on_a_synthetic_crowd() {
    let mut rng = StdRng::seed_from_u64(7);
    let (mut our_score, mut baseline_score) = (Score::default(), Score::default());
    let mut single_scores = vec![Score::default(); PROFILES.len()];
    // Calibration: (confidence, was it a true positive).
    let mut calibration: Vec<(f64, bool)> = Vec::new();
    for _ in 0..400 {
        let scene = scene(&mut rng);
        let (boxes, confidences) = ours(&scene.answers);
        let hits = our_score.add(&boxes, &scene.truth);
        calibration.extend(confidences.into_iter().zip(hits));
        baseline_score.add(&majority_of_boxes(&scene.answers), &scene.truth);
        for (score, answer) in single_scores.iter_mut().zip(&scene.answers) {
            score.add(&single_worker(answer), &scene.truth);
        }
    }
    let best_single = single_scores.iter().map(Score::f1).fold(0.0, f64::max);
    let best_single_iou = single_scores
        .iter()
        .map(Score::mean_iou)
        .fold(0.0, f64::max);
    eprintln!(
        "boxes: ours F1@0.5 {:.3} mean IoU {:.3} | majority-of-boxes F1 {:.3} IoU {:.3} | best single worker F1 {:.3} IoU {:.3}",
        our_score.f1(),
        our_score.mean_iou(),
        baseline_score.f1(),
        baseline_score.mean_iou(),
        best_single,
        best_single_iou
    );
    assert!(our_score.f1() > baseline_score.f1() + 0.01);
    assert!(our_score.mean_iou() > baseline_score.mean_iou());
    assert!(our_score.f1() > best_single);
    assert!(our_score.mean_iou() > best_single_iou);

    // Calibration: in every well-populated confidence bin, the share of correct boxes is close to the bin's
    // mean confidence, and the expected calibration error is small.
    let mut bins = [(0usize, 0.0f64, 0usize); 5];
    for &(confidence, hit) in &calibration {
        let bin = ((confidence * 5.0) as usize).min(4);
        bins[bin].0 += 1;
        bins[bin].1 += confidence;
        bins[bin].2 += usize::from(hit);
    }
    let mut expected_error = 0.0;
    for (count, confidence_sum, hits) in bins {
        if count == 0 {
            continue;
        }
        let (mean_confidence, precision) =
            (confidence_sum / count as f64, hits as f64 / count as f64);
        eprintln!("  confidence {mean_confidence:.2}: precision {precision:.2} over {count} boxes");
        expected_error +=
            count as f64 / calibration.len() as f64 * (mean_confidence - precision).abs();
    }
    eprintln!("  expected calibration error {expected_error:.3}");
    assert!(expected_error < 0.08);
}
