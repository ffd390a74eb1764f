//! The GPU sampler against `flowplay_core::sampler::sample` with the network's field (and
//! classifier-free guidance), on odd network sizes and particle counts, every solver and path;
//! chunking, the histogram and the velocity grid.

#![allow(clippy::unwrap_used, reason = "a test fails loudly")]

#[allow(unreachable_pub, reason = "shared with the other test files")]
mod common;

use common::{FORWARD, Tolerance, assert_close};
use flowplay_core::mlp::{Mlp, MlpConfig};
use flowplay_core::path::Path;
use flowplay_core::rng::Rng;
use flowplay_core::sampler::{
    GuidedField, MlpField, Record, SampleOutput, SamplerConfig, Solver, VelocityField, sample,
};
use flowplay_gpu::{FieldGrid, GpuContext, GpuError, GpuSampler, HistogramBins, Rect};

/// Whole trajectories after several steps: each step feeds the previous step's rounding back
/// through the network (whose Lipschitz constant amplifies it) and the GPU sums its dot products
/// in another order than the CPU's GEMM (and may contract to FMA), so per-evaluation differences
/// of ~1e-6 relative compound over the steps and stages; 1e-4 leaves room for that while still
/// catching any wrong formula (which shows up at 1e-2 or more).
const TRAJECTORY: Tolerance = Tolerance {
    rel: 1e-4,
    abs: 1e-6,
};

fn network(
    hidden: usize,
    depth: usize,
    t_scale: f32,
    num_classes: u32,
    seed: u64,
) -> (Mlp, Vec<f32>) {
    let mlp = Mlp::new(MlpConfig {
        hidden,
        depth,
        t_dim: 16,
        t_scale,
        num_classes,
    })
    .unwrap();
    // PyTorch's initialisation, slightly perturbed so that no bias is special.
    let mut params = mlp.init_params(seed);
    let mut rng = Rng::with_domain(seed, "perturb");
    for p in &mut params {
        *p += 0.05 * rng.normal();
    }
    (mlp, params)
}

fn points(n: usize, scale: f32, seed: u64) -> Vec<[f32; 2]> {
    let mut rng = Rng::with_domain(seed, "points");
    (0..n)
        .map(|_| [scale * rng.normal(), scale * rng.normal()])
        .collect()
}

#[allow(clippy::too_many_arguments, reason = "one sampling run")]
fn cpu_sample(
    mlp: &Mlp,
    params: &[f32],
    path: Path,
    config: &SamplerConfig,
    x0: &[[f32; 2]],
    labels: Option<&[u32]>,
    cfg_scale: f32,
    record: Record,
) -> SampleOutput {
    let field = MlpField::new(mlp, params, path);
    if mlp.config().is_conditional() {
        let guided = GuidedField::new(&field, cfg_scale, mlp.config().null_label());
        sample(&guided, &path, config, x0, labels, record)
    } else {
        sample(&field, &path, config, x0, None, record)
    }
}

fn flat(v: &[[f32; 2]]) -> Vec<f32> {
    v.iter().flat_map(|p| *p).collect()
}

fn compare(what: &str, gpu: &SampleOutput, cpu: &SampleOutput, tol: Tolerance) {
    assert_eq!(gpu.nfe, cpu.nfe, "{what}: nfe");
    assert_eq!(
        gpu.trajectories.times, cpu.trajectories.times,
        "{what}: times"
    );
    assert_close(&format!("{what}: x"), &flat(&gpu.x), &flat(&cpu.x), tol);
    let (g, c) = (&gpu.trajectories, &cpu.trajectories);
    assert_close(
        &format!("{what}: positions"),
        &flat(&g.positions),
        &flat(&c.positions),
        tol,
    );
    assert_close(
        &format!("{what}: endpoints"),
        &flat(&g.endpoints),
        &flat(&c.endpoints),
        tol,
    );
    assert_close(
        &format!("{what}: velocities"),
        &flat(&g.velocities),
        &flat(&c.velocities),
        tol,
    );
}

