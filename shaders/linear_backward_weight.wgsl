// Backward through one nn.Linear to its parameters, split over the batch:
//   partial[s, n, k] = Σ_{m in split s} ∂L/∂z[m, n]·a(m, k)     (k < inputs: ∂L/∂W[n, k])
//   partial[s, n, inputs] = Σ_{m in split s} ∂L/∂z[m, n]          (the bias gradient)
// The bias is a virtual input column of ones, so weights and bias come out of one product.
// grad_reduce.wgsl then adds the splits in a fixed order. a(m, k) is read as in
// linear_forward.wgsl: 0 the time embedding (recomputed, never stored), 1 SiLU of stored
// pre-activations, 2 a stored matrix. Needs common/math.wgsl and common/gemm.wgsl.

struct LinearBackwardWeight {
    rows: u32,
    outputs: u32,
    inputs: u32,
    a_mode: u32,
    a_stride: u32,
    dz_stride: u32,
    half: u32,
    t_scale: f32,
    // Batch rows per split (a multiple of 16).
    split_rows: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const GEMM_A_ALONG_K: bool = false;
const GEMM_B_ALONG_N: bool = true;

@group(0) @binding(0) var<storage, read> dz: array<f32>;
@group(0) @binding(1) var<storage, read> a_src: array<f32>;
@group(0) @binding(2) var<storage, read> freqs: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;
@group(0) @binding(4) var<uniform> u: LinearBackwardWeight;

// A = ∂L/∂zᵀ: row n (an output), column m (a batch row).
fn gemm_a(n: u32, m: u32) -> f32 {
    if (n >= u.outputs) {
        return 0.0;
    }
    return dz[m * u.dz_stride + n];
}

// B = [a | 1]: row m (a batch row), column k (an input, or the bias column k = inputs).
fn gemm_b(m: u32, k: u32) -> f32 {
    if (k > u.inputs) {
        return 0.0;
    }
    if (k == u.inputs) {
        return 1.0;
    }
    switch u.a_mode {
        case 0u: {
            let t = a_src[m] * u.t_scale;
            let i = select(k - u.half, k, k < u.half);
            let sc = sin_cos(t * freqs[i]);
            return select(sc.y, sc.x, k < u.half);
        }
        case 1u: {
            return silu(a_src[m * u.a_stride + k]);
        }
        default: {
            return a_src[m * u.a_stride + k];
        }
    }
}

// Where this workgroup's split starts in `partials` (set by main before gemm_store).
var<private> split_base: u32;

fn gemm_c(n: u32, k: u32, value: f32) {
    partials[split_base + n * (u.inputs + 1u) + k] = value;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row0 = wg.y * GEMM_TILE_M;
    let col0 = wg.x * GEMM_TILE_N;
    let split = wg.z;
    let m_begin = split * u.split_rows;
    let m_end = min(m_begin + u.split_rows, u.rows);
    let width = u.inputs + 1u;
    let base = split * u.outputs * width;
    if (col0 == u.inputs) {
        // A tile holding only the bias column (inputs a multiple of 64): sum ∂L/∂z over the
        // split directly, the same additions in the same order as the product with a column of
        // ones, instead of a 64-wide product that is all zeros but for that column.
        let n = row0 + lid;
        if (lid < GEMM_TILE_M && n < u.outputs) {
            var s = 0.0;
            for (var m = m_begin; m < m_end; m++) {
                s += dz[m * u.dz_stride + n];
            }
            partials[base + n * width + u.inputs] = s;
        }
        return;
    }
    let acc = gemm_tile(row0, col0, m_begin, m_end, lid);
    split_base = base;
    gemm_store(acc, row0, col0, u.outputs, width, lid);
}
