//! The per-pixel vote engine behind [`super`](crate::consolidate::segmentation): workers' class masks are
//! folded into a per-pixel *answer pattern* (which class each worker gave that pixel), every worker's
//! accuracy on this image is learned by EM on the pattern histogram, and a contested pixel is then decided
//! with its neighbours' help.
//!
//! ## Why patterns
//! Under a per-pixel model a pixel's posterior depends only on the tuple of the workers' answers there. An
//! image has millions of pixels but only a handful of distinct tuples (2⁵ = 32 at most for five workers and
//! two classes), so EM runs on a histogram of tuples, not on pixels: its cost does not depend on the image
//! size. The per-pixel state is one pattern id (2 bytes when `classes^workers` ≤ 65,536, else 4 bytes,
//! interned), built by folding each worker's mask in and dropping it: memory stays proportional to one
//! image whatever the number of workers. When all masks are at hand anyway (`patterns_of_masks`), the ids
//! are built block by block from every mask at once and counted in the same pass.
//!
//! ## Model: one coin per worker and image, on the painted region
//! Each worker has one accuracy per image, the probability of giving a pixel its true class, measured only
//! on the *painted region* (pixels some worker gave a class other than background): everywhere else every
//! worker agrees and would flatter everyone alike. The posterior of a pattern is the one-coin likelihood
//! `Π accuracy` / `Π (1 - accuracy) / (classes - 1)` under a uniform class prior. EM alternates (starting
//! from the reliability-weighted vote): decide every pattern, measure each worker's accuracy against the
//! decided mask (plus `prior_strength` pseudo-pixels at its learned reliability), recompute the
//! posteriors; until the accuracies settle. This is the model of crowd-kit's `SegmentationEM` (Lee et al.
//! 2018), multi-class, in its "hard" (classification EM) form, which scored higher than soft credits on
//! the crowd-kit benchmark masks (0.859 against 0.845 mean IoU). A confusion matrix per worker
//! (Dawid-Skene, STAPLE) fits five workers' masks of one image *too* well and came out below plain majority
//! vote on those masks (0.83–0.84 against 0.844 mean IoU), so it is not used.
//!
//! ## Decision: IoU-optimal threshold
//! Scores are IoUs, not pixel accuracies. Including a pixel whose posterior for class `k` is `π` raises
//! the expected IoU of `k` when `π > IoU / (1 + IoU)` (the plug-in rule for F-measures, F = 2·IoU / (1 +
//! IoU)): about 0.45 at the IoUs crowds reach, not 0.5. So a pixel gets the foreground class with the
//! highest posterior if that posterior reaches `foreground_threshold`, else background.
//!
//! ## Cleaning
//! A contested pixel (workers disagree there) is decided on its posterior summed over its 3×3 neighbourhood,
//! its own counting `CENTRE_WEIGHT` times a neighbour's. Isolated specks vanish; a one-pixel line most
//! workers drew survives (two neighbours along the line are enough). Pixels every worker agrees on are
//! never changed.

use std::collections::HashMap;

/// Weight of a pixel's own posterior in the 3×3 smoothing, against 1 for each neighbour.
pub(crate) const CENTRE_WEIGHT: f64 = 8.0;

/// The posteriors behind the image confidence are flattened by this temperature (`p^(1/1.7)`,
/// renormalised): the model counts neighbouring pixels' votes as independent evidence while a worker's
/// errors come in contiguous bands, so its posteriors are overconfident (mean confidence 0.97 against a
/// mean IoU of 0.86 on the crowd-kit benchmark masks). Tempered, the mean confidence is 0.89 there and
/// 0.78 against 0.83 on the tests' three-class crowd: calibrated to within 0.05–0.07 on both, not better.
pub(crate) const CONFIDENCE_TEMPERATURE: f64 = 1.7;

/// Workers' masks folded into per-pixel answer patterns.
#[derive(Debug)]
pub(crate) struct PatternAccumulator {
    classes: usize,
    workers_expected: usize,
    pixels: usize,
    ids: PatternIds,
    /// Workers folded in so far.
    added: usize,
}

#[derive(Debug)]
enum PatternIds {
    /// `id = Σ class_w · classes^w`, when every possible pattern fits in a `u16`.
    Radix(Vec<u16>),
    /// Ids handed out as new patterns appear; `patterns[id]` lists the classes so far.
    Interned {
        ids: Vec<u32>,
        patterns: Vec<Vec<u8>>,
    },
}

/// Distinct patterns of an image, with their pixel counts.
#[derive(Debug)]
pub(crate) struct PatternTable {
    /// Workers per pattern (the stride of `answers`).
    pub(crate) workers: usize,
    /// Classes (compact indices).
    pub(crate) classes: usize,
    /// `answers[p * workers + w]`: class worker `w` gave in pattern `p`.
    pub(crate) answers: Vec<u8>,
    /// Pixels per pattern.
    pub(crate) counts: Vec<u64>,
}

/// Distinct patterns of an image, with their pixel counts, and each pixel's pattern index.
#[derive(Debug)]
pub(crate) struct Patterns {
    /// The distinct patterns.
    pub(crate) table: PatternTable,
    /// Per pixel: its id (a radix code or an interned id).
    pub(crate) pixel_ids: PixelIds,
    /// Id → pattern index (radix codes are sparse; interned ids are the pattern indices already).
    pub(crate) id_to_pattern: Vec<u32>,
}

