//! The model's exact log density on the GPU, as `flowplay_core::likelihood::log_likelihood`
//! computes it: the reverse ODE from t = 1 to t = 0 on the augmented state (x, ℓ) with the exact
//! Jacobian trace, then `log p₁(x) = log p₀(x₀) + ℓ`.
//!
//! Per stage the time branch runs once (`time_branch.wgsl`, shared with sampling); per chunk of
//! points `linear_jvp.wgsl` takes the rows and their two tangents through the layers together
//! (3·B rows for B network rows), and `logp_stage.wgsl` combines the output into the velocity and
//! divergence and takes the solver's step from the same tableau as the CPU. The whole run is
//! encoded into one command encoder; the result lands in [`GpuSampler::log_likelihood_buffer`].

use flowplay_core::flow::SampleRequest;
use flowplay_core::likelihood::GaussianPrior;
use flowplay_core::sampler::{Record, time_grid};

use super::sets::{Growable, RunShape};
use super::stages::{KIND_INIT, table_bytes};
use super::{GpuSampler, TABLE_STRIDE, config_error, entry};
use crate::GpuError;
use crate::buffers::{self, STORAGE};
use crate::kernel::{Kernel, LINEAR_JVP, LOGP_STAGE, grid_1d};
use crate::uniforms::{ChunkUniform, LinearJvpUniform, PriorUniform, StageUniform};

/// The likelihood's pipelines and buffers, made on its first use (sampling never needs them).
#[derive(Debug)]
pub(super) struct LikelihoodSet {
    jvp: Kernel,
    stage: Kernel,
    pos: Growable,
    aux: Growable,
    x_in: Growable,
    row_labels: Growable,
    logp: Growable,
    stages: Growable,
    chunks: Growable,
    layers: Growable,
    acts: [Growable; 2],
    f_out: Growable,
    prior: wgpu::Buffer,
    /// Points of the last encoded run.
    n: usize,
}

impl LikelihoodSet {
    fn new(device: &wgpu::Device) -> Self {
        let table = wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST;
        let storage = |label| Growable::new(device, label, STORAGE);
        Self {
            jvp: Kernel::new(device, &LINEAR_JVP),
            stage: Kernel::new(device, &LOGP_STAGE),
            pos: storage("flowplay::likelihood::positions"),
            aux: storage("flowplay::likelihood::state"),
            x_in: storage("flowplay::likelihood::network_input"),
            row_labels: storage("flowplay::likelihood::row_labels"),
            logp: storage("flowplay::likelihood::logp"),
            stages: Growable::new(device, "flowplay::likelihood::stages", table),
            chunks: Growable::new(device, "flowplay::likelihood::chunks", table),
            layers: Growable::new(device, "flowplay::likelihood::layers", table),
            acts: [
                storage("flowplay::likelihood::hidden_a"),
                storage("flowplay::likelihood::hidden_b"),
            ],
            f_out: storage("flowplay::likelihood::network_output"),
            prior: buffers::uniform(
                device,
                "flowplay::likelihood::prior",
                &PriorUniform::default(),
            ),
            n: 0,
        }
    }
}

/// Bytes of per-point state: probe, the stage sums of k and of the divergence, ℓ, padding.
const STATE_BYTES: u64 = 32;

