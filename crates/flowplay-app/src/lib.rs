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
mod files;
mod formulas;
mod keys;
mod layers;
mod lessons;
mod media;
mod paint;
mod panels;
mod settings;
mod view;
mod web;

pub use app::PlaygroundApp;

/// The URL-state parser on its own (for the fuzz harness and for tools that write links): the
/// default settings changed by `query` (a page's `#…` hash), written back as a full query, or the
/// one message the page would show.
pub fn normalise_query(query: &str) -> Result<String, String> {
    settings::Settings::default()
        .with_query(query)
        .map(|(settings, _)| settings.to_query())
}