/// Per-pixel pattern ids, in the narrowest type that holds them.
#[derive(Debug)]
pub(crate) enum PixelIds {
    /// Radix codes, or up to 65,536 interned patterns.
    Narrow(Vec<u16>),
    /// More interned patterns.
    Wide(Vec<u32>),
}

impl Patterns {
    /// The pattern index of a pixel.
    #[inline]
    pub(crate) fn pattern_of(&self, pixel: usize) -> usize {
        let id = match &self.pixel_ids {
            PixelIds::Narrow(ids) => usize::from(ids[pixel]),
            PixelIds::Wide(ids) => ids[pixel] as usize,
        };
        self.id_to_pattern.get(id).map_or(0, |&p| p as usize)
    }
}

impl PatternAccumulator {
    /// An empty accumulator for `pixels` pixels, `classes` compact classes (≤ 256) and at most
    /// `workers_expected` workers.
    pub(crate) fn new(pixels: usize, classes: usize, workers_expected: usize) -> Self {
        let classes = classes.clamp(1, 256);
        let ids = if radix_space(classes, workers_expected).is_some() {
            // Filled by the first worker's mask (no zeroing pass).
            PatternIds::Radix(Vec::new())
        } else {
            PatternIds::Interned {
                ids: vec![0; pixels],
                patterns: vec![Vec::new()],
            }
        };
        Self {
            classes,
            workers_expected,
            pixels,
            ids,
            added: 0,
        }
    }

    /// Folds in the next worker's mask: one compact class per pixel, row-major, `pixels` long. Classes at
    /// or above `classes` count as class 0. Returns `false` (and changes nothing) when the mask has the
    /// wrong length or all expected workers are in.
    pub(crate) fn add(&mut self, mask: &[u8]) -> bool {
        if mask.len() != self.pixels || self.added >= self.workers_expected {
            return false;
        }
        let classes = self.classes;
        match &mut self.ids {
            PatternIds::Radix(ids) if self.added == 0 => {
                let mut lookup = [0u16; 256];
                for (class, entry) in lookup.iter_mut().enumerate().take(classes) {
                    *entry = class as u16;
                }
                ids.clear();
                ids.extend(mask.iter().map(|&class| lookup[usize::from(class)]));
            }
            PatternIds::Radix(ids) => {
                let multiplier = u16::try_from(classes.pow(self.added as u32)).unwrap_or(0);
                if classes == 2 {
                    // The common binary case: no range check needed beyond the low bit.
                    for (id, &class) in ids.iter_mut().zip(mask) {
                        *id = id.wrapping_add(u16::from(class == 1).wrapping_mul(multiplier));
                    }
                } else {
                    let mut lookup = [0u16; 256];
                    for (class, entry) in lookup.iter_mut().enumerate().take(classes) {
                        *entry = (class as u16).wrapping_mul(multiplier);
                    }
                    for (id, &class) in ids.iter_mut().zip(mask) {
                        *id = id.wrapping_add(lookup[usize::from(class)]);
                    }
                }
            }
            PatternIds::Interned { ids, patterns } => {
                // (old id, class) → new id; consecutive pixels mostly repeat the previous pair.
                let mut next: HashMap<(u32, u8), u32> = HashMap::new();
                let mut new_patterns: Vec<Vec<u8>> = Vec::new();
                let mut last: Option<((u32, u8), u32)> = None;
                for (id, &class) in ids.iter_mut().zip(mask) {
                    let class = if usize::from(class) < classes {
                        class
                    } else {
                        0
                    };
                    let key = (*id, class);
                    let new_id = match last {
                        Some((last_key, last_id)) if last_key == key => last_id,
                        _ => {
                            let fresh = u32::try_from(new_patterns.len()).unwrap_or(u32::MAX);
                            let new_id = *next.entry(key).or_insert(fresh);
                            if new_id == fresh && new_patterns.len() == fresh as usize {
                                let mut pattern =
                                    patterns.get(*id as usize).cloned().unwrap_or_default();
                                pattern.push(class);
                                new_patterns.push(pattern);
                            }
                            new_id
                        }
                    };
                    last = Some((key, new_id));
                    *id = new_id;
                }
                *patterns = new_patterns;
            }
        }
        self.added += 1;
        true
    }

    /// The distinct patterns and their counts.
    pub(crate) fn finish(self) -> Patterns {
        let workers = self.added;
        match self.ids {
            PatternIds::Radix(mut ids) => {
                let space = radix_space(self.classes, workers).unwrap_or(1 << 16);
                if workers == 0 {
                    ids.clear();
                    ids.resize(self.pixels, 0);
                }
                let mut counts = vec![0u64; space];
                count_runs(&ids, &mut counts);
                radix_patterns(ids, &counts, self.classes, workers)
            }
            PatternIds::Interned { ids, patterns } => {
                let mut counts = vec![0u64; patterns.len()];
                for &id in &ids {
                    if let Some(count) = counts.get_mut(id as usize) {
                        *count += 1;
                    }
                }
                let mut answers = Vec::with_capacity(patterns.len() * workers);
                for pattern in &patterns {
                    answers.extend(
                        pattern
                            .iter()
                            .copied()
                            .chain(std::iter::repeat(0))
                            .take(workers),
                    );
                }
                let pixel_ids = match u16::try_from(patterns.len()) {
                    Ok(_) => PixelIds::Narrow(ids.iter().map(|&id| id as u16).collect()),
                    Err(_) => PixelIds::Wide(ids),
                };
                Patterns {
                    table: PatternTable {
                        workers,
                        classes: self.classes,
                        answers,
                        counts,
                    },
                    id_to_pattern: (0..patterns.len() as u32).collect(),
                    pixel_ids,
                }
            }
        }
    }
}

