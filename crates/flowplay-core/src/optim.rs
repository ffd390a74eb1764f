//! AdamW with PyTorch's semantics, global gradient-norm clipping and the EMA of QR §4.4.

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::par;

/// AdamW's hyper-parameters (`torch.optim.AdamW`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    /// Learning rate.
    pub lr: f32,
    /// β₁, the first moment's decay.
    pub beta1: f32,
    /// β₂, the second moment's decay.
    pub beta2: f32,
    /// ε added to the denominator.
    pub eps: f32,
    /// Decoupled weight decay.
    pub weight_decay: f32,
}

impl Default for AdamWConfig {
    /// PyTorch's defaults except the weight decay, which the Quick Reference sets to 0.
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

impl AdamWConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), Error> {
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::config(format!(
                "the learning rate must be positive, got {}",
                self.lr
            )));
        }
        for (name, beta) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&beta) {
                return Err(Error::config(format!(
                    "{name} must be in [0, 1), got {beta}"
                )));
            }
        }
        if self.eps <= 0.0 || self.eps.is_nan() {
            return Err(Error::config(format!(
                "eps must be positive, got {}",
                self.eps
            )));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(Error::config(format!(
                "weight decay must be zero or positive, got {}",
                self.weight_decay
            )));
        }
        Ok(())
    }
}

/// AdamW's state: first and second moments and the step count.
#[derive(Clone, Debug)]
pub struct AdamW {
    config: AdamWConfig,
    m: Vec<f32>,
    v: Vec<f32>,
    step: u64,
}

impl AdamW {
    /// Fresh state for `num_params` parameters.
    pub fn new(num_params: usize, config: AdamWConfig) -> Self {
        Self {
            config,
            m: vec![0.0; num_params],
            v: vec![0.0; num_params],
            step: 0,
        }
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AdamWConfig {
        &self.config
    }

    /// Changes the hyper-parameters; the moments are kept.
    pub fn set_config(&mut self, config: AdamWConfig) {
        self.config = config;
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The first and second moments.
    pub fn moments(&self) -> (&[f32], &[f32]) {
        (&self.m, &self.v)
    }

    /// Restores a saved state (moments and step count), e.g. the GPU trainer's, so training can
    /// go on here.
    pub fn restore(&mut self, m: &[f32], v: &[f32], steps: u64) -> Result<(), Error> {
        if m.len() != self.m.len() || v.len() != self.v.len() {
            return Err(Error::config(format!(
                "optimizer state for {} parameters, expected {}",
                m.len(),
                self.m.len()
            )));
        }
        self.m.copy_from_slice(m);
        self.v.copy_from_slice(v);
        self.step = steps;
        Ok(())
    }

    /// One update with learning rate `lr` (which a schedule may vary), in the order of PyTorch's
    /// `_single_tensor_adamw`:
    ///
    /// ```text
    /// θ ← θ·(1 − lr·λ)
    /// m ← lerp(m, g, 1 − β₁);  v ← β₂·v + (1 − β₂)·g²
    /// θ ← θ − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
    /// ```
    pub fn step(&mut self, params: &mut [f32], grads: &[f32], lr: f32) {
        assert_eq!(params.len(), self.m.len(), "parameter count");
        assert_eq!(grads.len(), self.m.len(), "gradient count");
        self.step += 1;
        let c = self.config;
        let t = self.step as f64;
        let bias1 = 1.0 - f64::from(c.beta1).powf(t);
        let bias2 = 1.0 - f64::from(c.beta2).powf(t);
        let step_size = (f64::from(lr) / bias1) as f32;
        let bias2_sqrt = bias2.sqrt() as f32;
        let decay = 1.0 - lr * c.weight_decay;
        let (one_minus_b1, one_minus_b2) = (1.0 - c.beta1, 1.0 - c.beta2);
        let update = |params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32]| {
            for (((p, &g), m), v) in params.iter_mut().zip(grads).zip(m).zip(v) {
                *p *= decay;
                *m += one_minus_b1 * (g - *m);
                *v = c.beta2 * *v + one_minus_b2 * g * g;
                let denom = v.sqrt() / bias2_sqrt + c.eps;
                *p -= step_size * *m / denom;
            }
        };
        // Elementwise: split into blocks across threads.
        let mut jobs: Vec<_> = params
            .chunks_mut(PARALLEL_BLOCK)
            .zip(grads.chunks(PARALLEL_BLOCK))
            .zip(self.m.chunks_mut(PARALLEL_BLOCK))
            .zip(self.v.chunks_mut(PARALLEL_BLOCK))
            .collect();
        par::for_each_mut(&mut jobs, |(((p, g), m), v)| update(p, g, m, v));
    }
}

/// Elements per parallel block of the elementwise optimizer updates.
const PARALLEL_BLOCK: usize = 1 << 14;

/// The global L2 norm of the gradient (`torch.nn.utils.clip_grad_norm_`'s `total_norm`).
pub fn grad_norm(grads: &[f32]) -> f32 {
    grads
        .iter()
        .map(|&g| f64::from(g) * f64::from(g))
        .sum::<f64>()
        .sqrt() as f32
}

/// `clip_grad_norm_(max_norm)`: scales the gradient by `min(1, max_norm / (‖g‖ + 1e-6))`.
/// Returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut [f32], max_norm: f32) -> f32 {
    let norm = grad_norm(grads);
    let coef = (f64::from(max_norm) / (f64::from(norm) + 1e-6)).min(1.0) as f32;
    if coef < 1.0 {
        grads.iter_mut().for_each(|g| *g *= coef);
    }
    norm
}

/// QR §4.4's `_update_ema`: `ema ← decay·ema + (1 − decay)·θ`.
pub fn ema_update(ema: &mut [f32], params: &[f32], decay: f32) {
    assert_eq!(ema.len(), params.len());
    let rest = 1.0 - decay;
    let mut jobs: Vec<_> = ema
        .chunks_mut(PARALLEL_BLOCK)
        .zip(params.chunks(PARALLEL_BLOCK))
        .collect();
    par::for_each_mut(&mut jobs, |(e, p)| {
        for (e, &p) in e.iter_mut().zip(p.iter()) {
            *e = *e * decay + p * rest;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_adam_step_moves_by_lr() {
        // With bias correction the first step is lr·g/(|g| + ε): about lr in each coordinate.
        let mut params = vec![1.0_f32, -2.0, 0.5];
        let grads = vec![0.3_f32, -4.0, 1e-3];
        let mut adam = AdamW::new(3, AdamWConfig::default());
        adam.step(&mut params, &grads, 0.01);
        assert!((params[0] - 0.99).abs() < 1e-6);
        assert!((params[1] + 1.99).abs() < 1e-6);
        assert!((params[2] - 0.49).abs() < 1e-5);
    }

    #[test]
    fn clipping_caps_the_norm() {
        let mut g = vec![3.0_f32, 4.0];
        let norm = clip_grad_norm(&mut g, 1.0);
        assert!((norm - 5.0).abs() < 1e-6);
        assert!((grad_norm(&g) - 1.0).abs() < 1e-5);
        let mut small = vec![0.3_f32, 0.4];
        clip_grad_norm(&mut small, 1.0);
        assert_eq!(small, vec![0.3, 0.4]);
    }

    #[test]
    fn ema_moves_toward_params() {
        let mut ema = vec![0.0_f32; 2];
        ema_update(&mut ema, &[1.0, -1.0], 0.9);
        assert!((ema[0] - 0.1).abs() < 1e-7 && (ema[1] + 0.1).abs() < 1e-7);
    }
}
