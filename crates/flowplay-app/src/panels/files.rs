//! Your data in, your results out: import points or weights, export weights, samples and
//! trajectories, and copy a link with every setting.

use egui::{RichText, Ui};

use crate::app::PlaygroundApp;
use crate::command::{Command, Export};
use crate::files::Purpose;

/// Draws the import and export buttons and pushes what the user asked for.
pub(crate) fn ui(ui: &mut Ui, app: &PlaygroundApp, out: &mut Vec<Command>) {
    ui.label(RichText::new("Your data and results").strong());
    ui.horizontal_wrapped(|ui| {
        if ui
            .button("Import CSV")
            .on_hover_text(
                "Train on your own points: a CSV with columns x,y or x,y,label (a header line \
                 and # comments are fine). The weights carry on, so the flow morphs to the new \
                 data. Or drop the file on the window.",
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
