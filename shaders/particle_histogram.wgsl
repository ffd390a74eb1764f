// A 2-D histogram of particle positions: bin (i, j) of an nx × ny grid over a rectangle counts
// the points with floor((x − x_min)·sx) = i and floor((y − y_min)·sy) = j (sx = nx/width); points
// outside, and non-finite ones, are not counted. Counts are u32 atomics, zeroed by the caller.
// The positions are either current ones ([n, 2], frames = 1) or a page of recorded trajectories
// ([n, frames, 2]), read at time t: linear between frames k and k + 1, a fraction s along (as the
// particle renderer draws them), so the histogram is p_t of the drawn flow at any t.

// Keep in sync with `HistogramUniform` in crates/flowplay-gpu/src/uniforms.rs.
struct Histogram {
    n: u32,
    nx: u32,
    ny: u32,
    // Frames recorded per particle (1: current positions).
    frames: u32,
    x_min: f32,
    y_min: f32,
    sx: f32,
    sy: f32,
    // The segment of the time grid t lies in, and the fraction along it.
    k: u32,
    s: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> pos: array<f32>;
@group(0) @binding(1) var<storage, read_write> counts: array<atomic<u32>>;
@group(0) @binding(2) var<uniform> u: Histogram;

fn point(p: u32) -> vec2<f32> {
    if (u.frames <= 1u) {
        return vec2<f32>(pos[2u * p], pos[2u * p + 1u]);
    }
    let a = p * u.frames + u.k;
    let b = p * u.frames + min(u.k + 1u, u.frames - 1u);
    let pa = vec2<f32>(pos[2u * a], pos[2u * a + 1u]);
    let pb = vec2<f32>(pos[2u * b], pos[2u * b + 1u]);
    return mix(pa, pb, u.s);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = gid.x + gid.y * nwg.x * 256u;
    if (p >= u.n) {
        return;
    }
    let x = point(p);
    let fx = (x.x - u.x_min) * u.sx;
    let fy = (x.y - u.y_min) * u.sy;
    // NaN fails every comparison, so it is dropped here too.
    if (fx >= 0.0 && fy >= 0.0 && fx < f32(u.nx) && fy < f32(u.ny)) {
        let i = min(u32(fx), u.nx - 1u);
        let j = min(u32(fy), u.ny - 1u);
        atomicAdd(&counts[j * u.nx + i], 1u);
    }
}
