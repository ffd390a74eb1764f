//! The playground's frame rate offscreen (native only): the real app — training, particle
//! refreshes, evaluations and the whole egui UI with its particle paint callback — rendered by
//! `egui_wgpu` into an offscreen texture, frame after frame, with at most two frames in flight
//! as a swapchain allows, presented at 60 Hz as with vsync (a late frame waits for the next
//! tick) unless told otherwise. `flowplay-app --bench` prints one line per particle count (and,
//! with `--each-layer`, per canvas layer turned on beside the default ones).

use std::time::{Duration, Instant};

use eframe::egui_wgpu::{self, RenderState, ScreenDescriptor, WgpuConfiguration};

use crate::PlaygroundApp;
use crate::command::Command;
use crate::layers::{LayerId, LayerSet};

/// How long a frame may take before the benchmark gives up on the device.
const FRAME_TIMEOUT: Duration = Duration::from_secs(60);
/// A frame rate to hold.
pub const TARGET_FPS: f64 = 60.0;

/// What to measure.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchOptions {
    /// Particle counts to measure, one run each.
    pub particles: Vec<usize>,
    /// Seconds measured per count, after the warm-up.
    pub seconds: f64,
    /// Seconds of warm-up per count (after the first particles are drawn).
    pub warmup: f64,
    /// The window's size in pixels.
    pub size: [u32; 2],
    /// Present at 60 Hz as a display with vsync does; otherwise frames run back to back.
    pub vsync: bool,
    /// More settings, in the URL hash's form (`solver=rk4&steps=16`); `compute=gpu` and
    /// `train=1` unless it says otherwise.
    pub query: String,
    /// Measure each count once with the default layers and once more with each other layer on
    /// beside them (its view computed and drawn every frame it changes).
    pub each_layer: bool,
    /// Keep the solver × NFE lab open, sweeping in the background, while measuring.
    pub lab: bool,
    /// Train a second run beside the first, differing in this (`path`, `coupling`, `time` or
    /// `solver`).
    pub second: Option<String>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            particles: vec![10_000, 100_000, 300_000, 1_000_000],
            seconds: 5.0,
            warmup: 1.0,
            size: [1280, 800],
            vsync: true,
            query: String::new(),
            each_layer: false,
            lab: false,
            second: None,
        }
    }
}

/// One particle count's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchFigure {
    /// Particles asked for.
    pub particles: usize,
    /// Particles drawn (fewer when clamped to the device's limits).
    pub drawn: usize,
    /// Frames per second over the measured seconds.
    pub fps: f64,
    /// The median frame time in milliseconds.
    pub median_ms: f64,
    /// The 95th-percentile frame time in milliseconds.
    pub p95_ms: f64,
    /// The median CPU time of a frame in milliseconds: the app's logic and UI, tessellation and
    /// encoding (the rest of a frame is waiting for the GPU, or for the next 60 Hz tick).
    pub cpu_ms: f64,
    /// Training steps per second while the frames ran.
    pub steps_per_sec: f64,
    /// Particle refreshes (re-integrations from the current weights) per second.
    pub refreshes_per_sec: f64,
    /// "gpu" or "cpu".
    pub backend: &'static str,
    /// The layers drawn in the last frame.
    pub layers: Vec<&'static str>,
    /// The app's notice at the end, if any (e.g. a clamped particle count).
    pub notice: Option<String>,
    /// With the lab open: seconds of its last whole sweep, and the settings it measured.
    pub lab: Option<(Option<f64>, usize)>,
    /// With a second run: what it changes, and its training steps per second.
    pub second: Option<(String, f64)>,
}

impl BenchFigure {
    /// One line of text.
    pub fn line(&self) -> String {
        let drawn = if self.drawn == self.particles {
            String::new()
        } else {
            format!(" (drawn {})", self.drawn)
        };
        format!(
            "{:>9} particles{drawn}: {:6.1} fps (median {:.1} ms, p95 {:.1} ms, CPU {:.1} ms), \
             {:7.1} training steps/s, {:.2} particle refreshes/s, {} backend; layers {}",
            self.particles,
            self.fps,
            self.median_ms,
            self.p95_ms,
            self.cpu_ms,
            self.steps_per_sec,
            self.refreshes_per_sec,
            self.backend,
            self.layers.join(",")
        ) + &self
            .second
            .as_ref()
            .map_or_else(String::new, |(runs, rate)| {
                format!("; second run ({runs}): {rate:.1} training steps/s")
            })
            + &self.lab.map_or_else(String::new, |(secs, measured)| {
                format!(
                    "; lab: {measured} settings measured{}",
                    secs.map_or_else(String::new, |s| format!(", a whole sweep in {s:.1} s"))
                )
            })
    }
}

