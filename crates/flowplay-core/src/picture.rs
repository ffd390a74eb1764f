//! Points drawn from a picture (PNG or JPEG): each pixel's darkness, or brightness, is the
//! density there, and points are drawn from it as from any 2-D distribution: a pixel with
//! probability proportional to its weight (rand's `WeightedIndex` over the counter-based
//! stream), then a uniform position inside it.
//!
//! The picture is fitted into `[−extent, extent]` on its longer side, centred, with y up. A
//! hostile file gets a clear error: decoding runs under size limits set before any pixel is
//! allocated.

use rand::distr::Distribution as _;
use rand::distr::weighted::WeightedIndex;

use crate::Error;
use crate::data::Points;
use crate::rng::Rng;

/// The largest picture file read, in bytes.
pub const MAX_PICTURE_BYTES: usize = 64 << 20;
/// The longest side decoded, in pixels: a larger picture is refused before it is decoded.
pub const MAX_PICTURE_SIDE: u32 = 8192;
/// Memory the decoder may allocate.
const MAX_DECODE_BYTES: u64 = 512 << 20;
/// The density is taken on at most this many pixels a side: a larger picture is shrunk first
/// (points are spread inside a pixel anyway), which bounds the weights' memory at 8 MB.
pub const DENSITY_SIDE: u32 = 1024;
/// A weight below this (of 1) counts as empty: a JPEG's near-white background must not
/// scatter points everywhere.
const EMPTY_BELOW: f32 = 0.04;

/// Which pixels are dense.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Density {
    /// Dark pixels: ink on paper.
    #[default]
    Darkness,
    /// Bright pixels: light on a dark background.
    Brightness,
}

impl Density {
    /// The key in settings and on the command line.
    pub fn key(self) -> &'static str {
        match self {
            Self::Darkness => "dark",
            Self::Brightness => "bright",
        }
    }
}

/// How a picture becomes points.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PictureOptions {
    /// Which pixels are dense.
    pub density: Density,
    /// Points drawn.
    pub n: usize,
    /// Seed of the draw.
    pub seed: u64,
    /// Half the span of the picture's longer side in world units.
    pub extent: f32,
}

impl Default for PictureOptions {
    fn default() -> Self {
        Self {
            density: Density::Darkness,
            n: 16_384,
            seed: 0,
            extent: 3.0,
        }
    }
}

/// Whether `bytes` start like a PNG or a JPEG.
pub fn looks_like_picture(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x89PNG\r\n\x1a\n") || bytes.starts_with(&[0xFF, 0xD8, 0xFF])
}

/// Decodes a PNG or JPEG (`name` is what error messages call it) and draws `options.n` points
/// from its density. Transparent pixels are empty.
pub fn points_from_picture(
    bytes: &[u8],
    name: &str,
    options: &PictureOptions,
) -> Result<Points, Error> {
    let fail = |message: String| Error::Picture {
        source_name: name.to_owned(),
        message,
    };
    if bytes.len() > MAX_PICTURE_BYTES {
        return Err(fail(format!(
            "the file is {} MB; pictures of up to {} MB are read",
            bytes.len() >> 20,
            MAX_PICTURE_BYTES >> 20
        )));
    }
    if options.n == 0 || options.n > crate::data::MAX_POINTS {
        return Err(fail(format!(
            "{} points asked for; between 1 and {} can be drawn",
            options.n,
            crate::data::MAX_POINTS
        )));
    }
    if !(options.extent.is_finite() && options.extent > 0.0) {
        return Err(fail(format!(
            "the extent must be positive, not {}",
            options.extent
        )));
    }
    let format = match image::guess_format(bytes) {
        Ok(f @ (image::ImageFormat::Png | image::ImageFormat::Jpeg)) => f,
        Ok(other) => {
            return Err(fail(format!(
                "a {other:?} picture; flowplay reads PNG and JPEG"
            )));
        }
        Err(_) => return Err(fail("not a PNG or JPEG picture".to_string())),
    };
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_PICTURE_SIDE);
    limits.max_image_height = Some(MAX_PICTURE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let decoded = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => fail(format!(
            "the picture is larger than {MAX_PICTURE_SIDE}×{MAX_PICTURE_SIDE} pixels (or needs \
             more than {} MB to decode)",
            MAX_DECODE_BYTES >> 20
        )),
        other => fail(format!("the picture cannot be decoded: {other}")),
    })?;
    let (width, height) = (decoded.width(), decoded.height());
    if width == 0 || height == 0 {
        return Err(fail("the picture has no pixels".to_string()));
    }
    let shrunk = if width.max(height) > DENSITY_SIDE {
        decoded.thumbnail(DENSITY_SIDE, DENSITY_SIDE)
    } else {
        decoded
    };
    let rgba = shrunk.to_rgba8();
    let (w, h) = rgba.dimensions();
    let weights: Vec<f64> = rgba
        .pixels()
        .map(|p| f64::from(weight(p.0, options.density)))
        .collect();
    let dist = WeightedIndex::new(&weights).map_err(|_| {
        let (what, other) = match options.density {
            Density::Darkness => ("dark", "brightness"),
            Density::Brightness => ("bright", "darkness"),
        };
        fail(format!(
            "the picture has no {what} pixels to draw points from (try density from {other})"
        ))
    })?;
    // The longer side spans 2·extent; y points up.
    let scale = 2.0 * options.extent / w.max(h) as f32;
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let mut rng = Rng::with_domain(options.seed, "picture");
    let xy = (0..options.n)
        .map(|_| {
            let pixel = dist.sample(&mut rng);
            let (px, py) = ((pixel as u32 % w) as f32, (pixel as u32 / w) as f32);
            let (jx, jy) = (rng.uniform(), rng.uniform());
            [(px + jx - cx) * scale, (cy - (py + jy)) * scale]
        })
        .collect();
    Ok(Points::unlabelled(xy))
}

