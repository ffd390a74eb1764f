//! The heat-map layers: the density p_t at the scrubber's t (a histogram of many particles, on a
//! log colour scale) and the model's exact log-likelihood log p₁ on a grid, each with a colour
//! bar. On the GPU they are drawn straight from the buffers the kernels wrote; the CPU fallback
//! draws a texture of the same colours.

use egui::{Color32, ColorImage, TextureHandle, pos2};
use flowplay_gpu::Rect;
use flowplay_gpu::overlay::{ColourMap, HeatValues, HeatmapSource};

use super::{LayerId, LegendEntry, PaintCx};

/// The density's colour scale spans this many e-folds below its peak.
const DENSITY_DECADES: f32 = 3.0 * std::f32::consts::LN_10;

/// A grid of values over a rectangle of the plane, drawn as a heat map.
#[derive(Clone)]
pub(crate) struct Heatmap {
    pub(crate) layer: LayerId,
    pub(crate) rect: Rect,
    pub(crate) nx: u32,
    pub(crate) ny: u32,
    /// Counts (drawn as a log density) or values (drawn as they are).
    pub(crate) kind: HeatValues,
    /// The value range the colour map spans.
    pub(crate) range: [f32; 2],
    pub(crate) colours: ColourMap,
    /// The values on the CPU (counts as `f32`, or the values), `[ny, nx]`.
    pub(crate) values: Vec<f32>,
    /// The values on the GPU (u32 counts, or f32), when a kernel wrote them.
    pub(crate) gpu: Option<wgpu::Buffer>,
    /// The CPU fallback's texture of the values.
    pub(crate) texture: Option<TextureHandle>,
    /// What it shows ("p_t at t = 0.40 from 100 000 particles").
    pub(crate) caption: String,
}

impl Heatmap {
    /// The density of `counts` of `particles` particles binned over `rect`: counts ×
    /// 1/(particles · cell area) is a density estimate; the colour scale spans three decades
    /// below the densest bin.
    pub(crate) fn density(
        rect: Rect,
        nx: u32,
        ny: u32,
        counts: Vec<f32>,
        particles: usize,
    ) -> (HeatValues, [f32; 2], Vec<f32>) {
        let cell = rect.cell(nx, ny);
        let norm = 1.0 / (particles.max(1) as f32 * cell[0] * cell[1]);
        let peak = counts.iter().copied().fold(0.0, f32::max).max(1.0);
        let hi = (peak * norm).ln();
        (
            HeatValues::Counts { norm },
            [hi - DENSITY_DECADES, hi],
            counts,
        )
    }

    /// The log-likelihood range drawn: from 12 nats below the highest value to the highest.
    pub(crate) fn logp_range(values: &[f32]) -> [f32; 2] {
        let hi = values
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(f32::NEG_INFINITY, f32::max);
        let hi = if hi.is_finite() { hi } else { 0.0 };
        [hi - 12.0, hi]
    }

    /// The value the colour map sees for raw value `v` (a log density for counts).
    fn mapped(&self, v: f32) -> Option<f32> {
        match self.kind {
            HeatValues::Counts { norm } => (v > 0.0).then(|| (v * norm).ln()),
            HeatValues::Values => v.is_finite().then_some(v),
        }
    }

    /// The CPU image of the map, as `heatmap_draw.wgsl` colours it (top row first).
    pub(crate) fn image(&self, opacity: f32) -> ColorImage {
        let (nx, ny) = (self.nx as usize, self.ny as usize);
        let [lo, hi] = self.range;
        let span = (hi - lo).max(1e-12);
        let mut pixels = Vec::with_capacity(nx * ny);
        for j in (0..ny).rev() {
            for i in 0..nx {
                let colour = self
                    .values
                    .get(j * nx + i)
                    .and_then(|&v| self.mapped(v))
                    .filter(|&v| v >= lo - 0.5 * span)
                    .map_or(Color32::TRANSPARENT, |v| {
                        let x = ((v - lo) / span).clamp(0.0, 1.0);
                        let fade = (1.0 + 2.0 * (v - lo) / span).clamp(0.0, 1.0);
                        let c = self.colours.at((x * 255.0).round() / 255.0).0;
                        let a = opacity * fade;
                        Color32::from_rgba_unmultiplied(
                            (c[0] * 255.0).round() as u8,
                            (c[1] * 255.0).round() as u8,
                            (c[2] * 255.0).round() as u8,
                            (a * 255.0).round() as u8,
                        )
                    });
                pixels.push(colour);
            }
        }
        ColorImage::new([nx, ny], pixels)
    }
}

