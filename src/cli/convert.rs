//! `retrato convert`: the same model in another storage (f32, f16, int8), or a PyTorch DCGAN
//! netG turned into a retrato model file. The header (card, evaluation) travels along; a
//! checkpoint's training state does not (the output is for sampling and the page).

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::Device;
use retrato::weights::{self, Storage};

use super::files::{load_model, write_atomic};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum StorageChoice {
    F32,
    F16,
    /// Weights as int8 with a per-channel scale, the rest f16: half of f16's size.
    Int8,
}

#[derive(clap::Args)]
pub struct Args {
    /// A retrato model file or checkpoint, or a PyTorch DCGAN netG state_dict (safetensors).
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum)]
    storage: StorageChoice,
}

pub fn run(args: Args) -> Result<()> {
    let model = load_model(&args.model)?;
    let mut header = model.header.clone();
    header.storage = match args.storage {
        StorageChoice::F32 => Storage::F32,
        StorageChoice::F16 => Storage::F16,
        StorageChoice::Int8 => Storage::Int8,
    };
    // Only what the generator (and discriminator, when present) reads is kept.
    let bytes = weights::encode(&header, &[model.part()])
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.model.display()))?;
    write_atomic(&args.out, &bytes)?;
    let (before, after) = (std::fs::metadata(&args.model)?.len(), bytes.len() as u64);
    // Read back what was written: a file this command makes must load.
    load_model(&args.out)?.generator(&Device::flex())?;
    println!(
        "{} ({:.2} MB) -> {} ({:.2} MB, {:?})",
        args.model.display(),
        before as f64 / 1e6,
        args.out.display(),
        after as f64 / 1e6,
        header.storage
    );
    Ok(())
}
