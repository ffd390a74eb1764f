//! The lessons: a sequence through the Flow Matching Quick Reference (QR), each one a setting
//! of the playground (in the address's form, so `#lesson=N` opens it and a teacher can hand out
//! links), what to look at, the formula, one change for the learner to make and what should
//! happen then.

/// One lesson.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Lesson {
    /// The heading.
    pub(crate) title: &'static str,
    /// Where it is in the Quick Reference (or beyond it).
    pub(crate) cite: &'static str,
    /// The playground for it: settings in the address's form, on top of the defaults.
    pub(crate) setup: &'static str,
    /// What to look at.
    pub(crate) look: &'static str,
    /// The formula it is about.
    pub(crate) formula: &'static str,
    /// The one change to make.
    pub(crate) change: &'static str,
    /// That change as settings, where a button can make it (on top of the current settings).
    pub(crate) change_query: Option<&'static str>,
    /// What should happen then.
    pub(crate) expect: &'static str,
}

/// Every lesson, in order (`#lesson=1` is the first).
pub(crate) const LESSONS: [Lesson; 9] = [
    Lesson {
        title: "A probability path: from noise to data",
        cite: "QR §1, §3.1",
        setup: "dataset=moons&path=rectified-flow&solver=euler&steps=25\
                &layers=data,particles,trails&train=1",
        look: "Each particle starts as a draw x₀ from N(0, I) at t = 0 and follows the ODE \
               dx/dt = v_θ(t, x) to t = 1, where it should land on the data (the faint moons). \
               The trails are those paths. The network v_θ learns from pairs moved along the \
               path x_t below; while it trains, the particles are integrated again and again \
               with the newest weights, and you watch the flow take shape.",
        formula: "x_t = (1 − t)·x₀ + t·x₁      dx/dt = v_θ(t, x),   x(0) ~ N(0, I)",
        change: "Turn on the field layer: arrows of v_θ(t, ·) at the player's t.",
        change_query: Some("layers=data,particles,trails,field"),
        expect: "The arrows show where a particle at each place goes next. Drag the t slider: \
                 near t = 0 they carry the noise towards the moons as a whole, near t = 1 they \
                 move each particle onto the nearest part of the data.",
    },
    Lesson {
        title: "The conditional flow-matching loss",
        cite: "QR §2.2, §4.3",
        setup: "dataset=moons&path=rectified-flow&layers=data,pairs&train=1",
        look: "A training step draws pairs (x₀, x₁), one noise point and one data point, and a \
               time t for each (lesson 4 is about how), and regresses v_θ(t, x_t) on the pair's own velocity \
               u_t = x₁ − x₀. The pairs layer draws one batch's pairs. The loss falls but \
               never to 0: many pairs cross the same x_t with different u_t, and the best v_θ \
               is their average, which is also what the intractable marginal loss wants \
               (QR §2.3).",
        formula: "L(θ) = E_{t, x₀, x₁} ‖v_θ(t, x_t) − (x₁ − x₀)‖²",
        change: "Make the batch eight times larger, from 256 to 2048 pairs a step.",
        change_query: Some("batch=2048"),
        expect: "The loss curve gets smoother, since each step averages eight times as many \
                 pairs, but it levels out at the same height: the floor comes from pairs that \
                 cross, not from the batch.",
    },
    Lesson {
        title: "Three paths: rectified flow, VP-cosine, VE",
        cite: "QR §3",
        setup: "dataset=8gaussians&path=rectified-flow&layers=data,particles,trails&train=1",
        look: "The path decides how a pair is blended at time t, and so what velocity the \
               network must learn. Rectified flow moves on straight lines at constant speed. \
               VP-cosine moves on a quarter circle that keeps the variance at one for \
               unit-variance data. VE keeps the data and adds noise of scale σ(1 − t), so its \
               source N(0, σ_max²·I) is far wider than the data.",
        formula: "RF  x_t = (1 − t)·x₀ + t·x₁\n\
                  VP  x_t = cos(πt/2)·x₀ + sin(πt/2)·x₁\n\
                  VE  x_t = x₁ + σ(1 − t)·x₀,   σ(s) = σ_min^(1−s)·σ_max^s",
        change: "Switch the path to VP-cosine (the weights carry on).",
        change_query: Some("path=vp-cosine"),
        expect: "The loss jumps at the switch, which the plots mark, since the target u_t is \
                 now another function, and then falls again. The trails bend: the cosine path's \
                 pairs move on arcs, and the flow follows.",
    },
    Lesson {
        title: "Time sampling: where training spends its effort",
        cite: "QR §7.3",
        setup: "dataset=spirals&t=uniform&layers=data,particles,trails&train=1",
        look: "Every pair in a batch gets its own t. The histogram under the time-sampling \
               switch shows the t's drawn. Uniform t spends the same effort everywhere. Near \
               t = 0 and t = 1 the best velocity is easy to predict, while in the middle it \
               depends most on where x_t is, so SD3 draws t from a logit-normal that piles up \
               in the middle.",
        formula: "uniform  t ~ U[0, 1]        logit-normal  t = sigmoid(m + s·z),  z ~ N(0, 1)",
        change: "Switch to logit-normal t with m = 0, s = 1.",
        change_query: Some("t=logit-normal&m=0&s=1"),
        expect: "The histogram piles up around t = 0.5. The loss reads higher (it now averages \
                 the harder middle times, so it is not comparable across the switch), while W2 \
                 goes on falling. Try m = 1 next: more effort near the data.",
    },
    Lesson {
        title: "Solvers and NFE: what a sample costs",
        cite: "QR §5",
        setup: "dataset=moons&solver=euler&steps=4&layers=data,particles,trails,endpoints\
                &train=1",
        look: "Sampling integrates dx/dt = v_θ(t, x). Euler evaluates the network once a step, \
               Heun twice, RK4 four times: count the cost in network evaluations (NFE), not in \
               steps. With four Euler steps the particles cut the flow's corners; the \
               endpoints layer draws each step's prediction of where the particle will end. \
               Open the solver × NFE lab to see W2 against NFE for every solver at once.",
        formula: "Euler  x ← x + Δt·k₁\n\
                  Heun   x ← x + Δt·(k₁ + k₂)/2,   k₂ = v(t + Δt, x + Δt·k₁)\n\
                  RK4    x ← x + Δt·(k₁ + 2k₂ + 2k₃ + k₄)/6,   k₁ = v(t, x)",
        change: "One RK4 step instead of four Euler steps: the same 4 evaluations.",
        change_query: Some("solver=rk4&steps=1"),
        expect: "The cost is the same, the result is not: compare the particles and W2. Which \
                 solver wins at a given NFE depends on how curved the flow is; the lab's \
                 curves show it for NFE 1 to 64.",
    },
    Lesson {
        title: "Reflow: straightening the flow",
        cite: "QR §7.1",
        setup: "dataset=moons&solver=euler&steps=25&layers=data,particles,trails&train=1",
        look: "Independent pairs cross, and where they cross the network learns their average \
               direction, so the learned paths bend. Reflow takes the model's own pairs \
               (x₀, ODE(x₀)), which never cross, and trains the next round on them: the paths \
               straighten, and fewer steps suffice. The 'deviation from straight' plot \
               measures how far the paths are from straight lines (0: straight).",
        formula: "round k + 1 trains on (x₀, x₁ = ODE_k(x₀)):\n\
                  L = E ‖v(t, (1 − t)·x₀ + t·x₁) − (x₁ − x₀)‖²",
        change: "Let it train for a while, then press 'Reflow to round 1' in the Reflow section \
                 and turn on its 1-step view.",
        change_query: None,
        expect: "After the round the deviation from straight drops, and one Euler step lands far \
                 closer to the data than before: what makes few-step generation work.",
    },
    Lesson {
        title: "Minibatch optimal-transport coupling",
        cite: "beyond the QR: OT-CFM (Tong et al. 2023)",
        setup: "dataset=8gaussians&ot=0&layers=data,pairs,trails&train=1",
        look: "Independent coupling joins each noise point to a random data point: the pairs \
               layer's lines cross everywhere. Minibatch OT re-pairs each batch by an exact \
               optimal assignment that minimises the total squared distance, so pairs rarely \
               cross, and the flow is nearly straight from the first round, without reflow.",
        formula: "π* = argmin_π  Σ_i ‖x₀[i] − x₁[π(i)]‖²   over the batch's permutations π",
        change: "Turn on minibatch-OT coupling.",
        change_query: Some("ot=1"),
        expect: "The pairs stop crossing, the trails straighten and the deviation from straight \
                 falls. The loss drops to a lower level (the plot marks the switch: the loss is \
                 then on another scale), as the target is more predictable with fewer \
                 crossings.",
    },
    Lesson {
        title: "Classifier-free guidance",
        cite: "QR §7.2",
        setup: "dataset=8gaussians&classes=1&p_drop=0.1&class=3&cfg=1\
                &layers=data,particles,trails&train=1",
        look: "The network also sees a class label c, replaced by ∅ for 10 % of the training \
               pairs, so that one network learns both the class's field v(t, x, c) and the \
               unconditional one v(t, x, ∅). Guidance with weight w extrapolates from the \
               second towards the first. Here every particle asks for class 3.",
        formula: "v_w = v(t, x, ∅) + w·(v(t, x, c) − v(t, x, ∅))",
        change: "Raise the guidance w from 1 to 4.",
        change_query: Some("cfg=4"),
        expect: "The particles pack into the middle of class 3's cluster: guidance trades \
                 diversity for fidelity, and a large w overshoots into a tight dot. The field \
                 layer with 'field of class' 3 shows the guided field that does it.",
    },
    Lesson {
        title: "The TRELLIS conventions",
        cite: "TRELLIS's flow Euler sampler",
        setup: "dataset=moons&tscale=1000&rf_sigma_min=0.00001&rescale=3&solver=euler\
                &steps=25&layers=data,particles,trails,endpoints&train=1",
        look: "TRELLIS writes time the other way round: its t runs from 1 (noise) to 0 (data), \
               so its τ is 1 − t here. It feeds the network τ·1000, leaves σ_min = 1e-5 of \
               noise at the data end, and shifts its step grid with rescale_t. Every step it \
               predicts the clean sample from (x_t, v); here the endpoints layer draws that \
               prediction.",
        formula: "τ = 1 − t      τ′ = r·τ / (1 + (r − 1)·τ)\n\
                  x_t = (1 − (1 − σ_min)·t)·x₀ + t·x₁      pred = x_t + (1 − t)·v  (σ_min = 0)",
        change: "Set rescale_t back to 1 and step through the flow with the right arrow key.",
        change_query: Some("rescale=1"),
        expect: "With r = 1 the 25 steps are equal. With r = 3 most of them fall near the noise, \
                 where the flow turns most, and the last steps to the data are long: step \
                 through both and watch t advance.",
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    #[test]
    fn every_lesson_sets_a_playground_that_parses() {
        for (i, lesson) in LESSONS.iter().enumerate() {
            let (settings, actions) = Settings::default()
                .with_query(lesson.setup)
                .unwrap_or_else(|e| panic!("lesson {}: {e}", i + 1));
            assert_eq!(actions.train, Some(true), "lesson {} trains", i + 1);
            if let Some(change) = lesson.change_query {
                let (changed, _) = settings
                    .with_query(change)
                    .unwrap_or_else(|e| panic!("lesson {}'s change: {e}", i + 1));
                assert_ne!(
                    changed,
                    settings,
                    "lesson {}'s change changes something",
                    i + 1
                );
            }
            for text in [lesson.title, lesson.look, lesson.change, lesson.expect] {
                assert!(!text.contains("  "), "lesson {}: {text:?}", i + 1);
            }
        }
    }
}
