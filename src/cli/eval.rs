//! `retrato eval`: quality measurements. `fid` compares two image sets (or a model's
//! portraits with a reference set) by FID and KID; `features` writes the Inception pool3
//! features that `bench/fid_reference.py` checks against the reference network.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use npyz::WriterBuilder;
use retrato::data::cache::read_npy_u8;
use retrato::eval::inception::{FEATURES, Inception};
use retrato::eval::stats::{
    frechet_distance_of_features, kernel_inception_distance, precision_recall,
};

use super::device::DeviceChoice;
use super::files::write_atomic;

/// Where the shared data keeps the FID network, relative to the repository.
const DEFAULT_INCEPTION: &str =
    "../shared/data/fid_inception/pt_inception_fid_2015-12-05_f16.safetensors";

#[derive(clap::Subcommand)]
pub enum Command {
    /// FID and KID between two image sets (--real A --real B) or a model and a set
    /// (--model G --ref R).
    Fid(FidArgs),
    /// Inception-v3 pool3 features (N×2048 float32 .npy) of the first N images of a uint8 .npy.
    Features(FeaturesArgs),
}

#[derive(clap::Args)]
pub struct FidArgs {
    /// An image set: uint8 N×S×S×3 .npy, a folder / .tar / .zip (decoded at --size), or
    /// features already computed (float32 N×2048 .npy from `eval features`).
    /// Give it twice to compare two sets.
    #[arg(long = "real", value_name = "SET")]
    real: Vec<PathBuf>,
    /// A model file whose portraits (seeds --seed, portraits 0..n) are compared with --ref.
    #[arg(long, requires = "reference")]
    model: Option<PathBuf>,
    /// The reference set for --model.
    #[arg(long = "ref", value_name = "SET")]
    reference: Option<PathBuf>,
    /// Images taken from each set (the first N) or generated.
    #[arg(long, default_value_t = 2000)]
    n: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Side at which folders and archives are decoded.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// KID: random subsets and their size (the size is capped at N).
    #[arg(long, default_value_t = 100)]
    kid_subsets: usize,
    #[arg(long, default_value_t = 1000)]
    kid_subset_size: usize,
    /// Neighbours for precision/recall (Kynkäänniemi et al. 2019).
    #[arg(long, default_value_t = 3)]
    k: usize,
    #[arg(long, default_value = DEFAULT_INCEPTION)]
    inception: PathBuf,
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[arg(long, value_enum, default_value_t)]
    device: DeviceChoice,
}

#[derive(clap::Args)]
pub struct FeaturesArgs {
    /// uint8 N×H×W×3 .npy (the layout of the shared test sets).
    #[arg(long)]
    images: PathBuf,
    #[arg(long, default_value_t = 64)]
    n: usize,
    #[arg(long)]
    out: PathBuf,
    /// The FID Inception weights (safetensors with layer metadata).
    #[arg(long, default_value = DEFAULT_INCEPTION)]
    inception: PathBuf,
    #[arg(long, default_value_t = 16)]
    batch: usize,
    #[arg(long, value_enum, default_value_t)]
    device: DeviceChoice,
}

pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Fid(args) => fid(args),
        Command::Features(args) => features(args),
    }
}

/// An image set's pixels and where they came from.
struct ImageSet {
    label: String,
    pixels: Vec<u8>,
    size: usize,
}

impl ImageSet {
    fn count(&self) -> usize {
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
}

/// What `--real` / `--ref` name: images, or their features computed before.
enum Set {
    Images(ImageSet),
    Features { label: String, values: Vec<f32> },
}

/// The first `n` images (or feature rows) of a set.
fn read_set(path: &Path, size: usize, n: usize) -> Result<Set> {
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
        return Ok(Set::Images(
            ImageSet {
                label,
                pixels,
                size,
            }
            .first(n)?,
        ));
    }
    let cache = retrato::data::cache::default_cache_dir();
    let loaded = retrato::data::cache::load(path, size, retrato::data::Fit::Crop, Some(&cache))
        .map_err(anyhow::Error::msg)?;
    Ok(Set::Images(
        ImageSet {
            label,
            pixels: loaded.dataset.pixels,
            size,
        }
        .first(n)?,
    ))
}

/// Portraits 0..n of `seed` from a model file, as uint8 pixels (what a PNG of them holds).
fn generate(path: &Path, n: usize, seed: u64, device: &burn::tensor::Device) -> Result<ImageSet> {
    let generator = super::files::load_model(path)?.generator(device)?;
    let mut pixels = Vec::new();
    let mut size = 0;
    for first in (0..n).step_by(retrato::sample::BATCH) {
        let count = retrato::sample::BATCH.min(n - first);
        let z = retrato::sample::seeded_latents(&generator, seed, first as u64, count, device);
        let (values, dims) = retrato::sample::read(generator.generate(z));
        size = dims[2];
        for image in retrato::image_grid::to_rgb8(&values, dims) {
            pixels.extend(image.into_raw());
        }
    }
    Ok(ImageSet {
        label: format!("{} (portraits 0..{n} of seed {seed})", path.display()),
        pixels,
        size,
    })
}

