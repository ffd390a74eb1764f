//! Exact minimum-cost assignment (the linear sum assignment problem): the Jonker–Volgenant
//! algorithm (LAPJV, Computing 38, 1987).
//!
//! Used for the exact W2 between point sets and for minibatch optimal-transport couplings
//! (OT-CFM): pairing each source point with a data point so that the total squared distance is
//! smallest.
//!
//! LAPJV keeps column prices `v` and the invariant that every assigned row holds one of its
//! cheapest columns under the reduced costs `c(i, j) − v(j)`. Three cheap phases assign most rows
//! (column reduction, reduction transfer, augmenting row reduction); the rest are assigned by
//! Dijkstra-style shortest augmenting paths. O(n³) in the worst case; on 2-D point sets n = 2000
//! takes tens of milliseconds where plain shortest augmenting paths take seconds.

const NONE: usize = usize::MAX;

/// The assignment minimising `Σᵢ cost(i, σ(i))` over permutations σ of `0..n`: returns σ, i.e.
/// `result[i]` is the column assigned to row `i`. `cost` must be finite.
#[allow(
    clippy::needless_range_loop,
    clippy::mut_range_bound,
    reason = "column indices are values here, and the scans start at the `up` of their start, \
              as in Jonker and Volgenant's formulation, while `up` moves"
)]
pub fn solve(n: usize, cost: impl Fn(usize, usize) -> f64) -> Vec<usize> {
    if n <= 1 {
        return (0..n).collect();
    }
    let mut v = vec![0.0_f64; n];
    let mut row_sol = vec![NONE; n];
    let mut col_sol = vec![NONE; n];

    // Column reduction: each column's price is its cheapest entry; that row takes the column
    // unless it already holds a cheaper one.
    let mut matches = vec![0_u32; n];
    for j in (0..n).rev() {
        let (mut min, mut i_min) = (cost(0, j), 0);
        for i in 1..n {
            let c = cost(i, j);
            if c < min {
                min = c;
                i_min = i;
            }
        }
        v[j] = min;
        matches[i_min] += 1;
        if matches[i_min] == 1 {
            row_sol[i_min] = j;
            col_sol[j] = i_min;
        } else if v[j] < v[row_sol[i_min]] {
            let j1 = row_sol[i_min];
            row_sol[i_min] = j;
            col_sol[j] = i_min;
            col_sol[j1] = NONE;
        } else {
            col_sol[j] = NONE;
        }
    }

    // Reduction transfer: a row matched once lowers its column's price to its second-best
    // reduced cost, so that other rows find the column less attractive.
    let mut free = Vec::new();
    for i in 0..n {
        match matches[i] {
            0 => free.push(i),
            1 => {
                let j1 = row_sol[i];
                let min = (0..n)
                    .filter(|&j| j != j1)
                    .map(|j| cost(i, j) - v[j])
                    .fold(f64::INFINITY, f64::min);
                v[j1] -= min;
            }
            _ => {}
        }
    }

    // Augmenting row reduction, two passes (an auction-like phase).
    for _ in 0..2 {
        let mut list = std::mem::take(&mut free);
        let mut k = 0;
        let mut budget = 8 * n;
        while k < list.len() {
            if budget == 0 {
                // Leave the rest to the augmentation phase (the invariant holds throughout).
                free.extend_from_slice(&list[k..]);
                break;
            }
            budget -= 1;
            let i = list[k];
            k += 1;
            let (mut u_min, mut j1) = (cost(i, 0) - v[0], 0);
            let (mut u_sub_min, mut j2) = (f64::INFINITY, NONE);
            for j in 1..n {
                let h = cost(i, j) - v[j];
                if h < u_sub_min {
                    if h >= u_min {
                        u_sub_min = h;
                        j2 = j;
                    } else {
                        u_sub_min = u_min;
                        u_min = h;
                        j2 = j1;
                        j1 = j;
                    }
                }
            }
            let mut i0 = col_sol[j1];
            let strictly_best = u_min < u_sub_min;
            if strictly_best {
                // Lower the price so that j1 stays (tied) best for row i.
                v[j1] -= u_sub_min - u_min;
            } else if i0 != NONE {
                // A tie with an assigned column: take the second one instead.
                j1 = j2;
                i0 = col_sol[j2];
            }
            row_sol[i] = j1;
            col_sol[j1] = i;
            if i0 != NONE {
                if strictly_best {
                    // The displaced row is reconsidered at once.
                    k -= 1;
                    list[k] = i0;
                } else {
                    free.push(i0);
                }
            }
        }
    }

    // Augmentation: a shortest augmenting path from each remaining free row.
    let mut d = vec![0.0_f64; n];
    let mut pred = vec![0_usize; n];
    let mut col_list: Vec<usize> = (0..n).collect();
    for &free_row in &free {
        for j in 0..n {
            d[j] = cost(free_row, j) - v[j];
            pred[j] = free_row;
            col_list[j] = j;
        }
        // col_list[..low] are final (scanned), [low..up) are at the current minimum distance
        // and wait to be scanned, [up..] are the rest.
        let (mut low, mut up) = (0, 0);
        let mut ready = 0;
        let mut min = 0.0;
        let end_of_path = 'search: loop {
            if up == low {
                ready = low;
                min = d[col_list[up]];
                up += 1;
                for k in up..n {
                    let j = col_list[k];
                    let h = d[j];
                    if h <= min {
                        if h < min {
                            up = low;
                            min = h;
                        }
                        col_list[k] = col_list[up];
                        col_list[up] = j;
                        up += 1;
                    }
                }
                for &j in &col_list[low..up] {
                    if col_sol[j] == NONE {
                        break 'search j;
                    }
                }
            }
            let j1 = col_list[low];
            low += 1;
            let i = col_sol[j1];
            let h = cost(i, j1) - v[j1] - min;
            for k in up..n {
                let j = col_list[k];
                let v2 = cost(i, j) - v[j] - h;
                if v2 < d[j] {
                    pred[j] = i;
                    #[allow(clippy::float_cmp, reason = "exactly at the current minimum distance")]
                    let at_min = v2 == min;
                    if at_min {
                        if col_sol[j] == NONE {
                            break 'search j;
                        }
                        col_list[k] = col_list[up];
                        col_list[up] = j;
                        up += 1;
                    }
                    d[j] = v2;
                }
            }
        };
        // Update the prices of the columns whose distance became final.
        for &j in &col_list[..ready] {
            v[j] += d[j] - min;
        }
        // Flip the assignments along the path.
        let mut j = end_of_path;
        loop {
            let i = pred[j];
            col_sol[j] = i;
            let next = row_sol[i];
            row_sol[i] = j;
            if i == free_row {
                break;
            }
            j = next;
        }
    }
    row_sol
}

