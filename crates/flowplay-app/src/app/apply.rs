//! The one place the UI's commands are applied.

use flowplay_core::sampler::{SamplerConfig, Solver};

use super::PlaygroundApp;
use super::state::{PlotMark, Round, Section};
use crate::command::{Command, Direction};
use crate::engine::Flow;
use crate::layers::LayerId;
use crate::settings::{Change, Settings};
use crate::view::View;

/// Pairs in a reflow coupling, and the solver that generates them (accurate, QR §7.1).
pub(crate) const REFLOW_PAIRS: usize = 4096;
pub(crate) const REFLOW_SOLVER: Solver = Solver::Rk4;
pub(crate) const REFLOW_STEPS: usize = 16;

impl PlaygroundApp {
    /// Acts on one command.
    pub(crate) fn apply(&mut self, command: Command) {
        match command {
            Command::Settings(edited) => self.apply_settings(*edited),
            Command::Reset => self.rebuild(self.settings.clone()),
            Command::Undo => self.undo(),
            Command::Open(purpose) => crate::files::open(purpose, &self.files.inbox),
            Command::Export(export) => {
                self.files.exporting = Some(export);
                self.continue_export();
            }
            Command::Brush(tool) => self.brush = tool,
            Command::Paint { at, radius } => self.paint(at, radius),
            Command::ClearDrawing => self.drawing = crate::app::Drawing::default(),
            Command::ImportAs(role, density) => {
                self.files.role = role;
                self.files.density = density;
            }
            Command::UseDrawing(role) => {
                let said = self.use_drawing(role);
                self.notices.error = Some(said.unwrap_or_else(|why| why));
            }
            Command::Capture(picture) => self.start_capture(picture),
            Command::CopyLink => {
                let link = crate::web::link(&self.address_query());
                let shareable = self.settings.data.is_shareable();
                self.notices.error = Some(format!(
                    "Copied a link with every setting: {link}{}",
                    if shareable {
                        ""
                    } else {
                        " (a link cannot carry your own points: it opens the built-in data and \
                         source)"
                    }
                ));
                self.files.copy = Some(link);
            }
            Command::ToggleTraining => self.training = !self.training,
            Command::StartReflow => self.start_reflow(),
            Command::Compare(round) => {
                if round != self.rounds.compare {
                    self.rounds.compare = round;
                    self.flow.stale = true;
                }
            }
            Command::OneStep(on) => {
                if on != self.rounds.one_step {
                    self.rounds.one_step = on;
                    self.flow.stale = true;
                }
            }
            Command::TogglePlay => self.player.playing = !self.player.playing,
            Command::Seek(t) => {
                self.player.playing = false;
                self.player.time = t.clamp(0.0, 1.0);
            }
            Command::Step(direction) => self.step_time(direction),
            Command::Speed(speed) => self.player.speed = speed.clamp(0.1, 4.0),
            Command::Layer(id, on) => {
                let mut edited = self.settings.clone();
                edited.view.layers.set(id, on);
                self.apply_settings(edited);
                if id == LayerId::Stages && !on {
                    self.layers.inspected = None;
                }
            }
            Command::Streamlines(on) => self.layers.streamlines = on,
            Command::PairsOt(on) => self.layers.pairs_ot = on,
            Command::View(view) => self.canvas.view = view,
            Command::FitView => self.canvas.view = self.canvas.fit,
            Command::Inspect(world) => self.inspect_nearest(world),
            Command::NextStage => self.next_stage(),
            Command::Lesson(Some(i)) => self.open_lesson(i),
            Command::Lesson(None) => {
                self.chrome.lesson = None;
                self.edits.hash_dirty = true;
            }
            Command::LessonChange => self.lesson_change(),
            Command::Section(section, open) => self.chrome.set_open(section, open),
            Command::Help(on) => self.chrome.help = on,
            Command::Second(kind) => self.set_second(kind),
            Command::EditSecond(edited) => self.edit_second(&edited),
            Command::DismissNotices => {
                self.notices.error = None;
                self.chrome.dismissed = self.notice_text();
            }
            Command::Sheet(up) => self.chrome.sheet = up,
        }
    }

    /// Opens lesson `i`: the playground as the lesson sets it (from the defaults, keeping the
    /// compute choice; a new model is one Undo away), the lesson shown beside it.
    fn open_lesson(&mut self, i: usize) {
        let Some(lesson) = crate::lessons::LESSONS.get(i) else {
            return;
        };
        let base = Settings {
            compute: self.settings.compute,
            ..Settings::default()
        };
        match base.with_query(lesson.setup) {
            Ok((settings, actions)) => {
                self.apply_settings(settings);
                if let Some(train) = actions.train {
                    self.training = train;
                }
                self.chrome.lesson = Some(i);
                self.chrome.set_open(Section::Lessons, true);
                self.canvas.view = self.canvas.fit;
                self.edits.hash_dirty = true;
            }
            Err(why) => {
                self.notices.error = Some(format!("Lesson {} cannot be set up: {why}", i + 1));
            }
        }
    }

