//! Function-level chaining defaults, read once from configuration (the Lambda's environment, or the CLI's
//! flags, which fall back to the same variables).
//!
//! | variable | values | default | meaning |
//! |---|---|---|---|
//! | `CHAIN_DEFAULT` | `continue` \| `off` | `off` | whether a Stopped/Failed job without a `groundwork:chain` tag is continued |
//! | `MAX_CHAIN_DEPTH` | integer ≥ 0 | `5` | chained jobs below a root job, at most (0: never chain) |
//! | `DEFAULT_FOLLOW_UP_PLAN` | `s3://…` | none | follow-up plan for a Completed job without a `groundwork:follow-up` tag |
//! | `CHAIN_WRITE_PREFIX` | `s3://…` | none | where new manifests and label category files go (`<prefix>/<new job>/…`); by default `<S3OutputPath>/groundwork-chain/<new job>/…` of the source job |
//!
//! Continuing is off by default because people stop jobs on purpose: continuing every stopped job of an
//! account must be asked for, per job (tag) or per deployment (`CHAIN_DEFAULT=continue`).

use std::fmt;
use std::str::FromStr;

use crate::s3_scope::{S3Scope, S3ScopeError};
use crate::s3_uri::S3Uri;

/// `CHAIN_DEFAULT`.
pub const ENV_CHAIN_DEFAULT: &str = "CHAIN_DEFAULT";
/// `MAX_CHAIN_DEPTH`.
pub const ENV_MAX_CHAIN_DEPTH: &str = "MAX_CHAIN_DEPTH";
/// `DEFAULT_FOLLOW_UP_PLAN`.
pub const ENV_DEFAULT_FOLLOW_UP_PLAN: &str = "DEFAULT_FOLLOW_UP_PLAN";
/// `CHAIN_WRITE_PREFIX`.
pub const ENV_CHAIN_WRITE_PREFIX: &str = "CHAIN_WRITE_PREFIX";

/// The depth limit when none is configured.
pub const DEFAULT_MAX_DEPTH: u32 = 5;

/// Whether stopped and failed jobs are continued (`groundwork:chain` tag, `CHAIN_DEFAULT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChainMode {
    /// Continue Stopped and Failed jobs.
    Continue,
    /// Do not continue them. As a job's tag, `off` also turns off its follow-ups: a per-job kill switch.
    #[default]
    Off,
}

impl ChainMode {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ChainMode::Continue => "continue",
            ChainMode::Off => "off",
        }
    }
}

impl fmt::Display for ChainMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A chain mode that is neither `continue` nor `off`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a chain mode (expected `continue` or `off`)")]
pub struct UnknownChainMode(pub String);

impl FromStr for ChainMode {
    type Err = UnknownChainMode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "continue" => Ok(ChainMode::Continue),
            "off" => Ok(ChainMode::Off),
            _ => Err(UnknownChainMode(s.to_owned())),
        }
    }
}

/// Why the configuration cannot be used. Read at start-up, so a Lambda fails its cold start instead of
/// chaining with a half-read configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// `CHAIN_DEFAULT` is not a mode.
    #[error("{ENV_CHAIN_DEFAULT}: {0}")]
    Mode(#[from] UnknownChainMode),
    /// `MAX_CHAIN_DEPTH` is not a non-negative integer.
    #[error("{ENV_MAX_CHAIN_DEPTH}: `{0}` is not a non-negative integer")]
    Depth(String),
    /// An S3 URI variable is not an S3 URI.
    #[error("{variable}: {source}")]
    Uri {
        /// The variable.
        variable: &'static str,
        /// Why.
        #[source]
        source: crate::s3_uri::S3UriError,
    },
    /// `ALLOWED_S3_LOCATIONS` is unusable.
    #[error(transparent)]
    Scope(#[from] S3ScopeError),
    /// A configured location is outside `ALLOWED_S3_LOCATIONS`: every chain would fail on it.
    #[error("{variable}: {uri} is outside ALLOWED_S3_LOCATIONS")]
    OutsideScope {
        /// The variable.
        variable: &'static str,
        /// Its value.
        uri: String,
    },
}

/// The function-level defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainSettings {
    /// Mode of jobs without a `groundwork:chain` tag.
    pub default_mode: ChainMode,
    /// Most chained jobs below a root.
    pub max_depth: u32,
    /// Follow-up plan of Completed jobs without a `groundwork:follow-up` tag.
    pub default_follow_up_plan: Option<S3Uri>,
    /// Where new manifests and label category files are written.
    pub write_prefix: Option<S3Uri>,
    /// Where the chainer may read and write (plans, manifests, label files).
    pub scope: S3Scope,
}

