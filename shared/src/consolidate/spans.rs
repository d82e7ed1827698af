//! Named-entity consolidation (`crowd-entity-annotation`): several workers' entity spans for one text in, one
//! list of entities with a confidence each out, in Ground Truth's `groundtruth/text-span` format
//! (`contracts.md` §4.2).
//!
//! ## Algorithm
//! 1. **Parse** every worker's answer (the driver reads each into an [`EntityAnswer`]); a malformed answer
//!    skips that worker, a malformed span (missing or non-integer offsets, empty or reversed range, past the
//!    end of the text, unknown label) drops that span, each with its reason. Offsets are Unicode scalar
//!    (`char`) offsets, `endOffset` exclusive, checked against the text's length in chars when the text is
//!    known; leading and trailing whitespace is then trimmed (a selection that grabbed the neighbouring space
//!    marks the same entity). Work is bounded by [`SpanConfig::max_workers`] and
//!    [`SpanConfig::max_spans_per_worker`].
//! 2. **Cluster** the spans with the bounding-box matcher (a span is a one-pixel-high box, so the boxes' IoU
//!    is the Jaccard index of the character ranges): each worker's spans are matched to the clusters by an
//!    optimal assignment over pairs with Jaccard ≥ [`SpanConfig::match_jaccard`], preferring pairs with the
//!    same label, then re-matched against fixed centres. A cluster holds **at most one span per worker**.
//!
//!    *Overlapping entities of different labels.* Clustering ignores labels (apart from the tie-breaking
//!    bonus), so a worker who picked the wrong label for the right words still votes for the entity's
//!    boundaries and is outvoted on its label. Nested or overlapping entities that the crowd really sees as
//!    two (`Bank of America` ORG over `America` LOC) stay apart anyway: either their ranges overlap too
//!    little to match, or each worker drew both — and since one worker's two spans can never share a
//!    cluster, the assignment puts each into the cluster of its own label. Clustering per label instead
//!    would split every label confusion into two half-supported clusters that both fail the quorum.
//! 3. **Keep** a cluster when the weights of the workers who drew it reach [`SpanConfig::quorum`] of the
//!    total usable weight (default one half: with three workers, two must agree).
//! 4. **Boundaries**: the start and the end most workers chose (weighted mode); when no value clearly
//!    leads, the one on a word edge if exactly one of the tied leaders is, else the weighted median (always
//!    an offset some worker chose). **Label**: weighted vote, ties to the label that comes first in the
//!    job's list.
//! 5. **Confidence** per entity, the probability that it is exactly right: that it exists (workers who drew
//!    it against those who did not, where coinciding spurious spans are rare) × that its label is right ×
//!    that each boundary is right, the last three as one-coin posteriors of the weighted votes. `0.00` for
//!    a lone worker of unknown reliability, like Ground Truth. The model's rates
//!    ([`SpanConfig::worker_recall`], [`SpanConfig::false_alarm_rate`], [`SpanConfig::label_accuracy`],
//!    [`SpanConfig::boundary_accuracy`]) were set so that confidences are calibrated on the synthetic crowd
//!    of the tests; refit them from real jobs when available.
//!
//! Entities are sorted by start offset (then end, then label); an entity found twice (same label and range)
//! is written once.

use std::borrow::Cow;

use serde::de::MapAccess;
use serde_json::{Map, Value};

use crate::output::{EntitiesLabel, Entity, LabelBody};

use super::boxes::{Candidate, MatchParams, Rect, cluster_candidates, vote_class};
pub use super::crowd::{Dropped, NoUsableAnswer, WorkerAgreement, WorkerAnswer};
use super::crowd::{GeometryLabel, geometry_results, mean, no_usable_reason};
use super::crowd::{
    ReasonLog, existence_probability, round_confidence, usable_answers, vote_posterior, vote_weight,
};
use super::driver::{Driver, ObjectResult, Prepared};
use super::reading::{List, ReadJson, Scalar, next_key, next_value, read_tree};

/// How many places a boundary could plausibly be (the right one, a character or a word either way), for
/// the boundary vote's posterior.
const BOUNDARY_OPTIONS: usize = 5;

