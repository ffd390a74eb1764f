//! WebCodecs' `VideoEncoder` (VP8), bound by hand: web-sys has it only behind
//! `web_sys_unstable_apis`, a flag that would change how the whole web-sys crate builds. Frames
//! go in as RGBA `VideoFrame`s; the encoded chunks come back through the encoder's output
//! callback and are put in a WebM container ([`super::webm`]).

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

use super::Frame;
use super::webm::{self, Chunk};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = VideoEncoder)]
    type VideoEncoder;
    #[wasm_bindgen(constructor, catch, js_class = "VideoEncoder")]
    fn new(init: &Object) -> Result<VideoEncoder, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn configure(this: &VideoEncoder, config: &Object) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    fn encode(this: &VideoEncoder, frame: &VideoFrame, options: &Object) -> Result<(), JsValue>;
    #[wasm_bindgen(method)]
    fn flush(this: &VideoEncoder) -> js_sys::Promise;
    #[wasm_bindgen(method, catch)]
    fn close(this: &VideoEncoder) -> Result<(), JsValue>;

    #[wasm_bindgen(js_name = VideoFrame)]
    type VideoFrame;
    #[wasm_bindgen(constructor, catch, js_class = "VideoFrame")]
    fn new(data: &Uint8Array, init: &Object) -> Result<VideoFrame, JsValue>;
    #[wasm_bindgen(method, js_name = close)]
    fn close_frame(this: &VideoFrame);

    #[wasm_bindgen(js_name = EncodedVideoChunk)]
    type EncodedVideoChunk;
    #[wasm_bindgen(method, getter, js_name = byteLength)]
    fn byte_length(this: &EncodedVideoChunk) -> u32;
    #[wasm_bindgen(method, getter)]
    fn timestamp(this: &EncodedVideoChunk) -> f64;
    #[wasm_bindgen(method, getter, js_name = type)]
    fn kind(this: &EncodedVideoChunk) -> String;
    #[wasm_bindgen(method, js_name = copyTo)]
    fn copy_to(this: &EncodedVideoChunk, destination: &Uint8Array);
}

/// Whether this browser has WebCodecs' `VideoEncoder`.
pub(crate) fn available() -> bool {
    Reflect::has(&js_sys::global(), &JsValue::from_str("VideoEncoder")).unwrap_or(false)
}

/// A plain object with these fields.
fn object(fields: &[(&str, JsValue)]) -> Object {
    let out = Object::new();
    for (key, value) in fields {
        let _ = Reflect::set(&out, &JsValue::from_str(key), value);
    }
    out
}

/// What a JavaScript error says.
fn said(error: &JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| format!("{error:?}"))
}

/// Encodes `frames` (all of one even size) at `fps` as VP8 in WebM. A key frame every second.
pub(crate) async fn encode(frames: Vec<Frame>, fps: u32) -> Result<Vec<u8>, String> {
    let first = frames.first().ok_or("no frames were captured")?;
    let (width, height) = (first.width, first.height);
    let chunks: Rc<RefCell<Vec<Chunk>>> = Rc::default();
    let failure: Rc<RefCell<Option<String>>> = Rc::default();
    let output = {
        let chunks = Rc::clone(&chunks);
        Closure::<dyn FnMut(EncodedVideoChunk)>::new(move |chunk: EncodedVideoChunk| {
            let bytes = Uint8Array::new_with_length(chunk.byte_length());
            chunk.copy_to(&bytes);
            chunks.borrow_mut().push(Chunk {
                data: bytes.to_vec(),
                timestamp_us: chunk.timestamp().max(0.0) as u64,
                key: chunk.kind() == "key",
            });
        })
    };
    let error = {
        let failure = Rc::clone(&failure);
        Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
            *failure.borrow_mut() = Some(said(&e));
        })
    };
    let encoder = VideoEncoder::new(&object(&[
        ("output", output.as_ref().clone()),
        ("error", error.as_ref().clone()),
    ]))
    .map_err(|e| format!("this browser cannot encode video ({})", said(&e)))?;
    let frame_us = 1_000_000 / u64::from(fps.max(1));
    let bitrate = (f64::from(width) * f64::from(height) * f64::from(fps) * 0.2).max(200_000.0);
    encoder
        .configure(&object(&[
            ("codec", JsValue::from_str("vp8")),
            ("width", width.into()),
            ("height", height.into()),
            ("bitrate", bitrate.into()),
            ("framerate", fps.into()),
        ]))
        .map_err(|e| format!("VP8 video is not available here ({})", said(&e)))?;
    for (k, frame) in frames.iter().enumerate() {
        if frame.width != width || frame.height != height {
            let _ = encoder.close();
            return Err("the canvas changed size while the frames were taken".into());
        }
        let data = Uint8Array::from(frame.rgba.as_slice());
        let video_frame = VideoFrame::new(
            &data,
            &object(&[
                ("format", JsValue::from_str("RGBA")),
                ("codedWidth", width.into()),
                ("codedHeight", height.into()),
                ("timestamp", ((k as u64 * frame_us) as f64).into()),
                ("duration", (frame_us as f64).into()),
            ]),
        )
        .map_err(|e| format!("a video frame could not be made ({})", said(&e)))?;
        let key = (k as u64).is_multiple_of(u64::from(fps.max(1)));
        let encoded = encoder.encode(&video_frame, &object(&[("keyFrame", key.into())]));
        video_frame.close_frame();
        encoded.map_err(|e| format!("a frame could not be encoded ({})", said(&e)))?;
    }
    let flushed = wasm_bindgen_futures::JsFuture::from(encoder.flush()).await;
    let _ = encoder.close();
    if let Some(why) = failure.borrow_mut().take() {
        return Err(format!("the video encoder failed: {why}"));
    }
    flushed.map_err(|e| format!("the video encoder failed: {}", said(&e)))?;
    drop((output, error));
    let mut chunks = chunks.take();
    chunks.sort_by_key(|c| c.timestamp_us);
    webm::mux(
        width,
        height,
        "V_VP8",
        &chunks,
        frames.len() as u64 * frame_us,
    )
}
