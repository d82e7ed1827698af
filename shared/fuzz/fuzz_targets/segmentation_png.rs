//! A semantic-segmentation answer whose PNG is the fuzzer's bytes, beside a valid one: never a panic,
//! and the object gets an entry (a label or a failure).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| groundwork::fuzz_checks::segmentation_png(data));
