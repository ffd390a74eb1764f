//! Bounds on every size the command line accepts, checked before anything is allocated or any
//! work starts: a size the machine cannot hold, or work that would run for hours, is one clear
//! line instead of an aborted allocation or a command that never returns.

use anyhow::Result;

/// Points in a training data pool (the core's own bound, checked before the pool is drawn).
pub(crate) const MAX_POOL: usize = 1 << 24;
/// Evaluation samples: the exact W2 is an assignment, cubic in n in the worst case. 20 000 take
/// tens of seconds on this project's 2-core reference machine; 200 000 would take hours.
pub(crate) const MAX_EVAL_N: usize = 20_000;
/// Pairs of a reflow round: each is an ODE solve by the current model.
pub(crate) const MAX_REFLOW_PAIRS: usize = 1 << 24;
/// Worker threads: more than this many per core only adds overhead.
const THREADS_PER_CORE: usize = 8;
/// Particles of a benchmark's sampling case.
pub(crate) const MAX_BENCH_PARTICLES: usize = 1 << 26;
/// Seconds a benchmark case may measure for.
pub(crate) const MAX_BENCH_SECONDS: f64 = 3600.0;

/// Fails unless `1 <= value <= max`, naming the flag and why it is bounded.
pub(crate) fn check_count(flag: &str, value: usize, max: usize, why: &str) -> Result<()> {
    if value == 0 || value > max {
        anyhow::bail!("{flag} must be between 1 and {max}, got {value} ({why})");
    }
    Ok(())
}

/// The most worker threads `--threads` may ask for on this machine.
pub(crate) fn max_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from) * THREADS_PER_CORE
}

/// Fails when `bytes` of results would not fit in memory: more than half of what the system
/// reports available (Linux's `MemAvailable`; elsewhere a fixed 16 GiB is assumed).
pub(crate) fn check_memory(bytes: u128, what: &str) -> Result<()> {
    let available = available_memory();
    if bytes > u128::from(available / 2) {
        anyhow::bail!(
            "{what} would need {:.1} GB of memory, and this machine has {:.1} GB available: \
             ask for fewer",
            bytes as f64 / 1e9,
            available as f64 / 1e9
        );
    }
    Ok(())
}

/// Bytes of memory available to this process.
fn available_memory() -> u64 {
    const FALLBACK: u64 = 16 << 30;
    let Ok(text) = std::fs::read_to_string("/proc/meminfo") else {
        return FALLBACK;
    };
    text.lines()
        .find_map(|line| {
            let kb = line
                .strip_prefix("MemAvailable:")?
                .trim()
                .strip_suffix("kB")?;
            kb.trim().parse::<u64>().ok()
        })
        .map_or(FALLBACK, |kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_memory_are_bounded() {
        assert!(check_count("--n", 5, 10, "x").is_ok());
        let text = check_count("--n", 0, 10, "why").unwrap_err().to_string();
        assert_eq!(text, "--n must be between 1 and 10, got 0 (why)");
        assert!(check_count("--n", 11, 10, "why").is_err());
        assert!(check_memory(1 << 20, "a test").is_ok());
        let text = check_memory(1 << 70, "the trajectories")
            .unwrap_err()
            .to_string();
        assert!(text.starts_with("the trajectories would need"), "{text}");
        assert!(max_threads() >= THREADS_PER_CORE);
    }
}
