//! Pictures and videos of the canvas: frames cropped from egui's screenshots, written as PNG,
//! animated GIF, or (on the web, where WebCodecs exists) WebM.
//!
//! The encoders are well-kept crates (`image` for PNG, `gif` with `color_quant`'s NeuQuant
//! palette); the WebM container is written here ([`webm`]) because no maintained muxer
//! builds for the web, and WebCodecs hands over bare VP8 frames that need one.

pub(crate) mod gif;
#[cfg(target_arch = "wasm32")]
pub(crate) mod webcodecs;
#[cfg_attr(
    not(target_arch = "wasm32"),
    allow(
        dead_code,
        reason = "natively only its tests use the muxer: video is encoded on the web"
    )
)]
pub(crate) mod webm;

/// One picture: `width × height` RGBA pixels, rows top to bottom.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Frame {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) rgba: Vec<u8>,
}

/// What a capture makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Picture {
    /// The canvas as it is now.
    Png,
    /// The flow from t = 0 to 1, as an animated GIF.
    Gif,
    /// The flow from t = 0 to 1, as a WebM video (VP8 through WebCodecs; the web only).
    Webm,
}

impl Picture {
    /// Frames captured: one, or the flow at evenly spaced times.
    pub(crate) fn frames(self) -> usize {
        match self {
            Self::Png => 1,
            Self::Gif => 41,
            Self::Webm => 61,
        }
    }

    /// The file's extension and type.
    pub(crate) fn file(self) -> (&'static str, &'static str) {
        match self {
            Self::Png => ("png", "image/png"),
            Self::Gif => ("gif", "image/gif"),
            Self::Webm => ("webm", "video/webm"),
        }
    }

    /// The largest side of a frame in pixels: GIFs are kept small enough to share.
    pub(crate) fn max_side(self) -> u32 {
        match self {
            Self::Png => 4096,
            Self::Gif => 480,
            Self::Webm => 1280,
        }
    }
}

/// Whether this browser can encode video (WebCodecs' `VideoEncoder`); natively never.
pub(crate) fn can_encode_video() -> bool {
    #[cfg(target_arch = "wasm32")]
    {
        webcodecs::available()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        false
    }
}

impl Frame {
    /// The part of a screenshot under `rect` (in points, `pixels_per_point` pixels each), or
    /// `None` if the rect misses it.
    pub(crate) fn crop(
        image: &egui::ColorImage,
        rect: egui::Rect,
        pixels_per_point: f32,
    ) -> Option<Self> {
        let [w, h] = image.size;
        let px = |v: f32, max: usize| ((v * pixels_per_point).round().max(0.0) as usize).min(max);
        let (x0, x1) = (px(rect.min.x, w), px(rect.max.x, w));
        let (y0, y1) = (px(rect.min.y, h), px(rect.max.y, h));
        if x1 <= x0 || y1 <= y0 {
            return None;
        }
        let mut rgba = Vec::with_capacity((x1 - x0) * (y1 - y0) * 4);
        for y in y0..y1 {
            for p in &image.pixels[y * w + x0..y * w + x1] {
                // Screenshots are opaque; unmultiply in case.
                let [r, g, b, _] = p.to_srgba_unmultiplied();
                rgba.extend_from_slice(&[r, g, b, 255]);
            }
        }
        Some(Self {
            width: (x1 - x0) as u32,
            height: (y1 - y0) as u32,
            rgba,
        })
    }

