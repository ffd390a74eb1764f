//! Rust mirrors of the WGSL uniform structs: `#[repr(C)]`, `Pod`, explicit padding to 16-byte
//! multiples. Keep each in sync with the file named in its docstring.

use bytemuck::{Pod, Zeroable};
use flowplay_core::path::Path;

/// "No offset" in `u32` offset fields.
pub(crate) const NONE: u32 = u32::MAX;

/// Keep in sync with `PathParams` in `shaders/common/path.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub(crate) struct PathUniform {
    pub(crate) kind: u32,
    pub(crate) preconditioned: u32,
    pub(crate) sigma_min: f32,
    pub(crate) sigma_max: f32,
    pub(crate) sigma_data: f32,
    pub(crate) pad: [f32; 3],
}

impl PathUniform {
    /// The WGSL description of `path`.
    pub(crate) fn new(path: &Path) -> Self {
        match *path {
            Path::RectifiedFlow { sigma_min } => Self {
                kind: 0,
                sigma_min,
                ..Self::default()
            },
            Path::VpCosine => Self {
                kind: 1,
                ..Self::default()
            },
            Path::Ve {
                sigma_min,
                sigma_max,
                sigma_data,
            } => Self {
                kind: 2,
                preconditioned: u32::from(sigma_data.is_some()),
                sigma_min,
                sigma_max,
                sigma_data: sigma_data.unwrap_or(1.0),
                pad: [0.0; 3],
            },
        }
    }
}

/// Where `linear_forward.wgsl` reads its input from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum LinearInput {
    /// The sinusoidal embedding of `t_scale · t[m]` (a_src = t, aux = frequencies).
    TimeEmbedding = 0,
    /// SiLU of a previous layer's pre-activations.
    Silu = 1,
    /// A stored matrix.
    Raw = 2,
    /// The sampler's fused first layer: `SiLU(x·W0[:, :2]ᵀ + c[y])` (a_src = positions as the
    /// network sees them, aux = per-class rows c, labels = classes).
    SamplerLayer0 = 3,
}

/// Keep in sync with `LinearForward` in `shaders/linear_forward.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub(crate) struct LinearForwardUniform {
    pub(crate) rows: u32,
    pub(crate) outputs: u32,
    pub(crate) inputs: u32,
    pub(crate) a_mode: u32,
    pub(crate) a_offset: u32,
    pub(crate) a_stride: u32,
    pub(crate) w_offset: u32,
    pub(crate) b_offset: u32,
    pub(crate) out_offset: u32,
    pub(crate) out_stride: u32,
    /// `label_embed.weight`'s offset, or [`NONE`].
    pub(crate) label_offset: u32,
    pub(crate) half: u32,
    pub(crate) t_scale: f32,
    pub(crate) xw_offset: u32,
    pub(crate) xw_stride: u32,
    pub(crate) aux_offset: u32,
}

impl LinearForwardUniform {
    /// Workgroups for this layer: one per 64×64 tile of the output.
    pub(crate) fn workgroups(&self) -> [u32; 3] {
        [self.outputs.div_ceil(64), self.rows.div_ceil(64), 1]
    }
}
