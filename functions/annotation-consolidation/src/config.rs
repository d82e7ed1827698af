//! The function's configuration, read once from the environment at cold start.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `TASK_TYPE` | task type (`BoundingBox`, `ImageMultiClass`, …) | inferred from the answers |
//! | `CONSOLIDATION_METHOD` | `dawid-skene` or `majority-vote` | `dawid-skene` |
//! | `CUSTOM_MODE` | custom tasks: `most-common` or `all-answers` | `most-common` |
//! | `WORKER_QUALITY` | keep worker quality across batches (`on`/`off`) | `on` |
//! | `ASSUME_ROLE` | read the payload as the request's `roleArn` (`true`/`false`) | `false` |
//! | `BOX_QUORUM` | share of the (quality-weighted) workers who must draw a box for it to be kept | `0.4` |
//! | `BOX_MATCH_IOU` | least IoU for two workers' boxes to be the same object | `0.5` |
//! | `SPAN_QUORUM` | the same for named-entity spans | `0.5` |
//! | `MAX_MODEL_CELLS` | a classification batch needing more worker-model cells (workers × classes² single-label, (objects + workers) × classes multi-label) is answered by plain vote | `8388608` |
//! | `MAX_MASK_PIXELS` | larger segmentation images are refused (per object) before decoding | `50000000` |
//! | `MAX_PAYLOAD_OBJECTS` | a payload with more objects is refused (`PayloadTooManyObjects`) before any work | `30000` (about what fits Lambda's 6 MB response) |
//! | `MAX_ANSWERS_PER_OBJECT` | an object's answers past this many are left out (one `skipped-answers` record) | `1000` |
//! | `MAX_OBJECT_BYTES` | larger payloads and stored answers are refused before they are read | an eighth of the function's memory |
//! | `ALLOWED_S3_LOCATIONS` | `s3://bucket[/prefix]`, comma-separated: the only places read or written | anywhere IAM allows |

use groundwork::TaskType;
use groundwork::consolidate::batch::BatchSettings;
use groundwork::consolidate::classification::Method;
use groundwork::consolidate::custom::CustomMode;
use groundwork::s3_scope::{S3Scope, S3ScopeError};
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
    #[error(transparent)]
    Scope(#[from] S3ScopeError),
    #[error("{name} must be a number in {range}, not `{value}`")]
    Number {
        name: &'static str,
        range: &'static str,
        value: String,
    },
}

/// Everything the handler needs to know.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) settings: BatchSettings,
    pub(crate) worker_quality: bool,
    pub(crate) assume_role: bool,
    pub(crate) scope: S3Scope,
    /// Responses larger than this fail with `ResponseTooLarge` (Lambda's own limit; lower only in tests).
    pub(crate) max_response_bytes: usize,
    /// S3 objects (payloads, stored answers) larger than this are refused before they are read.
    pub(crate) max_object_bytes: u64,
}

