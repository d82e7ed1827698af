//! The `gt-annotation-consolidation` binary, run by a local Lambda Runtime API, reading from moto.

use serde_json::{Value, json};

use crate::util::{Answer, LambdaRuntime, Moto, fixture, get, put};

fn answer(worker: &str, label: &str) -> Value {
    json!({"workerId": worker, "annotationData": {"content": json!({"crowd-image-classifier": {"label": label}}).to_string()}})
}

fn request(payload_key: &str) -> Value {
    json!({
        "version": "2018-10-06",
        "labelingJobArn": "arn:aws:sagemaker:us-east-1:111111111111:labeling-job/animals",
        "labelCategories": ["cat", "dog"],
        "labelAttributeName": "animal",
        "roleArn": "arn:aws:iam::111111111111:role/gt",
        "payload": {"s3Uri": format!("s3://gw-e2e/{payload_key}")},
        "outputConfig": "s3://gw-e2e/out/animals/annotations",
        "maxHumanWorkersPerDataObject": 3
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consolidates_batches_from_s3_and_keeps_worker_quality() {
    let moto = Moto::start();
    let s3 = moto.s3();
    let batch1 = json!([
        {"datasetObjectId": "0", "dataObject": {"s3Uri": "s3://gw-e2e/img/0.jpg"},
         "annotations": [answer("w1", "cat"), answer("w2", "cat"), answer("w3", "dog")]},
        {"datasetObjectId": "1", "dataObject": {"s3Uri": "s3://gw-e2e/img/1.jpg"},
         "annotations": [answer("w1", "dog"), answer("w2", "dog"),
                         {"workerId": "w3", "annotationData": {"s3Uri": "s3://gw-e2e/answers/1-w3.json"}}]},
        {"datasetObjectId": "2", "dataObject": {"s3Uri": "s3://gw-e2e/img/2.jpg"},
         "annotations": [{"workerId": "w1", "annotationData": {"content": "{not json"}}]}
    ]);
    put(
        &s3,
        "gw-e2e",
        &[
            ("payloads/1.json", batch1.to_string().into_bytes()),
            (
                "answers/1-w3.json",
                br#"{"crowd-image-classifier":{"label":"dog"}}"#.to_vec(),
            ),
        ],
    )
    .await;

    let events = vec![
        request("payloads/1.json"),
        request("payloads/1.json"),
        request("payloads/missing.json"),
        json!({"not": "a request"}),
    ];
    let runtime = LambdaRuntime::start(events).await;
    let answers = runtime
        .run("gt-annotation-consolidation", &moto.env(), 4)
        .await;
    assert_eq!(answers.len(), 4);

    let Answer::Response(first) = &answers[0].1 else {
        panic!("{answers:?}")
    };
    let entries = first.as_array().unwrap();
    assert_eq!(entries.len(), 3, "one entry per payload object");
    let content = |i: usize| &entries[i]["consolidatedAnnotation"]["content"];
    assert_eq!(content(0)["animal"], json!(0));
    assert_eq!(content(0)["animal-metadata"]["class-name"], "cat");
    assert_eq!(
        content(1)["animal"],
        json!(1),
        "the S3-stored answer was read"
    );
    assert!(content(2).get("animal").is_none(), "no label invented");
    assert!(content(2)["animal-metadata"]["failure-reason"].is_string());

    let Answer::Response(second) = &answers[1].1 else {
        panic!("{answers:?}")
    };
    let strip_dates = |v: &Value| {
        let mut v = v.clone();
        for e in v.as_array_mut().unwrap() {
            if let Some(m) =
                e["consolidatedAnnotation"]["content"]["animal-metadata"].as_object_mut()
            {
                m.remove("creation-date");
            }
        }
        v
    };
    assert_eq!(
        strip_dates(first),
        strip_dates(second),
        "a redelivered batch gets the same labels"
    );

    let Answer::Error(missing) = &answers[2].1 else {
        panic!("{answers:?}")
    };
    assert_eq!(missing["errorType"], "PayloadNotFound");
    let Answer::Error(bad) = &answers[3].1 else {
        panic!("{answers:?}")
    };
    assert_eq!(bad["errorType"], "InvalidEvent");

    let state = get(
        &s3,
        "gw-e2e",
        "out/animals/annotations/groundwork/worker-quality/animal.json",
    )
    .await
    .expect("worker quality kept in S3");
    let state: Value = serde_json::from_slice(&state).unwrap();
    assert!(state.to_string().contains("payloads/1.json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consolidates_the_recipe_bounding_boxes() {
    let moto = Moto::start();
    let s3 = moto.s3();
    let payload = std::fs::read(fixture(
        "aws_sagemaker_ground_truth_recipe/sample_annotation_consolidation_payload.json",
    ))
    .unwrap();
    put(
        &s3,
        "test-bucket",
        &[("sample_annotation_consolidation_payload.json", payload)],
    )
    .await;
    let event: Value = serde_json::from_slice(
        &std::fs::read(fixture(
            "aws_sagemaker_ground_truth_recipe/annotation_consolidation_test_event.json",
        ))
        .unwrap(),
    )
    .unwrap();
    let runtime = LambdaRuntime::start(vec![event]).await;
    let mut env = moto.env();
    env.push(("TASK_TYPE".to_owned(), "BoundingBox".to_owned()));
    let answers = runtime.run("gt-annotation-consolidation", &env, 1).await;
    let Answer::Response(response) = &answers[0].1 else {
        panic!("{answers:?}")
    };
    let entries = response.as_array().unwrap();
    let ids: Vec<_> = entries
        .iter()
        .map(|e| e["datasetObjectId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["0", "2"]);
    let label = &entries[1]["consolidatedAnnotation"]["content"]["test-label-attribute"];
    assert_eq!(label["image_size"][0]["width"], 1000);
    assert_eq!(label["annotations"].as_array().unwrap().len(), 2);
    let meta = &entries[1]["consolidatedAnnotation"]["content"]["test-label-attribute-metadata"];
    assert_eq!(meta["type"], "groundtruth/object-detection");
    assert_eq!(meta["job-name"], "labeling-job/test-labeling-job");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_over_the_object_limit_is_refused_before_it_is_read() {
    let moto = Moto::start();
    let s3 = moto.s3();
    let batch = json!([
        {"datasetObjectId": "0", "dataObject": {"s3Uri": "s3://gw-e2e/img/0.jpg"},
         "annotations": [answer("w1", "cat"), answer("w2", "cat")]},
    ]);
    put(
        &s3,
        "gw-e2e",
        &[("payloads/big.json", batch.to_string().into_bytes())],
    )
    .await;
    let runtime = LambdaRuntime::start(vec![request("payloads/big.json")]).await;
    let mut env = moto.env();
    env.push(("MAX_OBJECT_BYTES".to_owned(), "64".to_owned()));
    let answers = runtime.run("gt-annotation-consolidation", &env, 1).await;
    let Answer::Error(error) = &answers[0].1 else {
        panic!("{answers:?}");
    };
    assert_eq!(error["errorType"], "PayloadTooLarge", "{error}");
    assert!(
        error["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("over the 64-byte limit"),
        "{error}"
    );
}
