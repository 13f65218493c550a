//! `retrato convert`: the same model in another storage (f32, f16, int8), or a PyTorch DCGAN
//! netG turned into a retrato model file. The header (card, evaluation) travels along; a
//! checkpoint's training state does not (the output is for sampling and the page).

use std::path::PathBuf;

use anyhow::{Result, bail};
use burn::tensor::Device;
use retrato::train::checkpoint::sampling_prefix;
use retrato::train::finetune_config;
use retrato::train::transfer::{self, DISCRIMINATOR_PREFIX};
use retrato::weights::{self, ModelFile, Part, Storage};

use super::files::{load_model, write_atomic};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum StorageChoice {
    F32,
    F16,
    /// Weights as int8 with a per-channel scale, the rest f16: half of f16's size.
    Int8,
}

/// Which networks the new file holds.
#[derive(Clone, Copy, Default, clap::ValueEnum)]
pub enum PartChoice {
    /// Everything the file holds (generator, and discriminator or encoder when present).
    #[default]
    All,
    /// The generator to sample from: a checkpoint's moving average when it has one.
    Sampling,
    /// Only the discriminator: what the page fetches to fine-tune the model.
    Discriminator,
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
    #[arg(long, value_enum, default_value_t)]
    part: PartChoice,
    /// Make the generator this wide (channels of its last hidden block; the blocks before
    /// it keep their multiples) drawing the same portraits (Net2WiderNet), with the file's
    /// discriminator beside it: `train --from OUT` then continues a larger network from a
    /// trained one. DCGAN only; with --part all.
    #[arg(long, value_name = "WIDTH")]
    g_width: Option<usize>,
    /// Recompute the generator's batch-norm statistics from one batch of this many portraits
    /// (SWA's rule; 512 is plenty): a checkpoint's moving average carries averaged
    /// statistics that its averaged weights do not quite produce. With --part sampling.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(2..=4096))]
    recalibrate: Option<u16>,
}

impl StorageChoice {
    pub fn storage(self) -> Storage {
        match self {
            Self::F32 => Storage::F32,
            Self::F16 => Storage::F16,
            Self::Int8 => Storage::Int8,
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    if args.recalibrate.is_some() && !matches!(args.part, PartChoice::Sampling) {
        bail!("--recalibrate changes the generator to sample from: use it with --part sampling")
    }
    let model = load_model(&args.model)?;
    let mut header = model.header.clone();
    header.storage = args.storage.storage();
    let generator = weights::generator_prefix(&header.model);
    // Only what the networks read is kept: a checkpoint's optimizer state is left behind.
    let parts = match (args.g_width, args.part) {
        (Some(width), PartChoice::All) => {
            let (wide_header, parts) = transfer::widened(&model, width, &Device::flex())
                .map_err(|e| anyhow::anyhow!("{}: {e}", args.model.display()))?;
            header.model = wide_header.model;
            parts
        }
        (Some(_), _) => {
            bail!("--g-width writes the widened generator and the discriminator: leave out --part")
        }
        (None, PartChoice::Sampling) => {
            let part = chosen_part(&model, PartChoice::Sampling, generator, &args)?;
            match args.recalibrate {
                Some(portraits) => {
                    header.forget_measurements();
                    header.notes +=
                        &format!(" Batch-norm statistics recomputed from {portraits} portraits.");
                    vec![weights::recalibrated(&header, part, portraits as usize)?]
                }
                None => vec![part],
            }
        }
        (None, part) => vec![chosen_part(&model, part, generator, &args)?],
    };
    let bytes = weights::encode(&header, &parts)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.model.display()))?;
    write_atomic(&args.out, &bytes)?;
    let (before, after) = (std::fs::metadata(&args.model)?.len(), bytes.len() as u64);
    // Read back what was written: a file this command makes must load.
    let written = load_model(&args.out)?;
    match args.part {
        PartChoice::Discriminator => {
            let config = finetune_config(&header.model).map_err(anyhow::Error::msg)?;
            let device = Device::flex().autodiff();
            transfer::from_model(config, &model, Some(&written), &device)
                .map_err(|e| anyhow::anyhow!("{}: {e}", args.out.display()))?;
        }
        _ => {
            written.generator(&Device::flex())?;
        }
    }
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

/// The networks `part` names, as stored in `model`.
fn chosen_part(model: &ModelFile, part: PartChoice, generator: &str, args: &Args) -> Result<Part> {
    Ok(match part {
        PartChoice::All => model.part(),
        PartChoice::Sampling => model.part_under(&sampling_prefix(model), generator),
        PartChoice::Discriminator if !model.has_part(DISCRIMINATOR_PREFIX) => {
            bail!(
                "{}: holds no discriminator (a training checkpoint does)",
                args.model.display()
            )
        }
        PartChoice::Discriminator => model.part_under(DISCRIMINATOR_PREFIX, DISCRIMINATOR_PREFIX),
    })
}
