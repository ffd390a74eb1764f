//! Seeded 2-D datasets, optionally labelled, and user-supplied point sets.

use std::f64::consts::PI;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::rng::Rng;

/// A set of 2-D points with optional class labels in `0..num_classes`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Points {
    /// The coordinates.
    pub xy: Vec<[f32; 2]>,
    /// One label per point, if the set is labelled.
    pub labels: Option<Vec<u32>>,
    /// Number of classes (0 when unlabelled).
    pub num_classes: u32,
}

impl Points {
    /// Unlabelled points.
    pub fn unlabelled(xy: Vec<[f32; 2]>) -> Self {
        Self {
            xy,
            labels: None,
            num_classes: 0,
        }
    }

    /// Labelled points; the number of classes is one more than the largest label.
    pub fn labelled(xy: Vec<[f32; 2]>, labels: Vec<u32>) -> Result<Self, Error> {
        if labels.len() != xy.len() {
            return Err(Error::config(format!(
                "{} labels for {} points",
                labels.len(),
                xy.len()
            )));
        }
        let num_classes = labels.iter().max().map_or(0, |&m| m + 1);
        Ok(Self {
            xy,
            labels: Some(labels),
            num_classes,
        })
    }

    /// Points with labels when there are some (`None`: unlabelled).
    pub fn with_labels(xy: Vec<[f32; 2]>, labels: Option<Vec<u32>>) -> Result<Self, Error> {
        match labels {
            Some(labels) => Self::labelled(xy, labels),
            None => Ok(Self::unlabelled(xy)),
        }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.xy.len()
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.xy.is_empty()
    }

    /// Root mean square of the coordinates: the data scale σ_data used by EDM preconditioning.
    pub fn rms(&self) -> f32 {
        if self.xy.is_empty() {
            return 1.0;
        }
        let sum: f64 = self
            .xy
            .iter()
            .map(|p| f64::from(p[0]).powi(2) + f64::from(p[1]).powi(2))
            .sum();
        (sum / (2 * self.xy.len()) as f64).sqrt() as f32
    }

    /// Mean of the coordinates.
    pub fn mean(&self) -> [f64; 2] {
        let n = self.xy.len().max(1) as f64;
        let (sx, sy) = self.xy.iter().fold((0.0, 0.0), |(sx, sy), p| {
            (sx + f64::from(p[0]), sy + f64::from(p[1]))
        });
        [sx / n, sy / n]
    }
}

/// The built-in datasets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dataset {
    /// Two interleaving half circles, exactly as QR §8: sklearn's `make_moons(n, noise=0.05)`
    /// scaled by 2. Labels: outer moon 0, inner moon 1.
    Moons,
    /// Eight Gaussians (std 0.35) on a circle of radius 2√2 (FFJORD's `8gaussians`). Labels: the
    /// mode, counter-clockwise from the positive x axis.
    #[serde(rename = "8gaussians")]
    EightGaussians,
    /// A 4×4 checkerboard on [−4, 4]² with 8 filled squares (FFJORD's `checkerboard`).
    Checkerboard,
    /// Two interleaved spirals (FFJORD's `2spirals`). Labels: the spiral.
    Spirals,
    /// Two concentric noisy circles of radius 3 and 1.5 (`make_circles(factor=0.5,
    /// noise=0.08)` × 3). Labels: outer 0, inner 1.
    Circles,
    /// The 2-D swiss roll (`make_swiss_roll(noise=1)` x and z, divided by 5).
    SwissRoll,
    /// The standard normal N(0, I).
    Normal,
}

impl Dataset {
    /// Every built-in dataset.
    pub const ALL: [Self; 7] = [
        Self::Moons,
        Self::EightGaussians,
        Self::Checkerboard,
        Self::Spirals,
        Self::Circles,
        Self::SwissRoll,
        Self::Normal,
    ];

