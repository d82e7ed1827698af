//! The test kit of this crate and of the crates on it (behind the `test-util` feature): one copy of what
//! their tests share.
//!
//! | item | what it is |
//! |---|---|
//! | [`block_on`] | runs a future over the in-memory ports to completion, without an async runtime |
//! | [`DescribedJob`] | a DescribeLabelingJob answer, typed, built from the `Animals` job with setters for what tests vary |
//! | [`animals`] | the `Animals` job's manifests, as its output and a chain's staging manifest hold them |
//! | [`fakes`] | the in-memory ports (object store, labeling jobs) |
//!
//! The fakes stay in [`crate::ports::fakes`], beside the traits they implement (a new port method is
//! written next to its fake), and are re-exported here so that a test needs one import path.

pub use crate::ports::fakes;

use crate::labeling_job::{LabelingJobDescription, LabelingJobOutput, LabelingJobStatus, Tag};
use crate::task_type::TaskType;

/// Runs a future whose awaits are all on the in-memory fakes (always ready) to completion, without an
/// async runtime (this crate has none).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// The `Animals` job's data: an image-classification job (label attribute name `animal`), 2 of 4
/// objects labeled, and the files a chain of it reads.
pub mod animals {
    /// What `aws sagemaker describe-labeling-job` prints for it (stopped, ISO times).
    pub const DESCRIBE: &str = include_str!("../tests/data/chain/describe-animals.json");
    /// Its output manifest: 2 of 4 objects labeled, one with confidence 0.55.
    pub const OUTPUT_MANIFEST: &str = include_str!("../tests/data/chain/output-animals.manifest");
    /// A staging manifest of a chain that continues it.
    pub const STAGING_MANIFEST: &str = include_str!("../tests/data/chain/staging-animals.manifest");
    /// Where its description says the output manifest is.
    pub const OUTPUT_URI: &str = "s3://out-bucket/jobs/Animals/manifests/output/output.manifest";
}

/// A DescribeLabelingJob answer for a test: the `Animals` job ([`animals::DESCRIBE`]) with what the test
/// changes set. [`Self::build`] gives the typed description (for the in-memory ports),
/// [`Self::wire_json`] the JSON SageMaker's API answers with (for a fake SageMaker endpoint).
#[derive(Debug, Clone)]
pub struct DescribedJob {
    job: LabelingJobDescription,
}

impl DescribedJob {
    /// The `Animals` job as described: Stopped, its files under `s3://in-bucket/animals/`, its output
    /// under `s3://out-bucket/jobs/`, tagged `team=vision` (and a CloudFormation stack).
    pub fn animals() -> Self {
        let job = serde_json::from_str(animals::DESCRIBE).expect("the Animals fixture parses");
        DescribedJob { job }
    }

    /// In `status`.
    pub fn status(mut self, status: impl Into<LabelingJobStatus>) -> Self {
        self.job.labeling_job_status = status.into();
        self
    }

    /// Named `name`, with the ARN of that name in the fixture's account (and its output manifest, if
    /// it has one, under the new name).
    pub fn name(mut self, name: &str) -> Self {
        self.job.labeling_job_name = name.to_owned();
        self.job.labeling_job_arn = format!(
            "arn:aws:sagemaker:us-east-1:111122223333:labeling-job/{}",
            name.to_lowercase()
        );
        self.place_output_manifest();
        self
    }

    /// With this ARN (the name stays).
    pub fn arn(mut self, arn: &str) -> Self {
        self.job.labeling_job_arn = arn.to_owned();
        self
    }

    /// With this label attribute name.
    pub fn label_attribute_name(mut self, lan: &str) -> Self {
        self.job.label_attribute_name = Some(lan.to_owned());
        self
    }

    /// Of this built-in task type: its pre-annotation and consolidation Lambdas are AWS's for `task`.
    pub fn task_type(mut self, task: TaskType) -> Self {
        let lambda = |kind: &str| {
            format!(
                "arn:aws:lambda:us-east-1:432418664414:function:{kind}-{}",
                task.name()
            )
        };
        let config = &mut self.job.human_task_config;
        config.pre_human_task_lambda_arn = Some(lambda("PRE"));
        if let Some(acs) = &mut config.annotation_consolidation_config {
            acs.annotation_consolidation_lambda_arn = lambda("ACS");
        }
        self
    }

