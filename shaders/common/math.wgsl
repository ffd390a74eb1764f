// Elementary functions with the CPU's algorithms (flowplay_core::kernels; keep in sync), so the
// GPU and CPU agree to an ulp or two whatever the vendor's builtin precision: Vulkan only
// promises 2^-11 absolute for sin/cos, and t·1000 time embeddings need far better.
//
// The CPU rounds with the "magic number" trick (x + 1.5·2^23) − 1.5·2^23; here that must be
// `round`, since shader compilers may simplify (a + b) − b to a (Mesa's NIR does). Both round
// half to even.

const LOG2_E: f32 = 1.4426950408889634;
const LN2_HI: f32 = 0.69314575;
const LN2_LO: f32 = 1.4286068e-6;
const PIO2_1: f32 = 1.5703125;
const PIO2_2: f32 = 4.837513e-4;
const PIO2_3: f32 = 7.54979e-8;
const TWO_OVER_PI: f32 = 0.6366197723675814;
const TAU: f32 = 6.283185307179586;

// e^x to about 2 ulp for x in [-87, 88] (clamped outside).
fn exp_f32(x_in: f32) -> f32 {
    let x = clamp(x_in, -87.0, 88.0);
    let k = round(x * LOG2_E);
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0
        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r / 5040.0))))));
    // 2^k built from its exponent bits (k in [−126, 127]).
    let scale = bitcast<f32>(u32(i32(k) + 127) << 23u);
    return p * scale;
}

// ln x for positive normal x, to a few ulp *relative* everywhere: Vulkan's `log` promises only
// 2^-21 absolute near 1, which is a large relative error for ln(u) with u close to 1 (the
// Box–Muller radius). x = m·2^e with m in [√½, √2), ln m = 2·atanh(s), s = (m − 1)/(m + 1).
fn ln_f32(x: f32) -> f32 {
    let parts = frexp(x);
    var m = parts.fract;
    var e = f32(parts.exp);
    if (m < 0.70710677) {
        m = m * 2.0;
        e = e - 1.0;
    }
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let series = s * (2.0 + s2 * (2.0 / 3.0 + s2 * (2.0 / 5.0 + s2 * (2.0 / 7.0 + s2 * (2.0 / 9.0
        + s2 * (2.0 / 11.0))))));
    return e * 0.6931471805599453 + series;
}

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp_f32(-x));
}

// SiLU(z) = z·σ(z).
fn silu(z: f32) -> f32 {
    return z * sigmoid(z);
}

// SiLU'(z) = σ(z)·(1 + z·(1 − σ(z))), written as the CPU writes it: s + a·(1 − s), a = z·s.
fn silu_grad(z: f32) -> f32 {
    let s = sigmoid(z);
    let a = z * s;
    return s + a * (1.0 - s);
}

// (sin x, cos x) to about 1e-7 absolute for |x| ≤ 4000: Cody–Waite reduction by π/2 in three
// parts, Taylor polynomials on |r| ≤ π/4, quadrant from the rounded multiple.
fn sin_cos(x: f32) -> vec2<f32> {
    let k = round(x * TWO_OVER_PI);
    let r = ((x - k * PIO2_1) - k * PIO2_2) - k * PIO2_3;
    let r2 = r * r;
    let sin_r = r * (1.0 + r2 * (-1.0 / 6.0 + r2 * (1.0 / 120.0 + r2 * (-1.0 / 5040.0
        + r2 * (1.0 / 362880.0)))));
    let cos_r = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24.0 + r2 * (-1.0 / 720.0 + r2 * (1.0 / 40320.0
        + r2 * (-1.0 / 3628800.0)))));
    let q = bitcast<u32>(i32(k));
    var s = sin_r;
    var c = cos_r;
    if ((q & 1u) != 0u) {
        s = cos_r;
        c = sin_r;
    }
    if ((q & 2u) != 0u) {
        s = -s;
    }
    if (((q + 1u) & 2u) != 0u) {
        c = -c;
    }
    return vec2<f32>(s, c);
}

// Is x a finite number (not NaN, not ±∞)? Checked on the bits: fast-math compilers may assume
// `x == x`.
fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7F800000u) != 0x7F800000u;
}