struct Case {
    hidden: usize,
    depth: usize,
    n: usize,
    solver: Solver,
    steps: usize,
    rescale_t: f32,
    path: Path,
    t_scale: f32,
}

fn run_case(gpu: &GpuContext, case: &Case, seed: u64) {
    let (mlp, params) = network(case.hidden, case.depth, case.t_scale, 0, seed);
    let mut sampler = GpuSampler::new(&gpu.device, &mlp, case.path).unwrap();
    sampler.set_params(&gpu.queue, &params).unwrap();
    let x0 = points(case.n, case.path.prior_scale(), seed);
    let config = SamplerConfig {
        solver: case.solver,
        steps: case.steps,
        rescale_t: case.rescale_t,
    };
    let what = format!(
        "h{} d{} n{} {} {} steps {} r{} ts{}",
        case.hidden,
        case.depth,
        case.n,
        case.solver,
        case.path.name(),
        case.steps,
        case.rescale_t,
        case.t_scale
    );
    let got = sampler
        .sample(
            &gpu.device,
            &gpu.queue,
            &x0,
            &common::request(&x0, None, 1.0, &config, Record::ALL),
        )
        .unwrap();
    let want = cpu_sample(
        &mlp,
        &params,
        case.path,
        &config,
        &x0,
        None,
        1.0,
        Record::ALL,
    );
    compare(&what, &got, &want, TRAJECTORY);
    // Recording nothing changes nothing.
    let plain = sampler
        .sample(
            &gpu.device,
            &gpu.queue,
            &x0,
            &common::request(&x0, None, 1.0, &config, Record::NONE),
        )
        .unwrap();
    assert_eq!(plain.x, got.x, "{what}: recording changed the result");
    assert!(plain.trajectories.positions.is_empty());
}

const VE: Path = Path::Ve {
    sigma_min: 0.01,
    sigma_max: 50.0,
    sigma_data: Some(1.0),
};

#[test]
fn every_solver_and_path_matches_the_cpu_on_odd_sizes() {
    let Some(gpu) = common::gpu() else { return };
    let cases = [
        Case {
            hidden: 1,
            depth: 1,
            n: 1,
            solver: Solver::Euler,
            steps: 5,
            rescale_t: 1.0,
            path: Path::RECTIFIED_FLOW,
            t_scale: 1.0,
        },
        Case {
            hidden: 7,
            depth: 2,
            n: 13,
            solver: Solver::Heun,
            steps: 6,
            rescale_t: 3.0,
            path: Path::VpCosine,
            t_scale: 1.0,
        },
        Case {
            hidden: 33,
            depth: 3,
            n: 1000,
            solver: Solver::Rk4,
            steps: 4,
            rescale_t: 0.5,
            path: VE,
            t_scale: 1.0,
        },
        Case {
            hidden: 128,
            depth: 2,
            n: 4097,
            solver: Solver::Heun,
            steps: 3,
            rescale_t: 3.0,
            path: Path::RectifiedFlow { sigma_min: 1e-5 },
            t_scale: 1000.0,
        },
        Case {
            hidden: 7,
            depth: 3,
            n: 13,
            solver: Solver::Rk4,
            steps: 7,
            rescale_t: 1.0,
            path: Path::RECTIFIED_FLOW,
            t_scale: 1000.0,
        },
        Case {
            hidden: 33,
            depth: 1,
            n: 1000,
            solver: Solver::Euler,
            steps: 8,
            rescale_t: 2.0,
            path: VE,
            t_scale: 1.0,
        },
        Case {
            hidden: 1,
            depth: 2,
            n: 13,
            solver: Solver::Rk4,
            steps: 3,
            rescale_t: 1.0,
            path: Path::VpCosine,
            t_scale: 1000.0,
        },
    ];
    for (i, case) in cases.iter().enumerate() {
        run_case(gpu, case, 100 + i as u64);
    }
}

