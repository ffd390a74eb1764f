//! The app's logic without a UI: commands, settings that keep or reset the weights, the
//! particles' refresh, evaluations, reflow, and the GPU engine end to end on a headless device.

use std::sync::atomic::Ordering;

use flowplay_core::sampler::{SamplerConfig, Solver};
use web_time::{Duration, Instant};

use super::state::{FLOW_REFRESH, refresh_due};
use super::*;
use crate::command::{Command, Direction};
use crate::engine::{COMPARED, CPU_MAX_PARTICLES, CURRENT, Flow, particle_record};
use crate::layers::LayerId;
use crate::settings::PathKind;

pub(super) fn small() -> Settings {
    let mut s = Settings::default();
    s.model.hidden = 32;
    s.training.batch = 64;
    s.sampling.particles = 40;
    s.sampling.steps = 5;
    s.compute = Compute::Cpu;
    s
}

pub(super) fn no_device() -> DeviceInfo {
    DeviceInfo {
        gpu: None,
        adapter: "none".into(),
        no_gpu: None,
    }
}

pub(super) fn app(settings: Settings) -> PlaygroundApp {
    PlaygroundApp::build(settings, no_device())
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
    assert_eq!(app.flow.version, 1);
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
    let steps = app.engine.steps_done();
    let mut edited = app.settings.clone();
    edited.training.path.kind = PathKind::VpCosine;
    edited.optim.lr = 5e-3;
    app.apply(Command::Settings(Box::new(edited)));
    assert_eq!(app.engine.steps_done(), steps);
    assert_eq!(
        app.engine.config().path,
        flowplay_core::path::Path::VpCosine
    );
    assert!(app.flow.stale, "a new path needs new particles");
    // The plots keep their history and mark the switch; a learning rate alone does not.
    assert_eq!(
        app.curves.marks,
        [PlotMark {
            step: steps as f64,
            label: "VP (cosine)".to_string()
        }]
    );
    let mut edited = app.settings.clone();
    edited.optim.lr = 1e-3;
    app.apply(Command::Settings(Box::new(edited)));
    assert_eq!(app.curves.marks.len(), 1);

    // VE's noise range, the time distribution, EMA and OT also keep the weights.
    let mut edited = app.settings.clone();
    edited.training.path.kind = PathKind::Ve;
    edited.training.path.ve_sigma = [0.02, 30.0];
    edited.training.ln_mean = 0.5;
    edited.optim.ema = 0.99;
    edited.training.ot = true;
    app.apply(Command::Settings(Box::new(edited)));
    assert_eq!(app.engine.steps_done(), steps, "{:?}", app.notice_text());
    assert!((app.engine.config().ema_decay - 0.99).abs() < 1e-7);
    assert!(matches!(
        app.engine.config().path,
        flowplay_core::path::Path::Ve { sigma_max, .. } if (sigma_max - 30.0).abs() < 1e-6
    ));

    let mut wider = app.settings.clone();
    wider.model.hidden = 64;
    app.apply(Command::Settings(Box::new(wider)));
    assert_eq!(app.engine.steps_done(), 0);
    assert_eq!(app.engine.config().mlp.hidden, 64);
}

/// The settings the app long lacked reach the trainer and the sampler: σ_min of rectified flow,
/// VE preconditioning, label dropout, clipping, weight decay, the class sampled, raw or EMA.
#[test]
fn every_setting_reaches_the_trainer_and_the_particles() {
    use flowplay_core::path::Path;
    let mut s = small();
    s.data.dataset = flowplay_core::data::Dataset::EightGaussians;
    s.model.conditional = true;
    let mut app = app(s);
    app.training = true;
    app.train_for_a_frame();
    let steps = app.engine.steps_done();
    let mut edited = app.settings.clone();
    edited.training.path.rf_sigma_min = 1e-5;
    edited.training.p_drop = 0.3;
    edited.optim.clip = 0.0;
    edited.optim.weight_decay = 0.01;
    app.apply(Command::Settings(Box::new(edited)));
    let config = app.engine.config();
    assert_eq!(app.engine.steps_done(), steps, "the weights are kept");
    assert_eq!(config.path, Path::RectifiedFlow { sigma_min: 1e-5 });
    assert!((config.p_drop - 0.3).abs() < 1e-7);
    assert_eq!(config.clip_norm, None);
    assert!((config.optimizer.weight_decay - 0.01).abs() < 1e-7);
    let mut edited = app.settings.clone();
    edited.training.path.kind = PathKind::Ve;
    edited.training.path.ve_precondition = false;
    app.apply(Command::Settings(Box::new(edited)));
    assert!(matches!(
        app.engine.config().path,
        Path::Ve {
            sigma_data: None,
            ..
        }
    ));

    // One class for every particle, or each in turn.
    let mut edited = app.settings.clone();
    edited.training.path.kind = PathKind::RectifiedFlow;
    edited.sampling.class = Some(5);
    app.apply(Command::Settings(Box::new(edited)));
    let labels = app
        .flow_request()
        .labels
        .expect("a conditional model's particles");
    assert!(labels.iter().all(|&l| l == 5));
    app.settings.sampling.class = None;
    let labels = app.flow_request().labels.expect("labelled");
    assert_eq!(labels[..9], [0, 1, 2, 3, 4, 5, 6, 7, 0]);

    // Raw and EMA weights draw different particles.
    app.train_for_a_frame();
    let positions = |app: &mut PlaygroundApp, ema: bool| {
        app.settings.sampling.ema = ema;
        app.refresh_flow();
        match app.engine.flow(CURRENT) {
            Some(Flow::Cpu(flow)) => flow.positions.clone(),
            _ => panic!("CPU particles"),
        }
    };
    let ema = positions(&mut app, true);
    let raw = positions(&mut app, false);
    assert_eq!(ema.len(), raw.len());
    assert_ne!(ema, raw);
}