/// Ground Truth's `type` for named-entity labels.
pub const TEXT_SPAN_TYPE: &str = "groundtruth/text-span";

/// Why a worker's whole entity answer is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntityAnswerError {
    /// The answer is not an object.
    #[error("the answer is not a JSON object")]
    NotAnObject,
    /// `entities` is there but neither a list nor `null`.
    #[error("`entities` is neither a list nor null")]
    EntitiesNotAList,
}

/// Why a worker's answer was skipped during consolidation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpanWorkerProblem {
    /// The answer could not be parsed.
    #[error(transparent)]
    Unparseable(#[from] EntityAnswerError),
    /// More workers than [`SpanConfig::max_workers`].
    #[error("more than {0} workers answered; the rest are ignored")]
    TooManyWorkers(usize),
}

/// Why one entity span was left out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpanProblem {
    /// The list item is not an object.
    #[error("the entity is not a JSON object")]
    NotAnObject,
    /// An offset is missing or not a non-negative integer.
    #[error("`{0}` is missing or not a non-negative integer")]
    BadOffset(&'static str),
    /// `label` is missing or not a string.
    #[error("`label` is missing or not a string")]
    BadLabel,
    /// `endOffset` is not after `startOffset`.
    #[error("empty or reversed range {start}..{end}")]
    EmptyRange {
        /// `startOffset`.
        start: u64,
        /// `endOffset`.
        end: u64,
    },
    /// The range ends past the end of the text.
    #[error("range {start}..{end} ends past the text's {length} characters")]
    PastTheText {
        /// `startOffset`.
        start: u64,
        /// `endOffset`.
        end: u64,
        /// The text's length in chars.
        length: u64,
    },
    /// The label is not one of the job's labels.
    #[error("label `{0}` is not one of the job's labels")]
    UnknownLabel(String),
    /// The range holds only whitespace.
    #[error("the range holds only whitespace")]
    OnlyWhitespace,
}

/// One entity span as a worker marked it: an item of `entities` (`{"endOffset","label","startOffset"}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrawnSpan<'a> {
    /// Position in the worker's `entities` list.
    pub index: usize,
    /// `label` (borrowed from the answer's text when it has no escapes).
    pub label: Cow<'a, str>,
    /// `startOffset`: the first character.
    pub start: u64,
    /// `endOffset`: one past the last character.
    pub end: u64,
}

/// One worker's `crowd-entity-annotation` output, the engine's input
/// (`{"entities":[{"endOffset","label","startOffset"}…]}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityAnswer<'a> {
    /// The well-formed spans (not yet checked against the text or the labels).
    pub entities: Vec<DrawnSpan<'a>>,
    /// Malformed spans: position in the list and problem.
    pub rejected: Vec<(usize, SpanProblem)>,
}

/// A worker's output as its driver read it: the answer, or why the whole of it is unusable.
pub type EntityOutput<'a> = Result<EntityAnswer<'a>, EntityAnswerError>;

/// Reads a worker's output from a JSON tree, by the reader the batch uses on answer texts; `entities`
/// may be absent or `null` (nothing marked). Offsets written as floats with no fraction (`4.0`) are
/// accepted.
pub fn parse_entity_answer(answer: &Value) -> EntityOutput<'_> {
    read_tree(answer)
}

/// The reader of a worker's output: one pass; a malformed span is rejected with its reason, a malformed
/// answer is an error; a key given twice keeps its last value.
impl<'de> ReadJson<'de> for EntityOutput<'de> {
    fn other() -> Self {
        Err(EntityAnswerError::NotAnObject)
    }

    fn map<M: MapAccess<'de>>(mut map: M) -> Result<Self, M::Error> {
        let mut list = None;
        while let Some(key) = next_key(&mut map)? {
            if key == "entities" {
                list = Some(next_value::<List<SpanItem<'de>>, M>(&mut map)?);
            } else {
                next_value::<Scalar<'de>, M>(&mut map)?;
            }
        }
        let mut entities = Vec::new();
        let mut rejected = Vec::new();
        match list {
            None | Some(List::Null) => {}
            Some(List::Items(items)) => {
                entities.reserve(items.len());
                for (index, SpanItem(item)) in items.into_iter().enumerate() {
                    match item {
                        Ok(mut span) => {
                            span.index = index;
                            entities.push(span);
                        }
                        Err(problem) => rejected.push((index, problem)),
                    }
                }
            }
            Some(List::Other) => return Ok(Err(EntityAnswerError::EntitiesNotAList)),
        }
        Ok(Ok(EntityAnswer { entities, rejected }))
    }
}

