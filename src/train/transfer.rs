//! Starting a run from a trained model (transfer, fine-tuning): the new run begins at step 0
//! with fresh optimizers, the generator taken from the file (its moving average when the
//! file is a checkpoint) and the discriminator too when the file carries one — FreezeD and
//! few-shot adaptation work far better from a discriminator that already knows faces.

use burn::tensor::Device;

use super::checkpoint::{Load, sampling_prefix};
use super::config::TrainConfig;
use super::trainer::{Networks, Trainer};
use crate::model::ModelConfig;
use crate::weights::ModelFile;

/// Tensor-name prefix of a discriminator in a model file or checkpoint.
pub const DISCRIMINATOR_PREFIX: &str = "discriminator.";

/// A trainer whose networks start from `source`, and whether its discriminator came from
/// the file (otherwise it is freshly initialised from the run's seed).
pub struct Transfer {
    pub trainer: Trainer,
    pub pretrained_discriminator: bool,
}

/// A run of `config`'s algorithm on `source`'s architecture (the file's model section
/// replaces the config's), starting from its weights, on `device` (an autodiff device).
/// The discriminator comes from `discriminator` when given (the page keeps it in a separate
/// file, fetched only to fine-tune), else from `source` when it has one.
pub fn from_model(
    mut config: TrainConfig,
    source: &ModelFile,
    discriminator_file: Option<&ModelFile>,
    device: &Device,
) -> Result<Transfer, String> {
    if let ModelConfig::Vae(_) = source.header.model {
        return Err("fine-tuning starts from a GAN; a VAE model cannot be fine-tuned".into());
    }
    config.model = source.header.model.clone();
    let mut trainer = Trainer::new(config, device)?;
    let generator_part = sampling_prefix(source);
    let d_source = discriminator_file
        .or(Some(source))
        .filter(|file| file.has_part(DISCRIMINATOR_PREFIX));
    if let Some(file) = discriminator_file
        && file.header.model != source.header.model
    {
        return Err(format!(
            "the discriminator file is for another architecture ({} {}) than the model",
            file.header.model.family(),
            file.header.model.image_size()
        ));
    }
    if discriminator_file.is_some() && d_source.is_none() {
        return Err("the discriminator file holds no discriminator".into());
    }
    let pretrained_discriminator = d_source.is_some();
    let Networks::Gan {
        generator,
        discriminator,
        ..
    } = &mut trainer.networks
    else {
        unreachable!("a GAN config builds GAN networks")
    };
    let mut load = Load::new(source, &generator_part);
    *generator = generator.clone().transform(&mut load);
    if let Some(d_source) = d_source {
        let mut load_d = Load::new(d_source, DISCRIMINATOR_PREFIX);
        *discriminator = discriminator.clone().transform(&mut load_d);
        load.error = load.error.or(load_d.error);
    }
    if let Some(e) = load.error {
        return Err(e.to_string());
    }
    if trainer.ema.is_some() {
        trainer.ema = Some(trainer.generator().valid());
    }
    Ok(Transfer {
        trainer,
        pretrained_discriminator,
    })
}