#[test]
fn one_euler_step_matches_to_forward_precision() {
    let Some(gpu) = common::gpu() else { return };
    // One step: the recorded velocity at t = 0 and at t = 1 are single network evaluations.
    for (path, depth) in [(Path::RECTIFIED_FLOW, 2), (VE, 3), (Path::VpCosine, 1)] {
        let (mlp, params) = network(33, depth, 1000.0, 0, 7);
        let mut sampler = GpuSampler::new(&gpu.device, &mlp, path).unwrap();
        sampler.set_params(&gpu.queue, &params).unwrap();
        let x0 = points(257, path.prior_scale(), 8);
        let config = SamplerConfig::new(Solver::Euler, 1);
        let got = sampler
            .sample(
                &gpu.device,
                &gpu.queue,
                &x0,
                &common::request(&x0, None, 1.0, &config, Record::ALL),
            )
            .unwrap();
        let want = cpu_sample(&mlp, &params, path, &config, &x0, None, 1.0, Record::ALL);
        compare(&format!("one step, {}", path.name()), &got, &want, FORWARD);
    }
}

#[test]
fn conditional_networks_with_and_without_guidance_match_the_cpu() {
    let Some(gpu) = common::gpu() else { return };
    let (mlp, params) = network(33, 2, 1000.0, 3, 11);
    let path = Path::RECTIFIED_FLOW;
    let mut sampler = GpuSampler::new(&gpu.device, &mlp, path).unwrap();
    sampler.set_params(&gpu.queue, &params).unwrap();
    let n = 301;
    let x0 = points(n, 1.0, 12);
    // Classes 0…2, the null label 3, and an out-of-range label (clamped to the null label).
    let labels: Vec<u32> = (0..n as u32).map(|i| i % 5).collect();
    let config = SamplerConfig {
        solver: Solver::Heun,
        steps: 5,
        rescale_t: 2.0,
    };
    for (labels, cfg) in [
        (Some(&labels[..]), 2.5),
        (Some(&labels[..]), 1.0),
        (None, 2.5),
    ] {
        let what = format!("conditional, labels {}, cfg {cfg}", labels.is_some());
        let got = sampler
            .sample(
                &gpu.device,
                &gpu.queue,
                &x0,
                &common::request(&x0, labels, cfg, &config, Record::ALL),
            )
            .unwrap();
        let want = cpu_sample(&mlp, &params, path, &config, &x0, labels, cfg, Record::ALL);
        compare(&what, &got, &want, TRAJECTORY);
    }
    // Guided RK4 on VE, depth 1 and 3.
    for depth in [1, 3] {
        let (mlp, params) = network(7, depth, 1.0, 4, 13);
        let mut sampler = GpuSampler::new(&gpu.device, &mlp, VE).unwrap();
        sampler.set_params(&gpu.queue, &params).unwrap();
        let x0 = points(13, VE.prior_scale(), 14);
        let labels: Vec<u32> = (0..13).map(|i| i % 4).collect();
        let config = SamplerConfig::new(Solver::Rk4, 4);
        let got = sampler
            .sample(
                &gpu.device,
                &gpu.queue,
                &x0,
                &common::request(&x0, Some(&labels), 2.5, &config, Record::ALL),
            )
            .unwrap();
        let want = cpu_sample(
            &mlp,
            &params,
            VE,
            &config,
            &x0,
            Some(&labels),
            2.5,
            Record::ALL,
        );
        compare(&format!("guided VE depth {depth}"), &got, &want, TRAJECTORY);
    }
}

