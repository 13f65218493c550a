//! `retrato eval nearest`: the memorization check. Generates candidates, finds each one's
//! nearest training images in Inception feature space and shows the portraits that came
//! closest to the training set, each beside its neighbours: copies would show up here.

use std::path::PathBuf;

use anyhow::{Result, bail};
use image::{Rgb, RgbImage};
use retrato::eval::inception::FEATURES;
use retrato::eval::neighbours::nearest;
use retrato::image_grid::{grid, png_bytes};

use super::NetworkArgs;
use crate::cli::files::write_atomic;
use retrato::eval::sets::{ImageSet, Set, generate, read_set};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    model: PathBuf,
    /// The model's training images (folder, .tar, .zip or uint8 .npy).
    #[arg(long)]
    train: PathBuf,
    /// Search only the first N training images (default: all; each costs one Inception pass
    /// the first time, then comes from the cache).
    #[arg(long, value_name = "N")]
    train_images: Option<usize>,
    /// Held-out real images (e.g. the test set): how close a new real face comes to the
    /// training set, the yardstick for the portraits' distances.
    #[arg(long = "ref", value_name = "SET")]
    reference: Option<PathBuf>,
    #[arg(long)]
    out: PathBuf,
    /// Portraits generated (0..candidates of --seed) and searched.
    #[arg(long, default_value_t = 256)]
    candidates: usize,
    /// Rows in the picture: the portraits closest to a training image.
    #[arg(long, default_value_t = 8)]
    rows: usize,
    /// Training images shown beside each portrait, nearest first.
    #[arg(long, default_value_t = 5)]
    neighbours: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Side at which folders and archives are decoded.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Pixel scale of the picture (nearest-neighbour upscaling).
    #[arg(long, default_value_t = 2)]
    scale: u32,
    #[command(flatten)]
    network: NetworkArgs,
}

pub fn run(args: Args) -> Result<()> {
    if args.candidates == 0 || args.rows == 0 || args.neighbours == 0 {
        bail!("--candidates, --rows and --neighbours must be at least 1");
    }
    let extractor = args.network.extractor()?;
    let device = args.network.device.device()?;
    let portraits = generate(&args.model, args.candidates, args.seed, &device)?;
    let Set::Images(train) = read_set(&args.train, args.size, args.train_images)? else {
        bail!(
            "{}: --train needs images, not features",
            args.train.display()
        );
    };
    let train_features = crate::cli::eval::features(Set::Images(clone_set(&train)), &extractor)?;
    let portrait_features =
        crate::cli::eval::features(Set::Images(clone_set(&portraits)), &extractor)?;
    let found = nearest(
        &portrait_features.values,
        &train_features.values,
        FEATURES,
        args.neighbours.min(train.count()),
    );
    let mut order: Vec<usize> = (0..found.len()).collect();
    order.sort_by(|&a, &b| found[a][0].1.total_cmp(&found[b][0].1));
    order.truncate(args.rows);

    let blank = RgbImage::from_pixel(train.size as u32, train.size as u32, Rgb([24, 24, 24]));
    let mut tiles = Vec::new();
    for &i in &order {
        tiles.push(fit(portraits.image(i), train.size));
        tiles.push(blank.clone());
        tiles.extend(found[i].iter().map(|&(j, _)| train.image(j)));
    }
    let picture = grid(&tiles, 2 + found[0].len());
    let picture = image::imageops::resize(
        &picture,
        picture.width() * args.scale.max(1),
        picture.height() * args.scale.max(1),
        image::imageops::FilterType::Nearest,
    );
    write_atomic(&args.out, &png_bytes(&picture))?;

    let mut distances: Vec<f64> = found.iter().map(|row| row[0].1).collect();
    println!(
        "{} portraits of seed {} against {} training images ({})",
        portraits.count(),
        args.seed,
        train.count(),
        train.label
    );
    println!(
        "nearest training image: {} (portraits)",
        summary(&mut distances)
    );
    if let Some(reference) = &args.reference {
        let held_out =
            crate::cli::eval::features(read_set(reference, args.size, None)?, &extractor)?;
        let found = nearest(&held_out.values, &train_features.values, FEATURES, 1);
        let mut real: Vec<f64> = found.iter().map(|row| row[0].1).collect();
        println!(
            "nearest training image: {} (held-out real images, {})",
            summary(&mut real),
            held_out.label
        );
    }
    let listed: Vec<String> = order
        .iter()
        .map(|&i| format!("{i} ({:.2})", found[i][0].1))
        .collect();
    println!("closest portraits, shown: {}", listed.join(", "));
    println!("-> {}", args.out.display());
    Ok(())
}

/// A set lent to feature extraction without giving up its pixels.
fn clone_set(set: &ImageSet) -> ImageSet {
    ImageSet {
        label: set.label.clone(),
        pixels: set.pixels.clone(),
        size: set.size,
        real: set.real,
    }
}

/// A portrait at the training images' side (models may generate another size).
fn fit(image: RgbImage, side: usize) -> RgbImage {
    match image.width() as usize == side {
        true => image,
        false => image::imageops::resize(
            &image,
            side as u32,
            side as u32,
            image::imageops::FilterType::Lanczos3,
        ),
    }
}

/// "min A, median B, max C" of distances.
fn summary(distances: &mut [f64]) -> String {
    distances.sort_by(f64::total_cmp);
    let median = distances[distances.len() / 2];
    format!(
        "min {:.2}, median {:.2}, max {:.2}",
        distances[0],
        median,
        distances[distances.len() - 1]
    )
}
