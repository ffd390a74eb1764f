//! The solver × NFE lab (QR §5): how close a model's samples come to held-out data, and how
//! likely it finds that data, as a function of the number of network evaluations (NFE) each
//! sample costs, for Euler, Heun and RK4.
//!
//! Step counts hide the cost: an RK4 step evaluates the network four times, a Heun step twice.
//! The lab therefore measures every solver on the same NFE grid (1, 2, 4, … up to
//! [`MAX_NFE`]), from the same source points, against the same held-out points, so that the
//! only thing that changes between two points of the table is the solver and its step count.

use serde::Serialize;

use crate::Error;
use crate::flow::{FlowModel, SampleRequest};
use crate::metrics::wasserstein2;
use crate::sampler::{SamplerConfig, Solver};

/// The largest NFE the lab measures.
pub const MAX_NFE: usize = 64;

/// One solver with a step count: a point of the lab's grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct NfeSetting {
    /// The solver.
    pub solver: Solver,
    /// Its steps from t = 0 to 1.
    pub steps: usize,
}

impl NfeSetting {
    /// Network evaluations per sample: steps × the solver's evaluations per step.
    pub fn nfe(self) -> usize {
        self.steps * self.solver.evals_per_step()
    }

    /// The sampler of this setting, on the grid shifted by `rescale_t` (1: uniform).
    pub fn sampler(self, rescale_t: f32) -> SamplerConfig {
        SamplerConfig {
            solver: self.solver,
            steps: self.steps,
            rescale_t,
        }
    }
}

/// The lab's grid: for Euler, Heun and RK4 in that order, every step count whose NFE is a power
/// of two up to `max_nfe` (Euler from 1 evaluation, Heun from 2, RK4 from 4).
pub fn grid(max_nfe: usize) -> Vec<NfeSetting> {
    Solver::ALL
        .into_iter()
        .flat_map(|solver| {
            std::iter::successors(Some(1_usize), |s| s.checked_mul(2))
                .map(move |steps| NfeSetting { solver, steps })
                .take_while(move |s| s.nfe() <= max_nfe)
        })
        .collect()
}

/// One measured point of the lab.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct NfePoint {
    /// The solver.
    pub solver: Solver,
    /// Its steps.
    pub steps: usize,
    /// Network evaluations per sample.
    pub nfe: usize,
    /// Exact W2 between the samples and the held-out points.
    pub w2: f64,
    /// The mean negative log-likelihood of the held-out points in nats, through the reverse
    /// ODE with the same solver and steps; `None` where the model's source is not N(0, I) (its
    /// density is unknown) or where it was not asked for.
    pub nll: Option<f64>,
}

/// The mean negative log-likelihood of `logp`, or `None` if any value is not finite (the
/// reverse ODE diverged) or there is none.
pub fn mean_nll(logp: &[f32]) -> Option<f64> {
    let finite = !logp.is_empty() && logp.iter().all(|l| l.is_finite());
    finite.then(|| -logp.iter().map(|&l| f64::from(l)).sum::<f64>() / logp.len() as f64)
}

impl NfePoint {
    /// The point of `setting` from its run: `samples` against `held_out` (the first min(len)
    /// of each), and the held-out points' log densities `logp` where the likelihood was run.
    /// Each backend integrates; this is the one place the figures are made.
    pub fn from_run(
        setting: NfeSetting,
        samples: &[[f32; 2]],
        held_out: &[[f32; 2]],
        logp: Option<&[f32]>,
    ) -> Result<Self, Error> {
        let n = samples.len().min(held_out.len());
        Ok(Self {
            solver: setting.solver,
            steps: setting.steps,
            nfe: setting.nfe(),
            w2: wasserstein2(&samples[..n], &held_out[..n])?,
            nll: logp.and_then(mean_nll),
        })
    }
}

