//! `make bench-memory`: the consolidation function's peak memory against its payload's size, the way
//! Lambda runs it: the release binary under the simulator's local Lambda Runtime API, the payload in
//! moto S3, one fresh process per payload (so each peak is that payload's), worker quality on.
//!
//! Payloads: `--objects` classification objects (3 classes, 5 answers each from 300 workers, 75 %
//! right), written like Ground Truth's. Prints a Markdown table: payload and response sizes, the
//! process's peak resident set (`VmHWM`), the idle process (after a one-object request) and the
//! ratios.

use std::path::PathBuf;

use clap::Parser;
use groundwork::S3Uri;
use groundwork_sim::lambda::{Answer, Function, peak_rss_kib};
use groundwork_sim::moto::{Moto, create_bucket, put};
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// Objects per payload, one run each.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000,5000,10000,20000,30000,100000"
    )]
    objects: Vec<usize>,
    /// Where the function binaries are (default: the release folder this example was built into).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// An environment variable for the function, `NAME=value` (e.g. `MAX_PAYLOAD_OBJECTS=200000`);
    /// repeatable. The simulator gives it 256 MB of memory (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`).
    #[arg(long = "env", value_parser = name_value)]
    env: Vec<(String, String)>,
}

fn name_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{text}` is not NAME=value"))
}

const BUCKET: &str = "groundwork-memory";
const LABELS: [&str; 3] = ["cat", "dog", "bird"];

/// A payload of `n` objects, deterministic (a small linear congruential generator, seed 0).
fn payload(n: usize) -> Vec<u8> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |m: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) as usize) % m
    };
    let objects: Vec<_> = (0..n)
        .map(|i| {
            let truth = next(3);
            let answers: Vec<_> = (0..5)
                .map(|_| {
                    let worker = next(300);
                    let label = if next(4) < 3 { truth } else { next(3) };
                    let content = json!({"crowd-image-classifier": {"label": LABELS[label]}});
                    json!({"workerId": format!("private.us-east-1.worker{worker:04}"),
                           "annotationData": {"content": content.to_string()}})
                })
                .collect();
            json!({"datasetObjectId": i.to_string(),
                   "dataObject": {"s3Uri": format!("s3://{BUCKET}/images/{i:06}.jpg")},
                   "annotations": answers})
        })
        .collect();
    serde_json::to_vec(&objects).unwrap_or_default()
}

fn request(payload_key: &str) -> serde_json::Value {
    json!({
        "version": "2018-10-06",
        "labelingJobArn": "arn:aws:sagemaker:us-east-1:111122223333:labeling-job/animals",
        "labelCategories": LABELS,
        "labelAttributeName": "animal",
        "roleArn": "arn:aws:iam::111122223333:role/GroundTruthRole",
        "payload": {"s3Uri": format!("s3://{BUCKET}/{payload_key}")},
        "outputConfig": format!("s3://{BUCKET}/output/animals/annotations"),
    })
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let bin_dir = args
        .bin_dir
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.to_path_buf())
        })
        .ok_or("pass --bin-dir")?;
    let binary = bin_dir.join("gt-annotation-consolidation");
    let moto = Moto::start()?;
    let s3 = moto.s3();
    create_bucket(&s3, BUCKET).await?;
    let mut env = moto.env();
    env.extend(args.env);
    let logs = std::env::temp_dir().join("groundwork-memory-logs");
    std::fs::create_dir_all(&logs)?;

    println!(
        "| objects | payload (MiB) | response | peak RSS (MiB) | idle (MiB) | peak / payload | (peak − idle) / payload |"
    );
    println!("|---|---|---|---|---|---|---|");
    put(
        &s3,
        &format!("s3://{BUCKET}/payload-1.json").parse::<S3Uri>()?,
        payload(1),
    )
    .await?;
    for n in args.objects {
        let body = payload(n);
        let bytes = body.len();
        let key = format!("payload-{n}.json");
        put(&s3, &format!("s3://{BUCKET}/{key}").parse::<S3Uri>()?, body).await?;
        let function = Function::new(&binary, env.clone(), logs.join(format!("{n}.log")));
        // The idle process: cold start and a one-object request.
        function.invoke(&request("payload-1.json")).await?;
        let pid = function.pid().await.ok_or("the function did not start")?;
        let idle = peak_rss_kib(pid).unwrap_or(0);
        let answer = function.invoke(&request(&key)).await?;
        let peak = peak_rss_kib(pid).unwrap_or(0);
        function.stop().await;
        let response = match answer {
            Answer::Response(body) => format!("{:.1} MiB", body.len() as f64 / 1_048_576.0),
            Answer::Error(e) => format!("`{}`", e.error_type),
        };
        let payload_mib = bytes as f64 / 1_048_576.0;
        println!(
            "| {n} | {payload_mib:.1} | {response} | {:.0} | {:.0} | {:.1}× | {:.1}× |",
            mib(peak),
            mib(idle),
            mib(peak) / payload_mib,
            mib(peak.saturating_sub(idle)) / payload_mib,
        );
    }
    Ok(())
}
