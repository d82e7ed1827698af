//! The `gt-pre-human-task` binary, run by a local Lambda Runtime API, configured for one job whose label
//! category file is in moto.

use serde_json::{Value, json};

use crate::util::{Answer, LambdaRuntime, Moto, fixture, put};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_events_skips_labeled_objects_and_reports_bad_ones() {
    let moto = Moto::start();
    put(
        &moto.s3(),
        "gw-pre",
        &[(
            "labels.json",
            br#"{"document-version":"2018-11-28","labels":[{"label":"Cat"},{"label":"Dog"}]}"#
                .to_vec(),
        )],
    )
    .await;
    let recipe: Value = serde_json::from_slice(
        &std::fs::read(fixture(
            "aws_sagemaker_ground_truth_recipe/pre_human_task_test_event.json",
        ))
        .unwrap(),
    )
    .unwrap();
    let arn = "arn:aws:sagemaker:us-east-1:111111111111:labeling-job/test-labeling-job";
    let events = vec![
        recipe,
        json!({"version": "2018-10-06", "labelingJobArn": arn,
               "dataObject": {"source-ref": "s3://gw-pre/1.jpg", "category": 1, "category-metadata": {"class-name": "Dog"}}}),
        json!({"version": "2018-10-06", "labelingJobArn": arn, "dataObject": {}}),
    ];
    let runtime = LambdaRuntime::start(events).await;
    let mut env = moto.env();
    env.extend([
        ("LABEL_ATTRIBUTE_NAME".to_owned(), "category".to_owned()),
        ("TASK_TYPE".to_owned(), "ImageMultiClass".to_owned()),
        (
            "LABEL_CATEGORY_CONFIG_S3_URI".to_owned(),
            "s3://gw-pre/labels.json".to_owned(),
        ),
    ]);
    let answers = runtime.run("gt-pre-human-task", &env, 3).await;

    let Answer::Response(first) = &answers[0].1 else {
        panic!("{answers:?}")
    };
    assert_eq!(
        first["taskInput"]["taskObject"],
        "s3://test-bucket/test-image.jpg"
    );
    assert_eq!(first["taskInput"]["labels"], json!(["Cat", "Dog"]));
    assert_eq!(first["isHumanAnnotationRequired"], json!(true));
    let Answer::Response(second) = &answers[1].1 else {
        panic!("{answers:?}")
    };
    assert_eq!(
        second["isHumanAnnotationRequired"],
        json!(false),
        "already labeled under the job's LAN"
    );
    let Answer::Error(third) = &answers[2].1 else {
        panic!("{answers:?}")
    };
    assert_eq!(third["errorType"], "InvalidDataObject");
}

#[test]
fn a_bad_configuration_stops_the_cold_start() {
    // Lambda reports a runtime that exits during init as Runtime.ExitError, with its stderr in the logs.
    let output = std::process::Command::new(crate::util::bin("gt-pre-human-task"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .env("LABEL_ATTRIBUTE_NAME", "mask")
        .env("TASK_TYPE", "SemanticSegmentation")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("-ref"), "{stderr}");
}
