//! File helpers for the CLI: errors that name the file, atomic writes.

use std::path::Path;

use anyhow::{Context, Result};
use retrato::weights::ModelFile;

/// Loads and validates a model file; the error names the file and the reason.
pub fn load_model(path: &Path) -> Result<ModelFile> {
    let bytes =
        std::fs::read(path).with_context(|| format!("{}: cannot read it", path.display()))?;
    ModelFile::from_bytes(&bytes)
        .with_context(|| path.display().to_string())
        .map_err(flatten)
}

/// Writes through a temporary file in the same folder, then renames (see [`retrato::atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    retrato::atomic::write_atomic(path, bytes).map_err(anyhow::Error::msg)
}

/// `context: reason` on one line.
fn flatten(error: anyhow::Error) -> anyhow::Error {
    anyhow::anyhow!("{error:#}")
}
