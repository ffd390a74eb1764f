//! The playground's state and frame loop.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use egui::{Color32, RichText, Ui};
use egui_plot::{Line, LineStyle, Plot, PlotPoint, PlotPoints, PlotUi, Text, VLine};
use flowplay_core::data::Dataset;
use flowplay_core::flow::SampleRequest;
use flowplay_core::sampler::{SamplerConfig, Solver};
use web_time::{Duration, Instant};

use crate::canvas::{self, Layers, View};
use crate::engine::{
    Backend, COMPARED, CURRENT, EVAL_POINTS, Engine, Evaluation, Flow, Snapshot, particle_record,
    particle_request,
};
use crate::settings::{Compute, POOL_SIZE, PathKind, Settings};
use crate::web::{self, Status};

/// How often the particles are re-integrated with the newest weights while training.
const FLOW_REFRESH: Duration = Duration::from_millis(400);
/// How often W2 against held-out data is measured while training, at most.
const EVAL_EVERY: Duration = Duration::from_secs(2);
/// An evaluation starts no sooner than this many times the last one's duration after it: on a
/// software GPU one can take seconds, and training keeps at least four fifths of the device.
const EVAL_PACE: f64 = 5.0;
/// Seconds for the particles to travel from t = 0 to t = 1 at speed 1.
const TRAVEL_SECS: f32 = 3.0;
/// Data points drawn.
const DATA_SHOWN: usize = 3000;
/// Steps averaged per point of the loss curve.
const LOSS_WINDOW: usize = 20;
/// Pairs in a reflow coupling, and the solver that generates them (accurate, QR §7.1).
const REFLOW_PAIRS: usize = 4096;
const REFLOW_SOLVER: Solver = Solver::Rk4;
const REFLOW_STEPS: usize = 16;

/// A finished reflow round, kept to compare it with later ones.
struct Round {
    snapshot: Snapshot,
    /// The last evaluation of its model.
    eval: Option<Evaluation>,
    /// Steps trained in it.
    steps: u64,
    /// The probability path it ended on: its network is drawn on that path only.
    path: RoundPath,
}

/// A probability path as the settings choose it (VE with its σ's).
#[derive(Clone, Copy, Debug, PartialEq)]
struct RoundPath(PathKind, [f32; 2]);

impl RoundPath {
    fn of(settings: &Settings) -> Self {
        let sigmas = if settings.path == PathKind::Ve {
            settings.ve_sigma
        } else {
            [0.0; 2]
        };
        Self(settings.path, sigmas)
    }

    fn label(self) -> String {
        match self.0 {
            PathKind::Ve => format!("VE {}–{}", self.1[0], self.1[1]),
            kind => kind.label().to_string(),
        }
    }
}

/// Where training changed course, marked on the plots at `step`.
#[derive(Clone, Debug, PartialEq)]
struct PlotMark {
    step: f64,
    label: String,
}

/// What an evaluation's plot says before its first point.
const EVAL_HINT: &str = "measured every few seconds while training";
/// The plots' colours.
const LOSS_COLOUR: Color32 = Color32::from_rgb(230, 110, 90);
const W2_COLOUR: Color32 = Color32::from_rgb(110, 170, 230);
const STRAIGHT_COLOUR: Color32 = Color32::from_rgb(150, 210, 120);

/// A rate for the status line: one decimal below 10 (a slow device's 0.4 steps/s is not 0).
fn rate(per_sec: f64) -> String {
    if per_sec < 9.95 {
        format!("{per_sec:.1}")
    } else {
        format!("{per_sec:.0}")
    }
}

/// Whether the particles are due for a refresh while training, `since` seconds after the last
/// one started, which took `took` seconds (`None`: still running). Refresh often, but keep
/// sampling within frames (the CPU, a software GPU) under a fifth of the time, and a real GPU's
/// (`slices`: a slice a frame) under half the frames. A refresh still running is never due: one
/// that outlasts [`FLOW_REFRESH`] is not followed by the next at once.
fn refresh_due(took: Option<f64>, since: f64, slices: bool) -> bool {
    let share = if slices { 2.0 } else { 5.0 };
    took.is_some_and(|took| since > FLOW_REFRESH.as_secs_f64().max(share * took))
}

/// egui's wgpu device, when it can run the compute kernels.
#[derive(Clone)]
struct GpuHandle {
    device: wgpu::Device,
    queue: wgpu::Queue,
    /// A software renderer (llvmpipe, SwiftShader): the CPU reference trains faster there.
    software: bool,
}

/// At most about 2000 points of a curve, evenly picked, for plotting every frame.
fn thin(points: &[[f64; 2]]) -> Vec<[f64; 2]> {
    let every = points.len().div_ceil(2000).max(1);
    points.iter().step_by(every).copied().collect()
}

/// A small histogram of 4000 training times drawn as the trainer draws them (QR §7.3).
fn time_histogram_ui(ui: &mut Ui, sampling: &flowplay_core::path::TimeSampling) {
    const BINS: usize = 40;
    const DRAWS: u32 = 4000;
    let key = flowplay_core::rng::key_from_seed(0x7157);
    let mut counts = [0_u32; BINS];
    for i in 0..DRAWS {
        let t = sampling.sample(flowplay_core::rng::threefry2x32(key, [i, 0]));
        counts[((t * BINS as f32) as usize).min(BINS - 1)] += 1;
    }
    let peak = counts.iter().copied().max().unwrap_or(1).max(1) as f32;
    let (rect, response) = ui.allocate_exact_size(
        egui::vec2(ui.available_width().min(220.0), 36.0),
        egui::Sense::hover(),
    );
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 2.0, ui.visuals().extreme_bg_color);
    let w = rect.width() / BINS as f32;
    for (b, &c) in counts.iter().enumerate() {
        let h = rect.height() * c as f32 / peak;
        let x = rect.left() + b as f32 * w;
        painter.rect_filled(
            egui::Rect::from_min_max(
                egui::pos2(x, rect.bottom() - h),
                egui::pos2(x + w - 1.0, rect.bottom()),
            ),
            0.0,
            Color32::from_rgb(120, 160, 210),
        );
    }
    response.on_hover_text("Training times t drawn from this distribution: 0 (noise) on the left, 1 (data) on the right.");
}

/// A rate over the last second: steps per second, frames per second.
#[derive(Default)]
struct RateMeter {
    samples: VecDeque<(Instant, f64)>,
}

impl RateMeter {
    /// Records the running total `count` now; returns the rate over the last second or so.
    fn record(&mut self, count: f64) -> f64 {
        let now = Instant::now();
        self.samples.push_back((now, count));
        while self.samples.len() > 2
            && now.duration_since(self.samples[0].0) > Duration::from_millis(1500)
        {
            self.samples.pop_front();
        }
        self.rate()
    }

    fn rate(&self) -> f64 {
        let (Some(first), Some(last)) = (self.samples.front(), self.samples.back()) else {
            return 0.0;
        };
        let secs = last.0.duration_since(first.0).as_secs_f64();
        if secs < 0.2 {
            return 0.0;
        }
        (last.1 - first.1) / secs
    }

    fn reset(&mut self) {
        self.samples.clear();
    }
}

