//! Tests of the engine: hand-made cases, properties, the shared real sets, synthetic crowds, batches.

use super::synthetic::{SyntheticConfig, SyntheticSet, generate};
use super::*;
use crate::consolidate::worker_quality::JobWorkerQuality;

const CROWD_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/crowd");

/// The real crowd sets in the repository (`data/crowd`).
const REAL_SETS: [&str; 4] = [
    "welinder2010_bluebirds",
    "snow2008_rte",
    "snow2008_temp",
    "zheng2017_dog",
];

/// A label table and its gold classes from a labels CSV and a gold CSV.
fn load_csv(labels: &str, gold: &str) -> Result<(LabelTable, Vec<Option<usize>>), String> {
    let open = |path: &str| {
        std::fs::File::open(path)
            .map(std::io::BufReader::new)
            .map_err(|e| format!("{path}: {e}"))
    };
    let table = read_labels_csv(open(labels)?).map_err(|e| format!("{labels}: {e}"))?;
    let gold = read_gold_csv(open(gold)?).map_err(|e| format!("{gold}: {e}"))?;
    let gold = table.gold_classes(&gold);
    Ok((table, gold))
}

fn load_real(name: &str) -> (LabelTable, Vec<Option<usize>>) {
    let dir = format!("{CROWD_DIR}/{name}");
    load_csv(&format!("{dir}/labels.csv"), &format!("{dir}/gold.csv"))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The synthetic generator's crowd with the default workers.
fn synthetic(tasks: usize, overlap: usize, classes: usize, seed: u64) -> SyntheticSet {
    generate(&SyntheticConfig {
        tasks,
        overlap,
        classes,
        seed,
        ..SyntheticConfig::default()
    })
}

/// Per confidence decile: how many labels, their mean confidence and their accuracy (`GW_DEBUG`).
fn print_reliability_bins(confidence: &[f64], predicted: &[Option<usize>], gold: &[Option<usize>]) {
    let mut bins = [(0usize, 0.0f64, 0usize); 10];
    for ((c, p), g) in confidence.iter().zip(predicted).zip(gold) {
        let Some(g) = g else { continue };
        let b = ((c * 10.0) as usize).min(9);
        bins[b].0 += 1;
        bins[b].1 += c;
        bins[b].2 += usize::from(*p == Some(*g));
    }
    for (b, (n, c, r)) in bins.iter().enumerate() {
        if *n > 0 {
            eprintln!(
                "  bin {b}: n {n:5} conf {:.3} acc {:.3}",
                c / *n as f64,
                *r as f64 / *n as f64
            );
        }
    }
}

fn evaluate(
    table: &LabelTable,
    gold: &[Option<usize>],
    config: &ClassificationConfig,
) -> (f64, f64) {
    let items = table.single_label_items();
    let outcome =
        consolidate_single_label(table.classes.len(), &items, &WorkerPriors::empty(), config);
    let predicted: Vec<Option<usize>> = outcome.items.iter().map(|e| e.label).collect();
    let confidence: Vec<f64> = outcome.items.iter().map(|e| e.confidence).collect();
    if std::env::var("GW_DEBUG").is_ok() {
        print_reliability_bins(&confidence, &predicted, gold);
    }
    (
        accuracy(&predicted, gold),
        expected_calibration_error(&confidence, &predicted, gold, 10),
    )
}

#[test]
#[ignore = "prints a report; run in release"]
fn report() {
    let env = |k: &str, d: f64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let base = ClassificationConfig::default();
    let ds = ClassificationConfig {
        leave_one_out: env("GW_LOO", 0.0) > 0.5,
        calibrate: env("GW_CAL", 1.0) > 0.5,
        confusion_prior_strength: env("GW_ALPHA", base.confusion_prior_strength),
        skill_prior_strength: env("GW_BETA", base.skill_prior_strength),
        min_answers_for_own_matrix: env("GW_MIN", base.min_answers_for_own_matrix as f64) as usize,
        max_epochs: env("GW_EPOCHS", base.max_epochs as f64) as usize,
        ..base
    };
    let mv = ClassificationConfig {
        method: Method::MajorityVote,
        ..ClassificationConfig::default()
    };
    for name in REAL_SETS {
        let (table, gold) = load_real(name);
        let (a, e) = evaluate(&table, &gold, &ds);
        let (ma, me) = evaluate(&table, &gold, &mv);
        println!("{name:28} DS acc {a:.4} ece {e:.4} | MV acc {ma:.4} ece {me:.4}");
    }
    for (tasks, overlap, classes, seed) in [
        (10_000, 5, 4, 0),
        (2000, 3, 10, 1),
        (1000, 3, 4, 2),
        (5000, 5, 2, 3),
    ] {
        let set = synthetic(tasks, overlap, classes, seed);
        let (a, e) = evaluate(&set.table, &set.gold(), &ds);
        let (ma, me) = evaluate(&set.table, &set.gold(), &mv);
        println!(
            "synth t{tasks} o{overlap} k{classes} s{seed} DS acc {a:.4} ece {e:.4} | MV acc {ma:.4} ece {me:.4}"
        );
    }
    for path in ["/tmp/synth-10k", "/tmp/synth-100k"] {
        let Ok(labels) = std::fs::File::open(format!("{path}/labels.csv")) else {
            continue;
        };
        let table = read_labels_csv(std::io::BufReader::new(labels)).expect("labels");
        let gold = read_gold_csv(std::io::BufReader::new(
            std::fs::File::open(format!("{path}/gold.csv")).expect("gold"),
        ))
        .expect("gold");
        let gold = table.gold_classes(&gold);
        let t0 = std::time::Instant::now();
        let (a, e) = evaluate(&table, &gold, &ds);
        let dt = t0.elapsed();
        let (ma, me) = evaluate(&table, &gold, &mv);
        println!("{path} DS acc {a:.4} ece {e:.4} ({dt:?}) | MV acc {ma:.4} ece {me:.4}");
    }
}

fn items_of<'a>(votes: &[&[(&'a str, usize)]]) -> Vec<SingleLabelItem<'a>> {
    votes
        .iter()
        .map(|v| SingleLabelItem { votes: v.to_vec() })
        .collect()
}

