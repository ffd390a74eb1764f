//! `flowplay eval`.

use std::path::PathBuf;

use anyhow::Result;
use flowplay_core::data::Dataset;
use flowplay_core::metrics::Quality;

use crate::spec;

/// Options of `flowplay eval`.
#[derive(Debug, clap::Args)]
#[command(allow_negative_numbers = true)]
pub(crate) struct EvalArgs {
    /// Samples to judge: a CSV with columns x,y[,label].
    #[arg(long)]
    pub(crate) samples: PathBuf,
    /// The dataset they should look like; as many fresh points are drawn as there are samples.
    #[arg(long, default_value = "moons", value_parser = spec::parse_dataset)]
    pub(crate) dataset: Dataset,
    /// Compare with these points instead (a CSV of the same size as the samples).
    #[arg(long, value_name = "CSV")]
    pub(crate) points: Option<PathBuf>,
    /// Seed of the fresh data draw.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Print JSON instead of a line of text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Runs `flowplay eval`.
pub(crate) fn run(args: &EvalArgs) -> Result<()> {
    let samples = spec::read_points(&args.samples)?;
    if samples.len() > crate::limits::MAX_EVAL_N {
        anyhow::bail!(
            "{} has {} points; the exact W2 is cubic in their number, so eval takes at most {} \
             (pass a random subset)",
            args.samples.display(),
            samples.len(),
            crate::limits::MAX_EVAL_N
        );
    }
    let (reference, what) = match &args.points {
        Some(file) => {
            let points = spec::read_points(file)?;
            if points.len() != samples.len() {
                anyhow::bail!(
                    "{} has {} points but {} has {}: exact W2 needs equal sizes",
                    file.display(),
                    points.len(),
                    args.samples.display(),
                    samples.len()
                );
            }
            (points, file.display().to_string())
        }
        None => (
            args.dataset.sample(samples.len(), args.seed),
            format!("fresh {} points (seed {})", args.dataset, args.seed),
        ),
    };
    let quality = Quality::measure(&samples.xy, &reference.xy)?;
    if args.json {
        println!("{}", serde_json::to_string(&quality)?);
    } else {
        println!(
            "W2 {:.4}  sliced-W2 {:.4}  MMD {:.5}  ({} samples vs {} {what})",
            quality.w2,
            quality.sliced_w2,
            quality.mmd,
            samples.len(),
            reference.len()
        );
    }
    Ok(())
}