/// Adds each id's pixel count to `counts` (indexed by id). Masks are long runs of one pattern, so runs are
/// counted, not pixels, eight ids at a time.
fn count_runs(ids: &[u16], counts: &mut [u64]) {
    let mut run_id = ids.first().copied().unwrap_or(0);
    let mut run_length = 0u64;
    let mut close_run = |run_id: u16, run_length: u64| {
        if let Some(count) = counts.get_mut(usize::from(run_id)) {
            *count += run_length;
        }
    };
    let mut octets = ids.chunks_exact(8);
    for octet in &mut octets {
        // Branch-free "all equal to the run" test, so that it vectorises.
        if octet.iter().fold(0u16, |acc, &id| acc | (id ^ run_id)) == 0 {
            run_length += 8;
            continue;
        }
        for &id in octet {
            if id == run_id {
                run_length += 1;
            } else {
                close_run(run_id, run_length);
                run_id = id;
                run_length = 1;
            }
        }
    }
    for &id in octets.remainder() {
        if id == run_id {
            run_length += 1;
        } else {
            close_run(run_id, run_length);
            run_id = id;
            run_length = 1;
        }
    }
    close_run(run_id, run_length);
}

/// The patterns of radix ids: every id with pixels becomes a pattern, its answers decoded from the id.
fn radix_patterns(ids: Vec<u16>, counts: &[u64], classes: usize, workers: usize) -> Patterns {
    let mut id_to_pattern = vec![0u32; counts.len()];
    let mut answers = Vec::new();
    let mut kept_counts = Vec::new();
    for (code, &count) in counts.iter().enumerate() {
        if count == 0 {
            continue;
        }
        id_to_pattern[code] = kept_counts.len() as u32;
        kept_counts.push(count);
        let mut rest = code;
        for _ in 0..workers {
            answers.push((rest % classes) as u8);
            rest /= classes;
        }
    }
    Patterns {
        table: PatternTable {
            workers,
            classes,
            answers,
            counts: kept_counts,
        },
        pixel_ids: PixelIds::Narrow(ids),
        id_to_pattern,
    }
}

/// The patterns of masks that are all at hand (the raw-mask entry point), in one blocked pass instead of
/// one pass per worker: each block of ids is built in cache from every mask, counted, and written once.
/// `None` when the radix ids do not fit (too many classes and workers) or a mask has the wrong length;
/// fold the masks in one by one then.
pub(crate) fn patterns_of_masks(
    masks: &[&[u8]],
    pixels: usize,
    classes: usize,
) -> Option<Patterns> {
    const BLOCK: usize = 4096;
    let classes = classes.clamp(1, 256);
    let space = radix_space(classes, masks.len())?;
    if masks.is_empty() || masks.iter().any(|mask| mask.len() != pixels) {
        return None;
    }
    let multipliers: Vec<u16> = (0..masks.len())
        .map(|w| u16::try_from(classes.pow(w as u32)).unwrap_or(0))
        .collect();
    let limit = u8::try_from(classes - 1).unwrap_or(u8::MAX);
    let mut ids: Vec<u16> = Vec::with_capacity(pixels);
    let mut counts = vec![0u64; space];
    let mut block = [0u16; BLOCK];
    for start in (0..pixels).step_by(BLOCK) {
        let end = (start + BLOCK).min(pixels);
        let block = &mut block[..end - start];
        block.iter_mut().for_each(|id| *id = 0);
        for (mask, &multiplier) in masks.iter().zip(&multipliers) {
            for (id, &class) in block.iter_mut().zip(&mask[start..end]) {
                // Classes past the table count as background; branch-free so that it vectorises.
                let valid = u16::from(class <= limit);
                *id = id.wrapping_add(u16::from(class) * valid * multiplier);
            }
        }
        count_runs(block, &mut counts);
        ids.extend_from_slice(block);
    }
    Some(radix_patterns(ids, &counts, classes, masks.len()))
}

/// `classes^workers` when it fits the radix ids (≤ 65,536).
fn radix_space(classes: usize, workers: usize) -> Option<usize> {
    let mut space: usize = 1;
    for _ in 0..workers {
        space = space.checked_mul(classes)?;
        if space > 1 << 16 {
            return None;
        }
    }
    Some(space)
}

/// Tuning of the inference.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InferenceParams {
    /// Most EM iterations.
    pub(crate) max_iterations: usize,
    /// Stop when no worker accuracy moves more than this.
    pub(crate) tolerance: f64,
    /// Pseudo-pixels at the worker's learned reliability added to its accuracy estimate.
    pub(crate) prior_strength: f64,
    /// Least posterior for a pixel to get a foreground class (see the module docs).
    pub(crate) foreground_threshold: f64,
    /// Whether to smooth contested pixels.
    pub(crate) smooth: bool,
}

