//! CPU compute kernels: a bounds-checked matrix multiply and vectorisable elementwise maths.
//!
//! The elementwise functions avoid branches and library calls so that LLVM turns their loops into
//! SIMD code; `f32::exp` and `f32::sin_cos` are scalar calls into libm, and with them the time
//! embedding and the `SiLU`s alone cost more than the matrix multiplies of a training step.

/// A read-only view of a matrix inside a slice, with arbitrary (non-negative) strides, so that a
/// transpose is free: `W` stored `[out, in]` row-major is `Wᵀ` with its strides swapped.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A `rows × cols` row-major matrix at the start of `data`.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols, 1)
    }

    /// A matrix with explicit strides, in elements.
    pub fn strided(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        let view = Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        };
        assert!(
            view.fits(),
            "matrix view {rows}×{cols} (strides {row_stride}, {col_stride}) exceeds its slice of {}",
            data.len()
        );
        view
    }

    /// The transpose (no copy).
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Rows `start..end` of this view.
    pub fn rows(self, start: usize, end: usize) -> Self {
        assert!(
            start <= end && end <= self.rows,
            "row range {start}..{end} of {}",
            self.rows
        );
        if start == end {
            return Self { rows: 0, ..self };
        }
        Self {
            data: &self.data[start * self.row_stride..],
            rows: end - start,
            ..self
        }
    }

    fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride
                < self.data.len()
    }
}

/// `C ← α·A·B + β·C`, with `C` a `rows × cols` row-major matrix at the start of `c`
/// (row stride `c_stride`).
///
/// Panics if the shapes disagree or a view does not fit in its slice.
pub fn gemm(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: &mut [f32], c_stride: usize) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(
        k, b.rows,
        "gemm: inner dimensions differ ({k} vs {})",
        b.rows
    );
    assert!(
        m == 0 || n == 0 || (m - 1) * c_stride + n <= c.len(),
        "gemm: output {m}×{n} (stride {c_stride}) exceeds its slice of {}",
        c.len()
    );
    assert!(c_stride >= n || m <= 1, "gemm: output rows overlap");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        for row in 0..m {
            for value in &mut c[row * c_stride..row * c_stride + n] {
                *value *= beta;
            }
        }
        return;
    }
    #[allow(
        unsafe_code,
        reason = "matrixmultiply takes raw pointers; every view was bounds-checked above \
                  (MatRef::strided and the output assertion), strides are non-negative, and the \
                  output slice is borrowed mutably, so it aliases neither input"
    )]
    // SAFETY: `a` is m×k and `b` is k×n with every addressed element inside their slices (checked
    // when the views were made); `c` holds m rows of n elements at stride `c_stride` (checked
    // above) and is exclusively borrowed.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr(),
            a.row_stride as isize,
            a.col_stride as isize,
            b.data.as_ptr(),
            b.row_stride as isize,
            b.col_stride as isize,
            beta,
            c.as_mut_ptr(),
            c_stride as isize,
            1,
        );
    }
}

/// [`gemm`] with the rows of `A` and `C` split across threads: for the few h×h×h products of a
/// step that would otherwise run on one core while the others wait.
pub fn gemm_parallel(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    c: &mut [f32],
    c_stride: usize,
) {
    let m = a.rows;
    let parts = crate::par::threads().min(m / 32).max(1);
    if parts == 1 {
        gemm(alpha, a, b, beta, c, c_stride);
        return;
    }
    let mut rest = c;
    let mut jobs: Vec<(MatRef<'_>, &mut [f32])> = Vec::with_capacity(parts);
    for range in crate::par::split_even(m, parts) {
        let take = if range.end == m {
            rest.len()
        } else {
            range.len() * c_stride
        };
        jobs.push((
            a.rows(range.start, range.end),
            crate::par::take_front(&mut rest, take),
        ));
    }
    crate::par::for_each_mut(&mut jobs, |(a_rows, c_rows)| {
        gemm(alpha, *a_rows, b, beta, c_rows, c_stride);
    });
}

const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// 1.5·2²³: adding and subtracting it rounds an f32 of magnitude below 2²² to the nearest
/// integer with plain SSE2 arithmetic (`f32::round` is a libm call that stops vectorisation).
const ROUNDER: f32 = 12_582_912.0;

/// Bit pattern of `ROUNDER`: `(v + ROUNDER).to_bits() − ROUNDER_BITS` is round(v) as a two's
/// complement integer, for |v| < 2²² — an integer conversion that vectorises (Rust's `as i32`
/// saturates and handles NaN, which compiles to scalar code).
const ROUNDER_BITS: u32 = 0x4B40_0000;

// ln 2 split in two (Cody–Waite): the high part has few mantissa bits, so `k · LN2_HI` is exact.
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;

/// `eˣ` to about 2 ulp for `x` in `[-87, 88]` (clamped outside), written without branches so that
/// loops over it vectorise.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2_E + ROUNDER;
    let k = shifted - ROUNDER;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    // Taylor series of eʳ for |r| ≤ ln2/2: the first omitted term is below 1.2e-7 relatively.
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r / 5040.0))))));
    // Multiply by 2ᵏ by building the float's exponent field directly (k ∈ [−126, 127]).
    let k_bits = shifted.to_bits().wrapping_sub(ROUNDER_BITS);
    let scale = f32::from_bits(k_bits.wrapping_add(127) << 23);
    p * scale
}

