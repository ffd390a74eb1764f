//! The sampler's buffers and run bookkeeping: growable buffers, the per-set state and
//! recording pages, and the shape of a run (chunks and pages).

use flowplay_core::sampler::Record;

use crate::buffers::STORAGE;

/// A buffer that grows (is recreated larger) when a run needs more, and is otherwise reused.
#[derive(Debug)]
pub(super) struct Growable {
    pub(super) buffer: wgpu::Buffer,
    pub(super) usage: wgpu::BufferUsages,
    pub(super) label: &'static str,
}

impl Growable {
    pub(super) fn new(
        device: &wgpu::Device,
        label: &'static str,
        usage: wgpu::BufferUsages,
    ) -> Self {
        Self {
            buffer: Self::create(device, label, usage, 16),
            usage,
            label,
        }
    }

    pub(super) fn create(
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
    pub(super) fn ensure(&mut self, device: &wgpu::Device, bytes: u64) {
        if self.buffer.size() < bytes {
            self.buffer = Self::create(device, self.label, self.usage, bytes);
        }
    }
}

/// Per-run state of a set of particles: the sampled particles, or the points of the velocity
/// grid (kept apart, so that the grid never overwrites the particles and both can be encoded
/// into the same submission).
#[derive(Debug)]
pub(super) struct ParticleSet {
    pub(super) pos: Growable,
    pub(super) aux: Growable,
    pub(super) x_in: Growable,
    pub(super) row_labels: Growable,
    /// Two sets of recording pages (positions, endpoints and velocities of [`RunShape::page`]
    /// particles each): the front one holds the last finished run, a run records into the other.
    pub(super) rec: [Vec<[Growable; 3]>; 2],
    pub(super) front: usize,
    pub(super) rec_names: [&'static str; 3],
    pub(super) stages: Growable,
    pub(super) chunks: Growable,
    pub(super) layers: Growable,
}

impl ParticleSet {
    pub(super) fn new(device: &wgpu::Device, name: &'static [&'static str; 8]) -> Self {
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
    pub(super) fn back(&self) -> &[[Growable; 3]] {
        &self.rec[1 - self.front]
    }

    /// Makes `pages` back recording pages of at least `bytes` each and drops any beyond them.
    pub(super) fn ensure_pages(&mut self, device: &wgpu::Device, pages: usize, bytes: [u64; 3]) {
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

pub(super) const PARTICLE_NAMES: [&str; 8] = [
    "flowplay::sampler::positions",
    "flowplay::sampler::state",
    "flowplay::sampler::network_input",
    "flowplay::sampler::row_labels",
    "flowplay::sampler::trajectory_positions",
    "flowplay::sampler::trajectory_endpoints",
    "flowplay::sampler::trajectory_velocities",
    "flowplay::sampler::stages",
];

pub(super) const GRID_NAMES: [&str; 8] = [
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
pub(super) struct RunShape {
    pub(super) n: usize,
    /// Network rows per particle: 2 with classifier-free guidance.
    pub(super) rpp: usize,
    /// Particles per chunk (a multiple of [`CHUNK_ALIGN`]).
    pub(super) chunk: usize,
    /// Particles per recording page (a multiple of `chunk`).
    pub(super) page: usize,
}

impl RunShape {
    pub(super) fn chunks(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        pieces(self.n, self.chunk)
    }

    /// Chunk `c`'s first particle and number of particles.
    pub(super) fn chunk_at(&self, c: usize) -> (usize, usize) {
        let p0 = c * self.chunk;
        (p0, self.chunk.min(self.n - p0))
    }

    pub(super) fn num_chunks(&self) -> usize {
        self.n.div_ceil(self.chunk)
    }

    pub(super) fn num_pages(&self) -> usize {
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
pub(super) fn pieces(n: usize, size: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n)
        .step_by(size.max(1))
        .map(move |p0| (p0, size.min(n - p0)))
}

/// What the last encoded sampling run recorded, for reading it back.
#[derive(Clone, Debug, Default)]
pub(super) struct LastRun {
    pub(super) n: usize,
    /// Particles per recording page.
    pub(super) page: usize,
    pub(super) times: Vec<f32>,
    pub(super) record: Record,
    #[cfg_attr(
        target_arch = "wasm32",
        allow(dead_code, reason = "read by the native-only `read_output`")
    )]
    pub(super) nfe: usize,
}

/// A particle run begun by [`GpuSampler::begin_sample`] and not yet fully encoded.
#[derive(Clone, Debug)]
pub(super) struct PendingRun {
    pub(super) shape: RunShape,
    pub(super) stages: usize,
    /// The next (stage, chunk) operation to encode, `stage · chunks + chunk`.
    pub(super) next_op: usize,
    /// What the run records, for when it is finished.
    pub(super) last: LastRun,
}
