//! `plot.png`: generated samples over data, as in QR §8 (`plt.scatter(real); plt.scatter(generated)`),
//! drawn without a plotting library: alpha-blended dots, axes with ticks, a legend, a title.

use anyhow::Result;
use font8x8::UnicodeFonts as _;

const WIDTH: usize = 800;
const HEIGHT: usize = 640;
const MARGIN_LEFT: usize = 56;
const MARGIN_RIGHT: usize = 16;
const MARGIN_TOP: usize = 40;
const MARGIN_BOTTOM: usize = 36;
const REAL: [f32; 3] = [31.0, 119.0, 180.0];
const GENERATED: [f32; 3] = [255.0, 127.0, 14.0];
const INK: [f32; 3] = [40.0, 40.0, 40.0];

struct Canvas {
    rgb: Vec<f32>,
}

impl Canvas {
    fn new() -> Self {
        Self {
            rgb: vec![255.0; WIDTH * HEIGHT * 3],
        }
    }

    fn blend(&mut self, x: i64, y: i64, color: [f32; 3], alpha: f32) {
        if x < 0 || y < 0 || x >= WIDTH as i64 || y >= HEIGHT as i64 {
            return;
        }
        let i = (y as usize * WIDTH + x as usize) * 3;
        for (channel, &target) in self.rgb[i..i + 3].iter_mut().zip(&color) {
            *channel = *channel * (1.0 - alpha) + target * alpha;
        }
    }

    fn dot(&mut self, cx: f32, cy: f32, color: [f32; 3], alpha: f32) {
        let radius = 2.2_f32;
        let r = radius.ceil() as i64;
        for dy in -r..=r {
            for dx in -r..=r {
                let (px, py) = (cx.round() as i64 + dx, cy.round() as i64 + dy);
                let d = ((px as f32 - cx).powi(2) + (py as f32 - cy).powi(2)).sqrt();
                let coverage = (radius + 0.5 - d).clamp(0.0, 1.0);
                if coverage > 0.0 {
                    self.blend(px, py, color, alpha * coverage);
                }
            }
        }
    }

    fn line(&mut self, x0: usize, y0: usize, x1: usize, y1: usize, color: [f32; 3]) {
        for x in x0.min(x1)..=x0.max(x1) {
            for y in y0.min(y1)..=y0.max(y1) {
                self.blend(x as i64, y as i64, color, 1.0);
            }
        }
    }

    fn text(&mut self, x: usize, y: usize, text: &str, color: [f32; 3]) {
        for (k, ch) in text.chars().enumerate() {
            let glyph = font8x8::BASIC_FONTS
                .get(ch)
                .or_else(|| font8x8::LATIN_FONTS.get(ch))
                .or_else(|| font8x8::GREEK_FONTS.get(ch))
                .unwrap_or([0; 8]);
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        self.blend((x + k * 8 + col) as i64, (y + row) as i64, color, 1.0);
                    }
                }
            }
        }
    }

    fn png(&self) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut bytes, WIDTH as u32, HEIGHT as u32);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header()?;
            let data: Vec<u8> = self
                .rgb
                .iter()
                .map(|v| v.round().clamp(0.0, 255.0) as u8)
                .collect();
            writer.write_image_data(&data)?;
        }
        Ok(bytes)
    }
}

/// A "nice" tick step (1, 2 or 5 times a power of ten) giving about `count` ticks over `span`.
fn tick_step(span: f64, count: f64) -> f64 {
    let raw = span / count;
    let power = 10_f64.powf(raw.log10().floor());
    let mantissa = raw / power;
    let nice = if mantissa < 1.5 {
        1.0
    } else if mantissa < 3.5 {
        2.0
    } else if mantissa < 7.5 {
        5.0
    } else {
        10.0
    };
    nice * power
}

