//! ODE samplers (QR §5): Euler, Heun and RK4 on a `linspace` time grid, optionally warped by
//! TRELLIS's `rescale_t`, with trajectories, predicted endpoints x̂ and per-stage velocities.
//!
//! The samplers integrate `dx/dt = v(t, x)` in the Quick Reference's convention (t from 0 at the
//! source to 1 at the data). [`trellis_euler_sample`] is TRELLIS's sampler verbatim, in its own
//! convention (t from 1 at the noise to 0 at the data); the two agree under `t ↦ 1 − t`,
//! `v ↦ −v` (tested).

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::mlp::{Mlp, Prepared, Workspace};
use crate::par;
use crate::path::Path;

/// A velocity field `v(t, x)` evaluated for many particles at one time.
pub trait VelocityField: Sync {
    /// Writes `v(t, x[i])` to `out[i]`; `labels` are the particles' classes for a conditional
    /// field (ignored by an unconditional one).
    fn velocity(&self, t: f32, x: &[[f32; 2]], labels: Option<&[u32]>, out: &mut [[f32; 2]]);
}

/// An ODE solver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Solver {
    /// First order, 1 evaluation per step.
    Euler,
    /// Second order (improved Euler), 2 evaluations per step.
    Heun,
    /// Classical fourth-order Runge–Kutta, 4 evaluations per step.
    Rk4,
}

impl Solver {
    /// Every solver.
    pub const ALL: [Self; 3] = [Self::Euler, Self::Heun, Self::Rk4];

    /// The solver's Butcher tableau: the one definition of its stages, used by the CPU
    /// [`Stepper`], the GPU sampler's stage builder and the likelihood integrator.
    pub fn tableau(self) -> &'static Tableau {
        match self {
            Self::Euler => &EULER,
            Self::Heun => &HEUN,
            Self::Rk4 => &RK4,
        }
    }

    /// Velocity evaluations per step.
    pub fn evals_per_step(self) -> usize {
        self.tableau().stages.len()
    }

    /// The order of accuracy.
    pub fn order(self) -> usize {
        self.tableau().order
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Euler => "euler",
            Self::Heun => "heun",
            Self::Rk4 => "rk4",
        }
    }
}

/// Where in a step a stage evaluates the field: at its start, its end, or a fraction between.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Node {
    /// t₀.
    Start,
    /// t₀ + c·(t₁ − t₀) for 0 < c < 1.
    Fraction(f32),
    /// t₁ itself (not t₀ + (t₁ − t₀), which rounds differently).
    End,
}

impl Node {
    /// The stage's time in the step from `t0` to `t1`.
    pub fn time(self, t0: f32, t1: f32) -> f32 {
        match self {
            Self::Start => t0,
            Self::Fraction(c) => t0 + c * (t1 - t0),
            Self::End => t1,
        }
    }
}

/// One stage of an explicit Runge–Kutta step: it evaluates `k_i = v(node(t₀, t₁), x + a_i·Δt·k_{i−1})`
/// (the first stage at x itself) and adds `weight_i·k_i` to the step's sum.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TableauStage {
    /// Where the stage evaluates the field.
    pub node: Node,
    /// a_i: the probe is `x + a_i·Δt·k_{i−1}` (0 for the first stage, which probes x).
    pub probe: f32,
    /// The stage's weight in the sum `Σ weight_i·k_i`.
    pub weight: f32,
}

/// An explicit Runge–Kutta method whose stage i uses only k_{i−1} (QR §5's three solvers are of
/// this kind): `x ← x + (Δt / divisor)·Σ weight_i·k_i`. The weights are small integers and the
/// divisor their sum, so that the update rounds exactly as QR §5 writes it (`dt/6·(k₁ + 2k₂ + 2k₃
/// + k₄)`, not `(1/6)·dt·…`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tableau {
    /// The stages, in order.
    pub stages: &'static [TableauStage],
    /// The sum of the weights, by which Δt is divided.
    pub divisor: f32,
    /// The order of accuracy.
    pub order: usize,
}

