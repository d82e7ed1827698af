//! The `gt-auto-chainer` binary, run by a local Lambda Runtime API, against a fake SageMaker (AWS JSON 1.1
//! on 127.0.0.1, via `AWS_ENDPOINT_URL_SAGEMAKER`) and moto S3: a stopped job is continued on its output
//! manifest exactly once, although EventBridge delivers the event twice.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use groundwork::testing::DescribedJob;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::util::{Answer, LambdaRuntime, Moto, json_body, put};

/// Jobs by lower-cased name, every CreateLabelingJob body received, and faults to answer with: the next
/// calls of an operation, in order, get `(status, __type)` instead of an answer.
#[derive(Default)]
struct FakeSageMaker {
    jobs: Mutex<BTreeMap<String, Value>>,
    creates: Mutex<Vec<Value>>,
    faults: Mutex<Vec<(&'static str, u16, &'static str)>>,
}

impl FakeSageMaker {
    fn answer(&self, target: &str, body: &Value) -> (u16, Value) {
        {
            let mut faults = self.faults.lock().unwrap();
            if let Some(i) = faults.iter().position(|(t, _, _)| *t == target) {
                let (_, status, kind) = faults.remove(i);
                return (status, json!({"__type": kind, "Message": "injected"}));
            }
        }
        let name = body["LabelingJobName"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        let mut jobs = self.jobs.lock().unwrap();
        match target {
            "SageMaker.DescribeLabelingJob" => match jobs.get(&name) {
                Some(job) => (200, job.clone()),
                None => (
                    400,
                    json!({"__type": "ResourceNotFound", "Message": format!("Could not find labeling job {name}")}),
                ),
            },
            "SageMaker.CreateLabelingJob" => {
                self.creates.lock().unwrap().push(body.clone());
                if jobs.contains_key(&name) {
                    return (400, json!({"__type": "ResourceInUse", "Message": "exists"}));
                }
                let arn = format!("arn:aws:sagemaker:us-east-1:111122223333:labeling-job/{name}");
                let mut job = body.clone();
                job["LabelingJobArn"] = json!(arn);
                job["LabelingJobStatus"] = json!("InProgress");
                job["LabelCounters"] = json!({});
                jobs.insert(name, job);
                (200, json!({"LabelingJobArn": arn}))
            }
            other => (
                400,
                json!({"__type": "UnknownOperationException", "Message": other}),
            ),
        }
    }
}

async fn serve(
    fake: Arc<FakeSageMaker>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = json_body(req).await;
    let (status, answer) = fake.answer(&target, &body);
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.1")
        .body(Full::new(Bytes::from(answer.to_string())))
        .unwrap())
}

async fn start_fake(fake: Arc<FakeSageMaker>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let fake = fake.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| serve(fake.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("http://{address}")
}

/// The state-change event of the stopped `Animals` job.
fn stopped_event() -> Value {
    json!({
        "version": "0", "id": "e1", "detail-type": "SageMaker Ground Truth Labeling Job State Change",
        "source": "aws.sagemaker", "account": "111122223333", "time": "2024-01-01T01:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:sagemaker:us-east-1:111122223333:labeling-job/animals"],
        "detail": {"LabelingJobStatus": "Stopped"}
    })
}

