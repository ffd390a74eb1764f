//! `flowplay logp`: the model's exact log density at given points.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Result;
use flowplay_core::sampler::SamplerConfig;

use crate::output;
use crate::spec::{self, PathArgs, SolverName};

/// Options of `flowplay logp`.
#[derive(Debug, clap::Args)]
#[command(allow_negative_numbers = true)]
pub(crate) struct LogpArgs {
    /// A weights file written by `flowplay train` (or saved from the Quick Reference's PyTorch
    /// module; then --path and --t-scale say how it was trained).
    #[arg(long)]
    pub(crate) weights: PathBuf,
    /// The points (CSV with x,y[,label]; labels are ignored: use --class).
    #[arg(long, value_name = "CSV")]
    pub(crate) points: PathBuf,
    /// Where to write `x,y,logp`: one row per point, in order; natural log of the model's
    /// density at t = 1.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// ODE solver of the reverse integration (QR §5).
    #[arg(long, value_enum, default_value = "rk4")]
    pub(crate) solver: SolverName,
    /// Solver steps from t = 1 back to t = 0.
    #[arg(long, default_value_t = 32)]
    pub(crate) steps: usize,
    /// TRELLIS's time shift of the grid (1: uniform).
    #[arg(long, default_value_t = 1.0)]
    pub(crate) rescale_t: f32,
    /// Class-conditional models: the density of this class (without it: the unconditional
    /// head's density).
    #[arg(long)]
    pub(crate) class: Option<u32>,
    /// Guidance scale of the class's field (QR §7.2; needs --class).
    #[arg(long)]
    pub(crate) cfg: Option<f32>,
    #[command(flatten)]
    pub(crate) path: PathArgs,
    /// For weights without flowplay metadata: the network saw t_scale·t.
    #[arg(long)]
    pub(crate) t_scale: Option<f32>,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub(crate) threads: usize,
}

/// Points one run takes at most: 4 M points and a CSV of about 100 MB.
const MAX_POINTS: usize = 4_000_000;

/// Runs `flowplay logp`.
pub(crate) fn run(args: &LogpArgs) -> Result<()> {
    crate::init_threads(args.threads)?;
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
    let model = spec::load_model(&args.weights, &args.path, args.t_scale)?;
    let points = spec::read_points(&args.points)?;
    if points.len() > MAX_POINTS {
        anyhow::bail!(
            "{} has {} points; logp takes at most {MAX_POINTS} at a time",
            args.points.display(),
            points.len()
        );
    }
    let labels = args.class.map(|c| vec![c; points.len()]);
    let out = model.log_likelihood(
        &points.xy,
        labels.as_deref(),
        args.cfg.unwrap_or(1.0),
        &sampler,
    )?;
    if let Some(i) = out.logp.iter().position(|l| !l.is_finite()) {
        anyhow::bail!(
            "the reverse ODE diverged at point {} ({}, {}): try more --steps or another --solver",
            i + 1,
            points.xy[i][0],
            points.xy[i][1]
        );
    }
    let mut csv = String::with_capacity(points.len() * 36 + 16);
    csv.push_str("x,y,logp\n");
    for (p, l) in points.xy.iter().zip(&out.logp) {
        let _ = writeln!(csv, "{},{},{l}", p[0], p[1]);
    }
    output::write_file(&args.out, csv.as_bytes())?;
    let mean = out.logp.iter().map(|&l| f64::from(l)).sum::<f64>() / out.logp.len().max(1) as f64;
    println!(
        "log-likelihood of {} points with {} × {} steps ({} evaluations each, with the Jacobian \
         trace): mean {mean:.4} nats → {}",
        points.len(),
        sampler.solver,
        sampler.steps,
        sampler.nfe(),
        args.out.display()
    );
    Ok(())
}
