//! The GPU trainer: QR §4.4's training step in WGSL, many steps per submission.
//!
//! One step is a fixed list of dispatches (the *plan*), built once per configuration with its
//! bind groups and uniforms; the per-step values (RNG step, learning rate, AdamW's bias
//! corrections) sit in one 256-byte slot per step of a dynamic-offset uniform buffer, so encoding
//! `n` steps is `n` replays of the plan with different offsets:
//!
//! 1. `batch_draw`: x₀, x₁, t, labels with the core's counter-based RNG; x_t, u_t, the network's
//!    input and target through the path's preconditioning;
//! 2. `linear_forward` × (3 + depth): t_embed.1 reading the time embedding on the fly,
//!    t_embed.3 (+ label embedding) writing into net.0's input, net.0 … the output layer;
//! 3. `mse_loss`: ∂L/∂out and the loss's partial sums;
//! 4. per layer, last to first: `linear_backward_weight` + `grad_reduce` (weights and bias in one
//!    product, split over the batch, added in a fixed order) and `linear_backward_input` (times
//!    SiLU′ of the layer below); `label_embed_grad` when conditional;
//! 5. `grad_norm`, `step_stats` (loss, norm, clipping factor, the sticky divergence guard),
//!    `adamw_ema`.
//!
//! The losses come back through a ring of staging buffers: [`GpuTrainer::submit`] never waits,
//! [`GpuTrainer::poll`] picks up whatever has arrived. Buffers are allocated once and grown only
//! when the batch outgrows them.

use std::collections::VecDeque;

use bytemuck::Pod;
use flowplay_core::Error;
use flowplay_core::batch::BatchPairs;
use flowplay_core::data::Points;
use flowplay_core::mlp::Mlp;
use flowplay_core::path::TimeSampling;
use flowplay_core::rng;
use flowplay_core::train::{
    Coupling, CouplingPool, StepStats, TrainConfig, check_pools, resolve_pools,
};

use crate::GpuError;
use crate::buffers::{self, StagingRing};
use crate::kernel::{self, Kernel, grid_1d};
use crate::layout::{LinearOffsets, MlpOffsets};
use crate::uniforms::{
    AdamWUniform, BackwardInputUniform, BackwardWeightUniform, BatchDrawUniform, Control,
    CountUniform, GradReduceUniform, LabelEmbedGradUniform, LinearForwardUniform, LinearInput,
    MseLossUniform, NONE, PathUniform, StepStatsUniform, StepValues,
};

/// Most steps encoded in one submission.
pub const MAX_STEPS_PER_SUBMIT: u32 = 256;
/// Steps per submission with minibatch OT, whose batches the CPU pairs and uploads.
const OT_STEPS_PER_SUBMIT: u32 = 8;
/// Bytes between per-step slots of the dynamic uniform (WebGPU's offset alignment).
const STEP_SLOT_BYTES: u64 = 256;
/// Staging buffers for the losses: how many submissions may be in flight.
const RING_SLOTS: usize = 4;
/// Batch rows per split of the weight-gradient products.
const SPLIT_ROWS: u32 = 256;
/// Largest buffer of per-split partial gradients.
const MAX_PARTIAL_BYTES: u64 = 32 << 20;
/// Workgroups of `grad_norm.wgsl` (its `GROUPS`).
const NORM_GROUPS: u32 = 256;

/// How `batch_draw.wgsl` finds x₀ and x₁ (its `SOURCE_*` constants).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SourceMode {
    Normal = 0,
    Pool = 1,
    Pairs = 2,
    Uploaded = 3,
}

/// The training pipelines, compiled once.
struct Kernels {
    draw: Kernel,
    forward: Kernel,
    loss: Kernel,
    backward_input: Kernel,
    backward_weight: Kernel,
    reduce: Kernel,
    label_grad: Kernel,
    norm: Kernel,
    stats: Kernel,
    adamw: Kernel,
}

impl Kernels {
    fn new(device: &wgpu::Device) -> Self {
        Self {
            draw: Kernel::new(device, &kernel::BATCH_DRAW),
            forward: Kernel::new(device, &kernel::LINEAR_FORWARD),
            loss: Kernel::new(device, &kernel::MSE_LOSS),
            backward_input: Kernel::new(device, &kernel::LINEAR_BACKWARD_INPUT),
            backward_weight: Kernel::new(device, &kernel::LINEAR_BACKWARD_WEIGHT),
            reduce: Kernel::new(device, &kernel::GRAD_REDUCE),
            label_grad: Kernel::new(device, &kernel::LABEL_EMBED_GRAD),
            norm: Kernel::new(device, &kernel::GRAD_NORM),
            stats: Kernel::new(device, &kernel::STEP_STATS),
            adamw: Kernel::new(device, &kernel::ADAMW_EMA),
        }
    }
}

/// Buffers whose size depends on the batch.
struct BatchBuffers {
    capacity: u32,
    t: wgpu::Buffer,
    labels: wgpu::Buffer,
    /// net.0's input rows `[x_in, t_embed]`, `batch × (2 + h)`.
    net_input: wgpu::Buffer,
    target: wgpu::Buffer,
    out: wgpu::Buffer,
    d_out: wgpu::Buffer,
    z_t1: wgpu::Buffer,
    /// Pre-activations of net.0 … net.{2(depth−1)}.
    z: Vec<wgpu::Buffer>,
    /// Ping-pong gradients with respect to pre-activations.
    dz: [wgpu::Buffer; 2],
    /// ∂L/∂t_embed (net.0's input gradient without the x columns).
    d_embed: wgpu::Buffer,
    loss_partials: wgpu::Buffer,
    partials: wgpu::Buffer,
    /// Batches paired on the CPU (minibatch OT): 6 words per sample per step.
    uploaded: wgpu::Buffer,
}

