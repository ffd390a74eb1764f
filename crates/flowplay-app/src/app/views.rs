//! Keeping the layers' views current: each frame, every layer that is on picks up what its
//! backend finished and asks again when what it shows changed (the scrubber's t, the view of
//! the plane, the weights drawn, the solver). The engine computes them (`engine::views`).

use egui::TextureOptions;
use flowplay_gpu::{FieldGrid, HistogramBins, Rect};
use web_time::Instant;

use super::PlaygroundApp;
use super::state::Inspected;
use crate::engine::{Backend, CPU_HEAT_BINS, DensityAsk, GPU_HEAT_BINS, LogpAsk, stage_view};
use crate::error::{AppError, AppResult};
use crate::layers::{FIELD_CELLS, Heatmap, LayerId};

/// The likelihood map is computed again while training no sooner than this many times its last
/// duration after it (at least a second): it costs the solver's steps with a trace each.
const LOGP_PACE: f64 = 4.0;
/// The pairs of the current step are drawn again at most this often while training.
const PAIRS_EVERY_SECS: f64 = 1.0;

/// `cells` across the shorter side of `rect`, the longer side in proportion (at most 4×).
fn grid_cells(rect: &Rect, cells: u32) -> (u32, u32) {
    let w = (rect.max[0] - rect.min[0]).abs().max(1e-6);
    let h = (rect.max[1] - rect.min[1]).abs().max(1e-6);
    let scale = |r: f32| ((cells as f32 * r).round() as u32).clamp(cells, 4 * cells);
    if w >= h {
        (scale(w / h), cells)
    } else {
        (cells, scale(h / w))
    }
}

/// `cells` across the longer side, the shorter in proportion (at least 4).
fn arrow_cells(rect: &Rect, cells: u32) -> (u32, u32) {
    let w = (rect.max[0] - rect.min[0]).abs().max(1e-6);
    let h = (rect.max[1] - rect.min[1]).abs().max(1e-6);
    let scale = |r: f32| ((cells as f32 * r).round() as u32).clamp(4, cells);
    if w >= h {
        (cells, scale(h / w))
    } else {
        (scale(w / h), cells)
    }
}

impl PlaygroundApp {
    /// The class the field and likelihood are shown for (a conditional model), with guidance.
    fn view_class(&self) -> (Option<u32>, f32) {
        let class = self
            .settings
            .view
            .field_class
            .filter(|&c| c < self.settings.classes());
        (class, self.settings.sampling.cfg_scale)
    }

    /// Picks up finished views and asks for those that changed; `ctx` makes the CPU fallback's
    /// heat-map textures.
    pub(crate) fn update_views(&mut self, ctx: &egui::Context) {
        let Some(screen) = self.canvas.rect else {
            return;
        };
        let world = self.canvas.view.world_rect(screen);
        let on = self.settings.view.layers;
        let results = [
            (
                LayerId::Field,
                self.update_field(on.contains(LayerId::Field), world),
            ),
            (
                LayerId::Density,
                self.update_density(on.contains(LayerId::Density), world, ctx),
            ),
            (
                LayerId::Logp,
                self.update_logp(on.contains(LayerId::Logp), world, ctx),
            ),
            (
                LayerId::Pairs,
                self.update_pairs(on.contains(LayerId::Pairs)),
            ),
            (
                LayerId::Stages,
                self.update_stages(on.contains(LayerId::Stages)),
            ),
        ];
        for (id, result) in results {
            if let Err(why) = result {
                self.refuse_layer(id, &why);
            }
        }
    }

    /// A layer that cannot be shown: said once, and switched off (the rest goes on).
    fn refuse_layer(&mut self, id: LayerId, why: &AppError) {
        let mut edited = self.settings.clone();
        edited.view.layers.set(id, false);
        self.apply_settings(edited);
        self.notices.error = Some(why.to_string());
    }

    fn update_field(&mut self, on: bool, world: Rect) -> AppResult<()> {
        let views = &mut self.layers.views;
        if !on {
            views.field = None;
            views.field_asked = None;
            return Ok(());
        }
        if let Some(field) = self.engine.poll_field().transpose()? {
            self.layers.views.field = Some(field);
        }
        let (nx, ny) = arrow_cells(&world, FIELD_CELLS);
        let (label, cfg_scale) = self.view_class();
        let grid = FieldGrid {
            t: self.player.time,
            rect: world,
            nx,
            ny,
            label,
            cfg_scale,
        };
        let asked = Some((grid, self.flow.version));
        if self.layers.views.field_asked != asked && self.engine.start_field(&grid)? {
            self.layers.views.field_asked = asked;
            if let Some(field) = self.engine.poll_field().transpose()? {
                self.layers.views.field = Some(field);
            }
        }
        Ok(())
    }

    /// A heat map as drawn: the CPU fallback's gets its texture here.
    fn with_texture(map: Heatmap, ctx: &egui::Context) -> Heatmap {
        if map.gpu.is_some() {
            return map;
        }
        let image = map.image(crate::layers::HEAT_OPACITY);
        let texture = ctx.load_texture(map.layer.key(), image, TextureOptions::NEAREST);
        Heatmap {
            texture: Some(texture),
            ..map
        }
    }

    fn heat_bins(&self) -> u32 {
        match self.engine.backend() {
            // A software GPU computes the likelihood map a submission at a time, frames waiting.
            Backend::Gpu if self.engine.slices() => GPU_HEAT_BINS,
            Backend::Gpu | Backend::Cpu => CPU_HEAT_BINS,
        }
    }

