//! What the layers show besides the particles, computed where the model lives: the velocity
//! field on a grid, the density p_t from many particles, the exact log-likelihood on a grid,
//! one particle's solver stages and one training batch's pairs.
//!
//! Each view is started (`start_*`) and picked up when ready (`poll_*`), one of each kind at a
//! time, so the GPU never blocks a frame: the field's arrows, the density's counts and the
//! likelihood map are drawn straight from the buffers the kernels wrote, and a small read-back
//! (the velocities, the counts, the values) brings the colour scales and streamlines. On the CPU
//! a view is computed when started, the likelihood map a chunk a frame.
//!
//! The views use the weights the drawn particles follow (copied when the particles were last
//! refreshed), so that arrows, density and particles agree.

use flowplay_core::flow::{FlowModel, SampleRequest};
use flowplay_core::sampler::{
    GuidedField, MlpField, Record, SamplerConfig, Solver, Trajectories, step_parts,
};
use flowplay_core::train::BatchPairs;
use flowplay_gpu::buffers::PendingRead;
use flowplay_gpu::overlay::{ColourMap, HeatValues};
use flowplay_gpu::{FieldGrid, GpuSampler, HistogramBins, Rect};
use web_time::{Duration, Instant};

use super::{CURRENT, Engine, GpuEngine, points, prior_draw};
use crate::error::{AppError, AppResult};
use crate::layers::{ARROWS, FieldView, Heatmap, LayerId, PairsView, StageView, position_at};

/// Particles of the GPU's density run (the floor: p_t from at least 100 k).
pub(crate) const GPU_DENSITY_PARTICLES: usize = 100_000;
/// Particles of the density run on a software GPU at least (else as many as are drawn).
const SOFTWARE_DENSITY_PARTICLES: usize = 2_000;
/// Network evaluations the CPU spends on one density run at most (10 000 particles with 25
/// Euler steps): it runs within a frame.
const CPU_DENSITY_EVALS: usize = 250_000;
/// Bins across the shorter side of a hardware GPU's heat maps (a software GPU's get the CPU's).
pub(crate) const GPU_HEAT_BINS: u32 = 128;
/// Bins of the CPU's density (fewer particles fill fewer bins) and likelihood map.
pub(crate) const CPU_HEAT_BINS: u32 = 64;
/// The seed of the density run's prior draw, apart from the particles on screen.
const DENSITY_SEED: u64 = 0xDE75;
/// The CPU's likelihood map advances in chunks of this many points, for about this long a frame.
const LOGP_CHUNK: usize = 256;
const LOGP_FRAME_BUDGET: Duration = Duration::from_millis(15);
/// Particles the nearest-particle search looks at on the GPU (integrated again on the CPU).
const NEAREST_SEARCHED: usize = 4096;
/// Pairs drawn of a training batch at most (minibatch OT solves them exactly).
pub(crate) const PAIRS_SHOWN: usize = 256;

/// The likelihood map asked for: the grid, the solver, and the class (a conditional model).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LogpAsk {
    pub(crate) rect: Rect,
    pub(crate) nx: u32,
    pub(crate) ny: u32,
    pub(crate) sampler: SamplerConfig,
    pub(crate) label: Option<u32>,
    pub(crate) cfg_scale: f32,
}

impl LogpAsk {
    /// The grid's cell centres, row by row from the bottom (as the heat map reads them).
    pub(crate) fn points(&self) -> Vec<[f32; 2]> {
        (0..self.ny)
            .flat_map(|j| (0..self.nx).map(move |i| self.rect.cell_centre(self.nx, self.ny, i, j)))
            .collect()
    }

    fn caption(&self) -> String {
        let of = self.label.map_or(String::new(), |c| format!(", class {c}"));
        format!(
            "log p₁(x){of}, {} × {}, {} steps",
            self.sampler.solver.name(),
            self.sampler.steps,
            self.nx
        )
    }
}

/// The density asked for: p_t on a grid at t, of particles sampled with `sampler` (and classes
/// as the particles on screen get them).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DensityAsk {
    pub(crate) bins: HistogramBins,
    pub(crate) sampler: SamplerConfig,
    pub(crate) classes: u32,
    pub(crate) cfg_scale: f32,
}

