//! Fine-tuning in the page: the native trainer's step ([`Trainer::train_step`]), started by
//! [`transfer::from_model`] with the built-in few-shot recipe, on the pictures the visitor
//! dropped (decoded by the same code as native training). The worker drives it a few steps
//! per call so the page can draw progress between calls; nothing leaves the browser.

use std::cell::RefCell;

use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use super::{portraits, to_js, with_state};
use crate::data::{Batches, Dataset, Fit, Range, decode_image};
use crate::latent;
use crate::train::checkpoint::{self, RunInfo};
use crate::train::params::{Values, read_values};
use crate::train::{Trainer, finetune_config, finetune_steps, transfer};
use crate::weights::{Header, ModelFile};

/// The run in progress: its trainer on the page's device, the visitor's pictures, its length.
struct Run {
    trainer: Trainer,
    dataset: Dataset,
    batches: Batches,
    total_steps: u64,
    info: RunInfo,
}

thread_local! {
    static RUN: RefCell<Option<Run>> = const { RefCell::new(None) };
}

/// One picture as training will see it: decoded, oriented, centre-cropped and resized to
/// `size`, RGB bytes; or the reason it cannot be used (the page lists it and goes on).
#[wasm_bindgen(js_name = prepareImage)]
pub fn prepare_image(bytes: &[u8], size: u32) -> Result<Vec<u8>, JsError> {
    decode_image(bytes, size, Fit::Crop).map_err(|e| JsError::new(&e.to_string()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartOptions {
    /// The model's name, for the new model's card.
    source: String,
    /// Training steps; by default [`finetune_steps`] of the number of pictures.
    steps: Option<u64>,
    /// The recipe's learning rate (G and D) and FreezeD depth, when the visitor changes them.
    learning_rate: Option<f64>,
    freeze_d: Option<usize>,
}

/// What the page shows about a run.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    step: u64,
    total_steps: u64,
    images: usize,
    batch_size: usize,
    learning_rate: f64,
    frozen_layers: usize,
    /// Whether D started from a trained one (unknown for a resumed run).
    pretrained_discriminator: Option<bool>,
}

fn status(run: &Run, pretrained_discriminator: Option<bool>) -> Status {
    let t = &run.trainer.config.train;
    Status {
        step: run.trainer.step,
        total_steps: run.total_steps,
        images: run.dataset.count,
        batch_size: run.batches.batch_size,
        learning_rate: t.lr_g,
        frozen_layers: t.freeze_d,
        pretrained_discriminator,
    }
}

/// A run from `model` (a model file; `discriminator` optionally a file holding its trained
/// discriminator) on `pixels`: N pictures from [`prepare_image`], concatenated.
#[wasm_bindgen(js_name = fineTuneStart)]
pub fn fine_tune_start(
    model: &[u8],
    discriminator: Option<Vec<u8>>,
    pixels: Vec<u8>,
    options: JsValue,
) -> Result<JsValue, JsError> {
    let options: StartOptions = serde_wasm_bindgen::from_value(options)?;
    let device = with_state(|s| s.device.clone())?.autodiff();
    let source = ModelFile::from_bytes(model).map_err(error)?;
    let d_file = match discriminator {
        Some(bytes) => Some(ModelFile::from_bytes(&bytes).map_err(error)?),
        None => None,
    };
    let mut config = finetune_config(&source.header.model).map_err(error)?;
    let dataset = dataset(pixels, source.header.model.image_size())?;
    config.train.batch_size = config.train.batch_size.min(dataset.count);
    if let Some(lr) = options.learning_rate {
        (config.train.lr_g, config.train.lr_d) = (lr, lr);
    }
    config.train.freeze_d = options.freeze_d.unwrap_or(config.train.freeze_d);
    config.validate().map_err(error)?;
    let started = transfer::from_model(config, &source, d_file.as_ref(), &device).map_err(error)?;
    let total_steps = options
        .steps
        .unwrap_or_else(|| finetune_steps(dataset.count));
    let info = RunInfo {
        dataset: format!("{} pictures uploaded in the browser", dataset.count),
        started_from: Some(options.source),
        ..RunInfo::default()
    };
    let run = new_run(started.trainer, dataset, total_steps, info);
    let reply = to_js(&status(&run, Some(started.pretrained_discriminator)));
    RUN.with_borrow_mut(|r| *r = Some(run));
    reply
}

fn dataset(pixels: Vec<u8>, size: usize) -> Result<Dataset, JsError> {
    let per_image = size * size * 3;
    if pixels.is_empty() || !pixels.len().is_multiple_of(per_image) {
        return Err(JsError::new(&format!(
            "pictures must be {size}x{size} RGB, {per_image} bytes each"
        )));
    }
    Ok(Dataset::new(pixels, size))
}

fn new_run(trainer: Trainer, dataset: Dataset, total_steps: u64, info: RunInfo) -> Run {
    let t = &trainer.config.train;
    let batches = Batches {
        count: dataset.count,
        batch_size: t.batch_size.min(dataset.count),
        seed: t.seed,
        flip: t.flip,
    };
    Run {
        trainer,
        dataset,
        batches,
        total_steps,
        info,
    }
}

/// Up to `count` steps (fewer at the end of the run); every step's losses, read back at once.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Progress {
    step: u64,
    total_steps: u64,
    names: Vec<&'static str>,
    /// One row per step, in `names` order.
    losses: Vec<Vec<f32>>,
    /// A loss turned NaN/Inf: the run stopped (its last saved state is intact).
    diverged: bool,
}

/// Runs up to `count` training steps.
#[wasm_bindgen(js_name = fineTuneStep)]
pub async fn fine_tune_step(count: u32) -> Result<JsValue, JsError> {
    let mut run = take_run()?;
    let result = steps(&mut run, count).await;
    RUN.with_borrow_mut(|r| *r = Some(run));
    to_js(&result?)
}

async fn steps(run: &mut Run, count: u32) -> Result<Progress, JsError> {
    let device = run.trainer.device().clone();
    let mut names = Vec::new();
    let mut values = Vec::new();
    // Which values are real losses rather than placeholders for a term a step skipped.
    let mut present = Vec::new();
    let mut rows = 0;
    while rows < count as u64 && run.trainer.step < run.total_steps {
        let (indices, flips) = run.batches.at(run.trainer.step);
        let real = run
            .dataset
            .batch(&indices, &flips, Range::MinusOneToOne, &device);
        let losses = run.trainer.train_step(real).0;
        if names.is_empty() {
            names = losses.iter().map(|(name, _)| *name).collect();
        }
        // Steps that skip a network (n_critic, d_every) report fewer terms: keep full rows.
        for name in &names {
            let value = losses
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.clone());
            present.push(value.is_some());
            values
                .push(value.unwrap_or_else(|| burn::tensor::Tensor::full([1], f32::NAN, &device)));
        }
        rows += 1;
    }
    // One read-back for every loss of every step (each a 1-element tensor).
    let flat: Vec<f32> = read_values(Values(values))
        .await
        .map_err(|e| JsError::new(&e))?
        .concat();
    let losses: Vec<Vec<f32>> = flat
        .chunks(names.len().max(1))
        .map(<[f32]>::to_vec)
        .collect();
    let diverged = (flat.iter().zip(&present)).any(|(v, real)| *real && !v.is_finite());
    if diverged {
        run.total_steps = run.trainer.step;
    }
    Ok(Progress {
        step: run.trainer.step,
        total_steps: run.total_steps,
        names,
        losses,
        diverged,
    })
}

