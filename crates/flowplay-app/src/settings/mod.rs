//! What the user can set, in named groups: what is trained on ([`DataSettings`]), the network
//! ([`ModelSettings`]), what each training step learns ([`TrainingSettings`]), the optimizer
//! ([`OptimSettings`]), how the particles are integrated ([`SamplingSettings`]) and what the
//! canvas shows ([`ViewSettings`]). Whether an edit needs a new model, a new training plan, new
//! particles or nothing but a redraw is a comparison of groups. Each group's URL keys sit in a
//! table beside it (`query.rs`).

mod compare;
mod query;

pub(crate) use compare::Comparison;
pub(crate) use query::Actions;

/// The most particles asked for, by the slider or the address (the device may draw fewer: the
/// app clamps to its limits and says so).
pub(crate) const MAX_PARTICLES: usize = 4_000_000;

use flowplay_core::data::{Dataset, Points};
use flowplay_core::flow::DataSource;
use flowplay_core::mlp::MlpConfig;
use flowplay_core::optim::AdamWConfig;
use flowplay_core::path::{Path, TimeSampling};
use flowplay_core::sampler::{SamplerConfig, Solver};
use flowplay_core::train::{Coupling, LrSchedule, TrainConfig};

use crate::layers::LayerSet;

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
                "Variance exploding, the SMLD/EDM family (QR §3.3): start from σ_max·z and shrink \
                 the noise to σ_min. EDM-preconditioned.\nx_t = x₁ + σ(1−t)·x₀,   \
                 σ(s) = σ_min·(σ_max/σ_min)^s"
            }
        }
    }

    /// The name in the URL (and in the CLI).
    pub(crate) fn key(self) -> &'static str {
        match self {
            Self::RectifiedFlow => "rectified-flow",
            Self::VpCosine => "vp-cosine",
            Self::Ve => "ve",
        }
    }
}

/// Where training runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compute {
    /// The GPU when it is a hardware one; the CPU reference on a software renderer (llvmpipe,
    /// SwiftShader), which trains faster there, or without GPU compute.
    Auto,
    /// The WGSL kernels whenever the GPU can run them, software or not.
    Gpu,
    /// The CPU reference.
    Cpu,
}

impl Compute {
    pub(crate) const ALL: [Self; 3] = [Self::Auto, Self::Gpu, Self::Cpu];

    pub(crate) fn key(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Gpu => "gpu",
            Self::Cpu => "cpu",
        }
    }
}

/// Largest block of the minibatch-OT coupling solved exactly (a batch is split into blocks).
pub(crate) const OT_BLOCK: usize = 256;

/// Points in the data pool the playground trains on.
pub(crate) const POOL_SIZE: usize = 1 << 14;

/// The user's own points (an imported CSV), standing in for the built-in dataset.
#[derive(Clone, Debug)]
pub(crate) struct CustomData {
    /// Where they came from (the file's name).
    pub(crate) name: String,
    pub(crate) points: std::sync::Arc<Points>,
}

impl PartialEq for CustomData {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.points, &other.points)
            || (self.name == other.name && self.points == other.points)
    }
}

/// What the flow is trained on: a change starts a new model.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DataSettings {
    /// The data distribution p₁ (unless `custom` points stand in for it).
    pub(crate) dataset: Dataset,
    /// The user's own points, trained on instead of `dataset`. A link cannot carry them.
    pub(crate) custom: Option<CustomData>,
    /// The source distribution p₀: `Normal`, or another dataset (flows between datasets),
    /// unless `custom_source` points stand in for it.
    pub(crate) source: Dataset,
    /// The user's own points as the source p₀ (their labels unused). A link cannot carry them.
    pub(crate) custom_source: Option<CustomData>,
    /// Same seed, same data, weights and batches.
    pub(crate) seed: u64,
}

/// The network's shape: a change starts a new model.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ModelSettings {
    /// Hidden width.
    pub(crate) hidden: usize,
    /// Hidden layers of the MLP.
    pub(crate) depth: usize,
    /// Size of the sinusoidal time embedding (64; weights imported from elsewhere may differ).
    pub(crate) t_dim: usize,
    /// Feed t·1000 to the time embedding (the TRELLIS convention) instead of t.
    pub(crate) t_times_1000: bool,
    /// Train a class-conditional network (datasets with classes), sampled with guidance.
    pub(crate) conditional: bool,
}

