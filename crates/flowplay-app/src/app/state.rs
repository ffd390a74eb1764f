//! The playground's state, in the named groups it is made of.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use egui::Color32;
use flowplay_core::flow::SampleRequest;
use web_time::{Duration, Instant};

use crate::engine::{DensityAsk, LogpAsk};
use crate::engine::{Evaluation, Snapshot};
use crate::layers::{FieldView, Heatmap, LayerId, PairsView, StageView};
use crate::settings::{PathSettings, Settings};
use crate::view::View;

/// How often the particles are re-integrated with the newest weights while training.
pub(crate) const FLOW_REFRESH: Duration = Duration::from_millis(400);
/// How often W2 against held-out data is measured while training, at most.
pub(crate) const EVAL_EVERY: Duration = Duration::from_secs(2);
/// An evaluation starts no sooner than this many times the last one's duration after it: on a
/// software GPU one can take seconds, and training keeps at least four fifths of the device.
pub(crate) const EVAL_PACE: f64 = 5.0;

/// egui's wgpu device, when it can run the compute kernels.
#[derive(Clone)]
pub(crate) struct GpuHandle {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    /// A software renderer (llvmpipe, SwiftShader): the CPU reference trains faster there.
    pub(crate) software: bool,
}

/// The device the app found at start-up.
#[derive(Clone)]
pub(crate) struct DeviceInfo {
    pub(crate) gpu: Option<GpuHandle>,
    /// The adapter's name and backend.
    pub(crate) adapter: String,
    /// Why there is no GPU compute, when there is none.
    pub(crate) no_gpu: Option<String>,
}

/// What is said to the user, each once.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Notices {
    /// The last error or refusal, in plain words.
    pub(crate) error: Option<String>,
    /// Set while the particle count is clamped to the device's limits.
    pub(crate) limit: Option<String>,
}

/// The data as drawn, and the held-out points evaluations compare with.
#[derive(Clone, Debug, Default)]
pub(crate) struct DataView {
    /// Data points drawn, with their colours (by class for a conditional model).
    pub(crate) shown: Vec<([f32; 2], Color32)>,
    /// Fresh points the model never trains on.
    pub(crate) held_out: Vec<[f32; 2]>,
}

/// The canvas's view and the fit a double-click restores.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CanvasState {
    pub(crate) view: View,
    pub(crate) fit: View,
    /// Where the (current round's) canvas was on screen last frame: the views' grids cover it.
    pub(crate) rect: Option<egui::Rect>,
}

/// The particles' refresh: what is drawn, what is being integrated, and when.
#[derive(Debug)]
pub(crate) struct FlowRefresh {
    /// The request of what is drawn.
    pub(crate) request: Option<SampleRequest>,
    /// The refresh under way (on the GPU, encoded a slice a frame).
    pub(crate) pending: Option<SampleRequest>,
    /// Increases whenever the particles are re-integrated.
    pub(crate) version: u64,
    /// The particles must be re-integrated.
    pub(crate) stale: bool,
    /// When the last refresh started.
    pub(crate) at: Instant,
    /// Cleared while a GPU refresh is still running, so that refreshes never pile up.
    pub(crate) done: Arc<AtomicBool>,
    /// How long the last refresh took (until the GPU finished it), once known.
    pub(crate) secs: Option<f64>,
}

impl Default for FlowRefresh {
    fn default() -> Self {
        Self {
            request: None,
            pending: None,
            version: 0,
            stale: true,
            at: Instant::now(),
            done: Arc::new(AtomicBool::new(true)),
            secs: None,
        }
    }
}

