//! Frames as an animated GIF: one palette of 256 colours for the whole animation, looping
//! forever with the last frame held. Pictures of at most 256 colours (6 bits a channel) keep
//! them exactly; others get NeuQuant's palette, trained on pixels sampled from every frame.
//! Each pixel is mapped through an 18-bit lookup table.

use std::borrow::Cow;

use super::Frame;

/// Pixels, sampled evenly from every frame, that train the palette at most.
const PALETTE_SAMPLES: usize = 400_000;
/// NeuQuant's sampling factor (1 best, 30 fastest).
const NEUQUANT_SAMPLE: i32 = 10;

/// A pixel's 6-bit-a-channel colour cell.
fn cell(p: &[u8]) -> usize {
    (usize::from(p[0] >> 2) << 12) | (usize::from(p[1] >> 2) << 6) | usize::from(p[2] >> 2)
}

/// The palette (RGB triples) and every colour cell's index in it.
fn palette(frames: &[Frame]) -> (Vec<u8>, Vec<u8>) {
    const CELLS: usize = 1 << 18;
    // Each cell's first colour, while there are at most 256.
    let mut index = vec![u16::MAX; CELLS];
    let mut exact: Vec<u8> = Vec::new();
    'frames: for frame in frames {
        for p in frame.rgba.chunks_exact(4) {
            let c = cell(p);
            if index[c] == u16::MAX {
                if exact.len() == 256 * 3 {
                    exact.clear();
                    break 'frames;
                }
                index[c] = (exact.len() / 3) as u16;
                exact.extend_from_slice(&p[..3]);
            }
        }
    }
    if !exact.is_empty() {
        let lut = index
            .iter()
            .map(|&i| if i == u16::MAX { 0 } else { i as u8 })
            .collect();
        return (exact, lut);
    }
    let pixels: usize = frames.iter().map(|f| f.rgba.len() / 4).sum();
    let every = pixels.div_ceil(PALETTE_SAMPLES).max(1);
    let mut samples = Vec::new();
    for frame in frames {
        for pixel in frame.rgba.chunks_exact(4).step_by(every) {
            samples.extend_from_slice(pixel);
        }
    }
    let quant = color_quant::NeuQuant::new(NEUQUANT_SAMPLE, 256, &samples);
    let lut = (0..CELLS as u32)
        .map(|c| {
            let channel = |shift: u32| ((((c >> shift) & 63) << 2) | 2) as u8;
            quant.index_of(&[channel(12), channel(6), channel(0), 255]) as u8
        })
        .collect();
    (quant.color_map_rgb(), lut)
}

