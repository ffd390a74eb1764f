//! A trained flow: the network, its parameters, and what is needed to sample from it (the path
//! for preconditioning and endpoint predictions, the source distribution).

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::data::{Dataset, Points};
use crate::likelihood::{self, GaussianPrior, LogLikelihood, MlpDivergence};
use crate::metrics::{self, Quality};
use crate::mlp::{Mlp, MlpConfig};
use crate::path::Path;
use crate::rng::{self, Rng};
use crate::sampler::{self, GuidedField, MlpField, Record, SampleOutput, SamplerConfig};

/// Where training data or source samples come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataSource {
    /// A built-in dataset.
    Builtin(Dataset),
    /// Points supplied by the user (the points themselves travel separately).
    Custom {
        /// Where they came from (a file name), for the record.
        name: String,
    },
}

impl DataSource {
    /// The standard normal, the usual source.
    pub const NORMAL: Self = Self::Builtin(Dataset::Normal);

    /// A short name for display.
    pub fn name(&self) -> String {
        match self {
            Self::Builtin(d) => d.name().to_owned(),
            Self::Custom { name } => name.clone(),
        }
    }

    /// Whether this is N(0, I), which is drawn fresh rather than from a pool.
    pub fn is_standard_normal(&self) -> bool {
        *self == Self::NORMAL
    }
}

/// Everything about a model except its parameters: what a weights file's metadata records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// The network's shape.
    pub mlp: MlpConfig,
    /// The probability path it was trained on.
    pub path: Path,
    /// The source distribution (sampling starts from it).
    pub source: DataSource,
    /// The data it was trained on, for the record and for evaluation.
    pub dataset: DataSource,
}

/// A network with parameters, ready to sample.
#[derive(Clone, Debug)]
pub struct FlowModel {
    /// Shape, path and distributions.
    pub spec: ModelSpec,
    /// The network.
    pub mlp: Mlp,
    /// Flat parameters in the layout of `mlp`.
    pub params: Vec<f32>,
}

/// Options for drawing samples from a model.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleRequest {
    /// Solver, steps, time shift.
    pub sampler: SamplerConfig,
    /// Number of particles.
    pub n: usize,
    /// Seed for the source draw.
    pub seed: u64,
    /// Class labels per particle (conditional models only); `None` samples unconditionally.
    pub labels: Option<Vec<u32>>,
    /// Classifier-free guidance scale (1: plain conditional).
    pub cfg_scale: f32,
    /// What to record.
    pub record: Record,
}

impl SampleRequest {
    /// `n` particles with `sampler`, unconditional, seed 0, recording nothing.
    pub fn new(sampler: SamplerConfig, n: usize) -> Self {
        Self {
            sampler,
            n,
            seed: 0,
            labels: None,
            cfg_scale: 1.0,
            record: Record::NONE,
        }
    }

    /// The same request recording `record`.
    pub fn recording(self, record: Record) -> Self {
        Self { record, ..self }
    }

    /// The same request for particles of classes `labels` (one each) with guidance `cfg_scale`.
    pub fn with_labels(self, labels: Option<Vec<u32>>, cfg_scale: f32) -> Self {
        Self {
            labels,
            cfg_scale,
            ..self
        }
    }

    /// The same request with the source drawn from `seed`.
    pub fn seeded(self, seed: u64) -> Self {
        Self { seed, ..self }
    }
}

impl FlowModel {
    /// A model from its spec and parameters; checks the parameter count.
    pub fn new(spec: ModelSpec, params: Vec<f32>) -> Result<Self, Error> {
        spec.path.validate()?;
        let mlp = Mlp::new(spec.mlp)?;
        if params.len() != mlp.num_params() {
            return Err(Error::config(format!(
                "the network needs {} parameters, got {}",
                mlp.num_params(),
                params.len()
            )));
        }
        Ok(Self { spec, mlp, params })
    }

    /// `n` source samples scaled to the path's prior (`σ_max·z` for VE). A dataset source draws
    /// from a fresh sample of that dataset.
    pub fn source_samples(
        &self,
        n: usize,
        seed: u64,
        custom: Option<&Points>,
    ) -> Result<Vec<[f32; 2]>, Error> {
        let raw = draw_source(&self.spec.source, n, seed, custom)?;
        Ok(self.spec.path.to_prior(&raw))
    }

    /// Checks class labels asked of this model: it must be class-conditional, know each class,
    /// and get one label per particle.
    pub fn check_labels(&self, labels: Option<&[u32]>, n: usize) -> Result<(), Error> {
        let Some(labels) = labels else {
            return Ok(());
        };
        let classes = self.spec.mlp.num_classes;
        if classes == 0 {
            return Err(Error::config(
                "this model was trained without classes; drop the class option",
            ));
        }
        if let Some(&bad) = labels.iter().find(|&&l| l >= classes) {
            return Err(Error::config(format!(
                "class {bad} does not exist: the model knows classes 0 to {}",
                classes - 1
            )));
        }
        if labels.len() != n {
            return Err(Error::config("one label per particle is needed"));
        }
        Ok(())
    }

    /// Integrates `x0` (already at the prior's scale) with the request's sampler.
    pub fn integrate(
        &self,
        x0: &[[f32; 2]],
        request: &SampleRequest,
    ) -> Result<SampleOutput, Error> {
        request.sampler.validate()?;
        let field = MlpField::new(&self.mlp, &self.params, self.spec.path);
        let labels = request.labels.as_deref();
        self.check_labels(labels, x0.len())?;
        if self.spec.mlp.is_conditional() && labels.is_some() {
            let guided = GuidedField::new(&field, request.cfg_scale, self.spec.mlp.null_label());
            Ok(sampler::sample(
                &guided,
                &self.spec.path,
                &request.sampler,
                x0,
                labels,
                request.record,
            ))
        } else {
            Ok(sampler::sample(
                &field,
                &self.spec.path,
                &request.sampler,
                x0,
                None,
                request.record,
            ))
        }
    }

