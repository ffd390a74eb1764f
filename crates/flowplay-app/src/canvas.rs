//! The canvas: the view of the plane (pan by dragging, zoom by scrolling, double-click to fit),
//! the layers drawn back to front, and the legend of what is drawn. Input comes back as
//! commands; the view is changed where commands are applied.

use egui::{Color32, Pos2, Rect, Sense, Ui, pos2, vec2};
use flowplay_gpu::Rgba;

use crate::app::{BrushTool, CanvasState, Drawing};
use crate::command::Command;
use crate::layers::{self, LayerId, LayerSet, LegendEntry, PaintCx, Scene};
use crate::view::View;

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

/// How much one point of scrolling zooms: a mouse wheel's notch (about 300 points as browsers
/// and winit report it) zooms by about 1.2×, a trackpad smoothly.
const ZOOM_PER_SCROLL_POINT: f32 = 0.0006;

/// What the pointer or fingers asked of the view this frame.
struct Gesture {
    /// Points to pan by.
    pan: egui::Vec2,
    /// The zoom factor (> 1 zooms in).
    zoom: f32,
    /// Where the zoom is centred.
    anchor: Option<Pos2>,
    /// Two or more fingers are down: a pinch or a two-finger pan, never a paint or a click.
    touch: Option<egui::MultiTouchInfo>,
}

/// The pan and zoom of this frame: a drag pans, the wheel (or a trackpad, or Ctrl+wheel) zooms
/// about the pointer; on a touch screen one finger pans, and two pan and pinch about their
/// centre.
fn gesture(ui: &Ui, response: &egui::Response) -> Gesture {
    let touch = ui.input(egui::InputState::multi_touch);
    if let Some(t) = touch {
        return Gesture {
            pan: t.translation_delta,
            zoom: t.zoom_delta,
            anchor: Some(t.center_pos),
            touch,
        };
    }
    let (scroll, zoom) = if response.hovered() {
        ui.input(|i| (i.smooth_scroll_delta.y, i.zoom_delta()))
    } else {
        (0.0, 1.0)
    };
    Gesture {
        pan: response.drag_delta(),
        zoom: zoom * (scroll * ZOOM_PER_SCROLL_POINT).exp(),
        anchor: response.hover_pos(),
        touch: None,
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
    let gesture = gesture(ui, &response);
    if painting {
        // The primary button paints; the others (and two fingers) pan.
        let primary = response.dragged_by(egui::PointerButton::Primary)
            || response.clicked_by(egui::PointerButton::Primary);
        if let (true, None, Some(p), Some((tool, _))) = (
            primary,
            gesture.touch,
            response.interact_pointer_pos(),
            brush,
        ) {
            out.push(Command::Paint {
                at: state.view.to_world(rect, p),
                radius: tool.radius * state.view.world_per_point(rect),
            });
        }
        let delta = if gesture.touch.is_none() && response.dragged_by(egui::PointerButton::Primary)
        {
            egui::Vec2::ZERO
        } else {
            gesture.pan
        };
        let moved = state
            .view
            .panned_zoomed(rect, delta, gesture.zoom, gesture.anchor);
        if moved != state.view {
            out.push(Command::View(moved));
        }
    } else if response.double_clicked() {
        out.push(Command::FitView);
    } else {
        let moved = state
            .view
            .panned_zoomed(rect, gesture.pan, gesture.zoom, gesture.anchor);
        if moved != state.view {
            out.push(Command::View(moved));
        }
        if response.clicked()
            && gesture.touch.is_none()
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
