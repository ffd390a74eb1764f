//! The trace of the network's Jacobian with respect to its position input, `tr ∂F/∂x`, by
//! forward mode through the layers: the divergence the exact likelihood integrates
//! ([`crate::likelihood`]).
//!
//! The position x enters only `net.0`, through its first two columns `W0[:, 0..2]`, so the
//! tangent of the first hidden layer along input direction d is `ȧ₀ = SiLU′(z₀) ⊙ W0[:, d]`; each
//! later layer maps a tangent as `ȧ_l = SiLU′(z_l) ⊙ (W_l·ȧ_{l−1})` (biases drop out) and the
//! output layer gives `Ḟ = W_out·ȧ`. The trace is `Ḟ⁽⁰⁾₀ + Ḟ⁽¹⁾₁`. Both directions go through one
//! matrix product per layer, as `2·rows` tangent rows. `shaders/linear_jvp.wgsl` does the same on
//! the GPU.

use super::{DIM, Mlp, Prepared, Workspace};
use crate::kernels::{MatRef, gemm};

/// Scratch memory of the tangent pass (two tangent rows per input row). Reused across calls.
#[derive(Clone, Debug, Default)]
pub struct TraceWorkspace {
    current: Vec<f32>,
    next: Vec<f32>,
    out: Vec<f32>,
}

/// `SiLU′(z)` from the stored activation `a = SiLU(z)` and `s = σ(z)`: `s + a·(1 − s)`.
#[inline]
fn silu_slope(a: f32, s: f32) -> f32 {
    s + a * (1.0 - s)
}

impl Mlp {
    /// [`Mlp::infer`] (`out` = F(t, x)), and `trace[r] = tr ∂F/∂x` at each row: the sum of
    /// `∂F₀/∂x₀` and `∂F₁/∂x₁`, exact (forward mode, no finite differences).
    #[allow(clippy::too_many_arguments, reason = "the inputs of one network pass")]
    pub fn infer_with_trace(
        &self,
        params: &[f32],
        prepared: &Prepared,
        t: &[f32],
        x: &[[f32; 2]],
        labels: Option<&[u32]>,
        ws: &mut Workspace,
        tws: &mut TraceWorkspace,
        out: &mut [[f32; 2]],
        trace: &mut [f32],
    ) {
        self.infer(params, prepared, t, x, labels, ws, out);
        let rows = t.len();
        assert_eq!(trace.len(), rows);
        let h = self.config.hidden;
        let in0 = DIM + h;
        let w0 = self.layers[0].weight(params);
        tws.current.resize(2 * rows * h, 0.0);
        tws.next.resize(2 * rows * h, 0.0);
        tws.out.resize(2 * rows * DIM, 0.0);
        // Tangent row d·rows + r: direction d at row r.
        for d in 0..DIM {
            for r in 0..rows {
                let row = &mut tws.current[(d * rows + r) * h..][..h];
                let acts = &ws.acts[0][r * h..][..h];
                let sigs = &ws.sigs[0][r * h..][..h];
                for (o, value) in row.iter_mut().enumerate() {
                    *value = silu_slope(acts[o], sigs[o]) * w0[o * in0 + d];
                }
            }
        }
        for l in 1..self.config.depth {
            gemm(
                1.0,
                MatRef::row_major(&tws.current, 2 * rows, h),
                self.layers[l].weight_t(params),
                0.0,
                &mut tws.next,
                h,
            );
            for d in 0..DIM {
                for r in 0..rows {
                    let row = &mut tws.next[(d * rows + r) * h..][..h];
                    let acts = &ws.acts[l][r * h..][..h];
                    let sigs = &ws.sigs[l][r * h..][..h];
                    for (o, value) in row.iter_mut().enumerate() {
                        *value *= silu_slope(acts[o], sigs[o]);
                    }
                }
            }
            std::mem::swap(&mut tws.current, &mut tws.next);
        }
        let last = &self.layers[self.config.depth];
        gemm(
            1.0,
            MatRef::row_major(&tws.current, 2 * rows, h),
            last.weight_t(params),
            0.0,
            &mut tws.out,
            DIM,
        );
        for (r, value) in trace.iter_mut().enumerate() {
            *value = tws.out[r * DIM] + tws.out[(rows + r) * DIM + 1];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mlp::MlpConfig;

    /// The trace against central differences of the network (f32, a step of 1e-3 on inputs of
    /// order one: an error of order 1e-4 relative).
    #[test]
    fn the_trace_matches_finite_differences() {
        for (depth, classes) in [(1, 0), (2, 0), (3, 3)] {
            let mlp = Mlp::new(MlpConfig {
                hidden: 24,
                depth,
                t_dim: 8,
                t_scale: 1.0,
                num_classes: classes,
            })
            .unwrap();
            let params = mlp.init_params(5);
            let mut prepared = Prepared::default();
            mlp.prepare(&params, &mut prepared);
            let x: Vec<[f32; 2]> = (0..7)
                .map(|i| [0.3 * i as f32 - 1.0, 0.8 - 0.25 * i as f32])
                .collect();
            let n = x.len();
            let t = vec![0.4; n];
            let labels: Option<Vec<u32>> =
                (classes > 0).then(|| (0..n as u32).map(|i| i % 4).collect());
            let (mut ws, mut tws) = (Workspace::new(), TraceWorkspace::default());
            let mut out = vec![[0.0; 2]; n];
            let mut trace = vec![0.0; n];
            mlp.infer_with_trace(
                &params,
                &prepared,
                &t,
                &x,
                labels.as_deref(),
                &mut ws,
                &mut tws,
                &mut out,
                &mut trace,
            );
            let eps = 1e-3;
            let f = |x: &[[f32; 2]], ws: &mut Workspace| {
                let mut o = vec![[0.0; 2]; n];
                mlp.infer(&params, &prepared, &t, x, labels.as_deref(), ws, &mut o);
                o
            };
            let mut numeric = vec![0.0_f64; n];
            for d in 0..2 {
                let shift = |s: f32| -> Vec<[f32; 2]> {
                    x.iter()
                        .map(|p| {
                            let mut q = *p;
                            q[d] += s;
                            q
                        })
                        .collect()
                };
                let plus = f(&shift(eps), &mut ws);
                let minus = f(&shift(-eps), &mut ws);
                for r in 0..n {
                    numeric[r] += f64::from(plus[r][d] - minus[r][d]) / (2.0 * f64::from(eps));
                }
            }
            for r in 0..n {
                let err = (f64::from(trace[r]) - numeric[r]).abs();
                assert!(
                    err < 2e-3 * (1.0 + numeric[r].abs()),
                    "depth {depth}, row {r}: {} vs {}",
                    trace[r],
                    numeric[r]
                );
            }
        }
    }
}
