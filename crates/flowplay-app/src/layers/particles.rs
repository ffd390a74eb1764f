//! The particle layers: particles at the scrubber's t, their trails, and the predicted endpoints
//! x̂ of the current solver step. GPU particles are drawn by the particle renderer straight from
//! the sampler's buffers; CPU trajectories (the fallback) with egui's painter.

use egui::{Color32, Stroke};
use flowplay_core::sampler::Trajectories;
use flowplay_gpu::{DrawFrame, Rgba};

use super::{LayerId, LayerSet, LegendEntry, PaintCx, Scene};
use crate::canvas::{PALETTE, rgba};
use crate::engine::Flow;

pub(crate) const PARTICLE: Color32 = Color32::from_rgb(255, 140, 30);
const TRAIL: Color32 = Color32::from_rgba_premultiplied(40, 22, 5, 40);
/// Predicted endpoints: pale, so that they do not read as a class colour.
const ENDPOINT: Color32 = Color32::from_rgba_premultiplied(200, 200, 200, 200);
/// Particle dot radius in points.
const DOT_RADIUS: f32 = 2.2;
/// Trails are drawn for at most this many particles (beyond, they would hide the flow).
pub(crate) const TRAILS_FOR: usize = 20_000;
/// The same for the CPU fallback, whose trails egui tessellates on the CPU.
const CPU_TRAILS_FOR: usize = 1000;

/// Where particle `i` is at time `t`: linear between the recorded grid nodes.
pub(crate) fn position_at(traj: &Trajectories, i: usize, t: f32) -> [f32; 2] {
    let path = traj.positions_of(i);
    let (k, s) = flowplay_gpu::segment_at(&traj.times, t);
    let (a, b) = (path[k], path[(k + 1).min(path.len() - 1)]);
    [a[0] + s * (b[0] - a[0]), a[1] + s * (b[1] - a[1])]
}

/// Draws the particle layers of `on` that have something to show; returns those drawn.
pub(super) fn draw(cx: &PaintCx<'_>, scene: &Scene<'_>, on: LayerSet) -> Vec<LayerId> {
    let (dots, trails, endpoints) = (
        on.contains(LayerId::Particles),
        on.contains(LayerId::Trails),
        on.endpoints(),
    );
    let mut drawn = Vec::new();
    match &scene.flow {
        Some(Flow::Cpu(traj)) => {
            if traj.frames() < 2 || traj.positions.is_empty() {
                return drawn;
            }
            paint_cpu(cx, traj, scene, (dots, trails, endpoints), &mut drawn);
        }
        Some(Flow::Gpu(source)) => {
            if source.num_particles() == 0 {
                return drawn;
            }
            let frame = DrawFrame {
                centre: cx.view.to_world(cx.rect, cx.rect.center()),
                world_per_px: cx.view.world_per_point(cx.rect),
                viewport_px: [cx.rect.width(), cx.rect.height()],
                t: scene.t,
                trails_for: if trails { TRAILS_FOR } else { 0 },
                endpoints,
                dots,
                dot_radius_px: DOT_RADIUS,
                dot_colour: rgba(PARTICLE),
                trail_colour: Rgba([1.0, 0.55, 0.12, 0.16]),
                endpoint_colour: rgba(ENDPOINT),
                classes: scene.classes,
                palette: PALETTE.map(rgba),
            };
            let recorded_endpoints = source.pages.iter().all(|p| p.endpoints.is_some());
            crate::paint::particles(cx, source.clone(), frame);
            drawn.extend(
                [
                    (LayerId::Trails, trails),
                    (LayerId::Endpoints, endpoints && recorded_endpoints),
                    (LayerId::Particles, dots),
                ]
                .into_iter()
                .filter_map(|(id, shown)| shown.then_some(id)),
            );
        }
        None => {}
    }
    drawn
}

/// The CPU fallback's drawing with egui's painter.
fn paint_cpu(
    cx: &PaintCx<'_>,
    traj: &Trajectories,
    scene: &Scene<'_>,
    (dots, trails, endpoints): (bool, bool, bool),
    drawn: &mut Vec<LayerId>,
) {
    let frames = traj.frames();
    let n = traj.positions.len() / frames;
    let t = scene.t;
    if trails {
        // One polyline per particle: far fewer vertices than separate segments.
        for i in 0..n.min(CPU_TRAILS_FOR) {
            let path = traj.positions_of(i);
            let mut points = vec![cx.screen(path[0])];
            for (k, &p) in path.iter().enumerate().skip(1) {
                if traj.times[k - 1] >= t {
                    break;
                }
                let end = if traj.times[k] > t {
                    position_at(traj, i, t)
                } else {
                    p
                };
                points.push(cx.screen(end));
            }
            if points.len() > 1 {
                cx.painter
                    .add(egui::Shape::line(points, Stroke::new(1.0, TRAIL)));
            }
        }
        drawn.push(LayerId::Trails);
    }
    if endpoints && traj.endpoints.len() == n * (frames - 1) {
        let (k, _) = flowplay_gpu::segment_at(&traj.times, t);
        for i in 0..n {
            let e = traj.endpoints[i * (frames - 1) + k];
            cx.painter.circle_filled(cx.screen(e), DOT_RADIUS, ENDPOINT);
        }
        drawn.push(LayerId::Endpoints);
    }
    if dots {
        for i in 0..n {
            let colour = if scene.classes > 0 {
                PALETTE[(i % scene.classes as usize) % PALETTE.len()]
            } else {
                PARTICLE
            };
            cx.painter
                .circle_filled(cx.screen(position_at(traj, i, t)), DOT_RADIUS, colour);
        }
        drawn.push(LayerId::Particles);
    }
}

pub(super) fn legend(id: LayerId, scene: &Scene<'_>) -> Vec<LegendEntry> {
    let (colours, text) = match id {
        LayerId::Particles if scene.classes > 0 => (
            (0..scene.classes as usize)
                .map(|c| PALETTE[c % PALETTE.len()])
                .collect(),
            format!("particles at t = {:.2}, by class", scene.t),
        ),
        LayerId::Particles => (vec![PARTICLE], format!("particles at t = {:.2}", scene.t)),
        LayerId::Trails => (
            vec![Color32::from_rgb(120, 66, 16)],
            "trails: each particle's path so far".to_string(),
        ),
        _ => (vec![ENDPOINT], "predicted endpoints (pred_x_0)".to_string()),
    };
    vec![LegendEntry {
        layer: id,
        colours,
        text,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn particles_interpolate_between_grid_nodes() {
        let traj = Trajectories {
            times: vec![0.0, 0.5, 1.0],
            positions: vec![[0.0, 0.0], [1.0, 2.0], [3.0, 2.0]],
            ..Trajectories::default()
        };
        let close =
            |a: [f32; 2], b: [f32; 2]| (a[0] - b[0]).abs() < 1e-6 && (a[1] - b[1]).abs() < 1e-6;
        assert!(close(position_at(&traj, 0, 0.25), [0.5, 1.0]));
        assert!(close(position_at(&traj, 0, 0.75), [2.0, 2.0]));
        assert!(close(position_at(&traj, 0, 1.0), [3.0, 2.0]));
    }
}
