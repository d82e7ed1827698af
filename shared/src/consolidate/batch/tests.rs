//! The batch end to end: payloads of every task family through `consolidate_batch`, the rules of
//! preparation (one vote per worker, duplicate ids, the answer limit, an inferred type's odd answers) and
//! Ground Truth's output format.

use super::*;
use crate::contracts::parse_payload;
use chrono::TimeZone;
use serde_json::Map;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/aws");

fn arn() -> crate::metadata::LabelingJobArn {
    "arn:aws:sagemaker:us-east-1:111111111111:labeling-job/Test-Job"
        .parse()
        .unwrap()
}

fn run(payload: &str, labels: Option<&[String]>, task: Option<TaskType>) -> BatchOutcome {
    let arn = arn();
    let job = BatchJob {
        job_name: arn.name(),
        label_attribute_name: "category",
        labels,
        now: Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap(),
        audit: None,
    };
    let objects = resolve_inline(parse_payload(payload.as_bytes()).unwrap());
    let settings = BatchSettings {
        task_type: task,
        ..BatchSettings::default()
    };
    consolidate_batch(&job, &objects, &WorkerPriors::empty(), &settings, &|id| {
        Some(format!("masks/{id}.png"))
    })
}

fn content(outcome: &BatchOutcome, i: usize) -> Map<String, Value> {
    outcome.entries[i].content_map()
}

fn answer(worker: &str, element: &str, output: Value) -> Value {
    json!({"workerId": worker, "annotationData": {"content": json!({element: output}).to_string()}})
}

#[test]
fn recipe_two_worker_classification() {
    // aws-sagemaker-ground-truth-recipe tests/unit/test_annotation_consolidation_lambda.py
    let payload = r#"[
      {"datasetObjectId": "2", "dataObject": {"s3Uri": "s3://samurai-wis-test-2/datasetobjects/cat2.jpg"},
       "annotations": [
         {"workerId": "public.us-east-1.LZMJJLCU6JBGXAC4TLKLEVEJBQ", "annotationData": {"content": "{\"crowd-image-classifier\":{\"label\":\"Cat\"}}"}},
         {"workerId": "public.us-east-1.FWJCMUKABODTR5HHPNYHB22U7Q", "annotationData": {"content": "{\"crowd-image-classifier\":{\"label\":\"Cat\"}}"}}]},
      {"datasetObjectId": "1", "dataObject": {"s3Uri": "s3://samurai-wis-test-2/datasetobjects/cat1.jpg"},
       "annotations": [
         {"workerId": "public.us-east-1.LZMJJLCU6JBGXAC4TLKLEVEJBQ", "annotationData": {"content": "{\"crowd-image-classifier\":{\"label\":\"Cat\"}}"}},
         {"workerId": "public.us-east-1.FWJCMUKABODTR5HHPNYHB22U7Q", "annotationData": {"content": "{\"crowd-image-classifier\":{\"label\":\"Cat\"}}"}}]}
    ]"#;
    let labels = ["Cat".to_owned(), "Dog".to_owned()];
    let out = run(payload, Some(&labels), None);
    assert_eq!(out.task_type, TaskType::ImageClassification);
    assert_eq!(out.entries.len(), 2);
    assert_eq!(out.entries[0].dataset_object_id, "2");
    assert_eq!(out.entries[1].dataset_object_id, "1");
    let c = content(&out, 0);
    assert_eq!(c["category"], json!(0));
    let meta = c["category-metadata"].as_object().unwrap();
    assert_eq!(
        meta.keys().collect::<Vec<_>>(),
        [
            "class-name",
            "confidence",
            "type",
            "job-name",
            "human-annotated",
            "creation-date"
        ]
    );
    assert_eq!(meta["class-name"], "Cat");
    assert_eq!(meta["type"], "groundtruth/image-classification");
    assert_eq!(meta["job-name"], "labeling-job/test-job");
    assert_eq!(meta["human-annotated"], "yes");
    assert_eq!(meta["creation-date"], "2024-01-02T03:04:05.000000");
    let confidence = meta["confidence"].as_f64().unwrap();
    assert!(confidence > 0.5 && confidence <= 1.0, "{confidence}");
    assert_eq!(out.summary.labeled, 2);
}

