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
}

impl Error {
    /// A configuration error with this message.
    pub fn config(message: impl Into<String>) -> Self {
        Self::Config(message.into())
    }
}