impl BatchBuffers {
    fn new(device: &wgpu::Device, mlp: &MlpOffsets, capacity: u32) -> Self {
        let b = u64::from(capacity);
        let h = u64::from(mlp.hidden);
        let f = |label: &str, floats: u64| buffers::storage(device, label, floats * 4);
        let width = mlp.widest_gradient();
        let splits = u64::from(splits_for(capacity, mlp));
        Self {
            capacity,
            t: f("trainer::t", b),
            labels: f("trainer::labels", b),
            net_input: f("trainer::net_input", b * (2 + h)),
            target: f("trainer::target", b * 2),
            out: f("trainer::out", b * 2),
            d_out: f("trainer::d_out", b * 2),
            z_t1: f("trainer::z_t1", b * h),
            z: (0..mlp.layers.len() - 1)
                .map(|i| f(&format!("trainer::z{i}"), b * h))
                .collect(),
            dz: [f("trainer::dz0", b * h), f("trainer::dz1", b * h)],
            d_embed: f("trainer::d_embed", b * h),
            loss_partials: f("trainer::loss_partials", b.div_ceil(256)),
            partials: f("trainer::partials", splits * width),
            uploaded: f(
                "trainer::uploaded",
                if capacity > 0 {
                    b * 6 * u64::from(OT_STEPS_PER_SUBMIT)
                } else {
                    1
                },
            ),
        }
    }
}

/// How many splits the weight-gradient products use for `batch` rows.
fn splits_for(batch: u32, mlp: &MlpOffsets) -> u32 {
    let by_memory = (MAX_PARTIAL_BYTES / (mlp.widest_gradient() * 4)).max(1) as u32;
    batch.div_ceil(SPLIT_ROWS).clamp(1, by_memory.min(64))
}

/// The data on the GPU.
struct Pools {
    data_xy: wgpu::Buffer,
    data_labels: wgpu::Buffer,
    source_xy: wgpu::Buffer,
    data_len: u32,
    source_len: u32,
    labelled: bool,
    mode: SourceMode,
}

impl Pools {
    fn new(device: &wgpu::Device, data: &Points, source: Option<&Points>) -> Self {
        let labels: &[u32] = data.labels.as_deref().unwrap_or(&[0]);
        let (source_xy, source_len, mode) = match source {
            Some(pool) => (
                buffers::storage_with(device, "trainer::source_xy", &pool.xy),
                pool.len() as u32,
                SourceMode::Pool,
            ),
            None => (
                buffers::storage(device, "trainer::source_xy", 16),
                0,
                SourceMode::Normal,
            ),
        };
        Self {
            data_xy: buffers::storage_with(device, "trainer::data_xy", &data.xy),
            data_labels: buffers::storage_with(device, "trainer::data_labels", labels),
            source_xy,
            data_len: data.len() as u32,
            source_len,
            labelled: data.labels.is_some(),
            mode,
        }
    }

    fn pairs(device: &wgpu::Device, pool: &CouplingPool) -> Self {
        let labels: &[u32] = pool.labels.as_deref().unwrap_or(&[0]);
        Self {
            data_xy: buffers::storage_with(device, "trainer::pairs_x1", &pool.x1),
            data_labels: buffers::storage_with(device, "trainer::pairs_labels", labels),
            source_xy: buffers::storage_with(device, "trainer::pairs_x0", &pool.x0),
            data_len: pool.x1.len() as u32,
            source_len: pool.x0.len() as u32,
            labelled: pool.labels.is_some(),
            mode: SourceMode::Pairs,
        }
    }
}

/// One dispatch of the plan.
struct Dispatch {
    kernel: KernelId,
    group: wgpu::BindGroup,
    offset: DynamicOffset,
    workgroups: [u32; 3],
}

/// The dynamic offset a dispatch binds its table uniform at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DynamicOffset {
    /// The kernel has no dynamic uniform.
    None,
    /// Its uniform is the layer's own (an entry at offset 0).
    Zero,
    /// The step's slot of the per-step values.
    Step,
}

#[derive(Clone, Copy, Debug)]
enum KernelId {
    Draw,
    Forward,
    Loss,
    BackwardInput,
    BackwardWeight,
    Reduce,
    LabelGrad,
    Norm,
    Stats,
    Adamw,
}

/// One training step's dispatches.
struct Plan {
    dispatches: Vec<Dispatch>,
    /// Dispatches up to here compute the loss and ∂L/∂θ; the rest clip and update.
    gradient_end: usize,
    /// The uniforms of the optimizer's values (clipping; AdamW's β, ε and the EMA decay),
    /// rewritten in place when only they change.
    stats_uniform: Option<wgpu::Buffer>,
    adamw_uniform: Option<wgpu::Buffer>,
}

/// A submission whose losses have not come back yet.
#[derive(Clone, Copy, Debug)]
struct Pending {
    tag: u64,
    first_step: u64,
    first_round_step: u64,
    first_adam_step: u64,
    count: u32,
}

/// What [`GpuTrainer::inspect`] reads back: one step's batch, outputs and gradient, computed
/// without updating anything.
#[derive(Clone, Debug, Default)]
pub struct Inspection {
    /// t of each sample.
    pub t: Vec<f32>,
    /// Label of each sample (after dropout).
    pub labels: Vec<u32>,
    /// The network's input `c_in·x_t`.
    pub x_in: Vec<[f32; 2]>,
    /// The regression target.
    pub target: Vec<[f32; 2]>,
    /// The network's output.
    pub out: Vec<[f32; 2]>,
    /// The batch loss.
    pub loss: f32,
    /// ∂L/∂θ in the core's flat layout.
    pub grads: Vec<f32>,
}

/// Trains the velocity MLP on the GPU.
pub struct GpuTrainer {
    device: wgpu::Device,
    queue: wgpu::Queue,
    config: TrainConfig,
    mlp: Mlp,
    offsets: MlpOffsets,
    kernels: Kernels,
    params: wgpu::Buffer,
    ema: wgpu::Buffer,
    grads: wgpu::Buffer,
    adam_m: wgpu::Buffer,
    adam_v: wgpu::Buffer,
    freqs: wgpu::Buffer,
    control: wgpu::Buffer,
    stats: wgpu::Buffer,
    step_values: wgpu::Buffer,
    norm_partials: wgpu::Buffer,
    batch: BatchBuffers,
    pools: Pools,
    plan: Plan,
    ring: StagingRing,
    pending: VecDeque<Pending>,
    next_tag: u64,
    /// Submissions at or below this tag were cut short by a divergence: ignore their stats.
    discard_through: Option<u64>,
    /// Steps submitted (all rounds); drives the RNG.
    step: u64,
    round_step: u64,
    round_steps: u64,
    round: usize,
    adam_steps: u64,
    /// The GPU's sticky divergence flag is set and must be cleared before the next submission.
    halted: bool,
    data: Points,
    source: Option<Points>,
    pairs: Option<CouplingPool>,
    cpu_batch: BatchPairs,
    losses: Vec<f32>,
    /// Plans built so far (see [`GpuTrainer::plan_builds`]).
    plan_builds: u64,
}

