//! What the canvas draws besides particles, with render pipelines: marks (dots, segments and
//! arrows, from an uploaded list or a buffer a kernel wrote, `marks_draw.wgsl`) and heat maps (a
//! grid of values straight from a kernel's buffer, `heatmap_draw.wgsl`), and the colour maps both
//! they and the CPU fallback use. The app calls them from `egui_wgpu` paint callbacks; tests
//! render offscreen.

use std::num::NonZeroU64;

use bytemuck::{Pod, Zeroable};

use crate::kernel::{HEATMAP_DRAW, MARKS_DRAW, ShaderSource, Slot};
use crate::uniforms::{HeatmapUniform, Lut, MarkDrawUniform};
use crate::{Rect, Rgba};

/// One mark in world coordinates, with its size in pixels. Keep in sync with `Mark` in
/// `shaders/marks_draw.wgsl` and `shaders/field_arrows.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Mark {
    /// A dot's centre; a segment's or arrow's start.
    pub a: [f32; 2],
    /// A segment's or arrow's end.
    pub b: [f32; 2],
    /// Straight-alpha colour.
    pub colour: [f32; 4],
    /// A dot's radius, or a line's width, in pixels.
    pub width_px: f32,
    /// An arrow head's length in pixels.
    pub head_px: f32,
    /// 0 dot, 1 segment, 2 arrow.
    pub kind: u32,
    /// Padding to 48 bytes.
    pub pad: u32,
}

/// What a [`Mark`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkKind {
    /// A disc at `a`.
    Dot,
    /// A line from `a` to `b`.
    Segment,
    /// A line from `a` to `b` with a head at `b`.
    Arrow,
}

impl Mark {
    /// A dot of `radius_px` at `p`.
    pub fn dot(p: [f32; 2], radius_px: f32, colour: Rgba) -> Self {
        Self {
            a: p,
            b: p,
            colour: colour.0,
            width_px: radius_px,
            head_px: 0.0,
            kind: 0,
            pad: 0,
        }
    }

    /// A line from `a` to `b`, `width_px` wide.
    pub fn segment(a: [f32; 2], b: [f32; 2], width_px: f32, colour: Rgba) -> Self {
        Self {
            a,
            b,
            colour: colour.0,
            width_px,
            head_px: 0.0,
            kind: 1,
            pad: 0,
        }
    }

    /// An arrow from `a` to `b` with a head of `head_px`.
    pub fn arrow(a: [f32; 2], b: [f32; 2], width_px: f32, head_px: f32, colour: Rgba) -> Self {
        Self {
            kind: 2,
            head_px,
            ..Self::segment(a, b, width_px, colour)
        }
    }

    /// Its kind.
    pub fn kind(&self) -> MarkKind {
        match self.kind {
            0 => MarkKind::Dot,
            1 => MarkKind::Segment,
            _ => MarkKind::Arrow,
        }
    }
}

/// A colour map: piecewise linear in sRGB between anchor colours at even spacing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColourMap {
    /// Black through purple and orange to pale yellow (matplotlib's inferno, five anchors): for
    /// densities on the dark canvas.
    Inferno,
    /// Purple through blue and green to yellow (viridis, five anchors): for log-likelihoods.
    Viridis,
    /// Dim blue to bright yellow: for speeds.
    Speed,
}

impl ColourMap {
    fn anchors(self) -> &'static [[u8; 3]] {
        match self {
            Self::Inferno => &[
                [0, 0, 4],
                [87, 16, 110],
                [188, 55, 84],
                [249, 142, 9],
                [252, 255, 164],
            ],
            Self::Viridis => &[
                [68, 1, 84],
                [59, 82, 139],
                [33, 145, 140],
                [94, 201, 98],
                [253, 231, 37],
            ],
            Self::Speed => &[
                [60, 90, 160],
                [70, 170, 200],
                [150, 220, 120],
                [255, 230, 80],
            ],
        }
    }

    /// The colour at `x` in [0, 1] (clamped), opaque.
    pub fn at(self, x: f32) -> Rgba {
        let anchors = self.anchors();
        let x = if x.is_finite() {
            x.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let pos = x * (anchors.len() - 1) as f32;
        let i = (pos as usize).min(anchors.len() - 2);
        let f = pos - i as f32;
        let (a, b) = (anchors[i], anchors[i + 1]);
        let channel =
            |k: usize| (f32::from(a[k]) + f * (f32::from(b[k]) - f32::from(a[k]))) / 255.0;
        Rgba([channel(0), channel(1), channel(2), 1.0])
    }

    /// 256 samples, as the shaders take it.
    pub(crate) fn lut(self) -> Lut {
        std::array::from_fn(|i| self.at(i as f32 / 255.0).0)
    }
}