impl Tableau {
    /// The step's multiplier of `Σ weight_i·k_i`: `Δt / divisor`.
    pub fn step_scale(&self, dt: f32) -> f32 {
        dt / self.divisor
    }
}

const fn stage(node: Node, probe: f32, weight: f32) -> TableauStage {
    TableauStage {
        node,
        probe,
        weight,
    }
}

/// Euler: `x ← x + Δt·v(t₀, x)`.
const EULER: Tableau = Tableau {
    stages: &[stage(Node::Start, 0.0, 1.0)],
    divisor: 1.0,
    order: 1,
};

/// Heun (improved Euler): `k₂ = v(t₁, x + Δt·k₁)`, `x ← x + Δt/2·(k₁ + k₂)`.
const HEUN: Tableau = Tableau {
    stages: &[stage(Node::Start, 0.0, 1.0), stage(Node::End, 1.0, 1.0)],
    divisor: 2.0,
    order: 2,
};

/// Classical RK4: midpoints probed along k₁ and k₂, the end along k₃,
/// `x ← x + Δt/6·(k₁ + 2k₂ + 2k₃ + k₄)`.
const RK4: Tableau = Tableau {
    stages: &[
        stage(Node::Start, 0.0, 1.0),
        stage(Node::Fraction(0.5), 0.5, 2.0),
        stage(Node::Fraction(0.5), 0.5, 2.0),
        stage(Node::End, 1.0, 1.0),
    ],
    divisor: 6.0,
    order: 4,
};

impl fmt::Display for Solver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Solver {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "euler" => Ok(Self::Euler),
            "heun" => Ok(Self::Heun),
            "rk4" => Ok(Self::Rk4),
            _ => Err(Error::config(format!(
                "unknown solver '{s}'; choose euler, heun or rk4"
            ))),
        }
    }
}

/// How to integrate.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplerConfig {
    /// The solver.
    pub solver: Solver,
    /// Number of steps (each of `solver.evals_per_step()` evaluations).
    pub steps: usize,
    /// TRELLIS's time shift r: the grid `τ ↦ r·τ/(1 + (r−1)·τ)` in TRELLIS time τ = 1 − t. 1 leaves
    /// the grid uniform; r > 1 spends more steps near the noise.
    pub rescale_t: f32,
}

impl SamplerConfig {
    /// A uniform grid with `steps` steps of `solver`.
    pub fn new(solver: Solver, steps: usize) -> Self {
        Self {
            solver,
            steps,
            rescale_t: 1.0,
        }
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<(), Error> {
        if self.steps == 0 || self.steps > 100_000 {
            return Err(Error::config(format!(
                "steps must be between 1 and 100000, got {}",
                self.steps
            )));
        }
        if !(self.rescale_t > 0.0 && self.rescale_t.is_finite()) {
            return Err(Error::config(format!(
                "rescale-t must be positive, got {}",
                self.rescale_t
            )));
        }
        Ok(())
    }

    /// Velocity evaluations per particle for one run (NFE).
    pub fn nfe(&self) -> usize {
        self.steps * self.solver.evals_per_step()
    }
}

/// TRELLIS's time shift in its own time τ: `r·τ / (1 + (r − 1)·τ)`.
pub fn rescale_trellis_time(tau: f64, rescale_t: f64) -> f64 {
    rescale_t * tau / (1.0 + (rescale_t - 1.0) * tau)
}

/// The time grid from 0 to 1 (QR convention) with `steps + 1` nodes: `linspace(0, 1, steps + 1)`
/// mapped through the TRELLIS shift (applied in τ = 1 − t).
pub fn time_grid(steps: usize, rescale_t: f32) -> Vec<f32> {
    let r = f64::from(rescale_t);
    (0..=steps)
        .map(|i| {
            let t = i as f64 / steps as f64;
            #[allow(
                clippy::float_cmp,
                reason = "exactly 1 means no shift: keep linspace's values"
            )]
            let unshifted = r == 1.0;
            if unshifted {
                t as f32
            } else {
                (1.0 - rescale_trellis_time(1.0 - t, r)) as f32
            }
        })
        .collect()
}