fn ds() -> ClassificationConfig {
    ClassificationConfig::default()
}

fn mv() -> ClassificationConfig {
    ClassificationConfig {
        method: Method::MajorityVote,
        ..ClassificationConfig::default()
    }
}

#[test]
fn method_parses_its_names() {
    assert_eq!("dawid-skene".parse(), Ok(Method::DawidSkene));
    assert_eq!("DS".parse(), Ok(Method::DawidSkene));
    assert_eq!("majority-vote".parse(), Ok(Method::MajorityVote));
    assert_eq!(" mv ".parse(), Ok(Method::MajorityVote));
    assert!("glad".parse::<Method>().is_err());
    assert_eq!(Method::default(), Method::DawidSkene);
    assert_eq!(Method::MajorityVote.to_string(), "majority-vote");
}

#[test]
fn unanimous_votes_win_with_high_confidence() {
    for config in [ds(), mv()] {
        let items = items_of(&[
            &[("a", 1), ("b", 1), ("c", 1)],
            &[("a", 0), ("b", 0), ("c", 0)],
            &[("a", 2), ("b", 2), ("c", 2)],
        ]);
        let out = consolidate_single_label(3, &items, &WorkerPriors::empty(), &config);
        let labels: Vec<_> = out.items.iter().map(|e| e.label).collect();
        assert_eq!(labels, [Some(1), Some(0), Some(2)], "{config:?}");
        for (i, e) in out.items.iter().enumerate() {
            assert!(e.confidence > 0.8, "{config:?}: {e:?}");
            assert!((out.posterior(i).iter().sum::<f64>() - 1.0).abs() < 1e-9);
        }
    }
}

#[test]
fn a_worker_answering_an_item_twice_counts_once_with_their_last_answer() {
    // w1 answers "1" three times, then "0"; w2 and w3 answer "1": one vote each, w1's being "0".
    let repeated = items_of(&[&[
        ("w1", 1),
        ("w1", 1),
        ("w2", 1),
        ("w1", 1),
        ("w3", 1),
        ("w1", 0),
    ]]);
    let once = items_of(&[&[("w2", 1), ("w3", 1), ("w1", 0)]]);
    for config in [ds(), mv()] {
        let a = consolidate_single_label(2, &repeated, &WorkerPriors::empty(), &config);
        let b = consolidate_single_label(2, &once, &WorkerPriors::empty(), &config);
        assert_eq!(a, b);
    }
    // Three "1"s from one worker do not outvote two others.
    let stuffed = items_of(&[&[("w1", 1), ("w1", 1), ("w1", 1), ("w2", 0), ("w3", 0)]]);
    let out = consolidate_single_label(2, &stuffed, &WorkerPriors::empty(), &mv());
    assert_eq!(out.items[0].label, Some(0));
}

#[test]
fn exact_ties_go_to_the_lower_class_deterministically() {
    for config in [ds(), mv()] {
        let items = items_of(&[&[("a", 2), ("b", 1)], &[("a", 1), ("b", 2)]]);
        let first = consolidate_single_label(3, &items, &WorkerPriors::empty(), &config);
        for e in &first.items {
            assert_eq!(e.label, Some(1), "{config:?}: {e:?}");
        }
        let again = consolidate_single_label(3, &items, &WorkerPriors::empty(), &config);
        assert_eq!(first, again);
    }
}

#[test]
fn a_lone_vote_gets_its_workers_record_and_zero_only_from_a_stranger() {
    let items = items_of(&[&[("solo", 1)]]);
    let out = consolidate_single_label(2, &items, &WorkerPriors::empty(), &ds());
    assert_eq!(out.items[0].label, Some(1));
    assert_eq!(out.items[0].confidence, 0.0);
    assert!(
        out.stats.is_empty(),
        "a lone vote teaches nothing about its worker"
    );

    let mut history = WorkerStats::new();
    history.add_confusion("solo", 2, 0, 0, 45.0);
    history.add_confusion("solo", 2, 0, 1, 5.0);
    history.add_confusion("solo", 2, 1, 1, 45.0);
    history.add_confusion("solo", 2, 1, 0, 5.0);
    let priors = WorkerPriors::from_stats(&history);
    let out = consolidate_single_label(2, &items, &priors, &ds());
    assert_eq!(out.items[0].label, Some(1));
    assert!(out.items[0].confidence > 0.7, "{:?}", out.items[0]);

    // Known from this batch: "good" agrees with the majority on twelve items with other votes, so
    // their lone answer gets their record; "stranger" answers nothing else and gets 0.
    let mut votes: Vec<Vec<(&str, usize)>> = (0..12)
        .map(|i| vec![("good", i % 2), ("a", i % 2), ("b", i % 2)])
        .collect();
    votes.push(vec![("good", 1)]);
    votes.push(vec![("stranger", 1)]);
    let refs: Vec<&[(&str, usize)]> = votes.iter().map(Vec::as_slice).collect();
    let out = consolidate_single_label(2, &items_of(&refs), &WorkerPriors::empty(), &ds());
    assert_eq!(out.items[12].label, Some(1));
    assert!(
        out.items[12].confidence > 0.6 && out.items[12].confidence < 1.0,
        "{:?}",
        out.items[12]
    );
    assert_eq!(out.items[13].confidence, 0.0);
}

