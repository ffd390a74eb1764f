//! The playground driven through its UI with egui_kittest (no GPU here: the CPU reference
//! trains): press Train, switch the path, start a reflow round, turn layers on and off, and read
//! the app's status.

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use flowplay_app::PlaygroundApp;

fn status(harness: &Harness<'_, PlaygroundApp>) -> serde_json::Value {
    serde_json::from_str(&harness.state().status_json()).expect("the status is JSON")
}

fn harness() -> Harness<'static, PlaygroundApp> {
    Harness::builder()
        .with_size(egui::vec2(1280.0, 1600.0))
        .build_eframe(|cc| {
            PlaygroundApp::with_query(
                cc,
                Some("width=32&batch=64&particles=200&steps=10".to_string()),
            )
        })
}

/// Runs frames until `done` holds (at most `frames`).
fn run_until(
    harness: &mut Harness<'_, PlaygroundApp>,
    frames: usize,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    for _ in 0..frames {
        harness.step();
        let s = status(harness);
        if done(&s) {
            return s;
        }
    }
    panic!("not reached in {frames} frames: {}", status(harness));
}

#[test]
fn train_switch_the_path_and_reflow_through_the_ui() {
    let mut harness = harness();
    harness.run_steps(2);
    let s = status(&harness);
    assert_eq!(s["backend"], "cpu");
    assert_eq!(s["training"], false);
    assert_eq!(s["particles"], 200);
    // No wgpu renderer in the harness: the CPU reference trains, and the app says why.
    let notice = s["notice"].as_str().unwrap_or_default();
    assert!(notice.contains("CPU reference"), "{notice}");

    harness.get_by_label("Train").click();
    let s = run_until(&mut harness, 200, |s| s["step"].as_u64() >= Some(40));
    assert_eq!(s["training"], true);
    assert!(
        s["flow_version"].as_u64() >= Some(1),
        "particles were integrated"
    );

    harness.get_by_label("VP (cosine)").click();
    let before = s["step"].as_u64().unwrap_or(0);
    let s = run_until(&mut harness, 200, |s| {
        s["path"] == "vp-cosine" && s["step"].as_u64() > Some(before + 20)
    });
    assert!(
        !s["notice"].as_str().unwrap_or_default().contains("paused"),
        "switching the path keeps training: {s}"
    );

    harness.get_by_label("Reflow to round 1").click();
    let s = run_until(&mut harness, 200, |s| s["round"] == 1);
    assert_eq!(s["reflow_pending"], false);
    harness.step();
    assert!(harness.query_by_label("training round 1").is_some());
    harness.get_by_label("Pause training").click();
    harness.step();
    assert_eq!(status(&harness)["training"], false);
}

#[test]
fn settings_from_the_address_outside_the_sliders_ranges_are_kept() {
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1280.0, 1600.0))
        .build_eframe(|cc| {
            PlaygroundApp::with_query(
                cc,
                Some("seed=500&depth=6&width=32&particles=200&steps=150".to_string()),
            )
        });
    harness.run_steps(3);
    let s = status(&harness);
    let settings = s["settings"].as_str().unwrap_or_default().to_string();
    for kept in ["seed=500", "depth=6", "steps=150", "particles=200"] {
        assert!(settings.contains(kept), "{kept} in {settings}");
    }
}

#[test]
fn bad_settings_in_the_address_are_explained() {
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1280.0, 1600.0))
        .build_eframe(|cc| PlaygroundApp::with_query(cc, Some("solver=warp&width=32".to_string())));
    harness.run_steps(2);
    let s = status(&harness);
    let notice = s["notice"].as_str().unwrap_or_default();
    assert!(notice.contains("solver=warp"), "{notice}");
    assert!(notice.contains("none were applied"), "{notice}");
    assert_eq!(s["solver"], "euler");
}

