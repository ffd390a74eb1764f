//! The canvas: the view of the plane (pan by dragging, zoom by scrolling, double-click to fit),
//! the layers drawn back to front, and the legend of what is drawn. Input comes back as
//! commands; the view is changed where commands are applied.

use egui::{Color32, Pos2, Rect, Sense, Ui, pos2, vec2};
use flowplay_gpu::Rgba;

use crate::app::{BrushTool, CanvasState, Drawing};
use crate::command::Command;
use crate::layers::{self, LayerId, LayerSet, LegendEntry, PaintCx, Scene};

/// Class colours of a conditional model's particles (and, faded, of its data).
pub(crate) const PALETTE: [Color32; 8] = [
    Color32::from_rgb(255, 140, 30),
    Color32::from_rgb(80, 200, 255),
    Color32::from_rgb(240, 90, 200),
    Color32::from_rgb(120, 220, 90),
    Color32::from_rgb(250, 220, 60),
    Color32::from_rgb(170, 130, 255),
    Color32::from_rgb(255, 90, 90),
    Color32::from_rgb(90, 230, 200),
];
/// The plain data colour.
pub(crate) const DATA: Color32 = Color32::from_rgba_premultiplied(38, 60, 84, 90);

/// The colour data point `i` is drawn in: its class's, faded, or the plain data colour.
pub(crate) fn data_colour(label: Option<u32>) -> Color32 {
    match label {
        Some(c) => PALETTE[c as usize % PALETTE.len()].gamma_multiply(0.35),
        None => DATA,
    }
}

/// An egui colour as the GPU renderers take it (straight alpha in [0, 1]).
pub(crate) fn rgba(c: Color32) -> Rgba {
    let [r, g, b, a] = c.to_srgba_unmultiplied();
    Rgba([
        f32::from(r) / 255.0,
        f32::from(g) / 255.0,
        f32::from(b) / 255.0,
        f32::from(a) / 255.0,
    ])
}

/// An opaque egui colour from a renderer's colour.
pub(crate) fn colour32(c: Rgba) -> Color32 {
    let [r, g, b, a] = c.0.map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8);
    Color32::from_rgba_unmultiplied(r, g, b, a)
}

/// The region of the plane shown, with equal scales on both axes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct View {
    centre: [f32; 2],
    half_extent: f32,
}