/// The renderer egui would get from eframe on this machine (the same adapter choice and device
/// limits), without a window.
pub fn render_state() -> Result<RenderState, String> {
    let config = WgpuConfiguration::default();
    let instance = pollster::block_on(config.wgpu_setup.new_instance());
    pollster::block_on(RenderState::create(
        &config,
        &instance,
        None,
        egui_wgpu::RendererOptions::default(),
    ))
    .map_err(|e| format!("no wgpu device for the playground: {e}"))
}

/// The adapter's name and backend.
pub fn describe(render_state: &RenderState) -> String {
    let info = render_state.adapter.get_info();
    format!(
        "{} ({:?}, {:?}, driver {} {})",
        info.name, info.backend, info.device_type, info.driver, info.driver_info
    )
}

/// Measures each particle count of `options` on `render_state`'s device, calling `report`
/// with each figure as it is taken.
pub fn run(
    render_state: &RenderState,
    options: &BenchOptions,
    mut report: impl FnMut(&BenchFigure),
) -> Result<Vec<BenchFigure>, String> {
    if options.seconds <= 0.0 || options.size.contains(&0) {
        return Err("the measured time and the window size must be positive".to_string());
    }
    let mut figures = Vec::new();
    let default = LayerSet::default();
    let mut sets = vec![default];
    if options.each_layer {
        sets.extend(
            LayerId::ALL
                .into_iter()
                .filter(|&id| !default.contains(id))
                .map(|id| {
                    let mut set = default;
                    set.set(id, true);
                    set
                }),
        );
    }
    for &particles in &options.particles {
        for &layers in &sets {
            let figure = measure(
                render_state,
                options,
                particles,
                options.each_layer.then_some(layers),
            )?;
            report(&figure);
            figures.push(figure);
        }
    }
    Ok(figures)
}

/// The largest particle count of `figures` that held `fps` frames per second.
pub fn held(figures: &[BenchFigure], fps: f64) -> Option<usize> {
    figures
        .iter()
        .filter(|f| f.fps >= fps)
        .map(|f| f.drawn)
        .max()
}

/// Frames of one egui context rendered offscreen.
struct Offscreen<'a> {
    rs: &'a RenderState,
    ctx: egui::Context,
    view: wgpu::TextureView,
    screen: ScreenDescriptor,
    started: Instant,
    in_flight: Option<wgpu::SubmissionIndex>,
    vsync: bool,
}

