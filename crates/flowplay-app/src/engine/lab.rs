//! The solver × NFE lab in the app (`flowplay_core::sweep`): every setting of the grid measured
//! in the background, one at a time, for the model as it was when the sweep began. On the GPU a
//! setting is a sampling run (and a likelihood run) on the lab's own sampler, read back without
//! blocking; on the CPU one setting is measured a frame. When a sweep is done and the model has
//! trained since, the next begins; while training, the first waits for [`LAB_FIRST_STEP`].

use flowplay_core::flow::FlowModel;
use flowplay_core::sampler::Record;
use flowplay_core::sweep::{self, NfePoint, NfeSetting};
use flowplay_gpu::GpuSampler;
use flowplay_gpu::buffers::PendingRead;
use web_time::Instant;

use super::{CpuEngine, EVAL_POINTS, Engine, GpuEngine, encode_run, points, prior_draw, request};
use crate::error::{AppError, AppResult};

/// Samples a setting (and held-out points): the evaluation's, so the lab's W2 and the W2 plot
/// read alike.
pub(crate) const LAB_POINTS: usize = EVAL_POINTS;
/// The seed of the lab's source draw: the same source points for every setting and sweep.
const LAB_SEED: u64 = 0x00AB_1AB0;
/// After a setting that took d seconds, the next starts (LAB_PACE − 1)·d later: the lab keeps
/// to a fifth of the device's time, as evaluations do (on a software GPU one setting can take
/// a second).
const LAB_PACE: f64 = 5.0;
/// While training, the first sweep waits for this many steps: a sweep of an untrained network
/// is the same noise at every NFE, and it would hold the lab for a whole sweep.
pub(crate) const LAB_FIRST_STEP: u64 = 200;

/// One sweep of the grid, as far as it has come.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Sweep {
    /// The training step of the model it measures.
    pub(crate) step: u64,
    /// The points measured so far, in the grid's order.
    pub(crate) points: Vec<NfePoint>,
    /// Seconds from its start to its last point, once done.
    pub(crate) secs: Option<f64>,
    started: Option<Instant>,
}

/// The sweep under way and the last one done.
#[derive(Clone, Debug, Default)]
pub(crate) struct Sweeps {
    pub(crate) current: Option<Sweep>,
    pub(crate) done: Option<Sweep>,
    /// Settings measured since the engine began (every sweep).
    pub(crate) measured: usize,
    /// When the setting under way began.
    setting_started: Option<Instant>,
    /// No setting starts before this.
    pace_until: Option<Instant>,
}

impl Sweeps {
    /// Whether the lab may start a setting now (it keeps to its share of the time).
    fn paced(&self) -> bool {
        self.pace_until.is_none_or(|t| Instant::now() >= t)
    }

    /// A setting starts now.
    fn start_setting(&mut self) {
        self.setting_started = Some(Instant::now());
    }

    /// The setting to measure next, if a sweep is under way.
    fn next(&self) -> Option<NfeSetting> {
        let current = self.current.as_ref()?;
        sweep::grid(sweep::MAX_NFE)
            .get(current.points.len())
            .copied()
    }

    /// Whether a new sweep is due for the model at `step`: none under way, none done of this
    /// model, and (while it trains) a model past its first steps.
    fn due(&self, step: u64, training: bool) -> bool {
        self.current.is_none()
            && self.done.as_ref().is_none_or(|d| d.step != step)
            && (!training || step >= LAB_FIRST_STEP)
    }

    fn begin(&mut self, step: u64) {
        self.current = Some(Sweep {
            step,
            started: Some(Instant::now()),
            ..Sweep::default()
        });
    }

    /// Adds the next point; a finished sweep becomes the last one done.
    fn add(&mut self, point: NfePoint) {
        let Some(current) = self.current.as_mut() else {
            return;
        };
        current.points.push(point);
        self.measured += 1;
        if let Some(started) = self.setting_started.take() {
            let took = started.elapsed().as_secs_f64();
            self.pace_until =
                Some(Instant::now() + web_time::Duration::from_secs_f64((LAB_PACE - 1.0) * took));
        }
        if current.points.len() == sweep::grid(sweep::MAX_NFE).len() {
            current.secs = current.started.map(|s| s.elapsed().as_secs_f64());
            self.done = self.current.take();
        }
    }
}

/// The GPU's lab: its own sampler, the weights of the model it measures, the run on its way.
#[derive(Default)]
pub(crate) struct GpuLab {
    sampler: Option<GpuSampler>,
    /// A copy of the weights the sweep measures (the trainer's go on changing).
    weights: Option<wgpu::Buffer>,
    x0: Vec<[f32; 2]>,
    pending: Option<Pending>,
    pub(crate) sweeps: Sweeps,
}

/// One setting's run on its way back: the samples and, where defined, the held-out log
/// densities.
struct Pending {
    setting: NfeSetting,
    reads: Vec<PendingRead>,
    bytes: Vec<Option<Vec<u8>>>,
}

/// The CPU's lab: the model it measures.
#[derive(Default)]
pub(crate) struct CpuLab {
    model: Option<FlowModel>,
    x0: Vec<[f32; 2]>,
    pub(crate) sweeps: Sweeps,
}

impl Engine {
    /// The lab's sweeps.
    pub(crate) fn lab(&self) -> &Sweeps {
        match self {
            Self::Gpu(g) => &g.lab.sweeps,
            Self::Cpu(c) => &c.lab.sweeps,
        }
    }

    /// Forgets the lab's sweeps (another path or data: the old figures are of another
    /// problem).
    pub(crate) fn reset_lab(&mut self) {
        match self {
            Self::Gpu(g) => {
                g.lab.sweeps = Sweeps::default();
                g.lab.pending = None;
            }
            Self::Cpu(c) => c.lab = CpuLab::default(),
        }
    }