/// The playground application.
pub struct PlaygroundApp {
    settings: Settings,
    engine: Engine,
    gpu: Option<GpuHandle>,
    adapter: String,
    /// Why there is no GPU compute, when there is none.
    no_gpu: Option<String>,
    /// The last error, in plain words.
    notice: Option<String>,
    /// Set while the particle count is clamped to the device's limits.
    limit_notice: Option<String>,
    /// Data points drawn, with their colours (by class for a conditional model).
    data_shown: Vec<([f32; 2], Color32)>,
    held_out: Vec<[f32; 2]>,
    view: View,
    fit: View,
    training: bool,
    flow_request: Option<SampleRequest>,
    /// The refresh under way (on the GPU, encoded a slice a frame).
    flow_pending: Option<SampleRequest>,
    flow_version: u64,
    flow_stale: bool,
    flow_at: Instant,
    /// Cleared while a GPU refresh is still running, so that refreshes never pile up.
    flow_done: Arc<AtomicBool>,
    /// How long the last refresh took (until the GPU finished it), once known.
    flow_secs: Option<f64>,
    time: f32,
    playing: bool,
    speed: f32,
    steps_rate: RateMeter,
    frame_rate: RateMeter,
    frames: u64,
    /// The last frame's duration.
    frame_secs: f32,
    steps_per_sec: f64,
    fps: f64,
    smoothed_loss: Vec<[f64; 2]>,
    w2: Vec<[f64; 2]>,
    straightness: Vec<[f64; 2]>,
    /// Where training changed course (a path switch, a reflow round), marked on the plots.
    marks: Vec<PlotMark>,
    last_eval: Option<Evaluation>,
    /// Finished rounds, oldest first.
    rounds: Vec<Round>,
    /// The step the current round began at.
    round_start: u64,
    /// The finished round drawn beside the current one, if any.
    compare: Option<usize>,
    /// Draw the particles after a single Euler step, to see how straight the flow is.
    one_step: bool,
    /// Settings that need a new model, held while a slider is being dragged.
    deferred: Option<Settings>,
    /// Whether a pointer button is down this frame.
    pointer_down: bool,
    /// The settings changed and the URL hash should follow (written once the pointer is up).
    hash_dirty: bool,
    eval_at: Instant,
    /// How long the last evaluation took, from its start to its result.
    eval_secs: Option<f64>,
    evaluated_step: Option<u64>,
    hash: Option<String>,
}

impl PlaygroundApp {
    /// Called once by eframe before the first frame: picks the GPU when egui's device can run
    /// compute shaders, else the CPU reference (with the reason shown), and applies the
    /// settings in the URL hash (on the web).
    pub fn new(cc: &eframe::CreationContext<'_>) -> Self {
        Self::with_query(cc, web::read_hash())
    }

    /// As [`Self::new`], with settings in the URL's form (`train=1&solver=heun&…`; the desktop
    /// binary takes them as its first argument). Settings that do not parse are explained and
    /// the defaults used.
    pub fn with_query(cc: &eframe::CreationContext<'_>, query: Option<String>) -> Self {
        Self::start(&cc.egui_ctx, cc.wgpu_render_state.as_ref(), query)
    }

