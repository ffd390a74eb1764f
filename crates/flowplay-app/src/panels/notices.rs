//! The notices in force: the last error, the particle clamp, why the CPU trains.

use egui::{Color32, Ui};

use crate::app::PlaygroundApp;

/// Draws the notices, if any.
pub(crate) fn ui(ui: &mut Ui, app: &PlaygroundApp) {
    let lines = app.notice_lines();
    if !lines.is_empty() {
        ui.separator();
        ui.colored_label(Color32::from_rgb(220, 110, 60), lines.join("\n"));
    }
}
