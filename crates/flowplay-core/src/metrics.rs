//! Sample-quality and flow-geometry metrics.
//!
//! - [`wasserstein2`]: the exact 2-Wasserstein distance between two equal-size point sets (an
//!   optimal assignment), reported as W2, not W2².
//! - [`sliced_wasserstein2`]: the mean over directions of the 1-D W2² of the projections, scaled
//!   by the dimension so that, like W2, a shift by d gives d.
//! - [`mmd_rbf`]: maximum mean discrepancy with a sum of Gaussian kernels.
//! - [`straightness`] and [`path_energy`] of recorded trajectories (Liu et al. 2022).

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::assignment;
use crate::par;
use crate::sampler::Trajectories;

/// Exact W2 = `sqrt(min_σ (1/n)·Σ‖aᵢ − b_σ(i)‖²)` between equal-size sets.
pub fn wasserstein2(a: &[[f32; 2]], b: &[[f32; 2]]) -> Result<f64, Error> {
    check_sizes(a, b)?;
    let sigma = assignment::match_points(a, b);
    let total: f64 = sigma
        .iter()
        .enumerate()
        .map(|(i, &j)| squared_distance(a[i], b[j]))
        .sum();
    Ok((total / a.len() as f64).sqrt())
}

fn check_sizes(a: &[[f32; 2]], b: &[[f32; 2]]) -> Result<(), Error> {
    if a.is_empty() || a.len() != b.len() {
        return Err(Error::config(format!(
            "the two point sets must be non-empty and of equal size, got {} and {}",
            a.len(),
            b.len()
        )));
    }
    for (set, points) in [("samples", a), ("reference points", b)] {
        if let Some(i) = points
            .iter()
            .position(|p| !p[0].is_finite() || !p[1].is_finite())
        {
            return Err(Error::config(format!(
                "the {set} hold a non-finite value at point {i} ({}, {}): the flow blew up, \
                 so no distance can be measured",
                points[i][0], points[i][1]
            )));
        }
    }
    Ok(())
}

fn squared_distance(a: [f32; 2], b: [f32; 2]) -> f64 {
    let dx = f64::from(a[0]) - f64::from(b[0]);
    let dy = f64::from(a[1]) - f64::from(b[1]);
    dx * dx + dy * dy
}

/// Sliced W2 over `directions` evenly spaced directions in [0, π), times √2: for a pure shift by
/// d it equals |d| exactly (the mean of cos² over evenly spaced angles is ½).
pub fn sliced_wasserstein2(
    a: &[[f32; 2]],
    b: &[[f32; 2]],
    directions: usize,
) -> Result<f64, Error> {
    check_sizes(a, b)?;
    let directions = directions.max(2);
    let mut pa = vec![0.0_f64; a.len()];
    let mut pb = vec![0.0_f64; b.len()];
    let mut sum = 0.0;
    for k in 0..directions {
        let angle = std::f64::consts::PI * k as f64 / directions as f64;
        let (s, c) = angle.sin_cos();
        for (out, p) in pa.iter_mut().zip(a) {
            *out = c * f64::from(p[0]) + s * f64::from(p[1]);
        }
        for (out, p) in pb.iter_mut().zip(b) {
            *out = c * f64::from(p[0]) + s * f64::from(p[1]);
        }
        pa.sort_unstable_by(f64::total_cmp);
        pb.sort_unstable_by(f64::total_cmp);
        sum += pa
            .iter()
            .zip(&pb)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f64>()
            / a.len() as f64;
    }
    Ok((2.0 * sum / directions as f64).sqrt())
}

/// Kernel bandwidths for [`mmd_rbf`], spanning the scales of the 2-D datasets.
pub const MMD_BANDWIDTHS: [f64; 4] = [0.1, 0.3, 1.0, 3.0];

