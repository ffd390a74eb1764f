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

// The trainer's uniforms (`trainer.rs`).

/// Per-step values. Keep in sync with `StepValues` in shaders/common/train_step.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub(crate) struct StepValues {
    pub(crate) step: u32,
    pub(crate) slot: u32,
    pub(crate) lr: f32,
    pub(crate) step_size: f32,
    pub(crate) bias2_sqrt: f32,
    pub(crate) decay: f32,
    pub(crate) pad: [u32; 2],
}

/// Keep in sync with `BatchDraw` in batch_draw.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub(crate) struct BatchDrawUniform {
    pub(crate) batch: u32,
    pub(crate) data_len: u32,
    pub(crate) source_len: u32,
    pub(crate) mode: u32,
    pub(crate) key: [u32; 2],
    pub(crate) time_kind: u32,
    pub(crate) conditional: u32,
    pub(crate) t_mean: f32,
    pub(crate) t_std: f32,
    pub(crate) p_drop: f32,
    pub(crate) null_label: u32,
    pub(crate) in_stride: u32,
    pub(crate) labelled: u32,
    pub(crate) pad: [u32; 2],
    pub(crate) path: PathUniform,
}

/// Keep in sync with `MseLoss` in mse_loss.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub(crate) struct MseLossUniform {
    pub(crate) batch: u32,
    pub(crate) grad_scale: f32,
    pub(crate) pad: [u32; 2],
}

/// Keep in sync with `LinearBackwardInput` in linear_backward_input.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub(crate) struct BackwardInputUniform {
    pub(crate) rows: u32,
    pub(crate) cols: u32,
    pub(crate) outputs: u32,
    pub(crate) dz_stride: u32,
    pub(crate) w_offset: u32,
    pub(crate) w_stride: u32,
    pub(crate) col0: u32,
    pub(crate) silu: u32,
    pub(crate) z_stride: u32,
    pub(crate) out_stride: u32,
    pub(crate) pad: [u32; 2],
}

/// Keep in sync with `LinearBackwardWeight` in linear_backward_weight.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub(crate) struct BackwardWeightUniform {
    pub(crate) rows: u32,
    pub(crate) outputs: u32,
    pub(crate) inputs: u32,
    pub(crate) a_mode: u32,
    pub(crate) a_stride: u32,
    pub(crate) dz_stride: u32,
    pub(crate) half: u32,
    pub(crate) t_scale: f32,
    pub(crate) split_rows: u32,
    pub(crate) pad: [u32; 3],
}

/// Keep in sync with `GradReduce` in grad_reduce.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub(crate) struct GradReduceUniform {
    pub(crate) outputs: u32,
    pub(crate) inputs: u32,
    pub(crate) splits: u32,
    pub(crate) w_offset: u32,
    pub(crate) b_offset: u32,
    pub(crate) pad: [u32; 3],
}

/// Keep in sync with `LabelEmbedGrad` in label_embed_grad.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub(crate) struct LabelEmbedGradUniform {
    pub(crate) rows: u32,
    pub(crate) hidden: u32,
    pub(crate) classes: u32,
    pub(crate) offset: u32,
}

/// Keep in sync with `GradNorm` in grad_norm.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub(crate) struct CountUniform {
    pub(crate) count: u32,
    pub(crate) pad: [u32; 3],
}

/// Keep in sync with `StepStats` in step_stats.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub(crate) struct StepStatsUniform {
    pub(crate) loss_count: u32,
    pub(crate) inv_denominator: f32,
    pub(crate) clip: f32,
    pub(crate) pad: u32,
}

/// Keep in sync with `AdamW` in adamw_ema.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub(crate) struct AdamWUniform {
    pub(crate) count: u32,
    pub(crate) beta1: f32,
    pub(crate) beta2: f32,
    pub(crate) eps: f32,
    pub(crate) ema_decay: f32,
    pub(crate) pad: [u32; 3],
}

/// Keep in sync with `Control` in shaders/common/train_step.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub(crate) struct Control {
    pub(crate) coef: f32,
    pub(crate) apply: u32,
    pub(crate) halted: u32,
    pub(crate) pad: u32,
}

// The sampler's uniforms (`sampler.rs`).

