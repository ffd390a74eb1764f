//! Shared by the GPU tests: one device for all of them, and named tolerances.
#![allow(dead_code, reason = "each test file uses a different part")]

use std::sync::OnceLock;

use flowplay_gpu::{GpuContext, REQUIRE_GPU_ENV, gpu_required};

/// The shared device, or `None` (the test then returns early) when there is no adapter and
/// `FLOWPLAY_REQUIRE_GPU` is not set. In CI it is set: a missing adapter fails the test.
pub fn gpu() -> Option<&'static GpuContext> {
    static CONTEXT: OnceLock<Option<GpuContext>> = OnceLock::new();
    let context = CONTEXT.get_or_init(|| match GpuContext::new_blocking() {
        Ok(context) => {
            eprintln!("GPU tests run on {}", context.describe());
            Some(context)
        }
        Err(e) => {
            assert!(
                !gpu_required(),
                "{REQUIRE_GPU_ENV} is set but no GPU was found: {e}"
            );
            eprintln!("no GPU, skipping: {e}");
            None
        }
    });
    context.as_ref()
}

/// A tolerance relative to the tensor's scale: `|gpu − cpu| ≤ rel·max(|cpu|, rms(cpu)) + abs`.
/// Measuring against the RMS as well keeps entries that cancel to near zero from failing on
/// rounding noise alone.
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    /// Relative part.
    pub rel: f64,
    /// Absolute floor.
    pub abs: f64,
}

/// The forward pass: 1e-5 relative (the bound).
pub const FORWARD: Tolerance = Tolerance {
    rel: 1e-5,
    abs: 1e-7,
};
/// Gradients: 1e-4 relative.
pub const GRADIENTS: Tolerance = Tolerance {
    rel: 1e-4,
    abs: 1e-8,
};
/// Optimizer updates (parameters after one AdamW step): 1e-4 relative.
pub const OPTIMIZER: Tolerance = Tolerance {
    rel: 1e-4,
    abs: 1e-8,
};

/// Asserts `gpu` matches `cpu` within `tol`, naming the worst element.
pub fn assert_close(what: &str, gpu: &[f32], cpu: &[f32], tol: Tolerance) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths");
    let rms =
        (cpu.iter().map(|&c| f64::from(c).powi(2)).sum::<f64>() / cpu.len().max(1) as f64).sqrt();
    let mut worst = (0.0_f64, 0_usize);
    for (i, (&g, &c)) in gpu.iter().zip(cpu).enumerate() {
        let (g, c) = (f64::from(g), f64::from(c));
        let allowed = tol.rel * c.abs().max(rms) + tol.abs;
        let excess = (g - c).abs() / allowed;
        assert!(g.is_finite(), "{what}[{i}]: GPU gave {g}, CPU {c}");
        if excess > worst.0 {
            worst = (excess, i);
        }
    }
    let i = worst.1;
    assert!(
        worst.0 <= 1.0,
        "{what}[{i}]: GPU {} vs CPU {} ({:.2}× the tolerance {tol:?}, rms {rms:e})",
        gpu[i],
        cpu[i],
        worst.0
    );
}

/// The request of one sampling run of `x0`'s particles.
pub fn request(
    x0: &[[f32; 2]],
    labels: Option<&[u32]>,
    cfg_scale: f32,
    config: &flowplay_core::sampler::SamplerConfig,
    record: flowplay_core::sampler::Record,
) -> flowplay_core::flow::SampleRequest {
    flowplay_core::flow::SampleRequest::new(*config, x0.len())
        .with_labels(labels.map(<[u32]>::to_vec), cfg_scale)
        .recording(record)
}

/// Renders with `paint` into a `size` texture of `format` cleared to opaque black, and reads it
/// back: RGBA pixels, row by row from the top.
pub fn render_offscreen(
    gpu: &GpuContext,
    format: wgpu::TextureFormat,
    size: [u32; 2],
    paint: impl FnOnce(&mut wgpu::RenderPass<'_>),
) -> Vec<[u8; 4]> {
    let (device, queue) = (&gpu.device, &gpu.queue);
    let [width, height] = size;
    let texture = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("render test target"),
        size: wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    });
    let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
    {
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("render test pass"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: &view,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Clear(wgpu::Color::BLACK),
                    store: wgpu::StoreOp::Store,
                },
            })],
            depth_stencil_attachment: None,
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        });
        paint(&mut pass);
    }
    let row = (width * 4).next_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT);
    let out = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("render test readback"),
        size: u64::from(row * height),
        usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    encoder.copy_texture_to_buffer(
        texture.as_image_copy(),
        wgpu::TexelCopyBufferInfo {
            buffer: &out,
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(row),
                rows_per_image: None,
            },
        },
        texture.size(),
    );
    queue.submit([encoder.finish()]);
    let bytes = flowplay_gpu::buffers::read_blocking(device, queue, &out, 0, out.size())
        .expect("the image reads back");
    let mut pixels = Vec::with_capacity((width * height) as usize);
    for y in 0..height {
        for x in 0..width {
            let at = (y * row + x * 4) as usize;
            pixels.push([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        }
    }
    pixels
}
