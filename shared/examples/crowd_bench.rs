//! Times our truth inference on a `task,worker,label` CSV and scores it against a `task,label` gold CSV,
//! printing one row per method in crowd-kit bench's format (`method time_s accuracy`) plus ECE, so
//! `tests/scripts/bench-crowdkit.sh` can put both side by side. Time is the consolidation alone (the CSV
//! is parsed first), best of `--repeat` runs, like crowd-kit's `fit_predict` timing.
//!
//! `cargo run --release -p groundwork --example crowd_bench -- LABELS.csv GOLD.csv [--repeat N]`

use std::fs::File;
use std::io::BufReader;
use std::time::Instant;

use groundwork::consolidate::classification::{
    ClassificationConfig, Method, accuracy, consolidate_label_table, expected_calibration_error,
    read_gold_csv, read_labels_csv,
};
use groundwork::consolidate::worker_quality::WorkerPriors;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(labels), Some(gold)) = (args.first(), args.get(1)) else {
        return Err("usage: crowd_bench LABELS.csv GOLD.csv [--repeat N]".into());
    };
    let repeat: usize = match args.iter().position(|a| a == "--repeat") {
        Some(i) => args.get(i + 1).ok_or("--repeat needs a number")?.parse()?,
        None => 3,
    };
    let table = read_labels_csv(BufReader::new(File::open(labels)?))?;
    let gold = read_gold_csv(BufReader::new(File::open(gold)?))?;
    let gold = table.gold_classes(&gold);
    println!(
        "# groundwork: labels={} tasks={} workers={} classes={}",
        table.rows.len(),
        table.tasks.len(),
        table.workers.len(),
        table.classes.len()
    );
    println!(
        "{:34} {:>9} {:>9} {:>7}",
        "method", "time_s", "accuracy", "ece"
    );
    for method in [Method::MajorityVote, Method::DawidSkene] {
        let config = ClassificationConfig {
            method,
            ..ClassificationConfig::default()
        };
        let mut best = f64::INFINITY;
        let mut last = None;
        for _ in 0..repeat.max(1) {
            let start = Instant::now();
            // The table's dense indices go into the engine as the CLI's `--labels` path does.
            let outcome = consolidate_label_table(&table, &WorkerPriors::empty(), &config);
            best = best.min(start.elapsed().as_secs_f64());
            last = Some(outcome);
        }
        let Some(outcome) = last else { continue };
        let predicted: Vec<Option<usize>> = outcome.items.iter().map(|i| i.label).collect();
        let confidence: Vec<f64> = outcome.items.iter().map(|i| i.confidence).collect();
        println!(
            "{:34} {:9.4} {:9.4} {:7.4}",
            format!("groundwork {method}"),
            best,
            accuracy(&predicted, &gold),
            expected_calibration_error(&confidence, &predicted, &gold, 10)
        );
    }
    Ok(())
}