#[test]
fn many_chunks_give_the_same_result_as_one() {
    let Some(gpu) = common::gpu() else { return };
    for num_classes in [0, 3] {
        let (mlp, params) = network(33, 2, 1.0, num_classes, 21);
        let path = Path::VpCosine;
        let mut sampler = GpuSampler::new(&gpu.device, &mlp, path).unwrap();
        sampler.set_params(&gpu.queue, &params).unwrap();
        let n = 1000;
        let x0 = points(n, 1.0, 22);
        let labels: Vec<u32> = (0..n as u32).map(|i| (i * 7) % 4).collect();
        let labels = (num_classes > 0).then_some(&labels[..]);
        let config = SamplerConfig::new(Solver::Rk4, 3);
        // The same run each time; only the chunk and page sizes change between them.
        let run = |sampler: &mut GpuSampler| {
            sampler
                .sample(
                    &gpu.device,
                    &gpu.queue,
                    &x0,
                    &common::request(&x0, labels, 2.5, &config, Record::ALL),
                )
                .unwrap()
        };
        let whole = run(&mut sampler);
        // 64 particles a chunk: 16 chunks, the last one partial.
        sampler.set_max_chunk(Some(64));
        let chunked = run(&mut sampler);
        let what = format!("chunked, {num_classes} classes");
        compare(&what, &chunked, &whole, FORWARD);
        let want = cpu_sample(&mlp, &params, path, &config, &x0, labels, 2.5, Record::ALL);
        compare(&what, &chunked, &want, TRAJECTORY);
        // Recording pages of 192 particles (3 chunks): 6 pages, the last one partial; and pages
        // smaller than a chunk, which shrink the chunks to 128.
        for page in [192, 100] {
            sampler.set_max_page(Some(page));
            sampler.set_max_chunk(if page == 192 { Some(64) } else { None });
            let paged = run(&mut sampler);
            let pages = sampler.recorded_pages();
            let expected = n.div_ceil(page.next_multiple_of(64));
            assert_eq!(pages.len(), expected, "pages of {page}");
            let what = format!("pages of {page}, {num_classes} classes");
            compare(&what, &paged, &whole, FORWARD);
        }
        sampler.set_max_page(None);
        sampler.set_max_chunk(None);
    }
}

#[test]
fn a_run_encoded_in_slices_matches_one_encoded_at_once() {
    let Some(gpu) = common::gpu() else { return };
    let (device, queue) = (&gpu.device, &gpu.queue);
    let (mlp, params) = network(33, 3, 1.0, 3, 71);
    let mut sampler = GpuSampler::new(device, &mlp, VE).unwrap();
    sampler.set_params(queue, &params).unwrap();
    sampler.set_max_chunk(Some(64));
    let n = 300;
    let x0 = points(n, 2.0, 72);
    let labels: Vec<u32> = (0..n as u32).map(|i| i % 4).collect();
    let config = SamplerConfig::new(Solver::Heun, 4);
    let whole = sampler
        .sample(
            device,
            queue,
            &x0,
            &common::request(&x0, Some(&labels), 2.0, &config, Record::ALL),
        )
        .unwrap();
    // An earlier, different run is what stays drawn while the next is encoded.
    let before = SamplerConfig::new(Solver::Euler, 2);
    sampler
        .sample(
            device,
            queue,
            &x0[..100],
            &common::request(&x0[..100], None, 1.0, &before, Record::ALL),
        )
        .unwrap();
    sampler
        .begin_sample(
            device,
            queue,
            &x0,
            &common::request(&x0, Some(&labels), 2.0, &config, Record::ALL),
        )
        .unwrap();
    // 300 particles × 2 rows (guidance) × 9 evaluating stages (8 of Heun's, and the final
    // velocity) = 5400 rows.
    assert_eq!(sampler.remaining_evaluations(), 5400);
    let mut slices = 0;
    loop {
        let mut encoder = device.create_command_encoder(&Default::default());
        // 200 rows: one chunk of 64 guided particles (128 rows) a slice, and the set-up.
        let done = sampler.encode_slice(device, &mut encoder, 200);
        queue.submit([encoder.finish()]);
        slices += 1;
        if done {
            break;
        }
        assert_eq!(sampler.num_particles(), 100, "slice {slices}");
        assert_eq!(sampler.times().len(), 3, "slice {slices}");
        assert_eq!(sampler.recorded_pages()[0].len, 100);
        assert!(sampler.read_output(device, queue).is_err());
    }
    assert_eq!(sampler.remaining_evaluations(), 0);
    // 9 stages × 5 chunks of at most 128 rows, one a slice; the set-up rides with the first.
    assert_eq!(slices, 45);
    let sliced = sampler.read_output(device, queue).unwrap();
    compare("sliced", &sliced, &whole, FORWARD);
}

