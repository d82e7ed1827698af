//! The `groundwork` CLI as a process, on the shared fixtures and on hand-broken copies.

use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::util::{bin, fixture, repo_dir};

fn groundwork(args: &[&str]) -> Output {
    Command::new(bin("groundwork"))
        .args(args)
        .output()
        .expect("run groundwork")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn validates_the_real_output_manifest() {
    let path = fixture("aws_examples_gt_outputs/object_detection_output.manifest");
    let out = groundwork(&["manifest", "validate", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("100 lines, 100 valid, 0 invalid"));
}

#[test]
fn lists_every_bad_line_of_a_broken_copy() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(fixture(
        "aws_examples_gt_outputs/classification_output.manifest",
    ))
    .unwrap();
    let mut lines: Vec<&str> = good.lines().collect();
    lines.insert(1, "{\"source\": \"x\", \"source-ref\": \"s3://b/k\"}");
    lines.push("{truncated");
    lines.push("{\"no-source\": 1}");
    let path = dir.path().join("broken.manifest");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let out = groundwork(&["manifest", "validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains(":line 2: both `source` and `source-ref`"),
        "{text}"
    );
    assert!(text.contains(":line 4: invalid JSON"), "{text}");
    assert!(
        text.contains(":line 5: neither `source` nor `source-ref`"),
        "{text}"
    );
    assert!(text.contains("5 lines, 2 valid, 3 invalid"), "{text}");
}

#[test]
fn pre_annotates_fixture_events_and_reports_broken_ones() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, r#"{"version":"2018-10-06","labelingJobArn":"arn:aws:sagemaker:us-east-1:1:labeling-job/x","dataObject":{"page":"1"}}"#).unwrap();
    let recipe = fixture("aws_sagemaker_ground_truth_recipe/pre_human_task_test_event.json");
    let ner = fixture("aws_examples_ner_custom_template/pre_annotation_request.json");
    let out = groundwork(&[
        "pre",
        "--event",
        recipe.to_str().unwrap(),
        "--event",
        ner.to_str().unwrap(),
        "--event",
        broken.to_str().unwrap(),
        "--label-attribute-name",
        "category",
        "--labels",
        "Cat,Dog",
    ]);
    assert_eq!(out.status.code(), Some(1), "the broken event fails the run");
    let values: Vec<Value> = serde_json::Deserializer::from_str(&stdout(&out))
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(values.len(), 3);
    assert_eq!(
        values[0]["taskInput"]["taskObject"],
        "s3://test-bucket/test-image.jpg"
    );
    assert_eq!(values[0]["taskInput"]["labels"], json!(["Cat", "Dog"]));
    assert_eq!(
        values[1]["taskInput"]["taskObject"],
        "Protein tyrosine regulates insulin receptor protein."
    );
    assert_eq!(values[2]["errorType"], "InvalidDataObject");
}

#[test]
fn consolidate_prints_what_the_lambda_returns() {
    let request = fixture("aws_examples_ner_custom_template/consolidation_request.json");
    let payload = fixture("aws_examples_ner_custom_template/consolidation_payload.json");
    let store = tempfile::tempdir().unwrap();
    let out = groundwork(&[
        "consolidate",
        "--request",
        request.to_str().unwrap(),
        "--payload",
        payload.to_str().unwrap(),
        "--store",
        store.path().to_str().unwrap(),
        "--now",
        "2024-01-01T00:00:00Z",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let response: Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = response.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let meta =
        &entries[0]["consolidatedAnnotation"]["content"]["EntityRecognition-ProtienName-metadata"];
    assert_eq!(meta["creation-date"], "2024-01-01T00:00:00.000000");
}

#[test]
fn consolidates_a_crowd_csv() {
    let dir = tempfile::tempdir().unwrap();
    let labels = repo_dir().join("data/crowd/welinder2010_bluebirds/labels.csv");
    let out_path = dir.path().join("out.csv");
    let out = groundwork(&[
        "consolidate",
        "--labels",
        labels.to_str().unwrap(),
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let written = std::fs::read_to_string(&out_path).unwrap();
    let mut rows = written.lines();
    assert_eq!(rows.next(), Some("task,label,confidence"));
    let gold =
        std::fs::read_to_string(repo_dir().join("data/crowd/welinder2010_bluebirds/gold.csv"))
            .unwrap();
    let gold: std::collections::HashMap<&str, &str> = gold
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(','))
        .collect();
    let rows: Vec<Vec<&str>> = rows.map(|r| r.split(',').collect()).collect();
    assert_eq!(rows.len(), 108);
    let right = rows
        .iter()
        .filter(|r| gold.get(r[0]) == Some(&r[1]))
        .count();
    let accuracy = right as f64 / rows.len() as f64;
    assert!(
        accuracy >= 0.884,
        "bluebirds accuracy {accuracy} (crowd-kit DS 0.889, MV 0.759)"
    );
}

#[test]
fn labels_with_commas_and_quotes_round_trip_and_bad_bytes_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels.csv");
    std::fs::write(
        &labels,
        "task,worker,label\n\"img,1\",a,\"dog, small\"\n\"img,1\",b,\"dog, small\"\n\"img,1\",c,\"say \"\"cat\"\"\"\n",
    )
    .unwrap();
    let out = groundwork(&["consolidate", "--labels", labels.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("task,label,confidence"));
    let row = lines.next().unwrap();
    assert!(row.starts_with("\"img,1\",\"dog, small\","), "{row}");
    // Invalid UTF-8 is reported once, with its line.
    std::fs::write(&labels, b"task,worker,label\n1,a,x\n2,\xff,y\n").unwrap();
    let out = groundwork(&["consolidate", "--labels", labels.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches("line 3: field 2 is not valid UTF-8").count(),
        1,
        "{err}"
    );
}

/// `groundwork consolidate --labels LABELS --out OUT EXTRA...`, and its `(task, label, confidence)` rows.
fn consolidate_csv(
    labels: &std::path::Path,
    out_path: &std::path::Path,
    extra: &[&str],
) -> Vec<(String, String, f64)> {
    let mut args = vec![
        "consolidate",
        "--labels",
        labels.to_str().unwrap(),
        "--out",
        out_path.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = groundwork(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(out_path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|r| {
            let cells: Vec<&str> = r.split(',').collect();
            (
                cells[0].to_owned(),
                cells[1].to_owned(),
                cells[2].parse::<f64>().unwrap(),
            )
        })
        .collect()
}

#[test]
fn recalibrates_confidence_on_an_audited_sample() {
    // Dog's crowd shares a blind spot: its labels said 0.98 where they are right 84 % of the time. A
    // reviewer's verdicts on 60 objects bring the confidence of the *other* objects down to their
    // accuracy; the labels themselves do not change.
    let dir = tempfile::tempdir().unwrap();
    let set = repo_dir().join("data/crowd/zheng2017_dog");
    let gold_text = std::fs::read_to_string(set.join("gold.csv")).unwrap();
    let gold: Vec<(&str, &str)> = gold_text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(','))
        .collect();
    // Every 13th object is audited (62 of 807).
    let audited: Vec<&(&str, &str)> = gold.iter().step_by(13).collect();
    let audit_path = dir.path().join("audited.csv");
    let mut audit = String::from("task,label\n");
    for (task, label) in &audited {
        audit.push_str(&format!("{task},{label}\n"));
    }
    std::fs::write(&audit_path, audit).unwrap();
    let run = |extra: &[&str]| {
        let out_path = dir.path().join(format!("out-{}.csv", extra.len()));
        consolidate_csv(&set.join("labels.csv"), &out_path, extra)
    };
    let plain = run(&[]);
    let recalibrated = run(&["--audited", audit_path.to_str().unwrap()]);
    let labels = |rows: &[(String, String, f64)]| -> Vec<(String, String)> {
        rows.iter()
            .map(|(t, l, _)| (t.clone(), l.clone()))
            .collect()
    };
    assert_eq!(labels(&plain), labels(&recalibrated), "labels unchanged");
    let held_back: std::collections::HashSet<&str> =
        audited.iter().map(|(task, _)| *task).collect();
    let truth: std::collections::HashMap<&str, &str> = gold.iter().copied().collect();
    let gap = |rows: &[(String, String, f64)]| {
        let rest: Vec<_> = rows
            .iter()
            .filter(|(t, _, _)| !held_back.contains(t.as_str()))
            .collect();
        let right = rest
            .iter()
            .filter(|(t, l, _)| truth.get(t.as_str()) == Some(&l.as_str()))
            .count() as f64;
        let confidence: f64 = rest.iter().map(|(_, _, c)| c).sum();
        (confidence - right).abs() / rest.len() as f64
    };
    let (before, after) = (gap(&plain), gap(&recalibrated));
    assert!(
        before > 0.08,
        "dog is over-confident without an audit: {before}"
    );
    // 62 verdicts estimate an accuracy to about ±0.05: the gap must close to within that, and by half.
    assert!(
        after < 0.05 && after < before / 2.0,
        "mean confidence vs accuracy: {before} without the audit, {after} after"
    );
    // Too small an audit is refused with a clear error.
    std::fs::write(&audit_path, "task,label\n1,1\n").unwrap();
    let labels_path = set.join("labels.csv");
    let out = groundwork(&[
        "consolidate",
        "--labels",
        labels_path.to_str().unwrap(),
        "--audited",
        audit_path.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 50"));
}

#[test]
fn an_audit_of_one_job_recalibrates_the_next() {
    // Dog's objects as two jobs of one pipeline: a team audits 60 labels of the first job's output
    // manifest, `groundwork audit` turns the verdicts into the document the Lambda reads, and the second
    // job's confidences, recalibrated with it, meet that job's accuracy. Labels never change.
    let dir = tempfile::tempdir().unwrap();
    let set = repo_dir().join("data/crowd/zheng2017_dog");
    let gold_text = std::fs::read_to_string(set.join("gold.csv")).unwrap();
    let truth: std::collections::HashMap<&str, &str> = gold_text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(','))
        .collect();
    let labels_text = std::fs::read_to_string(set.join("labels.csv")).unwrap();
    let mut tasks: Vec<&str> = labels_text
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .collect();
    tasks.sort_unstable();
    tasks.dedup();
    let first: std::collections::HashSet<&str> = tasks.iter().copied().step_by(2).collect();
    let (mut job_a, mut job_b) = (
        String::from("task,worker,label\n"),
        String::from("task,worker,label\n"),
    );
    for line in labels_text.lines().skip(1) {
        let task = line.split(',').next().unwrap();
        let job = if first.contains(task) {
            &mut job_a
        } else {
            &mut job_b
        };
        job.push_str(line);
        job.push('\n');
    }
    let consolidate = |labels: &str, extra: &[&str]| -> Vec<(String, String, f64)> {
        let input = dir.path().join(format!("{labels}.csv"));
        std::fs::write(&input, if labels == "a" { &job_a } else { &job_b }).unwrap();
        let out_path = dir.path().join(format!("{labels}-{}.out.csv", extra.len()));
        consolidate_csv(&input, &out_path, extra)
    };
    // The first job's output manifest, as Ground Truth writes it (confidence to two decimals).
    let first_job = consolidate("a", &[]);
    let mut manifest = String::new();
    for (task, label, confidence) in &first_job {
        let line = json!({
            "source-ref": format!("s3://bucket/dogs/{task}.jpg"),
            "breed": 0,
            "breed-metadata": {"class-name": label, "confidence": (confidence * 100.0).round() / 100.0},
        });
        manifest.push_str(&format!("{line}\n"));
    }
    let manifest_path = dir.path().join("output.manifest");
    std::fs::write(&manifest_path, manifest).unwrap();
    let mut review = String::from("task,label\n");
    for (task, _, _) in first_job.iter().step_by(6).take(60) {
        review.push_str(&format!(
            "s3://bucket/dogs/{task}.jpg,{}\n",
            truth[task.as_str()]
        ));
    }
    let review_path = dir.path().join("review.csv");
    std::fs::write(&review_path, review).unwrap();
    let document_path = dir.path().join("breed.json");
    let out = groundwork(&[
        "audit",
        "--manifest",
        manifest_path.to_str().unwrap(),
        "--label-attribute-name",
        "breed",
        "--audited",
        review_path.to_str().unwrap(),
        "--out",
        document_path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("60 audited labels"));
    let document: Value = serde_json::from_slice(&std::fs::read(&document_path).unwrap()).unwrap();
    assert_eq!(document["Verdicts"].as_array().unwrap().len(), 60);

    let plain = consolidate("b", &[]);
    let recalibrated = consolidate("b", &["--audit", document_path.to_str().unwrap()]);
    let labels = |rows: &[(String, String, f64)]| -> Vec<(String, String)> {
        rows.iter()
            .map(|(t, l, _)| (t.clone(), l.clone()))
            .collect()
    };
    assert_eq!(labels(&plain), labels(&recalibrated), "labels unchanged");
    let gap = |rows: &[(String, String, f64)]| {
        let right = rows
            .iter()
            .filter(|(t, l, _)| truth.get(t.as_str()) == Some(&l.as_str()))
            .count() as f64;
        let confidence: f64 = rows.iter().map(|(_, _, c)| c).sum();
        (confidence - right).abs() / rows.len() as f64
    };
    let (before, after) = (gap(&plain), gap(&recalibrated));
    assert!(
        before > 0.05,
        "the second job is over-confident without the audit: {before}"
    );
    assert!(
        after < 0.05 && after < before - 0.02,
        "mean confidence vs accuracy of the second job: {before} without the audit, {after} with it"
    );

    // Fewer than 50 matched verdicts: a clear error, no document.
    std::fs::write(&review_path, "task,label\ns3://bucket/dogs/x.jpg,1\n").unwrap();
    let refused = dir.path().join("refused.json");
    let out = groundwork(&[
        "audit",
        "--manifest",
        manifest_path.to_str().unwrap(),
        "--label-attribute-name",
        "breed",
        "--audited",
        review_path.to_str().unwrap(),
        "--out",
        refused.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 50"));
    assert!(!refused.exists());
}

#[test]
fn reconsolidates_worker_responses_into_a_full_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("input.manifest");
    std::fs::write(
        &manifest,
        concat!(
            "{\"source-ref\":\"s3://b/0.jpg\",\"keep\":1}\n",
            "{\"source-ref\":\"s3://b/1.jpg\"}\n",
            "{\"source-ref\":\"s3://b/2.jpg\",\"animal\":0,\"animal-metadata\":{\"class-name\":\"cat\"}}\n",
        ),
    )
    .unwrap();
    let responses = dir.path().join("annotations/worker-response");
    let answers = [
        ("0", &["cat", "cat", "dog"][..], 1),
        // w0 changes their answer in iteration 2: replaced, w0 dog, w1 cat, w2 dog gives dog; counted
        // as a fourth vote, cat cat dog dog would be a tie, which goes to cat.
        ("1", &["cat", "cat", "dog"][..], 1),
        ("1", &["dog"][..], 2),
    ];
    for (id, labels, iteration) in answers {
        let folder = responses.join(format!("iteration-{iteration}/{id}"));
        std::fs::create_dir_all(&folder).unwrap();
        let body = json!({"answers": labels.iter().enumerate().map(|(w, l)| json!({
            "answerContent": {"crowd-image-classifier": {"label": l}},
            "workerId": format!("private.us-east-1.w{w}"),
            "submissionTime": "2024-01-01T00:00:00.000Z"
        })).collect::<Vec<_>>()});
        std::fs::write(folder.join("2024-01-01_00:00:00.json"), body.to_string()).unwrap();
    }
    let out_path = dir.path().join("output.manifest");
    let out = groundwork(&[
        "reconsolidate",
        "--worker-responses",
        responses.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
        "--label-attribute-name",
        "animal",
        "--task-type",
        "ImageMultiClass",
        "--labels",
        "cat,dog",
        "--out",
        out_path.to_str().unwrap(),
        "--quiet",
        "--now",
        "2024-02-03T04:05:06Z",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = stdout(&out);
    assert!(report.contains("objects with answers: 2"), "{report}");
    assert!(report.contains("least reliable workers"), "{report}");
    let written = std::fs::read_to_string(&out_path).unwrap();
    let lines: Vec<Value> = written
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["keep"], 1, "other keys are kept");
    assert_eq!(lines[0]["animal"], 0);
    assert_eq!(
        lines[1]["animal"], 1,
        "worker w0's later iteration replaces the earlier answer"
    );
    assert_eq!(
        lines[1]["animal-metadata"]["creation-date"],
        "2024-02-03T04:05:06.000000"
    );
    let original_third = std::fs::read_to_string(&manifest)
        .unwrap()
        .lines()
        .nth(2)
        .unwrap()
        .to_owned();
    assert_eq!(
        written.lines().nth(2).unwrap(),
        original_third,
        "lines without answers are byte-for-byte unchanged"
    );
}