/// The layers' opacity over the dark canvas.
pub(crate) const HEAT_OPACITY: f32 = 0.85;

/// Draws `map` in heat-map slot `which` (0 density, 1 likelihood) of the canvas.
pub(super) fn draw(cx: &PaintCx<'_>, map: &Heatmap, which: usize) -> bool {
    match (&map.gpu, cx.gpu) {
        (Some(values), true) => {
            crate::paint::heatmap(
                cx,
                cx.slot * 2 + which,
                HeatmapSource {
                    values: values.clone(),
                    rect: map.rect,
                    nx: map.nx,
                    ny: map.ny,
                    kind: map.kind,
                    range: map.range,
                    colours: map.colours,
                    opacity: HEAT_OPACITY,
                },
            );
            true
        }
        _ => {
            let Some(texture) = &map.texture else {
                return false;
            };
            let a = cx.screen([map.rect.min[0], map.rect.max[1]]);
            let b = cx.screen([map.rect.max[0], map.rect.min[1]]);
            cx.painter.image(
                texture.id(),
                egui::Rect::from_two_pos(a, b),
                egui::Rect::from_min_max(pos2(0.0, 0.0), pos2(1.0, 1.0)),
                Color32::WHITE,
            );
            true
        }
    }
}

pub(super) fn legend(id: LayerId, map: &Heatmap) -> Vec<LegendEntry> {
    let bar: Vec<Color32> = (0..10)
        .map(|i| crate::canvas::colour32(map.colours.at(i as f32 / 9.0)))
        .collect();
    let [lo, hi] = map.range;
    let scale = match map.kind {
        HeatValues::Counts { .. } => {
            format!("density {:.2e} … {:.2e} (log scale)", lo.exp(), hi.exp())
        }
        HeatValues::Values => format!("log p₁ {lo:.1} … {hi:.1} nats"),
    };
    vec![LegendEntry {
        layer: id,
        colours: bar,
        text: format!("{}: {scale}", map.caption),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_density_scale_spans_three_decades_below_the_peak() {
        let rect = Rect::new([0.0, 0.0], [2.0, 1.0]);
        let counts = vec![0.0, 5.0, 50.0, 0.0];
        let (kind, range, _) = Heatmap::density(rect, 2, 2, counts.clone(), 100);
        let HeatValues::Counts { norm } = kind else {
            panic!("counts")
        };
        // Cells of 1 × 0.5: a count c is a density c/(100·0.5).
        assert!((norm - 1.0 / 50.0).abs() < 1e-7);
        assert!((range[1] - 1.0_f32.ln()).abs() < 1e-6, "50/(100·0.5) = 1");
        assert!((range[1] - range[0] - 3.0 * 10f32.ln()).abs() < 1e-5);
        let map = Heatmap {
            layer: LayerId::Density,
            rect,
            nx: 2,
            ny: 2,
            kind,
            range,
            colours: ColourMap::Inferno,
            values: counts,
            gpu: None,
            texture: None,
            caption: String::new(),
        };
        let image = map.image(1.0);
        // Top row first: bins (0, 1) and (1, 1) are counts 50 and 0.
        assert_eq!(image.pixels[0].a(), 255, "the peak is opaque");
        assert_eq!(image.pixels[1], Color32::TRANSPARENT, "an empty bin");
        assert_eq!(image.pixels[2], Color32::TRANSPARENT);
        assert!(
            image.pixels[3].a() > 0,
            "5 counts, one decade below the peak"
        );
    }

    #[test]
    fn the_likelihood_range_ignores_non_finite_values() {
        let close =
            |a: [f32; 2], b: [f32; 2]| (a[0] - b[0]).abs() < 1e-6 && (a[1] - b[1]).abs() < 1e-6;
        assert!(close(
            Heatmap::logp_range(&[-3.0, f32::NAN, -1.0, f32::NEG_INFINITY]),
            [-13.0, -1.0]
        ));
        assert!(close(Heatmap::logp_range(&[f32::NAN]), [-12.0, 0.0]));
    }
}
