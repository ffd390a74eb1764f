//! Where training and sampling run: the WGSL trainer and sampler on egui's own wgpu device, or
//! the CPU reference where there is no GPU compute (WebGL, or the user's choice).
//!
//! The GPU path never blocks a frame: training steps are submitted in batches sized so that at
//! most two are queued, losses come back through the trainer's staging ring, the particles are
//! integrated from the EMA weights by a GPU-to-GPU copy and drawn straight from the sampler's
//! buffers, and evaluation samples and reflow couplings are read back with [`PendingRead`]s
//! picked up on later frames.

use flowplay_core::data::Points;
use flowplay_core::flow::{DataSource, FlowModel, SampleRequest, draw_source};
use flowplay_core::metrics::{straightness, wasserstein2};
use flowplay_core::sampler::{Record, SamplerConfig, Trajectories};
use flowplay_core::train::{CouplingPool, CpuTrainer, TrainConfig, reflow_sources};
use flowplay_gpu::buffers::PendingRead;
use flowplay_gpu::{GpuSampler, GpuTrainer, MAX_STEPS_PER_SUBMIT, ParticleSource};
use web_time::{Duration, Instant};

use crate::error::{AppError, AppResult};

mod budget;
pub(crate) mod lab;
mod views;
mod watch;

pub(crate) use budget::FrameBudget;
pub(crate) use views::{CPU_HEAT_BINS, DensityAsk, GPU_HEAT_BINS, LogpAsk, stage_view};

/// Particles the CPU reference integrates per refresh at most (the GPU's bound is its memory).
pub(crate) const CPU_MAX_PARTICLES: usize = 5000;
/// Network evaluations the CPU reference spends on one refresh of the particles at most (it
/// runs within a frame): 5000 particles with 25 Euler steps, fewer with more.
const CPU_EVALS_PER_REFRESH: usize = 125_000;
/// Particles and held-out points of each evaluation.
pub(crate) const EVAL_POINTS: usize = 400;
/// Memory the GPU's recorded trajectories of one drawing may take (positions, and endpoints
/// when shown): 1M particles with 25 steps and endpoints take 400 MB.
const GPU_TRAJECTORY_BYTES: u64 = 1 << 30;
/// A particle refresh is encoded a slice a frame, in budgets of this many network evaluations.
const SLICE_UNIT: u64 = 1024;
/// The first slice budget: 64 Ki evaluations, 2000 particles with 25 Euler steps in one frame.
const SLICE_START: u32 = 64;
/// The least slice budget: 8 Ki evaluations (a slow device's frames jitter; a refresh must
/// still get on).
const SLICE_MIN: u32 = 8;
/// The largest slice budget: 2^30 evaluations.
const SLICE_MAX: u32 = 1 << 20;
/// A refresh is spread over at most this many frames (2 s at 60 Hz).
const MAX_REFRESH_FRAMES: u64 = 120;
/// Seed of the evaluation's prior draw, apart from the particles on screen.
const EVAL_SEED: u64 = 0xE7A1;
/// Which drawing a flow is for: the current model, or a snapshot of an earlier round.
pub(crate) const CURRENT: usize = 0;
pub(crate) const COMPARED: usize = 1;

/// Which device trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Gpu,
    Cpu,
}

impl Backend {
    pub(crate) fn key(self) -> &'static str {
        match self {
            Self::Gpu => "gpu",
            Self::Cpu => "cpu",
        }
    }
}

/// What a particle refresh records: positions for the trails, endpoints if they are shown.
pub(crate) fn particle_record(endpoints: bool) -> Record {
    Record {
        positions: true,
        endpoints,
        velocities: false,
    }
}

/// The request of a particle refresh: `n` particles drawn from `seed` with `sampler`, recording
/// trails (and endpoints); particle `i` of a conditional model (`classes` > 0) gets class
/// `i mod classes`, sampled with guidance `cfg_scale` (QR §7.2).
pub(crate) fn particle_request(
    sampler: SamplerConfig,
    n: usize,
    seed: u64,
    endpoints: bool,
    classes: u32,
    class: Option<u32>,
    cfg_scale: f32,
) -> SampleRequest {
    let labels = (classes > 0).then(|| match class {
        Some(c) => vec![c; n],
        None => (0..n as u32).map(|i| i % classes).collect(),
    });
    SampleRequest::new(sampler, n)
        .seeded(seed)
        .with_labels(labels, cfg_scale)
        .recording(particle_record(endpoints))
}

/// The particles to draw.
pub(crate) enum Flow<'a> {
    /// Trajectories on the CPU, drawn with egui's painter.
    Cpu(&'a Trajectories),
    /// Trajectories in GPU buffers, drawn by a render pipeline.
    Gpu(ParticleSource),
}

/// A finished evaluation of the EMA model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Evaluation {
    /// The step it was taken at.
    pub(crate) step: u64,
    /// W2 between its samples and held-out data.
    pub(crate) w2: f64,
    /// E ∫ ‖(x₁ − x₀) − v‖² dt along its trajectories: 0 for straight paths (QR §7.1).
    pub(crate) straightness: f64,
    /// −mean log p₁ of the held-out data (the reverse ODE with the same solver), where the
    /// model's source is N(0, I).
    pub(crate) nll: Option<f64>,
}

