//! The fast path of [`super::infer`]: masks that are all at hand and patterns that fit one byte, handled
//! eight pixels at a time as `u64` words (see [`infer_masks`]). It shares the pattern table, the EM, the
//! verdicts and the cleaning's rule with the general path in [`super`], and gives its result bit for bit
//! (a test holds it to that); what lives here is the word-level bookkeeping: pass 1 over the masks, the
//! list of words where workers differ, pass 2 over that list, and finding the contested pixels next to a
//! decision edge from the result's bytes.

use super::{
    Cleaning, Inference, InferenceParams, ONES, Verdicts, apply_changes, decode_radix_ids, finish,
    low_bits, one_coin_em, radix_space,
};

/// The fast path of [`infer`](super::infer) for masks that are all at hand, when every pattern fits one byte
/// (`classes^workers` ≤ 256 and at most eight workers: two classes up to eight workers, three up to five):
/// `None` otherwise (or on a mask of the wrong length), and the caller takes the general path. Same result
/// as [`infer`](super::infer), bit for bit.
///
/// Why it is faster: pixels are handled eight at a time as `u64` words, and most words need almost no
/// work. Pass 1 reads the masks once; where every worker gave the same class to all eight pixels (most of
/// an image), the word's ids are that class times `1 + classes + classes² …` and its decision is, almost
/// surely, that class: it is written to the result straight away, with one count. Other words get their
/// ids as `Σ mask word × classes^w` (SWAR: every id is below 256, so no byte carries into the next) and are
/// listed. After the EM on the counts, pass 2 decides only the listed words (or every word, on the rare
/// image where a unanimous pattern is not decided as its class). The cleaning visits the listed words
/// alone: every worker agrees on every other pixel, so none of them is contested. A listed word's pixels
/// are compared with their eight neighbours eight at a time, as bytes of the result, and the contested
/// ones next to a differently decided pixel are judged. Memory: one byte of id per pixel besides the
/// result, and the list.
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
    if !(1..=8).contains(&workers) || space > 256 || masks.iter().any(|m| m.len() != pixels) {
        return None;
    }
    let multipliers: Vec<u64> = (0..workers).map(|w| classes.pow(w as u32) as u64).collect();
    let mut image = WordImage::new(width, height);
    let mut counts = [0u64; 256];
    // About a sixth of the words of a typical image are listed: room for a quarter up front, so that
    // the list is not copied as it grows.
    let mut listed: Vec<Open> = Vec::with_capacity(pixels / 32 + height);
    let pass = WordPass {
        classes,
        multipliers: &multipliers,
    };
    match workers {
        1 => pass.run::<1>(masks, &mut image, &mut counts, &mut listed),
        2 => pass.run::<2>(masks, &mut image, &mut counts, &mut listed),
        3 => pass.run::<3>(masks, &mut image, &mut counts, &mut listed),
        4 => pass.run::<4>(masks, &mut image, &mut counts, &mut listed),
        5 => pass.run::<5>(masks, &mut image, &mut counts, &mut listed),
        6 => pass.run::<6>(masks, &mut image, &mut counts, &mut listed),
        7 => pass.run::<7>(masks, &mut image, &mut counts, &mut listed),
        _ => pass.run::<8>(masks, &mut image, &mut counts, &mut listed),
    }

    // The patterns, in code order as the general path has them (the EM's sums come out identical).
    let (table, pattern_of_id) = decode_radix_ids(&counts[..space], classes, workers);
    // At most 256 ids, so every pattern index fits a byte: one byte per lookup in the pixel loops.
    let mut id_to_pattern = [0u8; 256];
    for (slot, &pattern) in id_to_pattern.iter_mut().zip(&pattern_of_id) {
        *slot = pattern as u8;
    }
    let posteriors = one_coin_em(&table, reliabilities, params);
    let verdicts = Verdicts::new(&table, &posteriors, params.foreground_threshold);

    // Pass 2: decide what pass 1 left open.
    let mut decision_by_id = [0u8; 256];
    for (entry, &p) in decision_by_id.iter_mut().zip(&id_to_pattern).take(space) {
        *entry = verdicts.decision.get(usize::from(p)).copied().unwrap_or(0);
    }
    let unanimous: usize = multipliers.iter().map(|&m| m as usize).sum();
    let unanimous_kept = (0..classes).all(|class| {
        let id = class * unanimous;
        counts[id] == 0 || usize::from(decision_by_id[id]) == class
    });
    if unanimous_kept {
        image.decide_listed(&listed, &decision_by_id);
    } else {
        image.decide_all(&decision_by_id);
    }

    let WordImage { ids, mut mask, .. } = image;
    if ids.len() != pixels || mask.len() != pixels {
        // Cannot happen (every length was checked); the general path would still answer.
        return None;
    }
    let mut outcome = verdicts.outcome(&table);
    if params.smooth && workers > 1 {
        let pattern_at = |pixel: usize| usize::from(id_to_pattern[usize::from(ids[pixel])]);
        // Posteriors and contest by id, so that a pixel's costs one lookup.
        let mut rows_by_id = vec![0.0f64; 256 * classes];
        let mut contested_by_id = [false; 256];
        let mut foreground_by_id = [0.0f64; 256];
        for (id, &p) in id_to_pattern.iter().enumerate().take(space) {
            let p = usize::from(p);
            if counts[id] == 0 {
                continue;
            }
            if let Some(row) = posteriors.get(p * classes..(p + 1) * classes) {
                rows_by_id[id * classes..(id + 1) * classes].copy_from_slice(row);
                foreground_by_id[id] = row.get(1).copied().unwrap_or(0.0);
            }
            contested_by_id[id] = verdicts.contested.get(p).copied().unwrap_or(false);
        }
        let cleaning = Cleaning {
            mask: &mask,
            width,
            height,
            classes,
            threshold: params.foreground_threshold,
        };
        let row_at = |pixel: usize| {
            let id = usize::from(ids[pixel]);
            &rows_by_id[id * classes..(id + 1) * classes]
        };
        let foreground_of = |pixel: usize| foreground_by_id[usize::from(ids[pixel])];
        // Only pixels of listed words can be contested (every worker agrees on the others), so only
        // their neighbourhoods are compared, eight pixels at a time from the mask's bytes.
        let mut changes: Vec<(u32, u8)> = Vec::new();
        let mut scores = vec![0.0f64; classes];
        let binary = classes == 2;
        for open in &listed {
            let y = open.y as usize;
            let (start, mut near) = if open.x == TAIL {
                let start = width / 8 * 8;
                let contested = (start..width).fold(0u64, |bits, x| {
                    let id = usize::from(ids[y * width + x]);
                    bits | u64::from(contested_by_id[id]) << (x - start)
                });
                (
                    start,
                    tail_odd_ones_out(&mask, width, height, y) & contested,
                )
            } else {
                let start = open.x as usize;
                let contested = if binary {
                    // Two classes: contested unless every worker gave 0 (id 0) or 1 (id `unanimous`).
                    nonzero_bytes(open.ids) & nonzero_bytes(open.ids ^ (unanimous as u64 * ONES))
                } else {
                    contested_bits(open.ids, &contested_by_id)
                };
                (
                    start,
                    word_odd_ones_out(&mask, width, height, y, start) & contested,
                )
            };
            while near != 0 {
                let x = start + near.trailing_zeros() as usize;
                near &= near - 1;
                let pixel = y * width + x;
                if let Some(class) = cleaning.judge(pixel, x, y, &mut scores, row_at, foreground_of)
                {
                    changes.push((pixel as u32, class));
                }
            }
        }
        apply_changes(&changes, &mut mask, &mut outcome, classes, pattern_at);
    }
    Some(finish(&table, &posteriors, &outcome, mask))
}