/// A new model keeps the one it replaced one Undo away, with its history; a second Undo
/// returns.
#[test]
fn undo_brings_back_the_replaced_model_and_its_history() {
    let mut app = app(small());
    app.training = true;
    run_until(&mut app, |a| a.curves.loss.len() >= 3);
    let steps = app.engine.steps_done();
    let curve = app.curves.loss.clone();
    let mut edited = app.settings.clone();
    edited.data.seed = 17;
    app.apply(Command::Settings(Box::new(edited)));
    assert_eq!(app.engine.steps_done(), 0);
    assert!(app.curves.loss.is_empty());
    let notice = app.notice_text().unwrap_or_default();
    assert!(
        notice.contains("A new model (seed 0 → 17)")
            && notice.contains(&format!("trained for {steps} steps, is one Undo away")),
        "{notice}"
    );
    app.train_for_a_frame();
    let new_steps = app.engine.steps_done();
    app.apply(Command::Undo);
    assert_eq!(app.engine.steps_done(), steps);
    assert_eq!(app.settings.data.seed, 0);
    assert_eq!(app.curves.loss, curve);
    assert!(app.edits.hash_dirty, "the address follows");
    let notice = app.notice_text().unwrap_or_default();
    assert!(
        notice.contains("Back to the model before (seed 17 → 0)"),
        "{notice}"
    );
    app.apply(Command::Undo);
    assert_eq!(app.engine.steps_done(), new_steps);
    assert_eq!(app.settings.data.seed, 17);
    // A reset is a new model too.
    app.apply(Command::Reset);
    assert_eq!(app.engine.steps_done(), 0);
    app.apply(Command::Undo);
    assert_eq!(app.engine.steps_done(), new_steps);
}

#[test]
fn an_optimizer_change_keeps_the_evaluation_in_flight_and_the_particles() {
    let mut app = app(small());
    app.training = true;
    app.train_for_a_frame();
    app.refresh_flow();
    let version = app.flow.version;
    let started = app
        .engine
        .start_eval(&app.settings.sampling.sampler(), &app.data.held_out, true)
        .expect("an evaluation starts");
    assert!(started);
    let mut edited = app.settings.clone();
    edited.optim.lr = 4e-3;
    edited.optim.ema = 0.99;
    app.apply(Command::Settings(Box::new(edited)));
    assert!(!app.flow.stale, "no new particles for an optimizer change");
    assert_eq!(app.flow.version, version);
    assert!(
        app.engine.poll_eval(&app.data.held_out).is_some(),
        "the evaluation under way is kept"
    );
}

#[test]
fn layer_commands_redraw_without_touching_the_model() {
    let mut app = app(small());
    app.train_for_a_frame();
    app.refresh_flow();
    let (steps, version) = (app.engine.steps_done(), app.flow.version);
    app.apply(Command::Layer(LayerId::Field, true));
    app.apply(Command::Layer(LayerId::Trails, false));
    assert!(app.settings.view.layers.contains(LayerId::Field));
    assert!(!app.settings.view.layers.contains(LayerId::Trails));
    assert_eq!(app.engine.steps_done(), steps);
    assert!(!app.flow.stale, "a layer alone draws the same particles");
    // The endpoints layer records endpoints: new particles.
    app.apply(Command::Layer(LayerId::Endpoints, true));
    assert!(app.flow.stale);
    assert_eq!(app.flow.version, version);
    assert!(
        app.settings
            .to_query()
            .contains("layers=data,particles,endpoints,field")
    );
}