/// What to record while integrating.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// Positions at every grid node.
    pub positions: bool,
    /// The predicted data point x̂₁ at the start of every step.
    pub endpoints: bool,
    /// The velocity at every grid node (the last one costs one more evaluation).
    pub velocities: bool,
}

impl Record {
    /// Nothing.
    pub const NONE: Self = Self {
        positions: false,
        endpoints: false,
        velocities: false,
    };
    /// Everything.
    pub const ALL: Self = Self {
        positions: true,
        endpoints: true,
        velocities: true,
    };
}

/// Recorded paths, particle-major: the value for particle `i` at frame `f` is at
/// `i · frames + f`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trajectories {
    /// The time grid (`steps + 1` nodes).
    pub times: Vec<f32>,
    /// Positions at the nodes (`n × (steps + 1)`), if recorded.
    pub positions: Vec<[f32; 2]>,
    /// x̂₁ at the start of each step (`n × steps`), if recorded.
    pub endpoints: Vec<[f32; 2]>,
    /// Velocities at the nodes (`n × (steps + 1)`), if recorded.
    pub velocities: Vec<[f32; 2]>,
}

impl Trajectories {
    /// Number of grid nodes.
    pub fn frames(&self) -> usize {
        self.times.len()
    }

    /// The recorded positions of particle `i`.
    pub fn positions_of(&self, i: usize) -> &[[f32; 2]] {
        let f = self.frames();
        &self.positions[i * f..(i + 1) * f]
    }

    /// The recorded x̂₁ of particle `i`, one per step.
    pub fn endpoints_of(&self, i: usize) -> &[[f32; 2]] {
        let f = self.frames() - 1;
        &self.endpoints[i * f..(i + 1) * f]
    }

    /// The recorded velocities of particle `i`.
    pub fn velocities_of(&self, i: usize) -> &[[f32; 2]] {
        let f = self.frames();
        &self.velocities[i * f..(i + 1) * f]
    }
}

/// The result of [`sample`].
#[derive(Clone, Debug, Default)]
pub struct SampleOutput {
    /// Final positions.
    pub x: Vec<[f32; 2]>,
    /// What was recorded.
    pub trajectories: Trajectories,
    /// Velocity evaluations per particle.
    pub nfe: usize,
}

/// Scratch and stage velocities of one solver step for a chunk of particles. After
/// [`Stepper::step`], [`Stepper::stages`] holds k₁…k_s, for step-by-step views.
#[derive(Clone, Debug, Default)]
pub struct Stepper {
    k: [Vec<[f32; 2]>; 4],
    probe: Vec<[f32; 2]>,
    stages: usize,
}

impl Stepper {
    /// A stepper for `n` particles.
    pub fn new(n: usize) -> Self {
        let v = vec![[0.0; 2]; n];
        Self {
            k: [v.clone(), v.clone(), v.clone(), v.clone()],
            probe: v,
            stages: 0,
        }
    }

    /// The stage velocities of the last step (k₁ is the velocity at its start).
    pub fn stages(&self) -> &[Vec<[f32; 2]>] {
        &self.k[..self.stages]
    }

