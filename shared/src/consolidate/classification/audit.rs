//! Confidence recalibrated on an audited sample: when a team has checked some labels by hand.
//!
//! No gold-free model can see a mistake the whole crowd shares (an object every worker gets wrong the
//! same way looks exactly like an easy one), so on such crowds the model's confidence stays too high. A
//! reviewer's verdicts on a random sample of the labels (at least [`MIN_AUDITED`] objects) say how often
//! labels of each confidence are really right. [`AuditMap`] is the logistic map
//! `p = σ(a · logit(c) + b)` from the model's confidence `c` to the probability that the label is right,
//! fitted to those verdicts by maximum likelihood (Platt scaling; a weak Gaussian prior centred on the
//! identity map, `a = 1, b = 0`, keeps 50 verdicts from producing a degenerate map). Two parameters are
//! what 50 verdicts can support; the map is monotone, so it never reorders the labels by confidence, and
//! it never changes a label.
//!
//! A label from one answer carries Ground Truth's confidence 0 (no second answer to weigh it by); the
//! audit says how often such labels are right, so they get that rate instead (`(right + 1) / (n + 2)`
//! over the audited ones: 58 such objects of one real set are right 72 % of the time). They are kept
//! out of the logistic fit, which they would otherwise bend towards a flat line.
//!
//! [`AuditDocument`] is the same verdicts as a JSON document, the form the consolidation Lambda reads:
//! `groundwork audit` builds one from a job's output manifest and a reviewer's `task,label` file, and a
//! later job of the same kind recalibrates with it (see [`crate::consolidate::job_audit::audit_uri`]).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::synthetic::SmallRng;
use super::{SingleLabelOutcome, expected_calibration_error};
use crate::manifest::ManifestLine;

/// The fewest audited objects a map is fitted on.
pub const MIN_AUDITED: usize = 50;

/// Confidences are clamped to `[EDGE, 1 − EDGE]` before their logit is taken. Ground Truth's output
/// holds confidences to two decimals, so an audit built from an output manifest cannot tell 0.999 from
/// 0.99: the map treats raw and rounded confidences alike, and a few labels at 0.99999 do not pull the
/// slope towards the far tail of the logit scale. (On the ten real sets, whole and at three answers per
/// object, with 50 audited objects: mean ECE 0.051 at `1e-4`, 0.048 at 0.01.)
const EDGE: f64 = 0.01;

/// The prior's precision on `a − 1` and on `b` (in units of one verdict's curvature): weak enough for
/// 50 verdicts to move the map wherever they point, strong enough that a sample with no wrong label (or
/// no right one) does not send `a` to infinity, and that 50 verdicts do not chase their own noise (1
/// and 10 did slightly worse than 3 over the ten real sets).
const PRIOR_PRECISION: f64 = 3.0;

/// A confidence below this is a label from a single answer (Ground Truth's output rounds confidences to
/// two decimals: such a label reads 0.00).
pub const LONE_ANSWER_BELOW: f64 = 0.005;

/// Why no map could be fitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// Too few audited objects matched a label.
    #[error(
        "{found} audited objects match a consolidated label; at least {MIN_AUDITED} are needed"
    )]
    TooFew {
        /// How many matched.
        found: usize,
    },
}

/// The fitted map from a label's confidence to the probability that it is right.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AuditMap {
    /// Slope on the logit of the confidence.
    pub slope: f64,
    /// Intercept.
    pub intercept: f64,
    /// How many verdicts it was fitted on.
    pub audited: usize,
    /// How often an audited label from a single answer was right (smoothed); `None` when the audit had
    /// no such label, and such labels keep their confidence.
    pub lone_answer: Option<f64>,
}

fn logit(c: f64) -> f64 {
    let c = if c.is_finite() { c } else { 0.5 };
    let c = c.clamp(EDGE, 1.0 - EDGE);
    (c / (1.0 - c)).ln()
}