#[test]
fn a_lone_worker_gets_zero_confidence() {
    let payload = json!([{"datasetObjectId": "0", "dataObject": {"content": "hi"},
        "annotations": [answer("w1", "crowd-classifier", json!({"label": "pos"}))]}]);
    let labels = ["neg".to_owned(), "pos".to_owned()];
    let out = run(&payload.to_string(), Some(&labels), None);
    let meta = &content(&out, 0)["category-metadata"];
    assert_eq!(content(&out, 0)["category"], json!(1));
    assert_eq!(meta["confidence"], json!(0.0));
    assert_eq!(meta["type"], "groundtruth/text-classification");
}

#[test]
fn nothing_is_lost() {
    let payload = json!([
        {"datasetObjectId": "a", "annotations": [
            answer("w1", "crowd-classifier", json!({"label": "pos"})),
            answer("w2", "crowd-classifier", json!({"label": "maybe"})),
            {"workerId": "w3", "annotationData": {"content": "{broken"}},
        ]},
        {"datasetObjectId": "b", "annotations": [
            {"workerId": "w1", "annotationData": {"s3Uri": "s3://bucket/answer.json"}},
            answer("w2", "crowd-classifier", json!({"nolabel": 1})),
        ]},
        {"datasetObjectId": "c", "annotations": "not a list"},
        {"annotations": []},
        {"datasetObjectId": "d", "annotations": []},
    ]);
    let labels = ["neg".to_owned(), "pos".to_owned()];
    let out = run(
        &payload.to_string(),
        Some(&labels),
        Some(TaskType::TextClassification),
    );
    let ids: Vec<_> = out
        .entries
        .iter()
        .map(|e| e.dataset_object_id.as_str())
        .collect();
    assert_eq!(ids, ["a", "b", "c", "d"]);
    assert_eq!(out.summary.unidentifiable, 1);
    assert_eq!((out.summary.labeled, out.summary.failed), (1, 3));

    let a = content(&out, 0);
    assert_eq!(a["category"], json!(1));
    let skipped = a["category-metadata"]["skipped-answers"]
        .as_array()
        .unwrap();
    assert_eq!(skipped.len(), 2);
    assert!(
        skipped
            .iter()
            .any(|s| s["reason"].as_str().unwrap().contains("`maybe`"))
    );

    for i in 1..4 {
        let c = content(&out, i);
        assert!(!c.contains_key("category"), "no label is invented: {c:?}");
        assert!(c["category-metadata"]["failure-reason"].is_string());
    }
    assert_eq!(out.summary.skipped_answers, 4);
}

