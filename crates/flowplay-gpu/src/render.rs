//! Drawing particles straight from the sampler's buffers with a render pipeline: no CPU round
//! trip per frame. The app calls it from an `egui_wgpu` paint callback; tests render offscreen.
//! A run recorded in several pages (more than one binding holds) is drawn with one draw per page.

use std::num::NonZeroU64;

use crate::GpuSampler;
use crate::kernel::{PARTICLES_DRAW, Slot};
use crate::uniforms::DrawUniform;

/// A colour with straight (not premultiplied) alpha, each channel in [0, 1].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rgba(pub [f32; 4]);

impl Rgba {
    fn premultiplied(self) -> [f32; 4] {
        let [r, g, b, a] = self.0;
        [r * a, g * a, b * a, a]
    }
}

/// What to draw and where: the part of the plane shown and the time.
#[derive(Clone, Debug, PartialEq)]
pub struct DrawFrame {
    /// World point at the centre of the viewport.
    pub centre: [f32; 2],
    /// World units per pixel (the same on both axes).
    pub world_per_px: f32,
    /// The viewport's size in pixels.
    pub viewport_px: [f32; 2],
    /// The time to show, in [0, 1].
    pub t: f32,
    /// Draw each particle's trail up to `t`, for at most this many particles (0: none).
    pub trails_for: usize,
    /// Draw the predicted endpoints x̂ of the current solver step (needs recorded endpoints).
    pub endpoints: bool,
    /// Draw the particles themselves (trails and endpoints can be drawn without them).
    pub dots: bool,
    /// Dot radius in pixels.
    pub dot_radius_px: f32,
    /// Colours of particles, trails and endpoints.
    pub dot_colour: Rgba,
    /// Trail colour.
    pub trail_colour: Rgba,
    /// Endpoint colour.
    pub endpoint_colour: Rgba,
    /// Class-conditional particles: particle `i` has class `i mod classes` and is drawn in
    /// `palette[class mod 8]` (0: every particle in `dot_colour`).
    pub classes: u32,
    /// Class colours.
    pub palette: [Rgba; 8],
}

/// One page of recorded trajectories: particles `first .. first + len`.
#[derive(Clone, Debug)]
pub struct SourcePage {
    /// The page's first particle (its class is `first mod classes`).
    pub first: usize,
    /// Particles in the page.
    pub len: usize,
    /// Positions `[len, frames, 2]` `f32`, particle-major.
    pub positions: wgpu::Buffer,
    /// Predicted endpoints `[len, frames − 1, 2]`, if recorded.
    pub endpoints: Option<wgpu::Buffer>,
}

/// The buffers of one sampling run to draw from (see `GpuSampler::recorded_pages`).
#[derive(Clone, Debug)]
pub struct ParticleSource {
    /// The recorded trajectories, page by page in particle order.
    pub pages: Vec<SourcePage>,
    /// The recorded times, one per frame, increasing from 0 to 1.
    pub times: Vec<f32>,
}

impl ParticleSource {
    /// The last run `sampler` finished, with its predicted endpoints if it recorded them (the
    /// buffers may hold an older run's otherwise).
    pub fn from_sampler(sampler: &GpuSampler) -> Self {
        let endpoints = sampler.recorded().endpoints;
        Self {
            pages: sampler
                .recorded_pages()
                .into_iter()
                .map(|page| SourcePage {
                    first: page.first,
                    len: page.len,
                    positions: page.positions.clone(),
                    endpoints: endpoints.then(|| page.endpoints.clone()),
                })
                .collect(),
            times: sampler.times().to_vec(),
        }
    }

    /// Particles in every page.
    pub fn num_particles(&self) -> usize {
        self.pages.iter().map(|p| p.len).sum()
    }
}

/// Where `t` lies on the time grid: segment `k` (frames `k`, `k + 1`) and the fraction `s` along
/// it, clamped to the grid.
pub fn segment_at(times: &[f32], t: f32) -> (usize, f32) {
    if times.len() < 2 {
        return (0, 0.0);
    }
    let k = times
        .windows(2)
        .position(|w| t <= w[1])
        .unwrap_or(times.len() - 2);
    let (t0, t1) = (times[k], times[k + 1]);
    let s = ((t - t0) / (t1 - t0).max(f32::EPSILON)).clamp(0.0, 1.0);
    (k, s)
}

