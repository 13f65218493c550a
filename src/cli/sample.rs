//! `retrato sample` and `retrato interpolate`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use burn::tensor::Device;
use npyz::WriterBuilder;
use retrato::image_grid::{grid, png_bytes, square_grid, to_rgb8};
use retrato::latent::{interpolation, latent, variations};
use retrato::model::Generator;
use retrato::sample::{BATCH, latents_tensor, read, run};
use retrato::train::checkpoint::sampling_generator;

use super::device::DeviceChoice;
use super::files::{load_model, write_atomic};

#[derive(clap::Args)]
pub struct SampleArgs {
    /// Model file (retrato, or a PyTorch DCGAN netG state_dict as safetensors); a training
    /// checkpoint draws from its moving average, as the model it ships.
    #[arg(long)]
    model: PathBuf,
    /// How many portraits.
    #[arg(long, default_value_t = 64)]
    n: usize,
    /// Seed: portrait k of seed s is the same image in the CLI and the web page.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Index of the first portrait (portraits first..first+n of the seed).
    #[arg(long, default_value_t = 0)]
    first: u64,
    /// PNG grid to write.
    #[arg(long, required_unless_present_any = ["each", "raw"])]
    out: Option<PathBuf>,
    /// Also (or instead) write each portrait as DIR/portrait-SEED-INDEX.png.
    #[arg(long)]
    each: Option<PathBuf>,
    /// Take the latent vectors from a float32 .npy (N×nz or N×nz×1×1) instead of the seed.
    #[arg(long, conflicts_with = "variations_of")]
    latents: Option<PathBuf>,
    /// Draw N variations of portrait INDEX of --seed instead (what the page's "variations"
    /// shows for the same portrait).
    #[arg(long, value_name = "INDEX")]
    variations_of: Option<u64>,
    /// How far variations stray: 0 is the portrait itself, 1 an unrelated one.
    #[arg(long, default_value_t = 0.3)]
    strength: f32,
    /// Also write the generator's raw float32 output, N×C×H×W, as .npy.
    #[arg(long)]
    raw: Option<PathBuf>,
    /// Portraits per row of the grid (default: a square grid).
    #[arg(long)]
    columns: Option<usize>,
    #[arg(long, value_enum, default_value_t)]
    device: DeviceChoice,
}

#[derive(clap::Args)]
pub struct InterpolateArgs {
    #[arg(long)]
    model: PathBuf,
    /// Seed of the starting portrait (portrait 0 of `sample --seed FROM`).
    #[arg(long)]
    from: u64,
    /// Seed of the final portrait.
    #[arg(long)]
    to: u64,
    /// Frames, both ends included.
    #[arg(long, default_value_t = 8)]
    steps: usize,
    /// PNG strip to write.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value_t)]
    device: DeviceChoice,
}

pub fn run_sample(args: SampleArgs) -> Result<()> {
    ensure!(
        args.n > 0 || args.latents.is_some(),
        "--n must be at least 1"
    );
    let device = args.device.device()?;
    let generator = load_generator(&args.model, &device)?;
    let dim = generator.latent_dim();
    let z = match (&args.latents, args.variations_of) {
        (Some(path), _) => read_latents(path, dim)?,
        (None, Some(index)) => variations(args.seed, index, dim, args.n, args.strength),
        (None, None) => retrato::latent::latents(args.seed, args.first, args.n, dim),
    };
    let (pixels, dims) = generate(&generator, z.clone(), dim, &device, false);
    if let Some(path) = &args.raw {
        let (raw, raw_dims) = generate(&generator, z, dim, &device, true);
        write_npy(path, &raw, &raw_dims)?;
        println!("wrote {} (raw output {raw_dims:?})", path.display());
    }
    let images = to_rgb8(&pixels, dims);
    if let Some(folder) = &args.each {
        for (i, image) in images.iter().enumerate() {
            let name = match (&args.latents, args.variations_of) {
                (Some(_), _) => format!("portrait-{i:04}.png"),
                (None, Some(index)) => format!("variation-{}-{index}-{i:04}.png", args.seed),
                (None, None) => format!("portrait-{}-{:04}.png", args.seed, args.first + i as u64),
            };
            write_atomic(&folder.join(name), &png_bytes(image))?;
        }
        println!("wrote {} portraits into {}", images.len(), folder.display());
    }
    if let Some(out) = &args.out {
        let picture = match args.columns {
            Some(columns) => grid(&images, columns),
            None => square_grid(&images),
        };
        write_atomic(out, &png_bytes(&picture))?;
        println!("wrote {} ({} portraits)", out.display(), images.len());
    }
    Ok(())
}

