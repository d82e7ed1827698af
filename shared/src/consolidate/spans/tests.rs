//! Entity consolidation against the output contract, degenerate input, and a synthetic crowd with known truth
//! (scored against majority vote of whole spans).

use std::collections::{BTreeSet, HashMap};

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::*;

fn job_labels(names: &[(&str, Option<&str>)]) -> Vec<JobLabel> {
    names
        .iter()
        .map(|(label, short)| ((*label).to_owned(), short.map(str::to_owned)))
        .collect()
}

fn answer(spans: &[(&str, u64, u64)]) -> Value {
    let entities: Vec<Value> = spans
        .iter()
        .map(|(label, start, end)| json!({"endOffset": end, "label": label, "startOffset": start}))
        .collect();
    json!({ "entities": entities })
}

fn run(answers: &[Value], job: &SpanJob<'_>) -> SpanConsolidation {
    let ids: Vec<String> = (0..answers.len()).map(|i| format!("w{i}")).collect();
    let workers: Vec<WorkerAnswer<'_, EntityOutput<'_>>> = answers
        .iter()
        .zip(&ids)
        .map(|(answer, id)| WorkerAnswer::new(id, parse_entity_answer(answer)))
        .collect();
    consolidate_spans(&workers, job, &SpanConfig::default()).unwrap()
}

const RECIPE: &str = "Sift 3 cups of flour into the bowl.";

#[test]
fn parses_the_documented_payload_answer() {
    let content = r#"{"crowd-entity-annotation":{"entities":[{"endOffset":4,"label":"verb","startOffset":0},{"endOffset":6,"label":"number","startOffset":5},{"endOffset":20,"label":"object","startOffset":15},{"endOffset":34,"label":"object","startOffset":30}]}}"#;
    let wrapped: Value = serde_json::from_str(content).unwrap();
    let parsed = parse_entity_answer(&wrapped["crowd-entity-annotation"]).unwrap();
    assert_eq!(parsed.entities.len(), 4);
    assert_eq!(
        parsed.entities[2],
        DrawnSpan {
            index: 2,
            label: "object".into(),
            start: 15,
            end: 20
        }
    );
    assert_eq!(&RECIPE[15..20], "flour");
}

/// The first object of the developer guide's `sample-annotations.json` (one worker), as it is.
#[test]
fn the_documented_sample_annotation_consolidates_as_is() {
    let text = "To train a machine learning model, you need a large, high-quality, labeled dataset. Ground Truth helps you build high-quality training datasets for your machine learning models.";
    let content = r#"{"crowd-entity-annotation":{"entities":[{"endOffset":8,"label":"verb","startOffset":3},{"endOffset":27,"label":"adjective","startOffset":11},{"endOffset":33,"label":"object","startOffset":28},{"endOffset":51,"label":"adjective","startOffset":46},{"endOffset":65,"label":"adjective","startOffset":53},{"endOffset":74,"label":"adjective","startOffset":67},{"endOffset":82,"label":"adjective","startOffset":75},{"endOffset":102,"label":"verb","startOffset":97},{"endOffset":112,"label":"verb","startOffset":107},{"endOffset":125,"label":"adjective","startOffset":113},{"endOffset":134,"label":"adjective","startOffset":126},{"endOffset":143,"label":"object","startOffset":135},{"endOffset":169,"label":"adjective","startOffset":153},{"endOffset":176,"label":"object","startOffset":170}]}}"#;
    let wrapped: Value = serde_json::from_str(content).unwrap();
    let answer = &wrapped["crowd-entity-annotation"];
    let labels = job_labels(&[("verb", None), ("adjective", None), ("object", None)]);
    let job = SpanJob {
        text: Some(text),
        labels: &labels,
    };
    let result = run(std::slice::from_ref(answer), &job);
    assert_eq!(result.entities.len(), 14);
    assert!(result.dropped.is_empty());
    assert_eq!(result.label()["annotations"]["entities"], answer["entities"].as_array().map(|entities| {
        entities
            .iter()
            .map(|e| json!({"label": e["label"], "startOffset": e["startOffset"], "endOffset": e["endOffset"]}))
            .collect::<Vec<Value>>()
    }).map(Value::Array).unwrap());
    let words: Vec<String> = result
        .entities
        .iter()
        .map(|e| {
            text.chars()
                .skip(e.start_offset as usize)
                .take((e.end_offset - e.start_offset) as usize)
                .collect()
        })
        .collect();
    assert_eq!(words[0], "train");
    assert_eq!(words[13], "models");
    assert!(result.entities.iter().all(|e| e.confidence == 0.0));
}