impl DensityAsk {
    /// What the density run integrates: everything but the time and the grid.
    fn run_key(&self, version: u64, n: usize) -> (u64, usize, SamplerConfig, u32, u32) {
        (
            version,
            n,
            self.sampler,
            self.classes,
            self.cfg_scale.to_bits(),
        )
    }
}

type RunKey = (u64, usize, SamplerConfig, u32, u32);

/// The GPU's views: a sampler for the field and the likelihood map and one for the density's
/// many particles, apart from the drawn ones, and the read-backs under way.
pub(crate) struct GpuViews {
    field: GpuSampler,
    density: GpuSampler,
    field_read: Option<(FieldGrid, PendingRead)>,
    density_read: Option<(DensityAsk, usize, PendingRead)>,
    logp_read: Option<(LogpAsk, PendingRead)>,
    /// What the density sampler last integrated.
    density_run: Option<RunKey>,
    pub(super) density_x0: Vec<[f32; 2]>,
    /// The drawn weights on their way back, for the stages view, and the last that came.
    model_read: Option<(u64, PendingRead)>,
    model: Option<(u64, FlowModel)>,
}

impl GpuViews {
    pub(super) fn new(
        device: &wgpu::Device,
        mlp: &flowplay_core::mlp::Mlp,
        path: flowplay_core::path::Path,
    ) -> AppResult<Self> {
        Ok(Self {
            field: GpuSampler::new(device, mlp, path)?,
            density: GpuSampler::new(device, mlp, path)?,
            field_read: None,
            density_read: None,
            logp_read: None,
            density_run: None,
            density_x0: Vec::new(),
            model_read: None,
            model: None,
        })
    }

    /// The path changed: the samplers follow, and what they hold is stale.
    pub(super) fn set_path(&mut self, path: flowplay_core::path::Path) -> AppResult<()> {
        self.field.set_path(path)?;
        self.density.set_path(path)?;
        self.density_run = None;
        self.field_read = None;
        self.density_read = None;
        self.logp_read = None;
        self.model = None;
        self.model_read = None;
        Ok(())
    }

    /// Whether a view is on its way back.
    pub(super) fn busy(&self) -> bool {
        self.field_read.is_some()
            || self.density_read.is_some()
            || self.logp_read.is_some()
            || self.model_read.is_some()
    }
}

/// The CPU's views: results waiting to be picked up, and the likelihood map under way.
#[derive(Default)]
pub(crate) struct CpuViews {
    field: Option<FieldView>,
    density: Option<Heatmap>,
    /// The density run's trajectories, and what they were integrated for.
    density_run: Option<(RunKey, Trajectories)>,
    logp: Option<LogpJob>,
}

impl CpuViews {
    /// Whether the likelihood map is under way (it advances a chunk a frame).
    pub(super) fn busy(&self) -> bool {
        self.logp.is_some()
    }
}

/// The CPU's likelihood map, a chunk a frame.
struct LogpJob {
    ask: LogpAsk,
    points: Vec<[f32; 2]>,
    values: Vec<f32>,
}

/// The particles' class labels as the drawing gives them (`i mod classes`).
fn labels(classes: u32, n: usize) -> Option<Vec<u32>> {
    (classes > 0).then(|| (0..n as u32).map(|i| i % classes).collect())
}

/// The velocity of `model` at `grid`'s cell centres (the grid's class, guided).
fn field_on_cpu(model: &FlowModel, grid: &FieldGrid) -> Vec<[f32; 2]> {
    let x: Vec<[f32; 2]> = (0..grid.ny)
        .flat_map(|j| (0..grid.nx).map(move |i| grid.rect.cell_centre(grid.nx, grid.ny, i, j)))
        .collect();
    let mut out = vec![[0.0; 2]; x.len()];
    velocities(model, grid.t, &x, grid.label, grid.cfg_scale, &mut out);
    out
}

