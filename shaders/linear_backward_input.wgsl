// Backward through one nn.Linear to its input: ∂L/∂a[m, j] = Σ_n ∂L/∂z[m, n]·W[n, col0 + j],
// for the `cols` input columns starting at col0 (net.0 passes only the t_embed part on). With
// `silu` set, the result is multiplied by SiLU'(z_prev[m, j]): the gradient with respect to the
// previous layer's pre-activation. Needs common/math.wgsl and common/gemm.wgsl.

struct LinearBackwardInput {
    rows: u32,
    cols: u32,
    // The layer's outputs (the sum runs over them).
    outputs: u32,
    dz_stride: u32,
    w_offset: u32,
    // The layer's inputs: the weight's row stride.
    w_stride: u32,
    col0: u32,
    silu: u32,
    z_stride: u32,
    out_stride: u32,
    _pad0: u32,
    _pad1: u32,
}

const GEMM_A_ALONG_K: bool = true;
const GEMM_B_ALONG_N: bool = true;

@group(0) @binding(0) var<storage, read> params: array<f32>;
@group(0) @binding(1) var<storage, read> dz: array<f32>;
@group(0) @binding(2) var<storage, read> z_prev: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> u: LinearBackwardInput;

fn gemm_a(m: u32, k: u32) -> f32 {
    if (m >= u.rows) {
        return 0.0;
    }
    return dz[m * u.dz_stride + k];
}

fn gemm_b(k: u32, n: u32) -> f32 {
    if (n >= u.cols) {
        return 0.0;
    }
    return params[u.w_offset + k * u.w_stride + u.col0 + n];
}

fn gemm_c(m: u32, n: u32, value: f32) {
    var g = value;
    if (u.silu != 0u) {
        g *= silu_grad(z_prev[m * u.z_stride + n]);
    }
    out[m * u.out_stride + n] = g;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row0 = wg.y * GEMM_TILE_M;
    let col0 = wg.x * GEMM_TILE_N;
    let acc = gemm_tile(row0, col0, 0u, u.outputs, lid);
    gemm_store(acc, row0, col0, u.rows, u.cols, lid);
}