    /// [`Self::with_query`] from egui's context and wgpu renderer (if any): what eframe hands
    /// over, or what the offscreen benchmark builds.
    pub(crate) fn start(
        ctx: &egui::Context,
        render_state: Option<&eframe::egui_wgpu::RenderState>,
        query: Option<String>,
    ) -> Self {
        // The canvas's colours are chosen for a dark background.
        ctx.set_theme(egui::ThemePreference::Dark);
        let (gpu, adapter, why_not) = match render_state {
            Some(rs) => {
                let info = rs.adapter.get_info();
                let name = if info.name.is_empty() {
                    // WebGPU keeps the adapter's name private.
                    format!("{:?} adapter", info.device_type)
                } else {
                    info.name.clone()
                };
                let adapter = format!("{name} ({:?})", info.backend);
                let compute = rs
                    .adapter
                    .get_downlevel_capabilities()
                    .flags
                    .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS);
                let limits = flowplay_gpu::check_compute_limits(&rs.device.limits());
                if compute && limits.is_ok() {
                    crate::paint::install(rs);
                    let gpu = GpuHandle {
                        device: rs.device.clone(),
                        queue: rs.queue.clone(),
                        software: info.device_type == wgpu::DeviceType::Cpu,
                    };
                    (Some(gpu), adapter, None)
                } else {
                    let why = limits.err().map_or_else(
                        || "it has no compute shaders".to_string(),
                        |e| e.to_string(),
                    );
                    (None, adapter, Some(why))
                }
            }
            None => (
                None,
                "none".to_string(),
                Some("no wgpu renderer".to_string()),
            ),
        };
        let no_gpu = why_not.map(|why| {
            let what = if cfg!(target_arch = "wasm32") {
                "This browser has no WebGPU compute"
            } else {
                "No GPU with compute shaders was found"
            };
            format!(
                "{what} ({adapter}: {why}), so training runs on the CPU reference instead: \
                 slower, with everything else the same."
            )
        });
        let mut settings = Settings::default();
        let mut notice = None;
        let mut train = false;
        let hash = web::read_hash();
        if let Some(query) = query.filter(|q| !q.is_empty()) {
            match settings.with_query(&query) {
                Ok((s, t)) => {
                    settings = s;
                    train = t.unwrap_or(false);
                }
                Err(why) => notice = Some(why),
            }
        }
        let mut app = Self::build(settings, gpu, adapter, no_gpu);
        app.hash = hash;
        app.training = train;
        if app.notice.is_none() {
            app.notice = notice;
        }
        app
    }

    /// A fresh app for `settings` on `gpu` (or the CPU).
    fn build(
        settings: Settings,
        gpu: Option<GpuHandle>,
        adapter: String,
        no_gpu: Option<String>,
    ) -> Self {
        let (engine, settings, notice) = match Self::make_engine(&settings, gpu.as_ref()) {
            Ok(engine) => (engine, settings, None),
            Err(why) => {
                // The defaults always build; fall back to them with the reason shown.
                let defaults = Settings {
                    compute: settings.compute,
                    ..Settings::default()
                };
                let engine = Self::make_engine(&defaults, gpu.as_ref())
                    .or_else(|_| Self::make_engine(&defaults, None))
                    .unwrap_or_else(|e| unreachable!("the default settings build: {e}"));
                (engine, defaults, Some(why))
            }
        };
        let data = engine.data();
        let data_shown: Vec<([f32; 2], Color32)> = data
            .xy
            .iter()
            .enumerate()
            .take(DATA_SHOWN)
            .map(|(i, &p)| {
                let label = data.labels.as_ref().filter(|_| settings.conditional);
                (p, canvas::data_colour(label.map(|l| l[i])))
            })
            .collect();
        let held_out = settings
            .dataset
            .sample(EVAL_POINTS, settings.seed ^ 0x4E1D_u64)
            .xy;
        let fit = View::fit(
            data_shown.iter().map(|d| d.0),
            engine.config().path.prior_scale(),
        );
        Self {
            settings,
            engine,
            gpu,
            adapter,
            no_gpu,
            notice,
            limit_notice: None,
            data_shown,
            held_out,
            view: fit,
            fit,
            training: false,
            flow_request: None,
            flow_pending: None,
            flow_version: 0,
            flow_stale: true,
            flow_at: Instant::now(),
            flow_done: Arc::new(AtomicBool::new(true)),
            flow_secs: None,
            time: 0.0,
            playing: true,
            speed: 1.0,
            steps_rate: RateMeter::default(),
            frame_rate: RateMeter::default(),
            frames: 0,
            frame_secs: 0.0,
            steps_per_sec: 0.0,
            fps: 0.0,
            smoothed_loss: Vec::new(),
            w2: Vec::new(),
            straightness: Vec::new(),
            marks: Vec::new(),
            last_eval: None,
            rounds: Vec::new(),
            round_start: 0,
            compare: None,
            one_step: false,
            deferred: None,
            pointer_down: false,
            hash_dirty: false,
            eval_at: Instant::now(),
            eval_secs: None,
            evaluated_step: None,
            hash: None,
        }
    }

    /// The engine `settings` ask for: the GPU unless there is none or the user chose the CPU.
    fn make_engine(settings: &Settings, gpu: Option<&GpuHandle>) -> Result<Engine, String> {
        // Drawn once; the data scale (VE's σ_data) comes from the pool, as when the path is switched.
        let pool = settings.dataset.sample(POOL_SIZE, settings.seed);
        let config = settings.train_config(pool.rms());
        let gpu = gpu.filter(|gpu| match settings.compute {
            Compute::Auto => !gpu.software,
            Compute::Gpu => true,
            Compute::Cpu => false,
        });
        match gpu {
            // A software renderer runs a refresh faster whole than in slices (each frame costs
            // it a software-rendered UI); a real GPU keeps frames on time with slices.
            Some(gpu) => Engine::gpu(&gpu.device, &gpu.queue, config, pool, !gpu.software),
            None => Engine::cpu(config, pool),
        }
    }

    /// Rebuilds everything for `settings`, keeping whether training runs. Settings that cannot
    /// build a model are explained and the running model is kept.
    fn rebuild(&mut self, settings: Settings) {
        if let Err(why) = Self::make_engine(&settings, self.gpu.as_ref()).map(drop) {
            self.notice = Some(format!("{why}. The settings were not applied."));
            return;
        }
        let training = self.training;
        let hash = self.hash.take();
        *self = Self::build(
            settings,
            self.gpu.clone(),
            std::mem::take(&mut self.adapter),
            self.no_gpu.take(),
        );
        self.training = training;
        self.hash = hash;
    }

    /// The state as one line of JSON, as the web page publishes it for tests and scripts.
    pub fn status_json(&self) -> String {
        serde_json::to_string(&self.status()).unwrap_or_default()
    }

    /// The state tests and scripts read.
    pub(crate) fn status(&self) -> Status {
        Status {
            backend: self.engine.backend().key(),
            adapter: self.adapter.clone(),
            training: self.training,
            step: self.engine.steps_done(),
            loss: self.smoothed_loss.last().map(|p| p[1]),
            steps_per_sec: self.steps_per_sec,
            fps: self.fps,
            frames: self.frames,
            particles: self.settings.particles,
            particles_drawn: self.flow_request.as_ref().map_or(0, |r| r.n),
            solver: self.settings.solver.name(),
            classes: self.settings.classes(),
            cfg_scale: self.settings.cfg_scale,
            path: self.settings.path.key(),
            w2: self.last_eval.map(|e| e.w2),
            w2_step: self.last_eval.map(|e| e.step),
            straightness: self.last_eval.map(|e| e.straightness),
            round: self.engine.round(),
            reflow_pending: self.engine.reflow_pending(),
            flow_version: self.flow_version,
            refresh_secs: self.flow_secs,
            eval_secs: self.eval_secs,
            notice: self.notices(),
            settings: self.settings.to_query(),
        }
    }

    /// Every notice in force, one per line.
    fn notices(&self) -> Option<String> {
        let software = self
            .gpu
            .as_ref()
            .filter(|gpu| gpu.software && self.engine.backend() == Backend::Cpu)
            .filter(|_| self.settings.compute == Compute::Auto)
            .map(|_| {
                format!(
                    "The GPU here is a software renderer ({}), on which the CPU reference trains \
                     faster, so it does. Choose GPU under compute to run the WGSL kernels anyway.",
                    self.adapter
                )
            });
        let cpu_reason = match self.settings.compute {
            Compute::Cpu => None,
            _ => self.no_gpu.clone(),
        };
        let all: Vec<String> = [
            self.notice.clone(),
            self.limit_notice.clone(),
            cpu_reason,
            software,
        ]
        .into_iter()
        .flatten()
        .collect();
        (!all.is_empty()).then(|| all.join("\n"))
    }

    /// Trains for about a frame, and keeps the loss curve current. The CPU reference trains for
    /// half the last frame's time, within 8–50 ms: at 60 fps that leaves the frame smooth, and
    /// where drawing is slow anyway (a software renderer) training still gets its share.
    fn train_for_a_frame(&mut self) {
        let budget = Duration::from_secs_f32((0.5 * self.frame_secs).clamp(0.008, 0.050));
        if let Err(why) = self.engine.train_frame(self.frame_secs, budget) {
            self.training = false;
            self.notice = Some(format!(
                "{why}. Training is paused; the weights of the last good step are kept."
            ));
        }
        self.update_loss_curve();
    }

    /// The loss curve as means over windows of [`LOSS_WINDOW`] steps.
    fn update_loss_curve(&mut self) {
        let losses = self.engine.losses();
        let done = self.smoothed_loss.len() * LOSS_WINDOW;
        for (k, chunk) in losses[done.min(losses.len())..]
            .chunks_exact(LOSS_WINDOW)
            .enumerate()
        {
            let mean = chunk.iter().map(|&l| f64::from(l)).sum::<f64>() / LOSS_WINDOW as f64;
            let step = (done + (k + 1) * LOSS_WINDOW) as f64;
            self.smoothed_loss.push([step, mean]);
        }
    }

    /// The particles' request, with the count clamped to what the device can draw.
    fn flow_request(&mut self) -> SampleRequest {
        let sampler = if self.one_step {
            SamplerConfig::new(Solver::Euler, 1)
        } else {
            self.settings.sampler()
        };
        let asked = self.settings.particles;
        let max = self
            .engine
            .max_particles(&sampler, particle_record(self.settings.endpoints));
        self.limit_notice = (asked > max).then(|| {
            let why = match self.engine.backend() {
                Backend::Gpu => format!(
                    "this GPU draws at most {max} with {} solver steps",
                    sampler.steps
                ),
                Backend::Cpu => format!("the CPU reference integrates at most {max}"),
            };
            format!("{asked} particles asked for, {max} shown: {why}.")
        });
        particle_request(
            sampler,
            asked.min(max),
            self.settings.seed ^ 0xF10,
            self.settings.endpoints,
            self.settings.classes(),
            self.settings.cfg_scale,
        )
    }

    /// Re-integrates the particles with the current weights, unless the last finished GPU
    /// refresh is still running on the GPU. A refresh still being encoded is dropped and
    /// started afresh (the settings changed under it).
    fn refresh_flow(&mut self) {
        if !self.flow_done.load(Ordering::Acquire) && self.flow_pending.is_none() {
            return;
        }
        let request = self.flow_request();
        let started = Instant::now();
        let mut refreshed = self.engine.refresh_flow(CURRENT, None, &request);
        if let Some(round) = self.compare.and_then(|r| self.rounds.get(r))
            && let Ok(current_done) = refreshed
        {
            refreshed = self
                .engine
                .refresh_flow(COMPARED, Some(&round.snapshot), &request)
                .map(|done| done && current_done);
        }
        match refreshed {
            Ok(done) => {
                if self.engine.backend() == Backend::Gpu {
                    self.flow_done.store(false, Ordering::Release);
                }
                self.flow_pending = Some(request);
                if done {
                    self.flow_finished();
                }
                // The CPU integrates within this call; the GPU's time is known when it is done.
                self.flow_secs = (self.engine.backend() == Backend::Cpu)
                    .then(|| started.elapsed().as_secs_f64());
            }
            Err(why) => self.notice = Some(why),
        }
        self.flow_stale = false;
        self.flow_at = Instant::now();
    }

    /// Encodes the next slice of a GPU refresh under way (a frame's worth).
    fn advance_flow(&mut self) {
        if self.flow_pending.is_some() && self.engine.advance_flows(self.frame_secs) {
            self.flow_finished();
        }
    }

    /// The refresh under way has been submitted whole: the drawing shows it from now on.
    fn flow_finished(&mut self) {
        let Some(request) = self.flow_pending.take() else {
            return;
        };
        if let Some(gpu) = &self.gpu
            && self.engine.backend() == Backend::Gpu
        {
            let done = Arc::clone(&self.flow_done);
            gpu.queue
                .on_submitted_work_done(move || done.store(true, Ordering::Release));
        }
        self.flow_request = Some(request);
        self.flow_version += 1;
    }

    /// Starts a W2 evaluation when one is due, and records finished ones.
    fn evaluate(&mut self) {
        if let Some(result) = self.engine.poll_eval(&self.held_out) {
            if self.engine.backend() == Backend::Gpu {
                self.eval_secs = Some(self.eval_at.elapsed().as_secs_f64());
            }
            match result {
                Ok(eval) => {
                    self.w2.push([eval.step as f64, eval.w2]);
                    self.straightness
                        .push([eval.step as f64, eval.straightness]);
                    self.last_eval = Some(eval);
                }
                Err(why) => self.notice = Some(why),
            }
        }
        let step = self.engine.steps_done();
        let due = if self.training {
            let every = EVAL_EVERY
                .as_secs_f64()
                .max(EVAL_PACE * self.eval_secs.unwrap_or(0.0));
            self.eval_at.elapsed().as_secs_f64() > every
        } else {
            step > 0 && self.evaluated_step != Some(step)
        };
        if due && self.evaluated_step != Some(step) {
            let started = Instant::now();
            match self.engine.start_eval(&self.settings.sampler()) {
                Ok(true) => {
                    self.evaluated_step = Some(step);
                    self.eval_at = started;
                    // The CPU evaluates within the call; the GPU's time is known at its result.
                    if self.engine.backend() == Backend::Cpu {
                        self.eval_secs = Some(started.elapsed().as_secs_f64());
                    }
                }
                Ok(false) => {}
                Err(why) => {
                    self.notice = Some(why);
                    self.evaluated_step = Some(step);
                }
            }
        }
    }

    /// Applies edited settings: a new network when the data, shape or backend changed, else the
    /// running trainer takes them and keeps its weights.
    fn apply_settings(&mut self, edited: Settings) {
        if edited == self.settings {
            self.deferred = None;
            return;
        }
        if self.settings.needs_new_model(&edited) {
            if self.pointer_down {
                // A new model per intermediate value of a drag would stall: wait for release.
                self.deferred = Some(edited);
                return;
            }
            self.deferred = None;
            self.rebuild(edited);
            self.hash_dirty = true;
            return;
        }
        self.deferred = None;
        let rms = self.engine.data().rms();
        let mut config = edited.train_config(rms);
        // Keep what the trainer was built with; only the switchable settings change.
        config.steps = self.engine.config().steps;
        let old_path = self.engine.config().path;
        let result = if config == *self.engine.config() {
            Ok(())
        } else {
            self.engine.set_config(config)
        };
        match result {
            Ok(()) => {
                self.hash_dirty = true;
                if self.settings.changes_flow(&edited) {
                    self.flow_stale = true;
                }
                if self.engine.config().path != old_path {
                    self.fit = View::fit(
                        self.data_shown.iter().map(|d| d.0),
                        self.engine.config().path.prior_scale(),
                    );
                    self.view = self.fit;
                    // The curves go on; the plots mark where the path changed (the loss and
                    // W2 of another path are not the same quantities).
                    self.marks.push(PlotMark {
                        step: self.engine.steps_done() as f64,
                        label: RoundPath::of(&edited).label(),
                    });
                    self.last_eval = None;
                    self.evaluated_step = None;
                }
                self.settings = edited;
                self.notice = None;
            }
            Err(why) => self.notice = Some(why),
        }
    }

    /// Writes the settings into the URL hash after they changed, once no pointer is down (not
    /// on every frame of a slider drag: browsers throttle history updates).
    fn write_hash_when_settled(&mut self) {
        if self.hash_dirty && !self.pointer_down {
            web::write_hash(&self.settings.to_query());
            self.hash = web::read_hash();
            self.hash_dirty = false;
        }
    }

    /// Applies the URL hash when it changed (the browser's address bar, a shared link, a test).
    fn follow_hash(&mut self) {
        let Some(hash) = web::read_hash() else {
            return;
        };
        if self.hash.as_deref() == Some(hash.as_str()) {
            return;
        }
        self.hash = Some(hash.clone());
        match self.settings.with_query(&hash) {
            Ok((settings, train)) => {
                if let Some(train) = train {
                    self.training = train;
                }
                self.apply_settings(settings);
            }
            Err(why) => self.notice = Some(why),
        }
    }

    /// Stops drawing a round beside when it was trained on another path than the current one:
    /// its network belongs to its path.
    fn keep_compare_on_path(&mut self) {
        let path = RoundPath::of(&self.settings);
        if let Some(r) = self.compare
            && self.rounds.get(r).is_none_or(|info| info.path != path)
        {
            self.compare = None;
            self.flow_stale = true;
        }
    }

    /// Ends the current round (keeping its weights to compare) and starts the next: the current
    /// model generates the coupling, and training goes on on it (QR §7.1).
    fn start_reflow(&mut self) {
        if self.engine.reflow_pending() {
            return;
        }
        let sampler = SamplerConfig::new(REFLOW_SOLVER, REFLOW_STEPS);
        let steps = self.engine.steps_done();
        let snapshot = self.engine.snapshot();
        match self.engine.start_reflow(REFLOW_PAIRS, &sampler, 1_000_000) {
            Ok(()) => {
                self.rounds.push(Round {
                    snapshot,
                    eval: self.last_eval,
                    steps: steps - self.round_start,
                    path: RoundPath::of(&self.settings),
                });
                self.round_start = steps;
                self.marks.push(PlotMark {
                    step: steps as f64,
                    label: format!("reflow round {}", self.rounds.len()),
                });
                self.last_eval = None;
                self.evaluated_step = None;
                self.training = true;
                self.flow_stale = true;
            }
            Err(why) => self.notice = Some(why),
        }
    }

    /// Picks up a reflow coupling generated on the GPU.
    fn poll_reflow(&mut self) {
        if let Some(Err(why)) = self.engine.poll_reflow() {
            // The round never started: forget its entry.
            if let Some(round) = self.rounds.pop() {
                self.round_start -= round.steps;
            }
            self.notice = Some(format!("The reflow coupling could not be built: {why}"));
        }
    }

    fn reflow_ui(&mut self, ui: &mut Ui) {
        ui.label(RichText::new("Reflow").strong());
        let round = self.engine.round();
        let label = if self.engine.reflow_pending() {
            "building the coupling…".to_string()
        } else {
            format!("Reflow to round {}", round + 1)
        };
        if ui
            .add_enabled(!self.engine.reflow_pending(), egui::Button::new(label))
            .on_hover_text(format!(
                "Rectified flow's reflow (QR §7.1): the current model carries {REFLOW_PAIRS} noise \
                 points to the data ({} × {REFLOW_STEPS} steps), and the next round trains on \
                 those pairs (x₀, x₁ = ODE(x₀)) instead of independent ones. The pairs no longer \
                 cross, so the flow straightens and few steps suffice.",
                REFLOW_SOLVER.name()
            ))
            .clicked()
        {
            self.start_reflow();
        }
        ui.label(format!("training round {round}"));
        let path = RoundPath::of(&self.settings);
        if !self.rounds.is_empty() {
            egui::Grid::new("rounds").striped(true).show(ui, |ui| {
                ui.label("round");
                ui.label("path");
                ui.label("steps");
                ui.label("W2");
                ui.label("straightness").on_hover_text(
                    "E ∫ ‖(x₁ − x₀) − v(t, x_t)‖² dt: 0 when every path is straight.",
                );
                ui.end_row();
                let current = [(
                    round,
                    path,
                    self.engine.steps_done() - self.round_start,
                    self.last_eval,
                )];
                let rows = self
                    .rounds
                    .iter()
                    .enumerate()
                    .map(|(r, info)| (r, info.path, info.steps, info.eval))
                    .chain(current);
                for (r, round_path, steps, eval) in rows {
                    ui.label(r.to_string());
                    let text = RichText::new(round_path.label());
                    if round_path == path {
                        ui.label(text);
                    } else {
                        ui.label(text.color(ui.visuals().warn_fg_color))
                            .on_hover_text(
                                "Trained on another path than the current one: its W2 and \
                             straightness are not comparable, and it is not drawn beside.",
                            );
                    }
                    ui.label(steps.to_string());
                    ui.label(eval.map_or("–".into(), |e| format!("{:.3}", e.w2)));
                    ui.label(eval.map_or("–".into(), |e| format!("{:.3}", e.straightness)));
                    ui.end_row();
                }
            });
            let mut compare = self.compare;
            egui::ComboBox::from_label("beside")
                .selected_text(compare.map_or("nothing".to_string(), |r| format!("round {r}")))
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut compare, None, "nothing");
                    for (r, info) in self.rounds.iter().enumerate() {
                        ui.add_enabled_ui(info.path == path, |ui| {
                            ui.selectable_value(&mut compare, Some(r), format!("round {r}"))
                                .on_disabled_hover_text(format!(
                                    "Round {r} was trained on {}; switch back to draw it.",
                                    info.path.label()
                                ));
                        });
                    }
                })
                .response
                .on_hover_text("Draw an earlier round's flow beside the current one, in step.");
            if compare != self.compare {
                self.compare = compare;
                self.flow_stale = true;
            }
        }
        if ui
            .checkbox(&mut self.one_step, "1-step view")
            .on_hover_text(
                "Draw the particles after a single Euler step x₁ = x₀ + v_θ(0, x₀). Curved flows \
                 land off the data; after reflow the paths are straight and one step comes close.",
            )
            .changed()
        {
            self.flow_stale = true;
        }
    }

    fn settings_ui(&mut self, ui: &mut Ui) {
        let mut edited = self
            .deferred
            .clone()
            .unwrap_or_else(|| self.settings.clone());
        ui.heading("flowplay");
        ui.label("Flow matching on 2-D data: a velocity network v_θ(t, x) trains live, and particles follow its ODE from noise to data.");
        ui.separator();

        let mut reset = false;
        ui.horizontal(|ui| {
            let label = if self.training {
                "Pause training"
            } else {
                "Train"
            };
            if ui
                .button(label)
                .on_hover_text("Space: start or pause training")
                .clicked()
            {
                self.training = !self.training;
            }
            reset = ui
                .button("Reset")
                .on_hover_text("New weights from the seed; training starts over")
                .clicked();
        });
        if reset {
            self.rebuild(self.settings.clone());
            return;
        }
        ui.label(format!(
            "step {} · {} steps/s · {} fps",
            self.engine.steps_done(),
            rate(self.steps_per_sec),
            rate(self.fps)
        ));
        self.compute_ui(ui, &mut edited);
        ui.separator();

        ui.label(RichText::new("Data").strong());
        egui::ComboBox::from_label("dataset")
            .selected_text(edited.dataset.name())
            .show_ui(ui, |ui| {
                for dataset in Dataset::ALL.into_iter().filter(|d| *d != Dataset::Normal) {
                    ui.selectable_value(&mut edited.dataset, dataset, dataset.name())
                        .on_hover_text(dataset.description());
                }
            })
            .response
            .on_hover_text("The data distribution p₁ the flow must reach (a new model).");
        egui::ComboBox::from_label("source")
            .selected_text(edited.source.name())
            .show_ui(ui, |ui| {
                for dataset in Dataset::ALL {
                    ui.selectable_value(&mut edited.source, dataset, dataset.name())
                        .on_hover_text(dataset.description());
                }
            })
            .response
            .on_hover_text(
                "The source p₀ the particles start from: N(0, I) as usual, or another dataset, \
                 to learn a flow between two distributions (QR §1; a new model).",
            );

        ui.label(RichText::new("Probability path").strong());
        for kind in PathKind::ALL {
            ui.radio_value(&mut edited.path, kind, kind.label())
                .on_hover_text(kind.explanation());
        }
        if edited.path == PathKind::Ve {
            ui.add(
                egui::Slider::new(&mut edited.ve_sigma[0], 0.001..=1.0)
                    .clamping(egui::SliderClamping::Edits)
                    .logarithmic(true)
                    .text("σ_min"),
            )
            .on_hover_text("The noise left at t = 1 (QR §3.3): σ(1) = σ_min.");
            ui.add(
                egui::Slider::new(&mut edited.ve_sigma[1], 1.0..=200.0)
                    .clamping(egui::SliderClamping::Edits)
                    .logarithmic(true)
                    .text("σ_max"),
            )
            .on_hover_text(
                "The noise at t = 0 (QR §3.3): the particles start from σ_max·z. It should \
                 dwarf the data's spread.",
            );
        }
        ui.checkbox(&mut edited.logit_normal, "logit-normal t")
            .on_hover_text(
                "Draw training times t = sigmoid(m + s·z), z ~ N(0, 1): more effort in the \
                 middle, where the target is hardest (QR §7.3). Off: t ~ U[0, 1].",
            );
        if edited.logit_normal {
            ui.add(
                egui::Slider::new(&mut edited.ln_mean, -2.0..=2.0)
                    .clamping(egui::SliderClamping::Edits)
                    .text("m"),
            )
            .on_hover_text("Location: positive m trains more near the data (t → 1).");
            ui.add(
                egui::Slider::new(&mut edited.ln_std, 0.2..=2.5)
                    .clamping(egui::SliderClamping::Edits)
                    .text("s"),
            )
            .on_hover_text("Scale: small s concentrates t around sigmoid(m).");
        }
        time_histogram_ui(ui, &edited.time_sampling());

        ui.label(RichText::new("Model and optimizer").strong());
        egui::ComboBox::from_label("width")
            .selected_text(edited.hidden.to_string())
            .show_ui(ui, |ui| {
                for hidden in [32, 64, 128, 256] {
                    ui.selectable_value(&mut edited.hidden, hidden, hidden.to_string());
                }
            })
            .response
            .on_hover_text("Hidden width of the velocity MLP v_θ(t, x) (QR §4.2; a new model).");
        ui.add(
            egui::Slider::new(&mut edited.batch, 32..=4096)
                .clamping(egui::SliderClamping::Edits)
                .logarithmic(true)
                .text("batch"),
        )
        .on_hover_text("Pairs (x₀, x₁) per training step (QR §4.4).");
        ui.add(
            egui::Slider::new(&mut edited.lr, 1e-4..=1e-2)
                .clamping(egui::SliderClamping::Edits)
                .logarithmic(true)
                .text("learning rate"),
        )
        .on_hover_text("AdamW's step size (QR §4.4); too large and the loss explodes.");
        ui.add(
            egui::Slider::new(&mut edited.depth, 1..=4)
                .clamping(egui::SliderClamping::Edits)
                .text("depth"),
        )
        .on_hover_text("Hidden layers of the MLP (QR §4.2 uses 2; a new model).");
        ui.checkbox(&mut edited.t_times_1000, "t × 1000 into the model")
            .on_hover_text(
                "TRELLIS feeds the network t·1000 (sinusoidal embedding of the scaled time); the \
                 Quick Reference feeds t. The frequencies then cover a different range (a new \
                 model).",
            );
        ui.add(
            egui::Slider::new(&mut edited.ema, 0.9..=0.9999)
                .clamping(egui::SliderClamping::Edits)
                .logarithmic(true)
                .text("EMA"),
        )
        .on_hover_text(
            "The particles and W2 use the exponential moving average of the weights, \
             θ̄ ← d·θ̄ + (1 − d)·θ (QR §4.4): smoother than the raw weights.",
        );
        ui.checkbox(&mut edited.ot, "minibatch-OT coupling")
            .on_hover_text(
                "Pair each batch's x₀ and x₁ by an exact optimal assignment instead of at random \
             (OT-CFM): paths cross less, so the flow is straighter from the first round.",
            );
        ui.add(
            egui::Slider::new(&mut edited.seed, 0..=99)
                .clamping(egui::SliderClamping::Edits)
                .text("seed"),
        )
        .on_hover_text("Same seed, same data, weights and batches (a new model).");

        ui.label(RichText::new("Sampling").strong());
        egui::ComboBox::from_label("solver")
            .selected_text(edited.solver.name())
            .show_ui(ui, |ui| {
                for solver in Solver::ALL {
                    ui.selectable_value(&mut edited.solver, solver, solver.name());
                }
            })
            .response
            .on_hover_text(
                "ODE solver for dx/dt = v_θ(t, x) (QR §5): Euler 1, Heun 2, RK4 4 evaluations \
                 per step.",
            );
        ui.add(
            egui::Slider::new(&mut edited.sample_steps, 1..=100)
                .clamping(egui::SliderClamping::Edits)
                .text("steps"),
        )
        .on_hover_text("Solver steps from t = 0 to t = 1.");
        ui.add(
            egui::Slider::new(&mut edited.rescale_t, 0.25..=8.0)
                .clamping(egui::SliderClamping::Edits)
                .logarithmic(true)
                .text("rescale_t"),
        )
        .on_hover_text(
            "TRELLIS's time shift of the step grid: with τ = 1 − t, τ′ = r·τ / (1 + (r − 1)·τ). \
             r > 1 spends more steps near the noise, r < 1 near the data; 1 leaves the grid \
             uniform.",
        );
        ui.label(format!(
            "NFE {} per particle",
            edited.sample_steps * edited.solver.evals_per_step()
        ));
        ui.add(
            egui::Slider::new(&mut edited.particles, 100..=1_000_000)
                .clamping(egui::SliderClamping::Edits)
                .logarithmic(true)
                .text("particles"),
        )
        .on_hover_text("Particles integrated from noise (clamped to what the device can draw).");
        ui.checkbox(&mut edited.trails, "trails")
            .on_hover_text(format!(
                "Each particle's path from t = 0 up to now (the first {} particles).",
                canvas::TRAILS_FOR
            ));
        ui.add_enabled_ui(edited.dataset.num_classes() > 0, |ui| {
            ui.checkbox(&mut edited.conditional, "class-conditional")
                .on_hover_text(
                    "Train v_θ(t, x, c) with the data's classes, dropping the label 10% of the \
                     time so the same network also learns the unconditional field (QR §7.2; a \
                     new model). Particles take their class's colour.",
                )
                .on_disabled_hover_text("This dataset has no classes.");
        });
        if edited.conditional && edited.dataset.num_classes() > 0 {
            ui.add(
                egui::Slider::new(&mut edited.cfg_scale, 0.0..=6.0)
                    .clamping(egui::SliderClamping::Edits)
                    .text("guidance w"),
            )
            .on_hover_text(
                "Classifier-free guidance (QR §7.2): v = v(x, ∅) + w·(v(x, c) − v(x, ∅)). \
                     w = 1 is the plain conditional field, w > 1 pushes particles deeper into \
                     their class, w = 0 ignores it.",
            );
        }
        ui.checkbox(&mut edited.endpoints, "predicted endpoints")
            .on_hover_text(
                "The network's prediction of where each particle ends, at the current solver \
                 step (QR §5; for rectified flow x_t + (1 − t)·v_θ(t, x_t)). They reach the \
                 data long before the particles do.",
            );

        self.apply_settings(edited);
        ui.separator();
        self.reflow_ui(ui);
        if let Some(notices) = self.notices() {
            ui.separator();
            ui.colored_label(Color32::from_rgb(220, 110, 60), notices);
        }
    }

    /// Where training runs: the GPU when there is one, or the CPU reference.
    fn compute_ui(&self, ui: &mut Ui, edited: &mut Settings) {
        ui.horizontal(|ui| {
            ui.label("compute:");
            ui.radio_value(&mut edited.compute, Compute::Auto, "auto")
                .on_hover_text(
                    "The GPU when it is a hardware one; the CPU reference on a software renderer \
                     or without GPU compute.",
                );
            ui.add_enabled_ui(self.gpu.is_some(), |ui| {
                ui.radio_value(&mut edited.compute, Compute::Gpu, "GPU")
                    .on_hover_text(format!("WGSL compute shaders on {}", self.adapter))
                    .on_disabled_hover_text("No GPU with compute shaders here.");
            });
            ui.radio_value(&mut edited.compute, Compute::Cpu, "CPU")
                .on_hover_text(
                    "The CPU reference (flowplay-core): the same maths, one thread in the \
                     browser. Switching starts training over.",
                );
        });
    }

    fn plots_ui(&self, ui: &mut Ui) {
        ui.columns(3, |cols| {
            Plot::new("loss_plot")
                .x_axis_label("step")
                .y_axis_label("loss")
                .allow_scroll(false)
                .show(&mut cols[0], |plot_ui| {
                    self.series(
                        plot_ui,
                        "training loss",
                        &self.smoothed_loss,
                        LOSS_COLOUR,
                        "press Train",
                    );
                })
                .response
                .on_hover_text(format!(
                    "The flow-matching loss E‖v_θ(t, x_t) − u_t‖² (QR §4.1), as means over \
                     {LOSS_WINDOW} steps. Dashed lines mark a path switch or a reflow round."
                ));
            Plot::new("w2_plot")
                .x_axis_label("step")
                .y_axis_label("W2")
                .allow_scroll(false)
                .show(&mut cols[1], |plot_ui| {
                    self.series(
                        plot_ui,
                        "W2 to held-out data",
                        &self.w2,
                        W2_COLOUR,
                        EVAL_HINT,
                    );
                })
                .response
                .on_hover_text(format!(
                    "2-Wasserstein distance between {EVAL_POINTS} samples of the EMA model and \
                     {EVAL_POINTS} held-out data points (exact matching): 0 is a perfect fit."
                ));
            Plot::new("straightness_plot")
                .x_axis_label("step")
                .y_axis_label("straightness")
                .allow_scroll(false)
                .show(&mut cols[2], |plot_ui| {
                    self.series(
                        plot_ui,
                        "straightness",
                        &self.straightness,
                        STRAIGHT_COLOUR,
                        EVAL_HINT,
                    );
                })
                .response
                .on_hover_text(
                    "E ∫ ‖(x₁ − x₀) − v(t, x_t)‖² dt along the sampled paths (QR §7.1): falls \
                     with each reflow round.",
                );
        });
    }

    /// One curve, broken at each mark (no line joins two paths or rounds), with the marks as
    /// dashed lines named after what began there; `hint` while there is nothing to plot.
    fn series(
        &self,
        plot_ui: &mut PlotUi<'_>,
        name: &str,
        points: &[[f64; 2]],
        colour: Color32,
        hint: &str,
    ) {
        let Some(top) = points.iter().map(|p| p[1]).reduce(f64::max) else {
            plot_ui.text(Text::new(name, PlotPoint::new(0.0, 0.0), hint).color(Color32::GRAY));
            return;
        };
        let points = thin(points);
        let mut rest = &points[..];
        for bound in self.marks.iter().map(|m| m.step).chain([f64::INFINITY]) {
            let split = rest.partition_point(|p| p[0] <= bound);
            let (segment, after) = rest.split_at(split);
            if !segment.is_empty() {
                plot_ui.line(Line::new(name, PlotPoints::from(segment.to_vec())).color(colour));
            }
            rest = after;
        }
        for mark in &self.marks {
            plot_ui.vline(
                VLine::new(&mark.label, mark.step)
                    .color(Color32::GRAY)
                    .style(LineStyle::dashed_dense()),
            );
            plot_ui.text(
                Text::new(
                    &mark.label,
                    PlotPoint::new(mark.step, top),
                    mark.label.as_str(),
                )
                .anchor(egui::Align2::LEFT_TOP)
                .color(Color32::GRAY),
            );
        }
    }

    fn player_ui(&mut self, ui: &mut Ui) {
        ui.horizontal(|ui| {
            let label = if self.playing { "Pause" } else { "Play" };
            if ui
                .button(label)
                .on_hover_text("Play or pause the particles")
                .clicked()
            {
                self.playing = !self.playing;
            }
            // The solver's own time grid (TRELLIS's shift makes it uneven).
            let times: Vec<f32> = match self.engine.flow(CURRENT) {
                Some(Flow::Cpu(traj)) => traj.times.clone(),
                Some(Flow::Gpu(source)) => source.times,
                None => Vec::new(),
            };
            if ui
                .button("step back")
                .on_hover_text("Back one solver step")
                .clicked()
            {
                self.playing = false;
                self.time = times
                    .iter()
                    .rev()
                    .find(|&&t| t < self.time - 1e-6)
                    .copied()
                    .unwrap_or(0.0);
            }
            if ui
                .button("step on")
                .on_hover_text("On one solver step")
                .clicked()
            {
                self.playing = false;
                self.time = times
                    .iter()
                    .find(|&&t| t > self.time + 1e-6)
                    .copied()
                    .unwrap_or(1.0);
            }
            ui.add(egui::Slider::new(&mut self.time, 0.0..=1.0).text("t"))
                .on_hover_text("t = 0 is the noise, t = 1 the data (QR §1).");
            ui.add(
                egui::Slider::new(&mut self.speed, 0.1..=4.0)
                    .logarithmic(true)
                    .text("speed"),
            );
        });
    }
}