/// The per-pixel state of [`infer_masks`]: ids and the result so far.
struct WordImage {
    width: usize,
    height: usize,
    /// Whole words per row (`width / 8`); the rest of a row goes pixel by pixel.
    words_per_row: usize,
    ids: Vec<u8>,
    mask: Vec<u8>,
}

impl WordImage {
    fn new(width: usize, height: usize) -> Self {
        let pixels = width * height;
        Self {
            width,
            height,
            words_per_row: width / 8,
            // Filled by pass 1 row by row (nothing zeroed first).
            ids: Vec::with_capacity(pixels),
            mask: Vec::with_capacity(pixels),
        }
    }

    /// Decides the listed words (and the row tails, always listed) from their ids.
    fn decide_listed(&mut self, listed: &[Open], decision_by_id: &[u8; 256]) {
        for open in listed {
            let y = open.y as usize;
            if open.x == TAIL {
                self.decide_tail(y, decision_by_id);
            } else {
                self.decide_word(y, open.x as usize, open.ids, decision_by_id);
            }
        }
    }

    /// Decides every pixel from its id.
    fn decide_all(&mut self, decision_by_id: &[u8; 256]) {
        for y in 0..self.height {
            for i in 0..self.words_per_row {
                let ids = word_at(&self.ids, y * self.width + i * 8);
                self.decide_word(y, i * 8, ids, decision_by_id);
            }
            self.decide_tail(y, decision_by_id);
        }
    }

