//! Two runs side by side: start a second run that differs in one thing, change that thing, and
//! read how the two differ.

use egui::{RichText, Ui};
use flowplay_core::sampler::Solver;

use crate::app::PlaygroundApp;
use crate::command::Command;
use crate::settings::{Comparison, PathKind};

/// Draws the section and pushes what the user asked for.
pub(crate) fn ui(ui: &mut Ui, app: &PlaygroundApp, out: &mut Vec<Command>) {
    let Some(second) = app.second.as_ref() else {
        ui.label(
            "Train a second configuration beside this one, from the same seed and data: two \
             canvases in one view at one t, the plots overlaid, and the difference in W2 and \
             in straightness stated. It follows every other setting you change.",
        );
        for kind in Comparison::ALL {
            if ui
                .button(format!("compare with {}", kind.label()))
                .on_hover_text(format!(
                    "A second run with {} instead of {}.",
                    kind.describe(&kind.preset(&app.settings)),
                    kind.describe(&app.settings)
                ))
                .clicked()
            {
                out.push(Command::Second(Some(kind)));
            }
        }
        return;
    };
    let kind = second.kind;
    let run = &second.run;
    ui.label(format!(
        "A: {}\nB: {}",
        kind.describe(&app.settings),
        kind.describe(&run.settings)
    ));
    let mut edited = run.settings.clone();
    ui.label(RichText::new("B's own setting").strong());
    match kind {
        Comparison::Path => {
            for path in PathKind::ALL {
                ui.radio_value(&mut edited.training.path.kind, path, path.label());
            }
        }
        Comparison::Coupling => {
            ui.checkbox(&mut edited.training.ot, "minibatch-OT coupling");
        }
        Comparison::TimeSampling => {
            ui.checkbox(&mut edited.training.logit_normal, "logit-normal t");
            if edited.training.logit_normal {
                ui.add(egui::Slider::new(&mut edited.training.ln_mean, -2.0..=2.0).text("m"));
                ui.add(egui::Slider::new(&mut edited.training.ln_std, 0.2..=2.5).text("s"));
            }
        }
        Comparison::Solver => {
            egui::ComboBox::from_label("B's solver")
                .selected_text(edited.sampling.solver.name())
                .show_ui(ui, |ui| {
                    for solver in Solver::ALL {
                        ui.selectable_value(&mut edited.sampling.solver, solver, solver.name());
                    }
                });
            ui.add(egui::Slider::new(&mut edited.sampling.steps, 1..=100).text("B's steps"));
        }
    }
    if edited != run.settings {
        out.push(Command::EditSecond(Box::new(edited)));
    }
    ui.label(format!(
        "B: step {} · {} steps/s",
        run.engine.steps_done(),
        crate::app::rate(run.frame.steps_per_sec)
    ));
    if let Some(difference) = app.second_difference() {
        ui.label(RichText::new(difference).strong());
    }
    if ui.button("End the second run").clicked() {
        out.push(Command::Second(None));
    }
}
