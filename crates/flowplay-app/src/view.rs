//! The view of the plane: which region of the world the canvas shows, with equal scales on both
//! axes, and the maps between world units (y up) and egui's screen points (y down).
//!
//! The map is an affine one, `screen_from_world`, built with glam's `Affine2`: a translation of
//! the view's centre to the origin, a scale by points per world unit (flipped in y), and a
//! translation to the canvas's centre. Its inverse takes a pointer back into the world.

use egui::{Pos2, Rect};
use glam::{Affine2, Vec2};

/// Half the canvas's shorter side shows at least this much of the world, and at most this.
const HALF_EXTENT_RANGE: (f32, f32) = (1e-3, 1e4);

/// The region of the plane shown, with equal scales on both axes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct View {
    /// The world point at the canvas's centre.
    centre: Vec2,
    /// The world distance from the centre to the nearer edge of the canvas.
    half_extent: f32,
}

impl View {
    /// A view holding `points` and the ±3σ box of the prior.
    pub(crate) fn fit(points: impl IntoIterator<Item = [f32; 2]>, prior_scale: f32) -> Self {
        let prior = Vec2::splat(3.0 * prior_scale.min(4.0));
        let (lo, hi) = points
            .into_iter()
            .map(Vec2::from)
            .filter(|p| p.is_finite())
            .fold((-prior, prior), |(lo, hi), p| (lo.min(p), hi.max(p)));
        Self {
            centre: (lo + hi) / 2.0,
            half_extent: (0.55 * (hi - lo).max_element())
                .clamp(HALF_EXTENT_RANGE.0, HALF_EXTENT_RANGE.1),
        }
    }

    /// World units per egui point in `rect`.
    pub(crate) fn world_per_point(self, rect: Rect) -> f32 {
        self.half_extent / (0.5 * rect.width().min(rect.height()).max(1.0))
    }

    /// The affine map from world units to screen points in `rect`.
    pub(crate) fn screen_from_world(self, rect: Rect) -> Affine2 {
        let points_per_world = 1.0 / self.world_per_point(rect);
        Affine2::from_translation(Vec2::new(rect.center().x, rect.center().y))
            * Affine2::from_scale(Vec2::new(points_per_world, -points_per_world))
            * Affine2::from_translation(-self.centre)
    }

    /// The affine map from screen points in `rect` to world units.
    pub(crate) fn world_from_screen(self, rect: Rect) -> Affine2 {
        self.screen_from_world(rect).inverse()
    }

    /// Where world point `p` is on the screen.
    pub(crate) fn to_screen(self, rect: Rect, p: [f32; 2]) -> Pos2 {
        let s = self.screen_from_world(rect).transform_point2(Vec2::from(p));
        Pos2::new(s.x, s.y)
    }

    /// The world point under screen point `p`.
    pub(crate) fn to_world(self, rect: Rect, p: Pos2) -> [f32; 2] {
        self.world_from_screen(rect)
            .transform_point2(Vec2::new(p.x, p.y))
            .to_array()
    }

    /// The world rectangle `rect` shows.
    pub(crate) fn world_rect(self, rect: Rect) -> flowplay_gpu::Rect {
        let a = self.to_world(rect, rect.left_bottom());
        let b = self.to_world(rect, rect.right_top());
        flowplay_gpu::Rect::new(a, b)
    }

