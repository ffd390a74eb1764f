//! The CPU trainer: the training loop of QR §4.4 with every switch the playground offers.
//!
//! One step (QR §4.3–§4.4):
//!
//! 1. draw the batch with the counter-based RNG (sample `i` of step `s` hashes `(i, s)`, the same
//!    numbers the GPU trainer draws): data x₁ from the data pool, source x₀ (fresh N(0, I) or from a
//!    source pool, or a reflow pair), t from the time distribution, class labels dropped to ∅ with
//!    probability `p_drop`;
//! 2. optionally re-pair x₀ and x₁ by an exact minibatch optimal-transport assignment (OT-CFM);
//! 3. `x_t`, `u_t` from the path, the network's input and target through the preconditioning;
//! 4. forward, MSE, hand-written backward, in fixed chunks of the batch spread over threads and
//!    summed in a fixed order (bit-identical results on any number of threads);
//! 5. global gradient-norm clipping, AdamW, EMA.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::Error;
pub use crate::batch::{BatchDraws, BatchPairs, CouplingPool, regression_pair};
use crate::data::{Dataset, Points};
use crate::flow::{DataSource, FlowModel, ModelSpec, SampleRequest, draw_source};
use crate::mlp::{Mlp, MlpConfig, Prepared, Workspace, mse_loss_grad};
use crate::optim::{AdamW, AdamWConfig, clip_grad_norm, ema_update, grad_norm};
use crate::par;
use crate::path::{Path, TimeSampling};
use crate::rng::Rng;
use crate::sampler::{Record, SamplerConfig};

/// How source and data samples are paired in a batch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Coupling {
    /// Independent pairs (x₀, x₁) ~ p₀ ⊗ p₁.
    Independent,
    /// Minibatch optimal transport (OT-CFM, Tong et al. 2023): within blocks of at most `block`
    /// samples, x₀ is assigned to x₁ exactly, minimising the total squared distance. The exact
    /// assignment costs up to O(block³); blocks bound it for large batches.
    MinibatchOt {
        /// Largest block solved exactly.
        block: usize,
    },
}

/// The learning rate over a round of training.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum LrSchedule {
    /// The same rate throughout (QR §4.4).
    Constant,
    /// Linear warm-up, then a cosine decay to `final_ratio · lr` at the last step.
    Cosine {
        /// Steps of linear warm-up from 0.
        warmup_steps: u64,
        /// The learning rate at the end, relative to the peak.
        final_ratio: f32,
    },
}

impl LrSchedule {
    /// The rate at `step` (0-based) of `total` steps, for peak rate `lr`.
    pub fn lr_at(&self, lr: f32, step: u64, total: u64) -> f32 {
        match *self {
            Self::Constant => lr,
            Self::Cosine {
                warmup_steps,
                final_ratio,
            } => {
                if step < warmup_steps {
                    return lr * (step + 1) as f32 / warmup_steps as f32;
                }
                let span = total.saturating_sub(warmup_steps).max(1);
                let progress = ((step - warmup_steps) as f64 / span as f64).min(1.0);
                let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
                lr * (f64::from(final_ratio) + (1.0 - f64::from(final_ratio)) * cosine) as f32
            }
        }
    }
}

/// Everything that defines a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The data distribution p₁.
    pub dataset: DataSource,
    /// The source distribution p₀ (N(0, I) by default).
    pub source: DataSource,
    /// The probability path.
    pub path: Path,
    /// How t is drawn.
    pub time_sampling: TimeSampling,
    /// The network (its `num_classes` > 0 turns on class conditioning).
    pub mlp: MlpConfig,
    /// Samples per step.
    pub batch: usize,
    /// AdamW (the peak learning rate when scheduled).
    pub optimizer: AdamWConfig,
    /// Learning-rate schedule.
    pub lr_schedule: LrSchedule,
    /// Clip the global gradient norm to this (QR §4.4 uses 1.0); `None` disables.
    pub clip_norm: Option<f32>,
    /// EMA decay (QR §4.4 uses 0.9999).
    pub ema_decay: f32,
    /// Training steps (of the first round; later reflow rounds choose their own).
    pub steps: u64,
    /// Seed for everything: the data pool, the initial weights, every batch.
    pub seed: u64,
    /// Pairing of x₀ and x₁.
    pub coupling: Coupling,
    /// Probability of replacing a class label by ∅ (classifier-free guidance, QR §7.2).
    pub p_drop: f32,
    /// Size of the data pool batches draw from (and of a dataset source's pool).
    pub pool_size: usize,
}

