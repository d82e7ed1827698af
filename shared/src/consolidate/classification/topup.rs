//! Adaptive redundancy replayed offline: ask for more answers only where the label is still uncertain.
//!
//! Ground Truth asks the same number of workers about every object. A top-up policy asks a few first
//! and then, round by round, more answers only for the objects whose consolidated confidence is still
//! below a target, until the target, the object's answer budget or the rounds run out. On a crowd set
//! with every answer known, the policy can be replayed: each object's answers are revealed in a fixed
//! random order (one order per seed), every round consolidates all the answers revealed so far (worker
//! quality is learnt from all objects at once, as the rounds of one job share it), and the final labels
//! are scored against gold.
//!
//! Two stopping rules are compared on the same reveal orders, with the same final consolidation:
//! [`StopRule::Confidence`], the engine's calibrated confidence, and [`StopRule::WeightedVoteShare`],
//! the rule of Toloka's dynamic overlap and Appen's dynamic judgments: stop when the leading label's
//! share of the quality-weighted vote reaches the target (each worker weighted by how often they agree
//! with the other answers on their objects, at least two answers before stopping).

use super::eval::EvalSet;
use super::synthetic::SmallRng;
use super::{ClassificationConfig, SingleLabelItem, consolidate_single_label};
use crate::consolidate::worker_quality::WorkerPriors;

/// When an object has enough answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StopRule {
    /// The engine's confidence in its label has reached the target.
    Confidence(f64),
    /// The leading label's share of the quality-weighted vote has reached the target (Toloka-style).
    WeightedVoteShare(f64),
}

/// How the rounds ask for answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rounds {
    /// Answers per object asked in each round; the last entry repeats until `max_answers`.
    pub answers_per_round: Vec<usize>,
    /// Most answers one object may cost.
    pub max_answers: usize,
}

impl Default for Rounds {
    fn default() -> Self {
        Self {
            answers_per_round: vec![2, 1],
            max_answers: usize::MAX,
        }
    }
}

/// What a replay cost and gave.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReplayOutcome {
    /// Mean answers per object spent.
    pub mean_answers: f64,
    /// Accuracy of the final labels on the gold objects.
    pub accuracy: f64,
    /// How many rounds ran.
    pub rounds: usize,
}

/// Each object's answers in the reveal order of `seed` (one answer per worker: their last).
fn reveal_orders<'a>(items: &[SingleLabelItem<'a>], seed: u64) -> Vec<Vec<(&'a str, usize)>> {
    let mut rng = SmallRng::seed_from_u64(seed);
    items
        .iter()
        .map(|item| {
            let mut votes: Vec<(&str, usize)> = Vec::with_capacity(item.votes.len());
            for &(worker, class) in item.votes.iter().rev() {
                if !votes.iter().any(|(w, _)| *w == worker) {
                    votes.push((worker, class));
                }
            }
            for i in (1..votes.len()).rev() {
                let j = (rng.next_u64() % (i as u64 + 1)) as usize;
                votes.swap(i, j);
            }
            votes
        })
        .collect()
}