/// Scatter plot of `real` and `generated` points with equal axis scales, as PNG bytes.
pub(crate) fn scatter_png(
    real: &[[f32; 2]],
    generated: &[[f32; 2]],
    title: &str,
) -> Result<Vec<u8>> {
    let finite = real
        .iter()
        .chain(generated)
        .filter(|p| p[0].is_finite() && p[1].is_finite());
    let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    for p in finite {
        for d in 0..2 {
            lo[d] = lo[d].min(f64::from(p[d]));
            hi[d] = hi[d].max(f64::from(p[d]));
        }
    }
    if !lo[0].is_finite() {
        lo = [-1.0, -1.0];
        hi = [1.0, 1.0];
    }
    let plot_w = (WIDTH - MARGIN_LEFT - MARGIN_RIGHT) as f64;
    let plot_h = (HEIGHT - MARGIN_TOP - MARGIN_BOTTOM) as f64;
    // Equal scale on both axes, 5% padding.
    let span = [(hi[0] - lo[0]).max(1e-6), (hi[1] - lo[1]).max(1e-6)];
    let scale = (plot_w / (span[0] * 1.1)).min(plot_h / (span[1] * 1.1));
    let centre = [(lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0];
    let to_px = |x: f64, y: f64| -> (f32, f32) {
        (
            (MARGIN_LEFT as f64 + plot_w / 2.0 + (x - centre[0]) * scale) as f32,
            (MARGIN_TOP as f64 + plot_h / 2.0 - (y - centre[1]) * scale) as f32,
        )
    };

    let mut canvas = Canvas::new();
    // Frame.
    let (left, right) = (MARGIN_LEFT, WIDTH - MARGIN_RIGHT);
    let (top, bottom) = (MARGIN_TOP, HEIGHT - MARGIN_BOTTOM);
    canvas.line(left, top, right, top, INK);
    canvas.line(left, bottom, right, bottom, INK);
    canvas.line(left, top, left, bottom, INK);
    canvas.line(right, top, right, bottom, INK);
    // Ticks and labels.
    let visible = [
        centre[0] - plot_w / 2.0 / scale,
        centre[0] + plot_w / 2.0 / scale,
        centre[1] - plot_h / 2.0 / scale,
        centre[1] + plot_h / 2.0 / scale,
    ];
    let step = tick_step((visible[1] - visible[0]).max(visible[3] - visible[2]), 8.0);
    let label = |v: f64| {
        if step >= 1.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        }
    };
    let mut v = (visible[0] / step).ceil() * step;
    while v <= visible[1] {
        let (px, _) = to_px(v, 0.0);
        let px = px.round() as usize;
        canvas.line(px, bottom, px, bottom + 4, INK);
        let text = label(v);
        canvas.text(px.saturating_sub(text.len() * 4), bottom + 8, &text, INK);
        v += step;
    }
    let mut v = (visible[2] / step).ceil() * step;
    while v <= visible[3] {
        let (_, py) = to_px(0.0, v);
        let py = py.round() as usize;
        canvas.line(left - 4, py, left, py, INK);
        let text = label(v);
        canvas.text(
            left.saturating_sub(8 + text.len() * 8),
            py.saturating_sub(4),
            &text,
            INK,
        );
        v += step;
    }
    // Points: real first, generated on top, both translucent (alpha 0.3 as in QR §8).
    for (points, color) in [(real, REAL), (generated, GENERATED)] {
        for p in points
            .iter()
            .filter(|p| p[0].is_finite() && p[1].is_finite())
        {
            let (x, y) = to_px(f64::from(p[0]), f64::from(p[1]));
            canvas.dot(x, y, color, 0.3);
        }
    }
    // Legend and title.
    let legend_x = right - 130;
    canvas.dot(legend_x as f32, (top + 14) as f32, REAL, 1.0);
    canvas.text(legend_x + 10, top + 10, "real", INK);
    canvas.dot(legend_x as f32, (top + 30) as f32, GENERATED, 1.0);
    canvas.text(legend_x + 10, top + 26, "generated", INK);
    let title_x = (WIDTH / 2).saturating_sub(title.chars().count() * 4);
    canvas.text(title_x, 14, title, INK);
    canvas.png()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plot_is_a_png_with_both_colours() {
        let real: Vec<[f32; 2]> = (0..200).map(|i| [i as f32 * 0.01, 0.0]).collect();
        let generated: Vec<[f32; 2]> = (0..200).map(|i| [i as f32 * 0.01, 1.0]).collect();
        let bytes = scatter_png(&real, &generated, "test · W2 0.1").unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut pixels).unwrap();
        let has = |target: [f32; 3]| {
            pixels
                .chunks_exact(3)
                .any(|p| (0..3).all(|c| (f32::from(p[c]) - target[c]).abs() < 2.0))
        };
        assert!(has(REAL) && has(GENERATED));
    }

    #[test]
    fn tick_steps_are_nice() {
        assert!((tick_step(6.0, 8.0) - 1.0).abs() < 1e-12);
        assert!((tick_step(1.0, 8.0) - 0.1).abs() < 1e-12);
        assert!((tick_step(20.0, 8.0) - 2.0).abs() < 1e-12);
    }
}