    /// The frame shrunk by a whole factor (box filter) so that no side exceeds `max_side`, and
    /// cut to even sides (video encoders take 4:2:0 chroma).
    pub(crate) fn fitted(&self, max_side: u32, even: bool) -> Self {
        let factor = self.width.max(self.height).div_ceil(max_side.max(1)).max(1);
        let mut width = self.width / factor;
        let mut height = self.height / factor;
        if even {
            width &= !1;
            height &= !1;
        }
        let (width, height) = (width.max(1), height.max(1));
        if factor == 1 && width == self.width && height == self.height {
            return self.clone();
        }
        let mut rgba = Vec::with_capacity((width * height * 4) as usize);
        let n = factor * factor;
        for y in 0..height {
            for x in 0..width {
                let mut sum = [0u32; 4];
                for dy in 0..factor {
                    for dx in 0..factor {
                        let (sx, sy) = (
                            (x * factor + dx).min(self.width - 1),
                            (y * factor + dy).min(self.height - 1),
                        );
                        let i = ((sy * self.width + sx) * 4) as usize;
                        for (s, &v) in sum.iter_mut().zip(&self.rgba[i..i + 4]) {
                            *s += u32::from(v);
                        }
                    }
                }
                rgba.extend(sum.iter().map(|s| (s / n) as u8));
            }
        }
        Self {
            width,
            height,
            rgba,
        }
    }

    /// The frame as a PNG file.
    pub(crate) fn to_png(&self) -> Result<Vec<u8>, String> {
        let image = image::RgbaImage::from_raw(self.width, self.height, self.rgba.clone())
            .ok_or("the picture's size does not match its pixels")?;
        let mut out = Vec::new();
        image
            .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .map_err(|e| format!("the PNG could not be written: {e}"))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screenshot(w: usize, h: usize) -> egui::ColorImage {
        let mut image = egui::ColorImage::filled([w, h], egui::Color32::BLACK);
        for y in 0..h {
            for x in 0..w {
                image.pixels[y * w + x] = egui::Color32::from_rgb(x as u8, y as u8, 7);
            }
        }
        image
    }

    #[test]
    fn a_crop_takes_the_canvas_at_the_screens_scale() {
        let image = screenshot(100, 80);
        let rect = egui::Rect::from_min_max(egui::pos2(10.0, 5.0), egui::pos2(30.0, 25.0));
        let frame = Frame::crop(&image, rect, 2.0).expect("inside");
        assert_eq!((frame.width, frame.height), (40, 40));
        assert_eq!(&frame.rgba[..4], &[20, 10, 7, 255]);
        let last = frame.rgba.len() - 4;
        assert_eq!(&frame.rgba[last..], &[59, 49, 7, 255]);
        // Clamped to the screenshot; nothing for a rect outside it.
        let big = egui::Rect::from_min_max(egui::pos2(90.0, 70.0), egui::pos2(500.0, 500.0));
        let frame = Frame::crop(&image, big, 1.0).expect("partly inside");
        assert_eq!((frame.width, frame.height), (10, 10));
        let outside = egui::Rect::from_min_max(egui::pos2(200.0, 0.0), egui::pos2(300.0, 10.0));
        assert!(Frame::crop(&image, outside, 1.0).is_none());
    }

    #[test]
    fn fitting_shrinks_by_a_whole_factor_and_evens_the_sides() {
        let rect = egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(100.0, 75.0));
        let frame = Frame::crop(&screenshot(100, 80), rect, 1.0).expect("inside");
        let small = frame.fitted(40, true);
        // 100 / 40 → factor 3: 33 × 25 → 32 × 24.
        assert_eq!((small.width, small.height), (32, 24));
        assert_eq!(small.rgba.len(), 32 * 24 * 4);
        // The box mean of x = 0, 1, 2 and y = 0, 1, 2.
        assert_eq!(&small.rgba[..4], &[1, 1, 7, 255]);
        assert_eq!(frame.fitted(400, false), frame);
    }

    #[test]
    fn a_png_reads_back() {
        let rect = egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(9.0, 5.0));
        let frame = Frame::crop(&screenshot(20, 20), rect, 1.0).expect("inside");
        let png = frame.to_png().expect("written");
        let back = image::load_from_memory(&png).expect("a PNG").to_rgba8();
        assert_eq!(back.dimensions(), (9, 5));
        assert_eq!(back.into_raw(), frame.rgba);
    }
}
