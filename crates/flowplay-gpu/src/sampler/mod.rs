//! The ODE samplers of QR §5 on the GPU: Euler, Heun and RK4 on the core's time grid (with
//! TRELLIS's `rescale_t`), classifier-free guidance, trajectories and predicted endpoints, a 2-D
//! histogram of the particles and the velocity field on a grid.
//!
//! Per ODE stage the time branch of the network is evaluated once (`time_branch.wgsl`: one row c
//! per class the run needs), then, chunk by chunk of particles, the hidden layers
//! (`linear_forward.wgsl`, its mode 3 fusing net.0 from the positions and c), the output layer
//! into F, and `ode_stage.wgsl`, which turns F into the velocity (preconditioning, guidance) and
//! does the solver's update exactly as `flowplay_core::sampler::Stepper::step`. The per-particle
//! state (positions, probe, accumulator, next network input) spans every particle; only the
//! hidden activations are chunked, so a stage runs over all chunks before the next one starts.
//!
//! Recorded trajectories are split into pages: each holds a whole number of chunks and fits one
//! storage binding (128 MiB under WebGPU's default limits), so a run records as many particles as
//! the state buffers hold (millions), not just what one binding holds. A first `INIT` stage turns
//! the uploaded start points into the solver's state on the GPU.
//!
//! A run can be encoded a slice at a time ([`GpuSampler::begin_sample`], then
//! [`GpuSampler::encode_slice`] over several submissions), so that integrating a million
//! particles does not hold up a frame. Recordings are double-buffered: a run records into the
//! back set of pages while the front set, the last finished run, can still be drawn.
//!
//! Per-stage and per-chunk values live in uniform tables bound with dynamic offsets, so a whole
//! run is encoded into one command encoder. Buffers are allocated on first use and grown only
//! when a run needs more.

mod geometry;
mod likelihood;
mod sets;
mod stages;
mod views;

use flowplay_core::flow::SampleRequest;
use flowplay_core::mlp::Mlp;
use flowplay_core::path::Path;
use flowplay_core::sampler::{Record, SamplerConfig, time_grid};
#[cfg(not(target_arch = "wasm32"))]
use flowplay_core::sampler::{SampleOutput, Trajectories};

pub use geometry::{FieldGrid, Rect};
pub use sets::RecordedPage;
pub use views::{ArrowStyle, HistogramBins};

use crate::GpuError;
use crate::buffers::{self, STORAGE};
use crate::context::check_compute_limits;
use crate::kernel::{
    FIELD_ARROWS, GRID_POINTS, Kernel, LABEL_ROWS, LINEAR_FORWARD, ODE_STAGE, PARTICLE_HISTOGRAM,
    TIME_BRANCH, grid_1d,
};
use crate::layout::MlpOffsets;
use crate::uniforms::{
    FieldArrowsUniform, GridUniform, LabelRowsUniform, LinearForwardUniform, StageUniform,
};
use geometry::config_error;
use sets::{
    GRID_NAMES, Growable, LastRun, PARTICLE_NAMES, ParticleSet, PendingRun, RunShape, pieces,
};
use stages::KIND_INIT;

/// Stride of the entries of a dynamic-offset uniform table (WebGPU's offset alignment).
const TABLE_STRIDE: u64 = 256;
/// Largest hidden-activation buffer of one chunk.
const MAX_CHUNK_BYTES: u64 = 64 << 20;
/// Most rows one `linear_forward` dispatch covers (65535 workgroups of 64 rows).
const MAX_CHUNK_ROWS: u64 = 65_535 * 64;
/// Chunks hold a multiple of this many particles, so that per-chunk label bindings start at
/// offsets aligned to 256 bytes.
const CHUNK_ALIGN: usize = 64;

