//! Files in and out: imported points and weights, every failure said once with the run kept,
//! and exports that read back.

use flowplay_core::data::{Points, parse_points_csv};
use flowplay_core::weights;

use super::tests::{app, headless_gpu, run_until, small};
use super::*;
use crate::command::{Command, Export};
use crate::engine::CURRENT;
use crate::files::{Incoming, Purpose};

fn csv_file(name: &str, text: &str, purpose: Purpose) -> Incoming {
    Incoming {
        name: name.into(),
        bytes: text.as_bytes().to_vec(),
        purpose,
    }
}

/// A ring of `n` points, as a user's CSV.
fn ring(n: usize) -> String {
    let mut text = String::from("x,y\n");
    for i in 0..n {
        let a = i as f32 * 0.37;
        text.push_str(&format!("{},{}\n", 1.5 * a.cos(), 1.5 * a.sin()));
    }
    text
}

#[test]
fn an_imported_csv_becomes_the_data_and_the_weights_carry_on() {
    let mut app = app(small());
    app.training = true;
    app.train_for_a_frame();
    let steps = app.engine.steps_done();
    assert!(steps > 0);

    // A junk line: one message naming it, and nothing changes.
    let junk = "x,y\n1,2\n3,oops\n";
    let error = app
        .take_in(&csv_file("mine.csv", junk, Purpose::Data))
        .unwrap_err();
    assert_eq!(
        error,
        "mine.csv, line 3: y 'oops' is not a number. The current data and model are kept."
    );
    assert!(app.settings.data.custom.is_none());
    assert_eq!(app.engine.steps_done(), steps);

    let said = app
        .take_in(&csv_file("ring.csv", &ring(500), Purpose::Dropped))
        .unwrap();
    assert!(
        said.starts_with("Training on your 500 points from ring.csv; the weights carry on"),
        "{said}"
    );
    assert_eq!(app.engine.steps_done(), steps, "the model is the same");
    assert_eq!(app.engine.data().len(), 500);
    assert_eq!(app.settings.data.name(), "ring.csv");
    assert_eq!(app.data.shown.len(), 500);
    assert!(app.flow.stale);
    assert_eq!(
        app.curves.marks.last().map(|m| m.label.as_str()),
        Some("data: ring.csv")
    );
    // Training goes on on the new data, and results are named after it.
    app.train_for_a_frame();
    assert!(app.engine.steps_done() > steps);
    let model = app.engine.fetch_model(false).unwrap().unwrap();
    let (name, _, _) = app
        .export_bytes(Export::Weights { ema: false }, &model)
        .unwrap();
    assert!(name.starts_with("flowplay-ring-step"), "{name}");
    // A built-in dataset chosen again replaces the points.
    let mut edited = app.settings.clone();
    edited.data.custom = None;
    app.apply(Command::Settings(Box::new(edited)));
    assert_eq!(app.engine.data().len(), POOL_SIZE);

    // Too many points are capped with a notice; other files are refused by name.
    let said = app
        .take_in(&csv_file(
            "big.csv",
            &ring(import::MAX_IMPORTED_POINTS + 10),
            Purpose::Data,
        ))
        .unwrap();
    assert!(
        said.contains("100010 read; 100000 of them, drawn at random, are used"),
        "{said}"
    );
    let error = app
        .take_in(&csv_file("photo.gif", "GIF89a", Purpose::Dropped))
        .unwrap_err();
    assert!(
        error.contains("a .png/.jpg picture, and weights as .safetensors"),
        "{error}"
    );
}

/// A PNG of `w`×`h` grey pixels from `f(x, y)`.
fn png(w: u32, h: u32, f: impl Fn(u32, u32) -> u8) -> Vec<u8> {
    let img = image::GrayImage::from_fn(w, h, |x, y| image::Luma([f(x, y)]));
    let mut out = Vec::new();
    image::DynamicImage::ImageLuma8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("encode");
    out
}