/// One ODE stage of a sampling run: the values `time_branch.wgsl` and `ode_stage.wgsl` need for
/// it. A run's stages sit in a table (one 256-byte entry each) bound with dynamic offsets. The
/// solver's arithmetic comes from `flowplay_core::sampler::Solver::tableau`: stage i evaluates
/// `k = v(t, probe)`, adds `weight·k` to the step's sum `acc`, and sets the next probe. Keep in
/// sync with `Stage` in `shaders/common/stage.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub(crate) struct StageUniform {
    /// The stage's time t (its tableau node in the step).
    pub(crate) t: f32,
    /// Preconditioning at t (QR §3.3 with EDM's wrapper): `v = skip·x + out_scale·F(t, in·x)`.
    pub(crate) skip: f32,
    /// The preconditioning's output scale at t.
    pub(crate) out_scale: f32,
    /// The preconditioning's input scale at the *next* stage's time: the probe written for the
    /// next network pass is scaled by it.
    pub(crate) next_in: f32,
    /// `KIND_*` flags: first/last stage of a step, the run's final position, an evaluation-only
    /// stage, whether a next stage follows, the set-up stage.
    pub(crate) kind: u32,
    /// The recorded frame this stage belongs to (the step's index).
    pub(crate) frame: u32,
    /// Frames recorded per particle (steps + 1).
    pub(crate) frames: u32,
    /// `RECORD_*` flags: positions, predicted endpoints, velocities.
    pub(crate) record: u32,
    /// The last stage's step multiplier `Δt / divisor` (the tableau's `step_scale`).
    pub(crate) w: f32,
    /// The step from x to the next stage's probe: `a_{i+1}·Δt` (next probe = x + hp·k).
    pub(crate) hp: f32,
    /// Classifier-free guidance scale w (QR §7.2), used when a particle has two rows.
    pub(crate) cfg_scale: f32,
    /// Network rows per particle: 1, or 2 with guidance (conditional, then null-label rows).
    pub(crate) rpp: u32,
    /// The path's coefficients at t: `x_t = ca·x₀ + cb·x₁` with derivatives `cda`, `cdb`, for the
    /// predicted endpoint x̂ (set on a step's first stage).
    pub(crate) ca: f32,
    /// See `ca`.
    pub(crate) cb: f32,
    /// See `ca`.
    pub(crate) cda: f32,
    /// See `ca`.
    pub(crate) cdb: f32,
    /// The network sees `t_scale·t` (1, or 1000 as in TRELLIS).
    pub(crate) t_scale: f32,
    /// Half the time embedding's size.
    pub(crate) half: u32,
    /// Hidden width h.
    pub(crate) hidden: u32,
    /// Rows of per-class time-branch values (1, or classes + 1 for a conditional network).
    pub(crate) crows: u32,
    /// Offsets (in f32s) of `t_embed.1.weight`, `t_embed.1.bias`, `t_embed.3.weight`,
    /// `t_embed.3.bias`, `net.0.weight` and `net.0.bias` in the parameter buffer.
    pub(crate) w1: u32,
    /// See `w1`.
    pub(crate) b1: u32,
    /// See `w1`.
    pub(crate) w3: u32,
    /// See `w1`.
    pub(crate) b3: u32,
    /// See `w1`.
    pub(crate) w0: u32,
    /// See `w1`.
    pub(crate) b0: u32,
    /// Whether the time branch adds the per-class label rows (a conditional network).
    pub(crate) has_label_rows: u32,
    /// The stage's tableau weight: `acc += weight·k`.
    pub(crate) weight: f32,
    /// The preconditioning's input scale at t itself (the likelihood's divergence needs it).
    pub(crate) in_scale: f32,
    /// Padding to a multiple of 16 bytes.
    pub(crate) pad: [u32; 3],
}

/// Keep in sync with `Chunk` in `shaders/ode_stage.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub(crate) struct ChunkUniform {
    pub(crate) p0: u32,
    pub(crate) len: u32,
    pub(crate) rpp: u32,
    /// The first particle of the recording page the chunk lies in.
    pub(crate) rec_p0: u32,
}

/// Keep in sync with `LabelRows` in `shaders/label_rows.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub(crate) struct LabelRowsUniform {
    pub(crate) hidden: u32,
    pub(crate) crows: u32,
    pub(crate) w0: u32,
    pub(crate) embed: u32,
}

/// Keep in sync with `Histogram` in `shaders/particle_histogram.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub(crate) struct HistogramUniform {
    /// Points binned (a page's particles).
    pub(crate) n: u32,
    /// Bins across and up.
    pub(crate) nx: u32,
    /// See `nx`.
    pub(crate) ny: u32,
    /// Frames recorded per particle (1: current positions, not trajectories).
    pub(crate) frames: u32,
    /// The rectangle's lower-left corner, and bins per world unit on each axis.
    pub(crate) x_min: f32,
    /// See `x_min`.
    pub(crate) y_min: f32,
    /// See `x_min`.
    pub(crate) sx: f32,
    /// See `x_min`.
    pub(crate) sy: f32,
    /// Recorded trajectories are read at t: between frames k and k + 1, a fraction s along.
    pub(crate) k: u32,
    /// See `k`.
    pub(crate) s: f32,
    /// Padding to a multiple of 16 bytes.
    pub(crate) pad: [u32; 2],
}

