//! Two runs side by side: what the second run changes. It is the first run's settings with one
//! thing of its own (the path, the coupling, the time sampling, or the solver), so that it
//! follows every other change of the first and the two differ in that one thing only.

use flowplay_core::sampler::Solver;

use super::{PathKind, Settings};

/// What the second run does differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Comparison {
    /// Another probability path (and its parameters).
    Path,
    /// The other coupling: independent pairs or minibatch OT.
    Coupling,
    /// Another time sampling.
    TimeSampling,
    /// Another solver and step count: the same training, so the same model (from the same
    /// seed, bit for bit on the CPU), sampled another way.
    Solver,
}

impl Comparison {
    /// Every comparison, as the compare section offers them.
    pub(crate) const ALL: [Self; 4] =
        [Self::Path, Self::Coupling, Self::TimeSampling, Self::Solver];

    /// Its name in the address (`#second=path`) and on the command line
    /// (`flowplay-app --bench --second path`).
    pub(crate) fn key(self) -> &'static str {
        match self {
            Self::Path => "path",
            Self::Coupling => "coupling",
            Self::TimeSampling => "time",
            Self::Solver => "solver",
        }
    }

    /// The comparison named `key`.
    pub(crate) fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.key() == key)
    }

    /// A short name.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Path => "another path",
            Self::Coupling => "the other coupling",
            Self::TimeSampling => "another time sampling",
            Self::Solver => "another solver (same model)",
        }
    }

    /// The second run's settings to start from: the first's, with the compared thing switched
    /// to its most telling alternative.
    pub(crate) fn preset(self, first: &Settings) -> Settings {
        let mut second = first.clone();
        match self {
            Self::Path => {
                second.training.path.kind = match first.training.path.kind {
                    PathKind::RectifiedFlow => PathKind::VpCosine,
                    PathKind::VpCosine | PathKind::Ve => PathKind::RectifiedFlow,
                };
            }
            Self::Coupling => second.training.ot = !first.training.ot,
            Self::TimeSampling => second.training.logit_normal = !first.training.logit_normal,
            Self::Solver => {
                // About the same evaluations with the other end of the solvers.
                let nfe = first.sampling.steps * first.sampling.solver.evals_per_step();
                let solver = if first.sampling.solver == Solver::Rk4 {
                    Solver::Euler
                } else {
                    Solver::Rk4
                };
                second.sampling.solver = solver;
                second.sampling.steps = (nfe / solver.evals_per_step()).max(1);
            }
        }
        second
    }

    /// The second run's settings now: the first's, with the second's own value of the compared
    /// thing (so it follows everything else the first changes).
    pub(crate) fn follow(self, first: &Settings, second: &Settings) -> Settings {
        let mut out = first.clone();
        match self {
            Self::Path => out.training.path = second.training.path.clone(),
            Self::Coupling => out.training.ot = second.training.ot,
            Self::TimeSampling => {
                out.training.logit_normal = second.training.logit_normal;
                out.training.ln_mean = second.training.ln_mean;
                out.training.ln_std = second.training.ln_std;
            }
            Self::Solver => {
                out.sampling.solver = second.sampling.solver;
                out.sampling.steps = second.sampling.steps;
                out.sampling.rescale_t = second.sampling.rescale_t;
            }
        }
        out
    }

    /// What a run with `settings` does, in the compared respect ("VP (cosine)", "OT coupling",
    /// "rk4 × 6 (NFE 24)").
    pub(crate) fn describe(self, settings: &Settings) -> String {
        match self {
            Self::Path => settings.training.path.label(),
            Self::Coupling => if settings.training.ot {
                "OT coupling"
            } else {
                "independent pairs"
            }
            .to_string(),
            Self::TimeSampling => {
                let t = &settings.training;
                if t.logit_normal {
                    format!("t logit-normal({}, {})", t.ln_mean, t.ln_std)
                } else {
                    "t uniform".to_string()
                }
            }
            Self::Solver => {
                let s = &settings.sampling;
                format!(
                    "{} × {} (NFE {})",
                    s.solver.name(),
                    s.steps,
                    s.steps * s.solver.evals_per_step()
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_run_differs_in_its_one_thing_and_follows_the_rest() {
        let first = Settings::default();
        for kind in Comparison::ALL {
            let second = kind.preset(&first);
            assert_ne!(second, first, "{kind:?} changes something");
            assert_ne!(kind.describe(&second), kind.describe(&first), "{kind:?}");
            // The first run moves on: the second follows, keeping its own thing.
            let mut moved = first.clone();
            moved.data.seed = 9;
            moved.optim.lr = 1e-3;
            let followed = kind.follow(&moved, &second);
            assert_eq!(followed.data.seed, 9);
            assert!((followed.optim.lr - 1e-3).abs() < 1e-9);
            assert_eq!(kind.describe(&followed), kind.describe(&second));
            assert_eq!(kind.follow(&followed, &followed), followed, "a fixed point");
        }
        // Another solver keeps the model: only sampling differs.
        let solver = Comparison::Solver.preset(&first);
        assert_eq!(solver.data, first.data);
        assert_eq!(solver.model, first.model);
        assert_eq!(solver.training, first.training);
        assert_eq!(solver.sampling.solver, Solver::Rk4);
        assert_eq!(
            solver.sampling.steps, 6,
            "Euler × 25 against RK4 × 6: NFE 25 and 24"
        );
    }
}
