//! `retrato data preview`: decode a training set exactly as `train` would (same cache) and
//! show its first images, with every skipped file and why.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use retrato::data::cache::{default_cache_dir, load};
use retrato::data::{Dataset, Fit};
use retrato::image_grid::{png_bytes, square_grid};

use super::files::write_atomic;

#[derive(clap::Subcommand)]
pub enum Command {
    /// A grid of the first N images after decoding, cropping and resizing.
    Preview(PreviewArgs),
}

#[derive(clap::Args)]
pub struct PreviewArgs {
    /// A folder (recursive), .tar or .zip of images.
    #[arg(long)]
    data: PathBuf,
    /// PNG grid to write.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 64)]
    n: usize,
    /// Side in pixels (the model's image size).
    #[arg(long, default_value_t = 64)]
    size: usize,
    #[arg(long, value_enum, default_value_t = FitArg::Crop)]
    fit: FitArg,
    #[arg(long)]
    no_cache: bool,
}

/// Decodes a training set (through the cache unless `no_cache`), printing one line per
/// skipped file and a summary; no usable image at all is an error.
pub fn read_training_set(data: &Path, size: usize, fit: Fit, no_cache: bool) -> Result<Dataset> {
    println!("reading {} at {size}x{size} ...", data.display());
    let cache_dir = (!no_cache).then(default_cache_dir);
    let loaded = load(data, size, fit, cache_dir.as_deref()).map_err(anyhow::Error::msg)?;
    for skipped in &loaded.skipped {
        println!("skipped {}: {}", skipped.name, skipped.reason);
    }
    println!(
        "{} images{}, {} skipped, {} other files ignored",
        loaded.dataset.count,
        if loaded.from_cache {
            " (decode cache)"
        } else {
            ""
        },
        loaded.skipped.len(),
        loaded.ignored
    );
    if loaded.dataset.count == 0 {
        bail!("{}: no usable images", data.display());
    }
    Ok(loaded.dataset)
}

pub fn run(command: Command) -> Result<()> {
    let Command::Preview(args) = command;
    if args.size == 0 || args.size > 1024 {
        bail!("--size must be from 1 to 1024");
    }
    let dataset = read_training_set(&args.data, args.size, args.fit.into(), args.no_cache)?;
    let s = args.size as u32;
    let images: Vec<image::RgbImage> = (0..dataset.count.min(args.n.max(1)))
        .map(|i| image::RgbImage::from_raw(s, s, dataset.image(i).to_vec()).expect("size"))
        .collect();
    write_atomic(&args.out, &png_bytes(&square_grid(&images)))?;
    println!("wrote {}", args.out.display());
    Ok(())
}

/// How non-square pictures become square (`--fit`), for every command that reads a set.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum FitArg {
    /// Largest centred square.
    Crop,
    /// Whole picture on a black square.
    Pad,
}

impl From<FitArg> for Fit {
    fn from(fit: FitArg) -> Self {
        match fit {
            FitArg::Crop => Fit::Crop,
            FitArg::Pad => Fit::Pad,
        }
    }
}
