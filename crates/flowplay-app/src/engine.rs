//! Where training and sampling run: the WGSL trainer and sampler on egui's own wgpu device, or
//! the CPU reference where there is no GPU compute (WebGL, or the user's choice).
//!
//! The GPU path never blocks a frame: training steps are submitted in batches sized so that at
//! most two are queued, losses come back through the trainer's staging ring, the particles are
//! integrated from the EMA weights by a GPU-to-GPU copy and drawn straight from the sampler's
//! buffers, and evaluation samples are read back with a [`PendingRead`] picked up on a later
//! frame.

use flowplay_core::data::Points;
use flowplay_core::flow::draw_source;
use flowplay_core::metrics::wasserstein2;
use flowplay_core::sampler::{Record, SamplerConfig, Trajectories};
use flowplay_core::train::{CpuTrainer, TrainConfig};
use flowplay_gpu::buffers::PendingRead;
use flowplay_gpu::{GpuSampler, GpuTrainer, MAX_STEPS_PER_SUBMIT, ParticleSource};
use web_time::{Duration, Instant};

/// Particles the CPU reference integrates per refresh at most (the GPU's bound is its memory).
pub(crate) const CPU_MAX_PARTICLES: usize = 5000;
/// Particles and held-out points of each W2 evaluation.
pub(crate) const EVAL_POINTS: usize = 400;
/// Submissions the GPU may have queued: enough to keep it busy, few enough to stay responsive.
const GPU_QUEUE_DEPTH: usize = 2;

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

/// What the particles were integrated with: the solver's settings and the particles' seed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FlowRequest {
    pub(crate) sampler: SamplerConfig,
    pub(crate) n: usize,
    pub(crate) seed: u64,
    pub(crate) endpoints: bool,
}

/// The particles to draw.
pub(crate) enum Flow<'a> {
    /// Trajectories on the CPU, drawn with egui's painter.
    Cpu(&'a Trajectories),
    /// Trajectories in GPU buffers, drawn by a render pipeline.
    Gpu(ParticleSource),
}

/// A W2 evaluation under way on the GPU.
struct PendingEval {
    read: PendingRead,
    step: u64,
}

/// The GPU side: trainer, the sampler whose buffers are drawn, and a second sampler for
/// evaluation (so that evaluating never overwrites what is on screen).
pub(crate) struct GpuEngine {
    device: wgpu::Device,
    queue: wgpu::Queue,
    trainer: GpuTrainer,
    sampler: GpuSampler,
    eval: GpuSampler,
    steps_per_submit: u32,
    x0: Vec<[f32; 2]>,
    x0_for: Option<(usize, u64, u32)>,
    eval_x0: Vec<[f32; 2]>,
    pending_eval: Option<PendingEval>,
    flow_n: usize,
}

/// The CPU reference.
pub(crate) struct CpuEngine {
    trainer: CpuTrainer,
    flow: Option<Trajectories>,
    eval_x0: Vec<[f32; 2]>,
    pending_eval: Option<u64>,
    flow_eval: Option<Vec<[f32; 2]>>,
}

/// Training and sampling on one backend.
pub(crate) enum Engine {
    Gpu(Box<GpuEngine>),
    Cpu(Box<CpuEngine>),
}

/// The prior draw `x0` for `n` particles: the source scaled to the path's prior.
fn prior_draw(config: &TrainConfig, n: usize, seed: u64) -> Vec<[f32; 2]> {
    let scale = config.path.prior_scale();
    draw_source(&config.source, n, seed, None)
        .unwrap_or_default()
        .into_iter()
        .map(|p| [scale * p[0], scale * p[1]])
        .collect()
}

/// Seed of the evaluation's prior draw, apart from the particles on screen.
const EVAL_SEED: u64 = 0xE7A1;

impl Engine {
    /// A GPU engine on egui's device, or why there is none.
    pub(crate) fn gpu(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        config: TrainConfig,
        data: Points,
    ) -> Result<Self, String> {
        let eval_x0 = prior_draw(&config, EVAL_POINTS, EVAL_SEED);
        let path = config.path;
        let trainer = GpuTrainer::with_custom(device, queue, config, Some(data), None)
            .map_err(|e| e.to_string())?;
        let sampler = GpuSampler::new(device, trainer.mlp(), path).map_err(|e| e.to_string())?;
        let eval = GpuSampler::new(device, trainer.mlp(), path).map_err(|e| e.to_string())?;
        Ok(Self::Gpu(Box::new(GpuEngine {
            device: device.clone(),
            queue: queue.clone(),
            eval_x0,
            trainer,
            sampler,
            eval,
            steps_per_submit: 1,
            x0: Vec::new(),
            x0_for: None,
            pending_eval: None,
            flow_n: 0,
        })))
    }