/// The probability path with its parameters.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PathSettings {
    pub(crate) kind: PathKind,
    /// Rectified flow's σ_min: the noise left at t = 1 (TRELLIS uses 1e-5; 0 is the Quick
    /// Reference's straight path).
    pub(crate) rf_sigma_min: f32,
    /// VE's σ_min and σ_max (QR §3.3).
    pub(crate) ve_sigma: [f32; 2],
    /// VE with EDM's preconditioning of the network (off: the seed's plain VE, which does not
    /// train at σ_max = 50).
    pub(crate) ve_precondition: bool,
}

impl DataSettings {
    /// The data as the core names it.
    pub(crate) fn source_of_data(&self) -> DataSource {
        match &self.custom {
            Some(c) => DataSource::Custom {
                name: c.name.clone(),
            },
            None => DataSource::Builtin(self.dataset),
        }
    }

    /// The source as the core names it.
    pub(crate) fn source_of_source(&self) -> DataSource {
        match &self.custom_source {
            Some(c) => DataSource::Custom {
                name: c.name.clone(),
            },
            None => DataSource::Builtin(self.source),
        }
    }

    /// The source's name shown ("normal", or the file's).
    pub(crate) fn source_name(&self) -> String {
        match &self.custom_source {
            Some(c) => c.name.clone(),
            None => self.source.name().to_string(),
        }
    }

    /// The user's source points, for a custom source.
    pub(crate) fn source_points(&self) -> Option<Points> {
        self.custom_source.as_ref().map(|c| (*c.points).clone())
    }

    /// Whether a link can carry the data and the source (not the user's own points).
    pub(crate) fn is_shareable(&self) -> bool {
        self.custom.is_none() && self.custom_source.is_none()
    }

    /// Classes of the data (0: unlabelled).
    pub(crate) fn num_classes(&self) -> u32 {
        match &self.custom {
            Some(c) => c.points.num_classes,
            None => self.dataset.num_classes(),
        }
    }

    /// The name shown ("moons", or the file's).
    pub(crate) fn name(&self) -> String {
        match &self.custom {
            Some(c) => c.name.clone(),
            None => self.dataset.name().to_string(),
        }
    }

    /// The training pool: the user's points, or `n` drawn from the built-in dataset.
    pub(crate) fn pool(&self, n: usize) -> Points {
        match &self.custom {
            Some(c) => (*c.points).clone(),
            None => self.dataset.sample(n, self.seed),
        }
    }

    /// `n` held-out points to measure against: a fresh draw, or the user's points resampled.
    pub(crate) fn held_out(&self, n: usize, seed: u64) -> Vec<[f32; 2]> {
        match &self.custom {
            Some(c) => {
                let mut rng = flowplay_core::rng::Rng::with_domain(seed, "held-out");
                (0..n)
                    .map(|_| c.points.xy[rng.below(c.points.len())])
                    .collect()
            }
            None => self.dataset.sample(n, seed).xy,
        }
    }
}

impl PathSettings {
    /// The path, with the data's scale for VE's EDM preconditioning.
    pub(crate) fn path(&self, data_rms: f32) -> Path {
        match self.kind {
            PathKind::RectifiedFlow => Path::RectifiedFlow {
                sigma_min: self.rf_sigma_min,
            },
            PathKind::VpCosine => Path::VpCosine,
            PathKind::Ve => Path::Ve {
                sigma_min: self.ve_sigma[0],
                sigma_max: self.ve_sigma[1],
                sigma_data: self.ve_precondition.then_some(data_rms),
            },
        }
    }

    /// The name shown on plot marks and round tables (VE with its σ's).
    pub(crate) fn label(&self) -> String {
        match self.kind {
            PathKind::Ve if self.ve_precondition => {
                format!("VE {}–{}", self.ve_sigma[0], self.ve_sigma[1])
            }
            PathKind::Ve => format!("plain VE {}–{}", self.ve_sigma[0], self.ve_sigma[1]),
            PathKind::RectifiedFlow if self.rf_sigma_min > 0.0 => {
                format!("Rectified flow σ_min {}", self.rf_sigma_min)
            }
            kind => kind.label().to_string(),
        }
    }
}

