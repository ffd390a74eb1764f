//! The plots: the training loss, W2 to held-out data, how far the flow's paths are from straight
//! and the negative log-likelihood of held-out data, each broken and marked where training
//! changed course (after a mark the loss is of another problem, on another scale).

use egui::{Color32, RichText, Ui};
use egui_plot::{
    GridInput, GridMark, Line, LineStyle, Plot, PlotPoint, PlotPoints, PlotUi, Text, VLine,
};

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
/// The second run's curves, and its canvas's heading.
pub(crate) const SECOND_COLOUR: Color32 = Color32::from_rgb(230, 120, 220);

/// At most about 2000 points of a curve, evenly picked, for plotting every frame.
fn thin(points: &[[f64; 2]]) -> Vec<[f64; 2]> {
    let every = points.len().div_ceil(2000).max(1);
    points.iter().step_by(every).copied().collect()
}

/// Draws the four plots side by side.
pub(crate) fn ui(ui: &mut Ui, app: &PlaygroundApp) {
    let curves = &app.curves;
    // A second run's curves are drawn over the first's, in their own colour.
    let second = app.second.as_ref().map(|s| &s.run.curves);
    if let Some(difference) = app.second_difference() {
        ui.label(
            RichText::new(difference.replace('\n', ";  "))
                .small()
                .color(SECOND_COLOUR),
        );
    }
    let nll_hint = if app.settings.data.source == flowplay_core::data::Dataset::Normal {
        EVAL_HINT
    } else {
        "not defined: the source is not N(0, I)"
    };
    let loss_hint = if app.training {
        format!("training: the first point is the mean of steps 1 to {LOSS_WINDOW}")
    } else {
        "press Train (or Space)".to_string()
    };
    let lab = app.chrome.is_open(crate::app::Section::Lab);
    ui.columns(if lab { 5 } else { 4 }, |cols| {
        plot(
            &mut cols[0],
            "loss_plot",
            "loss",
            (&curves.loss, "training loss", LOSS_COLOUR, &loss_hint),
            second.map(|c| &c.loss[..]),
            &curves.marks,
        )
        .on_hover_text(format!(
            "The flow-matching loss E‖v_θ(t, x_t) − u_t‖² (QR §4.3), as means over \
             {LOSS_WINDOW} steps. It does not fall to 0: pairs cross, and the best v_θ is their \
             average. A dashed line marks a change of the training problem (the path, the time \
             sampling, the coupling, the data, a reflow round): the loss after it is of another \
             problem and on another scale, so compare W2 across it instead."
        ));
        plot(
            &mut cols[1],
            "w2_plot",
            "W2",
            (&curves.w2, "W2 to held-out data", W2_COLOUR, EVAL_HINT),
            second.map(|c| &c.w2[..]),
            &curves.marks,
        )
        .on_hover_text(format!(
            "2-Wasserstein distance between {EVAL_POINTS} samples of the EMA model and \
             {EVAL_POINTS} held-out data points (exact matching): 0 is a perfect fit."
        ));
        plot(
            &mut cols[2],
            "straightness_plot",
            "deviation from straight",
            (
                &curves.straightness,
                "deviation from straight",
                STRAIGHT_COLOUR,
                EVAL_HINT,
            ),
            second.map(|c| &c.straightness[..]),
            &curves.marks,
        )
        .on_hover_text(
            "How far the sampled paths are from straight lines: E ∫ ‖(x₁ − x₀) − v(t, x_t)‖² dt \
             (Liu et al.'s straightness, QR §7.1). 0 is straight. It rises while the network \
             learns the data (a flow that does nothing is straight) and falls with reflow or \
             minibatch OT, which is when few steps suffice.",
        );
        plot(
            &mut cols[3],
            "nll_plot",
            "NLL (nats)",
            (&curves.nll, "NLL of held-out data", NLL_COLOUR, nll_hint),
            second.map(|c| &c.nll[..]),
            &curves.marks,
        )
        .on_hover_text(format!(
            "−(1/N)·Σ log p₁(x) over {EVAL_POINTS} held-out points: the model's exact \
             likelihood by the reverse ODE with the chosen solver (lower is better)."
        ));
        if lab {
            super::lab::w2_plot_ui(&mut cols[4], app);
        }
    });
}

/// One plot of `series` (points, name, colour, hint before the first point).
fn plot(
    ui: &mut Ui,
    id: &str,
    y_label: &str,
    series: (&[[f64; 2]], &str, Color32, &str),
    second: Option<&[[f64; 2]]>,
    marks: &[PlotMark],
) -> egui::Response {
    let empty = series.0.is_empty();
    let mut plot = Plot::new(id)
        .x_axis_label("step")
        .y_axis_label(y_label)
        .allow_scroll(false)
        .y_grid_spacer(nice_ticks)
        .y_axis_formatter(|mark, _| tick_label(mark.value, mark.step_size));
    if empty {
        // The hint in the middle of an empty plot, at a readable size.
        plot = plot
            .show_axes(false)
            .show_grid(false)
            .include_x(-1.0)
            .include_x(1.0)
            .include_y(-1.0)
            .include_y(1.0);
    }
    if second.is_some() {
        plot = plot.legend(egui_plot::Legend::default());
    }
    plot.show(ui, |plot_ui| {
        draw_series(plot_ui, series, marks);
        if let Some(points) = second.filter(|p| !p.is_empty()) {
            plot_ui.line(
                Line::new("B (second run)", PlotPoints::from(thin(points))).color(SECOND_COLOUR),
            );
        }
    })
    .response
}