#[test]
fn empty_items_and_out_of_range_classes_do_not_panic() {
    let items = items_of(&[&[], &[("a", 7), ("b", 0), ("c", 0)], &[("a", 99)]]);
    let out = consolidate_single_label(2, &items, &WorkerPriors::empty(), &ds());
    assert_eq!(out.items[0].label, None);
    assert_eq!(out.items[0].confidence, 0.0);
    assert_eq!(out.items[1].label, Some(0));
    assert_eq!(out.items[2].label, None);
    let none = consolidate_single_label(0, &items, &WorkerPriors::empty(), &ds());
    assert!(none.items.iter().all(|e| e.label.is_none()));
    let one = consolidate_single_label(
        1,
        &items_of(&[&[("a", 0), ("b", 0)]]),
        &WorkerPriors::empty(),
        &ds(),
    );
    assert_eq!(one.items[0].label, Some(0));
    assert_eq!(one.items[0].confidence, 1.0);
}

#[test]
fn multi_label_is_per_class_and_handles_lone_workers() {
    let items = vec![
        MultiLabelItem {
            votes: vec![
                ("a", vec![0, 2]),
                ("b", vec![2, 0, 0]),
                ("c", vec![2, 9]),
                ("d", vec![0, 2]),
            ],
        },
        MultiLabelItem {
            votes: vec![("a", vec![]), ("b", vec![1]), ("c", vec![]), ("d", vec![])],
        },
        MultiLabelItem {
            votes: vec![("solo", vec![1, 2])],
        },
        MultiLabelItem { votes: vec![] },
    ];
    let out = consolidate_multi_label(3, &items, &WorkerPriors::empty(), &ds());
    assert_eq!(out.items[0].classes, [0, 2]);
    assert!(
        out.items[0]
            .confidences
            .iter()
            .all(|c| *c > 0.5 && *c <= 1.0)
    );
    assert!(out.items[1].classes.is_empty());
    assert_eq!(out.items[2].classes, [1, 2]);
    assert_eq!(out.items[2].confidences, [0.0, 0.0]);
    assert!(out.items[3].classes.is_empty());
    assert!(out.stats.multi_label.contains_key("a"));
    assert!(!out.stats.multi_label.contains_key("solo"));
}

#[test]
fn multi_label_beats_majority_vote_on_a_synthetic_crowd() {
    let set = synthetic::generate_multi_label(
        &SyntheticConfig {
            tasks: 1500,
            classes: 5,
            ..SyntheticConfig::default()
        },
        0.3,
    );
    let items: Vec<MultiLabelItem<'_>> = set
        .answers
        .iter()
        .map(|answers| MultiLabelItem {
            votes: answers
                .iter()
                .map(|(w, c)| (set.workers[*w].as_str(), c.clone()))
                .collect(),
        })
        .collect();
    let exact = |config: &ClassificationConfig| {
        let out = consolidate_multi_label(5, &items, &WorkerPriors::empty(), config);
        let hits = out
            .items
            .iter()
            .zip(&set.truth)
            .filter(|(e, truth)| {
                let want: Vec<usize> = (0..5).filter(|&c| truth[c]).collect();
                e.classes == want
            })
            .count();
        hits as f64 / set.truth.len() as f64
    };
    let (ours, majority) = (exact(&ds()), exact(&mv()));
    assert!(
        ours >= majority,
        "exact-set match DS {ours} < MV {majority}"
    );
}

/// What the engine must do on every real set in `data/crowd`, and where it measurably does not yet (the
/// misses, each held at its measured value as a regression guard): accuracy at least the plain vote's
/// (0.002 tolerance) and at least the best crowd-kit method's − 0.005 (`data/crowd/crowdkit.csv`); ECE at
/// most the bare vote share's. `(set, accuracy floor when a miss, ECE ceiling when a miss)`.
const REAL_SET_MISSES: [(&str, Option<f64>, Option<f64>); 10] = [
    // An asymmetric crowd (true "1" answered "0" 44 % of the time, object by object) that every
    // class-conditional model reads wrongly (crowd-kit's Dawid-Skene 0.802, ours 0.794): the structure
    // choice takes one-coin workers, above the vote, 0.002 short of crowd-kit's one-coin − 0.005.
    ("demartini2012_zencrowd", Some(0.854), None),
    // A crowd that answers "0" for 72 % of the votes where gold has 51 %: everything is over-confident.
    ("mozafari2012_bm", Some(0.698), Some(0.24)),
    ("rodrigues2013_polarity", None, None),
    // 0.0006 short of the best crowd-kit method (Wawa) − 0.005; above the vote, ECE under the vote share's.
    ("rodrigues2014_music", Some(0.79), None),
    ("snow2008_rte", None, None),
    ("snow2008_temp", None, None),
    // 300 objects, most of the 461 workers answer once or twice: five objects below the vote.
    ("venanzi2014_cf", Some(0.88), None),
    ("venanzi2015_wsamt", None, None),
    ("welinder2010_bluebirds", None, None),
    // 7 % of the unanimous objects are wrong against gold: a blind spot the whole crowd shares.
    ("zheng2017_dog", None, Some(0.105)),
];

/// With 50 audited objects (cross-validated: fit on 50, score on the rest) the target is ECE ≤ 0.05 on
/// every real set; where it is not met yet, the measured value. music: 700 objects over 10 classes;
/// wsamt: 250 scored objects, where binning noise alone is about 0.03; bluebirds: 58 scored objects.
const AUDITED_MISSES: [(&str, f64); 3] = [
    ("rodrigues2014_music", 0.051),
    ("venanzi2015_wsamt", 0.055),
    ("welinder2010_bluebirds", 0.085),
];