    /// The name used on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Moons => "moons",
            Self::EightGaussians => "8gaussians",
            Self::Checkerboard => "checkerboard",
            Self::Spirals => "spirals",
            Self::Circles => "circles",
            Self::SwissRoll => "swiss-roll",
            Self::Normal => "normal",
        }
    }

    /// A one-line description for help texts and the UI.
    pub fn description(self) -> &'static str {
        match self {
            Self::Moons => "two interleaving half circles (QR §8), 2 classes",
            Self::EightGaussians => "eight Gaussians on a circle, 8 classes",
            Self::Checkerboard => "a 4×4 checkerboard, 8 filled squares",
            Self::Spirals => "two interleaved spirals, 2 classes",
            Self::Circles => "two concentric circles, 2 classes",
            Self::SwissRoll => "a rolled-up spiral sheet",
            Self::Normal => "the standard normal N(0, I)",
        }
    }

    /// Number of classes its labels have (0 when it has none).
    pub fn num_classes(self) -> u32 {
        match self {
            Self::Moons | Self::Spirals | Self::Circles => 2,
            Self::EightGaussians => 8,
            Self::Checkerboard | Self::SwissRoll | Self::Normal => 0,
        }
    }

    /// `n` points drawn with `seed`.
    pub fn sample(self, n: usize, seed: u64) -> Points {
        let mut rng = Rng::with_domain(seed, self.name());
        match self {
            Self::Moons => moons(n, &mut rng),
            Self::EightGaussians => eight_gaussians(n, &mut rng),
            Self::Checkerboard => checkerboard(n, &mut rng),
            Self::Spirals => spirals(n, &mut rng),
            Self::Circles => circles(n, &mut rng),
            Self::SwissRoll => swiss_roll(n, &mut rng),
            Self::Normal => {
                Points::unlabelled((0..n).map(|_| [rng.normal(), rng.normal()]).collect())
            }
        }
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dataset {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let key = s.trim().to_ascii_lowercase().replace('_', "-");
        let found = match key.as_str() {
            "moons" => Self::Moons,
            "8gaussians" | "eight-gaussians" | "8-gaussians" => Self::EightGaussians,
            "checkerboard" => Self::Checkerboard,
            "spirals" | "2spirals" | "two-spirals" => Self::Spirals,
            "circles" => Self::Circles,
            "swiss-roll" | "swissroll" => Self::SwissRoll,
            "normal" | "gaussian" => Self::Normal,
            _ => {
                let names: Vec<_> = Self::ALL.iter().map(|d| d.name()).collect();
                return Err(Error::config(format!(
                    "unknown dataset '{s}'; choose one of {}",
                    names.join(", ")
                )));
            }
        };
        Ok(found)
    }
}

/// `numpy.linspace(start, stop, n)`.
fn linspace(start: f64, stop: f64, n: usize) -> impl Iterator<Item = f64> {
    let step = if n > 1 {
        (stop - start) / (n - 1) as f64
    } else {
        0.0
    };
    (0..n).map(move |i| start + step * i as f64)
}

/// sklearn's `make_moons(n, shuffle=True, noise=0.05)`, scaled by 2 as in QR §8.
fn moons(n: usize, rng: &mut Rng) -> Points {
    let n_out = n / 2;
    let n_in = n - n_out;
    let mut items: Vec<([f64; 2], u32)> = Vec::with_capacity(n);
    items.extend(linspace(0.0, PI, n_out).map(|a| ([a.cos(), a.sin()], 0)));
    items.extend(linspace(0.0, PI, n_in).map(|a| ([1.0 - a.cos(), 1.0 - a.sin() - 0.5], 1)));
    rng.shuffle(&mut items);
    finish(items, 0.05, 2.0, rng)
}

