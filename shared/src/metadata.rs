//! The common `<LAN>-metadata` values Ground Truth writes beside every label, and the labeling-job ARN they
//! come from.
//!
//! Real output manifests show `job-name` as `labeling-job/<lower-cased job name>` and `creation-date` as a
//! UTC timestamp with microseconds and no zone (`2018-10-18T22:18:13.527256`); `contracts.md` §4.1.
//! Time comes from a [`Clock`] so that tests and replays produce identical output.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::task_type::TaskType;

/// Why a string is not a labeling-job ARN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{arn}` is not a labeling-job ARN: {reason}")]
pub struct ArnError {
    /// The offending text, cut to [`crate::text::ECHO_CHARS`] characters.
    pub arn: String,
    /// What is wrong.
    pub reason: &'static str,
}

/// Longest labeling-job name the API accepts.
pub const MAX_JOB_NAME_CHARS: usize = 63;

/// `[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}` (CreateLabelingJob's `LabelingJobName`), as a full match.
fn is_job_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_alphanumeric();
    bytes.len() <= MAX_JOB_NAME_CHARS
        && bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes.iter().all(|b| alnum(b) || *b == b'-')
}

/// `arn:<partition>:sagemaker:<region>:<account>:labeling-job/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LabelingJobArn {
    arn: String,
    region: String,
    account: String,
    name: String,
}

impl LabelingJobArn {
    /// The job name as it appears in the ARN. Ground Truth lower-cases it in Lambda events; the API
    /// treats names case-insensitively, so it can be passed to `DescribeLabelingJob` as it is.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The region part.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The account part.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The whole ARN.
    pub fn as_str(&self) -> &str {
        &self.arn
    }

    /// The `job-name` metadata value: `labeling-job/<lower-cased name>`.
    pub fn job_name_metadata(&self) -> String {
        job_name_metadata(&self.name)
    }
}

/// `labeling-job/<name, lower-cased>`: the `job-name` metadata value Ground Truth writes.
pub fn job_name_metadata(job_name: &str) -> String {
    format!("labeling-job/{}", job_name.to_lowercase())
}

impl FromStr for LabelingJobArn {
    type Err = ArnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ArnError {
            arn: crate::text::echo(s).into_owned(),
            reason: "expected arn:aws:sagemaker:<region>:<account>:labeling-job/<name>",
        };
        let mut parts = s.splitn(6, ':');
        let (
            Some("arn"),
            Some(partition),
            Some("sagemaker"),
            Some(region),
            Some(account),
            Some(resource),
        ) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        )
        else {
            return Err(err());
        };
        let name = resource.strip_prefix("labeling-job/").ok_or_else(err)?;
        if !partition.starts_with("aws") || name.is_empty() || name.contains('/') {
            return Err(err());
        }
        // Checked before the name is sent anywhere (DescribeLabelingJob) or echoed in messages.
        if !is_job_name(name) {
            return Err(ArnError {
                reason: "the job name must be 1-63 letters, digits and hyphens, with hyphens only \
                         between them (pattern [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})",
                ..err()
            });
        }
        Ok(LabelingJobArn {
            arn: s.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
            name: name.to_owned(),
        })
    }
}

impl fmt::Display for LabelingJobArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
}

