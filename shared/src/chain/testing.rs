//! Test values shared by the chain modules' tests: shorthands for the crate's `Animals` job
//! ([`crate::testing::DescribedJob`]) and its manifests, a follow-up plan, fetched objects.

use crate::labeling_job::{LabelingJobDescription, LabelingJobStatus};
use crate::s3_uri::S3Uri;
use crate::testing::DescribedJob;

use super::FetchedObject;

pub(crate) use crate::testing::animals::{OUTPUT_MANIFEST, OUTPUT_URI, STAGING_MANIFEST};
pub(crate) const PLAN: &str = include_str!("../../tests/data/chain/plan-indoor-outdoor.json");

/// The `Animals` job with its fixture tags replaced by `tags`.
pub(crate) fn job_with_tags(tags: &[(&str, &str)]) -> LabelingJobDescription {
    DescribedJob::animals().tags(tags).build()
}

/// The `Animals` job as described, in `status`.
pub(crate) fn job_in(status: LabelingJobStatus) -> LabelingJobDescription {
    DescribedJob::animals().status(status).build()
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
