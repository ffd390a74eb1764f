// The gradient of label_embed.weight ([classes + 1, hidden]): row c collects ∂L/∂t_embed of
// every batch row whose label is c (the last row is the null label of classifier-free guidance,
// QR §7.2). One thread per entry, summing over the batch in order: no float atomics needed.

struct LabelEmbedGrad {
    rows: u32,
    hidden: u32,
    classes: u32,
    offset: u32,
}

@group(0) @binding(0) var<storage, read> labels: array<u32>;
@group(0) @binding(1) var<storage, read> d_embed: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;
@group(0) @binding(3) var<uniform> u: LabelEmbedGrad;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = gid.x + gid.y * nwg.x * 256u;
    if (e >= u.classes * u.hidden) {
        return;
    }
    let c = e / u.hidden;
    let j = e % u.hidden;
    var g = 0.0;
    for (var m = 0u; m < u.rows; m++) {
        if (labels[m] == c) {
            g += d_embed[m * u.hidden + j];
        }
    }
    grads[u.offset + e] = g;
}
