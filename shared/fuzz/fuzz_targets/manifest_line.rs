//! A manifest line, as the chainer and the CLI read it, and a `dataObject`, as pre-human-task reads it:
//! never a panic; a line that parses writes back byte for byte while unchanged.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| groundwork::fuzz_checks::manifest_line(data));