fn skip_reasons(c: &Map<String, Value>) -> Vec<(String, String)> {
    c["category-metadata"]["skipped-answers"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    (
                        s["worker-id"].as_str().unwrap_or("").to_owned(),
                        s["reason"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_worker_answering_three_times_is_one_vote() {
    let cls = |w: &str, l: &str| answer(w, "crowd-image-classifier", json!({ "label": l }));
    let labels = ["Cat".to_owned(), "Dog".to_owned()];
    // Every task type goes through the same de-duplication: classification, and a custom task.
    for task in [None, Some(TaskType::ImageClassification)] {
        let payload = json!([{"datasetObjectId": "0", "annotations": [
            cls("mallory", "Cat"), cls("w1", "Dog"), cls("mallory", "Cat"),
            cls("w2", "Dog"), cls("mallory", "Dog")]}]);
        let out = run(&payload.to_string(), Some(&labels), task);
        let c = content(&out, 0);
        // mallory's last answer (Dog) is her one vote: three votes for Dog, none for Cat.
        assert_eq!(c["category"], json!(1), "{c:?}");
        let skipped = skip_reasons(&c);
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert!(
            skipped
                .iter()
                .all(|(w, r)| w == "mallory" && r.contains("answered again")),
            "{skipped:?}"
        );
        assert_eq!(out.summary.skipped_answers, 2);
    }
    let custom = |w: &str, v: &str| answer(w, "my-form", json!({ "v": v }));
    let payload = json!([{"datasetObjectId": "0", "annotations": [
        custom("mallory", "x"), custom("mallory", "x"), custom("mallory", "x"),
        custom("w1", "y"), custom("w2", "y")]}]);
    let out = run(&payload.to_string(), None, Some(TaskType::Custom));
    let c = content(&out, 0);
    assert_eq!(c["category"], json!({"my-form": {"v": "y"}}), "{c:?}");
    assert_eq!(skip_reasons(&c).len(), 2);
}

#[test]
fn answers_past_the_limit_are_left_out_as_one_record() {
    let cls = |w: &str, l: &str| answer(w, "crowd-image-classifier", json!({ "label": l }));
    let labels = ["Cat".to_owned(), "Dog".to_owned()];
    // Two Cats first, then eight Dogs past a limit of three answers.
    let mut answers = vec![cls("a", "Cat"), cls("b", "Cat"), cls("c", "Dog")];
    answers.extend((0..8).map(|i| cls(&format!("x{i}"), "Dog")));
    let payload = json!([{"datasetObjectId": "0", "annotations": answers}]);
    let objects = resolve_inline(parse_payload(payload.to_string().as_bytes()).unwrap());
    let job = BatchJob {
        job_name: "pets",
        label_attribute_name: "category",
        labels: Some(&labels),
        now: Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap(),
        audit: None,
    };
    let mut settings = BatchSettings::default();
    settings.limits.max_answers_per_object = 3;
    let out = consolidate_batch(&job, &objects, &WorkerPriors::empty(), &settings, &|_| None);
    let c = content(&out, 0);
    assert_eq!(
        c["category"],
        json!(0),
        "the first three answers decide: {c:?}"
    );
    let skipped = skip_reasons(&c);
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0].0, "8 workers");
    assert!(
        skipped[0]
            .1
            .contains("8 answers past this object's first 3")
    );
    // Without the limit the eight Dogs win.
    let out = run(&payload.to_string(), Some(&labels), None);
    assert_eq!(content(&out, 0)["category"], json!(1));
}

#[test]
fn one_odd_answer_does_not_turn_a_batch_custom() {
    let cls = |w: &str, l: &str| answer(w, "crowd-image-classifier", json!({ "label": l }));
    let mut objects: Vec<Value> = (0..50)
        .map(|i| json!({"datasetObjectId": i.to_string(), "annotations": [cls("w1", "Cat"), cls("w2", "Cat")]}))
        .collect();
    objects[7]["annotations"]
        .as_array_mut()
        .unwrap()
        .push(answer("w3", "my-form", json!({"anything": true})));
    let labels = ["Cat".to_owned(), "Dog".to_owned()];
    let out = run(&Value::Array(objects).to_string(), Some(&labels), None);
    assert_eq!(out.task_type, TaskType::ImageClassification);
    assert_eq!(out.summary.labeled, 50);
    for i in 0..50 {
        assert_eq!(content(&out, i)["category"], json!(0), "{i}");
    }
    let skipped = skip_reasons(&content(&out, 7));
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0].0, "w3");
    assert!(
        skipped[0].1.contains("mostly ImageMultiClass"),
        "{skipped:?}"
    );
    assert_eq!(out.summary.skipped_answers, 1);
}

