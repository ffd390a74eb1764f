//! Reflow (QR §7.1): start the next round, the table of finished rounds, a round drawn beside the
//! current one, and the 1-step view.

use egui::{RichText, Ui};

use crate::app::PlaygroundApp;
use crate::app::apply::{REFLOW_PAIRS, REFLOW_SOLVER, REFLOW_STEPS};
use crate::command::Command;

/// Draws the reflow section and pushes what the user asked for.
pub(crate) fn ui(ui: &mut Ui, app: &PlaygroundApp, out: &mut Vec<Command>) {
    ui.label(RichText::new("Reflow").strong());
    let round = app.engine.round();
    let pending = app.engine.reflow_pending();
    let label = if pending {
        "building the coupling…".to_string()
    } else {
        format!("Reflow to round {}", round + 1)
    };
    if ui
        .add_enabled(!pending, egui::Button::new(label))
        .on_hover_text(format!(
            "Rectified flow's reflow (QR §7.1): the current model carries {REFLOW_PAIRS} noise \
             points to the data ({} × {REFLOW_STEPS} steps), and the next round trains on those \
             pairs (x₀, x₁ = ODE(x₀)) instead of independent ones. The pairs no longer cross, so \
             the flow straightens and few steps suffice.",
            REFLOW_SOLVER.name()
        ))
        .clicked()
    {
        out.push(Command::StartReflow);
    }
    ui.label(format!("training round {round}"));
    let path = &app.settings.training.path;
    let rounds = &app.rounds;
    if !rounds.finished.is_empty() {
        egui::Grid::new("rounds").striped(true).show(ui, |ui| {
            ui.label("round");
            ui.label("path");
            ui.label("steps");
            ui.label("W2");
            ui.label("straightness")
                .on_hover_text("E ∫ ‖(x₁ − x₀) − v(t, x_t)‖² dt: 0 when every path is straight.");
            ui.end_row();
            let current = [(
                round,
                path,
                app.engine.steps_done() - rounds.start,
                app.eval.last,
            )];
            let rows = rounds
                .finished
                .iter()
                .enumerate()
                .map(|(r, info)| (r, &info.path, info.steps, info.eval))
                .chain(current);
            for (r, round_path, steps, eval) in rows {
                ui.label(r.to_string());
                let text = RichText::new(round_path.label());
                if round_path == path {
                    ui.label(text);
                } else {
                    ui.label(text.color(ui.visuals().warn_fg_color))
                        .on_hover_text(
                            "Trained on another path than the current one: its W2 and straightness \
                         are not comparable, and it is not drawn beside.",
                        );
                }
                ui.label(steps.to_string());
                ui.label(eval.map_or("–".into(), |e| format!("{:.3}", e.w2)));
                ui.label(eval.map_or("–".into(), |e| format!("{:.3}", e.straightness)));
                ui.end_row();
            }
        });
        let mut compare = rounds.compare;
        egui::ComboBox::from_label("beside")
            .selected_text(compare.map_or("nothing".to_string(), |r| format!("round {r}")))
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut compare, None, "nothing");
                for (r, info) in rounds.finished.iter().enumerate() {
                    ui.add_enabled_ui(info.path == *path, |ui| {
                        ui.selectable_value(&mut compare, Some(r), format!("round {r}"))
                            .on_disabled_hover_text(format!(
                                "Round {r} was trained on {}; switch back to draw it.",
                                info.path.label()
                            ));
                    });
                }
            })
            .response
            .on_hover_text("Draw an earlier round's flow beside the current one, in step.");
        if compare != rounds.compare {
            out.push(Command::Compare(compare));
        }
    }
    let mut one_step = rounds.one_step;
    if ui
        .checkbox(&mut one_step, "1-step view")
        .on_hover_text(
            "Draw the particles after a single Euler step x₁ = x₀ + v_θ(0, x₀). Curved flows \
             land off the data; after reflow the paths are straight and one step comes close.",
        )
        .changed()
    {
        out.push(Command::OneStep(one_step));
    }
}