#[test]
fn malformed_answers_are_errors_and_malformed_spans_are_rejected() {
    assert_eq!(
        parse_entity_answer(&json!(null)),
        Err(EntityAnswerError::NotAnObject)
    );
    assert_eq!(
        parse_entity_answer(&json!({"entities": {}})),
        Err(EntityAnswerError::EntitiesNotAList)
    );
    assert!(parse_entity_answer(&json!({})).unwrap().entities.is_empty());
    let answer = json!({"entities": [
        "x",
        {"label": "a", "startOffset": -1, "endOffset": 3},
        {"label": "a", "startOffset": 4, "endOffset": 4},
        {"startOffset": 1, "endOffset": 3},
        {"label": "a", "startOffset": 1.5, "endOffset": 3},
        {"label": "a", "startOffset": 1.0, "endOffset": 3}
    ]});
    let parsed = parse_entity_answer(&answer).unwrap();
    assert_eq!(parsed.entities.len(), 1);
    assert_eq!(parsed.entities[0].start, 1);
    let rejected: Vec<usize> = parsed.rejected.iter().map(|r| r.0).collect();
    assert_eq!(rejected, vec![0, 1, 2, 3, 4]);
    assert_eq!(
        parsed.rejected[2].1,
        SpanProblem::EmptyRange { start: 4, end: 4 }
    );
}

