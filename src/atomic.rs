//! Writing files so that a crash or kill leaves the old file or the new one, never half of
//! one: a temporary file in the same folder, fsync, rename.

use std::path::Path;

/// Writes `bytes` to `path` atomically; the error names the file and the reason.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fail = |what: &str, e: std::io::Error| format!("{}: {what}: {e}", path.display());
    std::fs::create_dir_all(folder).map_err(|e| fail("cannot create its folder", e))?;
    let mut temp = readable_temp_file()
        .tempfile_in(folder)
        .map_err(|e| fail("cannot write in its folder", e))?;
    std::io::Write::write_all(&mut temp, bytes).map_err(|e| fail("write failed", e))?;
    temp.as_file()
        .sync_all()
        .map_err(|e| fail("write failed", e))?;
    temp.persist(path)
        .map_err(|e| fail("cannot replace it", e.error))?;
    Ok(())
}

/// Temporary files are private (0600) by default; the files we write are ordinary outputs.
fn readable_temp_file() -> tempfile::Builder<'static, 'static> {
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    builder
}
