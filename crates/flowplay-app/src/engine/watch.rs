//! The engine's watch over training: every step's loss and gradient norm go through the core's
//! [`DivergenceGuard`], and the weights are checkpointed every [`CHECKPOINT_EVERY`] steps so that
//! an explosion can be undone: training pauses with the last good weights back, not with a
//! collapsed network.

use std::collections::VecDeque;

use flowplay_core::guard::DivergenceGuard;
use flowplay_core::train::StepStats;

/// Steps between checkpoints of the weights.
pub(crate) const CHECKPOINT_EVERY: u64 = 200;
/// A checkpoint taken this few steps before an explosion was seen may already hold its first bad
/// updates (the loss rises over a few steps, and on the GPU the weights run ahead of the
/// statistics by up to two submissions): an older one is restored.
pub(crate) const MARGIN: u64 = 64;
/// Checkpoints kept: the round's first, and the latest ones.
const KEPT: usize = 3;

/// A checkpoint's weights, where the engine keeps them.
pub(crate) enum Weights {
    /// Copies of the trainer's parameter and EMA buffers.
    Gpu {
        params: wgpu::Buffer,
        ema: wgpu::Buffer,
    },
    /// Copies of the CPU trainer's vectors.
    Cpu { params: Vec<f32>, ema: Vec<f32> },
}

/// The weights after `step` steps.
pub(crate) struct Checkpoint {
    pub(crate) step: u64,
    pub(crate) weights: Weights,
}

/// The guard and the checkpoints of the current round.
#[derive(Default)]
pub(crate) struct Watch {
    guard: DivergenceGuard,
    checkpoints: VecDeque<Checkpoint>,
}

impl Watch {
    /// Checks the statistics of the steps from `first_step` on.
    pub(crate) fn observe(
        &mut self,
        first_step: u64,
        stats: &[StepStats],
    ) -> Result<(), flowplay_core::Error> {
        for (k, s) in stats.iter().enumerate() {
            self.guard.observe(first_step + k as u64, s)?;
        }
        Ok(())
    }

    /// Whether a checkpoint is due now that `confirmed` steps have been judged good.
    pub(crate) fn due(&self, confirmed: u64) -> bool {
        self.checkpoints
            .back()
            .is_none_or(|c| confirmed >= c.step + CHECKPOINT_EVERY)
    }

    /// Keeps `checkpoint`, dropping the oldest but the round's first (the fallback for an
    /// explosion in the round's first steps).
    pub(crate) fn push(&mut self, checkpoint: Checkpoint) {
        if self.checkpoints.len() == KEPT {
            self.checkpoints.remove(1);
        }
        self.checkpoints.push_back(checkpoint);
    }

    /// The checkpoint to go back to after an explosion seen at `step`: the newest that is at
    /// least [`MARGIN`] steps older, else the round's first.
    pub(crate) fn restore_point(&self, step: u64) -> Option<&Checkpoint> {
        self.checkpoints
            .iter()
            .rev()
            .find(|c| c.step + MARGIN <= step)
            .or_else(|| self.checkpoints.front())
    }

    /// After a rewind to `step`: the later checkpoints are of undone steps, and the losses'
    /// level is judged afresh.
    pub(crate) fn rewound(&mut self, step: u64) {
        self.checkpoints.retain(|c| c.step <= step);
        self.guard.reset();
    }

    /// A new round or a new objective: the loss has a new level and the old checkpoints belong
    /// to another round.
    pub(crate) fn reset(&mut self) {
        self.checkpoints.clear();
        self.guard.reset();
    }

    /// Only the loss level is judged afresh (a new path or batch: the same round, a new scale).
    pub(crate) fn new_level(&mut self) {
        self.guard.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(step: u64) -> Checkpoint {
        Checkpoint {
            step,
            weights: Weights::Cpu {
                params: vec![step as f32],
                ema: vec![],
            },
        }
    }

    #[test]
    fn the_restore_point_is_old_enough_and_the_first_is_kept() {
        let mut watch = Watch::default();
        assert!(watch.due(0));
        watch.push(cpu(0));
        assert!(!watch.due(CHECKPOINT_EVERY - 1));
        for step in [200, 400, 600] {
            assert!(watch.due(step));
            watch.push(cpu(step));
        }
        let steps: Vec<u64> = watch.checkpoints.iter().map(|c| c.step).collect();
        assert_eq!(steps, vec![0, 400, 600]);
        assert_eq!(watch.restore_point(700).map(|c| c.step), Some(600));
        assert_eq!(watch.restore_point(620).map(|c| c.step), Some(400));
        assert_eq!(watch.restore_point(10).map(|c| c.step), Some(0));
        watch.rewound(400);
        assert_eq!(watch.checkpoints.len(), 2);
    }
}
