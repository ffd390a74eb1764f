//! `flowplay-fuzz [TARGET…] [--executions N] [--seed S]`: fuzzes the parsers and reports
//! executions, accepted inputs and crashes; exits 1 when there was a crash, writing each crashing
//! input to `fuzz-crash-TARGET-N.bin`.

use std::process::ExitCode;
use std::time::Instant;

use flowplay_fuzz::{Target, fuzz};

fn main() -> ExitCode {
    let mut executions = 1_000_000_u64;
    let mut seed = 1_u64;
    let mut targets = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let number = |value: Option<String>| value.and_then(|v| v.parse::<u64>().ok());
        match arg.as_str() {
            "--executions" => match number(args.next()) {
                Some(n) => executions = n,
                None => return usage("--executions needs a number"),
            },
            "--help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "--seed" => match number(args.next()) {
                Some(n) => seed = n,
                None => return usage("--seed needs a number"),
            },
            name => match Target::ALL.into_iter().find(|t| t.name() == name) {
                Some(t) => targets.push(t),
                None => return usage(&format!("'{name}' is not a target")),
            },
        }
    }
    if targets.is_empty() {
        targets = Target::ALL.to_vec();
    }
    // Panics are caught and counted; their default message would flood the terminal.
    std::panic::set_hook(Box::new(|_| {}));
    let mut crashed = false;
    for target in targets {
        let started = Instant::now();
        let report = fuzz(target, executions, seed);
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{:<12} {:>9} executions in {seconds:6.1} s ({:>7.0}/s), {:>8} accepted, {} crashes",
            target.name(),
            report.executions,
            report.executions as f64 / seconds,
            report.accepted,
            report.crashes.len()
        );
        for (n, why, input) in &report.crashes {
            crashed = true;
            let file = format!("fuzz-crash-{}-{n}.bin", target.name());
            let _ = std::fs::write(&file, input);
            println!("  execution {n}: {why} (input in {file})");
        }
    }
    if crashed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

const USAGE: &str =
    "usage: flowplay-fuzz [csv|safetensors|query|picture…] [--executions N] [--seed S]";

fn usage(problem: &str) -> ExitCode {
    eprintln!("flowplay-fuzz: {problem}\n{USAGE}");
    ExitCode::from(2)
}
