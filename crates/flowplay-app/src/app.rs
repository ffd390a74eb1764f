//! The playground's state and frame loop.

use egui::{Color32, RichText, Ui};
use egui_plot::{Line, Plot, PlotPoints};
use flowplay_core::data::Dataset;
use flowplay_core::flow::SampleRequest;
use flowplay_core::sampler::{Record, SamplerConfig, Solver, Trajectories};
use flowplay_core::train::CpuTrainer;
use web_time::{Duration, Instant};

use crate::canvas::{self, View};
use crate::settings::{POOL_SIZE, PathKind, Settings};

/// Time per frame spent training, so that the frame stays smooth.
const TRAIN_BUDGET: Duration = Duration::from_millis(12);
/// How often the particles are re-integrated with the newest weights while training.
const FLOW_REFRESH: Duration = Duration::from_millis(400);
/// Seconds for the particles to travel from t = 0 to t = 1.
const TRAVEL_SECS: f32 = 3.0;
/// Data points drawn.
const DATA_SHOWN: usize = 3000;

/// The playground application.
pub struct PlaygroundApp {
    settings: Settings,
    trainer: CpuTrainer,
    data_shown: Vec<[f32; 2]>,
    view: View,
    training: bool,
    notice: Option<String>,
    flow: Option<Trajectories>,
    flow_stale: bool,
    flow_at: Instant,
    time: f32,
    playing: bool,
    steps_per_sec: f64,
    smoothed_loss: Vec<[f64; 2]>,
}

impl PlaygroundApp {
    /// Called once by eframe before the first frame.
    pub fn new(_cc: &eframe::CreationContext<'_>) -> Self {
        Self::with_settings(Settings::default())
    }

    fn with_settings(settings: Settings) -> Self {
        let (trainer, notice) = match build_trainer(&settings) {
            Ok(trainer) => (trainer, None),
            Err(message) => {
                // The defaults always build; fall back to them with the reason shown.
                let defaults = Settings::default();
                let trainer = build_trainer(&defaults).unwrap_or_else(|e| unreachable!("{e}"));
                (trainer, Some(message))
            }
        };
        let data_shown: Vec<[f32; 2]> =
            trainer.data().xy.iter().take(DATA_SHOWN).copied().collect();
        let view = View::fit(&data_shown, trainer.config().path.prior_scale());
        Self {
            settings,
            trainer,
            data_shown,
            view,
            training: false,
            notice,
            flow: None,
            flow_stale: true,
            flow_at: Instant::now(),
            time: 0.0,
            playing: true,
            steps_per_sec: 0.0,
            smoothed_loss: Vec::new(),
        }
    }

    /// A one-line summary: what tests read from the page title.
    fn status_line(&self) -> String {
        let loss = self.smoothed_loss.last().map_or(f64::NAN, |p| p[1]);
        format!(
            "flowplay · {} · step {} · loss {:.4} · {:.0} steps/s",
            if self.training { "training" } else { "paused" },
            self.trainer.steps_done(),
            loss,
            self.steps_per_sec
        )
    }