#[test]
fn output_has_ground_truths_exact_shape() {
    let labels = job_labels(&[
        ("verb", Some("V")),
        ("number", None),
        ("object", Some("OBJ")),
    ]);
    let job = SpanJob {
        text: Some(RECIPE),
        labels: &labels,
    };
    let a = answer(&[
        ("verb", 0, 4),
        ("number", 5, 6),
        ("object", 15, 20),
        ("object", 30, 34),
    ]);
    let b = answer(&[("object", 30, 34), ("verb", 0, 4), ("object", 15, 20)]);
    let c = answer(&[("verb", 0, 4), ("object", 14, 20), ("object", 30, 35)]);
    let result = run(&[a, b, c], &job);
    assert_eq!(
        result.label(),
        json!({"annotations": {
            "labels": [{"label": "verb", "shortDisplayName": "V"}, {"label": "number"}, {"label": "object", "shortDisplayName": "OBJ"}],
            "entities": [
                {"label": "verb", "startOffset": 0, "endOffset": 4},
                {"label": "object", "startOffset": 15, "endOffset": 20},
                {"label": "object", "startOffset": 30, "endOffset": 34}
            ]
        }})
    );
    assert_eq!(
        serde_json::to_string(&result.label()["annotations"]["entities"][0]).unwrap(),
        r#"{"label":"verb","startOffset":0,"endOffset":4}"#
    );
    let confidences: Vec<f64> = result.metadata()["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["confidence"].as_f64().unwrap())
        .collect();
    assert_eq!(confidences.len(), 3);
    // The space worker c grabbed before "flour" is trimmed, so all three agree there; "bowl." against
    // "bowl" twice is a 2:1 boundary vote, less certain than unanimity.
    assert!(confidences[1] > confidences[2], "{confidences:?}");
    assert!(confidences.iter().all(|c| (0.0..=1.0).contains(c)));
    assert_eq!(result.agreements.len(), 3);
    assert_eq!(result.agreements[0].agreed, 3.0);
    assert_eq!(result.agreements[0].total, 4.0);
    assert_eq!(result.agreements[2].agreed, 2.0);
}

#[test]
fn a_lone_worker_gets_its_spans_with_confidence_zero() {
    let job = SpanJob::default();
    let a = answer(&[("b", 10, 12), ("a", 0, 4)]);
    let result = run(std::slice::from_ref(&a), &job);
    let entities: Vec<(&str, u64)> = result
        .entities
        .iter()
        .map(|e| (e.label.as_str(), e.start_offset))
        .collect();
    assert_eq!(entities, vec![("a", 0), ("b", 10)]);
    assert!(result.entities.iter().all(|e| e.confidence == 0.0));
    assert_eq!(
        result.label()["annotations"]["labels"],
        json!([{"label": "a"}, {"label": "b"}])
    );
    let workers = [WorkerAnswer::new("w", parse_entity_answer(&a)).with_reliability(Some(0.9))];
    let known = consolidate_spans(&workers, &job, &SpanConfig::default()).unwrap();
    assert!(known.entities.iter().all(|e| e.confidence == 0.9));
}

#[test]
fn boundaries_take_the_mode_then_the_median() {
    let job = SpanJob::default();
    // Clear mode for the start (10), none for the end (20, 21, 22 → median 21).
    let answers = [
        answer(&[("a", 10, 20)]),
        answer(&[("a", 10, 21)]),
        answer(&[("a", 11, 22)]),
    ];
    let result = run(&answers, &job);
    assert_eq!(
        (
            result.entities[0].start_offset,
            result.entities[0].end_offset
        ),
        (10, 21)
    );
}

#[test]
fn label_confusion_is_voted_and_nested_entities_of_other_labels_stay_apart() {
    let labels = job_labels(&[("ORG", None), ("LOC", None)]);
    let text = "He works at Bank of America today.";
    let job = SpanJob {
        text: Some(text),
        labels: &labels,
    };
    // "Bank of America" = 12..27, "America" = 20..27.
    let answers = [
        answer(&[("ORG", 12, 27), ("LOC", 20, 27)]),
        answer(&[("ORG", 12, 27), ("LOC", 20, 27)]),
        answer(&[("LOC", 12, 27), ("LOC", 20, 27)]),
    ];
    let result = run(&answers, &job);
    let entities: Vec<(&str, u64, u64)> = result
        .entities
        .iter()
        .map(|e| (e.label.as_str(), e.start_offset, e.end_offset))
        .collect();
    assert_eq!(entities, vec![("ORG", 12, 27), ("LOC", 20, 27)]);
    // The same words marked with the same range twice by one worker under two labels stay two entities when
    // the crowd agrees.
    let both = answer(&[("ORG", 12, 27), ("LOC", 12, 27)]);
    let result = run(&[both.clone(), both.clone(), both], &job);
    assert_eq!(result.entities.len(), 2);
}

#[test]
fn offsets_are_checked_in_chars_against_the_text() {
    let text = "Zoë näïve 東京 🎉 end"; // 18 chars, 27 bytes
    assert_eq!(text.chars().count(), 18);
    let labels = job_labels(&[("x", None)]);
    let job = SpanJob {
        text: Some(text),
        labels: &labels,
    };
    let a = answer(&[("x", 10, 12), ("x", 15, 18), ("x", 15, 19), ("y", 0, 3)]);
    let result = run(&[a.clone(), a], &job);
    assert_eq!(result.entities.len(), 2);
    let reasons: Vec<&str> = result.dropped.iter().map(|d| d.reason.as_str()).collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("past the text's 18 characters"))
    );
    assert!(reasons.iter().any(|r| r.contains("`y`")));
    // Without the text, offsets cannot be checked, only kept.
    let unchecked = SpanJob {
        text: None,
        labels: &labels,
    };
    let b = answer(&[("x", 15, 19)]);
    assert_eq!(run(&[b.clone(), b], &unchecked).entities.len(), 1);
}

