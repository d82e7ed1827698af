//! moto's S3 server on 127.0.0.1, started and stopped by whoever holds a [`Moto`].

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use groundwork::S3Uri;

use crate::error::SimError;

/// The moto server program: `MOTO_SERVER`, else the virtualenv `make test` and `make demo` install
/// (`~/.cache/groundwork-venv`), else `moto_server` on the `PATH`.
pub fn moto_program() -> PathBuf {
    if let Some(p) = std::env::var_os("MOTO_SERVER") {
        return PathBuf::from(p);
    }
    if let Some(home) = std::env::var_os("HOME") {
        let venv = PathBuf::from(home).join(".cache/groundwork-venv/bin/moto_server");
        if venv.exists() {
            return venv;
        }
    }
    PathBuf::from("moto_server")
}

/// A free port on 127.0.0.1.
pub fn free_port() -> Result<u16, SimError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(SimError::io("find a free port on 127.0.0.1"))
}

/// A moto S3 server on 127.0.0.1, killed when dropped.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
}

impl Moto {
    /// Starts moto and waits until it listens (60 s at most).
    pub fn start() -> Result<Moto, SimError> {
        let program = moto_program();
        let port = free_port()?;
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| SimError::Spawn {
                program: program.clone(),
                source,
            })?;
        let mut moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                moto.stop();
                return Err(SimError::NotListening {
                    what: program.display().to_string(),
                    address: addr.to_string(),
                    seconds: 60,
                });
            }
            if let Ok(Some(status)) = moto.child.try_wait() {
                return Err(SimError::Spawn {
                    program,
                    source: std::io::Error::other(format!("exited with {status}")),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(moto)
    }

    /// An S3 client for this server.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        s3_client(&self.endpoint)
    }

    /// The environment a function binary needs to talk to this server (and nothing else of AWS).
    pub fn env(&self) -> Vec<(String, String)> {
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

    /// Kills the server and reaps it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An S3 client for a local endpoint (path-style, static test credentials).
pub fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Reads an object.
pub async fn get(s3: &aws_sdk_s3::Client, uri: &S3Uri) -> Result<Vec<u8>, SimError> {
    let err = |message: String| SimError::S3 {
        operation: "GetObject",
        uri: uri.to_string(),
        message,
    };
    let out = s3
        .get_object()
        .bucket(uri.bucket())
        .key(uri.key())
        .send()
        .await
        .map_err(|e| err(aws_sdk_s3::error::DisplayErrorContext(&e).to_string()))?;
    let body = out.body.collect().await.map_err(|e| err(e.to_string()))?;
    Ok(body.to_vec())
}

/// Writes an object.
pub async fn put(s3: &aws_sdk_s3::Client, uri: &S3Uri, body: Vec<u8>) -> Result<(), SimError> {
    s3.put_object()
        .bucket(uri.bucket())
        .key(uri.key())
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|e| SimError::S3 {
            operation: "PutObject",
            uri: uri.to_string(),
            message: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
        })?;
    Ok(())
}

/// Creates a bucket (an existing one is fine).
pub async fn create_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<(), SimError> {
    match s3.create_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let text = aws_sdk_s3::error::DisplayErrorContext(&e).to_string();
            if text.contains("BucketAlreadyOwnedByYou") || text.contains("BucketAlreadyExists") {
                Ok(())
            } else {
                Err(SimError::S3 {
                    operation: "CreateBucket",
                    uri: format!("s3://{bucket}"),
                    message: text,
                })
            }
        }
    }
}
