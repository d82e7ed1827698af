//! Custom task types: answers compared as canonical JSON; the most common answer wins, with its share of
//! the (quality-weighted) votes as its confidence. An option returns every worker's answer instead, as
//! AWS's recipe does, for teams that consolidate downstream.
//!
//! Canonical means: object keys sorted, integral floats written as integers, and strings that hold a JSON
//! object or array decoded (AWS's own NER custom template double-encodes its `entities`), so two workers
//! who gave the same answer compare equal however their browser serialised it.

use super::answers::parse_content;
use super::driver::{Driver, ObjectResult, Prepared};
use crate::metadata::round_confidence;
use crate::output::{LabelBody, WorkerContent};
use serde_json::{Map, Number, Value};
use std::sync::Arc;

/// What a custom consolidation returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CustomMode {
    /// The most common canonical answer.
    #[default]
    MostCommon,
    /// Every worker's answer, unconsolidated (`annotationsFromAllWorkers`).
    AllAnswers,
}

impl std::str::FromStr for CustomMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "most-common" | "majority" => Ok(CustomMode::MostCommon),
            "all-answers" | "all" => Ok(CustomMode::AllAnswers),
            other => Err(format!(
                "unknown custom mode `{other}` (most-common, all-answers)"
            )),
        }
    }
}

/// The canonical form of an answer.
pub fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut sorted = Map::with_capacity(map.len());
            for key in keys {
                sorted.insert(key.clone(), canonical(&map[key.as_str()]));
            }
            Value::Object(sorted)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => {
                Value::Number(Number::from(f as i64))
            }
            _ => value.clone(),
        },
        Value::String(s) => {
            let trimmed = s.trim_start();
            if trimmed.starts_with('{') || trimmed.starts_with('[') {
                match serde_json::from_str::<Value>(s) {
                    Ok(inner @ (Value::Object(_) | Value::Array(_))) => canonical(&inner),
                    _ => value.clone(),
                }
            } else {
                value.clone()
            }
        }
        Value::Null | Value::Bool(_) => value.clone(),
    }
}

/// The outcome of a majority over canonical answers.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomOutcome {
    /// The winning answer, canonical.
    pub answer: Value,
    /// Its weighted share of the votes (0 with a lone worker of unknown quality).
    pub confidence: f64,
    /// How many workers gave it.
    pub support: usize,
    /// Per worker: did they give the winning answer (1.0 / 0.0), for worker quality.
    pub agreement: Vec<(String, f64)>,
}

/// Majority over canonical answers. `weight` gives a worker's vote weight (their estimated reliability,
/// `None` when unknown: weight 1). Ties go to the answer whose canonical text sorts first, so the result
/// never depends on worker order.
pub fn most_common(
    answers: &[(String, Value)],
    weight: impl Fn(&str) -> Option<f64>,
) -> Option<CustomOutcome> {
    if answers.is_empty() {
        return None;
    }
    let canon: Vec<(String, Value)> = answers
        .iter()
        .map(|(_, a)| {
            let c = canonical(a);
            (c.to_string(), c)
        })
        .collect();
    let weights: Vec<f64> = answers
        .iter()
        .map(|(w, _)| {
            weight(w)
                .filter(|x| x.is_finite() && *x > 0.0)
                .unwrap_or(1.0)
        })
        .collect();
    let total: f64 = weights.iter().sum();
    let mut groups: Vec<(&str, f64, usize)> = Vec::new();
    for ((key, _), w) in canon.iter().zip(&weights) {
        match groups.iter_mut().find(|(k, _, _)| *k == key.as_str()) {
            Some(g) => {
                g.1 += w;
                g.2 += 1;
            }
            None => groups.push((key.as_str(), *w, 1)),
        }
    }
    groups.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let (winner_key, winner_weight, support) = groups[0];
    let winner = canon
        .iter()
        .find(|(k, _)| k == winner_key)
        .map(|(_, v)| v.clone())
        .unwrap_or(Value::Null);
    // A lone worker's "share" is always 1: the only honest confidence is what we know of the worker
    // (0.00 when nothing, as Ground Truth writes).
    let confidence = match answers {
        [(only, _)] => weight(only)
            .filter(|r| r.is_finite())
            .map_or(0.0, |r| r.clamp(0.0, 1.0)),
        _ if total > 0.0 => winner_weight / total,
        _ => 0.0,
    };
    let agreement = answers
        .iter()
        .zip(&canon)
        .map(|((w, _), (k, _))| (w.clone(), if k == winner_key { 1.0 } else { 0.0 }))
        .collect();
    Some(CustomOutcome {
        answer: winner,
        confidence,
        support,
        agreement,
    })
}

