//! `flowplay bench`: throughput figures, printed (speed is measured here, never asserted in tests).

use std::time::{Duration, Instant};

use anyhow::Result;
use flowplay_core::assignment;
use flowplay_core::data::Dataset;
use flowplay_core::flow::{FlowModel, SampleRequest};
use flowplay_core::mlp::MlpConfig;
use flowplay_core::sampler::{Record, SamplerConfig, Solver};
use flowplay_core::train::{CpuTrainer, TrainConfig};
use flowplay_gpu::{GpuContext, GpuSampler, GpuTrainer};
use serde::Serialize;

use crate::backend::BackendArg;
use crate::limits;

/// Options of `flowplay bench`.
#[derive(Debug, clap::Args)]
#[command(allow_negative_numbers = true)]
pub(crate) struct BenchArgs {
    /// Seconds to measure each case (after a warm-up).
    #[arg(long, default_value_t = 5.0)]
    pub(crate) seconds: f64,
    /// Particles for the sampling cases.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) particles: usize,
    /// Benchmark training at this hidden width only (with --batch).
    #[arg(long, requires = "batch")]
    pub(crate) hidden: Option<usize>,
    /// Benchmark training at this batch size only (with --hidden).
    #[arg(long, requires = "hidden")]
    pub(crate) batch: Option<usize>,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub(crate) threads: usize,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Where to run: the GPU when one with compute shaders exists, else the CPU reference.
    #[arg(long, value_enum, default_value = "auto")]
    pub(crate) backend: BackendArg,
}

#[derive(Serialize)]
struct Figure {
    case: String,
    value: f64,
    unit: &'static str,
    reference: Option<&'static str>,
}

/// Runs `flowplay bench`.
pub(crate) fn run(args: &BenchArgs) -> Result<()> {
    crate::init_threads(args.threads)?;
    if !(args.seconds > 0.0 && args.seconds <= limits::MAX_BENCH_SECONDS) {
        anyhow::bail!(
            "--seconds must be positive and at most {}, got {:?}",
            limits::MAX_BENCH_SECONDS,
            args.seconds
        );
    }
    limits::check_count(
        "--particles",
        args.particles,
        limits::MAX_BENCH_PARTICLES,
        "each takes 8 bytes of every state buffer",
    )?;
    let budget = Duration::from_secs_f64(args.seconds);
    let gpu = crate::backend::gpu_for(args.backend)?;
    if !args.json {
        match &gpu {
            Some(context) => println!("flowplay bench: GPU {}", context.describe()),
            None => println!(
                "flowplay bench: CPU reference, {} threads on {}",
                flowplay_core::par::threads(),
                cpu_name()
            ),
        }
    }
    let train_cases: Vec<(usize, usize, Option<&'static str>)> = match (args.hidden, args.batch) {
        (Some(h), Some(b)) => vec![(h, b, None)],
        _ if gpu.is_some() => vec![
            (
                128,
                512,
                Some("PyTorch eager, H100: 311–358 steps/s; goal ≥ 5000"),
            ),
            (
                256,
                4096,
                Some("PyTorch eager, H100: 289–309 steps/s; goal ≥ 3000"),
            ),
        ],
        _ => vec![
            (
                128,
                512,
                Some("PyTorch, 2 threads, this machine: 260–290 steps/s"),
            ),
            (
                256,
                4096,
                Some("PyTorch, 2 threads, this machine: 23 steps/s"),
            ),
        ],
    };
    for (hidden, batch, reference) in train_cases {
        let rate = match &gpu {
            Some(context) => gpu_train_rate(context, hidden, batch, budget)?,
            None => train_rate(hidden, batch, budget)?,
        };
        report(
            args.json,
            &Figure {
                case: format!("train  hidden {hidden}, batch {batch}"),
                value: rate,
                unit: "steps/s",
                reference,
            },
        )?;
    }
    if args.hidden.is_none() {
        for (what, n, other) in [
            (
                "OT coupling block: 256 noise vs 256 moons",
                256,
                Dataset::Normal,
            ),
            ("exact W2: 2000 samples vs 2000 moons", 2000, Dataset::Moons),
        ] {
            let ms = assignment_ms(n, other, budget);
            report(
                args.json,
                &Figure {
                    case: what.to_owned(),
                    value: ms,
                    unit: "ms",
                    reference: None,
                },
            )?;
        }
        for hidden in [128, 256] {
            let rate = match &gpu {
                Some(context) => gpu_sample_rate(context, hidden, args.particles, budget)?,
                None => sample_rate(hidden, args.particles, budget)?,
            };
            report(
                args.json,
                &Figure {
                    case: format!(
                        "sample euler, hidden {hidden}, {} particles",
                        args.particles
                    ),
                    value: rate / 1e6,
                    unit: "M particle-steps/s",
                    reference: match (&gpu, hidden) {
                        (Some(_), 128) => Some("PyTorch eager, H100, 1 M: 163 M; goal ≥ 326 M"),
                        (Some(_), _) => Some("PyTorch eager, H100, 1 M: 69 M; goal ≥ 69 M"),
                        (None, _) => None,
                    },
                },
            )?;
        }
        let secs = match &gpu {
            Some(context) => gpu_likelihood_map_secs(context, budget)?,
            None => likelihood_map_secs(budget)?,
        };
        report(
            args.json,
            &Figure {
                case: format!(
                    "likelihood map {LOGP_CELLS}×{LOGP_CELLS}, rk4 × {LOGP_STEPS}, hidden 128"
                ),
                value: secs,
                unit: "s",
                reference: None,
            },
        )?;
        let secs = sweep_secs(gpu.as_ref())?;
        report(
            args.json,
            &Figure {
                case: format!(
                    "NFE sweep, {} settings × {SWEEP_N} samples, W2 + NLL",
                    flowplay_core::sweep::grid(flowplay_core::sweep::MAX_NFE).len()
                ),
                value: secs,
                unit: "s",
                reference: None,
            },
        )?;
    }
    Ok(())
}

