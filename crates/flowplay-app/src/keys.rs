//! The keyboard: one table of shortcuts, read once a frame (not while a text field has the
//! keyboard) and listed by the help overlay that `?` opens.

use egui::{InputState, Key, Modifiers};

use crate::app::{PlaygroundApp, Section};
use crate::command::{Command, Direction, Export};
use crate::media::Picture;

/// A shortcut as the help overlay lists it.
pub(crate) struct Shortcut {
    /// The keys, as printed.
    pub(crate) keys: &'static str,
    /// What they do.
    pub(crate) what: &'static str,
}

/// Every shortcut, in the order the help lists them.
pub(crate) const SHORTCUTS: &[Shortcut] = &[
    Shortcut {
        keys: "Space",
        what: "train, or pause training",
    },
    Shortcut {
        keys: "P",
        what: "play or pause the particles",
    },
    Shortcut {
        keys: "← / →",
        what: "the particles one solver step back / on",
    },
    Shortcut {
        keys: "R",
        what: "reset: new weights from the seed (one Undo away)",
    },
    Shortcut {
        keys: "L",
        what: "open or fold the layers",
    },
    Shortcut {
        keys: "F",
        what: "fit the view to the data",
    },
    Shortcut {
        keys: "1 – 9",
        what: "open lesson 1 to 9",
    },
    Shortcut {
        keys: "Ctrl+Z",
        what: "undo the last new model (again: back)",
    },
    Shortcut {
        keys: "Ctrl+S",
        what: "save the weights drawn (safetensors)",
    },
    Shortcut {
        keys: "Ctrl+Shift+P",
        what: "the canvas as a PNG",
    },
    Shortcut {
        keys: "Ctrl+Shift+G / M",
        what: "the flow from t = 0 to 1 as a GIF / a WebM",
    },
    Shortcut {
        keys: "?",
        what: "this list (Esc or ? closes it)",
    },
];

/// The lessons' number keys.
const LESSON_KEYS: [Key; 9] = [
    Key::Num1,
    Key::Num2,
    Key::Num3,
    Key::Num4,
    Key::Num5,
    Key::Num6,
    Key::Num7,
    Key::Num8,
    Key::Num9,
];

/// The commands the keys pressed this frame ask for, each key consumed so that nothing else
/// acts on it too.
pub(crate) fn commands(input: &mut InputState, app: &PlaygroundApp) -> Vec<Command> {
    let mut out = Vec::new();
    let plain = Modifiers::NONE;
    let command = Modifiers::COMMAND;
    let shift = Modifiers::COMMAND | Modifiers::SHIFT;
    // The modified keys first: consuming a plain key would not take Ctrl+its key, but the
    // reverse order keeps the table easy to read.
    if input.consume_key(command, Key::Z) {
        out.push(Command::Undo);
    }
    if input.consume_key(command, Key::S) {
        out.push(Command::Export(Export::Weights {
            ema: app.settings.sampling.ema,
        }));
    }
    for (key, picture) in [
        (Key::P, Picture::Png),
        (Key::G, Picture::Gif),
        (Key::M, Picture::Webm),
    ] {
        if input.consume_key(shift, key) {
            out.push(Command::Capture(picture));
        }
    }
    if input.modifiers.command || input.modifiers.alt {
        return out;
    }
    if input.consume_key(plain, Key::Space) {
        out.push(Command::ToggleTraining);
    }
    if input.consume_key(plain, Key::P) {
        out.push(Command::TogglePlay);
    }
    if input.consume_key(plain, Key::ArrowLeft) {
        out.push(Command::Step(Direction::Back));
    }
    if input.consume_key(plain, Key::ArrowRight) {
        out.push(Command::Step(Direction::On));
    }
    if input.consume_key(plain, Key::R) {
        out.push(Command::Reset);
    }
    if input.consume_key(plain, Key::L) {
        let open = app.chrome.is_open(Section::Layers);
        out.push(Command::Section(Section::Layers, !open));
    }
    if input.consume_key(plain, Key::F) {
        out.push(Command::FitView);
    }
    for (i, key) in LESSON_KEYS.into_iter().enumerate() {
        if input.consume_key(plain, key) && i < crate::lessons::LESSONS.len() {
            out.push(Command::Lesson(Some(i)));
        }
    }
    // `?` is Shift+/ on most layouts; egui reports the logical key, shift or not.
    if input.consume_key(plain, Key::Questionmark) {
        out.push(Command::Help(!app.chrome.help));
    }
    if app.chrome.help && input.consume_key(plain, Key::Escape) {
        out.push(Command::Help(false));
    }
    out
}

/// The help overlay: the shortcuts in a window over the canvas.
pub(crate) fn help_ui(ctx: &egui::Context, out: &mut Vec<Command>) {
    let mut open = true;
    egui::Window::new("Keyboard")
        .collapsible(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
        .open(&mut open)
        .show(ctx, |ui| {
            egui::Grid::new("flowplay::shortcuts")
                .num_columns(2)
                .spacing([16.0, 6.0])
                .show(ui, |ui| {
                    for shortcut in SHORTCUTS {
                        ui.label(egui::RichText::new(shortcut.keys).monospace().strong());
                        ui.label(shortcut.what);
                        ui.end_row();
                    }
                });
            ui.add_space(6.0);
            ui.label(
                "On a touch screen: drag to pan, pinch to zoom, double-tap to fit; on a narrow \
                 screen the controls are in the sheet the Controls button raises.",
            );
        });
    if !open {
        out.push(Command::Help(false));
    }
}