impl GpuTrainer {
    /// A trainer for `config` on `device`, with the built-in pools drawn from the seed exactly as
    /// the CPU trainer draws them. The initial weights are the CPU trainer's too.
    pub fn new(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        config: TrainConfig,
    ) -> Result<Self, GpuError> {
        Self::with_custom(device, queue, config, None, None)
    }

    /// A trainer where the user's own points stand in for a custom dataset and/or source.
    pub fn with_custom(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        config: TrainConfig,
        data: Option<Points>,
        source: Option<Points>,
    ) -> Result<Self, GpuError> {
        crate::check_compute_limits(&device.limits())?;
        let (data, source) = resolve_pools(&config, data, source)?;
        check_pools(&config, &data, source.as_ref())?;
        let mlp = Mlp::new(config.mlp)?;
        let offsets = MlpOffsets::new(&mlp);
        check_sizes(
            device,
            &config,
            &offsets,
            data.len(),
            source.as_ref().map_or(0, Points::len),
        )?;
        let params = mlp.init_params(config.seed);
        let n = u64::from(offsets.total);
        let kernels = Kernels::new(device);
        let params_buffer = buffers::storage_with(device, "trainer::params", &params);
        let ema = buffers::storage_with(device, "trainer::ema", &params);
        let batch = BatchBuffers::new(device, &offsets, config.batch as u32);
        let pools = Pools::new(device, &data, source.as_ref());
        let mut trainer = Self {
            kernels,
            params: params_buffer,
            ema,
            grads: buffers::storage(device, "trainer::grads", n * 4),
            adam_m: buffers::storage(device, "trainer::adam_m", n * 4),
            adam_v: buffers::storage(device, "trainer::adam_v", n * 4),
            freqs: buffers::storage_with(device, "trainer::freqs", mlp.freqs()),
            control: buffers::storage_with(device, "trainer::control", &[Control::default()]),
            stats: buffers::storage(
                device,
                "trainer::stats",
                u64::from(MAX_STEPS_PER_SUBMIT) * 16,
            ),
            step_values: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("trainer::step_values"),
                size: u64::from(MAX_STEPS_PER_SUBMIT) * STEP_SLOT_BYTES,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            norm_partials: buffers::storage(
                device,
                "trainer::norm_partials",
                u64::from(NORM_GROUPS) * 4,
            ),
            batch,
            pools,
            plan: Plan {
                dispatches: Vec::new(),
                gradient_end: 0,
                stats_uniform: None,
                adamw_uniform: None,
            },
            ring: StagingRing::new(
                device,
                "trainer::stats_readback",
                RING_SLOTS,
                u64::from(MAX_STEPS_PER_SUBMIT) * 16,
            ),
            pending: VecDeque::new(),
            next_tag: 0,
            discard_through: None,
            step: 0,
            round_step: 0,
            round_steps: config.steps,
            round: 0,
            adam_steps: 0,
            halted: false,
            data,
            source,
            pairs: None,
            cpu_batch: BatchPairs::default(),
            losses: Vec::new(),
            plan_builds: 0,
            device: device.clone(),
            queue: queue.clone(),
            offsets,
            mlp,
            config,
        };
        trainer.build_plan();
        Ok(trainer)
    }

    /// The configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The network.
    pub fn mlp(&self) -> &Mlp {
        &self.mlp
    }

    /// Steps submitted in all rounds (some may still be running; after a divergence is
    /// reported, the steps that really happened).
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

    /// The loss of every step whose statistics have come back.
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

    /// The GPU buffer of the raw parameters (core's flat layout), e.g. to copy into a sampler.
    pub fn params_buffer(&self) -> &wgpu::Buffer {
        &self.params
    }

    /// The GPU buffer of the EMA parameters.
    pub fn ema_buffer(&self) -> &wgpu::Buffer {
        &self.ema
    }

