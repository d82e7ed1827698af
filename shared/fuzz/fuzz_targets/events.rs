//! Lambda invocation bodies for the three functions: the raw event, then each function's request type,
//! the pre-human-task decision and the EventBridge event. Never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| groundwork::fuzz_checks::events(data));