/// A picture dropped becomes the data (its dark pixels, or its bright ones); one that cannot be
/// decoded is one message and the run is kept.
#[test]
fn a_picture_becomes_the_data() {
    let mut app = app(small());
    app.training = true;
    app.train_for_a_frame();
    let steps = app.engine.steps_done();
    let ink = png(60, 30, |x, _| if x < 30 { 10 } else { 250 });
    let mut cut = ink.clone();
    cut.truncate(ink.len() / 2);
    let error = app
        .take_in(&Incoming {
            name: "ink.png".into(),
            bytes: cut,
            purpose: Purpose::Dropped,
        })
        .unwrap_err();
    assert!(
        error.starts_with("ink.png: the picture cannot be decoded")
            && error.ends_with("The current data and model are kept."),
        "{error}"
    );
    assert!(app.settings.data.custom.is_none());
    // The picture's dark half: the left of the canvas.
    let said = app
        .take_in(&Incoming {
            name: "ink.png".into(),
            bytes: ink.clone(),
            purpose: Purpose::Data,
        })
        .unwrap();
    assert!(said.contains("16384 points from ink.png"), "{said}");
    assert_eq!(app.engine.steps_done(), steps, "the weights carry on");
    assert_eq!(app.engine.data().len(), POOL_SIZE);
    assert!(app.engine.data().xy.iter().all(|p| p[0] <= 0.0));
    // Bright pixels: the right half.
    app.apply(Command::ImportAs(
        Role::Data,
        flowplay_core::picture::Density::Brightness,
    ));
    app.take_in(&Incoming {
        name: "ink.png".into(),
        bytes: ink,
        purpose: Purpose::Dropped,
    })
    .unwrap();
    assert!(app.engine.data().xy.iter().all(|p| p[0] >= 0.0));
    // A blank picture says what to try.
    let error = app
        .take_in(&Incoming {
            name: "black.png".into(),
            bytes: png(4, 4, |_, _| 0),
            purpose: Purpose::Dropped,
        })
        .unwrap_err();
    assert!(
        error.contains("no bright pixels") && error.contains("try density from darkness"),
        "{error}"
    );
}

/// Points imported or drawn as the source: the particles start from them, the weights carry
/// on, the likelihood is not offered, and a built-in source chosen again replaces them.
#[test]
fn points_become_the_source() {
    let mut app = app(small());
    app.training = true;
    app.train_for_a_frame();
    let steps = app.engine.steps_done();
    app.apply(Command::ImportAs(Role::Source, Default::default()));
    let error = app
        .take_in(&csv_file("bad.csv", "1,2\nx,3\n", Purpose::Data))
        .unwrap_err();
    assert!(
        error.ends_with("The current source and model are kept."),
        "{error}"
    );
    let said = app
        .take_in(&csv_file("ring.csv", &ring(300), Purpose::Dropped))
        .unwrap();
    assert!(
        said.starts_with("The particles now start from your 300 points from ring.csv"),
        "{said}"
    );
    assert_eq!(app.engine.steps_done(), steps);
    assert_eq!(app.settings.data.source_name(), "ring.csv");
    assert_eq!(app.settings.data.name(), "moons", "the data is kept");
    assert_eq!(app.engine.source_pool().map(Points::len), Some(300));
    assert!(!app.engine.config().source.is_standard_normal());
    // The particles start on the ring (radius 1.5; rectified flow's prior scale is 1).
    let request = app.flow_request();
    for i in 0..20 {
        let p = app.engine.particle_start(&request, i).expect("a start");
        let r = (p[0].powi(2) + p[1].powi(2)).sqrt();
        assert!((r - 1.5).abs() < 1e-4, "{p:?}");
    }
    // Training goes on from the new source, and exports integrate from it.
    app.train_for_a_frame();
    assert!(app.engine.steps_done() > steps);
    let model = app.engine.fetch_model(false).unwrap().unwrap();
    let (_, bytes, _) = app.export_bytes(Export::Samples, &model).unwrap();
    assert!(!bytes.is_empty());
    assert!(
        !app.settings.data.is_shareable(),
        "a link cannot carry the points"
    );

    // A drawing as the source.
    app.apply(Command::Paint {
        at: [0.0, 0.0],
        radius: 0.1,
    });
    app.apply(Command::Paint {
        at: [0.0, 0.0],
        radius: 0.1,
    });
    app.apply(Command::UseDrawing(Role::Source));
    assert_eq!(app.settings.data.source_name(), "your drawing");
    assert_eq!(app.engine.source_pool().map(Points::len), Some(12));

    // A built-in source picked in the panel: a new model from N(0, I).
    let mut edited = app.settings.clone();
    edited.data.custom_source = None;
    app.apply(Command::Settings(Box::new(edited)));
    assert!(app.engine.config().source.is_standard_normal());
    assert!(app.engine.source_pool().is_none());
}

