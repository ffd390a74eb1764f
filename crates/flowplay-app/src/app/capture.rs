//! Pictures of the canvas: the canvas cropped from egui's screenshot, now (PNG), or at evenly
//! spaced times from t = 0 to 1 (GIF, WebM). A capture pauses training and the player, holds
//! each time until its screenshot is back, then encodes, saves and resumes.

use std::sync::{Arc, Mutex};

use super::PlaygroundApp;
use crate::media::{self, Frame, Picture};

/// Frames a screenshot may take to come back before the capture gives up.
const MAX_WAIT_FRAMES: u32 = 600;
/// A GIF frame's delay, and how long its last frame is held (hundredths of a second).
const GIF_DELAY_CS: u16 = 5;
const GIF_HOLD_CS: u16 = 150;
/// WebM frames per second.
const WEBM_FPS: u32 = 30;

/// Where a screenshot arrives.
pub(crate) type Slot = Arc<Mutex<Option<Arc<egui::ColorImage>>>>;

/// A capture under way.
pub(crate) struct Capture {
    pub(crate) picture: Picture,
    pub(crate) frames: Vec<Frame>,
    /// The frame whose time the canvas showed this frame.
    shown: Option<usize>,
    /// The screenshot asked for, and the frames waited for it.
    waiting: Option<(Slot, u32)>,
    /// Whether training ran and the player played before.
    resume: (bool, bool),
}

impl Capture {
    /// The time of frame `k`: the player's for a picture, else evenly from 0 to 1.
    fn time(&self, k: usize, now: f32) -> f32 {
        let n = self.picture.frames();
        if n == 1 {
            now
        } else {
            k as f32 / (n - 1) as f32
        }
    }

    /// "GIF 12 of 41".
    pub(crate) fn progress(&self) -> String {
        let (ext, _) = self.picture.file();
        format!(
            "{} {} of {}",
            ext.to_ascii_uppercase(),
            self.frames.len(),
            self.picture.frames()
        )
    }
}

/// The result of a video encoded in the background (the web's WebCodecs), for the next frame.
pub(crate) type VideoResult = Arc<Mutex<Option<String>>>;

impl PlaygroundApp {
    /// Starts a capture of `picture`, or says why not.
    pub(crate) fn start_capture(&mut self, picture: Picture) {
        if self.files.capture.is_some() {
            return;
        }
        if picture == Picture::Webm && !media::can_encode_video() {
            self.notices.error = Some(
                "This browser cannot encode video (it has no WebCodecs VideoEncoder); the \
                 flow as a GIF works everywhere."
                    .into(),
            );
            return;
        }
        if self.canvas.rect.is_none() {
            self.notices.error = Some("There is no canvas to take a picture of yet.".into());
            return;
        }
        self.files.capture = Some(Capture {
            picture,
            frames: Vec::new(),
            shown: None,
            waiting: None,
            resume: (self.training, self.player.playing),
        });
        self.training = false;
        self.player.playing = false;
    }

    /// Before the canvas is drawn: shows the time of the next frame to capture.
    pub(crate) fn capture_before_drawing(&mut self) {
        let Some(capture) = &mut self.files.capture else {
            return;
        };
        if capture.waiting.is_none() {
            let k = capture.frames.len();
            self.player.time = capture.time(k, self.player.time);
            capture.shown = Some(k);
        }
    }

    /// After the canvas is drawn: takes in a screenshot that came back, asks for the next (once
    /// the particles drawn are final), and finishes when every frame is in.
    pub(crate) fn capture_after_drawing(&mut self, ctx: &egui::Context) {
        let Some(mut capture) = self.files.capture.take() else {
            return;
        };
        let ppp = ctx.pixels_per_point();
        if let Some((slot, waited)) = capture.waiting.take() {
            let image = slot.lock().ok().and_then(|mut s| s.take());
            match image {
                Some(image) => match self.canvas.rect.and_then(|r| Frame::crop(&image, r, ppp)) {
                    Some(frame) => capture.frames.push(frame),
                    None => return self.end_capture(&capture, Err("the canvas is not on screen")),
                },
                None if waited >= MAX_WAIT_FRAMES => {
                    return self.end_capture(&capture, Err("the screenshot never came back"));
                }
                None => capture.waiting = Some((slot, waited + 1)),
            }
        }
        if capture.frames.len() == capture.picture.frames() {
            return self.end_capture(&capture, Ok(()));
        }
        let ready = !self.flow.stale && self.flow.finished_on_device();
        if capture.waiting.is_none() && ready && capture.shown == Some(capture.frames.len()) {
            let slot: Slot = Arc::default();
            let arrived = Arc::clone(&slot);
            let repaint = ctx.clone();
            ctx.send_viewport_cmd(egui::ViewportCommand::Screenshot(
                egui::ScreenshotCallback::new(move |image| {
                    if let Ok(mut s) = arrived.lock() {
                        *s = Some(image);
                    }
                    repaint.request_repaint();
                }),
            ));
            capture.waiting = Some((slot, 0));
        }
        self.files.capture = Some(capture);
        ctx.request_repaint();
    }