    /// The view panned by a drag of `delta` points and zoomed by `factor` (> 1 zooms in) about
    /// `anchor` (the centre when `None`); the zoom is bounded, and a factor that is not a
    /// positive finite number is ignored.
    pub(crate) fn panned_zoomed(
        mut self,
        rect: Rect,
        delta: egui::Vec2,
        factor: f32,
        anchor: Option<Pos2>,
    ) -> Self {
        // A drag of the canvas moves the world with the pointer: the centre moves against it
        // (y flipped, as the screen's y runs down).
        let w = self.world_per_point(rect);
        self.centre -= Vec2::new(delta.x, -delta.y) * w;
        if (factor - 1.0).abs() > 1e-6 && factor.is_finite() && factor > 0.0 {
            let fixed = anchor.map_or(self.centre, |a| Vec2::from(self.to_world(rect, a)));
            let half = (self.half_extent / factor).clamp(HALF_EXTENT_RANGE.0, HALF_EXTENT_RANGE.1);
            // The anchor stays where it is on the screen: every world point's distance from it
            // scales by the same factor as the extent.
            self.centre = fixed + (self.centre - fixed) * (half / self.half_extent);
            self.half_extent = half;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use egui::{pos2, vec2};

    use super::*;

    #[test]
    fn the_view_maps_world_and_screen_both_ways() {
        let rect = Rect::from_min_size(pos2(10.0, 20.0), vec2(400.0, 300.0));
        let view = View::fit([[2.0, 1.0], [-1.0, -2.0]], 1.0);
        for p in [[0.0, 0.0], [1.5, -0.5], [-2.0, 2.5]] {
            let back = view.to_world(rect, view.to_screen(rect, p));
            assert!((back[0] - p[0]).abs() < 1e-4 && (back[1] - p[1]).abs() < 1e-4);
        }
        let world = view.world_rect(rect);
        assert!(world.max[0] > world.min[0] && world.max[1] > world.min[1]);
        // Zooming in about a point keeps that point where it is.
        let anchor = pos2(300.0, 100.0);
        let fixed = view.to_world(rect, anchor);
        let zoomed = view.panned_zoomed(rect, egui::Vec2::ZERO, 2.0, Some(anchor));
        let still = zoomed.to_world(rect, anchor);
        assert!((still[0] - fixed[0]).abs() < 1e-4 && (still[1] - fixed[1]).abs() < 1e-4);
        assert!((zoomed.world_per_point(rect) - view.world_per_point(rect) / 2.0).abs() < 1e-6);
    }

    #[test]
    fn the_world_is_y_up_and_centred() {
        let rect = Rect::from_min_size(pos2(0.0, 0.0), vec2(200.0, 100.0));
        let view = View::fit([], 1.0);
        // The prior's ±3 box, with a margin, across the shorter side.
        assert!((view.world_per_point(rect) - 0.55 * 6.0 / 50.0).abs() < 1e-6);
        assert_eq!(view.to_screen(rect, [0.0, 0.0]), rect.center());
        let up = view.to_screen(rect, [0.0, 1.0]);
        let right = view.to_screen(rect, [1.0, 0.0]);
        assert!(up.y < rect.center().y && (up.x - rect.center().x).abs() < 1e-4);
        assert!(right.x > rect.center().x && (right.y - rect.center().y).abs() < 1e-4);
    }

    #[test]
    fn a_drag_moves_the_world_with_the_pointer() {
        let rect = Rect::from_min_size(pos2(0.0, 0.0), vec2(300.0, 300.0));
        let view = View::fit([], 1.0);
        let grabbed = pos2(120.0, 80.0);
        let world = view.to_world(rect, grabbed);
        let delta = vec2(35.0, -20.0);
        let moved = view.panned_zoomed(rect, delta, 1.0, None);
        let now = moved.to_screen(rect, world);
        assert!((now - (grabbed + delta)).length() < 1e-3, "{now:?}");
    }

    #[test]
    fn zoom_is_bounded_and_junk_factors_are_ignored() {
        let rect = Rect::from_min_size(pos2(0.0, 0.0), vec2(300.0, 300.0));
        let view = View::fit([], 1.0);
        for junk in [f32::NAN, f32::INFINITY, 0.0, -2.0] {
            assert_eq!(view.panned_zoomed(rect, egui::Vec2::ZERO, junk, None), view);
        }
        let deep = view.panned_zoomed(rect, egui::Vec2::ZERO, 1e12, None);
        assert!((deep.half_extent - HALF_EXTENT_RANGE.0).abs() < 1e-9);
        let far = view.panned_zoomed(rect, egui::Vec2::ZERO, 1e-12, None);
        assert!((far.half_extent - HALF_EXTENT_RANGE.1).abs() < 1e-2);
        // Non-finite points do not stretch a fitted view.
        assert_eq!(
            View::fit([[f32::NAN, 1.0], [f32::INFINITY, 0.0]], 1.0),
            view
        );
    }
}
