//! Errors of the GPU crate, in words a user can act on.

/// What can go wrong on the GPU side.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// No adapter was found, or it cannot run compute shaders.
    #[error("no GPU with compute shaders is available: {0}")]
    Unavailable(String),
    /// The device's limits are too small for this work.
    #[error("{0}")]
    Limits(String),
    /// A configuration or input the core rejects, or training that diverged
    /// ([`flowplay_core::Error::Diverged`]: the weights of the last good step are kept).
    #[error(transparent)]
    Core(#[from] flowplay_core::Error),
    /// Reading results back from the GPU failed.
    #[error("reading back from the GPU failed: {0}")]
    Readback(String),
}
