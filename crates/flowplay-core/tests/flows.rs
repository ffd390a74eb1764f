//! Whole-flow behaviour of the CPU reference: small but real training runs.

#![allow(clippy::unwrap_used, reason = "a test fails loudly")]

use flowplay_core::data::Dataset;
use flowplay_core::flow::{DataSource, SampleRequest};
use flowplay_core::mlp::MlpConfig;
use flowplay_core::optim::AdamWConfig;
use flowplay_core::path::{Path, TimeSampling};
use flowplay_core::sampler::{Record, SamplerConfig, Solver};
use flowplay_core::train::{Coupling, CpuTrainer, LrSchedule, TrainConfig};

/// A small model that trains in a second or two.
fn small(dataset: Dataset) -> TrainConfig {
    TrainConfig {
        dataset: DataSource::Builtin(dataset),
        mlp: MlpConfig {
            hidden: 64,
            depth: 2,
            t_dim: 32,
            t_scale: 1.0,
            num_classes: 0,
        },
        batch: 256,
        optimizer: AdamWConfig {
            lr: 2e-3,
            ..AdamWConfig::default()
        },
        lr_schedule: LrSchedule::Constant,
        ema_decay: 0.99,
        steps: 1500,
        pool_size: 16_384,
        ..TrainConfig::default()
    }
}

fn train(config: TrainConfig) -> CpuTrainer {
    let steps = config.steps;
    let mut trainer = CpuTrainer::new(config).unwrap();
    for _ in 0..steps {
        trainer.step().unwrap();
    }
    trainer
}

fn w2(trainer: &CpuTrainer, solver: Solver, steps: usize) -> f64 {
    let config = trainer.config();
    let Some(dataset) = (match &config.dataset {
        DataSource::Builtin(d) => Some(*d),
        DataSource::Custom { .. } => None,
    }) else {
        unreachable!("built-in datasets only here");
    };
    let data = dataset.sample(800, 99);
    trainer
        .model(false)
        .evaluate(&SamplerConfig::new(solver, steps), 5, 1.0, &data, None)
        .unwrap()
        .quality
        .w2
}

#[test]
fn reflow_lowers_straightness_on_moons() {
    let mut trainer = train(small(Dataset::Moons));
    let before = trainer.model(false).geometry(1000, 3, None).unwrap();
    let one_step_before = w2(&trainer, Solver::Euler, 1);
    trainer
        .start_reflow_round(8192, &SamplerConfig::new(Solver::Rk4, 16), false, 1500)
        .unwrap();
    for _ in 0..1500 {
        trainer.step().unwrap();
    }
    let after = trainer.model(false).geometry(1000, 3, None).unwrap();
    let one_step_after = w2(&trainer, Solver::Euler, 1);
    println!(
        "straightness {:.4} → {:.4}, path energy {:.3} → {:.3}, 1-step W2 {one_step_before:.3} → {one_step_after:.3}",
        before.straightness, after.straightness, before.path_energy, after.path_energy
    );
    assert!(
        after.straightness < 0.5 * before.straightness,
        "reflow should straighten the flow: {} → {}",
        before.straightness,
        after.straightness
    );
    assert!(after.path_energy < before.path_energy);
    assert!(
        one_step_after < one_step_before,
        "1-step sampling should improve"
    );
    assert_eq!(trainer.round(), 1);
}

#[test]
fn minibatch_ot_straightens_the_first_round() {
    let independent = train(small(Dataset::Moons))
        .model(false)
        .geometry(800, 4, None)
        .unwrap();
    let mut config = small(Dataset::Moons);
    config.coupling = Coupling::MinibatchOt { block: 128 };
    let ot = train(config).model(false).geometry(800, 4, None).unwrap();
    println!(
        "straightness: independent {:.4}, OT {:.4}",
        independent.straightness, ot.straightness
    );
    assert!(ot.straightness < 0.3 * independent.straightness);
}

#[test]
fn preconditioned_ve_trains_and_plain_ve_at_sigma_50_does_not() {
    let mut config = small(Dataset::Moons);
    // Logit-normal centred at t = 0.62 puts most σ(1−t) between 0.1 and 3, where VE learns.
    config.time_sampling = TimeSampling::LogitNormal {
        mean: 0.5,
        std: 1.0,
    };
    config.path = Path::Ve {
        sigma_min: 0.01,
        sigma_max: 50.0,
        sigma_data: Some(Dataset::Moons.sample(4096, 0).rms()),
    };
    let preconditioned = w2(&train(config.clone()), Solver::Heun, 50);
    config.path = Path::Ve {
        sigma_min: 0.01,
        sigma_max: 50.0,
        sigma_data: None,
    };
    let plain = w2(&train(config), Solver::Heun, 50);
    println!("VE W2: preconditioned {preconditioned:.3}, plain {plain:.3}");
    // A 64-wide net for 1500 steps; the README gives full-size figures.
    assert!(
        preconditioned < 0.85,
        "preconditioned VE W2 {preconditioned}"
    );
    assert!(plain > 2.0 * preconditioned, "plain VE W2 {plain}");
}

#[test]
fn vp_cosine_trains() {
    let mut config = small(Dataset::EightGaussians);
    config.path = Path::VpCosine;
    let quality = w2(&train(config), Solver::Rk4, 10);
    println!("VP-cosine on 8 Gaussians: W2 {quality:.3}");
    assert!(quality < 0.5, "W2 {quality}");
}

/// A conditional model's samples of class c land in mode c; the null label gives the whole
/// mixture (guidance scale 0 is the unconditional model); guidance s > 1 keeps them there.
#[test]
fn classifier_free_guidance_steers_to_the_class() {
    let mut config = small(Dataset::EightGaussians);
    config.mlp.num_classes = 8;
    config.p_drop = 0.2;
    let trainer = train(config);
    let model = trainer.model(false);
    let class = 3_u32;
    let nearest_mode = |p: [f32; 2]| -> u32 {
        let angle = f64::from(p[1]).atan2(f64::from(p[0]));
        (angle / std::f64::consts::FRAC_PI_4)
            .round()
            .rem_euclid(8.0) as u32
    };
    let accuracy = |cfg_scale: f32| -> f64 {
        let request = SampleRequest {
            sampler: SamplerConfig::new(Solver::Rk4, 10),
            n: 400,
            seed: 8,
            labels: Some(vec![class; 400]),
            cfg_scale,
            record: Record::NONE,
        };
        let out = model.sample(&request, None).unwrap();
        out.x.iter().filter(|&&p| nearest_mode(p) == class).count() as f64 / 400.0
    };
    let (unconditional, plain, guided) = (accuracy(0.0), accuracy(1.0), accuracy(3.0));
    println!("share in mode {class}: s=0 {unconditional:.3}, s=1 {plain:.3}, s=3 {guided:.3}");
    assert!(
        unconditional < 0.3,
        "the null label should give all modes: {unconditional}"
    );
    assert!(
        plain > 0.9,
        "conditional samples should land in their mode: {plain}"
    );
    assert!(
        guided >= plain - 0.01,
        "guidance should not lose the class: {guided} vs {plain}"
    );
}

/// Threads change the speed, never the numbers: chunks are fixed and summed in order.
#[test]
fn results_do_not_depend_on_the_thread_count() {
    let mut config = small(Dataset::Spirals);
    config.steps = 30;
    config.batch = 700;
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| train(config.clone()).params().to_vec())
    };
    assert!(run(1) == run(3), "1 and 3 threads disagree");
}
