//! The velocity network of QR §4.2, `VectorFieldMLP`, with a hand-written backward pass.
//!
//! ```text
//! t_embed = Sequential(SinusoidalTimeEmbed(t_dim), Linear(t_dim, h), SiLU, Linear(h, h))
//! net     = Sequential(Linear(2 + h, h), SiLU, [Linear(h, h), SiLU] × (depth − 1), Linear(h, 2))
//! v(t, x) = net(cat[x, t_embed(t_scale · t) (+ label_embed[y])])
//! ```
//!
//! Depth 2 is exactly the Quick Reference's module. With class conditioning a label embedding
//! (`nn.Embedding(num_classes + 1, h)`, the last row is the null label used for classifier-free
//! guidance, QR §7.2) is added to the time embedding.
//!
//! All parameters live in one flat `f32` buffer, tensor after tensor in the order of PyTorch's
//! `state_dict()`, each `nn.Linear` weight `[out, in]` row-major; [`ParamLayout`] names them.
//! Activations are row-major `[rows, features]`.

mod trace;

use serde::{Deserialize, Serialize};

pub use trace::TraceWorkspace;

use crate::Error;
use crate::kernels::{self, MatRef, gemm, gemm_parallel};
use crate::rng::Rng;

/// Dimension of the data (2-D points).
pub const DIM: usize = 2;

/// The network's shape.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlpConfig {
    /// Width of every hidden layer and of the time embedding.
    pub hidden: usize,
    /// Number of hidden layers in `net` (the Quick Reference has 2).
    pub depth: usize,
    /// Size of the sinusoidal time embedding (even).
    pub t_dim: usize,
    /// The network sees `t_scale · t`: 1 as in the Quick Reference, 1000 as in TRELLIS.
    pub t_scale: f32,
    /// Number of classes for conditioning (0: unconditional).
    pub num_classes: u32,
}

impl Default for MlpConfig {
    /// The Quick Reference's `VectorFieldMLP(dim=2, hidden=256, t_dim=128)`.
    fn default() -> Self {
        Self {
            hidden: 256,
            depth: 2,
            t_dim: 128,
            t_scale: 1.0,
            num_classes: 0,
        }
    }
}

impl MlpConfig {
    /// Checks the sizes.
    pub fn validate(&self) -> Result<(), Error> {
        if self.hidden == 0 || self.hidden > 4096 {
            return Err(Error::config(format!(
                "hidden must be between 1 and 4096, got {}",
                self.hidden
            )));
        }
        if self.depth == 0 || self.depth > 16 {
            return Err(Error::config(format!(
                "depth must be between 1 and 16, got {}",
                self.depth
            )));
        }
        if self.t_dim < 2 || !self.t_dim.is_multiple_of(2) || self.t_dim > 4096 {
            return Err(Error::config(format!(
                "t-dim must be an even number between 2 and 4096, got {}",
                self.t_dim
            )));
        }
        if !(self.t_scale > 0.0 && self.t_scale.is_finite()) {
            return Err(Error::config(format!(
                "t-scale must be positive, got {}",
                self.t_scale
            )));
        }
        if self.num_classes > 1024 {
            return Err(Error::config(format!(
                "at most 1024 classes, got {}",
                self.num_classes
            )));
        }
        Ok(())
    }

    /// The label index that means "no label" (classifier-free guidance's ∅).
    pub fn null_label(&self) -> u32 {
        self.num_classes
    }

    /// Whether the network takes class labels.
    pub fn is_conditional(&self) -> bool {
        self.num_classes > 0
    }
}

/// Where one tensor sits in the flat parameter buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamEntry {
    /// The PyTorch `state_dict` name, e.g. `net.0.weight`.
    pub name: String,
    /// The PyTorch shape (`[out, in]` for a weight).
    pub shape: Vec<usize>,
    /// Offset in the flat buffer, in elements.
    pub offset: usize,
}

impl ParamEntry {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor is empty (never, for a valid network).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tensor's range in the flat buffer.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// The names, shapes and offsets of every parameter tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamLayout {
    /// The tensors in `state_dict` order.
    pub entries: Vec<ParamEntry>,
    /// Total number of parameters.
    pub total: usize,
}

impl ParamLayout {
    /// The entry called `name`.
    pub fn entry(&self, name: &str) -> Option<&ParamEntry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

/// Offsets of one linear layer's weight `[out, in]` and bias `[out]`.
#[derive(Clone, Copy, Debug)]
struct Linear {
    weight: usize,
    bias: usize,
    inputs: usize,
    outputs: usize,
}

impl Linear {
    fn weight<'a>(&self, params: &'a [f32]) -> &'a [f32] {
        &params[self.weight..self.weight + self.inputs * self.outputs]
    }
    fn bias<'a>(&self, params: &'a [f32]) -> &'a [f32] {
        &params[self.bias..self.bias + self.outputs]
    }
    /// `W` viewed as the `[in, out]` matrix `Wᵀ`.
    fn weight_t<'a>(&self, params: &'a [f32]) -> MatRef<'a> {
        MatRef::row_major(self.weight(params), self.outputs, self.inputs).t()
    }
}

