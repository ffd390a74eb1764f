//! The playground's entry points: a native window, or the web page's canvas.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    // Only the app's own lines on a headless machine (no "XDG_RUNTIME_DIR is invalid").
    flowplay_gpu::quiet_device_select();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--bench") {
        return bench(&args[1..]);
    }
    if args.first().is_some_and(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return std::process::ExitCode::SUCCESS;
    }
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1100.0, 760.0])
            .with_min_inner_size([640.0, 480.0]),
        ..Default::default()
    };
    let run = eframe::run_native(
        "flowplay",
        options,
        // Settings as in the web page's URL hash, e.g. `flowplay-app 'train=1&solver=heun'`.
        Box::new(|cc| {
            Ok(Box::new(flowplay_app::PlaygroundApp::with_query(
                cc,
                args.first().cloned(),
            )))
        }),
    );
    match run {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flowplay: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
const USAGE: &str = "\
usage: flowplay-app [SETTINGS]
       flowplay-app --bench [--particles N,N,...] [--seconds S] [--size WxH] [--no-vsync]
                            [--each-layer] [--lab] [--second path|coupling|time|solver]
                            [--soak FRAMES,STEPS] [SETTINGS]

SETTINGS are the web page's URL hash, e.g. 'train=1&solver=heun&particles=100000'.
--bench renders the playground offscreen while it trains on the GPU and prints the frame rate
and training speed for each particle count (default 10000,100000,300000,1000000; 5 s each),
presenting at 60 Hz as with vsync (--no-vsync: frames back to back). --each-layer measures each
count again with each canvas layer (field, density, logp, stages, pairs, endpoints) on.
--lab keeps the solver × NFE lab sweeping in the background and says how far it got.
--second trains a second run beside the first that differs in that one thing (both on the GPU,
sharing the frame) and adds its training rate.
--soak FRAMES,STEPS runs one playground (2000 particles unless --particles says) for at least
FRAMES frames and STEPS training steps and prints its memory (RSS, live GPU buffers and their
bytes) after a warm-up, every tenth of FRAMES (at most 1000) and at the end.";

/// `--bench`: the offscreen frame-rate benchmark.
#[cfg(not(target_arch = "wasm32"))]
fn bench(args: &[String]) -> std::process::ExitCode {
    use flowplay_app::bench;

    let mut soak = None;
    let parsed = (|| -> Result<bench::BenchOptions, String> {
        let mut options = bench::BenchOptions::default();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = |flag: &str| {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match arg.as_str() {
                "--particles" => {
                    options.particles = value(arg)?
                        .split(',')
                        .map(|n| {
                            n.trim()
                                .replace('_', "")
                                .parse()
                                .ok()
                                .filter(|&n: &usize| n > 0)
                                .ok_or_else(|| format!("--particles: {n:?} is not a count"))
                        })
                        .collect::<Result<_, _>>()?;
                }
                "--seconds" => {
                    options.seconds = value(arg)?
                        .parse()
                        .ok()
                        .filter(|s: &f64| *s > 0.0 && s.is_finite())
                        .ok_or("--seconds takes a positive number")?;
                }
                "--size" => {
                    let size = value(arg)?;
                    let parts: Vec<u32> = size.split('x').filter_map(|p| p.parse().ok()).collect();
                    match parts[..] {
                        [w, h] if w > 0 && h > 0 && w <= 8192 && h <= 8192 => options.size = [w, h],
                        _ => return Err(format!("--size takes WxH, e.g. 1280x800, got {size:?}")),
                    }
                }
                "--no-vsync" => options.vsync = false,
                "--soak" => {
                    let value = value(arg)?;
                    let parts: Vec<u64> = value
                        .split(',')
                        .filter_map(|p| p.trim().replace('_', "").parse().ok())
                        .collect();
                    match parts[..] {
                        [frames, steps] if frames > 0 => soak = Some((frames, steps)),
                        _ => return Err(format!("--soak takes FRAMES,STEPS, got {value:?}")),
                    }
                }
                "--each-layer" => options.each_layer = true,
                "--lab" => options.lab = true,
                "--second" => options.second = Some(value(arg)?.to_string()),
                other if other.starts_with("--") => {
                    return Err(format!("unknown option {other}\n\n{USAGE}"));
                }
                query => options.query = query.to_string(),
            }
        }
        Ok(options)
    })();
    let options = match parsed {
        Ok(options) => options,
        Err(why) => {
            eprintln!("flowplay-app --bench: {why}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Some((frames, steps)) = soak {
        let mut options = options;
        return soak_run(&mut options, frames, steps);
    }
    let result = bench::render_state().and_then(|rs| {
        println!(
            "flowplay playground offscreen, {}x{}, on {}",
            options.size[0],
            options.size[1],
            bench::describe(&rs)
        );
        bench::run(&rs, &options, |figure| {
            println!("{}", figure.line());
            if let Some(notice) = &figure.notice {
                println!("          notice: {notice}");
            }
        })
    });
    match result {
        Ok(figures) => {
            match bench::held(&figures, bench::TARGET_FPS) {
                Some(n) => println!("held {} fps with up to {n} particles", bench::TARGET_FPS),
                None => println!("no particle count held {} fps", bench::TARGET_FPS),
            }
            std::process::ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("flowplay-app --bench: {why}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `--bench --soak FRAMES,STEPS`: memory at the start and end of a long run.
#[cfg(not(target_arch = "wasm32"))]
fn soak_run(
    options: &mut flowplay_app::bench::BenchOptions,
    frames: u64,
    steps: u64,
) -> std::process::ExitCode {
    use flowplay_app::bench;

    if options.particles == bench::BenchOptions::default().particles {
        options.particles = vec![2000];
    }
    let result = bench::render_state().and_then(|rs| {
        println!(
            "flowplay soak: {frames} frames and {steps} training steps at least, {} particles, \
             {}x{}, on {}",
            options.particles[0],
            options.size[0],
            options.size[1],
            bench::describe(&rs)
        );
        let started = std::time::Instant::now();
        let every = (frames / 10).clamp(1, 1000);
        let samples = bench::soak(&rs, options, frames, steps, every, |s| {
            println!("{}", s.line());
        })?;
        Ok((samples, started.elapsed().as_secs_f64()))
    });
    match result {
        Ok((samples, secs)) => {
            let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
                return std::process::ExitCode::FAILURE;
            };
            let max_rss = samples.iter().map(|s| s.rss).max().unwrap_or(0);
            // A software GPU's and the allocator's memory go up and down by tens of MB from one
            // sample to the next: the medians of each half say whether it grows.
            let median = |part: &[bench::MemorySample]| {
                let mut rss: Vec<u64> = part.iter().map(|s| s.rss).collect();
                rss.sort_unstable();
                rss.get(rss.len() / 2).copied().unwrap_or(0) as f64 / 1e6
            };
            let (early, late) = samples.split_at(samples.len() / 2);
            println!(
                "soak: {} frames, {} steps in {secs:.0} s: RSS {:.1} -> {:.1} MB (max {:.1}; \
                 median of each half {:.1} / {:.1}), GPU buffers {} -> {}, {:.1} -> {:.1} MB",
                last.frame,
                last.step - first.step,
                first.rss as f64 / 1e6,
                last.rss as f64 / 1e6,
                max_rss as f64 / 1e6,
                median(early),
                median(late),
                first.buffers,
                last.buffers,
                first.buffer_bytes as f64 / 1e6,
                last.buffer_bytes as f64 / 1e6
            );
            std::process::ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("flowplay-app --bench --soak: {why}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(target_arch = "wasm32")]
fn main() {
    use eframe::wasm_bindgen::JsCast as _;

    eframe::WebLogger::init(log::LevelFilter::Info).ok();
    wasm_bindgen_futures::spawn_local(async {
        let Some(document) = web_sys::window().and_then(|w| w.document()) else {
            log::error!("flowplay: no document to run in");
            return;
        };
        let Some(canvas) = document
            .get_element_by_id("flowplay_canvas")
            .and_then(|e| e.dyn_into::<web_sys::HtmlCanvasElement>().ok())
        else {
            log::error!("flowplay: the page has no <canvas id=\"flowplay_canvas\">");
            return;
        };
        let started = eframe::WebRunner::new()
            .start(
                canvas,
                eframe::WebOptions::default(),
                Box::new(|cc| Ok(Box::new(flowplay_app::PlaygroundApp::new(cc)))),
            )
            .await;
        if let Some(loading) = document.get_element_by_id("loading") {
            match started {
                Ok(()) => loading.remove(),
                Err(error) => {
                    loading.set_inner_html(
                        "<p>flowplay could not start in this browser. The developer console says why.</p>",
                    );
                    log::error!("flowplay: failed to start: {error:?}");
                }
            }
        }
    });
}
