//! The particle render pipeline, drawn offscreen and read back: each particle appears where the
//! CPU's interpolation of its trajectory puts it, trails follow the recorded path up to t, and
//! predicted endpoints are drawn where recorded.

#[allow(
    unreachable_pub,
    reason = "this test uses only the shared device of the shared test module"
)]
mod common;

use common::gpu;

use flowplay_gpu::{DrawFrame, ParticleRenderer, ParticleSource, Rgba, segment_at};
use wgpu::util::DeviceExt;

const FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;
/// Odd sizes, so that rows need padding and the centre is not on a pixel edge.
const WIDTH: u32 = 97;
const HEIGHT: u32 = 71;
const DOT: [f32; 4] = [1.0, 0.5, 0.0, 1.0];
const TRAIL: [f32; 4] = [0.0, 1.0, 0.0, 1.0];
const ENDPOINT: [f32; 4] = [0.0, 0.0, 1.0, 1.0];
/// The cleared target: opaque black.
const BACKGROUND: [u8; 4] = [0, 0, 0, 255];

/// Renders `source` as `frame` says into a cleared texture; returns RGBA rows.
fn render(source: &ParticleSource, frame: &DrawFrame) -> Option<Vec<[u8; 4]>> {
    let gpu = gpu()?;
    let (device, queue) = (&gpu.device, &gpu.queue);
    let mut renderer = ParticleRenderer::new(device, FORMAT);
    renderer.prepare(device, queue, 0, source, frame);
    let texture = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("render test target"),
        size: wgpu::Extent3d {
            width: WIDTH,
            height: HEIGHT,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: FORMAT,
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
        renderer.paint(&mut pass, 0);
    }
    let row = (WIDTH * 4).next_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT);
    let out = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("render test readback"),
        size: u64::from(row * HEIGHT),
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
    let mut pixels = Vec::with_capacity((WIDTH * HEIGHT) as usize);
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            let at = (y * row + x * 4) as usize;
            pixels.push([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        }
    }
    Some(pixels)
}

/// A source of `paths` (one trajectory per particle over `times`), uploaded as the sampler lays
/// them out; endpoints likewise.
fn source(
    paths: &[Vec<[f32; 2]>],
    endpoints: Option<&[Vec<[f32; 2]>]>,
    times: &[f32],
) -> ParticleSource {
    let gpu = gpu().expect("checked by the caller");
    let upload = |points: Vec<[f32; 2]>| {
        gpu.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("render test trajectories"),
                contents: bytemuck::cast_slice(&points),
                usage: wgpu::BufferUsages::STORAGE,
            })
    };
    ParticleSource {
        positions: upload(paths.concat()),
        endpoints: endpoints.map(|e| upload(e.concat())),
        n: paths.len(),
        times: times.to_vec(),
    }
}

fn frame(t: f32) -> DrawFrame {
    DrawFrame {
        centre: [0.5, -0.25],
        world_per_px: 0.05,
        viewport_px: [WIDTH as f32, HEIGHT as f32],
        t,
        trails_for: 0,
        endpoints: false,
        dot_radius_px: 2.5,
        dot_colour: Rgba(DOT),
        trail_colour: Rgba(TRAIL),
        endpoint_colour: Rgba(ENDPOINT),
        classes: 0,
        palette: [Rgba([0.0; 4]); 8],
    }
}

/// The pixel under world point `p`.
fn pixel_of(frame: &DrawFrame, p: [f32; 2]) -> (u32, u32) {
    let x = WIDTH as f32 / 2.0 + (p[0] - frame.centre[0]) / frame.world_per_px;
    let y = HEIGHT as f32 / 2.0 - (p[1] - frame.centre[1]) / frame.world_per_px;
    (x.floor() as u32, y.floor() as u32)
}

fn at(pixels: &[[u8; 4]], (x, y): (u32, u32)) -> [u8; 4] {
    pixels[(y * WIDTH + x) as usize]
}

fn is(pixel: [u8; 4], colour: [f32; 4]) -> bool {
    pixel
        .iter()
        .zip(colour)
        .take(3)
        .all(|(&p, c)| (f32::from(p) - 255.0 * c).abs() <= 2.0)
}

fn lerp(a: [f32; 2], b: [f32; 2], s: f32) -> [f32; 2] {
    [a[0] + s * (b[0] - a[0]), a[1] + s * (b[1] - a[1])]
}

