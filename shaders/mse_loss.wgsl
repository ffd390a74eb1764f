// The MSE loss of QR §4.3 and its gradient: L = Σ‖out − target‖² / (2B) over the batch,
// ∂L/∂out = 2·(out − target) / (2B). Each workgroup writes the sum of its 256 rows' squared
// errors; step_stats.wgsl adds the partial sums in a fixed order.

struct MseLoss {
    batch: u32,
    // 2 / (2B), the gradient's scale (as the CPU computes it, in f32).
    grad_scale: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> out: array<vec2<f32>>;
@group(0) @binding(1) var<storage, read> targets: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> d_out: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> loss_partials: array<f32>;
@group(0) @binding(4) var<uniform> u: MseLoss;

@compute @workgroup_size(256)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wg: vec3<u32>,
) {
    let i = gid.x;
    var sq = 0.0;
    if (i < u.batch) {
        let e = out[i] - targets[i];
        sq = e.x * e.x + e.y * e.y;
        d_out[i] = u.grad_scale * e;
    }
    let total = workgroup_sum(lid, sq);
    if (lid == 0u) {
        loss_partials[wg.x] = total;
    }
}
