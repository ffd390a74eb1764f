//! What the sampler shows besides particles: a histogram of positions (now, or at any t of the
//! recorded trajectories), the velocity field on a grid, and the field's arrows for the canvas.

use super::stages::{KIND_EVAL, table_bytes};
use super::{FieldGrid, GpuSampler, Rect, TABLE_STRIDE, config_error};
use crate::GpuError;
#[cfg(not(target_arch = "wasm32"))]
use crate::buffers;
use crate::kernel::grid_1d;
use crate::overlay::{ColourMap, Mark};
use crate::segment_at;
use crate::uniforms::{FieldArrowsUniform, GridUniform, HistogramUniform, StageUniform};
use flowplay_core::sampler::Record;

/// The bins of a histogram: an `nx × ny` grid over `rect`, of the particles' positions at `t`
/// (from the last run's recorded trajectories) or, for `None`, their current positions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HistogramBins {
    /// The region.
    pub rect: Rect,
    /// Bins across.
    pub nx: u32,
    /// Bins up.
    pub ny: u32,
    /// The time the positions are taken at (`None`: the current positions).
    pub t: Option<f32>,
}

/// How [`GpuSampler::encode_field_arrows`] draws the field.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArrowStyle {
    /// Shaft width in pixels.
    pub width_px: f32,
    /// Head length in pixels.
    pub head_px: f32,
    /// The longest arrow's share of a cell.
    pub fill: f32,
    /// Speeds below this share of the fastest get no arrow.
    pub floor: f32,
    /// Colours by speed relative to the fastest.
    pub colours: ColourMap,
}

impl GpuSampler {
    /// Encodes a 2-D histogram of the last run's particles into [`Self::histogram_buffer`]
    /// (`[ny, nx]` `u32`, bin `j·nx + i`; see [`Rect::bin`]): their current positions, or with
    /// `bins.t` their recorded positions at t, linear between the frames around it as the
    /// particle renderer draws them (the run must have recorded positions). Pages are binned one
    /// dispatch each.
    pub fn encode_histogram(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        bins: &HistogramBins,
    ) -> Result<(), GpuError> {
        let HistogramBins { rect, nx, ny, t } = *bins;
        rect.validate()?;
        let cells = u64::from(nx) * u64::from(ny);
        if cells == 0 || cells > (1 << 24) {
            return Err(config_error(format!(
                "a histogram needs between 1 and 2^24 bins, got {nx} × {ny}"
            )));
        }
        let [sx, sy] = rect.bin_scales(nx, ny);
        let template = HistogramUniform {
            nx,
            ny,
            frames: 1,
            x_min: rect.min[0],
            y_min: rect.min[1],
            sx,
            sy,
            ..HistogramUniform::default()
        };
        // One entry per dispatch: the current positions, or each recorded page at t.
        let sources: Vec<(HistogramUniform, wgpu::Buffer)> = match t {
            None => vec![(
                HistogramUniform {
                    n: self.last.n as u32,
                    ..template
                },
                self.particles.pos.buffer.clone(),
            )],
            Some(t) => {
                if !self.last.record.positions {
                    return Err(config_error(
                        "a histogram at time t needs a run that recorded positions".to_string(),
                    ));
                }
                let (k, s) = segment_at(&self.last.times, t);
                self.recorded_pages()
                    .into_iter()
                    .map(|page| {
                        (
                            HistogramUniform {
                                n: page.len as u32,
                                frames: self.last.times.len() as u32,
                                k: k as u32,
                                s,
                                ..template
                            },
                            page.positions.clone(),
                        )
                    })
                    .collect()
            }
        };
        self.counts.ensure(device, cells * 4);
        self.histogram_table
            .ensure(device, sources.len().max(1) as u64 * TABLE_STRIDE);
        let entries: Vec<HistogramUniform> = sources.iter().map(|(u, _)| *u).collect();
        queue.write_buffer(&self.histogram_table.buffer, 0, &table_bytes(&entries));
        encoder.clear_buffer(&self.counts.buffer, 0, Some(cells * 4));
        let groups: Vec<wgpu::BindGroup> = sources
            .iter()
            .map(|(_, positions)| {
                self.histogram.bind(
                    device,
                    &[positions, &self.counts.buffer, &self.histogram_table.buffer],
                )
            })
            .collect();
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("flowplay::sampler::histogram"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.histogram.pipeline);
        for (i, ((uniform, _), bg)) in sources.iter().zip(&groups).enumerate() {
            if uniform.n == 0 {
                continue;
            }
            pass.set_bind_group(0, bg, &[(i as u64 * TABLE_STRIDE) as u32]);
            let [x, y, z] = grid_1d(uniform.n);
            pass.dispatch_workgroups(x, y, z);
        }
        Ok(())
    }

    /// [`Self::encode_histogram`], submitted and read back (native only, blocking).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn histogram(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        bins: &HistogramBins,
    ) -> Result<Vec<u32>, GpuError> {
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("flowplay::sampler::histogram"),
        });
        self.encode_histogram(device, queue, &mut encoder, bins)?;
        queue.submit([encoder.finish()]);
        buffers::read_pod::<u32>(
            device,
            queue,
            &self.counts.buffer,
            0,
            bins.nx as usize * bins.ny as usize,
        )
    }

    /// Encodes the field on `grid` ([`Self::encode_velocity_grid`]) and then one arrow per cell
    /// into [`Self::arrows_buffer`] (`nx·ny` [`Mark`]s for `MarkRenderer`, no CPU round trip):
    /// centred on its cell, its length and colour by speed relative to the grid's fastest, whose
    /// speed (and the mean) go to [`Self::field_stats_buffer`] for the legend.
    pub fn encode_field_arrows(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        grid: &FieldGrid,
        style: &ArrowStyle,
    ) -> Result<(), GpuError> {
        self.encode_velocity_grid(device, queue, encoder, grid)?;
        let n = u64::from(grid.nx) * u64::from(grid.ny);
        if n > 1 << 16 {
            return Err(config_error(format!(
                "a field of arrows takes at most 65536 cells, got {} × {}",
                grid.nx, grid.ny
            )));
        }
        self.arrows.ensure(device, n * size_of::<Mark>() as u64);
        let uniform = FieldArrowsUniform {
            nx: grid.nx,
            ny: grid.ny,
            pad: [0; 2],
            rect_min: grid.rect.min,
            cell: grid.rect.cell(grid.nx, grid.ny),
            width_px: style.width_px,
            head_px: style.head_px,
            fill: style.fill,
            floor: style.floor,
            lut: style.colours.lut(),
        };
        queue.write_buffer(&self.arrows_uniform, 0, bytemuck::bytes_of(&uniform));
        let bg = self.field_arrows.bind(
            device,
            &[
                self.velocity_grid_buffer(),
                &self.arrows.buffer,
                &self.field_stats.buffer,
                &self.arrows_uniform,
            ],
        );
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("flowplay::sampler::field_arrows"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.field_arrows.pipeline);
        pass.set_bind_group(0, &bg, &[]);
        pass.dispatch_workgroups(1, 1, 1);
        Ok(())
    }

    /// The arrows of [`Self::encode_field_arrows`]: `nx·ny` [`Mark`]s.
    pub fn arrows_buffer(&self) -> &wgpu::Buffer {
        &self.arrows.buffer
    }

    /// The fastest and the mean speed on the last arrows' grid, two `f32`s.
    pub fn field_stats_buffer(&self) -> &wgpu::Buffer {
        &self.field_stats.buffer
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
