//! aws-sdk-sagemaker shapes ⇄ groundwork's [`labeling_job`](groundwork::labeling_job) mirrors.
//!
//! Every member of both shapes is converted, nothing dropped: the chainer copies a job field by field,
//! so a member lost here would silently change the chained job. Integers are `i32` in the SDK and
//! unsigned in the mirrors; the API never sends negative counts, and a negative one is read as absent
//! rather than wrapped.

use aws_sdk_sagemaker::operation::create_labeling_job::builders::CreateLabelingJobFluentBuilder;
use aws_sdk_sagemaker::operation::describe_labeling_job::DescribeLabelingJobOutput;
use aws_sdk_sagemaker::types as sdk;
use groundwork::labeling_job::{
    AmountInUsd, AnnotationConsolidationConfig, CreateLabelingJobRequest, DataAttributes,
    DataSource, HumanTaskConfig, InputConfig, LabelCounters, LabelingJobAlgorithmsConfig,
    LabelingJobDescription, LabelingJobOutput, LabelingJobResourceConfig, LabelingJobStatus,
    OutputConfig, PublicWorkforceTaskPrice, S3DataSource, SnsDataSource, StoppingConditions, Tag,
    UiConfig, VpcConfig,
};

/// A required member the response lacked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DescribeLabelingJob response has no {0}")]
pub struct MissingMember(pub &'static str);

fn required<T>(value: Option<T>, member: &'static str) -> Result<T, MissingMember> {
    value.ok_or(MissingMember(member))
}

fn unsigned(v: Option<i32>) -> Option<u32> {
    v.and_then(|v| u32::try_from(v).ok())
}

fn count(v: Option<i32>) -> Option<u64> {
    v.and_then(|v| u64::try_from(v).ok())
}

/// To the SDK's `i32`; the mirrors' values come from the same API, so they fit.
fn signed(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn owned(v: Option<&str>) -> Option<String> {
    v.map(str::to_owned)
}

/// The SDK's DescribeLabelingJob output as the domain's description.
pub fn description_from_sdk(
    out: &DescribeLabelingJobOutput,
) -> Result<LabelingJobDescription, MissingMember> {
    let status = required(out.labeling_job_status(), "LabelingJobStatus")?;
    Ok(LabelingJobDescription {
        labeling_job_status: LabelingJobStatus::from(status.as_str()),
        label_counters: out
            .label_counters()
            .map(counters_from_sdk)
            .unwrap_or_default(),
        failure_reason: owned(out.failure_reason()),
        // Epoch seconds, as on the wire.
        creation_time: out.creation_time().map(|t| t.as_secs_f64().into()),
        last_modified_time: out.last_modified_time().map(|t| t.as_secs_f64().into()),
        job_reference_code: owned(out.job_reference_code()),
        labeling_job_name: required(out.labeling_job_name(), "LabelingJobName")?.to_owned(),
        labeling_job_arn: required(out.labeling_job_arn(), "LabelingJobArn")?.to_owned(),
        label_attribute_name: owned(out.label_attribute_name()),
        input_config: input_from_sdk(required(out.input_config(), "InputConfig")?),
        output_config: output_from_sdk(required(out.output_config(), "OutputConfig")?)?,
        role_arn: required(out.role_arn(), "RoleArn")?.to_owned(),
        label_category_config_s3_uri: owned(out.label_category_config_s3_uri()),
        stopping_conditions: out.stopping_conditions().map(stopping_from_sdk),
        labeling_job_algorithms_config: out
            .labeling_job_algorithms_config()
            .map(algorithms_from_sdk)
            .transpose()?,
        human_task_config: human_task_from_sdk(required(
            out.human_task_config(),
            "HumanTaskConfig",
        )?)?,
        tags: out
            .tags()
            .iter()
            .map(|t| Tag {
                key: t.key().unwrap_or_default().to_owned(),
                value: t.value().unwrap_or_default().to_owned(),
            })
            .collect(),
        labeling_job_output: out
            .labeling_job_output()
            .map(|o| -> Result<_, MissingMember> {
                Ok(LabelingJobOutput {
                    output_dataset_s3_uri: required(
                        o.output_dataset_s3_uri(),
                        "LabelingJobOutput.OutputDatasetS3Uri",
                    )?
                    .to_owned(),
                    final_active_learning_model_arn: owned(o.final_active_learning_model_arn()),
                })
            })
            .transpose()?,
    })
}

fn counters_from_sdk(c: &sdk::LabelCounters) -> LabelCounters {
    LabelCounters {
        total_labeled: count(c.total_labeled()),
        human_labeled: count(c.human_labeled()),
        machine_labeled: count(c.machine_labeled()),
        failed_non_retryable_error: count(c.failed_non_retryable_error()),
        unlabeled: count(c.unlabeled()),
    }
}

fn input_from_sdk(c: &sdk::LabelingJobInputConfig) -> InputConfig {
    let source = c.data_source();
    InputConfig {
        data_source: DataSource {
            s3_data_source: source
                .and_then(|s| s.s3_data_source())
                .map(|s| S3DataSource {
                    manifest_s3_uri: s.manifest_s3_uri().unwrap_or_default().to_owned(),
                }),
            sns_data_source: source
                .and_then(|s| s.sns_data_source())
                .map(|s| SnsDataSource {
                    sns_topic_arn: s.sns_topic_arn().unwrap_or_default().to_owned(),
                }),
        },
        data_attributes: c.data_attributes().map(|a| DataAttributes {
            content_classifiers: a
                .content_classifiers()
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
        }),
    }
}

fn output_from_sdk(c: &sdk::LabelingJobOutputConfig) -> Result<OutputConfig, MissingMember> {
    Ok(OutputConfig {
        s3_output_path: required(c.s3_output_path(), "OutputConfig.S3OutputPath")?.to_owned(),
        kms_key_id: owned(c.kms_key_id()),
        sns_topic_arn: owned(c.sns_topic_arn()),
    })
}

fn stopping_from_sdk(c: &sdk::LabelingJobStoppingConditions) -> StoppingConditions {
    StoppingConditions {
        max_human_labeled_object_count: unsigned(c.max_human_labeled_object_count()),
        max_percentage_of_input_dataset_labeled: unsigned(
            c.max_percentage_of_input_dataset_labeled(),
        ),
    }
}

fn algorithms_from_sdk(
    c: &sdk::LabelingJobAlgorithmsConfig,
) -> Result<LabelingJobAlgorithmsConfig, MissingMember> {
    Ok(LabelingJobAlgorithmsConfig {
        labeling_job_algorithm_specification_arn: required(
            c.labeling_job_algorithm_specification_arn(),
            "LabelingJobAlgorithmsConfig.LabelingJobAlgorithmSpecificationArn",
        )?
        .to_owned(),
        initial_active_learning_model_arn: owned(c.initial_active_learning_model_arn()),
        labeling_job_resource_config: c.labeling_job_resource_config().map(|r| {
            LabelingJobResourceConfig {
                volume_kms_key_id: owned(r.volume_kms_key_id()),
                vpc_config: r.vpc_config().map(|v| VpcConfig {
                    security_group_ids: v.security_group_ids().to_vec(),
                    subnets: v.subnets().to_vec(),
                }),
            }
        }),
    })
}

fn human_task_from_sdk(c: &sdk::HumanTaskConfig) -> Result<HumanTaskConfig, MissingMember> {
    let ui = c.ui_config();
    Ok(HumanTaskConfig {
        workteam_arn: required(c.workteam_arn(), "HumanTaskConfig.WorkteamArn")?.to_owned(),
        ui_config: UiConfig {
            ui_template_s3_uri: owned(ui.and_then(|u| u.ui_template_s3_uri())),
            human_task_ui_arn: owned(ui.and_then(|u| u.human_task_ui_arn())),
        },
        pre_human_task_lambda_arn: owned(c.pre_human_task_lambda_arn()),
        task_keywords: c.task_keywords().to_vec(),
        task_title: c.task_title().unwrap_or_default().to_owned(),
        task_description: c.task_description().unwrap_or_default().to_owned(),
        number_of_human_workers_per_data_object: unsigned(
            c.number_of_human_workers_per_data_object(),
        )
        .unwrap_or_default(),
        task_time_limit_in_seconds: unsigned(c.task_time_limit_in_seconds()).unwrap_or_default(),
        task_availability_lifetime_in_seconds: unsigned(c.task_availability_lifetime_in_seconds()),
        max_concurrent_task_count: unsigned(c.max_concurrent_task_count()),
        annotation_consolidation_config: c.annotation_consolidation_config().map(|a| {
            AnnotationConsolidationConfig {
                annotation_consolidation_lambda_arn: a
                    .annotation_consolidation_lambda_arn()
                    .unwrap_or_default()
                    .to_owned(),
            }
        }),
        public_workforce_task_price: c.public_workforce_task_price().map(|p| {
            PublicWorkforceTaskPrice {
                amount_in_usd: p.amount_in_usd().map(|a| AmountInUsd {
                    dollars: unsigned(a.dollars()),
                    cents: unsigned(a.cents()),
                    tenth_fractions_of_a_cent: unsigned(a.tenth_fractions_of_a_cent()),
                }),
            }
        }),
    })
}

/// Fills a CreateLabelingJob call with every member of `request`.
pub fn create_request_to_sdk(
    call: CreateLabelingJobFluentBuilder,
    request: &CreateLabelingJobRequest,
) -> CreateLabelingJobFluentBuilder {
    call.labeling_job_name(&request.labeling_job_name)
        .label_attribute_name(&request.label_attribute_name)
        .input_config(input_to_sdk(&request.input_config))
        .output_config(output_to_sdk(&request.output_config))
        .role_arn(&request.role_arn)
        .set_label_category_config_s3_uri(request.label_category_config_s3_uri.clone())
        .set_stopping_conditions(request.stopping_conditions.as_ref().map(stopping_to_sdk))
        .set_labeling_job_algorithms_config(
            request
                .labeling_job_algorithms_config
                .as_ref()
                .map(algorithms_to_sdk),
        )
        .human_task_config(human_task_to_sdk(&request.human_task_config))
        .set_tags(if request.tags.is_empty() {
            None
        } else {
            Some(
                request
                    .tags
                    .iter()
                    .map(|t| sdk::Tag::builder().key(&t.key).value(&t.value).build())
                    .collect(),
            )
        })
}

fn input_to_sdk(c: &InputConfig) -> sdk::LabelingJobInputConfig {
    let source = &c.data_source;
    sdk::LabelingJobInputConfig::builder()
        .data_source(
            sdk::LabelingJobDataSource::builder()
                .set_s3_data_source(source.s3_data_source.as_ref().map(|s| {
                    sdk::LabelingJobS3DataSource::builder()
                        .manifest_s3_uri(&s.manifest_s3_uri)
                        .build()
                }))
                .set_sns_data_source(source.sns_data_source.as_ref().map(|s| {
                    sdk::LabelingJobSnsDataSource::builder()
                        .sns_topic_arn(&s.sns_topic_arn)
                        .build()
                }))
                .build(),
        )
        .set_data_attributes(c.data_attributes.as_ref().map(|a| {
            sdk::LabelingJobDataAttributes::builder()
                .set_content_classifiers(Some(
                    a.content_classifiers
                        .iter()
                        .map(|c| sdk::ContentClassifier::from(c.as_str()))
                        .collect(),
                ))
                .build()
        }))
        .build()
}

fn output_to_sdk(c: &OutputConfig) -> sdk::LabelingJobOutputConfig {
    sdk::LabelingJobOutputConfig::builder()
        .s3_output_path(&c.s3_output_path)
        .set_kms_key_id(c.kms_key_id.clone())
        .set_sns_topic_arn(c.sns_topic_arn.clone())
        .build()
}

fn stopping_to_sdk(c: &StoppingConditions) -> sdk::LabelingJobStoppingConditions {
    sdk::LabelingJobStoppingConditions::builder()
        .set_max_human_labeled_object_count(c.max_human_labeled_object_count.map(signed))
        .set_max_percentage_of_input_dataset_labeled(
            c.max_percentage_of_input_dataset_labeled.map(signed),
        )
        .build()
}

fn algorithms_to_sdk(c: &LabelingJobAlgorithmsConfig) -> sdk::LabelingJobAlgorithmsConfig {
    sdk::LabelingJobAlgorithmsConfig::builder()
        .labeling_job_algorithm_specification_arn(&c.labeling_job_algorithm_specification_arn)
        .set_initial_active_learning_model_arn(c.initial_active_learning_model_arn.clone())
        .set_labeling_job_resource_config(c.labeling_job_resource_config.as_ref().map(|r| {
            sdk::LabelingJobResourceConfig::builder()
                .set_volume_kms_key_id(r.volume_kms_key_id.clone())
                .set_vpc_config(r.vpc_config.as_ref().map(|v| {
                    sdk::VpcConfig::builder()
                        .set_security_group_ids(Some(v.security_group_ids.clone()))
                        .set_subnets(Some(v.subnets.clone()))
                        .build()
                }))
                .build()
        }))
        .build()
}

fn human_task_to_sdk(c: &HumanTaskConfig) -> sdk::HumanTaskConfig {
    sdk::HumanTaskConfig::builder()
        .workteam_arn(&c.workteam_arn)
        .ui_config(
            sdk::UiConfig::builder()
                .set_ui_template_s3_uri(c.ui_config.ui_template_s3_uri.clone())
                .set_human_task_ui_arn(c.ui_config.human_task_ui_arn.clone())
                .build(),
        )
        .set_pre_human_task_lambda_arn(c.pre_human_task_lambda_arn.clone())
        .set_task_keywords(if c.task_keywords.is_empty() {
            None
        } else {
            Some(c.task_keywords.clone())
        })
        .task_title(&c.task_title)
        .task_description(&c.task_description)
        .number_of_human_workers_per_data_object(signed(c.number_of_human_workers_per_data_object))
        .task_time_limit_in_seconds(signed(c.task_time_limit_in_seconds))
        .set_task_availability_lifetime_in_seconds(
            c.task_availability_lifetime_in_seconds.map(signed),
        )
        .set_max_concurrent_task_count(c.max_concurrent_task_count.map(signed))
        .set_annotation_consolidation_config(c.annotation_consolidation_config.as_ref().map(|a| {
            sdk::AnnotationConsolidationConfig::builder()
                .annotation_consolidation_lambda_arn(&a.annotation_consolidation_lambda_arn)
                .build()
        }))
        .set_public_workforce_task_price(c.public_workforce_task_price.as_ref().map(|p| {
            sdk::PublicWorkforceTaskPrice::builder()
                .set_amount_in_usd(p.amount_in_usd.as_ref().map(|a| {
                    sdk::Usd::builder()
                        .set_dollars(a.dollars.map(signed))
                        .set_cents(a.cents.map(signed))
                        .set_tenth_fractions_of_a_cent(a.tenth_fractions_of_a_cent.map(signed))
                        .build()
                }))
                .build()
        }))
        .build()
}