    fn update_density(&mut self, on: bool, world: Rect, ctx: &egui::Context) -> AppResult<()> {
        if !on {
            self.layers.views.density = None;
            self.layers.views.density_asked = None;
            return Ok(());
        }
        if let Some(map) = self.engine.poll_density().transpose()? {
            self.layers.views.density = Some(Self::with_texture(map, ctx));
        }
        let (nx, ny) = grid_cells(&world, self.heat_bins());
        let ask = DensityAsk {
            bins: HistogramBins {
                rect: world,
                nx,
                ny,
                t: Some(self.player.time),
            },
            sampler: self.settings.sampling.sampler(),
            classes: self.settings.classes(),
            cfg_scale: self.settings.sampling.cfg_scale,
        };
        let asked = Some((ask.clone(), self.flow.version));
        if self.layers.views.density_asked != asked && self.engine.start_density(&ask)? {
            self.layers.views.density_asked = asked;
            if let Some(map) = self.engine.poll_density().transpose()? {
                self.layers.views.density = Some(Self::with_texture(map, ctx));
            }
        }
        Ok(())
    }

    fn update_logp(&mut self, on: bool, world: Rect, ctx: &egui::Context) -> AppResult<()> {
        if !on {
            let views = &mut self.layers.views;
            views.logp = None;
            views.logp_asked = None;
            return Ok(());
        }
        if let Some(map) = self.engine.poll_logp().transpose()? {
            let views = &mut self.layers.views;
            views.logp_secs = views.logp_at.map(|at| at.elapsed().as_secs_f64());
            views.logp = Some(Self::with_texture(map, ctx));
        }
        let (nx, ny) = grid_cells(&world, self.heat_bins());
        let (label, cfg_scale) = self.view_class();
        let ask = LogpAsk {
            rect: world,
            nx,
            ny,
            sampler: self.settings.sampling.sampler(),
            label,
            cfg_scale,
        };
        let views = &self.layers.views;
        let asked = views.logp_asked.as_ref();
        let same_ask = asked.is_some_and(|(a, _)| *a == ask);
        let newer_weights = asked.is_some_and(|(_, v)| *v != self.flow.version);
        // A new grid or solver is computed as soon as the pointer is up (not during a pan); new
        // weights alone no sooner than the pace allows.
        let due = if !same_ask {
            !self.frame.pointer_down
        } else if newer_weights {
            let pace = (LOGP_PACE * views.logp_secs.unwrap_or(0.0)).max(1.0);
            !self.engine.logp_busy()
                && views
                    .logp_at
                    .is_none_or(|at| at.elapsed().as_secs_f64() > pace)
        } else {
            false
        };
        if due && self.engine.start_logp(&ask)? {
            let views = &mut self.layers.views;
            views.logp_asked = Some((ask, self.flow.version));
            views.logp_at = Some(Instant::now());
        }
        Ok(())
    }

    fn update_pairs(&mut self, on: bool) -> AppResult<()> {
        let views = &mut self.layers.views;
        if !on {
            views.pairs = None;
            views.pairs_at = None;
            return Ok(());
        }
        let step = self.engine.steps_done();
        let stale = views.pairs.as_ref().is_none_or(|p| p.step != step)
            && views
                .pairs_at
                .is_none_or(|at| at.elapsed().as_secs_f64() > PAIRS_EVERY_SECS);
        if stale {
            views.pairs = Some(self.engine.batch_pairs(self.layers.pairs_ot));
            views.pairs_at = Some(Instant::now());
        } else if let Some(pairs) = &mut views.pairs {
            pairs.show_ot = self.layers.pairs_ot;
        }
        Ok(())
    }

    fn update_stages(&mut self, on: bool) -> AppResult<()> {
        if !on {
            self.layers.inspected = None;
            self.layers.views.pending_inspect = None;
            return Ok(());
        }
        let Some(request) = self.flow.request.clone() else {
            return Ok(());
        };
        let wanted = self.layers.views.pending_inspect.is_some() || self.layers.inspected.is_some();
        if !wanted {
            return Ok(());
        }
        let Some(model) = self.engine.drawn_model().transpose()? else {
            return Ok(());
        };
        let t = self.player.time;
        if let Some(world) = self.layers.views.pending_inspect.take()
            && let Some(particle) = self.engine.nearest_particle(world, t, &request, &model)?
        {
            self.layers.inspected = Some(Inspected {
                particle,
                shown: 1,
                view: None,
                key: None,
            });
        }
        let Some(inspected) = &self.layers.inspected else {
            return Ok(());
        };
        let key = Some((t.to_bits(), inspected.shown, self.flow.version));
        if inspected.key == key {
            return Ok(());
        }
        let i = inspected.particle;
        let Some(x0) = self.engine.particle_start(&request, i) else {
            // The drawing has fewer particles now.
            self.layers.inspected = None;
            return Ok(());
        };
        let label = request.labels.as_ref().and_then(|l| l.get(i).copied());
        let view = stage_view(&model, &request, x0, label, t, inspected.shown)?;
        if let Some(inspected) = &mut self.layers.inspected {
            inspected.view = Some(view);
            inspected.key = key;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heat_grids_keep_the_shorter_side_and_arrows_the_longer() {
        let wide = Rect::new([-4.0, -1.0], [4.0, 1.0]);
        assert_eq!(grid_cells(&wide, 128), (512, 128));
        assert_eq!(
            grid_cells(&Rect::new([0.0, 0.0], [1.0, 1.5]), 128),
            (128, 192)
        );
        assert_eq!(arrow_cells(&wide, 28), (28, 7));
        assert_eq!(
            arrow_cells(&Rect::new([0.0, 0.0], [1.0, 100.0]), 28),
            (4, 28)
        );
    }
}
