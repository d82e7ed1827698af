//! The two phases of the planner: [`prepare`] (what to read) and [`plan`] (what to create).
//!
//! Both are pure functions of their inputs; `plan` runs `prepare` again, so a caller cannot hand it a
//! manifest for one step and have it plan another. The rules are listed in the order they apply; the
//! first that refuses wins, so a log line always names the most fundamental reason.

use crate::label_categories::LabelCategoryConfig;
use crate::labeling_job::{
    AnnotationConsolidationConfig, CreateLabelingJobRequest, LabelingJobDescription,
    LabelingJobStatus, S3DataSource, UiConfig,
};
use crate::lan::LabelAttributeName;
use crate::ports::Encryption;
use crate::s3_uri::S3Uri;

use super::failure::{FailureClass, classify_failure};
use super::manifest_edit::{
    append_new_objects, below_threshold, count_labeled, intermediate_manifests_prefix,
    job_output_folder, manifest_bytes, parse_manifest,
};
use super::naming::chained_job_name;
use super::plan::{FollowUpPlan, Patch};
use super::settings::{ChainMode, ChainSettings};
use super::tags::{
    Declaration, FOLLOW_UP_NONE, FollowUpTag, Lineage, MAX_TAGS, TAG_DEPTH, TAG_FOLLOW_UP,
    TAG_LABELED_AT_START, TAG_PARENT_JOB, TAG_ROOT_JOB, TAG_STAGING_MANIFEST, TAG_STEP,
    inherited_tags, set_tag,
};
use super::{
    ChainAction, ChainCounts, ChainError, ChainRequest, ChainStep, Decision, ManifestCandidate,
    Needs, ObjectWrite, PlanSource, PlannerInput, Preparation, SkipReason,
};

/// Content type of the manifests the planner writes.
pub const MANIFEST_CONTENT_TYPE: &str = "application/jsonlines";
/// Content type of the label category files it writes.
pub const JSON_CONTENT_TYPE: &str = "application/json";
/// File name of a rewritten input manifest, in the new job's work folder.
pub const INPUT_MANIFEST_FILE: &str = "input.manifest";
/// File name of a written label category file, in the new job's work folder.
pub const LABEL_CATEGORIES_FILE: &str = "label-categories.json";

/// Phase one: from the job's description alone, skip or say what to read.
///
/// Rules, in order: the job must have ended; streaming jobs and jobs without a label attribute name are
/// not chained; a `groundwork:chain=off` tag stops everything; then the step — a supplied plan is a
/// follow-up whatever the status; Stopped/Failed continue when the mode (tag, else `CHAIN_DEFAULT`) is
/// `continue`; Completed follows its plan (tag, else `DEFAULT_FOLLOW_UP_PLAN`), or is extended when it
/// only declares a staging manifest; a Failed job whose reason would fail again is not chained; and the
/// new job must not be deeper than `MAX_CHAIN_DEPTH`. `force` lifts every refusal but the first three.
pub fn prepare(
    job: &LabelingJobDescription,
    settings: &ChainSettings,
    request: &ChainRequest,
) -> Result<Preparation, ChainError> {
    let skip = |reason| Ok(Preparation::Skip(reason));
    let status = &job.labeling_job_status;
    if !status.is_terminal() {
        return skip(SkipReason::NotTerminal {
            status: status.clone(),
        });
    }
    let Some(input) = &job.input_config.data_source.s3_data_source else {
        return skip(SkipReason::StreamingJob);
    };
    if job.label_attribute_name.is_none() {
        return skip(SkipReason::NoLabelAttributeName);
    }
    let declaration = Declaration::of(job)?;
    let lineage = Lineage::of(job)?;
    let force = request.force;
    if declaration.mode == Some(ChainMode::Off) && !force {
        return skip(SkipReason::ChainingOff { by_tag: true });
    }

    let (step, plan) = if request.supplied_plan {
        (ChainStep::FollowUp, Some(PlanSource::Supplied))
    } else if *status == LabelingJobStatus::Completed {
        let declared = match &declaration.follow_up {
            FollowUpTag::Plan(uri) => Some(uri.clone()),
            FollowUpTag::Disabled => None,
            FollowUpTag::Absent => settings.default_follow_up_plan.clone(),
        };
        match declared {
            Some(uri) => (ChainStep::FollowUp, Some(PlanSource::Declared(uri))),
            None if declaration.staging_manifest.is_some() || force => (ChainStep::Continue, None),
            None => return skip(SkipReason::NoFollowUpDeclared),
        }
    } else {
        let mode = declaration.mode.unwrap_or(settings.default_mode);
        if mode == ChainMode::Off && !force {
            return skip(SkipReason::ChainingOff { by_tag: false });
        }
        (ChainStep::Continue, None)
    };

    if *status == LabelingJobStatus::Failed && !force {
        let reason = job.failure_reason.as_deref();
        if let FailureClass::Permanent(cause) = classify_failure(reason) {
            return skip(SkipReason::PermanentFailure {
                cause,
                reason: reason.unwrap_or_default().to_owned(),
            });
        }
    }

    let depth = lineage.depth.saturating_add(1);
    if depth > settings.max_depth && !force {
        return skip(SkipReason::MaxDepth {
            depth,
            max: settings.max_depth,
        });
    }

    Ok(Preparation::Fetch(Needs {
        step,
        plan,
        manifest: manifest_candidates(job, &input.manifest_s3_uri)?,
        staging: declaration.staging_manifest,
    }))
}