impl<'a> Offscreen<'a> {
    fn new(rs: &'a RenderState, size: [u32; 2], vsync: bool) -> Self {
        let texture = rs.device.create_texture(&wgpu::TextureDescriptor {
            label: Some("flowplay::bench::frame"),
            size: wgpu::Extent3d {
                width: size[0],
                height: size[1],
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: rs.target_format,
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT,
            view_formats: &[],
        });
        Self {
            rs,
            ctx: egui::Context::default(),
            view: texture.create_view(&wgpu::TextureViewDescriptor::default()),
            screen: ScreenDescriptor {
                size_in_pixels: size,
                pixels_per_point: 1.0,
            },
            started: Instant::now(),
            in_flight: None,
            vsync,
        }
    }

    /// Runs, renders and submits one frame of `app`, then waits for the frame before it (two
    /// frames in flight, like a swapchain's default latency). Returns the CPU time spent before
    /// the wait.
    fn frame(&mut self, app: &mut PlaygroundApp) -> Result<Duration, String> {
        let cpu = Instant::now();
        let [w, h] = self.screen.size_in_pixels;
        let input = egui::RawInput {
            screen_rect: Some(egui::Rect::from_min_size(
                egui::Pos2::ZERO,
                egui::vec2(w as f32, h as f32),
            )),
            time: Some(self.started.elapsed().as_secs_f64()),
            predicted_dt: 1.0 / TARGET_FPS as f32,
            focused: true,
            ..Default::default()
        };
        let mut output = self.ctx.run_ui(input, |ui| app.show(ui));
        let (device, queue) = (&self.rs.device, &self.rs.queue);
        let mut renderer = self.rs.renderer.write();
        for (id, deltas) in output.textures_delta.set.drain() {
            for delta in &deltas {
                renderer.update_texture(device, queue, id, delta);
            }
        }
        let jobs = self
            .ctx
            .tessellate(output.shapes, self.screen.pixels_per_point);
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("flowplay::bench::frame"),
        });
        let callbacks = renderer.update_buffers(device, queue, &mut encoder, &jobs, &self.screen);
        {
            let mut pass = encoder
                .begin_render_pass(&wgpu::RenderPassDescriptor {
                    label: Some("flowplay::bench::frame"),
                    color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                        view: &self.view,
                        resolve_target: None,
                        ops: wgpu::Operations {
                            load: wgpu::LoadOp::Clear(wgpu::Color::BLACK),
                            store: wgpu::StoreOp::Store,
                        },
                        depth_slice: None,
                    })],
                    ..Default::default()
                })
                .forget_lifetime();
            renderer.render(&mut pass, &jobs, &self.screen);
        }
        let index = queue.submit(callbacks.into_iter().chain([encoder.finish()]));
        for id in output.textures_delta.free.drain() {
            renderer.free_texture(&id);
        }
        drop(renderer);
        let cpu = cpu.elapsed();
        if let Some(previous) = self.in_flight.replace(index) {
            device
                .poll(wgpu::PollType::Wait {
                    submission_index: Some(previous),
                    timeout: Some(FRAME_TIMEOUT),
                })
                .map_err(|e| format!("the GPU did not finish a frame: {e}"))?;
        }
        if self.vsync {
            // Present at the next 60 Hz tick.
            let period = 1.0 / TARGET_FPS;
            let now = self.started.elapsed().as_secs_f64();
            let tick = ((now / period).floor() + 1.0) * period;
            std::thread::sleep(Duration::from_secs_f64(tick - now));
        }
        Ok(cpu)
    }
}

/// The playground offscreen, training on the GPU with `particles` (and `extra`, more of the
/// address) on top of the options' address, run until its first particles are drawn.
fn open_app<'a>(
    rs: &'a RenderState,
    options: &BenchOptions,
    particles: usize,
    extra: &str,
) -> Result<(Offscreen<'a>, PlaygroundApp), String> {
    let query = format!(
        "compute=gpu&train=1&{}&particles={particles}{extra}",
        options.query.trim_start_matches('#')
    );
    let mut screen = Offscreen::new(rs, options.size, options.vsync);
    let mut app = PlaygroundApp::start(&screen.ctx, Some(rs), Some(query));
    let started = Instant::now();
    while app.status().flow_version < 1 {
        screen.frame(&mut app)?;
        if started.elapsed() > FRAME_TIMEOUT {
            return Err(format!(
                "{particles} particles were not drawn within {} s",
                FRAME_TIMEOUT.as_secs()
            ));
        }
    }
    Ok((screen, app))
}

