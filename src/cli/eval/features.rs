//! `retrato eval features`: pool3 features of a set, for checking against the reference.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use retrato::eval::extractor::features_npy;

use super::NetworkArgs;
use crate::cli::files::write_atomic;
use retrato::eval::sets::{ImageSet, Set};

#[derive(clap::Args)]
pub struct Args {
    /// uint8 N×H×W×3 .npy (the layout of the shared test sets).
    #[arg(long)]
    images: PathBuf,
    #[arg(long, default_value_t = 64)]
    n: usize,
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    network: NetworkArgs,
}

pub fn run(args: Args) -> Result<()> {
    let extractor = args.network.extractor()?;
    let (pixels, size) = retrato::eval::sets::read_images(&args.images)?;
    let available = pixels.len() / (size * size * 3);
    if args.n == 0 || args.n > available {
        bail!(
            "{}: holds {available} images, asked for {}",
            args.images.display(),
            args.n
        );
    }
    let start = Instant::now();
    // Computed every time (never read from the cache): this command exists to check them.
    let set = Set::Images(ImageSet {
        label: args.images.display().to_string(),
        pixels: pixels[..args.n * size * size * 3].to_vec(),
        size,
        real: false,
    });
    let features = crate::cli::eval::features(set, &extractor)?;
    let seconds = start.elapsed().as_secs_f64();
    write_atomic(&args.out, &features_npy(&features.values))?;
    println!(
        "{} images in {seconds:.1} s ({:.1} images/s) -> {}",
        args.n,
        args.n as f64 / seconds,
        args.out.display()
    );
    Ok(())
}
