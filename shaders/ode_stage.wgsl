// One stage of an ODE solver step for a chunk of particles (QR §5, exactly as
// flowplay_core::sampler::Stepper::step, from the same tableau): from the network's raw output F
// (linear_forward.wgsl's last layer) the velocity k = skip·probe + out·F with the stage's
// preconditioning, classifier-free guidance k = k(∅) + s·(k(c) − k(∅)) when the chunk holds two
// rows per particle, then with the stage's tableau weight b
//   first stage of a step:  record x, k₁ and x̂₁ = predicted_data(coefficients(t0), x, k₁); acc = b·k₁
//   middle stages:          acc = acc + b·k
//   last stage:             x = x + w·(acc + b·k)   (w = Δt/divisor; Euler: x = x + w·(b·k))
// and the next stage's probe: x + hp·k inside a step, the new x after its last stage. The probe,
// scaled by the next stage's preconditioning input, is written where the next network pass reads
// it (both rows of a guided particle). An EVAL stage only records k (the final velocity at t = 1
// and the velocity grid). An INIT stage (the run's first) sets up the state from the start
// points in `pos`: probe = x0, acc = 0 and the next network input. Recording is paged: the chunk
// records into the page bound here, which starts at particle rec_p0. Needs common/math.wgsl, common/path.wgsl, common/stage.wgsl.

// The network's output F for the chunk's rows, [rows, 2].
@group(0) @binding(0) var<storage, read> f_out: array<f32>;
// Particle positions x, [n, 2].
@group(0) @binding(1) var<storage, read_write> pos: array<f32>;
// Per particle: the current probe (2) and the stage accumulator (2).
@group(0) @binding(2) var<storage, read_write> aux: array<f32>;
// The network's input for the next stage, chunk by chunk: rpp·p0 + m (and rpp·p0 + len + m).
@group(0) @binding(3) var<storage, read_write> x_in: array<f32>;
// The page's recorded positions [len, frames, 2], endpoints [len, frames − 1, 2] and velocities
// [len, frames, 2], indexed from particle rec_p0.
@group(0) @binding(4) var<storage, read_write> rec_pos: array<f32>;
@group(0) @binding(5) var<storage, read_write> rec_end: array<f32>;
@group(0) @binding(6) var<storage, read_write> rec_vel: array<f32>;
@group(0) @binding(7) var<uniform> s: Stage;
@group(0) @binding(8) var<uniform> ch: Chunk;

// The next stage's network input for particle p (chunk-local m): both rows of a guided particle.
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

fn store2(which: u32, at: u32, v: vec2<f32>) {
    switch which {
        case 0u: {
            rec_pos[2u * at] = v.x;
            rec_pos[2u * at + 1u] = v.y;
        }
        case 1u: {
            rec_end[2u * at] = v.x;
            rec_end[2u * at + 1u] = v.y;
        }
        default: {
            rec_vel[2u * at] = v.x;
            rec_vel[2u * at + 1u] = v.y;
        }
    }
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
        aux[4u * p] = x0.x;
        aux[4u * p + 1u] = x0.y;
        aux[4u * p + 2u] = 0.0;
        aux[4u * p + 3u] = 0.0;
        write_next(m, x0);
        return;
    }
    // Index of particle p in the bound recording page.
    let r = p - ch.rec_p0;
    let probe = vec2<f32>(aux[4u * p], aux[4u * p + 1u]);
    var k = s.skip * probe + s.out_scale * vec2<f32>(f_out[2u * m], f_out[2u * m + 1u]);
    if (ch.rpp == 2u) {
        let nr = ch.len + m;
        let k_null = s.skip * probe + s.out_scale * vec2<f32>(f_out[2u * nr], f_out[2u * nr + 1u]);
        k = k_null + s.cfg_scale * (k - k_null);
    }
    if ((s.kind & KIND_EVAL) != 0u) {
        if ((s.record & RECORD_VELOCITIES) != 0u) {
            store2(2u, r * s.frames + s.frame, k);
        }
        return;
    }
    var x = vec2<f32>(pos[2u * p], pos[2u * p + 1u]);
    var acc = vec2<f32>(aux[4u * p + 2u], aux[4u * p + 3u]);
    let first = (s.kind & KIND_FIRST) != 0u;
    let last = (s.kind & KIND_LAST) != 0u;
    if (first) {
        if ((s.record & RECORD_POSITIONS) != 0u) {
            store2(0u, r * s.frames + s.frame, x);
        }
        if ((s.record & RECORD_VELOCITIES) != 0u) {
            store2(2u, r * s.frames + s.frame, k);
        }
        if ((s.record & RECORD_ENDPOINTS) != 0u) {
            let coef = vec4<f32>(s.ca, s.cb, s.cda, s.cdb);
            store2(1u, r * (s.frames - 1u) + s.frame, predicted_data(coef, x, k));
        }
    }
    // The tableau's sum Σ weight_i·k_i, then x + (Δt/divisor)·sum after the last stage.
    var next = x;
    if (first && last) {
        x = x + s.w * (s.weight * k);
        next = x;
    } else if (first) {
        acc = s.weight * k;
        next = x + s.hp * k;
    } else if (last) {
        x = x + s.w * (acc + s.weight * k);
        next = x;
    } else {
        acc = acc + s.weight * k;
        next = x + s.hp * k;
    }
    if ((s.kind & KIND_FINAL_POSITION) != 0u && (s.record & RECORD_POSITIONS) != 0u) {
        store2(0u, r * s.frames + s.frames - 1u, x);
    }
    pos[2u * p] = x.x;
    pos[2u * p + 1u] = x.y;
    aux[4u * p] = next.x;
    aux[4u * p + 1u] = next.y;
    aux[4u * p + 2u] = acc.x;
    aux[4u * p + 3u] = acc.y;
    if ((s.kind & KIND_HAS_NEXT) != 0u) {
        write_next(m, next);
    }
}
