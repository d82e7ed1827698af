//! Lambda as the Lambda service runs a function: the real binary as a child process speaking the Lambda
//! Runtime API, which this module serves on 127.0.0.1 (one API per function, as each sandbox has its
//! own `AWS_LAMBDA_RUNTIME_API`). The process is kept warm between invocations, one invocation at a time,
//! and started again after a crash. Each function records its cold starts (exec → the first
//! `/invocation/next`), the time of every invocation and its peak resident memory (`VmHWM` from /proc).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::error::SimError;

/// The error body a function posts to `/invocation/<id>/error` (or `/init/error`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionError {
    /// e.g. `Retryable.PayloadUnavailable`.
    #[serde(default)]
    pub error_type: String,
    /// The message.
    #[serde(default)]
    pub error_message: String,
}

/// What one invocation gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The response body (JSON).
    Response(Bytes),
    /// The function reported an error.
    Error(FunctionError),
}

/// What a function did over the simulator's life.
#[derive(Debug, Clone, Default)]
pub struct FunctionStats {
    /// The binary's name.
    pub name: String,
    /// One per process started: exec → first event served.
    pub cold_starts: Vec<Duration>,
    /// One per answered invocation: event handed out → answer received.
    pub invocations: Vec<Duration>,
    /// The highest `VmHWM` of any of its processes, KiB.
    pub peak_rss_kib: u64,
    /// Processes that exited while they had an invocation.
    pub crashes: u32,
    /// Invocations answered with an error.
    pub errors: u32,
}

struct Pending {
    body: Bytes,
    reply: oneshot::Sender<Answer>,
}

#[derive(Default)]
struct ApiState {
    inflight: HashMap<String, oneshot::Sender<Answer>>,
    next_id: u64,
    /// When the current process first asked for an event.
    first_poll: Option<Instant>,
}

/// One function: its Runtime API and, while warm, its process.
pub struct Function {
    name: String,
    binary: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
    process: tokio::sync::Mutex<Option<Running>>,
    stats: Mutex<FunctionStats>,
    timeout: Duration,
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Function")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A process and the Runtime API only it talks to: a process started after a crash gets a new API, so
/// a request the dead one left pending cannot swallow the next event.
struct Running {
    child: tokio::process::Child,
    queue: mpsc::Sender<Pending>,
    api: Arc<Mutex<ApiState>>,
    server: tokio::task::JoinHandle<()>,
    pid: Option<u32>,
    spawned: Instant,
    cold: bool,
}

impl Function {
    /// Serves a Runtime API for `binary` (not started until the first invocation). Its stdout and
    /// stderr (the function's logs) are appended to `log`.
    pub fn new(binary: &Path, env: Vec<(String, String)>, log: PathBuf) -> Function {
        let name = binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Function {
            stats: Mutex::new(FunctionStats {
                name: name.clone(),
                ..FunctionStats::default()
            }),
            name,
            binary: binary.to_owned(),
            env,
            log,
            process: tokio::sync::Mutex::new(None),
            timeout: Duration::from_secs(120),
        }
    }