    /// Hands a screenshot to the capture as if it had come back (tests).
    #[cfg(test)]
    pub(crate) fn deliver_screenshot(&mut self, image: egui::ColorImage) -> bool {
        let Some((slot, _)) = self.files.capture.as_ref().and_then(|c| c.waiting.as_ref()) else {
            return false;
        };
        slot.lock().map(|mut s| *s = Some(Arc::new(image))).is_ok()
    }

    /// Encodes and saves a finished capture (or says why it stopped), and resumes.
    fn end_capture(&mut self, capture: &Capture, outcome: Result<(), &str>) {
        (self.training, self.player.playing) = capture.resume;
        if let Err(why) = outcome {
            self.notices.error = Some(format!("No picture was saved: {why}."));
            return;
        }
        let picture = capture.picture;
        let (ext, mime) = picture.file();
        let stem = self.export_stem();
        let name = match picture {
            Picture::Png => format!("{stem}.{ext}"),
            _ => format!("{stem}-flow.{ext}"),
        };
        let even = picture == Picture::Webm;
        let frames: Vec<Frame> = capture
            .frames
            .iter()
            .map(|f| f.fitted(picture.max_side(), even))
            .collect();
        let size = frames
            .first()
            .map_or(String::new(), |f| format!("{}×{}", f.width, f.height));
        let count = frames.len();
        let encoded = match picture {
            Picture::Png => frames
                .first()
                .ok_or("no frame".to_string())
                .and_then(Frame::to_png),
            Picture::Gif => media::gif::encode(&frames, GIF_DELAY_CS, GIF_HOLD_CS),
            Picture::Webm => return self.encode_video(frames, &name, size),
        };
        self.notices.error = Some(match encoded {
            Ok(bytes) => say_saved(crate::files::save(&name, &bytes, mime), &name, count, &size),
            Err(why) => format!("No picture was saved: {why}."),
        });
    }

    /// WebM through WebCodecs, in the background; the result is said on a later frame.
    fn encode_video(&mut self, frames: Vec<Frame>, name: &str, size: String) {
        self.notices.error = Some(format!("Encoding {name} ..."));
        #[cfg(target_arch = "wasm32")]
        {
            let result = Arc::clone(&self.files.video);
            let name = name.to_string();
            wasm_bindgen_futures::spawn_local(async move {
                let count = frames.len();
                let said = match media::webcodecs::encode(frames, WEBM_FPS).await {
                    Ok(bytes) => say_saved(
                        crate::files::save(&name, &bytes, "video/webm"),
                        &name,
                        count,
                        &size,
                    ),
                    Err(why) => format!("No video was saved: {why}."),
                };
                if let Ok(mut slot) = result.lock() {
                    *slot = Some(said);
                }
            });
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = (frames, size, WEBM_FPS);
            self.notices.error = Some(format!("{name}: video is encoded in the browser only."));
        }
    }

    /// Says what a video encoded in the background became.
    pub(crate) fn receive_video(&mut self) {
        if let Some(said) = self.files.video.lock().ok().and_then(|mut s| s.take()) {
            self.notices.error = Some(said);
        }
    }
}

/// The notice for a saved (or cancelled) picture.
fn say_saved(
    saved: Result<Option<String>, String>,
    name: &str,
    frames: usize,
    size: &str,
) -> String {
    let what = if frames == 1 {
        size.to_string()
    } else {
        format!("{frames} frames of {size}")
    };
    match saved {
        Ok(Some(place)) => format!("Saved {place} ({what})."),
        Ok(None) => format!("{name} was not saved (cancelled)."),
        Err(why) => format!("Nothing was saved: {why}"),
    }
}
