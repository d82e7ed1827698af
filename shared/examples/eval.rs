//! The classification engine's evaluation (`make eval`): every real crowd set in `data/crowd` and the
//! synthetic regimes, whole set and batch by batch with worker quality carried, against gold; one
//! Markdown table, the baselines beside ours (plain vote, its vote-share ECE, the best crowd-kit method
//! from `data/crowd/crowdkit.csv`).
//!
//! `cargo run --release -p groundwork --example eval -- [--sets DIR...] [--no-synthetic] [--batch 50]
//! [--first-batch 10] [--seed 0] [--only NAME] [--answers-per-object N]`

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use groundwork::consolidate::classification::ClassificationConfig;
use groundwork::consolidate::classification::eval::{
    AUDITED_OBJECTS, BatchPlan, EvalSet, SetReport, TRANSFER_ROUNDS, engine_config, evaluate_set,
    regimes, set_dirs, transferred_audit_ece,
};

fn crowdkit_best(root: &Path) -> HashMap<String, (String, f64)> {
    let Ok(text) = std::fs::read_to_string(root.join("crowdkit.csv")) else {
        return HashMap::new();
    };
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let mut best = HashMap::new();
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let Some(name) = cells.first() else { continue };
        let top = cells
            .iter()
            .zip(&header)
            .skip(1)
            .filter(|(_, h)| !h.starts_with("ece"))
            .filter_map(|(c, h)| c.parse::<f64>().ok().map(|v| ((*h).to_owned(), v)))
            .fold(None::<(String, f64)>, |acc, (h, v)| match acc {
                Some((_, a)) if a >= v => acc,
                _ => Some((h, v)),
            });
        if let Some(top) = top {
            best.insert((*name).to_owned(), top);
        }
    }
    best
}

/// [`evaluate_set`] with the batch replay and another job's audit.
fn evaluate(set: &EvalSet, config: &ClassificationConfig, plan: &BatchPlan) -> SetReport {
    let mut report = evaluate_set(set, config, Some(plan));
    report.transferred_audit_ece =
        transferred_audit_ece(set, config, AUDITED_OBJECTS, TRANSFER_ROUNDS, 0);
    report
}

fn audited(ece: Option<f64>) -> String {
    ece.map(|e| format!("{e:.3}"))
        .unwrap_or_else(|| "–".to_owned())
}

fn row(report: &SetReport, best: Option<&(String, f64)>) -> String {
    let b = report.batches.unwrap_or_default();
    let flag = |ours: f64, vote: f64| if ours + 0.002 < vote { "!" } else { "" };
    format!(
        "| {} | {}×{}×{} ({} answers) | {:.4}{} | {:.3}{} | {:.3} | {} | {} | {:.4}{} | {:.3}{} | {} | {:.4} | {:.3} | {:.3} | {} | {:.3} s |",
        report.name,
        report.tasks,
        report.workers,
        report.classes,
        report.answers,
        report.whole.accuracy,
        flag(report.whole.accuracy, report.vote.accuracy),
        report.whole.ece,
        if report.whole.ece > report.vote.ece {
            "!"
        } else {
            ""
        },
        report.whole.brier,
        audited(report.audited_ece),
        audited(report.transferred_audit_ece),
        b.accuracy,
        flag(b.accuracy, report.vote.accuracy),
        b.ece,
        if b.ece > report.vote.ece { "!" } else { "" },
        audited(report.batches_audited_ece),
        report.vote.accuracy,
        report.vote.ece,
        report.vote.brier,
        best.map(|(m, v)| format!("{v:.3} ({m})"))
            .unwrap_or_else(|| "–".to_owned()),
        report.whole.seconds,
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
    };
    let mut plan = BatchPlan::default();
    if let Some(v) = value("--batch") {
        plan.batch_size = v.parse()?;
    }
    if let Some(v) = value("--first-batch") {
        plan.first_batch = v.parse()?;
    }
    if let Some(v) = value("--seed") {
        plan.seed = v.parse()?;
    }
    let only = value("--only").cloned();
    // `--answers-per-object 3`: every real set cut to 3 answers per object (seeded), as most jobs ask.
    let per_object: Option<usize> = value("--answers-per-object")
        .map(|v| v.parse())
        .transpose()?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/crowd");
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(i) = args.iter().position(|a| a == "--sets") {
        dirs.extend(
            args[i + 1..]
                .iter()
                .take_while(|a| !a.starts_with("--"))
                .map(PathBuf::from),
        );
    } else {
        dirs = set_dirs(&root)?;
    }
    let best = crowdkit_best(&root);
    let mut config = engine_config();
    // Developer knobs, to try a setting on every set at once (never tuned per set).
    let knob = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<f64>().ok());
    if let Some(v) = knob("GW_ALPHA") {
        config.confusion_prior_strength = v;
    }
    if knob("GW_MV").is_some_and(|v| v > 0.5) {
        config.method = groundwork::consolidate::classification::Method::MajorityVote;
    }
    if let Some(v) = knob("GW_CPS") {
        config.class_prior_strength = v;
    }
    if let Some(v) = knob("GW_CVA") {
        config.cross_validated_confusion = v > 0.5;
    }
    if let Some(v) = knob("GW_SYM") {
        config.symmetric_prior_rows = v > 0.5;
    }
    if let Some(v) = knob("GW_BETA") {
        config.skill_prior_strength = v;
    }
    if let Some(v) = knob("GW_CAL") {
        config.calibrate = v > 0.5;
    }
    if let Some(v) = knob("GW_EPOCHS") {
        config.max_epochs = v as usize;
    }
    if let Some(v) = knob("GW_SEL") {
        config.select_structure = v > 0.5;
    }
    if let Some(v) = knob("GW_MIN") {
        config.min_answers_for_own_matrix = v as usize;
    }
    println!(
        "| set | tasks×workers×classes | acc | ECE | Brier | ECE, 50 audited | ECE, another job's audit | batches acc | batches ECE | batches ECE, 50 audited | vote acc | vote-share ECE | vote Brier | best crowd-kit | time |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let keep = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    for dir in &dirs {
        let mut set = EvalSet::load(dir)?;
        if let Some(n) = per_object {
            set = set.subsample(n, 0);
        }
        if !keep(&set.name) {
            continue;
        }
        let report = evaluate(&set, &config, &plan);
        println!("{}", row(&report, best.get(&set.name)));
    }
    if !args.iter().any(|a| a == "--no-synthetic") {
        for regime in regimes() {
            if !keep(regime.name) {
                continue;
            }
            let set = regime.generate();
            let report = evaluate(&set, &config, &plan);
            println!("{}", row(&report, None));
        }
    }
    println!(
        "\n`!`: accuracy more than 0.002 below the plain vote, or ECE above the vote share's."
    );
    Ok(())
}
