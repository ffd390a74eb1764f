//! Exact minimum-cost assignment (the linear sum assignment problem) by shortest augmenting
//! paths with dual potentials (Jonker–Volgenant; Crouse 2016, the algorithm behind scipy's
//! `linear_sum_assignment`). O(n³) in the worst case, much less on geometric costs.
//!
//! Used for the exact W2 between point sets and for minibatch optimal-transport couplings
//! (OT-CFM): pairing each source point with a data point so that the total squared distance is
//! smallest.

/// The assignment minimising `Σᵢ cost(i, σ(i))` over permutations σ of `0..n`: returns σ, i.e.
/// `result[i]` is the column assigned to row `i`. `cost` must be finite.
pub fn solve(n: usize, cost: impl Fn(usize, usize) -> f64) -> Vec<usize> {
    const NONE: usize = usize::MAX;
    let mut u = vec![0.0_f64; n];
    let mut v = vec![0.0_f64; n];
    let mut shortest = vec![f64::INFINITY; n];
    let mut path = vec![NONE; n];
    let mut col_for_row = vec![NONE; n];
    let mut row_for_col = vec![NONE; n];
    let mut row_seen = vec![false; n];
    let mut col_seen = vec![false; n];
    let mut remaining: Vec<usize> = Vec::with_capacity(n);

    for current_row in 0..n {
        // Dijkstra over the reduced costs from `current_row` to the nearest free column.
        remaining.clear();
        remaining.extend((0..n).rev());
        row_seen.iter_mut().for_each(|s| *s = false);
        col_seen.iter_mut().for_each(|s| *s = false);
        shortest.iter_mut().for_each(|s| *s = f64::INFINITY);
        let mut min_val = 0.0_f64;
        let mut i = current_row;
        let sink = loop {
            row_seen[i] = true;
            let mut lowest = f64::INFINITY;
            let mut index = 0;
            for (it, &j) in remaining.iter().enumerate() {
                let reduced = min_val + cost(i, j) - u[i] - v[j];
                if reduced < shortest[j] {
                    path[j] = i;
                    shortest[j] = reduced;
                }
                // On exact ties prefer a free column: it ends the search sooner.
                #[allow(
                    clippy::float_cmp,
                    reason = "an exact tie, as in scipy's implementation"
                )]
                let tie = shortest[j] == lowest;
                if shortest[j] < lowest || (tie && row_for_col[j] == NONE) {
                    lowest = shortest[j];
                    index = it;
                }
            }
            min_val = lowest;
            let j = remaining.swap_remove(index);
            col_seen[j] = true;
            if row_for_col[j] == NONE {
                break j;
            }
            i = row_for_col[j];
        };

        // Update the dual potentials.
        u[current_row] += min_val;
        for row in 0..n {
            if row_seen[row] && row != current_row {
                u[row] += min_val - shortest[col_for_row[row]];
            }
        }
        for col in 0..n {
            if col_seen[col] {
                v[col] -= min_val - shortest[col];
            }
        }
        // Augment along the path back to `current_row`.
        let mut j = sink;
        loop {
            let row = path[j];
            row_for_col[j] = row;
            std::mem::swap(&mut col_for_row[row], &mut j);
            if row == current_row {
                break;
            }
        }
    }
    col_for_row
}

/// The assignment of `a` to `b` (equal sizes) minimising the total squared distance.
pub fn match_points(a: &[[f32; 2]], b: &[[f32; 2]]) -> Vec<usize> {
    assert_eq!(a.len(), b.len(), "match_points needs equal sizes");
    let a64: Vec<[f64; 2]> = a
        .iter()
        .map(|p| [f64::from(p[0]), f64::from(p[1])])
        .collect();
    let b64: Vec<[f64; 2]> = b
        .iter()
        .map(|p| [f64::from(p[0]), f64::from(p[1])])
        .collect();
    solve(a.len(), |i, j| {
        let dx = a64[i][0] - b64[j][0];
        let dy = a64[i][1] - b64[j][1];
        dx * dx + dy * dy
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn total(cost: &[Vec<f64>], sigma: &[usize]) -> f64 {
        sigma.iter().enumerate().map(|(i, &j)| cost[i][j]).sum()
    }

    /// All permutations of 0..n (Heap's algorithm), for brute force.
    fn permutations(n: usize) -> Vec<Vec<usize>> {
        fn heap(k: usize, a: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
            if k == 1 {
                out.push(a.clone());
                return;
            }
            for i in 0..k {
                heap(k - 1, a, out);
                let j = if k.is_multiple_of(2) { i } else { 0 };
                a.swap(j, k - 1);
            }
        }
        let mut a: Vec<usize> = (0..n).collect();
        let mut out = Vec::new();
        heap(n, &mut a, &mut out);
        out
    }

    #[test]
    fn matches_brute_force() {
        let mut rng = Rng::new(1);
        for n in 1..=7 {
            for _ in 0..20 {
                let cost: Vec<Vec<f64>> = (0..n)
                    .map(|_| {
                        (0..n)
                            .map(|_| f64::from(rng.uniform() * 10.0).round())
                            .collect()
                    })
                    .collect();
                let sigma = solve(n, |i, j| cost[i][j]);
                let mut sorted = sigma.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "not a permutation");
                let best = permutations(n)
                    .iter()
                    .map(|p| total(&cost, p))
                    .fold(f64::INFINITY, f64::min);
                assert!((total(&cost, &sigma) - best).abs() < 1e-9, "n = {n}");
            }
        }
    }

    #[test]
    fn translation_keeps_identity() {
        let mut rng = Rng::new(2);
        let a: Vec<[f32; 2]> = (0..300).map(|_| [rng.normal(), rng.normal()]).collect();
        let b: Vec<[f32; 2]> = a.iter().map(|p| [p[0] + 0.7, p[1] - 0.2]).collect();
        let sigma = match_points(&a, &b);
        assert!(sigma.iter().enumerate().all(|(i, &j)| i == j));
    }
}
