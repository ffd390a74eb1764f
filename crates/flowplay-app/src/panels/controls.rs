//! The controls: train and reset, where it runs, the data, the path and time sampling, the
//! model and optimizer, and sampling. Edits come back as one [`Command::Settings`].

use egui::{Color32, RichText, Ui};
use flowplay_core::data::Dataset;
use flowplay_core::path::TimeSampling;
use flowplay_core::sampler::Solver;

use crate::app::{PlaygroundApp, rate};
use crate::command::Command;
use crate::settings::{Compute, PathKind, Settings};

/// Draws the controls and pushes what the user asked for.
pub(crate) fn ui(ui: &mut Ui, app: &PlaygroundApp, out: &mut Vec<Command>) {
    let mut edited = app
        .edits
        .deferred
        .clone()
        .unwrap_or_else(|| app.settings.clone());
    ui.heading("flowplay");
    ui.label(
        "Flow matching on 2-D data: a velocity network v_θ(t, x) trains live, and particles \
         follow its ODE from noise to data.",
    );
    ui.separator();
    ui.horizontal(|ui| {
        let label = if app.training {
            "Pause training"
        } else {
            "Train"
        };
        if ui
            .button(label)
            .on_hover_text("Space: start or pause training")
            .clicked()
        {
            out.push(Command::ToggleTraining);
        }
        if ui
            .button("Reset")
            .on_hover_text("New weights from the seed; training starts over")
            .clicked()
        {
            out.push(Command::Reset);
        }
        if ui
            .add_enabled(app.undo.is_some(), egui::Button::new("Undo"))
            .on_hover_text(
                "Back to the model the last new model replaced, with its curves (Ctrl+Z); again \
                 to return",
            )
            .on_disabled_hover_text("Nothing to undo: no model has been replaced yet")
            .clicked()
        {
            out.push(Command::Undo);
        }
    });
    ui.label(format!(
        "step {} · {} steps/s · {} fps",
        app.engine.steps_done(),
        rate(app.frame.steps_per_sec),
        rate(app.frame.fps)
    ));
    compute_ui(ui, app, &mut edited);
    ui.separator();
    data_ui(ui, &mut edited);
    path_ui(ui, &mut edited);
    model_ui(ui, &mut edited);
    sampling_ui(ui, &mut edited);
    if edited != app.settings && app.edits.deferred.as_ref() != Some(&edited) {
        out.push(Command::Settings(Box::new(edited)));
    } else if app.edits.deferred.is_some() && !app.frame.pointer_down {
        // The drag that held a new model back is over: apply it now.
        out.push(Command::Settings(Box::new(edited)));
    }
}

/// Where training runs: the GPU when there is one, or the CPU reference.
fn compute_ui(ui: &mut Ui, app: &PlaygroundApp, edited: &mut Settings) {
    ui.horizontal(|ui| {
        ui.label("compute:");
        ui.radio_value(&mut edited.compute, Compute::Auto, "auto")
            .on_hover_text(
                "The GPU when it is a hardware one; the CPU reference on a software renderer or \
                 without GPU compute.",
            );
        ui.add_enabled_ui(app.device.gpu.is_some(), |ui| {
            ui.radio_value(&mut edited.compute, Compute::Gpu, "GPU")
                .on_hover_text(format!("WGSL compute shaders on {}", app.device.adapter))
                .on_disabled_hover_text("No GPU with compute shaders here.");
        });
        ui.radio_value(&mut edited.compute, Compute::Cpu, "CPU")
            .on_hover_text(
                "The CPU reference (flowplay-core): the same maths, one thread in the browser. \
                 Switching starts training over.",
            );
    });
}

fn data_ui(ui: &mut Ui, edited: &mut Settings) {
    let data = &mut edited.data;
    ui.label(RichText::new("Data").strong());
    egui::ComboBox::from_label("dataset")
        .selected_text(data.name())
        .show_ui(ui, |ui| {
            if let Some(custom) = &data.custom {
                let _ = ui
                    .selectable_label(true, &custom.name)
                    .on_hover_text(format!("Your {} points (imported).", custom.points.len()));
            }
            for dataset in Dataset::ALL.into_iter().filter(|d| *d != Dataset::Normal) {
                let chosen = data.custom.is_none() && data.dataset == dataset;
                if ui
                    .selectable_label(chosen, dataset.name())
                    .on_hover_text(dataset.description())
                    .clicked()
                {
                    data.dataset = dataset;
                    data.custom = None;
                }
            }
        })
        .response
        .on_hover_text("The data distribution p₁ the flow must reach (a new model).");
    egui::ComboBox::from_label("source")
        .selected_text(data.source_name())
        .show_ui(ui, |ui| {
            if let Some(custom) = &data.custom_source {
                let _ = ui
                    .selectable_label(true, &custom.name)
                    .on_hover_text(format!("Your {} points (imported).", custom.points.len()));
            }
            for dataset in Dataset::ALL {
                let chosen = data.custom_source.is_none() && data.source == dataset;
                if ui
                    .selectable_label(chosen, dataset.name())
                    .on_hover_text(dataset.description())
                    .clicked()
                {
                    data.source = dataset;
                    data.custom_source = None;
                }
            }
        })
        .response
        .on_hover_text(
            "The source p₀ the particles start from: N(0, I) as usual, or another dataset, to \
             learn a flow between two distributions (QR §1; a new model).",
        );
}

