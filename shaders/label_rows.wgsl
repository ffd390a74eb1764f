// The label embedding's contribution to net.0 for every class row (the null label last):
// P[r, k] = Σ_j W0[k, 2 + j]·label_embed[r, j]. It does not depend on t, so the sampler computes
// it once per run and time_branch.wgsl adds it to each stage's time row.

struct LabelRows {
    hidden: u32,
    crows: u32,
    // net.0.weight's offset ([h, 2 + h] row-major) and label_embed.weight's ([crows, h]).
    w0: u32,
    embed: u32,
}

@group(0) @binding(0) var<storage, read> params: array<f32>;
@group(0) @binding(1) var<storage, read_write> rows_out: array<f32>;
@group(0) @binding(2) var<uniform> u: LabelRows;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 256u;
    let h = u.hidden;
    if (idx >= u.crows * h) {
        return;
    }
    let r = idx / h;
    let k = idx % h;
    let w = u.w0 + k * (h + 2u) + 2u;
    let e = u.embed + r * h;
    var sum = 0.0;
    for (var j = 0u; j < h; j++) {
        sum += params[w + j] * params[e + j];
    }
    rows_out[idx] = sum;
}
