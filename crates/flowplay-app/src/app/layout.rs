//! The page around the canvas: on a wide screen the controls on the left, the plots below and
//! the canvas in the middle; below [`NARROW_POINTS`] a bar with the main buttons, the canvas
//! across the whole width and the controls (and plots) in a sheet that slides up. Notices sit
//! on a banner over the canvas, where they are seen.

use egui::{Color32, Rect, RichText, Ui};

use super::state::Section;
use super::{BrushTool, CanvasState, Drawing, PlaygroundApp};
use crate::command::Command;
use crate::engine::{COMPARED, CURRENT};
use crate::layers::{LayerId, LayerSet, Scene};
use crate::{canvas, panels};

/// Below this width (egui points, CSS pixels on the web) the page takes its narrow form.
pub(crate) const NARROW_POINTS: f32 = 600.0;
/// The controls' width on a wide screen: fixed, so that no table makes it jump.
const CONTROLS_WIDTH: f32 = 300.0;

impl PlaygroundApp {
    /// The page: wide or narrow by the width there is.
    pub(crate) fn layout_ui(&mut self, ui: &mut Ui, out: &mut Vec<Command>) {
        let width = ui.max_rect().width();
        self.frame.zoom = ui.ctx().zoom_factor();
        if width < NARROW_POINTS {
            self.narrow_ui(ui, out);
        } else {
            self.wide_ui(ui, out);
        }
        if self.chrome.help {
            crate::keys::help_ui(ui.ctx(), out);
        }
    }

    fn wide_ui(&mut self, ui: &mut Ui, out: &mut Vec<Command>) {
        egui::Panel::left("settings")
            .resizable(false)
            .exact_size(CONTROLS_WIDTH)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| {
                    panels::controls::header_ui(ui, self, out);
                    self.sections_ui(ui, out);
                });
            });
        egui::Panel::bottom("plots")
            .resizable(true)
            .default_size(170.0)
            .show(ui, |ui| panels::plots::ui(ui, self));
        egui::CentralPanel::default().show(ui, |ui| {
            self.banner_ui(ui, out);
            panels::player::ui(ui, self, out);
            self.what_you_see_ui(ui);
            self.canvas_ui(ui, out);
        });
    }

    fn narrow_ui(&mut self, ui: &mut Ui, out: &mut Vec<Command>) {
        egui::Panel::top("bar").show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                let sheet = if self.chrome.sheet {
                    "Hide controls"
                } else {
                    "Controls"
                };
                if ui
                    .button(sheet)
                    .on_hover_text("The settings, lessons, layers and plots")
                    .clicked()
                {
                    out.push(Command::Sheet(!self.chrome.sheet));
                }
                let train = if self.training { "Pause" } else { "Train" };
                if ui.button(train).clicked() {
                    out.push(Command::ToggleTraining);
                }
                ui.label(
                    RichText::new(format!(
                        "step {} · {} steps/s",
                        self.engine.steps_done(),
                        super::rate(self.frame.steps_per_sec)
                    ))
                    .small(),
                );
            });
        });
        if self.chrome.sheet {
            let height = ui.max_rect().height();
            egui::Panel::bottom("sheet")
                .resizable(true)
                .default_size(height * 0.55)
                .size_range(120.0..=height * 0.9)
                .show(ui, |ui| {
                    egui::ScrollArea::vertical().show(ui, |ui| {
                        panels::controls::header_ui(ui, self, out);
                        self.sections_ui(ui, out);
                        ui.separator();
                        ui.label(RichText::new("Plots").strong());
                        ui.allocate_ui(egui::vec2(ui.available_width(), 170.0), |ui| {
                            panels::plots::ui(ui, self);
                        });
                    });
                });
        }
        egui::CentralPanel::default().show(ui, |ui| {
            self.banner_ui(ui, out);
            panels::player::ui(ui, self, out);
            self.canvas_ui(ui, out);
        });
    }

    /// Every section of the controls, each folded or open.
    fn sections_ui(&self, ui: &mut Ui, out: &mut Vec<Command>) {
        for section in Section::ALL {
            let open = self.chrome.is_open(section);
            let header = egui::CollapsingHeader::new(RichText::new(section.title()).strong())
                .id_salt(("flowplay::section", section.title()))
                .open(Some(open))
                .show(ui, |ui| match section {
                    Section::Lessons => panels::lessons::ui(ui, self, out),
                    Section::Settings => panels::controls::settings_ui(ui, self, out),
                    Section::Layers => panels::layers::ui(ui, self, out),
                    Section::Lab => panels::lab::ui(ui, self),
                    Section::Compare => panels::compare::ui(ui, self, out),
                    Section::Reflow => panels::reflow::ui(ui, self, out),
                    Section::Files => panels::files::ui(ui, self, out),
                    Section::Brush => panels::brush::ui(ui, self, out),
                });
            if header.header_response.clicked() {
                out.push(Command::Section(section, !open));
            }
        }
    }

    /// The notices in force on a banner over the canvas, each dismissable.
    fn banner_ui(&self, ui: &mut Ui, out: &mut Vec<Command>) {
        let lines = self.notice_lines();
        if lines.is_empty() || self.chrome.dismissed.as_deref() == Some(&lines.join("\n")) {
            return;
        }
        egui::Frame::new()
            .fill(Color32::from_rgb(70, 42, 24))
            .stroke(egui::Stroke::new(1.0, Color32::from_rgb(220, 110, 60)))
            .inner_margin(egui::Margin::symmetric(8, 6))
            .corner_radius(4.0)
            .show(ui, |ui| {
                ui.horizontal_top(|ui| {
                    if ui
                        .small_button("×")
                        .on_hover_text("Dismiss (a new notice shows again)")
                        .clicked()
                    {
                        out.push(Command::DismissNotices);
                    }
                    ui.vertical(|ui| {
                        for line in &lines {
                            // Wrapped at the canvas's width: a long notice must not widen a
                            // phone's page.
                            ui.add(
                                egui::Label::new(
                                    RichText::new(line).color(Color32::from_rgb(250, 200, 160)),
                                )
                                .wrap(),
                            );
                        }
                    });
                });
            });
    }

    /// One line saying what the canvas shows.
    fn what_you_see_ui(&self, ui: &mut Ui) {
        let on = self.settings.view.layers;
        let parts: Vec<&str> = LayerId::ALL
            .into_iter()
            .filter(|&id| on.contains(id))
            .map(LayerId::in_a_phrase)
            .collect();
        if parts.is_empty() {
            return;
        }
        ui.label(
            RichText::new(format!(
                "What you see at t = {:.2}: {}. Orange is t = 0 noise on its way to the data \
                 (t = 1).",
                self.player.time,
                parts.join("; ")
            ))
            .small()
            .weak(),
        );
    }

    /// The canvas: one; or the compared round and the current one side by side, in step; or,
    /// with a second run, the two runs side by side in one view at one t.
    pub(crate) fn canvas_ui(&mut self, ui: &mut Ui, commands: &mut Vec<Command>) {
        let on = self.settings.view.layers;
        let brush = Some((&self.brush, &self.drawing));
        if let Some(second) = self.second.as_ref() {
            let kind = second.kind;
            let [(drawn, rect), (_, second_rect)] = side_by_side(
                ui,
                &self.canvas,
                on,
                [
                    Pane {
                        heading: RichText::new(format!("A: {}", kind.describe(&self.settings)))
                            .strong(),
                        scene: scene(self, CURRENT),
                        slot: CURRENT,
                        brush,
                    },
                    Pane {
                        heading: RichText::new(format!(
                            "B: {}",
                            kind.describe(&second.run.settings)
                        ))
                        .strong()
                        .color(panels::plots::SECOND_COLOUR),
                        scene: scene(&second.run, CURRENT),
                        slot: SECOND_SLOT,
                        brush: None,
                    },
                ],
                commands,
            );
            self.layers.drawn = drawn;
            self.canvas.rect = Some(rect);
            if let Some(second) = self.second.as_mut() {
                second.run.canvas.rect = Some(second_rect);
            }
            return;
        }
        let (drawn, rect) = match self
            .rounds
            .compare
            .filter(|&r| r < self.rounds.finished.len())
        {
            None => canvas::show(
                ui,
                &self.canvas,
                &scene(self, CURRENT),
                CURRENT,
                on,
                brush,
                commands,
            ),
            Some(r) => {
                let current = self.engine.round();
                let [_, training] = side_by_side(
                    ui,
                    &self.canvas,
                    on,
                    [
                        Pane {
                            heading: RichText::new(format!("round {r}")),
                            scene: scene(self, COMPARED),
                            slot: COMPARED,
                            brush: None,
                        },
                        Pane {
                            heading: RichText::new(format!("round {current} (training)")),
                            scene: scene(self, CURRENT),
                            slot: CURRENT,
                            brush,
                        },
                    ],
                    commands,
                );
                training
            }
        };
        self.layers.drawn = drawn;
        self.canvas.rect = Some(rect);
    }
}

