//! The lessons: the list, or the open lesson with what to look at, its formula, the one change
//! to make (a button makes it) and what should happen.

use egui::{RichText, Ui};

use crate::app::PlaygroundApp;
use crate::command::Command;
use crate::lessons::LESSONS;

/// Draws the lessons and pushes what the user asked for.
pub(crate) fn ui(ui: &mut Ui, app: &PlaygroundApp, out: &mut Vec<Command>) {
    let Some(i) = app.chrome.lesson.filter(|&i| i < LESSONS.len()) else {
        ui.label(
            "A path through flow matching, one idea a lesson: each sets the playground, says \
             what to look at and asks you to change one thing (keys 1–9; a link with \
             #lesson=N opens one).",
        );
        for (i, lesson) in LESSONS.iter().enumerate() {
            if ui
                .button(format!("{}. {}", i + 1, lesson.title))
                .on_hover_text(lesson.cite)
                .clicked()
            {
                out.push(Command::Lesson(Some(i)));
            }
        }
        return;
    };
    let lesson = &LESSONS[i];
    ui.label(
        RichText::new(format!("{} / {}  {}", i + 1, LESSONS.len(), lesson.title))
            .strong()
            .size(15.0),
    );
    ui.label(RichText::new(lesson.cite).weak());
    ui.add_space(4.0);
    ui.label(lesson.look);
    ui.add_space(4.0);
    super::formula_ui(ui, lesson.formula);
    ui.add_space(4.0);
    ui.label(RichText::new("Change one thing").strong());
    ui.label(lesson.change);
    if lesson.change_query.is_some()
        && ui
            .button("Make the change")
            .on_hover_text("Applies the change on top of the current settings.")
            .clicked()
    {
        out.push(Command::LessonChange);
    }
    ui.label(RichText::new("What should happen").strong());
    ui.label(lesson.expect);
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        if ui
            .add_enabled(i > 0, egui::Button::new("< previous"))
            .clicked()
        {
            out.push(Command::Lesson(Some(i - 1)));
        }
        if ui
            .add_enabled(i + 1 < LESSONS.len(), egui::Button::new("next >"))
            .clicked()
        {
            out.push(Command::Lesson(Some(i + 1)));
        }
        if ui
            .button("restart")
            .on_hover_text("Sets the lesson's playground again (a new model, one Undo away).")
            .clicked()
        {
            out.push(Command::Lesson(Some(i)));
        }
        if ui.button("all lessons").clicked() {
            out.push(Command::Lesson(None));
        }
    });
}
