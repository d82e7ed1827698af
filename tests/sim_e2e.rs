//! The simulator end to end: jobs created through the real SageMaker client, run as Ground Truth runs
//! them with the three real function binaries under the Lambda Runtime API and moto S3, chained by the
//! real auto-chainer on (repeated) EventBridge events.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sagemaker::error::ProvideErrorMetadata;
use groundwork::labeling_job::{LabelingJobDescription, LabelingJobStatus};
use groundwork::metadata::parse_creation_date;
use groundwork::{ManifestLine, S3Uri};
use groundwork_sim::demo::{
    BoxLabel, BoxMetadata, ClassMetadata, JobSpec, Task, create, field, job_request, put_labels,
    put_manifest, read_manifest,
};
use groundwork_sim::moto::{Moto, create_bucket};
use groundwork_sim::workforce::{BoxWorkers, ClassWorkers};
use groundwork_sim::{GroundTruth, Interruption, JobScript, SimConfig};

const BUCKET: &str = "gw-sim";

struct World {
    // Dropped last: the simulator's functions stop first (`shutdown`), then moto.
    gt: Arc<GroundTruth>,
    moto: Moto,
    _logs: tempfile::TempDir,
}

impl World {
    async fn start(deliveries: usize) -> World {
        World::start_with(deliveries, Vec::new()).await
    }

    async fn start_with(deliveries: usize, consolidation_env: Vec<(String, String)>) -> World {
        let moto = Moto::start().unwrap();
        let logs = tempfile::tempdir().unwrap();
        let gt = GroundTruth::start(SimConfig {
            bin_dir: groundwork_sim::sim::sibling_bin_dir().unwrap(),
            log_dir: logs.path().to_owned(),
            s3_endpoint: moto.endpoint.clone(),
            batch_size: 5,
            event_deliveries: deliveries,
            chainer_env: Vec::new(),
            consolidation_env,
            allowed_s3_locations: Some(format!("s3://{BUCKET}")),
        })
        .await
        .unwrap();
        create_bucket(&moto.s3(), BUCKET).await.unwrap();
        World {
            gt,
            moto,
            _logs: logs,
        }
    }

    fn uri(key: &str) -> S3Uri {
        S3Uri::new(BUCKET, key).unwrap()
    }

