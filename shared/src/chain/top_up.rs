//! Top-up rounds (adaptive redundancy): more workers only for the objects whose label is still unsure.
//!
//! Ground Truth asks the same number of workers about every object. A *top-up plan* — a follow-up plan
//! document with `"Mode": "top-up"` — turns a labeling job into the first of a few rounds:
//!
//! ```json
//! {"Mode": "top-up", "TargetConfidence": 0.95, "WorkersPerRound": [2, 1, 2], "MaxAnswersPerObject": 5}
//! ```
//!
//! Round 1 is the team's own job (with `WorkersPerRound[0]` workers per object). When a round Completes,
//! the chainer starts the next round: a labeling job over only the objects whose confidence is below
//! `TargetConfidence` and whose answers so far plus the next round's workers stay within
//! `MaxAnswersPerObject`, with the next round's number of workers and everything else copied. When no
//! object is left, or the rounds run out, it writes the merged output manifest instead.
//!
//! # How rounds fit together
//!
//! * **Label attribute names.** Round `r ≥ 2` labels under `<root LAN>-top-up-<r>`: Ground Truth (and our
//!   pre-annotation function) treat an object already labeled under a job's own name as done, so a round
//!   reusing the root's name would skip every object it was started for.
//! * **Answers.** Each round's consolidation decides from all the answers its objects got so far. Before
//!   round `r + 1` starts, the chainer reads the answers of round `r` from Ground Truth's own record of
//!   them — the consolidation request files under `<round r>/annotations/consolidated-annotation/
//!   consolidation-request/` — adds them to the answers of the earlier rounds, and writes them for the
//!   objects of round `r + 1` into that round's folder ([`prior_answers`]). So the first round may even be
//!   consolidated by AWS's built-in function, and nothing extra is written per batch.
//! * **Worker quality.** Round `r`'s worker-quality document is copied as the starting document of round
//!   `r + 1`: a worker judged on 300 objects in round 1 is not a stranger in round 2.
//! * **The merged manifest.** Every round carries `merged.manifest` forward in its folder: every object of
//!   the root job once, under the root's label attribute name, with its latest label and, in its
//!   metadata, `answers` (how many workers answered it over all rounds) and `rounds` (the last round it
//!   was in). When the rounds end it is written as `<S3OutputPath>/<root job>/manifests/output/
//!   top-up.manifest` — the file a team trains on.
//!
//! An object is its data (`source-ref`, or the inline `source`): see [`crate::consolidate::prior_answers::object_key`]. Two
//! lines with the same data are one object to the rounds.
//!
//! A round that is stopped is continued like any job; the continuation takes over the answers so far
//! and the merged manifest ([`continuation_writes`]), so that it and the rounds after it count every
//! answer.
//!
//! Exactly once: a round's job name is a function of the round it follows (`naming`), so a duplicate
//! event finds the job and writes nothing; the merged manifest of a finished chain is the same bytes
//! each time it is written.
//!
//! [`prior_answers`]: crate::consolidate::prior_answers

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::Value;

use crate::consolidate::prior_answers::{
    PRIOR_ANSWERS_FILE, PriorAnswers, object_key, payload_object_key,
};
use crate::consolidate::service::worker_quality_uri;
use crate::contracts::parse_payload;
use crate::labeling_job::{LabelingJobDescription, S3DataSource};
use crate::lan::{LabelAttributeName, MAX_LAN_CHARS, is_labeled_under, metadata_key};
use crate::manifest::ManifestLine;
use crate::s3_uri::S3Uri;

use super::decision::{
    INPUT_MANIFEST_FILE, JSON_CONTENT_TYPE, MANIFEST_CONTENT_TYPE, copy_of, lineage_tags,
    output_encryption, s3_output_path, work_folder,
};
use super::manifest_edit::{label_confidence, manifest_bytes, parse_manifest};
use super::naming::chained_job_name;
use super::plan::PlanError;
use super::tags::{Lineage, TAG_FOLLOW_UP, set_tag};
use super::{
    ChainAction, ChainCounts, ChainError, ChainSettings, ChainStep, FetchedObject, ObjectWrite,
};

