//! The brush's points: painted on the canvas, erased, and made the data or the source.

use flowplay_core::data::Points;
use glam::Vec2;
use rand_distr::{Distribution as _, UnitDisc};

use super::PlaygroundApp;
use super::state::Role;

/// The most points the brush paints.
pub(crate) const MAX_DRAWN_POINTS: usize = 20_000;
/// The fewest painted points the flow trains on.
pub(crate) const MIN_DRAWN_POINTS: usize = 8;

impl PlaygroundApp {
    /// One dab of the brush at `at` (world units, radius `radius`): points drawn uniformly in
    /// the disc, or the points in it erased.
    pub(crate) fn paint(&mut self, at: [f32; 2], radius: f32) {
        let drawing = &mut self.drawing;
        let at = Vec2::from(at);
        if self.brush.erase {
            let r2 = radius * radius;
            let keep: Vec<bool> = drawing
                .xy
                .iter()
                .map(|&p| Vec2::from(p).distance_squared(at) > r2)
                .collect();
            let mut k = keep.iter();
            drawing.xy.retain(|_| *k.next().unwrap_or(&true));
            let mut k = keep.iter();
            drawing.labels.retain(|_| *k.next().unwrap_or(&true));
            return;
        }
        let room = MAX_DRAWN_POINTS.saturating_sub(drawing.xy.len());
        // rand's uniform disc over the counter-based stream: a drawing is reproducible.
        let mut rng = flowplay_core::rng::Rng::with_domain(drawing.dabs, "brush");
        drawing.dabs += 1;
        let dab = UnitDisc
            .sample_iter(&mut rng)
            .take(self.brush.density.min(room))
            .map(|[x, y]: [f32; 2]| (at + radius * Vec2::new(x, y)).to_array());
        let before = drawing.xy.len();
        drawing.xy.extend(dab);
        let added = drawing.xy.len() - before;
        drawing
            .labels
            .extend(std::iter::repeat_n(self.brush.class, added));
        if room == 0 {
            self.notices.error = Some(format!(
                "The drawing holds at most {MAX_DRAWN_POINTS} points: train on it, or erase some."
            ));
        }
    }

    /// Makes the painted points the data (one class: unlabelled; several: labelled, for a
    /// class-conditional model) or the source, or says why not.
    pub(crate) fn use_drawing(&mut self, role: Role) -> Result<String, String> {
        let drawing = &self.drawing;
        if drawing.xy.len() < MIN_DRAWN_POINTS {
            return Err(format!(
                "The drawing has {} points; paint at least {MIN_DRAWN_POINTS} (turn the brush on \
                 and drag on the canvas). {}",
                drawing.xy.len(),
                role.kept()
            ));
        }
        let used: std::collections::BTreeSet<u32> = drawing.labels.iter().copied().collect();
        let points = if used.len() > 1 {
            // Classes renumbered 0.. in order, so that unused colours leave no empty class.
            let index: std::collections::BTreeMap<u32, u32> = used
                .iter()
                .enumerate()
                .map(|(i, &c)| (c, i as u32))
                .collect();
            let labels = drawing.labels.iter().map(|c| index[c]).collect();
            Points::labelled(drawing.xy.clone(), labels)
        } else {
            Ok(Points::unlabelled(drawing.xy.clone()))
        }
        .map_err(|e| format!("The drawing cannot be used: {e}."))?;
        self.use_points("your drawing", points, role)
    }
}
