//! The canvas: data points, particle trails and particles at the current time.

use egui::{Color32, Pos2, Rect, Sense, Stroke, Ui, pos2, vec2};
use flowplay_core::sampler::Trajectories;

const DATA: Color32 = Color32::from_rgba_premultiplied(38, 60, 84, 90);
const PARTICLE: Color32 = Color32::from_rgb(255, 140, 30);
const TRAIL: Color32 = Color32::from_rgba_premultiplied(40, 22, 5, 40);

/// The region of the plane shown, with equal scales on both axes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct View {
    centre: [f32; 2],
    half_extent: f32,
}

impl View {
    /// A view holding `points` and the ±3σ box of the prior.
    pub(crate) fn fit(points: &[[f32; 2]], prior_scale: f32) -> Self {
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

    fn to_screen(self, rect: Rect, p: [f32; 2]) -> Pos2 {
        let scale = 0.5 * rect.width().min(rect.height()) / self.half_extent;
        pos2(
            rect.center().x + (p[0] - self.centre[0]) * scale,
            rect.center().y - (p[1] - self.centre[1]) * scale,
        )
    }
}

/// Where particle `i` is at time `t`: linear between the recorded grid nodes.
pub(crate) fn position_at(traj: &Trajectories, i: usize, t: f32) -> [f32; 2] {
    let path = traj.positions_of(i);
    let times = &traj.times;
    let k = times
        .windows(2)
        .position(|w| t <= w[1])
        .unwrap_or(times.len().saturating_sub(2));
    let (t0, t1) = (times[k], times[k + 1]);
    let s = ((t - t0) / (t1 - t0).max(f32::EPSILON)).clamp(0.0, 1.0);
    let (a, b) = (path[k], path[k + 1]);
    [a[0] + s * (b[0] - a[0]), a[1] + s * (b[1] - a[1])]
}

/// Draws the data, and the particles of `traj` at time `t` (with their trails so far).
pub(crate) fn show(
    ui: &mut Ui,
    view: View,
    data: &[[f32; 2]],
    traj: Option<&Trajectories>,
    t: f32,
    trails: bool,
) {
    let size = ui.available_size().max(vec2(200.0, 200.0));
    let (response, painter) = ui.allocate_painter(size, Sense::hover());
    let rect = response.rect;
    painter.rect_filled(rect, 4.0, ui.visuals().extreme_bg_color);
    for &p in data {
        painter.circle_filled(view.to_screen(rect, p), 1.6, DATA);
    }
    let Some(traj) = traj else {
        return;
    };
    let frames = traj.frames();
    if frames < 2 || traj.positions.is_empty() {
        return;
    }
    let n = traj.positions.len() / frames;
    if trails {
        for i in 0..n {
            let path = traj.positions_of(i);
            let mut last = view.to_screen(rect, path[0]);
            for (k, &p) in path.iter().enumerate().skip(1) {
                if traj.times[k - 1] >= t {
                    break;
                }
                let end = if traj.times[k] > t {
                    position_at(traj, i, t)
                } else {
                    p
                };
                let next = view.to_screen(rect, end);
                painter.line_segment([last, next], Stroke::new(1.0, TRAIL));
                last = next;
            }
        }
    }
    for i in 0..n {
        painter.circle_filled(view.to_screen(rect, position_at(traj, i, t)), 2.2, PARTICLE);
    }
    painter.text(
        rect.left_top() + vec2(8.0, 6.0),
        egui::Align2::LEFT_TOP,
        format!("t = {t:.2}"),
        egui::FontId::monospace(14.0),
        ui.visuals().text_color(),
    );
}
