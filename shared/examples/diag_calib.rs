//! Throwaway diagnostic (not committed).
use groundwork::consolidate::classification::consolidate_single_label;
use groundwork::consolidate::classification::eval::{
    EvalSet, engine_config, plurality_vote, set_dirs,
};
use groundwork::consolidate::worker_quality::WorkerPriors;
use std::path::Path;

fn main() {
    let per: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let root = Path::new("data/crowd");
    for dir in set_dirs(root).unwrap() {
        let mut set = EvalSet::load(&dir).unwrap();
        if per > 0 {
            set = set.subsample(per, 0);
        }
        let k = set.table.classes.len();
        let items = set.table.single_label_items();
        let out = consolidate_single_label(k, &items, &WorkerPriors::empty(), &engine_config());
        let (vl, vs) = plurality_vote(k, &items);
        // groups: unanimous / split, agree with vote / not
        let mut g = [[0f64; 3]; 4]; // n, conf sum, right
        let mut bins = [[0f64; 3]; 10];
        for (i, gold) in set.gold.iter().enumerate() {
            let Some(gold) = *gold else { continue };
            let e = &out.items[i];
            let right = (e.label == Some(gold)) as u8 as f64;
            let unanimous = vs[i] >= 0.999;
            let agree = e.label == vl[i];
            let idx = (unanimous as usize) * 2 + agree as usize;
            g[idx][0] += 1.0;
            g[idx][1] += e.confidence;
            g[idx][2] += right;
            let b = ((e.confidence * 10.0) as usize).min(9);
            bins[b][0] += 1.0;
            bins[b][1] += e.confidence;
            bins[b][2] += right;
        }
        println!("{}", set.name);
        for (idx, name) in [
            "split,disagree",
            "split,agree",
            "unan,disagree",
            "unan,agree",
        ]
        .iter()
        .enumerate()
        {
            let x = g[idx];
            if x[0] == 0.0 {
                continue;
            }
            println!(
                "  {name:16} n {:5} conf {:.3} acc {:.3}",
                x[0],
                x[1] / x[0],
                x[2] / x[0]
            );
        }
        let line: Vec<String> = bins
            .iter()
            .enumerate()
            .filter(|(_, b)| b[0] > 0.0)
            .map(|(i, b)| format!("{i}:{}/{:.2}/{:.2}", b[0], b[1] / b[0], b[2] / b[0]))
            .collect();
        println!("  bins {}", line.join(" "));
    }
}