/// The outcome on compact classes.
#[derive(Debug)]
pub(crate) struct Inference {
    /// Per pixel: the compact class.
    pub(crate) mask: Vec<u8>,
    /// Expected IoU of the mask with the truth, averaged over the classes present (see [`expected_iou`]).
    pub(crate) expected_iou: f64,
    /// Per worker: share of the painted region on which the worker's answer equals the result.
    pub(crate) worker_agreement: Vec<f64>,
}

/// Learns the workers' accuracies, decides every pixel and cleans contested ones (any number of classes
/// and workers; [`infer_masks`] is the fast path for the common small cases).
pub(crate) fn infer(
    patterns: &Patterns,
    width: usize,
    height: usize,
    reliabilities: &[f64],
    params: InferenceParams,
) -> Inference {
    let table = &patterns.table;
    let posteriors = one_coin_em(table, reliabilities, params);
    let verdicts = Verdicts::new(table, &posteriors, params.foreground_threshold);

    // Decide every pixel: one table lookup each.
    let mut mask: Vec<u8> = match &patterns.pixel_ids {
        PixelIds::Narrow(ids) => {
            // A full table indexed by a u16 needs no bounds check: the loop is a plain gather.
            let mut by_id = [0u8; 1 << 16];
            for (entry, &p) in by_id.iter_mut().zip(&patterns.id_to_pattern) {
                *entry = verdicts.decision.get(p as usize).copied().unwrap_or(0);
            }
            ids.iter().map(|&id| by_id[usize::from(id)]).collect()
        }
        PixelIds::Wide(ids) => ids
            .iter()
            .map(|&id| {
                let pattern = patterns
                    .id_to_pattern
                    .get(id as usize)
                    .map_or(0, |&p| p as usize);
                verdicts.decision.get(pattern).copied().unwrap_or(0)
            })
            .collect(),
    };
    let mut outcome = verdicts.outcome(table);
    if params.smooth && table.workers > 1 {
        let pattern_at = |pixel: usize| patterns.pattern_of(pixel);
        let changes = cleaning_changes(
            &mask,
            width,
            height,
            table.classes,
            &posteriors,
            &verdicts.contested,
            params.foreground_threshold,
            pattern_at,
        );
        apply_changes(&changes, &mut mask, &mut outcome, table.classes, pattern_at);
    }
    finish(table, &posteriors, &outcome, mask)
}

/// Bytes with every bit-0 set: `byte × ONES` repeats a byte over a word.
const ONES: u64 = 0x0101_0101_0101_0101;
/// The high bit of every byte.
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The fast path of [`infer`] for masks that are all at hand, when every pattern fits one byte
/// (`classes^workers` ≤ 256: two classes up to eight workers, three up to five): `None` otherwise (or on a
/// mask of the wrong length), and the caller takes the general path. Same result as [`infer`], bit for bit.
///
/// Why it is faster: pixels are handled eight at a time as `u64` words. A word of pattern ids is
/// `Σ mask word × classes^w` (SWAR: no byte carries into the next since every id is below 256), and a word
/// whose eight ids are equal (everyone agrees there, or the same disagreement runs on: most of an image) is
/// counted, decided and compared with its neighbours as one value. Memory is one byte of id per pixel
/// besides the result, and a bitmap.
pub(crate) fn infer_masks(
    masks: &[&[u8]],
    width: usize,
    height: usize,
    classes: usize,
    reliabilities: &[f64],
    params: InferenceParams,
) -> Option<Inference> {
    let classes = classes.clamp(1, 256);
    let workers = masks.len();
    let pixels = width.checked_mul(height)?;
    let space = radix_space(classes, workers)?;
    if !(1..=8).contains(&workers)
        || space > 256
        || classes > 128
        || masks.iter().any(|m| m.len() != pixels)
    {
        return None;
    }
    let multipliers: Vec<u64> = (0..workers)
        .map(|w| classes.pow(w as u32) as u64)
        .collect();
    let id_at = |pixel: usize| -> u8 {
        let mut id = 0usize;
        for (mask, &multiplier) in masks.iter().zip(&multipliers) {
            let class = usize::from(mask[pixel]);
            if class < classes {
                id += class * multiplier as usize;
            }
        }
        id as u8
    };

    // Pass 1: pattern ids and their counts, whole words first (the worker count a constant there, so that
    // the loop over workers unrolls), then the pixels past the last whole word.
    let mut ids = vec![0u8; pixels];
    let mut counts = [0u64; 256];
    let (id_words, _) = ids.as_chunks_mut::<8>();
    let words = WordPass {
        classes,
        over_limit: (128 - classes as u64) * ONES,
    };
    match workers {
        1 => words.run::<1>(masks, &multipliers, id_words, &mut counts),
        2 => words.run::<2>(masks, &multipliers, id_words, &mut counts),
        3 => words.run::<3>(masks, &multipliers, id_words, &mut counts),
        4 => words.run::<4>(masks, &multipliers, id_words, &mut counts),
        5 => words.run::<5>(masks, &multipliers, id_words, &mut counts),
        6 => words.run::<6>(masks, &multipliers, id_words, &mut counts),
        7 => words.run::<7>(masks, &multipliers, id_words, &mut counts),
        _ => words.run::<8>(masks, &multipliers, id_words, &mut counts),
    }
    let tail_start = pixels / 8 * 8;
    for pixel in tail_start..pixels {
        let id = id_at(pixel);
        ids[pixel] = id;
        counts[usize::from(id)] += 1;
    }

    // The patterns, in code order as the general path has them (the EM's sums come out identical).
    let mut id_to_pattern = [0u8; 256];
    let mut answers = Vec::new();
    let mut kept_counts = Vec::new();
    for (code, &count) in counts.iter().enumerate().take(space) {
        if count == 0 {
            continue;
        }
        id_to_pattern[code] = kept_counts.len() as u8;
        kept_counts.push(count);
        let mut rest = code;
        for _ in 0..workers {
            answers.push((rest % classes) as u8);
            rest /= classes;
        }
    }
    let table = PatternTable {
        workers,
        classes,
        answers,
        counts: kept_counts,
    };
    let posteriors = one_coin_em(&table, reliabilities, params);
    let verdicts = Verdicts::new(&table, &posteriors, params.foreground_threshold);

    // Pass 2: decide every pixel, a word at a time where its eight ids are equal.
    let mut decision_by_id = [0u8; 256];
    for (entry, &p) in decision_by_id.iter_mut().zip(&id_to_pattern).take(space) {
        *entry = verdicts.decision.get(usize::from(p)).copied().unwrap_or(0);
    }
    let mut mask = vec![0u8; pixels];
    for (out, id_chunk) in mask.chunks_exact_mut(8).zip(ids.chunks_exact(8)) {
        let first = id_chunk[0];
        if word_at(id_chunk, 0) == u64::from(first) * ONES {
            out.copy_from_slice(&(u64::from(decision_by_id[usize::from(first)]) * ONES).to_le_bytes());
        } else {
            for (class, &id) in out.iter_mut().zip(id_chunk) {
                *class = decision_by_id[usize::from(id)];
            }
        }
    }
    for pixel in tail_start..pixels {
        mask[pixel] = decision_by_id[usize::from(ids[pixel])];
    }

    let mut outcome = verdicts.outcome(&table);
    if params.smooth && workers > 1 {
        let pattern_at = |pixel: usize| usize::from(id_to_pattern[usize::from(ids[pixel])]);
        let changes = cleaning_changes(
            &mask,
            width,
            height,
            classes,
            &posteriors,
            &verdicts.contested,
            params.foreground_threshold,
            pattern_at,
        );
        apply_changes(&changes, &mut mask, &mut outcome, classes, pattern_at);
    }
    Some(finish(&table, &posteriors, &outcome, mask))
}

