//! `flowplay train`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::ValueEnum;
use flowplay_core::data::{Dataset, Points, points_to_csv};
use flowplay_core::flow::{DataSource, Geometry};
use flowplay_core::guard::DivergenceGuard;
use flowplay_core::metrics::Quality;
use flowplay_core::mlp::MlpConfig;
use flowplay_core::optim::AdamWConfig;
use flowplay_core::sampler::SamplerConfig;
use flowplay_core::train::{Coupling, LrSchedule, TrainConfig};

use crate::backend::{BackendArg, Trainer};
use flowplay_core::weights;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::limits;
use crate::output::Staged;
use crate::plot;
use crate::spec::{self, PathArgs, SolverName, TimeArgs};

/// How x₀ and x₁ are paired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum CouplingName {
    /// Independent pairs.
    Independent,
    /// Minibatch optimal transport (OT-CFM).
    Ot,
}

/// Learning-rate schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ScheduleName {
    /// Constant (QR §4.4).
    Constant,
    /// Linear warm-up then cosine decay.
    Cosine,
}

/// Which parameters to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum WeightsName {
    /// The optimizer's parameters.
    Raw,
    /// Their exponential moving average.
    Ema,
}

/// The defaults of every option: `TrainConfig::default()`, the recommended configuration.
static DEFAULTS: std::sync::LazyLock<TrainConfig> = std::sync::LazyLock::new(TrainConfig::default);

/// Options of `flowplay train`. The defaults are `TrainConfig::default()`: the Quick Reference's
/// conventions (constant learning rate, clip 1, no weight decay, t unscaled, depth 2) with the
/// recommended size and length.
#[derive(Debug, clap::Args)]
#[command(allow_negative_numbers = true)]
pub(crate) struct TrainArgs {
    /// Where to train: the GPU when one with compute shaders exists, else the CPU reference.
    #[arg(long, value_enum, default_value = "auto")]
    pub(crate) backend: BackendArg,
    /// Target dataset: moons, 8gaussians, checkerboard, spirals, circles, swiss-roll, normal.
    #[arg(long, default_value = "moons", value_parser = spec::parse_dataset)]
    pub(crate) dataset: Dataset,
    /// Train on your own points instead: a CSV with columns x,y[,label].
    #[arg(long, value_name = "CSV")]
    pub(crate) points: Option<PathBuf>,
    /// Source distribution p₀: normal (N(0, I)) or any dataset name (data-to-data transport).
    #[arg(long, default_value = "normal", value_parser = spec::parse_dataset)]
    pub(crate) source: Dataset,
    /// Start from your own points instead: a CSV with columns x,y[,label].
    #[arg(long, value_name = "CSV", conflicts_with = "source")]
    pub(crate) source_points: Option<PathBuf>,

    #[command(flatten)]
    pub(crate) path: PathArgs,
    #[command(flatten)]
    pub(crate) time: TimeArgs,

    /// Width of the hidden layers and of the time embedding.
    #[arg(long, default_value_t = DEFAULTS.mlp.hidden)]
    pub(crate) hidden: usize,
    /// Hidden layers after the input (QR: 2).
    #[arg(long, default_value_t = DEFAULTS.mlp.depth)]
    pub(crate) depth: usize,
    /// Size of the sinusoidal time embedding (even).
    #[arg(long, default_value_t = DEFAULTS.mlp.t_dim)]
    pub(crate) t_dim: usize,
    /// The network sees t_scale·t: 1 as in the Quick Reference, 1000 as in TRELLIS.
    #[arg(long, default_value_t = DEFAULTS.mlp.t_scale)]
    pub(crate) t_scale: f32,

    /// Samples per training step.
    #[arg(long, default_value_t = DEFAULTS.batch)]
    pub(crate) batch: usize,
    /// Peak learning rate of AdamW.
    #[arg(long, default_value_t = DEFAULTS.optimizer.lr)]
    pub(crate) lr: f32,
    /// Learning-rate schedule.
    #[arg(long, value_enum, default_value = "constant")]
    pub(crate) lr_schedule: ScheduleName,
    /// Warm-up steps of the cosine schedule.
    #[arg(long, default_value_t = 0)]
    pub(crate) warmup: u64,
    /// AdamW's decoupled weight decay.
    #[arg(long, default_value_t = DEFAULTS.optimizer.weight_decay)]
    pub(crate) weight_decay: f32,
    /// Clip the global gradient norm to this; 0 disables.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) clip: f32,
    /// EMA decay of the parameters (QR §4.4).
    #[arg(long, default_value_t = DEFAULTS.ema_decay)]
    pub(crate) ema_decay: f32,
    /// Training steps (of the first round).
    #[arg(long, default_value_t = DEFAULTS.steps)]
    pub(crate) steps: u64,
    /// Seed: data pool, initial weights and every batch. Same seed, same result.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,

