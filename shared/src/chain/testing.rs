//! Test values shared by the chain modules' tests: the `Animals` job (image classification, LAN
//! `animal`, Stopped, 2 of 4 objects labeled) and its manifests, from `tests/data/chain/`.

use crate::labeling_job::{LabelingJobDescription, LabelingJobStatus, Tag};
use crate::s3_uri::S3Uri;

use super::FetchedObject;

pub(crate) const DESCRIBE: &str = include_str!("../../tests/data/chain/describe-animals.json");
pub(crate) const OUTPUT_MANIFEST: &str =
    include_str!("../../tests/data/chain/output-animals.manifest");
pub(crate) const STAGING_MANIFEST: &str =
    include_str!("../../tests/data/chain/staging-animals.manifest");
pub(crate) const PLAN: &str = include_str!("../../tests/data/chain/plan-indoor-outdoor.json");
pub(crate) const OUTPUT_URI: &str = "s3://out-bucket/jobs/Animals/manifests/output/output.manifest";

/// The `Animals` job with its fixture tags replaced by `tags`.
pub(crate) fn job_with_tags(tags: &[(&str, &str)]) -> LabelingJobDescription {
    let mut job: LabelingJobDescription =
        serde_json::from_str(DESCRIBE).expect("the describe fixture parses");
    job.tags = tags
        .iter()
        .map(|(k, v)| Tag {
            key: (*k).to_owned(),
            value: (*v).to_owned(),
        })
        .collect();
    job
}

/// The `Animals` job as described, in `status`.
pub(crate) fn job_in(status: LabelingJobStatus) -> LabelingJobDescription {
    let mut job: LabelingJobDescription =
        serde_json::from_str(DESCRIBE).expect("the describe fixture parses");
    job.labeling_job_status = status;
    job
}

pub(crate) fn uri(s: &str) -> S3Uri {
    s.parse().expect("a test URI")
}

pub(crate) fn fetched(at: &str, body: &str) -> FetchedObject {
    FetchedObject {
        uri: uri(at),
        body: body.as_bytes().to_vec(),
    }
}