impl FlowRefresh {
    /// Whether the GPU has finished the last submitted refresh.
    pub(crate) fn finished_on_device(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

/// The scrubber.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Player {
    /// The time shown, in [0, 1].
    pub(crate) time: f32,
    pub(crate) playing: bool,
    pub(crate) speed: f32,
}

impl Default for Player {
    fn default() -> Self {
        Self {
            time: 0.0,
            playing: true,
            speed: 1.0,
        }
    }
}

/// A rate over the last second: steps per second, frames per second.
#[derive(Default, Debug)]
pub(crate) struct RateMeter {
    samples: VecDeque<(Instant, f64)>,
}

impl RateMeter {
    /// Records the running total `count` now; returns the rate over the last second or so.
    pub(crate) fn record(&mut self, count: f64) -> f64 {
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

    pub(crate) fn reset(&mut self) {
        self.samples.clear();
    }
}

/// Frame timing and rates.
#[derive(Debug, Default)]
pub(crate) struct FrameStats {
    pub(crate) steps_rate: RateMeter,
    pub(crate) frame_rate: RateMeter,
    /// Frames drawn since the app started.
    pub(crate) frames: u64,
    /// The last frame's duration.
    pub(crate) frame_secs: f32,
    pub(crate) steps_per_sec: f64,
    pub(crate) fps: f64,
    /// Whether a pointer button is down this frame.
    pub(crate) pointer_down: bool,
    /// Seconds since the app started, for animations.
    pub(crate) clock: f32,
    /// CSS pixels per egui point (the page's zoom; 1 natively).
    pub(crate) zoom: f32,
    /// This run's share of the frame's training time (½ with a second run beside it; 0 is
    /// taken as 1).
    pub(crate) share: f32,
    /// This run is ahead of the run beside it by more than [`STEP_LOCK`] steps and sits out
    /// its training this frame: two runs are compared at the same step, not the same second
    /// (an OT coupling's step costs more than an independent one's).
    pub(crate) ahead: bool,
}

/// How many steps one of two runs side by side may lead the other before it waits.
pub(crate) const STEP_LOCK: u64 = 4;

/// Where training changed course, marked on the plots at `step`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PlotMark {
    pub(crate) step: f64,
    pub(crate) label: String,
}

/// The plots' curves.
#[derive(Clone, Debug, Default)]
pub(crate) struct Curves {
    /// The loss as means over windows of steps.
    pub(crate) loss: Vec<[f64; 2]>,
    pub(crate) w2: Vec<[f64; 2]>,
    pub(crate) straightness: Vec<[f64; 2]>,
    /// The negative log-likelihood of held-out data (nats per point).
    pub(crate) nll: Vec<[f64; 2]>,
    /// Where training changed course (a path switch, a reflow round).
    pub(crate) marks: Vec<PlotMark>,
}

/// When the model is evaluated, and the last result.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EvalSchedule {
    pub(crate) last: Option<Evaluation>,
    /// When the last evaluation started.
    pub(crate) at: Instant,
    /// How long the last evaluation took, from its start to its result.
    pub(crate) secs: Option<f64>,
    /// The step the last evaluation was started at.
    pub(crate) evaluated_step: Option<u64>,
}

impl Default for EvalSchedule {
    fn default() -> Self {
        Self {
            last: None,
            at: Instant::now(),
            secs: None,
            evaluated_step: None,
        }
    }
}

/// A finished reflow round, kept to compare it with later ones.
pub(crate) struct Round {
    pub(crate) snapshot: Snapshot,
    /// The last evaluation of its model.
    pub(crate) eval: Option<Evaluation>,
    /// Steps trained in it.
    pub(crate) steps: u64,
    /// The probability path it ended on: its network is drawn on that path only.
    pub(crate) path: PathSettings,
}

/// Reflow rounds and what is drawn of them.
#[derive(Default)]
pub(crate) struct Rounds {
    /// Finished rounds, oldest first.
    pub(crate) finished: Vec<Round>,
    /// The step the current round began at.
    pub(crate) start: u64,
    /// The finished round drawn beside the current one, if any.
    pub(crate) compare: Option<usize>,
    /// Draw the particles after a single Euler step, to see how straight the flow is.
    pub(crate) one_step: bool,
}