/// Keep in sync with `Grid` in `shaders/grid_points.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub(crate) struct GridUniform {
    pub(crate) nx: u32,
    pub(crate) ny: u32,
    pub(crate) rpp: u32,
    pub(crate) chunk: u32,
    pub(crate) n: u32,
    pub(crate) pad: [u32; 3],
    pub(crate) x_min: f32,
    pub(crate) y_min: f32,
    pub(crate) dx: f32,
    pub(crate) dy: f32,
    pub(crate) input_scale: f32,
    pub(crate) pad2: [f32; 3],
}

// The likelihood's uniforms (`sampler/likelihood.rs`).

/// Keep in sync with `LinearJvp` in `shaders/linear_jvp.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub(crate) struct LinearJvpUniform {
    /// B: the chunk's network rows (the dispatch covers 3·B: rows and two tangents each).
    pub(crate) block: u32,
    /// The layer's outputs and inputs.
    pub(crate) outputs: u32,
    /// See `outputs`.
    pub(crate) inputs: u32,
    /// 1 for the first layer after net.0 (fused from the positions), 0 for later ones.
    pub(crate) first: u32,
    /// The chunk's first f32 of the network input (first layer only).
    pub(crate) a_offset: u32,
    /// The layer's weight and bias offsets.
    pub(crate) w_offset: u32,
    /// See `w_offset`.
    pub(crate) b_offset: u32,
    /// net.0.weight's offset and row stride (2 + hidden).
    pub(crate) xw_offset: u32,
    /// See `xw_offset`.
    pub(crate) xw_stride: u32,
    /// Padding to a multiple of 16 bytes.
    pub(crate) pad: [u32; 3],
}

/// The source density N(0, var·I). Keep in sync with `Prior` in `shaders/logp_stage.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub(crate) struct PriorUniform {
    /// The variance.
    pub(crate) var: f32,
    /// `−ln(2π·var)`.
    pub(crate) log_norm: f32,
    /// Padding to 16 bytes.
    pub(crate) pad: [f32; 2],
}

// The overlays' uniforms (`overlay.rs`, `sampler/views.rs`).

/// 256 colours of a colour map, straight alpha.
pub(crate) type Lut = [[f32; 4]; 256];

/// Keep in sync with `MarkDraw` in `shaders/marks_draw.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub(crate) struct MarkDrawUniform {
    /// The world point at the viewport's centre.
    pub(crate) centre: [f32; 2],
    /// Clip-space units per world unit and per pixel, x and y.
    pub(crate) clip_per_world: [f32; 2],
    /// See `clip_per_world`.
    pub(crate) clip_per_px: [f32; 2],
    /// Padding to 16 bytes.
    pub(crate) pad: [f32; 2],
}

/// Keep in sync with `Heatmap` in `shaders/heatmap_draw.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub(crate) struct HeatmapUniform {
    /// The world point at the viewport's centre, and clip units per world unit.
    pub(crate) centre: [f32; 2],
    /// See `centre`.
    pub(crate) clip_per_world: [f32; 2],
    /// The grid's lower-left corner and size in world units.
    pub(crate) rect_min: [f32; 2],
    /// See `rect_min`.
    pub(crate) rect_size: [f32; 2],
    /// Cells across and up.
    pub(crate) nx: u32,
    /// See `nx`.
    pub(crate) ny: u32,
    /// 0: u32 counts, drawn as ln(count·norm); 1: f32 values.
    pub(crate) mode: u32,
    /// Padding.
    pub(crate) pad: u32,
    /// The value range mapped to the colour map's ends.
    pub(crate) lo: f32,
    /// See `lo`.
    pub(crate) hi: f32,
    /// Counts are multiplied by this before the log.
    pub(crate) norm: f32,
    /// The layer's opacity.
    pub(crate) opacity: f32,
    /// The colour map.
    pub(crate) lut: Lut,
}

