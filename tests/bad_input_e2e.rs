//! The bad-input corpus (`tests/bad_input/*.jsonl`, made by `make-corpus.py` there): hostile and careless
//! events sent to each real function binary under the local Lambda Runtime API, each with its expected
//! outcome asserted — a stable error name, the pre-human-task decision, the consolidation entries (one
//! per payload object with a readable id; which are labelled, which failed), or the chainer's rejection
//! code. No AWS call is made: consolidation payloads are inline (`payload.content`), pre-human-task is
//! configured with its job, and the chainer rejects these events before describing anything.

use serde_json::Value;

use std::time::Duration;

use crate::util::{Answer, bin, repo_dir};

/// One case of a corpus file.
struct Case {
    name: String,
    body: Vec<u8>,
    expect: Value,
}

fn corpus(file: &str) -> Vec<Case> {
    let path = repo_dir().join("tests/bad_input").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|line| {
            let case: Value = serde_json::from_str(line).unwrap();
            let body = if let Some(raw) = case["raw"].as_str() {
                raw.as_bytes().to_vec()
            } else if let Some(hex) = case["raw_hex"].as_str() {
                (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                    .collect()
            } else {
                case["body"].to_string().into_bytes()
            };
            Case {
                name: case["case"].as_str().unwrap().to_owned(),
                body,
                expect: case["expect"].clone(),
            }
        })
        .collect()
}

