//! Starting a run from a trained model (transfer, fine-tuning): the new run begins at step 0
//! with fresh optimizers, the generator taken from the file (its moving average when the
//! file is a checkpoint) and the discriminator too when the file carries one — FreezeD and
//! few-shot adaptation work far better from a discriminator that already knows faces.

use burn::tensor::Device;

use super::checkpoint::{Load, sampling_generator, sampling_prefix};
use super::config::TrainConfig;
use super::trainer::{Networks, Trainer};
use crate::model::widen::widen_generator;
use crate::model::{Generator, ModelConfig};
use crate::weights::{Header, ModelFile, Part, generator_prefix};

pub use crate::weights::DISCRIMINATOR_PREFIX;

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
    config.model = source.header.model.clone();
    from_generator(config, source, discriminator_file, device)
}

/// Like [`from_model`], but the run keeps `config`'s discriminator options (`model.d_*`):
/// `source`'s generator continues against a discriminator of another kind (e.g. one without
/// batch norm, for R1), which starts fresh. The generator options must be the source's.
pub fn from_generator(
    config: TrainConfig,
    source: &ModelFile,
    discriminator_file: Option<&ModelFile>,
    device: &Device,
) -> Result<Transfer, String> {
    if let ModelConfig::Vae(_) = source.header.model {
        return Err("fine-tuning starts from a GAN; a VAE model cannot be fine-tuned".into());
    }
    if source.header.model.with_discriminator_of(&config.model) != config.model {
        return Err("the run's generator options differ from the model's (only model.d_* may change when starting from a model)".into());
    }
    let same_discriminator = config.model == source.header.model;
    if discriminator_file.is_some() && !same_discriminator {
        return Err(
            "the run's discriminator options (model.d_*) differ from the model's, so its \
             trained discriminator does not fit: leave out the discriminator file to start a \
             fresh one"
                .into(),
        );
    }
    let mut trainer = Trainer::new(config, device)?;
    let generator_part = sampling_prefix(source);
    // A discriminator of another kind (e.g. without batch norm) starts fresh.
    let d_source = discriminator_file
        .or(Some(source))
        .filter(|file| same_discriminator && file.has_part(DISCRIMINATOR_PREFIX));
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

/// `source`'s generator made `g_width` wide (Net2WiderNet, [`widen_generator`]: nearly the
/// same portraits from a larger network) as a model file's header and parts, with `source`'s
/// discriminator beside it when it has one, so that `train --from` continues the wider
/// generator against the trained discriminator. A checkpoint gives its moving average.
pub fn widened(
    source: &ModelFile,
    g_width: usize,
    device: &Device,
) -> Result<(Header, Vec<Part>), String> {
    let ModelConfig::Dcgan(config) = &source.header.model else {
        return Err(format!(
            "widening is for DCGAN generators, not {}",
            source.header.model.family()
        ));
    };
    let Generator::Dcgan(generator) =
        sampling_generator(source, device).map_err(|e| e.to_string())?
    else {
        unreachable!("a DCGAN config builds a DCGAN generator")
    };
    let (wide, wide_config) = widen_generator(&generator, config, g_width, WIDEN_SEED, device)?;
    let mut header = source.header.clone();
    header.model = ModelConfig::Dcgan(wide_config);
    header.notes = format!(
        "generator widened from g_width {} to {g_width} (Net2WiderNet: nearly the same portraits); {}",
        config.g_width, source.header.notes
    );
    let prefix = generator_prefix(&header.model);
    let mut parts = vec![Part::of(&wide, prefix).map_err(|e| e.to_string())?];
    if source.has_part(DISCRIMINATOR_PREFIX) {
        parts.push(source.part_under(DISCRIMINATOR_PREFIX, DISCRIMINATOR_PREFIX));
    }
    Ok((header, parts))
}

/// Which channels a widened generator copies: fixed, so a widening is reproducible.
const WIDEN_SEED: u64 = 0x4E65_7432;
