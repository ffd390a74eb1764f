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

use bytemuck::{Pod, Zeroable};
use flowplay_core::mlp::Mlp;
use flowplay_core::path::Path;
use flowplay_core::sampler::{Record, SamplerConfig, Solver, time_grid};
#[cfg(not(target_arch = "wasm32"))]
use flowplay_core::sampler::{SampleOutput, Trajectories};

use crate::GpuError;
use crate::buffers::{self, STORAGE};
use crate::context::check_compute_limits;
use crate::kernel::{
    GRID_POINTS, Kernel, LABEL_ROWS, LINEAR_FORWARD, ODE_STAGE, PARTICLE_HISTOGRAM, Slot,
    TIME_BRANCH, grid_1d,
};
use crate::layout::MlpOffsets;
use crate::uniforms::{LinearForwardUniform, LinearInput, NONE};

/// Stride of the entries of a dynamic-offset uniform table (WebGPU's offset alignment).
const TABLE_STRIDE: u64 = 256;
/// Largest hidden-activation buffer of one chunk.
const MAX_CHUNK_BYTES: u64 = 64 << 20;
/// Most rows one `linear_forward` dispatch covers (65535 workgroups of 64 rows).
const MAX_CHUNK_ROWS: u64 = 65_535 * 64;
/// Chunks hold a multiple of this many particles, so that per-chunk label bindings start at
/// offsets aligned to 256 bytes.
const CHUNK_ALIGN: usize = 64;

const KIND_FIRST: u32 = 1;
const KIND_LAST: u32 = 2;
const KIND_FINAL_POSITION: u32 = 4;
const KIND_EVAL: u32 = 8;
const KIND_HAS_NEXT: u32 = 16;
const KIND_INIT: u32 = 32;
const RECORD_POSITIONS: u32 = 1;
const RECORD_ENDPOINTS: u32 = 2;
const RECORD_VELOCITIES: u32 = 4;

/// An axis-aligned rectangle in data space.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    /// The lower-left corner (x_min, y_min).
    pub min: [f32; 2],
    /// The upper-right corner (x_max, y_max).
    pub max: [f32; 2],
}

impl Rect {
    /// The rectangle from `min` to `max`.
    pub fn new(min: [f32; 2], max: [f32; 2]) -> Self {
        Self { min, max }
    }

    /// Width and height of one cell of an `nx × ny` grid over the rectangle, as the kernels use
    /// it: `(x_max − x_min)/nx`, `(y_max − y_min)/ny` in f32.
    pub fn cell(&self, nx: u32, ny: u32) -> [f32; 2] {
        [
            (self.max[0] - self.min[0]) / nx as f32,
            (self.max[1] - self.min[1]) / ny as f32,
        ]
    }

    /// The centre of cell `(i, j)` of an `nx × ny` grid, computed as `velocity_grid` computes it.
    pub fn cell_centre(&self, nx: u32, ny: u32, i: u32, j: u32) -> [f32; 2] {
        let [dx, dy] = self.cell(nx, ny);
        [
            self.min[0] + (i as f32 + 0.5) * dx,
            self.min[1] + (j as f32 + 0.5) * dy,
        ]
    }

    /// The histogram bin of `p` in an `nx × ny` grid (`j·nx + i`), as `particle_histogram.wgsl`
    /// computes it, or `None` outside the rectangle (or for a non-finite point).
    pub fn bin(&self, nx: u32, ny: u32, p: [f32; 2]) -> Option<usize> {
        let [sx, sy] = self.bin_scales(nx, ny);
        let fx = (p[0] - self.min[0]) * sx;
        let fy = (p[1] - self.min[1]) * sy;
        if fx >= 0.0 && fy >= 0.0 && fx < nx as f32 && fy < ny as f32 {
            let i = (fx as u32).min(nx - 1);
            let j = (fy as u32).min(ny - 1);
            Some(j as usize * nx as usize + i as usize)
        } else {
            None
        }
    }