/// v(t, x) of `model` for class `label` with guidance `cfg_scale` (no label: the unconditional
/// head of a conditional model).
fn velocities(
    model: &FlowModel,
    t: f32,
    x: &[[f32; 2]],
    label: Option<u32>,
    cfg_scale: f32,
    out: &mut [[f32; 2]],
) {
    use flowplay_core::sampler::VelocityField;
    let field = MlpField::new(&model.mlp, &model.params, model.spec.path);
    let conditional = model.spec.mlp.is_conditional();
    match label.filter(|_| conditional) {
        Some(c) => {
            let guided = GuidedField::new(&field, cfg_scale, model.spec.mlp.null_label());
            guided.velocity(t, x, Some(&vec![c; x.len()]), out);
        }
        None => field.velocity(t, x, None, out),
    }
}

/// Counts of `traj`'s particles at `t` in `bins`, `[ny, nx]`.
fn histogram_on_cpu(traj: &Trajectories, bins: &HistogramBins, t: f32) -> Vec<f32> {
    let mut counts = vec![0.0_f32; (bins.nx * bins.ny) as usize];
    let n = traj.positions.len() / traj.frames().max(1);
    for i in 0..n {
        let p = position_at(traj, i, t);
        if let Some(b) = bins.rect.bin(bins.nx, bins.ny, p) {
            counts[b] += 1.0;
        }
    }
    counts
}

/// The density heat map of `counts` from `particles` particles.
fn density_map(
    ask: &DensityAsk,
    counts: Vec<f32>,
    particles: usize,
    gpu: Option<wgpu::Buffer>,
) -> Heatmap {
    let HistogramBins { rect, nx, ny, t } = ask.bins;
    let (kind, range, values) = Heatmap::density(rect, nx, ny, counts, particles);
    Heatmap {
        layer: LayerId::Density,
        rect,
        nx,
        ny,
        kind,
        range,
        colours: ColourMap::Inferno,
        values,
        gpu,
        texture: None,
        caption: format!(
            "p_t at t = {:.2} from {particles} particles",
            t.unwrap_or(1.0)
        ),
    }
}

fn logp_map(ask: &LogpAsk, values: Vec<f32>, gpu: Option<wgpu::Buffer>) -> Heatmap {
    Heatmap {
        layer: LayerId::Logp,
        rect: ask.rect,
        nx: ask.nx,
        ny: ask.ny,
        kind: HeatValues::Values,
        range: Heatmap::logp_range(&values),
        colours: ColourMap::Viridis,
        values,
        gpu,
        texture: None,
        caption: ask.caption(),
    }
}

/// Why the likelihood layer has nothing to show for a model that does not start from N(0, I).
pub(crate) fn no_likelihood(source: &str) -> AppError {
    AppError::Unsupported(format!(
        "The likelihood layer needs a model trained from N(0, I) noise; this one starts from \
         '{source}', whose density is not known, so log p₁ is not defined here."
    ))
}

impl GpuEngine {
    /// Copies the drawn particles' weights into `target`'s parameters.
    fn copy_drawn_weights(&self, encoder: &mut wgpu::CommandEncoder, target: &GpuSampler) {
        super::copy_weights(encoder, self.samplers[CURRENT].params_buffer(), target);
    }
}

impl Engine {
    /// Starts computing the field on `grid` with the drawn weights, unless one is under way
    /// (GPU); returns whether it started. The GPU draws the arrows from its buffer.
    pub(crate) fn start_field(&mut self, grid: &FieldGrid) -> AppResult<bool> {
        match self {
            Self::Gpu(g) => {
                if g.views.field_read.is_some() {
                    return Ok(false);
                }
                let mut encoder = g.new_encoder("app::field");
                let g = &mut **g;
                g.copy_drawn_weights(&mut encoder, &g.views.field);
                g.views.field.encode_field_arrows(
                    &g.device,
                    &g.queue,
                    &mut encoder,
                    grid,
                    &ARROWS,
                )?;
                let bytes = u64::from(grid.nx * grid.ny) * 8;
                let read = g.submit_read(encoder, g.views.field.velocity_grid_buffer(), bytes);
                g.views.field_read = Some((*grid, read));
                Ok(true)
            }
            Self::Cpu(c) => {
                let Some(model) = c.drawn.as_ref() else {
                    return Ok(false);
                };
                let velocities = field_on_cpu(model, grid);
                c.views.field = Some(FieldView::new(*grid, velocities, None));
                Ok(true)
            }
        }
    }

