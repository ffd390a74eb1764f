// One nn.Linear over a batch: z[m, n] = Σ_k a(m, k)·W[n, k] + b[n] (+ label_embed[y_m, n]).
// Pre-activations z are stored; the SiLU is applied by whoever reads them (the next layer and the
// backward pass), so no activation buffer is written. The input a(m, k) comes from one of:
//   0  the sinusoidal time embedding of t_scale·t[m] (QR §4.2), computed on the fly: the time
//      embedding is fused into t_embed.1 and never stored;
//   1  SiLU of a previous layer's pre-activations;
//   2  a stored matrix (net.0's input cat[x, t_embed]);
//   3  the sampler's first hidden layer, fused: SiLU(x·W0[:, :2]ᵀ + c[y_m]), where c holds
//      net.0's bias plus the time branch for the current ODE stage (one row per class).
// Needs common/math.wgsl and common/gemm.wgsl.

struct LinearForward {
    rows: u32,
    outputs: u32,
    inputs: u32,
    a_mode: u32,
    a_offset: u32,
    a_stride: u32,
    w_offset: u32,
    b_offset: u32,
    out_offset: u32,
    out_stride: u32,
    // Offset of label_embed.weight to add in the epilogue, or 0xFFFFFFFF for none.
    label_offset: u32,
    // t_dim / 2 (mode 0).
    half: u32,
    t_scale: f32,
    // Mode 3: net.0.weight's offset and row stride (2 + hidden), and the offset of c in aux.
    xw_offset: u32,
    xw_stride: u32,
    aux_offset: u32,
}

const NONE: u32 = 0xFFFFFFFFu;
const GEMM_A_ALONG_K: bool = true;
const GEMM_B_ALONG_N: bool = false;

@group(0) @binding(0) var<storage, read> params: array<f32>;
@group(0) @binding(1) var<storage, read> a_src: array<f32>;
// Mode 0: the embedding's frequencies; mode 3: the per-class bias rows c.
@group(0) @binding(2) var<storage, read> aux: array<f32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<uniform> u: LinearForward;

fn gemm_a(m: u32, k: u32) -> f32 {
    if (m >= u.rows) {
        return 0.0;
    }
    switch u.a_mode {
        case 0u: {
            // cat(sin(t·f), cos(t·f)) with f from the CPU's table, so t·f rounds identically.
            let t = a_src[u.a_offset + m] * u.t_scale;
            let i = select(k - u.half, k, k < u.half);
            let sc = sin_cos(t * aux[i]);
            return select(sc.y, sc.x, k < u.half);
        }
        case 1u: {
            return silu(a_src[u.a_offset + m * u.a_stride + k]);
        }
        case 3u: {
            let x = a_src[u.a_offset + 2u * m];
            let y = a_src[u.a_offset + 2u * m + 1u];
            let w = u.xw_offset + k * u.xw_stride;
            let c = aux[u.aux_offset + labels[m] * u.inputs + k];
            return silu(x * params[w] + y * params[w + 1u] + c);
        }
        default: {
            return a_src[u.a_offset + m * u.a_stride + k];
        }
    }
}

fn gemm_b(k: u32, n: u32) -> f32 {
    if (n >= u.outputs) {
        return 0.0;
    }
    return params[u.w_offset + n * u.inputs + k];
}

// The epilogue: bias (and label embedding) added, the pre-activation stored.
fn gemm_c(m: u32, n: u32, value: f32) {
    var z = value + params[u.b_offset + n];
    if (u.label_offset != NONE) {
        z += params[u.label_offset + labels[m] * u.outputs + n];
    }
    out[u.out_offset + m * u.out_stride + n] = z;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row0 = wg.y * GEMM_TILE_M;
    let col0 = wg.x * GEMM_TILE_N;
    let acc = gemm_tile(row0, col0, 0u, u.inputs, lid);
    gemm_store(acc, row0, col0, u.rows, u.outputs, lid);
}