    fn bin_scales(&self, nx: u32, ny: u32) -> [f32; 2] {
        [
            nx as f32 / (self.max[0] - self.min[0]),
            ny as f32 / (self.max[1] - self.min[1]),
        ]
    }

    fn validate(&self) -> Result<(), GpuError> {
        let ok = self.min.iter().chain(&self.max).all(|v| v.is_finite())
            && self.max[0] > self.min[0]
            && self.max[1] > self.min[1];
        if ok {
            Ok(())
        } else {
            Err(config_error(format!(
                "the rectangle must have finite corners with max > min, got {self:?}"
            )))
        }
    }
}

/// Keep in sync with `Stage` in `shaders/common/stage.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
struct StageUniform {
    t: f32,
    skip: f32,
    out_scale: f32,
    next_in: f32,
    kind: u32,
    frame: u32,
    frames: u32,
    record: u32,
    w: f32,
    hp: f32,
    cfg_scale: f32,
    rpp: u32,
    ca: f32,
    cb: f32,
    cda: f32,
    cdb: f32,
    t_scale: f32,
    half: u32,
    hidden: u32,
    crows: u32,
    w1: u32,
    b1: u32,
    w3: u32,
    b3: u32,
    w0: u32,
    b0: u32,
    has_label_rows: u32,
    pad: u32,
}

/// Keep in sync with `Chunk` in `shaders/ode_stage.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
struct ChunkUniform {
    p0: u32,
    len: u32,
    rpp: u32,
    /// The first particle of the recording page the chunk lies in.
    rec_p0: u32,
}

/// Keep in sync with `LabelRows` in `shaders/label_rows.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
struct LabelRowsUniform {
    hidden: u32,
    crows: u32,
    w0: u32,
    embed: u32,
}

/// Keep in sync with `Histogram` in `shaders/particle_histogram.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
struct HistogramUniform {
    n: u32,
    nx: u32,
    ny: u32,
    pad: u32,
    x_min: f32,
    y_min: f32,
    sx: f32,
    sy: f32,
}

/// Keep in sync with `Grid` in `shaders/grid_points.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
struct GridUniform {
    nx: u32,
    ny: u32,
    rpp: u32,
    chunk: u32,
    n: u32,
    pad: [u32; 3],
    x_min: f32,
    y_min: f32,
    dx: f32,
    dy: f32,
    input_scale: f32,
    pad2: [f32; 3],
}

fn config_error(message: String) -> GpuError {
    GpuError::Core(flowplay_core::Error::config(message))
}

/// A buffer that grows (is recreated larger) when a run needs more, and is otherwise reused.
#[derive(Debug)]
struct Growable {
    buffer: wgpu::Buffer,
    usage: wgpu::BufferUsages,
    label: &'static str,
}

impl Growable {
    fn new(device: &wgpu::Device, label: &'static str, usage: wgpu::BufferUsages) -> Self {
        Self {
            buffer: Self::create(device, label, usage, 16),
            usage,
            label,
        }
    }

    fn create(
        device: &wgpu::Device,
        label: &'static str,
        usage: wgpu::BufferUsages,
        bytes: u64,
    ) -> wgpu::Buffer {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(16).next_multiple_of(16),
            usage,
            mapped_at_creation: false,
        })
    }

    /// Makes the buffer at least `bytes` long (its old contents are lost when it grows).
    fn ensure(&mut self, device: &wgpu::Device, bytes: u64) {
        if self.buffer.size() < bytes {
            self.buffer = Self::create(device, self.label, self.usage, bytes);
        }
    }
}