    /// Runs training steps for up to one frame's budget.
    fn train_for_a_frame(&mut self) {
        let started = Instant::now();
        let mut steps = 0_u32;
        while started.elapsed() < TRAIN_BUDGET {
            match self.trainer.step() {
                Ok(_) => steps += 1,
                Err(error) => {
                    self.training = false;
                    self.notice = Some(format!(
                        "{error}. Training is paused; the weights of the last good step are kept."
                    ));
                    break;
                }
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        if steps > 0 && elapsed > 0.0 {
            let rate = f64::from(steps) / elapsed;
            self.steps_per_sec = if self.steps_per_sec == 0.0 {
                rate
            } else {
                0.9 * self.steps_per_sec + 0.1 * rate
            };
        }
        self.update_loss_curve();
    }

    /// The loss curve as means over windows of 20 steps.
    fn update_loss_curve(&mut self) {
        const WINDOW: usize = 20;
        let losses = self.trainer.losses();
        let done = self.smoothed_loss.len() * WINDOW;
        for (k, chunk) in losses[done.min(losses.len())..]
            .chunks_exact(WINDOW)
            .enumerate()
        {
            let mean = chunk.iter().map(|&l| f64::from(l)).sum::<f64>() / WINDOW as f64;
            let step = (done + (k + 1) * WINDOW) as f64;
            self.smoothed_loss.push([step, mean]);
        }
    }

    /// Integrates the particles with the current weights.
    fn refresh_flow(&mut self) {
        let model = self.trainer.model(false);
        let request = SampleRequest {
            sampler: SamplerConfig::new(self.settings.solver, self.settings.sample_steps),
            n: self.settings.particles,
            seed: self.settings.seed ^ 0xF10,
            labels: None,
            cfg_scale: 1.0,
            record: Record {
                positions: true,
                endpoints: false,
                velocities: false,
            },
        };
        match model.sample(&request, None) {
            Ok(out) => self.flow = Some(out.trajectories),
            Err(error) => self.notice = Some(error.to_string()),
        }
        self.flow_stale = false;
        self.flow_at = Instant::now();
    }

    /// Applies edited settings: a new network when the data or shape changed, else the running
    /// trainer takes them and keeps its weights.
    fn apply_settings(&mut self, edited: Settings) {
        if edited == self.settings {
            return;
        }
        if self.settings.needs_new_model(&edited) {
            let training = self.training;
            *self = Self::with_settings(edited);
            self.training = training;
            return;
        }
        let rms = self.trainer.data().rms();
        let mut config = edited.train_config(rms);
        // Keep what the trainer was built with; only the switchable settings change.
        config.steps = self.trainer.config().steps;
        match self.trainer.set_config(config) {
            Ok(()) => {
                if self.settings.changes_flow(&edited) {
                    self.flow_stale = true;
                }
                if edited.path != self.settings.path {
                    self.view =
                        View::fit(&self.data_shown, self.trainer.config().path.prior_scale());
                }
                self.settings = edited;
                self.notice = None;
            }
            Err(error) => self.notice = Some(error.to_string()),
        }
    }

    fn settings_ui(&mut self, ui: &mut Ui) {
        let mut edited = self.settings.clone();
        ui.heading("flowplay");
        ui.label("Flow matching on 2-D data, trained live on the CPU.");
        ui.separator();

        let mut reset = false;
        ui.horizontal(|ui| {
            let label = if self.training { "Pause" } else { "▶ Train" };
            if ui
                .button(label)
                .on_hover_text("Space: start or pause training")
                .clicked()
            {
                self.training = !self.training;
            }
            reset = ui
                .button("⟲ Reset")
                .on_hover_text("New weights from the seed; training starts over")
                .clicked();
        });
        if reset {
            let training = self.training;
            *self = Self::with_settings(self.settings.clone());
            self.training = training;
            return;
        }
        ui.label(format!(
            "step {} · {:.0} steps/s",
            self.trainer.steps_done(),
            self.steps_per_sec
        ));
        ui.separator();

        ui.label(RichText::new("Data").strong());
        egui::ComboBox::from_label("dataset")
            .selected_text(edited.dataset.name())
            .show_ui(ui, |ui| {
                for dataset in Dataset::ALL {
                    ui.selectable_value(&mut edited.dataset, dataset, dataset.name())
                        .on_hover_text(dataset.description());
                }
            })
            .response
            .on_hover_text("The data distribution p₁ the flow must reach (a new model).");

        ui.label(RichText::new("Probability path").strong());
        for kind in PathKind::ALL {
            ui.radio_value(&mut edited.path, kind, kind.label())
                .on_hover_text(kind.explanation());
        }
        ui.checkbox(&mut edited.logit_normal, "logit-normal t")
            .on_hover_text(
                "Draw training times t = sigmoid(z), z ~ N(0, 1): more effort in the middle, where \
                 the target is hardest (QR §7.3). Off: t ~ U[0, 1].",
            );

        ui.label(RichText::new("Model and optimizer").strong());
        egui::ComboBox::from_label("width")
            .selected_text(edited.hidden.to_string())
            .show_ui(ui, |ui| {
                for hidden in [32, 64, 128, 256] {
                    ui.selectable_value(&mut edited.hidden, hidden, hidden.to_string());
                }
            })
            .response
            .on_hover_text("Hidden width of the velocity MLP v_θ(t, x) (QR §4.2; a new model).");
        ui.add(
            egui::Slider::new(&mut edited.batch, 32..=2048)
                .logarithmic(true)
                .text("batch"),
        )
        .on_hover_text("Pairs (x₀, x₁) per training step.");
        ui.add(
            egui::Slider::new(&mut edited.lr, 1e-4..=1e-2)
                .logarithmic(true)
                .text("learning rate"),
        )
        .on_hover_text("AdamW's step size (QR §4.4); too large and the loss explodes.");
        ui.add(egui::Slider::new(&mut edited.seed, 0..=99).text("seed"))
            .on_hover_text("Same seed, same data, weights and batches (a new model).");

        ui.label(RichText::new("Sampling").strong());
        egui::ComboBox::from_label("solver")
            .selected_text(edited.solver.name())
            .show_ui(ui, |ui| {
                for solver in Solver::ALL {
                    ui.selectable_value(&mut edited.solver, solver, solver.name());
                }
            })
            .response
            .on_hover_text(
                "ODE solver for dx/dt = v_θ(t, x) (QR §5): Euler 1, Heun 2, RK4 4 evaluations \
                 per step.",
            );
        ui.add(egui::Slider::new(&mut edited.sample_steps, 1..=100).text("steps"))
            .on_hover_text("Solver steps from t = 0 to t = 1.");
        ui.label(format!(
            "NFE {} per particle",
            edited.sample_steps * edited.solver.evals_per_step()
        ));
        ui.add(
            egui::Slider::new(&mut edited.particles, 50..=3000)
                .logarithmic(true)
                .text("particles"),
        );
        ui.checkbox(&mut edited.trails, "trails");

        self.apply_settings(edited);
        if let Some(notice) = &self.notice {
            ui.separator();
            ui.colored_label(Color32::from_rgb(220, 80, 60), notice);
        }
    }
}

/// A trainer for `settings`, or why there is none.
fn build_trainer(settings: &Settings) -> Result<CpuTrainer, String> {
    // Drawn once; the data scale (VE's σ_data) comes from the pool, as when the path is switched.
    let pool = settings.dataset.sample(POOL_SIZE, settings.seed);
    let config = settings.train_config(pool.rms());
    CpuTrainer::with_custom(config, Some(pool), None).map_err(|e| e.to_string())
}

impl eframe::App for PlaygroundApp {
    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        if ui.input(|i| i.key_pressed(egui::Key::Space)) {
            self.training = !self.training;
        }
        if self.training {
            self.train_for_a_frame();
            if self.flow_at.elapsed() > FLOW_REFRESH {
                self.flow_stale = true;
            }
        }
        if self.flow_stale {
            self.refresh_flow();
        }
        if self.playing {
            let dt = ui.input(|i| i.stable_dt).min(0.1);
            self.time = (self.time + dt / TRAVEL_SECS) % 1.0;
        }

        egui::Panel::left("settings")
            .resizable(false)
            .default_size(230.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| self.settings_ui(ui));
            });
        egui::Panel::bottom("loss")
            .resizable(true)
            .default_size(150.0)
            .show(ui, |ui| {
                let points = PlotPoints::from(self.smoothed_loss.clone());
                Plot::new("loss_plot")
                    .x_axis_label("step")
                    .y_axis_label("loss")
                    .allow_scroll(false)
                    .show(ui, |plot_ui| {
                        plot_ui.line(Line::new("training loss", points));
                    });
            });
        egui::CentralPanel::default().show(ui, |ui| {
            ui.horizontal(|ui| {
                let label = if self.playing { "Pause" } else { "▶ Play" };
                if ui
                    .button(label)
                    .on_hover_text("Play or pause the particles")
                    .clicked()
                {
                    self.playing = !self.playing;
                }
                ui.add(egui::Slider::new(&mut self.time, 0.0..=1.0).text("t"))
                    .on_hover_text("t = 0 is the noise, t = 1 the data (QR §1).");
            });
            canvas::show(
                ui,
                self.view,
                &self.data_shown,
                self.flow.as_ref(),
                self.time,
                self.settings.trails,
            );
        });

