//! S3 faults between the consolidation's code path and moto: a proxy on 127.0.0.1 forwards every
//! request to moto unless a rule says to answer it with an error status, drop the connection, or answer
//! late. The requests go through the real `groundwork-s3` adapter and aws-sdk-s3 with its default retry
//! policy (standard, 3 attempts), as in the Lambda.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use groundwork::consolidate::batch::BatchSettings;
use groundwork::consolidate::service::{Ports, QualityReport, RequestOutcome, handle_request};
use groundwork::contracts::ConsolidationRequest;
use groundwork::metadata::FixedClock;
use groundwork::s3_scope::S3Scope;
use groundwork_s3::S3Store;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

use crate::util::{Moto, put};

/// What the proxy does to a matching request.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Answer with this status and S3 error code, without forwarding.
    Status(u16, &'static str),
    /// Close the connection without answering.
    Reset,
    /// Forward, but only after this delay.
    Delay(Duration),
}

#[derive(Debug, Clone)]
struct Rule {
    method: &'static str,
    path_contains: &'static str,
    /// How many matching requests it hits.
    times: usize,
    fault: Fault,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    /// Every request seen: method, path, what was done.
    seen: Vec<(String, String, String)>,
}

struct FaultProxy {
    endpoint: String,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    async fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = shared.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let state = state.clone();
                        let upstream = upstream.clone();
                        async move { handle(request, &state, &upstream).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FaultProxy { endpoint, state }
    }

    fn inject(&self, rule: Rule) {
        self.state.lock().unwrap().rules.push(rule);
    }

    fn seen(&self, method: &str, path_contains: &str) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|(m, p, _)| m == method && p.contains(path_contains))
            .map(|(_, _, done)| done.clone())
            .collect()
    }
}

/// A fault for this request, if a rule still has hits left.
fn fault_for(state: &Mutex<State>, method: &str, path: &str) -> Option<Fault> {
    let mut state = state.lock().unwrap();
    let rule = state
        .rules
        .iter_mut()
        .find(|r| r.times > 0 && r.method == method && path.contains(r.path_contains))?;
    rule.times -= 1;
    Some(rule.fault)
}

async fn handle(
    request: Request<Incoming>,
    state: &Mutex<State>,
    upstream: &str,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let fault = fault_for(state, &method, &path);
    let record = |done: &str| {
        state
            .lock()
            .unwrap()
            .seen
            .push((method.clone(), path.clone(), done.to_owned()))
    };
    match fault {
        Some(Fault::Status(status, code)) => {
            record(&format!("{status} {code}"));
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected</Message></Error>"
            );
            return Ok(Response::builder()
                .status(status)
                .header("content-type", "application/xml")
                .body(Full::new(Bytes::from(body)))
                .unwrap());
        }
        Some(Fault::Reset) => {
            record("reset");
            // An error from the service makes hyper close the connection without a response.
            return Err(std::io::Error::other("injected connection reset"));
        }
        Some(Fault::Delay(delay)) => {
            record(&format!("delayed {} ms", delay.as_millis()));
            tokio::time::sleep(delay).await;
        }
        None => record("forwarded"),
    }
    forward(request, upstream).await
}

async fn forward(
    request: Request<Incoming>,
    upstream: &str,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let stream = TcpStream::connect(upstream).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(connection);
    let response = sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await
        .map_err(std::io::Error::other)?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}

const BUCKET: &str = "gw-faults";
const PAYLOAD_KEY: &str =
    "out/animals/annotations/consolidated-annotation/consolidation-request/iteration-1/a.json";
const QUALITY_KEY: &str = "out/animals/annotations/groundwork/worker-quality/animal.json";

fn request() -> ConsolidationRequest {
    serde_json::from_value(json!({
        "version": "2018-10-06",
        "labelingJobArn": "arn:aws:sagemaker:us-east-1:111111111111:labeling-job/animals",
        "labelCategories": ["cat", "dog"],
        "labelAttributeName": "animal",
        "payload": {"s3Uri": format!("s3://{BUCKET}/{PAYLOAD_KEY}")},
        "outputConfig": format!("s3://{BUCKET}/out/animals/annotations")
    }))
    .unwrap()
}

fn payload() -> Vec<u8> {
    let answer = |w: &str, l: &str| json!({"workerId": w, "annotationData": {"content": json!({"c": {"label": l}}).to_string()}});
    json!([
        {"datasetObjectId": "0", "dataObject": {"s3Uri": "s3://gw-faults/0.jpg"},
         "annotations": [answer("w1", "cat"), answer("w2", "cat"), answer("w3", "dog")]},
        {"datasetObjectId": "1", "dataObject": {"s3Uri": "s3://gw-faults/1.jpg"},
         "annotations": [answer("w1", "dog"), answer("w2", "dog"), answer("w3", "dog")]}
    ])
    .to_string()
    .into_bytes()
}