/// The `Mode` of a top-up plan.
pub const TOP_UP_MODE: &str = "top-up";
/// `groundwork:top-up-round`: the round a job is (absent: 1, the team's own job).
pub const TAG_TOP_UP_ROUND: &str = "groundwork:top-up-round";
/// `groundwork:top-up-lan`: the root job's label attribute name.
pub const TAG_TOP_UP_LAN: &str = "groundwork:top-up-lan";
/// Rounds a plan may have.
pub const MAX_ROUNDS: usize = 10;
/// Where the merged manifest travels, below a round's `outputConfig`.
pub const MERGED_FILE: &str = "groundwork/top-up/merged.manifest";
/// The copy of the plan later rounds read, in a round's work folder.
pub const PLAN_FILE: &str = "top-up-plan.json";
/// The merged output manifest, below the root job's output folder.
pub const OUTPUT_FILE: &str = "manifests/output/top-up.manifest";
/// Metadata key: answers an object got over all rounds.
pub const ANSWERS_KEY: &str = "answers";
/// Metadata key: the last round an object was in.
pub const ROUNDS_KEY: &str = "rounds";

/// A top-up plan document.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct TopUpPlan {
    /// `"top-up"`.
    pub mode: String,
    /// Objects below this confidence (0–1, exclusive of 0) go to the next round.
    pub target_confidence: f64,
    /// Workers per object in each round, the first being the team's own job (1–9 each, 2–10 rounds).
    pub workers_per_round: Vec<u32>,
    /// The most answers one object may cost over all rounds; absent: no limit but the rounds.
    #[serde(default)]
    pub max_answers_per_object: Option<u32>,
}

impl TopUpPlan {
    /// Whether `bytes` is a plan document with `"Mode": "top-up"` (anything else is read as a follow-up
    /// plan, which refuses an unknown `Mode`).
    pub fn is_top_up(bytes: &[u8]) -> bool {
        #[derive(Deserialize)]
        struct Probe {
            #[serde(rename = "Mode", default)]
            mode: Option<String>,
        }
        serde_json::from_slice::<Probe>(bytes)
            .ok()
            .and_then(|p| p.mode)
            .is_some_and(|m| m == TOP_UP_MODE)
    }

    /// Reads and checks a plan.
    pub fn parse(bytes: &[u8]) -> Result<Self, PlanError> {
        let plan: TopUpPlan =
            serde_json::from_slice(bytes).map_err(|e| PlanError::Json(e.to_string()))?;
        if plan.mode != TOP_UP_MODE {
            return Err(PlanError::Text {
                field: "Mode",
                reason: format!(
                    "`{}` is not a plan mode (the one mode is `top-up`)",
                    plan.mode
                ),
            });
        }
        if !(plan.target_confidence > 0.0 && plan.target_confidence <= 1.0) {
            return Err(PlanError::OutOfRange {
                field: "TargetConfidence",
                value: plan.target_confidence.to_string(),
                range: "above 0, at most 1",
            });
        }
        if !(2..=MAX_ROUNDS).contains(&plan.workers_per_round.len()) {
            return Err(PlanError::OutOfRange {
                field: "WorkersPerRound",
                value: format!("{} rounds", plan.workers_per_round.len()),
                range: "2–10 rounds",
            });
        }
        if let Some(w) = plan
            .workers_per_round
            .iter()
            .find(|w| !(1..=9).contains(*w))
        {
            return Err(PlanError::OutOfRange {
                field: "WorkersPerRound",
                value: w.to_string(),
                range: "1–9 workers per round",
            });
        }
        if let Some(max) = plan.max_answers_per_object
            && max < plan.workers_per_round[0] + plan.workers_per_round[1]
        {
            return Err(PlanError::OutOfRange {
                field: "MaxAnswersPerObject",
                value: max.to_string(),
                range: "at least the first two rounds' workers, or no object could be topped up",
            });
        }
        Ok(plan)
    }
}

/// `<root LAN>-top-up-<round>`, the root's name cut so that the whole stays within 127 characters.
pub fn round_label_attribute_name(
    root: &str,
    round: u32,
) -> Result<LabelAttributeName, ChainError> {
    let suffix = format!("-top-up-{round}");
    let room = MAX_LAN_CHARS.saturating_sub(suffix.len());
    let mut base: String = root.chars().take(room).collect();
    while base.ends_with('-') {
        base.pop();
    }
    LabelAttributeName::new(format!("{base}{suffix}")).map_err(|e| {
        ChainError::InvalidJob(format!(
            "no label attribute name for top-up round {round}: {e}"
        ))
    })
}