pub fn run_interpolate(args: InterpolateArgs) -> Result<()> {
    ensure!(args.steps >= 2, "--steps must be at least 2 (the two ends)");
    let device = args.device.device()?;
    let generator = load_generator(&args.model, &device)?;
    let dim = generator.latent_dim();
    let (a, b) = (latent(args.from, 0, dim), latent(args.to, 0, dim));
    let z = interpolation(&a, &b, args.steps);
    let (pixels, dims) = generate(&generator, z, dim, &device, false);
    let images = to_rgb8(&pixels, dims);
    write_atomic(&args.out, &png_bytes(&grid(&images, images.len())))?;
    println!(
        "wrote {} ({} frames, seed {} → seed {})",
        args.out.display(),
        images.len(),
        args.from,
        args.to
    );
    Ok(())
}

/// The generator to draw from: a checkpoint's moving average when it has one (what the run
/// ships and measures), else the file's generator.
fn load_generator(path: &Path, device: &Device) -> Result<Generator> {
    let model = load_model(path)?;
    sampling_generator(&model, device).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Runs the generator over `z` ([N, dim] row-major) in batches; returns [N, C, H, W].
fn generate(
    generator: &Generator,
    z: Vec<f32>,
    dim: usize,
    device: &Device,
    raw: bool,
) -> (Vec<f32>, [usize; 4]) {
    let mut values = Vec::new();
    let mut dims = [0; 4];
    for chunk in z.chunks(BATCH * dim) {
        let (batch, batch_dims) = read(run(
            generator,
            latents_tensor(chunk.to_vec(), dim, device),
            raw,
        ));
        values.extend(batch);
        dims = [
            dims[0] + batch_dims[0],
            batch_dims[1],
            batch_dims[2],
            batch_dims[3],
        ];
    }
    (values, dims)
}

/// A float32 .npy of shape N×dim or N×dim×1×1 (PyTorch's `fixed_noise`).
fn read_latents(path: &Path, dim: usize) -> Result<Vec<f32>> {
    let name = path.display();
    let bytes = std::fs::read(path).with_context(|| format!("{name}: cannot read it"))?;
    let npy = npyz::NpyFile::new(&bytes[..]).with_context(|| format!("{name}: not a .npy file"))?;
    let shape = npy.shape().to_vec();
    let rows_ok = match shape.as_slice() {
        [n, d] | [n, d, 1, 1] => *n > 0 && *d as usize == dim,
        _ => false,
    };
    if !rows_ok {
        bail!("{name}: latents must be N×{dim} or N×{dim}×1×1 for this model, not {shape:?}");
    }
    if npy.order() != npyz::Order::C {
        bail!("{name}: Fortran-order arrays are not supported; save with np.ascontiguousarray");
    }
    let values: Vec<f32> = npy
        .into_vec::<f32>()
        .with_context(|| format!("{name}: latents must be float32"))?;
    ensure!(
        values.iter().all(|v| v.is_finite()),
        "{name}: latents hold NaN or infinite values"
    );
    Ok(values)
}

/// A float32 .npy of any shape, written atomically (also `invert`'s latents).
pub(super) fn write_npy(path: &Path, values: &[f32], dims: &[usize]) -> Result<()> {
    let mut bytes = Vec::new();
    let shape: Vec<u64> = dims.iter().map(|&d| d as u64).collect();
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(&mut bytes)
        .begin_nd()?;
    writer.extend(values.iter().copied())?;
    writer.finish()?;
    write_atomic(path, &bytes)
}