impl Default for TrainConfig {
    /// The recommended configuration: the Quick Reference's conventions (constant learning rate,
    /// clipping at 1, t unscaled, depth 2) at hidden 256, batch 2048, lr 1e-3, 20 000 steps of
    /// rectified flow on moons with logit-normal t. It reaches W2 ≈ 0.11 on moons (the README
    /// has the figures). The EMA decay is 0.999: QR's 0.9999 suits runs ten times longer.
    fn default() -> Self {
        Self {
            dataset: DataSource::Builtin(Dataset::Moons),
            source: DataSource::NORMAL,
            path: Path::RECTIFIED_FLOW,
            time_sampling: TimeSampling::LOGIT_NORMAL,
            mlp: MlpConfig {
                hidden: 256,
                depth: 2,
                t_dim: 128,
                t_scale: 1.0,
                num_classes: 0,
            },
            batch: 2048,
            optimizer: AdamWConfig {
                lr: 1e-3,
                ..AdamWConfig::default()
            },
            lr_schedule: LrSchedule::Constant,
            clip_norm: Some(1.0),
            ema_decay: 0.999,
            steps: 20_000,
            seed: 0,
            coupling: Coupling::Independent,
            p_drop: 0.1,
            pool_size: 1 << 16,
        }
    }
}

impl TrainConfig {
    /// The Quick Reference's moons demo (§8): hidden 128, t_dim 128, batch 512, lr 3e-4,
    /// logit-normal t, 2000 steps, clip 1, EMA 0.9999, constant rate.
    pub fn seed_recipe() -> Self {
        let defaults = Self::default();
        Self {
            mlp: MlpConfig {
                hidden: 128,
                ..defaults.mlp
            },
            batch: 512,
            optimizer: AdamWConfig {
                lr: 3e-4,
                ..defaults.optimizer
            },
            ema_decay: 0.9999,
            steps: 2000,
            ..defaults
        }
    }

    /// Checks every setting, and that the data supports class conditioning when asked.
    pub fn validate(&self, data: &Points) -> Result<(), Error> {
        self.path.validate()?;
        self.time_sampling.validate()?;
        self.mlp.validate()?;
        self.optimizer.validate()?;
        if self.batch == 0 || self.batch > 1 << 20 {
            return Err(Error::config(format!(
                "batch must be between 1 and 1048576, got {}",
                self.batch
            )));
        }
        if let Some(c) = self.clip_norm
            && !(c > 0.0 && c.is_finite())
        {
            return Err(Error::config(format!("clip must be positive, got {c}")));
        }
        if !(0.0..1.0).contains(&self.ema_decay) {
            return Err(Error::config(format!(
                "EMA decay must be in [0, 1), got {}",
                self.ema_decay
            )));
        }
        if !(0.0..1.0).contains(&self.p_drop) {
            return Err(Error::config(format!(
                "p-drop must be in [0, 1), got {}",
                self.p_drop
            )));
        }
        if self.pool_size == 0 || self.pool_size > 1 << 24 {
            return Err(Error::config(format!(
                "pool size must be between 1 and 16777216, got {}",
                self.pool_size
            )));
        }
        if let Coupling::MinibatchOt { block } = self.coupling
            && block == 0
        {
            return Err(Error::config("the OT block size must be at least 1"));
        }
        if let LrSchedule::Cosine { final_ratio, .. } = self.lr_schedule
            && !(0.0..=1.0).contains(&final_ratio)
        {
            return Err(Error::config(format!(
                "the final learning-rate ratio must be in [0, 1], got {final_ratio}"
            )));
        }
        if data.is_empty() {
            return Err(Error::config("the dataset has no points"));
        }
        if self.mlp.is_conditional() {
            if data.num_classes == 0 {
                return Err(Error::config(format!(
                    "class conditioning needs labels, and the dataset '{}' has none",
                    self.dataset.name()
                )));
            }
            if data.num_classes != self.mlp.num_classes {
                return Err(Error::config(format!(
                    "the dataset has {} classes but the network was set up for {}",
                    data.num_classes, self.mlp.num_classes
                )));
            }
        }
        Ok(())
    }