fn fid(args: FidArgs) -> Result<()> {
    let device = args.device.device()?;
    let (a, b) = match (&args.model, &args.reference, args.real.as_slice()) {
        (Some(model), Some(reference), []) => (
            Set::Images(generate(model, args.n, args.seed, &device)?),
            read_set(reference, args.size, args.n)?,
        ),
        (None, None, [first, second]) => (
            read_set(first, args.size, args.n)?,
            read_set(second, args.size, args.n)?,
        ),
        _ => bail!("give either --real A --real B, or --model G --ref R"),
    };
    let start = Instant::now();
    let mut net = None;
    let mut computed = 0;
    let mut features_of = |set: Set| -> Result<(String, Vec<f32>)> {
        match set {
            Set::Features { label, values } => Ok((label, values)),
            Set::Images(images) => {
                if net.is_none() {
                    net = Some(load_inception(&args.inception, &device)?);
                }
                let net = net.as_ref().expect("loaded");
                let values =
                    retrato::eval::features(net, &images.pixels, images.size, args.batch, &device);
                computed += images.count();
                Ok((images.label, values))
            }
        }
    };
    let (label_a, fa) = features_of(a)?;
    let (label_b, fb) = features_of(b)?;
    let feature_seconds = start.elapsed().as_secs_f64();
    let (count_a, count_b) = (fa.len() / FEATURES, fb.len() / FEATURES);
    let fid = frechet_distance_of_features(&fa, &fb, FEATURES).map_err(anyhow::Error::msg)?;
    let (precision, recall) =
        precision_recall(&fb, &fa, FEATURES, args.k).map_err(anyhow::Error::msg)?;
    let (kid, kid_std) = kernel_inception_distance(
        &fa,
        &fb,
        FEATURES,
        args.kid_subsets,
        args.kid_subset_size,
        args.seed,
    )
    .map_err(anyhow::Error::msg)?;
    let seconds = start.elapsed().as_secs_f64();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "fid": fid, "kid": kid, "kid_std": kid_std,
                "precision": precision, "recall": recall, "k": args.k,
                "a": label_a, "b": label_b, "n_a": count_a, "n_b": count_b,
                "kid_subsets": args.kid_subsets, "kid_subset_size": args.kid_subset_size.min(args.n),
                "feature_seconds": feature_seconds, "seconds": seconds,
                "images_through_inception": computed,
            })
        );
    } else {
        println!("A    {label_a} ({count_a} images)");
        println!("B    {label_b} ({count_b} images)");
        println!("FID  {fid:.3}");
        println!("KID  {kid:.5} ± {kid_std:.5}");
        println!(
            "precision {precision:.3}, recall {recall:.3} (of A with respect to B, k = {})",
            args.k
        );
        match computed {
            0 => println!("time {seconds:.0} s (features given)"),
            n => println!(
                "time {seconds:.0} s ({:.1} images/s through Inception)",
                n as f64 / feature_seconds
            ),
        }
    }
    Ok(())
}

fn features(args: FeaturesArgs) -> Result<()> {
    let device = args.device.device()?;
    let net = load_inception(&args.inception, &device)?;
    let (pixels, size) = read_images(&args.images)?;
    let available = pixels.len() / (size * size * 3);
    if args.n == 0 || args.n > available {
        bail!(
            "{}: holds {available} images, asked for {}",
            args.images.display(),
            args.n
        );
    }
    let start = Instant::now();
    let features = retrato::eval::features(
        &net,
        &pixels[..args.n * size * size * 3],
        size,
        args.batch,
        &device,
    );
    let seconds = start.elapsed().as_secs_f64();
    let mut bytes = Vec::new();
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[args.n as u64, FEATURES as u64])
        .writer(&mut bytes)
        .begin_nd()?;
    writer.extend(features.iter().copied())?;
    writer.finish()?;
    write_atomic(&args.out, &bytes)?;
    println!(
        "{} images in {seconds:.1} s ({:.1} images/s) -> {}",
        args.n,
        args.n as f64 / seconds,
        args.out.display()
    );
    Ok(())
}

fn load_inception(path: &Path, device: &burn::tensor::Device) -> Result<Inception> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "{}: cannot read the FID Inception weights (--inception)",
            path.display()
        )
    })?;
    Inception::from_bytes(&bytes, device).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// A uint8 N×S×S×3 .npy: its pixels and side.
fn read_images(path: &Path) -> Result<(Vec<u8>, usize)> {
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