/// Where the job's labels are, best first. A Completed job has its output manifest. A Stopped or Failed
/// one may lack `LabelingJobOutput` (undocumented, `contracts.md` Gaps 9), so its newest intermediate
/// manifest comes next, and last its input manifest — a job that never wrote a manifest labeled nothing,
/// so its input is as good as its output.
fn manifest_candidates(
    job: &LabelingJobDescription,
    input_manifest: &str,
) -> Result<Vec<ManifestCandidate>, ChainError> {
    let mut candidates = Vec::new();
    if let Some(out) = &job.labeling_job_output
        && let Ok(uri) = out.output_dataset_s3_uri.parse()
    {
        candidates.push(ManifestCandidate::Object(uri));
    }
    if job.labeling_job_status == LabelingJobStatus::Completed {
        if let Some(folder) = job_output_folder(job) {
            let conventional = folder.join("manifests/output/output.manifest");
            if !candidates.contains(&ManifestCandidate::Object(conventional.clone())) {
                candidates.push(ManifestCandidate::Object(conventional));
            }
        }
    } else {
        if let Some(prefix) = intermediate_manifests_prefix(job) {
            candidates.push(ManifestCandidate::NewestIntermediate(prefix));
        }
        if let Ok(uri) = input_manifest.parse() {
            candidates.push(ManifestCandidate::Object(uri));
        }
    }
    if candidates.is_empty() {
        return Err(ChainError::InvalidJob(format!(
            "no s3:// manifest location (output {:?}, input `{input_manifest}`)",
            job.labeling_job_output
                .as_ref()
                .map(|o| o.output_dataset_s3_uri.as_str())
        )));
    }
    Ok(candidates)
}

