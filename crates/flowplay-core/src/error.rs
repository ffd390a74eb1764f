//! The core's error type. Every message is written for the person who caused it: it says what is
//! wrong and where, in plain words, and is shown once.

/// Everything that can go wrong in the core, from bad settings to malformed files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is out of range or settings contradict each other.
    #[error("{0}")]
    Config(String),
    /// A CSV of points could not be read.
    #[error("{source_name}, line {line}: {message}")]
    Csv {
        /// What was being read (a file name).
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A weights file is malformed, truncated, of the wrong shape or holds non-finite numbers.
    #[error("{source_name}: {message}")]
    Weights {
        /// What was being read (a file name).
        source_name: String,
        /// What is wrong with it.
        message: String,
    },
    /// A picture (PNG or JPEG) could not be made into points.
    #[error("{source_name}: {message}")]
    Picture {
        /// What was being read (a file name).
        source_name: String,
        /// What is wrong with it.
        message: String,
    },
    /// Training produced a non-finite loss or gradient.
    #[error(
        "training diverged at step {step}: the loss became {loss}; lower the learning rate (now {lr})"
    )]
    Diverged {
        /// The step at which it happened.
        step: u64,
        /// The loss seen.
        loss: f32,
        /// The learning rate in use.
        lr: f32,
    },
    /// The loss (or the gradient norm) exploded far above its recent level: the weights are
    /// still finite but the run is lost (see [`crate::guard`]).
    #[error(
        "training diverged at step {step}: the {what} jumped to {value:.3e}, {ratio:.0}× its \
         median over the last {window} steps ({median:.3e}); lower the learning rate (now {lr})"
    )]
    Exploded {
        /// The step at which it was seen.
        step: u64,
        /// "loss" or "gradient norm".
        what: &'static str,
        /// The value seen.
        value: f32,
        /// Its recent median.
        median: f32,
        /// value / median.
        ratio: f32,
        /// Steps the median covers.
        window: usize,
        /// The learning rate in use.
        lr: f32,
    },
}

impl Error {
    /// Whether this is a divergence of training (non-finite or exploding), rather than a bad
    /// setting or file: the weights of the last good step are what is left.
    pub fn is_divergence(&self) -> bool {
        matches!(self, Self::Diverged { .. } | Self::Exploded { .. })
    }

    /// A configuration error with this message.
    pub fn config(message: impl Into<String>) -> Self {
        Self::Config(message.into())
    }
}
