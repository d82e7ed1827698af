//! The SageMaker adapter against the real aws-sdk-sagemaker client, pointed at a fake SageMaker written
//! here: an HTTP server on 127.0.0.1:0 speaking the service's protocol (AWS JSON 1.1: `POST /` with
//! `X-Amz-Target: SageMaker.<Operation>` and a JSON body; errors are HTTP 400
//! `{"__type": "<Code>", "Message": …}`), which records every request it gets.
//!
//! The tests assert what went over the wire — the CreateLabelingJob body must equal the domain request's
//! JSON member for member, so no field is lost in conversion — and how each service error comes back
//! through the port. The client makes one attempt only, so the throttling tests do not sleep through
//! the SDK's back-off.

// Test code, helpers included: a failed unwrap is a failed test (clippy.toml allows it in `#[test]`s only).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use aws_sdk_sagemaker::config::retry::RetryConfig;
use aws_sdk_sagemaker::config::{BehaviorVersion, Credentials, Region};
use groundwork::chain::executor::{ChainPorts, ChainRun, RunOutcome, chain_job};
use groundwork::chain::{ChainMode, ChainSettings};
use groundwork::labeling_job::{CreateLabelingJobRequest, LabelingJobDescription};
use groundwork::ports::fakes::MemoryObjectStore;
use groundwork::ports::{CreateOutcome, JobsError, LabelingJobCreator, LabelingJobDescriber};
use groundwork_sagemaker::SageMakerJobs;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

const DESCRIBE: &str = include_str!("fixtures/describe-every-member.json");
const OUTPUT_MANIFEST: &str = include_str!("fixtures/animals-output.manifest");
const OUTPUT_URI: &str = "s3://out-bucket/jobs/Animals/manifests/output/output.manifest";

/// One request as the fake received it.
#[derive(Debug, Clone)]
struct Recorded {
    target: String,
    content_type: String,
    body: Value,
}

/// A scripted failure for the next calls of an operation.
#[derive(Debug, Clone)]
struct Scripted {
    status: u16,
    code: &'static str,
}

/// The fake service's state: jobs by lower-cased name (SageMaker names are case-insensitive), the
/// requests received, and failures to answer with.
#[derive(Debug, Default)]
struct FakeSageMaker {
    jobs: Mutex<BTreeMap<String, Value>>,
    requests: Mutex<Vec<Recorded>>,
    fail_creates: Mutex<Option<Scripted>>,
    fail_describes: Mutex<Option<Scripted>>,
}

impl FakeSageMaker {
    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    fn creates(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r.target == "SageMaker.CreateLabelingJob")
            .map(|r| r.body)
            .collect()
    }

    fn add_job(&self, describe: Value) {
        let name = describe["LabelingJobName"].as_str().unwrap().to_lowercase();
        self.jobs.lock().unwrap().insert(name, describe);
    }

    fn answer(&self, target: &str, body: &Value) -> (u16, Value) {
        let name = body["LabelingJobName"].as_str().unwrap_or_default();
        let error = |status: u16, code: &str, message: String| {
            (status, json!({"__type": code, "Message": message}))
        };
        match target {
            "SageMaker.DescribeLabelingJob" => {
                if let Some(s) = self.fail_describes.lock().unwrap().clone() {
                    return error(s.status, s.code, "scripted".to_owned());
                }
                match self.jobs.lock().unwrap().get(&name.to_lowercase()) {
                    Some(job) => (200, job.clone()),
                    None => error(
                        400,
                        "ResourceNotFound",
                        format!("Could not find labeling job {name}"),
                    ),
                }
            }
            "SageMaker.CreateLabelingJob" => {
                if let Some(s) = self.fail_creates.lock().unwrap().clone() {
                    return error(s.status, s.code, "Rate exceeded".to_owned());
                }
                let mut jobs = self.jobs.lock().unwrap();
                if jobs.contains_key(&name.to_lowercase()) {
                    return error(
                        400,
                        "ResourceInUse",
                        format!("Labeling job {name} already exists"),
                    );
                }
                let arn = format!(
                    "arn:aws:sagemaker:us-east-1:111122223333:labeling-job/{}",
                    name.to_lowercase()
                );
                // What DescribeLabelingJob will say about it: the request, running.
                let mut described = body.clone();
                described["LabelingJobArn"] = json!(arn);
                described["LabelingJobStatus"] = json!("InProgress");
                described["LabelCounters"] = json!({});
                jobs.insert(name.to_lowercase(), described);
                (200, json!({"LabelingJobArn": arn}))
            }
            other => error(400, "UnknownOperationException", other.to_owned()),
        }
    }

    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let target = header("x-amz-target");
        let content_type = header("content-type");
        let bytes = request
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        self.requests.lock().unwrap().push(Recorded {
            target: target.clone(),
            content_type,
            body: body.clone(),
        });
        let (status, answer) = self.answer(&target, &body);
        let response = Response::builder()
            .status(StatusCode::from_u16(status).unwrap())
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amzn-requestid", "fake-request")
            .body(Full::new(Bytes::from(answer.to_string())))
            .unwrap();
        Ok(response)
    }
}

