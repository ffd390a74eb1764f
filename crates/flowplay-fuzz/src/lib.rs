//! A fuzz harness for flowplay's parsers that runs on stable Rust (cargo-fuzz needs nightly).
//!
//! Each [`Target`] has a corpus of valid inputs. An execution takes one, mutates it with choices
//! read from random bytes through [`arbitrary::Unstructured`] (byte flips, insertions of bytes and
//! of hostile tokens such as `NaN`, `1e39` or a huge length, deletions, duplications, splices
//! with another seed, truncation), and hands it to the parser under `catch_unwind`. A panic is a
//! crash; so is an accepted input that breaks the parser's promise (non-finite points, a query
//! that does not read back as itself). The inputs are random bytes from a seeded counter-based
//! stream: a crash is reproduced by its target, seed and execution number.

use std::panic::{AssertUnwindSafe, catch_unwind};

use arbitrary::Unstructured;
use flowplay_core::data::{Dataset, parse_points_csv_bytes, points_to_csv};
use flowplay_core::flow::FlowModel;
use flowplay_core::mlp::{Mlp, MlpConfig};
use flowplay_core::picture::{PictureOptions, points_from_picture};
use flowplay_core::rng::Rng;
use flowplay_core::weights;

/// A parser under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// `data::parse_points_csv_bytes`.
    Csv,
    /// `weights::from_safetensors`.
    Safetensors,
    /// The app's URL state (`flowplay_app::normalise_query`).
    Query,
    /// `picture::points_from_picture` (PNG and JPEG).
    Picture,
}

impl Target {
    /// Every target.
    pub const ALL: [Self; 4] = [Self::Csv, Self::Safetensors, Self::Query, Self::Picture];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Safetensors => "safetensors",
            Self::Query => "query",
            Self::Picture => "picture",
        }
    }

    /// Valid inputs to mutate.
    pub fn corpus(self) -> Vec<Vec<u8>> {
        match self {
            Self::Csv => vec![
                points_to_csv(&Dataset::Moons.sample(12, 1)).into_bytes(),
                points_to_csv(&Dataset::Spirals.sample(6, 2)).into_bytes(),
                b"1,2\n# comment\n\n3.5,-4e-1\n".to_vec(),
                b"\xef\xbb\xbfx,y,label\n0,0,1\n1,1,0\n".to_vec(),
            ],
            Self::Safetensors => {
                let mut out = Vec::new();
                for (hidden, classes) in [(4, 0), (3, 2)] {
                    let config = MlpConfig {
                        hidden,
                        depth: 1,
                        t_dim: 2,
                        t_scale: 1.0,
                        num_classes: classes,
                    };
                    if let Ok(mlp) = Mlp::new(config) {
                        let spec = flowplay_core::flow::ModelSpec {
                            mlp: config,
                            ..weights::default_spec()
                        };
                        if let Ok(model) = FlowModel::new(spec, mlp.init_params(1)) {
                            out.push(weights::to_safetensors(&model));
                        }
                    }
                }
                out
            }
            Self::Query => vec![
                b"dataset=spirals&path=ve&solver=heun&steps=12&train=1".to_vec(),
                b"#layers=field,density&particles=5000&classes=1&cfg=2.5&field_class=1".to_vec(),
                flowplay_app::normalise_query("")
                    .unwrap_or_default()
                    .into_bytes(),
            ],
            Self::Picture => {
                let grey =
                    image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(9, 7, |x, y| {
                        image::Luma([(x * 29 + y * 13) as u8])
                    }));
                let rgba =
                    image::DynamicImage::ImageRgba8(image::RgbaImage::from_fn(5, 3, |x, y| {
                        image::Rgba([0, (x * 50) as u8, 0, (y * 120) as u8])
                    }));
                let colour =
                    image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(16, 16, |x, y| {
                        image::Rgb([(x * 16) as u8, (y * 16) as u8, 40])
                    }));
                let encode = |img: &image::DynamicImage, format| {
                    let mut out = Vec::new();
                    img.write_to(&mut std::io::Cursor::new(&mut out), format)
                        .map(|()| out)
                        .ok()
                };
                [
                    encode(&grey, image::ImageFormat::Png),
                    encode(&rgba, image::ImageFormat::Png),
                    encode(&colour, image::ImageFormat::Jpeg),
                    encode(&grey, image::ImageFormat::Jpeg),
                ]
                .into_iter()
                .flatten()
                .collect()
            }
        }
    }

    /// Runs the parser on `input`: `Err` with a description when it broke a promise (a panic is
    /// caught by the caller).
    pub fn check(self, input: &[u8]) -> Result<(), String> {
        match self {
            Self::Csv => {
                let Ok(points) = parse_points_csv_bytes(input, "fuzz.csv") else {
                    return Ok(());
                };
                if points.xy.iter().flatten().any(|v| !v.is_finite()) {
                    return Err("accepted a non-finite coordinate".into());
                }
                let again = parse_points_csv_bytes(points_to_csv(&points).as_bytes(), "again")
                    .map_err(|e| format!("its own CSV does not read back: {e}"))?;
                if again != points {
                    return Err("its own CSV reads back different points".into());
                }
                Ok(())
            }
            Self::Safetensors => {
                let Ok(loaded) = weights::from_safetensors(input, "fuzz", &weights::default_spec())
                else {
                    return Ok(());
                };
                if loaded.model.params.iter().any(|v| !v.is_finite()) {
                    return Err("accepted non-finite weights".into());
                }
                Ok(())
            }
            Self::Query => {
                let text = String::from_utf8_lossy(input);
                let Ok(query) = flowplay_app::normalise_query(&text) else {
                    return Ok(());
                };
                let again = flowplay_app::normalise_query(&query)
                    .map_err(|e| format!("its own query is refused: {e}"))?;
                if again != query {
                    return Err(format!("'{query}' reads back as '{again}'"));
                }
                Ok(())
            }
            Self::Picture => {
                let Ok(points) = points_from_picture(input, "fuzz.png", &PICTURE) else {
                    return Ok(());
                };
                let extent = PICTURE.extent;
                if points.len() != PICTURE.n {
                    return Err(format!("drew {} points, not {}", points.len(), PICTURE.n));
                }
                if points
                    .xy
                    .iter()
                    .flatten()
                    .any(|v| !(v.is_finite() && v.abs() <= extent))
                {
                    return Err("drew a point outside the picture".into());
                }
                Ok(())
            }
        }
    }
}

