//! A consolidation payload (the file at `payload.s3Uri`) through the whole request path, the task type
//! inferred from the answers as with `TASK_TYPE` unset: never a panic, and one response entry per
//! payload object with a readable id.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| groundwork::fuzz_checks::consolidation_payload(data));