/// What each training step learns: the path, how t is drawn, the batch and its coupling. The
/// running model takes a change, with a new plan of its training step.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TrainingSettings {
    pub(crate) path: PathSettings,
    pub(crate) logit_normal: bool,
    /// Logit-normal location m and scale s (QR §7.3).
    pub(crate) ln_mean: f32,
    pub(crate) ln_std: f32,
    /// Pairs (x₀, x₁) per step.
    pub(crate) batch: usize,
    /// Minibatch optimal-transport coupling (OT-CFM).
    pub(crate) ot: bool,
    /// A conditional model's label dropout: the share of steps that train the unconditional
    /// field v(x, ∅), which guidance needs (QR §7.2).
    pub(crate) p_drop: f32,
}

impl TrainingSettings {
    /// How training times are drawn.
    pub(crate) fn time_sampling(&self) -> TimeSampling {
        if self.logit_normal {
            TimeSampling::LogitNormal {
                mean: self.ln_mean,
                std: self.ln_std,
            }
        } else {
            TimeSampling::Uniform
        }
    }
}

/// The optimizer's values: the running trainer takes a change at once, without a new plan.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct OptimSettings {
    /// AdamW's learning rate.
    pub(crate) lr: f32,
    /// EMA decay of the weights the particles are drawn with.
    pub(crate) ema: f32,
    /// Clip the gradient's global norm to this (0: no clipping).
    pub(crate) clip: f32,
    /// AdamW's decoupled weight decay.
    pub(crate) weight_decay: f32,
}

/// How the particles are integrated and drawn from the model: a change re-integrates them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SamplingSettings {
    pub(crate) solver: Solver,
    pub(crate) steps: usize,
    /// TRELLIS's time shift of the sampling grid (1: none).
    pub(crate) rescale_t: f32,
    /// Classifier-free guidance scale w (QR §7.2): 1 is plain conditional sampling.
    pub(crate) cfg_scale: f32,
    pub(crate) particles: usize,
    /// A conditional model's particles: all of this class (as the CLI's `--class`), or `None`:
    /// every class in turn.
    pub(crate) class: Option<u32>,
    /// Draw (and evaluate) the EMA of the weights, or the optimizer's raw weights.
    pub(crate) ema: bool,
}

impl SamplingSettings {
    /// The solver's settings (before the 1-step view).
    pub(crate) fn sampler(&self) -> SamplerConfig {
        SamplerConfig {
            rescale_t: self.rescale_t,
            ..SamplerConfig::new(self.solver, self.steps)
        }
    }
}

/// What the canvas shows: only drawing changes (the endpoints layer also records them).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ViewSettings {
    /// The canvas layers that are on.
    pub(crate) layers: LayerSet,
    /// The class whose (guided) field the field layer shows, for a conditional model
    /// (`None`: the unconditional field).
    pub(crate) field_class: Option<u32>,
}

/// Every setting of the playground.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Settings {
    pub(crate) data: DataSettings,
    pub(crate) model: ModelSettings,
    pub(crate) training: TrainingSettings,
    pub(crate) optim: OptimSettings,
    pub(crate) sampling: SamplingSettings,
    pub(crate) view: ViewSettings,
    /// Where training runs: a change starts a new model.
    pub(crate) compute: Compute,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data: DataSettings {
                dataset: Dataset::Moons,
                custom: None,
                source: Dataset::Normal,
                custom_source: None,
                seed: 0,
            },
            model: ModelSettings {
                hidden: 128,
                depth: 2,
                t_dim: 64,
                t_times_1000: false,
                conditional: false,
            },
            training: TrainingSettings {
                path: PathSettings {
                    kind: PathKind::RectifiedFlow,
                    rf_sigma_min: 0.0,
                    ve_sigma: [0.01, 50.0],
                    ve_precondition: true,
                },
                logit_normal: true,
                ln_mean: 0.0,
                ln_std: 1.0,
                batch: 256,
                ot: false,
                p_drop: 0.1,
            },
            optim: OptimSettings {
                lr: 2e-3,
                ema: 0.995,
                clip: 1.0,
                weight_decay: 0.0,
            },
            sampling: SamplingSettings {
                solver: Solver::Euler,
                steps: 25,
                rescale_t: 1.0,
                cfg_scale: 1.0,
                particles: 2000,
                class: None,
                ema: true,
            },
            view: ViewSettings {
                layers: LayerSet::default(),
                field_class: None,
            },
            compute: Compute::Auto,
        }
    }
}