/// No AWS call is made for these events; the clients only need a region and some credentials to start.
fn env(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    [
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        // An S3 endpoint nobody listens on: an answer stored in S3 is unreadable, fast.
        ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9"),
        ("AWS_MAX_ATTEMPTS", "1"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

/// What the function answered: its response's exact bytes, or its error.
enum Raw {
    Response(Vec<u8>),
    Error(Value),
}

/// Runs `binary` under the local Lambda Runtime API on every case, in order.
async fn run_raw(binary: &str, cases: &[Case], extra: &[(&str, &str)]) -> Vec<Raw> {
    let logs = tempfile::tempdir().unwrap();
    let function = groundwork_sim::lambda::Function::new(
        &bin(binary),
        env(extra),
        logs.path().join(format!("{binary}.log")),
    );
    let mut answers = Vec::new();
    for case in cases {
        let answer = tokio::time::timeout(
            Duration::from_secs(120),
            function.invoke_raw(case.body.clone()),
        )
        .await
        .unwrap_or_else(|_| panic!("{binary} did not answer {:?} in time", case.name))
        .unwrap_or_else(|e| panic!("{binary} on {:?}: {e}", case.name));
        answers.push(match answer {
            groundwork_sim::lambda::Answer::Response(body) => Raw::Response(body.to_vec()),
            groundwork_sim::lambda::Answer::Error(e) => Raw::Error(serde_json::json!({
                "errorType": e.error_type,
                "errorMessage": e.error_message,
            })),
        });
    }
    function.stop().await;
    answers
}

/// As [`run_raw`], responses parsed.
async fn run(binary: &str, cases: &[Case], extra: &[(&str, &str)]) -> Vec<Answer> {
    run_raw(binary, cases, extra)
        .await
        .into_iter()
        .map(|raw| match raw {
            Raw::Response(body) => {
                Answer::Response(serde_json::from_slice(&body).unwrap_or(Value::Null))
            }
            Raw::Error(e) => Answer::Error(e),
        })
        .collect()
}

/// The error type of `answer`, if it is an error.
fn error_type(answer: &Answer) -> Option<&str> {
    match answer {
        Answer::Error(e) => e["errorType"].as_str(),
        Answer::Response(_) => None,
    }
}

fn check_error(case: &Case, answer: &Answer) -> Result<(), String> {
    let want = case.expect["error"].as_str().unwrap_or_default();
    match error_type(answer) {
        Some(got) if got == want => Ok(()),
        _ => Err(format!("expected error {want}, got {answer:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_human_task_answers_every_bad_input_as_expected() {
    let cases = corpus("pre-human-task.jsonl");
    assert!(cases.len() >= 30);
    let answers = run_raw(
        "gt-pre-human-task",
        &cases,
        &[
            ("LABEL_ATTRIBUTE_NAME", "category"),
            ("TASK_TYPE", "ImageMultiClass"),
        ],
    )
    .await;
    let mut misses = Vec::new();
    for (case, answer) in cases.iter().zip(&answers) {
        // The response is read as text: it may hold numbers a `Value` cannot (that is the point).
        let verdict = match (answer, case.expect.get("error")) {
            (Raw::Error(e), Some(want)) if e["errorType"] == *want => Ok(()),
            (Raw::Error(e), _) => Err(format!("an error: {e}")),
            (Raw::Response(body), Some(want)) => Err(format!(
                "expected {want}, got {}",
                String::from_utf8_lossy(body)
            )),
            (Raw::Response(body), None) => {
                let text = String::from_utf8_lossy(body);
                let human = case.expect["human"].as_bool().unwrap_or_default();
                let line = text
                    .split_once(r#""manifestLine":"#)
                    .map(|(_, rest)| rest)
                    .unwrap_or_default();
                if !text.contains(&format!(r#""isHumanAnnotationRequired":{human}"#)) {
                    Err(format!("isHumanAnnotationRequired is not {human}: {text}"))
                } else if let Some(want) = case.expect["manifest_line_contains"].as_str()
                    && !line.contains(want)
                {
                    Err(format!("manifestLine lacks {want}: {line}"))
                } else {
                    Ok(())
                }
            }
        };
        if let Err(why) = verdict {
            misses.push(format!("{}: {why}", case.name));
        }
    }
    assert!(misses.is_empty(), "{misses:#?}");
}

/// The ids of the entries whose content has the label (`labeled`) or a failure reason (`failed`).
fn split_entries(response: &Value) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut ids, mut labeled, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for entry in response.as_array().into_iter().flatten() {
        let id = entry["datasetObjectId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let content = &entry["consolidatedAnnotation"]["content"];
        if content.get("animal").is_some() {
            labeled.push(id.clone());
        }
        if content["animal-metadata"].get("failure-reason").is_some() {
            failed.push(id.clone());
        }
        ids.push(id);
    }
    (ids, labeled, failed)
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotation_consolidation_answers_every_bad_input_as_expected() {
    let cases = corpus("annotation-consolidation.jsonl");
    assert!(cases.len() >= 30);
    let answers = run("gt-annotation-consolidation", &cases, &[]).await;
    let mut misses = Vec::new();
    for (case, answer) in cases.iter().zip(&answers) {
        let verdict = if case.expect.get("error").is_some() {
            check_error(case, answer)
        } else {
            match answer {
                Answer::Response(r) => {
                    let (ids, labeled, failed) = split_entries(r);
                    let want_entries = case.expect["entries"].as_u64().unwrap_or(0) as usize;
                    let want_labeled = strings(&case.expect["labeled"]);
                    let want_failed = strings(&case.expect["failed"]);
                    let mut why = Vec::new();
                    if ids.len() != want_entries {
                        why.push(format!("{} entries, not {want_entries}", ids.len()));
                    }
                    if labeled != want_labeled {
                        why.push(format!("labeled {labeled:?}, not {want_labeled:?}"));
                    }
                    if failed != want_failed {
                        why.push(format!("failed {failed:?}, not {want_failed:?}"));
                    }
                    if let Some(names) = case.expect["class_name"].as_object() {
                        for (id, name) in names {
                            let entry = r
                                .as_array()
                                .into_iter()
                                .flatten()
                                .find(|e| e["datasetObjectId"] == id.as_str());
                            let got = entry.map(|e| {
                                e["consolidatedAnnotation"]["content"]["animal-metadata"]
                                    ["class-name"]
                                    .clone()
                            });
                            if got.as_ref() != Some(name) {
                                why.push(format!("{id}: class-name {got:?}, not {name}"));
                            }
                        }
                    }
                    if why.is_empty() {
                        Ok(())
                    } else {
                        Err(format!("{}: {r}", why.join("; ")))
                    }
                }
                Answer::Error(e) => Err(format!("an error: {e}")),
            }
        };
        if let Err(why) = verdict {
            misses.push(format!("{}: {why}", case.name));
        }
    }
    assert!(misses.is_empty(), "{misses:#?}");
}

/// The consolidation function's request bounds, set low through its environment as an owner would: a
/// payload over `MAX_PAYLOAD_OBJECTS` is refused by name before any work; an object's answers past
/// `MAX_ANSWERS_PER_OBJECT` are left out (the first ones decide) and reported as one skipped record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consolidation_bounds_set_in_the_environment_hold() {
    let arn = "arn:aws:sagemaker:us-east-1:111122223333:labeling-job/bounds";
    let answer = |w: usize, label: &str| {
        serde_json::json!({"workerId": format!("w{w}"), "annotationData": {"content":
            serde_json::json!({"animal": {"label": label}}).to_string()}})
    };
    let request = |objects: Vec<Value>| {
        let body = serde_json::json!({
            "version": "2018-10-06", "labelingJobArn": arn, "labelAttributeName": "animal",
            "labelCategories": ["cat", "dog"],
            "payload": {"content": Value::Array(objects).to_string()},
        });
        Case {
            name: "bounds".to_owned(),
            body: body.to_string().into_bytes(),
            expect: Value::Null,
        }
    };
    let object = |id: usize, answers: Vec<Value>| {
        serde_json::json!({"datasetObjectId": id.to_string(),
            "dataObject": {"s3Uri": format!("s3://b/{id}.jpg")}, "annotations": answers})
    };
    // Three objects, a limit of two; then one object whose two Cats come before four Dogs, a limit of
    // three answers.
    let three = request((0..3).map(|i| object(i, vec![answer(1, "cat")])).collect());
    let answers: Vec<Value> = [
        (1, "cat"),
        (2, "cat"),
        (3, "dog"),
        (4, "dog"),
        (5, "dog"),
        (6, "dog"),
    ]
    .iter()
    .map(|(w, l)| answer(*w, l))
    .collect();
    let crowded = request(vec![object(0, answers)]);
    let got = run(
        "gt-annotation-consolidation",
        &[three, crowded],
        &[
            ("MAX_PAYLOAD_OBJECTS", "2"),
            ("MAX_ANSWERS_PER_OBJECT", "3"),
        ],
    )
    .await;
    assert_eq!(
        error_type(&got[0]),
        Some("PayloadTooManyObjects"),
        "{:?}",
        got[0]
    );
    let Answer::Response(response) = &got[1] else {
        panic!("expected a response, got {:?}", got[1]);
    };
    let meta = &response[0]["consolidatedAnnotation"]["content"]["animal-metadata"];
    assert_eq!(
        meta["class-name"], "cat",
        "the first three answers decide: {meta}"
    );
    let skipped = meta["skipped-answers"].as_array().expect("skipped answers");
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0]["worker-id"], "3 workers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_chainer_rejects_every_bad_event_by_code() {
    let cases = corpus("auto-chainer.jsonl");
    assert!(cases.len() >= 10);
    let answers = run("gt-auto-chainer", &cases, &[]).await;
    let mut misses = Vec::new();
    for (case, answer) in cases.iter().zip(&answers) {
        let want = case.expect["rejected"].as_str().unwrap_or_default();
        match answer {
            Answer::Response(r) if r["outcome"] == "rejected" && r["reason_code"] == want => {}
            other => misses.push(format!("{}: expected {want}, got {other:?}", case.name)),
        }
    }
    assert!(misses.is_empty(), "{misses:#?}");
}