/// Per-run state of a set of particles: the sampled particles, or the points of the velocity
/// grid (kept apart, so that the grid never overwrites the particles and both can be encoded
/// into the same submission).
#[derive(Debug)]
struct ParticleSet {
    pos: Growable,
    aux: Growable,
    x_in: Growable,
    row_labels: Growable,
    /// Two sets of recording pages (positions, endpoints and velocities of [`RunShape::page`]
    /// particles each): the front one holds the last finished run, a run records into the other.
    rec: [Vec<[Growable; 3]>; 2],
    front: usize,
    rec_names: [&'static str; 3],
    stages: Growable,
    chunks: Growable,
    layers: Growable,
}

impl ParticleSet {
    fn new(device: &wgpu::Device, name: &'static [&'static str; 8]) -> Self {
        let table = wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST;
        Self {
            pos: Growable::new(device, name[0], STORAGE | wgpu::BufferUsages::VERTEX),
            aux: Growable::new(device, name[1], STORAGE),
            x_in: Growable::new(device, name[2], STORAGE),
            row_labels: Growable::new(device, name[3], STORAGE),
            rec: [Vec::new(), Vec::new()],
            front: 0,
            rec_names: [name[4], name[5], name[6]],
            stages: Growable::new(device, name[7], table),
            chunks: Growable::new(device, "flowplay::sampler::chunks", table),
            layers: Growable::new(device, "flowplay::sampler::layers", table),
        }
    }

    /// The pages a run records into.
    fn back(&self) -> &[[Growable; 3]] {
        &self.rec[1 - self.front]
    }

    /// Makes `pages` back recording pages of at least `bytes` each and drops any beyond them.
    fn ensure_pages(&mut self, device: &wgpu::Device, pages: usize, bytes: [u64; 3]) {
        let names = self.rec_names;
        let back = &mut self.rec[1 - self.front];
        back.truncate(pages);
        while back.len() < pages {
            back.push(names.map(|name| Growable::new(device, name, STORAGE)));
        }
        for page in back.iter_mut() {
            for (buffer, bytes) in page.iter_mut().zip(bytes) {
                buffer.ensure(device, bytes);
            }
        }
    }
}

const PARTICLE_NAMES: [&str; 8] = [
    "flowplay::sampler::positions",
    "flowplay::sampler::state",
    "flowplay::sampler::network_input",
    "flowplay::sampler::row_labels",
    "flowplay::sampler::trajectory_positions",
    "flowplay::sampler::trajectory_endpoints",
    "flowplay::sampler::trajectory_velocities",
    "flowplay::sampler::stages",
];

const GRID_NAMES: [&str; 8] = [
    "flowplay::sampler::grid_points",
    "flowplay::sampler::grid_state",
    "flowplay::sampler::grid_network_input",
    "flowplay::sampler::grid_row_labels",
    "flowplay::sampler::grid_unused_positions",
    "flowplay::sampler::grid_unused_endpoints",
    "flowplay::sampler::grid_velocities",
    "flowplay::sampler::grid_stage",
];

/// What a run evaluates: how many particles, in which chunks, with how many network rows each.
#[derive(Clone, Copy, Debug)]
struct RunShape {
    n: usize,
    /// Network rows per particle: 2 with classifier-free guidance.
    rpp: usize,
    /// Particles per chunk (a multiple of [`CHUNK_ALIGN`]).
    chunk: usize,
    /// Particles per recording page (a multiple of `chunk`).
    page: usize,
}

impl RunShape {
    fn chunks(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        pieces(self.n, self.chunk)
    }

    /// Chunk `c`'s first particle and number of particles.
    fn chunk_at(&self, c: usize) -> (usize, usize) {
        let p0 = c * self.chunk;
        (p0, self.chunk.min(self.n - p0))
    }

    fn num_chunks(&self) -> usize {
        self.n.div_ceil(self.chunk)
    }

    fn num_pages(&self) -> usize {
        self.n.div_ceil(self.page).max(1)
    }
}