/// The network: its configuration, parameter layout and precomputed embedding frequencies.
/// It holds no parameters; they are passed as a flat slice, so that one model can evaluate raw
/// and EMA weights alike.
#[derive(Clone, Debug)]
pub struct Mlp {
    config: MlpConfig,
    layout: ParamLayout,
    /// `t_embed.1`, `t_embed.3`.
    t1: Linear,
    t3: Linear,
    /// `net.0`, `net.2`, …, `net.{2·depth}` (the last is the output layer).
    layers: Vec<Linear>,
    /// Offset of `label_embed.weight`, if conditional.
    label_embed: Option<usize>,
    /// `f_i = exp(−ln(10000)·i/half)`.
    freqs: Vec<f32>,
}

impl Mlp {
    /// The network for `config`.
    pub fn new(config: MlpConfig) -> Result<Self, Error> {
        config.validate()?;
        let h = config.hidden;
        let mut entries = Vec::new();
        let mut offset = 0;
        let mut linear = |entries: &mut Vec<ParamEntry>, name: &str, inputs, outputs| {
            let weight = offset;
            entries.push(ParamEntry {
                name: format!("{name}.weight"),
                shape: vec![outputs, inputs],
                offset,
            });
            offset += inputs * outputs;
            let bias = offset;
            entries.push(ParamEntry {
                name: format!("{name}.bias"),
                shape: vec![outputs],
                offset,
            });
            offset += outputs;
            Linear {
                weight,
                bias,
                inputs,
                outputs,
            }
        };
        let t1 = linear(&mut entries, "t_embed.1", config.t_dim, h);
        let t3 = linear(&mut entries, "t_embed.3", h, h);
        let mut layers = Vec::with_capacity(config.depth + 1);
        for i in 0..config.depth {
            let inputs = if i == 0 { DIM + h } else { h };
            layers.push(linear(&mut entries, &format!("net.{}", 2 * i), inputs, h));
        }
        layers.push(linear(
            &mut entries,
            &format!("net.{}", 2 * config.depth),
            h,
            DIM,
        ));
        let label_embed = if config.is_conditional() {
            let at = offset;
            let rows = config.num_classes as usize + 1;
            entries.push(ParamEntry {
                name: "label_embed.weight".into(),
                shape: vec![rows, h],
                offset: at,
            });
            offset += rows * h;
            Some(at)
        } else {
            None
        };
        let half = config.t_dim / 2;
        let freqs = (0..half)
            .map(|i| (-(10_000.0_f64.ln()) * i as f64 / half as f64).exp() as f32)
            .collect();
        Ok(Self {
            config,
            layout: ParamLayout {
                entries,
                total: offset,
            },
            t1,
            t3,
            layers,
            label_embed,
            freqs,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MlpConfig {
        &self.config
    }

    /// The parameter layout.
    pub fn layout(&self) -> &ParamLayout {
        &self.layout
    }

    /// The time embedding's frequencies `f_i = exp(−ln(10000)·i/half)`, `i < t_dim/2`, rounded
    /// to f32 once (the GPU kernels take this table so that both compute `t·f_i` identically).
    pub fn freqs(&self) -> &[f32] {
        &self.freqs
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.layout.total
    }

    /// Parameters initialised as PyTorch does: `nn.Linear` weights and biases uniform in
    /// `±1/√fan_in` (`kaiming_uniform_(a=√5)`), `nn.Embedding` from N(0, 1).
    pub fn init_params(&self, seed: u64) -> Vec<f32> {
        let mut rng = Rng::with_domain(seed, "init");
        let mut params = vec![0.0; self.layout.total];
        for entry in &self.layout.entries {
            let slice = &mut params[entry.range()];
            if entry.name.starts_with("label_embed") {
                slice.iter_mut().for_each(|p| *p = rng.normal());
            } else {
                let fan_in = self.fan_in(entry);
                let bound = 1.0 / (fan_in as f32).sqrt();
                slice
                    .iter_mut()
                    .for_each(|p| *p = rng.uniform_in(-bound, bound));
            }
        }
        params
    }

    fn fan_in(&self, entry: &ParamEntry) -> usize {
        let weight_name = entry.name.replace(".bias", ".weight");
        self.layout
            .entry(&weight_name)
            .map_or(1, |w| w.shape.get(1).copied().unwrap_or(1))
    }

    /// `SinusoidalTimeEmbed(t_dim)` of `t_scale·t` for each t, into `out` (`[rows, t_dim]`):
    /// `cat(sin(t·f), cos(t·f))`.
    pub fn time_embedding(&self, t: &[f32], out: &mut [f32]) {
        let half = self.freqs.len();
        let dim = 2 * half;
        for (row, &time) in out.chunks_exact_mut(dim).zip(t) {
            let scaled = time * self.config.t_scale;
            let (sin_part, cos_part) = row.split_at_mut(half);
            for ((s, c), &f) in sin_part
                .iter_mut()
                .zip(cos_part.iter_mut())
                .zip(&self.freqs)
            {
                let (sv, cv) = kernels::sin_cos(scaled * f);
                *s = sv;
                *c = cv;
            }
        }
    }

    /// Quantities derived from the parameters once per update and shared by every pass: see
    /// [`Prepared`].
    pub fn prepare(&self, params: &[f32], prepared: &mut Prepared) {
        assert_eq!(params.len(), self.layout.total, "parameter buffer size");
        let h = self.config.hidden;
        let in0 = DIM + h;
        let net0 = &self.layers[0];
        let w0 = net0.weight(params);
        // Wt: the columns of net.0.weight that multiply the time embedding, [h, h] at stride in0.
        let wt = MatRef::strided(&w0[DIM..], h, h, in0, 1);
        prepared.fused.resize(h * h, 0.0);
        prepared.fused_bias.resize(h, 0.0);
        // M = Wt·W3.
        gemm_parallel(
            1.0,
            wt,
            MatRef::row_major(self.t3.weight(params), h, h),
            0.0,
            &mut prepared.fused,
            h,
        );
        // c = Wt·b3 + b0, as a 1×h row: b3ᵀ·Wtᵀ.
        prepared.fused_bias.copy_from_slice(net0.bias(params));
        gemm(
            1.0,
            MatRef::row_major(self.t3.bias(params), 1, h),
            wt.t(),
            1.0,
            &mut prepared.fused_bias,
            h,
        );
        // P[c] = Wt·E[c] for every label row.
        if let Some(at) = self.label_embed {
            let classes = self.config.num_classes as usize + 1;
            prepared.label_rows.resize(classes * h, 0.0);
            gemm(
                1.0,
                MatRef::row_major(&params[at..at + classes * h], classes, h),
                wt.t(),
                0.0,
                &mut prepared.label_rows,
                h,
            );
        } else {
            prepared.label_rows.clear();
        }
        prepared.ready_for = Some(params.len());
    }

    /// Forward pass for `rows` samples: `out` (`[rows, 2]`) = v(t, x), keeping in `ws` what
    /// [`Mlp::backward`] needs. `prepared` must come from [`Mlp::prepare`] on the same `params`.
    /// `labels` are required exactly when the network is conditional.
    #[allow(clippy::too_many_arguments, reason = "the inputs of one network pass")]
    pub fn forward(
        &self,
        params: &[f32],
        prepared: &Prepared,
        t: &[f32],
        x: &[[f32; 2]],
        labels: Option<&[u32]>,
        ws: &mut Workspace,
        out: &mut [[f32; 2]],
    ) {
        self.pass(params, prepared, t, x, labels, ws, out, true);
    }

    /// Forward pass for inference (sampling): the same outputs as [`Mlp::forward`], without
    /// keeping activations for a backward pass. When every row has the same t, as in an ODE
    /// step, the time branch is evaluated once instead of once per row.
    #[allow(clippy::too_many_arguments, reason = "the inputs of one network pass")]
    pub fn infer(
        &self,
        params: &[f32],
        prepared: &Prepared,
        t: &[f32],
        x: &[[f32; 2]],
        labels: Option<&[u32]>,
        ws: &mut Workspace,
        out: &mut [[f32; 2]],
    ) {
        self.pass(params, prepared, t, x, labels, ws, out, false);
    }

    #[allow(clippy::too_many_arguments, reason = "the inputs of one network pass")]
    fn pass(
        &self,
        params: &[f32],
        prepared: &Prepared,
        t: &[f32],
        x: &[[f32; 2]],
        labels: Option<&[u32]>,
        ws: &mut Workspace,
        out: &mut [[f32; 2]],
        for_backward: bool,
    ) {
        let rows = t.len();
        assert_eq!(params.len(), self.layout.total, "parameter buffer size");
        assert_eq!(
            prepared.ready_for,
            Some(params.len()),
            "call Mlp::prepare after every parameter change"
        );
        assert_eq!(x.len(), rows);
        assert_eq!(out.len(), rows);
        assert_eq!(
            labels.is_some(),
            self.label_embed.is_some(),
            "labels must be given exactly for a conditional network"
        );
        ws.ensure(self, rows);
        ws.rows = rows;
        let h = self.config.hidden;
        let t_dim = self.config.t_dim;
        let shared_t =
            !for_backward && rows > 1 && t.iter().all(|&v| v.to_bits() == t[0].to_bits());
        let t_rows = if shared_t { 1 } else { rows };

        // Time branch: a1 = SiLU(emb(t)·W1ᵀ + b1), then z0 = a1·Mᵀ + c (the fused t_embed.3 and
        // time columns of net.0).
        self.time_embedding(&t[..t_rows], &mut ws.t_emb[..t_rows * t_dim]);
        let a1 = &mut ws.t_hidden[..t_rows * h];
        kernels::broadcast_rows(a1, t_rows, h, self.t1.bias(params));
        gemm(
            1.0,
            MatRef::row_major(&ws.t_emb, t_rows, t_dim),
            self.t1.weight_t(params),
            1.0,
            a1,
            h,
        );
        kernels::silu_forward(a1, &mut ws.t_sig[..t_rows * h]);
        let z0 = &mut ws.acts[0][..rows * h];
        kernels::broadcast_rows(z0, t_rows, h, &prepared.fused_bias);
        gemm(
            1.0,
            MatRef::row_major(&ws.t_hidden, t_rows, h),
            MatRef::row_major(&prepared.fused, h, h).t(),
            1.0,
            z0,
            h,
        );
        if shared_t {
            let (first, rest) = z0.split_at_mut(h);
            for row in rest.chunks_exact_mut(h) {
                row.copy_from_slice(first);
            }
        }
        // + Wx·x + P[label].
        let w0 = self.layers[0].weight(params);
        let in0 = DIM + h;
        for (row, p) in z0.chunks_exact_mut(h).zip(x) {
            for (o, z) in row.iter_mut().enumerate() {
                *z += w0[o * in0] * p[0] + w0[o * in0 + 1] * p[1];
            }
        }
        if let Some(labels) = labels {
            let classes = self.config.num_classes as usize + 1;
            for (row, &label) in z0.chunks_exact_mut(h).zip(labels) {
                let label = (label as usize).min(classes - 1);
                for (z, &p) in row
                    .iter_mut()
                    .zip(&prepared.label_rows[label * h..(label + 1) * h])
                {
                    *z += p;
                }
            }
        }
        ws.x[..rows].copy_from_slice(x);
        kernels::silu_forward(z0, &mut ws.sigs[0][..rows * h]);

        // Hidden layers 1.. : z = a·Wᵀ + b, a = SiLU(z).
        for l in 1..self.config.depth {
            let layer = &self.layers[l];
            let (before, rest) = ws.acts.split_at_mut(l);
            let act = &mut rest[0][..rows * h];
            kernels::broadcast_rows(act, rows, h, layer.bias(params));
            gemm(
                1.0,
                MatRef::row_major(&before[l - 1], rows, h),
                layer.weight_t(params),
                1.0,
                act,
                h,
            );
            kernels::silu_forward(act, &mut ws.sigs[l][..rows * h]);
        }

        // Output layer.
        let last = &self.layers[self.config.depth];
        let flat_out = out.as_flattened_mut();
        kernels::broadcast_rows(flat_out, rows, DIM, last.bias(params));
        gemm(
            1.0,
            MatRef::row_major(&ws.acts[self.config.depth - 1], rows, h),
            last.weight_t(params),
            1.0,
            flat_out,
            DIM,
        );
        ws.backward_ready = for_backward;
    }

    /// Backward pass after [`Mlp::forward`] on the same `ws`: adds this batch's contribution to
    /// the *partial* gradients `partial` for the upstream gradient `d_out` (`[rows, 2]`, ∂L/∂v).
    ///
    /// Partial gradients have the parameters' layout and add up over chunks of a batch; turn
    /// their sum into ∂L/∂θ with [`Mlp::finish_gradients`]. (For the fused time branch the
    /// backward pass accumulates `G = Σ dz0·a1ᵀ` where `net.0`'s time columns go, the per-class
    /// sums of dz0 where the label embedding goes, and nothing for `t_embed.3`; the small
    /// products that turn them into gradients are done once, after the sum.)
    pub fn backward(
        &self,
        params: &[f32],
        prepared: &Prepared,
        labels: Option<&[u32]>,
        d_out: &[[f32; 2]],
        ws: &mut Workspace,
        partial: &mut [f32],
    ) {
        let rows = ws.rows;
        assert!(
            ws.backward_ready,
            "backward must follow forward (not infer)"
        );
        assert_eq!(
            d_out.len(),
            rows,
            "backward must follow forward on the same batch"
        );
        assert_eq!(partial.len(), self.layout.total, "gradient buffer size");
        let h = self.config.hidden;
        let depth = self.config.depth;
        let in0 = DIM + h;
        let d_out = d_out.as_flattened();

        // Output layer: dW += dOutᵀ·a, db += Σ dOut, d_a = dOut·W.
        let last = &self.layers[depth];
        accumulate_linear_grads(last, partial, d_out, &ws.acts[depth - 1], rows);
        gemm(
            1.0,
            MatRef::row_major(d_out, rows, DIM),
            MatRef::row_major(last.weight(params), DIM, h),
            0.0,
            &mut ws.d_a[..rows * h],
            h,
        );

        // Hidden layers, last to second.
        for l in (1..depth).rev() {
            let layer = &self.layers[l];
            kernels::silu_backward(
                &mut ws.d_a[..rows * h],
                &ws.acts[l][..rows * h],
                &ws.sigs[l][..rows * h],
            );
            accumulate_linear_grads(layer, partial, &ws.d_a[..rows * h], &ws.acts[l - 1], rows);
            gemm(
                1.0,
                MatRef::row_major(&ws.d_a, rows, h),
                MatRef::row_major(layer.weight(params), h, h),
                0.0,
                &mut ws.d_b[..rows * h],
                h,
            );
            std::mem::swap(&mut ws.d_a, &mut ws.d_b);
        }

        // First layer: dz0, then the x columns, the G slot, the bias and the label sums.
        kernels::silu_backward(
            &mut ws.d_a[..rows * h],
            &ws.acts[0][..rows * h],
            &ws.sigs[0][..rows * h],
        );
        let dz0 = &ws.d_a[..rows * h];
        let net0 = &self.layers[0];
        let w_slot = &mut partial[net0.weight..net0.weight + h * in0];
        gemm(
            1.0,
            MatRef::row_major(dz0, rows, h).t(),
            MatRef::row_major(ws.x.as_flattened(), rows, DIM),
            1.0,
            w_slot,
            in0,
        );
        gemm(
            1.0,
            MatRef::row_major(dz0, rows, h).t(),
            MatRef::row_major(&ws.t_hidden, rows, h),
            1.0,
            &mut w_slot[DIM..],
            in0,
        );
        kernels::add_column_sums(&mut partial[net0.bias..net0.bias + h], dz0, rows);
        if let (Some(at), Some(labels)) = (self.label_embed, labels) {
            let classes = self.config.num_classes as usize + 1;
            for (row, &label) in dz0.chunks_exact(h).zip(labels) {
                let label = (label as usize).min(classes - 1);
                for (s, &d) in partial[at + label * h..at + (label + 1) * h]
                    .iter_mut()
                    .zip(row)
                {
                    *s += d;
                }
            }
        }

        // Time branch: da1 = dz0·M, dh1 = da1 ⊙ SiLU'(h1), then t_embed.1.
        gemm(
            1.0,
            MatRef::row_major(dz0, rows, h),
            MatRef::row_major(&prepared.fused, h, h),
            0.0,
            &mut ws.d_b[..rows * h],
            h,
        );
        kernels::silu_backward(
            &mut ws.d_b[..rows * h],
            &ws.t_hidden[..rows * h],
            &ws.t_sig[..rows * h],
        );
        accumulate_linear_grads(&self.t1, partial, &ws.d_b[..rows * h], &ws.t_emb, rows);
    }

    /// Turns summed partial gradients (see [`Mlp::backward`]) into ∂L/∂θ, in place. With
    /// `G = Σᵢ dz0ᵢ·a1ᵢᵀ`, `S_c = Σ_{i: yᵢ=c} dz0ᵢ`, `db0 = Σᵢ dz0ᵢ` and `te = W3·a1 + b3 + E[y]`:
    ///
    /// ```text
    /// ∂L/∂Wt = G·W3ᵀ + db0·b3ᵀ + Σ_c S_c·E_cᵀ      ∂L/∂W3 = Wtᵀ·G
    /// ∂L/∂b3 = Wtᵀ·db0                              ∂L/∂E_c = Wtᵀ·S_c
    /// ```
    pub fn finish_gradients(&self, params: &[f32], grads: &mut [f32]) {
        assert_eq!(grads.len(), self.layout.total, "gradient buffer size");
        let h = self.config.hidden;
        let in0 = DIM + h;
        let net0 = self.layers[0];
        let w0 = net0.weight(params);
        let wt = MatRef::strided(&w0[DIM..], h, h, in0, 1);
        // Take G and the label sums out of their slots.
        let mut g = vec![0.0; h * h];
        for (o, row) in g.chunks_exact_mut(h).enumerate() {
            let start = net0.weight + o * in0 + DIM;
            row.copy_from_slice(&grads[start..start + h]);
        }
        let db0 = grads[net0.bias..net0.bias + h].to_vec();
        let label_sums = self.label_embed.map(|at| {
            let classes = self.config.num_classes as usize + 1;
            (at, classes, grads[at..at + classes * h].to_vec())
        });

        // ∂L/∂Wt = G·W3ᵀ + db0·b3ᵀ + Sᵀ·E, written over G's slot.
        let w3 = self.t3.weight(params);
        let b3 = self.t3.bias(params);
        let slot = &mut grads[net0.weight + DIM..net0.weight + h * in0];
        gemm(
            1.0,
            MatRef::row_major(&g, h, h),
            MatRef::row_major(w3, h, h).t(),
            0.0,
            slot,
            in0,
        );
        gemm(
            1.0,
            MatRef::row_major(&db0, h, 1),
            MatRef::row_major(b3, 1, h),
            1.0,
            slot,
            in0,
        );
        if let Some((at, classes, sums)) = &label_sums {
            let e = &params[*at..*at + classes * h];
            gemm(
                1.0,
                MatRef::row_major(sums, *classes, h).t(),
                MatRef::row_major(e, *classes, h),
                1.0,
                slot,
                in0,
            );
        }
        // ∂L/∂W3 = Wtᵀ·G, ∂L/∂b3 = db0ᵀ·Wt (as a row).
        let (w3_range, b3_range) = (
            self.t3.weight..self.t3.weight + h * h,
            self.t3.bias..self.t3.bias + h,
        );
        // Wt lives in `params`, so the output slices of `grads` do not alias it.
        gemm(
            1.0,
            wt.t(),
            MatRef::row_major(&g, h, h),
            0.0,
            &mut grads[w3_range],
            h,
        );
        gemm(
            1.0,
            MatRef::row_major(&db0, 1, h),
            wt,
            0.0,
            &mut grads[b3_range],
            h,
        );
        // ∂L/∂E = S·Wt.
        if let Some((at, classes, sums)) = label_sums {
            gemm(
                1.0,
                MatRef::row_major(&sums, classes, h),
                wt,
                0.0,
                &mut grads[at..at + classes * h],
                h,
            );
        }
    }

    /// Loss and gradient of a whole batch in one call (forward, MSE, backward, finish).
    pub fn loss_and_gradients(
        &self,
        params: &[f32],
        t: &[f32],
        x: &[[f32; 2]],
        labels: Option<&[u32]>,
        target: &[[f32; 2]],
    ) -> (f64, Vec<f32>) {
        let rows = t.len();
        let mut prepared = Prepared::default();
        self.prepare(params, &mut prepared);
        let mut ws = Workspace::new();
        let mut out = vec![[0.0; 2]; rows];
        self.forward(params, &prepared, t, x, labels, &mut ws, &mut out);
        let mut d_out = vec![[0.0; 2]; rows];
        let loss = mse_loss_grad(&out, target, rows * DIM, &mut d_out);
        let mut grads = vec![0.0; self.layout.total];
        self.backward(params, &prepared, labels, &d_out, &mut ws, &mut grads);
        self.finish_gradients(params, &mut grads);
        (loss, grads)
    }
}

/// `dW += dYᵀ·X`, `db += Σ_rows dY` for a linear layer whose input was `x` (`[rows, in]`).
fn accumulate_linear_grads(layer: &Linear, grads: &mut [f32], dy: &[f32], x: &[f32], rows: usize) {
    let (w_range, b_range) = (
        layer.weight..layer.weight + layer.inputs * layer.outputs,
        layer.bias..layer.bias + layer.outputs,
    );
    gemm(
        1.0,
        MatRef::row_major(dy, rows, layer.outputs).t(),
        MatRef::row_major(x, rows, layer.inputs),
        1.0,
        &mut grads[w_range],
        layer.inputs,
    );
    kernels::add_column_sums(&mut grads[b_range], dy, rows);
}

/// Quantities derived from the parameters, recomputed after every update by [`Mlp::prepare`].
///
/// `t_embed.3` (te = W3·a1 + b3) feeds the time columns Wt of `net.0` with no nonlinearity in
/// between, so `Wt·te = (Wt·W3)·a1 + Wt·b3`: one h×h product per row instead of two. This is
/// exact algebra (up to f32 rounding), and the gradients of W3, b3 and Wt are recovered exactly
/// by [`Mlp::finish_gradients`].
#[derive(Clone, Debug, Default)]
pub struct Prepared {
    /// `M = Wt·W3`, `[h, h]`.
    fused: Vec<f32>,
    /// `Wt·b3 + b0`.
    fused_bias: Vec<f32>,
    /// `Wt·E[c]` for every label row c.
    label_rows: Vec<f32>,
    ready_for: Option<usize>,
}

/// Scratch memory for a forward/backward pass over up to `capacity` rows. Reused across calls:
/// it grows when a larger batch comes and never shrinks.
#[derive(Clone, Debug, Default)]
pub struct Workspace {
    rows: usize,
    capacity: usize,
    backward_ready: bool,
    t_emb: Vec<f32>,
    t_hidden: Vec<f32>,
    t_sig: Vec<f32>,
    x: Vec<[f32; 2]>,
    acts: Vec<Vec<f32>>,
    sigs: Vec<Vec<f32>>,
    d_a: Vec<f32>,
    d_b: Vec<f32>,
}

impl Workspace {
    /// An empty workspace; it sizes itself on first use.
    pub fn new() -> Self {
        Self::default()
    }

    fn ensure(&mut self, mlp: &Mlp, rows: usize) {
        let c = &mlp.config;
        let h = c.hidden;
        let shape_changed = self.acts.len() != c.depth
            || self.t_emb.len() != self.capacity * c.t_dim
            || self.d_a.len() != self.capacity * h;
        if rows <= self.capacity && !shape_changed {
            return;
        }
        let cap = rows.max(self.capacity);
        self.capacity = cap;
        self.t_emb = vec![0.0; cap * c.t_dim];
        self.t_hidden = vec![0.0; cap * h];
        self.t_sig = vec![0.0; cap * h];
        self.x = vec![[0.0; 2]; cap];
        self.acts = vec![vec![0.0; cap * h]; c.depth];
        self.sigs = vec![vec![0.0; cap * h]; c.depth];
        self.d_a = vec![0.0; cap * h];
        self.d_b = vec![0.0; cap * h];
    }
}

/// Mean squared error over all `rows × 2` elements (`F.mse_loss`), and its gradient
/// `∂L/∂out = 2·(out − target)/(2·rows)` written to `d_out`. The sum is scaled by `1/denominator`,
/// so that chunks of one batch can share the batch's denominator.
pub fn mse_loss_grad(
    out: &[[f32; 2]],
    target: &[[f32; 2]],
    denominator: usize,
    d_out: &mut [[f32; 2]],
) -> f64 {
    let scale = 2.0 / denominator as f32;
    let mut sum = 0.0_f64;
    for ((o, t), d) in out.iter().zip(target).zip(d_out.iter_mut()) {
        let e = [o[0] - t[0], o[1] - t[1]];
        sum += f64::from(e[0] * e[0] + e[1] * e[1]);
        *d = [scale * e[0], scale * e[1]];
    }
    sum / denominator as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(config: MlpConfig) -> (Mlp, Vec<f32>) {
        let mlp = Mlp::new(config).unwrap();
        let params = mlp.init_params(11);
        (mlp, params)
    }

    #[test]
    fn layout_uses_pytorch_names_in_state_dict_order() {
        let mlp = Mlp::new(MlpConfig {
            hidden: 16,
            depth: 2,
            t_dim: 8,
            t_scale: 1.0,
            num_classes: 0,
        })
        .unwrap();
        let names: Vec<_> = mlp
            .layout()
            .entries
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "t_embed.1.weight",
                "t_embed.1.bias",
                "t_embed.3.weight",
                "t_embed.3.bias",
                "net.0.weight",
                "net.0.bias",
                "net.2.weight",
                "net.2.bias",
                "net.4.weight",
                "net.4.bias"
            ]
        );
        assert_eq!(mlp.layout().entry("net.0.weight").unwrap().shape, [16, 18]);
        assert_eq!(
            mlp.num_params(),
            16 * 8 + 16 + 16 * 16 + 16 + 16 * 18 + 16 + 16 * 16 + 16 + 2 * 16 + 2
        );
    }

    /// Central finite differences in f64 of the f32 loss agree with the analytic gradient.
    #[test]
    fn gradient_matches_finite_differences() {
        for config in [
            MlpConfig {
                hidden: 7,
                depth: 3,
                t_dim: 6,
                t_scale: 1.0,
                num_classes: 0,
            },
            MlpConfig {
                hidden: 5,
                depth: 1,
                t_dim: 4,
                t_scale: 3.0,
                num_classes: 3,
            },
        ] {
            let (mlp, params) = small(config);
            let rows = 9;
            let mut rng = Rng::new(4);
            let t: Vec<f32> = (0..rows).map(|_| rng.uniform()).collect();
            let x: Vec<[f32; 2]> = (0..rows).map(|_| [rng.normal(), rng.normal()]).collect();
            let target: Vec<[f32; 2]> = (0..rows).map(|_| [rng.normal(), rng.normal()]).collect();
            let labels: Vec<u32> = (0..rows as u32)
                .map(|i| i % (config.num_classes + 1))
                .collect();
            let labels = config.is_conditional().then_some(labels.as_slice());
            let loss_at =
                |p: &[f32]| -> f64 { mlp.loss_and_gradients(p, &t, &x, labels, &target).0 };
            let (_, grads) = mlp.loss_and_gradients(&params, &t, &x, labels, &target);

            let mut checked = 0;
            for i in (0..params.len()).step_by(3) {
                let h = 1e-2_f32;
                let mut p = params.clone();
                p[i] += h;
                let plus = loss_at(&p);
                p[i] -= 2.0 * h;
                let minus = loss_at(&p);
                let fd = (plus - minus) / (2.0 * f64::from(h));
                let analytic = f64::from(grads[i]);
                assert!(
                    (fd - analytic).abs() <= 2e-3 * (1.0 + analytic.abs()),
                    "param {i}: finite difference {fd}, analytic {analytic}"
                );
                checked += 1;
            }
            assert!(checked > 30);
        }
    }

    #[test]
    fn chunked_batches_give_the_same_gradient() {
        let config = MlpConfig {
            hidden: 33,
            depth: 2,
            t_dim: 16,
            t_scale: 1000.0,
            num_classes: 0,
        };
        let (mlp, params) = small(config);
        let rows = 20;
        let mut rng = Rng::new(9);
        let t: Vec<f32> = (0..rows).map(|_| rng.uniform()).collect();
        let x: Vec<[f32; 2]> = (0..rows).map(|_| [rng.normal(), rng.normal()]).collect();
        let target: Vec<[f32; 2]> = (0..rows).map(|_| [rng.normal(), rng.normal()]).collect();
        let mut ws = Workspace::new();
        let mut prepared = Prepared::default();
        mlp.prepare(&params, &mut prepared);
        let grad_of = |range: std::ops::Range<usize>, ws: &mut Workspace, grads: &mut [f32]| {
            let n = range.len();
            let mut out = vec![[0.0; 2]; n];
            mlp.forward(
                &params,
                &prepared,
                &t[range.clone()],
                &x[range.clone()],
                None,
                ws,
                &mut out,
            );
            let mut d = vec![[0.0; 2]; n];
            let loss = mse_loss_grad(&out, &target[range], rows * 2, &mut d);
            mlp.backward(&params, &prepared, None, &d, ws, grads);
            loss
        };
        let mut whole = vec![0.0; params.len()];
        let loss = grad_of(0..rows, &mut ws, &mut whole);
        let mut parts = vec![0.0; params.len()];
        let l1 = grad_of(0..7, &mut ws, &mut parts);
        let l2 = grad_of(7..rows, &mut ws, &mut parts);
        mlp.finish_gradients(&params, &mut whole);
        mlp.finish_gradients(&params, &mut parts);
        assert!((loss - (l1 + l2)).abs() < 1e-9);
        for (a, b) in whole.iter().zip(&parts) {
            assert!((a - b).abs() <= 1e-5 * (1.0 + a.abs()));
        }
    }

    /// Inference (with the shared-t shortcut) gives the training forward's outputs.
    #[test]
    fn infer_matches_forward() {
        let config = MlpConfig {
            hidden: 24,
            depth: 3,
            t_dim: 10,
            t_scale: 1000.0,
            num_classes: 3,
        };
        let (mlp, params) = small(config);
        let mut prepared = Prepared::default();
        mlp.prepare(&params, &mut prepared);
        let rows = 11;
        let mut rng = Rng::new(5);
        let x: Vec<[f32; 2]> = (0..rows).map(|_| [rng.normal(), rng.normal()]).collect();
        let labels: Vec<u32> = (0..rows as u32).map(|i| i % 4).collect();
        for t in [
            vec![0.37; rows],
            (0..rows).map(|i| i as f32 / 11.0).collect(),
        ] {
            let (mut a, mut b) = (vec![[0.0; 2]; rows], vec![[0.0; 2]; rows]);
            let mut ws = Workspace::new();
            mlp.forward(&params, &prepared, &t, &x, Some(&labels), &mut ws, &mut a);
            mlp.infer(&params, &prepared, &t, &x, Some(&labels), &mut ws, &mut b);
            for (p, q) in a.iter().zip(&b) {
                assert!((p[0] - q[0]).abs() < 1e-5 && (p[1] - q[1]).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn rejects_bad_sizes() {
        for bad in [
            MlpConfig {
                hidden: 0,
                ..MlpConfig::default()
            },
            MlpConfig {
                t_dim: 7,
                ..MlpConfig::default()
            },
            MlpConfig {
                depth: 0,
                ..MlpConfig::default()
            },
            MlpConfig {
                t_scale: -1.0,
                ..MlpConfig::default()
            },
        ] {
            assert!(Mlp::new(bad).is_err());
        }
    }
}
