//! The canvas's overlays on the GPU: marks (dots, segments, arrows) and heat maps drawn offscreen
//! and read back; the field's arrows written by `field_arrows.wgsl` from the velocity grid; the
//! histogram of recorded trajectories at any t against the CPU's interpolation.

#![allow(clippy::unwrap_used, reason = "a test fails loudly")]

#[allow(unreachable_pub, reason = "shared with the other test files")]
mod common;

use flowplay_core::flow::SampleRequest;
use flowplay_core::mlp::{Mlp, MlpConfig};
use flowplay_core::path::Path;
use flowplay_core::rng::Rng;
use flowplay_core::sampler::{Record, SamplerConfig, Solver};
use flowplay_gpu::overlay::{
    ColourMap, HeatValues, HeatmapRenderer, HeatmapSource, Mark, MarkRenderer, MarkSource,
    ViewFrame,
};
use flowplay_gpu::{
    ArrowStyle, FieldGrid, GpuSampler, HistogramBins, Rect, Rgba, buffers, segment_at,
};
use wgpu::util::DeviceExt;

const FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;
const SIZE: [u32; 2] = [101, 81];

/// The view: world (0, 0) at the centre, 10 pixels a unit.
fn frame() -> ViewFrame {
    ViewFrame {
        centre: [0.0, 0.0],
        world_per_px: 0.1,
        viewport_px: [SIZE[0] as f32, SIZE[1] as f32],
    }
}

/// The pixel world point `p` falls in.
fn pixel(p: [f32; 2]) -> usize {
    let x = (SIZE[0] as f32 / 2.0 + p[0] * 10.0) as usize;
    let y = (SIZE[1] as f32 / 2.0 - p[1] * 10.0) as usize;
    y * SIZE[0] as usize + x
}

fn network(seed: u64) -> (Mlp, Vec<f32>) {
    let mlp = Mlp::new(MlpConfig {
        hidden: 19,
        depth: 2,
        t_dim: 16,
        t_scale: 1.0,
        num_classes: 0,
    })
    .unwrap();
    let mut params = mlp.init_params(seed);
    let mut rng = Rng::with_domain(seed, "perturb");
    for p in &mut params {
        *p += 0.1 * rng.normal();
    }
    (mlp, params)
}

#[test]
fn marks_are_drawn_where_and_as_they_say() {
    let Some(gpu) = common::gpu() else { return };
    let red = Rgba([1.0, 0.0, 0.0, 1.0]);
    let green = Rgba([0.0, 1.0, 0.0, 1.0]);
    let blue = Rgba([0.0, 0.0, 1.0, 1.0]);
    let marks = [
        Mark::dot([-3.0, 2.0], 4.0, red),
        Mark::segment([-4.0, -2.0], [4.0, -2.0], 3.0, green),
        Mark::arrow([0.0, 0.0], [3.0, 0.0], 2.0, 8.0, blue),
    ];
    let mut renderer = MarkRenderer::new(&gpu.device, FORMAT);
    renderer.prepare(
        &gpu.device,
        &gpu.queue,
        0,
        MarkSource::Upload(&marks),
        &frame(),
    );
    let pixels = common::render_offscreen(gpu, FORMAT, SIZE, |pass| renderer.paint(pass, 0));
    assert_eq!(
        pixels[pixel([-3.0, 2.0])],
        [255, 0, 0, 255],
        "the dot's centre"
    );
    assert_eq!(
        pixels[pixel([-3.0, 2.9])],
        [0, 0, 0, 255],
        "outside its 4 px radius"
    );
    assert_eq!(
        pixels[pixel([1.0, -2.0])],
        [0, 255, 0, 255],
        "along the segment"
    );
    assert_eq!(pixels[pixel([1.0, -2.5])], [0, 0, 0, 255], "beside it");
    assert_eq!(
        pixels[pixel([1.0, 0.0])],
        [0, 0, 255, 255],
        "the arrow's shaft"
    );
    // The head, 8 px long and as wide: beside the shaft near the tip, not at its start.
    assert_eq!(pixels[pixel([2.5, 0.25])], [0, 0, 255, 255], "the head");
    assert_eq!(
        pixels[pixel([0.5, 0.25])],
        [0, 0, 0, 255],
        "no head at the start"
    );
    // Drawn again from a kernel-style buffer: the same picture.
    let buffer = gpu
        .device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("marks"),
            contents: bytemuck::cast_slice(&marks),
            usage: wgpu::BufferUsages::STORAGE,
        });
    renderer.prepare(
        &gpu.device,
        &gpu.queue,
        1,
        MarkSource::Buffer {
            buffer: &buffer,
            count: 3,
        },
        &frame(),
    );
    let again = common::render_offscreen(gpu, FORMAT, SIZE, |pass| renderer.paint(pass, 1));
    assert_eq!(again, pixels);
}