/// Adds isotropic Gaussian noise of std `noise`, scales by `scale`, and splits into points and
/// labels.
fn finish(items: Vec<([f64; 2], u32)>, noise: f64, scale: f64, rng: &mut Rng) -> Points {
    let mut xy = Vec::with_capacity(items.len());
    let mut labels = Vec::with_capacity(items.len());
    for (p, label) in items {
        let nx = noise * f64::from(rng.normal());
        let ny = noise * f64::from(rng.normal());
        xy.push([((p[0] + nx) * scale) as f32, ((p[1] + ny) * scale) as f32]);
        labels.push(label);
    }
    Points::labelled(xy, labels).unwrap_or_default()
}

fn eight_gaussians(n: usize, rng: &mut Rng) -> Points {
    let mut items = Vec::with_capacity(n);
    for _ in 0..n {
        let mode = rng.below(8) as u32;
        let angle = f64::from(mode) * PI / 4.0;
        // FFJORD: centre 4·(cos, sin), std 0.5, everything divided by 1.414.
        let centre = [4.0 * angle.cos(), 4.0 * angle.sin()];
        items.push((
            [
                centre[0] + 0.5 * f64::from(rng.normal()),
                centre[1] + 0.5 * f64::from(rng.normal()),
            ],
            mode,
        ));
    }
    finish(items, 0.0, 1.0 / 1.414, rng)
}

fn checkerboard(n: usize, rng: &mut Rng) -> Points {
    let xy = (0..n)
        .map(|_| {
            let x1 = f64::from(rng.uniform()) * 4.0 - 2.0;
            let x2 = f64::from(rng.uniform()) - 2.0 * rng.below(2) as f64;
            let x2 = x2 + (x1.floor().rem_euclid(2.0));
            [(x1 * 2.0) as f32, (x2 * 2.0) as f32]
        })
        .collect();
    Points::unlabelled(xy)
}

fn spirals(n: usize, rng: &mut Rng) -> Points {
    let n_first = n / 2;
    let mut items = Vec::with_capacity(n);
    for i in 0..n {
        let arm = u32::from(i >= n_first);
        let r = f64::from(rng.uniform()).sqrt() * 540.0 * (2.0 * PI) / 360.0;
        let dx = -r.cos() * r + f64::from(rng.uniform()) * 0.5;
        let dy = r.sin() * r + f64::from(rng.uniform()) * 0.5;
        let sign = if arm == 0 { 1.0 } else { -1.0 };
        items.push(([sign * dx / 3.0, sign * dy / 3.0], arm));
    }
    rng.shuffle(&mut items);
    finish(items, 0.1, 1.0, rng)
}

fn circles(n: usize, rng: &mut Rng) -> Points {
    // sklearn's make_circles: n_out on the outer circle, the rest on the inner (factor 0.5).
    let n_out = n / 2;
    let n_in = n - n_out;
    let ring = |m: usize| (0..m).map(move |i| 2.0 * PI * i as f64 / m as f64);
    let mut items = Vec::with_capacity(n);
    items.extend(ring(n_out).map(|a| ([a.cos(), a.sin()], 0)));
    items.extend(ring(n_in).map(|a| ([0.5 * a.cos(), 0.5 * a.sin()], 1)));
    rng.shuffle(&mut items);
    finish(items, 0.08, 3.0, rng)
}

fn swiss_roll(n: usize, rng: &mut Rng) -> Points {
    let xy = (0..n)
        .map(|_| {
            let t = 1.5 * PI * (1.0 + 2.0 * f64::from(rng.uniform()));
            let x = t * t.cos() + f64::from(rng.normal());
            let z = t * t.sin() + f64::from(rng.normal());
            [(x / 5.0) as f32, (z / 5.0) as f32]
        })
        .collect();
    Points::unlabelled(xy)
}

/// The most points a CSV may hold (80 MB of coordinates).
pub const MAX_POINTS: usize = 10_000_000;
/// The largest coordinate accepted: larger values are a unit mistake, and squared they would
/// overflow the loss in f32.
pub const MAX_COORDINATE: f32 = 1e6;