/// The source of "now". Injected so that replays and tests are deterministic.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock stopped at one instant (tests, replays, the CLI's `--now`).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// `creation-date` in Ground Truth's format: `2018-10-18T22:18:13.527256`.
pub fn creation_date(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// Parses every `creation-date` form seen in real manifests: microseconds with no zone, or a `+0000`
/// offset, or RFC 3339.
pub fn parse_creation_date(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z") {
        return Some(t.with_timezone(&Utc));
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

/// The metadata keys every label carries, in the order Ground Truth's built-in functions write them.
#[derive(Debug, Clone, PartialEq)]
pub struct CommonMetadata {
    /// `type`.
    pub output_type: String,
    /// `job-name`.
    pub job_name: String,
    /// `human-annotated`: `yes` for human labels.
    pub human_annotated: bool,
    /// `creation-date`.
    pub creation_date: String,
}

impl CommonMetadata {
    /// The metadata of a human label of `task` made by `job` at `at`.
    /// `job_name` is the labeling job's name (as in its ARN); Ground Truth writes it lower-cased.
    pub fn new(task: TaskType, job_name: &str, at: DateTime<Utc>) -> Self {
        CommonMetadata {
            output_type: task.output_type().to_owned(),
            job_name: job_name_metadata(job_name),
            human_annotated: true,
            creation_date: creation_date(at),
        }
    }

    /// The four keys and their values, in Ground Truth's order.
    pub fn entries(&self) -> [(&'static str, &str); 4] {
        [
            ("type", self.output_type.as_str()),
            ("job-name", self.job_name.as_str()),
            (
                "human-annotated",
                if self.human_annotated { "yes" } else { "no" },
            ),
            ("creation-date", self.creation_date.as_str()),
        ]
    }
}

/// Rounds a probability the way Ground Truth prints confidences: two decimals, within [0, 1] (NaN
/// becomes 0, an infinity its end of the range). The one rounding every engine's output goes through.
pub fn round_confidence(p: f64) -> f64 {
    if p.is_nan() {
        return 0.0;
    }
    (p.clamp(0.0, 1.0) * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_job_name_follows_the_api_rules_and_long_values_are_cut() {
        let arn =
            |name: &str| format!("arn:aws:sagemaker:us-east-1:111111111111:labeling-job/{name}");
        for ok in ["a", "animals", "test-labeling-job-20211118t200608", "A--b1"] {
            assert!(arn(ok).parse::<LabelingJobArn>().is_ok(), "{ok}");
        }
        assert!(arn(&"x".repeat(63)).parse::<LabelingJobArn>().is_ok());
        let long = arn(&"x".repeat(100_000));
        for bad in [
            arn(&"x".repeat(64)),
            arn("a_b"),
            arn("-a"),
            arn("a-"),
            arn("é"),
            long.clone(),
        ] {
            assert!(bad.parse::<LabelingJobArn>().is_err(), "{bad}");
        }
        let message = long.parse::<LabelingJobArn>().unwrap_err().to_string();
        assert!(message.len() < 500, "{} characters", message.len());
        assert!(message.contains("job name"), "{message}");
    }

    #[test]
    fn job_name_is_lower_cased_with_prefix() {
        let arn: LabelingJobArn =
            "arn:aws:sagemaker:us-east-1:111111111111:labeling-job/MultiLabelJob"
                .parse()
                .unwrap();
        assert_eq!(arn.name(), "MultiLabelJob");
        assert_eq!(arn.region(), "us-east-1");
        assert_eq!(arn.account(), "111111111111");
        assert_eq!(arn.job_name_metadata(), "labeling-job/multilabeljob");
    }

    #[test]
    fn rejects_other_arns() {
        for bad in [
            "",
            "labeling-job/x",
            "arn:aws:lambda:us-east-1:1:function:x",
            "arn:aws:sagemaker:us-east-1:1:training-job/x",
            "arn:aws:sagemaker:us-east-1:1:labeling-job/",
        ] {
            assert!(bad.parse::<LabelingJobArn>().is_err(), "{bad}");
        }
        // AWS's published placeholder (tests/fixtures/aws/eventbridge) has a name no job can have; the
        // name is checked because it is sent to DescribeLabelingJob and echoed in messages.
        assert!(
            "arn:aws:sagemaker:<region>:<account>:labeling-job/<project-name>"
                .parse::<LabelingJobArn>()
                .is_err()
        );
    }

    #[test]
    fn creation_date_matches_ground_truth() {
        let at = Utc.with_ymd_and_hms(2018, 10, 18, 22, 18, 13).unwrap()
            + chrono::Duration::microseconds(527_256);
        assert_eq!(creation_date(at), "2018-10-18T22:18:13.527256");
        assert_eq!(parse_creation_date("2018-10-18T22:18:13.527256"), Some(at));
        assert!(parse_creation_date("2020-05-15T08:01:16+0000").is_some());
        assert!(parse_creation_date("2021-09-29T05:50:35.566000").is_some());
        assert!(parse_creation_date("yesterday").is_none());
    }

    #[test]
    fn confidence_rounds_to_two_decimals() {
        assert_eq!(round_confidence(0.876), 0.88);
        assert_eq!(round_confidence(1.2), 1.0);
        assert_eq!(round_confidence(f64::NAN), 0.0);
        assert_eq!(round_confidence(f64::INFINITY), 1.0);
        assert_eq!(round_confidence(f64::NEG_INFINITY), 0.0);
        assert_eq!(round_confidence(-0.3), 0.0);
    }
}