/// The ODE sampler on the GPU, for one network shape and path. It holds its pipelines and
/// buffers (allocated on first use, grown when a run needs more) and takes a device and queue it
/// did not create.
///
/// [`GpuSampler::sample`] has the semantics of `flowplay_core::sampler::sample` with an
/// `MlpField` (wrapped in a `GuidedField` for guided sampling): an unconditional network ignores
/// labels, a conditional one without labels uses the null label, and labels with a guidance
/// scale other than 1 give classifier-free guidance.
#[derive(Debug)]
pub struct GpuSampler {
    mlp: Mlp,
    path: Path,
    offsets: MlpOffsets,
    time_branch: Kernel,
    label_rows: Kernel,
    linear: Kernel,
    ode_stage: Kernel,
    histogram: Kernel,
    grid_points: Kernel,
    params: wgpu::Buffer,
    freqs: wgpu::Buffer,
    label_rows_buffer: wgpu::Buffer,
    label_rows_uniform: wgpu::Buffer,
    scratch: wgpu::Buffer,
    class_rows: wgpu::Buffer,
    acts: [Growable; 2],
    f_out: Growable,
    particles: ParticleSet,
    grid: ParticleSet,
    counts: Growable,
    /// One histogram entry per dispatch (a page each), bound with dynamic offsets.
    histogram_table: Growable,
    field_arrows: Kernel,
    arrows: Growable,
    arrows_uniform: wgpu::Buffer,
    field_stats: Growable,
    grid_uniform: wgpu::Buffer,
    last: LastRun,
    pending: Option<PendingRun>,
    grid_len: usize,
    max_chunk: Option<usize>,
    max_page: Option<usize>,
    /// The likelihood's pipelines and buffers, made on first use.
    likelihood: Option<Box<likelihood::LikelihoodSet>>,
}

impl GpuSampler {
    /// A sampler for networks of `mlp`'s shape on `path`; compiles the kernels once. Upload
    /// parameters with [`Self::set_params`] (or copy them into [`Self::params_buffer`]).
    pub fn new(device: &wgpu::Device, mlp: &Mlp, path: Path) -> Result<Self, GpuError> {
        check_compute_limits(&device.limits())?;
        path.validate()?;
        let offsets = MlpOffsets::new(mlp);
        let config = mlp.config();
        let h = config.hidden as u64;
        let crows = Self::class_rows_of(mlp) as u64;
        let time_branch = Kernel::new(device, &TIME_BRANCH);
        let label_rows = Kernel::new(device, &LABEL_ROWS);
        let linear = Kernel::new(device, &LINEAR_FORWARD);
        let ode_stage = Kernel::new(device, &ODE_STAGE);
        let histogram = Kernel::new(device, &PARTICLE_HISTOGRAM);
        let grid_points = Kernel::new(device, &GRID_POINTS);
        let label_rows_value = LabelRowsUniform {
            hidden: offsets.hidden,
            crows: crows as u32,
            w0: offsets.layers[0].weight,
            embed: offsets.label_embed.unwrap_or(0),
        };
        Ok(Self {
            time_branch,
            label_rows,
            linear,
            ode_stage,
            histogram,
            grid_points,
            params: buffers::storage(
                device,
                "flowplay::sampler::params",
                mlp.num_params() as u64 * 4,
            ),
            freqs: buffers::storage_with(device, "flowplay::sampler::freqs", mlp.freqs()),
            label_rows_buffer: buffers::storage(
                device,
                "flowplay::sampler::label_rows",
                crows * h * 4,
            ),
            label_rows_uniform: buffers::uniform(
                device,
                "flowplay::sampler::label_rows_uniform",
                &label_rows_value,
            ),
            scratch: buffers::storage(
                device,
                "flowplay::sampler::time_branch",
                (config.t_dim as u64 + 3 * h) * 4,
            ),
            class_rows: buffers::storage(device, "flowplay::sampler::class_rows", crows * h * 4),
            acts: [
                Growable::new(device, "flowplay::sampler::hidden_a", STORAGE),
                Growable::new(device, "flowplay::sampler::hidden_b", STORAGE),
            ],
            f_out: Growable::new(device, "flowplay::sampler::network_output", STORAGE),
            particles: ParticleSet::new(device, &PARTICLE_NAMES),
            grid: ParticleSet::new(device, &GRID_NAMES),
            counts: Growable::new(device, "flowplay::sampler::histogram", STORAGE),
            histogram_table: Growable::new(
                device,
                "flowplay::sampler::histogram_table",
                wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            ),
            field_arrows: Kernel::new(device, &FIELD_ARROWS),
            arrows: Growable::new(device, "flowplay::sampler::arrows", STORAGE),
            arrows_uniform: buffers::uniform(
                device,
                "flowplay::sampler::arrows_uniform",
                &<FieldArrowsUniform as bytemuck::Zeroable>::zeroed(),
            ),
            field_stats: Growable::new(device, "flowplay::sampler::field_stats", STORAGE),
            grid_uniform: buffers::uniform(
                device,
                "flowplay::sampler::grid_uniform",
                &GridUniform::default(),
            ),
            last: LastRun::default(),
            pending: None,
            grid_len: 0,
            max_chunk: None,
            max_page: None,
            likelihood: None,
            mlp: mlp.clone(),
            path,
            offsets,
        })
    }

