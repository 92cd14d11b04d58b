//! Go's `sort.Sort`, reproduced step for step, because etcd sorts range
//! results with it and it is not stable: keys that compare equal under
//! `--sort-by=VERSION` (or CREATE, MODIFY, VALUE) come out in whatever order
//! Go's algorithm leaves them, and that order differs between Go releases.
//!
//! * Go 1.16 and 1.17 (etcd 3.5.1 is built with Go 1.16.3): introsort with a
//!   Tukey ninther pivot, a three-way split against many duplicates, and a
//!   gap-6 shell pass before insertion sort on slices of at most 12.
//! * Go 1.19 and 1.20 (the Debian etcd 3.4.23 is built with Go 1.19.8):
//!   pattern-defeating quicksort whose `breakPatterns` uses the xorshift
//!   shifts 13, 17, 5.
//! * Later Go (etcd 3.6): the same pdqsort with the shifts 13, 7, 17.
//!
//! Only `less` and `swap` on indices are used, exactly as Go calls them on
//! its `sort.Interface`, so the final order equals Go's for any input.

/// Which Go release's `sort.Sort` to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoSort {
    /// Go 1.16 / 1.17 introsort.
    Go116,
    /// Go 1.19 / 1.20 pdqsort.
    Go119,
    /// pdqsort of later Go releases (different xorshift shifts).
    Go121,
}

/// Sorts `v` as Go's `sort.Sort` would with `less` as `Less(i, j)`.
pub fn sort_by<T>(v: &mut [T], algo: GoSort, less: impl Fn(&T, &T) -> bool) {
    let mut d = Data { v, less };
    let n = d.v.len();
    match algo {
        GoSort::Go116 => quick_sort(&mut d, 0, n, max_depth(n)),
        GoSort::Go119 | GoSort::Go121 => {
            if n > 1 {
                let shifts = if algo == GoSort::Go119 {
                    (13, 17, 5)
                } else {
                    (13, 7, 17)
                };
                pdqsort(&mut d, 0, n, bits_len(n), shifts);
            }
        }
    }
}

struct Data<'v, T, F> {
    v: &'v mut [T],
    less: F,
}

impl<T, F: Fn(&T, &T) -> bool> Data<'_, T, F> {
    // Indices come from the algorithms below, which keep them in 0..len;
    // a stray one compares as "not less" rather than panicking.
    fn less(&self, i: usize, j: usize) -> bool {
        match (self.v.get(i), self.v.get(j)) {
            (Some(a), Some(b)) => (self.less)(a, b),
            _ => false,
        }
    }

    fn swap(&mut self, i: usize, j: usize) {
        if i < self.v.len() && j < self.v.len() {
            self.v.swap(i, j);
        }
    }
}

fn bits_len(n: usize) -> usize {
    (usize::BITS - n.leading_zeros()) as usize
}

fn max_depth(n: usize) -> usize {
    bits_len(n) * 2
}

fn insertion_sort<T, F: Fn(&T, &T) -> bool>(d: &mut Data<'_, T, F>, a: usize, b: usize) {
    for i in a + 1..b {
        let mut j = i;
        while j > a && d.less(j, j - 1) {
            d.swap(j, j - 1);
            j -= 1;
        }
    }
}

fn sift_down<T, F: Fn(&T, &T) -> bool>(d: &mut Data<'_, T, F>, lo: usize, hi: usize, first: usize) {
    let mut root = lo;
    loop {
        let mut child = 2 * root + 1;
        if child >= hi {
            return;
        }
        if child + 1 < hi && d.less(first + child, first + child + 1) {
            child += 1;
        }
        if !d.less(first + root, first + child) {
            return;
        }
        d.swap(first + root, first + child);
        root = child;
    }
}

fn heap_sort<T, F: Fn(&T, &T) -> bool>(d: &mut Data<'_, T, F>, a: usize, b: usize) {
    let first = a;
    let hi = b - a;
    for i in (0..=(hi.saturating_sub(1)) / 2).rev() {
        if hi == 0 {
            break;
        }
        sift_down(d, i, hi, first);
    }
    for i in (0..hi).rev() {
        d.swap(first, first + i);
        sift_down(d, 0, i, first);
    }
}