/// Keep in sync with `FieldArrows` in `shaders/field_arrows.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub(crate) struct FieldArrowsUniform {
    /// Cells across and up.
    pub(crate) nx: u32,
    /// See `nx`.
    pub(crate) ny: u32,
    /// Padding.
    pub(crate) pad: [u32; 2],
    /// The grid's lower-left corner and cell size in world units.
    pub(crate) rect_min: [f32; 2],
    /// See `rect_min`.
    pub(crate) cell: [f32; 2],
    /// Shaft width and head length in pixels.
    pub(crate) width_px: f32,
    /// See `width_px`.
    pub(crate) head_px: f32,
    /// The longest arrow's share of a cell.
    pub(crate) fill: f32,
    /// Speeds below this share of the fastest get no arrow.
    pub(crate) floor: f32,
    /// The colour map, by relative speed.
    pub(crate) lut: Lut,
}

// The particle renderer's uniform (`render.rs`).

/// The draw uniform. Keep in sync with `Draw` in `shaders/particles_draw.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct DrawUniform {
    pub(crate) centre: [f32; 2],
    pub(crate) clip_per_world: [f32; 2],
    pub(crate) clip_per_px: [f32; 2],
    pub(crate) dot_radius_px: f32,
    pub(crate) trail_half_width_px: f32,
    pub(crate) n: u32,
    pub(crate) frames: u32,
    pub(crate) k: u32,
    pub(crate) s: f32,
    pub(crate) dot_colour: [f32; 4],
    pub(crate) trail_colour: [f32; 4],
    pub(crate) endpoint_colour: [f32; 4],
    pub(crate) classes: u32,
    pub(crate) first: u32,
    pub(crate) _pad: [u32; 2],
    pub(crate) palette: [[f32; 4]; 8],
}

/// Every mirror above with the WGSL struct it mirrors and a kernel that declares it, for the
/// test that compares their sizes (`kernel::tests`).
#[cfg(test)]
pub(crate) const MIRRORS: &[(&str, crate::kernel::ShaderSource, usize)] = {
    use crate::kernel as k;
    &[
        ("PathParams", k::BATCH_DRAW, size_of::<PathUniform>()),
        (
            "LinearForward",
            k::LINEAR_FORWARD,
            size_of::<LinearForwardUniform>(),
        ),
        ("StepValues", k::BATCH_DRAW, size_of::<StepValues>()),
        ("Control", k::STEP_STATS, size_of::<Control>()),
        ("BatchDraw", k::BATCH_DRAW, size_of::<BatchDrawUniform>()),
        ("MseLoss", k::MSE_LOSS, size_of::<MseLossUniform>()),
        (
            "LinearBackwardInput",
            k::LINEAR_BACKWARD_INPUT,
            size_of::<BackwardInputUniform>(),
        ),
        (
            "LinearBackwardWeight",
            k::LINEAR_BACKWARD_WEIGHT,
            size_of::<BackwardWeightUniform>(),
        ),
        ("GradReduce", k::GRAD_REDUCE, size_of::<GradReduceUniform>()),
        (
            "LabelEmbedGrad",
            k::LABEL_EMBED_GRAD,
            size_of::<LabelEmbedGradUniform>(),
        ),
        ("GradNorm", k::GRAD_NORM, size_of::<CountUniform>()),
        ("StepStats", k::STEP_STATS, size_of::<StepStatsUniform>()),
        ("AdamW", k::ADAMW_EMA, size_of::<AdamWUniform>()),
        ("Stage", k::ODE_STAGE, size_of::<StageUniform>()),
        ("Chunk", k::ODE_STAGE, size_of::<ChunkUniform>()),
        ("LabelRows", k::LABEL_ROWS, size_of::<LabelRowsUniform>()),
        (
            "Histogram",
            k::PARTICLE_HISTOGRAM,
            size_of::<HistogramUniform>(),
        ),
        ("Grid", k::GRID_POINTS, size_of::<GridUniform>()),
        ("Draw", k::PARTICLES_DRAW, size_of::<DrawUniform>()),
        ("LinearJvp", k::LINEAR_JVP, size_of::<LinearJvpUniform>()),
        ("MarkDraw", k::MARKS_DRAW, size_of::<MarkDrawUniform>()),
        ("Mark", k::MARKS_DRAW, size_of::<crate::overlay::Mark>()),
        ("Mark", k::FIELD_ARROWS, size_of::<crate::overlay::Mark>()),
        ("Heatmap", k::HEATMAP_DRAW, size_of::<HeatmapUniform>()),
        (
            "FieldArrows",
            k::FIELD_ARROWS,
            size_of::<FieldArrowsUniform>(),
        ),
        ("Prior", k::LOGP_STAGE, size_of::<PriorUniform>()),
    ]
};
