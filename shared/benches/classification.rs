//! Criterion bench of the classification truth inference on synthetic crowds of 50k and 500k labels
//! (the bench generator's shape: 200 workers, 5 per task, 4 classes), against crowd-kit's DawidSkene
//! (1.58 s for 50k labels, ~18 s for 500k on a 2-core machine). Kept short: the machine is shared.
//!
//! `cargo bench -p groundwork --bench classification`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use groundwork::consolidate::classification::synthetic::{SyntheticConfig, generate};
use groundwork::consolidate::classification::{
    ClassificationConfig, Method, accuracy, consolidate_single_label,
};
use groundwork::consolidate::worker_quality::WorkerPriors;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("classification");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    for tasks in [10_000, 100_000] {
        let set = generate(&SyntheticConfig {
            tasks,
            ..SyntheticConfig::default()
        });
        let items = set.table.single_label_items();
        let labels = set.table.rows.len();
        for method in [Method::DawidSkene, Method::MajorityVote] {
            let config = ClassificationConfig {
                method,
                ..ClassificationConfig::default()
            };
            let outcome = consolidate_single_label(4, &items, &WorkerPriors::empty(), &config);
            let predicted: Vec<Option<usize>> = outcome.items.iter().map(|e| e.label).collect();
            eprintln!(
                "{method} on {labels} labels: accuracy {:.4}",
                accuracy(&predicted, &set.gold())
            );
            group.bench_function(format!("{method}/{labels}_labels"), |b| {
                b.iter(|| {
                    consolidate_single_label(4, black_box(&items), &WorkerPriors::empty(), &config)
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
