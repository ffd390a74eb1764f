//! The flowplay playground: pick a dataset, press Train, and watch particles flow from noise to
//! data along the ODE of the model as it trains.
//!
//! Training and sampling run in WGSL compute shaders (`flowplay-gpu`) on egui's own wgpu device
//! where it can run compute shaders (WebGPU, Vulkan, Metal, DX12), and the particles are drawn
//! straight from the GPU buffers by a render pipeline in a paint callback. Without GPU compute
//! (WebGL) the CPU reference (`flowplay-core`) trains instead, with everything else the same.

mod app;
#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
mod canvas;
mod command;
mod engine;
mod error;
mod layers;
mod paint;
mod panels;
mod settings;
mod web;

pub use app::PlaygroundApp;
