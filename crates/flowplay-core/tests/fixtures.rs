//! The CPU reference against the golden vectors computed by the seeds' PyTorch code
//! (`tests/fixtures/`, see its README). The reference is float64; we compute in f32.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on malformed fixtures"
)]

use std::path::PathBuf;

use flowplay_core::mlp::{Mlp, MlpConfig, Prepared, Workspace, mse_loss_grad};
use flowplay_core::optim::{AdamW, AdamWConfig, clip_grad_norm, ema_update};
use flowplay_core::path::Path;
use flowplay_core::sampler::{
    Record, SamplerConfig, Solver, VelocityField, sample, trellis_euler_sample,
};
use serde_json::Value;

/// How close an f32 result must be to the float64 reference: `|a − e| ≤ abs + rel·|e|`.
#[derive(Clone, Copy, Debug)]
struct Tolerance {
    rel: f64,
    abs: f64,
}

/// One f32 operation on exact inputs.
const SINGLE_OP: Tolerance = Tolerance {
    rel: 1e-5,
    abs: 1e-6,
};
/// A chain of f32 operations (a network pass, a sampler run).
const CHAIN: Tolerance = Tolerance {
    rel: 1e-4,
    abs: 1e-5,
};
/// The time embedding at t×1000: f32 rounds the argument t·1000·f to about 6e-5 absolute.
const LARGE_ANGLE: Tolerance = Tolerance {
    rel: 0.0,
    abs: 2e-4,
};

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn load(name: &str) -> Value {
    let path = fixtures_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A `{"shape", "data"}` tensor's data.
fn tensor(v: &Value) -> Vec<f64> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn shape(v: &Value) -> Vec<usize> {
    v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn points(v: &Value) -> Vec<[f32; 2]> {
    assert_eq!(shape(v)[1], 2);
    tensor(v)
        .chunks_exact(2)
        .map(|p| [p[0] as f32, p[1] as f32])
        .collect()
}

#[track_caller]
fn assert_close(what: &str, actual: &[f32], expected: &[f64], tol: Tolerance) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    let mut worst = (0.0_f64, 0_usize);
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let excess = (f64::from(a) - e).abs() - (tol.abs + tol.rel * e.abs());
        if excess > worst.0 {
            worst = (excess, i);
        }
    }
    let i = worst.1;
    assert!(
        worst.0 <= 0.0,
        "{what}: element {i} is {} but the reference has {} (tolerance {tol:?})",
        actual[i],
        expected[i]
    );
}

#[test]
fn the_fixture_copy_matches_the_shared_one() {
    let shared = fixtures_dir().join("../../../shared/fixtures");
    if !shared.exists() {
        return; // A clean clone in CI has only the copy.
    }
    for entry in std::fs::read_dir(&shared).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let ours = fixtures_dir().join(path.file_name().unwrap());
            assert_eq!(
                std::fs::read(&path).unwrap(),
                std::fs::read(&ours).unwrap(),
                "{} differs from the shared fixture",
                ours.display()
            );
        }
    }
}

