//! `retrato invert`: the latent of a picture in a model's latent space (`retrato::invert`),
//! saved for `sample --latents`; with `--images`, the same for the first N pictures of a set,
//! with each reconstruction's PSNR and Inception-feature distance and their medians.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor};
use retrato::data::{Dataset, Range, Square, crop_square, decode_upright};
use retrato::eval::extractor::Extractor;
use retrato::eval::inception::FEATURES;
use retrato::image_grid::{grid, png_bytes, to_rgb8};
use retrato::invert::{InvertOptions, Inverter, TuneOptions, invert, psnr, tune};
use retrato::model::{Discriminator, Generator};
use retrato::sample::{latents_tensor, read};
use retrato::train::checkpoint::sampling_generator;
use retrato::weights::{DISCRIMINATOR_PREFIX, Header, Part, Storage};

use super::device::DeviceChoice;
use super::files::{load_model, write_atomic};
use super::sample::write_npy;
use retrato::eval::sets::{Set, read_set};

#[derive(clap::Args)]
pub struct Args {
    /// The model whose latent space is searched (a checkpoint's moving average).
    #[arg(long)]
    model: PathBuf,
    /// The model's discriminator, so that the loss sees faces and not only pixels (the page
    /// ships it as NAME.discriminator.safetensors; a checkpoint carries its own).
    #[arg(long)]
    discriminator: Option<PathBuf>,
    /// The picture: JPEG, PNG, WebP, BMP or GIF, turned upright by its EXIF orientation,
    /// cropped to --crop (default: its centred square) and resized to the model's size.
    #[arg(long, required_unless_present = "images", conflicts_with = "images")]
    image: Option<PathBuf>,
    /// The square over the face, LEFT,TOP,SIDE in the upright picture's pixels (the page's
    /// "Use my photo" shows the same numbers).
    #[arg(long, requires = "image", value_parser = parse_square)]
    crop: Option<Square>,
    /// Instead of --image: the first --n pictures of a set (uint8 .npy N×H×W×3, a folder or
    /// an archive), with each reconstruction's PSNR and feature distance and their medians.
    #[arg(long)]
    images: Option<PathBuf>,
    #[arg(long, default_value_t = 50)]
    n: usize,
    /// The latents found, float32 N×dim .npy (`retrato sample --latents FILE` draws them, in
    /// this model or any model fine-tuned from it).
    #[arg(long)]
    out: PathBuf,
    /// A PNG of each picture (top row) above its reconstruction.
    #[arg(long)]
    preview: Option<PathBuf>,
    #[arg(long, default_value_t = InvertOptions::default().steps)]
    steps: usize,
    /// Random starting latents searched together; the best is kept.
    #[arg(long, default_value_t = InvertOptions::default().starts)]
    starts: usize,
    #[arg(long, default_value_t = InvertOptions::default().learning_rate)]
    lr: f64,
    /// Weight of the discriminator-feature distance (0: pixels only).
    #[arg(long, default_value_t = InvertOptions::default().feature_weight)]
    feature_weight: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Then tune the generator itself on each picture for this many steps (pivotal tuning,
    /// with a term that keeps other portraits in place): a closer likeness in this model only.
    #[arg(long, default_value_t = 0)]
    tune_steps: usize,
    /// With --image and --tune-steps: write the tuned model here (f16), for `sample --latents`.
    #[arg(long, requires = "image")]
    tuned_model: Option<PathBuf>,
    /// The FID Inception weights, for --images' feature distance.
    #[arg(long, default_value = retrato::train::config::DEFAULT_INCEPTION)]
    inception: PathBuf,
    #[arg(long, value_enum, default_value_t)]
    device: DeviceChoice,
}

pub fn run(args: Args) -> Result<()> {
    let device = args.device.device()?.autodiff();
    let file = load_model(&args.model)?;
    let model_error = |e| anyhow::anyhow!("{}: {e}", args.model.display());
    let generator = sampling_generator(&file, &device).map_err(model_error)?;
    let discriminator = read_discriminator(&args, &file, &device)?;
    let size = file.header.model.image_size();
    let (pixels, count, label) = match (&args.image, &args.images) {
        (Some(path), _) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("{}: cannot read it", path.display()))?;
            let fail = |e: &dyn std::fmt::Display| anyhow::anyhow!("{}: {e}", path.display());
            let picture = decode_upright(&bytes).map_err(|e| fail(&e))?;
            let square = args
                .crop
                .unwrap_or_else(|| Square::centred(picture.width(), picture.height()));
            let pixels = crop_square(&picture, square, size as u32).map_err(|e| fail(&e))?;
            (pixels, 1, path.display().to_string())
        }
        (None, Some(path)) => match read_set(path, size, Some(args.n))? {
            Set::Images(set) => (set.pixels, args.n, set.label),
            Set::Features { .. } => bail!("{}: holds features, not pictures", path.display()),
        },
        (None, None) => unreachable!("clap requires one"),
    };
    let options = InvertOptions {
        steps: args.steps,
        starts: args.starts,
        learning_rate: args.lr,
        feature_weight: args.feature_weight,
        seed: args.seed,
        ..InvertOptions::default()
    };
    let per_image = size * size * 3;
    let start = std::time::Instant::now();
    let dim = generator.latent_dim();
    let tune_options = TuneOptions {
        steps: args.tune_steps,
        ..TuneOptions::default()
    };
    let mut latents = Vec::new();
    let mut tuned_images = Vec::new();
    for i in 0..count {
        let target = target_tensor(&pixels[i * per_image..(i + 1) * per_image], size, &device);
        let inverter = Inverter::new(
            &generator,
            discriminator.as_ref(),
            target.clone(),
            options.clone(),
        )
        .map_err(|e| anyhow::anyhow!("{label}: {e}"))?;
        let found = invert(inverter, &mut |_| {});
        if args.tune_steps > 0 {
            let z = latents_tensor(found.latent.clone(), dim, &device);
            let tuned = tune(&generator, z, target, &tune_options).valid();
            let plain_z = latents_tensor(found.latent.clone(), dim, &device.clone().inner());
            tuned_images.extend(read(tuned.generate(plain_z)).0);
            if let Some(path) = &args.tuned_model {
                write_generator(&tuned, &file.header, path)?;
            }
        }
        latents.extend(found.latent);
    }
    let seconds = start.elapsed().as_secs_f64();
    write_npy(&args.out, &latents, &[latents.len() / dim, dim])?;
    let (drawn, dims) = read(generator.valid().generate(latents_tensor(
        latents.clone(),
        dim,
        &device.clone().inner(),
    )));
    let targets = to_unit(&pixels[..count * per_image], size);
    let scores = psnr_each(&targets, &drawn, 3 * size * size);
    let tuned_scores = psnr_each(&targets, &tuned_images, 3 * size * size);
    if let Some(path) = &args.preview {
        let mut tiles = to_rgb8(&targets, dims);
        tiles.extend(to_rgb8(&drawn, dims));
        if !tuned_images.is_empty() {
            tiles.extend(to_rgb8(&tuned_images, dims));
        }
        write_atomic(path, &png_bytes(&grid(&tiles, count)))?;
    }
    println!(
        "{count} picture(s) from {label}: {} steps x {} starts in {seconds:.1} s ({:.2} s each)",
        args.steps,
        args.starts,
        seconds / count as f64
    );
    let which = match count {
        1 => "",
        _ => " (median)",
    };
    println!("PSNR {:.2} dB{which}", median(&scores));
    if !tuned_scores.is_empty() {
        println!(
            "PSNR {:.2} dB{which} after tuning the generator {} steps",
            median(&tuned_scores),
            args.tune_steps
        );
    }
    if args.images.is_some() {
        report_feature_distances(&args.inception, &pixels[..count * per_image], &drawn, dims)?;
    }
    println!("latents {}", args.out.display());
    if let Some(path) = &args.preview {
        println!(
            "preview {} (rows: pictures, reconstructions{})",
            path.display(),
            match tuned_images.is_empty() {
                true => "",
                false => ", after tuning",
            }
        );
    }
    if let Some(path) = args.tuned_model.as_ref().filter(|_| args.tune_steps > 0) {
        println!("tuned model {}", path.display());
    }
    Ok(())
}