/// One of two canvases side by side: its heading, what it draws, its renderers' slot, and the
/// brush where it is the canvas being trained.
struct Pane<'a> {
    heading: RichText,
    scene: Scene<'a>,
    slot: usize,
    brush: Option<(&'a BrushTool, &'a Drawing)>,
}

/// Two canvases in two columns, in one view: what each drew, and where.
fn side_by_side(
    ui: &mut Ui,
    canvas: &CanvasState,
    on: LayerSet,
    panes: [Pane<'_>; 2],
    commands: &mut Vec<Command>,
) -> [(Vec<LayerId>, Rect); 2] {
    let mut drawn = [(Vec::new(), Rect::NOTHING), (Vec::new(), Rect::NOTHING)];
    ui.columns(2, |cols| {
        for ((col, pane), out) in cols.iter_mut().zip(panes).zip(&mut drawn) {
            col.label(pane.heading);
            *out = canvas::show(
                col,
                canvas,
                &pane.scene,
                pane.slot,
                on,
                pane.brush,
                commands,
            );
        }
    });
    drawn
}

/// The renderers' slot of the second run's canvas (after the current and compared rounds').
const SECOND_SLOT: usize = 2;

/// What `app`'s canvas `which` (its current round, or the compared one) draws.
fn scene(app: &PlaygroundApp, which: usize) -> Scene<'_> {
    let views = &app.layers.views;
    // The views are of the current round's model.
    let current = which == CURRENT;
    Scene {
        t: app.player.time,
        classes: app.settings.classes(),
        data: &app.data.shown,
        flow: app.engine.flow(which),
        field: views.field.as_ref().filter(|_| current),
        density: views.density.as_ref().filter(|_| current),
        logp: views.logp.as_ref().filter(|_| current),
        stages: app
            .layers
            .inspected
            .as_ref()
            .and_then(|i| i.view.as_ref())
            .filter(|_| current),
        pairs: views.pairs.as_ref().filter(|_| current),
        streamlines: app.layers.streamlines,
        clock: app.frame.clock,
        gpu: app.device.gpu.is_some(),
    }
}
