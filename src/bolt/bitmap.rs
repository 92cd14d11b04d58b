//! A fixed-size bitmap of page ids, set atomically from several threads.

use std::sync::atomic::{AtomicU64, Ordering};

/// A fixed-size bitmap of page ids with atomic set.
pub(crate) struct Bitmap {
    words: Vec<AtomicU64>,
    bits: u64,
}

impl Bitmap {
    pub(crate) fn new(bits: u64) -> Bitmap {
        let n = bits.div_ceil(64) as usize;
        Bitmap {
            words: (0..n).map(|_| AtomicU64::new(0)).collect(),
            bits,
        }
    }

    /// Sets bit `i`; returns whether it was already set. Ids beyond the
    /// map are ignored (reported elsewhere).
    pub(crate) fn set(&self, i: u64) -> bool {
        if i >= self.bits {
            return false;
        }
        let (w, b) = ((i / 64) as usize, i % 64);
        match self.words.get(w) {
            Some(word) => word.fetch_or(1 << b, Ordering::Relaxed) & (1 << b) != 0,
            None => false,
        }
    }

    pub(crate) fn get(&self, i: u64) -> bool {
        let (w, b) = ((i / 64) as usize, i % 64);
        i < self.bits
            && self
                .words
                .get(w)
                .is_some_and(|word| word.load(Ordering::Relaxed) & (1 << b) != 0)
    }
}
