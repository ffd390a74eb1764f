//! Command-line spellings of the core's settings, and reading input files with clear errors.

use std::path::Path as FsPath;

use anyhow::{Context, Result};
use clap::ValueEnum;
use flowplay_core::data::{Dataset, Points, parse_points_csv_bytes};
use flowplay_core::flow::{DataSource, ModelSpec};
use flowplay_core::path::{Path, TimeSampling};
use flowplay_core::sampler::Solver;
use flowplay_core::weights;

/// A probability path (QR §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum PathName {
    /// x_t = (1−t)·x₀ + t·x₁ (QR §3.1); with --sigma-min > 0 the TRELLIS form.
    RectifiedFlow,
    /// x_t = cos(πt/2)·x₀ + sin(πt/2)·x₁ (QR §3.2).
    VpCosine,
    /// x_t = x₁ + σ(1−t)·x₀, σ log-linear from --sigma-min to --sigma-max (QR §3.3).
    Ve,
}

/// Whether a feature is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum OnOff {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// The path settings shared by `train` and `sample`.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct PathArgs {
    /// Probability path (QR §3).
    #[arg(long, value_enum)]
    pub(crate) path: Option<PathName>,
    /// Rectified flow: noise left at t = 1 (TRELLIS uses 1e-5; default 0). VE: σ at the data
    /// end (default 0.01).
    #[arg(long)]
    pub(crate) sigma_min: Option<f32>,
    /// VE: σ at the noise end; sampling starts from σ_max·z (default 50).
    #[arg(long)]
    pub(crate) sigma_max: Option<f32>,
    /// VE: EDM preconditioning of the network (default on; off is the seed's plain VE, which
    /// does not train at σ_max = 50).
    #[arg(long, value_enum)]
    pub(crate) precondition: Option<OnOff>,
    /// VE with preconditioning: the data scale σ_data (default: the data's RMS).
    #[arg(long)]
    pub(crate) sigma_data: Option<f32>,
}

impl PathArgs {
    /// Whether any path option was given.
    pub(crate) fn any_given(&self) -> bool {
        self.path.is_some()
            || self.sigma_min.is_some()
            || self.sigma_max.is_some()
            || self.precondition.is_some()
            || self.sigma_data.is_some()
    }

    /// The path these options describe; `data_rms` is the default σ_data.
    pub(crate) fn resolve(&self, data_rms: f32) -> Result<Path> {
        let name = self.path.unwrap_or(PathName::RectifiedFlow);
        let path = match name {
            PathName::RectifiedFlow => {
                self.reject_ve_only("rectified-flow")?;
                Path::RectifiedFlow {
                    sigma_min: self.sigma_min.unwrap_or(0.0),
                }
            }
            PathName::VpCosine => {
                if self.sigma_min.is_some() {
                    anyhow::bail!("--sigma-min does not apply to the vp-cosine path");
                }
                self.reject_ve_only("vp-cosine")?;
                Path::VpCosine
            }
            PathName::Ve => {
                let preconditioned = self.precondition.unwrap_or(OnOff::On) == OnOff::On;
                if !preconditioned && self.sigma_data.is_some() {
                    anyhow::bail!("--sigma-data applies only with --precondition on");
                }
                Path::Ve {
                    sigma_min: self.sigma_min.unwrap_or(0.01),
                    sigma_max: self.sigma_max.unwrap_or(50.0),
                    sigma_data: preconditioned.then(|| self.sigma_data.unwrap_or(data_rms)),
                }
            }
        };
        path.validate()?;
        Ok(path)
    }

    fn reject_ve_only(&self, name: &str) -> Result<()> {
        for (given, flag) in [
            (self.sigma_max.is_some(), "--sigma-max"),
            (self.precondition.is_some(), "--precondition"),
            (self.sigma_data.is_some(), "--sigma-data"),
        ] {
            if given {
                anyhow::bail!("{flag} applies only to the ve path, not to {name}");
            }
        }
        Ok(())
    }
}

/// How training draws t (QR §7.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum TimeName {
    /// t ~ U[0, 1).
    Uniform,
    /// t = sigmoid(m + s·z), z ~ N(0, 1) (SD3).
    LogitNormal,
}

/// The time-sampling options.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct TimeArgs {
    /// Distribution of t during training (QR §7.3).
    #[arg(long, value_enum, default_value = "logit-normal")]
    pub(crate) t_sampling: TimeName,
    /// Logit-normal location m.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub(crate) t_mean: f32,
    /// Logit-normal scale s.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) t_std: f32,
}

impl TimeArgs {
    /// The time distribution.
    pub(crate) fn resolve(&self) -> Result<TimeSampling> {
        let sampling = match self.t_sampling {
            TimeName::Uniform => TimeSampling::Uniform,
            TimeName::LogitNormal => TimeSampling::LogitNormal {
                mean: self.t_mean,
                std: self.t_std,
            },
        };
        sampling.validate()?;
        Ok(sampling)
    }
}

