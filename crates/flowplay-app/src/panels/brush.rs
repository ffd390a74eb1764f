//! Draw your own data: a brush on the canvas, a colour per class, erase and clear, and the
//! drawing made the data the flow trains on.

use egui::{RichText, Ui};

use crate::app::{PlaygroundApp, Role};
use crate::canvas::PALETTE;
use crate::command::Command;

/// Classes the brush paints (the palette's colours).
pub(crate) const BRUSH_CLASSES: u32 = 8;

/// Draws the brush's controls and pushes what the user asked for.
pub(crate) fn ui(ui: &mut Ui, app: &PlaygroundApp, out: &mut Vec<Command>) {
    let mut tool = app.brush;
    ui.label(RichText::new("Draw your data").strong());
    ui.checkbox(&mut tool.on, "brush on the canvas")
        .on_hover_text(
            "Drag on the canvas to paint points (a right-drag then pans, scrolling zooms). Then \
         \"Train on the drawing\" makes them the data.",
        );
    if tool.on {
        ui.horizontal_wrapped(|ui| {
            ui.label("class:");
            for c in 0..BRUSH_CLASSES {
                let text = RichText::new(c.to_string())
                    .color(PALETTE[c as usize])
                    .strong();
                if ui
                    .selectable_label(tool.class == c && !tool.erase, text)
                    .on_hover_text(format!(
                        "Paint class {c}: with more than one class the drawing trains a \
                         class-conditional model, sampled with guidance."
                    ))
                    .clicked()
                {
                    tool.class = c;
                    tool.erase = false;
                }
            }
        });
        ui.add(egui::Slider::new(&mut tool.radius, 4.0..=80.0).text("radius"))
            .on_hover_text("The brush's radius on screen.");
        ui.add(egui::Slider::new(&mut tool.density, 1..=40).text("density"))
            .on_hover_text("Points added per frame while dragging, uniformly in the brush's disc.");
        ui.checkbox(&mut tool.erase, "erase")
            .on_hover_text("Remove the painted points under the brush.");
    }
    if tool != app.brush {
        out.push(Command::Brush(tool));
    }
    let count = app.drawing.xy.len();
    ui.horizontal_wrapped(|ui| {
        ui.label(format!("{count} points drawn"));
        if ui
            .add_enabled(count > 0, egui::Button::new("Clear"))
            .on_hover_text("Remove every painted point.")
            .clicked()
        {
            out.push(Command::ClearDrawing);
        }
        if ui
            .button("Train on the drawing")
            .on_hover_text(
                "The painted points become the data; the weights carry on, so the flow \
                 morphs to them (a new model if the number of classes changes).",
            )
            .clicked()
        {
            out.push(Command::UseDrawing(Role::Data));
        }
        if ui
            .button("Start from the drawing")
            .on_hover_text(
                "The painted points become the source p₀ the particles start from (their \
                 classes unused): the flow learns to carry your drawing to the data.",
            )
            .clicked()
        {
            out.push(Command::UseDrawing(Role::Source));
        }
    });
}