#[test]
fn duplicate_dataset_object_ids_are_one_object_and_one_entry() {
    let cls = |w: &str, l: &str| answer(w, "crowd-image-classifier", json!({ "label": l }));
    let payload = json!([
        {"datasetObjectId": "7", "dataObject": {"s3Uri": "s3://b/7.jpg"}, "annotations": [cls("w1", "Dog"), cls("w2", "Dog")]},
        {"datasetObjectId": "8", "annotations": [cls("w1", "Cat"), cls("w2", "Cat")]},
        {"datasetObjectId": "7", "dataObject": {"s3Uri": "s3://b/other.jpg"}, "annotations": [cls("w3", "Dog"), cls("w2", "Cat")]},
        {"datasetObjectId": "8", "annotations": "not a list"},
    ]);
    let labels = ["Cat".to_owned(), "Dog".to_owned()];
    let out = run(&payload.to_string(), Some(&labels), None);
    let ids: Vec<_> = out
        .entries
        .iter()
        .map(|e| e.dataset_object_id.as_str())
        .collect();
    assert_eq!(
        ids,
        ["7", "8"],
        "one entry per distinct id, first-seen order"
    );
    assert_eq!(out.summary.entries, 2);
    let seven = content(&out, 0);
    assert_eq!(
        seven["category"],
        json!(1),
        "answers merged: w1, w3 Dog; w2 last said Cat"
    );
    assert_eq!(
        seven["category-metadata"]["duplicate-dataset-object-id"],
        json!(2),
        "{seven:?}"
    );
    let eight = content(&out, 1);
    assert_eq!(eight["category"], json!(0));
    assert_eq!(
        eight["category-metadata"]["duplicate-dataset-object-id"],
        json!(2)
    );
    assert_eq!(out.summary.duplicate_objects, 2);
}

#[test]
fn multi_label_writes_class_and_confidence_maps() {
    let payload = json!([{"datasetObjectId": "0", "annotations": [
        answer("w1", "crowd-image-classifier-multi-select", json!({"labels": ["person", "bicycle"]})),
        answer("w2", "crowd-image-classifier-multi-select", json!({"labels": ["person"]})),
        answer("w3", "crowd-image-classifier-multi-select", json!({"labels": ["person", "bicycle"]})),
    ]}]);
    let labels = [
        "person".to_owned(),
        "bicycle".to_owned(),
        "clothing".to_owned(),
    ];
    let out = run(&payload.to_string(), Some(&labels), None);
    assert_eq!(out.task_type, TaskType::ImageMultiLabelClassification);
    let c = content(&out, 0);
    let chosen = c["category"].as_array().unwrap();
    assert!(chosen.contains(&json!(0)));
    let meta = &c["category-metadata"];
    assert_eq!(meta["class-map"]["0"], "person");
    assert!(meta["confidence-map"]["0"].as_f64().unwrap() > 0.5);
    assert_eq!(meta["type"], "groundtruth/image-classification-multilabel");
}

#[test]
fn verification_labels_are_strings_with_feedback() {
    let payload = json!([{"datasetObjectId": "0", "annotations": [
        answer("w1", "crowd-classifier", json!({"label": "bad", "workerComment": "box too loose"})),
        answer("w2", "crowd-classifier", json!({"label": "bad"})),
    ]}]);
    let labels = ["good".to_owned(), "bad".to_owned()];
    let out = run(
        &payload.to_string(),
        Some(&labels),
        Some(TaskType::VerificationBoundingBox),
    );
    let c = content(&out, 0);
    assert_eq!(c["category"], json!("1"));
    assert_eq!(
        c["category-metadata"]["type"],
        "groundtruth/label-verification"
    );
    assert_eq!(
        c["category-metadata"]["worker-feedback"],
        json!([{"comment": "box too loose"}])
    );
}

#[test]
fn aws_ner_custom_template_goes_through_the_custom_path() {
    let payload = std::fs::read_to_string(format!(
        "{FIXTURES}/aws_examples_ner_custom_template/consolidation_payload.json"
    ))
    .unwrap();
    let out = run(&payload, None, None);
    assert_eq!(out.task_type, TaskType::Custom);
    assert_eq!(out.entries.len(), 2);
    let c = content(&out, 0);
    assert_eq!(
        c["category"]["entities"]["0"],
        json!({"startindex": "10", "tokentext": "tyrosine"})
    );
    assert_eq!(c["category-metadata"]["type"], "groundtruth/custom");
    assert_eq!(
        c["category-metadata"]["confidence"],
        json!(0.0),
        "one worker"
    );
    let c = content(&out, 1);
    assert_eq!(c["category"]["entities"]["1"]["tokentext"], "receptor");
}