/// Portraits `0..count` of `seed` from the run's current generator (its moving average).
#[wasm_bindgen(js_name = fineTuneSamples)]
pub async fn fine_tune_samples(seed: String, count: u32) -> Result<JsValue, JsError> {
    let seed = super::parse_seed(&seed)?;
    let generator = RUN
        .with_borrow(|r| r.as_ref().map(|r| r.trainer.sampling_generator()))
        .ok_or_else(|| JsError::new("no fine-tuning run"))?;
    let device = generator.device();
    portraits(&generator, &device, |dim| {
        latent::latents(seed, 0, count as usize, dim)
    })
    .await
}

/// The run's state to keep (IndexedDB): networks, average, step and recipe; the optimizers'
/// statistics restart on resume.
#[wasm_bindgen(js_name = fineTuneCheckpoint)]
pub async fn fine_tune_checkpoint() -> Result<Vec<u8>, JsError> {
    let run = take_run()?;
    let bytes = checkpoint::encode_portable(&run.trainer, &run.info).await;
    RUN.with_borrow_mut(|r| *r = Some(run));
    bytes.map_err(|e| JsError::new(&e))
}

/// Continues a run from [`fine_tune_checkpoint`]'s bytes on the same pictures.
#[wasm_bindgen(js_name = fineTuneResume)]
pub fn fine_tune_resume(
    state: &[u8],
    pixels: Vec<u8>,
    total_steps: u64,
) -> Result<JsValue, JsError> {
    let device = with_state(|s| s.device.clone())?.autodiff();
    let (trainer, info) = checkpoint::decode(state, &device).map_err(error)?;
    let dataset = dataset(pixels, trainer.config.model.image_size())?;
    let run = new_run(trainer, dataset, total_steps, info);
    let reply = to_js(&status(&run, None));
    RUN.with_borrow_mut(|r| *r = Some(run));
    reply
}

/// A model file of the fine-tuned generator (its moving average, f16) from a checkpoint's
/// bytes, named `name` in its card: what the picker lists and `retrato sample` loads.
#[wasm_bindgen(js_name = exportModel)]
pub fn export_model(state: &[u8], name: String) -> Result<Vec<u8>, JsError> {
    let (trainer, info) =
        checkpoint::decode(state, &burn::tensor::Device::flex().autodiff()).map_err(error)?;
    let t = &trainer.config.train;
    let mut header = Header::new(trainer.config.model.clone());
    header.dataset = info.dataset.clone();
    header.steps = trainer.step;
    header.created = String::from(js_sys::Date::new_0().to_iso_string());
    header.notes = format!(
        "{name}: fine-tuned in the browser from {} on {}: {} steps of batch {}, learning rate {}, \
         FreezeD {}, DiffAugment {:?}, generator EMA {}.",
        info.started_from.as_deref().unwrap_or("a model"),
        info.dataset,
        trainer.step,
        t.batch_size,
        t.lr_g,
        t.freeze_d,
        t.augment,
        t.ema_decay
    );
    let (bytes, _) = checkpoint::model_file(&trainer, header).map_err(error)?;
    Ok(bytes)
}

/// Ends the run and frees its memory.
#[wasm_bindgen(js_name = fineTuneEnd)]
pub fn fine_tune_end() {
    RUN.with_borrow_mut(|r| *r = None);
}

fn take_run() -> Result<Run, JsError> {
    RUN.with_borrow_mut(Option::take)
        .ok_or_else(|| JsError::new("no fine-tuning run (or a call on it is still going)"))
}

fn error(e: impl ToString) -> JsError {
    JsError::new(&e.to_string())
}
