//! The data p₁ and the source p₀.

use egui::{RichText, Ui};
use flowplay_core::data::Dataset;

use crate::settings::Settings;

/// The dataset and source menus.
pub(super) fn ui(ui: &mut Ui, edited: &mut Settings) {
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