/// One item of `entities`: a span, or why it was left out (its `index` is set by the list).
struct SpanItem<'a>(Result<DrawnSpan<'a>, SpanProblem>);

impl<'de> ReadJson<'de> for SpanItem<'de> {
    fn other() -> Self {
        SpanItem(Err(SpanProblem::NotAnObject))
    }

    fn map<M: MapAccess<'de>>(mut map: M) -> Result<Self, M::Error> {
        let (mut label, mut start, mut end) = (None, None, None);
        while let Some(key) = next_key(&mut map)? {
            let value = next_value::<Scalar<'de>, M>(&mut map)?;
            match key.as_ref() {
                "label" => label = Some(value),
                "startOffset" => start = Some(value),
                "endOffset" => end = Some(value),
                _ => {}
            }
        }
        let offset = |value: Option<Scalar<'_>>, key: &'static str| {
            let value = value.ok_or(SpanProblem::BadOffset(key))?;
            value
                .as_u64()
                .or_else(|| {
                    value
                        .as_f64()
                        .filter(|v| *v >= 0.0 && v.fract() == 0.0 && *v <= 9.0e15)
                        .map(|v| v as u64)
                })
                .ok_or(SpanProblem::BadOffset(key))
        };
        let span = (|| {
            let span = DrawnSpan {
                index: 0,
                label: label
                    .and_then(Scalar::into_str)
                    .ok_or(SpanProblem::BadLabel)?,
                start: offset(start, "startOffset")?,
                end: offset(end, "endOffset")?,
            };
            if span.end <= span.start {
                return Err(SpanProblem::EmptyRange {
                    start: span.start,
                    end: span.end,
                });
            }
            Ok(span)
        })();
        Ok(SpanItem(span))
    }
}

/// Tuning of [`consolidate_spans`].
#[derive(Debug, Clone, PartialEq)]
pub struct SpanConfig {
    /// Least Jaccard index of two spans' character ranges for them to be the same entity.
    pub match_jaccard: f64,
    /// Added to a pair's Jaccard index when the labels agree (prefers same-label pairs; cannot make a pair
    /// below [`Self::match_jaccard`] match).
    pub same_label_bonus: f64,
    /// Share of the total worker weight that must have marked an entity for it to be kept.
    pub quorum: f64,
    /// Reliability assumed for workers of unknown quality.
    pub neutral_reliability: f64,
    /// Chance that a neutral worker marks an entity that is there (for the existence probability).
    pub worker_recall: f64,
    /// Chance that a worker marks the same span as another worker's spurious one.
    pub false_alarm_rate: f64,
    /// Chance that a neutral worker picks the right label (for the confidence).
    pub label_accuracy: f64,
    /// Chance that a neutral worker puts a boundary exactly right (for the confidence).
    pub boundary_accuracy: f64,
    /// Re-matching passes after the first.
    pub refinement_passes: usize,
    /// Spans kept per worker; the rest are dropped.
    pub max_spans_per_worker: usize,
    /// Workers considered per object; later answers are skipped.
    pub max_workers: usize,
}

impl Default for SpanConfig {
    fn default() -> Self {
        Self {
            match_jaccard: 0.5,
            same_label_bonus: 0.1,
            quorum: 0.5,
            neutral_reliability: super::crowd::NEUTRAL_RELIABILITY,
            worker_recall: 0.85,
            false_alarm_rate: 0.05,
            label_accuracy: 0.85,
            boundary_accuracy: 0.85,
            refinement_passes: 2,
            max_spans_per_worker: 500,
            max_workers: 32,
        }
    }
}