    /// Pairing of source and data samples in a batch.
    #[arg(long, value_enum, default_value = "independent")]
    pub(crate) coupling: CouplingName,
    /// Minibatch OT: largest block solved exactly. Its cost grows as the cube: on this
    /// project's 2-core reference machine 256 takes about 13 ms, 512 about 80 ms.
    #[arg(long, default_value_t = 256)]
    pub(crate) ot_block: usize,

    /// Condition on the dataset's class labels (QR §7.2).
    #[arg(long)]
    pub(crate) class_cond: bool,
    /// Probability of dropping a label to ∅ during training (for guidance).
    #[arg(long, default_value_t = DEFAULTS.p_drop)]
    pub(crate) p_drop: f32,
    /// Guidance scale used for the evaluation samples of a conditional model.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) cfg: f32,

    /// Reflow rounds after the first training (QR §7.1).
    #[arg(long, default_value_t = 0)]
    pub(crate) reflow: usize,
    /// Training steps of each reflow round (default: --steps).
    #[arg(long)]
    pub(crate) reflow_steps: Option<u64>,
    /// Number of (x₀, ODE(x₀)) pairs each reflow round trains on.
    #[arg(long, default_value_t = 32_768)]
    pub(crate) reflow_pairs: usize,
    /// Solver that generates the reflow pairs.
    #[arg(long, value_enum, default_value = "rk4")]
    pub(crate) reflow_solver: SolverName,
    /// Steps of that solver.
    #[arg(long, default_value_t = 32)]
    pub(crate) reflow_solver_steps: usize,
    /// Parameters that generate the reflow pairs.
    #[arg(long, value_enum, default_value = "raw")]
    pub(crate) reflow_from: WeightsName,

    /// Solver for the evaluation samples (samples.csv, plot.png, metrics.json).
    #[arg(long, value_enum, default_value = "rk4")]
    pub(crate) eval_solver: SolverName,
    /// Steps of the evaluation solver.
    #[arg(long, default_value_t = 8)]
    pub(crate) eval_steps: usize,
    /// Number of evaluation samples (compared with as many fresh data points).
    #[arg(long, default_value_t = 2000)]
    pub(crate) eval_n: usize,
    /// Data pool size batches draw from.
    #[arg(long, default_value_t = DEFAULTS.pool_size)]
    pub(crate) pool: usize,

    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub(crate) threads: usize,
    /// Output directory for config.json, metrics.json, weights, samples.csv and plot.png.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
}

#[derive(Serialize)]
struct ConfigFile<'a> {
    flowplay_version: &'static str,
    command: String,
    train: &'a TrainConfig,
    reflow: ReflowSettings,
    eval: EvalSettings,
    threads: usize,
    /// Where training ran.
    backend: &'a str,
}

#[derive(Clone, Copy, Serialize)]
struct ReflowSettings {
    rounds: usize,
    steps_per_round: u64,
    pairs: usize,
    sampler: SamplerConfig,
    from_ema: bool,
}

#[derive(Clone, Copy, Serialize)]
struct EvalSettings {
    sampler: SamplerConfig,
    nfe: usize,
    n: usize,
    cfg_scale: f32,
}

#[derive(Serialize)]
struct RoundMetrics {
    round: usize,
    steps: u64,
    seconds: f64,
    steps_per_second: f64,
    final_loss: f32,
    geometry_raw: Geometry,
    quality_raw: Quality,
    quality_ema: Quality,
    one_step_euler_w2_raw: f64,
    /// The raw weights' evaluation samples (for samples.csv and plot.png).
    #[serde(skip)]
    samples_raw: Points,
}

#[derive(Serialize)]
struct MetricsFile<'a> {
    steps: u64,
    /// Training time, without evaluation.
    seconds: f64,
    steps_per_second: f64,
    threads: usize,
    backend: &'a str,
    eval: EvalSettings,
    rounds: &'a [RoundMetrics],
    final_quality_raw: Quality,
    final_quality_ema: Quality,
    loss: &'a [f32],
}

