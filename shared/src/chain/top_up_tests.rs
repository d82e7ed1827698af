//! The top-up round rules on the `Animals` fixture job (3 workers, LAN `animal`, output under
//! `s3://out-bucket/jobs/`), completed as round 1 of a three-round plan.

use super::*;
use crate::chain::naming::is_valid_job_name;
use crate::chain::tags::{TAG_DEPTH, TAG_ROOT_JOB};
use crate::chain::testing::{OUTPUT_URI, fetched, job_in};
use crate::labeling_job::LabelingJobStatus;
use crate::manifest::ManifestLine;

const PLAN: &str =
    r#"{"Mode":"top-up","TargetConfidence":0.9,"WorkersPerRound":[3,2,2],"MaxAnswersPerObject":7}"#;
const PAYLOAD_URI: &str = "s3://out-bucket/jobs/Animals/annotations/consolidated-annotation/consolidation-request/iteration-1/2024-05-01_10:05:00.json";

/// Round 1's output: 1 sure, 2 unsure, 3 unsure, 4 failed (no label).
const ROUND_1: &str = concat!(
    r#"{"source-ref":"s3://in/1.jpg","animal":0,"animal-metadata":{"class-name":"cat","confidence":0.97,"type":"groundtruth/image-classification","job-name":"labeling-job/animals","human-annotated":"yes","creation-date":"2024-05-01T10:05:00.000000"}}"#,
    "\n",
    r#"{"source-ref":"s3://in/2.jpg","animal":1,"animal-metadata":{"class-name":"dog","confidence":0.6,"type":"groundtruth/image-classification","job-name":"labeling-job/animals","human-annotated":"yes","creation-date":"2024-05-01T10:05:00.000000"}}"#,
    "\n",
    r#"{"source-ref":"s3://in/3.jpg","animal":1,"animal-metadata":{"class-name":"dog","confidence":0.7,"type":"groundtruth/image-classification","job-name":"labeling-job/animals","human-annotated":"yes","creation-date":"2024-05-01T10:05:00.000000"}}"#,
    "\n",
    r#"{"source-ref":"s3://in/4.jpg","animal-metadata":{"failure-reason":"no worker answered"}}"#,
    "\n",
);

fn answer(worker: &str, label: &str) -> String {
    format!(
        r#"{{"workerId":"{worker}","annotationData":{{"content":"{{\"crowd-image-classifier\":{{\"label\":\"{label}\"}}}}"}}}}"#
    )
}

