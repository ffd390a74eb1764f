//! Writing results so that a failure never leaves a half-written file that looks complete.
//!
//! Files are written to a hidden staging place next to their destination and renamed into place
//! only when everything succeeded (a rename within one directory is atomic).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A directory of outputs staged next to the destination and moved in by [`Staged::commit`].
/// Dropping it without committing removes what was staged.
pub(crate) struct Staged {
    staging: PathBuf,
    destination: PathBuf,
    committed: bool,
}

impl Staged {
    /// Prepares to write into `destination` (created if missing). Fails early, before any work,
    /// if the place is not writable.
    pub(crate) fn new(destination: &Path) -> Result<Self> {
        if destination.exists() && !destination.is_dir() {
            anyhow::bail!(
                "--out {} exists and is not a directory",
                destination.display()
            );
        }
        let parent = existing_parent(destination)?;
        let name = destination
            .file_name()
            .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
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

    /// Moves every staged file into the destination, replacing files of the same name.
    pub(crate) fn commit(mut self) -> Result<()> {
        fs::create_dir_all(&self.destination).with_context(|| {
            format!("cannot create the directory {}", self.destination.display())
        })?;
        for entry in fs::read_dir(&self.staging)? {
            let entry = entry?;
            let target = self.destination.join(entry.file_name());
            fs::rename(entry.path(), &target)
                .with_context(|| format!("cannot move a result into {}", target.display()))?;
        }
        fs::remove_dir(&self.staging).ok();
        self.committed = true;
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

/// Writes one file atomically: to a temporary name beside it, then renamed.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = existing_parent(path)?;
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
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
    existing_parent(path).map(|_| ())
}

/// The directory `path` lives in (`.` for a bare file name), created if missing.
fn existing_parent(path: &Path) -> Result<PathBuf> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create the directory {}", parent.display()))?;
    Ok(parent)
}