    /// Moves the lab on by one setting, against `held_out`, with the grid shifted by
    /// `rescale_t` and the raw or `ema` weights: begins a sweep when one is due (`training`:
    /// whether the model is training), collects a finished GPU run and starts the next (or, on
    /// the CPU, measures one setting).
    pub(crate) fn lab_frame(
        &mut self,
        held_out: &[[f32; 2]],
        rescale_t: f32,
        ema: bool,
        training: bool,
    ) -> AppResult<()> {
        let likelihood = self.config().source.is_standard_normal();
        match self {
            Self::Gpu(g) => g.lab_frame(held_out, rescale_t, (ema, training), likelihood),
            Self::Cpu(c) => c.lab_frame(held_out, rescale_t, (ema, training), likelihood),
        }
    }
}

impl GpuEngine {
    fn lab_frame(
        &mut self,
        held_out: &[[f32; 2]],
        rescale_t: f32,
        (ema, training): (bool, bool),
        likelihood: bool,
    ) -> AppResult<()> {
        if let Some(pending) = self.lab.pending.as_mut() {
            for (read, slot) in pending.reads.iter().zip(&mut pending.bytes) {
                if slot.is_none() {
                    match read.try_take(&self.device) {
                        Some(Ok(bytes)) => *slot = Some(bytes),
                        Some(Err(e)) => {
                            self.lab.pending = None;
                            return Err(e.into());
                        }
                        None => {}
                    }
                }
            }
            if pending.bytes.iter().any(Option::is_none) {
                return Ok(());
            }
            let samples = pending.bytes[0].as_deref().map(points).unwrap_or_default();
            let logp = pending.bytes.get(1).and_then(Option::as_deref);
            let logp = logp.map(bytemuck::pod_collect_to_vec::<u8, f32>);
            let point = NfePoint::from_run(pending.setting, &samples, held_out, logp.as_deref())?;
            self.lab.pending = None;
            self.lab.sweeps.add(point);
        }
        let step = self.trainer.steps_done();
        if self.lab.sweeps.due(step, training) {
            let weights = if ema {
                self.trainer.ema_buffer()
            } else {
                self.trainer.params_buffer()
            };
            // The sweep's own copy, copied into the lab's sampler before each run.
            self.lab.weights = Some(self.copy_of_weights(weights, "flowplay::lab::weights"));
            let config = self.trainer.config();
            self.lab.x0 = prior_draw(config, self.trainer.source_pool(), LAB_POINTS, LAB_SEED);
            if self.lab.sampler.is_none() {
                self.lab.sampler = Some(
                    GpuSampler::new(&self.device, self.trainer.mlp(), config.path)
                        .map_err(AppError::from)?,
                );
            }
            if let Some(sampler) = self.lab.sampler.as_mut() {
                sampler.set_path(config.path).map_err(AppError::from)?;
            }
            self.lab.sweeps.begin(step);
        }
        if !self.lab.sweeps.paced() {
            return Ok(());
        }
        let (Some(setting), Some(weights), Some(sampler)) = (
            self.lab.sweeps.next(),
            self.lab.weights.as_ref(),
            self.lab.sampler.as_mut(),
        ) else {
            return Ok(());
        };
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("flowplay::lab::run"),
            });
        let x0 = &self.lab.x0;
        let run = request(setting.sampler(rescale_t), x0.len(), LAB_SEED, Record::NONE);
        encode_run(
            &self.device,
            &self.queue,
            &mut encoder,
            sampler,
            weights,
            x0,
            &run,
        )?;
        let bytes = (x0.len() * 8) as u64;
        let mut reads = vec![PendingRead::encode(
            &self.device,
            &mut encoder,
            sampler.positions_buffer(),
            0,
            bytes,
        )];
        if likelihood && !held_out.is_empty() {
            let points = request(setting.sampler(rescale_t), held_out.len(), 0, Record::NONE);
            sampler
                .encode_log_likelihood(&self.device, &self.queue, &mut encoder, held_out, &points)
                .map_err(AppError::from)?;
            let logp = sampler
                .log_likelihood_buffer()
                .ok_or(AppError::Missing("the lab's likelihood wrote nothing"))?;
            let bytes = (held_out.len() * 4) as u64;
            reads.push(PendingRead::encode(
                &self.device,
                &mut encoder,
                logp,
                0,
                bytes,
            ));
        }
        self.queue.submit([encoder.finish()]);
        for read in &reads {
            read.start();
        }
        self.lab.sweeps.start_setting();
        self.lab.pending = Some(Pending {
            setting,
            bytes: vec![None; reads.len()],
            reads,
        });
        Ok(())
    }
}

impl CpuEngine {
    fn lab_frame(
        &mut self,
        held_out: &[[f32; 2]],
        rescale_t: f32,
        (ema, training): (bool, bool),
        likelihood: bool,
    ) -> AppResult<()> {
        let step = self.trainer.steps_done();
        if self.lab.sweeps.due(step, training) {
            self.lab.model = Some(self.trainer.model(ema));
            let config = self.trainer.config();
            self.lab.x0 = prior_draw(config, self.trainer.source_pool(), LAB_POINTS, LAB_SEED);
            self.lab.sweeps.begin(step);
        }
        if !self.lab.sweeps.paced() {
            return Ok(());
        }
        let (Some(setting), Some(model)) = (self.lab.sweeps.next(), self.lab.model.as_ref()) else {
            return Ok(());
        };
        self.lab.sweeps.start_setting();
        let point = sweep::measure(
            model,
            setting,
            rescale_t,
            &self.lab.x0,
            held_out,
            likelihood,
        )?;
        self.lab.sweeps.add(point);
        Ok(())
    }
}