fn layers(s: &serde_json::Value) -> Vec<String> {
    s["layers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn layer_toggles_draw_their_layers_and_say_so_in_the_status() {
    let mut harness = harness();
    harness.run_steps(2);
    let s = status(&harness);
    assert_eq!(layers(&s), ["data", "trails", "particles"], "{s}");
    harness.get_by_label("Train").click();
    run_until(&mut harness, 200, |s| s["step"].as_u64() >= Some(20));
    // One click a frame: a toggle that is on shows its options and moves the ones below.
    harness.get_by_label("vector field").click();
    harness.run_steps(2);
    harness.get_by_label("density p_t").click();
    let s = run_until(&mut harness, 100, |s| {
        let l = layers(s);
        l.iter().any(|k| k == "field") && l.iter().any(|k| k == "density")
    });
    let settings = s["settings"].as_str().unwrap_or_default();
    assert!(
        settings.contains("layers=data,particles,trails,field,density"),
        "{settings}"
    );
    harness.get_by_label("vector field").click();
    let s = run_until(&mut harness, 100, |s| {
        !layers(s).iter().any(|k| k == "field")
    });
    assert!(layers(&s).iter().any(|k| k == "density"), "{s}");
}

/// A click of the primary button at `pos`.
fn click_at(harness: &mut Harness<'_, PlaygroundApp>, pos: egui::Pos2) {
    harness.event(egui::Event::PointerMoved(pos));
    for pressed in [true, false] {
        harness.event(egui::Event::PointerButton {
            pos,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: egui::Modifiers::NONE,
        });
    }
}

#[test]
fn every_layer_named_in_the_address_is_drawn_and_a_click_takes_a_step_apart() {
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1280.0, 1600.0))
        .build_eframe(|cc| {
            PlaygroundApp::with_query(
                cc,
                Some(
                    "train=1&width=32&batch=64&particles=200&solver=rk4&steps=8\
                     &layers=data,particles,endpoints,field,density,logp,stages,pairs"
                        .to_string(),
                ),
            )
        });
    let s = run_until(&mut harness, 300, |s| {
        let l = layers(s);
        ["field", "density", "logp", "pairs", "endpoints"]
            .iter()
            .all(|k| l.iter().any(|d| d == k))
    });
    assert_eq!(s["training"], true);
    assert!(!layers(&s).iter().any(|k| k == "trails"), "{s}");
    // The canvas fills the window right of the controls: a click there picks a particle.
    harness.get_by_label("Pause training").click();
    harness.step();
    click_at(&mut harness, egui::pos2(900.0, 400.0));
    let s = run_until(&mut harness, 100, |s| {
        layers(s).iter().any(|k| k == "stages")
    });
    assert_eq!(s["training"], false);
    // Stage by stage: RK4's four, the combined step, and on to the next step.
    assert!(harness.query_by_label_contains("stage 1 of 4").is_some());
    for shown in [
        "stage 2 of 4",
        "stage 3 of 4",
        "stage 4 of 4",
        "the combined step",
    ] {
        harness.get_by_label("next stage").click();
        harness.run_steps(2);
        assert!(harness.query_by_label_contains(shown).is_some(), "{shown}");
    }
    harness.get_by_label("next stage").click();
    harness.run_steps(2);
    assert!(harness.query_by_label_contains("stage 1 of 4").is_some());
}

/// Painting on the canvas with the brush, then training on the drawing, all through the UI.
#[test]
fn the_brush_paints_on_the_canvas_and_the_drawing_becomes_the_data() {
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1280.0, 2600.0))
        .build_eframe(|cc| {
            PlaygroundApp::with_query(
                cc,
                Some("width=32&batch=64&particles=200&steps=10".to_string()),
            )
        });
    harness.run_steps(2);
    // The brush's section is folded until opened.
    assert!(harness.query_by_label("brush on the canvas").is_none());
    harness.get_by_label("Brush").click();
    harness.run_steps(2);
    harness.get_by_label("brush on the canvas").click();
    harness.run_steps(2);
    // A drag across the canvas, right of the controls.
    let (from, to) = (egui::pos2(800.0, 500.0), egui::pos2(1000.0, 600.0));
    harness.event(egui::Event::PointerMoved(from));
    harness.event(egui::Event::PointerButton {
        pos: from,
        button: egui::PointerButton::Primary,
        pressed: true,
        modifiers: egui::Modifiers::NONE,
    });
    harness.step();
    for k in 1..=10 {
        let p = from + (to - from) * (k as f32 / 10.0);
        harness.event(egui::Event::PointerMoved(p));
        harness.step();
    }
    harness.event(egui::Event::PointerButton {
        pos: to,
        button: egui::PointerButton::Primary,
        pressed: false,
        modifiers: egui::Modifiers::NONE,
    });
    harness.run_steps(2);
    let drawn = harness.state().status_json();
    assert!(
        harness.query_by_label_contains("points drawn").is_some(),
        "{drawn}"
    );
    harness.get_by_label("Train on the drawing").click();
    let s = run_until(&mut harness, 20, |s| s["data"] == "your drawing");
    assert!(s["data_points"].as_u64().unwrap_or(0) >= 40, "{s}");
}