impl View {
    /// A view holding `points` and the ±3σ box of the prior.
    pub(crate) fn fit(points: impl IntoIterator<Item = [f32; 2]>, prior_scale: f32) -> Self {
        let mut lo = [-3.0 * prior_scale.min(4.0); 2];
        let mut hi = [3.0 * prior_scale.min(4.0); 2];
        for p in points {
            for d in 0..2 {
                lo[d] = lo[d].min(p[d]);
                hi[d] = hi[d].max(p[d]);
            }
        }
        Self {
            centre: [(lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0],
            half_extent: 0.55 * (hi[0] - lo[0]).max(hi[1] - lo[1]),
        }
    }

    /// World units per egui point in `rect`.
    pub(crate) fn world_per_point(self, rect: Rect) -> f32 {
        self.half_extent / (0.5 * rect.width().min(rect.height()).max(1.0))
    }

    pub(crate) fn to_screen(self, rect: Rect, p: [f32; 2]) -> Pos2 {
        let scale = 1.0 / self.world_per_point(rect);
        pos2(
            rect.center().x + (p[0] - self.centre[0]) * scale,
            rect.center().y - (p[1] - self.centre[1]) * scale,
        )
    }

    pub(crate) fn to_world(self, rect: Rect, p: Pos2) -> [f32; 2] {
        let w = self.world_per_point(rect);
        [
            self.centre[0] + (p.x - rect.center().x) * w,
            self.centre[1] - (p.y - rect.center().y) * w,
        ]
    }

    /// The world rectangle `rect` shows.
    pub(crate) fn world_rect(self, rect: Rect) -> flowplay_gpu::Rect {
        let a = self.to_world(rect, rect.left_bottom());
        let b = self.to_world(rect, rect.right_top());
        flowplay_gpu::Rect::new(a, b)
    }

    /// The view panned by a drag of `delta` points and zoomed by `factor` (> 1 zooms in) about
    /// `anchor`.
    pub(crate) fn panned_zoomed(
        mut self,
        rect: Rect,
        delta: egui::Vec2,
        factor: f32,
        anchor: Option<Pos2>,
    ) -> Self {
        let w = self.world_per_point(rect);
        self.centre[0] -= delta.x * w;
        self.centre[1] += delta.y * w;
        if (factor - 1.0).abs() > 1e-6 && factor.is_finite() && factor > 0.0 {
            let fixed = anchor.map_or(self.centre, |a| self.to_world(rect, a));
            let half = (self.half_extent / factor).clamp(1e-3, 1e4);
            let k = half / self.half_extent;
            for (c, f) in self.centre.iter_mut().zip(fixed) {
                *c = f + (*c - f) * k;
            }
            self.half_extent = half;
        }
        self
    }
}

/// Draws the canvas for `scene` with the layers of `on`; pushes the view's changes, a click (for
/// the stages layer) and, with the brush on, its dabs; returns the layers drawn and where the
/// canvas is. `slot` is the renderers' slot for this canvas (one per canvas on screen); `brush`
/// the brush and the painted points, on the canvas that takes them.
pub(crate) fn show(
    ui: &mut Ui,
    state: &CanvasState,
    scene: &Scene<'_>,
    slot: usize,
    on: LayerSet,
    brush: Option<(&BrushTool, &Drawing)>,
    out: &mut Vec<Command>,
) -> (Vec<LayerId>, Rect) {
    let size = ui.available_size().max(vec2(1.0, 1.0));
    let (response, painter) = ui.allocate_painter(size, Sense::click_and_drag());
    let rect = response.rect;
    let painting = brush.is_some_and(|(tool, _)| tool.on);
    if painting {
        // The primary button paints; the others pan.
        let primary = response.dragged_by(egui::PointerButton::Primary)
            || response.clicked_by(egui::PointerButton::Primary);
        if let (true, Some(p), Some((tool, _))) = (primary, response.interact_pointer_pos(), brush)
        {
            out.push(Command::Paint {
                at: state.view.to_world(rect, p),
                radius: tool.radius * state.view.world_per_point(rect),
            });
        }
        let delta = if response.dragged_by(egui::PointerButton::Primary) {
            egui::Vec2::ZERO
        } else {
            response.drag_delta()
        };
        let scroll = if response.hovered() {
            ui.input(|i| i.zoom_delta() * (i.smooth_scroll_delta.y / 200.0).exp())
        } else {
            1.0
        };
        let moved = state
            .view
            .panned_zoomed(rect, delta, scroll, response.hover_pos());
        if moved != state.view {
            out.push(Command::View(moved));
        }
    } else if response.double_clicked() {
        out.push(Command::FitView);
    } else {
        let (scroll, zoom) = if response.hovered() {
            ui.input(|i| (i.smooth_scroll_delta.y, i.zoom_delta()))
        } else {
            (0.0, 1.0)
        };
        let factor = zoom * (scroll / 200.0).exp();
        let moved =
            state
                .view
                .panned_zoomed(rect, response.drag_delta(), factor, response.hover_pos());
        if moved != state.view {
            out.push(Command::View(moved));
        }
        if response.clicked()
            && on.contains(LayerId::Stages)
            && let Some(p) = response.interact_pointer_pos()
        {
            out.push(Command::Inspect(state.view.to_world(rect, p)));
        }
    }
    painter.rect_filled(rect, 4.0, ui.visuals().extreme_bg_color);
    let cx = PaintCx {
        painter: &painter,
        rect,
        view: state.view,
        slot,
        gpu: scene.gpu,
    };
    let drawn = layers::draw(&cx, scene, on);
    if let Some((tool, drawing)) = brush {
        draw_brush(
            &painter,
            rect,
            state.view,
            tool,
            drawing,
            response.hover_pos(),
        );
    }
    painter.text(
        rect.left_top() + vec2(8.0, 6.0),
        egui::Align2::LEFT_TOP,
        format!("t = {:.2}", scene.t),
        egui::FontId::monospace(14.0),
        ui.visuals().text_color(),
    );
    legend_ui(&painter, rect, &layers::legend(&drawn, scene), ui.visuals());
    (drawn, rect)
}

/// The painted points in their classes' colours, and the brush's outline under the pointer.
fn draw_brush(
    painter: &egui::Painter,
    rect: Rect,
    view: View,
    tool: &BrushTool,
    drawing: &Drawing,
    hover: Option<Pos2>,
) {
    for (p, &c) in drawing.xy.iter().zip(&drawing.labels) {
        let colour = PALETTE[c as usize % PALETTE.len()];
        painter.circle_filled(view.to_screen(rect, *p), 2.2, colour);
    }
    if tool.on
        && let Some(at) = hover
    {
        let colour = if tool.erase {
            Color32::WHITE
        } else {
            PALETTE[tool.class as usize % PALETTE.len()]
        };
        painter.circle_stroke(at, tool.radius, egui::Stroke::new(1.0, colour));
    }
}

/// The legend in the canvas's top-right corner: a swatch (or colour bar) and a line per mark.
fn legend_ui(
    painter: &egui::Painter,
    rect: Rect,
    entries: &[LegendEntry],
    visuals: &egui::Visuals,
) {
    if entries.is_empty() {
        return;
    }
    let font = egui::FontId::proportional(12.0);
    let row = 16.0;
    let swatch = 28.0;
    let width = entries
        .iter()
        .map(|e| {
            painter
                .layout_no_wrap(e.text.clone(), font.clone(), Color32::WHITE)
                .size()
                .x
        })
        .fold(0.0, f32::max)
        + swatch
        + 18.0;
    let height = row * entries.len() as f32 + 8.0;
    let top_right = rect.right_top() + vec2(-8.0, 8.0);
    let frame = Rect::from_min_max(
        pos2(top_right.x - width, top_right.y),
        pos2(top_right.x, top_right.y + height),
    );
    painter.rect_filled(frame, 4.0, visuals.extreme_bg_color.gamma_multiply(0.85));
    for (i, entry) in entries.iter().enumerate() {
        let y = frame.top() + 4.0 + row * i as f32;
        let sw = Rect::from_min_size(pos2(frame.left() + 6.0, y + 3.0), vec2(swatch, row - 6.0));
        match entry.colours.as_slice() {
            [] => {}
            [single] => {
                painter.rect_filled(sw, 2.0, *single);
            }
            many => {
                // A colour bar: the colours left to right.
                let step = sw.width() / many.len() as f32;
                for (k, c) in many.iter().enumerate() {
                    let x = sw.left() + step * k as f32;
                    painter.rect_filled(
                        Rect::from_min_max(pos2(x, sw.top()), pos2(x + step + 0.5, sw.bottom())),
                        0.0,
                        *c,
                    );
                }
            }
        }
        painter.text(
            pos2(sw.right() + 6.0, y + row / 2.0),
            egui::Align2::LEFT_CENTER,
            &entry.text,
            font.clone(),
            visuals.text_color(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_maps_world_and_screen_both_ways() {
        let rect = Rect::from_min_size(pos2(10.0, 20.0), vec2(400.0, 300.0));
        let view = View::fit([[2.0, 1.0], [-1.0, -2.0]], 1.0);
        for p in [[0.0, 0.0], [1.5, -0.5], [-2.0, 2.5]] {
            let back = view.to_world(rect, view.to_screen(rect, p));
            assert!((back[0] - p[0]).abs() < 1e-4 && (back[1] - p[1]).abs() < 1e-4);
        }
        let world = view.world_rect(rect);
        assert!(world.max[0] > world.min[0] && world.max[1] > world.min[1]);
        // Zooming in about a point keeps that point where it is.
        let anchor = pos2(300.0, 100.0);
        let fixed = view.to_world(rect, anchor);
        let zoomed = view.panned_zoomed(rect, egui::Vec2::ZERO, 2.0, Some(anchor));
        let still = zoomed.to_world(rect, anchor);
        assert!((still[0] - fixed[0]).abs() < 1e-4 && (still[1] - fixed[1]).abs() < 1e-4);
        assert!((zoomed.world_per_point(rect) - view.world_per_point(rect) / 2.0).abs() < 1e-6);
    }
}