/// The batch's driver for custom task types: the most common answer (canonical JSON, weighted by the
/// workers' reliabilities) or every answer, as `CUSTOM_MODE` says.
pub(crate) fn custom_results(
    d: &mut Driver<'_, '_>,
    prepared: &mut [Prepared<'_>],
) -> Vec<ObjectResult> {
    let (priors, mode) = (d.priors, d.settings.custom_mode);
    let stats = &mut d.stats;
    prepared
        .iter()
        .map(|p| {
            if p.usable.is_empty() {
                return ObjectResult::Failed("no usable answer".to_owned());
            }
            match mode {
                CustomMode::AllAnswers => {
                    // The answers' texts are shared with the payload, not copied.
                    let all = p
                        .answers
                        .iter()
                        .filter_map(|a| {
                            a.content.as_ref().ok().map(|c| WorkerContent {
                                worker_id: Arc::clone(&a.worker_id),
                                content: Arc::clone(c),
                            })
                        })
                        .collect();
                    ObjectResult::Labeled {
                        body: LabelBody::AllAnswers(all),
                        confidence: 0.0,
                    }
                }
                CustomMode::MostCommon => {
                    // Every usable answer parsed as an object already; only the tree is new.
                    let answers: Vec<(String, Value)> = p
                        .usable
                        .iter()
                        .filter_map(|u| {
                            let tree = parse_content(u.answer.text()).ok()?;
                            Some((u.worker.to_owned(), Value::Object(tree)))
                        })
                        .collect();
                    match most_common(&answers, |w| priors.reliability(w)) {
                        None => ObjectResult::Failed("no usable answer".to_owned()),
                        Some(outcome) => {
                            if answers.len() > 1 {
                                for (worker, agreed) in &outcome.agreement {
                                    stats.add_agreement(worker, *agreed, 1.0);
                                }
                            }
                            let confidence = round_confidence(outcome.confidence);
                            ObjectResult::Labeled {
                                body: LabelBody::Custom {
                                    answer: outcome.answer,
                                    confidence,
                                },
                                confidence,
                            }
                        }
                    }
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_form_ignores_key_order_number_style_and_double_encoding() {
        let a = json!({"b": 1.0, "a": {"y": [1, 2], "x": "t"}});
        let b = json!({"a": {"x": "t", "y": [1.0, 2]}, "b": 1});
        assert_eq!(canonical(&a).to_string(), canonical(&b).to_string());
        let double =
            json!({"entities": "{\"0\":{\"startindex\":\"10\",\"tokentext\":\"tyrosine\"}}"});
        assert_eq!(
            canonical(&double),
            json!({"entities": {"0": {"startindex": "10", "tokentext": "tyrosine"}}})
        );
        assert_eq!(canonical(&json!("{not json")), json!("{not json"));
        assert_eq!(canonical(&json!(1.5)), json!(1.5));
    }

    #[test]
    fn majority_with_share_and_deterministic_ties() {
        let answers = vec![
            ("w1".to_owned(), json!({"v": "a"})),
            ("w2".to_owned(), json!({"v": "b"})),
            ("w3".to_owned(), json!({"v": "a"})),
        ];
        let out = most_common(&answers, |_| None).unwrap();
        assert_eq!(out.answer, json!({"v": "a"}));
        assert!((out.confidence - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(out.support, 2);
        assert_eq!(out.agreement[1], ("w2".to_owned(), 0.0));

        let tie = vec![("w1".to_owned(), json!("b")), ("w2".to_owned(), json!("a"))];
        let reversed: Vec<_> = tie.iter().rev().cloned().collect();
        assert_eq!(most_common(&tie, |_| None).unwrap().answer, json!("a"));
        assert_eq!(most_common(&reversed, |_| None).unwrap().answer, json!("a"));
    }

    #[test]
    fn quality_weights_votes() {
        let answers = vec![
            ("good".to_owned(), json!("x")),
            ("bad1".to_owned(), json!("y")),
            ("bad2".to_owned(), json!("y")),
        ];
        let out = most_common(&answers, |w| Some(if w == "good" { 0.95 } else { 0.3 })).unwrap();
        assert_eq!(out.answer, json!("x"));
        assert!((out.confidence - 0.95 / 1.55).abs() < 1e-12);
    }

    #[test]
    fn a_lone_worker_gets_zero_unless_known() {
        let one = vec![("w".to_owned(), json!("x"))];
        assert_eq!(most_common(&one, |_| None).unwrap().confidence, 0.0);
        assert_eq!(most_common(&one, |_| Some(0.9)).unwrap().confidence, 0.9);
        assert!(most_common(&[], |_| None).is_none());
    }
}