#[test]
fn all_answers_mode_returns_every_worker() {
    let payload = std::fs::read_to_string(format!(
        "{FIXTURES}/aws_sagemaker_ground_truth_recipe/sample_annotation_consolidation_payload.json"
    ))
    .unwrap();
    let arn = arn();
    let job = BatchJob {
        job_name: arn.name(),
        label_attribute_name: "gt-label",
        labels: None,
        now: Utc::now(),
        audit: None,
    };
    let settings = BatchSettings {
        task_type: Some(TaskType::Custom),
        custom_mode: CustomMode::AllAnswers,
        ..BatchSettings::default()
    };
    let objects = resolve_inline(parse_payload(payload.as_bytes()).unwrap());
    let out = consolidate_batch(&job, &objects, &WorkerPriors::empty(), &settings, &|id| {
        Some(id.to_owned())
    });
    let all = &out.entries[0].content_map()["gt-label"]["annotationsFromAllWorkers"];
    // The recipe's expected response carries the same worker and content.
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{FIXTURES}/aws_sagemaker_ground_truth_recipe/sample_annotation_consolidation_payload.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        all[0]["workerId"],
        expected[0]["annotations"][0]["workerId"]
    );
    assert_eq!(
        all[0]["annotationData"]["content"],
        expected[0]["annotations"][0]["annotationData"]["content"]
    );
}

#[test]
fn the_same_batch_twice_gives_the_same_response() {
    let payload = json!([
        {"datasetObjectId": "0", "annotations": [
            answer("w1", "crowd-classifier", json!({"label": "pos"})),
            answer("w2", "crowd-classifier", json!({"label": "neg"})),
            answer("w3", "crowd-classifier", json!({"label": "pos"}))]},
        {"datasetObjectId": "1", "annotations": [
            answer("w2", "crowd-classifier", json!({"label": "neg"})),
            answer("w3", "crowd-classifier", json!({"label": "neg"}))]},
    ])
    .to_string();
    let labels = ["neg".to_owned(), "pos".to_owned()];
    let a = run(&payload, Some(&labels), None);
    let b = run(&payload, Some(&labels), None);
    assert_eq!(a.entries, b.entries);
}

#[test]
fn recipe_bounding_boxes_in_object_detection_format() {
    let payload = std::fs::read_to_string(format!(
        "{FIXTURES}/aws_sagemaker_ground_truth_recipe/sample_annotation_consolidation_payload.json"
    ))
    .unwrap();
    let out = run(&payload, None, None);
    assert_eq!(out.task_type, TaskType::BoundingBox);
    let c = content(&out, 0);
    let label = &c["category"];
    assert_eq!(
        label["image_size"],
        json!([{"width": 640, "height": 432, "depth": 3}])
    );
    let boxes = label["annotations"].as_array().unwrap();
    assert_eq!(boxes.len(), 2);
    let meta = &c["category-metadata"];
    assert_eq!(meta["class-map"], json!({"0": "Green", "1": "Red"}));
    assert_eq!(
        meta["objects"],
        json!([{"confidence": 0.0}, {"confidence": 0.0}]),
        "one worker"
    );
    assert_eq!(meta["type"], "groundtruth/object-detection");
    for b in boxes {
        for key in ["class_id", "left", "top", "width", "height"] {
            assert!(b[key].is_i64(), "{key} is an integer: {b}");
        }
    }
}