    /// Advances `x` from `t0` to `t1` with `solver`, exactly as QR §5's samplers do: the
    /// stages of [`Solver::tableau`], then `x ← x + Δt/divisor·Σ weight_i·k_i`.
    pub fn step(
        &mut self,
        field: &impl VelocityField,
        solver: Solver,
        t0: f32,
        t1: f32,
        x: &mut [[f32; 2]],
        labels: Option<&[u32]>,
    ) {
        let n = x.len();
        assert!(self.probe.len() >= n, "stepper sized for fewer particles");
        let dt = t1 - t0;
        let tableau = solver.tableau();
        let probe = &mut self.probe[..n];
        for (i, stage) in tableau.stages.iter().enumerate() {
            let t = stage.node.time(t0, t1);
            let (before, rest) = self.k.split_at_mut(i);
            let k = &mut rest[0][..n];
            match before.last() {
                None => field.velocity(t, x, labels, k),
                Some(previous) => {
                    let h = stage.probe * dt;
                    for ((p, xi), kp) in probe.iter_mut().zip(x.iter()).zip(&previous[..n]) {
                        *p = [xi[0] + h * kp[0], xi[1] + h * kp[1]];
                    }
                    field.velocity(t, probe, labels, k);
                }
            }
        }
        let stages = tableau.stages.len();
        let scale = tableau.step_scale(dt);
        for (i, xi) in x.iter_mut().enumerate() {
            for d in 0..2 {
                let mut sum = tableau.stages[0].weight * self.k[0][i][d];
                for (stage, k) in tableau.stages.iter().zip(&self.k).skip(1) {
                    sum += stage.weight * k[i][d];
                }
                xi[d] += scale * sum;
            }
        }
        self.stages = stages;
    }
}

/// One stage of one particle's step, for the step-by-step view: where it evaluated the field,
/// at what time, and the velocity it found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StageSample {
    /// The stage's time.
    pub t: f32,
    /// The point it evaluated the field at (x for the first stage, else `x + a_i·Δt·k_{i−1}`).
    pub point: [f32; 2],
    /// k_i.
    pub velocity: [f32; 2],
}

/// One particle's solver step taken apart: every stage, and where the step lands.
#[derive(Clone, Debug, PartialEq)]
pub struct StepParts {
    /// Where the step starts.
    pub x: [f32; 2],
    /// Start time.
    pub t0: f32,
    /// End time.
    pub t1: f32,
    /// Each stage, in order.
    pub stages: Vec<StageSample>,
    /// `x + Δt/divisor·Σ weight_i·k_i`.
    pub next: [f32; 2],
}

/// Takes one particle's step from `t0` to `t1` with `solver` apart (the same arithmetic as
/// [`Stepper::step`]).
pub fn step_parts(
    field: &impl VelocityField,
    solver: Solver,
    t0: f32,
    t1: f32,
    x: [f32; 2],
    label: Option<u32>,
) -> StepParts {
    let mut stepper = Stepper::new(1);
    let mut probe_x = [x];
    let labels = label.map(|l| [l]);
    stepper.step(
        field,
        solver,
        t0,
        t1,
        &mut probe_x,
        labels.as_ref().map(|l| &l[..]),
    );
    let tableau = solver.tableau();
    let dt = t1 - t0;
    let stages = tableau
        .stages
        .iter()
        .zip(stepper.stages())
        .enumerate()
        .map(|(i, (stage, k))| {
            let point = if i == 0 {
                x
            } else {
                let previous = stepper.stages()[i - 1][0];
                let h = stage.probe * dt;
                [x[0] + h * previous[0], x[1] + h * previous[1]]
            };
            StageSample {
                t: stage.node.time(t0, t1),
                point,
                velocity: k[0],
            }
        })
        .collect();
    StepParts {
        x,
        t0,
        t1,
        stages,
        next: probe_x[0],
    }
}

/// Particles integrated together: large enough for efficient matrix products, small enough to
/// spread over threads.
const CHUNK: usize = 1024;

