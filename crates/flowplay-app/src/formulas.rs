//! The formulas shown next to the switches they belong to (QR = the Flow Matching Quick
//! Reference, the text flowplay implements): the path's x_t and u_t, the loss, the solver's
//! update and the guidance rule.

use flowplay_core::sampler::Solver;

use crate::settings::PathKind;

/// The conditional flow-matching loss (QR §2.2, §4.3).
pub(crate) const LOSS: &str = "L(θ) = E_{t, x₀, x₁} ‖v_θ(t, x_t) − u_t‖²";

/// Classifier-free guidance (QR §7.2).
pub(crate) const GUIDANCE: &str = "v_w = v(t, x, ∅) + w·(v(t, x, c) − v(t, x, ∅))";

/// The path's interpolant and its velocity (QR §3), with rectified flow's σ_min where it is
/// not 0.
pub(crate) fn path(kind: PathKind, rf_sigma_min: f32) -> String {
    match kind {
        PathKind::RectifiedFlow if rf_sigma_min > 0.0 => format!(
            "x_t = (1 − (1 − σ)·t)·x₀ + t·x₁\nu_t = x₁ − (1 − σ)·x₀,   σ = σ_min = {rf_sigma_min}"
        ),
        PathKind::RectifiedFlow => "x_t = (1 − t)·x₀ + t·x₁\nu_t = x₁ − x₀".to_string(),
        PathKind::VpCosine => "x_t = cos(πt/2)·x₀ + sin(πt/2)·x₁\n\
                               u_t = (π/2)·(cos(πt/2)·x₁ − sin(πt/2)·x₀)"
            .to_string(),
        PathKind::Ve => "x_t = x₁ + σ(1 − t)·x₀,   σ(s) = σ_min^(1−s)·σ_max^s\n\
                         u_t = −σ(1 − t)·ln(σ_max/σ_min)·x₀"
            .to_string(),
    }
}

/// One step of the solver from t to t + Δt (QR §5), k₁ = v(t, x).
pub(crate) fn solver(solver: Solver) -> &'static str {
    match solver {
        Solver::Euler => "x ← x + Δt·k₁",
        Solver::Heun => "k₂ = v(t + Δt, x + Δt·k₁)\nx ← x + Δt·(k₁ + k₂)/2",
        Solver::Rk4 => {
            "k₂ = v(t + Δt/2, x + Δt·k₁/2),  k₃ = v(t + Δt/2, x + Δt·k₂/2)\n\
             k₄ = v(t + Δt, x + Δt·k₃)\nx ← x + Δt·(k₁ + 2k₂ + 2k₃ + k₄)/6"
        }
    }
}

#[cfg(test)]
mod tests {
    use std::f32::consts::FRAC_PI_2;

    use flowplay_core::path::Path;

    use super::*;

    /// The coefficients the shown formulas spell out, (a, b, a′, b′) with x_t = a·x₀ + b·x₁ and
    /// u_t = a′·x₀ + b′·x₁, against the core's at several t.
    #[test]
    fn the_shown_formulas_are_the_cores_paths() {
        let (lo, hi) = (0.01_f32, 50.0_f32);
        let sigma = move |s: f32| lo.powf(1.0 - s) * hi.powf(s);
        type Shown = Box<dyn Fn(f32) -> [f32; 4]>;
        let cases: [(Path, Shown); 4] = [
            (Path::RECTIFIED_FLOW, Box::new(|t| [1.0 - t, t, -1.0, 1.0])),
            (
                Path::RectifiedFlow { sigma_min: 1e-2 },
                Box::new(|t| [1.0 - 0.99 * t, t, -0.99, 1.0]),
            ),
            (
                Path::VpCosine,
                Box::new(|t| {
                    let (s, c) = (FRAC_PI_2 * t).sin_cos();
                    [c, s, -FRAC_PI_2 * s, FRAC_PI_2 * c]
                }),
            ),
            (
                Path::Ve {
                    sigma_min: lo,
                    sigma_max: hi,
                    sigma_data: None,
                },
                Box::new(move |t| {
                    let s = sigma(1.0 - t);
                    [s, 1.0, -s * (hi / lo).ln(), 0.0]
                }),
            ),
        ];
        for (core, shown) in &cases {
            for t in [0.05_f32, 0.3, 0.5, 0.8, 0.95] {
                let c = core.coefficients(t);
                let want = shown(t);
                for (got, want) in [c.a, c.b, c.da, c.db].into_iter().zip(want) {
                    assert!(
                        (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                        "{core:?} at t = {t}: {got} vs {want}"
                    );
                }
            }
        }
        assert!(path(PathKind::RectifiedFlow, 0.01).contains("σ_min = 0.01"));
        assert!(path(PathKind::Ve, 0.0).contains("ln(σ_max/σ_min)"));
        for s in Solver::ALL {
            assert!(solver(s).contains("x ←"));
        }
    }
}