    /// The open lesson's one change, on top of the current settings.
    fn lesson_change(&mut self) {
        let Some(change) = self
            .chrome
            .lesson
            .and_then(|i| crate::lessons::LESSONS.get(i))
            .and_then(|l| l.change_query)
        else {
            return;
        };
        match self.settings.with_query(change) {
            Ok((settings, _)) => self.apply_settings(settings),
            Err(why) => self.notices.error = Some(why),
        }
    }

    /// Moves the scrubber one step of the solver's own time grid (TRELLIS's shift makes it
    /// uneven).
    fn step_time(&mut self, direction: Direction) {
        self.player.playing = false;
        let times: Vec<f32> = match self.engine.flow(crate::engine::CURRENT) {
            Some(Flow::Cpu(traj)) => traj.times.clone(),
            Some(Flow::Gpu(source)) => source.times,
            None => Vec::new(),
        };
        let t = self.player.time;
        self.player.time = match direction {
            Direction::Back => times
                .iter()
                .rev()
                .find(|&&s| s < t - 1e-6)
                .copied()
                .unwrap_or(0.0),
            Direction::On => times
                .iter()
                .find(|&&s| s > t + 1e-6)
                .copied()
                .unwrap_or(1.0),
        };
    }

    /// Takes the drawn particle nearest to `world` apart in the stages layer (found once the
    /// drawn weights are at hand, see `views.rs`), pausing the particles there, and turns the
    /// layer on.
    fn inspect_nearest(&mut self, world: [f32; 2]) {
        self.layers.views.pending_inspect = Some(world);
        self.player.playing = false;
        if !self.settings.view.layers.contains(LayerId::Stages) {
            let mut edited = self.settings.clone();
            edited.view.layers.set(LayerId::Stages, true);
            self.apply_settings(edited);
        }
    }

    /// Shows the inspected step's next stage; after the combined step, the scrubber moves on to
    /// the next step and its first stage.
    fn next_stage(&mut self) {
        let Some(inspected) = &mut self.layers.inspected else {
            return;
        };
        self.player.playing = false;
        let stages = inspected.stages(self.settings.sampling.solver);
        if inspected.shown > stages {
            if let Some(view) = &inspected.view {
                self.player.time = view.parts.t1.min(1.0);
            }
            inspected.shown = 1;
        } else {
            inspected.shown += 1;
        }
    }

    /// Rebuilds everything for `settings`, keeping whether training runs and the address.
    /// Settings that cannot build a model are explained and the running model is kept.
    pub(crate) fn rebuild(&mut self, settings: Settings) {
        if let Err(why) = Self::make_engine(&settings, self.device.gpu.as_ref()).map(drop) {
            self.notices.error = Some(format!("{why}. The settings were not applied."));
            return;
        }
        let what = self.settings.model_change(&settings);
        let mut fresh = Self::build(settings, self.device.clone());
        fresh.training = self.training;
        fresh.edits.hash = self.edits.hash.take();
        fresh.layers.streamlines = self.layers.streamlines;
        if fresh.settings.training.ot == self.settings.training.ot {
            fresh.layers.pairs_ot = self.layers.pairs_ot;
        }
        let steps = self.engine.steps_done();
        let mut replaced = std::mem::replace(self, fresh);
        std::mem::swap(&mut self.frame, &mut replaced.frame);
        if steps > 0 && self.notices.error.is_none() {
            self.notices.error = Some(format!(
                "A new model ({what}). The one it replaced, trained for {steps} steps, is one \
                 Undo away (Ctrl+Z)."
            ));
        }
        // One level: the model before the replaced one is let go.
        replaced.undo = None;
        // Files still coming in, the brush and the drawing belong to the app as it is now.
        self.files = std::mem::take(&mut replaced.files);
        self.brush = replaced.brush;
        self.drawing = std::mem::take(&mut replaced.drawing);
        // So does the page around the canvas, and the second run (built afresh next frame).
        self.chrome = std::mem::take(&mut replaced.chrome);
        self.chrome.generation += 1;
        self.second = replaced.second.take();
        self.undo = Some(Box::new(replaced));
    }

