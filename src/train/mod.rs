//! Training: every algorithm of the reports (BCE GAN, WGAN with clipping, WGAN-GP, VAE) as one
//! step function on any autodiff device ([`Trainer`]), shared by the CLI and the page, plus
//! what a long run needs around it natively (data batches, checkpoints, logs, plots).

pub mod augment;
pub mod card;
pub mod checkpoint;
pub mod collective;
pub mod config;
pub mod objective;
pub mod params;
pub mod run;
pub mod trainer;
pub mod transfer;

pub use config::{Augment, Objective, TrainConfig};
pub use trainer::{StepLosses, Trainer};

/// The few-shot fine-tuning recipe (`retrato train --from MODEL` without --config, and the
/// page's fine-tuning): one file, so native and browser runs train alike.
pub const FINETUNE_PRESET: &str = include_str!("../../configs/finetune.toml");

/// The fine-tuning recipe as a preset value (TOML as JSON), without its model section.
pub fn finetune_preset() -> serde_json::Value {
    let table: toml::Table = toml::from_str(FINETUNE_PRESET).expect("the built-in recipe parses");
    serde_json::to_value(table).expect("TOML values are JSON values")
}

/// Fine-tuning steps for `images` pictures when the visitor does not choose. On 723 painted
/// portraits FID was best after 90-180 steps of 32 and worse after that in every setting
/// tried (README, "Painted portraits"): the discriminator overfits a small set. So: 100 steps,
/// up to 200 for larger sets — a minute or two on a laptop GPU.
pub fn finetune_steps(images: usize) -> u64 {
    (images as u64 * 2).clamp(100, 200)
}

/// The fine-tuning recipe for `model` (the architecture of the model being adapted).
pub fn finetune_config(model: &crate::model::ModelConfig) -> Result<TrainConfig, String> {
    let mut value = finetune_preset();
    value["model"] = serde_json::to_value(model).map_err(|e| e.to_string())?;
    let config: TrainConfig = serde_json::from_value(value).map_err(|e| e.to_string())?;
    config.validate()?;
    Ok(config)
}
