//! The GPU trainer against the CPU reference: the drawn batch, the forward pass, the loss and
//! every gradient on odd sizes, one AdamW + clip + EMA step, and 100 whole training steps from
//! the same seed.

#![allow(
    clippy::unwrap_used,
    reason = "tests: a failed unwrap is a failed test"
)]

#[allow(unreachable_pub, reason = "shared test helpers")]
mod common;

use common::{FORWARD, GRADIENTS, OPTIMIZER, Tolerance, assert_close, gpu};
use flowplay_core::Error;
use flowplay_core::batch::{BatchPairs, regression_pair};
use flowplay_core::data::Dataset;
use flowplay_core::flow::DataSource;
use flowplay_core::mlp::{Mlp, MlpConfig, Prepared, Workspace};
use flowplay_core::optim::{AdamW, AdamWConfig, clip_grad_norm, ema_update};
use flowplay_core::path::{Path, TimeSampling};
use flowplay_core::train::{Coupling, CouplingPool, CpuTrainer, LrSchedule, TrainConfig};
use flowplay_gpu::{GpuError, GpuTrainer};

/// The batch: t, x_in and target go through exp, ln, sin and cos (Box–Muller, logit-normal, path
/// coefficients), which the CPU takes from Rust's libm and the GPU from polynomials accurate to
/// a few ulp; VE's preconditioned target (u − skip·x)/out cancels and amplifies that to about
/// 1e-5 of its scale — the forward pass's bound.
const DRAWS: Tolerance = Tolerance {
    rel: 1e-5,
    abs: 1e-7,
};
/// 100 whole steps: the two trainers' gradients differ by rounding (summation order), and Adam
/// divides by √v, which amplifies that on parameters whose gradient is near zero. Losses and
/// weights must still agree to 1e-3 of their scale.
const WHOLE_RUN: Tolerance = Tolerance {
    rel: 1e-3,
    abs: 0.0,
};

fn config(hidden: usize, batch: usize) -> TrainConfig {
    TrainConfig {
        mlp: MlpConfig {
            hidden,
            depth: 2,
            t_dim: 16,
            t_scale: 1.0,
            num_classes: 0,
        },
        batch,
        pool_size: 5000,
        steps: 100,
        seed: 7,
        ..TrainConfig::default()
    }
}

fn flat(v: &[[f32; 2]]) -> Vec<f32> {
    v.iter().flat_map(|p| *p).collect()
}

/// The CPU's batch for `trainer`'s next step.
fn cpu_batch(trainer: &GpuTrainer, step: u64) -> BatchPairs {
    let cfg = trainer.config();
    let draws = cfg.batch_draws(
        trainer.data(),
        trainer.source_pool(),
        trainer.coupling_pool(),
    );
    let mut out = BatchPairs::default();
    draws.fill(step, cfg.batch, &mut out);
    if let (Coupling::MinibatchOt { block }, None) = (cfg.coupling, trainer.coupling_pool()) {
        out.couple_ot(block);
    }
    out
}

/// Checks the GPU's batch for the next step against the CPU's.
fn check_batch(what: &str, trainer: &mut GpuTrainer) {
    let step = trainer.steps_done();
    let cpu = cpu_batch(trainer, step);
    let gpu = trainer.inspect().unwrap();
    assert_eq!(gpu.labels, cpu.labels, "{what}: labels");
    assert_close(&format!("{what}: t"), &gpu.t, &cpu.t, DRAWS);
    let path = trainer.config().path;
    let (x_in, target): (Vec<[f32; 2]>, Vec<[f32; 2]>) = (0..cpu.len())
        .map(|i| regression_pair(&path, cpu.t[i], cpu.x0[i], cpu.x1[i]))
        .unzip();
    assert_close(
        &format!("{what}: x_in"),
        &flat(&gpu.x_in),
        &flat(&x_in),
        DRAWS,
    );
    assert_close(
        &format!("{what}: target"),
        &flat(&gpu.target),
        &flat(&target),
        DRAWS,
    );
}