/// Runs `flowplay train`.
pub(crate) fn run(args: &TrainArgs) -> Result<()> {
    crate::init_threads(args.threads)?;
    check_sizes(args)?;
    let (dataset, custom_data) = spec::data_source(args.dataset, args.points.as_deref())?;
    let (source, custom_source) = spec::data_source(args.source, args.source_points.as_deref())?;
    // The data pool batches draw from: drawn once, and the data scale and classes read off it.
    let pool = match (&custom_data, args.dataset) {
        (Some(points), _) => points.clone(),
        (None, builtin) => builtin.sample(args.pool, args.seed),
    };
    let config = train_config(args, dataset, source, &pool)?;
    let eval = EvalSettings {
        sampler: SamplerConfig::new(args.eval_solver.into(), args.eval_steps),
        nfe: args.eval_steps
            * flowplay_core::sampler::Solver::from(args.eval_solver).evals_per_step(),
        n: args.eval_n,
        cfg_scale: args.cfg,
    };
    eval.sampler.validate()?;
    let reflow = ReflowSettings {
        rounds: args.reflow,
        steps_per_round: args.reflow_steps.unwrap_or(args.steps),
        pairs: args.reflow_pairs,
        sampler: SamplerConfig::new(args.reflow_solver.into(), args.reflow_solver_steps),
        from_ema: args.reflow_from == WeightsName::Ema,
    };
    if args.reflow > 0 {
        reflow.sampler.validate()?;
    }
    if args.steps == 0 {
        anyhow::bail!("--steps must be at least 1");
    }

    // Everything is checked; from here on, outputs are staged and appear only on success.
    let staged = Staged::new(&args.out)?;
    let gpu = crate::backend::gpu_for(args.backend)?;
    let mut trainer = Trainer::new(gpu, config.clone(), pool, custom_source)?;
    let eval_data = eval_points(&config, custom_data.as_ref(), args.eval_n)?;

    let started = Instant::now();
    let mut rounds = Vec::new();
    let mut guard = DivergenceGuard::new();
    for round in 0..=args.reflow {
        // A reflow round trains on new pairs from a lower loss: its level is its own.
        guard.reset();
        if round > 0 {
            trainer.start_reflow_round(
                reflow.pairs,
                &reflow.sampler,
                reflow.from_ema,
                reflow.steps_per_round,
            )?;
        }
        let steps = if round == 0 {
            args.steps
        } else {
            reflow.steps_per_round
        };
        let round_started = Instant::now();
        train_round(
            &mut trainer,
            &mut guard,
            steps,
            round,
            args.reflow,
            args.quiet,
        )?;
        let seconds = round_started.elapsed().as_secs_f64();
        rounds.push(measure_round(
            &trainer, round, steps, seconds, &eval, &eval_data,
        )?);
        if args.reflow > 0 {
            staged.write(
                &format!("weights_round{round}.safetensors"),
                &weights::to_safetensors(&trainer.model(false)?),
            )?;
        }
    }
    let seconds: f64 = rounds.iter().map(|r| r.seconds).sum();
    let total_steps = trainer.steps_done();

    // Final outputs: the evaluation samples of the raw weights, both weight sets, the plot.
    let raw = trainer.model(false)?;
    let ema = trainer.model(true)?;
    let last = rounds.last().context("no training round ran")?;
    let samples = &last.samples_raw;
    let threads = flowplay_core::par::threads();
    let backend = trainer.describe();
    let config_file = ConfigFile {
        flowplay_version: env!("CARGO_PKG_VERSION"),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        train: &config,
        reflow,
        eval,
        threads,
        backend: &backend,
    };
    let metrics = MetricsFile {
        steps: total_steps,
        seconds,
        steps_per_second: total_steps as f64 / seconds,
        threads,
        backend: &backend,
        eval,
        final_quality_raw: last.quality_raw,
        final_quality_ema: last.quality_ema,
        rounds: &rounds,
        loss: trainer.losses(),
    };
    staged.write(
        "config.json",
        serde_json::to_string_pretty(&config_file)?.as_bytes(),
    )?;
    staged.write(
        "metrics.json",
        serde_json::to_string_pretty(&metrics)?.as_bytes(),
    )?;
    staged.write("weights.safetensors", &weights::to_safetensors(&raw))?;
    staged.write("weights_ema.safetensors", &weights::to_safetensors(&ema))?;
    staged.write("samples.csv", points_to_csv(samples).as_bytes())?;
    let title = format!(
        "{} · {} · W2 {:.3}",
        config.dataset.name(),
        config.path.name(),
        last.quality_raw.w2
    );
    staged.write(
        "plot.png",
        &plot::scatter_png(&eval_data.xy, &samples.xy, &title)?,
    )?;
    staged.commit()?;

    println!(
        "trained {total_steps} steps in {seconds:.1} s ({:.0} steps/s, {backend}); \
         evaluation took {:.1} s",
        total_steps as f64 / seconds,
        started.elapsed().as_secs_f64() - seconds
    );
    for r in &rounds {
        println!(
            "round {}: loss {:.4}  W2 {:.4} (EMA {:.4})  MMD {:.4}  straightness {:.4}  1-step W2 {:.3}",
            r.round,
            r.final_loss,
            r.quality_raw.w2,
            r.quality_ema.w2,
            r.quality_raw.mmd,
            r.geometry_raw.straightness,
            r.one_step_euler_w2_raw
        );
    }
    println!("wrote {}", args.out.display());
    Ok(())
}

