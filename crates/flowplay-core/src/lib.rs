//! flowplay-core: flow matching in pure Rust — the reference everything else is checked against.
//!
//! Follows the Flow Matching Quick Reference (QR; `shared/seeds/003_…`) and the TRELLIS flow
//! Euler sampler (`shared/seeds/000_…`):
//!
//! - [`data`]: seeded 2-D datasets and user points;
//! - [`path`]: rectified flow (optionally TRELLIS's σ_min), VP-cosine and VE paths, EDM
//!   preconditioning for VE, uniform and logit-normal time sampling;
//! - [`mlp`]: the QR's `VectorFieldMLP` with a hand-written backward pass;
//! - [`optim`]: AdamW, gradient clipping and EMA with PyTorch's semantics;
//! - [`sampler`]: Euler, Heun, RK4 from one Butcher tableau each, the TRELLIS sampler,
//!   classifier-free guidance;
//! - [`likelihood`]: the exact log density of a flow (reverse ODE with the Jacobian trace);
//! - [`batch`]: the random draws of a training step, shared with the GPU trainer;
//! - [`train`]: the CPU trainer, minibatch OT coupling and reflow;
//! - [`metrics`]: W2, sliced W2, MMD, straightness, path energy;
//! - [`sweep`]: the solver × NFE lab (W2 and NLL against the network evaluations spent);
//! - [`picture`]: points drawn from a PNG's or JPEG's darkness or brightness;
//! - [`weights`]: safetensors import and export with PyTorch's names;
//! - [`rng`]: the counter-based RNG shared with the GPU kernels.
//!
//! No GPU code and no I/O: this crate compiles for `wasm32-unknown-unknown`.

pub mod assignment;
pub mod batch;
pub mod data;
mod error;
pub mod flow;
pub mod guard;
pub mod kernels;
pub mod likelihood;
pub mod metrics;
pub mod mlp;
pub mod optim;
pub mod par;
pub mod path;
pub mod picture;
pub mod rng;
pub mod sampler;
pub mod sweep;
pub mod train;
pub mod weights;

pub use error::Error;
