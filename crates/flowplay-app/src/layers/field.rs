//! The vector-field layer: v_θ(t, ·) at the scrubber's t as arrows on a grid over the view
//! (length and colour by speed relative to the fastest, with the speed scale in the legend) and,
//! as an option, streamlines with a dot moving along each. On the GPU the arrows come straight
//! from `field_arrows.wgsl`; the CPU fallback computes the same marks here.

use egui::{Color32, Stroke};
#[cfg(test)]
use flowplay_gpu::Rgba;
use flowplay_gpu::overlay::{ColourMap, Mark};
use flowplay_gpu::{ArrowStyle, FieldGrid};

use super::{LayerId, LegendEntry, MarkSlot, PaintCx, Scene, mark_slot, paint_marks};
use crate::paint::MarkData;

/// Cells across the longer side of the view.
pub(crate) const FIELD_CELLS: u32 = 28;

/// How the arrows look, on both backends.
pub(crate) const ARROWS: ArrowStyle = ArrowStyle {
    width_px: 1.4,
    head_px: 5.0,
    fill: 0.9,
    floor: 0.02,
    colours: ColourMap::Speed,
};

/// The field at one time over the view's grid.
#[derive(Clone, Debug)]
pub(crate) struct FieldView {
    pub(crate) grid: FieldGrid,
    /// One velocity per cell, `j·nx + i` (read back from the GPU, or computed on the CPU).
    pub(crate) velocities: Vec<[f32; 2]>,
    /// The fastest speed on the grid.
    pub(crate) v_max: f32,
    /// The arrows `field_arrows.wgsl` wrote (GPU), `nx·ny` marks.
    pub(crate) arrows: Option<wgpu::Buffer>,
    /// Streamlines through the grid, computed from `velocities`.
    pub(crate) lines: Vec<Vec<[f32; 2]>>,
}

impl FieldView {
    /// A field from its velocities (streamlines computed here).
    pub(crate) fn new(
        grid: FieldGrid,
        velocities: Vec<[f32; 2]>,
        arrows: Option<wgpu::Buffer>,
    ) -> Self {
        let v_max = velocities.iter().map(|v| speed(*v)).fold(0.0, f32::max);
        let lines = streamlines(&grid, &velocities);
        Self {
            grid,
            velocities,
            v_max,
            arrows,
            lines,
        }
    }
}

fn speed(v: [f32; 2]) -> f32 {
    let s = (v[0] * v[0] + v[1] * v[1]).sqrt();
    if s.is_finite() { s } else { 0.0 }
}

/// The velocity at `p`, bilinear between cell centres (clamped at the edges).
fn sample(grid: &FieldGrid, velocities: &[[f32; 2]], p: [f32; 2]) -> [f32; 2] {
    let [dx, dy] = grid.rect.cell(grid.nx, grid.ny);
    let fx = ((p[0] - grid.rect.min[0]) / dx - 0.5).clamp(0.0, (grid.nx - 1) as f32);
    let fy = ((p[1] - grid.rect.min[1]) / dy - 0.5).clamp(0.0, (grid.ny - 1) as f32);
    let (i, j) = (fx as u32, fy as u32);
    let (i1, j1) = ((i + 1).min(grid.nx - 1), (j + 1).min(grid.ny - 1));
    let (sx, sy) = (fx - i as f32, fy - j as f32);
    let at = |i: u32, j: u32| velocities[(j * grid.nx + i) as usize];
    let lerp =
        |a: [f32; 2], b: [f32; 2], s: f32| [a[0] + s * (b[0] - a[0]), a[1] + s * (b[1] - a[1])];
    lerp(
        lerp(at(i, j), at(i1, j), sx),
        lerp(at(i, j1), at(i1, j1), sx),
        sy,
    )
}