    /// Checks that `new` changes only what a running trainer can switch in place (path, time
    /// sampling, batch, optimizer, schedule, clipping, EMA, coupling, label dropout): the
    /// network's shape, the data, the source, the pool size and the seed need a new run.
    pub fn check_same_run(&self, new: &Self) -> Result<(), Error> {
        if new.mlp != self.mlp {
            return Err(Error::config(
                "the network's shape changed: start a new training run",
            ));
        }
        if new.dataset != self.dataset
            || new.source != self.source
            || new.pool_size != self.pool_size
            || new.seed != self.seed
        {
            return Err(Error::config(
                "the data, source or seed changed: start a new training run",
            ));
        }
        Ok(())
    }

    /// Whether `new` differs from this configuration only in the optimizer's values: the
    /// learning rate and its schedule, weight decay, AdamW's β and ε, clipping, the EMA decay
    /// and the step budget. A trainer takes such a change without rebuilding anything (the GPU
    /// trainer rewrites two uniforms); any other change (path, time sampling, batch, coupling,
    /// label dropout) needs a new plan of the step.
    pub fn only_optimizer_differs(&self, new: &Self) -> bool {
        let optimizer_only = Self {
            optimizer: self.optimizer,
            lr_schedule: self.lr_schedule,
            clip_norm: self.clip_norm,
            ema_decay: self.ema_decay,
            steps: self.steps,
            ..new.clone()
        };
        optimizer_only == *self
    }

    /// The model spec a trainer with this configuration produces.
    pub fn model_spec(&self) -> ModelSpec {
        ModelSpec {
            mlp: self.mlp,
            path: self.path,
            source: self.source.clone(),
            dataset: self.dataset.clone(),
        }
    }

    /// Where the batches of a run with this configuration come from: the run's key, time
    /// distribution and label dropout, with the given pools.
    pub fn batch_draws<'a>(
        &self,
        data: &'a Points,
        source: Option<&'a Points>,
        pairs: Option<&'a CouplingPool>,
    ) -> BatchDraws<'a> {
        BatchDraws {
            key: crate::rng::key_from_seed(self.seed),
            data,
            source,
            pairs,
            time_sampling: self.time_sampling,
            p_drop: self.p_drop,
            null_label: self.mlp.is_conditional().then(|| self.mlp.null_label()),
        }
    }
}

/// The data pool and source pool (`None` for N(0, I)) a run with `config` trains on: the user's
/// own points where given (for a custom dataset or source), built-in ones drawn from the seed.
/// Shared by the CPU and GPU trainers, so both train on the same pools; [`check_pools`] checks
/// them against the configuration.
pub fn resolve_pools(
    config: &TrainConfig,
    data: Option<Points>,
    source: Option<Points>,
) -> Result<(Points, Option<Points>), Error> {
    let data = match (&config.dataset, data) {
        (_, Some(points)) => points,
        (DataSource::Builtin(dataset), None) => dataset.sample(config.pool_size, config.seed),
        (DataSource::Custom { name }, None) => {
            return Err(Error::config(format!(
                "the points of '{name}' were not supplied"
            )));
        }
    };
    let source = match (&config.source, source) {
        (_, Some(points)) => Some(points),
        (DataSource::Builtin(Dataset::Normal), None) => None,
        (DataSource::Builtin(dataset), None) => {
            Some(dataset.sample(config.pool_size, config.seed ^ 0x50_05CE))
        }
        (DataSource::Custom { name }, None) => {
            return Err(Error::config(format!(
                "the source points of '{name}' were not supplied"
            )));
        }
    };
    Ok((data, source))
}

/// Checks `config` against the pools a trainer is given: the settings, the data's classes, and
/// that a non-normal source has points. Both trainers call it before building anything.
pub fn check_pools(
    config: &TrainConfig,
    data: &Points,
    source: Option<&Points>,
) -> Result<(), Error> {
    config.validate(data)?;
    if !config.source.is_standard_normal() && source.is_none_or(Points::is_empty) {
        return Err(Error::config(format!(
            "the source '{}' has no points",
            config.source.name()
        )));
    }
    Ok(())
}

