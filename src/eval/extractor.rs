//! Inception features of image sets, with the features of real sets cached on disk: the
//! second `eval fid` against the same reference (and every FID during training) skips it.
//! The cache key is the pixels' content and the network file's content, so a changed set
//! or a different `--inception` never reuses stale features.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use npyz::WriterBuilder;
use sha2::{Digest, Sha256};

use super::inception::{FEATURES, Inception};
use crate::atomic::write_atomic;

/// Bumped when the input pipeline changes in a way that changes features.
const CACHE_VERSION: &str = "retrato-features-v1";

pub struct Extractor {
    weights_path: PathBuf,
    weights: Vec<u8>,
    /// Hex SHA-256 of the weights file.
    network_hash: String,
    net: OnceCell<Inception>,
    cache_dir: Option<PathBuf>,
    batch: usize,
    device: Device,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Extractor {
    /// Reads the FID network's weights (built on first use); features of real sets are
    /// cached under `cache_dir` when given.
    pub fn open(
        weights_path: &Path,
        cache_dir: Option<PathBuf>,
        batch: usize,
        device: &Device,
    ) -> Result<Self, String> {
        let weights = std::fs::read(weights_path).map_err(|e| {
            format!(
                "{}: cannot read the FID Inception weights: {e}",
                weights_path.display()
            )
        })?;
        Ok(Self {
            weights_path: weights_path.to_path_buf(),
            network_hash: hex(&Sha256::digest(&weights)),
            weights,
            net: OnceCell::new(),
            cache_dir,
            batch: batch.max(1),
            device: device.clone(),
        })
    }

    /// Names the network in reports: file name and the start of its hash.
    pub fn network_label(&self) -> String {
        let name = self.weights_path.file_name().unwrap_or_default();
        format!("{} ({})", name.to_string_lossy(), &self.network_hash[..12])
    }

    fn net(&self) -> Result<&Inception, String> {
        if let Some(net) = self.net.get() {
            return Ok(net);
        }
        let net = Inception::from_bytes(&self.weights, &self.device)
            .map_err(|e| format!("{}: {e}", self.weights_path.display()))?;
        Ok(self.net.get_or_init(|| net))
    }

    /// Features of uint8 N×size×size×3 images, calling `progress` with the images done.
    pub fn features(
        &self,
        pixels: &[u8],
        size: usize,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<f32>, String> {
        let net = self.net()?;
        Ok(super::features(
            net,
            pixels,
            size,
            self.batch,
            &self.device,
            progress,
        ))
    }

    /// Like [`Self::features`], read from the cache when these exact pixels went through
    /// this exact network before (then `progress` is not called); the bool says which.
    pub fn cached_features(
        &self,
        pixels: &[u8],
        size: usize,
        progress: &mut dyn FnMut(usize),
    ) -> Result<(Vec<f32>, bool), String> {
        let Some(file) = self.cache_file(pixels, size) else {
            return Ok((self.features(pixels, size, progress)?, false));
        };
        let count = pixels.len() / (size * size * 3);
        if let Some(values) = read_features(&file).filter(|v| v.len() == count * FEATURES) {
            return Ok((values, true));
        }
        let values = self.features(pixels, size, progress)?;
        // A cache that cannot be written costs time next run, not this run's result.
        if let Err(e) = write_atomic(&file, &features_npy(&values)) {
            eprintln!("warning: feature cache not written: {e}");
        }
        Ok((values, false))
    }

    fn cache_file(&self, pixels: &[u8], size: usize) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        let mut hasher = Sha256::new();
        hasher.update(CACHE_VERSION.as_bytes());
        hasher.update(self.network_hash.as_bytes());
        hasher.update((size as u64).to_le_bytes());
        hasher.update(pixels);
        let key = hex(&hasher.finalize()[..12]);
        Some(dir.join(format!("features-{key}.npy")))
    }
}

/// An N×2048 float32 `.npy` (what `eval features` writes and `eval fid` reads back).
pub fn features_npy(values: &[f32]) -> Vec<u8> {
    let mut bytes = Vec::new();
    let rows = (values.len() / FEATURES) as u64;
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[rows, FEATURES as u64])
        .writer(&mut bytes)
        .begin_nd()
        .expect("writing to memory");
    writer
        .extend(values.iter().copied())
        .expect("writing to memory");
    writer.finish().expect("writing to memory");
    bytes
}

/// A cached features file, or `None` when it is missing or damaged (then it is rebuilt).
fn read_features(path: &Path) -> Option<Vec<f32>> {
    let bytes = std::fs::read(path).ok()?;
    let npy = npyz::NpyFile::new(&bytes[..]).ok()?;
    if npy.shape().len() != 2 || npy.shape()[1] != FEATURES as u64 {
        return None;
    }
    npy.into_vec::<f32>().ok()
}
