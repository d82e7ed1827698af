//! The simulator's errors, each with the context of what it was doing.

use std::path::PathBuf;

/// Why the simulator (or one of the processes it runs) could not do something.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A program (moto, a function binary) could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A server did not listen in time.
    #[error("{what} did not start on {address} within {seconds} s")]
    NotListening {
        /// What was started.
        what: String,
        /// Where it should listen.
        address: String,
        /// How long we waited.
        seconds: u64,
    },
    /// Local I/O failed (a socket, a file).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An S3 call to the local server failed.
    #[error("S3 {operation} {uri}: {message}")]
    S3 {
        /// `GetObject`, `PutObject`, …
        operation: &'static str,
        /// The object.
        uri: String,
        /// The SDK's error, with its context.
        message: String,
    },
    /// A function process exited while it had an invocation.
    #[error("function {function} exited during an invocation ({status})")]
    Crashed {
        /// The function.
        function: String,
        /// Its exit status.
        status: String,
    },
    /// A function did not answer in time.
    #[error("function {function} did not answer within {seconds} s")]
    Timeout {
        /// The function.
        function: String,
        /// The limit.
        seconds: u64,
    },
    /// JSON that should have had a shape did not.
    #[error("{context}: {source}")]
    Json {
        /// What was read.
        context: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A crowd set could not be read.
    #[error("crowd set {path}: {message}")]
    Crowd {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A labeling-job API call made by the demo failed.
    #[error("{operation}: {message}")]
    Api {
        /// The operation.
        operation: &'static str,
        /// The error.
        message: String,
    },
}

impl SimError {
    /// A [`SimError::Io`] with context.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> SimError {
        let context = context.into();
        move |source| SimError::Io { context, source }
    }

    /// A [`SimError::Json`] with context.
    pub fn json(context: impl Into<String>) -> impl FnOnce(serde_json::Error) -> SimError {
        let context = context.into();
        move |source| SimError::Json { context, source }
    }
}
