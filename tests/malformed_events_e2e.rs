//! Invocation bodies that are not JSON reach each function's handler and get its stable error type, not
//! the runtime's (`&lambda_runtime::deserializer::DeserializeError`, which it reports when the body
//! does not deserialize into the handler's event type).

use crate::util::{Answer, LambdaRuntime};

/// Truncated JSON, nesting far past serde_json's recursion limit, and invalid UTF-8 in a string.
fn bodies(start: &str) -> Vec<Vec<u8>> {
    let truncated = start.as_bytes().to_vec();
    let deep = "[".repeat(100_000).into_bytes();
    let mut bad_utf8 = br#"{"version":""#.to_vec();
    bad_utf8.extend_from_slice(&[0xff, 0xfe]);
    bad_utf8.extend_from_slice(br#""}"#);
    vec![truncated, deep, bad_utf8]
}

/// No AWS call is made for these events; the clients only need a region and some credentials to start.
fn env(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    [
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

async fn answers(binary: &str, start: &str, extra: &[(&str, &str)]) -> Vec<Answer> {
    let runtime = LambdaRuntime::start_raw(bodies(start)).await;
    let answers = runtime.run(binary, &env(extra), 3).await;
    assert_eq!(answers.len(), 3, "{answers:?}");
    answers.into_iter().map(|(_, a)| a).collect()
}

fn assert_invalid_event(answers: &[Answer]) {
    for answer in answers {
        let Answer::Error(error) = answer else {
            panic!("an error, not {answer:?}");
        };
        assert_eq!(error["errorType"], "InvalidEvent", "{error}");
        let message = error["errorMessage"].as_str().unwrap_or_default();
        assert!(message.contains("not valid JSON"), "{message}");
    }
}

#[tokio::test]
async fn pre_human_task_answers_invalid_event() {
    let answers = answers(
        "gt-pre-human-task",
        r#"{"version":"2018-10-06","labelingJobArn":"arn:aws:sagemaker:us-east-1:1:labeling-job/x","dataObj"#,
        &[("LABEL_ATTRIBUTE_NAME", "category")],
    )
    .await;
    assert_invalid_event(&answers);
}

#[tokio::test]
async fn annotation_consolidation_answers_invalid_event() {
    let answers = answers(
        "gt-annotation-consolidation",
        r#"{"version":"2018-10-06","labelingJobArn":"arn:aws:sagemaker:us-east-1:1:labeling-job/x","payl"#,
        &[],
    )
    .await;
    assert_invalid_event(&answers);
}

#[tokio::test]
async fn auto_chainer_rejects_the_body_as_malformed() {
    let answers = answers(
        "gt-auto-chainer",
        r#"{"version":"0","source":"aws.sagemaker","detail-type":"SageMaker Ground Truth Lab"#,
        &[],
    )
    .await;
    for answer in &answers {
        let Answer::Response(outcome) = answer else {
            panic!("a rejection, not {answer:?}");
        };
        assert_eq!(
            outcome["reason_code"], "InvalidEvent.Malformed",
            "{outcome}"
        );
    }
}