/// A pixel's weight in [0, 1]: its darkness or brightness (Rec. 709 luma) times its opacity,
/// with near-empty pixels dropped.
fn weight([r, g, b, a]: [u8; 4], density: Density) -> f32 {
    let luma = (0.2126 * f32::from(r) + 0.7152 * f32::from(g) + 0.0722 * f32::from(b)) / 255.0;
    let value = match density {
        Density::Darkness => 1.0 - luma,
        Density::Brightness => luma,
    } * f32::from(a)
        / 255.0;
    if value < EMPTY_BELOW { 0.0 } else { value }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG of `w`×`h` grey pixels from `f(x, y)`.
    fn png(w: u32, h: u32, f: impl Fn(u32, u32) -> u8) -> Vec<u8> {
        let img = image::GrayImage::from_fn(w, h, |x, y| image::Luma([f(x, y)]));
        let mut out = Vec::new();
        image::DynamicImage::ImageLuma8(img)
            .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap_or_else(|e| panic!("encode: {e}"));
        out
    }

    #[test]
    fn points_fall_on_the_dark_half_only() {
        // Left half black, right half white: every point has x < 0.
        let bytes = png(40, 20, |x, _| if x < 20 { 0 } else { 255 });
        let options = PictureOptions {
            n: 2000,
            ..Default::default()
        };
        let points = points_from_picture(&bytes, "half.png", &options).unwrap_or_else(|e| {
            panic!("{e}");
        });
        assert_eq!(points.len(), 2000);
        assert!(points.labels.is_none());
        for p in &points.xy {
            assert!((-3.0..=0.0).contains(&p[0]), "{p:?}");
            // 20 of 40 pixels high: y in [−1.5, 1.5].
            assert!((-1.5..=1.5).contains(&p[1]), "{p:?}");
        }
        // Brightness picks the other half.
        let bright = PictureOptions {
            density: Density::Brightness,
            ..options
        };
        let points = points_from_picture(&bytes, "half.png", &bright).unwrap_or_else(|e| {
            panic!("{e}");
        });
        assert!(points.xy.iter().all(|p| p[0] >= 0.0));
    }

    #[test]
    fn density_follows_darkness_and_y_points_up() {
        // Top row black (weight 1), bottom row mid grey (weight ~0.5).
        let bytes = png(2, 2, |_, y| if y == 0 { 0 } else { 128 });
        let options = PictureOptions {
            n: 20_000,
            seed: 3,
            ..Default::default()
        };
        let points = points_from_picture(&bytes, "two.png", &options).unwrap_or_else(|e| {
            panic!("{e}");
        });
        let top = points.xy.iter().filter(|p| p[1] > 0.0).count() as f64 / 20_000.0;
        let expected = 1.0 / (1.0 + (1.0 - 128.0 / 255.0));
        assert!((top - expected).abs() < 0.02, "{top} vs {expected}");
        // The same seed draws the same points.
        let again = points_from_picture(&bytes, "two.png", &options).unwrap_or_else(|e| {
            panic!("{e}");
        });
        assert_eq!(points, again);
    }

    #[test]
    fn bad_pictures_get_one_clear_message() {
        let options = PictureOptions::default();
        let err = |bytes: &[u8]| {
            points_from_picture(bytes, "x.png", &options)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(
            err(b"x,y\n1,2\n").contains("not a PNG or JPEG"),
            "{}",
            err(b"x")
        );
        let white = png(8, 8, |_, _| 255);
        assert!(err(&white).contains("no dark pixels"), "{}", err(&white));
        let mut cut = png(64, 64, |x, y| ((x * y) % 256) as u8);
        cut.truncate(cut.len() / 2);
        assert!(err(&cut).contains("cannot be decoded"), "{}", err(&cut));
        // A header claiming 100 000 × 100 000 pixels is refused before any pixel is decoded.
        let mut huge = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut huge, 100_000, 100_000);
            encoder.set_color(png::ColorType::Grayscale);
            let writer = encoder.write_header();
            drop(writer);
        }
        let said = err(&huge);
        assert!(said.contains("larger than 8192"), "{said}");
        let said = err(b"GIF89a\x01\x00\x01\x00\x00\x00\x00");
        assert!(said.contains("flowplay reads PNG and JPEG"), "{said}");
    }

    #[test]
    fn a_large_picture_is_shrunk_first() {
        let bytes = png(3000, 10, |x, _| if x < 1500 { 0 } else { 255 });
        let options = PictureOptions {
            n: 500,
            ..Default::default()
        };
        let points = points_from_picture(&bytes, "wide.png", &options).unwrap_or_else(|e| {
            panic!("{e}");
        });
        assert!(points.xy.iter().all(|p| p[0] <= 0.01), "dark half only");
    }
}