    /// The field started last, once it is ready.
    pub(crate) fn poll_field(&mut self) -> Option<AppResult<FieldView>> {
        match self {
            Self::Gpu(g) => {
                let (grid, read) = g.views.field_read.as_ref()?;
                let bytes = read.try_take(&g.device)?;
                let grid = *grid;
                g.views.field_read = None;
                Some(bytes.map_err(AppError::from).map(|bytes| {
                    let arrows = g.owned_copy(g.views.field.arrows_buffer(), "app::arrows");
                    FieldView::new(grid, points(&bytes), Some(arrows))
                }))
            }
            Self::Cpu(c) => c.views.field.take().map(Ok),
        }
    }

    /// Starts computing p_t on `ask`'s grid: the GPU integrates [`GPU_DENSITY_PARTICLES`] with
    /// the drawn weights (again only when the weights or the sampler changed) and bins them at
    /// t; the CPU integrates fewer ([`CPU_DENSITY_EVALS`]). Returns whether it started.
    pub(crate) fn start_density(&mut self, ask: &DensityAsk) -> AppResult<bool> {
        let t = ask.bins.t.unwrap_or(1.0);
        match self {
            Self::Gpu(g) => {
                if g.views.density_read.is_some() || g.drawn_version == 0 {
                    return Ok(false);
                }
                let record = Record {
                    positions: true,
                    endpoints: false,
                    velocities: false,
                };
                let per_particle = GpuSampler::recorded_bytes(&ask.sampler, record).max(1);
                // A software GPU (llvmpipe, SwiftShader) runs one submission for seconds and
                // every frame waits behind it: there the run costs what a refresh of the
                // drawn particles does.
                let wanted = if g.slices {
                    GPU_DENSITY_PARTICLES
                } else {
                    g.samplers[CURRENT]
                        .num_particles()
                        .clamp(SOFTWARE_DENSITY_PARTICLES, GPU_DENSITY_PARTICLES)
                };
                let n = wanted.min((super::GPU_TRAJECTORY_BYTES / per_particle) as usize);
                let key = ask.run_key(g.drawn_version, n);
                let mut encoder = g.new_encoder("app::density");
                let g = &mut **g;
                if g.views.density_run != Some(key) {
                    if g.views.density_x0.len() != n {
                        g.views.density_x0 = prior_draw(
                            g.trainer.config(),
                            g.trainer.source_pool(),
                            n,
                            DENSITY_SEED,
                        );
                    }
                    g.copy_drawn_weights(&mut encoder, &g.views.density);
                    let run = SampleRequest::new(ask.sampler, n)
                        .seeded(DENSITY_SEED)
                        .with_labels(labels(ask.classes, n), ask.cfg_scale)
                        .recording(record);
                    g.views.density.encode_sample(
                        &g.device,
                        &g.queue,
                        &mut encoder,
                        &g.views.density_x0,
                        &run,
                    )?;
                    g.views.density_run = Some(key);
                }
                g.views
                    .density
                    .encode_histogram(&g.device, &g.queue, &mut encoder, &ask.bins)?;
                let bytes = u64::from(ask.bins.nx * ask.bins.ny) * 4;
                let read = g.submit_read(encoder, g.views.density.histogram_buffer(), bytes);
                g.views.density_read = Some((ask.clone(), n, read));
                Ok(true)
            }
            Self::Cpu(c) => {
                let Some(model) = c.drawn.as_ref() else {
                    return Ok(false);
                };
                let n = (CPU_DENSITY_EVALS / ask.sampler.nfe().max(1)).clamp(256, 20_000);
                let key = ask.run_key(c.drawn_version, n);
                if c.views.density_run.as_ref().map(|r| r.0) != Some(key) {
                    let x0 =
                        prior_draw(c.trainer.config(), c.trainer.source_pool(), n, DENSITY_SEED);
                    let run = SampleRequest::new(ask.sampler, n)
                        .seeded(DENSITY_SEED)
                        .with_labels(labels(ask.classes, n), ask.cfg_scale)
                        .recording(Record {
                            positions: true,
                            endpoints: false,
                            velocities: false,
                        });
                    let out = model.integrate(&x0, &run)?;
                    c.views.density_run = Some((key, out.trajectories));
                }
                let Some((_, traj)) = &c.views.density_run else {
                    return Ok(false);
                };
                let counts = histogram_on_cpu(traj, &ask.bins, t);
                c.views.density = Some(density_map(ask, counts, n, None));
                Ok(true)
            }
        }
    }

