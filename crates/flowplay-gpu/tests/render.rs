//! The particle render pipeline, drawn offscreen and read back: each particle appears where the
//! CPU's interpolation of its trajectory puts it, trails follow the recorded path up to t, and
//! predicted endpoints are drawn where recorded; a run split into pages draws the same picture.

#[allow(
    unreachable_pub,
    reason = "this test uses only the shared device of the shared test module"
)]
mod common;

use common::gpu;

use flowplay_core::mlp::{Mlp, MlpConfig};
use flowplay_core::path::Path;
use flowplay_core::sampler::{Record, SamplerConfig, Solver};
use flowplay_gpu::{
    DrawFrame, GpuSampler, ParticleRenderer, ParticleSource, Rgba, SourcePage, segment_at,
};
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
    Some(common::render_offscreen(
        gpu,
        FORMAT,
        [WIDTH, HEIGHT],
        |pass| renderer.paint(pass, 0),
    ))
}

/// A source of `paths` (one trajectory per particle over `times`), uploaded as the sampler lays
/// them out in one page; endpoints likewise.
fn source(
    paths: &[Vec<[f32; 2]>],
    endpoints: Option<&[Vec<[f32; 2]>]>,
    times: &[f32],
) -> ParticleSource {
    paged_source(paths, endpoints, times, paths.len().max(1))
}

/// [`source`] split into pages of `page` particles.
fn paged_source(
    paths: &[Vec<[f32; 2]>],
    endpoints: Option<&[Vec<[f32; 2]>]>,
    times: &[f32],
    page: usize,
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
    let pages = (0..paths.len())
        .step_by(page)
        .map(|first| {
            let range = first..paths.len().min(first + page);
            SourcePage {
                first,
                len: range.len(),
                positions: upload(paths[range.clone()].concat()),
                endpoints: endpoints.map(|e| upload(e[range].concat())),
            }
        })
        .collect();
    ParticleSource {
        pages,
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
        dots: true,
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
    // Trails without the particles: the trail stays, the dots go.
    f.dots = false;
    let without = render(&src, &f).expect("a GPU");
    assert_eq!(at(&without, mid), pixel, "the trail is still drawn");
    for path in &paths {
        let now = pixel_of(&f, lerp(path[1], path[2], 0.3));
        assert!(!is(at(&without, now), DOT), "no dot at {now:?}");
    }
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
    src.pages[0].len = 1000;
    let pixels = render(&src, &frame(0.5)).expect("a GPU");
    assert!(pixels.iter().all(|&p| p == BACKGROUND));
}

/// One trajectory (or list of endpoints) per particle.
type Paths = Vec<Vec<[f32; 2]>>;

/// Many particles on a spiral, with endpoints, so that pages and classes overlap on screen.
fn spiral(n: usize, times: &[f32]) -> (Paths, Paths) {
    let paths = (0..n)
        .map(|i| {
            let a = i as f32 * 0.37;
            times
                .iter()
                .map(|&t| {
                    let r = 0.3 + 1.2 * t + 0.002 * i as f32;
                    [0.5 + r * (a + t).cos(), -0.25 + r * (a + t).sin()]
                })
                .collect()
        })
        .collect::<Paths>();
    let endpoints = paths.iter().map(|p| p[1..].to_vec()).collect();
    (paths, endpoints)
}

#[test]
fn a_run_split_into_pages_draws_the_same_pixels() {
    if gpu().is_none() {
        return;
    }
    let times = [0.0, 0.2, 0.5, 0.8, 1.0];
    let (paths, endpoints) = spiral(203, &times);
    let whole = source(&paths, Some(&endpoints), &times);
    let mut f = frame(0.6);
    // Trails stop inside the second page; three classes make the page's first particle count.
    f.trails_for = 90;
    f.endpoints = true;
    f.classes = 3;
    f.palette = [Rgba([1.0, 0.0, 1.0, 0.8]); 8];
    f.palette[1] = Rgba([0.2, 0.9, 0.9, 0.7]);
    f.palette[2] = Rgba(DOT);
    let expected = render(&whole, &f).expect("a GPU");
    assert!(expected.iter().filter(|&&p| p != BACKGROUND).count() > 300);
    for page in [1, 64, 67, 200] {
        let paged = paged_source(&paths, Some(&endpoints), &times, page);
        assert_eq!(paged.num_particles(), paths.len());
        let pixels = render(&paged, &f).expect("a GPU");
        let differ = pixels.iter().zip(&expected).filter(|(a, b)| a != b).count();
        assert_eq!(differ, 0, "pages of {page}: {differ} pixels differ");
    }
}

#[test]
fn the_samplers_pages_draw_what_one_page_draws() {
    let Some(gpu) = gpu() else {
        return;
    };
    let (device, queue) = (&gpu.device, &gpu.queue);
    let mlp = Mlp::new(MlpConfig {
        hidden: 16,
        depth: 2,
        t_dim: 16,
        t_scale: 1.0,
        num_classes: 0,
    })
    .expect("a small network");
    let params = mlp.init_params(7);
    let x0: Vec<[f32; 2]> = (0..301)
        .map(|i| {
            let a = i as f32 * 0.61;
            [a.cos() * (1.0 + 0.004 * i as f32), a.sin()]
        })
        .collect();
    let config = SamplerConfig::new(Solver::Heun, 5);
    let record = Record {
        positions: true,
        endpoints: true,
        velocities: false,
    };
    let mut f = frame(0.55);
    f.world_per_px = 0.06;
    f.trails_for = 150;
    f.endpoints = true;
    let mut draws = Vec::new();
    for page in [None, Some(64), Some(128)] {
        let mut sampler = GpuSampler::new(device, &mlp, Path::RECTIFIED_FLOW).expect("a sampler");
        sampler.set_params(queue, &params).expect("parameters");
        sampler.set_max_page(page);
        sampler.set_max_chunk(Some(64));
        let mut encoder = device.create_command_encoder(&Default::default());
        sampler
            .encode_sample(
                device,
                queue,
                &mut encoder,
                &x0,
                &common::request(&x0, None, 1.0, &config, record),
            )
            .expect("a run");
        queue.submit([encoder.finish()]);
        let src = ParticleSource::from_sampler(&sampler);
        let expected_pages = page.map_or(1, |p| x0.len().div_ceil(p));
        assert_eq!(src.pages.len(), expected_pages, "pages of {page:?}");
        assert_eq!(src.num_particles(), x0.len());
        draws.push(render(&src, &f).expect("a GPU"));
    }
    assert!(draws[0].iter().filter(|&&p| p != BACKGROUND).count() > 300);
    for (i, pixels) in draws.iter().enumerate().skip(1) {
        let differ = pixels.iter().zip(&draws[0]).filter(|(a, b)| a != b).count();
        assert_eq!(differ, 0, "draw {i}: {differ} pixels differ from one page");
    }
}