/// The logistic sigmoid `1 / (1 + e⁻ˣ)`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

// π/2 split in three parts for the range reduction of sin and cos (Cody–Waite), good for
// |x| up to a few thousand, which covers the time embedding's t·1000 arguments.
const PIO2_1: f32 = 1.570_312_5;
const PIO2_2: f32 = 4.837_513e-4;
const PIO2_3: f32 = 7.549_79e-8;
const TWO_OVER_PI: f32 = std::f32::consts::FRAC_2_PI;

/// `(sin x, cos x)` to about 1e-7 absolute for |x| ≤ 4000, without branches.
#[inline(always)]
pub fn sin_cos(x: f32) -> (f32, f32) {
    let shifted = x * TWO_OVER_PI + ROUNDER;
    let k = shifted - ROUNDER;
    let r = ((x - k * PIO2_1) - k * PIO2_2) - k * PIO2_3;
    let r2 = r * r;
    // Taylor polynomials on |r| ≤ π/4 (first omitted terms below 2e-9).
    let sin_r = r
        * (1.0
            + r2 * (-1.0 / 6.0
                + r2 * (1.0 / 120.0 + r2 * (-1.0 / 5040.0 + r2 * (1.0 / 362_880.0)))));
    let cos_r = 1.0
        + r2 * (-0.5
            + r2 * (1.0 / 24.0
                + r2 * (-1.0 / 720.0 + r2 * (1.0 / 40_320.0 + r2 * (-1.0 / 3_628_800.0)))));
    // Quadrant q = k mod 4: sin x = (sin r, cos r, −sin r, −cos r)[q]; cos x = sin(x + π/2).
    // Written with bit operations so the loop vectorises.
    let q = shifted.to_bits().wrapping_sub(ROUNDER_BITS);
    let swap = 0_u32.wrapping_sub(q & 1);
    let (sin_bits, cos_bits) = (sin_r.to_bits(), cos_r.to_bits());
    let s = (sin_bits & !swap) | (cos_bits & swap);
    let c = (cos_bits & !swap) | (sin_bits & swap);
    let sin_sign = (q & 2) << 30;
    let cos_sign = (q.wrapping_add(1) & 2) << 30;
    (f32::from_bits(s ^ sin_sign), f32::from_bits(c ^ cos_sign))
}

/// In place: `z ← SiLU(z)` and `sig ← sigmoid(z)` (kept for the backward pass).
pub fn silu_forward(z: &mut [f32], sig: &mut [f32]) {
    debug_assert_eq!(z.len(), sig.len());
    for (value, s) in z.iter_mut().zip(sig.iter_mut()) {
        let sigma = sigmoid(*value);
        *s = sigma;
        *value *= sigma;
    }
}

/// In place: `grad ← grad · SiLU'(z)`, from the stored activation `a = SiLU(z)` and `s = σ(z)`:
/// `SiLU'(z) = σ(z)·(1 + z·(1 − σ(z))) = s + a·(1 − s)`.
pub fn silu_backward(grad: &mut [f32], activation: &[f32], sig: &[f32]) {
    debug_assert_eq!(grad.len(), activation.len());
    debug_assert_eq!(grad.len(), sig.len());
    for ((g, &a), &s) in grad.iter_mut().zip(activation).zip(sig) {
        *g *= s + a * (1.0 - s);
    }
}