    /// A CPU engine.
    pub(crate) fn cpu(config: TrainConfig, data: Points) -> Result<Self, String> {
        let eval_x0 = prior_draw(&config, EVAL_POINTS, EVAL_SEED);
        let trainer =
            CpuTrainer::with_custom(config, Some(data), None).map_err(|e| e.to_string())?;
        Ok(Self::Cpu(Box::new(CpuEngine {
            trainer,
            flow: None,
            eval_x0,
            pending_eval: None,
            flow_eval: None,
        })))
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

    /// Steps whose loss is known.
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

    /// Changes the settings the running trainer can take (path, t-sampling, batch, optimizer).
    pub(crate) fn set_config(&mut self, config: TrainConfig) -> Result<(), String> {
        match self {
            Self::Gpu(g) => {
                g.trainer
                    .set_config(config.clone())
                    .map_err(|e| e.to_string())?;
                g.sampler.set_path(config.path).map_err(|e| e.to_string())?;
                g.eval.set_path(config.path).map_err(|e| e.to_string())?;
                g.eval_x0 = prior_draw(&config, EVAL_POINTS, EVAL_SEED);
                g.x0_for = None;
                g.pending_eval = None;
            }
            Self::Cpu(c) => {
                c.eval_x0 = prior_draw(&config, EVAL_POINTS, EVAL_SEED);
                c.trainer.set_config(config).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// Trains for about one frame. On the GPU: collects the statistics that came back and keeps
    /// at most two submissions queued, growing a submission while the GPU keeps up and shrinking
    /// it when it falls behind. An error (a divergence) stops training with the weights of the
    /// last good step.
    /// `cpu_budget` is the time the CPU reference may spend.
    pub(crate) fn train_frame(&mut self, cpu_budget: Duration) -> Result<(), String> {
        match self {
            Self::Gpu(g) => {
                g.trainer.poll().map_err(|e| e.to_string())?;
                let queued = g.trainer.submissions_in_flight();
                if queued >= GPU_QUEUE_DEPTH {
                    g.steps_per_submit = (g.steps_per_submit * 3 / 4).max(1);
                    return Ok(());
                }
                if queued == 0 && g.trainer.steps_done() > 0 {
                    // The GPU ran dry since the last frame: give it more per submission.
                    g.steps_per_submit = (g.steps_per_submit * 2).min(MAX_STEPS_PER_SUBMIT);
                }
                g.trainer
                    .submit(g.steps_per_submit)
                    .map_err(|e| e.to_string())?;
                Ok(())
            }
            Self::Cpu(c) => {
                let started = Instant::now();
                while started.elapsed() < cpu_budget {
                    c.trainer.step().map_err(|e| e.to_string())?;
                }
                Ok(())
            }
        }
    }

    /// Collects statistics still on their way (after training is paused).
    pub(crate) fn drain(&mut self) -> Result<(), String> {
        if let Self::Gpu(g) = self {
            g.trainer.poll().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The most particles a refresh can integrate and draw with `request`'s solver.
    pub(crate) fn max_particles(&self, request: &FlowRequest) -> usize {
        match self {
            Self::Gpu(g) => {
                // Positions [n, frames] must fit one storage binding (the draw reads them whole).
                let limits = g.device.limits();
                let binding = limits
                    .max_storage_buffer_binding_size
                    .min(limits.max_buffer_size);
                let frames = request.sampler.steps as u64 + 1;
                (binding / (frames * 8)) as usize / 64 * 64
            }
            Self::Cpu(_) => CPU_MAX_PARTICLES,
        }
    }

    /// Integrates the particles with the current EMA weights (QR §5). On the GPU this is
    /// encoded and submitted without waiting; the draw picks the result up.
    pub(crate) fn refresh_flow(&mut self, request: &FlowRequest) -> Result<(), String> {
        let record = Record {
            positions: true,
            endpoints: request.endpoints,
            velocities: false,
        };
        match self {
            Self::Gpu(g) => {
                let key = (
                    request.n,
                    request.seed,
                    g.trainer.config().path.prior_scale().to_bits(),
                );
                if g.x0_for != Some(key) {
                    g.x0 = prior_draw(g.trainer.config(), request.n, request.seed);
                    g.x0_for = Some(key);
                }
                let mut encoder =
                    g.device
                        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                            label: Some("app::refresh_flow"),
                        });
                encoder.copy_buffer_to_buffer(
                    g.trainer.ema_buffer(),
                    0,
                    g.sampler.params_buffer(),
                    0,
                    g.trainer.mlp().num_params() as u64 * 4,
                );
                g.sampler
                    .encode_sample(
                        &g.device,
                        &g.queue,
                        &mut encoder,
                        &g.x0,
                        None,
                        1.0,
                        &request.sampler,
                        record,
                    )
                    .map_err(|e| e.to_string())?;
                g.queue.submit([encoder.finish()]);
                g.flow_n = request.n;
                Ok(())
            }
            Self::Cpu(c) => {
                let model = c.trainer.model(true);
                let x0 = prior_draw(c.trainer.config(), request.n, request.seed);
                let out = model
                    .integrate(
                        &x0,
                        &flowplay_core::flow::SampleRequest {
                            sampler: request.sampler,
                            n: request.n,
                            seed: request.seed,
                            labels: None,
                            cfg_scale: 1.0,
                            record,
                        },
                    )
                    .map_err(|e| e.to_string())?;
                c.flow = Some(out.trajectories);
                Ok(())
            }
        }
    }

    /// The particles of the last refresh.
    pub(crate) fn flow(&self) -> Option<Flow<'_>> {
        match self {
            Self::Gpu(g) => {
                if g.flow_n == 0 {
                    return None;
                }
                let [positions, endpoints, _] = g.sampler.trajectory_buffers();
                Some(Flow::Gpu(ParticleSource {
                    positions: positions.clone(),
                    endpoints: Some(endpoints.clone()),
                    n: g.flow_n,
                    times: g.sampler.times().to_vec(),
                }))
            }
            Self::Cpu(c) => c.flow.as_ref().map(Flow::Cpu),
        }
    }

    /// Starts a W2 evaluation of the EMA model against `held_out` (unless one is under way) with
    /// `sampler`; [`Self::poll_eval`] returns it when done. On the CPU it runs at once.
    pub(crate) fn start_eval(&mut self, sampler: &SamplerConfig) -> Result<(), String> {
        match self {
            Self::Gpu(g) => {
                if g.pending_eval.is_some() {
                    return Ok(());
                }
                let mut encoder =
                    g.device
                        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                            label: Some("app::eval"),
                        });
                encoder.copy_buffer_to_buffer(
                    g.trainer.ema_buffer(),
                    0,
                    g.eval.params_buffer(),
                    0,
                    g.trainer.mlp().num_params() as u64 * 4,
                );
                g.eval
                    .encode_sample(
                        &g.device,
                        &g.queue,
                        &mut encoder,
                        &g.eval_x0,
                        None,
                        1.0,
                        sampler,
                        Record::default(),
                    )
                    .map_err(|e| e.to_string())?;
                let read = PendingRead::encode(
                    &g.device,
                    &mut encoder,
                    g.eval.positions_buffer(),
                    0,
                    (g.eval_x0.len() * 8) as u64,
                );
                g.queue.submit([encoder.finish()]);
                read.start();
                g.pending_eval = Some(PendingEval {
                    read,
                    step: g.trainer.steps_done(),
                });
                Ok(())
            }
            Self::Cpu(c) => {
                if c.pending_eval.is_some() {
                    return Ok(());
                }
                let out = c
                    .trainer
                    .model(true)
                    .integrate(
                        &c.eval_x0,
                        &flowplay_core::flow::SampleRequest {
                            sampler: *sampler,
                            n: c.eval_x0.len(),
                            seed: EVAL_SEED,
                            labels: None,
                            cfg_scale: 1.0,
                            record: Record::default(),
                        },
                    )
                    .map_err(|e| e.to_string())?;
                c.flow_eval = Some(out.x);
                c.pending_eval = Some(c.trainer.steps_done());
                Ok(())
            }
        }
    }

    /// A finished evaluation: `(step, W2 against held_out)`.
    pub(crate) fn poll_eval(
        &mut self,
        held_out: &[[f32; 2]],
    ) -> Option<Result<(u64, f64), String>> {
        let (step, samples) = match self {
            Self::Gpu(g) => {
                let pending = g.pending_eval.as_ref()?;
                let bytes = match pending.read.try_take(&g.device)? {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        g.pending_eval = None;
                        return Some(Err(e.to_string()));
                    }
                };
                let step = pending.step;
                g.pending_eval = None;
                let flat: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes);
                let samples: Vec<[f32; 2]> = flat.chunks_exact(2).map(|p| [p[0], p[1]]).collect();
                (step, samples)
            }
            Self::Cpu(c) => {
                let step = c.pending_eval.take()?;
                (step, c.flow_eval.take()?)
            }
        };
        Some(
            wasserstein2(&samples, &held_out[..samples.len().min(held_out.len())])
                .map(|w2| (step, w2))
                .map_err(|e| e.to_string()),
        )
    }
}