impl GpuSampler {
    /// Encodes the log density `log p₁(x)` of the sampler's network at every point of `x`
    /// (natural log; [`Self::log_likelihood_buffer`] after submission, one `f32` per point): the
    /// reverse ODE with the request's solver, steps and time shift, for the request's labels
    /// with its guidance (a conditional network without labels: its unconditional head), from
    /// the path's prior `N(0, prior_scale²·I)`. The request's seed and record are not used.
    pub fn encode_log_likelihood(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        x: &[[f32; 2]],
        request: &SampleRequest,
    ) -> Result<(), GpuError> {
        let config = request.sampler;
        config.validate()?;
        let n = x.len();
        if request.n != n {
            return Err(config_error(format!(
                "the request is for {} points, and {n} were given",
                request.n
            )));
        }
        if !request.cfg_scale.is_finite() {
            return Err(config_error(format!(
                "the guidance scale must be finite, got {}",
                request.cfg_scale
            )));
        }
        let (rpp, classes) = self.row_plan(n, request.labels.as_deref(), request.cfg_scale)?;
        // Chunks sized for three rows (the row and its two tangents) per network row.
        let shape = RunShape {
            rpp,
            ..self.plan(device, n, 3 * rpp, 0)
        };
        let set = self
            .likelihood
            .get_or_insert_with(|| Box::new(LikelihoodSet::new(device)));
        set.n = n;
        if n == 0 {
            return Ok(());
        }
        let n64 = n as u64;
        for (what, bytes) in [
            ("position", n64 * 8),
            ("state", n64 * STATE_BYTES),
            ("network input", n64 * rpp as u64 * 8),
        ] {
            Self::check_size(device, what, n, bytes)?;
        }

        // The stages: set-up at t = 1, then the solver's steps from t = 1 back to t = 0.
        let times = time_grid(config.steps, config.rescale_t);
        let template = self.stage_template(1, Record::NONE, request.cfg_scale, rpp);
        let mut stages = vec![StageUniform {
            t: times[times.len() - 1],
            kind: KIND_INIT,
            ..template
        }];
        stages.extend(self.solver_stages(
            template,
            times.windows(2).rev().map(|w| (w[1], w[0])),
            &config,
            false,
        ));
        self.finish_stages(&mut stages);

        let o = &self.offsets;
        let depth = self.mlp.config().depth;
        let null = self.mlp.config().null_label();
        let mut chunk_table = Vec::with_capacity(shape.num_chunks());
        let mut layer_table = Vec::with_capacity(shape.num_chunks() * depth);
        let mut row_labels = Vec::with_capacity(n * rpp);
        for (p0, len) in shape.chunks() {
            chunk_table.push(ChunkUniform {
                p0: p0 as u32,
                len: len as u32,
                rpp: rpp as u32,
                rec_p0: 0,
            });
            row_labels.extend_from_slice(&classes[p0..p0 + len]);
            if rpp == 2 {
                row_labels.extend(std::iter::repeat_n(null, len));
            }
            for j in 1..=depth {
                let layer = o.layers[j];
                layer_table.push(LinearJvpUniform {
                    block: (rpp * len) as u32,
                    outputs: layer.outputs,
                    inputs: layer.inputs,
                    first: u32::from(j == 1),
                    a_offset: (2 * rpp * p0) as u32,
                    w_offset: layer.weight,
                    b_offset: layer.bias,
                    xw_offset: o.layers[0].weight,
                    xw_stride: o.layers[0].inputs,
                    pad: [0; 3],
                });
            }
        }
        let h = u64::from(o.hidden);
        let rows = (3 * rpp * shape.chunk) as u64;
        let set = self
            .likelihood
            .as_deref_mut()
            .ok_or_else(|| config_error("the likelihood's buffers are missing".into()))?;
        set.pos.ensure(device, n64 * 8);
        set.aux.ensure(device, n64 * STATE_BYTES);
        set.x_in.ensure(device, n64 * rpp as u64 * 8);
        set.row_labels.ensure(device, n64 * rpp as u64 * 4);
        set.logp.ensure(device, n64 * 4);
        set.stages
            .ensure(device, stages.len() as u64 * TABLE_STRIDE);
        set.chunks
            .ensure(device, chunk_table.len() as u64 * TABLE_STRIDE);
        set.layers
            .ensure(device, layer_table.len() as u64 * TABLE_STRIDE);
        for act in &mut set.acts {
            act.ensure(device, rows * h * 4);
        }
        set.f_out.ensure(device, rows * 8);
        queue.write_buffer(&set.stages.buffer, 0, &table_bytes(&stages));
        queue.write_buffer(&set.chunks.buffer, 0, &table_bytes(&chunk_table));
        queue.write_buffer(&set.layers.buffer, 0, &table_bytes(&layer_table));
        queue.write_buffer(&set.row_labels.buffer, 0, bytemuck::cast_slice(&row_labels));
        queue.write_buffer(&set.pos.buffer, 0, bytemuck::cast_slice(x));
        let prior = GaussianPrior::of(&self.path);
        let var = prior.scale * prior.scale;
        let prior_value = PriorUniform {
            var,
            log_norm: -(std::f32::consts::TAU * var).ln(),
            pad: [0.0; 2],
        };
        queue.write_buffer(&set.prior, 0, bytemuck::bytes_of(&prior_value));

        self.encode_likelihood_ops(device, encoder, shape, stages.len());
        Ok(())
    }