impl Default for ChainSettings {
    fn default() -> Self {
        ChainSettings {
            default_mode: ChainMode::Off,
            max_depth: DEFAULT_MAX_DEPTH,
            default_follow_up_plan: None,
            write_prefix: None,
            scope: S3Scope::anywhere(),
        }
    }
}

impl ChainSettings {
    /// Reads the variables through `lookup` (`|k| std::env::var(k).ok()` in a Lambda). Unset and empty
    /// variables take their defaults.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let get = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());
        let mut settings = ChainSettings::default();
        if let Some(mode) = get(ENV_CHAIN_DEFAULT) {
            settings.default_mode = mode.parse()?;
        }
        if let Some(depth) = get(ENV_MAX_CHAIN_DEPTH) {
            settings.max_depth = depth
                .trim()
                .parse()
                .map_err(|_| SettingsError::Depth(depth.clone()))?;
        }
        let uri = |variable: &'static str| -> Result<Option<S3Uri>, SettingsError> {
            get(variable)
                .map(|v| v.trim().parse())
                .transpose()
                .map_err(|source| SettingsError::Uri { variable, source })
        };
        settings.default_follow_up_plan = uri(ENV_DEFAULT_FOLLOW_UP_PLAN)?;
        settings.write_prefix = uri(ENV_CHAIN_WRITE_PREFIX)?;
        settings.scope = S3Scope::from_lookup(&lookup)?;
        for (variable, location) in [
            (ENV_DEFAULT_FOLLOW_UP_PLAN, &settings.default_follow_up_plan),
            (ENV_CHAIN_WRITE_PREFIX, &settings.write_prefix),
        ] {
            if let Some(uri) = location
                && !settings.scope.allows(uri)
            {
                return Err(SettingsError::OutsideScope {
                    variable,
                    uri: uri.to_string(),
                });
            }
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_locations_must_be_inside_the_allowed_ones() {
        let settings = read(&[
            ("ALLOWED_S3_LOCATIONS", "s3://data/jobs"),
            (ENV_CHAIN_WRITE_PREFIX, "s3://data/jobs/chains/"),
        ])
        .unwrap();
        assert!(settings.scope.is_restricted());
        let error = read(&[
            ("ALLOWED_S3_LOCATIONS", "s3://data/jobs"),
            (ENV_DEFAULT_FOLLOW_UP_PLAN, "s3://data/plans/p.json"),
        ])
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{ENV_DEFAULT_FOLLOW_UP_PLAN}: s3://data/plans/p.json is outside ALLOWED_S3_LOCATIONS"
            )
        );
        assert!(matches!(
            read(&[("ALLOWED_S3_LOCATIONS", "bucket/x")]),
            Err(SettingsError::Scope(_))
        ));
    }
    use std::collections::HashMap;

    fn read(vars: &[(&str, &str)]) -> Result<ChainSettings, SettingsError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ChainSettings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_when_unset_or_empty() {
        assert_eq!(read(&[]).unwrap(), ChainSettings::default());
        assert_eq!(
            read(&[(ENV_CHAIN_DEFAULT, ""), (ENV_MAX_CHAIN_DEPTH, " ")]).unwrap(),
            ChainSettings::default()
        );
        assert_eq!(ChainSettings::default().max_depth, 5);
        assert_eq!(ChainSettings::default().default_mode, ChainMode::Off);
    }

    #[test]
    fn reads_every_variable() {
        let s = read(&[
            (ENV_CHAIN_DEFAULT, "Continue"),
            (ENV_MAX_CHAIN_DEPTH, "2"),
            (ENV_DEFAULT_FOLLOW_UP_PLAN, "s3://plans/verify.json"),
            (ENV_CHAIN_WRITE_PREFIX, "s3://work/chains/"),
        ])
        .unwrap();
        assert_eq!(s.default_mode, ChainMode::Continue);
        assert_eq!(s.max_depth, 2);
        assert_eq!(
            s.default_follow_up_plan.unwrap().to_string(),
            "s3://plans/verify.json"
        );
        assert_eq!(s.write_prefix.unwrap().to_string(), "s3://work/chains/");
    }

    #[test]
    fn rejects_bad_values_with_the_variable_name() {
        let e = read(&[(ENV_CHAIN_DEFAULT, "yes")]).unwrap_err();
        assert!(e.to_string().contains("CHAIN_DEFAULT"), "{e}");
        let e = read(&[(ENV_MAX_CHAIN_DEPTH, "-1")]).unwrap_err();
        assert!(e.to_string().contains("MAX_CHAIN_DEPTH"), "{e}");
        let e = read(&[(ENV_DEFAULT_FOLLOW_UP_PLAN, "https://x/y")]).unwrap_err();
        assert!(e.to_string().contains("DEFAULT_FOLLOW_UP_PLAN"), "{e}");
    }
}