impl eframe::App for PlaygroundApp {
    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }
}

impl PlaygroundApp {
    /// One frame: training, the particles' refresh and evaluation, then the whole UI.
    pub(crate) fn show(&mut self, ui: &mut Ui) {
        self.pointer_down = ui.input(|i| i.pointer.any_down());
        self.follow_hash();
        if !ui.ctx().egui_wants_keyboard_input() && ui.input(|i| i.key_pressed(egui::Key::Space)) {
            self.training = !self.training;
        }
        self.frame_secs = ui.input(|i| i.unstable_dt);
        if self.flow_secs.is_none() && self.flow_done.load(Ordering::Acquire) {
            self.flow_secs = Some(self.flow_at.elapsed().as_secs_f64());
        }
        if self.training {
            self.train_for_a_frame();
            if self.flow_pending.is_none()
                && refresh_due(
                    self.flow_secs,
                    self.flow_at.elapsed().as_secs_f64(),
                    self.engine.slices(),
                )
            {
                self.flow_stale = true;
            }
        } else if let Err(why) = self.engine.drain() {
            self.notice = Some(why);
        }
        self.update_loss_curve();
        self.poll_reflow();
        self.evaluate();
        self.keep_compare_on_path();
        self.advance_flow();
        if self.flow_stale {
            self.refresh_flow();
        }
        if self.playing {
            let dt = ui.input(|i| i.stable_dt).min(0.1);
            self.time = (self.time + self.speed * dt / TRAVEL_SECS) % 1.0;
        }
        self.frames += 1;
        self.fps = self.frame_rate.record(self.frames as f64);
        self.steps_per_sec = if self.training {
            self.steps_rate.record(self.engine.steps_done() as f64)
        } else {
            self.steps_rate.reset();
            0.0
        };

        egui::Panel::left("settings")
            .resizable(false)
            .default_size(250.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| self.settings_ui(ui));
            });
        egui::Panel::bottom("plots")
            .resizable(true)
            .default_size(160.0)
            .show(ui, |ui| self.plots_ui(ui));
        egui::CentralPanel::default().show(ui, |ui| {
            self.player_ui(ui);
            let layers = Layers {
                t: self.time,
                classes: self.settings.classes(),
                trails: self.settings.trails,
                endpoints: self.settings.endpoints,
            };
            match self.compare.filter(|&r| r < self.rounds.len()) {
                None => canvas::show(
                    ui,
                    &mut self.view,
                    self.fit,
                    &self.data_shown,
                    self.engine.flow(CURRENT),
                    CURRENT,
                    layers,
                ),
                Some(r) => {
                    let current = self.engine.round();
                    ui.columns(2, |cols| {
                        cols[0].label(format!("round {r}"));
                        canvas::show(
                            &mut cols[0],
                            &mut self.view,
                            self.fit,
                            &self.data_shown,
                            self.engine.flow(COMPARED),
                            COMPARED,
                            layers,
                        );
                        cols[1].label(format!("round {current} (training)"));
                        canvas::show(
                            &mut cols[1],
                            &mut self.view,
                            self.fit,
                            &self.data_shown,
                            self.engine.flow(CURRENT),
                            CURRENT,
                            layers,
                        );
                    });
                }
            }
        });

        self.write_hash_when_settled();
        web::publish(ui.ctx(), &self.status());
        // Frames while anything moves or the GPU has work to report; otherwise a few a second,
        // enough to notice a changed URL hash.
        if self.training
            || self.playing
            || self.flow_stale
            || !self.flow_done.load(Ordering::Acquire)
            || self.engine.busy()
            || self.deferred.is_some()
        {
            ui.ctx().request_repaint();
        } else {
            ui.ctx().request_repaint_after(Duration::from_millis(250));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Settings {
        Settings {
            hidden: 32,
            batch: 64,
            particles: 40,
            sample_steps: 5,
            compute: Compute::Cpu,
            ..Settings::default()
        }
    }

    fn app(settings: Settings) -> PlaygroundApp {
        PlaygroundApp::build(settings, None, "none".into(), None)
    }

    #[test]
    fn rates_keep_a_decimal_while_small() {
        assert_eq!(rate(0.04), "0.0");
        assert_eq!(rate(0.44), "0.4");
        assert_eq!(rate(9.94), "9.9");
        assert_eq!(rate(9.96), "10");
        assert_eq!(rate(612.4), "612");
    }

    #[test]
    fn refreshes_keep_to_their_share_of_the_time() {
        // A refresh still running is never due, however long it takes.
        assert!(!refresh_due(None, 100.0, false));
        // A quick one: every FLOW_REFRESH.
        let every = FLOW_REFRESH.as_secs_f64();
        assert!(!refresh_due(Some(0.01), 0.9 * every, false));
        assert!(refresh_due(Some(0.01), 1.1 * every, false));
        // A slow one: five times its duration within frames, twice in slices.
        assert!(!refresh_due(Some(2.0), 9.9, false));
        assert!(refresh_due(Some(2.0), 10.1, false));
        assert!(!refresh_due(Some(2.0), 3.9, true));
        assert!(refresh_due(Some(2.0), 4.1, true));
    }

    #[test]
    fn a_frame_of_training_advances_and_the_flow_follows() {
        let mut app = app(small());
        app.training = true;
        app.train_for_a_frame();
        assert!(app.engine.steps_done() > 0);
        app.refresh_flow();
        let Some(Flow::Cpu(flow)) = app.engine.flow(CURRENT) else {
            panic!("CPU particles are integrated");
        };
        assert_eq!(flow.frames(), 6);
        assert_eq!(flow.positions.len(), 40 * 6);
        assert_eq!(app.flow_version, 1);
        let status = app.status();
        assert_eq!(status.backend, "cpu");
        assert!(
            status
                .title()
                .starts_with("flowplay · cpu · training · step ")
        );
    }

    #[test]
    fn switching_the_path_keeps_the_weights_and_a_new_width_does_not() {
        let mut app = app(small());
        app.train_for_a_frame();
        let Engine::Cpu(_) = &app.engine else {
            panic!("CPU engine")
        };
        let steps = app.engine.steps_done();
        let mut edited = app.settings.clone();
        edited.path = PathKind::VpCosine;
        edited.lr = 5e-3;
        app.apply_settings(edited);
        assert_eq!(app.engine.steps_done(), steps);
        assert_eq!(
            app.engine.config().path,
            flowplay_core::path::Path::VpCosine
        );
        assert!(app.flow_stale, "a new path needs new particles");
        // The plots keep their history and mark the switch; a learning rate alone does not.
        assert_eq!(
            app.marks,
            [PlotMark {
                step: steps as f64,
                label: "VP (cosine)".to_string()
            }]
        );
        let mut edited = app.settings.clone();
        edited.lr = 1e-3;
        app.apply_settings(edited);
        assert_eq!(app.marks.len(), 1);

        // VE's noise range, the time distribution, EMA and OT also keep the weights.
        let mut edited = app.settings.clone();
        edited.path = PathKind::Ve;
        edited.ve_sigma = [0.02, 30.0];
        edited.ln_mean = 0.5;
        edited.ema = 0.99;
        edited.ot = true;
        app.apply_settings(edited);
        assert_eq!(app.engine.steps_done(), steps, "{:?}", app.notices());
        assert!((app.engine.config().ema_decay - 0.99).abs() < 1e-7);
        assert!(matches!(
            app.engine.config().path,
            flowplay_core::path::Path::Ve { sigma_max, .. } if (sigma_max - 30.0).abs() < 1e-6
        ));

        let mut wider = app.settings.clone();
        wider.hidden = 64;
        app.apply_settings(wider);
        assert_eq!(app.engine.steps_done(), 0);
        assert_eq!(app.engine.config().mlp.hidden, 64);
    }

    #[test]
    fn a_diverging_learning_rate_pauses_with_a_notice() {
        let mut app = app(Settings {
            lr: 1e-2,
            ..small()
        });
        let mut config = app.engine.config().clone();
        config.optimizer.lr = 1e30;
        config.clip_norm = None;
        app.engine
            .set_config(config)
            .expect("only the learning rate changed");
        app.training = true;
        for _ in 0..20 {
            if !app.training {
                break;
            }
            app.train_for_a_frame();
        }
        assert!(!app.training);
        let notice = app.notices().unwrap_or_default();
        assert!(
            notice.contains("diverged") && notice.contains("last good step"),
            "{notice}"
        );
    }

    #[test]
    fn a_conditional_model_samples_each_class_with_guidance() {
        let mut app = app(Settings {
            conditional: true,
            ..small()
        });
        assert_eq!(app.engine.config().mlp.num_classes, 2);
        app.training = true;
        app.train_for_a_frame();
        app.refresh_flow();
        assert_eq!(
            app.flow_request
                .as_ref()
                .and_then(|r| r.labels.as_ref())
                .map(|l| l[..4].to_vec()),
            Some(vec![0, 1, 0, 1])
        );
        let steps = app.engine.steps_done();
        let mut edited = app.settings.clone();
        edited.cfg_scale = 3.0;
        app.apply_settings(edited);
        assert!(
            app.flow_stale,
            "a new guidance scale re-integrates the particles"
        );
        assert_eq!(app.engine.steps_done(), steps, "and keeps the weights");
        app.refresh_flow();
        assert!(app.notices().is_none(), "{:?}", app.notices());
        assert_eq!(app.status().classes, 2);
    }

    #[test]
    fn too_many_particles_are_clamped_with_a_notice() {
        let mut app = app(Settings {
            particles: 1_000_000,
            ..small()
        });
        app.refresh_flow();
        assert_eq!(
            app.flow_request.as_ref().map(|r| r.n),
            Some(crate::engine::CPU_MAX_PARTICLES)
        );
        let status = app.status();
        assert_eq!(status.particles, 1_000_000);
        assert_eq!(status.particles_drawn, crate::engine::CPU_MAX_PARTICLES);
        assert!(
            status
                .notice
                .unwrap_or_default()
                .contains("1000000 particles asked for"),
            "the clamp is explained"
        );
    }

    #[test]
    fn evaluation_measures_w2_against_held_out_data() {
        let mut app = app(small());
        app.training = true;
        app.train_for_a_frame();
        app.training = false;
        app.evaluate();
        app.evaluate();
        let eval = app.last_eval.expect("an evaluation finished");
        assert_eq!(eval.step, app.engine.steps_done());
        assert!(eval.w2.is_finite() && eval.w2 > 0.0, "{eval:?}");
        assert!(
            eval.straightness.is_finite() && eval.straightness >= 0.0,
            "{eval:?}"
        );
        assert_eq!(app.w2.len(), 1);
        assert_eq!(app.straightness.len(), 1);
    }

    /// Runs frames of `app`'s loop logic (no UI) until `done` or 60 s.
    fn run_until(app: &mut PlaygroundApp, mut done: impl FnMut(&PlaygroundApp) -> bool) {
        let started = Instant::now();
        while !done(app) {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "timed out; notices: {:?}",
                app.notices()
            );
            if app.training {
                app.train_for_a_frame();
            } else {
                app.engine.drain().expect("statistics come back");
            }
            app.update_loss_curve();
            app.poll_reflow();
            app.evaluate();
            app.advance_flow();
            if app.flow_stale {
                app.refresh_flow();
            }
        }
    }

    #[test]
    fn reflow_starts_the_next_round_and_keeps_the_last_to_compare() {
        let mut app = app(small());
        app.training = true;
        run_until(&mut app, |a| a.engine.steps_done() >= 30);
        app.start_reflow();
        run_until(&mut app, |a| {
            a.engine.round() == 1 && !a.engine.reflow_pending()
        });
        assert_eq!(app.rounds.len(), 1);
        assert!(app.rounds[0].steps >= 30);
        app.compare = Some(0);
        app.flow_stale = true;
        run_until(&mut app, |a| !a.flow_stale);
        assert!(app.engine.flow(CURRENT).is_some() && app.engine.flow(COMPARED).is_some());
        let steps = app.engine.steps_done();
        run_until(&mut app, |a| a.engine.steps_done() > steps + 10);
        assert_eq!(app.status().round, 1);
        assert_eq!(
            app.marks.last().map(|m| m.label.as_str()),
            Some("reflow round 1")
        );
        // The round remembers its path; on another path it is no longer drawn beside.
        assert_eq!(app.rounds[0].path.label(), "Rectified flow");
        app.apply_settings(Settings {
            path: PathKind::Ve,
            ..app.settings.clone()
        });
        app.keep_compare_on_path();
        assert_eq!(app.compare, None);
        assert!(app.flow_stale);
        assert_eq!(
            app.rounds[0].path,
            RoundPath(PathKind::RectifiedFlow, [0.0; 2])
        );
    }

    /// The GPU engine end to end on a headless device (llvmpipe in CI): training, the particles'
    /// refresh, an evaluation read back without blocking, and a reflow round.
    #[test]
    fn the_gpu_engine_trains_draws_evaluates_and_reflows() {
        let gpu = match flowplay_gpu::GpuContext::new_blocking() {
            Ok(gpu) => gpu,
            Err(e) => {
                assert!(!flowplay_gpu::gpu_required(), "no GPU: {e}");
                return;
            }
        };
        let handle = GpuHandle {
            device: gpu.device.clone(),
            queue: gpu.queue.clone(),
            software: false,
        };
        let settings = Settings {
            compute: Compute::Gpu,
            ..small()
        };
        let mut app = PlaygroundApp::build(settings, Some(handle), gpu.describe(), None);
        assert_eq!(app.engine.backend(), Backend::Gpu);
        app.training = true;
        run_until(&mut app, |a| a.engine.steps_done() >= 20);
        let Some(Flow::Gpu(source)) = app.engine.flow(CURRENT) else {
            panic!("GPU particles")
        };
        assert_eq!(source.num_particles(), 40);
        assert_eq!(source.times.len(), 6);
        // Trajectories are recorded in pages: a million particles with 25 Euler steps and their
        // endpoints fit; with 1000 steps the memory bound holds them to fewer.
        let max = |steps| {
            app.engine.max_particles(
                &SamplerConfig::new(Solver::Euler, steps),
                particle_record(true),
            )
        };
        assert!(max(25) >= 1_000_000);
        assert!(max(1000) < 100_000);
        // A refresh over a frame's budget (20 000 particles × 5 steps, over the first budget of
        // 64 Ki evaluations) is encoded over several frames; meanwhile the last finished
        // particles are drawn.
        run_until(&mut app, |a| a.flow_done.load(Ordering::Acquire));
        app.settings.particles = 20_000;
        app.refresh_flow();
        assert!(app.flow_pending.is_some());
        let drawn = |app: &PlaygroundApp| match app.engine.flow(CURRENT) {
            Some(Flow::Gpu(source)) => source.num_particles(),
            _ => 0,
        };
        assert_eq!(drawn(&app), 40);
        app.advance_flow();
        assert!(app.flow_pending.is_some());
        // A change under way starts the refresh afresh.
        app.settings.particles = 30_000;
        app.refresh_flow();
        assert_eq!(app.flow_pending.as_ref().map(|r| r.n), Some(30_000));
        let mut frames = 1;
        while app.flow_pending.is_some() {
            app.advance_flow();
            frames += 1;
            assert!(frames < 200, "the refresh never finished");
        }
        assert!(frames >= 2, "{frames} frames");
        assert_eq!(drawn(&app), 30_000);
        app.settings.particles = 40;
        app.training = false;
        run_until(&mut app, |a| {
            a.last_eval.is_some_and(|e| e.step == a.engine.steps_done())
        });
        let eval = app.last_eval.expect("an evaluation came back");
        assert!(
            eval.w2.is_finite() && eval.straightness.is_finite(),
            "{eval:?}"
        );
        app.start_reflow();
        run_until(&mut app, |a| {
            a.engine.round() == 1 && !a.engine.reflow_pending()
        });
        let steps = app.engine.steps_done();
        app.training = true;
        run_until(&mut app, |a| a.engine.steps_done() > steps + 5);
    }

    #[test]
    fn particles_interpolate_between_grid_nodes() {
        use flowplay_core::sampler::Trajectories;
        let traj = Trajectories {
            times: vec![0.0, 0.5, 1.0],
            positions: vec![[0.0, 0.0], [1.0, 2.0], [3.0, 2.0]],
            ..Trajectories::default()
        };
        let close =
            |a: [f32; 2], b: [f32; 2]| (a[0] - b[0]).abs() < 1e-6 && (a[1] - b[1]).abs() < 1e-6;
        assert!(close(canvas::position_at(&traj, 0, 0.25), [0.5, 1.0]));
        assert!(close(canvas::position_at(&traj, 0, 0.75), [2.0, 2.0]));
        assert!(close(canvas::position_at(&traj, 0, 1.0), [3.0, 2.0]));
    }
}