#[test]
fn bad_workers_are_skipped_and_no_usable_answer_is_an_error() {
    let job = SpanJob::default();
    let good = answer(&[("a", 0, 3)]);
    let result = run(&[good.clone(), json!([]), good], &job);
    assert_eq!(result.entities.len(), 1);
    assert_eq!(result.dropped.len(), 1);
    assert_eq!(result.dropped[0].worker_id, "w1");
    let bad = json!(7);
    let workers = [WorkerAnswer::new("w", parse_entity_answer(&bad))];
    assert!(consolidate_spans(&workers, &job, &SpanConfig::default()).is_err());
}

#[test]
fn many_spans_are_capped() {
    let job = SpanJob::default();
    let spans: Vec<(&str, u64, u64)> = (0..800).map(|i| ("a", i * 3, i * 3 + 2)).collect();
    let a = answer(&spans);
    let result = run(&[a.clone(), a], &job);
    assert_eq!(result.entities.len(), 500);
    assert!(
        result
            .dropped
            .iter()
            .any(|d| d.reason.contains("cap of 500"))
    );
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_answers(
        answers in proptest::collection::vec(arbitrary_answer(), 0..5),
        text in proptest::option::of("[a-zé🎉 ]{0,40}"),
    ) {
        let ids: Vec<String> = (0..answers.len()).map(|i| format!("w{i}")).collect();
        let workers: Vec<WorkerAnswer<'_, EntityOutput<'_>>> = answers.iter().zip(&ids).map(|(a, id)| WorkerAnswer::new(id, parse_entity_answer(a))).collect();
        let labels = job_labels(&[("a", Some("A")), ("b", None)]);
        for job_labels in [&labels[..], &[]] {
            let job = SpanJob { text: text.as_deref(), labels: job_labels };
            if let Ok(result) = consolidate_spans(&workers, &job, &SpanConfig::default()) {
                prop_assert_eq!(result.entities.len(), result.metadata()["entities"].as_array().unwrap().len());
                let mut previous = 0;
                for entity in &result.entities {
                    prop_assert!(entity.start_offset < entity.end_offset);
                    prop_assert!(entity.start_offset >= previous);
                    previous = entity.start_offset;
                    if let Some(text) = &text {
                        prop_assert!(entity.end_offset <= text.chars().count() as u64);
                    }
                }
            }
        }
    }
}

fn arbitrary_answer() -> impl Strategy<Value = Value> {
    let offset = prop_oneof![
        (0u64..50).prop_map(Value::from),
        Just(json!(-3)),
        Just(json!(2.5)),
        Just(json!(u64::MAX)),
        Just(Value::Null),
    ];
    let span = (
        prop_oneof![
            Just(json!("a")),
            Just(json!("b")),
            Just(json!("c")),
            Just(json!(1))
        ],
        offset.clone(),
        offset,
    )
        .prop_map(
            |(label, start, end)| json!({"label": label, "startOffset": start, "endOffset": end}),
        );
    proptest::option::of(proptest::collection::vec(span, 0..8))
        .prop_map(|entities| json!({"entities": entities}))
}

// ---------------------------------------------------------------------------------------------------------
// Synthetic crowd with known truth.

const LABELS: [&str; 4] = ["PER", "ORG", "LOC", "MISC"];

/// How one simulated worker annotates.
#[derive(Debug, Clone, Copy)]
struct Profile {
    /// Chance to miss an entity.
    miss: f64,
    /// Chance to move a boundary by a word or a character (punctuation, a space).
    jitter: f64,
    /// Chance to pick another label.
    confuse: f64,
    /// Expected spurious entities per text.
    extra: f64,
}

