// Structs shared by the kernels of one training step; keep in sync with `StepValues` and
// `Control` in crates/flowplay-gpu/src/uniforms.rs.

// Per-step values, one 256-byte slot per step of a submission (bound with a dynamic offset).
struct StepValues {
    step: u32,
    slot: u32,
    lr: f32,
    step_size: f32,
    bias2_sqrt: f32,
    decay: f32,
    _pad0: u32,
    _pad1: u32,
}

// Written by step_stats.wgsl, read by adamw_ema.wgsl: the clipping factor, whether this step
// updates, and the sticky divergence flag.
struct Control {
    coef: f32,
    apply: u32,
    halted: u32,
    _pad0: u32,
}