#[test]
fn a_heat_map_colours_each_cell_and_leaves_empty_ones_out() {
    let Some(gpu) = common::gpu() else { return };
    // 2 × 2 counts over [−4, 4] × [−3, 3]: 0 (empty), 1, 10, 100.
    let counts: [u32; 4] = [0, 1, 10, 100];
    let values = gpu
        .device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("counts"),
            contents: bytemuck::cast_slice(&counts),
            usage: wgpu::BufferUsages::STORAGE,
        });
    let map = HeatmapSource {
        values,
        rect: Rect::new([-4.0, -3.0], [4.0, 3.0]),
        nx: 2,
        ny: 2,
        kind: HeatValues::Counts { norm: 1.0 },
        range: [0.0, 100f32.ln()],
        colours: ColourMap::Inferno,
        opacity: 1.0,
    };
    let mut renderer = HeatmapRenderer::new(&gpu.device, FORMAT);
    renderer.prepare(&gpu.device, &gpu.queue, 0, &map, &frame());
    let pixels = common::render_offscreen(gpu, FORMAT, SIZE, |pass| renderer.paint(pass, 0));
    let expect = |x: f32| -> [u8; 4] {
        let c = ColourMap::Inferno.at(x).0;
        [
            (c[0] * 255.0).round() as u8,
            (c[1] * 255.0).round() as u8,
            (c[2] * 255.0).round() as u8,
            255,
        ]
    };
    let close = |a: [u8; 4], b: [u8; 4]| a.iter().zip(&b).all(|(x, y)| x.abs_diff(*y) <= 2);
    assert_eq!(
        pixels[pixel([-2.0, -1.5])],
        [0, 0, 0, 255],
        "the empty cell"
    );
    // ln 1 = 0 is the bottom of the range, ln 100 the top, ln 10 the middle.
    assert!(
        close(pixels[pixel([2.0, -1.5])], expect(0.0)),
        "{:?}",
        pixels[pixel([2.0, -1.5])]
    );
    assert!(
        close(pixels[pixel([-2.0, 1.5])], expect(0.5)),
        "{:?}",
        pixels[pixel([-2.0, 1.5])]
    );
    assert!(
        close(pixels[pixel([2.0, 1.5])], expect(1.0)),
        "{:?}",
        pixels[pixel([2.0, 1.5])]
    );
    assert_eq!(
        pixels[pixel([4.5, 0.0])],
        [0, 0, 0, 255],
        "outside the rectangle"
    );
}

#[test]
fn the_field_arrows_follow_the_velocity_grid() {
    let Some(gpu) = common::gpu() else { return };
    let (mlp, params) = network(3);
    let mut sampler = GpuSampler::new(&gpu.device, &mlp, Path::RECTIFIED_FLOW).unwrap();
    sampler.set_params(&gpu.queue, &params).unwrap();
    let grid = FieldGrid {
        t: 0.4,
        rect: Rect::new([-3.0, -2.0], [3.0, 2.5]),
        nx: 13,
        ny: 7,
        label: None,
        cfg_scale: 1.0,
    };
    let style = ArrowStyle {
        width_px: 1.5,
        head_px: 5.0,
        fill: 0.9,
        floor: 0.0,
        colours: ColourMap::Speed,
    };
    let velocities = sampler
        .velocity_grid(&gpu.device, &gpu.queue, &grid)
        .unwrap();
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    sampler
        .encode_field_arrows(&gpu.device, &gpu.queue, &mut encoder, &grid, &style)
        .unwrap();
    gpu.queue.submit([encoder.finish()]);
    let n = (grid.nx * grid.ny) as usize;
    let marks: Vec<Mark> =
        buffers::read_pod(&gpu.device, &gpu.queue, sampler.arrows_buffer(), 0, n).unwrap();
    let stats: Vec<f32> =
        buffers::read_pod(&gpu.device, &gpu.queue, sampler.field_stats_buffer(), 0, 2).unwrap();
    let speeds: Vec<f32> = velocities
        .iter()
        .map(|v| (v[0] * v[0] + v[1] * v[1]).sqrt())
        .collect();
    let v_max = speeds.iter().copied().fold(0.0, f32::max);
    let mean = speeds.iter().sum::<f32>() / n as f32;
    assert!(
        (stats[0] - v_max).abs() < 1e-5 * v_max,
        "{stats:?} vs {v_max}"
    );
    assert!((stats[1] - mean).abs() < 1e-4 * mean, "{stats:?} vs {mean}");
    let cell = grid.rect.cell(grid.nx, grid.ny);
    let span = style.fill * cell[0].min(cell[1]);
    for (c, (m, v)) in marks.iter().zip(&velocities).enumerate() {
        let centre =
            grid.rect
                .cell_centre(grid.nx, grid.ny, c as u32 % grid.nx, c as u32 / grid.nx);
        let mid = [(m.a[0] + m.b[0]) / 2.0, (m.a[1] + m.b[1]) / 2.0];
        assert!((mid[0] - centre[0]).abs() < 1e-5 && (mid[1] - centre[1]).abs() < 1e-5);
        let d = [m.b[0] - m.a[0], m.b[1] - m.a[1]];
        let len = (d[0] * d[0] + d[1] * d[1]).sqrt();
        let speed = speeds[c];
        assert!(
            (len - span * speed / v_max).abs() < 1e-4,
            "cell {c}: length {len}"
        );
        // Along the velocity: the cross product vanishes, the dot product is positive.
        assert!((d[0] * v[1] - d[1] * v[0]).abs() < 1e-4 * (1.0 + speed));
        assert!(d[0] * v[0] + d[1] * v[1] >= 0.0);
        let expected = ColourMap::Speed.at(speed / v_max).0;
        assert!(
            m.colour
                .iter()
                .zip(&expected)
                .all(|(a, b)| (a - b).abs() < 0.02),
            "cell {c}: colour {:?} vs {expected:?}",
            m.colour
        );
    }
}