    /// The density started last, once it is ready.
    pub(crate) fn poll_density(&mut self) -> Option<AppResult<Heatmap>> {
        match self {
            Self::Gpu(g) => {
                let (ask, n, read) = g.views.density_read.as_ref()?;
                let bytes = read.try_take(&g.device)?;
                let (ask, n) = (ask.clone(), *n);
                g.views.density_read = None;
                Some(bytes.map_err(AppError::from).map(|bytes| {
                    let counts = bytemuck::pod_collect_to_vec::<u8, u32>(&bytes)
                        .into_iter()
                        .map(|c| c as f32)
                        .collect();
                    let buffer = g.owned_copy(g.views.density.histogram_buffer(), "app::density");
                    density_map(&ask, counts, n, Some(buffer))
                }))
            }
            Self::Cpu(c) => c.views.density.take().map(Ok),
        }
    }

    /// Starts the likelihood map `ask` with the drawn weights, unless one is under way (the
    /// CPU's advances a chunk a frame in [`Self::poll_logp`]). A model whose source is not
    /// N(0, I) has no likelihood: that is the error.
    pub(crate) fn start_logp(&mut self, ask: &LogpAsk) -> AppResult<bool> {
        let source = &self.config().source;
        if !source.is_standard_normal() {
            return Err(no_likelihood(&source.name()));
        }
        match self {
            Self::Gpu(g) => {
                if g.views.logp_read.is_some() || g.drawn_version == 0 {
                    return Ok(false);
                }
                let x = ask.points();
                let labels = ask.label.map(|c| vec![c; x.len()]);
                let request =
                    SampleRequest::new(ask.sampler, x.len()).with_labels(labels, ask.cfg_scale);
                let mut encoder = g.new_encoder("app::logp");
                let g = &mut **g;
                g.copy_drawn_weights(&mut encoder, &g.views.field);
                g.views.field.encode_log_likelihood(
                    &g.device,
                    &g.queue,
                    &mut encoder,
                    &x,
                    &request,
                )?;
                let buffer = g
                    .views
                    .field
                    .log_likelihood_buffer()
                    .ok_or(AppError::Missing("the likelihood map wrote nothing"))?;
                let read = g.submit_read(encoder, buffer, (x.len() * 4) as u64);
                g.views.logp_read = Some((ask.clone(), read));
                Ok(true)
            }
            Self::Cpu(c) => {
                if c.views.logp.as_ref().is_some_and(|job| job.ask == *ask) || c.drawn.is_none() {
                    return Ok(false);
                }
                let points = ask.points();
                c.views.logp = Some(LogpJob {
                    ask: ask.clone(),
                    values: Vec::with_capacity(points.len()),
                    points,
                });
                Ok(true)
            }
        }
    }

    /// Whether a likelihood map is under way.
    pub(crate) fn logp_busy(&self) -> bool {
        match self {
            Self::Gpu(g) => g.views.logp_read.is_some(),
            Self::Cpu(c) => c.views.logp.is_some(),
        }
    }