/// Integrates every particle of `x0` (already scaled to the prior) from t = 0 to t = 1 with
/// `config`, recording what `record` asks for. `path` gives the endpoint prediction x̂₁ (needed
/// only when recording endpoints). Particles are independent, so chunks run in parallel.
pub fn sample(
    field: &impl VelocityField,
    path: &Path,
    config: &SamplerConfig,
    x0: &[[f32; 2]],
    labels: Option<&[u32]>,
    record: Record,
) -> SampleOutput {
    let times = time_grid(config.steps, config.rescale_t);
    let frames = times.len();
    let n = x0.len();
    let mut x = x0.to_vec();
    let mut traj = Trajectories {
        times: times.clone(),
        positions: vec![[0.0; 2]; if record.positions { n * frames } else { 0 }],
        endpoints: vec![
            [0.0; 2];
            if record.endpoints {
                n * (frames - 1)
            } else {
                0
            }
        ],
        velocities: vec![[0.0; 2]; if record.velocities { n * frames } else { 0 }],
    };

    struct Job<'a> {
        x: &'a mut [[f32; 2]],
        labels: Option<&'a [u32]>,
        positions: &'a mut [[f32; 2]],
        endpoints: &'a mut [[f32; 2]],
        velocities: &'a mut [[f32; 2]],
    }
    let mut jobs = Vec::new();
    {
        let mut x_rest = x.as_mut_slice();
        let mut p_rest = traj.positions.as_mut_slice();
        let mut e_rest = traj.endpoints.as_mut_slice();
        let mut v_rest = traj.velocities.as_mut_slice();
        let mut start = 0;
        while start < n {
            let len = CHUNK.min(n - start);
            jobs.push(Job {
                x: par::take_front(&mut x_rest, len),
                labels: labels.map(|l| &l[start..start + len]),
                positions: par::take_front(&mut p_rest, len * frames),
                endpoints: par::take_front(&mut e_rest, len * (frames - 1)),
                velocities: par::take_front(&mut v_rest, len * frames),
            });
            start += len;
        }
    }

    par::for_each_mut(&mut jobs, |job| {
        let m = job.x.len();
        let mut stepper = Stepper::new(m);
        let mut last_v = vec![[0.0; 2]; m];
        let store = |buf: &mut [[f32; 2]], per: usize, frame: usize, values: &[[f32; 2]]| {
            if !buf.is_empty() {
                for (i, v) in values.iter().enumerate() {
                    buf[i * per + frame] = *v;
                }
            }
        };
        for (step, pair) in times.windows(2).enumerate() {
            store(job.positions, frames, step, job.x);
            let start_x = if record.endpoints {
                job.x.to_vec()
            } else {
                Vec::new()
            };
            stepper.step(field, config.solver, pair[0], pair[1], job.x, job.labels);
            let k1 = &stepper.stages()[0];
            store(job.velocities, frames, step, k1);
            if record.endpoints {
                let c = path.coefficients(pair[0]);
                for (i, (xs, v)) in start_x.iter().zip(k1).enumerate() {
                    job.endpoints[i * (frames - 1) + step] = c.predicted_data(*xs, *v);
                }
            }
        }
        store(job.positions, frames, frames - 1, job.x);
        if record.velocities {
            field.velocity(times[frames - 1], job.x, job.labels, &mut last_v);
            store(job.velocities, frames, frames - 1, &last_v);
        }
    });

    let nfe = config.nfe() + usize::from(record.velocities);
    SampleOutput {
        x,
        trajectories: traj,
        nfe,
    }
}

/// The trained network as a velocity field: `v = skip·x + out·F(t, in·x)` with the path's
/// preconditioning, evaluated with raw or EMA parameters.
pub struct MlpField<'a> {
    mlp: &'a Mlp,
    params: &'a [f32],
    prepared: Prepared,
    path: Path,
    scratch: Mutex<Vec<FieldScratch>>,
}

#[derive(Default)]
struct FieldScratch {
    ws: Workspace,
    t: Vec<f32>,
    x_in: Vec<[f32; 2]>,
}

impl<'a> MlpField<'a> {
    /// The field of `mlp` with `params` on `path`.
    pub fn new(mlp: &'a Mlp, params: &'a [f32], path: Path) -> Self {
        let mut prepared = Prepared::default();
        mlp.prepare(params, &mut prepared);
        Self {
            mlp,
            params,
            prepared,
            path,
            scratch: Mutex::new(Vec::new()),
        }
    }
}