/// Where a job stands in its top-up chain, from its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundOf {
    /// 1 for the team's own job.
    pub round: u32,
    /// The root's label attribute name.
    pub root_lan: String,
    /// The job's own.
    pub lan: String,
    /// `<S3OutputPath>/<job>/annotations`: the job's `outputConfig` as Ground Truth sends it.
    pub output_config: S3Uri,
}

impl RoundOf {
    /// Reads the round tags of a job.
    pub fn of(job: &LabelingJobDescription) -> Result<Self, ChainError> {
        let lan = job
            .label_attribute_name
            .clone()
            .ok_or(ChainError::MissingInput("the job's label attribute name"))?;
        let round = match job.tag(TAG_TOP_UP_ROUND) {
            None => 1,
            Some(v) => v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|r| *r >= 1)
                .ok_or_else(|| super::tags::InvalidTag {
                    key: TAG_TOP_UP_ROUND,
                    value: v.to_owned(),
                    expected: "a round number (1, 2, …)",
                })?,
        };
        let root_lan = job
            .tag(TAG_TOP_UP_LAN)
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .unwrap_or(&lan)
            .to_owned();
        let output_config = annotations_folder(&job.output_config, &job.labeling_job_name)?;
        Ok(RoundOf {
            round,
            root_lan,
            lan,
            output_config,
        })
    }
}

/// What a completed round's step reads besides its output manifest and the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopUpNeeds {
    /// Ground Truth's consolidation request files of the round (list, read every `.json`).
    pub payloads: S3Uri,
    /// The answers of the earlier rounds (and of the stopped job a round continues), if any.
    pub prior: Option<S3Uri>,
    /// The merged manifest so far (round ≥ 2).
    pub merged: Option<S3Uri>,
    /// The round's worker-quality document (read if it exists).
    pub worker_quality: S3Uri,
}

/// What to read for the round `job` is.
pub fn needs(job: &LabelingJobDescription) -> Result<TopUpNeeds, ChainError> {
    let at = RoundOf::of(job)?;
    let later = at.round >= 2;
    Ok(TopUpNeeds {
        payloads: at
            .output_config
            .join("consolidated-annotation/consolidation-request/"),
        // Round 1 has earlier answers too when it is the continuation of a stopped round 1.
        prior: Some(at.output_config.join(PRIOR_ANSWERS_FILE)),
        merged: later.then(|| at.output_config.join(MERGED_FILE)),
        worker_quality: worker_quality_uri(&at.output_config, &at.lan),
    })
}

/// Everything a round's step decides on.
#[derive(Debug, Clone, Copy)]
pub struct TopUpInput<'a> {
    /// The round that Completed.
    pub job: &'a LabelingJobDescription,
    /// The function's defaults.
    pub settings: &'a ChainSettings,
    /// The plan's bytes.
    pub plan: &'a [u8],
    /// The round's output manifest.
    pub manifest: &'a FetchedObject,
    /// [`TopUpNeeds::prior`], when it exists.
    pub prior: Option<&'a FetchedObject>,
    /// [`TopUpNeeds::merged`] (required from round 2).
    pub merged: Option<&'a FetchedObject>,
    /// The round's consolidation request files.
    pub payloads: &'a [FetchedObject],
    /// The round's worker-quality document, when it exists.
    pub worker_quality: Option<&'a FetchedObject>,
}

/// What the rounds have done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TopUpSummary {
    /// The round that completed.
    pub round: u32,
    /// Objects of the root job.
    pub objects: usize,
    /// Answers spent on them over all rounds.
    pub answers: usize,
    /// Objects still below the target (or without a label).
    pub below_target: usize,
    /// Of those, left out because the next round would exceed `MaxAnswersPerObject`.
    pub over_budget: usize,
}