    /// Whether submitted steps have statistics still to come back.
    pub fn in_flight(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Submissions whose statistics have not come back yet (at most the ring's four).
    pub fn submissions_in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Changes settings that keep the network's shape, the data and the seed: path, time
    /// sampling, batch, optimizer, schedule, clipping, EMA, coupling, label dropout. Weights,
    /// optimizer state and step count are kept; buffers grow only if the batch outgrows them.
    pub fn set_config(&mut self, config: TrainConfig) -> Result<(), GpuError> {
        self.config.check_same_run(&config)?;
        config.validate(&self.data)?;
        check_sizes(
            &self.device,
            &config,
            &self.offsets,
            self.data.len(),
            self.source.as_ref().map_or(0, Points::len),
        )?;
        if config.steps != self.config.steps && self.round == 0 {
            self.round_steps = config.steps;
        }
        if self.config.only_optimizer_differs(&config)
            && let (Some(stats), Some(adamw)) = (&self.plan.stats_uniform, &self.plan.adamw_uniform)
        {
            // The learning rate and weight decay travel with each step's values; clipping and
            // AdamW's constants sit in two uniforms. Work already submitted is not disturbed.
            self.queue
                .write_buffer(stats, 0, bytemuck::bytes_of(&stats_uniform(&config)));
            self.queue.write_buffer(
                adamw,
                0,
                bytemuck::bytes_of(&adamw_uniform(&config, &self.offsets)),
            );
            self.config = config;
            return Ok(());
        }
        if config.batch as u32 > self.batch.capacity {
            self.batch = BatchBuffers::new(&self.device, &self.offsets, config.batch as u32);
        }
        self.config = config;
        self.build_plan();
        Ok(())
    }

    /// How many times the step's plan has been built: once at construction, then once per
    /// change of path, batch, time sampling, coupling, data or reflow round; never for a change
    /// of an optimizer value ([`TrainConfig::only_optimizer_differs`]).
    pub fn plan_builds(&self) -> u64 {
        self.plan_builds
    }

    /// Switches the data (and source) the network trains on without rebuilding anything else:
    /// the new pools are uploaded, and the weights, optimizer state and step count carry on
    /// (so the flow visibly morphs from the old data to the new). `data`/`source` are the user's
    /// points for custom sources; built-in ones are drawn from the seed, as at construction.
    /// A reflow coupling in use is dropped: it was built for the old data.
    pub fn set_dataset(
        &mut self,
        dataset: flowplay_core::flow::DataSource,
        source: flowplay_core::flow::DataSource,
        data: Option<Points>,
        source_points: Option<Points>,
    ) -> Result<(), GpuError> {
        let config = TrainConfig {
            dataset,
            source,
            ..self.config.clone()
        };
        let (data, source_pool) = resolve_pools(&config, data, source_points)?;
        check_pools(&config, &data, source_pool.as_ref())?;
        check_sizes(
            &self.device,
            &config,
            &self.offsets,
            data.len(),
            source_pool.as_ref().map_or(0, Points::len),
        )?;
        self.pools = Pools::new(&self.device, &data, source_pool.as_ref());
        self.data = data;
        self.source = source_pool;
        self.pairs = None;
        self.config = config;
        self.build_plan();
        Ok(())
    }

    /// Replaces the parameters (core's flat layout, e.g. loaded weights); the EMA restarts from
    /// them, as in the CPU trainer.
    pub fn set_params(&mut self, params: &[f32]) -> Result<(), GpuError> {
        if params.len() != self.offsets.total as usize {
            return Err(Error::config(format!(
                "expected {} parameters, got {}",
                self.offsets.total,
                params.len()
            ))
            .into());
        }
        self.queue
            .write_buffer(&self.params, 0, bytemuck::cast_slice(params));
        self.queue
            .write_buffer(&self.ema, 0, bytemuck::cast_slice(params));
        Ok(())
    }

    /// Goes back to `step` of the current round with the weights in `params` and `ema` (a
    /// checkpoint: buffers of the trainer's parameter size, copied GPU to GPU): submissions still
    /// in flight are discarded, later losses forgotten, and AdamW starts afresh. The copies are
    /// queued after everything already submitted, so they land last. As the CPU trainer's
    /// `rewind`.
    pub fn rewind(
        &mut self,
        step: u64,
        params: &wgpu::Buffer,
        ema: &wgpu::Buffer,
    ) -> Result<(), GpuError> {
        let round_start = self.step - self.round_step;
        let bytes = u64::from(self.offsets.total) * 4;
        if step > self.step || step < round_start {
            return Err(Error::config(format!(
                "cannot rewind to step {step}: this round runs from step {round_start} to {}",
                self.step
            ))
            .into());
        }
        if params.size() < bytes || ema.size() < bytes {
            return Err(Error::config("a checkpoint smaller than the network's weights").into());
        }
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("trainer::rewind"),
            });
        encoder.copy_buffer_to_buffer(params, 0, &self.params, 0, bytes);
        encoder.copy_buffer_to_buffer(ema, 0, &self.ema, 0, bytes);
        encoder.clear_buffer(&self.adam_m, 0, None);
        encoder.clear_buffer(&self.adam_v, 0, None);
        self.queue.submit([encoder.finish()]);
        if !self.pending.is_empty() {
            self.discard_through = Some(self.next_tag - 1);
            self.pending.clear();
        }
        // Steps in flight may have raised the GPU's sticky divergence flag (an exploding loss
        // turns non-finite soon): the next submission clears it.
        self.halted = true;
        self.adam_steps = 0;
        self.round_step -= self.step - step;
        self.step = step;
        self.losses.truncate(step as usize);
        Ok(())
    }

