//! The WGSL sources, and compute pipelines with explicit bind-group layouts.
//!
//! Each kernel lives in its own file in the top-level `shaders/` folder; helpers it needs
//! (`shaders/common/*.wgsl`) are prepended, since WGSL has no `#include`. [`SHADERS`] lists every
//! kernel with its helpers; a test checks that it names every `.wgsl` file on disk and that naga
//! validates each assembled module.

use std::num::NonZeroU64;

/// Shared WGSL helpers.
pub mod common {
    /// exp, sigmoid, SiLU, sin/cos as the CPU computes them.
    pub const MATH: &str = include_str!("../../../shaders/common/math.wgsl");
    /// Threefry-2x32-20 and the float conversions of `flowplay_core::rng`.
    pub const RNG: &str = include_str!("../../../shaders/common/rng.wgsl");
    /// Path coefficients and preconditioning.
    pub const PATH: &str = include_str!("../../../shaders/common/path.wgsl");
    /// The tiled matrix product.
    pub const GEMM: &str = include_str!("../../../shaders/common/gemm.wgsl");
    /// The per-step values and control flags of a training step.
    pub const TRAIN_STEP: &str = include_str!("../../../shaders/common/train_step.wgsl");
    /// One ODE stage's values.
    pub const STAGE: &str = include_str!("../../../shaders/common/stage.wgsl");
    /// The sum over a workgroup in a fixed order.
    pub const REDUCE: &str = include_str!("../../../shaders/common/reduce.wgsl");
    /// Every helper with its file name, for the validation test.
    pub const ALL: [(&str, &str); 7] = [
        ("common/math.wgsl", MATH),
        ("common/rng.wgsl", RNG),
        ("common/path.wgsl", PATH),
        ("common/gemm.wgsl", GEMM),
        ("common/train_step.wgsl", TRAIN_STEP),
        ("common/stage.wgsl", STAGE),
        ("common/reduce.wgsl", REDUCE),
    ];
}

/// One kernel file and the helpers it is assembled with.
#[derive(Clone, Copy, Debug)]
pub struct ShaderSource {
    /// The file name in `shaders/`, e.g. `linear_forward.wgsl`.
    pub file: &'static str,
    /// Its text.
    pub code: &'static str,
    /// Helpers prepended, in order.
    pub helpers: &'static [&'static str],
}

impl ShaderSource {
    /// The complete module: helpers, then the kernel.
    pub fn assemble(&self) -> String {
        let mut out = String::new();
        for helper in self.helpers {
            out.push_str(helper);
            out.push('\n');
        }
        out.push_str(self.code);
        out
    }
}

macro_rules! shader {
    ($name:ident, $file:literal, [$($helper:ident),*]) => {
        #[doc = concat!("`shaders/", $file, "`.")]
        pub const $name: ShaderSource = ShaderSource {
            file: $file,
            code: include_str!(concat!("../../../shaders/", $file)),
            helpers: &[$(common::$helper),*],
        };
    };
}

shader!(LINEAR_FORWARD, "linear_forward.wgsl", [MATH, GEMM]);
shader!(TIME_BRANCH, "time_branch.wgsl", [MATH, STAGE]);
shader!(LABEL_ROWS, "label_rows.wgsl", []);
shader!(ODE_STAGE, "ode_stage.wgsl", [MATH, PATH, STAGE]);
shader!(PARTICLE_HISTOGRAM, "particle_histogram.wgsl", []);
shader!(GRID_POINTS, "grid_points.wgsl", []);
shader!(BATCH_DRAW, "batch_draw.wgsl", [MATH, RNG, PATH, TRAIN_STEP]);
shader!(MSE_LOSS, "mse_loss.wgsl", [REDUCE]);
shader!(
    LINEAR_BACKWARD_INPUT,
    "linear_backward_input.wgsl",
    [MATH, GEMM]
);
shader!(
    LINEAR_BACKWARD_WEIGHT,
    "linear_backward_weight.wgsl",
    [MATH, GEMM]
);
shader!(GRAD_REDUCE, "grad_reduce.wgsl", []);
shader!(LABEL_EMBED_GRAD, "label_embed_grad.wgsl", []);
shader!(GRAD_NORM, "grad_norm.wgsl", [REDUCE]);
shader!(STEP_STATS, "step_stats.wgsl", [MATH, TRAIN_STEP, REDUCE]);
shader!(ADAMW_EMA, "adamw_ema.wgsl", [TRAIN_STEP]);
shader!(PARTICLES_DRAW, "particles_draw.wgsl", []);

