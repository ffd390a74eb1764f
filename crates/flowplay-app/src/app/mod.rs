//! The playground: its state in named groups (`state.rs`), the frame loop (here), the work a
//! frame does (`work.rs`) and the one place commands are applied (`apply.rs`). Panels
//! (`crate::panels`) and the canvas read the state and return [`Command`]s.

pub(crate) mod apply;
mod capture;
mod drawing;
mod export;
mod import;
#[cfg(test)]
mod io_tests;
mod layout;
mod second;
mod state;
#[cfg(test)]
mod tests;
mod views;
pub(crate) mod work;

use egui::Ui;
use web_time::Duration;

pub(crate) use state::{
    BrushTool, CanvasState, Chrome, Curves, DataView, DeviceInfo, Drawing, Edits, EvalSchedule,
    FileState, FlowRefresh, FrameStats, GpuHandle, LayerState, Notices, Player, PlotMark, Role,
    Rounds, Section, rate,
};

use crate::canvas;
use crate::engine::{Backend, EVAL_POINTS, Engine};
use crate::error::{AppError, AppResult};
use crate::settings::{Compute, POOL_SIZE, Settings};
use crate::view::View;
use crate::web::{self, Status};

/// Data points drawn.
const DATA_SHOWN: usize = 3000;

/// The playground application.
pub struct PlaygroundApp {
    pub(crate) settings: Settings,
    pub(crate) engine: Engine,
    pub(crate) device: DeviceInfo,
    pub(crate) notices: Notices,
    pub(crate) data: DataView,
    pub(crate) canvas: CanvasState,
    /// Whether training runs.
    pub(crate) training: bool,
    pub(crate) flow: FlowRefresh,
    pub(crate) player: Player,
    pub(crate) frame: FrameStats,
    pub(crate) curves: Curves,
    pub(crate) eval: EvalSchedule,
    pub(crate) rounds: Rounds,
    pub(crate) edits: Edits,
    pub(crate) layers: LayerState,
    /// The model (with its curves, rounds and views) that the last new model replaced: one
    /// Undo away.
    pub(crate) undo: Option<Box<PlaygroundApp>>,
    pub(crate) files: FileState,
    pub(crate) brush: BrushTool,
    pub(crate) drawing: Drawing,
    /// The page around the canvas: sections open, help, the sheet, the lesson.
    pub(crate) chrome: Chrome,
    /// A second run beside this one, if any.
    pub(crate) second: Option<Box<second::SecondRun>>,
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
        // The UI font has no ‖, ∅, arrows or primes; the monospace font, already embedded, has
        // them: it backs the proportional one up.
        let mut fonts = egui::FontDefinitions::default();
        if fonts.font_data.contains_key("Hack")
            && let Some(family) = fonts.families.get_mut(&egui::FontFamily::Proportional)
            && !family.iter().any(|f| f == "Hack")
        {
            family.push("Hack".to_owned());
        }
        ctx.set_fonts(fonts);
        let device = Self::find_device(render_state);
        let mut settings = Settings::default();
        let mut notice = None;
        let mut actions = crate::settings::Actions::default();
        if let Some(query) = query.filter(|q| !q.is_empty()) {
            match settings.with_query(&query) {
                Ok((s, a)) => {
                    settings = s;
                    actions = a;
                }
                Err(why) => notice = Some(why),
            }
        }
        let mut app = Self::build(settings, device);
        app.edits.hash = web::read_hash();
        app.act(&actions);
        if app.notices.error.is_none() {
            app.notices.error = notice;
        }
        app
    }

    /// The GPU egui draws with, if it can run the kernels, or why not.
    fn find_device(render_state: Option<&eframe::egui_wgpu::RenderState>) -> DeviceInfo {
        let Some(rs) = render_state else {
            return DeviceInfo {
                gpu: None,
                adapter: "none".to_string(),
                no_gpu: Some(Self::no_gpu_notice("none", "no wgpu renderer")),
            };
        };
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
            DeviceInfo {
                gpu: Some(GpuHandle {
                    device: rs.device.clone(),
                    queue: rs.queue.clone(),
                    software: info.device_type == wgpu::DeviceType::Cpu,
                }),
                adapter,
                no_gpu: None,
            }
        } else {
            let why = limits.err().map_or_else(
                || "it has no compute shaders".to_string(),
                |e| e.to_string(),
            );
            DeviceInfo {
                gpu: None,
                no_gpu: Some(Self::no_gpu_notice(&adapter, &why)),
                adapter,
            }
        }
    }

    fn no_gpu_notice(adapter: &str, why: &str) -> String {
        let what = if cfg!(target_arch = "wasm32") {
            "This browser has no WebGPU compute"
        } else {
            "No GPU with compute shaders was found"
        };
        format!(
            "{what} ({adapter}: {why}), so training runs on the CPU reference instead: slower, \
             with everything else the same."
        )
    }

    /// A fresh app for `settings` on `device`'s GPU (or the CPU). Settings that cannot build a
    /// model fall back to the defaults, with the reason shown.
    pub(crate) fn build(settings: Settings, device: DeviceInfo) -> Self {
        let (engine, settings, error) = match Self::make_engine(&settings, device.gpu.as_ref()) {
            Ok(engine) => (engine, settings, None),
            Err(why) => {
                let defaults = Settings {
                    compute: settings.compute,
                    ..Settings::default()
                };
                let engine = Self::make_engine(&defaults, device.gpu.as_ref())
                    .or_else(|_| Self::make_engine(&defaults, None))
                    .unwrap_or_else(|e| unreachable!("the default settings build: {e}"));
                (engine, defaults, Some(why.to_string()))
            }
        };
        let data = Self::data_view(&settings, &engine);
        let fit = Self::fit_view(&data, &engine);
        // The coupling layer draws the pairs training uses; its toggle shows the other.
        let layers = LayerState {
            pairs_ot: settings.training.ot,
            ..LayerState::default()
        };
        Self {
            settings,
            engine,
            device,
            notices: Notices { error, limit: None },
            data,
            canvas: CanvasState {
                view: fit,
                fit,
                rect: None,
            },
            training: false,
            flow: FlowRefresh::default(),
            player: Player::default(),
            frame: FrameStats::default(),
            curves: Curves::default(),
            eval: EvalSchedule::default(),
            rounds: Rounds::default(),
            edits: Edits::default(),
            layers,
            undo: None,
            files: FileState::default(),
            brush: BrushTool::default(),
            drawing: Drawing::default(),
            chrome: Chrome::default(),
            second: None,
        }
    }

    /// The view that shows the data, the prior and the user's source points.
    pub(crate) fn fit_view(data: &DataView, engine: &Engine) -> View {
        let source = engine
            .source_pool()
            .map(|p| &p.xy[..p.len().min(DATA_SHOWN)]);
        let prior = engine.config().path.prior_scale();
        View::fit(
            data.shown.iter().map(|d| d.0).chain(
                source
                    .unwrap_or_default()
                    .iter()
                    .map(|p| [prior * p[0], prior * p[1]]),
            ),
            prior,
        )
    }

    /// The data drawn (in class colours for a conditional model) and the held-out points.
    fn data_view(settings: &Settings, engine: &Engine) -> DataView {
        let data = engine.data();
        let shown = data
            .xy
            .iter()
            .enumerate()
            .take(DATA_SHOWN)
            .map(|(i, &p)| {
                let label = data.labels.as_ref().filter(|_| settings.model.conditional);
                (p, canvas::data_colour(label.map(|l| l[i])))
            })
            .collect();
        let held_out = settings
            .data
            .held_out(EVAL_POINTS, settings.data.seed ^ 0x4E1D_u64);
        DataView { shown, held_out }
    }

    /// The engine `settings` ask for: the GPU unless there is none or the user chose the CPU.
    fn make_engine(settings: &Settings, gpu: Option<&GpuHandle>) -> AppResult<Engine> {
        // Drawn once; the data scale (VE's σ_data) comes from the pool, as when the path is switched.
        let pool = settings.data.pool(POOL_SIZE);
        let config = settings.train_config(pool.rms());
        let gpu = gpu.filter(|gpu| match settings.compute {
            Compute::Auto => !gpu.software,
            Compute::Gpu => true,
            Compute::Cpu => false,
        });
        match gpu {
            // A software renderer runs a refresh faster whole than in slices (each frame costs
            // it a software-rendered UI); a real GPU keeps frames on time with slices.
            Some(gpu) => Engine::gpu(
                &gpu.device,
                &gpu.queue,
                config,
                pool,
                settings.data.source_points(),
                !gpu.software,
            ),
            None => Engine::cpu(config, pool, settings.data.source_points()),
        }
    }

    /// The state as one line of JSON, as the web page publishes it for tests and scripts.
    pub fn status_json(&self) -> String {
        serde_json::to_string(&self.status()).unwrap_or_default()
    }

    /// The state tests and scripts read.
    pub(crate) fn status(&self) -> Status {
        let last = self.eval.last;
        Status {
            backend: self.engine.backend().key(),
            adapter: self.device.adapter.clone(),
            training: self.training,
            step: self.engine.steps_done(),
            loss: self.curves.loss.last().map(|p| p[1]),
            steps_per_sec: self.frame.steps_per_sec,
            fps: self.frame.fps,
            frames: self.frame.frames,
            particles: self.settings.sampling.particles,
            particles_drawn: self.flow.request.as_ref().map_or(0, |r| r.n),
            solver: self.settings.sampling.solver.name(),
            classes: self.settings.classes(),
            cfg_scale: self.settings.sampling.cfg_scale,
            path: self.settings.training.path.kind.key(),
            w2: last.map(|e| e.w2),
            w2_step: last.map(|e| e.step),
            straightness: last.map(|e| e.straightness),
            nll: last.and_then(|e| e.nll),
            round: self.engine.round(),
            reflow_pending: self.engine.reflow_pending(),
            flow_version: self.flow.version,
            refresh_secs: self.flow.secs,
            eval_secs: self.eval.secs,
            layers: self.layers.drawn.iter().map(|id| id.key()).collect(),
            notice: self.notice_text(),
            canvas_rect: self.canvas.rect.map(|r| {
                let z = if self.frame.zoom > 0.0 {
                    self.frame.zoom
                } else {
                    1.0
                };
                [r.min.x * z, r.min.y * z, r.width() * z, r.height() * z]
            }),
            lesson: self.chrome.lesson.map(|i| i + 1),
            player_t: self.player.time,
            playing: self.player.playing,
            lab_measured: self.engine.lab().measured,
            second: self.second.as_ref().map(|s| web::SecondStatus {
                runs: s.kind.describe(&s.run.settings),
                step: s.run.engine.steps_done(),
                steps_per_sec: s.run.frame.steps_per_sec,
                w2: s.run.eval.last.map(|e| e.w2),
                straightness: s.run.eval.last.map(|e| e.straightness),
                flow_version: s.run.flow.version,
            }),
            data: self.settings.data.name(),
            data_points: self.engine.data().len(),
            capture: self.files.capture.as_ref().map(capture::Capture::progress),
            settings: self.settings.to_query(),
        }
    }

    /// What an address asks besides settings: train or pause, open a lesson or sections, a
    /// second run.
    pub(crate) fn act(&mut self, actions: &crate::settings::Actions) {
        if let Some(train) = actions.train {
            self.training = train;
        }
        if let Some(lesson) = actions.lesson {
            self.chrome.lesson = Some(lesson);
            self.chrome.set_open(Section::Lessons, true);
        }
        for &section in &actions.open {
            self.chrome.set_open(section, true);
        }
        if let Some(kind) = actions.second
            && self.second.as_ref().map(|s| s.kind) != Some(kind)
        {
            self.set_second(Some(kind));
        }
    }

    /// The address's settings: every setting, after the open lesson's number (the lesson key
    /// only opens the lesson; the settings after it are applied on top) and the second run's
    /// comparison.
    pub(crate) fn address_query(&self) -> String {
        let mut parts = Vec::new();
        if let Some(i) = self.chrome.lesson {
            parts.push(format!("lesson={}", i + 1));
        }
        if let Some(second) = &self.second {
            parts.push(format!("second={}", second.kind.key()));
        }
        parts.push(self.settings.to_query());
        parts.join("&")
    }

    /// Every notice in force, one per line.
    pub(crate) fn notice_text(&self) -> Option<String> {
        let all = self.notice_lines();
        (!all.is_empty()).then(|| all.join("\n"))
    }

    /// Every notice in force.
    pub(crate) fn notice_lines(&self) -> Vec<String> {
        let software = self
            .device
            .gpu
            .as_ref()
            .filter(|gpu| gpu.software && self.engine.backend() == Backend::Cpu)
            .filter(|_| self.settings.compute == Compute::Auto)
            .map(|_| {
                format!(
                    "The GPU here is a software renderer ({}), on which the CPU reference trains \
                     faster, so it does. Choose GPU under compute to run the WGSL kernels anyway.",
                    self.device.adapter
                )
            });
        let cpu_reason = match self.settings.compute {
            Compute::Cpu => None,
            _ => self.device.no_gpu.clone(),
        };
        [
            self.notices.error.clone(),
            self.notices.limit.clone(),
            cpu_reason,
            software,
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Says `error` once: it replaces the last one.
    pub(crate) fn tell(&mut self, error: &AppError) {
        self.notices.error = Some(error.to_string());
    }
}

impl eframe::App for PlaygroundApp {
    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }
}

