//! Writing results so that a failure never leaves a half-written file that looks complete, nor a
//! mix of new and old results.
//!
//! A run's outputs are written to a hidden staging folder beside `--out` and the folder replaces
//! `--out` as a whole only when everything succeeded: the old folder is renamed aside, the new
//! one renamed in (renames within one directory are atomic), the old one removed. Files of an
//! earlier run can therefore never sit beside a config that does not describe them. A folder
//! that holds anything flowplay did not write is refused before any work, never replaced.
//! Staging left behind by a killed run (its process gone) is removed by the next run.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The suffixes of hidden working names beside a destination `NAME`: `.NAME.partial-PID` while a
/// run writes, `.NAME.old-PID` for the replaced folder.
const WORKING_SUFFIXES: [&str; 2] = [".partial-", ".old-"];

/// A directory of outputs staged next to the destination and moved in by [`Staged::commit`].
/// Dropping it without committing removes what was staged.
pub(crate) struct Staged {
    staging: PathBuf,
    destination: PathBuf,
    committed: bool,
}

impl Staged {
    /// Prepares to write into `destination`. Fails early, before any work, if the place is not
    /// writable or holds files that are not a flowplay run's.
    pub(crate) fn new(destination: &Path) -> Result<Self> {
        let shown = destination.display();
        if destination.exists() {
            if !destination.is_dir() {
                anyhow::bail!("--out {shown} exists and is not a directory");
            }
            if let Some(foreign) = foreign_entry(destination)? {
                anyhow::bail!(
                    "--out {shown} holds '{foreign}', which a flowplay run does not write; the \
                     folder is replaced as a whole, so choose a new or empty one"
                );
            }
        }
        let (parent, name) = split(destination)?;
        remove_stale(&parent, &name);
        let staging = parent.join(format!(".{name}.partial-{}", std::process::id()));
        if staging.exists() {
            fs::remove_dir_all(&staging).ok();
        }
        fs::create_dir(&staging)
            .with_context(|| format!("cannot write to {}", parent.display()))?;
        Ok(Self {
            staging,
            destination: destination.to_path_buf(),
            committed: false,
        })
    }

    /// Writes one file into the staging directory.
    pub(crate) fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.staging.join(name);
        fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Replaces the destination with the staged folder.
    pub(crate) fn commit(mut self) -> Result<()> {
        let shown = self.destination.display();
        let (parent, name) = split(&self.destination)?;
        let old = parent.join(format!(".{name}.old-{}", std::process::id()));
        let had_old = self.destination.exists();
        if had_old {
            // Checked again: the folder may have changed while the run trained.
            if let Some(foreign) = foreign_entry(&self.destination)? {
                anyhow::bail!(
                    "--out {shown} now holds '{foreign}', which a flowplay run does not write; \
                     nothing was replaced"
                );
            }
            fs::rename(&self.destination, &old)
                .with_context(|| format!("cannot replace {shown}"))?;
        }
        if let Err(e) = fs::rename(&self.staging, &self.destination) {
            if had_old {
                // Put the old results back: the run failed as a whole.
                fs::rename(&old, &self.destination).ok();
            }
            return Err(e).with_context(|| format!("cannot move the results into {shown}"));
        }
        self.committed = true;
        if had_old {
            fs::remove_dir_all(&old).ok();
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            fs::remove_dir_all(&self.staging).ok();
        }
    }
}