#[test]
fn the_batch_is_the_cpus_batch() {
    let Some(ctx) = gpu() else { return };
    let (d, q) = (&ctx.device, &ctx.queue);
    let cases: Vec<(&str, TrainConfig)> = vec![
        ("rectified flow, logit-normal", config(8, 1000)),
        (
            "VP-cosine, uniform t",
            TrainConfig {
                path: Path::VpCosine,
                time_sampling: TimeSampling::Uniform,
                ..config(8, 13)
            },
        ),
        (
            "VE preconditioned, shifted logit-normal",
            TrainConfig {
                path: Path::VE_DEFAULT,
                time_sampling: TimeSampling::LogitNormal {
                    mean: 0.5,
                    std: 1.2,
                },
                ..config(8, 257)
            },
        ),
        (
            "rectified flow with σ_min, source pool, conditional with dropout",
            TrainConfig {
                path: Path::RectifiedFlow { sigma_min: 1e-3 },
                source: DataSource::Builtin(Dataset::Circles),
                mlp: MlpConfig {
                    num_classes: 2,
                    ..config(8, 1).mlp
                },
                p_drop: 0.3,
                ..config(8, 999)
            },
        ),
        (
            "minibatch OT",
            TrainConfig {
                coupling: Coupling::MinibatchOt { block: 64 },
                ..config(8, 200)
            },
        ),
    ];
    for (what, cfg) in cases {
        let mut trainer = GpuTrainer::new(d, q, cfg).unwrap();
        check_batch(what, &mut trainer);
        // A later step draws different numbers, and the same ones as the CPU.
        trainer.train_blocking(3).unwrap();
        check_batch(&format!("{what}, step 3"), &mut trainer);
    }
}

#[test]
fn reflow_pairs_are_drawn_as_on_the_cpu() {
    let Some(ctx) = gpu() else { return };
    let mut trainer = GpuTrainer::new(&ctx.device, &ctx.queue, config(8, 301)).unwrap();
    let n = 777;
    let pool = CouplingPool {
        x0: (0..n)
            .map(|i| [i as f32 * 0.01, -(i as f32) * 0.02])
            .collect(),
        x1: (0..n)
            .map(|i| [1.0 + i as f32 * 0.003, (i as f32).sin()])
            .collect(),
        labels: None,
    };
    trainer.start_reflow_round(pool, 50).unwrap();
    check_batch("reflow pairs", &mut trainer);
}

/// The CPU's output, loss and gradient on exactly the GPU's batch.
fn cpu_pass(
    mlp: &Mlp,
    params: &[f32],
    g: &flowplay_gpu::Inspection,
) -> (Vec<[f32; 2]>, f64, Vec<f32>) {
    let labels = mlp.config().is_conditional().then_some(g.labels.as_slice());
    let mut prepared = Prepared::default();
    mlp.prepare(params, &mut prepared);
    let mut ws = Workspace::new();
    let mut out = vec![[0.0; 2]; g.t.len()];
    mlp.forward(params, &prepared, &g.t, &g.x_in, labels, &mut ws, &mut out);
    let (loss, grads) = mlp.loss_and_gradients(params, &g.t, &g.x_in, labels, &g.target);
    (out, loss, grads)
}

fn check_pass(what: &str, trainer: &mut GpuTrainer) {
    let params = trainer.read_params(false).unwrap();
    let g = trainer.inspect().unwrap();
    let (out, loss, grads) = cpu_pass(trainer.mlp(), &params, &g);
    assert_close(
        &format!("{what}: output"),
        &flat(&g.out),
        &flat(&out),
        FORWARD,
    );
    assert_close(&format!("{what}: loss"), &[g.loss], &[loss as f32], FORWARD);
    // Each tensor separately, so a wrong one is named.
    for entry in &trainer.mlp().layout().entries {
        let r = entry.range();
        assert_close(
            &format!("{what}: ∂L/∂{}", entry.name),
            &g.grads[r.clone()],
            &grads[r],
            GRADIENTS,
        );
    }
}

