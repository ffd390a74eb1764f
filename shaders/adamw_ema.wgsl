// AdamW in the order of PyTorch's _single_tensor_adamw, on the clipped gradient, fused with the
// EMA of QR §4.4 — one pass over the parameters:
//   g ← coef·g;  θ ← θ·(1 − lr·λ);  m ← m + (1 − β1)(g − m);  v ← β2·v + (1 − β2)·g²
//   θ ← θ − (lr / (1 − β1ᵗ))·m / (√v / √(1 − β2ᵗ) + ε);  ema ← β_ema·ema + (1 − β_ema)·θ
// The bias corrections are computed per step on the CPU in f64, as the CPU reference does.
// Nothing changes when step_stats.wgsl found the step non-finite. Needs common/train_step.wgsl.

struct AdamW {
    count: u32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    ema_decay: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> grads: array<f32>;
@group(0) @binding(1) var<storage, read> control: Control;
@group(0) @binding(2) var<storage, read_write> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> adam_m: array<f32>;
@group(0) @binding(4) var<storage, read_write> adam_v: array<f32>;
@group(0) @binding(5) var<storage, read_write> ema: array<f32>;
@group(0) @binding(6) var<uniform> u: AdamW;
@group(0) @binding(7) var<uniform> step: StepValues;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= u.count || control.apply == 0u) {
        return;
    }
    let g = grads[i] * control.coef;
    var p = params[i] * step.decay;
    let m = adam_m[i] + (1.0 - u.beta1) * (g - adam_m[i]);
    let v = u.beta2 * adam_v[i] + (1.0 - u.beta2) * g * g;
    let denom = sqrt(v) / step.bias2_sqrt + u.eps;
    p -= step.step_size * m / denom;
    params[i] = p;
    adam_m[i] = m;
    adam_v[i] = v;
    ema[i] = ema[i] * u.ema_decay + p * (1.0 - u.ema_decay);
}