/// What an edit of the settings asks of the running playground, from the least to the most.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Change {
    /// Nothing but a redraw (a layer, the field's class).
    Redraw,
    /// New particles (solver, steps, guidance, count, recorded endpoints).
    Particles,
    /// The running trainer takes new optimizer values (no new plan).
    Optimizer,
    /// The running trainer takes a new objective (path, t, batch, coupling): a new plan.
    Training,
    /// A new network (data, seed, shape, compute).
    Model,
}

impl Settings {
    /// The training configuration these settings describe.
    pub(crate) fn train_config(&self, data_rms: f32) -> TrainConfig {
        TrainConfig {
            dataset: self.data.source_of_data(),
            source: self.data.source_of_source(),
            path: self.training.path.path(data_rms),
            time_sampling: self.training.time_sampling(),
            mlp: MlpConfig {
                hidden: self.model.hidden,
                depth: self.model.depth,
                t_dim: self.model.t_dim,
                t_scale: if self.model.t_times_1000 { 1000.0 } else { 1.0 },
                num_classes: self.classes(),
            },
            coupling: if self.training.ot {
                Coupling::MinibatchOt { block: OT_BLOCK }
            } else {
                Coupling::Independent
            },
            batch: self.training.batch,
            optimizer: AdamWConfig {
                lr: self.optim.lr,
                weight_decay: self.optim.weight_decay,
                ..AdamWConfig::default()
            },
            lr_schedule: LrSchedule::Constant,
            clip_norm: (self.optim.clip > 0.0).then_some(self.optim.clip),
            p_drop: self.training.p_drop,
            ema_decay: self.optim.ema,
            steps: u64::MAX,
            seed: self.data.seed,
            pool_size: POOL_SIZE,
        }
    }

    /// The class every particle is drawn from, when one is chosen and the model has it.
    pub(crate) fn sample_class(&self) -> Option<u32> {
        self.sampling.class.filter(|&c| c < self.classes())
    }

    /// Classes of a conditional network (0: unconditional).
    pub(crate) fn classes(&self) -> u32 {
        if self.model.conditional {
            self.data.num_classes()
        } else {
            0
        }
    }

    /// The most an edit from `self` to `other` asks for (the comparison of the groups).
    pub(crate) fn change_to(&self, other: &Self) -> Option<Change> {
        if self.data != other.data
            || self.model != other.model
            || self.compute != other.compute
            || self.classes() != other.classes()
        {
            return Some(Change::Model);
        }
        if self.training != other.training {
            return Some(Change::Training);
        }
        if self.optim != other.optim {
            return Some(Change::Optimizer);
        }
        if self.changes_flow(other) {
            return Some(Change::Particles);
        }
        (self.view != other.view).then_some(Change::Redraw)
    }

    /// What a new model from `self` to `other` changes, in words ("dataset moons → spirals,
    /// seed 0 → 7"), or "the same settings, new weights" for a reset.
    pub(crate) fn model_change(&self, other: &Self) -> String {
        let mut parts = Vec::new();
        let mut note = |name: &str, a: String, b: String| {
            if a != b {
                parts.push(format!("{name} {a} → {b}"));
            }
        };
        note("dataset", self.data.name(), other.data.name());
        note("source", self.data.source_name(), other.data.source_name());
        note(
            "seed",
            self.data.seed.to_string(),
            other.data.seed.to_string(),
        );
        note(
            "width",
            self.model.hidden.to_string(),
            other.model.hidden.to_string(),
        );
        note(
            "depth",
            self.model.depth.to_string(),
            other.model.depth.to_string(),
        );
        let t = |s: &Self| if s.model.t_times_1000 { "t·1000" } else { "t" }.to_string();
        note("time input", t(self), t(other));
        note(
            "classes",
            self.classes().to_string(),
            other.classes().to_string(),
        );
        note(
            "compute",
            self.compute.key().into(),
            other.compute.key().into(),
        );
        if parts.is_empty() {
            "the same settings, new weights".to_string()
        } else {
            parts.join(", ")
        }
    }

    /// Whether the particles must be re-integrated: new sampling settings, another path, or
    /// endpoints to record.
    pub(crate) fn changes_flow(&self, other: &Self) -> bool {
        self.sampling != other.sampling
            || self.training.path != other.training.path
            || self.view.layers.endpoints() != other.view.layers.endpoints()
    }
}
