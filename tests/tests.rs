//! End-to-end tests: the real binaries (the three Lambdas run under a local Lambda Runtime API, the CLI as
//! a process) against real local servers on 127.0.0.1 (moto for S3), started by the tests themselves.
//!
//! `make test` installs moto (PyPI) into a virtualenv and passes its path in `MOTO_SERVER`; a test that
//! needs it and cannot find it fails with that instruction rather than being skipped.

// Test harness code, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

// Shared helpers: servers, the runtime emulator, fixture paths.
mod util;

// The S3 adapter against a real S3-compatible server (conditional writes included).
mod s3_adapter;

// S3 faults (error statuses, resets, slow answers) injected by a proxy in front of moto.
mod s3_faults;

// The consolidation Lambda binary end to end: payload and answers in S3, response, worker quality.
mod consolidation_e2e;

// The auto-chainer Lambda binary end to end, against a fake SageMaker.
mod auto_chainer_e2e;

// The pre-human-task Lambda binary end to end.
mod pre_human_task_e2e;

// Bodies that are not JSON (truncated, too deep, invalid UTF-8), sent to each Lambda binary.
mod malformed_events_e2e;

// The bad-input corpus (`tests/bad_input/`) through each Lambda binary, every expected outcome asserted.
mod bad_input_e2e;

// The fuzz targets' checks over the inputs kept in `shared/fuzz/regressions/`.
mod fuzz_regressions;

// The CLI on the shared fixtures and on hand-broken copies.
mod cli;

// The simulated Ground Truth: jobs through the SageMaker API, the three functions, chaining.
mod sim_e2e;