    /// The likelihood map started last, once it is ready; on the CPU this computes the next
    /// chunks for about [`LOGP_FRAME_BUDGET`].
    pub(crate) fn poll_logp(&mut self) -> Option<AppResult<Heatmap>> {
        match self {
            Self::Gpu(g) => {
                let (ask, read) = g.views.logp_read.as_ref()?;
                let bytes = read.try_take(&g.device)?;
                let ask = ask.clone();
                g.views.logp_read = None;
                Some(bytes.map_err(AppError::from).map(|bytes| {
                    let values = bytemuck::pod_collect_to_vec::<u8, f32>(&bytes);
                    let buffer = g
                        .views
                        .field
                        .log_likelihood_buffer()
                        .map(|b| g.owned_copy(b, "app::logp"));
                    logp_map(&ask, values, buffer)
                }))
            }
            Self::Cpu(c) => {
                let model = c.drawn.as_ref()?;
                let job = c.views.logp.as_mut()?;
                let started = Instant::now();
                while job.values.len() < job.points.len() && started.elapsed() < LOGP_FRAME_BUDGET {
                    let from = job.values.len();
                    let to = (from + LOGP_CHUNK).min(job.points.len());
                    let chunk = &job.points[from..to];
                    let labels = job.ask.label.map(|c| vec![c; chunk.len()]);
                    match model.log_likelihood(
                        chunk,
                        labels.as_deref(),
                        job.ask.cfg_scale,
                        &job.ask.sampler,
                    ) {
                        Ok(out) => job.values.extend(out.logp),
                        Err(e) => {
                            c.views.logp = None;
                            return Some(Err(e.into()));
                        }
                    }
                }
                if job.values.len() < job.points.len() {
                    return None;
                }
                let job = c.views.logp.take()?;
                Some(Ok(logp_map(&job.ask, job.values, None)))
            }
        }
    }

    /// The drawn particles' weights on the CPU, for the stages view: the CPU's at once; the
    /// GPU's read back (the last that came back is returned while a newer one is on its way).
    pub(crate) fn drawn_model(&mut self) -> Option<AppResult<FlowModel>> {
        match self {
            Self::Gpu(g) => {
                if let Some((version, read)) = &g.views.model_read
                    && let Some(bytes) = read.try_take(&g.device)
                {
                    let version = *version;
                    g.views.model_read = None;
                    match bytes {
                        Ok(bytes) => {
                            let model = FlowModel {
                                spec: g.trainer.config().model_spec(),
                                mlp: g.trainer.mlp().clone(),
                                params: bytemuck::pod_collect_to_vec(&bytes),
                            };
                            g.views.model = Some((version, model));
                        }
                        Err(e) => return Some(Err(e.into())),
                    }
                }
                let current = g.views.model.as_ref().map(|m| m.0);
                if current != Some(g.drawn_version)
                    && g.views.model_read.is_none()
                    && g.drawn_version > 0
                {
                    let encoder = g.new_encoder("app::drawn_weights");
                    let read = g.submit_read(
                        encoder,
                        g.samplers[CURRENT].params_buffer(),
                        g.param_bytes(),
                    );
                    g.views.model_read = Some((g.drawn_version, read));
                }
                g.views.model.as_ref().map(|(_, m)| Ok(m.clone()))
            }
            Self::Cpu(c) => c.drawn.clone().map(Ok),
        }
    }

    /// Where particle `i` of the drawing `request` starts (at the prior's scale).
    pub(crate) fn particle_start(&self, request: &SampleRequest, i: usize) -> Option<[f32; 2]> {
        prior_draw(self.config(), self.source_pool(), request.n, request.seed)
            .get(i)
            .copied()
    }

