//! The GPU layers' `egui_wgpu` paint callbacks: particles (`ParticleRenderer`, straight from the
//! sampler's trajectory buffers), marks (`MarkRenderer`: data, field arrows, pairs, stages) and
//! heat maps (`HeatmapRenderer`: density, likelihood), drawn inside egui's render pass.

use std::sync::Arc;

use eframe::egui_wgpu::{self, CallbackResources, CallbackTrait, ScreenDescriptor};
use flowplay_gpu::overlay::{
    HeatmapRenderer, HeatmapSource, Mark, MarkRenderer, MarkSource, ViewFrame,
};
use flowplay_gpu::{DrawFrame, ParticleRenderer, ParticleSource};

use crate::layers::PaintCx;

/// Registers the renderers with egui's wgpu renderer, once at start-up.
pub(crate) fn install(render_state: &egui_wgpu::RenderState) {
    let device = &render_state.device;
    let format = render_state.target_format;
    let mut renderer = render_state.renderer.write();
    let resources = &mut renderer.callback_resources;
    resources.insert(ParticleRenderer::new(device, format));
    resources.insert(MarkRenderer::new(device, format));
    resources.insert(HeatmapRenderer::new(device, format));
}

/// A frame in egui points, converted to the target's pixels.
fn in_pixels(frame: &ViewFrame, screen: &ScreenDescriptor) -> ViewFrame {
    let ppp = screen.pixels_per_point;
    ViewFrame {
        viewport_px: [
            (frame.viewport_px[0] * ppp).round().max(1.0),
            (frame.viewport_px[1] * ppp).round().max(1.0),
        ],
        world_per_px: frame.world_per_px / ppp,
        centre: frame.centre,
    }
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

/// Marks to draw: a list from the CPU, or a buffer a kernel wrote.
#[derive(Clone, Debug)]
pub(crate) enum MarkData {
    Upload(Arc<Vec<Mark>>),
    Buffer { buffer: wgpu::Buffer, count: u32 },
}

/// One frame's marks of one layer.
struct MarkPaint {
    slot: usize,
    data: MarkData,
    frame: ViewFrame,
}

impl CallbackTrait for MarkPaint {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        screen: &ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(renderer) = resources.get_mut::<MarkRenderer>() else {
            return Vec::new();
        };
        let frame = in_pixels(&self.frame, screen);
        let ppp = screen.pixels_per_point;
        match &self.data {
            MarkData::Upload(marks) => {
                let scaled: Vec<Mark>;
                // Their sizes are given in points.
                let marks: &[Mark] = if (ppp - 1.0).abs() > 1e-3 {
                    scaled = marks
                        .iter()
                        .map(|m| Mark {
                            width_px: m.width_px * ppp,
                            head_px: m.head_px * ppp,
                            ..*m
                        })
                        .collect();
                    &scaled
                } else {
                    marks
                };
                renderer.prepare(device, queue, self.slot, MarkSource::Upload(marks), &frame);
            }
            MarkData::Buffer { buffer, count } => renderer.prepare(
                device,
                queue,
                self.slot,
                MarkSource::Buffer {
                    buffer,
                    count: *count,
                },
                &frame,
            ),
        }
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        resources: &CallbackResources,
    ) {
        if let Some(renderer) = resources.get::<MarkRenderer>() {
            renderer.paint(render_pass, self.slot);
        }
    }
}

/// One frame's heat map of one layer.
struct HeatPaint {
    slot: usize,
    map: HeatmapSource,
    frame: ViewFrame,
}

impl CallbackTrait for HeatPaint {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        screen: &ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        if let Some(renderer) = resources.get_mut::<HeatmapRenderer>() {
            renderer.prepare(
                device,
                queue,
                self.slot,
                &self.map,
                &in_pixels(&self.frame, screen),
            );
        }
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        resources: &CallbackResources,
    ) {
        if let Some(renderer) = resources.get::<HeatmapRenderer>() {
            renderer.paint(render_pass, self.slot);
        }
    }
}

/// Draws particles with the GPU's particle renderer.
pub(crate) fn particles(cx: &PaintCx<'_>, source: ParticleSource, frame: DrawFrame) {
    cx.painter.add(egui_wgpu::Callback::new_paint_callback(
        cx.rect,
        ParticlePaint {
            layer: cx.slot,
            source,
            frame,
        },
    ));
}

/// Draws marks (sizes in points) with the GPU's marks renderer in slot `slot`.
pub(crate) fn marks(cx: &PaintCx<'_>, slot: usize, data: MarkData) {
    cx.painter.add(egui_wgpu::Callback::new_paint_callback(
        cx.rect,
        MarkPaint {
            slot,
            data,
            frame: cx.frame(),
        },
    ));
}

/// Draws a heat map with the GPU's heat-map renderer in slot `slot`.
pub(crate) fn heatmap(cx: &PaintCx<'_>, slot: usize, map: HeatmapSource) {
    cx.painter.add(egui_wgpu::Callback::new_paint_callback(
        cx.rect,
        HeatPaint {
            slot,
            map,
            frame: cx.frame(),
        },
    ));
}