#[test]
fn a_histogram_at_t_bins_the_recorded_paths_where_they_are_then() {
    let Some(gpu) = common::gpu() else { return };
    let (mlp, params) = network(5);
    let mut sampler = GpuSampler::new(&gpu.device, &mlp, Path::RECTIFIED_FLOW).unwrap();
    sampler.set_params(&gpu.queue, &params).unwrap();
    // Pages of 64 particles: 1001 particles in 16 pages, binned one page a dispatch.
    sampler.set_max_page(Some(64));
    let mut rng = Rng::with_domain(2, "points");
    let x0: Vec<[f32; 2]> = (0..1001).map(|_| [rng.normal(), rng.normal()]).collect();
    let config = SamplerConfig::new(Solver::Heun, 6);
    let request = SampleRequest::new(config, x0.len()).recording(Record {
        positions: true,
        endpoints: false,
        velocities: false,
    });
    let out = sampler
        .sample(&gpu.device, &gpu.queue, &x0, &request)
        .unwrap();
    assert!(sampler.recorded_pages().len() > 10);
    let rect = Rect::new([-3.0, -3.0], [3.0, 3.0]);
    let (nx, ny) = (23, 17);
    for t in [0.0, 0.37, 0.5, 1.0] {
        let counts = sampler
            .histogram(
                &gpu.device,
                &gpu.queue,
                &HistogramBins {
                    rect,
                    nx,
                    ny,
                    t: Some(t),
                },
            )
            .unwrap();
        let traj = &out.trajectories;
        let (k, s) = segment_at(&traj.times, t);
        let mut expected = vec![0_u32; (nx * ny) as usize];
        for i in 0..x0.len() {
            let path = traj.positions_of(i);
            let (a, b) = (path[k], path[(k + 1).min(path.len() - 1)]);
            let p = [a[0] * (1.0 - s) + b[0] * s, a[1] * (1.0 - s) + b[1] * s];
            if let Some(bin) = rect.bin(nx, ny, p) {
                expected[bin] += 1;
            }
        }
        // A point within rounding of a bin edge may land on either side on the GPU.
        let moved: u32 = counts
            .iter()
            .zip(&expected)
            .map(|(a, b)| a.abs_diff(*b))
            .sum();
        assert!(moved <= 4, "t = {t}: {moved} counts differ");
        let total: u32 = counts.iter().sum();
        assert!(total > 900, "t = {t}: {total} of 1001 inside");
    }
    // Without recorded positions a histogram at t is refused.
    let plain = SampleRequest::new(config, x0.len());
    sampler
        .sample(&gpu.device, &gpu.queue, &x0, &plain)
        .unwrap();
    let err = sampler
        .histogram(
            &gpu.device,
            &gpu.queue,
            &HistogramBins {
                rect,
                nx,
                ny,
                t: Some(0.5),
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("recorded positions"), "{err}");
}
