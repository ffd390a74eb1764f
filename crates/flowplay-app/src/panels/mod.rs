//! The playground's panels, one a file, each a `ui` function that reads the app's state and
//! pushes the [`crate::command::Command`]s the user asked for (the egui demo's one-panel-a-file
//! structure). Nothing here changes the state; `PlaygroundApp::apply` does.

pub(crate) mod brush;
pub(crate) mod controls;
pub(crate) mod files;
pub(crate) mod layers;
pub(crate) mod notices;
pub(crate) mod player;
pub(crate) mod plots;
pub(crate) mod reflow;

#[cfg(test)]
mod tests;
