//! The canvas's layers, one abstraction for all of them: each has a key (in the URL's
//! `layers=…` and the status JSON), a toggle in the Layers panel, a legend entry with a one-line
//! "what you see", and a drawing with the GPU's paint callbacks where its data live in GPU
//! buffers, or with egui's painter (the CPU fallback, and layers whose data are a handful of
//! marks on either backend). [`draw`] draws the layers that are on, back to front.

mod data;
mod density;
mod field;
mod pairs;
mod particles;
mod stages;

use egui::{Color32, Painter, Rect};
use flowplay_gpu::overlay::Mark;

pub(crate) use density::{HEAT_OPACITY, Heatmap};
pub(crate) use field::{ARROWS, FIELD_CELLS, FieldView};
pub(crate) use pairs::PairsView;
pub(crate) use particles::position_at;
pub(crate) use stages::StageView;

use crate::engine::Flow;
use crate::view::View;

/// A canvas layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum LayerId {
    /// The training data (faded, in class colours for a conditional model).
    Data,
    /// The particles at the scrubber's t.
    Particles,
    /// Each particle's path from t = 0 up to t.
    Trails,
    /// The predicted endpoints x̂ of the current solver step.
    Endpoints,
    /// v_θ(t, ·) on a grid: arrows, optionally streamlines.
    Field,
    /// p_t as a heat map from the histogram of many particles.
    Density,
    /// The model's exact log density at t = 1.
    Logp,
    /// One particle's solver step, stage by stage.
    Stages,
    /// The x₀ → x₁ pairs of one training batch.
    Pairs,
}

impl LayerId {
    /// Every layer, in the order of the Layers panel and the URL.
    pub(crate) const ALL: [Self; 9] = [
        Self::Data,
        Self::Particles,
        Self::Trails,
        Self::Endpoints,
        Self::Field,
        Self::Density,
        Self::Logp,
        Self::Stages,
        Self::Pairs,
    ];

    /// Back to front.
    const DRAW_ORDER: [Self; 9] = [
        Self::Density,
        Self::Logp,
        Self::Data,
        Self::Pairs,
        Self::Field,
        Self::Trails,
        Self::Endpoints,
        Self::Particles,
        Self::Stages,
    ];

    /// The name in the URL and the status JSON.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Self::Data => "data",
            Self::Particles => "particles",
            Self::Trails => "trails",
            Self::Endpoints => "endpoints",
            Self::Field => "field",
            Self::Density => "density",
            Self::Logp => "logp",
            Self::Stages => "stages",
            Self::Pairs => "pairs",
        }
    }

    /// The toggle's label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Data => "data",
            Self::Particles => "particles",
            Self::Trails => "trails",
            Self::Endpoints => "predicted endpoints",
            Self::Field => "vector field",
            Self::Density => "density p_t",
            Self::Logp => "likelihood log p₁",
            Self::Stages => "solver stages",
            Self::Pairs => "coupling pairs",
        }
    }

    /// The layer in a few words, for the canvas's "what you see" line.
    pub(crate) fn in_a_phrase(self) -> &'static str {
        match self {
            Self::Data => "the data p₁ (faint)",
            Self::Particles => "particles carried from noise by dx/dt = v_θ(t, x)",
            Self::Trails => "their paths so far",
            Self::Endpoints => "where the network predicts each will end",
            Self::Field => "the velocity field v_θ(t, ·) (arrows)",
            Self::Density => "how densely the particles sit (p_t)",
            Self::Logp => "the model's log-likelihood log p₁",
            Self::Stages => "one particle's solver step taken apart",
            Self::Pairs => "one training batch's pairs (x₀, x₁)",
        }
    }

    /// What the layer shows, in one line (the legend and the toggle's hover text).
    pub(crate) fn what_you_see(self) -> &'static str {
        match self {
            Self::Data => "Points of the data distribution p₁ the flow must reach.",
            Self::Particles => {
                "Noise samples carried along dx/dt = v_θ(t, x) to the scrubber's t: at t = 1 they \
                 should look like the data."
            }
            Self::Trails => "Where each particle came from: its path from t = 0 up to now.",
            Self::Endpoints => {
                "Where the network predicts each particle ends at the current solver step (the \
                 TRELLIS sampler's pred_x_0; for rectified flow x_t + (1 − t)·v_θ(t, x_t)): the \
                 prediction reaches the data long before the particle does."
            }
            Self::Field => {
                "The learned velocity v_θ(t, x) at the scrubber's t: the particles move along \
                 these arrows. Long and bright is fast."
            }
            Self::Density => {
                "How densely the particles sit at t (p_t, a histogram of many of them): noise at \
                 t = 0, the data at t = 1."
            }
            Self::Logp => {
                "The model's exact log density log p₁(x) = log p₀(x₀) − ∫ div v_θ dt: bright where \
                 the model puts its mass."
            }
            Self::Stages => {
                "One particle's solver step taken apart: where each stage evaluates the field, \
                 its velocity, and where the step lands."
            }
            Self::Pairs => {
                "Which noise point x₀ each data point x₁ is paired with in one training batch: \
                 crossing lines make curved flows."
            }
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// The layers that are on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LayerSet(u16);

impl Default for LayerSet {
    /// Data, particles and trails.
    fn default() -> Self {
        Self(LayerId::Data.bit() | LayerId::Particles.bit() | LayerId::Trails.bit())
    }
}

impl LayerSet {
    /// No layer.
    pub(crate) const NONE: Self = Self(0);

    pub(crate) fn contains(self, id: LayerId) -> bool {
        self.0 & id.bit() != 0
    }

    pub(crate) fn set(&mut self, id: LayerId, on: bool) {
        if on {
            self.0 |= id.bit();
        } else {
            self.0 &= !id.bit();
        }
    }

    /// Whether particle refreshes record the predicted endpoints.
    pub(crate) fn endpoints(self) -> bool {
        self.contains(LayerId::Endpoints)
    }

    /// The layers that are on, in [`LayerId::ALL`] order.
    pub(crate) fn iter(self) -> impl Iterator<Item = LayerId> {
        LayerId::ALL
            .into_iter()
            .filter(move |&id| self.contains(id))
    }

    /// `data,particles,field` (empty for none).
    pub(crate) fn to_query(self) -> String {
        self.iter().map(LayerId::key).collect::<Vec<_>>().join(",")
    }

    /// The layers named in `value` (comma-separated keys), or the first name that is none.
    pub(crate) fn from_query(value: &str) -> Result<Self, String> {
        let mut set = Self::NONE;
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let id = LayerId::ALL
                .into_iter()
                .find(|id| id.key() == name)
                .ok_or_else(|| name.to_string())?;
            set.set(id, true);
        }
        Ok(set)
    }
}

