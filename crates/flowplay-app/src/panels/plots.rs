//! The plots: the training loss, W2 to held-out data, the straightness of the flow and the
//! negative log-likelihood of held-out data, each broken and marked where training changed course.

use egui::{Color32, Ui};
use egui_plot::{Line, LineStyle, Plot, PlotPoint, PlotPoints, PlotUi, Text, VLine};

use crate::app::PlaygroundApp;
use crate::app::PlotMark;
use crate::app::work::LOSS_WINDOW;
use crate::engine::EVAL_POINTS;

/// What an evaluation's plot says before its first point.
const EVAL_HINT: &str = "measured every few seconds while training";
/// The plots' colours.
const LOSS_COLOUR: Color32 = Color32::from_rgb(230, 110, 90);
const W2_COLOUR: Color32 = Color32::from_rgb(110, 170, 230);
const STRAIGHT_COLOUR: Color32 = Color32::from_rgb(150, 210, 120);
const NLL_COLOUR: Color32 = Color32::from_rgb(220, 180, 90);

/// At most about 2000 points of a curve, evenly picked, for plotting every frame.
fn thin(points: &[[f64; 2]]) -> Vec<[f64; 2]> {
    let every = points.len().div_ceil(2000).max(1);
    points.iter().step_by(every).copied().collect()
}

/// Draws the four plots side by side.
pub(crate) fn ui(ui: &mut Ui, app: &PlaygroundApp) {
    let curves = &app.curves;
    let nll_hint = if app.settings.data.source == flowplay_core::data::Dataset::Normal {
        EVAL_HINT
    } else {
        "not defined: the source is not N(0, I)"
    };
    ui.columns(4, |cols| {
        plot(
            &mut cols[0],
            "loss_plot",
            "loss",
            (&curves.loss, "training loss", LOSS_COLOUR, "press Train"),
            &curves.marks,
        )
        .on_hover_text(format!(
            "The flow-matching loss E‖v_θ(t, x_t) − u_t‖² (QR §4.1), as means over \
             {LOSS_WINDOW} steps. Dashed lines mark a path switch or a reflow round."
        ));
        plot(
            &mut cols[1],
            "w2_plot",
            "W2",
            (&curves.w2, "W2 to held-out data", W2_COLOUR, EVAL_HINT),
            &curves.marks,
        )
        .on_hover_text(format!(
            "2-Wasserstein distance between {EVAL_POINTS} samples of the EMA model and \
             {EVAL_POINTS} held-out data points (exact matching): 0 is a perfect fit."
        ));
        plot(
            &mut cols[2],
            "straightness_plot",
            "straightness",
            (
                &curves.straightness,
                "straightness",
                STRAIGHT_COLOUR,
                EVAL_HINT,
            ),
            &curves.marks,
        )
        .on_hover_text(
            "E ∫ ‖(x₁ − x₀) − v(t, x_t)‖² dt along the sampled paths (QR §7.1): falls with each \
             reflow round.",
        );
        plot(
            &mut cols[3],
            "nll_plot",
            "NLL (nats)",
            (&curves.nll, "NLL of held-out data", NLL_COLOUR, nll_hint),
            &curves.marks,
        )
        .on_hover_text(format!(
            "−(1/N)·Σ log p₁(x) over {EVAL_POINTS} held-out points: the model's exact \
             likelihood by the reverse ODE with the chosen solver (lower is better)."
        ));
    });
}

/// One plot of `series` (points, name, colour, hint before the first point).
fn plot(
    ui: &mut Ui,
    id: &str,
    y_label: &str,
    series: (&[[f64; 2]], &str, Color32, &str),
    marks: &[PlotMark],
) -> egui::Response {
    Plot::new(id)
        .x_axis_label("step")
        .y_axis_label(y_label)
        .allow_scroll(false)
        .show(ui, |plot_ui| draw_series(plot_ui, series, marks))
        .response
}

/// One curve, broken at each mark (no line joins two paths or rounds), with the marks as
/// dashed lines named after what began there; `hint` while there is nothing to plot.
fn draw_series(
    plot_ui: &mut PlotUi<'_>,
    (points, name, colour, hint): (&[[f64; 2]], &str, Color32, &str),
    marks: &[PlotMark],
) {
    let Some(top) = points.iter().map(|p| p[1]).reduce(f64::max) else {
        plot_ui.text(Text::new(name, PlotPoint::new(0.0, 0.0), hint).color(Color32::GRAY));
        return;
    };
    let points = thin(points);
    let mut rest = &points[..];
    for bound in marks.iter().map(|m| m.step).chain([f64::INFINITY]) {
        let split = rest.partition_point(|p| p[0] <= bound);
        let (segment, after) = rest.split_at(split);
        if !segment.is_empty() {
            plot_ui.line(Line::new(name, PlotPoints::from(segment.to_vec())).color(colour));
        }
        rest = after;
    }
    for mark in marks {
        plot_ui.vline(
            VLine::new(&mark.label, mark.step)
                .color(Color32::GRAY)
                .style(LineStyle::dashed_dense()),
        );
        plot_ui.text(
            Text::new(
                &mark.label,
                PlotPoint::new(mark.step, top),
                mark.label.as_str(),
            )
            .anchor(egui::Align2::LEFT_TOP)
            .color(Color32::GRAY),
        );
    }
}