/// A round's step.
#[derive(Debug, Clone, PartialEq)]
pub enum TopUpDecision {
    /// Start the next round.
    NextRound {
        /// The job and what to write first.
        action: Box<ChainAction>,
        /// Where the rounds stand.
        summary: TopUpSummary,
    },
    /// The rounds are over: write the merged manifest.
    Finished {
        /// The merged output manifest.
        write: ObjectWrite,
        /// Where the rounds ended.
        summary: TopUpSummary,
    },
}

fn bad_input(uri: &S3Uri, message: impl Into<String>) -> ChainError {
    ChainError::InvalidTopUpInput {
        uri: uri.to_string(),
        message: message.into(),
    }
}

/// The answers of every object so far: the earlier ones (`prior`) and those of the job's own
/// consolidation requests, one per worker.
fn collect_answers(
    prior: Option<&FetchedObject>,
    payloads: &[FetchedObject],
) -> Result<PriorAnswers, ChainError> {
    let mut answers = match prior {
        Some(p) => {
            PriorAnswers::parse(&p.uri, &p.body).map_err(|e| bad_input(&p.uri, e.to_string()))?
        }
        None => PriorAnswers::new(),
    };
    for file in payloads {
        let objects = parse_payload(&file.body).map_err(|e| bad_input(&file.uri, e.to_string()))?;
        // A payload object that does not parse was answered as a failure by the job's consolidation;
        // it has no answers to carry.
        for object in objects.into_iter().flatten() {
            if let Some(key) = payload_object_key(&object.data_object) {
                answers.add(key, object.annotations);
            }
        }
    }
    Ok(answers)
}