impl VelocityField for MlpField<'_> {
    fn velocity(&self, t: f32, x: &[[f32; 2]], labels: Option<&[u32]>, out: &mut [[f32; 2]]) {
        let mut scratch = self
            .scratch
            .lock()
            .map(|mut pool| pool.pop())
            .ok()
            .flatten()
            .unwrap_or_default();
        let n = x.len();
        let pre = self.path.preconditioning(t);
        scratch.t.clear();
        scratch.t.resize(n, t);
        // An unconditional network ignores labels; a conditional one asked without labels gets
        // the null label (its unconditional head).
        let null_labels;
        let labels = match (self.mlp.config().is_conditional(), labels) {
            (false, _) => None,
            (true, Some(labels)) => Some(labels),
            (true, None) => {
                null_labels = vec![self.mlp.config().null_label(); n];
                Some(null_labels.as_slice())
            }
        };
        let FieldScratch { ws, t: ts, x_in } = &mut scratch;
        let network_x = if pre.is_identity() {
            x
        } else {
            x_in.clear();
            x_in.extend(x.iter().map(|p| [pre.input * p[0], pre.input * p[1]]));
            x_in.as_slice()
        };
        self.mlp
            .infer(self.params, &self.prepared, ts, network_x, labels, ws, out);
        if !pre.is_identity() {
            for (o, p) in out.iter_mut().zip(x) {
                *o = pre.velocity(*p, *o);
            }
        }
        if let Ok(mut pool) = self.scratch.lock() {
            pool.push(scratch);
        }
    }
}

/// Classifier-free guidance (QR §7.2): `v = v(∅) + s·(v(c) − v(∅))` around a conditional field.
pub struct GuidedField<'a, F: VelocityField> {
    inner: &'a F,
    scale: f32,
    null_label: u32,
}

impl<'a, F: VelocityField> GuidedField<'a, F> {
    /// Guidance with scale `scale` (1 is plain conditional sampling, 0 unconditional).
    pub fn new(inner: &'a F, scale: f32, null_label: u32) -> Self {
        Self {
            inner,
            scale,
            null_label,
        }
    }

    /// The conditional field it guides.
    pub fn inner(&self) -> &'a F {
        self.inner
    }

    /// The guidance scale.
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// The null label (∅).
    pub fn null_label(&self) -> u32 {
        self.null_label
    }
}

impl<F: VelocityField> VelocityField for GuidedField<'_, F> {
    fn velocity(&self, t: f32, x: &[[f32; 2]], labels: Option<&[u32]>, out: &mut [[f32; 2]]) {
        let n = x.len();
        let null = || vec![self.null_label; n];
        let Some(labels) = labels else {
            self.inner.velocity(t, x, Some(&null()), out);
            return;
        };
        if (self.scale - 1.0).abs() < f32::EPSILON {
            self.inner.velocity(t, x, Some(labels), out);
            return;
        }
        let null = null();
        let mut unconditional = vec![[0.0; 2]; n];
        self.inner.velocity(t, x, Some(&null), &mut unconditional);
        self.inner.velocity(t, x, Some(labels), out);
        for (o, u) in out.iter_mut().zip(&unconditional) {
            o[0] = u[0] + self.scale * (o[0] - u[0]);
            o[1] = u[1] + self.scale * (o[1] - u[1]);
        }
    }
}

/// The output of [`trellis_euler_sample`], named as in TRELLIS.
#[derive(Clone, Debug, Default)]
pub struct TrellisOutput {
    /// The (shifted) time sequence, from 1 to 0.
    pub t_seq: Vec<f64>,
    /// Final samples.
    pub samples: Vec<[f32; 2]>,
    /// x after each step.
    pub pred_x_t: Vec<Vec<[f32; 2]>>,
    /// The predicted clean sample at each step.
    pub pred_x_0: Vec<Vec<[f32; 2]>>,
}

