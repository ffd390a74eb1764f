// The sampler's time branch for one ODE stage (QR §4.2), evaluated once per stage instead of once
// per particle: for every class row r the sampler needs,
//   c[r] = b0 + Wt·(W3·SiLU(W1·emb(t_scale·t) + b1) + b3 + label_embed[r]),
// where Wt are net.0's columns that multiply the time embedding (net.0.weight[:, 2:]). The label
// term Wt·label_embed[r] does not depend on t: `label_rows.wgsl` computes it once per run into
// `label_rows`. linear_forward.wgsl's mode 3 then adds x·W0[:, :2]ᵀ per particle.
// One workgroup does everything, phase after phase (storage barriers between them); the work is
// O(h²) per stage, nothing next to the particles' O(n·h²).
// Needs common/math.wgsl and common/stage.wgsl.

@group(0) @binding(0) var<storage, read> params: array<f32>;
// The embedding's frequencies f_i, from the CPU so that t·f_i rounds identically.
@group(0) @binding(1) var<storage, read> freqs: array<f32>;
// Wt·label_embed[r], [crows, h] (unused when has_label_rows is 0).
@group(0) @binding(2) var<storage, read> label_rows: array<f32>;
// emb [t_dim], a1 [h], u [h], q [h].
@group(0) @binding(3) var<storage, read_write> scratch: array<f32>;
// The per-class rows c, [crows, h].
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
@group(0) @binding(5) var<uniform> s: Stage;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
    let h = s.hidden;
    let half = s.half;
    let t_dim = 2u * half;
    let emb = 0u;
    let a1 = t_dim;
    let u_at = t_dim + h;
    let q = t_dim + 2u * h;
    // emb = cat(sin(t·f), cos(t·f)) of the scaled time.
    let scaled = s.t * s.t_scale;
    for (var i = lid; i < half; i += 256u) {
        let sc = sin_cos(scaled * freqs[i]);
        scratch[emb + i] = sc.x;
        scratch[emb + half + i] = sc.y;
    }
    storageBarrier();
    // a1 = SiLU(W1·emb + b1).
    for (var j = lid; j < h; j += 256u) {
        var sum = 0.0;
        let row = s.w1 + j * t_dim;
        for (var i = 0u; i < t_dim; i++) {
            sum += params[row + i] * scratch[emb + i];
        }
        scratch[a1 + j] = silu(sum + params[s.b1 + j]);
    }
    storageBarrier();
    // u = W3·a1 + b3.
    for (var j = lid; j < h; j += 256u) {
        var sum = 0.0;
        let row = s.w3 + j * h;
        for (var i = 0u; i < h; i++) {
            sum += params[row + i] * scratch[a1 + i];
        }
        scratch[u_at + j] = sum + params[s.b3 + j];
    }
    storageBarrier();
    // q = b0 + Wt·u.
    for (var k = lid; k < h; k += 256u) {
        var sum = 0.0;
        let row = s.w0 + k * (h + 2u) + 2u;
        for (var j = 0u; j < h; j++) {
            sum += params[row + j] * scratch[u_at + j];
        }
        scratch[q + k] = sum + params[s.b0 + k];
    }
    storageBarrier();
    // c[r] = q + Wt·label_embed[r].
    let total = s.crows * h;
    for (var e = lid; e < total; e += 256u) {
        var value = scratch[q + e % h];
        if (s.has_label_rows != 0u) {
            value += label_rows[e];
        }
        c[e] = value;
    }
}
