//! The labeling-job tags chaining reads and writes.
//!
//! A job *declares* how it chains with tags its creator sets (they can be changed after the job ends,
//! `sagemaker:AddTags`):
//!
//! | tag | value | effect |
//! |---|---|---|
//! | `groundwork:chain` | `continue` \| `off` | continue the job when it is Stopped/Failed; `off` also turns off its follow-ups |
//! | `groundwork:follow-up` | `s3://…/plan.json` \| `none` | the follow-up plan to run when the job Completes |
//! | `groundwork:staging-manifest` | `s3://…` | data objects to append to the chained job's input |
//!
//! Every chained job gets *lineage* tags, which is how the chainer knows where a job sits without
//! calling DescribeLabelingJob on its ancestors:
//!
//! | tag | value |
//! |---|---|
//! | `groundwork:root-job` | the name of the first job of the chain |
//! | `groundwork:parent-job` | the name of the job it was chained from |
//! | `groundwork:depth` | 1 for a job chained from a root, 2 below that, … |
//! | `groundwork:step` | `continue` or `follow-up` |
//! | `groundwork:labeled-at-start` | objects already labeled under its label attribute name in its input manifest (the no-progress rule compares the output with it) |
//!
//! A clone is a new root: it gets `groundwork:cloned-from` instead. Lineage tags are never copied from the
//! source job, and neither are `aws:` tags (reserved: CreateLabelingJob refuses them).

use crate::labeling_job::{LabelingJobDescription, Tag};
use crate::s3_uri::S3Uri;

use super::settings::ChainMode;

/// `groundwork:chain`.
pub const TAG_CHAIN: &str = "groundwork:chain";
/// `groundwork:follow-up`.
pub const TAG_FOLLOW_UP: &str = "groundwork:follow-up";
/// `groundwork:staging-manifest`.
pub const TAG_STAGING_MANIFEST: &str = "groundwork:staging-manifest";
/// `groundwork:root-job`.
pub const TAG_ROOT_JOB: &str = "groundwork:root-job";
/// `groundwork:parent-job`.
pub const TAG_PARENT_JOB: &str = "groundwork:parent-job";
/// `groundwork:depth`.
pub const TAG_DEPTH: &str = "groundwork:depth";
/// `groundwork:step`.
pub const TAG_STEP: &str = "groundwork:step";
/// `groundwork:labeled-at-start`.
pub const TAG_LABELED_AT_START: &str = "groundwork:labeled-at-start";
/// `groundwork:cloned-from`.
pub const TAG_CLONED_FROM: &str = "groundwork:cloned-from";
/// The `groundwork:follow-up` value that turns follow-ups off (set on follow-up jobs, so that a default
/// plan is not applied to its own result).
pub const FOLLOW_UP_NONE: &str = "none";
/// Tags CreateLabelingJob accepts, at most.
pub const MAX_TAGS: usize = 50;

/// Tags that describe one job's place in a chain, rewritten for every new job.
const LINEAGE_TAGS: &[&str] = &[
    TAG_ROOT_JOB,
    TAG_PARENT_JOB,
    TAG_DEPTH,
    TAG_STEP,
    TAG_LABELED_AT_START,
    TAG_CLONED_FROM,
];

/// A tag whose value the chainer cannot read. A configuration error: fix the tag (tags can be changed on
/// a finished job) and replay the event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tag `{key}` has the value `{value}`, expected {expected}")]
pub struct InvalidTag {
    /// The tag key.
    pub key: &'static str,
    /// Its value.
    pub value: String,
    /// What would have been accepted.
    pub expected: &'static str,
}

/// What a job's follow-up tag says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowUpTag {
    /// No tag: the function's default plan applies.
    Absent,
    /// `none`: no follow-up.
    Disabled,
    /// A plan.
    Plan(S3Uri),
}

/// How a job declares its chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    /// `groundwork:chain`, when set.
    pub mode: Option<ChainMode>,
    /// `groundwork:follow-up`.
    pub follow_up: FollowUpTag,
    /// `groundwork:staging-manifest`, when set.
    pub staging_manifest: Option<S3Uri>,
}

impl Declaration {
    /// Reads the declaration tags of `job`.
    pub fn of(job: &LabelingJobDescription) -> Result<Self, InvalidTag> {
        let mode = job
            .tag(TAG_CHAIN)
            .map(|v| {
                v.parse().map_err(|_| InvalidTag {
                    key: TAG_CHAIN,
                    value: v.to_owned(),
                    expected: "`continue` or `off`",
                })
            })
            .transpose()?;
        let follow_up = match job.tag(TAG_FOLLOW_UP).map(str::trim) {
            None | Some("") => FollowUpTag::Absent,
            Some(v) if v.eq_ignore_ascii_case(FOLLOW_UP_NONE) => FollowUpTag::Disabled,
            Some(v) => FollowUpTag::Plan(v.parse().map_err(|_| InvalidTag {
                key: TAG_FOLLOW_UP,
                value: v.to_owned(),
                expected: "an s3:// URI of a follow-up plan, or `none`",
            })?),
        };
        let staging_manifest = match job.tag(TAG_STAGING_MANIFEST).map(str::trim) {
            None | Some("") => None,
            Some(v) => Some(v.parse().map_err(|_| InvalidTag {
                key: TAG_STAGING_MANIFEST,
                value: v.to_owned(),
                expected: "an s3:// URI of a manifest",
            })?),
        };
        Ok(Declaration {
            mode,
            follow_up,
            staging_manifest,
        })
    }
}

/// Where a job sits in its chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lineage {
    /// The first job's name (the job's own name for a root).
    pub root_job: String,
    /// 0 for a root.
    pub depth: u32,
    /// Objects labeled under the job's label attribute name when it started (chained jobs only).
    pub labeled_at_start: Option<u64>,
}

