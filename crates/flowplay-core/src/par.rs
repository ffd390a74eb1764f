//! Data parallelism that degrades to a plain loop where there are no threads (the web).
//!
//! Work is always split the same way whatever the number of threads, and results are combined in
//! a fixed order, so a run gives bit-identical results on one core or many.

/// Calls `f` on every item, in parallel where threads exist.
pub fn for_each_mut<T: Send>(items: &mut [T], f: impl Fn(&mut T) + Sync + Send) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        items.par_iter_mut().for_each(f);
    }
    #[cfg(target_arch = "wasm32")]
    items.iter_mut().for_each(f);
}

/// Splits `0..len` into `parts` contiguous ranges of nearly equal size.
pub fn split_even(len: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let parts = parts.max(1);
    let base = len / parts;
    let extra = len % parts;
    let mut start = 0;
    (0..parts)
        .map(|i| {
            let size = base + usize::from(i < extra);
            let range = start..start + size;
            start += size;
            range
        })
        .collect()
}

/// Splits the first `len` elements off `rest` (fewer if it is shorter), leaving the remainder:
/// for handing disjoint parts of one buffer to parallel jobs.
pub fn take_front<'a, T>(rest: &mut &'a mut [T], len: usize) -> &'a mut [T] {
    let slice = std::mem::take(rest);
    let (head, tail) = slice.split_at_mut(len.min(slice.len()));
    *rest = tail;
    head
}

/// Number of worker threads available.
pub fn threads() -> usize {
    #[cfg(not(target_arch = "wasm32"))]
    {
        rayon::current_num_threads()
    }
    #[cfg(target_arch = "wasm32")]
    {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_even_covers_everything() {
        let ranges = split_even(10, 3);
        assert_eq!(ranges, vec![0..4, 4..7, 7..10]);
        assert_eq!(split_even(0, 2), vec![0..0, 0..0]);
    }
}