/// Samples (and held-out points) a setting in the sweep case, as the app's lab takes.
const SWEEP_N: usize = 1000;

/// Seconds of one whole solver × NFE sweep (`flowplay sweep`'s table, the app's lab) of a
/// hidden-128 network against fresh moons: every setting integrated, its exact W2 and the
/// held-out likelihood.
fn sweep_secs(gpu: Option<&GpuContext>) -> Result<f64> {
    use flowplay_core::sweep;
    let model = bench_model(128)?;
    let held_out = Dataset::Moons.sample(SWEEP_N, 1).xy;
    let x0 = model.source_samples(SWEEP_N, 0, None)?;
    let mut sampler = match gpu {
        Some(context) => {
            let sampler = GpuSampler::new(&context.device, &model.mlp, model.spec.path)?;
            sampler.set_params(&context.queue, &model.params)?;
            Some((context, sampler))
        }
        None => None,
    };
    let started = Instant::now();
    for setting in sweep::grid(sweep::MAX_NFE) {
        std::hint::black_box(match &mut sampler {
            None => sweep::measure(&model, setting, 1.0, &x0, &held_out, true)?,
            Some((context, sampler)) => {
                crate::cmd_sweep::measure_gpu(context, sampler, setting, 1.0, &x0, &held_out, true)?
            }
        });
    }
    Ok(started.elapsed().as_secs_f64())
}

/// The playground's likelihood map: cells across each side, and RK4 steps.
const LOGP_CELLS: usize = 128;
const LOGP_STEPS: usize = 32;

/// The cell centres of the likelihood map over [-3, 3]² with its request.
fn likelihood_map() -> (Vec<[f32; 2]>, SampleRequest) {
    let n = LOGP_CELLS;
    let centre = |i: usize| -3.0 + 6.0 * (i as f32 + 0.5) / n as f32;
    let points = (0..n)
        .flat_map(|j| (0..n).map(move |i| [centre(i), centre(j)]))
        .collect::<Vec<_>>();
    let request = SampleRequest::new(SamplerConfig::new(Solver::Rk4, LOGP_STEPS), points.len());
    (points, request)
}

/// Seconds of one likelihood map on the CPU (the reverse ODE with the exact trace).
fn likelihood_map_secs(budget: Duration) -> Result<f64> {
    let model = bench_model(128)?;
    let (points, request) = likelihood_map();
    let started = Instant::now();
    let mut runs = 0_u32;
    while started.elapsed() < budget || runs < 1 {
        std::hint::black_box(model.log_likelihood(&points, None, 1.0, &request.sampler)?);
        runs += 1;
    }
    Ok(started.elapsed().as_secs_f64() / f64::from(runs))
}

/// Seconds of one likelihood map on the GPU, read back.
fn gpu_likelihood_map_secs(context: &GpuContext, budget: Duration) -> Result<f64> {
    let model = bench_model(128)?;
    let mut sampler = GpuSampler::new(&context.device, &model.mlp, model.spec.path)?;
    sampler.set_params(&context.queue, &model.params)?;
    let (points, request) = likelihood_map();
    let (device, queue) = (&context.device, &context.queue);
    sampler.log_likelihood(device, queue, &points, &request)?;
    let started = Instant::now();
    let mut runs = 0_u32;
    while started.elapsed() < budget || runs < 1 {
        std::hint::black_box(sampler.log_likelihood(device, queue, &points, &request)?);
        runs += 1;
    }
    Ok(started.elapsed().as_secs_f64() / f64::from(runs))
}

