// Probability paths (QR §3) as flowplay_core::path computes them; keep in sync. Needs
// common/math.wgsl. A path is described by a small struct the Rust side fills in
// (`PathUniform` in crates/flowplay-gpu/src/uniforms.rs).

const PATH_RECTIFIED_FLOW: u32 = 0u;
const PATH_VP_COSINE: u32 = 1u;
const PATH_VE: u32 = 2u;

struct PathParams {
    kind: u32,
    // 1 when VE is EDM-preconditioned.
    preconditioned: u32,
    // Rectified flow's σ_min, or VE's σ_min.
    sigma_min: f32,
    sigma_max: f32,
    sigma_data: f32,
    _pad0: f32,
    _pad1: f32,
    _pad2: f32,
}

// (a, b, da, db) with x_t = a·x0 + b·x1 and u_t = da·x0 + db·x1.
fn path_coefficients(p: PathParams, t: f32) -> vec4<f32> {
    if (p.kind == PATH_VP_COSINE) {
        // QR §3.2: σ(t) = cos(πt/2) on the noise, α(t) = sin(πt/2) on the data.
        let half_pi = 1.5707963267948966;
        let sc = sin_cos(half_pi * t);
        return vec4<f32>(sc.y, sc.x, -half_pi * sc.x, half_pi * sc.y);
    }
    if (p.kind == PATH_VE) {
        // QR §3.3: x_t = x1 + σ(1−t)·x0, σ(s) = σ_min^(1−s)·σ_max^s.
        let log_min = ln_f32(p.sigma_min);
        let log_max = ln_f32(p.sigma_max);
        let s = 1.0 - t;
        let sigma = exp_f32(log_min * (1.0 - s) + log_max * s);
        return vec4<f32>(sigma, 1.0, -sigma * (log_max - log_min), 0.0);
    }
    // QR §3.1 and TRELLIS: x_t = (1 − (1 − σ_min)t)·x0 + t·x1.
    let shrink = 1.0 - p.sigma_min;
    return vec4<f32>(1.0 - shrink * t, t, -shrink, 1.0);
}

// EDM preconditioning (input, skip, output): v = skip·x + output·F(t, input·x). Identity
// (1, 0, 1) unless VE is preconditioned.
fn path_preconditioning(p: PathParams, t: f32) -> vec3<f32> {
    if (p.kind != PATH_VE || p.preconditioned == 0u) {
        return vec3<f32>(1.0, 0.0, 1.0);
    }
    let sigma = path_coefficients(p, t).x;
    let log_ratio = ln_f32(p.sigma_max / p.sigma_min);
    let d2 = sigma * sigma + p.sigma_data * p.sigma_data;
    let d = sqrt(d2);
    return vec3<f32>(1.0 / d, -log_ratio * sigma * sigma / d2, log_ratio * sigma * p.sigma_data / d);
}

// The data point x̂1 implied by position x and velocity v at coefficients c.
fn predicted_data(c: vec4<f32>, x: vec2<f32>, v: vec2<f32>) -> vec2<f32> {
    let det = c.x * c.w - c.z * c.y;
    return (c.x * v - c.z * x) / det;
}
