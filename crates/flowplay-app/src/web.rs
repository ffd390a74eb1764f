//! What the page exposes and reads: a JSON status for tests and scripts (a hidden
//! `<pre id="flowplay-status">`, and the title), and the settings in the URL hash, applied live
//! when the hash changes. Natively the status goes to the window title.

use serde::Serialize;

/// The playground's state in one line of JSON, rewritten every frame.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Status {
    /// "gpu" or "cpu".
    pub(crate) backend: &'static str,
    /// The adapter drawing the page (and training, on the GPU).
    pub(crate) adapter: String,
    pub(crate) training: bool,
    pub(crate) step: u64,
    /// Mean loss of the most recent steps.
    pub(crate) loss: Option<f64>,
    pub(crate) steps_per_sec: f64,
    pub(crate) fps: f64,
    /// Frames drawn since the app started (with `step`, the figures over a longer span).
    pub(crate) frames: u64,
    /// Particles asked for, and drawn (fewer when clamped to the device's limits).
    pub(crate) particles: usize,
    pub(crate) particles_drawn: usize,
    pub(crate) solver: &'static str,
    /// Classes of a conditional model (0: unconditional) and the guidance scale.
    pub(crate) classes: u32,
    pub(crate) cfg_scale: f32,
    pub(crate) path: &'static str,
    /// The latest W2 against held-out data, and the step it was measured at.
    pub(crate) w2: Option<f64>,
    pub(crate) w2_step: Option<u64>,
    /// Its straightness (0 for straight paths).
    pub(crate) straightness: Option<f64>,
    /// The negative log-likelihood of held-out data at that step (nats per point), where the
    /// model's source is N(0, I).
    pub(crate) nll: Option<f64>,
    /// The reflow round being trained, and whether its coupling is still being built.
    pub(crate) round: usize,
    pub(crate) reflow_pending: bool,
    /// Increases whenever the particles are re-integrated.
    pub(crate) flow_version: u64,
    /// Seconds the last particle refresh took, from its start until the device finished it.
    pub(crate) refresh_secs: Option<f64>,
    /// Seconds the last W2 evaluation took, from its start to its result.
    pub(crate) eval_secs: Option<f64>,
    /// The canvas layers drawn in the last frame.
    pub(crate) layers: Vec<&'static str>,
    pub(crate) notice: Option<String>,
    /// The canvas's [x, y, width, height] in CSS pixels (for tests), once drawn.
    pub(crate) canvas_rect: Option<[f32; 4]>,
    /// The lesson open (1-based), if any.
    pub(crate) lesson: Option<usize>,
    /// Settings the lab has measured (18 to a sweep) since it last started afresh (a new
    /// model, path or data).
    pub(crate) lab_measured: usize,
    /// A second run beside this one: what it changes, and how far it is.
    pub(crate) second: Option<SecondStatus>,
    /// The player's t, and whether it plays.
    pub(crate) player_t: f32,
    pub(crate) playing: bool,
    /// What the flow trains on: a built-in dataset's name, or an imported file's.
    pub(crate) data: String,
    /// Points in the training pool.
    pub(crate) data_points: usize,
    /// Every setting, in the URL hash's form.
    pub(crate) settings: String,
    /// A picture or video being taken: "GIF 12 of 41".
    pub(crate) capture: Option<String>,
}

/// The second run's part of the status.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct SecondStatus {
    /// What B does, in the compared respect ("VP (cosine)").
    pub(crate) runs: String,
    pub(crate) step: u64,
    pub(crate) steps_per_sec: f64,
    pub(crate) w2: Option<f64>,
    pub(crate) straightness: Option<f64>,
    /// The particles B drew.
    pub(crate) flow_version: u64,
}

impl Status {
    /// The one-line summary in the title.
    pub(crate) fn title(&self) -> String {
        format!(
            "flowplay · {} · {} · step {} · loss {} · {:.0} steps/s",
            self.backend,
            if self.training { "training" } else { "paused" },
            self.step,
            self.loss
                .map_or_else(|| "–".to_string(), |l| format!("{l:.4}")),
            self.steps_per_sec
        )
    }
}

/// Publishes the status: the title, and on the web the hidden JSON element.
pub(crate) fn publish(ctx: &egui::Context, status: &Status) {
    #[cfg(target_arch = "wasm32")]
    {
        let _ = ctx;
        let Some(document) = web_sys::window().and_then(|w| w.document()) else {
            return;
        };
        document.set_title(&status.title());
        let element = document.get_element_by_id("flowplay-status").or_else(|| {
            let pre = document.create_element("pre").ok()?;
            pre.set_id("flowplay-status");
            pre.set_attribute("hidden", "").ok()?;
            document.body()?.append_child(&pre).ok()?;
            Some(pre)
        });
        if let (Some(element), Ok(json)) = (element, serde_json::to_string(status)) {
            element.set_text_content(Some(&json));
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    ctx.send_viewport_cmd(egui::ViewportCommand::Title(status.title()));
}

/// The URL hash without `#` (web), or nothing (native).
pub(crate) fn read_hash() -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    {
        let hash = web_sys::window()?.location().hash().ok()?;
        Some(hash.trim_start_matches('#').to_string())
    }
    #[cfg(not(target_arch = "wasm32"))]
    None
}

/// A link to the playground with `query` as its settings: the page's address with the settings
/// as its hash on the web; natively the command line that opens the same settings.
pub(crate) fn link(query: &str) -> String {
    #[cfg(target_arch = "wasm32")]
    {
        let base = web_sys::window()
            .and_then(|w| {
                let l = w.location();
                Some(format!("{}{}", l.origin().ok()?, l.pathname().ok()?))
            })
            .unwrap_or_default();
        format!("{base}#{query}")
    }
    #[cfg(not(target_arch = "wasm32"))]
    format!("flowplay-app '{query}'")
}

/// Replaces the URL hash without adding a history entry (web; nothing natively).
pub(crate) fn write_hash(query: &str) {
    #[cfg(target_arch = "wasm32")]
    if let Some(window) = web_sys::window()
        && let Ok(history) = window.history()
    {
        // A failure only leaves the old address; the settings themselves are applied.
        let _ = history.replace_state_with_url(
            &wasm_bindgen::JsValue::NULL,
            "",
            Some(&format!("#{query}")),
        );
    }
    #[cfg(not(target_arch = "wasm32"))]
    let _ = query;
}
