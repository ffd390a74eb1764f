//! Conditional probability paths (QR §3) and the time distributions training draws t from
//! (QR §7.3).
//!
//! Convention (QR §1): t = 0 is the source (noise), t = 1 is the data. Every path here is linear
//! in the pair it interpolates,
//!
//! ```text
//! x_t = a(t)·x₀ + b(t)·x₁,      u_t = a'(t)·x₀ + b'(t)·x₁,
//! ```
//!
//! so one set of four coefficients describes it, and the endpoints a model's velocity implies are
//! recovered by solving that 2×2 system (see [`Path::predicted_data`]).

use serde::{Deserialize, Serialize};

use crate::Error;

/// A probability path between the source x₀ and the data x₁.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Path {
    /// Rectified flow (QR §3.1): `x_t = (1−t)·x₀ + t·x₁`, `u_t = x₁ − x₀`. With `sigma_min > 0`
    /// this is the TRELLIS form `x_t = t·x₁ + (1 − (1−σ_min)·t)·x₀`, `u_t = x₁ − (1−σ_min)·x₀`
    /// (TRELLIS's `x_t = (1−τ)·x_data + (σ_min + (1−σ_min)·τ)·ε` with τ = 1 − t).
    RectifiedFlow {
        /// Noise left at t = 1.
        sigma_min: f32,
    },
    /// Variance preserving, cosine schedule (QR §3.2):
    /// `x_t = cos(πt/2)·x₀ + sin(πt/2)·x₁`.
    VpCosine,
    /// Variance exploding (QR §3.3): `x_t = x₁ + σ(1−t)·x₀` with the log-linear
    /// `σ(s) = σ_min·(σ_max/σ_min)ˢ`. Its prior at t = 0 is `N(0, σ_max²·I)`: sampling starts from
    /// `σ_max·z` (see [`Path::prior_scale`]).
    Ve {
        /// σ at t = 1 (data end).
        sigma_min: f32,
        /// σ at t = 0 (noise end).
        sigma_max: f32,
        /// EDM preconditioning (Karras et al. 2022) with this data scale σ_data, or `None` for
        /// the seed's unpreconditioned VE, which does not train on 2-D data at σ_max = 50: its
        /// targets span five orders of magnitude. See [`Preconditioning`].
        sigma_data: Option<f32>,
    },
}

/// The coefficients of a linear path at one time: `x_t = a·x₀ + b·x₁`, `u_t = da·x₀ + db·x₁`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coefficients {
    /// Weight of the source x₀ in x_t.
    pub a: f32,
    /// Weight of the data x₁ in x_t.
    pub b: f32,
    /// `a'(t)`.
    pub da: f32,
    /// `b'(t)`.
    pub db: f32,
}

impl Coefficients {
    /// `x_t` for one pair.
    #[inline]
    pub fn interpolate(&self, x0: [f32; 2], x1: [f32; 2]) -> [f32; 2] {
        [
            self.a * x0[0] + self.b * x1[0],
            self.a * x0[1] + self.b * x1[1],
        ]
    }

    /// The conditional velocity `u_t` for one pair.
    #[inline]
    pub fn velocity(&self, x0: [f32; 2], x1: [f32; 2]) -> [f32; 2] {
        [
            self.da * x0[0] + self.db * x1[0],
            self.da * x0[1] + self.db * x1[1],
        ]
    }

    /// The data point x̂₁ that position `x` and velocity `v` imply: the solution of
    /// `x = a·x₀ + b·x₁`, `v = da·x₀ + db·x₁` for x₁. For rectified flow this is
    /// `x + (1−t)·v`, TRELLIS's `pred_x_0`.
    #[inline]
    pub fn predicted_data(&self, x: [f32; 2], v: [f32; 2]) -> [f32; 2] {
        let det = self.a * self.db - self.da * self.b;
        [
            (self.a * v[0] - self.da * x[0]) / det,
            (self.a * v[1] - self.da * x[1]) / det,
        ]
    }

    /// The source point x̂₀ that `x` and `v` imply (TRELLIS's `pred_eps`).
    #[inline]
    pub fn predicted_source(&self, x: [f32; 2], v: [f32; 2]) -> [f32; 2] {
        let det = self.a * self.db - self.da * self.b;
        [
            (self.db * x[0] - self.b * v[0]) / det,
            (self.db * x[1] - self.b * v[1]) / det,
        ]
    }
}