/// An audit of another job of the same kind (half the set, 50 audited) recalibrating a job (the other
/// half, scored whole): at most this ECE on every real set (measured 0.030–0.071) but the misses below.
const TRANSFERRED_AUDIT_CEILING: f64 = 0.075;

/// Where another job's audit misses [`TRANSFERRED_AUDIT_CEILING`], the measured value. zencrowd's halves
/// sit at the structure choice's threshold (one-coin workers lead by 0.3 to 3.5 standard errors), so in
/// 8 of the 10 splits the audited job and the recalibrated one chose different structures, and the map
/// fitted on one model's confidences meets the other's.
const TRANSFERRED_AUDIT_MISSES: [(&str, f64); 1] = [("demartini2012_zencrowd", 0.145)];

#[test]
fn real_sets_hold_against_the_vote_and_crowdkit() {
    use super::eval::{EvalSet, evaluate_set};
    let best: std::collections::HashMap<String, f64> =
        std::fs::read_to_string(format!("{CROWD_DIR}/crowdkit.csv"))
            .expect("data/crowd/crowdkit.csv")
            .lines()
            .skip(1)
            .filter_map(|line| {
                let mut cells = line.split(',');
                let name = cells.next()?.to_owned();
                let top = cells
                    .take(6)
                    .filter_map(|c| c.parse::<f64>().ok())
                    .fold(0.0, f64::max);
                Some((name, top))
            })
            .collect();
    for (name, accuracy_floor, ece_ceiling) in REAL_SET_MISSES {
        let set = EvalSet::load(std::path::Path::new(&format!("{CROWD_DIR}/{name}")))
            .unwrap_or_else(|e| panic!("{e}"));
        let report = evaluate_set(&set, &ds(), None);
        let (acc, ece) = (report.whole.accuracy, report.whole.ece);
        match accuracy_floor {
            Some(floor) => assert!(acc >= floor, "{name}: accuracy {acc:.4} < {floor}"),
            None => {
                assert!(
                    acc >= report.vote.accuracy - 0.002,
                    "{name}: accuracy {acc:.4} below the vote's {:.4}",
                    report.vote.accuracy
                );
                assert!(
                    acc >= best[name] - 0.005,
                    "{name}: accuracy {acc:.4} < best crowd-kit {}",
                    best[name]
                );
            }
        }
        match ece_ceiling {
            Some(ceiling) => assert!(ece <= ceiling, "{name}: ECE {ece:.4} > {ceiling}"),
            None => assert!(
                ece <= report.vote.ece,
                "{name}: ECE {ece:.4} above the vote share's {:.4}",
                report.vote.ece
            ),
        }
        let audited_ceiling = AUDITED_MISSES
            .iter()
            .find(|(miss, _)| *miss == name)
            .map_or(0.05, |(_, ceiling)| *ceiling);
        let audited = report.audited_ece.expect("enough gold for an audit");
        assert!(
            audited <= audited_ceiling,
            "{name}: ECE with 50 audited objects {audited:.4} > {audited_ceiling}"
        );
        // bluebirds' halves hold too few gold objects to score one after auditing the other.
        let transferred = super::eval::transferred_audit_ece(
            &set,
            &ds(),
            super::eval::AUDITED_OBJECTS,
            super::eval::TRANSFER_ROUNDS,
            0,
        );
        if let Some(transferred) = transferred {
            let ceiling = TRANSFERRED_AUDIT_MISSES
                .iter()
                .find(|(miss, _)| *miss == name)
                .map_or(TRANSFERRED_AUDIT_CEILING, |(_, ceiling)| *ceiling);
            assert!(
                transferred <= ceiling,
                "{name}: ECE with another job's audit {transferred:.4}"
            );
        }
    }
}

/// The structure choice takes one-coin workers where the own matrices read the crowd wrongly (zencrowd:
/// 6 points of accuracy and an ECE a third of what it was) and keeps the own matrices where they are
/// what beats the vote (bluebirds, 13 points above it; rte, polarity), and the evidence it rests on is
/// handed to the worker-quality document.
#[test]
fn the_structure_choice_takes_one_coin_workers_only_where_they_predict_clearly_better() {
    let fixed = ClassificationConfig {
        select_structure: false,
        ..ds()
    };
    let (table, gold) = load_real("demartini2012_zencrowd");
    let (chosen, chosen_ece) = evaluate(&table, &gold, &ds());
    let (own, own_ece) = evaluate(&table, &gold, &fixed);
    assert!(
        chosen >= own + 0.05,
        "zencrowd: {chosen:.4} against {own:.4}"
    );
    assert!(
        chosen_ece <= own_ece / 2.0,
        "zencrowd ECE: {chosen_ece:.4} against {own_ece:.4}"
    );
    let items = table.single_label_items();
    let outcome =
        consolidate_single_label(table.classes.len(), &items, &WorkerPriors::empty(), &ds());
    let evidence = outcome.stats.single_label_structure;
    assert!(evidence.favours_one_coin(), "{evidence:?}");
    for name in [
        "welinder2010_bluebirds",
        "snow2008_rte",
        "rodrigues2013_polarity",
    ] {
        let (table, gold) = load_real(name);
        assert_eq!(
            evaluate(&table, &gold, &ds()),
            evaluate(&table, &gold, &fixed),
            "{name}: the own matrices are kept"
        );
    }
}