#[test]
fn exported_weights_samples_and_trajectories_read_back() {
    let mut app = app(small());
    app.training = true;
    app.train_for_a_frame();
    let model = app
        .engine
        .fetch_model(true)
        .unwrap()
        .expect("the CPU's at once");
    let (name, bytes, _) = app
        .export_bytes(Export::Weights { ema: true }, &model)
        .unwrap();
    assert!(name.starts_with("flowplay-moons-step") && name.ends_with("-ema.safetensors"));
    let back = weights::from_safetensors(&bytes, &name, &weights::default_spec()).unwrap();
    assert!(back.spec_recorded);
    assert_eq!(back.model.params, model.params);

    let (name, bytes, _) = app.export_bytes(Export::Samples, &model).unwrap();
    assert!(name.ends_with("-samples.csv"));
    let samples = parse_points_csv(std::str::from_utf8(&bytes).unwrap(), &name).unwrap();
    assert_eq!(samples.len(), app.settings.sampling.particles);
    // The same particles the canvas draws (same weights, start and solver).
    app.refresh_flow();
    let Some(crate::engine::Flow::Cpu(flow)) = app.engine.flow(CURRENT) else {
        panic!("CPU particles")
    };
    let frames = flow.frames();
    let [x, y] = flow.positions_of(3)[frames - 1];
    assert!((x - samples.xy[3][0]).abs() < 1e-6 && (y - samples.xy[3][1]).abs() < 1e-6);

    let (_, bytes, _) = app.export_bytes(Export::Trajectories, &model).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.starts_with("particle,step,t,x,y,x_hat,y_hat\n"));
    assert_eq!(
        text.lines().count(),
        1 + samples.len() * (app.settings.sampling.steps + 1)
    );
}

#[test]
fn imported_weights_replace_the_model_and_a_bad_file_keeps_it() {
    // Weights of a narrower conditional network trained elsewhere.
    let mut other = small();
    other.model.hidden = 16;
    other.data.dataset = flowplay_core::data::Dataset::EightGaussians;
    other.model.conditional = true;
    other.training.path.kind = crate::settings::PathKind::VpCosine;
    let mut source = app(other);
    source.training = true;
    source.train_for_a_frame();
    let model = source.engine.fetch_model(false).unwrap().unwrap();
    let bytes = weights::to_safetensors(&model);

    let mut app = app(small());
    app.train_for_a_frame();
    let steps = app.engine.steps_done();
    let error = app
        .take_in(&Incoming {
            name: "cut.safetensors".into(),
            bytes: bytes[..bytes.len() - 7].to_vec(),
            purpose: Purpose::Weights,
        })
        .unwrap_err();
    assert!(
        error.starts_with("cut.safetensors: the file is truncated"),
        "{error}"
    );
    assert!(error.ends_with("The current model is kept."), "{error}");
    assert_eq!(app.engine.steps_done(), steps);
    assert_eq!(app.settings.model.hidden, 32);

    let said = app
        .take_in(&Incoming {
            name: "vp.safetensors".into(),
            bytes,
            purpose: Purpose::Dropped,
        })
        .unwrap();
    assert!(
        said.starts_with("Loaded vp.safetensors: hidden 16, depth 2, t-dim 64, vp-cosine"),
        "{said}"
    );
    assert_eq!(app.settings.model.hidden, 16);
    assert!(app.settings.model.conditional);
    assert_eq!(
        app.settings.data.dataset,
        flowplay_core::data::Dataset::EightGaussians
    );
    assert_eq!(
        app.settings.training.path.kind,
        crate::settings::PathKind::VpCosine
    );
    let now = app.engine.fetch_model(false).unwrap().unwrap();
    assert_eq!(now.params, model.params);
    // The model it replaced is one Undo away.
    app.apply(Command::Undo);
    assert_eq!(app.settings.model.hidden, 32);
    assert_eq!(app.engine.steps_done(), steps);
}