/// An ODE solver on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum SolverName {
    /// First order, 1 evaluation per step.
    Euler,
    /// Second order, 2 evaluations per step.
    Heun,
    /// Fourth order, 4 evaluations per step.
    Rk4,
}

impl From<SolverName> for Solver {
    fn from(name: SolverName) -> Self {
        match name {
            SolverName::Euler => Self::Euler,
            SolverName::Heun => Self::Heun,
            SolverName::Rk4 => Self::Rk4,
        }
    }
}

/// Parses a dataset name (clap value parser).
pub(crate) fn parse_dataset(s: &str) -> Result<Dataset, String> {
    s.parse().map_err(|e: flowplay_core::Error| e.to_string())
}

/// The largest CSV of points read (10 million points of about 25 bytes each fit well within).
const MAX_CSV_BYTES: u64 = 512 << 20;

/// Reads a whole input file, refusing before reading a byte what is not a regular file (a device
/// such as `/dev/zero`, a pipe, a directory) and a file over `max` bytes; `what` names it in
/// errors ("weights file").
pub(crate) fn read_input(path: &FsPath, max: u64, what: &str) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let shown = path.display();
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {shown}"))?;
    if !meta.is_file() {
        anyhow::bail!("{shown} is not a regular file (a directory, device or pipe): give a {what}");
    }
    if meta.len() > max {
        anyhow::bail!(
            "{shown} has {} MB, more than the {} MB a {what} may have",
            meta.len() >> 20,
            max >> 20
        );
    }
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {shown}"))?;
    // The file may grow after the check; never read more than the limit.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {shown}"))?;
    if bytes.len() as u64 > max {
        anyhow::bail!("{shown} grew past {} MB while it was read", max >> 20);
    }
    Ok(bytes)
}

/// Reads a CSV of points, naming the file in every error.
pub(crate) fn read_points(path: &FsPath) -> Result<Points> {
    let bytes = read_input(path, MAX_CSV_BYTES, "CSV of points")?;
    Ok(parse_points_csv_bytes(&bytes, &path.display().to_string())?)
}

/// The target distribution: built-in or a CSV of the user's points.
pub(crate) fn data_source(
    dataset: Dataset,
    points: Option<&FsPath>,
) -> Result<(DataSource, Option<Points>)> {
    match points {
        Some(file) => {
            let points = read_points(file)?;
            Ok((
                DataSource::Custom {
                    name: file.display().to_string(),
                },
                Some(points),
            ))
        }
        None => Ok((DataSource::Builtin(dataset), None)),
    }
}

/// Reads a weights file. Weights without flowplay metadata (from PyTorch) get the shape from
/// their tensors and the rest from `fallback`.
pub(crate) fn read_model(path: &FsPath, fallback: &ModelSpec) -> Result<weights::Loaded> {
    let bytes = read_input(path, weights::MAX_WEIGHTS_BYTES, "weights file")?;
    Ok(weights::from_safetensors(
        &bytes,
        &path.display().to_string(),
        fallback,
    )?)
}

/// The model in a weights file: its recorded spec, or for weights saved from PyTorch (no
/// flowplay metadata) the path and t-scale the command line gives. Giving them for weights that
/// record their own is refused, since they would be ignored.
pub(crate) fn load_model(
    file: &FsPath,
    path: &PathArgs,
    t_scale: Option<f32>,
) -> Result<flowplay_core::flow::FlowModel> {
    let mut fallback = weights::default_spec();
    if path.any_given() {
        fallback.path = path.resolve(1.0)?;
    }
    if let Some(scale) = t_scale {
        fallback.mlp.t_scale = scale;
    }
    let loaded = read_model(file, &fallback)?;
    if loaded.spec_recorded && (path.any_given() || t_scale.is_some()) {
        anyhow::bail!(
            "{} records how it was trained (path {}, t-scale {}); --path, --sigma-*, \
             --precondition and --t-scale are only for weights saved from PyTorch",
            file.display(),
            loaded.model.spec.path.name(),
            loaded.model.spec.mlp.t_scale
        );
    }
    Ok(loaded.model)
}

/// The source points a model loaded from `weights` starts from: the `--source-points` file a
/// model trained from custom points needs, none for a built-in source; either mismatch refused.
pub(crate) fn source_points(
    model: &flowplay_core::flow::FlowModel,
    weights: &FsPath,
    given: Option<&FsPath>,
) -> Result<Option<Points>> {
    match (&model.spec.source, given) {
        (DataSource::Custom { name }, None) => anyhow::bail!(
            "{} was trained to start from the points of '{name}': give them with --source-points",
            weights.display()
        ),
        (DataSource::Custom { .. }, Some(file)) => Ok(Some(read_points(file)?)),
        (DataSource::Builtin(_), Some(_)) => anyhow::bail!(
            "{} starts from {}, not from custom points: drop --source-points",
            weights.display(),
            model.spec.source.name()
        ),
        (DataSource::Builtin(_), None) => Ok(None),
    }
}