/// Every kernel, and the particle render shader.
pub const SHADERS: &[ShaderSource] = &[
    LINEAR_FORWARD,
    TIME_BRANCH,
    LABEL_ROWS,
    ODE_STAGE,
    PARTICLE_HISTOGRAM,
    GRID_POINTS,
    BATCH_DRAW,
    MSE_LOSS,
    LINEAR_BACKWARD_INPUT,
    LINEAR_BACKWARD_WEIGHT,
    GRAD_REDUCE,
    LABEL_EMBED_GRAD,
    GRAD_NORM,
    STEP_STATS,
    ADAMW_EMA,
    PARTICLES_DRAW,
];

/// What a kernel binds at one slot of its bind group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// `var<storage, read>`.
    Read,
    /// `var<storage, read_write>`.
    Write,
    /// `var<uniform>` of this many bytes.
    Uniform(u64),
    /// `var<uniform>` of this many bytes, bound with a dynamic offset (per-step values).
    Dynamic(u64),
}

/// A compute pipeline with its bind-group layout (group 0).
#[derive(Debug)]
pub(crate) struct Kernel {
    pub(crate) pipeline: wgpu::ComputePipeline,
    pub(crate) layout: wgpu::BindGroupLayout,
    slots: Vec<Slot>,
    label: &'static str,
}

impl Kernel {
    /// Compiles `shader` with entry point `main` and the given bindings.
    pub(crate) fn new(device: &wgpu::Device, shader: &ShaderSource, slots: &[Slot]) -> Self {
        let label = shader.file;
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(shader.assemble().into()),
        });
        let entries: Vec<wgpu::BindGroupLayoutEntry> = slots
            .iter()
            .enumerate()
            .map(|(i, slot)| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: match *slot {
                    Slot::Read | Slot::Write => wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage {
                            read_only: *slot == Slot::Read,
                        },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    Slot::Uniform(size) | Slot::Dynamic(size) => wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: matches!(slot, Slot::Dynamic(_)),
                        min_binding_size: NonZeroU64::new(size),
                    },
                },
                count: None,
            })
            .collect();
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(label),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(label),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(label),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        Self {
            pipeline,
            layout,
            slots: slots.to_vec(),
            label,
        }
    }

    /// A bind group: one buffer binding per slot, in order. Dynamic uniforms bind one entry's
    /// size at offset 0.
    pub(crate) fn bind(&self, device: &wgpu::Device, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        assert_eq!(buffers.len(), self.slots.len(), "{}: bindings", self.label);
        let entries: Vec<wgpu::BindGroupEntry<'_>> = buffers
            .iter()
            .zip(&self.slots)
            .enumerate()
            .map(|(i, (buffer, slot))| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: match *slot {
                    Slot::Dynamic(size) => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer,
                        offset: 0,
                        size: NonZeroU64::new(size),
                    }),
                    _ => buffer.as_entire_binding(),
                },
            })
            .collect();
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(self.label),
            layout: &self.layout,
            entries: &entries,
        })
    }
}

/// Workgroups for `n` threads of 256 in a 2-D grid (at most 65535 per dimension): kernels compute
/// their index as `gid.x + gid.y · num_workgroups.x · 256`.
pub(crate) fn grid_1d(n: u32) -> [u32; 3] {
    let groups = n.div_ceil(256).max(1);
    let x = groups.min(65_535);
    [x, groups.div_ceil(x), 1]
}