/// One page's bind group and instance counts.
#[derive(Debug)]
struct PageDraw {
    bind_group: wgpu::BindGroup,
    dots: u32,
    trails: u32,
    endpoints: u32,
}

/// One drawing, page by page. Several layers (e.g. reflow rounds side by side) share the
/// pipelines.
#[derive(Debug, Default)]
struct Layer {
    /// One uniform buffer per page, kept for reuse.
    uniforms: Vec<wgpu::Buffer>,
    /// The pages as last prepared.
    pages: Vec<PageDraw>,
    trail_vertices: u32,
}

/// The render pipelines for particles, trails and endpoints, for one target format.
#[derive(Debug)]
pub struct ParticleRenderer {
    layout: wgpu::BindGroupLayout,
    dots: wgpu::RenderPipeline,
    trails: wgpu::RenderPipeline,
    endpoints: wgpu::RenderPipeline,
    layers: Vec<Layer>,
}

impl ParticleRenderer {
    /// Compiles the pipelines for a colour target of `format` (single-sampled, no depth), blending
    /// premultiplied alpha as egui does.
    pub fn new(device: &wgpu::Device, format: wgpu::TextureFormat) -> Self {
        let label = PARTICLES_DRAW.file;
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(PARTICLES_DRAW.assemble().into()),
        });
        // The bindings as `PARTICLES_DRAW` declares them: the trajectories for the vertex
        // stage, the draw uniform for both stages.
        let entries: Vec<wgpu::BindGroupLayoutEntry> = PARTICLES_DRAW
            .slots
            .iter()
            .enumerate()
            .map(|(binding, slot)| {
                let (visibility, ty) = match *slot {
                    Slot::Uniform(size) => (
                        wgpu::ShaderStages::VERTEX_FRAGMENT,
                        wgpu::BindingType::Buffer {
                            ty: wgpu::BufferBindingType::Uniform,
                            has_dynamic_offset: false,
                            min_binding_size: NonZeroU64::new(size),
                        },
                    ),
                    _ => (
                        wgpu::ShaderStages::VERTEX,
                        wgpu::BindingType::Buffer {
                            ty: wgpu::BufferBindingType::Storage { read_only: true },
                            has_dynamic_offset: false,
                            min_binding_size: NonZeroU64::new(8),
                        },
                    ),
                };
                wgpu::BindGroupLayoutEntry {
                    binding: binding as u32,
                    visibility,
                    ty,
                    count: None,
                }
            })
            .collect();
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("flowplay::particles_draw::bind_group_layout"),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(label),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = |vs: &str, fs: &str| {
            device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
                label: Some(label),
                layout: Some(&pipeline_layout),
                vertex: wgpu::VertexState {
                    module: &module,
                    entry_point: Some(vs),
                    compilation_options: Default::default(),
                    buffers: &[],
                },
                primitive: wgpu::PrimitiveState::default(),
                depth_stencil: None,
                multisample: wgpu::MultisampleState::default(),
                fragment: Some(wgpu::FragmentState {
                    module: &module,
                    entry_point: Some(fs),
                    compilation_options: Default::default(),
                    targets: &[Some(wgpu::ColorTargetState {
                        format,
                        blend: Some(wgpu::BlendState::PREMULTIPLIED_ALPHA_BLENDING),
                        write_mask: wgpu::ColorWrites::ALL,
                    })],
                }),
                multiview_mask: None,
                cache: None,
            })
        };
        Self {
            dots: pipeline("vs_dot", "fs_dot"),
            trails: pipeline("vs_trail", "fs_trail"),
            endpoints: pipeline("vs_endpoint", "fs_dot"),
            layout,
            layers: Vec::new(),
        }
    }

    /// Prepares layer `layer` (0, 1, …; created on first use) to draw `source` as `frame` says:
    /// writes its uniforms and binds the buffers. Call before the render pass, then
    /// [`Self::paint`] inside it.
    pub fn prepare(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        layer: usize,
        source: &ParticleSource,
        frame: &DrawFrame,
    ) {
        while self.layers.len() <= layer {
            self.layers.push(Layer::default());
        }
        let frames = source.times.len();
        let slot = &mut self.layers[layer];
        slot.pages.clear();
        let recorded = |page: &SourcePage| (page.len * frames * 8) as u64 <= page.positions.size();
        if frames < 2 || !source.pages.iter().all(recorded) {
            // Nothing recorded (yet): draw nothing rather than read past a buffer.
            return;
        }
        let (k, s) = segment_at(&source.times, frame.t);
        let clip_per_px = [2.0 / frame.viewport_px[0], 2.0 / frame.viewport_px[1]];
        let template = DrawUniform {
            centre: frame.centre,
            clip_per_world: [
                clip_per_px[0] / frame.world_per_px,
                clip_per_px[1] / frame.world_per_px,
            ],
            clip_per_px,
            dot_radius_px: frame.dot_radius_px,
            trail_half_width_px: 0.5,
            n: 0,
            frames: frames as u32,
            k: k as u32,
            s,
            dot_colour: frame.dot_colour.premultiplied(),
            trail_colour: frame.trail_colour.premultiplied(),
            endpoint_colour: frame.endpoint_colour.premultiplied(),
            classes: frame.classes,
            first: 0,
            _pad: [0; 2],
            palette: frame.palette.map(Rgba::premultiplied),
        };
        // Segments up to and including k; later ones would collapse to nothing anyway.
        slot.trail_vertices = 6 * (k as u32 + 1);
        for page in source.pages.iter().filter(|p| p.len > 0) {
            if slot.uniforms.len() <= slot.pages.len() {
                slot.uniforms
                    .push(device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("flowplay::particles_draw::uniform"),
                        size: size_of::<DrawUniform>() as u64,
                        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    }));
            }
            let uniform_buffer = &slot.uniforms[slot.pages.len()];
            let uniform = DrawUniform {
                n: page.len as u32,
                first: page.first as u32,
                ..template
            };
            queue.write_buffer(uniform_buffer, 0, bytemuck::bytes_of(&uniform));
            let endpoints_needed = (page.len * (frames - 1) * 8) as u64;
            let endpoints = page
                .endpoints
                .as_ref()
                .filter(|e| frame.endpoints && e.size() >= endpoints_needed);
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("flowplay::particles_draw::bind_group"),
                layout: &self.layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: page.positions.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        // Any buffer of 8 bytes or more when endpoints are not drawn.
                        resource: endpoints.unwrap_or(&page.positions).as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 2,
                        resource: uniform_buffer.as_entire_binding(),
                    },
                ],
            });
            slot.pages.push(PageDraw {
                bind_group,
                dots: if frame.dots { page.len as u32 } else { 0 },
                // Trails for the first `trails_for` particles of the whole run.
                trails: frame.trails_for.saturating_sub(page.first).min(page.len) as u32,
                endpoints: if endpoints.is_some() {
                    page.len as u32
                } else {
                    0
                },
            });
        }
    }

    /// Draws layer `layer` as last prepared: trails, then predicted endpoints, then particles.
    pub fn paint(&self, pass: &mut wgpu::RenderPass<'_>, layer: usize) {
        let Some(slot) = self.layers.get(layer) else {
            return;
        };
        let pages = &slot.pages;
        // Every page's trails, then every page's endpoints, then every page's dots, so that the
        // layering does not depend on where a page boundary falls.
        draw_pages(pass, &self.trails, pages, slot.trail_vertices, |d| d.trails);
        draw_pages(pass, &self.endpoints, pages, 6, |d| d.endpoints);
        draw_pages(pass, &self.dots, pages, 6, |d| d.dots);
    }
}

/// Draws `vertices` vertices for `instances(page)` instances of each page with `pipeline`.
fn draw_pages(
    pass: &mut wgpu::RenderPass<'_>,
    pipeline: &wgpu::RenderPipeline,
    pages: &[PageDraw],
    vertices: u32,
    instances: impl Fn(&PageDraw) -> u32,
) {
    let mut bound = false;
    for page in pages {
        let count = instances(page);
        if count == 0 {
            continue;
        }
        if !bound {
            pass.set_pipeline(pipeline);
            bound = true;
        }
        pass.set_bind_group(0, &page.bind_group, &[]);
        pass.draw(0..vertices, 0..count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_falls_in_the_right_segment() {
        let times = [0.0, 0.25, 0.5, 1.0];
        assert_eq!(segment_at(&times, 0.0), (0, 0.0));
        assert_eq!(segment_at(&times, 0.125), (0, 0.5));
        assert_eq!(segment_at(&times, 0.75), (2, 0.5));
        assert_eq!(segment_at(&times, 1.0), (2, 1.0));
        assert_eq!(segment_at(&times, 2.0), (2, 1.0));
        assert_eq!(segment_at(&[0.0], 0.5), (0, 0.0));
    }
}
