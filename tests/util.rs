//! Test harness pieces: a moto S3 server per test and the Lambda Runtime API that feeds events to a real
//! function binary (both from `groundwork-sim`), and paths to binaries and fixtures.

use std::path::PathBuf;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::Request;
use hyper::body::Incoming;
use serde_json::Value;

/// The repository's root (the workspace).
pub(crate) fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A real AWS sample in `tests/fixtures/aws` (copied with its source and licence, see its README).
pub(crate) fn fixture(path: &str) -> PathBuf {
    repo_dir().join("tests/fixtures/aws").join(path)
}

/// A binary of the workspace, built by `cargo test --workspace` into the same target dir as this test.
pub(crate) fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/integration-<hash> -> target/<profile>/<name>
    let dir = exe.parent().and_then(|p| p.parent()).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace` (or `make test`)",
        path.display()
    );
    path
}

/// The simulator's moto server (`groundwork_sim::moto`), started for one test and stopped when dropped.
pub(crate) struct Moto;

impl Moto {
    pub(crate) fn start() -> groundwork_sim::moto::Moto {
        groundwork_sim::moto::Moto::start().unwrap_or_else(|e| {
            panic!("{e}: run `make test`, which installs moto[server], or set MOTO_SERVER")
        })
    }
}

/// What a function answered for one event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// The response body.
    Response(Value),
    /// The error body (`errorType`, `errorMessage`).
    Error(Value),
}

/// Feeds `events` one by one to a real function binary run as Lambda runs it — the simulator's
/// [`groundwork_sim::lambda::Function`]: the binary under a local Lambda Runtime API on 127.0.0.1 — and
/// records what it answers.
pub(crate) struct LambdaRuntime {
    /// The invocation bodies, in order.
    events: Vec<Vec<u8>>,
}

impl LambdaRuntime {
    pub(crate) async fn start(events: Vec<Value>) -> LambdaRuntime {
        Self::start_raw(events.iter().map(|e| e.to_string().into_bytes()).collect()).await
    }

    /// Like [`LambdaRuntime::start`], with invocation bodies as given (they need not be JSON).
    pub(crate) async fn start_raw(bodies: Vec<Vec<u8>>) -> LambdaRuntime {
        LambdaRuntime { events: bodies }
    }

    /// Runs `binary` on the events, in order, until it has answered `count` of them; its logs go to
    /// stderr once it is done.
    pub(crate) async fn run(
        &self,
        binary: &str,
        env: &[(String, String)],
        count: usize,
    ) -> Vec<(String, Answer)> {
        let logs = tempfile::tempdir().expect("a temporary directory");
        let log = logs.path().join(format!("{binary}.log"));
        let function =
            groundwork_sim::lambda::Function::new(&bin(binary), env.to_vec(), log.clone());
        let mut answers = Vec::new();
        for (i, event) in self.events.iter().take(count).enumerate() {
            let answer =
                tokio::time::timeout(Duration::from_secs(120), function.invoke_raw(event.clone()))
                    .await
                    .unwrap_or_else(|_| panic!("{binary} did not answer event {i} in time"))
                    .unwrap_or_else(|e| panic!("{binary}: {e}"));
            let answer = match answer {
                groundwork_sim::lambda::Answer::Response(body) => {
                    Answer::Response(serde_json::from_slice(&body).unwrap_or(Value::Null))
                }
                groundwork_sim::lambda::Answer::Error(e) => Answer::Error(serde_json::json!({
                    "errorType": e.error_type,
                    "errorMessage": e.error_message,
                })),
            };
            answers.push((format!("request-{i}"), answer));
        }
        function.stop().await;
        if let Ok(text) = std::fs::read_to_string(&log) {
            eprint!("{text}");
        }
        answers
    }
}

/// Creates a bucket and puts objects.
pub(crate) async fn put(s3: &aws_sdk_s3::Client, bucket: &str, objects: &[(&str, Vec<u8>)]) {
    let _ = s3.create_bucket().bucket(bucket).send().await;
    for (key, body) in objects {
        s3.put_object()
            .bucket(bucket)
            .key(*key)
            .body(body.clone().into())
            .send()
            .await
            .expect("put_object on moto");
    }
}

/// Reads an object.
pub(crate) async fn get(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<Vec<u8>> {
    let out = s3.get_object().bucket(bucket).key(key).send().await.ok()?;
    Some(out.body.collect().await.ok()?.to_vec())
}

/// A test server's request body as JSON (`null` when it is empty or not JSON).
pub(crate) async fn json_body(req: Request<Incoming>) -> Value {
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    serde_json::from_slice(&body).unwrap_or(Value::Null)
}
