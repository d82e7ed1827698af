//! CloudWatch metrics in the Embedded Metric Format: one JSON log line with an `_aws` member that
//! CloudWatch Logs turns into metrics, with no API call and no extra IAM permission.
//!
//! Each function writes one line per invocation ([`MetricLine`]) to stdout ([`StdoutEmf`]): EMF needs it
//! at the top level of the log, not inside a tracing record. Only counts, ratios and the stable names of
//! outcomes and errors go into a line, never data or answers.

use serde_json::{Map, Value, json};

/// A metric's unit, as CloudWatch names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A count.
    Count,
    /// A plain number (a ratio, a confidence).
    None,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::None => "None",
        }
    }
}

/// One EMF document: a namespace, the dimension sets metrics are aggregated by, the dimensions' values,
/// the metrics, and properties that are logged but not aggregated (a job name, say).
#[derive(Debug, Clone)]
pub struct MetricLine {
    namespace: &'static str,
    dimension_sets: Vec<Vec<&'static str>>,
    members: Map<String, Value>,
    metrics: Vec<(&'static str, Unit)>,
}

impl MetricLine {
    /// A line in `namespace`, aggregated by each of `dimension_sets` (`&[]` is one set without
    /// dimensions: the function's total).
    pub fn new(namespace: &'static str, dimension_sets: &[&[&'static str]]) -> Self {
        Self {
            namespace,
            dimension_sets: dimension_sets.iter().map(|set| set.to_vec()).collect(),
            members: Map::new(),
            metrics: Vec::new(),
        }
    }

    /// Sets a dimension's value.
    pub fn dimension(mut self, name: &'static str, value: &str) -> Self {
        self.members.insert(name.to_owned(), Value::from(value));
        self
    }

    /// Adds a metric. A value that is not finite is left out (CloudWatch refuses it).
    pub fn metric(mut self, name: &'static str, value: f64, unit: Unit) -> Self {
        if value.is_finite() {
            // Whole numbers as integers (`3`, not `3.0`): what a reader of the log expects.
            let number = if value.fract() == 0.0 && value.abs() < 9.0e15 {
                json!(value as i64)
            } else {
                json!(value)
            };
            self.members.insert(name.to_owned(), number);
            self.metrics.push((name, unit));
        }
        self
    }

    /// Adds a property: logged with the metrics, not a dimension.
    pub fn property(mut self, name: &'static str, value: impl Into<Value>) -> Self {
        self.members.insert(name.to_owned(), value.into());
        self
    }

    /// The JSON line, stamped `timestamp_ms` (milliseconds since the epoch).
    pub fn to_line(&self, timestamp_ms: i64) -> String {
        let metrics: Vec<Value> = self
            .metrics
            .iter()
            .map(|(name, unit)| json!({"Name": name, "Unit": unit.as_str()}))
            .collect();
        let mut document = self.members.clone();
        document.insert(
            "_aws".to_owned(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": self.dimension_sets,
                    "Metrics": metrics,
                }],
            }),
        );
        Value::Object(document).to_string()
    }
}

/// Where metric lines go.
pub trait MetricSink: Send + Sync {
    /// Emits one EMF line.
    fn emit(&self, line: String);
}

/// Stdout, which Lambda sends to CloudWatch Logs.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdoutEmf;

impl MetricSink for StdoutEmf {
    fn emit(&self, line: String) {
        println!("{line}");
    }
}

/// A sink that keeps the lines, for tests.
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug, Default)]
pub struct RecordedMetrics(std::sync::Mutex<Vec<String>>);

#[cfg(any(test, feature = "test-util"))]
impl RecordedMetrics {
    /// Every line emitted, parsed.
    pub fn documents(&self) -> Vec<Value> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

#[cfg(any(test, feature = "test-util"))]
impl MetricSink for RecordedMetrics {
    fn emit(&self, line: String) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dimension_and_metric_of_the_directive_is_a_top_level_member() {
        let line = MetricLine::new("groundwork/Test", &[&[], &["TaskType"]])
            .dimension("TaskType", "BoundingBox")
            .metric("Objects", 3.0, Unit::Count)
            .metric("MeanConfidence", f64::NAN, Unit::None)
            .property("LabelingJob", "animals")
            .to_line(1_714_557_600_000);
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 1_714_557_600_000_i64);
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "groundwork/Test");
        assert_eq!(directive["Dimensions"], json!([[], ["TaskType"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "Objects", "Unit": "Count"}])
        );
        assert_eq!(v["TaskType"], "BoundingBox");
        assert_eq!(v["Objects"], 3);
        assert!(v.get("MeanConfidence").is_none(), "NaN is left out");
        assert_eq!(v["LabelingJob"], "animals");
    }
}