        #[cfg(target_arch = "wasm32")]
        if let Some(document) = web_sys::window().and_then(|w| w.document()) {
            document.set_title(&self.status_line());
        }
        #[cfg(not(target_arch = "wasm32"))]
        ui.ctx()
            .send_viewport_cmd(egui::ViewportCommand::Title(self.status_line()));

        if self.training || self.playing {
            ui.ctx().request_repaint();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Settings {
        Settings {
            hidden: 32,
            batch: 64,
            particles: 40,
            sample_steps: 5,
            ..Settings::default()
        }
    }

    #[test]
    fn a_frame_of_training_advances_and_the_flow_follows() {
        let mut app = PlaygroundApp::with_settings(small());
        app.training = true;
        app.train_for_a_frame();
        assert!(app.trainer.steps_done() > 0);
        app.refresh_flow();
        let flow = app.flow.as_ref().expect("particles are integrated");
        assert_eq!(flow.frames(), 6);
        assert_eq!(flow.positions.len(), 40 * 6);
        assert!(app.status_line().starts_with("flowplay · training · step "));
    }

    #[test]
    fn switching_the_path_keeps_the_weights_and_a_new_width_does_not() {
        let mut app = PlaygroundApp::with_settings(small());
        app.train_for_a_frame();
        let weights = app.trainer.params().to_vec();
        let mut edited = app.settings.clone();
        edited.path = PathKind::VpCosine;
        edited.lr = 5e-3;
        app.apply_settings(edited);
        assert_eq!(app.trainer.params(), weights.as_slice());
        assert_eq!(
            app.trainer.config().path,
            flowplay_core::path::Path::VpCosine
        );
        assert!(app.flow_stale, "a new path needs new particles");

        let mut wider = app.settings.clone();
        wider.hidden = 64;
        app.apply_settings(wider);
        assert_eq!(app.trainer.steps_done(), 0);
        assert_eq!(app.trainer.config().mlp.hidden, 64);
    }

    #[test]
    fn a_diverging_learning_rate_pauses_with_a_notice() {
        let mut app = PlaygroundApp::with_settings(Settings {
            lr: 1e-2,
            ..small()
        });
        let mut config = app.trainer.config().clone();
        config.optimizer.lr = 1e30;
        config.clip_norm = None;
        app.trainer
            .set_config(config)
            .expect("only the learning rate changed");
        app.training = true;
        for _ in 0..20 {
            if !app.training {
                break;
            }
            app.train_for_a_frame();
        }
        assert!(!app.training);
        let notice = app.notice.as_deref().unwrap_or_default();
        assert!(
            notice.contains("diverged") && notice.contains("last good step"),
            "{notice}"
        );
    }

    #[test]
    fn particles_interpolate_between_grid_nodes() {
        let traj = Trajectories {
            times: vec![0.0, 0.5, 1.0],
            positions: vec![[0.0, 0.0], [1.0, 2.0], [3.0, 2.0]],
            ..Trajectories::default()
        };
        let close =
            |a: [f32; 2], b: [f32; 2]| (a[0] - b[0]).abs() < 1e-6 && (a[1] - b[1]).abs() < 1e-6;
        assert!(close(canvas::position_at(&traj, 0, 0.25), [0.5, 1.0]));
        assert!(close(canvas::position_at(&traj, 0, 0.75), [2.0, 2.0]));
        assert!(close(canvas::position_at(&traj, 0, 1.0), [3.0, 2.0]));
    }
}
