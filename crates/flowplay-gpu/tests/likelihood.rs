//! The GPU likelihood (reverse ODE with the exact Jacobian trace, `linear_jvp.wgsl` and
//! `logp_stage.wgsl`) against `flowplay_core::likelihood::log_likelihood`, on odd network sizes
//! and point counts, every solver and path, guidance, and chunked points.

#![allow(clippy::unwrap_used, reason = "a test fails loudly")]

#[allow(unreachable_pub, reason = "shared with the other test files")]
mod common;

use common::{Tolerance, assert_close};
use flowplay_core::flow::SampleRequest;
use flowplay_core::likelihood::{GaussianPrior, MlpDivergence, log_likelihood};
use flowplay_core::mlp::{Mlp, MlpConfig};
use flowplay_core::path::Path;
use flowplay_core::rng::Rng;
use flowplay_core::sampler::{GuidedField, SamplerConfig, Solver};
use flowplay_gpu::GpuSampler;

/// log p₁ after a whole reverse integration: as for trajectories (`sampler.rs`), per-evaluation
/// rounding differences of ~1e-6 compound over the stages; the trace adds SiLU′ evaluated from z
/// on the GPU and from the stored activation on the CPU. 1e-4 of the values' scale, which still
/// catches a wrong term (a missing preconditioning factor or tangent shows at 1e-2 or more).
const LIKELIHOOD: Tolerance = Tolerance {
    rel: 1e-4,
    abs: 1e-5,
};

fn network(hidden: usize, depth: usize, num_classes: u32, seed: u64) -> (Mlp, Vec<f32>) {
    let mlp = Mlp::new(MlpConfig {
        hidden,
        depth,
        t_dim: 16,
        t_scale: 1.0,
        num_classes,
    })
    .unwrap();
    let mut params = mlp.init_params(seed);
    let mut rng = Rng::with_domain(seed, "perturb");
    for p in &mut params {
        *p += 0.05 * rng.normal();
    }
    (mlp, params)
}

fn points(n: usize, seed: u64) -> Vec<[f32; 2]> {
    let mut rng = Rng::with_domain(seed, "points");
    (0..n)
        .map(|_| [1.5 * rng.normal(), 1.5 * rng.normal()])
        .collect()
}

/// The CPU reference for `request` (guided when the network is conditional and labels given).
fn cpu(mlp: &Mlp, params: &[f32], path: Path, x: &[[f32; 2]], request: &SampleRequest) -> Vec<f32> {
    let field = MlpDivergence::new(mlp, params, path);
    let prior = GaussianPrior::of(&path);
    let labels = request.labels.as_deref();
    let out = if mlp.config().is_conditional() && labels.is_some() {
        let guided = GuidedField::new(&field, request.cfg_scale, mlp.config().null_label());
        log_likelihood(&guided, prior, &request.sampler, x, labels)
    } else {
        log_likelihood(&field, prior, &request.sampler, x, None)
    };
    out.unwrap().logp
}

#[test]
fn the_likelihood_matches_the_cpu_on_odd_sizes() {
    let Some(gpu) = common::gpu() else { return };
    let cases = [
        (1, 1, Path::RECTIFIED_FLOW, Solver::Euler, 3, 1),
        (7, 2, Path::VpCosine, Solver::Heun, 4, 13),
        (33, 3, Path::VE_DEFAULT, Solver::Rk4, 3, 257),
        (64, 2, Path::RECTIFIED_FLOW, Solver::Rk4, 8, 1000),
    ];
    for (hidden, depth, path, solver, steps, n) in cases {
        let (mlp, params) = network(hidden, depth, 0, hidden as u64);
        let mut sampler = GpuSampler::new(&gpu.device, &mlp, path).unwrap();
        sampler.set_params(&gpu.queue, &params).unwrap();
        let x = points(n, n as u64);
        let request = SampleRequest::new(SamplerConfig::new(solver, steps), n);
        let got = sampler
            .log_likelihood(&gpu.device, &gpu.queue, &x, &request)
            .unwrap();
        let want = cpu(&mlp, &params, path, &x, &request);
        let what = format!("h{hidden} d{depth} {} {solver}×{steps} n{n}", path.name());
        assert_close(&what, &got, &want, LIKELIHOOD);
    }
}

#[test]
fn guidance_chunks_and_a_time_shift_match_the_cpu() {
    let Some(gpu) = common::gpu() else { return };
    let (mlp, params) = network(33, 2, 3, 5);
    let path = Path::RECTIFIED_FLOW;
    let mut sampler = GpuSampler::new(&gpu.device, &mlp, path).unwrap();
    sampler.set_params(&gpu.queue, &params).unwrap();
    // Chunks of 64 points: 301 points in five chunks, the last one short.
    sampler.set_max_chunk(Some(64));
    let n = 301;
    let x = points(n, 9);
    let labels: Vec<u32> = (0..n as u32).map(|i| i % 3).collect();
    let config = SamplerConfig {
        rescale_t: 3.0,
        ..SamplerConfig::new(Solver::Heun, 5)
    };
    for (labels, cfg_scale) in [
        (None, 1.0),
        (Some(labels.clone()), 1.0),
        (Some(labels), 2.5),
    ] {
        let request = SampleRequest::new(config, n).with_labels(labels, cfg_scale);
        let got = sampler
            .log_likelihood(&gpu.device, &gpu.queue, &x, &request)
            .unwrap();
        let want = cpu(&mlp, &params, path, &x, &request);
        let what = format!("guided {} s={cfg_scale}", request.labels.is_some());
        assert_close(&what, &got, &want, LIKELIHOOD);
    }
}

#[test]
fn a_mismatched_request_is_refused() {
    let Some(gpu) = common::gpu() else { return };
    let (mlp, params) = network(8, 1, 0, 1);
    let mut sampler = GpuSampler::new(&gpu.device, &mlp, Path::RECTIFIED_FLOW).unwrap();
    sampler.set_params(&gpu.queue, &params).unwrap();
    let request = SampleRequest::new(SamplerConfig::new(Solver::Euler, 2), 5);
    let err = sampler
        .log_likelihood(&gpu.device, &gpu.queue, &points(4, 0), &request)
        .unwrap_err();
    assert!(err.to_string().contains("5 points"), "{err}");
}
