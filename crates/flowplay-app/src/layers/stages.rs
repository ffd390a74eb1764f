//! The solver-stages layer: one particle's step taken apart, stage by stage (k₁…k₄ for RK4, two
//! for Heun, one for Euler). Each stage shows where it evaluates the field and the velocity it
//! finds (as the displacement Δt·k it proposes), then the combined step, the predicted endpoint
//! x̂ (the TRELLIS sampler's `pred_x_0`) with the straight line to it, and the formula of what is
//! shown beside it. A handful of marks: drawn with the marks renderer on the GPU, the painter
//! otherwise.

use egui::{Align2, Color32, FontId, Stroke, vec2};
use flowplay_core::sampler::{Solver, StepParts};
use flowplay_gpu::overlay::Mark;

use super::{LayerId, LegendEntry, MarkSlot, PaintCx, paint_marks};
use crate::canvas::rgba;

/// The stages' colours, k₁ to k₄.
const STAGE_COLOURS: [Color32; 4] = [
    Color32::from_rgb(255, 120, 120),
    Color32::from_rgb(120, 220, 120),
    Color32::from_rgb(120, 170, 255),
    Color32::from_rgb(230, 150, 255),
];
const STEP: Color32 = Color32::WHITE;
const ENDPOINT: Color32 = Color32::from_rgb(255, 230, 120);

/// One particle's step, as far as it is shown.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StageView {
    pub(crate) parts: StepParts,
    pub(crate) solver: Solver,
    /// Stages shown (1 ..= stages), or stages + 1 for the combined step too.
    pub(crate) shown: usize,
    /// x̂ = the path's predicted data point from x and k₁.
    pub(crate) endpoint: [f32; 2],
}

impl StageView {
    /// The formula of what was shown last.
    pub(crate) fn formula(&self) -> String {
        let i = self.shown.min(self.parts.stages.len() + 1);
        let stages = self.parts.stages.len();
        if i > stages {
            return match self.solver {
                Solver::Euler => "x ← x + Δt·k₁".to_string(),
                Solver::Heun => "x ← x + Δt/2·(k₁ + k₂)".to_string(),
                Solver::Rk4 => "x ← x + Δt/6·(k₁ + 2k₂ + 2k₃ + k₄)".to_string(),
            };
        }
        match (self.solver, i) {
            (_, 1) => "k₁ = v(t₀, x)".to_string(),
            (Solver::Heun, 2) => "k₂ = v(t₁, x + Δt·k₁)".to_string(),
            (Solver::Rk4, 2) => "k₂ = v(t₀ + Δt/2, x + Δt/2·k₁)".to_string(),
            (Solver::Rk4, 3) => "k₃ = v(t₀ + Δt/2, x + Δt/2·k₂)".to_string(),
            _ => "k₄ = v(t₁, x + Δt·k₃)".to_string(),
        }
    }
}