/// TRELLIS's flow Euler sampler, in TRELLIS's convention: t runs from 1 (noise) to 0 (data),
/// `t_seq = r·t/(1 + (r−1)·t)` on `linspace(1, 0, steps + 1)`, `x_prev = x_t − (t − t_prev)·v`,
/// `x̂₀ = (1 − σ_min)·x_t − (σ_min + (1 − σ_min)·t)·v`. The field is called with TRELLIS time t (a
/// model trained TRELLIS's way multiplies it by 1000 itself, see `MlpConfig::t_scale`).
pub fn trellis_euler_sample(
    field: &impl VelocityField,
    noise: &[[f32; 2]],
    labels: Option<&[u32]>,
    steps: usize,
    rescale_t: f64,
    sigma_min: f32,
) -> TrellisOutput {
    let t_seq: Vec<f64> = (0..=steps)
        .map(|i| {
            let t = 1.0 - i as f64 / steps as f64;
            rescale_trellis_time(t, rescale_t)
        })
        .collect();
    let mut sample = noise.to_vec();
    let mut v = vec![[0.0; 2]; noise.len()];
    let mut out = TrellisOutput {
        t_seq: t_seq.clone(),
        ..TrellisOutput::default()
    };
    for pair in t_seq.windows(2) {
        let (t, t_prev) = (pair[0] as f32, pair[1] as f32);
        field.velocity(t, &sample, labels, &mut v);
        let mut x0 = Vec::with_capacity(sample.len());
        for (x, vi) in sample.iter_mut().zip(&v) {
            let noise_weight = sigma_min + (1.0 - sigma_min) * t;
            x0.push([
                (1.0 - sigma_min) * x[0] - noise_weight * vi[0],
                (1.0 - sigma_min) * x[1] - noise_weight * vi[1],
            ]);
            x[0] -= (t - t_prev) * vi[0];
            x[1] -= (t - t_prev) * vi[1];
        }
        out.pred_x_t.push(sample.clone());
        out.pred_x_0.push(x0);
    }
    out.samples = sample;
    out
}