/// Y ticks at a round step (1, 2 or 5 × 10ᵏ) that puts at least three in view, however short
/// the plot: egui_plot's own spacer often leaves one.
#[expect(
    clippy::needless_pass_by_value,
    reason = "egui_plot's spacer signature takes the input by value"
)]
pub(crate) fn nice_ticks(input: GridInput) -> Vec<GridMark> {
    let (lo, hi) = input.bounds;
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return Vec::new();
    }
    // The coarsest round step with three ticks in view.
    let magnitude = 10_f64.powf(span.log10().floor());
    let count = |step: f64| (hi / step).floor() - (lo / step).ceil() + 1.0;
    let step = [1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&step| count(step) >= 3.0)
        .unwrap_or(0.01 * magnitude);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last)
        .map(|k| GridMark {
            value: k as f64 * step,
            step_size: step,
        })
        .collect()
}

/// One curve, broken at each mark (no line joins two paths or rounds), with the marks as
/// dashed lines named after what began there; `hint` while there is nothing to plot.
fn draw_series(
    plot_ui: &mut PlotUi<'_>,
    (points, name, colour, hint): (&[[f64; 2]], &str, Color32, &str),
    marks: &[PlotMark],
) {
    let Some(top) = points.iter().map(|p| p[1]).reduce(f64::max) else {
        plot_ui.text(
            Text::new(
                name,
                PlotPoint::new(0.0, 0.0),
                RichText::new(hint).size(14.0).color(Color32::GRAY),
            )
            .anchor(egui::Align2::CENTER_CENTER),
        );
        return;
    };
    let bottom = points.iter().map(|p| p[1]).reduce(f64::min).unwrap_or(top);
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
    // Labels on three levels from the top, so that marks close together do not overlap; a
    // mark in the right third is labelled to its left, so that its label stays in the plot.
    let last = points.last().map_or(0.0, |p| p[0]);
    let first = points.first().map_or(0.0, |p| p[0]);
    for (i, mark) in marks.iter().enumerate() {
        plot_ui.vline(
            VLine::new(&mark.label, mark.step)
                .color(Color32::GRAY)
                .style(LineStyle::dashed_dense()),
        );
        let level = (i % 3) as f64 * 0.12 * (top - bottom);
        let right = mark.step > first + 0.66 * (last - first);
        plot_ui.text(
            Text::new(
                &mark.label,
                PlotPoint::new(mark.step, top - level),
                RichText::new(format!(" {} ", mark.label)).size(11.0),
            )
            .anchor(if right {
                egui::Align2::RIGHT_TOP
            } else {
                egui::Align2::LEFT_TOP
            })
            .color(Color32::LIGHT_GRAY),
        );
    }
}

/// A tick's label with as many digits as its step needs (0.05 steps: two decimals), so that no
/// two ticks read alike; small values on a fine step in powers of ten ("5e-4"), which stay
/// narrow enough for the axis ("0.0005" does not).
pub(crate) fn tick_label(value: f64, step: f64) -> String {
    if !(step > 0.0 && step.is_finite()) {
        return format!("{value:.2}");
    }
    let step_exp = step.log10().floor();
    if step < 0.01 && value.abs() < 100.0 * step {
        // The value rounded to its step, so that float noise adds no digits.
        let value = (value / step).round() * step;
        if value == 0.0 {
            return "0".to_string();
        }
        let digits = (value.abs().log10().floor() - step_exp).max(0.0) as usize;
        return format!("{value:.digits$e}");
    }
    let decimals = (-step_exp).max(0.0) as usize;
    format!("{value:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_tell_ticks_apart() {
        assert_eq!(tick_label(1.35, 0.05), "1.35");
        assert_eq!(tick_label(1.4, 0.05), "1.40");
        assert_eq!(tick_label(0.00004, 0.00002), "4e-5");
        assert_eq!(tick_label(0.0, 0.0005), "0");
        assert_eq!(tick_label(0.0005000000001, 0.0005), "5e-4");
        assert_eq!(tick_label(0.0015, 0.0005), "1.5e-3");
        assert_eq!(tick_label(0.001, 0.0005), "1.0e-3");
        assert_eq!(tick_label(1.4988, 0.0002), "1.4988");
        assert_eq!(tick_label(120.0, 20.0), "120");
        assert_eq!(tick_label(2.5, 0.5), "2.5");
    }

    #[test]
    fn short_ranges_get_at_least_three_round_ticks() {
        for (lo, hi) in [
            (2.41, 2.47),
            (0.0, 1.0),
            (-3.0, 120.0),
            (1e-4, 3e-4),
            (0.054, 0.9),
        ] {
            let marks = nice_ticks(GridInput {
                bounds: (lo, hi),
                base_step_size: 0.0,
            });
            assert!(marks.len() >= 3, "{lo}..{hi}: {}", marks.len());
            assert!(marks.len() <= 11, "{lo}..{hi}: {}", marks.len());
            for m in &marks {
                assert!(m.value >= lo - 1e-12 && m.value <= hi + 1e-12);
                let mantissa = m.step_size / 10_f64.powf(m.step_size.log10().floor());
                assert!(
                    [1.0, 2.0, 5.0, 10.0]
                        .iter()
                        .any(|r| (mantissa - r).abs() < 1e-9),
                    "{m:?}"
                );
            }
        }
        assert!(
            nice_ticks(GridInput {
                bounds: (1.0, 1.0),
                base_step_size: 0.0
            })
            .is_empty()
        );
    }
}