#[test]
fn player_commands_move_the_scrubber_along_the_solver_grid() {
    let mut app = app(small());
    app.refresh_flow();
    app.apply(Command::Seek(0.5));
    assert!(!app.player.playing);
    app.apply(Command::Step(Direction::On));
    assert!((app.player.time - 0.6).abs() < 1e-6, "{}", app.player.time);
    app.apply(Command::Step(Direction::Back));
    assert!((app.player.time - 0.4).abs() < 1e-6, "{}", app.player.time);
    app.apply(Command::Step(Direction::Back));
    assert!((app.player.time - 0.2).abs() < 1e-6, "{}", app.player.time);
    app.apply(Command::TogglePlay);
    assert!(app.player.playing);
    app.apply(Command::Seek(3.0));
    assert!((app.player.time - 1.0).abs() < 1e-9);
}

#[test]
fn a_diverging_learning_rate_pauses_with_a_notice() {
    let mut s = small();
    s.optim.lr = 1e-2;
    let mut app = app(s);
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
    let notice = app.notice_text().unwrap_or_default();
    assert!(
        notice.contains("diverged")
            && notice.contains("the weights of step 0")
            && notice.contains("are back"),
        "{notice}"
    );
}

/// An exploding loss (finite all along) pauses training and brings back the weights of a
/// checkpoint before the learning rate was raised, on the CPU and on the GPU.
#[test]
fn an_exploding_loss_pauses_and_brings_the_good_weights_back() {
    let devices = [
        (Compute::Cpu, Some(no_device())),
        (Compute::Gpu, headless_gpu()),
    ];
    for (compute, device) in devices {
        let Some(device) = device else { continue };
        let mut app = PlaygroundApp::build(Settings { compute, ..small() }, device);
        app.training = true;
        run_until(&mut app, |a| a.engine.losses().len() >= 450);
        app.training = false;
        run_until(&mut app, |a| !a.engine.busy());
        let raised_at = app.engine.steps_done();
        let mut config = app.engine.config().clone();
        config.optimizer.lr = 10.0;
        config.clip_norm = None;
        app.engine
            .set_config(config)
            .expect("only the learning rate changed");
        app.training = true;
        run_until(&mut app, |a| !a.training);
        let notice = app.notice_text().unwrap_or_default();
        // The CPU sees the loss jump; the GPU, whose statistics come back a submission at a
        // time, may see a step that went non-finite first.
        assert!(
            notice.contains("the loss jumped to") || notice.contains("the loss became"),
            "{compute:?}: {notice}"
        );
        assert!(notice.contains("are back"), "{compute:?}: {notice}");
        let restored = app.engine.steps_done();
        assert!(
            restored >= 200 && restored <= raised_at,
            "{compute:?}: {restored} of {raised_at}"
        );
        assert_eq!(app.engine.losses().len() as u64, restored);
        assert!(
            app.engine
                .losses()
                .iter()
                .all(|l| l.is_finite() && *l < 20.0)
        );
        assert!(app.curves.loss.len() * work::LOSS_WINDOW <= restored as usize);
        // The restored weights train on at a sane rate.
        let mut config = app.engine.config().clone();
        config.optimizer.lr = 1e-3;
        app.engine
            .set_config(config)
            .expect("only the learning rate changed");
        app.notices.error = None;
        app.training = true;
        run_until(&mut app, |a| {
            a.engine.losses().len() as u64 >= restored + 50
        });
        assert!(
            app.training && app.notices.error.is_none(),
            "{:?}",
            app.notices.error
        );
    }
}

#[test]
fn a_conditional_model_samples_each_class_with_guidance() {
    let mut s = small();
    s.model.conditional = true;
    let mut app = app(s);
    assert_eq!(app.engine.config().mlp.num_classes, 2);
    app.training = true;
    app.train_for_a_frame();
    app.refresh_flow();
    assert_eq!(
        app.flow
            .request
            .as_ref()
            .and_then(|r| r.labels.as_ref())
            .map(|l| l[..4].to_vec()),
        Some(vec![0, 1, 0, 1])
    );
    let steps = app.engine.steps_done();
    let mut edited = app.settings.clone();
    edited.sampling.cfg_scale = 3.0;
    app.apply(Command::Settings(Box::new(edited)));
    assert!(
        app.flow.stale,
        "a new guidance scale re-integrates the particles"
    );
    assert_eq!(app.engine.steps_done(), steps, "and keeps the weights");
    app.refresh_flow();
    assert!(app.notice_text().is_none(), "{:?}", app.notice_text());
    assert_eq!(app.status().classes, 2);
}

#[test]
fn too_many_particles_are_clamped_with_a_notice() {
    let mut s = small();
    s.sampling.particles = 1_000_000;
    let mut app = app(s);
    app.refresh_flow();
    assert_eq!(
        app.flow.request.as_ref().map(|r| r.n),
        Some(CPU_MAX_PARTICLES)
    );
    let status = app.status();
    assert_eq!(status.particles, 1_000_000);
    assert_eq!(status.particles_drawn, CPU_MAX_PARTICLES);
    assert!(
        status
            .notice
            .unwrap_or_default()
            .contains("1000000 particles asked for"),
        "the clamp is explained"
    );
}