#[test]
fn forward_loss_and_gradients_match_the_cpu_on_odd_sizes() {
    let Some(ctx) = gpu() else { return };
    let (d, q) = (&ctx.device, &ctx.queue);
    for hidden in [1, 7, 33, 128, 256] {
        for batch in [1, 13, 1000, 4096] {
            let mut trainer = GpuTrainer::new(d, q, config(hidden, batch)).unwrap();
            check_pass(&format!("hidden {hidden}, batch {batch}"), &mut trainer);
        }
    }
}

#[test]
fn deeper_shallower_conditional_and_trellis_networks_match_the_cpu() {
    let Some(ctx) = gpu() else { return };
    let (d, q) = (&ctx.device, &ctx.queue);
    let base = config(33, 517);
    let cases = [
        (
            "depth 1",
            MlpConfig {
                depth: 1,
                ..base.mlp
            },
        ),
        (
            "depth 3",
            MlpConfig {
                depth: 3,
                ..base.mlp
            },
        ),
        (
            "t·1000 with t_dim 128 (TRELLIS)",
            MlpConfig {
                t_scale: 1000.0,
                t_dim: 128,
                ..base.mlp
            },
        ),
        (
            "conditional, 2 classes",
            MlpConfig {
                num_classes: 2,
                ..base.mlp
            },
        ),
    ];
    for (what, mlp) in cases {
        let cfg = TrainConfig {
            mlp,
            p_drop: 0.25,
            ..base.clone()
        };
        let mut trainer = GpuTrainer::new(d, q, cfg).unwrap();
        check_pass(what, &mut trainer);
        // And after a few updates, when the weights are no longer the initial ones.
        trainer.train_blocking(5).unwrap();
        check_pass(&format!("{what}, after 5 steps"), &mut trainer);
    }
}

#[test]
fn one_adamw_step_with_clipping_and_ema_matches_the_cpu() {
    let Some(ctx) = gpu() else { return };
    let (d, q) = (&ctx.device, &ctx.queue);
    for (what, clip, weight_decay, schedule) in [
        ("clipped", Some(0.01_f32), 0.0_f32, LrSchedule::Constant),
        ("unclipped, weight decay", None, 0.1, LrSchedule::Constant),
        (
            "large clip, cosine warm-up",
            Some(100.0),
            0.01,
            LrSchedule::Cosine {
                warmup_steps: 10,
                final_ratio: 0.1,
            },
        ),
    ] {
        let cfg = TrainConfig {
            clip_norm: clip,
            optimizer: AdamWConfig {
                lr: 3e-3,
                weight_decay,
                ..AdamWConfig::default()
            },
            lr_schedule: schedule,
            ema_decay: 0.9,
            ..config(33, 100)
        };
        let mut trainer = GpuTrainer::new(d, q, cfg.clone()).unwrap();
        // Take a few steps so that the moments are not zero, then check one more.
        trainer.train_blocking(3).unwrap();
        let params = trainer.read_params(false).unwrap();
        let ema = trainer.read_params(true).unwrap();
        let (m, v) = trainer.read_moments().unwrap();
        let inspection = trainer.inspect().unwrap();

        let mut cpu_params = params.clone();
        let mut cpu_ema = ema;
        let mut grads = inspection.grads.clone();
        if let Some(c) = clip {
            clip_grad_norm(&mut grads, c);
        }
        let mut adam = AdamW::new(params.len(), cfg.optimizer);
        // Bring the CPU optimizer to the GPU's state: three steps taken, these moments.
        adam.restore(&m, &v, 3).unwrap();
        let lr = cfg.lr_schedule.lr_at(cfg.optimizer.lr, 3, cfg.steps);
        adam.step(&mut cpu_params, &grads, lr);
        ema_update(&mut cpu_ema, &cpu_params, cfg.ema_decay);

        let stats = trainer.train_blocking(1).unwrap();
        assert_eq!(stats.len(), 1);
        assert!((stats[0].lr - lr).abs() <= 1e-9, "{what}: lr");
        let (gm, gv) = trainer.read_moments().unwrap();
        let (cm, cv) = adam.moments();
        assert_close(&format!("{what}: m"), &gm, cm, OPTIMIZER);
        assert_close(&format!("{what}: v"), &gv, cv, OPTIMIZER);
        assert_close(
            &format!("{what}: parameters"),
            &trainer.read_params(false).unwrap(),
            &cpu_params,
            OPTIMIZER,
        );
        assert_close(
            &format!("{what}: EMA"),
            &trainer.read_params(true).unwrap(),
            &cpu_ema,
            OPTIMIZER,
        );
    }
}

