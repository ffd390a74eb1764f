//! How the particles are sampled: solver, steps, time shift, count, weights, class, guidance.

use egui::{RichText, Ui};
use flowplay_core::sampler::Solver;

use crate::layers::LayerId;
use crate::settings::Settings;

/// The sampling settings.
pub(super) fn ui(ui: &mut Ui, edited: &mut Settings) {
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
    crate::panels::formula_ui(ui, crate::formulas::solver(sampling.solver));
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
        egui::Slider::new(
            &mut sampling.particles,
            100..=crate::settings::MAX_PARTICLES,
        )
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
        crate::panels::formula_ui(ui, crate::formulas::GUIDANCE);
        ui.label(RichText::new(guidance_effect(sampling.cfg_scale)).small());
        let class = sampling.class.filter(|&c| c < classes).unwrap_or(0);
        let showing =
            edited.view.layers.contains(LayerId::Field) && edited.view.field_class == Some(class);
        if !showing
            && ui
                .button(format!("show the guided field of class {class}"))
                .on_hover_text(
                    "Turns on the field layer with the guided field v_w of this class: the                      arrows the particles follow.",
                )
                .clicked()
        {
            edited.view.layers.set(LayerId::Field, true);
            edited.view.field_class = Some(class);
        }
    }
}

/// What guidance of weight `w` does to the particles, in a sentence.
fn guidance_effect(w: f32) -> &'static str {
    if w < 0.05 {
        "w = 0: the class is ignored, the particles follow the unconditional field v(t, x, ∅)."
    } else if w < 0.95 {
        "w < 1: between the unconditional field and the class's: the classes blur together."
    } else if w <= 1.05 {
        "w = 1: the class's own field v(t, x, c), the data of that class as it is."
    } else if w < 3.0 {
        "w > 1: past the class's field, away from the others: sharper, a little less varied."
    } else {
        "Large w: the extrapolation overshoots, and the particles collapse onto the densest part          of the class, a tight dot: fidelity bought with all the diversity. The guided field shows          why."
    }
}
