//! Adaptive redundancy replayed on every real crowd set with at least 5 answers per object (`make
//! bench-topup`): accuracy against answers spent for our calibrated-confidence stopping rule and the
//! Toloka-style weighted-vote-share rule, over 20 reveal orders, beside all answers with our engine.
//! Prints a Markdown table and writes the curves as CSV (`--csv FILE`) for `tests/scripts/plot-topup.py`.
//!
//! `cargo run --release -p groundwork --example topup -- [--orders 20] [--csv FILE] [--only NAME]`

use std::io::Write;
use std::path::PathBuf;

use groundwork::consolidate::classification::eval::{
    EvalSet, engine_config, evaluate_set, set_dirs,
};
use groundwork::consolidate::classification::topup::{
    ReplayOutcome, Rounds, StopRule, accuracy_at, replay_mean,
};

const OURS: [f64; 8] = [0.7, 0.8, 0.9, 0.95, 0.97, 0.99, 0.995, 0.999];
const TOLOKA: [f64; 9] = [0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
    };
    let orders: u64 = value("--orders").map_or(Ok(20), |v| v.parse())?;
    let only = value("--only").cloned();
    let mut csv = match value("--csv") {
        Some(path) => Some(std::io::BufWriter::new(std::fs::File::create(path)?)),
        None => None,
    };
    if let Some(out) = csv.as_mut() {
        writeln!(out, "set,rule,target,mean_answers,accuracy")?;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/crowd");
    let dirs = set_dirs(&root)?;
    let config = engine_config();
    let rounds = Rounds::default();
    println!(
        "| set | all answers: per object, accuracy | ours: fewest answers within 0.5 points (share) | ours at 0.95: answers, accuracy | Toloka-style at the same answers | ours − Toloka, over the matched points |"
    );
    println!("|---|---|---|---|---|---|");
    for dir in dirs {
        let set = EvalSet::load(&dir)?;
        if only.as_deref().is_some_and(|o| !set.name.contains(o)) {
            continue;
        }
        let per_object = set.table.rows.len() as f64 / set.table.tasks.len().max(1) as f64;
        if per_object < 5.0 {
            continue;
        }
        let all = evaluate_set(&set, &config, None);
        let all_answers = replay_mean(&set, &rounds, StopRule::Confidence(2.0), 1, &config);
        let ours: Vec<(f64, ReplayOutcome)> = OURS
            .iter()
            .map(|&t| {
                (
                    t,
                    replay_mean(&set, &rounds, StopRule::Confidence(t), orders, &config),
                )
            })
            .collect();
        let toloka: Vec<(f64, ReplayOutcome)> = TOLOKA
            .iter()
            .map(|&t| {
                (
                    t,
                    replay_mean(
                        &set,
                        &rounds,
                        StopRule::WeightedVoteShare(t),
                        orders,
                        &config,
                    ),
                )
            })
            .collect();
        if let Some(out) = csv.as_mut() {
            writeln!(
                out,
                "{},all,,{:.4},{:.5}",
                set.name, all_answers.mean_answers, all.whole.accuracy
            )?;
            for (rule, curve) in [("ours", &ours), ("toloka", &toloka)] {
                for (t, r) in curve.iter() {
                    writeln!(
                        out,
                        "{},{rule},{t},{:.4},{:.5}",
                        set.name, r.mean_answers, r.accuracy
                    )?;
                }
            }
        }
        let within = ours
            .iter()
            .filter(|(_, r)| r.accuracy >= all.whole.accuracy - 0.005)
            .map(|(_, r)| r.mean_answers)
            .fold(f64::INFINITY, f64::min);
        let toloka_curve: Vec<ReplayOutcome> = toloka.iter().map(|(_, r)| *r).collect();
        let diffs: Vec<f64> = ours
            .iter()
            .filter_map(|(_, r)| accuracy_at(&toloka_curve, r.mean_answers).map(|t| r.accuracy - t))
            .collect();
        let at95 = ours
            .iter()
            .find(|(t, _)| *t == 0.95)
            .map(|(_, r)| *r)
            .unwrap_or_default();
        let fmt_diffs = if diffs.is_empty() {
            "–".to_owned()
        } else {
            format!(
                "{:+.4} … {:+.4} ({} points)",
                diffs.iter().copied().fold(f64::INFINITY, f64::min),
                diffs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                diffs.len()
            )
        };
        println!(
            "| {} | {:.2}, {:.4} | {} | {:.2}, {:.4} | {} | {} |",
            set.name,
            all_answers.mean_answers,
            all.whole.accuracy,
            if within.is_finite() {
                format!(
                    "{within:.2} ({:.0} %)",
                    100.0 * within / all_answers.mean_answers
                )
            } else {
                "not reached".to_owned()
            },
            at95.mean_answers,
            at95.accuracy,
            accuracy_at(&toloka_curve, at95.mean_answers)
                .map(|a| format!("{a:.4}"))
                .unwrap_or_else(|| "outside its curve".to_owned()),
            fmt_diffs,
        );
    }
    Ok(())
}
