// One nn.Linear over a chunk's rows and their tangents at once, for the exact Jacobian trace
// tr ∂F/∂x of the likelihood (forward mode, as flowplay_core::mlp::Mlp::infer_with_trace):
// rows [0, B) are the network's rows (B = rpp·len: a chunk's conditional rows, then its
// null-label rows with guidance), rows [B, 2B) and [2B, 3B) their tangents along x₀ and x₁. Row
// m reads row r = m mod B's pre-activations:
//   primal:  a(m, k) = SiLU(z(r, k))
//   tangent: a(m, k) = SiLU′(z(r, k))·ż(m, k)
// where for the first hidden layer after net.0 (first = 1) z is net.0's pre-activation, fused as
// in linear_forward.wgsl's mode 3, z(r, k) = x_in(r)·W0[k, :2]ᵀ + c[label(r), k], and its tangent
// along direction d is the column W0[k, d]; later layers read the stored z and ż. The epilogue
// adds the bias to primal rows only (a tangent has none). Needs common/math.wgsl, common/gemm.wgsl.

// Keep in sync with `LinearJvpUniform` in crates/flowplay-gpu/src/uniforms.rs.
struct LinearJvp {
    // B: the chunk's network rows; the dispatch covers 3·B rows.
    block: u32,
    outputs: u32,
    inputs: u32,
    // 1: the input is net.0 fused from the positions (a_src = x_in) and the class rows c.
    first: u32,
    // Mode first: the chunk's first row of x_in (in f32s).
    a_offset: u32,
    w_offset: u32,
    b_offset: u32,
    // net.0.weight's offset and row stride (2 + hidden).
    xw_offset: u32,
    xw_stride: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const GEMM_A_ALONG_K: bool = true;
const GEMM_B_ALONG_N: bool = false;

@group(0) @binding(0) var<storage, read> params: array<f32>;
// Mode first: x_in, [rows, 2]; otherwise the previous layer's [3·B, inputs] pre-activations.
@group(0) @binding(1) var<storage, read> a_src: array<f32>;
// The per-class rows c of the current stage, [crows, hidden].
@group(0) @binding(2) var<storage, read> aux: array<f32>;
// The chunk's row labels, [B].
@group(0) @binding(3) var<storage, read> labels: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<uniform> u: LinearJvp;

// net.0's pre-activation of row r, hidden unit k.
fn first_z(r: u32, k: u32) -> f32 {
    let x = a_src[u.a_offset + 2u * r];
    let y = a_src[u.a_offset + 2u * r + 1u];
    let w = u.xw_offset + k * u.xw_stride;
    return x * params[w] + y * params[w + 1u] + aux[labels[r] * u.inputs + k];
}

fn gemm_a(m: u32, k: u32) -> f32 {
    if (m >= 3u * u.block) {
        return 0.0;
    }
    let r = m % u.block;
    let d = m / u.block;
    if (u.first == 1u) {
        let z = first_z(r, k);
        if (d == 0u) {
            return silu(z);
        }
        return silu_grad(z) * params[u.xw_offset + k * u.xw_stride + d - 1u];
    }
    let z = a_src[r * u.inputs + k];
    if (d == 0u) {
        return silu(z);
    }
    return silu_grad(z) * a_src[m * u.inputs + k];
}

fn gemm_b(k: u32, n: u32) -> f32 {
    if (n >= u.outputs) {
        return 0.0;
    }
    return params[u.w_offset + n * u.inputs + k];
}

fn gemm_c(m: u32, n: u32, value: f32) {
    var z = value;
    if (m < u.block) {
        z += params[u.b_offset + n];
    }
    out[m * u.outputs + n] = z;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row0 = wg.y * GEMM_TILE_M;
    let col0 = wg.x * GEMM_TILE_N;
    let acc = gemm_tile(row0, col0, 0u, u.inputs, lid);
    gemm_store(acc, row0, col0, 3u * u.block, u.outputs, lid);
}
