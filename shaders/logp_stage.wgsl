// One stage of the likelihood's reverse ODE for a chunk of points (flowplay_core::likelihood,
// from the same tableau): the augmented state (x, ℓ) with dx/dt = v, dℓ/dt = div v, integrated
// from t = 1 back to t = 0 (Δt < 0). From the network's output for the chunk's rows F and their
// tangents Ḟ_x, Ḟ_y (linear_jvp.wgsl's last layer, rows [0, B), [B, 2B), [2B, 3B)):
//   k = skip·probe + out·F,   div = 2·skip + out·in·(Ḟ_x[0] + Ḟ_y[1])
// (preconditioning at the stage's t), both combined by guidance k = k(∅) + s·(k(c) − k(∅)) with
// two rows per point; then with the stage's tableau weight b, as ode_stage.wgsl does for x alone:
//   first: acc = b·k, acc_ℓ = b·div;  middle: acc += b·k, acc_ℓ += b·div;
//   last:  x += w·(acc + b·k), ℓ += w·(acc_ℓ + b·div)
// The run's final stage writes log p₁ = log p₀(x₀) + ℓ, with p₀ = N(0, var·I). An INIT stage sets
// up the state from the points in `pos`. Needs common/math.wgsl, common/stage.wgsl.

// Keep in sync with `PriorUniform` in crates/flowplay-gpu/src/uniforms.rs.
struct Prior {
    // p₀'s variance, and its log normaliser −ln(2π·var).
    var_: f32,
    log_norm: f32,
    _pad0: f32,
    _pad1: f32,
}

// The network's output for the chunk's rows and their tangents, [3·B, 2].
@group(0) @binding(0) var<storage, read> f_out: array<f32>;
// Positions x, [n, 2].
@group(0) @binding(1) var<storage, read_write> pos: array<f32>;
// Per point: the probe (2), the stage sums of k (2) and of div (1), ℓ (1), padding (2).
@group(0) @binding(2) var<storage, read_write> aux: array<f32>;
// The network's input for the next stage, in the chunk layout of ode_stage.wgsl.
@group(0) @binding(3) var<storage, read_write> x_in: array<f32>;
// log p₁ of each point, [n], written by the final stage.
@group(0) @binding(4) var<storage, read_write> logp: array<f32>;
@group(0) @binding(5) var<uniform> s: Stage;
@group(0) @binding(6) var<uniform> ch: Chunk;
@group(0) @binding(7) var<uniform> prior: Prior;

fn write_next(m: u32, next: vec2<f32>) {
    let xi = s.next_in * next;
    let row = ch.rpp * ch.p0 + m;
    x_in[2u * row] = xi.x;
    x_in[2u * row + 1u] = xi.y;
    if (ch.rpp == 2u) {
        let row2 = row + ch.len;
        x_in[2u * row2] = xi.x;
        x_in[2u * row2 + 1u] = xi.y;
    }
}

// The velocity and divergence of network row r of the chunk.
fn field(r: u32, probe: vec2<f32>) -> vec3<f32> {
    let b = ch.rpp * ch.len;
    let f = vec2<f32>(f_out[2u * r], f_out[2u * r + 1u]);
    let trace = f_out[2u * (b + r)] + f_out[2u * (2u * b + r) + 1u];
    let k = s.skip * probe + s.out_scale * f;
    return vec3<f32>(k, 2.0 * s.skip + s.out_scale * s.in_scale * trace);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let m = gid.x + gid.y * nwg.x * 256u;
    if (m >= ch.len) {
        return;
    }
    let p = ch.p0 + m;
    if ((s.kind & KIND_INIT) != 0u) {
        let x0 = vec2<f32>(pos[2u * p], pos[2u * p + 1u]);
        aux[8u * p] = x0.x;
        aux[8u * p + 1u] = x0.y;
        for (var i = 2u; i < 8u; i++) {
            aux[8u * p + i] = 0.0;
        }
        write_next(m, x0);
        return;
    }
    let probe = vec2<f32>(aux[8u * p], aux[8u * p + 1u]);
    var kd = field(m, probe);
    if (ch.rpp == 2u) {
        let uncond = field(ch.len + m, probe);
        kd = uncond + s.cfg_scale * (kd - uncond);
    }
    let k = kd.xy;
    let div = kd.z;
    var x = vec2<f32>(pos[2u * p], pos[2u * p + 1u]);
    var acc = vec2<f32>(aux[8u * p + 2u], aux[8u * p + 3u]);
    var acc_l = aux[8u * p + 4u];
    var l = aux[8u * p + 5u];
    let first = (s.kind & KIND_FIRST) != 0u;
    let last = (s.kind & KIND_LAST) != 0u;
    var next = x;
    if (first && last) {
        x = x + s.w * (s.weight * k);
        l = l + s.w * (s.weight * div);
        next = x;
    } else if (first) {
        acc = s.weight * k;
        acc_l = s.weight * div;
        next = x + s.hp * k;
    } else if (last) {
        x = x + s.w * (acc + s.weight * k);
        l = l + s.w * (acc_l + s.weight * div);
        next = x;
    } else {
        acc = acc + s.weight * k;
        acc_l = acc_l + s.weight * div;
        next = x + s.hp * k;
    }
    if ((s.kind & KIND_FINAL_POSITION) != 0u) {
        logp[p] = prior.log_norm - (x.x * x.x + x.y * x.y) / (2.0 * prior.var_) + l;
    }
    pos[2u * p] = x.x;
    pos[2u * p + 1u] = x.y;
    aux[8u * p] = next.x;
    aux[8u * p + 1u] = next.y;
    aux[8u * p + 2u] = acc.x;
    aux[8u * p + 3u] = acc.y;
    aux[8u * p + 4u] = acc_l;
    aux[8u * p + 5u] = l;
    if ((s.kind & KIND_HAS_NEXT) != 0u) {
        write_next(m, next);
    }
}