/// One label of the job: its name and, when known, its `shortDisplayName`.
pub type JobLabel = (String, Option<String>);

/// What the job contributes to consolidating one text.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpanJob<'a> {
    /// The text (the data object's `content`), to check offsets against; `None` when unknown.
    pub text: Option<&'a str>,
    /// The job's labels in order, with their short display names. Empty when the job has no label file:
    /// the labels the workers used are then listed, sorted.
    pub labels: &'a [JobLabel],
}

/// One consolidated entity: the output's own entity.
pub type ConsolidatedEntity = Entity;

/// The consolidated label of one text.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanConsolidation {
    /// The labels the output lists (`annotations.labels`): the job's, with their short display names,
    /// or the ones the workers used.
    pub labels: Vec<(String, Option<String>)>,
    /// The entities, sorted by start offset.
    pub entities: Vec<ConsolidatedEntity>,
    /// Answers and spans left out, with reasons.
    pub dropped: Vec<Dropped>,
    /// Per-worker agreement (empty with fewer than two usable workers): `agreed` = kept entities the worker
    /// marked exactly (label and boundaries), `total` = the worker's usable spans plus the kept entities it
    /// did not mark at all.
    pub agreements: Vec<WorkerAgreement>,
}

/// Consolidates the workers' entity spans for one text. Fails only when no worker answer is usable.
pub fn consolidate_spans(
    workers: &[WorkerAnswer<'_, EntityOutput<'_>>],
    job: &SpanJob<'_>,
    config: &SpanConfig,
) -> Result<SpanConsolidation, NoUsableAnswer> {
    let mut dropped = Vec::new();

    let parsed = usable_answers(
        workers,
        config.max_workers,
        SpanWorkerProblem::TooManyWorkers,
        &mut dropped,
    );
    if parsed.is_empty() {
        return Err(NoUsableAnswer { dropped });
    }

    // The label table: the job's, or the sorted labels seen.
    let labels: Vec<(&str, Option<&str>)> = super::job_or_seen_labels(
        job.labels
            .iter()
            .map(|(label, short)| (label.as_str(), short.as_deref()))
            .collect(),
        parsed.iter().flat_map(|(_, answer)| {
            answer
                .entities
                .iter()
                .map(|span| (span.label.as_ref(), None))
        }),
    );
    let text: Option<TextChars<'_>> = job.text.map(TextChars::new);
    let text_length = text.as_ref().map(|chars| chars.len() as u64);

    // Usable spans, as one-pixel-high boxes for the shared matcher.
    let mut candidates: Vec<Vec<Candidate>> = Vec::with_capacity(parsed.len());
    let mut weights = Vec::with_capacity(parsed.len());
    for (usable_index, (worker, answer)) in parsed.iter().enumerate() {
        let mut reasons = ReasonLog::new(worker.worker_id);
        for (index, problem) in &answer.rejected {
            reasons.push(&mut dropped, *index, problem);
        }
        let mut spans = Vec::with_capacity(answer.entities.len().min(config.max_spans_per_worker));
        let mut over_cap = 0usize;
        for span in &answer.entities {
            let Some(class) = labels.iter().position(|(label, _)| *label == span.label) else {
                reasons.push(
                    &mut dropped,
                    span.index,
                    SpanProblem::UnknownLabel(span.label.to_string()),
                );
                continue;
            };
            if let Some(length) = text_length.filter(|length| span.end > *length) {
                reasons.push(
                    &mut dropped,
                    span.index,
                    SpanProblem::PastTheText {
                        start: span.start,
                        end: span.end,
                        length,
                    },
                );
                continue;
            }
            let (start, end) = match &text {
                Some(chars) => match trim_whitespace(chars, span.start, span.end) {
                    Some(range) => range,
                    None => {
                        reasons.push(&mut dropped, span.index, SpanProblem::OnlyWhitespace);
                        continue;
                    }
                },
                None => (span.start, span.end),
            };
            if spans.len() >= config.max_spans_per_worker {
                over_cap += 1;
                continue;
            }
            spans.push(Candidate {
                worker: usable_index,
                item: spans.len(),
                rect: Rect::from_xywh(start as f64, 0.0, (end - start) as f64, 1.0),
                class,
            });
        }
        reasons.finish(&mut dropped);
        if over_cap > 0 {
            dropped.push(Dropped::worker(
                worker.worker_id,
                format!(
                    "{over_cap} entities dropped: over the cap of {} per worker",
                    config.max_spans_per_worker
                ),
            ));
        }
        candidates.push(spans);
        weights.push(vote_weight(worker.reliability, config.neutral_reliability));
    }

    let params = MatchParams {
        min_overlap: config.match_jaccard,
        same_label_bonus: config.same_label_bonus,
        refinement_passes: config.refinement_passes,
    };
    let clusters = cluster_candidates(&candidates, &weights, params);
    let total_weight: f64 = weights.iter().sum();
    let lone_worker = parsed.len() == 1;
    let lone_confidence = parsed
        .first()
        .and_then(|(worker, _)| worker.reliability)
        .filter(|p| p.is_finite())
        .unwrap_or(0.0);

    let mut entities: Vec<(ConsolidatedEntity, usize)> = Vec::with_capacity(clusters.len());
    for (index, members) in clusters.iter().enumerate() {
        let member_weight: f64 = members.iter().map(|m| weights[m.worker]).sum();
        if !lone_worker && member_weight + 1e-9 < config.quorum * total_weight {
            continue;
        }
        let Some((start, end)) = choose_boundaries(members, &weights, text.as_ref()) else {
            continue;
        };
        let (class, _) = vote_class(members, &weights);
        let Some((label, _)) = labels.get(class) else {
            continue;
        };
        let confidence = if lone_worker {
            lone_confidence
        } else {
            let exists = existence_probability(
                total_weight,
                member_weight,
                config.worker_recall,
                config.false_alarm_rate,
            );
            let vote = |pick: fn(&Candidate) -> u64, chosen: u64| {
                let votes = members.iter().map(|m| (pick(m), weights[m.worker]));
                vote_posterior(votes, chosen, config.boundary_accuracy, BOUNDARY_OPTIONS)
            };
            let labels_voted = members.iter().map(|m| (m.class, weights[m.worker]));
            exists
                * vote_posterior(labels_voted, class, config.label_accuracy, labels.len())
                * vote(|m| span_of(m).0, start)
                * vote(|m| span_of(m).1, end)
        };
        entities.push((
            ConsolidatedEntity {
                label: (*label).to_owned(),
                start_offset: start,
                end_offset: end,
                confidence: round_confidence(confidence),
                workers: members.len(),
            },
            index,
        ));
    }

    // Sorted by start; the same entity found twice is written once (the more confident one).
    entities.sort_by(|(a, _), (b, _)| {
        (a.start_offset, a.end_offset, &a.label)
            .cmp(&(b.start_offset, b.end_offset, &b.label))
            .then(b.confidence.total_cmp(&a.confidence))
    });
    entities.dedup_by(|(later, _), (earlier, _)| {
        later.start_offset == earlier.start_offset
            && later.end_offset == earlier.end_offset
            && later.label == earlier.label
    });

    let agreements = if parsed.len() >= 2 {
        parsed
            .iter()
            .enumerate()
            .map(|(worker, (answer, _))| {
                let mut agreed = 0.0;
                let mut missed = 0.0;
                for (entity, index) in &entities {
                    match clusters.get(*index).iter().find(|m| m.worker == worker) {
                        Some(member)
                            if span_of(member) == (entity.start_offset, entity.end_offset)
                                && labels.get(member.class).map(|l| l.0)
                                    == Some(entity.label.as_str()) =>
                        {
                            agreed += 1.0;
                        }
                        Some(_) => {}
                        None => missed += 1.0,
                    }
                }
                WorkerAgreement {
                    worker_id: answer.worker_id.to_owned(),
                    agreed,
                    total: candidates[worker].len() as f64 + missed,
                }
            })
            .collect()
    } else {
        Vec::new()
    };

    let entities: Vec<ConsolidatedEntity> =
        entities.into_iter().map(|(entity, _)| entity).collect();
    Ok(SpanConsolidation {
        labels: labels
            .iter()
            .map(|(label, short)| ((*label).to_owned(), short.map(str::to_owned)))
            .collect(),
        entities,
        dropped,
        agreements,
    })
}

