//! What the user can set, with the explanation each control shows.

use flowplay_core::data::Dataset;
use flowplay_core::flow::DataSource;
use flowplay_core::mlp::MlpConfig;
use flowplay_core::optim::AdamWConfig;
use flowplay_core::path::{Path, TimeSampling};
use flowplay_core::sampler::{SamplerConfig, Solver};
use flowplay_core::train::{Coupling, LrSchedule, TrainConfig};

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
                 σ(s) = σ_min·(σ_max/σ_min)ˢ"
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

    /// The path, with VE's noise range and the data's scale for EDM's preconditioning.
    pub(crate) fn path(self, sigma: [f32; 2], data_rms: f32) -> Path {
        match self {
            Self::RectifiedFlow => Path::RECTIFIED_FLOW,
            Self::VpCosine => Path::VpCosine,
            Self::Ve => Path::Ve {
                sigma_min: sigma[0],
                sigma_max: sigma[1],
                sigma_data: Some(data_rms),
            },
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
const OT_BLOCK: usize = 256;

/// Points in the data pool the playground trains on.
pub(crate) const POOL_SIZE: usize = 1 << 14;

/// Every setting of the playground.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Settings {
    pub(crate) dataset: Dataset,
    pub(crate) path: PathKind,
    pub(crate) logit_normal: bool,
    /// Logit-normal location m and scale s (QR §7.3).
    pub(crate) ln_mean: f32,
    pub(crate) ln_std: f32,
    /// VE's σ_min and σ_max (QR §3.3).
    pub(crate) ve_sigma: [f32; 2],
    /// The source distribution p₀: `Normal`, or another dataset (flows between datasets).
    pub(crate) source: Dataset,
    /// Hidden layers of the MLP.
    pub(crate) depth: usize,
    /// Feed t·1000 to the time embedding (the TRELLIS convention) instead of t.
    pub(crate) t_times_1000: bool,
    /// EMA decay of the weights the particles are drawn with.
    pub(crate) ema: f32,
    /// Minibatch optimal-transport coupling (OT-CFM).
    pub(crate) ot: bool,
    /// TRELLIS's time shift of the sampling grid (1: none).
    pub(crate) rescale_t: f32,
    /// Train a class-conditional network (datasets with classes), sampled with guidance.
    pub(crate) conditional: bool,
    /// Classifier-free guidance scale w (QR §7.2): 1 is plain conditional sampling.
    pub(crate) cfg_scale: f32,
    pub(crate) hidden: usize,
    pub(crate) batch: usize,
    pub(crate) lr: f32,
    pub(crate) seed: u64,
    pub(crate) solver: Solver,
    pub(crate) sample_steps: usize,
    pub(crate) particles: usize,
    pub(crate) trails: bool,
    /// Show the predicted endpoints x̂ of the current solver step.
    pub(crate) endpoints: bool,
    /// Where training runs.
    pub(crate) compute: Compute,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            dataset: Dataset::Moons,
            path: PathKind::RectifiedFlow,
            logit_normal: true,
            ln_mean: 0.0,
            ln_std: 1.0,
            ve_sigma: [0.01, 50.0],
            source: Dataset::Normal,
            depth: 2,
            t_times_1000: false,
            ema: 0.995,
            ot: false,
            rescale_t: 1.0,
            conditional: false,
            cfg_scale: 1.0,
            hidden: 128,
            batch: 256,
            lr: 2e-3,
            seed: 0,
            solver: Solver::Euler,
            sample_steps: 25,
            particles: 2000,
            trails: true,
            endpoints: false,
            compute: Compute::Auto,
        }
    }
}

impl Settings {
    /// The training configuration these settings describe.
    pub(crate) fn train_config(&self, data_rms: f32) -> TrainConfig {
        TrainConfig {
            dataset: DataSource::Builtin(self.dataset),
            source: DataSource::Builtin(self.source),
            path: self.path.path(self.ve_sigma, data_rms),
            time_sampling: self.time_sampling(),
            mlp: MlpConfig {
                hidden: self.hidden,
                depth: self.depth,
                t_dim: 64,
                t_scale: if self.t_times_1000 { 1000.0 } else { 1.0 },
                num_classes: self.classes(),
            },
            coupling: if self.ot {
                Coupling::MinibatchOt { block: OT_BLOCK }
            } else {
                Coupling::Independent
            },
            batch: self.batch,
            optimizer: AdamWConfig {
                lr: self.lr,
                ..AdamWConfig::default()
            },
            lr_schedule: LrSchedule::Constant,
            ema_decay: self.ema,
            steps: u64::MAX,
            seed: self.seed,
            pool_size: POOL_SIZE,
            ..TrainConfig::default()
        }
    }

    /// Classes of a conditional network (0: unconditional).
    pub(crate) fn classes(&self) -> u32 {
        if self.conditional {
            self.dataset.num_classes()
        } else {
            0
        }
    }

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

