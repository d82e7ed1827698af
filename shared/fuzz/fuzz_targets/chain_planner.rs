//! The chain planner (follow-up plans, staging manifests, top-up rounds) on arbitrary descriptions,
//! manifests, plans and consolidation requests. Never a panic; chained jobs are valid and write only
//! where they may.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| groundwork::fuzz_checks::chain_planner(data));