/// A member's character range.
fn span_of(member: &Candidate) -> (u64, u64) {
    (member.rect.left as u64, member.rect.right as u64)
}

/// The text, indexable by character offset: the bytes themselves when it is ASCII (character offsets are
/// byte offsets then, and nothing needs decoding), else the decoded characters.
#[derive(Debug)]
enum TextChars<'a> {
    Ascii(&'a [u8]),
    Decoded(Vec<char>),
}

impl<'a> TextChars<'a> {
    fn new(text: &'a str) -> Self {
        if text.is_ascii() {
            Self::Ascii(text.as_bytes())
        } else {
            let mut chars = Vec::with_capacity(text.len());
            chars.extend(text.chars());
            Self::Decoded(chars)
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Ascii(bytes) => bytes.len(),
            Self::Decoded(chars) => chars.len(),
        }
    }

    fn get(&self, index: usize) -> Option<char> {
        match self {
            Self::Ascii(bytes) => bytes.get(index).map(|&b| char::from(b)),
            Self::Decoded(chars) => chars.get(index).copied(),
        }
    }
}

/// The span without leading and trailing whitespace; `None` when nothing else is left. Offsets are within
/// the text (checked before).
fn trim_whitespace(chars: &TextChars<'_>, mut start: u64, mut end: u64) -> Option<(u64, u64)> {
    let is_space = |offset: u64| {
        usize::try_from(offset)
            .ok()
            .and_then(|i| chars.get(i))
            .is_some_and(char::is_whitespace)
    };
    while start < end && is_space(start) {
        start += 1;
    }
    while end > start && is_space(end - 1) {
        end -= 1;
    }
    (start < end).then_some((start, end))
}

