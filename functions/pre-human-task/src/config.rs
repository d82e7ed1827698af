//! The function's configuration, read once from the environment at cold start.
//!
//! With `LABEL_ATTRIBUTE_NAME` set, the function serves one kind of job and never calls SageMaker
//! (`TASK_TYPE`, `LABEL_CATEGORIES` as a JSON array, or `LABEL_CATEGORY_CONFIG_S3_URI` complete it).
//! Without it, every job is looked up with DescribeLabelingJob (once per job per warm container).

use groundwork::job_context::ConfiguredJob;
use groundwork::lan::LanError;
use groundwork::s3_uri::S3UriError;
use groundwork::task_type::UnknownTaskType;
use groundwork::{LabelAttributeName, S3Uri, TaskType};

/// A configuration value that cannot be used: the function refuses to start rather than mislabel.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// (Not a `#[source]`: the message holds it, and a chain printer would say it twice.)
    #[error("LABEL_ATTRIBUTE_NAME: {0}")]
    Lan(LanError),
    #[error("TASK_TYPE: {0}")]
    TaskType(#[from] UnknownTaskType),
    #[error("LABEL_CATEGORIES must be a JSON array of strings: {0}")]
    Labels(serde_json::Error),
    #[error("LABEL_CATEGORY_CONFIG_S3_URI: {0}")]
    Uri(#[from] S3UriError),
    #[error(
        "TASK_TYPE, LABEL_CATEGORIES and LABEL_CATEGORY_CONFIG_S3_URI need LABEL_ATTRIBUTE_NAME"
    )]
    LanMissing,
}

/// Reads the configuration through `var` (the environment in production, a map in tests).
pub(crate) fn configured_job(
    var: impl Fn(&str) -> Option<String>,
) -> Result<Option<ConfiguredJob>, ConfigError> {
    let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    let task_type = set("TASK_TYPE")
        .map(|t| t.parse::<TaskType>())
        .transpose()?;
    let labels = set("LABEL_CATEGORIES")
        .map(|l| serde_json::from_str::<Vec<String>>(&l))
        .transpose()
        .map_err(ConfigError::Labels)?;
    let label_category_config = set("LABEL_CATEGORY_CONFIG_S3_URI")
        .map(|u| u.parse::<S3Uri>())
        .transpose()?;
    let Some(lan) = set("LABEL_ATTRIBUTE_NAME") else {
        if task_type.is_some() || labels.is_some() || label_category_config.is_some() {
            return Err(ConfigError::LanMissing);
        }
        return Ok(None);
    };
    let label_attribute_name = match task_type {
        Some(task) => LabelAttributeName::for_task(lan, task),
        None => LabelAttributeName::new(lan),
    }
    .map_err(ConfigError::Lan)?;
    Ok(Some(ConfiguredJob {
        label_attribute_name,
        task_type,
        labels,
        label_category_config,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn nothing_set_means_describe() {
        assert_eq!(configured_job(env(&[])).unwrap(), None);
    }

    #[test]
    fn reads_a_dedicated_job() {
        let job = configured_job(env(&[
            ("LABEL_ATTRIBUTE_NAME", "sport"),
            ("TASK_TYPE", "TextMultiClass"),
            ("LABEL_CATEGORIES", r#"["soccer","tennis"]"#),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(job.label_attribute_name.as_str(), "sport");
        assert_eq!(job.task_type, Some(TaskType::TextClassification));
        assert_eq!(job.labels.unwrap(), ["soccer", "tennis"]);
    }

    #[test]
    fn refuses_bad_values() {
        assert!(matches!(
            configured_job(env(&[("LABEL_ATTRIBUTE_NAME", "a_b")])),
            Err(ConfigError::Lan(_))
        ));
        assert!(matches!(
            configured_job(env(&[
                ("LABEL_ATTRIBUTE_NAME", "mask"),
                ("TASK_TYPE", "SemanticSegmentation")
            ])),
            Err(ConfigError::Lan(LanError::RefRequired { .. }))
        ));
        assert!(matches!(
            configured_job(env(&[("TASK_TYPE", "BoundingBox")])),
            Err(ConfigError::LanMissing)
        ));
        assert!(matches!(
            configured_job(env(&[
                ("LABEL_ATTRIBUTE_NAME", "a"),
                ("LABEL_CATEGORIES", "a,b")
            ])),
            Err(ConfigError::Labels(_))
        ));
        assert!(matches!(
            configured_job(env(&[
                ("LABEL_ATTRIBUTE_NAME", "a"),
                ("TASK_TYPE", "Boxes")
            ])),
            Err(ConfigError::TaskType(_))
        ));
    }
}