/// On the GPU the weights come back on a later frame, and are the trainer's.
#[test]
fn the_gpu_exports_its_weights_without_blocking() {
    let Some(device) = headless_gpu() else {
        return;
    };
    let mut app = PlaygroundApp::build(
        Settings {
            compute: Compute::Gpu,
            ..small()
        },
        device,
    );
    app.training = true;
    run_until(&mut app, |a| a.engine.steps_done() >= 10);
    app.training = false;
    run_until(&mut app, |a| !a.engine.busy());
    assert!(
        app.engine.fetch_model(true).unwrap().is_none(),
        "the read has started"
    );
    let started = web_time::Instant::now();
    let model = loop {
        if let Some(model) = app.engine.fetch_model(true).unwrap() {
            break model;
        }
        assert!(
            started.elapsed().as_secs() < 60,
            "the weights never came back"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(model.params.len(), model.mlp.num_params());
    assert!(model.params.iter().all(|v| v.is_finite()));
    let bytes = weights::to_safetensors(&model);
    let back = weights::from_safetensors(&bytes, "w", &weights::default_spec()).unwrap();
    assert_eq!(back.model.params, model.params);
}

/// The brush paints points of a class in its disc, erases under it, and the drawing becomes the
/// data: one class keeps the model; two make a class-conditional one (one Undo away).
#[test]
fn a_drawing_becomes_the_data() {
    let mut app = app(small());
    app.training = true;
    app.train_for_a_frame();
    let steps = app.engine.steps_done();

    // An empty drawing is refused in plain words.
    app.apply(Command::UseDrawing(Role::Data));
    let notice = app.notice_text().unwrap_or_default();
    assert!(
        notice.starts_with("The drawing has 0 points; paint at least 8"),
        "{notice}"
    );
    assert!(app.settings.data.custom.is_none());

    let mut tool = app.brush;
    tool.on = true;
    tool.density = 10;
    app.apply(Command::Brush(tool));
    for k in 0..6 {
        app.apply(Command::Paint {
            at: [k as f32 * 0.2, 1.0],
            radius: 0.3,
        });
    }
    assert_eq!(app.drawing.xy.len(), 60);
    for (p, &l) in app.drawing.xy.iter().zip(&app.drawing.labels) {
        assert_eq!(l, 0);
        assert!(
            (p[1] - 1.0).abs() <= 0.3 + 1e-6 && p[0] >= -0.3 && p[0] <= 1.3,
            "{p:?}"
        );
    }
    // Erase the left end.
    tool.erase = true;
    app.apply(Command::Brush(tool));
    app.apply(Command::Paint {
        at: [0.0, 1.0],
        radius: 0.35,
    });
    let left = app.drawing.xy.len();
    assert!((30..60).contains(&left), "{left}");
    assert!(
        app.drawing
            .xy
            .iter()
            .all(|p| (p[0].powi(2) + (p[1] - 1.0).powi(2)) > 0.35 * 0.35)
    );
    assert_eq!(app.drawing.labels.len(), left);

    // One class: the weights carry on.
    app.apply(Command::UseDrawing(Role::Data));
    assert_eq!(app.engine.steps_done(), steps, "{:?}", app.notice_text());
    assert_eq!(app.engine.data().len(), left);
    assert_eq!(app.settings.data.name(), "your drawing");
    assert_eq!(app.settings.classes(), 0);

    // Classes 5 and 2 painted beside the class-0 points: renumbered 0, 1, 2, a conditional
    // model.
    tool.erase = false;
    tool.class = 5;
    app.apply(Command::Brush(tool));
    app.apply(Command::Paint {
        at: [-1.0, -1.0],
        radius: 0.2,
    });
    tool.class = 2;
    app.apply(Command::Brush(tool));
    app.apply(Command::Paint {
        at: [1.0, -1.0],
        radius: 0.2,
    });
    app.apply(Command::UseDrawing(Role::Data));
    assert_eq!(app.settings.classes(), 3, "{:?}", app.notice_text());
    assert!(app.settings.model.conditional);
    assert_eq!(app.engine.steps_done(), 0, "a new model");
    assert!(
        app.notice_text()
            .unwrap_or_default()
            .contains("one Undo away")
    );
    let labels = app.engine.data().labels.clone().expect("labelled");
    assert!(labels.iter().all(|&l| l < 3));
    assert_eq!(labels.len(), left + 20);
    // The drawing and the brush stay with the new model, to paint on.
    assert_eq!(app.drawing.xy.len(), left + 20);
    assert!(app.brush.on);
    app.apply(Command::ClearDrawing);
    assert!(app.drawing.xy.is_empty());
}

/// On the GPU too, points as the source: the trainer takes them without a new model and the
/// particles start from them.
#[test]
fn the_gpu_trains_from_a_custom_source() {
    let Some(device) = headless_gpu() else {
        return;
    };
    let mut app = PlaygroundApp::build(
        Settings {
            compute: Compute::Gpu,
            ..small()
        },
        device,
    );
    app.training = true;
    run_until(&mut app, |a| a.engine.steps_done() >= 5);
    app.apply(Command::ImportAs(Role::Source, Default::default()));
    let said = app
        .take_in(&csv_file("ring.csv", &ring(300), Purpose::Data))
        .unwrap();
    assert!(said.starts_with("The particles now start"), "{said}");
    assert_eq!(app.engine.backend(), Backend::Gpu);
    let steps = app.engine.steps_done();
    run_until(&mut app, |a| a.engine.steps_done() >= steps + 5);
    assert!(app.curves.loss.iter().all(|p| p[1].is_finite()));
    let request = app.flow_request();
    let p = app.engine.particle_start(&request, 3).expect("a start");
    assert!(
        ((p[0].powi(2) + p[1].powi(2)).sqrt() - 1.5).abs() < 1e-4,
        "{p:?}"
    );
}

/// A screenshot of `size` pixels whose every pixel is `grey`.
fn screenshot(size: [usize; 2], grey: u8) -> egui::ColorImage {
    egui::ColorImage::filled(size, egui::Color32::from_gray(grey))
}

/// Frames as eframe runs them, a screenshot coming back a frame after it is asked for (its
/// grey the time shown), until the capture ends.
fn capture_frames(app: &mut PlaygroundApp, ctx: &egui::Context) -> Vec<f32> {
    let mut times = Vec::new();
    for _ in 0..1000 {
        if app.files.capture.is_none() {
            break;
        }
        app.work(0.016);
        app.capture_before_drawing();
        let grey = (app.player.time * 200.0) as u8;
        if app.deliver_screenshot(screenshot([200, 120], grey)) {
            times.push(app.player.time);
        }
        app.capture_after_drawing(ctx);
    }
    times
}

/// The flow as a GIF: training and the player pause, the canvas is shown at t = 0, 1/40, … 1,
/// each held until its screenshot is back, cropped to the canvas; then the GIF is saved and
/// training resumes.
#[test]
fn the_flow_is_saved_as_a_gif_frame_by_frame() {
    let mut app = app(small());
    app.training = true;
    app.train_for_a_frame();
    let ctx = egui::Context::default();
    app.canvas.rect = Some(egui::Rect::from_min_size(
        egui::pos2(20.0, 10.0),
        egui::vec2(100.0, 80.0),
    ));
    app.apply(Command::Capture(crate::media::Picture::Gif));
    assert!(!app.training && !app.player.playing);
    let times = capture_frames(&mut app, &ctx);
    assert_eq!(times.len(), 41);
    for (k, t) in times.iter().enumerate() {
        assert!((t - k as f32 / 40.0).abs() < 1e-6, "{k}: {t}");
    }
    assert!(app.files.capture.is_none());
    assert!(app.training && app.player.playing, "resumed");
    let notice = app.notice_text().unwrap_or_default();
    assert!(
        notice.contains("-flow.gif (41 frames of 100×80)"),
        "{notice}"
    );
    let saved = crate::files::take_saved();
    assert_eq!(saved.len(), 1);
    assert!(
        saved[0].0.starts_with("flowplay-moons-step"),
        "{}",
        saved[0].0
    );
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    let mut decoder = options
        .read_info(std::io::Cursor::new(&saved[0].1))
        .expect("a GIF");
    let mut greys = Vec::new();
    while let Some(frame) = decoder.read_next_frame().expect("a frame") {
        assert_eq!((frame.width, frame.height), (100, 80));
        greys.push(frame.buffer[0]);
    }
    assert_eq!(greys.len(), 41);
    // The frames in order: t = 0 black, t = 1 light grey, each within the palette's error.
    for (k, g) in greys.iter().enumerate() {
        let want = (k as f32 / 40.0 * 200.0) as u8;
        assert!(g.abs_diff(want) <= 6, "frame {k}: {g} vs {want}");
    }
}

/// The canvas as a PNG, at the time shown; a screenshot that never comes back ends the capture
/// with a notice and resumes training.
#[test]
fn the_canvas_is_saved_as_a_png() {
    let mut app = app(small());
    let ctx = egui::Context::default();
    app.canvas.rect = Some(egui::Rect::from_min_size(
        egui::pos2(0.0, 0.0),
        egui::vec2(50.0, 30.0),
    ));
    app.player.time = 0.5;
    app.apply(Command::Capture(crate::media::Picture::Png));
    let times = capture_frames(&mut app, &ctx);
    assert_eq!(times, [0.5]);
    let saved = crate::files::take_saved();
    assert!(saved[0].0.ends_with(".png"), "{}", saved[0].0);
    let png = image::load_from_memory(&saved[0].1)
        .expect("a PNG")
        .to_rgba8();
    assert_eq!(png.dimensions(), (50, 30));
    assert_eq!(png.get_pixel(3, 3).0, [100, 100, 100, 255]);

    app.training = true;
    app.apply(Command::Capture(crate::media::Picture::Png));
    for _ in 0..700 {
        app.work(0.016);
        app.capture_before_drawing();
        app.capture_after_drawing(&ctx);
    }
    assert!(app.files.capture.is_none());
    let notice = app.notice_text().unwrap_or_default();
    assert!(
        notice.contains("the screenshot never came back"),
        "{notice}"
    );
    assert!(app.training);
    // WebM needs the browser's encoder.
    app.apply(Command::Capture(crate::media::Picture::Webm));
    assert!(app.files.capture.is_none());
    assert!(
        app.notice_text()
            .unwrap_or_default()
            .contains("no WebCodecs VideoEncoder")
    );
}
