//! The playground driven through its UI with egui_kittest (no GPU here: the CPU reference
//! trains): press Train, switch the path, start a reflow round, and read the app's status.

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
