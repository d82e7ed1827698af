//! Deterministic names for chained and cloned labeling jobs.
//!
//! CreateLabelingJob has no client token: the job name is the only idempotency key SageMaker offers
//! (`contracts.md` §7.1 — names are unique per account and region, case-insensitively, and a reused name
//! fails with `ResourceInUse`). So the name of a chained job is a pure function of the job it comes from
//! and the step taken, and a duplicate EventBridge delivery computes the same name and cannot start a
//! second job.
//!
//! Shape: `<root name, truncated>-<c|f><depth>-<8 hex>`, e.g. `animals-c2-1f0c9a3e`. The root name keeps
//! the lineage readable in the console; the depth says how far down the chain the job is; the hash (sha256
//! of the source job's lower-cased ARN and the step) makes the name unique even when two chains share a
//! truncated root. Clones are `<source name, truncated>-clone-<8 hex>`.

use sha2::{Digest, Sha256};

/// The longest job name the API accepts.
pub const MAX_JOB_NAME_CHARS: usize = 63;

/// Hex digits of the hash in a generated name: 32 bits, plenty to tell apart the few chains of a root.
const HASH_CHARS: usize = 8;

/// Whether `name` matches the API's `[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}` as a whole.
pub fn is_valid_job_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_alphanumeric();
    (1..=MAX_JOB_NAME_CHARS).contains(&bytes.len())
        && bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes.iter().all(|b| alnum(b) || *b == b'-')
}

/// The name of the job chained from `source_arn` at `depth`. `step_letter` is `c` (continue) or `f`
/// (follow-up); `step_key` tells apart different steps from the same source (the follow-up's label
/// attribute name, say).
pub fn chained_job_name(
    root_name: &str,
    step_letter: char,
    depth: u32,
    source_arn: &str,
    step_key: &str,
) -> String {
    let hash = short_hash(&[
        &source_arn.to_lowercase(),
        &step_letter.to_string(),
        step_key,
    ]);
    with_suffix(root_name, &format!("-{step_letter}{depth}-{hash}"))
}

/// The name of a clone of `source_arn` reading `manifest_uri`.
pub fn clone_job_name(source_name: &str, source_arn: &str, manifest_uri: &str) -> String {
    let hash = short_hash(&[&source_arn.to_lowercase(), "clone", manifest_uri]);
    with_suffix(source_name, &format!("-clone-{hash}"))
}

/// `prefix` made name-safe and cut so that `prefix + suffix` fits in 63 characters.
fn with_suffix(prefix: &str, suffix: &str) -> String {
    let room = MAX_JOB_NAME_CHARS.saturating_sub(suffix.len());
    let mut base: String = sanitize(prefix).chars().take(room).collect();
    // Cutting may leave a trailing hyphen; harmless for the pattern (`-*` may repeat), ugly to read.
    while base.ends_with('-') {
        base.pop();
    }
    if base.is_empty() {
        base.push_str("job");
    }
    format!("{base}{suffix}")
}

/// Keeps ASCII letters, digits and hyphens (a root name read back from a tag could hold anything), with
/// no leading hyphen.
fn sanitize(name: &str) -> String {
    let kept: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    kept.trim_start_matches('-').to_owned()
}

/// The first [`HASH_CHARS`] hex digits of sha256 over `parts`, each ended by a newline (so that
/// `("ab", "c")` and `("a", "bc")` differ).
fn short_hash(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update(b"\n");
    }
    let mut hex = hex::encode(hasher.finalize());
    hex.truncate(HASH_CHARS);
    hex
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ARN: &str = "arn:aws:sagemaker:us-east-1:111111111111:labeling-job/animals";

    #[test]
    fn chained_names_are_deterministic_and_case_insensitive_in_the_arn() {
        let a = chained_job_name("Animals", 'c', 1, ARN, "continue");
        let b = chained_job_name("Animals", 'c', 1, &ARN.to_uppercase(), "continue");
        assert_eq!(a, b);
        assert!(a.starts_with("Animals-c1-"), "{a}");
        assert_eq!(a.len(), "Animals-c1-".len() + HASH_CHARS);
        assert!(is_valid_job_name(&a));
    }

    #[test]
    fn different_steps_or_sources_give_different_names() {
        let cont = chained_job_name("animals", 'c', 1, ARN, "continue");
        let follow = chained_job_name("animals", 'f', 1, ARN, "indoor");
        let follow2 = chained_job_name("animals", 'f', 1, ARN, "outdoor");
        let other = chained_job_name("animals", 'c', 1, &format!("{ARN}-2"), "continue");
        let all = [&cont, &follow, &follow2, &other];
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert_ne!(x, y);
            }
        }
    }

    #[test]
    fn long_roots_are_truncated_to_63_characters() {
        let root = "a".repeat(80);
        let name = chained_job_name(&root, 'f', 12, ARN, "x");
        assert_eq!(name.len(), MAX_JOB_NAME_CHARS);
        assert!(is_valid_job_name(&name));
        let hyphen_at_cut = format!("{}-{}", "a".repeat(49), "b".repeat(30));
        let name = chained_job_name(&hyphen_at_cut, 'c', 1, ARN, "continue");
        assert!(!name.contains("--"), "{name}");
        assert!(is_valid_job_name(&name));
    }

    #[test]
    fn odd_roots_are_sanitised() {
        let name = chained_job_name("-my job_ü!", 'c', 3, ARN, "continue");
        assert!(name.starts_with("myjob-c3-"), "{name}");
        let empty = chained_job_name("___", 'c', 1, ARN, "continue");
        assert!(empty.starts_with("job-c1-"), "{empty}");
    }

    #[test]
    fn clone_names_depend_on_the_manifest() {
        let a = clone_job_name("Animals", ARN, "s3://b/in.manifest");
        let b = clone_job_name("Animals", ARN, "s3://b/other.manifest");
        assert_ne!(a, b);
        assert!(a.starts_with("Animals-clone-"), "{a}");
        assert!(is_valid_job_name(&a));
    }

    #[test]
    fn validates_the_api_pattern() {
        for ok in ["a", "A1", "a--b", "job-c1-0a1b2c3d"] {
            assert!(is_valid_job_name(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a_b", "a b", "é"] {
            assert!(!is_valid_job_name(bad), "{bad}");
        }
        assert!(is_valid_job_name(&"a".repeat(63)));
        assert!(!is_valid_job_name(&"a".repeat(64)));
    }

    proptest! {
        #[test]
        fn every_generated_name_is_valid(root in ".{0,100}", depth in 0u32..10_000, key in ".{0,20}") {
            let name = chained_job_name(&root, 'c', depth, ARN, &key);
            prop_assert!(is_valid_job_name(&name), "{}", name);
            let clone = clone_job_name(&root, ARN, &key);
            prop_assert!(is_valid_job_name(&clone), "{}", clone);
        }
    }
}