    /// Encodes every stage of the likelihood run prepared by [`Self::encode_log_likelihood`].
    fn encode_likelihood_ops(
        &self,
        device: &wgpu::Device,
        encoder: &mut wgpu::CommandEncoder,
        shape: RunShape,
        stages: usize,
    ) {
        let Some(set) = self.likelihood.as_deref() else {
            return;
        };
        let depth = self.mlp.config().depth;
        let time_bg = self.time_branch.bind(
            device,
            &[
                &self.params,
                &self.freqs,
                &self.label_rows_buffer,
                &self.scratch,
                &self.class_rows,
                &set.stages.buffer,
            ],
        );
        let label_bg = self.offsets.label_embed.map(|_| {
            self.label_rows.bind(
                device,
                &[
                    &self.params,
                    &self.label_rows_buffer,
                    &self.label_rows_uniform,
                ],
            )
        });
        let [act_a, act_b] = &set.acts;
        let layer_uniform = wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &set.layers.buffer,
            offset: 0,
            size: std::num::NonZeroU64::new(size_of::<LinearJvpUniform>() as u64),
        });
        // Layer j (1-based) reads x_in (j = 1) or the activations layer j − 1 wrote, and writes
        // the other activation buffer, or F after the last layer.
        let io = |j: usize| -> (&wgpu::Buffer, &wgpu::Buffer) {
            let src = match j {
                1 => &set.x_in.buffer,
                j if j % 2 == 0 => &act_a.buffer,
                _ => &act_b.buffer,
            };
            let dst = if j == depth {
                &set.f_out.buffer
            } else if j % 2 == 1 {
                &act_a.buffer
            } else {
                &act_b.buffer
            };
            (src, dst)
        };
        // One bind group per chunk and layer: each reads the chunk's labels at its offset.
        let layer_bgs: Vec<Vec<wgpu::BindGroup>> = shape
            .chunks()
            .map(|(p0, len)| {
                (1..=depth)
                    .map(|j| {
                        let (src, dst) = io(j);
                        let labels = wgpu::BufferBinding {
                            buffer: &set.row_labels.buffer,
                            offset: (shape.rpp * p0 * 4) as u64,
                            size: std::num::NonZeroU64::new((shape.rpp * len * 4) as u64),
                        };
                        device.create_bind_group(&wgpu::BindGroupDescriptor {
                            label: Some("flowplay::likelihood::layer"),
                            layout: &set.jvp.layout,
                            entries: &[
                                entry(0, self.params.as_entire_binding()),
                                entry(1, src.as_entire_binding()),
                                entry(2, self.class_rows.as_entire_binding()),
                                entry(3, wgpu::BindingResource::Buffer(labels)),
                                entry(4, dst.as_entire_binding()),
                                entry(5, layer_uniform.clone()),
                            ],
                        })
                    })
                    .collect()
            })
            .collect();
        let stage_bg = set.stage.bind(
            device,
            &[
                &set.f_out.buffer,
                &set.pos.buffer,
                &set.aux.buffer,
                &set.x_in.buffer,
                &set.logp.buffer,
                &set.stages.buffer,
                &set.chunks.buffer,
                &set.prior,
            ],
        );

        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("flowplay::likelihood"),
            timestamp_writes: None,
        });
        if let Some(bg) = &label_bg {
            let total = self.offsets.hidden * Self::class_rows_of(&self.mlp) as u32;
            let [x, y, z] = grid_1d(total);
            pass.set_pipeline(&self.label_rows.pipeline);
            pass.set_bind_group(0, bg, &[]);
            pass.dispatch_workgroups(x, y, z);
        }
        for stage in 0..stages {
            let stage_offset = (stage as u64 * TABLE_STRIDE) as u32;
            if stage > 0 {
                pass.set_pipeline(&self.time_branch.pipeline);
                pass.set_bind_group(0, &time_bg, &[stage_offset]);
                pass.dispatch_workgroups(1, 1, 1);
            }
            for (c, (_, len)) in shape.chunks().enumerate() {
                if stage > 0 {
                    let rows = (3 * shape.rpp * len) as u32;
                    pass.set_pipeline(&set.jvp.pipeline);
                    for j in 1..=depth {
                        let offset = ((c * depth + j - 1) as u64 * TABLE_STRIDE) as u32;
                        pass.set_bind_group(0, &layer_bgs[c][j - 1], &[offset]);
                        let outputs = self.offsets.layers[j].outputs;
                        pass.dispatch_workgroups(outputs.div_ceil(64), rows.div_ceil(64), 1);
                    }
                }
                let chunk_offset = (c as u64 * TABLE_STRIDE) as u32;
                let [x, y, z] = grid_1d(len as u32);
                pass.set_pipeline(&set.stage.pipeline);
                pass.set_bind_group(0, &stage_bg, &[stage_offset, chunk_offset]);
                pass.dispatch_workgroups(x, y, z);
            }
        }
    }

    /// The log densities of the last [`Self::encode_log_likelihood`] run, one `f32` per point
    /// (`STORAGE | COPY_SRC`), or `None` before the first.
    pub fn log_likelihood_buffer(&self) -> Option<&wgpu::Buffer> {
        self.likelihood.as_deref().map(|set| &set.logp.buffer)
    }

    /// [`Self::encode_log_likelihood`], submitted and read back (native only, blocking).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn log_likelihood(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        x: &[[f32; 2]],
        request: &SampleRequest,
    ) -> Result<Vec<f32>, GpuError> {
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("flowplay::likelihood"),
        });
        self.encode_log_likelihood(device, queue, &mut encoder, x, request)?;
        queue.submit([encoder.finish()]);
        let Some(buffer) = self.log_likelihood_buffer() else {
            return Ok(Vec::new());
        };
        if x.is_empty() {
            return Ok(Vec::new());
        }
        buffers::read_pod::<f32>(device, queue, buffer, 0, x.len())
    }
}