/// Edits on their way into the settings and the address.
#[derive(Clone, Debug, Default)]
pub(crate) struct Edits {
    /// Settings that need a new model, held while a slider is being dragged.
    pub(crate) deferred: Option<Settings>,
    /// The settings changed and the URL hash should follow (written once the pointer is up).
    pub(crate) hash_dirty: bool,
    /// The hash last read or written.
    pub(crate) hash: Option<String>,
}

/// The brush's settings: what a drag on the canvas paints.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct BrushTool {
    /// Whether a drag on the canvas paints (a right-drag then pans).
    pub(crate) on: bool,
    /// The class painted (a colour of the palette).
    pub(crate) class: u32,
    /// Radius in screen points.
    pub(crate) radius: f32,
    /// Points added per frame of a drag.
    pub(crate) density: usize,
    /// Remove points under the brush instead.
    pub(crate) erase: bool,
}

impl Default for BrushTool {
    fn default() -> Self {
        Self {
            on: false,
            class: 0,
            radius: 18.0,
            density: 6,
            erase: false,
        }
    }
}

/// Points painted with the brush, a class each.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Drawing {
    pub(crate) xy: Vec<[f32; 2]>,
    pub(crate) labels: Vec<u32>,
    /// Dabs painted so far: the random stream's counter, so a drawing is reproducible.
    pub(crate) dabs: u64,
}

/// Files coming in and results going out.
#[derive(Default)]
pub(crate) struct FileState {
    /// Opened and dropped files not yet handled.
    pub(crate) inbox: crate::files::Inbox,
    /// A result waiting for the GPU's weights to come back.
    pub(crate) exporting: Option<crate::command::Export>,
    /// A link to put on the clipboard this frame.
    pub(crate) copy: Option<String>,
    /// What imported points become.
    pub(crate) role: Role,
    /// Which pixels of an imported picture are dense.
    pub(crate) density: flowplay_core::picture::Density,
    /// A picture or video of the canvas being taken.
    pub(crate) capture: Option<super::capture::Capture>,
    /// A video encoded in the background, said when it is done.
    pub(crate) video: super::capture::VideoResult,
}

/// What imported or drawn points become.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Role {
    /// The data p₁ the flow learns to reach.
    #[default]
    Data,
    /// The source p₀ the particles start from.
    Source,
}

impl Role {
    /// What a refused import keeps, in words.
    pub(crate) fn kept(self) -> &'static str {
        match self {
            Self::Data => "The current data and model are kept.",
            Self::Source => "The current source and model are kept.",
        }
    }
}

/// The particle the stages layer takes apart, and how far.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Inspected {
    /// Its index among the drawn particles.
    pub(crate) particle: usize,
    /// Stages shown so far of the step at the scrubber's t (1 to the solver's stage count, then
    /// the combined step).
    pub(crate) shown: usize,
    /// The step taken apart, once computed.
    pub(crate) view: Option<StageView>,
    /// What the view was computed for: the scrubber's t, the stages shown, the drawing.
    pub(crate) key: Option<(u32, usize, u64)>,
}

impl Inspected {
    /// The stages of the step drawn: its view's (the 1-step view's is one Euler step), or
    /// `solver`'s before the view is computed.
    pub(crate) fn stages(&self, solver: flowplay_core::sampler::Solver) -> usize {
        self.view
            .as_ref()
            .map_or_else(|| solver.evals_per_step(), |v| v.parts.stages.len())
    }
}

/// The views the layers draw, and what each was last asked for (a view is asked for again when
/// what it depends on changes: the time, the view of the plane, the weights drawn).
#[derive(Clone, Default)]
pub(crate) struct LayerViews {
    pub(crate) field: Option<FieldView>,
    pub(crate) field_asked: Option<(flowplay_gpu::FieldGrid, u64)>,
    pub(crate) density: Option<Heatmap>,
    pub(crate) density_asked: Option<(DensityAsk, u64)>,
    pub(crate) logp: Option<Heatmap>,
    pub(crate) logp_asked: Option<(LogpAsk, u64)>,
    /// When the last likelihood map was started, and how long it took.
    pub(crate) logp_at: Option<Instant>,
    pub(crate) logp_secs: Option<f64>,
    pub(crate) pairs: Option<PairsView>,
    /// When the pairs were last drawn.
    pub(crate) pairs_at: Option<Instant>,
    /// A click waiting for the drawn weights (GPU) to find the nearest particle.
    pub(crate) pending_inspect: Option<[f32; 2]>,
}