/// The source side of reflow round `round + 1`'s coupling: what [`reflow_pool`] integrates.
#[derive(Clone, Debug, PartialEq)]
pub struct ReflowSources {
    /// Source points (unscaled; multiply by the path's prior scale to integrate).
    pub x0: Vec<[f32; 2]>,
    /// Classes to generate with, for conditional models.
    pub labels: Option<Vec<u32>>,
    /// The round's seed.
    pub seed: u64,
}

/// Draws the source points (and classes) of reflow round `round + 1`, so that another
/// integrator (the GPU sampler) can build the same coupling as [`reflow_pool`].
pub fn reflow_sources(
    config: &TrainConfig,
    round: usize,
    pairs: usize,
    data: &Points,
    source: Option<&Points>,
) -> Result<ReflowSources, Error> {
    if pairs == 0 {
        return Err(Error::config("reflow needs at least one pair"));
    }
    let seed = config.seed ^ (0x0005_EF10_u64 << 8).wrapping_mul(round as u64 + 1);
    let x0 = draw_source(&config.source, pairs, seed, source)?;
    let labels = match (&data.labels, config.mlp.is_conditional()) {
        (Some(data_labels), true) => {
            let mut rng = Rng::with_domain(seed, "reflow-labels");
            Some(
                (0..pairs)
                    .map(|_| data_labels[rng.below(data_labels.len())])
                    .collect(),
            )
        }
        _ => None,
    };
    Ok(ReflowSources { x0, labels, seed })
}

/// The coupling of reflow round `round + 1` (QR §7.1): `pairs` source points taken along
/// `model`'s ODE with `sampler`. Class-conditional models generate each pair with a class drawn
/// from the data's labels. Shared by the CPU and GPU trainers.
pub fn reflow_pool(
    model: &FlowModel,
    config: &TrainConfig,
    round: usize,
    pairs: usize,
    sampler: &SamplerConfig,
    data: &Points,
    source: Option<&Points>,
) -> Result<CouplingPool, Error> {
    let ReflowSources {
        x0,
        labels,
        seed: round_seed,
    } = reflow_sources(config, round, pairs, data, source)?;
    let start = config.path.to_prior(&x0);
    let request = SampleRequest {
        sampler: *sampler,
        n: pairs,
        seed: round_seed,
        labels: labels.clone(),
        cfg_scale: 1.0,
        record: Record::NONE,
    };
    let out = model.integrate(&start, &request)?;
    Ok(CouplingPool {
        x0,
        x1: out.x,
        labels,
    })
}

/// Statistics of one step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    /// The MSE loss of the batch (before the update).
    pub loss: f32,
    /// Gradient norm before clipping.
    pub grad_norm: f32,
    /// Learning rate used.
    pub lr: f32,
}

/// Rows per chunk of the backward pass: big enough for efficient matrix products.
const CHUNK_ROWS: usize = 256;

#[derive(Debug, Default)]
struct Batch {
    pairs: BatchPairs,
    x_in: Vec<[f32; 2]>,
    target: Vec<[f32; 2]>,
    out: Vec<[f32; 2]>,
    d_out: Vec<[f32; 2]>,
}

/// Trains a [`Mlp`] on the CPU.
pub struct CpuTrainer {
    config: TrainConfig,
    mlp: Mlp,
    params: Vec<f32>,
    ema: Vec<f32>,
    grads: Vec<f32>,
    adam: AdamW,
    /// Steps taken in all rounds; drives the RNG.
    step: u64,
    /// Steps taken in this round; drives the learning-rate schedule.
    round_step: u64,
    round_steps: u64,
    round: usize,
    data: Points,
    source: Option<Points>,
    pairs: Option<CouplingPool>,
    batch: Batch,
    prepared: Prepared,
    chunk_grads: Vec<Vec<f32>>,
    workspaces: Mutex<Vec<Workspace>>,
    losses: Vec<f32>,
}

impl CpuTrainer {
    /// A trainer on a built-in dataset (and source), drawing its pools from the seed.
    pub fn new(config: TrainConfig) -> Result<Self, Error> {
        Self::with_custom(config, None, None)
    }