/// A small draw per picture, so that an execution is about decoding.
const PICTURE: PictureOptions = PictureOptions {
    density: flowplay_core::picture::Density::Darkness,
    n: 64,
    seed: 0,
    extent: 3.0,
};

/// Tokens that break parsers: special numbers, separators, lengths near the limits.
const HOSTILE: &[&[u8]] = &[
    b"NaN",
    b"inf",
    b"-inf",
    b"1e39",
    b"3e38",
    b"-0",
    b"1e-46",
    b"18446744073709551615",
    b"99999999999999999999",
    b",",
    b"\n",
    b"\r\n",
    b"=",
    b"&",
    b"#",
    b"%",
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b"\xef\xbb\xbf",
    b"\xff",
    b"\xe9",
    b"\0",
    b"x,y",
    b"label",
    b"F16",
    b"BF16",
    b"I64",
    b"data_offsets",
    b"shape",
    b"__metadata__",
    b"IHDR",
    b"IDAT",
    b"IEND",
    b"\xff\xd8\xff",
    b"\xff\xc0",
    b"\xff\xda",
    b"\x7f\xff\xff\xff",
    b"\xff\xff\xff\xff\xff\xff\xff\x7f",
];

/// One mutation of `seed` (with `other` for splices), its choices read from `u`.
pub fn mutate(seed: &[u8], other: &[u8], u: &mut Unstructured<'_>) -> Vec<u8> {
    let mut data = seed.to_vec();
    let rounds = u.int_in_range(1..=8_u8).unwrap_or(1);
    for _ in 0..rounds {
        let len = data.len();
        let at = u.choose_index(len + 1).unwrap_or(0);
        match u.int_in_range(0..=7_u8).unwrap_or(0) {
            0 if len > 0 => {
                let i = at.min(len - 1);
                data[i] ^= 1 << u.int_in_range(0..=7_u8).unwrap_or(0);
            }
            1 if len > 0 => {
                let i = at.min(len - 1);
                data[i] = u.arbitrary().unwrap_or(0);
            }
            2 => {
                let token = HOSTILE[u.choose_index(HOSTILE.len()).unwrap_or(0)];
                data.splice(at..at, token.iter().copied());
            }
            3 => {
                let end = (at + u.int_in_range(1..=64_usize).unwrap_or(1)).min(len);
                data.drain(at..end);
            }
            4 if len > 0 => {
                let start = at.min(len - 1);
                let end = (start + u.int_in_range(1..=64_usize).unwrap_or(1)).min(len);
                let copy = data[start..end].to_vec();
                let to = u.choose_index(data.len() + 1).unwrap_or(0);
                data.splice(to..to, copy);
            }
            5 if !other.is_empty() => {
                let from = u.choose_index(other.len()).unwrap_or(0);
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            6 => data.truncate(at),
            _ => {
                // Overwrite a little-endian u64 (a safetensors header length) or digits.
                let value: u64 = u.arbitrary().unwrap_or(u64::MAX);
                let end = (at + 8).min(len);
                data.splice(at..end, value.to_le_bytes());
            }
        }
    }
    data
}

/// What a fuzzing run found.
#[derive(Debug, Default)]
pub struct Report {
    /// Inputs run.
    pub executions: u64,
    /// Inputs the parser accepted.
    pub accepted: u64,
    /// Panics and broken promises, with the execution number and the input.
    pub crashes: Vec<(u64, String, Vec<u8>)>,
}

/// Runs `executions` mutated inputs through `target`, from `seed`.
pub fn fuzz(target: Target, executions: u64, seed: u64) -> Report {
    let corpus = target.corpus();
    let mut rng = Rng::with_domain(seed, target.name());
    let mut report = Report::default();
    let mut entropy = vec![0_u8; 256];
    for execution in 0..executions {
        for chunk in entropy.chunks_exact_mut(4) {
            chunk.copy_from_slice(&rng.next_u32().to_le_bytes());
        }
        let mut u = Unstructured::new(&entropy);
        let seed_input = &corpus[u.choose_index(corpus.len()).unwrap_or(0)];
        let other = &corpus[u.choose_index(corpus.len()).unwrap_or(0)];
        let input = mutate(seed_input, other, &mut u);
        report.executions += 1;
        match catch_unwind(AssertUnwindSafe(|| target.check(&input))) {
            Ok(Ok(())) => {
                if accepted(target, &input) {
                    report.accepted += 1;
                }
            }
            Ok(Err(why)) => report.crashes.push((execution, why, input)),
            Err(panic) => {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "a panic".to_owned());
                report
                    .crashes
                    .push((execution, format!("panic: {why}"), input));
            }
        }
    }
    report
}