    /// The drawn particle nearest to `world` at `t`: the CPU's drawn trajectories, or on the
    /// GPU the first [`NEAREST_SEARCHED`] particles integrated again with `model`.
    pub(crate) fn nearest_particle(
        &self,
        world: [f32; 2],
        t: f32,
        request: &SampleRequest,
        model: &FlowModel,
    ) -> AppResult<Option<usize>> {
        let nearest = |traj: &Trajectories| {
            let n = traj.positions.len() / traj.frames().max(1);
            (0..n)
                .map(|i| {
                    let p = position_at(traj, i, t);
                    (i, (p[0] - world[0]).powi(2) + (p[1] - world[1]).powi(2))
                })
                .filter(|(_, d)| d.is_finite())
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(i, _)| i)
        };
        match self {
            Self::Cpu(c) => Ok(c.flows[CURRENT].as_ref().and_then(nearest)),
            Self::Gpu(_) => {
                let n = request.n.min(NEAREST_SEARCHED);
                let mut x0 = prior_draw(self.config(), self.source_pool(), request.n, request.seed);
                x0.truncate(n);
                let run = SampleRequest::new(request.sampler, n)
                    .with_labels(
                        request.labels.as_ref().map(|l| l[..n].to_vec()),
                        request.cfg_scale,
                    )
                    .recording(Record {
                        positions: true,
                        endpoints: false,
                        velocities: false,
                    });
                let out = model.integrate(&x0, &run)?;
                Ok(nearest(&out.trajectories))
            }
        }
    }

    /// One training batch's pairs at the current step, as the trainer draws them and re-paired
    /// by minibatch OT.
    pub(crate) fn batch_pairs(&self, show_ot: bool) -> PairsView {
        let (config, data, source, pool, step) = match self {
            Self::Gpu(g) => (
                g.trainer.config(),
                g.trainer.data(),
                g.trainer.source_pool(),
                g.trainer.coupling_pool(),
                g.trainer.steps_done(),
            ),
            Self::Cpu(c) => (
                c.trainer.config(),
                c.trainer.data(),
                c.trainer.source_pool(),
                c.trainer.coupling_pool(),
                c.trainer.steps_done(),
            ),
        };
        let n = config.batch.min(PAIRS_SHOWN);
        let mut batch = BatchPairs::default();
        config
            .batch_draws(data, source, pool)
            .fill(step, n, &mut batch);
        let independent = batch.x1.clone();
        let mut ot = batch.clone();
        ot.couple_ot(n);
        PairsView {
            x0: config.path.to_prior(&batch.x0),
            independent,
            ot: ot.x1,
            show_ot,
            step,
        }
    }
}

/// One particle's step at `t` taken apart: the particle from `x0` (class `label`) is integrated
/// with `request`'s sampler up to the step that holds `t`, and that step is split into its
/// stages ([`step_parts`], the arithmetic of the sampler itself).
pub(crate) fn stage_view(
    model: &FlowModel,
    request: &SampleRequest,
    x0: [f32; 2],
    label: Option<u32>,
    t: f32,
    shown: usize,
) -> AppResult<StageView> {
    let run = SampleRequest::new(request.sampler, 1)
        .with_labels(label.map(|l| vec![l]), request.cfg_scale)
        .recording(Record {
            positions: true,
            endpoints: false,
            velocities: false,
        });
    let out = model.integrate(&[x0], &run)?;
    let traj = &out.trajectories;
    let times = &traj.times;
    if times.len() < 2 {
        return Err(AppError::Missing("the particle's run recorded no step"));
    }
    // The step that holds t; at t = 1 the last one.
    let k = times
        .windows(2)
        .position(|w| t < w[1])
        .unwrap_or(times.len() - 2);
    let x = traj.positions_of(0)[k];
    let solver = request.sampler.solver;
    let field = MlpField::new(&model.mlp, &model.params, model.spec.path);
    let parts = match label.filter(|_| model.spec.mlp.is_conditional()) {
        Some(c) => {
            let guided = GuidedField::new(&field, request.cfg_scale, model.spec.mlp.null_label());
            step_parts(&guided, solver, times[k], times[k + 1], x, Some(c))
        }
        None => step_parts(&field, solver, times[k], times[k + 1], x, None),
    };
    let k1 = parts.stages.first().map_or([0.0; 2], |s| s.velocity);
    let endpoint = model.spec.path.coefficients(parts.t0).predicted_data(x, k1);
    Ok(StageView {
        parts,
        solver,
        shown: shown.clamp(1, solver_stages(solver) + 1),
        endpoint,
    })
}

fn solver_stages(solver: Solver) -> usize {
    solver.evals_per_step()
}