#[test]
fn an_empty_run_samples_nothing() {
    let Some(gpu) = common::gpu() else { return };
    let (mlp, params) = network(7, 2, 1.0, 0, 81);
    let mut sampler = GpuSampler::new(&gpu.device, &mlp, Path::RECTIFIED_FLOW).unwrap();
    sampler.set_params(&gpu.queue, &params).unwrap();
    let config = SamplerConfig::new(Solver::Rk4, 3);
    let out = sampler
        .sample(
            &gpu.device,
            &gpu.queue,
            &[],
            &common::request(&[], None, 1.0, &config, Record::ALL),
        )
        .unwrap();
    assert!(out.x.is_empty() && out.trajectories.positions.is_empty());
    assert!(sampler.recorded_pages().is_empty());
    assert_eq!(sampler.remaining_evaluations(), 0);
}

#[test]
fn histogram_counts_equal_a_cpu_histogram_of_the_same_points() {
    let Some(gpu) = common::gpu() else { return };
    let (mlp, params) = network(7, 2, 1.0, 0, 31);
    let path = Path::RECTIFIED_FLOW;
    let mut sampler = GpuSampler::new(&gpu.device, &mlp, path).unwrap();
    sampler.set_params(&gpu.queue, &params).unwrap();
    let x0 = points(5000, 1.5, 32);
    let config = SamplerConfig::new(Solver::Euler, 3);
    let out = sampler
        .sample(
            &gpu.device,
            &gpu.queue,
            &x0,
            &common::request(&x0, None, 1.0, &config, Record::NONE),
        )
        .unwrap();
    let rect = Rect::new([-1.7, -2.1], [2.3, 1.9]);
    let (nx, ny) = (17, 9);
    let counts = sampler
        .histogram(
            &gpu.device,
            &gpu.queue,
            &HistogramBins {
                rect,
                nx,
                ny,
                t: None,
            },
        )
        .unwrap();
    let mut expected = vec![0_u32; nx as usize * ny as usize];
    for p in &out.x {
        if let Some(bin) = rect.bin(nx, ny, *p) {
            expected[bin] += 1;
        }
    }
    assert_eq!(counts, expected);
    let inside: u32 = counts.iter().sum();
    assert!(inside > 1000 && inside < 5000, "{inside} of 5000 inside");
    // Again (the counts are cleared), over a different grid.
    let counts = sampler
        .histogram(
            &gpu.device,
            &gpu.queue,
            &HistogramBins {
                rect,
                nx: 1,
                ny: 1,
                t: None,
            },
        )
        .unwrap();
    assert_eq!(counts, vec![inside]);
}

