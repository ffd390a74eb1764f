//! The Layers panel: a toggle per canvas layer with what it shows, and each layer's options.

use egui::{RichText, Ui};

use crate::app::PlaygroundApp;
use crate::command::Command;
use crate::layers::LayerId;

/// Draws the layer toggles and options, and pushes what the user asked for.
pub(crate) fn ui(ui: &mut Ui, app: &PlaygroundApp, out: &mut Vec<Command>) {
    ui.label(RichText::new("Layers").strong())
        .on_hover_text("What the canvas draws; the legend on the canvas says what each mark is.");
    let on = app.settings.view.layers;
    for id in LayerId::ALL {
        let mut checked = on.contains(id);
        if ui
            .checkbox(&mut checked, id.label())
            .on_hover_text(id.what_you_see())
            .changed()
        {
            out.push(Command::Layer(id, checked));
        }
        if !checked {
            continue;
        }
        ui.indent(id.key(), |ui| {
            // What the layer shows, in plain view (not only on hover).
            ui.label(RichText::new(id.what_you_see()).small().weak());
            options_ui(ui, app, id, out);
        });
    }
}

/// The options of layer `id`, shown while it is on.
fn options_ui(ui: &mut Ui, app: &PlaygroundApp, id: LayerId, out: &mut Vec<Command>) {
    match id {
        LayerId::Field => {
            let mut streamlines = app.layers.streamlines;
            if ui
                .checkbox(&mut streamlines, "streamlines")
                .on_hover_text(
                    "Curves everywhere tangent to v_θ(t, ·) at the scrubber's t, drawn moving \
                     along the field.",
                )
                .changed()
            {
                out.push(Command::Streamlines(streamlines));
            }
            let classes = app.settings.classes();
            if classes > 0 {
                let mut class = app.settings.view.field_class;
                egui::ComboBox::from_label("field of")
                    .selected_text(
                        class.map_or("no class (∅)".to_string(), |c| format!("class {c}")),
                    )
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut class, None, "no class (∅)");
                        for c in 0..classes {
                            ui.selectable_value(&mut class, Some(c), format!("class {c}"));
                        }
                    })
                    .response
                    .on_hover_text(
                        "A class-conditional model's field for one class, guided with the \
                         guidance scale w: v(x, ∅) + w·(v(x, c) − v(x, ∅)).",
                    );
                if class != app.settings.view.field_class {
                    let mut edited = app.settings.clone();
                    edited.view.field_class = class;
                    out.push(Command::Settings(Box::new(edited)));
                }
            }
        }
        LayerId::Stages => match &app.layers.inspected {
            None => {
                ui.label("Click a particle on the canvas to take its step apart.");
            }
            Some(inspected) => {
                let stages = inspected.stages(app.settings.sampling.solver);
                let shown = inspected.shown.min(stages + 1);
                let what = if shown > stages {
                    "the combined step".to_string()
                } else {
                    format!("stage {shown} of {stages}")
                };
                ui.horizontal(|ui| {
                    if ui
                        .button("next stage")
                        .on_hover_text(
                            "Show the next stage of the step; after the last, the combined \
                                 step, then the next step.",
                        )
                        .clicked()
                    {
                        out.push(Command::NextStage);
                    }
                    ui.label(format!("particle {}: {what}", inspected.particle));
                });
            }
        },
        LayerId::Pairs => {
            let mut ot = app.layers.pairs_ot;
            ui.horizontal(|ui| {
                ui.radio_value(&mut ot, false, "independent")
                    .on_hover_text("Each x₁ with the x₀ it was drawn with: pairs at random.");
                ui.radio_value(&mut ot, true, "minibatch OT").on_hover_text(
                    "The same batch re-paired by the exact optimal assignment (OT-CFM): \
                         the total squared distance is the least possible.",
                );
            });
            if ot != app.layers.pairs_ot {
                out.push(Command::PairsOt(ot));
            }
            ui.label(
                RichText::new(if app.settings.training.ot {
                    "Training pairs by minibatch OT (the coupling switch)."
                } else {
                    "Training pairs independently (the coupling switch)."
                })
                .small()
                .weak(),
            );
            if ot && app.settings.classes() > 0 {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    "With classes, minibatch OT pairs noise with the nearest data of any class: \
                     it is known to hurt class fidelity (TorchCFM #117; C2OT couples within \
                     classes).",
                );
            }
        }
        _ => {}
    }
}