    /// Decides the eight pixels from `(x, y)`, whose ids are `ids`.
    #[inline]
    fn decide_word(&mut self, y: usize, x: usize, ids: u64, decision_by_id: &[u8; 256]) {
        let at = y * self.width + x;
        let Some(out) = self.mask.get_mut(at..at + 8) else {
            return;
        };
        // Built in a register: eight byte stores read back as one word would stall.
        let first = ids as u8;
        let decided = if ids == u64::from(first) * ONES {
            u64::from(decision_by_id[usize::from(first)]) * ONES
        } else {
            let mut decided = 0u64;
            for b in 0..8 {
                decided |= u64::from(decision_by_id[((ids >> (8 * b)) & 0xff) as usize]) << (8 * b);
            }
            decided
        };
        out.copy_from_slice(&decided.to_le_bytes());
    }

    fn decide_tail(&mut self, y: usize, decision_by_id: &[u8; 256]) {
        for x in self.words_per_row * 8..self.width {
            let at = y * self.width + x;
            self.mask[at] = decision_by_id[usize::from(self.ids[at])];
        }
    }
}

/// A word pass 2 must decide: its row, first column and ids (kept from pass 1, so that pass 2 need not
/// read them back).
struct Open {
    y: u32,
    /// [`TAIL`] for the row's pixels past its whole words.
    x: u32,
    ids: u64,
}

/// [`Open::x`] of a row's tail.
const TAIL: u32 = u32::MAX;

/// Pass 1 of [`infer_masks`].
struct WordPass<'a> {
    classes: usize,
    multipliers: &'a [u64],
}