#[test]
fn evaluation_measures_w2_straightness_and_the_likelihood_of_held_out_data() {
    let mut app = app(small());
    app.training = true;
    app.train_for_a_frame();
    app.training = false;
    app.evaluate();
    app.evaluate();
    let eval = app.eval.last.expect("an evaluation finished");
    assert_eq!(eval.step, app.engine.steps_done());
    assert!(eval.w2.is_finite() && eval.w2 > 0.0, "{eval:?}");
    assert!(
        eval.straightness.is_finite() && eval.straightness >= 0.0,
        "{eval:?}"
    );
    let nll = eval.nll.expect("the source is N(0, I)");
    assert!(nll.is_finite(), "{nll}");
    assert_eq!(app.curves.w2.len(), 1);
    assert_eq!(app.curves.straightness.len(), 1);
    assert_eq!(app.curves.nll.len(), 1);
    assert_eq!(app.status().nll, Some(nll));
}

#[test]
fn a_data_to_data_model_has_no_likelihood() {
    let mut s = small();
    s.data.source = flowplay_core::data::Dataset::Circles;
    let mut app = app(s);
    app.training = true;
    app.train_for_a_frame();
    app.training = false;
    app.evaluate();
    app.evaluate();
    let eval = app.eval.last.expect("an evaluation finished");
    assert_eq!(eval.nll, None);
    assert!(app.curves.nll.is_empty());
}

/// Runs frames of `app`'s loop logic (no UI) until `done` or 60 s.
pub(super) fn run_until(app: &mut PlaygroundApp, mut done: impl FnMut(&PlaygroundApp) -> bool) {
    let started = Instant::now();
    while !done(app) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out; notices: {:?}",
            app.notice_text()
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
        if app.flow.stale {
            app.refresh_flow();
        }
    }
}

#[test]
fn reflow_starts_the_next_round_and_keeps_the_last_to_compare() {
    let mut app = app(small());
    app.training = true;
    run_until(&mut app, |a| a.engine.steps_done() >= 30);
    app.apply(Command::StartReflow);
    run_until(&mut app, |a| {
        a.engine.round() == 1 && !a.engine.reflow_pending()
    });
    assert_eq!(app.rounds.finished.len(), 1);
    assert!(app.rounds.finished[0].steps >= 30);
    app.apply(Command::Compare(Some(0)));
    assert!(app.flow.stale);
    run_until(&mut app, |a| !a.flow.stale);
    assert!(app.engine.flow(CURRENT).is_some() && app.engine.flow(COMPARED).is_some());
    let steps = app.engine.steps_done();
    run_until(&mut app, |a| a.engine.steps_done() > steps + 10);
    assert_eq!(app.status().round, 1);
    assert_eq!(
        app.curves.marks.last().map(|m| m.label.as_str()),
        Some("reflow round 1")
    );
    // The round remembers its path; on another path it is no longer drawn beside.
    assert_eq!(app.rounds.finished[0].path.label(), "Rectified flow");
    let mut ve = app.settings.clone();
    ve.training.path.kind = PathKind::Ve;
    app.apply(Command::Settings(Box::new(ve)));
    app.keep_compare_on_path();
    assert_eq!(app.rounds.compare, None);
    assert!(app.flow.stale);
    assert_eq!(app.rounds.finished[0].path.kind, PathKind::RectifiedFlow);
}

/// A headless device (llvmpipe in CI) as the app gets one, treated as a hardware GPU (its
/// views at full size); `None` where there is none and none is required.
pub(super) fn headless_gpu() -> Option<DeviceInfo> {
    let gpu = match flowplay_gpu::GpuContext::new_blocking() {
        Ok(gpu) => gpu,
        Err(e) => {
            assert!(!flowplay_gpu::gpu_required(), "no GPU: {e}");
            return None;
        }
    };
    Some(DeviceInfo {
        gpu: Some(GpuHandle {
            device: gpu.device.clone(),
            queue: gpu.queue.clone(),
            software: false,
        }),
        adapter: gpu.describe(),
        no_gpu: None,
    })
}