impl PlaygroundApp {
    /// One frame: the frame's work (training, the particles' refresh, evaluation), then the
    /// panels and the canvas, whose commands are applied at the end.
    pub(crate) fn show(&mut self, ui: &mut Ui) {
        self.frame.pointer_down = ui.input(|i| i.pointer.any_down());
        self.frame.frame_secs = ui.input(|i| i.unstable_dt);
        self.frame.clock += ui.input(|i| i.stable_dt).min(0.1);
        let mut commands = Vec::new();
        if !ui.ctx().egui_wants_keyboard_input() {
            commands = ui.input_mut(|i| crate::keys::commands(i, self));
        }
        self.follow_hash();
        crate::files::take_dropped(ui.ctx(), &self.files.inbox);
        self.receive_files();
        self.receive_video();
        self.continue_export();
        self.work(ui.input(|i| i.stable_dt));
        self.second_work(ui.input(|i| i.stable_dt));
        self.update_views(ui.ctx());
        if let Some(second) = self.second.as_mut() {
            second.run.update_views(ui.ctx());
        }
        self.capture_before_drawing();

        self.layout_ui(ui, &mut commands);

        for command in commands {
            self.apply(command);
        }
        self.capture_after_drawing(ui.ctx());
        if let Some(link) = self.files.copy.take() {
            ui.ctx().copy_text(link);
        }
        self.write_hash_when_settled();
        web::publish(ui.ctx(), &self.status());
        // Frames while anything moves or the GPU has work to report; otherwise a few a second,
        // enough to notice a changed URL hash.
        if self.training
            || self.player.playing
            || self.flow.stale
            || !self.flow.finished_on_device()
            || self.engine.busy()
            || self.edits.deferred.is_some()
            || self.files.exporting.is_some()
            || self.files.capture.is_some()
        {
            ui.ctx().request_repaint();
        } else {
            ui.ctx().request_repaint_after(Duration::from_millis(250));
        }
    }
}