    /// With exactly these tags (the fixture's are dropped).
    pub fn tags(mut self, tags: &[(&str, &str)]) -> Self {
        self.job.tags.clear();
        self.add_tags(tags)
    }

    /// With these tags after the ones it has.
    pub fn add_tags(mut self, tags: &[(&str, &str)]) -> Self {
        self.job.tags.extend(tags.iter().map(|(k, v)| Tag {
            key: (*k).to_owned(),
            value: (*v).to_owned(),
        }));
        self
    }

    /// Its files elsewhere: the input manifest, label categories and worker template under `input` (a
    /// folder URI ending in `/`), the output path `output` (and the output manifest under it).
    pub fn stored_at(mut self, input: &str, output: &str) -> Self {
        if let Some(s3) = &mut self.job.input_config.data_source.s3_data_source {
            s3.manifest_s3_uri = format!("{input}input.manifest");
        }
        self.job.label_category_config_s3_uri = Some(format!("{input}labels.json"));
        self.job.human_task_config.ui_config.ui_template_s3_uri =
            Some(format!("{input}template.liquid"));
        self.job.output_config.s3_output_path = output.to_owned();
        self.place_output_manifest();
        self
    }

    /// With this execution role.
    pub fn role_arn(mut self, role: &str) -> Self {
        self.job.role_arn = role.to_owned();
        self
    }

    /// Without an output manifest yet (`LabelingJobOutput` absent).
    pub fn without_output(mut self) -> Self {
        self.job.labeling_job_output = None;
        self
    }

    /// The description, typed.
    pub fn build(self) -> LabelingJobDescription {
        self.job
    }

    /// The description as SageMaker's JSON API (AWS JSON 1.1) answers DescribeLabelingJob: the same
    /// members, times as epoch seconds (the AWS CLI prints them as ISO text, which the SDKs refuse).
    pub fn wire_json(&self) -> serde_json::Value {
        let mut job = self.job.clone();
        for time in [&mut job.creation_time, &mut job.last_modified_time]
            .into_iter()
            .flatten()
        {
            if let Some(at) = time
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            {
                *time = serde_json::json!(at.timestamp() as f64);
            }
        }
        serde_json::to_value(&job).expect("a description serialises")
    }

    fn place_output_manifest(&mut self) {
        if let Some(output) = &mut self.job.labeling_job_output {
            *output = LabelingJobOutput {
                output_dataset_s3_uri: format!(
                    "{}{}/manifests/output/output.manifest",
                    self.job.output_config.s3_output_path, self.job.labeling_job_name
                ),
                ..output.clone()
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_animals_job_is_as_described_and_moves_whole() {
        let job = DescribedJob::animals().build();
        assert_eq!(job.labeling_job_status, LabelingJobStatus::Stopped);
        assert_eq!(job.task_type(), TaskType::ImageClassification);
        assert_eq!(
            job.labeling_job_output.unwrap().output_dataset_s3_uri,
            animals::OUTPUT_URI
        );
        let moved = DescribedJob::animals()
            .stored_at("s3://b/in/", "s3://b/out/")
            .name("Plants")
            .task_type(TaskType::BoundingBox)
            .build();
        assert_eq!(moved.task_type(), TaskType::BoundingBox);
        assert_eq!(
            moved.labeling_job_output.unwrap().output_dataset_s3_uri,
            "s3://b/out/Plants/manifests/output/output.manifest"
        );
        assert_eq!(
            moved.label_category_config_s3_uri.as_deref(),
            Some("s3://b/in/labels.json")
        );
        assert!(moved.labeling_job_arn.ends_with("labeling-job/plants"));
    }

    #[test]
    fn the_wire_form_has_epoch_times_and_reads_back() {
        let wire = DescribedJob::animals().wire_json();
        assert_eq!(wire["CreationTime"], serde_json::json!(1_714_557_600.0));
        let back: LabelingJobDescription = serde_json::from_value(wire).unwrap();
        assert_eq!(back.labeling_job_name, "Animals");
    }
}