/// One recording page of the last run: particles `first .. first + len`, their trajectories
/// particle-major as in `flowplay_core::sampler::Trajectories` (16-byte placeholders for what was
/// not recorded). Each buffer fits one storage binding.
#[derive(Clone, Copy, Debug)]
pub struct RecordedPage<'a> {
    /// The page's first particle.
    pub first: usize,
    /// Particles in the page.
    pub len: usize,
    /// Positions `[len, frames, 2]` `f32`.
    pub positions: &'a wgpu::Buffer,
    /// Predicted endpoints `[len, frames − 1, 2]`.
    pub endpoints: &'a wgpu::Buffer,
    /// Velocities `[len, frames, 2]`.
    pub velocities: &'a wgpu::Buffer,
}

/// `0..n` in pieces of `size` (the last one shorter): each piece's start and length.
fn pieces(n: usize, size: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n)
        .step_by(size.max(1))
        .map(move |p0| (p0, size.min(n - p0)))
}

/// What the last encoded sampling run recorded, for reading it back.
#[derive(Clone, Debug, Default)]
struct LastRun {
    n: usize,
    /// Particles per recording page.
    page: usize,
    times: Vec<f32>,
    record: Record,
    #[cfg_attr(
        target_arch = "wasm32",
        allow(dead_code, reason = "read by the native-only `read_output`")
    )]
    nfe: usize,
}