/// The EMA weights of a finished round, kept to compare rounds.
pub(crate) enum Snapshot {
    Gpu(wgpu::Buffer),
    Cpu(Vec<f32>),
}

/// An evaluation under way on the GPU: positions and velocities on their way back.
struct PendingEval {
    /// Positions, velocities and (where defined) the held-out log-likelihoods.
    reads: Vec<PendingRead>,
    /// What has come back of each.
    bytes: Vec<Option<Vec<u8>>>,
    times: Vec<f32>,
    step: u64,
}

/// A reflow coupling being generated on the GPU.
struct PendingReflow {
    read: PendingRead,
    x0: Vec<[f32; 2]>,
    labels: Option<Vec<u32>>,
    steps: u64,
}

/// The GPU side: the trainer, the sampler whose buffers are drawn, one for an earlier round's
/// drawing, and one for evaluation and reflow (so that neither overwrites what is on screen).
pub(crate) struct GpuEngine {
    device: wgpu::Device,
    queue: wgpu::Queue,
    trainer: GpuTrainer,
    samplers: [GpuSampler; 2],
    eval: GpuSampler,
    /// Training steps a submission.
    submit_size: FrameBudget,
    /// Network evaluations of a particle refresh a frame, in units of [`SLICE_UNIT`].
    slice_size: FrameBudget,
    x0: Vec<[f32; 2]>,
    x0_for: Option<(usize, u64, u32)>,
    eval_x0: Vec<[f32; 2]>,
    pending_eval: Option<PendingEval>,
    pending_reflow: Option<PendingReflow>,
    /// Each drawing's refresh still being encoded a slice a frame: its network evaluations.
    refreshing: [Option<u64>; 2],
    /// Whether refreshes are encoded a slice a frame, or whole.
    slices: bool,
    /// The layers' views ([`views`]).
    views: views::GpuViews,
    /// Counts the current drawing's refreshes: its weights' version (0: none yet).
    drawn_version: u64,
    /// The divergence guard and the checkpoints of good weights.
    watch: watch::Watch,
    /// Weights on their way back for an export (raw or EMA).
    pending_weights: Option<(PendingRead, bool)>,
    /// The solver × NFE lab.
    lab: lab::GpuLab,
}

/// The CPU reference.
pub(crate) struct CpuEngine {
    trainer: CpuTrainer,
    flows: [Option<Trajectories>; 2],
    eval_x0: Vec<[f32; 2]>,
    finished_eval: Option<(u64, SampleOutputParts)>,
    /// The weights the current drawing was integrated with, for the layers' views.
    drawn: Option<FlowModel>,
    drawn_version: u64,
    views: views::CpuViews,
    /// The divergence guard and the checkpoints of good weights.
    watch: watch::Watch,
    /// The solver × NFE lab.
    lab: lab::CpuLab,
}

/// What an evaluation run recorded, on either backend.
struct SampleOutputParts {
    x: Vec<[f32; 2]>,
    trajectories: Trajectories,
    /// The held-out data's log-likelihoods, where defined.
    logp: Option<Vec<f32>>,
}

/// Training and sampling on one backend.
pub(crate) enum Engine {
    Gpu(Box<GpuEngine>),
    Cpu(Box<CpuEngine>),
}

/// The prior draw `x0` for `n` particles: the source (the user's points in `custom`, for a
/// custom source) scaled to the path's prior.
fn prior_draw(config: &TrainConfig, custom: Option<&Points>, n: usize, seed: u64) -> Vec<[f32; 2]> {
    // The trainer was built with its source's points, so every source draws.
    config
        .path
        .to_prior(&draw_source(&config.source, n, seed, custom).unwrap_or_default())
}

/// The record of an evaluation run: positions and velocities, for W2 and straightness.
const EVAL_RECORD: Record = Record {
    positions: true,
    endpoints: false,
    velocities: true,
};

fn points(bytes: &[u8]) -> Vec<[f32; 2]> {
    bytemuck::pod_collect_to_vec(bytes)
}

fn request(sampler: SamplerConfig, n: usize, seed: u64, record: Record) -> SampleRequest {
    SampleRequest::new(sampler, n)
        .seeded(seed)
        .recording(record)
}

/// Encodes a GPU-to-GPU copy of `weights` into `target`'s parameters.
fn copy_weights(encoder: &mut wgpu::CommandEncoder, weights: &wgpu::Buffer, target: &GpuSampler) {
    let params = target.params_buffer();
    encoder.copy_buffer_to_buffer(weights, 0, params, 0, weights.size().min(params.size()));
}

