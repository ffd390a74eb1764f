// First half of the global gradient norm (torch.nn.utils.clip_grad_norm_): each of 256
// workgroups sums the squares of a strided share of the gradient; step_stats.wgsl adds the 256
// partial sums in order and takes the square root.

struct GradNorm {
    count: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const GROUPS: u32 = 256u;

@group(0) @binding(0) var<storage, read> grads: array<f32>;
@group(0) @binding(1) var<storage, read_write> norm_partials: array<f32>;
@group(0) @binding(2) var<uniform> u: GradNorm;

@compute @workgroup_size(256)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wg: vec3<u32>,
) {
    var acc = 0.0;
    for (var i = gid.x; i < u.count; i += GROUPS * 256u) {
        let g = grads[i];
        acc += g * g;
    }
    let total = workgroup_sum(lid, acc);
    if (lid == 0u) {
        norm_partials[wg.x] = total;
    }
}
