//! The playground's entry points: a native window, or the web page's canvas.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

#[cfg(not(target_arch = "wasm32"))]
fn main() -> eframe::Result {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1100.0, 760.0])
            .with_min_inner_size([640.0, 480.0]),
        ..Default::default()
    };
    eframe::run_native(
        "flowplay",
        options,
        // Settings as in the web page's URL hash, e.g. `flowplay-app 'train=1&solver=heun'`.
        Box::new(|cc| {
            Ok(Box::new(flowplay_app::PlaygroundApp::with_query(
                cc,
                std::env::args().nth(1),
            )))
        }),
    )
}

#[cfg(target_arch = "wasm32")]
fn main() {
    use eframe::wasm_bindgen::JsCast as _;

    eframe::WebLogger::init(log::LevelFilter::Info).ok();
    wasm_bindgen_futures::spawn_local(async {
        let Some(document) = web_sys::window().and_then(|w| w.document()) else {
            log::error!("flowplay: no document to run in");
            return;
        };
        let Some(canvas) = document
            .get_element_by_id("flowplay_canvas")
            .and_then(|e| e.dyn_into::<web_sys::HtmlCanvasElement>().ok())
        else {
            log::error!("flowplay: the page has no <canvas id=\"flowplay_canvas\">");
            return;
        };
        let started = eframe::WebRunner::new()
            .start(
                canvas,
                eframe::WebOptions::default(),
                Box::new(|cc| Ok(Box::new(flowplay_app::PlaygroundApp::new(cc)))),
            )
            .await;
        if let Some(loading) = document.get_element_by_id("loading") {
            match started {
                Ok(()) => loading.remove(),
                Err(error) => {
                    loading.set_inner_html(
                        "<p>flowplay could not start in this browser. The developer console says why.</p>",
                    );
                    log::error!("flowplay: failed to start: {error:?}");
                }
            }
        }
    });
}