fn is_lone_answer(c: f64) -> bool {
    // NaN is no confidence at all: treated as the lowest.
    c.is_nan() || c < LONE_ANSWER_BELOW
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl AuditMap {
    /// Fits the map to `(model confidence, label was right)` verdicts.
    pub fn fit(verdicts: &[(f64, bool)]) -> Result<Self, AuditError> {
        if verdicts.len() < MIN_AUDITED {
            return Err(AuditError::TooFew {
                found: verdicts.len(),
            });
        }
        let (lone, scored): (Vec<Verdict>, Vec<Verdict>) = verdicts
            .iter()
            .map(|&(confidence, correct)| Verdict {
                confidence,
                correct,
            })
            .partition(|v| is_lone_answer(v.confidence));
        let lone_answer = (!lone.is_empty()).then(|| {
            let right = lone.iter().filter(|v| v.correct).count();
            (right as f64 + 1.0) / (lone.len() as f64 + 2.0)
        });
        let xs: Vec<(f64, f64)> = scored
            .iter()
            .map(|v| (logit(v.confidence), f64::from(u8::from(v.correct))))
            .collect();
        // Newton's method on the penalised log-likelihood (concave), each step halved until it improves
        // the objective: a full step can overshoot when the verdicts sit at the edges.
        let objective = |a: f64, b: f64| -> f64 {
            let prior = -0.5 * PRIOR_PRECISION * ((a - 1.0).powi(2) + b.powi(2));
            xs.iter().fold(prior, |acc, &(x, y)| {
                let z = a * x + b;
                // y·z − ln(1 + e^z), written to stay finite for large |z|.
                acc + y * z - (z.max(0.0) + (-z.abs()).exp().ln_1p())
            })
        };
        let (mut a, mut b) = (1.0, 0.0);
        let mut current = objective(a, b);
        for _ in 0..100 {
            let (mut ga, mut gb) = (-PRIOR_PRECISION * (a - 1.0), -PRIOR_PRECISION * b);
            let (mut haa, mut hab, mut hbb) = (PRIOR_PRECISION, 0.0, PRIOR_PRECISION);
            for &(x, y) in &xs {
                let p = sigmoid(a * x + b);
                let w = (p * (1.0 - p)).max(1e-12);
                ga += (y - p) * x;
                gb += y - p;
                haa += w * x * x;
                hab += w * x;
                hbb += w;
            }
            let det = haa * hbb - hab * hab;
            if det.abs() < 1e-18 {
                break;
            }
            let da = (hbb * ga - hab * gb) / det;
            let db = (haa * gb - hab * ga) / det;
            let mut step = 1.0;
            let mut moved = false;
            while step > 1e-6 {
                let (na, nb) = (a + step * da, b + step * db);
                let value = objective(na, nb);
                if value >= current {
                    (a, b, current) = (na, nb, value);
                    moved = true;
                    break;
                }
                step *= 0.5;
            }
            if !moved || (step * (da.abs() + db.abs())) < 1e-10 {
                break;
            }
        }
        Ok(Self {
            slope: a,
            intercept: b,
            audited: verdicts.len(),
            lone_answer,
        })
    }

    /// The probability that a label of model confidence `c` is right.
    pub fn apply(&self, c: f64) -> f64 {
        if is_lone_answer(c) {
            return self.lone_answer.unwrap_or(c);
        }
        sigmoid(self.slope * logit(c) + self.intercept)
    }

    /// Fits the map to the audited objects of a consolidation: `audited` gives, per item, the audited
    /// class (`None`: not audited).
    pub fn fit_outcome(
        outcome: &SingleLabelOutcome,
        audited: &[Option<usize>],
    ) -> Result<Self, AuditError> {
        let verdicts: Vec<(f64, bool)> = outcome
            .items
            .iter()
            .zip(audited)
            .filter_map(|(estimate, audit)| {
                let label = estimate.label?;
                audit.map(|truth| (estimate.confidence, truth == label))
            })
            .collect();
        Self::fit(&verdicts)
    }
}

/// One audited label: the model's confidence in it, and whether the reviewer agreed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Verdict {
    /// The confidence the label was given, before any recalibration.
    pub confidence: f64,
    /// The reviewer's class was the label's.
    pub correct: bool,
}

/// An audit as a document (JSON):
///
/// ```json
/// {"Source": "s3://bucket/out/pets-1/manifests/output/output.manifest",
///  "Verdicts": [{"Confidence": 0.97, "Correct": true}, {"Confidence": 0.62, "Correct": false}]}
/// ```
///
/// `Source` (optional) says which job's labels were audited. The confidences must be the model's own,
/// not already recalibrated ones: audit a job that ran without an audit document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AuditDocument {
    /// Where the audited labels come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The verdicts.
    pub verdicts: Vec<Verdict>,
}