fn measure(
    rs: &RenderState,
    options: &BenchOptions,
    particles: usize,
    layers: Option<LayerSet>,
) -> Result<BenchFigure, String> {
    let layers = layers.map_or(String::new(), |l| format!("&layers={}", l.to_query()));
    // Warm-up: until the first particles are drawn, then `warmup` seconds more.
    let (mut screen, mut app) = open_app(rs, options, particles, &layers)?;
    if options.lab {
        app.apply(Command::Section(crate::app::Section::Lab, true));
    }
    if let Some(key) = &options.second {
        let kind = crate::settings::Comparison::from_key(key)
            .ok_or_else(|| format!("--second {key}: path, coupling, time or solver"))?;
        app.apply(Command::Second(Some(kind)));
    }
    if app.settings.view.layers.contains(LayerId::Stages) {
        // A click at the origin: the nearest particle's step is taken apart.
        app.apply(Command::Inspect([0.0, 0.0]));
        app.player.playing = true;
    }
    let warm = Instant::now();
    while warm.elapsed().as_secs_f64() < options.warmup {
        screen.frame(&mut app)?;
    }
    let before = app.status();
    let second_before = app.second.as_ref().map_or(0, |s| s.run.engine.steps_done());
    let started = Instant::now();
    let mut times = Vec::new();
    let mut cpu = Vec::new();
    while started.elapsed().as_secs_f64() < options.seconds {
        let frame = Instant::now();
        cpu.push(screen.frame(&mut app)?.as_secs_f64() * 1e3);
        times.push(frame.elapsed().as_secs_f64() * 1e3);
    }
    cpu.sort_by(f64::total_cmp);
    let secs = started.elapsed().as_secs_f64();
    let after = app.status();
    times.sort_by(f64::total_cmp);
    let quantile = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    Ok(BenchFigure {
        particles,
        drawn: after.particles_drawn,
        fps: times.len() as f64 / secs,
        median_ms: quantile(0.5),
        p95_ms: quantile(0.95),
        cpu_ms: cpu[cpu.len() / 2],
        steps_per_sec: after.step.saturating_sub(before.step) as f64 / secs,
        refreshes_per_sec: after.flow_version.saturating_sub(before.flow_version) as f64 / secs,
        backend: after.backend,
        layers: after.layers,
        notice: after.notice,
        second: app.second.as_ref().map(|s| {
            let steps = s.run.engine.steps_done().saturating_sub(second_before);
            (s.kind.describe(&s.run.settings), steps as f64 / secs)
        }),
        lab: options.lab.then(|| {
            let lab = app.engine.lab();
            (lab.done.as_ref().and_then(|d| d.secs), lab.measured)
        }),
    })
}

/// Memory in use at one moment of a soak.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemorySample {
    /// Frames run so far.
    pub frame: u64,
    /// Training steps done so far.
    pub step: u64,
    /// The process's resident set in bytes (Linux's /proc/self/statm; 0 elsewhere).
    pub rss: u64,
    /// Live GPU buffers (wgpu's internal counters).
    pub buffers: isize,
    /// Their bytes.
    pub buffer_bytes: isize,
    /// Live bind groups.
    pub bind_groups: isize,
    /// Live render and compute pipelines.
    pub pipelines: isize,
    /// Live shader modules.
    pub shader_modules: isize,
}

impl MemorySample {
    fn take(rs: &RenderState, frame: u64, step: u64) -> Self {
        let counters = rs.device.get_internal_counters();
        Self {
            frame,
            step,
            rss: resident_bytes(),
            buffers: counters.hal.buffers.read(),
            buffer_bytes: counters.hal.buffer_memory.read(),
            bind_groups: counters.hal.bind_groups.read(),
            pipelines: counters.hal.render_pipelines.read() + counters.hal.compute_pipelines.read(),
            shader_modules: counters.hal.shader_modules.read(),
        }
    }

    /// One line of text.
    pub fn line(&self) -> String {
        format!(
            "frame {:>6}, step {:>7}: RSS {:7.1} MB, {} GPU buffers of {:.1} MB, {} bind groups, \
             {} pipelines, {} shader modules",
            self.frame,
            self.step,
            self.rss as f64 / 1e6,
            self.buffers,
            self.buffer_bytes as f64 / 1e6,
            self.bind_groups,
            self.pipelines,
            self.shader_modules
        )
    }
}