    /// Rows of per-class time-branch values: one for an unconditional network, every class plus
    /// the null label for a conditional one.
    fn class_rows_of(mlp: &Mlp) -> usize {
        let config = mlp.config();
        if config.is_conditional() {
            config.num_classes as usize + 1
        } else {
            1
        }
    }

    /// Uploads the network's parameters (the core's flat layout, `Mlp::num_params` of them).
    pub fn set_params(&self, queue: &wgpu::Queue, params: &[f32]) -> Result<(), GpuError> {
        if params.len() != self.mlp.num_params() {
            return Err(config_error(format!(
                "the sampler's network has {} parameters, got {}",
                self.mlp.num_params(),
                params.len()
            )));
        }
        queue.write_buffer(&self.params, 0, bytemuck::cast_slice(params));
        Ok(())
    }

    /// The parameter buffer (`STORAGE | COPY_DST | COPY_SRC`), for copying parameters in on the
    /// GPU, e.g. the trainer's EMA weights.
    pub fn params_buffer(&self) -> &wgpu::Buffer {
        &self.params
    }

    /// The particles' positions, `[n, 2]` `f32` (`STORAGE | VERTEX | COPY_SRC`, for a render
    /// pipeline): the final samples once the commands of [`Self::encode_sample`] have run.
    pub fn positions_buffer(&self) -> &wgpu::Buffer {
        &self.particles.pos.buffer
    }