/// Pass 1 of [`infer_masks`] over the whole words of `W` masks.
struct WordPass {
    classes: usize,
    /// Per byte `128 - classes`: `(b & 0x7f) + (128 - classes)` reaches the high bit exactly when
    /// `b ≥ classes` (for `b < 128`; the high bit of `b` itself covers the rest).
    over_limit: u64,
}

impl WordPass {
    /// Writes the pattern ids of every whole word (`ids.len()` words) and adds them to `counts`.
    fn run<const W: usize>(
        &self,
        masks: &[&[u8]],
        multipliers: &[u64],
        ids: &mut [[u8; 8]],
        counts: &mut [u64; 256],
    ) {
        let n = ids.len();
        let (Ok(masks), Ok(multipliers)) = (
            <[&[u8]; W]>::try_from(masks),
            <[u64; W]>::try_from(multipliers),
        ) else {
            return;
        };
        // Every mask cut to the same `n` words, so that indexing them needs no bounds checks in the loop.
        let words: [&[[u8; 8]]; W] = masks.map(|mask| {
            let (whole, _) = mask.as_chunks::<8>();
            &whole[..n.min(whole.len())]
        });
        if words.iter().any(|w| w.len() != n) {
            return;
        }
        for (k, out) in ids.iter_mut().enumerate() {
            let (mut id, mut invalid) = (0u64, 0u64);
            for w in 0..W {
                let word = u64::from_le_bytes(words[w][k]);
                invalid |= word | ((word & !HIGHS) + self.over_limit);
                id = id.wrapping_add(word.wrapping_mul(multipliers[w]));
            }
            if invalid & HIGHS != 0 {
                // A class past the table somewhere in these eight pixels: it counts as background.
                let mut bytes = [0u8; 8];
                for (i, byte) in bytes.iter_mut().enumerate() {
                    let mut code = 0u64;
                    for w in 0..W {
                        let class = words[w][k][i];
                        if usize::from(class) < self.classes {
                            code += u64::from(class) * multipliers[w];
                        }
                    }
                    *byte = code as u8;
                }
                id = u64::from_le_bytes(bytes);
            }
            let bytes = id.to_le_bytes();
            // Mostly the same id eight times over: one count.
            if id == u64::from(bytes[0]) * ONES {
                counts[usize::from(bytes[0])] += 8;
            } else {
                for &byte in &bytes {
                    counts[usize::from(byte)] += 1;
                }
            }
            *out = bytes;
        }
    }
}

/// Eight bytes from `at` as a little-endian word (byte `i` = pixel `at + i`); 0 past the end.
#[inline]
fn word_at(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_le_bytes)
}

/// Per pattern: its decided class, and whether its workers disagree.
struct Verdicts {
    decision: Vec<u8>,
    contested: Vec<bool>,
}