/// `MMD = sqrt(max(0, MMD²))` with the biased (V-statistic) estimator and the kernel
/// `k(x, y) = (1/|H|)·Σ_h exp(−‖x − y‖²/(2h²))`. Zero for identical sets.
pub fn mmd_rbf(a: &[[f32; 2]], b: &[[f32; 2]], bandwidths: &[f64]) -> Result<f64, Error> {
    if a.is_empty() || b.is_empty() || bandwidths.is_empty() {
        return Err(Error::config("MMD needs two non-empty point sets"));
    }
    let gammas: Vec<f64> = bandwidths.iter().map(|h| -0.5 / (h * h)).collect();
    let mean_kernel = |x: &[[f32; 2]], y: &[[f32; 2]]| -> f64 {
        let ranges = par::split_even(x.len(), 16);
        let mut partial: Vec<(std::ops::Range<usize>, f64)> =
            ranges.into_iter().map(|r| (r, 0.0)).collect();
        par::for_each_mut(&mut partial, |(range, acc)| {
            let mut sum = 0.0;
            for &p in &x[range.clone()] {
                for &q in y {
                    let d2 = squared_distance(p, q);
                    sum += gammas.iter().map(|g| (g * d2).exp()).sum::<f64>();
                }
            }
            *acc = sum;
        });
        let total: f64 = partial.iter().map(|(_, s)| s).sum();
        total / (x.len() * y.len() * gammas.len()) as f64
    };
    let mmd2 = mean_kernel(a, a) + mean_kernel(b, b) - 2.0 * mean_kernel(a, b);
    Ok(mmd2.max(0.0).sqrt())
}

/// Liu et al.'s straightness `S = E ∫₀¹ ‖(x₁ − x₀) − v(t, x_t)‖² dt` along recorded trajectories
/// (positions and velocities at the grid nodes; trapezoid rule in t). Zero for straight paths
/// travelled at constant speed.
pub fn straightness(traj: &Trajectories) -> Result<f64, Error> {
    path_integral(traj, |delta, v| {
        let (dx, dy) = (f64::from(delta[0] - v[0]), f64::from(delta[1] - v[1]));
        dx * dx + dy * dy
    })
    .map(|(value, _)| value)
}

/// Normalised path energy `E ∫₀¹ ‖v(t, x_t)‖² dt / E ‖x₁ − x₀‖²`: 1 for straight
/// constant-speed paths, larger for curved ones (kinetic energy over that of the straight line).
pub fn path_energy(traj: &Trajectories) -> Result<f64, Error> {
    let (energy, displacement) = path_integral(traj, |_, v| {
        f64::from(v[0]).powi(2) + f64::from(v[1]).powi(2)
    })?;
    Ok(energy / displacement.max(f64::MIN_POSITIVE))
}

/// `E ∫ f(x₁ − x₀, v) dt` by the trapezoid rule, and `E ‖x₁ − x₀‖²`.
fn path_integral(
    traj: &Trajectories,
    f: impl Fn([f32; 2], [f32; 2]) -> f64,
) -> Result<(f64, f64), Error> {
    let frames = traj.frames();
    if frames < 2 || traj.positions.is_empty() || traj.velocities.len() != traj.positions.len() {
        return Err(Error::config(
            "straightness needs trajectories with positions and velocities recorded",
        ));
    }
    let n = traj.positions.len() / frames;
    let (mut integral, mut displacement) = (0.0, 0.0);
    for i in 0..n {
        let x = traj.positions_of(i);
        let v = traj.velocities_of(i);
        let delta = [x[frames - 1][0] - x[0][0], x[frames - 1][1] - x[0][1]];
        displacement += f64::from(delta[0]).powi(2) + f64::from(delta[1]).powi(2);
        for k in 0..frames - 1 {
            let dt = f64::from(traj.times[k + 1] - traj.times[k]).abs();
            integral += 0.5 * dt * (f(delta, v[k]) + f(delta, v[k + 1]));
        }
    }
    Ok((integral / n as f64, displacement / n as f64))
}

/// The quality of generated samples against held-out data.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// Exact W2.
    pub w2: f64,
    /// Sliced W2 (scaled to match W2 on shifts).
    pub sliced_w2: f64,
    /// RBF MMD.
    pub mmd: f64,
}