/// A particle run begun by [`GpuSampler::begin_sample`] and not yet fully encoded.
#[derive(Clone, Debug)]
struct PendingRun {
    shape: RunShape,
    stages: usize,
    /// The next (stage, chunk) operation to encode, `stage · chunks + chunk`.
    next_op: usize,
    /// What the run records, for when it is finished.
    last: LastRun,
}

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
    histogram_uniform: wgpu::Buffer,
    grid_uniform: wgpu::Buffer,
    last: LastRun,
    pending: Option<PendingRun>,
    grid_len: usize,
    max_chunk: Option<usize>,
    max_page: Option<usize>,
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
        let stage = Slot::Dynamic(size_of::<StageUniform>() as u64);
        let time_branch = Kernel::new(
            device,
            &TIME_BRANCH,
            &[
                Slot::Read,
                Slot::Read,
                Slot::Read,
                Slot::Write,
                Slot::Write,
                stage,
            ],
        );
        let label_rows = Kernel::new(
            device,
            &LABEL_ROWS,
            &[
                Slot::Read,
                Slot::Write,
                Slot::Uniform(size_of::<LabelRowsUniform>() as u64),
            ],
        );
        let linear = Kernel::new(
            device,
            &LINEAR_FORWARD,
            &[
                Slot::Read,
                Slot::Read,
                Slot::Read,
                Slot::Read,
                Slot::Write,
                Slot::Dynamic(size_of::<LinearForwardUniform>() as u64),
            ],
        );
        let ode_stage = Kernel::new(
            device,
            &ODE_STAGE,
            &[
                Slot::Read,
                Slot::Write,
                Slot::Write,
                Slot::Write,
                Slot::Write,
                Slot::Write,
                Slot::Write,
                stage,
                Slot::Dynamic(size_of::<ChunkUniform>() as u64),
            ],
        );
        let histogram = Kernel::new(
            device,
            &PARTICLE_HISTOGRAM,
            &[
                Slot::Read,
                Slot::Write,
                Slot::Uniform(size_of::<HistogramUniform>() as u64),
            ],
        );
        let grid_points = Kernel::new(
            device,
            &GRID_POINTS,
            &[
                Slot::Write,
                Slot::Write,
                Slot::Write,
                Slot::Uniform(size_of::<GridUniform>() as u64),
            ],
        );
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
            histogram_uniform: buffers::uniform(
                device,
                "flowplay::sampler::histogram_uniform",
                &HistogramUniform::default(),
            ),
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

    /// The stage uniform's fields shared by every stage of a run.
    fn stage_template(
        &self,
        frames: usize,
        record: Record,
        cfg_scale: f32,
        rpp: usize,
    ) -> StageUniform {
        let o = &self.offsets;
        let config = self.mlp.config();
        StageUniform {
            frames: frames as u32,
            record: u32::from(record.positions) * RECORD_POSITIONS
                + u32::from(record.endpoints) * RECORD_ENDPOINTS
                + u32::from(record.velocities) * RECORD_VELOCITIES,
            cfg_scale,
            rpp: rpp as u32,
            t_scale: config.t_scale,
            half: (config.t_dim / 2) as u32,
            hidden: o.hidden,
            crows: Self::class_rows_of(&self.mlp) as u32,
            w1: o.t1.weight,
            b1: o.t1.bias,
            w3: o.t3.weight,
            b3: o.t3.bias,
            w0: o.layers[0].weight,
            b0: o.layers[0].bias,
            has_label_rows: u32::from(o.label_embed.is_some()),
            ..StageUniform::default()
        }
    }

    /// Every solver stage of a run, in order, with the solver's weights computed exactly as
    /// `Stepper::step` computes them (preconditioning still to fill in: `finish_stages`).
    fn build_stages(
        &self,
        template: StageUniform,
        times: &[f32],
        config: &SamplerConfig,
        record: Record,
    ) -> Vec<StageUniform> {
        let steps = times.len() - 1;
        let mut stages = Vec::with_capacity(config.nfe() + 1);
        for (step, pair) in times.windows(2).enumerate() {
            let (t0, t1) = (pair[0], pair[1]);
            let dt = t1 - t0;
            let c = self.path.coefficients(t0);
            let first = StageUniform {
                t: t0,
                kind: KIND_FIRST,
                frame: step as u32,
                ca: c.a,
                cb: c.b,
                cda: c.da,
                cdb: c.db,
                ..template
            };
            let stage = |t: f32, kind: u32| StageUniform {
                t,
                kind,
                frame: step as u32,
                ..template
            };
            match config.solver {
                Solver::Euler => stages.push(StageUniform {
                    kind: KIND_FIRST | KIND_LAST,
                    w: dt,
                    ..first
                }),
                Solver::Heun => {
                    stages.push(StageUniform { hp: dt, ..first });
                    stages.push(StageUniform {
                        w: dt * 0.5,
                        ..stage(t1, KIND_LAST)
                    });
                }
                Solver::Rk4 => {
                    let mid = t0 + dt / 2.0;
                    stages.push(StageUniform {
                        hp: dt / 2.0,
                        ..first
                    });
                    stages.push(StageUniform {
                        hp: dt / 2.0,
                        ..stage(mid, 0)
                    });
                    stages.push(StageUniform {
                        hp: dt,
                        ..stage(mid, 0)
                    });
                    stages.push(StageUniform {
                        w: dt / 6.0,
                        ..stage(t1, KIND_LAST)
                    });
                }
            }
            if step + 1 == steps
                && let Some(last) = stages.last_mut()
            {
                last.kind |= KIND_FINAL_POSITION;
            }
        }
        if record.velocities {
            stages.push(StageUniform {
                t: times[steps],
                kind: KIND_EVAL,
                frame: steps as u32,
                ..template
            });
        }
        stages
    }

    /// Fills in each stage's preconditioning and the next stage's input scale.
    fn finish_stages(&self, stages: &mut [StageUniform]) {
        let next_inputs: Vec<Option<f32>> = (0..stages.len())
            .map(|i| {
                stages
                    .get(i + 1)
                    .map(|s| self.path.preconditioning(s.t).input)
            })
            .collect();
        for (stage, next) in stages.iter_mut().zip(next_inputs) {
            let pre = self.path.preconditioning(stage.t);
            stage.skip = pre.skip;
            stage.out_scale = pre.output;
            if let Some(next_in) = next {
                stage.next_in = next_in;
                stage.kind |= KIND_HAS_NEXT;
            }
        }
    }

    /// Writes a set's chunk and layer tables and per-row labels.
    fn write_tables(&self, queue: &wgpu::Queue, grid: bool, shape: RunShape, classes: &[u32]) {
        let set = if grid { &self.grid } else { &self.particles };
        let o = &self.offsets;
        let depth = self.mlp.config().depth;
        let stride = TABLE_STRIDE as usize;
        let mut chunk_table = vec![0_u8; shape.num_chunks() * stride];
        let mut layer_table = vec![0_u8; shape.num_chunks() * depth * stride];
        let mut row_labels = Vec::with_capacity(shape.n * shape.rpp);
        for (c, (p0, len)) in shape.chunks().enumerate() {
            let chunk = ChunkUniform {
                p0: p0 as u32,
                len: len as u32,
                rpp: shape.rpp as u32,
                rec_p0: (p0 / shape.page * shape.page) as u32,
            };
            chunk_table[c * stride..][..size_of::<ChunkUniform>()]
                .copy_from_slice(bytemuck::bytes_of(&chunk));
            row_labels.extend_from_slice(&classes[p0..p0 + len]);
            if shape.rpp == 2 {
                row_labels.extend(std::iter::repeat_n(self.mlp.config().null_label(), len));
            }
            let rows = (shape.rpp * len) as u32;
            for j in 1..=depth {
                let layer = o.layers[j];
                let mode = if j == 1 {
                    LinearInput::SamplerLayer0
                } else {
                    LinearInput::Silu
                };
                let uniform = LinearForwardUniform {
                    rows,
                    outputs: layer.outputs,
                    inputs: layer.inputs,
                    a_mode: mode as u32,
                    a_offset: if j == 1 {
                        (2 * shape.rpp * p0) as u32
                    } else {
                        0
                    },
                    a_stride: if j == 1 { 2 } else { layer.inputs },
                    w_offset: layer.weight,
                    b_offset: layer.bias,
                    out_offset: 0,
                    out_stride: layer.outputs,
                    label_offset: NONE,
                    half: 0,
                    t_scale: 1.0,
                    xw_offset: o.layers[0].weight,
                    xw_stride: o.layers[0].inputs,
                    aux_offset: 0,
                };
                let at = (c * depth + j - 1) * stride;
                layer_table[at..][..size_of::<LinearForwardUniform>()]
                    .copy_from_slice(bytemuck::bytes_of(&uniform));
            }
        }
        queue.write_buffer(&set.chunks.buffer, 0, &chunk_table);
        queue.write_buffer(&set.layers.buffer, 0, &layer_table);
        queue.write_buffer(&set.row_labels.buffer, 0, bytemuck::cast_slice(&row_labels));
    }

    fn write_stages(queue: &wgpu::Queue, set: &ParticleSet, stages: &[StageUniform]) {
        let stride = TABLE_STRIDE as usize;
        let mut table = vec![0_u8; stages.len() * stride];
        for (i, stage) in stages.iter().enumerate() {
            table[i * stride..][..size_of::<StageUniform>()]
                .copy_from_slice(bytemuck::bytes_of(stage));
        }
        queue.write_buffer(&set.stages.buffer, 0, &table);
    }

    /// Encodes a whole sampling run into `encoder`: uploads `x0` (already scaled to the prior)
    /// and the run's tables through `queue` (they land before the next submission), then every
    /// solver stage. After submission, [`Self::positions_buffer`] holds the samples and
    /// [`Self::trajectory_buffers`] what `record` asked for; [`Self::read_output`] reads them back.
    /// Encode at most one run per submission (the tables are rewritten by the next call).
    #[allow(clippy::too_many_arguments, reason = "the inputs of one sampling run")]
    pub fn encode_sample(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        x0: &[[f32; 2]],
        labels: Option<&[u32]>,
        cfg_scale: f32,
        config: &SamplerConfig,
        record: Record,
    ) -> Result<(), GpuError> {
        self.begin_sample(device, queue, x0, labels, cfg_scale, config, record)?;
        self.encode_slice(device, encoder, u64::MAX);
        Ok(())
    }

    /// Begins a sampling run to be encoded a slice at a time with [`Self::encode_slice`]:
    /// checks the inputs, sizes the buffers and uploads `x0` and the run's tables through
    /// `queue` (they land before the next submission). A run still being encoded is dropped.
    /// Until the last slice is encoded, [`Self::recorded_pages`] and [`Self::times`] stay those
    /// of the previous run, so it can be drawn meanwhile.
    #[allow(clippy::too_many_arguments, reason = "the inputs of one sampling run")]
    pub fn begin_sample(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        x0: &[[f32; 2]],
        labels: Option<&[u32]>,
        cfg_scale: f32,
        config: &SamplerConfig,
        record: Record,
    ) -> Result<(), GpuError> {
        self.pending = None;
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
    /// network's field on the GPU. `labels` and `cfg_scale` as in the type's description.
    #[cfg(not(target_arch = "wasm32"))]
    #[allow(clippy::too_many_arguments, reason = "the inputs of one sampling run")]
    pub fn sample(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        x0: &[[f32; 2]],
        labels: Option<&[u32]>,
        cfg_scale: f32,
        config: &SamplerConfig,
        record: Record,
    ) -> Result<SampleOutput, GpuError> {
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("flowplay::sampler::sample"),
        });
        self.encode_sample(
            device,
            queue,
            &mut encoder,
            x0,
            labels,
            cfg_scale,
            config,
            record,
        )?;
        queue.submit([encoder.finish()]);
        self.read_output(device, queue)
    }

    /// Encodes a 2-D histogram of the particles' current positions (those of the last encoded
    /// run) over `rect` into an `nx × ny` grid of `u32` counts, [`Self::histogram_buffer`]
    /// (bin `j·nx + i`; see [`Rect::bin`]).
    pub fn encode_histogram(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        rect: Rect,
        nx: u32,
        ny: u32,
    ) -> Result<(), GpuError> {
        rect.validate()?;
        let cells = u64::from(nx) * u64::from(ny);
        if cells == 0 || cells > (1 << 24) {
            return Err(config_error(format!(
                "a histogram needs between 1 and 2^24 bins, got {nx} × {ny}"
            )));
        }
        self.counts.ensure(device, cells * 4);
        let [sx, sy] = rect.bin_scales(nx, ny);
        let uniform = HistogramUniform {
            n: self.last.n as u32,
            nx,
            ny,
            pad: 0,
            x_min: rect.min[0],
            y_min: rect.min[1],
            sx,
            sy,
        };
        queue.write_buffer(&self.histogram_uniform, 0, bytemuck::bytes_of(&uniform));
        encoder.clear_buffer(&self.counts.buffer, 0, Some(cells * 4));
        let bg = self.histogram.bind(
            device,
            &[
                &self.particles.pos.buffer,
                &self.counts.buffer,
                &self.histogram_uniform,
            ],
        );
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("flowplay::sampler::histogram"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.histogram.pipeline);
        pass.set_bind_group(0, &bg, &[]);
        let [x, y, z] = grid_1d(self.last.n as u32);
        pass.dispatch_workgroups(x, y, z);
        Ok(())
    }

    /// [`Self::encode_histogram`], submitted and read back (native only, blocking).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn histogram(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        rect: Rect,
        nx: u32,
        ny: u32,
    ) -> Result<Vec<u32>, GpuError> {
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("flowplay::sampler::histogram"),
        });
        self.encode_histogram(device, queue, &mut encoder, rect, nx, ny)?;
        queue.submit([encoder.finish()]);
        buffers::read_pod::<u32>(
            device,
            queue,
            &self.counts.buffer,
            0,
            nx as usize * ny as usize,
        )
    }

    /// Encodes the velocity field v(t, ·) at the centres of an `nx × ny` grid over `rect` (point
    /// `j·nx + i` at [`Rect::cell_centre`]) into [`Self::velocity_grid_buffer`]: the field the
    /// sampler integrates, with `label` (every point) and `cfg_scale` as in [`Self::sample`].
    /// The particles are left alone.
    #[allow(
        clippy::too_many_arguments,
        reason = "the inputs of one field evaluation"
    )]
    pub fn encode_velocity_grid(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        t: f32,
        rect: Rect,
        nx: u32,
        ny: u32,
        label: Option<u32>,
        cfg_scale: f32,
    ) -> Result<(), GpuError> {
        rect.validate()?;
        if !t.is_finite() || !cfg_scale.is_finite() {
            return Err(config_error(format!(
                "t and the guidance scale must be finite, got {t} and {cfg_scale}"
            )));
        }
        let n64 = u64::from(nx) * u64::from(ny);
        if n64 == 0 || n64 > (1 << 24) {
            return Err(config_error(format!(
                "a velocity grid needs between 1 and 2^24 points, got {nx} × {ny}"
            )));
        }
        let n = n64 as usize;
        let labels = label.map(|l| vec![l; n]);
        let (rpp, classes) = self.row_plan(n, labels.as_deref(), cfg_scale)?;
        // One recording page (frames 0): at most 2^24 velocities, which one binding holds.
        let shape = self.plan(device, n, rpp, 0);
        let record = Record {
            velocities: true,
            ..Record::NONE
        };
        let mut stages = vec![StageUniform {
            t,
            kind: KIND_EVAL,
            frame: 0,
            ..self.stage_template(1, record, cfg_scale, rpp)
        }];
        self.finish_stages(&mut stages);
        self.prepare_set(device, true, shape, 1, [0, 0, 8])?;
        self.write_tables(queue, true, shape, &classes);
        Self::write_stages(queue, &self.grid, &stages);
        let [dx, dy] = rect.cell(nx, ny);
        let uniform = GridUniform {
            nx,
            ny,
            rpp: rpp as u32,
            chunk: shape.chunk as u32,
            n: n as u32,
            x_min: rect.min[0],
            y_min: rect.min[1],
            dx,
            dy,
            input_scale: self.path.preconditioning(t).input,
            ..GridUniform::default()
        };
        queue.write_buffer(&self.grid_uniform, 0, bytemuck::bytes_of(&uniform));
        let bg = self.grid_points.bind(
            device,
            &[
                &self.grid.pos.buffer,
                &self.grid.aux.buffer,
                &self.grid.x_in.buffer,
                &self.grid_uniform,
            ],
        );
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("flowplay::sampler::grid_points"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&self.grid_points.pipeline);
            pass.set_bind_group(0, &bg, &[]);
            let [x, y, z] = grid_1d(n as u32);
            pass.dispatch_workgroups(x, y, z);
        }
        self.encode_ops(device, encoder, true, shape, 0..shape.num_chunks());
        self.grid.front = 1 - self.grid.front;
        self.grid_len = n;
        Ok(())
    }

    /// [`Self::encode_velocity_grid`], submitted and read back (native only, blocking): one
    /// velocity per grid point, point `j·nx + i`.
    #[cfg(not(target_arch = "wasm32"))]
    #[allow(
        clippy::too_many_arguments,
        reason = "the inputs of one field evaluation"
    )]
    pub fn velocity_grid(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        t: f32,
        rect: Rect,
        nx: u32,
        ny: u32,
        label: Option<u32>,
        cfg_scale: f32,
    ) -> Result<Vec<[f32; 2]>, GpuError> {
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("flowplay::sampler::velocity_grid"),
        });
        self.encode_velocity_grid(
            device,
            queue,
            &mut encoder,
            t,
            rect,
            nx,
            ny,
            label,
            cfg_scale,
        )?;
        queue.submit([encoder.finish()]);
        let flat = buffers::read_pod::<f32>(
            device,
            queue,
            self.velocity_grid_buffer(),
            0,
            2 * self.grid_len,
        )?;
        Ok(flat.chunks_exact(2).map(|p| [p[0], p[1]]).collect())
    }
}

fn entry(binding: u32, resource: wgpu::BindingResource<'_>) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry { binding, resource }
}
