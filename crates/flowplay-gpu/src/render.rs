//! Drawing particles straight from the sampler's buffers with a render pipeline: no CPU round
//! trip per frame. The app calls it from an `egui_wgpu` paint callback; tests render offscreen.

use std::num::NonZeroU64;

use crate::kernel::PARTICLES_DRAW;

/// The draw uniform. Keep in sync with `Draw` in `shaders/particles_draw.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
struct DrawUniform {
    centre: [f32; 2],
    clip_per_world: [f32; 2],
    clip_per_px: [f32; 2],
    dot_radius_px: f32,
    trail_half_width_px: f32,
    n: u32,
    frames: u32,
    k: u32,
    s: f32,
    dot_colour: [f32; 4],
    trail_colour: [f32; 4],
    endpoint_colour: [f32; 4],
    classes: u32,
    _pad: [u32; 3],
    palette: [[f32; 4]; 8],
}

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

/// The buffers of one sampling run to draw from (see `GpuSampler::trajectory_buffers`).
#[derive(Clone, Debug)]
pub struct ParticleSource {
    /// Positions `[n, frames, 2]` `f32`, particle-major.
    pub positions: wgpu::Buffer,
    /// Predicted endpoints `[n, frames − 1, 2]`, if recorded.
    pub endpoints: Option<wgpu::Buffer>,
    /// Particles.
    pub n: usize,
    /// The recorded times, one per frame, increasing from 0 to 1.
    pub times: Vec<f32>,
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

/// One drawing's uniform, bind group and draw counts. Several layers (e.g. reflow rounds side
/// by side) share the pipelines.
#[derive(Debug)]
struct Layer {
    uniform: wgpu::Buffer,
    bind_group: Option<wgpu::BindGroup>,
    dots: u32,
    trail_vertices: u32,
    trails: u32,
    endpoints: u32,
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
        let storage = |binding| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::VERTEX,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only: true },
                has_dynamic_offset: false,
                min_binding_size: NonZeroU64::new(8),
            },
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("flowplay::particles_draw::bind_group_layout"),
            entries: &[
                storage(0),
                storage(1),
                wgpu::BindGroupLayoutEntry {
                    binding: 2,
                    visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: NonZeroU64::new(size_of::<DrawUniform>() as u64),
                    },
                    count: None,
                },
            ],
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
    /// writes its uniform and binds the buffers. Call before the render pass, then [`Self::paint`]
    /// inside it.
    pub fn prepare(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        layer: usize,
        source: &ParticleSource,
        frame: &DrawFrame,
    ) {
        while self.layers.len() <= layer {
            self.layers.push(Layer {
                uniform: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("flowplay::particles_draw::uniform"),
                    size: size_of::<DrawUniform>() as u64,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
                bind_group: None,
                dots: 0,
                trail_vertices: 0,
                trails: 0,
                endpoints: 0,
            });
        }
        let frames = source.times.len();
        let needed = (source.n * frames * 8) as u64;
        let slot = &mut self.layers[layer];
        if source.n == 0 || frames < 2 || source.positions.size() < needed {
            // Nothing recorded (yet): draw nothing rather than read past the buffer.
            slot.dots = 0;
            slot.trails = 0;
            slot.endpoints = 0;
            slot.bind_group = None;
            return;
        }
        let (k, s) = segment_at(&source.times, frame.t);
        let clip_per_px = [2.0 / frame.viewport_px[0], 2.0 / frame.viewport_px[1]];
        let uniform = DrawUniform {
            centre: frame.centre,
            clip_per_world: [
                clip_per_px[0] / frame.world_per_px,
                clip_per_px[1] / frame.world_per_px,
            ],
            clip_per_px,
            dot_radius_px: frame.dot_radius_px,
            trail_half_width_px: 0.5,
            n: source.n as u32,
            frames: frames as u32,
            k: k as u32,
            s,
            dot_colour: frame.dot_colour.premultiplied(),
            trail_colour: frame.trail_colour.premultiplied(),
            endpoint_colour: frame.endpoint_colour.premultiplied(),
            classes: frame.classes,
            _pad: [0; 3],
            palette: frame.palette.map(Rgba::premultiplied),
        };
        queue.write_buffer(&slot.uniform, 0, bytemuck::bytes_of(&uniform));
        let endpoints_needed = (source.n * (frames - 1) * 8) as u64;
        let endpoints = source
            .endpoints
            .as_ref()
            .filter(|e| frame.endpoints && e.size() >= endpoints_needed);
        slot.bind_group = Some(device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("flowplay::particles_draw::bind_group"),
            layout: &self.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: source.positions.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    // Any buffer of 8 bytes or more when endpoints are not drawn.
                    resource: endpoints.unwrap_or(&source.positions).as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: slot.uniform.as_entire_binding(),
                },
            ],
        }));
        slot.dots = source.n as u32;
        slot.trails = source.n.min(frame.trails_for) as u32;
        // Segments up to and including k; later ones would collapse to nothing anyway.
        slot.trail_vertices = 6 * (k as u32 + 1);
        slot.endpoints = if endpoints.is_some() {
            source.n as u32
        } else {
            0
        };
    }

    /// Draws layer `layer` as last prepared: trails, then predicted endpoints, then particles.
    pub fn paint(&self, pass: &mut wgpu::RenderPass<'_>, layer: usize) {
        let Some(slot) = self.layers.get(layer) else {
            return;
        };
        let Some(bind_group) = &slot.bind_group else {
            return;
        };
        pass.set_bind_group(0, bind_group, &[]);
        if slot.trails > 0 {
            pass.set_pipeline(&self.trails);
            pass.draw(0..slot.trail_vertices, 0..slot.trails);
        }
        if slot.endpoints > 0 {
            pass.set_pipeline(&self.endpoints);
            pass.draw(0..6, 0..slot.endpoints);
        }
        if slot.dots > 0 {
            pass.set_pipeline(&self.dots);
            pass.draw(0..6, 0..slot.dots);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uniform_matches_the_wgsl_struct_size() {
        // centre, clip_per_world, clip_per_px (3 × 8) + 2 f32 + 4 u32/f32 + 3 vec4, then
        // classes with padding to 16 bytes and 8 vec4 (WGSL's array<vec4<f32>, 8> at 112).
        assert_eq!(size_of::<DrawUniform>(), 240);
    }

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