// ---------------------------------------------------------------- Go 1.16

fn median_of_three<T, F: Fn(&T, &T) -> bool>(
    d: &mut Data<'_, T, F>,
    m1: usize,
    m0: usize,
    m2: usize,
) {
    if d.less(m1, m0) {
        d.swap(m1, m0);
    }
    if d.less(m2, m1) {
        d.swap(m2, m1);
        if d.less(m1, m0) {
            d.swap(m1, m0);
        }
    }
}

fn do_pivot<T, F: Fn(&T, &T) -> bool>(
    d: &mut Data<'_, T, F>,
    lo: usize,
    hi: usize,
) -> (usize, usize) {
    let m = (lo + hi) >> 1;
    if hi - lo > 40 {
        let s = (hi - lo) / 8;
        median_of_three(d, lo, lo + s, lo + 2 * s);
        median_of_three(d, m, m - s, m + s);
        median_of_three(d, hi - 1, hi - 1 - s, hi - 1 - 2 * s);
    }
    median_of_three(d, lo, m, hi - 1);

    let pivot = lo;
    let (mut a, mut c) = (lo + 1, hi - 1);
    while a < c && d.less(a, pivot) {
        a += 1;
    }
    let mut b = a;
    loop {
        while b < c && !d.less(pivot, b) {
            b += 1;
        }
        while b < c && d.less(pivot, c - 1) {
            c -= 1;
        }
        if b >= c {
            break;
        }
        d.swap(b, c - 1);
        b += 1;
        c -= 1;
    }
    let mut protect = hi - c < 5;
    if !protect && hi - c < (hi - lo) / 4 {
        let mut dups = 0;
        if !d.less(pivot, hi - 1) {
            d.swap(c, hi - 1);
            c += 1;
            dups += 1;
        }
        if !d.less(b - 1, pivot) {
            b -= 1;
            dups += 1;
        }
        if !d.less(m, pivot) {
            d.swap(m, b - 1);
            b -= 1;
            dups += 1;
        }
        protect = dups > 1;
    }
    if protect {
        loop {
            while a < b && !d.less(b - 1, pivot) {
                b -= 1;
            }
            while a < b && d.less(a, pivot) {
                a += 1;
            }
            if a >= b {
                break;
            }
            d.swap(a, b - 1);
            a += 1;
            b -= 1;
        }
    }
    d.swap(pivot, b - 1);
    (b - 1, c)
}

fn quick_sort<T, F: Fn(&T, &T) -> bool>(
    d: &mut Data<'_, T, F>,
    mut a: usize,
    mut b: usize,
    mut depth: usize,
) {
    while b - a > 12 {
        if depth == 0 {
            heap_sort(d, a, b);
            return;
        }
        depth -= 1;
        let (mlo, mhi) = do_pivot(d, a, b);
        if mlo - a < b - mhi {
            quick_sort(d, a, mlo, depth);
            a = mhi;
        } else {
            quick_sort(d, mhi, b, depth);
            b = mlo;
        }
    }
    if b - a > 1 {
        for i in a + 6..b {
            if d.less(i, i - 6) {
                d.swap(i, i - 6);
            }
        }
        insertion_sort(d, a, b);
    }
}

// ---------------------------------------------------------------- Go 1.19+

#[derive(PartialEq, Eq)]
enum Hint {
    Unknown,
    Increasing,
    Decreasing,
}

type Shifts = (u32, u32, u32);