    /// Copies the current raw and EMA weights into `params` and `ema` (a checkpoint for
    /// [`Self::rewind`]), queued after the steps submitted so far: they are the weights after
    /// [`Self::steps_done`] steps.
    pub fn copy_weights_to(&self, params: &wgpu::Buffer, ema: &wgpu::Buffer) {
        let bytes = u64::from(self.offsets.total) * 4;
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("trainer::checkpoint"),
            });
        encoder.copy_buffer_to_buffer(&self.params, 0, params, 0, bytes);
        encoder.copy_buffer_to_buffer(&self.ema, 0, ema, 0, bytes);
        self.queue.submit([encoder.finish()]);
    }

    /// Trains on `pool` from now on (a reflow round, QR §7.1), for `steps` steps: the schedule
    /// restarts, weights and optimizer state carry over. Build the pool with
    /// [`crate::GpuSampler`] or the core's model.
    pub fn start_reflow_round(&mut self, pool: CouplingPool, steps: u64) -> Result<(), GpuError> {
        if pool.x0.is_empty() || pool.x0.len() != pool.x1.len() {
            return Err(Error::config(
                "a reflow coupling needs as many x0 as x1, and at least one",
            )
            .into());
        }
        if self.config.mlp.is_conditional() && pool.labels.is_none() {
            return Err(
                Error::config("a class-conditional network needs labelled reflow pairs").into(),
            );
        }
        self.pools = Pools::pairs(&self.device, &pool);
        self.pairs = Some(pool);
        self.round += 1;
        self.round_step = 0;
        self.round_steps = steps;
        self.build_plan();
        Ok(())
    }

    /// Encodes and submits up to `steps` training steps (at most [`MAX_STEPS_PER_SUBMIT`], fewer
    /// with minibatch OT) without waiting. Returns how many were submitted: 0 when every staging
    /// buffer is still in flight (call [`Self::poll`] on a later frame).
    pub fn submit(&mut self, steps: u32) -> Result<u32, GpuError> {
        let limit = if self.uses_uploaded_batches() {
            OT_STEPS_PER_SUBMIT
        } else {
            MAX_STEPS_PER_SUBMIT
        };
        let n = steps.min(limit);
        if n == 0 {
            return Ok(0);
        }
        let Some(slot) = self.ring.acquire() else {
            return Ok(0);
        };
        if self.halted {
            self.queue
                .write_buffer(&self.control, 0, bytemuck::bytes_of(&Control::default()));
            self.halted = false;
        }
        self.write_step_values(n);
        if self.uses_uploaded_batches() {
            self.upload_ot_batches(n);
        }
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("trainer::steps"),
            });
        self.encode(&mut encoder, n, self.plan.dispatches.len());
        let tag = self.next_tag;
        self.next_tag += 1;
        self.ring
            .copy(&mut encoder, slot, &self.stats, u64::from(n) * 16, tag);
        self.queue.submit([encoder.finish()]);
        self.ring.map_after_submit(slot);
        self.pending.push_back(Pending {
            tag,
            first_step: self.step,
            first_round_step: self.round_step,
            first_adam_step: self.adam_steps,
            count: n,
        });
        self.step += u64::from(n);
        self.round_step += u64::from(n);
        self.adam_steps += u64::from(n);
        Ok(n)
    }

    /// Collects the statistics that have come back, oldest first, and records their losses.
    /// Never blocks. A divergence comes back as [`flowplay_core::Error::Diverged`]: every step
    /// before it is recorded, the weights are those of the last good step, and the step count
    /// is rolled back to it; the next [`Self::submit`] goes on from there.
    pub fn poll(&mut self) -> Result<Vec<StepStats>, GpuError> {
        // On native, map callbacks run inside poll; on the web the browser runs them itself.
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::Poll)
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        let arrived = self.ring.collect()?;
        let mut out = Vec::new();
        let mut diverged = None;
        for (tag, bytes) in arrived {
            if self.discard_through.is_some_and(|last| tag <= last) {
                continue;
            }
            let Some(index) = self.pending.iter().position(|p| p.tag == tag) else {
                continue;
            };
            let Some(pending) = self.pending.remove(index) else {
                continue;
            };
            let values: &[[f32; 4]] = bytemuck::cast_slice(&bytes);
            for (k, &[loss, grad_norm, lr, ok]) in
                values.iter().take(pending.count as usize).enumerate()
            {
                if ok > 0.5 {
                    self.losses.push(loss);
                    out.push(StepStats {
                        loss,
                        grad_norm,
                        lr,
                    });
                    continue;
                }
                // Roll back to the failed step; later submissions did nothing (the GPU's flag
                // is sticky) and their statistics are ignored.
                let k = k as u64;
                self.step = pending.first_step + k;
                self.round_step = pending.first_round_step + k;
                self.adam_steps = pending.first_adam_step + k;
                self.discard_through = Some(self.next_tag - 1);
                self.pending.clear();
                self.halted = true;
                diverged = Some(Error::Diverged {
                    step: self.step,
                    loss: if loss.is_finite() { f32::NAN } else { loss },
                    lr,
                });
                break;
            }
            if diverged.is_some() {
                break;
            }
        }
        match diverged {
            Some(e) => Err(e.into()),
            None => Ok(out),
        }
    }

    /// Trains `steps` steps and waits for them (native: the CLI, benchmarks, tests).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn train_blocking(&mut self, steps: u64) -> Result<Vec<StepStats>, GpuError> {
        let mut out = Vec::with_capacity(steps as usize);
        self.train_blocking_with(steps, |stats| out.push(*stats))?;
        Ok(out)
    }

    /// Trains `steps` steps, handing each step's statistics to `progress` as they come back,
    /// and waits for the last (native). Submissions stay queued ahead of the readback, so the
    /// GPU does not idle while the CPU reports.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn train_blocking_with(
        &mut self,
        steps: u64,
        mut progress: impl FnMut(&StepStats),
    ) -> Result<(), GpuError> {
        let mut left = steps;
        while left > 0 {
            let n = self.submit(left.min(u64::from(u32::MAX)) as u32)?;
            if n == 0 {
                self.wait()?;
            }
            left -= u64::from(n);
            self.poll()?.iter().for_each(&mut progress);
        }
        self.finish(progress)
    }

    /// Waits for every submitted step and hands their statistics to `progress` (native).
    #[cfg(not(target_arch = "wasm32"))]
    fn finish(&mut self, mut progress: impl FnMut(&StepStats)) -> Result<(), GpuError> {
        while self.in_flight() {
            self.wait()?;
            self.poll()?.iter().for_each(&mut progress);
        }
        Ok(())
    }

    /// Waits until the GPU has finished everything submitted (native).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn wait(&self) -> Result<(), GpuError> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| GpuError::Readback(e.to_string()))
    }

    /// The raw or EMA parameters, read back (native; waits for the GPU).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_params(&self, use_ema: bool) -> Result<Vec<f32>, GpuError> {
        let buffer = if use_ema { &self.ema } else { &self.params };
        buffers::read_pod::<f32>(
            &self.device,
            &self.queue,
            buffer,
            0,
            self.offsets.total as usize,
        )
    }

    /// AdamW's first and second moments, read back (native).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_moments(&self) -> Result<(Vec<f32>, Vec<f32>), GpuError> {
        let n = self.offsets.total as usize;
        Ok((
            buffers::read_pod::<f32>(&self.device, &self.queue, &self.adam_m, 0, n)?,
            buffers::read_pod::<f32>(&self.device, &self.queue, &self.adam_v, 0, n)?,
        ))
    }

    /// The current model with the raw or EMA parameters (native; waits for the GPU).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn model(&self, use_ema: bool) -> Result<flowplay_core::flow::FlowModel, GpuError> {
        Ok(flowplay_core::flow::FlowModel {
            spec: self.config.model_spec(),
            mlp: self.mlp.clone(),
            params: self.read_params(use_ema)?,
        })
    }

    /// Computes the next step's batch, output, loss and gradient without updating anything, and
    /// reads them back (native; for tests and step-by-step views).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn inspect(&mut self) -> Result<Inspection, GpuError> {
        // Finish pending work first so the parameters are current (its losses are recorded).
        self.finish(|_| {})?;
        self.write_step_values(1);
        if self.uses_uploaded_batches() {
            self.upload_ot_batches(1);
        }
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("trainer::inspect"),
            });
        self.encode(&mut encoder, 1, self.plan.gradient_end);
        self.queue.submit([encoder.finish()]);
        let b = self.config.batch;
        let (device, queue) = (&self.device, &self.queue);
        let h = self.offsets.hidden as usize;
        let net_input =
            buffers::read_pod::<f32>(device, queue, &self.batch.net_input, 0, b * (2 + h))?;
        let pairs =
            |v: Vec<f32>| -> Vec<[f32; 2]> { v.chunks_exact(2).map(|c| [c[0], c[1]]).collect() };
        let partials =
            buffers::read_pod::<f32>(device, queue, &self.batch.loss_partials, 0, b.div_ceil(256))?;
        let loss = (partials.iter().map(|&p| f64::from(p)).sum::<f64>() / (2 * b) as f64) as f32;
        Ok(Inspection {
            t: buffers::read_pod::<f32>(device, queue, &self.batch.t, 0, b)?,
            labels: buffers::read_pod::<u32>(device, queue, &self.batch.labels, 0, b)?,
            x_in: net_input
                .chunks_exact(2 + h)
                .map(|row| [row[0], row[1]])
                .collect(),
            target: pairs(buffers::read_pod::<f32>(
                device,
                queue,
                &self.batch.target,
                0,
                2 * b,
            )?),
            out: pairs(buffers::read_pod::<f32>(
                device,
                queue,
                &self.batch.out,
                0,
                2 * b,
            )?),
            loss,
            grads: buffers::read_pod::<f32>(
                device,
                queue,
                &self.grads,
                0,
                self.offsets.total as usize,
            )?,
        })
    }

    fn uses_uploaded_batches(&self) -> bool {
        self.pairs.is_none() && matches!(self.config.coupling, Coupling::MinibatchOt { .. })
    }

    /// Per-step values for the next `n` steps, into the dynamic uniform's slots.
    fn write_step_values(&self, n: u32) {
        let c = self.config.optimizer;
        let mut bytes = vec![0_u8; n as usize * STEP_SLOT_BYTES as usize];
        for slot in 0..n {
            let k = u64::from(slot);
            let lr = self
                .config
                .lr_schedule
                .lr_at(c.lr, self.round_step + k, self.round_steps);
            // AdamW's bias corrections in f64, exactly as `flowplay_core::optim::AdamW::step`.
            let t = (self.adam_steps + k + 1) as f64;
            let bias1 = 1.0 - f64::from(c.beta1).powf(t);
            let bias2 = 1.0 - f64::from(c.beta2).powf(t);
            let values = StepValues {
                step: (self.step + k) as u32,
                slot,
                lr,
                step_size: (f64::from(lr) / bias1) as f32,
                bias2_sqrt: bias2.sqrt() as f32,
                decay: 1.0 - lr * c.weight_decay,
                pad: [0; 2],
            };
            let at = slot as usize * STEP_SLOT_BYTES as usize;
            bytes[at..at + size_of::<StepValues>()].copy_from_slice(bytemuck::bytes_of(&values));
        }
        self.queue.write_buffer(&self.step_values, 0, &bytes);
    }

    /// Minibatch OT: draws the next `n` batches on the CPU (the same numbers the GPU would
    /// draw), pairs them by exact assignment within blocks, and uploads them.
    fn upload_ot_batches(&mut self, n: u32) {
        let Coupling::MinibatchOt { block } = self.config.coupling else {
            return;
        };
        let draws = self
            .config
            .batch_draws(&self.data, self.source.as_ref(), None);
        let b = self.config.batch;
        let mut words: Vec<f32> = Vec::with_capacity(n as usize * b * 6);
        for k in 0..u64::from(n) {
            draws.fill(self.step + k, b, &mut self.cpu_batch);
            self.cpu_batch.couple_ot(block);
            let p = &self.cpu_batch;
            for i in 0..b {
                words.extend_from_slice(&[
                    p.x0[i][0],
                    p.x0[i][1],
                    p.x1[i][0],
                    p.x1[i][1],
                    p.t[i],
                    f32::from_bits(p.labels[i]),
                ]);
            }
        }
        self.queue
            .write_buffer(&self.batch.uploaded, 0, bytemuck::cast_slice(&words));
    }

    /// Replays the plan's first `end` dispatches for `n` steps.
    fn encode(&self, encoder: &mut wgpu::CommandEncoder, n: u32, end: usize) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("trainer::steps"),
            timestamp_writes: None,
        });
        for slot in 0..n {
            let step = [slot * STEP_SLOT_BYTES as u32];
            for d in &self.plan.dispatches[..end] {
                pass.set_pipeline(&self.kernel(d.kernel).pipeline);
                let offsets: &[u32] = match d.offset {
                    DynamicOffset::None => &[],
                    DynamicOffset::Zero => &[0],
                    DynamicOffset::Step => &step,
                };
                pass.set_bind_group(0, &d.group, offsets);
                let [x, y, z] = d.workgroups;
                pass.dispatch_workgroups(x, y, z);
            }
        }
    }

    fn kernel(&self, id: KernelId) -> &Kernel {
        let k = &self.kernels;
        match id {
            KernelId::Draw => &k.draw,
            KernelId::Forward => &k.forward,
            KernelId::Loss => &k.loss,
            KernelId::BackwardInput => &k.backward_input,
            KernelId::BackwardWeight => &k.backward_weight,
            KernelId::Reduce => &k.reduce,
            KernelId::LabelGrad => &k.label_grad,
            KernelId::Norm => &k.norm,
            KernelId::Stats => &k.stats,
            KernelId::Adamw => &k.adamw,
        }
    }

    /// Builds one step's dispatches, bind groups and uniforms for the current configuration.
    fn build_plan(&mut self) {
        let mut builder = PlanBuilder {
            device: &self.device,
            plan: Plan {
                dispatches: Vec::new(),
                gradient_end: 0,
                stats_uniform: None,
                adamw_uniform: None,
            },
        };
        let cfg = &self.config;
        let o = &self.offsets;
        let bb = &self.batch;
        let b = cfg.batch as u32;
        let h = o.hidden;
        let half = cfg.mlp.t_dim as u32 / 2;
        let depth = o.layers.len() - 1;
        let conditional = cfg.mlp.is_conditional();
        let pools = &self.pools;
        let mode = if self.uses_uploaded_batches() {
            SourceMode::Uploaded
        } else {
            pools.mode
        };

        // 1. The batch.
        let (time_kind, t_mean, t_std) = match cfg.time_sampling {
            TimeSampling::Uniform => (0, 0.0, 1.0),
            TimeSampling::LogitNormal { mean, std } => (1, mean, std),
        };
        let draw = BatchDrawUniform {
            batch: b,
            data_len: pools.data_len,
            source_len: pools.source_len,
            mode: mode as u32,
            key: rng::key_from_seed(cfg.seed),
            time_kind,
            conditional: u32::from(conditional),
            t_mean,
            t_std,
            p_drop: cfg.p_drop,
            null_label: cfg.mlp.null_label(),
            in_stride: 2 + h,
            labelled: u32::from(pools.labelled),
            pad: [0; 2],
            path: PathUniform::new(&cfg.path),
        };
        let u = builder.uniform("trainer::draw", &draw);
        builder.push(
            &self.kernels.draw,
            KernelId::Draw,
            &[
                &pools.data_xy,
                &pools.data_labels,
                &pools.source_xy,
                &bb.uploaded,
                &bb.t,
                &bb.labels,
                &bb.net_input,
                &bb.target,
                &u,
            ],
            Some(&self.step_values),
            grid_1d(b),
        );

        // 2. Forward.
        let forward = |builder: &mut PlanBuilder<'_>,
                       layer: LinearOffsets,
                       mode: LinearInput,
                       a_src: &wgpu::Buffer,
                       a_stride: u32,
                       out: &wgpu::Buffer,
                       out_offset: u32,
                       out_stride: u32,
                       label_offset: u32| {
            let uniform = LinearForwardUniform {
                rows: b,
                outputs: layer.outputs,
                inputs: layer.inputs,
                a_mode: mode as u32,
                a_offset: 0,
                a_stride,
                w_offset: layer.weight,
                b_offset: layer.bias,
                out_offset,
                out_stride,
                label_offset,
                half,
                t_scale: cfg.mlp.t_scale,
                ..Default::default()
            };
            let u = builder.uniform("trainer::forward", &uniform);
            builder.push(
                &self.kernels.forward,
                KernelId::Forward,
                &[&self.params, a_src, &self.freqs, &bb.labels, out, &u],
                None,
                uniform.workgroups(),
            );
        };
        forward(
            &mut builder,
            o.t1,
            LinearInput::TimeEmbedding,
            &bb.t,
            1,
            &bb.z_t1,
            0,
            h,
            NONE,
        );
        forward(
            &mut builder,
            o.t3,
            LinearInput::Silu,
            &bb.z_t1,
            h,
            &bb.net_input,
            2,
            2 + h,
            if conditional {
                o.label_embed.unwrap_or(NONE)
            } else {
                NONE
            },
        );
        for (i, layer) in o.layers.iter().enumerate() {
            let (mode, a_src, a_stride) = if i == 0 {
                (LinearInput::Raw, &bb.net_input, 2 + h)
            } else {
                (LinearInput::Silu, &bb.z[i - 1], h)
            };
            let (out, stride) = if i == depth {
                (&bb.out, 2)
            } else {
                (&bb.z[i], h)
            };
            forward(
                &mut builder,
                *layer,
                mode,
                a_src,
                a_stride,
                out,
                0,
                stride,
                NONE,
            );
        }

        // 3. Loss.
        let loss = MseLossUniform {
            batch: b,
            grad_scale: 2.0 / (2 * cfg.batch) as f32,
            pad: [0; 2],
        };
        let u = builder.uniform("trainer::loss", &loss);
        builder.push(
            &self.kernels.loss,
            KernelId::Loss,
            &[&bb.out, &bb.target, &bb.d_out, &bb.loss_partials, &u],
            None,
            [b.div_ceil(256), 1, 1],
        );

        // 4. Backward, last layer first.
        let splits = splits_for(b, o);
        let split_rows = b.div_ceil(splits);
        let weight_grad = |builder: &mut PlanBuilder<'_>,
                           layer: LinearOffsets,
                           dz: &wgpu::Buffer,
                           dz_stride: u32,
                           mode: LinearInput,
                           a_src: &wgpu::Buffer,
                           a_stride: u32| {
            let uniform = BackwardWeightUniform {
                rows: b,
                outputs: layer.outputs,
                inputs: layer.inputs,
                a_mode: mode as u32,
                a_stride,
                dz_stride,
                half,
                t_scale: cfg.mlp.t_scale,
                split_rows,
                pad: [0; 3],
            };
            let u = builder.uniform("trainer::weight_grad", &uniform);
            builder.push(
                &self.kernels.backward_weight,
                KernelId::BackwardWeight,
                &[dz, a_src, &self.freqs, &bb.partials, &u],
                None,
                [
                    (layer.inputs + 1).div_ceil(64),
                    layer.outputs.div_ceil(64),
                    splits,
                ],
            );
            let reduce = GradReduceUniform {
                outputs: layer.outputs,
                inputs: layer.inputs,
                splits,
                w_offset: layer.weight,
                b_offset: layer.bias,
                pad: [0; 3],
            };
            let u = builder.uniform("trainer::reduce", &reduce);
            builder.push(
                &self.kernels.reduce,
                KernelId::Reduce,
                &[&bb.partials, &self.grads, &u],
                None,
                grid_1d(layer.outputs * (layer.inputs + 1)),
            );
        };
        let input_grad = |builder: &mut PlanBuilder<'_>,
                          layer: LinearOffsets,
                          dz: &wgpu::Buffer,
                          dz_stride: u32,
                          col0: u32,
                          z_prev: Option<&wgpu::Buffer>,
                          out: &wgpu::Buffer| {
            let cols = layer.inputs - col0;
            let uniform = BackwardInputUniform {
                rows: b,
                cols,
                outputs: layer.outputs,
                dz_stride,
                w_offset: layer.weight,
                w_stride: layer.inputs,
                col0,
                silu: u32::from(z_prev.is_some()),
                z_stride: h,
                out_stride: cols,
                pad: [0; 2],
            };
            let u = builder.uniform("trainer::input_grad", &uniform);
            builder.push(
                &self.kernels.backward_input,
                KernelId::BackwardInput,
                &[&self.params, dz, z_prev.unwrap_or(&bb.t), out, &u],
                None,
                [cols.div_ceil(64), b.div_ceil(64), 1],
            );
        };
        // The output layer and the hidden layers above net.0.
        let mut dz_in: (&wgpu::Buffer, u32) = (&bb.d_out, 2);
        for i in (1..=depth).rev() {
            let layer = o.layers[i];
            weight_grad(
                &mut builder,
                layer,
                dz_in.0,
                dz_in.1,
                LinearInput::Silu,
                &bb.z[i - 1],
                h,
            );
            let out = &bb.dz[(i - 1) % 2];
            input_grad(
                &mut builder,
                layer,
                dz_in.0,
                dz_in.1,
                0,
                Some(&bb.z[i - 1]),
                out,
            );
            dz_in = (out, h);
        }
        // net.0: its input is [x_in, t_embed]; only t_embed's gradient goes on.
        let net0 = o.layers[0];
        weight_grad(
            &mut builder,
            net0,
            dz_in.0,
            dz_in.1,
            LinearInput::Raw,
            &bb.net_input,
            2 + h,
        );
        input_grad(&mut builder, net0, dz_in.0, dz_in.1, 2, None, &bb.d_embed);
        // t_embed.3 (+ the label embedding), then t_embed.1 on the time embedding.
        weight_grad(
            &mut builder,
            o.t3,
            &bb.d_embed,
            h,
            LinearInput::Silu,
            &bb.z_t1,
            h,
        );
        if let (true, Some(offset)) = (conditional, o.label_embed) {
            let classes = cfg.mlp.num_classes + 1;
            let uniform = LabelEmbedGradUniform {
                rows: b,
                hidden: h,
                classes,
                offset,
            };
            let u = builder.uniform("trainer::label_grad", &uniform);
            builder.push(
                &self.kernels.label_grad,
                KernelId::LabelGrad,
                &[&bb.labels, &bb.d_embed, &self.grads, &u],
                None,
                grid_1d(classes * h),
            );
        }
        input_grad(
            &mut builder,
            o.t3,
            &bb.d_embed,
            h,
            0,
            Some(&bb.z_t1),
            &bb.dz[1],
        );
        weight_grad(
            &mut builder,
            o.t1,
            &bb.dz[1],
            h,
            LinearInput::TimeEmbedding,
            &bb.t,
            1,
        );
        builder.plan.gradient_end = builder.plan.dispatches.len();

        // 5. Norm, statistics and the update.
        let u = builder.uniform(
            "trainer::norm",
            &CountUniform {
                count: o.total,
                pad: [0; 3],
            },
        );
        builder.push(
            &self.kernels.norm,
            KernelId::Norm,
            &[&self.grads, &self.norm_partials, &u],
            None,
            [NORM_GROUPS, 1, 1],
        );
        let u = builder.uniform("trainer::stats", &stats_uniform(cfg));
        builder.plan.stats_uniform = Some(u.clone());
        builder.push(
            &self.kernels.stats,
            KernelId::Stats,
            &[
                &bb.loss_partials,
                &self.norm_partials,
                &self.control,
                &self.stats,
                &u,
            ],
            Some(&self.step_values),
            [1, 1, 1],
        );
        let u = builder.uniform("trainer::adamw", &adamw_uniform(cfg, o));
        builder.plan.adamw_uniform = Some(u.clone());
        builder.push(
            &self.kernels.adamw,
            KernelId::Adamw,
            &[
                &self.grads,
                &self.control,
                &self.params,
                &self.adam_m,
                &self.adam_v,
                &self.ema,
                &u,
            ],
            Some(&self.step_values),
            grid_1d(o.total),
        );
        self.plan = builder.plan;
        self.plan_builds += 1;
    }
}

