//! A run's table of solver stages, built from the core's Butcher tableau.

use flowplay_core::sampler::{Record, SamplerConfig};

use super::sets::{ParticleSet, RunShape};
use super::{GpuSampler, TABLE_STRIDE};
use crate::uniforms::{ChunkUniform, LinearForwardUniform, LinearInput, NONE, StageUniform};

pub(super) const KIND_FIRST: u32 = 1;
pub(super) const KIND_LAST: u32 = 2;
pub(super) const KIND_FINAL_POSITION: u32 = 4;
pub(super) const KIND_EVAL: u32 = 8;
pub(super) const KIND_HAS_NEXT: u32 = 16;
pub(super) const KIND_INIT: u32 = 32;
pub(super) const RECORD_POSITIONS: u32 = 1;
pub(super) const RECORD_ENDPOINTS: u32 = 2;
pub(super) const RECORD_VELOCITIES: u32 = 4;

impl GpuSampler {
    /// The stage uniform's fields shared by every stage of a run.
    pub(super) fn stage_template(
        &self,
        frames: usize,
        record: Record,
        cfg_scale: f32,
        rpp: usize,
    ) -> StageUniform {
        let o = &self.offsets;
        let config = self.mlp.config();
        StageUniform {
            frames: frames as u32,
            record: u32::from(record.positions) * RECORD_POSITIONS
                + u32::from(record.endpoints) * RECORD_ENDPOINTS
                + u32::from(record.velocities) * RECORD_VELOCITIES,
            cfg_scale,
            rpp: rpp as u32,
            t_scale: config.t_scale,
            half: (config.t_dim / 2) as u32,
            hidden: o.hidden,
            crows: Self::class_rows_of(&self.mlp) as u32,
            w1: o.t1.weight,
            b1: o.t1.bias,
            w3: o.t3.weight,
            b3: o.t3.bias,
            w0: o.layers[0].weight,
            b0: o.layers[0].bias,
            has_label_rows: u32::from(o.label_embed.is_some()),
            ..StageUniform::default()
        }
    }

    /// Every solver stage of a run, in order, from the solver's tableau
    /// (`flowplay_core::sampler::Solver::tableau`, which `Stepper::step` also follows), so the
    /// GPU's arithmetic is the CPU's (preconditioning still to fill in: `finish_stages`).
    pub(super) fn build_stages(
        &self,
        template: StageUniform,
        times: &[f32],
        config: &SamplerConfig,
        record: Record,
    ) -> Vec<StageUniform> {
        let steps = times.len() - 1;
        let mut stages = self.solver_stages(
            template,
            times.windows(2).map(|w| (w[0], w[1])),
            config,
            true,
        );
        if record.velocities {
            stages.push(StageUniform {
                t: times[steps],
                kind: KIND_EVAL,
                frame: steps as u32,
                ..template
            });
        }
        stages
    }

    /// The stages of the steps `(t0, t1)` in order (step k records frame k), each step's stages
    /// from the solver's tableau; the last stage of the last step is flagged as the run's final
    /// one. `endpoints`: give each step's first stage the path's coefficients at t0 (for x̂).
    pub(super) fn solver_stages(
        &self,
        template: StageUniform,
        steps: impl ExactSizeIterator<Item = (f32, f32)>,
        config: &SamplerConfig,
        endpoints: bool,
    ) -> Vec<StageUniform> {
        let count = steps.len();
        let tableau = config.solver.tableau();
        let last = tableau.stages.len() - 1;
        let mut stages = Vec::with_capacity(config.nfe() + 2);
        for (step, (t0, t1)) in steps.enumerate() {
            let dt = t1 - t0;
            for (i, stage) in tableau.stages.iter().enumerate() {
                let mut kind = 0;
                if i == 0 {
                    kind |= KIND_FIRST;
                }
                if i == last {
                    kind |= KIND_LAST;
                    if step + 1 == count {
                        kind |= KIND_FINAL_POSITION;
                    }
                }
                let mut value = StageUniform {
                    t: stage.node.time(t0, t1),
                    kind,
                    frame: step as u32,
                    weight: stage.weight,
                    ..template
                };
                if i == 0 && endpoints {
                    // The step's first stage records x̂ from the path's coefficients at t0.
                    let c = self.path.coefficients(t0);
                    (value.ca, value.cb, value.cda, value.cdb) = (c.a, c.b, c.da, c.db);
                }
                match tableau.stages.get(i + 1) {
                    Some(next) => value.hp = next.probe * dt,
                    None => value.w = tableau.step_scale(dt),
                }
                stages.push(value);
            }
        }
        stages
    }

