//! The solver × NFE lab: W2 to held-out data (and the held-out NLL) against the network
//! evaluations a sample costs, for Euler, Heun and RK4, measured in the background while the
//! section is open, with the current setting marked.

use egui::{Color32, RichText, Ui};
use egui_plot::{GridMark, Line, LineStyle, Plot, PlotPoint, PlotPoints, Points, Text, VLine};
use flowplay_core::sampler::Solver;
use flowplay_core::sweep::{self, NfePoint};

use crate::app::PlaygroundApp;
use crate::engine::lab::{LAB_FIRST_STEP, LAB_POINTS, Sweep};

/// Each solver's colour in the lab's plots.
fn colour(solver: Solver) -> Color32 {
    match solver {
        Solver::Euler => Color32::from_rgb(240, 150, 60),
        Solver::Heun => Color32::from_rgb(110, 170, 230),
        Solver::Rk4 => Color32::from_rgb(140, 210, 110),
    }
}

/// Draws the lab.
pub(crate) fn ui(ui: &mut Ui, app: &PlaygroundApp) {
    let sweeps = app.engine.lab();
    let total = sweep::grid(sweep::MAX_NFE).len();
    ui.label(
        "The same source points, integrated with each solver and step count, against the same \
         held-out points: the cost of a sample is its network evaluations (NFE = steps × \
         evaluations per step), not its steps. Measured in the background while this is open.",
    );
    let status = match (&sweeps.current, &sweeps.done) {
        (Some(current), _) => format!(
            "measuring the model of step {}: {} of {total} settings",
            current.step,
            current.points.len()
        ),
        (None, Some(done)) => format!(
            "the model of step {}{}; the next sweep starts when training goes on",
            done.step,
            done.secs
                .map_or_else(String::new, |s| format!(", measured in {s:.1} s"))
        ),
        (None, None) if app.training && app.engine.steps_done() < LAB_FIRST_STEP => format!(
            "the first sweep starts at step {LAB_FIRST_STEP} (an untrained network is the same \
             noise at every NFE), or when training pauses"
        ),
        (None, None) => "starting…".to_string(),
    };
    ui.label(RichText::new(status).small());
    ui.label(
        RichText::new("W2 against NFE is plotted beside the other plots, below the canvas.")
            .small(),
    );
    let (current, done, now, now_label) = lab_series(app);
    let has_nll = current.iter().chain(&done).any(|p| p.nll.is_some());
    if has_nll {
        lab_plot(
            ui,
            "lab_nll",
            "held-out NLL (nats)",
            (&current, &done),
            |p| p.nll,
            (now, &now_label),
            "",
        );
        ui.label(
            RichText::new(
                "A coarse solver's likelihood is not a bound: trust the NLL where its curve has \
                 levelled out.",
            )
            .small()
            .weak(),
        );
    }
    ui.horizontal_wrapped(|ui| {
        for solver in Solver::ALL {
            ui.label(RichText::new(format!("━ {}", solver.name())).color(colour(solver)));
        }
        ui.label(RichText::new("(faded: the sweep before)").small().weak());
    });
}

/// The lab's points (the sweep under way, the last one done) and the current setting's place
/// on the NFE axis.
fn lab_series(app: &PlaygroundApp) -> (Vec<NfePoint>, Vec<NfePoint>, f64, String) {
    let sweeps = app.engine.lab();
    let sampling = &app.settings.sampling;
    let nfe = sampling.steps * sampling.solver.evals_per_step();
    let now_label = format!(
        "now: {} × {} = NFE {nfe}",
        sampling.solver.name(),
        sampling.steps
    );
    let shown = |sweep: Option<&Sweep>| sweep.map(|s| s.points.clone()).unwrap_or_default();
    (
        shown(sweeps.current.as_ref()),
        shown(sweeps.done.as_ref()),
        (nfe as f64).log2(),
        now_label,
    )
}

/// W2 against NFE, for the plots panel (where it sits beside W2 against steps).
pub(crate) fn w2_plot_ui(ui: &mut Ui, app: &PlaygroundApp) {
    let (current, done, now, now_label) = lab_series(app);
    lab_plot(
        ui,
        "lab_w2",
        &format!("W2 vs NFE ({LAB_POINTS} samples)"),
        (&current, &done),
        |p| Some(p.w2),
        (now, &now_label),
        &if app.training && app.engine.steps_done() < LAB_FIRST_STEP {
            format!(
                "first sweep\nat step {LAB_FIRST_STEP}\n(now {})",
                app.engine.steps_done()
            )
        } else {
            "measuring…".to_string()
        },
    );
}

/// One plot of `value` against log₂ NFE: the sweep under way solid, the last one done faded,
/// and the current setting as a dashed line.
fn lab_plot(
    ui: &mut Ui,
    id: &str,
    y_label: &str,
    (current, done): (&[NfePoint], &[NfePoint]),
    value: impl Fn(&NfePoint) -> Option<f64>,
    (now, now_label): (f64, &str),
    hint: &str,
) {
    let top = (sweep::MAX_NFE as f64).log2();
    let empty = current.iter().chain(done).all(|p| value(p).is_none());
    let mut plot = Plot::new(id);
    if empty {
        plot = plot.include_y(-1.0).include_y(1.0).show_grid(false);
    }
    plot.height(ui.available_height().clamp(110.0, 160.0))
        .allow_scroll(false)
        .allow_drag(false)
        .allow_zoom(false)
        .x_axis_label("NFE (log scale)")
        .y_axis_label(y_label)
        .include_x(0.0)
        .include_x(top)
        .x_grid_spacer(move |_| {
            (0..=top as i64)
                .map(|k| GridMark {
                    value: k as f64,
                    step_size: 1.0,
                })
                .collect()
        })
        .x_axis_formatter(|mark, _| format!("{}", 2_f64.powf(mark.value).round()))
        .y_grid_spacer(super::plots::nice_ticks)
        .y_axis_formatter(move |mark, _| {
            // No values yet: no numbers on the axis either.
            if empty {
                String::new()
            } else {
                super::plots::tick_label(mark.value, mark.step_size)
            }
        })
        .show(ui, |plot_ui| {
            if empty {
                plot_ui.text(
                    Text::new(
                        "hint",
                        // Beside the dashed line of the current setting, not across it.
                        PlotPoint::new(
                            if now < top / 2.0 {
                                (now + top) / 2.0
                            } else {
                                now / 2.0
                            },
                            0.0,
                        ),
                        RichText::new(hint).size(12.0).color(Color32::GRAY),
                    )
                    .anchor(egui::Align2::CENTER_CENTER),
                );
            }
            for (points, alpha) in [(done, 0.3), (current, 1.0)] {
                for solver in Solver::ALL {
                    let series: Vec<[f64; 2]> = points
                        .iter()
                        .filter(|p| p.solver == solver)
                        .filter_map(|p| Some([(p.nfe as f64).log2(), value(p)?]))
                        .collect();
                    if series.is_empty() {
                        continue;
                    }
                    let c = colour(solver).gamma_multiply(alpha);
                    plot_ui
                        .line(Line::new(solver.name(), PlotPoints::from(series.clone())).color(c));
                    plot_ui.points(
                        Points::new(solver.name(), PlotPoints::from(series))
                            .radius(2.5)
                            .color(c),
                    );
                }
            }
            plot_ui.vline(
                VLine::new(now_label, now.min(top))
                    .color(Color32::LIGHT_GRAY)
                    .style(LineStyle::dashed_dense()),
            );
        });
    ui.label(RichText::new(now_label).small().color(Color32::LIGHT_GRAY));
}