/// Phase two of a round's step (the executor has fetched [`needs`]).
pub fn plan_round(input: &TopUpInput<'_>) -> Result<TopUpDecision, ChainError> {
    let job = input.job;
    let plan = TopUpPlan::parse(input.plan)?;
    let at = RoundOf::of(job)?;
    let workers_now = job
        .human_task_config
        .number_of_human_workers_per_data_object;
    if at.round == 1 && workers_now != plan.workers_per_round[0] {
        return Err(PlanError::Text {
            field: "WorkersPerRound",
            reason: format!(
                "the first round is the job itself, which asked {workers_now} workers per object, not {}",
                plan.workers_per_round[0]
            ),
        }
        .into());
    }
    let round_lines = parse_manifest(&input.manifest.uri, &input.manifest.body)?;
    let mut answers = collect_answers(input.prior, input.payloads)?;

    // The merged manifest after this round.
    let mut merged = match (at.round, input.merged) {
        (1, _) => round_lines.clone(),
        (_, Some(m)) => parse_manifest(&m.uri, &m.body)?,
        (_, None) => {
            return Err(ChainError::MissingInput(
                "the merged manifest of the rounds",
            ));
        }
    };
    let mut where_in_merged: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, line) in merged.iter().enumerate() {
        where_in_merged
            .entry(object_key(line.source()))
            .or_default()
            .push(i);
    }
    let root_meta = metadata_key(&at.root_lan);
    let round_meta = metadata_key(&at.lan);
    let mut in_this_round: HashSet<String> = HashSet::new();
    for line in &round_lines {
        let key = object_key(line.source());
        let Some(indices) = where_in_merged.get(&key) else {
            return Err(bad_input(
                &input.manifest.uri,
                format!(
                    "an object of round {} is not in the merged manifest of the rounds",
                    at.round
                ),
            ));
        };
        let label = is_labeled_under(line, &at.lan)
            .then(|| (line.get(&at.lan).cloned(), line.get(&round_meta).cloned()));
        for &i in indices {
            if let Some((Some(value), metadata)) = label.clone() {
                merged[i].insert(at.root_lan.clone(), value);
                if let Some(m) = metadata {
                    merged[i].insert(root_meta.clone(), m);
                }
            }
            note_cost(&mut merged[i], &root_meta, answers.count(&key), at.round);
        }
        in_this_round.insert(key);
    }

    // Who goes on.
    let round_index = at.round as usize;
    let next_workers = plan.workers_per_round.get(round_index).copied();
    let budget = plan
        .max_answers_per_object
        .map_or(usize::MAX, |m| m as usize);
    let mut summary = TopUpSummary {
        round: at.round,
        objects: merged.len(),
        ..TopUpSummary::default()
    };
    let mut seen = HashSet::new();
    let mut next: Vec<ManifestLine> = Vec::new();
    for line in &merged {
        let key = object_key(line.source());
        let this_round = in_this_round.contains(&key);
        // An object that left the rounds earlier has its count in its metadata; this round's objects
        // have all their answers here.
        let spent = if this_round {
            answers.count(&key)
        } else {
            answers_noted(line, &root_meta)
        };
        if seen.insert(key) {
            summary.answers += spent;
        }
        let sure =
            label_confidence(line, &at.root_lan).is_some_and(|c| c >= plan.target_confidence);
        if sure {
            continue;
        }
        summary.below_target += 1;
        // Only this round's objects go on: one that ran out of budget (or was sure) earlier stays out.
        let Some(workers) = next_workers.filter(|_| this_round) else {
            continue;
        };
        if spent + workers as usize > budget {
            summary.over_budget += 1;
            continue;
        }
        next.push(line.clone());
    }

    let lineage = Lineage::of(job)?;
    let encryption = output_encryption(job);
    let (Some(workers), false) = (next_workers, next.is_empty()) else {
        let folder = s3_output_path(&job.output_config)?.join(&format!("{}/", lineage.root_job));
        return Ok(TopUpDecision::Finished {
            write: ObjectWrite {
                uri: folder.join(OUTPUT_FILE),
                body: manifest_bytes(&merged),
                content_type: MANIFEST_CONTENT_TYPE,
                encryption,
            },
            summary,
        });
    };

    // The next round.
    let round = at.round + 1;
    let new_lan = round_label_attribute_name(&at.root_lan, round)?;
    let depth = lineage.depth.saturating_add(1);
    let name = chained_job_name(
        &lineage.root_job,
        ChainStep::FollowUp.letter(),
        depth,
        &job.labeling_job_arn,
        &format!("top-up:{round}"),
    );
    let work = work_folder(job, input.settings, &name)?;
    // Chained jobs copy the source's output path: the next round's `outputConfig`.
    let next_output_config = annotations_folder(&job.output_config, &name)?;

    let next_keys: HashSet<String> = next.iter().map(|l| object_key(l.source())).collect();
    answers.retain(|k| next_keys.contains(k));
    let write = |uri: S3Uri, body: Vec<u8>, content_type| ObjectWrite {
        uri,
        body,
        content_type,
        encryption: encryption.clone(),
    };
    let manifest_uri = work.join(INPUT_MANIFEST_FILE);
    let plan_uri = work.join(PLAN_FILE);
    let mut writes = vec![
        write(
            manifest_uri.clone(),
            manifest_bytes(&next),
            MANIFEST_CONTENT_TYPE,
        ),
        write(plan_uri.clone(), input.plan.to_vec(), JSON_CONTENT_TYPE),
        write(
            next_output_config.join(PRIOR_ANSWERS_FILE),
            answers.to_jsonl(),
            MANIFEST_CONTENT_TYPE,
        ),
        write(
            next_output_config.join(MERGED_FILE),
            manifest_bytes(&merged),
            MANIFEST_CONTENT_TYPE,
        ),
    ];
    if let Some(quality) = input.worker_quality {
        writes.push(write(
            worker_quality_uri(&next_output_config, new_lan.as_str()),
            quality.body.clone(),
            JSON_CONTENT_TYPE,
        ));
    }

    let mut request = copy_of(job, name, new_lan.as_str().to_owned());
    request.input_config.data_source.s3_data_source = Some(S3DataSource {
        manifest_s3_uri: manifest_uri.to_string(),
    });
    request
        .human_task_config
        .number_of_human_workers_per_data_object = workers;
    // Automated labeling needs a model trained under the round's own name and at least 1,250 objects; a
    // round is a few hundred unsure objects asked of people.
    request.labeling_job_algorithms_config = None;
    let mut tags = lineage_tags(job, ChainStep::FollowUp, None, &lineage, depth, 0)?;
    set_tag(&mut tags, TAG_FOLLOW_UP, plan_uri.to_string());
    set_tag(&mut tags, TAG_TOP_UP_ROUND, round.to_string());
    set_tag(&mut tags, TAG_TOP_UP_LAN, at.root_lan);
    if tags.len() > super::tags::MAX_TAGS {
        return Err(ChainError::TooManyTags { count: tags.len() });
    }
    request.tags = tags;

    let counts = ChainCounts {
        input_objects: next.len(),
        unlabeled: next.len(),
        appended: 0,
        filtered_out: merged.len() - next.len(),
    };
    Ok(TopUpDecision::NextRound {
        action: Box::new(ChainAction {
            step: ChainStep::FollowUp,
            depth,
            request,
            manifest_writes: writes,
            counts,
        }),
        summary,
    })
}

