// Draws a training batch (QR §4.3–§4.4) with the counter-based RNG, exactly as
// flowplay_core::batch::BatchDraws::draw: sample i of step s hashes (i, s·STREAMS + stream).
// Then the path gives x_t and u_t, the preconditioning the network input and target:
//   x_in = c_in·x_t    target = (u_t − skip·x_t) / out.
// Writes t, the (possibly dropped) label, x_in into columns 0…1 of net.0's input rows, and the
// target. Needs common/math.wgsl, common/rng.wgsl, common/path.wgsl, common/train_step.wgsl.

// How x0 and x1 are found.
const SOURCE_NORMAL: u32 = 0u;   // x1 from the data pool, x0 ~ N(0, I)
const SOURCE_POOL: u32 = 1u;     // x1 from the data pool, x0 from the source pool
const SOURCE_PAIRS: u32 = 2u;    // (x0, x1, label) one reflow pair: source[j], data[j], labels[j]
const SOURCE_EXPLICIT: u32 = 3u; // uploaded by the CPU (minibatch OT): 6 words per sample

struct BatchDraw {
    batch: u32,
    data_len: u32,
    source_len: u32,
    mode: u32,
    key: vec2<u32>,
    // 0: uniform t; 1: logit-normal t = sigmoid(mean + std·z).
    time_kind: u32,
    // 1 when labels are used (conditional network).
    conditional: u32,
    t_mean: f32,
    t_std: f32,
    p_drop: f32,
    null_label: u32,
    // Row stride of net.0's input (2 + hidden).
    in_stride: u32,
    // 1 when the data pool has labels.
    labelled: u32,
    _pad0: u32,
    _pad1: u32,
    path: PathParams,
}

@group(0) @binding(0) var<storage, read> data_xy: array<vec2<f32>>;
@group(0) @binding(1) var<storage, read> data_labels: array<u32>;
@group(0) @binding(2) var<storage, read> source_xy: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read> uploaded: array<f32>;
@group(0) @binding(4) var<storage, read_write> t_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> labels_out: array<u32>;
@group(0) @binding(6) var<storage, read_write> net_input: array<f32>;
@group(0) @binding(7) var<storage, read_write> targets: array<vec2<f32>>;
@group(0) @binding(8) var<uniform> u: BatchDraw;
@group(0) @binding(9) var<uniform> step: StepValues;

// `x` with `zero` (which is 0) or'ed into its bits: the same number, but not one a compiler can
// fold into the code.
fn opaque_f32(x: f32, zero: u32) -> f32 {
    return bitcast<f32>(bitcast<u32>(x) | zero);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= u.batch) {
        return;
    }
    // Every uniform a branch tests, here or in the path's functions, is mixed with
    // `never_zero`, which is 0 (i < batch < 2³² − 1) but which no compiler can prove so. Without
    // it lavapipe (Mesa's Vulkan on the CPU, as in CI) specialises this kernel for the uniform
    // values at every dispatch, compiling it afresh with LLVM and keeping every copy: a training
    // run there grew by about 600 KB a step and spent most of its time compiling.
    let never_zero = select(0u, 1u, i == 0xFFFFFFFFu);
    let mode = u.mode | never_zero;
    let labelled = u.labelled | never_zero;
    let time_kind = u.time_kind | never_zero;
    let conditional = u.conditional | never_zero;
    let path = PathParams(
        u.path.kind | never_zero,
        u.path.preconditioned | never_zero,
        opaque_f32(u.path.sigma_min, never_zero),
        opaque_f32(u.path.sigma_max, never_zero),
        opaque_f32(u.path.sigma_data, never_zero),
        0.0,
        0.0,
        0.0,
    );
    var x0: vec2<f32>;
    var x1: vec2<f32>;
    var label = 0u;
    var t: f32;
    if (mode == SOURCE_EXPLICIT) {
        let e = (step.slot * u.batch + i) * 6u;
        x0 = vec2<f32>(uploaded[e], uploaded[e + 1u]);
        x1 = vec2<f32>(uploaded[e + 2u], uploaded[e + 3u]);
        t = uploaded[e + 4u];
        label = bitcast<u32>(uploaded[e + 5u]);
    } else {
        let indices = threefry2x32(u.key, vec2<u32>(i, stream_word(step.step, STREAM_INDICES)));
        let j = indices.x % u.data_len;
        x1 = data_xy[j];
        if (labelled != 0u) {
            label = data_labels[j];
        }
        if (mode == SOURCE_PAIRS) {
            x0 = source_xy[j];
        } else if (mode == SOURCE_POOL) {
            x0 = source_xy[indices.y % u.source_len];
        } else {
            x0 = normal_pair(threefry2x32(u.key, vec2<u32>(i, stream_word(step.step, STREAM_SOURCE_NOISE))));
        }
        let time_bits = threefry2x32(u.key, vec2<u32>(i, stream_word(step.step, STREAM_TIME)));
        if (time_kind == 0u) {
            t = unit_f32(time_bits.x);
        } else {
            let z = normal_pair(time_bits).x;
            t = 1.0 / (1.0 + exp_f32(-(u.t_mean + u.t_std * z)));
        }
        if (conditional != 0u) {
            let drop = threefry2x32(u.key, vec2<u32>(i, stream_word(step.step, STREAM_LABEL_DROP)));
            if (unit_f32(drop.x) < u.p_drop) {
                label = u.null_label;
            }
        }
    }
    let c = path_coefficients(path, t);
    let x_t = c.x * x0 + c.y * x1;
    let u_t = c.z * x0 + c.w * x1;
    let pre = path_preconditioning(path, t);
    t_out[i] = t;
    labels_out[i] = label;
    net_input[i * u.in_stride] = pre.x * x_t.x;
    net_input[i * u.in_stride + 1u] = pre.x * x_t.y;
    targets[i] = (u_t - pre.y * x_t) / pre.z;
}