/// The GPU engine end to end on a headless device (llvmpipe in CI): training, the particles'
/// refresh, an evaluation read back without blocking, and a reflow round.
#[test]
fn the_gpu_engine_trains_draws_evaluates_and_reflows() {
    let Some(device) = headless_gpu() else {
        return;
    };
    let settings = Settings {
        compute: Compute::Gpu,
        ..small()
    };
    let mut app = PlaygroundApp::build(settings, device);
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
    // 64 Ki evaluations) is encoded over several frames; meanwhile the last finished particles
    // are drawn.
    run_until(&mut app, |a| a.flow.done.load(Ordering::Acquire));
    app.settings.sampling.particles = 20_000;
    app.refresh_flow();
    assert!(app.flow.pending.is_some());
    let drawn = |app: &PlaygroundApp| match app.engine.flow(CURRENT) {
        Some(Flow::Gpu(source)) => source.num_particles(),
        _ => 0,
    };
    assert_eq!(drawn(&app), 40);
    app.advance_flow();
    assert!(app.flow.pending.is_some());
    // A change under way starts the refresh afresh.
    app.settings.sampling.particles = 30_000;
    app.refresh_flow();
    assert_eq!(app.flow.pending.as_ref().map(|r| r.n), Some(30_000));
    let mut frames = 1;
    while app.flow.pending.is_some() {
        app.advance_flow();
        frames += 1;
        assert!(frames < 200, "the refresh never finished");
    }
    assert!(frames >= 2, "{frames} frames");
    assert_eq!(drawn(&app), 30_000);
    app.settings.sampling.particles = 40;
    app.training = false;
    run_until(&mut app, |a| {
        a.eval.last.is_some_and(|e| e.step == a.engine.steps_done())
    });
    let eval = app.eval.last.expect("an evaluation came back");
    assert!(
        eval.w2.is_finite() && eval.straightness.is_finite(),
        "{eval:?}"
    );
    assert!(eval.nll.is_some_and(f64::is_finite), "{eval:?}");
    app.apply(Command::StartReflow);
    run_until(&mut app, |a| {
        a.engine.round() == 1 && !a.engine.reflow_pending()
    });
    let steps = app.engine.steps_done();
    app.training = true;
    run_until(&mut app, |a| a.engine.steps_done() > steps + 5);
}

/// `settings` with every layer on, a canvas on screen, and a few steps of training drawn.
fn with_layers(mut settings: Settings, device: DeviceInfo) -> PlaygroundApp {
    for id in LayerId::ALL {
        settings.view.layers.set(id, true);
    }
    let mut app = PlaygroundApp::build(settings, device);
    app.canvas.rect = Some(egui::Rect::from_min_size(
        egui::pos2(0.0, 0.0),
        egui::vec2(600.0, 400.0),
    ));
    app.training = true;
    run_until(&mut app, |a| a.engine.steps_done() >= 10);
    app.training = false;
    app.refresh_flow();
    run_until(&mut app, |a| a.flow.done.load(Ordering::Acquire));
    app
}

/// Frames of views until `done` or 60 s.
fn views_until(app: &mut PlaygroundApp, mut done: impl FnMut(&PlaygroundApp) -> bool) {
    let ctx = egui::Context::default();
    let started = Instant::now();
    while !done(app) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "views timed out; notices: {:?}",
            app.notice_text()
        );
        app.engine.drain().expect("statistics come back");
        app.advance_flow();
        app.update_views(&ctx);
    }
}

/// v(t, x) of `model` at `x` (unconditional).
fn model_velocity(model: &flowplay_core::flow::FlowModel, t: f32, x: &[[f32; 2]]) -> Vec<[f32; 2]> {
    use flowplay_core::sampler::VelocityField;
    let field = flowplay_core::sampler::MlpField::new(&model.mlp, &model.params, model.spec.path);
    let mut out = vec![[0.0; 2]; x.len()];
    field.velocity(t, x, None, &mut out);
    out
}

fn field_points(grid: &flowplay_gpu::FieldGrid) -> Vec<[f32; 2]> {
    (0..grid.ny)
        .flat_map(|j| (0..grid.nx).map(move |i| grid.rect.cell_centre(grid.nx, grid.ny, i, j)))
        .collect()
}