fn path_ui(ui: &mut Ui, edited: &mut Settings) {
    let training = &mut edited.training;
    ui.label(RichText::new("Probability path").strong());
    for kind in PathKind::ALL {
        ui.radio_value(&mut training.path.kind, kind, kind.label())
            .on_hover_text(kind.explanation());
    }
    if training.path.kind == PathKind::RectifiedFlow {
        ui.add(
            egui::Slider::new(&mut training.path.rf_sigma_min, 0.0..=0.1)
                .clamping(egui::SliderClamping::Edits)
                .logarithmic(true)
                .smallest_positive(1e-6)
                .text("σ_min"),
        )
        .on_hover_text(
            "Noise left at t = 1 (the TRELLIS form, which uses 1e-5): \
             x_t = (1 − (1 − σ_min)·t)·x₀ + t·x₁. 0 is the Quick Reference's straight path.",
        );
    }
    if training.path.kind == PathKind::Ve {
        ui.add(
            egui::Slider::new(&mut training.path.ve_sigma[0], 0.001..=1.0)
                .clamping(egui::SliderClamping::Edits)
                .logarithmic(true)
                .text("σ_min"),
        )
        .on_hover_text("The noise left at t = 1 (QR §3.3): σ(1) = σ_min.");
        ui.add(
            egui::Slider::new(&mut training.path.ve_sigma[1], 1.0..=200.0)
                .clamping(egui::SliderClamping::Edits)
                .logarithmic(true)
                .text("σ_max"),
        )
        .on_hover_text(
            "The noise at t = 0 (QR §3.3): the particles start from σ_max·z. It should dwarf \
             the data's spread.",
        );
        ui.checkbox(&mut training.path.ve_precondition, "EDM preconditioning")
            .on_hover_text(
                "Scale the network's input, output and skip connection by σ (EDM, Karras et al. \
                 2022) so that it sees unit-scale values at every noise level. Off is the \
                 Quick Reference's plain VE, whose targets span σ_max: it hardly trains at \
                 σ_max = 50.",
            );
    }
    ui.checkbox(&mut training.logit_normal, "logit-normal t")
        .on_hover_text(
            "Draw training times t = sigmoid(m + s·z), z ~ N(0, 1): more effort in the middle, \
             where the target is hardest (QR §7.3). Off: t ~ U[0, 1].",
        );
    if training.logit_normal {
        ui.add(
            egui::Slider::new(&mut training.ln_mean, -2.0..=2.0)
                .clamping(egui::SliderClamping::Edits)
                .text("m"),
        )
        .on_hover_text("Location: positive m trains more near the data (t → 1).");
        ui.add(
            egui::Slider::new(&mut training.ln_std, 0.2..=2.5)
                .clamping(egui::SliderClamping::Edits)
                .text("s"),
        )
        .on_hover_text("Scale: small s concentrates t around sigmoid(m).");
    }
    time_histogram_ui(ui, &training.time_sampling());
}

