//! What the sampler shows besides particles: a histogram of positions and the velocity field on
//! a grid.

use super::stages::KIND_EVAL;
use super::{FieldGrid, GpuSampler, Rect, config_error};
use crate::GpuError;
use crate::buffers;
use crate::kernel::grid_1d;
use crate::uniforms::{GridUniform, HistogramUniform, StageUniform};
use flowplay_core::sampler::Record;

impl GpuSampler {
    /// Encodes a 2-D histogram of the particles' current positions (those of the last encoded
    /// run) over `rect` into an `nx × ny` grid of `u32` counts, [`Self::histogram_buffer`]
    /// (bin `j·nx + i`; see [`Rect::bin`]).
    pub fn encode_histogram(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        rect: Rect,
        nx: u32,
        ny: u32,
    ) -> Result<(), GpuError> {
        rect.validate()?;
        let cells = u64::from(nx) * u64::from(ny);
        if cells == 0 || cells > (1 << 24) {
            return Err(config_error(format!(
                "a histogram needs between 1 and 2^24 bins, got {nx} × {ny}"
            )));
        }
        self.counts.ensure(device, cells * 4);
        let [sx, sy] = rect.bin_scales(nx, ny);
        let uniform = HistogramUniform {
            n: self.last.n as u32,
            nx,
            ny,
            pad: 0,
            x_min: rect.min[0],
            y_min: rect.min[1],
            sx,
            sy,
        };
        queue.write_buffer(&self.histogram_uniform, 0, bytemuck::bytes_of(&uniform));
        encoder.clear_buffer(&self.counts.buffer, 0, Some(cells * 4));
        let bg = self.histogram.bind(
            device,
            &[
                &self.particles.pos.buffer,
                &self.counts.buffer,
                &self.histogram_uniform,
            ],
        );
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("flowplay::sampler::histogram"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.histogram.pipeline);
        pass.set_bind_group(0, &bg, &[]);
        let [x, y, z] = grid_1d(self.last.n as u32);
        pass.dispatch_workgroups(x, y, z);
        Ok(())
    }

    /// [`Self::encode_histogram`], submitted and read back (native only, blocking).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn histogram(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        rect: Rect,
        nx: u32,
        ny: u32,
    ) -> Result<Vec<u32>, GpuError> {
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("flowplay::sampler::histogram"),
        });
        self.encode_histogram(device, queue, &mut encoder, rect, nx, ny)?;
        queue.submit([encoder.finish()]);
        buffers::read_pod::<u32>(
            device,
            queue,
            &self.counts.buffer,
            0,
            nx as usize * ny as usize,
        )
    }

    /// Encodes the velocity field v(t, ·) at the centres of `grid`'s cells (point `j·nx + i` at
    /// [`Rect::cell_centre`]) into [`Self::velocity_grid_buffer`]: the field the sampler
    /// integrates, with the grid's label (every point) and guidance as in [`Self::sample`]. The
    /// particles are left alone.
    pub fn encode_velocity_grid(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        grid: &FieldGrid,
    ) -> Result<(), GpuError> {
        let FieldGrid {
            t,
            rect,
            nx,
            ny,
            label,
            cfg_scale,
        } = *grid;
        rect.validate()?;
        if !t.is_finite() || !cfg_scale.is_finite() {
            return Err(config_error(format!(
                "t and the guidance scale must be finite, got {t} and {cfg_scale}"
            )));
        }
        let n64 = u64::from(nx) * u64::from(ny);
        if n64 == 0 || n64 > (1 << 24) {
            return Err(config_error(format!(
                "a velocity grid needs between 1 and 2^24 points, got {nx} × {ny}"
            )));
        }
        let n = n64 as usize;
        let labels = label.map(|l| vec![l; n]);
        let (rpp, classes) = self.row_plan(n, labels.as_deref(), cfg_scale)?;
        // One recording page (frames 0): at most 2^24 velocities, which one binding holds.
        let shape = self.plan(device, n, rpp, 0);
        let record = Record {
            velocities: true,
            ..Record::NONE
        };
        let mut stages = vec![StageUniform {
            t,
            kind: KIND_EVAL,
            frame: 0,
            ..self.stage_template(1, record, cfg_scale, rpp)
        }];
        self.finish_stages(&mut stages);
        self.prepare_set(device, true, shape, 1, [0, 0, 8])?;
        self.write_tables(queue, true, shape, &classes);
        Self::write_stages(queue, &self.grid, &stages);
        let [dx, dy] = rect.cell(nx, ny);
        let uniform = GridUniform {
            nx,
            ny,
            rpp: rpp as u32,
            chunk: shape.chunk as u32,
            n: n as u32,
            x_min: rect.min[0],
            y_min: rect.min[1],
            dx,
            dy,
            input_scale: self.path.preconditioning(t).input,
            ..GridUniform::default()
        };
        queue.write_buffer(&self.grid_uniform, 0, bytemuck::bytes_of(&uniform));
        let bg = self.grid_points.bind(
            device,
            &[
                &self.grid.pos.buffer,
                &self.grid.aux.buffer,
                &self.grid.x_in.buffer,
                &self.grid_uniform,
            ],
        );
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("flowplay::sampler::grid_points"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&self.grid_points.pipeline);
            pass.set_bind_group(0, &bg, &[]);
            let [x, y, z] = grid_1d(n as u32);
            pass.dispatch_workgroups(x, y, z);
        }
        self.encode_ops(device, encoder, true, shape, 0..shape.num_chunks());
        self.grid.front = 1 - self.grid.front;
        self.grid_len = n;
        Ok(())
    }

    /// [`Self::encode_velocity_grid`], submitted and read back (native only, blocking): one
    /// velocity per grid point, point `j·nx + i`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn velocity_grid(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        grid: &FieldGrid,
    ) -> Result<Vec<[f32; 2]>, GpuError> {
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("flowplay::sampler::velocity_grid"),
        });
        self.encode_velocity_grid(device, queue, &mut encoder, grid)?;
        queue.submit([encoder.finish()]);
        let flat = buffers::read_pod::<f32>(
            device,
            queue,
            self.velocity_grid_buffer(),
            0,
            2 * self.grid_len,
        )?;
        Ok(flat.chunks_exact(2).map(|p| [p[0], p[1]]).collect())
    }
}