#[test]
fn paths_match_the_reference() {
    let f = load("paths.json");
    let ts = floats(&f["t"]);
    let x0 = points(&f["x0"]);
    let x1 = points(&f["x1"]);
    let ve = &f["ve_params"];
    let cases = [
        ("rectified_flow", Path::RECTIFIED_FLOW),
        ("vp_cosine", Path::VpCosine),
        (
            "ve",
            Path::Ve {
                sigma_min: ve["sigma_min"].as_f64().unwrap() as f32,
                sigma_max: ve["sigma_max"].as_f64().unwrap() as f32,
                sigma_data: None,
            },
        ),
    ];
    for (name, path) in cases {
        let mut x_t = Vec::new();
        let mut u_t = Vec::new();
        for (i, &t) in ts.iter().enumerate() {
            let c = path.coefficients(t as f32);
            x_t.extend(c.interpolate(x0[i], x1[i]));
            u_t.extend(c.velocity(x0[i], x1[i]));
        }
        let expected = &f["paths"][name];
        assert_close(
            &format!("{name} x_t"),
            &x_t,
            &tensor(&expected["x_t"]),
            SINGLE_OP,
        );
        assert_close(
            &format!("{name} u_t"),
            &u_t,
            &tensor(&expected["u_t"]),
            SINGLE_OP,
        );
    }

    // TRELLIS: τ = 1 is noise. Our rectified flow with σ_min at t = 1 − τ, x₀ = ε, x₁ = data, and
    // TRELLIS's v = dx/dτ = −u.
    let tr = &f["trellis"];
    let sigma_min = tr["sigma_min"].as_f64().unwrap() as f32;
    let path = Path::RectifiedFlow { sigma_min };
    let eps = points(&tr["eps"]);
    let data = points(&tr["x_data"]);
    let (mut x_t, mut v) = (Vec::new(), Vec::new());
    for (i, &tau) in ts.iter().enumerate() {
        let c = path.coefficients(1.0 - tau as f32);
        x_t.extend(c.interpolate(eps[i], data[i]));
        let u = c.velocity(eps[i], data[i]);
        v.extend([-u[0], -u[1]]);
    }
    assert_close("trellis x_t", &x_t, &tensor(&tr["x_t"]), SINGLE_OP);
    assert_close("trellis v", &v, &tensor(&tr["v"]), SINGLE_OP);
}

#[test]
fn time_embedding_matches_the_reference() {
    let f = load("time_embed.json");
    let dim = f["dim"].as_u64().unwrap() as usize;
    let ts: Vec<f32> = floats(&f["t"]).iter().map(|&t| t as f32).collect();
    for (key, scale, tol) in [
        ("emb", 1.0, SINGLE_OP),
        ("emb_t_times_1000", 1000.0, LARGE_ANGLE),
    ] {
        let mlp = Mlp::new(MlpConfig {
            hidden: 4,
            depth: 2,
            t_dim: dim,
            t_scale: scale,
            num_classes: 0,
        })
        .unwrap();
        let mut out = vec![0.0; ts.len() * dim];
        mlp.time_embedding(&ts, &mut out);
        assert_close(key, &out, &tensor(&f[key]), tol);
    }
}

/// Loads an `mlp_*.json` fixture's parameters into a flat buffer in our layout.
fn load_params(mlp: &Mlp, params: &Value) -> Vec<f32> {
    let mut flat = vec![0.0; mlp.num_params()];
    for entry in &mlp.layout().entries {
        let t = &params[&entry.name];
        assert_eq!(shape(t), entry.shape, "{}: shape", entry.name);
        for (dst, src) in flat[entry.range()].iter_mut().zip(tensor(t)) {
            *dst = src as f32;
        }
    }
    flat
}

fn flat_reference(mlp: &Mlp, tensors: &Value) -> Vec<f64> {
    let mut flat = vec![0.0; mlp.num_params()];
    for entry in &mlp.layout().entries {
        flat[entry.range()].copy_from_slice(&tensor(&tensors[&entry.name]));
    }
    flat
}