/// How the network's raw output F relates to the velocity:
/// `v(t, x) = skip·x + out·F(t, in·x)`. Identity for rectified flow and VP.
///
/// For VE with EDM preconditioning, with σ = σ(1−t), L = ln(σ_max/σ_min) and d² = σ² + σ_data²:
/// the ideal velocity is `v = −L·(x − D(x))` where D is the denoiser, and EDM writes
/// `D = c_skip·x + c_out·F(c_in·x)` with `c_skip = σ_data²/d²`, `c_out = σ·σ_data/d`,
/// `c_in = 1/d`. Hence `skip = −L·σ²/d²`, `out = L·σ·σ_data/d`, `in = 1/d`. Training regresses F on
/// `(u_t − skip·x_t)/out` with plain MSE, which is EDM's loss weighting λ(σ) = 1/c_out².
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preconditioning {
    /// Scale applied to x before the network.
    pub input: f32,
    /// Weight of x in the velocity.
    pub skip: f32,
    /// Weight of the network's output in the velocity.
    pub output: f32,
}

impl Preconditioning {
    /// No preconditioning: `v = F(t, x)`.
    pub const IDENTITY: Self = Self {
        input: 1.0,
        skip: 0.0,
        output: 1.0,
    };

    /// Whether this is the identity (the network predicts the velocity directly).
    pub fn is_identity(&self) -> bool {
        *self == Self::IDENTITY
    }

    /// The velocity for network output `f` at (unscaled) position `x`.
    #[inline]
    pub fn velocity(&self, x: [f32; 2], f: [f32; 2]) -> [f32; 2] {
        [
            self.skip * x[0] + self.output * f[0],
            self.skip * x[1] + self.output * f[1],
        ]
    }

    /// The regression target for the network, given the path's target `u` at `x`.
    #[inline]
    pub fn network_target(&self, x: [f32; 2], u: [f32; 2]) -> [f32; 2] {
        [
            (u[0] - self.skip * x[0]) / self.output,
            (u[1] - self.skip * x[1]) / self.output,
        ]
    }
}

impl Path {
    /// Plain rectified flow (σ_min = 0), the Quick Reference's default.
    pub const RECTIFIED_FLOW: Self = Self::RectifiedFlow { sigma_min: 0.0 };

    /// The seed's VE parameters (σ_min 0.01, σ_max 50), EDM-preconditioned with σ_data = 1.
    pub const VE_DEFAULT: Self = Self::Ve {
        sigma_min: 0.01,
        sigma_max: 50.0,
        sigma_data: Some(1.0),
    };