fn pdqsort<T, F: Fn(&T, &T) -> bool>(
    d: &mut Data<'_, T, F>,
    mut a: usize,
    mut b: usize,
    mut limit: usize,
    shifts: Shifts,
) {
    const MAX_INSERTION: usize = 12;
    let mut was_balanced = true;
    let mut was_partitioned = true;
    loop {
        let length = b - a;
        if length <= MAX_INSERTION {
            insertion_sort(d, a, b);
            return;
        }
        if limit == 0 {
            heap_sort(d, a, b);
            return;
        }
        if !was_balanced {
            break_patterns(d, a, b, shifts);
            limit -= 1;
        }
        let (mut pivot, mut hint) = choose_pivot(d, a, b);
        if hint == Hint::Decreasing {
            reverse_range(d, a, b);
            pivot = (b - 1) - (pivot - a);
            hint = Hint::Increasing;
        }
        if was_balanced
            && was_partitioned
            && hint == Hint::Increasing
            && partial_insertion_sort(d, a, b)
        {
            return;
        }
        if a > 0 && !d.less(a - 1, pivot) {
            a = partition_equal(d, a, b, pivot);
            continue;
        }
        let (mid, already) = partition(d, a, b, pivot);
        was_partitioned = already;
        let (left, right) = (mid - a, b - mid);
        let threshold = length / 8;
        if left < right {
            was_balanced = left >= threshold;
            pdqsort(d, a, mid, limit, shifts);
            a = mid + 1;
        } else {
            was_balanced = right >= threshold;
            pdqsort(d, mid + 1, b, limit, shifts);
            b = mid;
        }
    }
}

fn partition<T, F: Fn(&T, &T) -> bool>(
    d: &mut Data<'_, T, F>,
    a: usize,
    b: usize,
    pivot: usize,
) -> (usize, bool) {
    d.swap(a, pivot);
    // Go uses signed ints: j may step to a (never below a, as data[a] is the
    // pivot and `!less(a, a)` holds).
    let (mut i, mut j) = (a + 1, b - 1);
    while i <= j && d.less(i, a) {
        i += 1;
    }
    while i <= j && !d.less(j, a) {
        j -= 1;
    }
    if i > j {
        d.swap(j, a);
        return (j, true);
    }
    d.swap(i, j);
    i += 1;
    j -= 1;
    loop {
        while i <= j && d.less(i, a) {
            i += 1;
        }
        while i <= j && !d.less(j, a) {
            j -= 1;
        }
        if i > j {
            break;
        }
        d.swap(i, j);
        i += 1;
        j -= 1;
    }
    d.swap(j, a);
    (j, false)
}

fn partition_equal<T, F: Fn(&T, &T) -> bool>(
    d: &mut Data<'_, T, F>,
    a: usize,
    b: usize,
    pivot: usize,
) -> usize {
    d.swap(a, pivot);
    let (mut i, mut j) = (a + 1, b - 1);
    loop {
        while i <= j && !d.less(a, i) {
            i += 1;
        }
        while i <= j && d.less(a, j) {
            j -= 1;
        }
        if i > j {
            break;
        }
        d.swap(i, j);
        i += 1;
        j -= 1;
    }
    i
}

fn partial_insertion_sort<T, F: Fn(&T, &T) -> bool>(
    d: &mut Data<'_, T, F>,
    a: usize,
    b: usize,
) -> bool {
    const MAX_STEPS: usize = 5;
    const SHORTEST_SHIFTING: usize = 50;
    let mut i = a + 1;
    for _ in 0..MAX_STEPS {
        while i < b && !d.less(i, i - 1) {
            i += 1;
        }
        if i == b {
            return true;
        }
        if b - a < SHORTEST_SHIFTING {
            return false;
        }
        d.swap(i, i - 1);
        if i - a >= 2 {
            // Go's loop runs down to index 1, not to a + 1.
            let mut j = i - 1;
            while j >= 1 {
                if !d.less(j, j - 1) {
                    break;
                }
                d.swap(j, j - 1);
                j -= 1;
            }
        }
        if b - i >= 2 {
            let mut j = i + 1;
            while j < b {
                if !d.less(j, j - 1) {
                    break;
                }
                d.swap(j, j - 1);
                j += 1;
            }
        }
    }
    false
}

fn break_patterns<T, F: Fn(&T, &T) -> bool>(
    d: &mut Data<'_, T, F>,
    a: usize,
    b: usize,
    shifts: Shifts,
) {
    let length = b - a;
    if length >= 8 {
        let mut random = length as u64;
        let modulus = 1usize << bits_len(length);
        let start = a + (length / 4) * 2 - 1;
        for idx in start..=start + 2 {
            random ^= random << shifts.0;
            random ^= random >> shifts.1;
            random ^= random << shifts.2;
            let mut other = (random as usize) & (modulus - 1);
            if other >= length {
                other -= length;
            }
            d.swap(idx, a + other);
        }
    }
}