fn report(json: bool, figure: &Figure) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(figure)?);
    } else {
        let reference = figure
            .reference
            .map(|r| format!("   ({r})"))
            .unwrap_or_default();
        println!(
            "{:<44} {:>10.1} {}{reference}",
            figure.case, figure.value, figure.unit
        );
    }
    Ok(())
}

/// The seed recipe's setup at this size.
fn bench_config(hidden: usize, batch: usize) -> TrainConfig {
    let mut config = TrainConfig::seed_recipe();
    config.mlp.hidden = hidden;
    config.batch = batch;
    config
}

/// A freshly initialised network of this width, for the sampling cases.
fn bench_model(hidden: usize) -> Result<FlowModel> {
    let spec = TrainConfig {
        mlp: MlpConfig {
            hidden,
            ..MlpConfig::default()
        },
        ..TrainConfig::seed_recipe()
    }
    .model_spec();
    let params = flowplay_core::mlp::Mlp::new(spec.mlp)?.init_params(0);
    Ok(FlowModel::new(spec, params)?)
}

/// Training steps per second of the seed recipe's setup at this size.
fn train_rate(hidden: usize, batch: usize, budget: Duration) -> Result<f64> {
    let mut trainer = CpuTrainer::new(bench_config(hidden, batch))?;
    for _ in 0..3 {
        trainer.step()?;
    }
    let started = Instant::now();
    let mut steps = 0_u64;
    while started.elapsed() < budget || steps < 5 {
        trainer.step()?;
        steps += 1;
    }
    Ok(steps as f64 / started.elapsed().as_secs_f64())
}

/// Training steps per second on the GPU, in submissions of 64 steps, counting until the GPU has
/// finished them (the losses read back).
fn gpu_train_rate(
    context: &GpuContext,
    hidden: usize,
    batch: usize,
    budget: Duration,
) -> Result<f64> {
    let mut trainer =
        GpuTrainer::new(&context.device, &context.queue, bench_config(hidden, batch))?;
    trainer.train_blocking(8)?;
    let started = Instant::now();
    let mut steps = 0_u64;
    while started.elapsed() < budget || steps < 64 {
        steps += trainer.train_blocking(64)?.len() as u64;
    }
    Ok(steps as f64 / started.elapsed().as_secs_f64())
}

/// Euler particle-steps per second on the GPU through a freshly initialised network, counting
/// until the final positions are read back.
fn gpu_sample_rate(
    context: &GpuContext,
    hidden: usize,
    particles: usize,
    budget: Duration,
) -> Result<f64> {
    let model = bench_model(hidden)?;
    let mut sampler = GpuSampler::new(&context.device, &model.mlp, model.spec.path)?;
    sampler.set_params(&context.queue, &model.params)?;
    let steps = 4;
    let config = SamplerConfig::new(Solver::Euler, steps);
    let x0 = model.source_samples(particles, 0, None)?;
    let (device, queue) = (&context.device, &context.queue);
    let request = SampleRequest::new(config, particles);
    sampler.sample(device, queue, &x0, &request)?;
    let started = Instant::now();
    let mut runs = 0_u64;
    while started.elapsed() < budget || runs < 1 {
        sampler.sample(device, queue, &x0, &request)?;
        runs += 1;
    }
    Ok((runs * steps as u64 * particles as u64) as f64 / started.elapsed().as_secs_f64())
}

/// Euler particle-steps per second through a freshly initialised network.
fn sample_rate(hidden: usize, particles: usize, budget: Duration) -> Result<f64> {
    let model = bench_model(hidden)?;
    let steps = 4;
    let request = SampleRequest {
        sampler: SamplerConfig::new(Solver::Euler, steps),
        n: particles,
        seed: 0,
        labels: None,
        cfg_scale: 1.0,
        record: Record::NONE,
    };
    let x0 = model.source_samples(particles, 0, None)?;
    model.integrate(&x0, &request)?;
    let started = Instant::now();
    let mut runs = 0_u64;
    while started.elapsed() < budget || runs < 1 {
        model.integrate(&x0, &request)?;
        runs += 1;
    }
    Ok((runs * steps as u64 * particles as u64) as f64 / started.elapsed().as_secs_f64())
}

/// Milliseconds of one exact assignment between `n` moons and `n` points of `other`.
fn assignment_ms(n: usize, other: Dataset, budget: Duration) -> f64 {
    let a = Dataset::Moons.sample(n, 1).xy;
    let b = other.sample(n, 2).xy;
    let started = Instant::now();
    let mut runs = 0_u32;
    while started.elapsed() < budget / 4 || runs < 1 {
        std::hint::black_box(assignment::match_points(&a, &b));
        runs += 1;
    }
    started.elapsed().as_secs_f64() * 1e3 / f64::from(runs)
}

/// The processor's model name, where the system says it.
fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned())
}
