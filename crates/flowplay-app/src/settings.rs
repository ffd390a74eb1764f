//! What the user can set, with the explanation each control shows.

use flowplay_core::data::Dataset;
use flowplay_core::flow::DataSource;
use flowplay_core::mlp::MlpConfig;
use flowplay_core::optim::AdamWConfig;
use flowplay_core::path::{Path, TimeSampling};
use flowplay_core::sampler::Solver;
use flowplay_core::train::{LrSchedule, TrainConfig};

/// The probability path (QR §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PathKind {
    RectifiedFlow,
    VpCosine,
    Ve,
}

impl PathKind {
    pub(crate) const ALL: [Self; 3] = [Self::RectifiedFlow, Self::VpCosine, Self::Ve];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::RectifiedFlow => "Rectified flow",
            Self::VpCosine => "VP (cosine)",
            Self::Ve => "VE",
        }
    }

    /// One line, then the formula (QR §3).
    pub(crate) fn explanation(self) -> &'static str {
        match self {
            Self::RectifiedFlow => {
                "Straight lines from noise to data at constant speed (QR §3.1).\n\
                 x_t = (1−t)·x₀ + t·x₁,   u_t = x₁ − x₀"
            }
            Self::VpCosine => {
                "Variance preserving, the DDPM cosine family (QR §3.2).\n\
                 x_t = cos(πt/2)·x₀ + sin(πt/2)·x₁"
            }
            Self::Ve => {
                "Variance exploding, the SMLD/EDM family (QR §3.3): start from 50·z, shrink the \
                 noise to 0.01. EDM-preconditioned.\nx_t = x₁ + σ(1−t)·x₀,   σ(s) = 0.01·5000ˢ"
            }
        }
    }

    pub(crate) fn path(self, data_rms: f32) -> Path {
        match self {
            Self::RectifiedFlow => Path::RECTIFIED_FLOW,
            Self::VpCosine => Path::VpCosine,
            Self::Ve => Path::Ve {
                sigma_min: 0.01,
                sigma_max: 50.0,
                sigma_data: Some(data_rms),
            },
        }
    }
}

/// Points in the data pool the playground trains on.
pub(crate) const POOL_SIZE: usize = 1 << 14;

/// Every setting of the playground.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Settings {
    pub(crate) dataset: Dataset,
    pub(crate) path: PathKind,
    pub(crate) logit_normal: bool,
    pub(crate) hidden: usize,
    pub(crate) batch: usize,
    pub(crate) lr: f32,
    pub(crate) seed: u64,
    pub(crate) solver: Solver,
    pub(crate) sample_steps: usize,
    pub(crate) particles: usize,
    pub(crate) trails: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            dataset: Dataset::Moons,
            path: PathKind::RectifiedFlow,
            logit_normal: true,
            hidden: 128,
            batch: 256,
            lr: 2e-3,
            seed: 0,
            solver: Solver::Euler,
            sample_steps: 25,
            particles: 600,
            trails: true,
        }
    }
}

impl Settings {
    /// The training configuration these settings describe.
    pub(crate) fn train_config(&self, data_rms: f32) -> TrainConfig {
        TrainConfig {
            dataset: DataSource::Builtin(self.dataset),
            path: self.path.path(data_rms),
            time_sampling: if self.logit_normal {
                TimeSampling::LOGIT_NORMAL
            } else {
                TimeSampling::Uniform
            },
            mlp: MlpConfig {
                hidden: self.hidden,
                depth: 2,
                t_dim: 64,
                t_scale: 1.0,
                num_classes: 0,
            },
            batch: self.batch,
            optimizer: AdamWConfig {
                lr: self.lr,
                ..AdamWConfig::default()
            },
            lr_schedule: LrSchedule::Constant,
            ema_decay: 0.995,
            steps: u64::MAX,
            seed: self.seed,
            pool_size: POOL_SIZE,
            ..TrainConfig::default()
        }
    }

    /// Whether moving from `self` to `other` needs a new network (rather than a setting change
    /// the running trainer can take).
    pub(crate) fn needs_new_model(&self, other: &Self) -> bool {
        self.dataset != other.dataset || self.hidden != other.hidden || self.seed != other.seed
    }

    /// Whether the particles must be re-integrated.
    pub(crate) fn changes_flow(&self, other: &Self) -> bool {
        self.solver != other.solver
            || self.sample_steps != other.sample_steps
            || self.particles != other.particles
            || self.path != other.path
    }
}