/// The part of the plane a canvas shows, and its size in pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ViewFrame {
    /// The world point at the viewport's centre.
    pub centre: [f32; 2],
    /// World units per pixel (the same on both axes).
    pub world_per_px: f32,
    /// The viewport's size in pixels.
    pub viewport_px: [f32; 2],
}

impl ViewFrame {
    fn clip_per_px(&self) -> [f32; 2] {
        [2.0 / self.viewport_px[0], 2.0 / self.viewport_px[1]]
    }

    fn clip_per_world(&self) -> [f32; 2] {
        let [x, y] = self.clip_per_px();
        [x / self.world_per_px, y / self.world_per_px]
    }
}

fn module(device: &wgpu::Device, shader: &ShaderSource) -> wgpu::ShaderModule {
    device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(shader.file),
        source: wgpu::ShaderSource::Wgsl(shader.assemble().into()),
    })
}

/// The bind-group layout of a render shader from its declared slots: storage for the vertex
/// and fragment stages, uniforms likewise.
fn render_layout(device: &wgpu::Device, shader: &ShaderSource) -> wgpu::BindGroupLayout {
    let entries: Vec<wgpu::BindGroupLayoutEntry> = shader
        .slots
        .iter()
        .enumerate()
        .map(|(binding, slot)| wgpu::BindGroupLayoutEntry {
            binding: binding as u32,
            visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
            ty: wgpu::BindingType::Buffer {
                ty: match slot {
                    Slot::Uniform(_) | Slot::Dynamic(_) => wgpu::BufferBindingType::Uniform,
                    Slot::Read | Slot::Write => wgpu::BufferBindingType::Storage {
                        read_only: *slot == Slot::Read,
                    },
                },
                has_dynamic_offset: false,
                // Storage arrays are checked against the draw instead (their element sizes differ).
                min_binding_size: match slot {
                    Slot::Uniform(size) | Slot::Dynamic(size) => NonZeroU64::new(*size),
                    _ => None,
                },
            },
            count: None,
        })
        .collect();
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(shader.file),
        entries: &entries,
    })
}

fn render_pipeline(
    device: &wgpu::Device,
    shader: &ShaderSource,
    layout: &wgpu::BindGroupLayout,
    format: wgpu::TextureFormat,
    (vs, fs): (&str, &str),
) -> wgpu::RenderPipeline {
    let module = module(device, shader);
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(shader.file),
        bind_group_layouts: &[Some(layout)],
        immediate_size: 0,
    });
    device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some(shader.file),
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
}

/// Where a layer's marks come from.
#[derive(Clone, Copy, Debug)]
pub enum MarkSource<'a> {
    /// Marks made on the CPU, uploaded into the layer's own buffer when they change.
    Upload(&'a [Mark]),
    /// Marks a kernel wrote (`count` of them at the start of `buffer`).
    Buffer {
        /// The marks.
        buffer: &'a wgpu::Buffer,
        /// How many.
        count: u32,
    },
}

/// One layer's marks as last prepared.
#[derive(Debug)]
struct MarkLayer {
    uniform: wgpu::Buffer,
    /// The layer's own buffer for uploaded marks.
    own: Option<wgpu::Buffer>,
    /// What was last uploaded, to skip unchanged uploads.
    uploaded: Vec<Mark>,
    bind_group: Option<wgpu::BindGroup>,
    /// The buffer bound (own or a kernel's), to rebind only when it changes.
    bound: Option<wgpu::Buffer>,
    count: u32,
}

/// The marks pipeline, and any number of layers (a layer per canvas and kind of mark).
#[derive(Debug)]
pub struct MarkRenderer {
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::RenderPipeline,
    layers: Vec<MarkLayer>,
}