/// The first entry of `dir` that a flowplay training run does not write, if any.
fn foreign_entry(dir: &Path) -> Result<Option<String>> {
    let entries = fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if !is_file || !is_run_output(&name) {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// Whether `name` is a file `flowplay train` writes.
fn is_run_output(name: &str) -> bool {
    const FIXED: [&str; 6] = [
        "config.json",
        "metrics.json",
        "weights.safetensors",
        "weights_ema.safetensors",
        "samples.csv",
        "plot.png",
    ];
    FIXED.contains(&name)
        || name
            .strip_prefix("weights_round")
            .and_then(|rest| rest.strip_suffix(".safetensors"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Removes `.NAME.partial-PID` and `.NAME.old-PID` in `parent` whose process has ended (a run
/// that was killed). Best effort: what cannot be removed is left.
fn remove_stale(parent: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    let prefix = format!(".{name}");
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = file_name.strip_prefix(&prefix) else {
            continue;
        };
        let pid = WORKING_SUFFIXES
            .iter()
            .find_map(|suffix| rest.strip_prefix(suffix))
            .and_then(|pid| pid.parse::<u32>().ok());
        let Some(pid) = pid else { continue };
        if pid != std::process::id() && !process_alive(pid) {
            let path = entry.path();
            if path.is_dir() {
                fs::remove_dir_all(&path).ok();
            } else {
                fs::remove_file(&path).ok();
            }
        }
    }
}

/// Whether process `pid` still runs. Where `/proc` exists (Linux) it says so; elsewhere every
/// process is assumed alive, so nothing of a running process is ever removed.
fn process_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return true;
    }
    proc.join(pid.to_string()).exists()
}

/// Writes one file atomically: to a temporary name beside it, then renamed.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let (parent, name) = split(path)?;
    remove_stale(&parent, &name);
    let temporary = parent.join(format!(".{name}.partial-{}", std::process::id()));
    fs::write(&temporary, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    fs::rename(&temporary, path).with_context(|| {
        fs::remove_file(&temporary).ok();
        format!("cannot write {}", path.display())
    })
}

/// Checks before any work that `path` can be written later (its directory exists or can be
/// made, and it is not a directory).
pub(crate) fn check_writable(path: &Path) -> Result<()> {
    if path.is_dir() {
        anyhow::bail!("{} is a directory, not a file name", path.display());
    }
    split(path).map(|_| ())
}

/// The directory `path` lives in (created if missing) and its last component. A path without a
/// name of its own (`.`, `..`, `/`) is refused: it cannot be replaced.
fn split(path: &Path) -> Result<(PathBuf, String)> {
    let Some(name) = path.file_name() else {
        anyhow::bail!(
            "{} has no name of its own to write to: give a new folder or file name",
            path.display()
        );
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create the directory {}", parent.display()))?;
    Ok((parent, name.to_string_lossy().into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("flowplay-output-{name}-{}", std::process::id()));
        fs::remove_dir_all(&dir).ok();
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_run_replaces_the_folder_as_a_whole() {
        let dir = scratch("whole");
        let out = dir.join("run");
        fs::create_dir(&out).unwrap();
        fs::write(out.join("weights_round2.safetensors"), b"old").unwrap();
        fs::write(out.join("config.json"), b"old").unwrap();
        let staged = Staged::new(&out).unwrap();
        staged.write("config.json", b"new").unwrap();
        staged.commit().unwrap();
        assert_eq!(fs::read(out.join("config.json")).unwrap(), b"new");
        // The earlier run's reflow weights went with its config.
        assert!(!out.join("weights_round2.safetensors").exists());
        let left: Vec<_> = fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "only the run folder remains");
    }

    #[test]
    fn foreign_files_are_refused_and_failures_keep_the_old_run() {
        let dir = scratch("foreign");
        let out = dir.join("run");
        fs::create_dir_all(out.join("plot.png")).unwrap();
        let text = Staged::new(&out).err().unwrap().to_string();
        assert!(
            text.contains("holds 'plot.png', which a flowplay run does not write"),
            "{text}"
        );
        fs::remove_dir(out.join("plot.png")).unwrap();
        fs::write(out.join("notes.txt"), b"mine").unwrap();
        assert!(Staged::new(&out).is_err());
        assert_eq!(fs::read(out.join("notes.txt")).unwrap(), b"mine");

        // A run dropped before commit (a failure) leaves the old results and no staging.
        fs::remove_file(out.join("notes.txt")).unwrap();
        fs::write(out.join("samples.csv"), b"old").unwrap();
        let staged = Staged::new(&out).unwrap();
        staged.write("samples.csv", b"new").unwrap();
        drop(staged);
        assert_eq!(fs::read(out.join("samples.csv")).unwrap(), b"old");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        assert!(Staged::new(Path::new(".")).is_err());
    }

    #[test]
    fn stale_staging_of_dead_processes_is_removed() {
        let dir = scratch("stale");
        // PIDs above the kernel's maximum (4 194 304) never run.
        let dead = dir.join(".run.partial-4999999");
        let old = dir.join(".run.old-4999998");
        let alive = dir.join(format!(".run.partial-{}", std::process::id()));
        fs::create_dir_all(&dead).unwrap();
        fs::create_dir_all(&old).unwrap();
        let other = dir.join(".other.partial-4999999");
        fs::create_dir_all(&other).unwrap();
        let staged = Staged::new(&dir.join("run")).unwrap();
        assert!(!dead.exists() && !old.exists());
        assert!(alive.exists(), "this process's own staging is in use");
        assert!(
            other.exists(),
            "another destination's staging is not ours to judge"
        );
        drop(staged);
        write_file(&dir.join("s.csv"), b"1,2\n").unwrap();
        assert_eq!(fs::read(dir.join("s.csv")).unwrap(), b"1,2\n");
    }
}