impl Verdicts {
    fn new(table: &PatternTable, posteriors: &[f64], threshold: f64) -> Self {
        let (classes, workers) = (table.classes, table.workers);
        let decision = posteriors
            .chunks(classes)
            .map(|row| decide(row, threshold))
            .collect();
        let contested = table
            .answers
            .chunks(workers.max(1))
            .map(|answers| answers.windows(2).any(|pair| pair[0] != pair[1]))
            .collect();
        Self {
            decision,
            contested,
        }
    }

    /// Pixels per (pattern, class decided), before cleaning.
    fn outcome(&self, table: &PatternTable) -> Vec<u64> {
        let classes = table.classes;
        let mut outcome = vec![0u64; table.counts.len() * classes];
        for (p, (&count, &class)) in table.counts.iter().zip(&self.decision).enumerate() {
            outcome[p * classes + usize::from(class)] = count;
        }
        outcome
    }
}

/// The cleaning's verdicts, `(pixel, class)` for the pixels that change: every contested pixel near a
/// decision edge is decided on its posteriors summed over its 3×3 neighbourhood (its own weighing
/// `CENTRE_WEIGHT`). Only such a pixel can change: a neighbourhood whose pixels were all decided alike
/// cannot flip its centre (every posterior in it favours that class, so does their weighted mean). The
/// changes are returned, not applied, so that every pixel is judged on the same uncleaned posteriors.
#[allow(clippy::too_many_arguments)] // Internal; the alternative is a one-use struct.
fn cleaning_changes(
    mask: &[u8],
    width: usize,
    height: usize,
    classes: usize,
    posteriors: &[f64],
    contested: &[bool],
    threshold: f64,
    pattern_at: impl Fn(usize) -> usize,
) -> Vec<(u32, u8)> {
    let mut scores = vec![0.0f64; classes];
    let mut changes: Vec<(u32, u8)> = Vec::new();
    let binary = classes == 2;
    let row_of = |pattern: usize| posteriors.get(pattern * classes..(pattern + 1) * classes);
    let foreground_of = |pixel: usize| {
        row_of(pattern_at(pixel))
            .and_then(|row| row.get(1))
            .copied()
            .unwrap_or(0.0)
    };
    for_each_near_edge(mask, width, height, |pixel| {
        if !contested.get(pattern_at(pixel)).copied().unwrap_or(false) {
            return;
        }
        let (x, y) = (pixel % width, pixel / width);
        if binary {
            // A pixel decided foreground with a posterior of at least twice the threshold keeps it
            // whatever its neighbours say (its own weight is half the neighbourhood's at most).
            let own = foreground_of(pixel);
            if mask[pixel] == 1 && own * CENTRE_WEIGHT >= 2.0 * CENTRE_WEIGHT * threshold {
                return;
            }
            let (mut foreground, mut total) = (0.0, 0.0);
            for ny in y.saturating_sub(1)..(y + 2).min(height) {
                for nx in x.saturating_sub(1)..(x + 2).min(width) {
                    let neighbour = ny * width + nx;
                    let weight = if neighbour == pixel {
                        CENTRE_WEIGHT
                    } else {
                        1.0
                    };
                    total += weight;
                    foreground += weight * foreground_of(neighbour);
                }
            }
            let class = u8::from(foreground >= threshold * total);
            if class != mask[pixel] {
                changes.push((pixel as u32, class));
            }
            return;
        }
        scores.iter_mut().for_each(|s| *s = 0.0);
        let mut total = 0.0;
        for ny in y.saturating_sub(1)..(y + 2).min(height) {
            for nx in x.saturating_sub(1)..(x + 2).min(width) {
                let neighbour = ny * width + nx;
                let weight = if neighbour == pixel {
                    CENTRE_WEIGHT
                } else {
                    1.0
                };
                total += weight;
                if let Some(row) = row_of(pattern_at(neighbour)) {
                    for (score, posterior) in scores.iter_mut().zip(row) {
                        *score += weight * posterior;
                    }
                }
            }
        }
        scores.iter_mut().for_each(|s| *s /= total);
        let class = decide(&scores, threshold);
        if class != mask[pixel] {
            changes.push((pixel as u32, class));
        }
    });
    changes
}

/// Applies the cleaning's changes to the mask and to the pixels per (pattern, class).
fn apply_changes(
    changes: &[(u32, u8)],
    mask: &mut [u8],
    outcome: &mut [u64],
    classes: usize,
    pattern_at: impl Fn(usize) -> usize,
) {
    for &(pixel, class) in changes {
        let pixel = pixel as usize;
        let pattern = pattern_at(pixel);
        outcome[pattern * classes + usize::from(mask[pixel])] -= 1;
        outcome[pattern * classes + usize::from(class)] += 1;
        mask[pixel] = class;
    }
}

/// The inference's outcome from the final mask and pixels per (pattern, class).
fn finish(table: &PatternTable, posteriors: &[f64], outcome: &[u64], mask: Vec<u8>) -> Inference {
    Inference {
        expected_iou: expected_iou(
            outcome,
            &temper(posteriors, table.classes, CONFIDENCE_TEMPERATURE),
            table.classes,
        ),
        worker_agreement: worker_agreement(table, outcome),
        mask,
    }
}

