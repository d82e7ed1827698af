//! One CloudWatch metric per invocation, in the Embedded Metric Format: a JSON log line with an `_aws`
//! member that CloudWatch Logs turns into a metric, with no API call and no extra IAM permission.
//!
//! Metric `groundwork/AutoChainer` `Decisions` (Count), by `Outcome` (`Created`, `Duplicate`, `Skipped`,
//! `Rejected`, `Error`) and by `Outcome` + `Reason` (a skip reason code, a rejection code or an error
//! type) — enough to alarm on `Error` and to see why jobs are not chained (`Skipped`/`PermanentFailure`).
//! The line is written to stdout as it is: EMF needs it at the top level, not inside a tracing record.

use groundwork::emf::{MetricLine, Unit};
pub(crate) use groundwork::emf::{MetricSink, StdoutEmf};

/// The metric namespace.
pub(crate) const NAMESPACE: &str = "groundwork/AutoChainer";
/// The metric name.
pub(crate) const METRIC: &str = "Decisions";

/// The EMF line for one decision.
pub(crate) fn emf_line(
    timestamp_ms: i64,
    outcome: &str,
    reason: &str,
    source_job: Option<&str>,
) -> String {
    MetricLine::new(NAMESPACE, &[&["Outcome"], &["Outcome", "Reason"]])
        .dimension("Outcome", outcome)
        .dimension("Reason", reason)
        .metric(METRIC, 1.0, Unit::Count)
        .property("SourceJob", source_job)
        .to_line(timestamp_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn writes_an_emf_document() {
        let line = emf_line(
            1_714_557_600_000,
            "Skipped",
            "PermanentFailure",
            Some("Animals"),
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 1_714_557_600_000_i64);
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Metrics"][0]["Name"], METRIC);
        // Every dimension and metric named in the directive is a top-level member.
        for dimension in ["Outcome", "Reason"] {
            assert!(v[dimension].is_string(), "{dimension}");
        }
        assert_eq!(v[METRIC], 1);
        assert_eq!(v["SourceJob"], "Animals");
        assert!(!line.contains('\n'));
    }
}
