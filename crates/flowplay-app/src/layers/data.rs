//! The data layer: points of p₁, faded, in class colours for a conditional model.

use flowplay_gpu::overlay::Mark;

use super::{LayerId, LegendEntry, MarkSlot, PaintCx, Scene, paint_marks};
use crate::canvas::{self, DATA, PALETTE};

/// Data dot radius in points.
const RADIUS: f32 = 1.6;

pub(super) fn draw(cx: &PaintCx<'_>, scene: &Scene<'_>) -> bool {
    if scene.data.is_empty() {
        return false;
    }
    let marks: Vec<Mark> = scene
        .data
        .iter()
        .map(|&(p, colour)| Mark::dot(p, RADIUS, canvas::rgba(colour)))
        .collect();
    paint_marks(cx, MarkSlot::Data, &marks);
    true
}

pub(super) fn legend(scene: &Scene<'_>) -> Vec<LegendEntry> {
    let colours = if scene.classes > 0 {
        (0..scene.classes as usize)
            .map(|c| PALETTE[c % PALETTE.len()].gamma_multiply(0.5))
            .collect()
    } else {
        vec![DATA.gamma_multiply(2.0)]
    };
    let text = if scene.classes > 0 {
        format!("data p₁, {} classes", scene.classes)
    } else {
        "data p₁".to_string()
    };
    vec![LegendEntry {
        layer: LayerId::Data,
        colours,
        text,
    }]
}