fn model_ui(ui: &mut Ui, edited: &mut Settings) {
    ui.label(RichText::new("Model and optimizer").strong());
    let has_classes = edited.data.num_classes() > 0;
    let model = &mut edited.model;
    egui::ComboBox::from_label("width")
        .selected_text(model.hidden.to_string())
        .show_ui(ui, |ui| {
            for hidden in [32, 64, 128, 256] {
                ui.selectable_value(&mut model.hidden, hidden, hidden.to_string());
            }
        })
        .response
        .on_hover_text("Hidden width of the velocity MLP v_θ(t, x) (QR §4.2; a new model).");
    ui.add(
        egui::Slider::new(&mut edited.training.batch, 32..=4096)
            .clamping(egui::SliderClamping::Edits)
            .logarithmic(true)
            .text("batch"),
    )
    .on_hover_text("Pairs (x₀, x₁) per training step (QR §4.4).");
    ui.add(
        egui::Slider::new(&mut edited.optim.lr, 1e-4..=1e-2)
            .clamping(egui::SliderClamping::Edits)
            .logarithmic(true)
            .text("learning rate"),
    )
    .on_hover_text(
        "AdamW's step size (QR §4.4); too large and the loss explodes (training then pauses \
         and the last good weights come back).",
    );
    ui.add(
        egui::Slider::new(&mut edited.optim.clip, 0.0..=10.0)
            .clamping(egui::SliderClamping::Edits)
            .text("gradient clip"),
    )
    .on_hover_text(
        "Scale the gradient down to this global norm when it is longer (QR §4.4 uses 1); 0 \
         turns clipping off.",
    );
    ui.add(
        egui::Slider::new(&mut edited.optim.weight_decay, 0.0..=0.1)
            .clamping(egui::SliderClamping::Edits)
            .logarithmic(true)
            .smallest_positive(1e-5)
            .text("weight decay"),
    )
    .on_hover_text("AdamW's decoupled weight decay: θ ← θ − lr·λ·θ each step (0: none).");
    ui.add(
        egui::Slider::new(&mut model.depth, 1..=4)
            .clamping(egui::SliderClamping::Edits)
            .text("depth"),
    )
    .on_hover_text("Hidden layers of the MLP (QR §4.2 uses 2; a new model).");
    ui.checkbox(&mut model.t_times_1000, "t × 1000 into the model")
        .on_hover_text(
            "TRELLIS feeds the network t·1000 (sinusoidal embedding of the scaled time); the \
             Quick Reference feeds t. The frequencies then cover a different range (a new model).",
        );
    ui.add(
        egui::Slider::new(&mut edited.optim.ema, 0.9..=0.9999)
            .clamping(egui::SliderClamping::Edits)
            .logarithmic(true)
            .text("EMA"),
    )
    .on_hover_text(
        "The particles and W2 use the exponential moving average of the weights, \
         θ̄ ← d·θ̄ + (1 − d)·θ (QR §4.4): smoother than the raw weights.",
    );
    ui.checkbox(&mut edited.training.ot, "minibatch-OT coupling")
        .on_hover_text(
            "Pair each batch's x₀ and x₁ by an exact optimal assignment instead of at random \
             (OT-CFM): paths cross less, so the flow is straighter from the first round.",
        );
    ui.horizontal(|ui| {
        ui.add(egui::DragValue::new(&mut edited.data.seed).range(0..=u64::from(u32::MAX)))
            .on_hover_text("Same seed, same data, weights and batches (a new model).");
        ui.label("seed");
        if ui
            .button("new seed")
            .on_hover_text("A random seed from the system: other data, weights and batches.")
            .clicked()
            && let Ok(seed) = getrandom::u32()
        {
            edited.data.seed = u64::from(seed);
        }
    });
    ui.add_enabled_ui(has_classes, |ui| {
        ui.checkbox(&mut edited.model.conditional, "class-conditional")
            .on_hover_text(
                "Train v_θ(t, x, c) with the data's classes, dropping the label some of the time \
                 (label dropout) so the same network also learns the unconditional field (QR §7.2; a new \
                 model). Particles take their class's colour.",
            )
            .on_disabled_hover_text("This dataset has no classes.");
    });
    if edited.model.conditional && has_classes {
        ui.add(
            egui::Slider::new(&mut edited.training.p_drop, 0.0..=0.5)
                .clamping(egui::SliderClamping::Edits)
                .text("label dropout"),
        )
        .on_hover_text(
            "The share of training steps whose label is dropped to ∅, so that the same network \
             learns the unconditional field that guidance extrapolates from (QR §7.2; 0.1 is \
             usual, 0 leaves guidance without its baseline).",
        );
    }
    if edited.training.ot && edited.model.conditional && has_classes {
        ui.colored_label(
            ui.visuals().warn_fg_color,
            "OT coupling with classes: minibatch OT pairs noise with the nearest data of any \
             class, which breaks the link between a class and its region (TorchCFM #117; C2OT \
             couples within classes). Expect worse class fidelity.",
        );
    }
}