/// Encodes one whole sampling run on `target`: a GPU-to-GPU copy of `weights` into its
/// parameters, then every solver stage for the particles `x0`.
fn encode_run(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    encoder: &mut wgpu::CommandEncoder,
    target: &mut GpuSampler,
    weights: &wgpu::Buffer,
    x0: &[[f32; 2]],
    request: &SampleRequest,
) -> AppResult<()> {
    copy_weights(encoder, weights, target);
    target
        .encode_sample(device, queue, encoder, x0, request)
        .map_err(AppError::from)
}

impl GpuEngine {
    fn new_encoder(&self, label: &str) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    }

    /// Finishes `encoder` with a read-back of the first `bytes` of `buffer`, submits it and
    /// starts the mapping (taken later without blocking).
    fn submit_read(
        &self,
        mut encoder: wgpu::CommandEncoder,
        buffer: &wgpu::Buffer,
        bytes: u64,
    ) -> PendingRead {
        let read = PendingRead::encode(&self.device, &mut encoder, buffer, 0, bytes);
        self.queue.submit([encoder.finish()]);
        read.start();
        read
    }

    /// A copy of `source` that the view drawn from it owns: the next request overwrites the
    /// sampler's buffer while the view (its grid, its range) is still drawn.
    fn owned_copy(&self, source: &wgpu::Buffer, label: &str) -> wgpu::Buffer {
        let copy = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: source.size(),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.new_encoder(label);
        encoder.copy_buffer_to_buffer(source, 0, &copy, 0, source.size());
        self.queue.submit([encoder.finish()]);
        copy
    }

    fn param_bytes(&self) -> u64 {
        self.trainer.mlp().num_params() as u64 * 4
    }

    /// A buffer the size of the weights, to copy them into and out of.
    fn weights_buffer(&self, label: &str) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: self.param_bytes(),
            usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// A copy of the weights in `source` (the trainer's raw or EMA buffer), submitted now:
    /// later steps leave it as it is.
    fn copy_of_weights(&self, source: &wgpu::Buffer, label: &str) -> wgpu::Buffer {
        let copy = self.weights_buffer(label);
        let mut encoder = self.new_encoder(label);
        encoder.copy_buffer_to_buffer(source, 0, &copy, 0, self.param_bytes());
        self.queue.submit([encoder.finish()]);
        copy
    }

    /// Checkpoints the weights after the steps submitted so far (GPU to GPU).
    fn checkpoint(&mut self) {
        let (params, ema) = (
            self.weights_buffer("app::checkpoint_params"),
            self.weights_buffer("app::checkpoint_ema"),
        );
        self.trainer.copy_weights_to(&params, &ema);
        self.watch.push(watch::Checkpoint {
            step: self.trainer.steps_done(),
            weights: watch::Weights::Gpu { params, ema },
        });
    }

    /// Goes back to the last good checkpoint after `error`, a divergence.
    fn undo_explosion(&mut self, error: flowplay_core::Error) -> AppError {
        let seen = exploded_at(&error).unwrap_or(self.trainer.steps_done());
        let Some(checkpoint) = self.watch.restore_point(seen) else {
            return error.into();
        };
        let watch::Weights::Gpu { params, ema } = &checkpoint.weights else {
            return error.into();
        };
        let step = checkpoint.step;
        if let Err(e) = self.trainer.rewind(step, params, ema) {
            return e.into();
        }
        self.watch.rewound(step);
        AppError::Exploded {
            error,
            restored: step,
        }
    }
}

/// The step an explosion was seen at.
fn exploded_at(error: &flowplay_core::Error) -> Option<u64> {
    match error {
        flowplay_core::Error::Exploded { step, .. } => Some(*step),
        _ => None,
    }
}

impl CpuEngine {
    /// Goes back to the last good checkpoint after `error`, a divergence.
    fn undo_explosion(&mut self, error: flowplay_core::Error) -> AppError {
        let seen = exploded_at(&error).unwrap_or(self.trainer.steps_done());
        let Some(checkpoint) = self.watch.restore_point(seen) else {
            return error.into();
        };
        let watch::Weights::Cpu { params, ema } = &checkpoint.weights else {
            return error.into();
        };
        let step = checkpoint.step;
        if let Err(e) = self.trainer.rewind(step, params, ema) {
            return e.into();
        }
        self.watch.rewound(step);
        AppError::Exploded {
            error,
            restored: step,
        }
    }
}

impl Engine {
    /// A GPU engine on egui's device, or why there is none; `slices`: encode particle refreshes
    /// a slice a frame ([`Self::advance_flows`]) rather than whole.
    pub(crate) fn gpu(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        config: TrainConfig,
        data: Points,
        source: Option<Points>,
        slices: bool,
    ) -> AppResult<Self> {
        let eval_x0 = prior_draw(&config, source.as_ref(), EVAL_POINTS, EVAL_SEED);
        let path = config.path;
        let trainer = GpuTrainer::with_custom(device, queue, config, Some(data), source)
            .map_err(AppError::from)?;
        let sampler = || GpuSampler::new(device, trainer.mlp(), path).map_err(AppError::from);
        let views = views::GpuViews::new(device, trainer.mlp(), path)?;
        Ok(Self::Gpu(Box::new(GpuEngine {
            views,
            drawn_version: 0,
            device: device.clone(),
            queue: queue.clone(),
            samplers: [sampler()?, sampler()?],
            eval: sampler()?,
            eval_x0,
            trainer,
            submit_size: FrameBudget::new(1, 1, MAX_STEPS_PER_SUBMIT),
            slice_size: FrameBudget::new(SLICE_START, SLICE_MIN, SLICE_MAX),
            x0: Vec::new(),
            x0_for: None,
            pending_eval: None,
            pending_reflow: None,
            refreshing: [None; 2],
            slices,
            watch: watch::Watch::default(),
            pending_weights: None,
            lab: lab::GpuLab::default(),
        })))
    }

