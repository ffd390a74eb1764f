//! flowplay-gpu: flow-matching training and sampling in WGSL compute shaders, through wgpu.
//!
//! Everything takes a `wgpu::Device` and `Queue` it did not create (the app hands over egui's;
//! [`GpuContext`] makes one for headless use) and stays within WebGPU's default limits. Every
//! kernel (one per file in `shaders/`) is tested against the CPU reference in `flowplay-core`.
//!
//! - [`GpuTrainer`]: the training step of QR §4.4 — batch drawn on the GPU with the core's
//!   counter-based RNG, forward with the time embedding fused in, hand-written backward, global
//!   grad-norm clipping, AdamW fused with the EMA — many steps per submission, loss read back
//!   through a ring of staging buffers without blocking;
//! - [`GpuSampler`]: Euler, Heun and RK4 (with classifier-free guidance and TRELLIS's time shift)
//!   over particles in chunks, trajectories, predicted endpoints, a 2-D histogram and the
//!   velocity field on a grid;
//! - [`ParticleRenderer`]: particles, trails and predicted endpoints drawn straight from the
//!   sampler's buffers by a render pipeline;
//! - [`overlay`]: marks (dots, segments, arrows — the field's come straight from a kernel) and
//!   heat maps (density, likelihood) drawn by render pipelines, and the colour maps.

pub mod buffers;
mod context;
mod error;
pub mod kernel;
mod layout;
pub mod overlay;
mod render;
mod sampler;
mod trainer;
mod uniforms;

#[cfg(not(target_arch = "wasm32"))]
pub use context::quiet_device_select;
pub use context::{
    GpuContext, REQUIRE_GPU_ENV, check_compute_limits, gpu_required, required_limits,
};
pub use error::GpuError;
pub use render::{DrawFrame, ParticleRenderer, ParticleSource, Rgba, SourcePage, segment_at};
pub use sampler::{ArrowStyle, FieldGrid, GpuSampler, HistogramBins, RecordedPage, Rect};
pub use trainer::{GpuTrainer, Inspection, MAX_STEPS_PER_SUBMIT};
