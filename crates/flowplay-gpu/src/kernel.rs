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

/// What a kernel binds at one slot of its bind group (group 0, binding = the slot's index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// `var<storage, read>`.
    Read,
    /// `var<storage, read_write>`.
    Write,
    /// `var<uniform>` of this many bytes.
    Uniform(u64),
    /// `var<uniform>` of this many bytes, bound with a dynamic offset (a table of per-step or
    /// per-stage entries).
    Dynamic(u64),
}

/// One kernel: its file, the helpers it is assembled with, and its bindings, declared once.
/// The pipelines are built from the slots, and a test checks them (and the size of every
/// uniform mirror in `uniforms.rs`) against the WGSL.
#[derive(Clone, Copy, Debug)]
pub struct ShaderSource {
    /// The file name in `shaders/`, e.g. `linear_forward.wgsl`.
    pub file: &'static str,
    /// Its text.
    pub code: &'static str,
    /// Helpers prepended, in order.
    pub helpers: &'static [&'static str],
    /// Its bindings in group 0, in binding order.
    pub slots: &'static [Slot],
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
    ($name:ident, $file:literal, [$($helper:ident),*], [$($slot:expr),* $(,)?]) => {
        #[doc = concat!("`shaders/", $file, "`.")]
        pub const $name: ShaderSource = ShaderSource {
            file: $file,
            code: include_str!(concat!("../../../shaders/", $file)),
            helpers: &[$(common::$helper),*],
            slots: &[$($slot),*],
        };
    };
}

/// The size of a uniform mirror, for a slot.
const fn bytes<T>() -> u64 {
    size_of::<T>() as u64
}

use crate::uniforms as u;
use Slot::{Dynamic, Read, Uniform, Write};

shader!(
    LINEAR_FORWARD,
    "linear_forward.wgsl",
    [MATH, GEMM],
    [
        Read,
        Read,
        Read,
        Read,
        Write,
        Dynamic(bytes::<u::LinearForwardUniform>())
    ]
);
shader!(
    TIME_BRANCH,
    "time_branch.wgsl",
    [MATH, STAGE],
    [
        Read,
        Read,
        Read,
        Write,
        Write,
        Dynamic(bytes::<u::StageUniform>())
    ]
);
shader!(
    LABEL_ROWS,
    "label_rows.wgsl",
    [],
    [Read, Write, Uniform(bytes::<u::LabelRowsUniform>())]
);
shader!(
    ODE_STAGE,
    "ode_stage.wgsl",
    [MATH, PATH, STAGE],
    [
        Read,
        Write,
        Write,
        Write,
        Write,
        Write,
        Write,
        Dynamic(bytes::<u::StageUniform>()),
        Dynamic(bytes::<u::ChunkUniform>()),
    ]
);
shader!(
    PARTICLE_HISTOGRAM,
    "particle_histogram.wgsl",
    [],
    [Read, Write, Dynamic(bytes::<u::HistogramUniform>())]
);
shader!(
    FIELD_ARROWS,
    "field_arrows.wgsl",
    [],
    [
        Read,
        Write,
        Write,
        Uniform(bytes::<u::FieldArrowsUniform>())
    ]
);
shader!(
    GRID_POINTS,
    "grid_points.wgsl",
    [],
    [Write, Write, Write, Uniform(bytes::<u::GridUniform>())]
);
shader!(
    BATCH_DRAW,
    "batch_draw.wgsl",
    [MATH, RNG, PATH, TRAIN_STEP],
    [
        Read,
        Read,
        Read,
        Read,
        Write,
        Write,
        Write,
        Write,
        Uniform(bytes::<u::BatchDrawUniform>()),
        Dynamic(bytes::<u::StepValues>()),
    ]
);
shader!(
    MSE_LOSS,
    "mse_loss.wgsl",
    [REDUCE],
    [
        Read,
        Read,
        Write,
        Write,
        Uniform(bytes::<u::MseLossUniform>())
    ]
);
shader!(
    LINEAR_BACKWARD_INPUT,
    "linear_backward_input.wgsl",
    [MATH, GEMM],
    [
        Read,
        Read,
        Read,
        Write,
        Uniform(bytes::<u::BackwardInputUniform>())
    ]
);
shader!(
    LINEAR_BACKWARD_WEIGHT,
    "linear_backward_weight.wgsl",
    [MATH, GEMM],
    [
        Read,
        Read,
        Read,
        Write,
        Uniform(bytes::<u::BackwardWeightUniform>())
    ]
);
shader!(
    GRAD_REDUCE,
    "grad_reduce.wgsl",
    [],
    [Read, Write, Uniform(bytes::<u::GradReduceUniform>())]
);
shader!(
    LABEL_EMBED_GRAD,
    "label_embed_grad.wgsl",
    [],
    [
        Read,
        Read,
        Write,
        Uniform(bytes::<u::LabelEmbedGradUniform>())
    ]
);
shader!(
    GRAD_NORM,
    "grad_norm.wgsl",
    [REDUCE],
    [Read, Write, Uniform(bytes::<u::CountUniform>())]
);
shader!(
    STEP_STATS,
    "step_stats.wgsl",
    [MATH, TRAIN_STEP, REDUCE],
    [
        Read,
        Read,
        Write,
        Write,
        Uniform(bytes::<u::StepStatsUniform>()),
        Dynamic(bytes::<u::StepValues>()),
    ]
);
shader!(
    ADAMW_EMA,
    "adamw_ema.wgsl",
    [TRAIN_STEP],
    [
        Read,
        Read,
        Write,
        Write,
        Write,
        Write,
        Uniform(bytes::<u::AdamWUniform>()),
        Dynamic(bytes::<u::StepValues>()),
    ]
);
shader!(
    LINEAR_JVP,
    "linear_jvp.wgsl",
    [MATH, GEMM],
    [
        Read,
        Read,
        Read,
        Read,
        Write,
        Dynamic(bytes::<u::LinearJvpUniform>())
    ]
);
shader!(
    LOGP_STAGE,
    "logp_stage.wgsl",
    [MATH, STAGE],
    [
        Read,
        Write,
        Write,
        Write,
        Write,
        Dynamic(bytes::<u::StageUniform>()),
        Dynamic(bytes::<u::ChunkUniform>()),
        Uniform(bytes::<u::PriorUniform>()),
    ]
);
shader!(
    MARKS_DRAW,
    "marks_draw.wgsl",
    [],
    [Read, Uniform(bytes::<u::MarkDrawUniform>())]
);
shader!(
    HEATMAP_DRAW,
    "heatmap_draw.wgsl",
    [],
    [Read, Uniform(bytes::<u::HeatmapUniform>())]
);
shader!(
    PARTICLES_DRAW,
    "particles_draw.wgsl",
    [],
    [Read, Read, Uniform(bytes::<u::DrawUniform>())]
);

