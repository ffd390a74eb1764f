//! Files in and out: imported points and weights, every failure said once with the run kept,
//! and exports that read back.

use flowplay_core::data::parse_points_csv;
use flowplay_core::weights;

use super::tests::{app, headless_gpu, run_until, small};
use super::*;
use crate::command::Export;
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
    // Training goes on on the new data.
    app.train_for_a_frame();
    assert!(app.engine.steps_done() > steps);
    // A built-in dataset chosen again replaces the points.
    let mut edited = app.settings.clone();
    edited.data.custom = None;
    app.apply(Command::Settings(Box::new(edited)));
    assert_eq!(app.engine.data().len(), POOL_SIZE);

    // Too many points are capped with a notice; other files are refused by name.
    let said = app
        .take_in(&csv_file(
            "big.csv",
            &ring(io::MAX_IMPORTED_POINTS + 10),
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
    assert!(error.contains("takes points as .csv and weights as .safetensors"));
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
