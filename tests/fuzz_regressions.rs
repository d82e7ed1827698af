//! The fuzz targets' checks (`groundwork::fuzz_checks`) replayed on stable over the inputs kept in
//! `shared/fuzz/regressions/<target>/`: the seeds the fuzzers start from, and every input that once broke a
//! check (none so far). `cargo fuzz` (nightly) finds new ones; this keeps them fixed.

use groundwork::fuzz_checks::TARGETS;

use crate::util::repo_dir;

#[test]
fn every_kept_fuzz_input_passes_its_check() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for (target, check) in TARGETS {
        let dir = repo_dir().join("shared/fuzz/regressions").join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{} holds no input", dir.display());
        for file in files {
            let data = std::fs::read(&file).unwrap();
            if std::panic::catch_unwind(|| check(&data)).is_err() {
                failures.push(file.display().to_string());
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(checked >= TARGETS.len());
}