    /// Swaps back to the model the last new model replaced, with its curves, rounds and
    /// views; the current one takes its place, so a second Undo comes back to it.
    pub(crate) fn undo(&mut self) {
        let Some(kept) = self.undo.take() else {
            return;
        };
        let mut current = std::mem::replace(self, *kept);
        std::mem::swap(&mut self.frame, &mut current.frame);
        self.training = current.training;
        self.edits.hash = current.edits.hash.take();
        self.edits.hash_dirty = true;
        self.edits.deferred = None;
        let what = current.settings.model_change(&self.settings);
        self.notices.error = Some(format!(
            "Back to the model before ({what}), at step {}. Undo again to return.",
            self.engine.steps_done()
        ));
        current.undo = None;
        self.files = std::mem::take(&mut current.files);
        self.brush = current.brush;
        self.drawing = std::mem::take(&mut current.drawing);
        self.chrome = std::mem::take(&mut current.chrome);
        self.chrome.generation += 1;
        self.second = current.second.take();
        self.undo = Some(Box::new(current));
        self.flow.stale = true;
    }

    /// Applies edited settings: a new network when the data, shape or backend changed (after
    /// the pointer's release: not one per value of a slider drag), else the running trainer
    /// takes them and keeps its weights; sampling settings re-integrate the particles, view
    /// settings only redraw.
    pub(crate) fn apply_settings(&mut self, edited: Settings) {
        let Some(change) = self.settings.change_to(&edited) else {
            self.edits.deferred = None;
            return;
        };
        if change == Change::Model {
            if self.frame.pointer_down {
                self.edits.deferred = Some(edited);
                return;
            }
            self.edits.deferred = None;
            self.rebuild(edited);
            self.edits.hash_dirty = true;
            return;
        }
        self.edits.deferred = None;
        if change >= Change::Optimizer {
            let rms = self.engine.data().rms();
            let mut config = edited.train_config(rms);
            // Keep what the trainer was built with; only the switchable settings change.
            config.steps = self.engine.config().steps;
            let old_path = self.engine.config().path;
            if config != *self.engine.config()
                && let Err(why) = self.engine.set_config(config)
            {
                self.tell(&why);
                return;
            }
            if self.engine.config().path != old_path {
                self.canvas.fit = View::fit(
                    self.data.shown.iter().map(|d| d.0),
                    self.engine.config().path.prior_scale(),
                );
                self.canvas.view = self.canvas.fit;
                // The curves go on; the plots mark where the path changed (the loss and W2 of
                // another path are not the same quantities).
                self.curves.marks.push(PlotMark {
                    step: self.engine.steps_done() as f64,
                    label: edited.training.path.label(),
                });
                self.eval.last = None;
                self.eval.evaluated_step = None;
                // The engine dropped the views of the old path: ask again.
                let views = &mut self.layers.views;
                views.field_asked = None;
                views.density_asked = None;
                views.logp_asked = None;
            }
            // A new coupling or time sampling is another training problem: its loss is on
            // another scale, which the plots mark.
            let (old, new) = (&self.settings.training, &edited.training);
            if old.ot != new.ot {
                self.layers.pairs_ot = new.ot;
                self.curves.marks.push(PlotMark {
                    step: self.engine.steps_done() as f64,
                    label: if new.ot {
                        "OT coupling"
                    } else {
                        "independent pairs"
                    }
                    .to_string(),
                });
            }
            if old.time_sampling() != new.time_sampling() {
                self.curves.marks.push(PlotMark {
                    step: self.engine.steps_done() as f64,
                    label: if new.logit_normal {
                        format!("t logit-normal({}, {})", new.ln_mean, new.ln_std)
                    } else {
                        "t uniform".to_string()
                    },
                });
            }
            // The pairs are of a batch as the trainer draws it: batch, path and coupling
            // change it.
            self.layers.views.pairs = None;
            self.layers.views.pairs_at = None;
        }
        if self.settings.changes_flow(&edited) {
            self.flow.stale = true;
        }
        self.settings = edited;
        self.notices.error = None;
        self.edits.hash_dirty = true;
    }

    /// Ends the current round (keeping its weights to compare) and starts the next: the current
    /// model generates the coupling, and training goes on on it (QR §7.1).
    pub(crate) fn start_reflow(&mut self) {
        if self.engine.reflow_pending() {
            return;
        }
        let sampler = SamplerConfig::new(REFLOW_SOLVER, REFLOW_STEPS);
        let steps = self.engine.steps_done();
        let snapshot = self.engine.snapshot();
        match self.engine.start_reflow(REFLOW_PAIRS, &sampler, 1_000_000) {
            Ok(()) => {
                self.rounds.finished.push(Round {
                    snapshot,
                    eval: self.eval.last,
                    steps: steps - self.rounds.start,
                    path: self.settings.training.path.clone(),
                });
                self.rounds.start = steps;
                self.curves.marks.push(PlotMark {
                    step: steps as f64,
                    label: format!("reflow round {}", self.rounds.finished.len()),
                });
                self.eval.last = None;
                self.eval.evaluated_step = None;
                self.training = true;
                self.flow.stale = true;
            }
            Err(why) => self.tell(&why),
        }
    }
}