/// The step-statistics kernel's uniform for `cfg`: the loss's partial sums and the clipping.
fn stats_uniform(cfg: &TrainConfig) -> StepStatsUniform {
    let b = cfg.batch as u32;
    StepStatsUniform {
        loss_count: b.div_ceil(256),
        inv_denominator: (1.0 / (2.0 * f64::from(b))) as f32,
        clip: cfg.clip_norm.unwrap_or(0.0),
        pad: 0,
    }
}

/// AdamW's constants and the EMA decay for `cfg`.
fn adamw_uniform(cfg: &TrainConfig, o: &MlpOffsets) -> AdamWUniform {
    AdamWUniform {
        count: o.total,
        beta1: cfg.optimizer.beta1,
        beta2: cfg.optimizer.beta2,
        eps: cfg.optimizer.eps,
        ema_decay: cfg.ema_decay,
        pad: [0; 3],
    }
}

/// Collects a plan's dispatches.
struct PlanBuilder<'a> {
    device: &'a wgpu::Device,
    plan: Plan,
}

impl PlanBuilder<'_> {
    fn uniform<T: Pod>(&mut self, label: &str, value: &T) -> wgpu::Buffer {
        buffers::uniform(self.device, label, value)
    }

    /// Adds a dispatch binding `buffers` in order, then the per-step uniform if given.
    fn push(
        &mut self,
        kernel: &Kernel,
        id: KernelId,
        bound: &[&wgpu::Buffer],
        per_step: Option<&wgpu::Buffer>,
        workgroups: [u32; 3],
    ) {
        let mut all: Vec<&wgpu::Buffer> = bound.to_vec();
        if let Some(step) = per_step {
            all.push(step);
        }
        // The bind group keeps its buffers (the dispatch's own uniform among them) alive.
        let group = kernel.bind(self.device, &all);
        let offset = if per_step.is_some() {
            DynamicOffset::Step
        } else if kernel.has_dynamic() {
            DynamicOffset::Zero
        } else {
            DynamicOffset::None
        };
        self.plan.dispatches.push(Dispatch {
            kernel: id,
            group,
            offset,
            workgroups,
        });
    }
}

/// Checks that the buffers fit the device's limits; the error says what to reduce.
fn check_sizes(
    device: &wgpu::Device,
    config: &TrainConfig,
    offsets: &MlpOffsets,
    data_len: usize,
    source_len: usize,
) -> Result<(), GpuError> {
    let limits = device.limits();
    let binding = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size);
    let b = config.batch as u64;
    let h = u64::from(offsets.hidden);
    let checks = [
        (
            "the batch's activations (batch × (hidden + 2))",
            b * (h + 2) * 4,
        ),
        ("the parameters", u64::from(offsets.total) * 4),
        ("the data pool", data_len as u64 * 8),
        ("the source pool", source_len as u64 * 8),
        (
            "the minibatch-OT upload (batch × 8 steps)",
            b * 6 * 4 * u64::from(OT_STEPS_PER_SUBMIT),
        ),
    ];
    for (what, bytes) in checks {
        if bytes > binding {
            return Err(GpuError::Limits(format!(
                "{what} needs {} MiB in one GPU buffer, and this device allows {} MiB: use a smaller batch or network",
                bytes >> 20,
                binding >> 20
            )));
        }
    }
    Ok(())
}