/// The discriminator for the loss: --discriminator, else the model file's own (a checkpoint).
fn read_discriminator(
    args: &Args,
    file: &retrato::weights::ModelFile,
    device: &Device,
) -> Result<Option<Discriminator>> {
    let from = |path: &Path, file: &retrato::weights::ModelFile| {
        file.discriminator(device)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    };
    match &args.discriminator {
        Some(path) => {
            let d_file = load_model(path)?;
            let d = d_file.discriminator_for(file, device);
            Ok(Some(d.map_err(|e| {
                anyhow::anyhow!("{}: {e} ({})", path.display(), args.model.display())
            })?))
        }
        None if file.has_part(DISCRIMINATOR_PREFIX) => Ok(Some(from(&args.model, file)?)),
        None => Ok(None),
    }
}

/// RGB8 pictures (N×H×W×3) as an [N, 3, H, W] tensor in [0, 1].
fn target_tensor(pixels: &[u8], size: usize, device: &Device) -> Tensor<4> {
    let set = Dataset::new(pixels.to_vec(), size);
    let all: Vec<usize> = (0..set.count).collect();
    set.batch(&all, &vec![false; set.count], Range::ZeroToOne, device)
}

/// N×H×W×3 uint8 → N×3×H×W floats in [0, 1].
fn to_unit(pixels: &[u8], size: usize) -> Vec<f32> {
    read(target_tensor(pixels, size, &Device::flex())).0
}

