//! The network, the optimizer, the coupling, the seed and the classes.

use egui::{RichText, Ui};

use crate::settings::Settings;

/// The model and optimizer settings.
pub(super) fn ui(ui: &mut Ui, edited: &mut Settings) {
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
         θ_ema ← d·θ_ema + (1 − d)·θ (QR §4.4): smoother than the raw weights.",
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