fn check_mlp_fixture(file: &str) {
    let f = load(file);
    let hidden = f["hidden"].as_u64().unwrap() as usize;
    let t_dim = f["t_dim"].as_u64().unwrap() as usize;
    let mlp = Mlp::new(MlpConfig {
        hidden,
        depth: 2,
        t_dim,
        t_scale: 1.0,
        num_classes: 0,
    })
    .unwrap();
    let order: Vec<&str> = f["layer_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let names: Vec<&str> = mlp
        .layout()
        .entries
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(names, order, "{file}: parameter order");

    let params = load_params(&mlp, &f["params"]);
    let t: Vec<f32> = floats(&f["t"]).iter().map(|&v| v as f32).collect();
    let x = points(&f["x"]);
    let target = points(&f["target"]);
    let rows = t.len();

    // Forward and loss.
    let mut prepared = Prepared::default();
    mlp.prepare(&params, &mut prepared);
    let mut ws = Workspace::new();
    let mut out = vec![[0.0; 2]; rows];
    mlp.forward(&params, &prepared, &t, &x, None, &mut ws, &mut out);
    assert_close(
        &format!("{file} out"),
        out.as_flattened(),
        &tensor(&f["out"]),
        CHAIN,
    );
    let mut d_out = vec![[0.0; 2]; rows];
    let loss = mse_loss_grad(&out, &target, rows * 2, &mut d_out);
    assert_close(
        &format!("{file} loss"),
        &[loss as f32],
        &[f["loss"].as_f64().unwrap()],
        CHAIN,
    );

    // Backward.
    let mut grads = vec![0.0; mlp.num_params()];
    mlp.backward(&params, &prepared, None, &d_out, &mut ws, &mut grads);
    mlp.finish_gradients(&params, &mut grads);
    let expected_grads = flat_reference(&mlp, &f["grads"]);
    for entry in &mlp.layout().entries {
        assert_close(
            &format!("{file} grad {}", entry.name),
            &grads[entry.range()],
            &expected_grads[entry.range()],
            CHAIN,
        );
    }

    // Clipping, AdamW, EMA (the EMA copy is taken before the step and updated after it).
    let ema_before = params.clone();
    let max_norm = f["clip_max_norm"].as_f64().unwrap() as f32;
    let norm = clip_grad_norm(&mut grads, max_norm);
    assert_close(
        &format!("{file} grad norm"),
        &[norm],
        &[f["grad_norm_before_clip"].as_f64().unwrap()],
        CHAIN,
    );
    let a = &f["adamw"];
    let betas = floats(&a["betas"]);
    let config = AdamWConfig {
        lr: a["lr"].as_f64().unwrap() as f32,
        beta1: betas[0] as f32,
        beta2: betas[1] as f32,
        eps: a["eps"].as_f64().unwrap() as f32,
        weight_decay: a["weight_decay"].as_f64().unwrap() as f32,
    };
    let mut adam = AdamW::new(params.len(), config);
    let mut updated = params.clone();
    adam.step(&mut updated, &grads, config.lr);
    let expected = flat_reference(&mlp, &f["params_after_adamw"]);
    for entry in &mlp.layout().entries {
        assert_close(
            &format!("{file} AdamW {}", entry.name),
            &updated[entry.range()],
            &expected[entry.range()],
            CHAIN,
        );
    }
    let mut ema = ema_before;
    ema_update(&mut ema, &updated, f["ema_decay"].as_f64().unwrap() as f32);
    let expected = flat_reference(&mlp, &f["ema_after_one_update"]);
    assert_close(&format!("{file} EMA"), &ema, &expected, CHAIN);
}

#[test]
fn mlp_small_matches_the_reference() {
    check_mlp_fixture("mlp_small.json");
}

#[test]
fn mlp_clipped_matches_the_reference() {
    check_mlp_fixture("mlp_clipped.json");
}

#[test]
fn mlp_seed_recipe_matches_the_reference() {
    check_mlp_fixture("mlp_seed_recipe.json");
}

/// The fixtures' analytic field `v(t, x) = [sin(3t) − 0.5·x₁, cos(2·x₀) + t·x₁]`.
struct Analytic;

impl VelocityField for Analytic {
    fn velocity(&self, t: f32, x: &[[f32; 2]], _: Option<&[u32]>, out: &mut [[f32; 2]]) {
        for (o, p) in out.iter_mut().zip(x) {
            *o = [(3.0 * t).sin() - 0.5 * p[1], (2.0 * p[0]).cos() + t * p[1]];
        }
    }
}

#[test]
fn samplers_match_the_reference() {
    let f = load("samplers.json");
    let x0 = points(&f["x0"]);
    let runs = f["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 15);
    for run in runs {
        let solver: Solver = run["solver"].as_str().unwrap().parse().unwrap();
        let steps = run["steps"].as_u64().unwrap() as usize;
        let config = SamplerConfig::new(solver, steps);
        let out = sample(
            &Analytic,
            &Path::RECTIFIED_FLOW,
            &config,
            &x0,
            None,
            Record::NONE,
        );
        assert_eq!(out.nfe, steps * solver.evals_per_step());
        assert_close(
            &format!("{solver} × {steps}"),
            out.x.as_flattened(),
            &tensor(&run["x1"]),
            CHAIN,
        );
    }
}

/// Errors against the fixture's exact solution at N and 2N steps give the order log₂(e_N/e_2N);
/// a least-squares slope over several N is measured and must be within ±0.2 of the theory.
#[test]
fn convergence_orders_are_one_two_four() {
    let f = load("samplers.json");
    let x0 = points(&f["x0"]);
    let exact = tensor(&f["exact_x1_rk4_4096_steps"]);
    let error = |solver, steps| -> f64 {
        let out = sample(
            &Analytic,
            &Path::RECTIFIED_FLOW,
            &SamplerConfig::new(solver, steps),
            &x0,
            None,
            Record::NONE,
        );
        out.x
            .as_flattened()
            .iter()
            .zip(&exact)
            .map(|(&a, &e)| (f64::from(a) - e).abs())
            .fold(0.0, f64::max)
    };
    // Step counts where the error is well above f32 round-off yet in the asymptotic regime.
    for (solver, steps) in [
        (Solver::Euler, [16, 32, 64, 128]),
        (Solver::Heun, [8, 16, 32, 64]),
        (Solver::Rk4, [4, 6, 8, 12]),
    ] {
        let logs: Vec<(f64, f64)> = steps
            .iter()
            .map(|&n| ((n as f64).ln(), error(solver, n).ln()))
            .collect();
        let mean_x = logs.iter().map(|p| p.0).sum::<f64>() / logs.len() as f64;
        let mean_y = logs.iter().map(|p| p.1).sum::<f64>() / logs.len() as f64;
        let slope = logs
            .iter()
            .map(|p| (p.0 - mean_x) * (p.1 - mean_y))
            .sum::<f64>()
            / logs.iter().map(|p| (p.0 - mean_x).powi(2)).sum::<f64>();
        let order = -slope;
        println!("{solver}: measured order {order:.3}");
        assert!(
            (order - solver.order() as f64).abs() <= 0.2,
            "{solver}: measured order {order:.3}, expected {}",
            solver.order()
        );
    }
}

#[test]
fn trellis_sampler_matches_the_reference() {
    let f = load("trellis_sampler.json");
    let noise = points(&f["noise"]);
    let sigma_min = f["sigma_min"].as_f64().unwrap() as f32;
    for run in f["runs"].as_array().unwrap() {
        let steps = run["steps"].as_u64().unwrap() as usize;
        let rescale = run["rescale_t"].as_f64().unwrap();
        let what = format!("TRELLIS steps {steps}, rescale_t {rescale}");
        let out = trellis_euler_sample(&Analytic, &noise, None, steps, rescale, sigma_min);
        let t_seq: Vec<f32> = out.t_seq.iter().map(|&t| t as f32).collect();
        assert_close(
            &format!("{what} t_seq"),
            &t_seq,
            &floats(&run["t_seq"]),
            SINGLE_OP,
        );
        assert_close(
            &format!("{what} samples"),
            out.samples.as_flattened(),
            &tensor(&run["samples"]),
            CHAIN,
        );
        let pred_x_t = run["pred_x_t"].as_array().unwrap();
        let pred_x_0 = run["pred_x_0"].as_array().unwrap();
        assert_eq!(pred_x_t.len(), steps);
        for step in 0..steps {
            assert_close(
                &format!("{what} pred_x_t[{step}]"),
                out.pred_x_t[step].as_flattened(),
                &tensor(&pred_x_t[step]),
                CHAIN,
            );
            assert_close(
                &format!("{what} pred_x_0[{step}]"),
                out.pred_x_0[step].as_flattened(),
                &tensor(&pred_x_0[step]),
                CHAIN,
            );
        }
    }
}
