// Adds linear_backward_weight.wgsl's per-split partial gradients in split order and writes them
// to the layer's weight ([outputs, inputs] row-major) and bias slots of the gradient buffer.

struct GradReduce {
    outputs: u32,
    inputs: u32,
    splits: u32,
    w_offset: u32,
    b_offset: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> partials: array<f32>;
@group(0) @binding(1) var<storage, read_write> grads: array<f32>;
@group(0) @binding(2) var<uniform> u: GradReduce;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = gid.x + gid.y * nwg.x * 256u;
    let width = u.inputs + 1u;
    let size = u.outputs * width;
    if (e >= size) {
        return;
    }
    var g = 0.0;
    for (var s = 0u; s < u.splits; s++) {
        g += partials[s * size + e];
    }
    let n = e / width;
    let k = e % width;
    if (k < u.inputs) {
        grads[u.w_offset + n * u.inputs + k] = g;
    } else {
        grads[u.b_offset + n] = g;
    }
}
