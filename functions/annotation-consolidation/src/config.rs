//! The function's configuration, read once from the environment at cold start.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `TASK_TYPE` | task type (`BoundingBox`, `ImageMultiClass`, …) | inferred from the answers |
//! | `CONSOLIDATION_METHOD` | `dawid-skene` or `majority-vote` | `dawid-skene` |
//! | `CUSTOM_MODE` | custom tasks: `most-common` or `all-answers` | `most-common` |
//! | `WORKER_QUALITY` | keep worker quality across batches (`on`/`off`) | `on` |
//! | `ASSUME_ROLE` | read the payload as the request's `roleArn` (`true`/`false`) | `false` |

use groundwork::TaskType;
use groundwork::consolidate::batch::BatchSettings;
use groundwork::consolidate::classification::Method;
use groundwork::consolidate::custom::CustomMode;
use groundwork::task_type::UnknownTaskType;

/// A configuration value that cannot be used: the function refuses to start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("TASK_TYPE: {0}")]
    TaskType(#[from] UnknownTaskType),
    #[error("CONSOLIDATION_METHOD: {0}")]
    Method(String),
    #[error("CUSTOM_MODE: {0}")]
    CustomMode(String),
    #[error("{name} must be true/false (or on/off), not `{value}`")]
    Flag { name: &'static str, value: String },
}

/// Everything the handler needs to know.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) settings: BatchSettings,
    pub(crate) worker_quality: bool,
    pub(crate) assume_role: bool,
}

fn flag(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match var(name)
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
    {
        None => Ok(default),
        Some(v) => match v.as_str() {
            "true" | "on" | "yes" | "1" => Ok(true),
            "false" | "off" | "no" | "0" => Ok(false),
            _ => Err(ConfigError::Flag { name, value: v }),
        },
    }
}

/// Reads the configuration through `var` (the environment in production, a map in tests).
pub(crate) fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    let mut settings = BatchSettings {
        task_type: set("TASK_TYPE")
            .map(|t| t.parse::<TaskType>())
            .transpose()?,
        ..BatchSettings::default()
    };
    if let Some(method) = set("CONSOLIDATION_METHOD") {
        settings.classification.method = method
            .parse::<Method>()
            .map_err(|e| ConfigError::Method(e.to_string()))?;
    }
    if let Some(mode) = set("CUSTOM_MODE") {
        settings.custom_mode = mode
            .parse::<CustomMode>()
            .map_err(ConfigError::CustomMode)?;
    }
    Ok(Config {
        settings,
        worker_quality: flag(&var, "WORKER_QUALITY", true)?,
        assume_role: flag(&var, "ASSUME_ROLE", false)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults() {
        let c = from_vars(vars(&[])).unwrap();
        assert_eq!(c.settings.task_type, None);
        assert_eq!(c.settings.classification.method, Method::DawidSkene);
        assert!(c.worker_quality);
        assert!(!c.assume_role);
    }

    #[test]
    fn reads_every_setting() {
        let c = from_vars(vars(&[
            ("TASK_TYPE", "BoundingBox"),
            ("CONSOLIDATION_METHOD", "majority-vote"),
            ("CUSTOM_MODE", "all-answers"),
            ("WORKER_QUALITY", "off"),
            ("ASSUME_ROLE", "true"),
        ]))
        .unwrap();
        assert_eq!(c.settings.task_type, Some(TaskType::BoundingBox));
        assert_eq!(c.settings.classification.method, Method::MajorityVote);
        assert_eq!(c.settings.custom_mode, CustomMode::AllAnswers);
        assert!(!c.worker_quality);
        assert!(c.assume_role);
    }

    #[test]
    fn refuses_bad_values() {
        assert!(matches!(
            from_vars(vars(&[("TASK_TYPE", "boxes")])),
            Err(ConfigError::TaskType(_))
        ));
        assert!(matches!(
            from_vars(vars(&[("CONSOLIDATION_METHOD", "glad")])),
            Err(ConfigError::Method(_))
        ));
        assert!(matches!(
            from_vars(vars(&[("ASSUME_ROLE", "maybe")])),
            Err(ConfigError::Flag { .. })
        ));
    }
}