/// Phase two: the decision, from the description and the fetched objects.
///
/// After [`prepare`]'s rules: a continued chained job that labeled nothing since it started is not
/// continued again; the input is the source manifest, filtered to labels below the plan's confidence
/// threshold and extended with new staged objects (written as a new manifest when either changed it);
/// the job must have something to label under its LAN. The request copies the source job, applies the
/// plan, passes the auto-labeling model on when the LAN is unchanged, and carries lineage tags.
pub fn plan(input: &PlannerInput<'_>) -> Result<Decision, ChainError> {
    let PlannerInput {
        job,
        settings,
        request,
        ..
    } = *input;
    let needs = match prepare(job, settings, request)? {
        Preparation::Skip(reason) => return Ok(Decision::Skip(reason)),
        Preparation::Fetch(needs) => needs,
    };
    let source_lan = job
        .label_attribute_name
        .as_deref()
        .ok_or(ChainError::MissingInput(
            "the source job's label attribute name",
        ))?;
    let lineage = Lineage::of(job)?;

    let follow_up = match needs.plan {
        None => None,
        Some(_) => {
            let bytes = input
                .plan
                .ok_or(ChainError::MissingInput("the follow-up plan"))?;
            Some(FollowUpPlan::parse(bytes)?)
        }
    };
    let manifest = input
        .manifest
        .ok_or(ChainError::MissingInput("the source job's manifest"))?;
    let mut lines = parse_manifest(&manifest.uri, &manifest.body)?;
    let staged = match &needs.staging {
        None => None,
        Some(_) => {
            let staging = input
                .staging
                .ok_or(ChainError::MissingInput("the staging manifest"))?;
            Some(parse_manifest(&staging.uri, &staging.body)?)
        }
    };

    // No progress: a chained job that was continued and labeled nothing would be continued forever.
    let ended_early = matches!(
        job.labeling_job_status,
        LabelingJobStatus::Stopped | LabelingJobStatus::Failed
    );
    if ended_early && lineage.depth >= 1 && !request.force {
        let labeled = count_labeled(&lines, source_lan) as u64;
        let stalled = match lineage.labeled_at_start {
            Some(at_start) => labeled <= at_start,
            None => job.label_counters.total_labeled == Some(0),
        };
        if stalled {
            return Ok(Decision::Skip(SkipReason::NoProgress {
                labeled,
                labeled_at_start: lineage.labeled_at_start,
            }));
        }
    }

    let new_lan = match &follow_up {
        Some(plan) => plan.resolve_lan(job, source_lan)?,
        None => LabelAttributeName::new(source_lan).map_err(|e| {
            ChainError::InvalidJob(format!("its label attribute name is not reusable: {e}"))
        })?,
    };

    // The new job's input.
    let mut counts = ChainCounts::default();
    let mut rewritten = false;
    if let Some(threshold) = follow_up.as_ref().and_then(|p| p.confidence_threshold) {
        let before = lines.len();
        lines = below_threshold(lines, source_lan, threshold);
        counts.filtered_out = before - lines.len();
        rewritten = true;
        if lines.is_empty() {
            return Ok(Decision::Skip(SkipReason::NothingBelowThreshold {
                threshold,
            }));
        }
    }
    if let Some(staged) = staged {
        counts.appended = append_new_objects(&mut lines, staged);
        rewritten |= counts.appended > 0;
    }
    let labeled_at_start = count_labeled(&lines, new_lan.as_str());
    counts.input_objects = lines.len();
    counts.unlabeled = lines.len() - labeled_at_start;
    if counts.unlabeled == 0 {
        return Ok(Decision::Skip(SkipReason::NothingToLabel {
            label_attribute_name: new_lan.as_str().to_owned(),
        }));
    }

    // The new job's name and work folder.
    let depth = lineage.depth.saturating_add(1);
    let step_key = match needs.step {
        ChainStep::Continue => "continue".to_owned(),
        ChainStep::FollowUp => format!("follow-up:{new_lan}"),
    };
    let name = chained_job_name(
        &lineage.root_job,
        needs.step.letter(),
        depth,
        &job.labeling_job_arn,
        &step_key,
    );
    let work = work_folder(job, settings, &name)?;

    let mut request = copy_of(job, name, new_lan.as_str().to_owned());
    let mut writes = Vec::new();
    let manifest_uri = if rewritten {
        let uri = work.join(INPUT_MANIFEST_FILE);
        writes.push(ObjectWrite {
            uri: uri.clone(),
            body: manifest_bytes(&lines),
            content_type: MANIFEST_CONTENT_TYPE,
            encryption: output_encryption(job),
        });
        uri
    } else {
        manifest.uri.clone()
    };
    request.input_config.data_source.s3_data_source = Some(S3DataSource {
        manifest_s3_uri: manifest_uri.to_string(),
    });
    if let Some(plan) = &follow_up {
        apply_plan(&mut request, plan, job, &work, &mut writes);
    }
    pass_on_active_learning_model(&mut request, job, follow_up.as_ref(), source_lan);
    request.tags = lineage_tags(
        job,
        needs.step,
        follow_up.as_ref(),
        &lineage,
        depth,
        labeled_at_start,
    )?;

    Ok(Decision::Chain(Box::new(ChainAction {
        step: needs.step,
        depth,
        request,
        manifest_writes: writes,
        counts,
    })))
}