fn payload(objects: &[(&str, &[(&str, &str)])]) -> String {
    let items: Vec<String> = objects
        .iter()
        .enumerate()
        .map(|(i, (image, answers))| {
            let answers: Vec<String> = answers.iter().map(|(w, l)| answer(w, l)).collect();
            format!(
                r#"{{"datasetObjectId":"{i}","dataObject":{{"s3Uri":"s3://in/{image}"}},"annotations":[{}]}}"#,
                answers.join(",")
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn round_1_payload() -> String {
    payload(&[
        ("1.jpg", &[("w1", "cat"), ("w2", "cat"), ("w3", "cat")]),
        ("2.jpg", &[("w1", "dog"), ("w2", "cat"), ("w3", "dog")]),
        ("3.jpg", &[("w1", "dog"), ("w2", "dog"), ("w4", "cat")]),
    ])
}

fn round_1_job() -> LabelingJobDescription {
    let mut job = job_in(LabelingJobStatus::Completed);
    job.tags.clear();
    job
}

struct Round {
    job: LabelingJobDescription,
    manifest: String,
    payloads: Vec<String>,
    prior: Option<String>,
    merged: Option<String>,
    quality: Option<String>,
}

impl Round {
    fn first() -> Self {
        Round {
            job: round_1_job(),
            manifest: ROUND_1.to_owned(),
            payloads: vec![round_1_payload()],
            prior: None,
            merged: None,
            quality: Some(r#"{"version":1}"#.to_owned()),
        }
    }

    fn decide_with(&self, plan: &str) -> Result<TopUpDecision, ChainError> {
        let settings = ChainSettings::default();
        let manifest = fetched(OUTPUT_URI, &self.manifest);
        let payloads: Vec<FetchedObject> = self
            .payloads
            .iter()
            .map(|p| fetched(PAYLOAD_URI, p))
            .collect();
        let needs = needs(&self.job).unwrap();
        let prior = self
            .prior
            .as_deref()
            .map(|p| fetched(&needs.prior.clone().unwrap().to_string(), p));
        let merged = self
            .merged
            .as_deref()
            .map(|m| fetched(&needs.merged.clone().unwrap().to_string(), m));
        let quality = self
            .quality
            .as_deref()
            .map(|q| fetched(&needs.worker_quality.to_string(), q));
        plan_round(&TopUpInput {
            job: &self.job,
            settings: &settings,
            plan: plan.as_bytes(),
            manifest: &manifest,
            prior: prior.as_ref(),
            merged: merged.as_ref(),
            payloads: &payloads,
            worker_quality: quality.as_ref(),
        })
    }

    fn next(&self) -> (ChainAction, TopUpSummary) {
        match self.decide_with(PLAN) {
            Ok(TopUpDecision::NextRound { action, summary }) => (*action, summary),
            other => panic!("expected a next round, got {other:?}"),
        }
    }

    fn finished(&self) -> (ObjectWrite, TopUpSummary) {
        match self.decide_with(PLAN) {
            Ok(TopUpDecision::Finished { write, summary }) => (write, summary),
            other => panic!("expected the end of the rounds, got {other:?}"),
        }
    }
}

fn written<'a>(action: &'a ChainAction, ends_with: &str) -> &'a ObjectWrite {
    action
        .manifest_writes
        .iter()
        .find(|w| w.uri.key().ends_with(ends_with))
        .unwrap_or_else(|| {
            panic!(
                "no write ending in {ends_with}: {:?}",
                action.manifest_writes
            )
        })
}

fn lines(bytes: &[u8]) -> Vec<ManifestLine> {
    std::str::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| ManifestLine::parse(l).unwrap())
        .collect()
}

/// The job Ground Truth would describe for the action's request, Completed, with `manifest` as output.
fn completed(action: &ChainAction) -> LabelingJobDescription {
    let mut job = round_1_job();
    let r = &action.request;
    job.labeling_job_name = r.labeling_job_name.clone();
    job.labeling_job_arn = format!(
        "arn:aws:sagemaker:us-east-1:111122223333:labeling-job/{}",
        r.labeling_job_name.to_lowercase()
    );
    job.label_attribute_name = Some(r.label_attribute_name.clone());
    job.input_config = r.input_config.clone();
    job.human_task_config = r.human_task_config.clone();
    job.tags = r.tags.clone();
    job
}

#[test]
fn only_unsure_objects_within_budget_go_to_round_two_with_their_answers() {
    let (action, summary) = Round::first().next();
    let request = &action.request;
    assert_eq!(request.label_attribute_name, "animal-top-up-2");
    assert_eq!(
        request
            .human_task_config
            .number_of_human_workers_per_data_object,
        2
    );
    assert!(request.labeling_job_algorithms_config.is_none());
    assert!(is_valid_job_name(&request.labeling_job_name));
    assert!(request.labeling_job_name.starts_with("Animals-f1-"));
    let input = lines(&written(&action, "input.manifest").body);
    let sources: Vec<&str> = input.iter().map(|l| l.source().value()).collect();
    // 1 is sure; 2, 3 (unsure) and 4 (no label) need more answers: 3 + 2 ≤ 7.
    assert_eq!(sources, ["s3://in/2.jpg", "s3://in/3.jpg", "s3://in/4.jpg"]);
    assert_eq!(summary.objects, 4);
    assert_eq!(summary.answers, 9);
    assert_eq!(summary.below_target, 3);

    // The prior answers of round 2 live where its consolidation looks: its outputConfig.
    let out = format!("jobs/{}/annotations/", request.labeling_job_name);
    let prior = written(&action, "groundwork/top-up/prior-answers.jsonl");
    assert!(prior.uri.key().starts_with(&out), "{}", prior.uri);
    let prior = PriorAnswers::parse(&prior.uri, &prior.body).unwrap();
    assert_eq!(prior.len(), 2, "only round 2's objects that had answers");
    assert_eq!(prior.count("s3:s3://in/2.jpg"), 3);
    assert_eq!(prior.count("s3:s3://in/1.jpg"), 0);
    let quality = written(&action, "groundwork/worker-quality/animal-top-up-2.json");
    assert_eq!(quality.body, br#"{"version":1}"#);

    let merged = lines(&written(&action, "groundwork/top-up/merged.manifest").body);
    assert_eq!(merged.len(), 4);
    let meta = merged[0].get("animal-metadata").unwrap();
    assert_eq!(meta["answers"], 3);
    assert_eq!(meta["rounds"], 1);

    let tag = |k: &str| {
        request
            .tags
            .iter()
            .find(|t| t.key == k)
            .map(|t| t.value.clone())
    };
    assert_eq!(tag(TAG_TOP_UP_ROUND).as_deref(), Some("2"));
    assert_eq!(tag(TAG_TOP_UP_LAN).as_deref(), Some("animal"));
    assert_eq!(tag(TAG_ROOT_JOB).as_deref(), Some("Animals"));
    assert_eq!(tag(TAG_DEPTH).as_deref(), Some("1"));
    let plan_copy = tag(TAG_FOLLOW_UP).unwrap();
    assert_eq!(plan_copy, written(&action, PLAN_FILE).uri.to_string());
    assert_eq!(written(&action, PLAN_FILE).body, PLAN.as_bytes());
}

#[test]
fn the_same_round_gives_the_same_job_and_bytes() {
    let (a, _) = Round::first().next();
    let (b, _) = Round::first().next();
    assert_eq!(a, b);
}

#[test]
fn the_rounds_merge_into_one_manifest_under_the_root_name() {
    let (action, _) = Round::first().next();
    let mut round = Round {
        job: completed(&action),
        // Round 2 relabels 2 (sure now) and 3 (still unsure); 4 fails again.
        manifest: concat!(
            r#"{"source-ref":"s3://in/2.jpg","animal":1,"animal-top-up-2":0,"animal-top-up-2-metadata":{"class-name":"cat","confidence":0.93,"job-name":"labeling-job/r2"}}"#,
            "\n",
            r#"{"source-ref":"s3://in/3.jpg","animal":1,"animal-top-up-2":1,"animal-top-up-2-metadata":{"class-name":"dog","confidence":0.8,"job-name":"labeling-job/r2"}}"#,
            "\n",
            r#"{"source-ref":"s3://in/4.jpg","animal-top-up-2-metadata":{"failure-reason":"no worker answered"}}"#,
            "\n",
        )
        .to_owned(),
        payloads: vec![payload(&[
            ("2.jpg", &[("w5", "cat"), ("w2", "cat")]),
            ("3.jpg", &[("w5", "dog"), ("w6", "dog")]),
        ])],
        prior: Some(
            String::from_utf8(written(&action, "prior-answers.jsonl").body.clone()).unwrap(),
        ),
        merged: Some(
            String::from_utf8(written(&action, "merged.manifest").body.clone()).unwrap(),
        ),
        quality: None,
    };
    let (round_3, summary) = round.next();
    assert_eq!(round_3.request.label_attribute_name, "animal-top-up-3");
    let input = lines(&written(&round_3, "input.manifest").body);
    let sources: Vec<&str> = input.iter().map(|l| l.source().value()).collect();
    // 3 has 5 answers (5 + 2 ≤ 7), 4 has none.
    assert_eq!(sources, ["s3://in/3.jpg", "s3://in/4.jpg"]);
    // w2 answered 2.jpg in both rounds: counted once.
    assert_eq!(summary.answers, 3 + 4 + 5);
    assert!(
        round_3
            .manifest_writes
            .iter()
            .all(|w| !w.uri.key().contains("worker-quality")),
        "no worker-quality document to carry"
    );

    // Round 3 is the last: whatever it says, the merged manifest is written.
    round.job = completed(&round_3);
    round.manifest = concat!(
        r#"{"source-ref":"s3://in/3.jpg","animal":1,"animal-top-up-3":1,"animal-top-up-3-metadata":{"class-name":"dog","confidence":0.85}}"#,
        "\n",
        r#"{"source-ref":"s3://in/4.jpg","animal-top-up-3":0,"animal-top-up-3-metadata":{"class-name":"cat","confidence":0.6}}"#,
        "\n",
    )
    .to_owned();
    round.payloads = vec![payload(&[
        ("3.jpg", &[("w7", "dog"), ("w8", "dog")]),
        ("4.jpg", &[("w7", "cat"), ("w8", "cat")]),
    ])];
    round.prior =
        Some(String::from_utf8(written(&round_3, "prior-answers.jsonl").body.clone()).unwrap());
    round.merged =
        Some(String::from_utf8(written(&round_3, "merged.manifest").body.clone()).unwrap());
    let (output, summary) = round.finished();
    assert_eq!(
        output.uri.to_string(),
        "s3://out-bucket/jobs/Animals/manifests/output/top-up.manifest"
    );
    let merged = lines(&output.body);
    assert_eq!(merged.len(), 4, "every object of the root once");
    let label = |i: usize| {
        (
            merged[i].get("animal").cloned(),
            merged[i].get("animal-metadata").cloned().unwrap(),
        )
    };
    assert_eq!(label(0).1["confidence"], 0.97);
    assert_eq!(label(0).1["rounds"], 1);
    assert_eq!(label(1).0, Some(serde_json::json!(0)));
    assert_eq!(label(1).1["class-name"], "cat");
    assert_eq!(
        (label(1).1["answers"].clone(), label(1).1["rounds"].clone()),
        (4.into(), 2.into())
    );
    assert_eq!(label(2).1["answers"], 7);
    assert_eq!(label(2).1["rounds"], 3);
    assert_eq!(label(3).1["class-name"], "cat");
    assert!(merged.iter().all(|l| l.get("animal-top-up-2").is_none()));
    assert_eq!(summary.answers, 3 + 4 + 7 + 2);
    assert_eq!(summary.below_target, 2);
}

#[test]
fn nothing_unsure_ends_the_rounds_at_once() {
    let round = Round {
        manifest: ROUND_1.lines().next().unwrap().to_owned(),
        ..Round::first()
    };
    let (output, summary) = round.finished();
    assert_eq!(summary.round, 1);
    assert_eq!(lines(&output.body).len(), 1);
}

#[test]
fn plans_are_checked_with_the_field_named() {
    let bad = [
        (
            r#"{"Mode":"top-up","TargetConfidence":0,"WorkersPerRound":[3,1]}"#,
            "TargetConfidence",
        ),
        (
            r#"{"Mode":"top-up","TargetConfidence":0.9,"WorkersPerRound":[3]}"#,
            "WorkersPerRound",
        ),
        (
            r#"{"Mode":"top-up","TargetConfidence":0.9,"WorkersPerRound":[3,0]}"#,
            "WorkersPerRound",
        ),
        (
            r#"{"Mode":"top-up","TargetConfidence":0.9,"WorkersPerRound":[3,2],"MaxAnswersPerObject":4}"#,
            "MaxAnswersPerObject",
        ),
        (
            r#"{"Mode":"top-up","TargetConfidence":0.9,"WorkersPerRound":[3,2],"Extra":1}"#,
            "Extra",
        ),
    ];
    for (plan, field) in bad {
        let err = TopUpPlan::parse(plan.as_bytes()).unwrap_err().to_string();
        assert!(err.contains(field), "{plan}: {err}");
    }
    assert!(TopUpPlan::is_top_up(PLAN.as_bytes()));
    assert!(!TopUpPlan::is_top_up(br#"{"LabelAttributeName":"x"}"#));
    // A follow-up plan with another mode is refused by the follow-up plan reader.
    assert!(!TopUpPlan::is_top_up(br#"{"Mode":"other"}"#));
    assert!(crate::chain::FollowUpPlan::parse(br#"{"Mode":"other"}"#).is_err());
}

#[test]
fn the_first_round_must_be_the_job_itself() {
    let err = Round::first()
        .decide_with(r#"{"Mode":"top-up","TargetConfidence":0.9,"WorkersPerRound":[2,2]}"#)
        .unwrap_err();
    assert!(err.to_string().contains("asked 3 workers"), "{err}");
}

#[test]
fn round_names_stay_within_the_limits() {
    let long = "a".repeat(127);
    let lan = round_label_attribute_name(&long, 10).unwrap();
    assert_eq!(lan.as_str().len(), 127);
    assert!(lan.as_str().ends_with("-top-up-10"));
}
