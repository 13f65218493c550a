//! The image sets `retrato eval` compares: uint8 `.npy` files, folders and archives (the training
//! reader), features computed before, and a model's portraits.

use std::path::Path;

use crate::data::cache::read_npy_u8;
use crate::eval::extractor::Extractor;
use crate::eval::inception::FEATURES;
use crate::train::checkpoint::sampling_generator;
use crate::weights::ModelFile;
use anyhow::{Context, Result, bail};
use burn::tensor::Device;

/// An image set's pixels (N×size×size×3) and where they came from.
pub struct ImageSet {
    pub label: String,
    pub pixels: Vec<u8>,
    pub size: usize,
    /// Real images are worth caching features for; a model's portraits change every run.
    pub real: bool,
}

impl ImageSet {
    pub fn count(&self) -> usize {
        self.pixels.len() / (self.size * self.size * 3)
    }

    /// The first `n` images, or a clear error when there are fewer.
    fn first(mut self, n: usize) -> Result<Self> {
        if n == 0 || self.count() < n {
            bail!(
                "{}: holds {} images, {n} needed (--n)",
                self.label,
                self.count()
            );
        }
        self.pixels.truncate(n * self.size * self.size * 3);
        Ok(self)
    }

    pub fn image(&self, index: usize) -> image::RgbImage {
        let per = self.size * self.size * 3;
        let pixels = self.pixels[index * per..(index + 1) * per].to_vec();
        image::RgbImage::from_raw(self.size as u32, self.size as u32, pixels).expect("sized")
    }
}

/// What `--real` / `--ref` / `--floor` name: images, or their features computed before.
pub enum Set {
    Images(ImageSet),
    Features { label: String, values: Vec<f32> },
}

/// A set's Inception features and whether they had to be computed.
pub struct Features {
    pub label: String,
    pub values: Vec<f32>,
    pub computed: usize,
}

impl Features {
    pub fn count(&self) -> usize {
        self.values.len() / FEATURES
    }
}

impl Set {
    /// How many images (or feature rows) the set holds.
    pub fn count(&self) -> usize {
        match self {
            Set::Images(images) => images.count(),
            Set::Features { values, .. } => values.len() / FEATURES,
        }
    }

    pub fn label(&self) -> &str {
        match self {
            Set::Images(images) => &images.label,
            Set::Features { label, .. } => label,
        }
    }

    /// Features of the set: given, cached (real images) or computed, `progress` told how many
    /// images are done.
    pub fn features(
        self,
        extractor: &Extractor,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Features> {
        let images = match self {
            Set::Features { label, values } => {
                return Ok(Features {
                    label,
                    values,
                    computed: 0,
                });
            }
            Set::Images(images) => images,
        };
        let (values, computed) = match images.real {
            true => {
                let (values, cached) = extractor
                    .cached_features(&images.pixels, images.size, progress)
                    .map_err(anyhow::Error::msg)?;
                (values, if cached { 0 } else { images.count() })
            }
            false => (
                extractor
                    .features(&images.pixels, images.size, progress)
                    .map_err(anyhow::Error::msg)?,
                images.count(),
            ),
        };
        Ok(Features {
            label: images.label,
            values,
            computed,
        })
    }
}

/// The first `n` images (or feature rows) of a set; `n` = None takes them all.
pub fn read_set(path: &Path, size: usize, n: Option<usize>) -> Result<Set> {
    let label = path.display().to_string();
    if path.extension().is_some_and(|e| e == "npy") {
        let bytes =
            std::fs::read(path).with_context(|| format!("{}: cannot read it", path.display()))?;
        let npy = npyz::NpyFile::new(&bytes[..])
            .with_context(|| format!("{}: not a .npy file", path.display()))?;
        if npy.shape() == [npy.shape()[0], FEATURES as u64] {
            let rows = npy.shape()[0] as usize;
            let mut values = npy
                .into_vec::<f32>()
                .with_context(|| format!("{}: features must be float32", path.display()))?;
            let n = n.unwrap_or(rows);
            if n == 0 || rows < n {
                bail!(
                    "{}: holds {rows} feature rows, {n} needed (--n)",
                    path.display()
                );
            }
            values.truncate(n * FEATURES);
            return Ok(Set::Features { label, values });
        }
        let (pixels, size) = images_of(path, &bytes)?;
        let set = ImageSet {
            label,
            pixels,
            size,
            real: true,
        };
        let n = n.unwrap_or(set.count());
        return Ok(Set::Images(set.first(n)?));
    }
    let cache = crate::data::cache::default_cache_dir();
    let loaded = crate::data::cache::load(path, size, crate::data::Fit::Crop, Some(&cache))
        .map_err(anyhow::Error::msg)?;
    let set = ImageSet {
        label,
        pixels: loaded.dataset.pixels,
        size,
        real: true,
    };
    let n = n.unwrap_or(set.count());
    Ok(Set::Images(set.first(n)?))
}

/// Portraits 0..n of `seed` from a model file (a checkpoint's moving average, which is what
/// it ships), as uint8 pixels (what a PNG of them holds).
pub fn generate(path: &Path, n: usize, seed: u64, device: &Device) -> Result<ImageSet> {
    let file = ModelFile::from_path(path).with_context(|| path.display().to_string())?;
    let generator =
        sampling_generator(&file, device).with_context(|| path.display().to_string())?;
    let (pixels, size) = crate::sample::portrait_pixels(&generator, seed, n, device);
    Ok(ImageSet {
        label: format!("{} (portraits 0..{n} of seed {seed})", path.display()),
        pixels,
        size,
        real: false,
    })
}

/// A uint8 N×S×S×3 .npy: its pixels and side.
pub fn read_images(path: &Path) -> Result<(Vec<u8>, usize)> {
    let bytes =
        std::fs::read(path).with_context(|| format!("{}: cannot read it", path.display()))?;
    images_of(path, &bytes)
}

/// The pixels and side of a uint8 N×S×S×3 .npy already read from `path`.
fn images_of(path: &Path, bytes: &[u8]) -> Result<(Vec<u8>, usize)> {
    let npy = npyz::NpyFile::new(bytes)
        .with_context(|| format!("{}: not a .npy file", path.display()))?;
    let shape = npy.shape().to_vec();
    let size = match shape.as_slice() {
        [_, h, w, 3] if h == w && *h > 0 => *h as usize,
        _ => bail!(
            "{}: expected uint8 N×S×S×3 images, found shape {shape:?}",
            path.display()
        ),
    };
    let pixels = read_npy_u8(bytes, size)
        .with_context(|| format!("{}: expected uint8 (|u1) C-order pixels", path.display()))?;
    Ok((pixels, size))
}
