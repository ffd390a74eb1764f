// Closes a training step (one workgroup): the batch loss and the global gradient norm from
// their partial sums (added in a fixed order), the clipping factor min(1, c / (‖g‖ + 1e-6)), and
// the divergence guard: a non-finite loss or norm stops every update from here on (the flag is
// sticky until the CPU clears it), so the weights stay those of the last good step. Writes
// (loss, norm, lr, ok) to this step's slot of the stats buffer, which the CPU reads back later.
// Needs common/math.wgsl (is_finite), common/train_step.wgsl and common/reduce.wgsl.

struct StepStats {
    loss_count: u32,
    // 1 / (2B): the MSE's denominator.
    inv_denominator: f32,
    // Max gradient norm; 0 disables clipping.
    clip: f32,
    _pad0: u32,
}

@group(0) @binding(0) var<storage, read> loss_partials: array<f32>;
@group(0) @binding(1) var<storage, read> norm_partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> control: Control;
@group(0) @binding(3) var<storage, read_write> stats: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> u: StepStats;
@group(0) @binding(5) var<uniform> step: StepValues;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
    var loss = 0.0;
    for (var i = lid; i < u.loss_count; i += 256u) {
        loss += loss_partials[i];
    }
    let loss_total = workgroup_sum(lid, loss);
    let norm_total = workgroup_sum(lid, norm_partials[lid]);
    if (lid == 0u) {
        let loss = loss_total * u.inv_denominator;
        let norm = sqrt(norm_total);
        var coef = 1.0;
        if (u.clip > 0.0) {
            coef = min(1.0, u.clip / (norm + 1e-6));
        }
        let ok = is_finite(loss) && is_finite(norm) && control.halted == 0u;
        control.coef = coef;
        control.apply = select(0u, 1u, ok);
        if (!ok) {
            control.halted = 1u;
        }
        stats[step.slot] = vec4<f32>(loss, norm, step.lr, select(0.0, 1.0, ok));
    }
}