/// A mark in the legend: its colour (or gradient ends) and what it means.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LegendEntry {
    pub(crate) layer: LayerId,
    /// Colours shown in its swatch (a gradient when several).
    pub(crate) colours: Vec<Color32>,
    /// What the mark is.
    pub(crate) text: String,
}

/// Where and how the canvas draws this frame.
pub(crate) struct PaintCx<'a> {
    pub(crate) painter: &'a Painter,
    pub(crate) rect: Rect,
    pub(crate) view: View,
    /// The renderers' slot for this canvas (one per canvas on screen).
    pub(crate) slot: usize,
    /// Whether the GPU renderers are installed (egui draws with wgpu on a device with compute):
    /// layers then draw with paint callbacks, else with egui's painter.
    pub(crate) gpu: bool,
}

impl PaintCx<'_> {
    /// The GPU renderers' view of this canvas, in egui points (the paint callback converts to
    /// pixels).
    pub(crate) fn frame(&self) -> flowplay_gpu::overlay::ViewFrame {
        flowplay_gpu::overlay::ViewFrame {
            centre: self.view.to_world(self.rect, self.rect.center()),
            world_per_px: self.view.world_per_point(self.rect),
            viewport_px: [self.rect.width(), self.rect.height()],
        }
    }

    /// Where world point `p` is on screen.
    pub(crate) fn screen(&self, p: [f32; 2]) -> egui::Pos2 {
        self.view.to_screen(self.rect, p)
    }
}

/// The marks layers' slots in the marks renderer, per canvas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MarkSlot {
    Data = 0,
    Field = 1,
    Pairs = 2,
    Stages = 3,
}

/// Marks layers a canvas has.
const MARK_SLOTS: usize = 4;

/// Draws `marks` with the GPU's marks renderer when there is one, else with egui's painter.
pub(crate) fn paint_marks(cx: &PaintCx<'_>, which: MarkSlot, marks: &[Mark]) {
    if cx.gpu {
        crate::paint::marks(
            cx,
            cx.slot * MARK_SLOTS + which as usize,
            crate::paint::MarkData::Upload(std::sync::Arc::new(marks.to_vec())),
        );
    } else {
        draw_marks_cpu(cx, marks);
    }
}

/// The marks renderer's slot of `which` on this canvas.
pub(crate) fn mark_slot(cx: &PaintCx<'_>, which: MarkSlot) -> usize {
    cx.slot * MARK_SLOTS + which as usize
}

/// The CPU fallback's drawing of marks, as `marks_draw.wgsl` draws them.
pub(crate) fn draw_marks_cpu(cx: &PaintCx<'_>, marks: &[Mark]) {
    use flowplay_gpu::overlay::MarkKind;
    for m in marks {
        let colour = crate::canvas::colour32(flowplay_gpu::Rgba(m.colour));
        let a = cx.screen(m.a);
        match m.kind() {
            MarkKind::Dot => {
                if cx.rect.contains(a) {
                    cx.painter.circle_filled(a, m.width_px, colour);
                }
            }
            MarkKind::Segment | MarkKind::Arrow => {
                let b = cx.screen(m.b);
                let d = b - a;
                let len = d.length();
                if len < 1e-3 {
                    continue;
                }
                let dir = d / len;
                let head = if m.kind() == MarkKind::Arrow {
                    m.head_px.min(0.6 * len)
                } else {
                    0.0
                };
                let shaft_end = b - dir * head;
                cx.painter
                    .line_segment([a, shaft_end], egui::Stroke::new(m.width_px, colour));
                if head > 0.0 {
                    let normal = egui::vec2(-dir.y, dir.x) * (0.5 * head);
                    cx.painter.add(egui::Shape::convex_polygon(
                        vec![b, shaft_end + normal, shaft_end - normal],
                        colour,
                        egui::Stroke::NONE,
                    ));
                }
            }
        }
    }
}

