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

/// Attempts at a free port before giving up: another process may take the port between the moment it
/// is found free and the moment moto binds it.
const PORT_ATTEMPTS: usize = 5;

/// What one start of moto came to.
enum Started {
    /// It says it serves on its port, and the port answers.
    Listening(Moto),
    /// It lost its port to another program (its own words on stderr): try another.
    PortTaken(String),
}

impl Moto {
    /// Starts moto and waits until it listens (60 s at most). moto's own "Running on" line is awaited,
    /// not only a connection: a port that another server took after it was found free would answer too,
    /// and two tests would share a server without a word. A lost port is retried on a new one; moto's
    /// stderr is kept (the last lines go into every error).
    pub fn start() -> Result<Moto, SimError> {
        let program = moto_program();
        let mut lost = Vec::new();
        for _ in 0..PORT_ATTEMPTS {
            match Moto::start_on(&program, free_port()?)? {
                Started::Listening(moto) => return Ok(moto),
                Started::PortTaken(stderr) => lost.push(stderr),
            }
        }
        Err(SimError::Spawn {
            program,
            source: std::io::Error::other(format!(
                "lost its port {PORT_ATTEMPTS} times in a row; last stderr: {}",
                lost.last().map(String::as_str).unwrap_or_default()
            )),
        })
    }

    fn start_on(program: &std::path::Path, port: u16) -> Result<Started, SimError> {
        use std::io::BufRead;
        use std::sync::mpsc;

        let mut child = Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| SimError::Spawn {
                program: program.to_owned(),
                source,
            })?;
        // moto writes its startup and request lines to stderr: read them all (a full pipe would stall
        // it), pass on the ones before it serves, keep the last few for errors.
        let (lines, seen) = mpsc::channel::<String>();
        if let Some(stderr) = child.stderr.take() {
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stderr)
                    .lines()
                    .map_while(Result::ok)
                {
                    // Once moto serves nobody listens any more: the lines are drained and dropped.
                    let _ = lines.send(line);
                }
            });
        }
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let running = format!("Running on http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut tail: Vec<String> = Vec::new();
        let mut serving = false;
        loop {
            while let Ok(line) = seen.try_recv() {
                serving |= line.contains(&running);
                tail.push(line);
                if tail.len() > 20 {
                    tail.remove(0);
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                // Give the reader a moment to pass on moto's last words.
                std::thread::sleep(Duration::from_millis(50));
                tail.extend(seen.try_iter());
                let stderr = tail.join("\n");
                if stderr.contains("in use") {
                    return Ok(Started::PortTaken(stderr));
                }
                return Err(SimError::Spawn {
                    program: program.to_owned(),
                    source: std::io::Error::other(format!("exited with {status}: {stderr}")),
                });
            }
            if serving && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(Started::Listening(Moto {
                    child,
                    endpoint: format!("http://127.0.0.1:{port}"),
                }));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(SimError::NotListening {
                    what: format!("{} (stderr: {})", program.display(), tail.join(" | ")),
                    address: addr.to_string(),
                    seconds: 60,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_taken_by_another_server_is_seen_not_shared() {
        // Another program serves on the port before moto can bind it: the connection would succeed,
        // moto's own words say it lost the port.
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        match Moto::start_on(&moto_program(), port).unwrap() {
            Started::PortTaken(stderr) => assert!(stderr.contains("in use"), "{stderr}"),
            Started::Listening(_) => panic!("moto cannot listen on a taken port"),
        }
        let moto = Moto::start().unwrap();
        assert_ne!(moto.endpoint, format!("http://127.0.0.1:{port}"));
    }
}