pub(super) fn draw(cx: &PaintCx<'_>, view: &StageView) -> bool {
    let parts = &view.parts;
    let dt = parts.t1 - parts.t0;
    let shown = view.shown.min(parts.stages.len() + 1);
    let mut marks = vec![
        Mark::segment(
            parts.x,
            view.endpoint,
            1.0,
            rgba(ENDPOINT.gamma_multiply(0.6)),
        ),
        Mark::dot(view.endpoint, 4.0, rgba(ENDPOINT)),
    ];
    for (i, stage) in parts.stages.iter().take(shown).enumerate() {
        let colour = rgba(STAGE_COLOURS[i % STAGE_COLOURS.len()]);
        let tip = [
            stage.point[0] + dt * stage.velocity[0],
            stage.point[1] + dt * stage.velocity[1],
        ];
        marks.push(Mark::arrow(stage.point, tip, 2.0, 8.0, colour));
        marks.push(Mark::dot(stage.point, 3.5, colour));
    }
    if shown > parts.stages.len() {
        marks.push(Mark::arrow(parts.x, parts.next, 2.5, 9.0, rgba(STEP)));
    }
    marks.push(Mark::dot(parts.x, 4.5, rgba(STEP)));
    paint_marks(cx, MarkSlot::Stages, &marks);
    // Labels and the formula: text, on both backends.
    let font = FontId::proportional(13.0);
    for (i, stage) in parts.stages.iter().take(shown).enumerate() {
        cx.painter.text(
            cx.screen(stage.point) + vec2(6.0, -6.0),
            Align2::LEFT_BOTTOM,
            format!("k{}", subscript(i + 1)),
            font.clone(),
            STAGE_COLOURS[i % STAGE_COLOURS.len()],
        );
    }
    cx.painter.text(
        cx.screen(view.endpoint) + vec2(6.0, 6.0),
        Align2::LEFT_TOP,
        "predicted end (pred_x_0)",
        font.clone(),
        ENDPOINT,
    );
    let x = cx.screen(parts.x);
    let box_at = x + vec2(14.0, 14.0);
    let text = format!("{}\nt₀ = {:.3}, Δt = {:.3}", view.formula(), parts.t0, dt);
    let galley = cx
        .painter
        .layout_no_wrap(text, FontId::monospace(13.0), Color32::WHITE);
    let frame = egui::Rect::from_min_size(box_at, galley.size() + vec2(10.0, 8.0));
    cx.painter
        .rect_filled(frame, 3.0, Color32::from_black_alpha(190));
    cx.painter.rect_stroke(
        frame,
        3.0,
        Stroke::new(1.0, Color32::GRAY),
        egui::StrokeKind::Inside,
    );
    cx.painter
        .galley(box_at + vec2(5.0, 4.0), galley, Color32::WHITE);
    true
}

fn subscript(i: usize) -> char {
    ['₀', '₁', '₂', '₃', '₄', '₅', '₆', '₇', '₈', '₉'][i % 10]
}

pub(super) fn legend(view: &StageView) -> Vec<LegendEntry> {
    let stages = view.parts.stages.len();
    let mut out = vec![LegendEntry {
        layer: LayerId::Stages,
        colours: STAGE_COLOURS[..stages].to_vec(),
        text: format!(
            "{}'s stages k₁…k{}: where each evaluates v, and Δt·k",
            view.solver.name(),
            subscript(stages)
        ),
    }];
    out.push(LegendEntry {
        layer: LayerId::Stages,
        colours: vec![STEP],
        text: "the particle at t₀, and the combined step to t₁".to_string(),
    });
    out.push(LegendEntry {
        layer: LayerId::Stages,
        colours: vec![ENDPOINT],
        text: "predicted end: where the particle would land in a straight line".to_string(),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowplay_core::sampler::StageSample;

    fn view(solver: Solver, shown: usize) -> StageView {
        let stages = (0..solver.evals_per_step())
            .map(|_| StageSample {
                t: 0.0,
                point: [0.0; 2],
                velocity: [1.0, 0.0],
            })
            .collect();
        StageView {
            parts: StepParts {
                x: [0.0; 2],
                t0: 0.0,
                t1: 0.1,
                stages,
                next: [0.1, 0.0],
            },
            solver,
            shown,
            endpoint: [1.0, 0.0],
        }
    }

    #[test]
    fn each_stage_says_its_formula_then_the_combined_step() {
        assert_eq!(view(Solver::Rk4, 1).formula(), "k₁ = v(t₀, x)");
        assert_eq!(
            view(Solver::Rk4, 3).formula(),
            "k₃ = v(t₀ + Δt/2, x + Δt/2·k₂)"
        );
        assert!(view(Solver::Rk4, 5).formula().contains("2k₂ + 2k₃"));
        assert_eq!(view(Solver::Heun, 2).formula(), "k₂ = v(t₁, x + Δt·k₁)");
        assert_eq!(view(Solver::Euler, 9).formula(), "x ← x + Δt·k₁");
    }
}