    /// The model's exact log density `log p₁(x)` at each point (QR §2's continuity equation,
    /// [`crate::likelihood`]): the reverse ODE with `sampler`, for class `labels[i]` with
    /// guidance `cfg_scale` (a conditional model without labels: its unconditional head).
    /// Only defined for a model whose source is N(0, I): a data-to-data model's source density
    /// is not known.
    pub fn log_likelihood(
        &self,
        x: &[[f32; 2]],
        labels: Option<&[u32]>,
        cfg_scale: f32,
        sampler: &SamplerConfig,
    ) -> Result<LogLikelihood, Error> {
        if !self.spec.source.is_standard_normal() {
            return Err(Error::config(format!(
                "the likelihood is not defined for this model: it starts from '{}', whose \
                 density is not known; it needs a model trained from N(0, I) noise",
                self.spec.source.name()
            )));
        }
        self.check_labels(labels, x.len())?;
        let field = MlpDivergence::new(&self.mlp, &self.params, self.spec.path);
        let prior = GaussianPrior::of(&self.spec.path);
        if self.spec.mlp.is_conditional() && labels.is_some() {
            let guided = GuidedField::new(&field, cfg_scale, self.spec.mlp.null_label());
            likelihood::log_likelihood(&guided, prior, sampler, x, labels)
        } else {
            likelihood::log_likelihood(&field, prior, sampler, x, None)
        }
    }

    /// Draws `request.n` samples from the source and integrates them.
    pub fn sample(
        &self,
        request: &SampleRequest,
        custom_source: Option<&Points>,
    ) -> Result<SampleOutput, Error> {
        let x0 = self.source_samples(request.n, request.seed, custom_source)?;
        self.integrate(&x0, request)
    }

    /// Straightness and normalised path energy of `n` trajectories integrated with RK4 on a
    /// 32-step grid (accurate enough that the numbers describe the flow, not the solver).
    pub fn geometry(
        &self,
        n: usize,
        seed: u64,
        custom_source: Option<&Points>,
    ) -> Result<Geometry, Error> {
        let request = SampleRequest {
            sampler: SamplerConfig::new(sampler::Solver::Rk4, 32),
            n,
            seed,
            labels: None,
            cfg_scale: 1.0,
            record: Record {
                positions: true,
                endpoints: false,
                velocities: true,
            },
        };
        let out = self.sample(&request, custom_source)?;
        Ok(Geometry {
            straightness: metrics::straightness(&out.trajectories)?,
            path_energy: metrics::path_energy(&out.trajectories)?,
        })
    }

    /// Draws as many samples as `data` has points and measures W2, sliced W2 and MMD against
    /// `data` (fresh points the model never saw). For a conditional model the samples get the
    /// points' labels (and guidance `cfg_scale`).
    pub fn evaluate(
        &self,
        sampler: &SamplerConfig,
        seed: u64,
        cfg_scale: f32,
        data: &Points,
        custom_source: Option<&Points>,
    ) -> Result<Evaluation, Error> {
        let labels = if self.spec.mlp.is_conditional() {
            data.labels.clone()
        } else {
            None
        };
        let request = SampleRequest {
            sampler: *sampler,
            n: data.len(),
            seed,
            labels,
            cfg_scale,
            record: Record::NONE,
        };
        let out = self.sample(&request, custom_source)?;
        let quality = Quality::measure(&out.x, &data.xy)?;
        let samples = Points::with_labels(out.x, request.labels)?;
        Ok(Evaluation { quality, samples })
    }
}

/// Samples of a model and how close they are to the data.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// W2, sliced W2, MMD against the data.
    pub quality: Quality,
    /// The samples (with the labels they were generated for, if conditional).
    pub samples: Points,
}

/// Flow geometry (Liu et al. 2022).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Geometry {
    /// `E ∫ ‖(x₁ − x₀) − v‖² dt`.
    pub straightness: f64,
    /// `E ∫ ‖v‖² dt / E ‖x₁ − x₀‖²`.
    pub path_energy: f64,
}

/// `n` unscaled source samples: N(0, I) from the counter RNG, or a fresh draw of a dataset, or
/// a resample of custom points.
pub fn draw_source(
    source: &DataSource,
    n: usize,
    seed: u64,
    custom: Option<&Points>,
) -> Result<Vec<[f32; 2]>, Error> {
    match source {
        DataSource::Builtin(Dataset::Normal) => {
            let key = rng::key_from_seed(seed ^ 0x5eed_5a3f_1e50_0bce);
            Ok((0..n)
                .map(|i| {
                    let bits = rng::threefry2x32(key, [i as u32, ((i as u64) >> 32) as u32]);
                    rng::normal_pair(bits)
                })
                .collect())
        }
        DataSource::Builtin(dataset) => Ok(dataset.sample(n, seed).xy),
        DataSource::Custom { name } => {
            let points = custom.ok_or_else(|| {
                Error::config(format!("the source points '{name}' were not supplied"))
            })?;
            if points.is_empty() {
                return Err(Error::config(format!(
                    "the source points '{name}' are empty"
                )));
            }
            let mut rng = Rng::with_domain(seed, "custom-source");
            Ok((0..n).map(|_| points.xy[rng.below(points.len())]).collect())
        }
    }
}