impl WordPass<'_> {
    /// Pattern ids of every pixel of `W` masks, counted; unanimous words decided, the others listed.
    ///
    /// Row by row, in short loops that each keep their state in registers (the first two are
    /// vectorised by the compiler): where the workers differ and the largest class; then, when every
    /// class of the row is valid, the first worker's classes are the result wherever everyone agrees, ids
    /// of unanimous words are that class times `1 + classes + classes² …`, and only the words where
    /// workers differ get the full id sum and go to the list for pass 2. A row with a class past the table
    /// is listed whole (such classes count as background).
    fn run<const W: usize>(
        &self,
        masks: &[&[u8]],
        image: &mut WordImage,
        counts: &mut [u64; 256],
        listed: &mut Vec<Open>,
    ) {
        let (Ok(masks), Ok(multipliers)) = (
            <[&[u8]; W]>::try_from(masks),
            <[u64; W]>::try_from(self.multipliers),
        ) else {
            return;
        };
        // The id of a pixel everyone gave class c: c × (1 + classes + classes² …).
        let unanimous: u64 = multipliers.iter().sum();
        let (width, n) = (image.width, image.words_per_row);
        let height = image.height;
        let binary = self.classes == 2;
        let mut differ = vec![0u64; n];
        // One row of ids, appended to the image's when complete (so that nothing is zeroed first).
        let mut id_row = vec![0u8; width];
        let mut tables = vec![[0u64; 256]; 4];
        // Two classes: pixels in unanimous words, and how many of them are class 1.
        let (mut unanimous_pixels, mut unanimous_ones) = (0u64, 0u64);
        for y in 0..height {
            let row = y * width..(y + 1) * width;
            let first_row = row.start..row.start + n * 8;
            // Every row cut to the same `n` words, so that indexing them needs no bounds checks.
            let rows: [&[[u8; 8]]; W] = masks.map(|mask| {
                let whole = mask
                    .get(row.clone())
                    .map_or(&[][..], |r| r.as_chunks::<8>().0);
                &whole[..n.min(whole.len())]
            });
            let Some(first_bytes) = masks[0].get(first_row.clone()) else {
                return;
            };
            if rows.iter().any(|r| r.len() != n) || differ.len() != n || id_row.len() != width {
                return;
            }
            let id_words = &mut id_row.as_chunks_mut::<8>().0[..n];

            // Where the workers differ, and every bit any worker set (a power-of-two class count is
            // valid when no bit past its top one is set): straight-line loops, vectorised, one mask at a
            // time (streaming one mask's row, then the next, is faster than interleaving them).
            let mut bits = 0u64;
            for (d, first) in differ.iter_mut().zip(rows[0].iter()) {
                *d = 0;
                bits |= u64::from_le_bytes(*first);
            }
            for r in &rows[1..] {
                for ((d, word), first) in differ.iter_mut().zip(r.iter()).zip(rows[0].iter()) {
                    let word = u64::from_le_bytes(*word);
                    *d |= word ^ u64::from_le_bytes(*first);
                    bits |= word;
                }
            }
            let valid = if self.classes.is_power_of_two() {
                bits & !((self.classes as u64 - 1) * ONES) == 0
            } else {
                let mut largest = 0u8;
                for r in &rows {
                    largest = r.as_flattened().iter().fold(largest, |m, &b| m.max(b));
                }
                usize::from(largest) < self.classes
            };
            if !valid {
                for (i, ids) in id_words.iter_mut().enumerate() {
                    for (b, id) in ids.iter_mut().enumerate() {
                        *id = self.id_of(rows.iter().map(|r| r[i][b]));
                    }
                    tally(&mut tables, u64::from_le_bytes(*ids));
                    listed.push(Open {
                        y: y as u32,
                        x: (i * 8) as u32,
                        ids: u64::from_le_bytes(*ids),
                    });
                }
                // Decided in pass 2.
                image.mask.resize(image.mask.len() + n * 8, 0);
            } else {
                // The first worker's classes stand wherever everyone agrees; pass 2 overwrites the rest.
                image.mask.extend_from_slice(first_bytes);
                if binary {
                    // One loop for the ids as if everyone agreed and the count of class 1 (bytes of 0 and
                    // 1 summed lane by lane over 64 pixels, then across lanes).
                    for (ids, firsts) in id_words.chunks_mut(8).zip(rows[0].chunks(8)) {
                        let mut lanes = 0u64;
                        for (ids, first) in ids.iter_mut().zip(firsts) {
                            let first = u64::from_le_bytes(*first);
                            *ids = first.wrapping_mul(unanimous).to_le_bytes();
                            lanes += first;
                        }
                        unanimous_ones += lanes.wrapping_mul(ONES) >> 56;
                    }
                    unanimous_pixels += (n * 8) as u64;
                } else {
                    for (ids, first) in id_words.iter_mut().zip(rows[0].iter()) {
                        *ids = u64::from_le_bytes(*first)
                            .wrapping_mul(unanimous)
                            .to_le_bytes();
                    }
                }
                if !binary {
                    for (ids, &d) in id_words.iter().zip(differ.iter()) {
                        if d == 0 {
                            tally(&mut tables, u64::from_le_bytes(*ids));
                        }
                    }
                }
                // The words where workers differ, 64 at a time as a bit mask: a branch per such word
                // rather than a hard-to-predict one per word.
                for (chunk, words) in differ.chunks(64).enumerate() {
                    let mut open = 0u64;
                    for (b, &d) in words.iter().enumerate() {
                        open |= u64::from(d != 0) << b;
                    }
                    while open != 0 {
                        let i = chunk * 64 + open.trailing_zeros() as usize;
                        open &= open - 1;
                        self.open_word(&rows, i, y, id_words, &mut tables, listed);
                        if binary {
                            // Not unanimous after all: taken back out of the unanimous counts.
                            unanimous_pixels -= 8;
                            unanimous_ones -=
                                u64::from_le_bytes(rows[0][i]).wrapping_mul(ONES) >> 56;
                        }
                    }
                }
            }
            if n * 8 < width {
                for (x, slot) in id_row.iter_mut().enumerate().skip(n * 8) {
                    let id = self.id_of(
                        masks
                            .iter()
                            .map(|m| m.get(y * width + x).copied().unwrap_or(0)),
                    );
                    *slot = id;
                    tables[0][usize::from(id)] += 1;
                }
                image.mask.resize(image.mask.len() + width - n * 8, 0);
                listed.push(Open {
                    y: y as u32,
                    x: TAIL,
                    ids: 0,
                });
            }
            image.ids.extend_from_slice(&id_row);
        }
        // Unanimous words of two classes were counted apart: class 0 (id 0) and class 1 (id `unanimous`).
        counts[0] += unanimous_pixels - unanimous_ones;
        if let Some(count) = counts.get_mut(unanimous as usize) {
            *count += unanimous_ones;
        }
        for table in &tables {
            for (count, &more) in counts.iter_mut().zip(table) {
                *count += more;
            }
        }
    }

    /// A word where workers differ: its ids (all classes valid), counted, kept, and listed for pass 2.
    #[inline(always)]
    fn open_word<const W: usize>(
        &self,
        rows: &[&[[u8; 8]]; W],
        i: usize,
        y: usize,
        id_words: &mut [[u8; 8]],
        tables: &mut [[u64; 256]],
        listed: &mut Vec<Open>,
    ) {
        let mut id = 0u64;
        for (row, &multiplier) in rows.iter().zip(self.multipliers) {
            id = id.wrapping_add(u64::from_le_bytes(row[i]).wrapping_mul(multiplier));
        }
        if let Some(word) = id_words.get_mut(i) {
            *word = id.to_le_bytes();
        }
        tally(tables, id);
        listed.push(Open {
            y: y as u32,
            x: (i * 8) as u32,
            ids: id,
        });
    }

    /// The id of one pixel from its workers' classes (a class past the table counts as background).
    fn id_of(&self, classes: impl Iterator<Item = u8>) -> u8 {
        let mut id = 0u64;
        for (class, &multiplier) in classes.zip(self.multipliers) {
            if usize::from(class) < self.classes {
                id += u64::from(class) * multiplier;
            }
        }
        id as u8
    }
}