    /// The binary's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A copy of the statistics so far.
    pub fn stats(&self) -> FunctionStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    async fn spawn(&self) -> Result<Running, SimError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(SimError::io("bind the Lambda Runtime API on 127.0.0.1"))?;
        let address: SocketAddr = listener
            .local_addr()
            .map_err(SimError::io("Runtime API address"))?;
        let (queue, receiver) = mpsc::channel::<Pending>(16);
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        let api = Arc::new(Mutex::new(ApiState::default()));
        let state = api.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (receiver, state) = (receiver.clone(), state.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        runtime_api(req, receiver.clone(), state.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(SimError::io(format!("open {}", self.log.display())))?;
        let log_err = log
            .try_clone()
            .map_err(SimError::io(format!("open {}", self.log.display())))?;
        let child = tokio::process::Command::new(&self.binary)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &self.name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "sim")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", self.name),
            )
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| SimError::Spawn {
                program: self.binary.clone(),
                source,
            })?;
        Ok(Running {
            queue,
            api,
            server,
            pid: child.id(),
            child,
            spawned: Instant::now(),
            cold: true,
        })
    }

    /// Invokes the function with `event` and waits for its answer. A process that exits meanwhile is
    /// reported as [`SimError::Crashed`] and started afresh by the next invocation.
    pub async fn invoke<E: Serialize>(&self, event: &E) -> Result<Answer, SimError> {
        let body = serde_json::to_vec(event).map_err(SimError::json("serialise an event"))?;
        self.invoke_raw(body).await
    }

    /// Invokes the function with an event body as given: it need not be JSON (malformed events are
    /// what the functions must survive).
    pub async fn invoke_raw(&self, body: Vec<u8>) -> Result<Answer, SimError> {
        let mut process = self.process.lock().await;
        let mut running = match process.take() {
            Some(mut r) => match r.child.try_wait() {
                Ok(None) => r,
                _ => {
                    r.server.abort();
                    self.spawn().await?
                }
            },
            None => self.spawn().await?,
        };
        let (reply, mut answer) = oneshot::channel();
        let sent = Instant::now();
        if running
            .queue
            .send(Pending {
                body: Bytes::from(body),
                reply,
            })
            .await
            .is_err()
        {
            return Err(SimError::Crashed {
                function: self.name.clone(),
                status: "the Runtime API stopped".to_owned(),
            });
        }
        let deadline = sent + self.timeout;
        let result = loop {
            tokio::select! {
                got = &mut answer => match got {
                    Ok(a) => break Ok(a),
                    Err(_) => break Err(SimError::Crashed { function: self.name.clone(), status: "invocation dropped".to_owned() }),
                },
                () = tokio::time::sleep(Duration::from_millis(20)) => {
                    if let Ok(Some(status)) = running.child.try_wait() {
                        running.server.abort();
                        if let Ok(mut s) = self.stats.lock() { s.crashes += 1; }
                        return Err(SimError::Crashed { function: self.name.clone(), status: status.to_string() });
                    }
                    if Instant::now() > deadline {
                        let _ = running.child.kill().await;
                        running.server.abort();
                        return Err(SimError::Timeout { function: self.name.clone(), seconds: self.timeout.as_secs() });
                    }
                }
            }
        };
        let elapsed = sent.elapsed();
        let rss = running.pid.and_then(peak_rss_kib);
        if let Ok(mut s) = self.stats.lock() {
            if running.cold {
                let first = running.api.lock().ok().and_then(|a| a.first_poll);
                if let Some(first) = first {
                    s.cold_starts
                        .push(first.saturating_duration_since(running.spawned));
                }
            }
            s.invocations.push(elapsed);
            if let Some(rss) = rss {
                s.peak_rss_kib = s.peak_rss_kib.max(rss);
            }
            if matches!(result, Ok(Answer::Error(_))) {
                s.errors += 1;
            }
        }
        running.cold = false;
        *process = Some(running);
        result
    }

    /// Stops the process, if it runs.
    pub async fn stop(&self) {
        let mut process = self.process.lock().await;
        if let Some(mut running) = process.take() {
            if let Some(rss) = running.pid.and_then(peak_rss_kib)
                && let Ok(mut s) = self.stats.lock()
            {
                s.peak_rss_kib = s.peak_rss_kib.max(rss);
            }
            let _ = running.child.kill().await;
            running.server.abort();
        }
    }

    /// The running process's id (tests kill it to check the restart).
    pub async fn pid(&self) -> Option<u32> {
        self.process.lock().await.as_ref().and_then(|r| r.pid)
    }
}

/// `VmHWM` (peak resident set) of a process, KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

async fn runtime_api(
    req: Request<Incoming>,
    receiver: Arc<tokio::sync::Mutex<mpsc::Receiver<Pending>>>,
    state: Arc<Mutex<ApiState>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    if path == "/2018-06-01/runtime/invocation/next" {
        if let Ok(mut s) = state.lock() {
            s.first_poll.get_or_insert_with(Instant::now);
        }
        // Long poll, as the real API does, until there is an event.
        let next = receiver.lock().await.recv().await;
        let Some(pending) = next else {
            return Ok(reply(StatusCode::GONE, ""));
        };
        let id = match state.lock() {
            Ok(mut s) => {
                s.next_id += 1;
                let id = format!("sim-{:08}", s.next_id);
                s.inflight.insert(id.clone(), pending.reply);
                id
            }
            Err(_) => return Ok(reply(StatusCode::INTERNAL_SERVER_ERROR, "")),
        };
        let deadline = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() + 300_000)
            .unwrap_or_default();
        let mut response = reply(StatusCode::OK, pending.body);
        let headers = response.headers_mut();
        let pairs = [
            ("Lambda-Runtime-Aws-Request-Id", id),
            ("Lambda-Runtime-Deadline-Ms", deadline.to_string()),
            (
                "Lambda-Runtime-Invoked-Function-Arn",
                "arn:aws:lambda:us-east-1:111122223333:function:sim".to_owned(),
            ),
        ];
        for (k, v) in pairs {
            if let Ok(v) = v.parse() {
                headers.insert(k, v);
            }
        }
        return Ok(response);
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (id, answer) = match parts.as_slice() {
        ["2018-06-01", "runtime", "invocation", id, "response"] => {
            ((*id).to_owned(), Answer::Response(body))
        }
        ["2018-06-01", "runtime", "invocation", id, "error"] => (
            (*id).to_owned(),
            Answer::Error(serde_json::from_slice(&body).unwrap_or_default()),
        ),
        // An init error: the process exits next; the invocation reports the crash.
        ["2018-06-01", "runtime", "init", "error"] => {
            return Ok(reply(StatusCode::ACCEPTED, ""));
        }
        _ => return Ok(reply(StatusCode::NOT_FOUND, "")),
    };
    let sender = state.lock().ok().and_then(|mut s| s.inflight.remove(&id));
    match sender {
        Some(sender) => {
            let _ = sender.send(answer);
            Ok(reply(StatusCode::ACCEPTED, ""))
        }
        None => Ok(reply(StatusCode::BAD_REQUEST, "unknown request id")),
    }
}
