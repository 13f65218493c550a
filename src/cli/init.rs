//! `retrato init`: a model file with fresh random weights, for any family.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use retrato::model::{FAMILIES, ModelConfig};
use retrato::weights::{self, Header, Part, Storage};

use super::device::DeviceChoice;
use super::files::write_atomic;

#[derive(clap::Args)]
pub struct Args {
    /// Model family: dcgan (PyTorch DCGAN example), mlp (fully connected GAN), vae.
    #[arg(long, value_parser = FAMILIES)]
    family: String,
    /// Where to write the model file (.safetensors).
    #[arg(long)]
    out: PathBuf,
    /// Full configuration as a TOML or JSON file (fields of the family's config); the flags
    /// below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Size of the latent vector z.
    #[arg(long)]
    latent_dim: Option<usize>,
    /// Image side in pixels (DCGAN: 32, 64 or 128).
    #[arg(long)]
    image_size: Option<usize>,
    /// Base width: ngf and ndf for DCGAN, the first conv's channels for the VAE.
    #[arg(long)]
    width: Option<usize>,
    /// Also store a discriminator (DCGAN, MLP) or an encoder (VAE), as a training start point.
    #[arg(long)]
    with_discriminator: bool,
    /// Store weights as f16 (half the size; what the web page ships).
    #[arg(long)]
    f16: bool,
    /// Seed for the random weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, value_enum, default_value_t)]
    device: DeviceChoice,
}

pub fn run(args: Args) -> Result<()> {
    let model = configure(&args)?;
    let device = args.device.device()?.autodiff();
    device.seed(args.seed);
    let mut generator = model.init_generator(&device);
    generator.calibrate_batch_norm(256);
    let mut parts = vec![Part::generator(&generator, &model)?];
    if args.with_discriminator {
        parts.push(match &model {
            ModelConfig::Dcgan(c) => Part::of(&c.init_discriminator(&device), "discriminator.")?,
            ModelConfig::Mlp(c) => Part::of(&c.init_discriminator(&device), "discriminator.")?,
            ModelConfig::Vae(c) => Part::of(&c.init_encoder(&device), "encoder.")?,
        });
    }
    let mut header = Header::new(model);
    header.dataset = "none (random init)".into();
    header.created = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    header.storage = if args.f16 { Storage::F16 } else { Storage::F32 };
    header.notes = format!(
        "Random weights (seed {}), batch-norm statistics calibrated on random latents: not trained.",
        args.seed
    );
    let bytes = weights::encode(&header, &parts)?;
    write_atomic(&args.out, &bytes)?;
    println!(
        "wrote {} ({} model, {:.2} MB)",
        args.out.display(),
        header.model.family(),
        bytes.len() as f64 / 1e6
    );
    Ok(())
}

/// The config file, then the flags; reading a `ModelConfig` fills the rest with the
/// family's defaults.
fn configure(args: &Args) -> Result<ModelConfig> {
    let mut value = serde_json::json!({ "family": args.family });
    if let Some(path) = &args.config {
        let overrides = read_config(path)?;
        let fields = overrides
            .as_object()
            .with_context(|| format!("{}: not a table of fields", path.display()))?;
        for (key, field) in fields {
            value[key] = field.clone();
        }
        value["family"] = args.family.clone().into();
    }
    let family = args.family.as_str();
    if let Some(dim) = args.latent_dim {
        value["latent_dim"] = dim.into();
    }
    if let Some(size) = args.image_size {
        value["image_size"] = size.into();
    }
    if let Some(width) = args.width {
        match family {
            "dcgan" => {
                value["g_width"] = width.into();
                value["d_width"] = width.into();
            }
            "vae" => value["width"] = width.into(),
            _ => bail!(
                "--width does not apply to the mlp family: set g_hidden / d_hidden in --config"
            ),
        }
    }
    let model: ModelConfig = serde_json::from_value(value).context("invalid configuration")?;
    model
        .validate()
        .map_err(|reason| anyhow::anyhow!("invalid configuration: {reason}"))?;
    Ok(model)
}

fn read_config(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read it", path.display()))?;
    let parsed = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => serde_json::from_str(&text).map_err(anyhow::Error::from),
        _ => toml::from_str::<serde_json::Value>(&text).map_err(anyhow::Error::from),
    };
    parsed.with_context(|| format!("{}: not valid TOML/JSON", path.display()))
}