const PROFILES: [Profile; 5] = [
    Profile {
        miss: 0.05,
        jitter: 0.05,
        confuse: 0.05,
        extra: 0.1,
    },
    Profile {
        miss: 0.10,
        jitter: 0.10,
        confuse: 0.10,
        extra: 0.2,
    },
    Profile {
        miss: 0.15,
        jitter: 0.20,
        confuse: 0.15,
        extra: 0.3,
    },
    Profile {
        miss: 0.20,
        jitter: 0.30,
        confuse: 0.20,
        extra: 0.5,
    },
    Profile {
        miss: 0.30,
        jitter: 0.40,
        confuse: 0.30,
        extra: 0.8,
    },
];

struct Text {
    text: String,
    /// Char ranges of the words.
    words: Vec<(u64, u64)>,
    truth: Vec<(usize, u64, u64)>,
}

fn text(rng: &mut StdRng) -> Text {
    const SYLLABLES: [&str; 10] = ["ka", "lo", "mé", "ri", "tsu", "na", "東", "be", "ø", "x"];
    let word_count = rng.random_range(12..40);
    let mut text = String::new();
    let mut words = Vec::new();
    let mut length = 0u64;
    for i in 0..word_count {
        if i > 0 {
            let separator = if rng.random_bool(0.1) { ", " } else { " " };
            text.push_str(separator);
            length += separator.chars().count() as u64;
        }
        let start = length;
        for _ in 0..rng.random_range(1..4) {
            let syllable = SYLLABLES[rng.random_range(0..SYLLABLES.len())];
            text.push_str(syllable);
            length += syllable.chars().count() as u64;
        }
        words.push((start, length));
    }
    text.push('.');
    // Entities: 1–3 words each, not overlapping, separated by at least one word.
    let mut truth = Vec::new();
    let mut word = rng.random_range(0..3);
    while word < words.len() {
        let span = rng.random_range(1..=3).min(words.len() - word);
        truth.push((
            rng.random_range(0..LABELS.len()),
            words[word].0,
            words[word + span - 1].1,
        ));
        word += span + rng.random_range(1..5);
    }
    Text { text, words, truth }
}

fn annotate(rng: &mut StdRng, text: &Text, profile: &Profile) -> Value {
    let mut spans: Vec<(&str, u64, u64)> = Vec::new();
    let first_word_at_or_after = |offset: u64| text.words.iter().position(|w| w.0 >= offset);
    for &(label, start, end) in &text.truth {
        if rng.random_bool(profile.miss) {
            continue;
        }
        let (mut start, mut end) = (start, end);
        if rng.random_bool(profile.jitter) {
            match rng.random_range(0..4) {
                // One word more at the end, or one character of trailing separator.
                0 => {
                    if let Some(next) = first_word_at_or_after(end) {
                        end = text.words[next].1;
                    }
                }
                1 => end += 1,
                // One character less at the start, or one word less at the end.
                2 => start = start.saturating_sub(1),
                _ => {
                    if let Some(last) = text.words.iter().rposition(|w| w.1 < end && w.0 > start) {
                        end = text.words[last].1;
                    }
                }
            }
        }
        let label = if rng.random_bool(profile.confuse) {
            rng.random_range(0..LABELS.len())
        } else {
            label
        };
        spans.push((LABELS[label], start, end));
    }
    let mut extras = profile.extra;
    while extras > 0.0 && rng.random_bool(extras.min(1.0)) {
        let word = rng.random_range(0..text.words.len());
        spans.push((
            LABELS[rng.random_range(0..LABELS.len())],
            text.words[word].0,
            text.words[word].1,
        ));
        extras -= 1.0;
    }
    let length = text.text.chars().count() as u64;
    spans.retain(|s| s.2 <= length && s.1 < s.2);
    answer(&spans)
}

