//! Divergence as more than NaN: a loss far above its recent level.
//!
//! A learning rate that is too high rarely produces a NaN at once. `--lr 10` blows the loss from
//! 3.8 to 10²² in three steps, after which the network collapses to a dead field with an
//! ordinary-looking loss; the trainers' non-finite checks never fire. [`DivergenceGuard`] watches
//! each step's loss and gradient norm against the median of a recent window: a loss above
//! [`LOSS_FACTOR`]× its median, or a gradient norm above [`GRAD_FACTOR`]× its median, is a
//! divergence ([`Error::Exploded`]).
//!
//! The median, not the mean, so that one bad step cannot raise the bar for the next; the window
//! is short so that a reflow round's lower loss becomes the new level within a few hundred steps
//! (and [`DivergenceGuard::reset`] starts afresh at a round's start). Healthy flow-matching
//! losses fluctuate by a factor of a few between batches, never by 100.

use std::collections::VecDeque;

use crate::Error;
use crate::train::StepStats;

/// A loss above this multiple of its recent median is a divergence.
pub const LOSS_FACTOR: f32 = 100.0;
/// A gradient norm above this multiple of its recent median is a divergence. Larger than the
/// loss's factor: early gradients vary more, and clipping keeps a large one from doing harm.
pub const GRAD_FACTOR: f32 = 1000.0;
/// Steps the medians cover.
pub const WINDOW: usize = 200;
/// Losses seen before the loss is judged: from the second step on (no healthy step multiplies
/// the loss by 100).
const MIN_LOSSES: usize = 1;
/// Gradient norms seen before they are judged.
const MIN_GRADS: usize = 16;

/// Watches losses and gradient norms for an explosion.
#[derive(Clone, Debug, Default)]
pub struct DivergenceGuard {
    losses: VecDeque<f32>,
    grads: VecDeque<f32>,
    scratch: Vec<f32>,
}

impl DivergenceGuard {
    /// A guard that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets the history (a new round, new weights).
    pub fn reset(&mut self) {
        self.losses.clear();
        self.grads.clear();
    }

    /// Steps seen since the last reset (at most [`WINDOW`]).
    pub fn seen(&self) -> usize {
        self.losses.len()
    }

    /// Checks the statistics of `step`; an explosion is [`Error::Exploded`] and is not added to
    /// the history. Non-finite values are the trainers' own check ([`Error::Diverged`]) and are
    /// passed over here.
    pub fn observe(&mut self, step: u64, stats: &StepStats) -> Result<(), Error> {
        if !stats.loss.is_finite() || !stats.grad_norm.is_finite() {
            return Ok(());
        }
        let checks = [
            ("loss", stats.loss, &self.losses, MIN_LOSSES, LOSS_FACTOR),
            (
                "gradient norm",
                stats.grad_norm,
                &self.grads,
                MIN_GRADS,
                GRAD_FACTOR,
            ),
        ];
        for (what, value, history, min, factor) in checks {
            if history.len() < min {
                continue;
            }
            let median = median(history, &mut self.scratch);
            if median > 0.0 && value > factor * median {
                return Err(Error::Exploded {
                    step,
                    what,
                    value,
                    median,
                    ratio: value / median,
                    window: history.len(),
                    lr: stats.lr,
                });
            }
        }
        for (history, value) in [
            (&mut self.losses, stats.loss),
            (&mut self.grads, stats.grad_norm),
        ] {
            if history.len() == WINDOW {
                history.pop_front();
            }
            history.push_back(value);
        }
        Ok(())
    }
}

/// The median of `values` (the upper one of an even count).
fn median(values: &VecDeque<f32>, scratch: &mut Vec<f32>) -> f32 {
    scratch.clear();
    scratch.extend(values.iter().copied());
    let mid = scratch.len() / 2;
    let (_, m, _) = scratch.select_nth_unstable_by(mid, f32::total_cmp);
    *m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(loss: f32, grad_norm: f32) -> StepStats {
        StepStats {
            loss,
            grad_norm,
            lr: 0.5,
        }
    }

    #[test]
    fn a_jump_of_a_hundredfold_is_a_divergence() {
        let mut guard = DivergenceGuard::new();
        guard.observe(0, &stats(3.8, 1.0)).unwrap();
        guard.observe(1, &stats(2.9, 1.0)).unwrap();
        assert!(guard.clone().observe(2, &stats(200.0, 1.0)).is_ok());
        // The --lr 10 run: 3.8 → 1.6·10²² by step 2.
        let error = guard.observe(2, &stats(1.6e22, 1.0)).unwrap_err();
        let text = error.to_string();
        assert!(error.is_divergence());
        assert!(
            text.starts_with("training diverged at step 2: the loss jumped to 1.600e22"),
            "{text}"
        );
        assert!(text.contains("lower the learning rate (now 0.5)"), "{text}");
        // The bad step is not part of the history.
        assert_eq!(guard.seen(), 2);
    }

    #[test]
    fn ordinary_noise_and_a_falling_loss_pass() {
        let mut guard = DivergenceGuard::new();
        let mut rng = crate::rng::Rng::new(9);
        for step in 0..5000 {
            // A loss falling from 4 to 0.04 with batch noise of a factor of up to 20.
            let level = 4.0 * (-(step as f32) / 1000.0).exp().max(0.01);
            let noise = 1.0 + 19.0 * rng.uniform();
            let grad = 0.1 + 5.0 * rng.uniform();
            guard.observe(step, &stats(level * noise, grad)).unwrap();
        }
    }

    #[test]
    fn a_gradient_spike_counts_and_nan_is_left_to_the_trainer() {
        let mut guard = DivergenceGuard::new();
        for step in 0..20 {
            guard.observe(step, &stats(1.0, 2.0)).unwrap();
        }
        guard.observe(20, &stats(f32::NAN, 2.0)).unwrap();
        let text = guard.observe(21, &stats(1.0, 1e5)).unwrap_err().to_string();
        assert!(
            text.contains("the gradient norm jumped to 1.000e5, 50000×"),
            "{text}"
        );
        guard.reset();
        guard.observe(22, &stats(1e5, 1e5)).unwrap();
    }
}