/// Why an audit document or its inputs cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BadAudit {
    /// Not the document's JSON shape.
    #[error("not an audit document: {0}")]
    Shape(String),
    /// A verdict's confidence is not a probability.
    #[error("verdict {index}: confidence {confidence} is not within [0, 1]")]
    Confidence {
        /// 0-based position in `Verdicts`.
        index: usize,
        /// The value.
        confidence: f64,
    },
    /// Too few verdicts for a map.
    #[error(transparent)]
    TooFew(#[from] AuditError),
    /// A line of the audited output manifest is not a manifest line.
    #[error("manifest line {line}: {message}")]
    ManifestLine {
        /// 1-based.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

impl AuditDocument {
    /// Reads and checks a document (every confidence within `[0, 1]`).
    pub fn parse(bytes: &[u8]) -> Result<Self, BadAudit> {
        let document: Self =
            serde_json::from_slice(bytes).map_err(|e| BadAudit::Shape(e.to_string()))?;
        if let Some((index, v)) = document
            .verdicts
            .iter()
            .enumerate()
            .find(|(_, v)| !(0.0..=1.0).contains(&v.confidence))
        {
            return Err(BadAudit::Confidence {
                index,
                confidence: v.confidence,
            });
        }
        Ok(document)
    }

    /// The document's JSON.
    pub fn to_json_vec(&self) -> Vec<u8> {
        // A struct of strings, numbers and booleans always serialises.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// The map of the document in `bytes`: [`Self::parse`], then [`Self::map`].
    pub fn map_of(bytes: &[u8]) -> Result<AuditMap, BadAudit> {
        Ok(Self::parse(bytes)?.map()?)
    }

    /// The map its verdicts give.
    pub fn map(&self) -> Result<AuditMap, AuditError> {
        let verdicts: Vec<(f64, bool)> = self
            .verdicts
            .iter()
            .map(|v| (v.confidence, v.correct))
            .collect();
        AuditMap::fit(&verdicts)
    }

    /// Joins a job's output manifest with a reviewer's classes: every manifest line whose data
    /// (`source-ref`, or the inline `source`) is in `audited` and that carries a label under
    /// `label_attribute_name` (`<LAN>-metadata` with `class-name` and `confidence`) gives a verdict.
    /// Lines without such a label (objects that failed) and blank lines are passed over; a line that is
    /// not JSON is an error, with its number.
    pub fn from_output_manifest(
        manifest: &str,
        label_attribute_name: &str,
        audited: &HashMap<String, String>,
    ) -> Result<(Self, AuditJoin), BadAudit> {
        let metadata_key = format!("{label_attribute_name}-metadata");
        let mut verdicts = Vec::new();
        let mut join = AuditJoin::default();
        let mut seen = std::collections::HashSet::new();
        for (n, text) in manifest.lines().enumerate() {
            if text.trim().is_empty() {
                continue;
            }
            let line = ManifestLine::parse(text).map_err(|e| BadAudit::ManifestLine {
                line: n + 1,
                message: e.to_string(),
            })?;
            let data = line.source().value();
            let Some(truth) = audited.get(data) else {
                continue;
            };
            if !seen.insert(data.to_owned()) {
                join.repeated += 1;
                continue;
            }
            let metadata = line.get(&metadata_key);
            let class = metadata
                .and_then(|m| m.get(crate::output::CLASS_NAME))
                .and_then(|c| c.as_str());
            let confidence = metadata
                .and_then(|m| m.get(crate::output::CONFIDENCE))
                .and_then(|c| c.as_f64());
            match (class, confidence) {
                (Some(class), Some(confidence)) if (0.0..=1.0).contains(&confidence) => {
                    verdicts.push(Verdict {
                        confidence,
                        correct: class == truth,
                    });
                }
                _ => join.unlabeled += 1,
            }
        }
        join.missing = audited.len() - seen.len();
        Ok((
            Self {
                source: None,
                verdicts,
            },
            join,
        ))
    }
}

/// What [`AuditDocument::from_output_manifest`] could not match.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditJoin {
    /// Audited objects no manifest line holds.
    pub missing: usize,
    /// Audited objects whose line has no label under the name (the object failed).
    pub unlabeled: usize,
    /// Further lines of an object already joined (a manifest listing an object twice).
    pub repeated: usize,
}

/// The ECE a team would see with `n_audited` audited objects, estimated by cross-validation over the
/// gold: `rounds` times, `n_audited` gold objects drawn at random (seeded) are the audit, the map is
/// fitted on them and the ECE is measured on the other gold objects. Returns the mean ECE, or `None`
/// when there are too few gold objects.
pub fn cross_validated_ece(
    labels: &[Option<usize>],
    confidence: &[f64],
    gold: &[Option<usize>],
    n_audited: usize,
    rounds: usize,
    seed: u64,
) -> Option<f64> {
    let judged: Vec<usize> = (0..gold.len())
        .filter(|&i| gold[i].is_some() && labels[i].is_some())
        .collect();
    if n_audited < MIN_AUDITED || judged.len() < n_audited + MIN_AUDITED {
        return None;
    }
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut total = 0.0;
    for _ in 0..rounds.max(1) {
        let mut order = judged.clone();
        for i in (1..order.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let (audit, rest) = order.split_at(n_audited);
        let verdicts: Vec<(f64, bool)> = audit
            .iter()
            .map(|&i| (confidence[i], labels[i] == gold[i]))
            .collect();
        let map = AuditMap::fit(&verdicts).ok()?;
        let mapped: Vec<f64> = rest.iter().map(|&i| map.apply(confidence[i])).collect();
        let rest_labels: Vec<Option<usize>> = rest.iter().map(|&i| labels[i]).collect();
        let rest_gold: Vec<Option<usize>> = rest.iter().map(|&i| gold[i]).collect();
        total += expected_calibration_error(&mapped, &rest_labels, &rest_gold, 10);
    }
    Some(total / rounds.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_few_verdicts_are_refused() {
        let verdicts = vec![(0.9, true); MIN_AUDITED - 1];
        assert_eq!(
            AuditMap::fit(&verdicts),
            Err(AuditError::TooFew {
                found: MIN_AUDITED - 1
            })
        );
    }

    #[test]
    fn an_over_confident_model_is_brought_down_to_its_accuracy() {
        // The model says 0.99 and is right 80 % of the time; says 0.6 and is right 55 %.
        let mut verdicts = Vec::new();
        for i in 0..100 {
            verdicts.push((0.99, i % 5 != 0));
            verdicts.push((0.6, i % 20 < 11));
        }
        let map = AuditMap::fit(&verdicts).expect("enough verdicts");
        assert!((map.apply(0.99) - 0.8).abs() < 0.03, "{}", map.apply(0.99));
        assert!((map.apply(0.6) - 0.55).abs() < 0.05, "{}", map.apply(0.6));
        assert!(map.apply(0.99) > map.apply(0.6), "monotone");
    }

    #[test]
    fn a_calibrated_model_is_left_nearly_alone() {
        let mut rng = SmallRng::seed_from_u64(4);
        let verdicts: Vec<(f64, bool)> = (0..2000)
            .map(|_| {
                let c = rng.uniform_range(0.5, 1.0);
                (c, rng.uniform() < c)
            })
            .collect();
        let map = AuditMap::fit(&verdicts).expect("enough verdicts");
        for c in [0.55, 0.7, 0.9] {
            assert!((map.apply(c) - c).abs() < 0.04, "{c} -> {}", map.apply(c));
        }
    }

    #[test]
    fn a_sample_without_a_wrong_label_gives_a_finite_map() {
        let verdicts = vec![(0.95, true); 60];
        let map = AuditMap::fit(&verdicts).expect("enough verdicts");
        assert!(map.slope.is_finite() && map.intercept.is_finite());
        assert!(map.apply(0.95) > 0.95 && map.apply(0.95) < 1.0);
    }

    #[test]
    fn lone_answer_labels_get_the_audited_rate_and_stay_out_of_the_fit() {
        let mut verdicts: Vec<(f64, bool)> = (0..60).map(|i| (0.9, i % 10 != 0)).collect();
        // Ten labels from one answer, seven of them right.
        verdicts.extend((0..10).map(|i| (0.0, i < 7)));
        let map = AuditMap::fit(&verdicts).expect("enough verdicts");
        assert_eq!(map.lone_answer, Some(8.0 / 12.0));
        assert!((map.apply(0.0) - 8.0 / 12.0).abs() < 1e-12);
        assert!((map.apply(0.9) - 0.9).abs() < 0.03, "{}", map.apply(0.9));
        // Without such labels in the audit, they keep their confidence.
        let map = AuditMap::fit(&verdicts[..60]).expect("enough verdicts");
        assert_eq!((map.lone_answer, map.apply(0.0)), (None, 0.0));
    }

    #[test]
    fn an_audit_document_round_trips_and_refuses_what_is_not_a_probability() {
        let document = AuditDocument {
            source: Some("s3://b/out/job/manifests/output/output.manifest".to_owned()),
            verdicts: vec![
                Verdict {
                    confidence: 0.9,
                    correct: true
                };
                MIN_AUDITED
            ],
        };
        let parsed = AuditDocument::parse(&document.to_json_vec()).expect("its own JSON");
        assert_eq!(parsed, document);
        assert!(parsed.map().is_ok());
        let few = AuditDocument::parse(br#"{"Verdicts":[{"Confidence":0.5,"Correct":true}]}"#)
            .expect("a document");
        assert_eq!(few.map(), Err(AuditError::TooFew { found: 1 }));
        let bad = br#"{"Verdicts":[{"Confidence":0.5,"Correct":true},{"Confidence":1.5,"Correct":true}]}"#;
        assert_eq!(
            AuditDocument::parse(bad),
            Err(BadAudit::Confidence {
                index: 1,
                confidence: 1.5
            })
        );
        for shape in [
            &b"[]"[..],
            br#"{"Verdicts":[{"Confidence":0.5}]}"#,
            br#"{"Verdicts":[],"Extra":1}"#,
        ] {
            assert!(matches!(
                AuditDocument::parse(shape),
                Err(BadAudit::Shape(_))
            ));
        }
    }

    #[test]
    fn an_output_manifest_joined_with_a_review_gives_one_verdict_per_audited_label() {
        let manifest = concat!(
            r#"{"source-ref":"s3://b/a.jpg","pet":0,"pet-metadata":{"class-name":"cat","confidence":0.97}}"#,
            "\n",
            r#"{"source-ref":"s3://b/b.jpg","pet":1,"pet-metadata":{"class-name":"dog","confidence":0.61}}"#,
            "\n\n",
            r#"{"source-ref":"s3://b/c.jpg","pet-metadata":{"failure-reason":"no usable answer"}}"#,
            "\n",
            r#"{"source":"a text","pet":0,"pet-metadata":{"class-name":"cat","confidence":0.0}}"#,
            "\n",
            r#"{"source-ref":"s3://b/a.jpg","pet":0,"pet-metadata":{"class-name":"cat","confidence":0.97}}"#,
            "\n",
            r#"{"source-ref":"s3://b/unaudited.jpg","pet":0,"pet-metadata":{"class-name":"cat","confidence":0.5}}"#,
        );
        let audited: HashMap<String, String> = [
            ("s3://b/a.jpg", "cat"),
            ("s3://b/b.jpg", "cat"),
            ("s3://b/c.jpg", "cat"),
            ("a text", "cat"),
            ("s3://b/never.jpg", "dog"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let (document, join) =
            AuditDocument::from_output_manifest(manifest, "pet", &audited).expect("a manifest");
        assert_eq!(
            document.verdicts,
            vec![
                Verdict {
                    confidence: 0.97,
                    correct: true
                },
                Verdict {
                    confidence: 0.61,
                    correct: false
                },
                Verdict {
                    confidence: 0.0,
                    correct: true
                },
            ]
        );
        assert_eq!(
            join,
            AuditJoin {
                missing: 1,
                unlabeled: 1,
                repeated: 1
            }
        );
        let broken = "{\"source-ref\":\"s3://b/a.jpg\"}\nnot json\n";
        assert!(matches!(
            AuditDocument::from_output_manifest(broken, "pet", &audited),
            Err(BadAudit::ManifestLine { line: 2, .. })
        ));
    }
}
