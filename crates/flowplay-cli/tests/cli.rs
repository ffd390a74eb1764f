//! End-to-end tests of the `flowplay` binary: outputs, reproducibility, and bad input.

#![allow(clippy::unwrap_used, reason = "a test fails loudly")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn flowplay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowplay"))
        .args(args)
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flowplay-cli-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A small, fast training run.
const SMALL: &[&str] = &[
    "train", "--t-dim", "16", "--batch", "128", "--steps", "60", "--eval-n", "200", "--quiet",
];

fn train_small(dir: &Path, extra: &[&str]) -> Output {
    let out = dir.to_str().unwrap();
    let mut args: Vec<&str> = SMALL.to_vec();
    if !extra.contains(&"--hidden") {
        args.extend_from_slice(&["--hidden", "32"]);
    }
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--out", out]);
    flowplay(&args)
}

/// Asserts a failure: exit status 2 and exactly one line on stderr that contains `needle`.
#[track_caller]
fn assert_bad_input(output: &Output, needle: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(2), "stderr: {err}");
    assert_eq!(
        err.trim().lines().count(),
        1,
        "one line expected, got: {err}"
    );
    assert!(err.contains(needle), "{err:?} should mention {needle:?}");
}

#[test]
fn train_writes_every_output_and_is_reproducible() {
    let dir = scratch("train");
    let (a, b) = (dir.join("a"), dir.join("b"));
    for target in [&a, &b] {
        let output = train_small(target, &["--seed", "7"]);
        assert!(output.status.success(), "{}", stderr(&output));
    }
    for file in [
        "config.json",
        "metrics.json",
        "weights.safetensors",
        "weights_ema.safetensors",
        "samples.csv",
        "plot.png",
    ] {
        assert!(a.join(file).is_file(), "{file} missing");
    }
    // Same seed, same result, bit for bit.
    for file in ["weights.safetensors", "samples.csv"] {
        assert_eq!(
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
            "{file} differs between two runs with the same seed"
        );
    }
    let samples = std::fs::read_to_string(a.join("samples.csv")).unwrap();
    assert!(samples.starts_with("x,y\n"));
    assert_eq!(samples.lines().count(), 201);
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["loss"].as_array().unwrap().len(), 60);
    assert!(metrics["final_quality_raw"]["w2"].as_f64().unwrap() > 0.0);
    // No staging directory is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Sample from the weights, with trajectories, and evaluate.
    let weights = a.join("weights.safetensors");
    let csv = dir.join("s.csv");
    let traj = dir.join("t.csv");
    let output = flowplay(&[
        "sample",
        "--weights",
        weights.to_str().unwrap(),
        "--solver",
        "heun",
        "--steps",
        "5",
        "--n",
        "50",
        "--out",
        csv.to_str().unwrap(),
        "--trajectories",
        traj.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("10 evaluations"));
    assert_eq!(std::fs::read_to_string(&csv).unwrap().lines().count(), 51);
    let traj_text = std::fs::read_to_string(&traj).unwrap();
    assert!(traj_text.starts_with("particle,step,t,x,y,x_hat,y_hat\n"));
    assert_eq!(traj_text.lines().count(), 1 + 50 * 6);
    let output = flowplay(&[
        "eval",
        "--samples",
        csv.to_str().unwrap(),
        "--dataset",
        "moons",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("W2 "));
}

#[test]
fn conditional_training_reflow_and_guided_sampling() {
    let dir = scratch("cond");
    let run = dir.join("run");
    let output = train_small(
        &run,
        &[
            "--class-cond",
            "--reflow",
            "1",
            "--reflow-steps",
            "20",
            "--reflow-pairs",
            "256",
            "--reflow-solver-steps",
            "4",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(run.join("weights_round1.safetensors").is_file());
    let weights = run.join("weights.safetensors");
    let csv = dir.join("c.csv");
    let args = [
        "sample",
        "--weights",
        weights.to_str().unwrap(),
        "--n",
        "20",
        "--class",
        "1",
        "--cfg",
        "2.5",
        "--steps",
        "4",
        "--out",
        csv.to_str().unwrap(),
    ];
    let output = flowplay(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("x,y,label\n") && text.lines().skip(1).all(|l| l.ends_with(",1")));
    // A class the model does not know.
    let mut bad = args;
    bad[6] = "5";
    assert_bad_input(&flowplay(&bad), "class 5 does not exist");
}

#[test]
fn your_own_points_as_data_and_as_source() {
    let dir = scratch("own-points");
    let data = dir.join("data.csv");
    let source = dir.join("source.csv");
    let ring: String = (0..64)
        .map(|i| {
            let a = f64::from(i) * std::f64::consts::TAU / 64.0;
            format!("{},{}\n", 2.0 * a.cos(), 2.0 * a.sin())
        })
        .collect();
    std::fs::write(&data, format!("x,y\n{ring}")).unwrap();
    std::fs::write(&source, "x,y\n0,0\n0.1,0\n0,0.1\n-0.1,-0.1\n").unwrap();
    let run = dir.join("run");
    let output = train_small(
        &run,
        &[
            "--points",
            data.to_str().unwrap(),
            "--source-points",
            source.to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let weights = run.join("weights.safetensors");
    let out = dir.join("s.csv");
    let base = [
        "sample",
        "--weights",
        weights.to_str().unwrap(),
        "--n",
        "10",
        "--out",
        out.to_str().unwrap(),
    ];
    assert_bad_input(&flowplay(&base), "give them with --source-points");
    let mut with_source = base.to_vec();
    with_source.extend_from_slice(&["--source-points", source.to_str().unwrap()]);
    let output = flowplay(&with_source);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 11);
}

#[test]
fn bad_training_input_is_refused_without_output() {
    let dir = scratch("bad-train");
    let out = dir.join("never");
    let o = out.to_str().unwrap();
    let junk = dir.join("junk.csv");
    std::fs::write(&junk, "x,y\n0.5,1\n2,abc\n").unwrap();
    let junk = junk.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["train", "--dataset", "mooons", "--out", o],
            "unknown dataset 'mooons'",
        ),
        (
            &["train", "--hidden", "0", "--out", o],
            "hidden must be between 1 and 4096, got 0",
        ),
        (
            &["train", "--batch", "0", "--out", o],
            "batch must be between 1",
        ),
        (&["train", "--batch", "-5", "--out", o], "--batch"),
        (
            &["train", "--t-dim", "7", "--out", o],
            "t-dim must be an even number",
        ),
        (
            &["train", "--lr", "-1", "--out", o],
            "learning rate must be positive",
        ),
        (
            &["train", "--steps", "0", "--out", o],
            "--steps must be at least 1",
        ),
        (
            &["train", "--path", "ve", "--sigma-max", "0.001", "--out", o],
            "sigma-max of VE must be larger",
        ),
        (
            &["train", "--sigma-max", "5", "--out", o],
            "--sigma-max applies only to the ve path",
        ),
        (
            &[
                "train",
                "--dataset",
                "checkerboard",
                "--class-cond",
                "--out",
                o,
            ],
            "has none",
        ),
        (
            &["train", "--points", junk, "--out", o],
            "junk.csv, line 3: y 'abc' is not a number",
        ),
        (&["train", "--solver", "euler", "--out", o], "--solver"),
    ];
    for (args, needle) in cases {
        let output = flowplay(args);
        assert_bad_input(&output, needle);
        assert!(!out.exists(), "{args:?} left {}", out.display());
    }
}

#[test]
fn an_exploding_loss_is_a_divergence_that_writes_nothing() {
    // The run: the loss goes from 3.8 to 10²² in three steps without ever being NaN.
    let dir = scratch("explode");
    let out = dir.join("run");
    let output = flowplay(&[
        "train",
        "--lr",
        "10",
        "--hidden",
        "64",
        "--t-dim",
        "16",
        "--batch",
        "256",
        "--steps",
        "300",
        "--quiet",
        "--backend",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_bad_input(&output, "training diverged at step");
    assert!(stderr(&output).contains("its median over the last"));
    assert!(stderr(&output).contains("lower the learning rate (now 10)"));
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "no staging left"
    );
}

#[test]
fn sizes_are_bounded_before_anything_is_allocated() {
    let dir = scratch("bounds");
    let o = dir.join("never");
    let o = o.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["train", "--pool", "1000000000000", "--out", o],
            "--pool must be between 1 and",
        ),
        (
            &["train", "--eval-n", "200000", "--out", o],
            "--eval-n must be between 2 and 20000",
        ),
        (
            &[
                "train",
                "--reflow",
                "1",
                "--reflow-pairs",
                "1000000000000",
                "--out",
                o,
            ],
            "--reflow-pairs must be between 1 and",
        ),
        (
            &["train", "--threads", "100000", "--out", o],
            "--threads must be at most",
        ),
        (
            &["bench", "--particles", "1000000000000"],
            "--particles must be between 1 and",
        ),
        (
            &["bench", "--seconds", "1e300"],
            "--seconds must be positive and at most 3600",
        ),
    ];
    for (args, needle) in cases {
        assert_bad_input(&flowplay(args), needle);
    }
    let run = dir.join("run");
    assert!(train_small(&run, &[]).status.success());
    let w = run.join("weights.safetensors");
    let s = dir.join("s.csv");
    assert_bad_input(
        &flowplay(&[
            "sample",
            "--weights",
            w.to_str().unwrap(),
            "--n",
            "1000000",
            "--steps",
            "100000",
            "--trajectories",
            dir.join("t.csv").to_str().unwrap(),
            "--out",
            s.to_str().unwrap(),
        ]),
        "--trajectories of these --n and --steps would need",
    );
    // An eval of more points than the exact W2 can take.
    let big = dir.join("big.csv");
    let mut text = String::from("x,y\n");
    for i in 0..20_001 {
        text.push_str(&format!("{},{}\n", i % 7, i % 11));
    }
    std::fs::write(&big, text).unwrap();
    assert_bad_input(
        &flowplay(&["eval", "--samples", big.to_str().unwrap()]),
        "has 20001 points; the exact W2 is cubic",
    );
    assert!(!Path::new(o).exists());
}

#[test]
fn devices_half_precision_and_odd_csv_files() {
    let dir = scratch("files");
    let s = dir.join("s.csv");
    let s = s.to_str().unwrap();
    // A device never returns data's end: refused before a byte is read.
    for device in ["/dev/zero", "/dev/urandom"] {
        assert_bad_input(
            &flowplay(&["sample", "--weights", device, "--out", s]),
            "is not a regular file",
        );
    }
    assert_bad_input(
        &flowplay(&["sample", "--weights", dir.to_str().unwrap(), "--out", s]),
        "is not a regular file",
    );

    // The Quick Reference's network saved by PyTorch in half precision: F16 and BF16.
    let run = dir.join("run");
    assert!(train_small(&run, &[]).status.success());
    let bytes = std::fs::read(run.join("weights.safetensors")).unwrap();
    let model = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for dtype in [safetensors::Dtype::F16, safetensors::Dtype::BF16] {
        let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = model
            .iter()
            .map(|(name, view)| {
                let data = view
                    .data()
                    .chunks_exact(4)
                    .flat_map(|c| {
                        let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                        match dtype {
                            safetensors::Dtype::F16 => half::f16::from_f32(v).to_le_bytes(),
                            _ => half::bf16::from_f32(v).to_le_bytes(),
                        }
                    })
                    .collect();
                (name.to_owned(), view.shape().to_vec(), data)
            })
            .collect();
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
            .iter()
            .map(|(n, shape, data)| {
                let view = safetensors::tensor::TensorView::new(dtype, shape.clone(), data);
                (n.clone(), view.unwrap())
            })
            .collect();
        let file = dir.join(format!("{dtype:?}.safetensors"));
        std::fs::write(&file, safetensors::serialize(views, None).unwrap()).unwrap();
        let out = dir.join(format!("{dtype:?}.csv"));
        let output = flowplay(&[
            "sample",
            "--weights",
            file.to_str().unwrap(),
            "--n",
            "50",
            "--t-scale",
            "1",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(output.status.success(), "{dtype:?}: {}", stderr(&output));
        let samples = std::fs::read_to_string(&out).unwrap();
        assert_eq!(samples.lines().count(), 51);
        // Both sample what the F32 weights sample, up to the rounding of the weights.
        let full = flowplay(&[
            "sample",
            "--weights",
            run.join("weights.safetensors").to_str().unwrap(),
            "--n",
            "50",
            "--out",
            dir.join("f32.csv").to_str().unwrap(),
        ]);
        assert!(full.status.success());
        let parse = |t: &str| -> Vec<f32> {
            t.lines()
                .skip(1)
                .flat_map(|l| l.split(',').map(|v| v.parse::<f32>().unwrap()))
                .collect()
        };
        let f32s = parse(&std::fs::read_to_string(dir.join("f32.csv")).unwrap());
        let worst = parse(&samples)
            .iter()
            .zip(&f32s)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0_f32, f32::max);
        assert!(worst < 0.1, "{dtype:?}: samples differ by {worst}");
    }

    // A byte-order mark, a Latin-1 byte, and values too large to be coordinates.
    let csv = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let train_on = |path: &Path| {
        let out = dir.join("t");
        train_small(&out, &["--points", path.to_str().unwrap()])
    };
    let mut bom = b"\xef\xbb\xbfx,y\n".to_vec();
    for i in 0..64 {
        bom.extend_from_slice(
            format!("{},{}\n", (i % 8) as f32 * 0.1, (i / 8) as f32 * 0.1).as_bytes(),
        );
    }
    let output = train_on(&csv("bom.csv", &bom));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_bad_input(
        &train_on(&csv("latin1.csv", b"x,y\n1,2\n3,\xe94\n")),
        "latin1.csv, line 3: byte 0xe9 at column 3 is not UTF-8",
    );
    assert_bad_input(
        &train_on(&csv("huge.csv", b"1,2\n3e38,1\n")),
        "huge.csv, line 2: x '3e38' is too large",
    );
}

#[test]
fn probing_the_gpu_prints_only_our_own_lines() {
    let dir = scratch("quiet");
    let output = Command::new(env!("CARGO_BIN_EXE_flowplay"))
        .args([
            "train", "--steps", "2", "--eval-n", "20", "--quiet", "--t-dim", "16",
        ])
        .args(["--hidden", "16", "--out", dir.join("run").to_str().unwrap()])
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(stderr(&output), "", "stderr must be empty");
}

#[test]
fn a_new_run_replaces_the_old_one_as_a_whole() {
    let dir = scratch("replace");
    let out = dir.join("run");
    assert!(
        train_small(
            &out,
            &[
                "--reflow",
                "1",
                "--reflow-steps",
                "5",
                "--reflow-pairs",
                "64"
            ]
        )
        .status
        .success()
    );
    assert!(out.join("weights_round1.safetensors").exists());
    assert!(train_small(&out, &[]).status.success());
    assert!(
        !out.join("weights_round1.safetensors").exists(),
        "an earlier run's file stayed"
    );
    std::fs::create_dir(out.join("mine")).unwrap();
    assert_bad_input(
        &train_small(&out, &[]),
        "holds 'mine', which a flowplay run does not write",
    );
    assert!(
        out.join("weights.safetensors").exists(),
        "the refused run kept the old results"
    );
}

#[test]
fn a_diverging_learning_rate_stops_cleanly() {
    let dir = scratch("diverge");
    let out = dir.join("run");
    let output = train_small(&out, &["--lr", "1e30", "--clip", "0"]);
    assert_bad_input(&output, "training diverged at step");
    assert!(stderr(&output).contains("lower the learning rate"));
    assert!(!out.exists());
}

#[test]
fn bad_weights_and_samples_are_explained() {
    let dir = scratch("bad-files");
    let run = dir.join("run");
    assert!(train_small(&run, &[]).status.success());
    let good = std::fs::read(run.join("weights.safetensors")).unwrap();
    let out = dir.join("s.csv");
    let o = out.to_str().unwrap();
    let sample =
        |weights: &Path| flowplay(&["sample", "--weights", weights.to_str().unwrap(), "--out", o]);

    let truncated = dir.join("truncated.safetensors");
    std::fs::write(&truncated, &good[..good.len() - 100]).unwrap();
    assert_bad_input(&sample(&truncated), "the file is truncated");

    let tiny = dir.join("tiny.safetensors");
    std::fs::write(&tiny, &good[..4]).unwrap();
    assert_bad_input(&sample(&tiny), "truncated");

    let nan = dir.join("nan.safetensors");
    let mut bytes = good.clone();
    let at = bytes.len() - 4;
    bytes[at..].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&nan, &bytes).unwrap();
    assert_bad_input(&sample(&nan), "holds NaN");

    let text = dir.join("text.safetensors");
    std::fs::write(&text, b"this is not a weights file at all").unwrap();
    assert_bad_input(&sample(&text), "not a safetensors file");

    // Weights of another network shape, claiming to be this one.
    let other = dir.join("other");
    assert!(train_small(&other, &["--hidden", "24"]).status.success());
    let mut mixed = std::fs::read(other.join("weights.safetensors")).unwrap();
    let header_len = u64::from_le_bytes(mixed[..8].try_into().unwrap()) as usize;
    let header = String::from_utf8(mixed[8..8 + header_len].to_vec()).unwrap();
    let lied = header.replacen("\\\"hidden\\\":24", "\\\"hidden\\\":32", 1);
    mixed[8..8 + header_len].copy_from_slice(lied.as_bytes());
    let wrong = dir.join("wrong.safetensors");
    std::fs::write(&wrong, &mixed).unwrap();
    assert_bad_input(&sample(&wrong), "has shape [24, 16], expected [32, 16]");

    assert_bad_input(&sample(&dir.join("missing.safetensors")), "cannot read");
    assert!(!out.exists(), "a failed sample left {o}");

    let weights = run.join("weights.safetensors");
    let w = weights.to_str().unwrap();
    assert_bad_input(
        &flowplay(&["sample", "--weights", w, "--n", "0", "--out", o]),
        "--n must be between 1",
    );
    assert_bad_input(
        &flowplay(&["sample", "--weights", w, "--steps", "0", "--out", o]),
        "steps must be between 1",
    );
    assert_bad_input(
        &flowplay(&["sample", "--weights", w, "--class", "1", "--out", o]),
        "trained without classes",
    );
    assert_bad_input(
        &flowplay(&["sample", "--weights", w, "--path", "ve", "--out", o]),
        "records how it was trained",
    );

    // eval: junk on a line, and sizes that differ.
    let junk = dir.join("junk.csv");
    std::fs::write(&junk, "x,y\n1,2\n3,4\n5;6\n").unwrap();
    assert_bad_input(
        &flowplay(&["eval", "--samples", junk.to_str().unwrap()]),
        "junk.csv, line 4: expected 2 or 3 comma-separated values",
    );
    let small = dir.join("small.csv");
    std::fs::write(&small, "x,y\n1,2\n").unwrap();
    let two = dir.join("two.csv");
    std::fs::write(&two, "1,2\n3,4\n").unwrap();
    assert_bad_input(
        &flowplay(&[
            "eval",
            "--samples",
            small.to_str().unwrap(),
            "--points",
            two.to_str().unwrap(),
        ]),
        "exact W2 needs equal sizes",
    );
}

/// `--backend gpu` trains the same run as the CPU (the same batches, weights equal to rounding)
/// and samples the same points. Without a GPU this test returns early, unless
/// `FLOWPLAY_REQUIRE_GPU` is set (as `.ci/run` does): then a missing GPU fails it.
#[test]
fn the_gpu_backend_trains_and_samples_like_the_cpu() {
    let dir = scratch("gpu");
    let (gpu, cpu) = (dir.join("gpu"), dir.join("cpu"));
    let small = ["--hidden", "16", "--seed", "3"];
    let output = train_small(&gpu, &[&small[..], &["--backend", "gpu"]].concat());
    if !output.status.success() {
        let err = stderr(&output);
        let required =
            std::env::var("FLOWPLAY_REQUIRE_GPU").is_ok_and(|v| !v.is_empty() && v != "0");
        assert!(
            !required && err.contains("no GPU"),
            "--backend gpu failed: {err}"
        );
        eprintln!("no GPU, skipping: {err}");
        return;
    }
    let output = train_small(&cpu, &[&small[..], &["--backend", "cpu"]].concat());
    assert!(output.status.success(), "{}", stderr(&output));
    let losses = |dir: &Path| -> Vec<f64> {
        let metrics: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap())
                .unwrap();
        assert!(metrics["backend"].as_str().is_some());
        metrics["loss"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let (lg, lc) = (losses(&gpu), losses(&cpu));
    assert_eq!(lg.len(), 60);
    for (i, (g, c)) in lg.iter().zip(&lc).enumerate() {
        assert!(
            (g - c).abs() <= 1e-3 * c.abs(),
            "loss {i}: GPU {g} vs CPU {c}"
        );
    }
    // Sampling the same weights on both backends gives the same points.
    let weights = cpu.join("weights.safetensors");
    let sample = |backend: &str| -> Vec<f64> {
        let csv = dir.join(format!("{backend}.csv"));
        let output = flowplay(&[
            "sample",
            "--weights",
            weights.to_str().unwrap(),
            "--solver",
            "rk4",
            "--steps",
            "4",
            "--n",
            "300",
            "--out",
            csv.to_str().unwrap(),
            "--backend",
            backend,
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        std::fs::read_to_string(&csv)
            .unwrap()
            .lines()
            .skip(1)
            .flat_map(|l| {
                l.split(',')
                    .map(|v| v.parse::<f64>().unwrap())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let (sg, sc) = (sample("gpu"), sample("cpu"));
    assert_eq!(sg.len(), 600);
    for (g, c) in sg.iter().zip(&sc) {
        assert!(
            (g - c).abs() <= 1e-4 * (1.0 + c.abs()),
            "sample: GPU {g} vs CPU {c}"
        );
    }
}

#[test]
fn logp_writes_the_density_of_every_point_in_order() {
    let dir = scratch("logp");
    let run = dir.join("run");
    let output = train_small(&run, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let weights = run.join("weights_ema.safetensors");
    // A grid over [−5, 5]², where a moons model keeps all but a negligible tail of its mass.
    let cells = 50;
    let cell = 10.0 / f64::from(cells);
    let mut csv = String::from("x,y\n");
    for j in 0..cells {
        for i in 0..cells {
            let x = -5.0 + (f64::from(i) + 0.5) * cell;
            let y = -5.0 + (f64::from(j) + 0.5) * cell;
            csv.push_str(&format!("{x},{y}\n"));
        }
    }
    let points = dir.join("grid.csv");
    std::fs::write(&points, &csv).unwrap();
    let out = dir.join("logp.csv");
    let output = flowplay(&[
        "logp",
        "--weights",
        weights.to_str().unwrap(),
        "--points",
        points.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--steps",
        "16",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("x,y,logp"));
    let mut mass = 0.0;
    let mut rows = 0;
    for (line, input) in lines.zip(csv.lines().skip(1)) {
        let (xy, logp) = line.rsplit_once(',').unwrap();
        let parse = |s: &str| -> Vec<f64> { s.split(',').map(|v| v.parse().unwrap()).collect() };
        let (got, want) = (parse(xy), parse(input));
        assert!(
            (got[0] - want[0]).abs() < 1e-5 && (got[1] - want[1]).abs() < 1e-5,
            "the points in order: {xy} for {input}"
        );
        let logp: f64 = logp.parse().unwrap();
        assert!(logp.is_finite());
        mass += logp.exp() * cell * cell;
        rows += 1;
    }
    assert_eq!(rows, cells * cells);
    // p₁ is a density: it integrates to one (the grid's quadrature error is about 1 %).
    assert!((mass - 1.0).abs() < 0.05, "∫ p₁ = {mass}");

    // A data-to-data model has no known source density; --cfg needs --class.
    let d2d = dir.join("d2d");
    let output = train_small(&d2d, &["--source", "circles"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let d2d_weights = d2d.join("weights.safetensors");
    let args = |w: &Path| {
        vec![
            "logp".to_string(),
            "--weights".into(),
            w.to_str().unwrap().into(),
            "--points".into(),
            points.to_str().unwrap().into(),
            "--out".into(),
            dir.join("bad.csv").to_str().unwrap().into(),
        ]
    };
    let run_args = |a: Vec<String>| flowplay(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_bad_input(&run_args(args(&d2d_weights)), "likelihood is not defined");
    let mut with_cfg = args(&weights);
    with_cfg.extend(["--cfg".to_string(), "2".to_string()]);
    assert_bad_input(&run_args(with_cfg), "--cfg needs --class");
    assert!(!dir.join("bad.csv").exists(), "nothing written on failure");
}

#[test]
fn sweep_measures_every_solver_on_one_nfe_axis() {
    let dir = scratch("sweep");
    let run = dir.join("run");
    let output = train_small(&run, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let weights = run.join("weights_ema.safetensors");
    let sweep = |extra: &[&str]| {
        let mut args = vec![
            "sweep",
            "--weights",
            weights.to_str().unwrap(),
            "--dataset",
            "moons",
            "--n",
            "300",
        ];
        args.extend_from_slice(extra);
        flowplay(&args)
    };
    let parse = |output: &Output| -> Vec<serde_json::Value> {
        assert!(output.status.success(), "{}", stderr(output));
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let lines = parse(&sweep(&["--json", "--backend", "cpu"]));
    // Euler at NFE 1…64, Heun at 2…64, RK4 at 4…64: one line each.
    assert_eq!(lines.len(), 7 + 6 + 5, "{lines:?}");
    let evals = |solver: &str| match solver {
        "euler" => 1,
        "heun" => 2,
        "rk4" => 4,
        other => panic!("solver {other}"),
    };
    for line in &lines {
        let solver = line["solver"].as_str().unwrap();
        let steps = line["steps"].as_u64().unwrap();
        let nfe = line["nfe"].as_u64().unwrap();
        assert_eq!(nfe, steps * evals(solver), "{line}");
        assert!(nfe.is_power_of_two() && nfe <= 64, "{line}");
        assert!(line["w2"].as_f64().unwrap() > 0.0, "{line}");
        assert!(line["nll"].as_f64().unwrap().is_finite(), "{line}");
        assert!(line["secs"].as_f64().unwrap() >= 0.0, "{line}");
    }
    // At 64 evaluations every solver has converged to the same flow: the same samples (from
    // the same source points) and the same likelihood, to within the solvers' small errors.
    let at_64: Vec<&serde_json::Value> = lines.iter().filter(|l| l["nfe"] == 64).collect();
    assert_eq!(at_64.len(), 3);
    for pair in at_64.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        assert!(
            (a["w2"].as_f64().unwrap() - b["w2"].as_f64().unwrap()).abs() < 0.03,
            "{a} vs {b}"
        );
        assert!(
            (a["nll"].as_f64().unwrap() - b["nll"].as_f64().unwrap()).abs() < 0.05,
            "{a} vs {b}"
        );
    }
    // The same table as text: a header line, the column names, a row per setting.
    let text = sweep(&["--max-nfe", "4", "--no-nll", "--backend", "cpu"]);
    assert!(text.status.success(), "{}", stderr(&text));
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert_eq!(text.lines().count(), 2 + 3 + 2 + 1, "{text}");
    assert!(text.contains("skipped (--no-nll)"), "{text}");

    // Where there is a GPU (llvmpipe in CI), the WGSL sampler gives the CPU's figures.
    let gpu = sweep(&["--json", "--max-nfe", "8", "--backend", "gpu"]);
    if gpu.status.success() {
        let gpu = parse(&gpu);
        let cpu: Vec<&serde_json::Value> = lines
            .iter()
            .filter(|l| l["nfe"].as_u64() <= Some(8))
            .collect();
        assert_eq!(gpu.len(), cpu.len());
        for (g, c) in gpu.iter().zip(cpu) {
            assert_eq!((&g["solver"], &g["steps"]), (&c["solver"], &c["steps"]));
            assert!((g["w2"].as_f64().unwrap() - c["w2"].as_f64().unwrap()).abs() < 1e-3);
            assert!((g["nll"].as_f64().unwrap() - c["nll"].as_f64().unwrap()).abs() < 1e-2);
        }
    } else {
        let required =
            std::env::var("FLOWPLAY_REQUIRE_GPU").is_ok_and(|v| !v.is_empty() && v != "0");
        assert!(!required, "--backend gpu failed: {}", stderr(&gpu));
    }

    // Bad input: one line, exit 2.
    let w = weights.to_str().unwrap();
    assert_bad_input(
        &flowplay(&["sweep", "--weights", w, "--n", "1"]),
        "--n must be between 2 and 20000",
    );
    assert_bad_input(
        &flowplay(&["sweep", "--weights", w, "--n", "30000"]),
        "exact W2 is cubic",
    );
    assert_bad_input(
        &sweep(&["--max-nfe", "0"]),
        "--max-nfe must be between 1 and 1024",
    );
    let d2d = dir.join("d2d");
    let output = train_small(&d2d, &["--source", "circles"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let d2d_weights = d2d.join("weights.safetensors");
    let output = flowplay(&[
        "sweep",
        "--weights",
        d2d_weights.to_str().unwrap(),
        "--n",
        "200",
        "--max-nfe",
        "2",
        "--json",
        "--backend",
        "cpu",
    ]);
    // A data-to-data model has no likelihood: NLL is null, W2 is there.
    for line in parse(&output) {
        assert!(
            line["nll"].is_null() && line["w2"].as_f64().is_some(),
            "{line}"
        );
    }
}