    /// The particles' solver settings (before the 1-step view).
    pub(crate) fn sampler(&self) -> SamplerConfig {
        SamplerConfig {
            rescale_t: self.rescale_t,
            ..SamplerConfig::new(self.solver, self.sample_steps)
        }
    }

    /// Whether moving from `self` to `other` needs a new network (rather than a setting change
    /// the running trainer can take).
    pub(crate) fn needs_new_model(&self, other: &Self) -> bool {
        self.dataset != other.dataset
            || self.hidden != other.hidden
            || self.seed != other.seed
            || self.compute != other.compute
            || self.source != other.source
            || self.depth != other.depth
            || self.t_times_1000 != other.t_times_1000
            || self.classes() != other.classes()
    }

    /// Whether the particles must be re-integrated.
    #[allow(
        clippy::float_cmp,
        reason = "exact on purpose: any edit of a value changes the flow"
    )]
    pub(crate) fn changes_flow(&self, other: &Self) -> bool {
        self.solver != other.solver
            || self.sample_steps != other.sample_steps
            || self.particles != other.particles
            || self.endpoints != other.endpoints
            || self.path != other.path
            || self.ve_sigma != other.ve_sigma
            || self.rescale_t != other.rescale_t
            || self.cfg_scale != other.cfg_scale
    }
}

/// The keys of the URL state, in the order they are written.
#[cfg(test)]
pub(crate) const QUERY_KEYS: [&str; 26] = [
    "classes",
    "cfg",
    "dataset",
    "source",
    "path",
    "sigma_min",
    "sigma_max",
    "t",
    "m",
    "s",
    "depth",
    "tscale",
    "ema",
    "ot",
    "rescale",
    "width",
    "batch",
    "lr",
    "seed",
    "solver",
    "steps",
    "particles",
    "trails",
    "endpoints",
    "compute",
    "train",
];

impl Settings {
    /// The settings as URL state: `dataset=moons&path=rectified-flow&…` (without `#`).
    pub(crate) fn to_query(&self) -> String {
        let on = |b: bool| if b { "1" } else { "0" };
        [
            ("dataset", self.dataset.name().to_string()),
            ("source", self.source.name().to_string()),
            ("path", self.path.key().to_string()),
            ("sigma_min", format!("{}", self.ve_sigma[0])),
            ("sigma_max", format!("{}", self.ve_sigma[1])),
            (
                "t",
                if self.logit_normal {
                    "logit-normal"
                } else {
                    "uniform"
                }
                .to_string(),
            ),
            ("m", format!("{}", self.ln_mean)),
            ("s", format!("{}", self.ln_std)),
            ("width", self.hidden.to_string()),
            ("depth", self.depth.to_string()),
            (
                "tscale",
                if self.t_times_1000 { "1000" } else { "1" }.to_string(),
            ),
            ("ema", format!("{}", self.ema)),
            ("ot", on(self.ot).to_string()),
            ("rescale", format!("{}", self.rescale_t)),
            ("classes", on(self.conditional).to_string()),
            ("cfg", format!("{}", self.cfg_scale)),
            ("batch", self.batch.to_string()),
            ("lr", format!("{}", self.lr)),
            ("seed", self.seed.to_string()),
            ("solver", self.solver.name().to_string()),
            ("steps", self.sample_steps.to_string()),
            ("particles", self.particles.to_string()),
            ("trails", on(self.trails).to_string()),
            ("endpoints", on(self.endpoints).to_string()),
            ("compute", self.compute.key().to_string()),
        ]
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
    }