impl Quality {
    /// All three metrics between `samples` and `data` (equal sizes).
    pub fn measure(samples: &[[f32; 2]], data: &[[f32; 2]]) -> Result<Self, Error> {
        Ok(Self {
            w2: wasserstein2(samples, data)?,
            sliced_w2: sliced_wasserstein2(samples, data, 128)?,
            mmd: mmd_rbf(samples, data, &MMD_BANDWIDTHS)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Dataset;
    use crate::rng::Rng;

    #[test]
    fn non_finite_samples_are_an_error_not_a_panic() {
        let a = Dataset::Moons.sample(50, 1).xy;
        let mut b = a.clone();
        b[7] = [f32::NAN, 0.0];
        let text = Quality::measure(&b, &a).err().unwrap().to_string();
        assert!(text.contains("non-finite value at point 7"), "{text}");
        assert!(wasserstein2(&a, &b).is_err());
    }

    #[test]
    fn identical_sets_give_zero() {
        let a = Dataset::Moons.sample(500, 1).xy;
        assert!(wasserstein2(&a, &a).unwrap() < 1e-12);
        assert!(sliced_wasserstein2(&a, &a, 64).unwrap() < 1e-12);
        assert!(mmd_rbf(&a, &a, &MMD_BANDWIDTHS).unwrap() < 1e-6);
        // Order does not matter.
        let mut shuffled = a.clone();
        Rng::new(3).shuffle(&mut shuffled);
        assert!(wasserstein2(&a, &shuffled).unwrap() < 1e-12);
        assert!(sliced_wasserstein2(&a, &shuffled, 64).unwrap() < 1e-12);
    }

    #[test]
    fn a_shift_by_d_gives_d() {
        let a = Dataset::EightGaussians.sample(400, 2).xy;
        for d in [0.05_f32, 0.5, 2.0] {
            let shift = [d * 0.6, -d * 0.8];
            let b: Vec<[f32; 2]> = a
                .iter()
                .map(|p| [p[0] + shift[0], p[1] + shift[1]])
                .collect();
            let w2 = wasserstein2(&a, &b).unwrap();
            assert!((w2 - f64::from(d)).abs() < 1e-5, "W2 {w2} for shift {d}");
            let sw = sliced_wasserstein2(&a, &b, 64).unwrap();
            assert!(
                (sw - f64::from(d)).abs() < 1e-5,
                "sliced W2 {sw} for shift {d}"
            );
        }
    }

    #[test]
    fn mmd_grows_with_the_shift() {
        let a = Dataset::Moons.sample(400, 3).xy;
        let mut last = 0.0;
        for d in [0.1_f32, 0.5, 2.0] {
            let b: Vec<[f32; 2]> = a.iter().map(|p| [p[0] + d, p[1]]).collect();
            let m = mmd_rbf(&a, &b, &MMD_BANDWIDTHS).unwrap();
            assert!(m > last, "MMD {m} at shift {d}");
            last = m;
        }
    }

    #[test]
    fn independent_draws_of_moons_are_close() {
        // The brief's reference: two draws of 2000 real moons are at W2 ≈ 0.054.
        let a = Dataset::Moons.sample(2000, 10).xy;
        let b = Dataset::Moons.sample(2000, 11).xy;
        let w2 = wasserstein2(&a, &b).unwrap();
        assert!(w2 > 0.03 && w2 < 0.08, "W2 {w2}");
    }

    #[test]
    fn straight_paths_have_zero_straightness_and_unit_energy() {
        let times = crate::sampler::time_grid(10, 1.0);
        let n = 3;
        let mut traj = Trajectories {
            times: times.clone(),
            ..Trajectories::default()
        };
        for i in 0..n {
            let (x0, x1) = ([i as f32, 1.0], [2.0, -(i as f32)]);
            for &t in &times {
                traj.positions
                    .push([x0[0] + t * (x1[0] - x0[0]), x0[1] + t * (x1[1] - x0[1])]);
                traj.velocities.push([x1[0] - x0[0], x1[1] - x0[1]]);
            }
        }
        assert!(straightness(&traj).unwrap() < 1e-10);
        assert!((path_energy(&traj).unwrap() - 1.0).abs() < 1e-6);
    }
}
