// The centres of an nx × ny grid over a rectangle, as particles for one velocity evaluation
// (the sampler's velocity-field view): point p = j·nx + i sits at
// (x_min + (i + 0.5)·dx, y_min + (j + 0.5)·dy). Writes its position, its probe (= position, for
// the preconditioning's skip term) and the network input (scaled by the preconditioning's input
// scale) in the sampler's chunk layout (both rows of a guided point).

struct Grid {
    nx: u32,
    ny: u32,
    rpp: u32,
    chunk: u32,
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    x_min: f32,
    y_min: f32,
    dx: f32,
    dy: f32,
    input_scale: f32,
    _pad3: f32,
    _pad4: f32,
    _pad5: f32,
}

@group(0) @binding(0) var<storage, read_write> pos: array<f32>;
@group(0) @binding(1) var<storage, read_write> aux: array<f32>;
@group(0) @binding(2) var<storage, read_write> x_in: array<f32>;
@group(0) @binding(3) var<uniform> u: Grid;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = gid.x + gid.y * nwg.x * 256u;
    if (p >= u.n) {
        return;
    }
    let i = p % u.nx;
    let j = p / u.nx;
    let x = u.x_min + (f32(i) + 0.5) * u.dx;
    let y = u.y_min + (f32(j) + 0.5) * u.dy;
    pos[2u * p] = x;
    pos[2u * p + 1u] = y;
    aux[4u * p] = x;
    aux[4u * p + 1u] = y;
    aux[4u * p + 2u] = 0.0;
    aux[4u * p + 3u] = 0.0;
    let p0 = (p / u.chunk) * u.chunk;
    let len = min(u.chunk, u.n - p0);
    let row = u.rpp * p0 + (p - p0);
    let xi = u.input_scale * vec2<f32>(x, y);
    x_in[2u * row] = xi.x;
    x_in[2u * row + 1u] = xi.y;
    if (u.rpp == 2u) {
        let row2 = row + len;
        x_in[2u * row2] = xi.x;
        x_in[2u * row2 + 1u] = xi.y;
    }
}