/// Whether the parser accepted `input` (for the report's share of valid inputs). Cheap enough
/// for the short CI run, and only counted, never judged.
fn accepted(target: Target, input: &[u8]) -> bool {
    match target {
        Target::Csv => parse_points_csv_bytes(input, "f").is_ok(),
        Target::Safetensors => {
            weights::from_safetensors(input, "f", &weights::default_spec()).is_ok()
        }
        Target::Query => flowplay_app::normalise_query(&String::from_utf8_lossy(input)).is_ok(),
        Target::Picture => points_from_picture(input, "f", &PICTURE).is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The short run CI does on every target (the long run is `flowplay-fuzz`, see the README).
    #[test]
    fn a_short_fuzz_run_finds_no_crash() {
        for target in Target::ALL {
            let report = fuzz(target, 3000, 7);
            assert!(
                report.crashes.is_empty(),
                "{}: {:?}",
                target.name(),
                report.crashes.first().map(|(n, why, input)| (
                    n,
                    why,
                    String::from_utf8_lossy(input)
                ))
            );
            assert_eq!(report.executions, 3000);
            // The mutations are mild enough that some inputs stay valid, and hostile enough
            // that most do not.
            assert!(
                report.accepted > 0 && report.accepted < 3000,
                "{}: {}",
                target.name(),
                report.accepted
            );
        }
    }

    #[test]
    fn every_seed_is_accepted() {
        for target in Target::ALL {
            for input in target.corpus() {
                assert!(
                    accepted(target, &input),
                    "{}: {:?}",
                    target.name(),
                    String::from_utf8_lossy(&input)
                );
            }
        }
    }
}