/// The default S3 object limit without `MAX_OBJECT_BYTES`: an eighth of the function's memory (a batch
/// takes a few times its payload's size in memory, see the README's memory benchmark), else 128 MiB (a
/// 1,024 MB function's share).
fn default_max_object_bytes(memory_mb: Option<&str>) -> u64 {
    const MIB: u64 = 1024 * 1024;
    memory_mb
        .and_then(|m| m.trim().parse::<u64>().ok())
        .filter(|m| *m > 0)
        .map_or(128 * MIB, |m| m * MIB / 8)
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

/// A number in (0, 1], when set.
fn fraction(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<f64>, ConfigError> {
    let Some(value) = var(name).filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    match value.trim().parse::<f64>() {
        Ok(x) if x > 0.0 && x <= 1.0 => Ok(Some(x)),
        _ => Err(ConfigError::Number {
            name,
            range: "(0, 1]",
            value,
        }),
    }
}

/// A positive integer, when set.
fn positive_integer(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<u64>, ConfigError> {
    let Some(value) = var(name).filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    match value.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(ConfigError::Number {
            name,
            range: "1..",
            value,
        }),
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
    if let Some(q) = fraction(&var, "BOX_QUORUM")? {
        settings.boxes.quorum = q;
    }
    if let Some(iou) = fraction(&var, "BOX_MATCH_IOU")? {
        settings.boxes.match_iou = iou;
    }
    if let Some(q) = fraction(&var, "SPAN_QUORUM")? {
        settings.spans.quorum = q;
    }
    if let Some(cells) = positive_integer(&var, "MAX_MODEL_CELLS")? {
        settings.classification.max_model_cells = usize::try_from(cells).unwrap_or(usize::MAX);
    }
    if let Some(pixels) = positive_integer(&var, "MAX_MASK_PIXELS")? {
        settings.segmentation.max_pixels = pixels;
    }
    if let Some(objects) = positive_integer(&var, "MAX_PAYLOAD_OBJECTS")? {
        settings.limits.max_objects = usize::try_from(objects).unwrap_or(usize::MAX);
    }
    if let Some(answers) = positive_integer(&var, "MAX_ANSWERS_PER_OBJECT")? {
        settings.limits.max_answers_per_object = usize::try_from(answers).unwrap_or(usize::MAX);
    }
    Ok(Config {
        settings,
        worker_quality: flag(&var, "WORKER_QUALITY", true)?,
        assume_role: flag(&var, "ASSUME_ROLE", false)?,
        scope: S3Scope::from_lookup(&var)?,
        max_response_bytes: groundwork::contracts::LAMBDA_RESPONSE_LIMIT_BYTES,
        max_object_bytes: match positive_integer(&var, "MAX_OBJECT_BYTES")? {
            Some(bytes) => bytes,
            None => default_max_object_bytes(var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").as_deref()),
        },
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
        assert!(!c.scope.is_restricted());
        assert_eq!(c.settings.limits.max_objects, 30_000);
        assert_eq!(c.settings.limits.max_answers_per_object, 1_000);
        assert_eq!(c.max_object_bytes, 128 * 1024 * 1024);
        let c = from_vars(vars(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")])).unwrap();
        assert_eq!(
            c.max_object_bytes,
            32 * 1024 * 1024,
            "an eighth of the memory"
        );
        let c = from_vars(vars(&[("MAX_OBJECT_BYTES", "1000")])).unwrap();
        assert_eq!(c.max_object_bytes, 1000);
        assert!(matches!(
            from_vars(vars(&[("MAX_OBJECT_BYTES", "0")])),
            Err(ConfigError::Number { .. })
        ));
    }

    #[test]
    fn reads_every_setting() {
        let c = from_vars(vars(&[
            ("TASK_TYPE", "BoundingBox"),
            ("CONSOLIDATION_METHOD", "majority-vote"),
            ("CUSTOM_MODE", "all-answers"),
            ("WORKER_QUALITY", "off"),
            ("ASSUME_ROLE", "true"),
            ("BOX_QUORUM", "0.6"),
            ("BOX_MATCH_IOU", "0.4"),
            ("SPAN_QUORUM", "0.7"),
            ("MAX_MASK_PIXELS", "1000000"),
            ("MAX_PAYLOAD_OBJECTS", "500"),
            ("MAX_ANSWERS_PER_OBJECT", "12"),
            ("ALLOWED_S3_LOCATIONS", "s3://data/jobs"),
        ]))
        .unwrap();
        assert_eq!(c.settings.task_type, Some(TaskType::BoundingBox));
        assert_eq!(c.settings.classification.method, Method::MajorityVote);
        assert_eq!(c.settings.custom_mode, CustomMode::AllAnswers);
        assert!(!c.worker_quality);
        assert!(c.assume_role);
        assert_eq!(c.settings.boxes.quorum, 0.6);
        assert_eq!(c.settings.boxes.match_iou, 0.4);
        assert_eq!(c.settings.spans.quorum, 0.7);
        assert_eq!(c.settings.segmentation.max_pixels, 1_000_000);
        assert_eq!(c.settings.limits.max_objects, 500);
        assert_eq!(c.settings.limits.max_answers_per_object, 12);
        assert_eq!(c.scope.describe().as_deref(), Some("s3://data/jobs"));
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
        assert!(matches!(
            from_vars(vars(&[("ALLOWED_S3_LOCATIONS", "data/jobs")])),
            Err(ConfigError::Scope(_))
        ));
    }
}