#[test]
fn every_layer_is_computed_from_the_drawn_weights_on_the_cpu() {
    let mut app = with_layers(small(), no_device());
    app.player.time = 0.5;
    views_until(&mut app, |a| {
        let v = &a.layers.views;
        v.field.is_some() && v.density.is_some() && v.logp.is_some() && v.pairs.is_some()
    });
    let model = app
        .engine
        .drawn_model()
        .expect("the CPU draws with its own weights")
        .expect("weights");
    // The field: v_θ(0.5, ·) of the drawn weights at the cell centres, the arrows' grid
    // covering the visible plane.
    let field = app.layers.views.field.as_ref().expect("field");
    assert!((field.grid.t - 0.5).abs() < 1e-6);
    let world = app.canvas.view.world_rect(app.canvas.rect.expect("canvas"));
    assert_eq!(field.grid.rect, world);
    assert!(
        field.grid.nx > field.grid.ny,
        "600×400 px is wider than high"
    );
    let want = model_velocity(&model, 0.5, &field_points(&field.grid));
    assert_eq!(field.velocities.len(), want.len());
    for (got, want) in field.velocities.iter().zip(&want) {
        assert!((got[0] - want[0]).abs() < 1e-5 && (got[1] - want[1]).abs() < 1e-5);
    }
    // The density: a histogram of particles at t, its shorter side 64 bins.
    let density = app.layers.views.density.as_ref().expect("density");
    assert_eq!(density.ny, crate::engine::CPU_HEAT_BINS);
    assert!(
        density.texture.is_some(),
        "the CPU's heat map has a texture"
    );
    let counted: f32 = density.values.iter().sum();
    assert!(counted > 0.0, "particles fall inside the view");
    // The likelihood: the core's log p₁ at the cells' centres, with the chosen solver.
    let logp = app.layers.views.logp.as_ref().expect("logp");
    let (ask, _) = app.layers.views.logp_asked.clone().expect("asked");
    let want = model
        .log_likelihood(&ask.points(), None, 1.0, &ask.sampler)
        .expect("N(0, I) source");
    assert_eq!(logp.values.len(), want.logp.len());
    for (got, want) in logp.values.iter().zip(&want.logp) {
        assert!((got - want).abs() < 1e-4, "{got} vs {want}");
    }
    // The pairs: one batch, OT pairs no longer on average than independent ones.
    let pairs = app.layers.views.pairs.as_ref().expect("pairs");
    assert_eq!(pairs.x0.len(), 64);
    let mean = |x1: &[[f32; 2]]| {
        let total: f32 = (pairs.x0.iter().zip(x1))
            .map(|(a, b)| (a[0] - b[0]).hypot(a[1] - b[1]))
            .sum();
        total / x1.len() as f32
    };
    assert!(mean(&pairs.ot) <= mean(&pairs.independent) + 1e-6);
    // Turned off, a layer's view is dropped.
    app.apply(Command::Layer(LayerId::Logp, false));
    app.update_views(&egui::Context::default());
    assert!(app.layers.views.logp.is_none());
}

#[test]
fn the_stages_layer_takes_the_nearest_particles_step_apart() {
    let mut s = small();
    s.sampling.solver = Solver::Rk4;
    s.sampling.steps = 4;
    let mut app = with_layers(s, no_device());
    app.player.time = 0.3;
    let Some(Flow::Cpu(traj)) = app.engine.flow(CURRENT) else {
        panic!("CPU particles");
    };
    let at = crate::layers::position_at(traj, 7, 0.3);
    app.apply(Command::Inspect(at));
    assert!(!app.player.playing, "inspecting pauses");
    views_until(&mut app, |a| {
        a.layers
            .inspected
            .as_ref()
            .is_some_and(|i| i.view.is_some())
    });
    let inspected = app.layers.inspected.as_ref().expect("inspected");
    let view = inspected.view.as_ref().expect("view");
    let picked = inspected.particle;
    // RK4's four stages of the step that holds t = 0.3: from 0.25 to 0.5.
    assert_eq!(view.parts.stages.len(), 4);
    assert!((view.parts.t0 - 0.25).abs() < 1e-6 && (view.parts.t1 - 0.5).abs() < 1e-6);
    let Some(Flow::Cpu(traj)) = app.engine.flow(CURRENT) else {
        panic!("CPU particles");
    };
    let p = crate::layers::position_at(traj, picked, 0.3);
    assert!(
        (p[0] - at[0]).hypot(p[1] - at[1]) < 1e-4,
        "the nearest is the one asked"
    );
    // The combined step lands where the sampler's own step does.
    let end = traj.positions_of(picked)[2];
    assert!(
        (view.parts.next[0] - end[0]).abs() < 1e-5 && (view.parts.next[1] - end[1]).abs() < 1e-5,
        "{:?} vs {end:?}",
        view.parts.next
    );
    let start = traj.positions_of(picked)[1];
    assert!((view.parts.x[0] - start[0]).abs() < 1e-6 && (view.parts.x[1] - start[1]).abs() < 1e-6);
    // Stage by stage, then the combined step, then the next step's first stage.
    for shown in 2..=5 {
        app.apply(Command::NextStage);
        views_until(&mut app, |a| {
            a.layers
                .inspected
                .as_ref()
                .and_then(|i| i.view.as_ref())
                .is_some_and(|v| v.shown == shown)
        });
    }
    app.apply(Command::NextStage);
    assert!((app.player.time - 0.5).abs() < 1e-6, "{}", app.player.time);
    views_until(&mut app, |a| {
        a.layers
            .inspected
            .as_ref()
            .and_then(|i| i.view.as_ref())
            .is_some_and(|v| v.shown == 1 && (v.parts.t0 - 0.5).abs() < 1e-6)
    });
}