    /// The recorded trajectories of the last finished run (fully encoded), page by page in
    /// particle order (one page, or none for an empty run, unless the run records more than one
    /// binding holds). A run still being encoded slice by slice records elsewhere.
    pub fn recorded_pages(&self) -> Vec<RecordedPage<'_>> {
        pieces(self.last.n, self.last.page)
            .zip(&self.particles.rec[self.particles.front])
            .map(|((first, len), [p, e, v])| RecordedPage {
                first,
                len,
                positions: &p.buffer,
                endpoints: &e.buffer,
                velocities: &v.buffer,
            })
            .collect()
    }

    /// The histogram counts of [`Self::encode_histogram`], `[ny, nx]` `u32`.
    pub fn histogram_buffer(&self) -> &wgpu::Buffer {
        &self.counts.buffer
    }

    /// The velocities of [`Self::encode_velocity_grid`], `[ny, nx, 2]` `f32` (point `j·nx + i`).
    pub fn velocity_grid_buffer(&self) -> &wgpu::Buffer {
        // A grid is recorded in one page (at most 2^24 points of 8 bytes: one binding).
        &self.grid.rec[self.grid.front][0][2].buffer
    }

    /// Switches the probability path (the same network shape): the next run integrates the
    /// ODE of `path`.
    pub fn set_path(&mut self, path: Path) -> Result<(), GpuError> {
        path.validate()?;
        self.path = path;
        Ok(())
    }

    /// The recorded times of the last finished run, one per frame of the trajectory buffers.
    pub fn times(&self) -> &[f32] {
        &self.last.times
    }

    /// What the last finished run recorded.
    pub fn recorded(&self) -> Record {
        self.last.record
    }

    /// The number of particles of the last finished run.
    pub fn num_particles(&self) -> usize {
        self.last.n
    }

    /// Caps the particles per chunk (rounded up to a multiple of 64), to test chunking with few
    /// particles.
    #[doc(hidden)]
    pub fn set_max_chunk(&mut self, particles: Option<usize>) {
        self.max_chunk = particles.map(|p| p.max(1).next_multiple_of(CHUNK_ALIGN));
    }

    /// Caps the particles per recording page (rounded up to a multiple of 64), to test paging
    /// with few particles.
    #[doc(hidden)]
    pub fn set_max_page(&mut self, particles: Option<usize>) {
        self.max_page = particles.map(|p| p.max(1).next_multiple_of(CHUNK_ALIGN));
    }

    /// Network rows per particle (2 with guidance) and each particle's class row: `(rpp, classes)`.
    fn row_plan(
        &self,
        n: usize,
        labels: Option<&[u32]>,
        cfg_scale: f32,
    ) -> Result<(usize, Vec<u32>), GpuError> {
        let config = self.mlp.config();
        if let Some(labels) = labels
            && labels.len() != n
        {
            return Err(config_error(format!(
                "{} labels for {n} particles",
                labels.len()
            )));
        }
        if !config.is_conditional() {
            return Ok((1, vec![0; n]));
        }
        let null = config.null_label();
        let Some(labels) = labels else {
            return Ok((1, vec![null; n]));
        };
        let clamped: Vec<u32> = labels.iter().map(|&l| l.min(null)).collect();
        if (cfg_scale - 1.0).abs() < f32::EPSILON {
            Ok((1, clamped))
        } else {
            Ok((2, clamped))
        }
    }

    /// How a run of `n` particles with `rpp` rows each is split within the limits of `device`:
    /// chunks whose hidden activations fit one buffer, and recording pages of whole chunks whose
    /// trajectories (`frames` per particle, 0 when nothing is recorded) fit one binding.
    fn plan(&self, device: &wgpu::Device, n: usize, rpp: usize, frames: usize) -> RunShape {
        let limits = device.limits();
        let h = self.mlp.config().hidden as u64;
        let bytes = MAX_CHUNK_BYTES
            .min(limits.max_storage_buffer_binding_size)
            .min(limits.max_buffer_size);
        let rows = (bytes / (h * 4)).min(MAX_CHUNK_ROWS);
        let mut chunk = (rows as usize / rpp) / CHUNK_ALIGN * CHUNK_ALIGN;
        chunk = chunk.max(CHUNK_ALIGN);
        if let Some(cap) = self.max_chunk {
            chunk = chunk.min(cap);
        }
        let all = n.max(1).next_multiple_of(CHUNK_ALIGN);
        let mut page = if frames == 0 {
            all
        } else {
            let fits = (Self::max_binding(device) / (frames as u64 * 8)) as usize;
            (fits / CHUNK_ALIGN * CHUNK_ALIGN).max(CHUNK_ALIGN)
        };
        if let Some(cap) = self.max_page {
            page = page.min(cap);
        }
        // A chunk never straddles two pages: shrink the chunk to the page, then round the page
        // down to whole chunks.
        chunk = chunk.min(page).min(all);
        page = if frames == 0 {
            all.next_multiple_of(chunk)
        } else {
            page / chunk * chunk
        };
        RunShape {
            n,
            rpp,
            chunk,
            page,
        }
    }

    /// The largest buffer `device` can bind whole.
    fn max_binding(device: &wgpu::Device) -> u64 {
        let limits = device.limits();
        limits
            .max_buffer_size
            .min(limits.max_storage_buffer_binding_size)
    }

    /// The most particles (a multiple of 64) one [`Self::encode_sample`] run takes on `device`:
    /// the particle state (16 bytes a particle; the network input, 8 bytes a row with one or two
    /// rows, is never larger) must fit one binding. Trajectories are paged, so they only need
    /// memory: [`Self::recorded_bytes`] a particle.
    pub fn max_particles(device: &wgpu::Device) -> usize {
        (Self::max_binding(device) / 16) as usize / CHUNK_ALIGN * CHUNK_ALIGN
    }

    /// The bytes each particle records into positions, endpoints and velocities over `frames`
    /// recorded frames (0 for what `record` leaves out).
    fn recorded_parts(record: Record, frames: usize) -> [u64; 3] {
        let frames = frames as u64;
        [
            u64::from(record.positions) * frames * 8,
            u64::from(record.endpoints) * (frames - 1) * 8,
            u64::from(record.velocities) * frames * 8,
        ]
    }

    /// The bytes of trajectories one particle of a run with `config` records as `record` says.
    pub fn recorded_bytes(config: &SamplerConfig, record: Record) -> u64 {
        let frames = time_grid(config.steps, config.rescale_t).len();
        Self::recorded_parts(record, frames).iter().sum()
    }

    /// Checks that a buffer of `bytes` fits the device, bound whole.
    fn check_size(device: &wgpu::Device, what: &str, n: usize, bytes: u64) -> Result<(), GpuError> {
        let max = Self::max_binding(device);
        if bytes > max {
            return Err(GpuError::Limits(format!(
                "{n} particles need a {what} buffer of {} MiB, but this GPU binds at most {} MiB; \
                 sample fewer particles (or record less)",
                bytes.div_ceil(1 << 20),
                max >> 20
            )));
        }
        Ok(())
    }

    /// Sizes the shared buffers and a set's tables, state and recording pages for `shape` and
    /// `stages` stages; `recorded` is the bytes each particle records into positions, endpoints
    /// and velocities (0: not recorded).
    fn prepare_set(
        &mut self,
        device: &wgpu::Device,
        grid: bool,
        shape: RunShape,
        stages: usize,
        recorded: [u64; 3],
    ) -> Result<(), GpuError> {
        let n = shape.n as u64;
        let rows = (shape.rpp * shape.chunk) as u64;
        let h = u64::from(self.offsets.hidden);
        let page_len = shape.page.min(shape.n) as u64;
        let page_bytes = recorded.map(|per| (per * page_len).max(16));
        let checks = [
            ("position", n * 8),
            ("state", n * 16),
            ("network input", n * shape.rpp as u64 * 8),
            ("trajectory", page_bytes.iter().copied().max().unwrap_or(0)),
        ];
        for (what, bytes) in checks {
            Self::check_size(device, what, shape.n, bytes)?;
        }
        let max_table = device.limits().max_buffer_size;
        let stage_bytes = stages as u64 * TABLE_STRIDE;
        if stage_bytes > max_table {
            return Err(GpuError::Limits(format!(
                "{stages} solver stages need a {} MiB table of per-stage values, more than this \
                 GPU's largest buffer ({} MiB); use fewer steps",
                stage_bytes >> 20,
                max_table >> 20
            )));
        }
        for act in &mut self.acts {
            act.ensure(device, rows * h * 4);
        }
        self.f_out.ensure(device, rows * 8);
        let set = if grid {
            &mut self.grid
        } else {
            &mut self.particles
        };
        set.pos.ensure(device, n * 8);
        set.aux.ensure(device, n * 16);
        set.x_in.ensure(device, n * shape.rpp as u64 * 8);
        set.row_labels.ensure(device, n * shape.rpp as u64 * 4);
        set.ensure_pages(device, shape.num_pages(), page_bytes);
        set.stages.ensure(device, stage_bytes);
        set.chunks
            .ensure(device, shape.num_chunks() as u64 * TABLE_STRIDE);
        let layer_entries = (shape.num_chunks() * self.mlp.config().depth) as u64;
        set.layers.ensure(device, layer_entries * TABLE_STRIDE);
        Ok(())
    }

    /// Encodes a whole sampling run into `encoder`: uploads `x0` (already scaled to the prior)
    /// and the run's tables through `queue` (they land before the next submission), then every
    /// solver stage. After submission, [`Self::positions_buffer`] holds the samples and
    /// [`Self::recorded_pages`] what the request's `record` asked for; [`Self::read_output`] reads them back.
    /// Encode at most one run per submission (the tables are rewritten by the next call).
    pub fn encode_sample(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        x0: &[[f32; 2]],
        request: &SampleRequest,
    ) -> Result<(), GpuError> {
        self.begin_sample(device, queue, x0, request)?;
        self.encode_slice(device, encoder, u64::MAX);
        Ok(())
    }

    /// Begins a sampling run to be encoded a slice at a time with [`Self::encode_slice`]:
    /// checks the inputs, sizes the buffers and uploads `x0` and the run's tables through
    /// `queue` (they land before the next submission). A run still being encoded is dropped.
    /// Until the last slice is encoded, [`Self::recorded_pages`] and [`Self::times`] stay those
    /// of the previous run, so it can be drawn meanwhile.
    pub fn begin_sample(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        x0: &[[f32; 2]],
        request: &SampleRequest,
    ) -> Result<(), GpuError> {
        self.pending = None;
        let SampleRequest {
            sampler: config,
            cfg_scale,
            record,
            ..
        } = *request;
        let config = &config;
        let labels = request.labels.as_deref();
        if request.n != x0.len() {
            return Err(config_error(format!(
                "the request is for {} particles, and {} start points were given",
                request.n,
                x0.len()
            )));
        }
        config.validate()?;
        if !cfg_scale.is_finite() {
            return Err(config_error(format!(
                "the guidance scale must be finite, got {cfg_scale}"
            )));
        }
        let n = x0.len();
        let times = time_grid(config.steps, config.rescale_t);
        let frames = times.len();
        let recorded = Self::recorded_parts(record, frames);
        let any_recorded = recorded.iter().any(|&b| b > 0);
        let (rpp, classes) = self.row_plan(n, labels, cfg_scale)?;
        let shape = self.plan(device, n, rpp, if any_recorded { frames } else { 0 });
        let last = LastRun {
            n,
            page: shape.page,
            times: times.clone(),
            record,
            nfe: config.nfe() + usize::from(record.velocities),
        };
        if n == 0 {
            self.last = last;
            return Ok(());
        }
        let template = self.stage_template(frames, record, cfg_scale, rpp);
        // Stage 0 sets up the state from the uploaded x0: probe = x0, acc = 0 and the network
        // input in(t0)·x0 in chunk layout (`finish_stages` gives it the first stage's input).
        let mut stages = vec![StageUniform {
            t: times[0],
            kind: KIND_INIT,
            ..template
        }];
        stages.extend(self.build_stages(template, &times, config, record));
        self.finish_stages(&mut stages);
        self.prepare_set(device, false, shape, stages.len(), recorded)?;
        self.write_tables(queue, false, shape, &classes);
        Self::write_stages(queue, &self.particles, &stages);
        queue.write_buffer(&self.particles.pos.buffer, 0, bytemuck::cast_slice(x0));
        self.pending = Some(PendingRun {
            shape,
            stages: stages.len(),
            next_op: 0,
            last,
        });
        Ok(())
    }

    /// Network evaluations (rows) the run begun by [`Self::begin_sample`] still has to encode;
    /// 0 when it is finished (or there is none).
    pub fn remaining_evaluations(&self) -> u64 {
        self.pending.as_ref().map_or(0, |run| {
            let nc = run.shape.num_chunks();
            (run.next_op..run.stages * nc)
                .map(|op| Self::op_cost(run.shape, nc, op))
                .sum()
        })
    }

    /// Network rows evaluated by operation `op` (stage 0, the set-up, evaluates none).
    fn op_cost(shape: RunShape, chunks: usize, op: usize) -> u64 {
        if op < chunks {
            return 0;
        }
        let (_, len) = shape.chunk_at(op % chunks);
        (len * shape.rpp) as u64
    }

    /// Encodes the next slice of the run begun by [`Self::begin_sample`]: whole (stage, chunk)
    /// operations in order, as many as fit `max_evaluations` network rows (at least one).
    /// Returns whether the run is finished, which makes its recordings the ones
    /// [`Self::recorded_pages`] returns. Submit slices in order; nothing else may run on this
    /// sampler in between.
    pub fn encode_slice(
        &mut self,
        device: &wgpu::Device,
        encoder: &mut wgpu::CommandEncoder,
        max_evaluations: u64,
    ) -> bool {
        let Some(run) = self.pending.as_ref() else {
            return true;
        };
        let (shape, stages, start) = (run.shape, run.stages, run.next_op);
        let nc = shape.num_chunks();
        let total = stages * nc;
        let mut end = start;
        let mut spent = 0_u64;
        while end < total {
            let cost = Self::op_cost(shape, nc, end);
            if end > start && spent.saturating_add(cost) > max_evaluations {
                break;
            }
            spent = spent.saturating_add(cost);
            end += 1;
        }
        self.encode_ops(device, encoder, false, shape, start..end);
        if end < total {
            if let Some(run) = self.pending.as_mut() {
                run.next_op = end;
            }
            return false;
        }
        if let Some(run) = self.pending.take() {
            self.last = run.last;
            self.particles.front = 1 - self.particles.front;
        }
        true
    }

    /// Encodes operations `ops` (`stage · chunks + chunk`) of a prepared set, recording into its
    /// back pages: the label rows at the run's start, the time branch at each stage's first
    /// operation in the range, then per chunk the network and the solver stage. The particles'
    /// stage 0 is the set-up (`INIT`), which evaluates nothing.
    fn encode_ops(
        &self,
        device: &wgpu::Device,
        encoder: &mut wgpu::CommandEncoder,
        grid: bool,
        shape: RunShape,
        ops: std::ops::Range<usize>,
    ) {
        let set = if grid { &self.grid } else { &self.particles };
        let depth = self.mlp.config().depth;
        let time_bg = self.time_branch.bind(
            device,
            &[
                &self.params,
                &self.freqs,
                &self.label_rows_buffer,
                &self.scratch,
                &self.class_rows,
                &set.stages.buffer,
            ],
        );
        let label_bg = self.offsets.label_embed.map(|_| {
            self.label_rows.bind(
                device,
                &[
                    &self.params,
                    &self.label_rows_buffer,
                    &self.label_rows_uniform,
                ],
            )
        });
        let [act_a, act_b] = &self.acts;
        let (act_a, act_b, f_out) = (&act_a.buffer, &act_b.buffer, &self.f_out.buffer);
        // Layer j ≥ 2 reads the activations layer j − 1 wrote and writes the other buffer, or F.
        let hidden_bg = |src: &wgpu::Buffer, dst: &wgpu::Buffer| {
            self.linear.bind(
                device,
                &[
                    &self.params,
                    src,
                    &self.class_rows,
                    &set.row_labels.buffer,
                    dst,
                    &set.layers.buffer,
                ],
            )
        };
        let a_to_b = hidden_bg(act_a, act_b);
        let b_to_a = hidden_bg(act_b, act_a);
        let a_to_f = hidden_bg(act_a, f_out);
        let b_to_f = hidden_bg(act_b, f_out);
        let first_out = if depth == 1 { f_out } else { act_a };
        // The first layer reads each chunk's labels, bound at the chunk's offset.
        let first_bgs: Vec<wgpu::BindGroup> = shape
            .chunks()
            .map(|(p0, len)| {
                let label_binding = wgpu::BufferBinding {
                    buffer: &set.row_labels.buffer,
                    offset: (shape.rpp * p0 * 4) as u64,
                    size: std::num::NonZeroU64::new((shape.rpp * len * 4) as u64),
                };
                device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("flowplay::sampler::first_layer"),
                    layout: &self.linear.layout,
                    entries: &[
                        entry(0, self.params.as_entire_binding()),
                        entry(1, set.x_in.buffer.as_entire_binding()),
                        entry(2, self.class_rows.as_entire_binding()),
                        entry(3, wgpu::BindingResource::Buffer(label_binding)),
                        entry(4, first_out.as_entire_binding()),
                        entry(
                            5,
                            wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                buffer: &set.layers.buffer,
                                offset: 0,
                                size: std::num::NonZeroU64::new(
                                    size_of::<LinearForwardUniform>() as u64
                                ),
                            }),
                        ),
                    ],
                })
            })
            .collect();
        // The solver stage records into the page its chunk lies in.
        let ode_bgs: Vec<wgpu::BindGroup> = set.back()[..shape.num_pages()]
            .iter()
            .map(|[rp, re, rv]| {
                self.ode_stage.bind(
                    device,
                    &[
                        f_out,
                        &set.pos.buffer,
                        &set.aux.buffer,
                        &set.x_in.buffer,
                        &rp.buffer,
                        &re.buffer,
                        &rv.buffer,
                        &set.stages.buffer,
                        &set.chunks.buffer,
                    ],
                )
            })
            .collect();

        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("flowplay::sampler"),
            timestamp_writes: None,
        });
        if let Some(bg) = label_bg.as_ref().filter(|_| ops.start == 0) {
            let total = self.offsets.hidden * Self::class_rows_of(&self.mlp) as u32;
            let [x, y, z] = grid_1d(total);
            pass.set_pipeline(&self.label_rows.pipeline);
            pass.set_bind_group(0, bg, &[]);
            pass.dispatch_workgroups(x, y, z);
        }
        let h = self.offsets.hidden;
        let nc = shape.num_chunks();
        let mut branch_for = None;
        for op in ops {
            let (stage, c) = (op / nc, op % nc);
            let (p0, len) = shape.chunk_at(c);
            let stage_offset = (stage as u64 * TABLE_STRIDE) as u32;
            // The particles' stage 0 sets up their state (the grid's is set up by `grid_points`).
            let setup = !grid && stage == 0;
            if !setup && branch_for != Some(stage) {
                pass.set_pipeline(&self.time_branch.pipeline);
                pass.set_bind_group(0, &time_bg, &[stage_offset]);
                pass.dispatch_workgroups(1, 1, 1);
                branch_for = Some(stage);
            }
            if !setup {
                let rows = (shape.rpp * len) as u32;
                pass.set_pipeline(&self.linear.pipeline);
                for j in 1..=depth {
                    let offset = ((c * depth + j - 1) as u64 * TABLE_STRIDE) as u32;
                    let bg = if j == 1 {
                        &first_bgs[c]
                    } else {
                        // Layer j reads the buffer layer j − 1 wrote: A for odd j − 1… see above.
                        let src_is_a = (j - 2) % 2 == 0;
                        match (src_is_a, j == depth) {
                            (true, false) => &a_to_b,
                            (false, false) => &b_to_a,
                            (true, true) => &a_to_f,
                            (false, true) => &b_to_f,
                        }
                    };
                    pass.set_bind_group(0, bg, &[offset]);
                    let outputs = if j == depth {
                        self.offsets.output().outputs
                    } else {
                        h
                    };
                    pass.dispatch_workgroups(outputs.div_ceil(64), rows.div_ceil(64), 1);
                }
            }
            let chunk_offset = (c as u64 * TABLE_STRIDE) as u32;
            let [x, y, z] = grid_1d(len as u32);
            pass.set_pipeline(&self.ode_stage.pipeline);
            pass.set_bind_group(0, &ode_bgs[p0 / shape.page], &[stage_offset, chunk_offset]);
            pass.dispatch_workgroups(x, y, z);
        }
    }

    /// Reads the last run's results back (native only, blocking): the final positions and what
    /// was recorded, in the layout of `flowplay_core::sampler::sample`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_output(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
    ) -> Result<SampleOutput, GpuError> {
        if self.pending.is_some() {
            return Err(config_error(
                "a sampling run is still being encoded slice by slice; read it when finished"
                    .to_string(),
            ));
        }
        let last = &self.last;
        let n = last.n;
        let frames = last.times.len();
        let read_points = |buffer: &wgpu::Buffer, len: usize| -> Result<Vec<[f32; 2]>, GpuError> {
            if len == 0 {
                return Ok(Vec::new());
            }
            buffers::read_pod::<[f32; 2]>(device, queue, buffer, 0, len)
        };
        let record = last.record;
        let mut trajectories = Trajectories {
            times: last.times.clone(),
            ..Trajectories::default()
        };
        for page in self.recorded_pages() {
            let len = page.len;
            let parts = [
                (
                    record.positions,
                    page.positions,
                    frames,
                    &mut trajectories.positions,
                ),
                (
                    record.endpoints,
                    page.endpoints,
                    frames - 1,
                    &mut trajectories.endpoints,
                ),
                (
                    record.velocities,
                    page.velocities,
                    frames,
                    &mut trajectories.velocities,
                ),
            ];
            for (on, buffer, per, out) in parts {
                if on {
                    out.extend(read_points(buffer, len * per)?);
                }
            }
        }
        Ok(SampleOutput {
            x: read_points(&self.particles.pos.buffer, n)?,
            trajectories,
            nfe: last.nfe,
        })
    }

    /// Integrates every particle of `x0` (already scaled to the prior) from t = 0 to t = 1 and
    /// reads the result back (native only, blocking): `flowplay_core::sampler::sample` with the
    /// network's field on the GPU. The request's labels and guidance as in the type's
    /// description; its seed is not used (`x0` is the draw).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn sample(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        x0: &[[f32; 2]],
        request: &SampleRequest,
    ) -> Result<SampleOutput, GpuError> {
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("flowplay::sampler::sample"),
        });
        self.encode_sample(device, queue, &mut encoder, x0, request)?;
        queue.submit([encoder.finish()]);
        self.read_output(device, queue)
    }
}

fn entry(binding: u32, resource: wgpu::BindingResource<'_>) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry { binding, resource }
}
