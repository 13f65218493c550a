//! `retrato eval`: quality measurements. So far `features`, the Inception pool3 features of
//! a set of images, which `bench/fid_reference.py` checks against the reference network.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use npyz::WriterBuilder;
use retrato::data::cache::read_npy_u8;
use retrato::eval::inception::{FEATURES, Inception};

use super::device::DeviceChoice;
use super::files::write_atomic;

/// Where the shared data keeps the FID network, relative to the repository.
const DEFAULT_INCEPTION: &str =
    "../shared/data/fid_inception/pt_inception_fid_2015-12-05_f16.safetensors";

#[derive(clap::Subcommand)]
pub enum Command {
    /// Inception-v3 pool3 features (N×2048 float32 .npy) of the first N images of a uint8 .npy.
    Features(FeaturesArgs),
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
    let Command::Features(args) = command;
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
    let npy = npyz::NpyFile::new(&bytes[..])
        .with_context(|| format!("{}: not a .npy file", path.display()))?;
    let shape = npy.shape().to_vec();
    let size = match shape.as_slice() {
        [_, h, w, 3] if h == w && *h > 0 => *h as usize,
        _ => bail!(
            "{}: expected uint8 N×S×S×3 images, found shape {shape:?}",
            path.display()
        ),
    };
    let pixels = read_npy_u8(&bytes, size)
        .with_context(|| format!("{}: expected uint8 (|u1) C-order pixels", path.display()))?;
    Ok((pixels, size))
}