impl MarkRenderer {
    /// Compiles the pipeline for a colour target of `format` (premultiplied alpha, as egui).
    pub fn new(device: &wgpu::Device, format: wgpu::TextureFormat) -> Self {
        let layout = render_layout(device, &MARKS_DRAW);
        let pipeline =
            render_pipeline(device, &MARKS_DRAW, &layout, format, ("vs_mark", "fs_mark"));
        Self {
            layout,
            pipeline,
            layers: Vec::new(),
        }
    }

    /// Prepares layer `layer` (created on first use) to draw `marks` in `frame`. Call before the
    /// render pass, then [`Self::paint`] inside it.
    pub fn prepare(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        layer: usize,
        marks: MarkSource<'_>,
        frame: &ViewFrame,
    ) {
        while self.layers.len() <= layer {
            self.layers.push(MarkLayer {
                uniform: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("flowplay::marks_draw::uniform"),
                    size: size_of::<MarkDrawUniform>() as u64,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
                own: None,
                uploaded: Vec::new(),
                bind_group: None,
                bound: None,
                count: 0,
            });
        }
        let slot = &mut self.layers[layer];
        let uniform = MarkDrawUniform {
            centre: frame.centre,
            clip_per_world: frame.clip_per_world(),
            clip_per_px: frame.clip_per_px(),
            pad: [0.0; 2],
        };
        queue.write_buffer(&slot.uniform, 0, bytemuck::bytes_of(&uniform));
        let (buffer, count) = match marks {
            MarkSource::Upload(list) => {
                let bytes = (list.len().max(1) * size_of::<Mark>()) as u64;
                if slot.own.as_ref().is_none_or(|b| b.size() < bytes) {
                    slot.own = Some(device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("flowplay::marks_draw::marks"),
                        size: bytes.next_power_of_two(),
                        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    }));
                    slot.uploaded.clear();
                }
                let Some(own) = slot.own.clone() else {
                    return;
                };
                if slot.uploaded != list {
                    queue.write_buffer(&own, 0, bytemuck::cast_slice(list));
                    slot.uploaded = list.to_vec();
                }
                (own, list.len() as u32)
            }
            MarkSource::Buffer { buffer, count } => {
                let fits = u64::from(count) * size_of::<Mark>() as u64 <= buffer.size();
                (buffer.clone(), if fits { count } else { 0 })
            }
        };
        if slot.bound.as_ref() != Some(&buffer) {
            slot.bind_group = Some(device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("flowplay::marks_draw::bind_group"),
                layout: &self.layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: buffer.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: slot.uniform.as_entire_binding(),
                    },
                ],
            }));
            slot.bound = Some(buffer);
        }
        slot.count = count;
    }

    /// Draws layer `layer` as last prepared.
    pub fn paint(&self, pass: &mut wgpu::RenderPass<'_>, layer: usize) {
        let Some(slot) = self.layers.get(layer) else {
            return;
        };
        let Some(bind_group) = slot.bind_group.as_ref().filter(|_| slot.count > 0) else {
            return;
        };
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, bind_group, &[]);
        pass.draw(0..9, 0..slot.count);
    }
}

/// How a heat map's values become colours.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HeatValues {
    /// u32 counts, drawn as `ln(count·norm)` (a log density for `norm` = 1/(points·cell area));
    /// empty cells are left out.
    Counts {
        /// The factor before the log.
        norm: f32,
    },
    /// f32 values drawn as they are (e.g. log p₁).
    Values,
}

/// A heat map to draw: an `nx × ny` grid over `rect`, its values in `values`.
#[derive(Clone, Debug)]
pub struct HeatmapSource {
    /// The values, `[ny, nx]` (u32 counts or f32).
    pub values: wgpu::Buffer,
    /// The region.
    pub rect: Rect,
    /// Cells across.
    pub nx: u32,
    /// Cells up.
    pub ny: u32,
    /// How values become colours.
    pub kind: HeatValues,
    /// The value range spanning the colour map (below `lo` fades out).
    pub range: [f32; 2],
    /// The colour map.
    pub colours: ColourMap,
    /// Opacity.
    pub opacity: f32,
}

#[derive(Debug)]
struct HeatLayer {
    uniform: wgpu::Buffer,
    bind_group: Option<wgpu::BindGroup>,
    bound: Option<wgpu::Buffer>,
    ready: bool,
}

