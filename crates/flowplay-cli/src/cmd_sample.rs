//! `flowplay sample`.

use std::path::PathBuf;

use anyhow::Result;
use flowplay_core::data::{Points, points_to_csv};
use flowplay_core::flow::SampleRequest;
use flowplay_core::sampler::{Record, SamplerConfig};
use flowplay_gpu::GpuSampler;

use crate::backend::BackendArg;
use crate::output;
use crate::spec::{self, PathArgs, SolverName};

/// Options of `flowplay sample`.
#[derive(Debug, clap::Args)]
#[command(allow_negative_numbers = true)]
pub(crate) struct SampleArgs {
    /// A weights file written by `flowplay train` (or saved from the Quick Reference's PyTorch
    /// module; then --path and --t-scale say how it was trained).
    #[arg(long)]
    pub(crate) weights: PathBuf,
    /// ODE solver (QR §5).
    #[arg(long, value_enum, default_value = "euler")]
    pub(crate) solver: SolverName,
    /// Solver steps.
    #[arg(long, default_value_t = 50)]
    pub(crate) steps: usize,
    /// Number of samples.
    #[arg(long, default_value_t = 2000)]
    pub(crate) n: usize,
    /// Seed of the source draw.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Class to generate (class-conditional models); without it they sample unconditionally.
    #[arg(long)]
    pub(crate) class: Option<u32>,
    /// Classifier-free guidance scale s: v = v(∅) + s·(v(c) − v(∅)) (QR §7.2; needs --class).
    #[arg(long)]
    pub(crate) cfg: Option<f32>,
    /// TRELLIS's time shift: r > 1 spends more steps near the noise.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) rescale_t: f32,
    /// Where to write the samples (CSV with header x,y).
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// For a model trained from your own source points: those points (CSV x,y[,label]).
    #[arg(long, value_name = "CSV")]
    pub(crate) source_points: Option<PathBuf>,
    /// Also write every particle's trajectory and predicted endpoints x̂ to this CSV.
    #[arg(long)]
    pub(crate) trajectories: Option<PathBuf>,
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
}

/// Runs `flowplay sample`.
pub(crate) fn run(args: &SampleArgs) -> Result<()> {
    crate::init_threads(args.threads)?;
    if args.n == 0 || args.n > 50_000_000 {
        anyhow::bail!("--n must be between 1 and 50000000, got {}", args.n);
    }
    if args.cfg.is_some() && args.class.is_none() {
        anyhow::bail!("--cfg needs --class: guidance steers toward one class");
    }
    let sampler = SamplerConfig {
        solver: args.solver.into(),
        steps: args.steps,
        rescale_t: args.rescale_t,
    };
    sampler.validate()?;
    output::check_writable(&args.out)?;
    if let Some(path) = &args.trajectories {
        output::check_writable(path)?;
        // Positions and predicted endpoints at every step, then their CSV text (about 60 bytes
        // a row).
        let rows = args.n as u128 * (args.steps as u128 + 1);
        crate::limits::check_memory(rows * (16 + 60), "--trajectories of these --n and --steps")?;
    }

    let model = spec::load_model(&args.weights, &args.path, args.t_scale)?;
    let source_points = spec::source_points(&model, &args.weights, args.source_points.as_deref())?;
    let labels = args.class.map(|c| vec![c; args.n]);
    let request = SampleRequest {
        sampler,
        n: args.n,
        seed: args.seed,
        labels: labels.clone(),
        cfg_scale: args.cfg.unwrap_or(1.0),
        record: Record {
            positions: args.trajectories.is_some(),
            endpoints: args.trajectories.is_some(),
            velocities: false,
        },
    };
    let out = match crate::backend::gpu_for(args.backend)? {
        None => model.sample(&request, source_points.as_ref())?,
        Some(gpu) => {
            let x0 = model.source_samples(request.n, request.seed, source_points.as_ref())?;
            model.check_labels(request.labels.as_deref(), x0.len())?;
            let mut sampler = GpuSampler::new(&gpu.device, &model.mlp, model.spec.path)?;
            sampler.set_params(&gpu.queue, &model.params)?;
            sampler.sample(&gpu.device, &gpu.queue, &x0, &request)?
        }
    };
    if out.x.iter().any(|p| !p[0].is_finite() || !p[1].is_finite()) {
        anyhow::bail!(
            "the ODE diverged: some samples are not finite (try more --steps or another --solver)"
        );
    }
    let points = Points::with_labels(out.x, labels)?;
    if let Some(path) = &args.trajectories {
        output::write_file(
            path,
            flowplay_core::sampler::trajectories_to_csv(&out.trajectories).as_bytes(),
        )?;
    }
    output::write_file(&args.out, points_to_csv(&points).as_bytes())?;
    println!(
        "{} samples with {} × {} steps ({} evaluations each) → {}",
        args.n,
        sampler.solver,
        sampler.steps,
        out.nfe,
        args.out.display()
    );
    Ok(())
}
