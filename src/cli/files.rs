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

/// Writes through a temporary file in the same folder, then renames: a crash leaves either the
/// old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder)
        .with_context(|| format!("{}: cannot create folder", folder.display()))?;
    let mut temp = readable_temp_file()
        .tempfile_in(folder)
        .with_context(|| format!("{}: cannot write in this folder", folder.display()))?;
    std::io::Write::write_all(&mut temp, bytes)
        .with_context(|| format!("{}: write failed", path.display()))?;
    temp.as_file()
        .sync_all()
        .with_context(|| format!("{}: write failed", path.display()))?;
    temp.persist(path)
        .with_context(|| format!("{}: cannot replace it", path.display()))?;
    Ok(())
}

/// `context: reason` on one line.
fn flatten(error: anyhow::Error) -> anyhow::Error {
    anyhow::anyhow!("{error:#}")
}

/// Temporary files are private (0600) by default; the files we write are ordinary outputs.
fn readable_temp_file() -> tempfile::Builder<'static, 'static> {
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    builder
}
