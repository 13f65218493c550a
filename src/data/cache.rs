//! Decoded training sets cached as one uint8 `.npy` (N×H×W×3) per (source, size, fit), so
//! the second run (and every epoch) costs no decoding. The key covers every file's name,
//! size and modification time (an archive's own size and time), so editing the data
//! invalidates it. A damaged cache file is ignored and rewritten.

use std::path::{Path, PathBuf};

use npyz::WriterBuilder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Dataset;
use super::decode::Fit;
use super::source::{Kind, Skipped, decode_all, folder_files};
use crate::atomic::write_atomic;

/// Bumped when decoding changes in a way that changes pixels.
const CACHE_VERSION: &str = "retrato-dataset-v1";

/// A decoded training set and what happened on the way.
pub struct Loaded {
    pub dataset: Dataset,
    pub skipped: Vec<Skipped>,
    /// Files without an image extension.
    pub ignored: usize,
    /// Whether the pixels came from the cache (then `skipped` is from the decoding run).
    pub from_cache: bool,
    pub cache_file: Option<PathBuf>,
}

#[derive(Serialize, Deserialize)]
struct Sidecar {
    source: String,
    count: usize,
    size: usize,
    skipped: Vec<Skipped>,
    ignored: usize,
}

/// `$RETRATO_CACHE`, else `$XDG_CACHE_HOME/retrato/datasets`, else `~/.cache/retrato/datasets`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RETRATO_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("retrato").join("datasets")
}

fn modified_nanos(meta: &std::fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

/// The cache key of `path` (of `kind`) decoded at `size` with `fit`.
fn key(path: &Path, kind: Kind, size: usize, fit: Fit) -> Result<String, String> {
    let canonical = path
        .canonicalize()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut hash = Sha256::new();
    hash.update(CACHE_VERSION);
    hash.update(canonical.to_string_lossy().as_bytes());
    hash.update(format!("|{size}|{fit:?}|"));
    match kind {
        Kind::Folder => {
            for (file, len, modified) in folder_files(path)?.0 {
                hash.update(format!("{}|{len}|{modified}\n", file.display()));
            }
        }
        Kind::Tar | Kind::Zip => {
            let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
            hash.update(format!("{}|{}", meta.len(), modified_nanos(&meta)));
        }
    }
    let digest = hash.finalize();
    Ok(digest.iter().take(8).map(|b| format!("{b:02x}")).collect())
}

/// Decodes `path` at `size`x`size`, through the cache in `cache_dir` when one is given.
pub fn load(
    path: &Path,
    size: usize,
    fit: Fit,
    cache_dir: Option<&Path>,
) -> Result<Loaded, String> {
    let cache_file = match cache_dir {
        Some(dir) => {
            let kind = Kind::of(path)?;
            // A folder's whole name ("img-psi1.15"), an archive's without its extension.
            let stem = match kind {
                Kind::Folder => path.file_name(),
                Kind::Tar | Kind::Zip => path.file_stem(),
            }
            .map_or("data".into(), |s| s.to_string_lossy().into_owned());
            let key = key(path, kind, size, fit)?;
            Some(dir.join(format!("{stem}-{size}px-{key}.npy")))
        }
        None => None,
    };
    if let Some(file) = &cache_file
        && let Some(loaded) = read_cache(file, size)
    {
        return Ok(loaded);
    }
    let decoded = decode_all(path, size as u32, fit)?;
    let dataset = Dataset::new(decoded.pixels, size);
    if let Some(file) = &cache_file {
        let sidecar = Sidecar {
            source: path.display().to_string(),
            count: dataset.count,
            size,
            skipped: decoded.skipped.clone(),
            ignored: decoded.ignored,
        };
        // A cache that cannot be written only costs time next run.
        let _ = write_cache(file, &dataset, &sidecar);
    }
    Ok(Loaded {
        dataset,
        skipped: decoded.skipped,
        ignored: decoded.ignored,
        from_cache: false,
        cache_file,
    })
}

fn sidecar_path(npy: &Path) -> PathBuf {
    npy.with_extension("json")
}

fn write_cache(file: &Path, dataset: &Dataset, sidecar: &Sidecar) -> Result<(), String> {
    let s = dataset.size as u64;
    let mut bytes = Vec::new();
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[dataset.count as u64, s, s, 3])
        .writer(&mut bytes)
        .begin_nd()
        .map_err(|e| e.to_string())?;
    writer
        .extend(dataset.pixels.iter().copied())
        .map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    let json = serde_json::to_vec_pretty(sidecar).map_err(|e| e.to_string())?;
    // The sidecar first: a pixels file is only ever used with its sidecar beside it.
    write_atomic(&sidecar_path(file), &json)?;
    write_atomic(file, &bytes)
}

fn read_cache(file: &Path, size: usize) -> Option<Loaded> {
    let sidecar: Sidecar = serde_json::from_slice(&std::fs::read(sidecar_path(file)).ok()?).ok()?;
    let pixels = read_npy_u8(&std::fs::read(file).ok()?, size)?;
    let dataset = Dataset::new(pixels, size);
    (dataset.count == sidecar.count && sidecar.size == size).then(|| Loaded {
        dataset,
        skipped: sidecar.skipped,
        ignored: sidecar.ignored,
        from_cache: true,
        cache_file: Some(file.to_path_buf()),
    })
}

/// The pixels of a uint8 N×size×size×3 `.npy`, or None if it is anything else.
pub fn read_npy_u8(bytes: &[u8], size: usize) -> Option<Vec<u8>> {
    let npy = npyz::NpyFile::new(bytes).ok()?;
    let shape = npy.shape().to_vec();
    let s = size as u64;
    if shape.len() != 4 || shape[1..] != [s, s, 3] || npy.order() != npyz::Order::C {
        return None;
    }
    npy.into_vec::<u8>().ok()
}