    /// Checks the parameters.
    pub fn validate(&self) -> Result<(), Error> {
        match *self {
            Self::RectifiedFlow { sigma_min } => {
                if !(0.0..1.0).contains(&sigma_min) {
                    return Err(Error::config(format!(
                        "sigma-min of rectified flow must be in [0, 1), got {sigma_min}"
                    )));
                }
            }
            Self::VpCosine => {}
            Self::Ve {
                sigma_min,
                sigma_max,
                sigma_data,
            } => {
                if !(sigma_min > 0.0 && sigma_min.is_finite()) {
                    return Err(Error::config(format!(
                        "sigma-min of VE must be positive, got {sigma_min}"
                    )));
                }
                if !(sigma_max > sigma_min && sigma_max.is_finite()) {
                    return Err(Error::config(format!(
                        "sigma-max of VE must be larger than sigma-min ({sigma_min}), got {sigma_max}"
                    )));
                }
                if let Some(s) = sigma_data
                    && !(s > 0.0 && s.is_finite())
                {
                    return Err(Error::config(format!(
                        "sigma-data must be positive, got {s}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The path's name as the CLI spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RectifiedFlow { .. } => "rectified-flow",
            Self::VpCosine => "vp-cosine",
            Self::Ve { .. } => "ve",
        }
    }

    /// The coefficients at time `t`.
    #[inline]
    pub fn coefficients(&self, t: f32) -> Coefficients {
        match *self {
            Self::RectifiedFlow { sigma_min } => {
                // QR §3.1 (σ_min = 0) and the TRELLIS form.
                let shrink = 1.0 - sigma_min;
                Coefficients {
                    a: 1.0 - shrink * t,
                    b: t,
                    da: -shrink,
                    db: 1.0,
                }
            }
            Self::VpCosine => {
                // QR §3.2: σ(t) = cos(πt/2) on the noise, α(t) = sin(πt/2) on the data.
                let half_pi = std::f32::consts::FRAC_PI_2;
                let (sin, cos) = (half_pi * t).sin_cos();
                Coefficients {
                    a: cos,
                    b: sin,
                    da: -half_pi * sin,
                    db: half_pi * cos,
                }
            }
            Self::Ve {
                sigma_min,
                sigma_max,
                ..
            } => {
                // QR §3.3: x_t = x₁ + σ(1−t)·x₀, u_t = −σ'(1−t)·x₀, σ'(s) = σ(s)·ln(σ_max/σ_min).
                let (log_min, log_max) = (sigma_min.ln(), sigma_max.ln());
                let s = 1.0 - t;
                let sigma = (log_min * (1.0 - s) + log_max * s).exp();
                Coefficients {
                    a: sigma,
                    b: 1.0,
                    da: -sigma * (log_max - log_min),
                    db: 0.0,
                }
            }
        }
    }

    /// The network parameterisation at time `t` (identity unless VE is preconditioned).
    #[inline]
    pub fn preconditioning(&self, t: f32) -> Preconditioning {
        match *self {
            Self::Ve {
                sigma_min,
                sigma_max,
                sigma_data: Some(sigma_data),
            } => {
                let c = self.coefficients(t);
                let sigma = c.a;
                let log_ratio = (sigma_max / sigma_min).ln();
                let d2 = sigma * sigma + sigma_data * sigma_data;
                let d = d2.sqrt();
                Preconditioning {
                    input: 1.0 / d,
                    skip: -log_ratio * sigma * sigma / d2,
                    output: log_ratio * sigma * sigma_data / d,
                }
            }
            _ => Preconditioning::IDENTITY,
        }
    }

    /// The scale of the prior at t = 0 relative to the source sample: sampling starts from
    /// `prior_scale · x₀`. 1 except for VE, whose t = 0 marginal is `x₁ + σ_max·x₀ ≈ σ_max·x₀`
    /// (QR §3.3's deployment note).
    pub fn prior_scale(&self) -> f32 {
        self.coefficients(0.0).a
    }

    /// Source samples scaled to the prior, where sampling starts: `prior_scale · x₀`.
    pub fn to_prior(&self, x0: &[[f32; 2]]) -> Vec<[f32; 2]> {
        let scale = self.prior_scale();
        x0.iter().map(|p| [scale * p[0], scale * p[1]]).collect()
    }
}

/// The distribution training draws t from.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TimeSampling {
    /// `t ~ U[0, 1)`.
    Uniform,
    /// QR §7.3 (SD3): `t = sigmoid(m + s·z)`, `z ~ N(0, 1)`.
    LogitNormal {
        /// Location m: positive values favour the data end.
        mean: f32,
        /// Scale s: small values concentrate t around sigmoid(m).
        std: f32,
    },
}

impl TimeSampling {
    /// The SD3 default, logit-normal(0, 1).
    pub const LOGIT_NORMAL: Self = Self::LogitNormal {
        mean: 0.0,
        std: 1.0,
    };

    /// Checks the parameters.
    pub fn validate(&self) -> Result<(), Error> {
        if let Self::LogitNormal { mean, std } = *self
            && !(mean.is_finite() && std > 0.0 && std.is_finite())
        {
            return Err(Error::config(format!(
                "logit-normal needs a finite mean and a positive std, got m = {mean}, s = {std}"
            )));
        }
        Ok(())
    }

    /// t from 64 random bits (the batch stream [`crate::rng::stream::TIME`]).
    #[inline]
    pub fn sample(&self, bits: [u32; 2]) -> f32 {
        match *self {
            Self::Uniform => crate::rng::unit_f32(bits[0]),
            Self::LogitNormal { mean, std } => {
                let z = crate::rng::normal_pair(bits)[0];
                1.0 / (1.0 + (-(mean + std * z)).exp())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: [f32; 2], b: [f32; 2], tol: f32) -> bool {
        (a[0] - b[0]).abs() <= tol && (a[1] - b[1]).abs() <= tol
    }

    const PATHS: [Path; 5] = [
        Path::RECTIFIED_FLOW,
        Path::RectifiedFlow { sigma_min: 1e-3 },
        Path::VpCosine,
        Path::VE_DEFAULT,
        Path::Ve {
            sigma_min: 0.002,
            sigma_max: 5.0,
            sigma_data: None,
        },
    ];

    #[test]
    fn boundaries_are_source_and_data() {
        let (x0, x1) = ([0.3, -1.2], [2.0, 0.5]);
        for path in PATHS {
            let start = path.coefficients(0.0);
            let end = path.coefficients(1.0);
            match path {
                Path::RectifiedFlow { sigma_min } => {
                    assert!(close(start.interpolate(x0, x1), x0, 1e-7));
                    let residual = [x1[0] + sigma_min * x0[0], x1[1] + sigma_min * x0[1]];
                    assert!(close(end.interpolate(x0, x1), residual, 1e-6));
                }
                Path::VpCosine => {
                    assert!(close(start.interpolate(x0, x1), x0, 1e-7));
                    assert!(close(end.interpolate(x0, x1), x1, 1e-6));
                }
                Path::Ve {
                    sigma_min,
                    sigma_max,
                    ..
                } => {
                    // t = 0: data plus σ_max noise; t = 1: data plus σ_min noise.
                    let s = start.interpolate(x0, x1);
                    assert!(close(
                        s,
                        [x1[0] + sigma_max * x0[0], x1[1] + sigma_max * x0[1]],
                        1e-4
                    ));
                    let e = end.interpolate(x0, x1);
                    assert!(close(
                        e,
                        [x1[0] + sigma_min * x0[0], x1[1] + sigma_min * x0[1]],
                        1e-6
                    ));
                }
            }
        }
    }

    #[test]
    fn velocity_is_the_time_derivative() {
        let (x0, x1) = ([0.3, -1.2], [2.0, 0.5]);
        for path in PATHS {
            for &t in &[0.05_f32, 0.3, 0.5, 0.77, 0.95] {
                let h = 1e-3;
                let plus = path.coefficients(t + h).interpolate(x0, x1);
                let minus = path.coefficients(t - h).interpolate(x0, x1);
                let fd = [
                    (plus[0] - minus[0]) / (2.0 * h),
                    (plus[1] - minus[1]) / (2.0 * h),
                ];
                let u = path.coefficients(t).velocity(x0, x1);
                let scale = u[0].abs().max(u[1].abs()).max(1.0);
                assert!(
                    close(fd, u, 2e-3 * scale),
                    "{path:?} t={t}: {fd:?} vs {u:?}"
                );
            }
        }
    }

    #[test]
    fn predicted_endpoints_invert_the_path() {
        let (x0, x1) = ([0.3, -1.2], [2.0, 0.5]);
        for path in PATHS {
            for &t in &[0.0_f32, 0.2, 0.5, 0.9, 1.0] {
                let c = path.coefficients(t);
                let (x, u) = (c.interpolate(x0, x1), c.velocity(x0, x1));
                let scale = 1.0 + c.a.abs();
                assert!(
                    close(c.predicted_data(x, u), x1, 1e-5 * scale),
                    "{path:?} t={t}"
                );
                assert!(
                    close(c.predicted_source(x, u), x0, 1e-5 * scale),
                    "{path:?} t={t}"
                );
            }
        }
    }

    #[test]
    fn preconditioning_reproduces_the_velocity() {
        let path = Path::VE_DEFAULT;
        let (x0, x1) = ([0.3, -1.2], [2.0, 0.5]);
        for &t in &[0.0_f32, 0.3, 0.9, 1.0] {
            let c = path.coefficients(t);
            let p = path.preconditioning(t);
            let (x, u) = (c.interpolate(x0, x1), c.velocity(x0, x1));
            let f = p.network_target(x, u);
            let back = p.velocity(x, f);
            assert!(close(back, u, 1e-4 * (1.0 + u[0].abs() + u[1].abs())));
            // The network's target stays of order one although u reaches hundreds.
            assert!(f[0].abs() < 10.0 && f[1].abs() < 10.0, "t={t}: {f:?}");
        }
        assert!(Path::VpCosine.preconditioning(0.4).is_identity());
    }

    #[test]
    fn prior_scale() {
        assert!((Path::VE_DEFAULT.prior_scale() - 50.0).abs() < 1e-3);
        assert!((Path::VpCosine.prior_scale() - 1.0).abs() < 1e-7);
        assert!((Path::RECTIFIED_FLOW.prior_scale() - 1.0).abs() < 1e-7);
    }

    #[test]
    fn time_sampling_ranges() {
        let mut rng = crate::rng::Rng::new(3);
        let ln = TimeSampling::LOGIT_NORMAL;
        let mut mean = 0.0;
        for _ in 0..10_000 {
            let t = ln.sample(rng.next_pair());
            assert!(t > 0.0 && t < 1.0);
            mean += t / 10_000.0;
            let u = TimeSampling::Uniform.sample(rng.next_pair());
            assert!((0.0..1.0).contains(&u));
        }
        assert!((mean - 0.5).abs() < 0.01);
        assert!(
            TimeSampling::LogitNormal {
                mean: 0.0,
                std: 0.0
            }
            .validate()
            .is_err()
        );
    }
}