/// The sizes that allocate or cost time, bounded before anything is drawn.
fn check_sizes(args: &TrainArgs) -> Result<()> {
    limits::check_count(
        "--pool",
        args.pool,
        limits::MAX_POOL,
        "points of the data pool batches draw from",
    )?;
    if args.eval_n < 2 || args.eval_n > limits::MAX_EVAL_N {
        anyhow::bail!(
            "--eval-n must be between 2 and {}, got {} (the exact W2 is cubic in it)",
            limits::MAX_EVAL_N,
            args.eval_n
        );
    }
    if args.reflow > 0 {
        limits::check_count(
            "--reflow-pairs",
            args.reflow_pairs,
            limits::MAX_REFLOW_PAIRS,
            "each pair is an ODE solve",
        )?;
    }
    if args.reflow > 64 {
        anyhow::bail!("--reflow must be at most 64 rounds, got {}", args.reflow);
    }
    Ok(())
}

fn train_config(
    args: &TrainArgs,
    dataset: DataSource,
    source: DataSource,
    pool: &Points,
) -> Result<TrainConfig> {
    let classes = pool.num_classes;
    if args.class_cond && classes == 0 {
        anyhow::bail!(
            "--class-cond needs class labels, and the dataset '{}' has none",
            dataset.name()
        );
    }
    let num_classes = if args.class_cond { classes } else { 0 };
    let config = TrainConfig {
        dataset,
        source,
        path: args.path.resolve(pool.rms())?,
        time_sampling: args.time.resolve()?,
        mlp: MlpConfig {
            hidden: args.hidden,
            depth: args.depth,
            t_dim: args.t_dim,
            t_scale: args.t_scale,
            num_classes,
        },
        batch: args.batch,
        optimizer: AdamWConfig {
            lr: args.lr,
            weight_decay: args.weight_decay,
            ..AdamWConfig::default()
        },
        lr_schedule: match args.lr_schedule {
            ScheduleName::Constant => LrSchedule::Constant,
            ScheduleName::Cosine => LrSchedule::Cosine {
                warmup_steps: args.warmup,
                final_ratio: 0.0,
            },
        },
        clip_norm: (args.clip > 0.0).then_some(args.clip),
        ema_decay: args.ema_decay,
        steps: args.steps,
        seed: args.seed,
        coupling: match args.coupling {
            CouplingName::Independent => Coupling::Independent,
            CouplingName::Ot => Coupling::MinibatchOt {
                block: args.ot_block,
            },
        },
        p_drop: args.p_drop,
        pool_size: args.pool,
    };
    if args.clip < 0.0 || !args.clip.is_finite() {
        anyhow::bail!("--clip must be zero (off) or positive, got {}", args.clip);
    }
    Ok(config)
}

