//! Fine-tuning in the page: the native trainer's step ([`Trainer::train_step`]), started by
//! [`transfer::from_model`] with the built-in few-shot recipe, on the pictures the visitor
//! dropped (decoded by the same code as native training). The worker drives it a few steps
//! per call so the page can draw progress between calls; nothing leaves the browser.

use std::cell::RefCell;

use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use super::{portraits, to_js, with_state};
use crate::data::{Dataset, Fit, decode_image};
use crate::latent;
use crate::train::card::training_note;
use crate::train::checkpoint::{self, RunInfo};
use crate::train::run::{Clock, MemoryStore, Silent};
use crate::train::{Trainer, finetune_config, finetune_steps, transfer};
use crate::weights::{Header, ModelFile};

/// The run in progress: the library's run loop on the page's device, kept in memory.
type Run = crate::train::run::Run<MemoryStore>;

/// The page's clock: seconds since 1970 (only differences are read).
struct PageClock;

impl Clock for PageClock {
    fn seconds(&self) -> f64 {
        js_sys::Date::now() / 1000.0
    }
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
    let run = new_run(started.trainer, dataset, total_steps, info)?;
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

/// The loop of `trainer` on the pictures, all its steps' losses read back at the end of each
/// call (one round trip to a GPU per call), with a copy of the start to roll back to.
fn new_run(
    trainer: Trainer,
    dataset: Dataset,
    total_steps: u64,
    info: RunInfo,
) -> Result<Run, JsError> {
    let store = MemoryStore::default();
    let mut run = Run::new(
        trainer,
        info,
        dataset,
        Some(total_steps),
        store,
        Box::new(PageClock),
    )
    .with_steps_per_read(u64::MAX);
    run.checkpoint().map_err(error)?;
    Ok(run)
}

/// Up to `count` steps (fewer at the end of the run); every step's losses, read back at once.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Progress {
    step: u64,
    total_steps: u64,
    names: Vec<&'static str>,
    /// One row per step, in `names` order (NaN for a term the step skipped).
    losses: Vec<Vec<f32>>,
    /// A loss turned NaN/Inf and the run went back to this step (its rows past it are void),
    /// with lower learning rates.
    rolled_back_to: Option<u64>,
}

/// Runs up to `count` training steps.
#[wasm_bindgen(js_name = fineTuneStep)]
pub async fn fine_tune_step(count: u32) -> Result<JsValue, JsError> {
    let mut run = take_run()?;
    let result = run.advance(count as u64, &mut Silent).await;
    let progress = result.map(|advance| Progress {
        step: run.trainer.step,
        total_steps: run.total_steps,
        names: run.loss_names(),
        losses: advance.rows,
        rolled_back_to: advance.rolled_back_to,
    });
    RUN.with_borrow_mut(|r| *r = Some(run));
    to_js(&progress.map_err(error)?)
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
    let run = new_run(trainer, dataset, total_steps, info)?;
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
    let mut header = Header::new(trainer.config.model.clone());
    header.dataset = info.dataset.clone();
    header.steps = trainer.step;
    header.created = String::from(js_sys::Date::new_0().to_iso_string());
    header.notes = format!(
        "{name}: {}",
        training_note(&trainer, &info, "in the browser")
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