/// The arrows as `field_arrows.wgsl` computes them: centred on each cell, `fill` of the cell
/// at the fastest speed, coloured by relative speed; none below `floor`.
pub(crate) fn arrow_marks(
    grid: &FieldGrid,
    velocities: &[[f32; 2]],
    style: &ArrowStyle,
) -> Vec<Mark> {
    let v_max = velocities.iter().map(|v| speed(*v)).fold(0.0, f32::max);
    let cell = grid.rect.cell(grid.nx, grid.ny);
    let span = style.fill * cell[0].min(cell[1]);
    velocities
        .iter()
        .enumerate()
        .filter_map(|(c, v)| {
            let s = speed(*v);
            let rel = if v_max > 0.0 { s / v_max } else { 0.0 };
            if rel < style.floor {
                return None;
            }
            let centre =
                grid.rect
                    .cell_centre(grid.nx, grid.ny, c as u32 % grid.nx, c as u32 / grid.nx);
            let dir = [v[0] / s, v[1] / s];
            let half = 0.5 * span * rel;
            Some(Mark::arrow(
                [centre[0] - dir[0] * half, centre[1] - dir[1] * half],
                [centre[0] + dir[0] * half, centre[1] + dir[1] * half],
                style.width_px,
                style.head_px,
                style.colours.at((rel * 255.0).round() / 255.0),
            ))
        })
        .collect()
}

/// Streamlines of the direction field through seeds on every third cell: traced both ways in
/// steps of half a cell (midpoint rule), until they leave the grid, stall or run 40 steps.
pub(crate) fn streamlines(grid: &FieldGrid, velocities: &[[f32; 2]]) -> Vec<Vec<[f32; 2]>> {
    if velocities.len() != (grid.nx * grid.ny) as usize || velocities.is_empty() {
        return Vec::new();
    }
    let [dx, dy] = grid.rect.cell(grid.nx, grid.ny);
    let h = 0.5 * dx.min(dy);
    let inside = |p: [f32; 2]| {
        p[0] >= grid.rect.min[0]
            && p[0] <= grid.rect.max[0]
            && p[1] >= grid.rect.min[1]
            && p[1] <= grid.rect.max[1]
    };
    let direction = |p: [f32; 2], sign: f32| -> Option<[f32; 2]> {
        let v = sample(grid, velocities, p);
        let s = speed(v);
        (s > 1e-6).then(|| [sign * v[0] / s, sign * v[1] / s])
    };
    let trace = |start: [f32; 2], sign: f32| -> Vec<[f32; 2]> {
        let mut out = Vec::new();
        let mut p = start;
        for _ in 0..40 {
            let Some(d) = direction(p, sign) else { break };
            let mid = [p[0] + 0.5 * h * d[0], p[1] + 0.5 * h * d[1]];
            let Some(d) = direction(mid, sign) else { break };
            p = [p[0] + h * d[0], p[1] + h * d[1]];
            if !inside(p) {
                break;
            }
            out.push(p);
        }
        out
    };
    let mut lines = Vec::new();
    for j in (1..grid.ny).step_by(3) {
        for i in (1..grid.nx).step_by(3) {
            let seed = grid.rect.cell_centre(grid.nx, grid.ny, i, j);
            let mut back = trace(seed, -1.0);
            back.reverse();
            back.push(seed);
            back.extend(trace(seed, 1.0));
            if back.len() > 3 {
                lines.push(back);
            }
        }
    }
    lines
}

pub(super) fn draw(cx: &PaintCx<'_>, scene: &Scene<'_>, field: &FieldView) -> bool {
    if field.velocities.is_empty() && field.arrows.is_none() {
        return false;
    }
    if scene.streamlines {
        let (colour, head) = (STREAMLINE, STREAM_HEAD);
        for (k, line) in field.lines.iter().enumerate() {
            let points: Vec<egui::Pos2> = line.iter().map(|&p| cx.screen(p)).collect();
            cx.painter
                .add(egui::Shape::line(points.clone(), Stroke::new(1.0, colour)));
            // A dot travelling along the line, at its own phase.
            let phase = (0.35 * scene.clock + 0.137 * k as f32).fract();
            let at = ((points.len() - 1) as f32 * phase) as usize;
            cx.painter.circle_filled(points[at], 1.8, head);
        }
    }
    match (&field.arrows, cx.gpu) {
        (Some(buffer), true) => crate::paint::marks(
            cx,
            mark_slot(cx, MarkSlot::Field),
            MarkData::Buffer {
                buffer: buffer.clone(),
                count: field.grid.nx * field.grid.ny,
            },
        ),
        _ => paint_marks(
            cx,
            MarkSlot::Field,
            &arrow_marks(&field.grid, &field.velocities, &ARROWS),
        ),
    }
    true
}

/// The streamlines and the dots moving along them.
const STREAMLINE: Color32 = Color32::from_rgba_unmultiplied_const(150, 200, 255, 70);
const STREAM_HEAD: Color32 = Color32::from_rgb(210, 235, 255);