/// Adds a word of eight ids to the counts: at once when they are all equal, else byte by byte, each to
/// its own table (so that repeated ids do not wait on each other's increments).
#[inline(always)]
fn tally(tables: &mut [[u64; 256]], ids: u64) {
    let first = ids as u8;
    if ids == u64::from(first) * ONES {
        tables[0][usize::from(first)] += 8;
        return;
    }
    for (b, id) in ids.to_le_bytes().into_iter().enumerate() {
        tables[b % 4][usize::from(id)] += 1;
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

/// Bit `i` set when pixel `(x + i, y)` of `mask` has an 8-neighbour decided differently (`x` a multiple
/// of 8, `x + 8 ≤ width`): the eight pixels compared with their neighbours' bytes all at once, one word
/// per direction. Past the image's edge a pixel stands in for its missing neighbour (equal to itself or
/// to one of its real neighbours, so it adds no difference).
#[inline]
fn word_odd_ones_out(mask: &[u8], width: usize, height: usize, y: usize, x: usize) -> u64 {
    if x > 0 && x + 8 < width && y > 0 && y + 1 < height {
        // Inside the image (most words): ten bytes of each of the three rows, three words from each.
        let window = |row: usize| {
            let at = row * width + x - 1;
            mask.get(at..at + 10)
                .and_then(|bytes| <&[u8; 10]>::try_from(bytes).ok())
        };
        if let (Some(above), Some(here), Some(below)) = (window(y - 1), window(y), window(y + 1)) {
            // Pixels x - 1.., x.. and x + 1.. (constant offsets into ten bytes: no bounds checks).
            let words = |bytes: &[u8; 10]| {
                let at = |offset: usize| {
                    bytes[offset..]
                        .first_chunk::<8>()
                        .map_or(0, |word| u64::from_le_bytes(*word))
                };
                (at(0), at(1), at(2))
            };
            let (left, centre, right) = words(here);
            let mut differ = (centre ^ left) | (centre ^ right);
            for row in [above, below] {
                let (left, middle, right) = words(row);
                differ |= (centre ^ left) | (centre ^ middle) | (centre ^ right);
            }
            return nonzero_bytes(differ);
        }
    }
    // A row's pixels x - 1.., x.. and x + 1.. as words (byte i = pixel x + i - 1, x + i, x + i + 1).
    let shifted = |row: usize| {
        let at = row * width + x;
        let middle = word_at(mask, at);
        let left = if x == 0 {
            (middle << 8) | (middle & 0xff)
        } else {
            word_at(mask, at - 1)
        };
        let right = if x + 8 >= width {
            (middle >> 8) | (middle & (0xff << 56))
        } else {
            word_at(mask, at + 1)
        };
        (left, middle, right)
    };
    let (left, here, right) = shifted(y);
    let mut differ = (here ^ left) | (here ^ right);
    for row in [y.checked_sub(1), (y + 1 < height).then_some(y + 1)]
        .into_iter()
        .flatten()
    {
        let (left, middle, right) = shifted(row);
        differ |= (here ^ left) | (here ^ middle) | (here ^ right);
    }
    nonzero_bytes(differ)
}

/// [`word_odd_ones_out`] for the pixels of row `y` past its whole words: bit `i` for pixel
/// `width / 8 * 8 + i`.
fn tail_odd_ones_out(mask: &[u8], width: usize, height: usize, y: usize) -> u64 {
    let start = width / 8 * 8;
    let mut bits = 0u64;
    for x in start..width {
        let class = mask[y * width + x];
        let differs = (y.saturating_sub(1)..(y + 2).min(height)).any(|ny| {
            (x.saturating_sub(1)..(x + 2).min(width)).any(|nx| mask[ny * width + nx] != class)
        });
        bits |= u64::from(differs) << (x - start);
    }
    bits
}

/// Bit `i` = whether byte `i` of `word` is not zero.
#[inline]
fn nonzero_bytes(word: u64) -> u64 {
    const LOW_SEVEN: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    // A byte's top bit ends up set when its low seven bits carry into it or it was set already.
    let top = (((word & LOW_SEVEN) + LOW_SEVEN) | word) & !LOW_SEVEN;
    low_bits(top >> 7)
}

/// Bit `i` = whether the pattern of id byte `i` of `ids` is contested.
#[inline]
fn contested_bits(ids: u64, contested_by_id: &[bool; 256]) -> u64 {
    let mut bits = 0u64;
    for (b, id) in ids.to_le_bytes().into_iter().enumerate() {
        bits |= u64::from(contested_by_id[usize::from(id)]) << b;
    }
    bits
}
