//! The random part of a training step (QR §4.3–§4.4), shared by the CPU and GPU trainers.
//!
//! Sample `i` of step `s` hashes the counter `(i, s · STREAMS + stream)` with the run's key
//! ([`crate::rng::stream`]), so a batch is a pure function of the seed, the step and the pools.
//! `shaders/batch_draw.wgsl` computes the same numbers on the GPU; the GPU tests check that the
//! two agree sample by sample.

use crate::assignment;
use crate::data::Points;
use crate::par;
use crate::path::{Path, TimeSampling};
use crate::rng::{self, stream};

/// Pairs (x₀, x₁) for reflow (QR §7.1): x₁ = ODE(x₀) under the previous round's model.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CouplingPool {
    /// Source points (unscaled).
    pub x0: Vec<[f32; 2]>,
    /// Where the model's ODE took them.
    pub x1: Vec<[f32; 2]>,
    /// The class each pair was generated with, for conditional models.
    pub labels: Option<Vec<u32>>,
}

/// Where a step's samples come from.
#[derive(Clone, Copy, Debug)]
pub struct BatchDraws<'a> {
    /// The RNG key ([`rng::key_from_seed`] of the run's seed).
    pub key: [u32; 2],
    /// The data pool x₁ is drawn from.
    pub data: &'a Points,
    /// The source pool x₀ is drawn from (`None`: fresh N(0, I) draws).
    pub source: Option<&'a Points>,
    /// A reflow coupling: when present, (x₀, x₁, label) are drawn as one pair from it instead.
    pub pairs: Option<&'a CouplingPool>,
    /// How t is drawn.
    pub time_sampling: TimeSampling,
    /// Probability of replacing the label by the null label.
    pub p_drop: f32,
    /// The null label of a class-conditional network (`None`: unconditional, labels unused).
    pub null_label: Option<u32>,
}

/// One step's pairs, structure of arrays.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchPairs {
    /// Source samples.
    pub x0: Vec<[f32; 2]>,
    /// Data samples.
    pub x1: Vec<[f32; 2]>,
    /// Class labels (0 for unlabelled data; the null label when dropped).
    pub labels: Vec<u32>,
    /// Times.
    pub t: Vec<f32>,
}

impl BatchPairs {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.t.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.t.is_empty()
    }

    /// Minibatch OT (OT-CFM, Tong et al. 2023): within blocks of at most `block` samples,
    /// re-pairs x₁ (with its label) to x₀ by the exact assignment minimising the total squared
    /// distance. Blocks are solved in parallel; the result does not depend on the thread count.
    pub fn couple_ot(&mut self, block: usize) {
        let b = self.len();
        if b == 0 || block == 0 {
            return;
        }
        let blocks = b.div_ceil(block);
        struct Block<'a> {
            x0: &'a [[f32; 2]],
            x1: &'a mut [[f32; 2]],
            labels: &'a mut [u32],
        }
        let (mut x1_rest, mut labels_rest) = (self.x1.as_mut_slice(), self.labels.as_mut_slice());
        let mut jobs: Vec<Block<'_>> = par::split_even(b, blocks)
            .into_iter()
            .map(|range| Block {
                x0: &self.x0[range.clone()],
                x1: par::take_front(&mut x1_rest, range.len()),
                labels: par::take_front(&mut labels_rest, range.len()),
            })
            .collect();
        par::for_each_mut(&mut jobs, |job| {
            let sigma = assignment::match_points(job.x0, job.x1);
            let x1: Vec<[f32; 2]> = sigma.iter().map(|&j| job.x1[j]).collect();
            let labels: Vec<u32> = sigma.iter().map(|&j| job.labels[j]).collect();
            job.x1.copy_from_slice(&x1);
            job.labels.copy_from_slice(&labels);
        });
    }
}

/// One drawn sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Draw {
    /// Source sample.
    pub x0: [f32; 2],
    /// Data sample.
    pub x1: [f32; 2],
    /// Class label.
    pub label: u32,
    /// Time.
    pub t: f32,
}

impl BatchDraws<'_> {
    /// Sample `i` of training step `step`.
    pub fn draw(&self, step: u64, i: u32) -> Draw {
        let key = self.key;
        let counter = |s| [i, stream::word(step, s)];
        let indices = rng::threefry2x32(key, counter(stream::INDICES));
        let (x0, x1, mut label) = match self.pairs {
            Some(pairs) => {
                let j = rng::index_below(indices[0], pairs.x0.len() as u32) as usize;
                let label = pairs.labels.as_ref().map_or(0, |l| l[j]);
                (pairs.x0[j], pairs.x1[j], label)
            }
            None => {
                let j = rng::index_below(indices[0], self.data.len() as u32) as usize;
                let label = self.data.labels.as_ref().map_or(0, |l| l[j]);
                let x0 = match self.source {
                    None => rng::normal_pair(rng::threefry2x32(key, counter(stream::SOURCE_NOISE))),
                    Some(pool) => pool.xy[rng::index_below(indices[1], pool.len() as u32) as usize],
                };
                (x0, self.data.xy[j], label)
            }
        };
        let t = self
            .time_sampling
            .sample(rng::threefry2x32(key, counter(stream::TIME)));
        if let Some(null) = self.null_label {
            let drop = rng::threefry2x32(key, counter(stream::LABEL_DROP));
            if rng::unit_f32(drop[0]) < self.p_drop {
                label = null;
            }
        }
        Draw { x0, x1, label, t }
    }

    /// The `batch` samples of step `step`, into `out` (resized).
    pub fn fill(&self, step: u64, batch: usize, out: &mut BatchPairs) {
        out.x0.resize(batch, [0.0; 2]);
        out.x1.resize(batch, [0.0; 2]);
        out.labels.resize(batch, 0);
        out.t.resize(batch, 0.0);
        for i in 0..batch {
            let d = self.draw(step, i as u32);
            out.x0[i] = d.x0;
            out.x1[i] = d.x1;
            out.labels[i] = d.label;
            out.t[i] = d.t;
        }
    }
}

/// The network's input and regression target for one pair (QR §4.3 through the path's
/// preconditioning): `x_in = c_in·x_t`, `target = (u_t − skip·x_t) / out`.
#[inline]
pub fn regression_pair(path: &Path, t: f32, x0: [f32; 2], x1: [f32; 2]) -> ([f32; 2], [f32; 2]) {
    let c = path.coefficients(t);
    let x_t = c.interpolate(x0, x1);
    let u = c.velocity(x0, x1);
    let pre = path.preconditioning(t);
    (
        [pre.input * x_t[0], pre.input * x_t[1]],
        pre.network_target(x_t, u),
    )
}
