//! The canvas: data points, particle trails, predicted endpoints and particles at the current
//! time, with pan (drag) and zoom (scroll; double-click fits the view again).
//!
//! GPU particles are drawn by a render pipeline in a paint callback straight from the sampler's
//! buffers; CPU trajectories (the fallback) with egui's painter.

use egui::{Color32, Pos2, Rect, Sense, Stroke, Ui, pos2, vec2};
use flowplay_core::sampler::Trajectories;
use flowplay_gpu::{DrawFrame, Rgba};

use crate::engine::Flow;
use crate::paint::ParticlePaint;

const DATA: Color32 = Color32::from_rgba_premultiplied(38, 60, 84, 90);
const PARTICLE: Color32 = Color32::from_rgb(255, 140, 30);
const TRAIL: Color32 = Color32::from_rgba_premultiplied(40, 22, 5, 40);
/// Predicted endpoints: pale, so that they do not read as a class colour.
const ENDPOINT: Color32 = Color32::from_rgba_premultiplied(200, 200, 200, 200);
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

/// The colour data point `i` is drawn in: its class's, faded, or the plain data colour.
pub(crate) fn data_colour(label: Option<u32>) -> Color32 {
    match label {
        Some(c) => PALETTE[c as usize % PALETTE.len()].gamma_multiply(0.35),
        None => DATA,
    }
}

/// Particle dot radius in points.
const DOT_RADIUS: f32 = 2.2;
/// Trails are drawn for at most this many particles (beyond, they would hide the flow).
pub(crate) const TRAILS_FOR: usize = 20_000;
/// The same for the CPU fallback, whose trails egui tessellates on the CPU.
const CPU_TRAILS_FOR: usize = 1000;

fn rgba(c: Color32) -> Rgba {
    let [r, g, b, a] = c.to_srgba_unmultiplied();
    Rgba([
        f32::from(r) / 255.0,
        f32::from(g) / 255.0,
        f32::from(b) / 255.0,
        f32::from(a) / 255.0,
    ])
}

/// What the canvas shows: the time, and what besides the particles.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layers {
    pub(crate) t: f32,
    /// Classes of a conditional model (0: none): particle `i` has class `i mod classes`.
    pub(crate) classes: u32,
    pub(crate) trails: bool,
    pub(crate) endpoints: bool,
}

/// The region of the plane shown, with equal scales on both axes.
#[derive(Clone, Copy, Debug)]
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
    fn world_per_point(self, rect: Rect) -> f32 {
        self.half_extent / (0.5 * rect.width().min(rect.height()).max(1.0))
    }

    fn to_screen(self, rect: Rect, p: [f32; 2]) -> Pos2 {
        let scale = 1.0 / self.world_per_point(rect);
        pos2(
            rect.center().x + (p[0] - self.centre[0]) * scale,
            rect.center().y - (p[1] - self.centre[1]) * scale,
        )
    }

    fn to_world(self, rect: Rect, p: Pos2) -> [f32; 2] {
        let w = self.world_per_point(rect);
        [
            self.centre[0] + (p.x - rect.center().x) * w,
            self.centre[1] - (p.y - rect.center().y) * w,
        ]
    }

    /// Pans by a drag of `delta` points and zooms by `factor` (> 1 zooms in) about `anchor`.
    fn pan_zoom(&mut self, rect: Rect, delta: egui::Vec2, factor: f32, anchor: Option<Pos2>) {
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
    }
}

/// Where particle `i` is at time `t`: linear between the recorded grid nodes.
pub(crate) fn position_at(traj: &Trajectories, i: usize, t: f32) -> [f32; 2] {
    let path = traj.positions_of(i);
    let (k, s) = flowplay_gpu::segment_at(&traj.times, t);
    let (a, b) = (path[k], path[k + 1]);
    [a[0] + s * (b[0] - a[0]), a[1] + s * (b[1] - a[1])]
}

