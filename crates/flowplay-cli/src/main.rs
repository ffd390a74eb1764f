//! `flowplay`: train, sample, evaluate, score (logp), sweep solvers × NFE and benchmark
//! flow-matching models from the command line.
//!
//! Every failure prints one line, `error: …`, saying what is wrong and where, and exits with
//! status 2; nothing half-written is left behind.

mod backend;
mod bench;
mod cmd_eval;
mod cmd_logp;
mod cmd_sample;
mod cmd_sweep;
mod cmd_train;
mod limits;
mod output;
mod plot;
mod spec;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Flow matching on 2-D data: train a velocity network, sample along its ODE, measure.
#[derive(Debug, Parser)]
#[command(name = "flowplay", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train a velocity network and write config, metrics, weights, samples and a plot.
    Train(Box<cmd_train::TrainArgs>),
    /// Draw samples from trained weights by integrating the ODE.
    Sample(cmd_sample::SampleArgs),
    /// Compare samples with fresh data: W2, sliced W2, MMD.
    Eval(cmd_eval::EvalArgs),
    /// The model's exact log-likelihood at given points (reverse ODE with the Jacobian trace).
    Logp(cmd_logp::LogpArgs),
    /// The solver × NFE lab: W2 (and held-out NLL) for Euler, Heun and RK4 at every power-of-two
    /// number of network evaluations.
    Sweep(Box<cmd_sweep::SweepArgs>),
    /// Measure training steps/s and sampling particle-steps/s.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    flowplay_gpu::quiet_device_select();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    let result = match cli.command {
        Command::Train(args) => cmd_train::run(&args),
        Command::Sample(args) => cmd_sample::run(&args),
        Command::Eval(args) => cmd_eval::run(&args),
        Command::Logp(args) => cmd_logp::run(&args),
        Command::Sweep(args) => cmd_sweep::run(&args),
        Command::Bench(args) => bench::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line: the chain of causes joined, outermost first.
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Help and version go to stdout in full; a usage error is one line on stderr, status 2.
fn usage_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = error.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            ExitCode::from(2)
        }
        _ => {
            // The first paragraph, joined: "error: the following required arguments were not
            // provided: --weights <WEIGHTS> --out <OUT>".
            let rendered = error.render().to_string();
            let first: Vec<&str> = rendered
                .lines()
                .take_while(|line| !line.trim().is_empty())
                .map(str::trim)
                .collect();
            eprintln!("{} (see --help)", first.join(" "));
            ExitCode::from(2)
        }
    }
}

/// Sets the number of worker threads (0: one per core).
fn init_threads(threads: usize) -> anyhow::Result<()> {
    let max = limits::max_threads();
    if threads > max {
        anyhow::bail!(
            "--threads must be at most {max} (8 per core on this machine), got {threads}; \
             0 takes one per core"
        );
    }
    if threads > 0 {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .map_err(|e| anyhow::anyhow!("cannot start {threads} threads: {e}"))?;
    }
    Ok(())
}
