//! Regions of the plane the sampler evaluates over: rectangles for histograms and field grids.

use crate::GpuError;

/// An axis-aligned rectangle in data space.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    /// The lower-left corner (x_min, y_min).
    pub min: [f32; 2],
    /// The upper-right corner (x_max, y_max).
    pub max: [f32; 2],
}

impl Rect {
    /// The rectangle from `min` to `max`.
    pub fn new(min: [f32; 2], max: [f32; 2]) -> Self {
        Self { min, max }
    }

    /// Width and height of one cell of an `nx × ny` grid over the rectangle, as the kernels use
    /// it: `(x_max − x_min)/nx`, `(y_max − y_min)/ny` in f32.
    pub fn cell(&self, nx: u32, ny: u32) -> [f32; 2] {
        [
            (self.max[0] - self.min[0]) / nx as f32,
            (self.max[1] - self.min[1]) / ny as f32,
        ]
    }

    /// The centre of cell `(i, j)` of an `nx × ny` grid, computed as `velocity_grid` computes it.
    pub fn cell_centre(&self, nx: u32, ny: u32, i: u32, j: u32) -> [f32; 2] {
        let [dx, dy] = self.cell(nx, ny);
        [
            self.min[0] + (i as f32 + 0.5) * dx,
            self.min[1] + (j as f32 + 0.5) * dy,
        ]
    }

    /// The histogram bin of `p` in an `nx × ny` grid (`j·nx + i`), as `particle_histogram.wgsl`
    /// computes it, or `None` outside the rectangle (or for a non-finite point).
    pub fn bin(&self, nx: u32, ny: u32, p: [f32; 2]) -> Option<usize> {
        let [sx, sy] = self.bin_scales(nx, ny);
        let fx = (p[0] - self.min[0]) * sx;
        let fy = (p[1] - self.min[1]) * sy;
        if fx >= 0.0 && fy >= 0.0 && fx < nx as f32 && fy < ny as f32 {
            let i = (fx as u32).min(nx - 1);
            let j = (fy as u32).min(ny - 1);
            Some(j as usize * nx as usize + i as usize)
        } else {
            None
        }
    }

    pub(super) fn bin_scales(&self, nx: u32, ny: u32) -> [f32; 2] {
        [
            nx as f32 / (self.max[0] - self.min[0]),
            ny as f32 / (self.max[1] - self.min[1]),
        ]
    }

    pub(super) fn validate(&self) -> Result<(), GpuError> {
        let ok = self.min.iter().chain(&self.max).all(|v| v.is_finite())
            && self.max[0] > self.min[0]
            && self.max[1] > self.min[1];
        if ok {
            Ok(())
        } else {
            Err(config_error(format!(
                "the rectangle must have finite corners with max > min, got {self:?}"
            )))
        }
    }
}

pub(super) fn config_error(message: String) -> GpuError {
    GpuError::Core(flowplay_core::Error::config(message))
}

/// Where to evaluate the velocity field: the centres of an `nx × ny` grid over `rect`, at time
/// `t`, for one class (conditional models) with guidance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FieldGrid {
    /// The time.
    pub t: f32,
    /// The region.
    pub rect: Rect,
    /// Cells across.
    pub nx: u32,
    /// Cells up.
    pub ny: u32,
    /// The class every point is evaluated for (`None`: unconditional, the null label).
    pub label: Option<u32>,
    /// Classifier-free guidance scale (1: the plain conditional field).
    pub cfg_scale: f32,
}
