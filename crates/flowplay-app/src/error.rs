//! The playground's errors: one type, said once to the user in plain words.

use flowplay_gpu::GpuError;

/// What can go wrong in the playground's engine and its settings.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppError {
    /// The GPU refused work or a read-back failed.
    #[error(transparent)]
    Gpu(#[from] GpuError),
    /// The core refused a configuration or input, or training diverged.
    #[error(transparent)]
    Core(#[from] flowplay_core::Error),
    /// Training diverged (the loss exploded) and the weights of step `restored` are back.
    #[error("{error}")]
    Exploded {
        error: flowplay_core::Error,
        restored: u64,
    },
    /// An evaluation or view came back without what it needed.
    #[error("{0}")]
    Missing(&'static str),
    /// A model that cannot do what a layer asks (e.g. a likelihood without a Gaussian source).
    #[error("{0}")]
    Unsupported(String),
}

/// The result of the engine's work.
pub(crate) type AppResult<T> = Result<T, AppError>;