/// Everything the layers draw from, for one canvas.
pub(crate) struct Scene<'a> {
    /// The scrubber's t.
    pub(crate) t: f32,
    /// Classes of a conditional model (0: none): particle `i` has class `i mod classes`.
    pub(crate) classes: u32,
    pub(crate) data: &'a [([f32; 2], Color32)],
    pub(crate) flow: Option<Flow<'a>>,
    pub(crate) field: Option<&'a FieldView>,
    pub(crate) density: Option<&'a Heatmap>,
    pub(crate) logp: Option<&'a Heatmap>,
    pub(crate) stages: Option<&'a StageView>,
    pub(crate) pairs: Option<&'a PairsView>,
    /// Streamlines on the field (animated).
    pub(crate) streamlines: bool,
    /// Seconds since start, for animations.
    pub(crate) clock: f32,
    /// Whether the GPU renderers are installed (see [`PaintCx::gpu`]).
    pub(crate) gpu: bool,
}

/// Draws the layers of `on` that have something to show, back to front; returns those drawn.
pub(crate) fn draw(cx: &PaintCx<'_>, scene: &Scene<'_>, on: LayerSet) -> Vec<LayerId> {
    let mut drawn = Vec::new();
    for id in LayerId::DRAW_ORDER {
        let particles_group = matches!(id, LayerId::Trails)
            && (on.contains(LayerId::Particles) || on.contains(LayerId::Endpoints));
        if !on.contains(id) && !particles_group {
            continue;
        }
        let shown = match id {
            LayerId::Data => data::draw(cx, scene),
            // Trails, endpoints and particles are drawn together, trails first.
            LayerId::Trails => {
                drawn.extend(particles::draw(cx, scene, on));
                continue;
            }
            LayerId::Endpoints | LayerId::Particles => continue,
            LayerId::Field => scene.field.is_some_and(|f| field::draw(cx, scene, f)),
            LayerId::Density => scene.density.is_some_and(|h| density::draw(cx, h, 0)),
            LayerId::Logp => scene.logp.is_some_and(|h| density::draw(cx, h, 1)),
            LayerId::Stages => scene.stages.is_some_and(|s| stages::draw(cx, s)),
            LayerId::Pairs => scene.pairs.is_some_and(|p| pairs::draw(cx, p)),
        };
        if shown {
            drawn.push(id);
        }
    }
    drawn
}

/// The legend of the layers in `drawn`, in panel order.
pub(crate) fn legend(drawn: &[LayerId], scene: &Scene<'_>) -> Vec<LegendEntry> {
    let mut out = Vec::new();
    for id in LayerId::ALL.into_iter().filter(|id| drawn.contains(id)) {
        let entries = match id {
            LayerId::Data => data::legend(scene),
            LayerId::Particles | LayerId::Trails | LayerId::Endpoints => {
                particles::legend(id, scene)
            }
            LayerId::Field => scene
                .field
                .map(|f| field::legend(f, scene.streamlines))
                .unwrap_or_default(),
            LayerId::Density | LayerId::Logp => {
                let map = if id == LayerId::Density {
                    scene.density
                } else {
                    scene.logp
                };
                map.map(|h| density::legend(id, h)).unwrap_or_default()
            }
            LayerId::Stages => scene.stages.map(stages::legend).unwrap_or_default(),
            LayerId::Pairs => scene.pairs.map(pairs::legend).unwrap_or_default(),
        };
        out.extend(entries);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_sets_round_trip_through_the_url() {
        let mut set = LayerSet::NONE;
        for id in [LayerId::Field, LayerId::Density, LayerId::Pairs] {
            set.set(id, true);
        }
        assert_eq!(set.to_query(), "field,density,pairs");
        assert_eq!(LayerSet::from_query("pairs, field,density"), Ok(set));
        assert_eq!(LayerSet::from_query(""), Ok(LayerSet::NONE));
        assert_eq!(LayerSet::from_query("field,fog"), Err("fog".to_string()));
        assert_eq!(LayerSet::default().to_query(), "data,particles,trails");
    }

    #[test]
    fn every_layer_is_drawn_once_and_named_uniquely() {
        for id in LayerId::ALL {
            assert_eq!(
                LayerId::DRAW_ORDER.iter().filter(|&&d| d == id).count(),
                1,
                "{id:?}"
            );
            assert!(!id.what_you_see().is_empty());
        }
        let keys: std::collections::HashSet<_> = LayerId::ALL.map(LayerId::key).into();
        assert_eq!(keys.len(), LayerId::ALL.len());
    }
}
