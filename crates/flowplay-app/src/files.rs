//! Files in and out, natively and on the web: opening a file (a dialog natively, the browser's
//! picker on the web, both through `rfd`), files dropped on the window, saving (a dialog natively,
//! a download on the web) and the clipboard.
//!
//! A file picked on the web arrives after the frame that asked for it (the picker is
//! asynchronous), so every opened or dropped file goes through one [`Inbox`] that the app empties
//! each frame; the app then decides what the file is for in one place.

use std::sync::{Arc, Mutex};

/// What an opened file is meant to become.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Points (a CSV or a picture) that become the data or the source.
    Data,
    /// A weights file (safetensors) the particles then flow from.
    Weights,
    /// Dropped on the window: what it is follows from its name.
    Dropped,
}

impl Purpose {
    /// The file dialog's filter: a name and the extensions.
    fn filter(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Self::Data => (
                "points: CSV (x,y[,label]) or a PNG/JPEG picture",
                &["csv", "txt", "png", "jpg", "jpeg"],
            ),
            Self::Weights => ("safetensors weights", &["safetensors"]),
            Self::Dropped => ("any", &[]),
        }
    }
}

/// A file that came in.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Incoming {
    /// Its name (no folders).
    pub(crate) name: String,
    pub(crate) bytes: Vec<u8>,
    pub(crate) purpose: Purpose,
}

/// The largest file opened: far above any CSV of points or weights the app takes (they are
/// capped in turn), far below what would exhaust a browser tab's memory.
pub(crate) const MAX_FILE_BYTES: u64 = 256 << 20;

/// Files that came in and are not yet handled, or why one could not be read.
#[derive(Clone, Default)]
pub(crate) struct Inbox(Arc<Mutex<Vec<Result<Incoming, String>>>>);

impl Inbox {
    /// Adds a file (or the reason it could not be read).
    pub(crate) fn push(&self, item: Result<Incoming, String>) {
        if let Ok(mut items) = self.0.lock() {
            items.push(item);
        }
    }

    /// Takes everything that came in.
    pub(crate) fn take(&self) -> Vec<Result<Incoming, String>> {
        self.0
            .lock()
            .map(|mut items| std::mem::take(&mut *items))
            .unwrap_or_default()
    }
}

/// Checks a file's size before its bytes are used.
fn bounded(name: String, bytes: Vec<u8>, purpose: Purpose) -> Result<Incoming, String> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "{name} has {} MB, more than the {} MB a file may have here.",
            bytes.len() >> 20,
            MAX_FILE_BYTES >> 20
        ));
    }
    Ok(Incoming {
        name,
        bytes,
        purpose,
    })
}

/// Asks for a file for `purpose`; it arrives in `inbox` (natively at once, after the dialog; on
/// the web when the user has picked it). Cancelling adds nothing.
pub(crate) fn open(purpose: Purpose, inbox: &Inbox) {
    let (what, extensions) = purpose.filter();
    let dialog = rfd::AsyncFileDialog::new().add_filter(what, extensions);
    let inbox = inbox.clone();
    let task = async move {
        if let Some(file) = dialog.pick_file().await {
            let name = file.file_name();
            inbox.push(bounded(name, file.read().await, purpose));
        }
    };
    #[cfg(target_arch = "wasm32")]
    wasm_bindgen_futures::spawn_local(task);
    #[cfg(not(target_arch = "wasm32"))]
    pollster::block_on(task);
}

/// Files dropped on the window this frame, into `inbox` (on the web their bytes are read
/// asynchronously; natively from their paths, refusing what is not a regular file).
pub(crate) fn take_dropped(ctx: &egui::Context, inbox: &Inbox) {
    let dropped = ctx.input_mut(|i| std::mem::take(&mut i.raw.dropped_files));
    for file in dropped {
        let name = file.path().file_name().map_or_else(
            || "dropped file".to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        #[cfg(target_arch = "wasm32")]
        {
            let inbox = inbox.clone();
            wasm_bindgen_futures::spawn_local(async move {
                let read = file.bytes_async().await;
                inbox.push(read.and_then(|b| bounded(name, b, Purpose::Dropped)));
            });
        }
        #[cfg(not(target_arch = "wasm32"))]
        inbox.push(read_path(file.path()).and_then(|b| bounded(name, b, Purpose::Dropped)));
    }
}

/// Reads a dropped file natively: a regular file of bounded size only.
#[cfg(not(target_arch = "wasm32"))]
fn read_path(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{shown} cannot be read: {e}."))?;
    if !meta.is_file() {
        return Err(format!("{shown} is not a regular file."));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "{shown} has {} MB, more than the {} MB a file may have here.",
            meta.len() >> 20,
            MAX_FILE_BYTES >> 20
        ));
    }
    std::fs::read(path).map_err(|e| format!("{shown} cannot be read: {e}."))
}

#[cfg(test)]
thread_local! {
    /// What tests saved: no dialog opens under `cargo test`.
    pub(crate) static SAVED: std::cell::RefCell<Vec<(String, Vec<u8>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Takes what this test thread saved.
#[cfg(test)]
pub(crate) fn take_saved() -> Vec<(String, Vec<u8>)> {
    SAVED.with(|saved| std::mem::take(&mut *saved.borrow_mut()))
}

/// Saves `bytes` as `name`: natively through a save dialog (`Ok(None)` when cancelled), on the
/// web as a download. Returns where it went.
pub(crate) fn save(name: &str, bytes: &[u8], mime: &str) -> Result<Option<String>, String> {
    #[cfg(test)]
    {
        let _ = mime;
        SAVED.with(|saved| saved.borrow_mut().push((name.to_string(), bytes.to_vec())));
        Ok(Some(name.to_string()))
    }
    #[cfg(all(not(test), target_arch = "wasm32"))]
    {
        download(name, bytes, mime)?;
        Ok(Some(format!("{name} (downloaded)")))
    }
    #[cfg(all(not(test), not(target_arch = "wasm32")))]
    {
        let _ = mime;
        let Some(path) = rfd::FileDialog::new().set_file_name(name).save_file() else {
            return Ok(None);
        };
        std::fs::write(&path, bytes)
            .map_err(|e| format!("{} could not be written: {e}.", path.display()))?;
        Ok(Some(path.display().to_string()))
    }
}

/// Starts a download of `bytes` named `name` (a Blob behind a link that is clicked at once).
#[cfg(target_arch = "wasm32")]
fn download(name: &str, bytes: &[u8], mime: &str) -> Result<(), String> {
    use wasm_bindgen::JsCast as _;
    let fail = |what: &str| format!("The download of {name} failed ({what}).");
    let window = web_sys::window().ok_or_else(|| fail("no window"))?;
    let document = window.document().ok_or_else(|| fail("no document"))?;
    let array = js_sys::Uint8Array::from(bytes);
    let parts = js_sys::Array::of1(&array);
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options)
        .map_err(|_| fail("no blob"))?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|_| fail("no URL"))?;
    let anchor: web_sys::HtmlAnchorElement = document
        .create_element("a")
        .map_err(|_| fail("no link"))?
        .dyn_into()
        .map_err(|_| fail("no link"))?;
    anchor.set_href(&url);
    anchor.set_download(name);
    anchor.click();
    web_sys::Url::revoke_object_url(&url).ok();
    Ok(())
}
