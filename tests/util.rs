//! Test harness pieces: a moto S3 server per test, a Lambda Runtime API emulator that feeds events to a
//! real function binary and collects its answers, and paths to binaries and fixtures.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::Notify;

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

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// A moto S3 server on 127.0.0.1, stopped when dropped.
pub(crate) struct Moto {
    child: Child,
    pub(crate) endpoint: String,
}

impl Moto {
    pub(crate) fn start() -> Moto {
        let program = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".to_owned());
        let port = free_port();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start `{program}` ({e}): run `make test`, which installs moto[server], or set MOTO_SERVER")
            });
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "moto did not start on {addr}");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// An S3 client for this server.
    pub(crate) fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "test", "test", None, None, "static",
            ))
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// Environment for a function binary talking to this server.
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL_S3", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

#[derive(Default)]
struct RuntimeState {
    events: VecDeque<(String, Bytes)>,
    answers: Vec<(String, Answer)>,
}

/// A Lambda Runtime API on 127.0.0.1 that hands out `events` one by one to a real function binary and
/// records what it answers, the way the Lambda service does.
pub(crate) struct LambdaRuntime {
    state: Arc<Mutex<RuntimeState>>,
    answered: Arc<Notify>,
    pub(crate) address: SocketAddr,
}

impl LambdaRuntime {
    pub(crate) async fn start(events: Vec<Value>) -> LambdaRuntime {
        Self::start_raw(events.iter().map(|e| e.to_string().into_bytes()).collect()).await
    }

    /// Like [`LambdaRuntime::start`], with invocation bodies as given (they need not be JSON).
    pub(crate) async fn start_raw(bodies: Vec<Vec<u8>>) -> LambdaRuntime {
        let state = Arc::new(Mutex::new(RuntimeState {
            events: bodies
                .into_iter()
                .enumerate()
                .map(|(i, e)| (format!("request-{i}"), Bytes::from(e)))
                .collect(),
            answers: Vec::new(),
        }));
        let answered = Arc::new(Notify::new());
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let address = listener.local_addr().expect("address");
        let (s, n) = (state.clone(), answered.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (s, n) = (s.clone(), n.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        runtime_api(req, s.clone(), n.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        LambdaRuntime {
            state,
            answered,
            address,
        }
    }

    /// Runs `binary` against this runtime until it has answered `count` events (or 120 s passed).
    pub(crate) async fn run(
        &self,
        binary: &str,
        env: &[(String, String)],
        count: usize,
    ) -> Vec<(String, Answer)> {
        let mut child = tokio::process::Command::new(bin(binary))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", self.address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", binary)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "test")
            .envs(env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start the function binary");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let done = self.state.lock().expect("state").answers.len() >= count;
            if done {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{binary} exited early with {status}");
            }
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(
                !remaining.is_zero(),
                "{binary} did not answer {count} events in time"
            );
            let _ = tokio::time::timeout(
                remaining.min(Duration::from_millis(500)),
                self.answered.notified(),
            )
            .await;
        }
        let _ = child.kill().await;
        self.state.lock().expect("state").answers.clone()
    }
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

async fn runtime_api(
    req: Request<Incoming>,
    state: Arc<Mutex<RuntimeState>>,
    answered: Arc<Notify>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    if path == "/2018-06-01/runtime/invocation/next" {
        loop {
            let next = state.lock().expect("state").events.pop_front();
            if let Some((id, event)) = next {
                let deadline = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() + 300_000)
                    .unwrap_or_default();
                let mut response = reply(StatusCode::OK, event);
                let headers = response.headers_mut();
                headers.insert("Lambda-Runtime-Aws-Request-Id", id.parse().expect("header"));
                headers.insert(
                    "Lambda-Runtime-Deadline-Ms",
                    deadline.to_string().parse().expect("header"),
                );
                headers.insert(
                    "Lambda-Runtime-Invoked-Function-Arn",
                    "arn:aws:lambda:us-east-1:111111111111:function:test"
                        .parse()
                        .expect("header"),
                );
                return Ok(response);
            }
            // Long poll, as the real API does, until the test stops the function.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let value = json_body(req).await;
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["2018-06-01", "runtime", "invocation", id, "response"] => {
            state
                .lock()
                .expect("state")
                .answers
                .push(((*id).to_owned(), Answer::Response(value)));
            answered.notify_waiters();
            Ok(reply(StatusCode::ACCEPTED, ""))
        }
        ["2018-06-01", "runtime", "invocation", id, "error"] => {
            state
                .lock()
                .expect("state")
                .answers
                .push(((*id).to_owned(), Answer::Error(value)));
            answered.notify_waiters();
            Ok(reply(StatusCode::ACCEPTED, ""))
        }
        ["2018-06-01", "runtime", "init", "error"] => {
            state
                .lock()
                .expect("state")
                .answers
                .push(("init".to_owned(), Answer::Error(value)));
            answered.notify_waiters();
            Ok(reply(StatusCode::ACCEPTED, ""))
        }
        _ => Ok(reply(StatusCode::NOT_FOUND, "")),
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
