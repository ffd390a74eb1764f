//! The GPU particle layer: an `egui_wgpu` paint callback that draws the sampler's trajectory
//! buffers with `flowplay_gpu::ParticleRenderer` inside egui's render pass.

use eframe::egui_wgpu::{self, CallbackResources, CallbackTrait, ScreenDescriptor};
use flowplay_gpu::{DrawFrame, ParticleRenderer, ParticleSource};

/// Registers the renderer with egui's wgpu renderer, once at start-up.
pub(crate) fn install(render_state: &egui_wgpu::RenderState) {
    let renderer = ParticleRenderer::new(&render_state.device, render_state.target_format);
    render_state
        .renderer
        .write()
        .callback_resources
        .insert(renderer);
}

/// One frame's particle drawing, in the rectangle of the canvas.
pub(crate) struct ParticlePaint {
    /// Which of the renderer's layers (one per drawing on screen).
    pub(crate) layer: usize,
    pub(crate) source: ParticleSource,
    /// The frame, with the viewport and scale in egui points (converted to pixels in prepare).
    pub(crate) frame: DrawFrame,
}

impl CallbackTrait for ParticlePaint {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        screen: &ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(renderer) = resources.get_mut::<ParticleRenderer>() else {
            return Vec::new();
        };
        let ppp = screen.pixels_per_point;
        let frame = DrawFrame {
            viewport_px: [
                (self.frame.viewport_px[0] * ppp).round().max(1.0),
                (self.frame.viewport_px[1] * ppp).round().max(1.0),
            ],
            world_per_px: self.frame.world_per_px / ppp,
            dot_radius_px: self.frame.dot_radius_px * ppp,
            ..self.frame.clone()
        };
        renderer.prepare(device, queue, self.layer, &self.source, &frame);
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        resources: &CallbackResources,
    ) {
        if let Some(renderer) = resources.get::<ParticleRenderer>() {
            renderer.paint(render_pass, self.layer);
        }
    }
}