#[test]
fn docs_named_entities_in_text_span_format() {
    // The developer guide's NER payload (contracts.md section 2.2).
    let payload = r#"[{"datasetObjectId": "1", "dataObject": {"content": "Sift 3 cups of flour into the bowl."},
      "annotations": [{"workerId": "private.us-west-2.ef7294f850a3d9d1", "annotationData": {"content":
      "{\"crowd-entity-annotation\":{\"entities\":[{\"endOffset\":4,\"label\":\"verb\",\"startOffset\":0},{\"endOffset\":6,\"label\":\"number\",\"startOffset\":5},{\"endOffset\":20,\"label\":\"object\",\"startOffset\":15},{\"endOffset\":34,\"label\":\"object\",\"startOffset\":30}]}}"}}]}]"#;
    let labels = ["verb".to_owned(), "number".to_owned(), "object".to_owned()];
    let out = run(payload, Some(&labels), None);
    assert_eq!(out.task_type, TaskType::NamedEntityRecognition);
    let c = content(&out, 0);
    let entities = c["category"]["annotations"]["entities"].as_array().unwrap();
    assert_eq!(entities.len(), 4);
    assert_eq!(
        entities[0],
        json!({"label": "verb", "startOffset": 0, "endOffset": 4})
    );
    assert_eq!(c["category-metadata"]["type"], "groundtruth/text-span");
    assert_eq!(
        c["category-metadata"]["entities"].as_array().unwrap().len(),
        4
    );
}

/// An 8×8 RGB PNG, white except a `#2ca02c` square from (2,2) to (5+extra,5).
fn bird_png(extra: u32) -> String {
    use base64::Engine;
    let (w, h) = (8u32, 8u32);
    let mut pixels = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let inside = (2..=5 + extra).contains(&x) && (2..=5).contains(&y);
            pixels.extend_from_slice(if inside {
                &[0x2c, 0xa0, 0x2c]
            } else {
                &[0xff, 0xff, 0xff]
            });
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&pixels).unwrap();
    }
    base64::engine::general_purpose::STANDARD.encode(out)
}

#[test]
fn segmentation_masks_are_written_and_referenced() {
    let seg = |png: String| {
        json!({"inputImageProperties": {"height": 8, "width": 8},
               "labelMappings": {"Bird": {"color": "#2ca02c"}},
               "labeledImage": {"pngImageData": png}})
    };
    let payload = json!([{"datasetObjectId": "7", "dataObject": {"s3Uri": "s3://b/bird.jpg"}, "annotations": [
        answer("w1", "crowd-semantic-segmentation", seg(bird_png(0))),
        answer("w2", "crowd-semantic-segmentation", seg(bird_png(0))),
        answer("w3", "crowd-semantic-segmentation", seg(bird_png(1))),
    ]}]);
    let labels = ["Bird".to_owned()];
    let out = run(&payload.to_string(), Some(&labels), None);
    assert_eq!(out.task_type, TaskType::SemanticSegmentation);
    assert_eq!(out.mask_writes.len(), 1);
    assert_eq!(out.mask_writes[0].location, "masks/7.png");
    assert_eq!(&out.mask_writes[0].png[1..4], b"PNG");
    let c = content(&out, 0);
    assert_eq!(c["category"], "masks/7.png");
    let meta = &c["category-metadata"];
    assert_eq!(meta["type"], "groundtruth/semantic-segmentation");
    assert_eq!(meta["internal-color-map"]["0"]["class-name"], "BACKGROUND");
    assert_eq!(meta["internal-color-map"]["1"]["class-name"], "Bird");
    assert_eq!(meta["internal-color-map"]["1"]["hex-color"], "#2ca02c");
    let confidence = meta["internal-color-map"]["1"]["confidence"]
        .as_f64()
        .unwrap();
    assert!(confidence > 0.5, "{confidence}");
}

#[test]
fn a_small_batch_does_not_decide_a_split_with_false_certainty() {
    // Ground Truth's first batches hold about ten objects. Object 9 of the demo batch got three
    // different answers from three workers: whatever the engine picks, it must not claim certainty.
    let payload = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/demo/consolidation-payload.json"
    ))
    .unwrap();
    let labels = ["cat".to_owned(), "dog".to_owned(), "bird".to_owned()];
    let out = run(&payload, Some(&labels), None);
    let confidence = |i: usize| {
        content(&out, i)["category-metadata"]["confidence"]
            .as_f64()
            .unwrap()
    };
    assert!(confidence(9) < 0.95, "three-way split: {}", confidence(9));
    assert!(
        confidence(1) > confidence(9),
        "a unanimous object is surer than a split one"
    );
}