/// Measures `setting` on `model` with the CPU reference: the samples that `x0` (already at the
/// prior's scale) flow to against `held_out`, and with `likelihood` the held-out points' mean
/// negative log-likelihood (only where the model's source is N(0, I)). Unconditional: a
/// conditional model is sampled from its unconditional head, as the held-out data mixes every
/// class.
pub fn measure(
    model: &FlowModel,
    setting: NfeSetting,
    rescale_t: f32,
    x0: &[[f32; 2]],
    held_out: &[[f32; 2]],
    likelihood: bool,
) -> Result<NfePoint, Error> {
    let sampler = setting.sampler(rescale_t);
    let out = model.integrate(x0, &SampleRequest::new(sampler, x0.len()))?;
    let logp = if likelihood && model.spec.source.is_standard_normal() {
        Some(model.log_likelihood(held_out, None, 1.0, &sampler)?.logp)
    } else {
        None
    };
    NfePoint::from_run(setting, &out.x, held_out, logp.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Dataset;
    use crate::flow::{DataSource, ModelSpec};
    use crate::mlp::MlpConfig;
    use crate::path::Path;

    #[test]
    fn the_grid_puts_every_solver_on_the_same_nfe_axis() {
        let full = grid(MAX_NFE);
        let of = |solver| -> Vec<usize> {
            full.iter()
                .filter(|s| s.solver == solver)
                .map(|s| s.nfe())
                .collect()
        };
        assert_eq!(of(Solver::Euler), [1, 2, 4, 8, 16, 32, 64]);
        assert_eq!(of(Solver::Heun), [2, 4, 8, 16, 32, 64]);
        assert_eq!(of(Solver::Rk4), [4, 8, 16, 32, 64]);
        assert_eq!(full.len(), 18);
        assert!(grid(3).iter().all(|s| s.nfe() <= 3));
        assert_eq!(grid(0), []);
    }

    #[test]
    fn nll_needs_every_value_finite() {
        assert_eq!(mean_nll(&[-1.0, -3.0]), Some(2.0));
        assert_eq!(mean_nll(&[-1.0, f32::NAN]), None);
        assert_eq!(mean_nll(&[]), None);
    }

    /// A network whose output is zero (all weights 0) is the field v = 0 under rectified flow:
    /// every solver leaves the source where it is, so W2 is that of the source against the data
    /// whatever the NFE, and the likelihood is the prior's.
    #[test]
    fn a_still_field_gives_the_same_w2_at_every_nfe() {
        let spec = ModelSpec {
            mlp: MlpConfig {
                hidden: 8,
                t_dim: 4,
                depth: 1,
                ..MlpConfig::default()
            },
            path: Path::RECTIFIED_FLOW,
            source: DataSource::NORMAL,
            dataset: DataSource::Builtin(Dataset::Moons),
        };
        let mlp = crate::mlp::Mlp::new(spec.mlp).unwrap();
        let model = FlowModel::new(spec, vec![0.0; mlp.num_params()]).unwrap();
        let x0 = model.source_samples(300, 1, None).unwrap();
        let held_out = Dataset::Moons.sample(300, 2).xy;
        let direct = wasserstein2(&x0, &held_out).unwrap();
        for setting in grid(8) {
            let p = measure(&model, setting, 1.0, &x0, &held_out, true).unwrap();
            assert_eq!(p.nfe, setting.nfe());
            assert!((p.w2 - direct).abs() < 1e-9, "{p:?} vs {direct}");
            // N(0, I)'s mean NLL of the held-out points: log 2π + ½‖x‖².
            let gauss = held_out
                .iter()
                .map(|p| {
                    (2.0 * std::f64::consts::PI).ln() + 0.5 * f64::from(p[0] * p[0] + p[1] * p[1])
                })
                .sum::<f64>()
                / held_out.len() as f64;
            let nll = p.nll.unwrap();
            assert!((nll - gauss).abs() < 1e-4, "{nll} vs {gauss}");
        }
    }
}
