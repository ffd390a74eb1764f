// A tiled matrix product C = A·B for the kernels that include this file: one 64×64 tile of C per
// 256-thread workgroup, K in slabs of 16 staged in workgroup memory (8.3 KiB, within WebGPU's
// 16 KiB), each thread accumulating a 4×4 block in four vec4 registers (function-local arrays
// indexed in loops run 30× slower on real GPUs).
//
// The including kernel defines
//   fn gemm_a(m: u32, k: u32) -> f32   element (m, k) of A, 0 when m is out of range
//   fn gemm_b(k: u32, n: u32) -> f32   element (k, n) of B, 0 when n is out of range
//   const GEMM_A_ALONG_K: bool         whether A's memory is contiguous along k (else along m)
//   const GEMM_B_ALONG_N: bool         whether B's memory is contiguous along n (else along k)
//   fn gemm_c(m: u32, n: u32, value: f32)   stores element (m, n) of C (gemm_store calls it)
// and calls gemm_tile from uniform control flow, then gemm_store. The last two only choose which threads load
// which elements, so that neighbouring threads read neighbouring addresses.

const GEMM_TILE_M: u32 = 64u;
const GEMM_TILE_N: u32 = 64u;
const GEMM_TILE_K: u32 = 16u;
// Row stride of the A tile, padded by one to spread the stores over memory banks.
const GEMM_A_STRIDE: u32 = 65u;

var<workgroup> gemm_tile_a: array<f32, 1040>;
var<workgroup> gemm_tile_b: array<vec4<f32>, 256>;

// Thread (tx, ty) of the 16×16 grid owns rows 4·ty…4·ty+3 and columns 4·tx…4·tx+3 of the tile.
struct GemmAcc {
    r0: vec4<f32>,
    r1: vec4<f32>,
    r2: vec4<f32>,
    r3: vec4<f32>,
}

// Σ_k A(row0 + i, k)·B(k, col0 + j) over k in [k_begin, k_end), for this thread's 4×4 block.
fn gemm_tile(row0: u32, col0: u32, k_begin: u32, k_end: u32, lid: u32) -> GemmAcc {
    let tx = lid % 16u;
    let ty = lid / 16u;
    var acc = GemmAcc(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var k0 = k_begin; k0 < k_end; k0 += GEMM_TILE_K) {
        // Stage A (64 × 16) and B (16 × 64): four elements per thread each.
        for (var j = 0u; j < 4u; j++) {
            let e = lid + 256u * j;
            var m: u32;
            var kk: u32;
            if (GEMM_A_ALONG_K) {
                kk = e % GEMM_TILE_K;
                m = e / GEMM_TILE_K;
            } else {
                m = e % GEMM_TILE_M;
                kk = e / GEMM_TILE_M;
            }
            let k = k0 + kk;
            var a = 0.0;
            if (k < k_end) {
                a = gemm_a(row0 + m, k);
            }
            gemm_tile_a[kk * GEMM_A_STRIDE + m] = a;

            var n: u32;
            var kb: u32;
            if (GEMM_B_ALONG_N) {
                n = e % GEMM_TILE_N;
                kb = e / GEMM_TILE_N;
            } else {
                kb = e % GEMM_TILE_K;
                n = e / GEMM_TILE_K;
            }
            let kg = k0 + kb;
            var b = 0.0;
            if (kg < k_end) {
                b = gemm_b(kg, col0 + n);
            }
            gemm_tile_b[kb * 16u + n / 4u][n % 4u] = b;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < GEMM_TILE_K; kk++) {
            let b = gemm_tile_b[kk * 16u + tx];
            let base = kk * GEMM_A_STRIDE + ty * 4u;
            acc.r0 += gemm_tile_a[base] * b;
            acc.r1 += gemm_tile_a[base + 1u] * b;
            acc.r2 += gemm_tile_a[base + 2u] * b;
            acc.r3 += gemm_tile_a[base + 3u] * b;
        }
        workgroupBarrier();
    }
    return acc;
}

// Row i (0…3) of this thread's block.
fn gemm_row(acc: GemmAcc, i: u32) -> vec4<f32> {
    switch i {
        case 0u: { return acc.r0; }
        case 1u: { return acc.r1; }
        case 2u: { return acc.r2; }
        default: { return acc.r3; }
    }
}

// Hands every element of this thread's block inside `rows × cols` to the kernel's gemm_c.
fn gemm_store(acc: GemmAcc, row0: u32, col0: u32, rows: u32, cols: u32, lid: u32) {
    let tx = lid % 16u;
    let ty = lid / 16u;
    for (var i = 0u; i < 4u; i++) {
        let m = row0 + ty * 4u + i;
        if (m >= rows) {
            break;
        }
        let row = gemm_row(acc, i);
        for (var j = 0u; j < 4u; j++) {
            let n = col0 + tx * 4u + j;
            if (n >= cols) {
                break;
            }
            gemm_c(m, n, row[j]);
        }
    }
}