fn sampling_ui(ui: &mut Ui, edited: &mut Settings) {
    let classes = edited.classes();
    let conditional = classes > 0;
    let sampling = &mut edited.sampling;
    ui.label(RichText::new("Sampling").strong());
    egui::ComboBox::from_label("solver")
        .selected_text(sampling.solver.name())
        .show_ui(ui, |ui| {
            for solver in Solver::ALL {
                ui.selectable_value(&mut sampling.solver, solver, solver.name());
            }
        })
        .response
        .on_hover_text(
            "ODE solver for dx/dt = v_θ(t, x) (QR §5): Euler 1, Heun 2, RK4 4 evaluations per \
             step.",
        );
    ui.add(
        egui::Slider::new(&mut sampling.steps, 1..=100)
            .clamping(egui::SliderClamping::Edits)
            .text("steps"),
    )
    .on_hover_text("Solver steps from t = 0 to t = 1.");
    ui.add(
        egui::Slider::new(&mut sampling.rescale_t, 0.25..=8.0)
            .clamping(egui::SliderClamping::Edits)
            .logarithmic(true)
            .text("rescale_t"),
    )
    .on_hover_text(
        "TRELLIS's time shift of the step grid: with τ = 1 − t, τ′ = r·τ / (1 + (r − 1)·τ). \
         r > 1 spends more steps near the noise, r < 1 near the data; 1 leaves the grid uniform.",
    );
    ui.label(format!(
        "NFE {} per particle",
        sampling.steps * sampling.solver.evals_per_step()
    ));
    ui.add(
        egui::Slider::new(&mut sampling.particles, 100..=1_000_000)
            .clamping(egui::SliderClamping::Edits)
            .logarithmic(true)
            .text("particles"),
    )
    .on_hover_text("Particles integrated from noise (clamped to what the device can draw).");
    ui.horizontal(|ui| {
        ui.label("weights:");
        ui.radio_value(&mut sampling.ema, true, "EMA")
            .on_hover_text(
                "Draw and evaluate the exponential moving average of the weights (QR §4.4): \
             smoother than the raw ones.",
            );
        ui.radio_value(&mut sampling.ema, false, "raw")
            .on_hover_text("Draw and evaluate the optimizer's current weights.");
    });
    if conditional {
        let shown = |c: Option<u32>| c.map_or("every class".to_string(), |c| format!("class {c}"));
        egui::ComboBox::from_label("sample")
            .selected_text(shown(sampling.class.filter(|&c| c < classes)))
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut sampling.class, None, shown(None));
                for c in 0..classes {
                    ui.selectable_value(&mut sampling.class, Some(c), shown(Some(c)));
                }
            })
            .response
            .on_hover_text(
                "The class the particles are drawn from (as the CLI's --class), or every class \
                 in turn.",
            );
        ui.add(
            egui::Slider::new(&mut sampling.cfg_scale, 0.0..=6.0)
                .clamping(egui::SliderClamping::Edits)
                .text("guidance w"),
        )
        .on_hover_text(
            "Classifier-free guidance (QR §7.2): v = v(x, ∅) + w·(v(x, c) − v(x, ∅)). w = 1 is \
             the plain conditional field, w > 1 pushes particles deeper into their class, w = 0 \
             ignores it.",
        );
    }
}

/// A small histogram of 4000 training times drawn as the trainer draws them (QR §7.3).
fn time_histogram_ui(ui: &mut Ui, sampling: &TimeSampling) {
    const BINS: usize = 40;
    const DRAWS: u32 = 4000;
    let key = flowplay_core::rng::key_from_seed(0x7157);
    let mut counts = [0_u32; BINS];
    for i in 0..DRAWS {
        let t = sampling.sample(flowplay_core::rng::threefry2x32(key, [i, 0]));
        counts[((t * BINS as f32) as usize).min(BINS - 1)] += 1;
    }
    let peak = counts.iter().copied().max().unwrap_or(1).max(1) as f32;
    let (rect, response) = ui.allocate_exact_size(
        egui::vec2(ui.available_width().min(220.0), 36.0),
        egui::Sense::hover(),
    );
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 2.0, ui.visuals().extreme_bg_color);
    let w = rect.width() / BINS as f32;
    for (b, &c) in counts.iter().enumerate() {
        let h = rect.height() * c as f32 / peak;
        let x = rect.left() + b as f32 * w;
        painter.rect_filled(
            egui::Rect::from_min_max(
                egui::pos2(x, rect.bottom() - h),
                egui::pos2(x + w - 1.0, rect.bottom()),
            ),
            0.0,
            Color32::from_rgb(120, 160, 210),
        );
    }
    response.on_hover_text(
        "Training times t drawn from this distribution: 0 (noise) on the left, 1 (data) on the \
         right.",
    );
}
