//! The coupling layer: the x₀ → x₁ pairs of one training batch, as the trainer draws them
//! (independent) and as minibatch OT re-pairs the same points, switchable, with the mean pair
//! distance of each. Crossing lines are what makes a flow curve; OT's do not cross.

use egui::Color32;
use flowplay_gpu::overlay::Mark;

use super::{LayerId, LegendEntry, MarkSlot, PaintCx, paint_marks};
use crate::canvas::rgba;

const INDEPENDENT: Color32 = Color32::from_rgba_unmultiplied_const(120, 130, 200, 150);
const OT: Color32 = Color32::from_rgba_unmultiplied_const(110, 210, 150, 160);
const SOURCE: Color32 = Color32::from_rgb(200, 200, 200);

/// One batch's pairs, both ways.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PairsView {
    /// The batch's source points, at the prior's scale (where particles start).
    pub(crate) x0: Vec<[f32; 2]>,
    /// The data points each is drawn with.
    pub(crate) independent: Vec<[f32; 2]>,
    /// The data points minibatch OT pairs each with.
    pub(crate) ot: Vec<[f32; 2]>,
    /// Show the OT pairs (else the independent ones).
    pub(crate) show_ot: bool,
    /// The training step the batch is drawn for.
    pub(crate) step: u64,
}

/// The mean of |x₁ − x₀| over the pairs.
pub(crate) fn mean_distance(x0: &[[f32; 2]], x1: &[[f32; 2]]) -> f32 {
    let sum: f32 = x0
        .iter()
        .zip(x1)
        .map(|(a, b)| ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt())
        .sum();
    sum / x0.len().max(1) as f32
}

impl PairsView {
    fn shown(&self) -> (&[[f32; 2]], Color32) {
        if self.show_ot {
            (&self.ot, OT)
        } else {
            (&self.independent, INDEPENDENT)
        }
    }
}

pub(super) fn draw(cx: &PaintCx<'_>, pairs: &PairsView) -> bool {
    if pairs.x0.is_empty() {
        return false;
    }
    let (x1, colour) = pairs.shown();
    let mut marks: Vec<Mark> = pairs
        .x0
        .iter()
        .zip(x1)
        .map(|(&a, &b)| Mark::segment(a, b, 1.0, rgba(colour)))
        .collect();
    marks.extend(pairs.x0.iter().map(|&p| Mark::dot(p, 1.8, rgba(SOURCE))));
    marks.extend(x1.iter().map(|&p| Mark::dot(p, 1.8, rgba(colour))));
    paint_marks(cx, MarkSlot::Pairs, &marks);
    true
}

pub(super) fn legend(pairs: &PairsView) -> Vec<LegendEntry> {
    let independent = mean_distance(&pairs.x0, &pairs.independent);
    let ot = mean_distance(&pairs.x0, &pairs.ot);
    let mark = |on: bool| if on { "drawn: " } else { "" };
    vec![
        LegendEntry {
            layer: LayerId::Pairs,
            colours: vec![INDEPENDENT],
            text: format!(
                "{}independent pairs of step {}: mean |x₁ − x₀| = {independent:.3}",
                mark(!pairs.show_ot),
                pairs.step
            ),
        },
        LegendEntry {
            layer: LayerId::Pairs,
            colours: vec![OT],
            text: format!(
                "{}minibatch-OT pairs of the same points: mean {ot:.3}",
                mark(pairs.show_ot)
            ),
        },
        LegendEntry {
            layer: LayerId::Pairs,
            colours: vec![SOURCE],
            text: "x₀: the batch's noise points, each joined to its x₁".to_string(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_distance_is_the_mean_of_the_pairs_lengths() {
        let x0 = [[0.0, 0.0], [1.0, 1.0]];
        let x1 = [[3.0, 4.0], [1.0, 2.0]];
        assert!((mean_distance(&x0, &x1) - 3.0).abs() < 1e-6);
        assert!(mean_distance(&[], &[]).abs() < 1e-9);
    }
}