    /// A CPU engine.
    pub(crate) fn cpu(
        config: TrainConfig,
        data: Points,
        source: Option<Points>,
    ) -> AppResult<Self> {
        let eval_x0 = prior_draw(&config, source.as_ref(), EVAL_POINTS, EVAL_SEED);
        let trainer =
            CpuTrainer::with_custom(config, Some(data), source).map_err(AppError::from)?;
        Ok(Self::Cpu(Box::new(CpuEngine {
            trainer,
            flows: [None, None],
            eval_x0,
            finished_eval: None,
            drawn: None,
            drawn_version: 0,
            views: views::CpuViews::default(),
            watch: watch::Watch::default(),
            lab: lab::CpuLab::default(),
        })))
    }

    /// Whether particle refreshes are encoded a slice a frame (a hardware GPU).
    pub(crate) fn slices(&self) -> bool {
        matches!(self, Self::Gpu(g) if g.slices)
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Self::Gpu(_) => Backend::Gpu,
            Self::Cpu(_) => Backend::Cpu,
        }
    }

    pub(crate) fn config(&self) -> &TrainConfig {
        match self {
            Self::Gpu(g) => g.trainer.config(),
            Self::Cpu(c) => c.trainer.config(),
        }
    }

    pub(crate) fn data(&self) -> &Points {
        match self {
            Self::Gpu(g) => g.trainer.data(),
            Self::Cpu(c) => c.trainer.data(),
        }
    }

    /// Every step's loss that is known, all rounds.
    pub(crate) fn losses(&self) -> &[f32] {
        match self {
            Self::Gpu(g) => g.trainer.losses(),
            Self::Cpu(c) => c.trainer.losses(),
        }
    }

    /// Steps completed (on the GPU: those whose statistics came back).
    pub(crate) fn steps_done(&self) -> u64 {
        self.losses().len() as u64
    }

    /// The reflow round being trained: 0 for the original coupling.
    pub(crate) fn round(&self) -> usize {
        match self {
            Self::Gpu(g) => g.trainer.round(),
            Self::Cpu(c) => c.trainer.round(),
        }
    }

    /// Changes the settings the running trainer can take (path, t-sampling, batch, optimizer).
    /// An optimizer-only change (learning rate, weight decay, EMA decay, clipping) leaves the
    /// GPU's plan, the particles and an evaluation in flight alone; another change starts the
    /// evaluation over (its samples belong to the old path).
    pub(crate) fn set_config(&mut self, config: TrainConfig) -> AppResult<()> {
        let optimizer_only = self.config().only_optimizer_differs(&config);
        let path_changed = self.config().path != config.path;
        if !optimizer_only {
            // Another objective has its own loss level, and its own lab figures.
            self.watch_mut().new_level();
            self.reset_lab();
        }
        match self {
            Self::Gpu(g) => {
                g.trainer
                    .set_config(config.clone())
                    .map_err(AppError::from)?;
                if !optimizer_only {
                    for sampler in g.samplers.iter_mut().chain([&mut g.eval]) {
                        sampler.set_path(config.path).map_err(AppError::from)?;
                    }
                    // The views are of the drawn weights: a new batch or coupling leaves them.
                    if path_changed {
                        g.views.set_path(config.path)?;
                    }
                    g.eval_x0 =
                        prior_draw(&config, g.trainer.source_pool(), EVAL_POINTS, EVAL_SEED);
                    g.x0_for = None;
                    g.pending_eval = None;
                }
            }
            Self::Cpu(c) => {
                if !optimizer_only {
                    c.eval_x0 =
                        prior_draw(&config, c.trainer.source_pool(), EVAL_POINTS, EVAL_SEED);
                    c.finished_eval = None;
                }
                if path_changed {
                    c.drawn = None;
                    c.views = views::CpuViews::default();
                }
                c.trainer.set_config(config).map_err(AppError::from)?;
            }
        }
        Ok(())
    }

    /// Trains for about one frame. On the GPU: collects the statistics that came back and
    /// submits as many steps as keep frames on time ([`FrameBudget`], from the last frame's
    /// duration `frame_secs`), with at most two submissions queued; nothing is submitted while a
    /// reflow coupling is on its way. The CPU reference trains for `cpu_budget`. An error (a
    /// divergence) stops training with the weights of the last good step.
    pub(crate) fn train_frame(&mut self, frame_secs: f32, cpu_budget: Duration) -> AppResult<()> {
        match self {
            Self::Gpu(g) => {
                let stats = match g.trainer.poll() {
                    Ok(stats) => stats,
                    // A non-finite step: the steps before it may already have exploded.
                    Err(flowplay_gpu::GpuError::Core(e)) if e.is_divergence() => {
                        return Err(g.undo_explosion(e));
                    }
                    Err(e) => return Err(e.into()),
                };
                let confirmed = g.trainer.losses().len() as u64;
                if let Err(error) = g.watch.observe(confirmed - stats.len() as u64, &stats) {
                    return Err(g.undo_explosion(error));
                }
                if g.watch.due(confirmed) {
                    g.checkpoint();
                }
                if g.pending_reflow.is_some() {
                    return Ok(());
                }
                let queued = g.trainer.submissions_in_flight();
                let steps = g.submit_size.next(frame_secs, queued);
                if steps > 0 {
                    g.trainer.submit(steps).map_err(AppError::from)?;
                }
                Ok(())
            }
            Self::Cpu(c) => {
                let started = Instant::now();
                while started.elapsed() < cpu_budget {
                    let step = c.trainer.steps_done();
                    if c.watch.due(step) {
                        c.watch.push(watch::Checkpoint {
                            step,
                            weights: watch::Weights::Cpu {
                                params: c.trainer.params().to_vec(),
                                ema: c.trainer.ema().to_vec(),
                            },
                        });
                    }
                    let checked = c
                        .trainer
                        .step()
                        .and_then(|stats| c.watch.observe(step, &[stats]));
                    match checked {
                        Ok(()) => {}
                        Err(e) if e.is_divergence() => return Err(c.undo_explosion(e)),
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(())
            }
        }
    }

    /// Collects statistics still on their way (after training is paused).
    pub(crate) fn drain(&mut self) -> AppResult<()> {
        if let Self::Gpu(g) = self {
            g.trainer.poll().map_err(AppError::from)?;
        }
        Ok(())
    }

    /// The most particles a refresh can integrate and draw with `sampler`, recording `record`.
    pub(crate) fn max_particles(&self, sampler: &SamplerConfig, record: Record) -> usize {
        match self {
            // The state must fit one binding per buffer; the trajectories are paged but bounded
            // in memory.
            Self::Gpu(g) => {
                let per_particle = GpuSampler::recorded_bytes(sampler, record);
                let memory = (GPU_TRAJECTORY_BYTES / per_particle.max(1)) as usize / 64 * 64;
                GpuSampler::max_particles(&g.device).min(memory)
            }
            // The CPU integrates within a frame: bound particles × network evaluations.
            Self::Cpu(_) => {
                (CPU_EVALS_PER_REFRESH / sampler.nfe().max(1)).clamp(64, CPU_MAX_PARTICLES)
            }
        }
    }

    /// The current EMA weights, kept to compare rounds later.
    pub(crate) fn snapshot(&self) -> Snapshot {
        match self {
            Self::Gpu(g) => {
                Snapshot::Gpu(g.copy_of_weights(g.trainer.ema_buffer(), "app::round_snapshot"))
            }
            Self::Cpu(c) => Snapshot::Cpu(c.trainer.ema().to_vec()),
        }
    }

    /// Integrates drawing `which`'s particles: [`CURRENT`] with the current EMA weights,
    /// [`COMPARED`] with `snapshot`'s (QR §5). The CPU integrates at once. The GPU copies the
    /// weights and encodes the run a slice a frame ([`Self::advance_flows`]) into buffers apart
    /// from those drawn, so that a million particles never hold up a frame; the drawing switches
    /// to the new particles when the last slice is submitted. Returns whether that is already so.
    pub(crate) fn refresh_flow(
        &mut self,
        which: usize,
        snapshot: Option<&Snapshot>,
        flow: &SampleRequest,
        ema: bool,
    ) -> AppResult<bool> {
        match self {
            Self::Gpu(g) => {
                let key = (
                    flow.n,
                    flow.seed,
                    g.trainer.config().path.prior_scale().to_bits(),
                );
                if g.x0_for != Some(key) {
                    g.x0 = prior_draw(
                        g.trainer.config(),
                        g.trainer.source_pool(),
                        flow.n,
                        flow.seed,
                    );
                    g.x0_for = Some(key);
                }
                let mut encoder = g.new_encoder("app::refresh_flow");
                let g = &mut **g;
                let weights = match snapshot {
                    Some(Snapshot::Gpu(buffer)) => buffer,
                    _ if ema => g.trainer.ema_buffer(),
                    _ => g.trainer.params_buffer(),
                };
                let sampler = &mut g.samplers[which];
                // The weights as they are now: later training steps do not reach this run.
                copy_weights(&mut encoder, weights, sampler);
                sampler
                    .begin_sample(&g.device, &g.queue, &g.x0, flow)
                    .map_err(AppError::from)?;
                if !g.slices {
                    sampler.encode_slice(&g.device, &mut encoder, u64::MAX);
                }
                g.queue.submit([encoder.finish()]);
                if which == CURRENT {
                    g.drawn_version += 1;
                }
                let remaining = sampler.remaining_evaluations();
                g.refreshing[which] = (remaining > 0).then_some(remaining);
                Ok(remaining == 0)
            }
            Self::Cpu(c) => {
                let mut model = c.trainer.model(ema);
                if let Some(Snapshot::Cpu(params)) = snapshot {
                    model.params.clone_from(params);
                }
                let x0 = prior_draw(
                    c.trainer.config(),
                    c.trainer.source_pool(),
                    flow.n,
                    flow.seed,
                );
                let out = model.integrate(&x0, flow).map_err(AppError::from)?;
                c.flows[which] = Some(out.trajectories);
                if which == CURRENT {
                    c.drawn = Some(model);
                    c.drawn_version += 1;
                }
                Ok(true)
            }
        }
    }

    /// Encodes the next slice of each refresh under way (GPU), sized by the frame time
    /// `frame_secs` ([`FrameBudget`]) but never so small that a refresh takes more than
    /// [`MAX_REFRESH_FRAMES`] frames. Returns whether every refresh is finished: at once on the
    /// CPU, and on the GPU once the last slice is submitted.
    pub(crate) fn advance_flows(&mut self, frame_secs: f32) -> bool {
        let Self::Gpu(g) = self else {
            return true;
        };
        if g.refreshing.iter().all(Option::is_none) {
            return true;
        }
        let budget = u64::from(g.slice_size.next(frame_secs, 0)) * SLICE_UNIT;
        let mut encoder = g.new_encoder("app::refresh_slice");
        let g = &mut **g;
        for (which, sampler) in g.samplers.iter_mut().enumerate() {
            let Some(evaluations) = g.refreshing[which] else {
                continue;
            };
            let floor = evaluations.div_ceil(MAX_REFRESH_FRAMES);
            if sampler.encode_slice(&g.device, &mut encoder, budget.max(floor)) {
                g.refreshing[which] = None;
            }
        }
        g.queue.submit([encoder.finish()]);
        g.refreshing.iter().all(Option::is_none)
    }

    /// The particles of drawing `which`'s last refresh.
    pub(crate) fn flow(&self, which: usize) -> Option<Flow<'_>> {
        match self {
            Self::Gpu(g) => {
                let sampler = &g.samplers[which];
                (sampler.num_particles() > 0)
                    .then(|| Flow::Gpu(ParticleSource::from_sampler(sampler)))
            }
            Self::Cpu(c) => c.flows[which].as_ref().map(Flow::Cpu),
        }
    }

    /// Starts an evaluation of the EMA model with `sampler` (unless one is under way): samples
    /// for W2 and straightness, and where the source is N(0, I) the log-likelihood of
    /// `held_out`; [`Self::poll_eval`] returns it when done. On the CPU it runs at once.
    /// Returns whether one was started.
    pub(crate) fn start_eval(
        &mut self,
        sampler: &SamplerConfig,
        held_out: &[[f32; 2]],
        ema: bool,
    ) -> AppResult<bool> {
        let likelihood = self.config().source.is_standard_normal();
        match self {
            Self::Gpu(g) => {
                if g.pending_eval.is_some() || g.pending_reflow.is_some() {
                    return Ok(false);
                }
                let mut encoder = g.new_encoder("app::eval");
                let g = &mut **g;
                let run = request(*sampler, g.eval_x0.len(), EVAL_SEED, EVAL_RECORD);
                let weights = if ema {
                    g.trainer.ema_buffer()
                } else {
                    g.trainer.params_buffer()
                };
                encode_run(
                    &g.device,
                    &g.queue,
                    &mut encoder,
                    &mut g.eval,
                    weights,
                    &g.eval_x0,
                    &run,
                )?;
                let size = (g.eval_x0.len() * g.eval.times().len() * 8) as u64;
                // EVAL_POINTS particles are recorded in one page.
                let pages = g.eval.recorded_pages();
                let page = pages
                    .first()
                    .ok_or(AppError::Missing("the evaluation recorded nothing"))?;
                let mut reads = vec![
                    PendingRead::encode(&g.device, &mut encoder, page.positions, 0, size),
                    PendingRead::encode(&g.device, &mut encoder, page.velocities, 0, size),
                ];
                drop(pages);
                if likelihood && !held_out.is_empty() {
                    let points = SampleRequest::new(*sampler, held_out.len());
                    g.eval.encode_log_likelihood(
                        &g.device,
                        &g.queue,
                        &mut encoder,
                        held_out,
                        &points,
                    )?;
                    let logp = g
                        .eval
                        .log_likelihood_buffer()
                        .ok_or(AppError::Missing("the likelihood wrote nothing"))?;
                    let bytes = (held_out.len() * 4) as u64;
                    reads.push(PendingRead::encode(&g.device, &mut encoder, logp, 0, bytes));
                }
                g.queue.submit([encoder.finish()]);
                for read in &reads {
                    read.start();
                }
                g.pending_eval = Some(PendingEval {
                    bytes: vec![None; reads.len()],
                    reads,
                    times: g.eval.times().to_vec(),
                    step: g.trainer.steps_done(),
                });
                Ok(true)
            }
            Self::Cpu(c) => {
                if c.finished_eval.is_some() {
                    return Ok(false);
                }
                let n = c.eval_x0.len();
                let model = c.trainer.model(ema);
                let out =
                    model.integrate(&c.eval_x0, &request(*sampler, n, EVAL_SEED, EVAL_RECORD))?;
                let logp = if likelihood {
                    Some(model.log_likelihood(held_out, None, 1.0, sampler)?.logp)
                } else {
                    None
                };
                c.finished_eval = Some((
                    c.trainer.steps_done(),
                    SampleOutputParts {
                        x: out.x,
                        trajectories: out.trajectories,
                        logp,
                    },
                ));
                Ok(true)
            }
        }
    }

    /// A finished evaluation against `held_out`, once.
    pub(crate) fn poll_eval(&mut self, held_out: &[[f32; 2]]) -> Option<AppResult<Evaluation>> {
        let (step, parts) = match self {
            Self::Gpu(g) => {
                let pending = g.pending_eval.as_mut()?;
                let mut failed = None;
                for (read, slot) in pending.reads.iter().zip(&mut pending.bytes) {
                    if slot.is_none() {
                        match read.try_take(&g.device) {
                            Some(Ok(bytes)) => *slot = Some(bytes),
                            Some(Err(e)) => failed = Some(e),
                            None => {}
                        }
                    }
                }
                if let Some(why) = failed {
                    g.pending_eval = None;
                    return Some(Err(why.into()));
                }
                let pending = g.pending_eval.as_ref()?;
                if pending.bytes.iter().any(Option::is_none) {
                    return None;
                }
                let read = |i: usize| pending.bytes.get(i).and_then(Option::as_ref);
                let (Some(p), Some(v)) = (read(0), read(1)) else {
                    return None;
                };
                let trajectories = Trajectories {
                    times: pending.times.clone(),
                    positions: points(p),
                    endpoints: Vec::new(),
                    velocities: points(v),
                };
                let frames = trajectories.frames();
                let n = trajectories.positions.len() / frames.max(1);
                let x = (0..n)
                    .map(|i| trajectories.positions_of(i)[frames - 1])
                    .collect();
                let logp = read(2).map(|bytes| bytemuck::pod_collect_to_vec::<u8, f32>(bytes));
                let step = pending.step;
                g.pending_eval = None;
                (
                    step,
                    SampleOutputParts {
                        x,
                        trajectories,
                        logp,
                    },
                )
            }
            Self::Cpu(c) => c.finished_eval.take()?,
        };
        let n = parts.x.len().min(held_out.len());
        Some(
            wasserstein2(&parts.x[..n], &held_out[..n])
                .and_then(|w2| {
                    Ok(Evaluation {
                        step,
                        w2,
                        straightness: straightness(&parts.trajectories)?,
                        nll: parts
                            .logp
                            .as_deref()
                            .and_then(flowplay_core::sweep::mean_nll),
                    })
                })
                .map_err(AppError::from),
        )
    }

    /// Starts reflow round `round + 1` (QR §7.1): `pairs` source points are taken along the
    /// current EMA model's ODE with `sampler`, and training goes on, for `steps` steps, on
    /// those pairs. The CPU builds the coupling at once; the GPU integrates it and
    /// [`Self::poll_reflow`] starts the round when the endpoints are back.
    pub(crate) fn start_reflow(
        &mut self,
        pairs: usize,
        sampler: &SamplerConfig,
        steps: u64,
    ) -> AppResult<()> {
        match self {
            Self::Gpu(g) => {
                if g.pending_reflow.is_some() {
                    return Ok(());
                }
                let config = g.trainer.config();
                let sources =
                    reflow_sources(config, g.trainer.round(), pairs, g.trainer.data(), None)
                        .map_err(AppError::from)?;
                let start = config.path.to_prior(&sources.x0);
                // The evaluation sampler builds the coupling; an evaluation under way is dropped.
                g.pending_eval = None;
                let mut encoder = g.new_encoder("app::reflow");
                let g = &mut **g;
                let run = SampleRequest::new(*sampler, start.len())
                    .seeded(sources.seed)
                    .with_labels(sources.labels.clone(), 1.0);
                let weights = g.trainer.ema_buffer();
                encode_run(
                    &g.device,
                    &g.queue,
                    &mut encoder,
                    &mut g.eval,
                    weights,
                    &start,
                    &run,
                )?;
                let read = g.submit_read(encoder, g.eval.positions_buffer(), (pairs * 8) as u64);
                g.pending_reflow = Some(PendingReflow {
                    read,
                    x0: sources.x0,
                    labels: sources.labels,
                    steps,
                });
                Ok(())
            }
            Self::Cpu(c) => {
                c.watch.reset();
                c.trainer
                    .start_reflow_round(pairs, sampler, true, steps)
                    .map_err(AppError::from)
            }
        }
    }

    /// Trains on new data and from a new source from now on (the user's own points, for custom
    /// ones), keeping the weights, the optimizer and the step count: the flow morphs to the new
    /// data. A reflow coupling is dropped; the evaluation's and the particles' starts are drawn
    /// again from the source.
    pub(crate) fn set_pools(
        &mut self,
        (dataset, points): (DataSource, Points),
        (source, source_points): (DataSource, Option<Points>),
    ) -> AppResult<()> {
        self.reset_lab();
        match self {
            Self::Gpu(g) => {
                g.trainer
                    .set_dataset(dataset, source, Some(points), source_points)
                    .map_err(AppError::from)?;
                g.eval_x0 = prior_draw(
                    g.trainer.config(),
                    g.trainer.source_pool(),
                    EVAL_POINTS,
                    EVAL_SEED,
                );
                g.x0_for = None;
                g.pending_eval = None;
                g.views.density_x0.clear();
            }
            Self::Cpu(c) => {
                c.trainer
                    .set_dataset(dataset, source, Some(points), source_points)
                    .map_err(AppError::from)?;
                c.eval_x0 = prior_draw(
                    c.trainer.config(),
                    c.trainer.source_pool(),
                    EVAL_POINTS,
                    EVAL_SEED,
                );
                c.finished_eval = None;
                c.views = views::CpuViews::default();
            }
        }
        // The new data has its own loss level.
        self.watch_mut().new_level();
        Ok(())
    }

    /// The source points of a custom source (`None` for a built-in one).
    pub(crate) fn source_pool(&self) -> Option<&Points> {
        match self {
            Self::Gpu(g) => g.trainer.source_pool(),
            Self::Cpu(c) => c.trainer.source_pool(),
        }
    }

    /// Replaces the weights (raw and EMA) with `params`, e.g. imported ones; checkpoints of the
    /// old weights are let go.
    pub(crate) fn set_params(&mut self, params: &[f32]) -> AppResult<()> {
        match self {
            Self::Gpu(g) => g.trainer.set_params(params).map_err(AppError::from)?,
            Self::Cpu(c) => c.trainer.set_params(params).map_err(AppError::from)?,
        }
        self.watch_mut().reset();
        Ok(())
    }

    /// The current model with its raw or EMA weights, without blocking: the CPU's at once; the
    /// GPU's are read back, so the first call starts the read and returns `None`, and a later
    /// frame's call returns them (on native and on the web alike).
    pub(crate) fn fetch_model(&mut self, ema: bool) -> AppResult<Option<FlowModel>> {
        match self {
            Self::Cpu(c) => Ok(Some(c.trainer.model(ema))),
            Self::Gpu(g) => {
                if let Some((read, for_ema)) = &g.pending_weights
                    && *for_ema == ema
                {
                    let Some(bytes) = read.try_take(&g.device) else {
                        return Ok(None);
                    };
                    g.pending_weights = None;
                    let params: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes?);
                    let model = FlowModel::new(g.trainer.config().model_spec(), params)
                        .map_err(AppError::from)?;
                    return Ok(Some(model));
                }
                let encoder = g.new_encoder("app::read_weights");
                let buffer = if ema {
                    g.trainer.ema_buffer()
                } else {
                    g.trainer.params_buffer()
                };
                let read = g.submit_read(encoder, buffer, g.param_bytes());
                g.pending_weights = Some((read, ema));
                Ok(None)
            }
        }
    }

    fn watch_mut(&mut self) -> &mut watch::Watch {
        match self {
            Self::Gpu(g) => &mut g.watch,
            Self::Cpu(c) => &mut c.watch,
        }
    }

    /// Whether work is under way whose results are still to come (submitted to the GPU, or a
    /// view the CPU computes over several frames).
    pub(crate) fn busy(&self) -> bool {
        match self {
            Self::Gpu(g) => {
                g.trainer.in_flight()
                    || g.pending_eval.is_some()
                    || g.pending_reflow.is_some()
                    || g.views.busy()
            }
            Self::Cpu(c) => c.finished_eval.is_some() || c.views.busy(),
        }
    }

    /// Whether a reflow coupling is still being generated.
    pub(crate) fn reflow_pending(&self) -> bool {
        matches!(self, Self::Gpu(g) if g.pending_reflow.is_some())
    }

    /// Starts the reflow round whose coupling came back (GPU), once.
    pub(crate) fn poll_reflow(&mut self) -> Option<AppResult<()>> {
        let Self::Gpu(g) = self else {
            return None;
        };
        let pending = g.pending_reflow.as_ref()?;
        let bytes = match pending.read.try_take(&g.device)? {
            Ok(bytes) => bytes,
            Err(e) => {
                g.pending_reflow = None;
                return Some(Err(e.into()));
            }
        };
        let pending = g.pending_reflow.take()?;
        g.watch.reset();
        let pool = CouplingPool {
            x0: pending.x0,
            x1: points(&bytes),
            labels: pending.labels,
        };
        Some(
            g.trainer
                .start_reflow_round(pool, pending.steps)
                .map_err(AppError::from),
        )
    }
}