pub(super) fn legend(field: &FieldView, streamlines: bool) -> Vec<LegendEntry> {
    let bar: Vec<Color32> = (0..8)
        .map(|i| crate::canvas::colour32(ARROWS.colours.at(i as f32 / 7.0)))
        .collect();
    let of = match field.grid.label {
        Some(c) if (field.grid.cfg_scale - 1.0).abs() > 1e-6 => {
            format!(", class {c} guided w = {}", field.grid.cfg_scale)
        }
        Some(c) => format!(", class {c}"),
        None => String::new(),
    };
    let mut out = vec![LegendEntry {
        layer: LayerId::Field,
        colours: bar,
        text: format!(
            "v_θ(t = {:.2}, x){of}: speed 0 … {:.2} (longest arrow)",
            field.grid.t, field.v_max
        ),
    }];
    if streamlines {
        out.push(LegendEntry {
            layer: LayerId::Field,
            colours: vec![STREAMLINE, STREAM_HEAD],
            text: "streamlines of v_θ(t, ·) frozen at this t, a dot moving along each".to_string(),
        });
    }
    out
}

/// A colour of the arrows' map, for tests.
#[cfg(test)]
pub(crate) fn colour_at(rel: f32) -> Rgba {
    ARROWS.colours.at(rel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowplay_gpu::Rect;

    fn grid() -> FieldGrid {
        FieldGrid {
            t: 0.5,
            rect: Rect::new([-2.0, -1.0], [2.0, 1.0]),
            nx: 8,
            ny: 4,
            label: None,
            cfg_scale: 1.0,
        }
    }

    #[test]
    fn arrows_are_centred_and_scaled_by_relative_speed() {
        let g = grid();
        // A rotation: v = (−y, x), fastest in the corners.
        let v: Vec<[f32; 2]> = (0..g.nx * g.ny)
            .map(|c| {
                let p = g.rect.cell_centre(g.nx, g.ny, c % g.nx, c / g.nx);
                [-p[1], p[0]]
            })
            .collect();
        let marks = arrow_marks(&g, &v, &ARROWS);
        assert_eq!(marks.len(), v.len());
        let v_max = v.iter().map(|v| speed(*v)).fold(0.0, f32::max);
        let cell = g.rect.cell(g.nx, g.ny);
        for (c, m) in marks.iter().enumerate() {
            let centre = g
                .rect
                .cell_centre(g.nx, g.ny, c as u32 % g.nx, c as u32 / g.nx);
            let mid = [(m.a[0] + m.b[0]) / 2.0, (m.a[1] + m.b[1]) / 2.0];
            assert!((mid[0] - centre[0]).abs() < 1e-5 && (mid[1] - centre[1]).abs() < 1e-5);
            let len = ((m.b[0] - m.a[0]).powi(2) + (m.b[1] - m.a[1]).powi(2)).sqrt();
            let want = ARROWS.fill * cell[0].min(cell[1]) * speed(v[c]) / v_max;
            assert!((len - want).abs() < 1e-5);
        }
        let fastest = marks
            .iter()
            .zip(&v)
            .max_by(|a, b| speed(*a.1).total_cmp(&speed(*b.1)))
            .map(|(m, _)| m.colour);
        assert_eq!(fastest, Some(colour_at(1.0).0));
    }

    #[test]
    fn streamlines_follow_a_rotation_around_the_centre() {
        let g = FieldGrid {
            nx: 24,
            ny: 24,
            rect: Rect::new([-2.0, -2.0], [2.0, 2.0]),
            ..grid()
        };
        let v: Vec<[f32; 2]> = (0..g.nx * g.ny)
            .map(|c| {
                let p = g.rect.cell_centre(g.nx, g.ny, c % g.nx, c / g.nx);
                [-p[1], p[0]]
            })
            .collect();
        let lines = streamlines(&g, &v);
        assert!(!lines.is_empty());
        // Along a circle the radius stays (nearly) the same.
        for line in &lines {
            let r = |p: &[f32; 2]| (p[0] * p[0] + p[1] * p[1]).sqrt();
            let r0 = r(&line[0]);
            for p in line {
                assert!((r(p) - r0).abs() < 0.08 + 0.05 * r0, "{r0} vs {}", r(p));
            }
        }
    }
}