#[test]
fn velocity_grid_matches_the_cpu_field() {
    let Some(gpu) = common::gpu() else { return };
    let rect = Rect::new([-3.0, -2.0], [3.0, 2.5]);
    let (nx, ny) = (13, 7);
    let centres: Vec<[f32; 2]> = (0..ny)
        .flat_map(|j| (0..nx).map(move |i| rect.cell_centre(nx, ny, i, j)))
        .collect();
    for (path, num_classes) in [(VE, 0), (Path::RECTIFIED_FLOW, 3)] {
        let (mlp, params) = network(33, 2, 1000.0, num_classes, 41);
        let mut sampler = GpuSampler::new(&gpu.device, &mlp, path).unwrap();
        sampler.set_params(&gpu.queue, &params).unwrap();
        let t = 0.37;
        let label = (num_classes > 0).then_some(1);
        let got = sampler
            .velocity_grid(
                &gpu.device,
                &gpu.queue,
                &FieldGrid {
                    t,
                    rect,
                    nx,
                    ny,
                    label,
                    cfg_scale: 2.5,
                },
            )
            .unwrap();
        let field = MlpField::new(&mlp, &params, path);
        let mut want = vec![[0.0; 2]; centres.len()];
        let labels = label.map(|l| vec![l; centres.len()]);
        if num_classes > 0 {
            GuidedField::new(&field, 2.5, mlp.config().null_label()).velocity(
                t,
                &centres,
                labels.as_deref(),
                &mut want,
            );
        } else {
            field.velocity(t, &centres, None, &mut want);
        }
        assert_close(
            &format!("velocity grid, {}", path.name()),
            &flat(&got),
            &flat(&want),
            FORWARD,
        );
    }
}

#[test]
fn too_many_particles_for_the_buffers_is_a_clear_error() {
    let Some(gpu) = common::gpu() else { return };
    let (mlp, params) = network(7, 2, 1.0, 0, 51);
    let mut sampler = GpuSampler::new(&gpu.device, &mlp, Path::RECTIFIED_FLOW).unwrap();
    sampler.set_params(&gpu.queue, &params).unwrap();
    // Recorded trajectories are paged, but the state (16 bytes a particle) must fit one binding:
    // 9 M particles need 144 MB, over WebGPU's default of 128 MiB.
    let x0 = vec![[0.0_f32; 2]; 9_000_000];
    let config = SamplerConfig::new(Solver::Euler, 100);
    let err = sampler
        .sample(
            &gpu.device,
            &gpu.queue,
            &x0,
            &common::request(&x0, None, 1.0, &config, Record::ALL),
        )
        .unwrap_err();
    assert!(matches!(err, GpuError::Limits(_)), "{err}");
    assert!(err.to_string().contains("9000000 particles"), "{err}");
    // Bad inputs are configuration errors.
    let err = sampler
        .sample(
            &gpu.device,
            &gpu.queue,
            &x0[..3],
            &common::request(&x0[..3], Some(&[0, 1]), 1.0, &config, Record::NONE),
        )
        .unwrap_err();
    assert!(matches!(err, GpuError::Core(_)), "{err}");
    assert!(sampler.set_params(&gpu.queue, &params[1..]).is_err());
}

/// A million particles at hidden 256 (16 chunks of 65 536): about 9 minutes on llvmpipe, so
/// run it by hand (`cargo test -p flowplay-gpu --test sampler -- --ignored`).
#[test]
#[ignore = "a million particles take about 9 minutes on llvmpipe"]
fn a_million_particles_at_hidden_256() {
    let Some(gpu) = common::gpu() else { return };
    let (mlp, params) = network(256, 2, 1.0, 0, 61);
    let path = Path::RECTIFIED_FLOW;
    let mut sampler = GpuSampler::new(&gpu.device, &mlp, path).unwrap();
    sampler.set_params(&gpu.queue, &params).unwrap();
    let n = 1 << 20;
    let x0 = points(n, 1.0, 62);
    let config = SamplerConfig::new(Solver::Euler, 1);
    let got = sampler
        .sample(
            &gpu.device,
            &gpu.queue,
            &x0,
            &common::request(&x0, None, 1.0, &config, Record::NONE),
        )
        .unwrap();
    // Particles are independent: compare a slice from the first, a middle and the last chunk.
    for range in [0..500, 500_000..500_500, n - 500..n] {
        let want = cpu_sample(
            &mlp,
            &params,
            path,
            &config,
            &x0[range.clone()],
            None,
            1.0,
            Record::NONE,
        );
        assert_close(
            &format!("1M particles, {range:?}"),
            &flat(&got.x[range.clone()]),
            &flat(&want.x),
            FORWARD,
        );
    }
}
