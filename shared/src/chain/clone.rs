//! Cloning: a new job with a prior job's setup, reading the prior job's input manifest or a new one
//! (the developer guide's other way of reusing a job, beside chaining).
//!
//! A clone is a new root: it keeps the prior job's label attribute name, user tags and declarations (so it
//! chains like its model), gets `groundwork:cloned-from`, and no lineage. Its name is derived from the
//! prior job and the manifest, so cloning twice with the same manifest is idempotent.

use crate::labeling_job::{
    CreateLabelingJobRequest, DataSource, LabelingJobDescription, S3DataSource,
};
use crate::s3_uri::S3Uri;

use super::ChainError;
use super::decision::copy_of;
use super::naming::clone_job_name;
use super::tags::{MAX_TAGS, TAG_CLONED_FROM, inherited_tags, set_tag};

/// The CreateLabelingJob request of a clone of `job`, reading `manifest` (default: `job`'s own input,
/// an S3 manifest or an SNS topic).
pub fn clone_request(
    job: &LabelingJobDescription,
    manifest: Option<&S3Uri>,
) -> Result<CreateLabelingJobRequest, ChainError> {
    let lan = job
        .label_attribute_name
        .clone()
        .ok_or_else(|| ChainError::InvalidJob("it has no label attribute name".to_owned()))?;
    let source = &job.input_config.data_source;
    let input_key = match (manifest, &source.s3_data_source, &source.sns_data_source) {
        (Some(uri), _, _) => uri.to_string(),
        (None, Some(s3), _) => s3.manifest_s3_uri.clone(),
        (None, None, Some(sns)) => sns.sns_topic_arn.clone(),
        (None, None, None) => {
            return Err(ChainError::InvalidJob(
                "it has neither an input manifest nor an SNS topic".to_owned(),
            ));
        }
    };
    let name = clone_job_name(&job.labeling_job_name, &job.labeling_job_arn, &input_key);
    let mut request = copy_of(job, name, lan);
    if let Some(uri) = manifest {
        request.input_config.data_source = DataSource {
            s3_data_source: Some(S3DataSource {
                manifest_s3_uri: uri.to_string(),
            }),
            sns_data_source: None,
        };
    }
    let mut tags = inherited_tags(job, &[]);
    set_tag(&mut tags, TAG_CLONED_FROM, job.labeling_job_name.clone());
    if tags.len() > MAX_TAGS {
        return Err(ChainError::TooManyTags { count: tags.len() });
    }
    request.tags = tags;
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::naming::is_valid_job_name;
    use crate::chain::tags::{TAG_CHAIN, TAG_DEPTH, TAG_ROOT_JOB};
    use crate::chain::testing::job_with_tags;

    #[test]
    fn copies_the_setup_with_the_input_manifest() {
        let job = job_with_tags(&[
            ("team", "vision"),
            (TAG_CHAIN, "continue"),
            (TAG_DEPTH, "2"),
            (TAG_ROOT_JOB, "Zoo"),
            ("aws:x", "y"),
        ]);
        let request = clone_request(&job, None).unwrap();
        assert!(is_valid_job_name(&request.labeling_job_name));
        assert!(request.labeling_job_name.starts_with("Animals-clone-"));
        assert_eq!(request.input_config, job.input_config);
        assert_eq!(request.human_task_config, job.human_task_config);
        assert_eq!(request.label_attribute_name, "animal");
        assert_eq!(request.role_arn, job.role_arn);
        let tags: Vec<(&str, &str)> = request
            .tags
            .iter()
            .map(|t| (t.key.as_str(), t.value.as_str()))
            .collect();
        assert_eq!(
            tags,
            [
                ("team", "vision"),
                (TAG_CHAIN, "continue"),
                (TAG_CLONED_FROM, "Animals")
            ]
        );
        assert_eq!(clone_request(&job, None).unwrap(), request);
    }

    #[test]
    fn a_new_manifest_replaces_the_input_and_changes_the_name() {
        let job = job_with_tags(&[]);
        let uri: S3Uri = "s3://data/more.manifest".parse().unwrap();
        let request = clone_request(&job, Some(&uri)).unwrap();
        assert_eq!(
            request
                .input_config
                .data_source
                .s3_data_source
                .as_ref()
                .unwrap()
                .manifest_s3_uri,
            "s3://data/more.manifest"
        );
        assert_eq!(
            request.input_config.data_attributes,
            job.input_config.data_attributes
        );
        assert_ne!(
            request.labeling_job_name,
            clone_request(&job, None).unwrap().labeling_job_name
        );
    }
}