fn choose_pivot<T, F: Fn(&T, &T) -> bool>(
    d: &mut Data<'_, T, F>,
    a: usize,
    b: usize,
) -> (usize, Hint) {
    const SHORTEST_NINTHER: usize = 50;
    const MAX_SWAPS: usize = 4 * 3;
    let l = b - a;
    let mut swaps = 0;
    let mut i = a + l / 4;
    let mut j = a + l / 4 * 2;
    let mut k = a + l / 4 * 3;
    if l >= 8 {
        if l >= SHORTEST_NINTHER {
            i = median(d, i - 1, i, i + 1, &mut swaps);
            j = median(d, j - 1, j, j + 1, &mut swaps);
            k = median(d, k - 1, k, k + 1, &mut swaps);
        }
        j = median(d, i, j, k, &mut swaps);
    }
    match swaps {
        0 => (j, Hint::Increasing),
        MAX_SWAPS => (j, Hint::Decreasing),
        _ => (j, Hint::Unknown),
    }
}

fn order2<T, F: Fn(&T, &T) -> bool>(
    d: &Data<'_, T, F>,
    a: usize,
    b: usize,
    swaps: &mut usize,
) -> (usize, usize) {
    if d.less(b, a) {
        *swaps += 1;
        (b, a)
    } else {
        (a, b)
    }
}

fn median<T, F: Fn(&T, &T) -> bool>(
    d: &Data<'_, T, F>,
    a: usize,
    b: usize,
    c: usize,
    swaps: &mut usize,
) -> usize {
    let (a, b) = order2(d, a, b, swaps);
    let (b, c) = order2(d, b, c, swaps);
    let (_a, b) = order2(d, a, b, swaps);
    let _ = c;
    b
}

fn reverse_range<T, F: Fn(&T, &T) -> bool>(d: &mut Data<'_, T, F>, a: usize, b: usize) {
    let (mut i, mut j) = (a, b - 1);
    while i < j {
        d.swap(i, j);
        i += 1;
        j -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_like_a_sort() {
        let mut seed = 7u64;
        for algo in [GoSort::Go116, GoSort::Go119, GoSort::Go121] {
            for n in [0usize, 1, 2, 5, 12, 13, 40, 41, 50, 51, 100, 1000, 5000] {
                let mut v: Vec<u32> = (0..n)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        (seed % 50) as u32
                    })
                    .collect();
                let mut want = v.clone();
                want.sort();
                sort_by(&mut v, algo, |a, b| a < b);
                assert_eq!(v, want, "{algo:?} n={n}");
                // Reverse-sorted and already sorted inputs.
                let mut r: Vec<u32> = (0..n as u32).rev().collect();
                sort_by(&mut r, algo, |a, b| a < b);
                assert!(r.windows(2).all(|w| w[0] <= w[1]));
            }
        }
    }

    #[test]
    fn small_slices_are_stable_insertion_sorts() {
        // At most 6 elements: Go 1.16's shell pass does nothing and both
        // algorithms are a plain insertion sort, hence stable.
        let mut v = [(1, 'a'), (0, 'b'), (1, 'c'), (0, 'd'), (1, 'e'), (0, 'f')];
        for algo in [GoSort::Go116, GoSort::Go119] {
            let mut w = v;
            sort_by(&mut w, algo, |a, b| a.0 < b.0);
            assert_eq!(
                w,
                [(0, 'b'), (0, 'd'), (0, 'f'), (1, 'a'), (1, 'c'), (1, 'e')]
            );
        }
        // Seven: the gap-6 pass of Go 1.16 swaps the ends first.
        let mut seven = [
            (1, 'a'),
            (1, 'b'),
            (1, 'c'),
            (1, 'd'),
            (1, 'e'),
            (1, 'f'),
            (0, 'g'),
        ];
        sort_by(&mut seven, GoSort::Go116, |a, b| a.0 < b.0);
        assert_eq!(seven[0], (0, 'g'));
        assert_eq!(seven[6], (1, 'a'));
        v.reverse();
        let _ = v;
    }
}
