//! `retrato train`: a full training run from a preset, with progress, logs, plots, sample
//! grids, atomic checkpoints, exact resume and divergence rollback.

mod run;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use retrato::train::{TrainConfig, finetune_preset};
use retrato::weights::ModelFile;
use serde_json::Value;

use super::data::FitArg;
use super::device::DeviceChoice;

#[derive(clap::Args)]
pub struct Args {
    /// Preset (TOML): model, algorithm, hyperparameters; see configs/.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Without --config: the model family to train with default settings.
    #[arg(long, default_value = "dcgan")]
    family: String,
    /// Training images: a folder (searched recursively), a .tar or a .zip.
    #[arg(long)]
    data: PathBuf,
    /// Run folder: metrics.csv, loss.png, samples/, checkpoints/, model.safetensors.
    #[arg(long)]
    out: PathBuf,
    /// Continue the run in --out from its newest checkpoint; or, given a checkpoint FILE
    /// (full, or the reduced one a run leaves in OUT/resume.safetensors), continue that run
    /// in --out: same config, step, moving average, schedule and best FID.
    #[arg(long, conflicts_with = "from", value_name = "FILE", num_args = 0..=1)]
    resume: Option<Option<PathBuf>>,
    /// Also keep Adam's moments (in bf16) in OUT/resume.safetensors, the reduced checkpoint
    /// every run ends with: exact-ish continuation, at about twice the size.
    #[arg(long)]
    keep_moments: bool,
    /// Start from a trained model file or checkpoint (transfer / fine-tuning): its
    /// architecture and weights, and its discriminator when it carries one. Without --config
    /// this uses the few-shot fine-tuning recipe (configs/finetune.toml).
    #[arg(long, value_name = "MODEL")]
    from: Option<PathBuf>,
    /// With --from: the model's trained discriminator from a separate file (as the page ships
    /// it, e.g. www/models/celeba-64.discriminator.safetensors).
    #[arg(long, requires = "from")]
    discriminator: Option<PathBuf>,
    /// Override any config key, e.g. --set train.lr_g=1e-4 --set model.g_width=32 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Shorthand for --set train.epochs=N.
    #[arg(long)]
    epochs: Option<usize>,
    /// Shorthand for --set train.batch_size=N.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Shorthand for --set train.seed=N.
    #[arg(long)]
    seed: Option<u64>,
    /// Stop (with a checkpoint and a model file) after this many minutes of this session.
    #[arg(long)]
    max_minutes: Option<f64>,
    /// Spend the last this-many minutes of --max-minutes on a linear decay of the learning
    /// rates to train.lr_decay_final, placed in steps by the speed of the minutes before; the
    /// session stops at the decay's end (a run already inside a decay keeps its own).
    #[arg(long, requires = "max_minutes")]
    decay_minutes: Option<f64>,
    /// Stop after this many training steps in all (for tests and exact comparisons).
    #[arg(long)]
    max_steps: Option<u64>,
    /// How non-square pictures become square.
    #[arg(long, value_enum, default_value_t = FitArg::Crop)]
    fit: FitArg,
    /// Decode the data again instead of using (and writing) the decode cache.
    #[arg(long)]
    no_cache: bool,
    #[arg(long, value_enum, default_value_t)]
    device: DeviceChoice,
}

/// What a transfer run starts from: the --from file, and the --discriminator file if given.
pub struct Source {
    pub model: ModelFile,
    pub discriminator: Option<ModelFile>,
}

fn read_model(path: &Path) -> Result<ModelFile> {
    ModelFile::from_path(path).with_context(|| path.display().to_string())
}

pub fn run(args: Args) -> Result<()> {
    let source = match &args.from {
        Some(path) => Some(Source {
            model: read_model(path)?,
            discriminator: args.discriminator.as_deref().map(read_model).transpose()?,
        }),
        None => None,
    };
    let config = match args.resume {
        // The checkpoint holds the run's config; overrides still apply (e.g. more epochs).
        Some(_) => None,
        None => Some(resolve_config(
            &args,
            None,
            source.as_ref().map(|s| &s.model),
        )?),
    };
    run::train(args, config, source)
}

/// The preset (or the family's defaults; with --from, the fine-tuning recipe and the source's
/// architecture), then `--set` and the shorthand flags.
fn resolve_config(
    args: &Args,
    base: Option<&TrainConfig>,
    source: Option<&ModelFile>,
) -> Result<TrainConfig> {
    let mut value = match (base, &args.config, source) {
        (Some(config), _, _) => serde_json::to_value(config)?,
        (None, Some(path), _) => read_toml(path)?,
        (None, None, Some(_)) => finetune_preset(),
        (None, None, None) => serde_json::json!({ "model": { "family": args.family } }),
    };
    if let Some(source) = source {
        // The architecture is the source's; a preset's [model] section does not apply.
        value["model"] = serde_json::to_value(&source.header.model)?;
    }
    let mut overrides = args.overrides.clone();
    let shorthand = [
        ("train.epochs", args.epochs.map(|v| v.to_string())),
        ("train.batch_size", args.batch_size.map(|v| v.to_string())),
        ("train.seed", args.seed.map(|v| v.to_string())),
    ];
    for (key, v) in shorthand {
        if let Some(v) = v {
            overrides.push(format!("{key}={v}"));
        }
    }
    for item in &overrides {
        apply_override(&mut value, item)?;
    }
    let source = args
        .config
        .as_ref()
        .map_or("configuration".to_string(), |p| p.display().to_string());
    let config: TrainConfig = serde_json::from_value(value)
        .with_context(|| format!("{source}: invalid configuration"))?;
    config
        .validate()
        .map_err(|reason| anyhow::anyhow!("{source}: invalid configuration: {reason}"))?;
    Ok(config)
}

fn read_toml(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read it", path.display()))?;
    toml::from_str::<Value>(&text).with_context(|| format!("{}: not valid TOML", path.display()))
}

/// `a.b.c=value`: value parsed as TOML (number, bool, array, quoted string), else a string.
fn apply_override(root: &mut Value, item: &str) -> Result<()> {
    let Some((key, raw)) = item.split_once('=') else {
        bail!("--set {item}: expected KEY=VALUE, e.g. train.lr_g=1e-4");
    };
    let parsed = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|t| t.get("v").cloned())
        .map(|v| serde_json::to_value(v).expect("TOML values are JSON values"))
        .unwrap_or_else(|| Value::String(raw.to_string()));
    let mut node = root;
    let parts: Vec<&str> = key.trim().split('.').collect();
    for part in &parts[..parts.len() - 1] {
        if !node.is_object() {
            bail!("--set {item}: {part} is not a section");
        }
        node = node
            .as_object_mut()
            .expect("object")
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Default::default()));
    }
    match node.as_object_mut() {
        Some(map) => {
            map.insert(parts[parts.len() - 1].to_string(), parsed);
            Ok(())
        }
        None => bail!("--set {item}: cannot set a key inside a value"),
    }
}
