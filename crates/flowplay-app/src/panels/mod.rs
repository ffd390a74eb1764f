//! The playground's panels, one a file, each a `ui` function that reads the app's state and
//! pushes the [`crate::command::Command`]s the user asked for (the egui demo's one-panel-a-file
//! structure). Nothing here changes the state; `PlaygroundApp::apply` does.

pub(crate) mod brush;
pub(crate) mod compare;
pub(crate) mod controls;
pub(crate) mod files;
pub(crate) mod lab;
pub(crate) mod layers;
pub(crate) mod lessons;
pub(crate) mod player;
pub(crate) mod plots;
pub(crate) mod reflow;

#[cfg(test)]
mod tests;

/// A formula, in monospace on a darker band, one line per line.
pub(crate) fn formula_ui(ui: &mut egui::Ui, formula: &str) {
    egui::Frame::new()
        .fill(ui.visuals().extreme_bg_color)
        .inner_margin(egui::Margin::symmetric(6, 4))
        .corner_radius(3.0)
        .show(ui, |ui| {
            ui.label(egui::RichText::new(formula).monospace().size(12.0));
        });
}