/// Whether the character at `offset` is part of a word (letters and digits of any script).
fn is_word_char(chars: &TextChars<'_>, offset: Option<u64>) -> bool {
    offset
        .and_then(|o| usize::try_from(o).ok())
        .and_then(|i| chars.get(i))
        .is_some_and(char::is_alphanumeric)
}

/// A boundary offset and the weight of the worker who chose it.
type WeightedOffset = (u64, f64);

/// Start and end (see the module docs, step 4); `None` if they would cross. With the text known, a tie
/// between boundaries goes to one that sits on a word edge (a stray character of punctuation at either end
/// is the commonest selection slip).
fn choose_boundaries(
    members: &[Candidate],
    weights: &[f64],
    text: Option<&TextChars<'_>>,
) -> Option<(u64, u64)> {
    // One item per worker per cluster: stack buffers serve all but the largest crowds.
    let (mut start_stack, mut end_stack) = ([(0u64, 0.0f64); 16], [(0u64, 0.0f64); 16]);
    let (mut start_heap, mut end_heap) = (Vec::new(), Vec::new());
    let (starts, ends): (&mut [WeightedOffset], &mut [WeightedOffset]) = if members.len() <= 16 {
        (
            &mut start_stack[..members.len()],
            &mut end_stack[..members.len()],
        )
    } else {
        start_heap.resize(members.len(), (0, 0.0));
        end_heap.resize(members.len(), (0, 0.0));
        (&mut start_heap, &mut end_heap)
    };
    for ((start, end), member) in starts.iter_mut().zip(ends.iter_mut()).zip(members) {
        let (from, to) = span_of(member);
        *start = (from, weights[member.worker]);
        *end = (to, weights[member.worker]);
    }
    let starts_a_word = |offset: u64| {
        text.is_some_and(|chars| {
            is_word_char(chars, Some(offset)) && !is_word_char(chars, offset.checked_sub(1))
        })
    };
    let ends_a_word = |offset: u64| {
        text.is_some_and(|chars| {
            is_word_char(chars, offset.checked_sub(1)) && !is_word_char(chars, Some(offset))
        })
    };
    let start = mode_or_median(starts, starts_a_word)?;
    let end = mode_or_median(ends, ends_a_word)?;
    if start < end {
        return Some((start, end));
    }
    // Crossed boundaries (possible only for tiny, barely overlapping spans): the heaviest member's span.
    members
        .iter()
        .max_by(|a, b| weights[a.worker].total_cmp(&weights[b.worker]))
        .map(span_of)
}