/// What a continued job (a stopped or failed job picked up again under the same label attribute name)
/// takes over from the job it continues, so that it goes on where that one stopped:
///
/// * the worker-quality document, as the continued job's starting one (every continued job);
/// * in a top-up chain (`top_up_chain`), the answers its objects got so far — the earlier rounds' and
///   the stopped job's own, read from its consolidation requests — and the merged manifest of the
///   rounds, so that the continuation's consolidation and the next round see every answer.
pub fn continuation_writes(
    source: &LabelingJobDescription,
    continued: &crate::labeling_job::CreateLabelingJobRequest,
    top_up_chain: bool,
    fetched: &ContinuationInput<'_>,
) -> Result<Vec<ObjectWrite>, ChainError> {
    let out = annotations_folder(&continued.output_config, &continued.labeling_job_name)?;
    let encryption = output_encryption(source);
    let write = |uri: S3Uri, body: Vec<u8>, content_type| ObjectWrite {
        uri,
        body,
        content_type,
        encryption: encryption.clone(),
    };
    let mut writes = Vec::new();
    if let Some(quality) = fetched.worker_quality {
        writes.push(write(
            worker_quality_uri(&out, &continued.label_attribute_name),
            quality.body.clone(),
            JSON_CONTENT_TYPE,
        ));
    }
    if !top_up_chain {
        return Ok(writes);
    }
    let answers = collect_answers(fetched.prior, fetched.payloads)?;
    writes.push(write(
        out.join(PRIOR_ANSWERS_FILE),
        answers.to_jsonl(),
        MANIFEST_CONTENT_TYPE,
    ));
    if let Some(merged) = fetched.merged {
        writes.push(write(
            out.join(MERGED_FILE),
            merged.body.clone(),
            MANIFEST_CONTENT_TYPE,
        ));
    }
    Ok(writes)
}

/// What [`continuation_writes`] reads from the job being continued (each when it exists).
#[derive(Debug, Clone, Copy, Default)]
pub struct ContinuationInput<'a> {
    /// Its worker-quality document.
    pub worker_quality: Option<&'a FetchedObject>,
    /// Its earlier answers file.
    pub prior: Option<&'a FetchedObject>,
    /// Its merged manifest of the rounds.
    pub merged: Option<&'a FetchedObject>,
    /// Its consolidation requests.
    pub payloads: &'a [FetchedObject],
}

/// Records an object's answers so far and the round in its label's metadata (when it has one).
fn note_cost(line: &mut ManifestLine, metadata_key: &str, answers: usize, round: u32) {
    let Some(Value::Object(metadata)) = line.get(metadata_key).cloned() else {
        return;
    };
    let mut metadata = metadata;
    metadata.insert(ANSWERS_KEY.to_owned(), Value::from(answers));
    metadata.insert(ROUNDS_KEY.to_owned(), Value::from(round));
    line.insert(metadata_key.to_owned(), Value::Object(metadata));
}

/// The `answers` an earlier round noted in a line's metadata (0 without).
fn answers_noted(line: &ManifestLine, metadata_key: &str) -> usize {
    line.get(metadata_key)
        .and_then(|m| m.get(ANSWERS_KEY))
        .and_then(Value::as_u64)
        .map_or(0, |n| n as usize)
}

/// `<S3OutputPath>/<job>/annotations`: the `outputConfig` Ground Truth sends the job's consolidation,
/// where a round's earlier answers, merged manifest and worker quality are kept.
fn annotations_folder(
    output: &crate::labeling_job::OutputConfig,
    job_name: &str,
) -> Result<S3Uri, ChainError> {
    Ok(s3_output_path(output)?.join(&format!("{job_name}/annotations")))
}

#[cfg(test)]
#[path = "top_up_tests.rs"]
mod tests;
