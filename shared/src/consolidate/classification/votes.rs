//! The vote table both numeric modules work on — EM (`em`) and the held-out calibration (`calibration`)
//! — and the underflow guards they share. It lives apart so that neither imports the other's internals.

/// Votes grouped by item (CSR): item `i`'s votes are `worker[offsets[i]..offsets[i + 1]]` with the
/// matching `answer`s.
#[derive(Debug, Clone, Default)]
pub(crate) struct Votes {
    pub(crate) n_classes: usize,
    pub(crate) n_workers: usize,
    pub(crate) offsets: Vec<usize>,
    pub(crate) worker: Vec<u32>,
    pub(crate) answer: Vec<u32>,
}

impl Votes {
    pub(crate) fn n_items(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub(crate) fn range(&self, item: usize) -> std::ops::Range<usize> {
        self.offsets[item]..self.offsets[item + 1]
    }
}

/// The E-step's running products (and the calibration's held-out ones) are multiplied by `RESCALE_BY`
/// whenever their largest entry falls below `RESCALE_BELOW` (each factor is at least EM's
/// `MIN_PROBABILITY`, so one step never underflows).
pub(crate) const RESCALE_BELOW: f64 = 1e-200;
pub(crate) const RESCALE_BY: f64 = 1e200;

/// Every factor of the E-step's products is at least EM's `MIN_PROBABILITY` (1e-6), so an item with at
/// most this many votes cannot fall below `RESCALE_BELOW` (1e-200) and skips the per-vote check.
pub(crate) const VOTES_WITHOUT_RESCALE: usize = 32;