/// The baseline: keep a (label, start, end) exactly when more than half of the workers marked exactly it.
fn majority_of_whole_spans(answers: &[Value]) -> BTreeSet<(String, u64, u64)> {
    let mut counts: HashMap<(String, u64, u64), usize> = HashMap::new();
    for answer in answers {
        let spans: BTreeSet<(String, u64, u64)> = parse_entity_answer(answer)
            .unwrap()
            .entities
            .iter()
            .map(|s| (s.label.to_string(), s.start, s.end))
            .collect();
        for span in spans {
            *counts.entry(span).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .filter(|(_, count)| 2 * count > answers.len())
        .map(|(span, _)| span)
        .collect()
}

#[derive(Debug, Default)]
struct Score {
    true_positives: usize,
    predicted: usize,
    actual: usize,
}

impl Score {
    fn add(
        &mut self,
        predicted: &BTreeSet<(String, u64, u64)>,
        truth: &BTreeSet<(String, u64, u64)>,
    ) {
        self.true_positives += predicted.intersection(truth).count();
        self.predicted += predicted.len();
        self.actual += truth.len();
    }

    fn f1(&self) -> f64 {
        2.0 * self.true_positives as f64 / (self.predicted + self.actual).max(1) as f64
    }
}

#[test]
fn beats_majority_vote_of_whole_spans_on_a_synthetic_crowd() {
    let labels = job_labels(&[("PER", None), ("ORG", None), ("LOC", None), ("MISC", None)]);
    for crowd in [3usize, 5] {
        let mut rng = StdRng::seed_from_u64(11);
        let (mut ours, mut baseline) = (Score::default(), Score::default());
        let mut calibration: Vec<(f64, bool)> = Vec::new();
        for _ in 0..300 {
            let text = text(&mut rng);
            let answers: Vec<Value> = PROFILES[..crowd]
                .iter()
                .map(|p| annotate(&mut rng, &text, p))
                .collect();
            let truth: BTreeSet<(String, u64, u64)> = text
                .truth
                .iter()
                .map(|&(label, s, e)| (LABELS[label].to_owned(), s, e))
                .collect();
            let job = SpanJob {
                text: Some(&text.text),
                labels: &labels,
            };
            let result = run(&answers, &job);
            let predicted: BTreeSet<(String, u64, u64)> = result
                .entities
                .iter()
                .map(|e| (e.label.clone(), e.start_offset, e.end_offset))
                .collect();
            for entity in &result.entities {
                let key = (entity.label.clone(), entity.start_offset, entity.end_offset);
                calibration.push((entity.confidence, truth.contains(&key)));
            }
            ours.add(&predicted, &truth);
            baseline.add(&majority_of_whole_spans(&answers), &truth);
        }
        let expected_error = calibration_error(&calibration);
        eprintln!(
            "spans, {crowd} workers: ours exact F1 {:.3} | majority of whole spans {:.3} | calibration error {expected_error:.3}",
            ours.f1(),
            baseline.f1()
        );
        assert!(ours.f1() > baseline.f1() + 0.03);
        assert!(expected_error < 0.08);
    }
}

/// Expected calibration error over five confidence bins.
fn calibration_error(calibration: &[(f64, bool)]) -> f64 {
    let mut bins = [(0usize, 0.0f64, 0usize); 5];
    for &(confidence, hit) in calibration {
        let bin = ((confidence * 5.0) as usize).min(4);
        bins[bin].0 += 1;
        bins[bin].1 += confidence;
        bins[bin].2 += usize::from(hit);
    }
    bins.iter()
        .filter(|b| b.0 > 0)
        .map(|&(count, confidence_sum, hits)| {
            eprintln!(
                "  confidence {:.2}: precision {:.2} over {count}",
                confidence_sum / count as f64,
                hits as f64 / count as f64
            );
            count as f64 / calibration.len() as f64
                * (confidence_sum / count as f64 - hits as f64 / count as f64).abs()
        })
        .sum()
}
