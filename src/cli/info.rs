//! `retrato info FILE`.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::Device;

use retrato::weights::{self, DISCRIMINATOR_PREFIX, WeightsError};

use super::files::load_model;

#[derive(clap::Args)]
pub struct Args {
    /// A retrato model file, or a PyTorch DCGAN netG state_dict saved as safetensors.
    file: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let model = load_model(&args.file)?;
    let device = Device::flex();
    let header = &model.header;
    let in_file = |e: WeightsError| anyhow::anyhow!("{}: {e}", args.file.display());
    // The page's NAME.discriminator.safetensors holds only D: describe that, not a missing G.
    let has_discriminator = model.has_part(DISCRIMINATOR_PREFIX);
    let discriminator_only =
        has_discriminator && !model.has_part(weights::generator_prefix(&header.model));
    let generator = if discriminator_only {
        None
    } else {
        Some(model.generator(&device).map_err(in_file)?)
    };
    let discriminator = if has_discriminator {
        Some(model.discriminator(&device).map_err(in_file)?)
    } else {
        None
    };
    let bytes = std::fs::metadata(&args.file).map(|m| m.len()).unwrap_or(0);
    println!("file        {}", args.file.display());
    println!("family      {}", header.model.family());
    println!(
        "format      version {}, {:?} storage, {:.2} MB",
        header.format_version,
        header.storage,
        bytes as f64 / 1e6
    );
    let size = header.model.image_size();
    let latent = header.model.latent_dim();
    match &generator {
        Some(g) => println!(
            "generator   {} parameters, latent {latent}, {size}x{size} images",
            g.parameter_count()
        ),
        None => println!(
            "generator   - (a discriminator alone: the fine-tuning start for a model of this config)"
        ),
    }
    if let Some(d) = &discriminator {
        println!("discriminator {} parameters", d.parameter_count());
    }
    println!("dataset     {}", or_dash(&header.dataset));
    println!("steps       {}", header.steps);
    println!("created     {}", or_dash(&header.created));
    for (name, value) in &header.metrics {
        println!("metric      {name} = {value}");
    }
    if let Some(e) = &header.evaluation {
        let floor = e.floor.map_or(String::new(), |f| format!(", floor {f:.2}"));
        println!(
            "evaluated   FID {:.2}{floor}, KID {:.4}, precision {:.3}, recall {:.3}: {} portraits against {} ({}), {}",
            e.scores.fid,
            e.scores.kid,
            e.scores.precision,
            e.scores.recall,
            e.n,
            e.reference,
            e.network,
            e.measured
        );
    }
    if !header.notes.is_empty() {
        println!("notes       {}", header.notes);
    }
    println!(
        "tensors     {} ({} values)",
        model.tensor_names().count(),
        model.value_count()
    );
    println!("config      {}", serde_json::to_string(&header.model)?);
    Ok(())
}

fn or_dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}