/// The source job's setup under a new name and label attribute name (tags are set by the caller).
pub(crate) fn copy_of(
    job: &LabelingJobDescription,
    name: String,
    lan: String,
) -> CreateLabelingJobRequest {
    CreateLabelingJobRequest {
        labeling_job_name: name,
        label_attribute_name: lan,
        input_config: job.input_config.clone(),
        output_config: job.output_config.clone(),
        role_arn: job.role_arn.clone(),
        label_category_config_s3_uri: job.label_category_config_s3_uri.clone(),
        stopping_conditions: job.stopping_conditions.clone(),
        labeling_job_algorithms_config: job.labeling_job_algorithms_config.clone(),
        human_task_config: job.human_task_config.clone(),
        tags: Vec::new(),
    }
}

/// `<CHAIN_WRITE_PREFIX>/<new job>/`, or `<source S3OutputPath>/groundwork-chain/<new job>/` — a place
/// the labeling role can already read, because it writes the job's output there.
pub(super) fn work_folder(
    job: &LabelingJobDescription,
    settings: &ChainSettings,
    new_name: &str,
) -> Result<S3Uri, ChainError> {
    if let Some(prefix) = &settings.write_prefix {
        return Ok(prefix.join(&format!("{new_name}/")));
    }
    Ok(s3_output_path(&job.output_config)?.join(&format!("groundwork-chain/{new_name}/")))
}

/// A job's `S3OutputPath` as a URI (every job of a chain copies its source's).
pub(super) fn s3_output_path(
    output: &crate::labeling_job::OutputConfig,
) -> Result<S3Uri, ChainError> {
    output
        .s3_output_path
        .parse()
        .map_err(|e| ChainError::InvalidJob(format!("its S3OutputPath is not an s3:// URI: {e}")))
}

/// How what the chain writes for `job`'s follow-up is encrypted: as `job`'s output is.
pub(super) fn output_encryption(job: &LabelingJobDescription) -> Encryption {
    Encryption::kms_or_default(job.output_config.kms_key_id.as_deref())
}

/// Applies a follow-up plan's fields to the copied request. Automated labeling is dropped when the task
/// type changes and the plan says nothing about it: the source's algorithm belongs to the source's task.
fn apply_plan(
    request: &mut CreateLabelingJobRequest,
    plan: &FollowUpPlan,
    source: &LabelingJobDescription,
    work: &S3Uri,
    writes: &mut Vec<ObjectWrite>,
) {
    let task = &mut request.human_task_config;
    let set = |field: &mut String, value: &Option<String>| {
        if let Some(v) = value {
            field.clone_from(v);
        }
    };
    set(&mut task.task_title, &plan.task_title);
    set(&mut task.task_description, &plan.task_description);
    set(&mut task.workteam_arn, &plan.workteam_arn);
    if let Some(keywords) = &plan.task_keywords {
        task.task_keywords.clone_from(keywords);
    }
    if let Some(uri) = &plan.ui_template_s3_uri {
        task.ui_config = UiConfig {
            ui_template_s3_uri: Some(uri.clone()),
            human_task_ui_arn: None,
        };
    }
    if let Some(arn) = &plan.human_task_ui_arn {
        task.ui_config = UiConfig {
            ui_template_s3_uri: None,
            human_task_ui_arn: Some(arn.clone()),
        };
    }
    if let Some(arn) = &plan.pre_human_task_lambda_arn {
        task.pre_human_task_lambda_arn = Some(arn.clone());
    }
    if let Some(arn) = &plan.annotation_consolidation_lambda_arn {
        task.annotation_consolidation_config = Some(AnnotationConsolidationConfig {
            annotation_consolidation_lambda_arn: arn.clone(),
        });
    }
    let numbers = [
        (
            &mut task.number_of_human_workers_per_data_object,
            plan.number_of_human_workers_per_data_object,
        ),
        (
            &mut task.task_time_limit_in_seconds,
            plan.task_time_limit_in_seconds,
        ),
    ];
    for (field, value) in numbers {
        if let Some(v) = value {
            *field = v;
        }
    }
    if plan.task_availability_lifetime_in_seconds.is_some() {
        task.task_availability_lifetime_in_seconds = plan.task_availability_lifetime_in_seconds;
    }
    if plan.max_concurrent_task_count.is_some() {
        task.max_concurrent_task_count = plan.max_concurrent_task_count;
    }

    if let Some(labels) = &plan.label_categories {
        let uri = work.join(LABEL_CATEGORIES_FILE);
        let file = LabelCategoryConfig::to_2018_json(labels);
        writes.push(ObjectWrite {
            uri: uri.clone(),
            // Serialising a `Value` cannot fail.
            body: serde_json::to_vec_pretty(&file).unwrap_or_default(),
            content_type: JSON_CONTENT_TYPE,
            encryption: output_encryption(source),
        });
        request.label_category_config_s3_uri = Some(uri.to_string());
    } else if let Some(uri) = &plan.label_category_config_s3_uri {
        request.label_category_config_s3_uri = Some(uri.clone());
    }

    let task_changed = plan.task_type(source) != source.task_type();
    request.labeling_job_algorithms_config = match &plan.labeling_job_algorithms_config {
        Patch::Keep if task_changed => None,
        patch => patch.apply(source.labeling_job_algorithms_config.as_ref()),
    };
    request.stopping_conditions = plan
        .stopping_conditions
        .apply(source.stopping_conditions.as_ref());
}