/// The assignment of `a` to `b` (equal sizes) minimising the total squared distance.
///
/// A non-finite coordinate (samples of a diverged model) costs [`UNREACHABLE`] to every partner,
/// so the solver still sees finite costs and returns a permutation; callers that report a
/// distance check finiteness first ([`crate::metrics::wasserstein2`] does).
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
        let d = dx * dx + dy * dy;
        if d.is_finite() { d } else { UNREACHABLE }
    })
}

/// The cost given to a pair with a non-finite point: finite, and larger than any real squared
/// distance of f32 points (at most about 1.2·10⁷⁷), with room for the solver's sums.
pub const UNREACHABLE: f64 = 1e100;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Plain shortest augmenting paths with dual potentials (Crouse 2016, scipy's algorithm):
    /// slower but simple, the oracle for LAPJV on sizes brute force cannot reach.
    fn solve_simple(n: usize, cost: impl Fn(usize, usize) -> f64) -> Vec<usize> {
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
                    if shortest[j] < lowest {
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

    #[test]
    fn non_finite_points_do_not_panic() {
        let a = [
            [0.0, 0.0],
            [f32::NAN, 1.0],
            [f32::INFINITY, 0.0],
            [1.0, 1.0],
        ];
        let b = [[1.0, 1.0], [0.0, 0.0], [3e38, -3e38], [2.0, 2.0]];
        // Costs of 10¹⁰⁰ swamp the real ones, so only a permutation is promised.
        let mut sigma = match_points(&a, &b);
        sigma.sort_unstable();
        assert_eq!(sigma, vec![0, 1, 2, 3]);
    }

    #[test]
    fn matches_the_simple_solver_on_larger_problems() {
        let mut rng = Rng::new(4);
        for n in [2, 3, 10, 37, 100, 211] {
            for integer in [true, false] {
                let cost: Vec<Vec<f64>> = (0..n)
                    .map(|_| {
                        (0..n)
                            .map(|_| {
                                let c = f64::from(rng.uniform()) * 20.0;
                                if integer { c.round() } else { c }
                            })
                            .collect()
                    })
                    .collect();
                let fast = solve(n, |i, j| cost[i][j]);
                let simple = solve_simple(n, |i, j| cost[i][j]);
                let mut sorted = fast.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "not a permutation");
                let (a, b) = (total(&cost, &fast), total(&cost, &simple));
                assert!((a - b).abs() < 1e-9 * (1.0 + b.abs()), "n {n}: {a} vs {b}");
            }
        }
        // Geometric costs between mismatched point sets, the W2 and OT case.
        let a: Vec<[f32; 2]> = (0..300).map(|_| [rng.normal(), rng.normal()]).collect();
        let b = crate::data::Dataset::Moons.sample(300, 9).xy;
        let c = |i: usize, j: usize| {
            f64::from(a[i][0] - b[j][0]).powi(2) + f64::from(a[i][1] - b[j][1]).powi(2)
        };
        let cost: Vec<Vec<f64>> = (0..300)
            .map(|i| (0..300).map(|j| c(i, j)).collect())
            .collect();
        let (x, y) = (
            total(&cost, &solve(300, c)),
            total(&cost, &solve_simple(300, c)),
        );
        assert!((x - y).abs() < 1e-9 * y, "{x} vs {y}");
    }

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
