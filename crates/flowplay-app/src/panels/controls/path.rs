//! The probability path and how training draws t.

use egui::{Color32, RichText, Ui};
use flowplay_core::path::TimeSampling;

use crate::settings::{PathKind, Settings};

/// The path, its parameters and the time sampling.
pub(super) fn ui(ui: &mut Ui, edited: &mut Settings) {
    let training = &mut edited.training;
    ui.label(RichText::new("Probability path").strong());
    for kind in PathKind::ALL {
        ui.radio_value(&mut training.path.kind, kind, kind.label())
            .on_hover_text(kind.explanation());
    }
    crate::panels::formula_ui(
        ui,
        &format!(
            "{}\n{}",
            crate::formulas::path(training.path.kind, training.path.rf_sigma_min),
            crate::formulas::LOSS
        ),
    );
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
