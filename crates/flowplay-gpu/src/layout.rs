//! Offsets of the network's tensors in the flat parameter buffer (the core's `ParamLayout`, in
//! PyTorch `state_dict` order), as the kernels need them.

use flowplay_core::mlp::Mlp;

/// One `nn.Linear`: weight `[outputs, inputs]` row-major at `weight`, bias at `bias`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LinearOffsets {
    pub(crate) weight: u32,
    pub(crate) bias: u32,
    pub(crate) inputs: u32,
    pub(crate) outputs: u32,
}

/// Every tensor the kernels touch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MlpOffsets {
    /// `t_embed.1` (t_dim → h).
    pub(crate) t1: LinearOffsets,
    /// `t_embed.3` (h → h).
    pub(crate) t3: LinearOffsets,
    /// `net.0` (2 + h → h), `net.2`, …, and last the output layer `net.{2·depth}` (h → 2).
    pub(crate) layers: Vec<LinearOffsets>,
    /// `label_embed.weight` (`[classes + 1, h]`), if conditional.
    pub(crate) label_embed: Option<u32>,
    /// Hidden width.
    pub(crate) hidden: u32,
    /// Total parameters.
    pub(crate) total: u32,
}

impl MlpOffsets {
    /// The offsets of `mlp`'s tensors.
    pub(crate) fn new(mlp: &Mlp) -> Self {
        let layout = mlp.layout();
        let linear = |name: &str| {
            let (Some(w), Some(b)) = (
                layout.entry(&format!("{name}.weight")),
                layout.entry(&format!("{name}.bias")),
            ) else {
                unreachable!("the core's layout names every linear layer ({name})");
            };
            LinearOffsets {
                weight: w.offset as u32,
                bias: b.offset as u32,
                inputs: w.shape[1] as u32,
                outputs: w.shape[0] as u32,
            }
        };
        let depth = mlp.config().depth;
        Self {
            t1: linear("t_embed.1"),
            t3: linear("t_embed.3"),
            layers: (0..=depth)
                .map(|i| linear(&format!("net.{}", 2 * i)))
                .collect(),
            label_embed: layout.entry("label_embed.weight").map(|e| e.offset as u32),
            hidden: mlp.config().hidden as u32,
            total: mlp.num_params() as u32,
        }
    }

    /// The output layer.
    pub(crate) fn output(&self) -> LinearOffsets {
        self.layers[self.layers.len() - 1]
    }

    /// Elements of the largest layer's weight-and-bias gradient, `outputs · (inputs + 1)`: the
    /// size of one split of `linear_backward_weight.wgsl`'s partial sums.
    pub(crate) fn widest_gradient(&self) -> u64 {
        self.layers
            .iter()
            .chain([&self.t1, &self.t3])
            .map(|l| u64::from(l.outputs) * (u64::from(l.inputs) + 1))
            .max()
            .unwrap_or(1)
    }
}