async fn consolidate(
    store: &S3Store,
) -> Result<RequestOutcome, groundwork::consolidate::service::RequestError> {
    let clock = FixedClock(chrono::DateTime::UNIX_EPOCH);
    let scope = S3Scope::anywhere();
    let ports = Ports {
        reader: store,
        writer: store,
        quality: Some(store),
        prior_answers: None,
        audit: None,
        scope: &scope,
    };
    handle_request(&request(), ports, &BatchSettings::default(), &clock).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_faults_are_retried_where_they_pass_and_named_where_they_do_not() {
    let moto = Moto::start();
    put(&moto.s3(), BUCKET, &[(PAYLOAD_KEY, payload())]).await;
    let proxy = FaultProxy::start(&moto.endpoint).await;
    let store = S3Store::new(groundwork_sim::moto::s3_client(&proxy.endpoint));

    // The answer without faults, then its redelivery (its contribution replaced).
    let clean = consolidate(&store).await.unwrap();
    assert!(matches!(
        clean.quality,
        QualityReport::Saved { batches: 1, .. }
    ));

    // Two 503s, a reset and a slow answer on the payload, a 500 on the worker-quality write: all
    // retried by the SDK, the same answer.
    proxy.inject(Rule {
        method: "GET",
        path_contains: "consolidation-request",
        times: 2,
        fault: Fault::Status(503, "SlowDown"),
    });
    let flaky = consolidate(&store).await.unwrap();
    assert_eq!(flaky.entries, clean.entries);
    assert_eq!(
        proxy.seen("GET", "consolidation-request")[1..],
        ["503 SlowDown", "503 SlowDown", "forwarded"]
    );
    proxy.inject(Rule {
        method: "GET",
        path_contains: "consolidation-request",
        times: 1,
        fault: Fault::Reset,
    });
    proxy.inject(Rule {
        method: "PUT",
        path_contains: "worker-quality",
        times: 1,
        fault: Fault::Status(500, "InternalError"),
    });
    proxy.inject(Rule {
        method: "GET",
        path_contains: "worker-quality",
        times: 1,
        fault: Fault::Delay(Duration::from_millis(1500)),
    });
    let reset = consolidate(&store).await.unwrap();
    assert_eq!(reset.entries, clean.entries);
    assert!(
        matches!(reset.quality, QualityReport::Saved { batches: 1, .. }),
        "{:?}",
        reset.quality
    );

    // Throttled past the SDK's three attempts: a retryable request error (Lambda retries the batch).
    proxy.inject(Rule {
        method: "GET",
        path_contains: "consolidation-request",
        times: 3,
        fault: Fault::Status(503, "SlowDown"),
    });
    let err = consolidate(&store).await.unwrap_err();
    assert_eq!(err.error_type(), "Retryable.PayloadUnavailable", "{err}");

    // Access denied is not retried, and says so.
    let before = proxy.seen("GET", "consolidation-request").len();
    proxy.inject(Rule {
        method: "GET",
        path_contains: "consolidation-request",
        times: 1,
        fault: Fault::Status(403, "AccessDenied"),
    });
    let err = consolidate(&store).await.unwrap_err();
    assert_eq!(err.error_type(), "PayloadAccessDenied", "{err}");
    assert_eq!(proxy.seen("GET", "consolidation-request").len(), before + 1);

    // The worker-quality document unreadable past every retry: the batch is still answered (the same
    // labels, history lost for this batch), and the next delivery without faults gives the clean answer.
    proxy.inject(Rule {
        method: "GET",
        path_contains: "worker-quality",
        times: 3,
        fault: Fault::Status(503, "SlowDown"),
    });
    let unhistoried = consolidate(&store).await.unwrap();
    assert!(
        matches!(unhistoried.quality, QualityReport::Failed { .. }),
        "{:?}",
        unhistoried.quality
    );
    assert_eq!(unhistoried.entries.len(), 2);
    let again = consolidate(&store).await.unwrap();
    assert_eq!(again.entries, clean.entries);
    let stored = moto
        .s3()
        .get_object()
        .bucket(BUCKET)
        .key(QUALITY_KEY)
        .send()
        .await
        .unwrap();
    assert!(stored.content_length().unwrap_or(0) > 0);
}