/// The resident set of this process in bytes (0 where /proc is not there).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Runs the playground (the first particle count of `options`, training on the GPU) for at
/// least `frames` frames and `steps` training steps, sampling memory every `every` frames;
/// `report` gets each sample as it is taken. Returns the samples.
///
/// The first sample is taken after a warm-up: the first particles drawn, `options.warmup`
/// seconds, then `every` frames more, in which what the app makes once and keeps (the first
/// evaluation's and checkpoint's buffers, read-back rings, the likelihood's pipelines, egui's
/// font atlas) has been made. Memory that grows after that is what a long session would lose.
pub fn soak(
    rs: &RenderState,
    options: &BenchOptions,
    frames: u64,
    steps: u64,
    every: u64,
    mut report: impl FnMut(&MemorySample),
) -> Result<Vec<MemorySample>, String> {
    let every = every.max(1);
    let particles = options.particles.first().copied().unwrap_or(2000);
    let warm = Instant::now();
    let (mut screen, mut app) = open_app(rs, options, particles, "")?;
    while warm.elapsed().as_secs_f64() < options.warmup {
        screen.frame(&mut app)?;
    }
    for _ in 0..every {
        screen.frame(&mut app)?;
    }
    let mut samples = Vec::new();
    let mut sample = |app: &PlaygroundApp, frame: u64| {
        let taken = MemorySample::take(rs, frame, app.engine.steps_done());
        report(&taken);
        samples.push(taken);
    };
    sample(&app, 0);
    let mut frame = 0;
    while frame < frames || app.engine.steps_done() < steps {
        screen.frame(&mut app)?;
        frame += 1;
        if frame % every == 0 {
            sample(&app, frame);
        }
        if !app.training {
            // A divergence paused it (said in the notice): the soak is of a run that trains.
            return Err(format!(
                "training stopped at step {}: {}",
                app.engine.steps_done(),
                app.notice_text().unwrap_or_default()
            ));
        }
    }
    if frame % every != 0 {
        sample(&app, frame);
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The renderer eframe would get (llvmpipe in CI), or `None` where none is required.
    fn headless() -> Option<RenderState> {
        match render_state() {
            Ok(rs) => Some(rs),
            Err(e) => {
                assert!(!flowplay_gpu::gpu_required(), "{e}");
                None
            }
        }
    }

    /// 300 particles of a small model in a 640×480 window, frames back to back.
    fn small(seconds: f64, warmup: f64, each_layer: bool) -> BenchOptions {
        BenchOptions {
            particles: vec![300],
            seconds,
            warmup,
            size: [640, 480],
            vsync: false,
            query: "width=32&batch=64&steps=4".to_string(),
            each_layer,
            lab: false,
            second: None,
        }
    }

    #[test]
    fn the_playground_renders_offscreen_with_its_particles() {
        let Some(rs) = headless() else {
            return;
        };
        let options = small(0.5, 0.0, false);
        let figures = run(&rs, &options, |_| {}).expect("frames");
        let figure = &figures[0];
        assert_eq!(figure.backend, "gpu", "{figure:?}");
        assert_eq!(figure.drawn, 300, "{figure:?}");
        assert!(
            figure.fps > 0.0 && figure.p95_ms >= figure.median_ms,
            "{figure:?}"
        );
        assert!(figure.steps_per_sec > 0.0, "training went on: {figure:?}");
        assert_eq!(held(&figures, 0.0), Some(300));
        assert!(figure.line().contains("300 particles"), "{}", figure.line());
    }

    /// A short soak: after the warm-up, live GPU buffers and their bytes do not grow from
    /// frame to frame (a few read-back buffers come and go).
    #[test]
    fn a_short_soak_keeps_gpu_memory_flat() {
        let Some(rs) = headless() else {
            return;
        };
        let options = small(0.0, 0.5, false);
        let samples = soak(&rs, &options, 240, 0, 80, |_| {}).expect("frames");
        assert_eq!(samples.len(), 4);
        let (first, last) = (samples[0], samples[3]);
        assert!(last.step > first.step, "{samples:?}");
        assert!(first.buffers > 10, "the counters count: {first:?}");
        assert!(last.buffers <= first.buffers + 8, "{samples:?}");
        assert!(
            last.buffer_bytes <= first.buffer_bytes + (1 << 20),
            "{samples:?}"
        );
        assert!(last.line().contains("GPU buffers"));
    }

    #[test]
    fn each_layer_is_measured_with_its_view_drawn_on_the_gpu() {
        let Some(rs) = headless() else {
            return;
        };
        let options = small(0.3, 1.0, true);
        let figures = run(&rs, &options, |_| {}).expect("frames");
        let default = LayerSet::default();
        let extra: Vec<LayerId> = LayerId::ALL
            .into_iter()
            .filter(|&id| !default.contains(id))
            .collect();
        assert_eq!(figures.len(), 1 + extra.len());
        assert_eq!(figures[0].layers, ["data", "trails", "particles"]);
        for (figure, id) in figures[1..].iter().zip(extra) {
            assert!(
                figure.layers.contains(&id.key()),
                "{id:?} drawn: {figure:?}"
            );
            assert_eq!(figure.backend, "gpu", "{figure:?}");
        }
    }
}