/// A phone-sized page: the controls fold into a sheet, the canvas takes the whole width, and
/// the sheet comes up with the controls.
#[test]
fn a_narrow_page_puts_the_controls_in_a_sheet_and_the_canvas_across() {
    let mut harness = Harness::builder()
        .with_size(egui::vec2(390.0, 844.0))
        .build_eframe(|cc| {
            PlaygroundApp::with_query(cc, Some("width=32&particles=200&steps=10".to_string()))
        });
    harness.run_steps(3);
    let s = status(&harness);
    let rect = s["canvas_rect"].as_array().expect("the canvas is drawn");
    let (x, width) = (rect[0].as_f64().unwrap(), rect[2].as_f64().unwrap());
    assert!(width >= 350.0, "the canvas spans the page: {rect:?}");
    assert!(x >= 0.0 && x + width <= 390.5, "and stays on it: {rect:?}");
    assert!(
        harness
            .query_by_label("Data, path, model, sampling")
            .is_none(),
        "the controls are folded away"
    );
    harness.get_by_label("Train").click();
    harness.run_steps(2);
    assert_eq!(
        status(&harness)["training"],
        true,
        "the bar keeps Train at hand"
    );
    harness.get_by_label("Controls").click();
    harness.run_steps(3);
    assert!(
        harness
            .query_by_label("Data, path, model, sampling")
            .is_some()
    );
    assert!(harness.query_by_label("Hide controls").is_some());
}

/// `#lesson=3` opens the third lesson with its playground, training.
#[test]
fn a_lesson_opens_from_the_address() {
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1280.0, 1600.0))
        .build_eframe(|cc| {
            PlaygroundApp::with_query(cc, Some("lesson=3&width=32&particles=200".to_string()))
        });
    harness.run_steps(3);
    let s = status(&harness);
    assert_eq!(s["lesson"], 3);
    assert_eq!(s["training"], true);
    assert!(
        s["data"]
            .as_str()
            .unwrap_or_default()
            .contains("8gaussians"),
        "{s}"
    );
    assert!(
        s["settings"]
            .as_str()
            .unwrap_or_default()
            .contains("width=32")
    );
    assert!(harness.query_by_label("Make the change").is_some());
    harness.get_by_label("Make the change").click();
    harness.run_steps(3);
    assert_eq!(status(&harness)["path"], "vp-cosine", "lesson 3's change");
}

fn key(harness: &mut Harness<'_, PlaygroundApp>, key: egui::Key) {
    harness.key_press(key);
    harness.run_steps(2);
}

