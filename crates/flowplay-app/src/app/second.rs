//! Two runs side by side: a second playground, built from the same seed and data, that differs
//! from the first in one thing ([`Comparison`]). It follows every other setting of the first,
//! trains when the first trains, shows the first's t in the first's view, and shares the frame:
//! each run's CPU training gets half the time one run would.

use super::PlaygroundApp;
use super::state::STEP_LOCK;
use crate::settings::{Comparison, Settings};

/// The second run and what it compares.
pub(crate) struct SecondRun {
    pub(crate) run: PlaygroundApp,
    pub(crate) kind: Comparison,
    /// The first run's model generation it was built for: a new first model (a reset, new
    /// data, an Undo) builds the second afresh too, so both start from the same seed again.
    generation: u64,
}

impl PlaygroundApp {
    /// Starts a second run that differs in `kind` (its preset), or ends it.
    pub(crate) fn set_second(&mut self, kind: Option<Comparison>) {
        self.second = kind.map(|kind| {
            let settings = kind.preset(&self.settings);
            Box::new(SecondRun {
                run: self.second_run(settings),
                kind,
                generation: self.chrome.generation,
            })
        });
        self.frame.share = if self.second.is_some() { 0.5 } else { 1.0 };
        self.frame.ahead = false;
        self.edits.hash_dirty = true;
    }

    /// The second run's own settings edited (only its compared thing is kept).
    pub(crate) fn edit_second(&mut self, edited: &Settings) {
        let first = self.settings.clone();
        if let Some(second) = self.second.as_mut() {
            let wanted = second.kind.follow(&first, edited);
            second.run.apply_settings(wanted);
        }
    }

    /// A fresh playground for the second run on the first's device.
    fn second_run(&self, settings: Settings) -> Self {
        let mut run = Self::build(settings, self.device.clone());
        run.training = self.training;
        run.frame.share = 0.5;
        run
    }

    /// The second run's frame, before the first's: it follows the first's settings (but its
    /// compared thing), training switch, time and view, then does its work.
    pub(crate) fn second_work(&mut self, dt: f32) {
        let Some(mut second) = self.second.take() else {
            return;
        };
        let wanted = second.kind.follow(&self.settings, &second.run.settings);
        if second.generation != self.chrome.generation {
            second.run = self.second_run(wanted);
            second.generation = self.chrome.generation;
        } else if wanted != second.run.settings {
            second.run.apply_settings(wanted);
        }
        let run = &mut second.run;
        run.training = self.training;
        run.player.time = self.player.time;
        run.player.playing = self.player.playing;
        run.canvas.view = self.canvas.view;
        run.canvas.fit = self.canvas.fit;
        run.frame.frame_secs = self.frame.frame_secs;
        run.frame.share = 0.5;
        // Step for step: the run ahead waits for the other (this frame for the second, the
        // next for the first).
        let (a, b) = (self.engine.steps_done(), run.engine.steps_done());
        run.frame.ahead = b > a + STEP_LOCK;
        self.frame.ahead = a > b + STEP_LOCK;
        run.work(dt);
        // Its own player does not move it: the first's t, as the first draws it this frame.
        run.player.time = self.player.time;
        self.second = Some(second);
    }
}

impl PlaygroundApp {
    /// How the two runs differ in W2 and in deviation from straight, once both were evaluated.
    pub(crate) fn second_difference(&self) -> Option<String> {
        let second = self.second.as_ref()?;
        let (a, b) = (self.eval.last?, second.run.eval.last?);
        let steps = if a.step == b.step {
            format!("at step {}", a.step)
        } else {
            format!("at steps {} and {}", a.step, b.step)
        };
        Some(format!(
            "{steps}: W2 A {:.3}, B {:.3} (B − A = {:+.3})\ndeviation from straight: A {:.3}, \
             B {:.3} (B − A = {:+.3})",
            a.w2,
            b.w2,
            b.w2 - a.w2,
            a.straightness,
            b.straightness,
            b.straightness - a.straightness
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{app, small};
    use super::*;
    use crate::command::Command;

    #[test]
    fn a_second_run_trains_beside_the_first_and_follows_it() {
        let mut a = app(small());
        a.apply(Command::Second(Some(Comparison::Coupling)));
        let second = a.second.as_ref().expect("a second run");
        assert!(second.run.settings.training.ot && !a.settings.training.ot);
        assert!((a.frame.share - 0.5).abs() < 1e-6, "the frame is shared");
        a.training = true;
        let started = web_time::Instant::now();
        while a.second.as_ref().map_or(0, |s| s.run.engine.steps_done()) < 20
            || a.engine.steps_done() < 20
        {
            assert!(started.elapsed().as_secs() < 60, "both train");
            a.second_work(0.02);
            a.train_for_a_frame();
        }
        // Step for step: neither is more than a few steps (and a frame's) ahead.
        let (sa, sb) = (
            a.engine.steps_done(),
            a.second.as_ref().map_or(0, |s| s.run.engine.steps_done()),
        );
        assert!(sa.abs_diff(sb) <= 2 * STEP_LOCK + 64, "A {sa}, B {sb}");
        assert!(
            (a.player.time - a.second.as_ref().expect("there").run.player.time).abs() < 1e-6,
            "one t for both"
        );
        // The first moves on: the second follows, keeping its coupling.
        let mut edited = a.settings.clone();
        edited.optim.lr = 1e-3;
        edited.sampling.solver = flowplay_core::sampler::Solver::Heun;
        a.apply(Command::Settings(Box::new(edited)));
        a.second_work(0.02);
        let second = &a.second.as_ref().expect("still there").run;
        assert!((second.settings.optim.lr - 1e-3).abs() < 1e-9);
        assert_eq!(
            second.settings.sampling.solver,
            flowplay_core::sampler::Solver::Heun
        );
        assert!(second.settings.training.ot, "its own coupling kept");
        // A new first model builds the second afresh, from step 0.
        a.training = false;
        a.apply(Command::Reset);
        a.second_work(0.02);
        assert_eq!(a.second.as_ref().expect("kept").run.engine.steps_done(), 0);
        a.apply(Command::Second(None));
        assert!(a.second.is_none());
        assert!((a.frame.share - 1.0).abs() < 1e-6);
    }
}