impl Lineage {
    /// Reads the lineage tags of `job`; a job without them is a root.
    pub fn of(job: &LabelingJobDescription) -> Result<Self, InvalidTag> {
        let number = |key: &'static str| -> Result<Option<u64>, InvalidTag> {
            job.tag(key)
                .map(|v| {
                    v.trim().parse::<u64>().map_err(|_| InvalidTag {
                        key,
                        value: v.to_owned(),
                        expected: "a non-negative integer",
                    })
                })
                .transpose()
        };
        let depth = match number(TAG_DEPTH)? {
            None => 0,
            Some(d) => u32::try_from(d).map_err(|_| InvalidTag {
                key: TAG_DEPTH,
                value: d.to_string(),
                expected: "a chain depth",
            })?,
        };
        let root_job = job
            .tag(TAG_ROOT_JOB)
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .unwrap_or(&job.labeling_job_name)
            .to_owned();
        Ok(Lineage {
            root_job,
            depth,
            labeled_at_start: number(TAG_LABELED_AT_START)?,
        })
    }
}

fn is_reserved(key: &str) -> bool {
    key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:"))
}

/// The source job's tags a new job inherits: not `aws:` tags, not lineage tags, not `dropped`.
pub fn inherited_tags(job: &LabelingJobDescription, dropped: &[&str]) -> Vec<Tag> {
    job.tags
        .iter()
        .filter(|t| !is_reserved(&t.key))
        .filter(|t| !LINEAGE_TAGS.contains(&t.key.as_str()))
        .filter(|t| !dropped.contains(&t.key.as_str()))
        .cloned()
        .collect()
}

/// Sets `key` to `value` in `tags`, replacing an existing value.
pub fn set_tag(tags: &mut Vec<Tag>, key: &str, value: impl Into<String>) {
    let value = value.into();
    match tags.iter_mut().find(|t| t.key == key) {
        Some(t) => t.value = value,
        None => tags.push(Tag {
            key: key.to_owned(),
            value,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::testing::job_with_tags;

    #[test]
    fn a_job_without_tags_is_a_root_without_declaration() {
        let job = job_with_tags(&[]);
        let lineage = Lineage::of(&job).unwrap();
        assert_eq!(lineage.depth, 0);
        assert_eq!(lineage.root_job, job.labeling_job_name);
        assert_eq!(lineage.labeled_at_start, None);
        let decl = Declaration::of(&job).unwrap();
        assert_eq!(decl.mode, None);
        assert_eq!(decl.follow_up, FollowUpTag::Absent);
        assert_eq!(decl.staging_manifest, None);
    }

    #[test]
    fn reads_declarations_and_lineage() {
        let job = job_with_tags(&[
            (TAG_CHAIN, "Continue"),
            (TAG_FOLLOW_UP, "s3://plans/p.json"),
            (TAG_STAGING_MANIFEST, "s3://data/new.manifest"),
            (TAG_ROOT_JOB, "Animals"),
            (TAG_DEPTH, "3"),
            (TAG_LABELED_AT_START, "40"),
        ]);
        let decl = Declaration::of(&job).unwrap();
        assert_eq!(decl.mode, Some(ChainMode::Continue));
        assert_eq!(
            decl.follow_up,
            FollowUpTag::Plan("s3://plans/p.json".parse().unwrap())
        );
        assert_eq!(
            decl.staging_manifest.unwrap().to_string(),
            "s3://data/new.manifest"
        );
        let lineage = Lineage::of(&job).unwrap();
        assert_eq!(lineage.root_job, "Animals");
        assert_eq!(lineage.depth, 3);
        assert_eq!(lineage.labeled_at_start, Some(40));
        let none = job_with_tags(&[(TAG_FOLLOW_UP, "NONE")]);
        assert_eq!(
            Declaration::of(&none).unwrap().follow_up,
            FollowUpTag::Disabled
        );
    }

    #[test]
    fn bad_values_are_named() {
        for (key, value) in [
            (TAG_CHAIN, "yes"),
            (TAG_FOLLOW_UP, "plan.json"),
            (TAG_STAGING_MANIFEST, "http://x"),
        ] {
            let err = Declaration::of(&job_with_tags(&[(key, value)])).unwrap_err();
            assert_eq!(err.key, key);
            assert!(err.to_string().contains(value), "{err}");
        }
        for (key, value) in [
            (TAG_DEPTH, "two"),
            (TAG_DEPTH, "99999999999"),
            (TAG_LABELED_AT_START, "-1"),
        ] {
            let err = Lineage::of(&job_with_tags(&[(key, value)])).unwrap_err();
            assert_eq!(err.key, key);
        }
    }

    #[test]
    fn inherits_user_tags_only() {
        let job = job_with_tags(&[
            ("team", "vision"),
            ("aws:cloudformation:stack-name", "s"),
            ("AWS:x", "y"),
            (TAG_DEPTH, "1"),
            (TAG_ROOT_JOB, "r"),
            (TAG_CHAIN, "continue"),
            (TAG_STAGING_MANIFEST, "s3://b/s"),
        ]);
        let keys: Vec<String> = inherited_tags(&job, &[TAG_STAGING_MANIFEST])
            .into_iter()
            .map(|t| t.key)
            .collect();
        assert_eq!(keys, ["team", TAG_CHAIN]);
    }

    #[test]
    fn set_tag_replaces_or_appends() {
        let mut tags = vec![];
        set_tag(&mut tags, "a", "1");
        set_tag(&mut tags, "b", "2");
        set_tag(&mut tags, "a", "3");
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0].value, "3");
    }
}