fn three_particles() -> (Vec<Vec<[f32; 2]>>, Vec<f32>) {
    let times = vec![0.0, 0.3, 1.0];
    let paths = vec![
        vec![[-1.0, -1.0], [0.0, -1.0], [1.5, 0.5]],
        vec![[1.0, 0.8], [1.2, 0.2], [1.4, -0.4]],
        vec![[-1.5, 1.0], [-1.0, 0.9], [-0.5, 0.6]],
    ];
    (paths, times)
}

#[test]
fn particles_are_drawn_where_their_trajectories_are_at_t() {
    let (paths, times) = three_particles();
    if gpu().is_none() {
        return;
    }
    let src = source(&paths, None, &times);
    for t in [0.0, 0.15, 0.3, 0.65, 1.0] {
        let frame = frame(t);
        let pixels = render(&src, &frame).expect("a GPU");
        let (k, s) = segment_at(&times, t);
        for (i, path) in paths.iter().enumerate() {
            let p = lerp(path[k], path[k + 1], s);
            let pixel = at(&pixels, pixel_of(&frame, p));
            assert!(
                is(pixel, DOT),
                "particle {i} at t = {t}: expected the dot colour at {p:?}, got {pixel:?}"
            );
        }
        let drawn = pixels.iter().filter(|&&p| p[0] > 0).count();
        // Three discs of radius 2.5 px: about 20 pixels each (edges partly covered).
        assert!((30..=120).contains(&drawn), "t = {t}: {drawn} dot pixels");
        assert!(
            is(pixels[0], [0.0; 4]),
            "the corner stays background: {:?}",
            pixels[0]
        );
    }
}

#[test]
fn trails_follow_the_path_up_to_t_and_endpoints_are_drawn() {
    let (paths, times) = three_particles();
    if gpu().is_none() {
        return;
    }
    let endpoints: Vec<Vec<[f32; 2]>> = vec![
        vec![[2.0, 1.0], [1.6, 0.6]],
        vec![[1.3, -1.0], [1.5, -0.8]],
        vec![[-0.2, 0.2], [-0.4, 0.5]],
    ];
    let src = source(&paths, Some(&endpoints), &times);
    let mut f = frame(0.65);
    f.trails_for = usize::MAX;
    f.endpoints = true;
    let pixels = render(&src, &f).expect("a GPU");
    let (k, _) = segment_at(&times, f.t);
    assert_eq!(k, 1);
    // The first particle's first segment runs along y = −1: its midpoint is trail.
    let mid = pixel_of(&f, lerp(paths[0][0], paths[0][1], 0.5));
    let pixel = at(&pixels, mid);
    assert!(
        pixel[1] > 60 && pixel[0] < 10,
        "trail at {mid:?}: {pixel:?}"
    );
    // Past t the path is not drawn: three quarters along the second segment is background.
    let ahead = pixel_of(&f, lerp(paths[0][1], paths[0][2], 0.95));
    assert_eq!(at(&pixels, ahead), BACKGROUND, "nothing ahead of t");
    for (i, e) in endpoints.iter().enumerate() {
        let pixel = at(&pixels, pixel_of(&f, e[k]));
        assert!(is(pixel, ENDPOINT), "endpoint {i}: {pixel:?}");
    }
    // With neither trails nor endpoints only the dots remain.
    let pixels = render(&src, &frame(0.65)).expect("a GPU");
    assert_eq!(at(&pixels, mid), BACKGROUND);
}

#[test]
fn class_conditional_particles_take_their_class_colour() {
    let (paths, times) = three_particles();
    if gpu().is_none() {
        return;
    }
    let src = source(&paths, None, &times);
    let mut f = frame(1.0);
    f.classes = 2;
    f.palette = [Rgba([1.0, 1.0, 1.0, 1.0]); 8];
    f.palette[0] = Rgba(DOT);
    f.palette[1] = Rgba(ENDPOINT);
    let pixels = render(&src, &f).expect("a GPU");
    // Particles 0 and 2 are class 0, particle 1 class 1.
    for (i, colour) in [(0, DOT), (1, ENDPOINT), (2, DOT)] {
        let pixel = at(&pixels, pixel_of(&f, paths[i][2]));
        assert!(is(pixel, colour), "particle {i}: {pixel:?}");
    }
}

#[test]
fn a_source_smaller_than_claimed_draws_nothing() {
    let (paths, times) = three_particles();
    if gpu().is_none() {
        return;
    }
    let mut src = source(&paths, None, &times);
    src.n = 1000;
    let pixels = render(&src, &frame(0.5)).expect("a GPU");
    assert!(pixels.iter().all(|&p| p == BACKGROUND));
}
