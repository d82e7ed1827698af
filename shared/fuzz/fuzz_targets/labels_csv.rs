//! The labels CSV (`task,worker,label`) and the gold/audit CSV (`task,label`): never a panic, and a
//! table that reads gets consolidated without one.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| groundwork::fuzz_checks::labels_csv(data));