/// What the layers need besides the settings.
#[derive(Clone, Default)]
pub(crate) struct LayerState {
    /// Streamlines on the field.
    pub(crate) streamlines: bool,
    /// The coupling layer shows minibatch-OT pairs (else independent ones).
    pub(crate) pairs_ot: bool,
    pub(crate) inspected: Option<Inspected>,
    /// The layers drawn in the last frame.
    pub(crate) drawn: Vec<LayerId>,
    pub(crate) views: LayerViews,
}

/// A part of the controls, folded or open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Section {
    Lessons,
    Settings,
    Layers,
    Lab,
    Compare,
    Reflow,
    Files,
    Brush,
}

impl Section {
    /// Every section, in the order the controls show them.
    pub(crate) const ALL: [Self; 8] = [
        Self::Lessons,
        Self::Settings,
        Self::Layers,
        Self::Lab,
        Self::Compare,
        Self::Reflow,
        Self::Files,
        Self::Brush,
    ];

    /// Its name in the address (`#open=lab,compare`).
    pub(crate) fn key(self) -> &'static str {
        match self {
            Self::Lessons => "lessons",
            Self::Settings => "settings",
            Self::Layers => "layers",
            Self::Lab => "lab",
            Self::Compare => "compare",
            Self::Reflow => "reflow",
            Self::Files => "files",
            Self::Brush => "brush",
        }
    }

    /// The section named `key`.
    pub(crate) fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.key() == key)
    }

    /// The heading.
    pub(crate) fn title(self) -> &'static str {
        match self {
            Self::Lessons => "Lessons",
            Self::Settings => "Data, path, model, sampling",
            Self::Layers => "Layers",
            Self::Lab => "Solver × NFE lab",
            Self::Compare => "Two runs side by side",
            Self::Reflow => "Reflow",
            Self::Files => "Files",
            Self::Brush => "Brush",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// What the page shows around the canvas: the sections open, the help overlay, the controls'
/// sheet on a narrow screen, and the lesson open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Chrome {
    open: u8,
    /// The list of keyboard shortcuts over the canvas (`?`).
    pub(crate) help: bool,
    /// On a narrow screen: the controls' sheet is up.
    pub(crate) sheet: bool,
    /// The lesson shown (0-based), if any.
    pub(crate) lesson: Option<usize>,
    /// The notices the user dismissed (shown again when they change).
    pub(crate) dismissed: Option<String>,
    /// Counts the models this page has built (a second run follows it).
    pub(crate) generation: u64,
}

impl Default for Chrome {
    fn default() -> Self {
        let open = [
            Section::Settings,
            Section::Layers,
            Section::Reflow,
            Section::Files,
        ]
        .iter()
        .fold(0, |bits, s| bits | s.bit());
        Self {
            open,
            help: false,
            sheet: false,
            lesson: None,
            dismissed: None,
            generation: 0,
        }
    }
}

impl Chrome {
    /// Whether `section` is open.
    pub(crate) fn is_open(&self, section: Section) -> bool {
        self.open & section.bit() != 0
    }

    /// Opens or folds `section`.
    pub(crate) fn set_open(&mut self, section: Section, open: bool) {
        if open {
            self.open |= section.bit();
        } else {
            self.open &= !section.bit();
        }
    }
}

/// A rate for the status line: one decimal below 10 (a slow device's 0.4 steps/s is not 0).
pub(crate) fn rate(per_sec: f64) -> String {
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
pub(crate) fn refresh_due(took: Option<f64>, since: f64, slices: bool) -> bool {
    let share = if slices { 2.0 } else { 5.0 };
    took.is_some_and(|took| since > FLOW_REFRESH.as_secs_f64().max(share * took))
}
