//! `flowplay sweep`: the solver × NFE lab on the command line (`flowplay_core::sweep`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use flowplay_core::data::Dataset;
use flowplay_core::flow::SampleRequest;
use flowplay_core::sweep::{self, NfePoint, NfeSetting};
use flowplay_gpu::{GpuContext, GpuSampler};

use crate::backend::BackendArg;
use crate::spec::{self, PathArgs};

/// Options of `flowplay sweep`.
#[derive(Debug, clap::Args)]
#[command(allow_negative_numbers = true)]
pub(crate) struct SweepArgs {
    /// A weights file written by `flowplay train` (or saved from the Quick Reference's PyTorch
    /// module; then --path and --t-scale say how it was trained).
    #[arg(long)]
    pub(crate) weights: PathBuf,
    /// The held-out data the samples are compared with: n fresh points of this dataset.
    #[arg(long, default_value = "moons", value_parser = spec::parse_dataset)]
    pub(crate) dataset: Dataset,
    /// Compare with these points instead (a CSV x,y[,label]; the first --n are used).
    #[arg(long, value_name = "CSV")]
    pub(crate) points: Option<PathBuf>,
    /// Samples per setting, and held-out points (exact W2 is cubic in their number).
    #[arg(long, default_value_t = 2000)]
    pub(crate) n: usize,
    /// The largest number of network evaluations per sample (NFE) measured: Euler, Heun and
    /// RK4 at every power of two up to it.
    #[arg(long, default_value_t = sweep::MAX_NFE)]
    pub(crate) max_nfe: usize,
    /// Seed of the source draw (the held-out data is drawn with seed + 1).
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// TRELLIS's time shift of every grid (1: uniform).
    #[arg(long, default_value_t = 1.0)]
    pub(crate) rescale_t: f32,
    /// Skip the held-out negative log-likelihood (it needs a model from N(0, I) noise and costs
    /// about three times the sampling).
    #[arg(long)]
    pub(crate) no_nll: bool,
    /// For a model trained from your own source points: those points (CSV x,y[,label]).
    #[arg(long, value_name = "CSV")]
    pub(crate) source_points: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) path: PathArgs,
    /// For weights without flowplay metadata: the network saw t_scale·t.
    #[arg(long)]
    pub(crate) t_scale: Option<f32>,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub(crate) threads: usize,
    /// Where to integrate: a hardware GPU when there is one, else the CPU reference.
    #[arg(long, value_enum, default_value = "auto")]
    pub(crate) backend: BackendArg,
    /// One JSON object a line, one per (solver, steps), instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// A measured point and the seconds it took.
#[derive(serde::Serialize)]
struct Line {
    #[serde(flatten)]
    point: NfePoint,
    secs: f64,
}

/// Runs `flowplay sweep`.
pub(crate) fn run(args: &SweepArgs) -> Result<()> {
    crate::init_threads(args.threads)?;
    if args.n < 2 || args.n > crate::limits::MAX_EVAL_N {
        anyhow::bail!(
            "--n must be between 2 and {} (exact W2 is cubic in it), got {}",
            crate::limits::MAX_EVAL_N,
            args.n
        );
    }
    if !(1..=1024).contains(&args.max_nfe) {
        anyhow::bail!("--max-nfe must be between 1 and 1024, got {}", args.max_nfe);
    }
    if !(args.rescale_t > 0.0 && args.rescale_t.is_finite()) {
        anyhow::bail!("--rescale-t must be positive, got {}", args.rescale_t);
    }
    let model = spec::load_model(&args.weights, &args.path, args.t_scale)?;
    let source_points = spec::source_points(&model, &args.weights, args.source_points.as_deref())?;
    let held_out = match &args.points {
        Some(file) => {
            let points = spec::read_points(file)?;
            if points.len() < args.n {
                anyhow::bail!(
                    "{} has {} points; --n {} needs at least as many",
                    file.display(),
                    points.len(),
                    args.n
                );
            }
            points.xy[..args.n].to_vec()
        }
        None => args.dataset.sample(args.n, args.seed.wrapping_add(1)).xy,
    };
    let x0 = model.source_samples(args.n, args.seed, source_points.as_ref())?;
    let likelihood = !args.no_nll && model.spec.source.is_standard_normal();
    let mut gpu = match crate::backend::gpu_for(args.backend)? {
        Some(context) => {
            let sampler = GpuSampler::new(&context.device, &model.mlp, model.spec.path)?;
            sampler.set_params(&context.queue, &model.params)?;
            Some((context, sampler))
        }
        None => None,
    };
    if !args.json {
        println!(
            "{} samples a setting against {} held-out points ({}), on the {}; NLL: {}",
            args.n,
            args.n,
            args.points.as_ref().map_or_else(
                || format!("fresh {}", args.dataset),
                |p| p.display().to_string()
            ),
            if gpu.is_some() { "GPU" } else { "CPU" },
            if likelihood {
                "held-out, reverse ODE with the same solver and steps"
            } else if args.no_nll {
                "skipped (--no-nll)"
            } else {
                "none (the model's source is not N(0, I))"
            }
        );
        println!(
            "{:<6} {:>5} {:>4} {:>9} {:>9} {:>8}",
            "solver", "steps", "NFE", "W2", "NLL", "seconds"
        );
    }
    for setting in sweep::grid(args.max_nfe) {
        let started = Instant::now();
        let point = match &mut gpu {
            None => sweep::measure(&model, setting, args.rescale_t, &x0, &held_out, likelihood)?,
            Some((context, sampler)) => measure_gpu(
                context,
                sampler,
                setting,
                args.rescale_t,
                &x0,
                &held_out,
                likelihood,
            )?,
        };
        let secs = started.elapsed().as_secs_f64();
        if !point.w2.is_finite() {
            anyhow::bail!(
                "{} × {} steps diverged (W2 is not finite)",
                setting.solver.name(),
                setting.steps
            );
        }
        if args.json {
            println!("{}", serde_json::to_string(&Line { point, secs })?);
        } else {
            println!(
                "{:<6} {:>5} {:>4} {:>9.4} {:>9} {:>8.2}",
                point.solver.name(),
                point.steps,
                point.nfe,
                point.w2,
                point
                    .nll
                    .map_or_else(|| "–".to_string(), |v| format!("{v:.4}")),
                secs
            );
        }
    }
    Ok(())
}

/// One setting on the GPU: the samples and (with `likelihood`) the held-out log densities
/// integrated by the WGSL sampler, the figures made by the core as on the CPU.
pub(crate) fn measure_gpu(
    context: &GpuContext,
    sampler: &mut GpuSampler,
    setting: NfeSetting,
    rescale_t: f32,
    x0: &[[f32; 2]],
    held_out: &[[f32; 2]],
    likelihood: bool,
) -> Result<NfePoint> {
    let (device, queue) = (&context.device, &context.queue);
    let config = setting.sampler(rescale_t);
    let out = sampler.sample(device, queue, x0, &SampleRequest::new(config, x0.len()))?;
    let logp = if likelihood {
        Some(sampler.log_likelihood(
            device,
            queue,
            held_out,
            &SampleRequest::new(config, held_out.len()),
        )?)
    } else {
        None
    };
    Ok(NfePoint::from_run(
        setting,
        &out.x,
        held_out,
        logp.as_deref(),
    )?)
}