/// The value with the most weight when it clearly leads (strictly more than any other); among tied leaders,
/// the only one on a word edge if there is exactly one; else the lower weighted median, so the result is
/// always a value some worker chose.
fn mode_or_median(values: &mut [(u64, f64)], on_word_edge: impl Fn(u64) -> bool) -> Option<u64> {
    values.sort_unstable_by_key(|v| v.0);
    // Merge equal values in place: values[..distinct] become the tallies.
    let mut distinct = 0;
    for index in 0..values.len() {
        let (value, weight) = values[index];
        if distinct > 0 && values[distinct - 1].0 == value {
            values[distinct - 1].1 += weight;
        } else {
            values[distinct] = (value, weight);
            distinct += 1;
        }
    }
    let tallies = &values[..distinct];
    let leader = tallies
        .iter()
        .map(|t| t.1)
        .fold(f64::NEG_INFINITY, f64::max);
    let mut leaders = tallies.iter().filter(|t| t.1 >= leader - 1e-9);
    let first = leaders.next()?;
    if leaders.next().is_none() {
        return Some(first.0);
    }
    let mut on_edges = tallies
        .iter()
        .filter(|t| t.1 >= leader - 1e-9 && on_word_edge(t.0));
    if let (Some(only), None) = (on_edges.next(), on_edges.next()) {
        return Some(only.0);
    }
    let total: f64 = tallies.iter().map(|t| t.1).sum();
    let mut cumulative = 0.0;
    for &(value, weight) in tallies {
        cumulative += weight;
        if cumulative >= total / 2.0 - 1e-9 {
            return Some(value);
        }
    }
    tallies.last().map(|t| t.0)
}

impl SpanConsolidation {
    /// The label as Ground Truth's named-entity output ([`crate::output::EntitiesLabel`]), what was
    /// dropped included.
    pub fn output(&self) -> EntitiesLabel {
        EntitiesLabel {
            labels: self.labels.clone(),
            entities: self.entities.clone(),
            dropped: super::crowd::dropped_list(&self.dropped),
        }
    }

    /// The `<LAN>` value as JSON: `{"annotations":{"labels":[…],"entities":[…]}}`.
    pub fn label(&self) -> Value {
        LabelBody::Entities(self.output())
            .label_json()
            .unwrap_or(Value::Null)
    }

    /// The label's own `<LAN>-metadata` keys as JSON: `entities` (one confidence per entity).
    pub fn metadata(&self) -> Map<String, Value> {
        LabelBody::Entities(self.output()).metadata_json()
    }
}

/// The batch's driver for named entities: each object's answers through [`consolidate_spans`] against
/// the object's text and the job's labels.
pub(crate) fn span_results(
    d: &mut Driver<'_, '_>,
    prepared: &mut [Prepared<'_>],
) -> Vec<ObjectResult> {
    let (job, task_type, priors, settings) = (d.job, d.task_type, d.priors, d.settings);
    let stats = &mut d.stats;
    let labels: Vec<JobLabel> = job
        .labels
        .unwrap_or(&[])
        .iter()
        .map(|l| (l.clone(), None))
        .collect();
    geometry_results(task_type, prepared, priors, stats, |p, workers| {
        let span_job = SpanJob {
            text: p.object.data_object.content.as_deref(),
            labels: &labels,
        };
        consolidate_spans(workers, &span_job, &settings.spans)
            .map(|c| GeometryLabel {
                confidence: mean(c.entities.iter().map(|e| e.confidence)),
                body: LabelBody::Entities(c.output()),
                agreements: c.agreements,
            })
            .map_err(|none| no_usable_reason(&none.dropped))
    })
}

#[cfg(test)]
mod tests;
