//! Would a failed labeling job fail again? A reading of `DescribeLabelingJob.FailureReason`.
//!
//! Continuing a job that failed because its manifest is broken, its role lacks a permission or a
//! parameter is invalid starts a job that fails the same way — and then another, until the depth limit.
//! So a failed job is continued only when its reason looks transient (an internal error, throttling, the
//! 30-day expiry the developer guide says may be chained) or is unknown; unknown reasons are bounded by
//! the no-progress rule (a continued job that labels nothing is not continued again).
//!
//! `FailureReason` is free text. SageMaker prefixes client faults with `ClientError:` and server faults
//! with `InternalServerError`/`InternalError`; the rules below look for those and for the usual wording of
//! each cause, most specific first. Anyone who has fixed the cause can still continue the job by hand
//! (`groundwork chain start --force`).

use std::fmt;

/// What a failure reason says about retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// A server-side or capacity problem: a new job may well succeed.
    Transient,
    /// The job ran out of time (30 days); the developer guide suggests chaining it.
    Expired,
    /// The same setup would fail again.
    Permanent(PermanentCause),
    /// No reason, or one these rules do not know.
    Unknown,
}

impl FailureClass {
    /// Whether a job continued with the same setup would fail the same way.
    pub fn would_fail_again(self) -> bool {
        matches!(self, FailureClass::Permanent(_))
    }
}

/// Why a failure is permanent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermanentCause {
    /// The input manifest or data objects are unusable.
    InvalidInput,
    /// The job's role (or a key policy) lacks a permission.
    MissingPermissions,
    /// A parameter, template, Lambda or label category file was rejected.
    Validation,
}

impl PermanentCause {
    /// A stable identifier, for logs and metric dimensions.
    pub fn code(self) -> &'static str {
        match self {
            PermanentCause::InvalidInput => "InvalidInput",
            PermanentCause::MissingPermissions => "MissingPermissions",
            PermanentCause::Validation => "Validation",
        }
    }
}

impl fmt::Display for PermanentCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PermanentCause::InvalidInput => "the input manifest or data is invalid",
            PermanentCause::MissingPermissions => "a permission is missing",
            PermanentCause::Validation => "the job's setup was rejected",
        })
    }
}

/// The job's own time limit: chaining is the documented way on.
const EXPIRED: &[&str] = &["30 days", "expired", "maximum duration", "max runtime"];
/// Server-side markers, strong enough to win over the wording of a cause.
const SERVER_SIDE: &[&str] = &[
    "internalservererror",
    "internal server",
    "internalerror",
    "internal error",
    "internalfailure",
    "service unavailable",
    "serviceunavailable",
    "throttl",
    "rate exceeded",
    "too many requests",
];
const PERMISSIONS: &[&str] = &[
    "access denied",
    "accessdenied",
    "not authorized",
    "unauthorized",
    "permission",
    "forbidden",
    "assume role",
    "assume the role",
    "assumerole",
    "kms",
];
const INPUT: &[&str] = &[
    "manifest",
    "input data",
    "data object",
    "source-ref",
    "jsonlines",
    "json lines",
];
const VALIDATION: &[&str] = &[
    "clienterror",
    "validation",
    "invalid",
    "not valid",
    "malformed",
    "does not exist",
    "not found",
    "no such",
    "unsupported",
    "label category",
    "template",
];
/// Weak transient markers, only looked at when nothing above matched.
const MAYBE_TRANSIENT: &[&str] = &["try again", "timed out", "timeout", "temporar", "capacity"];

/// Classifies a `FailureReason` (absent: [`FailureClass::Unknown`]).
pub fn classify_failure(reason: Option<&str>) -> FailureClass {
    let Some(reason) = reason.map(str::to_lowercase) else {
        return FailureClass::Unknown;
    };
    let has = |markers: &[&str]| markers.iter().any(|m| reason.contains(m));
    if has(EXPIRED) {
        FailureClass::Expired
    } else if has(SERVER_SIDE) {
        FailureClass::Transient
    } else if has(PERMISSIONS) {
        FailureClass::Permanent(PermanentCause::MissingPermissions)
    } else if has(INPUT) {
        FailureClass::Permanent(PermanentCause::InvalidInput)
    } else if has(VALIDATION) {
        FailureClass::Permanent(PermanentCause::Validation)
    } else if has(MAYBE_TRANSIENT) {
        FailureClass::Transient
    } else {
        FailureClass::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(reason: &str) -> FailureClass {
        classify_failure(Some(reason))
    }

    #[test]
    fn permanent_causes() {
        assert_eq!(
            class("ClientError: Access Denied when reading s3://bucket/in.manifest"),
            FailureClass::Permanent(PermanentCause::MissingPermissions)
        );
        assert_eq!(
            class("ClientError: SageMaker was unable to assume the role 'arn:aws:iam::1:role/x'"),
            FailureClass::Permanent(PermanentCause::MissingPermissions)
        );
        assert_eq!(
            class("ClientError: Failed to parse the input manifest file at line 3"),
            FailureClass::Permanent(PermanentCause::InvalidInput)
        );
        assert_eq!(
            class("ClientError: The label category configuration file is invalid"),
            FailureClass::Permanent(PermanentCause::Validation)
        );
        assert_eq!(
            class("ValidationException: 1 validation error detected"),
            FailureClass::Permanent(PermanentCause::Validation)
        );
        assert_eq!(
            class("ClientError: something new. Please try again."),
            FailureClass::Permanent(PermanentCause::Validation)
        );
        assert!(class("ClientError: x").would_fail_again());
    }

    #[test]
    fn transient_and_expired_causes() {
        assert_eq!(
            class("InternalServerError: We encountered an internal error. Please try again."),
            FailureClass::Transient
        );
        assert_eq!(
            class("Internal error while reading the manifest"),
            FailureClass::Transient
        );
        assert_eq!(class("Request was throttled"), FailureClass::Transient);
        assert_eq!(class("Worker task timed out"), FailureClass::Transient);
        assert_eq!(
            class("ClientError: Labeling job has exceeded the maximum allowed time of 30 days"),
            FailureClass::Expired
        );
        assert!(!FailureClass::Expired.would_fail_again());
        assert!(!FailureClass::Transient.would_fail_again());
    }

    #[test]
    fn unknown_reasons() {
        assert_eq!(classify_failure(None), FailureClass::Unknown);
        assert_eq!(class("Something happened"), FailureClass::Unknown);
        assert!(!FailureClass::Unknown.would_fail_again());
    }
}