/// Fills each of the `rows` rows of `out` (stride `stride`, width `bias.len()`) with `bias`.
pub fn broadcast_rows(out: &mut [f32], rows: usize, stride: usize, bias: &[f32]) {
    for row in 0..rows {
        out[row * stride..row * stride + bias.len()].copy_from_slice(bias);
    }
}

/// `acc[j] += Σ_rows m[row, j]` for a row-major `rows × acc.len()` matrix.
pub fn add_column_sums(acc: &mut [f32], m: &[f32], rows: usize) {
    let cols = acc.len();
    for row in m.chunks_exact(cols).take(rows) {
        for (a, &v) in acc.iter_mut().zip(row) {
            *a += v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate() {
        let mut worst = 0.0_f64;
        let mut x = -80.0_f32;
        while x < 80.0 {
            let exact = f64::from(x).exp();
            let rel = ((f64::from(exp(x)) - exact) / exact).abs();
            worst = worst.max(rel);
            x += 0.013_7;
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert!(exp(-200.0) < 1e-37);
        assert!(exp(200.0).is_finite());
    }

    #[test]
    fn sin_cos_is_accurate() {
        let mut worst = 0.0_f64;
        let mut x = -1200.0_f32;
        while x < 1200.0 {
            let (s, c) = sin_cos(x);
            let xd = f64::from(x);
            worst = worst
                .max((f64::from(s) - xd.sin()).abs())
                .max((f64::from(c) - xd.cos()).abs());
            x += 0.071_3;
        }
        assert!(worst < 2e-7, "worst absolute error {worst}");
    }

    #[test]
    fn gemm_matches_naive_with_transposes() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let w: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.91).cos()).collect();
        let mut c = vec![1.0_f32; m * n];
        // C = 2·A·Wᵀ + 0.5·C with W stored [n, k].
        gemm(
            2.0,
            MatRef::row_major(&a, m, k),
            MatRef::row_major(&w, n, k).t(),
            0.5,
            &mut c,
            n,
        );
        for i in 0..m {
            for j in 0..n {
                let dot: f32 = (0..k).map(|p| a[i * k + p] * w[j * k + p]).sum();
                assert!((c[i * n + j] - (2.0 * dot + 0.5)).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn parallel_gemm_matches_serial() {
        let (m, k, n) = (133, 70, 41);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.13).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.29).cos()).collect();
        // Output rows strided inside a wider buffer, as for the time columns of net.0.
        let stride = n + 3;
        let mut serial = vec![0.5_f32; m * stride];
        let mut parallel = serial.clone();
        gemm(
            1.5,
            MatRef::row_major(&a, m, k),
            MatRef::row_major(&b, k, n),
            0.7,
            &mut serial,
            stride,
        );
        gemm_parallel(
            1.5,
            MatRef::row_major(&a, m, k),
            MatRef::row_major(&b, k, n),
            0.7,
            &mut parallel,
            stride,
        );
        assert!(
            serial
                .iter()
                .zip(&parallel)
                .all(|(x, y)| (x - y).abs() < 1e-5)
        );
    }

    #[test]
    #[should_panic(expected = "exceeds its slice")]
    fn gemm_rejects_a_view_that_does_not_fit() {
        let a = vec![0.0_f32; 5];
        let _ = MatRef::row_major(&a, 2, 3);
    }

    #[test]
    fn silu_backward_matches_finite_difference() {
        let z0: Vec<f32> = (-20..=20).map(|i| i as f32 * 0.4).collect();
        let mut a = z0.clone();
        let mut s = vec![0.0; a.len()];
        silu_forward(&mut a, &mut s);
        let mut g = vec![1.0; a.len()];
        silu_backward(&mut g, &a, &s);
        for (i, &z) in z0.iter().enumerate() {
            let h = 1e-3_f64;
            let silu = |v: f64| v / (1.0 + (-v).exp());
            let fd = (silu(f64::from(z) + h) - silu(f64::from(z) - h)) / (2.0 * h);
            assert!((f64::from(g[i]) - fd).abs() < 1e-5, "z = {z}");
        }
    }
}