#[test]
fn the_likelihood_layer_of_a_data_to_data_model_is_refused_once_in_plain_words() {
    let mut s = small();
    s.data.source = flowplay_core::data::Dataset::Circles;
    let mut app = with_layers(s, no_device());
    views_until(&mut app, |a| {
        !a.settings.view.layers.contains(LayerId::Logp)
    });
    let notice = app.notice_text().unwrap_or_default();
    assert!(notice.contains("likelihood"), "{notice}");
    // The others go on.
    views_until(&mut app, |a| {
        a.layers.views.field.is_some() && a.layers.views.density.is_some()
    });
    assert!(app.settings.view.layers.contains(LayerId::Field));
}

/// The GPU's views agree with the CPU computed from the same (drawn) weights.
#[test]
fn the_gpu_views_match_the_cpu_on_the_drawn_weights() {
    let Some(device) = headless_gpu() else {
        return;
    };
    let settings = Settings {
        compute: Compute::Gpu,
        ..small()
    };
    let mut app = with_layers(settings, device);
    assert_eq!(app.engine.backend(), Backend::Gpu);
    app.player.time = 0.7;
    views_until(&mut app, |a| {
        let v = &a.layers.views;
        v.field
            .as_ref()
            .is_some_and(|f| (f.grid.t - 0.7).abs() < 1e-6)
            && v.density.is_some()
            && v.logp.is_some()
            && v.pairs.is_some()
    });
    let model = loop {
        if let Some(model) = app.engine.drawn_model() {
            break model.expect("read back");
        }
        app.engine.drain().expect("drain");
    };
    let field = app.layers.views.field.as_ref().expect("field");
    assert!(
        field.arrows.is_some(),
        "the GPU draws the arrows from its buffer"
    );
    let want = model_velocity(&model, 0.7, &field_points(&field.grid));
    const FIELD_TOL: f32 = 1e-4;
    for (got, want) in field.velocities.iter().zip(&want) {
        assert!(
            (got[0] - want[0]).abs() < FIELD_TOL && (got[1] - want[1]).abs() < FIELD_TOL,
            "{got:?} vs {want:?}"
        );
    }
    let density = app.layers.views.density.as_ref().expect("density");
    assert_eq!(density.ny, crate::engine::GPU_HEAT_BINS);
    assert!(density.gpu.is_some());
    let counted: f32 = density.values.iter().sum();
    // The floor: p_t from at least 100 k particles, most of them in view.
    assert!(counted > 50_000.0, "{counted} particles binned");
    let logp = app.layers.views.logp.as_ref().expect("logp");
    let (ask, _) = app.layers.views.logp_asked.clone().expect("asked");
    let points = ask.points();
    // A sample of cells against the core (the whole map on the CPU takes a while).
    let every = 97;
    let sample: Vec<[f32; 2]> = points.iter().step_by(every).copied().collect();
    let want = model
        .log_likelihood(&sample, None, 1.0, &ask.sampler)
        .expect("N(0, I) source");
    const LOGP_TOL: f32 = 2e-3;
    for (k, want) in want.logp.iter().enumerate() {
        let got = logp.values[k * every];
        assert!(
            (got - want).abs() < LOGP_TOL,
            "cell {}: {got} vs {want}",
            k * every
        );
    }
}

/// A training change while paused (batch, coupling) keeps the drawn weights' views following
/// the scrubber, and draws the pairs of the new batch.
#[test]
fn views_follow_the_scrubber_after_a_training_change_while_paused() {
    let mut app = with_layers(small(), no_device());
    views_until(&mut app, |a| a.layers.views.pairs.is_some());
    let mut edited = app.settings.clone();
    edited.training.batch = 32;
    edited.training.ot = true;
    app.apply(Command::Settings(Box::new(edited)));
    assert!(!app.training);
    app.player.time = 0.6;
    views_until(&mut app, |a| {
        let v = &a.layers.views;
        v.field
            .as_ref()
            .is_some_and(|f| (f.grid.t - 0.6).abs() < 1e-6)
            && v.pairs.as_ref().is_some_and(|p| p.x0.len() == 32)
    });
}

/// A new dataset brings a view that shows it, whatever the user had panned and zoomed to.
#[test]
fn a_dataset_change_fits_the_view_to_the_new_data() {
    let mut a = app(small());
    let rect = egui::Rect::from_min_size(egui::pos2(0.0, 0.0), egui::vec2(400.0, 400.0));
    let zoomed = a
        .canvas
        .view
        .panned_zoomed(rect, egui::vec2(120.0, 0.0), 8.0, None);
    a.apply(Command::View(zoomed));
    assert_eq!(a.canvas.view, zoomed);
    let mut edited = a.settings.clone();
    edited.data.dataset = flowplay_core::data::Dataset::SwissRoll;
    a.apply(Command::Settings(Box::new(edited)));
    assert_eq!(a.canvas.view, a.canvas.fit, "refitted");
    let world = a.canvas.view.world_rect(rect);
    for p in a.data.shown.iter().map(|d| d.0) {
        assert!(
            p[0] >= world.min[0]
                && p[0] <= world.max[0]
                && p[1] >= world.min[1]
                && p[1] <= world.max[1],
            "{p:?} in view {world:?}"
        );
    }
}

