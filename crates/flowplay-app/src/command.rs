//! What the user asked for this frame. Panels and the canvas read the state and return commands;
//! `PlaygroundApp::apply` is the one place that acts on them.

use crate::app::{BrushTool, Role};
use crate::files::Purpose;
use crate::layers::LayerId;
use crate::settings::Settings;
use crate::view::View;

/// A step of the scrubber along the solver's time grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Back,
    On,
}

/// A result to save.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Export {
    /// The model as safetensors with the Quick Reference's PyTorch names: raw or EMA weights.
    Weights { ema: bool },
    /// The particles' end points at t = 1, as CSV (`x,y[,label]`).
    Samples,
    /// Every particle's path and predicted end points, as CSV.
    Trajectories,
}

/// One request from the UI.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Command {
    /// Edited settings: applied as a redraw, new particles, a trainer change or a new model,
    /// whichever the edit needs (a new model waits for the pointer's release).
    Settings(Box<Settings>),
    /// New weights from the seed; training starts over.
    Reset,
    /// Swap back to the model that the last new model replaced (and again, forward).
    Undo,
    /// Open a file: points to train on, or weights to flow from.
    Open(Purpose),
    /// Save a result (a dialog natively, a download on the web).
    Export(Export),
    /// Put a link with every setting on the clipboard.
    CopyLink,
    /// Take a picture of the canvas, or of the flow from t = 0 to 1.
    Capture(crate::media::Picture),
    /// New brush settings.
    Brush(BrushTool),
    /// One dab of the brush at a world point, with the brush's radius in world units.
    Paint { at: [f32; 2], radius: f32 },
    /// Remove every painted point.
    ClearDrawing,
    /// Train on the painted points from now on, as the data or the source (the weights carry
    /// on).
    UseDrawing(Role),
    /// What imported points become, and which pixels of a picture are dense.
    ImportAs(Role, flowplay_core::picture::Density),
    /// Start or pause training.
    ToggleTraining,
    /// End the current reflow round and train the next on the model's coupling (QR §7.1).
    StartReflow,
    /// Draw an earlier round's flow beside the current one (`None`: nothing beside).
    Compare(Option<usize>),
    /// Draw the particles after a single Euler step.
    OneStep(bool),
    /// Play or pause the particles.
    TogglePlay,
    /// Move the scrubber to t.
    Seek(f32),
    /// Move the scrubber one solver step.
    Step(Direction),
    /// The particles' playback speed.
    Speed(f32),
    /// Switch a canvas layer on or off.
    Layer(LayerId, bool),
    /// The field layer's streamlines on or off.
    Streamlines(bool),
    /// The coupling layer: show minibatch-OT pairs (true) or independent ones.
    PairsOt(bool),
    /// Pan or zoom the canvas.
    View(View),
    /// Fit the view to the data again.
    FitView,
    /// Inspect the particle nearest to this world point (the stages layer).
    Inspect([f32; 2]),
    /// The stages layer: show one more stage of the inspected particle's step (wrapping to the
    /// next step after the last).
    NextStage,
    /// Open lesson i (0-based): the playground set as the lesson says (a new model, one Undo
    /// away); `None` closes the lesson.
    Lesson(Option<usize>),
    /// The open lesson's one change, applied on top of the current settings.
    LessonChange,
    /// Open or fold a part of the controls.
    Section(crate::app::Section, bool),
    /// Show or hide the list of keyboard shortcuts.
    Help(bool),
    /// Hide the notices in force until they change.
    DismissNotices,
    /// Start a second run beside this one that differs in one thing, or end it.
    Second(Option<crate::settings::Comparison>),
    /// The second run's settings edited (its compared thing is what it keeps).
    EditSecond(Box<Settings>),
    /// On a narrow screen: raise or lower the controls' sheet.
    Sheet(bool),
}
