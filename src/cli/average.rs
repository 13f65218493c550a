//! `retrato average`: one model whose generator is the mean of several models' generators
//! (a model soup). Runs continued from one parent with other seeds average well; two
//! unrelated models do not (their units are not aligned), so the result should be measured
//! with `eval fid` like any model before it replaces one.

use std::path::PathBuf;

use anyhow::{Result, bail};
use burn::tensor::Device;
use retrato::train::checkpoint::sampling_prefix;
use retrato::weights::{self, ModelFile};

use super::convert::StorageChoice;
use super::files::{load_model, write_atomic};

#[derive(clap::Args)]
pub struct Args {
    /// Model files or checkpoints of one architecture (at least two); from a checkpoint its
    /// moving-average generator is taken, as `convert --part sampling` does.
    #[arg(long = "model", value_name = "MODEL", num_args = 1.., required = true)]
    models: Vec<PathBuf>,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum)]
    storage: StorageChoice,
    /// Recompute the mean generator's batch-norm statistics from one batch of this many
    /// portraits (SWA's rule; 512 is plenty) instead of averaging the parts' statistics.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(2..=4096))]
    recalibrate: Option<u16>,
}

pub fn run(args: Args) -> Result<()> {
    if args.models.len() < 2 {
        bail!("average needs at least two --model files");
    }
    let files = (args.models.iter())
        .map(|path| load_model(path))
        .collect::<Result<Vec<_>>>()?;
    let first = &files[0];
    for (file, path) in files.iter().zip(&args.models).skip(1) {
        if file.header.model != first.header.model {
            bail!(
                "{}: its architecture differs from {}'s (only models of one configuration average)",
                path.display(),
                args.models[0].display()
            );
        }
    }
    let generator = weights::generator_prefix(&first.header.model);
    let parts: Vec<_> = (files.iter())
        .map(|file: &ModelFile| file.part_under(&sampling_prefix(file), generator))
        .collect();
    let mean = weights::average(&parts)
        .map_err(|e| anyhow::anyhow!("the models' generators differ: {e}"))?;
    let mut header = first.header.clone();
    header.storage = args.storage.storage();
    header.steps = files.iter().map(|f| f.header.steps).max().unwrap_or(0);
    header.forget_measurements();
    // The last two path components name a run's file ("art-a/resume.safetensors") without
    // the folders of someone's machine.
    let names: Vec<_> = (args.models.iter())
        .map(|p| {
            let parts: Vec<_> = p.components().rev().take(2).collect();
            let named: PathBuf = parts.into_iter().rev().collect();
            named.display().to_string()
        })
        .collect();
    header.notes = format!("Mean of {} generators ({})", files.len(), names.join(", "));
    let mean = match args.recalibrate {
        Some(portraits) => {
            header.notes +=
                &format!(", batch-norm statistics recomputed from {portraits} portraits");
            weights::recalibrated(&header, mean, portraits as usize)?
        }
        None => mean,
    };
    header.notes += ".";
    let bytes = weights::encode(&header, &[mean]).map_err(|e| anyhow::anyhow!("{e}"))?;
    write_atomic(&args.out, &bytes)?;
    // Read back what was written: a file this command makes must load.
    load_model(&args.out)?.generator(&Device::flex())?;
    println!(
        "mean of {} generators -> {} ({:.2} MB, {:?})",
        files.len(),
        args.out.display(),
        bytes.len() as f64 / 1e6,
        header.storage
    );
    Ok(())
}