/// A change of the coupling or of the time sampling is marked on the plots (the loss after it
/// is of another problem); a learning-rate change is not.
#[test]
fn new_training_problems_are_marked_on_the_plots() {
    let mut a = app(small());
    let mut edited = a.settings.clone();
    edited.optim.lr = 1e-3;
    a.apply(Command::Settings(Box::new(edited.clone())));
    assert!(a.curves.marks.is_empty());
    edited.training.ot = true;
    a.apply(Command::Settings(Box::new(edited.clone())));
    edited.training.logit_normal = false;
    a.apply(Command::Settings(Box::new(edited)));
    let labels: Vec<&str> = a.curves.marks.iter().map(|m| m.label.as_str()).collect();
    assert_eq!(labels, ["OT coupling", "t uniform"]);
}

/// The coupling layer draws the pairs training uses (its toggle shows the other): after a
/// coupling change, in a new model, and in a second run that compares couplings.
#[test]
fn the_pairs_layer_draws_the_coupling_training_uses() {
    let mut a = app(small());
    assert!(!a.layers.pairs_ot);
    let mut edited = a.settings.clone();
    edited.training.ot = true;
    a.apply(Command::Settings(Box::new(edited.clone())));
    assert!(a.layers.pairs_ot, "a change of coupling");
    a.apply(Command::PairsOt(false));
    edited.data.seed += 1;
    a.apply(Command::Settings(Box::new(edited.clone())));
    assert!(
        !a.layers.pairs_ot,
        "the user's choice kept by a new model of the same coupling"
    );
    assert!(app(edited).layers.pairs_ot, "a model built with OT");
    let mut b = app(small());
    b.set_second(Some(crate::settings::Comparison::Coupling));
    let second = b.second.as_ref().expect("a second run");
    assert!(second.run.settings.training.ot && second.run.layers.pairs_ot);
}

/// The lab sweeps every setting of the grid in the background, the GPU's runs giving the CPU's
/// figures for the same model; a new sweep starts only once the model has trained.
#[test]
fn the_lab_sweeps_the_grid_alike_on_the_gpu_and_the_cpu() {
    let sweep_of = |a: &mut PlaygroundApp| {
        let started = Instant::now();
        while a.engine.lab().done.is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the sweep ends"
            );
            let held_out = a.data.held_out.clone();
            a.engine
                .lab_frame(&held_out, 1.0, true, false)
                .expect("a lab frame");
        }
        a.engine.lab().done.clone().expect("done")
    };
    let mut cpu = app(small());
    let done = sweep_of(&mut cpu);
    let grid = flowplay_core::sweep::grid(flowplay_core::sweep::MAX_NFE);
    assert_eq!(done.points.len(), grid.len());
    assert_eq!(done.step, 0);
    for (p, s) in done.points.iter().zip(&grid) {
        assert_eq!((p.solver, p.steps), (s.solver, s.steps));
        assert!(
            p.w2.is_finite() && p.w2 > 0.0 && p.nll.is_some_and(f64::is_finite),
            "{p:?}"
        );
    }
    // Nothing trained since: no new sweep.
    let held_out = cpu.data.held_out.clone();
    cpu.engine
        .lab_frame(&held_out, 1.0, true, false)
        .expect("a lab frame");
    assert!(cpu.engine.lab().current.is_none());
    // Training, but not yet past its first steps: no sweep of a network that is still noise.
    cpu.training = true;
    run_until(&mut cpu, |a| a.engine.steps_done() >= 3);
    cpu.engine
        .lab_frame(&held_out, 1.0, true, true)
        .expect("a lab frame");
    assert!(cpu.engine.lab().current.is_none());
    // Paused there: the next sweep begins, of the new step.
    cpu.engine
        .lab_frame(&held_out, 1.0, true, false)
        .expect("a lab frame");
    let current = cpu.engine.lab().current.as_ref().expect("a new sweep");
    assert!(current.step >= 3);

    let Some(device) = headless_gpu() else {
        return;
    };
    let mut gpu = PlaygroundApp::build(
        Settings {
            compute: Compute::Gpu,
            ..small()
        },
        device,
    );
    let on_gpu = sweep_of(&mut gpu);
    for (g, c) in on_gpu.points.iter().zip(&done.points) {
        assert_eq!((g.solver, g.steps), (c.solver, c.steps));
        assert!((g.w2 - c.w2).abs() < 2e-3, "{g:?} vs {c:?}");
        let (gn, cn) = (g.nll.expect("gpu nll"), c.nll.expect("cpu nll"));
        assert!((gn - cn).abs() < 2e-2, "{g:?} vs {c:?}");
    }
}
