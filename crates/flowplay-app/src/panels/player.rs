//! The player: play or pause the particles, step along the solver's grid, scrub t.

use egui::Ui;

use crate::app::PlaygroundApp;
use crate::command::{Command, Direction};

/// Draws the player and pushes what the user asked for.
pub(crate) fn ui(ui: &mut Ui, app: &PlaygroundApp, out: &mut Vec<Command>) {
    ui.horizontal_wrapped(|ui| {
        let label = if app.player.playing { "Pause" } else { "Play" };
        if ui
            .button(label)
            .on_hover_text("Play or pause the particles")
            .clicked()
        {
            out.push(Command::TogglePlay);
        }
        if ui
            .button("step back")
            .on_hover_text("Back one solver step")
            .clicked()
        {
            out.push(Command::Step(Direction::Back));
        }
        if ui
            .button("step on")
            .on_hover_text("On one solver step")
            .clicked()
        {
            out.push(Command::Step(Direction::On));
        }
    });
    // The sliders on their own line, sized to the width there is: on a phone they must not
    // widen the page.
    ui.horizontal(|ui| {
        // Each slider brings its value box and label, about 95 points between them.
        ui.spacing_mut().slider_width = ((ui.available_width() - 200.0) / 2.0).clamp(40.0, 240.0);
        let mut t = app.player.time;
        if ui
            .add(egui::Slider::new(&mut t, 0.0..=1.0).text("t"))
            .on_hover_text("t = 0 is the noise, t = 1 the data (QR §1).")
            .changed()
        {
            out.push(Command::Seek(t));
        }
        let mut speed = app.player.speed;
        if ui
            .add(
                egui::Slider::new(&mut speed, 0.1..=4.0)
                    .logarithmic(true)
                    .text("speed"),
            )
            .changed()
        {
            out.push(Command::Speed(speed));
        }
    });
}