/// Starts the fake on a free port; returns it and an adapter whose client talks to it.
async fn start() -> (Arc<FakeSageMaker>, SageMakerJobs) {
    let fake = Arc::new(FakeSageMaker::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = Arc::clone(&fake);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let fake = Arc::clone(&server);
            tokio::spawn(async move {
                let service = service_fn(move |req| Arc::clone(&fake).handle(req));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let config = aws_sdk_sagemaker::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(format!("http://{address}"))
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .build();
    let jobs = SageMakerJobs::new(aws_sdk_sagemaker::Client::from_conf(config));
    (fake, jobs)
}

fn describe_json() -> Value {
    serde_json::from_str(DESCRIBE).unwrap()
}

/// A request with every member set: the fixture job's setup under a new name.
fn full_request() -> CreateLabelingJobRequest {
    let d: LabelingJobDescription = serde_json::from_str(DESCRIBE).unwrap();
    CreateLabelingJobRequest {
        labeling_job_name: "Animals-c1-0a1b2c3d".to_owned(),
        label_attribute_name: "animal".to_owned(),
        input_config: d.input_config,
        output_config: d.output_config,
        role_arn: d.role_arn,
        label_category_config_s3_uri: d.label_category_config_s3_uri,
        stopping_conditions: d.stopping_conditions,
        labeling_job_algorithms_config: d.labeling_job_algorithms_config,
        human_task_config: d.human_task_config,
        tags: d.tags,
    }
}

#[tokio::test]
async fn describe_reads_every_member() {
    let (fake, jobs) = start().await;
    fake.add_job(describe_json());

    // Names in event ARNs are lower-cased; the API (and the fake) do not care.
    let job = jobs.describe_labeling_job("animals").await.unwrap();

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].target, "SageMaker.DescribeLabelingJob");
    assert_eq!(requests[0].content_type, "application/x-amz-json-1.1");
    assert_eq!(requests[0].body, json!({"LabelingJobName": "animals"}));
    // Nothing dropped: the converted description is the service's answer, member for member.
    assert_eq!(serde_json::to_value(&job).unwrap(), describe_json());
    assert_eq!(
        job.labeling_job_output
            .unwrap()
            .final_active_learning_model_arn
            .as_deref(),
        Some("arn:aws:sagemaker:us-east-1:111122223333:model/animals-final")
    );
}

#[tokio::test]
async fn create_sends_every_member() {
    let (fake, jobs) = start().await;
    let request = full_request();

    let outcome = jobs.create_labeling_job(&request).await.unwrap();

    assert_eq!(
        outcome,
        CreateOutcome::Created {
            arn: "arn:aws:sagemaker:us-east-1:111122223333:labeling-job/animals-c1-0a1b2c3d"
                .to_owned()
        }
    );
    let creates = fake.creates();
    assert_eq!(creates.len(), 1);
    let sent = &creates[0];
    // Nothing dropped: the wire body is the domain request, member for member.
    assert_eq!(sent, &serde_json::to_value(&request).unwrap());
    assert_eq!(sent["LabelingJobName"], "Animals-c1-0a1b2c3d");
    assert_eq!(sent["LabelAttributeName"], "animal");
    assert_eq!(
        sent["InputConfig"]["DataSource"]["S3DataSource"]["ManifestS3Uri"],
        "s3://in-bucket/animals/input.manifest"
    );
    assert_eq!(
        sent["LabelingJobAlgorithmsConfig"]["InitialActiveLearningModelArn"],
        "arn:aws:sagemaker:us-east-1:111122223333:model/animals-initial"
    );
    assert_eq!(
        sent["Tags"],
        json!([{"Key": "team", "Value": "vision"}, {"Key": "groundwork:chain", "Value": "continue"}])
    );
}

#[tokio::test]
async fn a_minimal_request_sends_no_empty_members() {
    let (fake, jobs) = start().await;
    let mut request = full_request();
    request.tags.clear();
    request.stopping_conditions = None;
    request.labeling_job_algorithms_config = None;
    request.label_category_config_s3_uri = None;
    request.input_config.data_attributes = None;
    request.human_task_config.task_keywords.clear();
    request.human_task_config.public_workforce_task_price = None;

    jobs.create_labeling_job(&request).await.unwrap();

    let sent = &fake.creates()[0];
    assert_eq!(sent, &serde_json::to_value(&request).unwrap());
    for absent in ["Tags", "StoppingConditions", "LabelingJobAlgorithmsConfig"] {
        assert!(sent.get(absent).is_none(), "{absent} was sent");
    }
}

#[tokio::test]
async fn a_taken_name_is_already_exists_not_an_error() {
    let (fake, jobs) = start().await;
    let request = full_request();
    assert!(matches!(
        jobs.create_labeling_job(&request).await.unwrap(),
        CreateOutcome::Created { .. }
    ));

    // The duplicate event: same name, any case.
    let mut again = request.clone();
    again.labeling_job_name = again.labeling_job_name.to_uppercase();
    assert_eq!(
        jobs.create_labeling_job(&again).await.unwrap(),
        CreateOutcome::AlreadyExists
    );
    assert_eq!(fake.creates().len(), 2);
}

#[tokio::test]
async fn throttling_and_limits_are_retryable_errors() {
    for code in ["ThrottlingException", "ResourceLimitExceeded"] {
        let (fake, jobs) = start().await;
        *fake.fail_creates.lock().unwrap() = Some(Scripted { status: 400, code });

        let err = jobs.create_labeling_job(&full_request()).await.unwrap_err();

        assert!(
            matches!(&err, JobsError::Throttled { code: c, .. } if c == code),
            "{err:?}"
        );
        assert!(err.is_retryable());
        assert_eq!(
            fake.creates().len(),
            1,
            "one attempt: the retries are Lambda's"
        );
    }
}

#[tokio::test]
async fn other_service_errors_are_classified() {
    let (fake, jobs) = start().await;
    let err = jobs.describe_labeling_job("nobody").await.unwrap_err();
    assert_eq!(
        err,
        JobsError::NotFound {
            name: "nobody".to_owned()
        }
    );
    assert!(!err.is_retryable());

    *fake.fail_creates.lock().unwrap() = Some(Scripted {
        status: 400,
        code: "ValidationException",
    });
    let err = jobs.create_labeling_job(&full_request()).await.unwrap_err();
    assert!(
        matches!(&err, JobsError::Invalid { code, .. } if code == "ValidationException"),
        "{err:?}"
    );
    assert!(!err.is_retryable());

    *fake.fail_describes.lock().unwrap() = Some(Scripted {
        status: 500,
        code: "InternalFailure",
    });
    let err = jobs.describe_labeling_job("animals").await.unwrap_err();
    assert!(matches!(err, JobsError::Other { .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn an_unreachable_service_is_a_retryable_error() {
    // Bind and drop: nothing listens on this port any more.
    let address = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let config = aws_sdk_sagemaker::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(format!("http://{address}"))
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .build();
    let jobs = SageMakerJobs::new(aws_sdk_sagemaker::Client::from_conf(config));
    let err = jobs.describe_labeling_job("animals").await.unwrap_err();
    assert!(matches!(err, JobsError::Other { .. }), "{err:?}");
    assert!(err.is_retryable());
}

/// The whole chain step over the real client: describe the stopped job, check the new name is free,
/// create the continued job; then the duplicate event finds the job and creates nothing.
#[tokio::test]
async fn a_chain_step_over_the_wire_is_idempotent() {
    let (fake, jobs) = start().await;
    fake.add_job(describe_json());
    let store = MemoryObjectStore::new();
    store.insert(OUTPUT_URI, OUTPUT_MANIFEST);
    let ports = ChainPorts {
        describer: &jobs,
        creator: &jobs,
        reader: &store,
        writer: &store,
        lister: &store,
    };
    let settings = ChainSettings {
        default_mode: ChainMode::Continue,
        ..ChainSettings::default()
    };
    let run = ChainRun::lambda(&settings);

    let first = chain_job(ports, "animals", run).await.unwrap();

    let RunOutcome::Created { arn, action } = first.outcome else {
        panic!("{:?}", first.outcome);
    };
    let name = &action.request.labeling_job_name;
    assert!(name.starts_with("Animals-c1-"), "{name}");
    assert!(arn.ends_with(&name.to_lowercase()));
    let targets: Vec<String> = fake.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(
        targets,
        [
            "SageMaker.DescribeLabelingJob",
            "SageMaker.DescribeLabelingJob",
            "SageMaker.CreateLabelingJob"
        ]
    );
    let sent = &fake.creates()[0];
    assert_eq!(sent["LabelingJobName"], json!(name));
    assert_eq!(sent["LabelAttributeName"], "animal");
    assert_eq!(
        sent["InputConfig"]["DataSource"]["S3DataSource"]["ManifestS3Uri"],
        OUTPUT_URI
    );
    assert_eq!(
        sent["LabelingJobAlgorithmsConfig"]["InitialActiveLearningModelArn"],
        "arn:aws:sagemaker:us-east-1:111122223333:model/animals-final",
        "the source's final model is passed on"
    );
    let tags = sent["Tags"].as_array().unwrap();
    let tag = |key: &str| {
        tags.iter()
            .find(|t| t["Key"] == key)
            .map(|t| t["Value"].clone())
    };
    assert_eq!(tag("groundwork:root-job"), Some(json!("Animals")));
    assert_eq!(tag("groundwork:parent-job"), Some(json!("Animals")));
    assert_eq!(tag("groundwork:depth"), Some(json!("1")));
    assert_eq!(tag("groundwork:labeled-at-start"), Some(json!("2")));
    assert_eq!(tag("team"), Some(json!("vision")));

    // EventBridge delivers the event again.
    let second = chain_job(ports, "animals", run).await.unwrap();
    assert!(
        matches!(second.outcome, RunOutcome::AlreadyExists { .. }),
        "{:?}",
        second.outcome
    );
    assert_eq!(fake.creates().len(), 1, "no second CreateLabelingJob");
}