/// The heat-map pipeline, and any number of layers.
#[derive(Debug)]
pub struct HeatmapRenderer {
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::RenderPipeline,
    layers: Vec<HeatLayer>,
}

impl HeatmapRenderer {
    /// Compiles the pipeline for a colour target of `format`.
    pub fn new(device: &wgpu::Device, format: wgpu::TextureFormat) -> Self {
        let layout = render_layout(device, &HEATMAP_DRAW);
        let pipeline = render_pipeline(
            device,
            &HEATMAP_DRAW,
            &layout,
            format,
            ("vs_heat", "fs_heat"),
        );
        Self {
            layout,
            pipeline,
            layers: Vec::new(),
        }
    }

    /// Prepares layer `layer` to draw `map` in `frame`.
    pub fn prepare(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        layer: usize,
        map: &HeatmapSource,
        frame: &ViewFrame,
    ) {
        while self.layers.len() <= layer {
            self.layers.push(HeatLayer {
                uniform: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("flowplay::heatmap_draw::uniform"),
                    size: size_of::<HeatmapUniform>() as u64,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
                bind_group: None,
                bound: None,
                ready: false,
            });
        }
        let slot = &mut self.layers[layer];
        let cells = u64::from(map.nx) * u64::from(map.ny);
        slot.ready = cells > 0 && cells * 4 <= map.values.size();
        if !slot.ready {
            return;
        }
        let (mode, norm) = match map.kind {
            HeatValues::Counts { norm } => (0, norm),
            HeatValues::Values => (1, 1.0),
        };
        let uniform = HeatmapUniform {
            centre: frame.centre,
            clip_per_world: frame.clip_per_world(),
            rect_min: map.rect.min,
            rect_size: [
                map.rect.max[0] - map.rect.min[0],
                map.rect.max[1] - map.rect.min[1],
            ],
            nx: map.nx,
            ny: map.ny,
            mode,
            pad: 0,
            lo: map.range[0],
            hi: map.range[1],
            norm,
            opacity: map.opacity,
            lut: map.colours.lut(),
        };
        queue.write_buffer(&slot.uniform, 0, bytemuck::bytes_of(&uniform));
        if slot.bound.as_ref() != Some(&map.values) {
            slot.bind_group = Some(device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("flowplay::heatmap_draw::bind_group"),
                layout: &self.layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: map.values.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: slot.uniform.as_entire_binding(),
                    },
                ],
            }));
            slot.bound = Some(map.values.clone());
        }
    }

    /// Draws layer `layer` as last prepared.
    pub fn paint(&self, pass: &mut wgpu::RenderPass<'_>, layer: usize) {
        let Some(slot) = self.layers.get(layer).filter(|s| s.ready) else {
            return;
        };
        let Some(bind_group) = &slot.bind_group else {
            return;
        };
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, bind_group, &[]);
        pass.draw(0..6, 0..1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(
        clippy::float_cmp,
        reason = "the table holds the very values `at` returns"
    )]
    fn colour_maps_run_from_their_first_to_their_last_anchor() {
        for map in [ColourMap::Inferno, ColourMap::Viridis, ColourMap::Speed] {
            let first = map.anchors()[0].map(|c| f32::from(c) / 255.0);
            let last = map.anchors()[map.anchors().len() - 1].map(|c| f32::from(c) / 255.0);
            assert_eq!(&map.at(0.0).0[..3], &first);
            assert_eq!(&map.at(1.0).0[..3], &last);
            assert_eq!(map.at(-1.0), map.at(0.0));
            assert_eq!(map.at(f32::NAN), map.at(0.0));
            let lut = map.lut();
            assert_eq!(lut[0], map.at(0.0).0);
            assert_eq!(lut[255], map.at(1.0).0);
        }
        // Inferno brightens monotonically (it is made to).
        let luma = |c: Rgba| 0.2126 * c.0[0] + 0.7152 * c.0[1] + 0.0722 * c.0[2];
        for i in 0..20 {
            let (a, b) = (i as f32 / 20.0, (i + 1) as f32 / 20.0);
            assert!(luma(ColourMap::Inferno.at(b)) > luma(ColourMap::Inferno.at(a)));
        }
    }
}
