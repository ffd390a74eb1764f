//! The panels driven with egui_kittest: a click or a drag comes back as the command it asks
//! for, and nothing changes until the command is applied.

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;

use crate::app::{DeviceInfo, PlaygroundApp};
use crate::command::{Command, Direction};
use crate::layers::LayerId;
use crate::settings::{Compute, PathKind, Settings};

/// A small CPU app and the commands its panel pushed last frame.
struct Bench {
    app: PlaygroundApp,
    commands: Vec<Command>,
}

fn bench() -> Bench {
    let mut s = Settings::default();
    s.model.hidden = 32;
    s.sampling.particles = 40;
    s.sampling.steps = 5;
    s.compute = Compute::Cpu;
    let device = DeviceInfo {
        gpu: None,
        adapter: "none".into(),
        no_gpu: None,
    };
    Bench {
        app: PlaygroundApp::build(s, device),
        commands: Vec::new(),
    }
}

/// A harness drawing one panel; the commands of the last frame are kept.
fn harness(panel: fn(&mut egui::Ui, &PlaygroundApp, &mut Vec<Command>)) -> Harness<'static, Bench> {
    Harness::builder()
        .with_size(egui::vec2(900.0, 1400.0))
        .build_ui_state(
            move |ui, bench: &mut Bench| {
                let mut out = Vec::new();
                panel(ui, &bench.app, &mut out);
                if !out.is_empty() {
                    bench.commands = out;
                }
            },
            bench(),
        )
}

#[test]
fn each_layer_toggle_asks_for_its_layer_and_changes_nothing_by_itself() {
    let mut h = harness(crate::panels::layers::ui);
    h.run();
    for id in [
        LayerId::Field,
        LayerId::Density,
        LayerId::Logp,
        LayerId::Stages,
        LayerId::Pairs,
    ] {
        h.get_by_label(id.label()).click();
        h.run();
        assert_eq!(h.state().commands, vec![Command::Layer(id, true)], "{id:?}");
        assert!(
            !h.state().app.settings.view.layers.contains(id),
            "not applied by the panel"
        );
    }
    // Data is on by default: its toggle turns it off.
    h.get_by_label(LayerId::Data.label()).click();
    h.run();
    assert_eq!(
        h.state().commands,
        vec![Command::Layer(LayerId::Data, false)]
    );
}

#[test]
fn a_layer_that_is_on_offers_its_options() {
    let mut h = harness(crate::panels::layers::ui);
    let mut b = bench();
    for id in [LayerId::Field, LayerId::Pairs, LayerId::Stages] {
        b.app.apply(Command::Layer(id, true));
    }
    h.state_mut().app = b.app;
    h.run();
    h.get_by_label("streamlines").click();
    h.run();
    assert_eq!(h.state().commands, vec![Command::Streamlines(true)]);
    h.get_by_label("minibatch OT").click();
    h.run();
    assert_eq!(h.state().commands, vec![Command::PairsOt(true)]);
    assert!(
        h.query_by_label("Click a particle on the canvas to take its step apart.")
            .is_some()
    );
}

#[test]
fn the_brush_panel_asks_for_the_brush_and_the_drawing() {
    let mut h = harness(crate::panels::brush::ui);
    h.run();
    h.get_by_label("brush on the canvas").click();
    h.run();
    let [Command::Brush(tool)] = h.state().commands.as_slice() else {
        panic!("one brush command: {:?}", h.state().commands);
    };
    assert!(tool.on);
    assert!(!h.state().app.brush.on, "applied only by the app");
    h.get_by_label("Train on the drawing").click();
    h.run();
    assert_eq!(
        h.state().commands,
        vec![Command::UseDrawing(crate::app::Role::Data)]
    );
}

#[test]
fn the_player_asks_to_play_step_and_seek() {
    let mut h = harness(crate::panels::player::ui);
    h.run();
    h.get_by_label("Pause").click();
    h.run();
    assert_eq!(h.state().commands, vec![Command::TogglePlay]);
    h.get_by_label("step on").click();
    h.run();
    assert_eq!(h.state().commands, vec![Command::Step(Direction::On)]);
    h.get_by_label("step back").click();
    h.run();
    assert_eq!(h.state().commands, vec![Command::Step(Direction::Back)]);
    assert!(
        h.state().app.player.playing,
        "the panel changed nothing itself"
    );
}

#[test]
fn the_controls_ask_to_train_reset_and_edit_settings() {
    let mut h = harness(|ui, app, out| {
        crate::panels::controls::header_ui(ui, app, out);
        crate::panels::controls::settings_ui(ui, app, out);
    });
    h.run();
    h.get_by_label("Train").click();
    h.run();
    assert_eq!(h.state().commands, vec![Command::ToggleTraining]);
    h.get_by_label("Reset").click();
    h.run();
    assert_eq!(h.state().commands, vec![Command::Reset]);
    // Nothing replaced yet: Undo is there, and does nothing.
    h.state_mut().commands.clear();
    h.get_by_label("Undo").click();
    h.run();
    assert!(h.state().commands.is_empty(), "{:?}", h.state().commands);
    h.state_mut().app.undo = Some(Box::new(bench().app));
    h.run();
    h.get_by_label("Undo").click();
    h.run();
    assert_eq!(h.state().commands, vec![Command::Undo]);
    h.get_by_label("VP (cosine)").click();
    h.run();
    let [Command::Settings(edited)] = h.state().commands.as_slice() else {
        panic!("one settings command: {:?}", h.state().commands);
    };
    assert_eq!(edited.training.path.kind, PathKind::VpCosine);
    assert_eq!(
        h.state().app.settings.training.path.kind,
        PathKind::RectifiedFlow,
        "applied only by the app"
    );
}

#[test]
fn the_lessons_open_change_and_move_on_by_command() {
    let mut h = harness(crate::panels::lessons::ui);
    h.run();
    let third = &crate::lessons::LESSONS[2];
    h.get_by_label(&format!("3. {}", third.title)).click();
    h.run();
    assert_eq!(h.state().commands, vec![Command::Lesson(Some(2))]);
    assert_eq!(h.state().app.chrome.lesson, None, "applied only by the app");
    // With lesson 3 open: its text, its change and the way on.
    h.state_mut().app.chrome.lesson = Some(2);
    h.run();
    assert!(h.query_by_label(third.look).is_some());
    h.get_by_label("Make the change").click();
    h.run();
    assert_eq!(h.state().commands, vec![Command::LessonChange]);
    h.get_by_label("next >").click();
    h.run();
    assert_eq!(h.state().commands, vec![Command::Lesson(Some(3))]);
    h.get_by_label("all lessons").click();
    h.run();
    assert_eq!(h.state().commands, vec![Command::Lesson(None)]);
}
