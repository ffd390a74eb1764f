// A 2-D histogram of particle positions: bin (i, j) of an nx × ny grid over a rectangle counts
// the points with floor((x − x_min)·sx) = i and floor((y − y_min)·sy) = j (sx = nx/width); points
// outside, and non-finite ones, are not counted. Counts are u32 atomics, zeroed by the caller.

struct Histogram {
    n: u32,
    nx: u32,
    ny: u32,
    _pad: u32,
    x_min: f32,
    y_min: f32,
    sx: f32,
    sy: f32,
}

@group(0) @binding(0) var<storage, read> pos: array<f32>;
@group(0) @binding(1) var<storage, read_write> counts: array<atomic<u32>>;
@group(0) @binding(2) var<uniform> u: Histogram;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = gid.x + gid.y * nwg.x * 256u;
    if (p >= u.n) {
        return;
    }
    let fx = (pos[2u * p] - u.x_min) * u.sx;
    let fy = (pos[2u * p + 1u] - u.y_min) * u.sy;
    // NaN fails every comparison, so it is dropped here too.
    if (fx >= 0.0 && fy >= 0.0 && fx < f32(u.nx) && fy < f32(u.ny)) {
        let i = min(u32(fx), u.nx - 1u);
        let j = min(u32(fy), u.ny - 1u);
        atomicAdd(&counts[j * u.nx + i], 1u);
    }
}