/// Every shortcut of the help list does what it says.
#[test]
fn the_keyboard_shortcuts_work() {
    let mut harness = harness();
    harness.run_steps(2);
    key(&mut harness, egui::Key::Space);
    assert_eq!(status(&harness)["training"], true);
    run_until(&mut harness, 200, |s| s["step"].as_u64() >= Some(10));
    key(&mut harness, egui::Key::Space);
    assert_eq!(status(&harness)["training"], false);
    // P pauses the particles, → and ← step them along the solver's grid (10 steps).
    let playing = status(&harness)["playing"].as_bool().unwrap();
    key(&mut harness, egui::Key::P);
    assert_eq!(status(&harness)["playing"], !playing);
    let t0 = status(&harness)["player_t"].as_f64().unwrap();
    key(&mut harness, egui::Key::ArrowRight);
    let t1 = status(&harness)["player_t"].as_f64().unwrap();
    assert!(t1 > t0 && t1 - t0 <= 0.1 + 1e-6, "{t0} -> {t1}");
    key(&mut harness, egui::Key::ArrowLeft);
    let t2 = status(&harness)["player_t"].as_f64().unwrap();
    assert!(t2 < t1, "{t1} -> {t2}");
    key(&mut harness, egui::Key::Questionmark);
    assert!(
        harness.query_by_label("Keyboard").is_some(),
        "the help overlay"
    );
    assert!(
        harness
            .query_by_label_contains("open lesson 1 to 9")
            .is_some()
    );
    key(&mut harness, egui::Key::Escape);
    assert!(harness.query_by_label("Keyboard").is_none());
    // L folds the layers away and opens them again.
    assert!(harness.query_by_label("vector field").is_some());
    key(&mut harness, egui::Key::L);
    assert!(harness.query_by_label("vector field").is_none());
    key(&mut harness, egui::Key::L);
    assert!(harness.query_by_label("vector field").is_some());
    // 2 opens lesson 2.
    key(&mut harness, egui::Key::Num2);
    let s = status(&harness);
    assert_eq!(s["lesson"], 2);
    assert!(
        s["settings"]
            .as_str()
            .unwrap_or_default()
            .contains("layers=data,pairs")
    );
    // R resets: a new model, the trained one one Undo away.
    run_until(&mut harness, 300, |s| s["step"].as_u64() >= Some(5));
    key(&mut harness, egui::Key::R);
    let s = status(&harness);
    assert!(
        s["notice"]
            .as_str()
            .unwrap_or_default()
            .contains("one Undo away"),
        "{s}"
    );
}

/// Opening the lab starts its sweep; the sweep's progress shows under its heading.
#[test]
fn the_lab_sweeps_while_open() {
    let mut harness = harness();
    harness.run_steps(2);
    assert!(harness.query_by_label_contains("settings").is_none());
    harness.get_by_label("Solver × NFE lab").click();
    // The lab keeps to a fifth of the time: a sweep takes a few seconds here.
    let started = std::time::Instant::now();
    while started.elapsed().as_secs() < 60 {
        harness.step();
        if harness
            .query_by_label_contains("the model of step 0, measured in")
            .is_some()
        {
            return;
        }
    }
    panic!("the sweep did not finish in 60 s");
}

/// A second run beside the first through the UI: both train, both are evaluated, the two
/// canvases say what each runs, and the difference in W2 is stated.
#[test]
fn two_runs_train_side_by_side() {
    let mut harness = harness();
    harness.run_steps(2);
    harness.get_by_label("Two runs side by side").click();
    harness.run_steps(2);
    harness.get_by_label("compare with another path").click();
    harness.run_steps(2);
    assert!(harness.query_by_label("A: Rectified flow").is_some());
    assert!(harness.query_by_label("B: VP (cosine)").is_some());
    harness.get_by_label("Train").click();
    let s = run_until(&mut harness, 2000, |s| {
        s["w2"].as_f64().is_some()
            && s["second"]["w2"].as_f64().is_some()
            && s["second"]["step"].as_u64() >= Some(40)
    });
    assert_eq!(s["second"]["runs"], "VP (cosine)");
    assert!(
        s["second"]["flow_version"].as_u64() >= Some(1),
        "B drew particles"
    );
    assert!(harness.query_all_by_label_contains(": W2 A ").count() >= 1);
    // Step for step: neither run is far ahead of the other.
    let (a, b) = (
        s["step"].as_u64().unwrap(),
        s["second"]["step"].as_u64().unwrap(),
    );
    assert!(a.abs_diff(b) <= 100, "A at step {a}, B at {b}");
    harness.get_by_label("End the second run").click();
    harness.run_steps(2);
    assert!(status(&harness)["second"].is_null());
}
