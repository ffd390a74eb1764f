// Threefry-2x32-20 (Salmon et al. 2011) and the float conversions of flowplay_core::rng; keep in
// sync. Counter-based: thread i of training step s hashes (i, s·STREAMS + stream), so the GPU
// draws exactly the CPU's numbers. Needs common/math.wgsl.

const KS_PARITY: u32 = 0x1BD11BDAu;
const STREAMS: u32 = 8u;
const STREAM_SOURCE_NOISE: u32 = 0u;
const STREAM_TIME: u32 = 1u;
const STREAM_INDICES: u32 = 2u;
const STREAM_LABEL_DROP: u32 = 3u;

fn rotl(x: u32, r: u32) -> u32 {
    return (x << r) | (x >> (32u - r));
}

fn threefry_round(v: vec2<u32>, r: u32) -> vec2<u32> {
    let x0 = v.x + v.y;
    return vec2<u32>(x0, rotl(v.y, r) ^ x0);
}

// Key injection after every fourth round (s = 1…5).
fn threefry_inject(v: vec2<u32>, ks: vec3<u32>, s: u32) -> vec2<u32> {
    let i = s % 3u;
    let j = (s + 1u) % 3u;
    return vec2<u32>(v.x + ks[i], v.y + ks[j] + s);
}

fn threefry2x32(key: vec2<u32>, counter: vec2<u32>) -> vec2<u32> {
    let ks = vec3<u32>(key.x, key.y, KS_PARITY ^ key.x ^ key.y);
    var v = vec2<u32>(counter.x + ks.x, counter.y + ks.y);
    for (var s = 1u; s <= 5u; s++) {
        // Rotations R_32x2 = (13, 15, 26, 6, 17, 29, 16, 24), four per group.
        if ((s & 1u) == 1u) {
            v = threefry_round(v, 13u);
            v = threefry_round(v, 15u);
            v = threefry_round(v, 26u);
            v = threefry_round(v, 6u);
        } else {
            v = threefry_round(v, 17u);
            v = threefry_round(v, 29u);
            v = threefry_round(v, 16u);
            v = threefry_round(v, 24u);
        }
        v = threefry_inject(v, ks, s);
    }
    return v;
}

// Uniform in [0, 1) from the top 24 bits.
fn unit_f32(bits: u32) -> f32 {
    return f32(bits >> 8u) * (1.0 / 16777216.0);
}

// Uniform in (0, 1].
fn open_unit_f32(bits: u32) -> f32 {
    return f32((bits >> 8u) + 1u) * (1.0 / 16777216.0);
}

// Two standard normals (Box–Muller).
fn normal_pair(bits: vec2<u32>) -> vec2<f32> {
    let radius = sqrt(-2.0 * ln_f32(open_unit_f32(bits.x)));
    let sc = sin_cos(TAU * unit_f32(bits.y));
    return vec2<f32>(radius * sc.y, radius * sc.x);
}

// The counter's second word for `stream` at training step `step` (low 32 bits of the step).
fn stream_word(step: u32, stream: u32) -> u32 {
    return step * STREAMS + stream;
}