/// With the LAN unchanged and automated labeling on, the new job starts from the model the source job
/// ended with (`contracts.md` §8), unless the plan names a model of its own.
fn pass_on_active_learning_model(
    request: &mut CreateLabelingJobRequest,
    source: &LabelingJobDescription,
    plan: Option<&FollowUpPlan>,
    source_lan: &str,
) {
    let plan_names_a_model = plan.is_some_and(|p| {
        matches!(&p.labeling_job_algorithms_config,
            Patch::Set(a) if a.initial_active_learning_model_arn.is_some())
    });
    let final_model = source
        .labeling_job_output
        .as_ref()
        .and_then(|o| o.final_active_learning_model_arn.clone());
    if request.label_attribute_name != source_lan || plan_names_a_model {
        return;
    }
    if let (Some(algorithms), Some(model)) =
        (request.labeling_job_algorithms_config.as_mut(), final_model)
    {
        algorithms.initial_active_learning_model_arn = Some(model);
    }
}

/// The source's user tags plus the new job's lineage. A follow-up consumes its plan: it is tagged with
/// the plan's own `FollowUp`, or `none`, so that a default plan never follows itself. Staged objects are
/// consumed by any step.
pub(super) fn lineage_tags(
    job: &LabelingJobDescription,
    step: ChainStep,
    plan: Option<&FollowUpPlan>,
    lineage: &Lineage,
    depth: u32,
    labeled_at_start: usize,
) -> Result<Vec<crate::labeling_job::Tag>, ChainError> {
    let mut dropped = vec![TAG_STAGING_MANIFEST];
    if step == ChainStep::FollowUp {
        dropped.push(TAG_FOLLOW_UP);
    }
    let mut tags = inherited_tags(job, &dropped);
    if step == ChainStep::FollowUp {
        let next = plan
            .and_then(|p| p.follow_up.clone())
            .unwrap_or_else(|| FOLLOW_UP_NONE.to_owned());
        set_tag(&mut tags, TAG_FOLLOW_UP, next);
    }
    set_tag(&mut tags, TAG_ROOT_JOB, lineage.root_job.clone());
    set_tag(&mut tags, TAG_PARENT_JOB, job.labeling_job_name.clone());
    set_tag(&mut tags, TAG_DEPTH, depth.to_string());
    set_tag(&mut tags, TAG_STEP, step.as_str());
    set_tag(
        &mut tags,
        TAG_LABELED_AT_START,
        labeled_at_start.to_string(),
    );
    if tags.len() > MAX_TAGS {
        return Err(ChainError::TooManyTags { count: tags.len() });
    }
    Ok(tags)
}

#[cfg(test)]
#[path = "decision_tests.rs"]
mod tests;