    /// Applies URL state (`key=value&…`, a leading `#` or `?` allowed) on top of `self`. Keys not
    /// given keep their values. `train` is returned, not stored: it is an action. Every problem
    /// is reported in one message and nothing is changed when there is one.
    pub(crate) fn with_query(&self, query: &str) -> Result<(Self, Option<bool>), String> {
        let mut out = self.clone();
        let mut train = None;
        let mut problems = Vec::new();
        let query = query.trim_start_matches(['#', '?']);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if let Err(why) = out.set_from_query(key, value, &mut train) {
                problems.push(why);
            }
        }
        if problems.is_empty() {
            Ok((out, train))
        } else {
            Err(format!(
                "The address has settings that were not understood, so none were applied: {}.",
                problems.join("; ")
            ))
        }
    }

    fn set_from_query(
        &mut self,
        key: &str,
        value: &str,
        train: &mut Option<bool>,
    ) -> Result<(), String> {
        fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
            key: &str,
            value: &str,
            lo: T,
            hi: T,
        ) -> Result<T, String> {
            match value.parse::<T>() {
                Ok(v) if v >= lo && v <= hi => Ok(v),
                _ => Err(format!("{key}={value} (a number from {lo} to {hi})")),
            }
        }
        let flag = |value: &str| match value {
            "1" | "true" | "on" => Ok(true),
            "0" | "false" | "off" => Ok(false),
            _ => Err(format!("{key}={value} (1 or 0)")),
        };
        match key {
            "dataset" => {
                self.dataset = value
                    .parse::<Dataset>()
                    .ok()
                    .filter(|d| *d != Dataset::Normal)
                    .ok_or_else(|| format!("dataset={value} (an unknown dataset)"))?;
            }
            "source" => {
                self.source = value
                    .parse::<Dataset>()
                    .map_err(|_| format!("source={value} (normal or a dataset)"))?;
            }
            "sigma_min" => self.ve_sigma[0] = number(key, value, 1e-4, 10.0)?,
            "sigma_max" => self.ve_sigma[1] = number(key, value, 0.1, 1000.0)?,
            "m" => self.ln_mean = number(key, value, -3.0, 3.0)?,
            "s" => self.ln_std = number(key, value, 0.1, 3.0)?,
            "depth" => self.depth = number(key, value, 1, 6)?,
            "tscale" => {
                self.t_times_1000 = match value {
                    "1" => false,
                    "1000" => true,
                    _ => return Err(format!("tscale={value} (1 or 1000)")),
                };
            }
            "ema" => self.ema = number(key, value, 0.0, 0.99999)?,
            "ot" => self.ot = flag(value)?,
            "rescale" => self.rescale_t = number(key, value, 0.05, 20.0)?,
            "classes" => self.conditional = flag(value)?,
            "cfg" => self.cfg_scale = number(key, value, 0.0, 20.0)?,
            "path" => {
                self.path = PathKind::ALL
                    .into_iter()
                    .find(|p| p.key() == value)
                    .ok_or_else(|| format!("path={value} (rectified-flow, vp-cosine or ve)"))?;
            }
            "t" => {
                self.logit_normal = match value {
                    "logit-normal" => true,
                    "uniform" => false,
                    _ => return Err(format!("t={value} (logit-normal or uniform)")),
                };
            }
            "width" => {
                self.hidden = number(key, value, 1, 512)?;
            }
            "batch" => self.batch = number(key, value, 1, 8192)?,
            "lr" => self.lr = number(key, value, 1e-6, 1.0)?,
            "seed" => self.seed = number(key, value, 0, u64::from(u32::MAX))?,
            "solver" => {
                self.solver = value
                    .parse::<Solver>()
                    .map_err(|_| format!("solver={value} (euler, heun or rk4)"))?;
            }
            "steps" => self.sample_steps = number(key, value, 1, 200)?,
            "particles" => self.particles = number(key, value, 1, 4_000_000)?,
            "trails" => self.trails = flag(value)?,
            "endpoints" => self.endpoints = flag(value)?,
            "compute" => {
                self.compute = Compute::ALL
                    .into_iter()
                    .find(|c| c.key() == value)
                    .ok_or_else(|| format!("compute={value} (auto, gpu or cpu)"))?;
            }
            "train" => *train = Some(flag(value)?),
            _ => return Err(format!("'{key}' (not a setting)")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_state_round_trips() {
        let settings = Settings {
            dataset: Dataset::Spirals,
            path: PathKind::Ve,
            logit_normal: false,
            hidden: 64,
            batch: 333,
            lr: 3e-4,
            seed: 7,
            solver: Solver::Rk4,
            sample_steps: 9,
            particles: 12345,
            ln_mean: 0.5,
            ln_std: 0.7,
            ve_sigma: [0.02, 20.0],
            source: Dataset::Circles,
            depth: 3,
            t_times_1000: true,
            ema: 0.99,
            ot: true,
            rescale_t: 3.0,
            conditional: true,
            cfg_scale: 2.5,
            trails: false,
            endpoints: true,
            compute: Compute::Cpu,
        };
        let query = settings.to_query();
        let (back, train) = Settings::default()
            .with_query(&format!("#{query}"))
            .expect("our own URL state parses");
        assert_eq!(back, settings);
        assert_eq!(train, None);
        for key in QUERY_KEYS.iter().filter(|&&k| k != "train") {
            assert!(query.contains(&format!("{key}=")), "{key} is written");
        }
    }

    #[test]
    fn a_partial_query_changes_only_its_keys() {
        let (s, train) = Settings::default()
            .with_query("train=1&solver=heun")
            .expect("valid");
        assert_eq!(train, Some(true));
        assert_eq!(s.solver, Solver::Heun);
        assert_eq!(
            Settings {
                solver: Solver::Euler,
                ..s
            },
            Settings::default()
        );
    }

    #[test]
    fn a_malformed_query_is_explained_and_changes_nothing() {
        let err = Settings::default()
            .with_query("solver=heun&path=warp&particles=-3&colour=red&lr=abc")
            .expect_err("bad values are refused");
        for part in ["path=warp", "particles=-3", "'colour'", "lr=abc"] {
            assert!(err.contains(part), "{err} names {part}");
        }
        assert!(err.contains("none were applied"));
    }
}