#[test]
fn a_hundred_training_steps_match_the_cpu_trainer() {
    let Some(ctx) = gpu() else { return };
    let (d, q) = (&ctx.device, &ctx.queue);
    for (what, cfg) in [
        ("hidden 64, batch 256", config(64, 256)),
        (
            "conditional VP, hidden 33, batch 333",
            TrainConfig {
                path: Path::VpCosine,
                mlp: MlpConfig {
                    num_classes: 2,
                    ..config(33, 1).mlp
                },
                ..config(33, 333)
            },
        ),
    ] {
        let mut cpu = CpuTrainer::new(cfg.clone()).unwrap();
        let mut gpu_trainer = GpuTrainer::new(d, q, cfg).unwrap();
        let mut gpu_losses = Vec::new();
        // Submitted in uneven pieces, as the app does frame by frame.
        for n in [1_u64, 7, 30, 62] {
            gpu_losses.extend(
                gpu_trainer
                    .train_blocking(n)
                    .unwrap()
                    .iter()
                    .map(|s| s.loss),
            );
        }
        for _ in 0..100 {
            cpu.step().unwrap();
        }
        assert_eq!(gpu_trainer.steps_done(), 100);
        assert_close(
            &format!("{what}: losses"),
            &gpu_losses,
            cpu.losses(),
            WHOLE_RUN,
        );
        assert_close(
            &format!("{what}: parameters after 100 steps"),
            &gpu_trainer.read_params(false).unwrap(),
            cpu.params(),
            WHOLE_RUN,
        );
        assert_close(
            &format!("{what}: EMA after 100 steps"),
            &gpu_trainer.read_params(true).unwrap(),
            cpu.ema(),
            WHOLE_RUN,
        );
    }
}

/// A change of the learning rate, weight decay, EMA decay or clipping with steps in flight: no
/// new plan, and the run goes on exactly as a CPU trainer told the same at the same step.
#[test]
fn an_optimizer_change_keeps_the_plan_and_matches_the_cpu() {
    let Some(ctx) = gpu() else { return };
    let cfg = config(33, 129);
    let mut cpu = CpuTrainer::new(cfg.clone()).unwrap();
    let mut trainer = GpuTrainer::new(&ctx.device, &ctx.queue, cfg.clone()).unwrap();
    assert_eq!(trainer.plan_builds(), 1);
    trainer.submit(20).unwrap();
    for _ in 0..20 {
        cpu.step().unwrap();
    }
    let changed = TrainConfig {
        optimizer: AdamWConfig {
            lr: 3e-3,
            weight_decay: 0.01,
            ..cfg.optimizer
        },
        ema_decay: 0.9,
        clip_norm: Some(0.5),
        ..cfg.clone()
    };
    assert!(cfg.only_optimizer_differs(&changed));
    trainer.set_config(changed.clone()).unwrap();
    cpu.set_config(changed).unwrap();
    assert_eq!(
        trainer.plan_builds(),
        1,
        "an optimizer change builds no plan"
    );
    let later = trainer.train_blocking(20).unwrap();
    assert_eq!(trainer.steps_done(), 40);
    assert!(later.iter().all(|s| s.loss.is_finite()));
    for _ in 0..20 {
        cpu.step().unwrap();
    }
    assert_close(
        "parameters after the change",
        &trainer.read_params(false).unwrap(),
        cpu.params(),
        WHOLE_RUN,
    );
    assert_close(
        "EMA after the change",
        &trainer.read_params(true).unwrap(),
        cpu.ema(),
        WHOLE_RUN,
    );
    // A new path does need a new plan.
    let vp = TrainConfig {
        path: Path::VpCosine,
        ..trainer.config().clone()
    };
    trainer.set_config(vp).unwrap();
    assert_eq!(trainer.plan_builds(), 2);
}