/// `particle,step,t,x,y,x_hat,y_hat`: one row per particle and grid node; x̂ is the data point
/// the velocity at that node predicts (at the last node, the sample itself; the position where
/// endpoints were not recorded). The CLI's `sample --trajectories` and the app's export.
pub fn trajectories_to_csv(traj: &Trajectories) -> String {
    use std::fmt::Write as _;
    let frames = traj.frames();
    let n = traj.positions.len() / frames.max(1);
    let mut out = String::with_capacity(n * frames * 48 + 32);
    out.push_str("particle,step,t,x,y,x_hat,y_hat\n");
    for i in 0..n {
        let positions = traj.positions_of(i);
        let endpoints = traj.endpoints_of(i);
        for (f, p) in positions.iter().enumerate() {
            let e = endpoints.get(f).unwrap_or(p);
            let _ = writeln!(
                out,
                "{i},{f},{},{},{},{},{}",
                traj.times[f], p[0], p[1], e[0], e[1]
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixtures' analytic field `v(t, x) = [sin(3t) − 0.5·x₁, cos(2·x₀) + t·x₁]`.
    pub(crate) struct Analytic;

    impl VelocityField for Analytic {
        fn velocity(&self, t: f32, x: &[[f32; 2]], _: Option<&[u32]>, out: &mut [[f32; 2]]) {
            for (o, p) in out.iter_mut().zip(x) {
                *o = [(3.0 * t).sin() - 0.5 * p[1], (2.0 * p[0]).cos() + t * p[1]];
            }
        }
    }

    /// The same field in TRELLIS's convention: `v_τ(τ, x) = −v(1 − τ, x)`.
    struct Reversed<'a, F>(&'a F);

    impl<F: VelocityField> VelocityField for Reversed<'_, F> {
        fn velocity(&self, t: f32, x: &[[f32; 2]], l: Option<&[u32]>, out: &mut [[f32; 2]]) {
            self.0.velocity(1.0 - t, x, l, out);
            for o in out.iter_mut() {
                *o = [-o[0], -o[1]];
            }
        }
    }

    #[test]
    fn grid_is_linspace_and_rescale_matches_trellis() {
        let g = time_grid(4, 1.0);
        assert_eq!(g, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        let g = time_grid(4, 3.0);
        // TRELLIS: t_seq = 3τ/(1 + 2τ) on τ = 1, .75, .5, .25, 0 → 1, .9, .75, .5, 0.
        let expected = [0.0, 0.1, 0.25, 0.5, 1.0];
        for (a, b) in g.iter().zip(expected) {
            assert!((a - b).abs() < 1e-6, "{g:?}");
        }
    }

    #[test]
    fn trellis_and_quick_reference_conventions_agree() {
        let x0: Vec<[f32; 2]> = vec![[0.3, -0.4], [1.2, 0.8], [-2.0, 0.1]];
        let sigma_min = 1e-5;
        for (steps, rescale) in [(4, 1.0), (4, 3.0), (10, 0.5), (25, 2.0)] {
            let trellis =
                trellis_euler_sample(&Reversed(&Analytic), &x0, None, steps, rescale, sigma_min);
            let mut config = SamplerConfig::new(Solver::Euler, steps);
            config.rescale_t = rescale as f32;
            let path = Path::RectifiedFlow { sigma_min };
            let ours = sample(&Analytic, &path, &config, &x0, None, Record::ALL);
            for (a, b) in ours.x.iter().zip(&trellis.samples) {
                assert!((a[0] - b[0]).abs() < 1e-5 && (a[1] - b[1]).abs() < 1e-5);
            }
            // TRELLIS's x̂₀ (its data end) is our x̂₁ from the same step.
            for i in 0..x0.len() {
                for (step, pred) in trellis.pred_x_0.iter().enumerate() {
                    let a = ours.trajectories.endpoints_of(i)[step];
                    let b = pred[i];
                    assert!(
                        (a[0] - b[0]).abs() < 1e-4 && (a[1] - b[1]).abs() < 1e-4,
                        "step {step}: {a:?} vs {b:?}"
                    );
                }
            }
        }
    }

    #[test]
    #[allow(clippy::float_cmp, reason = "recording must not change a single bit")]
    fn recording_shapes() {
        let x0 = vec![[0.1, 0.2]; 5];
        let config = SamplerConfig::new(Solver::Rk4, 3);
        let out = sample(&Analytic, &Path::VpCosine, &config, &x0, None, Record::ALL);
        assert_eq!(out.nfe, 13);
        assert_eq!(out.trajectories.positions.len(), 5 * 4);
        assert_eq!(out.trajectories.endpoints.len(), 5 * 3);
        assert_eq!(out.trajectories.positions_of(2)[0], [0.1, 0.2]);
        assert_eq!(out.trajectories.positions_of(2)[3], out.x[2]);
        let plain = sample(&Analytic, &Path::VpCosine, &config, &x0, None, Record::NONE);
        assert_eq!(plain.x, out.x);
        assert_eq!(plain.nfe, 12);
    }

    #[test]
    #[allow(clippy::float_cmp, reason = "chunking must not change a single bit")]
    fn many_particles_split_into_chunks_like_one() {
        let x0: Vec<[f32; 2]> = (0..2500)
            .map(|i| [i as f32 * 1e-3, -(i as f32) * 2e-3])
            .collect();
        let config = SamplerConfig::new(Solver::Heun, 7);
        let all = sample(
            &Analytic,
            &Path::RECTIFIED_FLOW,
            &config,
            &x0,
            None,
            Record::NONE,
        );
        let one = sample(
            &Analytic,
            &Path::RECTIFIED_FLOW,
            &config,
            &x0[1234..1235],
            None,
            Record::NONE,
        );
        assert_eq!(all.x[1234], one.x[0]);
    }
}