/// Every kernel, and the render shaders (particles, marks, heat maps).
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
    LINEAR_JVP,
    LOGP_STAGE,
    FIELD_ARROWS,
    PARTICLES_DRAW,
    MARKS_DRAW,
    HEATMAP_DRAW,
];

/// A compute pipeline with its bind-group layout (group 0).
#[derive(Debug)]
pub(crate) struct Kernel {
    pub(crate) pipeline: wgpu::ComputePipeline,
    pub(crate) layout: wgpu::BindGroupLayout,
    slots: &'static [Slot],
    label: &'static str,
}

impl Kernel {
    /// Compiles `shader` with entry point `main` and its bindings.
    pub(crate) fn new(device: &wgpu::Device, shader: &ShaderSource) -> Self {
        let label = shader.file;
        let slots = shader.slots;
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
                    Read | Write => wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage {
                            read_only: *slot == Read,
                        },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    Uniform(size) | Dynamic(size) => wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: matches!(slot, Dynamic(_)),
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
            slots,
            label,
        }
    }

    /// Whether the kernel binds a uniform with a dynamic offset (each dispatch passes one).
    pub(crate) fn has_dynamic(&self) -> bool {
        self.slots.iter().any(|s| matches!(s, Dynamic(_)))
    }

    /// A bind group: one buffer binding per slot, in order. Dynamic uniforms bind one entry's
    /// size at offset 0.
    pub(crate) fn bind(&self, device: &wgpu::Device, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        assert_eq!(buffers.len(), self.slots.len(), "{}: bindings", self.label);
        let entries: Vec<wgpu::BindGroupEntry<'_>> = buffers
            .iter()
            .zip(self.slots)
            .enumerate()
            .map(|(i, (buffer, slot))| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: match *slot {
                    Dynamic(size) => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(shader: &ShaderSource) -> naga::Module {
        let source = shader.assemble();
        naga::front::wgsl::parse_str(&source)
            .unwrap_or_else(|e| panic!("{}: {}", shader.file, e.emit_to_string(&source)))
    }

    fn layouter(module: &naga::Module) -> naga::proc::Layouter {
        let mut layouter = naga::proc::Layouter::default();
        layouter
            .update(module.to_ctx())
            .unwrap_or_else(|e| panic!("layout: {e}"));
        layouter
    }

    /// Each kernel's declared slots are its WGSL's bindings: the same count, storage access
    /// (read or read_write) and uniform sizes (the Rust mirror's `size_of` against naga's
    /// layout of the WGSL struct).
    #[test]
    fn every_slot_matches_its_wgsl_binding() {
        for shader in SHADERS {
            let module = parse(shader);
            let layout = layouter(&module);
            let mut bindings: Vec<(u32, Slot)> = module
                .global_variables
                .iter()
                .filter_map(|(_, var)| {
                    let binding = var.binding.as_ref()?;
                    assert_eq!(binding.group, 0, "{}: group", shader.file);
                    let slot = match var.space {
                        naga::AddressSpace::Storage { access } => {
                            if access.contains(naga::StorageAccess::STORE) {
                                Write
                            } else {
                                Read
                            }
                        }
                        naga::AddressSpace::Uniform => Uniform(u64::from(layout[var.ty].size)),
                        other => panic!("{}: unexpected address space {other:?}", shader.file),
                    };
                    Some((binding.binding, slot))
                })
                .collect();
            bindings.sort_by_key(|b| b.0);
            let declared: Vec<(u32, Slot)> = shader
                .slots
                .iter()
                .enumerate()
                .map(|(i, slot)| {
                    let slot = match *slot {
                        Dynamic(size) => Uniform(size),
                        other => other,
                    };
                    (i as u32, slot)
                })
                .collect();
            assert_eq!(
                bindings, declared,
                "{}: bindings against its slots",
                shader.file
            );
        }
    }

    /// Every `#[repr(C)]` mirror in `uniforms.rs` has the size of the WGSL struct it mirrors.
    #[test]
    fn every_uniform_mirror_has_its_wgsl_size() {
        for (name, shader, size) in crate::uniforms::MIRRORS {
            let module = parse(shader);
            let layout = layouter(&module);
            let Some((ty, _)) = module
                .types
                .iter()
                .find(|(_, ty)| ty.name.as_deref() == Some(*name))
            else {
                panic!("{}: no struct {name}", shader.file);
            };
            assert_eq!(
                layout[ty].size as usize, *size,
                "{name} in {}: WGSL size against its Rust mirror",
                shader.file
            );
        }
    }
}
