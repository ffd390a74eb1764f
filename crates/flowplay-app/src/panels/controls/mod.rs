//! The controls: train and reset and the status line above everything, then the settings (where
//! it runs, the data, the path and time sampling, the model and optimizer, and sampling, one
//! file each). Edits come back as one [`Command::Settings`].

mod data;
mod model;
mod path;
mod sampling;

use egui::Ui;

use crate::app::{PlaygroundApp, rate};
use crate::command::Command;
use crate::settings::{Compute, Settings};

/// The title, Train / Reset / Undo and the status line.
pub(crate) fn header_ui(ui: &mut Ui, app: &PlaygroundApp, out: &mut Vec<Command>) {
    ui.heading("flowplay");
    ui.label(
        "Flow matching on 2-D data: a velocity network v_θ(t, x) trains live, and particles \
         follow its ODE from noise to data.",
    );
    ui.label(
        egui::RichText::new(
            "\"QR §\" cites the Flow Matching Quick Reference, the short text on flow matching \
             this playground implements; the lessons go through it. ? lists the keys.",
        )
        .small()
        .weak(),
    );
    ui.separator();
    ui.horizontal(|ui| {
        let label = if app.training {
            "Pause training"
        } else {
            "Train"
        };
        if ui
            .button(label)
            .on_hover_text("Space: start or pause training")
            .clicked()
        {
            out.push(Command::ToggleTraining);
        }
        if ui
            .button("Reset")
            .on_hover_text("New weights from the seed; training starts over")
            .clicked()
        {
            out.push(Command::Reset);
        }
        if ui
            .add_enabled(app.undo.is_some(), egui::Button::new("Undo"))
            .on_hover_text(
                "Back to the model the last new model replaced, with its curves (Ctrl+Z); again \
                 to return",
            )
            .on_disabled_hover_text("Nothing to undo: no model has been replaced yet")
            .clicked()
        {
            out.push(Command::Undo);
        }
    });
    ui.label(format!(
        "step {} · {} steps/s · {} fps",
        app.engine.steps_done(),
        rate(app.frame.steps_per_sec),
        rate(app.frame.fps)
    ));
}

/// The settings, edited as one copy and pushed as one command.
pub(crate) fn settings_ui(ui: &mut Ui, app: &PlaygroundApp, out: &mut Vec<Command>) {
    let mut edited = app
        .edits
        .deferred
        .clone()
        .unwrap_or_else(|| app.settings.clone());
    compute_ui(ui, app, &mut edited);
    data::ui(ui, &mut edited);
    path::ui(ui, &mut edited);
    model::ui(ui, &mut edited);
    sampling::ui(ui, &mut edited);
    if edited != app.settings && app.edits.deferred.as_ref() != Some(&edited) {
        out.push(Command::Settings(Box::new(edited)));
    } else if app.edits.deferred.is_some() && !app.frame.pointer_down {
        // The drag that held a new model back is over: apply it now.
        out.push(Command::Settings(Box::new(edited)));
    }
}

/// Where training runs: the GPU when there is one, or the CPU reference.
fn compute_ui(ui: &mut Ui, app: &PlaygroundApp, edited: &mut Settings) {
    ui.horizontal(|ui| {
        ui.label("compute:");
        ui.radio_value(&mut edited.compute, Compute::Auto, "auto")
            .on_hover_text(
                "The GPU when it is a hardware one; the CPU reference on a software renderer or \
                 without GPU compute.",
            );
        ui.add_enabled_ui(app.device.gpu.is_some(), |ui| {
            ui.radio_value(&mut edited.compute, Compute::Gpu, "GPU")
                .on_hover_text(format!("WGSL compute shaders on {}", app.device.adapter))
                .on_disabled_hover_text("No GPU with compute shaders here.");
        });
        ui.radio_value(&mut edited.compute, Compute::Cpu, "CPU")
            .on_hover_text(
                "The CPU reference (flowplay-core): the same maths, one thread in the browser. \
                 Switching starts training over.",
            );
    });
}
