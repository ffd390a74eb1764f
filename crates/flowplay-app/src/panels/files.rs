//! Your data in, your results out: import points or weights, export weights, samples and
//! trajectories, and copy a link with every setting.

use egui::{RichText, Ui};

use flowplay_core::picture::Density;

use crate::app::{PlaygroundApp, Role};
use crate::command::{Command, Export};
use crate::files::Purpose;
use crate::media::Picture;

/// Draws the import and export buttons and pushes what the user asked for.
pub(crate) fn ui(ui: &mut Ui, app: &PlaygroundApp, out: &mut Vec<Command>) {
    ui.label(RichText::new("Your data and results").strong());
    let (mut role, mut density) = (app.files.role, app.files.density);
    ui.horizontal_wrapped(|ui| {
        ui.label("points become the:");
        ui.radio_value(&mut role, Role::Data, "data")
            .on_hover_text("The distribution p₁ the flow learns to reach.");
        ui.radio_value(&mut role, Role::Source, "source")
            .on_hover_text(
                "The distribution p₀ the particles start from, instead of N(0, I): a flow from \
                 your points to the data (the likelihood then has no known start density).",
            );
    });
    ui.horizontal_wrapped(|ui| {
        ui.label("a picture's points:");
        ui.radio_value(&mut density, Density::Darkness, "dark pixels")
            .on_hover_text("Ink on paper: the darker a pixel, the more points fall in it.");
        ui.radio_value(&mut density, Density::Brightness, "bright pixels")
            .on_hover_text("Light on black: the brighter a pixel, the more points fall in it.");
    });
    if (role, density) != (app.files.role, app.files.density) {
        out.push(Command::ImportAs(role, density));
    }
    ui.horizontal_wrapped(|ui| {
        if ui
            .button("Import points")
            .on_hover_text(
                "Train on your own points: a CSV with columns x,y or x,y,label (a header line \
                 and # comments are fine), or a PNG or JPEG picture, whose dark (or bright) \
                 pixels are sampled to 16 384 points. The weights carry on, so the flow morphs \
                 to the new data. Or drop the file on the window.",
            )
            .clicked()
        {
            out.push(Command::Open(Purpose::Data));
        }
        if ui
            .button("Import weights")
            .on_hover_text(
                "Flow from a model: weights written by flowplay, or the Quick Reference's \
                 VectorFieldMLP saved from PyTorch with safetensors.torch.save_file (F32, F16, \
                 BF16 or F64). The current model stays one Undo away. Or drop the file.",
            )
            .clicked()
        {
            out.push(Command::Open(Purpose::Weights));
        }
    });
    let busy = app.files.exporting.is_some();
    ui.add_enabled_ui(!busy, |ui| {
        ui.horizontal_wrapped(|ui| {
            ui.label("save:");
            let exports = [
                (
                    "weights",
                    Export::Weights { ema: false },
                    "The raw weights as safetensors with the Quick Reference's PyTorch names \
                     (load_state_dict(load_file(path))) and the model's settings as metadata, as \
                     flowplay train writes them. Ctrl+S saves the weights drawn (raw or EMA).",
                ),
                (
                    "EMA weights",
                    Export::Weights { ema: true },
                    "The exponential moving average of the weights, the same way.",
                ),
                (
                    "samples",
                    Export::Samples,
                    "The particles' end points at t = 1 as CSV (x,y[,label]), from the weights \
                     and solver drawn.",
                ),
                (
                    "trajectories",
                    Export::Trajectories,
                    "Every particle's path and the end point each step predicts, as CSV \
                     (particle,step,t,x,y,x_hat,y_hat).",
                ),
            ];
            for (label, export, hover) in exports {
                if ui.button(label).on_hover_text(hover).clicked() {
                    out.push(Command::Export(export));
                }
            }
        });
    });
    if busy {
        ui.label("reading the weights back from the GPU ...");
    }
    pictures_ui(ui, app, out);
    if ui
        .button("Copy link")
        .on_hover_text(
            "Put a link with every setting on the clipboard (the page's address; natively the \
             command line that opens them).",
        )
        .clicked()
    {
        out.push(Command::CopyLink);
    }
}

/// The canvas as a picture, and the flow as an animation.
fn pictures_ui(ui: &mut Ui, app: &PlaygroundApp, out: &mut Vec<Command>) {
    if let Some(capture) = &app.files.capture {
        ui.label(format!("taking the pictures: {}", capture.progress()));
        return;
    }
    ui.horizontal_wrapped(|ui| {
        ui.label("picture:");
        if ui
            .button("canvas (PNG)")
            .on_hover_text(
                "The canvas as it is now, with every layer shown, at the screen's resolution \
                 (Ctrl+Shift+P).",
            )
            .clicked()
        {
            out.push(Command::Capture(Picture::Png));
        }
        if ui
            .button("flow (GIF)")
            .on_hover_text(
                "The flow from t = 0 to 1 in 41 frames (training pauses meanwhile), as a \
                 looping GIF of at most 480 pixels a side (Ctrl+Shift+G).",
            )
            .clicked()
        {
            out.push(Command::Capture(Picture::Gif));
        }
        let video = crate::media::can_encode_video();
        if ui
            .add_enabled(video, egui::Button::new("flow (WebM)"))
            .on_hover_text(
                "The flow from t = 0 to 1 as a 2-second VP8 video (WebCodecs; Ctrl+Shift+M).",
            )
            .on_disabled_hover_text(
                "Video is encoded with the browser's WebCodecs, which this one (or the desktop \
                 app) does not have: the GIF works everywhere.",
            )
            .clicked()
        {
            out.push(Command::Capture(Picture::Webm));
        }
    });
}
