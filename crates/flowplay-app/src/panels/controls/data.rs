//! The data p₁ and the source p₀.

use egui::{RichText, Ui};
use flowplay_core::data::Dataset;

use crate::settings::{CustomData, Settings};

/// The dataset and source menus.
pub(super) fn ui(ui: &mut Ui, edited: &mut Settings) {
    let data = &mut edited.data;
    ui.label(RichText::new("Data").strong());
    let name = data.name();
    menu(
        ui,
        ("dataset", name),
        (&mut data.dataset, &mut data.custom),
        Dataset::ALL.into_iter().filter(|d| *d != Dataset::Normal),
    )
    .on_hover_text("The data distribution p₁ the flow must reach (a new model).");
    let name = data.source_name();
    menu(
        ui,
        ("source", name),
        (&mut data.source, &mut data.custom_source),
        Dataset::ALL,
    )
    .on_hover_text(
        "The source p₀ the particles start from: N(0, I) as usual, or another dataset, to \
         learn a flow between two distributions (QR §1; a new model).",
    );
}

/// One menu of datasets (`label`, showing `shown`): the user's imported points first, when
/// there are any, then `choices`; a built-in choice replaces the imported points.
fn menu(
    ui: &mut Ui,
    (label, shown): (&str, String),
    (dataset, custom): (&mut Dataset, &mut Option<CustomData>),
    choices: impl IntoIterator<Item = Dataset>,
) -> egui::Response {
    egui::ComboBox::from_label(label)
        .selected_text(shown)
        .show_ui(ui, |ui| {
            if let Some(custom) = custom.as_ref() {
                let _ = ui
                    .selectable_label(true, &custom.name)
                    .on_hover_text(format!("Your {} points (imported).", custom.points.len()));
            }
            for choice in choices {
                let chosen = custom.is_none() && *dataset == choice;
                if ui
                    .selectable_label(chosen, choice.name())
                    .on_hover_text(choice.description())
                    .clicked()
                {
                    *dataset = choice;
                    *custom = None;
                }
            }
        })
        .response
}