    /// Fills in each stage's preconditioning and the next stage's input scale.
    pub(super) fn finish_stages(&self, stages: &mut [StageUniform]) {
        let next_inputs: Vec<Option<f32>> = (0..stages.len())
            .map(|i| {
                stages
                    .get(i + 1)
                    .map(|s| self.path.preconditioning(s.t).input)
            })
            .collect();
        for (stage, next) in stages.iter_mut().zip(next_inputs) {
            let pre = self.path.preconditioning(stage.t);
            stage.skip = pre.skip;
            stage.out_scale = pre.output;
            stage.in_scale = pre.input;
            if let Some(next_in) = next {
                stage.next_in = next_in;
                stage.kind |= KIND_HAS_NEXT;
            }
        }
    }

    /// Writes a set's chunk and layer tables and per-row labels.
    pub(super) fn write_tables(
        &self,
        queue: &wgpu::Queue,
        grid: bool,
        shape: RunShape,
        classes: &[u32],
    ) {
        let set = if grid { &self.grid } else { &self.particles };
        let o = &self.offsets;
        let depth = self.mlp.config().depth;
        let stride = TABLE_STRIDE as usize;
        let mut chunk_table = vec![0_u8; shape.num_chunks() * stride];
        let mut layer_table = vec![0_u8; shape.num_chunks() * depth * stride];
        let mut row_labels = Vec::with_capacity(shape.n * shape.rpp);
        for (c, (p0, len)) in shape.chunks().enumerate() {
            let chunk = ChunkUniform {
                p0: p0 as u32,
                len: len as u32,
                rpp: shape.rpp as u32,
                rec_p0: (p0 / shape.page * shape.page) as u32,
            };
            chunk_table[c * stride..][..size_of::<ChunkUniform>()]
                .copy_from_slice(bytemuck::bytes_of(&chunk));
            row_labels.extend_from_slice(&classes[p0..p0 + len]);
            if shape.rpp == 2 {
                row_labels.extend(std::iter::repeat_n(self.mlp.config().null_label(), len));
            }
            let rows = (shape.rpp * len) as u32;
            for j in 1..=depth {
                let layer = o.layers[j];
                let mode = if j == 1 {
                    LinearInput::SamplerLayer0
                } else {
                    LinearInput::Silu
                };
                let uniform = LinearForwardUniform {
                    rows,
                    outputs: layer.outputs,
                    inputs: layer.inputs,
                    a_mode: mode as u32,
                    a_offset: if j == 1 {
                        (2 * shape.rpp * p0) as u32
                    } else {
                        0
                    },
                    a_stride: if j == 1 { 2 } else { layer.inputs },
                    w_offset: layer.weight,
                    b_offset: layer.bias,
                    out_offset: 0,
                    out_stride: layer.outputs,
                    label_offset: NONE,
                    half: 0,
                    t_scale: 1.0,
                    xw_offset: o.layers[0].weight,
                    xw_stride: o.layers[0].inputs,
                    aux_offset: 0,
                };
                let at = (c * depth + j - 1) * stride;
                layer_table[at..][..size_of::<LinearForwardUniform>()]
                    .copy_from_slice(bytemuck::bytes_of(&uniform));
            }
        }
        queue.write_buffer(&set.chunks.buffer, 0, &chunk_table);
        queue.write_buffer(&set.layers.buffer, 0, &layer_table);
        queue.write_buffer(&set.row_labels.buffer, 0, bytemuck::cast_slice(&row_labels));
    }

    pub(super) fn write_stages(queue: &wgpu::Queue, set: &ParticleSet, stages: &[StageUniform]) {
        queue.write_buffer(&set.stages.buffer, 0, &table_bytes(stages));
    }
}

/// `entries` laid out as a dynamic-offset uniform table: one entry every [`TABLE_STRIDE`] bytes.
pub(super) fn table_bytes<T: bytemuck::Pod>(entries: &[T]) -> Vec<u8> {
    let stride = TABLE_STRIDE as usize;
    let mut table = vec![0_u8; entries.len() * stride];
    for (i, value) in entries.iter().enumerate() {
        table[i * stride..][..size_of::<T>()].copy_from_slice(bytemuck::bytes_of(value));
    }
    table
}