/// Bit `i` set when byte `i` of `word` (little-endian) is not zero.
#[inline]
fn nonzero_bytes(word: u64) -> u64 {
    // Fold each byte onto its low bit, then gather the eight low bits into one byte with a multiply (each
    // bit lands on its own position of the top byte, with no carries).
    let mut folded = word | (word >> 4);
    folded |= folded >> 2;
    folded |= folded >> 1;
    (folded & ONES).wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// Calls `visit` on every pixel within one pixel (8-neighbourhood) of a decision edge, in pixel order. A
/// pixel has a differently decided 8-neighbour exactly when it is within one pixel of two 4-adjacent
/// pixels that differ, so it is enough to find those pairs, mark them in a bitmap and dilate the bitmap by
/// one pixel. Pairs are compared eight at a time (a word against the word one pixel on, or one row down:
/// mostly equal, as masks are long runs), marks and dilation go 64 pixels per operation.
fn for_each_near_edge(mask: &[u8], width: usize, height: usize, mut visit: impl FnMut(usize)) {
    if width == 0 || height == 0 {
        return;
    }
    let stride = width.div_ceil(64);
    // `edges` row y: pixels of row y in a differing 4-adjacent pair.
    let mut edges = vec![0u64; stride * (height + 1)];
    let full = width / 8 * 8;
    for y in 0..height {
        let row = &mask[y * width..(y + 1) * width];
        let below = (y + 1 < height).then(|| &mask[(y + 1) * width..(y + 2) * width]);
        let (here, rest) = edges[y * stride..(y + 2) * stride].split_at_mut(stride);
        // Bit x of `right`: pixel x differs from x + 1; of `down`: from the pixel below.
        let mark = |bits: &mut [u64], x: usize, set: u64| {
            if let Some(word) = bits.get_mut(x / 64) {
                *word |= set << (x % 64);
            }
        };
        for x in (0..full).step_by(8) {
            let word = word_at(row, x);
            // The next eight pixels' right neighbours: this word moved one byte down, and the pixel after.
            let next = row.get(x + 8).map_or(word >> 56, |&b| u64::from(b));
            let right_diff = word ^ ((word >> 8) | (next << 56));
            if right_diff != 0 {
                let right = nonzero_bytes(right_diff);
                mark(here, x, right | (right << 1));
                if x % 64 == 56 && right & 0x80 != 0 {
                    mark(here, x + 8, 1);
                }
            }
            if let Some(below) = below {
                let down_diff = word ^ word_at(below, x);
                if down_diff != 0 {
                    let down = nonzero_bytes(down_diff);
                    mark(here, x, down);
                    mark(rest, x, down);
                }
            }
        }
        for x in full..width {
            if x + 1 < width && row[x] != row[x + 1] {
                mark(here, x, 0b11);
            }
            if below.is_some_and(|below| below[x] != row[x]) {
                mark(here, x, 1);
                mark(rest, x, 1);
            }
        }
    }
    // Dilate: vertically by OR-ing neighbouring rows, then horizontally by shifting with carries.
    let mut near = vec![0u64; stride];
    for y in 0..height {
        let row = |y: usize| &edges[y * stride..(y + 1) * stride];
        near.copy_from_slice(row(y));
        for other in [y.checked_sub(1), (y + 1 < height).then_some(y + 1)]
            .into_iter()
            .flatten()
        {
            for (word, &bits) in near.iter_mut().zip(row(other)) {
                *word |= bits;
            }
        }
        for i in 0..stride {
            let here = near[i];
            let left = if i > 0 { near[i - 1] >> 63 } else { 0 };
            let right = near.get(i + 1).map_or(0, |next| next << 63);
            let mut bits = here | (here << 1) | (here >> 1) | left | right;
            while bits != 0 {
                let x = i * 64 + bits.trailing_zeros() as usize;
                if x < width {
                    visit(y * width + x);
                }
                bits &= bits - 1;
            }
        }
    }
}

/// Posteriors flattened by `temperature` (> 1 flattens): `p^(1/T)`, renormalised per pattern.
fn temper(posteriors: &[f64], classes: usize, temperature: f64) -> Vec<f64> {
    let mut tempered = posteriors.to_vec();
    for row in tempered.chunks_mut(classes) {
        let mut total = 0.0;
        for value in row.iter_mut() {
            *value = value.max(1e-300).powf(1.0 / temperature);
            total += *value;
        }
        for value in row.iter_mut() {
            *value /= total;
        }
    }
    tempered
}

/// The foreground class with the highest posterior if it reaches `threshold`, else background (0).
fn decide(posterior: &[f64], threshold: f64) -> u8 {
    let mut best = 0usize;
    for (class, value) in posterior.iter().enumerate().skip(1) {
        if best == 0 || *value > posterior[best] {
            best = class;
        }
    }
    if best != 0 && posterior[best] >= threshold {
        best as u8
    } else {
        0
    }
}

/// Posteriors per pattern (`pattern_count × classes`) under the one-coin model, by EM on the pattern
/// histogram restricted to the painted region (see the module docs).
pub(crate) fn one_coin_em(
    patterns: &PatternTable,
    reliabilities: &[f64],
    params: InferenceParams,
) -> Vec<f64> {
    let (classes, workers) = (patterns.classes, patterns.workers);
    let pattern_count = patterns.counts.len();
    let reliability = |w: usize| {
        reliabilities
            .get(w)
            .copied()
            .unwrap_or(0.7)
            .clamp(0.01, 0.99)
    };
    let painted: Vec<bool> = (0..pattern_count)
        .map(|p| {
            patterns.answers[p * workers..(p + 1) * workers]
                .iter()
                .any(|&a| a != 0)
        })
        .collect();

    let mut accuracy: Vec<f64> = (0..workers).map(reliability).collect();
    let mut posteriors = vec![0.0f64; pattern_count * classes];
    let wrong_share = 1.0 / (classes.max(2) - 1) as f64;
    let estimate_posteriors = |accuracy: &[f64], posteriors: &mut [f64]| {
        let right: Vec<f64> = accuracy.iter().map(|a| a.ln()).collect();
        let wrong: Vec<f64> = accuracy
            .iter()
            .map(|a| ((1.0 - a) * wrong_share).ln())
            .collect();
        let mut logs = vec![0.0f64; classes];
        for p in 0..pattern_count {
            let answers = &patterns.answers[p * workers..(p + 1) * workers];
            for (k, log) in logs.iter_mut().enumerate() {
                *log = answers
                    .iter()
                    .enumerate()
                    .map(|(w, &a)| {
                        if usize::from(a) == k {
                            right[w]
                        } else {
                            wrong[w]
                        }
                    })
                    .sum();
            }
            let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut total = 0.0;
            for log in logs.iter_mut() {
                *log = (*log - top).exp();
                total += *log;
            }
            for (value, fresh) in posteriors[p * classes..(p + 1) * classes]
                .iter_mut()
                .zip(&logs)
            {
                *value = fresh / total;
            }
        }
    };
    estimate_posteriors(&accuracy, &mut posteriors);
    if workers <= 1 {
        return posteriors;
    }

    let painted_pixels: f64 = (0..pattern_count)
        .filter(|&p| painted[p])
        .map(|p| patterns.counts[p] as f64)
        .sum();
    if painted_pixels == 0.0 {
        return posteriors;
    }
    for _ in 0..params.max_iterations {
        let decision: Vec<u8> = posteriors
            .chunks(classes)
            .map(|row| decide(row, params.foreground_threshold))
            .collect();
        let mut largest_change = 0.0f64;
        for (w, accuracy) in accuracy.iter_mut().enumerate() {
            let mut right = params.prior_strength * reliability(w);
            for p in (0..pattern_count).filter(|&p| painted[p]) {
                let answer = usize::from(patterns.answers[p * workers + w]);
                if usize::from(decision[p]) == answer {
                    right += patterns.counts[p] as f64;
                }
            }
            let fresh = (right / (painted_pixels + params.prior_strength)).clamp(0.01, 0.99);
            largest_change = largest_change.max((fresh - *accuracy).abs());
            *accuracy = fresh;
        }
        estimate_posteriors(&accuracy, &mut posteriors);
        if largest_change <= params.tolerance {
            break;
        }
    }
    posteriors
}

/// Expected IoU of the result with the truth, under the posteriors: per class `k`, expected intersection
/// `Σ_{pixels labelled k} P(k)` over expected union `#labelled k + Σ_{others} P(k)`; averaged over the
/// classes other than 0 that are labelled or expected somewhere (class 0 alone when there is none).
pub(crate) fn expected_iou(outcome: &[u64], posteriors: &[f64], classes: usize) -> f64 {
    let mut intersection = vec![0.0f64; classes];
    let mut union = vec![0.0f64; classes];
    for (p, row) in outcome.chunks(classes).enumerate() {
        let posterior = &posteriors[p * classes..(p + 1) * classes];
        for (labelled, &count) in row.iter().enumerate() {
            if count == 0 {
                continue;
            }
            let count = count as f64;
            for k in 0..classes {
                if k == labelled {
                    intersection[k] += count * posterior[k];
                    union[k] += count;
                } else {
                    union[k] += count * posterior[k];
                }
            }
        }
    }
    let foreground: Vec<f64> = (1..classes)
        .filter(|&k| union[k] >= 0.5)
        .map(|k| intersection[k] / union[k])
        .collect();
    if foreground.is_empty() {
        if union.first().is_some_and(|u| *u > 0.0) {
            intersection[0] / union[0]
        } else {
            0.0
        }
    } else {
        foreground.iter().sum::<f64>() / foreground.len() as f64
    }
}

fn worker_agreement(patterns: &PatternTable, outcome: &[u64]) -> Vec<f64> {
    let (classes, workers) = (patterns.classes, patterns.workers);
    let mut agreed = vec![0u64; workers];
    let mut total = 0u64;
    for (p, row) in outcome.chunks(classes).enumerate() {
        let answers = &patterns.answers[p * workers..(p + 1) * workers];
        let everyone_background = answers.iter().all(|&a| a == 0);
        for (labelled, &count) in row.iter().enumerate() {
            if count == 0 || (everyone_background && labelled == 0) {
                continue;
            }
            total += count;
            for (w, &answer) in answers.iter().enumerate() {
                if usize::from(answer) == labelled {
                    agreed[w] += count;
                }
            }
        }
    }
    agreed
        .iter()
        .map(|&a| {
            if total == 0 {
                1.0
            } else {
                a as f64 / total as f64
            }
        })
        .collect()
}