/// The leading label's share of the quality-weighted vote, per object: each worker weighted by their
/// smoothed rate of agreeing with the plurality of the other revealed answers on their objects.
fn weighted_vote_shares(k: usize, items: &[SingleLabelItem<'_>]) -> Vec<f64> {
    use std::collections::HashMap;
    let mut agreement: HashMap<&str, (f64, f64)> = HashMap::new();
    let mut tally = vec![0usize; k];
    for item in items {
        tally.iter_mut().for_each(|t| *t = 0);
        for &(_, c) in &item.votes {
            tally[c] += 1;
        }
        for &(worker, c) in &item.votes {
            tally[c] -= 1;
            let best = tally.iter().copied().max().unwrap_or(0);
            if best > 0 {
                let entry = agreement.entry(worker).or_insert((0.0, 0.0));
                let winners = tally.iter().filter(|&&t| t == best).count() as f64;
                if tally[c] == best {
                    entry.0 += 1.0 / winners;
                }
                entry.1 += 1.0;
            }
            tally[c] += 1;
        }
    }
    let mut weights = vec![0.0; k];
    items
        .iter()
        .map(|item| {
            weights.iter_mut().for_each(|w| *w = 0.0);
            for &(worker, c) in &item.votes {
                let (agreed, judged) = agreement.get(worker).copied().unwrap_or((0.0, 0.0));
                // Smoothed towards 0.7 with two pseudo-answers, as a new worker is neither good nor bad.
                weights[c] += (agreed + 1.4) / (judged + 2.0);
            }
            let total: f64 = weights.iter().sum();
            let top = weights.iter().copied().fold(0.0, f64::max);
            if item.votes.len() < 2 || total <= 0.0 {
                0.0
            } else {
                top / total
            }
        })
        .collect()
}

/// Replays a top-up policy on a crowd set (see the module docs).
pub fn replay(
    set: &EvalSet,
    rounds: &Rounds,
    rule: StopRule,
    seed: u64,
    config: &ClassificationConfig,
) -> ReplayOutcome {
    let k = set.table.classes.len();
    let all = set.table.single_label_items();
    let orders = reveal_orders(&all, seed);
    let n = orders.len();
    let mut revealed = vec![0usize; n];
    let mut active = vec![true; n];
    let mut round = 0;
    let mut outcome = None;
    let budget = |i: usize| orders[i].len().min(rounds.max_answers);
    while active.iter().any(|&a| a) {
        let ask = rounds
            .answers_per_round
            .get(round)
            .or(rounds.answers_per_round.last())
            .copied()
            .unwrap_or(1)
            .max(1);
        for i in 0..n {
            if active[i] {
                revealed[i] = (revealed[i] + ask).min(budget(i));
            }
        }
        round += 1;
        let items: Vec<SingleLabelItem<'_>> = orders
            .iter()
            .zip(&revealed)
            .map(|(order, &r)| SingleLabelItem {
                votes: order[..r].to_vec(),
            })
            .collect();
        let consolidated = consolidate_single_label(k, &items, &WorkerPriors::empty(), config);
        let scores: Vec<f64> = match rule {
            StopRule::Confidence(_) => consolidated.items.iter().map(|e| e.confidence).collect(),
            StopRule::WeightedVoteShare(_) => weighted_vote_shares(k, &items),
        };
        let target = match rule {
            StopRule::Confidence(t) | StopRule::WeightedVoteShare(t) => t,
        };
        for i in 0..n {
            if active[i] && (scores[i] >= target || revealed[i] >= budget(i)) {
                active[i] = false;
            }
        }
        outcome = Some(consolidated);
    }
    let Some(consolidated) = outcome else {
        return ReplayOutcome::default();
    };
    let mut right = 0usize;
    let mut judged = 0usize;
    for (estimate, gold) in consolidated.items.iter().zip(&set.gold) {
        if let Some(g) = gold {
            judged += 1;
            right += usize::from(estimate.label == Some(*g));
        }
    }
    ReplayOutcome {
        mean_answers: revealed.iter().sum::<usize>() as f64 / n.max(1) as f64,
        accuracy: right as f64 / judged.max(1) as f64,
        rounds: round,
    }
}

/// The mean of [`replay`] over `orders` reveal orders (seeds `0..orders`).
pub fn replay_mean(
    set: &EvalSet,
    rounds: &Rounds,
    rule: StopRule,
    orders: u64,
    config: &ClassificationConfig,
) -> ReplayOutcome {
    let runs: Vec<ReplayOutcome> = (0..orders.max(1))
        .map(|seed| replay(set, rounds, rule, seed, config))
        .collect();
    let m = runs.len() as f64;
    ReplayOutcome {
        mean_answers: runs.iter().map(|r| r.mean_answers).sum::<f64>() / m,
        accuracy: runs.iter().map(|r| r.accuracy).sum::<f64>() / m,
        rounds: runs.iter().map(|r| r.rounds).max().unwrap_or(0),
    }
}

/// Accuracy of a curve (points sorted by answers) at `answers`, by linear interpolation; `None`
/// outside the curve.
pub fn accuracy_at(curve: &[ReplayOutcome], answers: f64) -> Option<f64> {
    let mut points: Vec<&ReplayOutcome> = curve.iter().collect();
    points.sort_by(|a, b| a.mean_answers.total_cmp(&b.mean_answers));
    points.windows(2).find_map(|w| {
        let (a, b) = (w[0], w[1]);
        (a.mean_answers <= answers && answers <= b.mean_answers).then(|| {
            let span = b.mean_answers - a.mean_answers;
            if span <= 0.0 {
                a.accuracy.max(b.accuracy)
            } else {
                a.accuracy + (b.accuracy - a.accuracy) * (answers - a.mean_answers) / span
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consolidate::classification::eval::Regime;

    fn easy_and_hard() -> EvalSet {
        Regime {
            name: "t",
            tasks: 400,
            classes: 2,
            workers: 30,
            overlap: 9,
            accuracy: (0.65, 0.9),
            shared_confusion: None,
            seed: 5,
        }
        .generate()
    }

    #[test]
    fn a_reachable_target_saves_answers_and_an_unreachable_one_spends_them_all() {
        let set = easy_and_hard();
        let config = ClassificationConfig::default();
        let rounds = Rounds::default();
        let saving = replay(&set, &rounds, StopRule::Confidence(0.95), 1, &config);
        let all = replay(&set, &rounds, StopRule::Confidence(1.1), 1, &config);
        assert_eq!(all.mean_answers, 9.0, "every answer revealed");
        assert!(
            saving.mean_answers < 0.7 * all.mean_answers,
            "{saving:?} against {all:?}"
        );
        assert!(
            saving.accuracy >= all.accuracy - 0.02,
            "{saving:?} against {all:?}"
        );
        // The same seed reveals the same answers.
        assert_eq!(
            replay(&set, &rounds, StopRule::Confidence(0.95), 1, &config),
            saving
        );
    }

    #[test]
    fn the_budget_caps_what_an_object_costs() {
        let set = easy_and_hard();
        let rounds = Rounds {
            answers_per_round: vec![3, 2],
            max_answers: 5,
        };
        let out = replay(
            &set,
            &rounds,
            StopRule::WeightedVoteShare(1.1),
            0,
            &ClassificationConfig::default(),
        );
        assert_eq!(out.mean_answers, 5.0);
        assert_eq!(out.rounds, 2);
    }

    #[test]
    fn weighted_vote_share_needs_two_answers_and_weighs_agreeing_workers() {
        let items = vec![
            SingleLabelItem {
                votes: vec![("a", 0)],
            },
            SingleLabelItem {
                votes: vec![("a", 0), ("b", 0), ("c", 1)],
            },
            SingleLabelItem {
                votes: vec![("a", 1), ("b", 1), ("c", 0)],
            },
        ];
        let shares = weighted_vote_shares(2, &items);
        assert_eq!(shares[0], 0.0);
        assert!(shares[1] > 0.5 && shares[1] < 1.0);
    }

    #[test]
    fn accuracy_is_interpolated_between_points() {
        let curve = [
            ReplayOutcome {
                mean_answers: 2.0,
                accuracy: 0.8,
                rounds: 1,
            },
            ReplayOutcome {
                mean_answers: 4.0,
                accuracy: 0.9,
                rounds: 3,
            },
        ];
        let mid = accuracy_at(&curve, 3.0).expect("inside the curve");
        assert!((mid - 0.85).abs() < 1e-12);
        assert_eq!(accuracy_at(&curve, 5.0), None);
    }
}