/// [`parse_points_csv`] for bytes that may not be text: a file that is not UTF-8 gets the line
/// and column of its first invalid byte.
pub fn parse_points_csv_bytes(bytes: &[u8], source_name: &str) -> Result<Points, Error> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_points_csv(text, source_name),
        Err(e) => {
            let valid = &bytes[..e.valid_up_to()];
            let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
            let column =
                valid.len() - valid.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1) + 1;
            Err(Error::Csv {
                source_name: source_name.to_owned(),
                line,
                message: format!(
                    "byte 0x{:02x} at column {column} is not UTF-8 text: save the file as UTF-8 \
                     CSV",
                    bytes[e.valid_up_to()]
                ),
            })
        }
    }
}

/// Reads points from CSV text: columns `x,y` or `x,y,label`, an optional header line, `#`
/// comments and blank lines ignored. Every error names the line.
pub fn parse_points_csv(text: &str, source_name: &str) -> Result<Points, Error> {
    // A byte-order mark (Excel's "CSV UTF-8") is not part of the first value.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let err = |line: usize, message: String| Error::Csv {
        source_name: source_name.to_owned(),
        line,
        message,
    };
    let mut xy = Vec::new();
    let mut labels: Vec<u32> = Vec::new();
    let mut columns: Option<usize> = None;
    let mut header_seen = false;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let is_header = fields.first().is_some_and(|f| f.eq_ignore_ascii_case("x"));
        if is_header {
            if header_seen || !xy.is_empty() {
                return Err(err(line_no, "a header may only be the first line".into()));
            }
            header_seen = true;
            let expected: &[&str] = if fields.len() == 3 {
                &["x", "y", "label"]
            } else {
                &["x", "y"]
            };
            if fields.len() != expected.len()
                || fields
                    .iter()
                    .zip(expected)
                    .any(|(f, e)| !f.eq_ignore_ascii_case(e))
            {
                return Err(err(
                    line_no,
                    format!("expected the header 'x,y' or 'x,y,label', found '{line}'"),
                ));
            }
            columns = Some(fields.len());
            continue;
        }
        if fields.len() != 2 && fields.len() != 3 {
            return Err(err(
                line_no,
                format!(
                    "expected 2 or 3 comma-separated values (x,y[,label]), found {}",
                    fields.len()
                ),
            ));
        }
        match columns {
            None => columns = Some(fields.len()),
            Some(c) if c != fields.len() => {
                return Err(err(
                    line_no,
                    format!(
                        "expected {c} values like the lines before, found {}",
                        fields.len()
                    ),
                ));
            }
            Some(_) => {}
        }
        let number = |field: &str, name: &str| -> Result<f32, Error> {
            let value: f32 = field
                .parse()
                .map_err(|_| err(line_no, format!("{name} '{field}' is not a number")))?;
            if !value.is_finite() {
                Err(err(line_no, format!("{name} '{field}' is not finite")))
            } else if value.abs() > MAX_COORDINATE {
                Err(err(
                    line_no,
                    format!(
                        "{name} '{field}' is too large: coordinates must lie within \
                         ±{MAX_COORDINATE:e} (rescale the data; flowplay's datasets have a \
                         scale of about 1)"
                    ),
                ))
            } else {
                Ok(value)
            }
        };
        if xy.len() == MAX_POINTS {
            return Err(err(
                line_no,
                format!("more than {MAX_POINTS} points; flowplay reads at most that many"),
            ));
        }
        xy.push([number(fields[0], "x")?, number(fields[1], "y")?]);
        if let Some(field) = fields.get(2) {
            let label: u32 = field.parse().map_err(|_| {
                err(
                    line_no,
                    format!("label '{field}' is not a class number (0, 1, 2, …)"),
                )
            })?;
            if label >= 1024 {
                return Err(err(
                    line_no,
                    format!("label {label} is too large (at most 1023)"),
                ));
            }
            labels.push(label);
        }
    }
    if xy.is_empty() {
        return Err(err(text.lines().count().max(1), "no points found".into()));
    }
    if columns == Some(3) {
        Points::labelled(xy, labels)
    } else {
        Ok(Points::unlabelled(xy))
    }
}