/// `LEFT,TOP,SIDE`.
fn parse_square(text: &str) -> Result<Square, String> {
    let numbers: Vec<u32> = text
        .split(',')
        .map(|part| part.trim().parse())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("'{text}' is not LEFT,TOP,SIDE in whole pixels"))?;
    match numbers[..] {
        [left, top, side] => Ok(Square { left, top, side }),
        _ => Err(format!("'{text}' is not LEFT,TOP,SIDE (three numbers)")),
    }
}

/// Median Inception-feature distance of each picture to its reconstruction, beside the
/// distance between different pictures of the set (the scale of "another face").
fn report_feature_distances(
    inception: &Path,
    pixels: &[u8],
    drawn: &[f32],
    dims: [usize; 4],
) -> Result<()> {
    let size = dims[2];
    let extractor = Extractor::open(inception, None, 16, &Device::flex())
        .map_err(anyhow::Error::msg)
        .context("--inception")?;
    let drawn_pixels: Vec<u8> = to_rgb8(drawn, dims)
        .into_iter()
        .flat_map(|image| image.into_raw())
        .collect();
    let features = |p: &[u8]| extractor.features(p, size, &mut |_| {});
    let real = features(pixels).map_err(anyhow::Error::msg)?;
    let rebuilt = features(&drawn_pixels).map_err(anyhow::Error::msg)?;
    let row = |v: &[f32], i: usize| v[i * FEATURES..(i + 1) * FEATURES].to_vec();
    let distance = |a: Vec<f32>, b: Vec<f32>| {
        a.iter()
            .zip(&b)
            .map(|(x, y)| ((x - y) as f64).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let n = dims[0];
    let to_own: Vec<f64> = (0..n)
        .map(|i| distance(row(&real, i), row(&rebuilt, i)))
        .collect();
    let to_other: Vec<f64> = (0..n)
        .map(|i| distance(row(&real, i), row(&real, (i + 1) % n)))
        .collect();
    println!(
        "Inception feature distance {:.2} (median; between different pictures of the set: {:.2})",
        median(&to_own),
        median(&to_other)
    );
    Ok(())
}

/// PSNR of each image of `images` against the same-index image of `targets`.
fn psnr_each(targets: &[f32], images: &[f32], per_image: usize) -> Vec<f64> {
    (targets.chunks(per_image).zip(images.chunks(per_image)))
        .map(|(target, image)| psnr(target, image))
        .collect()
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// A tuned generator as a model file (f16) with the source's card and a note.
fn write_generator(generator: &Generator, source: &Header, path: &Path) -> Result<()> {
    let mut header = source.clone();
    header.storage = Storage::F16;
    header.forget_measurements();
    header.notes = format!(
        "{} Tuned to one picture by `retrato invert --tune-steps`.",
        source.notes
    );
    let part = Part::generator(generator, &header.model)?;
    let bytes = retrato::weights::encode(&header, &[part])?;
    write_atomic(path, &bytes)
}