/// Draws the data, and the particles of `flow` at time `t` with their trails so far and the
/// predicted endpoints if asked; pans and zooms `view`. `fit` is the view a double-click restores;
/// `layer` is the renderer's slot for this drawing (one per canvas on screen).
pub(crate) fn show(
    ui: &mut Ui,
    view: &mut View,
    fit: View,
    data: &[([f32; 2], Color32)],
    flow: Option<Flow<'_>>,
    layer: usize,
    layers: Layers,
) {
    let t = layers.t;
    let size = ui.available_size().max(vec2(1.0, 1.0));
    let (response, painter) = ui.allocate_painter(size, Sense::click_and_drag());
    let rect = response.rect;
    if response.double_clicked() {
        *view = fit;
    } else {
        let (scroll, zoom) = if response.hovered() {
            ui.input(|i| (i.smooth_scroll_delta.y, i.zoom_delta()))
        } else {
            (0.0, 1.0)
        };
        let factor = zoom * (scroll / 200.0).exp();
        view.pan_zoom(rect, response.drag_delta(), factor, response.hover_pos());
    }
    let view = *view;
    painter.rect_filled(rect, 4.0, ui.visuals().extreme_bg_color);
    for &(p, colour) in data {
        let q = view.to_screen(rect, p);
        if rect.contains(q) {
            painter.circle_filled(q, 1.6, colour);
        }
    }
    match flow {
        Some(Flow::Cpu(traj)) => paint_cpu(&painter, rect, view, traj, t, layers),
        Some(Flow::Gpu(source)) => {
            let frame = DrawFrame {
                centre: view.to_world(rect, rect.center()),
                world_per_px: view.world_per_point(rect),
                viewport_px: [rect.width(), rect.height()],
                t,
                trails_for: if layers.trails { TRAILS_FOR } else { 0 },
                endpoints: layers.endpoints,
                dots: true,
                dot_radius_px: DOT_RADIUS,
                dot_colour: rgba(PARTICLE),
                trail_colour: Rgba([1.0, 0.55, 0.12, 0.16]),
                endpoint_colour: rgba(ENDPOINT),
                classes: layers.classes,
                palette: PALETTE.map(rgba),
            };
            painter.add(eframe::egui_wgpu::Callback::new_paint_callback(
                rect,
                ParticlePaint {
                    layer,
                    source,
                    frame,
                },
            ));
        }
        None => {}
    }
    painter.text(
        rect.left_top() + vec2(8.0, 6.0),
        egui::Align2::LEFT_TOP,
        format!("t = {t:.2}"),
        egui::FontId::monospace(14.0),
        ui.visuals().text_color(),
    );
}

/// The CPU fallback's drawing with egui's painter.
fn paint_cpu(
    painter: &egui::Painter,
    rect: Rect,
    view: View,
    traj: &Trajectories,
    t: f32,
    layers: Layers,
) {
    let frames = traj.frames();
    if frames < 2 || traj.positions.is_empty() {
        return;
    }
    let n = traj.positions.len() / frames;
    if layers.trails {
        // One polyline per particle: far fewer vertices than separate segments.
        for i in 0..n.min(CPU_TRAILS_FOR) {
            let path = traj.positions_of(i);
            let mut points = vec![view.to_screen(rect, path[0])];
            for (k, &p) in path.iter().enumerate().skip(1) {
                if traj.times[k - 1] >= t {
                    break;
                }
                let end = if traj.times[k] > t {
                    position_at(traj, i, t)
                } else {
                    p
                };
                points.push(view.to_screen(rect, end));
            }
            if points.len() > 1 {
                painter.add(egui::Shape::line(points, Stroke::new(1.0, TRAIL)));
            }
        }
    }
    if layers.endpoints && traj.endpoints.len() == n * (frames - 1) {
        let (k, _) = flowplay_gpu::segment_at(&traj.times, t);
        for i in 0..n {
            let e = traj.endpoints[i * (frames - 1) + k];
            painter.circle_filled(view.to_screen(rect, e), DOT_RADIUS, ENDPOINT);
        }
    }
    for i in 0..n {
        let colour = if layers.classes > 0 {
            PALETTE[(i % layers.classes as usize) % PALETTE.len()]
        } else {
            PARTICLE
        };
        painter.circle_filled(
            view.to_screen(rect, position_at(traj, i, t)),
            DOT_RADIUS,
            colour,
        );
    }
}