/// The animation of `frames` (all of one size), `delay_cs` hundredths of a second each and the
/// last held `hold_cs`.
pub(crate) fn encode(frames: &[Frame], delay_cs: u16, hold_cs: u16) -> Result<Vec<u8>, String> {
    let first = frames.first().ok_or("no frames were captured")?;
    let (w, h) = (first.width, first.height);
    if frames.iter().any(|f| (f.width, f.height) != (w, h)) {
        return Err("the canvas changed size while the frames were taken".into());
    }
    let (Ok(gw), Ok(gh)) = (u16::try_from(w), u16::try_from(h)) else {
        return Err(format!("{w}×{h} pixels is larger than a GIF holds"));
    };
    let (palette, lut) = palette(frames);
    let mut out = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut out, gw, gh, &palette)
            .map_err(|e| format!("the GIF could not be started: {e}"))?;
        encoder
            .set_repeat(gif::Repeat::Infinite)
            .map_err(|e| format!("the GIF could not be written: {e}"))?;
        let mut indices = vec![0u8; (w * h) as usize];
        for (k, frame) in frames.iter().enumerate() {
            for (index, p) in indices.iter_mut().zip(frame.rgba.chunks_exact(4)) {
                *index = lut[cell(p)];
            }
            let gif_frame = gif::Frame {
                width: gw,
                height: gh,
                delay: if k + 1 == frames.len() {
                    hold_cs
                } else {
                    delay_cs
                },
                buffer: Cow::Borrowed(&indices),
                ..gif::Frame::default()
            };
            encoder
                .write_frame(&gif_frame)
                .map_err(|e| format!("the GIF could not be written: {e}"))?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(k: u32) -> Frame {
        let (width, height) = (24u32, 16u32);
        let mut rgba = Vec::new();
        for y in 0..height {
            for x in 0..width {
                // A dark background with a bright dot that moves right.
                let on = x.abs_diff(2 + 4 * k) <= 1 && y.abs_diff(8) <= 1;
                rgba.extend_from_slice(if on {
                    &[255, 160, 40, 255]
                } else {
                    &[20, 20, 30, 255]
                });
            }
        }
        Frame {
            width,
            height,
            rgba,
        }
    }

    #[test]
    fn an_animation_decodes_frame_by_frame() {
        let frames: Vec<Frame> = (0..5).map(frame).collect();
        let bytes = encode(&frames, 5, 100).expect("encoded");
        assert!(bytes.starts_with(b"GIF89a"));
        let mut options = gif::DecodeOptions::new();
        options.set_color_output(gif::ColorOutput::RGBA);
        let mut decoder = options
            .read_info(std::io::Cursor::new(&bytes))
            .expect("a GIF");
        let mut delays = Vec::new();
        let mut k = 0;
        while let Some(decoded) = decoder.read_next_frame().expect("a frame") {
            assert_eq!((decoded.width, decoded.height), (24, 16));
            delays.push(decoded.delay);
            // The dot is where it was drawn, in its colour within the palette's error.
            let at = |x: u32, y: u32| {
                let i = ((y * 24 + x) * 4) as usize;
                [
                    decoded.buffer[i],
                    decoded.buffer[i + 1],
                    decoded.buffer[i + 2],
                ]
            };
            let dot = at(2 + 4 * k, 8);
            let background = at(20 - 2 * k.min(4), 1);
            assert!(dot[0] > 230 && dot[1].abs_diff(160) < 24, "{dot:?}");
            assert!(background[0] < 40 && background[2] < 50, "{background:?}");
            k += 1;
        }
        assert_eq!(k, 5);
        assert_eq!(delays, [5, 5, 5, 5, 100]);
    }

    #[test]
    fn many_colours_get_a_close_palette() {
        // A smooth gradient of 64 × 64 colours: NeuQuant's 256 stay close on average.
        let (width, height) = (64u32, 64u32);
        let mut rgba = Vec::new();
        for y in 0..height {
            for x in 0..width {
                rgba.extend_from_slice(&[(x * 4) as u8, (y * 4) as u8, 128, 255]);
            }
        }
        let frame = Frame {
            width,
            height,
            rgba,
        };
        let bytes = encode(std::slice::from_ref(&frame), 5, 5).expect("encoded");
        let mut options = gif::DecodeOptions::new();
        options.set_color_output(gif::ColorOutput::RGBA);
        let mut decoder = options
            .read_info(std::io::Cursor::new(&bytes))
            .expect("a GIF");
        let decoded = decoder.read_next_frame().expect("ok").expect("a frame");
        let error: f64 = decoded
            .buffer
            .iter()
            .zip(&frame.rgba)
            .map(|(&a, &b)| f64::from(a.abs_diff(b)))
            .sum::<f64>()
            / frame.rgba.len() as f64;
        assert!(error < 6.0, "mean error {error}");
    }

    #[test]
    fn mismatched_or_missing_frames_are_refused() {
        assert!(encode(&[], 5, 5).is_err());
        let mut other = frame(0);
        other.width = 12;
        other.rgba.truncate(12 * 16 * 4);
        assert!(
            encode(&[frame(0), other], 5, 5)
                .unwrap_err()
                .contains("changed size")
        );
    }
}