/// Writes points as CSV with the header `x,y` (or `x,y,label` when labelled).
pub fn points_to_csv(points: &Points) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(points.len() * 24 + 16);
    match &points.labels {
        Some(labels) => {
            out.push_str("x,y,label\n");
            for (p, l) in points.xy.iter().zip(labels) {
                let _ = writeln!(out, "{},{},{}", p[0], p[1], l);
            }
        }
        None => {
            out.push_str("x,y\n");
            for p in &points.xy {
                let _ = writeln!(out, "{},{}", p[0], p[1]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moons_match_sklearn_geometry() {
        let points = Dataset::Moons.sample(20_000, 0);
        let labels = points.labels.as_ref().unwrap();
        assert_eq!(points.num_classes, 2);
        assert_eq!(labels.iter().filter(|&&l| l == 0).count(), 10_000);
        // Mean of 2·moons: x̄ = 2·(0 + 1)/2 = 1, ȳ = 2·(2/π + (1/2 − 2/π))/2 = 1/2.
        let mean = points.mean();
        assert!((mean[0] - 1.0).abs() < 0.01, "{mean:?}");
        assert!((mean[1] - 0.5).abs() < 0.01, "{mean:?}");
        // Distance of the outer moon from its centre is 2 ± noise.
        let mut spread = 0.0;
        for (p, &l) in points.xy.iter().zip(labels) {
            let centre = if l == 0 { [0.0, 0.0] } else { [2.0, 1.0] };
            let r = (f64::from(p[0]) - centre[0]).hypot(f64::from(p[1]) - centre[1]);
            spread += (r - 2.0).powi(2);
        }
        // Radial noise std 2·0.05 = 0.1.
        let radial_std = (spread / 20_000.0).sqrt();
        assert!((radial_std - 0.1).abs() < 0.01, "{radial_std}");
    }

    #[test]
    fn dataset_statistics() {
        for dataset in Dataset::ALL {
            let points = dataset.sample(50_000, 1);
            assert_eq!(points.len(), 50_000);
            assert!(
                points
                    .xy
                    .iter()
                    .all(|p| p[0].is_finite() && p[1].is_finite())
            );
            let mean = points.mean();
            let rms = points.rms();
            match dataset {
                Dataset::Normal => {
                    assert!(mean[0].abs() < 0.02 && mean[1].abs() < 0.02);
                    assert!((rms - 1.0).abs() < 0.01);
                }
                Dataset::EightGaussians | Dataset::Circles | Dataset::Spirals => {
                    assert!(
                        mean[0].abs() < 0.05 && mean[1].abs() < 0.05,
                        "{dataset}: {mean:?}"
                    );
                }
                Dataset::Checkerboard => {
                    assert!(mean[0].abs() < 0.05 && mean[1].abs() < 0.05);
                    assert!(
                        points
                            .xy
                            .iter()
                            .all(|p| p[0].abs() <= 4.0 && p[1].abs() <= 4.0)
                    );
                    // Filled squares: floor(x/2) + floor(y/2) is even.
                    assert!(points.xy.iter().all(|p| {
                        ((p[0] / 2.0).floor() + (p[1] / 2.0).floor()).rem_euclid(2.0) < 0.5
                    }));
                }
                Dataset::Moons | Dataset::SwissRoll => {}
            }
            assert!(rms > 0.5 && rms < 4.0, "{dataset}: rms {rms}");
            assert_eq!(points.num_classes, dataset.num_classes());
            if let Some(labels) = &points.labels {
                // Classes are balanced.
                for class in 0..points.num_classes {
                    let share = labels.iter().filter(|&&l| l == class).count() as f64 / 50_000.0;
                    let expected = 1.0 / f64::from(points.num_classes);
                    assert!(
                        (share - expected).abs() < 0.02,
                        "{dataset} class {class}: {share}"
                    );
                }
            }
        }
    }

    #[test]
    fn eight_gaussians_labels_are_their_modes() {
        let points = Dataset::EightGaussians.sample(4000, 2);
        for (p, &l) in points.xy.iter().zip(points.labels.as_ref().unwrap()) {
            let angle = f64::from(l) * PI / 4.0;
            let centre = [4.0 / 1.414 * angle.cos(), 4.0 / 1.414 * angle.sin()];
            let d = (f64::from(p[0]) - centre[0]).hypot(f64::from(p[1]) - centre[1]);
            assert!(d < 2.0, "point {p:?} far from mode {l}");
        }
    }

    #[test]
    fn same_seed_same_points() {
        for dataset in Dataset::ALL {
            assert_eq!(dataset.sample(100, 5), dataset.sample(100, 5));
            assert_ne!(dataset.sample(100, 5), dataset.sample(100, 6));
        }
    }

    #[test]
    fn dataset_names_round_trip() {
        for dataset in Dataset::ALL {
            assert_eq!(dataset.name().parse::<Dataset>().unwrap(), dataset);
        }
        let err = "mooons".parse::<Dataset>().unwrap_err().to_string();
        assert!(err.contains("unknown dataset 'mooons'") && err.contains("checkerboard"));
    }

    #[test]
    fn csv_byte_order_marks_and_non_utf8_are_handled() {
        let with_bom = parse_points_csv("\u{feff}x,y\n1,2\n", "bom.csv").unwrap();
        assert_eq!(with_bom.xy, vec![[1.0, 2.0]]);
        let bytes = b"x,y\n1,2\n3,\xe94\n";
        let text = parse_points_csv_bytes(bytes, "latin1.csv")
            .unwrap_err()
            .to_string();
        assert_eq!(
            text,
            "latin1.csv, line 3: byte 0xe9 at column 3 is not UTF-8 text: save the file as \
             UTF-8 CSV"
        );
        assert_eq!(
            parse_points_csv_bytes(b"5,6\n", "ok.csv").unwrap().xy,
            vec![[5.0, 6.0]]
        );
    }

    #[test]
    fn csv_round_trip_and_errors() {
        let points = Dataset::Moons.sample(10, 3);
        let text = points_to_csv(&points);
        assert!(text.starts_with("x,y,label\n"));
        assert_eq!(parse_points_csv(&text, "a.csv").unwrap(), points);

        let plain = parse_points_csv("1,2\n# comment\n\n3.5,-4e-1\n", "b.csv").unwrap();
        assert_eq!(plain.xy, vec![[1.0, 2.0], [3.5, -0.4]]);
        assert!(plain.labels.is_none());

        let cases = [
            (
                "x,y\n1,2\n3,oops\n",
                "b.csv, line 3: y 'oops' is not a number",
            ),
            (
                "x,y\n1,2,0\n",
                "b.csv, line 2: expected 2 values like the lines before, found 3",
            ),
            (
                "1,2\n3\n",
                "b.csv, line 2: expected 2 or 3 comma-separated values",
            ),
            (
                "1,2,-1\n",
                "b.csv, line 1: label '-1' is not a class number",
            ),
            ("1,inf\n", "b.csv, line 1: y 'inf' is not finite"),
            ("1,2\n3e38,0\n", "b.csv, line 2: x '3e38' is too large"),
            ("x,z\n", "b.csv, line 1: expected the header"),
            ("x,y\n", "b.csv, line 1: no points found"),
            (
                "1,2\nx,y\n",
                "b.csv, line 2: a header may only be the first line",
            ),
        ];
        for (text, expected) in cases {
            let message = parse_points_csv(text, "b.csv").unwrap_err().to_string();
            assert!(
                message.starts_with(expected),
                "{message:?} should start with {expected:?}"
            );
        }
    }
}