/// The test kit's `Animals` job, stopped, tagged to continue, its files in the `gw-chain` bucket.
fn stopped_job() -> Value {
    DescribedJob::animals()
        .stored_at("s3://gw-chain/in/", "s3://gw-chain/out/")
        .role_arn("arn:aws:iam::111122223333:role/GroundTruth")
        .tags(&[("groundwork:chain", "continue"), ("team", "vision")])
        .wire_json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continues_a_stopped_job_exactly_once() {
    let moto = Moto::start();
    let output = concat!(
        "{\"source-ref\":\"s3://gw-chain/img/1.jpg\",\"animal\":0,\"animal-metadata\":{\"class-name\":\"cat\",\"confidence\":0.9}}\n",
        "{\"source-ref\":\"s3://gw-chain/img/2.jpg\",\"animal\":1,\"animal-metadata\":{\"class-name\":\"dog\",\"confidence\":0.8}}\n",
        "{\"source-ref\":\"s3://gw-chain/img/3.jpg\"}\n",
    );
    put(
        &moto.s3(),
        "gw-chain",
        &[(
            "out/Animals/manifests/output/output.manifest",
            output.as_bytes().to_vec(),
        )],
    )
    .await;
    let fake = Arc::new(FakeSageMaker::default());
    fake.jobs
        .lock()
        .unwrap()
        .insert("animals".to_owned(), stopped_job());
    let endpoint = start_fake(fake.clone()).await;

    let event = stopped_event();
    let runtime = LambdaRuntime::start(vec![
        event.clone(),
        event,
        json!({"detail-type": "Something Else"}),
    ])
    .await;
    let mut env = moto.env();
    env.push(("AWS_ENDPOINT_URL_SAGEMAKER".to_owned(), endpoint));
    env.push(("AWS_MAX_ATTEMPTS".to_owned(), "1".to_owned()));
    let answers = runtime.run("gt-auto-chainer", &env, 3).await;
    let outcomes: Vec<&str> = answers
        .iter()
        .map(|(_, answer)| match answer {
            Answer::Response(body) => body["outcome"].as_str().unwrap_or_default(),
            Answer::Error(e) => panic!("no event fails: {e}"),
        })
        .collect();
    assert_eq!(
        outcomes,
        ["created", "duplicate", "rejected"],
        "the second delivery finds the job the first created: {answers:?}"
    );

    let creates = fake.creates.lock().unwrap().clone();
    assert_eq!(
        creates.len(),
        1,
        "one job for two deliveries of the same state change: {creates:#?}"
    );
    let create = &creates[0];
    assert_eq!(
        create["LabelAttributeName"], "animal",
        "a continue-chain keeps the label attribute name"
    );
    assert_eq!(
        create["InputConfig"]["DataSource"]["S3DataSource"]["ManifestS3Uri"],
        "s3://gw-chain/out/Animals/manifests/output/output.manifest"
    );
    assert_eq!(
        create["RoleArn"],
        "arn:aws:iam::111122223333:role/GroundTruth"
    );
    let name = create["LabelingJobName"].as_str().unwrap();
    assert!(name.len() <= 63 && name.starts_with("Animals"), "{name}");
    let tags: BTreeMap<String, String> = create["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["Key"].as_str().unwrap().to_owned(),
                t["Value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        tags.get("team").map(String::as_str),
        Some("vision"),
        "user tags are copied"
    );
    assert_eq!(tags.get("groundwork:depth").map(String::as_str), Some("1"));
    assert!(tags.contains_key("groundwork:parent-job"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_deliveries_interleaved_with_sagemaker_faults_start_one_job() {
    let moto = Moto::start();
    put(
        &moto.s3(),
        "gw-chain",
        &[(
            "out/Animals/manifests/output/output.manifest",
            b"{\"source-ref\":\"s3://gw-chain/img/1.jpg\"}\n".to_vec(),
        )],
    )
    .await;
    let fake = Arc::new(FakeSageMaker::default());
    fake.jobs
        .lock()
        .unwrap()
        .insert("animals".to_owned(), stopped_job());
    *fake.faults.lock().unwrap() = vec![
        ("SageMaker.DescribeLabelingJob", 400, "ThrottlingException"),
        ("SageMaker.CreateLabelingJob", 500, "InternalFailure"),
        ("SageMaker.CreateLabelingJob", 400, "ResourceLimitExceeded"),
        ("SageMaker.CreateLabelingJob", 400, "ValidationException"),
    ];
    let endpoint = start_fake(fake.clone()).await;
    let event = stopped_event();
    let runtime = LambdaRuntime::start(vec![event; 10]).await;
    let mut env = moto.env();
    env.push(("AWS_ENDPOINT_URL_SAGEMAKER".to_owned(), endpoint));
    // One attempt per call: each fault reaches the function, as a retried call that failed every time.
    env.push(("AWS_MAX_ATTEMPTS".to_owned(), "1".to_owned()));
    let answers = runtime.run("gt-auto-chainer", &env, 10).await;
    let outcomes: Vec<String> = answers
        .iter()
        .map(|(_, answer)| match answer {
            Answer::Response(body) => body["outcome"].as_str().unwrap_or_default().to_owned(),
            Answer::Error(e) => e["errorType"].as_str().unwrap_or_default().to_owned(),
        })
        .collect();
    let mut expected = vec![
        "Retryable.SageMakerThrottled",
        "Retryable.SageMakerUnavailable",
        "Retryable.SageMakerThrottled",
        "Permanent.SageMakerRejected",
        "created",
    ];
    expected.extend(["duplicate"; 5]);
    assert_eq!(outcomes, expected, "{answers:?}");
    let jobs = fake.jobs.lock().unwrap();
    let chained: Vec<&String> = jobs
        .keys()
        .filter(|k| k.starts_with("animals-c1-"))
        .collect();
    assert_eq!(chained.len(), 1, "exactly one job: {chained:?}");
    // The faulted calls were answered before the job table: one CreateLabelingJob reached it.
    let creates = fake.creates.lock().unwrap();
    assert_eq!(creates.len(), 1);
}