#[test]
fn real_sets_confidence_calibration() {
    // The target is ECE <= 0.05 where the crowd's errors are not shared; dog's crowd shares a blind spot
    // (see REAL_SET_MISSES).
    for name in [
        "snow2008_temp",
        "snow2008_rte",
        "rodrigues2013_polarity",
        "venanzi2015_wsamt",
        "venanzi2014_cf",
    ] {
        let (table, gold) = load_real(name);
        let (_, ece) = evaluate(&table, &gold, &ds());
        assert!(ece <= 0.05, "{name}: ECE {ece:.4} > 0.05");
    }
    // A miss: 108 objects (one object moves the ECE by 0.009); 0.045 with the former skill pull of 4
    // pseudo-answers, which did worse on most other sets.
    let (table, gold) = load_real("welinder2010_bluebirds");
    let (_, ece) = evaluate(&table, &gold, &ds());
    assert!(ece <= 0.056, "welinder2010_bluebirds: ECE {ece:.4} > 0.056");
}

#[test]
fn synthetic_regimes_hold_against_the_vote() {
    use super::eval::{evaluate_set, regimes};
    // (regime, accuracy tolerance below the vote, ECE ceiling): measured misses are named.
    for regime in regimes() {
        let (tolerance, ceiling) = match regime.name {
            // Every worker shares one confusion the one-coin prior rows do not carry: 5 of 1,000.
            "shared-confusion" => (0.006, 0.05),
            // 300 hard objects: 3 objects below the vote.
            "small-300-hard" => (0.011, 0.05),
            "hard-sparse" => (0.002, 0.06),
            // A hundred objects: a few labels per bin.
            "tiny-100" => (0.002, 0.065),
            // Ten objects: one bin of ten labels decides the ECE.
            "tiny-10" => (0.002, 0.2),
            _ => (0.002, 0.05),
        };
        let report = evaluate_set(&regime.generate(), &ds(), None);
        assert!(
            report.whole.accuracy >= report.vote.accuracy - tolerance,
            "{}: accuracy {:.4} below the vote's {:.4}",
            regime.name,
            report.whole.accuracy,
            report.vote.accuracy
        );
        assert!(
            report.whole.ece <= ceiling,
            "{}: ECE {:.4} > {ceiling}",
            regime.name,
            report.whole.ece
        );
    }
}

#[test]
fn synthetic_crowd_is_accurate_and_calibrated() {
    for (tasks, overlap, classes, seed) in [(3000, 5, 4, 0), (2000, 5, 2, 3)] {
        let set = synthetic(tasks, overlap, classes, seed);
        let (acc, ece) = evaluate(&set.table, &set.gold(), &ds());
        let (majority, _) = evaluate(&set.table, &set.gold(), &mv());
        assert!(
            acc >= majority + 0.03,
            "seed {seed}: DS {acc:.4} vs MV {majority:.4}"
        );
        assert!(acc >= 0.9, "seed {seed}: DS accuracy {acc:.4}");
        assert!(ece <= 0.05, "seed {seed}: ECE {ece:.4}");
    }
}

/// A batch the size Ground Truth sends, from a crowd whose errors are independent: `n` objects, 5 of
/// `workers` workers each, every worker right with probability `accuracy` and otherwise choosing one of
/// the other classes at random.
fn independent_crowd(
    n: usize,
    workers: usize,
    accuracy: f64,
    seed: u64,
) -> (LabelTable, Vec<Option<usize>>) {
    crowd_of_accuracies(n, workers, (accuracy, accuracy), seed)
}

#[test]
fn independent_crowds_in_small_batches_are_not_made_under_confident() {
    // Regression: scoring held-out votes with the EM's lightly smoothed rows made every rare mistake look
    // impossible, fitted rho = 0.7 on such a batch and reported 0.95 for labels that are 99.5 % right.
    for (accuracy, seed) in [(0.88, 1), (0.75, 2)] {
        let (table, gold) = independent_crowd(1000, 50, accuracy, seed);
        let (_, ece) = evaluate(&table, &gold, &ds());
        let uncalibrated = ClassificationConfig {
            calibrate: false,
            ..ds()
        };
        let (_, plain) = evaluate(&table, &gold, &uncalibrated);
        assert!(
            ece <= plain.max(0.02) + 0.005,
            "accuracy {accuracy}: ECE {ece:.4}, without calibration {plain:.4}"
        );
    }
}

#[test]
fn hard_small_batches_are_not_over_confident() {
    // Regression: the confidence was EM's own posterior, scored with confusion rows fitted on the very
    // items scored; on these batches (workers right 40-75 % of the time, 1,000 objects) it said 0.98 for
    // labels right 88 % of the time: ECE 0.16 and 0.15. Held out of the model: 0.026 and 0.037.
    for seed in [11, 12] {
        let (table, gold) = crowd_of_accuracies(1000, 50, (0.4, 0.75), seed);
        let (acc, ece) = evaluate(&table, &gold, &ds());
        let (plain_acc, _) = evaluate(
            &table,
            &gold,
            &ClassificationConfig {
                calibrate: false,
                ..ds()
            },
        );
        assert_eq!(acc, plain_acc, "seed {seed}: the label must stay EM's");
        assert!(ece <= 0.05, "seed {seed}: ECE {ece:.4}");
    }
}

#[test]
fn sparse_workers_do_not_fall_below_majority_vote() {
    // ~15 answers per worker over 10 classes, as on the real Ground Truth job in anchors.md.
    let set = synthetic(1000, 3, 10, 1);
    let (acc, _) = evaluate(&set.table, &set.gold(), &ds());
    let (majority, _) = evaluate(&set.table, &set.gold(), &mv());
    assert!(acc >= majority, "DS {acc:.4} < MV {majority:.4}");
}