#[test]
fn a_diverging_learning_rate_is_reported_and_keeps_the_last_good_weights() {
    let Some(ctx) = gpu() else { return };
    let cfg = TrainConfig {
        optimizer: AdamWConfig {
            lr: 1e30,
            ..AdamWConfig::default()
        },
        clip_norm: None,
        ..config(16, 64)
    };
    let mut trainer = GpuTrainer::new(&ctx.device, &ctx.queue, cfg.clone()).unwrap();
    let err = trainer.train_blocking(50).unwrap_err();
    let GpuError::Core(Error::Diverged { step, .. }) = err else {
        panic!("expected a divergence, got {err}");
    };
    assert!(err.to_string().contains("lower the learning rate"), "{err}");
    assert_eq!(trainer.steps_done(), step);
    assert_eq!(trainer.losses().len() as u64, step);
    // The weights are those of the last good step: finite.
    let kept = trainer.read_params(false).unwrap();
    assert!(kept.iter().all(|p| p.is_finite()));
    // Those weights are ruined by the huge steps before; fresh ones and a sane learning rate
    // train on from there.
    let mut sane = cfg.clone();
    sane.optimizer.lr = 1e-3;
    trainer.set_config(sane).unwrap();
    let fresh = Mlp::new(cfg.mlp).unwrap().init_params(1);
    trainer.set_params(&fresh).unwrap();
    let stats = trainer.train_blocking(5).unwrap();
    assert_eq!(stats.len(), 5);
    assert!(stats.iter().all(|s| s.loss.is_finite()));
}

#[test]
fn bad_settings_are_refused_with_a_clear_message() {
    let Some(ctx) = gpu() else { return };
    let mut trainer = GpuTrainer::new(&ctx.device, &ctx.queue, config(8, 16)).unwrap();
    let mut other = trainer.config().clone();
    other.mlp.hidden = 9;
    let err = trainer.set_config(other).unwrap_err().to_string();
    assert!(err.contains("shape changed"), "{err}");
    let err = trainer.set_params(&[0.0; 3]).unwrap_err().to_string();
    assert!(err.contains("expected"), "{err}");
    let huge = TrainConfig {
        batch: 1 << 20,
        ..config(256, 16)
    };
    let err = match GpuTrainer::new(&ctx.device, &ctx.queue, huge) {
        Ok(_) => panic!("a batch of 2^20 at hidden 256 exceeds one binding"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("MiB"), "{err}");
}

#[test]
fn switching_the_dataset_keeps_the_weights_and_draws_from_the_new_data() {
    let Some(ctx) = gpu() else { return };
    let mut trainer = GpuTrainer::new(&ctx.device, &ctx.queue, config(16, 128)).unwrap();
    trainer.train_blocking(5).unwrap();
    let before = trainer.read_params(false).unwrap();
    trainer
        .set_dataset(
            DataSource::Builtin(Dataset::Checkerboard),
            DataSource::NORMAL,
            None,
            None,
        )
        .unwrap();
    assert_eq!(trainer.read_params(false).unwrap(), before);
    assert_eq!(trainer.steps_done(), 5);
    // The next batch comes from the checkerboard, exactly as the CPU draws it from that pool.
    check_batch("after switching to the checkerboard", &mut trainer);
    assert_eq!(trainer.data(), &Dataset::Checkerboard.sample(5000, 7));
    // Class conditioning needs labels the checkerboard does not have.
    let mut conditional = GpuTrainer::new(
        &ctx.device,
        &ctx.queue,
        TrainConfig {
            mlp: MlpConfig {
                num_classes: 2,
                ..config(16, 1).mlp
            },
            ..config(16, 64)
        },
    )
    .unwrap();
    let err = conditional
        .set_dataset(
            DataSource::Builtin(Dataset::Checkerboard),
            DataSource::NORMAL,
            None,
            None,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("has none"), "{err}");
}