    /// A classification input of `n` objects under `prefix`, answered by simulated workers under `lan`.
    async fn classification_input(&self, prefix: &str, n: usize, lan: &str) -> (S3Uri, S3Uri) {
        let labels: Vec<String> = ["cat", "dog", "bird"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let refs: Vec<String> = (0..n)
            .map(|i| format!("s3://{BUCKET}/img/{i:03}.jpg"))
            .collect();
        let manifest = World::uri(&format!("{prefix}/input.manifest"));
        let label_file = World::uri(&format!("{prefix}/labels.json"));
        let s3 = self.moto.s3();
        put_manifest(&s3, &manifest, &refs).await.unwrap();
        put_labels(&s3, &label_file, &labels).await.unwrap();
        self.gt
            .set_workforce(lan, Arc::new(ClassWorkers::spread(8, 3, 0.8, 0.95, 0.1)));
        (manifest, label_file)
    }

    async fn classification_job(
        &self,
        name: &str,
        lan: &str,
        input: &(S3Uri, S3Uri),
        tags: &[(&str, &str)],
    ) {
        let output = World::uri("out/");
        let request = job_request(&JobSpec {
            name,
            lan,
            task: Task::ImageClassification,
            manifest: &input.0,
            labels: &input.1,
            output: &output,
            workers: 5,
            tags,
        });
        create(&self.gt, &request).await.unwrap();
    }

    async fn settle(&self) {
        assert!(
            self.gt.wait_idle(Duration::from_secs(120)).await,
            "the simulator did not settle in 120 s: {:#?}",
            self.gt.jobs()
        );
    }

    fn children_of(&self, parent: &str) -> Vec<LabelingJobDescription> {
        self.gt
            .jobs()
            .into_iter()
            .filter(|j| j.tag("groundwork:parent-job") == Some(parent))
            .collect()
    }

    async fn output(&self, job: &LabelingJobDescription) -> Vec<ManifestLine> {
        let uri = &job
            .labeling_job_output
            .as_ref()
            .expect("an output manifest")
            .output_dataset_s3_uri;
        read_manifest(&self.moto.s3(), uri).await.unwrap()
    }

    async fn stop(self) {
        self.gt.shutdown().await;
    }
}

/// The real crowd set `venanzi2015_wsamt` (20 answers per tweet), replayed.
fn wsamt() -> groundwork_sim::workforce::Replay {
    let crowd = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("data/crowd/venanzi2015_wsamt");
    groundwork_sim::workforce::Replay::load(&crowd).unwrap()
}

fn class_labels(lines: &[ManifestLine], lan: &str) -> BTreeMap<String, ClassMetadata> {
    lines
        .iter()
        .filter_map(|l| {
            let meta: ClassMetadata = field(l, &format!("{lan}-metadata"))?;
            l.get(lan)?;
            Some((l.source().value().to_owned(), meta))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_job_is_continued_once_and_ends_as_one_uninterrupted_job_would() {
    // Dawid-Skene with worker quality (the defaults): the continued job takes over the worker-quality
    // document of the stopped one, so its batches are judged with the same history as the uninterrupted
    // job's.
    let world = World::start(3).await;
    let input = world.classification_input("animals", 20, "animal").await;
    world
        .classification_job("whole", "animal", &input, &[])
        .await;
    world.gt.script(JobScript {
        name: "parts".to_owned(),
        interruption: Interruption::StopAfter(8),
    });
    world
        .classification_job(
            "parts",
            "animal",
            &input,
            &[("groundwork:chain", "continue")],
        )
        .await;
    world.settle().await;

    let parts = world.gt.describe("parts").unwrap();
    assert_eq!(parts.labeling_job_status, LabelingJobStatus::Stopped);
    assert_eq!(parts.label_counters.human_labeled, Some(8));
    let children = world.children_of("parts");
    assert_eq!(
        children.len(),
        1,
        "three deliveries of one state change start one job: {children:#?}"
    );
    let deliveries = world.gt.deliveries();
    let of_parts: Vec<_> = deliveries.iter().filter(|d| d.job == "parts").collect();
    assert_eq!(of_parts.len(), 3);
    assert!(of_parts.iter().all(|d| d.outcome.is_ok()), "{of_parts:#?}");

    let continued = &children[0];
    assert_eq!(continued.label_attribute_name.as_deref(), Some("animal"));
    assert_eq!(continued.labeling_job_status, LabelingJobStatus::Completed);
    assert_eq!(
        continued.label_counters.human_labeled,
        Some(12),
        "only the unlabeled objects are worked on again"
    );
    let first = world.output(&parts).await;
    let last = world.output(continued).await;
    assert_eq!(last.len(), 20);
    let labels = ["cat", "dog", "bird"];
    let mut by_job: BTreeMap<String, usize> = BTreeMap::new();
    for line in &last {
        let meta: ClassMetadata = field(line, "animal-metadata").expect("every object labeled");
        let index = line
            .get("animal")
            .and_then(serde_json::Value::as_u64)
            .unwrap();
        assert_eq!(labels[index as usize], meta.class_name, "{line:?}");
        assert_eq!(meta.kind, "groundtruth/image-classification");
        assert_eq!(meta.human_annotated, "yes");
        assert!((0.0..=1.0).contains(&meta.confidence));
        assert!(
            parse_creation_date(&meta.creation_date).is_some(),
            "{}",
            meta.creation_date
        );
        assert_eq!(meta.job_name, meta.job_name.to_lowercase());
        *by_job.entry(meta.job_name).or_default() += 1;
    }
    assert_eq!(
        by_job,
        BTreeMap::from([
            ("labeling-job/parts".to_owned(), 8),
            (
                format!(
                    "labeling-job/{}",
                    continued.labeling_job_name.to_lowercase()
                ),
                12
            ),
        ]),
        "each object labeled once, by one job of the chain"
    );
    // The 8 labels of the stopped job are carried over unchanged.
    let before = class_labels(&first, "animal");
    let after = class_labels(&last, "animal");
    for (object, meta) in &before {
        assert_eq!(after[object].class_name, meta.class_name);
        assert_eq!(after[object].creation_date, meta.creation_date);
    }
    // Same answers, same labels as one uninterrupted job.
    let whole = world.gt.describe("whole").unwrap();
    let whole = class_labels(&world.output(&whole).await, "animal");
    let names = |m: &BTreeMap<String, ClassMetadata>| -> BTreeMap<String, String> {
        m.iter()
            .map(|(k, v)| (k.clone(), v.class_name.clone()))
            .collect()
    };
    assert_eq!(names(&after), names(&whole));
    // The continued job judged its workers with the stopped job's batches too: its worker-quality
    // document holds them beside its own.
    let document = |job: &str| {
        let uri = World::uri(&format!(
            "out/{job}/annotations/groundwork/worker-quality/animal.json"
        ));
        let s3 = world.moto.s3();
        async move {
            let bytes = groundwork_sim::moto::get(&s3, &uri).await.unwrap();
            groundwork::consolidate::worker_quality::JobWorkerQuality::from_stored(&bytes).unwrap()
        }
    };
    let stopped_quality = document("parts").await;
    let continued_quality = document(&continued.labeling_job_name).await;
    assert_eq!(stopped_quality.batch_count(), 2);
    assert_eq!(continued_quality.batch_count(), 2 + 3);
    assert!(
        world.children_of("whole").is_empty(),
        "an untagged job is not chained"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_failed_for_a_permanent_cause_is_not_chained_a_transient_one_is() {
    let world = World::start(2).await;
    let input = world.classification_input("fail", 15, "animal").await;
    world.gt.script(JobScript {
        name: "broken".to_owned(),
        interruption: Interruption::FailAfter(
            5,
            "ClientError: The input manifest contains an object that could not be read".to_owned(),
        ),
    });
    world.gt.script(JobScript {
        name: "flaky".to_owned(),
        interruption: Interruption::FailAfter(
            5,
            "InternalServerError: We encountered an internal error. Please try again.".to_owned(),
        ),
    });
    let tags = [("groundwork:chain", "continue")];
    world
        .classification_job("broken", "animal", &input, &tags)
        .await;
    world
        .classification_job("flaky", "animal", &input, &tags)
        .await;
    world.settle().await;

    let broken = world.gt.describe("broken").unwrap();
    assert_eq!(broken.labeling_job_status, LabelingJobStatus::Failed);
    assert!(
        broken
            .failure_reason
            .as_deref()
            .unwrap()
            .starts_with("ClientError")
    );
    assert!(broken.labeling_job_output.is_none());
    assert!(
        world.children_of("broken").is_empty(),
        "{:#?}",
        world.gt.jobs()
    );

    let flaky = world.children_of("flaky");
    assert_eq!(flaky.len(), 1);
    assert_eq!(flaky[0].labeling_job_status, LabelingJobStatus::Completed);
    assert_eq!(
        flaky[0]
            .input_config
            .data_source
            .s3_data_source
            .as_ref()
            .unwrap()
            .manifest_s3_uri,
        format!("s3://{BUCKET}/out/flaky/manifests/intermediate/1/output.manifest"),
        "a failed job has no output manifest: its newest intermediate one is continued"
    );
    assert_eq!(flaky[0].label_counters.human_labeled, Some(10));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continued_job_stopped_before_labeling_anything_is_not_continued_again() {
    let world = World::start(1).await;
    let input = world.classification_input("idle", 12, "animal").await;
    world.gt.script(JobScript {
        name: "idle".to_owned(),
        interruption: Interruption::StopAfter(5),
    });
    world.gt.script(JobScript {
        name: "idle-c1-*".to_owned(),
        interruption: Interruption::StopAfter(0),
    });
    world
        .classification_job(
            "idle",
            "animal",
            &input,
            &[("groundwork:chain", "continue")],
        )
        .await;
    world.settle().await;
    let jobs = world.gt.jobs();
    assert_eq!(jobs.len(), 2, "{jobs:#?}");
    assert_eq!(jobs[1].labeling_job_status, LabelingJobStatus::Stopped);
    assert_eq!(jobs[1].label_counters.human_labeled, Some(0));
    assert!(world.children_of(&jobs[1].labeling_job_name).is_empty());
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounding_box_job_writes_ground_truths_object_detection_output() {
    let world = World::start(1).await;
    let s3 = world.moto.s3();
    let labels: Vec<String> = ["car", "person"].iter().map(|s| (*s).to_owned()).collect();
    let refs: Vec<String> = (0..8)
        .map(|i| format!("s3://{BUCKET}/street/{i}.jpg"))
        .collect();
    let manifest = World::uri("boxes/input.manifest");
    let label_file = World::uri("boxes/labels.json");
    put_manifest(&s3, &manifest, &refs).await.unwrap();
    put_labels(&s3, &label_file, &labels).await.unwrap();
    world.gt.set_workforce(
        "vehicles",
        Arc::new(BoxWorkers {
            pool: 6,
            jitter: 0.05,
            miss: 0.1,
            extra: 0.1,
            wrong_class: 0.0,
            width: 640,
            height: 480,
        }),
    );
    let output = World::uri("out/");
    let request = job_request(&JobSpec {
        name: "Street-Boxes",
        lan: "vehicles",
        task: Task::BoundingBox,
        manifest: &manifest,
        labels: &label_file,
        output: &output,
        workers: 3,
        tags: &[],
    });
    create(&world.gt, &request).await.unwrap();
    world.settle().await;
    let job = world.gt.describe("street-boxes").unwrap();
    assert_eq!(job.labeling_job_status, LabelingJobStatus::Completed);
    assert_eq!(
        job.labeling_job_output
            .as_ref()
            .unwrap()
            .output_dataset_s3_uri,
        format!("s3://{BUCKET}/out/Street-Boxes/manifests/output/output.manifest"),
        "the output folder keeps the job name's case"
    );
    let lines = world.output(&job).await;
    assert_eq!(lines.len(), 8);
    for line in &lines {
        let label: BoxLabel = field(line, "vehicles").expect("a box label");
        let meta: BoxMetadata = field(line, "vehicles-metadata").expect("box metadata");
        assert_eq!(meta.kind, "groundtruth/object-detection");
        assert_eq!(meta.job_name, "labeling-job/street-boxes");
        assert_eq!(meta.objects.len(), label.annotations.len());
        assert!(!label.annotations.is_empty());
        for a in &label.annotations {
            assert!(meta.class_map.contains_key(&a.class_id.to_string()));
        }
    }
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_the_sdk_as_sagemaker_does() {
    let world = World::start(1).await;
    let input = world.classification_input("api", 4, "animal").await;
    let client = world.gt.sagemaker_client();
    let output = World::uri("out/");
    let spec = |name: &'static str, lan: &'static str, workers: u32| {
        job_request(&JobSpec {
            name,
            lan,
            task: Task::ImageClassification,
            manifest: &input.0,
            labels: &input.1,
            output: &output,
            workers,
            tags: &[("team", "vision")],
        })
    };
    create(&world.gt, &spec("Api-Job", "animal", 3))
        .await
        .unwrap();
    let again = create(&world.gt, &spec("api-job", "animal", 3)).await;
    assert!(
        again.unwrap_err().to_string().contains("ResourceInUse"),
        "names are unique case-insensitively"
    );
    for (name, lan, workers) in [
        ("bad_name", "animal", 3),
        ("ok-name", "animal-ref", 3),
        ("ok-name", "animal-metadata", 3),
        ("ok-name", "animal", 10),
    ] {
        let err = create(&world.gt, &spec(name, lan, workers))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("ValidationException"),
            "{name} {lan} {workers}: {err}"
        );
    }
    let missing = client
        .describe_labeling_job()
        .labeling_job_name("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Some("ResourceNotFound"));
    world.settle().await;
    let listed = client
        .list_labeling_jobs()
        .name_contains("API")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.labeling_job_summary_list().len(), 1);
    let summary = &listed.labeling_job_summary_list()[0];
    assert_eq!(
        summary.labeling_job_status().map(|s| s.as_str()),
        Some("Completed")
    );
    let arn = summary.labeling_job_arn().unwrap().to_owned();
    client
        .add_tags()
        .resource_arn(&arn)
        .tags(
            aws_sdk_sagemaker::types::Tag::builder()
                .key("stage")
                .value("test")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let tags = client.list_tags().resource_arn(&arn).send().await.unwrap();
    let keys: Vec<&str> = tags.tags().iter().filter_map(|t| t.key()).collect();
    assert_eq!(keys, ["team", "stage"]);
    let described = client
        .describe_labeling_job()
        .labeling_job_name("API-JOB")
        .send()
        .await
        .unwrap();
    let expected = format!("s3://{BUCKET}/out/Api-Job/manifests/output/output.manifest");
    assert_eq!(
        described
            .labeling_job_output()
            .and_then(|o| o.output_dataset_s3_uri()),
        Some(expected.as_str())
    );
    assert_eq!(
        described.label_counters().and_then(|c| c.human_labeled()),
        Some(4)
    );
    // A stopped job stays stopped.
    client
        .stop_labeling_job()
        .labeling_job_name("api-job")
        .send()
        .await
        .unwrap();
    assert_eq!(
        world.gt.describe("api-job").unwrap().labeling_job_status,
        LabelingJobStatus::Completed
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_function_is_started_again_and_its_cold_start_recorded() {
    let world = World::start(1).await;
    let pre = &world.gt.functions.pre;
    let event = serde_json::json!({
        "version": "2018-10-06",
        "labelingJobArn": "arn:aws:sagemaker:us-east-1:111122223333:labeling-job/none",
        "dataObject": {"source-ref": "s3://b/1.jpg"}
    });
    pre.invoke(&event).await.unwrap();
    let pid = pre.pid().await.unwrap();
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    tokio::time::sleep(Duration::from_millis(100)).await;
    pre.invoke(&event).await.unwrap();
    assert_ne!(pre.pid().await, Some(pid));
    let stats = pre.stats();
    assert_eq!(stats.cold_starts.len(), 2, "{stats:?}");
    assert_eq!(stats.invocations.len(), 2);
    assert!(stats.peak_rss_kib > 0);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_top_up_chain_asks_more_workers_only_where_unsure_and_merges_the_rounds() {
    use groundwork_sim::demo::{TOP_UP_LAN, TOP_UP_WORKERS, start_top_up, top_up_report};

    let world = World::start(2).await;
    let replay = wsamt();
    let tasks: Vec<String> = replay.tasks().into_iter().take(60).collect();
    let s3 = world.moto.s3();
    start_top_up(&world.gt, &s3, &replay, &tasks, BUCKET, "reviews", 0.95)
        .await
        .unwrap();
    world.settle().await;

    // One job per round, each created once although every state change was delivered twice.
    let jobs = world.gt.jobs();
    let round_2 = world.children_of("reviews");
    assert_eq!(round_2.len(), 1, "{jobs:#?}");
    let round_3 = world.children_of(&round_2[0].labeling_job_name);
    assert_eq!(round_3.len(), 1, "{jobs:#?}");
    assert!(world.children_of(&round_3[0].labeling_job_name).is_empty());
    assert_eq!(jobs.len(), 3);
    let root = world.gt.describe("reviews").unwrap();
    for (job, workers, lan) in [
        (&root, TOP_UP_WORKERS[0], TOP_UP_LAN.to_owned()),
        (
            &round_2[0],
            TOP_UP_WORKERS[1],
            format!("{TOP_UP_LAN}-top-up-2"),
        ),
        (
            &round_3[0],
            TOP_UP_WORKERS[2],
            format!("{TOP_UP_LAN}-top-up-3"),
        ),
    ] {
        assert_eq!(job.labeling_job_status, LabelingJobStatus::Completed);
        assert_eq!(
            job.human_task_config
                .number_of_human_workers_per_data_object,
            workers
        );
        assert_eq!(job.label_attribute_name.as_deref(), Some(lan.as_str()));
    }
    let deliveries = world.gt.deliveries();
    assert_eq!(deliveries.len(), 6, "{deliveries:#?}");
    assert!(
        deliveries.iter().all(|d| d.outcome.is_ok()),
        "{deliveries:#?}"
    );

    // Only the objects below the target go on, and each round decides from all the answers so far.
    let first = world.output(&root).await;
    let unsure = |lines: &[ManifestLine], lan: &str| -> Vec<String> {
        class_labels(lines, lan)
            .into_iter()
            .filter(|(_, m)| m.confidence < 0.95)
            .map(|(source, _)| source)
            .collect()
    };
    let second = world.output(&round_2[0]).await;
    let sources = |lines: &[ManifestLine]| -> Vec<String> {
        lines
            .iter()
            .map(|l| l.source().value().to_owned())
            .collect()
    };
    let mut expected = unsure(&first, TOP_UP_LAN);
    expected.sort();
    let mut got = sources(&second);
    got.sort();
    assert_eq!(got, expected);
    assert!(!got.is_empty() && got.len() < 60, "{} objects", got.len());
    let third = world.output(&round_3[0]).await;
    let mut expected = unsure(&second, &format!("{TOP_UP_LAN}-top-up-2"));
    expected.sort();
    let mut got = sources(&third);
    got.sort();
    assert_eq!(got, expected);

    // One merged manifest: every object once, under the root's name, its answers as the replay gave them.
    let report = top_up_report(&s3, &replay, BUCKET, "reviews")
        .await
        .unwrap();
    assert_eq!(report.objects, 60);
    assert_eq!(report.repeated, 0);
    assert_eq!(report.labeled, 60);
    assert_eq!(report.answers, report.answers_given);
    let spent = 2 * 60 + second.len() + 2 * third.len();
    assert_eq!(report.answers, spent, "answers are counted once per worker");
    assert_eq!(report.rounds.values().sum::<usize>(), 60);
    assert_eq!(report.rounds.get(&3).copied().unwrap_or(0), third.len());
    assert!(report.answers < 5 * 60);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_top_up_round_is_continued_with_its_answers_and_worker_quality() {
    use groundwork_sim::demo::{start_top_up, top_up_report};

    let world = World::start(2).await;
    let replay = wsamt();
    let tasks: Vec<String> = replay.tasks().into_iter().take(40).collect();
    world.gt.script(JobScript {
        name: "stopped".to_owned(),
        interruption: Interruption::StopAfter(15),
    });
    let s3 = world.moto.s3();
    start_top_up(&world.gt, &s3, &replay, &tasks, BUCKET, "stopped", 0.95)
        .await
        .unwrap();
    // The root has no continue tag of its own: the operator adds it, as a team would after a stop.
    world.settle().await;
    let stopped = world.gt.describe("stopped").unwrap();
    assert_eq!(stopped.labeling_job_status, LabelingJobStatus::Stopped);
    assert!(
        world.children_of("stopped").is_empty(),
        "chaining is off by default"
    );
    let arn = stopped.labeling_job_arn.clone();
    world
        .gt
        .add_tags(
            &arn,
            &[groundwork::labeling_job::Tag {
                key: "groundwork:chain".to_owned(),
                value: "continue".to_owned(),
            }],
        )
        .unwrap();
    let jobs = groundwork_sagemaker::SageMakerJobs::new(world.gt.sagemaker_client());
    let store = groundwork_s3::S3Store::new(s3.clone());
    let ports = groundwork::chain::executor::ChainPorts {
        describer: &jobs,
        creator: &jobs,
        reader: &store,
        writer: &store,
        lister: &store,
    };
    let settings = groundwork::chain::ChainSettings::default();
    let report = groundwork::chain::executor::chain_job(
        ports,
        "stopped",
        groundwork::chain::executor::ChainRun::lambda(&settings),
    )
    .await
    .unwrap();
    let groundwork::chain::executor::RunOutcome::Created { action, .. } = report.outcome else {
        panic!("{:?}", report.outcome);
    };
    let keys: Vec<String> = action
        .manifest_writes
        .iter()
        .map(|w| w.uri.key().to_owned())
        .collect();
    assert!(
        keys.iter()
            .any(|k| k.ends_with("groundwork/top-up/prior-answers.jsonl")),
        "{keys:#?}"
    );
    assert!(
        keys.iter()
            .any(|k| k.ends_with("groundwork/worker-quality/crowd-topup.json")),
        "{keys:#?}"
    );
    world.settle().await;

    let report = top_up_report(&s3, &replay, BUCKET, "stopped")
        .await
        .unwrap();
    assert_eq!(report.objects, 40);
    assert_eq!(report.repeated, 0);
    assert_eq!(report.labeled, 40);
    assert_eq!(
        report.answers, report.answers_given,
        "the answers given before the stop are counted and carried"
    );
    world.stop().await;
}
