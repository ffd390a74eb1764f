//! The flowplay playground: pick a dataset, press Train, and watch particles flow from noise to
//! data along the ODE of the model as it trains.
//!
//! This version trains with the CPU reference (`flowplay-core`), in the browser (one thread) and
//! on the desktop; the WGSL trainer will take over where WebGPU is available.

mod app;
mod canvas;
mod settings;

pub use app::PlaygroundApp;