    /// A trainer where the user's own points stand in for a custom dataset and/or source (as
    /// the config names them); built-in ones are drawn from the seed.
    pub fn with_custom(
        config: TrainConfig,
        data: Option<Points>,
        source: Option<Points>,
    ) -> Result<Self, Error> {
        let (data, source) = resolve_pools(&config, data, source)?;
        Self::with_data(config, data, source)
    }

    /// A trainer on the given data pool (and source pool; `None` for N(0, I)).
    pub fn with_data(
        config: TrainConfig,
        data: Points,
        source: Option<Points>,
    ) -> Result<Self, Error> {
        check_pools(&config, &data, source.as_ref())?;
        let mlp = Mlp::new(config.mlp)?;
        let params = mlp.init_params(config.seed);
        let n = mlp.num_params();
        Ok(Self {
            ema: params.clone(),
            grads: vec![0.0; n],
            adam: AdamW::new(n, config.optimizer),
            step: 0,
            round_step: 0,
            round_steps: config.steps,
            round: 0,
            data,
            source,
            pairs: None,
            batch: Batch::default(),
            prepared: Prepared::default(),
            chunk_grads: Vec::new(),
            workspaces: Mutex::new(Vec::new()),
            losses: Vec::new(),
            params,
            mlp,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Switches the data (and source) the network trains on, keeping the weights, optimizer
    /// state and step count (the flow morphs from the old data to the new): `data`/`source` are
    /// the user's points for custom sources; built-in ones are drawn from the seed. A reflow
    /// coupling in use is dropped: it was built for the old data. As the GPU trainer's
    /// `set_dataset`.
    pub fn set_dataset(
        &mut self,
        dataset: DataSource,
        source: DataSource,
        data: Option<Points>,
        source_points: Option<Points>,
    ) -> Result<(), Error> {
        let config = TrainConfig {
            dataset,
            source,
            ..self.config.clone()
        };
        let (data, source_pool) = resolve_pools(&config, data, source_points)?;
        check_pools(&config, &data, source_pool.as_ref())?;
        self.data = data;
        self.source = source_pool;
        self.pairs = None;
        self.config = config;
        Ok(())
    }

    /// Changes settings that do not change the network's shape: path, time sampling, batch,
    /// optimizer, schedule, clipping, EMA, coupling, label dropout. The weights, optimizer state
    /// and step count are kept. A different network shape or dataset needs a new trainer.
    pub fn set_config(&mut self, config: TrainConfig) -> Result<(), Error> {
        self.config.check_same_run(&config)?;
        config.validate(&self.data)?;
        self.adam.set_config(config.optimizer);
        if config.steps != self.config.steps && self.round == 0 {
            self.round_steps = config.steps;
        }
        self.config = config;
        Ok(())
    }

    /// The network.
    pub fn mlp(&self) -> &Mlp {
        &self.mlp
    }

    /// Current parameters.
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// Replaces the parameters (e.g. with loaded weights); resets the EMA to them.
    pub fn set_params(&mut self, params: &[f32]) -> Result<(), Error> {
        if params.len() != self.params.len() {
            return Err(Error::config(format!(
                "expected {} parameters, got {}",
                self.params.len(),
                params.len()
            )));
        }
        self.params.copy_from_slice(params);
        self.ema.copy_from_slice(params);
        Ok(())
    }

    /// Goes back to `step` of the current round with `params` and `ema` (a checkpoint taken
    /// there): later losses are forgotten and AdamW starts afresh, since its moments are those
    /// of the steps undone. After a divergence the run goes on from the last good weights.
    pub fn rewind(&mut self, step: u64, params: &[f32], ema: &[f32]) -> Result<(), Error> {
        let round_start = self.step - self.round_step;
        if step > self.step || step < round_start {
            return Err(Error::config(format!(
                "cannot rewind to step {step}: this round runs from step {round_start} to {}",
                self.step
            )));
        }
        if params.len() != self.params.len() || ema.len() != self.ema.len() {
            return Err(Error::config(format!(
                "expected {} parameters, got {} and {}",
                self.params.len(),
                params.len(),
                ema.len()
            )));
        }
        self.params.copy_from_slice(params);
        self.ema.copy_from_slice(ema);
        self.adam = AdamW::new(self.params.len(), self.config.optimizer);
        self.round_step -= self.step - step;
        self.step = step;
        self.losses.truncate(step as usize);
        Ok(())
    }

    /// The EMA of the parameters.
    pub fn ema(&self) -> &[f32] {
        &self.ema
    }

    /// The optimizer.
    pub fn optimizer(&self) -> &AdamW {
        &self.adam
    }

    /// Steps taken in all rounds.
    pub fn steps_done(&self) -> u64 {
        self.step
    }

    /// Steps taken in the current round, and the round's length.
    pub fn round_progress(&self) -> (u64, u64) {
        (self.round_step, self.round_steps)
    }

    /// The reflow round (0 before any reflow).
    pub fn round(&self) -> usize {
        self.round
    }

    /// The loss of every step so far.
    pub fn losses(&self) -> &[f32] {
        &self.losses
    }

    /// The data pool.
    pub fn data(&self) -> &Points {
        &self.data
    }

    /// The source pool (`None` for N(0, I)).
    pub fn source_pool(&self) -> Option<&Points> {
        self.source.as_ref()
    }

    /// The reflow coupling in use, if any.
    pub fn coupling_pool(&self) -> Option<&CouplingPool> {
        self.pairs.as_ref()
    }

    /// The current model, with the raw or the EMA parameters.
    pub fn model(&self, use_ema: bool) -> FlowModel {
        let params = if use_ema { &self.ema } else { &self.params };
        FlowModel {
            spec: self.config.model_spec(),
            mlp: self.mlp.clone(),
            params: params.clone(),
        }
    }

    /// One training step. On a non-finite loss or gradient nothing is updated and
    /// [`Error::Diverged`] says so: the weights stay those of the last good step.
    pub fn step(&mut self) -> Result<StepStats, Error> {
        self.draw_batch();
        self.apply_coupling();
        self.prepare_targets();
        let loss = self.backprop();
        let lr = self.config.lr_schedule.lr_at(
            self.config.optimizer.lr,
            self.round_step,
            self.round_steps,
        );
        let norm = match self.config.clip_norm {
            Some(max_norm) => clip_grad_norm(&mut self.grads, max_norm),
            None => grad_norm(&self.grads),
        };
        if !loss.is_finite() || !norm.is_finite() {
            let shown = if loss.is_finite() {
                f32::NAN
            } else {
                loss as f32
            };
            return Err(Error::Diverged {
                step: self.step,
                loss: shown,
                lr,
            });
        }
        self.adam.step(&mut self.params, &self.grads, lr);
        ema_update(&mut self.ema, &self.params, self.config.ema_decay);
        self.step += 1;
        self.round_step += 1;
        let loss = loss as f32;
        self.losses.push(loss);
        Ok(StepStats {
            loss,
            grad_norm: norm,
            lr,
        })
    }

    /// The batch's random draws for the current step: exactly what the GPU trainer draws.
    fn draw_batch(&mut self) {
        let draws = self
            .config
            .batch_draws(&self.data, self.source.as_ref(), self.pairs.as_ref());
        draws.fill(self.step, self.config.batch, &mut self.batch.pairs);
    }

    /// Minibatch OT: re-pairs x₁ (with its label) to x₀ within blocks of the batch.
    fn apply_coupling(&mut self) {
        let Coupling::MinibatchOt { block } = self.config.coupling else {
            return;
        };
        if self.pairs.is_some() {
            // A reflow coupling is already a deterministic pairing.
            return;
        }
        self.batch.pairs.couple_ot(block);
    }

    /// x_t, the network input and its regression target (QR §4.3 through the preconditioning).
    fn prepare_targets(&mut self) {
        let b = self.config.batch;
        let path = self.config.path;
        let batch = &mut self.batch;
        batch.x_in.resize(b, [0.0; 2]);
        batch.target.resize(b, [0.0; 2]);
        let pairs = &batch.pairs;
        for i in 0..b {
            (batch.x_in[i], batch.target[i]) =
                regression_pair(&path, pairs.t[i], pairs.x0[i], pairs.x1[i]);
        }
    }

    /// Forward and backward over the batch in parallel chunks; leaves ∂L/∂θ in `grads` and
    /// returns the loss.
    fn backprop(&mut self) -> f64 {
        let b = self.config.batch;
        let n = self.mlp.num_params();
        let chunks = b.div_ceil(CHUNK_ROWS);
        if self.chunk_grads.len() != chunks {
            self.chunk_grads = vec![vec![0.0; n]; chunks];
        }
        let batch = &mut self.batch;
        batch.out.resize(b, [0.0; 2]);
        batch.d_out.resize(b, [0.0; 2]);
        let conditional = self.config.mlp.is_conditional();

        struct Job<'a> {
            range: std::ops::Range<usize>,
            out: &'a mut [[f32; 2]],
            d_out: &'a mut [[f32; 2]],
            grads: &'a mut [f32],
            loss: f64,
        }
        let mut jobs: Vec<Job<'_>> = Vec::with_capacity(chunks);
        {
            let mut out_rest = batch.out.as_mut_slice();
            let mut d_rest = batch.d_out.as_mut_slice();
            for (range, grads) in par::split_even(b, chunks)
                .into_iter()
                .zip(&mut self.chunk_grads)
            {
                jobs.push(Job {
                    out: par::take_front(&mut out_rest, range.len()),
                    d_out: par::take_front(&mut d_rest, range.len()),
                    range,
                    grads,
                    loss: 0.0,
                });
            }
        }
        self.mlp.prepare(&self.params, &mut self.prepared);
        let (mlp, params, workspaces) = (&self.mlp, &self.params, &self.workspaces);
        let prepared = &self.prepared;
        let (t, x_in, target, labels) = (
            &batch.pairs.t,
            &batch.x_in,
            &batch.target,
            &batch.pairs.labels,
        );
        par::for_each_mut(&mut jobs, |job| {
            let mut ws = workspaces
                .lock()
                .map(|mut pool| pool.pop())
                .ok()
                .flatten()
                .unwrap_or_default();
            let r = job.range.clone();
            let labels = conditional.then(|| &labels[r.clone()]);
            job.grads.fill(0.0);
            mlp.forward(
                params,
                prepared,
                &t[r.clone()],
                &x_in[r.clone()],
                labels,
                &mut ws,
                job.out,
            );
            job.loss = mse_loss_grad(job.out, &target[r], 2 * b, job.d_out);
            mlp.backward(params, prepared, labels, job.d_out, &mut ws, job.grads);
            if let Ok(mut pool) = workspaces.lock() {
                pool.push(ws);
            }
        });
        let loss: f64 = jobs.iter().map(|j| j.loss).sum();
        drop(jobs);

        // Sum the chunks' gradients in chunk order, in parallel over parameter ranges.
        let parts = par::threads().max(1) * 4;
        let chunk_grads = &self.chunk_grads;
        let mut slices: Vec<(usize, &mut [f32])> = Vec::with_capacity(parts);
        let mut rest = self.grads.as_mut_slice();
        let mut start = 0;
        for range in par::split_even(n, parts) {
            slices.push((start, par::take_front(&mut rest, range.len())));
            start += range.len();
        }
        par::for_each_mut(&mut slices, |(start, out)| {
            let len = out.len();
            out.copy_from_slice(&chunk_grads[0][*start..*start + len]);
            for g in &chunk_grads[1..] {
                for (o, &v) in out.iter_mut().zip(&g[*start..*start + len]) {
                    *o += v;
                }
            }
        });
        self.mlp.finish_gradients(&self.params, &mut self.grads);
        loss
    }

    /// Starts the next reflow round (QR §7.1): draws `pairs` source points, takes each along the
    /// current model's ODE with `sampler` to get its partner, and trains on those pairs from now
    /// on, for `steps` steps (the schedule restarts). Class-conditional models generate each pair
    /// with a class drawn from the data's labels.
    pub fn start_reflow_round(
        &mut self,
        pairs: usize,
        sampler: &SamplerConfig,
        use_ema: bool,
        steps: u64,
    ) -> Result<(), Error> {
        let pool = reflow_pool(
            &self.model(use_ema),
            &self.config,
            self.round,
            pairs,
            sampler,
            &self.data,
            self.source.as_ref(),
        )?;
        self.pairs = Some(pool);
        self.round += 1;
        self.round_step = 0;
        self.round_steps = steps;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Dataset;

    fn tiny() -> TrainConfig {
        TrainConfig {
            mlp: MlpConfig {
                hidden: 32,
                depth: 2,
                t_dim: 16,
                t_scale: 1.0,
                num_classes: 0,
            },
            batch: 300,
            steps: 50,
            lr_schedule: LrSchedule::Constant,
            optimizer: AdamWConfig {
                lr: 3e-3,
                ..AdamWConfig::default()
            },
            pool_size: 4096,
            ..TrainConfig::default()
        }
    }

    #[test]
    fn same_seed_same_result() {
        let run = |seed| {
            let mut trainer = CpuTrainer::new(TrainConfig { seed, ..tiny() }).unwrap();
            for _ in 0..20 {
                trainer.step().unwrap();
            }
            (trainer.params().to_vec(), trainer.losses().to_vec())
        };
        let (a, la) = run(1);
        let (b, lb) = run(1);
        assert_eq!(a, b);
        assert_eq!(la, lb);
        let (c, _) = run(2);
        assert_ne!(a, c);
    }

    #[test]
    fn loss_falls() {
        let mut trainer = CpuTrainer::new(tiny()).unwrap();
        for _ in 0..200 {
            trainer.step().unwrap();
        }
        let first: f32 = trainer.losses()[..10].iter().sum::<f32>() / 10.0;
        let last: f32 = trainer.losses()[190..].iter().sum::<f32>() / 10.0;
        assert!(last < 0.8 * first, "loss {first} → {last}");
    }

    #[test]
    fn a_diverging_learning_rate_is_reported_and_keeps_the_weights() {
        let mut config = tiny();
        config.optimizer.lr = 1e30;
        config.clip_norm = None;
        let mut trainer = CpuTrainer::new(config).unwrap();
        let mut error = None;
        let mut last_good = trainer.params().to_vec();
        for _ in 0..50 {
            match trainer.step() {
                Ok(_) => last_good = trainer.params().to_vec(),
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let error = error.expect("a learning rate of 1e30 must diverge");
        assert!(matches!(error, Error::Diverged { .. }), "{error}");
        assert!(error.to_string().contains("lower the learning rate"));
        assert_eq!(trainer.params(), last_good.as_slice());
    }

    #[test]
    fn class_conditioning_needs_labels() {
        let mut config = tiny();
        config.dataset = DataSource::Builtin(Dataset::Checkerboard);
        config.mlp.num_classes = 2;
        let err = CpuTrainer::new(config).err().unwrap().to_string();
        assert!(err.contains("has none"), "{err}");
    }

    #[test]
    fn conditional_training_and_ot_run() {
        let mut config = tiny();
        config.mlp.num_classes = 2;
        config.coupling = Coupling::MinibatchOt { block: 128 };
        let mut trainer = CpuTrainer::new(config).unwrap();
        for _ in 0..5 {
            trainer.step().unwrap();
        }
        // Label dropout reaches the null class.
        assert!(trainer.batch.pairs.labels.contains(&2));
    }

    #[test]
    fn ot_pairs_are_closer_than_independent_ones() {
        let mut config = tiny();
        let mut independent = CpuTrainer::new(config.clone()).unwrap();
        independent.draw_batch();
        let cost = |t: &CpuTrainer| -> f64 {
            t.batch
                .pairs
                .x0
                .iter()
                .zip(&t.batch.pairs.x1)
                .map(|(a, b)| f64::from((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)))
                .sum()
        };
        config.coupling = Coupling::MinibatchOt { block: 300 };
        let mut ot = CpuTrainer::new(config).unwrap();
        ot.draw_batch();
        ot.apply_coupling();
        assert!(cost(&ot) < 0.5 * cost(&independent));
    }

    #[test]
    fn cosine_schedule_shape() {
        let s = LrSchedule::Cosine {
            warmup_steps: 10,
            final_ratio: 0.1,
        };
        assert!((s.lr_at(1.0, 0, 100) - 0.1).abs() < 1e-6);
        assert!((s.lr_at(1.0, 9, 100) - 1.0).abs() < 1e-6);
        assert!((s.lr_at(1.0, 10, 100) - 1.0).abs() < 1e-6);
        assert!((s.lr_at(1.0, 100, 100) - 0.1).abs() < 1e-6);
    }
}