/// Splits a table's tasks into `n` consecutive batches of items (worker ids and classes shared).
fn batches(table: &LabelTable, n: usize) -> Vec<Vec<usize>> {
    let per = table.tasks.len().div_ceil(n);
    (0..n)
        .map(|b| (b * per..((b + 1) * per).min(table.tasks.len())).collect())
        .collect()
}

#[test]
fn priors_from_earlier_batches_help_and_redelivery_is_idempotent() {
    let set = synthetic(1500, 3, 4, 5);
    let items = set.table.single_label_items();
    let gold = set.gold();
    let k = set.table.classes.len();
    let mut doc = JobWorkerQuality::new();
    let mut with_history = vec![None; items.len()];
    let mut alone = vec![None; items.len()];
    for (b, batch) in batches(&set.table, 10).into_iter().enumerate() {
        let key = format!("batch-{b}");
        let batch_items: Vec<SingleLabelItem<'_>> =
            batch.iter().map(|&i| items[i].clone()).collect();
        let priors = doc.prior_excluding(&key);
        let out = consolidate_single_label(k, &batch_items, &priors, &ds());
        let isolated = consolidate_single_label(k, &batch_items, &WorkerPriors::empty(), &ds());
        for (pos, &i) in batch.iter().enumerate() {
            with_history[i] = out.items[pos].label;
            alone[i] = isolated.items[pos].label;
        }
        doc.record(&key, out.stats.clone());
        // Redelivery: the same prior, the same output, the same document.
        let snapshot = doc.clone();
        let again = consolidate_single_label(k, &batch_items, &doc.prior_excluding(&key), &ds());
        assert_eq!(again, out, "batch {b} redelivered");
        doc.record(&key, again.stats);
        assert_eq!(doc, snapshot);
    }
    let (with, without) = (accuracy(&with_history, &gold), accuracy(&alone, &gold));
    assert!(
        with >= without,
        "history {with:.4} < per-batch {without:.4}"
    );
    // The document survives a JSON round trip (counts are stored to 1e-4: the stored form is stable).
    let json = doc.to_json_vec().expect("json");
    let back = JobWorkerQuality::from_json_slice(&json).expect("parse");
    assert_eq!(back.to_json_vec().expect("json"), json);
    assert_eq!(back.batch_count(), doc.batch_count());
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    const WORKERS: [&str; 6] = ["w0", "w1", "w2", "w3", "w4", "w5"];

    fn arb_items() -> impl Strategy<Value = (usize, Vec<Vec<(usize, usize)>>)> {
        (1usize..5).prop_flat_map(|k| {
            let vote = (0..WORKERS.len(), 0..k + 1); // k itself is out of range on purpose
            (
                Just(k),
                prop::collection::vec(prop::collection::vec(vote, 0..5), 0..12),
            )
        })
    }

    /// Items with at most one answer per worker (a repeated worker's later answers dropped), so that
    /// reordering an item's answers is a pure permutation.
    fn to_items(raw: &[Vec<(usize, usize)>]) -> Vec<SingleLabelItem<'static>> {
        raw.iter()
            .map(|votes| {
                let mut seen = Vec::new();
                SingleLabelItem {
                    votes: votes
                        .iter()
                        .filter(|&&(w, _)| {
                            let new = !seen.contains(&w);
                            seen.push(w);
                            new
                        })
                        .map(|&(w, c)| (WORKERS[w], c))
                        .collect(),
                }
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn posteriors_are_distributions_and_order_does_not_matter((k, raw) in arb_items(), use_mv in any::<bool>()) {
            let config = if use_mv { mv() } else { ds() };
            let items = to_items(&raw);
            let out = consolidate_single_label(k, &items, &WorkerPriors::empty(), &config);
            prop_assert_eq!(out.items.len(), items.len());
            for (i, e) in out.items.iter().enumerate() {
                prop_assert!((out.posterior(i).iter().sum::<f64>() - 1.0).abs() < 1e-9);
                prop_assert!((0.0..=1.0).contains(&e.confidence));
                if let Some(l) = e.label { prop_assert!(l < k); }
            }
            // Reversing the worker order inside every item changes nothing at all.
            let flipped: Vec<SingleLabelItem<'_>> = items.iter()
                .map(|i| SingleLabelItem { votes: i.votes.iter().rev().copied().collect() })
                .collect();
            prop_assert_eq!(&consolidate_single_label(k, &flipped, &WorkerPriors::empty(), &config), &out);
            // Reversing the item order gives the same estimates, up to rounding.
            let reversed: Vec<SingleLabelItem<'_>> = items.iter().rev().cloned().collect();
            let back = consolidate_single_label(k, &reversed, &WorkerPriors::empty(), &config);
            for (i, (a, b)) in out.items.iter().zip(back.items.iter().rev()).enumerate() {
                let (pa, pb) = (out.posterior(i), back.posterior(items.len() - 1 - i));
                prop_assert!((a.confidence - b.confidence).abs() < 1e-6);
                for (x, y) in pa.iter().zip(pb) {
                    prop_assert!((x - y).abs() < 1e-6);
                }
                let near_tie = pa.iter().filter(|p| (**p - a.confidence).abs() < 1e-6).count() > 1;
                if !near_tie { prop_assert_eq!(a.label, b.label); }
            }
        }

        #[test]
        fn multi_label_never_panics((k, raw) in arb_items()) {
            let items: Vec<MultiLabelItem<'_>> = raw.iter()
                .map(|votes| MultiLabelItem { votes: votes.iter().map(|&(w, c)| (WORKERS[w], vec![c, c % k.max(1)])).collect() })
                .collect();
            let out = consolidate_multi_label(k, &items, &WorkerPriors::empty(), &ds());
            prop_assert_eq!(out.items.len(), items.len());
            for e in &out.items {
                prop_assert_eq!(e.classes.len(), e.confidences.len());
                prop_assert!(e.classes.windows(2).all(|w| w[0] < w[1]));
                prop_assert!(e.confidences.iter().all(|c| (0.0..=1.0).contains(c)));
                prop_assert!(e.presence.iter().all(|p| (0.0..=1.0).contains(p)));
            }
        }
    }
}

/// A crowd in one batch: `n` objects of 4 classes, 5 of `workers` workers each, every worker right with
/// their own probability drawn uniformly from `[low, high]` and otherwise choosing one of the other 3
/// classes at random. `(0.4, 0.75)` is the hard crowd the held-out confidence was measured on.
fn crowd_of_accuracies(
    n: usize,
    workers: usize,
    (low, high): (f64, f64),
    seed: u64,
) -> (LabelTable, Vec<Option<usize>>) {
    use rand::rngs::SmallRng;
    use rand::seq::IndexedRandom;
    use rand::{Rng, SeedableRng};
    let mut rng = SmallRng::seed_from_u64(seed);
    let pool: Vec<(String, f64)> = (0..workers)
        .map(|w| (format!("w{w}"), rng.random_range(low..=high)))
        .collect();
    let mut rows = Vec::new();
    let mut truth = Vec::new();
    for i in 0..n {
        let t = rng.random_range(0..4usize);
        truth.push((i.to_string(), t.to_string()));
        for (worker, accuracy) in pool.choose_multiple(&mut rng, 5) {
            let answer = if rng.random_bool(*accuracy) {
                t
            } else {
                (t + rng.random_range(1..4usize)) % 4
            };
            rows.push((i.to_string(), worker.clone(), answer.to_string()));
        }
    }
    let table = LabelTable::from_triples(
        rows.iter()
            .map(|(t, w, l)| (t.as_str(), w.as_str(), l.as_str())),
    );
    let gold = table.gold_classes(&truth);
    (table, gold)
}

/// Accuracy, ECE and how many labels differ from the uncalibrated EM's argmax, over every set at hand
/// (real, scratch, synthetic, generated hard batches). `cargo test --release -p groundwork calx -- --ignored --nocapture`
#[test]
#[ignore = "prints a report; run in release"]
fn calx() {
    let plain = ClassificationConfig {
        calibrate: false,
        ..ds()
    };
    let mut sets: Vec<(String, LabelTable, Vec<Option<usize>>)> = Vec::new();
    for name in REAL_SETS {
        let (t, g) = load_real(name);
        sets.push((name.to_owned(), t, g));
    }
    let load = |labels: &str, gold: &str| load_csv(labels, gold).ok();
    let home = std::env::var("HOME").unwrap_or_default();
    if let Some((t, g)) = load(
        &format!("{home}/.cache/groundwork-bench/synth-10000/labels.csv"),
        &format!("{home}/.cache/groundwork-bench/synth-10000/gold.csv"),
    ) {
        sets.push(("synth-10000".to_owned(), t, g));
    }
    for name in [
        "hard1000", "det1000", "det10000", "rnd1000", "rnd10000", "mid300", "mid1000", "mid5000",
        "bin1000", "k50",
    ] {
        if let Some((t, g)) = load(
            &format!("/tmp/calx/{name}-labels.csv"),
            &format!("/tmp/calx/{name}-gold.csv"),
        ) {
            sets.push((name.to_owned(), t, g));
        }
    }
    for (tasks, overlap, classes, seed) in [(2000, 3, 10, 1), (1000, 3, 4, 2), (5000, 5, 2, 3)] {
        let set = synthetic(tasks, overlap, classes, seed);
        let gold = set.gold();
        sets.push((
            format!("gen t{tasks} o{overlap} k{classes}"),
            set.table,
            gold,
        ));
    }
    for (n, seed) in [(1000, 11), (1000, 12), (300, 13), (5000, 14)] {
        let (t, g) = crowd_of_accuracies(n, 50, (0.4, 0.75), seed);
        sets.push((format!("hard n{n} s{seed}"), t, g));
    }
    for (n, seed) in [(1000, 1), (1000, 2)] {
        let (t, g) = independent_crowd(n, 50, [0.88, 0.75][seed as usize - 1], seed);
        sets.push((format!("indep n{n} s{seed}"), t, g));
    }
    let filter = std::env::var("GW_SETS").unwrap_or_default();
    for (name, table, gold) in &sets {
        if !filter.is_empty() && !filter.split(',').any(|f| name.contains(f)) {
            continue;
        }
        let items = table.single_label_items();
        let k = table.classes.len();
        let repeat: usize = std::env::var("GW_TIME")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let mut dt = std::time::Duration::MAX;
        let mut out = None;
        for _ in 0..repeat.max(1) {
            let t0 = std::time::Instant::now();
            out = Some(consolidate_single_label(
                k,
                &items,
                &WorkerPriors::empty(),
                &ds(),
            ));
            dt = dt.min(t0.elapsed());
        }
        let out = out.expect("ran");
        let base = consolidate_single_label(k, &items, &WorkerPriors::empty(), &plain);
        let predicted: Vec<Option<usize>> = out.items.iter().map(|e| e.label).collect();
        let confidence: Vec<f64> = out.items.iter().map(|e| e.confidence).collect();
        let changed = out
            .items
            .iter()
            .zip(&base.items)
            .filter(|(a, b)| a.label != b.label)
            .count();
        if let Ok(path) = std::env::var("GW_DUMP") {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(path)
                .expect("dump");
            for ((c, p), g) in confidence.iter().zip(&predicted).zip(gold) {
                if let Some(g) = g {
                    writeln!(f, "{name},{c},{}", u8::from(*p == Some(*g))).expect("dump");
                }
            }
        }
        if std::env::var("GW_DEBUG").is_ok() {
            print_reliability_bins(&confidence, &predicted, gold);
        }
        println!(
            "{name:24} acc {:.4} ece {:.4} changed {changed} ({:.3} ms)",
            accuracy(&predicted, gold),
            expected_calibration_error(&confidence, &predicted, gold, 10),
            dt.as_secs_f64() * 1e3
        );
    }
    // Jobs in batches of 1,000 objects with the workers' history carried between batches (priors).
    for (name, table, gold) in &sets {
        let per = 1000;
        if table.tasks.len() < 2 * per
            || (!filter.is_empty() && !filter.split(',').any(|f| name.contains(f)))
        {
            continue;
        }
        let items = table.single_label_items();
        let k = table.classes.len();
        let mut doc = JobWorkerQuality::new();
        let mut predicted = vec![None; items.len()];
        let mut confidence = vec![0.0; items.len()];
        for (b, batch) in batches(table, table.tasks.len().div_ceil(per))
            .into_iter()
            .enumerate()
        {
            let key = format!("batch-{b}");
            let batch_items: Vec<SingleLabelItem<'_>> =
                batch.iter().map(|&i| items[i].clone()).collect();
            let out = consolidate_single_label(k, &batch_items, &doc.prior_excluding(&key), &ds());
            for (pos, &i) in batch.iter().enumerate() {
                predicted[i] = out.items[pos].label;
                confidence[i] = out.items[pos].confidence;
            }
            doc.record(&key, out.stats);
        }
        println!(
            "{:24} acc {:.4} ece {:.4} (batches of {per}, with priors)",
            format!("{name} batched"),
            accuracy(&predicted, gold),
            expected_calibration_error(&confidence, &predicted, gold, 10),
        );
    }
}

#[test]
fn too_many_classes_for_a_worker_model_fall_back_to_a_plain_vote() {
    // 9,000 classes over three workers would be 243 million confusion cells.
    let items = items_of(&[
        &[("a", 7), ("b", 7), ("c", 8_999)],
        &[("a", 3), ("b", 4)],
        &[("a", 5)],
        &[("a", 2), ("b", 1), ("b", 6), ("c", 6)],
    ]);
    let outcome = consolidate_single_label(9_000, &items, &WorkerPriors::empty(), &ds());
    assert!(outcome.plain_vote);
    assert!(outcome.stats.is_empty(), "no worker model, nothing to keep");
    let got: Vec<(Option<usize>, f64)> = outcome
        .items
        .iter()
        .map(|e| (e.label, (e.confidence * 1000.0).round() / 1000.0))
        .collect();
    // b's last answer counts; ties go to the lower class; one vote has confidence 0.
    assert_eq!(
        got,
        [
            (Some(7), 0.667),
            (Some(3), 0.5),
            (Some(5), 0.0),
            (Some(6), 0.667)
        ]
    );
    assert!(outcome.posterior(0).is_empty());

    // Under the bound, the same items get the model.
    let roomy = ClassificationConfig {
        max_model_cells: usize::MAX,
        ..ds()
    };
    let small = items_of(&[&[("a", 1), ("b", 1)], &[("a", 0), ("b", 0)]]);
    assert!(!consolidate_single_label(2, &small, &WorkerPriors::empty(), &roomy).plain_vote);
    let tight = ClassificationConfig {
        max_model_cells: 7,
        ..ds()
    };
    assert!(consolidate_single_label(2, &small, &WorkerPriors::empty(), &tight).plain_vote);

    let multi = vec![
        MultiLabelItem {
            votes: vec![("a", vec![1, 5, 5]), ("b", vec![5]), ("c", vec![2, 5])],
        },
        MultiLabelItem {
            votes: vec![("a", vec![4])],
        },
    ];
    let outcome = consolidate_multi_label(1_000_000, &multi, &WorkerPriors::empty(), &ds());
    assert!(outcome.plain_vote);
    assert_eq!(outcome.items[0].classes, [5]);
    assert_eq!(outcome.items[0].confidences, [1.0]);
    assert_eq!(outcome.items[1].classes, [4]);
    assert_eq!(outcome.items[1].confidences, [0.0]);
    assert!(outcome.items[0].presence.is_empty());
}

/// The table path is the item path without the per-task vote lists: the same estimates, posteriors and
/// worker statistics, bit for bit, on every real set (zencrowd has repeated answers), with the plain-vote
/// fallback, and on a table whose workers are not in sorted order.
#[test]
fn the_label_table_path_gives_what_the_item_path_gives() {
    let names = std::fs::read_dir(CROWD_DIR)
        .expect("data/crowd")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("labels.csv").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    assert!(names.len() >= 10, "{names:?}");
    let shuffled = LabelTable::from_triples([
        ("t2", "zed", "b"),
        ("t1", "amy", "a"),
        ("t1", "zed", "b"),
        ("t1", "amy", "b"),
        ("t2", "bob", "b"),
        ("t3", "bob", "a"),
    ]);
    let mut tables: Vec<LabelTable> = names.iter().map(|n| load_real(n).0).collect();
    tables.push(shuffled);
    for table in &tables {
        for config in [
            ClassificationConfig::default(),
            ClassificationConfig {
                max_model_cells: 1,
                ..ClassificationConfig::default()
            },
        ] {
            let items = table.single_label_items();
            let by_items = consolidate_single_label(
                table.classes.len(),
                &items,
                &WorkerPriors::empty(),
                &config,
            );
            let by_table = consolidate_label_table(table, &WorkerPriors::empty(), &config);
            assert_eq!(by_items, by_table, "{} tasks", table.tasks.len());
        }
    }
}