/// Held-out points to evaluate against: a fresh draw of a built-in dataset (a seed the training
/// pool never used), or a resample of the user's points.
fn eval_points(config: &TrainConfig, custom: Option<&Points>, n: usize) -> Result<Points> {
    let seed = config.seed.wrapping_add(0xE7A1_0000_0001);
    Ok(match (&config.dataset, custom) {
        (_, Some(points)) => {
            let mut rng = flowplay_core::rng::Rng::with_domain(seed, "eval-resample");
            let picks: Vec<usize> = (0..n).map(|_| rng.below(points.len())).collect();
            let xy = picks.iter().map(|&i| points.xy[i]).collect();
            let labels = points
                .labels
                .as_ref()
                .map(|labels| picks.iter().map(|&i| labels[i]).collect());
            Points::with_labels(xy, labels)?
        }
        (DataSource::Builtin(d), None) => d.sample(n, seed),
        (DataSource::Custom { name }, None) => anyhow::bail!("the points of '{name}' are missing"),
    })
}

fn measure_round(
    trainer: &Trainer,
    round: usize,
    steps: u64,
    seconds: f64,
    eval: &EvalSettings,
    data: &Points,
) -> Result<RoundMetrics> {
    let raw = trainer.model(false)?;
    let ema = trainer.model(true)?;
    let seed = trainer.config().seed.wrapping_add(0x5A3F);
    let source = trainer.source_pool();
    let one_step = SamplerConfig::new(flowplay_core::sampler::Solver::Euler, 1);
    // Four independent measurements; each exact W2 is one long sequential solve, so run them
    // side by side.
    let ((quality_raw, quality_ema), (one_step_w2, geometry_raw)) = rayon::join(
        || {
            rayon::join(
                || raw.evaluate(&eval.sampler, seed, eval.cfg_scale, data, source),
                || ema.evaluate(&eval.sampler, seed, eval.cfg_scale, data, source),
            )
        },
        || {
            rayon::join(
                || raw.evaluate(&one_step, seed, eval.cfg_scale, data, source),
                || raw.geometry(2000, seed ^ 0x6E0, source),
            )
        },
    );
    let (evaluation_raw, quality_ema) = (quality_raw?, quality_ema?.quality);
    let (one_step_w2, geometry_raw) = (one_step_w2?.quality.w2, geometry_raw?);
    let losses = trainer.losses();
    let tail = &losses[losses.len().saturating_sub(100)..];
    Ok(RoundMetrics {
        round,
        steps,
        seconds,
        steps_per_second: steps as f64 / seconds,
        final_loss: tail.iter().sum::<f32>() / tail.len().max(1) as f32,
        geometry_raw,
        quality_raw: evaluation_raw.quality,
        quality_ema,
        one_step_euler_w2_raw: one_step_w2,
        samples_raw: evaluation_raw.samples,
    })
}

/// Trains one round with a progress bar (or, when stderr is not a terminal, a line every 10%).
fn train_round(
    trainer: &mut Trainer,
    guard: &mut DivergenceGuard,
    steps: u64,
    round: usize,
    rounds: usize,
    quiet: bool,
) -> Result<()> {
    let interactive = std::io::stderr().is_terminal() && !quiet;
    let label = if rounds > 0 {
        format!("round {round}/{rounds}")
    } else {
        "training".to_owned()
    };
    let bar = if interactive {
        let bar = ProgressBar::new(steps);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:32.cyan/blue}] {pos}/{len} steps  {per_sec:.bold}  loss {msg}  eta {eta}",
            )
            .map_err(|e| anyhow::anyhow!("progress bar: {e}"))?
            .progress_chars("=> "),
        );
        bar.set_prefix(label.clone());
        Some(bar)
    } else {
        None
    };
    let started = Instant::now();
    let report_every = (steps / 10).max(1);
    let mut i = 0_u64;
    trainer.train(steps, guard, |stats| {
        if let Some(bar) = &bar {
            if i.is_multiple_of(25) || i + 1 == steps {
                bar.set_position(i + 1);
                bar.set_message(format!("{:.4}", stats.loss));
            }
        } else if !quiet && ((i + 1).is_multiple_of(report_every) || i + 1 == steps) {
            let rate = (i + 1) as f64 / started.elapsed().as_secs_f64();
            eprintln!(
                "{label}: step {}/{steps}  {rate:.0} steps/s  loss {:.4}",
                i + 1,
                stats.loss
            );
        }
        i += 1;
    })?;
    if let Some(bar) = bar {
        bar.finish();
    }
    Ok(())
}
